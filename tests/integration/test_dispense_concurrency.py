"""Two store pharmacists dispense one paid prescription at the same moment: the
row lock lets exactly one through and the other meets R54 (a used prescription
is never used again). The control run, with the lock removed, shows both
dispensing (two dispense records). PostgreSQL only."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from clinical_core.domain.access import Principal
from clinical_core.domain.consultation import MessageKind, ServiceKind
from clinical_core.domain.errors import NotFound, RuleViolation
from clinical_core.domain.staff import FilingStatus, Role
from clinical_core.persistence.models import (
    AuditRow,
    DepartmentRow,
    HisVisitRow,
    PatientRow,
)
from clinical_core.persistence.prescription import PrescriptionRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import (
    accounts,
    consult_settings,
    consultation,
    drug_catalogue,
    prescriptions,
    rx_circulation,
)
from opsctl.wiring import Container
from tests.support.clinic import ADMIN, OPS, build_clinic, certify

pytestmark = pytest.mark.slow


@pytest.fixture
def container(pg_container: Container) -> Container:
    """Races need PostgreSQL's row locks: these tests run on PostgreSQL only."""
    return pg_container


def _unlocked_load(uow: UnitOfWork, rx_id: str) -> PrescriptionRow:
    row = uow.session.scalar(select(PrescriptionRow).where(PrescriptionRow.public_id == rx_id))
    if row is None:
        raise NotFound(rx_id)
    return row


def _paid_prescription(c: Container) -> tuple[str, list[Principal]]:
    clinic = build_clinic(c)
    staff = []
    for name in ("ph.review", "ph.store1", "ph.store2"):
        view = accounts.add_staff_account(c.uow(), ADMIN, accounts.NewStaffAccount(
            username=name, role=Role.PHARMACIST, name="药师", title="主管药师", licence_no="Y",
            practising_since=date(2012, 1, 1), filing=FilingStatus.FILED, may_prescribe=False))
        staff.append(Principal(view.public_id, name, Role.PHARMACIST, staff_id=view.staff_id))
    certify(c, clinic.doctor_a, staff[0])
    drug_catalogue.import_catalogue(c.uow(), ADMIN, [(2, {"药品编码": "XY001", "通用名": "氨氯地平片",
                                    "规格": "5mg", "剂型": "片剂", "单位": "盒", "价格(元)": "1", "类别": "西药"})],
                                    source="t.xlsx")
    with c.uow() as uow:
        uow.session.add(HisVisitRow(
            visit_no="MZ1", visited_at=datetime(2026, 9, 1, tzinfo=UTC), visit_type="outpatient",
            patient_id=uow.session.scalar(select(PatientRow.id).where(PatientRow.public_id == clinic.patient.patient_id)),
            department_id=uow.session.scalar(select(DepartmentRow.id).where(DepartmentRow.code == "CARD")),
            diagnoses=[{"icd10": "I10", "name": "原发性高血压"}]))
        uow.commit()
    svc = consult_settings.configure_service(c.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=0, department_code="CARD")).public_id
    oid = consultation.create_consultation(c.uow(), clinic.patient, c.payments, svc, "高血压复诊开药").consultation.public_id
    consultation.claim_consultation(c.uow(), clinic.doctor_a, oid)
    consultation.post_message(c.uow(), clinic.doctor_a, c.attachments, oid, MessageKind.TEXT, "您好")
    rx = prescriptions.issue_prescription(c.uow(), clinic.doctor_a, c.his, c.signer, prescriptions.NewPrescription(
        oid, ("I10",), (prescriptions.NewItem("XY001", 1, 7, "每日一次"),))).public_id
    prescriptions.review_prescription(c.uow(), staff[0], c.signer, rx, approve=True)
    rx_circulation.add_store(c.uow(), ADMIN, "PH-01", "院内药房", "门诊楼一层")
    rx_circulation.choose_store(c.uow(), clinic.patient, rx, "PH-01")
    order = rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, rx)
    rx_circulation.handle_paid_notification(c.uow(), c.payments, *c.payments.simulate_payment(order.out_trade_no))
    return rx, staff[1:]


def _race(c: Container, monkeypatch: pytest.MonkeyPatch, locked: bool) -> tuple[list[Any], int]:
    rx, stores = _paid_prescription(c)
    barrier = threading.Barrier(2, timeout=30)
    original = rx_circulation._load if locked else _unlocked_load

    def at_the_same_time(uow: UnitOfWork, rx_id: str) -> PrescriptionRow:
        barrier.wait()
        return original(uow, rx_id)

    monkeypatch.setattr(rx_circulation, "_load", at_the_same_time)
    outcomes: list[Any] = [None, None]

    def dispense(i: int) -> None:
        try:
            outcomes[i] = rx_circulation.dispense(c.uow(), stores[i], c.signer, rx).status
        except RuleViolation as exc:
            outcomes[i] = exc.rule

    threads = [threading.Thread(target=dispense, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with c.uow() as uow:
        dispensed = uow.session.scalar(select(func.count()).select_from(AuditRow).where(
            AuditRow.action == "prescription.dispense", AuditRow.entity_id == rx)) or 0
    return outcomes, dispensed


def test_control_without_the_lock_both_stores_dispense(container: Container,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes, dispensed = _race(container, monkeypatch, locked=False)
    assert outcomes == ["dispensed", "dispensed"] and dispensed == 2  # the race is real


def test_with_the_lock_exactly_one_dispense_r54(container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes, dispensed = _race(container, monkeypatch, locked=True)
    assert sorted(outcomes) == ["R54", "dispensed"] and dispensed == 1
