"""处方流转 on SQLite and PostgreSQL: pay (R20), choose a store, dispense with both
signatures verified again (R41), ship, deliver; refund before dispensing; a used
prescription is never used again (R54)."""

from __future__ import annotations

import base64
from datetime import date, timedelta

import pytest
from sqlalchemy import select, update

from clinical_core.adapters.his_fake import FakeHis
from clinical_core.domain.errors import (
    Conflict,
    Forbidden,
    IllegalTransition,
    InvalidInput,
    NotFound,
    RuleViolation,
)
from clinical_core.domain.prescription import RxStatus
from clinical_core.domain.time import FixedClock
from clinical_core.persistence.models import AuditRow
from clinical_core.persistence.prescription import (
    PrescriptionItemRow,
    PrescriptionRow,
    PrescriptionSignatureRow,
    RxRefundRow,
)
from clinical_core.services import prescriptions, rx_circulation
from opsctl.wiring import Container
from tests.integration.test_prescriptions import pharmacist, rx, setup  # noqa: F401  (fixture)
from tests.support.clinic import ADMIN, Clinic

Setup = tuple[Clinic, str, FakeHis]


@pytest.fixture
def approved(container: Container, setup: Setup) -> tuple[Clinic, str]:  # noqa: F811 (pytest fixture)
    clinic, oid, his = setup
    reviewer = pharmacist(container, "ph.senior", "主管药师", date(2015, 1, 1))
    issued = prescriptions.issue_prescription(container.uow(), clinic.doctor_a, his, container.signer, rx(
        oid, prescriptions.NewItem("XY001", 2, 7, "每日一次，每次 1 片")))
    prescriptions.review_prescription(container.uow(), reviewer, container.signer, issued.public_id, approve=True)
    rx_circulation.add_store(container.uow(), ADMIN, "ph-01", "院内药房", "深圳市福田区某路 1 号",
                             phone="0755-12345678", agreement_no="HT-2026-01")
    return clinic, issued.public_id


def _pay(c: Container, clinic: Clinic, rx_id: str) -> rx_circulation.CirculationView:
    order = rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, rx_id)
    assert order.circulation.amount_fen == 2 * 2750 and order.client_params
    return rx_circulation.handle_paid_notification(c.uow(), c.payments, *c.payments.simulate_payment(
        order.out_trade_no))


def _actions(c: Container, rx_id: str) -> list[str]:
    with c.uow() as uow:
        return list(uow.session.scalars(select(AuditRow.action).where(AuditRow.entity_id == rx_id)
                                        .order_by(AuditRow.id)))


def test_pay_choose_dispense_ship_deliver(container: Container, approved: tuple[Clinic, str]) -> None:
    c, (clinic, rx_id) = container, approved
    assert [s.code for s in rx_circulation.list_stores(c.uow(), clinic.patient)] == ["PH-01"]
    assert rx_circulation.choose_store(c.uow(), clinic.patient, rx_id, "ph-01").store_code == "PH-01"
    order = rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, rx_id)
    again = rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, rx_id)
    assert again.out_trade_no == order.out_trade_no  # one pending order, not two
    notice = c.payments.simulate_payment(order.out_trade_no)
    for _ in range(2):  # the provider repeats notifications; the second changes nothing
        paid = rx_circulation.handle_paid_notification(c.uow(), c.payments, *notice)
        assert (paid.status, paid.paid_fen, paid.refunded_fen) == ("paid", 5500, 0)
    pharm = pharmacist(c, "ph.store", "主管药师", date(2012, 1, 1))
    with pytest.raises(Forbidden):
        rx_circulation.dispense(c.uow(), clinic.patient, c.signer, rx_id)
    dispensed = rx_circulation.dispense(c.uow(), pharm, c.signer, rx_id)
    assert dispensed.status == "dispensed" and dispensed.dispensed_at is not None
    with pytest.raises(InvalidInput):
        rx_circulation.ship(c.uow(), pharm, rx_id, "顺丰", "单号")
    shipped = rx_circulation.ship(c.uow(), pharm, rx_id, "顺丰速运", "SF1234567890")
    assert (shipped.status, shipped.tracking_no) == ("shipped", "SF1234567890")
    with pytest.raises(Forbidden):
        rx_circulation.confirm_delivery(c.uow(), clinic.other_patient, rx_id)
    delivered = rx_circulation.confirm_delivery(c.uow(), clinic.patient, rx_id)
    assert delivered.status == "delivered"
    assert rx_circulation.track(c.uow(), clinic.patient, rx_id) == delivered
    with pytest.raises(Forbidden):
        rx_circulation.track(c.uow(), clinic.other_patient, rx_id)
    assert [a for a in _actions(c, rx_id) if a.startswith(("rx_", "prescription.")) and a not in (
        "prescription.read", "prescription.issue", "prescription.approve") and "sign" not in a] == [
        "prescription.choose_store", "rx_payment.prepay", "rx_payment.succeeded", "prescription.pay",
        "prescription.dispense", "prescription.ship", "prescription.deliver"]


