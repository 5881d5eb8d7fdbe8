"""Geometry of home nursing (上门护理): points, distances, polygons, geofences.

Pure standard library. Coordinates are WGS-84 degrees; a polygon is a list of
``(lon, lat)`` vertices (GeoJSON order), closed implicitly. Distances are
great-circle metres (haversine on a 6,371 km sphere): at city scale the error
against the ellipsoid is well under 0.5 %, far below a geofence's radius.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from clinical_core.domain.errors import InvalidInput

EARTH_RADIUS_M = 6_371_008.8
Polygon = Sequence[tuple[float, float]]  # (lon, lat) vertices


@dataclass(frozen=True, slots=True)
class GeoPoint:
    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not (-90.0 <= self.lat <= 90.0 and -180.0 <= self.lon <= 180.0) or math.isnan(self.lat + self.lon):
            raise InvalidInput("经纬度超出范围", field="location")


def distance_m(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle distance in metres (haversine)."""
    phi1, phi2 = math.radians(a.lat), math.radians(b.lat)
    dphi, dlmb = phi2 - phi1, math.radians(b.lon - a.lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def point_in_polygon(point: GeoPoint, polygon: Polygon) -> bool:
    """Ray casting (even-odd rule). A point exactly on an edge counts as inside."""
    x, y = point.lon, point.lat
    inside = False
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % n]
        if _on_segment(x, y, x1, y1, x2, y2):
            return True
        if (y1 > y) != (y2 > y):
            x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < x_cross:
                inside = not inside
    return inside


def _on_segment(x: float, y: float, x1: float, y1: float, x2: float, y2: float, eps: float = 1e-12) -> bool:
    cross = (x - x1) * (y2 - y1) - (y - y1) * (x2 - x1)
    if abs(cross) > eps:
        return False
    return min(x1, x2) - eps <= x <= max(x1, x2) + eps and min(y1, y2) - eps <= y <= max(y1, y2) + eps


def check_polygon(polygon: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    """Validate an area polygon given as ``[[lon, lat], ...]``: ≥3 distinct vertices, valid coordinates."""
    try:
        vertices = [(float(v[0]), float(v[1])) for v in polygon]
    except (TypeError, ValueError, IndexError) as exc:
        raise InvalidInput("服务区域多边形格式应为 [[经度, 纬度], ...]", field="polygons") from exc
    if vertices and vertices[0] == vertices[-1]:
        vertices = vertices[:-1]  # an explicitly closed ring
    if len(set(vertices)) < 3:
        raise InvalidInput("服务区域多边形至少需要 3 个不同顶点", field="polygons")
    for lon, lat in vertices:
        GeoPoint(lat, lon)
    return vertices
