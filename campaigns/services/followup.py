"""Follow-up plans: templates, plans started by doctors or by clinical events, and delivery.

- ``start_from_events`` (a job) reads prescriptions dispensed and consultations completed since
  its cursor and starts the matching templates' plans. Reading the clinical tables (rather than
  a hook inside the clinical services) means no event is lost when a process dies between the
  clinical commit and the follow-up start; the plans' unique (template, source, event) makes a
  re-read harmless.
- ``deliver_due`` (a job) sends due steps through the narrow :class:`FollowupSender` port. A
  step is marked ``sending`` and committed *before* the call and ``sent`` / ``failed`` /
  ``unknown`` after it; a step whose outcome is unknown is never sent again automatically. No
  step is sent in quiet hours (21:00–08:00 Asia/Shanghai unless configured).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from campaigns.domain.followup import (
    MAX_ATTEMPTS,
    RETRY_AFTER,
    SENDING_TIMEOUT,
    DeliveryRefused,
    DeliveryUnknown,
    FollowupSender,
    OutboundMessage,
    PlanStatus,
    QuietHours,
    StepAction,
    StepKind,
    StepStatus,
    TriggerEvent,
    due_at,
    parse_steps,
    step_transition,
)
from campaigns.persistence.followup import (
    FollowupCursorRow,
    FollowupPlanRow,
    FollowupStepRow,
    FollowupTemplateRow,
    QuestionnaireRow,
)
from clinical_core.domain.access import Principal, ensure_patient_access, ensure_role
from clinical_core.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.staff import Role
from clinical_core.persistence.consultation import ConsultationRow
from clinical_core.persistence.models import PatientRow, StaffRow
from clinical_core.persistence.prescription import PrescriptionRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit

PLANNERS = frozenset({Role.DOCTOR, Role.NURSE, Role.ADMIN})
READERS = PLANNERS | {Role.OPERATIONS, Role.CUSTOMER_SERVICE}
JOB_ACTOR = "job:followup"
EVENT_LOOKBACK = timedelta(days=1)  # the first scan starts this far back, not at the beginning of time
MAX_PATIENTS_PER_START = 1000


# -- views ---------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TemplateView:
    code: str
    name: str
    trigger_event: str | None
    trigger_match: tuple[str, ...]
    steps: tuple[dict[str, Any], ...]
    active: bool


@dataclass(frozen=True, slots=True)
class StepView:
    step_id: str
    plan_id: str
    seq: int
    kind: str
    title: str
    due_at: datetime
    status: str
    attempts: int
    sent_at: datetime | None
    answered_at: datetime | None
    questionnaire_id: str | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class PlanView:
    plan_id: str
    template: str
    patient_id: str
    doctor: str | None
    source: str
    status: str
    started_at: datetime
    steps: tuple[StepView, ...]


@dataclass(frozen=True, slots=True)
class StartResult:
    scanned: int
    started: int


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    sent: int
    failed: int
    unknown: int
    retrying: int
    deferred_quiet: int  # due, but now is within quiet hours
    stale_unknown: int  # found in "sending" after the sender died: marked unknown, never resent
    dry_run: tuple[str, ...] = ()  # step ids that would be sent (dry run only)


# -- templates -----------------------------------------------------------------------------------

def _staff(uow: UnitOfWork, principal: Principal) -> StaffRow | None:
    if principal.staff_id is None:
        return None
    return uow.session.scalar(select(StaffRow).where(StaffRow.public_id == principal.staff_id))


def _template_view(t: FollowupTemplateRow) -> TemplateView:
    return TemplateView(t.code, t.name, t.trigger_event, tuple(t.trigger_match), tuple(t.steps), t.active)


def create_template(uow: UnitOfWork, principal: Principal, code: str, name: str, steps: Any, *,
                    trigger_event: str | None = None, trigger_match: Iterable[str] = ()) -> TemplateView:
    ensure_role(principal, PLANNERS)
    parsed = parse_steps(steps)
    code = code.strip()
    if not code or len(code) > 40 or not code.replace("-", "").replace("_", "").isalnum():
        raise InvalidInput("模板代码应为 1 至 40 位字母、数字、- 或 _", field="code")
    if not name.strip() or len(name) > 100:
        raise InvalidInput("模板名称不能为空且不超过 100 字", field="name")
    if trigger_event is not None:
        try:
            trigger_event = TriggerEvent(trigger_event).value
        except ValueError:
            raise InvalidInput("触发事件应为 rx_dispensed 或 consult_closed", field="trigger_event") from None
    match = [m.strip() for m in trigger_match if m.strip()]
    with uow:
        for step in parsed:
            if step.questionnaire_id and uow.session.scalar(select(QuestionnaireRow.id).where(
                    QuestionnaireRow.public_id == step.questionnaire_id)) is None:
                raise NotFound(f"问卷 {step.questionnaire_id} 不存在")
        if uow.session.scalar(select(FollowupTemplateRow.id).where(FollowupTemplateRow.code == code)):
            raise Conflict(f"随访模板 {code} 已存在")
        staff = _staff(uow, principal)
        row = FollowupTemplateRow(public_id=new_public_id("fut"), code=code, name=name.strip(),
                                  steps=[s.as_dict() for s in parsed], trigger_event=trigger_event,
                                  trigger_match=match, active=True, created_by_id=staff.id if staff else None,
                                  created_at=uow.clock.now())
        uow.session.add(row)
        audit.record(uow, principal.actor, "followup.template.create", "followup_template", code,
                     steps=len(parsed), trigger=trigger_event)
        uow.commit()
        return _template_view(row)


def list_templates(uow: UnitOfWork, principal: Principal) -> list[TemplateView]:
    ensure_role(principal, READERS)
    with uow:
        return [_template_view(t) for t in uow.session.scalars(select(FollowupTemplateRow).order_by(
            FollowupTemplateRow.code))]


# -- starting plans ------------------------------------------------------------------------------

def _start(uow: UnitOfWork, template: FollowupTemplateRow, patient_id: int, doctor_id: int | None, source: str,
           source_ref: str | None, now: datetime, quiet: QuietHours) -> FollowupPlanRow:
    plan_public = new_public_id("fup")
    plan = FollowupPlanRow(public_id=plan_public, template_id=template.id, patient_id=patient_id,
                           doctor_id=doctor_id, source=source, source_ref=source_ref or plan_public,
                           status=PlanStatus.ACTIVE.value, started_at=now, stopped_at=None)
    uow.session.add(plan)
    uow.session.flush()
    questionnaires: dict[str, int] = {}
    for seq, step in enumerate(parse_steps(template.steps), start=1):
        qid = None
        if step.questionnaire_id:
            if step.questionnaire_id not in questionnaires:
                found = uow.session.scalar(select(QuestionnaireRow.id).where(
                    QuestionnaireRow.public_id == step.questionnaire_id))
                if found is None:
                    raise NotFound(f"问卷 {step.questionnaire_id} 不存在")
                questionnaires[step.questionnaire_id] = found
            qid = questionnaires[step.questionnaire_id]
        uow.session.add(FollowupStepRow(
            public_id=new_public_id("fus"), plan_id=plan.id, seq=seq, kind=step.kind.value, title=step.title,
            body=step.body, url=step.url, questionnaire_id=qid, due_at=due_at(now, step, quiet),
            status=StepStatus.PENDING.value, attempts=0))
    return plan


def _cares_for(uow: UnitOfWork, staff_id: int, patient_id: int) -> bool:
    """A doctor's patient: one they consulted with or prescribed for."""
    consulted = uow.session.scalar(select(ConsultationRow.id).where(
        ConsultationRow.doctor_id == staff_id, ConsultationRow.patient_id == patient_id).limit(1))
    if consulted is not None:
        return True
    return uow.session.scalar(select(PrescriptionRow.id).where(
        PrescriptionRow.doctor_id == staff_id, PrescriptionRow.patient_id == patient_id).limit(1)) is not None


