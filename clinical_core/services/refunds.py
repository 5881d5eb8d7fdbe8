"""Sending pending refunds to the payment provider: one mechanism for every kind of order.

Refund records (``clinical_core.persistence.payments.RefundRecordMixin``) are
written in the order's transaction; this job sends them afterwards, each in
its own short transaction, locked with SKIP LOCKED on PostgreSQL so two
workers never send the same refund. A provider failure is recorded on the
refund (attempts, last error) and retried on the next run.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from clinical_core.domain.errors import DomainError
from clinical_core.persistence.payments import PaymentRecordMixin, RefundRecordMixin
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.ports.payment import PaymentGateway
from clinical_core.services import audit


@dataclass(frozen=True, slots=True)
class SettleResult:
    succeeded: int
    failed: int


@dataclass(frozen=True, slots=True)
class RefundKind:
    """Where one kind of order keeps its refunds, and how the audit log names them."""

    refund: type[RefundRecordMixin]
    payment: type[PaymentRecordMixin]
    order: type  # the order's ORM class (has ``public_id``)
    order_key: str  # the refund's column pointing at the order, e.g. "consultation_id"
    entity_type: str  # audit entity of the order, e.g. "consultation"
    action: str  # audit action prefix, e.g. "consult_refund"
    actor: str  # audit actor of the job


def settle_pending(uow: UnitOfWork, gateway: PaymentGateway, kind: RefundKind, *, limit: int = 100) -> SettleResult:
    refund_cls, payment_cls = kind.refund, kind.payment
    with uow:
        ids = list(uow.session.scalars(select(refund_cls.id).where(
            refund_cls.status == "pending").order_by(refund_cls.id).limit(limit)))
    succeeded = failed = 0
    for refund_pk in ids:
        with uow:
            refund = uow.session.scalar(select(refund_cls).where(
                refund_cls.id == refund_pk, refund_cls.status == "pending").with_for_update(skip_locked=True))
            if refund is None:  # settled or taken by another worker meanwhile
                continue
            payment = uow.session.get(payment_cls, refund.payment_id)  # type: ignore[attr-defined]
            order = uow.session.get(kind.order, getattr(refund, kind.order_key))
            assert payment is not None and order is not None
            refund.attempts += 1
            try:
                receipt = gateway.refund(payment.out_trade_no, refund.out_refund_no, refund.amount_fen,
                                         payment.amount_fen, refund.reason)
            except DomainError as exc:
                refund.last_error, outcome = str(exc)[:200], "failed"
                failed += 1
            else:
                refund.status, refund.refund_id, refund.settled_at = "succeeded", receipt.refund_id, uow.clock.now()
                refund.last_error, outcome = None, "succeeded"
                succeeded += 1
            audit.record(uow, kind.actor, f"{kind.action}.{outcome}", kind.entity_type, order.public_id,
                         refund=refund.public_id, attempts=refund.attempts, amount_fen=refund.amount_fen)
            uow.commit()
    return SettleResult(succeeded, failed)
