"""Where a raster lies: its lon/lat footprint, and the AOI placed in its CRS (from headers alone).

Both work on an open dataset (``raster.opened``) and read no pixel. They must hold for the files
GDAL users meet: no CRS, rotated or skewed geotransforms, full-disk geostationary images whose
corners are in space (infinite lon/lat).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc.aoi import AOI, BBox
from histcalc.errors import RasterReadError

_GRID = 65  # footprint sample points per side when corners fall off the Earth


def lonlat_footprint(src: Any) -> BBox | None:
    """The raster's lon/lat bounds; None when unknown (no CRS, or nothing of it maps onto the Earth).

    Normal rasters: their densified edges. A full-disk geostationary image has corners in space
    (infinite lon/lat): then the finite points of a grid over the whole raster, widened by the
    largest step between neighbouring points so that the true limb is inside.
    """
    from rasterio.warp import transform_bounds

    if not src.crs:
        return None
    if not _is_rotated(src.transform):
        bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
        if all(math.isfinite(b) for b in bounds):
            return (float(bounds[0]), float(bounds[1]), float(bounds[2]), float(bounds[3]))
    return _grid_footprint(src)


def _grid_footprint(src: Any) -> BBox | None:
    from rasterio.warp import transform

    cols, rows = np.meshgrid(np.linspace(0, src.width, _GRID), np.linspace(0, src.height, _GRID))
    xs, ys = src.transform * (cols.ravel(), rows.ravel())
    with np.errstate(invalid="ignore"):
        lon, lat = (
            np.asarray(v, dtype=np.float64).reshape(_GRID, _GRID) for v in transform(src.crs, "EPSG:4326", xs, ys)
        )
    finite = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 360) & (np.abs(lat) <= 90)
    if not finite.any():
        return None
    with np.errstate(invalid="ignore"):
        pad = max(_largest_step(lon, finite), _largest_step(lat, finite))
    return (
        max(-180.0, float(lon[finite].min()) - pad),
        max(-90.0, float(lat[finite].min()) - pad),
        min(180.0, float(lon[finite].max()) + pad),
        min(90.0, float(lat[finite].max()) + pad),
    )


def _largest_step(values: npt.NDArray[np.float64], finite: npt.NDArray[np.bool_]) -> float:
    steps = [
        np.abs(np.diff(values, axis=a))[finite[1:, :] & finite[:-1, :] if a == 0 else finite[:, 1:] & finite[:, :-1]]
        for a in (0, 1)
    ]
    return max((float(s.max()) for s in steps if s.size), default=0.0)


def _is_rotated(transform: Any) -> bool:
    return bool(transform.b != 0 or transform.d != 0)


def aoi_in_raster(src: Any, aoi: AOI | None) -> dict[str, Any] | None:
    """The AOI in the raster's CRS, or None when there is no AOI or it misses the raster.

    Files the AOI cannot be placed on exactly fail by name: no CRS, or an AOI that reaches off
    the Earth as this file's projection sees it. Rotated and skewed geotransforms are exact: the
    overlap is tested in pixel space and GDAL rasterises through the full affine transform.
    """
    if aoi is None:
        return None
    from rasterio.features import bounds as geometry_bounds

    if not src.crs:
        raise RasterReadError(f"{src.name}: has no CRS, so the AOI ({aoi.crs}) cannot be placed on it")
    try:
        geometry = aoi.in_crs(src.crs)
    except Exception:  # GDAL refuses geometries with points its projection cannot reach
        geometry = _pointwise(aoi, src.crs)
    left, bottom, right, top = geometry_bounds(geometry)
    if not all(math.isfinite(v) for v in (left, bottom, right, top)):
        if not _any_finite_vertex(geometry):
            return None  # the whole AOI is off this file's view of the Earth
        raise RasterReadError(f"{src.name}: the AOI reaches beyond the Earth's disk seen by this file's projection")
    if _is_rotated(src.transform):
        return geometry if _overlaps_in_pixels(geometry, src) else None
    b = src.bounds
    if right <= b.left or left >= b.right or top <= b.bottom or bottom >= b.top:
        return None
    return geometry


def _overlaps_in_pixels(geometry: dict[str, Any], src: Any) -> bool:
    """Whether the AOI's vertices, in pixel coordinates, span a box that meets the raster's."""
    coords = _vertices(geometry)
    cols, rows = ~src.transform * (coords[:, 0], coords[:, 1])
    return bool(cols.max() > 0 and cols.min() < src.width and rows.max() > 0 and rows.min() < src.height)


def _pointwise(aoi: AOI, crs: Any) -> dict[str, Any]:
    """The AOI's vertices transformed one by one (unreachable ones infinite), as one flat polygon ring."""
    from rasterio.warp import transform

    vertices = _vertices(aoi.geometry)
    with np.errstate(invalid="ignore"):
        xs, ys = transform(aoi.crs, crs, vertices[:, 0].tolist(), vertices[:, 1].tolist())
    points = [
        [x if math.isfinite(x) else math.inf, y if math.isfinite(y) else math.inf] for x, y in zip(xs, ys, strict=True)
    ]
    return {"type": "Polygon", "coordinates": [points]}


def _any_finite_vertex(geometry: dict[str, Any]) -> bool:
    return bool(np.isfinite(_vertices(geometry)).all(axis=1).any())


def _vertices(geometry: dict[str, Any]) -> npt.NDArray[np.float64]:
    """Every vertex of a Polygon or MultiPolygon as an (n, 2) array."""
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    return np.asarray([pt[:2] for poly in polygons for ring in poly for pt in ring], dtype=np.float64).reshape(-1, 2)
