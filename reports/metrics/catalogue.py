"""The complete registry: importing this module registers every metric definition module.

To add a metric family, write a definitions module of ``register(Metric(...))`` calls and import
it below; the order of the imports is the order of the report's sections.
"""

from __future__ import annotations

from reports.metrics import (
    content_platforms,  # noqa: F401
    definitions,  # noqa: F401  (registers on import)
    followup,  # noqa: F401
    nursing,  # noqa: F401
    pushes,  # noqa: F401
    video,  # noqa: F401
)
from reports.metrics.registry import REGISTRY

__all__ = ["REGISTRY"]
