"""集成模式 (RX-5): prescriptions through the HIS.

``prescription_mode = "integrated"`` (configuration) hands the services a
``HisRxPort``; ``None`` is standalone mode. The rules, the signatures and the
pharmacist's review are the same in both modes and run locally; only the
outside world differs:

- the drug catalogue is synced from the HIS (``sync_catalogue``: a per-run
  difference, all or nothing) instead of imported from Excel;
- the diagnoses on a prescription must be in the HIS's diagnosis library;
- an approved prescription is registered with the HIS; void, charge (instead
  of the payment sandbox), refund and dispensing (the hospital pharmacy) go
  through the HIS.

Call-then-record, never a half state. Each HIS operation is first written as
a *pending* row of ``his_rx_operations`` under an idempotency key (one per
prescription version and operation) and committed; then the HIS is called
with that key; then, in one transaction, the HIS's receipt is recorded and the
prescription moves (its named, guarded transition, payment/refund records,
audit). If the HIS refuses, the operation is marked failed and nothing moves.
If the call times out, the operation stays pending and the prescription
unchanged: a retry by the user sends the same key (the HIS answers the first
result, so nothing is registered or charged twice), and ``reconcile`` (a
scheduled job) asks the HIS what it did under the key and settles it. While an
operation of a prescription is pending, no other HIS operation of it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from clinical_core.domain.access import Principal, ensure_role
from clinical_core.domain.drug_catalogue import CatalogueRejected
from clinical_core.domain.errors import (
    Conflict,
    DomainError,
    ExternalServiceError,
    IllegalTransition,
    ServiceUnavailable,
)
from clinical_core.domain.his_sync import (
    CatalogueDiff,
    Change,
    DrugEntry,
    HisOp,
    check_his_catalogue,
    diff_catalogue,
    idempotency_key,
)
from clinical_core.domain.ids import new_public_id
from clinical_core.domain.prescription import RxAction, RxStatus, rx_transition
from clinical_core.domain.staff import Role
from clinical_core.persistence.his_rx import DrugSyncRunRow, HisRxOperationRow
from clinical_core.persistence.models import DrugRow, PatientRow, StaffRow
from clinical_core.persistence.prescription import (
    PrescriptionItemRow,
    PrescriptionRow,
    RxPaymentRow,
    RxRefundRow,
)
from clinical_core.persistence.uow import UnitOfWork
from clinical_core.ports.his import (
    HisReceipt,
    HisRefused,
    HisRxLine,
    HisRxOrder,
    HisRxPort,
)
from clinical_core.services import audit

SYNC_JOB_ACTOR = "job:rx.his_sync_catalogue"
RECONCILE_ACTOR = "job:rx.his_reconcile"
HIS_ACTOR = "his:receipt"


# --- the drug catalogue -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncReport:
    dry_run: bool
    run_id: str | None  # the recorded run (None for a dry run)
    added: tuple[str, ...]
    changed: tuple[Change, ...]
    withdrawn: tuple[str, ...]
    unchanged: int
    his_total: int  # entries in the HIS's dictionary


def sync_catalogue(uow: UnitOfWork, principal: Principal, his: HisRxPort | None, *,
                   dry_run: bool = False) -> SyncReport:
    """药品目录同步 from the HIS (administrators and pharmacists): all or nothing; ``dry_run`` only reports."""
    ensure_role(principal, {Role.ADMIN, Role.PHARMACIST})
    return _sync(uow, _integrated(his), principal.actor, dry_run)


@dataclass(frozen=True, slots=True)
class SyncCounts:
    skipped: int  # 1 in standalone mode: nothing to sync
    added: int
    changed: int
    withdrawn: int


def sync_catalogue_job(uow: UnitOfWork, now: datetime, *, his: HisRxPort | None) -> SyncCounts:
    """The scheduled sync (e.g. nightly). Standalone mode: nothing to do."""
    del now
    if his is None:
        return SyncCounts(1, 0, 0, 0)
    report = _sync(uow, his, SYNC_JOB_ACTOR, False)
    return SyncCounts(0, len(report.added), len(report.changed), len(report.withdrawn))


def _integrated(his: HisRxPort | None) -> HisRxPort:
    if his is None:
        raise Conflict("当前为单机模式，药品目录从 Excel 导入；集成模式才从 HIS 同步",
                       hint="在配置中设置 prescription_mode = \"integrated\"")
    return his


def _entry(d: Any) -> DrugEntry:
    return DrugEntry(d.code, d.generic_name, d.trade_name, d.specification, d.dosage_form, d.unit, d.price_fen,
                     d.category, d.control_class, d.prescription_only, d.active)


def _sync(uow: UnitOfWork, his: HisRxPort, actor: str, dry_run: bool) -> SyncReport:
    started = uow.clock.now()
    try:
        theirs = [_entry(d) for d in his.drug_catalogue()]
        check_his_catalogue(theirs)
    except (ExternalServiceError, CatalogueRejected) as exc:
        if not dry_run:
            _record_failed_run(uow, actor, started, exc)
        raise
    with uow:
        rows = {d.code: d for d in uow.session.scalars(select(DrugRow).order_by(DrugRow.code).with_for_update())}
        diff = diff_catalogue([_entry(r) for r in rows.values()], theirs)
        run_id = None
        if not dry_run:
            by_code = {e.code: e for e in theirs}
            for code in diff.added:
                row = DrugRow(public_id=new_public_id("drg"), code=code)
                _copy(row, by_code[code])
                uow.session.add(row)
            for change in diff.changed:
                _copy(rows[change.code], by_code[change.code])
            for code in diff.withdrawn:
                rows[code].active = False
            run = DrugSyncRunRow(public_id=new_public_id("dsy"), actor=actor, status="succeeded",
                                 added=len(diff.added), changed=len(diff.changed), withdrawn=len(diff.withdrawn),
                                 unchanged=diff.unchanged, diff=_diff_json(diff), started_at=started,
                                 finished_at=uow.clock.now())
            uow.session.add(run)
            try:
                uow.session.flush()
            except IntegrityError:  # another sync added the same drug meanwhile
                raise Conflict("另一次药品目录同步正在进行，请稍后重试") from None
            audit.record(uow, actor, "drug_catalogue.his_sync", "drug_catalogue", "*", run=run.public_id,
                         added=len(diff.added), changed=len(diff.changed), withdrawn=len(diff.withdrawn))
            run_id = run.public_id
            uow.commit()
    return SyncReport(dry_run, run_id, diff.added, diff.changed, diff.withdrawn, diff.unchanged, len(theirs))


def _copy(row: DrugRow, e: DrugEntry) -> None:
    row.generic_name, row.trade_name, row.specification = e.generic_name, e.trade_name, e.specification
    row.dosage_form, row.unit, row.price_fen = e.dosage_form, e.unit, e.price_fen
    row.category, row.control_class, row.prescription_only = e.category, e.control_class, e.prescription_only
    row.active = True


def _diff_json(diff: CatalogueDiff) -> dict[str, Any]:
    return {"added": list(diff.added), "changed": [{"code": c.code, "fields": list(c.fields)} for c in diff.changed],
            "withdrawn": list(diff.withdrawn)}


def _record_failed_run(uow: UnitOfWork, actor: str, started: datetime, exc: DomainError) -> None:
    with uow:
        errors = getattr(exc, "row_errors", None)
        run = DrugSyncRunRow(public_id=new_public_id("dsy"), actor=actor, status="failed", diff={"errors": errors or []},
                             error=str(exc)[:200], started_at=started, finished_at=uow.clock.now(),
                             added=0, changed=0, withdrawn=0, unchanged=0)
        uow.session.add(run)
        uow.session.flush()
        audit.record(uow, actor, "drug_catalogue.his_sync_failed", "drug_catalogue", "*", run=run.public_id)
        uow.commit()


def check_diagnoses(his: HisRxPort, codes: tuple[str, ...]) -> dict[str, str]:
    """诊断库 (integrated mode): every diagnosis of a prescription must be in the HIS's library; returns the
    library's standard names."""
    from clinical_core.domain.errors import InvalidInput

    library = his.diagnoses(tuple(codes))
    unknown = [c for c in codes if c not in library]
    if unknown:
        raise InvalidInput(f"诊断 {'、'.join(unknown)} 不在 HIS 诊断库中或已停用", field="diagnosis_codes")
    return library


