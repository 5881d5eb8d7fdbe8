"""Live sessions and patient communities: schedule with a plan, announce to followers through
the push engine and to community groups as operators' tasks, go live, end, cancel or
reschedule. Status changes are conditional UPDATEs with audit entries.

Announcing locks the session row (``FOR UPDATE`` on PostgreSQL, the write lock on SQLite), so two
operators announcing at once create one announcement per target and start time. An announcement
to followers is a push of the campaigns engine made through the ``AnnouncementPushes`` port in
the same transaction; its state is read from the push (``announcements``). Cancelling or
rescheduling the session withdraws the open announcements (their pushes cancelled) in the same
transaction; a rescheduled session is announced again to the same targets with the new time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import (
    ConfigurationError,
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
)
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import DepartmentRow, StaffRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit
from content.domain import live as rules
from content.domain.calendar import Platform
from content.domain.live import (
    FOLLOWERS,
    AnnouncementAction,
    AnnouncementStatus,
    Audience,
    LiveAction,
    LiveStatus,
)
from content.persistence.models import (
    CommunityGroupRow,
    LiveAnnouncementRow,
    LiveSessionRow,
    LiveStatRow,
)
from content.ports.announcements import (
    AnnouncementPush,
    AnnouncementPushes,
    PushProgress,
)
from content.services import live_copy as copy

PLANNERS = (Role.OPERATIONS, Role.ADMIN)
VIEWERS = (Role.OPERATIONS, Role.ADMIN, Role.DOCTOR, Role.CUSTOMER_SERVICE)


@dataclass(frozen=True)
class LiveView:
    public_id: str
    platform: str
    account: str
    title: str
    host: str | None
    department: str | None
    planned_start: datetime
    planned_minutes: int
    status: str
    status_label: str
    plan: str
    announcements: int  # open or done, not withdrawn
    viewers: int | None  # from the imported export, when there is one
    peak_online: int | None


@dataclass(frozen=True)
class AnnouncementView:
    public_id: str | None  # None in a dry run
    session_id: str
    session_title: str
    target: str  # followers | community group id
    target_name: str
    purpose: str  # announce | reschedule | cancel
    announced_start: datetime
    text: str
    status: str  # open | posted | withdrawn
    state: str  # scheduled | sending | sent | failed | skipped | cancelled | to_post | posted | withdrawn | dry_run
    state_label: str
    kind: str | None = None  # followers: mass | template
    audience: str | None = None
    push_id: str | None = None
    send_at: datetime | None = None
    audience_size: int | None = None
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    pending: int = 0
    posted_at: datetime | None = None
    posted_by: str | None = None


@dataclass(frozen=True)
class GroupView:
    public_id: str
    name: str
    department: str
    owner: str
    active: bool


@dataclass(frozen=True)
class Withdrawn:
    announcements: int
    pushes_cancelled: int


def _session(uow: UnitOfWork, public_id: str, *, lock: bool = False) -> LiveSessionRow:
    query = select(LiveSessionRow).where(LiveSessionRow.public_id == public_id)
    if lock and uow.dialect == "postgresql":
        query = query.with_for_update()
    row = uow.session.scalar(query)
    if row is None:
        raise NotFound(f"直播 {public_id} 不存在")
    return row


def _view(uow: UnitOfWork, row: LiveSessionRow) -> LiveView:
    host = uow.session.get(StaffRow, row.host_staff_id) if row.host_staff_id else None
    stat = uow.session.scalar(select(LiveStatRow).where(LiveStatRow.session_id == row.id)
                              .order_by(LiveStatRow.id.desc()).limit(1))
    count = uow.session.scalar(select(func.count()).select_from(LiveAnnouncementRow).where(
        LiveAnnouncementRow.session_id == row.id,
        LiveAnnouncementRow.status != AnnouncementStatus.WITHDRAWN.value)) or 0
    status = LiveStatus(row.status)
    return LiveView(row.public_id, row.platform, row.account, row.title, host.name if host else None,
                    row.department_code, row.planned_start, row.planned_minutes, status.value, status.label, row.plan,
                    count, stat.viewers if stat else None, stat.peak_online if stat else None)


def schedule(uow: UnitOfWork, principal: Principal, *, platform: Platform, account: str, title: str,
             planned_start: datetime, minutes: int, plan: str, host_staff_id: str | None = None,
             department: str | None = None) -> LiveView:
    """排期一场直播 with its plan (LIVE-1). ``department`` (a department code; by default the host's)
    decides whose followers hear of it."""
    ensure_role(principal, PLANNERS)
    account = account.strip()
    if not 2 <= len(account) <= 60:
        raise InvalidInput("直播账号名应为 2 到 60 个字", field="account")
    with uow:
        title, plan = rules.validate_plan(title, planned_start, minutes, plan, uow.clock.now())
        host = None
        if host_staff_id:
            host = uow.session.scalar(select(StaffRow).where(StaffRow.public_id == host_staff_id))
            if host is None:
                raise NotFound(f"医生 {host_staff_id} 不存在")
        code = None
        if department:
            code = uow.session.scalar(select(DepartmentRow.code).where(DepartmentRow.code == department.strip()))
            if code is None:
                raise NotFound(f"科室 {department} 不存在", field="department")
        elif host is not None and host.department_id:
            code = uow.session.scalar(select(DepartmentRow.code).where(DepartmentRow.id == host.department_id))
        row = LiveSessionRow(public_id=new_public_id("liv"), platform=platform.value, account=account, title=title,
                             host_staff_id=host.id if host else None, department_code=code,
                             planned_start=planned_start, planned_minutes=minutes, plan=plan,
                             status=LiveStatus.SCHEDULED.value, created_by=principal.actor, created_at=uow.clock.now())
        uow.session.add(row)
        uow.session.flush()
        audit.record(uow, principal.actor, "live.schedule", "live", row.public_id, platform=platform.value)
        view = _view(uow, row)
        uow.commit()
    return view


# -- announcements -------------------------------------------------------------------------------
def _facts(uow: UnitOfWork, row: LiveSessionRow) -> copy.SessionFacts:
    host = uow.session.get(StaffRow, row.host_staff_id) if row.host_staff_id else None
    dept = uow.session.scalar(select(DepartmentRow.name).where(DepartmentRow.code == row.department_code)) \
        if row.department_code else None
    return copy.SessionFacts(row.title, row.planned_start, row.planned_minutes, Platform(row.platform).label,
                             row.account, host.name if host else None, dept)


def _audience_rules(uow: UnitOfWork, row: LiveSessionRow, audience: Audience) -> tuple[dict[str, str], str]:
    if audience is Audience.DEPARTMENT:
        if not row.department_code:
            raise InvalidInput("这场直播没有科室（排期时指定 --department 或主讲医生），请改用 --audience doctor 或 all",
                               field="audience")
        name = uow.session.scalar(select(DepartmentRow.name).where(DepartmentRow.code == row.department_code))
        return {"department": row.department_code}, f"直播预告·{name or row.department_code}关注者"
    if audience is Audience.DOCTOR:
        host = uow.session.get(StaffRow, row.host_staff_id) if row.host_staff_id else None
        if host is None:
            raise InvalidInput("这场直播没有主讲医生，请改用 --audience department 或 all", field="audience")
        return {"doctor": host.public_id}, f"直播预告·{host.name}医生的患者"
    return {}, "直播预告·全部关注者"


def _group_of(uow: UnitOfWork, public_id: str) -> CommunityGroupRow:
    group = uow.session.scalar(select(CommunityGroupRow).where(CommunityGroupRow.public_id == public_id))
    if group is None or not group.active:
        raise NotFound(f"社群 {public_id} 不存在或已停用")
    return group


def _need(pushes: AnnouncementPushes | None) -> AnnouncementPushes:
    if pushes is None:
        raise ConfigurationError("给关注者发直播预告需要推送引擎", hint="通过 opsctl live 命令或 HTTP 接口操作")
    return pushes


def _push_announcement(uow: UnitOfWork, pushes: AnnouncementPushes, row: LiveSessionRow, *, kind: str,
                       audience: Audience, send_at: datetime | None, purpose: str, actor: str,
                       previous_start: datetime | None = None,
                       template: str | None = None) -> tuple[LiveAnnouncementRow, PushProgress]:
    facts = _facts(uow, row)
    text = copy.render(template or copy.FOLLOWERS_TEMPLATE, copy.variables(facts, purpose, previous_start),
                       limit=copy.MASS_TEXT_MAX, what="关注者预告")
    rules_, label = _audience_rules(uow, row, audience)
    fields = copy.template_fields(facts, purpose) if kind == "template" else {}
    progress = pushes.schedule(uow, AnnouncementPush(
        name=f"直播预告·{row.title}"[:80], kind=kind, audience=rules_, audience_label=label, text=text,
        template_fields=fields, send_at=send_at, actor=actor))
    rules.ensure_sent_before_start(progress.scheduled_at or uow.clock.now(), row.planned_start)
    ann = LiveAnnouncementRow(
        public_id=new_public_id("ann"), session_id=row.id, target=FOLLOWERS, announced_start=row.planned_start,
        text=text[:600], status=AnnouncementStatus.OPEN.value, purpose=purpose, kind=kind, audience=audience.value,
        push_ref=progress.ref, send_at=progress.scheduled_at, created_by=actor, created_at=uow.clock.now())
    uow.session.add(ann)
    return ann, progress


def _group_task(uow: UnitOfWork, row: LiveSessionRow, group: CommunityGroupRow, *, purpose: str, actor: str,
                previous_start: datetime | None = None, template: str | None = None) -> LiveAnnouncementRow:
    facts = _facts(uow, row)
    text = copy.render(template or copy.GROUP_TEMPLATE,
                       copy.variables(facts, purpose, previous_start, {"name": group.name, "owner": group.owner}),
                       limit=copy.GROUP_TEXT_MAX, what="社群预告")
    ann = LiveAnnouncementRow(
        public_id=new_public_id("ann"), session_id=row.id, target=group.public_id, announced_start=row.planned_start,
        text=text, status=AnnouncementStatus.OPEN.value, purpose=purpose, created_by=actor, created_at=uow.clock.now())
    uow.session.add(ann)
    return ann


def _current(uow: UnitOfWork, row: LiveSessionRow, target: str) -> LiveAnnouncementRow | None:
    """The target's announcement of the session's current start time that still stands."""
    return uow.session.scalar(select(LiveAnnouncementRow).where(
        LiveAnnouncementRow.session_id == row.id, LiveAnnouncementRow.target == target,
        LiveAnnouncementRow.announced_start == row.planned_start,
        LiveAnnouncementRow.status != AnnouncementStatus.WITHDRAWN.value).order_by(LiveAnnouncementRow.id.desc())
        .limit(1))


def announce(uow: UnitOfWork, principal: Principal, session_id: str, *, pushes: AnnouncementPushes | None = None,
             followers: bool = True, kind: str = "mass", audience: Audience = Audience.DEPARTMENT,
             send_at: datetime | None = None, group_ids: tuple[str, ...] = (), dry_run: bool = False,
             followers_template: str | None = None, group_template: str | None = None) -> list[AnnouncementView]:
    """直播预告 (LIVE-2, LIVE-3): a push to the session's followers (``kind`` mass or template, at
    ``send_at`` or now; quiet hours, the frequency cap, opt-outs and WeChat's 4 mass sends a month
    apply), and a task per community group with the copy for the operators to post. Idempotent
    per target and start time. ``dry_run`` shows the copy and the audience and writes nothing."""
    ensure_role(principal, PLANNERS)
    if kind not in ("mass", "template"):
        raise InvalidInput("预告推送类型应为 mass（群发）或 template（模板消息）", field="kind")
    if send_at is not None and send_at.tzinfo is None:
        raise InvalidInput("发送时间需要带时区", field="send_at")
    for source, what in ((followers_template, "关注者预告"), (group_template, "社群预告")):
        if source is not None:
            copy.check_template(source, what)
    if not followers and not group_ids:
        raise InvalidInput("请至少选择关注者或一个社群", field="group")
    if followers:
        pushes = _need(pushes)
    with uow:
        row = _session(uow, session_id, lock=True)
        now = uow.clock.now()
        rules.ensure_may_announce(LiveStatus(row.status), row.planned_start, now)
        if not dry_run:  # a write on the session row: concurrent announcements of one session queue here
            uow.session.execute(update(LiveSessionRow).where(LiveSessionRow.id == row.id)
                                .values(announced_at=func.coalesce(LiveSessionRow.announced_at, now))
                                .execution_options(synchronize_session=False))
        groups = [_group_of(uow, gid) for gid in dict.fromkeys(group_ids)]
        out: list[AnnouncementView] = []
        if followers:
            assert pushes is not None
            existing = _current(uow, row, FOLLOWERS)
            if existing is not None and existing.push_ref and not dry_run:
                progress = pushes.progress(uow, [existing.push_ref]).get(existing.push_ref)
                if progress is None or progress.status == "cancelled":  # cancelled in `opsctl push`: announce anew
                    _move(uow, existing, AnnouncementAction.WITHDRAW, principal.actor, withdrawn_at=now,
                          withdraw_reason="push_cancelled")
                    existing = None
            if dry_run:
                facts = _facts(uow, row)
                text = copy.render(followers_template or copy.FOLLOWERS_TEMPLATE, copy.variables(facts, "announce"),
                                   limit=copy.MASS_TEXT_MAX, what="关注者预告")
                rules_, _label = _audience_rules(uow, row, audience)
                size = pushes.audience_size(uow, rules_)
                out.append(AnnouncementView(None, row.public_id, row.title, FOLLOWERS, audience.label, "announce",
                                            row.planned_start, text, "open", "dry_run", "预演（未发送）", kind=kind,
                                            audience=audience.value, send_at=send_at or now, audience_size=size))
            elif existing is None:
                _push_announcement(uow, pushes, row, kind=kind, audience=audience, send_at=send_at, purpose="announce",
                                   actor=principal.actor, template=followers_template)
        for group in groups:
            if dry_run:
                facts = _facts(uow, row)
                text = copy.render(group_template or copy.GROUP_TEMPLATE,
                                   copy.variables(facts, "announce", None, {"name": group.name, "owner": group.owner}),
                                   limit=copy.GROUP_TEXT_MAX, what="社群预告")
                out.append(AnnouncementView(None, row.public_id, row.title, group.public_id, group.name, "announce",
                                            row.planned_start, text, "open", "dry_run", "预演（未发送）"))
            elif _current(uow, row, group.public_id) is None:
                _group_task(uow, row, group, purpose="announce", actor=principal.actor, template=group_template)
        if dry_run:
            return out
        uow.session.flush()
        audit.record(uow, principal.actor, "live.announce", "live", row.public_id,
                     followers=followers, groups=len(groups), kind=kind if followers else None)
        targets = ([FOLLOWERS] if followers else []) + [g.public_id for g in groups]
        views = [v for v in _announcement_views(uow, row, pushes) if v.target in targets
                 and v.announced_start == row.planned_start and v.status != AnnouncementStatus.WITHDRAWN.value]
        uow.commit()
    return views


def _announcement_views(uow: UnitOfWork, row: LiveSessionRow,
                        pushes: AnnouncementPushes | None) -> list[AnnouncementView]:
    anns = list(uow.session.scalars(select(LiveAnnouncementRow).where(LiveAnnouncementRow.session_id == row.id)
                                    .order_by(LiveAnnouncementRow.id)))
    refs = [a.push_ref for a in anns if a.push_ref]
    progress = pushes.progress(uow, refs) if pushes is not None and refs else {}
    names = {g.public_id: g.name for g in uow.session.scalars(select(CommunityGroupRow).where(
        CommunityGroupRow.public_id.in_({a.target for a in anns})))}
    out = []
    for a in anns:
        is_group = a.target != FOLLOWERS
        p = progress.get(a.push_ref or "")
        counts = p.counts if p else {}
        state, label = rules.announcement_state(AnnouncementStatus(a.status), is_group, p.status if p else None,
                                                counts)
        if not is_group and p is None and pushes is None:
            state, label = "unknown", "（未连接推送引擎）"
        target_name = names.get(a.target, a.target) if is_group else \
            (Audience(a.audience).label if a.audience else "关注者")
        out.append(AnnouncementView(
            a.public_id, row.public_id, row.title, a.target, target_name, a.purpose, a.announced_start, a.text,
            a.status, state, label, kind=a.kind, audience=a.audience, push_id=a.push_ref,
            send_at=(p.scheduled_at if p else None) or a.send_at, audience_size=p.audience_size if p else None,
            sent=counts.get("sent", 0), failed=counts.get("failed", 0) + counts.get("unknown", 0),
            skipped=counts.get("skipped", 0), pending=counts.get("pending", 0) + counts.get("sending", 0),
            posted_at=a.posted_at, posted_by=a.posted_by))
    return out


def announcements(uow: UnitOfWork, principal: Principal, session_id: str, *,
                  pushes: AnnouncementPushes | None = None) -> list[AnnouncementView]:
    """A session's announcements with their state: a follower announcement's is its push's
    (scheduled, sending, sent with counts, failed, all skipped by the rules); a group task's
    is to post or posted; withdrawn ones stay listed."""
    ensure_role(principal, VIEWERS)
    with uow:
        return _announcement_views(uow, _session(uow, session_id), pushes)


def group_tasks(uow: UnitOfWork, principal: Principal, *, session_id: str | None = None,
                include_done: bool = False) -> list[AnnouncementView]:
    """The operators' task list: copy to post in each named community group (groups are not
    WeChat API targets), oldest first."""
    ensure_role(principal, PLANNERS)
    with uow:
        query = select(LiveAnnouncementRow, LiveSessionRow, CommunityGroupRow).join(
            LiveSessionRow, LiveSessionRow.id == LiveAnnouncementRow.session_id).join(
            CommunityGroupRow, CommunityGroupRow.public_id == LiveAnnouncementRow.target)
        if session_id:
            query = query.where(LiveSessionRow.public_id == session_id)
        if not include_done:
            query = query.where(LiveAnnouncementRow.status == AnnouncementStatus.OPEN.value)
        out = []
        for a, s, g in uow.session.execute(query.order_by(LiveAnnouncementRow.id)).all():
            state, label = rules.announcement_state(AnnouncementStatus(a.status), True, None, {})
            out.append(AnnouncementView(a.public_id, s.public_id, s.title, g.public_id, f"{g.name}（群主 {g.owner}）",
                                        a.purpose, a.announced_start, a.text, a.status, state, label,
                                        posted_at=a.posted_at, posted_by=a.posted_by))
        return out


def _move(uow: UnitOfWork, ann: LiveAnnouncementRow, action: AnnouncementAction, actor: str,
          **values: object) -> AnnouncementStatus:
    """The one place an announcement's status is written (conditional on the status read)."""
    status = AnnouncementStatus(ann.status)
    new = rules.announcement_next(ann.public_id, status, action, is_group=ann.target != FOLLOWERS)
    done = uow.session.execute(update(LiveAnnouncementRow).where(
        LiveAnnouncementRow.id == ann.id, LiveAnnouncementRow.status == status.value)
        .values(status=new.value, **values).execution_options(synchronize_session=False)).rowcount
    if done != 1:
        raise Conflict(f"直播预告 {ann.public_id} 刚被其他人修改，请刷新后重试")
    uow.session.expire(ann)
    audit.record(uow, actor, f"live.announcement.{action.value}", "live_announcement", ann.public_id,
                 before=status.value, after=new.value)
    return new


