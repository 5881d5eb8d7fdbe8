"""The PDF report: jinja2 HTML rendered by WeasyPrint, CJK fonts from the system (Noto Sans CJK SC,
WenQuanYi Micro Hei as fallback) in the body and in the page margin boxes, matplotlib charts
inline as PNG. Cover, one-page manager summary, one section per module, breakdowns, suggestions,
page numbers ("第 n 页 / 共 m 页")."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from datetime import timedelta
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from clinical_core.domain.time import SHANGHAI
from reports.adapters.charts import ranking_chart, trend_chart
from reports.domain.formatting import fmt, fmt_change
from reports.domain.suggestions import DEFAULT_RULES, Rules
from reports.metrics.registry import DIMENSIONS
from reports.services.collect import MetricLine, ReportData

FONTS = '"Noto Sans CJK SC", "WenQuanYi Micro Hei", sans-serif'
RULE_NAMES = {"target": "未达目标", "drop": "明显变差", "trend": "连续变差", "channel": "渠道偏低"}
MAX_ROWS = 15


def _tone(m: MetricLine, change: float | None) -> str:
    if change is None or m.better is None or change == 0:
        return ""
    good = (change > 0) == (m.better == "up")
    return "up" if good else "down"


def _css_string(text: object) -> Markup:
    """Text inside a CSS string literal (the page margin boxes)."""
    return Markup(str(text).replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3C ").replace("\n", " "))


MIN_POINTS = 6


def _trimmed(points: tuple[tuple[str, float | int | None], ...]) -> tuple[tuple[str, float | int | None], ...]:
    """Leading months without data (before the service started) are left off, keeping six at least."""
    first = next((i for i, (_, v) in enumerate(points) if v), len(points))
    return points[min(first, max(0, len(points) - MIN_POINTS)):]


def _trend(m: MetricLine) -> str:
    return trend_chart(m.label, m.unit, _trimmed(m.series), bar=m.unit in ("count", "fen"))


SUMMARY_CHARTS = MODULE_CHARTS = 4


class TrendCharts:
    """The trend charts drawn ahead, while the report's figures are still being computed.

    ``offer`` is given each metric line as it is computed and submits the drawing of its chart
    (to a worker) when the report will show it: one of the first four headlines with a series,
    or one of the first four lines of its module with a series and a value (the same choice as
    ``render_html``'s). ``render_html`` takes the drawn charts and draws any other itself.
    """

    def __init__(self, submit: Callable[..., Future[str]]) -> None:
        self._submit = submit
        self._futures: dict[str, Future[str]] = {}
        self._headlines = 0
        self._per_module: Counter[str] = Counter()

    def offer(self, m: MetricLine) -> None:
        wanted = False
        if m.headline and m.series and self._headlines < SUMMARY_CHARTS:
            self._headlines += 1
            wanted = True
        if m.series and m.value is not None and self._per_module[m.module] < MODULE_CHARTS:
            self._per_module[m.module] += 1
            wanted = True
        if wanted and m.key not in self._futures:
            self._futures[m.key] = self._submit(_trend, m)

    def take(self, m: MetricLine) -> str | None:
        future = self._futures.get(m.key)
        return None if future is None else future.result()


def render_html(report: ReportData, rules: Rules = DEFAULT_RULES, ahead: TrendCharts | None = None) -> str:
    env = Environment(loader=PackageLoader("reports", "templates"), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined)
    env.filters["css"] = _css_string
    headlines = list(report.headlines) or list(report.lines[:6])
    drawn: dict[str, str] = {}  # a headline's chart appears on the summary and in its module: drawn once

    def chart(m: MetricLine) -> str:
        if m.key not in drawn:
            drawn[m.key] = (ahead and ahead.take(m)) or _trend(m)
        return drawn[m.key]

    summary = [chart(m) for m in [m for m in headlines if m.series][:SUMMARY_CHARTS]]
    module_charts = {module: [chart(m) for m in [m for m in report.in_module(module)
                                                 if m.series and m.value is not None][:MODULE_CHARTS]]
                     for module in report.modules}
    breakdown_charts = []
    for b in report.breakdowns[:1]:
        if b.rows:
            first = b.metrics[0]
            breakdown_charts.append(ranking_chart(f"{first.label}（{DIMENSIONS[b.dimension]}）", first.unit,
                                                  [(label, values[0]) for label, values in b.rows]))
    if report.channels:
        flagged = {s.evidence.split("「", 1)[1].split("」", 1)[0] for s in report.suggestions if s.rule == "channel"}
        breakdown_charts.append(ranking_chart("各渠道扫码关注→首次问诊转化率（红色：远低于其他渠道）", "ratio",
                                              [(c.channel, c.rate) for c in report.channels], highlight=flagged))
    _, end = report.spec.period.bounds()
    return env.get_template("report.html.j2").render(
        r=report, fonts=FONTS, headlines=headlines, summary_charts=summary, module_charts=module_charts,
        breakdown_charts=breakdown_charts, rule_names=RULE_NAMES, dimension_names=DIMENSIONS, max_rows=MAX_ROWS,
        rules=rules, generated=report.generated_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
        last_day=(end.astimezone(SHANGHAI) - timedelta(days=1)).date(),
        tone=_tone, change=fmt_change, value=lambda m, v: fmt(v, m.unit, m.unit_label),
        pct=lambda v: fmt(v, "ratio"))


_WARM_UP = ('<html lang="zh-CN" style=\'font-family: {fonts}\'><p>预热 <b>中文字体</b> 0123456789</p><img alt="" '
            'src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==">'
            '</html>')


def warm_up() -> None:
    """Import WeasyPrint and lay out and write a one-line document in the report's fonts, regular
    and bold, with an image: the first document of a process pays for loading the CJK fonts
    (tens of megabytes) and WeasyPrint's style sheets, which the report service lets a worker do
    while the figures are computed."""
    from weasyprint import HTML

    HTML(string=_WARM_UP.format(fonts=FONTS)).render().write_pdf(io.BytesIO())


def write_pdf(report: ReportData, path: Path, rules: Rules = DEFAULT_RULES, ahead: TrendCharts | None = None) -> int:
    """Write the PDF; returns its number of pages. ``ahead``: charts drawn while collecting."""
    from weasyprint import HTML

    path.parent.mkdir(parents=True, exist_ok=True)
    document = HTML(string=render_html(report, rules, ahead)).render()
    document.write_pdf(str(path))
    return len(document.pages)
