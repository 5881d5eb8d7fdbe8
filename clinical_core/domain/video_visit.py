"""网络门诊 (video follow-up clinic): the visit's state machine, the follow-up
check (复诊判定) and the refund rules.

Pure standard library. Every state change is one named action in
``TRANSITIONS``; ``transition`` is the only way a new status is computed, and
an illegal move raises ``IllegalTransition`` naming the visit, its state and
the action.

State machine (视频复诊)::

    booked --pay--> paid --check_in--> waiting --start_call--> in_call --end--> ended
    paid --no_show--> no_show                       (the patient never checked in before the slot ended)
    booked/paid/waiting --cancel--> cancelled       (refund by notice before the slot; unpaid: nothing)
    paid/waiting/in_call --terminate--> terminated  (R18: judged a first visit or unsuitable: full refund)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from clinical_core.domain.errors import IllegalTransition, InvalidInput, RuleViolation


class VisitStatus(StrEnum):
    BOOKED = "booked"
    PAID = "paid"
    WAITING = "waiting"
    IN_CALL = "in_call"
    ENDED = "ended"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    TERMINATED = "terminated"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


STATUS_LABELS = {
    VisitStatus.BOOKED: "待支付",
    VisitStatus.PAID: "已预约",
    VisitStatus.WAITING: "候诊中",
    VisitStatus.IN_CALL: "视频中",
    VisitStatus.ENDED: "已结束",
    VisitStatus.NO_SHOW: "爽约",
    VisitStatus.CANCELLED: "已取消",
    VisitStatus.TERMINATED: "已终止",
}


class VisitAction(StrEnum):
    PAY = "pay"
    CHECK_IN = "check_in"
    START_CALL = "start_call"
    END = "end"
    NO_SHOW = "no_show"
    CANCEL = "cancel"
    TERMINATE = "terminate"

    @property
    def label(self) -> str:
        return ACTION_LABELS[self]


ACTION_LABELS = {
    VisitAction.PAY: "支付",
    VisitAction.CHECK_IN: "签到候诊",
    VisitAction.START_CALL: "开始视频",
    VisitAction.END: "结束就诊",
    VisitAction.NO_SHOW: "记为爽约",
    VisitAction.CANCEL: "取消预约",
    VisitAction.TERMINATE: "终止就诊",
}

V = VisitStatus
TRANSITIONS: dict[VisitAction, tuple[frozenset[VisitStatus], VisitStatus]] = {
    VisitAction.PAY: (frozenset({V.BOOKED}), V.PAID),
    VisitAction.CHECK_IN: (frozenset({V.PAID}), V.WAITING),
    VisitAction.START_CALL: (frozenset({V.WAITING}), V.IN_CALL),
    VisitAction.END: (frozenset({V.IN_CALL}), V.ENDED),
    VisitAction.NO_SHOW: (frozenset({V.PAID}), V.NO_SHOW),
    VisitAction.CANCEL: (frozenset({V.BOOKED, V.PAID, V.WAITING}), V.CANCELLED),
    VisitAction.TERMINATE: (frozenset({V.PAID, V.WAITING, V.IN_CALL}), V.TERMINATED),
}
TERMINAL = frozenset({V.ENDED, V.NO_SHOW, V.CANCELLED, V.TERMINATED})
# The slot stays taken while the visit is alive or was used; it opens again after a cancellation.
HOLDS_SLOT = frozenset({V.BOOKED, V.PAID, V.WAITING, V.IN_CALL, V.ENDED, V.NO_SHOW, V.TERMINATED})
IN_ROOM = frozenset({V.WAITING, V.IN_CALL})  # states in which participants may join the video room
RECORDABLE = frozenset({V.IN_CALL, V.ENDED, V.TERMINATED})  # the doctor writes the record during and after
PRESCRIBABLE = frozenset({V.IN_CALL, V.ENDED})


def transition(visit_id: str, status: VisitStatus, action: VisitAction) -> VisitStatus:
    """The one place a video visit's next status is computed."""
    sources, target = TRANSITIONS[action]
    if status not in sources:
        raise IllegalTransition("视频复诊", visit_id, status.label, action.label)
    return target


class EndReason(StrEnum):
    COMPLETED = "completed"
    FIRST_VISIT = "first_visit"  # R18: judged a first visit (首诊), stopped and refunded
    UNSUITABLE = "unsuitable"  # R18: condition changed / not suitable online, stopped and refunded
    PATIENT_CANCELLED = "patient_cancelled"
    HOSPITAL_CANCELLED = "hospital_cancelled"  # the doctor or the hospital cancelled: full refund
    UNPAID = "unpaid"
    NO_SHOW = "no_show"


