"""Questionnaires and follow-up plans over HTTP: doctors define and start, patients answer
(problem+json naming the question), the care team reads; ownership enforced."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from campaigns.services import followup
from clinical_core.services import accounts
from opsctl.http.app import create_app
from opsctl.wiring import Container
from tests.support.clinic import ADMIN, Clinic, build_clinic

BP = {"title": "高血压随访问卷", "questions": [
    {"key": "sbp", "kind": "number", "title": "收缩压", "min": 60, "max": 260, "unit": "mmHg"},
    {"key": "dizzy", "kind": "single", "title": "近一周是否头晕", "options": ["否", "偶尔", "经常"]},
]}


@pytest.fixture
def api(container: Container) -> Iterator[tuple[TestClient, Clinic, dict[str, dict[str, str]]]]:
    clinic = build_clinic(container)
    auth = {name: {"Authorization": "Bearer " + accounts.issue_token(container.uow(), ADMIN, name,
                                                                     ttl=timedelta(days=1)).token}
            for name in ("dr.a", "dr.b", "pt.zhang", "pt.wang")}
    with TestClient(create_app(container.settings, container)) as client:
        yield client, clinic, auth


def test_questionnaire_and_plan_over_http(api: tuple[TestClient, Clinic, dict[str, dict[str, str]]],
                                         container: Container) -> None:
    client, clinic, auth = api
    assert client.post("/api/v1/questionnaires", json=BP, headers=auth["pt.zhang"]).status_code == 403
    created = client.post("/api/v1/questionnaires", json=BP, headers=auth["dr.a"])
    assert created.status_code == 201, created.text
    qid = created.json()["questionnaire_id"]
    assert client.get(f"/api/v1/questionnaires/{qid}", headers=auth["pt.zhang"]).json()["definition"] == {
        "title": "高血压随访问卷", "questions": [
            {"key": "sbp", "kind": "number", "title": "收缩压", "required": True, "min": 60.0, "max": 260.0,
             "unit": "mmHg"},
            {"key": "dizzy", "kind": "single", "title": "近一周是否头晕", "required": True,
             "options": ["否", "偶尔", "经常"]}]}

    bad = client.post(f"/api/v1/questionnaires/{qid}/responses", json={"answers": {"sbp": 400, "dizzy": "否"}},
                      headers=auth["pt.zhang"])
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    problem = bad.json()
    assert problem["field"] == "answers.sbp" and "收缩压" in problem["detail"] and "60～260mmHg" in problem["detail"]
    ok = client.post(f"/api/v1/questionnaires/{qid}/responses", json={"answers": {"sbp": 128, "dizzy": "偶尔"}},
                     headers=auth["pt.zhang"])
    assert ok.status_code == 201 and ok.json()["patient_name"] == "张*"

    mine = client.get(f"/api/v1/questionnaires/{qid}/responses", headers=auth["dr.a"])
    assert [r["answers"] for r in mine.json()] == [{"sbp": 128.0, "dizzy": "偶尔"}]
    assert client.get(f"/api/v1/questionnaires/{qid}/responses", headers=auth["dr.b"]).status_code == 403
    assert client.get(f"/api/v1/questionnaires/{qid}/responses", headers=auth["pt.wang"]).json() == []

    template = client.post("/api/v1/followup/templates", headers=auth["dr.a"], json={
        "code": "bp", "name": "高血压随访", "steps": [
            {"day": 3, "kind": "questionnaire", "title": "血压问卷", "questionnaire_id": qid},
            {"day": 30, "kind": "schedule", "title": "请预约复诊", "url": "/h5/booking"}]})
    assert template.status_code == 201, template.text
    # doctor A has not treated Zhang: refused; an administrator may start it
    refused = client.post("/api/v1/followup/plans", headers=auth["dr.a"],
                          json={"template": "bp", "patient_ids": [clinic.patient.patient_id]})
    assert refused.status_code == 403
    assert client.get("/api/v1/followup/plans", headers=auth["pt.zhang"]).json() == []
    (started,) = followup.start_plans(container.uow(), ADMIN, "bp", [clinic.patient.patient_id or ""])
    (plan,) = client.get("/api/v1/followup/plans", headers=auth["pt.zhang"]).json()
    assert plan["plan_id"] == started.plan_id and [s["kind"] for s in plan["steps"]] == ["questionnaire", "schedule"]
    assert client.get("/api/v1/followup/plans", headers=auth["pt.wang"]).json() == []
    assert client.get(f"/api/v1/followup/plans/{started.plan_id}", headers=auth["pt.wang"]).status_code == 403
    step = plan["steps"][0]["step_id"]
    answered = client.post(f"/api/v1/questionnaires/{qid}/responses", headers=auth["pt.zhang"],
                           json={"answers": {"sbp": 121, "dizzy": "否"}, "step_id": step})
    assert answered.status_code == 201 and answered.json()["step_id"] == step
    again = client.post(f"/api/v1/questionnaires/{qid}/responses", headers=auth["pt.zhang"],
                        json={"answers": {"sbp": 121, "dizzy": "否"}, "step_id": step})
    assert again.status_code == 409
    stopped = client.post(f"/api/v1/followup/plans/{started.plan_id}/stop", params={"reason": "测试"},
                          headers=auth["pt.zhang"])
    assert stopped.status_code == 403
