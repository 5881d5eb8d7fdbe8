"""Port for the hospital information system (HIS): the patient's offline record.

The real HIS answers over its own interface; ``clinical_core.adapters.his_fake``
serves the seeded ``his_visits`` and ``his_results`` tables for the demo and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class HisDiagnosis:
    code: str  # ICD-10
    name: str


@dataclass(frozen=True, slots=True)
class HisVisit:
    """线下就诊记录."""

    visit_no: str
    visited_at: datetime
    visit_type: str  # outpatient | inpatient | emergency
    department: str
    doctor: str | None
    diagnoses: tuple[HisDiagnosis, ...]


@dataclass(frozen=True, slots=True)
class HisLabItem:
    code: str
    name: str
    value: str
    unit: str
    reference_range: str
    flag: str  # "" normal | "H" high | "L" low


@dataclass(frozen=True, slots=True)
class HisResult:
    """检验/检查报告 of an offline visit."""

    report_no: str
    visit_no: str
    kind: str  # lab | exam
    name: str
    reported_at: datetime
    items: tuple[HisLabItem, ...]  # lab results
    findings: str | None  # exam: 检查所见
    conclusion: str | None  # exam: 诊断意见

    @property
    def abnormal(self) -> bool:
        return any(i.flag for i in self.items)


class HisPort(Protocol):
    def visits(self, patient_id: str, *, limit: int = 50) -> list[HisVisit]:
        """The patient's offline visits (newest first), by the patient's public id."""
        ...

    def results(self, patient_id: str, *, limit: int = 50) -> list[HisResult]:
        """The patient's lab and exam reports (newest first), by the patient's public id."""
        ...
