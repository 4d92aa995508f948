"""Zone labels for one raster window: layers of window-local ids (uint16, int32 past 65,534 zones), 0 = no zone.

The pixel-centre rule is a scanline over the subset's flat coordinate arrays (no shapely, no GeoJSON dicts),
in numpy, its runs and their burning in C where the kernels are built (``_native_labels.c``, held to the numpy
bit for bit by the tests): for each pixel row, the centre line ``y = row + 0.5`` (pixel space) crosses each
polygon edge whose half-open span ``[y_low, y_high)`` contains it; the crossings of a (zone, row), sorted, pair
up (even-odd: holes and multi-part zones fall out) into half-open runs ``[x_in, x_out)`` of pixel centres. Both
rules are half-open and every edge is evaluated from its endpoints in one canonical order, so two zones sharing
an edge compute the very same crossing: a centre exactly on a shared edge or vertex belongs to exactly one of them
(the one to its right, or below in pixel rows). GDAL's default rasterisation uses the same centre rule.

``all_touched`` adds, per edge and pixel row, the pixels whose open square the edge passes through: a pixel
counts for a zone when the zone's interior meets the pixel's open square (touching only its side or corner
does not count). Neighbouring zones then share the pixels along their common edge.

All zones go in one layer unless two of them share a pixel of the window (overlapping zones, or neighbours
with ``all_touched``); then they are spread over layers (greedy colouring of the conflicts found on the runs)
so that the runs of one layer are disjoint and each layer is one cumulative sum.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc.errors import AccountingError, UsageError
from histcalc.kernel_loading import native_kernels
from histcalc.zones import ZoneSubset, ranges

log = logging.getLogger(__name__)

Labels = npt.NDArray[np.integer[Any]]
U16_ZONES = 65_535
"""A window with fewer zones than this has uint16 labels (local ids 1..zones), int32 otherwise."""


@dataclass(frozen=True)
class _Edges:
    """Every ring edge of a subset, start and end point in CRS units, with the subset position of its zone."""

    x0: npt.NDArray[np.float64]
    y0: npt.NDArray[np.float64]
    x1: npt.NDArray[np.float64]
    y1: npt.NDArray[np.float64]
    zone: npt.NDArray[np.int64]
    low: npt.NDArray[np.float64]
    """min(y0, y1): computed once per subset, not per window."""
    high: npt.NDArray[np.float64]


def label_layers(
    subset: ZoneSubset, window_transform: Any, shape: tuple[int, int], all_touched: bool = False
) -> list[Labels]:
    """The label layers of a window (``window_transform``: rasterio Affine, no rotation); only non-empty ones."""
    labels = window_labels(subset, window_transform, shape, all_touched)
    ids = labels.positions()
    return [ids[layer] for layer in labels.layers]


def window_labels(
    subset: ZoneSubset, window_transform: Any, shape: tuple[int, int], all_touched: bool = False
) -> WindowLabels:
    """:func:`label_layers` in window-local ids (see :class:`WindowLabels`), as the counting uses them."""
    a, b, c, d, e, f = tuple(window_transform)[:6]
    if b != 0 or d != 0:
        raise UsageError("zone labels need a raster grid without rotation terms")
    height, width = shape
    none = WindowLabels([], np.zeros(0, np.int64), ())
    if len(subset) == 0 or height == 0 or width == 0:
        return none
    edges = _pixel_edges(_edges(subset), subset.bounds, (a, c, e, f), _window_bounds(a, c, e, f, height, width))
    rows, zone, start, stop = _centre_runs(edges, shape)
    if all_touched:
        rows, zone, start, stop = _union(_concat((rows, zone, start, stop), _edge_runs(edges, shape)), shape)
    if len(rows) == 0:
        return none
    zones, local = _zone_ids(zone)  # local id = 1 + index into zones
    dtype = np.uint16 if len(zones) < U16_ZONES else np.int32
    single = None if all_touched else _single_layer(rows, local, start, stop, shape, dtype)  # neighbours touch
    if single is not None:
        return WindowLabels([single], zones, (int((stop - start).sum()),))
    stacked = _fill(rows, local, start, stop, _layers(rows, local, start, stop, shape, len(zones)), shape, dtype)
    return WindowLabels(list(stacked), zones, tuple(int(np.count_nonzero(layer)) for layer in stacked), stacked)


def _zone_ids(zone: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``np.unique(zone, return_inverse=True)``; in one pass when ``zone`` is sorted, as the runs come out."""
    change = zone[1:] != zone[:-1]
    if len(zone) == 0 or not (zone[1:] >= zone[:-1]).all():
        zones, local = np.unique(zone, return_inverse=True)
        return zones, local.reshape(-1)
    local = np.zeros(len(zone), dtype=np.int64)
    np.cumsum(change, out=local[1:])
    return zone[np.concatenate([[True], change])], local


