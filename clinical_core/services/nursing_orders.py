"""护理订单: booking and payment, admin review (approve, reject, reassign), the
first-visit assessment (R46), cancellation with refunds, patient reviews.

Each state change goes through ``clinical_core.domain.nursing.transition`` in
``_move`` and is audited with its actor in the same transaction. Money follows
clinical core I: payment and refund records (``nursing_payments``,
``nursing_refunds``), refunds sent by the shared settlement job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.consultation import (
    Ledger,
    ensure_refundable,
    ledger,
    payment_state,
)
from clinical_core.domain.errors import (
    Conflict,
    ExternalServiceError,
    Forbidden,
    InvalidInput,
    NotFound,
)
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.masking import mask_address, mask_name
from clinical_core.domain.nursing import (
    NursingAction,
    NursingStatus,
    cancellation_refund_fen,
    check_condition,
    check_rating,
    check_time_window,
    ensure_not_blacklisted,
    ensure_nurse_fits_item,
    transition,
)
from clinical_core.domain.staff import Role, ensure_may_nurse_at_home
from clinical_core.domain.time import local_date
from clinical_core.persistence.models import PatientRow, StaffRow
from clinical_core.persistence.nursing import (
    HomeNurseRow,
    NursingAssessmentRow,
    NursingItemRow,
    NursingOrderRow,
    NursingPaymentRow,
    NursingRefundRow,
)
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.ports.geocoder import Geocoder
from clinical_core.ports.payment import PaymentGateway
from clinical_core.services import audit
from clinical_core.services.nursing_catalogue import MANAGERS, is_blacklisted, items_at
from clinical_core.services.organisation import qualification_of
from clinical_core.services.refunds import RefundKind, SettleResult, settle_pending

READERS = MANAGERS | {Role.CUSTOMER_SERVICE}
PAYMENT_ACTOR = "payment:notification"


@dataclass(frozen=True, slots=True)
class NursingOrderView:
    public_id: str
    item_code: str
    item_name: str
    status: str
    status_label: str
    payment_state: str
    price_fen: int
    paid_fen: int
    refunded_fen: int
    patient_id: str
    patient_name: str  # masked
    address: str  # masked, except for the patient and the assigned nurse
    district_code: str
    street: str | None
    window_start: datetime
    window_end: datetime
    nurse_id: str | None
    nurse_name: str | None
    created_at: datetime
    assigned_at: datetime | None
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    close_reason: str | None
    review_rating: int | None


@dataclass(frozen=True, slots=True)
class NursingOrderDetail:
    order: NursingOrderView
    condition: str
    assessed: bool
    assessment_suitable: bool | None


@dataclass(frozen=True, slots=True)
class CreatedNursingOrder:
    order: NursingOrderView
    out_trade_no: str
    pay_params: dict[str, str]


@dataclass(frozen=True, slots=True)
class AssessmentView:
    public_id: str
    patient_id: str
    order_id: str | None
    assessor_id: str
    suitable: bool
    assessed_at: datetime


# --- loading, access, the one assignment of status ---


def load(uow: UnitOfWork, order_id: str, *, lock: bool = False) -> NursingOrderRow:
    query = select(NursingOrderRow).where(NursingOrderRow.public_id == order_id)
    if lock:
        query = query.with_for_update()
    row = uow.session.scalar(query)
    if row is None:
        raise NotFound(f"未找到护理订单 {order_id}")
    return row


def me_nurse(uow: UnitOfWork, principal: Principal) -> tuple[StaffRow, HomeNurseRow]:
    """The calling nurse, registered for home visits and still meeting R44 today."""
    ensure_role(principal, {Role.NURSE})
    staff = uow.session.scalar(select(StaffRow).where(StaffRow.public_id == principal.staff_id))
    if staff is None or not staff.active:
        raise Forbidden("当前账号未关联在职护士")
    nurse = uow.session.scalar(select(HomeNurseRow).where(HomeNurseRow.staff_id == staff.id))
    if nurse is None or not nurse.active:
        raise Forbidden("当前护士未获上门护理准入")
    ensure_may_nurse_at_home(qualification_of(staff), local_date(uow.clock.now()))
    return staff, nurse


def _patient_pk(uow: UnitOfWork, principal: Principal) -> int:
    pk = uow.session.scalar(select(PatientRow.id).where(PatientRow.public_id == principal.patient_id))
    if pk is None:
        raise Forbidden("当前账号未关联患者")
    return pk


def ensure_access(uow: UnitOfWork, principal: Principal, row: NursingOrderRow) -> None:
    """Patients their own orders; nurses the ones assigned to them or open in the hall; staff readers all."""
    if principal.role is Role.PATIENT:
        if _patient_pk(uow, principal) != row.patient_id:
            raise Forbidden("患者只能查看本人的护理订单")
        return
    if principal.role is Role.NURSE:
        staff, _ = me_nurse(uow, principal)
        if row.nurse_id == staff.id or (row.status == NursingStatus.OPEN and row.nurse_id is None):
            return
        raise Forbidden("护士只能查看本人承接或大厅中待抢的订单")
    ensure_role(principal, READERS)


def move(uow: UnitOfWork, row: NursingOrderRow, action: NursingAction, actor: str, **details: Any) -> None:
    """Apply one named transition (the only assignment of ``status``) and audit it."""
    before = NursingStatus(row.status)
    row.status = transition(row.public_id, before, action).value
    audit.record(uow, actor, f"nursing_order.{action.value}", "nursing_order", row.public_id,
                 **{"from": before.value, "to": row.status}, **details)


def _sees_address(uow: UnitOfWork, principal: Principal | None, row: NursingOrderRow) -> bool:
    if principal is None:
        return False
    if principal.role is Role.PATIENT:
        return True  # access was checked: their own order
    if principal.role is Role.NURSE and row.nurse_id is not None:
        return uow.session.scalar(select(StaffRow.public_id).where(StaffRow.id == row.nurse_id)) == principal.staff_id
    return False


def ledger_of(uow: UnitOfWork, order_pk: int) -> Ledger:
    paid = uow.session.scalars(select(NursingPaymentRow.amount_fen).where(
        NursingPaymentRow.order_id == order_pk, NursingPaymentRow.status == "succeeded"))
    refunded = uow.session.scalars(select(NursingRefundRow.amount_fen).where(
        NursingRefundRow.order_id == order_pk, NursingRefundRow.status == "succeeded"))
    return ledger(paid, refunded)


def view(uow: UnitOfWork, row: NursingOrderRow, principal: Principal | None = None) -> NursingOrderView:
    money = ledger_of(uow, row.id)
    item = uow.session.get(NursingItemRow, row.item_id)
    patient = uow.session.get(PatientRow, row.patient_id)
    nurse = uow.session.get(StaffRow, row.nurse_id) if row.nurse_id else None
    assert item is not None and patient is not None
    address = uow.vault.decrypt(row.address_enc)
    status = NursingStatus(row.status)
    return NursingOrderView(
        row.public_id, item.code, item.name, status.value, status.label, payment_state(row.price_fen, money).value,
        row.price_fen, money.paid_fen, money.refunded_fen, patient.public_id,
        mask_name(uow.vault.decrypt(patient.name_enc)),
        address if _sees_address(uow, principal, row) else mask_address(address), row.district_code, row.street,
        row.window_start, row.window_end, nurse.public_id if nurse else None, nurse.name if nurse else None,
        row.created_at, row.assigned_at, row.checked_in_at, row.checked_out_at, row.close_reason, row.review_rating,
    )


# --- money ---


def _committed_refunds(uow: UnitOfWork, order_pk: int) -> int:
    return int(uow.session.scalar(select(func.coalesce(func.sum(NursingRefundRow.amount_fen), 0)).where(
        NursingRefundRow.order_id == order_pk)) or 0)


def refund_in_tx(uow: UnitOfWork, row: NursingOrderRow, amount_fen: int | None, reason: str,
                 actor: str) -> NursingRefundRow | None:
    """A pending refund (``None``: whatever is left), inside the caller's transaction."""
    payment = uow.session.scalar(select(NursingPaymentRow).where(
        NursingPaymentRow.order_id == row.id, NursingPaymentRow.status == "succeeded"))
    if payment is None:
        return None
    money = ledger_of(uow, row.id)
    committed = _committed_refunds(uow, row.id)
    if amount_fen is None:
        amount_fen = money.paid_fen - committed
    if amount_fen <= 0:
        return None
    ensure_refundable(row.public_id, Ledger(money.paid_fen, committed), amount_fen)
    refund = NursingRefundRow(
        public_id=new_public_id("nrf"), order_id=row.id, payment_id=payment.id,
        out_refund_no=new_public_id("r")[2:][:32], amount_fen=amount_fen, reason=reason[:40], status="pending",
        attempts=0, requested_by=actor, created_at=uow.clock.now())
    uow.session.add(refund)
    uow.session.flush()
    audit.record(uow, actor, "nursing_refund.request", "nursing_order", row.public_id, refund=refund.public_id,
                 amount_fen=amount_fen, reason=reason[:40])
    return refund


