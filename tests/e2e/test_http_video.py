"""The video-clinic API end to end: the role × endpoint matrix (who is let in,
who is refused), then one visit over HTTP: fused schedule, booking with the
HIS evidence, the signed payment callback, check-in, call, guest, record,
prescription, and a first visit stopped and refunded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from io import BytesIO
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from openpyxl import Workbook

from clinical_core.domain.staff import FilingStatus, Role
from clinical_core.domain.time import FixedClock
from clinical_core.domain.video_visit import EndReason
from clinical_core.services import accounts, drug_catalogue, video_visits
from opsctl.http.app import create_app
from opsctl.wiring import Container
from tests.support.clinic import ADMIN, certify
from tests.support.video import (
    SESSION_END,
    SESSION_START,
    VideoClinic,
    book,
    build_video_clinic,
)

ROLES = ("anonymous", "owner", "other_patient", "doctor", "other_doctor", "admin", "ops")
PATIENTS, DOCTORS = {"owner", "other_patient"}, {"doctor", "other_doctor"}
SIGNED_IN = set(ROLES) - {"anonymous"}


@dataclass
class World:
    """``vc.slot_ids`` holds doctor A's slots over several days; each fresh visit takes the next one."""

    client: TestClient
    c: Container
    clock: FixedClock
    vc: VideoClinic
    tokens: dict[str, str]
    stop_me: str
    next_slot: int = 0
    imports: int = 0

    def call(self, role: str, method: str, path: str, **kwargs: Any) -> Response:
        headers = {} if role == "anonymous" else {"Authorization": f"Bearer {self.tokens[role]}"}
        return self.client.request(method, path, headers=headers, **kwargs)

    def visit(self, state: str) -> str:
        """A fresh visit of the owner in the state an endpoint needs (through the services)."""
        c, k = self.c, self.vc.clinic
        self.clock.current = SESSION_START - timedelta(hours=30)
        visit_id = book(c, self.vc, k.patient, self.next_slot, pay=state != "booked")
        slot_start = video_visits.get_visit(c.uow(), ADMIN, visit_id).starts_at
        self.next_slot += 1
        if state in ("booked", "paid"):
            return visit_id
        self.clock.current = slot_start - timedelta(minutes=5)
        video_visits.check_in(c.uow(), k.patient, c.video_rooms, visit_id)
        if state == "waiting":
            return visit_id
        video_visits.start_call(c.uow(), k.doctor_a, c.video_rooms, visit_id)
        return visit_id


def _staff_token(c: Container, username: str, role: Role) -> str:
    accounts.add_staff_account(c.uow(), ADMIN, accounts.NewStaffAccount(
        username=username, role=role, name="职员", title=None, licence_no=None, practising_since=date(2010, 1, 1),
        filing=FilingStatus.NONE, may_prescribe=False))
    return accounts.issue_token(c.uow(), ADMIN, username, ttl=timedelta(days=30)).token


@pytest.fixture
def world(container: Container, clock: FixedClock) -> Iterator[World]:
    vc = build_video_clinic(container, clock)
    tokens = {role: accounts.issue_token(container.uow(), ADMIN, user, ttl=timedelta(days=30)).token
              for role, user in (("owner", "pt.zhang"), ("other_patient", "pt.wang"), ("doctor", "dr.a"),
                                 ("other_doctor", "dr.c"))}
    tokens["admin"] = _staff_token(container, "adm.v", Role.ADMIN)
    tokens["ops"] = _staff_token(container, "ops.v", Role.OPERATIONS)
    certify(container, vc.clinic.doctor_a)
    from clinical_core.services import video_schedule

    for day in (1, 2, 3):  # enough slots for a fresh visit per allowed role and endpoint
        start = SESSION_START + timedelta(days=day)
        video_schedule.create_session(container.uow(), ADMIN, video_schedule.NewSession(
            vc.clinic.doctor_a.staff_id or "", start, start + timedelta(hours=4), 15, 3000))
    vc.slot_ids = [s.online_slot_id or "" for s in video_schedule.fused_schedule(
        container.uow(), ADMIN, container.his_schedule, start=SESSION_START, end=SESSION_START + timedelta(days=5),
        doctor_id=vc.clinic.doctor_a.staff_id)]
    stop_me = video_schedule.create_session(container.uow(), ADMIN, video_schedule.NewSession(
        vc.clinic.doctor_c.staff_id or "", SESSION_START, SESSION_END, 30, 2000)).public_id
    drug_catalogue.import_catalogue(container.uow(), ADMIN, [(2, {
        "药品编码": "XY001", "通用名": "苯磺酸氨氯地平片", "规格": "5mg*28片", "剂型": "片剂", "单位": "盒",
        "价格(元)": "27.5", "类别": "西药"})], source="t.xlsx")
    with TestClient(create_app(container.settings, container)) as client:
        yield World(client, container, clock, vc, tokens, stop_me)


