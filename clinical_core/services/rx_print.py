"""处方打印与二维码核验: the printable prescription (both signers, drugs,
diagnosis, QR code) and the store's check of a printed QR code.

Printing is allowed only for an approved prescription whose doctor signature
and pharmacist countersignature both verify against the prescription as stored
now (R41), for the patient (own), the prescriber, pharmacists and
administrators; every print is audited. The patient's name is masked.

The QR code (``clinical_core.domain.rx_qr``) carries no personal data. A store
checks it offline with the CA and the signers' certificates
(``Signer.verify_digest``); ``verify_qr`` does the same check against our
certificates and additionally compares it with the prescription as stored now.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select

from clinical_core.domain import rx_qr
from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import (
    Forbidden,
    IllegalTransition,
    NotFound,
    RuleViolation,
)
from clinical_core.domain.masking import mask_name
from clinical_core.domain.prescription import RxStatus, countersign_form
from clinical_core.domain.staff import Role
from clinical_core.domain.time import local_date
from clinical_core.persistence.models import (
    DepartmentRow,
    HospitalRow,
    PatientRow,
    StaffRow,
)
from clinical_core.persistence.prescription import (
    PrescriptionItemRow,
    PrescriptionRow,
    PrescriptionSignatureRow,
    StaffCertificateRow,
)
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.ports.signer import Signer
from clinical_core.services import audit
from clinical_core.services.signatures import canonical_of, countersignature_in_tx

PRINTABLE = (RxStatus.APPROVED, RxStatus.PAID, RxStatus.DISPENSED, RxStatus.SHIPPED, RxStatus.DELIVERED)
ROLE_LABELS = {"doctor": "处方医师", "pharmacist": "审核药师"}


@dataclass(frozen=True, slots=True)
class PrintedItem:
    generic_name: str
    specification: str
    quantity: int
    days_supply: int
    usage: str
    price_fen: int


@dataclass(frozen=True, slots=True)
class PrintedSigner:
    role: str
    role_label: str
    name: str
    title: str
    serial: str
    signed_at: datetime
    fingerprint: str  # SHA-256 of the signature, grouped hex (first 128 bits)


@dataclass(frozen=True, slots=True)
class Printout:
    hospital: str
    prescription_id: str
    version: int
    status_label: str
    issued_at: datetime
    valid_days: int
    department: str
    patient_name: str  # masked
    patient_sex: str
    patient_age: int
    diagnoses: tuple[tuple[str, str], ...]  # (ICD-10, name)
    items: tuple[PrintedItem, ...]
    total_fen: int
    long_term_reason: str | None
    signers: tuple[PrintedSigner, ...]
    canonical_sha256: str
    qr_text: str
    printed_at: datetime


@dataclass(frozen=True, slots=True)
class QrSignatureCheck:
    role: str
    name: str
    serial: str
    signed_at: str
    valid: bool
    detail: str


@dataclass(frozen=True, slots=True)
class QrCheck:
    prescription_id: str
    version: int
    signatures_valid: bool  # what a store can establish offline
    matches_current: bool  # the QR's prescription is the one stored now (same version, unchanged)
    usable: bool  # both, and the prescription can still be dispensed
    status: str
    status_label: str
    signatures: tuple[QrSignatureCheck, ...]
    problems: tuple[str, ...]


def _fingerprint(signature_b64: str) -> str:
    digest = hashlib.sha256(base64.b64decode(signature_b64)).hexdigest()[:32].upper()
    return " ".join(digest[i:i + 4] for i in range(0, 32, 4))


def _age(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def _current_signatures(uow: UnitOfWork, row: PrescriptionRow) -> list[tuple[PrescriptionSignatureRow,
                                                                            StaffCertificateRow, StaffRow]]:
    result = []
    for role in ("doctor", "pharmacist"):
        found = uow.session.execute(
            select(PrescriptionSignatureRow, StaffCertificateRow, StaffRow)
            .join(StaffCertificateRow, StaffCertificateRow.id == PrescriptionSignatureRow.certificate_id)
            .join(StaffRow, StaffRow.id == PrescriptionSignatureRow.staff_id)
            .where(PrescriptionSignatureRow.prescription_id == row.id, PrescriptionSignatureRow.version == row.version,
                   PrescriptionSignatureRow.role == role)
            .order_by(PrescriptionSignatureRow.id.desc())).first()
        if found is not None:
            result.append(tuple(found))
    return result


def _ensure_reader(uow: UnitOfWork, principal: Principal, row: PrescriptionRow) -> None:
    if principal.role is Role.PATIENT:
        patient = uow.session.get(PatientRow, row.patient_id)
        if patient is None or patient.public_id != principal.patient_id:
            raise Forbidden("患者只能打印本人的处方")
    elif principal.role is Role.DOCTOR:
        doctor = uow.session.get(StaffRow, row.doctor_id)
        if doctor is None or doctor.public_id != principal.staff_id:
            raise Forbidden("医生只能打印本人开具的处方")
    else:
        ensure_role(principal, {Role.PHARMACIST, Role.ADMIN})


def printout(uow: UnitOfWork, principal: Principal, signer: Signer, rx_id: str) -> Printout:
    """Everything the printed prescription shows; refuses unless approved and both signatures verify (R41)."""
    with uow:
        row = uow.session.scalar(select(PrescriptionRow).where(PrescriptionRow.public_id == rx_id))
        if row is None:
            raise NotFound(f"未找到处方 {rx_id}")
        _ensure_reader(uow, principal, row)
        status = RxStatus(row.status)
        if status not in PRINTABLE:
            raise IllegalTransition("处方", row.public_id, status.label, "打印（药师审核通过后才能打印）")
        countersignature_in_tx(uow, signer, row)  # R41: never print what was changed after signing
        canonical = canonical_of(uow, row)
        patient = uow.session.get(PatientRow, row.patient_id)
        doctor = uow.session.get(StaffRow, row.doctor_id)
        assert patient is not None and doctor is not None
        department = uow.session.get(DepartmentRow, doctor.department_id) if doctor.department_id else None
        hospital = uow.session.get(HospitalRow, department.hospital_id) if department else None
        if hospital is None:
            hospital = uow.session.scalar(select(HospitalRow).order_by(HospitalRow.id))
        items = tuple(PrintedItem(i.generic_name, i.specification, i.quantity, i.days_supply, i.usage, i.price_fen)
                      for i in uow.session.scalars(select(PrescriptionItemRow).where(
                          PrescriptionItemRow.prescription_id == row.id).order_by(PrescriptionItemRow.id)))
        signed = _current_signatures(uow, row)
        signers = tuple(PrintedSigner(sig.role, ROLE_LABELS[sig.role], staff.name, staff.title or "", cert.serial,
                                      sig.signed_at, _fingerprint(sig.signature)) for sig, cert, staff in signed)
        qr = rx_qr.RxQr(row.public_id, row.version, hashlib.sha256(canonical).digest(), tuple(
            rx_qr.SignatureRef(sig.role, cert.serial, bytes.fromhex(sig.digest), base64.b64decode(sig.signature),
                               sig.signed_at.isoformat()) for sig, cert, _ in signed))
        now = uow.clock.now()
        view = Printout(
            hospital.name if hospital else "", row.public_id, row.version, status.label, row.issued_at,
            row.valid_days, department.name if department else "", mask_name(uow.vault.decrypt(patient.name_enc)),
            {"M": "男", "F": "女"}.get(patient.sex, "未知"), _age(patient.birth_date, local_date(row.issued_at)),
            tuple((str(d.get("icd10", "")), str(d.get("name", ""))) for d in row.diagnoses), items,
            sum(i.quantity * i.price_fen for i in items), row.long_term_reason, signers,
            hashlib.sha256(canonical).hexdigest(), rx_qr.encode(qr), now)
        audit.record(uow, principal.actor, "prescription.print", "prescription", rx_id, version=row.version)
        uow.commit()
    return view


def verify_qr(uow: UnitOfWork, principal: Principal, signer: Signer, text: str) -> QrCheck:
    """核验处方二维码 (store pharmacists, administrators): the signatures (as offline) and the stored prescription."""
    ensure_role(principal, {Role.PHARMACIST, Role.ADMIN})
    qr = rx_qr.decode(text)
    with uow:
        row = uow.session.scalar(select(PrescriptionRow).where(PrescriptionRow.public_id == qr.prescription_id))
        if row is None:
            raise NotFound(f"未找到处方 {qr.prescription_id}")
        problems: list[str] = []
        checks: list[QrSignatureCheck] = []
        by_role = {s.role: s for s in qr.signatures}
        if set(by_role) != {"doctor", "pharmacist"}:
            problems.append("二维码缺少医师签名或药师审核签名")
        doctor_ref = by_role.get("doctor")
        if doctor_ref is not None and doctor_ref.digest != qr.canonical_sha256:
            problems.append("医师签名的内容摘要与处方摘要不一致")
        for ref in qr.signatures:
            found = uow.session.execute(select(StaffCertificateRow, StaffRow).join(
                StaffRow, StaffRow.id == StaffCertificateRow.staff_id).where(
                StaffCertificateRow.serial == ref.serial)).first()
            if found is None:
                checks.append(QrSignatureCheck(ref.role, "", ref.serial, ref.signed_at, False, "证书不是本院签发"))
                continue
            cert, staff = found
            try:
                subject = signer.verify_digest(cert.certificate_pem, ref.digest, ref.signature,
                                               datetime.fromisoformat(ref.signed_at))
                valid, detail = subject.role == ref.role, "签名有效" if subject.role == ref.role else "签名人角色不符"
            except (RuleViolation, ValueError) as exc:
                valid, detail = False, getattr(exc, "message", "签名时间格式不正确")
            checks.append(QrSignatureCheck(ref.role, staff.name, ref.serial, ref.signed_at, valid, detail))
        signatures_valid = not problems and len(checks) == 2 and all(c.valid for c in checks)
        canonical = canonical_of(uow, row)
        matches = qr.version == row.version and hashlib.sha256(canonical).digest() == qr.canonical_sha256
        if qr.version != row.version:
            problems.append("处方已有更新的版本，二维码已失效")
        elif not matches:
            problems.append("处方在打印后被修改")
        pharmacist_ref = by_role.get("pharmacist")
        if matches and doctor_ref is not None and pharmacist_ref is not None and pharmacist_ref.digest != \
                hashlib.sha256(countersign_form(canonical, doctor_ref.signature)).digest():
            problems.append("药师审核签名与当前处方不符")
            matches = False
        status = RxStatus(row.status)
        dispensable = status in (RxStatus.APPROVED, RxStatus.PAID)
        if not dispensable:
            problems.append(f"处方状态为「{status.label}」，不能调配")
        result = QrCheck(row.public_id, qr.version, signatures_valid, matches,
                         signatures_valid and matches and dispensable, status.value, status.label, tuple(checks),
                         tuple(problems))
        audit.record(uow, principal.actor, "prescription.verify_qr", "prescription", row.public_id,
                     usable=result.usable)
        uow.commit()
    return result
