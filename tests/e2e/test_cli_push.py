"""opsctl push as marketing staff drive it (embedded SQLite, in-process sandbox)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from clinical_core.persistence.models import FollowerRow
from opsctl.cli.main import app
from opsctl.config import Settings
from opsctl.wiring import Container
from tests.conftest import TEST_SECRET_KEY


@pytest.fixture
def opsctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name in ("OPSCTL_CONFIG", "OPSCTL_DATABASE_URL", "OPSCTL_WECHAT__API_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPSCTL_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("OPSCTL_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.setenv("OPSCTL_PUSH__QUIET_HOURS", "off")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str, expect: int = 0) -> Result:
        result = runner.invoke(app, list(args), prog_name="opsctl")
        assert result.exit_code == expect, f"{args} → {result.exit_code}\n{result.stdout}\n{result.stderr}"
        return result

    run("db", "upgrade")
    container = Container(Settings(data_dir=tmp_path / "var", secret_key=TEST_SECRET_KEY))
    with container.uow() as uow:
        uow.session.add_all(FollowerRow(openid=f"oCli{i:03d}", subscribed_at=datetime(2026, 10, 1, tzinfo=UTC))
                            for i in range(5))
        uow.commit()
    container.close()
    return run


def test_push_create_preview_schedule_status_cancel(opsctl) -> None:  # type: ignore[no-untyped-def]
    synced = json.loads(opsctl("push", "templates", "--sync", "--json").stdout)
    assert {"template_id": "tpl_sandbox_notice", "title": "就诊提醒", "fields": "first、keyword1、keyword2、keyword3、remark",
            "active": True} in synced
    segment = json.loads(opsctl("push", "segment", "create", "全部", "--rule", "stage=followed", "--json").stdout)[0]
    assert segment["size"] == 5
    opsctl("push", "optout", "oCli000")
    assert json.loads(opsctl("push", "segment", "list", "--json").stdout)[0]["size"] == 4
    bad = opsctl("push", "create", "--name", "超长", "--segment", "全部", "--template", "tpl_sandbox_notice",
                 "--field", "first=" + "长" * 21, expect=6)
    assert "WX-TPL-20" in bad.stderr
    created = json.loads(opsctl("push", "create", "--name", "复诊提醒", "--segment", "全部", "--template",
                                "tpl_sandbox_notice", "--field", "first=复诊提醒", "--json").stdout)[0]
    push_id = created["public_id"]
    preview = json.loads(opsctl("push", "preview", push_id, "--to", "oCli001", "--dry-run", "--json").stdout)
    assert preview["sent"] == 0 and preview["rendered"] == {"first": "复诊提醒"} and "oCli001" not in preview["recipients"]
    dry = json.loads(opsctl("push", "schedule", push_id, "--dry-run", "--json").stdout)
    assert dry["audience"] == 4 and dry["dry_run"] is True
    assert json.loads(opsctl("push", "status", push_id, "--json").stdout)[0]["status"] == "draft"
    opsctl("push", "schedule", push_id, "--at", "2030-01-01 09:00")
    status = json.loads(opsctl("push", "status", push_id, "--json").stdout)[0]
    assert status["status"] == "scheduled" and status["scheduled_at"].startswith("2030-01-01T01:00")
    opsctl("push", "cancel", push_id)
    assert json.loads(opsctl("push", "status", "--json").stdout)[0]["status"] == "cancelled"
    opsctl("push", "worker", "--dry-run")