NURSING_REFUNDS = RefundKind(NursingRefundRow, NursingPaymentRow, NursingOrderRow, "order_id", "nursing_order",
                             "nursing_refund", "job:settle_refunds")


def settle_refunds(uow: UnitOfWork, gateway: PaymentGateway, *, limit: int = 100) -> SettleResult:
    """Send pending nursing refunds to the provider (a job; see ``services.refunds``)."""
    return settle_pending(uow, gateway, NURSING_REFUNDS, limit=limit)


# --- patient: book, pay, cancel, review ---


def book_order(
    uow: UnitOfWork, principal: Principal, gateway: PaymentGateway, geocoder: Geocoder, item_id: str, address: str,
    window_start: datetime, window_end: datetime, condition: str,
) -> CreatedNursingOrder:
    """预约上门护理 (NUR-1): the item must be offered at the address; R49 refuses blacklisted recipients."""
    ensure_role(principal, {Role.PATIENT})
    text = check_condition(condition)
    if len(address.strip()) > 200:
        raise InvalidInput("地址最多 200 字", field="address")
    located = geocoder.geocode(address)
    now = uow.clock.now()
    with uow:
        patient_pk = _patient_pk(uow, principal)
        ensure_not_blacklisted(is_blacklisted(uow, patient_pk))
        item = uow.session.scalar(select(NursingItemRow).where(NursingItemRow.public_id == item_id))
        if item is None or not item.enabled:
            raise NotFound(f"护理项目 {item_id} 不存在或已停用")
        if not items_at([item], located.point, located.district_code):
            raise InvalidInput(f"护理项目「{item.name}」在该地址所在区域暂未开通", field="address")
        check_time_window(window_start, window_end, now, timedelta(minutes=item.duration_minutes))
        patient = uow.session.get(PatientRow, patient_pk)
        assert patient is not None
        row = NursingOrderRow(
            public_id=new_public_id("nor"), item_id=item.id, patient_id=patient_pk, status=NursingStatus.CREATED.value,
            price_fen=item.price_fen, address_enc=uow.vault.encrypt(address.strip()),
            district_code=located.district_code, street=located.street, lat=located.point.lat,
            lon=located.point.lon, window_start=window_start, window_end=window_end,
            condition_enc=uow.vault.encrypt(text), created_at=now)
        uow.session.add(row)
        uow.session.flush()
        audit.record(uow, principal.actor, "nursing_order.create", "nursing_order", row.public_id,
                     item=item.code, price_fen=item.price_fen, district=located.district_code)
        out_trade_no = new_public_id("pay")[4:][:32]
        payment = NursingPaymentRow(public_id=new_public_id("npy"), order_id=row.id, out_trade_no=out_trade_no,
                                    amount_fen=item.price_fen, status="pending", created_at=now)
        uow.session.add(payment)
        prepay = gateway.prepay(out_trade_no, item.price_fen, f"上门护理-{item.name}", patient.openid)
        payment.prepay_id = prepay.prepay_id
        uow.session.flush()
        created = CreatedNursingOrder(view(uow, row, principal), out_trade_no, prepay.client_params)
        uow.commit()
    return created


