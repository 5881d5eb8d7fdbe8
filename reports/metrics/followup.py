"""随访管理: follow-up plans, their steps and questionnaire responses (``campaigns.persistence.followup``).

A plan, its steps and the answers belong to the plan's responsible doctor and that doctor's
department. Steps count when WeChat accepted them (``sent_at``); failed steps at their due time.
Response rate = questionnaire steps answered / questionnaire steps sent, at the sending (an
answer given after the period still counts for the step's period). Responses count at
submission, including those given outside a plan (attributed to the questionnaire's owner).
"""

from __future__ import annotations

from sqlalchemy import Integer, Select, case, cast, literal, select
from sqlalchemy.orm import aliased

from campaigns.persistence.followup import (
    FollowupPlanRow,
    FollowupStepRow,
    QuestionnaireResponseRow,
    QuestionnaireRow,
)
from clinical_core.persistence.models import DepartmentRow, StaffRow
from reports.metrics.registry import Agg, Metric, Unit, register

FOLLOWUP = "随访管理"
DIMS = ("department", "doctor")


def _steps(*extra: object) -> Select:
    doctor, dept = aliased(StaffRow), aliased(DepartmentRow)
    return (select(dept.code.label("department"), doctor.name.label("doctor"), *extra)
            .select_from(FollowupStepRow).join(FollowupPlanRow, FollowupPlanRow.id == FollowupStepRow.plan_id)
            .outerjoin(doctor, doctor.id == FollowupPlanRow.doctor_id)
            .outerjoin(dept, dept.id == doctor.department_id))


register(Metric(
    "followup_plans_started", "新建随访计划", Unit.COUNT, FOLLOWUP, Agg.COUNT,
    lambda: (select(FollowupPlanRow.started_at.label("at"), literal(1).label("value"),
                    DepartmentRow.code.label("department"), StaffRow.name.label("doctor"))
             .select_from(FollowupPlanRow).outerjoin(StaffRow, StaffRow.id == FollowupPlanRow.doctor_id)
             .outerjoin(DepartmentRow, DepartmentRow.id == StaffRow.department_id)),
    DIMS, better="up", unit_label="个",
    action="为出院和处方发药后的常见病种配置自动随访模板，由事件自动建立随访计划"))

register(Metric(
    "followup_steps_sent", "随访消息发出", Unit.COUNT, FOLLOWUP, Agg.COUNT,
    lambda: _steps(FollowupStepRow.sent_at.label("at"), literal(1).label("value"))
    .where(FollowupStepRow.status == "sent", FollowupStepRow.sent_at.is_not(None)),
    DIMS, better="up", unit_label="条",
    action="检查随访模板的节点设置，确保术后第 1、7、30 天等关键节点都有随访消息"))

register(Metric(
    "followup_steps_failed", "随访消息发送失败", Unit.COUNT, FOLLOWUP, Agg.COUNT,
    lambda: _steps(FollowupStepRow.due_at.label("at"), literal(1).label("value"))
    .where(FollowupStepRow.status == "failed"),
    DIMS, better="down", unit_label="条",
    action="发送失败多为患者取关或未绑定公众号：由随访护士电话补随访，并引导患者重新关注"))

register(Metric(
    "questionnaire_responses", "随访问卷回收", Unit.COUNT, FOLLOWUP, Agg.COUNT,
    lambda: (select(QuestionnaireResponseRow.submitted_at.label("at"), literal(1).label("value"),
                    DepartmentRow.code.label("department"), StaffRow.name.label("doctor"))
             .select_from(QuestionnaireResponseRow)
             .join(QuestionnaireRow, QuestionnaireRow.id == QuestionnaireResponseRow.questionnaire_id)
             .join(StaffRow, StaffRow.id == QuestionnaireRow.owner_id)
             .outerjoin(DepartmentRow, DepartmentRow.id == StaffRow.department_id)),
    DIMS, better="up", unit_label="份",
    action="问卷控制在 10 题以内，推送时写明用途和预计用时，未填写的 3 天后再提醒一次"))

register(Metric(
    "questionnaire_response_rate", "随访问卷回收率", Unit.RATIO, FOLLOWUP, Agg.RATIO,
    lambda: _steps(FollowupStepRow.sent_at.label("at"),
                   cast(case((FollowupStepRow.answered_at.is_not(None), 1), else_=0), Integer).label("value"),
                   literal(1).label("den"))
    .where(FollowupStepRow.kind == "questionnaire", FollowupStepRow.status == "sent",
           FollowupStepRow.sent_at.is_not(None)),
    DIMS, better="up", min_base=20,
    action="回收率低的问卷精简题目，改在患者复诊提醒中一并推送，并由随访护士电话补充"))

