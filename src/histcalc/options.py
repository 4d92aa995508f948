"""The job's options checked before any work, and the checks that need the selected scenes.

Everything here turns an ``argparse`` namespace into checked values or one-line usage errors;
options that do nothing in a combination become notes the CLI logs once, after every check.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from histcalc.aoi import swapped_hint
from histcalc.argv import parse_numbers
from histcalc.bins import BinSpec
from histcalc.dates import parse_date, parse_interval
from histcalc.errors import NoScenesFound, UsageError
from histcalc.plan import Overrides
from histcalc.scenes import Query, Scene, is_tiff

log = logging.getLogger("histcalc")

SCL_MASK_VALUES = "0,3,8,9,10,11"
READABLE_SCHEMES = ("http", "https", "file")  # catalogs; a single GeoTIFF may use any scheme GDAL reads


def overrides_from_args(ns: argparse.Namespace) -> Overrides:
    """The value and masking overrides, each checked: a scale of 0 or a non-finite one is refused."""
    if ns.band < 1:
        raise UsageError(f"--band must be 1 or more, got {ns.band}")
    if ns.scale is not None and (ns.scale == 0 or not math.isfinite(ns.scale)):
        raise UsageError(f"--scale must be a finite number other than 0, got {ns.scale:g}")
    if ns.offset is not None and not math.isfinite(ns.offset):
        raise UsageError(f"--offset must be a finite number, got {ns.offset:g}")
    return Overrides(
        band=ns.band,
        scale=ns.scale,
        offset=ns.offset,
        nodata=ns.nodata,
        mask_asset=ns.mask_asset,
        mask_values=mask_values(ns.mask_values or SCL_MASK_VALUES),
        all_touched=ns.all_touched,
    )


def percentiles_from_args(ns: argparse.Namespace) -> list[float]:
    values = parse_numbers(ns.percentiles, "--percentiles")
    if not all(0 <= q <= 100 for q in values):
        raise UsageError(f"--percentiles must lie in 0..100, got {ns.percentiles!r}")
    return values


def check_engine_options(ns: argparse.Namespace) -> None:
    """--workers, and HISTCALC_KERNEL (=c needs the C kernels built into this installation)."""
    from histcalc import kernel_loading

    if ns.workers is not None and ns.workers < 1:
        raise UsageError(f"--workers must be 1 or more, got {ns.workers}")
    family = kernel_loading.kernel_family()  # raises: an unknown name, =c without the C kernels, =numba without numba
    if family == "numpy" and kernel_loading.kernel_name() == "auto":
        log.warning(
            "counting with numpy, ~3 x slower: this installation has no C kernels (no C compiler when it was "
            "built) and numba is not installed; reinstall histcalc with cc on PATH, or pip install 'histcalc[numba]'"
        )


def resolve_mask_asset(scenes: list[Scene], overrides: Overrides) -> Overrides:
    """--mask-asset as the scenes spell it (case aside); a usage error listing their assets if none has it."""
    from dataclasses import replace

    wanted = overrides.mask_asset
    if wanted is None:
        return overrides
    keys = {k for s in scenes for k in s.extra_hrefs}
    if wanted in keys:
        return overrides
    folded = [k for k in keys if k.lower() == wanted.lower()]
    if len(folded) == 1:
        return replace(overrides, mask_asset=folded[0])
    have = ", ".join(sorted(keys)) or "none"
    raise UsageError(f"--mask-asset {wanted}: the selected scenes have no such asset (their other assets: {have})")


def unused_options(ns: argparse.Namespace) -> list[str]:
    """Options given that will do nothing in this combination."""
    notes = []
    if ns.mask_values is not None and not ns.mask_asset:
        notes.append("--mask-values does nothing without --mask-asset (the classification asset to read them from)")
    if ns.master and ns.engine == "local":
        notes.append("--master does nothing with --engine local (it names a Spark master)")
    if ns.pattern and not _is_plain_directory(ns.catalog):
        notes.append("--pattern does nothing with a STAC catalog or a single file (it selects files in a directory)")
    if ns.acquisition and ns.overlaps == "count":
        notes.append(
            "--acquisition does nothing with --overlaps count (it groups the files that --overlaps once de-duplicates)"
        )
    if ns.workers is not None and ns.engine == "spark":
        notes.append("--workers does nothing with --engine spark (Spark's executors and cores decide)")
    return notes


def _is_plain_directory(catalog: str) -> bool:
    """A directory read as a folder of GeoTIFFs (one holding a catalog.json is read as that catalog)."""
    path = Path(os.path.expanduser(catalog))
    return "://" not in catalog and path.is_dir() and not (path / "catalog.json").exists()


def find_scenes_with_hints(query: Query, headers: Mapping[str, str] | None = None) -> list[Scene]:
    """The scenes; a query that matches none gets a hint when its box reads better as lat/lon."""
    from histcalc.scenes import find_scenes

    try:
        scenes = find_scenes(query, headers)
    except NoScenesFound as exc:
        raise NoScenesFound(f"{exc}{swapped_hint(query.bbox) if query.bbox else ''}") from exc
    for scene in scenes:
        others = f" (other assets: {', '.join(sorted(scene.extra_hrefs))})" if scene.extra_hrefs else ""
        log.debug("selected %s %s%s", scene.day or "undated", scene.href, others)
    return scenes


def check_against_first_file(
    scenes: list[Scene], bins: BinSpec | None, ns: argparse.Namespace, notes: list[str]
) -> BinSpec | None:
    """Band count, bins over the data type and bin alignment, from the first readable file's header;
    what the user should know goes to ``notes``."""
    from histcalc import preflight
    from histcalc.gdalenv import capture

    overrides = (ns.scale, ns.offset, ns.nodata)
    values = preflight.first_values(scenes, ns.band, overrides, capture(), required=bins is None)
    if values is None:
        return bins  # no header readable: the job names the files that fail
    if bins is None and ns.bins is not None:
        bins = preflight.bins_over_dtype(ns.bins, values)
    if bins is not None and (problem := preflight.misalignment(bins, values)):
        notes.append(problem)
    if ns.workers is not None and ns.engine == "local":
        notes.extend(_idle_workers(scenes, ns.workers))
    log.debug("%s", preflight.describe(values, bins))
    return bins


def _idle_workers(scenes: list[Scene], workers: int) -> list[str]:
    from histcalc.plan import split_parts

    tasks = len(scenes) * split_parts(len(scenes), workers)
    if workers <= tasks:
        return []
    return [f"--workers {workers}: only {tasks} task(s) to run, {workers - tasks} worker(s) will stay idle"]


def days_from_args(ns: argparse.Namespace) -> tuple[date | None, date | None]:
    """Inclusive UTC days from --start-date/--end-date or the one --datetime interval."""
    if ns.datetime:
        if ns.start_date or ns.end_date:
            raise UsageError("give either --datetime or --start-date/--end-date, not both")
        return parse_interval(ns.datetime)
    start = parse_date(ns.start_date, "start-date") if ns.start_date else None
    end = parse_date(ns.end_date, "end-date", end=True) if ns.end_date else None
    return start, end


def checked_catalog(catalog: str) -> str:
    """The --catalog as given, refused in one line when it cannot be read: missing path, unknown URL scheme."""
    from urllib.parse import urlsplit

    scheme = urlsplit(catalog).scheme.lower() if "://" in catalog else ""
    if scheme == "file":
        catalog = urlsplit(catalog).path
    elif scheme and scheme not in READABLE_SCHEMES and not is_tiff(catalog):
        raise UsageError(
            f"--catalog: unsupported URL scheme {scheme}:// (a catalog is read over http(s):// or from a local "
            "path; a single GeoTIFF may also be s3://, gs://, /vsi...)"
        )
    if "://" not in catalog and not catalog.startswith("/vsi"):
        catalog = os.path.expanduser(catalog)  # --catalog=~/data: no shell expands it
    if "://" not in catalog and not catalog.startswith("/vsi") and not Path(catalog).exists():
        raise UsageError(f"--catalog {catalog} does not exist")
    return catalog


def mask_values(text: str) -> tuple[int, ...]:
    values = parse_numbers(text, "--mask-values")
    if not all(v.is_integer() for v in values):
        raise UsageError(f"--mask-values needs whole numbers (classes), got {text!r}")
    return tuple(int(v) for v in values)
