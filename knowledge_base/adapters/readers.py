"""Read knowledge-base files into sections: Markdown, plain text, Word (.docx), Excel Q&A sheets.

Markdown may start with YAML front matter (``specialty``, ``type``, ``source``,
``owner``, ``review_by``); Excel sheets need a 问题 and an 答案 column (optional
相似问法 with alternatives separated by ``|`` or new lines, optional 专科).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from clinical_core.domain.errors import InvalidInput
from knowledge_base.domain.chunking import Section

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_QA = re.compile(r"^\s*(?:Q|问|问题)\s*[:：]\s*(.+)$", re.IGNORECASE)
_ANSWER = re.compile(r"^\s*(?:A|答|答案|回答)\s*[:：]\s*(.*)$", re.IGNORECASE)
QUESTION_HEADERS = ("问题", "标准问题", "question", "q")
ANSWER_HEADERS = ("答案", "回答", "标准答案", "answer", "a")
ALT_HEADERS = ("相似问法", "相似问题", "alternatives")


@dataclass
class ParsedDocument:
    title: str
    sections: list[Section]
    meta: dict[str, Any] = field(default_factory=dict)  # from front matter


def read_document(path: Path) -> ParsedDocument:
    suffix = path.suffix.lower()
    if suffix in (".md", ".markdown"):
        return _markdown(path.read_text(encoding="utf-8"), path.stem)
    if suffix == ".txt":
        return _plain(path.read_text(encoding="utf-8"), path.stem)
    if suffix == ".docx":
        return _docx(path)
    if suffix == ".xlsx":
        return _xlsx(path)
    raise InvalidInput(f"不支持的文件类型：{path.name}", field="path")


def _front_matter(text: str) -> tuple[dict[str, Any], str]:
    if not text.startswith("---"):
        return {}, text
    end = text.find("\n---", 3)
    if end < 0:
        return {}, text
    import yaml

    try:
        meta = yaml.safe_load(text[3:end]) or {}
    except yaml.YAMLError as exc:
        raise InvalidInput(f"文档开头的元数据（YAML）格式错误：{exc.__class__.__name__}", field="front_matter") from None
    if not isinstance(meta, dict):
        meta = {}
    return meta, text[end + 4 :].lstrip("\n")


def _lines_to_sections(lines: list[tuple[int, str]], default_title: str) -> tuple[str, list[Section]]:
    """``lines`` are (heading level or 0, text). Q:/A: lines become Q&A sections."""
    title = ""
    path: list[str] = []
    sections: list[Section] = []
    buffer: list[str] = []
    question: str | None = None

    def heading() -> str:
        return " / ".join(path)

    def flush() -> None:
        nonlocal question
        body = "\n".join(buffer).strip()
        if question is not None:
            sections.append(Section(body, heading(), question))
        elif body:
            sections.append(Section(body, heading()))
        buffer.clear()
        question = None

    for level, text in lines:
        if level:
            flush()
            if level == 1 and not title:
                title = text
                continue
            path[:] = path[: max(level - 2, 0)] + [text]
            continue
        q = _QA.match(text)
        if q:
            flush()
            question = q.group(1).strip()
            continue
        a = _ANSWER.match(text)
        buffer.append(a.group(1) if a and question is not None else text)
    flush()
    return title or default_title, sections


def _markdown(text: str, stem: str) -> ParsedDocument:
    meta, body = _front_matter(text)
    lines: list[tuple[int, str]] = []
    for raw in body.splitlines():
        m = _HEADING.match(raw)
        lines.append((len(m.group(1)), m.group(2)) if m else (0, raw))
    title, sections = _lines_to_sections(lines, stem)
    return ParsedDocument(str(meta.pop("title", title)), sections, meta)


def _plain(text: str, stem: str) -> ParsedDocument:
    title, sections = _lines_to_sections([(0, line) for line in text.splitlines()], stem)
    return ParsedDocument(title, sections)


def _docx(path: Path) -> ParsedDocument:
    import docx

    try:
        document = docx.Document(str(path))
    except Exception:  # noqa: BLE001 - python-docx raises assorted zip/xml errors for a broken file
        raise InvalidInput(f"无法读取 Word 文件：{path.name}", field="path") from None
    lines: list[tuple[int, str]] = []
    for p in document.paragraphs:
        style = (p.style.name if p.style is not None else "") or ""
        level = 0
        if style == "Title":
            level = 1
        elif style.startswith("Heading"):
            digits = style.removeprefix("Heading").strip()
            level = min(int(digits) + 1, 6) if digits.isdigit() else 2
        if p.text.strip():
            lines.append((level, p.text.strip()))
    for table in document.tables:  # two-column tables are Q&A
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells]
            if len(cells) >= 2 and cells[0] and cells[1] and cells[0].lower() not in QUESTION_HEADERS:
                lines += [(0, f"问：{cells[0]}"), (0, f"答：{cells[1]}")]
    core = document.core_properties
    title, sections = _lines_to_sections(lines, core.title or path.stem)
    return ParsedDocument(title, sections)


def _xlsx(path: Path) -> ParsedDocument:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception:  # noqa: BLE001 - openpyxl raises assorted zip/xml errors for a broken file
        raise InvalidInput(f"无法读取 Excel 文件：{path.name}", field="path") from None
    sections: list[Section] = []
    try:
        for ws in wb.worksheets:
            rows = ws.iter_rows(values_only=True)
            header = [str(c or "").strip().lower() for c in next(rows, ())]
            q_col = next((i for i, h in enumerate(header) if h in QUESTION_HEADERS), None)
            a_col = next((i for i, h in enumerate(header) if h in ANSWER_HEADERS), None)
            if q_col is None or a_col is None:
                continue
            alt_col = next((i for i, h in enumerate(header) if h in ALT_HEADERS), None)
            for row in rows:
                q = _cell(row, q_col)
                a = _cell(row, a_col)
                if not q or not a:
                    continue
                alts = tuple(s.strip() for s in re.split(r"[|\n]", _cell(row, alt_col)) if s.strip())
                sections.append(Section(a, ws.title if len(wb.worksheets) > 1 else "", q, alts))
    finally:
        wb.close()
    if not sections:
        raise InvalidInput(f"{path.name} 中没有找到「问题」「答案」两列的问答表", field="path")
    return ParsedDocument(path.stem, sections)


def _cell(row: tuple[Any, ...], col: int | None) -> str:
    if col is None or col >= len(row) or row[col] is None:
        return ""
    value = row[col]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()
