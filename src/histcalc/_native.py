"""The C kernels (``_native_*.c``, built with the wheel) bound through ctypes, with ``_jit``'s signatures.

:mod:`histcalc.kernel` and :mod:`histcalc.kernel_float` call either module the same way and hold the
contracts and the numpy references. The library has no Python API, so one build serves every Python
version; ctypes releases the GIL for each call, so a reader thread decodes while a kernel counts.
Loading it costs ~1 ms where numba's import and cache load cost ~0.3 s.

Every wrapper checks what the C code cannot: dtypes (each has its own C copy), C-contiguity (arrays
that are written must be contiguous; inputs are made so), and 2-D shapes. Masks arrive as in ``_jit``:
empty arrays plus a flag.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]
I64 = npt.NDArray[np.int64]

LIBRARY = Path(__file__).with_name("histcalc-kernels.dll" if sys.platform == "win32" else "histcalc-kernels.so")

_P = ctypes.c_void_p
_I = ctypes.c_int64
_D = ctypes.c_double
_B = ctypes.c_int
_SUFFIX = {
    np.dtype(np.uint8): "u8",
    np.dtype(np.int8): "i8",
    np.dtype(np.uint16): "u16",
    np.dtype(np.int16): "i16",
    np.dtype(np.int32): "i32",
    np.dtype(np.uint32): "u32",
    np.dtype(np.int64): "i64",
    np.dtype(np.uint64): "u64",
    np.dtype(np.float32): "f32",
    np.dtype(np.float64): "f64",
}
_DN_TYPES = ("u8", "i8", "u16", "i16")
_LABEL_TYPES = ("u8", "u16", "i32")
_ZONE_COUNT_TYPES = ("u16", "i32", "i64")
_FLOAT_TYPES = ("f32", "f64", "i32", "u32", "i64", "u64")
_MASKS = [_P, _P, _P, _P, _P]  # inside, valid, 8-bit classes, 16-bit classes, dropped


ABI = 2  # histcalc_kernels_abi() of the C sources these bindings were written for


def _load() -> ctypes.CDLL:
    """The library with every function's argument types declared (so a wrong call raises, not crashes).

    OSError when it is missing (not built) or was built from other sources than these bindings.
    """
    lib = ctypes.CDLL(str(LIBRARY))
    try:
        abi = lib.histcalc_kernels_abi()
    except AttributeError:
        abi = 0
    if abi != ABI:
        raise OSError(f"{LIBRARY.name} is of interface {abi}, these bindings need {ABI}: rebuild it (pip install)")
    for t in _DN_TYPES:
        fn = getattr(lib, f"count_dn_{t}")
        fn.argtypes, fn.restype = [_P, _I, _P, _I, _I, _I, _I, *_MASKS, _P], None
        for labels in _LABEL_TYPES:
            for counts in _ZONE_COUNT_TYPES:
                fn = getattr(lib, f"count_zones_{t}_{labels}_{counts}")
                fn.argtypes = [_P, _I, _P, _I, _P, _I, _P, _I, _P, _I, _P, _I, _I, *_MASKS, _B, _P]
                fn.restype = None
    for t in _FLOAT_TYPES:
        fn = getattr(lib, f"count_float_{t}")
        fn.argtypes, fn.restype = [_P, _I, _P, _P, _I, _D, _D, _D, _B, *_MASKS, _P, _P], None
    for t in _ZONE_COUNT_TYPES:
        fn = getattr(lib, f"zone_cells_{t}")
        fn.argtypes = [_P, _I, _P, _P, _I, _P, _P, _P, _I, _B, _P, _P, _P, _I, _P, _P, _P, _I, _P, _P, _P]
        fn.restype = _I
    lib.pairs_increase_i64.argtypes, lib.pairs_increase_i64.restype = [_P, _P, _I], _B
    lib.gather_runs.argtypes, lib.gather_runs.restype = [_P, _P, _I, _P, _P, _P, _I], None
    lib.zone_cell_stats.argtypes = [_P, _P, _I, _P, _P, _I, _P, _B, _P, _I, _P, _P, _P, _P]
    lib.zone_cell_stats.restype = None
    lib.centre_runs.argtypes, lib.centre_runs.restype = [_P] * 7 + [_I, _I] + [_P] * 4, _I
    lib.greedy_layers.argtypes, lib.greedy_layers.restype = [_I, _P, _P, _I, _P], _I
    lib.edge_runs.argtypes, lib.edge_runs.restype = [_P] * 7 + [_I, _I] + [_P] * 4, _I
    for t in ("u16", "i32"):
        fn = getattr(lib, f"burn_runs_{t}")
        fn.argtypes, fn.restype = [_P, _P, _P, _P, _I, _I, _P], _I
    return lib


_lib = _load()  # raises OSError when the library was not built: kernel_loading falls back


def _suffix(a: Array, allowed: tuple[str, ...], what: str) -> str:
    suffix = _SUFFIX.get(a.dtype)
    if suffix not in allowed:
        raise TypeError(f"the C kernels take {what} of {', '.join(allowed)}, got {a.dtype}")
    return suffix


def _c(a: Array, dtype: Any = None) -> Array:
    """``a`` as a C-contiguous input (a copy only when it is not one already, or not of ``dtype``)."""
    return np.ascontiguousarray(a, dtype=dtype)


def _out(a: Array, dtype: Any) -> int:
    """The address of an array the kernel writes to: it must be C-contiguous and of ``dtype`` already."""
    if a.dtype != np.dtype(dtype) or not a.flags.c_contiguous or not a.flags.writeable:
        raise TypeError(f"the C kernels write into writeable C-contiguous {np.dtype(dtype)} arrays, got {a.dtype}")
    return int(a.ctypes.data)


def _bytes(mask: Array, used: bool) -> Array | None:
    """A mask (bool, or a mask band as read: 0 masked) as one byte a pixel; None when unused."""
    if not used:
        return None
    if mask.dtype in (np.bool_, np.uint8, np.int8):
        return _c(mask).view(np.uint8)
    return _c(mask != 0).view(np.uint8)


def _masks(
    inside: Array, valid: Array, classes: Array, dropped: Array, flags: tuple[bool, bool, bool], pixels: int
) -> list[Any]:
    """The five mask arguments (kept alive by the caller's list while the kernel runs), each checked to hold
    ``pixels`` values, and the quality classes to index ``dropped``."""
    use_inside, use_valid, use_quality = flags
    c8 = c16 = lut = None
    if use_quality:
        lut = _c(dropped).view(np.uint8) if dropped.dtype == np.bool_ else _c(dropped != 0).view(np.uint8)
        if classes.dtype == np.uint8:
            c8 = _c(classes)
        elif classes.dtype == np.uint16:
            c16 = _c(classes)
        else:
            raise TypeError(f"quality classes must be uint8 or uint16, got {classes.dtype}")
        if lut.size <= np.iinfo(classes.dtype).max and classes.size and int(classes.max()) >= lut.size:
            raise ValueError(f"quality classes up to {int(classes.max())}, but only {lut.size} of them are known")
    masks = [_bytes(inside, use_inside), _bytes(valid, use_valid), c8, c16]
    if any(m is not None and m.size != pixels for m in masks):
        raise ValueError("the masks to count must have a value for every pixel")
    return [*masks, lut]


def _addresses(arrays: list[Any]) -> list[int | None]:
    return [None if a is None else int(a.ctypes.data) for a in arrays]


def count_dn(
    data: Array, counts: I64, lo: int, nodata_dn: int, inside: Array, valid: Array, classes: Array,
    dropped: Array, use_inside: bool, use_valid: bool, use_quality: bool,
) -> I64:  # fmt: skip
    """``_jit.count_dn``: per-DN counts into ``counts[way, dn - lo]``; returns (inside, nodata by mask band, masked)."""
    fn = getattr(_lib, f"count_dn_{_suffix(data, _DN_TYPES, 'data')}")
    d = _c(data)
    if counts.ndim != 2:
        raise ValueError("count_dn: counts must be ways x DNs")
    masks = _masks(inside, valid, classes, dropped, (use_inside, use_valid, use_quality), d.size)
    out = np.zeros(3, np.int64)
    ways, cols = counts.shape
    fn(d.ctypes.data, d.size, _out(counts, np.int64), ways, cols, lo, nodata_dn, *_addresses(masks), out.ctypes.data)
    return out


def count_zones(
    layers: Array, rowmap: Array, data: Array, counts: Array, tallies: I64, excess: I64, lo: int,
    nodata_dn: int, inside: Array, valid: Array, classes: Array, dropped: Array,
    use_inside: bool, use_valid: bool, use_quality: bool, in_range: bool,
) -> I64:  # fmt: skip
    """``_jit.count_zones``: (zone row, DN) counts of every label layer; returns (label pixels, excess pixels,
    excess nodata, excess masked), the first -1 when a label lies outside ``rowmap``."""
    t = _suffix(data, _DN_TYPES, "data")
    if _SUFFIX.get(layers.dtype) not in _LABEL_TYPES:
        layers = layers.astype(np.int32)
    fn = getattr(_lib, f"count_zones_{t}_{_SUFFIX[layers.dtype]}_{_suffix(counts, _ZONE_COUNT_TYPES, 'counts')}")
    stacked, rows, d = _c(layers), _c(rowmap, np.int32), _c(data)
    if stacked.ndim != 2 or counts.ndim != 2 or tallies.ndim != 2:
        raise ValueError("count_zones: layers, counts and tallies must be 2-D")
    if (use_valid or use_quality) and tallies.shape[1] < 2:
        raise ValueError("count_zones: masks need tallies with two columns (nodata, masked)")
    if len(rows) and (rows.min() < 0 or rows.max() >= len(counts) or rows.max() >= len(tallies)):
        raise ValueError("count_zones: the row map points past counts or tallies")
    if in_range and (stacked.dtype.kind != "u" or rows.size < 1 << (8 * stacked.dtype.itemsize)):
        raise ValueError("count_zones: in_range needs a row map for every value of the label type")
    if stacked.shape[1] != d.size:
        raise ValueError("count_zones: a label in every layer for every pixel")
    masks = _masks(inside, valid, classes, dropped, (use_inside, use_valid, use_quality), d.size)
    out = np.zeros(4, np.int64)
    fn(
        stacked.ctypes.data, stacked.shape[0], rows.ctypes.data, rows.size, d.ctypes.data, d.size,
        _out(counts, counts.dtype), counts.shape[1], _out(tallies, np.int64), tallies.shape[1],
        _out(excess, np.int64), lo, nodata_dn, *_addresses(masks), in_range, out.ctypes.data,
    )  # fmt: skip
    return out


def count_float(
    data: Array, edges: Array, counts: I64, scale: float, offset: float, nodata: float, uniform: bool,
    inside: Array, valid: Array, classes: Array, dropped: Array, use_inside: bool, use_valid: bool, use_quality: bool,
) -> tuple[I64, npt.NDArray[np.float64]]:  # fmt: skip
    """``_jit.count_float``: returns (pixels, nodata, masked, below, above, n) and (shift, s1, s2, vmin, vmax)."""
    if _SUFFIX.get(data.dtype) not in _FLOAT_TYPES:
        data = data.astype(np.float64)  # 8- and 16-bit integers with bins: exact in float64
    fn = getattr(_lib, f"count_float_{_SUFFIX[data.dtype]}")
    d, e = _c(data), _c(edges, np.float64)
    if e.size != counts.size + 1:
        raise ValueError(f"{e.size} edges need {e.size - 1} counts, got {counts.size}")
    masks = _masks(inside, valid, classes, dropped, (use_inside, use_valid, use_quality), d.size)
    ints, floats = np.zeros(6, np.int64), np.zeros(5, np.float64)
    fn(
        d.ctypes.data, d.size, e.ctypes.data, _out(counts, np.int64), counts.size, scale, offset, nodata, uniform,
        *_addresses(masks), ints.ctypes.data, floats.ctypes.data,
    )  # fmt: skip
    return ints, floats


def zone_cells(
    counts: Array, tallies: I64, rows: I64, zone_ids: I64, dn_slots: I64, dn_values: npt.NDArray[np.float64],
    nbins: int, reset: bool, cell_zone: I64, cell_slot: I64, cell_count: I64, n_cells: int,
    ints: I64, floats: npt.NDArray[np.float64], n_zones: int, totals: I64,
) -> tuple[int, int, int]:  # fmt: skip
    """``_jit.zone_cells``: appends the rows' cells and zone rows while they fit; (rows done, n_cells, n_zones)."""
    fn = getattr(_lib, f"zone_cells_{_suffix(counts, _ZONE_COUNT_TYPES, 'counts')}")
    if tallies.ndim != 2 or tallies.shape[1] != 2 or ints.shape[1:] != (5,) or floats.shape[1:] != (4,):
        raise ValueError("zone_cells: tallies must be rows x 2, ints zones x 5 and floats zones x 4")
    if len(cell_zone) != len(cell_slot) or len(cell_zone) != len(cell_count) or len(ints) != len(floats):
        raise ValueError("zone_cells: the cell columns and the zone rows must come in equal lengths")
    r, z, s, v = _c(rows, np.int64), _c(zone_ids, np.int64), _c(dn_slots, np.int64), _c(dn_values, np.float64)
    if len(z) < len(r) or len(s) != counts.shape[1] or len(v) != counts.shape[1]:
        raise ValueError("zone_cells: a zone id for every row, and a slot and value for every DN")
    if len(totals) != counts.shape[1] + 2 or (len(r) and (r.min() < 0 or r.max() >= min(len(counts), len(tallies)))):
        raise ValueError("zone_cells: totals need a cell per DN and two more; rows must lie in counts")
    io = np.array([n_cells, n_zones], np.int64)
    nonzero = np.empty(counts.shape[1], np.int64)
    done = fn(
        _out(counts, counts.dtype), counts.shape[1], _out(tallies, np.int64), r.ctypes.data, len(r),
        z.ctypes.data, s.ctypes.data, v.ctypes.data, nbins, reset,
        _out(cell_zone, np.int64), _out(cell_slot, np.int64), _out(cell_count, np.int64), len(cell_zone),
        io.ctypes.data, _out(ints, np.int64), _out(floats, np.float64), len(ints), io.ctypes.data + 8,
        _out(totals, np.int64), nonzero.ctypes.data,
    )  # fmt: skip
    return int(done), int(io[0]), int(io[1])


def pairs_increase(major: Array, minor: Array) -> bool:
    """``_jit.pairs_increase``: whether the pairs ``(major[i], minor[i])`` strictly increase."""
    a, b = _c(major, np.int64), _c(minor, np.int64)
    return bool(_lib.pairs_increase_i64(a.ctypes.data, b.ctypes.data, min(a.size, b.size)))


def gather_runs(columns: tuple[Array, ...], starts: I64, lengths: I64, order: I64, out: tuple[Array, ...]) -> None:
    """``_jit.gather_runs``: ``out[c]`` = the runs of ``columns[c]`` with run ``order[k]`` placed k-th."""
    s, n, o = _c(starts, np.int64), _c(lengths, np.int64), _c(order, np.int64)
    if len(o) and (o.min() < 0 or o.max() >= min(len(s), len(n))):
        raise ValueError("gather_runs: order names a run that does not exist")
    ends = s[o] + n[o] if len(o) else np.zeros(0, np.int64)
    for column, target in zip(columns, out, strict=True):
        src = _c(column)
        if len(o) and (s[o].min() < 0 or n[o].min() < 0 or ends.max() > src.size):
            raise ValueError("gather_runs: a run lies outside its column")
        if int(n[o].sum()) > target.size or target.dtype != src.dtype:
            raise ValueError("gather_runs: the output is too short or of another type")
        _out(target, target.dtype)
        _lib.gather_runs(src.ctypes.data, target.ctypes.data, src.itemsize, s.ctypes.data, n.ctypes.data,
                         o.ctypes.data, len(o))  # fmt: skip


def zone_cell_stats(
    first: I64, last: I64, cell_slot: Array, cell_count: Array, nbins: int, edges: Array, discrete: bool,
    qs: Array, vmin: Array, vmax: Array, sums: I64, pct: npt.NDArray[np.float64],
) -> None:  # fmt: skip
    """``_jit.zone_cell_stats``: per zone (below, above, count) into ``sums`` and percentiles into ``pct``."""
    f, la, s, c = _c(first, np.int64), _c(last, np.int64), _c(cell_slot, np.int64), _c(cell_count, np.int64)
    e, q, lo, hi = _c(edges, np.float64), _c(qs, np.float64), _c(vmin, np.float64), _c(vmax, np.float64)
    k = len(f)
    if len(la) != k or len(lo) != k or len(hi) != k or sums.shape != (k, 3) or pct.shape != (len(q), k):
        raise ValueError("zone_cell_stats: one first, last, min and max per zone; sums zones x 3, pct qs x zones")
    if e.size != nbins + 1 or (k and (int(la.max()) > len(s) or len(s) != len(c))):
        raise ValueError("zone_cell_stats: nbins + 1 edges, and cells for every zone")
    _lib.zone_cell_stats(
        f.ctypes.data, la.ctypes.data, k, s.ctypes.data, c.ctypes.data, nbins, e.ctypes.data, discrete,
        q.ctypes.data, len(q), lo.ctypes.data, hi.ctypes.data, _out(sums, np.int64), _out(pct, np.float64),
    )  # fmt: skip


def centre_runs(
    px0: Array, py0: Array, dx: Array, dy: Array, zone: I64, first: I64, count: I64, width: int
) -> tuple[I64, I64, I64, I64] | None:
    """``label_runs.centre_runs``' runs (row, zone, start, stop) from its edges' rows; None when the edges are not
    grouped by increasing zone (the caller sorts in numpy then). ValueError for a row crossed an odd number of
    times by a zone's edges."""
    runs, out = _edge_rows("centre_runs", (px0, py0, dx, dy), zone, first, count, width, crossings_a_run=2)
    if runs == -2:
        return None
    if runs == -1:
        raise ValueError("centre_runs: polygon edges do not cross pixel rows in pairs")
    if runs < 0:
        raise MemoryError("centre_runs: out of memory")
    return out[0][:runs], out[1][:runs], out[2][:runs], out[3][:runs]


def _edge_rows(
    name: str, floats: tuple[Array, ...], zone: I64, first: I64, count: I64, width: int, crossings_a_run: int
) -> tuple[int, list[I64]]:
    """Call ``name`` (centre_runs, edge_runs) on edges with rows ``first .. first + count - 1``: its return value
    and its four output columns (row, zone, start, stop), room for a run per ``crossings_a_run`` edge rows."""
    columns = [_c(a, np.float64) for a in floats]
    z, f, n = _c(zone, np.int64), _c(first, np.int64), _c(count, np.int64)
    if any(len(a) != len(z) for a in (*columns, f, n)) or (len(n) and int(n.min()) < 0):
        raise ValueError(f"{name}: one value per edge of each column, counts >= 0")
    out = [np.empty(int(n.sum()) // crossings_a_run, np.int64) for _ in range(4)]
    fn = getattr(_lib, name)
    runs = int(fn(*(a.ctypes.data for a in (*columns, z, f, n)), len(z), width, *(o.ctypes.data for o in out)))
    return runs, out


def burn_runs(row: I64, start: I64, stop: I64, value: I64, labels: Array) -> int:
    """``value[i]`` on the pixels ``start[i] .. stop[i] - 1`` of row ``row[i]`` of the zeroed 2-D ``labels`` (uint16
    or int32); returns how many pixels already held a label (0: the runs are disjoint)."""
    r, a, b, v = _c(row, np.int64), _c(start, np.int64), _c(stop, np.int64), _c(value, np.int64)
    height, width = labels.shape
    if len({len(r), len(a), len(b), len(v)}) > 1:
        raise ValueError("burn_runs: one row, start, stop and value per run")
    if len(r) and (r.min() < 0 or r.max() >= height or a.min() < 0 or b.max() > width):
        raise ValueError("burn_runs: a run lies outside the labels")
    fn = getattr(_lib, f"burn_runs_{_suffix(labels, ('u16', 'i32'), 'labels')}")
    target = _out(labels, labels.dtype)
    return int(fn(r.ctypes.data, a.ctypes.data, b.ctypes.data, v.ctypes.data, len(r), width, target))


def greedy_layers(n: int, left: I64, right: I64) -> npt.NDArray[np.int32]:
    """``label_burn.greedy_layers``: per node of the conflict graph, the smallest layer no lower neighbour holds."""
    a, b = _c(left, np.int64), _c(right, np.int64)
    if len(a) != len(b) or (len(a) and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n)):
        raise ValueError("greedy_layers: every pair joins two of the n nodes")
    layers = np.zeros(n, np.int32)
    if _lib.greedy_layers(n, a.ctypes.data, b.ctypes.data, len(a), layers.ctypes.data) < 0:
        raise MemoryError("greedy_layers: out of memory")
    return layers


def edge_runs(
    px0: Array, py0: Array, px1: Array, py1: Array, zone: I64, first: I64, count: I64, width: int
) -> tuple[I64, I64, I64, I64]:
    """``label_runs.edge_runs``' runs (row, zone, start, stop) of rows ``first .. first + count - 1`` of each edge."""
    runs, out = _edge_rows("edge_runs", (px0, py0, px1, py1), zone, first, count, width, crossings_a_run=1)
    return out[0][:runs], out[1][:runs], out[2][:runs], out[3][:runs]
