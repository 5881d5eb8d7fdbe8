"""Departments (科室) of a Chinese general (综合) university hospital.

Names follow the usual forms of the 《医疗机构诊疗科目名录》 and of large
teaching hospitals in Guangdong; codes are short ASCII mnemonics used only
inside the demo. ``parent_code`` expresses the one real hierarchy kept here:
妇科 and 产科 are wards of 妇产科.

``kind``:
    clinical            临床科室 (may offer online follow-up visits)
    medical_technology  医技科室
    pharmacy            药学部门
    nursing             护理部门
    administrative      职能部门

Order matters to the demo generator: the first administrative department is
the internet hospital office, where operations and customer-service staff sit.
"""

from __future__ import annotations

from dataclasses import dataclass

DEPARTMENT_KINDS: tuple[str, ...] = ("clinical", "medical_technology", "pharmacy", "nursing", "administrative")


@dataclass(frozen=True, slots=True)
class Department:
    code: str
    name: str
    kind: str
    parent_code: str | None = None


DEPARTMENTS: tuple[Department, ...] = (
    # -- 内科系统 ------------------------------------------------------------------------
    Department("CARD", "心血管内科", "clinical"),
    Department("ENDO", "内分泌科", "clinical"),
    Department("RESP", "呼吸与危重症医学科", "clinical"),
    Department("GAST", "消化内科", "clinical"),
    Department("NEUR", "神经内科", "clinical"),
    Department("NEPH", "肾内科", "clinical"),
    Department("RHEU", "风湿免疫科", "clinical"),
    Department("HEMA", "血液内科", "clinical"),
    Department("GERI", "老年医学科", "clinical"),
    Department("GENP", "全科医学科", "clinical"),
    # -- 外科系统 ------------------------------------------------------------------------
    Department("GSUR", "普通外科", "clinical"),
    Department("ORTH", "骨科", "clinical"),
    Department("UROL", "泌尿外科", "clinical"),
    # -- 妇儿 ----------------------------------------------------------------------------
    Department("OBGY", "妇产科", "clinical"),
    Department("GYNE", "妇科", "clinical", "OBGY"),
    Department("OBST", "产科", "clinical", "OBGY"),
    Department("PEDI", "儿科", "clinical"),
    # -- 五官、皮肤 ----------------------------------------------------------------------
    Department("OPHT", "眼科", "clinical"),
    Department("ENT", "耳鼻咽喉头颈外科", "clinical"),
    Department("DERM", "皮肤科", "clinical"),
    Department("STOM", "口腔科", "clinical"),
    # -- 其他临床 ------------------------------------------------------------------------
    Department("TCM", "中医科", "clinical"),
    Department("PSYC", "精神心理科", "clinical"),
    Department("ONCO", "肿瘤科", "clinical"),
    Department("REHA", "康复医学科", "clinical"),
    Department("EMER", "急诊科", "clinical"),
    # -- 医技 ----------------------------------------------------------------------------
    Department("LAB", "检验科", "medical_technology"),
    Department("RADI", "医学影像科", "medical_technology"),
    Department("ULTR", "超声科", "medical_technology"),
    Department("PATH", "病理科", "medical_technology"),
    # -- 药学、护理、职能 ----------------------------------------------------------------
    Department("PHAR", "药学部", "pharmacy"),
    Department("NURS", "护理部", "nursing"),
    Department("IHO", "互联网医院办公室", "administrative"),
    Department("MEDA", "医务部", "administrative"),
)
