"""One cache entry: a task's keyed partial as bytes, with a checksum, and back.

Layout: ``MAGIC`` (8 bytes), the sha256 of the payload (32 bytes), the payload: an ``.npz`` archive (numpy's
zip of ``.npy`` arrays, loaded with ``allow_pickle=False``: nothing from a shared location is unpickled).
It holds ``meta`` (JSON: the format, the job hash, the href, the record keys) and, per record of
:meth:`Partial.records`, plain int64 / float64 arrays: a histogram's counts, its tallies and moments, or a
zone table's columns. Bin edges are not stored: they are part of the job hash, the reader supplies them.
Anything that does not check out (short, wrong magic, checksum, shapes, job) raises :class:`CorruptEntry`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
from typing import Any

import numpy as np

from histcalc.bins import BinSpec
from histcalc.histogram import Histogram, Moments
from histcalc.result import Partial
from histcalc.zonal import ZoneTable
from histcalc.zone_pack import unpack
from histcalc.zone_sum import ZoneSum

MAGIC = b"HCPART1\n"
_DIGEST = 32
_ZONE_FIELDS = tuple(f.name for f in dataclasses.fields(ZoneTable))


class CorruptEntry(ValueError):
    """A torn, truncated or altered entry: it is recounted and overwritten, never merged."""


def encode(partial: Partial, meta: dict[str, Any]) -> bytes:
    """``partial`` (one successful task) as entry bytes; ``meta`` is stored beside it (JSON values)."""
    arrays: dict[str, np.ndarray] = {}
    keys: list[list[Any]] = []
    for i, (rkey, value) in enumerate(r for r in partial.records() if r[0][0] in ("h", "p", "z")):
        keys.append(["p", *rkey[2:]] if rkey[0] == "p" else list(rkey))  # a part's href: the reader's own
        if isinstance(value, Histogram):
            arrays.update(_histogram_arrays(f"r{i}", value))
        else:
            table = value if isinstance(value, ZoneTable) else unpack(value)
            arrays.update({f"r{i}_{name}": getattr(table, name) for name in _ZONE_FIELDS})
    text = json.dumps({**meta, "records": keys}, sort_keys=True).encode()
    arrays["meta"] = np.frombuffer(text, dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]  # numpy's stubs type **kwds poorly
    payload = buffer.getvalue()
    return MAGIC + hashlib.sha256(payload).digest() + payload


def decode(data: bytes, href: str, bins: BinSpec, job_key: str) -> Partial:
    """The partial of one task stored in ``data``, counted as one task from the cache."""
    payload = _checked_payload(data)
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            meta = json.loads(bytes(npz["meta"]).decode())
            if meta.get("job") != job_key:
                raise CorruptEntry("it belongs to another job")
            partial = Partial(tasks=1, cached=1)
            for i, key in enumerate(meta["records"]):
                partial.merge(_record(f"r{i}", key, npz, href, bins))
    except CorruptEntry:
        raise
    except Exception as exc:  # zip, npy, JSON or key errors: the bytes are not what we wrote
        raise CorruptEntry(f"unreadable ({type(exc).__name__}: {exc})") from exc
    return partial


def meta_of(data: bytes) -> dict[str, Any]:
    """The ``meta`` of an entry (for ``histcalc cache info``); CorruptEntry when it does not check out."""
    payload = _checked_payload(data)
    with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
        found: dict[str, Any] = json.loads(bytes(npz["meta"]).decode())
    return found


def _checked_payload(data: bytes) -> bytes:
    if len(data) < len(MAGIC) + _DIGEST:
        raise CorruptEntry(f"truncated ({len(data)} bytes)")
    if not data.startswith(MAGIC):
        raise CorruptEntry("not a histcalc cache entry (wrong header)")
    digest, payload = data[len(MAGIC) : len(MAGIC) + _DIGEST], data[len(MAGIC) + _DIGEST :]
    if hashlib.sha256(payload).digest() != digest:
        raise CorruptEntry("checksum mismatch (torn or altered)")
    return payload


def _histogram_arrays(prefix: str, h: Histogram) -> dict[str, np.ndarray]:
    m = h.moments
    return {
        f"{prefix}_counts": np.asarray(h.counts, dtype=np.int64),
        f"{prefix}_ints": np.array([h.below, h.above, h.nodata, h.masked, m.n, h.duplicate], dtype=np.int64),
        f"{prefix}_floats": np.array([m.mean, m.m2, h.vmin, h.vmax], dtype=np.float64),
    }


def _record(prefix: str, key: list[Any], npz: Any, href: str, bins: BinSpec) -> Partial:
    kind = key[0]
    if kind == "z":
        table = ZoneTable(*(np.asarray(npz[f"{prefix}_{name}"]) for name in _ZONE_FIELDS))
        return Partial(zonal={str(key[1]): ZoneSum(table)})
    h = _histogram(prefix, npz, bins)
    if kind == "h":
        return Partial({(str(key[1]), str(key[2])): h})
    if kind == "p":
        return Partial(parts={href: {(str(key[1]), str(key[2])): h}})
    raise CorruptEntry(f"unknown record kind {kind!r}")


def _histogram(prefix: str, npz: Any, bins: BinSpec) -> Histogram:
    counts = np.asarray(npz[f"{prefix}_counts"], dtype=np.int64)
    below, above, nodata, masked, n, duplicate = (int(v) for v in npz[f"{prefix}_ints"])
    mean, m2, vmin, vmax = (float(v) for v in npz[f"{prefix}_floats"])
    if counts.shape != (bins.count,) or n != int(counts.sum()) or math.isnan(mean):
        raise CorruptEntry(f"its counts do not fit the job's {bins.count} bins")
    return Histogram(bins, counts, below, above, nodata, masked, Moments(n, mean, m2), vmin, vmax, duplicate)