def mark_posted(uow: UnitOfWork, principal: Principal, announcement_id: str) -> AnnouncementView:
    """An operator posted the copy in the group: record who and when."""
    ensure_role(principal, PLANNERS)
    with uow:
        ann = uow.session.scalar(select(LiveAnnouncementRow).where(LiveAnnouncementRow.public_id == announcement_id))
        if ann is None:
            raise NotFound(f"直播预告 {announcement_id} 不存在")
        _move(uow, ann, AnnouncementAction.POST, principal.actor, posted_at=uow.clock.now(),
              posted_by=principal.actor[:80])
        row = uow.session.get(LiveSessionRow, ann.session_id)
        assert row is not None
        [view] = [v for v in _announcement_views(uow, row, None) if v.public_id == announcement_id]
        uow.commit()
    return view


def _withdraw_open(uow: UnitOfWork, row: LiveSessionRow, pushes: AnnouncementPushes | None, actor: str,
                   reason: str) -> tuple[list[LiveAnnouncementRow], list[LiveAnnouncementRow], int]:
    """Withdraw the session's open announcements (their pushes cancelled). Returns the withdrawn
    ones, the group messages already posted (they need a correction), and pushes cancelled."""
    anns = list(uow.session.scalars(select(LiveAnnouncementRow).where(
        LiveAnnouncementRow.session_id == row.id).order_by(LiveAnnouncementRow.id)))
    withdrawn, posted, cancelled = [], [], 0
    for ann in anns:
        if ann.status == AnnouncementStatus.POSTED.value:
            posted.append(ann)
        if ann.status != AnnouncementStatus.OPEN.value:
            continue
        if ann.push_ref:
            progress = _need(pushes).cancel(uow, ann.push_ref, actor)
            cancelled += progress.status == "cancelled"
        _move(uow, ann, AnnouncementAction.WITHDRAW, actor, withdrawn_at=uow.clock.now(), withdraw_reason=reason)
        withdrawn.append(ann)
    return withdrawn, posted, cancelled


