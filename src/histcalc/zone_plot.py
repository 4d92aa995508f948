"""The median over time of a few zones, from a ``--zone-stats`` table (CSV or Parquet); matplotlib optional.

Each zone is one line through its ``p50`` per group (a date, a month...); a group in which the zone
counted no pixel (clouds, outside the swath) has an empty ``p50`` and leaves a gap. Without a choice
of zones, those with the most counted pixels over the whole period (group ``all``) are drawn.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from histcalc.errors import OutputError, UsageError
from histcalc.plot import pyplot

ALL = "all"
TABLE_SUFFIXES = (".csv", ".parquet")


def check_stats_table(path: str | Path) -> None:
    """Refuse, before any work, a statistics file this module cannot read."""
    if Path(path).suffix.lower() not in TABLE_SUFFIXES:
        raise UsageError(f"the zone plot reads a .csv or .parquet --zone-stats table, not {path}")


def read_stats(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a zone-stats table; numbers as floats, empty cells (no pixel) as NaN."""
    check_stats_table(path)
    try:
        if Path(path).suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            rows: list[dict[str, Any]] = pq.read_table(path).to_pylist()
        else:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read zone statistics {path}: {exc}") from exc
    if rows and not {"zone", "group", "count", "p50"} <= set(rows[0]):
        raise UsageError(f"{path} is no histcalc zone-stats table with p50 (columns zone, group, count, p50)")
    return rows


def medians(rows: Sequence[dict[str, Any]], zones: Sequence[str]) -> dict[str, list[tuple[str, float]]]:
    """Per zone of ``zones``: (group, p50) for every named group of the table, in the table's group order."""
    groups = list(dict.fromkeys(str(r["group"]) for r in rows if str(r["group"]) != ALL))
    p50 = {(str(r["zone"]), str(r["group"])): _number(r["p50"]) for r in rows}
    return {z: [(g, p50.get((z, g), math.nan)) for g in sorted(groups)] for z in zones}


def busiest_zones(rows: Sequence[dict[str, Any]], n: int) -> list[str]:
    """The ``n`` zones with the most counted pixels over the whole period (ties by id)."""
    totals = [(-_number(r["count"]), str(r["zone"])) for r in rows if str(r["group"]) == ALL]
    return [zone for minus_count, zone in sorted(totals)[:n] if minus_count < 0]


def figure(series: dict[str, list[tuple[str, float]]], title: str) -> Any:
    """One line per zone: its median per group; x is the date when groups are dates."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for zone, points in series.items():
        xs = [_x(group) for group, _ in points]
        ax.plot(xs, [value for _, value in points], marker="o", markersize=4, linewidth=1.5, label=zone)
    ax.set_ylabel("median (p50)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(title="zone", fontsize=8, loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def plot_zone_medians(
    stats_path: str | Path,
    out_path: str | Path,
    zones: Sequence[str] | None = None,
    n: int = 6,
    title: str | None = None,
) -> dict[str, list[tuple[str, float]]]:
    """Draw the median per group of ``zones`` (default: the ``n`` busiest) to ``out_path``; returns what was drawn."""
    rows = read_stats(stats_path)
    chosen = list(zones) if zones else busiest_zones(rows, n)
    if not chosen:
        raise UsageError(f"{stats_path}: no zone counted a pixel, nothing to plot")
    series = medians(rows, chosen)
    plt = pyplot()
    fig = figure(series, title or f"median per group of {len(chosen)} zones ({Path(stats_path).name})")
    try:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out_path, dpi=90)
    except OSError as exc:
        raise OutputError(f"cannot write {out_path}: {exc.strerror or exc}") from exc
    finally:
        plt.close(fig)
    return series


def _number(cell: Any) -> float:
    return math.nan if cell is None or cell == "" else float(cell)


def _x(group: str) -> Any:
    try:
        return date.fromisoformat(group)
    except ValueError:
        return group
