"""The demo's push step after the steps it builds on (seed, consultations, WeChat), on a small month."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import func, select

from campaigns.persistence.pushes import DeliveryRow
from clinical_core.domain.time import FixedClock
from opsctl.demo.run import DemoContext, step_consultations, step_seed, step_wechat
from opsctl.demo.pushes import step_pushes
from opsctl.demo.seed import SeedPlan
from opsctl.wiring import Container

pytestmark = pytest.mark.slow


def test_demo_month_of_pushes_is_delivered_once_each_under_the_rules(sqlite_container: Container,
                                                                     clock: FixedClock) -> None:
    ctx = DemoContext(sqlite_container, clock, SeedPlan(120, 30, 7, date(2026, 10, 31)), random.Random(7))
    for step in (step_seed, step_consultations, step_wechat, step_pushes):
        step(ctx)
    rows = {r["metric"]: r for r in ctx.summary}
    assert rows["推送"]["value"] == 9 and "1 条排在免打扰时段" in rows["推送"]["note"]
    with sqlite_container.uow() as uow:
        sent = uow.session.scalar(select(func.count()).select_from(DeliveryRow).where(DeliveryRow.state == "sent"))
        per = Counter(uow.session.scalars(select(DeliveryRow.push_id).where(DeliveryRow.state == "sent")))
        assert uow.session.scalar(select(func.count()).select_from(DeliveryRow)
                                  .where(DeliveryRow.state.in_(["pending", "sending", "unknown"]))) == 0
    assert sent > 0 and rows["推送送达（台账）"]["value"] == sent
    assert "mass_monthly_4" in rows["按规则跳过"]["note"] or "frequency_cap" in rows["按规则跳过"]["note"]
    assert len(per) >= 5
