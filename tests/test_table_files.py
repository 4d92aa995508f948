"""Tables written a piece at a time read back as the whole table, and a failed write leaves nothing behind."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from histcalc.errors import OutputError
from histcalc.table_files import write_csv, write_parquet


def _pieces() -> list[dict[str, Any]]:
    return [
        {
            "zone": np.array(["a", "b,1", 'q"uote'], dtype=object),
            "count": np.array([1, 2, 3]),
            "x": np.array([0.5, np.nan, 2.0]),
        },
        {"zone": np.array([], dtype=object), "count": np.array([], dtype=np.int64), "x": np.array([])},
        {"zone": np.array(["Ærø"], dtype=object), "count": np.array([2**40]), "x": np.array([-1.25])},
    ]


def test_parquet_pieces_read_back_as_one_table_with_its_metadata(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "out" / "t.parquet"
    write_parquet(path, iter(_pieces()), {b"histcalc": b'{"k": 1}'})
    table = pq.read_table(path)
    assert table.column("zone").to_pylist() == ["a", "b,1", 'q"uote', "Ærø"]
    assert table.column("count").to_pylist() == [1, 2, 3, 2**40]
    np.testing.assert_array_equal(np.asarray(table.column("x").to_pylist(), dtype=float), [0.5, np.nan, 2.0, -1.25])
    assert str(table.schema.field("zone").type) == "string"
    assert pq.read_metadata(path).metadata[b"histcalc"] == b'{"k": 1}'
    assert pq.ParquetFile(path).num_row_groups == 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["t.parquet"]


def test_csv_rows_are_written_as_they_come(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    rows = (row for p in _pieces() for row in zip(*(p[k].tolist() for k in p), strict=True))
    write_csv(path, ["zone", "count", "x"], rows)
    with open(path, newline="") as f:
        got = list(csv.reader(f))
    assert got[0] == ["zone", "count", "x"] and [r[0] for r in got[1:]] == ["a", "b,1", 'q"uote', "Ærø"]
    assert got[-1] == ["Ærø", str(2**40), "-1.25"]


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_a_write_that_fails_half_way_leaves_neither_the_file_nor_its_temporary(tmp_path: Path, kind: str) -> None:
    pytest.importorskip("pyarrow")
    (tmp_path / "t.parquet").write_bytes(b"the old one")

    def failing() -> Iterator[dict[str, Any]]:
        yield _pieces()[0]
        raise RuntimeError("the second group could not be made")

    with pytest.raises(RuntimeError):
        if kind == "csv":
            write_csv(tmp_path / "t.csv", ["zone"], ((z,) for p in failing() for z in p["zone"]))
        else:
            write_parquet(tmp_path / "t.parquet", failing(), {})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet"]
    assert (tmp_path / "t.parquet").read_bytes() == b"the old one"


def test_an_unwritable_place_is_a_one_line_output_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot write") as err:
        write_csv(tmp_path / "file" / "t.csv", ["a"], [])
    assert "\n" not in str(err.value)


def test_writing_a_table_does_not_import_pandas(tmp_path: Path) -> None:
    """pyarrow.array imports pandas on its first call (0.3 s, ~60 MB in every writing process)."""
    import subprocess
    import sys

    pytest.importorskip("pandas")
    script = f"""
import sys
import numpy as np
from histcalc.table_files import write_parquet
piece = {{"zone": np.array(["a", "b"], dtype=object), "n": np.array([1, 2]), "x": np.array([0.5, 1.5]),
         "edge": np.array([0.25, None], dtype=object)}}  # the plain tidy table's tally rows have no edges
write_parquet({str(tmp_path / "t.parquet")!r}, [piece, piece], {{}})
assert "pandas" not in sys.modules, "pandas imported"
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize(
    "values",
    [
        np.array([True, False, True] * 5),
        np.array([0, 65535, 7], dtype=np.uint16),
        np.array([1.5, -2.0, np.nan], dtype=">f8"),  # big-endian
        np.array([3, -4], dtype=">i4"),
        np.array([], dtype=object),
        np.array(["", "é", "a,b"], dtype=object),
        np.array([1, None, "x"], dtype=object),  # neither text nor numbers: pyarrow's own conversion says what it says
        np.array([0.5, None, 2.0], dtype=object),  # a tally row's missing bin edge
        np.array([1, None, 2**40], dtype=object),
        np.array([None, None], dtype=object),
    ],
)
def test_arrow_arrays_from_buffers_hold_the_values(values: np.ndarray) -> None:
    pa = pytest.importorskip("pyarrow")
    from histcalc.table_files import arrow_array

    kinds = {type(v) for v in values.tolist()} - {type(None)}
    if len(kinds) > 1:
        with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
            arrow_array(values)
        return
    got = arrow_array(values)
    if values.dtype == object:  # as pyarrow.array infers them, but an object column without values is text
        assert got.type == {frozenset({str}): pa.string(), frozenset({float}): pa.float64(),
                            frozenset({int}): pa.int64(), frozenset(): pa.string()}[frozenset(kinds)]  # fmt: skip
        assert got.null_count == sum(v is None for v in values.tolist())
    assert len(got) == len(values)
    want = values.astype(values.dtype.newbyteorder("=")) if values.dtype.kind != "O" else values
    for a, b in zip(got.to_pylist(), want.tolist(), strict=True):
        assert a == b or (a != a and b != b)


def test_texts_taken_and_repeated_as_arrow_arrays() -> None:
    pa = pytest.importorskip("pyarrow")
    from histcalc.table_files import repeated_text, text_take

    ids = ("a", "b,1", "Ærø")
    assert text_take(ids, np.array([2, 0, 2, 1])).to_pylist() == ["Ærø", "a", "Ærø", "b,1"]
    assert text_take(ids, np.zeros(0, np.int64)).type == pa.string()
    assert repeated_text("2024-05-01", 3).to_pylist() == ["2024-05-01"] * 3
    assert repeated_text("é", 0).to_pylist() == [] and repeated_text("é", 2).to_pylist() == ["é", "é"]
