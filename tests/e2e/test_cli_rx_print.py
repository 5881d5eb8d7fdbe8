"""opsctl rx print / rx verify-qr: a real PDF file whose QR code (read back by
zbarimg) a store pharmacist verifies from the command line."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, update

from clinical_core.domain.access import Principal
from clinical_core.domain.consultation import MessageKind, ServiceKind
from clinical_core.domain.staff import FilingStatus, Role
from clinical_core.persistence.models import DepartmentRow, HisVisitRow, PatientRow
from clinical_core.persistence.prescription import PrescriptionItemRow
from clinical_core.services import (
    accounts,
    consult_settings,
    consultation,
    drug_catalogue,
    prescriptions,
)
from opsctl.config import load_settings
from opsctl.wiring import Container
from tests.e2e.test_cli_rx import env, run  # noqa: F401  (fixture)
from tests.support.clinic import ADMIN, OPS, build_clinic, certify


def approved_prescription(*, items: int = 1, days: int = 7, reason: str | None = None) -> list[str]:
    """Approved prescriptions of the same patient (each in its own consultation), by dr.a, reviewed by ph.x."""
    c = Container(load_settings())
    clinic = build_clinic(c)
    ph = accounts.add_staff_account(c.uow(), ADMIN, accounts.NewStaffAccount(
        username="ph.x", role=Role.PHARMACIST, name="李药师", title="主管药师", licence_no="Y1",
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
    made = []
    for _ in range(items):
        oid = consultation.create_consultation(c.uow(), clinic.patient, c.payments, svc,
                                               "高血压复诊开药").consultation.public_id
        consultation.claim_consultation(c.uow(), clinic.doctor_a, oid)
        consultation.post_message(c.uow(), clinic.doctor_a, c.attachments, oid, MessageKind.TEXT, "您好")
        rx = prescriptions.issue_prescription(c.uow(), clinic.doctor_a, c.his, c.signer, prescriptions.NewPrescription(
            oid, ("I10",), (prescriptions.NewItem("XY001", 2, days, "每日一次"),), long_term_reason=reason)).public_id
        prescriptions.review_prescription(c.uow(), reviewer, c.signer, rx, approve=True)
        made.append(rx)
    c.close()
    return made


@pytest.mark.skipif(not (shutil.which("zbarimg") and shutil.which("pdftoppm")), reason="需要 zbar-tools 与 poppler-utils")
def test_print_then_verify_the_scanned_qr(env: Path) -> None:  # noqa: F811
    run("ca", "init", "--organisation", "测试医院")
    [rx] = approved_prescription()
    printed = json.loads(run("rx", "print", rx, "--out", "out/处方.pdf", "--json").stdout)[0]
    assert printed["prescription_id"] == rx and "审核药师李药师" in printed["signers"]
    pdf = env / "out" / "处方.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")
    subprocess.run(["pdftoppm", "-r", "150", "-f", "1", "-l", "1", "-png", str(pdf), str(env / "page")], check=True)
    scanned = subprocess.run(["zbarimg", "--quiet", "--raw", str(next(env.glob("page*.png")))], check=True,
                             capture_output=True, text=True).stdout.strip()
    check = json.loads(run("rx", "verify-qr", scanned, "--json").stdout)
    assert (check["prescription_id"], check["usable"], check["problems"]) == (rx, True, [])
    c = Container(load_settings())
    with c.uow() as uow:  # a change in the database after printing
        uow.session.execute(update(PrescriptionItemRow).values(quantity=5))
        uow.commit()
    c.close()
    tampered = run("rx", "verify-qr", scanned, expect=6)
    assert "处方在打印后被修改" in tampered.stderr
    assert "R41" in run("rx", "print", rx, "--out", "again.pdf", expect=6).stderr
