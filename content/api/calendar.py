"""The publishing calendar over HTTP: series, episodes through production and the medical
review, platform posts, and the calendar per platform (OPS-5).

Reads: operations staff, administrators, and doctors of the series' department (CAL-5; the
service filters and refuses). Writes: operations staff and administrators; the medical review
is a doctor's (CAL-1). Each episode state change is its own named endpoint calling the one
guarded transition of the service (``shoot``, ``edit``, ``review``), and a post is published
only after the review (CAL-2). Domain errors become problem+json.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from clinical_core.api.security import PrincipalDep, UowDep
from clinical_core.domain.errors import InvalidInput
from content.domain.calendar import CalendarEntry, EpisodeStatus, Platform, month_range
from content.services import calendar as cal

router = APIRouter(prefix="/api/v1/content", tags=["calendar"])


class SeriesIn(BaseModel):
    title: str = Field(max_length=100)
    department: str = Field(max_length=60)
    description: str = Field(default="", max_length=500)


class EpisodeIn(BaseModel):
    title: str = Field(max_length=100)


class EditedIn(BaseModel):
    video_path: str | None = Field(default=None, max_length=500)


class ReviewIn(BaseModel):
    approve: bool
    note: str = Field(default="", max_length=200)


class PostIn(BaseModel):
    platform: Platform
    planned_at: datetime


class RescheduleIn(BaseModel):
    planned_at: datetime


class PublishIn(BaseModel):
    external_id: str | None = Field(default=None, max_length=64)
    published_at: datetime | None = None


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput("时间需要带时区，如 2026-11-05T20:00:00+08:00", field=field)
    return value


# --- reads ---


@router.get("/series", response_model=list[cal.SeriesView], summary="科普系列（医生：本科室的）")
def list_series(principal: PrincipalDep, uow: UowDep) -> list[cal.SeriesView]:
    return cal.list_series(uow, principal)


@router.get("/series/{series_id}", response_model=cal.SeriesView, summary="系列详情")
def get_series(series_id: str, principal: PrincipalDep, uow: UowDep) -> cal.SeriesView:
    return cal.get_series(uow, principal, series_id)


@router.get("/episodes", response_model=list[cal.EpisodeView],
            summary="剧集（可按系列、状态筛选；医生待医学审核的用 status=edited）")
def list_episodes(principal: PrincipalDep, uow: UowDep, series_id: str | None = None,
                  status: EpisodeStatus | None = None) -> list[cal.EpisodeView]:
    return cal.list_episodes(uow, principal, series_id=series_id, status=status)


@router.get("/episodes/{episode_id}", response_model=cal.EpisodeView, summary="剧集详情")
def get_episode(episode_id: str, principal: PrincipalDep, uow: UowDep) -> cal.EpisodeView:
    return cal.get_episode(uow, principal, episode_id)


@router.get("/calendar", response_model=list[CalendarEntry],
            summary="发布日历：短视频与直播，按天（since/until 或 year/month，北京时间）")
def calendar(principal: PrincipalDep, uow: UowDep, since: date | None = None, until: date | None = None,
             year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
             month: Annotated[int | None, Query(ge=1, le=12)] = None,
             platform: Platform | None = None) -> list[CalendarEntry]:
    if year is not None and month is not None:
        if since is not None or until is not None:
            raise InvalidInput("请给出 year/month 或 since/until 之一", field="since")
        since, until = month_range(year, month)
    if since is None or until is None:
        raise InvalidInput("请给出 year 与 month，或 since 与 until", field="since")
    return cal.calendar(uow, principal, since, until, platform=platform)


# --- writes (operations) ---


@router.post("/series", response_model=cal.SeriesView, status_code=201, summary="新建科普系列（运营）")
def create_series(body: SeriesIn, principal: PrincipalDep, uow: UowDep) -> cal.SeriesView:
    return cal.create_series(uow, principal, body.title, body.department, body.description)


@router.post("/series/{series_id}/episodes", response_model=cal.EpisodeView, status_code=201,
             summary="计划一集（运营）")
def add_episode(series_id: str, body: EpisodeIn, principal: PrincipalDep, uow: UowDep) -> cal.EpisodeView:
    return cal.add_episode(uow, principal, series_id, body.title)


@router.post("/episodes/{episode_id}/shoot", response_model=cal.EpisodeView, summary="标记已拍摄（运营）")
def shoot(episode_id: str, principal: PrincipalDep, uow: UowDep) -> cal.EpisodeView:
    return cal.mark_shot(uow, principal, episode_id)


@router.post("/episodes/{episode_id}/edit", response_model=cal.EpisodeView, summary="标记已剪辑（运营）")
def edit(episode_id: str, body: EditedIn, principal: PrincipalDep, uow: UowDep) -> cal.EpisodeView:
    return cal.mark_edited(uow, principal, episode_id, body.video_path)


@router.post("/episodes/{episode_id}/review", response_model=cal.EpisodeView,
             summary="医学审核：通过或退回重剪（医生）")
def review(episode_id: str, body: ReviewIn, principal: PrincipalDep, uow: UowDep) -> cal.EpisodeView:
    return cal.medical_review(uow, principal, episode_id, approve=body.approve, note=body.note)


@router.post("/episodes/{episode_id}/posts", response_model=cal.PostView, status_code=201,
             summary="排期到一个平台（运营；每个平台一次）")
def plan_post(episode_id: str, body: PostIn, principal: PrincipalDep, uow: UowDep) -> cal.PostView:
    return cal.plan_post(uow, principal, episode_id, body.platform, _aware(body.planned_at, "planned_at"))  # type: ignore[arg-type]


@router.post("/posts/{post_id}/reschedule", response_model=cal.PostView, summary="改期（运营；已发布的不能改）")
def reschedule_post(post_id: str, body: RescheduleIn, principal: PrincipalDep, uow: UowDep) -> cal.PostView:
    return cal.reschedule_post(uow, principal, post_id, _aware(body.planned_at, "planned_at"))  # type: ignore[arg-type]


@router.post("/posts/{post_id}/publish", response_model=cal.PostView, summary="标记已发布（运营；须先通过医学审核）")
def publish_post(post_id: str, body: PublishIn, principal: PrincipalDep, uow: UowDep) -> cal.PostView:
    return cal.publish_post(uow, principal, post_id, external_id=body.external_id,
                            published_at=_aware(body.published_at, "published_at"))
