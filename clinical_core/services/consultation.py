"""在线咨询订单: create and pay, claim, transfer, converse, reply, close, review.

Each state change goes through ``clinical_core.domain.consultation.transition``
and writes an audit entry with its actor in the same transaction. Claiming is
settled by the database: a conditional UPDATE that only one doctor's
transaction can win. Payment is settled by the provider's signed, idempotent
notification; refunds are their own records (see ``consult_payments``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, bindparam, case, func, select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.consultation import (
    CONVERSATION,
    OPEN,
    PERSONAL_KINDS,
    Action,
    CloseReason,
    ConsultStatus,
    Ledger,
    MessageKind,
    PaymentState,
    ServiceKind,
    answer_deadline,
    check_message,
    check_question,
    ensure_may_review,
    payment_state,
    transition,
)
from clinical_core.domain.errors import Conflict, ExternalServiceError, Forbidden, InvalidInput, NotFound
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.masking import mask_name
from clinical_core.domain.staff import Role, ensure_may_consult_online
from clinical_core.domain.time import local_date
from clinical_core.persistence.consultation import (
    ConsultationRow,
    ConsultMessageRow,
    ConsultPaymentRow,
    ConsultRefundRow,
    ConsultServiceRow,
    ConsultTeamMemberRow,
)
from clinical_core.persistence.models import DepartmentRow, PatientRow, StaffRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.ports.attachments import AttachmentStore
from clinical_core.ports.payment import PaymentGateway
from clinical_core.services import audit
from clinical_core.services.consult_ledger import ledger_of, request_refund_in_tx
from clinical_core.services.organisation import qualification_of

READERS = frozenset({Role.ADMIN, Role.OPERATIONS, Role.CUSTOMER_SERVICE})
PAYMENT_ACTOR = "payment:notification"


@dataclass(frozen=True, slots=True)
class ConsultationView:
    public_id: str
    kind: str
    status: str
    status_label: str
    payment_state: str
    price_fen: int
    paid_fen: int
    refunded_fen: int
    patient_id: str
    patient_name: str  # masked
    department: str | None
    doctor_id: str | None
    doctor_name: str | None
    created_at: datetime
    paid_at: datetime | None
    answer_deadline: datetime | None
    closed_at: datetime | None
    close_reason: str | None
    transfer_count: int
    review_rating: int | None


@dataclass(frozen=True, slots=True)
class CreatedConsultation:
    consultation: ConsultationView
    out_trade_no: str | None  # None for a free service
    pay_params: dict[str, str]


@dataclass(frozen=True, slots=True)
class MessageView:
    public_id: str
    sender: str
    kind: str
    text: str | None
    attachment_sha256: str | None
    attachment_mime: str | None
    attachment_size: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ConsultationDetail:
    consultation: ConsultationView
    question: str
    messages: tuple[MessageView, ...]


# --- the hot path's statements (SQLAlchemy Core, built once per process) ---
#
# Creating, claiming and messaging are what every consultation does, on every request: they read
# only the columns they need and write with Core INSERT/UPDATE on the transaction's connection (no
# ORM objects, identity map or flush), with the audit entries of one request in one executemany.
# The statements are built here once, so each execution only looks up its compiled form.

_C = ConsultationRow.__table__
_S = ConsultServiceRow.__table__
_P = PatientRow.__table__
_D = DepartmentRow.__table__
_ST = StaffRow.__table__
_M = ConsultMessageRow.__table__
_T = ConsultTeamMemberRow.__table__
_PAY = ConsultPaymentRow.__table__
_REF = ConsultRefundRow.__table__
_SERVICE_DOCTOR = StaffRow.__table__.alias("service_doctor")
_ORDER_DOCTOR = StaffRow.__table__.alias("order_doctor")

# The ordering service with what the order needs: its pool (the addressed doctor's department for a
# personal service), that department's and doctor's names, and the ordering patient (outer-joined on
# the patient's public id, so a missing patient is told apart from a missing service).
_POOL = case((_S.c.doctor_id.is_not(None), _SERVICE_DOCTOR.c.department_id), else_=_S.c.department_id)
_SERVICE_AND_PATIENT = (
    select(_S.c.id, _S.c.public_id, _S.c.kind, _S.c.enabled, _S.c.price_fen, _S.c.time_limit_minutes,
           _S.c.doctor_id, _POOL.label("department_id"), _SERVICE_DOCTOR.c.public_id.label("doctor_public_id"),
           _SERVICE_DOCTOR.c.name.label("doctor_name"), _D.c.name.label("department_name"),
           _P.c.id.label("patient_pk"), _P.c.public_id.label("patient_public_id"), _P.c.name_enc, _P.c.openid)
    .select_from(_S.outerjoin(_SERVICE_DOCTOR, _SERVICE_DOCTOR.c.id == _S.c.doctor_id)
                 .outerjoin(_D, _D.c.id == _POOL)
                 .outerjoin(_P, _P.c.public_id == bindparam("patient_id")))
    .where(_S.c.public_id == bindparam("service_id"))
)
_INSERT_ORDER = _C.insert()
_INSERT_PAYMENT = _PAY.insert()
_INSERT_MESSAGE = _M.insert()

# A staff member, with the columns of the online-consultation qualification check (R07, R14).
_STAFF = select(_ST.c.id, _ST.c.public_id, _ST.c.name, _ST.c.active, _ST.c.department_id, _ST.c.role, _ST.c.title,
                _ST.c.licence_no, _ST.c.practising_since, _ST.c.filing_status, _ST.c.may_prescribe,
                _ST.c.phone_enc).where(_ST.c.public_id == bindparam("staff_id"))
_PATIENT_PK = select(_P.c.id).where(_P.c.public_id == bindparam("patient_id"))
_TEAM_MEMBER = select(_T.c.id).where(_T.c.service_id == bindparam("service_id"), _T.c.staff_id == bindparam("staff_id"))

# One order with everything its view shows, the ledger included (succeeded payments and refunds).
_PAID = select(func.coalesce(func.sum(_PAY.c.amount_fen), 0)).where(
    _PAY.c.consultation_id == _C.c.id, _PAY.c.status == "succeeded").scalar_subquery()
_REFUNDED = select(func.coalesce(func.sum(_REF.c.amount_fen), 0)).where(
    _REF.c.consultation_id == _C.c.id, _REF.c.status == "succeeded").scalar_subquery()
_ORDER_VIEW = (
    select(_C.c.id, _C.c.public_id, _C.c.service_id, _C.c.kind, _C.c.status, _C.c.patient_id, _C.c.department_id,
           _C.c.doctor_id, _C.c.price_fen, _C.c.created_at, _C.c.paid_at, _C.c.answer_deadline, _C.c.closed_at,
           _C.c.close_reason, _C.c.transfer_count, _C.c.review_rating,
           _P.c.public_id.label("patient_public_id"), _P.c.name_enc, _D.c.name.label("department_name"),
           _ORDER_DOCTOR.c.public_id.label("doctor_public_id"), _ORDER_DOCTOR.c.name.label("doctor_name"),
           _PAID.label("paid_fen"), _REFUNDED.label("refunded_fen"))
    .select_from(_C.join(_P, _P.c.id == _C.c.patient_id).outerjoin(_D, _D.c.id == _C.c.department_id)
                 .outerjoin(_ORDER_DOCTOR, _ORDER_DOCTOR.c.id == _C.c.doctor_id))
    .where(_C.c.public_id == bindparam("consultation_id"))
)
# The order's own columns, locked (PostgreSQL; SQLite's writer already holds the database).
_ORDER_FOR_UPDATE = (
    select(_C.c.id, _C.c.public_id, _C.c.service_id, _C.c.kind, _C.c.status, _C.c.patient_id, _C.c.department_id,
           _C.c.doctor_id)
    .where(_C.c.public_id == bindparam("consultation_id")).with_for_update()
)
# The claim: only a row still waiting (and not addressed to someone else) matches.
_CLAIM = (
    _C.update()
    .where(_C.c.id == bindparam("row_id"), _C.c.status == ConsultStatus.WAITING.value,
           _C.c.doctor_id.is_(None) | (_C.c.doctor_id == bindparam("staff_id")))
    .values(status=bindparam("to"), doctor_id=bindparam("staff_id"), claimed_at=bindparam("now"))
)
# A doctor's first message starts the consultation: guarded on the status it was read in.
_START = (
    _C.update()
    .where(_C.c.id == bindparam("row_id"), _C.c.status == bindparam("from_status"))
    .values(status=bindparam("to"), started_at=bindparam("now"))
)


# --- loading, access and the one place a status is assigned ---


def _load(uow: UnitOfWork, public_id: str, *, lock: bool = False) -> ConsultationRow:
    query = select(ConsultationRow).where(ConsultationRow.public_id == public_id)
    if lock:
        query = query.with_for_update()
    row = uow.session.scalar(query)
    if row is None:
        raise NotFound(f"未找到咨询订单 {public_id}")
    return row


def _me(uow: UnitOfWork, principal: Principal) -> Row[Any]:
    """The calling doctor's staff columns (``_STAFF``); an inactive or missing one is refused."""
    row = uow.connection.execute(_STAFF, {"staff_id": principal.staff_id}).first()
    if row is None or not row.active:
        raise Forbidden("当前账号未关联在职医生")
    return row


