"""opsctl rx: the rules as data, and the all-or-nothing Excel catalogue import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from clinical_core.domain.prescription_rules import RULES
from clinical_core.persistence.models import AuditRow, DrugRow
from opsctl.cli.main import app
from opsctl.config import load_settings
from opsctl.wiring import Container
from tests.conftest import TEST_SECRET_KEY

HEADER = ["药品编码", "通用名", "商品名", "规格", "剂型", "单位", "价格(元)", "类别", "管制类别", "处方药"]
GOOD = [["XY001", "苯磺酸氨氯地平片", "络活喜", "5mg*28片", "片剂", "盒", 27.5, "西药", "普通药品", "是"],
        ["XY002", "二甲双胍缓释片", None, "0.5g*30片", "片剂", "盒", "12.80", "西药", None, "是"],
        ["ZY001", "黄芪", None, "1g", "饮片", "克", 0.35, "中药饮片", "普通药品", "否"]]


def run(*args: str, expect: int = 0) -> Result:
    result = CliRunner().invoke(app, list(args), prog_name="opsctl")
    assert result.exit_code == expect, f"{args} → {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result


def workbook(path: Path, rows: list[list[object]], header: list[str] = HEADER) -> Path:
    wb = Workbook()
    ws = wb.active
    ws.append(header)
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("OPSCTL_CONFIG", "OPSCTL_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPSCTL_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("OPSCTL_SECRET_KEY", TEST_SECRET_KEY)
    monkeypatch.chdir(tmp_path)
    run("db", "upgrade")
    return tmp_path


def drugs(env: Path) -> dict[str, tuple[object, ...]]:
    c = Container(load_settings())
    with c.uow() as uow:
        rows = {d.code: (d.generic_name, d.price_fen, d.category, d.control_class, d.prescription_only)
                for d in uow.session.scalars(select(DrugRow))}
        rows["_audit"] = (uow.session.scalar(select(func.count()).select_from(AuditRow).where(
            AuditRow.action == "drug_catalogue.import")),)
    c.close()
    return rows


def test_rules_are_listed_with_severity_and_source(env: Path) -> None:
    listed = json.loads(run("rx", "rules", "--json").stdout)
    assert [r["code"] for r in listed] == [r.code for r in RULES]
    by_code = {r["code"]: r for r in listed}
    assert by_code["R24"]["severity"] == "block" and "第六条" in by_code["R24"]["source"]
    assert by_code["R26"]["severity"] == "needs_reason"
    assert {"R02", "R04", "R04-CHILD", "R07", "R25", "R53"} <= set(by_code)


def test_import_creates_then_updates(env: Path) -> None:
    path = workbook(env / "目录.xlsx", GOOD)
    assert json.loads(run("rx", "catalogue", "import", str(path), "--json").stdout) == [
        {"rows": 3, "created": 3, "updated": 0}]
    stored = drugs(env)
    assert stored["XY001"] == ("苯磺酸氨氯地平片", 2750, "western", "none", True)
    assert stored["XY002"][1] == 1280 and stored["ZY001"] == ("黄芪", 35, "herbal_pieces", "none", False)
    changed = workbook(env / "目录2.xlsx", [GOOD[0][:6] + [30, "西药", "普通药品", "是"]])
    assert json.loads(run("rx", "catalogue", "import", str(changed), "--json").stdout)[0]["updated"] == 1
    assert drugs(env)["XY001"][1] == 3000 and drugs(env)["_audit"] == (2,)


def test_a_bad_row_rejects_the_whole_file_with_every_error(env: Path) -> None:
    bad = GOOD + [["XY001", "重复编码", None, "1", "片剂", "盒", 1, "西药", None, None],
                  ["XY009", "", None, "1", "片剂", "盒", "abc", "保健品", "兴奋剂", "也许"]]
    result = run("rx", "catalogue", "import", str(workbook(env / "bad.xlsx", bad)), expect=3)
    lines = result.stderr.strip().splitlines()
    assert "第 5 行：药品编码 XY001 与第 2 行重复" in lines
    assert "第 6 行：「通用名」不能为空" in lines
    assert any(line.startswith("第 6 行：价格「abc」") for line in lines)
    assert any("类别「保健品」无效" in line for line in lines)
    assert any("管制类别「兴奋剂」无效" in line for line in lines)
    assert any("处方药应填" in line for line in lines)
    assert lines[-1].startswith("错误：药品目录有 6 处错误，未导入任何药品")
    assert [k for k in drugs(env) if k != "_audit"] == []  # nothing was imported


def test_missing_columns_and_not_an_excel_file(env: Path) -> None:
    result = run("rx", "catalogue", "import", str(workbook(env / "h.xlsx", [["X"]], header=["编码", "名称"])),
                 expect=3)
    assert "表头缺少列" in result.stderr
    (env / "fake.xlsx").write_text("not a workbook")
    assert "无法读取 Excel" in run("rx", "catalogue", "import", str(env / "fake.xlsx"), expect=3).stderr


def test_rx_list_is_empty_then_filters(env: Path) -> None:
    assert json.loads(run("rx", "list", "--json").stdout) == []
    assert json.loads(run("rx", "list", "--status", "approved", "--json").stdout) == []
    run("rx", "list", "--status", "nonsense", expect=2)


def test_ca_init_issue_cert_and_verify(env: Path) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import update

    from clinical_core.domain.consultation import MessageKind, ServiceKind
    from clinical_core.persistence.models import DepartmentRow, HisVisitRow, PatientRow
    from clinical_core.persistence.prescription import PrescriptionItemRow
    from clinical_core.services import consult_settings, consultation, drug_catalogue, prescriptions
    from tests.support.clinic import ADMIN, OPS, build_clinic

    assert "ca.crt" in run("ca", "init", "--organisation", "测试医院").stdout
    assert "已存在" in run("ca", "init", "--organisation", "测试医院", expect=5).stderr
    c = Container(load_settings())
    clinic = build_clinic(c)
    cert = json.loads(run("staff", "issue-cert", clinic.doctor_a.staff_id or "", "--json").stdout)[0]
    assert cert["staff_id"] == clinic.doctor_a.staff_id and cert["serial"]
    run("staff", "issue-cert", "stf_missing", expect=4)
    drug_catalogue.import_catalogue(c.uow(), ADMIN, [(2, {"药品编码": "XY001", "通用名": "氨氯地平片", "规格": "5mg",
                                                         "剂型": "片剂", "单位": "盒", "价格(元)": "1", "类别": "西药"})],
                                    source="t.xlsx")
    with c.uow() as uow:
        uow.session.add(HisVisitRow(
            visit_no="MZ1", visited_at=datetime(2026, 9, 1, tzinfo=UTC), visit_type="outpatient",
            patient_id=uow.session.scalar(select(PatientRow.id).where(PatientRow.public_id == clinic.patient.patient_id)),
            department_id=uow.session.scalar(select(DepartmentRow.id).where(DepartmentRow.code == "CARD")),
            diagnoses=[{"icd10": "I10", "name": "原发性高血压"}]))
        uow.commit()
    svc = consult_settings.configure_service(c.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=0, department_code="CARD")).public_id
    oid = consultation.create_consultation(c.uow(), clinic.patient, c.payments, svc, "高血压复诊开药").consultation.public_id
    consultation.claim_consultation(c.uow(), clinic.doctor_a, oid)
    consultation.post_message(c.uow(), clinic.doctor_a, c.attachments, oid, MessageKind.TEXT, "您好")
    rx = prescriptions.issue_prescription(c.uow(), clinic.doctor_a, c.his, c.signer, prescriptions.NewPrescription(
        oid, ("I10",), (prescriptions.NewItem("XY001", 1, 7, "每日一次"),))).public_id
    checks = json.loads(run("rx", "verify", rx, "--json").stdout)
    assert [(x["role"], x["valid"]) for x in checks] == [("doctor", True)]
    assert [r["public_id"] for r in json.loads(run("rx", "list", "--status", "pending_review", "--json").stdout)] == [rx]
    with c.uow() as uow:
        uow.session.execute(update(PrescriptionItemRow).values(usage="每日三次"))
        uow.commit()
    c.close()
    tampered = run("rx", "verify", rx, "--json", expect=6)
    assert json.loads(tampered.stdout)[0]["valid"] is False


def test_stores_and_circulation_commands(env: Path) -> None:
    """opsctl rx stores add/list, then dispense (once: R54), ship, deliver, track; refund refused after use."""
    from datetime import UTC, date, datetime

    from clinical_core.domain.access import Principal
    from clinical_core.domain.consultation import MessageKind, ServiceKind
    from clinical_core.domain.staff import FilingStatus, Role
    from clinical_core.persistence.models import DepartmentRow, HisVisitRow, PatientRow
    from clinical_core.services import (
        accounts,
        consult_settings,
        consultation,
        drug_catalogue,
        prescriptions,
        rx_circulation,
    )
    from tests.support.clinic import ADMIN, OPS, build_clinic, certify

    added = json.loads(run("rx", "stores", "add", "ph-01", "--name", "院内药房", "--address", "门诊楼一层",
                           "--agreement-no", "HT-1", "--json").stdout)
    assert added[0]["code"] == "PH-01"
    run("rx", "stores", "add", "PH-01", "--name", "重复", "--address", "某处", expect=5)
    assert [s["code"] for s in json.loads(run("rx", "stores", "list", "--json").stdout)] == ["PH-01"]

    c = Container(load_settings())
    clinic = build_clinic(c)
    ph = accounts.add_staff_account(c.uow(), ADMIN, accounts.NewStaffAccount(
        username="ph.x", role=Role.PHARMACIST, name="药师", title="主管药师", licence_no="Y1",
        practising_since=date(2010, 1, 1), filing=FilingStatus.FILED, may_prescribe=False))
    reviewer = Principal(ph.public_id, "ph.x", Role.PHARMACIST, staff_id=ph.staff_id)
    certify(c, clinic.doctor_a, reviewer)
    drug_catalogue.import_catalogue(c.uow(), ADMIN, [(2, {"药品编码": "XY001", "通用名": "氨氯地平片", "规格": "5mg",
                                                         "剂型": "片剂", "单位": "盒", "价格(元)": "12", "类别": "西药"})],
                                    source="t.xlsx")
    with c.uow() as uow:
        uow.session.add(HisVisitRow(
            visit_no="MZ1", visited_at=datetime(2026, 9, 1, tzinfo=UTC), visit_type="outpatient",
            patient_id=uow.session.scalar(select(PatientRow.id).where(PatientRow.public_id == clinic.patient.patient_id)),
            department_id=uow.session.scalar(select(DepartmentRow.id).where(DepartmentRow.code == "CARD")),
            diagnoses=[{"icd10": "I10", "name": "原发性高血压"}]))
        uow.commit()
    svc = consult_settings.configure_service(c.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=0, department_code="CARD")).public_id
    oid = consultation.create_consultation(c.uow(), clinic.patient, c.payments, svc, "高血压复诊开药").consultation.public_id
    consultation.claim_consultation(c.uow(), clinic.doctor_a, oid)
    consultation.post_message(c.uow(), clinic.doctor_a, c.attachments, oid, MessageKind.TEXT, "您好")
    rx = prescriptions.issue_prescription(c.uow(), clinic.doctor_a, c.his, c.signer, prescriptions.NewPrescription(
        oid, ("I10",), (prescriptions.NewItem("XY001", 2, 7, "每日一次"),))).public_id
    run("rx", "dispense", rx, expect=5)  # not approved, not paid: nothing to dispense
    prescriptions.review_prescription(c.uow(), reviewer, c.signer, rx, approve=True)
    rx_circulation.choose_store(c.uow(), clinic.patient, rx, "PH-01")
    order = rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, rx)
    rx_circulation.handle_paid_notification(c.uow(), c.payments, *c.payments.simulate_payment(order.out_trade_no))
    c.close()

    assert json.loads(run("rx", "list", "--status", "paid", "--json").stdout)[0]["public_id"] == rx
    assert json.loads(run("rx", "refund", rx, "--reason", "取消", "--dry-run", "--json").stdout)[0]["status"] == "paid"
    assert json.loads(run("rx", "dispense", rx, "--json").stdout)[0]["status"] == "dispensed"
    assert "R54" in run("rx", "dispense", rx, expect=6).stderr
    assert "R54" in run("rx", "refund", rx, "--reason", "取消", expect=6).stderr
    run("rx", "ship", rx, "--carrier", "顺丰速运", "--tracking-no", "x", expect=3)
    shipped = json.loads(run("rx", "ship", rx, "--carrier", "顺丰速运", "--tracking-no", "SF1234567890",
                             "--json").stdout)[0]
    assert shipped["tracking_no"] == "SF1234567890"
    run("rx", "deliver", rx)
    tracked = json.loads(run("rx", "track", rx, "--json").stdout)[0]
    assert (tracked["status"], tracked["amount_fen"], tracked["paid_fen"], tracked["store_code"]) == (
        "delivered", 2400, 2400, "PH-01")
