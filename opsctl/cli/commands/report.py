"""opsctl report: operations reports (运营报表) in Excel and PDF, and their archive."""

from __future__ import annotations

from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from opsctl.cli.output import (
    Format,
    FormatOpt,
    JsonOpt,
    choose,
    emit_json,
    info,
    render,
)
from opsctl.cli.progress import progress
from opsctl.cli.state import container, operator, state
from reports.domain.periods import Grain, Period, last_complete
from reports.domain.suggestions import Rules
from reports.metrics.catalogue import REGISTRY
from reports.metrics.registry import DIMENSIONS
from reports.services.collect import ReportKind, ReportSpec

app = typer.Typer(help="运营报表：月报、季报、年报、科室分析和专科报告（Excel + PDF + 指标 CSV），以及按期归档。\n\n"
                       "示例：opsctl report build monthly --period 2026-10 --json", no_args_is_help=True)


class Kind(StrEnum):
    monthly = "monthly"
    quarterly = "quarterly"
    annual = "annual"
    department = "department"
    specialty = "specialty"


class ArchiveKind(StrEnum):
    monthly = "monthly"
    quarterly = "quarterly"
    annual = "annual"


GRAIN_OF = {"monthly": Grain.MONTH, "quarterly": Grain.QUARTER, "annual": Grain.YEAR}


def _rules() -> Rules:
    r = state().settings.reports
    return Rules(drop_share=r.drop_share, far_below=r.far_below, channel_min_base=r.channel_min_base)


def _period(kind: str, text: str | None) -> Period:
    c = container()
    grain = GRAIN_OF.get(kind)
    if text is None:
        return last_complete(c.clock.now(), grain or Grain.MONTH)
    return Period.parse(text, grain)


@app.command("build")
def build(
    kind: Annotated[Kind, typer.Argument(help="报表类型：monthly 月报、quarterly 季报、annual 年报、department 科室分析、specialty 专科报告")],
    period: Annotated[str | None, typer.Option("--period", help="期间：2026-10、2026Q4 或 2026；默认上一个完整期间")] = None,
    dept: Annotated[str | None, typer.Option("--dept", help="科室编码（department 与 specialty 必填）")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="输出目录；默认 <数据目录>/reports/out")] = None,
    as_json: JsonOpt = False,
) -> None:
    """生成一份运营报表：PDF（封面、管理摘要、图表、分项表格、优化建议、页码）、Excel（摘要与原生图表、各模块分表、明细）
    和指标数据 CSV；含环比、同比、与配置目标对比，建议均注明依据。--json 输出文件路径和核心指标。

    示例：opsctl report build monthly --period 2026-10 --json
    示例：opsctl report build department --dept CARD --period 2026Q4
    """
    c = container()
    spec = ReportSpec(ReportKind(kind.value), _period(kind.value, period), dept)
    settings = state().settings
    out_dir = out or settings.data_dir / "reports" / "out"
    from reports.services.build import build as build_report  # matplotlib, WeasyPrint: only when building
    from reports.services.build import total_steps

    with progress(f"生成{spec.kind.label}", total=total_steps(spec)) as advance:
        built = build_report(c.uow(), operator(), spec, out_dir, targets=settings.reports.targets, rules=_rules(),
                             advance=lambda label: advance(1, description=f"计算：{label}"))
    if as_json:
        emit_json({"title": built.title, "kind": built.kind, "period": built.period, "department": built.department,
                   "pdf": str(built.pdf), "xlsx": str(built.xlsx), "csv": str(built.csv), "pages": built.pages,
                   "headlines": [asdict(h) for h in built.headlines], "suggestions": list(built.suggestions)})
        return
    info(f"{built.title}：PDF {built.pages} 页")
    render([{"label": h.label, "display": h.display, "mom": h.mom, "yoy": h.yoy} for h in built.headlines],
           [("label", "指标"), ("display", "本期"), ("mom", "环比"), ("yoy", "同比")], Format.table, title=built.title)
    for path in (built.pdf, built.xlsx, built.csv):
        typer.echo(str(path))


@app.command("archive")
def archive(
    kind: Annotated[ArchiveKind, typer.Argument(help="monthly、quarterly 或 annual")],
    period: Annotated[str | None, typer.Option("--period", help="期间；默认上一个完整期间（定时任务的做法）")] = None,
    as_json: JsonOpt = False,
) -> None:
    """生成并归档全院报表到配置的归档目录（YYYY/MM、YYYY/Qn、YYYY/annual），附 SHA-256 清单 manifest.json；
    重复生成会整体原子替换，并保留上一份清单。与定时任务调用同一函数。

    示例：opsctl report archive monthly --period 2026-10
    """
    c = container()
    settings = state().settings
    p = _period(kind.value, period)
    with progress(f"归档 {p.label}", total=None):
        from reports.services import archive as archiving  # builds reports: matplotlib, WeasyPrint

        result = archiving.archive_period(c.uow(), c.clock.now(), archive_root=settings.report_archive_dir, period=p,
                                          targets=settings.reports.targets, rules=_rules())
    if as_json:
        emit_json(result)
        return
    if result.skipped:
        info(f"{p.label} 正在由另一进程归档，本次跳过")
    else:
        info(f"已归档 {result.files} 个文件到 {result.directory}" + ("（已替换旧版本，旧清单保留为 manifest.previous.json）"
                                                                     if result.replaced else ""))


@app.command("metrics")
def metrics(fmt: FormatOpt = Format.table, as_json: JsonOpt = False) -> None:
    """列出指标注册表：每个指标的键、中文名、单位、所属模块、汇总方式、可用维度与优劣方向。

    示例：opsctl report metrics --json
    """
    rows = [{"key": m.key, "label": m.label, "module": m.module, "unit": m.unit.value, "agg": m.agg.value,
             "dimensions": "、".join(DIMENSIONS[d] for d in m.dimensions),
             "better": {"up": "越高越好", "down": "越低越好", None: ""}[m.better]} for m in REGISTRY]
    render(rows, [("key", "键"), ("label", "指标"), ("module", "模块"), ("unit", "单位"), ("agg", "汇总"),
                  ("dimensions", "维度"), ("better", "方向")], choose(fmt, as_json), title="指标注册表")
