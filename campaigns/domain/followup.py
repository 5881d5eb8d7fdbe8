"""Follow-up plans (随访计划): templates, step states, quiet hours (pure).

A plan template lists steps by day offset (day 3 questionnaire, day 7 message, day 30 reminder
to book a follow-up). Starting a plan for a patient copies the steps with their due instants;
a job delivers due steps. Each step moves only through :func:`step_transition`:

    pending ──claim──▶ sending ──sent──▶ sent
       ▲                 │ ├──refused──▶ failed ──retry──▶ pending   (definitely not delivered)
       │                 │ └──lost─────▶ unknown                      (the call's outcome is unknown:
       │                 │                                             never resent automatically)
       └── cancel (plan stopped) ──▶ cancelled
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from clinical_core.domain.errors import IllegalTransition, InvalidInput
from clinical_core.domain.time import SHANGHAI

MAX_STEPS = 50
MAX_DAY = 365
TEMPLATE_FIELD_CHARS = 20  # WeChat shows template message fields up to 20 characters (campaigns.domain.limits)
SENDING_TIMEOUT = timedelta(minutes=10)  # a step still "sending" after this: its sender died


class StepKind(StrEnum):
    """FU-3: text, image, voice, course, schedule; plus a questionnaire to answer."""

    QUESTIONNAIRE = "questionnaire"
    TEXT = "text"
    IMAGE = "image"
    VOICE = "voice"
    COURSE = "course"
    SCHEDULE = "schedule"

    @property
    def label(self) -> str:
        return {"questionnaire": "问卷", "text": "文字", "image": "图片", "voice": "语音", "course": "课程",
                "schedule": "复诊预约"}[self]


class StepStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return {"pending": "待发送", "sending": "发送中", "sent": "已发送", "failed": "发送失败",
                "unknown": "结果未知", "cancelled": "已取消"}[self]


class StepAction(StrEnum):
    CLAIM = "claim"
    SENT = "sent"
    REFUSED = "refused"
    LOST = "lost"
    RETRY = "retry"
    CANCEL = "cancel"
    SETTLE_SENT = "settle_sent"
    SETTLE_FAILED = "settle_failed"
    WITHDRAW = "withdraw"

    @property
    def label(self) -> str:
        return {"claim": "开始发送", "sent": "确认送达", "refused": "记录失败", "lost": "记录结果未知",
                "retry": "重新排队", "cancel": "取消", "settle_sent": "人工确认已送达",
                "settle_failed": "人工确认未送达", "withdraw": "撤回未发出的消息"}[self]


S = StepStatus
STEP_TRANSITIONS: dict[StepAction, tuple[frozenset[StepStatus], StepStatus]] = {
    StepAction.CLAIM: (frozenset({S.PENDING}), S.SENDING),
    StepAction.SENT: (frozenset({S.SENDING}), S.SENT),
    StepAction.REFUSED: (frozenset({S.SENDING}), S.FAILED),
    StepAction.LOST: (frozenset({S.SENDING}), S.UNKNOWN),
    StepAction.RETRY: (frozenset({S.FAILED}), S.PENDING),
    StepAction.CANCEL: (frozenset({S.PENDING, S.FAILED}), S.CANCELLED),
    StepAction.SETTLE_SENT: (frozenset({S.UNKNOWN}), S.SENT),
    StepAction.SETTLE_FAILED: (frozenset({S.UNKNOWN}), S.FAILED),
    # the plan stopped while the step's ledger row was still pending: the message never left
    StepAction.WITHDRAW: (frozenset({S.SENDING}), S.CANCELLED),
}


def step_transition(step_id: str, status: StepStatus, action: StepAction) -> StepStatus:
    """The one place a follow-up step's next status is computed."""
    sources, target = STEP_TRANSITIONS[action]
    if status not in sources:
        raise IllegalTransition("随访步骤", step_id, status.label, action.label)
    return target


class PlanStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    STOPPED = "stopped"


class TriggerEvent(StrEnum):
    RX_DISPENSED = "rx_dispensed"  # 处方已调配发药
    CONSULT_CLOSED = "consult_closed"  # 咨询已完成


