"""What tasks return and how it adds up: keyed partial results, then the job's result.

A task's result is a :class:`Partial`: a map from a key ``(zone, group)`` to a histogram ("" for "no
zones" / "no grouping"), the failures it met, and how many tasks it stands for. Partials are merged
*in place* into a running total (:meth:`Partial.merge`), at a cost proportional to the addend, never
to the total: a job over a million files does a million small merges, not a quadratic pile of copies.

File accounting is compact: the driver knows every href it planned, so a partial carries only the
failed files (with reasons) and a task count; a file is ok when it did not fail.

A file read in several parts (few large files, many cores) is kept apart until the end, so a file
that failed in one part contributes nothing rather than part of its pixels.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from histcalc.bins import BinSpec
from histcalc.errors import EngineError
from histcalc.histogram import Histogram, merge_all
from histcalc.zonal import ZoneTable
from histcalc.zone_pack import PackedTable, ZoneTables
from histcalc.zone_sum import ZoneSum, whole

Key = tuple[str, str]
"""(zone, group): "" when the job has no zones / no grouping."""
TOTAL: Key = ("", "")

Keyed = dict[Key, Histogram]


class Partial:
    """A mutable, reducible share of the job: histograms per key, file parts, failures, tasks counted."""

    __slots__ = ("cached", "failed", "histograms", "parts", "tasks", "zonal")

    def __init__(
        self,
        histograms: Keyed | None = None,
        *,
        parts: dict[str, Keyed] | None = None,
        failed: dict[str, str] | None = None,
        tasks: int = 0,
        zonal: dict[str, ZoneSum] | None = None,
        cached: int = 0,
    ) -> None:
        self.histograms: Keyed = histograms if histograms is not None else {}
        self.parts: dict[str, Keyed] = parts if parts is not None else {}
        self.failed: dict[str, str] = failed if failed is not None else {}
        self.tasks = tasks
        self.zonal: dict[str, ZoneSum] = zonal if zonal is not None else {}
        self.cached = cached  # tasks whose partial came from the cache (see histcalc.cached_task)

    @classmethod
    def of_task(cls, href: str, histograms: Keyed, split: bool, zones: dict[str, ZoneTable] | None = None) -> Partial:
        """One task's counts: whole-file counts go straight to the keys, a part is kept by file.

        ``zones``: per-zone tables by group (zonal jobs never split a file into parts).
        """
        zonal = {group: ZoneSum(table) for group, table in (zones or {}).items()}
        if split:
            return cls(parts={href: histograms}, tasks=1, zonal=zonal)
        return cls(histograms, tasks=1, zonal=zonal)

    @classmethod
    def of_failure(cls, href: str, reason: str) -> Partial:
        return cls(failed={href: reason}, tasks=1)

    def merge(self, other: Partial) -> Partial:
        """Add ``other`` into this partial (in place; ``other`` must not be used afterwards)."""
        _merge_keyed(self.histograms, other.histograms)
        for href, keyed in other.parts.items():
            _merge_keyed(self.parts.setdefault(href, {}), keyed)
        self.failed.update(other.failed)
        self.tasks += other.tasks
        self.cached += other.cached
        for group, zone_sum in other.zonal.items():
            if group in self.zonal:
                self.zonal[group].merge(zone_sum)
            else:
                self.zonal[group] = zone_sum
        return self

    def records(self) -> Iterator[tuple[tuple[Any, ...], Any]]:
        """This partial as (record key, value) pairs that a keyed reduce (Spark) can add up."""
        for key, h in self.histograms.items():
            yield ("h", *key), h
        for href, keyed in self.parts.items():
            for key, h in keyed.items():
                yield ("p", href, *key), h
        for group, zone_sum in self.zonal.items():
            yield ("z", group), zone_sum.packed()  # packed: a third of the bytes through a shuffle
        yield ("f",), (self.failed, self.tasks)
        if self.cached:
            yield ("c",), self.cached

    @classmethod
    def from_records(cls, records: Iterable[tuple[tuple[Any, ...], Any]]) -> Partial:
        """The inverse of :meth:`records`, streaming: each record is merged as it arrives."""
        total = cls()
        for rkey, value in records:
            total.merge(_record_partial(rkey, value))
        return total

    def finish(
        self,
        hrefs: list[str],
        tasks: int,
        engine: str,
        elapsed: float,
        bins: BinSpec,
        grouped: bool = False,
        cache: bool = False,
    ) -> JobResult:
        """The job's result: whole files only, each selected file either ok or failed."""
        if self.tasks != tasks:  # an engine lost or duplicated a task: never hide it
            raise EngineError(f"{tasks} task(s) were planned but {self.tasks} result(s) came back")
        keyed = self.histograms
        for href, part_keys in self.parts.items():
            if href not in self.failed:
                _merge_keyed(keyed, part_keys)
        failed = {h: self.failed[h] for h in hrefs if h in self.failed}
        ok = [h for h in hrefs if h not in failed]
        groups = {group: h for (_zone, group), h in sorted(keyed.items())}
        total = merge_all(groups.values(), bins)
        named = groups if grouped else {}
        zone_tables = ZoneTables({group: zone_sum.packed() for group, zone_sum in sorted(self.zonal.items())})
        cached = self.cached * len(hrefs) // tasks if cache and tasks else None  # files: a split file has parts
        return JobResult(
            total, named, len(hrefs), ok, failed, engine, elapsed, zone_tables=zone_tables, files_cached=cached
        )


