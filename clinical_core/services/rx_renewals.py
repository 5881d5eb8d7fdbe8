"""快速续方 (fast renewal): a patient asks the doctor of an earlier, dispensed
chronic prescription to renew it. The doctor sees the drugs the patient already
has on other active prescriptions (duplicates) and either approves — a new
prescription, newly signed, through every rule and the pharmacist's review
again — or declines with a reason ("请先预约复诊")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import Conflict, Forbidden, NotFound
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.prescription import (
    ACTIVE,
    RenewalStatus,
    RxStatus,
    check_decline_reason,
    duplicates,
    ensure_renewable,
    renewal_transition,
)
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import DrugRow, PatientRow, StaffRow
from clinical_core.persistence.prescription import (
    PrescriptionItemRow,
    PrescriptionRow,
    RxRenewalRow,
)
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.ports.his import HisPort, HisRxPort
from clinical_core.ports.signer import Signer
from clinical_core.services import audit
from clinical_core.services.prescriptions import (
    NewItem,
    NewPrescription,
    issue_renewal_in_tx,
)


@dataclass(frozen=True, slots=True)
class Duplicate:
    generic_name: str
    prescription_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RenewalView:
    public_id: str
    source_prescription_id: str
    patient_id: str
    doctor_id: str
    doctor_name: str
    status: str
    status_label: str
    diagnoses: tuple[str, ...]
    drugs: tuple[str, ...]
    duplicates: tuple[Duplicate, ...]  # against the patient's other active prescriptions
    decline_reason: str | None
    new_prescription_id: str | None
    requested_at: datetime
    decided_at: datetime | None


def _patient(uow: UnitOfWork, principal: Principal) -> PatientRow:
    row = uow.session.scalar(select(PatientRow).where(PatientRow.public_id == principal.patient_id))
    if row is None:
        raise Forbidden("当前账号未关联患者")
    return row


def _doctor(uow: UnitOfWork, principal: Principal) -> StaffRow:
    row = uow.session.scalar(select(StaffRow).where(StaffRow.public_id == principal.staff_id))
    if row is None or not row.active:
        raise Forbidden("当前账号未关联在职员工")
    return row


def _load(uow: UnitOfWork, renewal_id: str, *, lock: bool = False) -> RxRenewalRow:
    query = select(RxRenewalRow).where(RxRenewalRow.public_id == renewal_id)
    row = uow.session.scalar(query.with_for_update() if lock else query)
    if row is None:
        raise NotFound(f"未找到续方申请 {renewal_id}")
    return row


def _items(uow: UnitOfWork, rx_pk: int) -> list[PrescriptionItemRow]:
    return list(uow.session.scalars(select(PrescriptionItemRow).where(
        PrescriptionItemRow.prescription_id == rx_pk).order_by(PrescriptionItemRow.id)))


def request_renewal(uow: UnitOfWork, principal: Principal, rx_id: str) -> RenewalView:
    """The patient asks; one open request per earlier prescription."""
    ensure_role(principal, {Role.PATIENT})
    with uow:
        patient = _patient(uow, principal)
        source = uow.session.scalar(select(PrescriptionRow).where(PrescriptionRow.public_id == rx_id))
        if source is None:
            raise NotFound(f"未找到处方 {rx_id}")
        if source.patient_id != patient.id:
            raise Forbidden("患者只能为本人的处方申请续方")
        items = _items(uow, source.id)
        ensure_renewable(RxStatus(source.status), source.long_term_reason, max(i.days_supply for i in items))
        if uow.session.scalar(select(func.count()).select_from(RxRenewalRow).where(
                RxRenewalRow.source_id == source.id, RxRenewalRow.status == RenewalStatus.REQUESTED.value)):
            raise Conflict("该处方已有待处理的续方申请")
        row = RxRenewalRow(public_id=new_public_id("rnw"), source_id=source.id, patient_id=patient.id,
                           doctor_id=source.doctor_id, status=RenewalStatus.REQUESTED.value,
                           requested_at=uow.clock.now())
        uow.session.add(row)
        uow.session.flush()
        audit.record(uow, principal.actor, "rx_renewal.request", "rx_renewal", row.public_id, source=rx_id)
        view = _view(uow, row)
        uow.commit()
    return view


def renewal_queue(uow: UnitOfWork, principal: Principal) -> list[RenewalView]:
    """The doctor's open renewal requests, oldest first, each with its duplicates."""
    ensure_role(principal, {Role.DOCTOR})
    with uow:
        doctor = _doctor(uow, principal)
        rows = uow.session.scalars(select(RxRenewalRow).where(
            RxRenewalRow.doctor_id == doctor.id, RxRenewalRow.status == RenewalStatus.REQUESTED.value)
            .order_by(RxRenewalRow.id))
        return [_view(uow, r) for r in rows]


