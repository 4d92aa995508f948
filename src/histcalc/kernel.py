"""Counting kernels: per-DN, per-(zone, DN) and per-bin counts in one pass over a decoded block.

Each kernel applies the nodata value, the AOI mask, the mask band and the quality mask while it
counts, so no boolean temporaries or ``data[keep]`` copies are made. Every kernel has a numpy
reference implementation beside it (``*_numpy``) with the same contract; tests compare the two on
random inputs. The compiled kernels are C (:mod:`histcalc._native`, built into the wheel) or, in an
installation built without a C compiler, numba's (:mod:`histcalc._jit`); ``HISTCALC_KERNEL=numpy``
selects the references (debugging). Which kernels a process counts with, and when numba's load (a
background thread, so the first blocks count with numpy), is :mod:`histcalc.kernel_loading`'s concern.

Classification of a pixel, the same in every kernel (``task_counter.TaskCounter`` relies on it):
outside the AOI: not seen; mask band invalid: ``nodata``; value is nodata (the nodata value, NaN):
nodata (DN kernels leave it in its DN column, the caller moves it); quality class dropped:
``masked``; otherwise counted (float kernel: ``below``/``above`` outside the edges).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc.kernel_loading import (
    DN_WAYS_8BIT,
    NO_CLASSES,
    NO_LUT,
    NO_MASK,
    compiled_kernels,
    kernel_family,
    use_compiled,
)

Array = npt.NDArray[Any]
Counts = npt.NDArray[np.int64]
DenseCounts = npt.NDArray[np.integer[Any]]  # int64, or int32 where no cell can pass 2**31 - 1
BoolArray = npt.NDArray[np.bool_]
# a mask band as read (0 = masked, any other value = valid) or a boolean array
ValidArray = npt.NDArray[Any]
# -- the per-DN count -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Quality:
    """A quality layer on the data's grid: its classes and which of them drop a pixel (``dropped[class]``)."""

    classes: Array
    dropped: BoolArray

    @classmethod
    def of(cls, classes: Array, drop: tuple[int, ...]) -> Quality:
        """``classes`` with the values in ``drop`` dropped; any dtype (non-8/16-bit ones become a 0/1 layer)."""
        if classes.dtype in (np.uint8, np.uint16):
            lut = np.zeros(np.iinfo(classes.dtype).max + 1, dtype=np.bool_)
            lut[[v for v in drop if 0 <= v < lut.size]] = True
            return cls(classes, lut)
        flags = np.isin(classes, drop).view(np.uint8)
        return cls(flags, np.array([False, True]))

    @classmethod
    def keep_all(cls) -> Quality:
        """No quality layer: the kernels' stand-in that drops nothing."""
        return cls(NO_CLASSES, NO_LUT)

    @classmethod
    def of_clear(cls, clear: BoolArray) -> Quality:
        """A boolean layer, True where a pixel is clear (kept)."""
        return cls(clear.view(np.uint8), np.array([True, False]))


@dataclass(frozen=True)
class Tallies:
    """What one call saw besides its counts: pixels inside the AOI, nodata by mask band, masked."""

    pixels: int = 0
    nodata: int = 0
    masked: int = 0


def dn_ways(dtype: np.dtype[Any]) -> int:
    """Sub-histograms to use for ``dtype``: interleaving pays for 256 bins, not for 65536 (cache)."""
    return DN_WAYS_8BIT if dtype.itemsize == 1 else 1


def count_dn(
    data: Array,
    counts: Counts,
    lo: int,
    nodata_dn: int | None = None,
    inside: BoolArray | None = None,
    valid: ValidArray | None = None,
    quality: Quality | None = None,
    compiled: bool | None = None,
) -> Tallies:
    """Add the DNs of 2-D integer ``data`` to ``counts[way, dn - lo]`` (any number of ways; sum them).

    Pixels with the nodata DN are counted in its column whatever their quality class (the caller
    moves that column to nodata), so ``nodata_dn`` only decides that the quality mask spares them.
    ``compiled``: the compiled kernels or numpy (None: :func:`use_compiled` decides, for this block).
    """
    _check_dn_columns(data, counts, lo)
    check_shapes(data, inside, valid, None if quality is None else quality.classes)
    sentinel = lo - 1 if nodata_dn is None else nodata_dn
    if not (use_compiled() if compiled is None else compiled):
        return count_dn_numpy(data, counts, lo, sentinel, inside, valid, quality)
    _jit = compiled_kernels()
    q = quality or Quality.keep_all()
    out = np.zeros(3, dtype=np.int64)
    for d, i, v, c in flat_parts(data, inside, valid, q.classes):
        out += _jit.count_dn(d, counts, lo, sentinel, i, v, c, q.dropped, *used_flags(inside, valid, quality))
    return Tallies(int(out[0]), int(out[1]), int(out[2]))


