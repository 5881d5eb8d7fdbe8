"""在线咨询 over HTTP: patients order and converse; doctors claim, transfer,
reply, read the HIS record and place masked calls; admins set services and
handle refunds and income. Roles and ownership are checked by the services;
the routes only parse and call them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from clinical_core.api.security import CallerDep, PrincipalDep, UowDep
from clinical_core.domain.consultation import ATTACHMENT_TYPES, ConsultStatus, MessageKind, PaymentState, ServiceKind
from clinical_core.ports.attachments import AttachmentStore
from clinical_core.ports.his import HisPort
from clinical_core.ports.payment import PaymentGateway
from clinical_core.ports.privacy_number import PrivacyNumberPort
from clinical_core.services import consult_ledger, consult_records, consult_settings, consultation
from clinical_core.services.consult_settings import ServiceSettings

router = APIRouter(prefix="/api/v1", tags=["consultations"])
MAX_UPLOAD = max(limit for types in ATTACHMENT_TYPES.values() for limit in types.values())


def _port(name: str) -> Any:
    async def dependency(request: Request) -> Any:  # no I/O: no threadpool hop
        return getattr(request.app.state, name)
    return dependency


PaymentsDep = Annotated[PaymentGateway, Depends(_port("payments"))]
StoreDep = Annotated[AttachmentStore, Depends(_port("attachments"))]
HisDep = Annotated[HisPort, Depends(_port("his"))]
NumbersDep = Annotated[PrivacyNumberPort, Depends(_port("privacy_numbers"))]
Views = list[consultation.ConsultationView]


class NewConsultation(BaseModel):
    service_id: str = Field(max_length=40)
    question: str = Field(max_length=4000)


class Reply(BaseModel):
    conclusion: str = Field(max_length=4000)


class Transfer(BaseModel):
    department_code: str = Field(max_length=20)


class Review(BaseModel):
    rating: int
    comment: str | None = Field(default=None, max_length=1000)


class ServiceSettingsIn(BaseModel):
    kind: ServiceKind
    price_fen: int
    enabled: bool = True
    doctor_id: str | None = None
    department_code: str | None = None
    name: str | None = None
    time_limit_minutes: int | None = None


class Team(BaseModel):
    staff_ids: list[str]


class RefundIn(BaseModel):
    amount_fen: int | None = None
    reason: str = Field(max_length=40)



# --- services ---


@router.get("/consult-services", response_model=list[consult_settings.ServiceView], summary="咨询服务列表")
def list_services(principal: PrincipalDep, uow: UowDep, kind: ServiceKind | None = None,
                  doctor_id: str | None = None) -> list[consult_settings.ServiceView]:
    return consult_settings.list_services(uow, principal, kind=kind, doctor_id=doctor_id)


@router.put("/consult-services", response_model=consult_settings.ServiceView, summary="设置咨询服务（管理员/医生本人）")
def configure_service(body: ServiceSettingsIn, principal: PrincipalDep, uow: UowDep) -> consult_settings.ServiceView:
    return consult_settings.configure_service(uow, principal, ServiceSettings(**body.model_dump()))


@router.put("/consult-services/{service_id}/team", response_model=consult_settings.ServiceView,
            summary="指定定点保障团队")
def appoint_team(service_id: str, body: Team, principal: PrincipalDep, uow: UowDep) -> consult_settings.ServiceView:
    return consult_settings.appoint_team(uow, principal, service_id, body.staff_ids)


# --- orders ---


@router.post("/consultations", response_model=consultation.CreatedConsultation, status_code=201, summary="患者下单")
async def create(body: NewConsultation, caller: CallerDep, payments: PaymentsDep) -> consultation.CreatedConsultation:
    # Hot routes are async and make one thread hop for the token check and the use case (``Caller``).
    return await caller.run(consultation.create_consultation, payments, body.service_id, body.question)


@router.post("/payments/wechat/notify", summary="微信支付结果通知（支付平台回调，签名校验）")
async def paid_notification(request: Request, uow: UowDep, payments: PaymentsDep) -> dict[str, str]:
    body = await request.body()
    await run_in_threadpool(consultation.handle_paid_notification, uow, payments, dict(request.headers), body)
    return {"code": "SUCCESS", "message": "成功"}


@router.get("/consultations", response_model=Views, summary="咨询订单（患者：本人；管理：全部）")
def list_orders(principal: PrincipalDep, uow: UowDep, status: ConsultStatus | None = None,
                payment: PaymentState | None = None, limit: int = Query(50, ge=1, le=500),
                offset: int = Query(0, ge=0)) -> Views:
    return consultation.list_consultations(uow, principal, status=status, payment=payment, limit=limit,
                                           offset=offset)


@router.get("/consultations/{consultation_id}", response_model=consultation.ConsultationDetail,
            summary="咨询详情与消息（患者本人、接诊医生）")
def detail(consultation_id: str, principal: PrincipalDep, uow: UowDep) -> consultation.ConsultationDetail:
    return consultation.get_consultation(uow, principal, consultation_id)


@router.post("/consultations/{consultation_id}/cancel", response_model=consultation.ConsultationView,
             summary="取消未支付订单")
def cancel(consultation_id: str, principal: PrincipalDep, uow: UowDep) -> consultation.ConsultationView:
    return consultation.cancel_consultation(uow, principal, consultation_id)


@router.post("/consultations/{consultation_id}/messages", response_model=consultation.MessageView, status_code=201,
             summary="发送消息（文字、图片、语音）")
async def post_message(
    consultation_id: str, caller: CallerDep, store: StoreDep,
    kind: Annotated[MessageKind, Form()], text: Annotated[str | None, Form()] = None,
    file: Annotated[UploadFile | None, File()] = None,
) -> consultation.MessageView:
    data = await file.read(MAX_UPLOAD + 1) if file is not None else None
    # The token check and the service's blocking database work: one hop off the event loop.
    return await caller.run(consultation.post_message, store, consultation_id, kind, text, data)


@router.get("/consultations/{consultation_id}/messages/{message_id}/attachment", summary="消息附件")
def attachment(consultation_id: str, message_id: str, principal: PrincipalDep, uow: UowDep,
               store: StoreDep) -> Response:
    mime, data = consultation.read_attachment(uow, principal, store, consultation_id, message_id)
    return Response(data, media_type=mime, headers={"Cache-Control": "private, no-store"})


@router.post("/consultations/{consultation_id}/close", response_model=consultation.ConsultationView,
             summary="结束咨询")
def close(consultation_id: str, principal: PrincipalDep, uow: UowDep) -> consultation.ConsultationView:
    return consultation.close_consultation(uow, principal, consultation_id)


@router.post("/consultations/{consultation_id}/review", response_model=consultation.ConsultationView,
             summary="患者评价")
def review(consultation_id: str, body: Review, principal: PrincipalDep, uow: UowDep) -> consultation.ConsultationView:
    return consultation.review_consultation(uow, principal, consultation_id, body.rating, body.comment)


# --- doctor ---


@router.get("/doctor/todo", response_model=Views, summary="医生待办（个人/科室模式）")
def todo(principal: PrincipalDep, uow: UowDep, mode: str = "personal") -> Views:
    return consultation.doctor_todo(uow, principal, mode)


@router.post("/consultations/{consultation_id}/claim", response_model=consultation.ConsultationView, summary="接诊")
async def claim(consultation_id: str, caller: CallerDep) -> consultation.ConsultationView:
    return await caller.run(consultation.claim_consultation, consultation_id)


@router.post("/consultations/{consultation_id}/transfer", response_model=consultation.ConsultationView,
             summary="转科")
def transfer(consultation_id: str, body: Transfer, principal: PrincipalDep,
             uow: UowDep) -> consultation.ConsultationView:
    return consultation.transfer_consultation(uow, principal, consultation_id, body.department_code)


@router.post("/consultations/{consultation_id}/reply", response_model=consultation.ConsultationView,
             summary="医生回复（处理意见）")
async def reply(consultation_id: str, body: Reply, caller: CallerDep) -> consultation.ConsultationView:
    return await caller.run(consultation.reply_consultation, consultation_id, body.conclusion)


@router.get("/me/health-record", response_model=consult_records.HealthRecord,
            summary="本人健康档案：线下就诊、检验与检查报告（患者；来自 HIS，留痕）")
def my_health_record(principal: PrincipalDep, uow: UowDep, his: HisDep) -> consult_records.HealthRecord:
    return consult_records.my_health_record(uow, principal, his)


@router.get("/consultations/{consultation_id}/health-record", response_model=consult_records.HealthRecord,
            summary="患者健康档案（来自 HIS，留痕）")
def health_record(consultation_id: str, principal: PrincipalDep, uow: UowDep,
                  his: HisDep) -> consult_records.HealthRecord:
    return consult_records.health_record(uow, principal, his, consultation_id)


@router.post("/consultations/{consultation_id}/masked-call", response_model=consult_records.MaskedCall,
             summary="发起隐号电话")
def masked_call(consultation_id: str, principal: PrincipalDep, uow: UowDep,
                numbers: NumbersDep) -> consult_records.MaskedCall:
    return consult_records.start_masked_call(uow, principal, numbers, consultation_id)


# --- admin ---


@router.post("/consultations/{consultation_id}/refunds", response_model=consult_ledger.RefundView, status_code=201,
             summary="发起退款（管理员）")
def refund(consultation_id: str, body: RefundIn, principal: PrincipalDep, uow: UowDep) -> consult_ledger.RefundView:
    return consult_ledger.request_refund(uow, principal, consultation_id, body.amount_fen, body.reason)


@router.get("/consult-refunds", response_model=list[consult_ledger.RefundView], summary="退款记录")
def refunds(principal: PrincipalDep, uow: UowDep, status: str | None = None) -> list[consult_ledger.RefundView]:
    return consult_ledger.list_refunds(uow, principal, status=status)


@router.get("/consult-statistics", response_model=list[consult_ledger.DoctorStats], summary="医生统计与收支")
def statistics(principal: PrincipalDep, uow: UowDep, since: datetime | None = None,
           until: datetime | None = None) -> list[consult_ledger.DoctorStats]:
    return consult_ledger.doctor_statistics(uow, principal, since=since, until=until)


