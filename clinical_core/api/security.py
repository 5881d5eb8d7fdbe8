"""Authentication (bearer token) and authorisation (role, ownership) dependencies.

Every endpoint depends on ``authenticated`` or ``require_roles(...)``;
ownership is checked by the domain (``ensure_patient_access``) with the
principal these return.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.errors import Unauthenticated
from clinical_core.domain.staff import Role
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.services.accounts import authenticate

_bearer = HTTPBearer(auto_error=False, description="opsctl users token 签发的访问令牌")


# Dependencies that do no I/O are ``async``: FastAPI runs a sync dependency in the threadpool, a
# thread hop per dependency per request. Only ``authenticated`` (a database read) stays sync.


async def get_uow(request: Request) -> UnitOfWork:
    return request.app.state.uow_factory()


UowDep = Annotated[UnitOfWork, Depends(get_uow)]


def authenticated(
    uow: UowDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("缺少访问令牌：请在 Authorization 头中使用 Bearer 令牌")
    return authenticate(uow, credentials.credentials)


PrincipalDep = Annotated[Principal, Depends(authenticated)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency factory: the caller must hold one of ``roles``."""

    async def dependency(principal: PrincipalDep) -> Principal:
        ensure_role(principal, roles)
        return principal

    return dependency