# --- operations through the HIS ---------------------------------------------------------------------


def _load(uow: UnitOfWork, rx_id: str) -> PrescriptionRow:
    from clinical_core.domain.errors import NotFound

    row = uow.session.scalar(select(PrescriptionRow).where(PrescriptionRow.public_id == rx_id).with_for_update())
    if row is None:
        raise NotFound(f"未找到处方 {rx_id}")
    return row


def operation(uow: UnitOfWork, row: PrescriptionRow, op: HisOp) -> HisRxOperationRow | None:
    """The operation ``op`` of the prescription's current version, if any was started."""
    return uow.session.scalar(select(HisRxOperationRow).where(
        HisRxOperationRow.idempotency_key == idempotency_key(row.public_id, row.version, op)))


def _start(uow: UnitOfWork, row: PrescriptionRow, op: HisOp, request: dict[str, Any], actor: str) -> HisRxOperationRow:
    """Record the operation as pending before it is sent (inside the caller's transaction, row locked)."""
    key = idempotency_key(row.public_id, row.version, op)
    existing = uow.session.scalar(select(HisRxOperationRow).where(HisRxOperationRow.idempotency_key == key))
    if existing is not None and existing.status == "succeeded":
        return existing
    busy = uow.session.scalar(select(HisRxOperationRow.kind).where(
        HisRxOperationRow.prescription_id == row.id, HisRxOperationRow.status == "pending",
        HisRxOperationRow.idempotency_key != key))
    if busy is not None:
        raise Conflict(f"处方 {row.public_id} 的「{HisOp(busy).label}」正在与 HIS 核对，请稍后再试")
    now = uow.clock.now()
    if existing is None:
        existing = HisRxOperationRow(public_id=new_public_id("hop"), prescription_id=row.id, kind=op.value,
                                     idempotency_key=key, status="pending", request=request, attempts=0,
                                     requested_by=actor[:80], created_at=now, updated_at=now)
        uow.session.add(existing)
    elif existing.status == "failed":  # refused or never carried out: may be asked again, same key
        existing.status, existing.request, existing.requested_by = "pending", request, actor[:80]
    if existing.status == "pending":
        existing.attempts += 1
        existing.updated_at = now
    uow.session.flush()
    return existing


