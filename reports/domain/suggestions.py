"""优化建议: rules over metric values, each producing one Chinese sentence that names its evidence
(metric, value, comparison) and a concrete action. A rule that lacks the numbers it needs stays
silent: there is no suggestion without evidence.

Rules:
- ``target``: the period's value is on the wrong side of the configured target;
- ``drop``: month on month (or period on period) the value moved the wrong way by more than
  ``drop_share`` (20 % by default);
- ``trend``: three consecutive periods each worse than the one before;
- ``channel``: a channel with enough followers converting at less than ``far_below`` (half) of the
  median of the other channels.

A ratio or a mean computed over fewer than its metric's ``min_base`` rows (``bases``: the
denominator of each period in ``history``) is too little evidence: a rule that would use such a
period stays silent (a 1-of-1 delivery rate last month is no reason to act on this month's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import median

from reports.domain.formatting import fmt, fmt_change, relative_change


@dataclass(frozen=True, slots=True)
class MetricFacts:
    key: str
    label: str
    unit: str
    better: str | None  # "up" | "down" | None
    action: str
    current: float | int | None
    previous: float | int | None = None
    history: tuple[float | int | None, ...] = ()  # same-grain periods, oldest first, ending with current
    history_labels: tuple[str, ...] = ()
    target: float | None = None
    unit_label: str = "次"
    bases: tuple[int | None, ...] = ()  # denominators aligned with history (ratios and means); () = not known
    min_base: int = 0

    def enough(self, periods: int) -> bool:
        """Whether the last ``periods`` periods each rest on at least ``min_base`` rows."""
        if self.min_base <= 0 or not self.bases:
            return True
        tail = self.bases[-periods:]
        return len(tail) == periods and all((b or 0) >= self.min_base for b in tail)


@dataclass(frozen=True, slots=True)
class ChannelRate:
    channel: str
    rate: float | None
    converted: int
    base: int


@dataclass(frozen=True, slots=True)
class Rules:
    drop_share: float = 0.2
    far_below: float = 0.5
    channel_min_base: int = 20
    trend_periods: int = 3


DEFAULT_RULES = Rules()


@dataclass(frozen=True, slots=True)
class Suggestion:
    rule: str  # target | drop | trend | channel
    metric: str
    evidence: str
    action: str
    severity: int = 2  # 1 most urgent
    figures: tuple[float, ...] = field(default=())

    @property
    def sentence(self) -> str:
        return f"{self.evidence}。建议：{self.action}。"


def _worse(a: float, b: float, better: str) -> bool:
    """True when ``b`` is worse than ``a``."""
    return b < a if better == "up" else b > a


def suggest(metrics: Sequence[MetricFacts], channels: Sequence[ChannelRate] = (), channel_metric: MetricFacts | None = None,
            rules: Rules = DEFAULT_RULES, period_word: str = "环比") -> list[Suggestion]:
    found: list[Suggestion] = []
    for m in metrics:
        if m.better is None or not m.action:
            continue
        if m.target is not None and m.current is not None and m.enough(1) and _worse(m.target, m.current, m.better) and m.current != m.target:
            side = "低于" if m.better == "up" else "高于"
            found.append(Suggestion(
                "target", m.key, f"「{m.label}」本期为 {fmt(m.current, m.unit, m.unit_label)}，{side}目标 {fmt(m.target, m.unit, m.unit_label)}",
                m.action, 1, (float(m.current), float(m.target))))
            continue
        change = relative_change(m.current, m.previous)
        if (change is not None and m.previous is not None and m.current is not None and m.enough(2)
                and _worse(m.previous, m.current, m.better) and abs(change) >= rules.drop_share):
            found.append(Suggestion(
                "drop", m.key, f"「{m.label}」本期为 {fmt(m.current, m.unit, m.unit_label)}，{period_word}"
                f"{'下降' if m.current < m.previous else '上升'} {fmt_change(change).lstrip('+-')}（上期 {fmt(m.previous, m.unit, m.unit_label)}）",
                m.action, 2, (float(m.current), float(m.previous))))
            continue
        n = rules.trend_periods
        tail = m.history[-n:]
        if len(tail) == n and all(v is not None for v in tail) and m.enough(n) and all(
                _worse(float(tail[i]), float(tail[i + 1]), m.better) for i in range(n - 1)):  # type: ignore[arg-type]
            labels = m.history_labels[-n:] if len(m.history_labels) >= n else ("",) * n
            path = " → ".join(f"{lab} {fmt(v, m.unit, m.unit_label)}".strip() for lab, v in zip(labels, tail, strict=True))
            found.append(Suggestion(
                "trend", m.key, f"「{m.label}」连续{n}期{'下降' if m.better == 'up' else '上升'}：{path}",
                m.action, 2, tuple(float(v) for v in tail)))  # type: ignore[arg-type]
    if channel_metric is not None:
        found.extend(_channels(channels, channel_metric, rules))
    return sorted(found, key=lambda s: s.severity)


def _channels(channels: Sequence[ChannelRate], metric: MetricFacts, rules: Rules) -> list[Suggestion]:
    eligible = [c for c in channels if c.rate is not None and c.base >= rules.channel_min_base]
    out: list[Suggestion] = []
    for c in eligible:
        others = [o.rate for o in eligible if o.channel != c.channel]
        if len(others) < 2:
            continue
        typical = median(others)  # type: ignore[type-var]
        if typical and c.rate is not None and c.rate < rules.far_below * typical:
            out.append(Suggestion(
                "channel", metric.key,
                f"渠道「{c.channel}」{metric.label}仅 {fmt(c.rate, 'ratio')}（{c.converted}/{c.base} 人），"
                f"远低于其他渠道的中位数 {fmt(typical, 'ratio')}",
                metric.action, 1, (c.rate, typical)))
    return out
