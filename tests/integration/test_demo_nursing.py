"""The home-nursing demo step over a seeded hospital: orders booked where items
are offered, a grab contest with one winner, an escalated SOS, intact records."""

from __future__ import annotations

import random
from datetime import date

import pytest
from sqlalchemy import func, select

from clinical_core.domain.time import FixedClock
from clinical_core.persistence.nursing import NursingAlarmRow, NursingOrderRow
from opsctl.demo.context import DemoContext
from opsctl.demo.nursing import step_nursing
from opsctl.demo.run import step_seed
from opsctl.demo.seed import SeedPlan
from opsctl.wiring import Container

pytestmark = pytest.mark.slow


def test_demo_step_runs_a_few_days_of_home_nursing(sqlite_container: Container, clock: FixedClock) -> None:
    ctx = DemoContext(sqlite_container, clock, SeedPlan(200, 4, 3, date(2026, 10, 31)), random.Random(3))
    step_seed(ctx)
    step_nursing(ctx)
    rows = {r["metric"]: r for r in ctx.summary}
    assert rows["上门护士准入"]["value"] > 0 and "不符合被拒" in rows["上门护士准入"]["note"]
    assert rows["护理订单"]["value"] > 0 and "黑名单拒绝 1 次" in rows["护理订单"]["note"]
    winners, contenders = (int(x) for x in str(rows["抢单竞争"]["value"]).split("/"))
    assert winners == 1 and contenders > 1
    completed = rows["护理完成"]["value"]
    assert f"服务记录哈希链完整 {completed}/{completed}" in rows["护理完成"]["note"]
    assert rows["一键呼叫报警"]["value"] >= 1 and "超时升级 1 次" in rows["一键呼叫报警"]["note"]
    with sqlite_container.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(NursingOrderRow)) == rows["护理订单"]["value"]
        statuses = set(uow.session.scalars(select(NursingAlarmRow.status)))
    assert statuses == {"closed"}