def test_r20_no_drugs_before_an_approved_prescription(container: Container, setup: Setup) -> None:  # noqa: F811 (pytest fixture)
    clinic, oid, his = setup
    issued = prescriptions.issue_prescription(container.uow(), clinic.doctor_a, his, container.signer, rx(oid))
    rx_circulation.add_store(container.uow(), ADMIN, "PH-01", "院内药房", "深圳市福田区某路 1 号")
    for attempt in (lambda: rx_circulation.pay_for_drugs(container.uow(), clinic.patient, container.payments,
                                                         issued.public_id),
                    lambda: rx_circulation.choose_store(container.uow(), clinic.patient, issued.public_id, "PH-01")):
        with pytest.raises(RuleViolation) as caught:
            attempt()
        assert caught.value.rule == "R20"
    pharm = pharmacist(container, "ph.store", "主管药师", date(2012, 1, 1))
    with pytest.raises(IllegalTransition):  # nothing to dispense before it is paid
        rx_circulation.dispense(container.uow(), pharm, container.signer, issued.public_id)


def test_r54_a_used_prescription_is_never_used_again(container: Container, approved: tuple[Clinic, str]) -> None:
    c, (clinic, rx_id) = container, approved
    rx_circulation.choose_store(c.uow(), clinic.patient, rx_id, "PH-01")
    _pay(c, clinic, rx_id)
    rx_circulation.dispense(c.uow(), ADMIN, c.signer, rx_id)
    for attempt in (lambda: rx_circulation.dispense(c.uow(), ADMIN, c.signer, rx_id),
                    lambda: rx_circulation.refund_drugs(c.uow(), clinic.patient, c.payments, rx_id, "不想要了")):
        with pytest.raises(RuleViolation) as caught:
            attempt()
        assert caught.value.rule == "R54"
    rx_circulation.ship(c.uow(), ADMIN, rx_id, "顺丰速运", "SF1234567890")
    with pytest.raises(RuleViolation, match="已调配使用"):
        rx_circulation.dispense(c.uow(), ADMIN, c.signer, rx_id)


def test_r41_change_after_signing_blocks_dispensing(container: Container, approved: tuple[Clinic, str]) -> None:
    c, (clinic, rx_id) = container, approved
    rx_circulation.choose_store(c.uow(), clinic.patient, rx_id, "PH-01")
    _pay(c, clinic, rx_id)
    with c.uow() as uow:  # someone changes the quantity in the database after both signed
        pk = uow.session.scalar(select(PrescriptionRow.id).where(PrescriptionRow.public_id == rx_id))
        uow.session.execute(update(PrescriptionItemRow).where(PrescriptionItemRow.prescription_id == pk)
                            .values(quantity=20))
        uow.commit()
    with pytest.raises(RuleViolation) as caught:
        rx_circulation.dispense(c.uow(), ADMIN, c.signer, rx_id)
    assert caught.value.rule == "R41"
    assert rx_circulation.track(c.uow(), ADMIN, rx_id).status == "paid"
    with c.uow() as uow:  # restore the content, but forge the pharmacist's countersignature
        uow.session.execute(update(PrescriptionItemRow).where(PrescriptionItemRow.prescription_id == pk)
                            .values(quantity=2))
        uow.session.execute(update(PrescriptionSignatureRow).where(
            PrescriptionSignatureRow.prescription_id == pk, PrescriptionSignatureRow.role == "pharmacist")
            .values(signature=base64.b64encode(b"\0" * 64).decode()))
        uow.commit()
    with pytest.raises(RuleViolation) as caught:
        rx_circulation.dispense(c.uow(), ADMIN, c.signer, rx_id)
    assert caught.value.rule == "R41"
    with c.uow() as uow:  # no countersignature at all
        uow.session.execute(PrescriptionSignatureRow.__table__.delete().where(
            PrescriptionSignatureRow.prescription_id == pk, PrescriptionSignatureRow.role == "pharmacist"))
        uow.commit()
    with pytest.raises(RuleViolation) as caught:
        rx_circulation.dispense(c.uow(), ADMIN, c.signer, rx_id)
    assert caught.value.rule == "R23"