def _window_bounds(a: float, c: float, e: float, f: float, height: int, width: int) -> tuple[float, ...]:
    xs, ys = (c, c + a * width), (f, f + e * height)
    return min(xs), min(ys), max(xs), max(ys)


Runs = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]
Float = npt.NDArray[np.float64]


def _pixel_edges(
    edges: _Edges, zone_bounds: Float, affine: tuple[float, float, float, float], window: tuple[float, ...]
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


def _repeat_rows(first: npt.NDArray[np.int64], count: npt.NDArray[np.int64]) -> tuple[Any, Any]:
    """For items with ``count`` rows from ``first`` on: the item of each (item, row) pair, and the row."""
    return np.repeat(np.arange(len(count)), count), ranges(first, count)


def _centre_runs(edges: tuple[Float, Float, Float, Float, npt.NDArray[np.int64]], shape: tuple[int, int]) -> Runs:
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


def _edge_runs(edges: tuple[Float, Float, Float, Float, npt.NDArray[np.int64]], shape: tuple[int, int]) -> Runs:
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
    edge, rows = _repeat_rows(first, np.maximum(last - first + 1, 0))
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


def _concat(a: Runs, b: Runs) -> Runs:
    return tuple(np.concatenate([x, y]) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _union(runs: Runs, shape: tuple[int, int]) -> Runs:
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


def _single_layer(
    rows: npt.NDArray[np.int64],
    zone: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    stop: npt.NDArray[np.int64],
    shape: tuple[int, int],
    dtype: type[np.integer[Any]],
) -> Labels | None:
    """All zones in one layer, or None when two of them share a pixel centre (overlapping zones).

    Every label is >= 1, so a pixel covered twice is still non-zero but counted once: the labelled pixels fall
    short of the runs' total length exactly when some pixel is covered more than once.
    """
    labels = _burn(rows, start, stop, zone + 1, shape, dtype)
    if np.count_nonzero(labels) != int((stop - start).sum()):
        return None
    return labels


def _burn(
    rows: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    stop: npt.NDArray[np.int64],
    value: npt.NDArray[np.int64],
    shape: tuple[int, int],
    dtype: type[np.integer[Any]],
    out: Labels | None = None,
) -> Labels:
    """``value`` on every run: +value where it starts, -value where it stops, summed over the flat raster.

    A run stopping at the right edge stops at the first pixel of the next row, which is where it must end.
    In ``dtype``: uint16 sums wrap around, but modulo 2**16 every step adds up exactly, and labels below
    2**16 come out right; made as uint16, a window's labels fault in half the pages of int32 and need no
    narrowing copy. ``out``: a zeroed raster of ``shape`` and ``dtype`` to burn into (a layer of a stack).
    """
    height, width = shape
    native = native_kernels()
    if native is not None:
        labels = np.zeros(shape, dtype=dtype) if out is None else out
        native.burn_runs(rows, start, stop, value, labels)
        return labels
    steps = np.zeros(height * width + 1, dtype=dtype)
    label = value.astype(dtype)
    np.add.at(steps, rows * width + start, label)
    np.subtract.at(steps, rows * width + stop, label)
    np.cumsum(steps, dtype=dtype, out=steps)  # in place: a fresh raster costs its page faults, as much as the sum
    if out is not None:
        out[...] = steps[:-1].reshape(shape)
        return out
    return steps[:-1].reshape(shape)


def _layers(
    rows: npt.NDArray[np.int64],
    zone: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    stop: npt.NDArray[np.int64],
    shape: tuple[int, int],
    n_zones: int,
) -> npt.NDArray[np.int32]:
    """A layer per zone such that no two zones of one layer share a pixel of this window.

    Conflicts are found where they matter, on the runs themselves (one zone's runs never overlap): sorted by
    (row, start), run i overlaps exactly the later runs of its row that start before it stops.
    """
    width = shape[1]
    order = np.argsort(rows * (width + 1) + start, kind="stable")
    begin = rows[order] * (width + 1) + start[order]
    end = rows[order] * (width + 1) + stop[order]
    upto = np.searchsorted(begin, end, side="left")  # runs i+1 .. upto-1 overlap run i
    first, other = _repeat_rows(np.arange(len(begin)) + 1, np.maximum(upto - np.arange(len(begin)) - 1, 0))
    a, b = zone[order][first], zone[order][other]
    pairs = np.unique(np.minimum(a, b) * n_zones + np.maximum(a, b))
    return greedy_layers(n_zones, pairs // n_zones, pairs % n_zones)


def _fill(
    rows: npt.NDArray[np.int64],
    zone: npt.NDArray[np.int64],
    start: npt.NDArray[np.int64],
    stop: npt.NDArray[np.int64],
    zone_layers: npt.NDArray[np.int32],
    shape: tuple[int, int],
    dtype: type[np.integer[Any]],
) -> Labels:
    """One raster per layer of the runs of its zones (disjoint within a layer, so sums are labels), stacked in one
    array: the counting kernel takes them so, every date, without a copy."""
    layer_of_span = zone_layers[zone]
    used = np.unique(layer_of_span)
    out: Labels = np.zeros((len(used), *shape), dtype=dtype)
    for k, layer in enumerate(used):
        mine = layer_of_span == layer
        _burn(rows[mine], start[mine], stop[mine], zone[mine] + 1, shape, dtype, out[k])
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
    y0, y1 = xy[starts, 1], xy[starts + 1, 1]
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    edges = _Edges(xy[starts, 0], y0, xy[starts + 1, 0], y1, zone_of_point[starts], low, high)
    _EDGE_MEMO[subset.key] = edges
    if len(_EDGE_MEMO) > _EDGE_MEMO_SIZE:
        _EDGE_MEMO.popitem(last=False)
    return edges


def greedy_layers(n: int, left: npt.NDArray[np.int64], right: npt.NDArray[np.int64]) -> npt.NDArray[np.int32]:
    """Smallest layer not taken by an earlier neighbour, for each of ``n`` nodes of the conflict graph."""
    native = native_kernels()
    if native is not None:  # a tile of parcels with --all-touched: ~0.5 s of Python loops, ~10 ms in C
        layers: npt.NDArray[np.int32] = native.greedy_layers(n, left, right)
        return layers
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


@dataclass(frozen=True)
class WindowLabels:
    """A window's label layers in window-local ids: 1 + index into ``zones`` (0 = no zone).

    ``zones`` are the subset positions of the zones with a pixel in the window, increasing. Counting into
    local ids needs a dense array of the window's zones only (a tenth of a tile's, say), not of every zone
    the file meets. The layers are read-only: they are shared between the files of one grid.
    """

    layers: Sequence[npt.NDArray[np.integer[Any]]]  # uint16 while the window has < U16_ZONES zones, else int32
    zones: npt.NDArray[np.int64]
    pixels: tuple[int, ...]
    """The labelled pixels of each layer."""
    block: npt.NDArray[np.integer[Any]] | None = None
    """Several layers as one array (``layers`` are its views), as the counting kernel takes them."""

    def stacked(self) -> npt.NDArray[np.integer[Any]]:
        """The layers as one ``(layers, height, width)`` array, a view where they were made so."""
        if self.block is not None:
            return self.block
        return self.layers[0][None] if len(self.layers) == 1 else np.stack(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def nbytes(self) -> int:
        return sum(layer.nbytes for layer in self.layers) + self.zones.nbytes  # views of block: its bytes

    def positions(self) -> npt.NDArray[np.int32]:
        """Local id -> 1 + subset position (0 -> 0): the layers' labels in the subset's numbering."""
        return np.concatenate([[0], self.zones + 1]).astype(np.int32)
