"""视频复诊 after booking: waiting room, call, third participants, end, the
doctor's follow-up judgement (confirm declared records, or stop a first visit
with an automatic refund, R18), and reading visits.

Each state change goes through ``clinical_core.domain.video_visit.transition``
inside ``_move`` (the only assignment of ``status``) with an audit entry in the
same transaction. The video room is a port: rooms are opened at check-in and
dismissed after the visit's transaction commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.consultation import payment_state
from clinical_core.domain.errors import Forbidden, InvalidInput, NotFound, RuleViolation
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.masking import mask_name
from clinical_core.domain.staff import Role, ensure_may_consult_online
from clinical_core.domain.time import local_date
from clinical_core.domain.video_visit import (
    IN_ROOM,
    TERMINATION_REASONS,
    CheckMode,
    Diagnosis,
    EndReason,
    VisitAction,
    VisitStatus,
    check_confirmed_diagnoses,
    check_guest,
    ensure_check_in_window,
    ensure_followup_confirmed,
    token_expiry,
    transition,
)
from clinical_core.persistence.models import DepartmentRow, PatientRow, StaffRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.persistence.video import (
    VideoDocumentRow,
    VideoParticipantRow,
    VideoVisitRow,
)
from clinical_core.ports.video_room import RoomToken, VideoRoomPort
from clinical_core.services import audit
from clinical_core.services.organisation import qualification_of
from clinical_core.services.video_ledger import ledger_of, refund_in_tx

READERS = frozenset({Role.ADMIN, Role.OPERATIONS, Role.CUSTOMER_SERVICE})


@dataclass(frozen=True, slots=True)
class VisitView:
    public_id: str
    status: str
    status_label: str
    patient_id: str
    patient_name: str  # masked
    doctor_id: str
    doctor_name: str
    department: str
    starts_at: datetime
    ends_at: datetime
    price_fen: int
    payment_state: str
    paid_fen: int
    refunded_fen: int
    check_mode: str
    his_visit_no: str | None
    followup_department: str | None
    followup_diagnoses: tuple[str, ...]  # "I10 原发性高血压"
    followup_confirmed: bool
    documents: int
    guests: int
    room_id: str | None
    created_at: datetime
    paid_at: datetime | None
    checked_in_at: datetime | None
    call_started_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None


@dataclass(frozen=True, slots=True)
class Invitation:
    participant_id: str
    relation: str
    token: RoomToken


# --- loading, access and the one place a status is assigned ---


def load(uow: UnitOfWork, visit_id: str, *, lock: bool = False) -> VideoVisitRow:
    query = select(VideoVisitRow).where(VideoVisitRow.public_id == visit_id)
    if lock:
        query = query.with_for_update()
    row = uow.session.scalar(query)
    if row is None:
        raise NotFound(f"未找到视频复诊 {visit_id}")
    return row


def me(uow: UnitOfWork, principal: Principal) -> StaffRow:
    row = uow.session.scalar(select(StaffRow).where(StaffRow.public_id == principal.staff_id))
    if row is None or not row.active:
        raise Forbidden("当前账号未关联在职员工")
    return row


def ensure_access(uow: UnitOfWork, principal: Principal, row: VideoVisitRow) -> None:
    """A patient sees only their own visits; a doctor only visits booked with them; staff readers all."""
    if principal.role is Role.PATIENT:
        patient_pk = uow.session.scalar(select(PatientRow.id).where(PatientRow.public_id == principal.patient_id))
        if patient_pk is None or patient_pk != row.patient_id:
            raise Forbidden("患者只能查看本人的视频复诊")
        return
    if principal.role is Role.DOCTOR:
        if me(uow, principal).id != row.doctor_id:
            raise Forbidden("医生只能查看预约本人的视频复诊")
        return
    ensure_role(principal, READERS)


def own_doctor(uow: UnitOfWork, principal: Principal, row: VideoVisitRow, *, qualified: bool = True) -> StaffRow:
    """The visit's own doctor; R07/R14 checked again at each clinical step."""
    ensure_role(principal, {Role.DOCTOR})
    doctor = me(uow, principal)
    if doctor.id != row.doctor_id:
        raise Forbidden("只有预约的接诊医生可以操作此视频复诊")
    if qualified:
        ensure_may_consult_online(qualification_of(doctor), local_date(uow.clock.now()))
    return doctor


