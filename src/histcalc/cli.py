"""The ``histcalc`` command: a thin shell over scenes -> compute -> report.

Every failure the user can cause ends in one line on stderr and a distinct exit code
(see :mod:`histcalc.errors`), never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from histcalc import __version__
from histcalc.aoi import AOI, load_geojson, parse_bbox
from histcalc.argv import join_number_args, parse_numbers
from histcalc.bins import BinSpec
from histcalc.cli_zones import write_zone_outputs, zones_from_args
from histcalc.errors import HistcalcError, InvalidBins, TooManyFailures, UsageError
from histcalc.histogram import DEFAULT_PERCENTILES, Histogram
from histcalc.options import (
    SCL_MASK_VALUES,
    check_against_first_file,
    check_engine_options,
    checked_catalog,
    days_from_args,
    find_scenes_with_hints,
    overrides_from_args,
    percentiles_from_args,
    resolve_mask_asset,
    unused_options,
)
from histcalc.plan import GROUP_BY
from histcalc.scenes import TERRASCOPE_STAC_API, Query, is_stac_api

log = logging.getLogger("histcalc")

SEED_BBOX = "4.91,51.16,5.24,51.27"
MAX_BINS = 10_000_000  # 80 MB of counts per group; more is a typo, not a histogram
EXIT_NOTHING_COUNTED = 8  # the job ran and every file was read, but no pixel was counted
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool whose reader closed the pipe


_OUTPUT_FLAGS = (
    ("--output", "output"),
    ("--csv", "csv"),
    ("--parquet", "parquet"),
    ("--plot", "plot"),
    ("--zone-stats", "zone_stats"),
)
_NOT_QUERY_OPTIONS = {"output", "csv", "parquet", "plot", "zone_stats", "verbose", "quiet", "catalog", "generate_only"}

EPILOG = """\
subcommands:
  histcalc demo [options]          make the demo dataset (./demo-data) and run the seed's query on it
  histcalc plot RESULT.json [-o P] redraw the plot of a saved result

examples:
  histcalc --start-date 2024-05-01 --end-date 2024-06-10 --bbox 4.91,51.16,5.24,51.27 -o ndvi.json
  histcalc --catalog demo-data/catalog.json --engine local --datetime 2024-05 --range -1,1 --bins 50
  histcalc --catalog /data/S2/ --asset NDVI --mask-asset SCENECLASSIFICATION --group-by month --csv m.csv
  histcalc --catalog demo-data/catalog.json --aoi field.geojson --dry-run

exit codes:
  0 ok   2 bad input   3 catalog unreadable or unreachable   4 no scene matched   5 files failed
  6 engine failure   7 output not writable   8 no pixel counted   70 internal error   130 interrupted
