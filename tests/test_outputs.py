"""Result files as a user meets them: permissions, options checked first, JSON, CSV, Parquet, pipes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from histcalc.cli import main
from histcalc.demo import generate
from histcalc.histogram import Histogram
from tests.conftest import brute_force, uint8_bins, write_raster

SEED_BBOX = "4.91,51.16,5.24,51.27"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("demo"), size=96)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """Two hand-countable 4x4 uint8 files (scale 0.004, offset -0.08, nodata 255) in a folder."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    a = np.array([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [255, 255, 250, 250]], dtype=np.uint8)
    write_raster(folder / "a_20240501.tif", a, nodata=255, scale=0.004, offset=-0.08, block=None)
    write_raster(folder / "b_20240502.tif", a[::-1].copy(), nodata=255, scale=0.004, offset=-0.08, block=None)
    return folder


@pytest.fixture
def umask() -> Iterator[int]:
    old = os.umask(0o027)
    try:
        yield 0o027
    finally:
        os.umask(old)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _job(capsys: pytest.CaptureFixture[str], catalog: Path, out: Path, *extra: str) -> tuple[int, str, str]:
    return _run(
        capsys,
        "--catalog",
        str(catalog),
        "--engine",
        "local",
        "--workers",
        "1",
        "-o",
        str(out / "r.json"),
        "--csv",
        str(out / "r.csv"),
        "--parquet",
        str(out / "r.parquet"),
        "-q",
        *extra,
    )


# 1. permissions


def test_result_files_follow_the_umask(
    tiny: Path, tmp_path: Path, umask: int, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _job(capsys, tiny, tmp_path)
    assert code == 0, err
    for name in ("r.json", "r.csv", "r.parquet"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name  # 0640, as `touch` would make
    assert not list(tmp_path.glob(".r.*")), "no temporary file left behind"


# 2. every output option checked before the job


@pytest.fixture
def unreadable(tmp_path: Path) -> Path:
    """A catalog whose only file is corrupt: if the job ran, it would end in exit 5, not 2."""
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "x_20240501.tif").write_bytes(b"II*\x00 not a tiff")
    return folder


@pytest.mark.parametrize(
    ("module", "flag", "name", "fragment"),
    [
        ("pyarrow", "--parquet", "r.parquet", "Parquet output needs pyarrow"),
        ("matplotlib", "--plot", "r.png", "plots need matplotlib"),
    ],
)
def test_a_missing_library_is_found_before_the_job(
    unreadable: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    module: str,
    flag: str,
    name: str,
    fragment: str,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    code, out, err = _run(capsys, "--catalog", str(unreadable), "--engine", "local", flag, str(tmp_path / name))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("histcalc: error: ") and fragment in err and "pip install 'histcalc[" in err
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--plot", "{d}/p.bmp"], "cannot plot to"),
        (["--plot", "{d}/p"], "the name must end in one of"),
        (["-o", "{d}/same.json", "--csv", "{d}/same.json"], "--output and --csv name the same file"),
        (["--csv", "{d}"], "is a directory"),
        (["--plot", "{d}/bad/x_20240501.tif/p.png"], "is not a directory"),
    ],
)
def test_bad_output_options_are_refused_before_the_job(
    unreadable: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], fragment: str
) -> None:
    argv = [a.format(d=tmp_path) for a in args]
    code, out, err = _run(capsys, "--catalog", str(unreadable), "--engine", "local", *argv)
    assert code == 2 and out == "" and err.count("\n") == 1 and fragment in err, err


def test_plot_subcommand_checks_the_image_type_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "plot", str(tmp_path / "missing.json"), "-o", str(tmp_path / "p.docx"))
    assert code == 2 and "cannot plot to" in err and ".png" in err


# 3. a closed pipe


def _histcalc(*args: str) -> list[str]:
    return [sys.executable, "-m", "histcalc", *args]


