"""指标注册表: every metric of the reports is defined exactly once, here.

A metric is a *fact query* plus an *aggregation*. The fact query is a SQLAlchemy ``select``
over the product's tables returning one row per fact, with these labelled columns:

- ``at``: the instant the fact belongs to (UTC); periods are windows over it;
- ``value``: the measure (ignored by ``COUNT``; the numerator of ``RATIO``);
- ``den``: the denominator, only for ``RATIO``;
- one column per dimension the metric supports, named after it (``department``, ``doctor``,
  ``channel``, ``service_type``, ``push`` (a push's name), ``platform`` (a content platform)).

``reports.metrics.engine`` turns any metric into one grouped SQL statement per request (periods
as a ``CASE`` over the window bounds, dimensions as ``GROUP BY``, medians with window functions),
the same text on SQLite and PostgreSQL. Adding a metric is one ``register(Metric(...))`` call in a
definitions module imported by ``reports.metrics.catalogue``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import Select

from clinical_core.domain.errors import Conflict, NotFound


class Agg(StrEnum):
    COUNT = "count"  # number of fact rows
    COUNT_DISTINCT = "count_distinct"  # number of distinct ``value``s
    SUM = "sum"  # sum of ``value``
    MEAN = "mean"  # sum(value) / count(value)
    MEDIAN = "median"  # middle ``value`` (average of the two middle ones)
    RATIO = "ratio"  # sum(value) / sum(den)


class Unit(StrEnum):
    COUNT = "count"  # 次 / 人 / 张
    FEN = "fen"  # money, shown as yuan
    MINUTES = "minutes"
    HOURS = "hours"
    RATIO = "ratio"  # 0..1, shown as a percentage
    SCORE = "score"  # 1..5 stars


DIMENSIONS = {"department": "科室", "doctor": "医生", "channel": "渠道", "service_type": "服务类型", "push": "推送",
              "platform": "平台"}


@dataclass(frozen=True, slots=True)
class Metric:
    key: str
    label: str  # Chinese, as printed in the reports
    unit: Unit
    module: str  # the report section: 问诊 / 处方 / 收入 / 公众号 / 渠道 / 评价 / 内容 ...
    agg: Agg
    facts: Callable[[], Select]  # the fact query (see the module docstring)
    dimensions: tuple[str, ...] = ()
    better: str | None = None  # "up" | "down" | None (neither: no good or bad direction)
    unit_label: str = "次"  # what a count counts (次、张、人、篇)
    action: str = ""  # the concrete action a suggestion about this metric proposes
    headline: bool = False  # shown on the summary page and sheet
    min_base: int = 0  # RATIO/MEAN: fewer denominator rows than this is too little evidence

    def __post_init__(self) -> None:
        unknown = set(self.dimensions) - set(DIMENSIONS)
        if unknown:
            raise ValueError(f"{self.key}: unknown dimensions {sorted(unknown)}")
        if self.better not in (None, "up", "down"):
            raise ValueError(f"{self.key}: better must be up, down or None")


@dataclass
class Registry:
    """The metrics, in the order they were registered (the order of the reports)."""

    _metrics: dict[str, Metric] = field(default_factory=dict)

    def register(self, metric: Metric) -> Metric:
        if metric.key in self._metrics:
            raise Conflict(f"指标 {metric.key} 已定义，每个指标只能定义一次")
        self._metrics[metric.key] = metric
        return metric

    def get(self, key: str) -> Metric:
        try:
            return self._metrics[key]
        except KeyError:
            raise NotFound(f"没有指标 {key}") from None

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._metrics.values())

    def __len__(self) -> int:
        return len(self._metrics)

    def modules(self) -> list[str]:
        return list(dict.fromkeys(m.module for m in self))

    def in_module(self, module: str) -> list[Metric]:
        return [m for m in self if m.module == module]


REGISTRY = Registry()
register = REGISTRY.register
