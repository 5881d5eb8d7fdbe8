"""Publishing calendar use cases: series, episodes through production and the
medical review, platform posts planned on a calendar and published.

Operations staff plan, mark shot/edited and publish; the medical review is a
doctor's (CAL-1). Every status change is a conditional UPDATE on the status the
decision was made from, with an audit entry in the same transaction.

Who reads (CAL-5): operations staff and administrators read everything; a
doctor reads the series of their own department (``content_series.department``
holds the department's name or code), those series' episodes and posts, and
the live sessions of their department on the calendar. Listings are filtered;
asking for another department's series or episode by id is ``Forbidden``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import func, select, update

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    RuleViolation,
)
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.staff import Role
from clinical_core.domain.time import SHANGHAI
from clinical_core.persistence.models import DepartmentRow, StaffRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit
from content.domain import calendar as rules
from content.domain.calendar import (
    CalendarEntry,
    EpisodeAction,
    EpisodeStatus,
    Platform,
)
from content.domain.live import LiveStatus
from content.persistence.models import EpisodeRow, LiveSessionRow, PostRow, SeriesRow

PLANNERS = (Role.OPERATIONS, Role.ADMIN)
VIEWERS = (Role.OPERATIONS, Role.ADMIN, Role.DOCTOR)


@dataclass(frozen=True)
class Scope:
    """What a reader may see: everything (``departments is None``) or the series of these
    department names/codes (a doctor's own department; empty when the doctor has none)."""

    departments: tuple[str, ...] | None
    department_id: int | None = None

    def allows(self, department: str) -> bool:
        return self.departments is None or department in self.departments


def reader_scope(uow: UnitOfWork, principal: Principal) -> Scope:
    """CAL-5: operations and administrators see every department; a doctor only their own."""
    ensure_role(principal, VIEWERS)
    if principal.role is not Role.DOCTOR:
        return Scope(None)
    staff = uow.session.scalar(select(StaffRow).where(StaffRow.public_id == principal.staff_id)) \
        if principal.staff_id else None
    dept = uow.session.get(DepartmentRow, staff.department_id) if staff and staff.department_id else None
    if dept is None:
        return Scope(())
    return Scope((dept.name, dept.code), dept.id)


def _ensure_visible(scope: Scope, series: SeriesRow) -> None:
    if not scope.allows(series.department):
        raise Forbidden("只能查看本科室的系列与剧集")


@dataclass(frozen=True)
class SeriesView:
    public_id: str
    title: str
    department: str
    description: str
    episodes: int
    published: int


@dataclass(frozen=True)
class EpisodeView:
    public_id: str
    series: str
    number: int
    title: str
    status: str
    status_label: str
    reviewer: str | None
    reviewed_at: datetime | None
    review_note: str | None
    platforms: str  # e.g. "抖音 已发布；视频号 计划 11-20 20:00"
    updated_at: datetime


@dataclass(frozen=True)
class PostView:
    public_id: str
    episode_id: str
    title: str
    platform: str
    planned_at: datetime
    published_at: datetime | None
    external_id: str | None


def _series(uow: UnitOfWork, public_id: str) -> SeriesRow:
    row = uow.session.scalar(select(SeriesRow).where(SeriesRow.public_id == public_id))
    if row is None:
        raise NotFound(f"系列 {public_id} 不存在")
    return row


def _episode(uow: UnitOfWork, public_id: str) -> EpisodeRow:
    row = uow.session.scalar(select(EpisodeRow).where(EpisodeRow.public_id == public_id))
    if row is None:
        raise NotFound(f"剧集 {public_id} 不存在")
    return row


def _post(uow: UnitOfWork, public_id: str) -> PostRow:
    row = uow.session.scalar(select(PostRow).where(PostRow.public_id == public_id))
    if row is None:
        raise NotFound(f"发布计划 {public_id} 不存在")
    return row


def _series_view(uow: UnitOfWork, row: SeriesRow) -> SeriesView:
    counts = dict(uow.session.execute(select(EpisodeRow.status, func.count()).where(
        EpisodeRow.series_id == row.id).group_by(EpisodeRow.status)).all())
    return SeriesView(row.public_id, row.title, row.department, row.description, sum(counts.values()),
                      counts.get(EpisodeStatus.PUBLISHED.value, 0))


def _episode_view(uow: UnitOfWork, row: EpisodeRow) -> EpisodeView:
    series = uow.session.get(SeriesRow, row.series_id)
    reviewer = uow.session.get(StaffRow, row.reviewer_staff_id) if row.reviewer_staff_id else None
    posts = uow.session.scalars(select(PostRow).where(PostRow.episode_id == row.id).order_by(PostRow.platform))
    parts = []
    for p in posts:
        when = p.published_at or p.planned_at
        state = "已发布" if p.published_at else "计划"
        parts.append(f"{Platform(p.platform).label} {state} {when.astimezone(SHANGHAI):%m-%d %H:%M}")
    status = EpisodeStatus(row.status)
    assert series is not None
    return EpisodeView(row.public_id, series.title, row.number, row.title, status.value, status.label,
                       reviewer.name if reviewer else None, row.reviewed_at, row.review_note, "；".join(parts),
                       row.updated_at)


def _post_view(uow: UnitOfWork, row: PostRow) -> PostView:
    episode = uow.session.get(EpisodeRow, row.episode_id)
    assert episode is not None
    return PostView(row.public_id, episode.public_id, episode.title, row.platform, row.planned_at, row.published_at,
                    row.external_id)


def create_series(uow: UnitOfWork, principal: Principal, title: str, department: str,
                  description: str = "") -> SeriesView:
    ensure_role(principal, PLANNERS)
    title = rules.validate_title(title, "系列名称")
    department = department.strip()
    if not 1 <= len(department) <= 40:
        raise InvalidInput("科室应为 1 到 40 个字", field="department")
    with uow:
        if uow.session.scalar(select(SeriesRow.id).where(SeriesRow.title == title)) is not None:
            raise Conflict(f"系列「{title}」已存在")
        row = SeriesRow(public_id=new_public_id("ser"), title=title, department=department,
                        description=description.strip()[:500], created_by=principal.actor,
                        created_at=uow.clock.now())
        uow.session.add(row)
        uow.session.flush()
        audit.record(uow, principal.actor, "series.create", "series", row.public_id, department=department)
        view = _series_view(uow, row)
        uow.commit()
    return view


def list_series(uow: UnitOfWork, principal: Principal) -> list[SeriesView]:
    ensure_role(principal, VIEWERS)
    with uow:
        scope = reader_scope(uow, principal)
        query = select(SeriesRow).order_by(SeriesRow.id)
        if scope.departments is not None:
            query = query.where(SeriesRow.department.in_(scope.departments))
        return [_series_view(uow, r) for r in uow.session.scalars(query)]


def get_series(uow: UnitOfWork, principal: Principal, series_id: str) -> SeriesView:
    ensure_role(principal, VIEWERS)
    with uow:
        row = _series(uow, series_id)
        _ensure_visible(reader_scope(uow, principal), row)
        return _series_view(uow, row)


def add_episode(uow: UnitOfWork, principal: Principal, series_id: str, title: str) -> EpisodeView:
    """计划一集: numbered after the series' last episode."""
    ensure_role(principal, PLANNERS)
    title = rules.validate_title(title)
    with uow:
        series = _series(uow, series_id)
        number = (uow.session.scalar(select(func.max(EpisodeRow.number)).where(
            EpisodeRow.series_id == series.id)) or 0) + 1
        now = uow.clock.now()
        row = EpisodeRow(public_id=new_public_id("epi"), series_id=series.id, number=number, title=title,
                         status=EpisodeStatus.PLANNED.value, created_at=now, updated_at=now)
        uow.session.add(row)
        uow.session.flush()
        audit.record(uow, principal.actor, "episode.plan", "episode", row.public_id, series=series.public_id)
        view = _episode_view(uow, row)
        uow.commit()
    return view


def list_episodes(uow: UnitOfWork, principal: Principal, *, series_id: str | None = None,
                  status: EpisodeStatus | None = None) -> list[EpisodeView]:
    ensure_role(principal, VIEWERS)
    with uow:
        scope = reader_scope(uow, principal)
        query = select(EpisodeRow).order_by(EpisodeRow.series_id, EpisodeRow.number)
        if series_id:
            series = _series(uow, series_id)
            _ensure_visible(scope, series)
            query = query.where(EpisodeRow.series_id == series.id)
        if scope.departments is not None:
            query = query.where(EpisodeRow.series_id.in_(
                select(SeriesRow.id).where(SeriesRow.department.in_(scope.departments))))
        if status:
            query = query.where(EpisodeRow.status == status.value)
        return [_episode_view(uow, r) for r in uow.session.scalars(query)]


def get_episode(uow: UnitOfWork, principal: Principal, episode_id: str) -> EpisodeView:
    ensure_role(principal, VIEWERS)
    with uow:
        row = _episode(uow, episode_id)
        series = uow.session.get(SeriesRow, row.series_id)
        assert series is not None
        _ensure_visible(reader_scope(uow, principal), series)
        return _episode_view(uow, row)


def _move(uow: UnitOfWork, principal: Principal, row: EpisodeRow, action: EpisodeAction,
          **values: object) -> None:
    """The one place an episode's status is written."""
    status = EpisodeStatus(row.status)
    new = rules.next_status(row.public_id, status, action)
    done = uow.session.execute(
        update(EpisodeRow).where(EpisodeRow.id == row.id, EpisodeRow.status == status.value)
        .values(status=new.value, updated_at=uow.clock.now(), **values)
        .execution_options(synchronize_session=False)).rowcount
    if done != 1:
        raise Conflict(f"剧集 {row.public_id} 刚被其他人修改，请刷新后重试")
    uow.session.expire(row)
    audit.record(uow, principal.actor, f"episode.{action.value}", "episode", row.public_id,
                 before=status.value, after=new.value)


def mark_shot(uow: UnitOfWork, principal: Principal, episode_id: str) -> EpisodeView:
    return _production(uow, principal, episode_id, EpisodeAction.SHOOT)


def mark_edited(uow: UnitOfWork, principal: Principal, episode_id: str, video_path: str | None = None) -> EpisodeView:
    return _production(uow, principal, episode_id, EpisodeAction.EDIT,
                       **({"video_path": video_path} if video_path else {}))


def _production(uow: UnitOfWork, principal: Principal, episode_id: str, action: EpisodeAction,
                **values: object) -> EpisodeView:
    ensure_role(principal, PLANNERS)
    with uow:
        row = _episode(uow, episode_id)
        _move(uow, principal, row, action, **values)
        view = _episode_view(uow, row)
        uow.commit()
    return view


def medical_review(uow: UnitOfWork, principal: Principal, episode_id: str, *, approve: bool,
                   note: str = "") -> EpisodeView:
    """医学审核 (CAL-1: by a doctor): approve, or send back to be re-edited with a reason."""
    rules.ensure_medical_reviewer(principal.role is Role.DOCTOR)
    note = note.strip()
    if not approve and not note:
        raise InvalidInput("退回时请写明原因", field="note")
    with uow:
        reviewer = uow.session.scalar(select(StaffRow).where(StaffRow.public_id == principal.staff_id)) \
            if principal.staff_id else None
        if reviewer is None:
            raise RuleViolation("CAL-1", "医学审核须由有医生档案的账号完成")
        row = _episode(uow, episode_id)
        action = EpisodeAction.REVIEW if approve else EpisodeAction.SEND_BACK
        _move(uow, principal, row, action, reviewer_staff_id=reviewer.id, reviewed_at=uow.clock.now(),
              review_note=note[:200] or None)
        view = _episode_view(uow, row)
        uow.commit()
    return view


def plan_post(uow: UnitOfWork, principal: Principal, episode_id: str, platform: Platform,
              planned_at: datetime) -> PostView:
    """排期: put an episode on a platform's calendar (CAL-3: once per platform)."""
    ensure_role(principal, PLANNERS)
    if planned_at.tzinfo is None:
        raise InvalidInput("计划时间需要带时区", field="planned_at")
    with uow:
        episode = _episode(uow, episode_id)
        if uow.session.scalar(select(PostRow.id).where(PostRow.episode_id == episode.id,
                                                       PostRow.platform == platform.value)) is not None:
            raise RuleViolation("CAL-3", f"该剧集已排期到{platform.label}")
        row = PostRow(public_id=new_public_id("pst"), episode_id=episode.id, platform=platform.value,
                      planned_at=planned_at, created_at=uow.clock.now())
        uow.session.add(row)
        uow.session.flush()
        audit.record(uow, principal.actor, "post.plan", "episode", episode.public_id, post=row.public_id,
                     platform=platform.value)
        view = _post_view(uow, row)
        uow.commit()
    return view


def reschedule_post(uow: UnitOfWork, principal: Principal, post_id: str, planned_at: datetime) -> PostView:
    ensure_role(principal, PLANNERS)
    if planned_at.tzinfo is None:
        raise InvalidInput("计划时间需要带时区", field="planned_at")
    with uow:
        row = _post(uow, post_id)
        if row.published_at is not None:
            raise RuleViolation("CAL-4", "已发布的内容不能改期")
        row.planned_at = planned_at
        audit.record(uow, principal.actor, "post.reschedule", "post", row.public_id)
        view = _post_view(uow, row)
        uow.commit()
    return view


def publish_post(uow: UnitOfWork, principal: Principal, post_id: str, *, external_id: str | None = None,
                 published_at: datetime | None = None) -> PostView:
    """发布 on one platform (CAL-2: only after the medical review); the episode becomes published."""
    ensure_role(principal, PLANNERS)
    with uow:
        row = _post(uow, post_id)
        if row.published_at is not None:
            raise Conflict(f"{Platform(row.platform).label}上已发布")
        episode = _episode(uow, uow.session.get(EpisodeRow, row.episode_id).public_id)  # type: ignore[union-attr]
        _move(uow, principal, episode, EpisodeAction.PUBLISH)
        done = uow.session.execute(
            update(PostRow).where(PostRow.id == row.id, PostRow.published_at.is_(None))
            .values(published_at=published_at or uow.clock.now(), external_id=external_id)
            .execution_options(synchronize_session=False)).rowcount
        if done != 1:
            raise Conflict(f"{Platform(row.platform).label}上已发布")
        uow.session.expire(row)
        audit.record(uow, principal.actor, "post.publish", "post", row.public_id, platform=row.platform)
        view = _post_view(uow, row)
        uow.commit()
    return view


def calendar(uow: UnitOfWork, principal: Principal, since: date, until: date, *,
             platform: Platform | None = None) -> list[CalendarEntry]:
    """The calendar of [since, until) (Shanghai days): video posts and live sessions, by day."""
    ensure_role(principal, VIEWERS)
    if until <= since:
        raise InvalidInput("结束日期应晚于开始日期", field="until")
    if (until - since).days > 366:
        raise InvalidInput("日历一次最多查看 366 天", field="until")
    start = datetime.combine(since, time(0), tzinfo=SHANGHAI)
    end = datetime.combine(until, time(0), tzinfo=SHANGHAI)
    entries: list[tuple[datetime, CalendarEntry]] = []
    with uow:
        scope = reader_scope(uow, principal)
        posts = select(PostRow, EpisodeRow).join(EpisodeRow, EpisodeRow.id == PostRow.episode_id).where(
            func.coalesce(PostRow.published_at, PostRow.planned_at) >= start,
            func.coalesce(PostRow.published_at, PostRow.planned_at) < end)
        if platform:
            posts = posts.where(PostRow.platform == platform.value)
        if scope.departments is not None:
            posts = posts.where(EpisodeRow.series_id.in_(
                select(SeriesRow.id).where(SeriesRow.department.in_(scope.departments))))
        for post, episode in uow.session.execute(posts).all():
            when = post.published_at or post.planned_at
            state = "已发布" if post.published_at else f"计划（{EpisodeStatus(episode.status).label}）"
            entries.append((when, CalendarEntry(when.astimezone(SHANGHAI).date(), post.platform, "video",
                                                episode.title, state, post.public_id)))
        lives = select(LiveSessionRow).where(LiveSessionRow.planned_start >= start, LiveSessionRow.planned_start < end)
        if platform:
            lives = lives.where(LiveSessionRow.platform == platform.value)
        if scope.departments is not None:  # a doctor: the sessions hosted by a doctor of their department
            lives = lives.where(LiveSessionRow.host_staff_id.in_(
                select(StaffRow.id).where(StaffRow.department_id == (scope.department_id or -1))))
        for live in uow.session.scalars(lives):
            entries.append((live.planned_start, CalendarEntry(
                live.planned_start.astimezone(SHANGHAI).date(), live.platform, "live", live.title,
                LiveStatus(live.status).label, live.public_id)))
    entries.sort(key=lambda e: (e[0], e[1].platform, e[1].ref))
    return [e for _, e in entries]
