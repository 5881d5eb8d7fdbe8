"""互联网+护理服务 (home nursing): items, the order's state machine, the rules
R44 (nurse), R46 (first-visit assessment), R47/R48 (geofence, full trace),
R49 (blacklist), cancellation refunds and the tamper-evident visit record.

Pure standard library. Every state change is one named action in
``TRANSITIONS``; ``transition`` is the only way a new status is computed.

State machine (护理订单)::

    created --pay--> paid --approve--> open --grab--> assigned --check_in--> in_service
    in_service --check_out--> completed --review--> reviewed
    paid/open --reject--> rejected                   (审核不通过: refunded in full)
    open/assigned --assign--> assigned                (管理员派单/改派)
    created/paid/open/assigned --cancel--> cancelled   (refund by the cancellation rule)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any

from clinical_core.domain.errors import IllegalTransition, InvalidInput, RuleViolation
from clinical_core.domain.geo import GeoPoint, Polygon, check_polygon, point_in_polygon
from clinical_core.domain.staff import TITLES, Role
from clinical_core.domain.time import SHANGHAI

# --- nursing items (护理项目) ---

MAX_ITEM_PRICE_FEN = 500_000  # ¥5,000: above this is a typo
MIN_DURATION = timedelta(minutes=15)
MAX_DURATION = timedelta(hours=4)
SERVICE_HOURS = (time(8), time(20))  # local time a visit may take place in
MIN_LEAD = timedelta(hours=2)  # a visit is booked at least this far ahead
MAX_LEAD = timedelta(days=14)
MAX_WINDOW = timedelta(hours=8)
NURSE_TITLES = tuple(t for t, (role, _) in TITLES.items() if role is Role.NURSE)


def check_item(price_fen: int, duration: timedelta, min_title: str, districts: Sequence[str],
               polygons: Sequence[Sequence[Sequence[float]]]) -> list[list[tuple[float, float]]]:
    """A nursing item's settings; returns the validated polygons."""
    if not 0 < price_fen <= MAX_ITEM_PRICE_FEN:
        raise InvalidInput(f"价格应在 1 到 {MAX_ITEM_PRICE_FEN} 分之间", field="price_fen")
    if not MIN_DURATION <= duration <= MAX_DURATION:
        raise InvalidInput("服务时长应在 15 分钟到 4 小时之间", field="duration_minutes")
    if min_title not in NURSE_TITLES:
        raise InvalidInput(f"职称要求应为：{'、'.join(NURSE_TITLES)}", field="min_title")
    if title_rank(min_title) < title_rank("护师"):
        raise RuleViolation("R44", "上门护理项目的职称要求不能低于护师")
    checked = [check_polygon(p) for p in polygons]
    if not districts and not checked:
        raise InvalidInput("请至少指定一个服务区县或一个服务区域多边形", field="districts")
    return checked


def title_rank(title: str | None) -> int:
    entry = TITLES.get(title or "")
    return entry[1] if entry and entry[0] is Role.NURSE else 0


def offered_at(districts: Iterable[str], polygons: Iterable[Polygon], point: GeoPoint, district_code: str) -> bool:
    """NUR-1: an item is offered at an address inside one of its districts or polygons."""
    return district_code in set(districts) or any(point_in_polygon(point, p) for p in polygons)


def check_time_window(start: datetime, end: datetime, now: datetime, duration: timedelta) -> None:
    """The patient's visit window: ahead of time, within service hours on one day, long enough."""
    if end <= start:
        raise InvalidInput("上门时间段的结束时间必须晚于开始时间", field="window")
    if end - start > MAX_WINDOW:
        raise InvalidInput("上门时间段最长 8 小时", field="window")
    if end - start < duration:
        raise InvalidInput("上门时间段短于该项目的服务时长", field="window")
    if start < now + MIN_LEAD:
        raise InvalidInput("请至少提前 2 小时预约上门时间", field="window")
    if start > now + MAX_LEAD:
        raise InvalidInput("只能预约 14 天内的上门服务", field="window")
    local_start, local_end = start.astimezone(SHANGHAI), end.astimezone(SHANGHAI)
    opens, closes = SERVICE_HOURS
    if (local_start.date() != local_end.date() or local_start.time() < opens
            or local_end.time() > closes):
        raise InvalidInput("上门服务时间为每日 08:00–20:00", field="window")


