"""Money of consultations (收支): payments and refunds are their own records;
income is payments minus refunds, computed from them, never kept as a balance.

Refunds are requested inside the order's transaction (a ``pending`` record) and
sent to the provider by ``settle_refunds`` afterwards, one row at a time, so a
provider outage never undoes the clinical change and a pending refund is
retried. The provider treats a repeated ``out_refund_no`` as the same refund.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.consultation import CloseReason, Ledger, ensure_refundable
from clinical_core.domain.errors import NotFound
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.staff import Role
from clinical_core.persistence.consultation import ConsultationRow, ConsultPaymentRow, ConsultRefundRow
from clinical_core.persistence.models import StaffRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.ports.payment import PaymentGateway
from clinical_core.services import audit
from clinical_core.services.refunds import RefundKind, SettleResult, settle_pending

FINANCE = frozenset({Role.ADMIN, Role.OPERATIONS})


@dataclass(frozen=True, slots=True)
class RefundView:
    public_id: str
    consultation_id: str
    amount_fen: int
    reason: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    settled_at: datetime | None


@dataclass(frozen=True, slots=True)
class DoctorStats:
    """医生统计与收支: per doctor (orders nobody claimed are counted under no doctor)."""

    doctor_id: str | None
    doctor_name: str | None
    orders: int
    completed: int
    unanswered: int
    reviews: int
    avg_rating: float | None
    paid_fen: int
    refunded_fen: int
    net_fen: int


def ledger_of(uow: UnitOfWork, consultation_pk: int) -> Ledger:
    """Succeeded payments and refunds of one order, in one statement (every order view reads it)."""
    paid = select(func.coalesce(func.sum(ConsultPaymentRow.amount_fen), 0)).where(
        ConsultPaymentRow.consultation_id == consultation_pk, ConsultPaymentRow.status == "succeeded")
    refunded = select(func.coalesce(func.sum(ConsultRefundRow.amount_fen), 0)).where(
        ConsultRefundRow.consultation_id == consultation_pk, ConsultRefundRow.status == "succeeded")
    paid_fen, refunded_fen = uow.session.execute(select(paid.scalar_subquery(), refunded.scalar_subquery())).one()
    return Ledger(int(paid_fen), int(refunded_fen))


def _committed_refunds(uow: UnitOfWork, consultation_pk: int) -> int:
    """Refunds already promised (pending or succeeded): they count against what may still be refunded."""
    return int(uow.session.scalar(select(func.coalesce(func.sum(ConsultRefundRow.amount_fen), 0)).where(
        ConsultRefundRow.consultation_id == consultation_pk)) or 0)


def request_refund_in_tx(
    uow: UnitOfWork, row: ConsultationRow, payment: ConsultPaymentRow, amount_fen: int, reason: str, actor: str,
) -> ConsultRefundRow:
    """A pending refund record, inside the caller's transaction (the order row is locked)."""
    money = ledger_of(uow, row.id)
    ensure_refundable(row.public_id, Ledger(money.paid_fen, _committed_refunds(uow, row.id)), amount_fen)
    refund = ConsultRefundRow(
        public_id=new_public_id("crf"), consultation_id=row.id, payment_id=payment.id,
        out_refund_no=new_public_id("r")[2:][:32], amount_fen=amount_fen, reason=reason, status="pending",
        attempts=0, requested_by=actor, created_at=uow.clock.now(),
    )
    uow.session.add(refund)
    uow.session.flush()
    audit.record(uow, actor, "consult_refund.request", "consultation", row.public_id, refund=refund.public_id,
                 amount_fen=amount_fen, reason=reason)
    return refund


def refund_full_in_tx(uow: UnitOfWork, row: ConsultationRow, reason: str, actor: str) -> ConsultRefundRow | None:
    """Refund whatever was paid and not yet refunded (nothing for a free order)."""
    payment = uow.session.scalar(select(ConsultPaymentRow).where(
        ConsultPaymentRow.consultation_id == row.id, ConsultPaymentRow.status == "succeeded"))
    if payment is None:
        return None
    remaining = ledger_of(uow, row.id).paid_fen - _committed_refunds(uow, row.id)
    return request_refund_in_tx(uow, row, payment, remaining, reason, actor) if remaining > 0 else None


