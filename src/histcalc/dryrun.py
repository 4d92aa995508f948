"""``--dry-run``: what a job would read and roughly how long it would take, from headers alone.

The pixels come from the AOI windows of a few files' headers, extrapolated to every file; bytes
are those pixels uncompressed (what the counting touches) and, for local files, the share of the
file's size they make up (what is read from disk). The time is a rough figure from the measured
throughput (benchmarks/RESULTS.md: ~200 Mpx/s a core on local uint8 COGs) plus a cost per task.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from histcalc.aoi import AOI
from histcalc.bins import BinSpec
from histcalc.errors import RasterReadError
from histcalc.gdalenv import is_remote
from histcalc.plan import Overrides, Task, plan_tasks, split_parts
from histcalc.raster import aoi_extent
from histcalc.scenes import Scene

log = logging.getLogger(__name__)

SAMPLE_FILES = 5
PIXELS_PER_CORE_S = 200e6  # local uint8 COGs, measured (benchmarks/RESULTS.md)
REMOTE_BYTES_PER_S = 50e6  # a guess for object storage or HTTPS as seen by the whole job
SECONDS_PER_TASK = 0.02  # opening a file and planning its windows
SPARK_STARTUP_S = 6.0


@dataclass(frozen=True)
class Estimate:
    """What a job will read: counts exact, sizes extrapolated from ``sampled`` files' headers."""

    scenes: int
    files: int
    tasks: int
    sampled: int
    pixels: int
    uncompressed_bytes: int
    disk_bytes: int | None  # local files only
    remote_files: int
    seconds: float


def estimate(
    scenes: Sequence[Scene],
    aoi: AOI | None,
    tasks: Sequence[Task],
    cores: int,
    *,
    band: int = 1,
    engine: str = "local",
    gdal: Mapping[str, str] | None = None,
) -> Estimate:
    """Pixels, bytes and seconds for ``tasks`` over ``scenes`` from the headers of a few files."""
    hrefs = list(dict.fromkeys(s.href for s in scenes))
    sample = _spread(hrefs, SAMPLE_FILES)
    pixels, uncompressed, disk, ratio_known, seen = 0, 0, 0, True, 0
    for href in sample:
        try:
            extent = aoi_extent(href, aoi, band, gdal)
        except RasterReadError as exc:
            log.warning("dry run: cannot read the header of %s (%s)", href, exc)
            continue
        seen += 1
        pixels += extent.pixels
        uncompressed += extent.pixels * extent.itemsize
        if is_remote(href) or not extent.file_pixels:
            ratio_known = False
        else:
            disk += round(os.path.getsize(href) * extent.pixels / extent.file_pixels)
    scale = len(hrefs) / seen if seen else 0.0
    remote = sum(1 for h in hrefs if is_remote(h))
    total_pixels, total_bytes = round(pixels * scale), round(uncompressed * scale)
    seconds = total_pixels / (PIXELS_PER_CORE_S * max(cores, 1)) + SECONDS_PER_TASK * len(tasks) / max(cores, 1)
    if remote:
        seconds += total_bytes * remote / len(hrefs) / REMOTE_BYTES_PER_S
    if engine == "spark":
        seconds += SPARK_STARTUP_S
    return Estimate(
        len(scenes),
        len(hrefs),
        len(tasks),
        seen,
        total_pixels,
        total_bytes,
        round(disk * scale) if ratio_known and seen else None,
        remote,
        seconds,
    )


def report(
    scenes: Sequence[Scene],
    aoi: AOI | None,
    bins: BinSpec | None,
    overrides: Overrides,
    engine: str,
    workers: int | None,
    gdal: Mapping[str, str] | None = None,
) -> str:
    """The dry run's printout: the scenes, then the plan and the estimate."""
    from histcalc.engines import local
    from histcalc.gdalenv import capture

    cores = workers or local.default_workers()
    gdal = capture() if gdal is None else gdal
    tasks = plan_tasks(scenes, split_parts(len(scenes), cores), overrides)
    est = estimate(scenes, aoi, tasks, cores, band=overrides.band, engine=engine, gdal=gdal)
    lines = [f"{s.day or 'undated'}  {s.id}  {s.href}" for s in scenes]
    lines += [
        f"dry run: {est.scenes} scene(s), {est.files} file(s) ({est.remote_files} remote), {est.tasks} task(s) "
        f"on {cores} core(s) ({engine} engine)",
        f"to read: {_count(est.pixels)} pixels, {_size(est.uncompressed_bytes)} uncompressed"
        + (f", ~{_size(est.disk_bytes)} from disk" if est.disk_bytes is not None else "")
        + f" (from the headers of {est.sampled} file(s), extrapolated)",
        "bins: "
        + (f"{bins.count} from {bins.edges[0]:.6g} to {bins.edges[-1]:.6g}" if bins else "one per digital number"),
        f"estimated time: ~{_duration(est.seconds)} (rough; no pixel was read)",
        f"driver memory: ~{driver_megabytes(len(scenes), len(tasks)):.0f} MB planned "
        "(interpreter and libraries, scenes, tasks and the running total)",
    ]
    return "\n".join(lines)


# Measured with benchmarks/scale.py: ~80 MB of interpreter, numpy, rasterio and pystac, then about 0.9 KB
# a file (its Scene, its Task and its place in the file account) on the local engine's driver.
_DRIVER_BASE_MB = 80.0
_DRIVER_KB_PER_FILE = 0.9
_DRIVER_KB_PER_EXTRA_TASK = 0.15


def driver_megabytes(files: int, tasks: int) -> float:
    """The driver's planned memory for a job over ``files`` files in ``tasks`` tasks (zones not included)."""
    extra_tasks = max(0, tasks - files)
    return _DRIVER_BASE_MB + (files * _DRIVER_KB_PER_FILE + extra_tasks * _DRIVER_KB_PER_EXTRA_TASK) / 1024


def _spread(items: list[str], n: int) -> list[str]:
    """Up to ``n`` items spread evenly over ``items`` (first and last included)."""
    if len(items) <= n:
        return items
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]


def _count(n: int) -> str:
    return f"{n:,}"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