def withdraw_stale(uow: UnitOfWork, now: datetime, *, pushes: AnnouncementPushes,
                   window: timedelta = timedelta(days=7)) -> Withdrawn:
    """Scheduled job (LIVE-3): an open announcement whose session started, was cancelled or moved
    before its push went out is withdrawn and the push cancelled, so nothing announces a past or
    a wrong time; a push caught mid-send has its remaining rows cancelled (what was sent stays
    counted). A safety net: cancel and reschedule already do this in their own transaction.
    Looks at announcements of start times within ``window`` before now or later."""
    withdrawn = cancelled = 0
    with uow:
        candidates = list(uow.session.execute(
            select(LiveAnnouncementRow.id, LiveSessionRow.public_id).join(
                LiveSessionRow, LiveSessionRow.id == LiveAnnouncementRow.session_id)
            .where(LiveAnnouncementRow.status == AnnouncementStatus.OPEN.value,
                   LiveAnnouncementRow.push_ref.is_not(None), LiveAnnouncementRow.announced_start >= now - window,
                   or_(LiveSessionRow.status != LiveStatus.SCHEDULED.value, LiveSessionRow.planned_start <= now,
                       LiveSessionRow.planned_start != LiveAnnouncementRow.announced_start))).all())
    for ann_id, session_ref in candidates:
        with uow:
            row = _session(uow, session_ref, lock=True)
            ann = uow.session.get(LiveAnnouncementRow, ann_id)
            if ann is None or ann.status != AnnouncementStatus.OPEN.value or not ann.push_ref:
                continue
            if not rules.is_stale(LiveStatus(row.status), row.planned_start, ann.announced_start, now):
                continue
            progress = pushes.progress(uow, [ann.push_ref]).get(ann.push_ref)
            if progress is not None and progress.status in ("done", "cancelled"):
                continue  # it went out (or was stopped) already: nothing to withdraw
            if progress is not None:
                cancelled += pushes.cancel(uow, ann.push_ref, "system:live-announcements").status == "cancelled"
            if progress is None or progress.status in ("draft", "scheduled"):  # nothing went out
                _move(uow, ann, AnnouncementAction.WITHDRAW, "system:live-announcements", withdrawn_at=now,
                      withdraw_reason="stale")
                withdrawn += 1
            uow.commit()
    return Withdrawn(withdrawn, cancelled)


