"""opsctl schedule / opsctl visit as staff drive them: check modes, publishing,
the Excel import (refused file lists every bad row, nothing imported), the
fused schedule, visit lists with masked patients, hospital cancellation,
reminders (--dry-run) and the sweep."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select
from typer.testing import CliRunner, Result

from clinical_core.adapters.payment_sandbox import SandboxPaymentGateway
from clinical_core.domain.time import SHANGHAI, SystemClock
from clinical_core.persistence.models import StaffRow
from clinical_core.services import video_booking
from opsctl.cli.main import app
from opsctl.config import load_settings
from opsctl.wiring import Container
from tests.conftest import TEST_SECRET_KEY
from tests.support.clinic import build_clinic

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def run(*args: str, expect: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), prog_name="opsctl")
    assert result.exit_code == expect, f"{args} → {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("OPSCTL_CONFIG", "OPSCTL_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPSCTL_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("OPSCTL_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.chdir(tmp_path)
    run("db", "upgrade")
    return tmp_path


def test_schedule_and_visit_commands(env: Path) -> None:
    c = Container(load_settings())
    clinic = build_clinic(c)
    with c.uow() as uow:
        employee_b = uow.session.scalar(select(StaffRow.employee_no).where(StaffRow.public_id == clinic.doctor_b.staff_id))
    tomorrow = (SystemClock().now().astimezone(SHANGHAI) + timedelta(days=1)).date()

    mode = json.loads(run("schedule", "check-mode", "set", "declared", "--department", "CARD", "--json").stdout)
    assert (mode["scope"], mode["check_mode"]) == ("CARD", "declared")
    assert {m["scope"] for m in json.loads(run("schedule", "check-mode", "show", "--json").stdout)} == {"*", "CARD"}

    session = json.loads(run("schedule", "publish", "--doctor", clinic.doctor_a.staff_id or "", "--start",
                             f"{tomorrow} 08:00", "--end", f"{tomorrow} 09:00", "--price", "30", "--json").stdout)
    assert (session["slots"], session["price"], session["starts"]) == (4, "¥30.00", f"{tomorrow} 08:00")
    run("schedule", "publish", "--doctor", clinic.junior.staff_id or "", "--start", f"{tomorrow} 08:00", "--end",
        f"{tomorrow} 09:00", "--price", "30", expect=6)  # R07

    book_ = Workbook()
    sheet = book_.active
    assert sheet is not None
    sheet.append(["医生工号", "日期", "开始时间", "结束时间", "每号分钟", "挂号费（元）"])
    sheet.append([employee_b, str(tomorrow), "14:00", "16:00", 20, 25])
    sheet.append(["E-nobody", str(tomorrow), "14:00", "16:00", 20, 25])
    sheet.append([employee_b, str(tomorrow), "15:00", "17:00", 20, "abc"])
    book_.save(env / "bad.xlsx")
    refused = run("schedule", "import", "bad.xlsx", expect=3)
    assert "第 3 行：未找到在职医生 E-nobody" in refused.stderr and "第 4 行：挂号费应为数字（元）" in refused.stderr
    sheet.delete_rows(3, 2)
    book_.save(env / "good.xlsx")
    assert json.loads(run("schedule", "import", "good.xlsx", "--json").stdout)["slots"] == 6
    listed = json.loads(run("schedule", "list", "--department", "CARD", "--from", str(tomorrow), "--days", "1",
                            "--json").stdout)
    assert sorted(s["doctor_name"] for s in listed) == ["医生A", "医生B"]

    fused = json.loads(run("schedule", "fused", "--doctor", clinic.doctor_a.staff_id or "", "--date", str(tomorrow),
                           "--json").stdout)
    assert [(f["channels"], f["available"]) for f in fused] == [("online", True)] * 4

    gateway = SandboxPaymentGateway(c.clock)
    booked = video_booking.book_visit(c.uow(), clinic.patient, gateway, c.his, c.his_schedule, c.attachments,
                                      fused[0]["online_slot_id"], "高血压复诊，想调药", documents=(PNG,))
    video_booking.handle_paid_notification(c.uow(), gateway, *gateway.simulate_payment(booked.out_trade_no or ""))
    c.close()
    vid = booked.visit.public_id

    visits = json.loads(run("visit", "list", "--date", str(tomorrow), "--json").stdout)
    assert [(v["public_id"], v["patient_name"], v["status"], v["check_mode"]) for v in visits] == [
        (vid, "张*", "paid", "declared")]
    assert "张伟" not in run("visit", "list").stdout
    assert json.loads(run("visit", "show", vid, "--json").stdout)["documents"] == 1
    due = run("visit", "remind", "--lead-minutes", "2880", "--dry-run", "--json")
    assert [d["visit"] for d in json.loads(due.stdout)] == [vid] and "演练" in due.stderr
    cancelled = json.loads(run("visit", "cancel", vid, "--json").stdout)
    assert (cancelled["status"], cancelled["end_reason"]) == ("cancelled", "hospital_cancelled")
    run("visit", "cancel", vid, expect=5)
    settled = json.loads(run("visit", "settle-refunds", "--json").stdout)
    assert settled["succeeded"] + settled["failed"] == 1  # the sandbox provider of this process never saw the payment
    assert json.loads(run("visit", "sweep", "--json").stdout) == {"released": 0, "no_shows": 0}
    assert json.loads(run("visit", "records", vid, "--json").stdout) == []
    run("schedule", "cancel", session["public_id"])
    assert datetime.now(SHANGHAI)  # the commands above ran against the wall clock
