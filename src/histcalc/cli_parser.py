"""The job's command-line options: one parser for ``histcalc`` and the demo, with its help text."""

from __future__ import annotations

import argparse

from histcalc import __version__
from histcalc.errors import UsageError
from histcalc.histogram import DEFAULT_PERCENTILES
from histcalc.options import SCL_MASK_VALUES
from histcalc.plan import GROUP_BY
from histcalc.scenes import TERRASCOPE_STAC_API

SEED_BBOX = "4.91,51.16,5.24,51.27"
EXIT_NOTHING_COUNTED = 8  # the job ran and every file was read, but no pixel was counted
MAX_BINS = 10_000_000  # 80 MB of counts per group; more is a typo, not a histogram

EPILOG = """\
subcommands:
  histcalc demo [options]          make the demo dataset (./demo-data) and run the seed's query on it
  histcalc plot RESULT.json [-o P] redraw the plot of a saved result
  histcalc cache info|prune LOC    what a --cache holds; delete entries --older-than DAYS or a date
  histcalc login / logout          store (or remove) a login for data served to authenticated users only

examples:
  histcalc --start-date 2024-05-01 --end-date 2024-06-10 --bbox 4.91,51.16,5.24,51.27 -o ndvi.json
  histcalc --catalog demo-data/catalog.json --engine local --datetime 2024-05 --range -1,1 --bins 50
  histcalc --catalog /data/S2/ --asset NDVI --mask-asset SCENECLASSIFICATION --group-by month --csv m.csv
  histcalc --catalog demo-data/catalog.json --aoi field.geojson --dry-run

exit codes:
  0 ok   2 bad input   3 catalog unreadable or unreachable   4 no scene matched   5 files failed
  6 engine failure   7 output not writable   8 no pixel counted   70 internal error   130 interrupted
  9 login refused   10 login expired or revoked (histcalc login again)   11 login provider unreachable
  12 data server refused the token (HTTP 401/403)
"""


