"""Unit of work: one transaction per use case.

    with uow:
        ...
        uow.commit()

Leaving the block without ``commit()`` rolls back. After-commit callbacks
(``uow.after_commit(fn)``) carry side effects on the outside world, so a
failed WeChat call never undoes a clinical change (STYLE rule 5).

A use case that only reads says so (``with uow.read_only(): ...``): on SQLite
it then starts a deferred transaction, which in WAL mode neither waits for a
writer nor makes one wait, instead of taking the database's write lock.

A ``with uow:`` inside another one on the same unit of work joins the outer
transaction instead of starting its own: the HTTP fast path checks the bearer
token and runs the use case in one transaction (``with uow: principal = ...;
use_case(uow, principal, ...)``), the use case's ``commit()`` commits it, and
the outer block's exit only cleans up (or rolls back when the use case did not
commit). ``read_only()`` inside a transaction changes nothing.

A writing use case made of SQLAlchemy Core statements (the consultation hot
path) may start on a bare pooled connection: ``with uow.core_first(): ...``
begins the transaction on ``uow.connection`` without building a ``Session``;
a Session is created only if the use case touches ``uow.session``, and then
joins that connection's transaction. Commit, rollback and the SQLite write
lock (``BEGIN IMMEDIATE``) are the same as in a session-first unit of work.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from clinical_core.domain.time import Clock
from clinical_core.ports.vault import Vault


class UnitOfWork:
    """SQLAlchemy unit of work, carrying the clock and vault services need."""

    def __init__(self, engine: Engine, clock: Clock, vault: Vault,
                 session_factory: sessionmaker[Session] | None = None) -> None:
        self._factory = session_factory or sessionmaker(bind=engine, expire_on_commit=False)
        self.engine = engine
        self.clock = clock
        self.vault = vault
        self._after_commit: list[Callable[[], None]] = []
        self._read_only = False
        self._core_first = False
        self._session: Session | None = None
        self._connection: Connection | None = None
        self._bare: Connection | None = None  # the unit of work's own connection (read-only or core-first)
        self._depth = 0  # nested ``with`` blocks: only the outermost begins and ends the transaction

    @property
    def session(self) -> Session:
        """The ORM session of this unit of work (created on first use by a read-only one)."""
        if self._session is None:
            # A unit of work that started on its bare connection (read-only or core-first): the
            # session joins that connection's transaction (it flushes there; ``commit()`` commits the
            # connection).
            self._session = self._factory(bind=self._bare) if self._bare is not None else self._factory()
        return self._session

    @property
    def connection(self) -> Connection:
        """The transaction's connection, for SQLAlchemy Core statements on hot paths (no ORM objects,
        no flush: a use case that mixes both flushes its ORM objects first). A read-only unit of work
        that only runs Core statements never builds a Session: a pooled connection, rolled back."""
        if self._connection is None:
            if self._read_only and self._session is None:
                self._bare = self._connection = self.engine.connect()
            else:
                self._connection = self.session.connection()
        return self._connection

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def read_only(self) -> UnitOfWork:
        """This use case only reads: ``with uow.read_only(): ...`` (always rolled back; ``commit()``
        refuses). On SQLite a deferred transaction instead of the write lock; the next ``with uow:``
        is a writing unit of work again. Inside a transaction already begun, the read joins it."""
        if not self._depth:
            self._read_only = True
        return self

    def core_first(self) -> UnitOfWork:
        """This writing use case runs Core statements: ``with uow.core_first(): ...`` begins on a
        pooled connection without a Session (one is joined on first use of ``session``). Saves the
        Session's setup, transaction bookkeeping and close on the hot path. Inside a transaction
        already begun, it changes nothing."""
        if not self._depth:
            self._core_first = True
        return self

    def __enter__(self) -> UnitOfWork:
        self._depth += 1
        if self._depth > 1:
            return self  # joins the outer block's transaction
        self._after_commit = []
        self._session = self._connection = self._bare = None
        self._begin()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._depth -= 1
        if self._depth:
            return  # the outer block ends the transaction
        self._end()

    def _begin(self) -> None:
        """Begin the outermost block's transaction (on failure: depth back to 0, nothing held)."""
        if self._read_only:
            return  # session or connection on first use
        if self._core_first:
            connection = self.engine.connect()
            try:
                if self.engine.dialect.name == "sqlite":  # BEGIN IMMEDIATE, as below
                    connection.execution_options(sqlite_begin="IMMEDIATE")
                connection.begin()
            except BaseException:
                self._depth, self._core_first = 0, False
                connection.close()
                raise
            self._bare = self._connection = connection
            return
        self._session = self._factory()
        if self.engine.dialect.name == "sqlite":
            # SQLite: take the write lock when the use case starts (BEGIN IMMEDIATE), waiting on the
            # busy timeout. A deferred transaction that read first and writes later fails at once
            # with "database is locked" when another writer committed in between (it cannot wait
            # without risking a deadlock), which concurrent API requests hit constantly. Reads
            # outside units of work (the fake HIS, the payment sandbox) stay deferred.
            try:
                self._connection = self.session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
            except BaseException:
                self._depth = 0
                self.session.close()
                raise

    def _end(self) -> None:
        """End the outermost block: roll back what was not committed, give the connection back."""
        try:
            if self._session is not None and self._bare is None:
                self._session.rollback()  # (a joined session's work is rolled back with its connection)
        finally:
            try:
                if self._session is not None:
                    self._session.close()
            finally:
                if self._bare is not None:
                    self._bare.close()  # rolls back what was not committed
                self._read_only = self._core_first = False
                self._connection = self._bare = None

    def commit(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only unit of work cannot commit")
        if self._bare is not None:  # core-first: flush a joined session's work, commit the connection
            if self._session is not None:
                self._session.flush()
            self._bare.commit()
        else:
            self.session.commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)