def _send(his: HisRxPort, op: HisOp, key: str, r: dict[str, Any]) -> HisReceipt:
    if op is HisOp.REGISTER:
        order = HisRxOrder(r["prescription_id"], r["version"], r["patient_id"], r["doctor_id"],
                           tuple(r["diagnoses"]), tuple(HisRxLine(c, q, p) for c, q, p in r["lines"]))
        return his.register(key, order)
    if op is HisOp.VOID:
        return his.void(key, r["rx_no"], r["reason"])
    if op is HisOp.CHARGE:
        return his.charge(key, r["rx_no"], r["amount_fen"])
    if op is HisOp.REFUND:
        return his.refund(key, r["charge_no"], r["amount_fen"], r["reason"])
    return his.dispense(key, r["rx_no"], r["store_code"])


def _call(uow: UnitOfWork, his: HisRxPort, rx_id: str, op: HisOp, actor: str,
          prepare: Callable[[UnitOfWork, PrescriptionRow], dict[str, Any]]) -> str:
    """Guard and record (``prepare`` raises when the step is not allowed), call the HIS, apply its receipt.
    Returns the HIS's number for what it did."""
    with uow:
        row = _load(uow, rx_id)
        request = prepare(uow, row)
        op_row = _start(uow, row, op, request, actor)
        if op_row.status == "succeeded":
            return str(op_row.his_number)
        key, request = op_row.idempotency_key, dict(op_row.request)
        uow.commit()
    try:
        receipt = _send(his, op, key, request)
    except HisRefused as exc:
        _mark(uow, key, "failed", str(exc))
        raise
    except ServiceUnavailable as exc:
        _mark(uow, key, "pending", str(exc))
        raise ServiceUnavailable(f"HIS 暂不可用，{op.label}结果待核对，处方状态未改变",
                                 hint="系统会自动与 HIS 核对；也可稍后重试，不会重复办理") from None
    return _settle(uow, key, receipt)


