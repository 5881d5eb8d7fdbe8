"""opsctl jobs: the job scheduler (registry, schedules, one serve process, run history)."""

from __future__ import annotations

import json
import signal
import threading
from datetime import timedelta
from typing import Annotated, Any

import typer

from clinical_core.domain.errors import InvalidInput
from jobs import registry as reg
from jobs import runner
from jobs.scheduler import Scheduler
from opsctl.cli.output import (
    Format,
    FormatOpt,
    JsonOpt,
    choose,
    info,
    render,
    render_object,
)
from opsctl.cli.state import container

app = typer.Typer(help="定时任务：任务注册表、排程、调度进程与运行记录。\n\n示例：opsctl jobs list", no_args_is_help=True)

_SCHEDULE_COLUMNS = [("schedule_id", "排程"), ("job_name", "任务"), ("trigger", "触发"), ("next_run_at", "下次运行"),
                     ("paused", "已暂停"), ("grace_seconds", "容错秒数"), ("coalesce", "合并补跑"),
                     ("description", "说明")]
_SCHEDULE_LABELS = dict(_SCHEDULE_COLUMNS)
_RUN_COLUMNS = [("run_id", "运行"), ("job_name", "任务"), ("trigger", "方式"), ("scheduled_for", "计划时间"),
                ("started_at", "开始"), ("finished_at", "结束"), ("status", "状态"), ("counts", "计数"),
                ("error", "错误")]


def _scheduler() -> Scheduler:
    c = container()
    c.uow()  # the schema check: the job store's table comes from our migration
    return Scheduler(c.engine, c)


def _row(view: Any) -> dict[str, Any]:
    spec = reg.REGISTRY.get(view.job_name)
    return {"schedule_id": view.schedule_id, "job_name": view.job_name, "trigger": view.trigger,
            "next_run_at": view.next_run_at, "paused": view.paused, "grace_seconds": view.grace_seconds,
            "coalesce": view.coalesce, "description": spec.description if spec else "（注册表中已无此任务）"}


