"""Running one job: take its lease, record the run, call it, record the outcome.

A job that raises is recorded as ``failed`` (its exception class and, for domain errors, the
one-line Chinese message, never a traceback or its arguments) and the caller carries on.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from clinical_core.domain.errors import Conflict, DomainError
from clinical_core.domain.ids import new_public_id
from clinical_core.persistence.uow import UnitOfWork
from jobs.persistence.models import JobLeaseRow, JobRunRow
from jobs.registry import JobResources, JobSpec, counts_of

log = logging.getLogger(__name__)


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


@dataclass(frozen=True, slots=True)
class RunView:
    run_id: str
    job_name: str
    schedule_id: str | None
    trigger: str
    scheduled_for: datetime | None
    started_at: datetime
    finished_at: datetime | None
    status: str
    counts: dict[str, Any]
    error: str | None
    holder: str


def _view(row: JobRunRow) -> RunView:
    return RunView(row.public_id, row.job_name, row.schedule_id, row.trigger, row.scheduled_for, row.started_at,
                   row.finished_at, row.status, dict(row.counts or {}), row.error, row.holder)


def describe_error(exc: BaseException) -> str:
    """What the run table keeps of an exception: no traceback, no arguments of non-domain errors
    (an IntegrityError's text quotes row values, which may be personal data)."""
    if isinstance(exc, DomainError):
        return f"{type(exc).__name__}: {exc.message}"[:500]
    return type(exc).__name__


# -- leases ----------------------------------------------------------------------------------

def take_lease(resources: JobResources, spec: JobSpec, holder: str) -> bool:
    """Claim the job for ``holder`` until now + lease; False when another live process has it."""
    uow = resources.uow()
    now = resources.clock.now()
    with uow:  # the row exists after a job's first run; creating it is the rare path
        if uow.session.get(JobLeaseRow, spec.name) is None:
            uow.session.add(JobLeaseRow(job_name=spec.name, holder=None, expires_at=None))
            try:
                uow.commit()
            except IntegrityError:  # another process created it meanwhile
                pass
    with uow:
        taken = uow.session.execute(
            update(JobLeaseRow).where(
                JobLeaseRow.job_name == spec.name,
                or_(JobLeaseRow.holder.is_(None), JobLeaseRow.expires_at < now, JobLeaseRow.holder == holder))
            .values(holder=holder, expires_at=now + spec.lease)).rowcount
        uow.commit()
    return bool(taken)


def _release(uow: UnitOfWork, spec: JobSpec, holder: str) -> None:
    uow.session.execute(update(JobLeaseRow).where(JobLeaseRow.job_name == spec.name, JobLeaseRow.holder == holder)
                        .values(holder=None, expires_at=None))


def release_lease(resources: JobResources, spec: JobSpec, holder: str) -> None:
    uow = resources.uow()
    with uow:
        _release(uow, spec, holder)
        uow.commit()


# -- runs ------------------------------------------------------------------------------------

def record_missed(resources: JobResources, spec: JobSpec, schedule_id: str, missed: tuple[datetime, ...],
                  holder: str) -> RunView | None:
    """One row for fire times dropped by the misfire policy (the latest one names it)."""
    if not missed:
        return None
    uow = resources.uow()
    now = resources.clock.now()
    with uow:
        row = JobRunRow(public_id=new_public_id("run"), job_name=spec.name, schedule_id=schedule_id,
                        trigger="missed", scheduled_for=missed[-1], started_at=now, finished_at=now,
                        status="missed", counts={"missed": len(missed)}, error=None, holder=holder)
        uow.session.add(row)
        try:
            uow.commit()
        except IntegrityError:  # another scheduler recorded the same miss
            return None
        return _view(row)


def run(resources: JobResources, spec: JobSpec, *, options: Mapping[str, Any] | None = None,
        schedule_id: str | None = None, scheduled_for: datetime | None = None, holder: str | None = None,
        trigger: str = "manual") -> RunView | None:
    """Run ``spec`` once and record it. None when the same fire was already run by another
    process. Raises Conflict (run-now) when another process holds the job's lease; a scheduled
    fire that finds the lease taken is recorded as ``skipped``."""
    holder = holder or default_holder()
    if not take_lease(resources, spec, holder):
        if trigger == "manual":
            raise Conflict(f"任务 {spec.name} 正在另一进程中运行", hint="稍后再试，或用 opsctl jobs history 查看")
        return _record_skipped(resources, spec, schedule_id, scheduled_for, holder)
    released = False
    try:
        uow = resources.uow()
        with uow:
            row = JobRunRow(public_id=new_public_id("run"), job_name=spec.name, schedule_id=schedule_id,
                            trigger=trigger, scheduled_for=scheduled_for, started_at=resources.clock.now(),
                            finished_at=None, status="running", counts={}, error=None, holder=holder)
            uow.session.add(row)
            try:
                uow.commit()
            except IntegrityError:  # this fire is already recorded by another scheduler
                return None
            run_pk = row.id
        status, counts, error = "succeeded", {}, None
        try:
            counts = counts_of(spec.run(resources, resources.clock.now(), {**spec.options, **(options or {})}))
        except Exception as exc:  # noqa: BLE001 - a failing job is recorded; the scheduler keeps running
            status, error = "failed", describe_error(exc)
            log.warning("job %s run %s failed: %s", spec.name, row.public_id, type(exc).__name__)
        with uow:  # the outcome and the lease's release in one transaction
            uow.session.execute(update(JobRunRow).where(JobRunRow.id == run_pk).values(
                status=status, counts=counts, error=error, finished_at=resources.clock.now()))
            _release(uow, spec, holder)
            uow.commit()
            released = True
            return _view(uow.session.get_one(JobRunRow, run_pk))
    finally:
        if not released:
            release_lease(resources, spec, holder)


def _record_skipped(resources: JobResources, spec: JobSpec, schedule_id: str | None,
                    scheduled_for: datetime | None, holder: str) -> RunView | None:
    uow = resources.uow()
    now = resources.clock.now()
    with uow:
        row = JobRunRow(public_id=new_public_id("run"), job_name=spec.name, schedule_id=schedule_id,
                        trigger="schedule", scheduled_for=scheduled_for, started_at=now, finished_at=now,
                        status="skipped", counts={}, error="上一次运行尚未结束（租约被其他进程持有）", holder=holder)
        uow.session.add(row)
        try:
            uow.commit()
        except IntegrityError:
            return None
        return _view(row)


def history(resources: JobResources, *, job_name: str | None = None, status: str | None = None,
            limit: int = 50) -> list[RunView]:
    uow = resources.uow()
    with uow:
        query = select(JobRunRow).order_by(JobRunRow.started_at.desc(), JobRunRow.id.desc()).limit(limit)
        if job_name:
            query = query.where(JobRunRow.job_name == job_name)
        if status:
            query = query.where(JobRunRow.status == status)
        return [_view(r) for r in uow.session.scalars(query)]
