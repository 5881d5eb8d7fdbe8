"""Seed speed: rows/s of the demo generator on SQLite and PostgreSQL, against an anchor.

Prints one JSON document to stdout (progress goes to stderr)::

    .venv/bin/python benchmarks/seed_speed.py [--patients N] [--repeats R]
        [--postgres-url URL] [--sqlite-only]

For each backend and each repeat, on a freshly migrated, empty schema:

* product: what ``opsctl demo seed`` does for the data, by calling
  ``opsctl.demo.service.seed_demo`` itself (generator parts in forked child
  processes, ``write`` with deferred indexes; ``executemany`` on SQLite, COPY
  on PostgreSQL). The rate uses ``SeedResult.seconds``, the product's own
  timing of generation + write, so schema migration, the emptiness check and
  the audit entry are excluded (the whole call is reported too, as
  ``product_call_seconds``).
* anchor: the same rows, generated beforehand outside the timed region, loaded
  with a bare DB-API ``cursor.executemany`` per table in one transaction into
  the schema as migrated (indexes and constraints in place, as a naive loader
  faces them), commit included. SQLite: the ``sqlite3`` module with the
  product's engine pragmas. PostgreSQL: psycopg (which pipelines
  ``executemany``), dict rows turned into tuples, JSON wrapped in ``Jsonb``.

PostgreSQL comes from ``--postgres-url``, else ``$OPSCTL_BENCH_POSTGRES_URL``,
else a throwaway server (``tests.support.pgserver``); if none is available the
``postgresql`` entry says why it was skipped. A given database is reset
(``opsctl.db.reset``: every opsctl table dropped), so never point it at real data.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for tests.support.pgserver when run as a script

from sqlalchemy import Engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from clinical_core.adapters.vault import generate_master_key  # noqa: E402
from clinical_core.persistence.bulk import PreparedRows  # noqa: E402
from opsctl import db  # noqa: E402
from opsctl.config import load_settings  # noqa: E402
from opsctl.demo.seed import Generator, prepared  # noqa: E402
from opsctl.demo.service import make_plan, seed_demo  # noqa: E402
from opsctl.wiring import Container  # noqa: E402

ENV_POSTGRES_URL = "OPSCTL_BENCH_POSTGRES_URL"
DAYS, SEED = 30, 7  # the defaults of `opsctl demo seed`

AnchorTable = tuple[str, tuple[str, ...], list[tuple[Any, ...]]]


def log(message: str) -> None:
    print(f"seed_speed: {message}", file=sys.stderr, flush=True)


def summary(values: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 1), "runs": [round(v, 1) for v in values]}


def container_for(database_url: str, data_dir: Path, secret_key: str) -> Container:
    return Container(load_settings(database_url=database_url, data_dir=data_dir, secret_key=secret_key))


# -- anchor rows (built once per backend, outside any timed region) ---------------------------
def group_by_table(batches: Iterator[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]) -> list[AnchorTable]:
    """Concatenate batches per table, tables in order of first appearance (parents first)."""
    tables: dict[str, tuple[tuple[str, ...], list[tuple[Any, ...]]]] = {}
    for name, columns, rows in batches:
        if name not in tables:
            tables[name] = (columns, [])
        elif tables[name][0] != columns:
            raise RuntimeError(f"{name}: batches with different columns")
        tables[name][1].extend(rows)
    return [(name, columns, rows) for name, (columns, rows) in tables.items()]


def sqlite_anchor_rows(generator: Generator, dialect: Any) -> list[AnchorTable]:
    """The product's own prepared tuples for SQLite, generated sequentially in this process."""

    def batches() -> Iterator[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]:
        for part in generator.parts():
            batch: PreparedRows
            for batch in prepared(part, dialect):
                yield batch.table, batch.columns, batch.rows

    return group_by_table(batches())


def postgres_anchor_rows(generator: Generator) -> list[AnchorTable]:
    """The generator's dict rows as tuples psycopg adapts natively (JSON wrapped in Jsonb)."""
    from psycopg.types.json import Jsonb

    def batches() -> Iterator[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]]:
        for table, rows in generator.batches():
            if not rows:
                continue
            columns = tuple(rows[0].keys())
            json_columns = {i for i, c in enumerate(columns)
                            if table.c[c].type._type_affinity.__name__ == "JSON"}  # noqa: SLF001
            if json_columns:
                tuples = [tuple(Jsonb(v) if i in json_columns and v is not None else v
                                for i, v in enumerate(row.values())) for row in rows]
            else:
                tuples = [tuple(row.values()) for row in rows]
            if any(tuple(row.keys()) != columns for row in rows):
                raise RuntimeError(f"{table.name}: rows with different keys")
            yield table.name, columns, tuples

    return group_by_table(batches())


