"""Wiring: builds the engine, vault, clock and units of work from settings.

Everything is created lazily on first use, so ``opsctl --help`` or
``opsctl config show`` never touch the database or the key.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine

from clinical_core.adapters.vault import AesGcmVault, decode_master_key, generate_master_key
from clinical_core.domain.errors import ConfigurationError
from clinical_core.domain.time import Clock, SystemClock
from clinical_core.persistence.engine import make_engine
from clinical_core.persistence.uow import UnitOfWork
from knowledge_base.adapters.embedder import Embedder
from knowledge_base.adapters.index import HybridIndex
from opsctl.config import Settings


class Container:
    """The object graph of one opsctl process."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self._schema_checked = False

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.effective_database_url)

    @cached_property
    def vault(self) -> AesGcmVault:
        return AesGcmVault(decode_master_key(load_or_create_secret_key(self.settings)))

    @cached_property
    def embedder(self) -> Embedder:
        """The dense model; nothing is loaded until the first encode."""
        return Embedder(self.settings.search.embedding_model)

    @cached_property
    def kb_index(self) -> HybridIndex:
        return HybridIndex(self.settings.data_dir / "kb_index" / "passages", self.embedder)

    @cached_property
    def scripts_index(self) -> HybridIndex:
        return HybridIndex(self.settings.data_dir / "kb_index" / "scripts", self.embedder)

    @property
    def search_weights(self) -> dict[str, float]:
        return {"bm25": self.settings.search.bm25_weight, "dense": self.settings.search.dense_weight}

    def uow(self) -> UnitOfWork:
        if not self._schema_checked:
            self.check_schema()
        return UnitOfWork(self.engine, self.clock, self.vault)

    def check_schema(self) -> None:
        """Once per process: the database must be at the code's migration head."""
        from opsctl import db

        current, head = db.current_revision(self.engine), db.head_revision(self.engine)
        if current != head:
            state = "尚未初始化" if current is None else f"版本为 {current}，程序需要 {head}"
            raise ConfigurationError(f"数据库{state}", hint="请先运行 opsctl db upgrade")
        self._schema_checked = True

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


def load_or_create_secret_key(settings: Settings) -> str:
    """The master key: configured, or (embedded SQLite only) generated once into the data directory."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path: Path = settings.secret_key_file
    if path.is_file():
        return path.read_text(encoding="ascii").strip()
    if not settings.embedded:
        raise ConfigurationError(
            "使用外部数据库时必须配置数据加密密钥",
            hint="设置环境变量 OPSCTL_SECRET_KEY（所有机器使用同一密钥）",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_master_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    return key