def ensure_nurse_fits_item(order_id: str, nurse_title: str | None, nurse_skills: Iterable[str],
                           min_title: str, required_skills: Iterable[str]) -> None:
    """The item's qualification requirements (beyond R44's floor)."""
    if title_rank(nurse_title) < title_rank(min_title):
        raise RuleViolation("NUR-2", f"护理订单 {order_id} 需{min_title}及以上职称")
    missing = set(required_skills) - set(nurse_skills)
    if missing:
        raise RuleViolation("NUR-2", f"护理订单 {order_id} 需要专项资质：{'、'.join(sorted(missing))}")


# --- the order ---


class NursingStatus(StrEnum):
    CREATED = "created"
    PAID = "paid"
    OPEN = "open"
    ASSIGNED = "assigned"
    IN_SERVICE = "in_service"
    COMPLETED = "completed"
    REVIEWED = "reviewed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


STATUS_LABELS = {
    NursingStatus.CREATED: "待支付",
    NursingStatus.PAID: "待审核",
    NursingStatus.OPEN: "待抢单",
    NursingStatus.ASSIGNED: "已派单",
    NursingStatus.IN_SERVICE: "服务中",
    NursingStatus.COMPLETED: "已完成",
    NursingStatus.REVIEWED: "已评价",
    NursingStatus.REJECTED: "审核未通过",
    NursingStatus.CANCELLED: "已取消",
}


class NursingAction(StrEnum):
    PAY = "pay"
    APPROVE = "approve"
    REJECT = "reject"
    GRAB = "grab"
    ASSIGN = "assign"
    CHECK_IN = "check_in"
    CHECK_OUT = "check_out"
    REVIEW = "review"
    CANCEL = "cancel"

    @property
    def label(self) -> str:
        return ACTION_LABELS[self]


ACTION_LABELS = {
    NursingAction.PAY: "支付",
    NursingAction.APPROVE: "审核通过",
    NursingAction.REJECT: "审核驳回",
    NursingAction.GRAB: "抢单",
    NursingAction.ASSIGN: "派单",
    NursingAction.CHECK_IN: "签到",
    NursingAction.CHECK_OUT: "签退",
    NursingAction.REVIEW: "评价",
    NursingAction.CANCEL: "取消",
}

N = NursingStatus
TRANSITIONS: dict[NursingAction, tuple[frozenset[NursingStatus], NursingStatus]] = {
    NursingAction.PAY: (frozenset({N.CREATED}), N.PAID),
    NursingAction.APPROVE: (frozenset({N.PAID}), N.OPEN),
    NursingAction.REJECT: (frozenset({N.PAID, N.OPEN}), N.REJECTED),
    NursingAction.GRAB: (frozenset({N.OPEN}), N.ASSIGNED),
    NursingAction.ASSIGN: (frozenset({N.OPEN, N.ASSIGNED}), N.ASSIGNED),
    NursingAction.CHECK_IN: (frozenset({N.ASSIGNED}), N.IN_SERVICE),
    NursingAction.CHECK_OUT: (frozenset({N.IN_SERVICE}), N.COMPLETED),
    NursingAction.REVIEW: (frozenset({N.COMPLETED}), N.REVIEWED),
    NursingAction.CANCEL: (frozenset({N.CREATED, N.PAID, N.OPEN, N.ASSIGNED}), N.CANCELLED),
}
TERMINAL = frozenset({N.REVIEWED, N.REJECTED, N.CANCELLED})
ON_DUTY = frozenset({N.ASSIGNED, N.IN_SERVICE})  # the nurse is travelling or on site


