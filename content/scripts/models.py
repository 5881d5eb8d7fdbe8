"""Talk-script tables: scripts, their versions, and usage events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from clinical_core.persistence.base import Base, IdMixin, JsonType, PublicIdMixin, fk


class ScriptRow(PublicIdMixin, Base):
    """话术."""

    __tablename__ = "scripts"
    title: Mapped[str] = mapped_column(String(120))
    channel: Mapped[str] = mapped_column(String(10), index=True)  # 私聊 | 社群 | 朋友圈 | 活动
    specialty: Mapped[str] = mapped_column(String(60), index=True)
    tags: Mapped[list[Any]] = mapped_column(JsonType)
    status: Mapped[str] = mapped_column(String(20), index=True)
    latest_version: Mapped[int] = mapped_column(Integer)
    approved_version: Mapped[int | None] = mapped_column(Integer)  # the version agents see
    usage_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ScriptVersionRow(IdMixin, Base):
    """话术版本: body, alternative phrasings, lint result, review."""

    __tablename__ = "script_versions"
    __table_args__ = (Index("ix_script_versions_script_version", "script_id", "version", unique=True),)
    script_id: Mapped[int] = mapped_column(fk("scripts.id"))
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    alternatives: Mapped[list[Any]] = mapped_column(JsonType)
    findings: Mapped[list[Any]] = mapped_column(JsonType)
    author: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime]
    reviewer: Mapped[str | None] = mapped_column(String(80))
    review_note: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None]


class ScriptUsageRow(IdMixin, Base):
    """话术使用记录: an agent copied or sent a script."""

    __tablename__ = "script_usage"
    script_id: Mapped[int] = mapped_column(fk("scripts.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(10))  # copied | sent
    actor: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime]
