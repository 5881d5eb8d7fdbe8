"""The scheduler against SQLite and PostgreSQL: registry, run recording, failures, pause/resume,
misfire policy with the injected clock, claims between two scheduler processes."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from clinical_core.domain.errors import Conflict, NotFound, RuleViolation
from clinical_core.domain.time import FixedClock
from jobs import registry as reg
from jobs import runner
from jobs.persistence.models import JobLeaseRow, JobRunRow
from jobs.registry import JobSpec, every
from jobs.scheduler import Scheduler
from opsctl.wiring import Container


@dataclass(frozen=True, slots=True)
class Counted:
    touched: int
    ids: tuple[str, ...]


CALLS: list[dict[str, Any]] = []


def _ok(resources: Any, now: Any, options: Any) -> Counted:
    CALLS.append(dict(options))
    return Counted(int(options.get("n", 1)), ("pat_a", "pat_b"))


def _boom(resources: Any, now: Any, options: Any) -> None:
    raise ValueError("张三 13800001234 的记录有问题")  # personal data in an exception message


def _rule(resources: Any, now: Any, options: Any) -> None:
    raise RuleViolation("R99", "测试规则拒绝")


TEST_REGISTRY = {
    "t.ok": JobSpec("t.ok", "测试", _ok, every(minutes=1), grace=timedelta(seconds=30), coalesce=True),
    "t.all": JobSpec("t.all", "测试", _ok, every(minutes=1), grace=timedelta(hours=1), coalesce=False),
    "t.boom": JobSpec("t.boom", "测试", _boom, every(minutes=1)),
    "t.rule": JobSpec("t.rule", "测试", _rule, None),
}


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()


def _runs(container: Container) -> list[JobRunRow]:
    with container.uow() as uow:
        rows = list(uow.session.scalars(select(JobRunRow).order_by(JobRunRow.id)))
        uow.session.expunge_all()
        return rows


def test_registry_names_are_unique_and_every_target_resolves() -> None:
    assert len(reg.REGISTRY) == len(reg._SPECS)
    for spec in reg.REGISTRY.values():
        assert spec.name.count(".") == 1 and spec.description
        assert spec.grace >= timedelta(0)
        if spec.run.__qualname__.count(":") == 1:  # contract("module:function")
            module, _, name = spec.run.__qualname__.partition(":")
            assert callable(getattr(importlib.import_module(module), name))
    assert {"consult.expire_unanswered", "consult.settle_refunds", "rx.settle_refunds",
            "followup.deliver_due"} <= set(reg.REGISTRY)
    with pytest.raises(NotFound):
        reg.get("no.such")


def test_every_registered_job_runs_against_the_real_container(container: Container) -> None:
    """Each job's wiring (ports it asks the container for, options it passes) works on an empty day."""
    for spec in reg.REGISTRY.values():
        if spec.name in ("reports.archive_quarter", "reports.archive_year"):
            continue  # same wiring as reports.archive_month; each builds a whole report (seconds)
        view = runner.run(container, spec)
        assert view is not None and view.status == "succeeded", (spec.name, view.error if view else None)


def test_a_run_is_recorded_with_its_counts(container: Container, clock: FixedClock) -> None:
    view = runner.run(container, TEST_REGISTRY["t.ok"], options={"n": 7})
    assert view is not None and view.status == "succeeded"
    assert view.counts == {"touched": 7, "ids": 2}  # ids counted, never stored
    (row,) = _runs(container)
    assert (row.status, row.trigger, row.started_at, row.finished_at) == ("succeeded", "manual", clock.now(),
                                                                          clock.now())
    with container.uow() as uow:
        assert uow.session.get_one(JobLeaseRow, "t.ok").holder is None  # released


def test_a_failing_job_is_recorded_without_personal_data(container: Container) -> None:
    view = runner.run(container, TEST_REGISTRY["t.boom"])
    assert view is not None and view.status == "failed"
    assert view.error == "ValueError"
    assert "13800001234" not in str(_runs(container)[0].error)
    rule = runner.run(container, TEST_REGISTRY["t.rule"])
    assert rule is not None and rule.error == "RuleViolation: 测试规则拒绝（规则 R99）"
    # the lease was released though the job raised
    assert runner.run(container, TEST_REGISTRY["t.boom"]) is not None


def test_the_scheduler_keeps_running_after_a_failing_job(container: Container, clock: FixedClock) -> None:
    s = Scheduler(container.engine, container, TEST_REGISTRY)
    s.add("t.boom")
    s.add("t.ok")
    clock.advance(timedelta(minutes=1))
    result = s.tick()
    assert sorted(r.status for r in result.ran) == ["failed", "succeeded"]
    clock.advance(timedelta(minutes=1))
    assert len(s.tick().ran) == 2  # both fire again


