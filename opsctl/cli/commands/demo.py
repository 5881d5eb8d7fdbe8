"""opsctl demo: the demo hospital."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated

import typer

from clinical_core.domain.time import SHANGHAI, FixedClock
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, emit_json, info, render
from opsctl.cli.progress import progress
from opsctl.cli.state import container, state
from opsctl.demo.service import make_plan, seed_demo
from opsctl.wiring import Container

app = typer.Typer(help="演示医院：生成演示数据、运行模拟月。\n\n示例：opsctl demo run", no_args_is_help=True)

PatientsOpt = Annotated[int, typer.Option("--patients", help="患者人数")]
DaysOpt = Annotated[int, typer.Option("--days", help="模拟天数（截止昨天，或 --until 指定的日期）")]
SeedOpt = Annotated[int, typer.Option("--seed", help="随机种子：同一种子生成同样的数据")]
UntilOpt = Annotated[
    datetime | None, typer.Option("--until", formats=["%Y-%m-%d"], help="模拟的最后一天（默认昨天）")
]


@app.command("seed")
def seed(
    patients: PatientsOpt = 2000,
    days: DaysOpt = 30,
    seed: SeedOpt = 7,
    until: UntilOpt = None,
    reset: Annotated[bool, typer.Option("--reset", help="先清空数据库（删除全部数据）")] = False,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """生成确定性的演示医院：科室、医生（含职称资质）、药品目录、患者（个人信息加密）、关注者、线下就诊记录。

    示例：opsctl demo seed --patients 2000 --days 30 --seed 7 --json
    """
    c = container()
    plan = make_plan(c, patients, days, seed, until.date() if until else None)
    with progress("生成演示数据", total=None) as advance:
        result = seed_demo(c, plan, reset=reset, on_rows=lambda _table, n: advance(n))
    if choose(fmt, as_json) is Format.json:
        emit_json({"patients": plan.patients, "days": plan.days, "seed": plan.seed,
                   "start": plan.start, "until": plan.until, "rows": result.counts, "total_rows": result.rows,
                   "seconds": round(result.seconds, 3)})
        return
    info(f"已生成 {result.rows} 行（{plan.start} 至 {plan.until}），用时 {result.seconds:.1f} 秒")
    render([{"table": k, "rows": v} for k, v in result.counts.items()], [("table", "表"), ("rows", "行数")],
           choose(fmt, as_json), title="演示数据")


@app.command("run")
def run(
    patients: PatientsOpt = 2000,
    days: DaysOpt = 30,
    seed: SeedOpt = 7,
    until: UntilOpt = None,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """清空并生成演示数据，再用模拟时钟把现有的全部功能跑一个月，最后打印汇总表。

    示例：opsctl demo run --patients 500 --days 30
    """
    real = container()
    plan = make_plan(real, patients, days, seed, until.date() if until else None)
    clock = FixedClock(datetime.combine(plan.start, time(8), tzinfo=SHANGHAI).astimezone(UTC))
    from opsctl.demo import run as demo_run  # imports every module the demo drives: only for this command

    simulated = Container(state().settings, clock=clock)
    try:
        with progress("演示", total=len(demo_run.STEPS)) as advance:
            summary = demo_run.run_demo(simulated, clock, plan, advance)
    finally:
        simulated.close()
    render(summary, [("metric", "指标"), ("value", "数值"), ("note", "说明")], choose(fmt, as_json),
           title=f"演示汇总（{plan.start} 至 {plan.until}）")