def start_plans(uow: UnitOfWork, principal: Principal, template_code: str, patient_ids: Iterable[str], *,
                quiet_hours: str = "21:00-08:00") -> list[PlanView]:
    """A doctor starts a template for one or many of their patients (an admin for anyone)."""
    ensure_role(principal, PLANNERS)
    wanted = list(dict.fromkeys(patient_ids))
    if not 1 <= len(wanted) <= MAX_PATIENTS_PER_START:
        raise InvalidInput(f"一次为 1 至 {MAX_PATIENTS_PER_START} 位患者开启随访", field="patients")
    quiet = QuietHours.parse(quiet_hours)
    with uow:
        template = _template(uow, template_code)
        staff = _staff(uow, principal)
        if principal.role is not Role.ADMIN and staff is None:
            raise Forbidden("随访计划须由医务人员开启")
        patients = {p.public_id: p for p in uow.session.scalars(select(PatientRow).where(
            PatientRow.public_id.in_(wanted)))}
        missing = [p for p in wanted if p not in patients]
        if missing:
            raise NotFound(f"患者 {missing[0]} 不存在")
        now = uow.clock.now()
        plans = []
        for public_id in wanted:
            patient = patients[public_id]
            if principal.role is not Role.ADMIN and staff is not None and not _cares_for(uow, staff.id, patient.id):
                raise Forbidden(f"患者 {public_id} 不是您接诊或开方的患者")
            plans.append(_start(uow, template, patient.id, staff.id if staff else None, "doctor", None, now, quiet))
        audit.record(uow, principal.actor, "followup.plan.start", "followup_template", template.code,
                     patients=len(plans))
        uow.session.flush()
        views = [_plan_view(uow, p) for p in plans]
        uow.commit()
    return views


