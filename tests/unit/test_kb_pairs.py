"""Question pairs for domain tuning: parsing, the leak-free held-out split, the retrieval set, triples."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinical_core.domain.errors import InvalidInput
from knowledge_base.domain.pairs import (
    Pair,
    parse_pairs,
    question_groups,
    retrieval_set,
    split_held_out,
    training_triples,
)

CHIP = [
    {"id": "1", "text1": "糖尿病能吃西瓜吗", "text2": "糖尿病人可以吃西瓜吗", "label": "1", "category": "diabetes"},
    {"id": "2", "text1": "糖尿病能吃西瓜吗", "text2": "糖尿病能吃葡萄吗", "label": "0", "category": "diabetes"},
    {"id": "3", "text1": "高血压吃什么药", "text2": "高血压用什么药好", "label": "1", "category": "hypertension"},
]


def test_chip_sts_json_is_read_with_labels() -> None:
    pairs = parse_pairs("CHIP-STS_train.json", json.dumps(CHIP, ensure_ascii=False))
    assert pairs == [Pair("糖尿病能吃西瓜吗", "糖尿病人可以吃西瓜吗", 1), Pair("糖尿病能吃西瓜吗", "糖尿病能吃葡萄吗", 0),
                     Pair("高血压吃什么药", "高血压用什么药好", 1)]


def test_jsonl_and_csv_forms() -> None:
    jsonl = "\n".join(json.dumps({"query1": a, "query2": b, "label": 2}, ensure_ascii=False)
                      for a, b in [("头疼", "头痛怎么办"), ("失眠", "睡不着")])
    assert [p.label for p in parse_pairs("faq.jsonl", jsonl)] == [1, 1]  # graded labels ≥ 1 are positives
    csv_text = "\ufefftext1,text2,label\n降压药能停吗,降压药可以停吗,1\n降压药能停吗,降糖药能停吗,0\n胃疼,胃痛怎么办,\n"
    assert parse_pairs("faq.csv", csv_text) == [Pair("降压药能停吗", "降压药可以停吗", 1),
                                                Pair("降压药能停吗", "降糖药能停吗", 0), Pair("胃疼", "胃痛怎么办", 1)]


@pytest.mark.parametrize(("name", "content"), [
    ("pairs.txt", "a,b"), ("pairs.json", "{}"), ("pairs.json", "[{\"text1\": \"甲\"}]"), ("pairs.csv", "a,b\n1,2\n"),
    ("pairs.json", "[]"), ("pairs.jsonl", "not json"), ("pairs.csv", "text1,text2,label\n甲,乙,是\n"),
])
def test_bad_files_are_clear_errors(name: str, content: str) -> None:
    with pytest.raises(InvalidInput):
        parse_pairs(name, content)


def test_groups_join_every_text_linked_by_any_pair() -> None:
    pairs = [Pair("a", "b", 1), Pair("b", "c", 0), Pair("d", "e", 1)]
    g = question_groups(pairs)
    assert g["a"] == g["b"] == g["c"] != g["d"] == g["e"]


_texts = st.sampled_from([f"问题{i}" for i in range(30)])


@given(st.lists(st.tuples(_texts, _texts, st.integers(0, 1)), min_size=1, max_size=60), st.integers(0, 5))
def test_held_out_split_never_shares_a_text_with_tuning(raw, seed) -> None:
    pairs = [Pair(a, b, label) for a, b, label in raw if a != b]
    if not pairs:
        return
    tune, held = split_held_out(pairs, 0.3, seed)
    assert sorted(tune + held, key=repr) == sorted(pairs, key=repr)
    tune_texts = {t for p in tune for t in (p.text1, p.text2)}
    held_texts = {t for p in held for t in (p.text1, p.text2)}
    assert not tune_texts & held_texts


def test_split_is_deterministic_and_independent_of_file_order() -> None:
    pairs = [Pair(f"问{i}", f"答{i}", 1) for i in range(200)]
    tune, held = split_held_out(pairs, 0.2, 6)
    tune2, held2 = split_held_out(list(reversed(pairs)), 0.2, 6)
    assert set(held) == set(held2) and 20 <= len(held) <= 60
    assert set(split_held_out(pairs, 0.2, 7)[1]) != set(held)
    with pytest.raises(InvalidInput):
        split_held_out(pairs, 1.0)


def test_retrieval_set_queries_have_positives_and_keep_hard_negatives_in_the_corpus() -> None:
    rs = retrieval_set([Pair("q1", "same", 1), Pair("q1", "near miss", 0), Pair("q2", "other", 0)])
    assert list(rs.queries.values()) == ["q1"]  # q2 has no positive partner
    assert sorted(rs.corpus.values()) == ["near miss", "other", "same"]
    (qid,) = rs.qrels
    assert [rs.corpus[d] for d in rs.qrels[qid]] == ["same"]


def test_triples_take_hard_negatives_from_label_zero_partners_round_robin() -> None:
    pairs = [Pair("q", "p1", 1), Pair("q", "p2", 1), Pair("q", "n1", 0), Pair("q", "n2", 0), Pair("r", "p", 1)]
    assert training_triples(pairs) == [("q", "p1", "n1"), ("q", "p2", "n2"), ("r", "p", None)]
