"""Conversion funnels per channel, computed set-wise in SQL (no Python loop over events),
identically on SQLite and PostgreSQL.

Attribution is first touch: a follower belongs to the channel whose QR scene they followed
through (``followers.scene``); scenes that no registered channel owns (printed before channels
were recorded, e.g. the demo's ``qr_pkgcard_202610``) are reported under the scene itself.

Steps reach into the clinical core: 绑定健康卡 is a patient record bound to the follower
(``followers.patient_id`` or ``patients.openid``); 首次问诊 is the first consultation settled at
or after the follow that was paid (price > 0) or free by designation (定点保障); 首张处方 is the
first prescription approved by the pharmacist at or after the follow (prescriptions have no payment
state yet, so approval stands for "paid prescription"); 复诊 is a second such consultation within
``repeat_days`` of the first. 视频问诊 and 护理 read 0 with a note until their modules exist.
Package-card batches are channels; their parcels come from ``card_batch_prescriptions``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select, text, union, union_all
from sqlalchemy.orm import aliased

from campaigns.domain.funnel import CohortRow, StageResult, retention_matrix, stages_from_counts
from campaigns.persistence.models import CardBatchPrescriptionRow, CardBatchRow, ChannelRow, FunnelEventRow, QrCodeRow
from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import InvalidInput
from clinical_core.domain.staff import Role
from clinical_core.persistence.consultation import ConsultationRow
from clinical_core.persistence.models import FollowerRow, PatientRow
from clinical_core.persistence.prescription import PrescriptionRow
from clinical_core.persistence.uow import UnitOfWork

READERS = frozenset({Role.ADMIN, Role.OPERATIONS})
# PostgreSQL: memory for the funnel's hashes and sorts in this transaction only (the default 4 MB
# spills the distinct counts over millions of events to disk). None leaves the server's setting.
PG_WORK_MEM: str | None = "256MB"
REPEAT_DAYS = 30


@dataclass(frozen=True, slots=True)
class ChannelFunnel:
    channel: str
    name: str
    registered_channel: bool  # False: a scene no channel owns
    stages: list[StageResult]
    median_days_to_register: float | None = None  # follow → health card bound (= stages[2].median_days)
    parcels: int | None = None  # package-card batch: prescriptions whose parcels carried it; None for other channels


def _attributed_followers(start: datetime, end: datetime) -> Select:
    """One row per follower who followed through a QR scene in the window: the channel (first
    touch), the follow instant, and the patient the follower is bound to (``followers.patient_id``,
    or a patient record carrying the openid) with the instant of binding."""
    by_openid, by_id = aliased(PatientRow), aliased(PatientRow)
    channel = func.coalesce(ChannelRow.code, FollowerRow.scene)
    return (select(FollowerRow.openid.label("openid"), channel.label("channel"),
                   FollowerRow.subscribed_at.label("followed_at"),
                   func.coalesce(by_id.id, by_openid.id).label("patient_id"),
                   func.coalesce(by_id.created_at, by_openid.created_at).label("registered_at"))
            .select_from(FollowerRow)
            .outerjoin(QrCodeRow, QrCodeRow.scene == FollowerRow.scene)
            .outerjoin(ChannelRow, ChannelRow.id == QrCodeRow.channel_id)
            .outerjoin(by_openid, by_openid.openid == FollowerRow.openid)
            .outerjoin(by_id, by_id.id == FollowerRow.patient_id)
            .where(FollowerRow.scene.is_not(None), FollowerRow.subscribed_at >= start, FollowerRow.subscribed_at < end))


def _scans(start: datetime, end: datetime) -> Select:
    channel = func.coalesce(ChannelRow.code, FunnelEventRow.scene)
    return (select(FunnelEventRow.openid.label("openid"), channel.label("channel"))
            .select_from(FunnelEventRow).outerjoin(ChannelRow, ChannelRow.id == FunnelEventRow.channel_id)
            .where(FunnelEventRow.event.in_(("scan", "subscribe")), FunnelEventRow.scene.is_not(None),
                   FunnelEventRow.at >= start, FunnelEventRow.at < end))


def _consultations() -> Select:
    """Consultations that count: settled (``paid_at``; a free order is settled at creation) and
    either paid (price > 0) or 定点保障 (free by designation). Their instant is the settlement."""
    c = ConsultationRow
    return (select(c.patient_id.label("patient_id"), c.paid_at.label("at"))
            .where(c.paid_at.is_not(None), or_(c.price_fen > 0, c.kind == "designated")))


def _conversions(start: datetime, end: datetime, repeat_days: int, dialect: str):  # type: ignore[no-untyped-def]
    """Subqueries, one row per converted follower: the first consultation after the follow, the
    first approved prescription after the follow, and a second consultation within ``repeat_days``
    of the first. Everything is joined and aggregated set-wise; the caller groups by channel."""
    f = _attributed_followers(start, end).subquery("f")
    q = _consultations().subquery("q")
    first = (select(f.c.openid, f.c.patient_id, func.min(q.c.at).label("at"))
             .join(q, and_(q.c.patient_id == f.c.patient_id, q.c.at >= f.c.followed_at))
             .group_by(f.c.openid, f.c.patient_id)).subquery("c1")
    rx = PrescriptionRow
    prescribed = (select(f.c.openid, func.min(rx.reviewed_at).label("at"))
                  .join(rx, and_(rx.patient_id == f.c.patient_id, rx.status == "approved",
                                 rx.reviewed_at >= f.c.followed_at))
                  .group_by(f.c.openid)).subquery("rx")
    q2 = _consultations().subquery("q2")
    repeat = (select(first.c.openid, func.min(q2.c.at).label("at"))
              .join(q2, and_(q2.c.patient_id == first.c.patient_id, q2.c.at > first.c.at,
                             _days(q2.c.at, first.c.at, dialect) <= repeat_days))
              .group_by(first.c.openid)).subquery("rep")
    return f, first, prescribed, repeat


def _medians(uow: UnitOfWork, f, first, prescribed, repeat, channel: str | None) -> dict[tuple[str, str], float]:  # type: ignore[no-untyped-def]
    """Median days from the follow to each stage, per channel and stage, with window functions
    (row_number/count over the channel and stage), the same SQL on SQLite and PostgreSQL.
    Bindings before the follow (an existing patient who followed) do not count as conversions."""
    d = uow.dialect
    parts = [select(f.c.channel, literal("registered").label("stage"),
                    _days(f.c.registered_at, f.c.followed_at, d).label("d"))
             .where(f.c.registered_at.is_not(None), f.c.registered_at >= f.c.followed_at)]
    for key, sub in (("consulted", first), ("prescribed", prescribed), ("repeat", repeat)):
        parts.append(select(f.c.channel, literal(key).label("stage"), _days(sub.c.at, f.c.followed_at, d).label("d"))
                     .join(sub, sub.c.openid == f.c.openid))
    if channel:
        parts = [p.where(f.c.channel == channel) for p in parts]
    c = union_all(*parts).subquery("conv")
    ranked = select(c.c.channel, c.c.stage, c.c.d,
                    func.row_number().over(partition_by=(c.c.channel, c.c.stage), order_by=c.c.d).label("rn"),
                    func.count().over(partition_by=(c.c.channel, c.c.stage)).label("cnt")).subquery("r")
    middle = (select(ranked.c.channel, ranked.c.stage, func.avg(ranked.c.d))
              .where(or_(ranked.c.rn == (ranked.c.cnt + 1) // 2, ranked.c.rn == (ranked.c.cnt + 2) // 2))
              .group_by(ranked.c.channel, ranked.c.stage))
    return {(str(ch), str(st)): round(float(v), 2) for ch, st, v in uow.session.execute(middle)}


def funnel(uow: UnitOfWork, principal: Principal, start: datetime, end: datetime,
           channel: str | None = None, repeat_days: int = REPEAT_DAYS) -> list[ChannelFunnel]:
    """One funnel per channel (or only ``channel``), for follows and scans in [start, end):
    扫码 → 关注 → 绑定健康卡 → 首次问诊 → 首张处方 / 视频问诊 / 护理 → ``repeat_days`` 内复诊."""
    ensure_role(principal, READERS)
    if not 1 <= repeat_days <= 365:
        raise InvalidInput("复诊窗口应为 1 到 365 天", field="repeat_days")
    with uow:
        f, first, prescribed, repeat = _conversions(start, end, repeat_days, uow.dialect)
        scans = _scans(start, end).subquery("s")
        touched = union(select(f.c.openid, f.c.channel), select(scans.c.openid, scans.c.channel)).subquery("t")
        scanned_q = (select(touched.c.channel, func.count(func.distinct(touched.c.openid)).label("n"))
                     .group_by(touched.c.channel))
        n = lambda col: func.count(func.distinct(col))  # noqa: E731
        followed_q = (select(f.c.channel, n(f.c.openid), n(f.c.openid).filter(f.c.patient_id.is_not(None)),
                             n(first.c.openid), n(prescribed.c.openid), n(repeat.c.openid))
                      .select_from(f)
                      .outerjoin(first, first.c.openid == f.c.openid)
                      .outerjoin(prescribed, prescribed.c.openid == f.c.openid)
                      .outerjoin(repeat, repeat.c.openid == f.c.openid)
                      .group_by(f.c.channel))
        parcels_q = (select(CardBatchRow.code, func.count(CardBatchPrescriptionRow.id))
                     .outerjoin(CardBatchPrescriptionRow, CardBatchPrescriptionRow.batch_id == CardBatchRow.id)
                     .group_by(CardBatchRow.code))
        if channel:
            scanned_q = scanned_q.where(touched.c.channel == channel)
            followed_q = followed_q.where(f.c.channel == channel)
            parcels_q = parcels_q.where(CardBatchRow.code == channel)
        if uow.dialect == "postgresql" and PG_WORK_MEM:
            uow.session.execute(text(f"SET LOCAL work_mem = '{PG_WORK_MEM}'"))
        medians = _medians(uow, f, first, prescribed, repeat, channel)
        counts: dict[str, dict[str, int]] = {}
        for name, scanned in uow.session.execute(scanned_q):
            counts.setdefault(name, {})["scanned"] = int(scanned)
        for name, *row in uow.session.execute(followed_q):
            counts.setdefault(name, {}).update(zip(("followed", "registered", "consulted", "prescribed", "repeat"),
                                                   map(int, row)))
        parcels = {str(code): int(k) for code, k in uow.session.execute(parcels_q)}
        wanted = list(counts) + ([channel] if channel else [])
        names = {code: name for code, name in uow.session.execute(
            select(ChannelRow.code, ChannelRow.name).where(ChannelRow.code.in_(wanted)))} if wanted else {}
    if channel and channel not in counts:
        counts[channel] = {}
    note = {"repeat": f"首次问诊后 {repeat_days} 天内再次问诊"}
    result = []
    for code, c in sorted(counts.items(), key=lambda kv: (-kv[1].get("scanned", 0), kv[0])):
        per_stage = {stage: v for (ch, stage), v in medians.items() if ch == code}
        result.append(ChannelFunnel(code, names.get(code, "未登记的场景值"), code in names,
                                    stages_from_counts(c, per_stage, note), per_stage.get("registered"),
                                    parcels.get(code)))
    return result


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
