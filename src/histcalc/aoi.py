"""Areas of interest: a lon/lat box (or GeoJSON polygon) densified and moved into a raster's CRS.

Densifying before the transform keeps the edges on lon/lat lines after projection to UTM,
where a straight line between transformed corners would cut pixels the user asked for.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from histcalc.errors import InvalidBBox, UsageError

BBox = tuple[float, float, float, float]
WGS84 = "EPSG:4326"
# Longest straight piece of a densified edge: in degrees for lon/lat AOIs, in metres (or feet) otherwise.
# 0.002 degrees is ~200 m: a projected parallel deviates from such a chord by well under a millimetre.
_STEP_DEGREES = 0.002
_STEP_PROJECTED = 200.0
_MAX_PIECES = 1000


@dataclass(frozen=True)
class AOI:
    """A polygon in ``crs`` (GeoJSON geometry dict, frozen as JSON text so tasks can pickle it)."""

    geometry_json: str
    crs: str = WGS84
    bbox: BBox | None = None

    @classmethod
    def from_bbox(cls, bbox: BBox) -> AOI:
        """The box as a polygon, densified exactly as the same polygon given in GeoJSON would be."""
        w, s, e, n = validate_bbox(bbox)
        ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
        return cls.from_polygons([[ring]], WGS84, (w, s, e, n))

    @classmethod
    def from_polygons(cls, polygons: list[list[list[list[float]]]], crs: str = WGS84, bbox: BBox | None = None) -> AOI:
        """The one way every AOI is made: polygons (rings of [x, y]) in ``crs``, edges densified."""
        step = _STEP_DEGREES if _is_geographic(crs) else _STEP_PROJECTED
        geometry = {"type": "MultiPolygon", "coordinates": [[_densify(r, step) for r in p] for p in polygons]}
        return cls(json.dumps(geometry), crs, bbox)

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
    parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
    if len(parts) != 4:
        raise InvalidBBox(f"--bbox needs four numbers W,S,E,N, got {text!r}")
    try:
        w, s, e, n = (float(p) for p in parts)
    except ValueError as exc:
        raise InvalidBBox(f"--bbox needs four numbers W,S,E,N, got {text!r}") from exc
    try:
        return validate_bbox((w, s, e, n), "--bbox")
    except InvalidBBox as exc:
        raise InvalidBBox(f"{exc}{swapped_hint((w, s, e, n))}") from exc


def swapped_hint(bbox: BBox) -> str:
    """A hint when ``bbox`` reads better as lat/lon: '' unless the swapped box is a valid W,S,E,N."""
    w, s, e, n = bbox
    if (s, w, n, e) == (w, s, e, n):
        return ""
    try:
        validate_bbox((s, w, n, e))
    except InvalidBBox:
        return ""
    return f" (lon/lat swapped? --bbox is W,S,E,N, i.e. lon,lat,lon,lat: --bbox {s:g},{w:g},{n:g},{e:g})"


def validate_bbox(bbox: BBox, name: str = "bbox") -> BBox:
    w, s, e, n = (float(v) for v in bbox)
    if not all(np.isfinite([w, s, e, n])):
        raise InvalidBBox(f"{name} values must be finite numbers")
    if not (-180 <= w <= 180 and -180 <= e <= 180):
        raise InvalidBBox(f"{name} longitudes must lie in -180..180, got W={w:g} E={e:g}")
    if not (-90 <= s <= 90 and -90 <= n <= 90):
        raise InvalidBBox(f"{name} latitudes must lie in -90..90, got S={s:g} N={n:g}")
    if w >= e:
        raise InvalidBBox(f"{name} needs W < E (antimeridian boxes are not supported), got W={w:g} E={e:g}")
    if s >= n:
        raise InvalidBBox(f"{name} needs S < N, got S={s:g} N={n:g}")
    return (w, s, e, n)


def load_geojson(path: str | Path) -> AOI:
    """An AOI from a GeoJSON file, or GeoJSON text (Feature, FeatureCollection or geometry;
    Polygon/MultiPolygon)."""
    inline = str(path).lstrip().startswith("{")
    try:
        data = json.loads(str(path) if inline else Path(path).expanduser().read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read GeoJSON AOI {_short(path)}: {exc}{_format_hint(path)}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"GeoJSON AOI {_short(path)} is not a GeoJSON object")
    path = _short(path) if inline else path
    crs = _declared_crs(data, path)
    geoms = _polygons(data)
    if not geoms:
        raise UsageError(f"GeoJSON AOI {path} holds no Polygon or MultiPolygon")
    polys = [c for g in geoms for c in ([g["coordinates"]] if g["type"] == "Polygon" else g["coordinates"])]
    try:
        rings = [[[[float(v) for v in pt[:2]] for pt in ring] for ring in poly] for poly in polys]
    except (TypeError, ValueError, IndexError) as exc:
        raise UsageError(f"GeoJSON AOI {path}: polygon coordinates are not [x, y] numbers") from exc
    if _is_geographic(crs):
        _check_lonlat(rings, path)
    return AOI.from_polygons(rings, crs)


def _short(path: str | Path) -> str:
    text = str(path)
    return text if len(text) <= 60 else text[:57] + "..."


def _format_hint(path: str | Path) -> str:
    suffix = Path(str(path)).suffix.lower()
    if suffix in ("", ".json", ".geojson") or str(path).lstrip().startswith("{"):
        return ""
    name = Path(str(path)).name
    return f" (--aoi reads GeoJSON; convert a {suffix} file with: ogr2ogr -f GeoJSON aoi.geojson {name})"


def _densify(ring: list[list[float]], step: float) -> list[list[float]]:
    """``ring`` with every edge cut into equal pieces no longer than ``step``."""
    out: list[list[float]] = []
    for (x0, y0), (x1, y1) in pairwise(ring):
        pieces = min(_MAX_PIECES, max(1, math.ceil(math.hypot(x1 - x0, y1 - y0) / step)))
        t = np.arange(pieces) / pieces
        out.extend([[x0 + (x1 - x0) * f, y0 + (y1 - y0) * f] for f in t.tolist()])
    out.append(list(ring[-1][:2]))
    return out


def _is_geographic(crs: str) -> bool:
    if crs == WGS84:
        return True
    from pyproj import CRS  # ~30 ms to import: not for the usual lon/lat box

    return bool(CRS.from_user_input(crs).is_geographic)


def _check_lonlat(polygons: list[list[list[list[float]]]], path: str | Path) -> None:
    xs, ys = _coords({"type": "MultiPolygon", "coordinates": polygons})
    if not all(np.isfinite(xs + ys)) or min(xs) < -180 or max(xs) > 180 or min(ys) < -90 or max(ys) > 90:
        raise UsageError(
            f"GeoJSON AOI {path}: coordinates outside lon -180..180 / lat -90..90; "
            "declare the CRS of projected coordinates in a 'crs' member"
        )


def _polygons(data: dict[str, Any]) -> list[dict[str, Any]]:
    kind = data.get("type")
    if kind == "FeatureCollection":
        return [g for f in data.get("features", []) for g in _polygons(f)]
    if kind == "Feature":
        return _polygons(data.get("geometry") or {})
    if kind == "GeometryCollection":
        return [g for sub in data.get("geometries", []) for g in _polygons(sub)]
    return [data] if kind in ("Polygon", "MultiPolygon") else []


def _declared_crs(data: dict[str, Any], path: str | Path) -> str:
    """The CRS a (pre-RFC 7946) GeoJSON declares, checked with PROJ; lon/lat when none is declared."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    member = data.get("crs")
    props = member.get("properties") if isinstance(member, dict) else None
    name = props.get("name") if isinstance(props, dict) else None
    if not name:
        return WGS84
    if "CRS84" in str(name):
        return WGS84
    try:
        CRS.from_user_input(str(name))
    except CRSError as exc:
        raise UsageError(f"GeoJSON AOI {path} declares an unknown CRS {name!r}") from exc
    return str(name)


def _coords(geometry: dict[str, Any]) -> tuple[list[float], list[float]]:
    flat = np.asarray([pt for poly in _rings(geometry) for ring in poly for pt in ring], dtype=np.float64).reshape(
        -1, 2
    )
    return flat[:, 0].tolist(), flat[:, 1].tolist()


def _rings(geometry: dict[str, Any]) -> list[Any]:
    return [geometry["coordinates"]] if geometry["type"] == "Polygon" else list(geometry["coordinates"])
