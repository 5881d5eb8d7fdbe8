"""Report build speed: the monthly and annual reports on PostgreSQL against the bare metric queries.

Prints one JSON document to stdout (progress goes to stderr)::

    .venv/bin/python benchmarks/report_build.py [--events 10000000] [--consultations 1000000] [--postgres-url URL]

Data (deterministic, ``generate_series`` in PostgreSQL): the funnel benchmark's channels, QR codes,
``events/10`` followers, their patients and ``events`` funnel events in October 2026
(``benchmarks/funnel.py``), plus 20 departments, 200 doctors, ``consultations`` consultations over
2026 with a doctor's first message, payments, refunds for the unanswered 2 %, reviews for a third,
and a prescription (reviewed, paid, delivered) for every third consultation.

* total: ``reports.services.build.build`` (figures, Excel with detail sheets, PDF, CSV) for
  ``monthly 2026-10`` and ``annual 2026``;
* anchor: the bare metric queries alone, run just before and just after the build in the same
  process: the registry's SQL for the periods and dimensions the report shows
  (``reports.services.collect.plan``), each statement once, unbatched; the mean of the two runs.
The ratio total / bare is the cost of everything that is not that SQL (goal ≤ 1.5). The JSON also
gives the build's phases and the time of the metric statements the build itself ran. The detail rows
(``detail_rows_worker``) and most trend charts (``trend_charts``, the time spent drawing them, partly
inside ``collect``) are produced by worker threads during the build: those phases overlap the others;
``waiting_for_detail_rows`` is what the build waited for the detail worker at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text

from benchmarks.funnel import load_postgres, log, postgres_url
from clinical_core.adapters.vault import generate_master_key
from clinical_core.domain.access import Principal
from clinical_core.domain.staff import Role
from clinical_core.domain.time import FixedClock
from opsctl import db
from opsctl.config import Settings
from opsctl.wiring import Container
from reports.adapters import pdf as pdf_module
from reports.domain.periods import Period
from reports.metrics import engine
from reports.metrics.catalogue import REGISTRY
from reports.services import build as build_module
from reports.services import collect as collect_module
from reports.services.collect import ReportKind, ReportSpec

OPS = Principal("bench", "bench", Role.OPERATIONS)
YEAR = "TIMESTAMPTZ '2025-12-31 16:00:00+00'"  # 1 Jan 2026 00:00 Shanghai
DEPTS, DOCTORS = 20, 200


def load_clinic(container: Container, consultations: int, patients_step: int, followers: int) -> float:
    started = time.perf_counter()
    t = f"({YEAR} + make_interval(secs => ((i * 7919) % 31536000)))"
    patient = f"(((i * 104729) % {followers // patients_step}) + 1) * {patients_step}"
    statements = [
        f"INSERT INTO hospitals (id, public_id, name, short_name, city, hotline, created_at) VALUES (1, 'hos_1', '示例大学附属医院', '示例医院', '深圳', '0755', {YEAR})",
        f"""INSERT INTO departments (id, public_id, hospital_id, code, name, kind, online)
            SELECT d, 'dep_' || d, 1, 'D' || d, '科室' || d, 'clinical', TRUE FROM generate_series(1, {DEPTS}) d""",
        f"""INSERT INTO staff (id, public_id, employee_no, name, role, department_id, filing_status, may_prescribe, active, created_at)
            SELECT s, 'stf_' || s, 'E' || s, '医生' || s, CASE WHEN s > {DOCTORS} THEN 'pharmacist' ELSE 'doctor' END,
                   ((s - 1) % {DEPTS}) + 1, 'filed', s <= {DOCTORS}, TRUE, {YEAR} FROM generate_series(1, {DOCTORS + 10}) s""",
        f"""INSERT INTO consult_services (id, public_id, kind, name, price_fen, time_limit_minutes, enabled, created_at, updated_at)
            SELECT k, 'csv_' || k, (ARRAY['text','phone','department','designated'])[k], '服务' || k,
                   (ARRAY[3000, 5000, 2000, 0])[k], 1440, TRUE, {YEAR}, {YEAR} FROM generate_series(1, 4) k""",
        f"""INSERT INTO consultations (id, public_id, service_id, kind, patient_id, department_id, doctor_id, status, price_fen,
                question_enc, created_at, paid_at, closed_at, close_reason, transfer_count, review_rating, reviewed_at)
            SELECT i, 'con_' || i, (i % 4) + 1, (ARRAY['text','phone','department','designated'])[(i % 4) + 1], {patient},
                   (i % {DEPTS}) + 1, (i % {DOCTORS}) + 1, 'closed', (ARRAY[3000, 5000, 2000, 0])[(i % 4) + 1], 'x',
                   {t}, {t}, {t} + interval '1 day', CASE WHEN i % 50 = 0 THEN 'unanswered' ELSE 'completed' END, 0,
                   CASE WHEN i % 3 = 0 THEN (i % 5) + 1 END, CASE WHEN i % 3 = 0 THEN {t} + interval '1 day' END
            FROM generate_series(CAST(1 AS BIGINT), {consultations}) i""",
        f"""INSERT INTO consult_messages (id, public_id, consultation_id, sender, staff_id, kind, text_enc, created_at)
            SELECT i, 'msg_' || i, i, 'doctor', (i % {DOCTORS}) + 1, 'text', 'x', {t} + make_interval(secs => 60 + (i % 3600))
            FROM generate_series(CAST(1 AS BIGINT), {consultations}) i WHERE i % 50 <> 0""",
        f"""INSERT INTO consult_payments (id, public_id, out_trade_no, amount_fen, status, created_at, paid_at, consultation_id)
            SELECT i, 'pay_' || i, 'o' || i, (ARRAY[3000, 5000, 2000, 0])[(i % 4) + 1], 'succeeded', {t}, {t}, i
            FROM generate_series(CAST(1 AS BIGINT), {consultations}) i WHERE i % 4 <> 3""",
        f"""INSERT INTO consult_refunds (id, public_id, out_refund_no, amount_fen, reason, status, attempts, requested_by,
                created_at, settled_at, consultation_id, payment_id)
            SELECT i, 'ref_' || i, 'r' || i, (ARRAY[3000, 5000, 2000, 0])[(i % 4) + 1], 'unanswered', 'succeeded', 1, 'job',
                   {t} + interval '1 day', {t} + interval '1 day', i, i
            FROM generate_series(CAST(1 AS BIGINT), {consultations}) i WHERE i % 50 = 0 AND i % 4 <> 3""",
        f"""INSERT INTO prescriptions (id, public_id, consultation_id, patient_id, doctor_id, status, version, diagnoses, valid_days,
                guardian_present, warnings, issued_at, reviewed_at, paid_at, delivered_at)
            SELECT i, 'rx_' || i, i, {patient}, (i % {DOCTORS}) + 1, 'delivered', 1, '[]', 3, FALSE, '[]',
                   {t} + interval '10 minutes', {t} + make_interval(secs => 600 + (i % 2400)), {t} + interval '1 hour',
                   {t} + make_interval(secs => 3600 + (i % 172800))
            FROM generate_series(CAST(3 AS BIGINT), {consultations}, 3) i""",
        f"""INSERT INTO prescription_reviews (id, public_id, prescription_id, version, pharmacist_id, decision, reasons, reviewed_at)
            SELECT i, 'rvw_' || i, i, 1, {DOCTORS} + 1 + (i % 10), CASE WHEN i % 17 = 0 THEN 'reject' ELSE 'approve' END, '[]',
                   {t} + make_interval(secs => 600 + (i % 2400))
            FROM generate_series(CAST(3 AS BIGINT), {consultations}, 3) i""",
        f"""INSERT INTO rx_payments (id, public_id, out_trade_no, amount_fen, status, created_at, paid_at, prescription_id)
            SELECT i, 'rxp_' || i, 'x' || i, 8000 + (i % 50) * 100, 'succeeded', {t} + interval '1 hour', {t} + interval '1 hour', i
            FROM generate_series(CAST(3 AS BIGINT), {consultations}, 3) i""",
    ]
    with container.engine.begin() as connection:
        for sql in statements:
            log(f"  PostgreSQL: {sql.split('(')[0].strip()}")
            connection.execute(text(sql.replace(":", r"\:")))
        for table in ("hospitals", "departments", "staff", "consult_services", "consultations", "consult_messages",
                      "consult_payments", "consult_refunds", "prescriptions", "prescription_reviews", "rx_payments"):
            connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    with container.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE"))
    return time.perf_counter() - started


def bare_queries(container: Container, spec: ReportSpec) -> tuple[float, int]:
    """The anchor: the registry's SQL alone for the periods and dimensions the report shows
    (``reports.services.collect.plan``: each metric over its history, over the chart's months when
    those are other windows, and by each breakdown dimension), one statement each, unbatched."""
    requests = collect_module.plan(spec, REGISTRY)
    filters = {"department": spec.department} if spec.department else {}
    started = time.perf_counter()
    with container.uow() as uow:
        for r in requests:
            engine.evaluate(uow.session, REGISTRY.get(r.metric), r.windows, by=r.by, filters=filters, parts=r.parts)
    return time.perf_counter() - started, len(requests)


def timed_build(container: Container, spec: ReportSpec, out: Path, anchor_runs: int = 2) -> dict[str, Any]:
    """The report built by the product, with the time of its phases and of the metric statements it
    ran (``evaluate`` wrapped), between two runs of the bare queries."""
    spent = {"sql": 0.0, "calls": 0}
    phases: dict[str, float] = {}
    original = engine.evaluate

    def measured(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent["sql"] += time.perf_counter() - started
            spent["calls"] += 1

    def phase(name: str, fn: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] = round(phases.get(name, 0.0) + time.perf_counter() - started, 2)
        return timed

    patched = {(collect_module, "evaluate"): measured, (build_module, "collect"): phase("collect", build_module.collect),
               (build_module, "_stage_details"): phase("detail_rows_worker", build_module._stage_details),
               (pdf_module, "_trend"): phase("trend_charts", pdf_module._trend),
               (build_module, "write_workbook"): phase("workbook_other_sheets", build_module.write_workbook),
               (build_module, "write_pdf"): phase("pdf_with_charts", build_module.write_pdf),
               (build_module, "write_extract"): phase("csv_extract", build_module.write_extract)}
    saved = {target: getattr(*target) for target in patched}
    before = None
    if anchor_runs > 1:
        log(f"{spec.kind.value} {spec.period.code}: bare queries")
        before, _ = bare_queries(container, spec)
    for (module, name), fn in patched.items():
        setattr(module, name, fn)
    try:
        log(f"{spec.kind.value} {spec.period.code}: build")
        started = time.perf_counter()
        built = build_module.build(container.uow(), OPS, spec, out)
        total = time.perf_counter() - started
    finally:
        for (module, name), fn in saved.items():
            setattr(module, name, fn)
    in_line = sum(phases.get(k, 0.0) for k in ("collect", "pdf_with_charts", "csv_extract", "workbook_other_sheets"))
    phases["waiting_for_detail_rows"] = round(max(0.0, total - in_line), 2)
    log(f"{spec.kind.value} {spec.period.code}: bare queries again")
    after, statements = bare_queries(container, spec)
    bare = after if before is None else (before + after) / 2
    return {"report": f"{spec.kind.value} {spec.period.code}", "total_seconds": round(total, 2),
            "bare_queries_seconds": {"before": None if before is None else round(before, 2), "after": round(after, 2),
                                     "mean": round(bare, 2)},
            "bare_statements": statements, "ratio_total_to_bare": round(total / bare, 2),
            "build_metric_statements": spent["calls"], "build_metric_statements_seconds": round(spent["sql"], 2),
            "phases_seconds": phases, "pdf_pages": built.pages, "xlsx_bytes": built.xlsx.stat().st_size,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--consultations", type=int, default=1_000_000)
    parser.add_argument("--postgres-url")
    parser.add_argument("--seeded", action="store_true",
                        help="the --postgres-url database already holds this benchmark's data at these sizes: build only")
    parser.add_argument("--anchor-runs", type=int, choices=(1, 2), default=2,
                        help="2: bare queries before and after each build (mean); 1: after it only (the build then "
                             "meets the colder cache)")
    parser.add_argument("--reports", default="monthly:2026-10,annual:2026", help="kind:period,... (default: %(default)s)")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        url, source = postgres_url(stack, args.postgres_url)
        if url is None:
            print(json.dumps({"skipped": source}, ensure_ascii=False))
            return 0
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        settings = Settings(data_dir=work / "var", database_url=url, secret_key=generate_master_key())
        container = Container(settings, clock=FixedClock(datetime(2027, 1, 2, 2, tzinfo=UTC)))
        load_funnel = load_clinic_s = 0.0
        if not args.seeded:
            with container.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
            db.upgrade(container.engine)
            log(f"loading {args.events:,} funnel events and {args.consultations:,} consultations "
                f"(load average {os.getloadavg()[0]:.1f})")
            load_funnel = load_postgres(container, args.events)
            load_clinic_s = load_clinic(container, args.consultations, 4, args.events // 10)
        specs = [ReportSpec(ReportKind(kind), Period.parse(code))
                 for kind, code in (item.split(":") for item in args.reports.split(","))]
        runs = []
        for spec in specs:
            runs.append(timed_build(container, spec, work / "out", args.anchor_runs))
            log(json.dumps(runs[-1], ensure_ascii=False))
        container.close()
    print(json.dumps({"benchmark": "report_build", "postgres": source, "events": args.events,
                      "consultations": args.consultations, "load_seconds": round(load_funnel + load_clinic_s, 1),
                      "runs": runs, "machine": {"python": platform.python_version(), "cpus": os.cpu_count()}},
                     ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
