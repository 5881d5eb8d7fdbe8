"""The trend charts drawn ahead (while the figures are still being computed) are exactly the ones
the PDF shows: ``TrendCharts.offer`` makes the same choice as ``render_html``, so the PDF draws
none itself, and a chart not drawn ahead is drawn when the HTML is rendered."""

from __future__ import annotations

from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import pytest

from reports.adapters import pdf
from reports.domain.periods import Period
from reports.services.collect import MetricLine, ReportData, ReportKind, ReportSpec

SERIES = tuple((f"{m}月", float(m)) for m in range(1, 13))


def _line(key: str, module: str, *, headline: bool = False, value: float | None = 1.0, series: bool = True) -> MetricLine:
    return MetricLine(key, f"指标{key}", module, "count", "", "up", headline, value, 1.0, 1.0, None,
                      (("9月", 1.0), ("10月", value)), SERIES if series else ())


LINES = (
    _line("h1", "问诊服务", headline=True), _line("a2", "问诊服务"), _line("a3", "问诊服务", value=None),
    _line("h2", "问诊服务", headline=True, series=False), _line("a4", "问诊服务"), _line("a5", "问诊服务"),
    _line("a6", "问诊服务"), _line("h3", "处方", headline=True), _line("h4", "处方", headline=True),
    _line("h5", "收入", headline=True, value=None), _line("h6", "收入", headline=True), _line("b1", "收入"),
)


def _report() -> ReportData:
    return ReportData(ReportSpec(ReportKind.MONTHLY, Period.parse("2026-10")), "示例医院2026年10月运营月报", "副标题", "示例医院",
                      None, datetime(2026, 11, 2, tzinfo=UTC), LINES, (), (), (), "2026年9月", "2025年10月",
                      tuple(dict.fromkeys(m.module for m in LINES)))


def _drawn(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(pdf, "_trend", lambda m: calls.append(m.key) or f"<img alt='{m.key}'>")
    return calls


def _now(fn: Any, *args: Any) -> Future[str]:
    future: Future[str] = Future()
    future.set_result(fn(*args))
    return future


def test_the_charts_drawn_ahead_are_the_ones_the_pdf_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _drawn(monkeypatch)
    pdf.render_html(_report())
    shown = list(calls)
    # the first four headlines with a series; per module the first four with a series and a value
    assert shown == ["h1", "h3", "h4", "h5", "a2", "a4", "a5", "h6", "b1"]
    calls.clear()
    ahead = pdf.TrendCharts(_now)
    for line in LINES:
        ahead.offer(line)
    assert sorted(calls) == sorted(shown)
    calls.clear()
    html = pdf.render_html(_report(), ahead=ahead)
    assert calls == [] and all(f"alt='{key}'" in html for key in shown)


def test_a_chart_not_drawn_ahead_is_drawn_with_the_html(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _drawn(monkeypatch)
    ahead = pdf.TrendCharts(_now)
    for line in LINES[:3]:
        ahead.offer(line)
    calls.clear()
    html = pdf.render_html(_report(), ahead=ahead)
    assert "h1" not in calls and "a2" not in calls and "b1" in calls and "alt='h1'" in html