def test_run_now_refuses_while_another_process_holds_the_lease(container: Container) -> None:
    spec = TEST_REGISTRY["t.ok"]
    assert runner.take_lease(container, spec, "other-host:1")
    with pytest.raises(Conflict):
        runner.run(container, spec, holder="me:2")
    assert CALLS == []


def test_a_dead_holders_lease_lapses(container: Container, clock: FixedClock) -> None:
    spec = TEST_REGISTRY["t.ok"]
    assert runner.take_lease(container, spec, "dead:1")
    clock.advance(spec.lease + timedelta(seconds=1))
    assert runner.run(container, spec, holder="me:2") is not None


def test_pause_and_resume(container: Container, clock: FixedClock) -> None:
    s = Scheduler(container.engine, container, TEST_REGISTRY)
    added = s.add("t.ok")
    assert added.next_run_at == clock.now() + timedelta(minutes=1) and not added.paused
    assert s.pause("t.ok").paused
    clock.advance(timedelta(minutes=5))
    assert s.tick().ran == () and CALLS == []
    resumed = s.resume("t.ok")
    # the next fire on the schedule's grid from now; the five fires while paused are not caught up
    assert not resumed.paused and resumed.next_run_at == clock.now()
    assert [r.status for r in s.tick().ran] == ["succeeded"]
    assert [r.status for r in _runs(container)] == ["succeeded"]
    with pytest.raises(NotFound):
        s.pause("nope")


def test_misfire_coalescing_with_the_injected_clock(container: Container, clock: FixedClock) -> None:
    s = Scheduler(container.engine, container, TEST_REGISTRY)
    s.add("t.ok")  # every minute, grace 30 s, coalesce
    s.add("t.all")  # every minute, grace 1 h, no coalescing
    clock.advance(timedelta(minutes=5))  # five fire times passed while nobody ticked
    result = s.tick()
    by_job: dict[str, list[str]] = {}
    for r in result.ran:
        by_job.setdefault(r.job_name, []).append(r.status)
    assert by_job == {"t.ok": ["succeeded"], "t.all": ["succeeded"] * 5}
    assert result.missed == 4  # t.ok's four fires older than 30 s
    missed = [r for r in _runs(container) if r.status == "missed"]
    assert len(missed) == 1 and missed[0].counts == {"missed": 4}
    assert s.tick().ran == ()  # nothing due twice
    assert {v.schedule_id: v.next_run_at for v in s.schedules()}["t.ok"] == clock.now() + timedelta(minutes=1)


def test_schedules_added_with_options_and_own_policy(container: Container, clock: FixedClock) -> None:
    s = Scheduler(container.engine, container, TEST_REGISTRY)
    view = s.add("t.ok", reg.Every(120), schedule_id="t.ok.fast", options={"n": 3}, grace=timedelta(seconds=1),
                 coalesce=False)
    assert (view.grace_seconds, view.coalesce, view.options) == (1, False, {"n": 3})
    with pytest.raises(Conflict):
        s.add("t.ok", schedule_id="t.ok.fast")
    clock.advance(timedelta(minutes=2))
    (run,) = s.tick().ran
    assert run.counts["touched"] == 3 and run.schedule_id == "t.ok.fast"


def test_two_schedulers_never_run_the_same_fire(container: Container, clock: FixedClock) -> None:
    a = Scheduler(container.engine, container, TEST_REGISTRY, holder="a:1")
    b = Scheduler(container.engine, container, TEST_REGISTRY, holder="b:2")
    a.ensure_defaults()
    b.ensure_defaults()  # idempotent: the same schedules, once
    assert len(a.schedules()) == 3
    for _ in range(3):
        clock.advance(timedelta(minutes=1))
        ran = len(b.tick().ran) + len(a.tick().ran)
        assert ran == 3  # t.ok, t.all, t.boom: once each, by whichever ticked first
    fires = [(r.schedule_id, r.scheduled_for) for r in _runs(container) if r.status != "missed"]
    assert len(fires) == len(set(fires)) == 9


def test_a_registered_job_runs_the_real_service(container: Container) -> None:
    view = runner.run(container, reg.get("consult.expire_unanswered"))
    assert view is not None and view.status == "succeeded"
    assert view.counts == {"closed_unanswered": 0, "refunds_requested": 0, "cancelled_unpaid": 0}
    refunds = runner.run(container, reg.get("rx.settle_refunds"))
    assert refunds is not None and refunds.counts == {"succeeded": 0, "failed": 0}
