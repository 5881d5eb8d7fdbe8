"""Seeded lab and exam reports are plausible: panels fit the diagnosis, flags agree with the reference ranges,
the panel's disease shows more often than chance, and the same seed gives the same reports."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from opsctl.demo.data.lab_results import LAB_PANELS, reports_for

AT = datetime(2026, 9, 1, 2, tzinfo=UTC)


def _many(icd10: str, n: int = 400, seed: int = 1) -> list[dict[str, object]]:
    rng, rows = random.Random(seed), []
    for v in range(n):
        rows += reports_for(rng, first_id=len(rows) + 1, visit_id=v, patient_id=v, visit_no=f"MZ2026{v:08d}",
                            icd10s=[icd10], visited_at=AT)
    return rows


def test_panels_follow_the_diagnosis_and_flags_the_ranges() -> None:
    diabetic, asthmatic = _many("E11.9"), _many("J45.9")
    assert {r["name"] for r in diabetic if r["kind"] == "lab"} <= {"血糖", "肾功能", "血脂四项"}
    assert "血糖" in {r["name"] for r in diabetic} and "胸部CT" in {r["name"] for r in asthmatic}
    assert 0.4 < len({r["visit_id"] for r in diabetic}) / 400 < 0.8  # about a third of visits have none
    ranges = {a.code: (a.low, a.high) for panel in LAB_PANELS.values() for a in panel}
    for row in diabetic + asthmatic:
        assert row["reported_at"] > AT and len(str(row["report_no"])) <= 30
        for item in row["items"]:  # type: ignore[attr-defined]
            low, high = ranges[item["code"]]
            value = float(item["value"])
            assert item["flag"] == ("H" if value > high else "L" if value < low else "")
        if row["kind"] == "exam":
            assert row["findings"] and row["conclusion"]
    ids = [r["id"] for r in diabetic]
    assert ids == list(range(1, len(ids) + 1)) and len({r["report_no"] for r in diabetic}) == len(ids)


def test_the_disease_shows_in_its_panel() -> None:
    def high_glucose(rows: list[dict[str, object]]) -> float:
        glu = [i for r in rows if r["name"] == "血糖" for i in r["items"] if i["code"] == "GLU"]  # type: ignore[attr-defined]
        return sum(i["flag"] == "H" for i in glu) / len(glu)

    def high_alt(rows: list[dict[str, object]]) -> float:
        alt = [i for r in rows if r["name"] == "肝功能" for i in r["items"] if i["code"] == "ALT"]  # type: ignore[attr-defined]
        return sum(i["flag"] == "H" for i in alt) / len(alt)

    assert high_glucose(_many("E11.9")) > 0.35
    assert high_alt(_many("K76.0")) > 0.35 > high_alt(_many("E78.5")) * 3


def test_same_seed_same_reports() -> None:
    assert _many("I10", 50, seed=3) == _many("I10", 50, seed=3) != _many("I10", 50, seed=4)
