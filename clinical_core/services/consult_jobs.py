"""Time-driven consultation jobs; the scheduler (jobs package) calls these.

- ``expire_unanswered``: a paid order nobody answered within its service's
  time limit is closed and refunded in full; an order left unpaid beyond the
  payment window is cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from clinical_core.domain.consultation import PAYMENT_WINDOW, UNANSWERED, Action, CloseReason, ConsultStatus
from clinical_core.persistence.consultation import ConsultationRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services.consult_ledger import refund_full_in_tx
from clinical_core.services.consultation import _move

JOB_ACTOR = "job:expire_unanswered"


@dataclass(frozen=True, slots=True)
class ExpiryResult:
    closed_unanswered: tuple[str, ...]
    refunds_requested: int
    cancelled_unpaid: tuple[str, ...]


def expire_unanswered(uow: UnitOfWork, now: datetime, *, batch: int = 500) -> ExpiryResult:
    """Close and refund what nobody answered in time; cancel what nobody paid in time.

    Rows are locked (SKIP LOCKED on PostgreSQL), and the status is checked again
    under the lock, so a doctor who claims at the last second either wins before
    the job (the order is no longer unanswered) or after (the claim conflicts).
    """
    closed: list[str] = []
    cancelled: list[str] = []
    refunds = 0
    with uow:
        due = uow.session.scalars(
            select(ConsultationRow).where(
                ConsultationRow.status.in_([s.value for s in UNANSWERED]),
                ConsultationRow.answer_deadline <= now,
            ).order_by(ConsultationRow.answer_deadline).limit(batch).with_for_update(skip_locked=True)
        )
        for row in due:
            _move(uow, row, Action.EXPIRE, JOB_ACTOR, deadline=row.answer_deadline.isoformat()
                  if row.answer_deadline else None)
            row.closed_at, row.close_reason = now, CloseReason.UNANSWERED.value
            if refund_full_in_tx(uow, row, "unanswered", JOB_ACTOR) is not None:
                refunds += 1
            closed.append(row.public_id)
        unpaid = uow.session.scalars(
            select(ConsultationRow).where(
                ConsultationRow.status == ConsultStatus.CREATED.value,
                ConsultationRow.created_at <= now - PAYMENT_WINDOW,
            ).order_by(ConsultationRow.id).limit(batch).with_for_update(skip_locked=True)
        )
        for row in unpaid:
            _move(uow, row, Action.CANCEL, JOB_ACTOR, reason="unpaid")
            row.closed_at = now
            cancelled.append(row.public_id)
        uow.commit()
    return ExpiryResult(tuple(closed), refunds, tuple(cancelled))