def _mark(uow: UnitOfWork, key: str, status: str, error: str) -> None:
    with uow:
        op_row = uow.session.scalar(select(HisRxOperationRow).where(
            HisRxOperationRow.idempotency_key == key).with_for_update())
        if op_row is None or op_row.status == "succeeded":
            return
        op_row.status, op_row.last_error, op_row.updated_at = status, error[:200], uow.clock.now()
        if status == "failed":
            rx = uow.session.get(PrescriptionRow, op_row.prescription_id)
            audit.record(uow, op_row.requested_by, f"his_rx.{op_row.kind}.failed", "prescription",
                         rx.public_id if rx else "?", operation=op_row.public_id, error=error[:200])
        uow.commit()


def _settle(uow: UnitOfWork, key: str, receipt: HisReceipt) -> str:
    """Record the HIS's receipt and apply it to the prescription, in one transaction, once."""
    with uow:
        op_row = uow.session.scalar(select(HisRxOperationRow).where(
            HisRxOperationRow.idempotency_key == key).with_for_update())
        assert op_row is not None
        if op_row.status == "succeeded":  # settled meanwhile (a retry, or the reconciliation job)
            return str(op_row.his_number)
        rx = uow.session.scalar(select(PrescriptionRow).where(
            PrescriptionRow.id == op_row.prescription_id).with_for_update())
        assert rx is not None
        now = uow.clock.now()
        op_row.status, op_row.his_number, op_row.amount_fen = "succeeded", receipt.number, receipt.amount_fen
        op_row.settled_at, op_row.updated_at, op_row.last_error = now, now, None
        try:
            _APPLY[HisOp(op_row.kind)](uow, rx, op_row, receipt)
        except IllegalTransition as exc:  # the prescription moved on locally: a human must look
            op_row.last_error = f"本地状态已变化，需人工核对：{exc}"[:200]
            audit.record(uow, HIS_ACTOR, "his_rx.mismatch", "prescription", rx.public_id,
                         operation=op_row.public_id, kind=op_row.kind)
        audit.record(uow, op_row.requested_by, f"his_rx.{op_row.kind}.succeeded", "prescription", rx.public_id,
                     operation=op_row.public_id, his_number=receipt.number, attempts=op_row.attempts)
        uow.session.flush()
        uow.commit()
    return receipt.number


def _move(uow: UnitOfWork, row: PrescriptionRow, action: RxAction, actor: str, **details: object) -> None:
    before = RxStatus(row.status)
    row.status = rx_transition(row.public_id, before, action).value
    audit.record(uow, actor, f"prescription.{action.value}", "prescription", row.public_id,
                 **{"from": before.value, "to": row.status, "version": row.version}, **details)


def _apply_register(uow: UnitOfWork, rx: PrescriptionRow, op_row: HisRxOperationRow, receipt: HisReceipt) -> None:
    del uow, rx, op_row, receipt  # the HIS's 处方号 is kept on the operation


def _apply_void(uow: UnitOfWork, rx: PrescriptionRow, op_row: HisRxOperationRow, receipt: HisReceipt) -> None:
    _move(uow, rx, RxAction.VOID, op_row.requested_by, his_number=receipt.number)
    rx.voided_at, rx.void_reason = uow.clock.now(), op_row.request["reason"]


def _apply_charge(uow: UnitOfWork, rx: PrescriptionRow, op_row: HisRxOperationRow, receipt: HisReceipt) -> None:
    paid_at = receipt.at or uow.clock.now()
    payment = RxPaymentRow(public_id=new_public_id("rpy"), prescription_id=rx.id, out_trade_no=receipt.number[:32],
                           amount_fen=receipt.amount_fen, status="succeeded", transaction_id=receipt.number,
                           created_at=uow.clock.now(), paid_at=paid_at)
    uow.session.add(payment)
    uow.session.flush()
    audit.record(uow, op_row.requested_by, "rx_payment.succeeded", "prescription", rx.public_id,
                 payment=payment.public_id, amount_fen=payment.amount_fen, channel="his")
    _move(uow, rx, RxAction.PAY, op_row.requested_by, channel="his")
    rx.paid_at = paid_at


