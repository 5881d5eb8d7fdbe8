"""Payment and refund records, shared by every paid order (consultations,
prescriptions, and later video visits and nursing orders).

Each kind of order gets its own pair of tables (``consult_payments``,
``rx_payments`` ...) built from these mixins plus a foreign key to the order:
payments and refunds are records with their own life, and the order's payment
state is derived from them, never stored as a balance.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from clinical_core.persistence.base import PublicIdMixin


class PaymentRecordMixin(PublicIdMixin):
    """支付记录 (one per prepay), settled by the provider's paid notification."""

    out_trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    prepay_id: Mapped[str | None] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))  # pending | succeeded
    transaction_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]


class RefundRecordMixin(PublicIdMixin):
    """退款记录: pending → (processing →) succeeded, sent to the provider after the order's transaction commits."""

    out_refund_no: Mapped[str] = mapped_column(String(32), unique=True)
    amount_fen: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), index=True)  # pending | processing | succeeded
    refund_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    requested_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
    settled_at: Mapped[datetime | None]
