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
from typing import TYPE_CHECKING

from histcalc.aoi import AOI, load_geojson, parse_bbox
from histcalc.argv import join_number_args, parse_numbers
from histcalc.bins import BinSpec
from histcalc.cli_logging import configure_logging, quiet_spark_startup
from histcalc.cli_parser import EXIT_NOTHING_COUNTED, MAX_BINS, SEED_BBOX, Parser, job_parser
from histcalc.cli_zones import write_zone_outputs, zone_datasets_from_args, zones_from_args
from histcalc.errors import HistcalcError, InvalidBins, TooManyFailures, UsageError
from histcalc.histogram import Histogram
from histcalc.options import (
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
from histcalc.output_checks import check_outputs, check_writable
from histcalc.redact import redact
from histcalc.scenes import TERRASCOPE_STAC_API, Query, is_stac_api

if TYPE_CHECKING:
    from histcalc.cli_auth import JobAuth

__all__ = ["bins_from_args", "configure_logging", "job_parser", "main", "query_from_args"]

log = logging.getLogger("histcalc")

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool whose reader closed the pipe


_NOT_QUERY_OPTIONS = {"output", "csv", "parquet", "plot", "zone_stats", "verbose", "quiet", "catalog", "generate_only"}


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
        print(f"histcalc: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("histcalc: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug of ours: still one line, with the type to report it by
        log.debug("internal error", exc_info=True)
        print(
            f"histcalc: internal error: {type(exc).__name__}: {redact(str(exc))} (run with -v for details)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _dispatch(args: list[str]) -> int:
    if args and args[0] == "demo":
        from histcalc.cli_demo import run_demo

        return run_demo(args[1:], run_job)
    if args and args[0] == "cache":
        from histcalc.cli_cache import run_cache

        return run_cache(args[1:])
    if args and args[0] == "plot":
        return run_plot(args[1:])
    if args and args[0] in ("login", "logout"):
        from histcalc.cli_auth import run_login, run_logout

        return run_login(args[1:]) if args[0] == "login" else run_logout(args[1:])
    ns = job_parser().parse_args(args)
    configure_logging(ns.verbose - ns.quiet)
    return run_job(ns)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's flush at exit does not fail again."""

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout without a file descriptor (captured): nothing to flush
        pass


def run_plot(args: Sequence[str]) -> int:
    """``histcalc plot RESULT.json -o PLOT.png``: redraw the plot of a saved result."""
    from histcalc.plot import check_plot_path, plot_file

    p = Parser(prog="histcalc plot", description="Plot a saved histcalc result (JSON) to an image.")
    p.add_argument("result", help="result JSON written by --output")
    p.add_argument("--output", "-o", metavar="PNG", help="the image to write (default: RESULT with .png)")
    ns = p.parse_args(args)
    ns.output = ns.output or str(Path(ns.result).with_suffix(".png"))
    check_writable(ns.output)
    check_plot_path(ns.output)
    plot_file(ns.result, ns.output)
    print(f"plot: {ns.output}")
    return 0


def run_job(ns: argparse.Namespace) -> int:
    """Validate the flags once, then select, compute and report (with the job's credentials, see cli_auth)."""
    from histcalc.cli_auth import job_auth

    with job_auth(ns) as auth:
        return _run_job(ns, auth)


def _run_job(ns: argparse.Namespace, auth: JobAuth) -> int:
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
    check_cache_option(ns.cache)
    zones = zones_from_args(ns)
    scenes = auth.find_scenes(query, find_scenes_with_hints)  # with the login's token where the catalog wants it
    auth.activate([s.href for s in scenes])  # a fresh token for remote files, kept fresh until the job ends
    overrides = resolve_mask_asset(scenes, overrides)
    ns.mask_asset = overrides.mask_asset  # the key as the catalog spells it, for the query record
    notes = unused_options(ns)
    bins = check_against_first_file(scenes, bins, ns, notes)
    if notes:  # after every check: a bad option is one line, not warnings and then an error
        log.warning("%s", "; ".join(notes))
    if ns.dry_run:
        from histcalc.dryrun import report

        print(redact(report(scenes, aoi, bins, overrides, ns.engine, ns.workers)))
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
            zone_datasets=zone_datasets_from_args(ns, percentiles),
            cache=ns.cache,
            gdal=auth.gdal_settings(ns.engine, ns.master),  # None without credentials: captured as before
            overlaps=ns.overlaps,
            acquisition=ns.acquisition or "time",
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
    print(redact(summary(result, percentiles)))
    if zones is not None:
        from histcalc.zone_report import summary_lines

        print("\n".join(summary_lines(result, ns.zone_stats, doc["zones"]["with_pixels"])))
    failed, allowed = len(result.files_failed), allowed_failures(ns.allow_failures, result.files_total)
    if failed > allowed:
        raise TooManyFailures(
            f"{failed} of {result.files_total} file(s) failed (listed above), more than --allow-failures {allowed}"
        )
    if result.histogram.count == 0:
        log.warning("no pixel was counted: %s", _why_nothing(result.histogram))
        return EXIT_NOTHING_COUNTED
    return 0


def check_cache_option(location: str | None) -> None:
    """--cache: the location must be writable (created if needed); one line otherwise, before any pixel."""
    if location is None:
        return
    from histcalc import gdalenv
    from histcalc.cache import check_writable, open_store

    check_writable(open_store(location, gdalenv.capture()))


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
