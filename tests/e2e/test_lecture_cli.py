"""``opsctl lecture`` as operations staff drive it."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from clinical_core.domain.access import Principal
from clinical_core.domain.staff import FilingStatus, Role
from clinical_core.services import accounts
from content.domain.lectures import LectureKind
from content.services import lectures
from opsctl.cli.main import app
from opsctl.config import load_settings
from opsctl.wiring import Container
from tests.conftest import TEST_SECRET_KEY


def test_list_disable_enable_publish(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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
    c = Container(load_settings(None))
    try:
        admin = Principal("cli:root", "root", Role.ADMIN)
        account = accounts.add_staff_account(c.uow(), admin, accounts.NewStaffAccount(
            username="dr.li", role=Role.DOCTOR, name="李明", title="主任医师", licence_no="110440300001234",
            practising_since=date(2005, 7, 1), filing=FilingStatus.FILED, may_prescribe=True, phone="13700001111"))
        dr = Principal(account.public_id, "dr.li", Role.DOCTOR, staff_id=account.staff_id)
        body = "没有症状也要按时服药，血压平稳后不要自行停药。" * 2
        draft = lectures.create_lecture(c.uow(), dr, lectures.LectureInput("高血压的三个误区", "心血管", LectureKind.TEXT, body),
                                        publish=False)
    finally:
        c.close()
    rows = json.loads(opsctl("lecture", "list", "--json"))
    assert [(r["public_id"], r["status"]) for r in rows] == [(draft.public_id, "draft")]
    assert json.loads(opsctl("lecture", "publish", draft.public_id, "--json"))["status"] == "published"
    assert json.loads(opsctl("lecture", "disable", draft.public_id, "--json"))["status"] == "disabled"
    err = opsctl("lecture", "disable", draft.public_id, expect=5)
    assert err.strip() == f"错误：讲堂 {draft.public_id} 当前状态为「已停用」，不能执行「停用」"
    assert json.loads(opsctl("lecture", "enable", draft.public_id, "--json"))["status"] == "published"
    assert json.loads(opsctl("lecture", "list", "--category", "儿科", "--json")) == []
    assert opsctl("lecture", "show", "lec_missing", expect=4).startswith("错误：讲堂 lec_missing 不存在")


def test_moderation_tips_and_income(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clinical_core.services import patients

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
    c = Container(load_settings(None))
    try:
        from content.services import lecture_engagement as engage

        admin = Principal("cli:root", "root", Role.ADMIN)
        account = accounts.add_staff_account(c.uow(), admin, accounts.NewStaffAccount(
            username="dr.li", role=Role.DOCTOR, name="李明", title="主任医师", licence_no="110440300001234",
            practising_since=date(2005, 7, 1), filing=FilingStatus.FILED, may_prescribe=True, phone="13700001111"))
        dr = Principal(account.public_id, "dr.li", Role.DOCTOR, staff_id=account.staff_id)
        lec = lectures.create_lecture(c.uow(), dr, lectures.LectureInput(
            "高血压的三个误区", "心血管", LectureKind.TEXT, "没有症状也要按时服药，血压平稳后不要自行停药。" * 2),
            publish=True).public_id
        p = patients.register_patient(c.uow(), admin, patients.NewPatient(
            name="张伟", id_card="11010519491231002X", phone="13812345678"))
        pt = Principal("acc_p", "pt", Role.PATIENT, patient_id=p.public_id)
        comment = engage.add_comment(c.uow(), pt, lec, "讲得很清楚，谢谢医生").public_id
        order = engage.tip(c.uow(), pt, c.payments, lec, 1000)
        engage.handle_tip_notification(c.uow(), c.payments, *c.payments.simulate_payment(order.out_trade_no))
        from clinical_core.domain.time import SHANGHAI

        today = c.clock.now().astimezone(SHANGHAI).date()
    finally:
        c.close()
    queue = json.loads(opsctl("lecture", "comments", "--json"))
    assert [(q["public_id"], q["author"]) for q in queue] == [(comment, "张*")]
    assert "张伟" not in opsctl("lecture", "comments")
    assert json.loads(opsctl("lecture", "approve", comment, "--json"))[0]["status_label"] == "已通过"
    assert json.loads(opsctl("lecture", "comments", "--json")) == []
    assert opsctl("lecture", "reject", comment, "--reason", "含广告", expect=5).startswith("错误：评论")
    assert json.loads(opsctl("lecture", "stats", lec, "--json"))["tips_fen"] == 1000
    assert json.loads(opsctl("lecture", "tips", "--json"))[0]["status"] == "paid"
    [row] = json.loads(opsctl("lecture", "income", "--since", str(today), "--until",
                              str(today + timedelta(days=1)), "--json"))
    assert (row["tips"], row["net_fen"]) == (1, 1000)
    assert json.loads(opsctl("lecture", "refund-tip", order.tip_id, "--reason", "误操作",
                             "--json"))[0]["status"] == "refund_pending"
