"""处方 and 审方: the prescription's state machine and the pharmacist's review.

    pending_review --approve--> approved            (药师审核通过; never automatic: R32, R36)
    pending_review --reject--> rejected --revise--> pending_review   (R35: back to the doctor, reviewed again)
    pending_review/rejected/approved --void--> voided                (作废, before payment)

Circulation (流转), after approval only (R20 先方后药, R32):

    approved --pay--> paid --dispense--> dispensed --ship--> shipped --deliver--> delivered
    paid --refund--> refunded                                        (退款, before dispensing)

Dispensing marks the prescription as used; a used prescription is never
dispensed again (R54).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from clinical_core.domain.errors import IllegalTransition, InvalidInput, RuleViolation
from clinical_core.domain.staff import TITLES, Qualification, Role

MIN_REVIEWER_YEARS = 3  # R33


class RxStatus(StrEnum):
    PENDING_REVIEW = "pending_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    VOIDED = "voided"
    PAID = "paid"
    DISPENSED = "dispensed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    REFUNDED = "refunded"

    @property
    def label(self) -> str:
        return {"pending_review": "待审核", "approved": "审核通过", "rejected": "审核驳回", "voided": "已作废",
                "paid": "已支付", "dispensed": "已调配", "shipped": "已发货", "delivered": "已签收",
                "refunded": "已退款"}[self]


class RxAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REVISE = "revise"
    VOID = "void"
    PAY = "pay"
    DISPENSE = "dispense"
    SHIP = "ship"
    DELIVER = "deliver"
    REFUND = "refund"

    @property
    def label(self) -> str:
        return {"approve": "审核通过", "reject": "驳回", "revise": "修改后重新提交", "void": "作废", "pay": "支付",
                "dispense": "调配", "ship": "发货", "deliver": "签收", "refund": "退款"}[self]


R = RxStatus
RX_TRANSITIONS: dict[RxAction, tuple[frozenset[RxStatus], RxStatus]] = {
    RxAction.APPROVE: (frozenset({R.PENDING_REVIEW}), R.APPROVED),
    RxAction.REJECT: (frozenset({R.PENDING_REVIEW}), R.REJECTED),
    RxAction.REVISE: (frozenset({R.REJECTED}), R.PENDING_REVIEW),
    RxAction.VOID: (frozenset({R.PENDING_REVIEW, R.REJECTED, R.APPROVED}), R.VOIDED),
    RxAction.PAY: (frozenset({R.APPROVED}), R.PAID),
    RxAction.DISPENSE: (frozenset({R.PAID}), R.DISPENSED),
    RxAction.SHIP: (frozenset({R.DISPENSED}), R.SHIPPED),
    RxAction.DELIVER: (frozenset({R.SHIPPED}), R.DELIVERED),
    RxAction.REFUND: (frozenset({R.PAID}), R.REFUNDED),
}

NOT_YET_APPROVED = frozenset({R.PENDING_REVIEW, R.REJECTED})
USED = frozenset({R.DISPENSED, R.SHIPPED, R.DELIVERED})


def ensure_may_order_drugs(rx_id: str, status: RxStatus) -> None:
    """R20 先方后药: no paying for (ordering) drugs before the prescription is approved."""
    if status in NOT_YET_APPROVED:
        raise RuleViolation("R20", "处方尚未经药师审核通过，不能购药")
    rx_transition(rx_id, status, RxAction.PAY)


def ensure_unused(rx_id: str, status: RxStatus) -> None:
    """R54: a dispensed prescription is marked used and is never dispensed again."""
    if status in USED:
        raise RuleViolation("R54", "该处方已调配使用，不能重复使用")
    rx_transition(rx_id, status, RxAction.DISPENSE)


def check_tracking(carrier: str, tracking_no: str) -> tuple[str, str]:
    carrier, tracking_no = carrier.strip(), tracking_no.strip()
    if not carrier or len(carrier) > 40:
        raise InvalidInput("须填写承运商（最多 40 字）", field="carrier")
    if not tracking_no.isascii() or not tracking_no.replace("-", "").isalnum() or not 6 <= len(tracking_no) <= 40:
        raise InvalidInput("运单号须为 6–40 位字母或数字", field="tracking_no")
    return carrier, tracking_no


def check_store_code(code: str) -> str:
    code = code.strip().upper()
    if not code or len(code) > 20 or not code.replace("-", "").replace("_", "").isalnum() or not code.isascii():
        raise InvalidInput("药房编码须为 1–20 位字母、数字、- 或 _", field="code")
    return code


def drugs_total_fen(items: list[tuple[int, int]]) -> int:
    """(price_fen, quantity) pairs → the amount the patient pays."""
    return sum(price * qty for price, qty in items)


def rx_transition(rx_id: str, status: RxStatus, action: RxAction) -> RxStatus:
    sources, target = RX_TRANSITIONS[action]
    if status not in sources:
        raise IllegalTransition("处方", rx_id, status.label, action.label)
    return target


class RejectReason(StrEnum):
    """驳回理由 (structured, so the doctor sees what to fix and statistics can count them)."""

    INDICATION = "indication"
    DOSAGE = "dosage"
    INTERACTION = "interaction"
    DUPLICATE = "duplicate"
    CONTRAINDICATION = "contraindication"
    DIAGNOSIS = "diagnosis"
    OTHER = "other"

    @property
    def label(self) -> str:
        return REJECT_LABELS[self]


REJECT_LABELS = {
    RejectReason.INDICATION: "适应症不适宜",
    RejectReason.DOSAGE: "用法用量不适宜",
    RejectReason.INTERACTION: "存在相互作用",
    RejectReason.DUPLICATE: "重复用药",
    RejectReason.CONTRAINDICATION: "存在禁忌",
    RejectReason.DIAGNOSIS: "诊断与用药不符",
    RejectReason.OTHER: "其他",
}


def ensure_may_review_online(q: Qualification, today: date) -> None:
    """R33: a reviewer holds the 药师 title or above and ≥3 years of dispensing practice."""
    if q.role is not Role.PHARMACIST:
        raise RuleViolation("R33", "只有药师可以审核处方")
    if q.title_rank() < TITLES["药师"][1]:
        raise RuleViolation("R33", "审方需药师及以上职称")
    years = q.years_of_practice(today)
    if years < MIN_REVIEWER_YEARS:
        raise RuleViolation("R33", f"药师执业 {years} 年，不足 {MIN_REVIEWER_YEARS} 年，不能审方")


def check_rejection(reasons: tuple[RejectReason, ...], comment: str | None) -> None:
    if not reasons:
        raise InvalidInput("驳回处方须至少选择一项理由", field="reasons")
    if RejectReason.OTHER in reasons and not (comment or "").strip():
        raise InvalidInput("选择「其他」时须填写说明", field="comment")
    if comment is not None and len(comment) > 500:
        raise InvalidInput("审方意见最多 500 字", field="comment")


def canonical_form(header: dict[str, object], items: list[dict[str, object]]) -> bytes:
    """处方规范化表示: what the doctor signs. Sorted keys, no whitespace, UTF-8, so
    the same prescription always gives the same bytes and any change gives others."""
    import json

    return json.dumps({"prescription": header, "items": items}, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":")).encode()


def countersign_form(canonical: bytes, doctor_signature: bytes) -> bytes:
    """What the pharmacist signs on approval: the prescription and the doctor's signature."""
    return canonical + b"\n" + b"approved-by-pharmacist\n" + doctor_signature


