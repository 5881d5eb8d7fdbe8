"""Shared fixtures: a fixed clock, databases (SQLite always, PostgreSQL when
``make test`` started one), settings and a migrated container."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from clinical_core.domain.time import FixedClock
from clinical_core.persistence.engine import make_engine
from opsctl import db
from opsctl.config import Settings
from opsctl.wiring import Container

# A fixed test key (32 bytes, URL-safe base64). Never used outside tests.
TEST_SECRET_KEY = "dGVzdC1rZXktZm9yLW9wc2N0bC10ZXN0LXN1aXRlISE"
PG_URL = os.environ.get("OPSCTL_TEST_DATABASE_URL")
REQUIRE_PG = os.environ.get("OPSCTL_REQUIRE_POSTGRES") == "1"


@pytest.fixture(autouse=True)
def _fixed_console_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 2, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai


@pytest.fixture(scope="session")
def postgres_url(worker_id: str) -> str:
    """One database per xdist worker on the throwaway server."""
    if not PG_URL:
        reason = "PostgreSQL 未启动：用 make test 运行（它会启动临时服务器并设置 OPSCTL_TEST_DATABASE_URL）"
        if REQUIRE_PG:
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"opsctl_{worker_id}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def _clean_postgres(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'opsctl.db'}"
    url = request.getfixturevalue("postgres_url")
    _clean_postgres(url)
    return url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=database_url, secret_key=TEST_SECRET_KEY)


_SQLITE_TEMPLATE: list[Path] = []


def _sqlite_template() -> Path:
    """One SQLite file migrated to head per test process; each test gets a copy (about 0.5 s of
    Alembic saved per SQLite test). ``tests/integration/test_schema.py`` still migrates from empty."""
    if not _SQLITE_TEMPLATE:
        path = Path(tempfile.mkdtemp(prefix="opsctl-template-")) / "template.db"
        engine = make_engine(f"sqlite:///{path}")  # the product's engine: same pragmas as the tests' own
        db.upgrade(engine)
        engine.dispose()  # the last connection closing checkpoints the WAL into the file
        assert not path.with_name(path.name + "-wal").exists() or path.with_name(path.name + "-wal").stat().st_size == 0
        _SQLITE_TEMPLATE.append(path)
    return _SQLITE_TEMPLATE[0]


_POSTGRES_TEMPLATE: dict[str, str] = {}


def _postgres_from_template(url: str) -> None:
    """Recreate the test's PostgreSQL database as a copy of one migrated template database per test
    process (``CREATE DATABASE … TEMPLATE``: a file copy of ~60 empty tables instead of running
    Alembic's 17 revisions each time, which cost 3–5 s per PostgreSQL test on 2 cores)."""
    target = make_url(url)
    name = target.database
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        template = _POSTGRES_TEMPLATE.get(name)
        if template is None:
            template = f"{name}_template"
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)'))
                connection.execute(text(f'CREATE DATABASE "{template}"'))
            engine = make_engine(target.set(database=template).render_as_string(hide_password=False))
            db.upgrade(engine)
            engine.dispose()  # a template database must have no connections when it is copied
            _POSTGRES_TEMPLATE[name] = template
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    finally:
        admin.dispose()


def _migrated(settings: Settings, clock: FixedClock) -> Iterator[Container]:
    url = make_url(settings.database_url)
    copied = False
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        shutil.copyfile(_sqlite_template(), url.database)
        copied = True
    elif url.get_backend_name() == "postgresql":
        _postgres_from_template(settings.database_url)
        copied = True
    c = Container(settings, clock=clock)
    if not copied:
        db.upgrade(c.engine)
    yield c
    c.close()


@pytest.fixture
def container(settings: Settings, clock: FixedClock) -> Iterator[Container]:
    """A migrated database: SQLite and PostgreSQL."""
    yield from _migrated(settings, clock)


@pytest.fixture
def pg_container(tmp_path: Path, clock: FixedClock, postgres_url: str) -> Iterator[Container]:
    """A migrated PostgreSQL database, for what only PostgreSQL has (row locks, SKIP LOCKED races)."""
    _clean_postgres(postgres_url)
    settings = Settings(data_dir=tmp_path / "var", database_url=postgres_url, secret_key=TEST_SECRET_KEY)
    yield from _migrated(settings, clock)


@pytest.fixture
def sqlite_container(tmp_path: Path, clock: FixedClock) -> Iterator[Container]:
    """A migrated SQLite database, for what only SQLite has (the file on disk)."""
    settings = Settings(data_dir=tmp_path / "var", database_url=f"sqlite:///{tmp_path / 'opsctl.db'}",
                        secret_key=TEST_SECRET_KEY)
    yield from _migrated(settings, clock)
