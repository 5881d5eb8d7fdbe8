"""The fake HIS's outpatient schedule (门诊号源): what the real HIS keeps on its
side, held here so the demo and the tests have an HIS to talk to.

A slot is taken by one conditional UPDATE (``taken_by IS NULL``): at the
hospital window (``offline:<ref>``) or held for an online visit
(``online:<visit>``), whichever comes first.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from clinical_core.persistence.base import Base, IdMixin, fk


class HisOutpatientSlotRow(IdMixin, Base):
    """线下门诊号源 held by the fake HIS."""

    __tablename__ = "his_outpatient_slots"
    slot_no: Mapped[str] = mapped_column(String(30), unique=True, index=True)
    doctor_id: Mapped[int] = mapped_column(fk("staff.id"))
    department_id: Mapped[int] = mapped_column(fk("departments.id"))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    taken_by: Mapped[str | None] = mapped_column(String(60))
    taken_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_his_outpatient_slots_doctor_start", "doctor_id", "starts_at"),)
