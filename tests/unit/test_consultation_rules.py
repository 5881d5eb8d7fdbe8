"""The consultation state machine and its money rules, pure."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinical_core.domain.consultation import (
    TERMINAL,
    TRANSITIONS,
    Action,
    CloseReason,
    ConsultStatus,
    Ledger,
    MessageKind,
    PaymentState,
    ServiceKind,
    check_message,
    check_service_settings,
    ensure_may_review,
    ensure_refundable,
    payment_state,
    sniff_mime,
    transition,
)
from clinical_core.domain.errors import IllegalTransition, InvalidInput, RuleViolation

S = ConsultStatus
# Every legal edge, written out by hand from the issue; the table must match it exactly.
EXPECTED_EDGES = {
    (S.CREATED, Action.PAY): S.PAID, (S.CREATED, Action.CANCEL): S.CANCELLED,
    (S.PAID, Action.ENQUEUE): S.WAITING, (S.PAID, Action.EXPIRE): S.CLOSED,
    (S.WAITING, Action.CLAIM): S.CLAIMED, (S.WAITING, Action.TRANSFER): S.WAITING,
    (S.WAITING, Action.EXPIRE): S.CLOSED,
    (S.CLAIMED, Action.START): S.IN_PROGRESS, (S.CLAIMED, Action.TRANSFER): S.WAITING,
    (S.CLAIMED, Action.EXPIRE): S.CLOSED,
    (S.IN_PROGRESS, Action.REPLY): S.REPLIED, (S.REPLIED, Action.CLOSE): S.CLOSED,
    (S.CLOSED, Action.REVIEW): S.REVIEWED,
}


def test_transition_table_is_exactly_the_designed_graph() -> None:
    actual = {}
    for status in S:
        for action in Action:
            try:
                actual[(status, action)] = transition("con_x", status, action)
            except IllegalTransition:
                pass
    assert actual == EXPECTED_EDGES


def step(status: ConsultStatus, reason: CloseReason | None, action: Action) -> tuple[ConsultStatus, CloseReason | None]:
    """What the services do: review goes through its guard; close and expire set the reason."""
    if action is Action.REVIEW:
        ensure_may_review("con_x", status, reason, 5)
    new = transition("con_x", status, action)
    if action is Action.CLOSE:
        reason = CloseReason.COMPLETED
    elif action is Action.EXPIRE:
        reason = CloseReason.UNANSWERED
    return new, reason


@given(st.lists(st.sampled_from(list(Action)), max_size=30))
def test_no_illegal_transition_is_reachable(actions: list[Action]) -> None:
    """Random action sequences: refused moves leave the state alone; accepted moves follow
    the designed graph; nothing leaves a terminal state; an order reaches 'in progress'
    only after payment and a claim, and 'reviewed' only after a reply."""
    status, reason, path = S.CREATED, None, [S.CREATED]
    for action in actions:
        try:
            new, reason = step(status, reason, action)
        except IllegalTransition as exc:
            assert (status, action) not in EXPECTED_EDGES or (action is Action.REVIEW and reason is not None)
            assert exc.action == action.label
            continue
        assert status not in TERMINAL
        assert EXPECTED_EDGES[(status, action)] == new
        status = new
        path.append(status)
        if status is S.IN_PROGRESS:
            assert S.PAID in path and S.CLAIMED in path
        if status is S.REVIEWED:
            assert path.index(S.REPLIED) < path.index(S.CLOSED) and S.IN_PROGRESS in path
        if status is S.CANCELLED:
            assert S.PAID not in path


def test_review_needs_a_completed_consultation_and_1_to_5_stars() -> None:
    ensure_may_review("c", S.CLOSED, CloseReason.COMPLETED, 5)
    with pytest.raises(IllegalTransition):
        ensure_may_review("c", S.CLOSED, CloseReason.UNANSWERED, 5)
    with pytest.raises(IllegalTransition):
        ensure_may_review("c", S.REPLIED, None, 5)
    with pytest.raises(InvalidInput):
        ensure_may_review("c", S.CLOSED, CloseReason.COMPLETED, 6)


@given(st.integers(1, 10**5), st.lists(st.integers(1, 10**5), max_size=3), st.lists(st.integers(1, 10**5), max_size=3))
def test_payment_state_is_derived_from_records(price: int, payments: list[int], refunds: list[int]) -> None:
    money = Ledger(sum(payments), sum(refunds))
    state = payment_state(price, money)
    assert money.net_fen == sum(payments) - sum(refunds)
    if sum(payments) < price:
        assert state is PaymentState.UNPAID
    elif not refunds:
        assert state is PaymentState.PAID
    else:
        assert state in (PaymentState.REFUNDED, PaymentState.PARTIALLY_REFUNDED)
    assert payment_state(0, money) is PaymentState.FREE


def test_refunds_never_exceed_what_was_paid() -> None:
    ensure_refundable("c", Ledger(1500, 500), 1000)
    with pytest.raises(RuleViolation):
        ensure_refundable("c", Ledger(1500, 500), 1001)
    with pytest.raises(InvalidInput):
        ensure_refundable("c", Ledger(1500, 0), 0)


def test_designated_line_is_free_con5() -> None:
    check_service_settings(ServiceKind.DESIGNATED, 0, timedelta(hours=12))
    with pytest.raises(RuleViolation, match="CON-5"):
        check_service_settings(ServiceKind.DESIGNATED, 1, timedelta(hours=12))
    with pytest.raises(InvalidInput):
        check_service_settings(ServiceKind.TEXT, -1, timedelta(hours=12))
    with pytest.raises(InvalidInput):
        check_service_settings(ServiceKind.TEXT, 100, timedelta(minutes=5))


def test_attachments_are_typed_by_content_and_size_limited() -> None:
    assert sniff_mime(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_mime(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_mime(b"#!AMR\nxx") == "audio/amr"
    assert check_message(MessageKind.IMAGE, None, b"\x89PNG\r\n\x1a\n" + b"0" * 10) == "image/png"
    with pytest.raises(InvalidInput, match="类型"):  # a voice file sent as an image
        check_message(MessageKind.IMAGE, None, b"#!AMR\nxx")
    with pytest.raises(InvalidInput, match="5 MB"):
        check_message(MessageKind.IMAGE, None, b"\xff\xd8\xff" + b"0" * (5 * 2**20))
    with pytest.raises(InvalidInput):
        check_message(MessageKind.TEXT, "  ", None)
    with pytest.raises(InvalidInput):
        check_message(MessageKind.TEXT, "hi", b"x")
    assert set(TRANSITIONS) == set(Action)
