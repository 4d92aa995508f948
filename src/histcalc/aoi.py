"""Areas of interest: a lon/lat box (or GeoJSON polygon) densified and moved into a raster's CRS.

Densifying before the transform keeps the edges on lon/lat lines after projection to UTM,
where a straight line between transformed corners would cut pixels the user asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from histcalc.errors import InvalidBBox, UsageError

BBox = tuple[float, float, float, float]
WGS84 = "EPSG:4326"
_POINTS_PER_EDGE = 64


@dataclass(frozen=True)
class AOI:
    """A polygon in ``crs`` (GeoJSON geometry dict, frozen as JSON text so tasks can pickle it)."""

    geometry_json: str
    crs: str = WGS84
    bbox: BBox | None = None

    @classmethod
    def from_bbox(cls, bbox: BBox) -> AOI:
        w, s, e, n = validate_bbox(bbox)
        ring = _densified_ring(w, s, e, n)
        geometry = {"type": "Polygon", "coordinates": [ring]}
        return cls(json.dumps(geometry), WGS84, (w, s, e, n))

    @property
    def geometry(self) -> dict[str, Any]:
        geometry: dict[str, Any] = json.loads(self.geometry_json)
        return geometry

    def lonlat_bbox(self) -> BBox:
        """Bounds in EPSG:4326, for catalog searches."""
        if self.bbox is not None:
            return self.bbox
        from rasterio.warp import transform_bounds

        xs, ys = _coords(self.geometry)
        return tuple(transform_bounds(self.crs, WGS84, min(xs), min(ys), max(xs), max(ys)))

    def in_crs(self, crs: Any) -> dict[str, Any]:
        """The AOI geometry transformed to ``crs`` (vertices already densified)."""
        from rasterio.warp import transform_geom

        out: dict[str, Any] = transform_geom(self.crs, crs, self.geometry)
        return out


def parse_bbox(text: str) -> BBox:
    """``W,S,E,N`` from a command-line string."""
    parts = [p for p in text.replace(" ", "").split(",") if p]
    if len(parts) != 4:
        raise InvalidBBox(f"--bbox needs four numbers W,S,E,N, got {text!r}")
    try:
        w, s, e, n = (float(p) for p in parts)
    except ValueError as exc:
        raise InvalidBBox(f"--bbox needs four numbers W,S,E,N, got {text!r}") from exc
    return validate_bbox((w, s, e, n))


def validate_bbox(bbox: BBox) -> BBox:
    w, s, e, n = (float(v) for v in bbox)
    if not all(np.isfinite([w, s, e, n])):
        raise InvalidBBox("--bbox values must be finite numbers")
    if not (-180 <= w <= 180 and -180 <= e <= 180):
        raise InvalidBBox(f"--bbox longitudes must lie in -180..180, got W={w:g} E={e:g}")
    if not (-90 <= s <= 90 and -90 <= n <= 90):
        raise InvalidBBox(f"--bbox latitudes must lie in -90..90, got S={s:g} N={n:g}")
    if w >= e:
        raise InvalidBBox(f"--bbox needs W < E (antimeridian boxes are not supported), got W={w:g} E={e:g}")
    if s >= n:
        raise InvalidBBox(f"--bbox needs S < N, got S={s:g} N={n:g}")
    return (w, s, e, n)


def load_geojson(path: str | Path) -> AOI:
    """An AOI from a GeoJSON file (Feature, FeatureCollection or geometry; Polygon/MultiPolygon)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read GeoJSON AOI {path}: {exc}") from exc
    crs = _declared_crs(data)
    geoms = _polygons(data)
    if not geoms:
        raise UsageError(f"GeoJSON AOI {path} holds no Polygon or MultiPolygon")
    polys = [c for g in geoms for c in ([g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"])]
    geometry = {"type": "MultiPolygon", "coordinates": [[_densify(r) for r in p] for p in polys]}
    return AOI(json.dumps(geometry), crs)


def _densified_ring(w: float, s: float, e: float, n: float) -> list[list[float]]:
    t = np.linspace(0.0, 1.0, _POINTS_PER_EDGE, endpoint=False)
    bottom = [[w + (e - w) * f, s] for f in t]
    right = [[e, s + (n - s) * f] for f in t]
    top = [[e - (e - w) * f, n] for f in t]
    left = [[w, n - (n - s) * f] for f in t]
    return [*bottom, *right, *top, *left, [w, s]]


def _densify(ring: list[list[float]]) -> list[list[float]]:
    out: list[list[float]] = []
    for (x0, y0), (x1, y1) in pairwise(ring):
        t = np.linspace(0.0, 1.0, 16, endpoint=False)
        out.extend([[x0 + (x1 - x0) * f, y0 + (y1 - y0) * f] for f in t])
    out.append(list(ring[-1][:2]))
    return out


def _polygons(data: dict[str, Any]) -> list[dict[str, Any]]:
    kind = data.get("type")
    if kind == "FeatureCollection":
        return [g for f in data.get("features", []) for g in _polygons(f)]
    if kind == "Feature":
        return _polygons(data.get("geometry") or {})
    if kind == "GeometryCollection":
        return [g for sub in data.get("geometries", []) for g in _polygons(sub)]
    return [data] if kind in ("Polygon", "MultiPolygon") else []


def _declared_crs(data: dict[str, Any]) -> str:
    name = (((data.get("crs") or {}).get("properties") or {}).get("name")) or WGS84
    return "EPSG:4326" if "CRS84" in str(name) else str(name)


def _coords(geometry: dict[str, Any]) -> tuple[list[float], list[float]]:
    flat = np.asarray([pt for poly in _rings(geometry) for ring in poly for pt in ring], dtype=np.float64).reshape(
        -1, 2
    )
    return flat[:, 0].tolist(), flat[:, 1].tolist()


def _rings(geometry: dict[str, Any]) -> list[Any]:
    return [geometry["coordinates"]] if geometry["type"] == "Polygon" else list(geometry["coordinates"])
