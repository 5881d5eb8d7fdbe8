"""报表期间: a month (``2026-10``), a quarter (``2026Q4``) or a year (``2026``).

A period is a half-open interval of Shanghai calendar days; ``bounds()`` turns it into
UTC instants for the queries. Previous period (环比) and the same period a year earlier (同比)
are periods of the same kind, so every comparison is like for like.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from clinical_core.domain.errors import InvalidInput

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Grain(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


_MONTHS = {Grain.MONTH: 1, Grain.QUARTER: 3, Grain.YEAR: 12}
_PATTERNS = (
    (Grain.MONTH, re.compile(r"^(\d{4})-(\d{1,2})$")),
    (Grain.QUARTER, re.compile(r"^(\d{4})[Qq]([1-4])$")),
    (Grain.YEAR, re.compile(r"^(\d{4})$")),
)


@dataclass(frozen=True, slots=True, order=True)
class Period:
    """One reporting period; ``index`` is the month (1-12), quarter (1-4) or 1 for a year."""

    year: int
    grain: Grain
    index: int

    @staticmethod
    def parse(text: str, grain: Grain | None = None) -> Period:
        value = text.strip()
        for g, pattern in _PATTERNS:
            match = pattern.match(value)
            if match and (grain is None or grain is g):
                year = int(match.group(1))
                index = int(match.group(2)) if g is not Grain.YEAR else 1
                if g is Grain.MONTH and not 1 <= index <= 12:
                    break
                if not 2000 <= year <= 2100:
                    break
                return Period(year, g, index)
        expected = {Grain.MONTH: "2026-10", Grain.QUARTER: "2026Q4", Grain.YEAR: "2026", None: "2026-10、2026Q4 或 2026"}
        raise InvalidInput(f"报表期间格式不正确：应为 {expected[grain]}")

    @staticmethod
    def containing(instant: datetime, grain: Grain) -> Period:
        day = instant.astimezone(SHANGHAI).date()
        if grain is Grain.MONTH:
            return Period(day.year, grain, day.month)
        if grain is Grain.QUARTER:
            return Period(day.year, grain, (day.month - 1) // 3 + 1)
        return Period(day.year, grain, 1)

    @property
    def first_month(self) -> int:
        return (self.index - 1) * _MONTHS[self.grain] + 1

    @property
    def first_day(self) -> date:
        return date(self.year, self.first_month, 1)

    @property
    def end_day(self) -> date:
        """The first day after the period."""
        return _add_months(self.first_day, _MONTHS[self.grain])

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) in UTC: Shanghai midnight of the first day and of the day after the last."""
        return (datetime.combine(self.first_day, time(0), tzinfo=SHANGHAI).astimezone(UTC),
                datetime.combine(self.end_day, time(0), tzinfo=SHANGHAI).astimezone(UTC))

    def shifted(self, steps: int) -> Period:
        """The period ``steps`` periods later (negative: earlier)."""
        months = (self.year * 12 + self.first_month - 1) + steps * _MONTHS[self.grain]
        year, month0 = divmod(months, 12)
        return Period(year, self.grain, month0 // _MONTHS[self.grain] + 1)

    def previous(self) -> Period:
        return self.shifted(-1)

    def year_ago(self) -> Period:
        return Period(self.year - 1, self.grain, self.index)

    def months(self) -> list[Period]:
        return [Period(self.year, Grain.MONTH, self.first_month + i) for i in range(_MONTHS[self.grain])]

    def history(self, count: int) -> list[Period]:
        """The ``count`` periods ending with this one, oldest first."""
        return [self.shifted(-i) for i in range(count - 1, -1, -1)]

    @property
    def code(self) -> str:
        if self.grain is Grain.MONTH:
            return f"{self.year}-{self.index:02d}"
        if self.grain is Grain.QUARTER:
            return f"{self.year}Q{self.index}"
        return f"{self.year}"

    @property
    def label(self) -> str:
        if self.grain is Grain.MONTH:
            return f"{self.year}年{self.index}月"
        if self.grain is Grain.QUARTER:
            return f"{self.year}年第{'一二三四'[self.index - 1]}季度"
        return f"{self.year}年"

    @property
    def short_label(self) -> str:
        if self.grain is Grain.MONTH:
            return f"{self.index}月" if self.index != 1 else f"{self.year % 100}年1月"
        if self.grain is Grain.QUARTER:
            return f"{self.year % 100}Q{self.index}"
        return f"{self.year}"

    def archive_dir(self) -> str:
        """Relative archive folder: ``YYYY/MM`` for a month, ``YYYY/Qn`` and ``YYYY/annual``."""
        if self.grain is Grain.MONTH:
            return f"{self.year}/{self.index:02d}"
        if self.grain is Grain.QUARTER:
            return f"{self.year}/Q{self.index}"
        return f"{self.year}/annual"


def last_complete(now: datetime, grain: Grain) -> Period:
    """The latest period that has ended by ``now`` (the one a scheduled run reports on)."""
    return Period.containing(now, grain).previous()


def _add_months(day: date, months: int) -> date:
    total = day.year * 12 + day.month - 1 + months
    return date(total // 12, total % 12 + 1, 1)


def day_after(day: date) -> date:
    return day + timedelta(days=1)