# -- the session's own moves ---------------------------------------------------------------------
def _act(uow: UnitOfWork, principal: Principal, row: LiveSessionRow, action: LiveAction, **values: object) -> None:
    status = LiveStatus(row.status)
    new = rules.next_status(row.public_id, status, action)
    done = uow.session.execute(
        update(LiveSessionRow).where(LiveSessionRow.id == row.id, LiveSessionRow.status == status.value)
        .values(status=new.value, **values).execution_options(synchronize_session=False)).rowcount
    if done != 1:
        raise Conflict(f"直播 {row.public_id} 刚被其他人修改，请刷新后重试")
    uow.session.expire(row)
    audit.record(uow, principal.actor, f"live.{action.value}", "live", row.public_id)


def _simple(uow: UnitOfWork, principal: Principal, session_id: str, action: LiveAction,
            **values: object) -> LiveView:
    ensure_role(principal, PLANNERS)
    with uow:
        row = _session(uow, session_id, lock=True)
        _act(uow, principal, row, action, **values)
        view = _view(uow, row)
        uow.commit()
    return view


def start(uow: UnitOfWork, principal: Principal, session_id: str) -> LiveView:
    return _simple(uow, principal, session_id, LiveAction.START, started_at=uow.clock.now())


def end(uow: UnitOfWork, principal: Principal, session_id: str) -> LiveView:
    return _simple(uow, principal, session_id, LiveAction.END, ended_at=uow.clock.now())


