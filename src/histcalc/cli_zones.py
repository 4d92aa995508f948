"""The CLI's zone options: read and check the zones before any pixel, write the per-zone outputs after."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from histcalc.errors import UsageError
from histcalc.result import JobResult

if TYPE_CHECKING:
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
    from histcalc.zone_report import check_zone_stats_path
    from histcalc.zones import load_zones

    if ns.zone_stats:
        check_zone_stats_path(ns.zone_stats)
    zones = load_zones(ns.zones, id_field=ns.zone_id, layer=ns.zones_layer)
    log.info("zones: %d from %s (%d repaired or empty)", len(zones.ids), ns.zones, len(zones.problems))
    return zones


def write_zone_outputs(
    result: JobResult, ns: argparse.Namespace, doc: dict[str, Any], zones: Zones, percentiles: Sequence[float]
) -> None:
    """Per-zone tables: --csv/--parquet as tidy per-zone histograms, --zone-stats; the JSON's zone summary."""
    from histcalc.zone_report import summary_dict, write_zone_stats, write_zone_tidy

    doc["zones"] = summary_dict(result, ns.zone_stats)
    if ns.csv:
        write_zone_tidy(result, ns.csv)
    if ns.parquet:
        write_zone_tidy(result, ns.parquet)
    if ns.zone_stats:
        write_zone_stats(result, ns.zone_stats, percentiles, doc.get("query", {}), zones)
