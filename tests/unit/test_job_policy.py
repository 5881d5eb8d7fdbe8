"""Misfire grace and coalescing (jobs.policy), with injected instants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinical_core.domain.errors import InvalidInput
from jobs.policy import MisfirePolicy, decide
from jobs.registry import Every, counts_of, every, parse_trigger

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def test_coalescing_runs_only_the_latest_fire_within_grace() -> None:
    due = [T0 + i * MIN for i in range(5)]  # 02:00..02:04, now 02:04:30
    d = decide(due, T0 + 4 * MIN + timedelta(seconds=30), MisfirePolicy(timedelta(minutes=2), coalesce=True))
    assert d.run == (T0 + 4 * MIN,)
    assert d.missed == tuple(due[:3])  # 02:00..02:02 are more than 2 minutes late; 02:03 is coalesced


def test_without_coalescing_every_fire_within_grace_runs() -> None:
    due = [T0 + i * MIN for i in range(5)]
    d = decide(due, T0 + 4 * MIN + timedelta(seconds=30), MisfirePolicy(timedelta(minutes=2), coalesce=False))
    assert d.run == (T0 + 3 * MIN, T0 + 4 * MIN)
    assert len(d.missed) == 3


def test_a_fire_later_than_grace_is_missed_not_run() -> None:
    d = decide([T0], T0 + timedelta(minutes=10), MisfirePolicy(timedelta(minutes=5), coalesce=True))
    assert d.run == () and d.missed == (T0,)


def test_negative_grace_is_refused() -> None:
    with pytest.raises(ValueError):
        MisfirePolicy(timedelta(seconds=-1), True)


@given(st.lists(st.integers(min_value=0, max_value=10_000), min_size=0, max_size=40, unique=True),
       st.integers(min_value=0, max_value=5_000), st.booleans())
def test_every_fire_is_either_run_or_missed(offsets: list[int], grace: int, coalesce: bool) -> None:
    due = sorted(T0 + timedelta(seconds=o) for o in offsets)
    now = T0 + timedelta(seconds=10_000)
    d = decide(due, now, MisfirePolicy(timedelta(seconds=grace), coalesce))
    assert not set(d.run) & set(d.missed)
    assert all(now - t > timedelta(seconds=grace) for t in d.missed)
    if coalesce:
        assert len(d.run) <= 1
        assert set(d.missed) | set(d.run) <= set(due)
    else:
        assert set(d.run) | set(d.missed) == set(due)


def test_trigger_parsing() -> None:
    assert parse_trigger("5m", None) == Every(300) == every(minutes=5)
    assert parse_trigger(None, "0 3 * * *").expression == "0 3 * * *"
    for bad in [("5", None), ("0m", None), (None, "61 * * * *"), (None, None), ("5m", "0 3 * * *")]:
        with pytest.raises(InvalidInput):
            parse_trigger(*bad)


def test_counts_keep_numbers_and_count_collections() -> None:
    from clinical_core.services.consult_jobs import ExpiryResult

    assert counts_of(ExpiryResult(("con_1", "con_2"), 1, ())) == {
        "closed_unanswered": 2, "refunds_requested": 1, "cancelled_unpaid": 0}
    assert counts_of({"succeeded": 3, "failed": 0}) == {"succeeded": 3, "failed": 0}
    assert counts_of(None) == {}
