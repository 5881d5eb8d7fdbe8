"""Live sessions and patient communities: schedule with a plan, announce to
followers and community groups (the copy; sending is the push engine's), go
live, end or cancel. Status changes are conditional UPDATEs with audit entries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import Conflict, InvalidInput, NotFound
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import StaffRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit
from content.domain import live as rules
from content.domain.calendar import Platform
from content.domain.live import LiveAction, LiveStatus
from content.persistence.models import CommunityGroupRow, LiveAnnouncementRow, LiveSessionRow, LiveStatRow

PLANNERS = (Role.OPERATIONS, Role.ADMIN)
VIEWERS = (Role.OPERATIONS, Role.ADMIN, Role.DOCTOR, Role.CUSTOMER_SERVICE)


@dataclass(frozen=True)
class LiveView:
    public_id: str
    platform: str
    account: str
    title: str
    host: str | None
    planned_start: datetime
    planned_minutes: int
    status: str
    status_label: str
    plan: str
    announcements: int
    viewers: int | None  # from the imported export, when there is one
    peak_online: int | None


@dataclass(frozen=True)
class Announcement:
    target: str  # followers | community group id
    target_name: str
    text: str


@dataclass(frozen=True)
class GroupView:
    public_id: str
    name: str
    department: str
    owner: str
    active: bool


def _session(uow: UnitOfWork, public_id: str) -> LiveSessionRow:
    row = uow.session.scalar(select(LiveSessionRow).where(LiveSessionRow.public_id == public_id))
    if row is None:
        raise NotFound(f"直播 {public_id} 不存在")
    return row


def _view(uow: UnitOfWork, row: LiveSessionRow) -> LiveView:
    host = uow.session.get(StaffRow, row.host_staff_id) if row.host_staff_id else None
    stat = uow.session.scalar(select(LiveStatRow).where(LiveStatRow.session_id == row.id)
                              .order_by(LiveStatRow.id.desc()).limit(1))
    count = len(uow.session.scalars(select(LiveAnnouncementRow.id).where(
        LiveAnnouncementRow.session_id == row.id)).all())
    status = LiveStatus(row.status)
    return LiveView(row.public_id, row.platform, row.account, row.title, host.name if host else None,
                    row.planned_start, row.planned_minutes, status.value, status.label, row.plan, count,
                    stat.viewers if stat else None, stat.peak_online if stat else None)


def schedule(uow: UnitOfWork, principal: Principal, *, platform: Platform, account: str, title: str,
             planned_start: datetime, minutes: int, plan: str, host_staff_id: str | None = None) -> LiveView:
    """排期一场直播 with its plan (LIVE-1)."""
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
        row = LiveSessionRow(public_id=new_public_id("liv"), platform=platform.value, account=account, title=title,
                             host_staff_id=host.id if host else None, planned_start=planned_start,
                             planned_minutes=minutes, plan=plan, status=LiveStatus.SCHEDULED.value,
                             created_by=principal.actor, created_at=uow.clock.now())
        uow.session.add(row)
        uow.session.flush()
        audit.record(uow, principal.actor, "live.schedule", "live", row.public_id, platform=platform.value)
        view = _view(uow, row)
        uow.commit()
    return view


def announce(uow: UnitOfWork, principal: Principal, session_id: str, *, followers: bool = True,
             group_ids: tuple[str, ...] = (), dry_run: bool = False) -> list[Announcement]:
    """直播预告 for followers and community groups (LIVE-2). Idempotent per target;
    ``dry_run`` shows the copy and writes nothing."""
    ensure_role(principal, PLANNERS)
    with uow:
        row = _session(uow, session_id)
        now = uow.clock.now()
        rules.ensure_may_announce(LiveStatus(row.status), row.planned_start, now)
        host = uow.session.get(StaffRow, row.host_staff_id) if row.host_staff_id else None
        label = Platform(row.platform).label
        targets: list[tuple[str, str, str]] = [("followers", "关注者", "followers")] if followers else []
        for gid in group_ids:
            group = uow.session.scalar(select(CommunityGroupRow).where(CommunityGroupRow.public_id == gid))
            if group is None or not group.active:
                raise NotFound(f"社群 {gid} 不存在或已停用")
            targets.append((group.public_id, group.name, "group"))
        if not targets:
            raise InvalidInput("请至少选择关注者或一个社群", field="group")
        result = []
        for target, name, audience in targets:
            text = rules.announcement_text(row.title, row.account, label, row.planned_start,
                                           host.name if host else None, audience)
            result.append(Announcement(target, name, text))
            if dry_run:
                continue
            existing = uow.session.scalar(select(LiveAnnouncementRow).where(
                LiveAnnouncementRow.session_id == row.id, LiveAnnouncementRow.target == target))
            if existing is None:
                uow.session.add(LiveAnnouncementRow(session_id=row.id, target=target, text=text, created_at=now))
        if not dry_run:
            row.announced_at = row.announced_at or now
            audit.record(uow, principal.actor, "live.announce", "live", row.public_id, targets=len(targets))
            uow.session.flush()
            uow.commit()
    return result


def _act(uow: UnitOfWork, principal: Principal, session_id: str, action: LiveAction, **values: object) -> LiveView:
    ensure_role(principal, PLANNERS)
    with uow:
        row = _session(uow, session_id)
        status = LiveStatus(row.status)
        new = rules.next_status(row.public_id, status, action)
        done = uow.session.execute(
            update(LiveSessionRow).where(LiveSessionRow.id == row.id, LiveSessionRow.status == status.value)
            .values(status=new.value, **values).execution_options(synchronize_session=False)).rowcount
        if done != 1:
            raise Conflict(f"直播 {session_id} 刚被其他人修改，请刷新后重试")
        uow.session.expire(row)
        audit.record(uow, principal.actor, f"live.{action.value}", "live", row.public_id)
        view = _view(uow, row)
        uow.commit()
    return view


def start(uow: UnitOfWork, principal: Principal, session_id: str) -> LiveView:
    return _act(uow, principal, session_id, LiveAction.START, started_at=uow.clock.now())


def end(uow: UnitOfWork, principal: Principal, session_id: str) -> LiveView:
    return _act(uow, principal, session_id, LiveAction.END, ended_at=uow.clock.now())


def cancel(uow: UnitOfWork, principal: Principal, session_id: str, reason: str) -> LiveView:
    if not reason.strip():
        raise InvalidInput("取消直播请写明原因", field="reason")
    return _act(uow, principal, session_id, LiveAction.CANCEL, cancel_reason=reason.strip()[:100])


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
