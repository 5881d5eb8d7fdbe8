"""A hundred nurses grab one order at the same moment: exactly one wins.

As in pretix's ``concurrency_tests``, a control run first proves the race is
real: with the database guard swapped for a plain read-then-write UPDATE,
several nurses "win". The barrier makes the first batch of grabbers (as many
as the connection pool lets in at once) all read the open order before any of
them writes, so the interleaving is forced rather than hoped for. PostgreSQL
only: SQLite serialises writers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, select, update

from clinical_core.domain.access import Principal
from clinical_core.domain.errors import Conflict
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import AuditRow
from clinical_core.persistence.nursing import NursingOrderRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import (
    accounts,
    nursing_catalogue,
    nursing_hall,
    nursing_orders,
)
from opsctl.wiring import Container
from tests.support.clinic import ADMIN
from tests.support.nursing import YUEHAI, NursingWorld, book_paid, build_nursing

pytestmark = pytest.mark.slow
GRABBERS = 100
POOL = 20  # connections in flight at once (PostgreSQL's default limit is 100 for the whole server)


@pytest.fixture
def container(pg_container: Container) -> Container:
    return pg_container


def _unguarded_write(uow: UnitOfWork, row_id: int, staff_id: int, now: datetime) -> bool:
    """The naive version: trusts the status read earlier in Python."""
    uow.session.execute(update(NursingOrderRow).where(NursingOrderRow.id == row_id)
                        .values(status="assigned", nurse_id=staff_id, assigned_at=now, assigned_by="grab")
                        .execution_options(synchronize_session=False))
    return True


def _nurses(c: Container, n: int) -> list[Principal]:
    nurses = []
    for i in range(n):
        v = accounts.add_staff_account(c.uow(), ADMIN, accounts.NewStaffAccount(
            username=f"grab.{i:03d}", role=Role.NURSE, name=f"护士{i}", title="护师",
            licence_no=f"3104403{i:08d}", practising_since=date(2015, 1, 1)))
        nursing_catalogue.register_home_nurse(c.uow(), ADMIN, v.staff_id or "", *YUEHAI, radius_km=10)
        nurses.append(Principal(v.public_id, f"grab.{i:03d}", Role.NURSE, staff_id=v.staff_id))
    return nurses


def _race(c: Container, monkeypatch: pytest.MonkeyPatch, write: Callable[..., bool]) -> tuple[list[Any], str]:
    w: NursingWorld = build_nursing(c, c.clock.now())
    order = book_paid(c, w)
    nurses = _nurses(c, GRABBERS)
    engine = create_engine(c.engine.url, pool_size=POOL, max_overflow=0, pool_timeout=120)
    barrier = threading.Barrier(POOL, timeout=10)

    def at_the_same_time(*args: Any) -> bool:
        try:
            barrier.wait()  # the first batch has read "open"; now all of it writes
        except threading.BrokenBarrierError:
            pass  # later grabbers arrive one by one
        return write(*args)

    monkeypatch.setattr(nursing_hall, "_grab_write", at_the_same_time)
    start = threading.Event()
    outcomes: list[Any] = [None] * GRABBERS

    def grab(i: int, nurse: Principal) -> None:
        start.wait()
        try:
            outcomes[i] = nursing_hall.grab_order(UnitOfWork(engine, c.clock, c.vault), nurse, order).nurse_id
        except Conflict as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=grab, args=(i, n)) for i, n in enumerate(nurses)]
    for t in threads:
        t.start()
    start.set()
    for t in threads:
        t.join(120)
    engine.dispose()
    return outcomes, order


def _grab_audits(c: Container, order: str) -> int:
    with c.uow() as uow:
        return len(list(uow.session.scalars(select(AuditRow.id).where(
            AuditRow.entity_id == order, AuditRow.action == "nursing_order.grab"))))


def test_control_without_the_guard_several_nurses_win(container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes, order = _race(container, monkeypatch, _unguarded_write)
    winners = [o for o in outcomes if isinstance(o, str)]
    print(f"control run: {len(winners)} of {GRABBERS} nurses 'won' the same order")
    assert len(winners) > 1, "the race did not happen: the control run proves nothing"
    assert _grab_audits(container, order) == len(winners)


def test_with_the_guard_exactly_one_of_a_hundred_nurses_wins(container: Container,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes, order = _race(container, monkeypatch, nursing_hall._grab_write)
    winners = [o for o in outcomes if isinstance(o, str)]
    losers = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(winners) == 1 and len(losers) == GRABBERS - 1, [type(o) for o in outcomes if not isinstance(o, str)]
    with container.uow() as uow:
        row = nursing_orders.load(uow, order)
        assert row.status == "assigned"
        nurse = uow.session.scalar(select(AuditRow.details).where(
            AuditRow.entity_id == order, AuditRow.action == "nursing_order.grab"))
    assert nurse is not None and nurse["nurse"] == winners[0]
    assert _grab_audits(container, order) == 1
