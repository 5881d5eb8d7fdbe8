"""预约视频复诊: the follow-up check (复诊判定, VC-2/VC-5), taking the slot on
both sides of the fused schedule (VC-3), payment, and cancellation with
refunds by notice.

Taking a slot, in order:

1. read the slot and the department's check mode (a short transaction);
2. the follow-up check against the HIS (strict) outside any transaction;
3. hold the offline slots of the HIS that overlap the online slot (the HIS
   settles that in its own transaction: a slot already sold at the window
   refuses the hold);
4. one conditional UPDATE of our slot (``status = 'open'``): of two patients
   booking the last slot exactly one matches; the loser's HIS holds are
   released again.

Side effects on the outside world that must not be undone by a rollback
(releasing HIS holds after a cancellation) run after the commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import (
    Conflict,
    ExternalServiceError,
    Forbidden,
    NotFound,
)
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.staff import Role
from clinical_core.domain.video_schedule import overlaps
from clinical_core.domain.video_visit import (
    CheckMode,
    Diagnosis,
    EndReason,
    FollowUpEvidence,
    OfflineVisit,
    VisitAction,
    VisitStatus,
    check_complaint,
    check_declared_documents,
    check_document,
    patient_refund_percent,
    refund_amount,
    strict_evidence,
    transition,
)
from clinical_core.persistence.models import DepartmentRow, PatientRow, StaffRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.persistence.video import (
    VideoDocumentRow,
    VideoParticipantRow,
    VideoPaymentRow,
    VideoSessionRow,
    VideoSlotRow,
    VideoVisitRow,
)
from clinical_core.ports.attachments import AttachmentStore
from clinical_core.ports.his import HisPort
from clinical_core.ports.his_schedule import HisSchedulePort
from clinical_core.ports.payment import PaymentGateway
from clinical_core.services import audit, video_settings
from clinical_core.services.video_ledger import ledger_of, refund_in_tx
from clinical_core.services.video_visits import (
    VisitView,
    ensure_access,
    load,
    me,
    move,
    view,
)

PAYMENT_ACTOR = "payment:notification"


@dataclass(frozen=True, slots=True)
class BookedVisit:
    visit: VisitView
    out_trade_no: str | None  # None for a free visit
    pay_params: dict[str, str]


@dataclass(frozen=True, slots=True)
class _SlotFacts:
    slot_pk: int
    doctor_public_id: str
    doctor_pk: int
    department_pk: int
    department_code: str
    department_name: str
    starts_at: datetime
    ends_at: datetime
    price_fen: int
    mode: CheckMode
    lookback_days: int
    patient_pk: int
    patient_public_id: str
    openid: str | None


def _slot_facts(uow: UnitOfWork, principal: Principal, slot_id: str) -> _SlotFacts:
    with uow:
        found = uow.session.execute(
            select(VideoSlotRow, VideoSessionRow, DepartmentRow, StaffRow)
            .join(VideoSessionRow, VideoSessionRow.id == VideoSlotRow.session_id)
            .join(DepartmentRow, DepartmentRow.id == VideoSessionRow.department_id)
            .join(StaffRow, StaffRow.id == VideoSlotRow.doctor_id)
            .where(VideoSlotRow.public_id == slot_id)).first()
        if found is None:
            raise NotFound(f"未找到号源 {slot_id}")
        slot, session, dept, doctor = found
        if slot.status != "open" or session.status != "open":
            raise Conflict(f"号源 {slot_id} 已被预约或已停诊")
        if slot.starts_at <= uow.clock.now():
            raise Conflict(f"号源 {slot_id} 的时间已过")
        patient = uow.session.scalar(select(PatientRow).where(PatientRow.public_id == principal.patient_id))
        if patient is None:
            raise Forbidden("当前账号未关联患者")
        clash = uow.session.scalar(select(VideoVisitRow.public_id).where(
            VideoVisitRow.patient_id == patient.id,
            VideoVisitRow.status.in_([VisitStatus.BOOKED.value, VisitStatus.PAID.value, VisitStatus.WAITING.value]),
            VideoVisitRow.starts_at < slot.ends_at, VideoVisitRow.ends_at > slot.starts_at))
        if clash:
            raise Conflict(f"该时段已有本人的视频复诊预约 {clash}")
        mode, lookback = video_settings.effective(uow, dept.code)
        return _SlotFacts(slot.id, doctor.public_id, doctor.id, dept.id, dept.code, dept.name, slot.starts_at,
                          slot.ends_at, session.price_fen, mode, lookback, patient.id, patient.public_id,
                          patient.openid)


def _evidence(uow: UnitOfWork, his: HisPort, facts: _SlotFacts, his_visit_no: str | None,
              documents: tuple[bytes, ...]) -> FollowUpEvidence | None:
    if facts.mode is CheckMode.STRICT:
        visits = [OfflineVisit(v.visit_no, v.visited_at, v.visit_type, v.department,
                               tuple(Diagnosis(d.code, d.name) for d in v.diagnoses))
                  for v in his.visits(facts.patient_public_id, limit=200)]
        return strict_evidence(visits, his_visit_no, facts.department_name, uow.clock.now(), facts.lookback_days)
    if facts.mode is CheckMode.DECLARED:
        check_declared_documents(len(documents))
        for data in documents:
            check_document(data)
    return None


def _offline_twins(his_schedule: HisSchedulePort, facts: _SlotFacts) -> list[str]:
    """The HIS's outpatient slots of this doctor overlapping the online slot (号源共享)."""
    starts_at, ends_at = facts.starts_at, facts.ends_at
    candidates = his_schedule.outpatient_slots(start=starts_at - timedelta(hours=8), end=ends_at,
                                               doctor_id=facts.doctor_public_id)
    twins = [s for s in candidates if overlaps(s.starts_at, s.ends_at, starts_at, ends_at)]
    if any(s.taken for s in twins):
        raise Conflict("该时段已在线下被预约")
    return [s.slot_no for s in twins]


