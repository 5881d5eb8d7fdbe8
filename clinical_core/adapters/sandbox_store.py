"""The durable state of an outside-world sandbox (payment provider, HIS): its own SQLite file under
the data directory, shared by every process of the deployment, as the real service would be."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.exc import OperationalError


def sandbox_engine(path: Path, metadata: MetaData) -> Engine:
    """An engine on ``path`` with WAL and write transactions that take the lock up front
    (``BEGIN IMMEDIATE``), and ``metadata``'s tables created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy's recipe: we emit BEGIN ourselves
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000"):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    for _ in range(3):  # two processes may create the file at once
        try:
            metadata.create_all(engine)
            break
        except OperationalError:
            continue
    return engine
