"""R07 (online doctors), R03/R10 (prescribing, review), R44 (home nursing)."""

from datetime import date

import pytest

from clinical_core.domain.errors import RuleViolation
from clinical_core.domain.staff import (
    FilingStatus,
    Qualification,
    Role,
    check_title,
    ensure_may_consult_online,
    ensure_may_nurse_at_home,
    ensure_may_prescribe,
    ensure_may_review_prescriptions,
)

TODAY = date(2026, 11, 2)


def doctor(**changes: object) -> Qualification:
    base = dict(role=Role.DOCTOR, title="主治医师", licence_no="110440300001234",
                practising_since=date(2020, 7, 1), filing=FilingStatus.FILED, may_prescribe=True)
    base.update(changes)
    return Qualification(**base)  # type: ignore[arg-type]


def test_qualified_doctor_may_consult_and_prescribe() -> None:
    ensure_may_consult_online(doctor(), TODAY)
    ensure_may_prescribe(doctor(), TODAY)


def test_r07_three_years_counted_to_the_day() -> None:
    ensure_may_consult_online(doctor(practising_since=date(2023, 11, 2)), TODAY)
    with pytest.raises(RuleViolation, match="不足 3 年") as err:
        ensure_may_consult_online(doctor(practising_since=date(2023, 11, 3)), TODAY)
    assert err.value.rule == "R07"


@pytest.mark.parametrize("change", [{"filing": FilingStatus.PENDING}, {"licence_no": None}, {"role": Role.NURSE}])
def test_r07_other_conditions(change: dict[str, object]) -> None:
    with pytest.raises(RuleViolation):
        ensure_may_consult_online(doctor(**change), TODAY)


def test_r03_prescribing_rights() -> None:
    with pytest.raises(RuleViolation, match="处方权"):
        ensure_may_prescribe(doctor(may_prescribe=False), TODAY)


def test_r10_reviewer_is_a_pharmacist_of_at_least_yaoshi() -> None:
    ph = Qualification(Role.PHARMACIST, "主管药师", "x", date(2010, 1, 1), FilingStatus.NONE, False)
    ensure_may_review_prescriptions(ph)
    with pytest.raises(RuleViolation):
        ensure_may_review_prescriptions(Qualification(Role.PHARMACIST, "药士", "x", None, FilingStatus.NONE, False))
    with pytest.raises(RuleViolation):
        ensure_may_review_prescriptions(doctor())


def nurse(title: str, since: date) -> Qualification:
    return Qualification(Role.NURSE, title, "n1", since, FilingStatus.NONE, False)


def test_r44_home_nurse_years_and_title() -> None:
    ensure_may_nurse_at_home(nurse("护师", date(2021, 11, 2)), TODAY)
    with pytest.raises(RuleViolation, match="不足 5 年"):
        ensure_may_nurse_at_home(nurse("主管护师", date(2021, 11, 3)), TODAY)
    with pytest.raises(RuleViolation, match="护师及以上"):
        ensure_may_nurse_at_home(nurse("护士", date(2000, 1, 1)), TODAY)


def test_titles_belong_to_the_role() -> None:
    check_title(Role.DOCTOR, "主任医师")
    with pytest.raises(RuleViolation, match="不属于医生系列"):
        check_title(Role.DOCTOR, "主管护师")
