"""在线咨询: service types, the consultation order's state machine, payment
state derived from payment and refund records, and attachment limits.

Pure standard library. Every state change is one named action in
``TRANSITIONS``; ``transition`` is the only way a new status is computed, and
an illegal move raises ``IllegalTransition`` naming the order, its state and
the action.

State machine (咨询订单)::

    created --pay--> paid --enqueue--> waiting --claim--> claimed --start--> in_progress
    in_progress --reply--> replied --close--> closed --review--> reviewed
    waiting/claimed --transfer--> waiting          (科室转诊: back into another department's pool)
    paid/waiting/claimed --expire--> closed         (unanswered in time: closed and refunded)
    created --cancel--> cancelled                   (never paid)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from clinical_core.domain.errors import IllegalTransition, InvalidInput, RuleViolation


class ServiceKind(StrEnum):
    """咨询服务类型."""

    TEXT = "text"  # 图文咨询, addressed to one doctor
    PHONE = "phone"  # 电话咨询, addressed to one doctor
    DEPARTMENT = "department"  # 科室咨询, answered from the department's pool
    DESIGNATED = "designated"  # 定点保障, free, answered by an appointed team (CON-5)

    @property
    def label(self) -> str:
        return SERVICE_LABELS[self]


SERVICE_LABELS = {
    ServiceKind.TEXT: "图文咨询",
    ServiceKind.PHONE: "电话咨询",
    ServiceKind.DEPARTMENT: "科室咨询",
    ServiceKind.DESIGNATED: "定点保障",
}
PERSONAL_KINDS = frozenset({ServiceKind.TEXT, ServiceKind.PHONE})
DEFAULT_TIME_LIMIT = {
    ServiceKind.TEXT: timedelta(hours=24),
    ServiceKind.PHONE: timedelta(hours=24),
    ServiceKind.DEPARTMENT: timedelta(hours=24),
    ServiceKind.DESIGNATED: timedelta(hours=12),
}
MAX_PRICE_FEN = 100_000  # ¥1,000: a consultation price above this is a typo
MIN_TIME_LIMIT = timedelta(minutes=30)
MAX_TIME_LIMIT = timedelta(hours=72)
PAYMENT_WINDOW = timedelta(minutes=30)  # an unpaid order is cancelled after this


def check_service_settings(kind: ServiceKind, price_fen: int, time_limit: timedelta) -> None:
    """A service's price and time limit. 定点保障 is free by definition (CON-5)."""
    if kind is ServiceKind.DESIGNATED and price_fen != 0:
        raise RuleViolation("CON-5", "定点保障咨询必须免费")
    if not 0 <= price_fen <= MAX_PRICE_FEN:
        raise InvalidInput(f"价格应在 0 到 {MAX_PRICE_FEN} 分之间", field="price_fen")
    if not MIN_TIME_LIMIT <= time_limit <= MAX_TIME_LIMIT:
        raise InvalidInput("回复时限应在 30 分钟到 72 小时之间", field="time_limit")


class ConsultStatus(StrEnum):
    CREATED = "created"
    PAID = "paid"
    WAITING = "waiting"
    CLAIMED = "claimed"
    IN_PROGRESS = "in_progress"
    REPLIED = "replied"
    CLOSED = "closed"
    REVIEWED = "reviewed"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


STATUS_LABELS = {
    ConsultStatus.CREATED: "待支付",
    ConsultStatus.PAID: "已支付",
    ConsultStatus.WAITING: "待接诊",
    ConsultStatus.CLAIMED: "已接诊",
    ConsultStatus.IN_PROGRESS: "咨询中",
    ConsultStatus.REPLIED: "已回复",
    ConsultStatus.CLOSED: "已结束",
    ConsultStatus.REVIEWED: "已评价",
    ConsultStatus.CANCELLED: "已取消",
}


class Action(StrEnum):
    PAY = "pay"
    ENQUEUE = "enqueue"
    CLAIM = "claim"
    TRANSFER = "transfer"
    START = "start"
    REPLY = "reply"
    CLOSE = "close"
    REVIEW = "review"
    EXPIRE = "expire"
    CANCEL = "cancel"

    @property
    def label(self) -> str:
        return ACTION_LABELS[self]


ACTION_LABELS = {
    Action.PAY: "支付",
    Action.ENQUEUE: "进入待接诊",
    Action.CLAIM: "接诊",
    Action.TRANSFER: "转科",
    Action.START: "开始咨询",
    Action.REPLY: "回复",
    Action.CLOSE: "结束咨询",
    Action.REVIEW: "评价",
    Action.EXPIRE: "超时关闭",
    Action.CANCEL: "取消",
}

S = ConsultStatus
TRANSITIONS: dict[Action, tuple[frozenset[ConsultStatus], ConsultStatus]] = {
    Action.PAY: (frozenset({S.CREATED}), S.PAID),
    Action.ENQUEUE: (frozenset({S.PAID}), S.WAITING),
    Action.CLAIM: (frozenset({S.WAITING}), S.CLAIMED),
    Action.TRANSFER: (frozenset({S.WAITING, S.CLAIMED}), S.WAITING),
    Action.START: (frozenset({S.CLAIMED}), S.IN_PROGRESS),
    Action.REPLY: (frozenset({S.IN_PROGRESS}), S.REPLIED),
    Action.CLOSE: (frozenset({S.REPLIED}), S.CLOSED),
    Action.REVIEW: (frozenset({S.CLOSED}), S.REVIEWED),
    Action.EXPIRE: (frozenset({S.PAID, S.WAITING, S.CLAIMED}), S.CLOSED),
    Action.CANCEL: (frozenset({S.CREATED}), S.CANCELLED),
}
TERMINAL = frozenset({S.REVIEWED, S.CANCELLED})
UNANSWERED = TRANSITIONS[Action.EXPIRE][0]  # no doctor has written yet
# States in which patient and doctor exchange messages.
CONVERSATION = frozenset({S.IN_PROGRESS, S.REPLIED})
OPEN = frozenset({S.PAID, S.WAITING, S.CLAIMED, S.IN_PROGRESS, S.REPLIED})


