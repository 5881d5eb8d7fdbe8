"""The scheduler: APScheduler 3's SQLAlchemy job store and triggers, fired by our loop.

Schedules (which registry job, its trigger, options, misfire grace, coalescing, paused or not)
are APScheduler ``Job`` objects in its SQLAlchemy job store, in the project's database (table
``apscheduler_jobs``, created by our migration). ``opsctl jobs add / pause / resume`` change the
store from any process; the running ``opsctl jobs serve`` sees the change on its next poll.

Firing is ours rather than APScheduler's executor loop, for two reasons:

- the clock is injected (the misfire policy is tested and the demo runs a simulated month);
- a fire is *claimed in the database*: the store row's ``next_run_time`` is advanced with a
  conditional UPDATE (``WHERE next_run_time = <the value we read>``), so of two ``jobs serve``
  processes exactly one runs each fire; the job's lease (``jobs.runner``) keeps a long run from
  overlapping the next one, and ``job_runs``'s unique (schedule, fire time) is the last guard.
"""

from __future__ import annotations

import logging
import pickle
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.base import ConflictingIdError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import datetime_to_utc_timestamp
from sqlalchemy import Engine

from clinical_core.domain.errors import Conflict, InvalidInput, NotFound
from clinical_core.domain.time import SHANGHAI
from jobs import registry as reg
from jobs import runner
from jobs.persistence.models import APSCHEDULER_TABLE
from jobs.policy import MisfirePolicy, decide
from jobs.registry import Cron, Every, JobResources, JobSpec, Trigger

log = logging.getLogger(__name__)

FIRE_REF = "jobs.scheduler:fire"  # the textual callable stored in each APScheduler job
MAX_CATCH_UP = 1000  # fire times computed at most per schedule and tick (a long outage)


def fire(job_name: str, **options: Any) -> None:  # pragma: no cover - never called by APScheduler
    """The callable APScheduler's job state refers to. Our loop reads the job's args instead of
    calling it; it exists so the stored reference resolves."""
    raise RuntimeError("jobs are fired by jobs.scheduler.Scheduler.tick")


@dataclass(frozen=True, slots=True)
class ScheduleView:
    schedule_id: str
    job_name: str
    trigger: str
    next_run_at: datetime | None
    paused: bool
    grace_seconds: int
    coalesce: bool
    options: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TickResult:
    ran: tuple[runner.RunView, ...]
    missed: int


def _trigger(trigger: Trigger, now: datetime) -> IntervalTrigger | CronTrigger:
    if isinstance(trigger, Every):
        return IntervalTrigger(seconds=trigger.seconds, start_date=now + timedelta(seconds=trigger.seconds),
                               timezone=UTC)
    return CronTrigger.from_crontab(trigger.expression, timezone=SHANGHAI)


def _describe(trigger: Any) -> str:
    if isinstance(trigger, IntervalTrigger):
        return Every(int(trigger.interval.total_seconds())).describe()
    if isinstance(trigger, CronTrigger):
        fields = {f.name: str(f) for f in trigger.fields}
        return Cron(" ".join(fields[n] for n in ("minute", "hour", "day", "month", "day_of_week"))).describe()
    return str(trigger)


