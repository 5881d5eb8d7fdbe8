"""Accounts and bearer tokens (账号与令牌).

A staff account is created together with its staff record (qualifications
included); a patient account links to an existing patient. Tokens are random
(256 bits), shown once, stored as SHA-256.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import bindparam, select

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from clinical_core.domain.identity import normalise_phone
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.masking import mask_name
from clinical_core.domain.staff import STAFF_ROLES, FilingStatus, Role, check_title
from clinical_core.persistence.models import AccountRow, ApiTokenRow, DepartmentRow, PatientRow, StaffRow
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services import audit

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,59}$")
TOKEN_PREFIX = "ops_"


@dataclass(frozen=True, slots=True)
class NewStaffAccount:
    username: str
    role: Role
    name: str
    department_code: str | None = None
    title: str | None = None
    licence_no: str | None = None
    practising_since: date | None = None
    filing: FilingStatus = FilingStatus.NONE
    may_prescribe: bool = False
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class AccountView:
    public_id: str
    username: str
    role: str
    active: bool
    staff_id: str | None
    patient_id: str | None
    display_name: str  # staff name, or the masked patient name
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str  # shown once
    token_id: str
    username: str
    expires_at: datetime | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_username(username: str) -> str:
    name = (username or "").strip().lower()
    if not _USERNAME.match(name):
        raise InvalidInput("用户名应为 3–60 位小写字母、数字、点、下划线或连字符", field="username")
    return name


def _ensure_new_username(uow: UnitOfWork, username: str) -> None:
    if uow.session.scalar(select(AccountRow.id).where(AccountRow.username == username)):
        raise Conflict(f"用户名 {username} 已存在")


def _create_account(
    uow: UnitOfWork, principal: Principal, username: str, role: Role, *,
    staff_id: int | None = None, patient_id: int | None = None, **audit_details: str,
) -> AccountRow:
    account = AccountRow(public_id=new_public_id("acc"), username=username, role=role.value, staff_id=staff_id,
                         patient_id=patient_id, active=True, created_at=uow.clock.now())
    uow.session.add(account)
    uow.session.flush()
    audit.record(uow, principal.actor, "account.create", "account", account.public_id, role=role.value,
                 **audit_details)
    return account


def add_staff_account(uow: UnitOfWork, principal: Principal, new: NewStaffAccount) -> AccountView:
    ensure_role(principal, {Role.ADMIN})
    username = _check_username(new.username)
    if new.role not in STAFF_ROLES:
        raise InvalidInput("员工账号的角色不能是患者；患者账号请用 --patient 关联患者", field="role")
    check_title(new.role, new.title)
    name = (new.name or "").strip()
    if not name:
        raise InvalidInput("姓名不能为空", field="name")
    now = uow.clock.now()
    with uow:
        _ensure_new_username(uow, username)
        dept_id = None
        if new.department_code:
            dept_id = uow.session.scalar(select(DepartmentRow.id).where(DepartmentRow.code == new.department_code))
            if dept_id is None:
                raise NotFound(f"未找到科室编码 {new.department_code}", hint="用 opsctl org departments 查看科室编码")
        phone = normalise_phone(new.phone) if new.phone else None
        staff = StaffRow(
            public_id=new_public_id("stf"),
            employee_no=f"E{secrets.randbelow(10**8):08d}",
            name=name,
            role=new.role.value,
            title=new.title,
            department_id=dept_id,
            licence_no=new.licence_no,
            practising_since=new.practising_since,
            filing_status=new.filing.value,
            may_prescribe=new.may_prescribe,
            phone_enc=uow.vault.encrypt(phone) if phone else None,
            phone_hash=uow.vault.lookup_hash("phone", phone) if phone else None,
            active=True,
            created_at=now,
        )
        uow.session.add(staff)
        uow.session.flush()
        account = _create_account(uow, principal, username, new.role, staff_id=staff.id, staff=staff.public_id)
        view = AccountView(account.public_id, username, account.role, True, staff.public_id, None, name, now)
        uow.commit()
    return view


def add_patient_account(uow: UnitOfWork, principal: Principal, username: str, patient_id: str) -> AccountView:
    ensure_role(principal, {Role.ADMIN})
    username = _check_username(username)
    now = uow.clock.now()
    with uow:
        _ensure_new_username(uow, username)
        patient = uow.session.scalar(select(PatientRow).where(PatientRow.public_id == patient_id))
        if patient is None:
            raise NotFound(f"未找到患者 {patient_id}")
        account = _create_account(uow, principal, username, Role.PATIENT, patient_id=patient.id, patient=patient_id)
        view = AccountView(account.public_id, username, "patient", True, None, patient_id,
                           mask_name(uow.vault.decrypt(patient.name_enc)), now)
        uow.commit()
    return view


def list_accounts(uow: UnitOfWork, principal: Principal, role: Role | None = None) -> list[AccountView]:
    ensure_role(principal, {Role.ADMIN})
    with uow:
        query = (
            select(AccountRow, StaffRow, PatientRow)
            .outerjoin(StaffRow, AccountRow.staff_id == StaffRow.id)
            .outerjoin(PatientRow, AccountRow.patient_id == PatientRow.id)
            .order_by(AccountRow.id)
        )
        if role:
            query = query.where(AccountRow.role == role.value)
        views = []
        for acc, staff, patient in uow.session.execute(query):
            display = staff.name if staff else mask_name(uow.vault.decrypt(patient.name_enc)) if patient else ""
            views.append(AccountView(
                acc.public_id, acc.username, acc.role, acc.active,
                staff.public_id if staff else None, patient.public_id if patient else None,
                display, acc.created_at,
            ))
    return views


def issue_token(
    uow: UnitOfWork, principal: Principal, username: str, *, label: str = "cli", ttl: timedelta | None = None
) -> IssuedToken:
    ensure_role(principal, {Role.ADMIN})
    now = uow.clock.now()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with uow:
        account = uow.session.scalar(select(AccountRow).where(AccountRow.username == username.strip().lower()))
        if account is None:
            raise NotFound(f"未找到用户 {username}", hint="用 opsctl users list 查看已有用户")
        if not account.active:
            raise Conflict(f"用户 {username} 已停用，不能签发令牌")
        row = ApiTokenRow(
            public_id=new_public_id("tok"), account_id=account.id, token_hash=hash_token(token),
            label=label, created_at=now, expires_at=now + ttl if ttl else None, revoked_at=None,
        )
        uow.session.add(row)
        uow.session.flush()
        audit.record(uow, principal.actor, "token.issue", "account", account.public_id, token=row.public_id)
        issued = IssuedToken(token, row.public_id, account.username, row.expires_at)
        uow.commit()
    return issued


def revoke_token(uow: UnitOfWork, principal: Principal, token_id: str) -> None:
    ensure_role(principal, {Role.ADMIN})
    with uow:
        row = uow.session.scalar(select(ApiTokenRow).where(ApiTokenRow.public_id == token_id))
        if row is None:
            raise NotFound(f"未找到令牌 {token_id}")
        if row.revoked_at is None:
            row.revoked_at = uow.clock.now()
            audit.record(uow, principal.actor, "token.revoke", "token", token_id)
        uow.commit()


# The token check runs on every API request: built once (only its compiled form is looked up per
# request), Core columns (no ORM entities or loading), executed on the transaction's connection.
_TOKEN, _ACCOUNT, _STAFF, _PATIENT = (ApiTokenRow.__table__, AccountRow.__table__, StaffRow.__table__,
                                      PatientRow.__table__)
_PRINCIPAL_OF_TOKEN = (
    select(_TOKEN.c.revoked_at, _TOKEN.c.expires_at, _ACCOUNT.c.active, _ACCOUNT.c.public_id, _ACCOUNT.c.username,
           _ACCOUNT.c.role, _STAFF.c.public_id, _PATIENT.c.public_id)
    .select_from(_TOKEN.join(_ACCOUNT, _TOKEN.c.account_id == _ACCOUNT.c.id)
                 .outerjoin(_STAFF, _ACCOUNT.c.staff_id == _STAFF.c.id)
                 .outerjoin(_PATIENT, _ACCOUNT.c.patient_id == _PATIENT.c.id))
    .where(_TOKEN.c.token_hash == bindparam("token_hash"))
)


def authenticate(uow: UnitOfWork, token: str) -> Principal:
    """Bearer token → principal. Unknown, expired, revoked or inactive: refused."""
    if not token or not token.startswith(TOKEN_PREFIX):
        raise Unauthenticated("缺少或无法识别的访问令牌")
    with uow.read_only():  # every API request passes here: never behind the writers
        found = uow.connection.execute(_PRINCIPAL_OF_TOKEN, {"token_hash": hash_token(token)}).first()
        if found is None:
            raise Unauthenticated("访问令牌无效")
        revoked_at, expires_at, active, account_id, username, role, staff_id, patient_id = found
        now = uow.clock.now()
        if revoked_at is not None:
            raise Unauthenticated("访问令牌已吊销")
        if expires_at is not None and expires_at <= now:
            raise Unauthenticated("访问令牌已过期")
        if not active:
            raise Unauthenticated("账号已停用")
        return Principal(account_id, username, Role(role), staff_id, patient_id)
