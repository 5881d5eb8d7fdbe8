"""一键呼叫 (R48): SOS to the alarm queue, acknowledgement, closing with notes,
response times per period and the escalation job."""

from __future__ import annotations

from datetime import timedelta

import pytest

from clinical_core.domain.errors import Forbidden, IllegalTransition, InvalidInput
from clinical_core.domain.nursing_alarm import AlarmStatus
from clinical_core.services import nursing_alarms, nursing_hall
from opsctl.wiring import Container
from tests.support.clinic import ADMIN, OPS
from tests.support.nursing import NursingWorld, book_paid, build_nursing


@pytest.fixture
def w(container: Container) -> NursingWorld:
    return build_nursing(container, container.clock.now())


def test_sos_is_acknowledged_closed_and_timed(container: Container, w: NursingWorld) -> None:
    uow, clock = container.uow, container.clock
    order = book_paid(container, w)
    nursing_hall.grab_order(uow(), w.nurse, order)
    since = clock.now()
    alarm = nursing_alarms.raise_sos(uow(), w.nurse, 22.5231, 113.9421, order)
    assert alarm.status == "raised" and alarm.order_id == order
    queue = nursing_alarms.list_alarms(uow(), ADMIN, open_only=True)
    assert [a.public_id for a in queue] == [alarm.public_id]
    with pytest.raises(IllegalTransition):  # closed only after someone responded
        nursing_alarms.close_alarm(uow(), ADMIN, alarm.public_id, "已处理完毕")
    with pytest.raises(Forbidden):
        nursing_alarms.acknowledge_alarm(uow(), w.senior, alarm.public_id)
    clock.advance(timedelta(seconds=95))  # type: ignore[attr-defined]
    acked = nursing_alarms.acknowledge_alarm(uow(), OPS, alarm.public_id)
    assert acked.response_seconds == 95
    with pytest.raises(InvalidInput):
        nursing_alarms.close_alarm(uow(), ADMIN, alarm.public_id, "")
    closed = nursing_alarms.close_alarm(uow(), ADMIN, alarm.public_id, "保安室已电话联系护士，家属情绪平复，护士安全离开")
    assert closed.status == "closed" and closed.notes and closed.notes.startswith("保安室")
    stats = nursing_alarms.response_times(uow(), ADMIN, since, clock.now() + timedelta(seconds=1))
    assert (stats.alarms, stats.acknowledged, stats.median_seconds, stats.escalated) == (1, 1, 95.0, 0)
    with pytest.raises(Forbidden):  # an order that is not hers
        nursing_alarms.raise_sos(uow(), w.senior, 22.5, 113.9, order)


def test_unacknowledged_alarm_escalates_once_and_counts_from_raising(container: Container, w: NursingWorld) -> None:
    uow, clock = container.uow, container.clock
    since = clock.now()
    alarm = nursing_alarms.raise_sos(uow(), w.nurse, 22.60, 114.05)
    early = nursing_alarms.escalate_unacknowledged(uow(), clock.now() + timedelta(minutes=2))
    assert early.escalated == ()
    clock.advance(timedelta(minutes=4))  # type: ignore[attr-defined]
    result = nursing_alarms.escalate_unacknowledged(uow(), clock.now())
    assert result.escalated == (alarm.public_id,)
    assert nursing_alarms.escalate_unacknowledged(uow(), clock.now()).escalated == ()  # idempotent
    other = nursing_alarms.raise_sos(uow(), w.senior, 22.52, 113.94)
    queue = nursing_alarms.list_alarms(uow(), ADMIN, open_only=True)
    assert [a.status for a in queue] == ["escalated", "raised"] and queue[1].public_id == other.public_id
    clock.advance(timedelta(minutes=1))  # type: ignore[attr-defined]
    acked = nursing_alarms.acknowledge_alarm(uow(), ADMIN, alarm.public_id)
    assert acked.status == AlarmStatus.ACKNOWLEDGED and acked.response_seconds == 300
    stats = nursing_alarms.response_times(uow(), ADMIN, since, clock.now() + timedelta(seconds=1))
    assert (stats.alarms, stats.acknowledged, stats.escalated, stats.max_seconds) == (2, 1, 1, 300.0)
    assert nursing_alarms.unacknowledged_count(uow()) == 1


@pytest.mark.slow
def test_concurrent_escalation_jobs_escalate_each_alarm_once(pg_container: Container) -> None:
    """Four scheduler instances run the job at the same moment (PostgreSQL, SKIP LOCKED)."""
    import threading

    from sqlalchemy import func, select

    from clinical_core.persistence.models import AuditRow

    c = pg_container
    w = build_nursing(c, c.clock.now())
    raised = {nursing_alarms.raise_sos(c.uow(), w.nurse, 22.52, 113.94).public_id for _ in range(20)}
    later = c.clock.now() + timedelta(minutes=5)
    results: list[tuple[str, ...]] = []
    gate = threading.Barrier(4)

    def job() -> None:
        gate.wait()
        results.append(nursing_alarms.escalate_unacknowledged(c.uow(), later).escalated)

    threads = [threading.Thread(target=job) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    escalated = [a for r in results for a in r]
    assert sorted(escalated) == sorted(raised)  # every alarm once, none twice
    with c.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(AuditRow).where(
            AuditRow.action == "nursing_alarm.escalate")) == 20
