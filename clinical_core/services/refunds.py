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

from clinical_core.domain.errors import DomainError, ExternalServiceError
from clinical_core.persistence.payments import PaymentRecordMixin, RefundRecordMixin
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.ports.payment import PaymentGateway
from clinical_core.services import audit


@dataclass(frozen=True, slots=True)
class SettleResult:
    succeeded: int  # refunds the provider confirmed settled in this run
    failed: int  # requests or queries the provider refused (retried next run)


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
    """Send pending refunds, then ask the provider about those it is still processing.

    pending --(provider accepts)--> processing --(provider settled)--> succeeded;
    a provider that answers SUCCESS at once skips ``processing``. A refused or
    ABNORMAL refund keeps its status, records the error and is retried next run.
    """
    sent = _run(uow, gateway, kind, "pending", limit)
    queried = _run(uow, gateway, kind, "processing", limit)
    return SettleResult(sent.succeeded + queried.succeeded, sent.failed + queried.failed)


def _run(uow: UnitOfWork, gateway: PaymentGateway, kind: RefundKind, status: str, limit: int) -> SettleResult:
    refund_cls, payment_cls = kind.refund, kind.payment
    with uow:
        ids = list(uow.session.scalars(select(refund_cls.id).where(
            refund_cls.status == status).order_by(refund_cls.id).limit(limit)))
    succeeded = failed = 0
    for refund_pk in ids:
        with uow:
            refund = uow.session.scalar(select(refund_cls).where(
                refund_cls.id == refund_pk, refund_cls.status == status).with_for_update(skip_locked=True))
            if refund is None:  # settled or taken by another worker meanwhile
                continue
            payment = uow.session.get(payment_cls, refund.payment_id)  # type: ignore[attr-defined]
            order = uow.session.get(kind.order, getattr(refund, kind.order_key))
            assert payment is not None and order is not None
            try:
                if status == "pending":
                    refund.attempts += 1
                    receipt = gateway.refund(payment.out_trade_no, refund.out_refund_no, refund.amount_fen,
                                             payment.amount_fen, refund.reason)
                else:
                    receipt = gateway.query_refund(refund.out_refund_no)
                if receipt.status == "ABNORMAL":
                    raise ExternalServiceError("支付平台退款异常，需人工处理")
            except DomainError as exc:
                refund.last_error, outcome = str(exc)[:200], "failed"
                failed += 1
            else:
                refund.refund_id, refund.last_error = receipt.refund_id, None
                if receipt.status == "SUCCESS":
                    refund.status, refund.settled_at, outcome = "succeeded", uow.clock.now(), "succeeded"
                    succeeded += 1
                else:  # PROCESSING: the provider settles it later
                    refund.status, outcome = "processing", "processing"
            if status == "pending" or outcome != "processing":
                audit.record(uow, kind.actor, f"{kind.action}.{outcome}", kind.entity_type, order.public_id,
                             refund=refund.public_id, attempts=refund.attempts, amount_fen=refund.amount_fen)
            uow.commit()
    return SettleResult(succeeded, failed)
