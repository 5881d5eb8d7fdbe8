"""Engines for the two supported databases, chosen by one URL.

SQLite (embedded default) gets WAL, foreign keys and a busy timeout so that
several processes may share the file; PostgreSQL is the production database.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import make_url

from clinical_core.domain.errors import ConfigurationError


BUSY_TIMEOUT_MS = 30000  # how long an SQLite connection waits for the write lock


def make_engine(url: str, **kwargs: Any) -> Engine:
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - any parse failure is a configuration error
        raise ConfigurationError(f"数据库地址无法解析：{_redact(url)}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # A file database: at least as many pooled connections as the HTTP server has request threads
        # (``http.threads``, 12 by default; up to 40), so that a burst does not open (and pragma)
        # overflow connections only to close them again.
        options = {"pool_size": 10, "max_overflow": 30, **kwargs} if parsed.database not in (None, "", ":memory:") \
            else kwargs
        engine = create_engine(parsed, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        event.listen(engine, "checkin", _sqlite_end_transaction)
        return engine
    if parsed.get_backend_name() == "postgresql":
        # SQLAlchemy's default pool (5 + 10 overflow): a 10 + 30 pool sized to the threadpool served
        # fewer requests/s in the API benchmark (docs/BENCHMARKS.md): more backends than cores.
        return create_engine(parsed, pool_pre_ping=True, **kwargs)
    raise ConfigurationError(f"不支持的数据库：{parsed.get_backend_name()}（仅支持 SQLite 与 PostgreSQL）")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin
    # (SQLAlchemy's documented recipe): BEGIN is then emitted at the start of
    # every transaction, so reads are consistent and pragmas such as
    # defer_foreign_keys apply to the whole transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    mode = connection.get_execution_options().get("sqlite_begin", "")  # "IMMEDIATE" for units of work
    # Straight on the driver's connection: every transaction starts here, and SQLAlchemy's statement
    # machinery (execution context, events, result) cost ~3x the BEGIN itself on the API hot path.
    statement = "BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN"
    try:
        connection.connection.driver_connection.execute(statement)
    except sqlite3.Error as error:  # the same exception as through SQLAlchemy (e.g. "database is locked")
        raise exc.OperationalError(statement, None, error) from error


def _sqlite_end_transaction(dbapi_connection: Any, _record: Any) -> None:
    # A COMMIT that SQLite refused (a deferred foreign-key violation, a busy database) leaves the
    # transaction open on the driver's connection, while SQLAlchemy counts it as ended and skips the
    # pool's rollback: the next user of the pooled connection would fail on "BEGIN" ("cannot start a
    # transaction within a transaction") or, worse, work inside the failed transaction.
    if dbapi_connection is not None and dbapi_connection.in_transaction:
        dbapi_connection.rollback()


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return "<无法显示>"