@app.command("list")
def list_(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """列出注册表中的任务及其排程（未排程的任务在 jobs serve 启动时按默认排程加入）。

    示例：opsctl jobs list --json
    """
    schedules = _scheduler().schedules()
    rows = [_row(s) for s in schedules]
    scheduled = {s.job_name for s in schedules}
    for spec in reg.REGISTRY.values():
        if spec.name not in scheduled:
            rows.append({"schedule_id": None, "job_name": spec.name,
                         "trigger": f"{spec.trigger.describe()}（默认，未排程）" if spec.trigger else "仅手动",
                         "next_run_at": None, "paused": False, "grace_seconds": int(spec.grace.total_seconds()),
                         "coalesce": spec.coalesce, "description": spec.description})
    render(rows, _SCHEDULE_COLUMNS, choose(fmt, as_json), title="定时任务")


@app.command("add")
def add(
    job_name: Annotated[str, typer.Argument(help="注册表中的任务名，如 followup.deliver_due")],
    every: Annotated[str | None, typer.Option("--every", help="间隔，如 30s、5m、2h、1d")] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="cron 表达式（北京时间），如 \"0 3 * * *\"")] = None,
    schedule_id: Annotated[str | None, typer.Option("--id", help="排程名（默认与任务名相同）")] = None,
    grace: Annotated[int | None, typer.Option("--grace", min=1, help="错过触发时间后仍补跑的秒数（默认取注册表）")] = None,
    coalesce: Annotated[bool | None, typer.Option("--coalesce/--no-coalesce", help="多次错过只补跑一次")] = None,
    options: Annotated[str | None, typer.Option("--options", help="任务参数 JSON，如 '{\"batch\": 100}'")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """为注册表中的任务增加一个排程（写入数据库中的 APScheduler 任务库，运行中的 jobs serve 自动生效）。

    示例：opsctl jobs add followup.deliver_due --every 5m --id followup-fast --grace 600
    """
    trigger = reg.parse_trigger(every, cron) if (every or cron) else None
    try:
        parsed = json.loads(options) if options else {}
    except json.JSONDecodeError:
        raise InvalidInput("--options 不是合法的 JSON") from None
    if not isinstance(parsed, dict):
        raise InvalidInput("--options 应为 JSON 对象")
    view = _scheduler().add(job_name, trigger, schedule_id=schedule_id, options=parsed,
                            grace=None if grace is None else timedelta(seconds=grace), coalesce=coalesce)
    render_object(_row(view), _SCHEDULE_LABELS, choose(fmt, as_json), title="已增加排程")


@app.command("pause")
def pause(schedule_id: Annotated[str, typer.Argument(help="排程名")], fmt: FormatOpt = Format.table,
          as_json: JsonOpt = False) -> None:
    """暂停一个排程（运行中的那一次会做完）。

    示例：opsctl jobs pause followup.deliver_due
    """
    render_object(_row(_scheduler().pause(schedule_id)), _SCHEDULE_LABELS, choose(fmt, as_json), title="已暂停")


@app.command("resume")
def resume(schedule_id: Annotated[str, typer.Argument(help="排程名")], fmt: FormatOpt = Format.table,
           as_json: JsonOpt = False) -> None:
    """恢复一个排程，从现在起按触发规则运行（暂停期间错过的不补跑）。

    示例：opsctl jobs resume followup.deliver_due
    """
    render_object(_row(_scheduler().resume(schedule_id)), _SCHEDULE_LABELS, choose(fmt, as_json), title="已恢复")


@app.command("run-now")
def run_now(
    job_name: Annotated[str, typer.Argument(help="注册表中的任务名")],
    options: Annotated[str | None, typer.Option("--options", help="任务参数 JSON")] = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """立即运行一次任务并记录（与调度进程互斥：同一任务不会被两个进程同时运行）。

    示例：opsctl jobs run-now consult.expire_unanswered --json
    """
    try:
        parsed = json.loads(options) if options else {}
    except json.JSONDecodeError:
        raise InvalidInput("--options 不是合法的 JSON") from None
    view = runner.run(container(), reg.get(job_name), options=parsed)
    assert view is not None
    render_object({k: getattr(view, k) for k, _ in _RUN_COLUMNS}, dict(_RUN_COLUMNS), choose(fmt, as_json),
                  title="运行结果")
    if view.status == "failed":
        raise typer.Exit(1)


@app.command("history")
def history(
    job_name: Annotated[str | None, typer.Option("--job", help="只看这个任务")] = None,
    status: Annotated[str | None, typer.Option(help="succeeded / failed / missed / skipped / running")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="最多显示条数")] = 50,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """任务运行记录（开始、结束、状态、计数、错误；不含患者信息）。

    示例：opsctl jobs history --job consult.expire_unanswered --status failed --json
    """
    c = container()
    c.uow()
    render(runner.history(c, job_name=job_name, status=status, limit=limit), _RUN_COLUMNS, choose(fmt, as_json),
           title="运行记录")


@app.command("serve")
def serve(
    poll: Annotated[float, typer.Option("--poll", min=0.05, max=300, help="检查到期排程的间隔秒数")] = 5.0,
) -> None:
    """运行调度进程：按排程触发任务，直到收到 SIGTERM/SIGINT（当前运行做完后退出）。

    可同时运行多个进程：每次触发在数据库中认领，同一任务不会重复运行。
    示例：opsctl jobs serve --poll 5
    """
    scheduler = _scheduler()
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    info(f"调度进程已启动（{scheduler.holder}），每 {poll:g} 秒检查一次；Ctrl+C 或 SIGTERM 退出")
    runs = scheduler.serve(stop, poll_seconds=poll)
    info(f"调度进程已退出，本次共运行 {runs} 次")
