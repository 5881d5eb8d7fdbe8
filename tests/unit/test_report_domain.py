"""Reporting periods and the suggestion rules (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clinical_core.domain.errors import InvalidInput
from reports.domain.formatting import fmt, relative_change
from reports.domain.periods import Grain, Period, last_complete
from reports.domain.suggestions import ChannelRate, MetricFacts, Rules, suggest


def test_periods_parse_and_bound_in_shanghai_time() -> None:
    october = Period.parse("2026-10")
    assert october.bounds() == (datetime(2026, 9, 30, 16, tzinfo=UTC), datetime(2026, 10, 31, 16, tzinfo=UTC))
    q4 = Period.parse("2026Q4")
    assert (q4.grain, q4.first_day.month, q4.end_day.year) == (Grain.QUARTER, 10, 2027)
    assert [m.code for m in q4.months()] == ["2026-10", "2026-11", "2026-12"]
    assert Period.parse("2026").bounds()[0] == datetime(2025, 12, 31, 16, tzinfo=UTC)
    assert Period.parse("2026-01").previous().code == "2025-12"
    assert Period.parse("2026Q1").previous().code == "2025Q4"
    assert october.year_ago().code == "2025-10" and october.history(13)[0] == october.year_ago()
    assert q4.archive_dir() == "2026/Q4" and october.archive_dir() == "2026/10" and Period.parse("2026").archive_dir() == "2026/annual"
    for bad, grain in (("2026-13", None), ("2026Q5", None), ("10/2026", None), ("2026Q4", Grain.MONTH)):
        with pytest.raises(InvalidInput):
            Period.parse(bad, grain)


def test_last_complete_period_follows_the_shanghai_calendar() -> None:
    first_of_month_morning = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # 1 Nov 07:00 in Shanghai
    assert last_complete(first_of_month_morning, Grain.MONTH).code == "2026-10"
    assert last_complete(datetime(2027, 1, 1, 0, 0, tzinfo=UTC), Grain.QUARTER).code == "2026Q4"
    assert last_complete(datetime(2027, 1, 2, 0, 0, tzinfo=UTC), Grain.YEAR).code == "2026"


def _m(**kw: object) -> MetricFacts:
    base = {"key": "first_response_minutes", "label": "首次响应时间中位数", "unit": "minutes", "better": "down",
                "action": "排出值班表", "current": 40.0}
    return MetricFacts(**{**base, **kw})  # type: ignore[arg-type]


def test_target_rule_names_value_and_target() -> None:
    (s,) = suggest([_m(target=30.0)])
    assert s.rule == "target" and "40.0 分钟" in s.sentence and "目标 30.0 分钟" in s.sentence and "排出值班表" in s.sentence
    assert suggest([_m(target=45.0)]) == []  # target met: no suggestion


def test_drop_rule_needs_a_previous_value_and_the_wrong_direction() -> None:
    (s,) = suggest([_m(key="consultations", label="问诊量", unit="count", better="up", current=70, previous=100)])
    assert s.rule == "drop" and "环比下降 30.0%" in s.sentence and "上期 100 次" in s.sentence
    assert suggest([_m(key="consultations", label="问诊量", unit="count", better="up", current=130, previous=100)]) == []
    assert suggest([_m(key="consultations", label="问诊量", unit="count", better="up", current=90, previous=100)]) == []
    assert suggest([_m(key="consultations", label="问诊量", unit="count", better="up", current=70, previous=None)]) == []


def test_trend_rule_needs_three_consecutive_worsening_periods() -> None:
    (s,) = suggest([_m(current=36.0, previous=35.0, history=(20.0, 30.0, 35.0, 36.0), history_labels=("7月", "8月", "9月", "10月"))])
    assert s.rule == "trend" and "连续3期上升" in s.sentence and "8月 30.0 分钟 → 9月 35.0 分钟 → 10月 36.0 分钟" in s.sentence
    assert suggest([_m(current=36.0, previous=35.0, history=(20.0, 36.0, 35.0, 36.0))]) == []
    assert suggest([_m(current=36.0, previous=35.0, history=(None, 35.0, 36.0))]) == []  # missing evidence: silent


def test_metric_without_direction_or_action_is_never_judged() -> None:
    assert suggest([_m(better=None, target=1.0)]) == []
    assert suggest([_m(action="", target=1.0)]) == []


def test_channel_far_below_the_others() -> None:
    conv = _m(key="channel_conversion", label="转化率", unit="ratio", better="up", current=0.3, action="更换落地页")
    channels = [ChannelRate("poster", 0.40, 40, 100), ChannelRate("cards", 0.30, 30, 100), ChannelRate("event", 0.35, 21, 60),
                ChannelRate("bad", 0.10, 5, 50), ChannelRate("tiny", 0.0, 0, 3)]
    found = suggest([], channels, conv, Rules(channel_min_base=20))
    assert [s.evidence.split("「")[1].split("」")[0] for s in found] == ["bad"]  # tiny has too few followers
    assert "10.0%（5/50 人）" in found[0].sentence and "中位数 35.0%" in found[0].sentence
    assert suggest([], channels[:2] + channels[3:4], conv, Rules(far_below=0.2)) == []


def test_formatting() -> None:
    assert fmt(123456, "fen") == "1,234.56 元" and fmt(0.256, "ratio") == "25.6%" and fmt(None, "count") == "—"
    assert relative_change(120, 100) == pytest.approx(0.2) and relative_change(1, 0) is None


def test_chart_series_drop_leading_empty_months_but_keep_six() -> None:
    from reports.adapters.pdf import _trimmed

    points = tuple((f"{i}月", v) for i, v in enumerate([None, 0, 0, 0, 0, 0, 0, 0, 3, 5, 0, 7], start=1))
    assert [label for label, _ in _trimmed(points)] == ["7月", "8月", "9月", "10月", "11月", "12月"]
    full = tuple((f"{i}月", 1) for i in range(1, 13))
    assert _trimmed(full) == full
