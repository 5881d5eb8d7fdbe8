"""The demo hospital's offline visits come with lab and exam reports, served by the fake HIS."""

from __future__ import annotations

from datetime import date

from sqlalchemy import text

from clinical_core.adapters.his_fake import FakeHis
from opsctl.demo.seed import SeedPlan
from opsctl.demo.service import seed_demo
from opsctl.wiring import Container


def test_seeded_visits_have_reports(container: Container) -> None:
    counts = seed_demo(container, SeedPlan(patients=80, days=3, seed=5, until=date(2026, 10, 31))).counts
    assert counts["his_results"] > counts["his_visits"] * 0.4
    with container.engine.connect() as c:
        mismatched = c.execute(text(
            "SELECT count(*) FROM his_results r JOIN his_visits v ON v.id = r.visit_id "
            "WHERE v.patient_id <> r.patient_id OR r.reported_at < v.visited_at")).scalar()
        patient = c.execute(text("SELECT p.public_id FROM his_results r JOIN patients p ON p.id = r.patient_id "
                                 "ORDER BY r.id LIMIT 1")).scalar()
    assert mismatched == 0
    results = FakeHis(container.engine).results(str(patient))
    assert results and all(r.kind in ("lab", "exam") for r in results)
    assert [r.reported_at for r in results] == sorted((r.reported_at for r in results), reverse=True)
    assert all(r.items for r in results if r.kind == "lab") and all(r.conclusion for r in results if r.kind == "exam")