def cancel(uow: UnitOfWork, principal: Principal, session_id: str, reason: str, *,
           pushes: AnnouncementPushes | None = None, group_template: str | None = None) -> LiveView:
    """取消: in one transaction the session is cancelled, its open announcements withdrawn (pushes
    cancelled), and each group that was already told gets a task to post the cancellation."""
    ensure_role(principal, PLANNERS)
    if not reason.strip():
        raise InvalidInput("取消直播请写明原因", field="reason")
    with uow:
        row = _session(uow, session_id, lock=True)
        rules.next_status(row.public_id, LiveStatus(row.status), LiveAction.CANCEL)  # refuse before touching pushes
        _withdraw_open(uow, row, pushes, principal.actor, "cancelled")
        _act(uow, principal, row, LiveAction.CANCEL, cancel_reason=reason.strip()[:100])
        posted = uow.session.scalars(select(LiveAnnouncementRow).where(
            LiveAnnouncementRow.session_id == row.id, LiveAnnouncementRow.status == AnnouncementStatus.POSTED.value,
            LiveAnnouncementRow.target != FOLLOWERS))
        for target in dict.fromkeys(a.target for a in posted):
            group = uow.session.scalar(select(CommunityGroupRow).where(CommunityGroupRow.public_id == target))
            if group is not None and group.active:
                _group_task(uow, row, group, purpose="cancel", actor=principal.actor, template=group_template)
        view = _view(uow, row)
        uow.commit()
    return view


