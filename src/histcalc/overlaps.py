"""``--overlaps once``: which part of its footprint each selected file counts, so a ground location counts
once per acquisition. Planned on the driver from headers alone; tasks carry the result as a region key.

Among the selected files of one acquisition (:mod:`histcalc.acquisition`):

1. Copies of one tile: only the latest version counts (the others count nothing); several copies of the
   latest version on one grid are the halves of a split datastrip (at most four; more are duplicates):
   at each pixel the first half (by href) with data counts it (``Task.cover``: the reader reads the
   other halves' pixels too). Latest copies on another grid than the first count nothing.
2. A Sentinel-2 tile owns its natural region: its 100 km MGRS square (placed by its own geotransform),
   clipped to its UTM zone and latitude band. Natural regions of different tiles never overlap.
3. What no selected file owns naturally (the owner was filtered out or is missing, zone-edge slivers, files
   not on the grid) goes to the first selected file in priority order (tile id, then href) that covers it.

Each file's region is ``natural + (footprint - all natural regions - footprints of files before it)``, in
the file's own CRS: the regions partition the union of the footprints, so nothing is counted twice and no
observation is lost. Polygons from other CRSs are densified (every 50 m) before they are transformed, so
zone edges agree between the two sides to well under a millimetre. A pixel counts when its centre lies
in its file's region (the AOI's rule).
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from histcalc.acquisition import Facts, facts_of
from histcalc.errors import RasterReadError
from histcalc.grids import Grids
from histcalc.mgrs_grid import TileId
from histcalc.scenes import Scene

log = logging.getLogger(__name__)

OVERLAPS = ("count", "once")
NOTHING = "nothing"
"""The region key of a file that counts nothing (an older copy of a tile)."""
_DENSIFY_M = 50.0
_MAX_HALVES = 4  # a split datastrip makes 2 (rarely 3) products; more same-version copies are duplicates

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Spot:
    """Where a file lies: its CRS, bounds and tile (no href, no date: the memo key of its region)."""

    crs: str
    bounds: BBox
    tile: TileId | None


@dataclass(frozen=True)
class Placed:
    """A selected file on the ground: its grid (CRS and bounds from the header) and what it is."""

    href: str
    crs: str
    bounds: BBox
    tile: TileId | None
    version: str

    @property
    def priority(self) -> tuple[str, str]:
        return (str(self.tile) if self.tile else "~", self.href)

    @property
    def grid(self) -> tuple[str, BBox]:
        return (self.crs, self.bounds)

    @property
    def spot(self) -> Spot:
        return Spot(self.crs, self.bounds, self.tile)


@dataclass(frozen=True)
class Ownership:
    """Per file: the key of the region it counts (None: all of it) and the copies it yields to."""

    keys: Mapping[str, str | None]
    cover: Mapping[str, tuple[tuple[str, ...], int]]  # the other halves in order, how many come first
    regions: Mapping[str, bytes]  # key -> WKB polygon in the file's CRS


def plan_ownership(
    scenes: Sequence[Scene], gdal: Mapping[str, str], key: str = "time", grids: Grids | None = None
) -> Ownership:
    """The region each selected file counts (see the module's rule); ``grids``: headers the job already read."""
    groups: dict[str, list[tuple[Scene, Facts]]] = defaultdict(list)
    for scene in scenes:
        facts = facts_of(scene, key)
        if facts.acquisition is not None:
            groups[facts.acquisition].append((scene, facts))
    shared = [pair for group in groups.values() if len(group) > 1 for pair in group]
    placed = _place(shared, grids or Grids(gdal))
    keys: dict[str, str | None] = {}
    cover: dict[str, tuple[tuple[str, ...], int]] = {}
    regions: dict[str, bytes] = {}
    for group in groups.values():
        files = [placed[s.href] for s, _ in group if s.href in placed]
        _own_group(files, keys, cover, regions)
    log.info(
        "overlaps once: %d acquisition(s), %d file(s) share one; %d region(s)", len(groups), len(shared), len(regions)
    )
    return Ownership(keys, cover, regions)


def _place(pairs: list[tuple[Scene, Facts]], grids: Grids) -> dict[str, Placed]:
    """Each file's grid, from its header (see :mod:`histcalc.grids`)."""
    grids.read(scene.href for scene, _ in pairs)
    placed = {}
    for scene, facts in pairs:
        try:
            crs, bounds = grids.of(scene.href)
        except RasterReadError as exc:  # it fails by name when its task reads it
            log.warning("overlaps: cannot read the header of %s (%s)", scene.href, exc)
            continue
        placed[scene.href] = Placed(scene.href, crs.to_wkt(), bounds, facts.tile, facts.version)
    return placed


def _own_group(
    files: list[Placed],
    keys: dict[str, str | None],
    cover: dict[str, tuple[tuple[str, ...], int]],
    regions: dict[str, bytes],
) -> None:
    """Regions of one acquisition's files: copies first, then the partition of the tiles' footprints."""
    copies: dict[Any, list[Placed]] = defaultdict(list)
    for f in files:
        copies[str(f.tile) if f.tile else f.grid].append(f)
    tiles = []
    for same in copies.values():
        latest = max(f.version for f in same)
        kept = sorted((f for f in same if f.version == latest), key=lambda f: f.href)
        for f in same:  # older versions, and latest copies on another grid than the first, count nothing
            if f.version != latest or f.grid != kept[0].grid:
                keys[f.href], regions[NOTHING] = NOTHING, _empty_wkb()
        kept = [f for f in kept if f.grid == kept[0].grid]
        if len(kept) > _MAX_HALVES:  # each half reads the others: bounded, and these are no datastrip halves
            log.warning(
                "overlaps: %d copies of one tile and acquisition (%s ...); the first %d count",
                len(kept),
                kept[0].href,
                _MAX_HALVES,
            )
            for f in kept[_MAX_HALVES:]:
                keys[f.href], regions[NOTHING] = NOTHING, _empty_wkb()
            kept = kept[:_MAX_HALVES]
        for i, f in enumerate(kept if len(kept) > 1 else []):
            cover[f.href] = (tuple(k.href for k in kept if k is not f), i)
        tiles.append(kept)
    reps = [kept[0] for kept in tiles]
    for kept in tiles:
        me = kept[0]
        near = [r for r in reps if r is not me and _lonlat_box(r.spot).intersects(_lonlat_box(me.spot))]
        others = tuple(sorted(((r.spot, r.priority < me.priority) for r in near), key=_spot_order))
        wkb = _region_wkb(me.spot, others)
        key = None if wkb is None else hashlib.sha1(wkb).hexdigest()[:16]
        for f in kept:
            keys[f.href] = key
        if wkb is not None and key is not None:
            regions[key] = wkb


def _spot_order(pair: tuple[Spot, bool]) -> tuple[str, BBox, str, bool]:
    spot, first = pair
    return (spot.crs, spot.bounds, str(spot.tile), first)


@lru_cache(maxsize=4096)
def _region_wkb(me: Spot, others: tuple[tuple[Spot, bool], ...]) -> bytes | None:
    """WKB of the region of the file at ``me`` (its CRS) among ``others`` (with: does it come before ``me``);
    None when it is the whole footprint. Memoised: the same tile at every date usually has the same
    neighbours, and a ``Spot`` holds no date."""
    import shapely

    footprint = shapely.box(*me.bounds)
    near = [(_footprint_in(g, me.crs), g, first) for g, first in others]
    near = [(f, g, first) for f, g, first in near if f.intersects(footprint)]
    mine = _natural(me).intersection(footprint)
    claimed = shapely.union_all([mine, *(_natural_in(g, me.crs).intersection(f) for f, g, _ in near)])
    before = shapely.union_all([f for f, _, first in near if first])
    leftover = footprint.difference(claimed).difference(before)
    region = shapely.union_all([mine, leftover]).intersection(footprint)
    if footprint.difference(region).area == 0.0:
        return None
    return bytes(shapely.to_wkb(region))


@lru_cache(maxsize=4096)
def _lonlat_box(spot: Spot) -> Any:
    """A lon/lat box around the file's footprint (grown ~1 km): which files can meet at all."""
    import shapely

    w, s, e, n = _footprint_in(spot, "EPSG:4326").bounds
    return shapely.box(w - 0.01, s - 0.01, e + 0.01, n + 0.01)


@lru_cache(maxsize=4096)
def _footprint_in(spot: Spot, crs: str) -> Any:
    import shapely

    return _in_crs(shapely.box(*spot.bounds), spot.crs, crs)


@lru_cache(maxsize=4096)
def _natural_in(spot: Spot, crs: str) -> Any:
    return _in_crs(_natural(spot), spot.crs, crs)


@lru_cache(maxsize=4096)
def _natural(f: Spot) -> Any:
    """The tile's MGRS square clipped to its zone and band, in its CRS; empty off the Sentinel-2 grid."""
    import shapely

    if f.tile is None or not _is_utm_of(f.crs, f.tile):
        return shapely.Polygon()
    square = shapely.box(*f.tile.square(f.bounds[3]))
    lon0, lon1 = f.tile.zone_longitudes()
    lat0, lat1 = f.tile.band_latitudes()
    near = _in_crs(square.buffer(20_000.0, join_style="mitre"), f.crs, "EPSG:4326").bounds
    span = shapely.box(max(lon0, near[0]), max(lat0, near[1]), min(lon1, near[2]), min(lat1, near[3]))
    if span.is_empty or span.area == 0.0:
        return shapely.Polygon()
    return square.intersection(_in_crs(span, "EPSG:4326", f.crs, step=0.0005))


def _is_utm_of(crs: str, tile: TileId) -> bool:
    return _epsg(crs) == tile.epsg


@lru_cache(maxsize=256)
def _epsg(crs: str) -> int | None:
    from pyproj import CRS

    code: int | None = CRS.from_user_input(crs).to_epsg()
    return code


def _in_crs(geometry: Any, src: str, dst: str, step: float = _DENSIFY_M) -> Any:
    """``geometry`` from ``src`` to ``dst``, densified first so its edges follow the curves they map to."""
    import shapely

    if src == dst or geometry.is_empty:
        return geometry
    transformer = _transformer(src, dst)
    dense = shapely.segmentize(geometry, step)
    return shapely.transform(dense, lambda xy: _stack(transformer.transform(xy[:, 0], xy[:, 1])))


@lru_cache(maxsize=256)
def _transformer(src: str, dst: str) -> Any:
    from pyproj import Transformer

    return Transformer.from_crs(src, dst, always_xy=True)


def _stack(xy: tuple[Any, Any]) -> Any:
    import numpy as np

    return np.column_stack(xy)


@lru_cache(maxsize=1)
def _empty_wkb() -> bytes:
    import shapely

    return bytes(shapely.to_wkb(shapely.Polygon()))


def check_overlaps(overlaps: str, acquisition: str) -> None:
    """Both options are one of their words (checked before any pixel is read)."""
    from histcalc.acquisition import ACQUISITION_KEYS
    from histcalc.errors import UsageError

    if overlaps not in OVERLAPS:
        raise UsageError(f"--overlaps must be one of {', '.join(OVERLAPS)}, got {overlaps!r}")
    if acquisition not in ACQUISITION_KEYS:
        raise UsageError(f"--acquisition must be one of {', '.join(ACQUISITION_KEYS)}, got {acquisition!r}")


def assign(tasks: Sequence[Any], ownership: Ownership) -> list[Any]:
    """``tasks`` with their region key and cover copies (tasks of unshared files unchanged)."""
    return [
        replace(t, owner_key=ownership.keys[t.href], **_halves(ownership, t.href)) if t.href in ownership.keys else t
        for t in tasks
    ]


def _halves(ownership: Ownership, href: str) -> dict[str, Any]:
    others, before = ownership.cover.get(href, ((), 0))
    return {"cover": others, "cover_before": before}