def _apply_refund(uow: UnitOfWork, rx: PrescriptionRow, op_row: HisRxOperationRow, receipt: HisReceipt) -> None:
    payment = uow.session.scalar(select(RxPaymentRow).where(
        RxPaymentRow.prescription_id == rx.id, RxPaymentRow.status == "succeeded",
        RxPaymentRow.out_trade_no == op_row.request["charge_no"]))
    assert payment is not None
    now = uow.clock.now()
    uow.session.add(RxRefundRow(public_id=new_public_id("rrf"), prescription_id=rx.id, payment_id=payment.id,
                                out_refund_no=receipt.number[:32], amount_fen=receipt.amount_fen,
                                reason=str(op_row.request["reason"])[:40], status="succeeded",
                                refund_id=receipt.number, attempts=op_row.attempts,
                                requested_by=op_row.requested_by, created_at=op_row.created_at, settled_at=now))
    _move(uow, rx, RxAction.REFUND, op_row.requested_by, reason=op_row.request["reason"], channel="his")
    rx.refunded_at = now


def _apply_dispense(uow: UnitOfWork, rx: PrescriptionRow, op_row: HisRxOperationRow, receipt: HisReceipt) -> None:
    _move(uow, rx, RxAction.DISPENSE, op_row.requested_by, store=op_row.request["store_code"],
          his_number=receipt.number)
    rx.dispensed_at, rx.dispensed_by_id = receipt.at or uow.clock.now(), op_row.request.get("staff_pk")


_APPLY: dict[HisOp, Callable[[UnitOfWork, PrescriptionRow, HisRxOperationRow, HisReceipt], None]] = {
    HisOp.REGISTER: _apply_register, HisOp.VOID: _apply_void, HisOp.CHARGE: _apply_charge,
    HisOp.REFUND: _apply_refund, HisOp.DISPENSE: _apply_dispense,
}


# --- the steps the circulation and prescription services delegate to in integrated mode ---------------


def _order_request(uow: UnitOfWork, row: PrescriptionRow) -> dict[str, Any]:
    patient = uow.session.get(PatientRow, row.patient_id)
    doctor = uow.session.get(StaffRow, row.doctor_id)
    assert patient is not None and doctor is not None
    lines = uow.session.execute(select(DrugRow.code, PrescriptionItemRow.quantity, PrescriptionItemRow.price_fen)
                                .join(DrugRow, DrugRow.id == PrescriptionItemRow.drug_id)
                                .where(PrescriptionItemRow.prescription_id == row.id)
                                .order_by(PrescriptionItemRow.id))
    return {"prescription_id": row.public_id, "version": row.version, "patient_id": patient.public_id,
            "doctor_id": doctor.public_id, "diagnoses": [d["icd10"] for d in row.diagnoses],
            "lines": [[code, qty, price] for code, qty, price in lines]}


def register(uow: UnitOfWork, his: HisRxPort, rx_id: str, actor: str) -> str:
    """处方登记 of an approved prescription (idempotent): the HIS's 处方号."""

    def prepare(uow: UnitOfWork, row: PrescriptionRow) -> dict[str, Any]:
        if RxStatus(row.status) is not RxStatus.APPROVED:
            done = operation(uow, row, HisOp.REGISTER)
            if done is None or done.status != "succeeded":
                raise Conflict(f"处方 {row.public_id} 尚未审核通过，不能登记到 HIS")
        return _order_request(uow, row)

    return _call(uow, his, rx_id, HisOp.REGISTER, actor, prepare)


def _registered_no(uow: UnitOfWork, row: PrescriptionRow) -> str:
    done = operation(uow, row, HisOp.REGISTER)
    if done is None or done.status != "succeeded" or done.his_number is None:
        raise Conflict(f"处方 {row.public_id} 尚未在 HIS 登记")
    return done.his_number


def charge(uow: UnitOfWork, his: HisRxPort, rx_id: str, actor: str,
           guard: Callable[[UnitOfWork, PrescriptionRow], int]) -> None:
    """收费 through the HIS's billing; ``guard`` runs the circulation's rules and returns the amount."""
    register(uow, his, rx_id, actor)

    def prepare(uow: UnitOfWork, row: PrescriptionRow) -> dict[str, Any]:
        amount = guard(uow, row)
        return {"rx_no": _registered_no(uow, row), "amount_fen": amount}

    _call(uow, his, rx_id, HisOp.CHARGE, actor, prepare)


