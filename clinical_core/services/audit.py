"""审计日志: every service writes here, in the same transaction as the change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from clinical_core.persistence.models import AuditRow
from clinical_core.persistence.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    details: dict[str, Any]


def record(
    uow: UnitOfWork, actor: str, action: str, entity_type: str, entity_id: str, **details: Any
) -> None:
    """Append one entry. ``details`` must not hold personal data in clear."""
    uow.session.add(
        AuditRow(
            at=uow.clock.now(),
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            details=details,
        )
    )


_INSERT = AuditRow.__table__.insert()


def entry(uow: UnitOfWork, actor: str, action: str, entity_type: str, entity_id: str, **details: Any) -> dict[str, Any]:
    """One entry as parameters for ``record_all`` (same rules as ``record``)."""
    return {"at": uow.clock.now(), "actor": actor, "action": action, "entity_type": entity_type,
            "entity_id": entity_id, "details": details}


def record_all(uow: UnitOfWork, entries: list[dict[str, Any]]) -> None:
    """Append entries in one statement (an executemany) on the transaction's connection: the
    hot paths that write with SQLAlchemy Core use it; nothing is left for the ORM to flush."""
    if entries:
        uow.connection.execute(_INSERT, entries)


def list_entries(
    uow: UnitOfWork,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    action: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    with uow:
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if entity_type:
            query = query.where(AuditRow.entity_type == entity_type)
        if entity_id:
            query = query.where(AuditRow.entity_id == entity_id)
        if action:
            query = query.where(AuditRow.action == action)
        return [
            AuditEntry(r.at, r.actor, r.action, r.entity_type, r.entity_id, dict(r.details or {}))
            for r in uow.session.scalars(query)
        ]
