"""Demo step: the operations team's main job on the embedded defaults — the monthly report of the
simulated month, built from the month's data and archived in the designated location."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from clinical_core.domain.time import SHANGHAI
from opsctl.demo.context import DemoContext
from reports.domain.periods import Grain, Period
from reports.domain.suggestions import Rules
from reports.services.archive import archive_period, verify


def step_monthly_report(ctx: DemoContext) -> None:
    """运营月报：生成模拟月份的月报并归档"""
    middle = ctx.plan.start + timedelta(days=(ctx.plan.days - 1) // 2)
    period = Period(middle.year, Grain.MONTH, middle.month)  # the calendar month most of the simulation lies in
    _, end = period.bounds()
    ctx.clock.current = max(ctx.clock.current, datetime.combine(ctx.plan.until + timedelta(days=1), time(8),
                                                                tzinfo=SHANGHAI).astimezone(UTC))
    settings = ctx.container.settings
    r = settings.reports
    result = archive_period(ctx.container.uow(), ctx.clock.now(), archive_root=settings.report_archive_dir, period=period,
                            targets=r.targets, rules=Rules(r.drop_share, r.far_below, r.channel_min_base))
    manifest = verify(settings.report_archive_dir / period.archive_dir())
    pdf = next(f["name"] for f in manifest["files"] if f["name"].endswith(".pdf"))
    ctx.add("运营月报", manifest["title"], f"{manifest['pages']} 页 PDF + Excel + 指标 CSV，清单含 SHA-256")
    for key in ("consultations", "income_net_fen", "first_response_minutes"):
        headline = manifest["headlines"].get(key)
        if headline:
            ctx.add(f"月报·{headline['label']}", headline["display"], period.label)
    ctx.add("月报建议条数", len(manifest["suggestions"]), "每条注明指标、数值和比较对象")
    ctx.add("月报归档位置", f"{result.directory}/{pdf}", "定时任务每月 1 日 08:00 归档上月")
    if end > ctx.clock.now():
        ctx.add("说明", "所选月份尚未结束", "月报反映截至模拟最后一天的数据")
