"""A ratio or mean resting on fewer rows than its metric's ``min_base`` drives no suggestion."""

from __future__ import annotations

from reports.domain.suggestions import MetricFacts, suggest


def _rate(bases: tuple[int | None, ...], min_base: int = 20, **kw: object) -> MetricFacts:
    return MetricFacts("push_delivery_rate", "推送送达率", "ratio", "up", "清理无效 openid", 0.5, previous=1.0,
                       history=(0.9, 0.8, 1.0, 0.5), history_labels=("7月", "8月", "9月", "10月"),
                       bases=bases, min_base=min_base, **kw)  # type: ignore[arg-type]


def test_a_drop_needs_enough_rows_in_both_periods() -> None:
    assert [s.rule for s in suggest([_rate((30, 30, 30, 30))])] == ["drop"]
    assert suggest([_rate((30, 30, 1, 30))]) == []  # last month: one delivery
    assert suggest([_rate((30, 30, 30, 6))]) == []  # this month: six
    assert [s.rule for s in suggest([_rate((30, 30, 1, 6), min_base=0)])] == ["drop"]  # no threshold: judged
    assert [s.rule for s in suggest([_rate(())])] == ["drop"]  # bases unknown: judged as before


def test_a_target_and_a_trend_need_enough_rows_too() -> None:
    assert [s.rule for s in suggest([_rate((30, 30, 30, 30), target=0.9)])] == ["target"]
    assert suggest([_rate((30, 30, 30, 5), target=0.9)]) == []
    falling = MetricFacts("r", "率", "ratio", "up", "行动", 0.5, previous=0.55, history=(0.7, 0.6, 0.55, 0.5),
                          bases=(30, 30, 30, 30), min_base=20)
    assert [s.rule for s in suggest([falling])] == ["trend"]
    thin = MetricFacts("r", "率", "ratio", "up", "行动", 0.5, previous=0.55, history=(0.7, 0.6, 0.55, 0.5),
                       bases=(30, 30, 3, 30), min_base=20)
    assert suggest([thin]) == []
