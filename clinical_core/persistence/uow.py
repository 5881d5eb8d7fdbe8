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
