"""Authentication (bearer token) and authorisation (role, ownership) dependencies.

Every endpoint depends on ``authenticated`` or ``require_roles(...)``;
ownership is checked by the domain (``ensure_patient_access``) with the
principal these return.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
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


CredentialsDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
T = TypeVar("T")


def principal_of(uow: UnitOfWork, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("缺少访问令牌：请在 Authorization 头中使用 Bearer 令牌")
    return authenticate(uow, credentials.credentials)


def authenticated(uow: UowDep, credentials: CredentialsDep) -> Principal:
    return principal_of(uow, credentials)


PrincipalDep = Annotated[Principal, Depends(authenticated)]


class Caller:
    """The caller of a hot route, authenticated in the same thread hop as its use case.

    ``PrincipalDep`` is a sync dependency (a database read), so FastAPI runs it in the threadpool
    and then the sync route in the threadpool again: two hand-offs between the event loop and a
    worker thread per request, which under load cost as much CPU as the token check itself. An
    ``async`` route taking ``CallerDep`` makes one: ``await caller.run(service_fn, *args)`` checks
    the token and calls ``service_fn(uow, principal, *args)`` in one worker thread. The check is
    the same (``principal_of``): a missing, unknown, expired or revoked token is refused before the
    use case runs. Both run in one transaction (``run_authenticated``): the token is read in the
    transaction that then does the work, so a revocation committed before it began is seen."""

    __slots__ = ("uow", "credentials")

    def __init__(self, uow: UnitOfWork, credentials: HTTPAuthorizationCredentials | None) -> None:
        self.uow, self.credentials = uow, credentials

    async def run(self, use_case: Callable[..., T], *args: Any) -> T:
        return await run_in_threadpool(self._call, use_case, args)

    def _call(self, use_case: Callable[..., T], args: tuple[Any, ...]) -> T:
        return run_authenticated(self.uow, self.credentials, use_case, *args)


def run_authenticated(uow: UnitOfWork, credentials: HTTPAuthorizationCredentials | None,
                      use_case: Callable[..., T], *args: Any) -> T:
    """``use_case(uow, principal, *args)`` with the caller's token checked in the use case's own
    transaction: one BEGIN … COMMIT (or ROLLBACK) per request instead of a read-only transaction
    for the token and another for the work. The use case's ``with uow:`` joins the transaction
    begun here; a refused token rolls it back before the use case runs. On SQLite the check then
    waits for the write lock like the work it precedes (one process's writers queue there anyway).
    The transaction starts session-less (``core_first``): the hot use cases run Core statements; one
    that uses the ORM gets a Session joined to it."""
    with uow.core_first():
        return use_case(uow, principal_of(uow, credentials), *args)


async def caller(uow: UowDep, credentials: CredentialsDep) -> Caller:
    return Caller(uow, credentials)


CallerDep = Annotated[Caller, Depends(caller)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency factory: the caller must hold one of ``roles``."""

    async def dependency(principal: PrincipalDep) -> Principal:
        ensure_role(principal, roles)
        return principal

    return dependency
