"""Port for geocoding (地址解析): a free-text address to a point and its district.

A real provider (高德/腾讯地图 Web API) plugs in here; the sandbox answers from
a gazetteer of Shenzhen districts and streets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from clinical_core.domain.geo import GeoPoint


@dataclass(frozen=True, slots=True)
class GeocodedAddress:
    point: GeoPoint
    district_code: str  # GB/T 2260 code of the 区, e.g. 440305 南山区
    district: str
    street: str | None  # 街道, when the address names one
    precision: str  # street | district


@dataclass(frozen=True, slots=True)
class District:
    code: str
    name: str
    centre: GeoPoint


class Geocoder(Protocol):
    def geocode(self, address: str) -> GeocodedAddress:
        """Raises ``NotFound`` when the address cannot be located."""
        ...

    def districts(self) -> list[District]: ...
