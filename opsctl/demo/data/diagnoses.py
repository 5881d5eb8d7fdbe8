"""Common chronic and everyday diagnoses with ICD-10 codes.

Codes are WHO ICD-10 category (3-character) or subcategory (4-character)
codes, which are also the first characters of the codes of the Chinese
national clinical edition (国家临床版 2.0, e.g. ``I10.x00``) and of GB/T 14396;
the extension digits of the national edition are deliberately not invented
here. Two notes:

* ``I48`` is used without a fourth character, as in the Chinese editions
  (WHO added I48.0–I48.9 in its 2016 update).
* ``M54.5`` is WHO's "low back pain" (ICD-10-CM, the US variant, split it).

Names are the usual Chinese clinical names, which may be shorter than the
classification titles (e.g. ``I25.1`` 动脉粥样硬化性心脏病 → 冠状动脉粥样硬化性心脏病).

``department_code`` refers to ``departments.DEPARTMENTS``. ``chronic`` marks
long-term conditions managed by follow-up visits (复诊), the kind an internet
hospital may prescribe for; acute conditions are ``False``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Diagnosis:
    icd10: str
    name: str
    department_code: str
    chronic: bool


DIAGNOSES: tuple[Diagnosis, ...] = (
    # -- 心血管内科 ----------------------------------------------------------------------
    Diagnosis("I10", "原发性高血压", "CARD", True),
    Diagnosis("I25.1", "冠状动脉粥样硬化性心脏病", "CARD", True),
    Diagnosis("I20.9", "心绞痛", "CARD", True),
    Diagnosis("I48", "心房颤动", "CARD", True),
    Diagnosis("I50.9", "心力衰竭", "CARD", True),
    # -- 内分泌科 ------------------------------------------------------------------------
    Diagnosis("E11.9", "2型糖尿病", "ENDO", True),
    Diagnosis("E11.4", "2型糖尿病伴神经并发症", "ENDO", True),
    Diagnosis("E10.9", "1型糖尿病", "ENDO", True),
    Diagnosis("E03.9", "甲状腺功能减退症", "ENDO", True),
    Diagnosis("E05.0", "毒性弥漫性甲状腺肿（Graves病）", "ENDO", True),
    Diagnosis("E78.5", "高脂血症", "ENDO", True),
    Diagnosis("E78.0", "纯高胆固醇血症", "ENDO", True),
    Diagnosis("E66.9", "肥胖症", "ENDO", True),
    Diagnosis("E79.0", "高尿酸血症", "ENDO", True),
    Diagnosis("M81.0", "绝经后骨质疏松", "ENDO", True),
    # -- 呼吸与危重症医学科 --------------------------------------------------------------
    Diagnosis("J45.9", "支气管哮喘", "RESP", True),
    Diagnosis("J44.9", "慢性阻塞性肺疾病", "RESP", True),
    Diagnosis("G47.3", "睡眠呼吸暂停", "RESP", True),
    Diagnosis("J20.9", "急性支气管炎", "RESP", False),
    Diagnosis("J18.9", "肺炎", "RESP", False),
    # -- 消化内科 ------------------------------------------------------------------------
    Diagnosis("K21.0", "反流性食管炎", "GAST", True),
    Diagnosis("K21.9", "胃食管反流病", "GAST", True),
    Diagnosis("K29.5", "慢性胃炎", "GAST", True),
    Diagnosis("K30", "功能性消化不良", "GAST", True),
    Diagnosis("K59.0", "便秘", "GAST", True),
    Diagnosis("K76.0", "非酒精性脂肪性肝病", "GAST", True),
    Diagnosis("B18.1", "慢性乙型病毒性肝炎", "GAST", True),
    Diagnosis("K25.9", "胃溃疡", "GAST", False),
    # -- 神经内科 ------------------------------------------------------------------------
    Diagnosis("G40.9", "癫痫", "NEUR", True),
    Diagnosis("G43.9", "偏头痛", "NEUR", True),
    Diagnosis("G20", "帕金森病", "NEUR", True),
    Diagnosis("I69.3", "脑梗死后遗症", "NEUR", True),
    Diagnosis("G47.0", "失眠症", "NEUR", True),
    Diagnosis("G24.5", "眼睑痉挛", "NEUR", True),
    # -- 肾内科 --------------------------------------------------------------------------
    Diagnosis("N18.3", "慢性肾脏病3期", "NEPH", True),
    Diagnosis("N18.4", "慢性肾脏病4期", "NEPH", True),
    Diagnosis("E11.2", "2型糖尿病伴肾脏并发症", "NEPH", True),
    Diagnosis("N03.9", "慢性肾炎综合征", "NEPH", True),
    Diagnosis("N04.9", "肾病综合征", "NEPH", True),
    # -- 风湿免疫科 ----------------------------------------------------------------------
    Diagnosis("M06.9", "类风湿关节炎", "RHEU", True),
    Diagnosis("M10.9", "痛风", "RHEU", True),
    Diagnosis("M32.9", "系统性红斑狼疮", "RHEU", True),
    Diagnosis("M45", "强直性脊柱炎", "RHEU", True),
    Diagnosis("M35.0", "干燥综合征", "RHEU", True),
    # -- 血液内科 ------------------------------------------------------------------------
    Diagnosis("D50.9", "缺铁性贫血", "HEMA", False),
    # -- 老年医学科 ----------------------------------------------------------------------
    Diagnosis("G30.9", "阿尔茨海默病", "GERI", True),
    Diagnosis("M81.9", "骨质疏松", "GERI", True),
    Diagnosis("I95.1", "直立性低血压", "GERI", True),
    # -- 全科医学科 ----------------------------------------------------------------------
    Diagnosis("J06.9", "急性上呼吸道感染", "GENP", False),
    Diagnosis("J11.1", "流行性感冒", "GENP", False),
    # -- 普通外科 ------------------------------------------------------------------------
    Diagnosis("E04.1", "甲状腺结节", "GSUR", True),
    Diagnosis("K80.2", "胆囊结石", "GSUR", True),
    Diagnosis("K40.9", "腹股沟疝", "GSUR", False),
    # -- 骨科 ----------------------------------------------------------------------------
    Diagnosis("M17.9", "膝关节骨关节炎", "ORTH", True),
    Diagnosis("M51.2", "腰椎间盘突出症", "ORTH", True),
    # -- 康复医学科 ----------------------------------------------------------------------
    Diagnosis("M75.0", "肩周炎", "REHA", True),
    Diagnosis("M54.5", "腰痛", "REHA", False),
    # -- 泌尿外科 ------------------------------------------------------------------------
    Diagnosis("N40", "前列腺增生", "UROL", True),
    Diagnosis("N20.0", "肾结石", "UROL", False),
    Diagnosis("N39.0", "泌尿道感染", "UROL", False),
    # -- 妇科 ----------------------------------------------------------------------------
    Diagnosis("N95.1", "围绝经期综合征", "GYNE", True),
    Diagnosis("E28.2", "多囊卵巢综合征", "GYNE", True),
    Diagnosis("D25.9", "子宫平滑肌瘤", "GYNE", True),
    Diagnosis("N94.6", "痛经", "GYNE", False),
    Diagnosis("N76.0", "急性阴道炎", "GYNE", False),
    # -- 产科 ----------------------------------------------------------------------------
    Diagnosis("O24.4", "妊娠期糖尿病", "OBST", False),
    Diagnosis("O13", "妊娠期高血压", "OBST", False),
    Diagnosis("O72.1", "产后出血", "OBST", False),
    # -- 儿科 ----------------------------------------------------------------------------
    Diagnosis("J02.9", "急性咽炎", "PEDI", False),
    Diagnosis("J21.9", "急性细支气管炎", "PEDI", False),
    Diagnosis("A08.4", "病毒性肠炎", "PEDI", False),
    # -- 眼科 ----------------------------------------------------------------------------
    Diagnosis("H52.1", "近视", "OPHT", True),
    Diagnosis("H40.9", "青光眼", "OPHT", True),
    Diagnosis("H25.9", "老年性白内障", "OPHT", True),
    Diagnosis("H04.1", "干眼症", "OPHT", True),
    Diagnosis("H10.9", "结膜炎", "OPHT", False),
    # -- 耳鼻咽喉头颈外科 ----------------------------------------------------------------
    Diagnosis("J30.4", "变应性鼻炎", "ENT", True),
    Diagnosis("J32.9", "慢性鼻窦炎", "ENT", True),
    Diagnosis("J31.2", "慢性咽炎", "ENT", True),
    Diagnosis("H81.1", "良性阵发性位置性眩晕", "ENT", False),
    Diagnosis("J03.9", "急性扁桃体炎", "ENT", False),
    # -- 皮肤科 --------------------------------------------------------------------------
    Diagnosis("L20.9", "特应性皮炎", "DERM", True),
    Diagnosis("L40.0", "寻常型银屑病", "DERM", True),
    Diagnosis("L50.8", "慢性荨麻疹", "DERM", True),
    Diagnosis("L70.0", "寻常痤疮", "DERM", True),
    Diagnosis("L30.9", "湿疹", "DERM", False),
    Diagnosis("B35.3", "足癣", "DERM", False),
    # -- 口腔科 --------------------------------------------------------------------------
    Diagnosis("K05.1", "慢性牙龈炎", "STOM", True),
    Diagnosis("K12.0", "复发性口腔溃疡", "STOM", True),
    Diagnosis("K02.1", "牙本质龋", "STOM", False),
    # -- 中医科（西医诊断编码；中医病证另有 GB/T 15657 编码，此处不用）-------------------
    Diagnosis("R53", "乏力", "TCM", False),
    Diagnosis("R42", "头晕", "TCM", False),
    # -- 精神心理科 ----------------------------------------------------------------------
    Diagnosis("F32.9", "抑郁发作", "PSYC", True),
    Diagnosis("F41.1", "广泛性焦虑障碍", "PSYC", True),
    Diagnosis("F51.0", "非器质性失眠症", "PSYC", True),
    Diagnosis("F90.0", "注意缺陷多动障碍", "PSYC", True),
    Diagnosis("F20.9", "精神分裂症", "PSYC", True),
    # -- 肿瘤科 --------------------------------------------------------------------------
    Diagnosis("C34.9", "肺恶性肿瘤", "ONCO", True),
    Diagnosis("C50.9", "乳腺恶性肿瘤", "ONCO", True),
    Diagnosis("C16.9", "胃恶性肿瘤", "ONCO", True),
    Diagnosis("R52.1", "慢性顽固性疼痛", "ONCO", True),
    # -- 急诊科 --------------------------------------------------------------------------
    Diagnosis("R10.4", "腹痛", "EMER", False),
    Diagnosis("R50.9", "发热", "EMER", False),
    Diagnosis("I95.9", "低血压", "EMER", False),
)