class Scheduler:
    """Schedules in the job store, and the loop that fires them."""

    def __init__(self, engine: Engine, resources: JobResources, registry: Mapping[str, JobSpec] | None = None,
                 *, holder: str | None = None) -> None:
        self.resources = resources
        self.registry = reg.REGISTRY if registry is None else registry
        self.holder = holder or runner.default_holder()
        # An APScheduler scheduler that is never started: it only owns the store and builds Jobs.
        self._aps = BackgroundScheduler(timezone=UTC)
        self.store = SQLAlchemyJobStore(engine=engine, tablename=APSCHEDULER_TABLE)
        self.store.start(self._aps, "default")  # create_all(checkfirst): our migration made the table

    # -- schedules ---------------------------------------------------------------------------
    def _job(self, schedule_id: str) -> Job:
        job = self.store.lookup_job(schedule_id)
        if job is None:
            raise NotFound(f"排程 {schedule_id} 不存在", hint="用 opsctl jobs list 查看")
        return job

    def add(self, job_name: str, trigger: Trigger | None = None, *, schedule_id: str | None = None,
            options: Mapping[str, Any] | None = None, grace: timedelta | None = None,
            coalesce: bool | None = None) -> ScheduleView:
        """Schedule a registry job (its default trigger and misfire policy unless given)."""
        spec = reg.get(job_name, self.registry)
        trigger = trigger or spec.trigger
        if trigger is None:
            raise InvalidInput(f"任务 {job_name} 没有默认排程，请给出 --every 或 --cron")
        grace = spec.grace if grace is None else grace
        if grace < timedelta(seconds=1):
            raise InvalidInput("容错时间至少 1 秒", field="grace")
        now = self.resources.clock.now()
        aps_trigger = _trigger(trigger, now)
        job = Job(self._aps, id=schedule_id or job_name, func=FIRE_REF, args=(job_name,),
                  kwargs=dict(options or {}), trigger=aps_trigger, executor="default", name=job_name,
                  misfire_grace_time=int(grace.total_seconds()),
                  coalesce=spec.coalesce if coalesce is None else coalesce, max_instances=1,
                  next_run_time=aps_trigger.get_next_fire_time(None, now))
        try:
            self.store.add_job(job)
        except ConflictingIdError:
            raise Conflict(f"排程 {job.id} 已存在", hint="用 --id 另起一个名字") from None
        return self._view(job)

    def ensure_defaults(self) -> list[ScheduleView]:
        """Add each registry job's default schedule if the store has no schedule of that id."""
        added = []
        for spec in self.registry.values():
            if spec.trigger is not None and self.store.lookup_job(spec.name) is None:
                try:
                    added.append(self.add(spec.name))
                except Conflict:  # another serve process added it meanwhile
                    pass
        return added

    def pause(self, schedule_id: str) -> ScheduleView:
        job = self._job(schedule_id)
        job._modify(next_run_time=None)
        self.store.update_job(job)
        return self._view(job)

    def resume(self, schedule_id: str) -> ScheduleView:
        """Resume from now: fire times that fell while paused are not caught up."""
        job = self._job(schedule_id)
        job._modify(next_run_time=job.trigger.get_next_fire_time(None, self.resources.clock.now()))
        self.store.update_job(job)
        return self._view(job)

    def schedules(self) -> list[ScheduleView]:
        return [self._view(j) for j in self.store.get_all_jobs()]

    def _view(self, job: Job) -> ScheduleView:
        return ScheduleView(job.id, job.args[0], _describe(job.trigger), job.next_run_time.astimezone(UTC)
                            if job.next_run_time else None, job.next_run_time is None,
                            int(job.misfire_grace_time or 0), bool(job.coalesce), dict(job.kwargs))

    # -- firing ------------------------------------------------------------------------------
    def _claim(self, job: Job, new_next: datetime | None) -> bool:
        """Advance the schedule from the value we read; False if another process got there first."""
        table = self.store.jobs_t
        old = datetime_to_utc_timestamp(job.next_run_time)
        job._modify(next_run_time=new_next)
        with self.store.engine.begin() as connection:
            result = connection.execute(table.update().where(table.c.id == job.id, table.c.next_run_time == old)
                                        .values(next_run_time=datetime_to_utc_timestamp(new_next),
                                                job_state=pickle.dumps(job.__getstate__(),
                                                                       self.store.pickle_protocol)))
        return result.rowcount == 1

    def tick(self, now: datetime | None = None) -> TickResult:
        """Fire every schedule due at ``now`` (the injected clock by default)."""
        now = now or self.resources.clock.now()
        ran: list[runner.RunView] = []
        missed = 0
        for job in self.store.get_due_jobs(now):
            spec = self.registry.get(job.args[0])
            due = job._get_run_times(now)[-MAX_CATCH_UP:]
            if not due:
                continue
            new_next = job.trigger.get_next_fire_time(due[-1], now)
            if not self._claim(job, new_next):
                continue
            if spec is None:  # a schedule whose job left the registry: keep it, report it
                log.warning("schedule %s names unknown job %s", job.id, job.args[0])
                continue
            decision = decide([t.astimezone(UTC) for t in due], now,
                              MisfirePolicy(timedelta(seconds=job.misfire_grace_time or 0), bool(job.coalesce)))
            if runner.record_missed(self.resources, spec, job.id, decision.missed, self.holder):
                missed += len(decision.missed)
            for fire_time in decision.run:
                view = runner.run(self.resources, spec, options=job.kwargs, schedule_id=job.id,
                                  scheduled_for=fire_time, holder=self.holder, trigger="schedule")
                if view is not None:
                    ran.append(view)
        return TickResult(tuple(ran), missed)

    def serve(self, stop: threading.Event, *, poll_seconds: float = 5.0) -> int:
        """Tick until ``stop`` is set (SIGTERM); a run in progress finishes first. Returns runs made."""
        self.ensure_defaults()
        runs = 0
        while not stop.is_set():
            try:
                runs += len(self.tick().ran)
            except Exception as exc:  # noqa: BLE001 - the database blinked: log, keep serving
                log.error("scheduler tick failed: %s", type(exc).__name__)
            stop.wait(poll_seconds)
        return runs
