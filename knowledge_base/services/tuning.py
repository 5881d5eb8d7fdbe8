"""Domain tuning of the dense model on the hospital's own question pairs (``opsctl kb model tune``).

The pairs are split by question group *before* tuning (``domain.pairs.split_held_out``):
the held-out part becomes a retrieval set (question → same-meaning questions, hard
negatives kept in the corpus) scored with the very code of ``opsctl kb eval`` on the base
model and on the tuned one. Tuning: sentence-transformers' trainer with
MultipleNegativesRankingLoss — each label-1 pair is (anchor, positive), a label-0 partner
of the anchor is its hard negative, the rest of the batch are in-batch negatives — with the
model's own ``query: ``/``passage: `` prompts, so tuning sees texts exactly as search
encodes them. The word-embedding matrix (96 M of the model's 118 M weights) is frozen by
default: a few thousand pairs cannot move it usefully and it dominates the cost.

The result is written into the model cache under a new name and never replaces the base
model; select it with ``search.embedding_model``. A model tuned on CBLUE data is for
research only (CBLUE's licence) and must not become a product default.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clinical_core.domain.errors import Conflict, InvalidInput
from knowledge_base import onnx_export
from knowledge_base.adapters.embedder import Embedder, model_cache_dir, resolve_model
from knowledge_base.domain.pairs import (
    Pair,
    parse_pairs,
    retrieval_set,
    split_held_out,
    training_triples,
)
from knowledge_base.domain.ranking import DEFAULT_WEIGHTS, RRF_K
from knowledge_base.services.evaluation import evaluate, from_pairs

TUNE_MANIFEST = "opsctl-tune.json"
_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(frozen=True, slots=True)
class TuneOptions:
    held_out: float = 0.2
    seed: int = 6
    max_pairs: int | None = None  # subsample of the tuning triples (CPU time)
    max_eval_queries: int | None = None  # subsample of the held-out queries (CPU time)
    max_eval_corpus: int | None = None  # subsample of the held-out corpus: paired texts kept, random fill
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 2e-5
    freeze_embeddings: bool = True
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    rrf_k: int = RRF_K


@dataclass(frozen=True, slots=True)
class TuneReport:
    base_model: str
    model: str
    path: str
    pairs: int
    tuning_pairs: int
    held_out_pairs: int
    trained_triples: int
    with_hard_negative: int
    held_out_queries: int
    held_out_corpus: int
    before: dict[str, dict[str, float]]  # bm25 / dense / hybrid → metrics on the held-out set
    after: dict[str, dict[str, float]]
    train_seconds: float
    steps: int


def _check_name(name: str, base: str) -> None:
    if not name or not set(name) <= _NAME_OK or name.startswith("."):
        raise InvalidInput("模型名只能包含字母、数字、-、_、.", field="out")
    if name == base:
        raise InvalidInput("调优后的模型不能覆盖基础模型，请用 --out 另起名字", field="out")


def default_name(base: str, pairs_file: str) -> str:
    return f"{Path(base).name}-tuned-{Path(pairs_file).stem}"[:80].replace(" ", "_")


def _sample(items: list, n: int | None, seed: int) -> list:
    if n is None or len(items) <= n:
        return items
    return random.Random(seed).sample(items, n)


def _training_rows(tune: Sequence[Pair], options: TuneOptions) -> tuple[list[dict[str, str]], int]:
    """anchor/positive/negative rows; anchors without a label-0 partner get a text of another group."""
    triples = _sample(training_triples(tune), options.max_pairs, options.seed)
    if not triples:
        raise InvalidInput("留出后没有可用于调优的正例问题对（label=1）", field="pairs")
    pool = sorted({p.text2 for p in tune} | {p.text1 for p in tune})
    rnd = random.Random(options.seed + 1)
    rows, hard = [], 0
    for anchor, positive, negative in triples:
        if negative is None:
            while True:
                negative = pool[rnd.randrange(len(pool))]
                if negative not in (anchor, positive) or len(pool) < 3:
                    break
        else:
            hard += 1
        rows.append({"anchor": anchor, "positive": positive, "negative": negative})
    return rows, hard


def _train(base_path: Path, rows: list[dict[str, str]], options: TuneOptions, workdir: Path,
           progress: Callable[[int], None] | None) -> tuple[Any, int]:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import (
        MultipleNegativesRankingLoss,
    )
    from transformers import TrainerCallback

    model = SentenceTransformer(str(base_path), device="cpu", local_files_only=True)
    prompts = getattr(model, "prompts", None) or {}
    q, p = prompts.get("query", ""), prompts.get("passage", "")
    if options.freeze_embeddings:
        for name, param in model.named_parameters():
            if "word_embeddings" in name:
                param.requires_grad = False

    class _Progress(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if progress:
                progress(options.batch_size)

    args = SentenceTransformerTrainingArguments(
        output_dir=str(workdir / "trainer"), num_train_epochs=options.epochs,
        per_device_train_batch_size=options.batch_size, learning_rate=options.learning_rate, warmup_steps=0.1,
        batch_sampler=BatchSamplers.NO_DUPLICATES, prompts={"anchor": q, "positive": p, "negative": p},
        save_strategy="no", report_to=[], logging_strategy="no", seed=options.seed, use_cpu=True,
        dataloader_num_workers=0, disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                                         loss=MultipleNegativesRankingLoss(model), callbacks=[_Progress()])
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)  # it prints the training summary on stdout (a CLI's --json output)
    trainer.remove_callback(ProgressCallback)
    with contextlib.redirect_stdout(sys.stderr):
        trainer.train()
    return model, int(trainer.state.global_step)


def tune_model(pairs: Sequence[Pair], base_model: str, out_name: str, options: TuneOptions = TuneOptions(), *,
               source: str = "", force: bool = False, progress: Callable[[str, int], None] | None = None
               ) -> TuneReport:
    """Hold out question groups, score the base model, tune on the rest, score the tuned model, save it."""
    _check_name(out_name, base_model)
    base_path = resolve_model(base_model)
    target = model_cache_dir() / out_name
    if target.exists() and not force:
        raise Conflict(f"模型 {out_name} 已存在", hint="换一个 --out 名字，或加 --force 覆盖")
    tune, held = split_held_out(pairs, options.held_out, options.seed)
    rs = retrieval_set(held)
    if not rs.queries:
        raise InvalidInput("留出部分没有正例问题对，无法比较调优前后：请提供更多问题对", field="pairs")
    held_set = from_pairs(rs)
    if options.max_eval_queries and len(held_set.queries) > options.max_eval_queries:
        keep = sorted(_sample(sorted(held_set.queries), options.max_eval_queries, options.seed))
        held_set = type(held_set)(held_set.corpus, {q: held_set.queries[q] for q in keep},
                                  {q: held_set.qrels[q] for q in keep})
    if options.max_eval_corpus and len(held_set.corpus) > options.max_eval_corpus:
        # keep every text paired (any label: hard negatives too) with a kept query, fill at random
        kept_queries = set(held_set.queries.values())
        paired = {p.text2 for p in held if p.text1 in kept_queries}
        ids = [i for i, t in held_set.corpus.items() if t in paired]
        rest = [i for i in sorted(held_set.corpus) if held_set.corpus[i] not in paired]
        ids += _sample(rest, max(0, options.max_eval_corpus - len(ids)), options.seed)
        held_set = type(held_set)({i: held_set.corpus[i] for i in ids}, held_set.queries, held_set.qrels)
    rows, hard = _training_rows(tune, options)

    def step(label: str) -> Callable[[int], None] | None:
        return (lambda n: progress(label, n)) if progress else None

    before = evaluate(held_set, Embedder(str(base_path)), options.weights, step("before"), k=options.rrf_k)
    with tempfile.TemporaryDirectory(prefix="kb-tune-") as tmp:
        t0 = time.perf_counter()
        model, steps = _train(base_path, rows, options, Path(tmp), step("train"))
        seconds = round(time.perf_counter() - t0, 1)
        staging = model_cache_dir() / f".{out_name}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        model.save(str(staging))
    # the tuned model serves queries like the base one: ONNX Runtime, fused graph (search latency)
    onnx_export.export(staging)
    after = evaluate(held_set, Embedder(str(staging)), options.weights, step("after"), k=options.rrf_k)
    report = TuneReport(
        base_model=base_model, model=out_name, path=str(target), pairs=len(pairs), tuning_pairs=len(tune),
        held_out_pairs=len(held), trained_triples=len(rows), with_hard_negative=hard,
        held_out_queries=len(held_set.queries), held_out_corpus=len(held_set.corpus),
        before={m: before[m] for m in ("bm25", "dense", "hybrid")},
        after={m: after[m] for m in ("bm25", "dense", "hybrid")}, train_seconds=seconds, steps=steps)
    digest = hashlib.sha256("\n".join(f"{p.text1}\t{p.text2}\t{p.label}" for p in pairs).encode()).hexdigest()
    manifest = {"base_model": base_model, "pairs_source": Path(source).name if source else "", "pairs_sha256": digest,
                "options": dataclasses.asdict(options),
                "held_out_ndcg@10": {"before": before["dense"]["ndcg@10"], "after": after["dense"]["ndcg@10"]},
                "licence": "research use only when tuned on research-only data (e.g. CBLUE); not a product default"}
    (staging / TUNE_MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return report


def read_pairs(path: Path) -> list[Pair]:
    """A pairs file (.json CHIP-STS style, .jsonl or .csv) read as UTF-8."""
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path.name} 不是 UTF-8 文本", field="pairs") from None
    return parse_pairs(path.name, content)


@dataclass(frozen=True, slots=True)
class ModelView:
    name: str
    in_use: bool
    base_model: str | None  # set for tuned models
    tuned_on: str | None
    held_out_ndcg: str | None
    path: str


def list_models(current: str) -> list[ModelView]:
    """The sentence-transformers models in the cache; tuned ones show their base and held-out scores."""
    root = model_cache_dir()
    views = []
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        if d.name.startswith(".") or not (d / "modules.json").is_file():
            continue
        manifest = json.loads((d / TUNE_MANIFEST).read_text()) if (d / TUNE_MANIFEST).is_file() else {}
        scores = manifest.get("held_out_ndcg@10") or {}
        views.append(ModelView(
            d.name, d.name == current or str(d) == current, manifest.get("base_model"),
            manifest.get("pairs_source") or None,
            f"{scores['before']:.4f}→{scores['after']:.4f}" if scores else None, str(d)))
    return views
