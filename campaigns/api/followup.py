"""Questionnaires and follow-up plans over HTTP.

Doctors define questionnaires and start plans for their patients; patients read their plans
and answer questionnaires (invalid answers are a problem+json naming the question in
``field``, e.g. ``answers.sbp``); the care team reads answers. Roles and ownership are checked
by the services; the routes only parse and call them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from campaigns.services import followup, questionnaires
from clinical_core.api.security import PrincipalDep, UowDep

router = APIRouter(prefix="/api/v1", tags=["follow-up"])


class QuestionnaireIn(BaseModel):
    title: str = Field(max_length=100)
    questions: list[dict[str, Any]] = Field(max_length=60)


class AnswersIn(BaseModel):
    answers: dict[str, Any]
    step_id: str | None = Field(default=None, max_length=40)


class StartIn(BaseModel):
    template: str = Field(max_length=40)
    patient_ids: list[str] = Field(min_length=1, max_length=1000)


class TemplateIn(BaseModel):
    code: str = Field(max_length=40)
    name: str = Field(max_length=100)
    steps: list[dict[str, Any]] = Field(max_length=50)
    trigger_event: str | None = None
    trigger_match: list[str] = Field(default_factory=list, max_length=20)


@router.post("/questionnaires", response_model=questionnaires.QuestionnaireView, status_code=201,
             summary="医生定义问卷")
def create_questionnaire(body: QuestionnaireIn, principal: PrincipalDep, uow: UowDep) -> Any:
    return questionnaires.create(uow, principal, body.model_dump())


@router.put("/questionnaires/{questionnaire_id}", response_model=questionnaires.QuestionnaireView,
            summary="修订问卷（已有答卷则生成新版本）")
def revise_questionnaire(questionnaire_id: str, body: QuestionnaireIn, principal: PrincipalDep, uow: UowDep) -> Any:
    return questionnaires.revise(uow, principal, questionnaire_id, body.model_dump())


@router.get("/questionnaires/{questionnaire_id}", response_model=questionnaires.QuestionnaireView,
            summary="问卷当前版本的题目")
def get_questionnaire(questionnaire_id: str, principal: PrincipalDep, uow: UowDep) -> Any:
    return questionnaires.get(uow, principal, questionnaire_id)


@router.post("/questionnaires/{questionnaire_id}/responses", response_model=questionnaires.ResponseView,
             status_code=201, summary="患者提交答卷")
def answer(questionnaire_id: str, body: AnswersIn, principal: PrincipalDep, uow: UowDep) -> Any:
    return questionnaires.submit(uow, principal, questionnaire_id, body.answers, step_id=body.step_id)


@router.get("/questionnaires/{questionnaire_id}/responses", response_model=list[questionnaires.ResponseView],
            summary="答卷（创建医生、随访责任医生、管理员；患者仅本人）")
def responses(questionnaire_id: str, principal: PrincipalDep, uow: UowDep,
              limit: int = Query(200, ge=1, le=2000)) -> Any:
    return questionnaires.list_responses(uow, principal, questionnaire_id, limit=limit)


@router.post("/followup/templates", response_model=followup.TemplateView, status_code=201,
             summary="随访计划模板")
def create_template(body: TemplateIn, principal: PrincipalDep, uow: UowDep) -> Any:
    return followup.create_template(uow, principal, body.code, body.name, body.steps,
                                    trigger_event=body.trigger_event, trigger_match=body.trigger_match)


@router.get("/followup/templates", response_model=list[followup.TemplateView], summary="随访计划模板列表")
def list_templates(principal: PrincipalDep, uow: UowDep) -> Any:
    return followup.list_templates(uow, principal)


@router.post("/followup/plans", response_model=list[followup.PlanView], status_code=201,
             summary="医生为一位或多位本人患者开启随访计划")
def start_plans(body: StartIn, request: Request, principal: PrincipalDep, uow: UowDep) -> Any:
    quiet = request.app.state.container.followup_quiet_hours
    return followup.start_plans(uow, principal, body.template, body.patient_ids, quiet_hours=quiet)


@router.get("/followup/plans", response_model=list[followup.PlanView],
            summary="随访计划（患者：本人；医生：本人负责的）")
def list_plans(principal: PrincipalDep, uow: UowDep, patient_id: str | None = None, status: str | None = None,
               limit: int = Query(100, ge=1, le=1000)) -> Any:
    return followup.list_plans(uow, principal, patient_id=patient_id, status=status, limit=limit)


@router.get("/followup/plans/{plan_id}", response_model=followup.PlanView, summary="随访计划详情")
def get_plan(plan_id: str, principal: PrincipalDep, uow: UowDep) -> Any:
    return followup.get_plan(uow, principal, plan_id)


@router.post("/followup/plans/{plan_id}/stop", response_model=followup.PlanView, summary="停止随访计划")
def stop_plan(plan_id: str, principal: PrincipalDep, uow: UowDep,
              reason: str = Query(..., max_length=100)) -> Any:
    return followup.stop_plan(uow, principal, plan_id, reason)