# -- quiet hours ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class QuietHours:
    """No message to a patient between ``start`` and ``end`` local time (may span midnight)."""

    start: time = time(21, 0)
    end: time = time(8, 0)
    zone: tzinfo = SHANGHAI

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"21:00-08:00"``; an empty range (``"00:00-00:00"``) disables quiet hours."""
        try:
            a, b = (part.strip() for part in text.split("-"))
            return cls(time.fromisoformat(a), time.fromisoformat(b))
        except ValueError:
            raise InvalidInput("免打扰时段格式应为 HH:MM-HH:MM，如 21:00-08:00", field="quiet_hours") from None

    def contains(self, instant: datetime) -> bool:
        local = instant.astimezone(self.zone).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, instant: datetime) -> datetime:
        """``instant`` itself when allowed, otherwise the end of the quiet period it falls in."""
        if not self.contains(instant):
            return instant
        local = instant.astimezone(self.zone)
        end = datetime.combine(local.date(), self.end, self.zone)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.end, self.zone)
        return end.astimezone(instant.tzinfo)

    def describe(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


# -- templates -----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StepDef:
    day: int  # days after the plan starts (0: the start day)
    at: time  # local send time that day
    kind: StepKind
    title: str  # ≤ 20 characters: WeChat shows template fields up to 20
    body: str = ""
    url: str | None = None  # image / voice / course / booking link
    questionnaire_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"day": self.day, "at": self.at.strftime("%H:%M"), "kind": self.kind.value, "title": self.title,
                "body": self.body, "url": self.url, "questionnaire_id": self.questionnaire_id}


def parse_steps(raw: Any) -> tuple[StepDef, ...]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_STEPS:
        raise InvalidInput(f"随访计划应有 1 至 {MAX_STEPS} 个步骤", field="steps")
    steps: list[StepDef] = []
    for index, item in enumerate(raw, start=1):
        where, field = f"第 {index} 步", f"steps[{index - 1}]"
        if not isinstance(item, Mapping):
            raise InvalidInput(f"{where}应为对象", field=field)
        day = item.get("day")
        if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= MAX_DAY:
            raise InvalidInput(f"{where}的 day 应为 0 至 {MAX_DAY} 的整数", field=f"{field}.day")
        try:
            at = time.fromisoformat(str(item.get("at") or "10:00"))
            kind = StepKind(str(item.get("kind")))
        except ValueError:
            raise InvalidInput(f"{where}的时间（HH:MM）或类型（questionnaire、text、image、voice、course、schedule）无效",
                               field=field) from None
        title = str(item.get("title") or "").strip()
        if not title or len(title) > 20:
            raise InvalidInput(f"{where}的标题不能为空且不超过 20 字（微信模板字段限制）", field=f"{field}.title")
        body = str(item.get("body") or "").strip()
        if len(body) > 200:
            raise InvalidInput(f"{where}的正文不超过 200 字", field=f"{field}.body")
        url = item.get("url")
        qid = item.get("questionnaire_id")
        if kind is StepKind.QUESTIONNAIRE and not qid:
            raise InvalidInput(f"{where}是问卷步骤，需要 questionnaire_id", field=f"{field}.questionnaire_id")
        if kind in (StepKind.IMAGE, StepKind.VOICE, StepKind.COURSE) and not url:
            raise InvalidInput(f"{where}（{kind.label}）需要 url", field=f"{field}.url")
        if kind is StepKind.TEXT and not body:
            raise InvalidInput(f"{where}（文字）需要正文 body", field=f"{field}.body")
        if url is not None and not str(url).startswith(("https://", "http://", "/")):
            raise InvalidInput(f"{where}的链接应以 https:// 或 / 开头", field=f"{field}.url")
        steps.append(StepDef(day, at, kind, title, body, str(url) if url else None, str(qid) if qid else None))
    return tuple(sorted(steps, key=lambda s: (s.day, s.at)))


def due_at(start: datetime, step: StepDef, quiet: QuietHours, zone: tzinfo = SHANGHAI) -> datetime:
    """When a step is due: the start's local day + ``day`` at ``at``, moved out of quiet hours."""
    day: date = start.astimezone(zone).date() + timedelta(days=step.day)
    instant = datetime.combine(day, step.at, zone).astimezone(start.tzinfo)
    if step.day == 0 and instant < start:
        instant = start
    return quiet.next_allowed(instant)


# -- the message of a step (sent through the push delivery ledger) ----------------------------------

@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One follow-up message to one patient (the step's public id is the idempotency key)."""

    step_id: str
    openid: str
    kind: StepKind
    title: str
    body: str
    url: str | None
    due_at: datetime


def _field(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= TEMPLATE_FIELD_CHARS else flat[: TEMPLATE_FIELD_CHARS - 1] + "…"


def template_data(message: OutboundMessage, zone: tzinfo = SHANGHAI) -> dict[str, dict[str, str]]:
    """The WeChat template message of one step: each field ≤ 20 characters without line breaks
    (WeChat truncates silently, so opsctl shortens with an ellipsis itself); the content
    (questionnaire, image, voice, course, booking page) is behind the message's link."""
    return {
        "first": {"value": _field(f"随访提醒：{message.kind.label}")},
        "keyword1": {"value": _field(message.title)},
        "keyword2": {"value": message.due_at.astimezone(zone).strftime("%Y-%m-%d %H:%M")},
        "remark": {"value": _field(message.body or ("点击填写问卷" if message.kind is StepKind.QUESTIONNAIRE
                                                 else "点击查看详情"))},
    }
