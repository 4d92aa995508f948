"""The CLI's zone options: read and check the zones before any pixel, write the per-zone outputs after."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from histcalc.errors import UsageError
from histcalc.result import JobResult

if TYPE_CHECKING:
    from histcalc.zone_dataset import ZoneDatasets
    from histcalc.zones import Zones

log = logging.getLogger("histcalc")

_ZONE_FLAGS = (("--zone-id", "zone_id"), ("--zones-layer", "zones_layer"), ("--zone-stats", "zone_stats"))


def zones_from_args(ns: argparse.Namespace) -> Zones | None:
    """The zones, read and checked before any pixel (ids, geometries, CRS); None without --zones."""
    if ns.zones is None:
        given = [flag for flag, dest in _ZONE_FLAGS if getattr(ns, dest)]
        if given:
            raise UsageError(f"{', '.join(given)} needs --zones FILE")
        return None
    from histcalc.zone_files import load_zones
    from histcalc.zone_report import check_zone_stats_path

    datasets = zone_datasets_from_args(ns, ())
    if ns.zone_stats and datasets.stats is None:
        check_zone_stats_path(ns.zone_stats)
    zones = load_zones(ns.zones, id_field=ns.zone_id, layer=ns.zones_layer)
    log.info("zones: %d from %s (%d repaired or empty)", len(zones.ids), ns.zones, len(zones.problems))
    return zones


def zone_datasets_from_args(ns: argparse.Namespace, percentiles: Sequence[float]) -> ZoneDatasets:
    """--parquet DIR/ and --zone-stats DIR/: the per-zone tables as Parquet datasets (checked, not yet written)."""
    from histcalc.zone_dataset import ZoneDatasets, check_target, is_dataset

    flags = {"--parquet": ns.parquet, "--zone-stats": ns.zone_stats}
    as_dataset = {flag: path for flag, path in flags.items() if is_dataset(path)}
    if not as_dataset:
        return ZoneDatasets()
    if ns.zones is None:
        raise UsageError(f"{', '.join(as_dataset)}: a dataset directory holds per-zone tables (--zones); give a file")
    on_driver = [f for f, p in {**flags, "--csv": ns.csv, "--plot-parcels": getattr(ns, "plot_parcels", None)}.items()
                 if p and f not in as_dataset]  # fmt: skip
    if on_driver:
        raise UsageError(
            f"{', '.join(as_dataset)} as a dataset directory cannot be combined with {', '.join(on_driver)}: "
            "the per-zone tables are then written where they are reduced, not gathered; use directories for both"
        )
    for flag, path in as_dataset.items():
        check_target(flag, path)
    return ZoneDatasets(as_dataset.get("--parquet"), as_dataset.get("--zone-stats"), tuple(percentiles))


def write_zone_outputs(
    result: JobResult, ns: argparse.Namespace, doc: dict[str, Any], zones: Zones, percentiles: Sequence[float]
) -> None:
    """Per-zone tables: --csv/--parquet as tidy per-zone histograms, --zone-stats; the JSON's zone summary."""
    from histcalc.zone_report import summary_dict, write_zone_stats, write_zone_tidy

    doc["zones"] = summary_dict(result, ns.zone_stats)
    if result.zones_with_pixels is not None:
        doc["zones"]["datasets"] = {"tidy": ns.parquet, "stats": ns.zone_stats}
        return  # written where the tables were reduced
    if ns.csv:
        write_zone_tidy(result, ns.csv)
    if ns.parquet:
        write_zone_tidy(result, ns.parquet)
    if ns.zone_stats:
        write_zone_stats(result, ns.zone_stats, percentiles, doc.get("query", {}), zones)
