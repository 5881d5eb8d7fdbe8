"""The consultation API end to end: a walk through the whole role × endpoint
matrix (who is let in, who is refused), then one consultation's life over
HTTP including the signed payment callback and an image upload."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select


from clinical_core.domain.consultation import MessageKind, ServiceKind
from clinical_core.domain.staff import FilingStatus, Role
from clinical_core.persistence.models import DepartmentRow, HisVisitRow, PatientRow
from clinical_core.services import (
    accounts,
    consult_settings,
    consultation,
    drug_catalogue,
    prescriptions,
    rx_circulation,
    rx_renewals,
)
from opsctl.http.app import create_app
from opsctl.wiring import Container
from tests.support.clinic import ADMIN, OPS, Clinic, build_clinic, certify
from clinical_core.domain.access import Principal

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 64
QUESTION = "胸闷一周，活动后加重，想咨询"
ROLES = ("anonymous", "owner", "other_patient", "doctor", "other_doctor", "admin", "pharmacist")


@dataclass
class World:
    client: TestClient
    c: Container
    clinic: Clinic
    tokens: dict[str, str]
    service: str
    pharmacist: Principal | None = None

    def call(self, role: str, method: str, path: str, **kwargs: object) -> Response:
        headers = {} if role == "anonymous" else {"Authorization": f"Bearer {self.tokens[role]}"}
        return self.client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]

    # Orders in the state an endpoint needs, made through the services.
    def order(self, state: str) -> str:
        c, k = self.c, self.clinic
        if state in ("rx_pending", "rx_chronic"):
            days, reason = (28, "高血压病情稳定") if state == "rx_chronic" else (7, None)
            return prescriptions.issue_prescription(c.uow(), k.doctor_a, c.his, c.signer, prescriptions.NewPrescription(
                self.order("in_progress"), ("I10",), (prescriptions.NewItem("XY001", 1, days, "每日一次"),),
                long_term_reason=reason)).public_id
        if state.startswith("rx_"):  # circulation: approved → paid (store chosen) → dispensed → shipped
            rx_id = self.order("rx_chronic" if state in ("rx_chronic_dispensed", "rx_renewal") else "rx_pending")
            assert self.pharmacist is not None
            prescriptions.review_prescription(c.uow(), self.pharmacist, c.signer, rx_id, approve=True)
            if state == "rx_approved":
                return rx_id
            rx_circulation.choose_store(c.uow(), k.patient, rx_id, "PH-01")
            order = rx_circulation.pay_for_drugs(c.uow(), k.patient, c.payments, rx_id)
            rx_circulation.handle_paid_notification(c.uow(), c.payments, *c.payments.simulate_payment(
                order.out_trade_no))
            if state == "rx_paid":
                return rx_id
            rx_circulation.dispense(c.uow(), ADMIN, c.signer, rx_id)
            if state in ("rx_dispensed", "rx_chronic_dispensed"):
                return rx_id
            if state == "rx_renewal":
                return rx_renewals.request_renewal(c.uow(), k.patient, rx_id).public_id
            rx_circulation.ship(c.uow(), ADMIN, rx_id, "顺丰速运", "SF1234567890")
            return rx_id
        created = consultation.create_consultation(c.uow(), k.patient, c.payments, self.service, QUESTION)
        oid = created.consultation.public_id
        if state == "created":
            return oid
        consultation.handle_paid_notification(c.uow(), c.payments, *c.payments.simulate_payment(
            created.out_trade_no or ""))
        if state == "waiting":
            return oid
        consultation.claim_consultation(c.uow(), k.doctor_a, oid)
        consultation.post_message(c.uow(), k.patient, c.attachments, oid, MessageKind.IMAGE, None, PNG)
        if state == "claimed":
            return oid
        consultation.post_message(c.uow(), k.doctor_a, c.attachments, oid, MessageKind.TEXT, "您好")
        if state == "in_progress":
            return oid
        consultation.reply_consultation(c.uow(), k.doctor_a, oid, "建议复诊")
        if state == "replied":
            return oid
        consultation.close_consultation(c.uow(), k.patient, oid)
        return oid


def _staff_token(c: Container, username: str, role: Role, title: str) -> str:
    accounts.add_staff_account(c.uow(), ADMIN, accounts.NewStaffAccount(
        username=username, role=role, name="职员", title=title, licence_no="X1", practising_since=date(2010, 1, 1),
        filing=FilingStatus.FILED, may_prescribe=False))
    return accounts.issue_token(c.uow(), ADMIN, username, ttl=timedelta(days=1)).token


@pytest.fixture
def world(container: Container) -> Iterator[World]:
    clinic = build_clinic(container)
    tokens = {role: accounts.issue_token(container.uow(), ADMIN, user, ttl=timedelta(days=1)).token
              for role, user in (("owner", "pt.zhang"), ("other_patient", "pt.wang"), ("doctor", "dr.a"),
                                 ("other_doctor", "dr.c"))}
    tokens["admin"] = _staff_token(container, "adm.x", Role.ADMIN, None)  # type: ignore[arg-type]
    tokens["pharmacist"] = _staff_token(container, "ph.x", Role.PHARMACIST, "主管药师")
    pharmacist = [a for a in accounts.list_accounts(container.uow(), ADMIN) if a.username == "ph.x"][0]
    reviewer = Principal(pharmacist.public_id, "ph.x", Role.PHARMACIST, staff_id=pharmacist.staff_id)
    certify(container, clinic.doctor_a, reviewer)
    rx_circulation.add_store(container.uow(), ADMIN, "PH-01", "院内药房", "深圳市福田区某路 1 号")
    drug_catalogue.import_catalogue(container.uow(), ADMIN, [(2, {
        "药品编码": "XY001", "通用名": "苯磺酸氨氯地平片", "规格": "5mg*28片", "剂型": "片剂", "单位": "盒",
        "价格(元)": "27.5", "类别": "西药"})], source="t.xlsx")
    with container.uow() as uow:
        uow.session.add(HisVisitRow(
            visit_no="MZ1", visited_at=datetime(2026, 9, 1, tzinfo=UTC), visit_type="outpatient",
            patient_id=uow.session.scalar(select(PatientRow.id).where(PatientRow.public_id == clinic.patient.patient_id)),
            department_id=uow.session.scalar(select(DepartmentRow.id).where(DepartmentRow.code == "CARD")),
            diagnoses=[{"icd10": "I10", "name": "原发性高血压"}]))
        uow.commit()
    service = consult_settings.configure_service(container.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=1500, department_code="CARD")).public_id
    with TestClient(create_app(container.settings, container)) as client:
        yield World(client, container, clinic, tokens, service, reviewer)


def _attachment_path(w: World, oid: str) -> str:
    detail = consultation.get_consultation(w.c.uow(), w.clinic.patient, oid)
    return f"/api/v1/consultations/{oid}/messages/{detail.messages[0].public_id}/attachment"


C = "/api/v1/consultations"
# (name, method, state of the order, path (oid → path), request kwargs, roles let in)
P = "/api/v1/prescriptions"
RX_BODY = {"diagnosis_codes": ["I10"], "items": [{"drug_code": "XY001", "quantity": 1, "days_supply": 7,
                                                  "usage": "每日一次"}]}
ALL = {"owner", "other_patient", "doctor", "other_doctor", "admin", "pharmacist"}
MATRIX: list[tuple[str, str, str, Callable[[World, str], str], Any, set[str]]] = [
    ("services", "GET", "-", lambda w, o: "/api/v1/consult-services", {},
     {"owner", "other_patient", "doctor", "other_doctor", "admin", "pharmacist"}),
    ("configure", "PUT", "-", lambda w, o: "/api/v1/consult-services",
     {"json": {"kind": "department", "price_fen": 900, "department_code": "GAST"}}, {"admin"}),
    ("create", "POST", "-", lambda w, o: C, {"json": {"service_id": "svc_x", "question": QUESTION}},
     {"owner", "other_patient"}),
    ("list", "GET", "-", lambda w, o: C, {}, {"owner", "other_patient", "admin"}),
    ("detail", "GET", "claimed", lambda w, o: f"{C}/{o}", {}, {"owner", "doctor"}),
    ("cancel", "POST", "created", lambda w, o: f"{C}/{o}/cancel", {}, {"owner", "admin"}),
    ("message", "POST", "claimed", lambda w, o: f"{C}/{o}/messages", {"data": {"kind": "text", "text": "补充"}},
     {"owner", "doctor"}),
    ("attachment", "GET", "claimed", _attachment_path, {}, {"owner", "doctor"}),
    ("todo", "GET", "-", lambda w, o: "/api/v1/doctor/todo?mode=department", {}, {"doctor", "other_doctor"}),
    ("claim", "POST", "waiting", lambda w, o: f"{C}/{o}/claim", {}, {"doctor"}),
    ("transfer", "POST", "claimed", lambda w, o: f"{C}/{o}/transfer", {"json": {"department_code": "GAST"}},
     {"doctor", "admin"}),
    ("reply", "POST", "in_progress", lambda w, o: f"{C}/{o}/reply", {"json": {"conclusion": "按时服药"}}, {"doctor"}),
    ("close", "POST", "replied", lambda w, o: f"{C}/{o}/close", {}, {"owner", "doctor"}),
    ("review", "POST", "closed", lambda w, o: f"{C}/{o}/review", {"json": {"rating": 5}}, {"owner"}),
    ("health_record", "GET", "claimed", lambda w, o: f"{C}/{o}/health-record", {}, {"owner", "doctor"}),
    ("my_health_record", "GET", "-", lambda w, o: "/api/v1/me/health-record", {}, {"owner", "other_patient"}),
    ("masked_call", "POST", "claimed", lambda w, o: f"{C}/{o}/masked-call", {}, {"doctor"}),
    ("refund", "POST", "waiting", lambda w, o: f"{C}/{o}/refunds", {"json": {"reason": "投诉"}}, {"admin"}),
    ("refunds", "GET", "-", lambda w, o: "/api/v1/consult-refunds", {}, {"admin"}),
    ("statistics", "GET", "-", lambda w, o: "/api/v1/consult-statistics", {}, {"admin"}),
    ("rx_rules", "GET", "-", lambda w, o: "/api/v1/prescription-rules", {}, ALL),
    ("rx_issue", "POST", "in_progress", lambda w, o: P, lambda w, o: {"json": {**RX_BODY, "consultation_id": o}},
     {"doctor"}),
    ("rx_revise", "PUT", "rx_pending", lambda w, o: f"{P}/{o}",
     lambda w, o: {"json": {**RX_BODY, "consultation_id": "con_x"}}, {"doctor"}),
    ("rx_list", "GET", "-", lambda w, o: P, {}, {"admin", "pharmacist"}),
    ("rx_queue", "GET", "-", lambda w, o: "/api/v1/pharmacist/review-queue", {}, {"pharmacist"}),
    ("rx_detail", "GET", "rx_pending", lambda w, o: f"{P}/{o}", {}, {"owner", "doctor", "admin", "pharmacist"}),
    ("rx_review", "POST", "rx_pending", lambda w, o: f"{P}/{o}/review", {"json": {"approve": True}}, {"pharmacist"}),
    ("rx_void", "POST", "rx_pending", lambda w, o: f"{P}/{o}/void", {"json": {"reason": "改线下"}},
     {"doctor", "admin"}),
    ("rx_stores", "GET", "-", lambda w, o: "/api/v1/dispensing-stores", {}, ALL),
    ("rx_print", "GET", "rx_approved", lambda w, o: f"{P}/{o}/pdf", {}, {"owner", "doctor", "admin", "pharmacist"}),
    ("rx_verify_qr", "POST", "-", lambda w, o: f"{P}/verify-qr", {"json": {"qr": "RX1.e30"}}, {"admin", "pharmacist"}),
    ("rx_pay", "POST", "rx_approved", lambda w, o: f"{P}/{o}/payment", {}, {"owner"}),
    ("rx_store", "PUT", "rx_approved", lambda w, o: f"{P}/{o}/store", {"json": {"store_code": "PH-01"}},
     {"owner", "admin"}),
    ("rx_track", "GET", "rx_paid", lambda w, o: f"{P}/{o}/circulation", {}, {"owner", "admin", "pharmacist"}),
    ("rx_refund", "POST", "rx_paid", lambda w, o: f"{P}/{o}/refund", {"json": {"reason": "不需要了"}},
     {"owner", "admin"}),
    ("rx_dispense", "POST", "rx_paid", lambda w, o: f"{P}/{o}/dispense", {}, {"admin", "pharmacist"}),
    ("rx_ship", "POST", "rx_dispensed", lambda w, o: f"{P}/{o}/ship",
     {"json": {"carrier": "顺丰速运", "tracking_no": "SF1234567890"}}, {"admin", "pharmacist"}),
    ("rx_deliver", "POST", "rx_shipped", lambda w, o: f"{P}/{o}/deliver", {}, {"owner", "admin"}),
    ("rx_renew", "POST", "rx_chronic_dispensed", lambda w, o: f"{P}/{o}/renewals", {}, {"owner"}),
    ("renewal_queue", "GET", "-", lambda w, o: "/api/v1/doctor/renewals", {}, {"doctor", "other_doctor"}),
    ("renewal_detail", "GET", "rx_renewal", lambda w, o: f"/api/v1/renewals/{o}", {}, {"owner", "doctor"}),
    ("renewal_decide", "POST", "rx_renewal", lambda w, o: f"/api/v1/renewals/{o}/decision",
     {"json": {"approve": False, "reason": "请先预约复诊"}}, {"doctor"}),
]


@pytest.mark.slow
def test_role_endpoint_matrix(world: World) -> None:
    """Every endpoint × every role, each allowed role on a fresh order in the state the endpoint needs:
    anonymous → 401; a role not let in → 403; a role let in → never 401/403."""
    failures = []
    for name, method, state, path, kwargs, allowed in MATRIX:
        shared = world.order(state) if state != "-" else ""  # refusals change nothing: they may share an order
        for role in ROLES:
            oid = world.order(state) if state != "-" and role in allowed else shared
            response = world.call(role, method, path(world, oid),
                                  **(kwargs(world, oid) if callable(kwargs) else kwargs))
            expected = {401} if role == "anonymous" else ({403} if role not in allowed else None)
            ok = response.status_code in expected if expected else response.status_code not in (401, 403)
            if not ok:
                failures.append((name, role, response.status_code, response.text[:120]))
    assert failures == []


def test_a_consultation_over_http(world: World) -> None:
    w = world
    created = w.call("owner", "POST", C, json={"service_id": w.service, "question": QUESTION})
    assert created.status_code == 201, created.text
    oid, trade = created.json()["consultation"]["public_id"], created.json()["out_trade_no"]
    headers, body = w.c.payments.simulate_payment(trade)
    forged = w.client.post("/api/v1/payments/wechat/notify", content=body, headers={**headers,
                                                                                    "Wechatpay-Signature": "0" * 64})
    assert forged.status_code == 502
    for _ in range(2):  # the provider repeats notifications
        paid = w.client.post("/api/v1/payments/wechat/notify", content=body, headers=headers)
        assert paid.json() == {"code": "SUCCESS", "message": "成功"}
    pool = w.call("doctor", "GET", "/api/v1/doctor/todo", params={"mode": "department"}).json()
    assert [o["public_id"] for o in pool] == [oid]
    assert w.call("doctor", "POST", f"{C}/{oid}/claim").json()["status"] == "claimed"
    lost = w.call("doctor", "POST", f"{C}/{oid}/claim")
    assert lost.status_code == 409 and lost.headers["content-type"].startswith("application/problem+json")
    up = w.call("owner", "POST", f"{C}/{oid}/messages", data={"kind": "image", "text": "检查单"},
                files={"file": ("a.png", PNG, "image/png")})
    assert up.status_code == 201 and up.json()["attachment_mime"] == "image/png"
    bad = w.call("owner", "POST", f"{C}/{oid}/messages", data={"kind": "image"},
                 files={"file": ("a.png", b"<script>", "image/png")})
    assert bad.status_code == 422 and bad.json()["field"] == "attachment"
    image = w.call("doctor", "GET", f"{C}/{oid}/messages/{up.json()['public_id']}/attachment")
    assert image.content == PNG and image.headers["content-type"] == "image/png"
    w.call("doctor", "POST", f"{C}/{oid}/messages", data={"kind": "text", "text": "请问血压多少"})
    assert w.call("doctor", "POST", f"{C}/{oid}/reply", json={"conclusion": "建议复诊"}).json()["status"] == "replied"
    assert w.call("owner", "POST", f"{C}/{oid}/close").json()["status"] == "closed"
    reviewed = w.call("owner", "POST", f"{C}/{oid}/review", json={"rating": 4, "comment": "好"}).json()
    assert (reviewed["status"], reviewed["payment_state"], reviewed["review_rating"]) == ("reviewed", "paid", 4)
    detail = w.call("owner", "GET", f"{C}/{oid}").json()
    assert detail["question"] == QUESTION and len(detail["messages"]) == 3
    assert detail["consultation"]["patient_name"] == "张*"
    income = w.call("admin", "GET", "/api/v1/consult-statistics").json()
    assert sum(r["net_fen"] for r in income) == 1500
    assert w.call("other_patient", "GET", C).json() == []




def test_openapi_lists_consultation_and_prescription_endpoints(world: World) -> None:
    paths = set(world.client.get("/openapi.json").json()["paths"])
    assert {"/api/v1/consultations", "/api/v1/consultations/{consultation_id}/claim", "/api/v1/doctor/todo",
            "/api/v1/payments/wechat/notify", "/api/v1/prescriptions", "/api/v1/pharmacist/review-queue",
            "/api/v1/prescription-rules"} <= paths


def test_prescription_circulation_over_http(world: World) -> None:
    """Approved → the patient pays (signed, repeated callback), chooses a store, tracks; the store
    dispenses once (R54), ships; the patient confirms delivery. Before approval: R20 as 422."""
    w = world
    pending = w.order("rx_pending")
    early = w.call("owner", "POST", f"{P}/{pending}/payment")
    assert early.status_code == 422 and early.json()["rule"] == "R20", early.text
    rx_id = w.order("rx_approved")
    assert [s["code"] for s in w.call("owner", "GET", "/api/v1/dispensing-stores").json()] == ["PH-01"]
    assert w.call("owner", "PUT", f"{P}/{rx_id}/store", json={"store_code": "PH-01"}).json()["store_code"] == "PH-01"
    order = w.call("owner", "POST", f"{P}/{rx_id}/payment").json()
    assert order["circulation"]["amount_fen"] == 2750 and order["client_params"]
    headers, body = w.c.payments.simulate_payment(order["out_trade_no"])
    forged = w.client.post("/api/v1/payments/wechat/rx-notify", content=body,
                           headers={**headers, "Wechatpay-Signature": "0" * 64})
    assert forged.status_code == 502
    for _ in range(2):
        assert w.client.post("/api/v1/payments/wechat/rx-notify", content=body, headers=headers).json()["code"] == \
            "SUCCESS"
    tracked = w.call("owner", "GET", f"{P}/{rx_id}/circulation").json()
    assert (tracked["status"], tracked["paid_fen"]) == ("paid", 2750)
    assert w.call("pharmacist", "POST", f"{P}/{rx_id}/dispense").json()["status"] == "dispensed"
    again = w.call("pharmacist", "POST", f"{P}/{rx_id}/dispense")
    assert again.status_code == 422 and again.json()["rule"] == "R54"
    shipped = w.call("pharmacist", "POST", f"{P}/{rx_id}/ship", json={"carrier": "顺丰速运",
                                                                       "tracking_no": "SF1234567890"}).json()
    assert shipped["tracking_no"] == "SF1234567890"
    assert w.call("owner", "POST", f"{P}/{rx_id}/deliver").json()["status"] == "delivered"


def test_print_a_prescription_over_http(world: World) -> None:
    """The PDF for the owner; its QR code (as the store scans it) checked by a pharmacist."""
    from clinical_core.services import rx_print

    w = world
    rx_id = w.order("rx_approved")
    pdf = w.call("owner", "GET", f"{P}/{rx_id}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    qr = rx_print.printout(w.c.uow(), ADMIN, w.c.signer, rx_id).qr_text
    check = w.call("pharmacist", "POST", f"{P}/verify-qr", json={"qr": qr})
    assert check.status_code == 200 and check.json()["usable"] is True
    assert w.call("pharmacist", "POST", f"{P}/verify-qr", json={"qr": "not a prescription"}).status_code == 422
    assert w.call("owner", "GET", f"{P}/{w.order('rx_pending')}/pdf").status_code == 409
