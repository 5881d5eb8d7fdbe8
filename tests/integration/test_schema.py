"""Migrations build the schema on both databases; the audit log is append-only."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from opsctl import db
from opsctl.migrations.models import metadata
from opsctl.wiring import Container


def test_upgrade_creates_every_table(container: Container) -> None:
    tables = set(inspect(container.engine).get_table_names())
    assert set(metadata.tables) <= tables
    assert db.current_revision(container.engine) == db.head_revision(container.engine)


def test_models_and_migrations_agree(container: Container) -> None:
    with container.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": False}), metadata)
    assert diff == [], "models changed without a migration: make migration MESSAGE=..."


def test_upgrade_is_idempotent(container: Container) -> None:
    before, after = db.upgrade(container.engine)
    assert before == after == db.head_revision(container.engine)


def test_audit_log_refuses_update_and_delete(container: Container) -> None:
    with container.engine.begin() as c:
        c.execute(text("INSERT INTO audit_log (at, actor, action, entity_type, entity_id, details) "
                       "VALUES (CURRENT_TIMESTAMP, 'a', 'x.y', 't', '1', '{}')"))
    for statement in ("UPDATE audit_log SET actor = 'b'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), container.engine.begin() as c:
            c.execute(text(statement))
    with container.engine.connect() as c:
        assert c.execute(text("SELECT actor FROM audit_log")).scalars().all() == ["a"]


def test_reset_rebuilds_an_empty_schema(container: Container) -> None:
    db.reset(container.engine)
    db.reset(container.engine)  # twice: the PostgreSQL trigger function is replaced, not duplicated
    with container.engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM patients")).scalar() == 0