# --- 快速续方 (fast renewal) ---


class RenewalStatus(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    DECLINED = "declined"

    @property
    def label(self) -> str:
        return {"requested": "待医生处理", "approved": "已续方", "declined": "已拒绝"}[self]


RENEWABLE_SOURCES = frozenset({R.DISPENSED, R.SHIPPED, R.DELIVERED})
ACTIVE = frozenset({R.PENDING_REVIEW, R.APPROVED, R.PAID, R.DISPENSED, R.SHIPPED, R.DELIVERED})


def ensure_renewable(status: RxStatus, long_term_reason: str | None, max_days_supply: int) -> None:
    """Only a chronic prescription (a written long-term reason or more than 7 days' supply, R26)
    that was actually dispensed can be renewed."""
    if status not in RENEWABLE_SOURCES:
        raise InvalidInput("只有已调配的处方可以申请续方", field="prescription_id")
    if not long_term_reason and max_days_supply <= 7:
        raise InvalidInput("只有慢性病长期处方可以快速续方，请预约复诊", field="prescription_id")


def renewal_transition(renewal_id: str, status: RenewalStatus, approve: bool) -> RenewalStatus:
    if status is not RenewalStatus.REQUESTED:
        raise IllegalTransition("续方申请", renewal_id, status.label, "续方" if approve else "拒绝续方")
    return RenewalStatus.APPROVED if approve else RenewalStatus.DECLINED


def check_decline_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason or len(reason) > 200:
        raise InvalidInput("拒绝续方须填写原因（最多 200 字），例如「请先预约复诊」", field="reason")
    return reason


def duplicates(renewed: set[str], active: dict[str, set[str]]) -> dict[str, tuple[str, ...]]:
    """Generic names of the renewal that the patient already has on other active prescriptions:
    {generic name: (prescription ids…)}."""
    return {name: tuple(sorted(rx for rx, names in active.items() if name in names))
            for name in sorted(renewed) if any(name in names for names in active.values())}
