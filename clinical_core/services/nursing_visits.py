"""On site (R47, R48): check-in and check-out inside a geofence around the
address, admin overrides with a reason, service notes, trajectory points,
and the visit record as a hash chain whose verification shows later edits.

Every entry of the visit record is chained: its hash covers the previous
entry's hash and its own order, sequence, kind, actor, time and data. The
order row is locked while an entry is appended, so entries of one order are
written one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import Conflict, Forbidden, InvalidInput
from clinical_core.domain.geo import GeoPoint, distance_m
from clinical_core.domain.nursing import (
    GENESIS,
    GEOFENCE_RADIUS_M,
    ON_DUTY,
    ChainEntry,
    NursingAction,
    NursingStatus,
    chain_hash,
    ensure_assessed,
    ensure_within_geofence,
    first_broken,
    transition,
)
from clinical_core.domain.staff import Role
from clinical_core.persistence.nursing import (
    NursingOrderRow,
    NursingTrackPointRow,
    NursingVisitEventRow,
)
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit
from clinical_core.services.nursing_catalogue import MANAGERS
from clinical_core.services.nursing_orders import (
    NursingOrderView,
    ensure_access,
    latest_assessment,
    load,
    me_nurse,
    move,
    view,
)

MAX_TRACK_BATCH = 500


@dataclass(frozen=True, slots=True)
class VisitEntry:
    seq: int
    kind: str
    actor: str
    at: datetime
    data: dict[str, Any]  # notes shown decrypted to those allowed to read the order
    hash: str


@dataclass(frozen=True, slots=True)
class VisitRecord:
    order_id: str
    entries: list[VisitEntry]
    intact: bool
    first_broken_seq: int | None


@dataclass(frozen=True, slots=True)
class TrackPoint:
    lat: float
    lon: float
    recorded_at: datetime
    accuracy_m: float | None = None


@dataclass(frozen=True, slots=True)
class TrackResult:
    stored: int
    duplicates: int


def _hash_payload(order_id: str, e: NursingVisitEventRow) -> dict[str, Any]:
    return {"order": order_id, "seq": e.seq, "kind": e.kind, "actor": e.actor,
            "at": e.at.astimezone(UTC).isoformat(), "data": e.payload}


def _append(uow: UnitOfWork, row: NursingOrderRow, kind: str, actor: str, data: dict[str, Any]) -> NursingVisitEventRow:
    """Append one chained entry (the order row is locked by the caller)."""
    last = uow.session.scalar(select(NursingVisitEventRow).where(NursingVisitEventRow.order_id == row.id)
                              .order_by(NursingVisitEventRow.seq.desc()).limit(1))
    prev = last.hash if last else GENESIS
    entry = NursingVisitEventRow(order_id=row.id, seq=(last.seq + 1) if last else 1, kind=kind, actor=actor,
                                 payload=data, prev_hash=prev, hash="", at=uow.clock.now())
    entry.hash = chain_hash(prev, _hash_payload(row.public_id, entry))
    uow.session.add(entry)
    uow.session.flush()
    return entry


def _events(uow: UnitOfWork, row: NursingOrderRow) -> list[NursingVisitEventRow]:
    return list(uow.session.scalars(select(NursingVisitEventRow).where(NursingVisitEventRow.order_id == row.id)
                                    .order_by(NursingVisitEventRow.seq)))


def _unused_override(events: list[NursingVisitEventRow], event: str) -> int | None:
    """The sequence number of an admin override for ``event`` not yet consumed by a check."""
    used = {e.payload.get("override_seq") for e in events if e.kind == event}
    for e in events:
        if e.kind == "override" and e.payload.get("event") == event and e.seq not in used:
            return e.seq
    return None


def _on_site(uow: UnitOfWork, principal: Principal, order_id: str, lat: float, lon: float,
             action: NursingAction, notes: str | None = None) -> NursingOrderView:
    here = GeoPoint(lat, lon)
    with uow:
        staff, _ = me_nurse(uow, principal)
        row = load(uow, order_id, lock=True)
        if row.nurse_id != staff.id:
            raise Forbidden("只有承接该订单的护士可以签到签退")
        now = uow.clock.now()
        if action is NursingAction.CHECK_IN:
            assessment = latest_assessment(uow, row.patient_id)
            ensure_assessed(row.public_id, assessment.assessed_at if assessment else None,
                            assessment.suitable if assessment else None, now)
        transition(row.public_id, NursingStatus(row.status), action)  # refuse before judging the location
        event = action.value
        distance = distance_m(here, GeoPoint(row.lat, row.lon))
        override = _unused_override(_events(uow, row), event)
        ensure_within_geofence(row.public_id, action.label, distance, GEOFENCE_RADIUS_M, override is not None)
        move(uow, row, action, principal.actor, distance_m=round(distance), override=override)
        data: dict[str, Any] = {"lat": round(lat, 6), "lon": round(lon, 6), "distance_m": round(distance, 1),
                                "override_seq": override}
        if notes and notes.strip():
            data["notes_enc"] = uow.vault.encrypt(notes.strip())
        _append(uow, row, event, principal.actor, data)
        if action is NursingAction.CHECK_IN:
            row.checked_in_at = now
        else:
            row.checked_out_at, row.closed_at, row.close_reason = now, now, "completed"
        result = view(uow, row, principal)
        uow.commit()
    return result


def check_in(uow: UnitOfWork, principal: Principal, order_id: str, lat: float, lon: float) -> NursingOrderView:
    """签到: at the address (within 300 m), after the first-visit assessment (R46)."""
    return _on_site(uow, principal, order_id, lat, lon, NursingAction.CHECK_IN)


def check_out(uow: UnitOfWork, principal: Principal, order_id: str, lat: float, lon: float,
              notes: str) -> NursingOrderView:
    """签退 with the service notes (护理记录): the order is completed."""
    if len((notes or "").strip()) < 5:
        raise InvalidInput("请填写护理记录（至少 5 个字）", field="notes")
    return _on_site(uow, principal, order_id, lat, lon, NursingAction.CHECK_OUT, notes)


def override_geofence(uow: UnitOfWork, principal: Principal, order_id: str, event: str, reason: str) -> VisitEntry:
    """管理员放行: the next check-in (or check-out) of this order is accepted outside the geofence."""
    ensure_role(principal, MANAGERS)
    if event not in (NursingAction.CHECK_IN.value, NursingAction.CHECK_OUT.value):
        raise InvalidInput("放行对象应为 check_in 或 check_out", field="event")
    if len((reason or "").strip()) < 4:
        raise InvalidInput("请填写放行原因（至少 4 个字）", field="reason")
    with uow:
        row = load(uow, order_id, lock=True)
        if NursingStatus(row.status) not in ON_DUTY:
            raise Conflict(f"护理订单 {order_id} 当前状态为「{NursingStatus(row.status).label}」，无需放行")
        entry = _append(uow, row, "override", principal.actor,
                        {"event": event, "reason_enc": uow.vault.encrypt(reason.strip())})
        audit.record(uow, principal.actor, "nursing_order.geofence_override", "nursing_order", row.public_id,
                     event=event, seq=entry.seq)
        result = _entry_view(uow, entry)
        uow.commit()
    return result


def add_note(uow: UnitOfWork, principal: Principal, order_id: str, notes: str) -> VisitEntry:
    """服务过程记录 by the nurse on site."""
    if len((notes or "").strip()) < 2:
        raise InvalidInput("记录内容不能为空", field="notes")
    with uow:
        staff, _ = me_nurse(uow, principal)
        row = load(uow, order_id, lock=True)
        if row.nurse_id != staff.id:
            raise Forbidden("只有承接该订单的护士可以记录")
        if row.status != NursingStatus.IN_SERVICE:
            raise Conflict(f"护理订单 {order_id} 不在服务中，不能记录")
        entry = _append(uow, row, "note", principal.actor, {"notes_enc": uow.vault.encrypt(notes.strip())})
        result = _entry_view(uow, entry)
        uow.commit()
    return result


def _entry_view(uow: UnitOfWork, e: NursingVisitEventRow) -> VisitEntry:
    data = {}
    for key, value in (e.payload or {}).items():
        if key.endswith("_enc") and isinstance(value, str):
            data[key[:-4]] = uow.vault.decrypt(value)
        else:
            data[key] = value
    return VisitEntry(e.seq, e.kind, e.actor, e.at, data, e.hash)


def visit_record(uow: UnitOfWork, principal: Principal, order_id: str) -> VisitRecord:
    """服务记录 with its verification: ``intact`` is false when any entry was edited, removed or reordered."""
    with uow:
        row = load(uow, order_id)
        ensure_access(uow, principal, row)
        events = _events(uow, row)
        chain = [ChainEntry(e.seq, _hash_payload(row.public_id, e), e.prev_hash, e.hash) for e in events]
        broken = first_broken(chain)
        record = VisitRecord(row.public_id, [_entry_view(uow, e) for e in events], broken is None, broken)
        audit.record(uow, principal.actor, "nursing_order.visit_read", "nursing_order", row.public_id)
        uow.commit()
    return record


def record_track(uow: UnitOfWork, principal: Principal, order_id: str, points: list[TrackPoint]) -> TrackResult:
    """轨迹上报 from the nurse's app while on duty (R47). A repeated point is ignored (the app retries)."""
    if not points or len(points) > MAX_TRACK_BATCH:
        raise InvalidInput(f"每次上报 1 到 {MAX_TRACK_BATCH} 个轨迹点", field="points")
    now = uow.clock.now()
    for p in points:
        GeoPoint(p.lat, p.lon)
        if p.recorded_at > now + timedelta(minutes=2):
            raise InvalidInput("轨迹点时间晚于当前时间", field="points")
    with uow:
        staff, _ = me_nurse(uow, principal)
        row = load(uow, order_id, lock=True)
        if row.nurse_id != staff.id:
            raise Forbidden("只能上报本人承接订单的轨迹")
        if NursingStatus(row.status) not in ON_DUTY:
            raise Conflict(f"护理订单 {order_id} 不在服务途中，不能上报轨迹")
        seen = set(uow.session.scalars(select(NursingTrackPointRow.recorded_at).where(
            NursingTrackPointRow.order_id == row.id, NursingTrackPointRow.staff_id == staff.id,
            NursingTrackPointRow.recorded_at.in_([p.recorded_at for p in points]))))
        stored = 0
        for p in points:
            if p.recorded_at in seen:
                continue
            seen.add(p.recorded_at)
            uow.session.add(NursingTrackPointRow(order_id=row.id, staff_id=staff.id, lat=p.lat, lon=p.lon,
                                                 accuracy_m=p.accuracy_m, recorded_at=p.recorded_at, received_at=now))
            stored += 1
        uow.commit()
    return TrackResult(stored, len(points) - stored)


def trajectory(uow: UnitOfWork, principal: Principal, order_id: str) -> list[TrackPoint]:
    """The trail of an order, to administrators and the assigned nurse."""
    with uow:
        row = load(uow, order_id)
        if principal.role is Role.PATIENT:
            raise Forbidden("轨迹仅管理员和服务护士可见")
        ensure_access(uow, principal, row)
        rows = uow.session.scalars(select(NursingTrackPointRow).where(NursingTrackPointRow.order_id == row.id)
                                   .order_by(NursingTrackPointRow.recorded_at))
        points = [TrackPoint(r.lat, r.lon, r.recorded_at, r.accuracy_m) for r in rows]
        audit.record(uow, principal.actor, "nursing_order.track_read", "nursing_order", row.public_id)
        uow.commit()
    return points
