"""Reading knowledge-base files: Markdown with front matter, text, real .docx and .xlsx files."""

from __future__ import annotations

from pathlib import Path

import docx
import pytest
from openpyxl import Workbook

from clinical_core.domain.errors import InvalidInput
from knowledge_base.adapters.readers import read_document
from knowledge_base.adapters.tokens import tokenize

MD = """---
specialty: 心血管内科
type: faq
owner: 王芳
review_by: 2027-06-30
---
# 高血压用药

## 降压药
问：降压药吃了头晕还能停吗？
答：请不要自行停药。
及时联系医生。

## 饮食
每日食盐少于5克。
"""


def test_markdown_front_matter_headings_and_qa(tmp_path: Path) -> None:
    path = tmp_path / "htn.md"
    path.write_text(MD, encoding="utf-8")
    doc = read_document(path)
    assert doc.title == "高血压用药"
    assert doc.meta["specialty"] == "心血管内科" and str(doc.meta["review_by"]) == "2027-06-30"
    qa, prose = doc.sections
    assert qa.question == "降压药吃了头晕还能停吗？" and qa.heading == "降压药"
    assert qa.text == "请不要自行停药。\n及时联系医生。"
    assert prose.heading == "饮食" and prose.question == "" and "食盐" in prose.text


def test_word_document_headings_paragraphs_and_qa_table(tmp_path: Path) -> None:
    d = docx.Document()
    d.add_heading("糖尿病随访指引", level=0)
    d.add_heading("血糖监测", level=1)
    d.add_paragraph("空腹血糖应每周测量两次。")
    table = d.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "问题", "答案"
    table.cell(1, 0).text, table.cell(1, 1).text = "血糖高可以吃水果吗？", "血糖平稳时适量。"
    path = tmp_path / "dm.docx"
    d.save(path)
    doc = read_document(path)
    assert doc.title == "糖尿病随访指引"
    assert doc.sections[0].heading == "血糖监测" and "空腹血糖" in doc.sections[0].text
    assert doc.sections[-1].question == "血糖高可以吃水果吗？" and doc.sections[-1].text == "血糖平稳时适量。"


def test_excel_qa_sheet_with_alternative_phrasings(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["问题", "答案", "相似问法"])
    ws.append(["降压药能停吗？", "不要自行停药。", "血压正常了还吃药吗|降压药可以减量吗"])
    ws.append(["", "没有问题的行被跳过", ""])
    path = tmp_path / "faq.xlsx"
    wb.save(path)
    (section,) = read_document(path).sections
    assert section.question == "降压药能停吗？"
    assert section.alternatives == ("血压正常了还吃药吗", "降压药可以减量吗")


def test_excel_without_qa_columns_is_refused(tmp_path: Path) -> None:
    wb = Workbook()
    wb.active.append(["姓名", "科室"])
    path = tmp_path / "bad.xlsx"
    wb.save(path)
    with pytest.raises(InvalidInput, match="问答表"):
        read_document(path)


def test_broken_office_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.docx"
    path.write_bytes(b"not a zip")
    with pytest.raises(InvalidInput, match="无法读取 Word"):
        read_document(path)


def test_chinese_tokens_come_from_jieba_not_whitespace() -> None:
    tokens = tokenize("降压药吃了头晕，还能停吗？")
    assert "降压药" in tokens and "头晕" in tokens
    assert "，" not in tokens and "？" not in tokens
