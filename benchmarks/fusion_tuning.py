"""Fusion tuning on held-out data: choose RRF k and the BM25 weight on *train* splits, report on dev sets.

    python benchmarks/fusion_tuning.py tune   [--train-dir ../shared/eval/train]
    python benchmarks/fusion_tuning.py report --k K --bm25-weight W [--int8] [--onnx-int8 --scan two-pass] [--eval-dir ../shared/eval]

``tune`` builds three tuning sets from the raw CBLUE train files in a temporary
directory (never inside the project), ranks every query once with BM25 and the
dense model, then sweeps k × BM25 weight (dense weight 1.0) over the cached
rankings. The choice: the highest mean nDCG@10 over the three tuning sets among
the settings whose hybrid is ≥ dense and ≥ BM25 on every tuning set.

- ``qtr_train``: KUAKE-QTR train, queries with a title scored ≥ 2 (sample of
  ``--qtr-queries``); corpus = every title judged for the sampled queries; gain = score.
- ``qqr_train``: KUAKE-QQR train, query1 with a label-2 partner (sample of
  ``--qqr-queries``); corpus = every query2 judged for the sampled queries; gain = label.
- ``chip_tune``: CHIP-STS train minus its held-out question groups
  (``knowledge_base.domain.pairs.split_held_out``, the split ``opsctl kb model tune``
  uses), built like ``chip_sts_train_q2q`` and subsampled like the dev report.

``report`` evaluates one setting on the dev sets (KUAKE-QQR dev, KUAKE-QTR dev) and
on the held-out CHIP-STS groups (complete), which ``tune`` never reads. The published
``chip_sts_train_q2q`` set is *not* a held-out set for this purpose: it contains the
tuning groups.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from knowledge_base.adapters.embedder import Embedder  # noqa: E402
from knowledge_base.domain.pairs import Pair, retrieval_set, split_held_out  # noqa: E402
from knowledge_base.services.evaluation import (  # noqa: E402
    BeirSet,
    collect_rankings,
    collect_rankings_multi,
    load_beir,
    score,
)

K_GRID = (1, 5, 10, 20, 30, 60, 100)
W_GRID = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)


def _shared(sub: str) -> Path:
    repo = Path(__file__).resolve().parents[1]
    return next((p for p in (repo.parent / "shared" / sub, repo.parent.parent / "shared" / sub) if p.is_dir()),
                repo.parent / "shared" / sub)


def chip_pairs(train_dir: Path) -> list[Pair]:
    rows = json.loads((train_dir / "CHIP-STS_train.json").read_text(encoding="utf-8"))
    return [Pair(r["text1"], r["text2"], int(r["label"])) for r in rows if r["text1"] != r["text2"]]


def _write_beir(directory: Path, corpus: dict[str, str], queries: dict[str, str],
                qrels: dict[str, dict[str, float]]) -> Path:
    directory.mkdir(parents=True)
    with (directory / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for i, t in corpus.items():
            fh.write(json.dumps({"_id": i, "text": t}, ensure_ascii=False) + "\n")
    with (directory / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for i, t in queries.items():
            fh.write(json.dumps({"_id": i, "text": t}, ensure_ascii=False) + "\n")
    with (directory / "qrels.tsv").open("w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for q, rel in qrels.items():
            for d, s in rel.items():
                fh.write(f"{q}\t{d}\t{int(s)}\n")
    return directory


def _graded_set(rows: list[dict], qkey: str, dkey: str, min_best: int, n_queries: int, seed: int,
                directory: Path) -> Path:
    """Queries whose best judged item scores ≥ ``min_best``; corpus = everything judged for the sampled queries."""
    by_query: dict[str, list[tuple[str, int]]] = {}
    for r in rows:
        by_query.setdefault(r[qkey], []).append((r[dkey], int(r["label"])))
    eligible = sorted(q for q, items in by_query.items() if max(s for _, s in items) >= min_best)
    sample = random.Random(seed).sample(eligible, min(n_queries, len(eligible)))
    corpus: dict[str, str] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, float]] = {}
    for q in sample:
        qid = f"q{len(queries)}"
        queries[qid] = q
        for text, s in by_query[q]:
            cid = corpus.setdefault(text, f"c{len(corpus)}")
            if s > 0:
                qrels.setdefault(qid, {})[cid] = float(s)
    corpus_by_id = {i: t for t, i in corpus.items()}
    return _write_beir(directory, corpus_by_id, queries, qrels)


def build_tuning_sets(train_dir: Path, root: Path, args: argparse.Namespace) -> dict[str, BeirSet]:
    qtr = json.loads((train_dir / "KUAKE-QTR_train.json").read_text(encoding="utf-8"))
    qqr = json.loads((train_dir / "KUAKE-QQR_train.json").read_text(encoding="utf-8"))
    sets = {
        "qtr_train": load_beir(_graded_set(qtr, "query", "title", 2, args.qtr_queries, 61, root / "qtr_train")),
        "qqr_train": load_beir(_graded_set(qqr, "query1", "query2", 2, args.qqr_queries, 62, root / "qqr_train")),
    }
    tune, _held = split_held_out(chip_pairs(train_dir))
    rs = retrieval_set(tune)
    chip_dir = _write_beir(root / "chip_tune", rs.corpus, rs.queries, rs.qrels)
    sets["chip_tune"] = load_beir(chip_dir, args.chip_queries, args.chip_corpus)
    return sets


def choose(sweep: dict[str, dict[str, dict]]) -> dict:
    """Highest mean hybrid nDCG@10 among settings with hybrid ≥ dense and ≥ BM25 on every set."""
    best = None
    for key, per_set in sweep.items():
        mean = sum(r["hybrid"] for r in per_set.values()) / len(per_set)
        ok = all(r["hybrid"] >= max(r["dense"], r["bm25"]) for r in per_set.values())
        cand = (ok, round(mean, 6), key)
        if best is None or cand[:2] > best[:2]:
            best = cand
    assert best is not None
    k, w = best[2].split("|")
    return {"k": int(k), "bm25_weight": float(w), "dense_weight": 1.0, "mean_hybrid_ndcg@10": best[1],
            "beats_both_everywhere": best[0]}


def tune(args: argparse.Namespace) -> dict:
    embedder = Embedder(args.model, quantize=args.int8, query_precision="fp32")  # as tuned (before int8 ONNX)
    out: dict = {"phase": "tune", "model": args.model, "quantized": args.int8, "sets": {}}
    runs = {}
    with tempfile.TemporaryDirectory(prefix="fusion-tune-") as tmp:
        sets = build_tuning_sets(args.train_dir, Path(tmp), args)
        for name, data in sets.items():
            t0 = time.perf_counter()
            runs[name] = collect_rankings(data, embedder)
            out["sets"][name] = {"queries": len(data.queries), "corpus": len(data.corpus),
                                 "seconds": round(time.perf_counter() - t0, 1)}
            print(json.dumps({name: out["sets"][name]}), file=sys.stderr, flush=True)
        sweep: dict[str, dict[str, dict]] = {}
        for k in K_GRID:
            for w in W_GRID:
                key = f"{k}|{w}"
                sweep[key] = {}
                for name, data in sets.items():
                    r = score(data, runs[name], {"bm25": w, "dense": 1.0}, k)
                    sweep[key][name] = {m: r[m]["ndcg@10"] for m in ("bm25", "dense", "hybrid")}
    out["sweep_ndcg@10"] = {key: {n: v["hybrid"] for n, v in per.items()} for key, per in sweep.items()}
    first = next(iter(sweep.values()))
    out["bm25_ndcg@10"] = {n: v["bm25"] for n, v in first.items()}
    out["dense_ndcg@10"] = {n: v["dense"] for n, v in first.items()}
    out["choice"] = choose(sweep)
    return out


def dev_sets(eval_dir: Path, train_dir: Path, max_queries: int | None = None,
             max_corpus: int | None = None) -> dict[str, BeirSet]:
    """The dev sets; ``max_queries``/``max_corpus`` subsample QTR and the CHIP held-out part like ``kb eval``."""
    _tune, held = split_held_out(chip_pairs(train_dir))
    with tempfile.TemporaryDirectory(prefix="fusion-report-") as tmp:
        rs = retrieval_set(held)
        chip = load_beir(_write_beir(Path(tmp) / "chip", rs.corpus, rs.queries, rs.qrels), max_queries, max_corpus)
    return {
        "kuake_qqr_dev_q2q": load_beir(eval_dir / "kuake_qqr_dev_q2q"),
        "kuake_qtr_dev_q2title": load_beir(eval_dir / "kuake_qtr_dev_q2title", max_queries, max_corpus),
        "chip_sts_heldout": chip,
    }


def report(args: argparse.Namespace) -> dict:
    """fp32; with --int8 also int8 queries on the fp32 index (the product's query path) and all-int8."""
    out: dict = {"phase": "report", "model": args.model, "k": args.k, "bm25_weight": args.bm25_weight,
                 "max_queries": args.max_queries, "max_corpus": args.max_corpus, "sets": {}}
    weights = {"bm25": args.bm25_weight, "dense": 1.0}
    fp32 = Embedder(args.model, query_precision="fp32")  # float32 ONNX queries
    query_variants = {"fp32": fp32}
    if args.int8:
        query_variants["int8_queries"] = Embedder(args.model, quantize_queries=True)
    if args.onnx_int8:  # the product's default query graph (each query encoded alone, as a search does)
        query_variants["onnx_int8_queries"] = Embedder(args.model, query_precision="int8")
    sets = dev_sets(args.eval_dir, args.train_dir, args.max_queries, args.max_corpus)
    for name, data in sets.items():
        if args.sets and name not in args.sets:
            continue
        t0 = time.perf_counter()
        variants = collect_rankings_multi(data, fp32, query_variants, exact_scan=args.scan == "float16",
                                          control=args.scan == "two-pass")
        if args.int8_all:  # passages int8 too: costs a second encoding of every corpus
            variants["int8_all"] = collect_rankings(data, Embedder(args.model, quantize=True))
        for variant, runs in variants.items():
            r = score(data, runs, weights, args.k)
            for spec in args.compare:  # other settings on the same rankings, for the record (not used to choose)
                k, w = spec.split(",")
                r[f"hybrid_ndcg@10_k{k}_w{w}"] = score(data, runs, {"bm25": float(w), "dense": 1.0},
                                                       int(k))["hybrid"]["ndcg@10"]
            out["sets"].setdefault(name, {})[variant] = r
            print(json.dumps({name: {variant: {m: r[m]["ndcg@10"] for m in ("bm25", "dense", "hybrid")}}}),
                  file=sys.stderr, flush=True)
        out["sets"][name]["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("phase", choices=("tune", "report"))
    ap.add_argument("--train-dir", type=Path, default=_shared("eval") / "train")
    ap.add_argument("--eval-dir", type=Path, default=_shared("eval"))
    ap.add_argument("--model", default="multilingual-e5-small")
    ap.add_argument("--int8", action="store_true", help="tune: rank with the int8 model; report: add int8 rows")
    ap.add_argument("--onnx-int8", action="store_true", help="report: add the int8 ONNX query graph's rows")
    ap.add_argument("--scan", choices=("float16", "two-pass"), default="float16",
                    help="report: float16 scan (+ a float32 control), or the product's exact two-pass dense step")
    ap.add_argument("--int8-all", action="store_true", help="report: also index the passages with the int8 model")
    ap.add_argument("--qtr-queries", type=int, default=1000)
    ap.add_argument("--qqr-queries", type=int, default=150)
    ap.add_argument("--chip-queries", type=int, default=1000)
    ap.add_argument("--chip-corpus", type=int, default=4000)
    ap.add_argument("--sets", nargs="*", default=[], help="report: only these dev sets")
    ap.add_argument("--max-queries", type=int, default=None, help="report: subsample QTR and CHIP held-out queries")
    ap.add_argument("--max-corpus", type=int, default=None, help="report: ... and their corpus (judged + random fill)")
    ap.add_argument("--k", type=int, default=None)
    ap.add_argument("--bm25-weight", type=float, default=None)
    ap.add_argument("--compare", nargs="*", default=[], help="report: extra 'k,w' settings scored on the same run")
    args = ap.parse_args()
    if args.phase == "report":
        from knowledge_base.domain.ranking import DEFAULT_WEIGHTS, RRF_K

        args.k = args.k if args.k is not None else RRF_K
        args.bm25_weight = args.bm25_weight if args.bm25_weight is not None else DEFAULT_WEIGHTS["bm25"]
    result = tune(args) if args.phase == "tune" else report(args)
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
