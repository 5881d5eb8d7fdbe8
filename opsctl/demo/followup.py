"""Demo step: a month of follow-up plans and questionnaires, driven by the job scheduler.

A cardiologist defines a hypertension questionnaire and a plan template (day 3 questionnaire,
day 7 medication message, day 14 diet course, day 30 reminder to book a follow-up visit), started
automatically for every dispensed prescription with a hypertension diagnosis, and by the doctor
for a few of his own patients. The scheduler's registry then runs every due job over the
simulated month (three ticks a day): follow-up starts, due steps queued into the push delivery
ledger and delivered by the push worker through the WeChat sandbox (template messages), consultation expiry, refunds, the callback inbox. Patients answer most
questionnaires; the answers are exported to Excel with names masked.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from campaigns.adapters.push_sender import WeChatPushSender
from campaigns.domain.followup import QuietHours
from campaigns.domain.pushes import QuietHours as PushQuietHours
from campaigns.persistence.followup import (
    FollowupPlanRow,
    FollowupStepRow,
    QuestionnaireRow,
)
from campaigns.persistence.pushes import DeliveryRow
from campaigns.services import delivery, followup, questionnaires
from campaigns.services.render import make_renderer
from clinical_core.domain.access import Principal
from clinical_core.domain.errors import DomainError, InvalidInput
from clinical_core.domain.staff import Role
from clinical_core.domain.time import SHANGHAI
from clinical_core.persistence import models as m
from clinical_core.persistence.consultation import ConsultationRow
from clinical_core.persistence.prescription import PrescriptionRow
from jobs.persistence.models import JobRunRow
from jobs.scheduler import Scheduler

if TYPE_CHECKING:
    from opsctl.demo.context import DemoContext

ADMIN = Principal(account_id="demo:admin", username="demo-admin", role=Role.ADMIN)
TICKS = (time(8, 5), time(14, 0), time(22, 0))  # local; 22:00 is quiet
BP_QUESTIONNAIRE = {"title": "高血压随访问卷", "questions": [
    {"key": "sbp", "kind": "number", "title": "最近一次收缩压", "min": 60, "max": 260, "unit": "mmHg"},
    {"key": "dbp", "kind": "number", "title": "最近一次舒张压", "min": 30, "max": 160, "unit": "mmHg"},
    {"key": "dizzy", "kind": "single", "title": "近一周是否头晕", "options": ["否", "偶尔", "经常"]},
    {"key": "drugs", "kind": "multiple", "title": "正在服用的降压药", "options": ["氨氯地平", "缬沙坦", "其他", "未服药"]},
    {"key": "note", "kind": "text", "title": "其他想告诉医生的情况", "required": False, "max_length": 200},
]}


VISIT_QUESTIONNAIRE = {"title": "问诊回访问卷", "questions": [
    {"key": "better", "kind": "single", "title": "症状是否缓解", "options": ["明显缓解", "略有缓解", "没有变化", "加重"]},
    {"key": "score", "kind": "number", "title": "对本次问诊的满意度（1-5 分）", "min": 1, "max": 5},
    {"key": "advice", "kind": "text", "title": "意见和建议", "required": False, "max_length": 200},
]}


def _bp_answers(rng: random.Random) -> tuple[dict[str, object], str]:
    return ({"sbp": rng.randint(112, 168), "dbp": rng.randint(68, 104), "dizzy": rng.choice(["否", "否", "偶尔", "经常"]),
             "drugs": rng.sample(["氨氯地平", "缬沙坦", "其他"], rng.randint(1, 2))}, "sbp")


def _visit_answers(rng: random.Random) -> tuple[dict[str, object], str]:
    return ({"better": rng.choice(["明显缓解", "明显缓解", "略有缓解", "没有变化"]), "score": rng.choice([5, 5, 4, 4, 3])},
            "score")


def _steps(qid: str) -> list[dict[str, object]]:
    return [
        {"day": 3, "at": "10:00", "kind": "questionnaire", "title": "高血压随访问卷", "questionnaire_id": qid},
        {"day": 7, "at": "09:00", "kind": "text", "title": "用药提醒", "body": "请按时服药，早晚各测一次血压"},
        {"day": 14, "at": "21:30", "kind": "course", "title": "低盐饮食微课", "url": "/lectures/low-salt"},
        {"day": 30, "at": "10:00", "kind": "schedule", "title": "请预约复诊", "url": "/h5/booking?dept=CARD"},
    ]


def step_followup(ctx: DemoContext) -> None:
    """A month of follow-up plans and questionnaires, every due job run by the scheduler's registry."""
    c, clock, rng = ctx.container, ctx.clock, ctx.rng
    uow = c.uow
    start = datetime.combine(ctx.plan.start, time(8), tzinfo=SHANGHAI).astimezone(UTC)
    clock.current = start
    with uow() as u:
        prescriber = u.session.scalar(select(m.StaffRow.public_id).join(
            PrescriptionRow, PrescriptionRow.doctor_id == m.StaffRow.id).order_by(PrescriptionRow.id).limit(1))
        if prescriber is None:
            prescriber = u.session.scalar(select(m.StaffRow.public_id).where(m.StaffRow.role == "doctor").limit(1))
        own_patients = list(u.session.scalars(select(m.PatientRow.public_id).join(
            ConsultationRow, ConsultationRow.patient_id == m.PatientRow.id).join(
            m.StaffRow, m.StaffRow.id == ConsultationRow.doctor_id).where(m.StaffRow.public_id == prescriber)
            .distinct().limit(20)))
        openids = list(u.session.scalars(select(m.PatientRow.openid).where(m.PatientRow.openid.is_not(None))))
    if prescriber is None:
        ctx.add("随访计划", 0, "演示数据中没有医生")
        return
    doctor = Principal(f"demo:{prescriber}", prescriber, Role.DOCTOR, staff_id=prescriber)
    q = questionnaires.create(uow(), doctor, BP_QUESTIONNAIRE)
    followup.create_template(uow(), doctor, "hypertension", "高血压随访", _steps(q.questionnaire_id),
                             trigger_event="rx_dispensed", trigger_match=["I10", "高血压"])
    visit = questionnaires.create(uow(), doctor, VISIT_QUESTIONNAIRE)
    followup.create_template(uow(), doctor, "after-consult", "问诊后回访", [
        {"day": 2, "at": "10:30", "kind": "questionnaire", "title": "问诊回访",
         "questionnaire_id": visit.questionnaire_id},
        {"day": 5, "at": "10:30", "kind": "text", "title": "用药提醒", "body": "用药后如有不适请及时复诊"}],
        trigger_event="consult_closed")
    forms = {q.questionnaire_id: _bp_answers, visit.questionnaire_id: _visit_answers}
    by_doctor = followup.start_plans(uow(), doctor, "hypertension", own_patients) if own_patients else []

    sandbox = c.sandbox.wechat  # the container's sandbox: follow-up messages arrive here
    for openid in openids:
        if rng.random() < 0.9:  # a few patients have unfollowed since binding: WeChat refuses (43004)
            sandbox.user_follows(openid)
    scheduler = Scheduler(c.engine, c, holder="demo-scheduler")
    scheduler.ensure_defaults()
    # the job queues due steps into the push delivery ledger; the push worker (`opsctl push worker`)
    # delivers them to the sandbox under the same quiet hours, cap, opt-outs and retries as pushes
    sender = WeChatPushSender(c.wechat)
    render = make_renderer(c.settings.http.public_base_url)
    worker_rules = delivery.Rules(quiet=PushQuietHours.parse(c.settings.push.quiet_hours), retry_delays=(0, 0, 0, 0))
    answered = refused = worker_calls = 0
    for offset in range(ctx.plan.days + 31):  # the month, and the month its last plans need
        day = ctx.plan.start + timedelta(days=offset)
        for tick in TICKS:
            clock.current = datetime.combine(day, tick, tzinfo=SHANGHAI).astimezone(UTC)
            scheduler.tick()
            worker_calls += delivery.run_worker(uow, sender, render, rules=worker_rules, until_idle=True,
                                                sleep=lambda _s: None, concurrency=2).calls
        # the evening: patients answer the questionnaires sent to them today
        with uow() as u:
            todays = u.session.execute(select(FollowupStepRow.public_id, m.PatientRow.public_id,
                                              QuestionnaireRow.public_id).join(
                QuestionnaireRow, QuestionnaireRow.id == FollowupStepRow.questionnaire_id).join(
                FollowupPlanRow, FollowupPlanRow.id == FollowupStepRow.plan_id).join(
                m.PatientRow, m.PatientRow.id == FollowupPlanRow.patient_id).where(
                FollowupStepRow.kind == "questionnaire", FollowupStepRow.status == "sent",
                FollowupStepRow.answered_at.is_(None),
                FollowupStepRow.sent_at > clock.now() - timedelta(days=1))).all()
        for step_id, patient_id, qid in todays:
            if rng.random() > 0.75:
                continue
            patient = Principal(f"demo:{patient_id}", patient_id, Role.PATIENT, patient_id=patient_id)
            answers, number = forms[qid](rng)
            if rng.random() < 0.1:  # a typo first: 1350 instead of 135, 55 instead of 5
                try:
                    questionnaires.submit(uow(), patient, qid, {**answers, number: int(answers[number]) * 11},  # type: ignore[call-overload]
                                          step_id=step_id)
                except InvalidInput:
                    refused += 1
            try:
                questionnaires.submit(uow(), patient, qid, answers, step_id=step_id)
                answered += 1
            except DomainError:
                pass
        if offset == ctx.plan.days + 30:
            break
    export = questionnaires.export_xlsx(uow(), doctor, visit.questionnaire_id,
                                        c.settings.data_dir / "demo" / "followup-answers.xlsx")

    with uow() as u:
        sources = Counter(u.session.scalars(select(FollowupPlanRow.source)))
        statuses = Counter(u.session.scalars(select(FollowupStepRow.status)))
        sent_times = list(u.session.scalars(select(FollowupStepRow.sent_at).where(FollowupStepRow.sent_at.is_not(None))))
        runs = Counter(u.session.scalars(select(JobRunRow.status)))
        jobs_run = u.session.scalar(select(func.count(func.distinct(JobRunRow.job_name))))
    quiet = QuietHours.parse(c.followup_quiet_hours)
    in_quiet = sum(quiet.contains(t) for t in sent_times)
    # the sandbox also receives the pushes' and the video clinic's template messages: count ours
    delivered = sum(1 for m in sandbox.template_sent
                    if str(m.get("data", {}).get("first", {}).get("value", "")).startswith("随访提醒"))
    ctx.add("随访计划", sum(sources.values()),
            f"发药自动开启 {sources.get('rx_dispensed', 0)}、问诊完成后 {sources.get('consult_closed', 0)}、"
            f"医生手动 {len(by_doctor)}")
    ctx.add("随访步骤", sum(statuses.values()),
            "；".join(f"{k} {v}" for k, v in sorted(statuses.items())) + "（失败多为未关注公众号的患者）")
    with uow() as u:
        ledger = Counter(u.session.scalars(select(DeliveryRow.state).where(DeliveryRow.followup_step_id.is_not(None))))
    ctx.add("随访消息送达（沙箱）", delivered,
            f"经推送投递台账（{'；'.join(f'{k} {v}' for k, v in sorted(ledger.items()))}），push worker 调用 "
            f"{worker_calls} 次；免打扰时段内发送 {in_quiet} 条；重复发送 {delivered - statuses.get('sent', 0)} 条")
    ctx.add("问卷答卷", answered, f"填写错误被拒并指明题目 {refused} 次；导出 {export.responses} 份到 {export.path}（姓名脱敏）")
    ctx.add("定时任务运行", sum(runs.values()),
            f"{jobs_run} 个任务；" + "；".join(f"{k} {v}" for k, v in sorted(runs.items())) +
            "（模拟月每天调度 3 次，错过容错时间的触发记为 missed）")
