"""Seeding as a use case: checks, the generator, the audit entry."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial

from clinical_core.domain.errors import Conflict, InvalidInput
from clinical_core.domain.time import local_date
from clinical_core.services import audit
from opsctl import db
from opsctl.demo.pipeline import in_child_processes
from opsctl.demo.seed import Generator, SeedPlan, is_demo, is_empty, prepared, write
from opsctl.wiring import Container

MAX_PATIENTS = 5_000_000
MAX_DAYS = 3_650


@dataclass(frozen=True, slots=True)
class SeedResult:
    plan: SeedPlan
    counts: dict[str, int]
    seconds: float

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


def make_plan(container: Container, patients: int, days: int, seed: int, until: date | None) -> SeedPlan:
    if not 1 <= patients <= MAX_PATIENTS:
        raise InvalidInput(f"患者数应在 1 到 {MAX_PATIENTS} 之间", field="patients")
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"天数应在 1 到 {MAX_DAYS} 之间", field="days")
    today = local_date(container.clock.now())
    last = until or today - timedelta(days=1)
    if last >= today:
        raise InvalidInput(f"--until 应早于今天（{today}），模拟数据只覆盖已经过去的日子", field="until")
    return SeedPlan(patients=patients, days=days, seed=seed, until=last)


def seed_demo(
    container: Container, plan: SeedPlan, *, reset: bool = False, on_rows: Callable[[str, int], None] | None = None
) -> SeedResult:
    """Write the demo hospital into an empty database (or, with ``reset``, a demo one)."""
    engine = container.engine
    db.upgrade(engine)
    if not is_empty(engine):
        if not reset:
            raise Conflict("数据库中已有数据，演示数据只能写入空库", hint="加 --reset 清空后重新生成（会删除全部数据）")
        if not is_demo(engine):
            raise Conflict("数据库中有非演示数据，拒绝清空", hint="演示请使用单独的数据目录或数据库（OPSCTL_DATA_DIR）")
        db.reset(engine)
    started = time.perf_counter()
    generator, dialect = Generator(plan, container.vault), engine.dialect
    producers = [partial(prepared, part, dialect) for part in generator.parts()]
    counts = write(engine, in_child_processes(producers), on_rows)
    seconds = time.perf_counter() - started
    with container.uow() as uow:
        audit.record(uow, "system:demo", "demo.seed", "database", engine.dialect.name,
                     patients=plan.patients, days=plan.days, seed=plan.seed, until=plan.until.isoformat(),
                     rows=counts)
        uow.commit()
    return SeedResult(plan, counts, seconds)
