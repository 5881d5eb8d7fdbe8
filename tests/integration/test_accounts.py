"""Accounts and bearer tokens: stored hashed, expiring, revocable."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text

from clinical_core.domain.access import Principal
from clinical_core.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, RuleViolation, Unauthenticated
from clinical_core.domain.staff import FilingStatus, Role
from clinical_core.domain.time import FixedClock
from clinical_core.services import accounts
from opsctl.wiring import Container

ADMIN = Principal("cli:root", "root", Role.ADMIN)


def new_doctor(username: str = "dr.li", **changes: object) -> accounts.NewStaffAccount:
    base = dict(username=username, role=Role.DOCTOR, name="李明", title="主治医师", licence_no="110440300001234",
                practising_since=date(2015, 7, 1), filing=FilingStatus.FILED, may_prescribe=True,
                phone="13700001111")
    base.update(changes)
    return accounts.NewStaffAccount(**base)  # type: ignore[arg-type]


def test_token_authenticates_and_is_stored_hashed(container: Container) -> None:
    account = accounts.add_staff_account(container.uow(), ADMIN, new_doctor())
    issued = accounts.issue_token(container.uow(), ADMIN, "dr.li")
    principal = accounts.authenticate(container.uow(), issued.token)
    assert (principal.role, principal.account_id, principal.staff_id) == (Role.DOCTOR, account.public_id,
                                                                           account.staff_id)
    with container.engine.connect() as c:
        stored = " ".join(str(v) for row in c.execute(text("SELECT * FROM api_tokens")) for v in row)
        staff = " ".join(str(v) for row in c.execute(text("SELECT * FROM staff")) for v in row)
    assert issued.token not in stored and accounts.hash_token(issued.token) in stored
    assert "13700001111" not in staff


def test_expired_and_revoked_tokens_are_refused(container: Container, clock: FixedClock) -> None:
    accounts.add_staff_account(container.uow(), ADMIN, new_doctor())
    short = accounts.issue_token(container.uow(), ADMIN, "dr.li", ttl=timedelta(hours=1))
    clock.advance(timedelta(hours=2))
    with pytest.raises(Unauthenticated, match="过期"):
        accounts.authenticate(container.uow(), short.token)
    other = accounts.issue_token(container.uow(), ADMIN, "dr.li")
    accounts.revoke_token(container.uow(), ADMIN, other.token_id)
    with pytest.raises(Unauthenticated, match="吊销"):
        accounts.authenticate(container.uow(), other.token)
    with pytest.raises(Unauthenticated):
        accounts.authenticate(container.uow(), "ops_not-a-real-token")


def test_account_rules(container: Container) -> None:
    accounts.add_staff_account(container.uow(), ADMIN, new_doctor())
    with pytest.raises(Conflict, match="已存在"):
        accounts.add_staff_account(container.uow(), ADMIN, new_doctor())
    with pytest.raises(InvalidInput, match="用户名"):
        accounts.add_staff_account(container.uow(), ADMIN, new_doctor("X"))
    with pytest.raises(RuleViolation, match="不属于医生系列"):
        accounts.add_staff_account(container.uow(), ADMIN, new_doctor("dr.wang", title="护师"))
    with pytest.raises(NotFound, match="科室"):
        accounts.add_staff_account(container.uow(), ADMIN, new_doctor("dr.zhao", department_code="NOPE"))
    with pytest.raises(Forbidden):
        accounts.add_staff_account(container.uow(), Principal("a", "ops", Role.OPERATIONS), new_doctor("dr.q"))
    with pytest.raises(NotFound):
        accounts.add_patient_account(container.uow(), ADMIN, "pat.user", "pat_missing")
    assert [a.username for a in accounts.list_accounts(container.uow(), ADMIN)] == ["dr.li"]