def reschedule(uow: UnitOfWork, principal: Principal, session_id: str, new_start: datetime, *,
               minutes: int | None = None, pushes: AnnouncementPushes | None = None,
               followers_template: str | None = None, group_template: str | None = None) -> LiveView:
    """改期 (LIVE-1 for the new time, LIVE-3): in one transaction the start moves, the open
    announcements of the old time are withdrawn (their pushes cancelled, so the old time is
    never sent again), and every target that was announced to is announced again with the new
    time — a push of the same kind and audience (at the old push's send time if that is still
    ahead, else now), a group task (saying it moved, when the group had been told)."""
    ensure_role(principal, PLANNERS)
    with uow:
        row = _session(uow, session_id, lock=True)
        now = uow.clock.now()
        status = LiveStatus(row.status)
        if status is not LiveStatus.SCHEDULED:
            raise IllegalTransition("直播", row.public_id, status.label, "改期")
        old_start, length = row.planned_start, minutes or row.planned_minutes
        rules.validate_plan(row.title, new_start, length, row.plan, now)
        if new_start == old_start and length == row.planned_minutes:
            return _view(uow, row)
        anns = list(uow.session.scalars(select(LiveAnnouncementRow).where(
            LiveAnnouncementRow.session_id == row.id, LiveAnnouncementRow.announced_start == old_start,
            LiveAnnouncementRow.purpose != "cancel").order_by(LiveAnnouncementRow.id)))
        told = {a.target: a for a in anns if a.status != AnnouncementStatus.WITHDRAWN.value}
        old_push = {}
        if pushes is not None:
            old_push = pushes.progress(uow, [a.push_ref for a in told.values() if a.push_ref])
        _withdraw_open(uow, row, pushes, principal.actor, "rescheduled")
        done = uow.session.execute(update(LiveSessionRow).where(
            LiveSessionRow.id == row.id, LiveSessionRow.status == status.value,
            LiveSessionRow.planned_start == old_start).values(planned_start=new_start, planned_minutes=length)
            .execution_options(synchronize_session=False)).rowcount
        if done != 1:
            raise Conflict(f"直播 {row.public_id} 刚被其他人修改，请刷新后重试")
        uow.session.expire(row)
        audit.record(uow, principal.actor, "live.reschedule", "live", row.public_id, before=old_start.isoformat(),
                     after=new_start.isoformat(), reannounced=len(told))
        for target, ann in told.items():
            went_out = ann.status == AnnouncementStatus.POSTED.value or (
                ann.push_ref in old_push and old_push[ann.push_ref].status in ("sending", "done"))
            purpose = "reschedule" if went_out else "announce"
            if target == FOLLOWERS:
                previous = old_push.get(ann.push_ref or "")
                send_at = ann.send_at if (previous is None or previous.status in ("draft", "scheduled")) else None
                if send_at is not None and send_at <= now:
                    send_at = None
                _push_announcement(uow, _need(pushes), row, kind=ann.kind or "mass",
                                   audience=Audience(ann.audience or Audience.DEPARTMENT.value), send_at=send_at,
                                   purpose=purpose, actor=principal.actor, previous_start=old_start,
                                   template=followers_template)
            else:
                group = uow.session.scalar(select(CommunityGroupRow).where(CommunityGroupRow.public_id == target))
                if group is not None and group.active:
                    _group_task(uow, row, group, purpose=purpose, actor=principal.actor, previous_start=old_start,
                                template=group_template)
        view = _view(uow, row)
        uow.commit()
    return view