def merge_records(a: Any, b: Any) -> Any:
    """Add two values of the same record key (see :meth:`Partial.records`)."""
    if isinstance(a, Histogram):
        return a + b
    if isinstance(a, (ZoneTable, PackedTable)):
        total = ZoneSum(a)
        total.add(b)
        return total.packed()
    if isinstance(a, int):  # ("c",): tasks from the cache
        return a + b
    failed_a, tasks_a = a
    failed_b, tasks_b = b
    return ({**failed_a, **failed_b}, tasks_a + tasks_b)


def _record_partial(rkey: tuple[Any, ...], value: Any) -> Partial:
    kind = rkey[0]
    if kind == "h":
        return Partial({(rkey[1], rkey[2]): value})
    if kind == "p":
        return Partial(parts={rkey[1]: {(rkey[2], rkey[3]): value}})
    if kind == "z":
        return Partial(zonal={rkey[1]: ZoneSum(value)})
    if kind == "c":
        return Partial(cached=value)
    failed, tasks = value
    return Partial(failed=dict(failed), tasks=tasks)


def _merge_keyed(into: Keyed, other: Mapping[Key, Histogram]) -> None:
    for key, h in other.items():
        mine = into.get(key)
        into[key] = h if mine is None else mine + h


@dataclass(frozen=True)
class JobResult:
    """The merged histogram, the histogram of each named group, and an account of every selected file."""

    histogram: Histogram
    groups: dict[str, Histogram]
    files_total: int
    files_ok: list[str]
    files_failed: dict[str, str]
    engine: str
    elapsed_s: float
    startup_s: float = 0.0
    zone_tables: Mapping[str, ZoneTable] = field(default_factory=dict)
    """Zonal jobs: the per-zone table of each group ("" without grouping); zones index ``zone_ids``. Held
    packed (:class:`~histcalc.zone_pack.ZoneTables`): each read unpacks its group."""
    zone_ids: list[str] = field(default_factory=list)
    zones_with_pixels: int | None = None
    """Zonal jobs whose tables were written as datasets (``zone_tables`` is then empty): zones that counted a pixel."""
    files_cached: int | None = None
    """With a cache: the files whose counts came from it (the others were read); None without one."""

    def zone_histogram(self, zone_id: str, group: str | None = None) -> Histogram:
        """The histogram of zone ``zone_id`` in ``group``, or over all groups when None; zeros if it had no pixel."""
        from histcalc.zonal_stats import zone_histogram

        if self.zones_with_pixels is not None:
            raise KeyError("the per-zone tables were written as Parquet datasets, not kept in this result")
        try:
            position = self.zone_ids.index(zone_id)
        except ValueError:
            raise KeyError(f"no zone {zone_id!r} in this result") from None
        if group is None:
            table = whole(self.zone_tables)
        elif group in self.zone_tables:
            table = self.zone_tables[group]
        elif group in self.groups or (not self.groups and group == ""):
            table = ZoneTable.empty()  # a group in which no zone had a pixel
        else:
            raise KeyError(f"no group {group!r} in this result (groups: {', '.join(self.groups) or 'none'})")
        return zone_histogram(table, position, self.histogram.bins)

    def files_dict(self) -> dict[str, Any]:
        return {
            "total": self.files_total,
            "ok": len(self.files_ok),
            "failed": [{"href": h, "error": e} for h, e in self.files_failed.items()],
            **({} if self.files_cached is None else {"cached": self.files_cached}),
        }