def rows_per_table(tables: list[AnchorTable]) -> dict[str, int]:
    return {name: len(rows) for name, _columns, rows in tables}


# -- anchor loads -------------------------------------------------------------------------------
def sqlite_anchor_load(path: Path, tables: list[AnchorTable]) -> float:
    connection = sqlite3.connect(path, isolation_level=None)  # explicit BEGIN/COMMIT below
    try:
        for pragma in ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000"):
            connection.execute(f"PRAGMA {pragma}")
        cursor = connection.cursor()
        started = time.perf_counter()
        cursor.execute("BEGIN")
        for name, columns, rows in tables:
            marks = ", ".join("?" * len(columns))
            cursor.executemany(f'INSERT INTO "{name}" ({", ".join(columns)}) VALUES ({marks})', rows)
        cursor.execute("COMMIT")
        seconds = time.perf_counter() - started
        cursor.close()
        return seconds
    finally:
        connection.close()


def postgres_conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_anchor_load(url: str, tables: list[AnchorTable]) -> float:
    import psycopg

    with psycopg.connect(postgres_conninfo(url)) as connection:  # not autocommit: one transaction
        cursor = connection.cursor()
        started = time.perf_counter()
        for name, columns, rows in tables:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(f'INSERT INTO "{name}" ({", ".join(columns)}) VALUES ({marks})', rows)
        connection.commit()
        seconds = time.perf_counter() - started
        cursor.close()
    return seconds


def table_counts(engine: Engine, names: list[str]) -> dict[str, int]:
    with engine.connect() as connection:
        return {name: connection.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one() for name in names}


def check_counts(engine: Engine, expected: dict[str, int], what: str) -> None:
    found = table_counts(engine, list(expected))
    if found != expected:
        raise RuntimeError(f"{what}: loaded {found}, expected {expected}")


# -- one backend ----------------------------------------------------------------------------
def bench_backend(
    backend: str, patients: int, repeats: int, secret_key: str, work: Path, postgres_url: str | None = None
) -> dict[str, Any]:
    product_rates: list[float] = []
    product_seconds: list[float] = []
    call_seconds: list[float] = []
    anchor_rates: list[float] = []
    anchor_seconds: list[float] = []
    anchor_tables: list[AnchorTable] | None = None
    counts: dict[str, int] | None = None
    extra: dict[str, Any] = {}

    def url_for(run: int, kind: str) -> tuple[str, Path]:
        if backend == "sqlite":
            directory = work / f"sqlite-{run}-{kind}"
            directory.mkdir()
            return f"sqlite:///{(directory / 'opsctl.db').as_posix()}", directory
        assert postgres_url is not None
        directory = work / f"pg-{run}-{kind}"
        directory.mkdir()
        return postgres_url, directory

    for run in range(1, repeats + 1):
        # 1. product: seed_demo on an empty, migrated schema.
        url, data_dir = url_for(run, "product")
        container = container_for(url, data_dir, secret_key)
        try:
            engine = container.engine
            if backend == "postgresql" and "server_version" not in extra:
                with engine.connect() as connection:
                    extra["server_version"] = connection.execute(text("SHOW server_version")).scalar_one()
                    extra["fsync"] = connection.execute(text("SHOW fsync")).scalar_one()
                    extra["synchronous_commit"] = connection.execute(text("SHOW synchronous_commit")).scalar_one()
            db.reset(engine)
            plan = make_plan(container, patients, DAYS, SEED, None)
            started = time.perf_counter()
            result = seed_demo(container, plan, reset=False)
            call_seconds.append(time.perf_counter() - started)
            product_seconds.append(result.seconds)
            product_rates.append(result.rows / result.seconds)
            if counts is None:
                counts = dict(result.counts)
            elif counts != result.counts:
                raise RuntimeError(f"product run {run}: counts {result.counts} differ from {counts}")
            log(f"{backend} run {run}/{repeats}: product {result.rows} rows in {result.seconds:.2f}s "
                f"({result.rows / result.seconds:,.0f} rows/s)")

            # 2. anchor: the same rows, prepared once, outside the timed region.
            if anchor_tables is None:
                log(f"{backend}: generating the anchor rows (untimed)")
                generator = Generator(plan, container.vault)
                anchor_tables = (sqlite_anchor_rows(generator, engine.dialect) if backend == "sqlite"
                                 else postgres_anchor_rows(generator))
                if rows_per_table(anchor_tables) != counts:
                    raise RuntimeError(f"anchor rows {rows_per_table(anchor_tables)} differ from product {counts}")
        finally:
            container.close()

        url, data_dir = url_for(run, "anchor")
        container = container_for(url, data_dir, secret_key)
        try:
            engine = container.engine
            db.reset(engine)  # fresh schema as migrated: indexes and constraints in place
            if backend == "sqlite":
                path = Path(make_url(url).database or "")
                engine.dispose()  # the file is the anchor's alone while it loads
                seconds = sqlite_anchor_load(path, anchor_tables)
            else:
                engine.dispose()
                seconds = postgres_anchor_load(url, anchor_tables)
            check_counts(engine, counts, f"{backend} anchor run {run}")
            total = sum(counts.values())
            anchor_seconds.append(seconds)
            anchor_rates.append(total / seconds)
            log(f"{backend} run {run}/{repeats}: anchor {total} rows in {seconds:.2f}s ({total / seconds:,.0f} rows/s)")
            if backend == "postgresql":
                db.reset(engine)  # leave an empty schema behind, not the last load
        finally:
            container.close()
        if backend == "sqlite":
            for kind in ("product", "anchor"):
                shutil.rmtree(work / f"sqlite-{run}-{kind}", ignore_errors=True)

    assert counts is not None
    return {
        "rows": sum(counts.values()),
        "product_rows_per_s": summary(product_rates),
        "anchor_executemany_rows_per_s": summary(anchor_rates),
        "ratio_product_to_anchor": round(statistics.median(product_rates) / statistics.median(anchor_rates), 3),
        "rows_per_table": counts,
        "product_seconds": [round(s, 3) for s in product_seconds],
        "product_call_seconds": [round(s, 3) for s in call_seconds],
        "anchor_seconds": [round(s, 3) for s in anchor_seconds],
        **extra,
    }


