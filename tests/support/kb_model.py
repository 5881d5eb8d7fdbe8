"""The built dense model, loaded once per test process (tests using it are marked slow)."""

from __future__ import annotations

from functools import lru_cache

import pytest

from knowledge_base.adapters.embedder import Embedder, model_cache_dir
from knowledge_base.model_build import MODEL_NAME


@lru_cache(maxsize=1)
def _embedder() -> Embedder:
    e = Embedder(MODEL_NAME)
    e.model  # noqa: B018 - load now, once
    return e


def shared_embedder() -> Embedder:
    if not (model_cache_dir() / MODEL_NAME / "opsctl-build.json").is_file():
        pytest.fail(f"离线模型未构建：先运行 make setup（{model_cache_dir() / MODEL_NAME}）")
    return _embedder()
