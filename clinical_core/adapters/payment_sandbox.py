"""A payment sandbox with WeChat Pay v3 semantics, for tests, the demo and staging.

The sandbox plays the provider, and keeps the provider's state durably in its
own SQLite file (``<data dir>/payment_sandbox/provider.db``; it is the other
party's ledger, not our schema, so it is not in our migrations and never joins
our transactions), so a prepay made by ``opsctl serve`` can be paid, refunded
and settled from the CLI or the scheduler in another process:

- ``prepay`` registers the order (idempotent by ``out_trade_no``; a different
  amount for the same number is refused) and hands back JSAPI-style client
  parameters signed with the merchant key.
- ``simulate_payment`` plays the patient paying: the trade becomes SUCCESS and
  the signed, asynchronous *paid notification* (headers + JSON body) the
  provider would POST to us is returned. Tests and the demo feed it to
  ``handle_paid_notification``, as the HTTP callback does in production; the
  same notification may be delivered again.
- ``parse_notification`` checks the HMAC-SHA256 signature over
  ``timestamp\\nnonce\\nbody\\n`` (WeChat signs the same string with RSA) and
  refuses anything forged or altered.
- ``refund`` creates the provider's own refund record, idempotent by
  ``out_refund_no``, refuses more than was paid, and answers PROCESSING: the
  refund settles asynchronously, ``settle_delay`` after it was accepted;
  ``query_refund`` then answers SUCCESS (WeChat's 查询单笔退款).
  ``fail_next_refunds`` (shared through the database) makes the provider refuse
  the next N refund requests, to exercise the retry path.

Concurrency is settled in the database: every sandbox transaction starts with
``BEGIN IMMEDIATE`` (one writer at a time across processes, WAL for readers),
numbers are unique, state changes are conditional updates. The merchant key must be the same in
every process (``opsctl.wiring`` derives it from the master key).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import (
    Engine,
    Integer,
    String,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from clinical_core.adapters.sandbox_store import sandbox_engine
from clinical_core.domain.errors import ExternalServiceError
from clinical_core.domain.time import Clock
from clinical_core.persistence.base import UTCDateTime
from clinical_core.ports.payment import PaidNotice, Prepay, RefundReceipt

_FAIL_REFUNDS = "fail_next_refunds"


class _ProviderBase(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012 - SQLAlchemy reads it on the class


class SandboxTradeRow(_ProviderBase):
    """One merchant order at the provider: NOTPAY → SUCCESS when the patient pays."""

    __tablename__ = "trades"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    out_trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    prepay_id: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(127))
    trade_state: Mapped[str] = mapped_column(String(16))  # NOTPAY | SUCCESS
    transaction_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]


class SandboxRefundRow(_ProviderBase):
    """One refund at the provider, its own record: PROCESSING → SUCCESS once the bank has settled it."""

    __tablename__ = "refunds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    out_refund_no: Mapped[str] = mapped_column(String(64), unique=True)
    out_trade_no: Mapped[str] = mapped_column(String(32), index=True)
    refund_id: Mapped[str] = mapped_column(String(64), unique=True)
    amount_fen: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16))  # PROCESSING | SUCCESS | ABNORMAL
    created_at: Mapped[datetime]
    settles_at: Mapped[datetime]
    success_time: Mapped[datetime | None]


class SandboxControlRow(_ProviderBase):
    """The sandbox's knobs, shared by every process (e.g. refuse the next N refunds)."""

    __tablename__ = "controls"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


def _provider_engine(path: Path) -> Engine:
    return sandbox_engine(path, _ProviderBase.metadata)


