"""Zonal outputs: one row per (zone, group) of statistics, the tidy per-zone histogram table, a summary.

Every input zone appears in the statistics of the whole period (group ``all``), with zeros when it
counted no pixel; a named group (a date, a month...) lists the zones that had pixels in it. Tables
are built column-wise from the sparse per-zone tables (no dense zones x bins array), and written as
CSV (``\\n`` line endings), Parquet (with the query as file metadata), or GeoPackage / GeoJSON /
GeoParquet with the zones' geometries so that the result opens in QGIS.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc import table_files, zone_sum
from histcalc.errors import OutputError, UsageError
from histcalc.result import JobResult
from histcalc.zonal import ZoneTable, zone_blocks
from histcalc.zonal_stats import tidy_columns, zone_stats

ALL = "all"
_BLOCK = 32_768  # zones whose statistics or rows are computed (and written) together
STATS_SUFFIXES = (".csv", ".parquet", ".gpkg", ".geojson", ".json")
TIDY_COLUMNS = ("zone", "group", "bin_low", "bin_high", "count")


def check_zone_stats_path(path: str) -> None:
    """Refuse an unknown table format before any pixel is read."""
    if Path(path).suffix.lower() not in STATS_SUFFIXES:
        raise UsageError(
            f"--zone-stats {path}: use a .csv, .parquet, .gpkg or .geojson file, or DIR/ for a Parquet dataset"
        )


def grouped_blocks(result: JobResult, every_zone: bool) -> Iterator[tuple[str, ZoneTable]]:
    """(group, table) for blocks of zones of each named group, then of the whole period as group ``all``
    (with a row for every zone when ``every_zone``): one block of one group unpacked or summed at a time."""
    for group in result.zone_tables:
        if group:
            for _block, table in zone_blocks(result.zone_tables[group], _BLOCK):
                yield group, table
    yield from (
        (ALL, t)
        for t in zone_sum.whole_blocks(result.zone_tables, len(result.zone_ids) if every_zone else None, _BLOCK)
    )


def stats_pieces(
    result: JobResult, percentiles: Sequence[float], arrow: bool = False
) -> Iterator[dict[str, npt.NDArray[Any]]]:
    """The columns of :func:`stats_columns`, a block of zones of one group at a time (the whole period last);
    at least one piece, empty when there are no zones. ``arrow``: zone and group as Arrow string arrays."""
    bins = result.histogram.bins
    names = _Names(result.zone_ids, arrow)
    pieces = 0
    for group, table in grouped_blocks(result, every_zone=True):
        pieces += 1
        yield {**names.of(table.zone, group), **zone_stats(table, bins, percentiles)}
    if not pieces:
        yield {**names.of(np.zeros(0, np.int64), ALL), **zone_stats(ZoneTable.empty(), bins, percentiles)}


def stats_columns(result: JobResult, percentiles: Sequence[float]) -> dict[str, list[Any] | npt.NDArray[Any]]:
    """Columns zone, group, pixels, count, below, above, nodata, masked, valid_fraction, mean, std, min, max, pN."""
    parts = list(stats_pieces(result, percentiles))
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[-1]}


def tidy_pieces(result: JobResult, arrow: bool = False) -> Iterator[dict[str, npt.NDArray[Any]]]:
    """zone, group, bin_low, bin_high, count of every non-zero bin, a block of zones of one group at a time (the
    whole period last); at least one piece. ``arrow``: zone and group as Arrow string arrays."""
    names = _Names(result.zone_ids, arrow)
    pieces = 0
    for group, table in grouped_blocks(result, every_zone=False):
        pieces += 1
        c = tidy_columns(table, None, result.histogram.bins)
        yield {**names.of(c.pop("zone"), group), **c}
    if not pieces:  # no zone had a pixel
        c = tidy_columns(ZoneTable.empty(), None, result.histogram.bins)
        yield {**names.of(c.pop("zone"), ALL), **c}


class _Names:
    """The zone and group columns of a piece: Python strings (CSV, the API), or Arrow arrays (Parquet)."""

    def __init__(self, ids: list[str], arrow: bool) -> None:
        self.arrow = arrow
        self.texts = tuple(ids)
        self.objects = np.asarray(ids, dtype=object)

    def of(self, zones: npt.NDArray[np.int64], group: str) -> dict[str, Any]:
        if self.arrow:
            zone = table_files.text_take(self.texts, zones)
            return {"zone": zone, "group": table_files.repeated_text(group, len(zones))}
        return {"zone": self.objects[zones], "group": np.full(len(zones), group, dtype=object)}


def tidy_rows(result: JobResult) -> Iterator[tuple[str, str, float, float, int]]:
    """(zone, group, bin_low, bin_high, count) for every non-zero bin of every zone and group."""
    for piece in tidy_pieces(result):
        yield from zip(*(piece[name].tolist() for name in TIDY_COLUMNS), strict=True)


def write_zone_tidy(result: JobResult, path: str | Path) -> None:
    """The per-zone histograms as a tidy table (zero-count bins omitted): CSV, or Parquet by suffix. Written a
    block of zones at a time: a season of 100,000 parcels has tens of millions of rows."""
    if Path(path).suffix.lower() == ".parquet":
        table_files.write_parquet(path, tidy_pieces(result, arrow=True), {b"histcalc": b"{}"})
        return
    rows = (row for piece in tidy_pieces(result) for row in _tidy_csv_rows(piece))
    table_files.write_csv(path, TIDY_COLUMNS, rows)


def _tidy_csv_rows(piece: dict[str, npt.NDArray[Any]]) -> Iterator[tuple[Any, ...]]:
    """A tidy piece's CSV rows; each bin edge is formatted once (a piece holds a few hundred edges)."""
    values = np.concatenate([piece["bin_low"], piece["bin_high"]]).astype(np.float64)
    bits, where = np.unique(values.view(np.int64), return_inverse=True)  # by bits: -0.0 stays apart from 0.0
    text = np.array([_num(e) for e in bits.view(np.float64).tolist()], dtype=object)[where]
    n = len(piece["bin_low"])
    columns = (piece["zone"].tolist(), piece["group"].tolist(), text[:n].tolist(), text[n:].tolist())
    return zip(*columns, piece["count"].tolist(), strict=True)


