"""Evaluates registered metrics set-wise in SQL: one statement per (metric, request).

The fact query becomes a subquery; the periods asked for become a ``CASE`` over their bounds
(``bucket`` = the window's index), computed in an inner select so that the outer ``GROUP BY``
names a plain column (PostgreSQL would not accept two differently-bound copies of the ``CASE``).
Medians are the middle row(s) by ``row_number()``/``count()`` over the group, averaged; every
database this product supports has those window functions. Python only divides the sums a ratio
or a mean needs and turns ``Decimal`` into numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, case, distinct, func, literal, or_, select
from sqlalchemy.orm import Session

from reports.metrics.registry import Agg, Metric

Window = tuple[datetime, datetime]
Key = tuple[Any, ...]  # (window index, *dimension values)


def evaluate(session: Session, metric: Metric, windows: Sequence[Window], by: Sequence[str] = (),
             filters: Mapping[str, Any] | None = None, parts: bool = False) -> dict[Key, Any]:
    """Values of ``metric`` per window (and per dimension value when ``by`` names dimensions).

    Windows must not overlap. Without ``by`` every window has a key: counts and sums of an empty
    window are 0, medians, means and ratios ``None``. With ``by`` only groups that have facts appear.
    ``parts=True`` returns ``(numerator, denominator)`` for means and ratios instead of the quotient.
    """
    filters = dict(filters or {})
    for name in (*by, *filters):
        if name not in metric.dimensions:
            raise ValueError(f"{metric.key} has no dimension {name}")
    f = metric.facts().subquery("f")
    conditions = [and_(f.c.at >= start, f.c.at < end) for start, end in windows]
    bucket = case(*((c, literal(i)) for i, c in enumerate(conditions))) if len(conditions) > 1 else literal(0)
    columns = [bucket.label("bucket"), *(f.c[d].label(d) for d in by), f.c.value.label("value")]
    if metric.agg is Agg.RATIO:
        columns.append(f.c.den.label("den"))
    where = [or_(*conditions), *((f.c[d] == v) for d, v in filters.items())]
    inner = select(*columns).where(*where).subquery("i")
    keys = [inner.c.bucket, *(inner.c[d] for d in by)]
    result: dict[Key, float | int | None] = {}
    if metric.agg is Agg.MEDIAN:
        ranked = select(*keys, inner.c.value,
                        func.row_number().over(partition_by=keys, order_by=inner.c.value).label("rn"),
                        func.count().over(partition_by=keys).label("n")).where(inner.c.value.is_not(None)).subquery("r")
        rkeys = [ranked.c.bucket, *(ranked.c[d] for d in by)]
        stmt = (select(*rkeys, func.avg(ranked.c.value))
                .where(or_(ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.rn == (ranked.c.n + 2) // 2))
                .group_by(*rkeys))
        for *key, value in session.execute(stmt):
            number = _number(value)
            result[tuple(key)] = round(number, 4) if isinstance(number, float) else number  # julianday: ~1e-6 min noise
    else:
        if metric.agg is Agg.COUNT:
            aggregates: tuple = (func.count(),)
        elif metric.agg is Agg.COUNT_DISTINCT:
            aggregates = (func.count(distinct(inner.c.value)),)
        elif metric.agg is Agg.SUM:
            aggregates = (func.coalesce(func.sum(inner.c.value), 0),)
        elif metric.agg is Agg.MEAN:
            aggregates = (func.sum(inner.c.value), func.count(inner.c.value))
        else:
            aggregates = (func.sum(inner.c.value), func.sum(inner.c.den))
        stmt = select(*keys, *aggregates).group_by(*keys)
        for row in session.execute(stmt):
            key, values = tuple(row[: len(keys)]), [_number(v) for v in row[len(keys):]]
            result[key] = tuple(values) if parts and metric.agg in (Agg.MEAN, Agg.RATIO) else _combine(metric, values)
    if not by:
        empty: Any = 0 if metric.agg in (Agg.COUNT, Agg.COUNT_DISTINCT, Agg.SUM) else None
        if parts and metric.agg in (Agg.MEAN, Agg.RATIO):
            empty = (0, 0)
        for i in range(len(windows)):
            result.setdefault((i,), empty)
    return result


def _combine(metric: Metric, values: list[float | int | None]) -> float | int | None:
    if metric.agg in (Agg.MEAN, Agg.RATIO):
        num, den = values
        if not den:
            return None
        return (num or 0) / den
    value = values[0]
    return int(value) if value is not None and float(value).is_integer() else value


def _number(value: Any) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
