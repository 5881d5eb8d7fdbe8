"""The clinical HTTP API end to end: bearer tokens, problem+json errors,
ownership, masking and the audit trail, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from clinical_core.domain.access import Principal
from clinical_core.domain.staff import FilingStatus, Role
from clinical_core.domain.time import FixedClock
from clinical_core.persistence.models import AuditRow
from clinical_core.services import accounts, patients
from opsctl import __version__
from opsctl.http.app import create_app
from opsctl.wiring import Container

ADMIN = Principal("cli:test", "test", Role.ADMIN)
PROBLEM = "application/problem+json"
ZHANG = patients.NewPatient(name="张伟", id_card="11010519491231002X", phone="13812345678",
                            address="广东省深圳市南山区粤海街道科技园路1号", district_code="440305")
LI = patients.NewPatient(name="李娜", id_card="44030519900101123X", phone="13912345678")
SECRETS = ("13812345678", "11010519491231002X", "张伟", "科技园路", "13912345678", "44030519900101123X", "李娜")


@dataclass
class Api:
    client: TestClient
    container: Container
    zhang: str  # patient public ids
    li: str
    doctor_account: str  # account public ids
    patient_account: str
    doctor_token: str
    patient_token: str

    def get(self, path: str, token: str | None = None, **headers: str) -> Response:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return self.client.get(path, headers=headers)


@pytest.fixture
def api(container: Container) -> Iterator[Api]:
    zhang = patients.register_patient(container.uow(), ADMIN, ZHANG)
    li = patients.register_patient(container.uow(), ADMIN, LI)
    doctor = accounts.add_staff_account(container.uow(), ADMIN, accounts.NewStaffAccount(
        username="dr.li", role=Role.DOCTOR, name="李明", title="主治医师", licence_no="110440300001234",
        filing=FilingStatus.FILED, may_prescribe=True))
    me = accounts.add_patient_account(container.uow(), ADMIN, "zhang.wei", zhang.public_id)
    doctor_token = accounts.issue_token(container.uow(), ADMIN, "dr.li", ttl=timedelta(days=30)).token
    patient_token = accounts.issue_token(container.uow(), ADMIN, "zhang.wei", ttl=timedelta(days=30)).token
    with TestClient(create_app(container.settings, container)) as client:
        yield Api(client, container, zhang.public_id, li.public_id, doctor.public_id, me.public_id,
                  doctor_token, patient_token)


def assert_problem(response: Response, status: int, title: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["title"] == title
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def audit_rows(container: Container, action: str) -> list[tuple[str, str]]:
    with container.uow() as uow:
        return [(r.actor, r.entity_id) for r in
                uow.session.scalars(select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.id))]


# --- operations ----------------------------------------------------------------------------------


def test_healthz_names_the_database(api: Api) -> None:
    response = api.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": api.container.engine.dialect.name,
                               "version": __version__}
    assert api.container.engine.dialect.name in {"sqlite", "postgresql"}


def test_openapi_lists_the_clinical_endpoints(api: Api) -> None:
    response = api.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert {"/api/v1/patients/{patient_id}", "/api/v1/me", "/healthz"} <= set(spec["paths"])
    assert "get" in spec["paths"]["/api/v1/patients/{patient_id}"]
    assert spec["info"]["version"] == __version__


# --- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/patients/pat_anything"])
def test_no_token_is_401_problem(api: Api, path: str) -> None:
    response = api.get(path)
    body = assert_problem(response, 401, "未认证")
    assert "缺少访问令牌" in body["detail"]
    assert body["instance"] == path
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("authorization", "detail"), [
    ("Bearer garbage", "缺少或无法识别的访问令牌"),
    ("Bearer ops_thisTokenWasNeverIssuedByAnyone0000000000", "访问令牌无效"),
    ("Basic ZHIubGk6c2VjcmV0", "缺少访问令牌"),
])
def test_bad_token_is_401_problem(api: Api, authorization: str, detail: str) -> None:
    response = api.client.get("/api/v1/me", headers={"Authorization": authorization})
    body = assert_problem(response, 401, "未认证")
    assert detail in body["detail"]
    assert response.headers["www-authenticate"] == "Bearer"


def test_expired_token_is_401(api: Api, clock: FixedClock) -> None:
    token = accounts.issue_token(api.container.uow(), ADMIN, "dr.li", ttl=timedelta(hours=1)).token
    assert api.get("/api/v1/me", token).status_code == 200
    clock.advance(timedelta(minutes=59))
    assert api.get("/api/v1/me", token).status_code == 200
    clock.advance(timedelta(minutes=1, seconds=1))
    response = api.get("/api/v1/me", token)
    body = assert_problem(response, 401, "未认证")
    assert "过期" in body["detail"]
    assert response.headers["www-authenticate"] == "Bearer"
    # The 30-day token issued with it still works.
    assert api.get("/api/v1/me", api.doctor_token).status_code == 200


def test_revoked_token_is_401(api: Api) -> None:
    issued = accounts.issue_token(api.container.uow(), ADMIN, "dr.li")
    assert api.get("/api/v1/me", issued.token).status_code == 200
    accounts.revoke_token(api.container.uow(), ADMIN, issued.token_id)
    body = assert_problem(api.get("/api/v1/me", issued.token), 401, "未认证")
    assert "吊销" in body["detail"]


def test_me(api: Api) -> None:
    doctor = api.get("/api/v1/me", api.doctor_token)
    assert doctor.status_code == 200
    body = doctor.json()
    assert (body["account_id"], body["username"], body["role"], body["patient_id"]) == (
        api.doctor_account, "dr.li", "doctor", None)
    assert body["staff_id"].startswith("stf_")
    patient = api.get("/api/v1/me", api.patient_token).json()
    assert patient == {"account_id": api.patient_account, "username": "zhang.wei", "role": "patient",
                       "staff_id": None, "patient_id": api.zhang}


# --- patients --------------------------------------------------------------------------------------


def test_doctor_reads_a_patient_masked(api: Api) -> None:
    response = api.get(f"/api/v1/patients/{api.zhang}", api.doctor_token)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "public_id": api.zhang, "name": "张*", "phone": "138****5678", "id_card": "110***********002X",
        "sex": "F", "age": 76, "district_code": "440305", "address": "广东省深圳市********", "has_wechat": False,
    }
    for secret in SECRETS:
        assert secret not in response.text


def test_patient_reads_only_themselves(api: Api) -> None:
    own = api.get(f"/api/v1/patients/{api.zhang}", api.patient_token)
    assert own.status_code == 200
    assert (own.json()["public_id"], own.json()["phone"]) == (api.zhang, "138****5678")

    other = api.get(f"/api/v1/patients/{api.li}", api.patient_token)
    body = assert_problem(other, 403, "无权访问")
    assert body["detail"] == "患者只能查看本人的记录"
    assert body["code"] == "Forbidden"
    assert "139****5678" not in other.text and "李*" not in other.text
    for secret in SECRETS:
        assert secret not in other.text


def test_unknown_patient_is_404_problem(api: Api) -> None:
    response = api.get("/api/v1/patients/pat_doesnotexist000000000000", api.doctor_token)
    body = assert_problem(response, 404, "未找到")
    assert "pat_doesnotexist000000000000" in body["detail"]
    assert body["code"] == "NotFound"
    assert audit_rows(api.container, "patient.read") == []


def test_unknown_route_is_404_problem(api: Api) -> None:
    response = api.get("/api/v1/no-such-thing", api.doctor_token)
    body = assert_problem(response, 404, "未找到")
    assert body["instance"] == "/api/v1/no-such-thing"
    assert body["detail"] == "没有这个接口：/api/v1/no-such-thing"


def test_every_read_is_audited(api: Api) -> None:
    assert audit_rows(api.container, "patient.read") == []
    assert api.get(f"/api/v1/patients/{api.zhang}", api.doctor_token).status_code == 200
    doctor_actor = f"doctor:{api.doctor_account}"
    assert audit_rows(api.container, "patient.read") == [(doctor_actor, api.zhang)]

    assert api.get(f"/api/v1/patients/{api.li}", api.doctor_token).status_code == 200
    assert api.get(f"/api/v1/patients/{api.zhang}", api.patient_token).status_code == 200
    assert audit_rows(api.container, "patient.read") == [
        (doctor_actor, api.zhang),
        (doctor_actor, api.li),
        (f"patient:{api.patient_account}", api.zhang),
    ]
