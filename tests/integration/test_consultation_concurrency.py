"""Two doctors claim one question at the same moment: exactly one wins.

As in pretix's ``concurrency_tests``, the control run first proves the race is
real: with the database guard swapped for a plain read-then-write UPDATE, both
doctors "win". Only then does the guarded run mean something. A barrier makes
both transactions read the waiting order before either writes, so the
interleaving is forced rather than hoped for. PostgreSQL only: SQLite
serialises writers, so it cannot show the race.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select, update

from clinical_core.adapters.payment_sandbox import SandboxPaymentGateway
from clinical_core.domain.consultation import ServiceKind
from clinical_core.domain.errors import Conflict
from clinical_core.domain.time import FixedClock
from clinical_core.persistence.consultation import ConsultationRow
from clinical_core.persistence.models import AuditRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import consult_settings, consultation
from opsctl.wiring import Container
from tests.support.clinic import OPS, build_clinic

pytestmark = pytest.mark.slow


@pytest.fixture
def container(pg_container: Container) -> Container:
    """Races need PostgreSQL's row locks: these tests run on PostgreSQL only."""
    return pg_container


def _unguarded_write(uow: UnitOfWork, row_id: int, staff_id: int, now: datetime) -> bool:
    """The naive version: trusts the status read earlier in Python."""
    uow.session.execute(update(ConsultationRow).where(ConsultationRow.id == row_id)
                        .values(status="claimed", doctor_id=staff_id, claimed_at=now)
                        .execution_options(synchronize_session=False))
    return True


def _race(container: Container, clock: FixedClock, monkeypatch: pytest.MonkeyPatch,
          write: Callable[..., bool]) -> tuple[list[Any], str]:
    clinic = build_clinic(container)
    gateway = SandboxPaymentGateway(clock)
    service = consult_settings.configure_service(container.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=0, department_code="CARD")).public_id
    order = consultation.create_consultation(container.uow(), clinic.patient, gateway, service,
                                             "胸闷一周，想咨询是否复诊").consultation.public_id
    barrier = threading.Barrier(2, timeout=30)

    def at_the_same_time(*args: Any) -> bool:
        barrier.wait()  # both have read "waiting"; now both write
        return write(*args)

    monkeypatch.setattr(consultation, "_claim_write", at_the_same_time)
    outcomes: list[Any] = [None, None]

    def claim(i: int, who: Any) -> None:
        try:
            outcomes[i] = consultation.claim_consultation(container.uow(), who, order).doctor_id
        except Conflict as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=claim, args=(i, d)) for i, d in enumerate((clinic.doctor_a, clinic.doctor_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes, order


def test_control_without_the_guard_both_doctors_win(container: Container, clock: FixedClock,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes, order = _race(container, clock, monkeypatch, _unguarded_write)
    assert all(isinstance(o, str) for o in outcomes) and outcomes[0] != outcomes[1]  # the race is real
    with container.uow() as uow:
        claims = list(uow.session.scalars(select(AuditRow.actor).where(
            AuditRow.entity_id == order, AuditRow.action == "consultation.claim")))
    assert len(claims) == 2


def test_with_the_guard_exactly_one_doctor_wins(container: Container, clock: FixedClock,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes, order = _race(container, clock, monkeypatch, consultation._claim_write)
    winners = [o for o in outcomes if isinstance(o, str)]
    losers = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert "已被其他医生接诊" in str(losers[0])
    with container.uow() as uow:
        row = consultation._load(uow, order)
        assert row.status == "claimed"
        claims = list(uow.session.scalars(select(AuditRow.actor).where(
            AuditRow.entity_id == order, AuditRow.action == "consultation.claim")))
    assert len(claims) == 1
