"""Who may do what: roles and ownership (授权).

Every HTTP endpoint and service that returns patient data asks these
functions; the rules live here, not in the HTTP layer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from clinical_core.domain.errors import Forbidden
from clinical_core.domain.staff import Role


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller."""

    account_id: str  # public id of the account
    username: str
    role: Role
    staff_id: str | None = None  # public id, for staff accounts
    patient_id: str | None = None  # public id, for patient accounts

    @property
    def actor(self) -> str:
        """How the audit log names this caller."""
        return f"{self.role.value}:{self.account_id}"


SYSTEM = Principal(account_id="system", username="system", role=Role.ADMIN)


def ensure_role(principal: Principal, allowed: Iterable[Role]) -> None:
    allowed = frozenset(allowed)
    if principal.role not in allowed:
        labels = "、".join(sorted(r.label for r in allowed))
        raise Forbidden(f"当前角色「{principal.role.label}」无权执行此操作，需要：{labels}")


def ensure_patient_access(principal: Principal, patient_id: str, staff_roles: Iterable[Role]) -> None:
    """A patient sees only their own records; staff need one of ``staff_roles``."""
    if principal.role is Role.PATIENT:
        if principal.patient_id != patient_id:
            raise Forbidden("患者只能查看本人的记录")
        return
    ensure_role(principal, staff_roles)
