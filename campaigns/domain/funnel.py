"""Conversion funnels per channel: the stages, and the arithmetic of conversion and drop-off.

The counts themselves are computed set-wise in SQL (campaigns.services.funnels); this module
names the stages and derives rates from counts, so the same rules apply to every output.
"""

from __future__ import annotations

from dataclasses import dataclass

# (key, Chinese label, the stage it converts from (None: the previous one), note when its data does not exist yet)
STAGES: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("scanned", "扫码", None, None),
    ("followed", "关注", None, None),
    ("registered", "绑定健康卡", None, None),
    ("consulted", "首次问诊", None, None),
    ("prescribed", "首张处方（审方通过）", "consulted", None),
    ("video_visit", "视频问诊", "consulted", "网络门诊模块尚未上线，暂记为 0"),
    ("nursing", "护理下单", "consulted", "安心护理模块尚未上线，暂记为 0"),
    ("repeat", "窗口内复诊", "consulted", None),
)
STAGE_KEYS = tuple(key for key, *_ in STAGES)


@dataclass(frozen=True, slots=True)
class StageResult:
    stage: str
    label: str
    count: int
    conversion_from_previous: float | None  # share of the stage it converts from (``base``), 0..1
    conversion_overall: float | None  # share of the first stage
    drop_off: int  # of the base stage, how many did not reach this one
    note: str
    base: str | None = None  # the stage it converts from: the previous one, or 首次问诊 for the branches
    median_days: float | None = None  # median days from the follow to this stage (those who reached it after following)


def rate(part: int, whole: int) -> float | None:
    return None if whole <= 0 else round(part / whole, 4)


def stages_from_counts(counts: dict[str, int], medians: dict[str, float] | None = None,
                       notes: dict[str, str] | None = None) -> list[StageResult]:
    """Rates and drop-off from counts. The branches after 首次问诊 (prescription, video visit,
    nursing, repeat) each convert from 首次问诊, not from one another."""
    results: list[StageResult] = []
    first = counts.get(STAGES[0][0], 0)
    previous: str | None = None
    for key, label, parent, missing in STAGES:
        count = counts.get(key, 0)
        base = parent or previous
        whole = None if base is None else counts.get(base, 0)
        results.append(StageResult(
            stage=key, label=label, count=count,
            conversion_from_previous=None if whole is None else rate(count, whole),
            conversion_overall=rate(count, first),
            drop_off=0 if whole is None else max(whole - count, 0),
            note=(notes or {}).get(key) or missing or "",
            base=base,
            median_days=(medians or {}).get(key),
        ))
        previous = key
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
