"""Live streams (直播) on the hospital's Douyin and Channels accounts, and the
patient communities (患者社群) they are announced to.

    scheduled ──start──▶ live ──end──▶ ended
        └──cancel──▶ cancelled

Rules:
- LIVE-1: a session is scheduled in the future, 10 to 240 minutes long, with a plan
  (直播计划: outline of the topics) of at least 20 characters.
- LIVE-2: announcements (直播预告) go out only for a scheduled session, before it starts.
- LIVE-3: an announcement push is sent before the start of the very session time it
  announces: its send time (moved out of quiet hours) must fall before the start, and one
  still unsent when the session starts, is cancelled or is rescheduled is withdrawn — a
  rescheduled session is announced again with its new time, never twice with the old one.

An announcement to followers follows its push (the campaigns push engine and its delivery
ledger); one to a community group is a task for the operators, who post the copy in the group
and mark it posted:

    open ──post──▶ posted        (community groups only)
      └──withdraw──▶ withdrawn   (session cancelled or rescheduled, or started before it went out)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from clinical_core.domain.errors import IllegalTransition, InvalidInput, RuleViolation
from clinical_core.domain.time import SHANGHAI

MIN_MINUTES, MAX_MINUTES, PLAN_MIN_CHARS = 10, 240, 20
ANNOUNCEMENT_MAX = 500


class LiveStatus(StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return {"scheduled": "已排期", "live": "直播中", "ended": "已结束", "cancelled": "已取消"}[self.value]


class LiveAction(StrEnum):
    START = "start"
    END = "end"
    CANCEL = "cancel"

    @property
    def label(self) -> str:
        return {"start": "开播", "end": "结束直播", "cancel": "取消直播"}[self.value]


TRANSITIONS = {
    (LiveStatus.SCHEDULED, LiveAction.START): LiveStatus.LIVE,
    (LiveStatus.LIVE, LiveAction.END): LiveStatus.ENDED,
    (LiveStatus.SCHEDULED, LiveAction.CANCEL): LiveStatus.CANCELLED,
}


def next_status(session_id: str, status: LiveStatus, action: LiveAction) -> LiveStatus:
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise IllegalTransition("直播", session_id, status.label, action.label) from None


def validate_plan(title: str, planned_start: datetime, minutes: int, plan: str, now: datetime) -> tuple[str, str]:
    title, plan = title.strip(), plan.strip()
    if not 2 <= len(title) <= 60:
        raise InvalidInput("直播标题应为 2 到 60 个字", field="title")
    if planned_start.tzinfo is None:
        raise InvalidInput("开播时间需要带时区", field="start")
    if planned_start <= now:
        raise RuleViolation("LIVE-1", "开播时间应在当前时间之后")
    if not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise RuleViolation("LIVE-1", f"直播时长应在 {MIN_MINUTES} 到 {MAX_MINUTES} 分钟之间")
    if len(plan) < PLAN_MIN_CHARS:
        raise RuleViolation("LIVE-1", f"直播计划（内容提纲）至少 {PLAN_MIN_CHARS} 个字")
    return title, plan


def ensure_may_announce(status: LiveStatus, planned_start: datetime, now: datetime) -> None:
    if status is not LiveStatus.SCHEDULED or planned_start <= now:
        raise RuleViolation("LIVE-2", "只能为尚未开播的直播发预告")


class Audience(StrEnum):
    """Who an announcement push goes to: followers who saw the session's department (a
    consultation or visit there) or its host doctor, or every follower of the account."""

    DEPARTMENT = "department"
    DOCTOR = "doctor"
    ALL = "all"

    @property
    def label(self) -> str:
        return {"department": "科室关注者", "doctor": "主讲医生的患者", "all": "全部关注者"}[self.value]


class AnnouncementStatus(StrEnum):
    OPEN = "open"
    POSTED = "posted"
    WITHDRAWN = "withdrawn"


class AnnouncementAction(StrEnum):
    POST = "post"
    WITHDRAW = "withdraw"

    @property
    def label(self) -> str:
        return {"post": "标记已发到群", "withdraw": "撤回预告"}[self.value]


ANNOUNCEMENT_LABELS = {"open": "待处理", "posted": "已发到群", "withdrawn": "已撤回"}
_ANNOUNCEMENT_TRANSITIONS = {
    (AnnouncementStatus.OPEN, AnnouncementAction.POST): AnnouncementStatus.POSTED,
    (AnnouncementStatus.OPEN, AnnouncementAction.WITHDRAW): AnnouncementStatus.WITHDRAWN,
}
FOLLOWERS = "followers"


def announcement_next(announcement_id: str, status: AnnouncementStatus, action: AnnouncementAction,
                      *, is_group: bool) -> AnnouncementStatus:
    """The one place an announcement's next status is decided. Only a community-group task is
    posted by hand; a push announcement's delivery is the push engine's."""
    if action is AnnouncementAction.POST and not is_group:
        raise RuleViolation("LIVE-4", "关注者预告由推送引擎发送，不能手工标记")
    try:
        return _ANNOUNCEMENT_TRANSITIONS[(status, action)]
    except KeyError:
        raise IllegalTransition("直播预告", announcement_id, ANNOUNCEMENT_LABELS[status.value], action.label) from None


def ensure_sent_before_start(send_at: datetime, planned_start: datetime) -> None:
    """LIVE-3: a push scheduled (after the quiet-hours shift) at or after the start is refused."""
    if send_at >= planned_start:
        raise RuleViolation("LIVE-3", "预告发送时间（顺延出免打扰时段后）不早于开播时间，请提前发送")


def is_stale(status: LiveStatus, planned_start: datetime, announced_start: datetime, now: datetime) -> bool:
    """LIVE-3: an open announcement no longer announces what will happen."""
    return status is not LiveStatus.SCHEDULED or planned_start != announced_start or planned_start <= now


def announcement_state(status: AnnouncementStatus, is_group: bool, push_status: str | None,
                       counts: dict[str, int]) -> tuple[str, str]:
    """What the operators see: a group task's own state, or the state of the push behind a
    follower announcement (scheduled, sending, sent, failed, all skipped, cancelled)."""
    if status is AnnouncementStatus.WITHDRAWN:
        return "withdrawn", "已撤回"
    if is_group:
        return ("posted", "已发到群") if status is AnnouncementStatus.POSTED else ("to_post", "待发到群")
    if push_status in ("draft", "scheduled"):
        return "scheduled", "已排期"
    if push_status == "sending":
        return "sending", "发送中"
    if push_status == "cancelled":
        return "cancelled", "推送已取消"
    if push_status == "done":
        if counts.get("sent", 0):
            return "sent", "已发送"
        if counts.get("failed", 0) or counts.get("unknown", 0):
            return "failed", "发送失败"
        return "skipped", "全部按规则跳过"
    return "unknown", "推送不存在"


def when_text(moment: datetime) -> str:
    local = moment.astimezone(SHANGHAI)
    return f"{local.month}月{local.day}日 {local:%H:%M}"


def matches_session(planned_start: datetime, exported_start: datetime) -> bool:
    """An export's 开播时间 belongs to a session planned within an hour of it."""
    return abs(exported_start - planned_start) <= timedelta(hours=1)