def handle_paid_notification(uow: UnitOfWork, gateway: PaymentGateway, headers: dict[str, str],
                             body: bytes) -> NursingOrderView:
    """支付结果通知: verified, idempotent, locks the payment row; paid after cancellation → refunded."""
    notice = gateway.parse_notification(headers, body)
    with uow:
        payment = uow.session.scalar(select(NursingPaymentRow).where(
            NursingPaymentRow.out_trade_no == notice.out_trade_no).with_for_update())
        if payment is None:
            raise NotFound("支付通知对应的护理订单不存在")
        if notice.amount_fen != payment.amount_fen:
            raise ExternalServiceError("支付通知金额与订单不一致")
        row = uow.session.get(NursingOrderRow, payment.order_id, with_for_update=True)
        assert row is not None
        if payment.status == "succeeded":
            if payment.transaction_id != notice.transaction_id:
                raise Conflict("同一订单收到不同的支付流水号")
            return view(uow, row)
        payment.status, payment.transaction_id, payment.paid_at = "succeeded", notice.transaction_id, notice.paid_at
        audit.record(uow, PAYMENT_ACTOR, "nursing_payment.succeeded", "nursing_order", row.public_id,
                     payment=payment.public_id, amount_fen=payment.amount_fen)
        uow.session.flush()
        if row.status == NursingStatus.CREATED:
            move(uow, row, NursingAction.PAY, PAYMENT_ACTOR)
            row.paid_at = uow.clock.now()
        else:
            refund_in_tx(uow, row, payment.amount_fen, "paid_after_cancel", PAYMENT_ACTOR)
        result = view(uow, row)
        uow.commit()
    return result


