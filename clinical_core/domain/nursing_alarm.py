"""一键呼叫 (R48): a nurse's SOS alarm and its handling by the security desk.

Pure standard library. State machine (报警)::

    raised --escalate--> escalated               (nobody acknowledged in time)
    raised/escalated --acknowledge--> acknowledged --close--> closed

The response time is acknowledged_at − raised_at; an escalated alarm keeps
counting from the moment it was raised.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from clinical_core.domain.errors import IllegalTransition, InvalidInput


class AlarmStatus(StrEnum):
    RAISED = "raised"
    ESCALATED = "escalated"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return ALARM_LABELS[self]


ALARM_LABELS = {
    AlarmStatus.RAISED: "待响应",
    AlarmStatus.ESCALATED: "已升级",
    AlarmStatus.ACKNOWLEDGED: "处理中",
    AlarmStatus.CLOSED: "已关闭",
}


class AlarmAction(StrEnum):
    ESCALATE = "escalate"
    ACKNOWLEDGE = "acknowledge"
    CLOSE = "close"

    @property
    def label(self) -> str:
        return {"escalate": "升级", "acknowledge": "响应", "close": "关闭"}[self.value]


A = AlarmStatus
ALARM_TRANSITIONS: dict[AlarmAction, tuple[frozenset[AlarmStatus], AlarmStatus]] = {
    AlarmAction.ESCALATE: (frozenset({A.RAISED}), A.ESCALATED),
    AlarmAction.ACKNOWLEDGE: (frozenset({A.RAISED, A.ESCALATED}), A.ACKNOWLEDGED),
    AlarmAction.CLOSE: (frozenset({A.ACKNOWLEDGED}), A.CLOSED),
}
UNACKNOWLEDGED = frozenset({A.RAISED, A.ESCALATED})
DEFAULT_ESCALATE_AFTER = timedelta(minutes=3)


def alarm_transition(alarm_id: str, status: AlarmStatus, action: AlarmAction) -> AlarmStatus:
    sources, target = ALARM_TRANSITIONS[action]
    if status not in sources:
        raise IllegalTransition("报警", alarm_id, status.label, action.label)
    return target


def check_notes(notes: str) -> str:
    body = (notes or "").strip()
    if len(body) < 4:
        raise InvalidInput("请填写处理情况（至少 4 个字）", field="notes")
    if len(body) > 1000:
        raise InvalidInput("处理情况最多 1000 字", field="notes")
    return body


@dataclass(frozen=True, slots=True)
class ResponseStats:
    """Response times of the alarms raised in a period (seconds)."""

    alarms: int
    acknowledged: int
    escalated: int
    median_seconds: float | None
    mean_seconds: float | None
    p90_seconds: float | None
    max_seconds: float | None


def response_stats(alarms: int, escalated: int, seconds: Sequence[float]) -> ResponseStats:
    if not seconds:
        return ResponseStats(alarms, 0, escalated, None, None, None, None)
    ordered = sorted(seconds)
    p90 = ordered[min(len(ordered) - 1, max(0, -(-9 * len(ordered) // 10) - 1))]  # nearest-rank
    return ResponseStats(alarms, len(ordered), escalated, float(statistics.median(ordered)),
                         round(statistics.fmean(ordered), 1), float(p90), float(ordered[-1]))
