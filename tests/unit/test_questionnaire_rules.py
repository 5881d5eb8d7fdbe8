"""Questionnaire definitions and answer validation (pure)."""

from __future__ import annotations

import pytest

from campaigns.domain.questionnaire import parse_definition, validate_answers
from clinical_core.domain.errors import InvalidInput

DEF = parse_definition({"title": "问卷", "questions": [
    {"key": "w", "kind": "number", "title": "体重", "min": 20, "max": 300, "unit": "kg"},
    {"key": "s", "kind": "single", "title": "吸烟", "options": ["是", "否"]},
    {"key": "m", "kind": "multiple", "title": "症状", "options": ["头晕", "胸闷", "无"], "required": False},
    {"key": "t", "kind": "text", "title": "备注", "required": False, "max_length": 10},
]})


def test_definition_round_trips() -> None:
    assert parse_definition(DEF.as_dict()) == DEF


@pytest.mark.parametrize("data, field", [
    ({"title": "", "questions": [{"kind": "text", "title": "x"}]}, "title"),
    ({"title": "t", "questions": []}, "questions"),
    ({"title": "t", "questions": [{"key": "a", "kind": "text", "title": "x"},
                                  {"key": "a", "kind": "text", "title": "y"}]}, "questions[1].key"),
    ({"title": "t", "questions": [{"kind": "date", "title": "x"}]}, "questions[0].kind"),
    ({"title": "t", "questions": [{"kind": "single", "title": "x", "options": ["a", "a"]}]}, "questions[0].options"),
    ({"title": "t", "questions": [{"kind": "number", "title": "x", "min": 5, "max": 1}]}, "questions[0].min"),
])
def test_bad_definitions_name_the_problem(data: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_definition(data)
    assert error.value.field == field


def test_answers() -> None:
    assert validate_answers(DEF, {"w": 70, "s": "否", "m": ["无"], "t": " 好 "}) == {
        "w": 70.0, "s": "否", "m": ["无"], "t": "好"}
    assert validate_answers(DEF, {"w": 20, "s": "是"}) == {"w": 20.0, "s": "是"}  # range inclusive
    for answers, field in [({"w": 19.9, "s": "是"}, "answers.w"), ({"w": True, "s": "是"}, "answers.w"),
                           ({"w": float("nan"), "s": "是"}, "answers.w"), ({"w": 70}, "answers.s"),
                           ({"w": 70, "s": ["是"]}, "answers.s"), ({"w": 70, "s": "是", "m": "无"}, "answers.m"),
                           ({"w": 70, "s": "是", "t": "x" * 11}, "answers.t"), ({"w": 70, "s": "是", "z": 1}, "answers.z")]:
        with pytest.raises(InvalidInput) as error:
            validate_answers(DEF, answers)
        assert error.value.field == field, answers