def _xlsx(w: World) -> bytes:
    from sqlalchemy import select

    from clinical_core.persistence.models import StaffRow

    with w.c.uow() as uow:
        employee = uow.session.scalar(select(StaffRow.employee_no).where(
            StaffRow.public_id == w.vc.clinic.doctor_b.staff_id))
    book_ = Workbook()
    sheet = book_.active
    assert sheet is not None
    sheet.append(["医生工号", "日期", "开始时间", "结束时间", "每号分钟", "挂号费（元）"])
    w.imports += 1
    sheet.append([employee, f"2026-11-{10 + w.imports:02d}", "08:00", "09:00", 15, 30])
    buffer = BytesIO()
    book_.save(buffer)
    return buffer.getvalue()


VV = "/api/v1/video/visits"
WINDOW = {"start": SESSION_START.isoformat(), "end": SESSION_END.isoformat()}
RX = {"diagnosis_codes": ["I10"], "items": [{"drug_code": "XY001", "quantity": 1, "days_supply": 7,
                                             "usage": "每日一次"}]}
MATRIX: list[tuple[str, str, str, Callable[[World, str], str], Any, set[str]]] = [
    ("sessions", "GET", "-", lambda w, v: "/api/v1/video/sessions", {"params": WINDOW}, SIGNED_IN),
    ("publish", "POST", "-", lambda w, v: "/api/v1/video/sessions",
     lambda w, v: {"json": {"doctor_id": w.vc.clinic.doctor_c.staff_id,
                            "starts_at": (SESSION_START + timedelta(days=3 + w.imports)).isoformat(),
                            "ends_at": (SESSION_START + timedelta(days=3 + w.imports, minutes=30)).isoformat(),
                            "slot_minutes": 15, "price_fen": 2000}}, {"admin", "ops"}),
    ("import", "POST", "-", lambda w, v: "/api/v1/video/sessions/import",
     lambda w, v: {"files": {"file": ("s.xlsx", _xlsx(w))}}, {"admin", "ops"}),
    ("stop", "POST", "-", lambda w, v: f"/api/v1/video/sessions/{w.stop_me}/cancel", {}, {"admin", "ops"}),
    ("schedule", "GET", "-", lambda w, v: "/api/v1/video/schedule",
     {"params": {**WINDOW, "department_code": "CARD"}}, SIGNED_IN),
    ("settings", "GET", "-", lambda w, v: "/api/v1/video/settings", {}, SIGNED_IN - PATIENTS),
    ("set_settings", "PUT", "-", lambda w, v: "/api/v1/video/settings", {"json": {"check_mode": "strict"}},
     {"admin"}),
    ("offline_visits", "GET", "-", lambda w, v: "/api/v1/video/my-offline-visits", {}, PATIENTS),
    ("book", "POST", "-", lambda w, v: VV, {"data": {"slot_id": "vsl_nothing", "complaint": "高血压复诊一次"}},
     PATIENTS),
    ("list", "GET", "-", lambda w, v: VV, {}, SIGNED_IN),
    ("detail", "GET", "paid", lambda w, v: f"{VV}/{v}", {}, {"owner", "doctor", "admin", "ops"}),
    ("complaint", "GET", "paid", lambda w, v: f"{VV}/{v}/complaint", {}, {"owner", "doctor"}),
    ("cancel", "POST", "paid", lambda w, v: f"{VV}/{v}/cancel", {}, {"owner", "doctor", "admin"}),
    ("check_in", "POST", "paid", lambda w, v: f"{VV}/{v}/check-in", {}, {"owner"}),
    ("join", "POST", "waiting", lambda w, v: f"{VV}/{v}/join", {}, {"owner", "doctor"}),
    ("guests", "POST", "waiting", lambda w, v: f"{VV}/{v}/guests", {"json": {"relation": "家属"}},
     {"owner", "doctor"}),
    ("documents", "GET", "paid", lambda w, v: f"{VV}/{v}/documents", {}, {"owner", "doctor"}),
    ("start", "POST", "waiting", lambda w, v: f"{VV}/{v}/start", {}, {"doctor"}),
    ("terminate", "POST", "in_call", lambda w, v: f"{VV}/{v}/terminate",
     {"json": {"reason": "first_visit", "note": "属首诊，请线下就诊"}}, {"doctor"}),
    ("end", "POST", "in_call", lambda w, v: f"{VV}/{v}/end", {}, {"doctor"}),
    ("write_record", "POST", "in_call", lambda w, v: f"{VV}/{v}/records", {"json": {"text": "血压控制尚可，继续用药。"}},
     {"doctor"}),
    ("records", "GET", "in_call", lambda w, v: f"{VV}/{v}/records", {}, {"owner", "doctor", "admin"}),
    ("prescribe", "POST", "in_call", lambda w, v: f"{VV}/{v}/prescriptions", {"json": RX}, {"doctor"}),
]