def _template(uow: UnitOfWork, code: str) -> FollowupTemplateRow:
    row = uow.session.scalar(select(FollowupTemplateRow).where(FollowupTemplateRow.code == code))
    if row is None or not row.active:
        raise NotFound(f"随访模板 {code} 不存在或已停用")
    return row


def _matches(match: list[str], diagnoses: list[dict[str, Any]]) -> bool:
    if not match:
        return True
    for d in diagnoses or []:
        name, icd = str(d.get("name") or ""), str(d.get("icd10") or "").upper()
        if any(m in name or (icd and icd.startswith(m.upper())) for m in match):
            return True
    return False


def _cursor(uow: UnitOfWork, source: str, now: datetime) -> FollowupCursorRow:
    query = select(FollowupCursorRow).where(FollowupCursorRow.source == source)
    if uow.dialect == "postgresql":
        query = query.with_for_update()
    cursor = uow.session.scalar(query)
    if cursor is None:
        cursor = FollowupCursorRow(source=source, position_at=now - EVENT_LOOKBACK, position_id=0)
        uow.session.add(cursor)
        uow.session.flush()
    return cursor


def start_from_events(uow: UnitOfWork, now: datetime, *, batch: int = 500,
                      quiet_hours: str = "21:00-08:00") -> StartResult:
    """Start the templates triggered by prescriptions dispensed and consultations completed (a job)."""
    quiet = QuietHours.parse(quiet_hours)
    scanned = started = 0
    with uow:
        templates = list(uow.session.scalars(select(FollowupTemplateRow).where(
            FollowupTemplateRow.active.is_(True), FollowupTemplateRow.trigger_event.is_not(None))))
        by_event: dict[str, list[FollowupTemplateRow]] = {}
        for t in templates:
            by_event.setdefault(str(t.trigger_event), []).append(t)

        def existing(template_id: int, source: str, ref: str) -> bool:
            return uow.session.scalar(select(FollowupPlanRow.id).where(
                FollowupPlanRow.template_id == template_id, FollowupPlanRow.source == source,
                FollowupPlanRow.source_ref == ref)) is not None

        # prescriptions dispensed
        cursor = _cursor(uow, TriggerEvent.RX_DISPENSED.value, now)
        rows = list(uow.session.scalars(select(PrescriptionRow).where(
            PrescriptionRow.dispensed_at.is_not(None), PrescriptionRow.dispensed_at <= now,
            or_(PrescriptionRow.dispensed_at > cursor.position_at,
                and_(PrescriptionRow.dispensed_at == cursor.position_at, PrescriptionRow.id > cursor.position_id)))
            .order_by(PrescriptionRow.dispensed_at, PrescriptionRow.id).limit(batch)))
        for rx in rows:
            scanned += 1
            for t in by_event.get(TriggerEvent.RX_DISPENSED.value, []):
                if _matches(t.trigger_match, rx.diagnoses) and not existing(t.id, "rx_dispensed", rx.public_id):
                    _start(uow, t, rx.patient_id, rx.doctor_id, "rx_dispensed", rx.public_id, now, quiet)
                    started += 1
            assert rx.dispensed_at is not None
            cursor.position_at, cursor.position_id = rx.dispensed_at, rx.id
        # consultations completed
        cursor = _cursor(uow, TriggerEvent.CONSULT_CLOSED.value, now)
        consults = list(uow.session.scalars(select(ConsultationRow).where(
            ConsultationRow.closed_at.is_not(None), ConsultationRow.close_reason == "completed",
            ConsultationRow.closed_at <= now,
            or_(ConsultationRow.closed_at > cursor.position_at,
                and_(ConsultationRow.closed_at == cursor.position_at, ConsultationRow.id > cursor.position_id)))
            .order_by(ConsultationRow.closed_at, ConsultationRow.id).limit(batch)))
        for c in consults:
            scanned += 1
            wanted = by_event.get(TriggerEvent.CONSULT_CLOSED.value, [])
            diagnoses: list[dict[str, Any]] = []
            if any(t.trigger_match for t in wanted):
                for rx in uow.session.scalars(select(PrescriptionRow).where(PrescriptionRow.consultation_id == c.id)):
                    diagnoses.extend(rx.diagnoses or [])
            for t in wanted:
                if _matches(t.trigger_match, diagnoses) and not existing(t.id, "consult_closed", c.public_id):
                    _start(uow, t, c.patient_id, c.doctor_id, "consult_closed", c.public_id, now, quiet)
                    started += 1
            assert c.closed_at is not None
            cursor.position_at, cursor.position_id = c.closed_at, c.id
        if started:
            audit.record(uow, JOB_ACTOR, "followup.plan.start_from_events", "followup_plan", "*", started=started)
        uow.commit()
    return StartResult(scanned, started)


