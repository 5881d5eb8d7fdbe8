"""Misfire and coalescing: which of a schedule's overdue fire times run now (pure).

A fire time is *missed* when the scheduler looks at it more than ``grace`` after it was due
(the process was down, or busy). Of the fire times still within grace, a coalescing job runs
once (for the latest); a non-coalescing one runs once per fire time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class MisfirePolicy:
    grace: timedelta  # how late a run may still start
    coalesce: bool  # several overdue fire times → one run

    def __post_init__(self) -> None:
        if self.grace < timedelta(0):
            raise ValueError("misfire grace must not be negative")


@dataclass(frozen=True, slots=True)
class FireDecision:
    run: tuple[datetime, ...]  # fire times to run now, oldest first
    missed: tuple[datetime, ...]  # fire times dropped as too late


def decide(due: list[datetime] | tuple[datetime, ...], now: datetime, policy: MisfirePolicy) -> FireDecision:
    """Split the overdue fire times ``due`` (ascending, all ≤ now) into those to run and those missed."""
    in_time = tuple(t for t in due if now - t <= policy.grace)
    missed = tuple(t for t in due if now - t > policy.grace)
    if policy.coalesce and in_time:
        in_time = in_time[-1:]
    return FireDecision(in_time, missed)
