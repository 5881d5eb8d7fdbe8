"""The CLI as a user drives it: commands, output formats, exit codes, masking, audit.

Every test runs ``opsctl`` in a fresh temporary data directory (embedded
SQLite), except ``test_db_upgrade_then_current`` which also runs against
PostgreSQL through the ``database_url`` fixture.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from clinical_core.persistence.models import PatientRow
from opsctl import __version__
from opsctl import db as schema
from opsctl.cli.main import app
from opsctl.config import load_settings
from opsctl.wiring import Container
from tests.conftest import TEST_SECRET_KEY

PHONE_MASKED = re.compile(r"^1\d\d\*{4}\d{4}$")
ID_CARD_MASKED = re.compile(r"^\d{3}\*+[\dX]{4}$")
SEED_ARGS = ["demo", "seed", "--patients", "300", "--days", "10", "--seed", "7", "--until", "2026-10-31", "--json"]
GROUPS = {"config", "db", "demo", "users", "patients", "org", "audit", "serve", "consult", "rx", "ca", "staff",
          "wechat", "menu", "qr", "channels", "cards", "funnel", "video", "lecture", "kb", "scripts", "jobs",
          "followup", "questionnaire", "nursing", "content", "live", "community", "schedule", "visit", "report",
          "refunds", "push"}
DOCTOR_ARGS = ["users", "add", "--role", "doctor", "--username", "dr.test", "--name", "李明", "--title", "主治医师",
               "--licence", "110440300001234", "--practising-since", "2015-07-01", "--filed", "--may-prescribe"]

Run = Callable[..., Result]


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's shell: a fresh data directory, the test key, nothing else configured."""
    for name in ("OPSCTL_CONFIG", "OPSCTL_DATABASE_URL", "OPSCTL_WECHAT__APP_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPSCTL_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("OPSCTL_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def opsctl(cli_env: Path) -> Run:
    runner = CliRunner()

    def run(*args: str, expect: int | None = 0) -> Result:
        result = runner.invoke(app, list(args), prog_name="opsctl")
        if expect is not None:
            assert result.exit_code == expect, (
                f"opsctl {' '.join(args)} → {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    return run


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {text!r}"
    return lines[0]


@pytest.fixture
def seeded(opsctl: Run) -> dict[str, Any]:
    return as_json(opsctl(*SEED_ARGS))


def first_patient_in_clear() -> tuple[str, str]:
    """(public id, real phone) of the first patient, decrypted as an operator with the key would."""
    container = Container(load_settings())
    try:
        with container.engine.connect() as connection:
            public_id, phone_enc = connection.execute(
                select(PatientRow.public_id, PatientRow.phone_enc).order_by(PatientRow.id).limit(1)
            ).one()
        return public_id, container.vault.decrypt(phone_enc)
    finally:
        container.close()


# --- global flags --------------------------------------------------------------------------------


def test_help_lists_every_command_group(opsctl: Run) -> None:
    result = opsctl("--help")
    commands = result.stdout.split("Commands:", 1)[1]
    listed = {line.split()[0] for line in commands.splitlines() if line.startswith("  ") and line.strip()}
    assert listed == GROUPS
    assert "--version" in result.stdout and "--debug" in result.stdout and "--config" in result.stdout


def test_version(opsctl: Run) -> None:
    result = opsctl("--version")
    assert result.stdout == f"opsctl {__version__}\n"
    assert result.stderr == ""


# --- demo seed -----------------------------------------------------------------------------------


def test_demo_seed_reports_rows_per_table(opsctl: Run) -> None:
    report = as_json(opsctl(*SEED_ARGS))
    assert (report["patients"], report["days"], report["seed"]) == (300, 10, 7)
    assert (report["start"], report["until"]) == ("2026-10-22", "2026-10-31")
    rows = report["rows"]
    assert rows["patients"] == 300
    assert rows["hospitals"] == 1
    assert {"departments", "staff", "accounts", "drugs", "his_visits", "followers"} <= set(rows)
    assert all(isinstance(n, int) and n > 0 for n in rows.values())
    assert report["total_rows"] == sum(rows.values())


def test_demo_seed_with_reset_is_deterministic(opsctl: Run) -> None:
    first = as_json(opsctl(*SEED_ARGS, "--reset"))
    first_patients = as_json(opsctl("patients", "list", "--limit", "50", "--json"))
    second = as_json(opsctl(*SEED_ARGS, "--reset"))
    second_patients = as_json(opsctl("patients", "list", "--limit", "50", "--json"))
    assert first["rows"] == second["rows"]
    assert second["rows"]["patients"] == 300
    # Same seed, same people (public ids, masked identities), not just the same counts.
    assert first_patients == second_patients
    assert len(first_patients) == 50


def test_demo_seed_refuses_a_database_with_data(opsctl: Run, seeded: dict[str, Any]) -> None:
    result = opsctl(*SEED_ARGS, expect=5)
    message = one_line(result.stderr)
    assert message.startswith("错误：数据库中已有数据")
    assert "--reset" in message
    assert "Traceback" not in result.output
    assert result.stdout == ""
    # Nothing was written: still the first seed's patients.
    assert len(as_json(opsctl("patients", "list", "--limit", "1000", "--json"))) == 300


# --- patients ------------------------------------------------------------------------------------


def test_patients_list_is_masked(opsctl: Run, seeded: dict[str, Any]) -> None:
    patients = as_json(opsctl("patients", "list", "--limit", "100", "--json"))
    assert len(patients) == 100
    for p in patients:
        assert PHONE_MASKED.match(p["phone"]), p["phone"]
        assert ID_CARD_MASKED.match(p["id_card"]), p["id_card"]
        assert p["public_id"].startswith("pat_")
        assert "*" in p["name"]
    public_id, phone = first_patient_in_clear()
    assert patients[0]["public_id"] == public_id
    assert patients[0]["phone"] == phone[:3] + "****" + phone[-4:]
    assert phone not in opsctl("patients", "list", "--limit", "100").output  # the table too


def test_patients_find_by_real_phone_shows_only_the_masked_phone(opsctl: Run, seeded: dict[str, Any]) -> None:
    public_id, phone = first_patient_in_clear()
    assert re.fullmatch(r"1[3-9]\d{9}", phone)
    masked = phone[:3] + "****" + phone[-4:]

    found = opsctl("patients", "find", "--phone", phone, "--json")
    matches = as_json(found)
    assert public_id in [p["public_id"] for p in matches]
    assert {p["phone"] for p in matches} == {masked}
    assert phone not in found.stdout + found.stderr

    table = opsctl("patients", "find", "--phone", phone)
    assert masked in table.stdout and public_id in table.stdout
    assert phone not in table.stdout + table.stderr


def test_patients_find_without_match(opsctl: Run, seeded: dict[str, Any]) -> None:
    result = opsctl("patients", "find", "--phone", "19999999999")
    assert "未找到匹配的患者" in result.stdout
    assert as_json(opsctl("patients", "find", "--phone", "19999999999", "--json")) == []


@pytest.mark.parametrize("id_card", ["11010519491231002Y", "110105194912310021"])
def test_patients_add_with_a_bad_id_card(opsctl: Run, id_card: str) -> None:
    opsctl("db", "upgrade")
    result = opsctl("patients", "add", "--name", "张伟", "--id-card", id_card, "--phone", "13812345678", expect=3)
    message = one_line(result.stderr)
    assert message.startswith("错误：") and "身份证号" in message
    assert "Traceback" not in result.output
    assert id_card not in result.output and "13812345678" not in result.output
    assert result.stdout == ""


def test_patients_add_with_debug_shows_a_traceback(opsctl: Run) -> None:
    opsctl("db", "upgrade")
    result = opsctl("--debug", "patients", "add", "--name", "张伟", "--id-card", "11010519491231002Y",
                    "--phone", "13812345678", expect=3)
    assert "Traceback (most recent call last)" in result.stderr
    assert "InvalidInput" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("错误：身份证号")
    # The stack, not the values: the personal data given on the command line stays out.
    assert "11010519491231002Y" not in result.output and "13812345678" not in result.output


def test_patients_add_then_find(opsctl: Run) -> None:
    opsctl("db", "upgrade")
    added = as_json(opsctl("patients", "add", "--name", "张伟", "--id-card", "11010519491231002X",
                           "--phone", "13812345678", "--district", "440305", "--json"))
    assert len(added) == 1
    assert (added[0]["name"], added[0]["phone"], added[0]["id_card"]) == ("张*", "138****5678", "110***********002X")
    found = opsctl("patients", "find", "--id-card", "11010519491231002x", "--json")
    assert [p["public_id"] for p in as_json(found)] == [added[0]["public_id"]]
    again = opsctl("patients", "add", "--name", "张伟", "--id-card", "11010519491231002X",
                   "--phone", "13812345678", expect=5)
    assert "已登记" in one_line(again.stderr)


# --- users -------------------------------------------------------------------------------------------


def test_users_add_doctor_token_and_list(opsctl: Run, seeded: dict[str, Any]) -> None:
    departments = as_json(opsctl("org", "departments", "--json"))
    dept = next(d for d in departments if d["kind"] == "clinical" and d["online"])
    created = as_json(opsctl(*DOCTOR_ARGS, "--dept", dept["code"], "--json"))
    assert len(created) == 1
    account = created[0]
    assert (account["username"], account["role"], account["display_name"], account["active"]) == (
        "dr.test", "doctor", "李明", True)
    assert account["public_id"].startswith("acc_") and account["staff_id"].startswith("stf_")
    assert account["patient_id"] is None

    after = {d["code"]: d["staff_count"] for d in as_json(opsctl("org", "departments", "--json"))}
    assert after[dept["code"]] == dept["staff_count"] + 1

    issued = opsctl("users", "token", "dr.test", "--json")
    token = as_json(issued)
    assert token["token"].startswith("ops_") and len(token["token"]) > 40
    assert token["token_id"].startswith("tok_")
    assert token["username"] == "dr.test"
    assert token["expires_at"] is not None
    assert "只显示这一次" in issued.stderr and token["token"] not in issued.stderr

    accounts = as_json(opsctl("users", "list", "--json"))
    mine = [a for a in accounts if a["username"] == "dr.test"]
    assert len(mine) == 1 and mine[0]["public_id"] == account["public_id"]
    doctors = as_json(opsctl("users", "list", "--role", "doctor", "--json"))
    assert "dr.test" in {a["username"] for a in doctors}
    assert {a["role"] for a in doctors} == {"doctor"}


def test_users_add_doctor_with_a_nurse_title_is_a_rule_violation(opsctl: Run, seeded: dict[str, Any]) -> None:
    result = opsctl("users", "add", "--role", "doctor", "--username", "dr.bad", "--name", "王五",
                    "--title", "主管护师", expect=6)
    message = one_line(result.stderr)
    assert "不属于医生系列" in message and "STAFF-TITLE" in message
    assert "Traceback" not in result.output
    assert "dr.bad" not in {a["username"] for a in as_json(opsctl("users", "list", "--json"))}


def test_users_token_for_unknown_user(opsctl: Run, seeded: dict[str, Any]) -> None:
    result = opsctl("users", "token", "nobody.here", expect=4)
    assert "未找到用户 nobody.here" in one_line(result.stderr)
    assert "ops_" not in result.output


# --- config, org, audit ------------------------------------------------------------------------------


def test_config_show_masks_secrets(opsctl: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    app_secret = "wx-app-secret-that-must-not-leak-4711"
    monkeypatch.setenv("OPSCTL_WECHAT__APP_SECRET", app_secret)
    result = opsctl("config", "show", "--json")
    rows = {r["key"]: r for r in as_json(result)}
    assert rows["secret_key"]["value"] == "******（已设置）"
    assert rows["secret_key"]["source"] == "环境变量"
    assert rows["wechat.app_secret"]["value"] == "******（已设置）"
    assert rows["wechat.app_secret"]["source"] == "环境变量"
    assert rows["data_dir"]["value"] == os.environ["OPSCTL_DATA_DIR"]
    for fmt in ("json", "table", "csv"):
        out = opsctl("config", "show", "--format", fmt).output
        assert TEST_SECRET_KEY not in out, fmt
        assert app_secret not in out, fmt


def test_config_show_hides_the_database_password(opsctl: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCTL_DATABASE_URL", "postgresql+psycopg://ops:S3cretDbPw@db.example/ops")
    result = opsctl("config", "show", "--json")
    row = next(r for r in as_json(result) if r["key"] == "database_url")
    assert row["value"].startswith("postgresql+psycopg://ops:")
    assert "S3cretDbPw" not in result.output


def test_org_departments_as_csv(opsctl: Run, seeded: dict[str, Any]) -> None:
    lines = opsctl("org", "departments", "--format", "csv").stdout.splitlines()
    assert lines[0] == "code,name,kind,online,staff_count"
    assert len(lines) - 1 == seeded["rows"]["departments"]
    assert any(line.startswith("CARD,心血管内科,") for line in lines[1:])


def test_audit_list_records_a_patient_lookup(opsctl: Run, seeded: dict[str, Any]) -> None:
    public_id, phone = first_patient_in_clear()
    opsctl("patients", "find", "--phone", phone)
    result = opsctl("audit", "list", "--json")
    entries = as_json(result)
    assert entries[0]["action"] == "patient.lookup"  # newest first
    lookup = entries[0]
    assert lookup["actor"].startswith("admin:cli:")
    assert (lookup["entity_type"], lookup["entity_id"]) == ("patient", "*")
    assert lookup["details"]["by"] == "phone"
    assert public_id in lookup["details"]["matches"]
    assert "demo.seed" in [e["action"] for e in entries]
    assert phone not in result.output
    only = as_json(opsctl("audit", "list", "--action", "patient.lookup", "--json"))
    assert [e["action"] for e in only] == ["patient.lookup"]


# --- databases -----------------------------------------------------------------------------------------


def test_db_upgrade_then_current(opsctl: Run, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSCTL_DATABASE_URL", database_url)
    dialect = make_url(database_url).get_backend_name()
    engine = create_engine(database_url)
    try:
        head = schema.head_revision(engine)
    finally:
        engine.dispose()
    assert head

    upgraded = as_json(opsctl("db", "upgrade", "--json"))
    assert upgraded == {"before": None, "after": head, "dialect": dialect}

    current = opsctl("db", "current", "--json")
    report = as_json(current)
    assert (report["current"], report["head"], report["up_to_date"], report["dialect"]) == (head, head, True, dialect)
    password = make_url(database_url).password
    if password:
        assert password not in current.output

    again = as_json(opsctl("db", "upgrade", "--json"))
    assert (again["before"], again["after"]) == (head, head)


# --- the installed console script ----------------------------------------------------------------------


def test_commands_on_an_uninitialised_database_say_what_to_do(opsctl: Run) -> None:
    result = opsctl("patients", "list", expect=8)
    assert "数据库尚未初始化" in one_line(result.stderr) and "opsctl db upgrade" in result.stderr
    opsctl("db", "upgrade")
    assert opsctl("patients", "list", "--json").stdout.strip() == "[]"


def test_console_script(cli_env: Path) -> None:
    exe = shutil.which("opsctl", path=str(Path(sys.executable).parent))
    assert exe, "console script opsctl not installed next to the interpreter"
    env = {**os.environ, "COLUMNS": "200"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([exe, *args], cwd=cli_env, env=env, capture_output=True, text=True,
                              encoding="utf-8", timeout=60, check=False)

    version = run("--version")
    assert (version.returncode, version.stdout, version.stderr) == (0, f"opsctl {__version__}\n", "")

    missing = run("--config", "/nonexistent.toml", "config", "show")
    assert missing.returncode == 8
    message = one_line(missing.stderr)
    assert "配置文件不存在" in message and "/nonexistent.toml" in message
    assert "Traceback" not in missing.stderr
    assert missing.stdout == ""
