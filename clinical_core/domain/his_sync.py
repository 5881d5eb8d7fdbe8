"""集成模式 (RX-5): the rules of syncing the drug catalogue from the HIS, and of HIS operations.

In integrated mode the HIS's drug dictionary is the catalogue: every run
compares it with the local table (which the prescription rules read), and the
difference is applied all or nothing:

- added: in the HIS and active, not yet local;
- changed: a field differs (name, specification, form, unit, price, category,
  regulatory class, Rx/OTC), or the HIS put a withdrawn drug back into use;
- withdrawn: withdrawn by the HIS (or gone from its dictionary) but active
  locally. A withdrawn drug is kept (old prescriptions name it) but can no
  longer be prescribed.

A dictionary with any invalid entry is refused as a whole, with every problem
listed (the same codes as the Excel import: ``drug_catalogue``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from clinical_core.domain.drug_catalogue import (
    CATEGORIES,
    CONTROL_CLASSES,
    MAX_PRICE_FEN,
    CatalogueRejected,
    DrugRecord,
)

PRESCRIPTION_MODES = ("standalone", "integrated")
FIELDS = ("generic_name", "trade_name", "specification", "dosage_form", "unit", "price_fen", "category",
          "control_class", "prescription_only")
FIELD_LABELS = {"generic_name": "通用名", "trade_name": "商品名", "specification": "规格", "dosage_form": "剂型",
                "unit": "单位", "price_fen": "价格", "category": "类别", "control_class": "管制类别",
                "prescription_only": "处方药", "active": "恢复使用"}


@dataclass(frozen=True, slots=True)
class DrugEntry(DrugRecord):
    """One drug as either side holds it: a catalogue record and whether it is in use (plain values, so
    the comparison is pure)."""

    active: bool


@dataclass(frozen=True, slots=True)
class Change:
    code: str
    fields: tuple[str, ...]  # names of FIELDS (and "active" for a drug back in use)


@dataclass(frozen=True, slots=True)
class CatalogueDiff:
    added: tuple[str, ...]
    changed: tuple[Change, ...]
    withdrawn: tuple[str, ...]
    unchanged: int

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.withdrawn)


def check_his_catalogue(entries: list[DrugEntry]) -> None:
    """The HIS's dictionary must be usable as a whole; otherwise nothing is synced."""
    errors: list[str] = []
    seen: set[str] = set()
    categories, classes = set(CATEGORIES.values()), set(CONTROL_CLASSES.values())
    for e in entries:
        where = f"HIS 药品 {e.code or '（无编码）'}"
        if not e.code or len(e.code) > 30:
            errors.append(f"{where}：药品编码为空或过长")
        if e.code in seen:
            errors.append(f"{where}：药品编码重复")
        seen.add(e.code)
        if not e.generic_name or not e.specification or not e.dosage_form or not e.unit:
            errors.append(f"{where}：通用名、规格、剂型、单位不能为空")
        if len(e.generic_name) > 80 or len(e.specification) > 80 or len(e.trade_name or "") > 80:
            errors.append(f"{where}：通用名、商品名或规格过长")
        if not 0 <= e.price_fen <= MAX_PRICE_FEN:
            errors.append(f"{where}：价格应在 0 到 100000 元之间")
        if e.category not in categories:
            errors.append(f"{where}：类别「{e.category}」无效")
        if e.control_class not in classes:
            errors.append(f"{where}：管制类别「{e.control_class}」无效")
    if errors:
        raise CatalogueRejected(errors)


def diff_catalogue(local: list[DrugEntry], his: list[DrugEntry]) -> CatalogueDiff:
    """What syncing ``his`` into ``local`` changes."""
    mine = {d.code: d for d in local}
    theirs = {d.code: d for d in his}
    added, changed, withdrawn, unchanged = [], [], [], 0
    for code in sorted(theirs):
        h = theirs[code]
        m = mine.get(code)
        if m is None:
            if h.active:
                added.append(code)
            continue
        fields = tuple(f for f in FIELDS if getattr(m, f) != getattr(h, f))
        if h.active and not m.active:
            fields += ("active",)
        if not h.active and m.active:
            withdrawn.append(code)
        elif fields:
            changed.append(Change(code, fields))
        else:
            unchanged += 1
    withdrawn += [code for code in sorted(mine) if code not in theirs and mine[code].active]
    unchanged += sum(1 for code in mine if code not in theirs and not mine[code].active)
    return CatalogueDiff(tuple(added), tuple(changed), tuple(sorted(withdrawn)), unchanged)


class HisOp(StrEnum):
    """What goes through the HIS in integrated mode, each under its own idempotency key."""

    REGISTER = "register"
    VOID = "void"
    CHARGE = "charge"
    REFUND = "refund"
    DISPENSE = "dispense"

    @property
    def label(self) -> str:
        return {"register": "处方登记", "void": "处方作废", "charge": "收费", "refund": "退费",
                "dispense": "发药"}[self]

    @property
    def resend_when_missing(self) -> bool:
        """When a call's outcome was unknown and the HIS has no record of it, does reconciliation send it
        again? Yes for what the prescription's state already demands (registering an approved
        prescription, a void or refund someone asked for); never for a charge or a dispensing, which
        need the patient or the pharmacist there: those are marked failed and can simply be retried."""
        return self in (HisOp.REGISTER, HisOp.VOID, HisOp.REFUND)


def idempotency_key(prescription_id: str, version: int, op: HisOp) -> str:
    """One key per prescription version and operation: the HIS carries each out at most once."""
    return f"{prescription_id}:v{version}:{op.value}"