def _ensure_qualified(uow: UnitOfWork, doctor: Row[Any]) -> None:
    """R07 (and R14: the account is this doctor's own): checked before claiming and replying."""
    ensure_may_consult_online(qualification_of(doctor), local_date(uow.clock.now()))


def _is_team_member(uow: UnitOfWork, service_id: int, staff_id: int) -> bool:
    return uow.connection.execute(_TEAM_MEMBER, {"service_id": service_id, "staff_id": staff_id}).first() is not None


def _may_take(uow: UnitOfWork, row: ConsultationRow | Row[Any], doctor: Row[Any]) -> bool:
    """Whether this doctor may claim (or see, while waiting) the order."""
    kind = ServiceKind(row.kind)
    if kind in PERSONAL_KINDS:
        return row.doctor_id == doctor.id
    if kind is ServiceKind.DESIGNATED:
        return _is_team_member(uow, row.service_id, doctor.id)
    return row.department_id == doctor.department_id


def _ensure_access(uow: UnitOfWork, principal: Principal, row: ConsultationRow | Row[Any]) -> Row[Any] | None:
    """A patient sees only their own orders; a doctor those addressed to, claimed by or waiting for them.
    Returns the doctor's staff columns when the caller is a doctor."""
    if principal.role is Role.PATIENT:
        patient_pk = uow.connection.execute(_PATIENT_PK, {"patient_id": principal.patient_id}).scalar()
        if patient_pk is None or patient_pk != row.patient_id:
            raise Forbidden("患者只能查看本人的咨询")
        return None
    if principal.role is Role.DOCTOR:
        doctor = _me(uow, principal)
        if row.doctor_id == doctor.id or (row.status == ConsultStatus.WAITING and _may_take(uow, row, doctor)):
            return doctor
        raise Forbidden("医生只能查看本人接诊或本科室待接诊的咨询")
    ensure_role(principal, READERS)
    return None


