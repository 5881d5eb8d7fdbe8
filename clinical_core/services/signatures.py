"""电子签名: the hospital CA, clinicians' certificates, and signing and
verifying prescriptions (R03, R10, R23, R41). The canonical form is rebuilt
from the stored rows at every check, so any change after signing is caught."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import InvalidInput, NotFound, RuleViolation
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.prescription import canonical_form, countersign_form
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import PatientRow, StaffRow
from clinical_core.persistence.prescription import (
    PrescriptionItemRow,
    PrescriptionRow,
    PrescriptionSignatureRow,
    StaffCertificateRow,
)
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.ports.signer import Signer
from clinical_core.services import audit


@dataclass(frozen=True, slots=True)
class CertificateView:
    public_id: str
    staff_id: str
    name: str
    role: str
    serial: str
    not_before: datetime
    not_after: datetime


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    version: int
    role: str
    staff_id: str
    name: str
    serial: str
    signed_at: datetime
    valid: bool
    detail: str


def init_authority(uow: UnitOfWork, principal: Principal, signer: Signer, organisation: str) -> str:
    ensure_role(principal, {Role.ADMIN})
    if not organisation.strip():
        raise InvalidInput("请填写医院名称", field="organisation")
    with uow:
        pem = signer.init_authority(organisation.strip(), uow.clock.now())
        audit.record(uow, principal.actor, "ca.init", "ca", "hospital", organisation=organisation.strip())
        uow.commit()
    return pem


def issue_certificate(uow: UnitOfWork, principal: Principal, signer: Signer, staff_id: str) -> CertificateView:
    """签发证书 to a doctor or pharmacist; a previous certificate is superseded."""
    ensure_role(principal, {Role.ADMIN})
    now = uow.clock.now()
    with uow:
        staff = uow.session.scalar(select(StaffRow).where(StaffRow.public_id == staff_id))
        if staff is None or not staff.active:
            raise NotFound(f"未找到在职员工 {staff_id}")
        if staff.role not in (Role.DOCTOR, Role.PHARMACIST):
            raise InvalidInput("只有医生和药师需要处方签名证书", field="staff_id")
        issued = signer.issue(staff.public_id, staff.name, staff.role, now)
        for old in uow.session.scalars(select(StaffCertificateRow).where(
                StaffCertificateRow.staff_id == staff.id, StaffCertificateRow.superseded_at.is_(None))):
            old.superseded_at = now
        row = StaffCertificateRow(public_id=new_public_id("crt"), staff_id=staff.id, serial=issued.serial,
                                  certificate_pem=issued.certificate_pem, not_before=issued.not_before,
                                  not_after=issued.not_after, issued_at=now)
        uow.session.add(row)
        uow.session.flush()
        audit.record(uow, principal.actor, "ca.issue_certificate", "staff", staff.public_id, serial=issued.serial)
        view = CertificateView(row.public_id, staff.public_id, staff.name, staff.role, issued.serial,
                               issued.not_before, issued.not_after)
        uow.commit()
    return view


def canonical_of(uow: UnitOfWork, row: PrescriptionRow) -> bytes:
    patient = uow.session.get(PatientRow, row.patient_id)
    doctor = uow.session.get(StaffRow, row.doctor_id)
    assert patient is not None and doctor is not None
    items = uow.session.scalars(select(PrescriptionItemRow).where(
        PrescriptionItemRow.prescription_id == row.id).order_by(PrescriptionItemRow.id))
    header: dict[str, object] = {
        "id": row.public_id, "version": row.version, "patient": patient.public_id, "doctor": doctor.public_id,
        "diagnoses": [d["icd10"] for d in row.diagnoses], "valid_days": row.valid_days,
        "long_term_reason": row.long_term_reason, "guardian_present": row.guardian_present,
        "issued_at": row.issued_at.isoformat(),
    }
    return canonical_form(header, [
        {"drug_id": i.drug_id, "generic_name": i.generic_name, "specification": i.specification,
         "quantity": i.quantity, "days_supply": i.days_supply, "usage": i.usage, "price_fen": i.price_fen}
        for i in items])


def _current_certificate(uow: UnitOfWork, staff: StaffRow, now: datetime) -> StaffCertificateRow:
    cert = uow.session.scalar(select(StaffCertificateRow).where(
        StaffCertificateRow.staff_id == staff.id, StaffCertificateRow.superseded_at.is_(None),
        StaffCertificateRow.not_after > now).order_by(StaffCertificateRow.id.desc()))
    if cert is None:
        raise RuleViolation("R03", "尚无有效的 CA 签名证书，不能签名", hint="请管理员运行 opsctl staff issue-cert")
    return cert


def sign_in_tx(uow: UnitOfWork, signer: Signer, row: PrescriptionRow, staff: StaffRow, role: str,
               data: bytes) -> PrescriptionSignatureRow:
    now = uow.clock.now()
    cert = _current_certificate(uow, staff, now)
    signature = signer.sign(staff.public_id, cert.serial, data)
    record = PrescriptionSignatureRow(prescription_id=row.id, version=row.version, role=role, staff_id=staff.id,
                                      certificate_id=cert.id, digest=hashlib.sha256(data).hexdigest(),
                                      signature=base64.b64encode(signature).decode(), signed_at=now)
    uow.session.add(record)
    uow.session.flush()
    audit.record(uow, f"{role}:{staff.public_id}", f"prescription.sign_{role}", "prescription", row.public_id,
                 version=row.version, serial=cert.serial, digest=record.digest)
    return record


def doctor_signature_in_tx(uow: UnitOfWork, signer: Signer, row: PrescriptionRow) -> bytes:
    """R41: the current version's doctor signature must verify against the stored prescription as it is now."""
    sig = uow.session.scalar(select(PrescriptionSignatureRow).where(
        PrescriptionSignatureRow.prescription_id == row.id, PrescriptionSignatureRow.version == row.version,
        PrescriptionSignatureRow.role == "doctor").order_by(PrescriptionSignatureRow.id.desc()))
    if sig is None:
        raise RuleViolation("R03", f"处方 {row.public_id} 当前版本没有医生签名")
    cert = uow.session.get(StaffCertificateRow, sig.certificate_id)
    assert cert is not None
    raw = base64.b64decode(sig.signature)
    signer.verify(cert.certificate_pem, canonical_of(uow, row), raw, sig.signed_at)
    return raw


