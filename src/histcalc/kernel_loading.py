"""Which kernels count, and loading the compiled ones: ``HISTCALC_KERNEL``, numba's cache folder, the warm-up.

``auto`` (the default) counts with the C kernels where the wheel was built with them
(:mod:`histcalc._native`, loaded in ~1 ms: no warm-up, compiled from the first pixel), else with numba
where it is installed (the ``numba`` extra), else with the numpy references. The rest of this module is
about numba, for installations built without a C compiler.

Loading numba costs a process ~0.35 CPU s (import + cache load; ~1 s per kernel when it compiles),
and numba saves ~0.85 ns per pixel over numpy's sliced bincount (benchmarks/README.md). So the
kernels load in a background thread (:func:`start_warm_up`) while the process goes on reading and
counting with numpy: under ``auto`` once the per-DN tasks of a process reach ``WARM_UP_PIXELS``
(400 Mpx, where numba pays back its load when every core counts) or, when the local engine leaves a
core idle, once this task's pixels times the process's tasks reach ``WARM_UP_PIXELS_IDLE_CORE`` (360 Mpx:
the thread needs the GIL for most of its ~0.35 s, so even then it pays only from about three full tiles
on: measured, 1 tile 0.62 s against numpy's 0.38 s, 4 tiles 1.20 s against 1.32 s); at once for
``=numba`` and for jobs that need the kernels (zonal, float: the engines and the task counter start it
as a worker or task starts). A caller that needs a kernel (:func:`compiled_kernels`) waits for that
thread rather than loading a second time.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from histcalc.errors import UsageError

log = logging.getLogger(__name__)

KERNELS = ("auto", "c", "numba", "numpy")
# Interleaved sub-histograms for 8-bit data: consecutive pixels go to different copies, so a run of
# equal values does not wait on its own previous store (benchmarks/RESULTS.md measures it).
DN_WAYS_8BIT = 4
NO_MASK = np.zeros(0, dtype=np.bool_)
NO_CLASSES = np.zeros(0, dtype=np.uint8)
NO_LUT = np.zeros(0, dtype=np.bool_)


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
    """Whether the next block counts per DN with compiled code: ``auto`` does with the C kernels, or once
    numba's are loaded."""
    family = kernel_family()
    return family == "c" or (family == "numba" and (kernel_name() == "numba" or _ready.is_set()))


_native: ModuleType | None = None
_native_error: str | None = None


def native_kernels() -> ModuleType | None:
    """The C kernels (:mod:`histcalc._native`) when this installation has them and ``HISTCALC_KERNEL`` is
    ``auto`` or ``c`` (which raises without them); None otherwise. Loaded once per process (~1 ms)."""
    global _native, _native_error
    name = kernel_name()
    if name not in ("auto", "c"):
        return None
    if _native is None and _native_error is None:
        try:
            from histcalc import _native as module

            _native = module
        except OSError as exc:  # not built (no C compiler when the wheel was made), or built from older sources
            _native_error = str(exc)
            log.log(logging.WARNING if "interface" in str(exc) else logging.DEBUG, "no C kernels: %s", exc)
    if _native is None and name == "c":
        raise UsageError(
            "HISTCALC_KERNEL=c, but this installation has no C kernels (it was built without a C compiler): "
            "reinstall histcalc with cc on PATH, or set HISTCALC_KERNEL=auto"
        )
    return _native


_numba_found: bool | None = None


def numba_installed() -> bool:
    """Whether numba can be imported (the ``numba`` extra; not needed where the C kernels are built)."""
    global _numba_found
    if _numba_found is None:
        import importlib.util

        _numba_found = importlib.util.find_spec("numba") is not None
    return _numba_found


def kernel_family() -> str:
    """The kernels this process counts with, ``auto`` resolved: ``c`` where built, else ``numba`` where
    installed, else ``numpy``. A usage error for ``=c`` or ``=numba`` when they are missing."""
    name = kernel_name()
    if name in ("auto", "c") and native_kernels() is not None:
        return "c"
    if name == "auto":
        return "numba" if numba_installed() else "numpy"
    if name == "numba" and not numba_installed():
        raise UsageError("HISTCALC_KERNEL=numba, but numba is not installed: pip install 'histcalc[numba]'")
    return name


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
    if _ready.is_set() or kernel_family() != "numba":
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
    """The C kernels where there are (see :func:`native_kernels`), else numba's, loaded once per process:
    waits for a running warm-up instead of loading twice."""
    native = native_kernels()
    if native is not None:
        return native
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
    jit.count_dn(block, counts, 0, -1, NO_MASK, NO_MASK, NO_CLASSES, NO_LUT, False, False, False)