def _move(uow: UnitOfWork, row: ConsultationRow, action: Action, actor: str, **details: Any) -> None:
    """Apply one named transition (the only assignment of ``status``) and audit it."""
    before = ConsultStatus(row.status)
    row.status = transition(row.public_id, before, action).value
    audit.record(uow, actor, f"consultation.{action.value}", "consultation", row.public_id,
                 **{"from": before.value, "to": row.status}, **details)


def _step(uow: UnitOfWork, public_id: str, before: ConsultStatus, action: Action, actor: str,
          entries: list[dict[str, Any]], **details: Any) -> ConsultStatus:
    """The same named, guarded transition for the Core hot path: returns the new status for the
    caller's INSERT or conditional UPDATE and appends its audit entry to ``entries``."""
    after = transition(public_id, before, action)
    entries.append(audit.entry(uow, actor, f"consultation.{action.value}", "consultation", public_id,
                               **{"from": before.value, "to": after.value}, **details))
    return after


def _view_of(uow: UnitOfWork, r: Row[Any], **changed: Any) -> ConsultationView:
    """The view of an ``_ORDER_VIEW`` row, with the columns this transaction changed since."""
    status = ConsultStatus(changed.get("status", r.status))
    money = Ledger(int(r.paid_fen), int(r.refunded_fen))
    return ConsultationView(
        r.public_id, r.kind, status.value, status.label, payment_state(r.price_fen, money).value,
        r.price_fen, money.paid_fen, money.refunded_fen, r.patient_public_id,
        mask_name(uow.vault.decrypt(r.name_enc)), r.department_name,
        changed.get("doctor_public_id", r.doctor_public_id), changed.get("doctor_name", r.doctor_name),
        r.created_at, r.paid_at, r.answer_deadline, r.closed_at, r.close_reason, r.transfer_count, r.review_rating,
    )


