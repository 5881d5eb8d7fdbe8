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
    assert default.embedder.query_precision == "int8"  # the int8 ONNX graph: within 0.002 nDCG@10 (BENCHMARKS)
    monkeypatch.setenv("OPSCTL_SEARCH__QUANTIZE_QUERIES", "true")
    monkeypatch.setenv("OPSCTL_SEARCH__RRF_K", "60")
    monkeypatch.setenv("OPSCTL_SEARCH__QUERY_BACKEND", "torch")
    monkeypatch.setenv("OPSCTL_SEARCH__QUERY_THREADS", "2")
    monkeypatch.setenv("OPSCTL_SEARCH__QUERY_PRECISION", "fp32")
    off = Container(load_settings())
    assert off.embedder.quantize_queries and not off.embedder.quantize and off.settings.search.rrf_k == 60
    assert off.embedder.query_backend == "torch" and off.embedder.query_threads == 2
    assert off.embedder.query_precision == "fp32"


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def _synced(tmp_path: Path, vectors: np.ndarray, name: str = "idx", **kwargs) -> HybridIndex:
    index = HybridIndex(tmp_path / name, _FixedEmbedder(vectors), **kwargs)  # type: ignore[arg-type]
    index.sync([IndexItem(f"p{i}", f"passage {i}", [f"t{i % 7}"]) for i in range(len(vectors))])
    return index