def move(uow: UnitOfWork, row: VideoVisitRow, action: VisitAction, actor: str, **details: Any) -> None:
    """Apply one named transition (the only assignment of ``status``) and audit it."""
    before = VisitStatus(row.status)
    row.status = transition(row.public_id, before, action).value
    audit.record(uow, actor, f"video_visit.{action.value}", "video_visit", row.public_id,
                 **{"from": before.value, "to": row.status}, **details)


def view(uow: UnitOfWork, row: VideoVisitRow) -> VisitView:
    money = ledger_of(uow, row.id)
    patient = uow.session.get(PatientRow, row.patient_id)
    doctor = uow.session.get(StaffRow, row.doctor_id)
    dept = uow.session.get(DepartmentRow, row.department_id)
    assert patient is not None and doctor is not None and dept is not None
    docs = uow.session.scalar(select(func.count()).select_from(VideoDocumentRow).where(
        VideoDocumentRow.visit_id == row.id)) or 0
    guests = uow.session.scalar(select(func.count()).select_from(VideoParticipantRow).where(
        VideoParticipantRow.visit_id == row.id, VideoParticipantRow.role == "guest")) or 0
    status = VisitStatus(row.status)
    return VisitView(
        row.public_id, status.value, status.label, patient.public_id, mask_name(uow.vault.decrypt(patient.name_enc)),
        doctor.public_id, doctor.name, dept.name, row.starts_at, row.ends_at, row.price_fen,
        payment_state(row.price_fen, money).value, money.paid_fen, money.refunded_fen, row.check_mode,
        row.his_visit_no, row.followup_department,
        tuple(f"{d['icd10']} {d['name']}" for d in row.followup_diagnoses or []),
        row.followup_confirmed_at is not None, int(docs), int(guests), row.room_id, row.created_at, row.paid_at,
        row.checked_in_at, row.call_started_at, row.ended_at, row.end_reason,
    )


def participant(uow: UnitOfWork, row: VideoVisitRow, role: str) -> VideoParticipantRow:
    found = uow.session.scalar(select(VideoParticipantRow).where(
        VideoParticipantRow.visit_id == row.id, VideoParticipantRow.role == role,
        VideoParticipantRow.revoked_at.is_(None)).order_by(VideoParticipantRow.id))
    if found is None:
        raise NotFound(f"视频复诊 {row.public_id} 没有{'患者' if role == 'patient' else '医生'}参与者")
    return found


def _open_room(rooms: VideoRoomPort, row: VideoVisitRow) -> str:
    if row.room_id is None:
        row.room_id = rooms.open_room(row.public_id, token_expiry(row.ends_at, row.ends_at))
    return row.room_id


def _close_room_after_commit(uow: UnitOfWork, rooms: VideoRoomPort, row: VideoVisitRow) -> None:
    if row.room_id:
        room_id = row.room_id
        uow.after_commit(lambda: rooms.close_room(room_id))


# --- patient: waiting room ---


def check_in(uow: UnitOfWork, principal: Principal, rooms: VideoRoomPort, visit_id: str) -> RoomToken:
    """签到候诊: the waiting room opens 30 minutes before the slot; returns the patient's room token."""
    ensure_role(principal, {Role.PATIENT})
    with uow:
        row = load(uow, visit_id, lock=True)
        ensure_access(uow, principal, row)
        now = uow.clock.now()
        transition(row.public_id, VisitStatus(row.status), VisitAction.CHECK_IN)
        ensure_check_in_window(row.public_id, row.starts_at, row.ends_at, now)
        move(uow, row, VisitAction.CHECK_IN, principal.actor)
        row.checked_in_at = now
        room_id = _open_room(rooms, row)
        token = rooms.issue_token(room_id, participant(uow, row, "patient").public_id, "patient",
                                  token_expiry(row.ends_at, now))
        uow.commit()
    return token