def test_a_reader_that_left_gives_a_quiet_exit(tiny: Path) -> None:
    proc = subprocess.Popen(
        _histcalc("--catalog", str(tiny), "--engine", "local", "-q"), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the summary is written: the write meets EPIPE
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and err == ""


def test_head_one_reads_the_first_line_and_nothing_complains(tiny: Path) -> None:
    line = " ".join(_histcalc("--catalog", str(tiny), "--engine", "local", "-q", "--group-by", "item"))
    proc = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {line} | head -1"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode in (0, 141) and proc.stderr == ""
    assert proc.stdout.startswith("histcalc: histogram of 2 file(s): 2 ok") and proc.stdout.count("\n") == 1


# 5. JSON


def test_json_records_the_query_files_and_clean_edges(
    tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tiny.parent)
    code, _, err = _job(capsys, Path("tiny"), tmp_path, "--band", "1", "--all-touched", "--nodata", "255")
    assert code == 0, err
    doc = json.loads((tmp_path / "r.json").read_text())
    q = doc["query"]
    assert q["catalog"] == str(tiny) and Path(q["catalog"]).is_absolute()
    assert (q["band"], q["all_touched"], q["nodata"], q["scale"], q["bins"], q["range"]) == (
        1,
        True,
        255.0,
        None,
        None,
        None,
    )
    assert q["engine"] == "local" and q["asset"] == "NDVI" and "output" not in q and "verbose" not in q
    assert doc["files"]["used"] == sorted(str(p) for p in tiny.glob("*.tif"))
    dns = np.arange(257) - 0.5
    assert doc["edges"] == [float(f"{e:.12g}") for e in dns * 0.004 - 0.08]  # 0.002 - 0.08 -> -0.078, not ...01
    assert doc["edges"][:3] == [-0.082, -0.078, -0.074] and "0000000" not in json.dumps(doc["edges"])
    assert doc["bins_kind"] == "per_digital_number" and doc["stats"]["percentiles_method"] == "inverted_cdf"
    st = doc["stats"]
    on_the_grid = [st["min"], st["max"], *st["percentiles"].values()]
    assert on_the_grid == [float(f"{v:.12g}") for v in on_the_grid] and st["percentiles"]["p50"] == -0.056  # DN 6
    assert "moments" not in doc and "discrete" not in doc and doc["variable"] == "NDVI"
    ref = brute_force(sorted(tiny.glob("*.tif")), uint8_bins().array)
    assert doc["counts"] == ref["counts"].tolist() and doc["nodata"] == 2 * 2 == ref["nodata"]
    assert doc["stats"]["std"] == pytest.approx(ref["values"].std(), rel=1e-12)


def test_json_round_trips_through_from_dict(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _job(capsys, tiny, tmp_path, "--bins", "7", "--range=-0.1,0.1", "--group-by", "date")
    assert code == 0, err
    doc = json.loads((tmp_path / "r.json").read_text())
    ref = brute_force(sorted(tiny.glob("*.tif")), np.linspace(-0.1, 0.1, 8))
    back = Histogram.from_dict(doc)
    np.testing.assert_array_equal(back.counts, ref["counts"])
    assert (back.below, back.above, back.nodata) == (ref["below"], ref["above"], ref["nodata"])
    assert back.moments.mean == pytest.approx(ref["values"].mean(), rel=1e-12)
    assert back.moments.std == pytest.approx(ref["values"].std(), rel=1e-9)
    assert doc["stats"]["percentiles_method"] == "linear_within_bin" and doc["bins_kind"] == "intervals"
    groups = [Histogram.from_dict({**g, "edges": doc["edges"]}) for g in doc["groups"]]
    total = groups[0] + groups[1]  # edges read back from JSON still add up with each other and with the total
    np.testing.assert_array_equal(total.counts, back.counts)
    assert (back + total).count == 2 * back.count


# 6. CSV and Parquet


def test_csv_has_unix_lines_centres_and_labelled_tallies(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _job(
        capsys, demo, tmp_path, "--bbox", SEED_BBOX, "--mask-asset", "SCENECLASSIFICATION", "--group-by", "month"
    )
    assert code == 0, err
    raw = (tmp_path / "r.csv").read_bytes()
    assert b"\r" not in raw and raw.startswith(b"group,kind,bin_low,bin_high,bin_centre,count\n")
    doc = json.loads((tmp_path / "r.json").read_text())
    rows = list(csv.DictReader((tmp_path / "r.csv").open(newline="")))
    for entry in [*doc["groups"], {"group": "all", **doc}]:
        mine = [r for r in rows if r["group"] == entry["group"]]
        bins = [r for r in mine if r["kind"] == "bin"]
        assert [int(r["count"]) for r in bins] == entry["counts"]
        assert [float(r["bin_low"]) for r in bins] == doc["edges"][:-1]  # the same rounded edges as the JSON
        for r in bins:
            assert float(r["bin_centre"]) == pytest.approx((float(r["bin_low"]) + float(r["bin_high"])) / 2, abs=1e-12)
            assert len(r["bin_centre"]) <= 8  # 0.404, not 0.40400000000000003
        tallies = {r["kind"]: int(r["count"]) for r in mine if r["kind"] != "bin"}
        assert tallies == {k: entry[k] for k in ("below", "above", "nodata", "masked", "duplicate")}
        assert all(r["bin_low"] == r["bin_high"] == "" for r in mine if r["kind"] != "bin")
        assert sum(int(r["count"]) for r in mine) == entry["pixels"]
    assert doc["masked"] > 0


def test_parquet_carries_the_query_as_metadata(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow.parquet as pq

    code, _, err = _job(capsys, tiny, tmp_path)
    assert code == 0, err
    table = pq.read_table(tmp_path / "r.parquet")
    about = json.loads(table.schema.metadata[b"histcalc"])
    doc = json.loads((tmp_path / "r.json").read_text())
    assert about["query"] == doc["query"] and about["files"] == doc["files"]
    data = table.to_pydict()
    rows = list(csv.DictReader((tmp_path / "r.csv").open(newline="")))
    assert data["kind"] == [r["kind"] for r in rows] and data["count"] == [int(r["count"]) for r in rows]
    assert data["bin_low"][-1] is None and data["bin_centre"][:2] == [-0.08, -0.076]


def _doc_of(h: Histogram, **extra: Any) -> dict[str, Any]:
    return {**h.to_dict(), **extra}


def test_outputs_in_new_folders_are_written(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    new = {
        flag: tmp_path / f"new_{i}" / "deeper" / name
        for i, (flag, name) in enumerate(
            [("-o", "r.json"), ("--csv", "r.csv"), ("--parquet", "r.parquet"), ("--plot", "r.png")]
        )
    }
    args = [a for flag, path in new.items() for a in (flag, str(path))]
    code, _, err = _run(capsys, "--catalog", str(tiny), "--engine", "local", "-q", "--nodata", "nan", *args)
    assert code == 0, err
    assert all(path.is_file() for path in new.values())
    assert json.loads(new["-o"].read_text())["query"]["nodata"] == "nan"  # not null: "nan" was asked for
