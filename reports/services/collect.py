"""Gathers what one report shows: every metric of its scope for the period, the same-grain history
(环比, 同比, three-period trends), a twelve-month series for the charts, breakdowns by dimension,
channel conversion, targets and the suggestions. Everything is computed by
``reports.metrics.engine`` in SQL; this module only arranges the numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.consultation import SERVICE_LABELS
from clinical_core.domain.errors import InvalidInput, NotFound
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import DepartmentRow, HospitalRow
from clinical_core.persistence.uow import UnitOfWork
from content.domain.calendar import Platform
from reports.domain.formatting import fmt, in_display_unit, relative_change
from reports.domain.periods import Grain, Period
from reports.domain.suggestions import (
    DEFAULT_RULES,
    ChannelRate,
    MetricFacts,
    Rules,
    Suggestion,
    suggest,
)
from reports.metrics.catalogue import REGISTRY
from reports.metrics.engine import evaluate
from reports.metrics.registry import DIMENSIONS, Agg, Metric, Registry

READERS = frozenset({Role.ADMIN, Role.OPERATIONS})
Advance = Callable[[str], None]


class ReportKind(StrEnum):
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    ANNUAL = "annual"
    DEPARTMENT = "department"
    SPECIALTY = "specialty"

    @property
    def label(self) -> str:
        return {"monthly": "运营月报", "quarterly": "运营季报", "annual": "运营年报",
                "department": "科室运营分析", "specialty": "专科运营报告"}[self.value]

    @property
    def grain(self) -> Grain | None:
        return {"monthly": Grain.MONTH, "quarterly": Grain.QUARTER, "annual": Grain.YEAR}.get(self.value)


SPECIALTY_MODULES = ("内容运营", "患者评价", "问诊服务")
CHANNEL_METRIC = "channel_conversion"
PLATFORM_LABELS = {p.value: p.label for p in Platform}
SERVICE_TYPE_LABELS = {**{k.value: v for k, v in SERVICE_LABELS.items()}, "prescription": "药品（处方）"}
BREAKDOWNS = {  # dimension -> metrics shown side by side (those the metric supports)
    "department": ("consultations", "first_response_minutes", "unanswered_rate", "prescriptions_issued",
                   "review_pass_rate", "income_net_fen", "review_rating"),
    "service_type": ("consultations", "payments_fen", "refunds_fen", "income_net_fen", "review_rating"),
    "channel": ("followers_gained", "followers_lost", "channel_conversion"),
    "doctor": ("consultations", "first_response_minutes", "prescriptions_issued", "review_pass_rate",
               "income_net_fen", "review_rating", "lectures_published"),
    "platform": ("content_posts_published", "content_episodes_published", "platform_plays", "platform_likes",
                 "live_viewers"),
    "push": ("push_deliveries_planned", "push_deliveries_sent", "push_delivery_rate", "push_clicks",
             "push_click_through"),
}


@dataclass(frozen=True, slots=True)
class ReportSpec:
    kind: ReportKind
    period: Period
    department: str | None = None  # department code, for department and specialty reports


@dataclass(frozen=True, slots=True)
class MetricLine:
    key: str
    label: str
    module: str
    unit: str
    unit_label: str
    better: str | None
    headline: bool
    value: float | int | None
    previous: float | int | None
    year_ago: float | int | None
    target: float | None
    history: tuple[tuple[str, float | int | None], ...]  # same-grain periods, oldest first, ending with this one
    series: tuple[tuple[str, float | int | None], ...]  # months for the charts

    @property
    def mom(self) -> float | None:
        return relative_change(self.value, self.previous)

    @property
    def yoy(self) -> float | None:
        return relative_change(self.value, self.year_ago)

    @property
    def target_met(self) -> bool | None:
        if self.target is None or self.value is None or self.better is None:
            return None
        return self.value >= self.target if self.better == "up" else self.value <= self.target

    @property
    def display(self) -> str:
        return fmt(self.value, self.unit, self.unit_label)


@dataclass(frozen=True, slots=True)
class Breakdown:
    dimension: str
    title: str
    metrics: tuple[MetricLine, ...]  # the columns (their period values are the totals)
    rows: tuple[tuple[str, tuple[float | int | None, ...]], ...]  # (dimension value label, values per column)


@dataclass(frozen=True, slots=True)
class ReportData:
    spec: ReportSpec
    title: str
    subtitle: str
    hospital: str
    department_name: str | None
    generated_at: datetime
    lines: tuple[MetricLine, ...]
    breakdowns: tuple[Breakdown, ...]
    channels: tuple[ChannelRate, ...]
    suggestions: tuple[Suggestion, ...]
    previous_label: str
    year_ago_label: str
    modules: tuple[str, ...] = field(default=())

    @property
    def headlines(self) -> tuple[MetricLine, ...]:
        return tuple(line for line in self.lines if line.headline)

    def line(self, key: str) -> MetricLine:
        for line in self.lines:
            if line.key == key:
                return line
        raise KeyError(key)

    def in_module(self, module: str) -> tuple[MetricLine, ...]:
        return tuple(line for line in self.lines if line.module == module)


def scope(spec: ReportSpec, registry: Registry = REGISTRY) -> list[Metric]:
    """The metrics a report covers: all of them for the hospital, those that can be filtered by
    department for a department, and the content, review and consultation ones for a specialty."""
    if spec.kind in (ReportKind.MONTHLY, ReportKind.QUARTERLY, ReportKind.ANNUAL):
        return list(registry)
    chosen = [m for m in registry if "department" in m.dimensions]
    if spec.kind is ReportKind.SPECIALTY:
        chosen = [m for m in chosen if m.module in SPECIALTY_MODULES]
        chosen.sort(key=lambda m: SPECIALTY_MODULES.index(m.module))
    return chosen


def step_count(spec: ReportSpec, registry: Registry = REGISTRY) -> int:
    """How many progress steps ``collect`` reports (one per metric plus one per breakdown)."""
    return len(scope(spec, registry)) + len(_dimensions(spec))


Window = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class Request:
    """One metric statement: a metric over some windows, grouped by some dimensions (the report's
    department filter applies to all of a report's requests). ``parts``: numerators and
    denominators of a mean or ratio rather than the quotients."""

    metric: str
    windows: tuple[Window, ...]
    by: tuple[str, ...] = ()
    parts: bool = False


class Queries:
    """Runs each distinct request of one report once (a breakdown column and the channel rates, or
    a headline in several places, read the same result)."""

    def __init__(self, session: Session, registry: Registry, filters: Mapping[str, str]) -> None:
        self.session, self.registry, self.filters = session, registry, dict(filters)
        self.results: dict[Request, dict] = {}

    def get(self, request: Request) -> dict:
        if request not in self.results:
            self.results[request] = evaluate(self.session, self.registry.get(request.metric), request.windows,
                                             by=request.by, filters=self.filters, parts=request.parts)
        return self.results[request]


ADDITIVE = (Agg.COUNT, Agg.SUM, Agg.MEAN, Agg.RATIO)  # a period's value follows from its months' (parts)


def _history_and_series(queries: Queries, metric: Metric, history: list[Period], series: list[Period]
                        ) -> tuple[list[object], list[object]]:
    """The metric over the same-grain history and over the chart's months, as raw results (parts for
    means and ratios). A monthly report's months are its history: one statement. For a quarter or a
    year, an additive metric needs one statement too: the history periods the months cover are
    summed from the months' parts, the others are windows of their own. Medians and distinct counts
    are not additive: the history and the months are two statements."""
    split = metric.agg in (Agg.MEAN, Agg.RATIO)
    if series == history[-len(series):]:
        raw = queries.get(Request(metric.key, tuple(p.bounds() for p in history), parts=split))
        parts = [raw[(i,)] for i in range(len(history))]
        return parts, parts[-len(series):]
    months = set(series)
    covered = [p for p in history if set(p.months()) <= months]
    alone = [p for p in history if p not in covered]
    overlapping = any(set(p.months()) & months for p in alone)
    if metric.agg not in ADDITIVE or overlapping:
        raw = queries.get(Request(metric.key, tuple(p.bounds() for p in history), parts=split))
        monthly = queries.get(Request(metric.key, tuple(p.bounds() for p in series), parts=split))
        return [raw[(i,)] for i in range(len(history))], [monthly[(i,)] for i in range(len(series))]
    windows = [*alone, *series]
    raw = queries.get(Request(metric.key, tuple(p.bounds() for p in windows), parts=split))
    at = {p: raw[(i,)] for i, p in enumerate(windows)}
    for p in covered:
        own = [at[m] for m in p.months()]
        at[p] = (sum(n or 0 for n, _ in own), sum(d or 0 for _, d in own)) if split else sum(v or 0 for v in own)
    return [at[p] for p in history], [at[p] for p in series]


def _value(metric: Metric, raw: object) -> float | int | None:
    """A raw result as the metric's value: the quotient of a mean's or ratio's parts."""
    if metric.agg in (Agg.MEAN, Agg.RATIO):
        num, den = raw  # type: ignore[misc]
        return (num or 0) / den if den else None
    return raw  # type: ignore[return-value]