def refund(uow: UnitOfWork, his: HisRxPort, rx_id: str, actor: str, reason: str,
           guard: Callable[[UnitOfWork, PrescriptionRow], None]) -> None:
    """退费 through the HIS (after charging, before dispensing)."""

    def prepare(uow: UnitOfWork, row: PrescriptionRow) -> dict[str, Any]:
        guard(uow, row)
        payment = uow.session.scalar(select(RxPaymentRow).where(
            RxPaymentRow.prescription_id == row.id, RxPaymentRow.status == "succeeded"))
        assert payment is not None  # paid is only reached by a succeeded charge
        return {"charge_no": payment.out_trade_no, "amount_fen": payment.amount_fen, "reason": reason}

    _call(uow, his, rx_id, HisOp.REFUND, actor, prepare)


def dispense(uow: UnitOfWork, his: HisRxPort, rx_id: str, actor: str,
             guard: Callable[[UnitOfWork, PrescriptionRow], tuple[str, int | None]]) -> None:
    """院内药房发药 through the HIS; ``guard`` runs R54 and R41 and returns (store code, staff pk)."""

    def prepare(uow: UnitOfWork, row: PrescriptionRow) -> dict[str, Any]:
        store_code, staff_pk = guard(uow, row)
        return {"rx_no": _registered_no(uow, row), "store_code": store_code, "staff_pk": staff_pk}

    _call(uow, his, rx_id, HisOp.DISPENSE, actor, prepare)


def void(uow: UnitOfWork, his: HisRxPort, rx_id: str, actor: str, reason: str,
         guard: Callable[[UnitOfWork, PrescriptionRow], None]) -> bool:
    """作废: through the HIS when it holds the prescription (True); False when it never registered it
    (the caller then voids locally). An unknown registration is settled first."""
    with uow:
        row = _load(uow, rx_id)
        guard(uow, row)
        pending = operation(uow, row, HisOp.REGISTER)
        pending_key = pending.idempotency_key if pending is not None and pending.status == "pending" else None
    if pending_key is not None:
        _reconcile_one(uow, his, pending_key, force=True)
    with uow:
        row = _load(uow, rx_id)
        done = operation(uow, row, HisOp.REGISTER)
        if done is None or done.status == "failed":
            return False
        if done.status == "pending":
            raise ServiceUnavailable("HIS 暂不可用，处方登记结果待核对，暂不能作废", hint="请稍后重试")

    def prepare(uow: UnitOfWork, row: PrescriptionRow) -> dict[str, Any]:
        guard(uow, row)
        return {"rx_no": _registered_no(uow, row), "reason": reason}

    _call(uow, his, rx_id, HisOp.VOID, actor, prepare)
    return True


# --- reconciliation (a scheduled job) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    skipped: int  # 1 in standalone mode
    settled: int  # unknown outcomes the HIS confirmed it had carried out
    resent: int  # requests the HIS had no record of, sent again under the same key
    failed: int  # refused, or not carried out and not to be re-sent
    unknown: int  # the HIS still did not answer: next run
    registered: int  # approved prescriptions registered with the HIS in this run


def reconcile(uow: UnitOfWork, now: datetime, *, his: HisRxPort | None, grace_seconds: int = 60,
              limit: int = 100) -> ReconcileResult:
    """Settle HIS operations whose outcome is unknown (pending for longer than ``grace_seconds``), then
    register approved prescriptions the HIS does not hold yet. Safe to run concurrently: each
    operation is claimed by a conditional update (SKIP LOCKED on PostgreSQL)."""
    if his is None:
        return ReconcileResult(1, 0, 0, 0, 0, 0)
    cutoff = now - timedelta(seconds=grace_seconds)
    with uow:
        keys = list(uow.session.scalars(select(HisRxOperationRow.idempotency_key).where(
            HisRxOperationRow.status == "pending", HisRxOperationRow.updated_at <= cutoff)
            .order_by(HisRxOperationRow.id).limit(limit)))
    counts = {"settled": 0, "resent": 0, "failed": 0, "unknown": 0}
    for key in keys:
        outcome = _reconcile_one(uow, his, key, cutoff=cutoff)
        if outcome in counts:
            counts[outcome] += 1
    registered = 0
    with uow:
        started = select(HisRxOperationRow.id).where(HisRxOperationRow.prescription_id == PrescriptionRow.id,
                                                     HisRxOperationRow.kind == HisOp.REGISTER.value)
        waiting = list(uow.session.scalars(select(PrescriptionRow.public_id).where(
            PrescriptionRow.status == RxStatus.APPROVED.value, ~started.exists())
            .order_by(PrescriptionRow.id).limit(limit)))  # registered, refused or being settled: not again
    for rx_id in waiting:
        try:
            register(uow, his, rx_id, RECONCILE_ACTOR)
            registered += 1
        except (ExternalServiceError, Conflict):
            counts["failed"] += 1
    return ReconcileResult(0, counts["settled"], counts["resent"], counts["failed"], counts["unknown"], registered)


