"""Internal consistency of the demo hospital's reference data (pure data, no I/O)."""

from __future__ import annotations

import ast
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from opsctl.demo.data import departments, diagnoses, drugs, names, shenzhen, titles

DATA_MODULES = (departments, diagnoses, drugs, names, shenzhen, titles)
ICD10 = re.compile(r"^[A-Z]\d{2}(\.\d{1,2})?$")
CJK = re.compile(r"^[\u4e00-\u9fff]+$")


def duplicates(values) -> list:
    return [v for v, n in Counter(values).items() if n > 1]


# -- purity ------------------------------------------------------------------------------
@pytest.mark.parametrize("module", DATA_MODULES, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_data_modules_import_only_the_standard_library(module) -> None:
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            imported.add((node.module or "").split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


# -- names -------------------------------------------------------------------------------
def test_surnames_are_unique_with_positive_weights() -> None:
    surnames = [s for s, _ in names.SURNAMES]
    assert not duplicates(surnames)
    assert len(surnames) >= 100
    assert all(CJK.match(s) and len(s) in (1, 2) for s in surnames)
    assert all(isinstance(w, int) and w > 0 for _, w in names.SURNAMES)
    assert {"王", "李", "张", "刘", "陈"} <= set(surnames)
    compound = [s for s in surnames if len(s) == 2]
    assert {"欧阳", "司马"} <= set(compound)
    weight = dict(names.SURNAMES)
    assert max(weight[s] for s in compound) < min(weight[s] for s in ("王", "李", "张"))


def test_given_name_characters() -> None:
    pools = (names.GIVEN_NAME_CHARS_MALE, names.GIVEN_NAME_CHARS_FEMALE, names.GIVEN_NAME_CHARS_NEUTRAL)
    for pool in pools:
        assert len(pool) >= 60
        assert not duplicates(pool)
        assert all(len(c) == 1 and CJK.match(c) for c in pool)
    male, female, neutral = map(set, pools)
    assert not (male & female) and not (male & neutral) and not (female & neutral)


# -- departments -------------------------------------------------------------------------
def test_departments() -> None:
    codes = [d.code for d in departments.DEPARTMENTS]
    assert not duplicates(codes)
    assert not duplicates(d.name for d in departments.DEPARTMENTS)
    for d in departments.DEPARTMENTS:
        assert re.fullmatch(r"[A-Z]{2,6}", d.code), d.code
        assert d.kind in departments.DEPARTMENT_KINDS, d
        assert CJK.match(d.name) and len(d.name) <= 60, d
        if d.parent_code is not None:
            assert d.parent_code in codes and d.parent_code != d.code, d
    assert {d.kind for d in departments.DEPARTMENTS} == set(departments.DEPARTMENT_KINDS)
    assert sum(d.kind == "clinical" for d in departments.DEPARTMENTS) >= 20
    first_admin = next(d for d in departments.DEPARTMENTS if d.kind == "administrative")
    assert first_admin.name == "互联网医院办公室"


# -- titles ------------------------------------------------------------------------------
def test_titles() -> None:
    assert titles.TITLES == titles.DOCTOR_TITLES + titles.PHARMACIST_TITLES + titles.NURSE_TITLES
    assert not duplicates(t.name for t in titles.TITLES)
    for role in titles.ROLES:
        listed = [t for t in titles.TITLES if t.role == role]
        assert [t.rank for t in listed] == list(range(1, len(listed) + 1)), role  # junior first
        assert all(0 <= t.min_years <= t.max_years <= 45 for t in listed)
        assert [t.min_years for t in listed] == sorted(t.min_years for t in listed)
        assert all(len(t.name) <= 20 for t in listed)
    assert {t.role for t in titles.TITLES} == set(titles.ROLES)
    assert [t.name for t in titles.DOCTOR_TITLES] == ["住院医师", "主治医师", "副主任医师", "主任医师"]
    assert len(titles.PHARMACIST_TITLES) == len(titles.NURSE_TITLES) == 5


# -- diagnoses ---------------------------------------------------------------------------
def test_diagnoses() -> None:
    codes = [d.icd10 for d in diagnoses.DIAGNOSES]
    assert not duplicates(codes)
    assert len(codes) >= 60
    clinical = {d.code for d in departments.DEPARTMENTS if d.kind == "clinical"}
    for d in diagnoses.DIAGNOSES:
        assert ICD10.match(d.icd10), d
        assert d.department_code in clinical, d
        assert d.name and len(d.name) <= 60
        assert isinstance(d.chronic, bool)
    assert sum(d.chronic for d in diagnoses.DIAGNOSES) >= 40
    assert {"I10", "E11.9", "J45.9", "K21.0", "N18.3", "M81.0", "F32.9", "G40.9", "I25.1", "E78.5", "M10.9",
            "J44.9", "K29.5", "E03.9", "I48"} <= set(codes)


def test_every_leaf_clinical_department_has_a_diagnosis() -> None:
    parents = {d.parent_code for d in departments.DEPARTMENTS if d.parent_code}
    leaves = {d.code for d in departments.DEPARTMENTS if d.kind == "clinical" and d.code not in parents}
    covered = {d.department_code for d in diagnoses.DIAGNOSES}
    assert leaves <= covered, leaves - covered


# -- drugs -------------------------------------------------------------------------------
def test_drugs_are_well_formed() -> None:
    catalogue = drugs.DRUGS
    assert not duplicates(d.code for d in catalogue)
    assert not duplicates((d.generic_name, d.specification) for d in catalogue)
    assert len(catalogue) >= 80
    categories = {c for c, _ in drugs.CATEGORIES}
    classes = {c for c, _ in drugs.CONTROL_CLASSES}
    icd = {d.icd10 for d in diagnoses.DIAGNOSES}
    for d in catalogue:
        assert re.fullmatch(r"D\d{4}", d.code), d.code
        assert d.category in categories, d
        assert d.control_class in classes, d
        assert d.dosage_form in drugs.DOSAGE_FORMS, d
        assert d.unit in drugs.UNITS, d
        assert type(d.price_fen) is int and d.price_fen > 0, d
        assert type(d.prescription_only) is bool
        assert d.indications and set(d.indications) <= icd, (d.code, set(d.indications) - icd)
        assert not duplicates(d.indications)
        assert len(d.generic_name) <= 80 and len(d.specification) <= 80
        assert d.trade_name is None or 0 < len(d.trade_name) <= 80
        if d.control_class != "none":
            assert d.prescription_only, f"{d.code} is controlled but not prescription-only"
        if d.category == "herbal_pieces":
            assert d.unit == "克" and d.dosage_form == "饮片", d


def test_every_control_class_except_radioactive_is_present() -> None:
    present = Counter(d.control_class for d in drugs.DRUGS)
    expected = {c for c, _ in drugs.CONTROL_CLASSES} - {"radioactive"}
    assert expected <= set(present), expected - set(present)
    assert sum(n for c, n in present.items() if c != "none") >= 6


@pytest.mark.parametrize(("fragment", "control_class"), [
    ("吗啡", "narcotic"), ("芬太尼", "narcotic"), ("盐酸羟考酮", "narcotic"), ("哌甲酯", "psychotropic_1"),
    ("艾司唑仑", "psychotropic_2"), ("地西泮", "psychotropic_2"), ("阿普唑仑", "psychotropic_2"),
    ("唑吡坦", "psychotropic_2"), ("曲马多", "psychotropic_2"), ("氨酚羟考酮", "psychotropic_2"),
    ("麻黄碱", "precursor"), ("麦角新碱", "precursor"), ("肉毒毒素", "toxic"),
])
def test_controlled_drugs_have_the_regulatory_class(fragment: str, control_class: str) -> None:
    matching = [d for d in drugs.DRUGS if d.generic_name.startswith(fragment) or fragment in d.generic_name]
    if fragment == "盐酸羟考酮":  # not the 5 mg compound, which is 第二类精神药品
        matching = [d for d in matching if "氨酚" not in d.generic_name]
    assert matching, fragment
    assert {d.control_class for d in matching} == {control_class}, [(d.generic_name, d.control_class) for d in matching]


def test_every_category_is_present() -> None:
    assert {d.category for d in drugs.DRUGS} == {c for c, _ in drugs.CATEGORIES}
    assert any(not d.prescription_only for d in drugs.DRUGS)  # some OTC


# -- Shenzhen ----------------------------------------------------------------------------
def test_districts() -> None:
    codes = [d.code for d in shenzhen.DISTRICTS]
    assert not duplicates(codes)
    assert not duplicates(d.name for d in shenzhen.DISTRICTS)
    assert {"440303", "440304", "440305", "440306", "440307", "440308", "440309", "440310", "440311"} <= set(codes)
    expected = {"福田区", "罗湖区", "南山区", "盐田区", "宝安区", "龙岗区", "龙华区", "坪山区", "光明区", "大鹏新区"}
    assert {d.name for d in shenzhen.DISTRICTS} == expected
    for d in shenzhen.DISTRICTS:
        assert d.code[:6].isdigit() and d.code.startswith("4403") and len(d.code) <= 20, d.code
        assert len(d.streets) >= 3, d.name


def test_streets() -> None:
    all_streets = [s.name for d in shenzhen.DISTRICTS for s in d.streets]
    assert not duplicates(all_streets)
    for district in shenzhen.DISTRICTS:
        for s in district.streets:
            assert s.name.endswith("街道") and CJK.match(s.name), s.name
            assert 1 <= len(s.roads) <= 4 and not duplicates(s.roads), s.name
            assert len(s.communities) <= 4 and not duplicates(s.communities), s.name
            assert all(c.endswith("社区") and CJK.match(c) for c in s.communities), s.name
            assert all(CJK.match(r) for r in s.roads), s.name
            lng, lat = s.centre
            assert 113.7 <= lng <= 114.65 and 22.4 <= lat <= 22.9, (s.name, s.centre)


def test_phone_prefixes() -> None:
    prefixes = shenzhen.PHONE_PREFIXES
    assert not duplicates(prefixes)
    assert all(re.fullmatch(r"1[3-9]\d", p) for p in prefixes)
    assert {"139", "138", "186", "189", "133", "199"} <= set(prefixes)
