"""UTC datetimes survive both databases, compare correctly, and naive ones are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from clinical_core.persistence.models import AuditRow
from opsctl.wiring import Container


def test_round_trip_and_ordering(container: Container) -> None:
    plus8 = timezone(timedelta(hours=8))
    moments = [datetime(2026, 11, 2, 9, 0, tzinfo=plus8), datetime(2026, 11, 2, 1, 30, 0, 123456, tzinfo=UTC)]
    with container.uow() as uow:
        for i, at in enumerate(moments):
            uow.session.add(AuditRow(at=at, actor="t", action="x", entity_type="t", entity_id=str(i), details={}))
        uow.commit()
    with container.uow() as uow:
        stored = uow.session.scalars(select(AuditRow.at).order_by(AuditRow.at)).all()
        later = uow.session.scalars(select(AuditRow.entity_id).where(
            AuditRow.at > datetime(2026, 11, 2, 1, 15, tzinfo=UTC))).all()
    assert stored == sorted(moments)
    assert all(s.tzinfo is not None and s.utcoffset() == timedelta(0) for s in stored)
    assert later == ["1"]  # 09:00+08:00 is 01:00 UTC, before 01:15 UTC


def test_naive_datetimes_are_refused(container: Container) -> None:
    with pytest.raises(StatementError, match="naive"), container.uow() as uow:
        uow.session.add(AuditRow(at=datetime(2026, 1, 1), actor="t", action="x", entity_type="t",
                                 entity_id="1", details={}))
        uow.commit()
