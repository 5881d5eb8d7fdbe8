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
