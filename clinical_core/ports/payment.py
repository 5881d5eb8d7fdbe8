"""Port for online payment (支付), shaped after WeChat Pay v3 JSAPI.

- ``prepay``: the order is registered with the provider; the client pays with
  the returned parameters.
- The provider later posts an asynchronous, signed *paid notification*; the
  service verifies it with ``parse_notification`` and settles the payment
  idempotently (the provider retries notifications).
- ``refund`` is its own request with its own number (``out_refund_no``); the
  provider treats a repeated ``out_refund_no`` as the same refund. It usually
  answers PROCESSING: the refund settles asynchronously and ``query_refund``
  reports SUCCESS (or ABNORMAL) later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Prepay:
    prepay_id: str
    client_params: dict[str, str]  # what the patient's WeChat client needs to pay


@dataclass(frozen=True, slots=True)
class PaidNotice:
    out_trade_no: str
    transaction_id: str
    amount_fen: int
    paid_at: datetime


@dataclass(frozen=True, slots=True)
class RefundReceipt:
    refund_id: str
    status: str  # SUCCESS | PROCESSING | ABNORMAL


class PaymentGateway(Protocol):
    def prepay(self, out_trade_no: str, amount_fen: int, description: str, payer_openid: str | None) -> Prepay: ...

    def parse_notification(self, headers: dict[str, str], body: bytes) -> PaidNotice:
        """Verify the signature and decode; raises ``ExternalServiceError`` when forged."""
        ...

    def refund(self, out_trade_no: str, out_refund_no: str, amount_fen: int, total_fen: int,
               reason: str) -> RefundReceipt: ...

    def query_refund(self, out_refund_no: str) -> RefundReceipt:
        """The provider's current state of one refund (WeChat's 查询单笔退款)."""
        ...