def cancel_order(uow: UnitOfWork, principal: Principal, order_id: str, reason: str = "") -> NursingOrderView:
    """取消: full refund before a nurse takes the order or ≥2 h ahead; half when late."""
    ensure_role(principal, {Role.PATIENT} | MANAGERS | {Role.CUSTOMER_SERVICE})
    now = uow.clock.now()
    with uow:
        row = load(uow, order_id, lock=True)
        ensure_access(uow, principal, row)
        status = NursingStatus(row.status)
        move(uow, row, NursingAction.CANCEL, principal.actor, reason=reason[:100])
        if principal.role is Role.PATIENT:
            amount = cancellation_refund_fen(status, ledger_of(uow, row.id).paid_fen, now, row.window_start)
        else:  # the hospital cancels: everything goes back
            amount = ledger_of(uow, row.id).paid_fen
        if amount:
            refund_in_tx(uow, row, amount, "patient_cancel" if principal.role is Role.PATIENT else "hospital_cancel",
                         principal.actor)
        row.closed_at, row.close_reason = now, (reason.strip() or "cancelled")[:200]
        result = view(uow, row, principal)
        uow.commit()
    return result


def review_order(uow: UnitOfWork, principal: Principal, order_id: str, rating: int,
                 comment: str | None = None) -> NursingOrderView:
    """服务评价: the patient, once, after the service was completed."""
    ensure_role(principal, {Role.PATIENT})
    check_rating(rating)
    if comment is not None and len(comment) > 500:
        raise InvalidInput("评价最多 500 字", field="comment")
    with uow:
        row = load(uow, order_id, lock=True)
        ensure_access(uow, principal, row)
        move(uow, row, NursingAction.REVIEW, principal.actor, rating=rating)
        row.review_rating, row.reviewed_at = rating, uow.clock.now()
        row.review_comment_enc = uow.vault.encrypt(comment.strip()) if comment and comment.strip() else None
        result = view(uow, row, principal)
        uow.commit()
    return result


