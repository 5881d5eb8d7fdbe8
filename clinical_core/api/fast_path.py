"""The consultation API's three hot routes without FastAPI's per-request machinery.

Creating a consultation (``POST /api/v1/consultations``), claiming it (``POST …/{id}/claim``) and
posting a form-encoded message (``POST …/{id}/messages``) are what every consultation does, many
times a minute. Through FastAPI each request walks the app's routes, solves its dependency graph,
parses and validates the body, validates and serialises the answer and hops to the threadpool via
anyio: about 1.5 ms of CPU per request against ~1 ms for the use case itself
(docs/BENCHMARKS.md, "Consultation API throughput").

``HotRoutes`` answers exactly these requests at the ASGI level, in front of the FastAPI app
(``opsctl.http.app.OpsctlAPI``), and gives the same answers:

- **Only the well-formed request takes the fast path.** A body that is not the plain JSON object
  (``application/json``) or the url-encoded form (``application/x-www-form-urlencoded``, no file)
  the route expects, a field of the wrong type or length, an unusual id in the path: the request
  goes to FastAPI unchanged (the messages read so far are replayed), so every validation error is
  FastAPI's own ``problem+json``.
- **The same authentication**: the bearer token is read as ``HTTPBearer`` reads it and checked by
  the same ``security.run_authenticated`` as the FastAPI routes (one SELECT in the use case's own
  transaction, so a revoked token is refused at once); role and ownership are checked by the same
  use cases, which also encrypt, audit and commit.
- **The same answers**: the route's own response field (FastAPI's TypeAdapter) validates and
  serialises the result and the route's status code is used; domain errors and unexpected
  exceptions become the same ``problem+json`` (``problems.domain_problem`` / ``unexpected_problem``).
- **One cheap thread hop**: the token check and the use case run in a small thread pool of its own
  (``threads`` workers: ``http.hot_threads``, by default 1 on SQLite and ``http.threads`` on
  PostgreSQL) via ``loop.run_in_executor``, ~25 µs of CPU per call against ~75 µs for anyio's
  ``to_thread``. The database is never waited on in the event loop.
- **Group commit on SQLite** (``http.group_commit``, on by default with SQLite): the one hot thread
  is a ``GroupCommitter`` instead: the requests waiting for it share one transaction, each in a
  savepoint of its own, and are answered after its commit (``clinical_core.persistence.group_commit``).

Tests (``tests/e2e/test_http_fast_path.py``) send the same good and bad requests through both paths
and compare statuses, headers and bodies.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from clinical_core.api import consultations, problems
from clinical_core.api.security import run_authenticated
from clinical_core.domain.consultation import MessageKind
from clinical_core.domain.errors import DomainError
from clinical_core.persistence.group_commit import GroupCommitter
from clinical_core.services import consultation

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
_PREFIX = "/api/v1/consultations"
# Public ids are ``con_`` + url-safe characters; anything else (percent-escapes, unicode) takes FastAPI's path.
_ACTION = re.compile(r"/api/v1/consultations/([A-Za-z0-9_-]{1,64})/(claim|messages)")
MAX_BODY = 32 * 1024  # a larger body (a question of 4,000 characters is at most ~24 KiB of JSON) goes to FastAPI
_KINDS = frozenset(kind.value for kind in MessageKind)
_FORM = b"application/x-www-form-urlencoded"
GROUP_COMMIT_MAX = 32  # requests per shared transaction at most (with group commit)


def _max_length(model: type[BaseModel], field: str) -> int:
    """The ``max_length`` a request model declares for ``field`` (the fast path checks the same bound)."""
    return next(m.max_length for m in model.model_fields[field].metadata if hasattr(m, "max_length"))


_SERVICE_ID_MAX = _max_length(consultations.NewConsultation, "service_id")
_QUESTION_MAX = _max_length(consultations.NewConsultation, "question")
_JSON = b"application/json"


class _Route:
    """What the fast path takes from the FastAPI route it stands in for: status and response field."""

    __slots__ = ("status", "field")

    def __init__(self, route: APIRoute) -> None:
        self.status = route.status_code or 200
        self.field = route.response_field


class _Fallback(Exception):
    """This request is not the plain case: FastAPI answers it."""


class HotRoutes:
    """ASGI handlers for the three hot routes of ``app`` (see the module docstring)."""

    def __init__(self, app: FastAPI, threads: int, *, group_commit: bool = False) -> None:
        # The routes it stands in for, as the consultation router declares them (the app includes
        # that router as it is: no prefix, response class or dependencies added).
        routes = {route.endpoint: route for route in consultations.router.routes if isinstance(route, APIRoute)}
        expected = {consultations.create: _PREFIX, consultations.claim: _PREFIX + "/{consultation_id}/claim",
                    consultations.post_message: _PREFIX + "/{consultation_id}/messages"}
        for endpoint, path in expected.items():
            route = routes[endpoint]
            if route.path != path or route.methods != {"POST"} or route.dependencies:
                raise RuntimeError(f"the fast path no longer matches the route {route.path}")
        self._app = app
        self._create = _Route(routes[consultations.create])
        self._claim = _Route(routes[consultations.claim])
        self._message = _Route(routes[consultations.post_message])
        self._threads = threads
        self._executor: ThreadPoolExecutor | None = None
        self._group: GroupCommitter | None = (
            GroupCommitter(lambda: app.state.uow_factory(), max_batch=GROUP_COMMIT_MAX, name="api-hot") if group_commit else None)

    # --- dispatch ---

    def handler(self, scope: Scope) -> Callable[[Scope, Receive, Send, ASGIApp], Awaitable[None]] | None:
        """The fast handler for this request, or None (FastAPI answers)."""
        if scope["method"] != "POST" or scope.get("root_path"):
            return None
        path = scope["path"]
        if path == _PREFIX:
            return self._handle_create
        if path.startswith(_PREFIX) and _ACTION.fullmatch(path):
            return self._handle_claim if path.endswith("/claim") else self._handle_message
        return None

    def close(self) -> None:
        if self._group is not None:
            self._group.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # --- the three routes ---

    async def _handle_create(self, scope: Scope, receive: Receive, send: Send, fallback: ASGIApp) -> None:
        messages, body = await _read_body(receive)
        try:
            if body is None or _header(scope, b"content-type") != _JSON:
                raise _Fallback
            data = json.loads(body)  # as Starlette's ``Request.json``
            if type(data) is not dict:
                raise _Fallback
            service_id, question = data.get("service_id"), data.get("question")
            if type(service_id) is not str or len(service_id) > _SERVICE_ID_MAX or type(question) is not str \
                    or len(question) > _QUESTION_MAX:
                raise _Fallback
        except (_Fallback, ValueError):
            await fallback(scope, _replay(messages, receive), send)
            return
        payments = self._app.state.payments
        await self._answer(scope, receive, send, self._create, consultation.create_consultation,
                           payments, service_id, question)

    async def _handle_claim(self, scope: Scope, receive: Receive, send: Send, fallback: ASGIApp) -> None:
        messages, body = await _read_body(receive)
        if body is None:
            await fallback(scope, _replay(messages, receive), send)
            return
        consultation_id = scope["path"][len(_PREFIX) + 1:-len("/claim")]
        await self._answer(scope, receive, send, self._claim, consultation.claim_consultation, consultation_id)

    async def _handle_message(self, scope: Scope, receive: Receive, send: Send, fallback: ASGIApp) -> None:
        messages, body = await _read_body(receive)
        try:
            if body is None or _header(scope, b"content-type") != _FORM:
                raise _Fallback
            kind, text = _message_form(body)
        except (_Fallback, ValueError):
            await fallback(scope, _replay(messages, receive), send)
            return
        consultation_id = scope["path"][len(_PREFIX) + 1:-len("/messages")]
        store = self._app.state.attachments
        await self._answer(scope, receive, send, self._message, consultation.post_message,
                           store, consultation_id, MessageKind(kind), text, None)

    # --- the shared part: token check and use case in one worker thread, then the answer ---

    async def _answer(self, scope: Scope, receive: Receive, send: Send, route: _Route,
                      use_case: Callable[..., Any], *args: Any) -> None:
        credentials = _credentials(scope)
        try:
            if self._group is not None:
                result = await asyncio.wrap_future(self._group.submit(
                    lambda uow: run_authenticated(uow, credentials, use_case, *args)))
            else:
                uow_factory = self._app.state.uow_factory
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="api-hot")
                result = await asyncio.get_running_loop().run_in_executor(
                    self._executor, lambda: run_authenticated(uow_factory(), credentials, use_case, *args))
            value, errors = route.field.validate(result, {}, loc=("response",)) if route.field else (result, [])
            if errors:
                raise RuntimeError("response validation failed")  # as FastAPI: an internal error
            body = route.field.serialize_json(value) if route.field else json.dumps(value).encode()
        except DomainError as error:
            await problems.domain_problem(Request(scope), error)(scope, receive, send)
            return
        except Exception:
            # As Starlette's ServerErrorMiddleware: the problem answer, then the exception for the
            # server's log.
            await problems.unexpected_problem(Request(scope))(scope, receive, send)
            raise
        await send({"type": "http.response.start", "status": route.status,
                    "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", _JSON)]})
        await send({"type": "http.response.body", "body": body})


# --- request parsing, exactly as strict as the plain case needs ---


def _header(scope: Scope, name: bytes) -> bytes | None:
    """The first header called ``name`` (as Starlette's ``Headers.get``)."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _credentials(scope: Scope) -> HTTPAuthorizationCredentials | None:
    """The bearer credentials as ``HTTPBearer(auto_error=False)`` reads them."""
    raw = _header(scope, b"authorization")
    scheme, token = get_authorization_scheme_param(raw.decode("latin-1") if raw is not None else None)
    if not (raw and scheme and token) or scheme.lower() != "bearer":
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=token)


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The request's messages as received, and its body (None: larger than ``MAX_BODY`` or the
    client left; the messages are then replayed to FastAPI, which reads on)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return messages, None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return messages, chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that first hands out ``messages`` again, then reads on."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()
    return replayed


def _message_form(body: bytes) -> tuple[str, str | None]:
    """``kind`` and optional ``text`` of a url-encoded message form; anything else (another field, a
    repeated or empty one, an unknown kind, a ``;`` separator) raises ``_Fallback``."""
    raw = body.decode("ascii")  # percent-encoded forms are ASCII; UnicodeDecodeError is a ValueError
    if ";" in raw or not all("=" in part for part in raw.split("&")):
        raise _Fallback
    fields = parse_qsl(raw, keep_blank_values=True)  # decodes as Starlette's FormParser (unquote_plus, utf-8)
    values = dict(fields)
    if len(values) != len(fields) or not values.keys() <= {"kind", "text"} or "" in values.values():
        raise _Fallback
    kind = values.get("kind")
    if kind not in _KINDS:
        raise _Fallback
    return kind, values.get("text")
