"""The dense model (sentence-transformers), loaded lazily on first use and kept for the process."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clinical_core.domain.errors import ConfigurationError

MODEL_CACHE_ENV = "OPSCTL_MODEL_CACHE"


def model_cache_dir() -> Path:
    """``$OPSCTL_MODEL_CACHE``, else ``var/models`` in the project checkout (where ``make`` builds it)."""
    env = os.environ.get(MODEL_CACHE_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "var" / "models"


def resolve_model(name: str) -> Path:
    """A directory path, or a model name looked up in the model cache. Never the network."""
    direct = Path(name).expanduser()
    if direct.is_dir():
        return direct
    cached = model_cache_dir() / name
    if cached.is_dir():
        return cached
    raise ConfigurationError(
        f"找不到向量模型 {name}（在 {model_cache_dir()} 中）",
        hint="运行 make setup 构建离线模型，或把 search.embedding_model 设为模型目录",
    )


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` for the block (process-wide: concurrent encodes only see
    a different thread count, never different results)."""
    if n is None:
        yield
        return
    import torch

    old = torch.get_num_threads()
    if old == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Embedder:
    """Query/passage encoder. ``query: ``/``passage: `` prompts come from the model's own config.

    ``quantize``: every encode runs with int8 dynamic quantisation of the linear layers.
    ``quantize_queries``: passages (the index) stay fp32, single queries run int8 — the
    query path is the latency-critical one. Off by default: it cost ~0.02 nDCG@10 on
    KUAKE-QQR (docs/BENCHMARKS.md). The int8 copy is loaded only when a query is encoded.
    ``query_threads``: torch intra-op threads while a query is encoded (None: torch's default,
    one per core). A single short query gains little from a second thread, and on a busy host
    the threads' barriers wait on each other (docs/BENCHMARKS.md: 2 threads ~3.7x slower than 1
    at load 3 on 2 cores); passages (batches) keep torch's default.
    """

    def __init__(self, model: str, *, quantize: bool = False, quantize_queries: bool = False,
                 batch_size: int = 64, query_threads: int | None = 1) -> None:
        self.model_name = model
        self.quantize = quantize
        self.quantize_queries = quantize_queries and not quantize
        self.batch_size = batch_size
        self.query_threads = query_threads
        self._model: Any = None
        self._query_model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load(self.quantize)
        return self._model

    @property
    def query_model(self) -> Any:
        if not self.quantize_queries:
            return self.model
        if self._query_model is None:
            with self._lock:
                if self._query_model is None:
                    self._query_model = self._load(True)
        return self._query_model

    def _load(self, quantize: bool) -> Any:
        from sentence_transformers import SentenceTransformer

        path = resolve_model(self.model_name)
        st = SentenceTransformer(str(path), device="cpu", local_files_only=True)
        st.eval()
        if quantize:
            import torch

            st = torch.ao.quantization.quantize_dynamic(st, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        return st

    @staticmethod
    def _prompt(model: Any, name: str) -> str | None:
        return name if name in (getattr(model, "prompts", None) or {}) else None

    def encode_queries(self, texts: list[str]) -> Any:
        m = self.query_model
        with _torch_threads(self.query_threads):
            return m.encode(texts, prompt_name=self._prompt(m, "query"), batch_size=self.batch_size,
                            normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

    def encode_passages(self, texts: list[str], progress: Any = None) -> Any:
        import numpy as np

        out = []
        step = self.batch_size * 4
        for start in range(0, len(texts), step):
            batch = texts[start : start + step]
            out.append(self.model.encode(batch, prompt_name=self._prompt(self.model, "passage"),
                                         batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False))
            if progress:
                progress(len(batch))
        dim = self.model.get_embedding_dimension()
        return np.vstack(out).astype(np.float32) if out else np.zeros((0, dim), dtype=np.float32)