def _view(uow: UnitOfWork, row: ConsultationRow, money: Ledger | None = None) -> ConsultationView:
    money = money or ledger_of(uow, row.id)
    patient = uow.session.get(PatientRow, row.patient_id)
    doctor = uow.session.get(StaffRow, row.doctor_id) if row.doctor_id else None
    dept = uow.session.get(DepartmentRow, row.department_id) if row.department_id else None
    status = ConsultStatus(row.status)
    return ConsultationView(
        row.public_id, row.kind, status.value, status.label, payment_state(row.price_fen, money).value,
        row.price_fen, money.paid_fen, money.refunded_fen, patient.public_id if patient else "",
        mask_name(uow.vault.decrypt(patient.name_enc)) if patient else "", dept.name if dept else None,
        doctor.public_id if doctor else None, doctor.name if doctor else None, row.created_at, row.paid_at,
        row.answer_deadline, row.closed_at, row.close_reason, row.transfer_count, row.review_rating,
    )


def _settle_paid(uow: UnitOfWork, row: ConsultationRow, actor: str) -> None:
    """pay + enqueue: the answer clock starts when the money (or a free order) is settled."""
    service = uow.session.get(ConsultServiceRow, row.service_id)
    assert service is not None
    now = uow.clock.now()
    _move(uow, row, Action.PAY, actor)
    row.paid_at = now
    row.answer_deadline = answer_deadline(now, timedelta(minutes=service.time_limit_minutes))
    _move(uow, row, Action.ENQUEUE, actor)


# --- patient: create, pay, cancel, review ---


def create_consultation(
    uow: UnitOfWork, principal: Principal, gateway: PaymentGateway, service_id: str, question: str,
) -> CreatedConsultation:
    """下单. A paid service returns WeChat prepay parameters; a free one goes straight to the pool.

    Hot path (Core): one SELECT (service, pool, doctor, patient), one INSERT of the order in the
    status its transitions reached (created, or created → paid → waiting for a free service), one
    executemany of its audit entries; the payment record for a paid one."""
    ensure_role(principal, {Role.PATIENT})
    text = check_question(question)
    now = uow.clock.now()
    with uow:
        found = uow.connection.execute(_SERVICE_AND_PATIENT, {"service_id": service_id,
                                                               "patient_id": principal.patient_id}).first()
        if found is None or not found.enabled:
            raise NotFound(f"咨询服务 {service_id} 不存在或已停用")
        if found.patient_pk is None:
            raise Forbidden("当前账号未关联患者")
        public_id, actor = new_public_id("con"), principal.actor
        entries = [audit.entry(uow, actor, "consultation.create", "consultation", public_id,
                               service=found.public_id, price_fen=found.price_fen)]
        status, paid_at, deadline = ConsultStatus.CREATED, None, None
        out_trade_no, params = None, {}
        if found.price_fen == 0:  # pay + enqueue: the answer clock starts now
            status = _step(uow, public_id, status, Action.PAY, actor, entries)
            paid_at = now
            deadline = answer_deadline(now, timedelta(minutes=found.time_limit_minutes))
            status = _step(uow, public_id, status, Action.ENQUEUE, actor, entries)
        order = {"public_id": public_id, "service_id": found.id, "kind": found.kind, "patient_id": found.patient_pk,
                 "department_id": found.department_id, "doctor_id": found.doctor_id, "status": status.value,
                 "price_fen": found.price_fen, "question_enc": uow.vault.encrypt(text), "created_at": now,
                 "paid_at": paid_at, "answer_deadline": deadline, "transfer_count": 0}
        row_id = uow.connection.execute(_INSERT_ORDER, order).inserted_primary_key[0]
        if found.price_fen:
            out_trade_no = new_public_id("pay")[4:][:32]
            # The provider's order number is idempotent: if this transaction rolls back, the
            # provider's unpaid order simply expires.
            prepay = gateway.prepay(out_trade_no, found.price_fen, ServiceKind(found.kind).label, found.openid)
            uow.connection.execute(_INSERT_PAYMENT, {
                "public_id": new_public_id("cpy"), "consultation_id": row_id, "out_trade_no": out_trade_no,
                "amount_fen": found.price_fen, "status": "pending", "created_at": now,
                "prepay_id": prepay.prepay_id})
            params = prepay.client_params
        audit.record_all(uow, entries)
        no_money = Ledger(0, 0)  # no payment of this order can have succeeded yet
        view = ConsultationView(
            public_id, found.kind, status.value, status.label, payment_state(found.price_fen, no_money).value,
            found.price_fen, 0, 0, found.patient_public_id, mask_name(uow.vault.decrypt(found.name_enc)),
            found.department_name, found.doctor_public_id, found.doctor_name, now, paid_at, deadline,
            None, None, 0, None,
        )
        uow.commit()
    return CreatedConsultation(view, out_trade_no, params)


