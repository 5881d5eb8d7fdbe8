"""The demo hospital's drug catalogue (药品目录), mostly chronic-disease medicines.

``price_fen`` is an approximate retail price in fen (分) per dispensing
``unit`` (per 克 for 中药饮片), at the levels usual since national volume-based
procurement (国家集采) and medical-insurance price negotiation (医保谈判).
Prices are illustrative demo values, not a price list.

``control_class`` follows Chinese regulation:

* narcotic        麻醉药品 (麻醉药品和精神药品品种目录 2013 and later announcements)
* psychotropic_1  第一类精神药品
* psychotropic_2  第二类精神药品. Includes 曲马多 (since 2008), 唑吡坦, the
  benzodiazepines, and compound oral solids with ≤5 mg oxycodone base per
  unit such as 氨酚羟考酮片 (NMPA/MPS/NHC announcement 2019 No. 63, in force
  2019-09-01; >5 mg → 第一类精神药品; single-ingredient 羟考酮 stays 麻醉药品).
* toxic           医疗用毒性药品 (《医疗用毒性药品管理办法》 1988; A型肉毒毒素及其制剂
  added in 2008)
* radioactive     放射性药品 (none in this catalogue: an internet hospital never
  dispenses them)
* precursor       药品类易制毒化学品 (《药品类易制毒化学品管理办法》 2010: the raw
  materials and their single-ingredient preparations, e.g. 麻黄碱, 麦角新碱)

``prescription_only`` is False only for over-the-counter (OTC) products.
``indications`` are ICD-10 codes from ``diagnoses.DIAGNOSES``, limited to
labelled indications.
"""

from __future__ import annotations

from dataclasses import dataclass

CATEGORIES: tuple[tuple[str, str], ...] = (
    ("western", "西药"),
    ("chinese_patent", "中成药"),
    ("herbal_pieces", "中药饮片"),
)

CONTROL_CLASSES: tuple[tuple[str, str], ...] = (
    ("none", "普通药品"),
    ("narcotic", "麻醉药品"),
    ("psychotropic_1", "第一类精神药品"),
    ("psychotropic_2", "第二类精神药品"),
    ("toxic", "医疗用毒性药品"),
    ("radioactive", "放射性药品"),
    ("precursor", "药品类易制毒化学品"),
)

DOSAGE_FORMS: tuple[str, ...] = (
    "片剂", "胶囊剂", "颗粒剂", "散剂", "丸剂", "滴丸剂", "注射液", "注射用无菌粉末", "吸入粉雾剂",
    "吸入气雾剂", "鼻喷雾剂", "滴眼剂", "乳膏剂", "软膏剂", "凝胶剂", "贴剂", "饮片",
)

UNITS: tuple[str, ...] = ("盒", "瓶", "支", "克")


@dataclass(frozen=True, slots=True)
class Drug:
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
    indications: tuple[str, ...]


