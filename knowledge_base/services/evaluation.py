"""Retrieval quality on a BEIR folder (corpus.jsonl, queries.jsonl, qrels.tsv), in a temporary index.

Measures BM25 alone, the dense model alone and the hybrid fusion with the same
code path as ``opsctl kb search``. Relevance for MRR/recall: score ≥ 2 when the
qrels are graded (max score ≥ 2), else score ≥ 1; nDCG uses the score as gain.
A corpus entry whose text equals the query text is dropped when scoring.
"""

from __future__ import annotations

import csv
import json
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinical_core.domain.errors import InvalidInput
from knowledge_base.adapters.embedder import Embedder
from knowledge_base.adapters.index import DEFAULT_CANDIDATES, HybridIndex, IndexItem, rankings, top_k
from knowledge_base.adapters.tokens import tokenize
from knowledge_base.domain.pairs import RetrievalSet
from knowledge_base.domain.ranking import RRF_K, mrr_at_k, ndcg_at_k, recall_at_k, weighted_rrf

METRICS = ("ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10")
DEPTH = 100


@dataclass(frozen=True, slots=True)
class BeirSet:
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, float]]


def _jsonl(path: Path) -> dict[str, str]:
    out = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                text = row.get("text", "")
                if row.get("title"):
                    text = f"{row['title']}\n{text}"
                out[str(row["_id"])] = text
    return out


