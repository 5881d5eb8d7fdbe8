"""The prescription's state machine: random action sequences never reach an
illegal state; approval only from review; a rejection always comes back
through review (R35); voided is final; payment only after approval
(R20); dispensed at most once (R54)."""

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
    check_store_code,
    check_tracking,
    drugs_total_fen,
    ensure_may_order_drugs,
    ensure_may_review_online,
    ensure_unused,
    rx_transition,
)
from clinical_core.domain.staff import FilingStatus, Qualification, Role

R = RxStatus
EDGES = {(R.PENDING_REVIEW, RxAction.APPROVE): R.APPROVED, (R.PENDING_REVIEW, RxAction.REJECT): R.REJECTED,
         (R.REJECTED, RxAction.REVISE): R.PENDING_REVIEW, (R.PENDING_REVIEW, RxAction.VOID): R.VOIDED,
         (R.REJECTED, RxAction.VOID): R.VOIDED, (R.APPROVED, RxAction.VOID): R.VOIDED,
         (R.APPROVED, RxAction.PAY): R.PAID, (R.PAID, RxAction.DISPENSE): R.DISPENSED,
         (R.DISPENSED, RxAction.SHIP): R.SHIPPED, (R.SHIPPED, RxAction.DELIVER): R.DELIVERED,
         (R.PAID, RxAction.REFUND): R.REFUNDED}
FINAL = {R.VOIDED, R.DELIVERED, R.REFUNDED}


@given(st.lists(st.sampled_from(list(RxAction)), max_size=25))
def test_no_illegal_transition_is_reachable(actions: list[RxAction]) -> None:
    status, path = R.PENDING_REVIEW, [R.PENDING_REVIEW]
    for action in actions:
        try:
            new = rx_transition("rx_x", status, action)
        except IllegalTransition:
            assert (status, action) not in EDGES
            continue
        assert EDGES[(status, action)] == new and status not in FINAL
        if new is R.APPROVED:
            assert path[-1] is R.PENDING_REVIEW  # only a reviewed pending prescription is approved
        status = new
        path.append(status)
    for i, s in enumerate(path[:-1]):
        if s is R.REJECTED and path[i + 1] is not R.VOIDED:
            assert path[i + 1] is R.PENDING_REVIEW  # R35: back through review
    if R.PAID in path:  # R20/R32: payment only ever follows an approval
        assert path[path.index(R.PAID) - 1] is R.APPROVED
    assert path.count(R.DISPENSED) <= 1  # R54: dispensed at most once
    if R.VOIDED in path:  # void before payment only
        assert R.PAID not in path


@pytest.mark.parametrize("status", [R.PENDING_REVIEW, R.REJECTED])
def test_r20_no_drug_order_before_approval(status: RxStatus) -> None:
    with pytest.raises(RuleViolation) as caught:
        ensure_may_order_drugs("rx_x", status)
    assert caught.value.rule == "R20"
    ensure_may_order_drugs("rx_x", R.APPROVED)
    with pytest.raises(IllegalTransition):
        ensure_may_order_drugs("rx_x", R.VOIDED)


@pytest.mark.parametrize("status", [R.DISPENSED, R.SHIPPED, R.DELIVERED])
def test_r54_used_prescription_not_dispensed_again(status: RxStatus) -> None:
    with pytest.raises(RuleViolation) as caught:
        ensure_unused("rx_x", status)
    assert caught.value.rule == "R54"
    ensure_unused("rx_x", R.PAID)
    with pytest.raises(IllegalTransition):
        ensure_unused("rx_x", R.REFUNDED)


def test_tracking_and_store_code_inputs() -> None:
    assert check_tracking(" 顺丰速运 ", "SF1234567890") == ("顺丰速运", "SF1234567890")
    for carrier, number in (("", "SF1234567890"), ("顺丰", "单号123456"), ("顺丰", "12"), ("顺丰", "SF 123456")):
        with pytest.raises(InvalidInput):
            check_tracking(carrier, number)
    assert check_store_code(" ph-01 ") == "PH-01"
    with pytest.raises(InvalidInput):
        check_store_code("药房")
    assert drugs_total_fen([(2750, 2), (1990, 1)]) == 7490


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


def test_renewal_rules() -> None:
    from clinical_core.domain.prescription import (
        RenewalStatus,
        check_decline_reason,
        duplicates,
        ensure_renewable,
        renewal_transition,
    )

    ensure_renewable(R.DELIVERED, "慢病长期用药", 28)
    ensure_renewable(R.DISPENSED, None, 28)  # more than 7 days' supply is chronic (R26)
    for status, reason, days in ((R.APPROVED, "慢病", 28), (R.REFUNDED, "慢病", 28), (R.DELIVERED, None, 7)):
        with pytest.raises(InvalidInput):
            ensure_renewable(status, reason, days)
    assert renewal_transition("rnw_x", RenewalStatus.REQUESTED, True) is RenewalStatus.APPROVED
    assert renewal_transition("rnw_x", RenewalStatus.REQUESTED, False) is RenewalStatus.DECLINED
    for done in (RenewalStatus.APPROVED, RenewalStatus.DECLINED):
        with pytest.raises(IllegalTransition):
            renewal_transition("rnw_x", done, True)
    with pytest.raises(InvalidInput):
        check_decline_reason("  ")
    assert duplicates({"氨氯地平", "缬沙坦"}, {"rx_b": {"氨氯地平"}, "rx_a": {"氨氯地平", "二甲双胍"}}) == {
        "氨氯地平": ("rx_a", "rx_b")}
    assert duplicates({"缬沙坦"}, {"rx_a": {"氨氯地平"}}) == {}
