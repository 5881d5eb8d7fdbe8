"""Rank fusion and retrieval metrics (pure)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

DEFAULT_WEIGHTS = {"bm25": 0.05, "dense": 1.0}  # the settings search.bm25_weight / dense_weight default to these
RRF_K = 10  # the setting search.rrf_k defaults to this; both chosen on train splits (benchmarks/fusion_tuning.py)


@dataclass(frozen=True, slots=True)
class Fused:
    key: str
    score: float
    ranks: dict[str, int] = field(default_factory=dict)  # retriever -> 1-based rank


def weighted_rrf(rankings: Mapping[str, Sequence[str]], weights: Mapping[str, float], k: int = RRF_K) -> list[Fused]:
    """Weighted reciprocal-rank fusion: score(d) = Σ_r w_r / (k + rank_r(d)); ties keep first-seen order."""
    scores: dict[str, float] = {}
    ranks: dict[str, dict[str, int]] = {}
    for name, ranked in rankings.items():
        w = weights.get(name, 1.0)
        for rank, key in enumerate(ranked, start=1):
            ranks.setdefault(key, {})[name] = rank
            if w > 0:
                scores[key] = scores.get(key, 0.0) + w / (k + rank)
            else:
                scores.setdefault(key, 0.0)
    order = sorted(scores, key=lambda key: -scores[key])
    return [Fused(key, scores[key], ranks[key]) for key in order]


def ndcg_at_k(ranked: Sequence[str], gains: Mapping[str, float], k: int = 10) -> float:
    dcg = sum(gains.get(d, 0.0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in gains.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def mrr_at_k(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    for i, d in enumerate(ranked[:k]):
        if d in relevant:
            return 1.0 / (i + 1)
    return 0.0


def recall_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)
