"""What the API throughput work changed (issue 3, benchmarks/api_throughput.py): the token check is a
read-only unit of work that never waits for a writer, read-only units of work cannot commit, the
order ledger is one statement, and ``opsctl serve --workers`` builds each worker's app from the
environment."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from clinical_core.domain.access import Principal
from clinical_core.domain.consultation import Ledger, ServiceKind
from clinical_core.domain.errors import ConfigurationError, Unauthenticated
from clinical_core.domain.staff import FilingStatus, Role
from clinical_core.persistence.consultation import (
    ConsultationRow,
    ConsultPaymentRow,
    ConsultRefundRow,
    ConsultServiceRow,
)
from clinical_core.persistence.models import AuditRow, PatientRow
from clinical_core.services import accounts, consult_settings
from clinical_core.services.consult_ledger import ledger_of
from opsctl.http.app import app_from_environment
from opsctl.wiring import Container
from tests.support.clinic import OPS, build_clinic

ADMIN = Principal("cli:root", "root", Role.ADMIN)


def _doctor_token(container: Container) -> str:
    accounts.add_staff_account(container.uow(), ADMIN, accounts.NewStaffAccount(
        username="dr.li", role=Role.DOCTOR, name="李明", title="主治医师", licence_no="110440300001234",
        practising_since=date(2015, 7, 1), filing=FilingStatus.FILED, may_prescribe=True, phone=None))
    return accounts.issue_token(container.uow(), ADMIN, "dr.li", ttl=timedelta(days=1)).token


def test_token_check_does_not_wait_for_a_writer_on_sqlite(sqlite_container: Container) -> None:
    """Every request authenticates; with the write lock it would queue behind every writer (and here,
    with the writer held by the same thread, fail with "database is locked" after the busy timeout)."""
    token = _doctor_token(sqlite_container)
    with sqlite_container.uow() as writer:  # BEGIN IMMEDIATE: holds SQLite's write lock
        writer.session.add(AuditRow(at=sqlite_container.clock.now(), actor="test", action="test.hold",
                                    entity_type="test", entity_id="1", details={}))
        writer.session.flush()
        principal = accounts.authenticate(sqlite_container.uow(), token)
        assert principal.username == "dr.li" and principal.role is Role.DOCTOR
        writer.commit()


def test_token_check_still_refuses_revoked_expired_and_inactive(container: Container) -> None:
    token = _doctor_token(container)
    accounts.authenticate(container.uow(), token)
    with pytest.raises(Unauthenticated):
        accounts.authenticate(container.uow(), token + "x")
    container.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
    with pytest.raises(Unauthenticated, match="过期"):
        accounts.authenticate(container.uow(), token)


def test_read_only_unit_of_work_refuses_to_commit_and_lasts_one_block(container: Container) -> None:
    uow = container.uow()
    with pytest.raises(RuntimeError), uow.read_only():
        uow.session.add(AuditRow(at=container.clock.now(), actor="test", action="test.ro", entity_type="test",
                                 entity_id="1", details={}))
        uow.commit()
    with uow:  # the next block writes as usual
        uow.session.add(AuditRow(at=container.clock.now(), actor="test", action="test.rw", entity_type="test",
                                 entity_id="2", details={}))
        uow.commit()
    with container.uow().read_only() as reader:
        actions = set(reader.session.scalars(AuditRow.__table__.select().with_only_columns(AuditRow.action)))
    assert "test.rw" in actions and "test.ro" not in actions


def test_ledger_sums_only_succeeded_payments_and_refunds(container: Container) -> None:

    clinic = build_clinic(container)

    service = consult_settings.configure_service(container.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=3000, department_code="CARD"))
    now = container.clock.now()
    with container.uow() as uow:
        svc = uow.session.scalar(select(ConsultServiceRow).where(ConsultServiceRow.public_id == service.public_id))
        patient = uow.session.scalar(select(PatientRow).where(PatientRow.public_id == clinic.patient.patient_id))
        assert svc is not None and patient is not None
        row = ConsultationRow(public_id="con_ledger", service_id=svc.id, kind=svc.kind, patient_id=patient.id,
                              department_id=svc.department_id, status="created", price_fen=3000,
                              question_enc=uow.vault.encrypt("胸闷一周想咨询"), created_at=now, transfer_count=0)
        uow.session.add(row)
        uow.session.flush()
        assert ledger_of(uow, row.id) == Ledger(0, 0)
        paid = ConsultPaymentRow(public_id="cpy_1", consultation_id=row.id, out_trade_no="o1", amount_fen=3000,
                                 status="succeeded", created_at=now)
        pending = ConsultPaymentRow(public_id="cpy_2", consultation_id=row.id, out_trade_no="o2", amount_fen=500,
                                    status="pending", created_at=now)
        uow.session.add_all([paid, pending])
        uow.session.flush()
        for n, (amount, status) in enumerate(((1000, "succeeded"), (700, "pending"), (200, "failed"))):
            uow.session.add(ConsultRefundRow(public_id=f"crf_{n}", consultation_id=row.id, payment_id=paid.id,
                                             out_refund_no=f"r{n}", amount_fen=amount, reason="test", status=status,
                                             attempts=0, requested_by="test", created_at=now))
        uow.session.flush()
        assert ledger_of(uow, row.id) == Ledger(3000, 1000)


def test_serve_worker_builds_its_app_from_the_environment(sqlite_container: Container,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:

    s = sqlite_container.settings
    assert s.secret_key is not None
    monkeypatch.delenv("OPSCTL_CONFIG", raising=False)
    monkeypatch.setenv("OPSCTL_DATA_DIR", str(s.data_dir))
    monkeypatch.setenv("OPSCTL_DATABASE_URL", s.effective_database_url)
    monkeypatch.setenv("OPSCTL_SECRET_KEY", s.secret_key.get_secret_value())
    app = app_from_environment()
    with TestClient(app) as client:
        assert client.get("/healthz").json()["status"] == "ok"
    app.state.container.close()


def test_serve_worker_refuses_an_unmigrated_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.delenv("OPSCTL_CONFIG", raising=False)
    monkeypatch.setenv("OPSCTL_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("OPSCTL_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(ConfigurationError):
        app_from_environment()


# --- the Core hot path (create, claim, message): the same rules and views as the ORM paths ---


def test_core_hot_path_gives_the_views_and_audit_of_the_orm_paths(container: Container) -> None:
    """Create, claim and a doctor's first message are written with Core statements; what they return
    must equal what the ORM read path (``get_consultation``) shows afterwards, transitions audited in
    order with their from/to, the message encrypted at rest and the patient's name masked."""
    from clinical_core.adapters.payment_sandbox import SandboxPaymentGateway
    from clinical_core.domain.consultation import MessageKind
    from clinical_core.persistence.consultation import ConsultMessageRow
    from clinical_core.services import consultation

    clinic = build_clinic(container)
    service = consult_settings.configure_service(container.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=0, department_code="CARD")).public_id
    gateway = SandboxPaymentGateway(container.clock)
    created = consultation.create_consultation(container.uow(), clinic.patient, gateway, service, "胸闷一周想咨询")
    order = created.consultation.public_id
    detail = consultation.get_consultation(container.uow(), clinic.patient, order)
    assert created.consultation == detail.consultation
    assert (created.consultation.status, created.consultation.payment_state) == ("waiting", "free")
    assert created.consultation.patient_name != "张伟" and created.consultation.patient_name.startswith("张")

    claimed = consultation.claim_consultation(container.uow(), clinic.doctor_a, order)
    assert claimed == consultation.get_consultation(container.uow(), clinic.doctor_a, order).consultation
    assert (claimed.status, claimed.doctor_id) == ("claimed", clinic.doctor_a.staff_id)

    message = consultation.post_message(container.uow(), clinic.doctor_a, container.attachments, order,
                                        MessageKind.TEXT, "  建议到院复查心电图 ")
    detail = consultation.get_consultation(container.uow(), clinic.doctor_a, order)
    assert detail.messages == (message,) and message.text == "建议到院复查心电图"
    assert detail.consultation.status == "in_progress"
    with container.uow() as uow:
        stored = uow.session.scalar(select(ConsultMessageRow.text_enc).where(
            ConsultMessageRow.public_id == message.public_id))
        assert stored and "心电图" not in stored
        row = uow.session.scalar(select(ConsultationRow).where(ConsultationRow.public_id == order))
        assert row is not None and row.started_at is not None and row.claimed_at is not None
        audit = [(a.action, a.details.get("from"), a.details.get("to")) for a in uow.session.scalars(
            select(AuditRow).where(AuditRow.entity_id == order).order_by(AuditRow.id))]
    assert audit[:6] == [("consultation.create", None, None), ("consultation.pay", "created", "paid"),
                         ("consultation.enqueue", "paid", "waiting"), ("consultation.read", None, None),
                         ("consultation.claim", "waiting", "claimed"), ("consultation.read", None, None)]
    assert audit[6:] == [("consultation.start", "claimed", "in_progress"), ("consultation.message", None, None),
                         ("consultation.read", None, None)]


