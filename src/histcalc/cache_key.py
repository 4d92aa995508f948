"""Cache keys: a stored partial is reused only for the same file, as it is now, counted the same way.

A key joins three things:
- the **job hash**: every field of :class:`~histcalc.plan.JobSpec` that can change the counts (all of them but
  the GDAL settings, the error policy and the zone subsets, which are keyed per task) and
  :data:`COUNTING_FORMAT`. Fields are hashed generically (``dataclasses.fields``), so a field added to the
  JobSpec later is part of the key without a change here; a value of a type without a stable encoding
  raises rather than hashing something that varies between processes;
- the **task**: every field of :class:`~histcalc.plan.Task` but ``href``, and, for zonal jobs, the task's own
  zone subset (geometry and zone positions, not the zones' file name);
- the **file's identity** (and its mask file's, joined by the caller): the href (without a signed query
  string) plus size and mtime for local files, or the ETag / Last-Modified and size of a HEAD request for
  HTTP and S3; the catalog's ``updated`` property travels in the task. A file whose identity cannot be
  learnt is not cached (it is read every time).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from histcalc.gdalenv import is_remote, request_headers

if TYPE_CHECKING:
    from histcalc.plan import JobSpec, Task

log = logging.getLogger(__name__)

COUNTING_FORMAT = 2
"""Raise when a change of the counting (kernels, masks, the pixel rule, the entry's tallies) makes stored
partials wrong. 2: the ``duplicate`` tally of ``--overlaps once``."""
NOT_COUNTING = frozenset({"gdal", "on_error", "zone_subsets", "owned_regions"})
"""JobSpec fields outside the job hash: how files are reached and failures handled; zones and the regions of
``--overlaps once`` are keyed per task (its zone subset; ``Task.owner_key`` is the digest of its region), so a
new acquisition's regions do not change the hash of the files already counted."""
_TASK_NOT_KEYED = frozenset({"href"})
_HEAD_TIMEOUT_S = 30
_SUBSET_DIGESTS: dict[str, tuple[object, str]] = {}  # zone_key -> (the subset, the digest of all of it)


class UnhashableValue(TypeError):
    """A job or task value of a type without a stable, process-independent encoding."""


def canonical(value: Any) -> Any:
    """``value`` as plain JSON data that is the same in every process and run (no ``hash()``, no ids)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, enum.Enum):
        return {"enum": type(value).__qualname__, "name": value.name}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"type": type(value).__qualname__, "fields": fields}
    if isinstance(value, np.ndarray) and value.dtype.hasobject:  # pointers: hash the objects themselves
        return {"objects": list(value.shape), "items": [canonical(v) for v in value.ravel().tolist()]}
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return {
            "array": data.dtype.str,
            "shape": list(data.shape),
            "sha256": hashlib.sha256(data.tobytes()).hexdigest(),
        }
    if isinstance(value, np.generic):
        return canonical(value.item())
    if isinstance(value, Mapping):
        items = [[canonical(k), canonical(v)] for k, v in value.items()]
        return {"mapping": sorted(items, key=lambda kv: _dumps(kv[0]))}
    if isinstance(value, (tuple, list)):
        return [canonical(v) for v in value]
    if isinstance(value, (frozenset, set)):
        return {"set": sorted((canonical(v) for v in value), key=_dumps)}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if _is_geometry(value):
        import shapely

        return {"wkb": shapely.to_wkb(value, hex=True)}
    raise UnhashableValue(f"cannot hash a {type(value).__qualname__} stably for the cache")


def digest(value: Any) -> str:
    """The sha256 (hex) of ``value``'s canonical form."""
    return hashlib.sha256(_dumps(canonical(value)).encode()).hexdigest()


def job_hash(job: JobSpec) -> str:
    """The hash of everything in ``job`` that changes counts, and the counting format."""
    fields = {f.name: getattr(job, f.name) for f in dataclasses.fields(job) if f.name not in NOT_COUNTING}
    return digest({"counting_format": COUNTING_FORMAT, "job": fields})


def task_key(job_key: str, task: Task, job: JobSpec, identity: str) -> str:
    """The entry name of ``task`` counted under ``job_key`` while its file had ``identity``."""
    fields = {f.name: getattr(task, f.name) for f in dataclasses.fields(task) if f.name not in _TASK_NOT_KEYED}
    zone_key = getattr(task, "zone_key", None)
    subset = _subset_digest(job, zone_key) if job.zone_subsets is not None and zone_key is not None else None
    return digest({"job": job_key, "task": fields, "zones": subset, "href": href_key(task.href), "file": identity})


def href_key(href: str) -> str:
    """The href without a query string or fragment (signed URLs change on every run; the ETag names the content)."""
    return href.split("?", 1)[0].split("#", 1)[0] if is_remote(href) else href


def _subset_digest(job: JobSpec, zone_key: str) -> str:
    """The digest of the task's zone subset; every date of a tile shares one: hashed once per process."""
    subset = (job.zone_subsets or {})[zone_key]
    memo = _SUBSET_DIGESTS.get(zone_key)
    if memo is None or memo[0] is not subset:  # holding the subset keeps its identity from being reused
        memo = _SUBSET_DIGESTS[zone_key] = (subset, digest(subset))
    return memo[1]


def file_identity(href: str, gdal: Mapping[str, str]) -> str | None:
    """What says the file is unchanged: size and mtime, or the server's ETag / Last-Modified; None if unknown."""
    try:
        if not is_remote(href):
            st = os.stat(href)
            return f"size={st.st_size};mtime_ns={st.st_mtime_ns}"
        url = _plain_url(href)
        if url.startswith("s3://"):
            return _s3_identity(url, gdal)
        if url.startswith(("http://", "https://")):
            return _http_identity(url, gdal)
    except (OSError, ValueError) as exc:
        log.debug("cache: no identity for %s: %s", href_key(href), exc)
    return None


def _plain_url(href: str) -> str:
    """``/vsis3/b/k`` -> ``s3://b/k``; ``/vsicurl/URL`` -> URL; others unchanged."""
    if href.startswith("/vsis3/"):
        return "s3://" + href.removeprefix("/vsis3/")
    return href.removeprefix("/vsicurl/")


def _s3_identity(url: str, gdal: Mapping[str, str]) -> str | None:
    from histcalc.s3 import s3_client, split_s3

    bucket, key = split_s3(url)
    try:
        head = s3_client(gdal).head_object(Bucket=bucket, Key=key)
    except Exception as exc:  # botocore's errors: a missing object or an unreachable server
        raise OSError(str(exc)) from exc
    return _remote_identity(head.get("ETag"), _text(head.get("LastModified")), head.get("ContentLength"))


def _http_identity(url: str, gdal: Mapping[str, str]) -> str | None:
    from urllib.request import Request, urlopen

    headers = request_headers(gdal)  # with a login's current token (header file or the executors' relay)
    with urlopen(Request(url, method="HEAD", headers=headers), timeout=_HEAD_TIMEOUT_S) as response:
        got = response.headers
        return _remote_identity(got.get("ETag"), got.get("Last-Modified"), got.get("Content-Length"))


def _remote_identity(etag: Any, modified: Any, size: Any) -> str | None:
    if not etag and not modified:
        return None  # nothing tells a rewritten file apart: read it every time
    return f"etag={etag or ''};modified={modified or ''};size={size if size is not None else ''}"


def _text(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else (None if value is None else str(value))


def _is_geometry(value: Any) -> bool:
    module = type(value).__module__
    return module.startswith("shapely")


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)