def plan(spec: ReportSpec, registry: Registry = REGISTRY) -> list[Request]:
    """The distinct metric statements the report shows, unbatched: each metric over the same-grain
    history, over the chart's months (when they are other windows), and over the period by each
    breakdown dimension it supports. ``benchmarks/report_build.py`` runs these alone as its anchor."""
    period = spec.period
    history = period.history({Grain.MONTH: 13, Grain.QUARTER: 5, Grain.YEAR: 3}[period.grain])
    series = _series_periods(period)
    requests: dict[Request, None] = {}
    in_scope = scope(spec, registry)
    for metric in in_scope:
        split = metric.agg in (Agg.MEAN, Agg.RATIO)
        requests[Request(metric.key, tuple(p.bounds() for p in history), parts=split)] = None
        if series != history[-len(series):]:
            requests[Request(metric.key, tuple(p.bounds() for p in series), parts=split)] = None
    keys = {m.key for m in in_scope}
    for dimension in _dimensions(spec):
        for key in BREAKDOWNS[dimension]:
            if key in keys and dimension in registry.get(key).dimensions:
                split = registry.get(key).agg in (Agg.MEAN, Agg.RATIO)
                requests[Request(key, (period.bounds(),), (dimension,), parts=split)] = None
    return list(requests)


def _series_periods(period: Period) -> list[Period]:
    return period.months() if period.grain is Grain.YEAR else period.months()[-1].history(12)