def _check_dn_columns(data: Array, counts: DenseCounts, lo: int) -> None:
    """Every DN of ``data``'s dtype has a column (the kernels write without bounds checks)."""
    info = np.iinfo(data.dtype)
    if lo > info.min or counts.shape[-1] < info.max - lo + 1:
        raise ValueError(f"counts from DN {lo} with {counts.shape[-1]} columns cannot hold {data.dtype} data")


def check_shapes(*arrays: Array | None) -> None:
    """The layers to count share one shape (the kernels read without bounds checks)."""
    shapes = {a.shape for a in arrays if a is not None}
    if len(shapes) > 1:
        raise ValueError(f"arrays to count must share one shape, got {sorted(shapes)}")


def used_flags(*masks: Any) -> tuple[bool, ...]:
    return tuple(m is not None for m in masks)


def flat_parts(*arrays: Array | None) -> list[tuple[Array, ...]]:
    """1-D views of same-shaped 2-D arrays for the kernels: whole when all are C-contiguous, else per row.

    None stands for an unused mask (an empty bool placeholder); 1-D arrays are placeholders already.
    """
    used = [a for a in arrays if a is not None and a.ndim == 2]
    if all(a.flags.c_contiguous for a in used):
        return [tuple(NO_MASK if a is None else a.reshape(-1) for a in arrays)]
    rows = used[0].shape[0]
    return [tuple(NO_MASK if a is None else a if a.ndim == 1 else a[r] for a in arrays) for r in range(rows)]


def count_dn_numpy(
    data: Array,
    counts: Counts,
    lo: int,
    nodata_dn: int,
    inside: BoolArray | None,
    valid: ValidArray | None,
    quality: Quality | None,
) -> Tallies:
    """Reference for :func:`count_dn` (``nodata_dn`` below ``lo``: no nodata DN)."""
    if inside is None and valid is None and quality is None:
        _bincount_sliced(data.reshape(-1), counts[0], lo)
        return Tallies(data.size)
    seen = np.ones(data.shape, dtype=bool) if inside is None else inside
    good = seen if valid is None else seen & valid.astype(bool)
    dropped = np.zeros(data.shape, dtype=bool) if quality is None else quality.dropped[quality.classes]
    masked = good & dropped & (data != nodata_dn)
    kept = data[good & ~masked].astype(np.int64) - lo
    counts[0] += np.bincount(kept, minlength=counts.shape[1])
    return Tallies(int(seen.sum()), int((seen & ~good).sum()), int(masked.sum()))


def _bincount_sliced(values: Array, counts: Counts, lo: int) -> None:
    """bincount on 64 Ki px slices: its copy to intp then stays in cache (~2 x faster than whole blocks)."""
    for start in range(0, values.size, 1 << 16):
        part = values[start : start + (1 << 16)]
        counts += np.bincount(part if lo == 0 else part.astype(np.int32) - lo, minlength=counts.size)


# -- the per-(zone, DN) count -----------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneTallies:
    """What one :func:`count_zones` call saw: label pixels summed over the layers, and the excess of the zones'
    sum over their union (pixels in k > 1 zones, counted k - 1 times; by mask band, masked)."""

    labelled: int
    excess: Tallies