def _take_slot(uow: UnitOfWork, slot_pk: int) -> bool:
    """The booking, settled by the database: only a slot still open is updated."""
    result = uow.session.execute(
        update(VideoSlotRow).where(VideoSlotRow.id == slot_pk, VideoSlotRow.status == "open")
        .values(status="booked").execution_options(synchronize_session=False))
    return result.rowcount == 1  # type: ignore[attr-defined]


def book_visit(
    uow: UnitOfWork, principal: Principal, gateway: PaymentGateway, his: HisPort, his_schedule: HisSchedulePort,
    store: AttachmentStore, slot_id: str, complaint: str, *, his_visit_no: str | None = None,
    documents: tuple[bytes, ...] = (),
) -> BookedVisit:
    """预约 (VC-1): follow-up check by the department's mode, the slot taken on both sides, prepay."""
    ensure_role(principal, {Role.PATIENT})
    text = check_complaint(complaint)
    facts = _slot_facts(uow, principal, slot_id)
    evidence = _evidence(uow, his, facts, his_visit_no, documents)
    visit_public_id = new_public_id("vv")
    holds = _offline_twins(his_schedule, facts)
    if holds:
        try:
            his_schedule.hold(holds, visit_public_id)
        except Conflict:
            raise Conflict("该时段已在线下被预约") from None
    try:
        booked = _book_in_tx(uow, principal, gateway, store, facts, visit_public_id, text, evidence, holds,
                             documents)
    except BaseException:
        if holds:
            his_schedule.release(holds, visit_public_id)
        raise
    return booked


