"""Planning on the driver: scenes -> small frozen picklable tasks plus one shared JobSpec; running tasks.

Tasks carry only what differs per file (href, group, value overrides, mask href, row share); the
bins, AOI and GDAL settings are shipped once per worker or partition in the :class:`JobSpec`, so
a million tasks cost a million small records, not a million copies of a 65,536-edge bin spec.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from histcalc import heap
from histcalc.aoi import AOI
from histcalc.bins import BinSpec
from histcalc.errors import CatalogError, HistcalcError, RasterReadError, UsageError
from histcalc.raster import RasterInfo, ReadSpec, histogram_of, inspect, zonal_histogram_of
from histcalc.result import Partial
from histcalc.scenes import Scene

if TYPE_CHECKING:
    from histcalc.grids import Grids
    from histcalc.zones import Zones, ZoneSubset

log = logging.getLogger(__name__)

OnError = Literal["skip", "fail"]
_TASKS_PER_CORE = 3
_MAX_PARTS = 16


GROUP_BY = ("date", "month", "year", "tile", "item")
_TILE = re.compile(r"_(\d{2}[C-X][A-Z]{2})_")


@dataclass(frozen=True, slots=True)
class Task:
    """One file, or one interleaved share of its rows, to count into one group.

    Only what differs between files travels with a task; what every task shares (bins, AOI, band,
    masks, GDAL settings) is a :class:`JobSpec`, shipped once per worker process or Spark partition.
    """

    href: str
    group: str = ""
    scale: float | None = None
    offset: float | None = None
    nodata: float | None = None
    mask_href: str | None = None
    part: int = 0
    zone_key: str | None = None
    updated: str | None = None
    """The catalog's ``updated`` property of the item: a reprocessed scene misses the cache (see cache_key)."""
    owner_key: str | None = None
    """``--overlaps once``: the region it counts, a key of ``JobSpec.owned_regions`` (None: all of it)."""
    cover: tuple[str, ...] = ()
    """``--overlaps once``: the other halves of its split datastrip (copies of its tile and acquisition)."""
    cover_before: int = 0
    """How many of ``cover`` come before it: the first half with data at a pixel counts it."""


@dataclass(frozen=True)
class JobSpec:
    """What every task of a job shares."""

    bins: BinSpec
    aoi: AOI | None = None
    band: int = 1
    parts: int = 1
    mask_values: tuple[int, ...] = ()
    all_touched: bool = False
    gdal: Mapping[str, str] = field(default_factory=dict)
    on_error: OnError = "skip"
    zone_subsets: Mapping[str, ZoneSubset] | None = None
    """Zonal jobs: the zones of each raster grid, by key (tasks name theirs by ``Task.zone_key``)."""
    overlaps: str = "once"
    """``once``: each ground location once per acquisition (regions below); ``count``: every file's pixels."""
    owned_regions: Mapping[str, bytes] | None = None
    """``--overlaps once``: WKB polygons (each in its raster's CRS) by key, named by ``Task.owner_key``."""

    def read_spec(self, task: Task) -> ReadSpec:
        return ReadSpec(
            band=self.band,
            scale=task.scale,
            offset=task.offset,
            nodata=task.nodata,
            aoi=self.aoi,
            part=task.part,
            parts=self.parts,
            mask_href=task.mask_href,
            mask_values=self.mask_values,
            all_touched=self.all_touched,
            owned=None if task.owner_key is None else (self.owned_regions or {})[task.owner_key],
            cover=task.cover,
            cover_before=task.cover_before,
        )


@dataclass(frozen=True)
class Overrides:
    """Values the user forces over file and catalog metadata, and how pixels are selected."""

    band: int = 1
    scale: float | None = None
    offset: float | None = None
    nodata: float | None = None
    mask_asset: str | None = None
    mask_values: tuple[int, ...] = ()
    all_touched: bool = False


def split_parts(files: int, parallelism: int) -> int:
    """Row shares per file: enough tasks to keep every core busy when there are few files."""
    return min(_MAX_PARTS, max(1, math.ceil(_TASKS_PER_CORE * parallelism / max(files, 1))))


def plan_tasks(
    scenes: Sequence[Scene],
    parts: int = 1,
    overrides: Overrides = Overrides(),
    group_by: str | None = None,
) -> list[Task]:
    """Tasks for ``scenes``, each file in ``parts`` interleaved row shares."""
    tasks: list[Task] = []
    for scene in scenes:
        task = Task(
            scene.href,
            group_key(scene, group_by),
            _first(overrides.scale, scene.scale),
            _first(overrides.offset, scene.offset),
            _first(overrides.nodata, scene.nodata),
            _mask_href(scene, overrides.mask_asset),
            updated=scene.updated,
        )
        tasks.append(task)
        tasks.extend(replace(task, part=i) for i in range(1, parts))
    log.info("planned %d task(s): %d file(s) x %d part(s)", len(tasks), len(scenes), parts)
    return tasks


