"""Knowledge-base rules: chunking, fusion, metrics, document metadata."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinical_core.domain.errors import InvalidInput
from knowledge_base.domain.chunking import Section, chunk_sections, pack_sentences, split_sentences
from knowledge_base.domain.documents import DocType, is_stale, make_meta, parse_doc_type
from knowledge_base.domain.ranking import DEFAULT_WEIGHTS, RRF_K, mrr_at_k, ndcg_at_k, recall_at_k, weighted_rrf


def test_sentences_split_on_chinese_end_punctuation_and_keep_closing_quotes() -> None:
    text = "请按时服药。不要自行停药！头晕怎么办？医生说：“先测血压。”然后复诊；记录\n第二行"
    assert split_sentences(text) == ["请按时服药。", "不要自行停药！", "头晕怎么办？", "医生说：“先测血压。”",
                                     "然后复诊；", "记录", "第二行"]


def test_packing_never_cuts_a_sentence_that_fits() -> None:
    sentences = ["甲" * 40 + "。", "乙" * 40 + "。", "丙" * 40 + "。"]
    assert pack_sentences(sentences, 90) == [sentences[0] + sentences[1], sentences[2]]


def test_an_over_long_sentence_is_cut_at_the_limit() -> None:
    parts = pack_sentences(["长" * 250], 100)
    assert [len(p) for p in parts] == [100, 100, 50]


@given(st.lists(st.text(alphabet="降压药头晕停。！？ab ", min_size=1, max_size=60), min_size=1, max_size=20),
       st.integers(min_value=10, max_value=120))
def test_packing_respects_the_limit_and_keeps_every_character(texts: list[str], limit: int) -> None:
    sentences = split_sentences("".join(texts))
    parts = pack_sentences(sentences, limit)
    assert all(len(p) <= limit for p in parts)
    assert "".join(parts).replace(" ", "") == "".join(sentences).replace(" ", "")


def test_a_qa_pair_stays_one_chunk_and_a_long_answer_keeps_its_question() -> None:
    sections = [
        Section("答案一。", heading="用药", question="问题一？", alternatives=("问法一",)),
        Section("句子。" * 100, heading="用药", question="问题二？"),
        Section("普通段落。", heading="饮食"),
    ]
    chunks = chunk_sections(sections, max_chars=100)
    assert chunks[0].text == "答案一。" and chunks[0].question == "问题一？"
    assert "问法一" in chunks[0].search_text and "用药" in chunks[0].search_text
    long_parts = [c for c in chunks if c.question == "问题二？"]
    assert len(long_parts) > 1 and all("问题二？" in c.search_text for c in long_parts)
    assert not any("答案一" in c.text for c in long_parts)  # Q&A boundary respected
    assert chunks[-1].heading == "饮食" and chunks[-1].question == ""
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_weighted_rrf_fuses_by_weighted_reciprocal_rank() -> None:
    fused = weighted_rrf({"bm25": ["a", "b"], "dense": ["b", "c"]}, {"bm25": 1.0, "dense": 1.0}, k=60)
    assert [f.key for f in fused] == ["b", "a", "c"]
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert fused[0].ranks == {"bm25": 2, "dense": 1}


def test_rrf_weights_change_the_order_and_zero_weight_only_reports_the_rank() -> None:
    rankings = {"bm25": ["a", "b"], "dense": ["b", "a"]}
    assert weighted_rrf(rankings, {"bm25": 2.0, "dense": 1.0})[0].key == "a"
    assert weighted_rrf(rankings, {"bm25": 1.0, "dense": 2.0})[0].key == "b"
    only_dense = weighted_rrf({"bm25": ["x", "a"], "dense": ["a", "x"]}, {"bm25": 0.0, "dense": 1.0})
    assert [f.key for f in only_dense] == ["a", "x"] and only_dense[1].ranks["bm25"] == 1


def test_metrics() -> None:
    gains = {"a": 3.0, "b": 1.0}
    assert ndcg_at_k(["a", "b"], gains) == pytest.approx(1.0)
    assert ndcg_at_k(["b", "a"], gains) < 1.0
    assert ndcg_at_k(["x"], gains) == 0.0
    assert mrr_at_k(["x", "a"], {"a"}) == 0.5
    assert mrr_at_k(["x"] * 10 + ["a"], {"a"}) == 0.0
    assert recall_at_k(["a", "x"], {"a", "b"}, 1) == 0.5
    assert recall_at_k(["a", "b"], {"a", "b"}, 5) == 1.0


def test_document_metadata_rules() -> None:
    meta = make_meta(" 心血管内科 ", "问答", "手册", "王芳", date(2027, 1, 1))
    assert meta.specialty == "心血管内科" and meta.doc_type is DocType.FAQ
    with pytest.raises(InvalidInput, match="专科"):
        make_meta("", "faq", None, "王芳", None)
    with pytest.raises(InvalidInput, match="负责人"):
        make_meta("心内科", "faq", None, " ", None)
    with pytest.raises(InvalidInput, match="未知的文档类型"):
        parse_doc_type("novel")


def test_stale_after_the_review_by_date() -> None:
    assert is_stale(date(2026, 11, 1), date(2026, 11, 2))
    assert not is_stale(date(2026, 11, 2), date(2026, 11, 2))
    assert not is_stale(None, date(2030, 1, 1))


def test_default_fusion_matches_the_settings_defaults() -> None:
    from opsctl.config import SearchSettings

    s = SearchSettings()
    assert DEFAULT_WEIGHTS == {"bm25": s.bm25_weight, "dense": s.dense_weight} and s.rrf_k == RRF_K
    # With the defaults, a passage ranked 1st by dense alone beats one ranked 1st by BM25 alone.
    fused = weighted_rrf({"bm25": ["lexical"], "dense": ["semantic"]}, DEFAULT_WEIGHTS)
    assert [f.key for f in fused] == ["semantic", "lexical"]
    # BM25 (weight 0.05 since the held-out tuning) reorders close dense neighbours, not the dense top:
    dense = [f"d{i}" for i in range(1, 9)]
    assert [f.key for f in weighted_rrf({"bm25": ["d2"], "dense": dense}, DEFAULT_WEIGHTS, s.rrf_k)][:2] == ["d1", "d2"]
    lifted = [f.key for f in weighted_rrf({"bm25": ["d7"], "dense": dense}, DEFAULT_WEIGHTS, s.rrf_k)]
    assert lifted.index("d7") < lifted.index("d6")
