"""网络门诊 over HTTP: patients see the schedules, book (with the follow-up
evidence), pay, check in and join the room; doctors confirm or stop, run the
call, write the record and prescribe; administrators publish and import
schedules and set the follow-up check mode. Roles and ownership are checked
by the services; the routes only parse and call them."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field

from clinical_core.adapters.video_schedule_excel import read_schedule
from clinical_core.api.security import PrincipalDep, UowDep
from clinical_core.domain.access import ensure_role
from clinical_core.domain.errors import InvalidInput
from clinical_core.domain.video_schedule import ScheduleRejected
from clinical_core.domain.video_visit import (
    MAX_DOCUMENT_BYTES,
    MAX_DOCUMENTS,
    CheckMode,
    Diagnosis,
    EndReason,
    VisitStatus,
)
from clinical_core.ports.attachments import AttachmentStore
from clinical_core.ports.his import HisPort
from clinical_core.ports.his_schedule import HisSchedulePort
from clinical_core.ports.payment import PaymentGateway
from clinical_core.ports.signer import Signer
from clinical_core.ports.video_room import RoomToken, VideoRoomPort
from clinical_core.services import (
    prescriptions,
    video_booking,
    video_records,
    video_schedule,
    video_settings,
    video_visits,
)

router = APIRouter(prefix="/api/v1", tags=["video-clinic"])
V = "/video/visits/{visit_id}"


def _port(name: str) -> Any:
    def dependency(request: Request) -> Any:
        return getattr(request.app.state, name)
    return dependency


PaymentsDep = Annotated[PaymentGateway, Depends(_port("payments"))]
StoreDep = Annotated[AttachmentStore, Depends(_port("attachments"))]
HisDep = Annotated[HisPort, Depends(_port("his"))]
HisScheduleDep = Annotated[HisSchedulePort, Depends(_port("his_schedule"))]
RoomsDep = Annotated[VideoRoomPort, Depends(_port("video_rooms"))]
SignerDep = Annotated[Signer, Depends(_port("signer"))]


class SessionIn(BaseModel):
    doctor_id: str = Field(max_length=40)
    starts_at: datetime
    ends_at: datetime
    slot_minutes: int
    price_fen: int


class CheckModeIn(BaseModel):
    check_mode: CheckMode
    department_code: str | None = Field(default=None, max_length=20)
    lookback_days: int = 365


class GuestIn(BaseModel):
    relation: str = Field(max_length=10)


class DiagnosisIn(BaseModel):
    code: str = Field(max_length=16)
    name: str = Field(max_length=60)


class ConfirmIn(BaseModel):
    diagnoses: list[DiagnosisIn] = Field(max_length=10)


class TerminateIn(BaseModel):
    reason: EndReason
    note: str = Field(max_length=200)


class RecordIn(BaseModel):
    text: str = Field(max_length=10_000)


class ItemIn(BaseModel):
    drug_code: str = Field(max_length=30)
    quantity: int
    days_supply: int
    usage: str = Field(max_length=200)


class PrescriptionIn(BaseModel):
    diagnosis_codes: list[str] = Field(max_length=10)
    items: list[ItemIn] = Field(max_length=10)
    valid_days: int = 1
    long_term_reason: str | None = Field(default=None, max_length=200)
    guardian_present: bool = False


# --- schedules and settings ---


@router.get("/video/sessions", response_model=list[video_schedule.SessionView], summary="网络门诊出诊（全部医生）")
def sessions(principal: PrincipalDep, uow: UowDep, start: datetime, end: datetime, doctor_id: str | None = None,
             department_code: str | None = None) -> list[video_schedule.SessionView]:
    return video_schedule.list_sessions(uow, principal, start=start, end=end, doctor_id=doctor_id,
                                        department_code=department_code)


@router.post("/video/sessions", response_model=video_schedule.SessionView, status_code=201, summary="发布出诊（管理）")
def publish(body: SessionIn, principal: PrincipalDep, uow: UowDep) -> video_schedule.SessionView:
    return video_schedule.create_session(uow, principal, video_schedule.NewSession(**body.model_dump()))


@router.post("/video/sessions/import", response_model=video_schedule.ImportResult, summary="导入排班 Excel（全部正确才导入）")
async def import_sessions(principal: PrincipalDep, uow: UowDep,
                          file: Annotated[UploadFile, File()]) -> video_schedule.ImportResult:
    ensure_role(principal, video_schedule.SCHEDULERS)
    data = await file.read(5 * 2**20 + 1)
    if len(data) > 5 * 2**20:
        raise InvalidInput("排班表不超过 5 MB", field="file")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "schedule.xlsx"
        path.write_bytes(data)
        rows = read_schedule(path)
    try:
        return video_schedule.import_schedule(uow, principal, rows, source=file.filename or "upload.xlsx")
    except ScheduleRejected as exc:
        exc.hint = "；".join(exc.row_errors[:50])  # the rows' errors travel in the problem's detail
        raise


@router.post("/video/sessions/{session_id}/cancel", response_model=video_schedule.SessionView, summary="停诊（管理）")
def stop(session_id: str, principal: PrincipalDep, uow: UowDep,
         his_schedule: HisScheduleDep) -> video_schedule.SessionView:
    return video_schedule.cancel_session(uow, principal, his_schedule, session_id)


@router.get("/video/schedule", response_model=list[video_schedule.FusedSlotView], summary="线上线下融合号源（VC-3）")
def fused(principal: PrincipalDep, uow: UowDep, his_schedule: HisScheduleDep, start: datetime, end: datetime,
          doctor_id: str | None = None, department_code: str | None = None) -> list[video_schedule.FusedSlotView]:
    return video_schedule.fused_schedule(uow, principal, his_schedule, start=start, end=end, doctor_id=doctor_id,
                                         department_code=department_code)


@router.get("/video/settings", response_model=list[video_settings.CheckSetting], summary="复诊判定设置")
def settings(principal: PrincipalDep, uow: UowDep) -> list[video_settings.CheckSetting]:
    return video_settings.list_settings(uow, principal)


@router.put("/video/settings", response_model=video_settings.CheckSetting, summary="设置复诊判定模式（管理员）")
def set_settings(body: CheckModeIn, principal: PrincipalDep, uow: UowDep) -> video_settings.CheckSetting:
    return video_settings.set_check_mode(uow, principal, body.check_mode, department_code=body.department_code,
                                         lookback_days=body.lookback_days)


# --- patient: book, pay, cancel, waiting room ---


@router.get("/video/my-offline-visits", response_model=list[video_booking.OfflineVisitChoice],
            summary="本人线下就诊记录（选择复诊依据）")
def my_offline_visits(principal: PrincipalDep, uow: UowDep, his: HisDep) -> list[video_booking.OfflineVisitChoice]:
    return video_booking.offline_visits(uow, principal, his)


@router.post("/video/visits", response_model=video_booking.BookedVisit, status_code=201, summary="预约视频复诊")
async def book(
    principal: PrincipalDep, uow: UowDep, payments: PaymentsDep, his: HisDep, his_schedule: HisScheduleDep,
    store: StoreDep, slot_id: Annotated[str, Form(max_length=40)], complaint: Annotated[str, Form(max_length=2000)],
    his_visit_no: Annotated[str | None, Form(max_length=30)] = None,
    documents: Annotated[list[UploadFile] | None, File()] = None,
) -> video_booking.BookedVisit:
    files = documents or []
    if len(files) > MAX_DOCUMENTS:
        raise InvalidInput(f"最多上传 {MAX_DOCUMENTS} 份病历资料", field="documents")
    data = tuple([await f.read(MAX_DOCUMENT_BYTES + 1) for f in files])
    return video_booking.book_visit(uow, principal, payments, his, his_schedule, store, slot_id, complaint,
                                    his_visit_no=his_visit_no or None, documents=data)


@router.post("/payments/wechat/video-notify", summary="挂号费支付结果通知（支付平台回调，签名校验）")
async def paid(request: Request, uow: UowDep, payments: PaymentsDep) -> dict[str, str]:
    video_booking.handle_paid_notification(uow, payments, dict(request.headers), await request.body())
    return {"code": "SUCCESS", "message": "成功"}


@router.get("/video/visits", response_model=list[video_visits.VisitView], summary="视频复诊（患者本人/医生本人/管理）")
def visits(principal: PrincipalDep, uow: UowDep, status: VisitStatus | None = None, day: datetime | None = None,
           limit: int = Query(100, ge=1, le=500)) -> list[video_visits.VisitView]:
    return video_visits.list_visits(uow, principal, status=status, day=day, limit=limit)


@router.get(V, response_model=video_visits.VisitView, summary="视频复诊详情")
def visit(visit_id: str, principal: PrincipalDep, uow: UowDep) -> video_visits.VisitView:
    return video_visits.get_visit(uow, principal, visit_id)


@router.get(V + "/complaint", summary="病情描述（患者本人、接诊医生）")
def complaint(visit_id: str, principal: PrincipalDep, uow: UowDep) -> dict[str, str]:
    return {"complaint": video_visits.complaint_of(uow, principal, visit_id)}


@router.post(V + "/cancel", response_model=video_visits.VisitView, summary="取消预约（按提前时间退款）")
def cancel(visit_id: str, principal: PrincipalDep, uow: UowDep,
           his_schedule: HisScheduleDep) -> video_visits.VisitView:
    return video_booking.cancel_visit(uow, principal, his_schedule, visit_id)


@router.post(V + "/check-in", response_model=RoomToken, summary="签到候诊（返回视频令牌）")
def check_in(visit_id: str, principal: PrincipalDep, uow: UowDep, rooms: RoomsDep) -> RoomToken:
    return video_visits.check_in(uow, principal, rooms, visit_id)


@router.post(V + "/join", response_model=RoomToken, summary="进入视频房间（新令牌）")
def join(visit_id: str, principal: PrincipalDep, uow: UowDep, rooms: RoomsDep) -> RoomToken:
    return video_visits.join_room(uow, principal, rooms, visit_id)


@router.post(V + "/guests", response_model=video_visits.Invitation, status_code=201, summary="邀请第三方（家属、翻译）")
def invite(visit_id: str, body: GuestIn, principal: PrincipalDep, uow: UowDep,
           rooms: RoomsDep) -> video_visits.Invitation:
    return video_visits.invite_guest(uow, principal, rooms, visit_id, body.relation)


@router.get(V + "/documents", response_model=list[video_records.DocumentView], summary="申报复诊的病历资料列表")
def documents(visit_id: str, principal: PrincipalDep, uow: UowDep) -> list[video_records.DocumentView]:
    return video_records.list_documents(uow, principal, visit_id)


@router.get(V + "/documents/{number}", summary="一份病历资料（患者本人、接诊医生，留痕）")
def document(visit_id: str, number: int, principal: PrincipalDep, uow: UowDep, store: StoreDep) -> Response:
    mime, data = video_records.read_document(uow, principal, store, visit_id, number)
    return Response(data, media_type=mime, headers={"Cache-Control": "private, no-store"})


# --- doctor ---


@router.post(V + "/confirm-followup", response_model=video_visits.VisitView, summary="确认复诊（申报模式，R17）")
def confirm(visit_id: str, body: ConfirmIn, principal: PrincipalDep, uow: UowDep) -> video_visits.VisitView:
    return video_visits.confirm_followup(uow, principal, visit_id, [Diagnosis(d.code, d.name) for d in body.diagnoses])


@router.post(V + "/start", response_model=RoomToken, summary="开始视频（医生）")
def start(visit_id: str, principal: PrincipalDep, uow: UowDep, rooms: RoomsDep) -> RoomToken:
    return video_visits.start_call(uow, principal, rooms, visit_id)


@router.post(V + "/end", response_model=video_visits.VisitView, summary="结束就诊（医生）")
def end(visit_id: str, principal: PrincipalDep, uow: UowDep, rooms: RoomsDep) -> video_visits.VisitView:
    return video_visits.end_visit(uow, principal, rooms, visit_id)


@router.post(V + "/terminate", response_model=video_visits.VisitView, summary="终止就诊：判定首诊或不适宜（R18，自动退款）")
def terminate(visit_id: str, body: TerminateIn, principal: PrincipalDep, uow: UowDep,
              rooms: RoomsDep) -> video_visits.VisitView:
    return video_visits.terminate_visit(uow, principal, rooms, visit_id, body.reason, body.note)


@router.post(V + "/records", response_model=video_records.RecordVersion, status_code=201, summary="书写病历（新版本）")
def write(visit_id: str, body: RecordIn, principal: PrincipalDep, uow: UowDep) -> video_records.RecordVersion:
    return video_records.write_record(uow, principal, visit_id, body.text)


@router.get(V + "/records", response_model=list[video_records.RecordVersion], summary="病历全部版本（R38）")
def records(visit_id: str, principal: PrincipalDep, uow: UowDep) -> list[video_records.RecordVersion]:
    return video_records.record_history(uow, principal, visit_id)


@router.post(V + "/prescriptions", response_model=prescriptions.PrescriptionView, status_code=201,
             summary="开具处方（诊断限于复诊依据）")
def prescribe(visit_id: str, body: PrescriptionIn, principal: PrincipalDep, uow: UowDep, his: HisDep,
              signer: SignerDep, request: Request) -> prescriptions.PrescriptionView:
    cmd = prescriptions.NewPrescription(
        "", tuple(body.diagnosis_codes), tuple(prescriptions.NewItem(**i.model_dump()) for i in body.items),
        valid_days=body.valid_days, long_term_reason=body.long_term_reason, guardian_present=body.guardian_present)
    return video_records.prescribe(uow, principal, his, signer, visit_id, cmd,
                                   his_rx=request.app.state.container.his_rx_port)  # 集成模式 (RX-5)