def get_renewal(uow: UnitOfWork, principal: Principal, renewal_id: str) -> RenewalView:
    ensure_role(principal, {Role.PATIENT, Role.DOCTOR})
    with uow:
        row = _load(uow, renewal_id)
        if principal.role is Role.PATIENT and row.patient_id != _patient(uow, principal).id:
            raise Forbidden("患者只能查看本人的续方申请")
        if principal.role is Role.DOCTOR and row.doctor_id != _doctor(uow, principal).id:
            raise Forbidden("只有原开方医生可以处理续方申请")
        return _view(uow, row)


def decide_renewal(uow: UnitOfWork, principal: Principal, his: HisPort, signer: Signer, renewal_id: str, *,
                   approve: bool, reason: str | None = None, his_rx: HisRxPort | None = None) -> RenewalView:
    """续方 (a new prescription, every rule, newly signed, pending review) or 拒绝 with a reason."""
    ensure_role(principal, {Role.DOCTOR})
    decline = None if approve else check_decline_reason(reason or "")
    with uow:
        doctor = _doctor(uow, principal)
        row = _load(uow, renewal_id, lock=True)
        if row.doctor_id != doctor.id:
            raise Forbidden("只有原开方医生可以处理续方申请")
        target = renewal_transition(row.public_id, RenewalStatus(row.status), approve)
        if approve:
            source = uow.session.get(PrescriptionRow, row.source_id)
            assert source is not None
            codes = dict(uow.session.execute(select(DrugRow.id, DrugRow.code).where(
                DrugRow.id.in_([i.drug_id for i in _items(uow, source.id)]))).all())
            cmd = NewPrescription(
                consultation_id="", diagnosis_codes=tuple(d["icd10"] for d in source.diagnoses),
                items=tuple(NewItem(codes[i.drug_id], i.quantity, i.days_supply, i.usage)
                            for i in _items(uow, source.id)),
                valid_days=source.valid_days, long_term_reason=source.long_term_reason,
                guardian_present=source.guardian_present)
            new = issue_renewal_in_tx(uow, his, signer, doctor, source, cmd, principal.actor, his_rx)
            row.new_prescription_id = new.id
        row.status, row.decline_reason, row.decided_at = target.value, decline, uow.clock.now()
        audit.record(uow, principal.actor, f"rx_renewal.{'approve' if approve else 'decline'}", "rx_renewal",
                     row.public_id, **({"reason": decline} if decline else {}))
        view = _view(uow, row)
        uow.commit()
    return view


def _view(uow: UnitOfWork, row: RxRenewalRow) -> RenewalView:
    source = uow.session.get(PrescriptionRow, row.source_id)
    patient = uow.session.get(PatientRow, row.patient_id)
    doctor = uow.session.get(StaffRow, row.doctor_id)
    assert source is not None and patient is not None and doctor is not None
    renewed = {i.generic_name for i in _items(uow, source.id)}
    active: dict[str, set[str]] = {}
    others = uow.session.execute(
        select(PrescriptionRow.public_id, PrescriptionItemRow.generic_name)
        .join(PrescriptionItemRow, PrescriptionItemRow.prescription_id == PrescriptionRow.id)
        .where(PrescriptionRow.patient_id == row.patient_id, PrescriptionRow.id != source.id,
               PrescriptionRow.id != (row.new_prescription_id or 0),
               PrescriptionRow.status.in_([s.value for s in ACTIVE])))
    for rx_id, name in others:
        active.setdefault(rx_id, set()).add(name)
    new = uow.session.get(PrescriptionRow, row.new_prescription_id) if row.new_prescription_id else None
    status = RenewalStatus(row.status)
    return RenewalView(
        row.public_id, source.public_id, patient.public_id, doctor.public_id, doctor.name, status.value,
        status.label, tuple(d["icd10"] for d in source.diagnoses), tuple(sorted(renewed)),
        tuple(Duplicate(n, ids) for n, ids in duplicates(renewed, active).items()), row.decline_reason,
        new.public_id if new else None, row.requested_at, row.decided_at)


def list_renewals(uow: UnitOfWork, principal: Principal, *, status: RenewalStatus | None = None,
                  limit: int = 100) -> list[RenewalView]:
    """Every renewal request, newest first (administrators: follow-up of open requests)."""
    ensure_role(principal, {Role.ADMIN})
    with uow:
        query = select(RxRenewalRow).order_by(RxRenewalRow.id.desc()).limit(limit)
        if status is not None:
            query = query.where(RxRenewalRow.status == status.value)
        return [_view(uow, r) for r in uow.session.scalars(query)]
