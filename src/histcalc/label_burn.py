"""Runs of pixels inside zones (``histcalc.label_runs``) burnt into label rasters: all zones in one layer unless
two of them share a pixel of the window (overlapping zones, or neighbours with ``all_touched``); then they are
spread over layers (greedy colouring of the conflicts found on the runs) so that the runs of one layer are
disjoint and each layer is burnt at once. The burn and the colouring run in C where the kernels are built.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc.kernel_loading import native_kernels
from histcalc.label_runs import repeat_rows

Labels = npt.NDArray[np.integer[Any]]


def single_layer(
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
    labels = burn(rows, start, stop, zone + 1, shape, dtype)
    if np.count_nonzero(labels) != int((stop - start).sum()):
        return None
    return labels


def burn(
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


def conflict_layers(
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
    first, other = repeat_rows(np.arange(len(begin)) + 1, np.maximum(upto - np.arange(len(begin)) - 1, 0))
    a, b = zone[order][first], zone[order][other]
    pairs = np.unique(np.minimum(a, b) * n_zones + np.maximum(a, b))
    return greedy_layers(n_zones, pairs // n_zones, pairs % n_zones)


def fill_layers(
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
        burn(rows[mine], start[mine], stop[mine], zone[mine] + 1, shape, dtype, out[k])
    return out


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
