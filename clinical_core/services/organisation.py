"""医院组织: departments and staff with their qualifications."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Row, func, select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import RuleViolation
from clinical_core.domain.masking import mask_phone
from clinical_core.domain.staff import STAFF_ROLES, FilingStatus, Qualification, Role, ensure_may_consult_online
from clinical_core.domain.time import local_date
from clinical_core.persistence.models import DepartmentRow, StaffRow
from clinical_core.persistence.uow import UnitOfWork


@dataclass(frozen=True, slots=True)
class DepartmentView:
    public_id: str
    code: str
    name: str
    kind: str
    online: bool
    staff_count: int


@dataclass(frozen=True, slots=True)
class StaffView:
    public_id: str
    name: str
    role: str
    title: str | None
    department: str | None
    years_of_practice: int
    filing_status: str
    may_prescribe: bool
    may_consult_online: bool
    phone: str  # masked


def qualification_of(row: StaffRow | Row[Any]) -> Qualification:
    """From a staff row: the ORM object or a Core row with these columns (the consultation hot path)."""
    return Qualification(
        role=Role(row.role), title=row.title, licence_no=row.licence_no,
        practising_since=row.practising_since, filing=FilingStatus(row.filing_status),
        may_prescribe=row.may_prescribe,
    )


def _online_ok(q: Qualification, today: date) -> bool:
    try:
        ensure_may_consult_online(q, today)
    except RuleViolation:
        return False
    return True


def list_departments(uow: UnitOfWork, principal: Principal) -> list[DepartmentView]:
    ensure_role(principal, STAFF_ROLES)
    with uow:
        counts = (
            select(StaffRow.department_id, func.count().label("n"))
            .where(StaffRow.active.is_(True))
            .group_by(StaffRow.department_id)
            .subquery()
        )
        rows = uow.session.execute(
            select(DepartmentRow, func.coalesce(counts.c.n, 0))
            .outerjoin(counts, counts.c.department_id == DepartmentRow.id)
            .order_by(DepartmentRow.code)
        )
        return [DepartmentView(d.public_id, d.code, d.name, d.kind, d.online, n) for d, n in rows]


def list_staff(
    uow: UnitOfWork, principal: Principal, *, role: Role | None = None, department_code: str | None = None,
    limit: int = 200,
) -> list[StaffView]:
    ensure_role(principal, STAFF_ROLES)
    today = local_date(uow.clock.now())
    with uow:
        query = (
            select(StaffRow, DepartmentRow.name)
            .outerjoin(DepartmentRow, StaffRow.department_id == DepartmentRow.id)
            .where(StaffRow.active.is_(True))
            .order_by(StaffRow.id)
            .limit(limit)
        )
        if role:
            query = query.where(StaffRow.role == role.value)
        if department_code:
            query = query.where(DepartmentRow.code == department_code)
        views = []
        for row, dept in uow.session.execute(query):
            q = qualification_of(row)
            views.append(StaffView(
                row.public_id, row.name, Role(row.role).label, row.title, dept, q.years_of_practice(today),
                row.filing_status, row.may_prescribe, q.role is Role.DOCTOR and _online_ok(q, today),
                mask_phone(uow.vault.decrypt(row.phone_enc)) if row.phone_enc else "",
            ))
        return views