def test_refund_after_payment_void_before(container: Container, approved: tuple[Clinic, str]) -> None:
    c, (clinic, rx_id) = container, approved
    with pytest.raises(IllegalTransition):  # nothing paid yet: void instead
        rx_circulation.refund_drugs(c.uow(), clinic.patient, c.payments, rx_id, "不需要了")
    _pay(c, clinic, rx_id)
    with pytest.raises(IllegalTransition):  # paid: no void, only a refund
        prescriptions.void_prescription(c.uow(), ADMIN, rx_id, "作废")
    with pytest.raises(Forbidden):
        rx_circulation.refund_drugs(c.uow(), clinic.other_patient, c.payments, rx_id, "不需要了")
    refunded = rx_circulation.refund_drugs(c.uow(), clinic.patient, c.payments, rx_id, "不需要了")
    assert (refunded.status, refunded.paid_fen, refunded.refunded_fen) == ("refunded", 5500, 5500)
    with c.uow() as uow:
        assert list(uow.session.scalars(select(RxRefundRow.status))) == ["succeeded"]
    with pytest.raises(IllegalTransition):
        rx_circulation.dispense(c.uow(), ADMIN, c.signer, rx_id)


def test_paid_after_void_is_refunded(container: Container, approved: tuple[Clinic, str]) -> None:
    c, (clinic, rx_id) = container, approved
    order = rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, rx_id)
    prescriptions.void_prescription(c.uow(), ADMIN, rx_id, "医生改方")
    view = rx_circulation.handle_paid_notification(c.uow(), c.payments, *c.payments.simulate_payment(
        order.out_trade_no))
    assert (view.status, view.paid_fen, view.refunded_fen) == (RxStatus.VOIDED.value, 5500, 5500)


def test_r25_expired_and_ownership(container: Container, clock: FixedClock, approved: tuple[Clinic, str]) -> None:
    c, (clinic, rx_id) = container, approved
    with pytest.raises(Forbidden):
        rx_circulation.pay_for_drugs(c.uow(), clinic.other_patient, c.payments, rx_id)
    with pytest.raises(NotFound):
        rx_circulation.choose_store(c.uow(), clinic.patient, rx_id, "NOPE")
    clock.advance(timedelta(days=2))
    with pytest.raises(RuleViolation) as caught:
        rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, rx_id)
    assert caught.value.rule == "R25"


# --- 快速续方 ---


def _dispensed(c: Container, clinic: Clinic, his: FakeHis, oid: str, reviewer: object, *items: prescriptions.NewItem,
               reason: str | None = None) -> str:
    rx_id = prescriptions.issue_prescription(c.uow(), clinic.doctor_a, his, c.signer, rx(
        oid, *items, long_term_reason=reason)).public_id
    prescriptions.review_prescription(c.uow(), reviewer, c.signer, rx_id, approve=True)  # type: ignore[arg-type]
    rx_circulation.choose_store(c.uow(), clinic.patient, rx_id, "PH-01")
    order = rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, rx_id)
    rx_circulation.handle_paid_notification(c.uow(), c.payments, *c.payments.simulate_payment(order.out_trade_no))
    rx_circulation.dispense(c.uow(), ADMIN, c.signer, rx_id)
    return rx_id