class CloseReason(StrEnum):
    COMPLETED = "completed"  # the doctor answered and the consultation ended
    UNANSWERED = "unanswered"  # nobody answered within the time limit: refunded


def transition(order_id: str, status: ConsultStatus, action: Action) -> ConsultStatus:
    """The one place a consultation's next status is computed."""
    sources, target = TRANSITIONS[action]
    if status not in sources:
        raise IllegalTransition("咨询订单", order_id, status.label, action.label)
    return target


def ensure_may_review(order_id: str, status: ConsultStatus, close_reason: str | None, rating: int) -> None:
    """评价: only a consultation that was answered and closed, once, with 1–5 stars."""
    transition(order_id, status, Action.REVIEW)
    if close_reason != CloseReason.COMPLETED:
        raise IllegalTransition("咨询订单", order_id, "超时退款", Action.REVIEW.label)
    if not 1 <= rating <= 5:
        raise InvalidInput("评分应为 1 到 5 星", field="rating")


def answer_deadline(paid_at: datetime, time_limit: timedelta) -> datetime:
    return paid_at + time_limit


# --- Payment state: derived from payment and refund records, never stored ---


class PaymentState(StrEnum):
    FREE = "free"
    UNPAID = "unpaid"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


@dataclass(frozen=True, slots=True)
class Ledger:
    """Money of one order (or a set of orders) from succeeded records only."""

    paid_fen: int
    refunded_fen: int

    @property
    def net_fen(self) -> int:
        """Income: payments minus refunds."""
        return self.paid_fen - self.refunded_fen


def ledger(payments: Iterable[int], refunds: Iterable[int]) -> Ledger:
    """Amounts of succeeded payments and succeeded refunds."""
    return Ledger(sum(payments), sum(refunds))


def payment_state(price_fen: int, money: Ledger) -> PaymentState:
    if price_fen == 0:
        return PaymentState.FREE
    if money.paid_fen < price_fen:
        return PaymentState.UNPAID
    if money.refunded_fen == 0:
        return PaymentState.PAID
    if money.refunded_fen >= money.paid_fen:
        return PaymentState.REFUNDED
    return PaymentState.PARTIALLY_REFUNDED


def ensure_refundable(order_id: str, money: Ledger, amount_fen: int) -> None:
    if amount_fen <= 0:
        raise InvalidInput("退款金额必须大于 0", field="amount_fen")
    if amount_fen > money.net_fen:
        raise RuleViolation("PAY-REFUND", f"订单 {order_id} 的退款金额超过已付未退金额")


# --- Messages and attachments ---


class MessageKind(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VOICE = "voice"


MAX_TEXT_CHARS = 2000
ATTACHMENT_TYPES: dict[MessageKind, dict[str, int]] = {
    # mime → maximum size in bytes
    MessageKind.IMAGE: {"image/jpeg": 5 * 2**20, "image/png": 5 * 2**20, "image/webp": 5 * 2**20},
    MessageKind.VOICE: {"audio/amr": 2 * 2**20, "audio/mpeg": 2 * 2**20, "audio/ogg": 2 * 2**20,
                        "audio/mp4": 2 * 2**20},
}


def sniff_mime(data: bytes) -> str | None:
    """The file's real type from its first bytes; a declared type is never trusted."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"#!AMR\n"):
        return "audio/amr"
    if data.startswith(b"ID3") or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if data.startswith(b"OggS"):
        return "audio/ogg"
    if data[4:8] == b"ftyp":
        return "audio/mp4"
    return None


def check_message(kind: MessageKind, text: str | None, attachment: bytes | None) -> str | None:
    """Validate a message; returns the attachment's sniffed mime type (or None for text)."""
    if kind is MessageKind.TEXT:
        body = (text or "").strip()
        if not body:
            raise InvalidInput("消息内容不能为空", field="text")
        if len(body) > MAX_TEXT_CHARS:
            raise InvalidInput(f"文字消息最多 {MAX_TEXT_CHARS} 字", field="text")
        if attachment is not None:
            raise InvalidInput("文字消息不能带附件", field="attachment")
        return None
    if not attachment:
        raise InvalidInput(f"{'图片' if kind is MessageKind.IMAGE else '语音'}消息缺少文件", field="attachment")
    if text is not None and len(text) > MAX_TEXT_CHARS:
        raise InvalidInput(f"附言最多 {MAX_TEXT_CHARS} 字", field="text")
    mime = sniff_mime(attachment)
    allowed = ATTACHMENT_TYPES[kind]
    if mime not in allowed:
        names = "、".join(m.split("/")[1] for m in allowed)
        raise InvalidInput(f"文件类型不受支持，仅支持 {names}", field="attachment")
    if len(attachment) > allowed[mime]:
        raise InvalidInput(f"文件超过 {allowed[mime] // 2**20} MB 上限", field="attachment")
    return mime


def check_question(text: str) -> str:
    body = (text or "").strip()
    if len(body) < 5:
        raise InvalidInput("请至少用 5 个字描述病情", field="question")
    if len(body) > MAX_TEXT_CHARS:
        raise InvalidInput(f"病情描述最多 {MAX_TEXT_CHARS} 字", field="question")
    return body
