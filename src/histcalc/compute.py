"""The job, as a function: scenes in, one exact histogram and a file account out."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from histcalc import gdalenv
from histcalc.aoi import AOI
from histcalc.bins import BinSpec
from histcalc.engines import ENGINES, Progress
from histcalc.errors import UsageError
from histcalc.grids import Grids
from histcalc.overlaps import assign, check_overlaps, plan_ownership
from histcalc.plan import (
    JobSpec,
    OnError,
    Overrides,
    check_zonal,
    default_bins,
    first_header,
    plan_tasks,
    plan_zones,
    split_parts,
)
from histcalc.result import JobResult
from histcalc.scenes import Scene

if TYPE_CHECKING:
    from histcalc.cached_task import TaskCache
    from histcalc.plan import Task
    from histcalc.result import Partial
    from histcalc.zone_dataset import DatasetSpec, Written, ZoneDatasets
    from histcalc.zones import Zones

log = logging.getLogger(__name__)


def compute_histogram(
    scenes: Sequence[Scene],
    bins: BinSpec | None = None,
    aoi: AOI | None = None,
    *,
    engine: str | None = None,
    master: str | None = None,
    spark: Any = None,
    workers: int | None = None,
    on_error: OnError = "skip",
    overrides: Overrides = Overrides(),
    gdal: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    group_by: str | None = None,
    zones: Zones | None = None,
    zone_datasets: ZoneDatasets | None = None,
    cache: str | None = None,
    overlaps: str = "once",
    acquisition: str = "time",
) -> JobResult:
    """Histogram of every valid pixel of ``scenes`` inside ``aoi``, on common ``bins``.

    ``bins`` None: one bin per digital number of the (integer) data. ``engine`` "spark" uses
    ``spark`` (a SparkSession) or starts one on ``master``; "local" uses ``workers`` processes.
    The default is Spark when a session or master is given, else the local engine.
    ``group_by`` (date, month, year, tile, item) also gives one histogram per group.
    ``zones`` (from :func:`histcalc.zone_files.load_zones`): also one histogram per zone (and group), in
    ``result.zone_tables``; the main histogram then counts the pixels of the zones' union.
    ``zone_datasets``: write those tables as Parquet datasets where they are reduced (Spark executors
    included) instead of returning them (``result.zone_tables`` is then empty, ``result.zones_with_pixels``
    says how many zones counted a pixel).
    ``cache`` (a directory or ``s3://bucket/prefix``): reuse the stored counts of unchanged files and store
    the others' (``result.files_cached`` says how many came from it).
    ``overlaps`` "once" (default): a ground location counts once per acquisition (``acquisition``: files
    of the same platform and sensing "time", or "day"); the others' pixels are tallied as ``duplicate``.
    "count": every file counts all its pixels (see :mod:`histcalc.overlaps`).
    """
    check_overlaps(overlaps, acquisition)
    engine = engine or ("spark" if spark is not None or master is not None else "local")
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}: choose one of {', '.join(ENGINES)}")
    settings = dict(gdalenv.capture() if gdal is None else gdal)
    scenes = list({s.href: s for s in scenes}.values())  # a file listed twice is counted once
    hrefs = [s.href for s in scenes]
    started = time.perf_counter()
    startup = 0.0
    if engine == "local":
        from histcalc.engines import local

        cores = workers or local.default_workers()
    else:
        from histcalc.engines import spark as spark_engine

        session = spark or spark_engine.session(master)
        startup = time.perf_counter() - started
        started += startup  # the job's time excludes the session start (logged on its own)
        log.info("spark session ready in %.1f s (master %s)", startup, session.sparkContext.master)
        cores = spark_engine.parallelism(session)
    # with a cache a file is one task: its entry then serves any later run, whatever its number of files and cores
    parts = 1 if zones is not None or cache is not None else split_parts(len(scenes), cores)
    tasks = plan_tasks(scenes, parts, overrides, group_by)
    subsets, header = None, None
    grids = Grids(settings)  # zones and overlaps share the headers they read
    if zones is not None:
        header = first_header(scenes, overrides.band, settings)  # read once: the default bins use it too
        check_zonal(header[1])
        tasks, subsets = plan_zones(tasks, zones, settings, grids)
    regions = None
    if overlaps == "once":
        ownership = plan_ownership(scenes, settings, acquisition, grids)
        tasks, regions = assign(tasks, ownership), dict(ownership.regions)
    job = JobSpec(
        bins or default_bins(header or first_header(scenes, overrides.band, settings), overrides),
        aoi,
        overrides.band,
        parts,
        overrides.mask_values if overrides.mask_asset else (),  # no effect without a mask: kept out of cache keys
        overrides.all_touched,
        settings,
        on_error,
        subsets,
        overlaps,
        regions,
    )
    dataset = _datasets(zone_datasets, zones, job, group_by is not None)
    task_cache = _open_cache(cache, job, group_by)
    try:
        if engine == "local":
            partial = _run_local(tasks, job, workers, progress, hrefs, task_cache, dataset)
        else:
            partial = spark_engine.run(tasks, job, session, progress, task_cache, dataset)
    except BaseException:
        if dataset is not None:
            from histcalc import zone_dataset

            zone_dataset.discard(dataset[0])  # the staged parts: the previous dataset stays as it was
        raise
    elapsed = time.perf_counter() - started
    result = partial.finish(hrefs, len(tasks), engine, elapsed, job.bins, group_by is not None, cache is not None)
    result = replace(result, startup_s=startup, zone_ids=zones.ids if zones is not None else [])
    if dataset is not None and zone_datasets is not None:
        from histcalc import zone_dataset

        result = replace(result, zones_with_pixels=zone_dataset.finish(dataset[0], zone_datasets, dataset[1]))
    log.info(
        "%s engine: %d of %d file(s) ok, %d pixel(s) counted in %.1f s",
        engine,
        len(result.files_ok),
        result.files_total,
        result.histogram.count,
        result.elapsed_s,
    )
    return result


def _run_local(
    tasks: list[Task],
    job: JobSpec,
    workers: int | None,
    progress: Progress | None,
    hrefs: list[str],
    task_cache: TaskCache | None,
    dataset: tuple[DatasetSpec, Written] | None,
) -> Partial:
    """The local engine; zone datasets are written as their groups finish (:class:`zone_dataset.LocalWriter`)."""
    from histcalc.engines import local

    remote = any(local.is_remote(h) for h in hrefs)
    if dataset is None:
        return local.run(tasks, job, len(tasks), workers, progress, remote, task_cache, None)
    from histcalc import zone_dataset  # zonal jobs writing Parquet datasets only (pyarrow)

    writer = zone_dataset.LocalWriter(*dataset, Counter(t.group for t in tasks))
    try:
        partial = local.run(tasks, job, len(tasks), workers, progress, remote, task_cache, writer.done)
    except BaseException:
        writer.abandon()
        raise
    writer.close(partial)
    return partial


def _datasets(
    targets: ZoneDatasets | None, zones: Zones | None, job: JobSpec, grouped: bool
) -> tuple[DatasetSpec, Written] | None:
    if targets is None or (targets.tidy is None and targets.stats is None):
        return None
    if zones is None:
        raise UsageError("Parquet datasets of per-zone tables need zones")
    from histcalc import zone_dataset

    return zone_dataset.prepare(targets, zones.ids, job.bins, grouped), zone_dataset.Written()


def _open_cache(location: str | None, job: JobSpec, group_by: str | None) -> TaskCache | None:
    if location is None:
        return None
    from histcalc.cached_task import open_cache

    return open_cache(location, job, {"group_by": group_by})
