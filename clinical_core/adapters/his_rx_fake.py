"""The fake HIS pharmacy and billing (集成模式, RX-5), for tests, the demo and staging.

It plays the hospital's HIS and keeps the HIS's state durably in its own SQLite
file (``<data dir>/his_sandbox/his.db``): it is the other party's ledger, not
our schema, so it is not in our migrations and never joins our transactions,
and ``opsctl serve``, the CLI and the scheduler all see the same HIS.

- 药品字典 and 诊断库: ``put_drug``/``withdraw_drug``/``put_diagnosis`` are the
  HIS administrator's hands; ``drug_catalogue`` and ``diagnoses`` answer from them.
- Every changing request carries an idempotency key. The first request under a
  key is carried out and its receipt stored; a repeated key answers the stored
  receipt (a different kind of request under the same key is refused). So a
  retry after a timeout never registers, charges, refunds or dispenses twice.
- The HIS enforces its own rules: it registers only active drugs and known
  diagnoses; charges only a registered prescription, exactly its amount, once;
  voids only before charging; refunds only a charge not yet dispensed; dispenses
  only a charged prescription, once.
- Fault injection (shared through the database, consumed atomically):
  ``inject(op, "down", n)``: the next n ``op`` requests fail without being
  carried out; ``inject(op, "timeout", n)``: they are carried out but the answer
  is lost (the caller sees a timeout and must reconcile). ``op`` is one of
  catalogue, diagnoses, register, void, charge, refund, dispense, lookup.

Concurrency: every transaction starts with ``BEGIN IMMEDIATE`` (one writer at a
time across processes), keys and numbers are unique.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Engine,
    Integer,
    String,
    Text,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from clinical_core.adapters.sandbox_store import sandbox_engine
from clinical_core.domain.errors import ServiceUnavailable
from clinical_core.domain.time import Clock
from clinical_core.persistence.base import UTCDateTime
from clinical_core.ports.his import HisDrug, HisReceipt, HisRefused, HisRxOrder

OPERATIONS = ("catalogue", "diagnoses", "register", "void", "charge", "refund", "dispense", "lookup")
FAULTS = ("down", "timeout")


class _HisBase(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012 - SQLAlchemy reads it on the class


class HisDrugRow(_HisBase):
    __tablename__ = "drugs"
    code: Mapped[str] = mapped_column(String(30), primary_key=True)
    generic_name: Mapped[str] = mapped_column(String(80))
    trade_name: Mapped[str | None] = mapped_column(String(80))
    specification: Mapped[str] = mapped_column(String(80))
    dosage_form: Mapped[str] = mapped_column(String(30))
    unit: Mapped[str] = mapped_column(String(10))
    price_fen: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(20))
    control_class: Mapped[str] = mapped_column(String(20))
    prescription_only: Mapped[bool] = mapped_column(Boolean)
    active: Mapped[bool] = mapped_column(Boolean)


class HisDiagnosisRow(_HisBase):
    __tablename__ = "diagnoses"
    code: Mapped[str] = mapped_column(String(20), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    active: Mapped[bool] = mapped_column(Boolean)


class HisPrescriptionRow(_HisBase):
    """处方 as the HIS holds it: registered → charged → dispensed; registered → voided; charged → refunded."""

    __tablename__ = "prescriptions"
    rx_no: Mapped[str] = mapped_column(String(32), primary_key=True)
    prescription_id: Mapped[str] = mapped_column(String(40), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    amount_fen: Mapped[int] = mapped_column(Integer)
    lines: Mapped[str] = mapped_column(Text)  # JSON
    charge_no: Mapped[str | None] = mapped_column(String(32))
    store_code: Mapped[str | None] = mapped_column(String(20))
    registered_at: Mapped[datetime]


class HisRequestRow(_HisBase):
    """One carried-out request, by its idempotency key, with the receipt it was answered."""

    __tablename__ = "requests"
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(40))  # the rx or charge the request was about
    number: Mapped[str] = mapped_column(String(32))
    amount_fen: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]


class HisControlRow(_HisBase):
    __tablename__ = "controls"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


def _his_engine(path: Path) -> Engine:
    return sandbox_engine(path, _HisBase.metadata)


class FakeHisRx:
    """Implements ``clinical_core.ports.his.HisRxPort``."""

    def __init__(self, clock: Clock, *, path: Path | None = None) -> None:
        if path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hissandbox-")
            path = Path(self._tmp.name) / "his.db"
        self.path = path
        self.engine = _his_engine(path)
        self.clock = clock

    # --- dictionaries ---

    def drug_catalogue(self) -> list[HisDrug]:
        self._fault("catalogue")
        with Session(self.engine) as s:
            return [HisDrug(d.code, d.generic_name, d.trade_name, d.specification, d.dosage_form, d.unit, d.price_fen,
                            d.category, d.control_class, d.prescription_only, d.active)
                    for d in s.scalars(select(HisDrugRow).order_by(HisDrugRow.code))]

    def diagnoses(self, codes: tuple[str, ...]) -> dict[str, str]:
        self._fault("diagnoses")
        with Session(self.engine) as s:
            return {d.code: d.name for d in s.scalars(select(HisDiagnosisRow).where(
                HisDiagnosisRow.code.in_(codes), HisDiagnosisRow.active.is_(True)))}

    # --- requests ---

    def register(self, key: str, order: HisRxOrder) -> HisReceipt:
        def carry_out(s: Session, now: datetime) -> HisReceipt:
            codes = [line.drug_code for line in order.lines]
            drugs = {d.code: d for d in s.scalars(select(HisDrugRow).where(HisDrugRow.code.in_(codes)))}
            unusable = [c for c in codes if c not in drugs or not drugs[c].active]
            if unusable:
                raise HisRefused(f"HIS：药品 {'、'.join(unusable)} 不在药品字典中或已停用")
            known = set(s.scalars(select(HisDiagnosisRow.code).where(
                HisDiagnosisRow.code.in_(order.diagnosis_codes), HisDiagnosisRow.active.is_(True))))
            unknown = [c for c in order.diagnosis_codes if c not in known]
            if unknown:
                raise HisRefused(f"HIS：诊断 {'、'.join(unknown)} 不在诊断库中或已停用")
            rx_no = f"CF{secrets.token_hex(8).upper()}"
            s.add(HisPrescriptionRow(
                rx_no=rx_no, prescription_id=order.prescription_id, version=order.version, status="registered",
                amount_fen=order.amount_fen, registered_at=now,
                lines=json.dumps([[x.drug_code, x.quantity, x.price_fen] for x in order.lines])))
            return HisReceipt("register", rx_no, order.amount_fen, now)

        return self._request("register", key, order.prescription_id, carry_out)

    def void(self, key: str, rx_no: str, reason: str) -> HisReceipt:
        del reason

        def carry_out(s: Session, now: datetime) -> HisReceipt:
            rx = self._rx(s, rx_no)
            if rx.status != "registered":
                raise HisRefused(f"HIS：处方 {rx_no} 当前为 {rx.status}，不能作废")
            rx.status = "voided"
            return HisReceipt("void", rx_no, 0, now)

        return self._request("void", key, rx_no, carry_out)

    def charge(self, key: str, rx_no: str, amount_fen: int) -> HisReceipt:
        def carry_out(s: Session, now: datetime) -> HisReceipt:
            rx = self._rx(s, rx_no)
            if rx.status != "registered":
                raise HisRefused(f"HIS：处方 {rx_no} 当前为 {rx.status}，不能收费")
            if amount_fen != rx.amount_fen:
                raise HisRefused("HIS：收费金额与登记的处方金额不一致")
            rx.status, rx.charge_no = "charged", f"SF{secrets.token_hex(8).upper()}"
            return HisReceipt("charge", rx.charge_no, amount_fen, now)

        return self._request("charge", key, rx_no, carry_out)

    def refund(self, key: str, charge_no: str, amount_fen: int, reason: str) -> HisReceipt:
        del reason

        def carry_out(s: Session, now: datetime) -> HisReceipt:
            rx = s.scalar(select(HisPrescriptionRow).where(HisPrescriptionRow.charge_no == charge_no))
            if rx is None:
                raise HisRefused(f"HIS：收费单 {charge_no} 不存在")
            if rx.status != "charged":
                raise HisRefused(f"HIS：处方 {rx.rx_no} 当前为 {rx.status}，不能退费")
            if amount_fen != rx.amount_fen:
                raise HisRefused("HIS：退费金额与收费金额不一致")
            rx.status = "refunded"
            return HisReceipt("refund", f"TF{secrets.token_hex(8).upper()}", amount_fen, now)

        return self._request("refund", key, charge_no, carry_out)

    def dispense(self, key: str, rx_no: str, store_code: str) -> HisReceipt:
        def carry_out(s: Session, now: datetime) -> HisReceipt:
            rx = self._rx(s, rx_no)
            if rx.status != "charged":
                raise HisRefused(f"HIS：处方 {rx_no} 当前为 {rx.status}，不能发药")
            rx.status, rx.store_code = "dispensed", store_code
            return HisReceipt("dispense", f"FY{secrets.token_hex(8).upper()}", 0, now)

        return self._request("dispense", key, rx_no, carry_out)

    def lookup(self, key: str) -> HisReceipt | None:
        self._fault("lookup")
        with Session(self.engine) as s:
            r = s.get(HisRequestRow, key)
            return HisReceipt(r.kind, r.number, r.amount_fen, r.at) if r else None

    # --- the HIS administrator's hands and the sandbox's controls ---

    def put_drug(self, drug: HisDrug) -> None:
        with Session(self.engine) as s, s.begin():
            s.merge(HisDrugRow(code=drug.code, generic_name=drug.generic_name, trade_name=drug.trade_name,
                               specification=drug.specification, dosage_form=drug.dosage_form, unit=drug.unit,
                               price_fen=drug.price_fen, category=drug.category, control_class=drug.control_class,
                               prescription_only=drug.prescription_only, active=drug.active))

    def withdraw_drug(self, code: str) -> None:
        with Session(self.engine) as s, s.begin():
            s.execute(update(HisDrugRow).where(HisDrugRow.code == code).values(active=False))

    def put_diagnosis(self, code: str, name: str, *, active: bool = True) -> None:
        with Session(self.engine) as s, s.begin():
            s.merge(HisDiagnosisRow(code=code, name=name, active=active))

    def inject(self, op: str, fault: str, times: int = 1) -> None:
        """The next ``times`` requests of ``op`` fail with ``fault`` (down | timeout)."""
        if op not in OPERATIONS or fault not in FAULTS:
            raise ValueError(f"unknown operation or fault: {op}/{fault}")
        name = f"{op}:{fault}"
        with Session(self.engine) as s, s.begin():
            if s.execute(update(HisControlRow).where(HisControlRow.name == name)
                         .values(value=times)).rowcount == 0:  # type: ignore[attr-defined]
                s.add(HisControlRow(name=name, value=times))

    def prescription_state(self, prescription_id: str) -> list[tuple[str, int, str]]:
        """(rx_no, version, status) of what the HIS holds for one of our prescriptions."""
        with Session(self.engine) as s:
            return [(r.rx_no, r.version, r.status) for r in s.scalars(select(HisPrescriptionRow).where(
                HisPrescriptionRow.prescription_id == prescription_id).order_by(HisPrescriptionRow.registered_at))]

    def carried_out(self, kind: str) -> int:
        """How many requests of ``kind`` the HIS carried out (each key once)."""
        with Session(self.engine) as s:
            return len(list(s.scalars(select(HisRequestRow.key).where(HisRequestRow.kind == kind))))

    # --- internals ---

    def _rx(self, s: Session, rx_no: str) -> HisPrescriptionRow:
        rx = s.get(HisPrescriptionRow, rx_no)
        if rx is None:
            raise HisRefused(f"HIS：处方 {rx_no} 不存在")
        return rx

    def _request(self, kind: str, key: str, target: str, carry_out: Any) -> HisReceipt:
        if self._take(f"{kind}:down"):
            raise ServiceUnavailable("HIS 暂时无法连接，请稍后重试")
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            done = s.get(HisRequestRow, key)
            if done is not None:  # the same request again: the first answer
                if done.kind != kind or done.target != target:
                    raise HisRefused("HIS：同一请求号用于不同的请求")
                receipt = HisReceipt(done.kind, done.number, done.amount_fen, done.at)
            else:
                now = self.clock.now()
                receipt = carry_out(s, now)
                s.add(HisRequestRow(key=key, kind=kind, target=target, number=receipt.number,
                                    amount_fen=receipt.amount_fen, at=now))
        if self._take(f"{kind}:timeout"):  # carried out, but the answer never arrives
            raise ServiceUnavailable("HIS 响应超时，操作结果待核对")
        return receipt

    def _fault(self, op: str) -> None:
        if self._take(f"{op}:down") or self._take(f"{op}:timeout"):
            raise ServiceUnavailable("HIS 暂时无法连接，请稍后重试")

    def _take(self, name: str) -> bool:
        with Session(self.engine) as s, s.begin():
            result = s.execute(update(HisControlRow).where(
                HisControlRow.name == name, HisControlRow.value > 0).values(value=HisControlRow.value - 1))
            return bool(result.rowcount)  # type: ignore[attr-defined]