def list_sessions(uow: UnitOfWork, principal: Principal, *, platform: Platform | None = None,
                  status: LiveStatus | None = None) -> list[LiveView]:
    ensure_role(principal, VIEWERS)
    with uow:
        query = select(LiveSessionRow).order_by(LiveSessionRow.planned_start)
        if platform:
            query = query.where(LiveSessionRow.platform == platform.value)
        if status:
            query = query.where(LiveSessionRow.status == status.value)
        return [_view(uow, r) for r in uow.session.scalars(query)]


def get_session(uow: UnitOfWork, principal: Principal, session_id: str) -> LiveView:
    ensure_role(principal, VIEWERS)
    with uow:
        return _view(uow, _session(uow, session_id))


def add_group(uow: UnitOfWork, principal: Principal, name: str, department: str, owner: str) -> GroupView:
    """登记一个患者社群 (its name as the WeCom export prints it)."""
    ensure_role(principal, PLANNERS)
    name, department, owner = name.strip(), department.strip(), owner.strip()
    if not 2 <= len(name) <= 60:
        raise InvalidInput("群名称应为 2 到 60 个字", field="name")
    if not department or not owner:
        raise InvalidInput("请填写科室和群主", field="department")
    with uow:
        if uow.session.scalar(select(CommunityGroupRow.id).where(CommunityGroupRow.name == name)) is not None:
            raise Conflict(f"社群「{name}」已登记")
        row = CommunityGroupRow(public_id=new_public_id("grp"), name=name, department=department[:40],
                                owner=owner[:40], active=True, created_at=uow.clock.now())
        uow.session.add(row)
        uow.session.flush()
        audit.record(uow, principal.actor, "community.add", "community", row.public_id)
        view = GroupView(row.public_id, row.name, row.department, row.owner, row.active)
        uow.commit()
    return view


def list_groups(uow: UnitOfWork, principal: Principal) -> list[GroupView]:
    ensure_role(principal, VIEWERS)
    with uow:
        return [GroupView(r.public_id, r.name, r.department, r.owner, r.active)
                for r in uow.session.scalars(select(CommunityGroupRow).order_by(CommunityGroupRow.id))]
