"""A geocoding sandbox: a gazetteer of Shenzhen's districts (GB/T 2260 codes)
and a few streets (街道) each, with plausible WGS-84 coordinates.

It behaves like a map provider's geocoding API for what the product needs:
the address must name a district (``南山区``) or a street the gazetteer knows
(``粤海街道``, which implies its district); the point is the street's (or the
district's) centre moved by a deterministic offset of up to ~250 m derived
from the full address, so one address always lands on the same spot and two
buildings on the same street do not coincide. Unknown places raise
``NotFound``, as a provider's "no result" does.
"""

from __future__ import annotations

import hashlib
import math

from clinical_core.domain.errors import InvalidInput, NotFound
from clinical_core.domain.geo import GeoPoint
from clinical_core.ports.geocoder import District, GeocodedAddress

# code, name, centre (lat, lon), streets {name: (lat, lon)}
GAZETTEER: tuple[tuple[str, str, tuple[float, float], dict[str, tuple[float, float]]], ...] = (
    ("440303", "罗湖区", (22.5485, 114.1315), {
        "东门街道": (22.5480, 114.1180), "翠竹街道": (22.5650, 114.1250), "黄贝街道": (22.5480, 114.1420),
        "笋岗街道": (22.5640, 114.1030)}),
    ("440304", "福田区", (22.5410, 114.0550), {
        "华强北街道": (22.5470, 114.0850), "香蜜湖街道": (22.5450, 114.0250), "莲花街道": (22.5560, 114.0550),
        "福保街道": (22.5180, 114.0600), "沙头街道": (22.5300, 114.0300), "梅林街道": (22.5700, 114.0500)}),
    ("440305", "南山区", (22.5330, 113.9300), {
        "粤海街道": (22.5230, 113.9420), "南头街道": (22.5450, 113.9200), "蛇口街道": (22.4860, 113.9130),
        "西丽街道": (22.5850, 113.9550), "桃源街道": (22.5650, 113.9700)}),
    ("440306", "宝安区", (22.5550, 113.8830), {
        "新安街道": (22.5600, 113.8800), "西乡街道": (22.5780, 113.8600), "福永街道": (22.6700, 113.8200),
        "沙井街道": (22.7300, 113.8300)}),
    ("440307", "龙岗区", (22.7200, 114.2470), {
        "龙城街道": (22.7250, 114.2500), "布吉街道": (22.6050, 114.1200), "坂田街道": (22.6300, 114.0650),
        "横岗街道": (22.6450, 114.2000)}),
    ("440308", "盐田区", (22.5570, 114.2370), {
        "沙头角街道": (22.5570, 114.2270), "盐田街道": (22.5900, 114.2650)}),
    ("440309", "龙华区", (22.6960, 114.0450), {
        "民治街道": (22.6200, 114.0400), "观澜街道": (22.7150, 114.0500), "龙华街道": (22.6600, 114.0300)}),
    ("440310", "坪山区", (22.6900, 114.3460), {
        "坪山街道": (22.6900, 114.3450), "坑梓街道": (22.7500, 114.3900)}),
    ("440311", "光明区", (22.7480, 113.9360), {
        "光明街道": (22.7750, 113.9300), "公明街道": (22.7800, 113.8900)}),
)
MAX_OFFSET_M = 250.0


def _offset(point: tuple[float, float], address: str) -> GeoPoint:
    digest = hashlib.sha256(address.encode()).digest()
    angle = int.from_bytes(digest[:4]) / 2**32 * 2 * math.pi
    radius = math.sqrt(int.from_bytes(digest[4:8]) / 2**32) * MAX_OFFSET_M
    lat, lon = point
    dlat = radius * math.cos(angle) / 111_320.0
    dlon = radius * math.sin(angle) / (111_320.0 * math.cos(math.radians(lat)))
    return GeoPoint(round(lat + dlat, 6), round(lon + dlon, 6))


class SandboxGeocoder:
    """The gazetteer geocoder (no network)."""

    def __init__(self) -> None:
        self.calls = 0

    def districts(self) -> list[District]:
        return [District(code, name, GeoPoint(*centre)) for code, name, centre, _ in GAZETTEER]

    def geocode(self, address: str) -> GeocodedAddress:
        self.calls += 1
        text = "".join((address or "").split())
        if len(text) < 4:
            raise InvalidInput("地址过短，请填写区、街道和门牌", field="address")
        for code, name, centre, streets in GAZETTEER:
            street = next((s for s in streets if s in text), None)
            if street is not None:
                return GeocodedAddress(_offset(streets[street], text), code, name, street, "street")
        for code, name, centre, _ in GAZETTEER:
            if name in text:
                return GeocodedAddress(_offset(centre, text), code, name, None, "district")
        raise NotFound("地址无法定位：请写明深圳市的区或街道")