DRUGS: tuple[Drug, ...] = (
    # -- 降压、心血管 --------------------------------------------------------------------
    Drug("D0001", "苯磺酸氨氯地平片", None, "5mg×28片", "片剂", "盒", 450,
         "western", "none", True, ("I10", "I20.9")),
    Drug("D0002", "硝苯地平控释片", None, "30mg×14片", "片剂", "盒", 1260,
         "western", "none", True, ("I10", "I20.9")),
    Drug("D0003", "缬沙坦胶囊", None, "80mg×28粒", "胶囊剂", "盒", 680,
         "western", "none", True, ("I10", "I50.9")),
    Drug("D0004", "厄贝沙坦片", None, "0.15g×28片", "片剂", "盒", 590,
         "western", "none", True, ("I10", "E11.2")),
    Drug("D0005", "培哚普利叔丁胺片", None, "4mg×30片", "片剂", "盒", 1800,
         "western", "none", True, ("I10", "I25.1", "I50.9")),
    Drug("D0006", "琥珀酸美托洛尔缓释片", None, "47.5mg×28片", "片剂", "盒", 1260,
         "western", "none", True, ("I10", "I20.9", "I50.9")),
    Drug("D0007", "氢氯噻嗪片", None, "25mg×100片", "片剂", "瓶", 350,
         "western", "none", True, ("I10", "I50.9")),
    Drug("D0008", "螺内酯片", None, "20mg×100片", "片剂", "瓶", 600,
         "western", "none", True, ("I50.9", "I10")),
    Drug("D0009", "沙库巴曲缬沙坦钠片", "诺欣妥", "100mg×14片", "片剂", "盒", 7420,
         "western", "none", True, ("I50.9", "I10")),
    Drug("D0010", "单硝酸异山梨酯缓释片", None, "40mg×14片", "片剂", "盒", 1100,
         "western", "none", True, ("I20.9", "I25.1")),
    Drug("D0011", "阿司匹林肠溶片", None, "100mg×30片", "片剂", "盒", 150,
         "western", "none", True, ("I25.1", "I20.9", "I69.3")),
    Drug("D0012", "硫酸氢氯吡格雷片", None, "75mg×28片", "片剂", "盒", 980,
         "western", "none", True, ("I25.1", "I20.9", "I69.3")),
    Drug("D0013", "利伐沙班片", None, "20mg×14片", "片剂", "盒", 2500,
         "western", "none", True, ("I48",)),
    Drug("D0014", "华法林钠片", None, "2.5mg×60片", "片剂", "瓶", 1400,
         "western", "none", True, ("I48",)),
    Drug("D0015", "地高辛片", None, "0.25mg×100片", "片剂", "瓶", 1500,
         "western", "none", True, ("I50.9", "I48")),
    # -- 调脂 ----------------------------------------------------------------------------
    Drug("D0016", "阿托伐他汀钙片", None, "20mg×28片", "片剂", "盒", 560,
         "western", "none", True, ("E78.5", "E78.0", "I25.1")),
    Drug("D0017", "瑞舒伐他汀钙片", None, "10mg×28片", "片剂", "盒", 430,
         "western", "none", True, ("E78.5", "E78.0", "I25.1")),
    Drug("D0018", "依折麦布片", None, "10mg×10片", "片剂", "盒", 800,
         "western", "none", True, ("E78.0", "E78.5")),
    # -- 降糖 ----------------------------------------------------------------------------
    Drug("D0019", "盐酸二甲双胍片", None, "0.5g×60片", "片剂", "盒", 240,
         "western", "none", True, ("E11.9", "E11.4")),
    Drug("D0020", "格列美脲片", None, "2mg×30片", "片剂", "盒", 500,
         "western", "none", True, ("E11.9",)),
    Drug("D0021", "阿卡波糖片", None, "50mg×30片", "片剂", "盒", 690,
         "western", "none", True, ("E11.9",)),
    Drug("D0022", "磷酸西格列汀片", None, "100mg×14片", "片剂", "盒", 980,
         "western", "none", True, ("E11.9",)),
    Drug("D0023", "达格列净片", None, "10mg×14片", "片剂", "盒", 1200,
         "western", "none", True, ("E11.9", "I50.9", "N18.3")),
    Drug("D0024", "甘精胰岛素注射液", None, "3ml:300单位（预填充注射笔）", "注射液", "支", 7200,
         "western", "none", True, ("E11.9", "E10.9")),
    Drug("D0025", "门冬胰岛素注射液", None, "3ml:300单位（笔芯）", "注射液", "支", 3800,
         "western", "none", True, ("E10.9", "E11.9", "O24.4")),
    # -- 甲状腺 --------------------------------------------------------------------------
    Drug("D0026", "左甲状腺素钠片", "优甲乐", "50μg×100片", "片剂", "盒", 2650,
         "western", "none", True, ("E03.9",)),
    Drug("D0027", "甲巯咪唑片", None, "10mg×50片", "片剂", "盒", 2800,
         "western", "none", True, ("E05.0",)),
    # -- 呼吸 ----------------------------------------------------------------------------
    Drug("D0028", "布地奈德福莫特罗吸入粉雾剂（Ⅱ）", "信必可都保", "160μg/4.5μg×60吸", "吸入粉雾剂", "支", 15800,
         "western", "none", True, ("J45.9", "J44.9")),
    Drug("D0029", "沙美特罗替卡松吸入粉雾剂", "舒利迭", "50μg/250μg×60泡", "吸入粉雾剂", "盒", 13800,
         "western", "none", True, ("J45.9", "J44.9")),
    Drug("D0030", "噻托溴铵吸入粉雾剂", None, "18μg×30粒", "吸入粉雾剂", "盒", 6800,
         "western", "none", True, ("J44.9",)),
    Drug("D0031", "硫酸沙丁胺醇吸入气雾剂", "万托林", "100μg×200揿", "吸入气雾剂", "支", 2450,
         "western", "none", True, ("J45.9", "J44.9")),
    Drug("D0032", "孟鲁司特钠片", None, "10mg×14片", "片剂", "盒", 980,
         "western", "none", True, ("J45.9", "J30.4")),
    Drug("D0033", "盐酸氨溴索片", None, "30mg×20片", "片剂", "盒", 350,
         "western", "none", True, ("J20.9", "J44.9", "J18.9")),
    # -- 抗感染 --------------------------------------------------------------------------
    Drug("D0034", "阿莫西林胶囊", None, "0.25g×24粒", "胶囊剂", "盒", 450,
         "western", "none", True, ("J03.9", "J18.9")),
    Drug("D0035", "头孢呋辛酯片", None, "0.25g×12片", "片剂", "盒", 980,
         "western", "none", True, ("J03.9", "J18.9", "N39.0")),
    Drug("D0036", "左氧氟沙星片", None, "0.5g×4片", "片剂", "盒", 450,
         "western", "none", True, ("N39.0", "J18.9")),
    Drug("D0037", "阿奇霉素片", None, "0.25g×6片", "片剂", "盒", 680,
         "western", "none", True, ("J18.9", "J03.9")),
    Drug("D0038", "磷酸奥司他韦胶囊", None, "75mg×10粒", "胶囊剂", "盒", 2800,
         "western", "none", True, ("J11.1",)),
    # -- 解热镇痛（非处方）--------------------------------------------------------------
    Drug("D0039", "对乙酰氨基酚片", None, "0.5g×12片", "片剂", "盒", 300,
         "western", "none", False, ("R50.9", "J06.9")),
    Drug("D0040", "布洛芬缓释胶囊", None, "0.3g×20粒", "胶囊剂", "盒", 1500,
         "western", "none", False, ("R50.9", "M54.5", "N94.6")),
    # -- 消化 ----------------------------------------------------------------------------
    Drug("D0041", "奥美拉唑肠溶胶囊", None, "20mg×14粒", "胶囊剂", "盒", 350,
         "western", "none", True, ("K21.0", "K25.9")),
    Drug("D0042", "雷贝拉唑钠肠溶片", None, "10mg×14片", "片剂", "盒", 720,
         "western", "none", True, ("K21.0", "K21.9", "K25.9")),
    Drug("D0043", "枸橼酸莫沙必利片", None, "5mg×24片", "片剂", "盒", 1100,
         "western", "none", True, ("K30", "K29.5")),
    Drug("D0044", "铝碳酸镁咀嚼片", "达喜", "0.5g×20片", "片剂", "盒", 2380,
         "western", "none", False, ("K29.5", "K21.9", "K25.9")),
    Drug("D0045", "恩替卡韦片", None, "0.5mg×28片", "片剂", "盒", 600,
         "western", "none", True, ("B18.1",)),
    Drug("D0046", "蒙脱石散", None, "3g×10袋", "散剂", "盒", 1200,
         "western", "none", False, ("A08.4",)),
    # -- 痛风、骨代谢 --------------------------------------------------------------------
    Drug("D0047", "非布司他片", None, "40mg×16片", "片剂", "盒", 1100,
         "western", "none", True, ("M10.9",)),
    Drug("D0048", "别嘌醇片", None, "0.1g×100片", "片剂", "瓶", 800,
         "western", "none", True, ("M10.9", "E79.0")),
    Drug("D0049", "秋水仙碱片", None, "0.5mg×20片", "片剂", "盒", 880,
         "western", "none", True, ("M10.9",)),
    Drug("D0050", "苯溴马隆片", None, "50mg×10片", "片剂", "盒", 600,
         "western", "none", True, ("M10.9", "E79.0")),
    Drug("D0051", "阿仑膦酸钠片", None, "70mg×4片", "片剂", "盒", 1500,
         "western", "none", True, ("M81.0", "M81.9")),
    Drug("D0052", "碳酸钙D3片", "钙尔奇", "每片含钙600mg、维生素D3 125国际单位×60片", "片剂", "瓶", 3900,
         "western", "none", False, ("M81.0", "M81.9")),
    Drug("D0053", "骨化三醇软胶囊", "罗盖全", "0.25μg×10粒", "胶囊剂", "盒", 3200,
         "western", "none", True, ("M81.0", "M81.9", "N18.4")),
    # -- 神经、精神（非管制）------------------------------------------------------------
    Drug("D0054", "盐酸舍曲林片", None, "50mg×14片", "片剂", "盒", 1400,
         "western", "none", True, ("F32.9",)),
    Drug("D0055", "草酸艾司西酞普兰片", None, "10mg×14片", "片剂", "盒", 1500,
         "western", "none", True, ("F32.9",)),
    Drug("D0056", "丙戊酸钠缓释片", "德巴金", "0.5g×30片", "片剂", "盒", 5600,
         "western", "none", True, ("G40.9",)),
    Drug("D0057", "左乙拉西坦片", None, "0.5g×30片", "片剂", "盒", 1900,
         "western", "none", True, ("G40.9",)),
    Drug("D0058", "奥氮平片", None, "5mg×28片", "片剂", "盒", 1500,
         "western", "none", True, ("F20.9",)),
    Drug("D0059", "多巴丝肼片", "美多芭", "0.25g（左旋多巴0.2g/苄丝肼0.05g）×40片", "片剂", "瓶", 7600,
         "western", "none", True, ("G20",)),
    Drug("D0060", "盐酸多奈哌齐片", None, "5mg×14片", "片剂", "盒", 1100,
         "western", "none", True, ("G30.9",)),
    Drug("D0061", "盐酸氟桂利嗪胶囊", None, "5mg×20粒", "胶囊剂", "盒", 350,
         "western", "none", True, ("G43.9", "R42")),
    Drug("D0062", "甲钴胺片", None, "0.5mg×20片", "片剂", "盒", 1200,
         "western", "none", True, ("E11.4",)),
    # -- 泌尿 ----------------------------------------------------------------------------
    Drug("D0063", "盐酸坦索罗辛缓释胶囊", None, "0.2mg×10粒", "胶囊剂", "盒", 600,
         "western", "none", True, ("N40",)),
    Drug("D0064", "非那雄胺片", None, "5mg×10片", "片剂", "盒", 650,
         "western", "none", True, ("N40",)),
    # -- 眼、耳鼻喉、皮肤 ----------------------------------------------------------------
    Drug("D0065", "玻璃酸钠滴眼液", None, "0.1%（5ml:5mg）", "滴眼剂", "支", 2800,
         "western", "none", True, ("H04.1",)),
    Drug("D0066", "拉坦前列素滴眼液", None, "2.5ml:125μg", "滴眼剂", "支", 4500,
         "western", "none", True, ("H40.9",)),
    Drug("D0067", "左氧氟沙星滴眼液", None, "5ml:24.4mg", "滴眼剂", "支", 1500,
         "western", "none", True, ("H10.9",)),
    Drug("D0068", "糠酸莫米松鼻喷雾剂", None, "50μg×60揿", "鼻喷雾剂", "支", 4800,
         "western", "none", True, ("J30.4",)),
    Drug("D0069", "氯雷他定片", None, "10mg×6片", "片剂", "盒", 850,
         "western", "none", False, ("L50.8", "J30.4")),
    Drug("D0070", "卤米松乳膏", "澳能", "10g:5mg", "乳膏剂", "支", 3200,
         "western", "none", True, ("L20.9", "L30.9", "L40.0")),
    Drug("D0071", "他克莫司软膏", "普特彼", "0.1%（10g）", "软膏剂", "支", 8900,
         "western", "none", True, ("L20.9",)),
    Drug("D0072", "阿达帕林凝胶", None, "0.1%（30g）", "凝胶剂", "支", 4600,
         "western", "none", True, ("L70.0",)),
    Drug("D0073", "盐酸特比萘芬乳膏", None, "1%（10g）", "乳膏剂", "支", 1500,
         "western", "none", False, ("B35.3",)),
    # -- 中成药 --------------------------------------------------------------------------
    Drug("D0074", "复方丹参滴丸", None, "27mg×180丸", "滴丸剂", "瓶", 2980,
         "chinese_patent", "none", True, ("I25.1", "I20.9")),
    Drug("D0075", "连花清瘟胶囊", None, "0.35g×24粒", "胶囊剂", "盒", 1480,
         "chinese_patent", "none", True, ("J11.1", "J06.9")),
    Drug("D0076", "六味地黄丸（浓缩丸）", None, "200丸", "丸剂", "瓶", 1200,
         "chinese_patent", "none", False, ("R42", "R53")),
    Drug("D0077", "血府逐瘀胶囊", None, "0.4g×24粒", "胶囊剂", "盒", 2600,
         "chinese_patent", "none", True, ("I20.9",)),
    Drug("D0078", "通心络胶囊", None, "0.26g×30粒", "胶囊剂", "盒", 3200,
         "chinese_patent", "none", True, ("I20.9", "I69.3")),
    Drug("D0079", "麝香保心丸", None, "22.5mg×42丸", "丸剂", "瓶", 3500,
         "chinese_patent", "none", True, ("I20.9",)),
    Drug("D0080", "板蓝根颗粒", None, "10g×20袋", "颗粒剂", "盒", 1500,
         "chinese_patent", "none", False, ("J02.9", "J06.9")),
    # -- 中药饮片（按克计价）------------------------------------------------------------
    Drug("D0081", "黄芪", None, "片", "饮片", "克", 15,
         "herbal_pieces", "none", True, ("R53",)),
    Drug("D0082", "当归", None, "片", "饮片", "克", 35,
         "herbal_pieces", "none", True, ("D50.9", "N94.6")),
    Drug("D0083", "党参", None, "段", "饮片", "克", 28,
         "herbal_pieces", "none", True, ("R53", "K30")),
    Drug("D0084", "茯苓", None, "块", "饮片", "克", 9,
         "herbal_pieces", "none", True, ("K30", "G47.0")),
    Drug("D0085", "炒酸枣仁", None, "炒制", "饮片", "克", 90,
         "herbal_pieces", "none", True, ("F51.0", "G47.0")),
    Drug("D0086", "甘草", None, "片", "饮片", "克", 8,
         "herbal_pieces", "none", True, ("K30",)),
    # -- 麻醉药品 ------------------------------------------------------------------------
    Drug("D0087", "硫酸吗啡缓释片", "美施康定", "30mg×10片", "片剂", "盒", 3580,
         "western", "narcotic", True, ("R52.1", "C34.9", "C50.9", "C16.9")),
    Drug("D0088", "盐酸吗啡注射液", None, "1ml:10mg", "注射液", "支", 420,
         "western", "narcotic", True, ("R52.1",)),
    Drug("D0089", "芬太尼透皮贴剂", "多瑞吉", "4.2mg（25μg/h）×5贴", "贴剂", "盒", 29500,
         "western", "narcotic", True, ("R52.1", "C34.9", "C50.9", "C16.9")),
    Drug("D0090", "盐酸羟考酮缓释片", "奥施康定", "10mg×10片", "片剂", "盒", 6800,
         "western", "narcotic", True, ("R52.1", "C34.9", "C50.9", "C16.9")),
    # -- 第一类精神药品 ------------------------------------------------------------------
    Drug("D0091", "盐酸哌甲酯缓释片", "专注达", "18mg×15片", "片剂", "盒", 19800,
         "western", "psychotropic_1", True, ("F90.0",)),
    # -- 第二类精神药品 ------------------------------------------------------------------
    Drug("D0092", "地西泮片", None, "2.5mg×100片", "片剂", "瓶", 350,
         "western", "psychotropic_2", True, ("F41.1", "F51.0")),
    Drug("D0093", "艾司唑仑片", None, "1mg×20片", "片剂", "盒", 250,
         "western", "psychotropic_2", True, ("F51.0", "G47.0", "F41.1")),
    Drug("D0094", "阿普唑仑片", None, "0.4mg×20片", "片剂", "盒", 300,
         "western", "psychotropic_2", True, ("F41.1", "F51.0")),
    Drug("D0095", "酒石酸唑吡坦片", None, "10mg×20片", "片剂", "盒", 1200,
         "western", "psychotropic_2", True, ("F51.0", "G47.0")),
    Drug("D0096", "氯硝西泮片", None, "2mg×100片", "片剂", "瓶", 2000,
         "western", "psychotropic_2", True, ("G40.9",)),
    Drug("D0097", "盐酸曲马多缓释片", None, "0.1g×10片", "片剂", "盒", 1800,
         "western", "psychotropic_2", True, ("R52.1", "M17.9")),
    Drug("D0098", "氨酚羟考酮片", "泰勒宁", "每片含盐酸羟考酮5mg、对乙酰氨基酚325mg×10片", "片剂", "盒", 2200,
         "western", "psychotropic_2", True, ("R52.1", "M17.9")),
    # -- 医疗用毒性药品 ------------------------------------------------------------------
    Drug("D0099", "注射用A型肉毒毒素", "衡力", "100单位", "注射用无菌粉末", "瓶", 98000,
         "western", "toxic", True, ("G24.5",)),
    # -- 药品类易制毒化学品（单方制剂）--------------------------------------------------
    Drug("D0100", "盐酸麻黄碱注射液", None, "1ml:30mg", "注射液", "支", 300,
         "western", "precursor", True, ("I95.9",)),
    Drug("D0101", "马来酸麦角新碱注射液", None, "1ml:0.2mg", "注射液", "支", 500,
         "western", "precursor", True, ("O72.1",)),
)
