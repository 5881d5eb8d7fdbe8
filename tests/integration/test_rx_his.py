"""集成模式 (RX-5) on SQLite and PostgreSQL, against the durable fake HIS: catalogue sync with its
difference, the HIS diagnosis library, and register/charge/dispense/refund/void through the HIS
with idempotency keys, injected timeouts and the reconciliation job. Rules, signatures and the
pharmacist's review are the same as in standalone mode."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from clinical_core.adapters.his_fake import FakeHis
from clinical_core.adapters.his_rx_fake import FakeHisRx
from clinical_core.domain.access import Principal
from clinical_core.domain.errors import (
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
    RuleViolation,
    ServiceUnavailable,
)
from clinical_core.domain.time import FixedClock
from clinical_core.persistence.his_rx import DrugSyncRunRow, HisRxOperationRow
from clinical_core.persistence.models import AuditRow, DrugRow
from clinical_core.persistence.prescription import RxPaymentRow, RxRefundRow
from clinical_core.ports.his import HisDrug, HisRefused
from clinical_core.services import (
    accounts,
    drug_catalogue,
    prescriptions,
    rx_circulation,
    rx_his,
)
from jobs.registry import REGISTRY
from opsctl.http.app import create_app
from opsctl.wiring import Container
from tests.integration.test_prescriptions import CATALOGUE, pharmacist, rx, setup  # noqa: F401  (fixture)
from tests.support.clinic import ADMIN, Clinic

Setup = tuple[Clinic, str, FakeHis]

AMLO = HisDrug("XY001", "苯磺酸氨氯地平片", None, "5mg*28片", "片剂", "盒", 2750, "western", "none", True, True)
VALS = HisDrug("XY003", "缬沙坦胶囊", None, "80mg*28粒", "胶囊剂", "盒", 2100, "western", "none", True, True)  # price up
ATOR = HisDrug("XY004", "阿托伐他汀钙片", "立普妥", "20mg*7片", "片剂", "盒", 6120, "western", "none", True, True)
# XY002 (唑吡坦片, imported from Excel) is not in the HIS's dictionary: withdrawn on sync.


@pytest.fixture
def his(container: Container) -> FakeHisRx:
    h = container.his_rx
    for drug in (AMLO, VALS, ATOR):
        h.put_drug(drug)
    h.put_diagnosis("I10", "原发性高血压")
    h.put_diagnosis("E11.9", "2型糖尿病")
    return h


@pytest.fixture
def world(container: Container, setup: Setup, his: FakeHisRx) -> tuple[Clinic, str, FakeHis]:  # noqa: F811
    rx_his.sync_catalogue(container.uow(), ADMIN, his)
    rx_circulation.add_store(container.uow(), ADMIN, "YJ-01", "院内门诊药房", "深圳市福田区某路 1 号")
    return setup


@pytest.fixture
def reviewer(container: Container, world: Setup) -> Principal:
    return pharmacist(container, "ph.his", "主管药师", date(2015, 1, 1))


def _approved(c: Container, reviewer: Principal, clinic: Clinic, oid: str, his: FakeHisRx, *,
              store: bool = True) -> str:
    issued = prescriptions.issue_prescription(c.uow(), clinic.doctor_a, FakeHis(c.engine), c.signer, rx(
        oid, prescriptions.NewItem("XY001", 2, 7, "每日一次，每次 1 片")), his_rx=his)
    prescriptions.review_prescription(c.uow(), reviewer, c.signer, issued.public_id, approve=True)
    if store:
        rx_circulation.choose_store(c.uow(), clinic.patient, issued.public_id, "YJ-01")
    return issued.public_id


def _ops(c: Container, rx_id: str) -> list[tuple[str, str]]:
    with c.uow() as uow:
        from clinical_core.persistence.prescription import PrescriptionRow
        pk = uow.session.scalar(select(PrescriptionRow.id).where(PrescriptionRow.public_id == rx_id))
        return [(o.kind, o.status) for o in uow.session.scalars(select(HisRxOperationRow).where(
            HisRxOperationRow.prescription_id == pk).order_by(HisRxOperationRow.id))]


def _count(c: Container, model: type, **where: object) -> int:
    with c.uow() as uow:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return int(uow.session.scalar(query) or 0)


# --- catalogue ----------------------------------------------------------------------------------------


def test_sync_reports_the_difference_dry_run_writes_nothing_and_a_rerun_is_empty(
        container: Container, setup: Setup, his: FakeHisRx) -> None:  # noqa: F811
    c = container
    dry = rx_his.sync_catalogue(c.uow(), ADMIN, his, dry_run=True)
    assert (dry.added, dry.withdrawn, dry.run_id) == (("XY004",), ("XY002",), None)
    assert [(ch.code, ch.fields) for ch in dry.changed] == [("XY003", ("price_fen",))]
    assert _count(c, DrugSyncRunRow) == 0 and _count(c, DrugRow, code="XY004") == 0
    done = rx_his.sync_catalogue(c.uow(), ADMIN, his)
    assert (done.added, done.withdrawn, done.unchanged, done.his_total) == (("XY004",), ("XY002",), 1, 3)
    with c.uow() as uow:
        drugs = {d.code: d for d in uow.session.scalars(select(DrugRow))}
        assert drugs["XY003"].price_fen == 2100 and drugs["XY004"].trade_name == "立普妥"
        assert not drugs["XY002"].active and drugs["XY001"].active
        run = uow.session.scalar(select(DrugSyncRunRow))
        assert run is not None and run.status == "succeeded" and run.diff["withdrawn"] == ["XY002"]
    again = rx_his.sync_catalogue(c.uow(), ADMIN, his)
    assert not (again.added or again.changed or again.withdrawn)
    status = rx_his.status(c.uow(), ADMIN, mode="integrated")
    assert (status.mode, status.last_sync_status, status.drugs_active, status.pending) == (
        "integrated", "succeeded", 3, 0)


def test_a_bad_his_dictionary_or_an_unreachable_his_changes_nothing(
        container: Container, setup: Setup, his: FakeHisRx) -> None:  # noqa: F811
    c = container
    his.put_drug(replace(ATOR, code="XY005", control_class="opioid"))
    from clinical_core.domain.drug_catalogue import CatalogueRejected
    with pytest.raises(CatalogueRejected):
        rx_his.sync_catalogue(c.uow(), ADMIN, his)
    his.put_drug(replace(ATOR, code="XY005"))
    his.inject("catalogue", "down")
    with pytest.raises(ServiceUnavailable):
        rx_his.sync_catalogue(c.uow(), ADMIN, his)
    # all or nothing: the good entries were not applied either; both failed runs are on record
    assert _count(c, DrugRow, code="XY004") == 0 and _count(c, DrugRow, active=True) == 3
    assert _count(c, DrugSyncRunRow, status="failed") == 2
    assert rx_his.sync_catalogue(c.uow(), ADMIN, his).added == ("XY004", "XY005")


def test_excel_import_is_refused_sync_needs_integrated_mode_and_jobs_wait(container: Container,
                                                                          his: FakeHisRx) -> None:
    with pytest.raises(Conflict, match="集成模式"):
        drug_catalogue.import_catalogue(container.uow(), ADMIN, CATALOGUE, source="t.xlsx", integrated=True)
    assert _count(container, DrugRow) == 0
    with pytest.raises(Conflict, match="单机模式"):
        rx_his.sync_catalogue(container.uow(), ADMIN, None)
    now = container.clock.now()  # the container is in standalone mode: the registered jobs do nothing
    assert REGISTRY["rx.his_reconcile"].run(container, now, {}).skipped == 1
    assert REGISTRY["rx.his_sync_catalogue"].run(container, now, {}).skipped == 1
    assert _count(container, DrugRow) == 0


def test_a_drug_withdrawn_by_the_his_cannot_be_prescribed(container: Container, world: Setup,
                                                          his: FakeHisRx, reviewer: Principal) -> None:
    c, (clinic, oid, visits) = container, world
    approved = _approved(c, reviewer, clinic, oid, his)  # prescribed while XY001 was in use
    his.withdraw_drug("XY001")
    # Before the next sync the HIS itself refuses to register it: nothing is charged, nothing moves.
    with pytest.raises(HisRefused, match="停用"):
        rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, approved, his=his)
    assert rx_circulation.track(c.uow(), clinic.patient, approved).status == "approved"
    assert _ops(c, approved) == [("register", "failed")] and his.carried_out("charge") == 0
    # After the sync it is withdrawn locally and no new prescription can name it.
    assert rx_his.sync_catalogue(c.uow(), ADMIN, his).withdrawn == ("XY001",)
    with pytest.raises(NotFound, match="XY001"):
        prescriptions.issue_prescription(c.uow(), clinic.doctor_a, visits, c.signer, rx(oid), his_rx=his)


def test_diagnoses_must_be_in_the_his_library(container: Container, world: Setup, his: FakeHisRx) -> None:
    c, (clinic, oid, visits) = container, world
    his.put_diagnosis("I10", "原发性高血压", active=False)
    with pytest.raises(InvalidInput, match="HIS 诊断库"):
        prescriptions.issue_prescription(c.uow(), clinic.doctor_a, visits, c.signer, rx(oid), his_rx=his)
    # standalone mode does not ask the HIS library (the offline visit's diagnosis is enough, R02)
    assert prescriptions.issue_prescription(c.uow(), clinic.doctor_a, visits, c.signer, rx(oid)).diagnoses == ("I10",)
    his.put_diagnosis("I10", "高血压病")
    issued = prescriptions.issue_prescription(c.uow(), clinic.doctor_a, visits, c.signer, rx(oid), his_rx=his)
    with c.uow() as uow:
        from clinical_core.persistence.prescription import PrescriptionRow
        row = uow.session.scalar(select(PrescriptionRow).where(PrescriptionRow.public_id == issued.public_id))
        assert row is not None and row.diagnoses == [{"icd10": "I10", "name": "高血压病"}]  # the library's name


# --- the whole flow -----------------------------------------------------------------------------------


def test_full_flow_review_charge_dispense_refund_void_through_the_his(
        container: Container, world: Setup, his: FakeHisRx, reviewer: Principal) -> None:
    c, (clinic, oid, visits) = container, world
    # the review is never skipped: nothing reaches the HIS before a pharmacist approved
    pending = prescriptions.issue_prescription(c.uow(), clinic.doctor_a, visits, c.signer, rx(oid), his_rx=his)
    with pytest.raises(RuleViolation) as caught:
        rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, pending.public_id, his=his)
    assert caught.value.rule == "R20" and his.carried_out("register") == 0

    first = _approved(c, reviewer, clinic, oid, his)
    order = rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, first, his=his)
    assert order.out_trade_no.startswith("SF") and order.client_params == {}
    assert (order.circulation.status, order.circulation.paid_fen) == ("paid", 5500)
    assert c.payments.trade_state(order.out_trade_no) is None  # the payment sandbox was not involved
    pharm = pharmacist(c, "ph.store", "主管药师", date(2012, 1, 1))
    dispensed = rx_circulation.dispense(c.uow(), pharm, c.signer, first, his=his)
    assert dispensed.status == "dispensed" and dispensed.dispensed_at is not None
    with pytest.raises(RuleViolation) as caught:  # R54, as in standalone mode
        rx_circulation.dispense(c.uow(), pharm, c.signer, first, his=his)
    assert caught.value.rule == "R54"
    rx_circulation.ship(c.uow(), pharm, first, "顺丰速运", "SF1234567890")
    assert rx_circulation.confirm_delivery(c.uow(), clinic.patient, first).status == "delivered"
    assert [s for _, _, s in his.prescription_state(first)] == ["dispensed"]

    second = _approved(c, reviewer, clinic, oid, his)
    rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, second, his=his)
    refunded = rx_circulation.refund_drugs(c.uow(), clinic.patient, c.payments, second, "改为线下取药", his=his)
    assert (refunded.status, refunded.paid_fen, refunded.refunded_fen) == ("refunded", 5500, 5500)
    assert [s for _, _, s in his.prescription_state(second)] == ["refunded"]
    assert rx_circulation.settle_refunds(c.uow(), c.payments) == (0, 0)  # nothing for the payment provider

    third = _approved(c, reviewer, clinic, oid, his, store=False)
    assert rx_his.reconcile(c.uow(), c.clock.now(), his=his).registered == 1  # the job registers approved ones
    voided = prescriptions.void_prescription(c.uow(), clinic.doctor_a, third, "患者改用其他药物", his_rx=his)
    assert voided.status == "voided" and [s for _, _, s in his.prescription_state(third)] == ["voided"]
    local = prescriptions.void_prescription(c.uow(), clinic.doctor_a, pending.public_id, "重复开具", his_rx=his)
    assert local.status == "voided" and his.prescription_state(pending.public_id) == []  # never registered

    assert his.carried_out("register") == 3 and his.carried_out("charge") == 2
    assert (his.carried_out("dispense"), his.carried_out("refund"), his.carried_out("void")) == (1, 1, 1)
    assert _ops(c, first) == [("register", "succeeded"), ("charge", "succeeded"), ("dispense", "succeeded")]
    with c.uow() as uow:
        actions = list(uow.session.scalars(select(AuditRow.action).where(AuditRow.entity_id == second)
                                           .order_by(AuditRow.id)))
    assert [a for a in actions if a.startswith(("his_rx.", "prescription.pay", "prescription.refund"))] == [
        "his_rx.register.succeeded", "prescription.pay", "his_rx.charge.succeeded", "prescription.refund",
        "his_rx.refund.succeeded"]


# --- failures: idempotent retries and reconciliation --------------------------------------------------


def test_a_charge_that_timed_out_is_never_made_twice_when_retried(container: Container, world: Setup,
                                                                 his: FakeHisRx, reviewer: Principal) -> None:
    c, (clinic, oid, _) = container, world
    rx_id = _approved(c, reviewer, clinic, oid, his)
    his.inject("charge", "timeout")  # the HIS charges, but the answer is lost
    with pytest.raises(ServiceUnavailable, match="待核对"):
        rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, rx_id, his=his)
    assert rx_circulation.track(c.uow(), clinic.patient, rx_id).status == "approved"  # no half state
    assert _ops(c, rx_id) == [("register", "succeeded"), ("charge", "pending")] and his.carried_out("charge") == 1
    # another HIS step of this prescription waits for the unknown one
    with pytest.raises(Conflict, match="核对"):
        prescriptions.void_prescription(c.uow(), clinic.doctor_a, rx_id, "患者取消", his_rx=his)
    paid = rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, rx_id, his=his)  # the patient retries
    assert (paid.circulation.status, paid.circulation.paid_fen) == ("paid", 5500)
    assert his.carried_out("charge") == 1 and _count(c, RxPaymentRow) == 1
    assert _ops(c, rx_id)[-1] == ("charge", "succeeded")
    with pytest.raises(IllegalTransition):  # and paying a paid prescription again is refused locally
        rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, rx_id, his=his)


def test_reconciliation_settles_unknown_outcomes(container: Container, world: Setup, his: FakeHisRx, reviewer: Principal,
                                                 clock: FixedClock) -> None:
    c, (clinic, oid, _) = container, world
    charged, lost, refund_down = (_approved(c, reviewer, clinic, oid, his) for _ in range(3))
    his.inject("charge", "timeout")  # carried out, answer lost → the job finds it at the HIS
    with pytest.raises(ServiceUnavailable):
        rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, charged, his=his)
    rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, lost, his=his)  # registered only
    his.inject("charge", "down")  # never reached the HIS → not re-sent: the patient pays again
    with pytest.raises(ServiceUnavailable):
        rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, refund_down, his=his)
    his.inject("refund", "down")
    with pytest.raises(ServiceUnavailable):
        rx_circulation.refund_drugs(c.uow(), clinic.patient, c.payments, lost, "不需要了", his=his)
    assert rx_his.status(c.uow(), ADMIN, mode="integrated").pending == 3

    early = rx_his.reconcile(c.uow(), clock.now(), his=his)  # within the grace period: nothing touched
    assert (early.settled, early.resent, early.failed) == (0, 0, 0)
    clock.advance(timedelta(minutes=2))
    his.inject("lookup", "down")  # the HIS is still unreachable for the first question: stays unknown
    result = rx_his.reconcile(c.uow(), clock.now(), his=his)
    # the first operation stays unknown; the never-sent charge fails; the never-sent refund is re-sent
    assert (result.unknown, result.settled, result.resent, result.failed) == (1, 0, 1, 1)
    clock.advance(timedelta(minutes=2))
    result = rx_his.reconcile(c.uow(), clock.now(), his=his)
    assert (result.unknown, result.settled, result.resent, result.failed) == (0, 1, 0, 0)  # found at the HIS

    view = {rx_id: rx_circulation.track(c.uow(), clinic.patient, rx_id) for rx_id in (charged, lost, refund_down)}
    assert (view[charged].status, view[charged].paid_fen) == ("paid", 5500)  # found at the HIS
    assert (view[lost].status, view[lost].refunded_fen) == ("refunded", 5500)  # refund re-sent, same key
    assert view[refund_down].status == "approved"  # the charge never happened: failed, not re-sent
    assert _ops(c, refund_down)[-1] == ("charge", "failed")
    assert his.carried_out("charge") == 2 and his.carried_out("refund") == 1
    assert rx_his.status(c.uow(), ADMIN, mode="integrated").pending == 0
    again = rx_circulation.pay_for_drugs(c.uow(), clinic.patient, c.payments, refund_down, his=his)
    assert again.circulation.status == "paid" and his.carried_out("charge") == 3
    assert _count(c, RxRefundRow, status="succeeded") == 1


def test_the_sync_job_and_the_http_api_in_integrated_mode(container: Container, world: Setup,
                                                          his: FakeHisRx, reviewer: Principal) -> None:
    c, (clinic, oid, _) = container, world
    c.settings = c.settings.model_copy(update={"prescription_mode": "integrated"})
    his.put_drug(replace(ATOR, price_fen=5990))
    counts = REGISTRY["rx.his_sync_catalogue"].run(c, c.clock.now(), {})
    assert (counts.skipped, counts.changed) == (0, 1)
    rx_id = _approved(c, reviewer, clinic, oid, his)
    token = accounts.issue_token(c.uow(), ADMIN, clinic.patient.username, ttl=timedelta(days=1)).token
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(c.settings, c)) as client:
        his.inject("register", "down")
        response = client.post(f"/api/v1/prescriptions/{rx_id}/payment", headers=auth)
        assert response.status_code == 503 and response.headers["content-type"] == "application/problem+json"
        assert "HIS 暂不可用" in response.json()["detail"] and response.json()["code"] == "ServiceUnavailable"
        response = client.post(f"/api/v1/prescriptions/{rx_id}/payment", headers=auth)  # retried: same endpoint
        assert response.status_code == 200 and response.json()["circulation"]["status"] == "paid"
        assert his.carried_out("charge") == 1
