"""Port for the hospital information system (HIS): the patient's offline record.

The real HIS answers over its own interface; ``clinical_core.adapters.his_fake``
serves the seeded ``his_visits`` table for the demo and tests.
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


class HisPort(Protocol):
    def visits(self, patient_id: str, *, limit: int = 50) -> list[HisVisit]:
        """The patient's offline visits (newest first), by the patient's public id."""
        ...
