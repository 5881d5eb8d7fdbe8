"""The complete registry: importing this module registers every metric definition module.

To add a metric family, write a definitions module of ``register(Metric(...))`` calls and name
it in ``FAMILIES``. Registration order is the order of the reports' sections (a section appears
where its first metric was registered), so the families are imported in this explicit order
rather than in whatever order an import sorter leaves them.
"""

from __future__ import annotations

from importlib import import_module

from reports.metrics.registry import REGISTRY

FAMILIES = (
    "definitions",  # consultations, prescriptions, income, followers, channels, reviews, lectures, scripts
    "content_platforms",  # publishing calendar, platform statistics, live viewers, lecture tips
    "video",  # video follow-up clinic
    "nursing",  # home nursing orders and SOS alarms
    "followup",  # follow-up plans, steps and questionnaires
    "pushes",  # push delivery ledger and tracked links
)
for _family in FAMILIES:
    import_module(f"reports.metrics.{_family}")

__all__ = ["FAMILIES", "REGISTRY"]
