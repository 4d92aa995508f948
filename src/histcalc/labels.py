"""Zone labels for one raster window: int32 layers, 1 + position in the ``ZoneSubset``, 0 = no zone.

The pixel-centre rule is a numpy scanline over the subset's flat coordinate arrays (no shapely, no GeoJSON
dicts): for each pixel row, the centre line ``y = row + 0.5`` (pixel space) crosses each polygon edge whose
half-open span ``[y_low, y_high)`` contains it; sorted crossings pair up (even-odd: holes and multi-part
zones fall out) into half-open spans ``[x_in, x_out)`` of pixel centres. Both rules are half-open and every
edge is evaluated from its endpoints in one canonical order, so two zones sharing an edge compute the very
same crossing: a centre exactly on a shared edge or vertex belongs to exactly one of them (the one to its
right, or below in pixel rows). GDAL's default rasterisation follows the same centre rule.

Zones whose interiors overlap go to different layers (``ZoneSubset.layers``); within a layer the spans are
disjoint, so each layer is one cumulative sum. ``all_touched`` uses GDAL through rasterio (its all-touched
rule), with layers chosen so that zones within a pixel diagonal of each other never share one.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc.errors import AccountingError, UsageError
from histcalc.zones import ZoneSubset

log = logging.getLogger(__name__)

Labels = npt.NDArray[np.int32]


@dataclass(frozen=True)
class _Edges:
    """Every ring edge of a subset, start and end point in CRS units, with the subset position of its zone."""

    x0: npt.NDArray[np.float64]
    y0: npt.NDArray[np.float64]
    x1: npt.NDArray[np.float64]
    y1: npt.NDArray[np.float64]
    zone: npt.NDArray[np.int64]


def label_layers(
    subset: ZoneSubset, window_transform: Any, shape: tuple[int, int], all_touched: bool = False
) -> list[Labels]:
    """The label layers of a window (``window_transform``: rasterio Affine, north-up); only non-empty layers."""
    a, b, c, d, e, f = tuple(window_transform)[:6]
    if b != 0 or d != 0:
        raise UsageError("zone labels need a north-up raster grid (no rotation terms)")
    height, width = shape
    if len(subset) == 0 or height == 0 or width == 0:
        return []
    window_bounds = _window_bounds(a, c, e, f, height, width)
    if all_touched:
        return _touched_layers(subset, window_transform, shape, window_bounds)
    rows, zone, start, stop = _spans(_edges(subset), subset.bounds, (a, c, e, f), shape, window_bounds)
    if len(rows) == 0:
        return []
    single = _single_layer(rows, zone, start, stop, shape)
    if single is not None:
        return [single]
    layers = _layers(rows, zone, start, stop, shape, len(subset))
    return _fill(rows, zone, start, stop, layers, shape)


def _window_bounds(a: float, c: float, e: float, f: float, height: int, width: int) -> tuple[float, ...]:
    xs, ys = (c, c + a * width), (f, f + e * height)
    return min(xs), min(ys), max(xs), max(ys)


def _spans(
    edges: _Edges,
    zone_bounds: npt.NDArray[np.float64],
    affine: tuple[float, float, float, float],
    shape: tuple[int, int],
    window: tuple[float, ...],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Row, zone and half-open pixel-column range of every run of pixel centres inside a zone."""
    a, c, e, f = affine
    height, width = shape
    left, bottom, right, top = window
    near = (zone_bounds[:, 0] <= right) & (zone_bounds[:, 2] >= left)
    near &= (zone_bounds[:, 1] <= top) & (zone_bounds[:, 3] >= bottom)
    pick = near[edges.zone]
    pick &= np.minimum(edges.y0, edges.y1) <= top
    pick &= np.maximum(edges.y0, edges.y1) >= bottom
    # Pixel space; the same CRS coordinate always maps to the same pixel coordinate.
    px0, py0 = (edges.x0[pick] - c) / a, (edges.y0[pick] - f) / e
    px1, py1 = (edges.x1[pick] - c) / a, (edges.y1[pick] - f) / e
    zone = edges.zone[pick]
    # Canonical order (low y first) so an edge shared by two zones yields bit-identical crossings.
    swap = py1 < py0
    px0, px1 = np.where(swap, px1, px0), np.where(swap, px0, px1)
    py0, py1 = np.where(swap, py1, py0), np.where(swap, py0, py1)
    keep = py0 < py1
    px0, py0, px1, py1, zone = px0[keep], py0[keep], px1[keep], py1[keep], zone[keep]
    # Rows whose centre r + 0.5 lies in [py0, py1).
    first = np.clip(np.ceil(py0 - 0.5), 0, height).astype(np.int64)
    last = np.clip(np.ceil(py1 - 0.5), 0, height).astype(np.int64)
    count = np.maximum(last - first, 0)
    edge = np.repeat(np.arange(len(count)), count)
    rows = first[edge] + np.arange(len(edge)) - np.repeat(np.cumsum(count) - count, count)
    # Multiply before dividing: a crossing that lies exactly on a pixel centre (edges between lattice points,
    # say) then comes out exact instead of a rounding error to either side of it.
    x = px0[edge] + (rows + 0.5 - py0[edge]) * (px1 - px0)[edge] / (py1 - py0)[edge]
    # Centre c + 0.5 is right of the crossing iff c >= ceil(x - 0.5): inside a zone iff an odd number of its
    # crossings on the row have such a column, so sorting the integer columns pairs crossings exactly as
    # sorting x would (ties between columns cannot change which centres are inside).
    column = np.clip(np.ceil(x - 0.5), 0, width).astype(np.int64)
    keys = (zone[edge] * height + rows) * (width + 1) + column
    keys.sort(kind="stable")  # runs already sorted (edges in zone order, rows ascending): timsort merges them
    enter, leave = keys[0::2], keys[1::2]
    line = enter // (width + 1)
    if not np.array_equal(line, leave // (width + 1)):  # a ring that is not closed, or a bug: never guess
        raise AccountingError("zone labels: polygon edges do not cross pixel rows in pairs")
    start, stop = enter - line * (width + 1), leave - line * (width + 1)
    nonempty = stop > start
    line, start, stop = line[nonempty], start[nonempty], stop[nonempty]
    return line % height, line // height, start, stop


def _single_layer(
    rows: npt.NDArray[np.int64],
    zone: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    stop: npt.NDArray[np.int64],
    shape: tuple[int, int],
) -> Labels | None:
    """All zones in one layer, or None when two of them share a pixel centre (overlapping zones).

    Every label is >= 1, so a pixel covered twice is still non-zero but counted once: the labelled pixels fall
    short of the runs' total length exactly when some pixel is covered more than once.
    """
    labels = _burn(rows, start, stop, (zone + 1).astype(np.int32), shape)
    if np.count_nonzero(labels) != int((stop - start).sum()):
        return None
    return labels


def _burn(
    rows: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    stop: npt.NDArray[np.int64],
    value: npt.NDArray[np.int32],
    shape: tuple[int, int],
) -> Labels:
    """``value`` on every run: +value where it starts, -value where it stops, summed over the flat raster.

    A run stopping at the right edge stops at the first pixel of the next row, which is where it must end.
    """
    height, width = shape
    steps = np.zeros(height * width + 1, dtype=np.int32)
    np.add.at(steps, rows * width + start, value)
    np.add.at(steps, rows * width + stop, -value)
    return np.cumsum(steps[:-1], dtype=np.int32).reshape(shape)


def _layers(
    rows: npt.NDArray[np.int64],
    zone: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    stop: npt.NDArray[np.int64],
    shape: tuple[int, int],
    n_zones: int,
) -> npt.NDArray[np.int32]:
    """A layer per zone such that no two zones of one layer share a pixel centre of this window.

    Conflicts are found where they matter, on the runs themselves: sorted by (layer, row, start), a run that
    starts before the furthest stop so far in its (layer, row) overlaps the run that reached that stop. Found
    conflicts are recoloured greedily and checked again until none is left (zones that tile never conflict).
    """
    height, width = shape
    layers = np.zeros(n_zones, dtype=np.int32)
    left: list[npt.NDArray[np.int64]] = []
    right: list[npt.NDArray[np.int64]] = []
    while len(rows):
        layer = layers[zone].astype(np.int64)
        order = np.lexsort((start, rows, layer))
        base = (layer[order] * height + rows[order]) * (width + 1)
        begin, end = base + start[order], base + stop[order]
        furthest = np.maximum.accumulate(end)
        clash = np.flatnonzero(begin[1:] < furthest[:-1])
        if len(clash) == 0:
            break
        holder = np.maximum.accumulate(np.where(end == furthest, np.arange(len(end)), 0))
        left.append(zone[order][clash + 1])
        right.append(zone[order][holder[clash]])
        layers = greedy_layers(n_zones, np.concatenate(left), np.concatenate(right))
    return layers


def _fill(
    rows: npt.NDArray[np.int64],
    zone: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    stop: npt.NDArray[np.int64],
    zone_layers: npt.NDArray[np.int32],
    shape: tuple[int, int],
) -> list[Labels]:
    """One int32 raster per layer: +label where a run starts, -label where it stops, summed along each row."""
    layer_of_span = zone_layers[zone]
    out = []
    for layer in np.unique(layer_of_span):
        mine = layer_of_span == layer
        label = (zone[mine] + 1).astype(np.int32)
        out.append(_burn(rows[mine], start[mine], stop[mine], label, shape))
    return out


_EDGE_MEMO: OrderedDict[str, _Edges] = OrderedDict()
_EDGE_MEMO_SIZE = 4


def _edges(subset: ZoneSubset) -> _Edges:
    """The subset's edge table, memoised per subset key (the dates of one grid share one subset)."""
    cached = _EDGE_MEMO.get(subset.key)
    if cached is not None:
        _EDGE_MEMO.move_to_end(subset.key)
        return cached
    zone_of_polygon = np.repeat(np.arange(len(subset)), np.diff(subset.part_offsets))
    zone_of_ring = np.repeat(zone_of_polygon, np.diff(subset.polygon_offsets))
    zone_of_point = np.repeat(zone_of_ring, np.diff(subset.ring_offsets))
    is_start = np.ones(len(subset.coords), dtype=bool)
    is_start[subset.ring_offsets[1:] - 1] = False  # a ring's last point closes it: no edge starts there
    starts = np.flatnonzero(is_start)
    xy = subset.coords
    edges = _Edges(xy[starts, 0], xy[starts, 1], xy[starts + 1, 0], xy[starts + 1, 1], zone_of_point[starts])
    _EDGE_MEMO[subset.key] = edges
    if len(_EDGE_MEMO) > _EDGE_MEMO_SIZE:
        _EDGE_MEMO.popitem(last=False)
    return edges


_GEOMETRY_MEMO: OrderedDict[str, npt.NDArray[np.object_]] = OrderedDict()


def _geometries(subset: ZoneSubset) -> npt.NDArray[np.object_]:
    """The subset's shapely geometries, memoised per subset key like the edge table."""
    cached = _GEOMETRY_MEMO.get(subset.key)
    if cached is None:
        cached = _GEOMETRY_MEMO[subset.key] = subset.geometries()
        if len(_GEOMETRY_MEMO) > _EDGE_MEMO_SIZE:
            _GEOMETRY_MEMO.popitem(last=False)
    _GEOMETRY_MEMO.move_to_end(subset.key)
    return cached


def _touched_layers(
    subset: ZoneSubset, transform: Any, shape: tuple[int, int], window: tuple[float, ...]
) -> list[Labels]:
    """GDAL's all-touched rule; zones closer than a pixel diagonal could touch one pixel, so they get own layers."""
    import shapely
    from rasterio.features import rasterize

    geoms = _geometries(subset)
    left, bottom, right, top = window
    b = subset.bounds
    candidates = np.flatnonzero((b[:, 0] <= right) & (b[:, 2] >= left) & (b[:, 1] <= top) & (b[:, 3] >= bottom))
    near = candidates[shapely.intersects(geoms[candidates], shapely.box(*window))]
    if len(near) == 0:
        return []
    reach = math.hypot(transform.a, transform.e)
    tree = shapely.STRtree(geoms[near])
    left, right = tree.query(geoms[near], predicate="dwithin", distance=reach)
    keep = left < right
    layers = greedy_layers(len(near), left[keep], right[keep])
    out = []
    for layer in np.unique(layers):
        members = near[layers == layer]
        shapes = [(geoms[k], int(k) + 1) for k in members]
        burned = rasterize(shapes, out_shape=shape, transform=transform, all_touched=True, fill=0, dtype="int32")
        out.append(np.ascontiguousarray(burned, dtype=np.int32))
    return out


def greedy_layers(n: int, left: npt.NDArray[np.int64], right: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
    """Smallest layer not taken by an earlier neighbour, for each of ``n`` nodes of the conflict graph."""
    layers = np.zeros(n, dtype=np.int32)
    if len(left) == 0:
        return layers
    neighbours: dict[int, list[int]] = {}
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    for node in sorted(neighbours):
        taken = {int(layers[m]) for m in neighbours[node] if m < node}
        layers[node] = next(k for k in range(len(taken) + 1) if k not in taken)
    return layers


class LabelCache:
    """Label layers per (subset, grid window, rule), least recently used dropped beyond ``max_bytes``.

    The files of one tile grid (all dates of a Sentinel-2 tile) share their subset (``Zones.for_raster`` is
    memoised) and their window transforms, so after the first date every window's labels are a cache hit.
    Returned arrays are read-only: they are shared between files.
    """

    def __init__(self, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self.hits = self.misses = 0
        self._bytes = 0
        self._entries: OrderedDict[tuple[Any, ...], list[Labels]] = OrderedDict()

    def get(
        self, subset: ZoneSubset, window_transform: Any, shape: tuple[int, int], all_touched: bool = False
    ) -> list[Labels]:
        key = (subset.key, tuple(window_transform)[:6], tuple(shape), all_touched)
        if key in self._entries:
            self.hits += 1
            self._entries.move_to_end(key)
            return self._entries[key]
        self.misses += 1
        layers = label_layers(subset, window_transform, shape, all_touched)
        for layer in layers:
            layer.setflags(write=False)
        self._entries[key] = layers
        self._bytes += sum(layer.nbytes for layer in layers)
        while self._bytes > self.max_bytes and len(self._entries) > 1:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= sum(layer.nbytes for layer in dropped)
        return layers


_PROCESS_CACHE: LabelCache | None = None


def process_cache() -> LabelCache:
    """One label cache per process (per Spark python worker or pool worker), created on first use."""
    global _PROCESS_CACHE
    if _PROCESS_CACHE is None:
        _PROCESS_CACHE = LabelCache()
    return _PROCESS_CACHE
