"""Questionnaires (随访问卷) defined by doctors: the definition's rules and answer validation (pure).

Question kinds: single choice, multiple choice, number (with an optional range and unit) and free
text. Every error names the question (its key and title) so a patient's form can point at it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from clinical_core.domain.errors import InvalidInput

MAX_QUESTIONS = 60
MAX_OPTIONS = 20
MAX_TEXT_CHARS = 2000
TITLE_CHARS = 100


class QuestionKind(StrEnum):
    SINGLE = "single"
    MULTIPLE = "multiple"
    NUMBER = "number"
    TEXT = "text"

    @property
    def label(self) -> str:
        return {"single": "单选", "multiple": "多选", "number": "数值", "text": "文本"}[self]


@dataclass(frozen=True, slots=True)
class Question:
    key: str
    kind: QuestionKind
    title: str
    required: bool = True
    options: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    unit: str | None = None
    max_length: int = 500

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"key": self.key, "kind": self.kind.value, "title": self.title,
                                "required": self.required}
        if self.options:
            data["options"] = list(self.options)
        if self.kind is QuestionKind.NUMBER:
            data.update(min=self.minimum, max=self.maximum, unit=self.unit)
        if self.kind is QuestionKind.TEXT:
            data["max_length"] = self.max_length
        return data


@dataclass(frozen=True, slots=True)
class Definition:
    title: str
    questions: tuple[Question, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"title": self.title, "questions": [q.as_dict() for q in self.questions]}

    def question(self, key: str) -> Question:
        for q in self.questions:
            if q.key == key:
                return q
        raise KeyError(key)


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{where}的取值范围必须是数字", field=where)
    return float(value)


def parse_definition(data: Mapping[str, Any]) -> Definition:
    """A doctor's definition (JSON/YAML shaped) → Definition, or InvalidInput naming the problem."""
    if not isinstance(data, Mapping):
        raise InvalidInput("问卷定义应为对象（含 title 与 questions）")
    title = str(data.get("title") or "").strip()
    if not title or len(title) > TITLE_CHARS:
        raise InvalidInput(f"问卷标题不能为空且不超过 {TITLE_CHARS} 字", field="title")
    raw = data.get("questions")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_QUESTIONS:
        raise InvalidInput(f"问卷应有 1 至 {MAX_QUESTIONS} 个问题", field="questions")
    questions: list[Question] = []
    seen: set[str] = set()
    for index, item in enumerate(raw, start=1):
        where = f"第 {index} 题"
        if not isinstance(item, Mapping):
            raise InvalidInput(f"{where}应为对象", field=f"questions[{index - 1}]")
        key = str(item.get("key") or f"q{index}").strip()
        if not key.replace("_", "").isalnum() or len(key) > 40 or key in seen:
            raise InvalidInput(f"{where}的编号「{key}」无效或重复（字母、数字、下划线）", field=f"questions[{index - 1}].key")
        seen.add(key)
        try:
            kind = QuestionKind(str(item.get("kind")))
        except ValueError:
            raise InvalidInput(f"{where}的题型应为 single、multiple、number 或 text",
                               field=f"questions[{index - 1}].kind") from None
        qtitle = str(item.get("title") or "").strip()
        if not qtitle or len(qtitle) > 200:
            raise InvalidInput(f"{where}的题目不能为空且不超过 200 字", field=f"questions[{index - 1}].title")
        options: tuple[str, ...] = ()
        if kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
            opts = item.get("options")
            if (not isinstance(opts, list) or not 2 <= len(opts) <= MAX_OPTIONS
                    or len({str(o).strip() for o in opts}) != len(opts) or any(not str(o).strip() for o in opts)):
                raise InvalidInput(f"{where}（{qtitle}）应有 2 至 {MAX_OPTIONS} 个互不相同的选项",
                                   field=f"questions[{index - 1}].options")
            options = tuple(str(o).strip() for o in opts)
        minimum = _number(item.get("min"), where) if kind is QuestionKind.NUMBER else None
        maximum = _number(item.get("max"), where) if kind is QuestionKind.NUMBER else None
        if minimum is not None and maximum is not None and minimum > maximum:
            raise InvalidInput(f"{where}（{qtitle}）的最小值大于最大值", field=f"questions[{index - 1}].min")
        max_length = int(item.get("max_length") or 500)
        if not 1 <= max_length <= MAX_TEXT_CHARS:
            raise InvalidInput(f"{where}的字数上限应在 1 至 {MAX_TEXT_CHARS} 之间",
                               field=f"questions[{index - 1}].max_length")
        unit = item.get("unit")
        questions.append(Question(key, kind, qtitle, bool(item.get("required", True)), options, minimum, maximum,
                                  str(unit)[:20] if unit else None, max_length))
    return Definition(title, tuple(questions))


def validate_answers(definition: Definition, answers: Mapping[str, Any]) -> dict[str, Any]:
    """A patient's answers, checked and normalised (choices as option text, numbers as float)."""
    if not isinstance(answers, Mapping):
        raise InvalidInput("答案应为对象：{题目编号: 答案}", field="answers")
    unknown = sorted(set(answers) - {q.key for q in definition.questions})
    if unknown:
        raise InvalidInput(f"问卷中没有编号为「{unknown[0]}」的题目", field=f"answers.{unknown[0]}")
    clean: dict[str, Any] = {}
    for q in definition.questions:
        value = answers.get(q.key)
        where, field = f"「{q.title}」（{q.key}）", f"answers.{q.key}"
        if value is None or value == "" or value == []:
            if q.required:
                raise InvalidInput(f"请回答必答题{where}", field=field)
            continue
        if q.kind is QuestionKind.SINGLE:
            if not isinstance(value, str) or value not in q.options:
                raise InvalidInput(f"{where}只能从给定选项中选一项", field=field)
            clean[q.key] = value
        elif q.kind is QuestionKind.MULTIPLE:
            if (not isinstance(value, list) or any(not isinstance(v, str) or v not in q.options for v in value)
                    or len(set(value)) != len(value)):
                raise InvalidInput(f"{where}应从给定选项中选择一项或多项（不重复）", field=field)
            clean[q.key] = [o for o in q.options if o in value]
        elif q.kind is QuestionKind.NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise InvalidInput(f"{where}应填写数字", field=field)
            if q.minimum is not None and value < q.minimum or q.maximum is not None and value > q.maximum:
                low = "" if q.minimum is None else f"{q.minimum:g}"
                high = "" if q.maximum is None else f"{q.maximum:g}"
                raise InvalidInput(f"{where}应在 {low}～{high}{q.unit or ''} 之间", field=field)
            clean[q.key] = float(value)
        else:
            if not isinstance(value, str):
                raise InvalidInput(f"{where}应填写文字", field=field)
            text = value.strip()
            if len(text) > q.max_length:
                raise InvalidInput(f"{where}不能超过 {q.max_length} 字", field=field)
            clean[q.key] = text
    return clean