class SandboxPaymentGateway:
    def __init__(self, clock: Clock, key: bytes | None = None, *, path: Path | None = None,
                 settle_delay: timedelta = timedelta(0)) -> None:
        """``path``: the provider's state file (shared by processes); ``None`` → a private temporary one."""
        if path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="paysandbox-")
            path = Path(self._tmp.name) / "provider.db"
        self.path = path
        self.engine = _provider_engine(path)
        self.clock = clock
        self._key = key or secrets.token_bytes(32)
        self.settle_delay = settle_delay
        self.refund_calls = 0  # refund requests made through this instance (for tests)

    # --- the provider's API ---

    def prepay(self, out_trade_no: str, amount_fen: int, description: str, payer_openid: str | None) -> Prepay:
        trade = self._trade(out_trade_no)
        if trade is None:
            try:
                with Session(self.engine) as s, s.begin():
                    s.add(SandboxTradeRow(out_trade_no=out_trade_no, prepay_id=f"wx{secrets.token_hex(14)}",
                                          amount_fen=amount_fen, description=description[:127], trade_state="NOTPAY",
                                          created_at=self.clock.now()))
            except IntegrityError:  # another process registered the same order meanwhile
                pass
            trade = self._trade(out_trade_no)
            assert trade is not None
        if trade.amount_fen != amount_fen:
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
        if self._take_failure():
            raise ExternalServiceError("支付平台暂时无法退款")
        now = self.clock.now()
        try:
            with Session(self.engine) as s, s.begin():
                trade = s.scalar(select(SandboxTradeRow).where(
                    SandboxTradeRow.out_trade_no == out_trade_no))
                if trade is None or trade.trade_state != "SUCCESS":
                    raise ExternalServiceError("支付平台：订单不存在或未支付")
                existing = s.scalar(select(SandboxRefundRow).where(SandboxRefundRow.out_refund_no == out_refund_no))
                if existing is not None:  # the same refund asked again
                    if existing.out_trade_no != out_trade_no or existing.amount_fen != amount_fen:
                        raise ExternalServiceError("支付平台：同一退款单号的内容不一致")
                    return RefundReceipt(existing.refund_id, existing.status)
                refunded = s.scalar(select(func.coalesce(func.sum(SandboxRefundRow.amount_fen), 0)).where(
                    SandboxRefundRow.out_trade_no == out_trade_no, SandboxRefundRow.status != "ABNORMAL")) or 0
                if amount_fen <= 0 or total_fen != trade.amount_fen or refunded + amount_fen > trade.amount_fen:
                    raise ExternalServiceError("支付平台：退款金额超过订单金额")
                refund = SandboxRefundRow(out_refund_no=out_refund_no, out_trade_no=out_trade_no,
                                          refund_id=f"50{secrets.token_hex(14)}", amount_fen=amount_fen,
                                          reason=reason[:80], status="PROCESSING", created_at=now,
                                          settles_at=now + self.settle_delay)
                s.add(refund)
                s.flush()
                return RefundReceipt(refund.refund_id, refund.status)
        except IntegrityError:  # the same out_refund_no sent concurrently: one record wins
            return self.query_refund(out_refund_no)

    def query_refund(self, out_refund_no: str) -> RefundReceipt:
        """查询单笔退款: PROCESSING until the refund has settled, then SUCCESS."""
        now = self.clock.now()
        with Session(self.engine) as s, s.begin():
            s.execute(update(SandboxRefundRow).where(
                SandboxRefundRow.out_refund_no == out_refund_no, SandboxRefundRow.status == "PROCESSING",
                SandboxRefundRow.settles_at <= now).values(status="SUCCESS", success_time=now))
            refund = s.scalar(select(SandboxRefundRow).where(SandboxRefundRow.out_refund_no == out_refund_no))
            if refund is None:
                raise ExternalServiceError("支付平台：退款单不存在")
            return RefundReceipt(refund.refund_id, refund.status)

    # --- the sandbox's controls ---

    def simulate_payment(self, out_trade_no: str) -> tuple[dict[str, str], bytes]:
        """The patient pays: returns the signed notification the provider would send."""
        now = self.clock.now()
        with Session(self.engine) as s, s.begin():
            s.execute(update(SandboxTradeRow).where(
                SandboxTradeRow.out_trade_no == out_trade_no, SandboxTradeRow.trade_state == "NOTPAY").values(
                trade_state="SUCCESS", transaction_id=f"42{secrets.token_hex(14)}", paid_at=now))
            trade = s.scalar(select(SandboxTradeRow).where(SandboxTradeRow.out_trade_no == out_trade_no))
            if trade is None:
                raise ExternalServiceError("支付平台：订单不存在")
            assert trade.paid_at is not None
            body = json.dumps({
                "event_type": "TRANSACTION.SUCCESS",
                "resource": {"out_trade_no": out_trade_no, "transaction_id": trade.transaction_id,
                             "trade_state": "SUCCESS", "amount": {"total": trade.amount_fen, "currency": "CNY"},
                             "success_time": trade.paid_at.isoformat()},
            }, separators=(",", ":")).encode()
        timestamp, nonce = str(int(now.timestamp())), secrets.token_hex(16)
        headers = {"Wechatpay-Timestamp": timestamp, "Wechatpay-Nonce": nonce,
                   "Wechatpay-Signature": self._sign(timestamp, nonce, body)}
        return headers, body

    @property
    def fail_next_refunds(self) -> int:
        with Session(self.engine) as s:
            return int(s.scalar(select(SandboxControlRow.value).where(SandboxControlRow.name == _FAIL_REFUNDS)) or 0)

    @fail_next_refunds.setter
    def fail_next_refunds(self, value: int) -> None:
        with Session(self.engine) as s, s.begin():
            if s.execute(update(SandboxControlRow).where(SandboxControlRow.name == _FAIL_REFUNDS)
                         .values(value=value)).rowcount == 0:  # type: ignore[attr-defined]
                s.add(SandboxControlRow(name=_FAIL_REFUNDS, value=value))

    def trade_state(self, out_trade_no: str) -> str | None:
        trade = self._trade(out_trade_no)
        return trade.trade_state if trade else None

    def refunds_of(self, out_trade_no: str) -> list[tuple[str, int, str]]:
        """(out_refund_no, amount, status) of the provider's refunds of one order."""
        with Session(self.engine) as s:
            return [(r.out_refund_no, r.amount_fen, r.status) for r in s.scalars(select(SandboxRefundRow).where(
                SandboxRefundRow.out_trade_no == out_trade_no).order_by(SandboxRefundRow.id))]

    # --- internals ---

    def _trade(self, out_trade_no: str) -> SandboxTradeRow | None:
        with Session(self.engine, expire_on_commit=False) as s:
            return s.scalar(select(SandboxTradeRow).where(SandboxTradeRow.out_trade_no == out_trade_no))

    def _take_failure(self) -> bool:
        """Consume one configured failure atomically (two processes never consume the same one)."""
        with Session(self.engine) as s, s.begin():
            result = s.execute(update(SandboxControlRow).where(
                SandboxControlRow.name == _FAIL_REFUNDS, SandboxControlRow.value > 0).values(
                value=SandboxControlRow.value - 1))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def _sign(self, timestamp: str, nonce: str, body: bytes) -> str:
        message = timestamp.encode() + b"\n" + nonce.encode() + b"\n" + body + b"\n"
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()
