"""Demo parcels: adjacent fields (0.5-20 ha) tessellating land-use blocks, deterministic by seed.

Blocks are the Voronoi cells of coarse seeds over a square around the centre of ``bounds``, shrunk by half a
road width so fields of neighbouring blocks do not touch; each block is tessellated into fields by the
Voronoi cells of a jittered grid whose spacing (field size) is drawn per block. The square is just large
enough for ``n`` fields; fields are numbered from the centre out and the first ``n`` kept.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc.errors import UsageError

log = logging.getLogger(__name__)

HECTARE = 10_000.0
_FIELD_HA = (1.2, 9.0)  # per-block field size drawn log-uniformly; Voronoi spread keeps fields in 0.5-20 ha
_BLOCK_FIELDS = 40  # fields per block on average
_ROAD_METRES = 12.0
_JITTER = 0.3  # of the grid spacing


def make_parcels(bounds: tuple[float, float, float, float], crs: Any, n: int, seed: int, path: str | Path) -> Path:
    """Write ``n`` parcels inside ``bounds`` (metres, in ``crs``) to ``path`` (.gpkg, .geojson, .shp, .parquet).

    Ids are the field ``parcel_id`` (``P000001`` ...), area in hectares in ``area_ha``.
    """
    import shapely

    path = Path(path)
    driver = _driver(path)
    geoms = parcel_geometries(bounds, n, seed)
    ids = np.array([f"P{i + 1:06d}" for i in range(len(geoms))], dtype=object)
    area = np.round(shapely.area(geoms) / HECTARE, 3)
    if driver == "Parquet":  # pyogrio's wheels carry no Parquet driver: GeoParquet through geopandas
        import geopandas

        frame = geopandas.GeoDataFrame({"parcel_id": ids, "area_ha": area}, geometry=geoms, crs=str(crs))
        frame.to_parquet(path)
    else:
        from histcalc import ogr

        ogr.pyogrio().raw.write(
            str(path),
            geometry=shapely.to_wkb(geoms),
            field_data=[ids, area],
            fields=["parcel_id", "area_ha"],
            geometry_type="Polygon",
            crs=str(crs),
            driver=driver,
        )
    log.info("parcels: %d fields (%.1f-%.1f ha) written to %s", len(geoms), area.min(), area.max(), path)
    return path


def parcel_geometries(bounds: tuple[float, float, float, float], n: int, seed: int) -> npt.NDArray[np.object_]:
    """``n`` field polygons, centre-out order, as a shapely array."""
    import shapely

    rng = np.random.default_rng(seed)
    mean_field = HECTARE * math.sqrt(_FIELD_HA[0] * _FIELD_HA[1])
    side = math.sqrt(n * mean_field * 1.25)  # 1.25: roads and rounding leave room for some more fields
    fields: list[Any] = []
    largest = min(bounds[2] - bounds[0], bounds[3] - bounds[1])
    while len(fields) < n:
        if side > 1.2 * largest:  # the square already fills the bounds: more room cannot be had
            raise UsageError(f"{n} fields of 0.5-20 ha do not fit in {largest / 1000:g} km x {largest / 1000:g} km")
        fields = _fields(bounds, side, n, rng)
        side *= 1.2
    centre = shapely.points(((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2))
    geoms = np.array(fields, dtype=object)
    order = np.argsort(shapely.distance(shapely.centroid(geoms), centre), kind="stable")
    return geoms[order[:n]]


def _fields(bounds: tuple[float, float, float, float], side: float, n: int, rng: np.random.Generator) -> list[Any]:
    import shapely

    cx, cy = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
    half = min(side, bounds[2] - bounds[0], bounds[3] - bounds[1]) / 2
    area = shapely.box(cx - half, cy - half, cx + half, cy + half)
    n_blocks = max(1, round(n / _BLOCK_FIELDS * 1.25))
    seeds = shapely.multipoints(rng.uniform((cx - half, cy - half), (cx + half, cy + half), (n_blocks, 2)))
    blocks = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=area))
    blocks = shapely.buffer(shapely.intersection(blocks, area), -_ROAD_METRES / 2, join_style="mitre")
    fields: list[Any] = []
    for block in blocks:
        if not block.is_empty:
            fields.extend(_tessellate(block, rng))
    return fields


def _tessellate(block: Any, rng: np.random.Generator) -> list[Any]:
    """Voronoi cells of a jittered grid inside ``block``, clipped to it: adjacent fields sharing edges."""
    import shapely

    spacing = math.sqrt(HECTARE * math.exp(rng.uniform(*np.log(_FIELD_HA))))
    x0, y0, x1, y1 = block.bounds
    gx, gy = np.meshgrid(np.arange(x0 + spacing / 2, x1, spacing), np.arange(y0 + spacing / 2, y1, spacing))
    xy = np.column_stack([gx.ravel(), gy.ravel()]) + rng.uniform(-_JITTER, _JITTER, (gx.size, 2)) * spacing
    inside = xy[shapely.contains_xy(block, xy[:, 0], xy[:, 1])]
    if len(inside) < 2:
        return [block] if block.area >= 0.5 * HECTARE else []
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(inside), extend_to=block))
    shapely.prepare(block)
    inside = shapely.contains_properly(block, cells)  # most cells: no clipping needed (and no overlay cost)
    parts = np.concatenate([cells[inside], shapely.get_parts(shapely.intersection(cells[~inside], block))])
    return [p for p in parts if p.geom_type == "Polygon" and 0.5 * HECTARE <= p.area <= 20 * HECTARE]


def _driver(path: Path) -> str:
    suffix = path.suffix.lower()
    drivers = {
        ".gpkg": "GPKG",
        ".geojson": "GeoJSON",
        ".json": "GeoJSON",
        ".parquet": "Parquet",
        ".shp": "ESRI Shapefile",
    }
    if suffix not in drivers:
        raise UsageError(f"parcels: unknown vector format {suffix!r} (use {', '.join(drivers)})")
    return drivers[suffix]
