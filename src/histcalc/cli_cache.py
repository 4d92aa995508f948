"""``histcalc cache info|prune LOCATION``: what a job cache holds, and how to keep it under control."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from histcalc import gdalenv
from histcalc.cache import TMP_MARK, EntryInfo, LocalStore, Store, open_store
from histcalc.cached_task import ENTRY_SUFFIX, JOB_FILE
from histcalc.cli_logging import configure_logging
from histcalc.cli_parser import Parser
from histcalc.errors import UsageError

_DAY_S = 86_400
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*d?\s*$", re.IGNORECASE)


@dataclass
class CacheSummary:
    """Entries, bytes and jobs of a cache (a job: one hash of the counting options)."""

    entries: int = 0
    bytes: int = 0
    leftovers: int = 0  # temporary files of writers that died before their rename
    oldest: float | None = None
    newest: float | None = None
    jobs: dict[str, int] = field(default_factory=dict)  # job directory -> entries

    def add(self, entry: EntryInfo) -> None:
        self.bytes += entry.size
        if TMP_MARK in entry.name:
            self.leftovers += 1
        elif entry.name.endswith(ENTRY_SUFFIX):
            self.entries += 1
            job = entry.name.split("/", 1)[0]
            self.jobs[job] = self.jobs.get(job, 0) + 1
            self.oldest = min(self.oldest or entry.modified, entry.modified)
            self.newest = max(self.newest or entry.modified, entry.modified)


def run_cache(args: Sequence[str]) -> int:
    """``histcalc cache info LOCATION`` or ``histcalc cache prune LOCATION --older-than AGE``."""
    p = Parser(prog="histcalc cache", description="Inspect or prune a job cache (--cache LOCATION).")
    sub = p.add_subparsers(dest="command", required=True, metavar="{info,prune}")
    info = sub.add_parser("info", help="entries, size, jobs (queries), oldest and newest entry")
    info.add_argument("location", help="the cache: a directory or s3://bucket/prefix")
    prune = sub.add_parser("prune", help="delete entries older than an age or a date")
    prune.add_argument("location", help="the cache: a directory or s3://bucket/prefix")
    prune.add_argument("--older-than", required=True, metavar="AGE", help="days (30 or 30d) or a date (2024-05-01)")
    for sp in (info, prune):
        sp.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
        sp.add_argument("-q", "--quiet", action="count", default=0, help="less log output")
    ns = p.parse_args(args)
    configure_logging(ns.verbose - ns.quiet)
    store = open_store(ns.location, gdalenv.capture())
    if isinstance(store, LocalStore) and not store.root.is_dir():
        raise UsageError(f"no cache at {ns.location} (not a directory)")
    if ns.command == "info":
        print(info_text(store))
        return 0
    cutoff = cutoff_of(ns.older_than)
    print(prune_cache(store, cutoff))
    return 0


def cutoff_of(text: str, now: float | None = None) -> float:
    """The Unix time before which entries go: ``30`` or ``30d`` days ago, or the start of a date (UTC)."""
    now = time.time() if now is None else now
    if match := _AGE.match(text):
        return now - float(match[1]) * _DAY_S
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--older-than needs days (30, 30d) or a date (2024-05-01), got {text!r}") from None
    if type(when) is date or when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def summarize(entries: Iterable[EntryInfo]) -> CacheSummary:
    summary = CacheSummary()
    for entry in entries:
        summary.add(entry)
    return summary


def info_text(store: Store) -> str:
    summary = summarize(store.list())
    lines = [
        f"cache {store.location}: {summary.entries} entr{'y' if summary.entries == 1 else 'ies'}, "
        f"{_size(summary.bytes)}, {len(summary.jobs)} job(s)",
    ]
    if summary.oldest is not None and summary.newest is not None:
        lines.append(f"entries written from {_when(summary.oldest)} to {_when(summary.newest)}")
    if summary.leftovers:
        lines.append(f"{summary.leftovers} temporary file(s) of interrupted writers (prune removes them)")
    lines.extend(
        f"job {job}: {n} entr{'y' if n == 1 else 'ies'}; {_about(store, job)}" for job, n in summary.jobs.items()
    )
    return "\n".join(lines)


def prune_cache(store: Store, cutoff: float) -> str:
    """Delete entries (and leftovers) written before ``cutoff``, then the descriptions of emptied jobs."""
    removed, freed, kept = 0, 0, set()
    entries = list(store.list())
    for entry in entries:
        if entry.name.endswith(JOB_FILE):
            continue
        if entry.modified < cutoff:
            store.delete(entry.name)
            removed, freed = removed + 1, freed + entry.size
        else:
            kept.add(entry.name.split("/", 1)[0])
    for entry in entries:
        if entry.name.endswith(f"/{JOB_FILE}") and entry.name.split("/", 1)[0] not in kept:
            store.delete(entry.name)
    return f"pruned {removed} file(s) ({_size(freed)}) written before {_when(cutoff)}; {len(kept)} job(s) kept"


def _about(store: Store, job: str) -> str:
    """One line from the job's description: its bins, band, masks, AOI, zones and grouping."""
    data = store.get(f"{job}/{JOB_FILE}")
    if data is None:
        return "no description"
    try:
        d = json.loads(data)
        bins = d["bins"]
        parts = [f"{bins['count']} bins {bins['low']:.6g}..{bins['high']:.6g}", f"band {d['band']}"]
    except (ValueError, KeyError, TypeError):
        return "unreadable description"
    parts += [k for k in ("aoi", "zonal") if d.get(k)]
    if d.get("group_by"):
        parts.append(f"by {d['group_by']}")
    return ", ".join(parts) + f" (histcalc {d.get('histcalc_version', '?')})"


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")
