"""Knowledge-base and script search over HTTP, as the customer-service console calls it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from clinical_core.domain.access import SYSTEM
from clinical_core.domain.staff import Role
from clinical_core.services import accounts
from content.scripts import services as scripts
from knowledge_base.services import kb
from opsctl.http.app import create_app
from opsctl.wiring import Container
from tests.support.kb_model import shared_embedder

pytestmark = pytest.mark.slow


def test_console_searches_and_renders(container: Container, tmp_path: Path) -> None:
    container.__dict__["embedder"] = shared_embedder()
    doc = tmp_path / "faq.md"
    doc.write_text("# 复诊\n\n问：网上复诊怎么开药？\n答：在互联网医院选择复诊开方，医生审核后药品配送到家。\n", encoding="utf-8")
    kb.ingest(container.uow(), SYSTEM, container.kb_index, [doc], kb.MetaDefaults(specialty="全科", owner="王芳"))
    s = scripts.add_script(container.uow(), SYSTEM, scripts.NewScript(
        "复诊开药", "私聊", "全科", "{{患者称呼}}您好，复诊开药请在首页选择“复诊开方”。"))
    scripts.submit_for_review(container.uow(), SYSTEM, s.public_id)
    scripts.approve(container.uow(), SYSTEM, s.public_id, reviewer="李明", index=container.scripts_index)
    accounts.add_staff_account(container.uow(), SYSTEM, accounts.NewStaffAccount(
        username="cs.wang", role=Role.CUSTOMER_SERVICE, name="王客服"))
    token = accounts.issue_token(container.uow(), SYSTEM, "cs.wang", ttl=timedelta(days=1)).token
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(container.settings, container)) as client:
        hits = client.get("/api/v1/kb/search", params={"q": "在网上怎么配药"}, headers=auth)
        assert hits.status_code == 200, hits.text
        assert hits.json()[0]["question"] == "网上复诊怎么开药？"
        found = client.get("/api/v1/scripts/search", params={"q": "复诊怎么开药"}, headers=auth).json()
        assert found[0]["public_id"] == s.public_id
        rendered = client.post(f"/api/v1/scripts/{s.public_id}/render",
                               json={"variables": {"患者称呼": "张先生"}, "record": "copied"}, headers=auth)
        assert rendered.json() == {"text": "张先生您好，复诊开药请在首页选择“复诊开方”。", "usage_count": 1}
        missing = client.post(f"/api/v1/scripts/{s.public_id}/render", json={}, headers=auth)
        assert missing.status_code == 422 and "患者称呼" in missing.json()["detail"]
        assert client.get("/api/v1/kb/search", params={"q": "复诊"}).status_code == 401
