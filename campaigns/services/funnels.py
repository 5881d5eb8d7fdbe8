"""Conversion funnels per channel, computed set-wise in SQL (no Python loop over events),
identically on SQLite and PostgreSQL.

Attribution is first touch: a follower belongs to the channel whose QR scene they followed
through (``followers.scene``); scenes that no registered channel owns (printed before channels
were recorded, e.g. the demo's ``qr_pkgcard_202610``) are reported under the scene itself.
Stages whose modules do not exist yet read 0, with a note.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, literal, or_, select, text, union
from sqlalchemy.orm import aliased

from campaigns.domain.funnel import CohortRow, StageResult, retention_matrix, stages_from_counts
from campaigns.persistence.models import ChannelRow, FunnelEventRow, QrCodeRow
from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import FollowerRow, PatientRow
from clinical_core.persistence.uow import UnitOfWork

READERS = frozenset({Role.ADMIN, Role.OPERATIONS})
# PostgreSQL: memory for the funnel's hashes and sorts in this transaction only (the default 4 MB
# spills the distinct counts over millions of events to disk). None leaves the server's setting.
PG_WORK_MEM: str | None = "256MB"


@dataclass(frozen=True, slots=True)
class ChannelFunnel:
    channel: str
    name: str
    registered_channel: bool  # False: a scene no channel owns
    stages: list[StageResult]
    median_days_to_register: float | None = None  # follow → real-name registration, registrations after the follow


def _attributed_followers(start: datetime, end: datetime) -> Select:
    channel = func.coalesce(ChannelRow.code, FollowerRow.scene)
    registered = or_(FollowerRow.patient_id.is_not(None),
                     select(PatientRow.id).where(PatientRow.openid == FollowerRow.openid).exists())
    return (select(FollowerRow.openid.label("openid"), channel.label("channel"),
                   registered.label("registered"))
            .select_from(FollowerRow)
            .outerjoin(QrCodeRow, QrCodeRow.scene == FollowerRow.scene)
            .outerjoin(ChannelRow, ChannelRow.id == QrCodeRow.channel_id)
            .where(FollowerRow.scene.is_not(None), FollowerRow.subscribed_at >= start, FollowerRow.subscribed_at < end))


def _scans(start: datetime, end: datetime) -> Select:
    channel = func.coalesce(ChannelRow.code, FunnelEventRow.scene)
    return (select(FunnelEventRow.openid.label("openid"), channel.label("channel"))
            .select_from(FunnelEventRow).outerjoin(ChannelRow, ChannelRow.id == FunnelEventRow.channel_id)
            .where(FunnelEventRow.event.in_(("scan", "subscribe")), FunnelEventRow.scene.is_not(None),
                   FunnelEventRow.at >= start, FunnelEventRow.at < end))


def _median_days_to_register(uow: UnitOfWork, start: datetime, end: datetime, channel: str | None) -> dict[str, float]:
    """Median days from the follow to the patient record, per channel, with window functions
    (row_number/count over the channel), the same SQL on SQLite and PostgreSQL."""
    by_openid, by_id = aliased(PatientRow), aliased(PatientRow)
    registered_at = func.coalesce(by_id.created_at, by_openid.created_at)
    name = func.coalesce(ChannelRow.code, FollowerRow.scene)
    delta = _days(registered_at, FollowerRow.subscribed_at, uow.dialect)
    conversions = (select(name.label("channel"), delta.label("d")).select_from(FollowerRow)
                   .outerjoin(QrCodeRow, QrCodeRow.scene == FollowerRow.scene)
                   .outerjoin(ChannelRow, ChannelRow.id == QrCodeRow.channel_id)
                   .outerjoin(by_openid, by_openid.openid == FollowerRow.openid)
                   .outerjoin(by_id, by_id.id == FollowerRow.patient_id)
                   .where(FollowerRow.scene.is_not(None), FollowerRow.subscribed_at >= start,
                          FollowerRow.subscribed_at < end, registered_at.is_not(None),
                          registered_at >= FollowerRow.subscribed_at))
    if channel:
        conversions = conversions.where(name == channel)
    c = conversions.subquery("c")
    ranked = select(c.c.channel, c.c.d,
                    func.row_number().over(partition_by=c.c.channel, order_by=c.c.d).label("rn"),
                    func.count().over(partition_by=c.c.channel).label("cnt")).subquery("r")
    middle = (select(ranked.c.channel, func.avg(ranked.c.d))
              .where(or_(ranked.c.rn == (ranked.c.cnt + 1) // 2, ranked.c.rn == (ranked.c.cnt + 2) // 2))
              .group_by(ranked.c.channel))
    return {str(k): round(float(v), 2) for k, v in uow.session.execute(middle)}


def funnel(uow: UnitOfWork, principal: Principal, start: datetime, end: datetime,
           channel: str | None = None) -> list[ChannelFunnel]:
    """One funnel per channel (or only ``channel``), for follows and scans in [start, end)."""
    ensure_role(principal, READERS)
    followers = _attributed_followers(start, end).subquery("f")
    scans = _scans(start, end).subquery("s")
    touched = union(select(followers.c.openid, followers.c.channel),
                    select(scans.c.openid, scans.c.channel)).subquery("t")
    scanned_q = select(touched.c.channel, func.count(func.distinct(touched.c.openid)).label("n")).group_by(touched.c.channel)
    followed_q = (select(followers.c.channel, func.count(func.distinct(followers.c.openid)).label("n"),
                         func.count(func.distinct(followers.c.openid)).filter(followers.c.registered).label("r"))
                  .group_by(followers.c.channel))
    if channel:
        scanned_q = scanned_q.where(touched.c.channel == channel)
        followed_q = followed_q.where(followers.c.channel == channel)
    with uow:
        if uow.dialect == "postgresql" and PG_WORK_MEM:
            uow.session.execute(text(f"SET LOCAL work_mem = '{PG_WORK_MEM}'"))
        medians = _median_days_to_register(uow, start, end, channel)
        counts: dict[str, dict[str, int]] = {}
        for name, n in uow.session.execute(scanned_q):
            counts.setdefault(name, {})["scanned"] = int(n)
        for name, n, r in uow.session.execute(followed_q):
            counts.setdefault(name, {}).update(followed=int(n), registered=int(r))
        wanted = list(counts) + ([channel] if channel else [])
        names = {code: name for code, name in uow.session.execute(
            select(ChannelRow.code, ChannelRow.name).where(ChannelRow.code.in_(wanted)))} if wanted else {}
    if channel and channel not in counts:
        counts[channel] = {}
    return [ChannelFunnel(code, names.get(code, "未登记的场景值"), code in names, stages_from_counts(c),
                          medians.get(code))
            for code, c in sorted(counts.items(), key=lambda kv: (-kv[1].get("scanned", 0), kv[0]))]


def _days(later: ColumnElement, earlier: ColumnElement, dialect: str) -> ColumnElement:
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier) / 86400.0
    return func.julianday(later) - func.julianday(earlier)


def _cohort_week(column: ColumnElement, dialect: str) -> ColumnElement:
    """Monday (Asia/Shanghai) of the week of an instant, as YYYY-MM-DD, in SQL."""
    if dialect == "postgresql":
        return func.to_char(func.date_trunc("week", func.timezone("Asia/Shanghai", column)), "YYYY-MM-DD")
    return func.date(column, "+8 hours", "-6 days", "weekday 1")


def weekly_retention(uow: UnitOfWork, principal: Principal, start: datetime, end: datetime,
                     channel: str | None = None, weeks: int = 8) -> list[CohortRow]:
    """Weekly cohorts by follow week × weeks later: the share still following. Grouped in SQL
    (cohort, whole weeks followed); only the small grouped result is arranged in Python."""
    ensure_role(principal, READERS)
    with uow:
        now = literal(uow.clock.now(), type_=FollowerRow.subscribed_at.type)
        d = uow.dialect
        stayed_days = _days(func.coalesce(FollowerRow.unsubscribed_at, now), FollowerRow.subscribed_at, d)
        stayed = func.floor(stayed_days / 7).label("stayed")
        cohort = _cohort_week(FollowerRow.subscribed_at, d).label("cohort")
        query = (select(cohort, stayed, func.count().label("n"))
                 .select_from(FollowerRow)
                 .where(FollowerRow.subscribed_at >= start, FollowerRow.subscribed_at < end)
                 .group_by(cohort, stayed))
        if channel:
            query = (query.outerjoin(QrCodeRow, QrCodeRow.scene == FollowerRow.scene)
                     .outerjoin(ChannelRow, ChannelRow.id == QrCodeRow.channel_id)
                     .where(func.coalesce(ChannelRow.code, FollowerRow.scene) == channel))
        first = (select(cohort, func.floor(_days(now, func.min(FollowerRow.subscribed_at), d) / 7))
                 .where(FollowerRow.subscribed_at >= start, FollowerRow.subscribed_at < end).group_by(cohort))
        groups: dict[str, dict[int, int]] = {}
        for name, weeks_followed, n in uow.session.execute(query):
            groups.setdefault(str(name), {})[int(weeks_followed)] = int(n)
        observed = {str(name): int(w) for name, w in uow.session.execute(first)}
    return retention_matrix(groups, observed, weeks)
