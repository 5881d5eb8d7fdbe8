"""处方打印: a real PDF (WeasyPrint, CJK fonts) with both signers and a QR code;
the page is not blank, the text layer has the Chinese title, the QR code
decodes (zbarimg) and verifies against the stored signatures; a prescription
changed after printing (or a forged QR code) fails verification."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select, update

from clinical_core.adapters import rx_pdf
from clinical_core.domain import rx_qr
from clinical_core.domain.errors import (
    Forbidden,
    IllegalTransition,
    InvalidInput,
    RuleViolation,
)
from clinical_core.persistence.prescription import PrescriptionItemRow, PrescriptionRow
from clinical_core.services import prescriptions, rx_print
from opsctl.wiring import Container
from tests.integration.test_prescriptions import pharmacist, rx, setup  # noqa: F401  (fixture)
from tests.integration.test_rx_circulation import Setup, approved  # noqa: F401  (fixture)
from tests.support.clinic import ADMIN, Clinic

needs_tools = pytest.mark.skipif(not (shutil.which("pdftoppm") and shutil.which("pdftotext") and shutil.which("zbarimg")),
                                 reason="需要 poppler-utils 与 zbar-tools（make setup 安装）")


def _qr_from_pdf(pdf: Path) -> tuple[str, Path]:
    subprocess.run(["pdftoppm", "-r", "150", "-f", "1", "-l", "1", "-png", str(pdf), str(pdf.with_suffix(""))],
                   check=True)
    [png] = sorted(pdf.parent.glob(pdf.stem + "*.png"))
    out = subprocess.run(["zbarimg", "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(png)],
                         check=True, capture_output=True, text=True).stdout.strip()
    return out, png


@needs_tools
@pytest.mark.slow
def test_printed_prescription_verifies_and_tampering_is_caught(container: Container, approved: tuple[Clinic, str],  # noqa: F811
                                                               tmp_path: Path) -> None:
    c, (clinic, rx_id) = container, approved
    printout = rx_print.printout(c.uow(), clinic.patient, c.signer, rx_id)
    assert [s.role for s in printout.signers] == ["doctor", "pharmacist"]
    assert "*" in printout.patient_name
    pdf = tmp_path / "rx.pdf"
    pdf.write_bytes(rx_pdf.render_pdf(printout))
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    assert "互联网医院处方笺" in text and "苯磺酸氨氯地平片" in text and "原发性高血压" in text
    assert printout.signers[0].serial in text and printout.signers[1].name in text
    assert printout.patient_name in text
    payload, png = _qr_from_pdf(pdf)
    with Image.open(png) as image:  # not blank: plenty of dark pixels, and the page is mostly white
        grey = image.convert("L")
        dark = sum(1 for v in grey.getdata() if v < 128)
        assert 0.01 < dark / (grey.width * grey.height) < 0.5
    assert payload == printout.qr_text
    qr = rx_qr.decode(payload)
    assert qr.prescription_id == rx_id and {s.role for s in qr.signatures} == {"doctor", "pharmacist"}
    assert all(k not in base64.urlsafe_b64decode(payload[4:] + "==").decode() for k in ("张", "name"))
    store = pharmacist(c, "ph.store", "主管药师", date(2012, 1, 1))
    ok = rx_print.verify_qr(c.uow(), store, c.signer, payload)
    assert (ok.signatures_valid, ok.matches_current, ok.usable, ok.problems) == (True, True, True, ())
    assert [s.valid for s in ok.signatures] == [True, True]

    # A forged QR: another digest under the same signatures.
    body = json.loads(base64.urlsafe_b64decode(payload[4:] + "=" * (-len(payload[4:]) % 4)))
    body["s"][0][2] = base64.urlsafe_b64encode(b"\x00" * 32).rstrip(b"=").decode()
    forged = rx_qr.PREFIX + base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    bad = rx_print.verify_qr(c.uow(), store, c.signer, forged)
    assert not bad.signatures_valid and not bad.usable and bad.signatures[0].valid is False

    # The prescription changed in the database after printing: caught online, and printing is refused (R41).
    with c.uow() as uow:
        rx_pk = uow.session.scalar(select(PrescriptionRow.id).where(PrescriptionRow.public_id == rx_id))
        uow.session.execute(update(PrescriptionItemRow).where(PrescriptionItemRow.prescription_id == rx_pk)
                            .values(quantity=9))
        uow.commit()
    tampered = rx_print.verify_qr(c.uow(), store, c.signer, payload)
    assert tampered.signatures_valid and not tampered.matches_current and not tampered.usable
    assert "处方在打印后被修改" in tampered.problems
    with pytest.raises(RuleViolation) as caught:
        rx_print.printout(c.uow(), ADMIN, c.signer, rx_id)
    assert caught.value.rule == "R41"


def test_print_is_for_owners_and_only_after_approval(container: Container, setup: Setup) -> None:  # noqa: F811
    clinic, oid, his = setup
    issued = prescriptions.issue_prescription(container.uow(), clinic.doctor_a, his, container.signer, rx(oid))
    with pytest.raises(IllegalTransition):  # pending review: nothing to hand to a store
        rx_print.printout(container.uow(), clinic.doctor_a, container.signer, issued.public_id)
    reviewer = pharmacist(container, "ph.senior", "主管药师", date(2015, 1, 1))
    prescriptions.review_prescription(container.uow(), reviewer, container.signer, issued.public_id, approve=True)
    for principal in (clinic.other_patient, clinic.doctor_b):
        with pytest.raises(Forbidden):
            rx_print.printout(container.uow(), principal, container.signer, issued.public_id)
    for principal in (clinic.patient, clinic.doctor_a, reviewer, ADMIN):
        assert rx_print.printout(container.uow(), principal, container.signer, issued.public_id).version == 1
    with pytest.raises(Forbidden):  # verifying a QR code is for pharmacists and administrators
        rx_print.verify_qr(container.uow(), clinic.patient, container.signer, "RX1.e30")
    with pytest.raises(InvalidInput):
        rx_print.verify_qr(container.uow(), reviewer, container.signer, "https://example.com")