def test_core_create_of_a_paid_service_records_the_pending_payment(container: Container) -> None:
    from clinical_core.adapters.payment_sandbox import SandboxPaymentGateway
    from clinical_core.services import consultation

    clinic = build_clinic(container)
    service = consult_settings.configure_service(container.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=2500, department_code="CARD")).public_id
    created = consultation.create_consultation(container.uow(), clinic.patient, SandboxPaymentGateway(container.clock),
                                               service, "胸闷一周想咨询")
    assert (created.consultation.status, created.consultation.payment_state) == ("created", "unpaid")
    assert created.consultation.answer_deadline is None and created.out_trade_no
    with container.uow() as uow:
        payment = uow.session.scalar(select(ConsultPaymentRow).where(
            ConsultPaymentRow.out_trade_no == created.out_trade_no))
        assert payment is not None and (payment.status, payment.amount_fen) == ("pending", 2500)
        assert payment.prepay_id and created.pay_params["package"] == f"prepay_id={payment.prepay_id}"


def test_read_only_unit_of_work_without_a_session_rolls_back(container: Container) -> None:
    """The token check's unit of work runs Core on a bare pooled connection; a later ``uow.session``
    in the same block joins that connection, and nothing is committed."""
    uow = container.uow()
    with uow.read_only():
        assert uow.connection.execute(select(AuditRow.id).limit(1)).all() is not None
        uow.session.add(AuditRow(at=container.clock.now(), actor="test", action="test.bare", entity_type="test",
                                 entity_id="1", details={}))
        uow.session.flush()
    with container.uow().read_only() as reader:
        assert reader.connection.execute(select(AuditRow.id).where(AuditRow.action == "test.bare")).first() is None


def test_serve_sizes_its_threadpool_from_configuration(sqlite_container: Container) -> None:
    import anyio.to_thread

    from opsctl.config import HttpSettings
    from opsctl.http.app import create_app

    settings = sqlite_container.settings.model_copy(update={"http": HttpSettings(threads=7)})

    async def tokens() -> float:
        return anyio.to_thread.current_default_thread_limiter().total_tokens

    with TestClient(create_app(settings, sqlite_container)) as client:
        assert client.portal is not None and client.portal.call(tokens) == 7
