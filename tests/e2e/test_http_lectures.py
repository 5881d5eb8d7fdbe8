"""名医讲堂 over HTTP: the role matrix, a doctor's audio upload (probed; a bad file leaves nothing behind),
patients' comments/likes/shares/tips with the signed payment callback, operations' moderation and refund,
and a doctor's medical review of a short video."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from clinical_core.domain.staff import Role
from clinical_core.services import accounts
from content.services import calendar as cal
from opsctl.http.app import create_app
from opsctl.wiring import Container
from tests.support.clinic import ADMIN, OPS, Clinic, build_clinic
from tests.support.media import ff

BODY = "没有症状也要按时服药，血压平稳后不要自行停药。" * 2
PROBLEM = "application/problem+json"


@dataclass
class World:
    client: TestClient
    c: Container
    clinic: Clinic
    tokens: dict[str, str]

    def call(self, role: str, method: str, path: str, **kwargs: object) -> Response:
        headers = {} if role == "anonymous" else {"Authorization": f"Bearer {self.tokens[role]}"}
        return self.client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def world(container: Container) -> Iterator[World]:
    clinic = build_clinic(container)
    tokens = {role: accounts.issue_token(container.uow(), ADMIN, user, ttl=timedelta(days=1)).token
              for role, user in (("patient", "pt.zhang"), ("other_patient", "pt.wang"), ("doctor", "dr.a"),
                                 ("other_doctor", "dr.c"))}
    accounts.add_staff_account(container.uow(), ADMIN, accounts.NewStaffAccount(
        username="ops.x", role=Role.OPERATIONS, name="运营"))
    tokens["ops"] = accounts.issue_token(container.uow(), ADMIN, "ops.x", ttl=timedelta(days=1)).token
    with TestClient(create_app(container.settings, container)) as client:
        yield World(client, container, clinic, tokens)


def _create(w: World, role: str = "doctor", publish: bool = True) -> Response:
    return w.call(role, "POST", "/api/v1/lectures", data={"title": "高血压的三个误区", "category": "心血管",
                                                          "kind": "text", "body": BODY, "publish": str(publish).lower()})


def test_role_matrix(world: World) -> None:
    w = world
    assert _create(w, "patient").status_code == 403
    assert _create(w, "ops").status_code == 403
    assert _create(w, "anonymous").status_code == 401
    lec = _create(w).json()["public_id"]
    draft = _create(w, publish=False).json()["public_id"]
    expectations = [
        ("patient", "GET", f"/api/v1/lectures/{draft}", None, 404),
        ("other_doctor", "POST", f"/api/v1/lectures/{lec}/disable", None, 403),
        ("patient", "POST", f"/api/v1/lectures/{lec}/disable", None, 403),
        ("doctor", "POST", f"/api/v1/lectures/{lec}/comments", {"body": "医生不能评论"}, 403),
        ("patient", "GET", "/api/v1/lecture-comments", None, 403),
        ("doctor", "POST", "/api/v1/lecture-tips/tip_x/refund", {"reason": "x"}, 403),
        ("patient", "PUT", f"/api/v1/lectures/{draft}/like", None, 404),
        ("patient", "POST", f"/api/v1/lectures/{lec}/tips", {"amount_fen": 10}, 422),
        ("anonymous", "GET", "/api/v1/lectures", None, 401),
        ("ops", "GET", "/api/v1/doctor/lectures", None, 403),
    ]
    for role, method, path, body, status in expectations:
        r = w.call(role, method, path, json=body) if body is not None else w.call(role, method, path)
        assert r.status_code == status, (role, method, path, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)
    assert [x["public_id"] for x in w.call("patient", "GET", "/api/v1/lectures").json()] == [lec]
    tabs = {tab: [x["public_id"] for x in w.call("doctor", "GET", "/api/v1/doctor/lectures",
                                                 params={"tab": tab}).json()] for tab in ("published", "drafts")}
    assert tabs == {"published": [lec], "drafts": [draft]}


def test_audio_upload_is_probed_and_edit_republishes_a_new_version(world: World, tmp_path: Path) -> None:
    w = world
    good, wav = tmp_path / "good.mp3", tmp_path / "short.mp3"
    ff("-f", "lavfi", "-i", "sine=f=300:d=12", "-c:a", "libmp3lame", "-b:a", "32k", str(good))
    ff("-f", "lavfi", "-i", "sine=f=300:d=3", "-c:a", "libmp3lame", "-b:a", "32k", str(wav))
    form = {"title": "高血压音频课", "category": "心血管", "kind": "audio", "publish": "true"}
    store = w.c.settings.data_dir / "lectures" / "audio"
    short = w.call("doctor", "POST", "/api/v1/lectures", data=form, files={"audio": ("a.mp3", wav.read_bytes())})
    assert short.status_code == 422 and "LEC-A1" in short.json()["detail"] + short.json().get("rule", "")
    assert not store.exists() or list(store.iterdir()) == []  # the refused upload is gone
    notaudio = w.call("doctor", "POST", "/api/v1/lectures", data=form, files={"audio": ("a.exe", b"MZ")})
    assert notaudio.status_code == 422
    made = w.call("doctor", "POST", "/api/v1/lectures", data=form, files={"audio": ("a.mp3", good.read_bytes())})
    assert made.status_code == 201, made.text
    lec = made.json()
    assert lec["audio_seconds"] == pytest.approx(12, abs=0.2) and len(list(store.iterdir())) == 1
    edited = w.call("doctor", "PUT", f"/api/v1/lectures/{lec['public_id']}",
                    data=form | {"title": "高血压音频课（修订）", "publish": "false"},
                    files={"audio": ("b.mp3", good.read_bytes())})
    assert (edited.json()["version"], edited.json()["pending_edit"]) == (2, True)
    seen = w.call("patient", "GET", f"/api/v1/lectures/{lec['public_id']}").json()["lecture"]
    assert (seen["title"], seen["version"]) == ("高血压音频课", 1)
    assert w.call("doctor", "POST", f"/api/v1/lectures/{lec['public_id']}/publish").json()["published_version"] == 2
    assert w.call("patient", "GET", f"/api/v1/lectures/{lec['public_id']}").json()["lecture"]["version"] == 2


def test_patients_engage_and_operations_moderate_and_refund(world: World) -> None:
    w = world
    lec = _create(w).json()["public_id"]
    base = f"/api/v1/lectures/{lec}"
    c1 = w.call("patient", "POST", f"{base}/comments", json={"body": "讲得很清楚，谢谢医生"})
    assert c1.status_code == 201 and c1.json()["author"] == "张*"
    assert w.call("other_patient", "GET", f"{base}/comments").json() == []
    queue = w.call("ops", "GET", "/api/v1/lecture-comments").json()
    assert [x["public_id"] for x in queue] == [c1.json()["public_id"]]
    assert w.call("ops", "POST", f"/api/v1/lecture-comments/{queue[0]['public_id']}/approve").json()["status"] == "approved"
    again = w.call("ops", "POST", f"/api/v1/lecture-comments/{queue[0]['public_id']}/reject", json={"reason": "x"})
    assert again.status_code == 409 and again.headers["content-type"].startswith(PROBLEM)
    assert len(w.call("other_patient", "GET", f"{base}/comments").json()) == 1
    w.call("patient", "PUT", f"{base}/like")
    assert w.call("patient", "PUT", f"{base}/like").json()["likes"] == 1
    assert w.call("other_patient", "POST", f"{base}/shares", json={"channel": "moments"}).json()["shares"] == 1
    order = w.call("patient", "POST", f"{base}/tips", json={"amount_fen": 888})
    assert order.status_code == 201, order.text
    headers, body = w.c.payments.simulate_payment(order.json()["out_trade_no"])
    forged = w.client.post("/api/v1/payments/wechat/lecture-tip-notify", content=body,
                           headers={**headers, "Wechatpay-Signature": "0" * 64})
    assert forged.status_code == 502
    for _ in range(2):
        ok = w.client.post("/api/v1/payments/wechat/lecture-tip-notify", content=body, headers=headers)
        assert ok.json() == {"code": "SUCCESS", "message": "成功"}
    detail = w.call("patient", "GET", base).json()["engagement"]
    assert (detail["likes"], detail["liked_by_me"], detail["comments"], detail["tips"], detail["tips_fen"]) == \
        (1, True, 1, 1, 888)
    tip_id = order.json()["tip_id"]
    assert [t["tip_id"] for t in w.call("doctor", "GET", "/api/v1/lecture-tips").json()] == [tip_id]
    assert w.call("other_doctor", "GET", "/api/v1/lecture-tips").json() == []
    assert w.call("ops", "POST", f"/api/v1/lecture-tips/{tip_id}/refund",
                  json={"reason": "患者误操作"}).json()["status"] == "refund_pending"


def test_doctor_does_the_medical_review_over_http(world: World) -> None:
    w = world
    series = cal.create_series(w.c.uow(), OPS, "心内科说血压", "心血管内科")
    ep = cal.add_episode(w.c.uow(), OPS, series.public_id, "高血压的三个误区")
    cal.mark_shot(w.c.uow(), OPS, ep.public_id)
    cal.mark_edited(w.c.uow(), OPS, ep.public_id)
    assert [e["public_id"] for e in w.call("doctor", "GET", "/api/v1/content/episodes").json()] == [ep.public_id]
    refused = w.call("ops", "POST", f"/api/v1/content/episodes/{ep.public_id}/review", json={"approve": True})
    assert refused.status_code == 422 and refused.headers["content-type"].startswith(PROBLEM)
    done = w.call("doctor", "POST", f"/api/v1/content/episodes/{ep.public_id}/review", json={"approve": True})
    assert (done.json()["status"], done.json()["reviewer"]) == ("reviewed", "医生A")
