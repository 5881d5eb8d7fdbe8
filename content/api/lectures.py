"""名医讲堂 over HTTP (LEC-1, LEC-2). (The doctor's medical review of short videos is in
``content/api/calendar.py``.)

Patients list, read or listen, comment, like, share and tip; doctors keep
their published / draft tabs, create and edit (audio uploaded as multipart,
format and duration checked), publish, disable and enable; operations
moderate comments and refund tips. Roles and ownership are the services';
errors become problem+json."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from pydantic import BaseModel, Field

from clinical_core.api.consultations import PaymentsDep
from clinical_core.api.security import PrincipalDep, UowDep
from clinical_core.domain.errors import InvalidInput
from content.domain.lectures import AUDIO_MAX_BYTES, CommentStatus, DoctorTab, LectureKind, ShareChannel
from content.services import lecture_engagement as engage
from content.services import lectures as service

router = APIRouter(prefix="/api/v1", tags=["lectures"])
AUDIO_SUFFIXES = {".mp3", ".m4a", ".aac"}


class LectureDetail(BaseModel):
    lecture: service.LectureView
    engagement: engage.Engagement


class CommentIn(BaseModel):
    body: str = Field(max_length=1000)


class ShareIn(BaseModel):
    channel: ShareChannel


class TipIn(BaseModel):
    amount_fen: int


class ReasonIn(BaseModel):
    reason: str = Field(default="", max_length=100)


async def _saved_audio(request: Request, audio: UploadFile | None) -> Path | None:
    """Keep an upload under the data directory (the service probes it; a refused file is removed)."""
    if audio is None:
        return None
    suffix = Path(audio.filename or "").suffix.lower()
    if suffix not in AUDIO_SUFFIXES:
        raise InvalidInput("音频文件应为 .mp3 或 .m4a", field="audio")
    data = await audio.read(AUDIO_MAX_BYTES + 1)
    if len(data) > AUDIO_MAX_BYTES:
        raise InvalidInput(f"音频文件不能超过 {AUDIO_MAX_BYTES // 2**20} MB", field="audio")
    folder = request.app.state.container.settings.data_dir / "lectures" / "audio"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}{suffix}"
    path.write_bytes(data)
    return path


async def _write(request: Request, title: str, category: str, kind: LectureKind, body: str,
                 audio: UploadFile | None, call) -> service.LectureView:  # type: ignore[no-untyped-def]
    path = await _saved_audio(request, audio)
    try:
        return call(service.LectureInput(title, category, kind, body, path))
    except BaseException:
        if path is not None:
            path.unlink(missing_ok=True)
        raise


# --- patients (and anyone signed in) ---


@router.get("/lectures", response_model=list[service.LectureView], summary="讲堂列表（患者看到已发布的）")
def list_lectures(principal: PrincipalDep, uow: UowDep, category: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[service.LectureView]:
    return service.list_lectures(uow, principal, category=category, limit=limit)


@router.get("/lectures/{lecture_id}", response_model=LectureDetail, summary="讲堂详情与互动数")
def detail(lecture_id: str, principal: PrincipalDep, uow: UowDep) -> LectureDetail:
    view = service.get_lecture(uow, principal, lecture_id)
    return LectureDetail(lecture=view, engagement=engage.engagement(uow, principal, lecture_id))


@router.get("/lectures/{lecture_id}/comments", response_model=list[engage.CommentView], summary="评论（审核通过的与本人的）")
def comments(lecture_id: str, principal: PrincipalDep, uow: UowDep) -> list[engage.CommentView]:
    return engage.list_comments(uow, principal, lecture_id)


@router.post("/lectures/{lecture_id}/comments", response_model=engage.CommentView, status_code=201,
             summary="发表评论（审核后对他人可见）")
def comment(lecture_id: str, body: CommentIn, principal: PrincipalDep, uow: UowDep) -> engage.CommentView:
    return engage.add_comment(uow, principal, lecture_id, body.body)


@router.put("/lectures/{lecture_id}/like", response_model=engage.Engagement, summary="点赞")
def like(lecture_id: str, principal: PrincipalDep, uow: UowDep) -> engage.Engagement:
    return engage.like(uow, principal, lecture_id, liked=True)


@router.delete("/lectures/{lecture_id}/like", response_model=engage.Engagement, summary="取消点赞")
def unlike(lecture_id: str, principal: PrincipalDep, uow: UowDep) -> engage.Engagement:
    return engage.like(uow, principal, lecture_id, liked=False)


@router.post("/lectures/{lecture_id}/shares", response_model=engage.Engagement, summary="记录分享")
def share(lecture_id: str, body: ShareIn, principal: PrincipalDep, uow: UowDep) -> engage.Engagement:
    return engage.share(uow, principal, lecture_id, body.channel)


@router.post("/lectures/{lecture_id}/tips", response_model=engage.TipOrder, status_code=201,
             summary="赞赏下单（返回微信支付参数）")
def tip(lecture_id: str, body: TipIn, principal: PrincipalDep, uow: UowDep, payments: PaymentsDep) -> engage.TipOrder:
    return engage.tip(uow, principal, payments, lecture_id, body.amount_fen)


@router.post("/payments/wechat/lecture-tip-notify", summary="赞赏支付结果通知（支付平台回调，签名校验）")
async def tip_notification(request: Request, uow: UowDep, payments: PaymentsDep) -> dict[str, str]:
    body = await request.body()
    engage.handle_tip_notification(uow, payments, dict(request.headers), body)
    return {"code": "SUCCESS", "message": "成功"}


@router.get("/lecture-tips", response_model=list[engage.TipView], summary="赞赏记录（患者：本人；医生：本人讲堂；运营：全部）")
def tips(principal: PrincipalDep, uow: UowDep, lecture_id: str | None = None) -> list[engage.TipView]:
    return engage.list_tips(uow, principal, lecture_id=lecture_id)


# --- doctors ---


@router.get("/doctor/lectures", response_model=list[service.LectureView], summary="医生的讲堂（已发布 / 草稿）")
def doctor_lectures(principal: PrincipalDep, uow: UowDep, tab: DoctorTab = DoctorTab.PUBLISHED) -> list[service.LectureView]:
    return service.list_for_doctor(uow, principal, tab)


@router.post("/lectures", response_model=service.LectureView, status_code=201, summary="新建讲堂：发布或存为草稿")
async def create(
    request: Request, principal: PrincipalDep, uow: UowDep,
    title: Annotated[str, Form(max_length=100)], category: Annotated[str, Form(max_length=40)],
    kind: Annotated[LectureKind, Form()], body: Annotated[str, Form(max_length=20000)] = "",
    publish: Annotated[bool, Form()] = False, audio: Annotated[UploadFile | None, File()] = None,
) -> service.LectureView:
    return await _write(request, title, category, kind, body, audio,
                        lambda data: service.create_lecture(uow, principal, data, publish=publish))


@router.put("/lectures/{lecture_id}", response_model=service.LectureView, summary="编辑（新版本），可同时重新发布")
async def edit(
    lecture_id: str, request: Request, principal: PrincipalDep, uow: UowDep,
    title: Annotated[str, Form(max_length=100)], category: Annotated[str, Form(max_length=40)],
    kind: Annotated[LectureKind, Form()], body: Annotated[str, Form(max_length=20000)] = "",
    publish: Annotated[bool, Form()] = False, audio: Annotated[UploadFile | None, File()] = None,
) -> service.LectureView:
    return await _write(request, title, category, kind, body, audio,
                        lambda data: service.edit_lecture(uow, principal, lecture_id, data, publish=publish))


@router.post("/lectures/{lecture_id}/publish", response_model=service.LectureView, summary="发布或重新发布")
def publish(lecture_id: str, principal: PrincipalDep, uow: UowDep) -> service.LectureView:
    return service.publish_lecture(uow, principal, lecture_id)


@router.post("/lectures/{lecture_id}/disable", response_model=service.LectureView, summary="停用")
def disable(lecture_id: str, principal: PrincipalDep, uow: UowDep) -> service.LectureView:
    return service.disable_lecture(uow, principal, lecture_id)


@router.post("/lectures/{lecture_id}/enable", response_model=service.LectureView, summary="启用")
def enable(lecture_id: str, principal: PrincipalDep, uow: UowDep) -> service.LectureView:
    return service.enable_lecture(uow, principal, lecture_id)


# --- operations ---


@router.get("/lecture-comments", response_model=list[engage.CommentView], summary="评论审核队列（运营）")
def moderation_queue(principal: PrincipalDep, uow: UowDep,
                     status: CommentStatus | None = CommentStatus.PENDING) -> list[engage.CommentView]:
    return engage.moderation_queue(uow, principal, status)


@router.post("/lecture-comments/{comment_id}/approve", response_model=engage.CommentView, summary="通过评论")
def approve(comment_id: str, principal: PrincipalDep, uow: UowDep) -> engage.CommentView:
    return engage.moderate_comment(uow, principal, comment_id, approve=True)


@router.post("/lecture-comments/{comment_id}/reject", response_model=engage.CommentView, summary="驳回评论")
def reject(comment_id: str, body: ReasonIn, principal: PrincipalDep, uow: UowDep) -> engage.CommentView:
    return engage.moderate_comment(uow, principal, comment_id, approve=False, reason=body.reason)


@router.post("/lecture-tips/{tip_id}/refund", response_model=engage.TipView, summary="退还赞赏（运营）")
def refund(tip_id: str, body: ReasonIn, principal: PrincipalDep, uow: UowDep) -> engage.TipView:
    return engage.refund_tip(uow, principal, tip_id, body.reason)

