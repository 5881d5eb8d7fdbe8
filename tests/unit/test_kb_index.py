"""The on-disk hybrid index scans float16 vectors: same scores as float32 within 1e-3, same top hits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from knowledge_base.adapters.index import HybridIndex, IndexItem, top_k


class _FixedEmbedder:
    """Stands in for the model: passage i is encoded as row i of a fixed random matrix."""

    model_name = "fixed"

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def encode_passages(self, texts: list[str], progress=None) -> np.ndarray:
        return self.vectors[[int(t.split()[1]) for t in texts]]

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        raise AssertionError("the test passes query vectors")


def test_float16_scan_matches_float32(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    vectors = rng.standard_normal((3000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = HybridIndex(tmp_path / "idx", _FixedEmbedder(vectors), scan_float16=True)  # type: ignore[arg-type]
    exact_index = HybridIndex(tmp_path / "idx", _FixedEmbedder(vectors))  # type: ignore[arg-type]  # the default
    index.sync([IndexItem(f"p{i}", f"passage {i}", [f"t{i % 50}"]) for i in range(3000)])
    for row in (0, 17, 2999):
        query = vectors[row] + 0.5 * vectors[(row + 1) % 3000]
        query /= np.linalg.norm(query)
        exact = vectors @ query
        got = index.dense_scores(vector=query)
        assert got.dtype == np.float32 and np.abs(got - exact).max() < 1e-3
        assert top_k(got, 2) == top_k(exact, 2)
        assert np.array_equal(exact_index_scores := exact_index.dense_scores(vector=query), vectors @ query)
        assert exact_index_scores.dtype == np.float32
    # incremental sync keeps the stored (float32) vectors of passages already embedded
    index.sync([IndexItem("p5", "passage 5", ["t5"]), IndexItem("p7", "passage 7", ["t7"])])
    assert index.keys == ["p5", "p7"]
    assert np.allclose(np.load(tmp_path / "idx" / "vectors.npy"), vectors[[5, 7]])


def test_bm25_scores_equal_bm25s_own_scoring(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    vocab = [f"词{i}" for i in range(40)]
    docs = [[vocab[j] for j in rng.zipf(1.5, size=12) % 40] for _ in range(500)]
    vectors = np.eye(500, 8, dtype=np.float32) + 0.01
    index = HybridIndex(tmp_path / "idx", _FixedEmbedder(vectors))  # type: ignore[arg-type]
    index.sync([IndexItem(f"p{i}", f"passage {i}", d) for i, d in enumerate(docs)])
    for query in (["词0"], ["词1", "词7", "词1"], ["词39", "不在词表"], ["不在词表"]):
        ours = index.bm25_scores(query)
        theirs = np.asarray(index._bm25.get_scores(query), dtype=np.float32)
        assert np.allclose(ours, theirs, rtol=1e-5, atol=1e-6) and ours.shape == (500,)


def test_query_quantisation_and_fusion_follow_the_settings(monkeypatch) -> None:
    from opsctl.config import load_settings
    from opsctl.wiring import Container

    monkeypatch.delenv("OPSCTL_CONFIG", raising=False)
    default = Container(load_settings())
    assert not default.embedder.quantize_queries and not default.embedder.quantize  # int8 lost quality: off
    assert default.embedder.query_backend == "onnx" and default.embedder.query_threads == 1  # latency (BENCHMARKS)
    monkeypatch.setenv("OPSCTL_SEARCH__QUANTIZE_QUERIES", "true")
    monkeypatch.setenv("OPSCTL_SEARCH__RRF_K", "60")
    monkeypatch.setenv("OPSCTL_SEARCH__QUERY_BACKEND", "torch")
    monkeypatch.setenv("OPSCTL_SEARCH__QUERY_THREADS", "2")
    off = Container(load_settings())
    assert off.embedder.quantize_queries and not off.embedder.quantize and off.settings.search.rrf_k == 60
    assert off.embedder.query_backend == "torch" and off.embedder.query_threads == 2