def _dimensions(spec: ReportSpec) -> tuple[str, ...]:
    if spec.department:
        return ("doctor", "service_type")
    return ("department", "service_type", "channel", "doctor", "platform", "push")


def collect(uow: UnitOfWork, principal: Principal, spec: ReportSpec, *, targets: Mapping[str, float] | None = None,
            rules: Rules = DEFAULT_RULES, advance: Advance | None = None, registry: Registry = REGISTRY,
            on_line: Callable[[MetricLine], None] | None = None) -> ReportData:
    """The report's figures. ``on_line`` is told each metric line as soon as it is computed (the
    report service starts drawing its chart while the next statements run)."""
    ensure_role(principal, READERS)
    if spec.kind in (ReportKind.DEPARTMENT, ReportKind.SPECIALTY) and not spec.department:
        raise InvalidInput("科室报告和专科报告需要 --dept 科室编码")
    step = advance or (lambda _label: None)
    targets = dict(targets or {})
    for key in targets:
        registry.get(key)  # an unknown key in the configuration is an error, not silence
    with uow:
        session = uow.session
        hospital = session.scalar(select(HospitalRow.short_name).order_by(HospitalRow.id).limit(1)) or "本院"
        department_name = None
        if spec.department:
            department_name = session.scalar(select(DepartmentRow.name).where(DepartmentRow.code == spec.department))
            if department_name is None:
                raise NotFound(f"没有科室编码 {spec.department}")
        filters = {"department": spec.department} if spec.department else {}
        period = spec.period
        grain_history = {Grain.MONTH: 13, Grain.QUARTER: 5, Grain.YEAR: 3}[period.grain]
        history = period.history(grain_history)
        year_ago_index = history.index(period.year_ago())
        series_periods = _series_periods(period)
        queries = Queries(session, registry, filters)
        lines: list[MetricLine] = []
        base_of: dict[str, tuple[int | None, ...]] = {}
        for metric in scope(spec, registry):
            step(metric.label)
            hist_parts, series_parts = _history_and_series(queries, metric, history, series_periods)
            split = metric.agg in (Agg.MEAN, Agg.RATIO)  # the denominators too: min_base judges the evidence
            bases = tuple(int(den or 0) for _, den in hist_parts) if split else ()  # type: ignore[misc]
            base_of[metric.key] = bases[-4:]
            hist = tuple((p.short_label, _value(metric, v)) for p, v in zip(history, hist_parts, strict=True))
            series = tuple((p.short_label, _value(metric, v)) for p, v in zip(series_periods, series_parts, strict=True))
            target = targets.get(metric.key)
            lines.append(MetricLine(
                metric.key, metric.label, metric.module, metric.unit.value, metric.unit_label, metric.better,
                metric.headline, hist[-1][1], hist[-2][1], hist[year_ago_index][1],
                None if target is None else in_display_unit(target, metric.unit.value), hist[-4:],
                series))
            if on_line is not None:
                on_line(lines[-1])
        by_key = {line.key: line for line in lines}
        breakdowns = []
        for dimension in _dimensions(spec):
            step(f"按{DIMENSIONS[dimension]}")
            breakdown = _breakdown(session, queries, registry, by_key, dimension, period)
            if breakdown is not None:
                breakdowns.append(breakdown)
        channels: list[ChannelRate] = []
        if CHANNEL_METRIC in by_key and not spec.department:  # the same statement as the channel breakdown's column
            parts = queries.get(Request(CHANNEL_METRIC, (period.bounds(),), ("channel",), parts=True))
            channels = sorted((ChannelRate(key[1], (num / den) if den else None, int(num or 0), int(den or 0))
                               for key, (num, den) in parts.items()), key=lambda c: (-c.base, c.channel))
    facts = [MetricFacts(line.key, line.label, line.unit, line.better, registry.get(line.key).action, line.value,
                         line.previous, tuple(v for _, v in line.history), tuple(lab for lab, _ in line.history),
                         line.target, line.unit_label, base_of[line.key], registry.get(line.key).min_base)
             for line in lines]
    channel_facts = next((f for f in facts if f.key == CHANNEL_METRIC), None)
    suggestions = suggest(facts, channels, channel_facts, rules, "同比" if period.grain is Grain.YEAR else "环比")
    who = f"{department_name}" if department_name else f"{hospital}互联网医院"
    title = f"{who}{period.label}{spec.kind.label}"
    subtitle = {ReportKind.DEPARTMENT: "门诊、医技与药学服务的线上运营分析",
                ReportKind.SPECIALTY: "专科内容（名医讲堂、话术、社群）与服务数据"}.get(spec.kind, "互联网医院运营数据与优化建议")
    return ReportData(spec, title, subtitle, hospital, department_name, uow.clock.now(), tuple(lines), tuple(breakdowns),
                      tuple(channels), tuple(suggestions), history[-2].label, history[year_ago_index].label,
                      tuple(dict.fromkeys(line.module for line in lines)))


