"""HIS record lookup and masked-number calls from a consultation, audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from clinical_core.adapters.his_fake import FakeHis
from clinical_core.adapters.payment_sandbox import SandboxPaymentGateway
from clinical_core.adapters.privacy_number_sandbox import SandboxPrivacyNumbers
from clinical_core.domain.access import Principal
from clinical_core.domain.consultation import ServiceKind
from clinical_core.domain.errors import Conflict, ExternalServiceError, Forbidden, InvalidInput
from clinical_core.domain.staff import FilingStatus, Role
from clinical_core.domain.time import FixedClock
from clinical_core.persistence.models import AuditRow, DepartmentRow, HisVisitRow, PatientRow
from clinical_core.services import accounts, consult_records, consult_settings, consultation
from opsctl.wiring import Container
from tests.support.clinic import ADMIN, OPS, Clinic, build_clinic

QUESTION = "高血压复诊，血压控制不稳定"


@pytest.fixture
def clinic(container: Container) -> Clinic:
    return build_clinic(container)


def _claimed_order(c: Container, clinic: Clinic, clock: FixedClock, doctor: Principal) -> str:
    svc = consult_settings.configure_service(c.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=0, department_code="CARD")).public_id
    order = consultation.create_consultation(c.uow(), clinic.patient, SandboxPaymentGateway(clock), svc,
                                             QUESTION).consultation.public_id
    consultation.claim_consultation(c.uow(), doctor, order)
    return order


def _seed_visits(c: Container, clinic: Clinic) -> None:
    with c.uow() as uow:
        pid = uow.session.scalar(select(PatientRow.id).where(PatientRow.public_id == clinic.patient.patient_id))
        dept = uow.session.scalar(select(DepartmentRow.id).where(DepartmentRow.code == "CARD"))
        for i, day in enumerate((3, 20)):
            uow.session.add(HisVisitRow(visit_no=f"MZ2026{i:08d}", patient_id=pid, department_id=dept,
                                        visit_type="outpatient", visited_at=datetime(2026, 10, day, tzinfo=UTC),
                                        diagnoses=[{"icd10": "I10", "name": "原发性高血压"}]))
        uow.commit()


def test_health_record_from_the_his_is_audited(container: Container, clinic: Clinic, clock: FixedClock) -> None:
    _seed_visits(container, clinic)
    order = _claimed_order(container, clinic, clock, clinic.doctor_a)
    his = FakeHis(container.engine)
    record = consult_records.health_record(container.uow(), clinic.doctor_a, his, order)
    assert [v.visit_no for v in record.visits] == ["MZ202600000001", "MZ202600000000"]
    assert record.visits[0].diagnoses[0].code == "I10" and record.visits[0].department == "心血管内科"
    assert len(consult_records.health_record(container.uow(), clinic.patient, his, order).visits) == 2
    for outsider in (clinic.doctor_c, clinic.other_patient, clinic.doctor_b):
        with pytest.raises(Forbidden):
            consult_records.health_record(container.uow(), outsider, his, order)
    with container.uow() as uow:
        reads = list(uow.session.scalars(select(AuditRow.actor).where(AuditRow.action == "health_record.read")))
    assert reads == [clinic.doctor_a.actor, clinic.patient.actor]


def test_masked_call_binds_reuses_expires_and_logs_calls(container: Container, clinic: Clinic,
                                                         clock: FixedClock) -> None:
    numbers = SandboxPrivacyNumbers(clock)
    accounts.add_staff_account(container.uow(), ADMIN, accounts.NewStaffAccount(
        username="dr.p", role=Role.DOCTOR, name="医生P", title="主任医师", licence_no="110440300009999",
        practising_since=datetime(2010, 1, 1).date(), filing=FilingStatus.FILED, may_prescribe=True,
        phone="13700001111", department_code="CARD"))
    staff_id = [a for a in accounts.list_accounts(container.uow(), ADMIN) if a.username == "dr.p"][0].staff_id
    acc = [a for a in accounts.list_accounts(container.uow(), ADMIN) if a.username == "dr.p"][0]
    doctor = Principal(acc.public_id, "dr.p", Role.DOCTOR, staff_id=staff_id)
    order = _claimed_order(container, clinic, clock, doctor)

    with pytest.raises(Forbidden):
        consult_records.start_masked_call(container.uow(), clinic.doctor_a, numbers, order)
    call = consult_records.start_masked_call(container.uow(), doctor, numbers, order)
    assert call.x_number.startswith("170") and not call.reused
    assert consult_records.start_masked_call(container.uow(), doctor, numbers, order).binding_id == call.binding_id
    provider_id = next(iter(numbers.bindings))
    report = numbers.simulate_call(provider_id, "B", 4000)
    assert report.duration_seconds == consult_records.MAX_CALL_SECONDS
    assert consult_records.record_call_report(container.uow(), report) is True
    assert consult_records.record_call_report(container.uow(), report) is False  # delivered twice, stored once
    with container.engine.connect() as conn:
        dump = " ".join(str(v) for r in conn.execute(text("SELECT * FROM privacy_bindings")) for v in r)
        dump += " ".join(str(v) for r in conn.execute(text("SELECT * FROM audit_log")) for v in r)
        calls = conn.execute(text("SELECT caller, duration_seconds FROM privacy_calls")).all()
    assert "13812345678" not in dump and "13700001111" not in dump
    assert [tuple(c) for c in calls] == [("doctor", 1800)]

    clock.advance(timedelta(hours=2, minutes=1))
    with pytest.raises(ExternalServiceError):
        numbers.simulate_call(provider_id, "A", 10)
    renewed = consult_records.start_masked_call(container.uow(), doctor, numbers, order)
    assert not renewed.reused and renewed.binding_id != call.binding_id

    with pytest.raises(InvalidInput, match="手机号"):  # the test doctors have no phone on file
        consult_records.start_masked_call(container.uow(), clinic.doctor_a, numbers,
                                          _claimed_order(container, clinic, clock, clinic.doctor_a))


def test_masked_call_needs_an_open_consultation(container: Container, clinic: Clinic, clock: FixedClock) -> None:
    order = _claimed_order(container, clinic, clock, clinic.doctor_a)
    consultation.transfer_consultation(container.uow(), clinic.doctor_a, order, "GAST")
    consultation.claim_consultation(container.uow(), clinic.doctor_c, order)
    consultation.post_message(container.uow(), clinic.doctor_c, None, order,  # type: ignore[arg-type]
                              consultation.MessageKind.TEXT, "您好")
    consultation.reply_consultation(container.uow(), clinic.doctor_c, order, "按时服药")
    consultation.close_consultation(container.uow(), clinic.patient, order)
    with pytest.raises(Conflict):
        consult_records.start_masked_call(container.uow(), clinic.doctor_c, SandboxPrivacyNumbers(clock), order)


def test_lab_and_exam_reports_come_with_the_record_and_are_audited(container: Container, clinic: Clinic,
                                                                   clock: FixedClock) -> None:
    from clinical_core.persistence.his import HisResultRow

    _seed_visits(container, clinic)
    with container.uow() as uow:
        pid = uow.session.scalar(select(PatientRow.id).where(PatientRow.public_id == clinic.patient.patient_id))
        visit = uow.session.scalar(select(HisVisitRow.id).where(HisVisitRow.visit_no == "MZ202600000001"))
        uow.session.add_all([
            HisResultRow(report_no="JY1", visit_id=visit, patient_id=pid, kind="lab", name="血脂四项",
                         reported_at=datetime(2026, 10, 20, 5, tzinfo=UTC), findings=None, conclusion=None,
                         items=[{"code": "TC", "name": "总胆固醇", "value": "6.10", "unit": "mmol/L",
                                 "range": "2.8–5.2", "flag": "H"}]),
            HisResultRow(report_no="JC1", visit_id=visit, patient_id=pid, kind="exam", name="心电图",
                         reported_at=datetime(2026, 10, 20, 3, tzinfo=UTC), items=[],
                         findings="窦性心律。", conclusion="正常心电图")])
        uow.commit()
    order = _claimed_order(container, clinic, clock, clinic.doctor_a)
    his = FakeHis(container.engine)
    record = consult_records.health_record(container.uow(), clinic.doctor_a, his, order)
    assert [(r.report_no, r.visit_no, r.kind) for r in record.results] == [
        ("JY1", "MZ202600000001", "lab"), ("JC1", "MZ202600000001", "exam")]
    assert record.results[0].abnormal and record.results[0].items[0].reference_range == "2.8–5.2"
    assert record.results[1].conclusion == "正常心电图" and not record.results[1].abnormal
    own = consult_records.my_health_record(container.uow(), clinic.patient, his)
    assert own.results == record.results and len(own.visits) == 2
    assert consult_records.my_health_record(container.uow(), clinic.other_patient, his).results == ()
    for outsider in (clinic.doctor_a, OPS):
        with pytest.raises(Forbidden):
            consult_records.my_health_record(container.uow(), outsider, his)
    with container.uow() as uow:
        reads = [(a.actor, a.entity_id, a.details.get("reports")) for a in uow.session.scalars(
            select(AuditRow).where(AuditRow.action == "health_record.read").order_by(AuditRow.id))]
    assert reads == [(clinic.doctor_a.actor, clinic.patient.patient_id, ["JY1", "JC1"]),
                     (clinic.patient.actor, clinic.patient.patient_id, ["JY1", "JC1"]),
                     (clinic.other_patient.actor, clinic.other_patient.patient_id, [])]
