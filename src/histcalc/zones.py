"""Zones for zonal histograms: held once on the driver, indexed, and cut per raster into small picklable subsets.

``Zones`` holds every input zone (ids, polygonal geometries, CRS, problems found), as
``histcalc.zone_files.load_zones`` reads them. ``Zones.for_raster`` picks the zones that intersect a raster's
footprint (by their bounds in the zones' own CRS, with an STRtree built once across CRSs), moves them into
the raster's CRS (densified first, so straight edges stay faithful across projections) and packs them as flat
coordinate arrays: a ``ZoneSubset`` that ships to a Spark task in one pickle and that ``histcalc.labels``
turns into label layers without touching shapely.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc.errors import AccountingError

log = logging.getLogger(__name__)

# Longest edge kept before reprojecting, in the zone CRS's units: parcel edges hardly change, and a 1 km
# segment (or 0.01 degree) sags by about 2 cm between neighbouring UTM zones (curvature ~ tan(lat) / R).
_DENSIFY_METRES = 1000.0
_DENSIFY_DEGREES = 0.01
_FOOTPRINT_POINTS_PER_EDGE = 64
_POLYGONAL = ("Polygon", "MultiPolygon")


@dataclass(frozen=True)
class ZoneProblem:
    """Something wrong with one input zone; the zone is kept (repaired, or empty and counting nothing)."""

    zone_id: str
    message: str

    def __str__(self) -> str:
        return f"zone {self.zone_id!r}: {self.message}"


@dataclass(frozen=True)
class ZoneSubset:
    """The zones that intersect one raster, in the raster's CRS, as flat arrays (cheap to pickle and to scan).

    Zone ``k`` of the subset (label value ``k + 1``) is zone ``indices[k]`` of the ``Zones`` it came from. Its
    polygons are ``part_offsets[k]:part_offsets[k+1]`` (indices into ``ring_offsets``), each polygon's rings
    are ``ring_offsets[p]:ring_offsets[p+1]`` (indices into the closed rings' ``coords``), exterior first.
    """

    crs: str
    indices: npt.NDArray[np.int64]
    coords: npt.NDArray[np.float64]
    ring_offsets: npt.NDArray[np.int64]
    polygon_offsets: npt.NDArray[np.int64]
    part_offsets: npt.NDArray[np.int64]
    bounds: npt.NDArray[np.float64]
    key: str = field(default="")

    def __len__(self) -> int:
        return len(self.indices)

    def geometries(self) -> npt.NDArray[np.object_]:
        """The subset's zones as shapely (multi)polygons in the raster CRS (for all_touched, tests, debugging)."""
        import shapely

        if len(self) == 0:
            return np.empty(0, dtype=object)
        offsets = (self.ring_offsets, self.polygon_offsets, self.part_offsets)
        geoms: npt.NDArray[np.object_] = shapely.from_ragged_array(
            shapely.GeometryType.MULTIPOLYGON, self.coords, offsets
        )
        return geoms


class Zones:
    """All input zones: ids (strings, unique), polygonal geometries (shapely array), CRS, problems found."""

    def __init__(self, ids: list[str], geometries: npt.NDArray[np.object_], crs: str, problems: list[ZoneProblem]):
        import shapely

        self.ids = ids
        self.geometries = geometries
        self.crs = crs
        self.problems = problems
        self._tree: shapely.STRtree | None = None
        self._bounds: npt.NDArray[np.float64] | None = None
        self._subsets: dict[tuple[str, tuple[float, ...]], ZoneSubset] = {}

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def tree(self) -> Any:
        """An STRtree over every zone, built on first use."""
        import shapely

        if self._tree is None:
            self._tree = shapely.STRtree(self.geometries)
        return self._tree

    def for_raster(self, crs: Any, bounds: tuple[float, float, float, float]) -> ZoneSubset:
        """The zones intersecting a raster footprint ``bounds`` (left, bottom, right, top in ``crs``), in ``crs``.

        Memoised by (crs, bounds): every date of a tile grid gets the same subset object (and the same ``key``,
        so label caches keyed by it hit across files).
        """
        from pyproj import CRS

        target = CRS.from_user_input(crs)
        memo_key = (target.to_wkt(), tuple(float(b) for b in bounds))
        if memo_key not in self._subsets:
            self._subsets[memo_key] = self._subset(target, memo_key[1])
        return self._subsets[memo_key]

    def _subset(self, target: Any, bounds: tuple[float, ...]) -> ZoneSubset:
        import shapely
        from pyproj import CRS

        source = CRS.from_user_input(self.crs)
        same = source == target
        if same:
            hits = self._in_box(bounds)
        else:
            longest = max(bounds[2] - bounds[0], bounds[3] - bounds[1])
            footprint = shapely.segmentize(shapely.box(*bounds), longest / _FOOTPRINT_POINTS_PER_EDGE)
            footprint = _reproject(footprint, target, source)
            hits = np.sort(self.tree.query(footprint, predicate="intersects")).astype(np.int64)
        geoms = self.geometries[hits]
        if not same:
            geoms = self._project(geoms, hits, footprint, source, target)
        subset = pack(geoms, hits, target.to_string())
        log.debug("zones: %d of %d intersect the raster footprint %s", len(hits), len(self), bounds)
        return subset

    def _in_box(self, bounds: tuple[float, ...]) -> npt.NDArray[np.int64]:
        """The zones intersecting an axis-aligned box, increasing: ``tree.query(box, predicate="intersects")``.

        A zone whose bounds lie inside the box meets it, so only those straddling its border (a few hundred
        of a tile's 100,000) need the exact test, which costs ~1 us a zone; no STRtree needed.
        """
        import shapely

        if self._bounds is None:  # a scan of every zone's bounds: ~1 ms, against ~40 ms to build the STRtree
            self._bounds = shapely.bounds(self.geometries).reshape(-1, 4)
        b = self._bounds  # NaN for empty zones: they meet nothing
        near = (b[:, 0] <= bounds[2]) & (b[:, 2] >= bounds[0]) & (b[:, 1] <= bounds[3]) & (b[:, 3] >= bounds[1])
        inside = (b[:, 0] >= bounds[0]) & (b[:, 1] >= bounds[1]) & (b[:, 2] <= bounds[2]) & (b[:, 3] <= bounds[3])
        border = np.flatnonzero(near & ~inside)
        meets = np.zeros(len(b), dtype=bool)
        meets[border] = shapely.intersects(shapely.box(*bounds), self.geometries[border])
        return np.flatnonzero(inside | meets).astype(np.int64)

    def _project(self, geoms: Any, hits: Any, footprint: Any, source: Any, target: Any) -> Any:
        """Densify and reproject; zones reaching far beyond the raster are clipped to its surroundings first.

        Far from its central meridian a projection folds (UTM maps longitude 170 to finite nonsense), so the
        parts of a zone more than half a raster away are cut off before projecting: they hold no pixel of it.
        """
        import shapely

        x0, y0, x1, y1 = shapely.bounds(footprint)
        margin = 0.5 * max(x1 - x0, y1 - y0)
        near = shapely.box(x0 - margin, y0 - margin, x1 + margin, y1 + margin)
        b = shapely.bounds(geoms)
        far = (b[:, 0] < x0 - margin) | (b[:, 1] < y0 - margin) | (b[:, 2] > x1 + margin) | (b[:, 3] > y1 + margin)
        geoms = geoms.copy()
        geoms[far] = [polygonal_parts(g) for g in shapely.intersection(geoms[far], near)]
        step = _DENSIFY_DEGREES if source.is_geographic else _DENSIFY_METRES
        moved = _reproject(shapely.segmentize(geoms, step), source, target)
        for k in np.flatnonzero(~np.isfinite(shapely.bounds(moved)).all(axis=1) & ~shapely.is_empty(moved)):
            self.problems.append(ZoneProblem(self.ids[hits[k]], f"cannot be projected to {target.name}: no pixels"))
            log.warning("%s", self.problems[-1])
            moved[k] = shapely.from_wkt("POLYGON EMPTY")
        return moved


def pack(geoms: npt.NDArray[np.object_], indices: npt.NDArray[np.int64], crs: str) -> ZoneSubset:
    """Flatten polygonal geometries into a ``ZoneSubset`` (empty ones keep their place with no rings)."""
    import hashlib

    import shapely

    if len(geoms):
        coords, rings, polygons, parts = flatten(geoms)
    else:
        coords = np.empty((0, 2))
        rings = polygons = parts = np.zeros(1, dtype=np.int64)
    bounds = shapely.bounds(geoms).reshape(-1, 4) if len(geoms) else np.empty((0, 4))
    digest = hashlib.sha1(crs.encode())
    for array in (indices, coords):
        digest.update(np.ascontiguousarray(array).data)  # the bytes, without copying them
    return ZoneSubset(
        crs=crs,
        indices=np.asarray(indices, dtype=np.int64),
        coords=np.ascontiguousarray(coords, dtype=np.float64),
        ring_offsets=rings,
        polygon_offsets=polygons,
        part_offsets=parts,
        bounds=np.asarray(bounds, dtype=np.float64),
        key=digest.hexdigest(),
    )


Offsets = npt.NDArray[np.int64]


def flatten(geoms: npt.NDArray[np.object_]) -> tuple[npt.NDArray[np.float64], Offsets, Offsets, Offsets]:
    """Coordinates and ring, polygon and part offsets of (multi)polygons, as ``shapely.to_ragged_array`` lays
    out MultiPolygons (a Polygon is one part; an empty Polygon one part without rings).

    Without its Python object per ring: only the rings of polygons with holes are taken apart, every other
    ring's length is its polygon's number of coordinates (a tenth of the time on parcels).
    """
    import shapely

    kind = shapely.get_type_id(geoms)
    if not np.isin(kind, (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)).all():
        raise AccountingError("zones: only (multi)polygons can be flattened")  # _polygonal makes sure of it
    multi = kind == shapely.GeometryType.MULTIPOLYGON
    part_counts = np.ones(len(geoms), dtype=np.int64)
    part_counts[multi] = shapely.get_num_geometries(geoms[multi])
    polygons = _parts(geoms, multi, part_counts)
    ring_counts = np.where(shapely.is_empty(polygons), 0, 1 + shapely.get_num_interior_rings(polygons))
    ring_lengths = np.repeat(shapely.get_num_coordinates(polygons), ring_counts).astype(np.int64)
    holed = ring_counts > 1
    if holed.any():
        first = np.cumsum(ring_counts) - ring_counts
        ring_lengths[ranges(first[holed], ring_counts[holed])] = shapely.get_num_coordinates(
            shapely.get_rings(polygons[holed])
        )
    coords = shapely.get_coordinates(geoms)
    rings = _offsets(ring_lengths)
    if rings[-1] != len(coords):  # never expected: each coordinate belongs to exactly one ring
        raise AccountingError("zones: ring lengths do not add up to the coordinates")
    return coords, rings, _offsets(ring_counts), _offsets(part_counts)


def _parts(geoms: npt.NDArray[np.object_], multi: npt.NDArray[np.bool_], counts: Offsets) -> npt.NDArray[np.object_]:
    """Every polygon of ``geoms`` in order; a Polygon is its own part, only MultiPolygons are taken apart."""
    import shapely

    if not multi.any():
        return geoms
    polygons = np.empty(int(counts.sum()), dtype=object)
    first = np.cumsum(counts) - counts
    polygons[first[~multi]] = geoms[~multi]
    polygons[ranges(first[multi], counts[multi])] = shapely.get_parts(geoms[multi])
    return polygons


def ranges(first: Offsets, counts: Offsets) -> Offsets:
    """``first[i], first[i] + 1, ... first[i] + counts[i] - 1`` for every i, concatenated."""
    ends = np.cumsum(counts)
    return np.repeat(first - (ends - counts), counts) + np.arange(int(ends[-1]) if len(ends) else 0)


def _offsets(counts: Offsets) -> Offsets:
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def polygonal_parts(geom: Any) -> Any:
    """The polygons of a valid geometry (of a collection's members too), as one (multi)polygon, maybe empty."""
    import shapely

    if geom.geom_type in _POLYGONAL:
        return geom
    parts = shapely.get_parts(shapely.get_parts(geom))
    polygons = [p for p in parts if p.geom_type == "Polygon" and not p.is_empty]
    if not polygons:
        return shapely.from_wkt("POLYGON EMPTY")
    return shapely.union_all(polygons) if len(polygons) > 1 else polygons[0]


def _reproject(geoms: Any, source: Any, target: Any) -> Any:
    import shapely
    from pyproj import Transformer

    transformer = Transformer.from_crs(source, target, always_xy=True)

    def move(xy: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, move)
