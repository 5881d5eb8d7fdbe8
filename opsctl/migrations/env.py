"""Alembic environment. The connection comes from ``opsctl.db`` (never from a URL read here)."""

from __future__ import annotations

from alembic import context

from opsctl.migrations.models import metadata

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through opsctl.db
    raise RuntimeError("run migrations through `opsctl db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
