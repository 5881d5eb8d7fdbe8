"""Every prescription rule, each with a case that only it catches: removing a
rule from ``RULES`` makes its case fail."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from clinical_core.domain.errors import RuleViolation
from clinical_core.domain.prescription_rules import RULES, RxDraft, RxLine, Severity, ensure_acceptable, evaluate
from clinical_core.domain.staff import FilingStatus, Qualification, Role

DOCTOR = Qualification(Role.DOCTOR, "主治医师", "110440300001234", date(2015, 7, 1), FilingStatus.FILED, True)
AMLODIPINE = RxLine("D001", "苯磺酸氨氯地平片", "western", "none", 1, 7)
OK = RxDraft(lines=(AMLODIPINE,), diagnosis_codes=("I10",), offline_diagnoses=frozenset({"I10", "E11.9"}),
             patient_age=60, guardian_present=False, valid_days=1, long_term_reason=None, prescriber=DOCTOR,
             today=date(2026, 11, 2))


def line(**changes: object) -> RxLine:
    return dataclasses.replace(AMLODIPINE, **changes)  # type: ignore[arg-type]


CASES: dict[str, RxDraft] = {
    "RX-LINES": dataclasses.replace(OK, lines=()),
    "R24": dataclasses.replace(OK, lines=tuple(line(drug_code=f"D{i}") for i in range(6))),
    "R24-HERBAL": dataclasses.replace(OK, lines=(AMLODIPINE, line(drug_code="H1", category="herbal_pieces"))),
    "R26": dataclasses.replace(OK, lines=(line(days_supply=14),)),
    "R04": dataclasses.replace(OK, lines=(line(generic_name="唑吡坦片", control_class="psychotropic_2"),)),
    "R04-CHILD": dataclasses.replace(OK, patient_age=5),
    "R25": dataclasses.replace(OK, valid_days=4),
    "R02": dataclasses.replace(OK, diagnosis_codes=("J45.9",)),
    "R07": dataclasses.replace(OK, prescriber=dataclasses.replace(DOCTOR, may_prescribe=False)),
}


def test_a_proper_follow_up_prescription_passes() -> None:
    assert evaluate(OK) == []
    ensure_acceptable(evaluate(OK))


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_rule_catches_its_case(code: str) -> None:
    assert [f.code for f in evaluate(CASES[code])] == [code]
    with pytest.raises(RuleViolation) as caught:
        ensure_acceptable(evaluate(CASES[code]))
    assert caught.value.rule == code


def test_every_rule_has_a_case_or_a_dedicated_test() -> None:
    assert {r.code for r in RULES} == set(CASES) | {"R53", "R53-4W"}
    assert all(r.source and r.title for r in RULES)


def test_supply_limits_r26_r53() -> None:
    with_reason = dataclasses.replace(OK, long_term_reason="高血压病情稳定，长期用药")
    assert evaluate(dataclasses.replace(with_reason, lines=(line(days_supply=28),))) == []
    four_weeks = evaluate(dataclasses.replace(with_reason, lines=(line(days_supply=56),)))
    assert [(f.code, f.severity) for f in four_weeks] == [("R53-4W", Severity.WARN)]
    ensure_acceptable(four_weeks)  # a warning does not refuse
    too_long = evaluate(dataclasses.replace(with_reason, lines=(line(days_supply=85),)))
    assert [f.code for f in too_long] == ["R53", "R53-4W"]
    with pytest.raises(RuleViolation, match="12 周"):
        ensure_acceptable(too_long)


def test_child_with_guardian_and_special_drug_classes() -> None:
    assert evaluate(dataclasses.replace(OK, patient_age=5, guardian_present=True)) == []
    for cls in ("narcotic", "psychotropic_1", "psychotropic_2", "toxic", "radioactive", "precursor"):
        assert [f.code for f in evaluate(dataclasses.replace(OK, lines=(line(control_class=cls),)))] == ["R04"]
    unfiled = dataclasses.replace(DOCTOR, filing=FilingStatus.PENDING)
    assert [f.code for f in evaluate(dataclasses.replace(OK, prescriber=unfiled))] == ["R07"]
