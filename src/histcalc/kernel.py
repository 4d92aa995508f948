"""Counting kernels: per-DN, per-(zone, DN) and per-bin counts in one pass over a decoded block.

Each kernel applies the nodata value, the AOI mask, the mask band and the quality mask while it
counts, so no boolean temporaries or ``data[keep]`` copies are made. Every kernel has a numpy
reference implementation beside it (``*_numpy``) with the same contract; tests compare the two on
random inputs. ``HISTCALC_KERNEL=numpy`` selects the references (debugging, platforms without
numba), ``=numba`` the numba kernels (compiled once per machine, cached on disk) from the first
pixel, and the default (``auto``) counts per DN with numpy until the numba kernels are loaded, then
with numba, switching between two blocks (the counts are the same by contract).

Loading numba costs a process ~0.35 CPU s (import + cache load; ~1 s per kernel when it compiles),
and numba saves ~0.85 ns per pixel over numpy's sliced bincount (benchmarks/README.md). So the
kernels load in a background thread (:func:`start_warm_up`) while the process goes on reading and
counting with numpy: under ``auto`` once the per-DN tasks of a process reach ``WARM_UP_PIXELS``
(400 Mpx, where numba pays back its load when every core counts) or, when the local engine leaves a
core idle, once this task's pixels times the process's tasks reach ``WARM_UP_PIXELS_IDLE_CORE`` (360 Mpx:
the thread needs the GIL for most of its ~0.35 s, so even then it pays only from about three full tiles
on: measured, 1 tile 0.62 s against numpy's 0.38 s, 4 tiles 1.20 s against 1.32 s); at once for
``=numba`` and for jobs that need the kernels (zonal, float:
the engines and the task counter start it as a worker or task starts). A caller that needs a
kernel (:func:`compiled_kernels`) waits for that thread rather than loading a second time.

Classification of a pixel, the same in every kernel (``task_counter.TaskCounter`` relies on it):
outside the AOI: not seen; mask band invalid: ``nodata``; value is nodata (the nodata value, NaN):
nodata (DN kernels leave it in its DN column, the caller moves it); quality class dropped:
``masked``; otherwise counted (float kernel: ``below``/``above`` outside the edges).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc.errors import UsageError

log = logging.getLogger(__name__)

Array = npt.NDArray[Any]
Counts = npt.NDArray[np.int64]
DenseCounts = npt.NDArray[np.integer[Any]]  # int64, or int32 where no cell can pass 2**31 - 1
BoolArray = npt.NDArray[np.bool_]
# a mask band as read (0 = masked, any other value = valid) or a boolean array
ValidArray = npt.NDArray[Any]
KERNELS = ("auto", "numba", "numpy")
# Interleaved sub-histograms for 8-bit data: consecutive pixels go to different copies, so a run of
# equal values does not wait on its own previous store (benchmarks/RESULTS.md measures it).
DN_WAYS_8BIT = 4
_NONE = np.zeros(0, dtype=np.bool_)
_NO_CLASSES = np.zeros(0, dtype=np.uint8)
_NO_LUT = np.zeros(0, dtype=np.bool_)


def kernel_name() -> str:
    """The kernel family chosen by ``HISTCALC_KERNEL`` (``auto`` unless set)."""
    name = os.environ.get("HISTCALC_KERNEL", "auto").strip().lower() or "auto"
    if name not in KERNELS:
        raise UsageError(f"HISTCALC_KERNEL must be one of {', '.join(KERNELS)}, got {name!r}")
    return name


def ensure_cache_dir() -> str:
    """Point numba's on-disk cache at a writable folder unless NUMBA_CACHE_DIR is set.

    numba writes its cache next to the module by default, which is read-only in the Docker image
    (site-packages, non-root user) and on executors; without a cache every process pays the JIT.
    """
    if not os.environ.get("NUMBA_CACHE_DIR"):
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        candidate = Path(base) / "histcalc" / "numba"
        try:
            candidate.mkdir(parents=True, exist_ok=True)
            if not os.access(candidate, os.W_OK):
                raise OSError("not writable")
        except OSError:
            candidate = Path(tempfile.gettempdir()) / f"histcalc-numba-{os.getuid()}"
            candidate.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(candidate)
    return os.environ["NUMBA_CACHE_DIR"]


# -- loading the compiled kernels -------------------------------------------------------------------

# auto: a process starts loading numba in the background once its per-DN tasks, the one starting
# included, reach this many pixels. When every core counts, the load (~0.35 CPU s) takes a core from
# the job, and numba pays it back after ~400 Mpx (~0.85 ns/px): start when numpy's extra cost so far
# equals it (the ski-rental rule: at worst about twice the best choice in hindsight). When a core is
# idle (the local engine knows: fewer processes than cores), loading costs no time: start with the
# first large task; a seed-sized bbox job (~3 Mpx a file) still never loads it.
WARM_UP_PIXELS = 400_000_000
WARM_UP_PIXELS_IDLE_CORE = 360_000_000
_idle_core = False
_expected_tasks = 1  # tasks this process expects (the local engine's single process knows them all)
_tasks_seen = 0
_task_pixels = 0  # per-DN task pixels announced to note_task in this process
_load_lock = threading.Lock()  # one loader at a time: numba must not compile or load its cache twice at once
_start_lock = threading.Lock()
_ready = threading.Event()  # set once the kernels are loaded: auto counts with them from the next block
_warm_up_thread: threading.Thread | None = None


def note_task(task_pixels: int) -> None:
    """A per-DN task of ``task_pixels`` starts in this process: start loading the kernels when it pays.

    ``=numba``: at once (the first block waits for them); ``auto``: once this process's tasks reach
    :data:`WARM_UP_PIXELS` (:data:`WARM_UP_PIXELS_IDLE_CORE` after :func:`set_idle_core`); ``=numpy``: never.
    """
    global _task_pixels, _tasks_seen
    _task_pixels += task_pixels
    _tasks_seen += 1
    name = kernel_name()
    if name == "numba":
        start_warm_up()
    elif name == "auto":
        ahead = _task_pixels + task_pixels * max(0, _expected_tasks - _tasks_seen)  # tasks like this one to come
        if _task_pixels >= WARM_UP_PIXELS or (_idle_core and ahead >= WARM_UP_PIXELS_IDLE_CORE):
            start_warm_up()


def set_idle_core(idle: bool, tasks: int = 1) -> None:
    """Whether a core sits idle while this process counts ``tasks`` tasks (then ``auto`` may load numba
    early, see above)."""
    global _idle_core, _expected_tasks
    _idle_core, _expected_tasks = idle, max(1, tasks)


def use_compiled() -> bool:
    """Whether the next block counts per DN with numba: ``auto`` does once the kernels are loaded."""
    name = kernel_name()
    return name == "numba" or (name == "auto" and _ready.is_set())


def start_warm_up() -> None:
    """Load the kernels in a daemon thread, once per process (a no-op under ``HISTCALC_KERNEL=numpy``).

    Never fork while this thread runs: a child forked meanwhile can inherit a lock held by the import
    machinery, LLVM or numba, and hang on it. So a process that forks calls :func:`join_warm_up`
    first (the local engine does before it forks its pool); the engines start the thread only in
    processes that count: the driver when it counts itself, each pool worker, each Spark Python worker.
    A daemon: a process that ends first does not wait for it (with an empty numba cache, the kernels it
    did not finish compiling compile again in the next process).
    """
    global _warm_up_thread
    if kernel_name() == "numpy" or _ready.is_set():
        return
    with _start_lock:
        if _warm_up_thread is None:
            _warm_up_thread = threading.Thread(target=_warm_up_quietly, name="histcalc-kernel-warm-up", daemon=True)
            _warm_up_thread.start()


def join_warm_up() -> None:
    """Wait until a warm-up thread started in this process has finished (call before forking)."""
    thread = _warm_up_thread
    if thread is not None and thread is not threading.current_thread():
        thread.join()


def compiled_kernels() -> ModuleType:
    """The numba kernels, loaded once per process: waits for a running warm-up instead of loading twice."""
    if not _ready.is_set():
        warm_up()
    from histcalc import _jit

    return _jit


def warm_up() -> None:
    """Import numba and compile (or load from the cache) the kernels for the common types, in this thread."""
    with _load_lock:
        if _ready.is_set():
            return
        started = time.perf_counter()
        from histcalc import _jit

        _load_first_kernel(_jit)
        _ready.set()
        log.debug("numba kernels loaded in %.2f s (%s)", time.perf_counter() - started, threading.current_thread().name)


def _warm_up_quietly() -> None:
    """The warm-up thread: a failure leaves ``auto`` on numpy; a caller that needs a kernel raises it itself."""
    try:
        warm_up()
    except Exception as exc:  # numba missing or broken: numpy counts the same, only slower
        log.warning("could not load the numba kernels, counting with numpy: %s", exc)


def _load_first_kernel(jit: ModuleType) -> None:
    """Call the per-DN kernel once on a tiny 8-bit block, so the first block it counts finds it loaded.

    That first call costs ~0.15 s (numba's code generator starts, the cache is read); any other kernel
    or type then loads on first use in ~3 ms (after this thread is done, so never beside it). Loading
    more here would cost each process CPU for kernels most jobs never call (measured: ~0.1 s).
    """
    block, counts = np.zeros(4, np.uint8), np.zeros((DN_WAYS_8BIT, 256), np.int64)
    jit.count_dn(block, counts, 0, -1, _NONE, _NONE, _NO_CLASSES, _NO_LUT, False, False, False)


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
        return cls(_NO_CLASSES, _NO_LUT)

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
    ``compiled``: numba or numpy (None: :func:`use_compiled` decides, for this block).
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
        return [tuple(_NONE if a is None else a.reshape(-1) for a in arrays)]
    rows = used[0].shape[0]
    return [tuple(_NONE if a is None else a if a.ndim == 1 else a[r] for a in arrays) for r in range(rows)]


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


def count_zonal(
    labels: npt.NDArray[np.int32],
    data: Array,
    counts: DenseCounts,
    lo: int,
    nodata_dn: int | None = None,
    valid: ValidArray | None = None,
    quality: Quality | None = None,
) -> Counts:
    """Add (zone label, DN) pairs to ``counts[label, dn - lo]``; label 0 is "no zone".

    Returns this call's per-label tallies ``[label, (nodata by mask band, masked)]``; the nodata
    DN stays in its column as in :func:`count_dn`, so a label's pixels are its counts plus its
    tallies. Labels must lie in ``0 .. counts.shape[0] - 1``.
    """
    _check_dn_columns(data, counts, lo)
    check_shapes(labels, data, valid, None if quality is None else quality.classes)
    sentinel = lo - 1 if nodata_dn is None else nodata_dn
    if kernel_name() == "numpy":
        return count_zonal_numpy(labels, data, counts, lo, sentinel, valid, quality)
    _jit = compiled_kernels()
    q = quality or Quality.keep_all()
    tallies = np.zeros((counts.shape[0], 2), dtype=np.int64)
    for z, d, v, c in flat_parts(labels, data, valid, q.classes):
        if _jit.count_zonal(z, d, counts, tallies, lo, sentinel, v, c, q.dropped, *used_flags(valid, quality)):
            raise ValueError(f"zone labels must lie in 0..{counts.shape[0] - 1}")
    return tallies


def count_zonal_numpy(
    labels: npt.NDArray[np.int32],
    data: Array,
    counts: DenseCounts,
    lo: int,
    nodata_dn: int,
    valid: ValidArray | None,
    quality: Quality | None,
) -> Counts:
    """Reference for :func:`count_zonal`."""
    zones, dns = counts.shape
    if labels.size and (labels.min() < 0 or labels.max() >= zones):
        raise ValueError(f"zone labels must lie in 0..{zones - 1}")
    good = np.ones(data.shape, dtype=bool) if valid is None else valid.astype(bool)
    dropped = np.zeros(data.shape, dtype=bool) if quality is None else quality.dropped[quality.classes]
    masked = good & dropped & (data != nodata_dn)
    kept = good & ~masked
    pairs = labels[kept].astype(np.int64) * dns + (data[kept].astype(np.int64) - lo)
    counts += np.bincount(pairs, minlength=zones * dns).reshape(zones, dns)
    tallies = np.zeros((zones, 2), dtype=np.int64)
    tallies[:, 0] = np.bincount(labels[~good], minlength=zones)
    tallies[:, 1] = np.bincount(labels[masked], minlength=zones)
    return tallies


def merge_runs(key: Counts, count: Counts, bounds: Counts) -> tuple[Counts, Counts]:
    """Ascending runs ``key[bounds[i]:bounds[i + 1]]`` merged into unique ascending keys, counts added up.

    Compiled: a k-way merge, linear in the keys. Reference (``HISTCALC_KERNEL=numpy``): a stable sort.
    """
    if kernel_name() == "numpy":
        order = np.argsort(key, kind="stable")
        ordered = key[order]
        fresh = np.ones(len(ordered), dtype=bool)
        fresh[1:] = ordered[1:] != ordered[:-1]
        run = np.cumsum(fresh) - 1
        sums = np.zeros(int(fresh.sum()), np.int64)
        np.add.at(sums, run, count[order])
        return ordered[fresh], sums
    merged: tuple[Counts, Counts] = compiled_kernels().merge_runs(key, count, bounds)
    return merged


def zone_cells(
    counts: DenseCounts,
    tallies: Counts,
    dn_slots: Counts,
    dn_values: npt.NDArray[np.float64],
    nbins: int,
) -> tuple[Any, ...] | None:
    """The compiled twin of :meth:`histcalc.zonal.ZoneTable.from_cells` over dense counts, or None.

    None when the numpy reference is selected or when the slots are not in DN order (a negative
    scale): the caller then takes the reference path, which the tests compare this one against.
    """
    placed = dn_slots[dn_slots >= 0]
    if kernel_name() == "numpy" or np.any(np.diff(placed) < 0):
        return None
    columns: tuple[Any, ...] = compiled_kernels().zone_cells(counts, tallies, dn_slots, dn_values, nbins)
    return columns
