"""The doctor's record of a video visit (门诊病历, VC-4): written during and after
the call, every version kept with author and time (R38), text encrypted; and
prescribing from the visit through clinical core I (the visit's snapshotted
follow-up diagnoses limit the prescription, R02)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import Conflict, NotFound, RuleViolation
from clinical_core.domain.staff import Role
from clinical_core.domain.video_visit import RECORDABLE, VisitStatus, check_record
from clinical_core.persistence.models import StaffRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.persistence.video import VideoDocumentRow, VideoRecordRow
from clinical_core.ports.attachments import AttachmentStore
from clinical_core.ports.his import HisPort, HisRxPort
from clinical_core.ports.signer import Signer
from clinical_core.services import audit, prescriptions
from clinical_core.services.video_visits import ensure_access, load, own_doctor


@dataclass(frozen=True, slots=True)
class RecordVersion:
    visit_id: str
    version: int
    author_id: str
    author_name: str
    text: str
    created_at: datetime


def write_record(uow: UnitOfWork, principal: Principal, visit_id: str, text: str) -> RecordVersion:
    """写病历: a new version (the earlier ones stay, R38). The visit's doctor, during or after the call.
    Two saves at once: the version number is unique, so the second gets a conflict and re-reads."""
    body = check_record(text)
    with uow:
        row = load(uow, visit_id)
        doctor = own_doctor(uow, principal, row, qualified=False)
        status = VisitStatus(row.status)
        if status not in RECORDABLE:
            raise RuleViolation("VC-4", f"视频复诊 {visit_id} 当前状态为「{status.label}」，不能书写病历")
        latest = uow.session.scalar(select(func.max(VideoRecordRow.version)).where(
            VideoRecordRow.visit_id == row.id)) or 0
        record = VideoRecordRow(visit_id=row.id, version=latest + 1, staff_id=doctor.id,
                                text_enc=uow.vault.encrypt(body), created_at=uow.clock.now())
        uow.session.add(record)
        try:
            uow.session.flush()
        except IntegrityError:  # the unique (visit, version) refused a concurrent save
            raise Conflict(f"视频复诊 {visit_id} 的病历刚被修改，请刷新后再保存") from None
        audit.record(uow, principal.actor, "video_record.write", "video_visit", row.public_id,
                     version=record.version)
        result = RecordVersion(row.public_id, record.version, doctor.public_id, doctor.name, body,
                               record.created_at)
        uow.commit()
    return result


def record_history(uow: UnitOfWork, principal: Principal, visit_id: str) -> list[RecordVersion]:
    """Every version, oldest first (R38): the visit's doctor, the patient (own) and administrators. Audited."""
    ensure_role(principal, {Role.DOCTOR, Role.PATIENT, Role.ADMIN})
    with uow:
        row = load(uow, visit_id)
        ensure_access(uow, principal, row)
        rows = uow.session.execute(
            select(VideoRecordRow, StaffRow.public_id, StaffRow.name)
            .join(StaffRow, StaffRow.id == VideoRecordRow.staff_id)
            .where(VideoRecordRow.visit_id == row.id).order_by(VideoRecordRow.version)).all()
        audit.record(uow, principal.actor, "video_record.read", "video_visit", row.public_id, versions=len(rows))
        result = [RecordVersion(row.public_id, r.version, sid, name, uow.vault.decrypt(r.text_enc), r.created_at)
                  for r, sid, name in rows]
        uow.commit()
    return result


@dataclass(frozen=True, slots=True)
class DocumentView:
    number: int  # 1-based, in upload order
    mime: str
    size: int
    uploaded_at: datetime


def list_documents(uow: UnitOfWork, principal: Principal, visit_id: str) -> list[DocumentView]:
    """The records a patient uploaded in declared mode (R17): the patient and the visit's doctor."""
    ensure_role(principal, {Role.PATIENT, Role.DOCTOR})
    with uow:
        row = load(uow, visit_id)
        ensure_access(uow, principal, row)
        docs = uow.session.scalars(select(VideoDocumentRow).where(VideoDocumentRow.visit_id == row.id)
                                   .order_by(VideoDocumentRow.id))
        return [DocumentView(i, d.mime, d.size, d.uploaded_at) for i, d in enumerate(docs, start=1)]


def read_document(uow: UnitOfWork, principal: Principal, store: AttachmentStore, visit_id: str,
                  number: int) -> tuple[str, bytes]:
    """One uploaded record, to the patient or the visit's doctor (who judges it, R17). Audited."""
    ensure_role(principal, {Role.PATIENT, Role.DOCTOR})
    with uow:
        row = load(uow, visit_id)
        ensure_access(uow, principal, row)
        docs = list(uow.session.scalars(select(VideoDocumentRow).where(VideoDocumentRow.visit_id == row.id)
                                        .order_by(VideoDocumentRow.id)))
        if not 1 <= number <= len(docs):
            raise NotFound(f"视频复诊 {visit_id} 没有第 {number} 份病历资料")
        doc = docs[number - 1]
        audit.record(uow, principal.actor, "video_visit.document_read", "video_visit", row.public_id, number=number)
        mime, sha = doc.mime, doc.sha256
        uow.commit()
    return mime, store.get(sha)


def prescribe(uow: UnitOfWork, principal: Principal, his: HisPort, signer: Signer, visit_id: str,
              cmd: prescriptions.NewPrescription, *, his_rx: HisRxPort | None = None) -> prescriptions.PrescriptionView:
    """开具处方 from a video visit: every rule of clinical core I; diagnoses limited to the visit's
    snapshotted follow-up diagnoses; signed by the doctor; pending the pharmacist's review (R32)."""
    return prescriptions.issue_prescription(uow, principal, his, signer,
                                            replace(cmd, consultation_id="", video_visit_id=visit_id), his_rx=his_rx)
