"""The prescription's state machine: random action sequences never reach an
illegal state; approval only from review; a rejection always comes back
through review (R35); voided is final."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinical_core.domain.errors import IllegalTransition, InvalidInput, RuleViolation
from clinical_core.domain.prescription import (
    RejectReason,
    RxAction,
    RxStatus,
    check_rejection,
    ensure_may_review_online,
    rx_transition,
)
from clinical_core.domain.staff import FilingStatus, Qualification, Role

R = RxStatus
EDGES = {(R.PENDING_REVIEW, RxAction.APPROVE): R.APPROVED, (R.PENDING_REVIEW, RxAction.REJECT): R.REJECTED,
         (R.REJECTED, RxAction.REVISE): R.PENDING_REVIEW, (R.PENDING_REVIEW, RxAction.VOID): R.VOIDED,
         (R.REJECTED, RxAction.VOID): R.VOIDED, (R.APPROVED, RxAction.VOID): R.VOIDED}


@given(st.lists(st.sampled_from(list(RxAction)), max_size=25))
def test_no_illegal_transition_is_reachable(actions: list[RxAction]) -> None:
    status, path = R.PENDING_REVIEW, [R.PENDING_REVIEW]
    for action in actions:
        try:
            new = rx_transition("rx_x", status, action)
        except IllegalTransition:
            assert (status, action) not in EDGES
            continue
        assert EDGES[(status, action)] == new and status is not R.VOIDED
        if new is R.APPROVED:
            assert path[-1] is R.PENDING_REVIEW  # only a reviewed pending prescription is approved
        status = new
        path.append(status)
    for i, s in enumerate(path[:-1]):
        if s is R.REJECTED and path[i + 1] is not R.VOIDED:
            assert path[i + 1] is R.PENDING_REVIEW  # R35: back through review


def test_reviewer_r33_and_structured_rejections() -> None:
    q = Qualification(Role.PHARMACIST, "主管药师", "Y", date(2015, 1, 1), FilingStatus.FILED, False)
    ensure_may_review_online(q, date(2026, 11, 2))
    with pytest.raises(RuleViolation, match="R33"):
        ensure_may_review_online(Qualification(Role.PHARMACIST, "药师", "Y", date(2024, 1, 1), FilingStatus.FILED,
                                               False), date(2026, 11, 2))
    with pytest.raises(RuleViolation, match="R33"):
        ensure_may_review_online(Qualification(Role.DOCTOR, "主任医师", "Y", date(2000, 1, 1), FilingStatus.FILED,
                                               True), date(2026, 11, 2))
    check_rejection((RejectReason.DOSAGE,), None)
    with pytest.raises(InvalidInput):
        check_rejection((), "no reason")
    with pytest.raises(InvalidInput):
        check_rejection((RejectReason.OTHER,), " ")
