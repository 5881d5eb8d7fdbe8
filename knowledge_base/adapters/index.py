"""The search index on disk: BM25 (bm25s over jieba tokens) and dense vectors (numpy), keyed by passage id.

Layout under ``<data_dir>/kb_index/<name>/``::

    meta.json     model name, passage count
    keys.json     passage ids, in row order of vectors.npy and of the BM25 index
    vectors.npy   float32 [n, dim], L2-normalised
    bm25/         bm25s index

Dense search in two passes (``candidates`` > 0, the default): a float16 copy of the vectors
(half the memory traffic of float32) picks the ``candidates`` best rows, and those are
rescored exactly in float32 from ``vectors.npy`` (memory-mapped: only the candidates' pages
are read). The result is the float32 scan's, by construction (the same rows; scores equal
within one float32 rounding, as BLAS may sum a block of 400 rows in another order than
100,000): the float16 score of any row
is within a proven bound ``eps`` of its float32 score, so when the k-th best exact score
among the candidates exceeds the lowest candidate's float16 score by more than ``eps``, no
row outside the candidates can enter the top k; otherwise (near-ties at the cut) every row
whose float16 score is within ``eps`` of that k-th score is rescored too ("widened"), or,
when that is more than a quarter of the rows, the query scans float32. ``dense_passes``
counts the outcomes.

Every numpy matrix product of a query runs on one BLAS thread (``one_blas_thread``). OpenBLAS's
worker threads busy-wait for a long while after each call they take part in; on a 2-core host
such a spinning thread took the core the next query's encode and float16 first pass needed (the
dense step measured 9.9 ms instead of 4.5 ms, the query p50 25.0 instead of 17.5 ms; see
docs/BENCHMARKS.md, run I). The products a query makes are small (the candidates' rows) or
memory-bound (a float32 scan reads as fast on one core), so one thread loses nothing there.

``sync`` is incremental: passages already embedded keep their vectors, only new
ones are encoded; BM25 is rebuilt from the stored tokens (seconds even for
100,000 passages). Files are written to a temporary directory and swapped in,
so a crash never leaves a half-written index.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_base.adapters.embedder import Embedder

log = logging.getLogger(__name__)

_blas: Any = None


def one_blas_thread() -> Any:
    """A context in which numpy's BLAS uses only the calling thread (module docstring); ~20 µs."""
    global _blas
    if _blas is None:
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController()
    return _blas.limit(limits=1, user_api="blas")

@dataclass(frozen=True, slots=True)
class IndexItem:
    key: str
    text: str  # embedded as a passage
    tokens: Sequence[str]  # BM25 terms


@dataclass(frozen=True, slots=True)
class SyncReport:
    total: int
    embedded: int
    removed: int


DEFAULT_CANDIDATES = 400  # float16 first-pass candidates rescored in float32 (docs/BENCHMARKS.md)


def float16_error_bound(dim: int, max_row_norm: float, query_norm: float) -> float:
    """An upper bound of |float16 score − float32 score| for one row, doubled for margin.

    The first pass rounds both vectors to float16 (relative error ≤ 2⁻¹¹ each, plus ≤ 2⁻²⁵
    absolute per component below float16's normal range), accumulates in float32 (≤ dim·2⁻²⁴
    relative to Σ|vᵢqᵢ|) and rounds the score to float16 (≤ 2⁻¹¹·|score|); the float32 score
    itself is off the real dot product by ≤ dim·2⁻²⁴·Σ|vᵢqᵢ|; and Σ|vᵢqᵢ| ≤ |v|·|q|.
    ``HybridIndex`` checks the kernel against half this bound when it loads.
    """
    m = max_row_norm * query_norm
    per_product = 2 * 2.0**-11 + 2.0**-22 + 2 * dim * 2.0**-24
    return 2 * (per_product * m + 2.0**-11 * m + dim * 2.0**-25 * (max_row_norm + query_norm))


