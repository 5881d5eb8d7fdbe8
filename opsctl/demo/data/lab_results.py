"""Plausible lab and exam reports for the fake HIS's seeded offline visits.

Panels follow the visit's diagnoses (ICD-10 chapter): a hypertensive patient
gets lipids, renal function and an ECG; a diabetic gets glucose and HbA1c; a
respiratory complaint a blood count and a chest CT, and so on. Values are drawn
around the reference range, and the disease the panel looks for pushes them out
of range more often (flag H/L), as in a real clinic's reports.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True, slots=True)
class Analyte:
    code: str
    name: str
    unit: str
    low: float
    high: float
    decimals: int
    abnormal: str = "H"  # which way the panel's disease pushes it


LAB_PANELS: dict[str, tuple[Analyte, ...]] = {
    "血常规": (Analyte("WBC", "白细胞计数", "10^9/L", 3.5, 9.5, 2), Analyte("RBC", "红细胞计数", "10^12/L", 3.8, 5.8, 2, "L"),
             Analyte("HGB", "血红蛋白", "g/L", 115, 175, 0, "L"), Analyte("PLT", "血小板计数", "10^9/L", 125, 350, 0),
             Analyte("NEUT%", "中性粒细胞百分比", "%", 40, 75, 1)),
    "肝功能": (Analyte("ALT", "丙氨酸氨基转移酶", "U/L", 9, 50, 0), Analyte("AST", "天门冬氨酸氨基转移酶", "U/L", 15, 40, 0),
             Analyte("TBIL", "总胆红素", "μmol/L", 3.4, 21.0, 1), Analyte("ALB", "白蛋白", "g/L", 40, 55, 1, "L")),
    "肾功能": (Analyte("CREA", "肌酐", "μmol/L", 57, 111, 0), Analyte("BUN", "尿素", "mmol/L", 3.1, 8.0, 2),
             Analyte("UA", "尿酸", "μmol/L", 208, 428, 0)),
    "血脂四项": (Analyte("TC", "总胆固醇", "mmol/L", 2.8, 5.2, 2), Analyte("TG", "甘油三酯", "mmol/L", 0.56, 1.7, 2),
               Analyte("HDL-C", "高密度脂蛋白胆固醇", "mmol/L", 1.0, 1.9, 2, "L"),
               Analyte("LDL-C", "低密度脂蛋白胆固醇", "mmol/L", 1.9, 3.4, 2)),
    "血糖": (Analyte("GLU", "空腹血糖", "mmol/L", 3.9, 6.1, 2), Analyte("HbA1c", "糖化血红蛋白", "%", 4.0, 6.0, 1)),
    "甲状腺功能": (Analyte("TSH", "促甲状腺激素", "mIU/L", 0.27, 4.2, 2), Analyte("FT4", "游离甲状腺素", "pmol/L", 12, 22, 1),
              Analyte("FT3", "游离三碘甲状腺原氨酸", "pmol/L", 3.1, 6.8, 2)),
}

# exam → (normal findings, normal conclusion), (abnormal findings, abnormal conclusion)
EXAMS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "心电图": (("窦性心律，心率 72 次/分，各导联 ST-T 未见明显异常。", "正常心电图"),
            ("窦性心律，心率 78 次/分，SV1+RV5 电压增高，V5、V6 导联 ST 段轻度压低。", "左心室高电压，ST-T 改变")),
    "胸部CT": (("双肺纹理清晰，未见明显实质性病变，纵隔淋巴结不大。", "双肺未见明显异常"),
             ("右肺下叶见斑片状磨玻璃密度影，边界欠清。", "右肺下叶炎症，建议治疗后复查")),
    "腹部超声": (("肝脏大小形态正常，实质回声均匀；胆囊、胰腺、脾脏未见明显异常。", "肝胆胰脾未见明显异常"),
             ("肝脏体积稍大，实质回声细密增强，后方回声衰减。", "脂肪肝（轻度）")),
    "颈动脉超声": (("双侧颈动脉内中膜光滑，厚度正常，未见斑块。", "双侧颈动脉未见明显异常"),
               ("左侧颈总动脉分叉处见 6.2 mm×1.8 mm 低回声斑块。", "左侧颈动脉粥样硬化斑块形成")),
    "甲状腺超声": (("甲状腺大小形态正常，实质回声均匀，未见明显结节。", "甲状腺未见明显异常"),
               ("甲状腺右叶见 5 mm×4 mm 低回声结节，边界清，TI-RADS 3 类。", "甲状腺右叶结节（TI-RADS 3 类）")),
}

# ICD-10 prefix → (lab panels, exams, the panel/exam the disease shows in)
BY_DIAGNOSIS: tuple[tuple[str, tuple[str, ...], tuple[str, ...], frozenset[str]], ...] = (
    ("E11", ("血糖", "肾功能", "血脂四项"), ("颈动脉超声",), frozenset({"血糖", "血脂四项"})),
    ("E0", ("甲状腺功能", "血常规"), ("甲状腺超声",), frozenset({"甲状腺功能", "甲状腺超声"})),
    ("E", ("血脂四项", "肝功能"), ("腹部超声",), frozenset({"血脂四项", "腹部超声"})),
    ("I", ("血脂四项", "肾功能"), ("心电图", "颈动脉超声"), frozenset({"血脂四项", "心电图", "颈动脉超声"})),
    ("J", ("血常规",), ("胸部CT",), frozenset({"血常规", "胸部CT"})),
    ("K", ("肝功能", "血常规"), ("腹部超声",), frozenset({"肝功能", "腹部超声"})),
    ("N", ("肾功能",), ("腹部超声",), frozenset({"肾功能"})),
    ("", ("血常规",), (), frozenset()),
)


def _value(rng: random.Random, a: Analyte, affected: bool) -> tuple[str, str]:
    span = a.high - a.low
    if affected and rng.random() < 0.55:
        value = a.high + span * rng.uniform(0.05, 0.6) if a.abnormal == "H" else a.low - span * rng.uniform(0.05, 0.3)
    elif rng.random() < 0.06:  # now and then out of range without the disease
        value = a.high + span * rng.uniform(0.02, 0.2) if rng.random() < 0.5 else a.low - span * rng.uniform(0.02, 0.1)
    else:
        value = rng.uniform(a.low + span * 0.05, a.high - span * 0.05)
    value = max(value, 0.01)
    text = f"{value:.{a.decimals}f}"
    number = float(text)
    return text, "H" if number > a.high else "L" if number < a.low else ""


def reports_for(rng: random.Random, *, first_id: int, visit_id: int, patient_id: int, visit_no: str,
                icd10s: list[str], visited_at: datetime) -> list[dict[str, Any]]:
    """The visit's reports as rows of ``his_results`` (ids from ``first_id``); none for about a third of visits."""
    if rng.random() < 0.35:
        return []
    main = icd10s[0] if icd10s else ""
    _, labs, exams, shows = next(entry for entry in BY_DIAGNOSIS if main.startswith(entry[0]))
    rows: list[dict[str, Any]] = []
    for name in labs[:1 + int(rng.random() * len(labs))]:
        items = []
        for a in LAB_PANELS[name]:
            value, flag = _value(rng, a, name in shows)
            items.append({"code": a.code, "name": a.name, "value": value, "unit": a.unit,
                          "range": f"{a.low:g}–{a.high:g}", "flag": flag})
        rows.append({"kind": "lab", "name": name, "items": items, "findings": None, "conclusion": None,
                     "reported_at": visited_at + timedelta(hours=2 + rng.random() * 4)})
    for name in exams:
        if rng.random() < 0.6:
            normal, abnormal = EXAMS[name]
            findings, conclusion = abnormal if name in shows and rng.random() < 0.45 else normal
            rows.append({"kind": "exam", "name": name, "items": [], "findings": findings, "conclusion": conclusion,
                         "reported_at": visited_at + timedelta(hours=1 + rng.random() * 24)})
    for k, row in enumerate(rows):
        row.update(id=first_id + k, report_no=f"{'JY' if row['kind'] == 'lab' else 'JC'}{visit_no[2:]}{k:02d}",
                   visit_id=visit_id, patient_id=patient_id)
    return rows
