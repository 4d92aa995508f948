"""Planning on the driver: scenes + AOI -> small frozen picklable tasks; and running one task.

Tasks carry no bins (a 65,536-bin spec would be pickled thousands of times): the engine ships
the bins once, with the function that runs the tasks.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from histcalc.aoi import AOI
from histcalc.bins import BinSpec
from histcalc.errors import CatalogError, HistcalcError, RasterReadError, UsageError
from histcalc.raster import ReadSpec, histogram_of, inspect
from histcalc.result import Partial
from histcalc.scenes import Scene

log = logging.getLogger(__name__)

OnError = Literal["skip", "fail"]
_TASKS_PER_CORE = 3
_MAX_PARTS = 16


GROUP_BY = ("date", "month", "year", "tile", "item")
_TILE = re.compile(r"_(\d{2}[C-X][A-Z]{2})_")


@dataclass(frozen=True)
class Task:
    """One file, or one interleaved share of its rows, to count into one group."""

    href: str
    spec: ReadSpec
    group: str = ""


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


def plan_tasks(
    scenes: Sequence[Scene],
    aoi: AOI | None,
    parallelism: int,
    overrides: Overrides = Overrides(),
    group_by: str | None = None,
) -> list[Task]:
    """Tasks for ``scenes``; files are split into row shares when there are fewer files than cores."""
    parts = min(_MAX_PARTS, max(1, math.ceil(_TASKS_PER_CORE * parallelism / max(len(scenes), 1))))
    tasks: list[Task] = []
    for scene in scenes:
        spec = ReadSpec(
            band=overrides.band,
            scale=_first(overrides.scale, scene.scale),
            offset=_first(overrides.offset, scene.offset),
            nodata=_first(overrides.nodata, scene.nodata),
            aoi=aoi,
            parts=parts,
            mask_href=_mask_href(scene, overrides.mask_asset),
            mask_values=overrides.mask_values,
            all_touched=overrides.all_touched,
        )
        group = group_key(scene, group_by)
        tasks.extend(Task(scene.href, replace(spec, part=i), group) for i in range(parts))
    log.info("planned %d task(s): %d file(s) x %d part(s)", len(tasks), len(scenes), parts)
    return tasks


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
    raise UsageError(f"--group-by must be one of {', '.join(GROUP_BY)}, got {group_by!r}")


def _mask_href(scene: Scene, asset: str | None) -> str | None:
    if asset is None:
        return None
    if asset not in scene.extra_hrefs:
        raise CatalogError(f"scene {scene.id} has no asset {asset!r} to mask with (--mask-asset)")
    return scene.extra_hrefs[asset]


def default_bins(scenes: Sequence[Scene], overrides: Overrides, gdal: Mapping[str, str]) -> BinSpec:
    """One bin per digital number of the first readable file's integer dtype, in physical units."""
    from histcalc.bins import dn_limits
    from histcalc.errors import InvalidBins

    for scene in scenes:
        try:
            info = inspect(scene.href, overrides.band, gdal)
        except RasterReadError as exc:
            log.warning("cannot read header of %s (%s); trying the next file for default bins", scene.href, exc)
            continue
        scale = _first(overrides.scale, scene.scale, info.scale)
        offset = _first(overrides.offset, scene.offset, info.offset)
        try:
            dn_limits(info.dtype)
        except InvalidBins as exc:
            raise InvalidBins(f"{info.dtype} data has no default bins: give --range LO,HI (and --bins N)") from exc
        return BinSpec.per_digital_number(info.dtype, scale or 1.0, offset or 0.0)
    raise RasterReadError("no selected file could be opened to choose default bins; give --range LO,HI")


def run_task(task: Task, bins: BinSpec, gdal: Mapping[str, str], on_error: OnError) -> Partial:
    """Count one task; under ``skip`` a failing file becomes a named failure instead of an error."""
    try:
        histogram = histogram_of(task.href, bins, task.spec, gdal)
    except HistcalcError as exc:
        if on_error == "fail":
            raise
        log.warning("failed: %s", exc)
        return Partial(failed={task.href: str(exc).removeprefix(f"{task.href}: ")})
    if task.spec.parts == 1:
        return Partial({task.group: histogram}, ok=frozenset([task.href]))
    return Partial(parts={task.href: (task.group, histogram)}, ok=frozenset([task.href]))


def run_tasks(tasks: Sequence[Task], bins: BinSpec, gdal: Mapping[str, str], on_error: OnError) -> Partial:
    """Count several tasks in this process, adding as it goes (memory stays one histogram per group)."""
    total = Partial()
    for task in tasks:
        total = total + run_task(task, bins, gdal, on_error)
    return total


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)
