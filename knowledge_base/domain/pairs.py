"""Labelled question pairs for domain tuning (pure): parsing, a leak-free held-out split, a retrieval set.

A pairs file says which two questions mean the same (label 1) and which look alike
but do not (label 0, the hard negatives). Formats:

- CHIP-STS JSON: a list of ``{"text1", "text2", "label"}`` (extra keys ignored);
  KUAKE-QQR's ``query1``/``query2`` and the ``question``/``answer`` spelling are accepted too;
- JSONL: one such object per line;
- CSV: a header naming ``text1,text2[,label]`` (label defaults to 1).

The held-out split is by *question group*: the connected components of the graph
whose edges are the pairs. Every text belongs to exactly one side, so no question
(and no paraphrase of it) seen in tuning is scored afterwards.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from clinical_core.domain.errors import InvalidInput

_FIRST = ("text1", "query1", "query", "question", "anchor", "sentence1")
_SECOND = ("text2", "query2", "title", "answer", "positive", "sentence2")


@dataclass(frozen=True, slots=True)
class Pair:
    text1: str
    text2: str
    label: int  # 1 = same meaning, 0 = a hard negative (looks alike, means something else)


def _pick(row: dict, names: Sequence[str]) -> str | None:
    for n in names:
        if isinstance(row.get(n), str) and row[n].strip():
            return row[n].strip()
    return None


def _label(value: object, where: str) -> int:
    if value is None or value == "":
        return 1
    try:
        label = int(float(str(value).strip()))
    except ValueError:
        raise InvalidInput(f"{where} 的标签应为 0 或 1", field="pairs") from None
    if label < 0:
        raise InvalidInput(f"{where} 的标签应为 0 或 1", field="pairs")
    return 1 if label >= 1 else 0


def _from_rows(rows: Iterable[dict], source: str) -> list[Pair]:
    pairs = []
    for n, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise InvalidInput(f"{source} 第 {n} 条不是对象", field="pairs")
        a, b = _pick(row, _FIRST), _pick(row, _SECOND)
        if not a or not b:
            raise InvalidInput(f"{source} 第 {n} 条缺少 text1/text2", field="pairs")
        if a != b:
            pairs.append(Pair(a, b, _label(row.get("label"), f"{source} 第 {n} 条")))
    return pairs


def parse_pairs(name: str, content: str) -> list[Pair]:
    """Pairs from a file's text; the format follows the extension (.json, .jsonl, .csv)."""
    lower = name.lower()
    if lower.endswith(".jsonl"):
        rows = []
        for n, line in enumerate(content.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    raise InvalidInput(f"{name} 第 {n} 行不是 JSON", field="pairs") from None
        pairs = _from_rows(rows, name)
    elif lower.endswith(".json"):
        try:
            data = json.loads(content)
        except json.JSONDecodeError:
            raise InvalidInput(f"{name} 不是 JSON", field="pairs") from None
        if not isinstance(data, list):
            raise InvalidInput(f"{name} 应为问题对的列表", field="pairs")
        pairs = _from_rows(data, name)
    elif lower.endswith(".csv"):
        reader = csv.DictReader(io.StringIO(content.lstrip("\ufeff")))
        if not reader.fieldnames or not (set(reader.fieldnames) & set(_FIRST)):
            raise InvalidInput(f"{name} 的表头应包含 text1,text2[,label]", field="pairs")
        pairs = _from_rows(reader, name)
    else:
        raise InvalidInput(f"不支持的问题对文件：{name}（支持 .json、.jsonl、.csv）", field="pairs")
    if not pairs:
        raise InvalidInput(f"{name} 中没有问题对", field="pairs")
    return pairs


def question_groups(pairs: Sequence[Pair]) -> dict[str, str]:
    """Each text → its group's representative (connected components over all pairs, any label)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for p in pairs:
        a, b = find(p.text1), find(p.text2)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {t: find(t) for t in parent}


def _bucket(group: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_held_out(pairs: Sequence[Pair], fraction: float = 0.2, seed: int = 6) -> tuple[list[Pair], list[Pair]]:
    """(tuning pairs, held-out pairs): whole question groups go to one side, chosen by a seeded hash.

    The split depends only on the texts, not on the order of the file, so the same
    pairs always give the same held-out part.
    """
    if not 0 < fraction < 1:
        raise InvalidInput("留出比例应在 0 到 1 之间", field="held_out")
    groups = question_groups(pairs)
    tune, held = [], []
    for p in pairs:
        (held if _bucket(groups[p.text1], seed) < fraction else tune).append(p)
    return tune, held


@dataclass(frozen=True, slots=True)
class RetrievalSet:
    """A BEIR-shaped set: ids → texts and query id → {corpus id: gain}."""

    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, float]]


def retrieval_set(pairs: Sequence[Pair]) -> RetrievalSet:
    """Question → the questions that mean the same, like ``chip_sts_train_q2q``.

    Queries: every ``text1`` with at least one label-1 partner; corpus: every distinct
    ``text2`` (label-0 partners stay in as hard negatives).
    """
    corpus_ids: dict[str, str] = {}
    for p in pairs:
        corpus_ids.setdefault(p.text2, f"c{len(corpus_ids)}")
    query_ids: dict[str, str] = {}
    qrels: dict[str, dict[str, float]] = {}
    for p in pairs:
        if p.label == 1:
            qid = query_ids.setdefault(p.text1, f"q{len(query_ids)}")
            qrels.setdefault(qid, {})[corpus_ids[p.text2]] = 1.0
    return RetrievalSet({i: t for t, i in corpus_ids.items()}, {i: t for t, i in query_ids.items()}, qrels)


def training_triples(pairs: Sequence[Pair]) -> list[tuple[str, str, str | None]]:
    """(anchor, positive, hard negative or None): each label-1 pair, with a label-0 partner of the same anchor.

    Negatives are assigned round-robin so that one anchor's negatives are spread over its positives.
    """
    negatives: dict[str, list[str]] = {}
    for p in pairs:
        if p.label == 0:
            negatives.setdefault(p.text1, []).append(p.text2)
    used: dict[str, int] = {}
    out: list[tuple[str, str, str | None]] = []
    for p in pairs:
        if p.label != 1:
            continue
        negs = negatives.get(p.text1)
        neg = None
        if negs:
            i = used.get(p.text1, 0)
            neg = negs[i % len(negs)]
            used[p.text1] = i + 1
        out.append((p.text1, p.text2, neg))
    return out