def write_zone_stats(
    result: JobResult, path: str | Path, percentiles: Sequence[float], query: dict[str, Any], zones: Any = None
) -> None:
    """One row per (zone, group) of statistics, as CSV, Parquet, or a vector file with the zones' shapes.
    CSV and Parquet are written a group at a time."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        pieces = stats_pieces(result, percentiles)
        first = next(pieces)
        rows = (row for piece in (first, *pieces) for row in zip(*(_cells(v) for v in piece.values()), strict=True))
        table_files.write_csv(path, list(first), rows)
    elif suffix == ".parquet":
        metadata = {b"histcalc": json.dumps(query).encode()}
        table_files.write_parquet(path, stats_pieces(result, percentiles, arrow=True), metadata)
    else:
        _write_vector(stats_columns(result, percentiles), path, zones, result.zone_ids)


def summary_lines(result: JobResult, where: str | None, with_pixels: int | None = None) -> list[str]:
    """How many zones had pixels (``with_pixels`` if known), how many none, and where the tables went."""
    if not result.zone_ids:
        return []
    had = zones_with_pixels(result) if with_pixels is None else with_pixels
    total = len(result.zone_ids)
    line = f"zones: {total:,}: {had:,} with counted pixels, {total - had:,} without"
    return [line + (f"; per-zone statistics in {where}" if where else "")]


def zones_with_pixels(result: JobResult) -> int:
    """Zones that counted a pixel over the whole period: in some group, a non-zero cell in the bins."""
    if result.zones_with_pixels is not None:  # the tables went to datasets
        return result.zones_with_pixels
    nbins = result.histogram.bins.count
    counted = np.zeros(len(result.zone_ids), np.bool_)
    for table in result.zone_tables.values():
        inside = (table.cell_slot >= 1) & (table.cell_slot <= nbins) & (table.cell_count > 0)
        counted[table.cell_zone[inside]] = True
    return int(np.count_nonzero(counted))


def summary_dict(result: JobResult, stats_path: str | None) -> dict[str, Any]:
    had = zones_with_pixels(result)
    return {"total": len(result.zone_ids), "with_pixels": had, "without_pixels": len(result.zone_ids) - had,
            "stats_file": stats_path}  # fmt: skip


def _cells(values: Any) -> list[Any]:
    return [_num(v) if isinstance(v, float) else v for v in np.asarray(values).tolist()]


def _num(value: float) -> str | float:
    """Floats as short text (12 significant digits: no 0.020000000000000004); NaN as an empty cell."""
    if value != value:  # NaN
        return ""
    return float(f"{value:.12g}")


def _write_vector(columns: dict[str, Any], path: str | Path, zones: Any, ids: list[str]) -> None:
    from histcalc import ogr

    if zones is None:
        raise UsageError(f"{path}: a vector file of zone statistics needs the zones' geometries")
    position = {zone_id: i for i, zone_id in enumerate(ids)}
    rows = np.asarray([position[z] for z in columns["zone"]], dtype=np.int64)
    data = {k: (np.asarray(v, dtype=object) if k in ("zone", "group") else np.asarray(v)) for k, v in columns.items()}
    target = Path(path)
    tmp = target.with_name(f".tmp.{target.name}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        import shapely

        ogr.pyogrio().raw.write(
            str(tmp), shapely.to_wkb(zones.geometries[rows]), list(data.values()), list(data),
            layer="zone_stats", crs=zones.crs, geometry_type="MultiPolygon", promote_to_multi=True,
        )  # fmt: skip
        tmp.replace(target)
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc}") from exc
