"""Two pharmacists approve one prescription at the same moment: the row lock
lets exactly one review through. The control run, with the lock removed, shows
both approving (two review records, two countersignatures). PostgreSQL only."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from clinical_core.domain.access import Principal
from clinical_core.domain.consultation import MessageKind, ServiceKind
from clinical_core.domain.errors import IllegalTransition, NotFound
from clinical_core.domain.staff import FilingStatus, Role
from clinical_core.persistence.models import DepartmentRow, HisVisitRow, PatientRow
from clinical_core.persistence.prescription import PrescriptionReviewRow, PrescriptionRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import accounts, consult_settings, consultation, drug_catalogue, prescriptions
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


def _race(container: Container, monkeypatch: pytest.MonkeyPatch, locked: bool) -> tuple[list[Any], int]:
    clinic = build_clinic(container)
    pharmacists = []
    for name in ("ph.one", "ph.two"):
        view = accounts.add_staff_account(container.uow(), ADMIN, accounts.NewStaffAccount(
            username=name, role=Role.PHARMACIST, name="药师", title="主管药师", licence_no="Y",
            practising_since=date(2012, 1, 1), filing=FilingStatus.FILED, may_prescribe=False))
        pharmacists.append(Principal(view.public_id, name, Role.PHARMACIST, staff_id=view.staff_id))
    certify(container, clinic.doctor_a, *pharmacists)
    drug_catalogue.import_catalogue(container.uow(), ADMIN, [(2, {"药品编码": "XY001", "通用名": "氨氯地平片",
                                    "规格": "5mg", "剂型": "片剂", "单位": "盒", "价格(元)": "1", "类别": "西药"})],
                                    source="t.xlsx")
    with container.uow() as uow:
        uow.session.add(HisVisitRow(
            visit_no="MZ1", visited_at=datetime(2026, 9, 1, tzinfo=UTC), visit_type="outpatient",
            patient_id=uow.session.scalar(select(PatientRow.id).where(PatientRow.public_id == clinic.patient.patient_id)),
            department_id=uow.session.scalar(select(DepartmentRow.id).where(DepartmentRow.code == "CARD")),
            diagnoses=[{"icd10": "I10", "name": "原发性高血压"}]))
        uow.commit()
    svc = consult_settings.configure_service(container.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=0, department_code="CARD")).public_id
    oid = consultation.create_consultation(container.uow(), clinic.patient, container.payments, svc,
                                           "高血压复诊开药").consultation.public_id
    consultation.claim_consultation(container.uow(), clinic.doctor_a, oid)
    consultation.post_message(container.uow(), clinic.doctor_a, container.attachments, oid, MessageKind.TEXT, "您好")
    rx = prescriptions.issue_prescription(container.uow(), clinic.doctor_a, container.his, container.signer,
                                          prescriptions.NewPrescription(oid, ("I10",), (
                                              prescriptions.NewItem("XY001", 1, 7, "每日一次"),))).public_id
    barrier = threading.Barrier(2, timeout=30)
    original = prescriptions._load if locked else _unlocked_load

    def at_the_same_time(uow: UnitOfWork, rx_id: str) -> PrescriptionRow:
        barrier.wait()
        return original(uow, rx_id)

    monkeypatch.setattr(prescriptions, "_load", at_the_same_time)
    outcomes: list[Any] = [None, None]

    def review(i: int) -> None:
        try:
            outcomes[i] = prescriptions.review_prescription(container.uow(), pharmacists[i], container.signer, rx,
                                                            approve=True).status
        except IllegalTransition as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=review, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with container.uow() as uow:
        reviews = uow.session.scalar(select(func.count()).select_from(PrescriptionReviewRow)) or 0
    return outcomes, reviews


def test_control_without_the_lock_both_pharmacists_approve(container: Container,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes, reviews = _race(container, monkeypatch, locked=False)
    assert outcomes == ["approved", "approved"] and reviews == 2  # the race is real


def test_with_the_lock_exactly_one_review(container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes, reviews = _race(container, monkeypatch, locked=True)
    assert sorted(type(o).__name__ for o in outcomes) == ["IllegalTransition", "str"] and reviews == 1
