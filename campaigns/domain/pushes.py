"""Pushes and their delivery ledger: the states, the one guarded transition per change, and the
sending rules (quiet hours, frequency cap, WeChat's 4 mass sends per user per month, chunking).

Every (push, recipient) is one ledger row. The row is written ``sending`` before the WeChat call
and ``sent`` / ``failed`` (or back to ``pending`` for a transient error) after it. A row found in
``sending`` after its worker died becomes ``unknown``: the call may or may not have reached
WeChat, so it is settled from WeChat's job-finished events (or WeChat's own dedupe key), never
resent blindly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from enum import StrEnum

from clinical_core.domain.errors import IllegalTransition, InvalidInput

MASS_CHUNK_MIN, MASS_CHUNK_MAX = 2, 10_000
MASS_PER_USER_PER_MONTH = 4
TEMPLATE_DEDUPE_SECONDS = 600  # WeChat: one message per (openid, client_msg_id) within 10 minutes
RETRY_DELAYS_SECONDS = (5, 30, 120, 600)
# busy, per-minute limit, daily quota, a token rejected even after one refresh: nothing was sent, try later
TRANSIENT_CODES = frozenset({-1, 45011, 45009, 40001, 40014, 42001})


class PushKind(StrEnum):
    TEMPLATE = "template"
    MASS = "mass"


class MassType(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    ARTICLE = "mpnews"


class PushStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"  # ledger rows exist; workers deliver them
    DONE = "done"
    CANCELLED = "cancelled"


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"  # a rule held it back before any call (opt-out after planning, cap)
    CANCELLED = "cancelled"


PUSH_LABELS = {PushStatus.DRAFT: "草稿", PushStatus.SCHEDULED: "已排期", PushStatus.SENDING: "发送中",
               PushStatus.DONE: "已完成", PushStatus.CANCELLED: "已取消"}
STATE_LABELS = {DeliveryState.PENDING: "待发送", DeliveryState.SENDING: "发送中", DeliveryState.SENT: "已送达微信",
                DeliveryState.FAILED: "失败", DeliveryState.UNKNOWN: "待核对", DeliveryState.SKIPPED: "已跳过",
                DeliveryState.CANCELLED: "已取消"}

_PUSH_TRANSITIONS: dict[str, tuple[frozenset[PushStatus], PushStatus]] = {
    "schedule": (frozenset({PushStatus.DRAFT, PushStatus.SCHEDULED}), PushStatus.SCHEDULED),
    "dispatch": (frozenset({PushStatus.SCHEDULED}), PushStatus.SENDING),
    "finish": (frozenset({PushStatus.SENDING}), PushStatus.DONE),
    "cancel": (frozenset({PushStatus.DRAFT, PushStatus.SCHEDULED, PushStatus.SENDING}), PushStatus.CANCELLED),
}

_DELIVERY_TRANSITIONS: dict[str, tuple[frozenset[DeliveryState], DeliveryState]] = {
    "claim": (frozenset({DeliveryState.PENDING}), DeliveryState.SENDING),
    "sent": (frozenset({DeliveryState.SENDING, DeliveryState.UNKNOWN}), DeliveryState.SENT),
    "failed": (frozenset({DeliveryState.SENDING, DeliveryState.UNKNOWN}), DeliveryState.FAILED),
    "retry": (frozenset({DeliveryState.SENDING}), DeliveryState.PENDING),
    "lost": (frozenset({DeliveryState.SENDING}), DeliveryState.UNKNOWN),
    "skip": (frozenset({DeliveryState.PENDING}), DeliveryState.SKIPPED),
    "cancel": (frozenset({DeliveryState.PENDING}), DeliveryState.CANCELLED),
}


def push_transition(current: str, action: str, push_id: str = "") -> PushStatus:
    allowed, target = _PUSH_TRANSITIONS[action]
    if PushStatus(current) not in allowed:
        raise IllegalTransition("推送", push_id, PUSH_LABELS[PushStatus(current)], action)
    return target


def delivery_transition(current: str, action: str, delivery_id: str = "") -> DeliveryState:
    """The state after ``action``; the SQL that applies it carries the same ``from`` set in its WHERE."""
    allowed, target = _DELIVERY_TRANSITIONS[action]
    if DeliveryState(current) not in allowed:
        raise IllegalTransition("投递", delivery_id, STATE_LABELS[DeliveryState(current)], action)
    return target


def delivery_from(action: str) -> frozenset[DeliveryState]:
    return _DELIVERY_TRANSITIONS[action][0]


def delivery_to(action: str) -> DeliveryState:
    return _DELIVERY_TRANSITIONS[action][1]


# -- outcomes of one call ---------------------------------------------------------------------------
class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # WeChat said "not now": nothing was sent
    FAILED = "failed"  # WeChat refused for good (not following, blocked, bad template)
    UNKNOWN = "unknown"  # no answer: it may have been sent


def classify(errcode: int | None) -> Outcome:
    """What a WeChat answer means for the ledger. ``None`` = no answer (timeout, connection lost)."""
    if errcode is None:
        return Outcome.UNKNOWN
    if errcode == 0:
        return Outcome.SENT
    if errcode in TRANSIENT_CODES:
        return Outcome.RETRY
    return Outcome.FAILED


def retry_at(now: datetime, attempts: int, delays: tuple[float, ...] = RETRY_DELAYS_SECONDS) -> datetime | None:
    """When to try again after ``attempts`` calls that WeChat turned away; None: give up
    (after ``len(delays) + 1`` attempts)."""
    if attempts > len(delays):
        return None
    return now + timedelta(seconds=delays[max(attempts, 1) - 1])


# -- quiet hours --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class QuietHours:
    start: time = time(21, 0)
    end: time = time(8, 0)

    @classmethod
    def parse(cls, text: str) -> QuietHours:
        """``"21:00-08:00"``; an empty string or ``"off"`` means none (start == end)."""
        if text.strip().lower() in ("", "off", "none"):
            return cls(time(0), time(0))
        try:
            a, b = (part.strip() for part in text.replace("–", "-").split("-"))
            return cls(time.fromisoformat(a), time.fromisoformat(b))
        except ValueError:
            raise InvalidInput("免打扰时段格式应为 21:00-08:00", field="quiet_hours") from None

    def contains(self, moment: datetime, tz: tzinfo) -> bool:
        local = moment.astimezone(tz).time()
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, moment: datetime, tz: tzinfo) -> datetime:
        """``moment`` itself outside quiet hours, else the end of the quiet period."""
        if not self.contains(moment, tz):
            return moment
        local = moment.astimezone(tz)
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(moment.tzinfo)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


# -- caps ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class FrequencyCap:
    """At most ``count`` pushes to one recipient within ``days`` (mass and template together)."""

    count: int = 3
    days: int = 7

    def allows(self, already: int) -> bool:
        return already < self.count


def month_start(moment: datetime, tz: tzinfo) -> datetime:
    """The start of the natural month (WeChat counts mass sends per natural month, Beijing time)."""
    local = moment.astimezone(tz)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(moment.tzinfo)


def mass_month_allows(already_this_month: int) -> bool:
    return already_this_month < MASS_PER_USER_PER_MONTH


def chunk_sizes(total: int, *, maximum: int = MASS_CHUNK_MAX, minimum: int = MASS_CHUNK_MIN) -> list[int]:
    """Split ``total`` openids into mass-send calls of ``minimum..maximum`` each (WeChat: 2..10,000)."""
    if total < minimum:
        raise InvalidInput(f"按 openid 群发至少需要 {minimum} 位接收者", field="audience")
    if maximum < 2 * minimum - 1:  # below that some totals cannot be split into calls of ≥ minimum
        raise InvalidInput(f"每次群发人数上限至少为 {2 * minimum - 1}", field="chunk")
    calls = -(-total // maximum)
    base, extra = divmod(total, calls)
    return [base + 1] * extra + [base] * (calls - extra)


def variant_of(openid: str, weights: dict[str, int], salt: str) -> str:
    """A stable split of the audience by a hash of (salt, openid): the same person always lands in
    the same variant of one push."""
    import hashlib

    total = sum(weights.values())
    if total <= 0:
        raise InvalidInput("A/B 权重之和必须大于 0", field="variants")
    point = int(hashlib.sha256(f"{salt}:{openid}".encode()).hexdigest()[:8], 16) % total
    for name in sorted(weights):
        point -= weights[name]
        if point < 0:
            return name
    return sorted(weights)[-1]
