"""Tables written a piece at a time (a group's rows, say), so that no whole table is ever held: CSV rows and
Parquet row groups, into a temporary file renamed into place at the end (never a half-written result)."""

from __future__ import annotations

import contextlib
import csv
import functools
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
    """Each piece (columns by name, the same names and types in each) as one row group; at least one piece."""
    with atomic_target(path) as tmp:
        if not write_row_groups(tmp, pieces, metadata):
            raise ValueError(f"{path}: a table needs at least one piece")


def write_row_groups(path: str | Path, pieces: Iterable[dict[str, Any]], metadata: dict[bytes, bytes]) -> int:
    """Each piece as one row group of the Parquet file ``path`` (written in place; none without pieces), in the
    first piece's types; returns the number of pieces."""
    _pa, pq = require_pyarrow()
    writer = None
    written = 0
    try:
        for columns in pieces:
            table = arrow_table(columns, None if writer is None else writer.schema)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema.with_metadata(metadata))
            writer.write_table(table)
            written += 1
    except BaseException:
        if writer is not None:
            with contextlib.suppress(Exception):  # the first error is the one to report
                writer.close()
        raise
    if writer is not None:
        writer.close()
    return written


def arrow_table(columns: dict[str, Any], schema: Any = None) -> Any:
    """An Arrow table of numpy columns (object columns hold text), in ``schema``'s types when given."""
    pa, _pq = require_pyarrow()
    table = pa.Table.from_arrays([arrow_array(v) for v in columns.values()], names=list(columns))
    return table if schema is None or table.schema.equals(schema) else table.cast(schema)


def arrow_array(values: Any) -> Any:
    """A numpy column as an Arrow array, built from its buffers: numbers without a copy, text (an object
    column of str) as UTF-8 with offsets, typed string even when empty.

    ``pyarrow.array`` imports pandas, when installed, on its first call (its pandas shim: 0.3 s and ~60 MB, in
    every process that writes a table); building from buffers does not.
    """
    pa, _pq = require_pyarrow()
    if isinstance(values, pa.Array):
        return values
    array = np.asarray(values)
    if array.dtype.kind in "iuf":
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))  # Arrow is little-endian
        return pa.Array.from_buffers(pa.from_numpy_dtype(data.dtype), len(data), [None, pa.py_buffer(data)])
    if array.dtype.kind == "b":
        bits = np.packbits(array, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(array), [None, pa.py_buffer(bits)])
    items = array.tolist()
    kinds = {type(v) for v in items} - {type(None)}
    if array.dtype == object and kinds <= {str} and None not in items:
        encoded = [v.encode("utf-8") for v in items]
        offsets = np.zeros(len(encoded) + 1, np.int64)
        np.cumsum([len(e) for e in encoded], out=offsets[1:])
        if offsets[-1] < 2**31:
            buffers = [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(encoded))]
            return pa.Array.from_buffers(pa.string(), len(encoded), buffers)
    if array.dtype == object and kinds in ({float}, {int}):  # numbers, None where there is none
        with contextlib.suppress(OverflowError):  # an int beyond int64: pyarrow's way
            kind = np.float64 if kinds == {float} else np.int64
            data = np.array([0 if v is None else v for v in items], dtype=kind)
            valid = np.array([v is not None for v in items], dtype=np.bool_)
            validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
            return pa.Array.from_buffers(pa.from_numpy_dtype(data.dtype), len(data), [validity, pa.py_buffer(data)])
    return pa.array(items, type=pa.string() if kinds <= {str} else None)  # anything else: pyarrow's way


def text_take(texts: tuple[str, ...], positions: Any) -> Any:
    """``texts[positions]`` as an Arrow string array, taken in C++ (no Python string per row)."""
    return _text_array(texts).take(arrow_array(np.asarray(positions, dtype=np.int64)))


@functools.lru_cache(maxsize=2)
def _text_array(texts: tuple[str, ...]) -> Any:
    return arrow_array(np.array(texts, dtype=object))


def repeated_text(value: str, n: int) -> Any:
    """``value`` ``n`` times as an Arrow string array (a group name on each row of a piece)."""
    pa, _pq = require_pyarrow()
    encoded = value.encode("utf-8")
    if len(encoded) * n >= 2**31:
        return text_take((value,), np.zeros(n, np.int64))
    offsets = np.arange(n + 1, dtype=np.int32) * np.int32(len(encoded))
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(encoded * n)])