def join_room(uow: UnitOfWork, principal: Principal, rooms: VideoRoomPort, visit_id: str) -> RoomToken:
    """A fresh room token for the visit's patient or doctor, while the room is open. Audited."""
    ensure_role(principal, {Role.PATIENT, Role.DOCTOR})
    with uow:
        row = load(uow, visit_id)
        ensure_access(uow, principal, row)
        if principal.role is Role.DOCTOR:
            own_doctor(uow, principal, row)
        status = VisitStatus(row.status)
        if status not in IN_ROOM or row.room_id is None:
            raise RuleViolation("VC-1", f"视频复诊 {visit_id} 当前状态为「{status.label}」，不能进入视频房间")
        who = participant(uow, row, principal.role.value)
        token = rooms.issue_token(row.room_id, who.public_id, principal.role.value,
                                  token_expiry(row.ends_at, uow.clock.now()))
        audit.record(uow, principal.actor, "video_visit.join", "video_visit", row.public_id,
                     participant=who.public_id)
        uow.commit()
    return token


def invite_guest(uow: UnitOfWork, principal: Principal, rooms: VideoRoomPort, visit_id: str,
                 relation: str) -> Invitation:
    """邀请第三方 (family member, interpreter ...): the patient or the doctor; the guest's token is shown once."""
    ensure_role(principal, {Role.PATIENT, Role.DOCTOR})
    with uow:
        row = load(uow, visit_id, lock=True)
        ensure_access(uow, principal, row)
        status = VisitStatus(row.status)
        if status not in {VisitStatus.PAID, *IN_ROOM}:
            raise RuleViolation("VC-1", f"视频复诊 {visit_id} 当前状态为「{status.label}」，不能邀请第三方")
        guests = uow.session.scalar(select(func.count()).select_from(VideoParticipantRow).where(
            VideoParticipantRow.visit_id == row.id, VideoParticipantRow.role == "guest",
            VideoParticipantRow.revoked_at.is_(None))) or 0
        relation = check_guest(relation, int(guests))
        guest = VideoParticipantRow(public_id=new_public_id("vpt"), visit_id=row.id, role="guest", relation=relation,
                                    invited_by=principal.actor, created_at=uow.clock.now())
        uow.session.add(guest)
        uow.session.flush()
        room_id = _open_room(rooms, row)
        token = rooms.issue_token(room_id, guest.public_id, "guest", token_expiry(row.ends_at, uow.clock.now()))
        audit.record(uow, principal.actor, "video_visit.invite", "video_visit", row.public_id,
                     participant=guest.public_id, relation=relation)
        uow.commit()
    return Invitation(guest.public_id, relation, token)


# --- doctor: follow-up judgement, call, end ---


def confirm_followup(uow: UnitOfWork, principal: Principal, visit_id: str,
                     diagnoses: list[Diagnosis]) -> VisitView:
    """R17, declared mode: the doctor read the uploaded records and names the diagnoses they show.
    Those diagnoses are snapshotted and limit what a prescription from this visit may carry."""
    confirmed = check_confirmed_diagnoses(diagnoses)
    with uow:
        row = load(uow, visit_id, lock=True)
        doctor = own_doctor(uow, principal, row)
        if row.check_mode != CheckMode.DECLARED:
            raise InvalidInput("只有申报模式的预约需要医生确认复诊", field="visit_id")
        status = VisitStatus(row.status)
        if status not in {VisitStatus.PAID, VisitStatus.WAITING}:
            raise RuleViolation("R17", f"视频复诊 {visit_id} 当前状态为「{status.label}」，不能确认复诊")
        if row.followup_confirmed_at is not None:
            raise RuleViolation("R17", f"视频复诊 {visit_id} 已确认复诊")
        row.followup_diagnoses = [{"icd10": d.code.strip(), "name": d.name.strip()} for d in confirmed]
        row.followup_confirmed_at, row.followup_confirmed_by = uow.clock.now(), doctor.id
        audit.record(uow, principal.actor, "video_visit.confirm_followup", "video_visit", row.public_id,
                     diagnoses=[d.code for d in confirmed])
        result = view(uow, row)
        uow.commit()
    return result


def start_call(uow: UnitOfWork, principal: Principal, rooms: VideoRoomPort, visit_id: str) -> RoomToken:
    """开始视频: the visit's doctor, with the patient in the waiting room; returns the doctor's token."""
    with uow:
        row = load(uow, visit_id, lock=True)
        own_doctor(uow, principal, row)
        transition(row.public_id, VisitStatus(row.status), VisitAction.START_CALL)
        ensure_followup_confirmed(row.public_id, CheckMode(row.check_mode), row.followup_confirmed_at is not None)
        now = uow.clock.now()
        move(uow, row, VisitAction.START_CALL, principal.actor)
        row.call_started_at = now
        room_id = _open_room(rooms, row)
        token = rooms.issue_token(room_id, participant(uow, row, "doctor").public_id, "doctor",
                                  token_expiry(row.ends_at, now))
        uow.commit()
    return token


