"""The scheduler's tables.

- ``apscheduler_jobs``: APScheduler 3's own SQLAlchemy job-store table, declared here with
  exactly the columns ``SQLAlchemyJobStore`` creates, so our Alembic history owns it (the store's
  ``create_all`` then finds it and does nothing).
- ``job_runs``: every run of every job (ours, not APScheduler's): start, end, status, counts, error.
- ``job_leases``: one row per job; a process runs a job only while it holds the lease, taken with a
  conditional UPDATE, so two ``opsctl jobs serve`` processes never run the same job at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from clinical_core.persistence.base import Base, IdMixin, JsonType

APSCHEDULER_TABLE = "apscheduler_jobs"

apscheduler_jobs = Table(
    APSCHEDULER_TABLE, Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)


class JobRunRow(IdMixin, Base):
    """一次任务运行. ``error`` holds the exception's class name and, for domain errors, their
    one-line Chinese message (which never carries personal data); never a traceback."""

    __tablename__ = "job_runs"
    public_id: Mapped[str] = mapped_column(String(40), unique=True, index=True)
    job_name: Mapped[str] = mapped_column(String(80), index=True)
    schedule_id: Mapped[str | None] = mapped_column(String(191))  # APScheduler job id; None for run-now
    trigger: Mapped[str] = mapped_column(String(20))  # schedule | manual | missed
    scheduled_for: Mapped[datetime | None]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), index=True)  # running | succeeded | failed | missed
    counts: Mapped[dict[str, Any]] = mapped_column(JsonType)
    error: Mapped[str | None] = mapped_column(Text)
    holder: Mapped[str] = mapped_column(String(120))  # host:pid of the process that ran it
    __table_args__ = (
        # one schedule fires once per scheduled instant, whichever process claims it
        UniqueConstraint("schedule_id", "scheduled_for", name="uq_job_runs_schedule_fire"),
        Index("ix_job_runs_job_started", "job_name", "started_at"),
    )


class JobLeaseRow(Base):
    """Who runs a job right now, and until when the claim holds if that process dies."""

    __tablename__ = "job_leases"
    job_name: Mapped[str] = mapped_column(String(80), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(120))
    expires_at: Mapped[datetime | None]
