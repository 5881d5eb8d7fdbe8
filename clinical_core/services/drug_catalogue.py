"""药品目录导入 (RX-4): all-or-nothing upsert by drug code, audited."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.drug_catalogue import parse_rows
from clinical_core.domain.errors import Conflict
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import DrugRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit


@dataclass(frozen=True, slots=True)
class ImportResult:
    rows: int
    created: int
    updated: int


def import_catalogue(uow: UnitOfWork, principal: Principal, rows: list[tuple[int, dict[str, Any]]],
                     *, source: str, integrated: bool = False) -> ImportResult:
    """Validate every row first (``CatalogueRejected`` lists all errors); then write all in one transaction.
    In integrated mode (RX-5) the HIS owns the catalogue: an Excel import is refused."""
    ensure_role(principal, {Role.ADMIN, Role.PHARMACIST})
    if integrated:
        raise Conflict("集成模式下药品目录由 HIS 同步，不能从 Excel 导入",
                       hint="运行 opsctl rx his sync-catalogue")
    records = parse_rows(rows)
    created = updated = 0
    with uow:
        existing = {d.code: d for d in uow.session.scalars(
            select(DrugRow).where(DrugRow.code.in_([r.code for r in records])))}
        for r in records:
            row = existing.get(r.code)
            if row is None:
                row = DrugRow(public_id=new_public_id("drg"), code=r.code, active=True)
                uow.session.add(row)
                created += 1
            else:
                updated += 1
            row.generic_name, row.trade_name, row.specification = r.generic_name, r.trade_name, r.specification
            row.dosage_form, row.unit, row.price_fen = r.dosage_form, r.unit, r.price_fen
            row.category, row.control_class, row.prescription_only = r.category, r.control_class, r.prescription_only
        uow.session.flush()
        audit.record(uow, principal.actor, "drug_catalogue.import", "drug_catalogue", "*", source=source,
                     rows=len(records), created=created, updated=updated)
        uow.commit()
    return ImportResult(len(records), created, updated)
