"""Two patients book the last slot at the same moment: exactly one wins.

As in ``test_consultation_concurrency``: the control run first proves the race
is real (with the conditional UPDATE swapped for a plain one, both patients
"win" the same slot); then the guarded run shows exactly one booking. A
barrier makes both transactions pass the slot check before either writes.
PostgreSQL only: SQLite serialises writers, so it cannot show the race.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, update

from clinical_core.domain.errors import Conflict
from clinical_core.domain.time import FixedClock
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.persistence.video import VideoSlotRow, VideoVisitRow
from clinical_core.services import video_booking
from opsctl.wiring import Container
from tests.support.video import VideoClinic, book, build_video_clinic

pytestmark = pytest.mark.slow


@pytest.fixture
def container(pg_container: Container) -> Container:
    return pg_container


def _unguarded(uow: UnitOfWork, slot_pk: int) -> bool:
    uow.session.execute(update(VideoSlotRow).where(VideoSlotRow.id == slot_pk).values(status="booked")
                        .execution_options(synchronize_session=False))
    return True


def _race(c: Container, clock: FixedClock, monkeypatch: pytest.MonkeyPatch,
          take: Callable[[UnitOfWork, int], bool]) -> tuple[VideoClinic, list[Any]]:
    vc = build_video_clinic(c, clock)
    for slot in range(3):  # every slot but the last is gone
        book(c, vc, vc.clinic.patient if slot % 2 else vc.clinic.other_patient, slot)
    barrier = threading.Barrier(2, timeout=30)

    def at_the_same_time(uow: UnitOfWork, slot_pk: int) -> bool:
        barrier.wait()  # both found the slot open; now both write
        return take(uow, slot_pk)

    monkeypatch.setattr(video_booking, "_take_slot", at_the_same_time)
    outcomes: list[Any] = [None, None]

    def attempt(i: int) -> None:
        try:
            outcomes[i] = book(c, vc, (vc.clinic.patient, vc.clinic.other_patient)[i], 3)
        except Conflict as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return vc, outcomes


def _visits_of_last_slot(c: Container, vc: VideoClinic) -> int:
    with c.uow() as uow:
        return uow.session.scalar(select(func.count()).select_from(VideoVisitRow).join(
            VideoSlotRow, VideoSlotRow.id == VideoVisitRow.slot_id).where(
            VideoSlotRow.public_id == vc.slot_ids[3])) or 0


def test_control_without_the_guard_both_patients_win(container: Container, clock: FixedClock,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    vc, outcomes = _race(container, clock, monkeypatch, _unguarded)
    assert all(isinstance(o, str) for o in outcomes), outcomes
    assert _visits_of_last_slot(container, vc) == 2  # the race is real: one slot, two visits


def test_exactly_one_patient_books_the_last_slot(container: Container, clock: FixedClock,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    vc, outcomes = _race(container, clock, monkeypatch, video_booking._take_slot)
    winners = [o for o in outcomes if isinstance(o, str)]
    losers = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert "已被其他患者预约" in str(losers[0])
    assert _visits_of_last_slot(container, vc) == 1