def count_zones(
    layers: npt.NDArray[np.integer[Any]],
    rowmap: npt.NDArray[np.int32],
    data: Array,
    counts: DenseCounts,
    tallies: Counts,
    excess: Counts,
    lo: int,
    nodata_dn: int | None = None,
    inside: BoolArray | None = None,
    valid: ValidArray | None = None,
    quality: Quality | None = None,
) -> ZoneTallies:
    """Add each layer's (zone, DN) pairs to ``counts[rowmap[label], dn - lo]``.

    ``layers[l]`` has ``data``'s shape; label 0 is "no zone", labels must lie in ``0 .. len(rowmap) - 1``;
    row 0 of ``counts`` and ``tallies`` is nobody's and must be zero.
    A pixel (inside the AOI) that is nodata by mask band or masked goes to ``tallies[row, (nodata,
    masked)]`` instead; the nodata DN stays in its column as in :func:`count_dn`, so a zone's pixels are
    its counts plus its tallies. The union of the zones (each pixel once, as :func:`count_dn` counts it)
    is their sum less the excess: a pixel in k > 1 zones adds k - 1 to ``excess[dn - lo]`` or to the
    returned excess tallies (one layer: no excess, nothing to count).
    """
    _check_dn_columns(data, counts, lo)
    _check_dn_columns(data, excess, lo)
    check_shapes(data, inside, valid, None if quality is None else quality.classes, *layers)
    sentinel = lo - 1 if nodata_dn is None else nodata_dn
    if kernel_family() == "numpy":
        return count_zones_numpy(layers, rowmap, data, counts, tallies, excess, lo, sentinel, inside, valid, quality)
    q = quality or Quality.keep_all()
    flat = [np.ascontiguousarray(a).reshape(-1) if a is not None else None for a in (data, inside, valid, q.classes)]
    d, i, v, c = (a if a is not None else NO_MASK for a in flat)
    stacked = np.ascontiguousarray(layers).reshape(len(layers), -1)
    full, in_range = _every_label(rowmap, stacked.dtype)
    out = compiled_kernels().count_zones(
        stacked, full, d, counts, tallies, excess, lo, sentinel, i, v, c, q.dropped,
        *used_flags(inside, valid, quality), in_range,
    )  # fmt: skip
    if out[0] < 0 or (in_range and len(full) > len(rowmap) and (counts[0].any() or tallies[0].any())):
        raise ValueError(f"zone labels must lie in 0..{len(rowmap) - 1}")
    return ZoneTallies(int(out[0]), Tallies(int(out[1]), int(out[2]), int(out[3])))


def _every_label(rowmap: npt.NDArray[np.int32], dtype: np.dtype[Any]) -> tuple[npt.NDArray[np.int32], bool]:
    """A row map that every value of an 8- or 16-bit unsigned label type indexes, and whether it is one: the
    labels past ``rowmap`` go to row 0 ("no zone", which must stay zero), so the kernel checks no label."""
    if dtype.kind != "u" or dtype.itemsize > 2:
        return rowmap, False
    values = 1 << (8 * dtype.itemsize)
    if len(rowmap) >= values:
        return rowmap, True
    full = np.zeros(values, np.int32)
    full[: len(rowmap)] = rowmap
    return full, True


def count_zones_numpy(
    layers: npt.NDArray[np.integer[Any]],
    rowmap: npt.NDArray[np.int32],
    data: Array,
    counts: DenseCounts,
    tallies: Counts,
    excess: Counts,
    lo: int,
    nodata_dn: int,
    inside: BoolArray | None,
    valid: ValidArray | None,
    quality: Quality | None,
) -> ZoneTallies:
    """Reference for :func:`count_zones`: counted by label (the window's zones), then added to their rows.

    By label, not by row: ``counts`` may hold a row for every zone of the file (100,000 parcels), and a
    bincount over all of them allocated 200 MB and took 0.6 s a window.
    """
    labels, dns = len(rowmap), counts.shape[1]
    for layer in layers:
        if layer.size and (layer.min() < 0 or layer.max() >= len(rowmap)):
            raise ValueError(f"zone labels must lie in 0..{len(rowmap) - 1}")
    seen = np.ones(data.shape, dtype=bool) if inside is None else inside.astype(bool)
    good = np.ones(data.shape, dtype=bool) if valid is None else valid.astype(bool)
    dropped = np.zeros(data.shape, dtype=bool) if quality is None else quality.dropped[quality.classes]
    masked = good & dropped & (data != nodata_dn)
    kept = good & ~masked
    dn = data.astype(np.int64) - lo
    hits = np.zeros(data.shape, dtype=np.int64)
    for layer in layers:
        in_zone = seen & (layer != 0)
        hits += in_zone
        label = layer.astype(np.int64)
        pick = in_zone & kept
        by_label = np.bincount(label[pick] * dns + dn[pick], minlength=labels * dns).reshape(labels, dns)
        np.add.at(counts, rowmap, by_label.astype(counts.dtype))
        np.add.at(tallies[:, 0], rowmap, np.bincount(label[in_zone & ~good], minlength=labels))
        np.add.at(tallies[:, 1], rowmap, np.bincount(label[in_zone & masked], minlength=labels))
    extra = np.maximum(hits - 1, 0)
    excess += np.bincount(dn[kept].ravel(), weights=extra[kept].ravel(), minlength=len(excess)).astype(np.int64)
    extra_tallies = Tallies(int(extra.sum()), int(extra[~good].sum()), int(extra[masked].sum()))
    return ZoneTallies(int(hits.sum()), extra_tallies)