def test_fast_renewal(container: Container, setup: Setup) -> None:  # noqa: F811 (pytest fixture)
    from clinical_core.persistence.models import HisVisitRow
    from clinical_core.services import rx_renewals, signatures

    c, (clinic, oid, his) = container, setup
    reviewer = pharmacist(c, "ph.senior", "主管药师", date(2015, 1, 1))
    rx_circulation.add_store(c.uow(), ADMIN, "PH-01", "院内药房", "深圳市福田区某路 1 号")
    short = _dispensed(c, clinic, his, oid, reviewer)  # 7 days, no chronic reason
    with pytest.raises(InvalidInput, match="慢性病"):
        rx_renewals.request_renewal(c.uow(), clinic.patient, short)
    chronic = _dispensed(c, clinic, his, oid, reviewer, prescriptions.NewItem("XY001", 2, 28, "每日一次"),
                         reason="高血压病情稳定，长期用药")
    with pytest.raises(Forbidden):
        rx_renewals.request_renewal(c.uow(), clinic.other_patient, chronic)
    asked = rx_renewals.request_renewal(c.uow(), clinic.patient, chronic)
    assert (asked.status, asked.diagnoses, asked.drugs) == ("requested", ("I10",), ("苯磺酸氨氯地平片",))
    with pytest.raises(Conflict):
        rx_renewals.request_renewal(c.uow(), clinic.patient, chronic)
    queue = rx_renewals.renewal_queue(c.uow(), clinic.doctor_a)
    assert [r.public_id for r in queue] == [asked.public_id]
    # the doctor sees the same drug on the patient's other active prescription
    assert [(d.generic_name, d.prescription_ids) for d in queue[0].duplicates] == [("苯磺酸氨氯地平片", (short,))]
    assert rx_renewals.renewal_queue(c.uow(), clinic.doctor_b) == []
    with pytest.raises(Forbidden):
        rx_renewals.decide_renewal(c.uow(), clinic.doctor_b, his, c.signer, asked.public_id, approve=True)
    with pytest.raises(Forbidden):
        rx_renewals.get_renewal(c.uow(), clinic.other_patient, asked.public_id)

    with c.uow() as uow:  # every rule runs again: without the offline diagnosis R02 refuses the renewal
        visit = uow.session.scalar(select(HisVisitRow).where(HisVisitRow.visit_no == "MZ1"))
        saved = visit.diagnoses
        visit.diagnoses = [{"icd10": "E11.9", "name": "2型糖尿病"}]
        uow.commit()
    with pytest.raises(RuleViolation) as caught:
        rx_renewals.decide_renewal(c.uow(), clinic.doctor_a, his, c.signer, asked.public_id, approve=True)
    assert caught.value.rule == "R02"
    assert rx_renewals.get_renewal(c.uow(), clinic.patient, asked.public_id).status == "requested"
    with c.uow() as uow:
        uow.session.scalar(select(HisVisitRow).where(HisVisitRow.visit_no == "MZ1")).diagnoses = saved
        uow.commit()

    renewed = rx_renewals.decide_renewal(c.uow(), clinic.doctor_a, his, c.signer, asked.public_id, approve=True)
    assert renewed.status == "approved" and renewed.new_prescription_id not in (None, chronic)
    new = prescriptions.get_prescription(c.uow(), clinic.patient, renewed.new_prescription_id or "")
    assert (new.status, new.version, [i.days_supply for i in new.items]) == ("pending_review", 1, [28])
    assert [p.public_id for p in prescriptions.review_queue(c.uow(), reviewer)] == [new.public_id]  # R32: reviewed
    checks = signatures.verify_prescription(c.uow(), ADMIN, c.signer, new.public_id)
    assert [(x.role, x.valid) for x in checks] == [("doctor", True)]  # newly signed
    with pytest.raises(RuleViolation) as caught:  # R20: no drugs before the renewal is approved
        rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, new.public_id)
    assert caught.value.rule == "R20"
    with pytest.raises(IllegalTransition):
        rx_renewals.decide_renewal(c.uow(), clinic.doctor_a, his, c.signer, asked.public_id, approve=False,
                                   reason="请复诊")

    again = rx_renewals.request_renewal(c.uow(), clinic.patient, chronic)
    with pytest.raises(InvalidInput):
        rx_renewals.decide_renewal(c.uow(), clinic.doctor_a, his, c.signer, again.public_id, approve=False, reason=" ")
    declined = rx_renewals.decide_renewal(c.uow(), clinic.doctor_a, his, c.signer, again.public_id, approve=False,
                                          reason="请先预约复诊")
    assert (declined.status, declined.decline_reason, declined.new_prescription_id) == (
        "declined", "请先预约复诊", None)
    # the doctor now sees the renewed prescription as an active duplicate too
    assert set(declined.duplicates[0].prescription_ids) == {short, new.public_id}