def _reconcile_one(uow: UnitOfWork, his: HisRxPort, key: str, *, cutoff: datetime | None = None,
                   force: bool = False) -> str:
    """Ask the HIS about one pending operation and settle it: settled | resent | failed | unknown | taken."""
    with uow:
        claim = update(HisRxOperationRow).where(HisRxOperationRow.idempotency_key == key,
                                                HisRxOperationRow.status == "pending")
        if not force and cutoff is not None:
            claim = claim.where(HisRxOperationRow.updated_at <= cutoff)
        if uow.dialect == "postgresql":
            locked = uow.session.scalar(select(HisRxOperationRow.id).where(
                HisRxOperationRow.idempotency_key == key).with_for_update(skip_locked=True))
            if locked is None:
                return "taken"
        if uow.session.execute(claim.values(updated_at=uow.clock.now())).rowcount == 0:  # type: ignore[attr-defined]
            return "taken"  # settled, or claimed by another worker
        op_row = uow.session.scalar(select(HisRxOperationRow).where(HisRxOperationRow.idempotency_key == key))
        assert op_row is not None
        op, request = HisOp(op_row.kind), dict(op_row.request)
        uow.commit()
    try:
        receipt = his.lookup(key)
        if receipt is not None:
            _settle(uow, key, receipt)
            return "settled"
        if not op.resend_when_missing:
            _mark(uow, key, "failed", "HIS 无此记录（请求未送达），可重新办理")
            return "failed"
        receipt = _send(his, op, key, request)
    except HisRefused as exc:
        _mark(uow, key, "failed", str(exc))
        return "failed"
    except ServiceUnavailable as exc:
        _mark(uow, key, "pending", str(exc))
        return "unknown"
    _settle(uow, key, receipt)
    return "resent"


# --- status -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingOperation:
    operation_id: str
    prescription_id: str
    kind: str
    kind_label: str
    attempts: int
    last_error: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class HisStatus:
    mode: str  # standalone | integrated
    last_sync_at: datetime | None
    last_sync_status: str | None
    last_sync_added: int
    last_sync_changed: int
    last_sync_withdrawn: int
    last_success_at: datetime | None
    drugs_active: int
    pending: int  # operations whose outcome is still to be settled
    failed: int  # operations the HIS refused or never carried out
    pending_operations: tuple[PendingOperation, ...]


def status(uow: UnitOfWork, principal: Principal, *, mode: str, limit: int = 20) -> HisStatus:
    """集成状态: the mode, the last catalogue sync and the operations awaiting reconciliation."""
    ensure_role(principal, {Role.ADMIN, Role.PHARMACIST, Role.OPERATIONS})
    with uow:
        last = uow.session.scalar(select(DrugSyncRunRow).order_by(DrugSyncRunRow.id.desc()).limit(1))
        success = uow.session.scalar(select(func.max(DrugSyncRunRow.finished_at)).where(
            DrugSyncRunRow.status == "succeeded"))
        counts = {status: n for status, n in uow.session.execute(select(
            HisRxOperationRow.status, func.count()).group_by(HisRxOperationRow.status))}
        active = uow.session.scalar(select(func.count()).select_from(DrugRow).where(DrugRow.active.is_(True))) or 0
        pending = uow.session.execute(
            select(HisRxOperationRow, PrescriptionRow.public_id)
            .join(PrescriptionRow, PrescriptionRow.id == HisRxOperationRow.prescription_id)
            .where(HisRxOperationRow.status == "pending").order_by(HisRxOperationRow.id).limit(limit))
        rows = tuple(PendingOperation(o.public_id, rx_id, o.kind, HisOp(o.kind).label, o.attempts, o.last_error,
                                      o.updated_at) for o, rx_id in pending)
        return HisStatus(mode, last.finished_at if last else None, last.status if last else None,
                         last.added if last else 0, last.changed if last else 0, last.withdrawn if last else 0,
                         success, int(active), int(counts.get("pending", 0)), int(counts.get("failed", 0)), rows)
