"""The consultation hot routes' ASGI fast path (``clinical_core.api.fast_path``) answers exactly as
FastAPI does: the same requests, good and bad, go through an app with the fast path and one without
(``create_app(..., hot_routes=False)``) on the same database, each on fresh orders, and the answers
are compared (status, headers, body with the random ids masked). Each case also says whether the
fast path must take it (the plain, well-formed request) or hand it to FastAPI (anything else)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from clinical_core.domain.consultation import MessageKind, ServiceKind
from clinical_core.services import accounts, consult_settings, consultation
from opsctl.http.app import create_app
from opsctl.wiring import Container
from tests.support.clinic import ADMIN, OPS, Clinic, build_clinic

QUESTION = "胸闷一周，活动后加重，想咨询"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 64
ID = re.compile(r"\b(con|msg|cpy|pay|wx)_[0-9a-f]{24}\b")


@dataclass
class Paths:
    fast: TestClient
    slow: TestClient
    taken: list[str]  # one entry per request the fast path answered
    c: Container
    clinic: Clinic
    tokens: dict[str, str]
    free: str  # a free department service (CARD)
    paid: str  # a paid one

    def order(self, state: str = "waiting", service: str | None = None) -> str:
        c, k = self.c, self.clinic
        oid = consultation.create_consultation(c.uow(), k.patient, c.payments, service or self.free,
                                               QUESTION).consultation.public_id
        if state in ("claimed", "in_progress"):
            consultation.claim_consultation(c.uow(), k.doctor_a, oid)
        if state == "in_progress":
            consultation.post_message(c.uow(), k.doctor_a, c.attachments, oid, MessageKind.TEXT, "您好")
        return oid


@pytest.fixture
def paths(container: Container) -> Iterator[Paths]:
    clinic = build_clinic(container)
    tokens = {role: accounts.issue_token(container.uow(), ADMIN, user, ttl=timedelta(days=1)).token
              for role, user in (("patient", "pt.zhang"), ("other_patient", "pt.wang"), ("doctor", "dr.a"),
                                 ("doctor_b", "dr.b"), ("other_doctor", "dr.c"), ("junior", "dr.j"))}
    free = consult_settings.configure_service(container.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=0, department_code="CARD")).public_id
    paid = consult_settings.configure_service(container.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.TEXT, price_fen=2000, doctor_id=clinic.doctor_a.staff_id)).public_id
    fast_app = create_app(container.settings, container)
    assert fast_app.hot_routes is not None  # type: ignore[attr-defined]
    taken: list[str] = []
    answer = fast_app.hot_routes._answer  # type: ignore[attr-defined]

    async def spy(scope: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        taken.append(scope["path"])
        await answer(scope, *args, **kwargs)
    fast_app.hot_routes._answer = spy  # type: ignore[attr-defined]
    slow_app = create_app(container.settings, container, hot_routes=False)
    with TestClient(fast_app) as fast, TestClient(slow_app) as slow:
        yield Paths(fast, slow, taken, container, clinic, tokens, free, paid)


def _masked(response: Response) -> Any:
    if response.headers.get("content-type", "").endswith("json"):
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("pay_params"), dict):  # random sandbox signature
            body["pay_params"] = sorted(body["pay_params"])
        if isinstance(body, dict) and body.get("out_trade_no"):  # random, no prefix
            body["out_trade_no"] = "<out_trade_no>"
        return json.loads(ID.sub(r"\1_<id>", json.dumps(body, ensure_ascii=False)))
    return ID.sub(r"\1_<id>", response.text)


def same(p: Paths, request: Callable[[TestClient, str], Response], *, fast: bool,
         setup: Callable[[], str] = lambda: "") -> Response:
    """``request(client, fresh)`` through both apps (``setup()`` makes fresh state for each); the
    answers must be equal, and the fast path must (``fast``) or must not have answered."""
    before = len(p.taken)
    a = request(p.fast, setup())
    assert len(p.taken) - before == (1 if fast else 0), "fast path taken" if not fast else "fast path not taken"
    b = request(p.slow, setup())
    assert len(p.taken) - before == (1 if fast else 0)
    assert (a.status_code, _masked(a)) == (b.status_code, _masked(b))
    skip = {"content-length"}
    assert {k: ID.sub("<id>", v) for k, v in a.headers.items() if k not in skip} \
        == {k: ID.sub("<id>", v) for k, v in b.headers.items() if k not in skip}
    return a


def auth(p: Paths, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {p.tokens[role]}"}


# --- create ---------------------------------------------------------------------------------------


def test_create_good_and_refused_alike(paths: Paths) -> None:
    p = paths

    def create(headers: dict[str, str], body: Any = None, **kw: Any) -> Callable[[TestClient, str], Response]:
        payload = {"service_id": p.free, "question": QUESTION} if body is None else body
        return lambda client, _: client.post("/api/v1/consultations", json=payload, headers=headers, **kw)

    r = same(p, create(auth(p, "patient")), fast=True)
    assert r.status_code == 201 and r.json()["consultation"]["status"] == "waiting"
    assert r.json()["consultation"]["patient_name"] != "张伟"  # masked
    r = same(p, create(auth(p, "patient"), {"service_id": p.paid, "question": QUESTION}), fast=True)
    assert r.status_code == 201 and r.json()["out_trade_no"]
    # Domain errors from the use case: the same problem+json.
    assert same(p, create({}), fast=True).status_code == 401
    assert same(p, create({"Authorization": "Bearer ops_not-a-token"}), fast=True).status_code == 401
    assert same(p, create({"Authorization": "Basic abc"}), fast=True).status_code == 401
    assert same(p, create(auth(p, "doctor")), fast=True).status_code == 403
    assert same(p, create(auth(p, "patient"), {"service_id": "svc_nope", "question": QUESTION}),
                fast=True).status_code == 404
    r = same(p, create(auth(p, "patient"), {"service_id": p.free, "question": "胸闷"}), fast=True)
    assert r.status_code == 422 and r.json()["code"] == "InvalidInput"
    # Not the plain request: FastAPI's own validation answers, on both.
    for bad in ({"service_id": p.free}, {"service_id": 7, "question": QUESTION}, [p.free, QUESTION],
                {"service_id": p.free, "question": "很" * 4001}, {"service_id": "s" * 41, "question": QUESTION}):
        r = same(p, create(auth(p, "patient"), bad), fast=False)
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    for raw, ctype in ((b"{not json", "application/json"), (json.dumps({"service_id": p.free, "question": QUESTION})
                                                            .encode(), "text/plain"), (b"", "application/json")):
        same(p, lambda client, _: client.post("/api/v1/consultations", content=raw,
                                              headers={**auth(p, "patient"), "Content-Type": ctype}), fast=False)
    # Extra fields are ignored by the body model, and by the fast path.
    same(p, create(auth(p, "patient"), {"service_id": p.free, "question": QUESTION, "extra": 1}), fast=True)


def test_revoking_a_token_takes_effect_on_the_next_request(paths: Paths) -> None:
    p = paths
    issued = accounts.issue_token(p.c.uow(), ADMIN, "pt.zhang", ttl=timedelta(days=1))
    body = {"service_id": p.free, "question": QUESTION}
    headers = {"Authorization": f"Bearer {issued.token}"}
    assert p.fast.post("/api/v1/consultations", json=body, headers=headers).status_code == 201
    accounts.revoke_token(p.c.uow(), ADMIN, issued.token_id)
    before = len(p.taken)
    r = p.fast.post("/api/v1/consultations", json=body, headers=headers)
    assert len(p.taken) == before + 1
    assert r.status_code == 401 and r.json()["detail"] == "访问令牌已吊销"
    assert r.headers["www-authenticate"] == "Bearer"


# --- claim ----------------------------------------------------------------------------------------


def test_claim_good_and_refused_alike(paths: Paths) -> None:
    p = paths

    def claim(role: str | None) -> Callable[[TestClient, str], Response]:
        headers = auth(p, role) if role else {}
        return lambda client, oid: client.post(f"/api/v1/consultations/{oid}/claim", headers=headers)

    r = same(p, claim("doctor"), fast=True, setup=p.order)
    assert r.status_code == 200 and r.json()["status"] == "claimed"
    assert same(p, claim("doctor_b"), fast=True, setup=lambda: p.order("claimed")).status_code == 409
    assert same(p, claim("other_doctor"), fast=True, setup=p.order).status_code == 403
    assert same(p, claim("patient"), fast=True, setup=p.order).status_code == 403
    assert same(p, claim(None), fast=True, setup=p.order).status_code == 401
    r = same(p, claim("junior"), fast=True, setup=p.order)  # R07: too few years of practice
    assert r.status_code == 422 and r.json()["code"] == "RuleViolation"
    assert same(p, claim("doctor"), fast=True, setup=lambda: "con_000000000000000000000000").status_code == 404
    # An id the fast path does not parse (unicode, percent-escapes): FastAPI answers both.
    assert same(p, claim("doctor"), fast=False, setup=lambda: "订单1").status_code == 404
    # Other methods and paths are FastAPI's.
    same(p, lambda client, oid: client.get(f"/api/v1/consultations/{oid}/claim", headers=auth(p, "doctor")),
         fast=False, setup=p.order)
    same(p, lambda client, oid: client.post(f"/api/v1/consultations/{oid}/claim/", headers=auth(p, "doctor"),
                                                follow_redirects=False),
         fast=False, setup=p.order)


# --- messages -------------------------------------------------------------------------------------


def test_messages_good_and_refused_alike(paths: Paths) -> None:
    p = paths

    def post(role: str, data: Any = None, files: Any = None, **kw: Any) -> Callable[[TestClient, str], Response]:
        return lambda client, oid: client.post(f"/api/v1/consultations/{oid}/messages", headers=auth(p, role),
                                               data=data, files=files, **kw)

    r = same(p, post("doctor", {"kind": "text", "text": "您好，请描述一下血压情况"}), fast=True,
             setup=lambda: p.order("claimed"))
    assert r.status_code == 201 and r.json()["sender"] == "doctor"
    r = same(p, post("patient", {"kind": "text", "text": "血压 150/95 & 头晕"}), fast=True,
             setup=lambda: p.order("in_progress"))
    assert r.status_code == 201 and r.json()["text"] == "血压 150/95 & 头晕"
    assert same(p, post("doctor", {"kind": "text", "text": "您好"}), fast=True, setup=p.order).status_code == 403
    assert same(p, post("other_patient", {"kind": "text", "text": "您好"}), fast=True,
                setup=lambda: p.order("claimed")).status_code == 403
    r = same(p, post("patient", {"kind": "image"}), fast=True, setup=lambda: p.order("claimed"))
    assert r.status_code == 422 and r.json()["code"] == "InvalidInput"
    # Not the plain form: FastAPI answers both.
    for data in ({"kind": "fax", "text": "x"}, {"text": "x"}, {"kind": "text", "text": ""},
                 {"kind": "text", "text": "a", "extra": "b"}):
        same(p, post("patient", data), fast=False, setup=lambda: p.order("claimed"))
    same(p, lambda client, oid: client.post(f"/api/v1/consultations/{oid}/messages", content=b"kind=text;text=x",
                                            headers={**auth(p, "patient"),
                                                     "Content-Type": "application/x-www-form-urlencoded"}),
         fast=False, setup=lambda: p.order("claimed"))
    r = same(p, post("patient", {"kind": "image"}, files={"file": ("x.png", PNG, "image/png")}), fast=False,
             setup=lambda: p.order("claimed"))
    assert r.status_code == 201 and r.json()["attachment_mime"] == "image/png"


def test_fast_path_stands_aside_for_dependency_overrides(paths: Paths) -> None:
    app = paths.fast.app
    app.dependency_overrides[object] = object  # type: ignore[attr-defined]
    try:
        before = len(paths.taken)
        r = paths.fast.post("/api/v1/consultations", json={"service_id": paths.free, "question": QUESTION},
                            headers=auth(paths, "patient"))
        assert r.status_code == 201 and len(paths.taken) == before
    finally:
        app.dependency_overrides.clear()  # type: ignore[attr-defined]
