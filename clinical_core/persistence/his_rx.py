"""Tables of the integrated (HIS) mode (RX-5): the ledger of operations sent to the HIS, and the
drug catalogue sync runs.

Each HIS operation of a prescription (register, void, charge, refund, dispense) is recorded *before*
it is sent, under its idempotency key: pending → succeeded (the HIS's receipt, and the local change
applied in the same transaction) | failed (the HIS refused, or had no record of a lost request that
must not be re-sent). A pending row whose call timed out is settled by the reconciliation job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from clinical_core.persistence.base import Base, JsonType, PublicIdMixin, fk


class HisRxOperationRow(PublicIdMixin, Base):
    """One operation of a prescription through the HIS."""

    __tablename__ = "his_rx_operations"
    prescription_id: Mapped[int] = mapped_column(fk("prescriptions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # register | void | charge | refund | dispense
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | succeeded | failed
    request: Mapped[dict[str, Any]] = mapped_column(JsonType)  # what was sent (no personal data)
    his_number: Mapped[str | None] = mapped_column(String(32))  # 处方号 / 收费单号 / 退费单号 / 发药单号
    amount_fen: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    requested_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    settled_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_his_rx_operations_status", "status", "updated_at"),)


class DrugSyncRunRow(PublicIdMixin, Base):
    """药品目录同步: one run (dry runs are not recorded), with its difference."""

    __tablename__ = "drug_sync_runs"
    actor: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16))  # succeeded | failed
    added: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    withdrawn: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    diff: Mapped[dict[str, Any]] = mapped_column(JsonType)  # {"added": [...], "changed": [{code, fields}], "withdrawn": [...]}
    error: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
