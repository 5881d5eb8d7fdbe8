"""The search index on disk: BM25 (bm25s over jieba tokens) and dense vectors (numpy), keyed by passage id.

Layout under ``<data_dir>/kb_index/<name>/``::

    meta.json     model name, passage count
    keys.json     passage ids, in row order of vectors.npy and of the BM25 index
    vectors.npy   float32 [n, dim], L2-normalised
    bm25/         bm25s index

``sync`` is incremental: passages already embedded keep their vectors, only new
ones are encoded; BM25 is rebuilt from the stored tokens (seconds even for
100,000 passages). Files are written to a temporary directory and swapped in,
so a crash never leaves a half-written index.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge_base.adapters.embedder import Embedder


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


class HybridIndex:
    def __init__(self, directory: Path, embedder: Embedder, *, scan_float16: bool = False) -> None:
        self.directory = directory
        self.embedder = embedder
        self.scan_float16 = scan_float16
        self._keys: list[str] | None = None
        self._vectors: Any = None  # float32 from vectors.npy (scanned, and read by sync)
        self._matrix: Any = None  # with scan_float16: the same vectors as a float16 torch tensor (scanned instead)
        self._bm25: Any = None
        self._mtime: float | None = None

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
        self._vectors = np.load(self.directory / "vectors.npy")
        self._matrix = None
        if self.scan_float16:
            # Scanning 100,000 × 384 float32 vectors is memory-bound (~150 MB per query); float16 halves
            # it. Cosines move by < 1e-4, which can swap near-ties (off by default: docs/BENCHMARKS.md).
            import torch

            self._matrix = torch.from_numpy(self._vectors.astype(np.float16))
        self._bm25 = bm25s.BM25.load(str(self.directory / "bm25")) if self._keys else None

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
        self._load()
        if not self._keys:
            return np.zeros(0, dtype=np.float32)
        if vector is None:
            vector = self.embedder.encode_queries([query or ""])[0]
        if self._matrix is None:
            return self._vectors @ np.asarray(vector, dtype=np.float32)
        import torch

        q = torch.from_numpy(np.asarray(vector, dtype=np.float16))
        return (self._matrix @ q).float().numpy()

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


def rankings(index: HybridIndex, query: str, tokens: Sequence[str], depth: int, mask: Any = None,
             vector: Any = None, bm25: bool = True, dense: bool = True) -> Rankings:
    """BM25 ranks only passages sharing a term with the query; dense ranks the ``depth`` nearest."""
    keys = index.keys
    b_rows: list[int] = []
    d_rows: list[int] = []
    b = d = None
    if bm25:
        b = index.bm25_scores(tokens)
        positive = b > 0 if mask is None else (b > 0) & mask
        b_rows = top_k(b, depth, positive)
    if dense:
        d = index.dense_scores(query, vector)
        d_rows = top_k(d, depth, mask)
    return Rankings(
        [keys[i] for i in b_rows], [keys[i] for i in d_rows],
        {keys[i]: float(b[i]) for i in b_rows} if b is not None else {},
        {keys[i]: float(d[i]) for i in d_rows} if d is not None else {},
    )
