"""Reporting: the human summary, and the JSON / CSV result files (written atomically)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from histcalc import __version__
from histcalc.errors import MissingDependency, OutputError
from histcalc.histogram import DEFAULT_PERCENTILES, Histogram, clean_numbers
from histcalc.redact import redact_data
from histcalc.result import JobResult

TIDY_COLUMNS = ("group", "kind", "bin_low", "bin_high", "bin_centre", "count")
TALLIES = ("below", "above", "nodata", "masked", "duplicate")
PARQUET_METADATA_KEY = b"histcalc"
TidyRow = tuple[str, str, float | None, float | None, float | None, int]
_CHART_ROWS = 16
_CHART_WIDTH = 40


def result_document(
    result: JobResult, query: dict[str, Any], percentiles: Sequence[float] = DEFAULT_PERCENTILES
) -> dict[str, Any]:
    """The JSON result: histogram, tallies, statistics, file account and the query (see the README)."""
    h = result.histogram
    doc = {
        "histcalc_version": __version__,
        "variable": query.get("asset"),
        **h.to_dict(percentiles),
        "files": _files_entry(result),
        "groups": [_group_entry(key, g, percentiles) for key, g in result.groups.items() if key],
        "engine": result.engine,
        "elapsed_s": round(result.elapsed_s, 3),
        "startup_s": round(result.startup_s, 3),
        "query": query,
    }
    finite: dict[str, Any] = _finite(doc)
    return finite


def _files_entry(result: JobResult) -> dict[str, Any]:
    """The file account with ``used`` (every file counted); local paths absolute, to reproduce the run."""
    files = result.files_dict()
    files["failed"] = [{**f, "href": _absolute(f["href"])} for f in files["failed"]]
    return {**files, "used": [_absolute(h) for h in result.files_ok]}


def _absolute(href: str) -> str:
    if not href or "://" in href or href.startswith("/vsi"):
        return href
    return str(Path(href).absolute())


def query_record(query: dict[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The ``query`` block: every option, then the resolved selection (local paths made absolute).

    ``options`` are the command's flags by name; whatever they hold is recorded, so a new flag is
    recorded without a change here. The resolved ``query`` (dates, bbox) wins over the raw text.
    """
    record = {**{k: _jsonable(v) for k, v in options.items()}, **query}
    for key in ("catalog", "aoi"):
        value = record.get(key)
        if isinstance(value, str):
            record[key] = _absolute(value)
    redacted: dict[str, Any] = redact_data(record)  # e.g. a --catalog URL with user:password@ or ?token=
    return redacted


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # --nodata nan: JSON has no NaN, and null would read as "not given"
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def _group_entry(key: str, h: Histogram, percentiles: Sequence[float]) -> dict[str, Any]:
    entry = {k: v for k, v in h.to_dict(percentiles).items() if k not in ("edges", "bins_kind")}
    return {"group": key, **entry}


def _cache_note(result: JobResult) -> str:
    if result.files_cached is None:
        return ""
    return f"; {result.files_cached} from cache, {result.files_total - result.files_cached} read"


def summary(result: JobResult, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> str:
    """A few lines a person reads: files, pixel account, statistics and a coarse chart."""
    h = result.histogram
    st = h.stats(percentiles)
    lines = [
        f"histcalc: histogram of {result.files_total} file(s): {len(result.files_ok)} ok, "
        f"{len(result.files_failed)} failed ({result.engine} engine, {result.elapsed_s:.1f} s"
        + (f" + {result.startup_s:.1f} s session start)" if result.startup_s else ")")
        + _cache_note(result),
        f"pixels: {h.count:,} counted, {h.below:,} below and {h.above:,} above the range, "
        f"{h.nodata:,} nodata, {h.masked:,} masked, {h.duplicate:,} duplicate (counted by another file)",
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
    """The result as JSON; every string redacted (hrefs and errors of failed files, the query)."""
    write_atomic(path, json.dumps(redact_data(doc), indent=1) + "\n")


def tidy_rows(result: JobResult) -> Iterator[TidyRow]:
    """One row per group and bin, then the group's tallies; the total comes last as group "all".

    Tally rows (kind below, above, nodata, masked, duplicate) have no edges: the bin rows are
    ``kind == "bin"``, and a group's rows add up to its ``pixels``.
    """
    edges = clean_numbers(result.histogram.bins.array).tolist()
    centres = result.histogram.bin_centres.tolist()
    named = [(k, g) for k, g in result.groups.items() if k]
    for key, h in [*named, ("all", result.histogram)]:
        for i, n in enumerate(h.counts.tolist()):
            yield key, "bin", edges[i], edges[i + 1], centres[i], n
        for tally in TALLIES:
            yield key, tally, None, None, None, int(getattr(h, tally))


def write_csv(result: JobResult, path: str | Path) -> None:
    """Tidy CSV (see :func:`tidy_rows`), ``\\n`` line ends; numbers in their shortest exact form."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(TIDY_COLUMNS)
    out.writerows(tidy_rows(result))  # csv writes a float by repr (shortest round trip), None as empty
    write_atomic(path, buf.getvalue())


def write_parquet(result: JobResult, path: str | Path, doc: dict[str, Any] | None = None) -> None:
    """The tidy table as Parquet; the query and file account ride along as metadata key ``b"histcalc"``."""
    from histcalc.table_files import write_parquet as write_pieces

    rows = list(tidy_rows(result))
    by_column = zip(*rows, strict=True)
    columns = {name: np.array(column, dtype=object) for name, column in zip(TIDY_COLUMNS, by_column, strict=True)}
    metadata: dict[bytes, bytes] = {}
    if doc is not None:
        about = {k: doc.get(k) for k in ("histcalc_version", "variable", "query", "files", "engine")}
        metadata[PARQUET_METADATA_KEY] = json.dumps(redact_data(about)).encode()
    write_pieces(path, [columns], metadata)


def require_pyarrow() -> tuple[Any, Any]:
    """pyarrow and pyarrow.parquet, or a one-line error naming the extra to install."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingDependency("Parquet output needs pyarrow: pip install 'histcalc[parquet]'") from exc
    return pa, pq


def write_atomic(path: str | Path, text: str) -> None:
    """Write to a temporary file beside ``path``, then rename: never a half-written result."""
    with atomic_target(path) as tmp, open(tmp, "w", newline="") as f:
        f.write(text)


@contextmanager
def atomic_target(path: str | Path) -> Iterator[str]:
    """A temporary file beside ``path`` to write, renamed to ``path`` when the block ends, removed if it fails;
    an OSError on the way is an :class:`OutputError` naming ``path``."""
    target = Path(path)
    tmp: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a result file is as open() would make it
        os.close(fd)
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    """The process umask (reading it means setting it; set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
