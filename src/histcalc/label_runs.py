"""Runs of pixels inside zones in one raster window: a scanline over the subset's ring edges (no shapely, no
GeoJSON dicts), in numpy, with its inner loops in C where the kernels are built (``_native_labels.c``, held to
the numpy bit for bit by the tests).

The pixel-centre rule: for each pixel row, the centre line ``y = row + 0.5`` (pixel space) crosses each polygon
edge whose half-open span ``[y_low, y_high)`` contains it; the crossings of a (zone, row), sorted, pair up
(even-odd: holes and multi-part zones fall out) into half-open runs ``[x_in, x_out)`` of pixel centres. Both
rules are half-open and every edge is evaluated from its endpoints in one canonical order, so two zones sharing
an edge compute the very same crossing: a centre exactly on a shared edge or vertex belongs to exactly one of
them (the one to its right, or below in pixel rows). GDAL's default rasterisation uses the same centre rule.

``all_touched`` adds, per edge and pixel row, the pixels whose open square the edge passes through: a pixel
counts for a zone when the zone's interior meets the pixel's open square (touching only its side or corner
does not count). Neighbouring zones then share the pixels along their common edge.

A run is (row, zone, start, stop): columns ``start .. stop - 1`` of a row of the window, zone a subset position.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc.errors import AccountingError
from histcalc.kernel_loading import native_kernels
from histcalc.zones import ZoneSubset, ranges

Runs = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]
Float = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Edges:
    """Every ring edge of a subset, start and end point in CRS units, with the subset position of its zone."""

    x0: npt.NDArray[np.float64]
    y0: npt.NDArray[np.float64]
    x1: npt.NDArray[np.float64]
    y1: npt.NDArray[np.float64]
    zone: npt.NDArray[np.int64]
    low: npt.NDArray[np.float64]
    """min(y0, y1): computed once per subset, not per window."""
    high: npt.NDArray[np.float64]


_EDGE_MEMO: OrderedDict[str, Edges] = OrderedDict()
_EDGE_MEMO_SIZE = 4


def edge_table(subset: ZoneSubset) -> Edges:
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
    y0, y1 = xy[starts, 1], xy[starts + 1, 1]
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    edges = Edges(xy[starts, 0], y0, xy[starts + 1, 0], y1, zone_of_point[starts], low, high)
    _EDGE_MEMO[subset.key] = edges
    if len(_EDGE_MEMO) > _EDGE_MEMO_SIZE:
        _EDGE_MEMO.popitem(last=False)
    return edges


def window_bounds(a: float, c: float, e: float, f: float, height: int, width: int) -> tuple[float, ...]:
    xs, ys = (c, c + a * width), (f, f + e * height)
    return min(xs), min(ys), max(xs), max(ys)


def pixel_edges(
    edges: Edges, zone_bounds: Float, affine: tuple[float, float, float, float], window: tuple[float, ...]
) -> tuple[Float, Float, Float, Float, npt.NDArray[np.int64]]:
    """The edges that can meet the window, in pixel space, lower end (smaller row coordinate) first."""
    a, c, e, f = affine
    left, bottom, right, top = window
    near = (zone_bounds[:, 0] <= right) & (zone_bounds[:, 2] >= left)
    near &= (zone_bounds[:, 1] <= top) & (zone_bounds[:, 3] >= bottom)
    pick = near[edges.zone]
    pick &= edges.low <= top
    pick &= edges.high >= bottom
    # The same CRS coordinate always maps to the same pixel coordinate.
    px0, py0 = (edges.x0[pick] - c) / a, (edges.y0[pick] - f) / e
    px1, py1 = (edges.x1[pick] - c) / a, (edges.y1[pick] - f) / e
    # Canonical order so an edge shared by two zones yields bit-identical crossings in both.
    swap = (py1 < py0) | ((py1 == py0) & (px1 < px0))
    px0, px1 = np.where(swap, px1, px0), np.where(swap, px0, px1)
    py0, py1 = np.where(swap, py1, py0), np.where(swap, py0, py1)
    return px0, py0, px1, py1, edges.zone[pick]


def _x_at(px0: Float, py0: Float, dx: Float, dy: Float, y: Float) -> Float:
    """x of the edge from (px0, py0) with run ``dx`` over rise ``dy`` at height ``y``, computed in ``y`` (in place).

    ``px0 + (y - py0) * dx / dy``, one operation at a time in that order, so every caller gets the same bits.
    Multiply before dividing: a crossing that lies exactly on a pixel centre or grid line (edges between
    lattice points, say) then comes out exact instead of a rounding error to either side of it.
    """
    y -= py0
    y *= dx
    y /= dy
    y += px0
    return y


def repeat_rows(first: npt.NDArray[np.int64], count: npt.NDArray[np.int64]) -> tuple[Any, Any]:
    """For items with ``count`` rows from ``first`` on: the item of each (item, row) pair, and the row."""
    return np.repeat(np.arange(len(count)), count), ranges(first, count)


def centre_runs(edges: tuple[Float, Float, Float, Float, npt.NDArray[np.int64]], shape: tuple[int, int]) -> Runs:
    """Row, zone and half-open pixel-column range of every run of pixel centres inside a zone."""
    height, width = shape
    px0, py0, px1, py1, zone = edges
    keep = py0 < py1
    px0, py0, px1, py1, zone = px0[keep], py0[keep], px1[keep], py1[keep], zone[keep]
    # Rows whose centre r + 0.5 lies in [py0, py1).
    first = np.clip(np.ceil(py0 - 0.5), 0, height).astype(np.int64)
    last = np.clip(np.ceil(py1 - 0.5), 0, height).astype(np.int64)
    count = np.maximum(last - first, 0)
    native = native_kernels()
    if native is not None:  # the same runs, bucketed per zone in C (~10 x faster than sorting every crossing)
        try:
            runs: Runs | None = native.centre_runs(px0, py0, px1 - px0, py1 - py0, zone, first, count, width)
        except ValueError as exc:
            raise AccountingError(f"zone labels: {exc}") from exc
        if runs is not None:
            return runs
    rows = ranges(first, count)
    # each edge's values repeated over its rows: a sequential copy, cheaper than a gather
    x0, y0, dx, dy = (np.repeat(v, count) for v in (px0, py0, px1 - px0, py1 - py0))
    x = _x_at(x0, y0, dx, dy, np.add(rows, 0.5, dtype=np.float64))
    # Centre c + 0.5 is right of the crossing iff c >= ceil(x - 0.5): inside a zone iff an odd number of its
    # crossings on the row have such a column, so sorting the integer columns pairs crossings exactly as
    # sorting x would (ties between columns cannot change which centres are inside).
    x -= 0.5
    column = np.clip(np.ceil(x, out=x), 0, width, out=x).astype(np.int64)
    keys = np.repeat(zone, count)
    keys *= height
    keys += rows
    keys *= width + 1
    keys += column
    keys.sort(kind="stable")  # runs already sorted (edges in zone order, rows ascending): timsort merges them
    enter, leave = keys[0::2], keys[1::2]
    line = enter // (width + 1)
    if not np.array_equal(line, leave // (width + 1)):  # a ring that is not closed, or a bug: never guess
        raise AccountingError("zone labels: polygon edges do not cross pixel rows in pairs")
    start, stop = enter - line * (width + 1), leave - line * (width + 1)
    nonempty = stop > start
    line, start, stop = line[nonempty], start[nonempty], stop[nonempty]
    return line % height, line // height, start, stop


def edge_runs(edges: tuple[Float, Float, Float, Float, npt.NDArray[np.int64]], shape: tuple[int, int]) -> Runs:
    """The pixels whose open square an edge passes through (for all-touched), as runs per (edge, row).

    Row strip r (open: r < y < r + 1) meets the edge when its y range reaches into it; within the strip the
    edge spans x in (x_min, x_max), which passes through the open squares of columns floor(x_min) to
    ceil(x_max) - 1 (a vertical piece only when x is not on a grid line: touching a pixel's side is not
    entering it). A horizontal edge on a grid line enters no square.
    """
    height, width = shape
    px0, py0, px1, py1, zone = edges
    flat = py0 == py1
    first = np.floor(py0).astype(np.int64)
    last = np.where(flat, np.where(py0 == np.floor(py0), first - 1, first), np.ceil(py1).astype(np.int64) - 1)
    first, last = np.clip(first, 0, height), np.clip(last, -1, height - 1)
    native = native_kernels()
    if native is not None:  # the same runs, one edge and row at a time in C (no arrays per (edge, row))
        runs: Runs = native.edge_runs(px0, py0, px1, py1, zone, first, np.maximum(last - first + 1, 0), width)
        return runs
    edge, rows = repeat_rows(first, np.maximum(last - first + 1, 0))
    x0, y0, x1, y1 = px0[edge], py0[edge], px1[edge], py1[edge]
    sloped = y0 < y1
    low = np.maximum(rows.astype(np.float64), y0)
    high = np.minimum(rows + 1.0, y1)
    with np.errstate(divide="ignore", invalid="ignore"):
        xa = np.where(sloped, _x_at(x0, y0, x1 - x0, y1 - y0, low), x0)
        xb = np.where(sloped, _x_at(x0, y0, x1 - x0, y1 - y0, high), x1)
    x_min, x_max = np.minimum(xa, xb), np.maximum(xa, xb)
    start = np.floor(x_min)
    stop = np.where(x_min < x_max, np.ceil(x_max), np.where(x_min == start, start, start + 1))
    start, stop = np.clip(start, 0, width).astype(np.int64), np.clip(stop, 0, width).astype(np.int64)
    nonempty = stop > start
    return rows[nonempty], zone[edge][nonempty], start[nonempty], stop[nonempty]


def concat_runs(a: Runs, b: Runs) -> Runs:
    return tuple(np.concatenate([x, y]) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def union_runs(runs: Runs, shape: tuple[int, int]) -> Runs:
    """Overlapping or abutting runs of one zone on one row merged into one."""
    height, width = shape
    rows, zone, start, stop = runs
    if len(rows) == 0:
        return runs
    line = zone * height + rows
    order = np.argsort(line * (width + 1) + start, kind="stable")  # one int64 key: much cheaper than lexsort
    line, start, stop = line[order], start[order], stop[order]
    reach = np.maximum.accumulate(line * (width + 1) + stop)  # furthest stop so far, within the line
    fresh = np.ones(len(line), dtype=bool)
    fresh[1:] = line[1:] * (width + 1) + start[1:] > reach[:-1]
    begin = np.flatnonzero(fresh)
    merged_stop = reach[np.append(begin[1:], len(line)) - 1] - line[begin] * (width + 1)
    return line[begin] % height, line[begin] // height, start[begin], merged_stop
