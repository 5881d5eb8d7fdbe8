"""Live streams (直播) on the hospital's Douyin and Channels accounts, and the
patient communities (患者社群) they are announced to.

    scheduled ──start──▶ live ──end──▶ ended
        └──cancel──▶ cancelled

Rules:
- LIVE-1: a session is scheduled in the future, 10 to 240 minutes long, with a plan
  (直播计划: outline of the topics) of at least 20 characters.
- LIVE-2: announcements (直播预告) go out only for a scheduled session, before it starts.
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


def announcement_text(title: str, account: str, platform_label: str, planned_start: datetime, host: str | None,
                      audience: str) -> str:
    """直播预告 copy for followers or one community group (no personal data)."""
    when = planned_start.astimezone(SHANGHAI)
    who = f"{host}医生" if host else "我院专家"
    greeting = "各位群友好！" if audience == "group" else "直播预告："
    text = (f"{greeting}{when.month}月{when.day}日 {when:%H:%M}，{who}做客{platform_label}「{account}」直播间，"
            f"主题「{title}」。欢迎预约观看，直播中可提问互动。")
    return text[:ANNOUNCEMENT_MAX]


def matches_session(planned_start: datetime, exported_start: datetime) -> bool:
    """An export's 开播时间 belongs to a session planned within an hour of it."""
    return abs(exported_start - planned_start) <= timedelta(hours=1)