# -- delivery ------------------------------------------------------------------------------------

def _move(row: FollowupStepRow, action: StepAction) -> None:
    row.status = step_transition(row.public_id, StepStatus(row.status), action).value


def _due_query(now: datetime, batch: int):  # type: ignore[no-untyped-def]
    return (select(FollowupStepRow)
            .join(FollowupPlanRow, FollowupPlanRow.id == FollowupStepRow.plan_id)
            .where(FollowupStepRow.status == StepStatus.PENDING.value, FollowupStepRow.due_at <= now,
                   FollowupPlanRow.status == PlanStatus.ACTIVE.value)
            .order_by(FollowupStepRow.due_at, FollowupStepRow.id).limit(batch))


def deliver_due(uow: UnitOfWork, now: datetime, sender: FollowupSender, *, batch: int = 200,
                quiet_hours: str = "21:00-08:00", dry_run: bool = False) -> DeliveryResult:
    """Send the steps due at ``now`` (a job). Idempotent and safe to run concurrently."""
    quiet = QuietHours.parse(quiet_hours)
    stale = 0
    if not dry_run:
        with uow:  # a sender that died mid-call left "sending" rows: their outcome is unknown
            for row in uow.session.scalars(select(FollowupStepRow).where(
                    FollowupStepRow.status == StepStatus.SENDING.value,
                    FollowupStepRow.sending_at < now - SENDING_TIMEOUT).with_for_update(skip_locked=True)):
                _move(row, StepAction.LOST)
                row.last_error = "发送进程中断，结果未知"
                stale += 1
            uow.commit()
    if quiet.contains(now):
        with uow:
            waiting = uow.session.scalar(select(func.count()).select_from(_due_query(now, batch).subquery())) or 0
        return DeliveryResult(0, 0, 0, 0, waiting, stale)
    if dry_run:
        with uow:
            return DeliveryResult(0, 0, 0, 0, 0, 0, tuple(r.public_id for r in uow.session.scalars(
                _due_query(now, batch))))
    # claim: pending → sending, committed before any call
    claimed: list[tuple[int, OutboundMessage | None]] = []
    with uow:
        for row in uow.session.scalars(_due_query(now, batch).with_for_update(skip_locked=True, of=FollowupStepRow)):
            _move(row, StepAction.CLAIM)
            row.attempts += 1
            row.sending_at = now
            plan = uow.session.get_one(FollowupPlanRow, row.plan_id)
            patient = uow.session.get_one(PatientRow, plan.patient_id)
            url = row.url
            if row.kind == StepKind.QUESTIONNAIRE.value and row.questionnaire_id is not None:
                q = uow.session.get_one(QuestionnaireRow, row.questionnaire_id)
                url = f"/h5/questionnaires/{q.public_id}?step={row.public_id}"
            message = None if not patient.openid else OutboundMessage(
                row.public_id, patient.openid, StepKind(row.kind), row.title, row.body, url, row.due_at)
            claimed.append((row.id, message))
        uow.commit()
    sent = failed = unknown = retrying = 0
    plans: set[int] = set()
    for step_pk, message in claimed:
        outcome: tuple[StepAction, str | None, str | None]
        retry = False
        try:
            if message is None:
                raise DeliveryRefused("患者未关注公众号或未绑定，无法发送", retryable=False)
            receipt = sender.send(message)
            outcome = (StepAction.SENT, receipt.message_id, None)
        except DeliveryRefused as exc:
            outcome = (StepAction.REFUSED, None, exc.message[:200])
            retry = exc.retryable
        except DeliveryUnknown as exc:
            outcome = (StepAction.LOST, None, exc.message[:200])
        with uow:
            row = uow.session.get_one(FollowupStepRow, step_pk)
            action, message_id, error = outcome
            _move(row, action)
            row.last_error = error
            if action is StepAction.SENT:
                row.sent_at, row.message_id = uow.clock.now(), message_id
                sent += 1
            elif action is StepAction.LOST:
                unknown += 1
            elif retry and row.attempts < MAX_ATTEMPTS:
                _move(row, StepAction.RETRY)
                row.due_at = quiet.next_allowed(now + RETRY_AFTER)
                retrying += 1
            else:
                failed += 1
            plans.add(row.plan_id)
            uow.commit()
    if plans:
        _complete_finished(uow, plans, now)
    if claimed:
        with uow:
            audit.record(uow, JOB_ACTOR, "followup.deliver", "followup_step", "*", sent=sent, failed=failed,
                         unknown=unknown, retrying=retrying)
            uow.commit()
    return DeliveryResult(sent, failed, unknown, retrying, 0, stale)


