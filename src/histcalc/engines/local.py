"""The local engine: a process pool, no JVM. Same tasks, same result as Spark.

Tasks are submitted in chunks with a bounded number in flight and each result is merged into one running
total as soon as it arrives, then dropped: the driver's memory does not grow with the number of
files. Workers die with the driver (see :mod:`histcalc.engines.lifeline`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from itertools import islice
from typing import Any, TypeVar

from histcalc import kernel_loading
from histcalc.cached_task import TaskCache, run_cached, run_cached_tasks
from histcalc.engines import Progress, lifeline
from histcalc.errors import EngineError
from histcalc.plan import JobSpec, Task
from histcalc.result import Partial

log = logging.getLogger(__name__)

# Set once per worker process by the pool initializer, so tasks do not carry the shared settings.
_WORKER_STATE: dict[str, Any] = {}
_IN_FLIGHT_PER_WORKER = 4
# Many tiny tasks: send them in chunks so that inter-process round trips (~0.1 ms each) stay a
# small share of the job; a chunk of 64 tiny files is still well under a second of work.
_MAX_CHUNK = 64
_CHUNKS_PER_WORKER = 32
Merged = Callable[[list[Task], Partial], None]
T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def run(
    tasks: Iterable[Task],
    job: JobSpec,
    n_tasks: int,
    workers: int | None = None,
    progress: Progress | None = None,
    remote: bool = False,
    cache: TaskCache | None = None,
    merged: Merged | None = None,
) -> Partial:
    """Run ``tasks`` on ``workers`` processes (1: in this process) and merge the results as they come.

    With ``cache``, each worker looks up and stores its tasks' entries itself. ``merged(tasks, total)`` is
    called after each result is merged into the running ``total`` (a zonal job writes finished groups).
    """
    workers = max(1, min(workers or default_workers(), n_tasks or 1))
    log.info("local engine: %d task(s) on %d process(es)", n_tasks, workers)
    idle_core = workers < default_workers()
    if workers == 1:
        _prepare_kernels(job, idle_core, n_tasks)
        return _merge_all((([task], run_cached(task, job, cache)) for task in tasks), n_tasks, progress, merged)
    kernel_loading.join_warm_up()  # never fork while numba loads in a thread (an earlier in-process job may have)
    try:
        with ProcessPoolExecutor(
            workers,
            mp_context=_pool_context(remote),
            initializer=_init_worker,
            initargs=(job, os.getpid(), cache, idle_core),
        ) as pool:
            chunks = _chunked(tasks, chunk_size(n_tasks, workers))
            results = bounded_pairs(pool, _run_in_worker, chunks, workers * _IN_FLIGHT_PER_WORKER)
            return _merge_all(results, n_tasks, progress, merged)
    except (BrokenPipeError, BrokenProcessPool) as exc:
        raise EngineError(f"a local worker process died: {exc}") from exc


def bounded(pool: Executor, fn: Callable[[T], R], items: Iterable[T], limit: int) -> Iterator[R]:
    """``fn(item)`` for each item, in completion order, with at most ``limit`` submitted and not yet taken."""
    return (result for _item, result in bounded_pairs(pool, fn, items, limit))


def bounded_pairs(pool: Executor, fn: Callable[[T], R], items: Iterable[T], limit: int) -> Iterator[tuple[T, R]]:
    """:func:`bounded`, each result with its item."""
    todo = iter(items)
    pending: dict[Future[R], T] = {pool.submit(fn, item): item for item in islice(todo, limit)}
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            yield pending.pop(future), future.result()
        pending.update({pool.submit(fn, item): item for item in islice(todo, len(done))})


def chunk_size(n_tasks: int, workers: int) -> int:
    """Tasks per submission: 1 for small jobs, up to 64 when there are many (fewer round trips)."""
    return max(1, min(_MAX_CHUNK, n_tasks // (workers * _CHUNKS_PER_WORKER)))


def _chunked(tasks: Iterable[Task], size: int) -> Iterator[list[Task]]:
    todo = iter(tasks)
    while chunk := list(islice(todo, size)):
        yield chunk


def _merge_all(
    results: Iterable[tuple[list[Task], Partial]], n_tasks: int, progress: Progress | None, merged: Merged | None
) -> Partial:
    total = Partial()
    for tasks, partial in results:
        total.merge(partial)
        if merged is not None:
            merged(tasks, total)
        if progress is not None:
            progress(total.tasks, n_tasks, len(total.failed))
    return total


def _pool_context(remote: bool) -> multiprocessing.context.BaseContext:
    """Fork for local files (workers start in ~0.02 s); forkserver when files are remote.

    Forked workers would share the GDAL (HTTP, S3) connections this process already opened for
    the default bins, and send requests on them at once. The forkserver preloads rasterio and
    histcalc, so its workers start warm (~0.5 s for the first pool of a process, not ~0.7 s).
    """
    if not remote:
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["rasterio", "rasterio.features", "rasterio.warp", "histcalc.plan"])
    return context


def is_remote(href: str) -> bool:
    return "://" in href or href.startswith("/vsi")


def _init_worker(job: JobSpec, driver_pid: int, cache: TaskCache | None = None, idle_core: bool = False) -> None:
    lifeline.exit_with_parent(driver_pid)
    _WORKER_STATE["job"] = job
    _WORKER_STATE["cache"] = cache
    _prepare_kernels(job, idle_core)


def _prepare_kernels(job: JobSpec, idle_core: bool, tasks: int = 1) -> None:
    """In a process about to count: when ``auto`` may load numba (installations without the C kernels), and
    zonal jobs load it now, in a thread.

    Only in a process that forks no more (a pool worker, or the driver counting in-process): see
    :func:`histcalc.kernel_loading.start_warm_up`. Per-DN jobs start it from their pixel count (``note_task``).
    """
    kernel_loading.set_idle_core(idle_core, tasks)
    if job.zone_subsets:  # zonal counts always use compiled kernels (a no-op where they are C)
        kernel_loading.start_warm_up()


def _run_in_worker(tasks: list[Task]) -> Partial:
    return run_cached_tasks(tasks, _WORKER_STATE["job"], _WORKER_STATE.get("cache"))
