"""Every registered metric against the hand-computed October 2026 dataset, on SQLite and
PostgreSQL (``tests/support/report_data.py`` has the arithmetic)."""

from __future__ import annotations

import pytest

from clinical_core.domain.access import Principal
from clinical_core.domain.staff import Role
from opsctl.wiring import Container
from reports.domain.periods import Grain, Period
from reports.metrics.catalogue import REGISTRY
from reports.metrics.engine import evaluate
from tests.support import report_data

OCTOBER = Period(2026, Grain.MONTH, 10)
OPS = Principal("ops:test", "ops", Role.OPERATIONS)


@pytest.fixture
def seeded(container: Container) -> Container:
    report_data.seed(container)
    return container


def test_every_registered_metric_is_checked_by_the_dataset() -> None:
    assert {m.key for m in REGISTRY} == set(report_data.EXPECTED)


def test_every_metric_matches_the_hand_computed_value(seeded: Container) -> None:
    with seeded.uow() as uow:
        got = {m.key: evaluate(uow.session, m, [OCTOBER.bounds()])[(0,)] for m in REGISTRY}
    for key, expected in report_data.EXPECTED.items():
        assert got[key] == pytest.approx(expected), key


def test_breakdowns_by_dimension(seeded: Container) -> None:
    with seeded.uow() as uow:
        for (key, dim), expected in report_data.BY.items():
            values = evaluate(uow.session, REGISTRY.get(key), [OCTOBER.bounds()], by=(dim,))
            assert {k[1]: v for k, v in values.items()} == pytest.approx(expected), (key, dim)


def test_several_periods_in_one_statement_and_filters(seeded: Container) -> None:
    september, october, november = OCTOBER.previous(), OCTOBER, OCTOBER.shifted(1)
    windows = [september.bounds(), october.bounds(), november.bounds()]
    with seeded.uow() as uow:
        consults = evaluate(uow.session, REGISTRY.get("consultations"), windows)
        assert consults == {(0,): 1, (1,): 6, (2,): 1}  # c7 / six in October / c9 at 1 Nov 00:10 Shanghai
        issued = evaluate(uow.session, REGISTRY.get("prescriptions_issued"), windows)
        assert issued == {(0,): 1, (1,): 3, (2,): 0}
        median = evaluate(uow.session, REGISTRY.get("first_response_minutes"), windows)
        assert median[(1,)] == pytest.approx(30) and median[(0,)] == pytest.approx(5)
        endo = evaluate(uow.session, REGISTRY.get("consultations"), [OCTOBER.bounds()], filters={"department": "ENDO"})
        assert endo == {(0,): 2}
        rating = evaluate(uow.session, REGISTRY.get("review_rating"), windows)
        assert rating[(2,)] is None  # no reviews in November: no value rather than zero


def test_registry_refuses_a_second_definition_of_a_key() -> None:
    from clinical_core.domain.errors import Conflict

    with pytest.raises(Conflict):
        REGISTRY.register(REGISTRY.get("consultations"))


def test_unknown_dimension_is_refused(seeded: Container) -> None:
    with seeded.uow() as uow, pytest.raises(ValueError):
        evaluate(uow.session, REGISTRY.get("script_uses"), [OCTOBER.bounds()], by=("doctor",))


@pytest.mark.parametrize("code", ["2026Q4", "2026"])
def test_quarter_and_year_from_their_months_equal_each_period_on_its_own(seeded: Container, code: str) -> None:
    """Quarterly and annual reports get an additive metric's history and chart months in one
    statement (a covered period summed from its months' parts): every value must equal the
    period evaluated alone, for every metric, and no statement may run twice."""
    from reports.metrics import engine
    from reports.services import collect as collect_module
    from reports.services.collect import ReportKind, ReportSpec, collect, plan

    period = Period.parse(code)
    kind = ReportKind.ANNUAL if period.grain is Grain.YEAR else ReportKind.QUARTERLY
    statements: list[tuple] = []
    original = engine.evaluate

    def counted(session, metric, windows, by=(), filters=None, parts=False):  # type: ignore[no-untyped-def]
        statements.append((metric.key, tuple(windows), tuple(by), parts))
        return original(session, metric, windows, by=by, filters=filters, parts=parts)

    collect_module.evaluate = counted  # type: ignore[assignment]
    try:
        data = collect(seeded.uow(), OPS, ReportSpec(kind, period))
    finally:
        collect_module.evaluate = original  # type: ignore[assignment]
    assert len(statements) == len(set(statements))
    assert len(statements) < len(plan(ReportSpec(kind, period)))  # batched: fewer than the unbatched plan
    history = period.history(len(data.lines[0].history))  # the last four (three for a year)
    series = period.months() if kind is ReportKind.ANNUAL else period.months()[-1].history(12)
    with seeded.uow() as uow:
        for metric in REGISTRY:
            line = data.line(metric.key)
            alone = evaluate(uow.session, metric, [p.bounds() for p in history])
            assert [v for _, v in line.history] == pytest.approx([alone[(i,)] for i in range(len(history))]), metric.key
            monthly = evaluate(uow.session, metric, [p.bounds() for p in series])
            assert [v for _, v in line.series] == pytest.approx([monthly[(i,)] for i in range(12)]), metric.key
