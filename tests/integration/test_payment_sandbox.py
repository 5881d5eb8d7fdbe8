"""The payment sandbox keeps the provider's state durably: another process sees
prepay orders, payments and refunds; refunds are their own records that settle
asynchronously; concurrent refunds never exceed what was paid."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest

from clinical_core.adapters.payment_sandbox import SandboxPaymentGateway
from clinical_core.domain.consultation import ServiceKind
from clinical_core.domain.errors import ExternalServiceError
from clinical_core.domain.time import FixedClock
from clinical_core.services import consult_ledger, consult_settings, consultation
from opsctl.wiring import Container
from tests.support.clinic import ADMIN, OPS, build_clinic

KEY = b"k" * 32

# A second process: pays the order and prints the signed notification.
PAY_IN_OTHER_PROCESS = """
import json, sys
from datetime import UTC, datetime
from pathlib import Path
from clinical_core.adapters.payment_sandbox import SandboxPaymentGateway
from clinical_core.domain.time import FixedClock
gw = SandboxPaymentGateway(FixedClock(datetime(2026, 11, 2, 2, 0, tzinfo=UTC)), b"k" * 32, path=Path(sys.argv[1]))
headers, body = gw.simulate_payment(sys.argv[2])
receipt = gw.refund(sys.argv[2], "refund-from-b", 100, 1500, "partial")
print(json.dumps({"headers": headers, "body": body.decode(), "refund": receipt.status}))
"""


def test_another_process_sees_and_pays_the_order(tmp_path: Path, clock: FixedClock) -> None:
    path = tmp_path / "provider.db"
    a = SandboxPaymentGateway(clock, KEY, path=path)
    a.prepay("order-1", 1500, "图文咨询", None)
    assert a.trade_state("order-1") == "NOTPAY"
    out = subprocess.run([sys.executable, "-c", PAY_IN_OTHER_PROCESS, str(path), "order-1"], check=True,
                         capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2]).stdout
    sent = json.loads(out)
    notice = a.parse_notification(sent["headers"], sent["body"].encode())
    assert (notice.out_trade_no, notice.amount_fen) == ("order-1", 1500)
    assert a.trade_state("order-1") == "SUCCESS" and sent["refund"] == "PROCESSING"
    assert a.refunds_of("order-1") == [("refund-from-b", 100, "PROCESSING")]
    # A fresh instance (as after a restart) has the same state.
    b = SandboxPaymentGateway(clock, KEY, path=path)
    assert b.query_refund("refund-from-b").status == "SUCCESS"
    with pytest.raises(ExternalServiceError):  # prepay again with another amount
        b.prepay("order-1", 1600, "图文咨询", None)
    with pytest.raises(ExternalServiceError):  # a notification signed with another key
        SandboxPaymentGateway(clock, b"x" * 32, path=path).parse_notification(sent["headers"], sent["body"].encode())


def test_refund_settles_asynchronously_and_is_idempotent(tmp_path: Path, clock: FixedClock) -> None:
    gw = SandboxPaymentGateway(clock, KEY, path=tmp_path / "p.db", settle_delay=timedelta(minutes=5))
    gw.prepay("order-2", 1000, "药品", None)
    with pytest.raises(ExternalServiceError):  # nothing paid yet
        gw.refund("order-2", "r1", 100, 1000, "x")
    gw.simulate_payment("order-2")
    first = gw.refund("order-2", "r1", 600, 1000, "x")
    assert first.status == "PROCESSING"
    assert gw.refund("order-2", "r1", 600, 1000, "x") == first  # the same refund asked again
    with pytest.raises(ExternalServiceError):  # more than is left
        gw.refund("order-2", "r2", 500, 1000, "x")
    assert gw.query_refund("r1").status == "PROCESSING"
    clock.advance(timedelta(minutes=5))
    assert gw.query_refund("r1").status == "SUCCESS"
    assert gw.refund("order-2", "r2", 400, 1000, "x").status == "PROCESSING"
    with pytest.raises(ExternalServiceError):
        gw.query_refund("unknown")


def test_failures_are_shared_between_instances(tmp_path: Path, clock: FixedClock) -> None:
    a = SandboxPaymentGateway(clock, KEY, path=tmp_path / "p.db")
    b = SandboxPaymentGateway(clock, KEY, path=tmp_path / "p.db")
    a.prepay("order-3", 1000, "药品", None)
    a.simulate_payment("order-3")
    a.fail_next_refunds = 1
    with pytest.raises(ExternalServiceError):
        b.refund("order-3", "r1", 100, 1000, "x")
    assert a.fail_next_refunds == 0
    assert b.refund("order-3", "r1", 100, 1000, "x").status == "PROCESSING"


def test_concurrent_refunds_never_exceed_the_payment(tmp_path: Path, clock: FixedClock) -> None:
    gateways = [SandboxPaymentGateway(clock, KEY, path=tmp_path / "p.db") for _ in range(4)]
    gateways[0].prepay("order-4", 1000, "药品", None)
    gateways[0].simulate_payment("order-4")

    def attempt(i: int) -> bool:
        try:
            gateways[i % 4].refund("order-4", f"r{i}", 300, 1000, "x")
            return True
        except ExternalServiceError:
            return False

    with ThreadPoolExecutor(8) as pool:
        accepted = sum(pool.map(attempt, range(8)))
    assert accepted == 3
    assert sum(amount for _, amount, _ in gateways[0].refunds_of("order-4")) == 900


def test_our_refund_record_follows_the_provider(container: Container, clock: FixedClock) -> None:
    """pending → processing (provider accepted) → succeeded (provider settled), via the shared job."""
    clinic = build_clinic(container)
    gw = SandboxPaymentGateway(clock, KEY, path=container.settings.data_dir / "p.db",
                               settle_delay=timedelta(hours=2))
    svc = consult_settings.configure_service(container.uow(), OPS, consult_settings.ServiceSettings(
        kind=ServiceKind.DEPARTMENT, price_fen=1500, department_code="CARD")).public_id
    created = consultation.create_consultation(container.uow(), clinic.patient, gw, svc, "想咨询一下用药")
    oid = created.consultation.public_id
    consultation.handle_paid_notification(container.uow(), gw, *gw.simulate_payment(created.out_trade_no or ""))
    consult_ledger.request_refund(container.uow(), OPS, oid, None, "complaint")
    assert consult_ledger.settle_refunds(container.uow(), gw) == consult_ledger.SettleResult(0, 0)
    [refund] = consult_ledger.list_refunds(container.uow(), OPS)
    assert refund.status == "processing"
    by_id = {v.public_id: v for v in consultation.list_consultations(container.uow(), ADMIN)}
    assert by_id[oid].refunded_fen == 0  # not yet money back
    clock.advance(timedelta(hours=2))
    assert consult_ledger.settle_refunds(container.uow(), gw) == consult_ledger.SettleResult(1, 0)
    assert [r.status for r in consult_ledger.list_refunds(container.uow(), OPS)] == ["succeeded"]
    assert {v.public_id: v for v in consultation.list_consultations(container.uow(), ADMIN)}[oid].refunded_fen == 1500
    [(_, amount, status)] = gw.refunds_of(created.out_trade_no or "")
    assert (amount, status) == (1500, "SUCCESS")
