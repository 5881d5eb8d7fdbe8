"""Knowledge-base tables: documents (metadata, checksum) and their passages.

Vectors and the BM25 index are files under the data directory
(``knowledge_base.adapters.index``), rebuilt from these rows.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clinical_core.persistence.base import Base, PublicIdMixin, fk


class KbDocumentRow(PublicIdMixin, Base):
    """知识库文档."""

    __tablename__ = "kb_documents"
    path: Mapped[str] = mapped_column(String(500), unique=True)  # absolute source path: the re-ingest key
    title: Mapped[str] = mapped_column(String(200))
    specialty: Mapped[str] = mapped_column(String(60), index=True)
    doc_type: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(200), default="")
    owner: Mapped[str] = mapped_column(String(60))
    review_by: Mapped[date | None] = mapped_column(Date)
    checksum: Mapped[str] = mapped_column(String(64))  # sha256 of the file bytes
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    ingested_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class KbChunkRow(PublicIdMixin, Base):
    """知识库段落: one searchable passage of a document."""

    __tablename__ = "kb_chunks"
    __table_args__ = (Index("ix_kb_chunks_document_position", "document_id", "position", unique=True),)
    document_id: Mapped[int] = mapped_column(fk("kb_documents.id"))
    position: Mapped[int] = mapped_column(Integer)
    heading: Mapped[str] = mapped_column(String(200), default="")
    question: Mapped[str] = mapped_column(Text, default="")
    alternatives: Mapped[str] = mapped_column(Text, default="")  # other phrasings, one a line
    text: Mapped[str] = mapped_column(Text)
    tokens: Mapped[str] = mapped_column(Text)  # jieba tokens joined by spaces (BM25 input)
