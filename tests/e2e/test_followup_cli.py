"""`opsctl questionnaire` and `opsctl followup` as staff use them."""

from __future__ import annotations

import json
from pathlib import Path

from openpyxl import load_workbook

from campaigns.services import questionnaires
from clinical_core.domain.access import Principal
from clinical_core.domain.staff import Role
from opsctl.config import load_settings
from opsctl.wiring import Container
from tests.e2e.test_cli import DOCTOR_ARGS, Run, as_json, cli_env, opsctl  # noqa: F401 - fixtures

QUESTIONNAIRE = """
title: 高血压随访问卷
questions:
  - {key: sbp, kind: number, title: 收缩压, min: 60, max: 260, unit: mmHg}
  - {key: dizzy, kind: single, title: 近一周是否头晕, options: [否, 偶尔, 经常]}
"""


def test_questionnaire_and_followup_commands(opsctl: Run, cli_env: Path) -> None:  # noqa: F811
    opsctl("db", "upgrade")
    doctor = as_json(opsctl(*DOCTOR_ARGS, "--json"))
    staff_id = (doctor[0] if isinstance(doctor, list) else doctor)["staff_id"]
    patient = as_json(opsctl("patients", "add", "--name", "张伟", "--id-card", "11010519491231002X",
                             "--phone", "13812345678", "--json"))[0]["public_id"]
    (cli_env / "q.yaml").write_text(QUESTIONNAIRE, encoding="utf-8")
    assert "--owner" in opsctl("questionnaire", "create", "q.yaml", expect=2).stderr
    q = as_json(opsctl("questionnaire", "create", "q.yaml", "--owner", staff_id, "--json"))
    qid = q["questionnaire_id"]
    assert (q["version"], q["owner"]) == (1, "李明")
    assert "收缩压" in opsctl("questionnaire", "show", qid).stdout
    (cli_env / "bad.yaml").write_text("title: x\nquestions: []\n", encoding="utf-8")
    assert "1 至 60 个问题" in opsctl("questionnaire", "create", "bad.yaml", "--owner", staff_id, expect=3).stderr

    (cli_env / "plan.json").write_text(json.dumps([
        {"day": 0, "at": "10:00", "kind": "questionnaire", "title": "血压问卷", "questionnaire_id": qid},
        {"day": 7, "kind": "text", "title": "用药提醒", "body": "请按时服药"}], ensure_ascii=False), encoding="utf-8")
    template = as_json(opsctl("followup", "templates", "add", "bp", "plan.json", "--name", "高血压随访",
                              "--trigger", "rx_dispensed", "--match", "I10", "--json"))
    assert (template["steps"], template["trigger_match"]) == (2, ["I10"])
    (plan,) = as_json(opsctl("followup", "start", "bp", "--patient", patient, "--json"))
    assert plan["progress"] == "0/2" and plan["status"] == "active"
    assert "请用 --patient" in opsctl("followup", "start", "bp", expect=3).stderr
    shown = as_json(opsctl("followup", "show", plan["plan_id"], "--json"))
    assert [s["status"] for s in shown["steps"]] == ["pending", "pending"]
    dry = as_json(opsctl("followup", "deliver", "--dry-run", "--json"))
    assert dry["sent"] == 0 and len(dry["dry_run"]) in (0, 1)  # 0 when the wall clock is in quiet hours
    assert [s["status"] for s in as_json(opsctl("followup", "steps", "--json"))] == ["pending", "pending"]

    # the patient answers (through the service, as the API would), staff export
    container = Container(load_settings(None))
    try:
        questionnaires.submit(container.uow(), Principal("acc", "p", Role.PATIENT, patient_id=patient), qid,
                              {"sbp": 131, "dizzy": "偶尔"}, step_id=shown["steps"][0]["step_id"])
    finally:
        container.close()
    (answer,) = as_json(opsctl("questionnaire", "responses", qid, "--json"))
    assert answer["patient_name"] == "张*" and answer["answers"] == {"sbp": 131.0, "dizzy": "偶尔"}
    exported = as_json(opsctl("questionnaire", "export", qid, "--xlsx", "out/answers.xlsx", "--json"))
    assert exported["responses"] == 1
    rows = list(load_workbook(cli_env / "out" / "answers.xlsx", read_only=True).active.iter_rows(values_only=True))
    assert rows[1][3] == "张*" and rows[1][5:] == (131, "偶尔") and "张伟" not in repr(rows)
    stopped = as_json(opsctl("followup", "stop", plan["plan_id"], "--reason", "测试", "--json"))
    assert stopped["status"] == "stopped"
    assert as_json(opsctl("followup", "plans", "--status", "stopped", "--json"))[0]["plan_id"] == plan["plan_id"]