# --- admin: review, reassign ---


def approve_order(uow: UnitOfWork, principal: Principal, order_id: str) -> NursingOrderView:
    """审核通过: the order goes to the service hall."""
    ensure_role(principal, MANAGERS)
    with uow:
        row = load(uow, order_id, lock=True)
        move(uow, row, NursingAction.APPROVE, principal.actor)
        row.approved_at, row.reviewed_by = uow.clock.now(), principal.actor
        result = view(uow, row)
        uow.commit()
    return result


def reject_order(uow: UnitOfWork, principal: Principal, order_id: str, reason: str) -> NursingOrderView:
    """审核驳回: refunded in full."""
    ensure_role(principal, MANAGERS)
    if len(reason.strip()) < 2:
        raise InvalidInput("请填写驳回原因", field="reason")
    with uow:
        row = load(uow, order_id, lock=True)
        move(uow, row, NursingAction.REJECT, principal.actor, reason=reason[:100])
        row.reviewed_by, row.closed_at, row.close_reason = principal.actor, uow.clock.now(), reason.strip()[:200]
        refund_in_tx(uow, row, None, "rejected", principal.actor)
        result = view(uow, row)
        uow.commit()
    return result


def ensure_nurse_may_take(uow: UnitOfWork, row: NursingOrderRow, staff: StaffRow, nurse: HomeNurseRow) -> None:
    """R44 and the item's own requirements."""
    if not nurse.active:
        raise Forbidden("该护士已退出上门护理")
    ensure_may_nurse_at_home(qualification_of(staff), local_date(uow.clock.now()))
    item = uow.session.get(NursingItemRow, row.item_id)
    assert item is not None
    ensure_nurse_fits_item(row.public_id, staff.title, nurse.skills or [], item.min_title, item.required_skills or [])


def assign_order(uow: UnitOfWork, principal: Principal, order_id: str, staff_id: str,
                 reason: str = "") -> NursingOrderView:
    """派单/改派 by an administrator: to a qualified home nurse."""
    ensure_role(principal, MANAGERS)
    with uow:
        row = load(uow, order_id, lock=True)
        staff = uow.session.scalar(select(StaffRow).where(StaffRow.public_id == staff_id))
        nurse = uow.session.scalar(select(HomeNurseRow).where(HomeNurseRow.staff_id == staff.id)) if staff else None
        if staff is None or nurse is None:
            raise NotFound(f"{staff_id} 不是上门护士")
        if row.nurse_id == staff.id:
            raise Conflict(f"护理订单 {order_id} 已由该护士承接")
        ensure_nurse_may_take(uow, row, staff, nurse)
        previous = uow.session.get(StaffRow, row.nurse_id) if row.nurse_id else None
        move(uow, row, NursingAction.ASSIGN, principal.actor, nurse=staff.public_id,
             previous=previous.public_id if previous else None, reason=reason[:100])
        row.nurse_id, row.assigned_at, row.assigned_by = staff.id, uow.clock.now(), principal.actor
        result = view(uow, row)
        uow.commit()
    return result


# --- first-visit assessment (R46) ---


