"""Tables of the content package: 名医讲堂 lectures and their versions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from clinical_core.persistence.base import Base, IdMixin, PublicIdMixin, fk


class LectureRow(PublicIdMixin, Base):
    """名医讲堂: one lecture; its words live in versions."""

    __tablename__ = "lectures"
    author_staff_id: Mapped[int] = mapped_column(fk("staff.id"), index=True)
    category: Mapped[str] = mapped_column(String(20), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12), index=True)
    latest_version: Mapped[int] = mapped_column(Integer)
    published_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    published_at: Mapped[datetime | None]


class LectureVersionRow(IdMixin, Base):
    """One saved version of a lecture (kept for ever: edits add versions)."""

    __tablename__ = "lecture_versions"
    __table_args__ = (UniqueConstraint("lecture_id", "number"),)
    lecture_id: Mapped[int] = mapped_column(fk("lectures.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(60))
    category: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    audio_path: Mapped[str | None] = mapped_column(String(500))
    audio_codec: Mapped[str | None] = mapped_column(String(20))
    audio_millis: Mapped[int | None] = mapped_column(Integer)
    audio_bytes: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
