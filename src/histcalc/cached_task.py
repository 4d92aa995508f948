"""A task with a cache: reuse the stored partial of an unchanged file, else count it and store the result.

This runs where the task runs (a local worker, a Spark executor), so entries are read and written there
and the driver never collects per-file partials to store them. Only successful tasks are stored (a failed
file is retried by the next run). A corrupt entry is logged by name, recounted and overwritten. A cache
that cannot be read or written at run time costs a warning, never the job: the counts are right either way.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from histcalc.cache import Store, check_writable, open_store
from histcalc.cache_entry import CorruptEntry, decode, encode
from histcalc.cache_key import COUNTING_FORMAT, file_identity, href_key, job_hash, task_key
from histcalc.errors import RasterReadError
from histcalc.gdalenv import is_remote
from histcalc.plan import JobSpec, Task, run_task
from histcalc.result import Partial

log = logging.getLogger(__name__)

ENTRY_SUFFIX = ".hcp"
JOB_FILE = "job.json"
_JOB_DIR_CHARS = 24  # of the job hash's 64: a directory per job, still unique in practice
_READ_HERE: set[str] = set()  # remote files this process has read: GDAL may still hold their bytes


@dataclass(frozen=True)
class TaskCache:
    """A cache location and the hash of the job whose tasks use it (small: shipped to every worker)."""

    location: str
    job_key: str

    def store(self, job: JobSpec) -> Store:
        return open_store(self.location, job.gdal)

    def entry_name(self, key: str) -> str:
        return f"{self.job_key[:_JOB_DIR_CHARS]}/{key}{ENTRY_SUFFIX}"


def open_cache(location: str, job: JobSpec, about: dict[str, Any] | None = None) -> TaskCache:
    """The cache of ``job`` at ``location``: checked writable, with the job described once (for ``cache info``)."""
    store = open_store(location, job.gdal)
    check_writable(store)
    cache = TaskCache(location, job_hash(job))
    name = f"{cache.job_key[:_JOB_DIR_CHARS]}/{JOB_FILE}"
    if store.get(name) is None:
        store.put(name, json.dumps(_job_record(cache, job, about or {}), indent=1).encode())
    log.info("cache: %s, job %s", location, cache.job_key[:_JOB_DIR_CHARS])
    return cache


def run_cached_tasks(tasks: Iterable[Task], job: JobSpec, cache: TaskCache | None) -> Partial:
    """:func:`histcalc.plan.run_tasks`, through the cache when there is one."""
    total = Partial()
    for task in tasks:
        total.merge(run_cached(task, job, cache))
    return total


def run_cached(task: Task, job: JobSpec, cache: TaskCache | None) -> Partial:
    """One task: the stored partial when its file is unchanged, else counted (and stored when it succeeded)."""
    if cache is None:
        return _read(task, job)
    identity = _identity(task, job)
    if identity is None:
        log.debug("cache: %s has no identity (size/mtime, ETag); read, not cached", href_key(task.href))
        return _read(task, job)
    store = cache.store(job)
    name = cache.entry_name(task_key(cache.job_key, task, job, identity))
    stored = _load(store, name, task, job, cache.job_key)
    if stored is not None:
        return stored
    partial = _read(task, job, fresh=True)
    if not partial.failed and _unchanged(task, identity, job):
        _save(store, name, partial, {"job": cache.job_key, "href": href_key(task.href), "part": task.part})
    return partial


def _load(store: Store, name: str, task: Task, job: JobSpec, job_key: str) -> Partial | None:
    try:
        data = store.get(name)
    except Exception as exc:  # an unreachable cache: count the file instead
        log.warning("cache: cannot read %s (%s); counting %s", name, exc, href_key(task.href))
        return None
    if data is None:
        return None
    try:
        return decode(data, task.href, job.bins, job_key)
    except CorruptEntry as exc:
        log.warning("cache: corrupt entry %s for %s: %s; recounting it", name, href_key(task.href), exc)
        return None


def _save(store: Store, name: str, partial: Partial, meta: dict[str, Any]) -> None:
    try:
        store.put(name, encode(partial, {**meta, "format": COUNTING_FORMAT, "created": time.time()}))
    except Exception as exc:  # a full disk or a lost connection: the job's counts are right without it
        log.warning("cache: cannot write %s (%s)", name, exc)


def _read(task: Task, job: JobSpec, fresh: bool = False) -> Partial:
    """Count ``task``; ``fresh``: first make GDAL forget the remote files this process has read before.

    GDAL keeps the bytes and size of remote files for the life of the process (Spark reuses its Python
    workers across jobs) and serves them without asking the server again: a file rewritten since would be
    counted from stale bytes, though its new ETag sent it to be recounted.
    """
    remote = [h for h in (task.href, task.mask_href) if h is not None and is_remote(h)]
    for href in remote:
        if fresh and href in _READ_HERE:
            _forget(href, job.gdal)
        _READ_HERE.add(href)
    return run_task(task, job)


def _forget(href: str, gdal: Mapping[str, str]) -> None:
    """Open and close ``href`` with ``CPL_VSIL_CURL_NON_CACHED``: GDAL drops its cached bytes at the close."""
    from histcalc.raster import opened

    with contextlib.suppress(RasterReadError), opened(href, {**gdal, "CPL_VSIL_CURL_NON_CACHED": _gdal_path(href)}):
        pass


def _gdal_path(href: str) -> str:
    """The name GDAL gives a remote file: ``/vsis3/b/k`` for ``s3://b/k``, ``/vsicurl/URL`` for a URL."""
    if href.startswith("s3://"):
        return "/vsis3/" + href.removeprefix("s3://")
    return href if href.startswith("/vsi") else "/vsicurl/" + href


def _identity(task: Task, job: JobSpec) -> str | None:
    """The identity of the task's file and of its mask file (a reprocessed mask changes the counts too)."""
    found = [file_identity(h, job.gdal) for h in (task.href, task.mask_href) if h is not None]
    return None if any(i is None for i in found) else " | ".join(i for i in found if i is not None)


def _unchanged(task: Task, identity: str, job: JobSpec) -> bool:
    """A local file rewritten while it was read is not stored (its counts may mix both versions)."""
    if any(is_remote(h) for h in (task.href, task.mask_href) if h is not None):
        return True  # one HEAD per file is enough; a remote object is replaced whole
    if _identity(task, job) == identity:
        return True
    log.warning("cache: %s (or its mask) changed while it was read; not cached", task.href)
    return False


def _job_record(cache: TaskCache, job: JobSpec, about: dict[str, Any]) -> dict[str, Any]:
    from histcalc import __version__

    edges = job.bins.edges
    return {
        "job": cache.job_key,
        "format": COUNTING_FORMAT,
        "histcalc_version": __version__,
        "created": time.time(),
        "bins": {"count": len(edges) - 1, "low": edges[0], "high": edges[-1]},
        "band": job.band,
        "mask_values": list(job.mask_values),
        "aoi": job.aoi is not None,
        "zonal": job.zone_subsets is not None,
        **about,
    }