def find_postgres(explicit: str | None, stack: contextlib.ExitStack) -> tuple[str | None, str]:
    """(url, source), or (None, reason) when no PostgreSQL is available; a throwaway server joins ``stack``."""
    if explicit:
        return explicit, "--postgres-url"
    if os.environ.get(ENV_POSTGRES_URL):
        return os.environ[ENV_POSTGRES_URL], f"${ENV_POSTGRES_URL}"
    from tests.support.pgserver import PostgresUnavailable, throwaway_postgres

    try:
        return stack.enter_context(throwaway_postgres()), "throwaway server (tests.support.pgserver)"
    except PostgresUnavailable as exc:
        return None, exc.reason


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres-url", default=None, help=f"else ${ENV_POSTGRES_URL}, else a throwaway server; "
                        "WARNING: the database's opsctl tables are dropped")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args(argv)
    if args.patients < 1 or args.repeats < 1:
        parser.error("--patients and --repeats must be positive")

    started = time.perf_counter()
    secret_key = generate_master_key()
    report: dict[str, Any] = {
        "benchmark": "seed_speed",
        "patients": args.patients,
        "repeats": args.repeats,
        "days": DAYS,
        "seed": SEED,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(), "sqlite": sqlite3.sqlite_version,
                    # Other work on the machine skews the timings: compare with "cpus".
                    "loadavg_1m_at_start": round(os.getloadavg()[0], 2)},
    }
    with tempfile.TemporaryDirectory(prefix="opsctl-seed-speed-") as work:
        log(f"SQLite, {args.patients} patients, {args.repeats} repeat(s)")
        report["sqlite"] = bench_backend("sqlite", args.patients, args.repeats, secret_key, Path(work))
        if args.sqlite_only:
            report["postgresql"] = {"skipped": "--sqlite-only"}
        else:
            with contextlib.ExitStack() as stack:
                url, source = find_postgres(args.postgres_url, stack)
                if url is None:
                    log(f"PostgreSQL skipped: {source}")
                    report["postgresql"] = {"skipped": source}
                else:
                    log(f"PostgreSQL from {source}, {args.patients} patients, {args.repeats} repeat(s)")
                    result = bench_backend("postgresql", args.patients, args.repeats, secret_key, Path(work), url)
                    report["postgresql"] = {**result, "server": source}
    report["machine"]["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
