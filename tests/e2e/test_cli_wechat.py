"""The WeChat operations commands as staff drive them (embedded SQLite, in-process sandbox)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from opsctl.cli.main import app
from tests.conftest import TEST_SECRET_KEY

BAD_MENU = """
button:
  - type: click
    name: 预约挂号就诊
    key: BOOK
  - name: 服务
    sub_button:
      - type: view
        name: 图文咨询
        url: https://example.org/consult
conditional:
  - button:
      - {type: click, name: 随访, key: F}
    matchrule: {sex: "1"}
"""


@pytest.fixture
def opsctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name in ("OPSCTL_CONFIG", "OPSCTL_DATABASE_URL", "OPSCTL_WECHAT__API_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPSCTL_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("OPSCTL_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str, expect: int = 0) -> Result:
        result = runner.invoke(app, list(args), prog_name="opsctl")
        assert result.exit_code == expect, f"{args} → {result.exit_code}\n{result.stdout}\n{result.stderr}"
        return result

    run("db", "upgrade")
    return run


def test_menu_validate_names_every_broken_limit_and_push_dry_run(opsctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "bad.yaml").write_text(BAD_MENU, encoding="utf-8")
    result = opsctl("wechat", "menu", "validate", "bad.yaml", expect=3)
    assert result.stdout.splitlines() == ["「预约挂号就诊」：一级菜单名称 18 字节，超过 16 字节（40018）",
                                          "个性化菜单1匹配规则：使用了已停用的隐私字段：sex（65320）"]
    good = BAD_MENU.replace("预约挂号就诊", "预约挂号").replace('sex: "1"', 'tag_id: "100"')
    (tmp_path / "menu.yaml").write_text(good, encoding="utf-8")
    opsctl("wechat", "menu", "validate", "menu.yaml")
    dry = opsctl("wechat", "menu", "push", "menu.yaml", "--dry-run", "--json")
    assert json.loads(dry.stdout)["published"] is False
    assert "+ 新增一级菜单「预约挂号」" in json.loads(dry.stdout)["changes"]


def test_channel_qr_cards_and_funnel(opsctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    opsctl("channels", "add", "--code", "dept-cardio", "--kind", "department_poster", "--name", "心内科海报")
    qr = json.loads(opsctl("wechat", "qr", "create", "--channel", "dept-cardio", "--out", "qr", "--json").stdout)
    assert qr[0]["scene"] == "ch:dept-cardio:1" and qr[0]["permanent"] is True
    assert (tmp_path / "qr" / "ch_dept-cardio_1.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "qr" / "ch_dept-cardio_1.svg").read_text(encoding="utf-8").startswith("<?xml")
    cards = json.loads(opsctl("cards", "create", "--batch", "pc-202611", "--size", "3", "--copy", "扫码关注",
                              "--json").stdout)
    assert [c["scene"] for c in cards][-1] == "pc:pc-202611:00003"
    opsctl("cards", "print", "pc-202611", "--out", "cards.pdf")
    assert (tmp_path / "cards.pdf").read_bytes().startswith(b"%PDF")
    shown = json.loads(opsctl("funnel", "show", "--channel", "dept-cardio", "--json").stdout)
    stages = shown["channels"][0]["stages"]
    assert [s["count"] for s in stages] == [0] * 8 and stages[5]["note"] and stages[7]["stage"] == "repeat"
    assert json.loads(opsctl("funnel", "show", "--repeat-days", "7", "--json").stdout)["repeat_days"] == 7
    assert json.loads(opsctl("wechat", "process", "--json").stdout) == {"processed": 0, "failed": 0}
    assert json.loads(opsctl("funnel", "retention", "--json").stdout)["cohorts"] == []
    opsctl("wechat", "qr", "create", "--channel", "nope", expect=4)


def test_issue_command_names_menu_qr_and_card_batches(opsctl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The names the issue specifies: top-level ``menu`` (publish = push) and ``qr``, ``cards batch create``."""
    (tmp_path / "bad.yaml").write_text(BAD_MENU, encoding="utf-8")
    assert "40018" in opsctl("menu", "validate", "bad.yaml", expect=3).stdout
    good = BAD_MENU.replace("预约挂号就诊", "预约挂号").replace('sex: "1"', 'tag_id: "100"')
    (tmp_path / "menu.yaml").write_text(good, encoding="utf-8")
    opsctl("menu", "validate", "menu.yaml")
    assert "+ 新增一级菜单「预约挂号」" in opsctl("menu", "diff", "menu.yaml").stdout
    assert json.loads(opsctl("menu", "publish", "menu.yaml", "--json").stdout)["published"] is True
    opsctl("menu", "pull", "--out", "pulled.yaml")  # each invocation embeds a fresh sandbox: nothing there
    assert (tmp_path / "pulled.yaml").exists()
    assert json.loads(opsctl("wechat", "menu", "push", "menu.yaml", "--dry-run", "--json").stdout)["changes"]
    opsctl("channels", "add", "--code", "event-1", "--kind", "event", "--name", "义诊活动")
    qr = json.loads(opsctl("qr", "create", "--channel", "event-1", "--temporary", "7", "--json").stdout)
    assert qr[0]["scene"] == "ch:event-1:1" and qr[0]["permanent"] is False and qr[0]["expires_at"]
    opsctl("qr", "create", "--channel", "event-1", "--temporary", "31", expect=3)
    cards = json.loads(opsctl("cards", "batch", "create", "--batch", "pc-b", "--size", "2", "--copy", "扫码关注",
                              "--json").stdout)
    assert [c["scene"] for c in cards] == ["pc:pc-b:00001", "pc:pc-b:00002"]
    opsctl("cards", "print", "pc-b", "--out", "b.pdf")
    assert "未找到处方" in opsctl("cards", "batch", "link", "pc-b", "--prescription", "rx_nope", expect=4).stderr
    assert (tmp_path / "b.pdf").read_bytes().startswith(b"%PDF")
