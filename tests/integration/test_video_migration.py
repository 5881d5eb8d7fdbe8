"""Migration 0008 rebuilds ``prescriptions`` on SQLite (``consultation_id`` becomes
nullable, ``video_visit_id`` is added) while other tables point at it: with
rows in place, downgrade and upgrade keep every row and every foreign key."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import func, select, text

from clinical_core.domain.consultation import ServiceKind
from clinical_core.persistence.models import DrugRow
from clinical_core.persistence.prescription import (
    PrescriptionItemRow,
    PrescriptionRow,
    PrescriptionSignatureRow,
)
from clinical_core.services import consult_settings, consultation
from opsctl import db
from opsctl.wiring import Container
from tests.support.clinic import OPS, build_clinic


def test_prescriptions_survive_the_rebuild(container: Container) -> None:
    clinic = build_clinic(container)
    service = consult_settings.configure_service(container.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=0, department_code="CARD")).public_id
    order = consultation.create_consultation(container.uow(), clinic.patient, container.payments, service,
                                             "高血压复诊，想续药").consultation
    now = datetime(2026, 11, 1, tzinfo=UTC)
    with container.uow() as uow:
        from clinical_core.persistence.consultation import ConsultationRow
        from clinical_core.persistence.models import PatientRow, StaffRow

        con = uow.session.scalar(select(ConsultationRow).where(ConsultationRow.public_id == order.public_id))
        doctor = uow.session.scalar(select(StaffRow.id).where(StaffRow.public_id == clinic.doctor_a.staff_id))
        patient = uow.session.scalar(select(PatientRow.id).where(PatientRow.public_id == clinic.patient.patient_id))
        drug = DrugRow(public_id="drg_m", code="M1", generic_name="氨氯地平片", specification="5mg", dosage_form="片剂",
                       unit="盒", price_fen=100, category="western", control_class="none")
        uow.session.add(drug)
        assert con is not None and doctor is not None and patient is not None
        rx = PrescriptionRow(public_id="rx_m", consultation_id=con.id, patient_id=patient, doctor_id=doctor,
                             status="pending_review", version=1, diagnoses=[{"icd10": "I10", "name": "高血压"}],
                             valid_days=1, guardian_present=False, warnings=[], issued_at=now)
        uow.session.add(rx)
        uow.session.flush()
        uow.session.add(PrescriptionItemRow(prescription_id=rx.id, drug_id=drug.id, generic_name="氨氯地平片",
                                            specification="5mg", quantity=1, days_supply=7, usage="每日一次",
                                            price_fen=100))
        uow.commit()
    config = db.alembic_config(container.engine)
    for step in ("down", "up"):
        with container.engine.begin() as connection:
            config.attributes["connection"] = connection
            if step == "down":
                command.downgrade(config, "0007_dispensing")
            else:
                command.upgrade(config, "head")
    assert db.current_revision(container.engine) == db.head_revision(container.engine)
    with container.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(PrescriptionItemRow)) == 1
        assert uow.session.scalar(select(PrescriptionRow.consultation_id).where(PrescriptionRow.public_id == "rx_m"))
        assert uow.session.scalar(select(func.count()).select_from(PrescriptionSignatureRow)) == 0
    if container.engine.dialect.name == "sqlite":
        with container.engine.connect() as connection:
            assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
            ddl = connection.execute(text("SELECT sql FROM sqlite_master WHERE name = 'prescription_items'")).scalar()
            assert "REFERENCES prescriptions" in (ddl or "").replace('"', "")
