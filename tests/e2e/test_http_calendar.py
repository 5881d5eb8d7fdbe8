"""The publishing calendar over HTTP: every endpoint × every role, doctors limited to their
department (CAL-5), the named and guarded episode transitions (CAL-1, CAL-2, CAL-3, CAL-4), and
problem+json errors."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from clinical_core.domain.staff import Role
from clinical_core.services import accounts
from content.domain.calendar import Platform
from content.services import calendar as cal
from content.services import live
from opsctl.http.app import create_app
from opsctl.wiring import Container
from tests.support.clinic import ADMIN, OPS, Clinic, build_clinic

PROBLEM = "application/problem+json"
NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


@dataclass
class World:
    client: TestClient
    c: Container
    clinic: Clinic
    tokens: dict[str, str]
    series: str  # 心血管内科
    other_series: str  # 消化内科
    episode: str  # 心血管内科, edited
    other_episode: str  # 消化内科, planned
    live_id: str  # hosted by 心内科's doctor A

    def call(self, role: str, method: str, path: str, **kwargs: object) -> Response:
        headers = {} if role == "anonymous" else {"Authorization": f"Bearer {self.tokens[role]}"}
        return self.client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def world(container: Container) -> Iterator[World]:
    c = container
    c.clock.current = NOW  # type: ignore[attr-defined]
    clinic = build_clinic(c)
    tokens = {role: accounts.issue_token(c.uow(), ADMIN, user, ttl=timedelta(days=1)).token
              for role, user in (("patient", "pt.zhang"), ("doctor", "dr.a"), ("other_doctor", "dr.c"))}
    for username, role in (("ops.x", Role.OPERATIONS), ("cs.x", Role.CUSTOMER_SERVICE), ("admin.x", Role.ADMIN)):
        accounts.add_staff_account(c.uow(), ADMIN, accounts.NewStaffAccount(username=username, role=role, name="职员"))
        tokens[username.split(".")[0]] = accounts.issue_token(c.uow(), ADMIN, username, ttl=timedelta(days=1)).token
    series = cal.create_series(c.uow(), OPS, "心内科说血压", "心血管内科")
    other = cal.create_series(c.uow(), OPS, "消化科说胃病", "GAST")  # named by code: also the department's
    ep = cal.add_episode(c.uow(), OPS, series.public_id, "高血压的三个误区")
    cal.mark_shot(c.uow(), OPS, ep.public_id)
    cal.mark_edited(c.uow(), OPS, ep.public_id)
    other_ep = cal.add_episode(c.uow(), OPS, other.public_id, "胃镜前要准备什么")
    session = live.schedule(c.uow(), OPS, platform=Platform.DOUYIN, account="深大附院心内科", title="高血压直播答疑",
                            planned_start=NOW + timedelta(days=3), minutes=60,
                            plan="一、家庭自测血压的方法；二、常用降压药；三、观众提问答疑",
                            host_staff_id=clinic.doctor_a.staff_id)
    with TestClient(create_app(c.settings, c)) as client:
        yield World(client, c, clinic, tokens, series.public_id, other.public_id, ep.public_id, other_ep.public_id,
                    session.public_id)


def test_every_endpoint_by_every_role(world: World) -> None:
    w = world
    s, ep, other_ep = w.series, w.episode, w.other_episode
    reads = [("GET", "/api/v1/content/series", None), ("GET", f"/api/v1/content/series/{s}", None),
             ("GET", "/api/v1/content/episodes", None), ("GET", f"/api/v1/content/episodes/{ep}", None),
             ("GET", "/api/v1/content/calendar?year=2026&month=11", None)]
    writes = [("POST", "/api/v1/content/series", {"title": "护理小课堂", "department": "心血管内科"}),
              ("POST", f"/api/v1/content/series/{s}/episodes", {"title": "第二集"}),
              ("POST", f"/api/v1/content/episodes/{other_ep}/shoot", None),
              ("POST", f"/api/v1/content/episodes/{other_ep}/edit", {"video_path": "out/ep.mp4"}),
              ("POST", f"/api/v1/content/episodes/{ep}/posts",
               {"platform": "douyin", "planned_at": "2026-11-06T20:00:00+08:00"})]
    # expected status per role: reads, then writes (the writes are cumulative, so ops runs them last)
    expect = {
        "anonymous": ([401] * 5, [401] * 5),
        "patient": ([403] * 5, [403] * 5),
        "cs": ([403] * 5, [403] * 5),
        "other_doctor": ([200, 403, 200, 403, 200], [403] * 5),
        "doctor": ([200] * 5, [403] * 5),
        "ops": ([200] * 5, [201, 201, 200, 200, 201]),
    }
    for role, (read_codes, write_codes) in expect.items():
        for (method, path, body), code in zip(reads + writes, read_codes + write_codes, strict=True):
            r = w.call(role, method, path, **({"json": body} if body is not None else {}))
            assert r.status_code == code, (role, method, path, r.text)
            if code >= 400:
                assert r.headers["content-type"].startswith(PROBLEM), (role, path)
                assert r.json()["status"] == code
    # the medical review: a doctor's, never operations' (CAL-1)
    refused = w.call("ops", "POST", f"/api/v1/content/episodes/{ep}/review", json={"approve": True})
    assert refused.status_code == 422 and refused.json()["rule"] == "CAL-1"
    assert w.call("patient", "POST", f"/api/v1/content/episodes/{ep}/review", json={"approve": True}).status_code == 422
    assert w.call("doctor", "POST", f"/api/v1/content/episodes/{ep}/review",
                  json={"approve": True}).json()["status"] == "reviewed"
    # the administrator reads and writes like operations
    assert w.call("admin", "GET", "/api/v1/content/series").status_code == 200
    assert w.call("admin", "POST", "/api/v1/content/series",
                  json={"title": "消化科直播回放", "department": "消化内科"}).status_code == 201


def test_doctors_see_only_their_department(world: World) -> None:
    w = world
    assert [x["public_id"] for x in w.call("doctor", "GET", "/api/v1/content/series").json()] == [w.series]
    assert [x["public_id"] for x in w.call("other_doctor", "GET", "/api/v1/content/series").json()] == [w.other_series]
    assert {x["public_id"] for x in w.call("ops", "GET", "/api/v1/content/series").json()} == {w.series, w.other_series}
    assert [x["public_id"] for x in w.call("doctor", "GET", "/api/v1/content/episodes").json()] == [w.episode]
    assert [x["public_id"] for x in w.call("other_doctor", "GET", "/api/v1/content/episodes").json()] == [
        w.other_episode]
    forbidden = w.call("other_doctor", "GET", f"/api/v1/content/episodes?series_id={w.series}")
    assert forbidden.status_code == 403 and forbidden.headers["content-type"].startswith(PROBLEM)
    # the calendar: the department's posts and the live sessions its doctors host
    post = w.call("ops", "POST", f"/api/v1/content/episodes/{w.episode}/posts",
                  json={"platform": "channels", "planned_at": "2026-11-06T21:00:00+08:00"}).json()
    mine = w.call("doctor", "GET", "/api/v1/content/calendar?since=2026-11-01&until=2026-12-01").json()
    assert [(e["kind"], e["ref"]) for e in mine] == [("live", w.live_id), ("video", post["public_id"])]
    assert w.call("other_doctor", "GET", "/api/v1/content/calendar?since=2026-11-01&until=2026-12-01").json() == []
    everything = w.call("ops", "GET", "/api/v1/content/calendar?year=2026&month=11&platform=channels").json()
    assert [e["ref"] for e in everything] == [post["public_id"]]


def test_episode_transitions_are_named_and_guarded(world: World) -> None:
    w = world
    ep = w.episode
    post = w.call("ops", "POST", f"/api/v1/content/episodes/{ep}/posts",
                  json={"platform": "douyin", "planned_at": "2026-11-06T20:00:00+08:00"})
    assert post.status_code == 201
    post_id = post.json()["public_id"]
    early = w.call("ops", "POST", f"/api/v1/content/posts/{post_id}/publish", json={})
    assert early.status_code == 422 and early.json()["rule"] == "CAL-2"  # not reviewed yet
    again = w.call("ops", "POST", f"/api/v1/content/episodes/{ep}/posts",
                   json={"platform": "douyin", "planned_at": "2026-11-07T20:00:00+08:00"})
    assert again.status_code == 422 and again.json()["rule"] == "CAL-3"
    shoot_twice = w.call("ops", "POST", f"/api/v1/content/episodes/{ep}/shoot")
    assert shoot_twice.status_code == 409 and shoot_twice.headers["content-type"].startswith(PROBLEM)
    back = w.call("doctor", "POST", f"/api/v1/content/episodes/{ep}/review", json={"approve": False})
    assert back.status_code == 422 and back.json()["field"] == "note"  # a send-back needs its reason
    back = w.call("doctor", "POST", f"/api/v1/content/episodes/{ep}/review",
                  json={"approve": False, "note": "剂量表述需与指南一致"})
    assert (back.json()["status"], back.json()["review_note"]) == ("shot", "剂量表述需与指南一致")
    assert w.call("ops", "POST", f"/api/v1/content/episodes/{ep}/edit", json={}).json()["status"] == "edited"
    assert w.call("doctor", "POST", f"/api/v1/content/episodes/{ep}/review",
                  json={"approve": True}).json()["status"] == "reviewed"
    naive = w.call("ops", "POST", f"/api/v1/content/posts/{post_id}/reschedule",
                   json={"planned_at": "2026-11-08T20:00:00"})
    assert naive.status_code == 422 and naive.json()["field"] == "planned_at"
    moved = w.call("ops", "POST", f"/api/v1/content/posts/{post_id}/reschedule",
                   json={"planned_at": "2026-11-08T20:00:00+08:00"})
    assert datetime.fromisoformat(moved.json()["planned_at"]) == datetime(2026, 11, 8, 12, 0, tzinfo=UTC)
    done = w.call("ops", "POST", f"/api/v1/content/posts/{post_id}/publish", json={"external_id": "7301"})
    assert done.status_code == 200 and done.json()["external_id"] == "7301"
    assert w.call("doctor", "GET", f"/api/v1/content/episodes/{ep}").json()["status"] == "published"
    late = w.call("ops", "POST", f"/api/v1/content/posts/{post_id}/reschedule",
                  json={"planned_at": "2026-11-09T20:00:00+08:00"})
    assert late.status_code == 422 and late.json()["rule"] == "CAL-4"
    twice = w.call("ops", "POST", f"/api/v1/content/posts/{post_id}/publish", json={})
    assert twice.status_code == 409
    missing = w.call("ops", "POST", "/api/v1/content/episodes/epi_missing/shoot")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith(PROBLEM)
    bad_range = w.call("ops", "GET", "/api/v1/content/calendar?since=2026-11-10&until=2026-11-01")
    assert bad_range.status_code == 422 and bad_range.headers["content-type"].startswith(PROBLEM)
    assert w.call("ops", "GET", "/api/v1/content/calendar").status_code == 422