class HybridIndex:
    def __init__(self, directory: Path, embedder: Embedder, *, scan_float16: bool = False,
                 candidates: int = DEFAULT_CANDIDATES) -> None:
        self.directory = directory
        self.embedder = embedder
        self.scan_float16 = scan_float16  # approximate: float16 scores, no rescoring (research option)
        self.candidates = 0 if scan_float16 else candidates  # 0: one exact float32 scan
        self._keys: list[str] | None = None
        self._vectors: Any = None  # float32 from vectors.npy (memory-mapped with a first pass; read by sync)
        self._matrix: Any = None  # float16 torch copy of the vectors (scan_float16 or the first pass)
        self._max_norm = 1.0
        self._bm25: Any = None
        self._mtime: float | None = None
        self.dense_passes = {"first_pass": 0, "widened": 0, "fallback": 0, "exact": 0}  # queries by dense path

    # -- reading ------------------------------------------------------------
    def _load(self) -> None:
        meta = self.directory / "meta.json"
        mtime = meta.stat().st_mtime if meta.is_file() else None
        if self._keys is not None and mtime == self._mtime:
            return
        self._mtime = mtime
        if mtime is None:
            self._keys, self._vectors, self._matrix, self._bm25 = [], None, None, None
            return
        import bm25s

        self._keys = json.loads((self.directory / "keys.json").read_text())
        two_pass = self.candidates > 0 and len(self._keys) > self.candidates
        self._vectors = np.load(self.directory / "vectors.npy", mmap_mode="r" if two_pass else None)
        self._matrix = None
        if self.scan_float16 or two_pass:
            # Scanning 100,000 × 384 float32 vectors is memory-bound (~150 MB per query); float16 halves it.
            import torch

            self._matrix = torch.from_numpy(np.asarray(self._vectors, dtype=np.float16))
            self._max_norm = float(np.sqrt(np.max(np.einsum("ij,ij->i", self._vectors, self._vectors)))) \
                if len(self._keys) else 1.0
            if two_pass and not self._kernel_within_bound():
                log.warning("float16 scan error above its bound on this CPU: dense search scans float32 only")
                self._matrix = None
                self._vectors = np.load(self.directory / "vectors.npy")
        self._bm25 = bm25s.BM25.load(str(self.directory / "bm25")) if self._keys else None

    def _kernel_within_bound(self) -> bool:
        """The float16 kernel's error on a few stored rows used as queries is within half the proven bound."""
        import torch

        n = len(self._vectors)
        for row in (0, n // 2, n - 1):
            q = np.asarray(self._vectors[row], dtype=np.float32)
            exact = np.asarray(self._vectors) @ q
            approx = (self._matrix @ torch.from_numpy(q.astype(np.float16))).float().numpy()
            bound = float16_error_bound(q.shape[0], self._max_norm, float(np.linalg.norm(q)))
            if float(np.max(np.abs(approx - exact))) > bound / 2:
                return False
        return True

    @property
    def keys(self) -> list[str]:
        self._load()
        assert self._keys is not None
        return self._keys

    def model_name(self) -> str | None:
        meta = self.directory / "meta.json"
        return json.loads(meta.read_text()).get("model") if meta.is_file() else None

    def bm25_scores(self, tokens: Sequence[str]) -> Any:
        self._load()
        n = len(self._keys or [])
        if not self._keys or not tokens:
            return np.zeros(n, dtype=np.float32)
        # bm25s keeps each term's precomputed per-document scores (CSC: indptr/indices/data); its own
        # get_scores adds them with np.add.at, slow for common terms. One bincount over the query's
        # posting lists gives the same sums (a repeated query term counts twice, as in bm25s).
        ids = self._bm25.get_tokens_ids(list(tokens))
        if not ids:
            return np.zeros(n, dtype=np.float32)
        sc = self._bm25.scores
        indptr, indices, data = sc["indptr"], sc["indices"], sc["data"]
        rows = np.concatenate([indices[indptr[i]:indptr[i + 1]] for i in ids])
        weights = np.concatenate([data[indptr[i]:indptr[i + 1]] for i in ids])
        return np.bincount(rows, weights=weights, minlength=n).astype(np.float32)

    def dense_scores(self, query: str | None = None, vector: Any = None) -> Any:
        """Every row's score: float32 (or float16 with ``scan_float16``)."""
        self._load()
        if not self._keys:
            return np.zeros(0, dtype=np.float32)
        if vector is None:
            vector = self.embedder.encode_queries([query or ""])[0]
        if not self.scan_float16:
            with one_blas_thread():
                return np.asarray(self._vectors) @ np.asarray(vector, dtype=np.float32)
        import torch

        q = torch.from_numpy(np.asarray(vector, dtype=np.float16))
        return (self._matrix @ q).float().numpy()

    def dense_top(self, vector: Any, k: int, mask: Any = None) -> tuple[list[int], Any]:
        """Rows of the ``k`` best dense scores (only where ``mask``), best first, with their scores.

        The same rows and float32 scores as ranking ``dense_scores`` (float32) with ``top_k``; with a
        float16 first pass when the index has more rows than ``candidates`` (module docstring).
        """
        with one_blas_thread():
            return self._dense_top(vector, k, mask)

    def _dense_top(self, vector: Any, k: int, mask: Any) -> tuple[list[int], Any]:
        self._load()
        n = len(self._keys or [])
        if not n:
            return [], np.zeros(0, dtype=np.float32)
        q = np.asarray(vector, dtype=np.float32)
        allowed = n if mask is None else int(np.count_nonzero(mask))
        if self.scan_float16 or self._matrix is None or allowed <= self.candidates or k > self.candidates:
            if not self.scan_float16 and mask is not None and allowed <= self.candidates:
                rows = np.flatnonzero(mask)  # a narrow filter: score only the allowed rows, exactly
                sub = self._vectors[rows] @ q
                pick = top_k(sub, k)
                self.dense_passes["exact"] += 1
                return [int(rows[i]) for i in pick], sub[pick]
            scores = self.dense_scores(vector=q)
            pick = top_k(scores, k, mask)
            self.dense_passes["exact"] += 1
            return pick, scores[pick]
        import torch

        approx = self._matrix @ torch.from_numpy(q.astype(np.float16))
        if mask is not None:
            approx.masked_fill_(~torch.from_numpy(np.asarray(mask, dtype=bool)), float("-inf"))
        first = torch.topk(approx, self.candidates, sorted=False)
        rows = np.sort(first.indices.numpy())  # ascending: sequential page reads, top_k's tie order
        floor = float(first.values.min())
        exact = self._vectors[rows] @ q
        pick = top_k(exact, k)
        kth = float(exact[pick[-1]]) if len(pick) == k else float("-inf")
        eps = float16_error_bound(q.shape[0], self._max_norm, float(np.linalg.norm(q)))
        if kth > floor + eps:
            self.dense_passes["first_pass"] += 1
            return [int(rows[i]) for i in pick], exact[pick]
        # Near-ties at the cut: a row outside the candidates could reach the top k only if its float16
        # score is ≥ kth − eps; rescore every such row (usually a few hundred more), or scan float32.
        wider = np.flatnonzero((approx >= kth - eps).numpy())
        if len(wider) <= n // 4:
            self.dense_passes["widened"] += 1
            exact = self._vectors[wider] @ q
            pick = top_k(exact, k)
            return [int(wider[i]) for i in pick], exact[pick]
        self.dense_passes["fallback"] += 1
        scores = np.asarray(self._vectors) @ q
        pick = top_k(scores, k, mask)
        return pick, scores[pick]

    # -- writing ------------------------------------------------------------
    def sync(self, items: Sequence[IndexItem], progress: Callable[[int], None] | None = None) -> SyncReport:
        import bm25s

        self._load()
        old_keys = self._keys or []
        same_model = self.model_name() == self.embedder.model_name
        old_rows = {k: i for i, k in enumerate(old_keys)} if same_model else {}
        missing = [it for it in items if it.key not in old_rows]
        new_vectors = self.embedder.encode_passages([it.text for it in missing], progress) if missing else None
        dim = (new_vectors.shape[1] if new_vectors is not None else
               self._vectors.shape[1] if self._vectors is not None else 0)
        vectors = np.zeros((len(items), dim), dtype=np.float32)
        fresh = {it.key: i for i, it in enumerate(missing)}
        for row, it in enumerate(items):
            if it.key in fresh:
                vectors[row] = new_vectors[fresh[it.key]]
            else:
                vectors[row] = self._vectors[old_rows[it.key]]
        tmp = self.directory.with_name(self.directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        keys = [it.key for it in items]
        (tmp / "keys.json").write_text(json.dumps(keys))
        np.save(tmp / "vectors.npy", vectors)
        if items:
            bm25 = bm25s.BM25()
            bm25.index([list(it.tokens) or [""] for it in items], show_progress=False)
            bm25.save(str(tmp / "bm25"))
        (tmp / "meta.json").write_text(json.dumps({"model": self.embedder.model_name, "passages": len(items)}))
        old = self.directory.with_name(self.directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if self.directory.exists():
            self.directory.rename(old)
        tmp.rename(self.directory)
        shutil.rmtree(old, ignore_errors=True)
        self._keys = None
        removed = len(set(old_keys) - set(keys))
        return SyncReport(total=len(items), embedded=len(missing), removed=removed)


def top_k(scores: Any, k: int, mask: Any = None) -> list[int]:
    """Row indices of the ``k`` best scores (only rows where ``mask`` is true and the score is positive for BM25)."""
    if scores.size == 0:
        return []
    s = scores.astype(np.float64, copy=True)
    if mask is not None:
        s[~mask] = -np.inf
    k = min(k, int(np.isfinite(s).sum()))
    if k <= 0:
        return []
    idx = np.argpartition(-s, k - 1)[:k]
    return [int(i) for i in idx[np.argsort(-s[idx], kind="stable")]]


@dataclass(frozen=True, slots=True)
class Rankings:
    """Per-retriever rankings of one query (passage ids, best first) and their raw scores."""

    bm25: list[str]
    dense: list[str]
    bm25_scores: dict[str, float]
    dense_scores: dict[str, float]


_encoder_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _encode_async(index: HybridIndex, query: str) -> Future[Any]:
    """The query's embedding computed on a worker thread (ONNX Runtime and torch release the GIL)."""
    global _encoder_pool
    if _encoder_pool is None:
        with _pool_lock:
            if _encoder_pool is None:
                _encoder_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kb-query-encode")
    return _encoder_pool.submit(lambda: index.embedder.encode_queries([query])[0])


def rankings(index: HybridIndex, query: str, tokens: Sequence[str], depth: int, mask: Any = None,
             vector: Any = None, bm25: bool = True, dense: bool = True) -> Rankings:
    """BM25 ranks only passages sharing a term with the query; dense ranks the ``depth`` nearest.

    Without a ``vector``, a one-thread query encode runs on a worker thread while BM25 scores on this
    one (the other core); an encode on several threads (``search.query_threads``) runs first, on this
    thread, with the cores to itself, then BM25, then the dense step (BM25 beside it only contends).
    """
    keys = index.keys
    b_rows: list[int] = []
    d_rows: list[int] = []
    b = d = None
    pending = None
    if dense and vector is None and bm25 and keys:
        if getattr(index.embedder, "query_uses_all_cores", False):
            vector = index.embedder.encode_queries([query])[0]
        else:
            pending = _encode_async(index, query)
    if bm25:
        b = index.bm25_scores(tokens)
        positive = b > 0 if mask is None else (b > 0) & mask
        b_rows = top_k(b, depth, positive)
    if dense:
        if pending is not None:
            vector = pending.result()
        elif vector is None:
            vector = index.embedder.encode_queries([query])[0]
        d_rows, d = index.dense_top(vector, depth, mask)
    return Rankings(
        [keys[i] for i in b_rows], [keys[i] for i in d_rows],
        {keys[i]: float(b[i]) for i in b_rows} if b is not None else {},
        {keys[i]: float(s) for i, s in zip(d_rows, d, strict=True)} if d is not None else {},
    )
