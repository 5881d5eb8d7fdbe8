"""Money of video visits (挂号费): payments and refunds are their own records
(``video_payments``, ``video_refunds``); what was paid and refunded is summed
from them, never stored. Refunds are requested in the visit's transaction and
sent to the provider afterwards by the shared settlement
(``clinical_core.services.refunds``)."""

from __future__ import annotations

from sqlalchemy import func, select

from clinical_core.domain.consultation import Ledger, ensure_refundable, ledger
from clinical_core.domain.ids import new_public_id
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.persistence.video import (
    VideoPaymentRow,
    VideoRefundRow,
    VideoVisitRow,
)
from clinical_core.ports.payment import PaymentGateway
from clinical_core.services import audit
from clinical_core.services.refunds import RefundKind, SettleResult, settle_pending


def ledger_of(uow: UnitOfWork, visit_pk: int) -> Ledger:
    paid = uow.session.scalars(select(VideoPaymentRow.amount_fen).where(
        VideoPaymentRow.visit_id == visit_pk, VideoPaymentRow.status == "succeeded"))
    refunded = uow.session.scalars(select(VideoRefundRow.amount_fen).where(
        VideoRefundRow.visit_id == visit_pk, VideoRefundRow.status == "succeeded"))
    return ledger(paid, refunded)


def committed_refunds(uow: UnitOfWork, visit_pk: int) -> int:
    """Refunds promised (pending or succeeded): they count against what may still be refunded."""
    return int(uow.session.scalar(select(func.coalesce(func.sum(VideoRefundRow.amount_fen), 0)).where(
        VideoRefundRow.visit_id == visit_pk)) or 0)


def refund_in_tx(uow: UnitOfWork, visit: VideoVisitRow, amount_fen: int | None, reason: str,
                 actor: str) -> VideoRefundRow | None:
    """A pending refund (``None``: everything paid and not yet refunded), in the visit's transaction."""
    payment = uow.session.scalar(select(VideoPaymentRow).where(
        VideoPaymentRow.visit_id == visit.id, VideoPaymentRow.status == "succeeded"))
    if payment is None:
        return None
    promised = committed_refunds(uow, visit.id)
    paid = ledger_of(uow, visit.id).paid_fen
    amount = paid - promised if amount_fen is None else amount_fen
    if amount <= 0:
        return None
    ensure_refundable(visit.public_id, Ledger(paid, promised), amount)
    refund = VideoRefundRow(
        public_id=new_public_id("vrf"), visit_id=visit.id, payment_id=payment.id,
        out_refund_no=new_public_id("r")[2:][:32], amount_fen=amount, reason=reason[:40], status="pending",
        attempts=0, requested_by=actor, created_at=uow.clock.now())
    uow.session.add(refund)
    uow.session.flush()
    audit.record(uow, actor, "video_refund.request", "video_visit", visit.public_id, refund=refund.public_id,
                 amount_fen=amount, reason=reason)
    return refund


VIDEO_REFUNDS = RefundKind(VideoRefundRow, VideoPaymentRow, VideoVisitRow, "visit_id", "video_visit",
                           "video_refund", "job:settle_video_refunds")


def settle_refunds(uow: UnitOfWork, gateway: PaymentGateway, *, limit: int = 100) -> SettleResult:
    """Send pending video-visit refunds to the provider (a job; see ``services.refunds``)."""
    return settle_pending(uow, gateway, VIDEO_REFUNDS, limit=limit)
