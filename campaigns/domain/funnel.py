"""Conversion funnels per channel: the stages, and the arithmetic of conversion and drop-off.

The counts themselves are computed set-wise in SQL (campaigns.services.funnels); this module
names the stages and derives rates from counts, so the same rules apply to every output.
"""

from __future__ import annotations

from dataclasses import dataclass

# (key, Chinese label, note when the stage's data does not exist yet)
STAGES: tuple[tuple[str, str, str | None], ...] = (
    ("scanned", "扫码", None),
    ("followed", "关注", None),
    ("registered", "注册为患者", None),
    ("consulted", "首次问诊", "问诊模块尚未上线，暂记为 0"),
    ("bought", "购买处方药", "电子处方与配送模块尚未上线，暂记为 0"),
    ("video_visit", "视频问诊", "网络门诊模块尚未上线，暂记为 0"),
    ("nursing", "护理下单", "安心护理模块尚未上线，暂记为 0"),
)


@dataclass(frozen=True, slots=True)
class StageResult:
    stage: str
    label: str
    count: int
    conversion_from_previous: float | None  # share of the previous stage, 0..1
    conversion_overall: float | None  # share of the first stage
    drop_off: int
    note: str


def rate(part: int, whole: int) -> float | None:
    return None if whole <= 0 else round(part / whole, 4)


def stages_from_counts(counts: dict[str, int]) -> list[StageResult]:
    results: list[StageResult] = []
    first = counts.get(STAGES[0][0], 0)
    previous: int | None = None
    for key, label, missing in STAGES:
        count = counts.get(key, 0)
        results.append(StageResult(
            stage=key, label=label, count=count,
            conversion_from_previous=None if previous is None else rate(count, previous),
            conversion_overall=rate(count, first),
            drop_off=0 if previous is None else max(previous - count, 0),
            note=missing or "",
        ))
        previous = count
    return results


@dataclass(frozen=True, slots=True)
class CohortRow:
    cohort: str  # Monday of the cohort's week (Asia/Shanghai), YYYY-MM-DD
    size: int
    retained: list[float | None]  # share still following k weeks later; None: not observed yet


def retention_matrix(groups: dict[str, dict[int, int]], observed_weeks: dict[str, int], weeks: int) -> list[CohortRow]:
    """``groups[cohort][w]``: followers of a cohort who stayed exactly ``w`` whole weeks (still
    following counts as the weeks observed). Retained at week k: those who stayed ≥ k weeks."""
    rows: list[CohortRow] = []
    for cohort in sorted(groups):
        stayed = groups[cohort]
        size = sum(stayed.values())
        retained: list[float | None] = []
        for k in range(weeks + 1):
            if k > observed_weeks.get(cohort, 0):
                retained.append(None)
            else:
                retained.append(rate(sum(n for w, n in stayed.items() if w >= k), size))
        rows.append(CohortRow(cohort, size, retained))
    return rows
