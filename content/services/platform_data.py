"""Import of the platforms' exported statistics, and the figures reports use.

An import reads the whole file, validates every row (all-or-nothing, every
error listed in Chinese), then writes in one transaction:

- 作品数据 (video): one row per work and export day (``as_of``): the cumulative
  totals; matched to a published post by platform, title and publish time.
- 直播数据 (live): one row per broadcast (platform, start time); matched to a
  live session planned within an hour.
- 社群数据 (community): one row per group and day; the group must be registered.

Importing the same file again changes nothing (its digest is recorded, and every
row is an upsert on its natural key, so an overlapping export updates in place).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import Conflict, InvalidInput
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.staff import Role
from clinical_core.domain.time import SHANGHAI
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit
from content.adapters import sheets
from content.domain import calendar as cal
from content.domain import exports
from content.domain import live as live_rules
from content.domain.exports import ExportKind, ExportRejected
from content.persistence.models import (
    CommunityGroupRow,
    CommunityStatRow,
    EpisodeRow,
    LiveSessionRow,
    LiveStatRow,
    PostRow,
    StatImportRow,
    VideoStatRow,
)

IMPORTERS = (Role.OPERATIONS, Role.ADMIN)
READERS = (Role.OPERATIONS, Role.ADMIN)
COUNTS = {ExportKind.VIDEO: ("plays", "likes", "comments", "shares", "followers"),
          ExportKind.LIVE: ("title", "minutes", "viewers", "views", "peak_online", "likes", "comments", "shares",
                            "followers"),
          ExportKind.COMMUNITY: ("members", "joined", "left", "active", "messages")}


@dataclass(frozen=True)
class ImportResult:
    import_id: str
    kind: str
    source: str
    rows: int
    inserted: int
    updated: int
    unchanged: int
    matched: int  # rows linked to a post / live session (video, live) or group (community)
    already_imported: bool


def _work_key(source: str, record: dict[str, Any]) -> str:
    if record.get("external_id"):
        return f"id:{record['external_id']}"[:64]
    basis = f"{record['title']}|{record['published_at'].isoformat()}"
    return "t:" + hashlib.sha256(basis.encode()).hexdigest()[:40]


def _match_post(uow: UnitOfWork, source: str, record: dict[str, Any]) -> int | None:
    """A published post on the platform within a day of the export's time, whose episode title the work's title carries."""
    published: datetime = record["published_at"]
    if record.get("external_id"):
        hit = uow.session.scalar(select(PostRow.id).where(PostRow.platform == source,
                                                          PostRow.external_id == record["external_id"]))
        if hit is not None:
            return hit
    rows = uow.session.execute(select(PostRow.id, EpisodeRow.title).join(
        EpisodeRow, EpisodeRow.id == PostRow.episode_id).where(
        PostRow.platform == source, PostRow.published_at.is_not(None),
        PostRow.published_at >= published - timedelta(days=1),
        PostRow.published_at <= published + timedelta(days=1))).all()
    hits = [pid for pid, title in rows if cal.title_matches(title, record["title"])]
    return hits[0] if len(hits) == 1 else None


def _match_live(uow: UnitOfWork, source: str, record: dict[str, Any]) -> int | None:
    started: datetime = record["started_at"]
    rows = uow.session.execute(select(LiveSessionRow.id, LiveSessionRow.planned_start).where(
        LiveSessionRow.platform == source, LiveSessionRow.status != "cancelled",
        LiveSessionRow.planned_start >= started - timedelta(hours=2),
        LiveSessionRow.planned_start <= started + timedelta(hours=2))).all()
    hits = [sid for sid, planned in rows if live_rules.matches_session(planned, started)]
    return hits[0] if len(hits) == 1 else None


def import_export(uow: UnitOfWork, principal: Principal, kind: ExportKind, source: str, path: Path, *,
                  as_of: date | None = None) -> ImportResult:
    """Import one exported file. ``source``: douyin | channels (video, live) or wecom (community).
    ``as_of``: the day the export was taken (video totals are as of that day; default today)."""
    ensure_role(principal, IMPORTERS)
    if source not in exports.SOURCES[kind]:
        raise InvalidInput(f"{kind.label}的来源应为 {'、'.join(exports.SOURCES[kind])}", field="platform")
    header, raw_rows = sheets.read_table(path)
    records = exports.parse_rows(source, kind, header, raw_rows)
    digest = sheets.file_digest(path)
    try:
        with uow:
            previous = uow.session.scalar(select(StatImportRow).where(
                StatImportRow.kind == kind.value, StatImportRow.source == source, StatImportRow.digest == digest))
            if previous is not None:
                return ImportResult(previous.public_id, kind.value, source, previous.rows, 0, 0, previous.rows,
                                    previous.matched, True)
            day = as_of or uow.clock.now().astimezone(SHANGHAI).date()
            batch = StatImportRow(public_id=new_public_id("imp"), kind=kind.value, source=source,
                                  file_name=path.name[:200], digest=digest, as_of=day, rows=len(records), inserted=0,
                                  updated=0, matched=0, imported_by=principal.actor, imported_at=uow.clock.now())
            uow.session.add(batch)
            uow.session.flush()
            inserted = updated = unchanged = matched = 0
            if kind is ExportKind.COMMUNITY:
                groups = {g.name: g.id for g in uow.session.scalars(select(CommunityGroupRow))}
                unknown = [f"第 {n} 行：社群「{r['group']}」未登记（先用 opsctl community add 登记）"
                           for n, r in records if r["group"] not in groups]
                if unknown:
                    raise ExportRejected(unknown, f"{kind.label}导出文件")
            seen: dict[tuple[Any, ...], int] = {}
            duplicates = []
            for number, record in records:
                if kind is ExportKind.VIDEO:
                    key: tuple[Any, ...] = (_work_key(source, record), day)
                    existing = uow.session.scalar(select(VideoStatRow).where(
                        VideoStatRow.platform == source, VideoStatRow.work_key == key[0], VideoStatRow.as_of == day))
                    link = _match_post(uow, source, record)
                    new = dict(platform=source, work_key=key[0], title=record["title"], published_at=record["published_at"],
                               as_of=day, post_id=link)
                    row_cls: Any = VideoStatRow
                elif kind is ExportKind.LIVE:
                    key = (record["started_at"],)
                    existing = uow.session.scalar(select(LiveStatRow).where(
                        LiveStatRow.platform == source, LiveStatRow.started_at == record["started_at"]))
                    link = _match_live(uow, source, record)
                    new = dict(platform=source, started_at=record["started_at"], session_id=link)
                    row_cls = LiveStatRow
                else:
                    key = (record["group"], record["day"])
                    group_id = groups[record["group"]]
                    existing = uow.session.scalar(select(CommunityStatRow).where(
                        CommunityStatRow.group_id == group_id, CommunityStatRow.day == record["day"]))
                    link = group_id
                    new = dict(group_id=group_id, day=record["day"])
                    row_cls = CommunityStatRow
                if key in seen:
                    duplicates.append(f"第 {number} 行：与第 {seen[key]} 行重复")
                    continue
                seen[key] = number
                values = {k: record.get(k) or 0 for k in COUNTS[kind]}
                if kind is ExportKind.LIVE:
                    values["title"] = record["title"]
                matched += link is not None
                if existing is None:
                    uow.session.add(row_cls(**new, **values, import_id=batch.id))
                    inserted += 1
                elif all(getattr(existing, k) == v for k, v in values.items()) and \
                        getattr(existing, "post_id", getattr(existing, "session_id", link)) == link:
                    unchanged += 1
                else:
                    for k, v in values.items():
                        setattr(existing, k, v)
                    if kind is ExportKind.VIDEO:
                        existing.post_id = link
                    elif kind is ExportKind.LIVE:
                        existing.session_id = link
                    existing.import_id = batch.id
                    updated += 1
            if duplicates:
                raise ExportRejected(duplicates, f"{kind.label}导出文件")
            batch.inserted, batch.updated, batch.matched = inserted, updated, matched
            audit.record(uow, principal.actor, "stats.import", "stat_import", batch.public_id, kind=kind.value,
                         source=source, rows=len(records), inserted=inserted, updated=updated, matched=matched)
            uow.session.flush()
            result = ImportResult(batch.public_id, kind.value, source, len(records), inserted, updated, unchanged,
                                  matched, False)
            uow.commit()
    except IntegrityError:  # the same file (or overlapping rows) imported at the same moment by someone else
        raise Conflict("同一数据正在被另一次导入写入，请稍后重试（重试不会重复计数）") from None
    return result


# --- figures for the reports (OPS-8) ---


@dataclass(frozen=True)
class PublishedCount:
    platform: str
    posts: int
    episodes: int


@dataclass(frozen=True)
class PlatformTotals:
    platform: str
    works: int
    plays: int
    likes: int
    comments: int
    shares: int
    followers: int
    matched_works: int


@dataclass(frozen=True)
class LiveTotals:
    platform: str
    sessions: int
    minutes: int
    viewers: int
    peak_online: int
    likes: int
    comments: int
    followers: int


@dataclass(frozen=True)
class CommunityTotals:
    group: str
    department: str
    members_end: int
    joined: int
    left: int
    messages: int
    active_days: int


def _bounds(since: date, until: date) -> tuple[datetime, datetime]:
    if until <= since:
        raise InvalidInput("结束日期应晚于开始日期", field="until")
    return (datetime.combine(since, time(0), tzinfo=SHANGHAI), datetime.combine(until, time(0), tzinfo=SHANGHAI))


def content_published(uow: UnitOfWork, principal: Principal, since: date, until: date) -> list[PublishedCount]:
    """Posts published per platform in [since, until) (Shanghai days), and distinct episodes."""
    ensure_role(principal, READERS)
    start, end = _bounds(since, until)
    with uow:
        rows = uow.session.execute(select(PostRow.platform, func.count(), func.count(func.distinct(PostRow.episode_id)))
                                   .where(PostRow.published_at >= start, PostRow.published_at < end)
                                   .group_by(PostRow.platform).order_by(PostRow.platform)).all()
    return [PublishedCount(p, n, e) for p, n, e in rows]


def platform_totals(uow: UnitOfWork, principal: Principal, since: date, until: date) -> list[PlatformTotals]:
    """Plays, likes, comments, shares and followers gained per platform, of works published in
    [since, until), each work counted with its latest export on or before ``until``."""
    ensure_role(principal, READERS)
    start, end = _bounds(since, until)
    with uow:
        latest = (select(VideoStatRow.platform, VideoStatRow.work_key, func.max(VideoStatRow.as_of).label("as_of"))
                  .where(VideoStatRow.published_at >= start, VideoStatRow.published_at < end,
                         VideoStatRow.as_of <= until)
                  .group_by(VideoStatRow.platform, VideoStatRow.work_key).subquery())
        rows = uow.session.execute(
            select(VideoStatRow.platform, func.count(), func.sum(VideoStatRow.plays), func.sum(VideoStatRow.likes),
                   func.sum(VideoStatRow.comments), func.sum(VideoStatRow.shares), func.sum(VideoStatRow.followers),
                   func.count(VideoStatRow.post_id))
            .join(latest, (latest.c.platform == VideoStatRow.platform) & (latest.c.work_key == VideoStatRow.work_key)
                  & (latest.c.as_of == VideoStatRow.as_of))
            .group_by(VideoStatRow.platform).order_by(VideoStatRow.platform)).all()
    return [PlatformTotals(p, n, int(a or 0), int(b or 0), int(c or 0), int(d or 0), int(e or 0), m)
            for p, n, a, b, c, d, e, m in rows]


def live_totals(uow: UnitOfWork, principal: Principal, since: date, until: date) -> list[LiveTotals]:
    """Broadcasts started in [since, until) per platform: count, minutes, viewers (sum), best peak online."""
    ensure_role(principal, READERS)
    start, end = _bounds(since, until)
    with uow:
        rows = uow.session.execute(
            select(LiveStatRow.platform, func.count(), func.sum(LiveStatRow.minutes), func.sum(LiveStatRow.viewers),
                   func.max(LiveStatRow.peak_online), func.sum(LiveStatRow.likes), func.sum(LiveStatRow.comments),
                   func.sum(LiveStatRow.followers))
            .where(LiveStatRow.started_at >= start, LiveStatRow.started_at < end)
            .group_by(LiveStatRow.platform).order_by(LiveStatRow.platform)).all()
    return [LiveTotals(p, n, int(a or 0), int(b or 0), int(c or 0), int(d or 0), int(e or 0), int(f or 0))
            for p, n, a, b, c, d, e, f in rows]


def community_totals(uow: UnitOfWork, principal: Principal, since: date, until: date) -> list[CommunityTotals]:
    """Per group over days in [since, until): members at the last day, joined, left, messages, days with speakers."""
    ensure_role(principal, READERS)
    _bounds(since, until)
    out = []
    with uow:
        for group in uow.session.scalars(select(CommunityGroupRow).order_by(CommunityGroupRow.id)):
            stats = uow.session.scalars(select(CommunityStatRow).where(
                CommunityStatRow.group_id == group.id, CommunityStatRow.day >= since,
                CommunityStatRow.day < until).order_by(CommunityStatRow.day)).all()
            if not stats:
                continue
            out.append(CommunityTotals(group.name, group.department, stats[-1].members, sum(s.joined for s in stats),
                                       sum(s.left for s in stats), sum(s.messages for s in stats),
                                       sum(1 for s in stats if s.active > 0)))
    return out


def list_imports(uow: UnitOfWork, principal: Principal, limit: int = 50) -> list[ImportResult]:
    ensure_role(principal, READERS)
    with uow:
        rows = uow.session.scalars(select(StatImportRow).order_by(StatImportRow.id.desc()).limit(limit))
        return [ImportResult(r.public_id, r.kind, r.source, r.rows, r.inserted, r.updated,
                             r.rows - r.inserted - r.updated, r.matched, False) for r in rows]