def _breakdown(session: Session, queries: Queries, registry: Registry, lines: Mapping[str, MetricLine], dimension: str,
               period: Period) -> Breakdown | None:
    columns = [lines[k] for k in BREAKDOWNS[dimension] if k in lines and dimension in registry.get(k).dimensions]
    if not columns:
        return None
    per_metric = []
    for c in columns:
        metric = registry.get(c.key)
        split = metric.agg in (Agg.MEAN, Agg.RATIO)  # parts: one statement serves this column and the channel rates
        values = queries.get(Request(c.key, (period.bounds(),), (dimension,), parts=split))
        per_metric.append({k: _value(metric, v) for k, v in values.items()} if split else values)
    keys = sorted({k[1] for values in per_metric for k in values}, key=lambda v: (v is None, str(v)))
    labels = _labels(session, dimension, keys)
    rows = tuple((labels.get(k, "（未归属）" if k is None else str(k)), tuple(values.get((0, k)) for values in per_metric))
                 for k in keys)
    rows = tuple(sorted(rows, key=lambda r: -(r[1][0] or 0)))
    return Breakdown(dimension, f"按{DIMENSIONS[dimension]}", tuple(columns), rows)


def _labels(session: Session, dimension: str, keys: list[object]) -> dict[object, str]:
    if dimension == "department":
        names = dict(session.execute(select(DepartmentRow.code, DepartmentRow.name).where(
            DepartmentRow.code.in_([k for k in keys if k is not None]))).all())
        return {k: f"{names.get(k, k)}" for k in keys if k is not None}
    if dimension == "service_type":
        return {k: SERVICE_TYPE_LABELS.get(str(k), str(k)) for k in keys if k is not None}
    if dimension == "platform":
        return {k: PLATFORM_LABELS.get(str(k), str(k)) for k in keys if k is not None}
    return {}


__all__ = ["Breakdown", "MetricLine", "ReportData", "ReportKind", "ReportSpec", "Request", "collect", "plan", "scope"]