def record_assessment(uow: UnitOfWork, principal: Principal, order_id: str, suitable: bool,
                      findings: str) -> AssessmentView:
    """首诊评估 by the assigned nurse or a doctor. Unsuitable: the order ends and is refunded in full."""
    ensure_role(principal, {Role.NURSE, Role.DOCTOR})
    text = (findings or "").strip()
    if len(text) < 5:
        raise InvalidInput("请填写评估所见（至少 5 个字）", field="findings")
    with uow:
        row = load(uow, order_id, lock=True)
        if principal.role is Role.NURSE:
            staff, _ = me_nurse(uow, principal)
            if row.nurse_id != staff.id:
                raise Forbidden("只有承接该订单的护士可以评估")
        else:
            staff = uow.session.scalar(select(StaffRow).where(StaffRow.public_id == principal.staff_id))
            if staff is None or not staff.active:
                raise Forbidden("当前账号未关联在职医生")
        status = NursingStatus(row.status)
        if status not in (NursingStatus.PAID, NursingStatus.OPEN, NursingStatus.ASSIGNED):
            raise Conflict(f"护理订单 {order_id} 当前状态为「{status.label}」，不能评估")
        assessment = NursingAssessmentRow(
            public_id=new_public_id("nas"), patient_id=row.patient_id, order_id=row.id, assessor_id=staff.id,
            suitable=suitable, findings_enc=uow.vault.encrypt(text), assessed_at=uow.clock.now())
        uow.session.add(assessment)
        uow.session.flush()
        audit.record(uow, principal.actor, "nursing_order.assess", "nursing_order", row.public_id,
                     assessment=assessment.public_id, suitable=suitable)
        if not suitable:
            action = NursingAction.REJECT if status is not NursingStatus.ASSIGNED else NursingAction.CANCEL
            move(uow, row, action, principal.actor, reason="assessment_unsuitable")
            row.closed_at, row.close_reason = uow.clock.now(), "首诊评估不适合上门护理"
            refund_in_tx(uow, row, None, "assessment_unsuitable", principal.actor)
        patient = uow.session.get(PatientRow, row.patient_id)
        assert patient is not None
        result = AssessmentView(assessment.public_id, patient.public_id, row.public_id, staff.public_id, suitable,
                                assessment.assessed_at)
        uow.commit()
    return result


def latest_assessment(uow: UnitOfWork, patient_pk: int) -> NursingAssessmentRow | None:
    return uow.session.scalar(select(NursingAssessmentRow).where(NursingAssessmentRow.patient_id == patient_pk)
                              .order_by(NursingAssessmentRow.assessed_at.desc(), NursingAssessmentRow.id.desc())
                              .limit(1))


# --- reading ---


def get_order(uow: UnitOfWork, principal: Principal, order_id: str) -> NursingOrderDetail:
    """订单详情 with the condition; the address in full only to the patient and the assigned nurse. Audited."""
    with uow:
        row = load(uow, order_id)
        ensure_access(uow, principal, row)
        assessment = latest_assessment(uow, row.patient_id)
        condition = uow.vault.decrypt(row.condition_enc)
        if not _sees_address(uow, principal, row) and principal.role is Role.NURSE:
            condition = condition[:20] + ("…" if len(condition) > 20 else "")  # the hall shows a summary only
        detail = NursingOrderDetail(view(uow, row, principal), condition, assessment is not None,
                                    assessment.suitable if assessment else None)
        audit.record(uow, principal.actor, "nursing_order.read", "nursing_order", row.public_id)
        uow.commit()
    return detail


def list_orders(uow: UnitOfWork, principal: Principal, *, status: NursingStatus | None = None,
                limit: int = 100, offset: int = 0) -> list[NursingOrderView]:
    """Patients their own, nurses the ones assigned to them, admins and customer service all (NUR-3)."""
    with uow:
        query = select(NursingOrderRow).order_by(NursingOrderRow.id.desc())
        if principal.role is Role.PATIENT:
            query = query.where(NursingOrderRow.patient_id == _patient_pk(uow, principal))
        elif principal.role is Role.NURSE:
            staff, _ = me_nurse(uow, principal)
            query = query.where(NursingOrderRow.nurse_id == staff.id)
        else:
            ensure_role(principal, READERS)
        if status:
            query = query.where(NursingOrderRow.status == status.value)
        return [view(uow, r, principal) for r in uow.session.scalars(query.limit(limit).offset(offset))]


def count_by_status(uow: UnitOfWork, principal: Principal) -> dict[str, int]:
    ensure_role(principal, READERS)
    with uow:
        return {s: int(n) for s, n in uow.session.execute(
            select(NursingOrderRow.status, func.count()).group_by(NursingOrderRow.status))}
