"""Shenzhen districts, sub-district streets (街道), communities, roads; mobile prefixes.

District codes are the GB/T 2260 administrative division codes. 大鹏新区 is a
functional area (功能区), not an administrative district: legally its three
streets belong to 龙岗区 (440307), so it gets the demo-only code
``440307-DP`` whose first six characters are still 龙岗's code (e.g. for
resident ID numbers). 深汕特别合作区 (outside the city's contiguous area) is
left out.

Only a subset of each district's streets is listed. Every community (社区) was
found in public "…街道…社区" addresses (company registrations, public library
branch lists), as were most roads; the rest are well-known trunk roads. A
street's ``communities`` is empty where none could be confirmed. Community
boundaries were redrawn when streets were split in 2016–2018, so a few pairings
may predate the latest adjustment. Roads often cross street boundaries; the
ones listed pass through the street. ``centre`` is an approximate WGS84 (longitude, latitude)
point inside the street, good to a few hundred metres, for maps and distances
in the demo only.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Street:
    name: str
    communities: tuple[str, ...]
    roads: tuple[str, ...]
    centre: tuple[float, float]  # (longitude, latitude), WGS84


@dataclass(frozen=True, slots=True)
class District:
    code: str
    name: str
    streets: tuple[Street, ...]


DISTRICTS: tuple[District, ...] = (
    District("440304", "福田区", (
        Street("福田街道", ("皇岗社区", "水围社区", "岗厦社区", "福安社区"),
               ("益田路", "彩田路", "福华三路", "皇岗路"), (114.065, 22.528)),
        Street("沙头街道", ("上沙社区", "下沙社区", "新洲社区", "天安社区"),
               ("滨河大道", "沙嘴路", "泰然六路"), (114.030, 22.530)),
        Street("华强北街道", ("福强社区", "华红社区", "荔村社区", "华航社区"),
               ("华强北路", "振华路", "深南中路", "燕南路"), (114.086, 22.545)),
        Street("莲花街道", ("莲花北社区", "景田社区", "彩田社区"),
               ("莲花路", "红荔路", "景田北路", "景田南路"), (114.055, 22.560)),
        Street("香蜜湖街道", ("香蜜社区", "侨香社区", "竹林社区", "东海社区"),
               ("香蜜湖路", "侨香路", "香梅路"), (114.018, 22.552)),
        Street("梅林街道", ("上梅社区", "下梅社区", "梅林一村社区", "孖岭社区"),
               ("梅林路", "中康路"), (114.050, 22.575)),
    )),
    District("440303", "罗湖区", (
        Street("桂园街道", ("红村社区",),
               ("深南东路", "红岭中路", "和平路"), (114.112, 22.548)),
        Street("东门街道", ("城东社区", "湖贝社区"),
               ("东门中路", "人民北路", "新园路", "文锦中路"), (114.122, 22.550)),
        Street("南湖街道", ("罗湖社区", "嘉南社区", "向西社区"),
               ("人民南路", "春风路", "嘉宾路", "建设路"), (114.117, 22.538)),
        Street("黄贝街道", ("凤凰社区", "水库社区"),
               ("深南东路", "黄贝路", "罗芳路"), (114.140, 22.550)),
        Street("翠竹街道", ("翠锦社区",),
               ("翠竹路", "东门北路", "贝丽北路", "布心路"), (114.128, 22.565)),
        Street("莲塘街道", ("坳下社区", "鹏兴社区"),
               ("国威路", "罗沙路"), (114.170, 22.560)),
    )),
    District("440305", "南山区", (
        Street("粤海街道", ("科技园社区", "高新区社区", "滨海社区"),
               ("高新南一道", "科技南十二路", "科苑路"), (113.945, 22.530)),
        Street("南头街道", ("田厦社区",),
               ("桃园路", "前海路", "南海大道"), (113.920, 22.545)),
        Street("南山街道", ("荔湾社区", "荔秀社区"),
               ("东滨路", "沿山路", "前海路"), (113.925, 22.515)),
        Street("蛇口街道", (),
               ("望海路", "南海大道"), (113.915, 22.490)),
        Street("沙河街道", ("东方社区", "光华街社区"),
               ("白石路", "侨香路", "深南大道"), (113.980, 22.537)),
        Street("西丽街道", ("西丽社区", "松坪山社区"),
               ("留仙大道", "松白路", "中山园路"), (113.950, 22.590)),
    )),
    District("440308", "盐田区", (
        Street("沙头角街道", ("田心社区", "沙头角社区"),
               ("沙盐路", "深盐路", "中英街"), (114.230, 22.552)),
        Street("海山街道", (),
               ("深盐路", "海景二路", "盐田路"), (114.238, 22.560)),
        Street("盐田街道", (),
               ("北山道", "明珠大道"), (114.260, 22.590)),
        Street("梅沙街道", (),
               ("环梅路", "云华路"), (114.305, 22.600)),
    )),
    District("440306", "宝安区", (
        Street("新安街道", ("甲岸社区", "兴东社区", "洪浪社区"),
               ("宝安大道", "创业一路", "宝民一路"), (113.890, 22.560)),
        Street("西乡街道", ("固戍社区", "盐田社区", "流塘社区"),
               ("西乡大道", "宝源路", "固戍二路"), (113.870, 22.580)),
        Street("航城街道", ("三围社区", "鹤洲社区", "黄麻布社区"),
               ("宝安大道", "洲石路", "航空路"), (113.840, 22.610)),
        Street("福永街道", ("凤凰社区", "兴围社区"),
               ("凤凰大道", "宝安大道"), (113.825, 22.670)),
        Street("沙井街道", ("步涌社区", "后亭社区", "辛养社区"),
               ("沙井路", "新沙路"), (113.830, 22.730)),
        Street("石岩街道", ("塘头社区", "罗租社区", "应人石社区"),
               ("塘头大道", "松白路"), (113.930, 22.680)),
    )),
    District("440307", "龙岗区", (
        Street("龙城街道", ("爱联社区", "嶂背社区"),
               ("龙岗大道", "龙翔大道", "黄阁北路"), (114.245, 22.720)),
        Street("龙岗街道", ("南联社区", "新生社区"),
               ("龙岗路", "深汕路"), (114.280, 22.730)),
        Street("布吉街道", ("文锦社区",),
               ("龙岗大道", "吉华路"), (114.128, 22.605)),
        Street("坂田街道", ("杨美社区", "岗头社区", "马安堂社区"),
               ("五和大道", "坂雪岗大道"), (114.065, 22.630)),
        Street("横岗街道", ("横岗社区", "塘坑社区"),
               ("松柏路", "四联路"), (114.205, 22.645)),
        Street("平湖街道", ("平湖社区", "山厦社区", "白泥坑社区"),
               ("平安大道", "平龙西路"), (114.125, 22.685)),
    )),
    District("440309", "龙华区", (
        Street("民治街道", ("白石龙社区", "新牛社区", "丰润社区"),
               ("民治大道", "民宝路", "新牛路"), (114.040, 22.620)),
        Street("龙华街道", ("三联社区", "清湖社区", "富康社区"),
               ("人民路", "清湖路", "工业路"), (114.030, 22.655)),
        Street("大浪街道", ("新石社区",),
               ("大浪北路", "浪花路"), (114.010, 22.675)),
        Street("观澜街道", ("新澜社区",),
               ("观澜大道", "观光路"), (114.050, 22.720)),
    )),
    District("440310", "坪山区", (
        Street("坪山街道", ("六联社区", "和平社区"),
               ("坪山大道", "金碧路", "振碧路"), (114.340, 22.695)),
        Street("坑梓街道", ("沙田社区", "秀新社区", "金沙社区"),
               ("坪山大道", "青松路", "锦绣中路"), (114.390, 22.745)),
        Street("碧岭街道", ("汤坑社区", "沙湖社区"),
               ("横坪公路", "汤坑二路"), (114.295, 22.665)),
    )),
    District("440311", "光明区", (
        Street("光明街道", ("东周社区", "碧眼社区", "白花社区"),
               ("光明大道", "华夏路", "双明大道"), (113.935, 22.775)),
        Street("公明街道", ("上村社区", "下村社区", "西田社区"),
               ("松白路", "思远路"), (113.895, 22.780)),
        Street("凤凰街道", ("塘家社区", "东坑社区", "甲子塘社区"),
               ("观光路", "塘家东路"), (113.945, 22.750)),
        Street("马田街道", ("马山头社区", "合水口社区", "薯田埔社区"),
               ("松白路", "将石路"), (113.895, 22.760)),
    )),
    # 大鹏新区: functional area whose streets legally belong to 龙岗区 (see module docstring).
    District("440307-DP", "大鹏新区", (
        Street("葵涌街道", ("葵涌社区",),
               ("延安路", "金业大道"), (114.425, 22.632)),
        Street("大鹏街道", ("鹏城社区",),
               ("鹏飞路", "迎宾路"), (114.480, 22.590)),
        Street("南澳街道", ("西涌社区", "水头沙社区"),
               ("海滨北路", "地质公园路"), (114.475, 22.540)),
    )),
)

# Mainland mobile number prefixes in common use (China Mobile, China Unicom,
# China Telecom, China Broadnet). 134 (partly satellite), the 14x data-card
# ranges and the 170/171 virtual-operator ranges are left out on purpose.
PHONE_PREFIXES: tuple[str, ...] = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139",
    "150", "151", "152", "153", "155", "156", "157", "158", "159",
    "166", "172", "173", "175", "176", "177", "178",
    "180", "181", "182", "183", "184", "185", "186", "187", "188", "189",
    "191", "192", "195", "198", "199",
)
