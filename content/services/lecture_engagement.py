"""Patients and lectures (名医讲堂, LEC-1): comments under moderation, likes,
shares and tips (赞赏) paid through the payment port.

- Comments wait for operations' moderation; other patients see approved ones
  only; the writer sees their own pending ones. Names are masked everywhere.
- A like is one per patient and lecture (a unique key; liking twice is a no-op).
- A tip is a payment record (``PaymentRecordMixin``) settled by the provider's
  signed notification, idempotently; operations may refund it in full
  (``RefundRecordMixin``), sent by the shared refund job.
- Income is computed from the records (paid tips minus refunded ones), never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import Conflict, ExternalServiceError, NotFound
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.masking import mask_name
from clinical_core.domain.staff import Role
from clinical_core.domain.time import SHANGHAI
from clinical_core.persistence.models import PatientRow, StaffRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.ports.payment import PaymentGateway
from clinical_core.services import audit
from clinical_core.services.refunds import RefundKind, SettleResult, settle_pending
from content.domain import lectures as rules
from content.domain.lectures import CommentStatus, LectureStatus, ShareChannel
from content.persistence.models import (
    LectureCommentRow,
    LectureLikeRow,
    LectureRow,
    LectureShareRow,
    LectureTipRefundRow,
    LectureTipRow,
    LectureVersionRow,
)

MODERATORS = (Role.OPERATIONS, Role.ADMIN)
PAYMENT_ACTOR = "system:payments"
TIP_REFUNDS = RefundKind(refund=LectureTipRefundRow, payment=LectureTipRow, order=LectureTipRow, order_key="tip_id",
                         entity_type="lecture_tip", action="lecture_tip_refund", actor="system:refunds")


@dataclass(frozen=True)
class CommentView:
    public_id: str
    lecture_id: str
    author: str  # masked name
    mine: bool
    body: str
    status: str
    status_label: str
    reject_reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class Engagement:
    lecture_id: str
    likes: int
    liked_by_me: bool
    shares: int
    comments: int  # approved
    tips: int  # paid, not refunded
    tips_fen: int


@dataclass(frozen=True)
class TipOrder:
    tip_id: str
    out_trade_no: str
    amount_fen: int
    client_params: dict[str, str]


@dataclass(frozen=True)
class TipView:
    tip_id: str
    lecture_id: str
    title: str
    author: str
    amount_fen: int
    status: str  # pending | paid | refund_pending | refunded
    paid_at: datetime | None


@dataclass(frozen=True)
class TipIncome:
    author: str
    lecture_id: str
    title: str
    tips: int
    paid_fen: int
    refunded_fen: int
    net_fen: int


def _lecture(uow: UnitOfWork, public_id: str) -> LectureRow:
    row = uow.session.scalar(select(LectureRow).where(LectureRow.public_id == public_id))
    if row is None:
        raise NotFound(f"讲堂 {public_id} 不存在")
    return row


def _visible_lecture(uow: UnitOfWork, public_id: str) -> LectureRow:
    """A lecture a patient may interact with: published (a draft or disabled one does not exist for them)."""
    row = _lecture(uow, public_id)
    if row.status == LectureStatus.DRAFT.value:
        raise NotFound(f"讲堂 {public_id} 不存在")
    rules.ensure_open_for_patients(LectureStatus(row.status))
    return row


def _patient(uow: UnitOfWork, principal: Principal) -> PatientRow:
    ensure_role(principal, (Role.PATIENT,))
    row = uow.session.scalar(select(PatientRow).where(PatientRow.public_id == principal.patient_id))
    if row is None:
        raise NotFound("当前账号没有关联的患者档案")
    return row


def _comment_view(uow: UnitOfWork, row: LectureCommentRow, lecture_id: str, me: int | None) -> CommentView:
    patient = uow.session.get(PatientRow, row.patient_id)
    name = mask_name(uow.vault.decrypt(patient.name_enc)) if patient else "患者"
    status = CommentStatus(row.status)
    return CommentView(row.public_id, lecture_id, name, row.patient_id == me, row.body, status.value, status.label,
                       row.reject_reason, row.created_at)


def add_comment(uow: UnitOfWork, principal: Principal, lecture_id: str, body: str) -> CommentView:
    """评论: waits for moderation (LEC-C1)."""
    body = rules.validate_comment(body)
    with uow:
        patient = _patient(uow, principal)
        lecture = _visible_lecture(uow, lecture_id)
        row = LectureCommentRow(public_id=new_public_id("cmt"), lecture_id=lecture.id, patient_id=patient.id,
                                body=body, status=CommentStatus.PENDING.value, created_at=uow.clock.now())
        uow.session.add(row)
        uow.session.flush()
        audit.record(uow, principal.actor, "lecture_comment.add", "lecture", lecture.public_id, comment=row.public_id)
        view = _comment_view(uow, row, lecture.public_id, patient.id)
        uow.commit()
    return view


def moderate_comment(uow: UnitOfWork, principal: Principal, comment_id: str, *, approve: bool,
                     reason: str = "") -> CommentView:
    """审核评论: approve or reject with a reason; a conditional UPDATE on ``pending``."""
    ensure_role(principal, MODERATORS)
    with uow:
        row = uow.session.scalar(select(LectureCommentRow).where(LectureCommentRow.public_id == comment_id))
        if row is None:
            raise NotFound(f"评论 {comment_id} 不存在")
        new = rules.moderate(comment_id, CommentStatus(row.status), approve, reason)
        done = uow.session.execute(
            update(LectureCommentRow).where(LectureCommentRow.id == row.id,
                                            LectureCommentRow.status == CommentStatus.PENDING.value)
            .values(status=new.value, reject_reason=None if approve else reason.strip()[:100],
                    moderated_by=principal.actor, moderated_at=uow.clock.now())
            .execution_options(synchronize_session=False)).rowcount
        if done != 1:
            raise Conflict(f"评论 {comment_id} 刚被其他人审核")
        uow.session.expire(row)
        lecture = uow.session.get(LectureRow, row.lecture_id)
        assert lecture is not None
        audit.record(uow, principal.actor, f"lecture_comment.{'approve' if approve else 'reject'}", "lecture",
                     lecture.public_id, comment=comment_id)
        view = _comment_view(uow, row, lecture.public_id, None)
        uow.commit()
    return view


def list_comments(uow: UnitOfWork, principal: Principal, lecture_id: str | None = None, *,
                  status: CommentStatus | None = None, limit: int = 200) -> list[CommentView]:
    """Patients: approved comments of a lecture plus their own. Doctors: approved ones of their
    own lectures. Operations: any (the moderation queue with ``status=pending``)."""
    with uow:
        query = select(LectureCommentRow, LectureRow.public_id).join(
            LectureRow, LectureRow.id == LectureCommentRow.lecture_id).order_by(
            LectureCommentRow.created_at, LectureCommentRow.id).limit(limit)
        me = None
        if principal.role in MODERATORS:
            if status:
                query = query.where(LectureCommentRow.status == status.value)
        elif principal.role is Role.PATIENT:
            me = _patient(uow, principal).id
            query = query.where((LectureCommentRow.status == CommentStatus.APPROVED.value)
                                | (LectureCommentRow.patient_id == me))
        elif principal.role is Role.DOCTOR:
            staff = uow.session.scalar(select(StaffRow).where(StaffRow.public_id == principal.staff_id))
            query = query.where(LectureRow.author_staff_id == (staff.id if staff else -1),
                                LectureCommentRow.status == CommentStatus.APPROVED.value)
        else:
            ensure_role(principal, MODERATORS + (Role.PATIENT, Role.DOCTOR))
        if lecture_id:
            lecture = _lecture(uow, lecture_id)
            if principal.role is Role.PATIENT and lecture.status != LectureStatus.PUBLISHED.value:
                raise NotFound(f"讲堂 {lecture_id} 不存在")
            query = query.where(LectureCommentRow.lecture_id == lecture.id)
        return [_comment_view(uow, row, lid, me) for row, lid in uow.session.execute(query).all()]


def moderation_queue(uow: UnitOfWork, principal: Principal, status: CommentStatus | None = CommentStatus.PENDING,
                     limit: int = 200) -> list[CommentView]:
    """评论审核队列: operations only."""
    ensure_role(principal, MODERATORS)
    return list_comments(uow, principal, status=status, limit=limit)


def like(uow: UnitOfWork, principal: Principal, lecture_id: str, *, liked: bool = True) -> Engagement:
    """点赞 / 取消点赞: idempotent (one like per patient and lecture, a unique key)."""
    with uow:
        patient = _patient(uow, principal)
        lecture = _visible_lecture(uow, lecture_id)
        existing = uow.session.scalar(select(LectureLikeRow).where(
            LectureLikeRow.lecture_id == lecture.id, LectureLikeRow.patient_id == patient.id))
        if liked and existing is None:
            try:
                with uow.session.begin_nested():
                    uow.session.add(LectureLikeRow(lecture_id=lecture.id, patient_id=patient.id,
                                                   created_at=uow.clock.now()))
            except IntegrityError:
                pass  # a concurrent like by the same patient won: same outcome
        elif not liked and existing is not None:
            uow.session.delete(existing)
        uow.session.flush()
        view = _engagement(uow, lecture, patient.id)
        uow.commit()
    return view


def share(uow: UnitOfWork, principal: Principal, lecture_id: str, channel: ShareChannel) -> Engagement:
    """分享: counted per share (the link itself is the client's)."""
    with uow:
        patient = _patient(uow, principal)
        lecture = _visible_lecture(uow, lecture_id)
        uow.session.add(LectureShareRow(lecture_id=lecture.id, patient_id=patient.id, channel=channel.value,
                                        created_at=uow.clock.now()))
        uow.session.flush()
        view = _engagement(uow, lecture, patient.id)
        uow.commit()
    return view


def _refunded_fen(uow: UnitOfWork, tip_ids: list[int] | None = None) -> dict[int, int]:
    query = select(LectureTipRefundRow.tip_id, func.sum(LectureTipRefundRow.amount_fen)).where(
        LectureTipRefundRow.status == "succeeded").group_by(LectureTipRefundRow.tip_id)
    if tip_ids is not None:
        query = query.where(LectureTipRefundRow.tip_id.in_(tip_ids))
    return {tid: int(total) for tid, total in uow.session.execute(query).all()}


def _engagement(uow: UnitOfWork, lecture: LectureRow, me: int | None) -> Engagement:
    s = uow.session
    likes = s.scalar(select(func.count()).select_from(LectureLikeRow).where(LectureLikeRow.lecture_id == lecture.id))
    mine = me is not None and s.scalar(select(LectureLikeRow.id).where(
        LectureLikeRow.lecture_id == lecture.id, LectureLikeRow.patient_id == me)) is not None
    shares = s.scalar(select(func.count()).select_from(LectureShareRow).where(LectureShareRow.lecture_id == lecture.id))
    comments = s.scalar(select(func.count()).select_from(LectureCommentRow).where(
        LectureCommentRow.lecture_id == lecture.id, LectureCommentRow.status == CommentStatus.APPROVED.value))
    paid = s.execute(select(LectureTipRow.id, LectureTipRow.amount_fen).where(
        LectureTipRow.lecture_id == lecture.id, LectureTipRow.status == "succeeded")).all()
    refunded = _refunded_fen(uow, [tid for tid, _ in paid])
    kept = [(tid, amount) for tid, amount in paid if refunded.get(tid, 0) < amount]
    return Engagement(lecture.public_id, likes or 0, mine, shares or 0, comments or 0, len(kept),
                      sum(a for _, a in paid) - sum(refunded.values()))


def engagement(uow: UnitOfWork, principal: Principal, lecture_id: str) -> Engagement:
    with uow:
        lecture = _lecture(uow, lecture_id)
        me = None
        if principal.role is Role.PATIENT:
            me = _patient(uow, principal).id
            if lecture.status != LectureStatus.PUBLISHED.value:
                raise NotFound(f"讲堂 {lecture_id} 不存在")
        return _engagement(uow, lecture, me)


def tip(uow: UnitOfWork, principal: Principal, gateway: PaymentGateway, lecture_id: str, amount_fen: int) -> TipOrder:
    """赞赏下单 (LEC-T1): a payment record and the provider's prepay parameters."""
    rules.validate_tip(amount_fen)
    with uow:
        patient = _patient(uow, principal)
        lecture = _visible_lecture(uow, lecture_id)
        row = LectureTipRow(public_id=new_public_id("tip"), lecture_id=lecture.id, patient_id=patient.id,
                            author_staff_id=lecture.author_staff_id, out_trade_no=new_public_id("pay")[4:][:32],
                            amount_fen=amount_fen, status="pending", created_at=uow.clock.now())
        uow.session.add(row)
        uow.session.flush()
        prepay = gateway.prepay(row.out_trade_no, amount_fen, "名医讲堂赞赏", patient.openid)
        row.prepay_id = prepay.prepay_id
        audit.record(uow, principal.actor, "lecture_tip.prepay", "lecture", lecture.public_id, tip=row.public_id,
                     amount_fen=amount_fen)
        order = TipOrder(row.public_id, row.out_trade_no, amount_fen, prepay.client_params)
        uow.commit()
    return order


def handle_tip_notification(uow: UnitOfWork, gateway: PaymentGateway, headers: dict[str, str], body: bytes) -> TipView:
    """赞赏支付结果通知: verified by the port, idempotent (the provider retries)."""
    notice = gateway.parse_notification(headers, body)
    with uow:
        row = uow.session.scalar(select(LectureTipRow).where(
            LectureTipRow.out_trade_no == notice.out_trade_no).with_for_update())
        if row is None:
            raise NotFound("支付通知对应的赞赏不存在")
        if notice.amount_fen != row.amount_fen:
            raise ExternalServiceError("支付通知金额与赞赏不一致")
        if row.status == "succeeded":
            if row.transaction_id != notice.transaction_id:
                raise Conflict("同一赞赏收到不同的支付流水号")
            return _tip_view(uow, row)
        row.status, row.transaction_id, row.paid_at = "succeeded", notice.transaction_id, notice.paid_at
        lecture = uow.session.get(LectureRow, row.lecture_id)
        assert lecture is not None
        audit.record(uow, PAYMENT_ACTOR, "lecture_tip.paid", "lecture", lecture.public_id, tip=row.public_id,
                     amount_fen=row.amount_fen)
        uow.session.flush()
        view = _tip_view(uow, row)
        uow.commit()
    return view


def _tip_view(uow: UnitOfWork, row: LectureTipRow) -> TipView:
    lecture = uow.session.get(LectureRow, row.lecture_id)
    author = uow.session.get(StaffRow, row.author_staff_id)
    assert lecture is not None and author is not None
    version = uow.session.scalar(select(LectureVersionRow.title).where(
        LectureVersionRow.lecture_id == lecture.id,
        LectureVersionRow.number == (lecture.published_version or lecture.latest_version)))
    refund = uow.session.scalar(select(LectureTipRefundRow.status).where(LectureTipRefundRow.tip_id == row.id))
    status = "paid" if row.status == "succeeded" else "pending"
    if refund is not None:
        status = "refunded" if refund == "succeeded" else "refund_pending"
    return TipView(row.public_id, lecture.public_id, version or "", author.name, row.amount_fen, status, row.paid_at)


def refund_tip(uow: UnitOfWork, principal: Principal, tip_id: str, reason: str) -> TipView:
    """退还赞赏 in full (LEC-T2); the shared refund job sends it to the provider."""
    ensure_role(principal, MODERATORS)
    with uow:
        row = uow.session.scalar(select(LectureTipRow).where(LectureTipRow.public_id == tip_id).with_for_update())
        if row is None:
            raise NotFound(f"赞赏 {tip_id} 不存在")
        existing = uow.session.scalar(select(LectureTipRefundRow.id).where(LectureTipRefundRow.tip_id == row.id))
        rules.ensure_tip_refundable(row.status == "succeeded", existing is not None)
        refund = LectureTipRefundRow(public_id=new_public_id("trf"), tip_id=row.id, payment_id=row.id,
                                     out_refund_no=new_public_id("rfd")[4:][:32], amount_fen=row.amount_fen,
                                     reason=(reason.strip() or "退还赞赏")[:40], status="pending", attempts=0,
                                     requested_by=principal.actor, created_at=uow.clock.now())
        uow.session.add(refund)
        uow.session.flush()
        audit.record(uow, principal.actor, "lecture_tip.refund", "lecture_tip", row.public_id,
                     refund=refund.public_id, amount_fen=refund.amount_fen)
        view = _tip_view(uow, row)
        uow.commit()
    return view


def settle_tip_refunds(uow: UnitOfWork, gateway: PaymentGateway, *, limit: int = 100) -> SettleResult:
    """The scheduled job's work for tips: send pending tip refunds (SKIP LOCKED, retried on failure)."""
    return settle_pending(uow, gateway, TIP_REFUNDS, limit=limit)


def list_tips(uow: UnitOfWork, principal: Principal, *, lecture_id: str | None = None, limit: int = 200) -> list[TipView]:
    """Operations: every tip; a doctor: tips of their lectures; a patient: their own."""
    with uow:
        query = select(LectureTipRow).order_by(LectureTipRow.created_at.desc(), LectureTipRow.id.desc()).limit(limit)
        if principal.role is Role.PATIENT:
            query = query.where(LectureTipRow.patient_id == _patient(uow, principal).id)
        elif principal.role is Role.DOCTOR:
            staff = uow.session.scalar(select(StaffRow).where(StaffRow.public_id == principal.staff_id))
            query = query.where(LectureTipRow.author_staff_id == (staff.id if staff else -1),
                                LectureTipRow.status == "succeeded")
        else:
            ensure_role(principal, MODERATORS)
        if lecture_id:
            query = query.where(LectureTipRow.lecture_id == _lecture(uow, lecture_id).id)
        return [_tip_view(uow, r) for r in uow.session.scalars(query)]


def tips_income(uow: UnitOfWork, principal: Principal, since: date, until: date) -> list[TipIncome]:
    """赞赏收入 per lecture of tips paid in [since, until) (Shanghai days): paid minus refunded (for reports)."""
    ensure_role(principal, MODERATORS)
    start = datetime.combine(since, time(0), tzinfo=SHANGHAI)
    end = datetime.combine(until, time(0), tzinfo=SHANGHAI)
    with uow:
        tips = uow.session.scalars(select(LectureTipRow).where(
            LectureTipRow.status == "succeeded", LectureTipRow.paid_at >= start, LectureTipRow.paid_at < end)).all()
        refunded = _refunded_fen(uow, [t.id for t in tips])
        by_lecture: dict[int, list[LectureTipRow]] = {}
        for t in tips:
            by_lecture.setdefault(t.lecture_id, []).append(t)
        out = []
        for rows in by_lecture.values():
            view = _tip_view(uow, rows[0])
            paid = sum(r.amount_fen for r in rows)
            back = sum(refunded.get(r.id, 0) for r in rows)
            out.append(TipIncome(view.author, view.lecture_id, view.title, len(rows), paid, back, paid - back))
    return sorted(out, key=lambda t: (-t.net_fen, t.lecture_id))