class Parser(argparse.ArgumentParser):
    """argparse that raises our UsageError (one line, exit 2) instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def job_parser(prog: str = "histcalc") -> argparse.ArgumentParser:
    p = Parser(
        prog=prog,
        description="Exact histogram of raster pixel values over a catalog query (also: histcalc demo, histcalc plot).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_job_options(p)
    return p


def add_job_options(p: argparse.ArgumentParser, catalog_default: str = TERRASCOPE_STAC_API) -> None:
    sel = p.add_argument_group("selection")
    sel.add_argument(
        "--catalog",
        default=catalog_default,
        help="STAC API URL, static STAC catalog/collection JSON, or a directory of GeoTIFFs",
    )
    sel.add_argument("--collection", default="terrascope-s2-ndvi-v2", help="STAC collection id")
    sel.add_argument(
        "--start-date",
        "--start_date",
        dest="start_date",
        help="first day (UTC): YYYY-MM-DD, a datetime, or a month YYYY-MM / year YYYY from its first day",
    )
    sel.add_argument(
        "--end-date",
        "--end_date",
        dest="end_date",
        help="last day (UTC, inclusive): YYYY-MM-DD, a datetime, or a month / year up to its last day",
    )
    sel.add_argument(
        "--datetime",
        metavar="A/B",
        help="the days as one STAC interval instead: 2024-05-01/2024-06-10, 2024-05/.., ../2024-06, or 2024-05",
    )
    sel.add_argument(
        "--bbox",
        metavar="W,S,E,N",
        help="lon/lat box in EPSG:4326, commas or spaces (default for the Terrascope API: " + SEED_BBOX + ")",
    )
    sel.add_argument("--aoi", metavar="GEOJSON", help="AOI polygon(s) from a GeoJSON file instead of --bbox")
    sel.add_argument(
        "--asset",
        default="NDVI",
        help="asset key of the raster to count (default NDVI); in a directory, the word _ASSET_ in file names",
    )
    sel.add_argument(
        "--pattern",
        metavar="GLOB",
        help="directories: count the GeoTIFFs whose name matches GLOB (e.g. '*_NDVI_10M_*.tif'), not by --asset",
    )
    sel.add_argument(
        "--href-mode",
        choices=("auto", "local", "remote"),
        type=str.lower,
        default="auto",
        help="read alternate.local.href (mounted path) or the main href (default auto)",
    )
    sel.add_argument(
        "--filter", help="STAC API only: CQL2 filter on item properties, e.g. 'eo:cloud_cover < 20' (or CQL2-JSON)"
    )
    sel.add_argument("--all-touched", action="store_true", help="count every pixel the AOI touches, not centres")
    sel.add_argument("--mask-asset", help="classification asset to mask with, e.g. SCENECLASSIFICATION (SCL)")
    sel.add_argument(
        "--mask-values",
        help=f"classes of --mask-asset to drop (default {SCL_MASK_VALUES}: SCL nodata, "
        "cloud shadow, clouds, cirrus, snow)",
    )
    sel.add_argument(
        "--group-by", choices=GROUP_BY, type=str.lower, help="one histogram per date, month, year, tile or item too"
    )
    sel.add_argument(
        "--overlaps",
        choices=("once", "count"),
        type=str.lower,
        default="once",
        help="once (default): a ground location counts once per acquisition where tiles overlap (the rest is "
        "tallied as duplicate); count: every file counts all its pixels",
    )
    sel.add_argument(
        "--acquisition",
        choices=("time", "day"),
        type=str.lower,
        help="files of one acquisition (--overlaps once): same platform and sensing time (default) or day",
    )
    val = p.add_argument_group("values and bins")
    val.add_argument("--band", type=int, default=1, help="band to count (default 1)")
    val.add_argument(
        "--bins",
        type=int,
        help="number of equal bins over --range (default 256 with --range; without it, over the data type's range)",
    )
    val.add_argument("--range", dest="value_range", metavar="LO,HI", help="range of the bins, physical units")
    val.add_argument("--scale", type=float, help="override the scale (physical = DN * scale + offset)")
    val.add_argument("--offset", type=float, help="override the offset")
    val.add_argument("--nodata", type=float, help="override the nodata value")
    val.add_argument(
        "--percentiles",
        default=",".join(f"{q:g}" for q in DEFAULT_PERCENTILES),
        help="percentiles to report (default 2,25,50,75,98)",
    )
    run = p.add_argument_group("engine")
    run.add_argument("--engine", choices=("spark", "local"), type=str.lower, default="spark", help="default spark")
    run.add_argument("--master", help="Spark master (default: spark-submit's, else local[*])")
    run.add_argument("--workers", type=int, help="processes for the local engine (default: all cores)")
    run.add_argument(
        "--on-error",
        choices=("skip", "fail"),
        type=str.lower,
        default="skip",
        help="skip (report) unreadable files, or fail the job (default skip)",
    )
    # --cache (issue 13): incremental and resumable jobs
    run.add_argument(
        "--cache",
        metavar="LOCATION",
        help="reuse the counts of files already counted with the same options, store the others' "
        "(a directory or s3://bucket/prefix; see histcalc cache info|prune)",
    )
    run.add_argument(
        "--auth",
        choices=("stored", "env", "none"),
        type=str.lower,
        help="credentials for remote files: the stored login (`histcalc login`; the default when there is one), "
        "env (TERRASCOPE_USERNAME/TERRASCOPE_PASSWORD, nothing stored) or none",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="select and plan only: print the scenes, files, tasks, pixels and bytes to read and a time estimate",
    )
    run.add_argument(
        "--allow-failures",
        default="0",
        metavar="N|P%",
        help="exit 0 when at most N files (or P%% of them) failed (default 0)",
    )
    zon = p.add_argument_group("zones (one histogram per parcel)")
    zon.add_argument("--zones", metavar="FILE", help="zones: GeoJSON, GeoPackage, Shapefile, GeoParquet (any CRS)")
    zon.add_argument(
        "--zone-id", metavar="FIELD", help="attribute holding the zone id (default: feature id, else index)"
    )
    zon.add_argument("--zones-layer", metavar="NAME", help="layer of a multi-layer zones file (e.g. a GeoPackage)")
    zon.add_argument(
        "--zone-stats",
        metavar="FILE",
        help="one row per zone and group: pixels, count, tallies, mean, std, min, max, percentiles "
        "(.csv, .parquet, or .gpkg/.geojson with the zones' shapes; DIR/ for a Parquet dataset)",
    )
    out = p.add_argument_group("output")
    out.add_argument("--output", "-o", metavar="JSON", help="write the result as JSON")
    out.add_argument("--csv", metavar="CSV", help="tidy CSV: group, kind, bin_low, bin_high, bin_centre, count")
    out.add_argument(
        "--parquet",
        metavar="FILE",
        help="the CSV's table as Parquet, with the query (needs pyarrow); with --zones, DIR/ for a dataset "
        "written where the tables are reduced",
    )
    out.add_argument("--plot", metavar="PNG", help="plot the histogram (and the groups) to .png, .pdf, .svg, ...")
    out.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    out.add_argument("-q", "--quiet", action="count", default=0, help="less log output")
    out.add_argument("--version", action="version", version=f"histcalc {__version__}")
