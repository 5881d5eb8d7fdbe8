"""一键呼叫 (R48): a nurse's SOS with her location goes to the admin alarm
queue; the security desk acknowledges it and closes it with notes. Response
times feed the reports; an alarm nobody acknowledges in time is escalated by
``escalate_unacknowledged`` (a scheduled job).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import Forbidden, NotFound
from clinical_core.domain.geo import GeoPoint
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.nursing_alarm import (
    DEFAULT_ESCALATE_AFTER,
    UNACKNOWLEDGED,
    AlarmAction,
    AlarmStatus,
    ResponseStats,
    alarm_transition,
    check_notes,
    response_stats,
)
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import StaffRow
from clinical_core.persistence.nursing import NursingAlarmRow, NursingOrderRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit

HANDLERS = frozenset({Role.ADMIN, Role.OPERATIONS, Role.CUSTOMER_SERVICE})
JOB_ACTOR = "job:escalate_alarms"


@dataclass(frozen=True, slots=True)
class AlarmView:
    public_id: str
    status: str
    status_label: str
    nurse_id: str
    nurse_name: str
    order_id: str | None
    lat: float
    lon: float
    raised_at: datetime
    escalated_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    closed_at: datetime | None
    response_seconds: float | None
    notes: str | None


@dataclass(frozen=True, slots=True)
class EscalationResult:
    escalated: tuple[str, ...]


def _move(uow: UnitOfWork, row: NursingAlarmRow, action: AlarmAction, actor: str, **details: Any) -> None:
    before = AlarmStatus(row.status)
    row.status = alarm_transition(row.public_id, before, action).value
    audit.record(uow, actor, f"nursing_alarm.{action.value}", "nursing_alarm", row.public_id,
                 **{"from": before.value, "to": row.status}, **details)


def _view(uow: UnitOfWork, row: NursingAlarmRow) -> AlarmView:
    staff = uow.session.get(StaffRow, row.staff_id)
    order = uow.session.get(NursingOrderRow, row.order_id) if row.order_id else None
    assert staff is not None
    status = AlarmStatus(row.status)
    response = (row.acknowledged_at - row.raised_at).total_seconds() if row.acknowledged_at else None
    return AlarmView(row.public_id, status.value, status.label, staff.public_id, staff.name,
                     order.public_id if order else None, row.lat, row.lon, row.raised_at, row.escalated_at,
                     row.acknowledged_at, row.acknowledged_by, row.closed_at, response,
                     uow.vault.decrypt(row.notes_enc) if row.notes_enc else None)


def _load(uow: UnitOfWork, alarm_id: str) -> NursingAlarmRow:
    row = uow.session.scalar(select(NursingAlarmRow).where(NursingAlarmRow.public_id == alarm_id).with_for_update())
    if row is None:
        raise NotFound(f"未找到报警 {alarm_id}")
    return row


def raise_sos(uow: UnitOfWork, principal: Principal, lat: float, lon: float,
              order_id: str | None = None) -> AlarmView:
    """一键呼叫. Any active nurse may call for help, whatever her qualification or order state."""
    ensure_role(principal, {Role.NURSE})
    where = GeoPoint(lat, lon)
    with uow:
        staff = uow.session.scalar(select(StaffRow).where(StaffRow.public_id == principal.staff_id))
        if staff is None or not staff.active:
            raise Forbidden("当前账号未关联在职护士")
        order_pk = None
        if order_id:
            order = uow.session.scalar(select(NursingOrderRow).where(NursingOrderRow.public_id == order_id))
            if order is None or order.nurse_id != staff.id:
                raise Forbidden("只能关联本人承接的订单")
            order_pk = order.id
        row = NursingAlarmRow(public_id=new_public_id("sos"), staff_id=staff.id, order_id=order_pk,
                              status=AlarmStatus.RAISED.value, lat=where.lat, lon=where.lon,
                              raised_at=uow.clock.now())
        uow.session.add(row)
        uow.session.flush()
        audit.record(uow, principal.actor, "nursing_alarm.raise", "nursing_alarm", row.public_id, order=order_id)
        result = _view(uow, row)
        uow.commit()
    return result


def acknowledge_alarm(uow: UnitOfWork, principal: Principal, alarm_id: str) -> AlarmView:
    """响应: the response time stops here."""
    ensure_role(principal, HANDLERS)
    with uow:
        row = _load(uow, alarm_id)
        _move(uow, row, AlarmAction.ACKNOWLEDGE, principal.actor)
        row.acknowledged_at, row.acknowledged_by = uow.clock.now(), principal.actor
        result = _view(uow, row)
        uow.commit()
    return result


def close_alarm(uow: UnitOfWork, principal: Principal, alarm_id: str, notes: str) -> AlarmView:
    """关闭 with notes on what was done."""
    ensure_role(principal, HANDLERS)
    text = check_notes(notes)
    with uow:
        row = _load(uow, alarm_id)
        _move(uow, row, AlarmAction.CLOSE, principal.actor)
        row.closed_at, row.closed_by, row.notes_enc = uow.clock.now(), principal.actor, uow.vault.encrypt(text)
        result = _view(uow, row)
        uow.commit()
    return result


def list_alarms(uow: UnitOfWork, principal: Principal, *, status: AlarmStatus | None = None,
                open_only: bool = False, limit: int = 100) -> list[AlarmView]:
    """报警队列: unacknowledged first (escalated before raised), oldest first."""
    ensure_role(principal, HANDLERS)
    with uow:
        query = select(NursingAlarmRow)
        if status:
            query = query.where(NursingAlarmRow.status == status.value)
        if open_only:
            query = query.where(NursingAlarmRow.status != AlarmStatus.CLOSED.value)
        rank = {AlarmStatus.ESCALATED.value: 0, AlarmStatus.RAISED.value: 1, AlarmStatus.ACKNOWLEDGED.value: 2}
        rows = sorted(uow.session.scalars(query.order_by(NursingAlarmRow.raised_at.desc()).limit(limit)),
                      key=lambda r: (rank.get(r.status, 3), r.raised_at if r.status in rank else -r.id))
        return [_view(uow, r) for r in rows]


def escalate_unacknowledged(uow: UnitOfWork, now: datetime, *, after: timedelta = DEFAULT_ESCALATE_AFTER,
                            batch: int = 200) -> EscalationResult:
    """Job: an alarm still unacknowledged ``after`` its raising is escalated (once).

    Idempotent (an escalated alarm is not raised any more) and safe to run
    concurrently: rows are locked with SKIP LOCKED on PostgreSQL, and a handler
    who acknowledges at the same moment either wins (nothing to escalate) or
    acknowledges the escalated alarm.
    """
    escalated: list[str] = []
    with uow:
        due = uow.session.scalars(select(NursingAlarmRow).where(
            NursingAlarmRow.status == AlarmStatus.RAISED.value, NursingAlarmRow.raised_at <= now - after,
        ).order_by(NursingAlarmRow.raised_at).limit(batch).with_for_update(skip_locked=True))
        for row in due:
            _move(uow, row, AlarmAction.ESCALATE, JOB_ACTOR, waited_seconds=int((now - row.raised_at).total_seconds()))
            row.escalated_at = now
            escalated.append(row.public_id)
        uow.commit()
    return EscalationResult(tuple(escalated))


def response_times(uow: UnitOfWork, principal: Principal, since: datetime, until: datetime) -> ResponseStats:
    """报警响应时间 of the alarms raised in [since, until), for the operations reports."""
    ensure_role(principal, HANDLERS)
    with uow:
        window = (NursingAlarmRow.raised_at >= since, NursingAlarmRow.raised_at < until)
        total = int(uow.session.scalar(select(func.count()).select_from(NursingAlarmRow).where(*window)) or 0)
        escalated = int(uow.session.scalar(select(func.count()).select_from(NursingAlarmRow).where(
            *window, NursingAlarmRow.escalated_at.is_not(None))) or 0)
        pairs = uow.session.execute(select(NursingAlarmRow.raised_at, NursingAlarmRow.acknowledged_at).where(
            *window, NursingAlarmRow.acknowledged_at.is_not(None)))
        return response_stats(total, escalated, [(ack - raised).total_seconds() for raised, ack in pairs])


def unacknowledged_count(uow: UnitOfWork) -> int:
    with uow:
        return int(uow.session.scalar(select(func.count()).select_from(NursingAlarmRow).where(
            NursingAlarmRow.status.in_([s.value for s in UNACKNOWLEDGED]))) or 0)
