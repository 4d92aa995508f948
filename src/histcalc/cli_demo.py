"""``histcalc demo``: make the demo dataset (and parcels) if needed, then run the seed's query on it."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from histcalc.aoi import parse_bbox
from histcalc.cli_logging import configure_logging
from histcalc.cli_parser import EXIT_NOTHING_COUNTED, SEED_BBOX, Parser, add_job_options
from histcalc.errors import UsageError
from histcalc.output_checks import check_writable


def run_demo(args: Sequence[str], run_job: Callable[[argparse.Namespace], int]) -> int:
    """``histcalc demo``: make the demo dataset if needed, then run the seed's query on it."""
    from histcalc import demo

    p = Parser(
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
    check_writable(ns.plot_parcels)
    check_plot_path(ns.plot_parcels)
