"""Zonal outputs: one row per (zone, group) of statistics, the tidy per-zone histogram table, a summary.

Every input zone appears in the statistics of the whole period (group ``all``), with zeros when it
counted no pixel; a named group (a date, a month...) lists the zones that had pixels in it. Tables
are built column-wise from the sparse per-zone tables (no dense zones x bins array), and written as
CSV (``\\n`` line endings), Parquet (with the query as file metadata), or GeoPackage / GeoJSON /
GeoParquet with the zones' geometries so that the result opens in QGIS.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc import zone_sum
from histcalc.errors import OutputError, UsageError
from histcalc.result import JobResult
from histcalc.zonal import ZoneTable, with_zones
from histcalc.zonal_stats import tidy_columns, zone_stats

ALL = "all"
STATS_SUFFIXES = (".csv", ".parquet", ".gpkg", ".geojson", ".json")
TIDY_COLUMNS = ("zone", "group", "bin_low", "bin_high", "count")


def check_zone_stats_path(path: str) -> None:
    """Refuse an unknown table format before any pixel is read."""
    if Path(path).suffix.lower() not in STATS_SUFFIXES:
        raise UsageError(
            f"--zone-stats {path}: use a .csv, .parquet, .gpkg or .geojson file, or DIR/ for a Parquet dataset"
        )


def grouped_tables(result: JobResult) -> Iterator[tuple[str, ZoneTable]]:
    """(group, table) for each named group, then the whole period as group ``all``: one group unpacked at a time."""
    for group in result.zone_tables:
        if group:
            yield group, result.zone_tables[group]
    yield ALL, whole_table(result)


def whole_table(result: JobResult) -> ZoneTable:
    """The zones' table over the whole period."""
    if len(result.zone_tables) > 1:
        return zone_sum.total(result.zone_tables.values())
    return next(iter(result.zone_tables.values()), ZoneTable.empty())


def stats_columns(result: JobResult, percentiles: Sequence[float]) -> dict[str, list[Any] | npt.NDArray[Any]]:
    """Columns zone, group, pixels, count, below, above, nodata, masked, valid_fraction, mean, std, min, max, pN."""
    bins = result.histogram.bins
    ids = np.asarray(result.zone_ids, dtype=object)
    parts: list[dict[str, Any]] = []
    for group, table in grouped_tables(result):
        if group == ALL:
            table = with_zones(table, np.arange(len(ids), dtype=np.int64))
        columns = zone_stats(table, bins, percentiles)
        parts.append({"zone": ids[table.zone], "group": np.full(len(table.zone), group, dtype=object), **columns})
    names = list(parts[-1])
    return {name: np.concatenate([p[name] for p in parts]) for name in names}


def tidy_rows(result: JobResult) -> Iterator[tuple[str, str, float, float, int]]:
    """(zone, group, bin_low, bin_high, count) for every non-zero bin of every zone and group."""
    ids = np.asarray(result.zone_ids, dtype=object)
    for group, table in grouped_tables(result):
        c = tidy_columns(table, ids, result.histogram.bins)
        columns = (c["zone"].tolist(), c["bin_low"].tolist(), c["bin_high"].tolist(), c["count"].tolist())
        for zone, low, high, count in zip(*columns, strict=True):
            yield zone, group, low, high, count


def write_zone_tidy(result: JobResult, path: str | Path) -> None:
    """The per-zone histograms as a tidy table (zero-count bins omitted): CSV, or Parquet by suffix."""
    rows = tidy_rows(result)
    if Path(path).suffix.lower() == ".parquet":
        columns: list[Any] = list(zip(*rows, strict=True)) or [() for _ in TIDY_COLUMNS]
        _write_parquet(dict(zip(TIDY_COLUMNS, columns, strict=True)), path, {})
        return
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(TIDY_COLUMNS)
    out.writerows((z, g, _num(lo), _num(hi), n) for z, g, lo, hi, n in rows)
    _write_text(path, buf.getvalue())


def write_zone_stats(
    result: JobResult, path: str | Path, percentiles: Sequence[float], query: dict[str, Any], zones: Any = None
) -> None:
    """One row per (zone, group) of statistics, as CSV, Parquet, or a vector file with the zones' shapes."""
    columns = stats_columns(result, percentiles)
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        buf = io.StringIO()
        out = csv.writer(buf, lineterminator="\n")
        out.writerow(list(columns))
        out.writerows(zip(*(_cells(v) for v in columns.values()), strict=True))
        _write_text(path, buf.getvalue())
    elif suffix == ".parquet":
        _write_parquet(columns, path, query)
    else:
        _write_vector(columns, path, zones, result.zone_ids)


def summary_lines(result: JobResult, where: str | None) -> list[str]:
    """How many zones had pixels, how many none, and where the tables went."""
    if not result.zone_ids:
        return []
    had = zones_with_pixels(result)
    total = len(result.zone_ids)
    line = f"zones: {total:,}: {had:,} with counted pixels, {total - had:,} without"
    return [line + (f"; per-zone statistics in {where}" if where else "")]


def zones_with_pixels(result: JobResult) -> int:
    """Zones that counted a pixel over the whole period."""
    if result.zones_with_pixels is not None:  # the tables went to datasets
        return result.zones_with_pixels
    whole = whole_table(result)
    return int(np.count_nonzero(zone_stats(whole, result.histogram.bins, ())["count"]))


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


def _write_text(path: str | Path, text: str) -> None:
    from histcalc.report import write_atomic

    write_atomic(path, text)


def _write_parquet(columns: dict[str, Any], path: str | Path, query: dict[str, Any]) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise UsageError("Parquet output needs pyarrow: pip install 'histcalc[parquet]'") from exc
    table = pa.table({k: list(v) if isinstance(v, np.ndarray) and v.dtype == object else v for k, v in columns.items()})
    table = table.replace_schema_metadata({b"histcalc": json.dumps(query).encode()})
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, tmp)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


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
