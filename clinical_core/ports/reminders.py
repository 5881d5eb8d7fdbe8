"""Port for reminding a patient of a coming video visit (WeChat template message
in production; ``opsctl.video_reminders`` adapts the WeChat client)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class VisitReminder:
    visit_id: str
    openid: str
    doctor_name: str
    department: str
    starts_at: datetime  # UTC; the adapter shows Asia/Shanghai


class ReminderSender(Protocol):
    def send_visit_reminder(self, reminder: VisitReminder) -> None:
        """Raises ``ExternalServiceError`` when the channel refuses; the job records it and retries."""
        ...
