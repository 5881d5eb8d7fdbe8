"""The demo step for the knowledge base and talk scripts, on its own (the model loads once per process)."""

from __future__ import annotations

import random
from datetime import date

import pytest

from clinical_core.domain.time import FixedClock
from opsctl.demo.run import DemoContext, step_knowledge_base
from opsctl.demo.seed import SeedPlan
from opsctl.wiring import Container
from tests.support.kb_model import shared_embedder

pytestmark = pytest.mark.slow


def test_demo_step_ingests_reviews_and_searches(sqlite_container: Container, clock: FixedClock) -> None:
    sqlite_container.__dict__["embedder"] = shared_embedder()
    ctx = DemoContext(sqlite_container, clock, SeedPlan(10, 1, 1, date(2026, 11, 1)), random.Random(1))
    step_knowledge_base(ctx)
    rows = {r["metric"]: r for r in ctx.summary}
    assert rows["知识库文档"]["value"] == 3 and "糖尿病饮食指导" in rows["知识库文档"]["note"]  # stale on 2026-11-02
    assert rows["话术导入"]["value"] == 5 and "1 条含广告法禁用语" in rows["话术导入"]["note"]
    assert rows["客服检索"]["value"] == "5/5"
    assert "降压药吃了头晕还能停吗」→ 降压药能否自行停药" in rows["客服检索"]["note"]