def load_beir(directory: Path, max_queries: int | None = None, max_corpus: int | None = None,
              seed: int = 6) -> BeirSet:
    """Read a BEIR folder; optionally a deterministic subsample (queries, then their judged docs plus random fill)."""
    names = ("corpus.jsonl", "queries.jsonl", "qrels.tsv")
    if not all((directory / n).is_file() for n in names):
        raise InvalidInput(f"{directory} 不是 BEIR 目录（需要 corpus.jsonl、queries.jsonl、qrels.tsv）", field="dir")
    corpus = _jsonl(directory / "corpus.jsonl")
    queries = _jsonl(directory / "queries.jsonl")
    qrels: dict[str, dict[str, float]] = {}
    with (directory / "qrels.tsv").open(encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t"):
            if len(row) < 3 or not row[2].strip().lstrip("-").isdigit():
                continue  # header
            if row[0] in queries and row[1] in corpus:
                qrels.setdefault(row[0], {})[row[1]] = float(row[2])
    qids = [q for q in queries if q in qrels]
    rnd = random.Random(seed)
    if max_queries and len(qids) > max_queries:
        qids = sorted(rnd.sample(qids, max_queries), key=qids.index)
    if max_corpus and len(corpus) > max_corpus:
        keep = {d for q in qids for d in qrels[q]}
        rest = [d for d in corpus if d not in keep]
        keep.update(rnd.sample(rest, max(0, min(len(rest), max_corpus - len(keep)))))
        corpus = {d: t for d, t in corpus.items() if d in keep}
    return BeirSet(corpus, {q: queries[q] for q in qids}, {q: qrels[q] for q in qids})


@dataclass(frozen=True, slots=True)
class QueryRun:
    """One query's BM25 and dense rankings (corpus ids, best first, depth ``DEPTH``)."""

    qid: str
    bm25: list[str]
    dense: list[str]


def from_pairs(rs: RetrievalSet) -> BeirSet:
    return BeirSet(rs.corpus, rs.queries, rs.qrels)


def collect_rankings(data: BeirSet, embedder: Embedder, progress: Callable[[int], None] | None = None,
                     workdir: Path | None = None, candidates: int = DEFAULT_CANDIDATES,
                     passes: dict[str, int] | None = None) -> list[QueryRun]:
    """Index the corpus in a temporary store and rank every query with both retrievers (the costly part).

    ``candidates``: the index's float16 first pass (0: float32 scan only); ``passes`` receives
    the index's count of queries by dense path.
    """
    return collect_rankings_multi(data, embedder, {"": embedder}, progress, workdir, candidates=candidates,
                                  passes=passes)[""]


def collect_rankings_multi(data: BeirSet, embedder: Embedder, query_embedders: dict[str, Embedder],
                           progress: Callable[[int], None] | None = None, workdir: Path | None = None,
                           exact_scan: bool = False, candidates: int = DEFAULT_CANDIDATES,
                           passes: dict[str, int] | None = None, control: bool = False) -> dict[str, list[QueryRun]]:
    """One index (passages encoded by ``embedder``), queries encoded by each of ``query_embedders``.

    ``exact_scan``: scan float16 (``scan_float16``) and also rank the first query embedder's
    vectors by a float32 scan, as ``<name>_float32_scan``, to measure what float16 costs.
    ``control``: the same float32 control ranking, the index scanning as configured (``candidates``).
    """
    import numpy as np

    exact_scan_of: str | None = None
    out: dict[str, list[QueryRun]] = {}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        index = HybridIndex(Path(tmp) / "index", embedder, scan_float16=exact_scan, candidates=candidates)
        items = [IndexItem(d, t, tokenize(t)) for d, t in data.corpus.items()]
        index.sync(items, progress)
        qids = list(data.queries)
        tokens = {q: tokenize(data.queries[q]) for q in qids}
        exact: list[QueryRun] = []
        for name, qe in query_embedders.items():
            vectors = qe.encode_queries([data.queries[q] for q in qids]) if qids else []
            runs = []
            for qid, vector in zip(qids, vectors, strict=True):
                r = rankings(index, data.queries[qid], tokens[qid], DEPTH, vector=vector)
                runs.append(QueryRun(qid, r.bm25, r.dense))
                if (exact_scan or control) and not exact_scan_of or name == exact_scan_of:
                    exact_scan_of = name
                    rows = top_k(np.asarray(index._vectors) @ vector, DEPTH)  # float32 control scan
                    exact.append(QueryRun(qid, r.bm25, [index.keys[i] for i in rows]))
            out[name] = runs
        if exact:
            out[f"{exact_scan_of}_float32_scan"] = exact
        if passes is not None:
            passes.update(index.dense_passes)
    return out


def score(data: BeirSet, runs: list[QueryRun], weights: dict[str, float], k: int = RRF_K) -> dict[str, Any]:
    """Mean metrics of bm25, dense and their weighted-RRF fusion (pure arithmetic: cheap to sweep)."""
    max_score = max((s for rel in data.qrels.values() for s in rel.values()), default=1.0)
    threshold = 2.0 if max_score >= 2 else 1.0
    totals = {name: dict.fromkeys(METRICS, 0.0) for name in ("bm25", "dense", "hybrid")}
    for run in runs:
        text = data.queries[run.qid]
        fused = [f.key for f in weighted_rrf({"bm25": run.bm25, "dense": run.dense}, weights, k)]
        gains = data.qrels[run.qid]
        relevant = {d for d, s in gains.items() if s >= threshold}
        for name, ranked in (("bm25", run.bm25), ("dense", run.dense), ("hybrid", fused)):
            ranked = [d for d in ranked if data.corpus.get(d) != text]
            m = totals[name]
            m["ndcg@10"] += ndcg_at_k(ranked, gains, 10)
            m["mrr@10"] += mrr_at_k(ranked, relevant, 10)
            for cut in (1, 5, 10):
                m[f"recall@{cut}"] += recall_at_k(ranked, relevant, cut)
    n = max(len(runs), 1)
    result: dict[str, Any] = {name: {key: round(v / n, 4) for key, v in m.items()} for name, m in totals.items()}
    result.update(queries=len(runs), corpus=len(data.corpus), weights=dict(weights), rrf_k=k)
    return result


def evaluate(data: BeirSet, embedder: Embedder, weights: dict[str, float],
             progress: Callable[[int], None] | None = None, workdir: Path | None = None,
             k: int = RRF_K, candidates: int = DEFAULT_CANDIDATES) -> dict[str, Any]:
    """Scores of bm25, dense and hybrid (mean over queries) plus the set's size."""
    passes: dict[str, int] = {}
    result = score(data, collect_rankings(data, embedder, progress, workdir, candidates, passes), weights, k)
    result.update(model=embedder.model_name, quantized=embedder.quantize, dense_passes=passes)
    return result
