"""网络门诊排班 (VC-5): doctors' online sessions with slots, the schedule
workbook import (all or nothing), stopping a session (停诊), and the fused
schedule of online and offline slots (VC-3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import Conflict, InvalidInput, NotFound, RuleViolation
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.staff import Role, ensure_may_consult_online
from clinical_core.domain.time import local_date
from clinical_core.domain.video_schedule import (
    OfflineSlot,
    OnlineSlot,
    ScheduleLine,
    ScheduleRejected,
    check_session,
    cut_slots,
    fuse,
    parse_rows,
)
from clinical_core.domain.video_visit import EndReason, VisitStatus
from clinical_core.persistence.models import DepartmentRow, StaffRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.persistence.video import VideoSessionRow, VideoSlotRow, VideoVisitRow
from clinical_core.ports.his_schedule import HisSchedulePort
from clinical_core.services import audit
from clinical_core.services.organisation import qualification_of
from clinical_core.services.video_booking import cancel_in_tx

SCHEDULERS = frozenset({Role.ADMIN, Role.OPERATIONS})
MAX_VIEW = timedelta(days=31)


@dataclass(frozen=True, slots=True)
class NewSession:
    doctor_id: str
    starts_at: datetime
    ends_at: datetime
    slot_minutes: int
    price_fen: int


@dataclass(frozen=True, slots=True)
class SessionView:
    public_id: str
    doctor_id: str
    doctor_name: str
    department: str
    starts_at: datetime
    ends_at: datetime
    slot_minutes: int
    price_fen: int
    status: str
    slots: int
    open_slots: int


@dataclass(frozen=True, slots=True)
class ImportResult:
    rows: int
    sessions: int
    slots: int


@dataclass(frozen=True, slots=True)
class FusedSlotView:
    """One time of one doctor in the fused schedule: online, offline or both (号源共享)."""

    doctor_id: str
    doctor_name: str
    department: str
    starts_at: datetime
    ends_at: datetime
    channels: str  # online | offline | both
    online_slot_id: str | None
    offline_slot_nos: tuple[str, ...]
    available: bool
    price_fen: int | None


def _doctor_for_session(uow: UnitOfWork, doctor: StaffRow | None, key: str) -> StaffRow:
    if doctor is None or not doctor.active or doctor.role != Role.DOCTOR.value:
        raise NotFound(f"未找到在职医生 {key}")
    if doctor.department_id is None:
        raise InvalidInput(f"医生 {key} 未分配科室", field="doctor_id")
    ensure_may_consult_online(qualification_of(doctor), local_date(uow.clock.now()))  # R07
    return doctor


def _clash(uow: UnitOfWork, doctor_pk: int, starts_at: datetime, ends_at: datetime) -> str | None:
    return uow.session.scalar(select(VideoSessionRow.public_id).where(
        VideoSessionRow.doctor_id == doctor_pk, VideoSessionRow.status == "open",
        VideoSessionRow.starts_at < ends_at, VideoSessionRow.ends_at > starts_at))


def _write_session(uow: UnitOfWork, doctor: StaffRow, starts_at: datetime, ends_at: datetime, slot_minutes: int,
                   price_fen: int, source: str) -> tuple[VideoSessionRow, int]:
    # The doctor's row is locked, so two schedulers publishing for one doctor at once are serialised
    # and the overlap check below sees the other's session.
    uow.session.execute(select(StaffRow.id).where(StaffRow.id == doctor.id).with_for_update())
    clash = _clash(uow, doctor.id, starts_at, ends_at)
    if clash:
        raise Conflict(f"与已有出诊 {clash} 的时间重叠")
    assert doctor.department_id is not None
    session = VideoSessionRow(public_id=new_public_id("vss"), doctor_id=doctor.id,
                              department_id=doctor.department_id, starts_at=starts_at, ends_at=ends_at,
                              slot_minutes=slot_minutes, price_fen=price_fen, status="open", source=source,
                              created_at=uow.clock.now())
    uow.session.add(session)
    uow.session.flush()
    slots = cut_slots(starts_at, ends_at, slot_minutes)
    uow.session.add_all(VideoSlotRow(public_id=new_public_id("vsl"), session_id=session.id, doctor_id=doctor.id,
                                     starts_at=s.starts_at, ends_at=s.ends_at, status="open") for s in slots)
    uow.session.flush()
    return session, len(slots)


def create_session(uow: UnitOfWork, principal: Principal, cmd: NewSession) -> SessionView:
    """发布网络门诊出诊: a qualified doctor (R07), within two months, not overlapping their other sessions."""
    ensure_role(principal, SCHEDULERS)
    check_session(cmd.starts_at, cmd.ends_at, cmd.slot_minutes, cmd.price_fen, uow.clock.now())
    with uow:
        doctor = _doctor_for_session(uow, uow.session.scalar(select(StaffRow).where(
            StaffRow.public_id == cmd.doctor_id)), cmd.doctor_id)
        session, slots = _write_session(uow, doctor, cmd.starts_at, cmd.ends_at, cmd.slot_minutes, cmd.price_fen,
                                        "manual")
        audit.record(uow, principal.actor, "video_session.create", "video_session", session.public_id,
                     doctor=doctor.public_id, slots=slots, price_fen=cmd.price_fen)
        result = _session_view(uow, session)
        uow.commit()
    return result


def import_schedule(uow: UnitOfWork, principal: Principal, rows: list[tuple[int, dict[str, Any]]], *,
                    source: str) -> ImportResult:
    """排班导入: every row checked (format, doctor, R07, overlaps in the file and with published sessions);
    any error refuses the whole file with one Chinese line per problem (``ScheduleRejected``)."""
    ensure_role(principal, SCHEDULERS)
    lines, errors = parse_rows(rows, uow.clock.now())
    sessions = slots = 0
    with uow:
        doctors = {d.employee_no: d for d in uow.session.scalars(select(StaffRow).where(
            StaffRow.employee_no.in_({line.employee_no for line in lines})))}
        valid: list[tuple[ScheduleLine, StaffRow]] = []
        for line in lines:
            try:
                doctor = _doctor_for_session(uow, doctors.get(line.employee_no), line.employee_no)
                clash = _clash(uow, doctor.id, line.starts_at, line.ends_at)
                if clash:
                    raise Conflict(f"与已有出诊 {clash} 的时间重叠")
                valid.append((line, doctor))
            except (NotFound, InvalidInput, RuleViolation, Conflict) as exc:
                errors.append(f"第 {line.row} 行：{exc.message}")
        if not errors:
            for line, doctor in valid:
                try:
                    with uow.session.begin_nested():
                        _, n = _write_session(uow, doctor, line.starts_at, line.ends_at, line.slot_minutes,
                                              line.price_fen, "import")
                    sessions, slots = sessions + 1, slots + n
                except Conflict as exc:
                    errors.append(f"第 {line.row} 行：{exc.message}")
        if errors:
            errors.sort(key=lambda e: int(e.split(" ")[1]))
            raise ScheduleRejected(errors)  # nothing is committed
        if not lines:
            raise ScheduleRejected(["排班表没有数据行"])
        audit.record(uow, principal.actor, "video_session.import", "video_session", "*", source=source,
                     rows=len(lines), sessions=sessions, slots=slots)
        uow.commit()
    return ImportResult(len(lines), sessions, slots)


def cancel_session(uow: UnitOfWork, principal: Principal, his_schedule: HisSchedulePort,
                   session_id: str) -> SessionView:
    """停诊: open slots close; booked visits not yet in the call are cancelled by the hospital and
    refunded in full; the HIS holds are released after the commit."""
    ensure_role(principal, SCHEDULERS)
    with uow:
        session = uow.session.scalar(select(VideoSessionRow).where(VideoSessionRow.public_id == session_id)
                                     .with_for_update())
        if session is None:
            raise NotFound(f"未找到出诊 {session_id}")
        if session.status != "open":
            raise Conflict(f"出诊 {session_id} 已停诊")
        session.status = "cancelled"
        uow.session.execute(update(VideoSlotRow).where(VideoSlotRow.session_id == session.id,
                                                       VideoSlotRow.status == "open")
                            .values(status="closed").execution_options(synchronize_session=False))
        visits = uow.session.scalars(
            select(VideoVisitRow).join(VideoSlotRow, VideoSlotRow.id == VideoVisitRow.slot_id)
            .where(VideoSlotRow.session_id == session.id,
                   VideoVisitRow.status.in_([VisitStatus.BOOKED.value, VisitStatus.PAID.value,
                                             VisitStatus.WAITING.value]))
            .with_for_update()).all()
        for visit in visits:
            cancel_in_tx(uow, his_schedule, visit, EndReason.HOSPITAL_CANCELLED, principal.actor, 100)
        audit.record(uow, principal.actor, "video_session.cancel", "video_session", session.public_id,
                     cancelled_visits=[v.public_id for v in visits])
        uow.session.flush()
        result = _session_view(uow, session)
        uow.commit()
    return result


def _session_view(uow: UnitOfWork, s: VideoSessionRow) -> SessionView:
    doctor = uow.session.get(StaffRow, s.doctor_id)
    dept = uow.session.get(DepartmentRow, s.department_id)
    assert doctor is not None and dept is not None
    statuses = list(uow.session.scalars(select(VideoSlotRow.status).where(VideoSlotRow.session_id == s.id)))
    return SessionView(s.public_id, doctor.public_id, doctor.name, dept.name, s.starts_at, s.ends_at,
                       s.slot_minutes, s.price_fen, s.status, len(statuses), statuses.count("open"))


def list_sessions(uow: UnitOfWork, principal: Principal, *, start: datetime, end: datetime,
                  doctor_id: str | None = None, department_code: str | None = None) -> list[SessionView]:
    """Everyone signed in sees the published sessions (VC-1: all doctors' online schedules)."""
    with uow:
        query = (select(VideoSessionRow).join(StaffRow, StaffRow.id == VideoSessionRow.doctor_id)
                 .join(DepartmentRow, DepartmentRow.id == VideoSessionRow.department_id)
                 .where(VideoSessionRow.starts_at >= start, VideoSessionRow.starts_at < end)
                 .order_by(VideoSessionRow.starts_at, VideoSessionRow.id))
        if doctor_id:
            query = query.where(StaffRow.public_id == doctor_id)
        if department_code:
            query = query.where(DepartmentRow.code == department_code)
        return [_session_view(uow, s) for s in uow.session.scalars(query.limit(500))]


def fused_schedule(uow: UnitOfWork, principal: Principal, his_schedule: HisSchedulePort, *, start: datetime,
                   end: datetime, doctor_id: str | None = None,
                   department_code: str | None = None) -> list[FusedSlotView]:
    """VC-3: online and offline slots of a doctor or a department together; a time taken on either side
    is shown taken on both. Offline slots come from the HIS port."""
    if not doctor_id and not department_code:
        raise InvalidInput("请指定医生或科室", field="doctor_id")
    if end <= start or end - start > MAX_VIEW:
        raise InvalidInput("查询区间应大于 0 且不超过 31 天", field="end")
    with uow:
        query = (select(VideoSlotRow, StaffRow.public_id, VideoSessionRow.price_fen, VideoSessionRow.status)
                 .join(VideoSessionRow, VideoSessionRow.id == VideoSlotRow.session_id)
                 .join(StaffRow, StaffRow.id == VideoSlotRow.doctor_id)
                 .join(DepartmentRow, DepartmentRow.id == VideoSessionRow.department_id)
                 .where(VideoSlotRow.starts_at >= start, VideoSlotRow.starts_at < end))
        if doctor_id:
            query = query.where(StaffRow.public_id == doctor_id)
        if department_code:
            query = query.where(DepartmentRow.code == department_code)
        online = [OnlineSlot(slot.public_id, doctor, slot.starts_at, slot.ends_at,
                             slot.status != "open" or session_status != "open", price)
                  for slot, doctor, price, session_status in uow.session.execute(query)
                  if not (slot.status == "closed" and session_status != "open")]
        names = {s.public_id: (s.name, s.department_id) for s in uow.session.scalars(select(StaffRow).where(
            StaffRow.role == Role.DOCTOR.value))}
        departments = {d.id: d.name for d in uow.session.scalars(select(DepartmentRow))}
    offline = [OfflineSlot(s.slot_no, s.doctor_id, s.starts_at, s.ends_at, s.taken)
               for s in his_schedule.outpatient_slots(start=start, end=end, doctor_id=doctor_id,
                                                      department_code=department_code)]
    now = uow.clock.now()
    result = []
    for f in fuse(online, offline):
        name, dept_pk = names.get(f.doctor_id, ("", None))
        result.append(FusedSlotView(f.doctor_id, name, departments.get(dept_pk or 0, ""), f.starts_at, f.ends_at,
                                    f.channels, f.online_slot_id, f.offline_slot_nos,
                                    not f.taken and f.starts_at > now, f.price_fen))
    return result
