"""Pure rules of pushes: quiet hours, chunking, the ledger's transitions, outcomes, retries, A/B split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.domain import pushes as P
from clinical_core.domain.errors import IllegalTransition, InvalidInput
from clinical_core.domain.time import SHANGHAI


def _sh(hour: int, minute: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def test_default_quiet_hours_span_midnight() -> None:
    quiet = P.QuietHours()
    assert quiet.contains(_sh(21), SHANGHAI) and quiet.contains(_sh(3), SHANGHAI) and quiet.contains(_sh(7, 59), SHANGHAI)
    assert not quiet.contains(_sh(8), SHANGHAI) and not quiet.contains(_sh(20, 59), SHANGHAI)
    assert quiet.next_allowed(_sh(22, 30), SHANGHAI) == _sh(8, 0, day=3)
    assert quiet.next_allowed(_sh(2), SHANGHAI) == _sh(8)
    assert quiet.next_allowed(_sh(12), SHANGHAI) == _sh(12)


def test_quiet_hours_are_configurable_and_can_be_off() -> None:
    assert not P.QuietHours.parse("off").contains(_sh(3), SHANGHAI)
    lunch = P.QuietHours.parse("12:00-13:30")
    assert lunch.contains(_sh(12, 45), SHANGHAI) and not lunch.contains(_sh(13, 30), SHANGHAI)
    with pytest.raises(InvalidInput):
        P.QuietHours.parse("nine to five")


@given(st.integers(min_value=2, max_value=200_000), st.integers(min_value=3, max_value=10_000))
def test_mass_chunks_cover_everyone_within_wechat_limits(total: int, maximum: int) -> None:
    sizes = P.chunk_sizes(total, maximum=maximum)
    assert sum(sizes) == total and all(2 <= s <= maximum for s in sizes)
    assert len(sizes) == -(-total // maximum)


@given(st.lists(st.sampled_from(["claim", "sent", "failed", "retry", "lost", "skip", "cancel"]), max_size=12))
def test_ledger_transitions_never_leave_a_final_state(actions: list[str]) -> None:
    state = P.DeliveryState.PENDING
    sent = 0
    for action in actions:
        try:
            state = P.delivery_transition(state, action)
        except IllegalTransition:
            continue
        sent += state is P.DeliveryState.SENT
    assert sent <= 1  # sent is final: a row is sent at most once
    for final in (P.DeliveryState.SENT, P.DeliveryState.FAILED, P.DeliveryState.SKIPPED, P.DeliveryState.CANCELLED):
        for action in ("claim", "sent", "failed", "retry", "lost", "skip", "cancel"):
            with pytest.raises(IllegalTransition):
                P.delivery_transition(final, action)


def test_only_a_row_in_sending_can_become_unknown_and_unknown_is_settled_not_reclaimed() -> None:
    assert P.delivery_transition("sending", "lost") is P.DeliveryState.UNKNOWN
    with pytest.raises(IllegalTransition):
        P.delivery_transition("unknown", "claim")
    with pytest.raises(IllegalTransition):
        P.delivery_transition("unknown", "retry")
    assert P.delivery_transition("unknown", "sent") is P.DeliveryState.SENT


def test_outcomes_of_wechat_answers() -> None:
    assert P.classify(0) is P.Outcome.SENT
    assert P.classify(None) is P.Outcome.UNKNOWN  # no answer: it may have been sent
    assert P.classify(-1) is P.Outcome.RETRY and P.classify(45011) is P.Outcome.RETRY
    assert P.classify(43004) is P.Outcome.FAILED and P.classify(40037) is P.Outcome.FAILED


def test_retries_back_off_then_give_up() -> None:
    now = datetime(2026, 11, 2, tzinfo=UTC)
    assert P.retry_at(now, 1) == now + timedelta(seconds=5)
    assert P.retry_at(now, 4) == now + timedelta(seconds=600)
    assert P.retry_at(now, 5) is None


def test_caps() -> None:
    assert P.FrequencyCap(3, 7).allows(2) and not P.FrequencyCap(3, 7).allows(3)
    assert P.mass_month_allows(3) and not P.mass_month_allows(4)
    # the natural month in Beijing time: 1 Nov 00:30 in Shanghai is still 31 Oct in UTC
    assert P.month_start(_sh(0, 30, day=1), SHANGHAI) == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)


def test_ab_split_is_stable_and_follows_the_weights() -> None:
    split = [P.variant_of(f"o{i}", {"A": 3, "B": 1}, "push_x") for i in range(4000)]
    assert split == [P.variant_of(f"o{i}", {"A": 3, "B": 1}, "push_x") for i in range(4000)]
    assert 0.70 < split.count("A") / len(split) < 0.80


def test_push_transitions() -> None:
    assert P.push_transition("draft", "schedule") is P.PushStatus.SCHEDULED
    assert P.push_transition("scheduled", "dispatch") is P.PushStatus.SENDING
    with pytest.raises(IllegalTransition):
        P.push_transition("done", "cancel")
    with pytest.raises(IllegalTransition):
        P.push_transition("draft", "dispatch")