def handle_paid_notification(
    uow: UnitOfWork, gateway: PaymentGateway, headers: dict[str, str], body: bytes,
) -> ConsultationView:
    """支付结果通知. Verified, idempotent (the provider repeats it), and locks the payment row."""
    notice = gateway.parse_notification(headers, body)
    with uow:
        payment = uow.session.scalar(select(ConsultPaymentRow).where(
            ConsultPaymentRow.out_trade_no == notice.out_trade_no).with_for_update())
        if payment is None:
            raise NotFound("支付通知对应的订单不存在")
        if notice.amount_fen != payment.amount_fen:
            raise ExternalServiceError("支付通知金额与订单不一致")
        row = uow.session.get(ConsultationRow, payment.consultation_id, with_for_update=True)
        assert row is not None
        if payment.status == "succeeded":
            if payment.transaction_id != notice.transaction_id:
                raise Conflict("同一订单收到不同的支付流水号")
            return _view(uow, row)  # a repeated notification changes nothing
        payment.status, payment.transaction_id, payment.paid_at = "succeeded", notice.transaction_id, notice.paid_at
        audit.record(uow, PAYMENT_ACTOR, "consult_payment.succeeded", "consultation", row.public_id,
                     payment=payment.public_id, amount_fen=payment.amount_fen)
        uow.session.flush()
        if row.status == ConsultStatus.CREATED:
            _settle_paid(uow, row, PAYMENT_ACTOR)
        else:  # paid after the order was cancelled: the money goes back
            request_refund_in_tx(uow, row, payment, payment.amount_fen, "paid_after_cancel", PAYMENT_ACTOR)
        uow.session.flush()
        view = _view(uow, row)
        uow.commit()
    return view


def cancel_consultation(uow: UnitOfWork, principal: Principal, consultation_id: str) -> ConsultationView:
    """取消: only before payment."""
    ensure_role(principal, {Role.PATIENT, Role.ADMIN, Role.CUSTOMER_SERVICE})
    with uow:
        row = _load(uow, consultation_id, lock=True)
        _ensure_access(uow, principal, row)
        _move(uow, row, Action.CANCEL, principal.actor)
        row.closed_at = uow.clock.now()
        view = _view(uow, row)
        uow.commit()
    return view


def review_consultation(
    uow: UnitOfWork, principal: Principal, consultation_id: str, rating: int, comment: str | None = None,
) -> ConsultationView:
    """评价: the patient, once, after an answered consultation closed."""
    ensure_role(principal, {Role.PATIENT})
    if comment is not None and len(comment) > 500:
        raise InvalidInput("评价最多 500 字", field="comment")
    with uow:
        row = _load(uow, consultation_id, lock=True)
        _ensure_access(uow, principal, row)
        ensure_may_review(row.public_id, ConsultStatus(row.status), row.close_reason, rating)
        _move(uow, row, Action.REVIEW, principal.actor, rating=rating)
        row.review_rating = rating
        row.review_comment_enc = uow.vault.encrypt(comment.strip()) if comment and comment.strip() else None
        row.reviewed_at = uow.clock.now()
        view = _view(uow, row)
        uow.commit()
    return view


