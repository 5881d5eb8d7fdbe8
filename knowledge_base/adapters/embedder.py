"""The dense model (sentence-transformers), loaded lazily on first use and kept for the process."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from clinical_core.domain.errors import ConfigurationError

MODEL_CACHE_ENV = "OPSCTL_MODEL_CACHE"
log = logging.getLogger(__name__)


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


def _query_tokenizer(path: Path) -> tuple[Any, str]:
    """The model's own fast tokenizer (``tokenizer.json``, truncating at the model's maximum length) and
    its query prompt, read from the files sentence-transformers reads, without loading the model: the ONNX query path then
    never imports sentence-transformers nor reads the weights (a fresh ``opsctl kb search`` or server
    answered its first query after loading the whole model, ~6 s idle, 24 s on a busy host).
    Configured as transformers' ``tokenizer(..., padding=True, truncation=True, max_length=...)``;
    ``tests/integration/test_kb_query_threads.py`` checks both give the same ids and masks."""
    import json

    from tokenizers import Tokenizer

    def read(name: str) -> dict[str, Any]:
        file = path / name
        return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}

    sbert, config, st_config = read("sentence_bert_config.json"), read("tokenizer_config.json"), read(
        "config_sentence_transformers.json")
    max_length = int(sbert.get("max_seq_length") or config.get("model_max_length") or 512)
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_length, stride=0, strategy="longest_first", direction="right")
    pad = config.get("pad_token") or "<pad>"
    tokenizer.enable_padding(direction="right", pad_id=tokenizer.token_to_id(pad), pad_type_id=0, pad_token=pad)
    return tokenizer, str((st_config.get("prompts") or {}).get("query", ""))


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
    ``query_backend``: ``"onnx"`` encodes queries with ONNX Runtime from ``<model>/onnx/query.onnx``
    (``python -m knowledge_base.onnx_export``; same embeddings within 1e-6, ~4x faster than torch
    on one thread); without that file, or with int8 queries, queries fall back to torch.
    ``query_precision``: with the ONNX backend, ``"int8"`` runs ``onnx/query-int8.onnx`` (SmoothQuant-
    smoothed, ONNX Runtime's dynamic int8 quantisation, per-channel weights, the FFN output projections
    kept float32: the encode ~30 % faster, nDCG@10 within 0.003 of float32 on the three eval sets,
    docs/BENCHMARKS.md; each query encoded alone, as its activations are quantised per tensor);
    ``"fp32"`` the float32 graph. The index (passages) is always float32.
    """

    def __init__(self, model: str, *, quantize: bool = False, quantize_queries: bool = False,
                 batch_size: int = 64, query_threads: int | None = 1, query_backend: str = "onnx",
                 query_precision: str = "int8") -> None:
        self.model_name = model
        self.quantize = quantize
        self.quantize_queries = quantize_queries and not quantize
        self.batch_size = batch_size
        self.query_threads = query_threads
        self.query_backend = query_backend
        if query_precision not in ("int8", "fp32"):
            raise ValueError(f"query_precision: int8 or fp32, not {query_precision!r}")
        self.query_precision = query_precision
        self._onnx: Any = None  # (session, tokenizer, query prompt), or False when unavailable
        self._model: Any = None
        self._query_model: Any = None
        self._lock = threading.RLock()  # re-entered: the ONNX session loads the model (its tokenizer) under it

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

    def _onnx_session(self) -> Any:
        if self._onnx is None:
            with self._lock:
                if self._onnx is None:
                    self._onnx = self._load_onnx()
        return self._onnx

    def _load_onnx(self) -> Any:
        from knowledge_base.onnx_export import INT8_FILE, ONNX_FILE, is_exported

        if self.query_backend != "onnx" or self.quantize_queries or self.quantize:
            return False
        path = resolve_model(self.model_name)
        if not is_exported(path):
            log.warning("ONNX query encoder missing or stale (%s): queries use torch", path / ONNX_FILE)
            return False
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.query_threads or 0
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.query_uses_all_cores:
            # the pool's threads stop spinning when a run ends: the dense step and BM25 run next on those cores
            options.add_session_config_entry("session.force_spinning_stop", "1")
        graph = INT8_FILE if self.query_precision == "int8" else ONNX_FILE
        session = ort.InferenceSession(str(path / graph), options, providers=["CPUExecutionProvider"])
        return (session, *_query_tokenizer(path))

    @property
    def query_uses_all_cores(self) -> bool:
        """A query encode runs on more than one thread (``query_threads`` > 1 or None)."""
        return self.query_threads != 1

    @property
    def uses_onnx(self) -> bool:
        return bool(self._onnx_session())

    def encode_queries(self, texts: list[str]) -> Any:
        onnx = self._onnx_session()
        if onnx:
            import numpy as np

            session, tokenizer, prompt = onnx
            if self.query_precision == "int8" and len(texts) > 1:
                # int8 activations are scaled per tensor at run time: in a padded batch a query's scale would
                # depend on the other queries, so each is encoded alone, as a search encodes it
                return np.concatenate([self.encode_queries([t]) for t in texts])
            encoded = tokenizer.encode_batch([prompt + t for t in texts])
            return session.run(None, {"input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                                      "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64)})[0]
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
