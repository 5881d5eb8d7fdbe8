"""Tables of the fake HIS beyond visits: lab and exam reports (检验/检查报告).

They stand for the hospital's own systems (LIS/PACS behind the HIS); the real
HIS answers through ``clinical_core.ports.his`` and none of this is ours.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from clinical_core.persistence.base import Base, IdMixin, JsonType, fk


class HisResultRow(IdMixin, Base):
    """One report: a lab panel with its items (value, unit, reference range, flag) or an exam with its findings."""

    __tablename__ = "his_results"
    report_no: Mapped[str] = mapped_column(String(30), unique=True)
    visit_id: Mapped[int] = mapped_column(fk("his_visits.id"), index=True)
    patient_id: Mapped[int] = mapped_column(fk("patients.id"))
    kind: Mapped[str] = mapped_column(String(10))  # lab | exam
    name: Mapped[str] = mapped_column(String(40))
    reported_at: Mapped[datetime]
    items: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)  # lab: [{code,name,value,unit,range,flag}]
    findings: Mapped[str | None] = mapped_column(String(400))  # exam: 检查所见
    conclusion: Mapped[str | None] = mapped_column(String(200))  # exam: 诊断意见 / lab: none

    __table_args__ = (Index("ix_his_results_patient_reported", "patient_id", "reported_at"),)