TERMINATION_REASONS = frozenset({EndReason.FIRST_VISIT, EndReason.UNSUITABLE})
END_REASON_LABELS = {
    EndReason.COMPLETED: "就诊完成",
    EndReason.FIRST_VISIT: "判定为首诊，已终止并退款",
    EndReason.UNSUITABLE: "不适宜线上诊疗，已终止并退款",
    EndReason.PATIENT_CANCELLED: "患者取消",
    EndReason.HOSPITAL_CANCELLED: "医院取消",
    EndReason.UNPAID: "超时未支付",
    EndReason.NO_SHOW: "患者爽约",
}

# --- Follow-up check (复诊判定, VC-2, VC-5, R02, R17) ---


class CheckMode(StrEnum):
    STRICT = "strict"  # pick an earlier offline visit from the HIS; department and diagnoses snapshotted
    DECLARED = "declared"  # upload records with a clear diagnosis; a doctor confirms them
    OFF = "off"  # no check at booking (services that allow it); prescriptions still need HIS diagnoses

    @property
    def label(self) -> str:
        return {CheckMode.STRICT: "严格（HIS 线下就诊记录）", CheckMode.DECLARED: "申报（上传病历，医生确认）",
                CheckMode.OFF: "关闭"}[self]


DEFAULT_CHECK_MODE = CheckMode.STRICT
DEFAULT_LOOKBACK_DAYS = 365
MAX_LOOKBACK_DAYS = 5 * 365
OFFLINE_VISIT_TYPES = frozenset({"outpatient", "inpatient", "emergency"})


@dataclass(frozen=True, slots=True)
class Diagnosis:
    code: str  # ICD-10
    name: str


@dataclass(frozen=True, slots=True)
class OfflineVisit:
    """What the HIS says about one earlier visit (a plain copy of ``ports.his.HisVisit``)."""

    visit_no: str
    visited_at: datetime
    visit_type: str
    department: str
    diagnoses: tuple[Diagnosis, ...]


@dataclass(frozen=True, slots=True)
class FollowUpEvidence:
    """复诊依据 snapshotted onto the booking."""

    his_visit_no: str | None
    department: str | None
    diagnoses: tuple[Diagnosis, ...]


def check_lookback(days: int) -> int:
    if not 30 <= days <= MAX_LOOKBACK_DAYS:
        raise InvalidInput(f"复诊依据的有效期应在 30 到 {MAX_LOOKBACK_DAYS} 天之间", field="lookback_days")
    return days


def strict_evidence(visits: Iterable[OfflineVisit], visit_no: str | None, department: str, now: datetime,
                    lookback_days: int) -> FollowUpEvidence:
    """VC-2 / R02: the patient picks an earlier offline visit of the booked department, with a diagnosis,
    within the look-back window. Its department and diagnoses are the evidence."""
    if not visit_no:
        raise RuleViolation("VC-2", "严格复诊判定：请选择一次线下就诊记录")
    chosen = next((v for v in visits if v.visit_no == visit_no), None)
    if chosen is None:
        raise RuleViolation("VC-2", f"HIS 中没有该患者的线下就诊记录 {visit_no}")
    if chosen.visit_type not in OFFLINE_VISIT_TYPES or chosen.visited_at >= now:
        raise RuleViolation("R02", "所选记录不是已完成的线下就诊")
    if now - chosen.visited_at > timedelta(days=lookback_days):
        raise RuleViolation("R02", f"所选线下就诊已超过 {lookback_days} 天，不能作为复诊依据")
    if chosen.department != department:
        raise RuleViolation("R02", f"所选线下就诊的科室为「{chosen.department}」，与预约科室「{department}」不一致")
    if not chosen.diagnoses:
        raise RuleViolation("R02", "所选线下就诊没有明确诊断，不能作为复诊依据")
    return FollowUpEvidence(chosen.visit_no, chosen.department, chosen.diagnoses)


MAX_DOCUMENTS = 6


def check_declared_documents(count: int) -> None:
    """R17: declared mode needs the patient's records (门诊病历/出院小结/诊断证明)."""
    if count < 1:
        raise RuleViolation("R17", "申报复诊：请上传至少一份含明确诊断的病历资料")
    if count > MAX_DOCUMENTS:
        raise InvalidInput(f"最多上传 {MAX_DOCUMENTS} 份病历资料", field="documents")


def check_confirmed_diagnoses(diagnoses: Iterable[Diagnosis]) -> tuple[Diagnosis, ...]:
    """R17: the doctor confirms declared records by naming the diagnoses they show."""
    result = tuple(diagnoses)
    if not result:
        raise RuleViolation("R17", "确认复诊须填写病历中的明确诊断")
    for d in result:
        if not d.code.strip() or not d.name.strip() or len(d.code) > 16 or len(d.name) > 60:
            raise InvalidInput("诊断须有 ICD-10 编码和名称", field="diagnoses")
    if len({d.code for d in result}) != len(result):
        raise InvalidInput("诊断重复", field="diagnoses")
    return result