def _complete_finished(uow: UnitOfWork, plan_ids: set[int], now: datetime) -> None:
    with uow:
        open_plans = set(uow.session.scalars(select(FollowupStepRow.plan_id).where(
            FollowupStepRow.plan_id.in_(plan_ids),
            FollowupStepRow.status.in_([StepStatus.PENDING.value, StepStatus.SENDING.value]))))
        done = plan_ids - open_plans
        if done:
            uow.session.execute(update(FollowupPlanRow).where(
                FollowupPlanRow.id.in_(done), FollowupPlanRow.status == PlanStatus.ACTIVE.value)
                .values(status=PlanStatus.COMPLETED.value))
        uow.commit()


# -- reading and stopping ------------------------------------------------------------------------

def _step_view(uow: UnitOfWork, s: FollowupStepRow, plan_public: str) -> StepView:
    qid = uow.session.get_one(QuestionnaireRow, s.questionnaire_id).public_id if s.questionnaire_id else None
    return StepView(s.public_id, plan_public, s.seq, s.kind, s.title, s.due_at, s.status, s.attempts, s.sent_at,
                    s.answered_at, qid, s.last_error)


def _plan_view(uow: UnitOfWork, p: FollowupPlanRow) -> PlanView:
    template = uow.session.get_one(FollowupTemplateRow, p.template_id)
    patient = uow.session.get_one(PatientRow, p.patient_id)
    doctor = uow.session.get(StaffRow, p.doctor_id) if p.doctor_id else None
    steps = uow.session.scalars(select(FollowupStepRow).where(FollowupStepRow.plan_id == p.id)
                                .order_by(FollowupStepRow.seq))
    return PlanView(p.public_id, template.code, patient.public_id, doctor.name if doctor else None, p.source,
                    p.status, p.started_at, tuple(_step_view(uow, s, p.public_id) for s in steps))


def _plan(uow: UnitOfWork, plan_id: str) -> FollowupPlanRow:
    row = uow.session.scalar(select(FollowupPlanRow).where(FollowupPlanRow.public_id == plan_id))
    if row is None:
        raise NotFound(f"随访计划 {plan_id} 不存在")
    return row


