"""Prescriptions on SQLite and PostgreSQL: issued only inside a follow-up
consultation with an offline diagnosis, every rule enforced, reviewed by a
qualified pharmacist, rejected → revised → reviewed again, never automatic."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select, update

from clinical_core.adapters.his_fake import FakeHis
from clinical_core.adapters.payment_sandbox import SandboxPaymentGateway
from clinical_core.domain.access import Principal
from clinical_core.domain.consultation import MessageKind, ServiceKind
from clinical_core.domain.drug_catalogue import CatalogueRejected
from clinical_core.domain.errors import Forbidden, IllegalTransition, InvalidInput, RuleViolation
from clinical_core.domain.prescription import RejectReason
from clinical_core.domain.staff import FilingStatus, Role
from clinical_core.domain.time import FixedClock
from clinical_core.persistence.models import AuditRow, DepartmentRow, DrugRow, HisVisitRow, PatientRow
from clinical_core.persistence.prescription import PrescriptionItemRow, StaffCertificateRow
from clinical_core.services import accounts, consult_settings, consultation, drug_catalogue, prescriptions, signatures
from opsctl.wiring import Container
from tests.support.clinic import ADMIN, OPS, Clinic, build_clinic, certify

CATALOGUE = [
    (2, {"药品编码": "XY001", "通用名": "苯磺酸氨氯地平片", "规格": "5mg*28片", "剂型": "片剂", "单位": "盒",
         "价格(元)": "27.50", "类别": "西药", "管制类别": "普通药品", "处方药": "是"}),
    (3, {"药品编码": "XY002", "通用名": "唑吡坦片", "规格": "10mg*7片", "剂型": "片剂", "单位": "盒",
         "价格(元)": "30", "类别": "西药", "管制类别": "第二类精神药品", "处方药": "是"}),
    (4, {"药品编码": "XY003", "通用名": "缬沙坦胶囊", "规格": "80mg*28粒", "剂型": "胶囊剂", "单位": "盒",
         "价格(元)": "19.9", "类别": "西药"}),
]


def pharmacist(c: Container, username: str, title: str, since: date) -> Principal:
    view = accounts.add_staff_account(c.uow(), ADMIN, accounts.NewStaffAccount(
        username=username, role=Role.PHARMACIST, name="药师", title=title, licence_no="YS1",
        practising_since=since, filing=FilingStatus.FILED, may_prescribe=False))
    principal = Principal(view.public_id, username, Role.PHARMACIST, staff_id=view.staff_id)
    certify(c, principal)
    return principal


@pytest.fixture
def setup(container: Container, clock: FixedClock) -> tuple[Clinic, str, FakeHis]:
    clinic = build_clinic(container)
    certify(container, clinic.doctor_a, clinic.doctor_b)
    assert drug_catalogue.import_catalogue(container.uow(), ADMIN, CATALOGUE, source="t.xlsx").created == 3
    with container.uow() as uow:
        pid = uow.session.scalar(select(PatientRow.id).where(PatientRow.public_id == clinic.patient.patient_id))
        dept = uow.session.scalar(select(DepartmentRow.id).where(DepartmentRow.code == "CARD"))
        uow.session.add(HisVisitRow(visit_no="MZ1", patient_id=pid, department_id=dept, visit_type="outpatient",
                                    visited_at=datetime(2026, 9, 1, tzinfo=UTC),
                                    diagnoses=[{"icd10": "I10", "name": "原发性高血压"}]))
        uow.commit()
    svc = consult_settings.configure_service(container.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=0, department_code="CARD")).public_id
    oid = consultation.create_consultation(container.uow(), clinic.patient, SandboxPaymentGateway(clock), svc,
                                           "高血压复诊开药").consultation.public_id
    consultation.claim_consultation(container.uow(), clinic.doctor_a, oid)
    consultation.post_message(container.uow(), clinic.doctor_a, None, oid,  # type: ignore[arg-type]
                              MessageKind.TEXT, "血压控制如何？")
    return clinic, oid, FakeHis(container.engine)


def rx(oid: str, *items: prescriptions.NewItem, dx: tuple[str, ...] = ("I10",), **kw: object) -> prescriptions.NewPrescription:
    items = items or (prescriptions.NewItem("XY001", 1, 7, "每日一次，每次 1 片，口服"),)
    return prescriptions.NewPrescription(consultation_id=oid, diagnosis_codes=dx, items=items, **kw)  # type: ignore[arg-type]


def test_issue_reject_revise_approve(container: Container, setup: tuple[Clinic, str, FakeHis]) -> None:
    clinic, oid, his = setup
    senior = pharmacist(container, "ph.senior", "主管药师", date(2015, 1, 1))
    issued = prescriptions.issue_prescription(container.uow(), clinic.doctor_a, his, container.signer, rx(oid))
    assert (issued.status, issued.version, issued.diagnoses) == ("pending_review", 1, ("I10",))
    assert [i.generic_name for i in issued.items] == ["苯磺酸氨氯地平片"]
    assert [p.public_id for p in prescriptions.review_queue(container.uow(), senior)] == [issued.public_id]

    with pytest.raises(InvalidInput, match="理由"):
        prescriptions.review_prescription(container.uow(), senior, container.signer, issued.public_id, approve=False)
    rejected = prescriptions.review_prescription(container.uow(), senior, container.signer, issued.public_id, approve=False,
                                                 reasons=(RejectReason.DOSAGE,), comment="剂量偏低")
    assert rejected.status == "rejected" and rejected.reviews[0].reasons == ("dosage",)
    assert prescriptions.review_queue(container.uow(), senior) == []
    with pytest.raises(IllegalTransition):
        prescriptions.review_prescription(container.uow(), senior, container.signer, issued.public_id, approve=True)

    revised = prescriptions.revise_prescription(container.uow(), clinic.doctor_a, his, container.signer, issued.public_id, rx(
        oid, prescriptions.NewItem("XY001", 2, 14, "每日一次，每次 1 片"), long_term_reason="高血压病情稳定"))
    assert (revised.status, revised.version) == ("pending_review", 2)
    approved = prescriptions.review_prescription(container.uow(), senior, container.signer, issued.public_id, approve=True)
    assert approved.status == "approved"
    assert [(r.version, r.decision) for r in approved.reviews] == [(1, "reject"), (2, "approve")]
    with pytest.raises(IllegalTransition):  # approved means done: no second review
        prescriptions.review_prescription(container.uow(), senior, container.signer, issued.public_id, approve=True)
    with container.uow() as uow:
        actions = list(uow.session.scalars(select(AuditRow.action).where(
            AuditRow.entity_id == issued.public_id).order_by(AuditRow.id)))
    assert actions == ["prescription.sign_doctor", "prescription.issue", "prescription.reject",
                       "prescription.sign_doctor", "prescription.revise", "prescription.approve",
                       "prescription.sign_pharmacist"]


def test_rules_refuse_at_issue(container: Container, setup: tuple[Clinic, str, FakeHis]) -> None:
    clinic, oid, his = setup
    cases = {
        "R04": rx(oid, prescriptions.NewItem("XY002", 1, 7, "睡前一片")),
        "R02": rx(oid, dx=("E11.9",)),
        "R26": rx(oid, prescriptions.NewItem("XY001", 1, 14, "每日一次")),
        "R25": rx(oid, valid_days=5),
    }
    for code, cmd in cases.items():
        with pytest.raises(RuleViolation) as caught:
            prescriptions.issue_prescription(container.uow(), clinic.doctor_a, his, container.signer, cmd)
        assert caught.value.rule == code
    warned = prescriptions.issue_prescription(container.uow(), clinic.doctor_a, his, container.signer, rx(
        oid, prescriptions.NewItem("XY003", 3, 60, "每日一次"), long_term_reason="慢病长期处方"))
    assert warned.warnings == ("R53-4W",)


def test_only_inside_the_doctors_own_follow_up(container: Container, setup: tuple[Clinic, str, FakeHis]) -> None:
    clinic, oid, his = setup
    with pytest.raises(Forbidden):
        prescriptions.issue_prescription(container.uow(), clinic.doctor_b, his, container.signer, rx(oid))
    with pytest.raises(Forbidden):
        prescriptions.issue_prescription(container.uow(), clinic.patient, his, container.signer, rx(oid))
    issued = prescriptions.issue_prescription(container.uow(), clinic.doctor_a, his, container.signer, rx(oid))
    assert prescriptions.get_prescription(container.uow(), clinic.patient, issued.public_id).items
    with pytest.raises(Forbidden):
        prescriptions.get_prescription(container.uow(), clinic.other_patient, issued.public_id)
    with pytest.raises(Forbidden):
        prescriptions.get_prescription(container.uow(), clinic.doctor_b, issued.public_id)
    prescriptions.void_prescription(container.uow(), clinic.doctor_a, issued.public_id, "患者改为线下就诊")
    with pytest.raises(IllegalTransition):
        prescriptions.void_prescription(container.uow(), clinic.doctor_a, issued.public_id, "再次作废")


def test_reviewer_qualification_r33(container: Container, setup: tuple[Clinic, str, FakeHis]) -> None:
    clinic, oid, his = setup
    issued = prescriptions.issue_prescription(container.uow(), clinic.doctor_a, his, container.signer, rx(oid))
    junior = pharmacist(container, "ph.junior", "药师", date(2025, 1, 1))
    assistant = pharmacist(container, "ph.assist", "药士", date(2010, 1, 1))
    for who, match in ((junior, "不足 3 年"), (assistant, "职称")):
        with pytest.raises(RuleViolation, match=match):
            prescriptions.review_prescription(container.uow(), who, container.signer, issued.public_id, approve=True)
    with pytest.raises(Forbidden):  # a doctor cannot approve, nor can anything else: R32/R36
        prescriptions.review_prescription(container.uow(), clinic.doctor_a, container.signer, issued.public_id, approve=True)
    with pytest.raises(Forbidden):
        prescriptions.review_prescription(container.uow(), ADMIN, container.signer, issued.public_id, approve=True)
    assert prescriptions.get_prescription(container.uow(), ADMIN, issued.public_id).status == "pending_review"


def test_catalogue_import_is_all_or_nothing(container: Container) -> None:
    bad = CATALOGUE + [(5, {"药品编码": "XY004", "通用名": "", "规格": "1", "剂型": "片剂", "单位": "盒",
                            "价格(元)": "x", "类别": "西药"})]
    with pytest.raises(CatalogueRejected) as caught:
        drug_catalogue.import_catalogue(container.uow(), ADMIN, bad, source="bad.xlsx")
    assert len(caught.value.row_errors) == 2 and caught.value.row_errors[0].startswith("第 5 行")
    with container.uow() as uow:
        assert uow.session.scalar(select(DrugRow.id).limit(1)) is None
    with pytest.raises(Forbidden):
        drug_catalogue.import_catalogue(container.uow(), OPS, CATALOGUE, source="t.xlsx")


def test_signatures_detect_any_change_after_signing(container: Container, setup: tuple[Clinic, str, FakeHis]) -> None:
    """R41: the doctor signs the canonical form; a change in the database afterwards blocks the review."""
    clinic, oid, his = setup
    senior = pharmacist(container, "ph.sig", "主管药师", date(2015, 1, 1))
    issued = prescriptions.issue_prescription(container.uow(), clinic.doctor_a, his, container.signer, rx(oid))
    checks = signatures.verify_prescription(container.uow(), senior, container.signer, issued.public_id)
    assert [(c.role, c.valid) for c in checks] == [("doctor", True)]
    with container.uow() as uow:  # someone edits the quantity behind the system's back
        uow.session.execute(update(PrescriptionItemRow).values(quantity=9))
        uow.commit()
    with pytest.raises(RuleViolation, match="R41"):
        prescriptions.review_prescription(container.uow(), senior, container.signer, issued.public_id, approve=True)
    checks = signatures.verify_prescription(container.uow(), senior, container.signer, issued.public_id)
    assert [(c.role, c.valid) for c in checks] == [("doctor", False)] and "修改" in checks[0].detail
    with container.uow() as uow:
        uow.session.execute(update(PrescriptionItemRow).values(quantity=1))
        uow.commit()
    approved = prescriptions.review_prescription(container.uow(), senior, container.signer, issued.public_id,
                                                 approve=True)
    assert approved.status == "approved"
    checks = signatures.verify_prescription(container.uow(), senior, container.signer, issued.public_id)
    assert [(c.role, c.name, c.valid) for c in checks] == [("doctor", "医生A", True), ("pharmacist", "药师", True)]


def test_no_certificate_no_prescription(container: Container, setup: tuple[Clinic, str, FakeHis],
                                        clock: FixedClock) -> None:
    clinic, oid, his = setup
    with container.uow() as uow:  # the doctor's certificate is withdrawn
        uow.session.execute(update(StaffCertificateRow).values(superseded_at=clock.now()))
        uow.commit()
    with pytest.raises(RuleViolation, match="证书"):
        prescriptions.issue_prescription(container.uow(), clinic.doctor_a, his, container.signer, rx(oid))
