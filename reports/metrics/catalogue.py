"""The complete registry: importing this module registers every metric definition module.

To add a metric family (pushes, video visits, nursing orders, SOS alarms ...), write a
definitions module of ``register(Metric(...))`` calls and import it below.
"""

from __future__ import annotations

from reports.metrics import definitions  # noqa: F401  (registers on import)
from reports.metrics.registry import REGISTRY

__all__ = ["REGISTRY"]