def _ensure_plan_access(uow: UnitOfWork, principal: Principal, plan: FollowupPlanRow) -> None:
    patient = uow.session.get_one(PatientRow, plan.patient_id)
    ensure_patient_access(principal, patient.public_id, READERS)
    if principal.role in (Role.DOCTOR, Role.NURSE):
        staff = _staff(uow, principal)
        if staff is None or (plan.doctor_id != staff.id and not _cares_for(uow, staff.id, plan.patient_id)):
            raise Forbidden("只有患者的随访责任医生或接诊医生可以查看")


def get_plan(uow: UnitOfWork, principal: Principal, plan_id: str) -> PlanView:
    with uow:
        plan = _plan(uow, plan_id)
        _ensure_plan_access(uow, principal, plan)
        return _plan_view(uow, plan)


def list_plans(uow: UnitOfWork, principal: Principal, *, patient_id: str | None = None, status: str | None = None,
               limit: int = 100) -> list[PlanView]:
    """Patients: their own; doctors and nurses: the plans they are responsible for; staff: all."""
    with uow:
        query = select(FollowupPlanRow).order_by(FollowupPlanRow.id.desc()).limit(limit)
        if principal.role is Role.PATIENT:
            query = query.join(PatientRow, PatientRow.id == FollowupPlanRow.patient_id).where(
                PatientRow.public_id == principal.patient_id)
        else:
            ensure_role(principal, READERS)
            if principal.role in (Role.DOCTOR, Role.NURSE):
                staff = _staff(uow, principal)
                query = query.where(FollowupPlanRow.doctor_id == (staff.id if staff else -1))
            if patient_id:
                query = query.join(PatientRow, PatientRow.id == FollowupPlanRow.patient_id).where(
                    PatientRow.public_id == patient_id)
        if status:
            query = query.where(FollowupPlanRow.status == status)
        return [_plan_view(uow, p) for p in uow.session.scalars(query)]


def list_steps(uow: UnitOfWork, principal: Principal, *, status: str | None = None,
               limit: int = 200) -> list[StepView]:
    ensure_role(principal, READERS)
    with uow:
        query = (select(FollowupStepRow, FollowupPlanRow.public_id)
                 .join(FollowupPlanRow, FollowupPlanRow.id == FollowupStepRow.plan_id)
                 .order_by(FollowupStepRow.due_at, FollowupStepRow.id).limit(limit))
        if status:
            query = query.where(FollowupStepRow.status == status)
        return [_step_view(uow, s, plan) for s, plan in uow.session.execute(query)]


def stop_plan(uow: UnitOfWork, principal: Principal, plan_id: str, reason: str) -> PlanView:
    """Stop a plan: its unsent steps are cancelled (a step being sent finishes)."""
    ensure_role(principal, PLANNERS)
    with uow:
        plan = _plan(uow, plan_id)
        _ensure_plan_access(uow, principal, plan)
        if plan.status != PlanStatus.ACTIVE.value:
            raise Conflict(f"随访计划 {plan_id} 已结束")
        plan.status, plan.stopped_at = PlanStatus.STOPPED.value, uow.clock.now()
        for step in uow.session.scalars(select(FollowupStepRow).where(
                FollowupStepRow.plan_id == plan.id,
                FollowupStepRow.status.in_([StepStatus.PENDING.value, StepStatus.FAILED.value]))):
            _move(step, StepAction.CANCEL)
        audit.record(uow, principal.actor, "followup.plan.stop", "followup_plan", plan.public_id,
                     reason=reason[:100])
        uow.session.flush()
        view = _plan_view(uow, plan)
        uow.commit()
    return view


def settle_unknown(uow: UnitOfWork, principal: Principal, step_id: str, *, delivered: bool) -> StepView:
    """Staff settle a step whose send outcome was unknown (from WeChat's records), never by resending."""
    ensure_role(principal, {Role.ADMIN, Role.OPERATIONS})
    with uow:
        row = uow.session.scalar(select(FollowupStepRow).where(FollowupStepRow.public_id == step_id))
        if row is None:
            raise NotFound(f"随访步骤 {step_id} 不存在")
        _move(row, StepAction.SETTLE_SENT if delivered else StepAction.SETTLE_FAILED)
        if delivered:
            row.sent_at = uow.clock.now()
        plan = uow.session.get_one(FollowupPlanRow, row.plan_id)
        audit.record(uow, principal.actor, "followup.step.settle", "followup_step", row.public_id,
                     delivered=delivered)
        uow.session.flush()
        view = _step_view(uow, row, plan.public_id)
        uow.commit()
    return view
