"""Port for the HIS's outpatient schedule (线下门诊排班与号源).

The HIS owns the offline number pool. The video clinic reads it for the fused
view (VC-3) and, before an online booking of a time the doctor also offers
offline, *holds* the overlapping offline slots so the window cannot sell them;
a cancelled online visit releases them. Kept beside ``ports.his`` (the
patient's record) as its own protocol so each HIS capability can be plugged
separately.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class HisOutpatientSlot:
    slot_no: str
    doctor_id: str  # our staff public id (the HIS maps its doctor codes to ours)
    department_code: str
    starts_at: datetime
    ends_at: datetime
    taken: bool


class HisSchedulePort(Protocol):
    def outpatient_slots(self, *, start: datetime, end: datetime, doctor_id: str | None = None,
                         department_code: str | None = None) -> list[HisOutpatientSlot]:
        """Offline slots starting in [start, end), by doctor or department."""
        ...

    def hold(self, slot_nos: list[str], reference: str) -> None:
        """Hold every slot for an online visit, all or none; ``Conflict`` if any is already taken."""
        ...

    def release(self, slot_nos: list[str], reference: str) -> None:
        """Release slots this reference holds (idempotent)."""
        ...
