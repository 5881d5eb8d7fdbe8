"""Clocks. Time is injected, never read directly (STYLE rule 7).

Storage is UTC; display is Asia/Shanghai.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo

SHANGHAI: tzinfo = ZoneInfo("Asia/Shanghai")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware (UTC)."""
        ...


class SystemClock:
    """The wall clock. Only the composition root creates one."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock tests and the simulated demo move by hand."""

    current: datetime = field(default_factory=lambda: datetime(2026, 10, 1, tzinfo=UTC))

    def __post_init__(self) -> None:
        if self.current.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> datetime:
        self.current = self.current + delta
        return self.current


def local_date(instant: datetime) -> date:
    """The hospital's calendar day of an instant."""
    return instant.astimezone(SHANGHAI).date()


def to_local(instant: datetime) -> datetime:
    return instant.astimezone(SHANGHAI)
