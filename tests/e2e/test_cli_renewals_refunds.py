"""opsctl rx renewals list/approve/decline and opsctl refunds settle, against state made by another process."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from clinical_core.domain.access import Principal
from clinical_core.domain.staff import Role
from clinical_core.persistence.models import AccountRow
from clinical_core.persistence.prescription import RxRefundRow
from clinical_core.services import rx_circulation, rx_renewals
from opsctl.config import load_settings
from opsctl.wiring import Container
from tests.e2e.test_cli_rx import env, run  # noqa: F401  (fixture)
from tests.e2e.test_cli_rx_print import approved_prescription
from tests.support.clinic import ADMIN


def _patient(c: Container) -> Principal:
    with c.uow() as uow:
        account = uow.session.scalar(select(AccountRow).where(AccountRow.username == "pt.zhang"))
        assert account is not None
        from clinical_core.persistence.models import PatientRow

        patient = uow.session.get(PatientRow, account.patient_id)
        assert patient is not None
        return Principal(account.public_id, "pt.zhang", Role.PATIENT, patient_id=patient.public_id)


def _paid(c: Container, patient: Principal, rx: str) -> None:
    rx_circulation.choose_store(c.uow(), patient, rx, "PH-01")
    order = rx_circulation.pay_for_drugs(c.uow(), patient, c.payments, rx)
    rx_circulation.handle_paid_notification(c.uow(), c.payments, *c.payments.simulate_payment(order.out_trade_no))


def test_renewals_and_refund_settlement_from_the_cli(env: Path) -> None:  # noqa: F811
    run("ca", "init", "--organisation", "测试医院")
    run("rx", "stores", "add", "PH-01", "--name", "院内药房", "--address", "门诊楼一层")
    chronic, refunded = approved_prescription(items=2, days=28, reason="高血压病情稳定")
    c = Container(load_settings())
    patient = _patient(c)
    for rx in (chronic, refunded):
        _paid(c, patient, rx)
    rx_circulation.dispense(c.uow(), ADMIN, c.signer, chronic)
    renewal = rx_renewals.request_renewal(c.uow(), patient, chronic).public_id
    # The provider refuses the refund once: the record stays pending for the job.
    c.payments.fail_next_refunds = 1
    rx_circulation.refund_drugs(c.uow(), patient, c.payments, refunded, "不需要了")
    c.close()

    listed = json.loads(run("rx", "renewals", "list", "--status", "requested", "--json").stdout)
    assert [(r["public_id"], r["source_prescription_id"]) for r in listed] == [(renewal, chronic)]
    run("rx", "renewals", "decline", renewal, "--doctor", "dr.b", "--reason", "请先复诊", expect=7)  # not the prescriber
    run("rx", "renewals", "decline", renewal, "--doctor", "dr.nobody", "--reason", "请先复诊", expect=4)
    run("rx", "renewals", "decline", renewal, "--doctor", "dr.a", "--reason", " ", expect=3)
    approved = json.loads(run("rx", "renewals", "approve", renewal, "--doctor", "dr.a", "--json").stdout)[0]
    assert approved["status"] == "approved" and approved["new_prescription_id"]
    assert json.loads(run("rx", "list", "--status", "pending_review", "--json").stdout)[0]["public_id"] == \
        approved["new_prescription_id"]
    run("rx", "renewals", "decline", renewal, "--doctor", "dr.a", "--reason", "请先复诊", expect=5)  # decided
    assert json.loads(run("rx", "renewals", "list", "--status", "requested", "--json").stdout) == []

    c = Container(load_settings())
    with c.uow() as uow:
        assert [r.status for r in uow.session.scalars(select(RxRefundRow))] == ["pending"]
    c.payments.fail_next_refunds = 1
    c.close()
    failed = run("refunds", "settle", "--json", expect=9)
    assert json.loads(failed.stdout)[1] == {"kind": "prescription", "label": "处方药费", "succeeded": 0, "failed": 1}
    settled = json.loads(run("refunds", "settle", "--json").stdout)
    assert [(r["kind"], r["succeeded"], r["failed"]) for r in settled] == [("consultation", 0, 0),
                                                                           ("prescription", 1, 0)]
    assert json.loads(run("rx", "track", refunded, "--json").stdout)[0]["refunded_fen"] == 2 * 1200
