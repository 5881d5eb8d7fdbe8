"""What every demo step shares: the simulated hospital's context and its staff principals."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from clinical_core.domain.access import Principal
from clinical_core.domain.staff import Role
from clinical_core.domain.time import FixedClock
from opsctl.demo.seed import SeedPlan
from opsctl.wiring import Container

SummaryRow = dict[str, object]
OPERATOR = Principal(account_id="demo:operations", username="demo", role=Role.OPERATIONS)
CUSTOMER_SERVICE = Principal(account_id="demo:customer_service", username="demo-cs", role=Role.CUSTOMER_SERVICE)
ADMIN = Principal(account_id="demo:admin", username="demo-admin", role=Role.ADMIN)


@dataclass
class DemoContext:
    container: Container
    clock: FixedClock
    plan: SeedPlan
    rng: random.Random
    summary: list[SummaryRow] = field(default_factory=list)

    def add(self, metric: str, value: object, note: str = "") -> None:
        self.summary.append({"metric": metric, "value": value, "note": note})


Step = Callable[[DemoContext], None]