def countersignature_in_tx(uow: UnitOfWork, signer: Signer, row: PrescriptionRow) -> None:
    """R41 at dispensing: the doctor's signature and the pharmacist's countersignature of the
    current version both verify against the prescription as stored now."""
    doctor_sig = doctor_signature_in_tx(uow, signer, row)
    sig = uow.session.scalar(select(PrescriptionSignatureRow).where(
        PrescriptionSignatureRow.prescription_id == row.id, PrescriptionSignatureRow.version == row.version,
        PrescriptionSignatureRow.role == "pharmacist").order_by(PrescriptionSignatureRow.id.desc()))
    if sig is None:
        raise RuleViolation("R23", f"处方 {row.public_id} 当前版本没有药师审核签名")
    cert = uow.session.get(StaffCertificateRow, sig.certificate_id)
    assert cert is not None
    signer.verify(cert.certificate_pem, countersign_form(canonical_of(uow, row), doctor_sig),
                  base64.b64decode(sig.signature), sig.signed_at)


def verify_prescription(uow: UnitOfWork, principal: Principal, signer: Signer, rx_id: str) -> list[SignatureCheck]:
    """Every signature of every version, checked against the prescription as stored now."""
    ensure_role(principal, {Role.ADMIN, Role.PHARMACIST})
    with uow:
        row = uow.session.scalar(select(PrescriptionRow).where(PrescriptionRow.public_id == rx_id))
        if row is None:
            raise NotFound(f"未找到处方 {rx_id}")
        canonical = canonical_of(uow, row)
        checks, doctor_sig = [], None
        sigs = uow.session.execute(
            select(PrescriptionSignatureRow, StaffCertificateRow, StaffRow)
            .join(StaffCertificateRow, StaffCertificateRow.id == PrescriptionSignatureRow.certificate_id)
            .join(StaffRow, StaffRow.id == PrescriptionSignatureRow.staff_id)
            .where(PrescriptionSignatureRow.prescription_id == row.id).order_by(PrescriptionSignatureRow.id))
        for sig, cert, staff in sigs:
            raw = base64.b64decode(sig.signature)
            if sig.version != row.version:
                checks.append(SignatureCheck(sig.version, sig.role, staff.public_id, staff.name, cert.serial,
                                             sig.signed_at, False, "旧版本（已被修改后的版本取代）"))
                continue
            data = canonical if sig.role == "doctor" else countersign_form(canonical, doctor_sig or b"")
            try:
                signer.verify(cert.certificate_pem, data, raw, sig.signed_at)
                valid, detail = True, "签名有效，内容未被修改"
            except RuleViolation as exc:
                valid, detail = False, exc.message
            if sig.role == "doctor":
                doctor_sig = raw
            checks.append(SignatureCheck(sig.version, sig.role, staff.public_id, staff.name, cert.serial,
                                         sig.signed_at, valid, detail))
        audit.record(uow, principal.actor, "prescription.verify", "prescription", rx_id,
                     valid=all(c.valid for c in checks if c.version == row.version))
        uow.commit()
    return checks
