"""Professional titles (专业技术职称) of doctors, pharmacists and nurses.

Titles follow the national health-profession series (卫生系列): 初级 (士级 and
师级), 中级, 副高级, 正高级. Doctors in hospitals start at 住院医师 (师级); the
士级 title 医士 is no longer used there, so doctors have four titles while
pharmacists and nurses have five.

``rank`` orders titles within one role, 1 being the most junior (住院医师,
药士, 护士). Ranks are not comparable across roles. Each role's titles are listed
from junior to senior.

``min_years``/``max_years`` bound the typical years of independent practice
(执业年限) of someone currently holding the title. Minimums reflect the usual
promotion intervals (e.g. 主治医师 after 2–5 years as 住院医师 depending on
degree, then about five years per senior step); maximums reflect that many
people keep a title until retirement.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES: tuple[str, ...] = ("doctor", "pharmacist", "nurse")


@dataclass(frozen=True, slots=True)
class Title:
    role: str
    name: str
    rank: int
    min_years: int
    max_years: int


DOCTOR_TITLES: tuple[Title, ...] = (
    Title("doctor", "住院医师", 1, 0, 8),
    Title("doctor", "主治医师", 2, 2, 30),
    Title("doctor", "副主任医师", 3, 7, 38),
    Title("doctor", "主任医师", 4, 12, 42),
)

PHARMACIST_TITLES: tuple[Title, ...] = (
    Title("pharmacist", "药士", 1, 0, 6),
    Title("pharmacist", "药师", 2, 1, 15),
    Title("pharmacist", "主管药师", 3, 5, 35),
    Title("pharmacist", "副主任药师", 4, 10, 38),
    Title("pharmacist", "主任药师", 5, 15, 42),
)

NURSE_TITLES: tuple[Title, ...] = (
    Title("nurse", "护士", 1, 0, 6),
    Title("nurse", "护师", 2, 1, 15),
    Title("nurse", "主管护师", 3, 5, 35),
    Title("nurse", "副主任护师", 4, 10, 38),
    Title("nurse", "主任护师", 5, 15, 42),
)

TITLES: tuple[Title, ...] = DOCTOR_TITLES + PHARMACIST_TITLES + NURSE_TITLES
