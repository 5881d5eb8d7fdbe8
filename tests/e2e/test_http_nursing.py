"""The home-nursing API end to end: the role × endpoint matrix (who is let in,
who is refused), then one order's life over HTTP including the signed payment
callback, the hall, the geofence refusal as problem+json, and an SOS."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from clinical_core.domain.staff import FilingStatus, Role
from clinical_core.services import (
    accounts,
    nursing_alarms,
    nursing_hall,
    nursing_orders,
    nursing_visits,
)
from opsctl.http.app import create_app
from opsctl.wiring import Container
from tests.support.clinic import ADMIN
from tests.support.nursing import (
    ADDRESS,
    NursingWorld,
    assessed,
    book_paid,
    build_nursing,
    window,
)

ROLES = ("anonymous", "owner", "other_patient", "nurse", "other_nurse", "doctor", "admin", "cs")
ALL = {"owner", "other_patient", "nurse", "other_nurse", "doctor", "admin", "cs"}
N = "/api/v1/nursing"


@dataclass
class World:
    client: TestClient
    c: Container
    w: NursingWorld
    tokens: dict[str, str]

    def call(self, role: str, method: str, path: str, **kwargs: object) -> Response:
        headers = {} if role == "anonymous" else {"Authorization": f"Bearer {self.tokens[role]}"}
        return self.client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]

    def site(self, order_id: str) -> dict[str, float]:
        with self.c.uow() as uow:
            row = nursing_orders.load(uow, order_id)
            return {"lat": row.lat, "lon": row.lon}

    def order(self, state: str) -> str:
        """A fresh order (or alarm) in the state an endpoint needs, made through the services."""
        c, w = self.c, self.w
        if state.startswith("alarm"):
            alarm = nursing_alarms.raise_sos(c.uow(), w.nurse, 22.52, 113.94).public_id
            if state == "alarm_acked":
                nursing_alarms.acknowledge_alarm(c.uow(), ADMIN, alarm)
            return alarm
        if state == "created":
            start, end = window(c.clock.now())
            return nursing_orders.book_order(c.uow(), w.clinic.patient, w.gateway, w.geocoder, w.item, ADDRESS,
                                             start, end, "术后伤口需要换药").order.public_id
        oid = book_paid(c, w, approve=state != "paid")
        if state in ("paid", "open"):
            return oid
        nursing_hall.grab_order(c.uow(), w.nurse, oid)
        if state == "assigned":
            return oid
        assessed(c, w, oid, w.nurse)
        if state == "assessed":
            return oid
        site = self.site(oid)
        nursing_visits.check_in(c.uow(), w.nurse, oid, site["lat"], site["lon"])
        if state == "in_service":
            return oid
        nursing_visits.check_out(c.uow(), w.nurse, oid, site["lat"], site["lon"], "伤口换药完成")
        return oid


def _staff_token(c: Container, username: str, role: Role) -> str:
    accounts.add_staff_account(c.uow(), ADMIN, accounts.NewStaffAccount(
        username=username, role=role, name="职员", practising_since=date(2010, 1, 1), filing=FilingStatus.NONE))
    return accounts.issue_token(c.uow(), ADMIN, username, ttl=timedelta(days=1)).token


def _world(container: Container) -> Iterator[World]:
    w = build_nursing(container, container.clock.now())
    tokens = {role: accounts.issue_token(container.uow(), ADMIN, user, ttl=timedelta(days=1)).token
              for role, user in (("owner", "pt.zhang"), ("other_patient", "pt.wang"), ("nurse", "nr.n"),
                                 ("other_nurse", "nr.s"), ("doctor", "dr.a"))}
    tokens["admin"] = _staff_token(container, "adm.x", Role.ADMIN)
    tokens["cs"] = _staff_token(container, "cs.x", Role.CUSTOMER_SERVICE)
    app = create_app(container.settings, container)
    app.state.payments, app.state.geocoder = w.gateway, w.geocoder
    with TestClient(app) as client:
        yield World(client, container, w, tokens)


@pytest.fixture
def world(container: Container) -> Iterator[World]:
    """SQLite and PostgreSQL."""
    yield from _world(container)


@pytest.fixture
def sqlite_world(sqlite_container: Container) -> Iterator[World]:
    """Authorisation does not depend on the database: the matrix runs once, on SQLite."""
    yield from _world(sqlite_container)


def _window_body(w: World) -> dict[str, str]:
    start, end = window(w.c.clock.now())
    return {"address": ADDRESS, "window_start": start.isoformat(), "window_end": end.isoformat()}


O = f"{N}/orders"
Kwargs = Callable[[World, str], dict[str, Any]] | dict[str, Any]
# (name, method, state, path, request kwargs, roles let in)
MATRIX: list[tuple[str, str, str, Callable[[World, str], str], Kwargs, set[str]]] = [
    ("items", "GET", "-", lambda w, o: f"{N}/items", {}, ALL),
    ("configure", "PUT", "-", lambda w, o: f"{N}/items",
     {"json": {"code": "BLOOD", "name": "上门采血", "price_fen": 8000, "duration_minutes": 30,
               "districts": ["440304"]}}, {"admin"}),
    ("offers", "POST", "-", lambda w, o: f"{N}/offers", lambda w, o: {"json": _window_body(w)},
     {"owner", "other_patient", "admin", "cs"}),
    ("nurses", "GET", "-", lambda w, o: f"{N}/nurses", {}, {"admin", "cs"}),
    ("register_nurse", "PUT", "-", lambda w, o: f"{N}/nurses",
     lambda w, o: {"json": {"staff_id": w.w.nurse.staff_id, "base_lat": 22.52, "base_lon": 113.94}}, {"admin"}),
    ("blacklist", "GET", "-", lambda w, o: f"{N}/blacklist", {}, {"admin", "cs"}),
    ("blacklist_add", "POST", "-", lambda w, o: f"{N}/blacklist",
     lambda w, o: {"json": {"patient_id": "pat_nobody", "reason": "多次爽约且辱骂"}}, {"admin"}),
    ("blacklist_remove", "DELETE", "-", lambda w, o: f"{N}/blacklist/pat_nobody", {}, {"admin"}),
    ("book", "POST", "-", lambda w, o: O,
     lambda w, o: {"json": {**_window_body(w), "item_id": w.w.item, "condition": "术后伤口需要换药"}},
     {"owner", "other_patient"}),
    ("list", "GET", "-", lambda w, o: O, {}, {"owner", "other_patient", "nurse", "other_nurse", "admin", "cs"}),
    ("detail", "GET", "open", lambda w, o: f"{O}/{o}", {}, {"owner", "nurse", "other_nurse", "admin", "cs"}),
    ("cancel", "POST", "paid", lambda w, o: f"{O}/{o}/cancel", {"json": {"reason": "不需要了"}},
     {"owner", "admin", "cs"}),
    ("review", "POST", "completed", lambda w, o: f"{O}/{o}/review", {"json": {"rating": 5}}, {"owner"}),
    ("approve", "POST", "paid", lambda w, o: f"{O}/{o}/approve", {}, {"admin"}),
    ("reject", "POST", "paid", lambda w, o: f"{O}/{o}/reject", {"json": {"reason": "超出服务能力"}}, {"admin"}),
    ("assign", "POST", "open", lambda w, o: f"{O}/{o}/assign",
     lambda w, o: {"json": {"staff_id": w.w.senior.staff_id}}, {"admin"}),
    ("assess", "POST", "assigned", lambda w, o: f"{O}/{o}/assessment",
     {"json": {"suitable": True, "findings": "生命体征平稳，适合上门"}}, {"nurse", "doctor"}),
    ("hall", "GET", "-", lambda w, o: f"{N}/hall", {}, {"nurse", "other_nurse"}),
    ("grab", "POST", "open", lambda w, o: f"{O}/{o}/grab", {}, {"nurse", "other_nurse"}),
    ("check_in", "POST", "assessed", lambda w, o: f"{O}/{o}/check-in", lambda w, o: {"json": w.site(o)}, {"nurse"}),
    ("check_out", "POST", "in_service", lambda w, o: f"{O}/{o}/check-out",
     lambda w, o: {"json": {**w.site(o), "notes": "伤口换药完成，无渗出"}}, {"nurse"}),
    ("note", "POST", "in_service", lambda w, o: f"{O}/{o}/notes", {"json": {"notes": "血压 120/80"}}, {"nurse"}),
    ("track", "POST", "assigned", lambda w, o: f"{O}/{o}/track",
     lambda w, o: {"json": {"points": [{**w.site(o), "recorded_at": w.c.clock.now().isoformat()}]}}, {"nurse"}),
    ("trajectory", "GET", "assigned", lambda w, o: f"{O}/{o}/track", {}, {"nurse", "admin", "cs"}),
    ("visit_record", "GET", "in_service", lambda w, o: f"{O}/{o}/visit-record", {},
     {"owner", "nurse", "admin", "cs"}),
    ("override", "POST", "assigned", lambda w, o: f"{O}/{o}/geofence-override",
     {"json": {"event": "check_in", "reason": "定位漂移已核实"}}, {"admin"}),
    ("sos", "POST", "-", lambda w, o: f"{N}/alarms", {"json": {"lat": 22.52, "lon": 113.94}},
     {"nurse", "other_nurse"}),
    ("alarms", "GET", "-", lambda w, o: f"{N}/alarms", {}, {"admin", "cs"}),
    ("acknowledge", "POST", "alarm_raised", lambda w, o: f"{N}/alarms/{o}/acknowledge", {}, {"admin", "cs"}),
    ("close", "POST", "alarm_acked", lambda w, o: f"{N}/alarms/{o}/close", {"json": {"notes": "已联系，安全"}},
     {"admin", "cs"}),
    ("alarm_stats", "GET", "-", lambda w, o: f"{N}/alarm-stats?since=2026-11-01T00:00:00&until=2026-12-01T00:00:00",
     {}, {"admin", "cs"}),
]


@pytest.mark.slow
def test_role_endpoint_matrix(sqlite_world: World) -> None:
    """Every endpoint × every role, each allowed role on a fresh order in the state the endpoint needs:
    anonymous → 401; a role not let in → 403; a role let in → never 401/403."""
    world, failures = sqlite_world, []
    for name, method, state, path, kwargs, allowed in MATRIX:
        shared = world.order(state) if state != "-" else ""
        for role in ROLES:
            oid = world.order(state) if state != "-" and role in allowed else shared
            response = world.call(role, method, path(world, oid), **(kwargs(world, oid) if callable(kwargs) else kwargs))
            expected = {401} if role == "anonymous" else ({403} if role not in allowed else None)
            ok = response.status_code in expected if expected else response.status_code not in (401, 403)
            if not ok:
                failures.append((name, role, response.status_code, response.text[:120]))
    assert failures == []


def test_an_order_over_http(world: World) -> None:
    w = world.w
    offers = world.call("owner", "POST", f"{N}/offers", json=_window_body(world)).json()
    assert {i["code"] for i in offers["items"]} == {"WOUND", "PICC"}
    booked = world.call("owner", "POST", O, json={**_window_body(world), "item_id": w.item,
                                                 "condition": "术后伤口需要换药"})
    assert booked.status_code == 201, booked.text
    oid, trade = booked.json()["order"]["public_id"], booked.json()["out_trade_no"]
    headers, body = w.gateway.simulate_payment(trade)
    forged = world.client.post("/api/v1/payments/wechat/nursing-notify", headers=headers, content=body + b" ")
    assert forged.status_code == 502 or forged.status_code >= 400
    assert world.client.post("/api/v1/payments/wechat/nursing-notify", headers=headers, content=body).json()[
        "code"] == "SUCCESS"
    assert world.call("admin", "POST", f"{O}/{oid}/approve").json()["status"] == "open"
    assert [h["public_id"] for h in world.call("nurse", "GET", f"{N}/hall").json()] == [oid]
    assert world.call("nurse", "POST", f"{O}/{oid}/grab").json()["status"] == "assigned"
    lost = world.call("other_nurse", "POST", f"{O}/{oid}/grab")
    assert lost.status_code == 409 and lost.headers["content-type"].startswith("application/problem+json")
    world.call("nurse", "POST", f"{O}/{oid}/assessment", json={"suitable": True, "findings": "适合上门护理服务"})
    site = world.site(oid)
    far = world.call("nurse", "POST", f"{O}/{oid}/check-in", json={"lat": site["lat"] + 0.02, "lon": site["lon"]})
    assert far.status_code == 422 and far.json()["rule"] == "R47"
    assert world.call("nurse", "POST", f"{O}/{oid}/check-in", json=site).json()["status"] == "in_service"
    sos = world.call("nurse", "POST", f"{N}/alarms", json={**site, "order_id": oid})
    assert sos.status_code == 201
    done = world.call("nurse", "POST", f"{O}/{oid}/check-out", json={**site, "notes": "伤口换药完成，无渗出"})
    assert done.json()["status"] == "completed"
    assert world.call("owner", "POST", f"{O}/{oid}/review", json={"rating": 4}).json()["review_rating"] == 4
    record = world.call("owner", "GET", f"{O}/{oid}/visit-record").json()
    assert record["intact"] and [e["kind"] for e in record["entries"]] == ["check_in", "check_out"]
    detail = world.call("admin", "GET", f"{O}/{oid}").json()
    assert "502" not in detail["order"]["address"] and detail["order"]["patient_name"] == "张*"
    queue = world.call("cs", "GET", f"{N}/alarms?open_only=true").json()
    assert [a["order_id"] for a in queue] == [oid]
