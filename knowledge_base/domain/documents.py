"""Knowledge-base documents (专科专病知识库): metadata rules and staleness."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date

from clinical_core.domain.errors import InvalidInput

SUPPORTED_SUFFIXES = (".md", ".markdown", ".txt", ".docx", ".xlsx")


class DocType(enum.StrEnum):
    FAQ = "faq"
    GUIDE = "guide"
    EDUCATION = "education"
    POLICY = "policy"
    OTHER = "other"

    @property
    def label(self) -> str:
        return {"faq": "问答", "guide": "诊疗指引", "education": "健康科普", "policy": "制度流程", "other": "其他"}[self.value]


@dataclass(frozen=True, slots=True)
class DocumentMeta:
    specialty: str
    doc_type: DocType
    source: str
    owner: str
    review_by: date | None


def parse_doc_type(value: str) -> DocType:
    for t in DocType:
        if value in (t.value, t.label):
            return t
    raise InvalidInput(f"未知的文档类型：{value}（可选 faq、guide、education、policy、other）", field="type")


def make_meta(specialty: str | None, doc_type: str | DocType | None, source: str | None, owner: str | None,
              review_by: date | None) -> DocumentMeta:
    if not specialty or not specialty.strip():
        raise InvalidInput("文档必须注明专科（specialty）", field="specialty")
    if not owner or not owner.strip():
        raise InvalidInput("文档必须注明负责人（owner）", field="owner")
    t = doc_type if isinstance(doc_type, DocType) else parse_doc_type(doc_type or DocType.OTHER.value)
    return DocumentMeta(specialty.strip(), t, (source or "").strip(), owner.strip(), review_by)


def is_stale(review_by: date | None, today: date) -> bool:
    """A document past its review-by date is stale (待复核); one without a date never is."""
    return review_by is not None and review_by < today


def check_supported(name: str) -> None:
    if not name.lower().endswith(SUPPORTED_SUFFIXES):
        raise InvalidInput(f"不支持的文件类型：{name}（支持 Markdown、txt、docx、xlsx）", field="path")
