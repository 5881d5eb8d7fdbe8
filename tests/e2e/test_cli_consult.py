"""opsctl consult as operations staff drive it: services, orders, refunds,
statistics and the expiry job, with --json output and masked patients."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from clinical_core.domain.time import FixedClock
from clinical_core.services import consultation
from opsctl.cli.main import app
from opsctl.config import load_settings
from opsctl.wiring import Container
from tests.conftest import TEST_SECRET_KEY
from tests.support.clinic import build_clinic


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


def test_services_orders_refunds_stats_and_expiry(env: Path) -> None:
    # The hospital and a patient's paid order, made through the services as the apps would.
    c = Container(load_settings())
    clinic = build_clinic(c)
    svc = json.loads(run("consult", "services", "set", "--kind", "department", "--department", "CARD",
                         "--price", "15.5", "--time-limit", "60", "--json").stdout)[0]
    assert (svc["kind"], svc["price"], svc["time_limit_minutes"], svc["enabled"]) == ("department", "¥15.50", 60, True)
    listed = json.loads(run("consult", "services", "list", "--json").stdout)
    assert [s["public_id"] for s in listed] == [svc["public_id"]] and listed[0]["price_fen"] == 1550
    run("consult", "services", "set", "--kind", "designated", "--price", "5", "--name", "定点保障", expect=6)

    paid = consultation.create_consultation(c.uow(), clinic.patient, c.payments, svc["public_id"], "胸闷一周想咨询")
    consultation.handle_paid_notification(c.uow(), c.payments, *c.payments.simulate_payment(paid.out_trade_no or ""))
    c.close()

    orders = json.loads(run("consult", "orders", "--status", "waiting", "--json").stdout)
    assert [(o["public_id"], o["patient_name"], o["payment_state"]) for o in orders] == [
        (paid.consultation.public_id, "张*", "paid")]
    assert "张伟" not in run("consult", "orders").stdout

    refund = json.loads(run("consult", "refunds", "request", paid.consultation.public_id, "--reason", "投诉核实",
                            "--amount", "5", "--json").stdout)[0]
    assert (refund["amount"], refund["status"]) == ("¥5.00", "pending")
    run("consult", "refunds", "request", paid.consultation.public_id, "--reason", "再退", "--amount", "11", expect=6)
    assert len(json.loads(run("consult", "refunds", "list", "--status", "pending", "--json").stdout)) == 1

    stats = json.loads(run("consult", "stats", "--json").stdout)
    assert [(s["orders"], s["paid"], s["net"]) for s in stats] == [(1, "¥15.50", "¥15.50")]  # refund not yet settled

    assert json.loads(run("consult", "expire", "--json").stdout) == [
        {"closed_unanswered": 0, "refunds_requested": 0, "cancelled_unpaid": 0}]


def test_expire_closes_what_nobody_answered(env: Path) -> None:
    clock = FixedClock()
    c = Container(load_settings(), clock=clock)
    clinic = build_clinic(c)
    svc = json.loads(run("consult", "services", "set", "--kind", "department", "--department", "CARD",
                         "--price", "0", "--time-limit", "30", "--json").stdout)[0]
    consultation.create_consultation(c.uow(), clinic.patient, c.payments, svc["public_id"], "头痛三天想咨询")
    clock.advance(timedelta(days=1))  # the order's deadline is in the simulated past for the CLI's real clock
    c.close()
    result = run("consult", "expire", "--json")
    assert json.loads(result.stdout)[0]["closed_unanswered"] == 1
    assert "超时关闭 1 单" in result.stderr
    closed = json.loads(run("consult", "orders", "--status", "closed", "--json").stdout)
    assert closed[0]["close_reason"] == "unanswered"


@pytest.mark.slow
def test_demo_run_drives_every_module(env: Path) -> None:
    """One `opsctl demo run` (the whole demo is ~1.5 min, so it runs once in the suite); each step
    also has its own integration test."""
    result = run("demo", "run", "--patients", "200", "--days", "8", "--until", "2026-10-31", "--json")
    rows = json.loads(result.stdout)
    summary = {row["metric"]: row for row in rows}
    assert summary["在线咨询订单"]["value"] > 0 and summary["咨询完成"]["value"] > 0
    assert summary["咨询收支"]["value"].startswith("¥")
    assert summary["药师审方"]["value"] > 0 and "无自动通过" in summary["药师审方"]["note"]
    assert summary["API 鉴权检查"]["value"] == "通过"
    assert summary["视频复诊完成"]["value"] > 0 and summary["判定首诊→终止并退款"]["value"] >= 1
    assert summary["挂号费收支"]["value"].startswith("¥")
    # the demo ends with the simulated month's operations report, archived with its manifest
    assert summary["运营月报"]["value"].endswith("2026年10月运营月报")
    assert Path(summary["月报归档位置"]["value"]).is_file()
    # WeChat: the menu, channel QR codes and the callback reach the clinical core through the funnels
    assert summary["公众号菜单"]["value"] == "已发布"
    assert summary["渠道二维码"]["value"] == 23
    events = summary["回调事件"]
    assert events["value"] > 20 and f"HTTP 200 共 {events['value']} 次" in events["note"]
    funnels = [r for r in rows if r["metric"].startswith("漏斗 ")]
    assert funnels and all(int(r["value"].split("→")[0]) >= int(r["value"].split("→")[1]) for r in funnels)
    steps = [[int(v) for v in r["value"].split("→")] for r in funnels]
    assert all(len(s) == 6 and s[1] >= s[2] >= s[3] >= max(s[4], s[5]) for s in steps)  # 扫码→…→处方 / 复诊
    assert summary["关注者发起问诊"]["value"] > 0 and sum(s[3] for s in steps) > 0  # reaches the clinical core
    # follow-up steps: none in quiet hours, none twice (counted from what the sandbox received)
    assert "免打扰时段内发送 0 条；重复发送 0 条" in summary["随访消息送达（沙箱）"]["note"]