def plan_zones(
    tasks: list[Task], zones: Zones, gdal: Mapping[str, str], grids: Grids | None = None
) -> tuple[list[Task], dict[str, ZoneSubset]]:
    """Each task's zones: the subset of ``zones`` that meets its file, shared by every file of the same grid.

    Reads each file's header (CRS and bounds) on the driver, once per job with ``grids``; a file whose
    header cannot be read keeps no zones and fails by name when its task reads it.
    """
    from histcalc.grids import Grids

    grids = grids or Grids(gdal)
    grids.read(task.href for task in tasks)
    subsets: dict[str, ZoneSubset] = {}
    planned = []
    for task in tasks:
        try:
            crs, bounds = grids.of(task.href)
        except RasterReadError:
            planned.append(task)
            continue
        subset = zones.for_raster(crs, bounds)
        subsets.setdefault(subset.key, subset)
        planned.append(replace(task, zone_key=subset.key))
    log.info("zones: %d grid(s) for %d file(s)", len(subsets), len(planned))
    return planned, subsets


def group_key(scene: Scene, group_by: str | None) -> str:
    """The group a scene counts into: its day, month, year, tile or item id ("" without grouping)."""
    if group_by is None:
        return ""
    if group_by in ("date", "month", "year"):
        if scene.day is None:
            return "undated"
        return scene.day.isoformat()[: {"date": 10, "month": 7, "year": 4}[group_by]]
    if group_by == "tile":
        match = _TILE.search(f"_{scene.id}_") or _TILE.search(scene.href)
        return scene.tile or (match[1] if match else "unknown")
    if group_by == "item":
        return scene.id
    raise UsageError(f"group_by (--group-by) must be one of {', '.join(GROUP_BY)}, got {group_by!r}")


def _mask_href(scene: Scene, asset: str | None) -> str | None:
    if asset is None:
        return None
    if asset not in scene.extra_hrefs:
        raise CatalogError(f"scene {scene.id} has no asset {asset!r} to mask with (--mask-asset)")
    return scene.extra_hrefs[asset]


def first_header(scenes: Sequence[Scene], band: int, gdal: Mapping[str, str]) -> tuple[Scene, RasterInfo]:
    """The first scene whose header can be read, and that header."""
    for scene in scenes:
        try:
            return scene, inspect(scene.href, band, gdal)
        except RasterReadError as exc:
            log.warning("cannot read header of %s (%s); trying the next file", scene.href, exc)
    raise RasterReadError("no selected file could be opened to learn its data type; give bins with a range (--range)")


def default_bins(header: tuple[Scene, RasterInfo], overrides: Overrides) -> BinSpec:
    """One bin per digital number of the integer dtype in ``header`` (from :func:`first_header`), in physical units."""
    from histcalc.bins import dn_limits
    from histcalc.errors import InvalidBins

    scene, info = header
    scale = _first(overrides.scale, scene.scale, info.scale)
    offset = _first(overrides.offset, scene.offset, info.offset)
    try:
        dn_limits(info.dtype)
    except InvalidBins as exc:
        raise InvalidBins(f"{info.dtype} data has no default bins: give --range LO,HI (and --bins N)") from exc
    return BinSpec.per_digital_number(info.dtype, scale or 1.0, offset or 0.0)


def check_zonal(info: RasterInfo) -> None:
    """Zonal counts go by digital number: the data must be 8- or 16-bit integers."""
    from histcalc.bins import dn_limits
    from histcalc.errors import InvalidBins

    try:
        dn_limits(info.dtype)
    except InvalidBins as exc:
        raise UsageError(f"zonal histograms need 8- or 16-bit integer data, the files hold {info.dtype}") from exc


def run_task(task: Task, job: JobSpec) -> Partial:
    """Count one task; under ``skip`` a failing file becomes a named failure instead of an error."""
    try:
        if job.zone_subsets is None:
            histogram = histogram_of(task.href, job.bins, job.read_spec(task), job.gdal)
            return Partial.of_task(task.href, {("", task.group): histogram}, split=job.parts > 1)
        if task.zone_key is None:  # its header could not be read when zones were planned
            histogram_of(task.href, job.bins, job.read_spec(task), job.gdal)  # fails again, with the reason
            raise RasterReadError(f"{task.href}: its header could not be read when the zones were planned")
        subset = job.zone_subsets[task.zone_key]
        histogram, table = zonal_histogram_of(task.href, job.bins, job.read_spec(task), subset, job.gdal)
        heap.trim()  # the task's large temporaries are freed: give their pages back (see histcalc.heap)
    except HistcalcError as exc:
        if job.on_error == "fail":
            raise
        # one line per file: the other row shares of a split file fail alike (the summary names it once too)
        (log.warning if task.part == 0 else log.debug)("failed: %s", exc)
        return Partial.of_failure(task.href, str(exc).removeprefix(f"{task.href}: "))
    return Partial.of_task(task.href, {("", task.group): histogram}, False, {task.group: table})


def run_tasks(tasks: Iterable[Task], job: JobSpec) -> Partial:
    """Count several tasks in this process, merging as it goes (memory: one histogram per key)."""
    total = Partial()
    for task in tasks:
        total.merge(run_task(task, job))
    return total


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)
