"""处方规则 as data: each rule a coded check with a severity and its legal source.

A rule's ``check`` returns a Chinese message when the draft breaks it, or
``None``. ``evaluate`` runs them all; ``ensure_acceptable`` refuses a draft
with any ``block`` finding, and a ``needs_reason`` finding unless the doctor
wrote the reason. Sources are in ``shared/research/clinical_rules.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from clinical_core.domain.errors import RuleViolation
from clinical_core.domain.staff import Qualification, ensure_may_prescribe


class Severity(StrEnum):
    BLOCK = "block"  # 拦截
    NEEDS_REASON = "needs_reason"  # 需医生书面说明理由
    WARN = "warn"  # 提示


SPECIAL_CONTROL = frozenset({"narcotic", "psychotropic_1", "psychotropic_2", "toxic", "radioactive", "precursor"})
MAX_DRUGS = 5  # R24
STANDARD_DAYS = 7  # R26
ASSESSED_DAYS = 28  # R53: beyond 4 weeks needs an assessment and the patient's signature
MAX_DAYS = 84  # R53: 12 weeks
MAX_VALID_DAYS = 3  # R25
GUARDIAN_AGE = 6  # R04


@dataclass(frozen=True, slots=True)
class RxLine:
    drug_code: str
    generic_name: str
    category: str  # western | chinese_patent | herbal_pieces
    control_class: str
    quantity: int
    days_supply: int


@dataclass(frozen=True, slots=True)
class RxDraft:
    """What the rules look at: the prescription, the patient and the prescriber."""

    lines: tuple[RxLine, ...]
    diagnosis_codes: tuple[str, ...]
    offline_diagnoses: frozenset[str]  # ICD-10 codes from the HIS (R02, R17)
    patient_age: int
    guardian_present: bool
    valid_days: int
    long_term_reason: str | None
    prescriber: Qualification
    today: date


@dataclass(frozen=True, slots=True)
class Rule:
    code: str
    severity: Severity
    title: str
    source: str
    check: Callable[[RxDraft], str | None]


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    message: str
    source: str


def _max_drugs(d: RxDraft) -> str | None:
    n = sum(1 for line in d.lines if line.category != "herbal_pieces")
    return f"西药、中成药共 {n} 种，超过每张处方 {MAX_DRUGS} 种的上限" if n > MAX_DRUGS else None


def _herbal_separate(d: RxDraft) -> str | None:
    kinds = {line.category == "herbal_pieces" for line in d.lines}
    return "中药饮片须单独开具处方" if len(kinds) > 1 else None


def _long_supply_reason(d: RxDraft) -> str | None:
    longest = max((line.days_supply for line in d.lines), default=0)
    if longest > STANDARD_DAYS and not (d.long_term_reason or "").strip():
        return f"用药 {longest} 天超过 {STANDARD_DAYS} 天，须注明慢性病等理由"
    return None


def _twelve_weeks(d: RxDraft) -> str | None:
    longest = max((line.days_supply for line in d.lines), default=0)
    return f"用药 {longest} 天超过长期处方 12 周上限" if longest > MAX_DAYS else None


def _four_weeks(d: RxDraft) -> str | None:
    longest = max((line.days_supply for line in d.lines), default=0)
    return "用药超过 4 周，须评估病情并由患者签字确认" if longest > ASSESSED_DAYS else None


def _special_drugs(d: RxDraft) -> str | None:
    banned = sorted({line.generic_name for line in d.lines if line.control_class in SPECIAL_CONTROL})
    return f"互联网医院不得开具麻醉、精神等特殊管理药品：{'、'.join(banned)}" if banned else None


def _child_guardian(d: RxDraft) -> str | None:
    if d.patient_age < GUARDIAN_AGE and not d.guardian_present:
        return f"{GUARDIAN_AGE} 岁以下儿童须确认监护人和相关专业医师陪伴"
    return None


def _validity(d: RxDraft) -> str | None:
    if not 1 <= d.valid_days <= MAX_VALID_DAYS:
        return f"处方有效期 {d.valid_days} 天不符合规定（当日有效，最长 {MAX_VALID_DAYS} 天）"
    return None


def _follow_up_diagnosis(d: RxDraft) -> str | None:
    if not d.diagnosis_codes:
        return "处方须填写诊断"
    unseen = [c for c in d.diagnosis_codes if c not in d.offline_diagnoses]
    if unseen:
        return f"诊断 {'、'.join(unseen)} 不在患者线下就诊的诊断中，线上只能复诊开方"
    return None


def _prescriber(d: RxDraft) -> str | None:
    try:
        ensure_may_prescribe(d.prescriber, d.today)
    except RuleViolation as exc:
        return exc.message.rsplit("（规则", 1)[0]
    return None


def _has_lines(d: RxDraft) -> str | None:
    return "处方至少需要一种药品" if not d.lines else None


RULES: tuple[Rule, ...] = (
    Rule("RX-LINES", Severity.BLOCK, "处方至少含一种药品", "处方管理办法 第六条", _has_lines),
    Rule("R24", Severity.BLOCK, "每张处方不超过 5 种药品", "处方管理办法 第六条", _max_drugs),
    Rule("R24-HERBAL", Severity.BLOCK, "中药饮片单独开具处方", "处方管理办法 第六条", _herbal_separate),
    Rule("R26", Severity.NEEDS_REASON, "一般不超过 7 日用量，超过须注明理由", "处方管理办法 第十九条",
         _long_supply_reason),
    Rule("R53", Severity.BLOCK, "长期处方不超过 12 周", "长期处方管理规范（试行）2021", _twelve_weeks),
    Rule("R53-4W", Severity.WARN, "超过 4 周须评估并由患者签字", "长期处方管理规范（试行）2021", _four_weeks),
    Rule("R04", Severity.BLOCK, "不得线上开具麻醉、精神等特殊管理药品", "互联网诊疗管理办法（试行）第十九条",
         _special_drugs),
    Rule("R04-CHILD", Severity.BLOCK, "6 岁以下儿童须监护人和医师陪伴", "互联网诊疗管理办法（试行）第十九条",
         _child_guardian),
    Rule("R25", Severity.BLOCK, "处方当日有效，最长不超过 3 天", "处方管理办法 第十八条", _validity),
    Rule("R02", Severity.BLOCK, "诊断须为线下已确诊的疾病（复诊）", "互联网诊疗管理办法（试行）第十六条；监管细则",
         _follow_up_diagnosis),
    Rule("R07", Severity.BLOCK, "开方医生具备资质、已备案并有处方权", "互联网诊疗监管细则 第二十五条；第十三条（R14）",
         _prescriber),
)


def evaluate(draft: RxDraft, rules: tuple[Rule, ...] = RULES) -> list[Finding]:
    findings = []
    for rule in rules:
        message = rule.check(draft)
        if message is not None:
            findings.append(Finding(rule.code, rule.severity, message, rule.source))
    return findings


def ensure_acceptable(findings: list[Finding]) -> None:
    """Blocks and unexplained needs-reason findings refuse the prescription; warnings pass."""
    for finding in findings:
        if finding.severity is not Severity.WARN:
            raise RuleViolation(finding.code, finding.message)
