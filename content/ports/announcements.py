"""The port through which a live session's announcement becomes a push to followers.

``content`` cannot import ``campaigns`` (siblings in the layering contract), so the push engine
is reached through this narrow interface, implemented in the composition root
(``opsctl/live_pushes.py``) over ``campaigns.services.managed_pushes``. Every method works in the
caller's unit of work (inside its ``with uow:``) and never commits, so a session, its
announcement and the push commit together or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from clinical_core.persistence.uow import UnitOfWork


@dataclass(frozen=True)
class AnnouncementPush:
    name: str  # the push's name as operators see it in `opsctl push status`
    kind: str  # mass | template
    audience: dict[str, Any]  # segment rules: {"department": code} | {"doctor": staff id} | {}
    audience_label: str  # the saved segment's name when one is created
    text: str  # mass: the message; template: unused
    template_fields: dict[str, str]  # template: WeChat field -> value (literal text, ≤ 20 characters)
    send_at: datetime | None  # None: now (moved out of quiet hours either way)
    actor: str


@dataclass(frozen=True)
class PushProgress:
    ref: str  # the push's public id
    status: str  # draft | scheduled | sending | done | cancelled
    scheduled_at: datetime | None
    audience_size: int | None
    counts: dict[str, int] = field(default_factory=dict)  # ledger rows by state


class AnnouncementPushes(Protocol):
    def audience_size(self, uow: UnitOfWork, audience: dict[str, Any]) -> int: ...

    def schedule(self, uow: UnitOfWork, push: AnnouncementPush) -> PushProgress: ...

    def cancel(self, uow: UnitOfWork, ref: str, actor: str) -> PushProgress: ...

    def progress(self, uow: UnitOfWork, refs: list[str]) -> dict[str, PushProgress]: ...
