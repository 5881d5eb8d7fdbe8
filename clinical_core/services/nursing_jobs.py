"""Time-driven home-nursing jobs; the scheduler (jobs package) calls these.

- ``expire_stale_orders``: an order left unpaid beyond the payment window is
  cancelled; a paid order that nobody reviewed or grabbed before its visit
  window starts is cancelled and refunded in full (the patient is not left
  waiting for a nurse who never comes).
- ``nursing_alarms.escalate_unacknowledged`` (in its own module) escalates SOS
  alarms nobody acknowledged in time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from clinical_core.domain.consultation import PAYMENT_WINDOW
from clinical_core.domain.nursing import NursingAction, NursingStatus
from clinical_core.persistence.nursing import NursingOrderRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services.nursing_orders import move, refund_in_tx

JOB_ACTOR = "job:expire_nursing_orders"


@dataclass(frozen=True, slots=True)
class NursingExpiryResult:
    cancelled_unpaid: tuple[str, ...]
    cancelled_unserved: tuple[str, ...]
    refunds_requested: int


def expire_stale_orders(uow: UnitOfWork, now: datetime, *, batch: int = 500) -> NursingExpiryResult:
    """Idempotent and safe to run concurrently: rows are locked with SKIP LOCKED on
    PostgreSQL and their status is checked again under the lock, so a nurse who
    grabs at the last second either wins before the job or gets a conflict."""
    unpaid: list[str] = []
    unserved: list[str] = []
    refunds = 0
    with uow:
        for row in uow.session.scalars(select(NursingOrderRow).where(
                NursingOrderRow.status == NursingStatus.CREATED.value,
                NursingOrderRow.created_at <= now - PAYMENT_WINDOW,
        ).order_by(NursingOrderRow.id).limit(batch).with_for_update(skip_locked=True)):
            move(uow, row, NursingAction.CANCEL, JOB_ACTOR, reason="unpaid")
            row.closed_at, row.close_reason = now, "超时未支付"
            unpaid.append(row.public_id)
        for row in uow.session.scalars(select(NursingOrderRow).where(
                NursingOrderRow.status.in_([NursingStatus.PAID.value, NursingStatus.OPEN.value]),
                NursingOrderRow.window_start <= now,
        ).order_by(NursingOrderRow.window_start).limit(batch).with_for_update(skip_locked=True)):
            move(uow, row, NursingAction.CANCEL, JOB_ACTOR, reason="unserved")
            row.closed_at, row.close_reason = now, "上门时间已到仍无人接单，已全额退款"
            if refund_in_tx(uow, row, None, "unserved", JOB_ACTOR) is not None:
                refunds += 1
            unserved.append(row.public_id)
        uow.commit()
    return NursingExpiryResult(tuple(unpaid), tuple(unserved), refunds)
