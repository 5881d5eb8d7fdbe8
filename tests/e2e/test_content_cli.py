"""``opsctl content``, ``opsctl live`` and ``opsctl community`` as operations staff drive them."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clinical_core.domain.access import Principal
from clinical_core.domain.staff import FilingStatus, Role
from clinical_core.services import accounts
from content.services import calendar as cal
from opsctl.cli.main import app
from opsctl.config import load_settings
from opsctl.wiring import Container
from tests.conftest import TEST_SECRET_KEY
from tests.support.exports import DOUYIN_LIVE, DOUYIN_VIDEO, WECOM_GROUPS, csv_gbk, xlsx


def test_calendar_import_live_and_community(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCTL_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("OPSCTL_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.delenv("OPSCTL_DATABASE_URL", raising=False)
    monkeypatch.delenv("OPSCTL_CONFIG", raising=False)
    runner = CliRunner()

    def opsctl(*args: str, expect: int = 0) -> str:
        result = runner.invoke(app, list(args), prog_name="opsctl")
        assert result.exit_code == expect, f"{args}: {result.stdout}{result.stderr}"
        return result.stdout if expect == 0 else result.stderr

    opsctl("db", "upgrade")
    series = json.loads(opsctl("content", "series", "add", "心内科说血压", "--department", "心血管内科", "--json"))[0]
    ep = json.loads(opsctl("content", "episode", "add", series["public_id"], "高血压的三个误区", "--json"))[0]
    opsctl("content", "episode", "shot", ep["public_id"])
    opsctl("content", "episode", "edited", ep["public_id"], "--video", "out/ep1.mp4")
    post = json.loads(opsctl("content", "post", "plan", ep["public_id"], "--platform", "douyin", "--at",
                             "2026-11-03 20:00", "--json"))[0]
    err = opsctl("content", "post", "publish", post["public_id"], expect=6)
    assert "CAL-2" in err or "医学审核" in err
    c = Container(load_settings(None))
    try:
        admin = Principal("cli:root", "root", Role.ADMIN)
        account = accounts.add_staff_account(c.uow(), admin, accounts.NewStaffAccount(
            username="dr.li", role=Role.DOCTOR, name="李明", title="主任医师", licence_no="110440300001234",
            practising_since=date(2005, 7, 1), filing=FilingStatus.FILED, may_prescribe=True, phone="13700001111"))
        cal.medical_review(c.uow(), Principal(account.public_id, "dr.li", Role.DOCTOR, staff_id=account.staff_id),
                           ep["public_id"], approve=True)
    finally:
        c.close()
    opsctl("content", "post", "publish", post["public_id"], "--external-id", "7301234567890", "--at",
           "2026-11-03 20:00")
    days = json.loads(opsctl("content", "calendar", "--month", "2026-11", "--json"))
    assert [(d["day"], d["platform"], d["kind"], d["state"]) for d in days] == [("2026-11-03", "抖音", "视频", "已发布")]
    assert "2026 年 11 月发布日历" in opsctl("content", "calendar", "--month", "2026-11")

    export = xlsx(tmp_path / "作品数据.xlsx", DOUYIN_VIDEO, [
        ["高血压的三个误区 #健康科普", "2026-11-03 20:00", "视频", "已通过", "1.2万", "30%", "356", "48", "27", "3", "9", "15"]])
    bad = xlsx(tmp_path / "坏.xlsx", DOUYIN_VIDEO, [
        ["高血压的三个误区", "2026-11-03 20:00", "视频", "已通过", "很多", "30%", "356", "48", "27", "3", "9", "15"]])
    err = opsctl("content", "stats", "import", str(bad), "--kind", "video", "--platform", "douyin", expect=3)
    assert "第 2 行：「播放量」的值「很多」不是有效的数字" in err and "未导入任何数据" in err
    first = json.loads(opsctl("content", "stats", "import", str(export), "--kind", "video", "--platform", "douyin",
                              "--as-of", "2026-11-10", "--json"))[0]
    assert (first["inserted"], first["matched"]) == (1, 1)
    again = json.loads(opsctl("content", "stats", "import", str(export), "--kind", "video", "--platform", "douyin",
                              "--as-of", "2026-11-10", "--json"))[0]
    assert again["already_imported"] is True

    group = json.loads(opsctl("community", "add", "心内科高血压患者群1", "--department", "心血管内科", "--owner",
                              "王护士", "--json"))[0]
    opsctl("content", "stats", "import", str(csv_gbk(tmp_path / "群.csv", WECOM_GROUPS, [
        ["心内科高血压患者群1", "王护士", "2026-11-03", "356", "12", "2", "40", "233"]])),
           "--kind", "community", "--platform", "wecom")
    session = json.loads(opsctl("live", "schedule", "高血压直播答疑", "--platform", "douyin", "--account", "深大附院心内科",
                                "--at", "2099-11-05 20:00", "--plan", "一、家庭自测血压；二、常用降压药；三、观众提问答疑",
                                "--json"))
    err = opsctl("live", "announce", session["public_id"], "--dry-run", expect=3)  # no department, no host
    assert "--audience" in err
    template = tmp_path / "群文案.j2"
    template.write_text("{{ group.name }}的朋友们：{{ when }}直播「{{ title }}」", encoding="utf-8")
    preview = json.loads(opsctl("live", "announce", session["public_id"], "--group", group["public_id"], "--dry-run",
                                "--audience", "all", "--group-template", str(template), "--json"))
    assert [(p["target_name"], p["state"], p["audience_size"]) for p in preview] == [
        ("全部关注者", "dry_run", 0), ("心内科高血压患者群1", "dry_run", None)]
    assert preview[1]["text"] == "心内科高血压患者群1的朋友们：11月5日 20:00直播「高血压直播答疑」"
    assert json.loads(opsctl("live", "show", session["public_id"], "--json"))["announcements"] == 0
    err = opsctl("live", "announce", session["public_id"], "--audience", "all", "--kind", "template", expect=4)
    assert "templates sync" in err  # a template message needs WeChat's template list first
    opsctl("live", "announce", session["public_id"], "--group", group["public_id"], "--audience", "all",
           "--send-at", "2099-11-04 10:00")
    states = json.loads(opsctl("live", "announcements", session["public_id"], "--json"))
    assert [(a["target_name"], a["state"], a["kind"]) for a in states] == [
        ("全部关注者", "scheduled", "mass"), ("心内科高血压患者群1", "to_post", None)]
    assert json.loads(opsctl("push", "status", states[0]["push_id"], "--json"))[0]["status"] == "scheduled"
    [task] = json.loads(opsctl("live", "tasks", "--json"))
    assert task["target_name"] == "心内科高血压患者群1（群主 王护士）" and task["text"].startswith("各位群友好！")
    assert json.loads(opsctl("live", "posted", task["public_id"], "--json"))[0]["state"] == "posted"
    assert json.loads(opsctl("live", "tasks", "--json")) == []
    opsctl("live", "start", session["public_id"])
    assert json.loads(opsctl("live", "end", session["public_id"], "--json"))["status"] == "ended"
    opsctl("content", "stats", "import", str(xlsx(tmp_path / "直播.xlsx", DOUYIN_LIVE, [
        ["高血压直播答疑", "2099-11-05 20:01", "62", "2.3万", "3.1万", "1204", "350", "5.6万", "890", "120", "310"]])),
           "--kind", "live", "--platform", "douyin")
    [row] = json.loads(opsctl("live", "list", "--json"))
    assert (row["viewers"], row["peak_online"], row["announcements"]) == (23000, 1204, 2)
    summary = json.loads(opsctl("content", "stats", "summary", "--since", "2026-11-01", "--until", "2026-12-01",
                                "--json"))
    assert [(s["platform"], s["posts"], s["plays"], s["likes"]) for s in summary] == [("抖音", 1, 12000, 356)]
    assert len(json.loads(opsctl("content", "stats", "imports", "--json"))) == 3
