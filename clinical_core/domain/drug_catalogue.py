"""药品目录 import rules: one spreadsheet row → one drug, or a Chinese error
naming the row and the column. Pure; the spreadsheet is read by an adapter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clinical_core.domain.errors import InvalidInput
from clinical_core.domain.money import yuan_to_fen

COLUMNS = ("药品编码", "通用名", "商品名", "规格", "剂型", "单位", "价格(元)", "类别", "管制类别", "处方药")
REQUIRED = ("药品编码", "通用名", "规格", "剂型", "单位", "价格(元)", "类别")
CATEGORIES = {"西药": "western", "中成药": "chinese_patent", "中药饮片": "herbal_pieces"}
CONTROL_CLASSES = {"普通药品": "none", "麻醉药品": "narcotic", "第一类精神药品": "psychotropic_1",
                   "第二类精神药品": "psychotropic_2", "医疗用毒性药品": "toxic", "放射性药品": "radioactive",
                   "药品类易制毒化学品": "precursor", "抗菌药物": "antimicrobial"}
YES_NO = {"是": True, "否": False, "Rx": True, "OTC": False}
MAX_PRICE_FEN = 10_000_000


@dataclass(frozen=True, slots=True)
class DrugRecord:
    code: str
    generic_name: str
    trade_name: str | None
    specification: str
    dosage_form: str
    unit: str
    price_fen: int
    category: str
    control_class: str
    prescription_only: bool


class CatalogueRejected(InvalidInput):
    """The whole import is refused; ``row_errors`` lists every problem found."""

    def __init__(self, row_errors: list[str]) -> None:
        super().__init__(f"药品目录有 {len(row_errors)} 处错误，未导入任何药品", field="file")
        self.row_errors = row_errors


def check_header(header: list[Any]) -> dict[str, int]:
    names = [str(h).strip() if h is not None else "" for h in header]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise CatalogueRejected([f"表头缺少列：{'、'.join(missing)}（应为：{'、'.join(COLUMNS)}）"])
    return {name: i for i, name in enumerate(names) if name in COLUMNS}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def parse_row(number: int, raw: dict[str, Any]) -> tuple[DrugRecord | None, list[str]]:
    """One row (``number`` as the spreadsheet shows it) → a record, or its errors."""
    errors: list[str] = []
    v = {c: _text(raw.get(c)) for c in COLUMNS}
    for column in REQUIRED:
        if not v[column]:
            errors.append(f"第 {number} 行：「{column}」不能为空")
    price = 0
    if v["价格(元)"]:
        try:
            price = yuan_to_fen(v["价格(元)"])
            if not 0 <= price <= MAX_PRICE_FEN:
                errors.append(f"第 {number} 行：价格应在 0 到 100000 元之间")
        except InvalidInput:
            errors.append(f"第 {number} 行：价格「{v['价格(元)']}」不是有效金额（元，最多两位小数）")
    if v["类别"] and v["类别"] not in CATEGORIES:
        errors.append(f"第 {number} 行：类别「{v['类别']}」无效，应为 {'、'.join(CATEGORIES)}")
    control = v["管制类别"] or "普通药品"
    if control not in CONTROL_CLASSES:
        errors.append(f"第 {number} 行：管制类别「{control}」无效，应为 {'、'.join(CONTROL_CLASSES)}")
    rx = v["处方药"] or "是"
    if rx not in YES_NO:
        errors.append(f"第 {number} 行：处方药应填「是」或「否」（或 Rx/OTC）")
    if len(v["药品编码"]) > 30 or len(v["通用名"]) > 80 or len(v["规格"]) > 80:
        errors.append(f"第 {number} 行：编码、通用名或规格过长")
    if errors:
        return None, errors
    return DrugRecord(v["药品编码"], v["通用名"], v["商品名"] or None, v["规格"], v["剂型"], v["单位"], price,
                      CATEGORIES[v["类别"]], CONTROL_CLASSES[control], YES_NO[rx]), []


def parse_rows(rows: list[tuple[int, dict[str, Any]]]) -> list[DrugRecord]:
    """All rows or nothing: every error of every row, or the records."""
    records, errors, seen = [], [], {}
    for number, raw in rows:
        record, row_errors = parse_row(number, raw)
        errors.extend(row_errors)
        if record is not None:
            if record.code in seen:
                errors.append(f"第 {number} 行：药品编码 {record.code} 与第 {seen[record.code]} 行重复")
            seen.setdefault(record.code, number)
            records.append(record)
    if not rows:
        errors.append("表格中没有药品数据")
    if errors:
        raise CatalogueRejected(errors)
    return records