def _book_in_tx(uow: UnitOfWork, principal: Principal, gateway: PaymentGateway, store: AttachmentStore,
                facts: _SlotFacts, visit_public_id: str, complaint: str, evidence: FollowUpEvidence | None,
                holds: list[str], documents: tuple[bytes, ...]) -> BookedVisit:
    now = uow.clock.now()
    with uow:
        if not _take_slot(uow, facts.slot_pk):
            raise Conflict("号源已被其他患者预约")
        row = VideoVisitRow(
            public_id=visit_public_id, slot_id=facts.slot_pk, patient_id=facts.patient_pk,
            doctor_id=facts.doctor_pk, department_id=facts.department_pk, status=VisitStatus.BOOKED.value,
            price_fen=facts.price_fen, starts_at=facts.starts_at, ends_at=facts.ends_at,
            complaint_enc=uow.vault.encrypt(complaint), check_mode=facts.mode.value,
            his_visit_no=evidence.his_visit_no if evidence else None,
            followup_department=evidence.department if evidence else None,
            followup_diagnoses=[{"icd10": d.code, "name": d.name} for d in evidence.diagnoses] if evidence else [],
            followup_confirmed_at=now if evidence else None, his_holds=holds, created_at=now)
        uow.session.add(row)
        uow.session.flush()
        uow.session.add_all([
            VideoParticipantRow(public_id=new_public_id("vpt"), visit_id=row.id, role=role,
                                invited_by=principal.actor, created_at=now) for role in ("patient", "doctor")])
        for data in documents:
            blob = store.put(data)
            uow.session.add(VideoDocumentRow(visit_id=row.id, sha256=blob.sha256, mime=check_document(data),
                                             size=blob.size, uploaded_at=now))
        audit.record(uow, principal.actor, "video_visit.book", "video_visit", row.public_id,
                     slot=facts.slot_pk, mode=facts.mode.value, his_visit=row.his_visit_no,
                     documents=len(documents), his_holds=holds)
        out_trade_no, params = None, {}
        if facts.price_fen == 0:
            _settle_paid(uow, row, principal.actor)
        else:
            out_trade_no = new_public_id("pay")[4:][:32]
            payment = VideoPaymentRow(public_id=new_public_id("vpy"), visit_id=row.id, out_trade_no=out_trade_no,
                                      amount_fen=facts.price_fen, status="pending", created_at=now)
            uow.session.add(payment)
            prepay = gateway.prepay(out_trade_no, facts.price_fen, "视频复诊挂号费", facts.openid)
            payment.prepay_id = prepay.prepay_id
            params = prepay.client_params
        uow.session.flush()
        result = BookedVisit(view(uow, row), out_trade_no, params)
        uow.commit()
    return result


def _settle_paid(uow: UnitOfWork, row: VideoVisitRow, actor: str) -> None:
    move(uow, row, VisitAction.PAY, actor)
    row.paid_at = uow.clock.now()


def handle_paid_notification(uow: UnitOfWork, gateway: PaymentGateway, headers: dict[str, str],
                             body: bytes) -> VisitView:
    """挂号费支付结果通知: verified, idempotent, the payment row locked. Money arriving after the
    booking was released (unpaid too long, cancelled) is refunded at once."""
    notice = gateway.parse_notification(headers, body)
    with uow:
        payment = uow.session.scalar(select(VideoPaymentRow).where(
            VideoPaymentRow.out_trade_no == notice.out_trade_no).with_for_update())
        if payment is None:
            raise NotFound("支付通知对应的预约不存在")
        if notice.amount_fen != payment.amount_fen:
            raise ExternalServiceError("支付通知金额与预约不一致")
        row = uow.session.get(VideoVisitRow, payment.visit_id, with_for_update=True)
        assert row is not None
        if payment.status == "succeeded":
            if payment.transaction_id != notice.transaction_id:
                raise Conflict("同一预约收到不同的支付流水号")
            return view(uow, row)
        payment.status, payment.transaction_id, payment.paid_at = "succeeded", notice.transaction_id, notice.paid_at
        audit.record(uow, PAYMENT_ACTOR, "video_payment.succeeded", "video_visit", row.public_id,
                     payment=payment.public_id, amount_fen=payment.amount_fen)
        uow.session.flush()
        if row.status == VisitStatus.BOOKED:
            _settle_paid(uow, row, PAYMENT_ACTOR)
        else:
            refund_in_tx(uow, row, None, "paid_after_cancel", PAYMENT_ACTOR)
        uow.session.flush()
        result = view(uow, row)
        uow.commit()
    return result


