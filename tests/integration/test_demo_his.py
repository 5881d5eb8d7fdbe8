"""The integrated (HIS) mode demo step over a seeded hospital after a few days of prescriptions: the
catalogue sync's difference, and one prescription through the HIS with a lost charge answer settled
once by the reconciliation job."""

from __future__ import annotations

import random
from datetime import date

import pytest
from sqlalchemy import func, select

from clinical_core.domain.time import FixedClock
from clinical_core.persistence.his_rx import HisRxOperationRow
from clinical_core.persistence.prescription import RxPaymentRow
from opsctl.demo.context import DemoContext
from opsctl.demo.his_mode import step_his_integration
from opsctl.demo.prescriptions import step_prescriptions
from opsctl.demo.run import step_seed
from opsctl.demo.seed import SeedPlan
from opsctl.wiring import Container

pytestmark = pytest.mark.slow


def test_demo_step_syncs_the_catalogue_and_settles_a_lost_charge(sqlite_container: Container,
                                                                 clock: FixedClock) -> None:
    c = sqlite_container
    ctx = DemoContext(c, clock, SeedPlan(200, 3, 3, date(2026, 10, 31)), random.Random(3))
    step_seed(ctx)
    step_prescriptions(ctx)
    step_his_integration(ctx)
    rows = {r["metric"]: r for r in ctx.summary}
    assert "新增 1，变更 1，停用 1" in rows["HIS 药品目录同步"]["note"]
    assert rows["集成模式处方（HIS）"]["value"] == "已调配"
    assert "本地仍为「approved」，核对任务找回 1 笔并只记账一次" in rows["集成模式处方（HIS）"]["note"]
    with c.uow() as uow:
        kinds = dict(uow.session.execute(select(HisRxOperationRow.kind, func.count()).where(
            HisRxOperationRow.status == "succeeded").group_by(HisRxOperationRow.kind)).all())
        his_paid = uow.session.scalar(select(func.count()).select_from(RxPaymentRow).where(
            RxPaymentRow.out_trade_no.like("SF%")))
    assert kinds == {"register": 1, "charge": 1, "dispense": 1} and his_paid == 1
    assert c.his_rx.carried_out("charge") == 1