def end_visit(uow: UnitOfWork, principal: Principal, rooms: VideoRoomPort, visit_id: str) -> VisitView:
    """结束就诊: the doctor ends the call; the room is dismissed after the commit."""
    with uow:
        row = load(uow, visit_id, lock=True)
        own_doctor(uow, principal, row, qualified=False)
        move(uow, row, VisitAction.END, principal.actor)
        row.ended_at, row.end_reason = uow.clock.now(), EndReason.COMPLETED.value
        _close_room_after_commit(uow, rooms, row)
        result = view(uow, row)
        uow.commit()
    return result


def terminate_visit(uow: UnitOfWork, principal: Principal, rooms: VideoRoomPort, visit_id: str,
                    reason: EndReason, note: str) -> VisitView:
    """R18 终止条件: the doctor judges the visit a first visit (首诊) or unsuitable online, stops it and
    guides the patient offline; the fee is refunded in full automatically."""
    if reason not in TERMINATION_REASONS:
        raise InvalidInput("终止原因应为 first_visit（判定为首诊）或 unsuitable（不适宜线上诊疗）", field="reason")
    note = (note or "").strip()
    if not 2 <= len(note) <= 200:
        raise InvalidInput("请写明终止说明与线下就诊建议（2 到 200 字）", field="note")
    with uow:
        row = load(uow, visit_id, lock=True)
        own_doctor(uow, principal, row, qualified=False)
        move(uow, row, VisitAction.TERMINATE, principal.actor, reason=reason.value)
        row.ended_at, row.end_reason, row.end_note = uow.clock.now(), reason.value, note
        refund_in_tx(uow, row, None, reason.value, principal.actor)
        _close_room_after_commit(uow, rooms, row)
        result = view(uow, row)
        uow.commit()
    return result


# --- reading ---


def get_visit(uow: UnitOfWork, principal: Principal, visit_id: str) -> VisitView:
    """One visit: the patient (own), its doctor, staff readers. Audited (R06)."""
    with uow:
        row = load(uow, visit_id)
        ensure_access(uow, principal, row)
        audit.record(uow, principal.actor, "video_visit.read", "video_visit", row.public_id)
        result = view(uow, row)
        uow.commit()
    return result


def complaint_of(uow: UnitOfWork, principal: Principal, visit_id: str) -> str:
    """The patient's description: the patient and the visit's doctor only. Audited."""
    ensure_role(principal, {Role.PATIENT, Role.DOCTOR})
    with uow:
        row = load(uow, visit_id)
        ensure_access(uow, principal, row)
        audit.record(uow, principal.actor, "video_visit.complaint_read", "video_visit", row.public_id)
        text = uow.vault.decrypt(row.complaint_enc)
        uow.commit()
    return text


def list_visits(uow: UnitOfWork, principal: Principal, *, status: VisitStatus | None = None,
                day: datetime | None = None, limit: int = 100) -> list[VisitView]:
    """A patient lists their own; a doctor their own (the workstation's day list, VC-4); staff readers all.
    ``day``: visits starting within 24 hours from this instant."""
    with uow:
        query = select(VideoVisitRow).order_by(VideoVisitRow.starts_at, VideoVisitRow.id)
        if principal.role is Role.PATIENT:
            query = query.join(PatientRow, PatientRow.id == VideoVisitRow.patient_id).where(
                PatientRow.public_id == principal.patient_id)
        elif principal.role is Role.DOCTOR:
            query = query.where(VideoVisitRow.doctor_id == me(uow, principal).id)
        else:
            ensure_role(principal, READERS)
        if status:
            query = query.where(VideoVisitRow.status == status.value)
        if day:
            query = query.where(VideoVisitRow.starts_at >= day, VideoVisitRow.starts_at < day + timedelta(days=1))
        return [view(uow, r) for r in uow.session.scalars(query.limit(limit))]
