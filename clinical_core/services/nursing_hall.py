"""服务大厅 (抢单, NUR-2): qualified nurses near the address see open orders and grab one.

The grab is settled by the database: a conditional UPDATE that matches only a
row still open and unassigned, so of any number of concurrent grabs exactly
one changes a row; the others get a conflict. No Python lock is involved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from clinical_core.domain.access import Principal
from clinical_core.domain.errors import Conflict, RuleViolation
from clinical_core.domain.geo import GeoPoint, distance_m
from clinical_core.domain.masking import mask_address
from clinical_core.domain.nursing import (
    NursingAction,
    NursingStatus,
    ensure_nurse_fits_item,
    transition,
)
from clinical_core.persistence.nursing import (
    HomeNurseRow,
    NursingItemRow,
    NursingOrderRow,
)
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit
from clinical_core.services.nursing_orders import (
    NursingOrderView,
    ensure_nurse_may_take,
    load,
    me_nurse,
    view,
)


@dataclass(frozen=True, slots=True)
class HallOrder:
    public_id: str
    item_code: str
    item_name: str
    price_fen: int
    duration_minutes: int
    district_code: str
    street: str | None
    address: str  # masked until the nurse has the order
    distance_km: float
    window_start: datetime
    window_end: datetime


def _reach(nurse: HomeNurseRow, row: NursingOrderRow) -> float:
    return distance_m(GeoPoint(nurse.base_lat, nurse.base_lon), GeoPoint(row.lat, row.lon)) / 1000


def service_hall(uow: UnitOfWork, principal: Principal, *, limit: int = 50) -> list[HallOrder]:
    """Open orders this nurse may take: qualified for the item and within her reach, soonest first."""
    with uow:
        staff, nurse = me_nurse(uow, principal)
        rows = uow.session.execute(
            select(NursingOrderRow, NursingItemRow).join(NursingItemRow, NursingItemRow.id == NursingOrderRow.item_id)
            .where(NursingOrderRow.status == NursingStatus.OPEN.value, NursingOrderRow.nurse_id.is_(None),
                   NursingOrderRow.window_start > uow.clock.now())
            .order_by(NursingOrderRow.window_start, NursingOrderRow.id).limit(1000))
        found: list[HallOrder] = []
        for order, item in rows:
            km = _reach(nurse, order)
            if km > nurse.radius_km:
                continue
            try:
                ensure_nurse_fits_item(order.public_id, staff.title, nurse.skills or [], item.min_title,
                                       item.required_skills or [])
            except RuleViolation:
                continue
            found.append(HallOrder(order.public_id, item.code, item.name, order.price_fen, item.duration_minutes,
                                   order.district_code, order.street, mask_address(uow.vault.decrypt(order.address_enc)),
                                   round(km, 2), order.window_start, order.window_end))
            if len(found) >= limit:
                break
        return found


def _grab_write(uow: UnitOfWork, row_id: int, staff_id: int, now: datetime) -> bool:
    """The grab, settled by the database: only a row still open and unassigned is updated."""
    target = transition("", NursingStatus.OPEN, NursingAction.GRAB)
    result = uow.session.execute(
        update(NursingOrderRow)
        .where(NursingOrderRow.id == row_id, NursingOrderRow.status == NursingStatus.OPEN.value,
               NursingOrderRow.nurse_id.is_(None))
        .values(status=target.value, nurse_id=staff_id, assigned_at=now, assigned_by="grab")
        .execution_options(synchronize_session=False))
    return result.rowcount == 1  # type: ignore[attr-defined]


def grab_order(uow: UnitOfWork, principal: Principal, order_id: str) -> NursingOrderView:
    """抢单. Exactly one nurse wins; the others get a conflict."""
    now = uow.clock.now()
    with uow:
        staff, nurse = me_nurse(uow, principal)
        row = load(uow, order_id)
        transition(row.public_id, NursingStatus(row.status), NursingAction.GRAB)
        ensure_nurse_may_take(uow, row, staff, nurse)
        if _reach(nurse, row) > nurse.radius_km:
            raise RuleViolation("NUR-2", f"护理订单 {order_id} 超出本人服务半径 {nurse.radius_km:g} 公里")
        if not _grab_write(uow, row.id, staff.id, now):
            raise Conflict(f"护理订单 {order_id} 已被其他护士抢单")
        audit.record(uow, principal.actor, "nursing_order.grab", "nursing_order", row.public_id,
                     **{"from": NursingStatus.OPEN.value, "to": NursingStatus.ASSIGNED.value}, nurse=staff.public_id)
        uow.session.refresh(row)
        result = view(uow, row, principal)
        uow.commit()
    return result