# --- cancellation ---


def release_in_tx(uow: UnitOfWork, his_schedule: HisSchedulePort, row: VideoVisitRow) -> None:
    """The slot opens again (if still ahead and its session is open) and the HIS holds are released after
    the commit, so the time is offered on both sides again."""
    if row.starts_at > uow.clock.now():
        session_open = uow.session.scalar(select(VideoSessionRow.status).join(
            VideoSlotRow, VideoSlotRow.session_id == VideoSessionRow.id).where(VideoSlotRow.id == row.slot_id))
        uow.session.execute(update(VideoSlotRow).where(VideoSlotRow.id == row.slot_id, VideoSlotRow.status == "booked")
                            .values(status="open" if session_open == "open" else "closed")
                            .execution_options(synchronize_session=False))
    holds, reference = list(row.his_holds or []), row.public_id
    if holds:
        uow.after_commit(lambda: his_schedule.release(holds, reference))


def cancel_in_tx(uow: UnitOfWork, his_schedule: HisSchedulePort, row: VideoVisitRow, reason: EndReason,
                 actor: str, percent: int) -> None:
    move(uow, row, VisitAction.CANCEL, actor, reason=reason.value, refund_percent=percent)
    row.ended_at, row.end_reason = uow.clock.now(), reason.value
    if percent > 0:
        refund_in_tx(uow, row, refund_amount(ledger_of(uow, row.id).paid_fen, percent), reason.value, actor)
    release_in_tx(uow, his_schedule, row)


def cancel_visit(uow: UnitOfWork, principal: Principal, his_schedule: HisSchedulePort, visit_id: str) -> VisitView:
    """取消预约. The patient: refunded by notice before the slot (≥24 h all, ≥2 h half, later nothing).
    The visit's doctor or an administrator (停诊): refunded in full."""
    ensure_role(principal, {Role.PATIENT, Role.DOCTOR, Role.ADMIN, Role.CUSTOMER_SERVICE})
    with uow:
        row = load(uow, visit_id, lock=True)
        ensure_access(uow, principal, row)
        if principal.role is Role.DOCTOR:
            me(uow, principal)
        status = VisitStatus(row.status)
        transition(row.public_id, status, VisitAction.CANCEL)
        if principal.role is Role.PATIENT:
            percent = 0 if status is VisitStatus.BOOKED else patient_refund_percent(row.starts_at, uow.clock.now())
            reason = EndReason.PATIENT_CANCELLED
        else:
            percent, reason = 100, EndReason.HOSPITAL_CANCELLED
        cancel_in_tx(uow, his_schedule, row, reason, principal.actor, percent)
        result = view(uow, row)
        uow.commit()
    return result


@dataclass(frozen=True, slots=True)
class OfflineVisitChoice:
    """One earlier offline visit the patient may pick as the follow-up evidence (strict mode)."""

    visit_no: str
    visited_at: datetime
    visit_type: str
    department: str
    diagnoses: tuple[str, ...]


def offline_visits(uow: UnitOfWork, principal: Principal, his: HisPort) -> list[OfflineVisitChoice]:
    """The patient's own offline visits from the HIS, newest first. Audited (a health-record read)."""
    ensure_role(principal, {Role.PATIENT})
    visits = his.visits(principal.patient_id or "", limit=50)
    with uow:
        audit.record(uow, principal.actor, "video_visit.his_visits_read", "patient", principal.patient_id or "",
                     visits=len(visits))
        uow.commit()
    return [OfflineVisitChoice(v.visit_no, v.visited_at, v.visit_type, v.department,
                               tuple(f"{d.code} {d.name}" for d in v.diagnoses)) for v in visits]
