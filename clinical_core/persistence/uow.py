"""Unit of work: one transaction per use case.

    with uow:
        ...
        uow.commit()

Leaving the block without ``commit()`` rolls back. After-commit callbacks
(``uow.after_commit(fn)``) carry side effects on the outside world, so a
failed WeChat call never undoes a clinical change (STYLE rule 5).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from clinical_core.domain.time import Clock
from clinical_core.ports.vault import Vault


class UnitOfWork:
    """SQLAlchemy unit of work, carrying the clock and vault services need."""

    session: Session

    def __init__(self, engine: Engine, clock: Clock, vault: Vault) -> None:
        self._factory = sessionmaker(bind=engine, expire_on_commit=False)
        self.engine = engine
        self.clock = clock
        self.vault = vault
        self._after_commit: list[Callable[[], None]] = []

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def __enter__(self) -> UnitOfWork:
        self.session = self._factory()
        self._after_commit = []
        if self.engine.dialect.name == "sqlite":
            # SQLite: take the write lock when the use case starts (BEGIN IMMEDIATE), waiting on the
            # busy timeout. A deferred transaction that read first and writes later fails at once
            # with "database is locked" when another writer committed in between (it cannot wait
            # without risking a deadlock), which concurrent API requests hit constantly. Reads
            # outside units of work (the fake HIS, the payment sandbox) stay deferred.
            self.session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.session.rollback()
        finally:
            self.session.close()

    def commit(self) -> None:
        self.session.commit()
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def after_commit(self, callback: Callable[[], None]) -> None:
        self._after_commit.append(callback)
