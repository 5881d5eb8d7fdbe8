"""Follow-up plans: templates, plans started by doctors or by clinical events, and delivery.

- ``start_from_events`` (a job) reads prescriptions dispensed and consultations completed since
  its cursor and starts the matching templates' plans. Reading the clinical tables (rather than
  a hook inside the clinical services) means no event is lost when a process dies between the
  clinical commit and the follow-up start; the plans' unique (template, source, event) makes a
  re-read harmless.
- ``deliver_due`` (a job) puts each due step into the push delivery ledger as one row (unique
  per step) of a one-row push, in the same transaction that moves the step ``pending →
  sending``; ``opsctl push worker`` delivers it like any push row (claim committed before the
  call, retries, quiet hours, opt-outs, the frequency cap counted over all ledger rows, and
  ``unknown`` settled from WeChat's job-finished events, never resent blindly).
  ``sync_from_ledger`` moves each step with its row (sent / failed / unknown / withdrawn). No
  step is queued in quiet hours (21:00–08:00 Asia/Shanghai unless configured).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update

from campaigns.domain.followup import (
    SENDING_TIMEOUT,
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
    template_data,
)
from campaigns.domain.pushes import (
    DeliveryState,
    FrequencyCap,
    PushKind,
    PushStatus,
    delivery_from,
    delivery_to,
    push_transition,
)
from campaigns.persistence.followup import (
    FollowupCursorRow,
    FollowupPlanRow,
    FollowupStepRow,
    FollowupTemplateRow,
    QuestionnaireRow,
)
from campaigns.persistence.pushes import DeliveryRow, PushRow
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
FOLLOWUP_PURPOSE = "followup"  # pushes.purpose of a step's one-row push
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
    queued: int  # steps put into the push delivery ledger by this run
    sent: int  # steps whose ledger row was delivered since the last run
    failed: int
    unknown: int
    deferred_quiet: int  # due, but now is within quiet hours
    deferred_cap: int  # due, but the patient reached the push frequency cap: moved a day later
    stale_unknown: int  # left "sending" without a ledger row by an earlier direct sender: unknown, never resent
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


@dataclass(frozen=True, slots=True)
class Channel:
    """How due steps enter the push delivery ledger: the WeChat template they are sent as, the
    public base URL of their links, and the push frequency cap (the same rule as pushes)."""

    template_id: str
    public_base_url: str
    cap: FrequencyCap | None = None


def _message(uow: UnitOfWork, row: FollowupStepRow, openid: str) -> OutboundMessage:
    url = row.url
    if row.kind == StepKind.QUESTIONNAIRE.value and row.questionnaire_id is not None:
        q = uow.session.get_one(QuestionnaireRow, row.questionnaire_id)
        url = f"/h5/questionnaires/{q.public_id}?step={row.public_id}"
    return OutboundMessage(row.public_id, openid, StepKind(row.kind), row.title, row.body, url, row.due_at)


def _queue(uow: UnitOfWork, row: FollowupStepRow, message: OutboundMessage, patient_id: int, channel: Channel,
           now: datetime) -> None:
    """One step → one push of one ledger row (``followup_step_id`` unique: never a second row)."""
    url = message.url
    if url and url.startswith("/"):
        url = channel.public_base_url.rstrip("/") + url
    data = {k: v["value"] for k, v in template_data(message).items()}
    push = PushRow(public_id=new_public_id("push"), name=f"随访 {row.public_id}"[:80], kind=PushKind.TEMPLATE,
                   status=push_transition(push_transition(PushStatus.DRAFT, "schedule"), "dispatch"),
                   purpose=FOLLOWUP_PURPOSE, variants={"A": {"template_id": channel.template_id, "data": data,
                                                             "url": url}},
                   weights={"A": 100}, scheduled_at=now, dispatched_at=now, audience_size=1, created_at=now,
                   created_by=JOB_ACTOR)
    uow.session.add(push)
    uow.session.flush()
    uow.session.add(DeliveryRow(push_id=push.id, openid=message.openid, patient_id=patient_id, variant="A",
                                state=DeliveryState.PENDING, attempts=0, next_attempt_at=now, created_at=now,
                                followup_step_id=row.id))


def deliver_due(uow: UnitOfWork, now: datetime, channel: Channel, *, batch: int = 200,
                quiet_hours: str = "21:00-08:00", dry_run: bool = False) -> DeliveryResult:
    """A job: put the steps due at ``now`` into the push delivery ledger, where ``opsctl push worker``
    delivers them (claim committed before the call, retries, quiet hours, opt-outs, settling from
    WeChat's job-finished events), and bring the steps already queued up to their ledger rows.
    Idempotent and safe to run concurrently (SKIP LOCKED; one ledger row per step)."""
    quiet = QuietHours.parse(quiet_hours)
    stale = 0
    if not dry_run:
        stale = _lost_without_ledger(uow, now)
        synced = sync_from_ledger(uow)
    else:
        synced = Synced(0, 0, 0)
    if quiet.contains(now):
        with uow:
            waiting = uow.session.scalar(select(func.count()).select_from(_due_query(now, batch).subquery())) or 0
        return DeliveryResult(0, synced.sent, synced.failed, synced.unknown, waiting, 0, stale)
    if dry_run:
        with uow:
            return DeliveryResult(0, 0, 0, 0, 0, 0, 0, tuple(r.public_id for r in uow.session.scalars(
                _due_query(now, batch))))
    queued = refused = capped = 0
    plans: set[int] = set()
    with uow:
        rows = list(uow.session.execute(
            _due_query(now, batch).add_columns(PatientRow.id, PatientRow.openid)
            .join(PatientRow, PatientRow.id == FollowupPlanRow.patient_id)
            .with_for_update(skip_locked=True, of=FollowupStepRow)).all())
        openids = sorted({o for _, _, o in rows if o})
        recent = _recent_pushes(uow, openids, now - timedelta(days=channel.cap.days)) \
            if channel.cap is not None and openids else {}
        for row, patient_pk, openid in rows:
            if not openid:  # nothing to send to: failed without a ledger row or a call
                _move(row, StepAction.CLAIM)
                _move(row, StepAction.REFUSED)
                row.attempts += 1
                row.last_error = "患者未关注公众号或未绑定，无法发送"
                plans.add(row.plan_id)
                refused += 1
                continue
            if channel.cap is not None and not channel.cap.allows(recent.get(openid, 0)):
                row.due_at = quiet.next_allowed(row.due_at + timedelta(days=1))  # the push cap: a day later
                row.last_error = "已达推送频次上限，顺延一天"
                capped += 1
                continue
            _queue(uow, row, _message(uow, row, openid), patient_pk, channel, now)
            _move(row, StepAction.CLAIM)
            row.attempts += 1
            row.sending_at, row.last_error = now, None
            recent[openid] = recent.get(openid, 0) + 1
            queued += 1
        if rows:
            audit.record(uow, JOB_ACTOR, "followup.queue", "followup_step", "*", queued=queued, failed=refused,
                         deferred_cap=capped)
        uow.commit()
    if plans:
        _complete_finished(uow, plans, now)
    return DeliveryResult(queued, synced.sent, synced.failed + refused, synced.unknown, 0, capped, stale)


def _recent_pushes(uow: UnitOfWork, openids: list[str], since: datetime) -> dict[str, int]:
    from campaigns.services.pushes import allocated_counts

    return allocated_counts(uow, openids, since, None)


def _lost_without_ledger(uow: UnitOfWork, now: datetime) -> int:
    """Steps left ``sending`` by the direct sender of earlier versions (no ledger row) become
    ``unknown`` after the timeout: their outcome is unknown, never resent."""
    stale = 0
    with uow:
        has_row = select(DeliveryRow.id).where(DeliveryRow.followup_step_id == FollowupStepRow.id).exists()
        for row in uow.session.scalars(select(FollowupStepRow).where(
                FollowupStepRow.status == StepStatus.SENDING.value, ~has_row,
                FollowupStepRow.sending_at < now - SENDING_TIMEOUT).with_for_update(skip_locked=True)):
            _move(row, StepAction.LOST)
            row.last_error = "发送进程中断，结果未知"
            stale += 1
        uow.commit()
    return stale


@dataclass(frozen=True, slots=True)
class Synced:
    sent: int
    failed: int
    unknown: int


_LEDGER_LABEL = {"opt_out": "患者已退订推送", "no_answer": "微信无应答，消息可能已送达",
                 "worker_lost": "发送进程中断，结果未知", "unconfirmed": "微信未确认送达"}


def sync_from_ledger(uow: UnitOfWork) -> Synced:
    """Each queued step follows its ledger row: sent / failed (refused, opted out, gave up) /
    unknown (no answer, worker lost) — and an unknown step is settled when the ledger settles
    its row from WeChat's job-finished event. Run by the follow-up job, the push worker after a
    batch with follow-up rows, and the push settle job."""
    sent = failed = unknown = 0
    plans: set[int] = set()
    with uow:
        q = (select(FollowupStepRow, DeliveryRow)
             .join(DeliveryRow, DeliveryRow.followup_step_id == FollowupStepRow.id)
             .where(FollowupStepRow.status.in_([StepStatus.SENDING.value, StepStatus.UNKNOWN.value]),
                    DeliveryRow.state.in_([DeliveryState.SENT, DeliveryState.FAILED, DeliveryState.UNKNOWN,
                                           DeliveryState.SKIPPED, DeliveryState.CANCELLED]))
             .order_by(FollowupStepRow.id).with_for_update(skip_locked=True, of=FollowupStepRow))
        for step, row in uow.session.execute(q).all():
            sending = step.status == StepStatus.SENDING.value
            if row.state == DeliveryState.SENT:
                _move(step, StepAction.SENT if sending else StepAction.SETTLE_SENT)
                step.sent_at, step.message_id, step.last_error = row.sent_at, row.msgid, None
                sent += 1
            elif row.state == DeliveryState.UNKNOWN:
                if not sending:
                    continue
                _move(step, StepAction.LOST)
                step.last_error = _LEDGER_LABEL.get(row.error or "", "结果未知")
                unknown += 1
            elif row.state == DeliveryState.CANCELLED:
                if not sending:
                    continue
                _move(step, StepAction.WITHDRAW)
            else:  # failed, or skipped (opted out since queued)
                _move(step, StepAction.REFUSED if sending else StepAction.SETTLE_FAILED)
                step.message_id = row.msgid
                step.last_error = _LEDGER_LABEL.get(row.error or "", f"微信拒绝发送（{row.error}）")[:200]
                failed += 1
            plans.add(step.plan_id)
        uow.commit()
    if plans:
        _complete_finished(uow, plans, datetime.min)
    return Synced(sent, failed, unknown)


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
        for step in uow.session.scalars(select(FollowupStepRow).where(
                FollowupStepRow.plan_id == plan.id, FollowupStepRow.status == StepStatus.SENDING.value)):
            # queued but not yet claimed by a push worker: withdrawn (a claimed row finishes: no recall)
            withdrawn = uow.session.execute(update(DeliveryRow).where(
                DeliveryRow.followup_step_id == step.id,
                DeliveryRow.state.in_([s.value for s in delivery_from("cancel")]))
                .values(state=delivery_to("cancel")).execution_options(synchronize_session=False))
            if withdrawn.rowcount == 1:
                _move(step, StepAction.WITHDRAW)
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
        # its ledger row is settled the same way, so neither the ledger nor a worker sends it again
        uow.session.execute(update(DeliveryRow).where(
            DeliveryRow.followup_step_id == row.id, DeliveryRow.state == DeliveryState.UNKNOWN)
            .values(state=delivery_to("sent" if delivered else "failed"), error=None if delivered else "settled_by_staff")
            .execution_options(synchronize_session=False))
        plan = uow.session.get_one(FollowupPlanRow, row.plan_id)
        audit.record(uow, principal.actor, "followup.step.settle", "followup_step", row.public_id,
                     delivered=delivered)
        uow.session.flush()
        view = _step_view(uow, row, plan.public_id)
        uow.commit()
    return view