def transition(order_id: str, status: NursingStatus, action: NursingAction) -> NursingStatus:
    """The one place a nursing order's next status is computed."""
    sources, target = TRANSITIONS[action]
    if status not in sources:
        raise IllegalTransition("护理订单", order_id, status.label, action.label)
    return target


def check_condition(text: str) -> str:
    """NUR-1: the patient describes the condition."""
    body = (text or "").strip()
    if len(body) < 5:
        raise InvalidInput("请至少用 5 个字描述病情和护理需求", field="condition")
    if len(body) > 2000:
        raise InvalidInput("病情描述最多 2000 字", field="condition")
    return body


def check_rating(rating: int) -> None:
    if not 1 <= rating <= 5:
        raise InvalidInput("评分应为 1 到 5 星", field="rating")


# --- rules R44, R46, R49 ---

ASSESSMENT_VALID = timedelta(days=180)


def ensure_assessed(order_id: str, assessed_at: datetime | None, suitable: bool | None, now: datetime) -> None:
    """R46: before the service, a first-visit assessment (首诊评估) found the patient suitable."""
    if assessed_at is None:
        raise RuleViolation("R46", f"护理订单 {order_id} 的患者尚未完成首诊评估，不能开始服务")
    if not suitable:
        raise RuleViolation("R46", f"护理订单 {order_id} 的患者经评估不适合上门护理")
    if now - assessed_at > ASSESSMENT_VALID:
        raise RuleViolation("R46", f"护理订单 {order_id} 的首诊评估已超过 180 天，请重新评估")


def ensure_not_blacklisted(listed: bool) -> None:
    """R49: recipients on the blacklist cannot book home nursing."""
    if listed:
        raise RuleViolation("R49", "该服务对象已被列入上门护理黑名单，不能预约", hint="如有异议请联系客服")


# --- cancellation refund ---

FREE_CANCEL_BEFORE = timedelta(hours=2)
LATE_CANCEL_REFUND_PERCENT = 50


def cancellation_refund_fen(status: NursingStatus, paid_fen: int, now: datetime, window_start: datetime) -> int:
    """What a patient's cancellation gives back: everything before a nurse is on the way or
    ≥2 h before the window; half when a nurse has taken the order and the window is near."""
    if status in (N.CREATED,) or paid_fen <= 0:
        return 0
    if status in (N.PAID, N.OPEN) or window_start - now >= FREE_CANCEL_BEFORE:
        return paid_fen
    return paid_fen * LATE_CANCEL_REFUND_PERCENT // 100


# --- on site: geofence (R47) ---

GEOFENCE_RADIUS_M = 300.0


def ensure_within_geofence(order_id: str, event: str, distance: float, radius_m: float,
                           override: bool) -> None:
    """Check-in/out must happen at the address unless an admin has overridden with a reason."""
    if distance > radius_m and not override:
        raise RuleViolation("R47", f"护理订单 {order_id} {event}位置距服务地址 {distance:.0f} 米，"
                                   f"超出 {radius_m:.0f} 米范围", hint="如确需异地签到，请管理员填写原因后放行")


# --- the visit record: a hash chain (R48 full trace) ---

GENESIS = "0" * 64


def canonical(payload: Mapping[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


def chain_hash(prev_hash: str, payload: Mapping[str, Any]) -> str:
    """sha256 over the previous entry's hash and this entry's canonical JSON."""
    return hashlib.sha256(f"{prev_hash}\n{canonical(payload)}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ChainEntry:
    seq: int
    payload: Mapping[str, Any]
    prev_hash: str
    hash: str


def first_broken(entries: Sequence[ChainEntry]) -> int | None:
    """The sequence number of the first entry whose hash or link does not hold (``None``: intact)."""
    prev = GENESIS
    for expected_seq, entry in enumerate(entries, start=1):
        if entry.seq != expected_seq or entry.prev_hash != prev or chain_hash(prev, entry.payload) != entry.hash:
            return entry.seq
        prev = entry.hash
    return None