def ensure_followup_confirmed(visit_id: str, mode: CheckMode, confirmed: bool) -> None:
    """R17: in declared mode the call starts only after a doctor confirmed the records."""
    if mode is CheckMode.DECLARED and not confirmed:
        raise RuleViolation("R17", f"视频复诊 {visit_id} 的申报病历尚未经医生确认，不能开始视频")


# --- Money: refunds by notice before the slot ---

# (at least this long before the slot starts, percent refunded). A patient cancelling later gets less.
CANCEL_REFUND_TIERS: tuple[tuple[timedelta, int], ...] = (
    (timedelta(hours=24), 100),
    (timedelta(hours=2), 50),
    (timedelta(0), 0),
)
PAYMENT_WINDOW = timedelta(minutes=15)  # an unpaid booking releases its slot after this
NO_SHOW_GRACE = timedelta(minutes=15)  # after the slot ends, a paid visit never checked in is a no-show
CHECK_IN_OPENS = timedelta(minutes=30)  # the waiting room opens this long before the slot
MAX_PRICE_FEN = 200_000


def patient_refund_percent(slot_starts_at: datetime, now: datetime) -> int:
    """The share of the fee a patient's own cancellation refunds."""
    if now >= slot_starts_at:
        raise RuleViolation("VC-REFUND", "就诊时间已到，不能取消预约")
    notice = slot_starts_at - now
    for minimum, percent in CANCEL_REFUND_TIERS:
        if notice >= minimum:
            return percent
    return 0


def refund_amount(paid_fen: int, percent: int) -> int:
    """Whole fen, rounded down (the hospital never refunds more than the rule)."""
    if not 0 <= percent <= 100:
        raise InvalidInput("退款比例应在 0 到 100 之间", field="percent")
    return paid_fen * percent // 100


def ensure_check_in_window(visit_id: str, slot_starts_at: datetime, slot_ends_at: datetime, now: datetime) -> None:
    if now < slot_starts_at - CHECK_IN_OPENS:
        raise RuleViolation("VC-1", f"候诊室在就诊前 {CHECK_IN_OPENS.seconds // 60} 分钟开放")
    if now >= slot_ends_at:
        raise RuleViolation("VC-1", f"视频复诊 {visit_id} 的就诊时段已过")


def is_no_show(slot_ends_at: datetime, now: datetime) -> bool:
    return now >= slot_ends_at + NO_SHOW_GRACE


# --- Participants ---

MAX_GUESTS = 2  # family member, interpreter ...
GUEST_RELATIONS = frozenset({"家属", "监护人", "翻译", "护工", "家庭医生"})


def check_guest(relation: str, existing_guests: int) -> str:
    relation = (relation or "").strip()
    if relation not in GUEST_RELATIONS:
        raise InvalidInput(f"第三方身份应为：{'、'.join(sorted(GUEST_RELATIONS))}", field="relation")
    if existing_guests >= MAX_GUESTS:
        raise RuleViolation("VC-1", f"每次视频复诊最多邀请 {MAX_GUESTS} 位第三方")
    return relation


def token_expiry(slot_ends_at: datetime, now: datetime) -> datetime:
    """Room tokens live until 30 minutes after the slot (a late call may run over), at most 3 hours."""
    return min(slot_ends_at + timedelta(minutes=30), now + timedelta(hours=3))


MAX_RECORD_CHARS = 10_000


def check_record(text: str) -> str:
    body = (text or "").strip()
    if len(body) < 5:
        raise InvalidInput("病历内容至少 5 个字", field="text")
    if len(body) > MAX_RECORD_CHARS:
        raise InvalidInput(f"病历内容最多 {MAX_RECORD_CHARS} 字", field="text")
    return body


DOCUMENT_TYPES = {"image/jpeg", "image/png", "image/webp", "application/pdf"}
MAX_DOCUMENT_BYTES = 10 * 2**20


def check_document(data: bytes) -> str:
    """A declared record's file: its real type from its first bytes (a declared type is never trusted)."""
    from clinical_core.domain.consultation import sniff_mime

    mime = "application/pdf" if data.startswith(b"%PDF-") else sniff_mime(data)
    if mime not in DOCUMENT_TYPES:
        raise InvalidInput("病历资料仅支持 jpeg、png、webp 图片或 PDF", field="documents")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InvalidInput(f"单份病历资料不超过 {MAX_DOCUMENT_BYTES // 2**20} MB", field="documents")
    return mime


def check_complaint(text: str) -> str:
    body = (text or "").strip()
    if len(body) < 5:
        raise InvalidInput("请至少用 5 个字描述病情", field="complaint")
    if len(body) > 2000:
        raise InvalidInput("病情描述最多 2000 字", field="complaint")
    return body