# --- doctor: claim, transfer, converse, reply, close ---


def _claim_write(uow: UnitOfWork, row_id: int, staff_id: int, now: datetime) -> bool:
    """The claim, settled by the database: only a row still waiting (and not taken
    by someone else) is updated, so of two concurrent claims exactly one matches."""
    target = transition("", ConsultStatus.WAITING, Action.CLAIM)
    result = uow.connection.execute(_CLAIM, {"row_id": row_id, "staff_id": staff_id, "to": target.value, "now": now})
    return result.rowcount == 1


def claim_consultation(uow: UnitOfWork, principal: Principal, consultation_id: str) -> ConsultationView:
    """接诊. Exactly one doctor wins; the others get a conflict.

    Hot path (Core): the doctor, the order with its view columns, the conditional UPDATE, the audit."""
    ensure_role(principal, {Role.DOCTOR})
    now = uow.clock.now()
    with uow:
        doctor = _me(uow, principal)
        _ensure_qualified(uow, doctor)
        row = uow.connection.execute(_ORDER_VIEW, {"consultation_id": consultation_id}).first()
        if row is None:
            raise NotFound(f"未找到咨询订单 {consultation_id}")
        transition(row.public_id, ConsultStatus(row.status), Action.CLAIM)
        if not _may_take(uow, row, doctor):
            raise Forbidden("该咨询不属于本人或本科室，不能接诊")
        if not _claim_write(uow, row.id, doctor.id, now):
            raise Conflict(f"咨询订单 {consultation_id} 已被其他医生接诊")
        audit.record_all(uow, [audit.entry(
            uow, principal.actor, "consultation.claim", "consultation", row.public_id,
            **{"from": ConsultStatus.WAITING.value, "to": ConsultStatus.CLAIMED.value}, doctor=doctor.public_id)])
        view = _view_of(uow, row, status=ConsultStatus.CLAIMED, doctor_public_id=doctor.public_id,
                        doctor_name=doctor.name)
        uow.commit()
    return view


def transfer_consultation(
    uow: UnitOfWork, principal: Principal, consultation_id: str, department_code: str,
) -> ConsultationView:
    """转科: a department consultation goes back to another department's pool."""
    ensure_role(principal, {Role.DOCTOR, Role.ADMIN})
    with uow:
        row = _load(uow, consultation_id, lock=True)
        _ensure_access(uow, principal, row)
        if row.kind != ServiceKind.DEPARTMENT:
            raise InvalidInput("只有科室咨询可以转科", field="consultation_id")
        dept = uow.session.scalar(select(DepartmentRow).where(DepartmentRow.code == department_code))
        if dept is None or not dept.online:
            raise NotFound(f"未找到开展线上咨询的科室 {department_code}")
        if dept.id == row.department_id:
            raise InvalidInput("不能转到当前科室", field="department_code")
        _move(uow, row, Action.TRANSFER, principal.actor, department=dept.code)
        row.department_id, row.doctor_id, row.claimed_at = dept.id, None, None
        row.transfer_count += 1
        view = _view(uow, row)
        uow.commit()
    return view