def request_refund(
    uow: UnitOfWork, principal: Principal, consultation_id: str, amount_fen: int | None, reason: str,
) -> RefundView:
    """退款 by an administrator (e.g. a complaint upheld). ``None`` refunds the rest."""
    ensure_role(principal, FINANCE)
    with uow:
        row = uow.session.scalar(select(ConsultationRow).where(
            ConsultationRow.public_id == consultation_id).with_for_update())
        if row is None:
            raise NotFound(f"未找到咨询订单 {consultation_id}")
        payment = uow.session.scalar(select(ConsultPaymentRow).where(
            ConsultPaymentRow.consultation_id == row.id, ConsultPaymentRow.status == "succeeded"))
        if payment is None:
            raise NotFound(f"咨询订单 {consultation_id} 没有成功的支付记录")
        if amount_fen is None:
            amount_fen = ledger_of(uow, row.id).paid_fen - _committed_refunds(uow, row.id)
        refund = request_refund_in_tx(uow, row, payment, amount_fen, reason[:40] or "admin", principal.actor)
        view = _refund_view(refund, row.public_id)
        uow.commit()
    return view


def _refund_view(r: ConsultRefundRow, consultation_id: str) -> RefundView:
    return RefundView(r.public_id, consultation_id, r.amount_fen, r.reason, r.status, r.attempts, r.last_error,
                      r.created_at, r.settled_at)


CONSULT_REFUNDS = RefundKind(ConsultRefundRow, ConsultPaymentRow, ConsultationRow, "consultation_id",
                             "consultation", "consult_refund", "job:settle_refunds")


def settle_refunds(uow: UnitOfWork, gateway: PaymentGateway, *, limit: int = 100) -> SettleResult:
    """Send pending consultation refunds to the provider (a job; see ``services.refunds``)."""
    return settle_pending(uow, gateway, CONSULT_REFUNDS, limit=limit)


def list_refunds(uow: UnitOfWork, principal: Principal, *, status: str | None = None,
                 limit: int = 100) -> list[RefundView]:
    ensure_role(principal, FINANCE | {Role.CUSTOMER_SERVICE})
    with uow:
        query = (select(ConsultRefundRow, ConsultationRow.public_id)
                 .join(ConsultationRow, ConsultationRow.id == ConsultRefundRow.consultation_id)
                 .order_by(ConsultRefundRow.id.desc()).limit(limit))
        if status:
            query = query.where(ConsultRefundRow.status == status)
        return [_refund_view(r, cid) for r, cid in uow.session.execute(query)]


def doctor_statistics(
    uow: UnitOfWork, principal: Principal, *, since: datetime | None = None, until: datetime | None = None,
) -> list[DoctorStats]:
    """Orders, outcomes, ratings and 收支 per doctor over orders created in [since, until): succeeded payments minus succeeded refunds."""
    ensure_role(principal, FINANCE)
    with uow:
        orders = select(ConsultationRow.id, ConsultationRow.doctor_id, ConsultationRow.close_reason,
                        ConsultationRow.review_rating)
        if since:
            orders = orders.where(ConsultationRow.created_at >= since)
        if until:
            orders = orders.where(ConsultationRow.created_at < until)
        o = orders.subquery()
        paid = (select(ConsultPaymentRow.consultation_id.label("cid"),
                       func.sum(ConsultPaymentRow.amount_fen).label("fen"))
                .where(ConsultPaymentRow.status == "succeeded").group_by(ConsultPaymentRow.consultation_id).subquery())
        refunded = (select(ConsultRefundRow.consultation_id.label("cid"),
                           func.sum(ConsultRefundRow.amount_fen).label("fen"))
                    .where(ConsultRefundRow.status == "succeeded").group_by(ConsultRefundRow.consultation_id)
                    .subquery())
        query = (
            select(StaffRow.public_id, StaffRow.name, func.count(o.c.id),
                   func.count(case((o.c.close_reason == CloseReason.COMPLETED.value, 1))),
                   func.count(case((o.c.close_reason == CloseReason.UNANSWERED.value, 1))),
                   func.count(o.c.review_rating), func.avg(o.c.review_rating),
                   func.coalesce(func.sum(paid.c.fen), 0), func.coalesce(func.sum(refunded.c.fen), 0))
            .select_from(o)
            .outerjoin(StaffRow, StaffRow.id == o.c.doctor_id)
            .outerjoin(paid, paid.c.cid == o.c.id)
            .outerjoin(refunded, refunded.c.cid == o.c.id)
            .group_by(StaffRow.public_id, StaffRow.name)
            .order_by(StaffRow.public_id)
        )
        return [DoctorStats(pid, name, int(n), int(done), int(lost), int(reviews),
                            round(float(avg), 2) if avg is not None else None, int(p), int(r), int(p) - int(r))
                for pid, name, n, done, lost, reviews, avg, p, r in uow.session.execute(query)]