def zone_cells_compiled(dn_slots: Counts) -> bool:
    """Whether :func:`zone_cells` can read out zones with these slots: compiled kernels are selected and
    the slots are in DN order (not for a negative scale). Otherwise the caller takes the numpy reference
    (:meth:`histcalc.zonal.ZoneTable.from_cells`), which the tests compare this one against."""
    placed = dn_slots[dn_slots >= 0]
    return kernel_family() != "numpy" and not np.any(np.diff(placed) < 0)


def zone_cells(
    counts: DenseCounts,
    tallies: Counts,
    rows: Counts,
    zone_ids: Counts,
    dn_slots: Counts,
    dn_values: npt.NDArray[np.float64],
    nbins: int,
    reset: bool,
    out: tuple[tuple[Counts, Counts, Counts], int, Counts, npt.NDArray[np.float64], int, Counts],
) -> tuple[int, int, int]:
    """Compiled: append the sparse table of the dense ``rows`` to ``out`` = ((zone, slot, count) columns,
    n_cells, ints, floats, n_zones, totals) while it fits; returns (rows done, n_cells, n_zones). See
    ``_native.zone_cells``."""
    (cell_zone, cell_slot, cell_count), n_cells, ints, floats, n_zones, totals = out
    done: tuple[int, int, int] = compiled_kernels().zone_cells(
        counts, tallies, rows, zone_ids, dn_slots, dn_values, nbins, reset,
        cell_zone, cell_slot, cell_count, n_cells, ints, floats, n_zones, totals,
    )  # fmt: skip
    return done


def pairs_increase(major: Counts, minor: Counts) -> bool:
    """Whether the pairs ``(major[i], minor[i])`` strictly increase (sorted, no two equal). Compiled where
    the kernels are at hand (C, or numba once loaded): a process that only merges tables (a driver) does not
    load numba for it."""
    if len(major) != len(minor):
        raise ValueError("pairs_increase: the columns differ in length")
    if not use_compiled():
        step, small = np.diff(major), np.diff(minor)
        return bool(np.all((step > 0) | ((step == 0) & (small > 0))))
    return bool(compiled_kernels().pairs_increase(major, minor))


def zone_cell_stats(
    first: Counts,
    last: Counts,
    cell_slot: Counts,
    cell_count: Counts,
    edges: npt.NDArray[np.float64],
    discrete: bool,
    percentiles: npt.NDArray[np.float64],
    vmin: npt.NDArray[np.float64],
    vmax: npt.NDArray[np.float64],
) -> tuple[Counts, npt.NDArray[np.float64]]:
    """Compiled: (below, above, count) per zone and its percentiles (one row per ``percentiles``), zone ``k``
    holding cells ``first[k]:last[k]`` in slot order. The numpy reference is
    :func:`histcalc.zonal_stats.zone_stats`' column-wise path, which the tests compare this one with."""
    sums = np.empty((len(first), 3), np.int64)
    pct = np.empty((len(percentiles), len(first)), np.float64)
    compiled_kernels().zone_cell_stats(
        first, last, cell_slot, cell_count, len(edges) - 1, edges, discrete, percentiles, vmin, vmax, sums, pct
    )
    return sums, pct


def gather_runs(columns: tuple[Counts, ...], starts: Counts, lengths: Counts, order: Counts) -> tuple[Counts, ...]:
    """The runs ``column[starts[r] : starts[r] + lengths[r]]`` of each column side by side in the order ``order``."""
    placed = lengths[order]
    ends = np.cumsum(placed)
    total = int(ends[-1]) if len(ends) else 0
    if kernel_family() == "numpy":
        index = np.repeat(starts[order] - (ends - placed), placed) + np.arange(total)
        return tuple(column[index] for column in columns)
    out = tuple(np.empty(total, column.dtype) for column in columns)
    compiled_kernels().gather_runs(columns, starts, lengths, order, out)
    return out
