"""The demo's live-announcement step after the steps it builds on, on a small month: every
stream's push reaches its department's followers once through the ledger, the moved stream's
old time is never sent, the cancelled one's push is cancelled, and the group tasks are posted."""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import select

from campaigns.persistence.pushes import DeliveryRow, PushRow
from clinical_core.domain.time import FixedClock
from content.persistence.models import LiveAnnouncementRow
from opsctl.demo.live_streams import step_live_announcements
from opsctl.demo.run import DemoContext, step_consultations, step_seed, step_wechat
from opsctl.demo.seed import SeedPlan
from opsctl.wiring import Container

pytestmark = pytest.mark.slow


def test_demo_month_of_live_announcements(sqlite_container: Container, clock: FixedClock) -> None:
    ctx = DemoContext(sqlite_container, clock, SeedPlan(120, 30, 7, date(2026, 10, 31)), random.Random(7))
    for step in (step_seed, step_consultations, step_wechat):
        step(ctx)
    began = time.perf_counter()
    step_live_announcements(ctx)
    print(f"live step: {time.perf_counter() - began:.1f} s")
    rows = {r["metric"]: r for r in ctx.summary}
    assert rows["直播排期（本月）"]["value"] == 4 and "改期 1 场，取消 1 场" in rows["直播排期（本月）"]["note"]
    with sqlite_container.uow() as uow:
        anns = list(uow.session.scalars(select(LiveAnnouncementRow).where(LiveAnnouncementRow.target == "followers")))
        by_push = {p.public_id: p for p in uow.session.scalars(select(PushRow).where(
            PushRow.public_id.in_([a.push_ref for a in anns])))}
        sent = Counter(uow.session.scalars(select(DeliveryRow.openid).where(DeliveryRow.state == "sent")))
        unsettled = uow.session.scalars(select(DeliveryRow.id).where(
            DeliveryRow.state.in_(["pending", "sending", "unknown"]))).all()
        assert unsettled == []
        assert max(sent.values()) <= 3  # the frequency cap (3 a week) holds across the streams
        withdrawn = [a for a in anns if a.status == "withdrawn"]
        assert {a.withdraw_reason for a in withdrawn} == {"rescheduled", "cancelled"}
        assert all(by_push[a.push_ref].status == "cancelled" for a in withdrawn)
        assert all(by_push[a.push_ref].status == "done" for a in anns if a.status == "open")
    assert rows["直播预告送达（台账）"]["value"] > 0
    assert "改期通知" in rows["社群发布任务"]["note"] and rows["直播预告推送"]["value"] == 5
