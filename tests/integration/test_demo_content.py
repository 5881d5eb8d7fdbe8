"""The demo steps for lectures' engagement and the publishing calendar, on a small seeded hospital."""

from __future__ import annotations

import random
from datetime import date

import pytest

from clinical_core.domain.time import FixedClock
from opsctl.demo.content import step_content_calendar, step_lecture_engagement, step_lectures
from opsctl.demo.run import DemoContext
from opsctl.demo.seed import SeedPlan
from opsctl.demo.service import seed_demo
from opsctl.wiring import Container

pytestmark = pytest.mark.slow


def test_demo_steps_publish_import_stream_and_tip(sqlite_container: Container, clock: FixedClock) -> None:
    plan = SeedPlan(60, 30, 7, date(2026, 10, 31))
    seed_demo(sqlite_container, plan)
    ctx = DemoContext(sqlite_container, clock, plan, random.Random(7))
    step_lectures(ctx)
    step_lecture_engagement(ctx)
    step_content_calendar(ctx)
    rows = {r["metric"]: r for r in ctx.summary}
    assert rows["发布日历"]["value"] == 17  # 8 episodes × 2 platforms + 1 live session
    assert "医学审核退回 2 次" in rows["发布日历"]["note"]
    assert "未重复计数" in rows["平台数据导入"]["note"]
    assert rows["抖音播放"]["value"] > 0 and rows["视频号播放"]["value"] > 0
    assert rows["直播观看人数"]["value"] == 18000
    assert rows["讲堂点赞"]["value"] == 12 and "驳回 1" in rows["讲堂点赞"]["note"]
    assert "条已发布" in rows["发布日历"]["note"] and "0 条待发布" not in rows["发布日历"]["note"]
    assert rows["讲堂赞赏收入（元）"]["value"] > 0


def test_demo_steps_on_a_four_day_month(sqlite_container: Container, clock: FixedClock) -> None:
    plan = SeedPlan(30, 4, 3, date(2026, 10, 31))
    seed_demo(sqlite_container, plan)
    ctx = DemoContext(sqlite_container, clock, plan, random.Random(3))
    step_lecture_engagement(ctx)
    step_content_calendar(ctx)
    rows = {r["metric"]: r for r in ctx.summary}
    assert "0 条已发布" in rows["发布日历"]["note"] and rows["直播观看人数"]["value"] == 18000
