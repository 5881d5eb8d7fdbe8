"""opsctl funnel: conversion funnels per channel."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated

import typer

from campaigns.services import funnels as service
from clinical_core.domain.time import SHANGHAI
from opsctl.cli.output import Format, FormatOpt, JsonOpt, choose, emit_json, render
from opsctl.cli.state import container, operator

app = typer.Typer(help="渠道转化漏斗：扫码 → 关注 → 绑定健康卡 → 首次问诊 → 首张处方 / 视频问诊 / 护理 → 窗口内复诊。\n\n示例：opsctl funnel show --channel dept-cardio --json",
                  no_args_is_help=True)
DateOpt = Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])]
COLUMNS = [("channel", "渠道"), ("label", "阶段"), ("count", "人数"), ("conversion_from_previous", "阶段转化率"),
           ("conversion_overall", "总转化率"), ("drop_off", "流失"), ("median", "关注后中位天数"), ("note", "说明")]


@app.command("show")
def show(
    channel: Annotated[str | None, typer.Option("--channel", help="只看一个渠道（编码或场景值）")] = None,
    start: DateOpt = None,
    end: DateOpt = None,
    repeat_days: Annotated[int, typer.Option("--repeat-days", min=1, max=365, help="复诊窗口：首次问诊后多少天内再次问诊")] = 30,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """按渠道及包裹卡批次显示转化漏斗（首次触达归因）：各阶段人数、阶段转化率（首张处方、视频问诊、护理、复诊均相对首次问诊）、
    流失与关注后中位天数；尚未上线的阶段记为 0 并注明。--start/--end 为北京时间日期，含首尾。

    示例：opsctl funnel show --channel dept-cardio --start 2026-10-01 --end 2026-10-31 --repeat-days 30 --json
    """
    c = container()
    now = c.clock.now()
    first = (start.date() if start else (now - timedelta(days=30)).astimezone(SHANGHAI).date())
    last = (end.date() if end else now.astimezone(SHANGHAI).date())
    lo = datetime.combine(first, time(0), tzinfo=SHANGHAI).astimezone(UTC)
    hi = datetime.combine(last + timedelta(days=1), time(0), tzinfo=SHANGHAI).astimezone(UTC)
    funnels = service.funnel(c.uow(), operator(), lo, hi, channel, repeat_days)
    if choose(fmt, as_json) is Format.json:
        emit_json({"from": first, "to": last, "repeat_days": repeat_days, "channels": funnels})
        return
    rows = [{"channel": (f.channel + ("" if f.parcels is None else f"（{f.parcels} 个包裹）")) if i == 0 else "",
             "label": s.label, "count": s.count,
             "conversion_from_previous": _pct(s.conversion_from_previous), "conversion_overall": _pct(s.conversion_overall),
             "drop_off": s.drop_off, "note": s.note, "median": "" if s.median_days is None else s.median_days}
            for f in funnels for i, s in enumerate(f.stages)]
    render(rows, COLUMNS, choose(fmt, as_json), title=f"转化漏斗（{first} 至 {last}）", empty="该时段没有渠道数据")


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


@app.command("retention")
def retention(
    channel: Annotated[str | None, typer.Option("--channel", help="只看一个渠道（编码或场景值）")] = None,
    start: DateOpt = None,
    end: DateOpt = None,
    weeks: Annotated[int, typer.Option(min=1, max=52, help="观察周数")] = 8,
    fmt: FormatOpt = Format.table,
    as_json: JsonOpt = False,
) -> None:
    """按关注周分组的留存矩阵：每个周队列在第 k 周仍关注的比例（空白表示尚未观察到）。

    示例：opsctl funnel retention --start 2026-09-01 --end 2026-10-31 --weeks 8 --json
    """
    c = container()
    now = c.clock.now()
    first = (start.date() if start else (now - timedelta(days=56)).astimezone(SHANGHAI).date())
    last = (end.date() if end else now.astimezone(SHANGHAI).date())
    lo = datetime.combine(first, time(0), tzinfo=SHANGHAI).astimezone(UTC)
    hi = datetime.combine(last + timedelta(days=1), time(0), tzinfo=SHANGHAI).astimezone(UTC)
    rows = service.weekly_retention(c.uow(), operator(), lo, hi, channel, weeks)
    if choose(fmt, as_json) is Format.json:
        emit_json({"from": first, "to": last, "weeks": weeks, "cohorts": rows})
        return
    columns = [("cohort", "关注周"), ("size", "人数")] + [(f"w{k}", f"第{k}周") for k in range(weeks + 1)]
    table = [{"cohort": r.cohort, "size": r.size, **{f"w{k}": _pct(v) for k, v in enumerate(r.retained)}} for r in rows]
    render(table, columns, choose(fmt, as_json), title=f"周留存（{first} 至 {last}）", empty="该时段没有新关注者")
