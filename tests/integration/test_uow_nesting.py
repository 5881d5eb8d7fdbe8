"""Units of work for the API hot path: a nested ``with uow:`` joins the outer transaction, a
``core_first()`` unit of work joins a Session to its connection, the token check runs in the use
case's transaction (``run_authenticated``), and SQLite's BEGIN reports a busy lock as SQLAlchemy
did. SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import exc, func, select

from clinical_core.api.security import run_authenticated
from clinical_core.domain.access import Principal
from clinical_core.domain.errors import Unauthenticated
from clinical_core.persistence.engine import make_engine
from clinical_core.persistence.models import AuditRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import accounts, audit
from opsctl.wiring import Container
from tests.support.clinic import ADMIN, build_clinic


def _audits(c: Container, action: str) -> int:
    with c.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(AuditRow).where(AuditRow.action == action)))


def _write(uow: UnitOfWork, action: str, *, commit: bool = True) -> None:
    with uow:  # joins an outer block's transaction when there is one
        audit.record_all(uow, [audit.entry(uow, "test", action, "test", "t1")])
        if commit:
            uow.commit()


def test_a_nested_block_joins_the_outer_transaction(container: Container) -> None:
    uow = container.uow()
    with uow:
        _write(uow, "nested.committed")
    assert _audits(container, "nested.committed") == 1
    with pytest.raises(RuntimeError), uow:
        _write(uow, "nested.failed", commit=False)
        raise RuntimeError("after the inner block, before any commit")
    assert _audits(container, "nested.failed") == 0
    with uow:  # the unit of work is usable again, in a transaction of its own
        _write(uow, "nested.again")
    assert _audits(container, "nested.again") == 1


def test_core_first_joins_a_session_to_its_connection(container: Container) -> None:
    uow = container.uow()
    with uow.core_first():
        audit.record_all(uow, [audit.entry(uow, "test", "core.statement", "test", "t1")])  # Core, no Session
        audit.record(uow, "test", "core.orm", "test", "t1")  # ORM: a Session joined to the connection
        uow.commit()
    assert (_audits(container, "core.statement"), _audits(container, "core.orm")) == (1, 1)
    with uow.core_first():
        audit.record(uow, "test", "core.rolled_back", "test", "t1")
    assert _audits(container, "core.rolled_back") == 0


def test_the_token_is_checked_in_the_use_cases_transaction(container: Container) -> None:
    build_clinic(container)
    issued = accounts.issue_token(container.uow(), ADMIN, "pt.zhang", ttl=timedelta(days=1))
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=issued.token)
    seen: list[Principal] = []

    def use_case(uow: UnitOfWork, principal: Principal) -> str:
        seen.append(principal)
        _write(uow, "use_case.ran")
        return principal.username

    assert run_authenticated(container.uow(), credentials, use_case) == "pt.zhang"
    accounts.revoke_token(container.uow(), ADMIN, issued.token_id)
    with pytest.raises(Unauthenticated, match="吊销"):
        run_authenticated(container.uow(), credentials, use_case)
    assert len(seen) == 1 and _audits(container, "use_case.ran") == 1


def test_a_busy_sqlite_write_lock_is_an_sqlalchemy_operational_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "busy.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:  # creates the file with its pragmas (WAL)
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        connection.commit()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with engine.connect() as connection:
            connection.connection.driver_connection.execute("PRAGMA busy_timeout=0")
            connection.execution_options(sqlite_begin="IMMEDIATE")
            with pytest.raises(exc.OperationalError, match="locked"):
                connection.begin()
    finally:
        holder.rollback()
        holder.close()
        engine.dispose()