def test_float16_first_pass_returns_the_float32_scan_exactly(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    centres = rng.standard_normal((20, 48))
    vectors = _unit(centres[rng.integers(0, 20, 3000)] + 0.7 * rng.standard_normal((3000, 48)))
    index = _synced(tmp_path, vectors, candidates=100)
    wide, narrow = rng.random(3000) < 0.5, rng.random(3000) < 0.02  # narrow: fewer rows than candidates
    for j in range(30):
        q = _unit((vectors[j] + 0.6 * rng.standard_normal(48))[None])[0]
        exact = vectors @ q
        for mask in (None, wide, narrow):
            rows, scores = index.dense_top(q, 20, mask)
            assert rows == top_k(exact, 20, mask)
            # float32 scores, not float16 ones (BLAS may sum a 100-row block in another order: 1 ulp)
            assert np.allclose(scores, exact[rows], rtol=1e-6, atol=1e-7) and scores.dtype == np.float32
    assert index.dense_passes["first_pass"] >= 60 and index.dense_passes["exact"] == 30  # the narrow mask
    assert isinstance(index._vectors, np.memmap)  # rescoring reads vectors.npy's pages, not a second copy


def test_a_query_runs_its_matrix_products_on_one_blas_thread(tmp_path: Path) -> None:
    """OpenBLAS's workers spin long after a call: a query must not wake them (module docstring, run I)."""
    from threadpoolctl import threadpool_info

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    rng = np.random.default_rng(9)
    vectors = _unit(rng.standard_normal((600, 32)))
    index = _synced(tmp_path, vectors, candidates=100)
    seen: list[set[int]] = []
    inner = index._dense_top

    def watched(*args):  # type: ignore[no-untyped-def]
        seen.append(blas_threads())
        return inner(*args)

    index._dense_top = watched  # type: ignore[method-assign]
    before = blas_threads()
    rows, _ = index.dense_top(vectors[3], 5)
    assert rows[0] == 3 and seen == [{1}]
    assert blas_threads() == before  # the process's own setting is restored after the query


def _near_ties(ties: int, n: int = 300) -> np.ndarray:
    # ``ties`` rows whose scores against e1 differ by 1e-5, far below float16's resolution (2^-11 near 0.5),
    # the others far below: the first pass cannot order the tied rows, so its candidates among them are
    # arbitrary and only the bound check keeps the result exact
    first = np.where(np.arange(n) < n - ties, 0.2, 0.5 + 1e-5 * np.arange(n))
    rest = np.sqrt(1 - first**2)
    angles = np.random.default_rng(9).uniform(0, 2 * np.pi, n)
    return np.stack([first, rest * np.cos(angles), rest * np.sin(angles), np.zeros(n)], axis=1).astype(np.float32)


def test_near_ties_at_the_cut_rescore_every_row_that_could_reach_the_top_k(tmp_path: Path) -> None:
    q = np.array([1, 0, 0, 0], dtype=np.float32)
    index = _synced(tmp_path, _near_ties(60), candidates=10)  # 60 tied rows: rescored, not a full scan
    assert index.dense_top(q, 5)[0] == [299, 298, 297, 296, 295]
    assert index.dense_passes == {"first_pass": 0, "widened": 1, "fallback": 0, "exact": 0}
    index = _synced(tmp_path, _near_ties(300), "all-tied", candidates=10)  # every row tied: the float32 scan
    assert index.dense_top(q, 5)[0] == [299, 298, 297, 296, 295]
    assert index.dense_passes == {"first_pass": 0, "widened": 0, "fallback": 1, "exact": 0}


def test_float16_error_bound_holds_for_the_kernel() -> None:
    import torch

    from knowledge_base.adapters.index import float16_error_bound

    rng = np.random.default_rng(10)
    vectors = _unit(rng.standard_normal((2000, 384)) ** 3)  # heavy-tailed components, some below float16's normal range
    for q in _unit(rng.standard_normal((5, 384))):
        approx = (torch.from_numpy(vectors.astype(np.float16)) @ torch.from_numpy(q.astype(np.float16))).float().numpy()
        assert np.abs(approx - vectors @ q).max() < float16_error_bound(384, 1.0, 1.0) / 2


def test_without_a_vector_the_query_is_encoded_on_a_worker_thread_while_bm25_scores(tmp_path: Path) -> None:
    import threading

    from knowledge_base.adapters.index import rankings

    rng = np.random.default_rng(11)
    vectors = _unit(rng.standard_normal((50, 16)))
    threads: list[str] = []

    class _Encoder(_FixedEmbedder):
        def encode_queries(self, texts: list[str]) -> np.ndarray:
            threads.append(threading.current_thread().name)
            return vectors[[3]]

    index = HybridIndex(tmp_path / "idx", _Encoder(vectors))  # type: ignore[arg-type]
    index.sync([IndexItem(f"p{i}", f"passage {i}", [f"t{i % 7}"]) for i in range(50)])
    encoded = rankings(index, "q", ["t3"], 10)
    given = rankings(index, "q", ["t3"], 10, vector=vectors[3])
    assert encoded == given and encoded.dense[0] == "p3" and encoded.bm25
    assert threads and threads[0] != threading.current_thread().name


def test_an_encode_on_several_threads_runs_first_on_the_calling_thread_then_bm25(tmp_path: Path) -> None:
    """``search.query_threads`` > 1: the encode has both cores to itself; BM25 runs after it, not beside it."""
    import threading

    from knowledge_base.adapters.index import rankings

    rng = np.random.default_rng(12)
    vectors = _unit(rng.standard_normal((50, 16)))
    order: list[tuple[str, str]] = []

    class _Encoder(_FixedEmbedder):
        query_uses_all_cores = True

        def encode_queries(self, texts: list[str]) -> np.ndarray:
            order.append(("encode", threading.current_thread().name))
            return vectors[[3]]

    index = HybridIndex(tmp_path / "idx", _Encoder(vectors))  # type: ignore[arg-type]
    index.sync([IndexItem(f"p{i}", f"passage {i}", [f"t{i % 7}"]) for i in range(50)])
    bm25_scores = index.bm25_scores
    index.bm25_scores = lambda tokens: (order.append(("bm25", threading.current_thread().name)),  # type: ignore[method-assign]
                                        bm25_scores(tokens))[1]
    encoded = rankings(index, "q", ["t3"], 10)
    assert encoded == rankings(index, "q", ["t3"], 10, vector=vectors[3]) and encoded.dense[0] == "p3"
    me = threading.current_thread().name
    assert order[:2] == [("encode", me), ("bm25", me)]


def test_dense_candidates_follow_the_settings(monkeypatch, tmp_path: Path) -> None:
    from opsctl.config import load_settings
    from opsctl.wiring import Container

    monkeypatch.delenv("OPSCTL_CONFIG", raising=False)
    monkeypatch.setenv("OPSCTL_DATA_DIR", str(tmp_path))
    assert Container(load_settings()).kb_index.candidates == 400
    monkeypatch.setenv("OPSCTL_SEARCH__DENSE_CANDIDATES", "0")
    index = Container(load_settings()).kb_index
    assert index.candidates == 0
