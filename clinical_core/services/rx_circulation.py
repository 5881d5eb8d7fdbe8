"""处方流转 (RX-2, after approval only): payment, choice of dispensing store,
dispensing, shipping, delivery, and the refund before dispensing.

- 先方后药 (R20): nothing can be paid for before a pharmacist approved the
  prescription; payment goes through the payment port (prepay, verified and
  idempotent paid notification); refunds are their own records; what was paid
  and refunded is derived from those records, never kept as a balance.
- At dispensing the doctor's signature and the pharmacist's countersignature
  are verified again against the prescription as stored (R41): any change
  after signing blocks it. Dispensing marks the prescription used; a used
  prescription is never dispensed again (R54).
- Every step is a named, guarded transition of ``RX_TRANSITIONS`` with an
  audit record in the same transaction; the row is locked (FOR UPDATE).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import (
    Conflict,
    ExternalServiceError,
    Forbidden,
    InvalidInput,
    NotFound,
    RuleViolation,
)
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.prescription import (
    RxAction,
    RxStatus,
    check_store_code,
    check_tracking,
    drugs_total_fen,
    ensure_may_order_drugs,
    ensure_unused,
    rx_transition,
)
from clinical_core.domain.staff import Role
from clinical_core.domain.time import local_date
from clinical_core.persistence.models import PatientRow, StaffRow
from clinical_core.persistence.prescription import (
    DispensingStoreRow,
    PrescriptionItemRow,
    PrescriptionRow,
    RxPaymentRow,
    RxRefundRow,
)
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.ports.his import HisRxPort
from clinical_core.ports.payment import PaymentGateway
from clinical_core.ports.signer import Signer
from clinical_core.services import audit
from clinical_core.services.refunds import RefundKind, settle_pending
from clinical_core.services.signatures import countersignature_in_tx

PAYMENT_ACTOR = "payment:notification"
STORE_STAFF = frozenset({Role.PHARMACIST, Role.ADMIN})  # 药房药师 or an administrator


@dataclass(frozen=True, slots=True)
class StoreView:
    public_id: str
    code: str
    name: str
    address: str
    phone: str | None  # the store's business number, not personal data
    agreement_no: str | None
    active: bool


@dataclass(frozen=True, slots=True)
class CirculationView:
    """What the patient tracks and the store works from (no personal data)."""

    prescription_id: str
    status: str
    status_label: str
    amount_fen: int
    paid_fen: int  # derived from payment records
    refunded_fen: int  # derived from refund records
    store_code: str | None
    store_name: str | None
    paid_at: datetime | None
    dispensed_at: datetime | None
    carrier: str | None
    tracking_no: str | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    refunded_at: datetime | None


@dataclass(frozen=True, slots=True)
class DrugOrder:
    circulation: CirculationView
    out_trade_no: str
    client_params: dict[str, str]


# --- dispensing stores (admin) ---


def add_store(uow: UnitOfWork, principal: Principal, code: str, name: str, address: str, *,
              phone: str | None = None, agreement_no: str | None = None) -> StoreView:
    ensure_role(principal, {Role.ADMIN})
    code = check_store_code(code)
    name, address = name.strip(), address.strip()
    if not name or len(name) > 80:
        raise InvalidInput("药房名称须为 1–80 字", field="name")
    if not address or len(address) > 200:
        raise InvalidInput("药房地址须为 1–200 字", field="address")
    if phone is not None and (not phone.replace("-", "").isdigit() or len(phone) > 30):
        raise InvalidInput("电话号码格式不正确", field="phone")
    with uow:
        if uow.session.scalar(select(DispensingStoreRow.id).where(DispensingStoreRow.code == code)):
            raise Conflict(f"药房编码 {code} 已存在")
        row = DispensingStoreRow(public_id=new_public_id("sto"), code=code, name=name, address=address, phone=phone,
                                 agreement_no=(agreement_no or "").strip() or None, active=True,
                                 created_at=uow.clock.now())
        uow.session.add(row)
        uow.session.flush()
        audit.record(uow, principal.actor, "dispensing_store.add", "dispensing_store", row.public_id, code=code)
        view = _store_view(row)
        uow.commit()
    return view


def list_stores(uow: UnitOfWork, principal: Principal, *, include_inactive: bool = False) -> list[StoreView]:
    """Any signed-in caller (the patient chooses among them)."""
    del principal
    with uow:
        query = select(DispensingStoreRow).order_by(DispensingStoreRow.code)
        if not include_inactive:
            query = query.where(DispensingStoreRow.active.is_(True))
        return [_store_view(r) for r in uow.session.scalars(query)]


def _store_view(row: DispensingStoreRow) -> StoreView:
    return StoreView(row.public_id, row.code, row.name, row.address, row.phone,
                     row.agreement_no, row.active)


# --- helpers ---


def _load(uow: UnitOfWork, rx_id: str) -> PrescriptionRow:
    row = uow.session.scalar(select(PrescriptionRow).where(PrescriptionRow.public_id == rx_id).with_for_update())
    if row is None:
        raise NotFound(f"未找到处方 {rx_id}")
    return row


def _ensure_owner(uow: UnitOfWork, principal: Principal, row: PrescriptionRow) -> None:
    if principal.role is Role.PATIENT:
        patient = uow.session.get(PatientRow, row.patient_id)
        if patient is None or patient.public_id != principal.patient_id:
            raise Forbidden("患者只能操作本人的处方")


def _staff(uow: UnitOfWork, principal: Principal) -> StaffRow | None:
    if principal.staff_id is None:
        return None
    return uow.session.scalar(select(StaffRow).where(StaffRow.public_id == principal.staff_id))


def _move(uow: UnitOfWork, row: PrescriptionRow, action: RxAction, actor: str, **details: object) -> None:
    before = RxStatus(row.status)
    row.status = rx_transition(row.public_id, before, action).value
    audit.record(uow, actor, f"prescription.{action.value}", "prescription", row.public_id,
                 **{"from": before.value, "to": row.status, "version": row.version}, **details)


def _amount(uow: UnitOfWork, row: PrescriptionRow) -> int:
    rows = uow.session.execute(select(PrescriptionItemRow.price_fen, PrescriptionItemRow.quantity)
                               .where(PrescriptionItemRow.prescription_id == row.id))
    return drugs_total_fen([(price, qty) for price, qty in rows])


def _ensure_valid_today(row: PrescriptionRow, now: datetime) -> None:
    """R25: a prescription is valid on the day it is issued, at most ``valid_days`` days."""
    last = local_date(row.issued_at) + timedelta(days=row.valid_days - 1)
    if local_date(now) > last:
        raise RuleViolation("R25", "处方已超过有效期，不能购药")


def _view(uow: UnitOfWork, row: PrescriptionRow) -> CirculationView:
    paid = uow.session.scalar(select(func.coalesce(func.sum(RxPaymentRow.amount_fen), 0)).where(
        RxPaymentRow.prescription_id == row.id, RxPaymentRow.status == "succeeded")) or 0
    refunded = uow.session.scalar(select(func.coalesce(func.sum(RxRefundRow.amount_fen), 0)).where(
        RxRefundRow.prescription_id == row.id, RxRefundRow.status == "succeeded")) or 0
    store = uow.session.get(DispensingStoreRow, row.store_id) if row.store_id else None
    status = RxStatus(row.status)
    return CirculationView(row.public_id, status.value, status.label, _amount(uow, row), int(paid), int(refunded),
                           store.code if store else None, store.name if store else None, row.paid_at,
                           row.dispensed_at, row.carrier, row.tracking_no, row.shipped_at, row.delivered_at,
                           row.refunded_at)


# --- patient: pay, choose a store, track, confirm delivery ---


def pay_for_drugs(uow: UnitOfWork, principal: Principal, gateway: PaymentGateway, rx_id: str, *,
                  his: HisRxPort | None = None) -> DrugOrder:
    """购药下单: only an approved prescription (R20), within its validity (R25). A repeated
    request returns the same pending order (the provider's order number is idempotent).
    Integrated mode (``his``): the HIS registers and charges it; the order comes back paid."""
    ensure_role(principal, {Role.PATIENT})
    if his is not None:  # 集成模式: the HIS's billing charges it (RX-5)
        return _pay_through_his(uow, principal, his, rx_id)
    with uow:
        row = _load(uow, rx_id)
        _ensure_owner(uow, principal, row)
        ensure_may_order_drugs(row.public_id, RxStatus(row.status))
        _ensure_valid_today(row, uow.clock.now())
        amount = _amount(uow, row)
        payment = uow.session.scalar(select(RxPaymentRow).where(
            RxPaymentRow.prescription_id == row.id, RxPaymentRow.status == "pending"))
        if payment is None:
            payment = RxPaymentRow(public_id=new_public_id("rpy"), prescription_id=row.id,
                                   out_trade_no=new_public_id("pay")[4:][:32], amount_fen=amount, status="pending",
                                   created_at=uow.clock.now())
            uow.session.add(payment)
            uow.session.flush()
            audit.record(uow, principal.actor, "rx_payment.prepay", "prescription", row.public_id,
                         payment=payment.public_id, amount_fen=amount)
        patient = uow.session.get(PatientRow, row.patient_id)
        prepay = gateway.prepay(payment.out_trade_no, payment.amount_fen, "处方药品费",
                                patient.openid if patient else None)
        payment.prepay_id = prepay.prepay_id
        uow.session.flush()
        order = DrugOrder(_view(uow, row), payment.out_trade_no, prepay.client_params)
        uow.commit()
    return order


def _pay_through_his(uow: UnitOfWork, principal: Principal, his: HisRxPort, rx_id: str) -> DrugOrder:
    from clinical_core.services import rx_his

    def guard(uow: UnitOfWork, row: PrescriptionRow) -> int:
        _ensure_owner(uow, principal, row)
        ensure_may_order_drugs(row.public_id, RxStatus(row.status))  # R20, and only an approved one
        _ensure_valid_today(row, uow.clock.now())  # R25
        return _amount(uow, row)

    with uow:
        row = _load(uow, rx_id)
        guard(uow, row)  # before anything reaches the HIS
    rx_his.charge(uow, his, rx_id, principal.actor, guard)
    with uow:
        row = _load(uow, rx_id)
        payment = uow.session.scalar(select(RxPaymentRow).where(
            RxPaymentRow.prescription_id == row.id, RxPaymentRow.status == "succeeded"))
        assert payment is not None
        return DrugOrder(_view(uow, row), payment.out_trade_no, {})


def handle_paid_notification(uow: UnitOfWork, gateway: PaymentGateway, headers: dict[str, str],
                             body: bytes) -> CirculationView:
    """药费支付结果通知: verified, idempotent; paid after a void → refunded at once."""
    notice = gateway.parse_notification(headers, body)
    refund_pk = None
    with uow:
        payment = uow.session.scalar(select(RxPaymentRow).where(
            RxPaymentRow.out_trade_no == notice.out_trade_no).with_for_update())
        if payment is None:
            raise NotFound("支付通知对应的购药订单不存在")
        if notice.amount_fen != payment.amount_fen:
            raise ExternalServiceError("支付通知金额与订单不一致")
        row = _load(uow, uow.session.get(PrescriptionRow, payment.prescription_id).public_id)  # type: ignore[union-attr]
        if payment.status == "succeeded":
            if payment.transaction_id != notice.transaction_id:
                raise Conflict("同一订单收到不同的支付流水号")
            return _view(uow, row)  # a repeated notification changes nothing
        payment.status, payment.transaction_id, payment.paid_at = "succeeded", notice.transaction_id, notice.paid_at
        audit.record(uow, PAYMENT_ACTOR, "rx_payment.succeeded", "prescription", row.public_id,
                     payment=payment.public_id, amount_fen=payment.amount_fen)
        if row.status == RxStatus.APPROVED:
            _move(uow, row, RxAction.PAY, PAYMENT_ACTOR)
            row.paid_at = notice.paid_at
        else:  # voided (or already paid by another order) meanwhile: the money goes back
            refund_pk = _request_refund(uow, row, payment, "paid_after_void", PAYMENT_ACTOR).id
        uow.session.flush()
        view = _view(uow, row)
        uow.commit()
    if refund_pk is not None:
        settle_refunds(uow, gateway)
        with uow:
            view = _view(uow, _load(uow, view.prescription_id))
    return view


def choose_store(uow: UnitOfWork, principal: Principal, rx_id: str, store_code: str) -> CirculationView:
    """选择药房: after approval, before dispensing."""
    ensure_role(principal, {Role.PATIENT, Role.ADMIN})
    with uow:
        row = _load(uow, rx_id)
        _ensure_owner(uow, principal, row)
        status = RxStatus(row.status)
        if status in (RxStatus.PENDING_REVIEW, RxStatus.REJECTED):
            raise RuleViolation("R20", "处方尚未经药师审核通过，不能选择药房")
        if status not in (RxStatus.APPROVED, RxStatus.PAID):
            raise InvalidInput(f"处方当前状态为「{status.label}」，不能选择药房", field="store_code")
        store = uow.session.scalar(select(DispensingStoreRow).where(
            DispensingStoreRow.code == store_code.strip().upper(), DispensingStoreRow.active.is_(True)))
        if store is None:
            raise NotFound(f"没有在用的药房 {store_code}")
        row.store_id = store.id
        audit.record(uow, principal.actor, "prescription.choose_store", "prescription", row.public_id,
                     store=store.code)
        view = _view(uow, row)
        uow.commit()
    return view


def track(uow: UnitOfWork, principal: Principal, rx_id: str) -> CirculationView:
    """流转跟踪: the patient (own), pharmacists and administrators."""
    if principal.role is not Role.PATIENT:
        ensure_role(principal, STORE_STAFF | {Role.OPERATIONS, Role.CUSTOMER_SERVICE})
    with uow:
        row = uow.session.scalar(select(PrescriptionRow).where(PrescriptionRow.public_id == rx_id))
        if row is None:
            raise NotFound(f"未找到处方 {rx_id}")
        _ensure_owner(uow, principal, row)
        return _view(uow, row)


def confirm_delivery(uow: UnitOfWork, principal: Principal, rx_id: str) -> CirculationView:
    """签收: the patient (own) or an administrator (e.g. on the carrier's proof of delivery)."""
    ensure_role(principal, {Role.PATIENT, Role.ADMIN})
    with uow:
        row = _load(uow, rx_id)
        _ensure_owner(uow, principal, row)
        _move(uow, row, RxAction.DELIVER, principal.actor)
        row.delivered_at = uow.clock.now()
        view = _view(uow, row)
        uow.commit()
    return view


# --- store: dispense, ship ---


def dispense(uow: UnitOfWork, principal: Principal, signer: Signer, rx_id: str, *,
             his: HisRxPort | None = None) -> CirculationView:
    """调配: paid, a store chosen, never used before (R54); both signatures verified again (R41).
    Dispensing marks the prescription used. Integrated mode (``his``): the HIS dispenses it."""
    ensure_role(principal, STORE_STAFF)
    if his is not None:  # 集成模式: the hospital pharmacy dispenses through the HIS (RX-5)
        from clinical_core.services import rx_his

        def guard(uow: UnitOfWork, row: PrescriptionRow) -> tuple[str, int | None]:
            ensure_unused(row.public_id, RxStatus(row.status))  # R54
            if row.store_id is None:
                raise InvalidInput("患者尚未选择药房", field="store_code")
            countersignature_in_tx(uow, signer, row)  # R41, as in standalone mode
            store = uow.session.get(DispensingStoreRow, row.store_id)
            staff = _staff(uow, principal)
            return store.code, staff.id if staff else None  # type: ignore[union-attr]

        rx_his.dispense(uow, his, rx_id, principal.actor, guard)
        with uow:
            return _view(uow, _load(uow, rx_id))
    with uow:
        row = _load(uow, rx_id)
        ensure_unused(row.public_id, RxStatus(row.status))
        if row.store_id is None:
            raise InvalidInput("患者尚未选择药房", field="store_code")
        countersignature_in_tx(uow, signer, row)  # R41: any change after signing blocks
        _move(uow, row, RxAction.DISPENSE, principal.actor, store=uow.session.get(
            DispensingStoreRow, row.store_id).code)  # type: ignore[union-attr]
        staff = _staff(uow, principal)
        row.dispensed_at, row.dispensed_by_id = uow.clock.now(), staff.id if staff else None
        view = _view(uow, row)
        uow.commit()
    return view


def ship(uow: UnitOfWork, principal: Principal, rx_id: str, carrier: str, tracking_no: str) -> CirculationView:
    """发货 with a tracking number."""
    ensure_role(principal, STORE_STAFF)
    carrier, tracking_no = check_tracking(carrier, tracking_no)
    with uow:
        row = _load(uow, rx_id)
        _move(uow, row, RxAction.SHIP, principal.actor, carrier=carrier, tracking_no=tracking_no)
        row.carrier, row.tracking_no, row.shipped_at = carrier, tracking_no, uow.clock.now()
        view = _view(uow, row)
        uow.commit()
    return view


# --- refund (before dispensing) ---


def _request_refund(uow: UnitOfWork, row: PrescriptionRow, payment: RxPaymentRow, reason: str,
                    actor: str) -> RxRefundRow:
    refund = RxRefundRow(public_id=new_public_id("rrf"), prescription_id=row.id, payment_id=payment.id,
                         out_refund_no=new_public_id("ref")[4:][:32], amount_fen=payment.amount_fen,
                         reason=reason[:40], status="pending", attempts=0, requested_by=actor,
                         created_at=uow.clock.now())
    uow.session.add(refund)
    uow.session.flush()
    audit.record(uow, actor, "rx_refund.request", "prescription", row.public_id, refund=refund.public_id,
                 amount_fen=refund.amount_fen, reason=refund.reason)
    return refund


def refund_drugs(uow: UnitOfWork, principal: Principal, gateway: PaymentGateway, rx_id: str,
                 reason: str, *, his: HisRxPort | None = None) -> CirculationView:
    """退款: after payment, before dispensing (a dispensed prescription is used: R54)."""
    ensure_role(principal, {Role.PATIENT, Role.ADMIN})
    if not reason.strip() or len(reason) > 40:
        raise InvalidInput("退款须填写原因（最多 40 字）", field="reason")
    if his is not None:  # 集成模式: the HIS refunds its charge (RX-5)
        from clinical_core.services import rx_his

        def guard(uow: UnitOfWork, row: PrescriptionRow) -> None:
            _ensure_owner(uow, principal, row)
            if RxStatus(row.status) in (RxStatus.DISPENSED, RxStatus.SHIPPED, RxStatus.DELIVERED):
                raise RuleViolation("R54", "处方已调配使用，不能退款")
            rx_transition(row.public_id, RxStatus(row.status), RxAction.REFUND)

        rx_his.refund(uow, his, rx_id, principal.actor, reason.strip(), guard)
        with uow:
            return _view(uow, _load(uow, rx_id))
    with uow:
        row = _load(uow, rx_id)
        _ensure_owner(uow, principal, row)
        if RxStatus(row.status) in (RxStatus.DISPENSED, RxStatus.SHIPPED, RxStatus.DELIVERED):
            raise RuleViolation("R54", "处方已调配使用，不能退款")
        _move(uow, row, RxAction.REFUND, principal.actor, reason=reason.strip())
        payment = uow.session.scalar(select(RxPaymentRow).where(
            RxPaymentRow.prescription_id == row.id, RxPaymentRow.status == "succeeded"))
        assert payment is not None  # paid status is only reached by a succeeded payment
        _request_refund(uow, row, payment, reason.strip(), principal.actor)
        row.refunded_at = uow.clock.now()
        uow.commit()
    settle_refunds(uow, gateway)
    with uow:
        return _view(uow, _load(uow, rx_id))


RX_REFUNDS = RefundKind(RxRefundRow, RxPaymentRow, PrescriptionRow, "prescription_id",
                        "prescription", "rx_refund", "job:settle_rx_refunds")


def settle_refunds(uow: UnitOfWork, gateway: PaymentGateway, *, limit: int = 100) -> tuple[int, int]:
    """Send pending drug refunds to the provider, each in its own short transaction (a job too)."""
    result = settle_pending(uow, gateway, RX_REFUNDS, limit=limit)
    return result.succeeded, result.failed


def list_circulation(uow: UnitOfWork, principal: Principal, *, status: RxStatus | None = None,
                     limit: int = 100) -> list[CirculationView]:
    ensure_role(principal, STORE_STAFF | {Role.OPERATIONS})
    with uow:
        query = select(PrescriptionRow).order_by(PrescriptionRow.id.desc()).limit(limit)
        if status:
            query = query.where(PrescriptionRow.status == status.value)
        return [_view(uow, r) for r in uow.session.scalars(query)]
