"""opsctl nursing as administrators drive it: items and areas, nurses (R44),
order review, the visit record (and its tamper check), the blacklist and the
alarm queue, with --json output and masked patients."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner, Result

from clinical_core.persistence.nursing import NursingVisitEventRow
from clinical_core.services import (
    nursing_alarms,
    nursing_hall,
    nursing_orders,
    nursing_visits,
)
from opsctl.cli.main import app
from opsctl.config import load_settings
from opsctl.wiring import Container
from tests.conftest import TEST_SECRET_KEY
from tests.support.nursing import assessed, book_paid, build_nursing


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


def test_admin_runs_home_nursing_from_the_cli(env: Path) -> None:
    c = Container(load_settings())
    w = build_nursing(c, c.clock.now())
    assert {d["code"] for d in json.loads(run("nursing", "districts", "--json").stdout)} >= {"440305", "440311"}
    item = json.loads(run("nursing", "items", "set", "--code", "blood", "--name", "上门采血", "--price", "80",
                          "--duration", "30", "--district", "440304", "--polygon",
                          "113.93,22.51;113.96,22.51;113.96,22.54;113.93,22.54", "--json").stdout)[0]
    assert (item["code"], item["price"], item["polygon_count"], item["districts"]) == ("BLOOD", "¥80.00", 1, ["440304"])
    run("nursing", "items", "set", "--code", "X", "--name", "x", "--price", "10", "--duration", "30",
        "--district", "440304", "--min-title", "护士", expect=6)  # R44: the floor is 护师
    assert len(json.loads(run("nursing", "items", "list", "--json").stdout)) == 3
    assert run("nursing", "nurses", "add", w.junior.staff_id or "", "--lat", "22.5", "--lon", "113.9",
               expect=6).stderr.count("R44") == 1
    nurses = json.loads(run("nursing", "nurses", "list", "--json").stdout)
    assert {n["name"] for n in nurses} == {"护士S", "护士N", "护士F"}

    to_approve, to_reject = book_paid(c, w, approve=False), book_paid(c, w, approve=False)
    paid = json.loads(run("nursing", "orders", "--status", "paid", "--json").stdout)
    assert {o["public_id"] for o in paid} == {to_approve, to_reject} and paid[0]["patient_name"] == "张*"
    assert "张伟" not in run("nursing", "orders").stdout and "502" not in run("nursing", "orders").stdout
    assert json.loads(run("nursing", "approve", to_approve, "--json").stdout)[0]["status"] == "open"
    rejected = json.loads(run("nursing", "reject", to_reject, "--reason", "超出服务能力", "--json").stdout)[0]
    assert rejected["status"] == "rejected"
    assigned = json.loads(run("nursing", "assign", to_approve, "--nurse", w.senior.staff_id or "", "--json").stdout)[0]
    assert assigned["nurse_name"] == "护士S"

    # On site, then the record and its tamper check.
    assessed(c, w, to_approve)
    with c.uow() as uow:
        row = nursing_orders.load(uow, to_approve)
        lat, lon = row.lat, row.lon
    run("nursing", "override", to_approve, "--event", "check_in", "--reason", "定位漂移已电话核实")
    nursing_visits.check_in(c.uow(), w.senior, to_approve, lat + 0.01, lon)
    nursing_visits.check_out(c.uow(), w.senior, to_approve, lat, lon, "换药完成，伤口干燥")
    entries = json.loads(run("nursing", "record", to_approve, "--json").stdout)
    assert [e["kind"] for e in entries] == ["override", "check_in", "check_out"]
    with c.uow() as uow:
        uow.session.execute(update(NursingVisitEventRow).where(NursingVisitEventRow.seq == 2)
                            .values(payload={"lat": lat, "lon": lon, "distance_m": 3.0, "override_seq": None}))
        uow.commit()
    assert "校验失败" in run("nursing", "record", to_approve, expect=1).stderr

    # Blacklist.
    pid = w.clinic.other_patient.patient_id or ""
    run("nursing", "blacklist", "add", pid, "--reason", "多次辱骂上门护士")
    assert [b["patient_name"] for b in json.loads(run("nursing", "blacklist", "list", "--json").stdout)] == ["王*"]
    run("nursing", "blacklist", "remove", pid)
    assert json.loads(run("nursing", "blacklist", "list", "--json").stdout) == []

    # Alarms.
    third = book_paid(c, w)
    nursing_hall.grab_order(c.uow(), w.nurse, third)
    alarm = nursing_alarms.raise_sos(c.uow(), w.nurse, 22.52, 113.94, third).public_id
    queue = json.loads(run("nursing", "alarms", "list", "--open", "--json").stdout)
    assert [a["public_id"] for a in queue] == [alarm] and queue[0]["status"] == "raised"
    assert json.loads(run("nursing", "alarms", "escalate", "--after", "0", "--json").stdout) == [{"alarm": alarm}]
    assert json.loads(run("nursing", "alarms", "ack", alarm, "--json").stdout)[0]["status"] == "acknowledged"
    closed = json.loads(run("nursing", "alarms", "close", alarm, "--notes", "已电话联系，现场安全", "--json").stdout)[0]
    assert closed["status"] == "closed"
    stats = json.loads(run("nursing", "alarms", "stats", "--since", "2020-01-01", "--until", "2100-01-01",
                           "--json").stdout)
    assert (stats["alarms"], stats["acknowledged"], stats["escalated"]) == (1, 1, 1)
    c.close()
