"""Tables written a piece at a time (a group's rows, say), so that no whole table is ever held: CSV rows and
Parquet row groups, into a temporary file renamed into place at the end (never a half-written result)."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from histcalc.report import atomic_target, require_pyarrow


def write_csv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    with atomic_target(path) as tmp, open(tmp, "w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(header)
        out.writerows(rows)


def write_parquet(path: str | Path, pieces: Iterable[dict[str, Any]], metadata: dict[bytes, bytes]) -> None:
    """Each piece (columns by name, the same names and types in each) as one row group."""
    _pa, pq = require_pyarrow()
    with atomic_target(path) as tmp:
        writer = None
        try:
            for columns in pieces:
                table = arrow_table(columns, None if writer is None else writer.schema)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema.with_metadata(metadata))
                writer.write_table(table)
            if writer is None:
                raise ValueError(f"{path}: a table needs at least one piece")
        finally:
            if writer is not None:
                writer.close()


def arrow_table(columns: dict[str, Any], schema: Any = None) -> Any:
    """An Arrow table of numpy columns; object columns hold text (typed as strings even when empty)."""
    pa, _pq = require_pyarrow()
    data = {
        name: pa.array(v, type=pa.string()) if isinstance(v, np.ndarray) and v.dtype == object else v
        for name, v in columns.items()
    }
    return pa.table(data) if schema is None else pa.table(data, schema=schema)
