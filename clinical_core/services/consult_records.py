"""What a doctor reaches from a consultation: the patient's offline record from
the HIS (CON-2) and a masked-number call (隐号电话, CON-3). Every access is
audit-logged (R06)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.consultation import ConsultStatus
from clinical_core.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.staff import Role
from clinical_core.persistence.consultation import PrivacyBindingRow, PrivacyCallRow
from clinical_core.persistence.models import PatientRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.ports.his import HisPort, HisResult, HisVisit
from clinical_core.ports.privacy_number import CallReport, PrivacyNumberPort
from clinical_core.services import audit
from clinical_core.services.consultation import _ensure_access, _ensure_qualified, _load, _me

CALL_BINDING_LIFETIME = timedelta(hours=2)
MAX_CALL_SECONDS = 30 * 60
CALLABLE = frozenset({ConsultStatus.CLAIMED, ConsultStatus.IN_PROGRESS, ConsultStatus.REPLIED})


@dataclass(frozen=True, slots=True)
class HealthRecord:
    """健康档案 as the HIS holds it: offline visits with their ICD-10 diagnoses, lab and exam reports."""

    patient_id: str
    visits: tuple[HisVisit, ...]
    results: tuple[HisResult, ...] = ()


@dataclass(frozen=True, slots=True)
class MaskedCall:
    binding_id: str
    x_number: str  # the virtual number both sides dial
    expires_at: datetime
    reused: bool


def health_record(uow: UnitOfWork, principal: Principal, his: HisPort, consultation_id: str) -> HealthRecord:
    """The patient's record, for the patient or for the doctor handling (or offered) the consultation."""
    ensure_role(principal, {Role.PATIENT, Role.DOCTOR})
    with uow:
        row = _load(uow, consultation_id)
        _ensure_access(uow, principal, row)
        if principal.role is Role.DOCTOR:
            _ensure_qualified(uow, _me(uow, principal))
        patient = uow.session.get(PatientRow, row.patient_id)
        assert patient is not None
        visits = tuple(his.visits(patient.public_id))
        results = tuple(his.results(patient.public_id))
        audit.record(uow, principal.actor, "health_record.read", "patient", patient.public_id,
                     consultation=consultation_id, source="his", visits=len(visits), results=len(results),
                     reports=[r.report_no for r in results][:50])
        uow.commit()
    return HealthRecord(patient.public_id, visits, results)


def my_health_record(uow: UnitOfWork, principal: Principal, his: HisPort) -> HealthRecord:
    """The patient's own record (visits, lab and exam reports), outside any consultation. Audited."""
    ensure_role(principal, {Role.PATIENT})
    if principal.patient_id is None:
        raise Forbidden("当前账号尚未实名绑定患者")
    with uow:
        visits = tuple(his.visits(principal.patient_id))
        results = tuple(his.results(principal.patient_id))
        audit.record(uow, principal.actor, "health_record.read", "patient", principal.patient_id, source="his",
                     visits=len(visits), results=len(results), reports=[r.report_no for r in results][:50])
        uow.commit()
    return HealthRecord(principal.patient_id, visits, results)


def start_masked_call(
    uow: UnitOfWork, principal: Principal, numbers: PrivacyNumberPort, consultation_id: str,
) -> MaskedCall:
    """隐号电话: bind patient and doctor to a virtual number that expires by itself.
    A live binding of the same consultation and doctor is reused."""
    ensure_role(principal, {Role.DOCTOR})
    now = uow.clock.now()
    with uow:
        row = _load(uow, consultation_id, lock=True)
        doctor = _me(uow, principal)
        if row.doctor_id != doctor.id:
            raise Forbidden("只有接诊医生可以发起隐号电话")
        _ensure_qualified(uow, doctor)
        status = ConsultStatus(row.status)
        if status not in CALLABLE:
            raise Conflict(f"咨询订单 {consultation_id} 当前状态为「{status.label}」，不能发起电话")
        live = uow.session.scalar(select(PrivacyBindingRow).where(
            PrivacyBindingRow.consultation_id == row.id, PrivacyBindingRow.staff_id == doctor.id,
            PrivacyBindingRow.expires_at > now))
        if live is not None:
            audit.record(uow, principal.actor, "consultation.masked_call", "consultation", consultation_id,
                         binding=live.public_id, reused=True)
            result = MaskedCall(live.public_id, live.x_number, live.expires_at, True)
            uow.commit()
            return result
        if not doctor.phone_enc:
            raise InvalidInput("医生未登记手机号，不能发起隐号电话", hint="请管理员补充医生手机号")
        patient = uow.session.get(PatientRow, row.patient_id)
        assert patient is not None
        binding = numbers.bind_axb(uow.vault.decrypt(patient.phone_enc), uow.vault.decrypt(doctor.phone_enc),
                                   now + CALL_BINDING_LIFETIME, max_call_seconds=MAX_CALL_SECONDS)
        stored = PrivacyBindingRow(public_id=new_public_id("axb"), consultation_id=row.id, staff_id=doctor.id,
                                   provider_binding_id=binding.binding_id, x_number=binding.x_number,
                                   created_at=now, expires_at=binding.expires_at)
        uow.session.add(stored)
        uow.session.flush()
        audit.record(uow, principal.actor, "consultation.masked_call", "consultation", consultation_id,
                     binding=stored.public_id, reused=False)
        result = MaskedCall(stored.public_id, stored.x_number, stored.expires_at, False)
        # Should the commit fail, the orphan binding simply expires at the provider.
        uow.commit()
    return result


def record_call_report(uow: UnitOfWork, report: CallReport) -> bool:
    """话单 from the provider. Idempotent: a report delivered twice is stored once."""
    with uow:
        binding = uow.session.scalar(select(PrivacyBindingRow).where(
            PrivacyBindingRow.provider_binding_id == report.binding_id))
        if binding is None:
            raise NotFound("话单对应的隐号绑定不存在")
        caller = {"A": "patient", "B": "doctor"}.get(report.caller)
        if caller is None:
            raise InvalidInput("话单主叫方应为 A 或 B", field="caller")
        exists = uow.session.scalar(select(PrivacyCallRow.id).where(
            PrivacyCallRow.binding_id == binding.id, PrivacyCallRow.started_at == report.started_at,
            PrivacyCallRow.caller == caller))
        if exists:
            return False
        uow.session.add(PrivacyCallRow(binding_id=binding.id, caller=caller, started_at=report.started_at,
                                       duration_seconds=report.duration_seconds, reported_at=uow.clock.now()))
        audit.record(uow, "privacy:report", "privacy_call.record", "privacy_binding", binding.public_id,
                     caller=caller, duration_seconds=report.duration_seconds)
        uow.commit()
    return True