@pytest.mark.slow
def test_role_endpoint_matrix(world: World) -> None:
    """Every endpoint × every role: anonymous → 401; a role not let in → 403; a role let in → never 401/403."""
    failures = []
    for name, method, state, path, kwargs, allowed in MATRIX:
        shared = world.visit(state) if state != "-" else ""
        for role in ROLES:
            vid = world.visit(state) if state != "-" and role in allowed else shared
            world.imports += 1 if name == "publish" else 0
            response = world.call(role, method, path(world, vid), **(kwargs(world, vid) if callable(kwargs) else kwargs))
            expected = {401} if role == "anonymous" else ({403} if role not in allowed else None)
            ok = response.status_code in expected if expected else response.status_code not in (401, 403)
            if not ok:
                failures.append((name, role, response.status_code, response.text[:160]))
    assert failures == []


def test_a_video_visit_over_http(world: World) -> None:
    w, k = world, world.vc.clinic
    fused = w.call("owner", "GET", "/api/v1/video/schedule", params={**WINDOW, "doctor_id": k.doctor_a.staff_id})
    slot = fused.json()[0]
    assert (slot["channels"], slot["available"], slot["price_fen"]) == ("online", True, 3000)
    picks = w.call("owner", "GET", "/api/v1/video/my-offline-visits").json()
    assert picks[0]["visit_no"] == "MZ-pt.zhang" and picks[0]["diagnoses"] == ["I10 原发性高血压", "E78.5 高脂血症"]
    refused = w.call("owner", "POST", VV, data={"slot_id": slot["online_slot_id"], "complaint": "高血压复诊，头晕"})
    assert refused.status_code == 422 and refused.json()["rule"] == "VC-2"
    booked = w.call("owner", "POST", VV, data={"slot_id": slot["online_slot_id"], "complaint": "高血压复诊，头晕",
                                               "his_visit_no": "MZ-pt.zhang"})
    assert booked.status_code == 201, booked.text
    vid, trade = booked.json()["visit"]["public_id"], booked.json()["out_trade_no"]
    headers, body = w.c.payments.simulate_payment(trade)
    for _ in range(2):
        assert w.client.post("/api/v1/payments/wechat/video-notify", content=body, headers=headers).status_code == 200
    taken = w.call("other_patient", "GET", "/api/v1/video/schedule", params={**WINDOW, "doctor_id": k.doctor_a.staff_id})
    assert taken.json()[0]["available"] is False
    w.clock.current = SESSION_START - timedelta(minutes=3)
    patient_token = w.call("owner", "POST", f"{VV}/{vid}/check-in").json()
    assert w.c.video_rooms.verify_token(patient_token["token"]).role == "patient"
    guest = w.call("owner", "POST", f"{VV}/{vid}/guests", json={"relation": "翻译"}).json()
    assert w.c.video_rooms.verify_token(guest["token"]["token"]).role == "guest"
    assert w.call("doctor", "POST", f"{VV}/{vid}/start").status_code == 200
    assert w.call("doctor", "POST", f"{VV}/{vid}/records", json={"text": "头晕，血压 145/90。"}).json()["version"] == 1
    rx = w.call("doctor", "POST", f"{VV}/{vid}/prescriptions", json=RX)
    assert rx.status_code == 201 and rx.json()["video_visit_id"] == vid
    wrong = w.call("doctor", "POST", f"{VV}/{vid}/prescriptions", json={**RX, "diagnosis_codes": ["J45"]})
    assert wrong.status_code == 422 and wrong.json()["rule"] == "R02"
    ended = w.call("doctor", "POST", f"{VV}/{vid}/end").json()
    assert (ended["status"], ended["payment_state"], ended["guests"]) == ("ended", "paid", 1)
    assert w.call("owner", "GET", f"{VV}/{vid}/records").json()[0]["text"] == "头晕，血压 145/90。"


def test_first_visit_stopped_over_http_is_refunded(world: World) -> None:
    vid = world.visit("in_call")
    stopped = world.call("doctor", "POST", f"{VV}/{vid}/terminate",
                         json={"reason": EndReason.FIRST_VISIT.value, "note": "新发症状，属首诊"}).json()
    assert stopped["status"] == "terminated" and stopped["end_reason"] == "first_visit"
    from clinical_core.services import video_ledger

    video_ledger.settle_refunds(world.c.uow(), world.vc.gateway)
    assert world.call("owner", "GET", f"{VV}/{vid}").json()["payment_state"] == "refunded"
