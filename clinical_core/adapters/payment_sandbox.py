"""A payment sandbox with WeChat Pay v3 semantics, for tests and the demo.

- ``prepay`` registers the order and hands back JSAPI-style client parameters.
- ``simulate_payment`` plays the patient paying: it returns the signed
  notification (headers + JSON body) the provider would POST to us. Tests and
  the demo feed it to ``consultation.handle_paid_notification``, as the HTTP
  callback will in production; the same notification may be delivered again.
- ``parse_notification`` checks the HMAC-SHA256 signature over
  ``timestamp\\nnonce\\nbody\\n`` (WeChat signs the same string with RSA) and
  refuses anything forged or altered.
- ``refund`` is idempotent by ``out_refund_no`` and refuses to refund more
  than was paid. ``fail_next_refunds`` makes the provider refuse, to exercise
  the retry path.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from clinical_core.domain.errors import ExternalServiceError
from clinical_core.domain.time import Clock
from clinical_core.ports.payment import PaidNotice, Prepay, RefundReceipt


@dataclass
class _Trade:
    amount_fen: int
    prepay_id: str
    transaction_id: str | None = None
    refunds: dict[str, tuple[str, int]] = field(default_factory=dict)  # out_refund_no → (refund_id, amount)

    @property
    def refunded(self) -> int:
        return sum(amount for _, amount in self.refunds.values())


class SandboxPaymentGateway:
    def __init__(self, clock: Clock, key: bytes | None = None) -> None:
        self.clock = clock
        self._key = key or secrets.token_bytes(32)
        self.trades: dict[str, _Trade] = {}
        self.fail_next_refunds = 0
        self.refund_calls = 0

    # --- the provider's API ---

    def prepay(self, out_trade_no: str, amount_fen: int, description: str, payer_openid: str | None) -> Prepay:
        trade = self.trades.get(out_trade_no)
        if trade is None:
            trade = self.trades[out_trade_no] = _Trade(amount_fen, f"wx{secrets.token_hex(14)}")
        elif trade.amount_fen != amount_fen:
            raise ExternalServiceError("支付平台：同一商户订单号的金额不一致")
        nonce = secrets.token_hex(16)
        timestamp = str(int(self.clock.now().timestamp()))
        package = f"prepay_id={trade.prepay_id}"
        sign = hmac.new(self._key, f"{timestamp}\n{nonce}\n{package}\n".encode(), hashlib.sha256).hexdigest()
        return Prepay(trade.prepay_id, {"timeStamp": timestamp, "nonceStr": nonce, "package": package,
                                        "signType": "HMAC-SHA256", "paySign": sign})

    def parse_notification(self, headers: dict[str, str], body: bytes) -> PaidNotice:
        lower = {k.lower(): v for k, v in headers.items()}
        timestamp, nonce = lower.get("wechatpay-timestamp", ""), lower.get("wechatpay-nonce", "")
        expected = self._sign(timestamp, nonce, body)
        if not hmac.compare_digest(expected, lower.get("wechatpay-signature", "")):
            raise ExternalServiceError("支付通知签名无效")
        try:
            resource = json.loads(body)["resource"]
            if resource["trade_state"] != "SUCCESS":
                raise ExternalServiceError("支付通知不是成功状态")
            return PaidNotice(resource["out_trade_no"], resource["transaction_id"],
                              int(resource["amount"]["total"]), datetime.fromisoformat(resource["success_time"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise ExternalServiceError("支付通知格式不正确") from exc

    def refund(self, out_trade_no: str, out_refund_no: str, amount_fen: int, total_fen: int,
               reason: str) -> RefundReceipt:
        self.refund_calls += 1
        if self.fail_next_refunds > 0:
            self.fail_next_refunds -= 1
            raise ExternalServiceError("支付平台暂时无法退款")
        trade = self.trades.get(out_trade_no)
        if trade is None or trade.transaction_id is None:
            raise ExternalServiceError("支付平台：订单不存在或未支付")
        if out_refund_no in trade.refunds:  # the same refund asked again
            return RefundReceipt(trade.refunds[out_refund_no][0], "SUCCESS")
        if total_fen != trade.amount_fen or trade.refunded + amount_fen > trade.amount_fen:
            raise ExternalServiceError("支付平台：退款金额超过订单金额")
        refund_id = f"50{secrets.token_hex(14)}"
        trade.refunds[out_refund_no] = (refund_id, amount_fen)
        return RefundReceipt(refund_id, "SUCCESS")

    # --- the sandbox's controls ---

    def simulate_payment(self, out_trade_no: str) -> tuple[dict[str, str], bytes]:
        """The patient pays: returns the signed notification the provider would send."""
        trade = self.trades[out_trade_no]
        if trade.transaction_id is None:
            trade.transaction_id = f"42{secrets.token_hex(14)}"
        body = json.dumps({
            "event_type": "TRANSACTION.SUCCESS",
            "resource": {"out_trade_no": out_trade_no, "transaction_id": trade.transaction_id,
                         "trade_state": "SUCCESS", "amount": {"total": trade.amount_fen, "currency": "CNY"},
                         "success_time": self.clock.now().isoformat()},
        }, separators=(",", ":")).encode()
        timestamp, nonce = str(int(self.clock.now().timestamp())), secrets.token_hex(16)
        headers = {"Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce,
                   "Wechatpay-Signature": self._sign(timestamp, nonce, body)}
        return headers, body

    def _sign(self, timestamp: str, nonce: str, body: bytes) -> str:
        message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
