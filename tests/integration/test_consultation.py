"""Consultation orders on SQLite and PostgreSQL: payment, the state machine,
claiming, transfer, messages, expiry with refund, review, income."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from clinical_core.adapters.attachments import FileAttachmentStore
from clinical_core.adapters.payment_sandbox import SandboxPaymentGateway
from clinical_core.domain.consultation import MessageKind, ServiceKind
from clinical_core.domain.errors import (
    Conflict,
    ExternalServiceError,
    Forbidden,
    IllegalTransition,
    InvalidInput,
    RuleViolation,
)
from clinical_core.domain.time import FixedClock
from clinical_core.persistence.models import AuditRow
from clinical_core.services import consult_jobs, consult_ledger, consult_settings, consultation
from opsctl.wiring import Container
from tests.support.clinic import ADMIN, OPS, Clinic, build_clinic

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
QUESTION = "最近一周胸闷，活动后加重，想咨询是否需要复诊"


@pytest.fixture
def clinic(container: Container) -> Clinic:
    return build_clinic(container)


@pytest.fixture
def gateway(clock: FixedClock) -> SandboxPaymentGateway:
    return SandboxPaymentGateway(clock)


def dept_service(c: Container, price: int = 1500, minutes: int = 24 * 60) -> str:
    return consult_settings.configure_service(c.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=price, department_code="CARD", time_limit_minutes=minutes)).public_id


def paid_order(c: Container, clinic: Clinic, gateway: SandboxPaymentGateway, service: str) -> str:
    created = consultation.create_consultation(c.uow(), clinic.patient, gateway, service, QUESTION)
    assert created.out_trade_no and created.pay_params["package"].startswith("prepay_id=")
    headers, body = gateway.simulate_payment(created.out_trade_no)
    view = consultation.handle_paid_notification(c.uow(), gateway, headers, body)
    assert (view.status, view.payment_state, view.paid_fen) == ("waiting", "paid", 1500)
    return created.consultation.public_id


def test_full_life_of_a_department_consultation(container: Container, clinic: Clinic,
                                                gateway: SandboxPaymentGateway, tmp_path: Path) -> None:
    store = FileAttachmentStore(tmp_path / "attachments")
    service = dept_service(container)
    order = paid_order(container, clinic, gateway, service)
    pool = consultation.doctor_todo(container.uow(), clinic.doctor_a, "department")
    assert [v.public_id for v in pool] == [order]
    assert consultation.doctor_todo(container.uow(), clinic.doctor_c, "department") == []

    consultation.claim_consultation(container.uow(), clinic.doctor_a, order)
    assert consultation.doctor_todo(container.uow(), clinic.doctor_a, "department") == []
    assert [v.status for v in consultation.doctor_todo(container.uow(), clinic.doctor_a)] == ["claimed"]

    consultation.post_message(container.uow(), clinic.patient, store, order, MessageKind.IMAGE, "心电图", PNG)
    consultation.post_message(container.uow(), clinic.doctor_a, store, order, MessageKind.TEXT, "请描述发作时间")
    with pytest.raises(IllegalTransition):
        consultation.close_consultation(container.uow(), clinic.patient, order)
    consultation.reply_consultation(container.uow(), clinic.doctor_a, order, "建议线下复诊并复查心电图")
    consultation.close_consultation(container.uow(), clinic.patient, order)
    reviewed = consultation.review_consultation(container.uow(), clinic.patient, order, 5, "很耐心")
    assert (reviewed.status, reviewed.review_rating, reviewed.doctor_name) == ("reviewed", 5, "医生A")
    with pytest.raises(IllegalTransition):
        consultation.review_consultation(container.uow(), clinic.patient, order, 4)

    detail = consultation.get_consultation(container.uow(), clinic.patient, order)
    assert detail.question == QUESTION
    assert [(m.sender, m.kind) for m in detail.messages] == [("patient", "image"), ("doctor", "text"),
                                                             ("doctor", "text")]
    image = detail.messages[0]
    assert image.attachment_sha256 == hashlib.sha256(PNG).hexdigest() and image.attachment_mime == "image/png"
    mime, data = consultation.read_attachment(container.uow(), clinic.patient, store, order, image.public_id)
    assert (mime, data) == ("image/png", PNG)
    sha = image.attachment_sha256
    assert (tmp_path / "attachments" / sha[:2] / sha[2:4] / sha).read_bytes() == PNG
    with container.engine.connect() as conn:  # conversation text is encrypted at rest
        dump = " ".join(str(v) for r in conn.execute(text("SELECT * FROM consult_messages")) for v in r)
        dump += " ".join(str(v) for r in conn.execute(text("SELECT * FROM consultations")) for v in r)
    assert "心电图" not in dump and "胸闷" not in dump and "很耐心" not in dump
    with container.uow() as uow:
        actions = list(uow.session.scalars(select(AuditRow.action).where(AuditRow.entity_id == order)
                                           .order_by(AuditRow.id)))
    assert actions[:6] == ["consultation.create", "consult_payment.succeeded", "consultation.pay",
                           "consultation.enqueue", "consultation.claim", "consultation.message"]
    assert {"consultation.start", "consultation.reply", "consultation.close", "consultation.review",
            "consultation.read", "consultation.attachment_read"} <= set(actions)


def test_paid_notification_is_verified_and_idempotent(container: Container, clinic: Clinic,
                                                      gateway: SandboxPaymentGateway) -> None:
    created = consultation.create_consultation(container.uow(), clinic.patient, gateway, dept_service(container),
                                               QUESTION)
    assert created.consultation.payment_state == "unpaid"
    headers, body = gateway.simulate_payment(created.out_trade_no or "")
    with pytest.raises(ExternalServiceError, match="签名"):
        consultation.handle_paid_notification(container.uow(), gateway, headers, body.replace(b"1500", b"1"))
    first = consultation.handle_paid_notification(container.uow(), gateway, headers, body)
    again = consultation.handle_paid_notification(container.uow(), gateway, headers, body)
    assert first == again and first.paid_fen == 1500
    with container.uow() as uow:
        pays = uow.session.scalar(select(AuditRow.id).where(AuditRow.action == "consultation.pay").limit(2))
        n = len(list(uow.session.scalars(select(AuditRow.id).where(AuditRow.action == "consultation.pay"))))
    assert pays and n == 1


def test_claim_requires_r07_and_the_right_department(container: Container, clinic: Clinic,
                                                     gateway: SandboxPaymentGateway) -> None:
    order = paid_order(container, clinic, gateway, dept_service(container))
    with pytest.raises(RuleViolation, match="R07"):
        consultation.claim_consultation(container.uow(), clinic.junior, order)
    with pytest.raises(Forbidden):
        consultation.claim_consultation(container.uow(), clinic.doctor_c, order)
    consultation.claim_consultation(container.uow(), clinic.doctor_a, order)
    with pytest.raises(IllegalTransition):
        consultation.claim_consultation(container.uow(), clinic.doctor_b, order)


def test_conditional_claim_refuses_a_second_doctor(container: Container, clinic: Clinic,
                                                   gateway: SandboxPaymentGateway) -> None:
    """The database guard itself: a claim whose read was stale loses at the UPDATE."""
    order = paid_order(container, clinic, gateway, dept_service(container))
    consultation.claim_consultation(container.uow(), clinic.doctor_a, order)
    with container.uow() as uow:
        row = consultation._load(uow, order)
        doctor_b = consultation._me(uow, clinic.doctor_b)
        assert consultation._claim_write(uow, row.id, doctor_b.id, uow.clock.now()) is False


def test_transfer_moves_the_order_to_another_pool(container: Container, clinic: Clinic,
                                                  gateway: SandboxPaymentGateway) -> None:
    order = paid_order(container, clinic, gateway, dept_service(container))
    consultation.claim_consultation(container.uow(), clinic.doctor_a, order)
    with pytest.raises(InvalidInput):
        consultation.transfer_consultation(container.uow(), clinic.doctor_a, order, "CARD")
    moved = consultation.transfer_consultation(container.uow(), clinic.doctor_a, order, "GAST")
    assert (moved.status, moved.department, moved.doctor_id, moved.transfer_count) == ("waiting", "消化内科", None, 1)
    assert consultation.doctor_todo(container.uow(), clinic.doctor_a, "department") == []
    assert [v.public_id for v in consultation.doctor_todo(container.uow(), clinic.doctor_c, "department")] == [order]
    with pytest.raises(Forbidden):
        consultation.get_consultation(container.uow(), clinic.doctor_a, order)
    consultation.claim_consultation(container.uow(), clinic.doctor_c, order)


def test_unanswered_orders_are_closed_and_refunded(container: Container, clinic: Clinic,
                                                   gateway: SandboxPaymentGateway, clock: FixedClock) -> None:
    service = dept_service(container, minutes=60)
    late = paid_order(container, clinic, gateway, service)
    answered = paid_order(container, clinic, gateway, service)
    unpaid = consultation.create_consultation(container.uow(), clinic.patient, gateway, service, QUESTION)
    consultation.claim_consultation(container.uow(), clinic.doctor_a, answered)
    consultation.post_message(container.uow(), clinic.doctor_a, FileAttachmentStore(Path("/nonexistent")), answered,
                              MessageKind.TEXT, "您好")
    assert consult_jobs.expire_unanswered(container.uow(), clock.now()).closed_unanswered == ()
    clock.advance(timedelta(minutes=61))
    result = consult_jobs.expire_unanswered(container.uow(), clock.now())
    assert result.closed_unanswered == (late,) and result.refunds_requested == 1
    assert result.cancelled_unpaid == (unpaid.consultation.public_id,)
    view = consultation.list_consultations(container.uow(), ADMIN, status=None)
    by_id = {v.public_id: v for v in view}
    assert (by_id[late].status, by_id[late].close_reason, by_id[late].payment_state) == ("closed", "unanswered", "paid")
    assert by_id[answered].status == "in_progress"
    # The refund is its own record; the provider is called after, and a failure is retried.
    gateway.fail_next_refunds = 1
    assert consult_ledger.settle_refunds(container.uow(), gateway) == consult_ledger.SettleResult(0, 1)
    assert [r.status for r in consult_ledger.list_refunds(container.uow(), OPS)] == ["pending"]
    assert consult_ledger.settle_refunds(container.uow(), gateway) == consult_ledger.SettleResult(1, 0)
    assert consult_ledger.settle_refunds(container.uow(), gateway) == consult_ledger.SettleResult(0, 0)
    refunded = {v.public_id: v for v in consultation.list_consultations(container.uow(), ADMIN)}[late]
    assert (refunded.payment_state, refunded.refunded_fen) == ("refunded", 1500)
    with pytest.raises(IllegalTransition):
        consultation.review_consultation(container.uow(), clinic.patient, late, 1)
    # A second run changes nothing.
    assert consult_jobs.expire_unanswered(container.uow(), clock.now()).closed_unanswered == ()
    income = consult_ledger.doctor_statistics(container.uow(), OPS)
    assert sum(r.paid_fen for r in income) == 3000 and sum(r.net_fen for r in income) == 1500
    with pytest.raises(RuleViolation):  # nothing left to refund on the expired order
        consult_ledger.request_refund(container.uow(), OPS, late, 1, "complaint")


def test_patient_sees_only_own_and_doctor_only_theirs(container: Container, clinic: Clinic,
                                                      gateway: SandboxPaymentGateway) -> None:
    order = paid_order(container, clinic, gateway, dept_service(container))
    with pytest.raises(Forbidden):
        consultation.get_consultation(container.uow(), clinic.other_patient, order)
    assert consultation.list_consultations(container.uow(), clinic.other_patient) == []
    assert [v.public_id for v in consultation.list_consultations(container.uow(), clinic.patient)] == [order]
    with pytest.raises(Forbidden):
        consultation.get_consultation(container.uow(), clinic.doctor_c, order)
    with pytest.raises(Forbidden):  # admins manage orders but do not read the conversation
        consultation.get_consultation(container.uow(), ADMIN, order)
    with pytest.raises(Forbidden):
        consultation.list_consultations(container.uow(), clinic.doctor_a)


def test_personal_and_designated_services(container: Container, clinic: Clinic,
                                          gateway: SandboxPaymentGateway) -> None:
    text_svc = consult_settings.configure_service(container.uow(), clinic.doctor_a, consult_settings.ServiceSettings(
        kind=ServiceKind.TEXT, price_fen=3000))
    assert (text_svc.doctor_id, text_svc.price_fen, text_svc.enabled) == (clinic.doctor_a.staff_id, 3000, True)
    with pytest.raises(Forbidden):
        consult_settings.configure_service(container.uow(), clinic.doctor_a, consult_settings.ServiceSettings(
            kind=ServiceKind.TEXT, price_fen=1, doctor_id=clinic.doctor_b.staff_id))
    with pytest.raises(RuleViolation, match="R07"):
        consult_settings.configure_service(container.uow(), clinic.junior, consult_settings.ServiceSettings(
            kind=ServiceKind.TEXT, price_fen=1000))
    with pytest.raises(RuleViolation, match="CON-5"):
        consult_settings.configure_service(container.uow(), OPS, consult_settings.ServiceSettings(
            kind=ServiceKind.DESIGNATED, price_fen=100, name="疫情定点保障"))
    line = consult_settings.configure_service(container.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DESIGNATED, price_fen=0, name="疫情定点保障"))
    with pytest.raises(RuleViolation, match="R07"):
        consult_settings.appoint_team(container.uow(), OPS, line.public_id, [clinic.junior.staff_id or ""])
    consult_settings.appoint_team(container.uow(), OPS, line.public_id, [clinic.doctor_c.staff_id or ""])

    # A personal order is claimable only by its doctor.
    personal = consultation.create_consultation(container.uow(), clinic.patient, gateway, text_svc.public_id,
                                                QUESTION)
    headers, body = gateway.simulate_payment(personal.out_trade_no or "")
    consultation.handle_paid_notification(container.uow(), gateway, headers, body)
    with pytest.raises(Forbidden):
        consultation.claim_consultation(container.uow(), clinic.doctor_b, personal.consultation.public_id)
    assert [v.public_id for v in consultation.doctor_todo(container.uow(), clinic.doctor_a)] == [
        personal.consultation.public_id]
    consultation.claim_consultation(container.uow(), clinic.doctor_a, personal.consultation.public_id)

    # The designated line is free, skips payment and reaches only its team.
    free = consultation.create_consultation(container.uow(), clinic.patient, gateway, line.public_id, QUESTION)
    assert (free.out_trade_no, free.consultation.status, free.consultation.payment_state) == (None, "waiting", "free")
    assert consultation.doctor_todo(container.uow(), clinic.doctor_a, "department") == []
    assert [v.public_id for v in consultation.doctor_todo(container.uow(), clinic.doctor_c, "department")] == [
        free.consultation.public_id]
    with pytest.raises(Forbidden):
        consultation.claim_consultation(container.uow(), clinic.doctor_a, free.consultation.public_id)
    consultation.claim_consultation(container.uow(), clinic.doctor_c, free.consultation.public_id)

    consult_settings.configure_service(container.uow(), clinic.doctor_a, consult_settings.ServiceSettings(
        kind=ServiceKind.TEXT, price_fen=3000, enabled=False))
    assert text_svc.public_id not in {s.public_id for s in consult_settings.list_services(container.uow(),
                                                                                          clinic.patient)}


def test_paid_after_cancel_is_refunded(container: Container, clinic: Clinic, gateway: SandboxPaymentGateway) -> None:
    created = consultation.create_consultation(container.uow(), clinic.patient, gateway, dept_service(container),
                                               QUESTION)
    consultation.cancel_consultation(container.uow(), clinic.patient, created.consultation.public_id)
    headers, body = gateway.simulate_payment(created.out_trade_no or "")
    view = consultation.handle_paid_notification(container.uow(), gateway, headers, body)
    assert view.status == "cancelled"
    assert [(r.reason, r.amount_fen) for r in consult_ledger.list_refunds(container.uow(), OPS)] == [
        ("paid_after_cancel", 1500)]


def test_message_limits(container: Container, clinic: Clinic, gateway: SandboxPaymentGateway,
                        tmp_path: Path) -> None:
    store = FileAttachmentStore(tmp_path / "a")
    order = paid_order(container, clinic, gateway, dept_service(container))
    with pytest.raises(InvalidInput, match="类型"):
        consultation.post_message(container.uow(), clinic.patient, store, order, MessageKind.IMAGE, None,
                                  b"MZ\x90\x00 not an image")
    with pytest.raises(InvalidInput, match="MB"):
        consultation.post_message(container.uow(), clinic.patient, store, order, MessageKind.VOICE, None,
                                  b"#!AMR\n" + b"\x00" * (2 * 2**20))
    with pytest.raises(Forbidden, match="接诊"):
        consultation.post_message(container.uow(), clinic.doctor_a, store, order, MessageKind.TEXT, "你好")
    assert not (tmp_path / "a").exists()
    consultation.claim_consultation(container.uow(), clinic.doctor_a, order)
    with pytest.raises(Conflict):  # claiming twice, even by the same doctor
        consultation.claim_consultation(container.uow(), clinic.doctor_a, order)