def post_message(
    uow: UnitOfWork, principal: Principal, store: AttachmentStore, consultation_id: str, kind: MessageKind,
    text: str | None = None, attachment: bytes | None = None,
) -> MessageView:
    """咨询消息 (文字、图片、语音). A doctor's first message starts the consultation.

    Hot path (Core): the order (locked), the caller, the guarded start, the message, the audit entries."""
    ensure_role(principal, {Role.PATIENT, Role.DOCTOR})
    mime = check_message(kind, text, attachment)
    with uow:
        row = uow.connection.execute(_ORDER_FOR_UPDATE, {"consultation_id": consultation_id}).first()
        if row is None:
            raise NotFound(f"未找到咨询订单 {consultation_id}")
        doctor = _ensure_access(uow, principal, row)
        status = ConsultStatus(row.status)
        staff_id, now, entries = None, uow.clock.now(), []
        if doctor is not None:
            if row.doctor_id != doctor.id:
                raise Forbidden("请先接诊再回复")
            _ensure_qualified(uow, doctor)
            staff_id = doctor.id
            if status is ConsultStatus.CLAIMED:
                after = _step(uow, row.public_id, status, Action.START, principal.actor, entries)
                if uow.connection.execute(_START, {"row_id": row.id, "from_status": status.value,
                                                   "to": after.value, "now": now}).rowcount != 1:
                    raise Conflict(f"咨询订单 {consultation_id} 状态已变化，请刷新后重试")
            elif status not in CONVERSATION:
                raise Conflict(f"咨询订单 {consultation_id} 当前状态为「{status.label}」，不能发送消息")
        elif status not in OPEN:
            raise Conflict(f"咨询订单 {consultation_id} 当前状态为「{status.label}」，不能发送消息")
        blob = store.put(attachment) if attachment is not None else None
        clear = text.strip() if text and text.strip() else None
        message = MessageView(new_public_id("msg"), principal.role.value, kind.value, clear,
                              blob.sha256 if blob else None, mime, blob.size if blob else None, now)
        uow.connection.execute(_INSERT_MESSAGE, {
            "public_id": message.public_id, "consultation_id": row.id, "sender": message.sender,
            "staff_id": staff_id, "kind": message.kind, "text_enc": uow.vault.encrypt(clear) if clear else None,
            "attachment_sha256": message.attachment_sha256, "attachment_mime": mime,
            "attachment_size": message.attachment_size, "created_at": now})
        entries.append(audit.entry(uow, principal.actor, "consultation.message", "consultation", row.public_id,
                                   message=message.public_id, kind=kind.value))
        audit.record_all(uow, entries)
        uow.commit()
    return message


def reply_consultation(uow: UnitOfWork, principal: Principal, consultation_id: str, conclusion: str) -> ConsultationView:
    """回复: the doctor's answer (处理意见) ends the in-progress phase."""
    ensure_role(principal, {Role.DOCTOR})
    check_message(MessageKind.TEXT, conclusion, None)
    with uow:
        row = _load(uow, consultation_id, lock=True)
        doctor = _me(uow, principal)
        if row.doctor_id != doctor.id:
            raise Forbidden("只有接诊医生可以回复")
        _ensure_qualified(uow, doctor)
        _move(uow, row, Action.REPLY, principal.actor)
        row.replied_at = uow.clock.now()
        uow.session.add(ConsultMessageRow(
            public_id=new_public_id("msg"), consultation_id=row.id, sender="doctor", staff_id=doctor.id,
            kind=MessageKind.TEXT.value, text_enc=uow.vault.encrypt(conclusion.strip()), created_at=row.replied_at,
        ))
        view = _view(uow, row)
        uow.commit()
    return view


def close_consultation(uow: UnitOfWork, principal: Principal, consultation_id: str) -> ConsultationView:
    """结束咨询: the patient or the doctor, after the reply."""
    ensure_role(principal, {Role.PATIENT, Role.DOCTOR})
    with uow:
        row = _load(uow, consultation_id, lock=True)
        _ensure_access(uow, principal, row)
        _move(uow, row, Action.CLOSE, principal.actor)
        row.closed_at, row.close_reason = uow.clock.now(), CloseReason.COMPLETED.value
        view = _view(uow, row)
        uow.commit()
    return view


# --- reading ---


def _message_view(uow: UnitOfWork, m: ConsultMessageRow) -> MessageView:
    return MessageView(m.public_id, m.sender, m.kind, uow.vault.decrypt(m.text_enc) if m.text_enc else None,
                       m.attachment_sha256, m.attachment_mime, m.attachment_size, m.created_at)


def get_consultation(uow: UnitOfWork, principal: Principal, consultation_id: str) -> ConsultationDetail:
    """One consultation with its conversation: patient (own), doctor (own or waiting for them). Audited (R06)."""
    with uow:
        row = _load(uow, consultation_id)
        _ensure_access(uow, principal, row)
        if principal.role not in (Role.PATIENT, Role.DOCTOR):
            raise Forbidden("咨询内容仅患者本人和接诊医生可见")
        messages = uow.session.scalars(select(ConsultMessageRow).where(
            ConsultMessageRow.consultation_id == row.id).order_by(ConsultMessageRow.id))
        detail = ConsultationDetail(_view(uow, row), uow.vault.decrypt(row.question_enc),
                                    tuple(_message_view(uow, m) for m in messages))
        audit.record(uow, principal.actor, "consultation.read", "consultation", row.public_id)
        uow.commit()
    return detail