"""


class _Parser(argparse.ArgumentParser):
    """argparse that raises our UsageError (one line, exit 2) instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def job_parser(prog: str = "histcalc") -> argparse.ArgumentParser:
    p = _Parser(
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
        "(.csv, .parquet, or .gpkg/.geojson with the zones' shapes)",
    )
    out = p.add_argument_group("output")
    out.add_argument("--output", "-o", metavar="JSON", help="write the result as JSON")
    out.add_argument("--csv", metavar="CSV", help="tidy CSV: group, kind, bin_low, bin_high, bin_centre, count")
    out.add_argument("--parquet", metavar="FILE", help="the CSV's table as Parquet, with the query (needs pyarrow)")
    out.add_argument("--plot", metavar="PNG", help="plot the histogram (and the groups) to .png, .pdf, .svg, ...")
    out.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    out.add_argument("-q", "--quiet", action="count", default=0, help="less log output")
    out.add_argument("--version", action="version", version=f"histcalc {__version__}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``histcalc`` console script; returns the exit code."""
    args = join_number_args(sys.argv[1:] if argv is None else argv)
    try:
        code = _dispatch(args)
        sys.stdout.flush()  # here, not at exit: a closed pipe is then ours to handle
        return code
    except BrokenPipeError:  # `histcalc ... | head -1`: the reader left, as for any Unix tool
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except HistcalcError as exc:
        print(f"histcalc: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("histcalc: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug of ours: still one line, with the type to report it by
        log.debug("internal error", exc_info=True)
        print(f"histcalc: internal error: {type(exc).__name__}: {exc} (run with -v for details)", file=sys.stderr)
        return EXIT_INTERNAL


def _dispatch(args: list[str]) -> int:
    if args and args[0] == "demo":
        return run_demo(args[1:])
    if args and args[0] == "plot":
        return run_plot(args[1:])
    ns = job_parser().parse_args(args)
    configure_logging(ns.verbose - ns.quiet)
    return run_job(ns)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's flush at exit does not fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured): nothing to flush
        pass


def run_demo(args: Sequence[str]) -> int:
    """``histcalc demo``: make the demo dataset if needed, then run the seed's query on it."""
    from histcalc import demo

    p = _Parser(
        prog="histcalc demo",
        description="Generate the synthetic Terrascope-like dataset and "
        "run the seed's query (May 1 - June 10 2024, bbox " + SEED_BBOX + ") on it.",
        conflict_handler="resolve",  # the demo's --zones also works without a file
    )
    p.add_argument("--dir", default="demo-data", help="dataset folder (default ./demo-data)")
    p.add_argument(
        "--size",
        type=int,
        default=demo.DEFAULT_SIZE,
        help=f"pixels per tile side (default {demo.DEFAULT_SIZE}; {demo.FULL_SIZE} for full tiles)",
    )
    p.add_argument("--generate-only", action="store_true", help="write the dataset, do not run the job")
    add_job_options(p, catalog_default="")
    p.add_argument(
        "--zones",
        nargs="?",
        const=True,
        metavar="FILE",
        help="one histogram per parcel and date, SCL-masked: the demo's parcels (made once in --dir) or FILE",
    )
    p.add_argument("--plot-parcels", metavar="PNG", help="with --zones: plot a few parcels' median per date")
    ns = p.parse_args(args)
    configure_logging(ns.verbose - ns.quiet)
    if not 16 <= ns.size <= demo.FULL_SIZE:
        raise UsageError(f"--size must lie in 16..{demo.FULL_SIZE}, got {ns.size}")
    own_parcels = False
    if ns.zones:
        from histcalc.demo_zones import apply_zone_defaults

        own_parcels = apply_zone_defaults(ns, ns.dir)
    _check_parcel_plot(ns)
    catalog = demo.ensure(ns.dir, ns.size)
    if own_parcels:
        from histcalc.demo_zones import ensure_parcels

        ensure_parcels(ns.dir, parse_bbox(SEED_BBOX))
    if ns.generate_only:
        print(f"demo catalog: {catalog}" + (f"\ndemo zones: {ns.zones}" if ns.zones else ""))
        return 0
    ns.catalog = ns.catalog or str(catalog)
    if not ns.datetime:  # the seed's days, unless the user chose days
        ns.start_date = ns.start_date or "2024-05-01"
        ns.end_date = ns.end_date or "2024-06-10"
    ns.bbox = ns.bbox or (None if ns.aoi else SEED_BBOX)  # the demo's parcels lie inside it
    code = run_job(ns)
    if ns.plot_parcels and code != EXIT_NOTHING_COUNTED:
        from histcalc.zone_plot import plot_zone_medians

        title = f"{ns.asset} median per {ns.group_by}, parcels with the most valid pixels ({ns.mask_asset} mask)"
        plot_zone_medians(ns.zone_stats, ns.plot_parcels, title=title)
        print(f"parcel plot: {ns.plot_parcels}")
    return code


def _check_parcel_plot(ns: argparse.Namespace) -> None:
    """--plot-parcels draws from the --zone-stats table: both checked before the dataset is made."""
    if not ns.plot_parcels:
        return
    if not ns.zones:
        raise UsageError("--plot-parcels needs --zones")
    from histcalc.plot import check_plot_path
    from histcalc.zone_plot import check_stats_table

    check_stats_table(ns.zone_stats)
    _check_writable(ns.plot_parcels)
    check_plot_path(ns.plot_parcels)


def run_plot(args: Sequence[str]) -> int:
    """``histcalc plot RESULT.json -o PLOT.png``: redraw the plot of a saved result."""
    from histcalc.plot import check_plot_path, plot_file

    p = _Parser(prog="histcalc plot", description="Plot a saved histcalc result (JSON) to an image.")
    p.add_argument("result", help="result JSON written by --output")
    p.add_argument("--output", "-o", metavar="PNG", help="the image to write (default: RESULT with .png)")
    ns = p.parse_args(args)
    ns.output = ns.output or str(Path(ns.result).with_suffix(".png"))
    _check_writable(ns.output)
    check_plot_path(ns.output)
    plot_file(ns.result, ns.output)
    print(f"plot: {ns.output}")
    return 0


def run_job(ns: argparse.Namespace) -> int:
    """Validate the flags once, then select, compute and report."""
    from histcalc.compute import compute_histogram
    from histcalc.progress import reporter
    from histcalc.report import query_record, result_document, summary, write_csv, write_json, write_parquet

    query, aoi = query_from_args(ns)
    bins = bins_from_args(ns)
    percentiles = percentiles_from_args(ns)
    overrides = overrides_from_args(ns)
    check_engine_options(ns)
    allowed_failures(ns.allow_failures, 0)  # validate before any work
    check_outputs(ns)
    zones = zones_from_args(ns)
    scenes = find_scenes_with_hints(query)
    overrides = resolve_mask_asset(scenes, overrides)
    ns.mask_asset = overrides.mask_asset  # the key as the catalog spells it, for the query record
    notes = unused_options(ns)
    bins = check_against_first_file(scenes, bins, ns, notes)
    if notes:  # after every check: a bad option is one line, not warnings and then an error
        log.warning("%s", "; ".join(notes))
    if ns.dry_run:
        from histcalc.dryrun import report

        print(report(scenes, aoi, bins, overrides, ns.engine, ns.workers))
        return 0
    quiet_spark_startup(ns.quiet > 0 and ns.engine == "spark")
    with reporter(sys.stderr, enabled=ns.quiet == 0) as progress:
        result = compute_histogram(
            scenes,
            bins,
            aoi,
            engine=ns.engine,
            master=ns.master,
            workers=ns.workers,
            on_error=ns.on_error,
            overrides=overrides,
            progress=progress,
            group_by=ns.group_by,
            zones=zones,
        )
    options = {("range" if k == "value_range" else k): v for k, v in vars(ns).items() if k not in _NOT_QUERY_OPTIONS}
    doc = result_document(result, query_record(query.to_dict(), options), percentiles)
    if zones is not None:
        write_zone_outputs(result, ns, doc, zones, percentiles)
    if ns.output:
        write_json(doc, ns.output)
    if ns.csv and zones is None:
        write_csv(result, ns.csv)
    if ns.parquet and zones is None:
        write_parquet(result, ns.parquet, doc)
    if ns.plot:
        from histcalc.plot import plot_result

        plot_result(doc, ns.plot)
    print(summary(result, percentiles))
    if zones is not None:
        from histcalc.zone_report import summary_lines

        print("\n".join(summary_lines(result, ns.zone_stats)))
    failed, allowed = len(result.files_failed), allowed_failures(ns.allow_failures, result.files_total)
    if failed > allowed:
        raise TooManyFailures(
            f"{failed} of {result.files_total} file(s) failed (listed above), more than --allow-failures {allowed}"
        )
    if result.histogram.count == 0:
        log.warning("no pixel was counted: %s", _why_nothing(result.histogram))
        return EXIT_NOTHING_COUNTED
    return 0


def _why_nothing(h: Histogram) -> str:
    if h.pixels == 0:
        return "the files hold no pixel inside the AOI (or the zones); check --bbox/--aoi/--zones"
    out_of_range = h.below + h.above
    return f"of {h.pixels:,} pixels read, {h.nodata:,} are nodata, {h.masked:,} masked, {out_of_range:,} out of range"


def allowed_failures(text: str, total: int) -> int:
    """How many failed files ``--allow-failures`` tolerates: a count N, or a percentage P% of ``total``."""
    raw = text.strip()
    try:
        if raw.endswith("%"):
            percent = float(raw[:-1])
            if not 0 <= percent <= 100:
                raise ValueError
            return int(total * percent / 100)
        count = int(raw)
        if count < 0:
            raise ValueError
        return count
    except ValueError as exc:
        raise UsageError(f"--allow-failures needs a count N >= 0 or a percentage P% (0..100), got {text!r}") from exc


def query_from_args(ns: argparse.Namespace) -> tuple[Query, AOI | None]:
    start, end = days_from_args(ns)
    if ns.aoi and ns.bbox:
        raise UsageError("give either --bbox or --aoi, not both")
    bbox_text = ns.bbox or (SEED_BBOX if ns.catalog == TERRASCOPE_STAC_API and not ns.aoi else None)
    aoi = load_geojson(ns.aoi) if ns.aoi else (AOI.from_bbox(parse_bbox(bbox_text)) if bbox_text else None)
    bbox = aoi.lonlat_bbox() if aoi else None
    catalog = checked_catalog(ns.catalog)
    if ns.filter and not is_stac_api(catalog):
        raise UsageError("--filter works with a STAC API --catalog only")
    query = Query(catalog, ns.collection or None, start, end, bbox, ns.asset, ns.href_mode, ns.filter, ns.pattern)
    return query, aoi


def bins_from_args(ns: argparse.Namespace) -> BinSpec | None:
    """Bins from --bins/--range; None for one bin per digital number, or --bins alone (over the data type)."""
    if ns.bins is not None and not 0 < ns.bins <= MAX_BINS:
        raise InvalidBins(f"--bins must be a positive integer up to {MAX_BINS:,}, got {ns.bins}")
    if ns.value_range is None:
        return None
    lo_hi = parse_numbers(ns.value_range, "--range")
    if len(lo_hi) != 2:
        raise InvalidBins(f"--range needs two numbers LO,HI, got {ns.value_range!r}")
    return BinSpec.uniform(ns.bins or 256, lo_hi[0], lo_hi[1])


def configure_logging(level: int) -> None:
    chosen = logging.INFO if level == 0 else (logging.DEBUG if level > 0 else logging.WARNING)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_not_py4j_chatter)
    logging.basicConfig(level=chosen, handlers=[handler], force=True)
    for noisy in ("py4j", "pyspark", "rasterio"):
        logging.getLogger(noisy).setLevel(max(chosen, logging.WARNING))
    logging.getLogger("urllib3").setLevel(logging.DEBUG if level > 1 else logging.ERROR)  # retries: we say it


def _not_py4j_chatter(record: logging.LogRecord) -> bool:
    """py4j logs a retried send on a stale gateway connection at INFO on the *root* logger, with a traceback."""
    return record.levelno >= logging.WARNING or f"{os.sep}py4j{os.sep}" not in record.pathname


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Logs to whatever ``sys.stderr`` is at the time of each record (it may be swapped)."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def _check_writable(*paths: str | None) -> None:
    import os

    for path in paths:
        if path is None:
            continue
        folder = Path(path).resolve().parent
        while not folder.exists():
            folder = folder.parent
        if not folder.is_dir():
            raise UsageError(f"cannot write {path}: {folder} is not a directory")
        if not os.access(folder, os.W_OK):
            raise UsageError(f"cannot write {path}: {folder} is not writable")


def check_outputs(ns: argparse.Namespace) -> None:
    """Every output option, before any pixel is read: writable, distinct, and its library installed."""
    paths = {flag: getattr(ns, dest) for flag, dest in _OUTPUT_FLAGS if getattr(ns, dest, None)}
    _check_writable(*paths.values())
    seen: dict[Path, str] = {}
    for flag, path in paths.items():
        target = Path(path).resolve()
        if target in seen:
            raise UsageError(f"{seen[target]} and {flag} name the same file {path}")
        if target.is_dir():
            raise UsageError(f"{flag} {path} is a directory, not a file")
        seen[target] = flag
    if "--parquet" in paths:
        from histcalc.report import require_pyarrow

        require_pyarrow()
    if "--plot" in paths:
        from histcalc.plot import check_plot_path

        check_plot_path(paths["--plot"])


def quiet_spark_startup(quiet: bool) -> None:
    """With -q, a driver JVM started from here logs errors only (no log4j and Spark start-up lines).

    spark-submit's launcher puts ``SPARK_SUBMIT_OPTS`` on the driver's java command line; the
    properties file sends log4j2's output at level ERROR to stderr. Under spark-submit the JVM
    is already running and its own log4j configuration applies.
    """
    import os

    from histcalc.engines.spark import under_spark_submit

    if not quiet or under_spark_submit():
        return
    config = Path(__file__).with_name("log4j2-quiet.properties")
    option = f"-Dlog4j2.configurationFile={config.as_uri()}"
    current = os.environ.get("SPARK_SUBMIT_OPTS", "")
    if option not in current:
        os.environ["SPARK_SUBMIT_OPTS"] = f"{current} {option}".strip()
