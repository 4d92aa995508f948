"""Reporting: the human summary, and the JSON / CSV result files (written atomically)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from histcalc import __version__
from histcalc.errors import OutputError, UsageError
from histcalc.histogram import DEFAULT_PERCENTILES, Histogram
from histcalc.result import JobResult

TIDY_COLUMNS = ("group", "bin_low", "bin_high", "count")
_CHART_ROWS = 16
_CHART_WIDTH = 40


def result_document(
    result: JobResult, query: dict[str, Any], percentiles: Sequence[float] = DEFAULT_PERCENTILES
) -> dict[str, Any]:
    """The JSON result: histogram, tallies, statistics, file account and the query."""
    h = result.histogram
    doc = {
        "histcalc_version": __version__,
        **h.to_dict(),
        "pixels": h.pixels,
        "files": result.files_dict(),
        "stats": h.stats(percentiles),
        "groups": [_group_entry(key, g, percentiles) for key, g in result.groups.items() if key],
        "engine": result.engine,
        "elapsed_s": round(result.elapsed_s, 3),
        "startup_s": round(result.startup_s, 3),
        "query": query,
    }
    finite: dict[str, Any] = _finite(doc)
    return finite


def _group_entry(key: str, h: Histogram, percentiles: Sequence[float]) -> dict[str, Any]:
    entry = {k: v for k, v in h.to_dict().items() if k not in ("edges", "discrete")}
    return {"group": key, **entry, "pixels": h.pixels, "stats": h.stats(percentiles)}


def summary(result: JobResult, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> str:
    """A few lines a person reads: files, pixel account, statistics and a coarse chart."""
    h = result.histogram
    st = h.stats(percentiles)
    lines = [
        f"histcalc: histogram of {result.files_total} file(s): {len(result.files_ok)} ok, "
        f"{len(result.files_failed)} failed ({result.engine} engine, {result.elapsed_s:.1f} s"
        + (f" + {result.startup_s:.1f} s session start)" if result.startup_s else ")"),
        f"pixels: {h.count:,} counted, {h.below:,} below and {h.above:,} above the range, "
        f"{h.nodata:,} nodata, {h.masked:,} masked",
    ]
    if h.count:
        pct = "  ".join(f"{k} {v:.4g}" for k, v in st["percentiles"].items())
        lines.append(
            f"stats: mean {st['mean']:.4g}  std {st['std']:.4g}  min {st['min']:.4g}  max {st['max']:.4g}  {pct}"
        )
    edges = h.bins.array
    lines.append(f"bins: {h.bins.count} from {edges[0]:.6g} to {edges[-1]:.6g}")
    lines.extend(_chart(h))
    lines.extend(_group_line(key, g, percentiles) for key, g in result.groups.items() if key)
    lines.extend(f"failed: {href}: {err}" for href, err in result.files_failed.items())
    return "\n".join(lines)


def _group_line(key: str, h: Histogram, percentiles: Sequence[float]) -> str:
    st = h.stats(percentiles)
    if not h.count:
        return f"group {key}: no pixels counted ({h.nodata:,} nodata, {h.masked:,} masked)"
    pct = "  ".join(f"{k} {v:.4g}" for k, v in st["percentiles"].items())
    return f"group {key}: {h.count:,} counted, mean {st['mean']:.4g}  {pct}"


def _chart(h: Histogram) -> list[str]:
    """The histogram regrouped into at most 16 rows of bars, skipping empty rows at both ends."""
    if h.count == 0:
        return ["(no pixels counted)"]
    nz = np.flatnonzero(h.counts)
    first, last = int(nz[0]), int(nz[-1]) + 1
    groups = np.array_split(np.arange(first, last), min(_CHART_ROWS, last - first))
    sums = [int(h.counts[g].sum()) for g in groups]
    peak = max(sums)
    edges = h.bins.array
    rows = []
    for g, n in zip(groups, sums, strict=True):
        bar = "#" * round(_CHART_WIDTH * n / peak)
        rows.append(f"  [{edges[g[0]]:>9.4g}, {edges[g[-1] + 1]:>9.4g})  {n:>14,}  {bar}")
    return rows


def write_json(doc: dict[str, Any], path: str | Path) -> None:
    write_atomic(path, json.dumps(doc, indent=1) + "\n")


def tidy_rows(result: JobResult) -> Iterator[tuple[str, float, float, int]]:
    """(group, bin_low, bin_high, count) for each named group, then the total as group "all"."""
    edges = result.histogram.bins.edges
    named = [(k, g) for k, g in result.groups.items() if k]
    for key, h in [*named, ("all", result.histogram)]:
        for i, n in enumerate(h.counts.tolist()):
            yield key, edges[i], edges[i + 1], n


def write_csv(result: JobResult, path: str | Path) -> None:
    """Tidy CSV: one row per group and bin (group, bin_low, bin_high, count); the total is group "all"."""
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(TIDY_COLUMNS)
    out.writerows((key, repr(lo), repr(hi), n) for key, lo, hi, n in tidy_rows(result))
    write_atomic(path, buf.getvalue())


def write_parquet(result: JobResult, path: str | Path) -> None:
    """The tidy table as Parquet, for groupings too large for CSV (needs pyarrow)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise UsageError("Parquet output needs pyarrow: pip install 'histcalc[parquet]'") from exc
    columns = list(zip(*tidy_rows(result), strict=True))
    table = pa.table(dict(zip(TIDY_COLUMNS, columns, strict=True)))
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_atomic(path: str | Path, text: str) -> None:
    """Write to a temporary file beside ``path``, then rename: never a half-written result."""
    target = Path(path)
    tmp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
