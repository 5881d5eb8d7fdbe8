"""opsctl visit: 视频复诊 for staff — lists, details, hospital cancellation, record
history, refunds and the time-driven work (release unpaid, no-shows, reminders)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

import typer

from clinical_core.domain.money import format_fen
from clinical_core.domain.time import SHANGHAI
from clinical_core.domain.video_visit import VisitStatus
from clinical_core.services import (
    video_booking,
    video_jobs,
    video_ledger,
    video_records,
    video_visits,
)
from opsctl.cli.output import (
    Format,
    FormatOpt,
    JsonOpt,
    choose,
    info,
    render,
    render_object,
)
from opsctl.cli.state import container, operator

app = typer.Typer(help="视频复诊（网络门诊）：预约列表、详情、医院取消、病历版本、退款与定时任务。\n\n"
                       "示例：opsctl visit list --status paid", no_args_is_help=True)

VISIT_COLUMNS = [("public_id", "预约"), ("status", "状态代码"), ("status_label", "状态"), ("patient_name", "患者"), ("doctor_name", "医生"),
                 ("department", "科室"), ("starts", "就诊时间"), ("price", "挂号费"), ("payment_state", "支付"),
                 ("check_mode", "复诊判定"), ("followup", "复诊依据"), ("end_reason", "结束原因")]
RECORD_COLUMNS = [("version", "版本"), ("author_name", "医生"), ("created_at", "时间"), ("text", "内容")]


def _row(v: video_visits.VisitView) -> dict[str, object]:
    return {**{k: getattr(v, k) for k in v.__dataclass_fields__},
            "starts": v.starts_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"), "price": format_fen(v.price_fen),
            "followup": "；".join(v.followup_diagnoses)}


@app.command("list")
def list_(
    status: Annotated[VisitStatus | None, typer.Option(help="状态：booked、paid、waiting、in_call、ended、no_show、"
                                                            "cancelled、terminated")] = None,
    on: Annotated[str | None, typer.Option("--date", help="就诊日期（北京时间）")] = None,
    limit: Annotated[int, typer.Option(help="最多条数")] = 100,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """列出视频复诊预约（患者姓名脱敏）。

    示例：opsctl visit list --date 2026-11-05 --json
    """
    day = datetime.combine(date.fromisoformat(on), time(0), tzinfo=SHANGHAI).astimezone(UTC) if on else None
    rows = video_visits.list_visits(container().uow(), operator(), status=status, day=day, limit=limit)
    render([_row(v) for v in rows], VISIT_COLUMNS, choose(fmt, as_json), title="视频复诊")


@app.command("show")
def show(visit: Annotated[str, typer.Argument(help="预约编号（vv_...）")], fmt: FormatOpt = Format.table,
         as_json: JsonOpt = False) -> None:
    """一次视频复诊的详情（查看留痕）。

    示例：opsctl visit show vv_xxx --json
    """
    view = video_visits.get_visit(container().uow(), operator(), visit)
    labels = dict(VISIT_COLUMNS) | {"paid_fen": "已付(分)", "refunded_fen": "已退(分)", "his_visit_no": "线下就诊号",
                                    "guests": "第三方", "documents": "病历资料"}
    render_object(_row(view), labels, choose(fmt, as_json), title="视频复诊")


@app.command("cancel")
def cancel(visit: Annotated[str, typer.Argument(help="预约编号（vv_...）")], fmt: FormatOpt = Format.table,
           as_json: JsonOpt = False) -> None:
    """医院取消一次预约（停诊、医生临时不能出诊）：全额退款，号源线上线下同时释放。

    示例：opsctl visit cancel vv_xxx
    """
    c = container()
    view = video_booking.cancel_visit(c.uow(), operator(), c.his_schedule, visit)
    render_object(_row(view), dict(VISIT_COLUMNS), choose(fmt, as_json), title="已取消")


@app.command("records")
def records(visit: Annotated[str, typer.Argument(help="预约编号（vv_...）")], fmt: FormatOpt = Format.table,
            as_json: JsonOpt = False) -> None:
    """病历的全部版本（R38：每次修改都保留，含医生与时间；查看留痕）。

    示例：opsctl visit records vv_xxx --json
    """
    rows = video_records.record_history(container().uow(), operator(), visit)
    render(rows, RECORD_COLUMNS, choose(fmt, as_json), title="病历版本")


@app.command("settle-refunds")
def settle_refunds(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """把待退款的挂号费发往支付平台（失败的记录原因并在下次重试）。

    示例：opsctl visit settle-refunds
    """
    c = container()
    result = video_ledger.settle_refunds(c.uow(), c.payments)
    render_object({"succeeded": result.succeeded, "failed": result.failed}, {"succeeded": "成功", "failed": "失败"},
                  choose(fmt, as_json), title="挂号费退款")


@app.command("sweep")
def sweep(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """释放超时未支付的预约，并把过时未签到的记为爽约（与定时任务相同）。

    示例：opsctl visit sweep --json
    """
    c = container()
    now = c.clock.now()
    released = video_jobs.release_unpaid(c.uow(), now, his_schedule=c.his_schedule)
    absent = video_jobs.mark_no_shows(c.uow(), now)
    render_object({"released": released.processed, "no_shows": absent.processed},
                  {"released": "释放未支付", "no_shows": "记为爽约"}, choose(fmt, as_json), title="视频复诊整理")


@app.command("remind")
def remind(
    lead_minutes: Annotated[int, typer.Option("--lead-minutes", help="提前多少分钟提醒")] = 60,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只列出将提醒的预约，不发送")] = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """就诊提醒：向即将就诊的患者发送微信模板消息（每次预约只发一次，失败的下次重试）。

    示例：opsctl visit remind --lead-minutes 60 --dry-run
    """
    c = container()
    now = c.clock.now()
    if dry_run:
        due = video_jobs.reminders_due(c.uow(), now, lead_minutes=lead_minutes)
        info(f"演练：将提醒 {len(due)} 个预约，未发送")
        render([{"visit": v} for v in due], [("visit", "预约")], choose(fmt, as_json), title="待提醒")
        return
    result = video_jobs.send_reminders(c.uow(), now, sender=c.video_reminders, lead_minutes=lead_minutes)
    render_object({"sent": result.processed, "failed": result.failed}, {"sent": "已发送", "failed": "失败"},
                  choose(fmt, as_json), title="就诊提醒")