def read_attachment(
    uow: UnitOfWork, principal: Principal, store: AttachmentStore, consultation_id: str, message_id: str,
) -> tuple[str, bytes]:
    """An attachment of a message, to the patient or the doctor of that consultation only. Audited."""
    with uow:
        row = _load(uow, consultation_id)
        _ensure_access(uow, principal, row)
        if principal.role not in (Role.PATIENT, Role.DOCTOR):
            raise Forbidden("咨询附件仅患者本人和接诊医生可见")
        message = uow.session.scalar(select(ConsultMessageRow).where(
            ConsultMessageRow.public_id == message_id, ConsultMessageRow.consultation_id == row.id))
        if message is None or message.attachment_sha256 is None:
            raise NotFound(f"未找到附件 {message_id}")
        audit.record(uow, principal.actor, "consultation.attachment_read", "consultation", row.public_id,
                     message=message_id)
        sha, mime = message.attachment_sha256, message.attachment_mime or "application/octet-stream"
        uow.commit()
    return mime, store.get(sha)


def list_consultations(
    uow: UnitOfWork, principal: Principal, *, status: ConsultStatus | None = None,
    payment: PaymentState | None = None, limit: int = 100, offset: int = 0,
) -> list[ConsultationView]:
    """A patient lists their own; admin, operations and customer service list all (CON-4)."""
    with uow:
        query = select(ConsultationRow).order_by(ConsultationRow.id.desc())
        if principal.role is Role.PATIENT:
            query = query.join(PatientRow, PatientRow.id == ConsultationRow.patient_id).where(
                PatientRow.public_id == principal.patient_id)
        else:
            ensure_role(principal, READERS)
        if status:
            query = query.where(ConsultationRow.status == status.value)
        views = [_view(uow, r) for r in uow.session.scalars(query.limit(limit if not payment else None).offset(offset))]
        if payment:
            views = [v for v in views if v.payment_state == payment.value][:limit]
        return views


def doctor_todo(uow: UnitOfWork, principal: Principal, mode: str = "personal") -> list[ConsultationView]:
    """医生待办. ``personal``: my claimed and addressed orders that need me;
    ``department``: the waiting pool of my department and my 定点保障 lines."""
    ensure_role(principal, {Role.DOCTOR})
    if mode not in ("personal", "department"):
        raise InvalidInput("模式应为 personal（个人）或 department（科室）", field="mode")
    with uow:
        doctor = _me(uow, principal)
        if mode == "personal":
            query = select(ConsultationRow).where(
                ConsultationRow.doctor_id == doctor.id,
                ConsultationRow.status.in_([ConsultStatus.WAITING.value, ConsultStatus.CLAIMED.value,
                                            ConsultStatus.IN_PROGRESS.value, ConsultStatus.REPLIED.value]))
        else:
            teams = select(ConsultTeamMemberRow.service_id).where(ConsultTeamMemberRow.staff_id == doctor.id)
            query = select(ConsultationRow).where(
                ConsultationRow.status == ConsultStatus.WAITING.value, ConsultationRow.doctor_id.is_(None),
                ((ConsultationRow.kind == ServiceKind.DEPARTMENT.value)
                 & (ConsultationRow.department_id == doctor.department_id))
                | ((ConsultationRow.kind == ServiceKind.DESIGNATED.value) & ConsultationRow.service_id.in_(teams)))
        rows = uow.session.scalars(query.order_by(ConsultationRow.answer_deadline, ConsultationRow.id).limit(200))
        return [_view(uow, r) for r in rows]


def count_by_status(uow: UnitOfWork, principal: Principal) -> dict[str, int]:
    ensure_role(principal, READERS)
    with uow:
        rows = uow.session.execute(select(ConsultationRow.status, func.count()).group_by(ConsultationRow.status))
        return {status: n for status, n in rows}
