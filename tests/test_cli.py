"""The histcalc command: seed compatibility, outputs, and one-line errors with distinct exit codes."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from histcalc.cli import job_parser, main, query_from_args
from histcalc.demo import generate
from histcalc.scenes import TERRASCOPE_STAC_API
from tests.conftest import brute_force, uint8_bins, write_raster

SEED_BBOX = (4.91, 51.16, 5.24, 51.27)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("demo"), size=96)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_seed_call_keeps_the_seed_defaults() -> None:
    ns = job_parser().parse_args(["--start_date=2024-05-01", "--end_date=2024-06-10"])
    query, aoi = query_from_args(ns)
    assert query.catalog == TERRASCOPE_STAC_API and query.collection == "terrascope-s2-ndvi-v2"
    assert query.asset == "NDVI" and str(query.start) == "2024-05-01" and str(query.end) == "2024-06-10"
    assert aoi is not None and aoi.bbox == SEED_BBOX and query.bbox == SEED_BBOX


def test_seed_call_without_network_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--start_date=2024-05-01", "--end_date=2024-06-10", "--engine", "local")
    assert code == 3
    assert err.startswith("histcalc: error: STAC API https://stac.terrascope.be/") and err.count("\n") == 1


def test_local_catalog_job_writes_json_and_csv(demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    code, out, _ = _run(
        capsys,
        "--catalog",
        str(demo),
        "--start-date",
        "2024-05-01",
        "--end-date",
        "2024-05-31",
        "--bbox",
        ",".join(map(str, SEED_BBOX)),
        "--engine",
        "local",
        "--output",
        str(out_json),
        "--csv",
        str(out_csv),
        "-q",
    )
    assert code == 0
    doc = json.loads(out_json.read_text())
    files = sorted(demo.parent.rglob("*NDVI_10M_V200.tif"))
    may = [f for f in files if "_202405" in f.name]
    ref = brute_force(may, uint8_bins().array, bbox=SEED_BBOX)
    assert doc["counts"] == ref["counts"].tolist()
    assert (doc["below"], doc["above"], doc["nodata"]) == (ref["below"], ref["above"], ref["nodata"])
    assert doc["files"] == {"total": len(may), "ok": len(may), "failed": [], "used": [str(f) for f in may]}
    assert len(doc["edges"]) == 257 and doc["stats"]["count"] == int(ref["counts"].sum())
    assert doc["stats"]["percentiles"]["p50"] == pytest.approx(np.percentile(ref["values"], 50, method="inverted_cdf"))
    assert doc["query"]["start_date"] == "2024-05-01" and doc["query"]["bbox"] == list(SEED_BBOX)
    rows = [r for r in csv.DictReader(out_csv.open()) if r["group"] == "all" and r["kind"] == "bin"]
    assert [int(r["count"]) for r in rows] == doc["counts"]
    assert f"{len(may)} file(s): {len(may)} ok" in out and "pixels:" in out


def test_a_broken_file_is_named_and_the_rest_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_raster(tmp_path / "good_20240501.tif", np.arange(64, dtype=np.uint8).reshape(8, 8), block=None)
    bad = tmp_path / "bad_20240502.tif"
    bad.write_bytes(b"II*\x00 this is not really a tiff")
    out_json = tmp_path / "r.json"
    code, out, err = _run(capsys, "--catalog", str(tmp_path), "--engine", "local", "-o", str(out_json), "-q")
    assert code == 5 and "1 of 2 file(s) failed" in err
    doc = json.loads(out_json.read_text())
    assert doc["files"]["ok"] == 1 and [f["href"] for f in doc["files"]["failed"]] == [str(bad)]
    assert sum(doc["counts"]) == 64 and str(bad) in out
    assert good.exists()


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--start-date", "2024-13-01"], 2, "YYYY-MM-DD"),
        (["--start-date", "2024-06-10", "--end-date", "2024-05-01"], 2, "before"),
        (["--bbox", "1,2,3"], 2, "four numbers"),
        (["--bbox", "5,50,4,51"], 2, "W < E"),
        (["--bbox", "4,50,5,95"], 2, "latitudes"),
        (["--bins", "0", "--range", "0,1"], 2, "positive"),
        (["--bins", "10", "--range", "1,0"], 2, "LO < HI"),
        (["--bins", "10", "--range", "1"], 2, "--range"),  # --bins alone now spans the data type (issue #11)
        (["--engine", "dask"], 2, "invalid choice"),
        (["--catalog", "/no/such/catalog.json"], 2, "does not exist"),
        (["--no-such-flag"], 2, "unrecognized"),
        (["--percentiles", "a,b"], 2, "--percentiles"),
    ],
)
def test_bad_input_is_one_line_and_a_usage_exit_code(
    capsys: pytest.CaptureFixture[str], args: list[str], code: int, fragment: str
) -> None:
    got, _, err = _run(capsys, *args)
    assert got == code and fragment in err
    assert err.startswith("histcalc: error:") and err.count("\n") == 1 and "Traceback" not in err


def test_zero_matches_has_its_own_exit_code(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(
        capsys, "--catalog", str(demo), "--start-date", "2023-01-01", "--end-date", "2023-01-31", "--engine", "local"
    )
    assert code == 4 and "no scenes match" in err


def test_float_data_without_range_asks_for_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_raster(tmp_path / "f_20240501.tif", np.ones((4, 4), np.float32), block=None)
    code, _, err = _run(capsys, "--catalog", str(tmp_path), "--engine", "local")
    assert code == 2 and "--range" in err


def test_unwritable_output_is_refused_before_any_work(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("")
    code, _, err = _run(capsys, "--catalog", str(demo), "--engine", "local", "-o", str(tmp_path / "a-file/r.json"))
    assert code == 2 and "cannot write" in err and "not a directory" in err


def _module(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "histcalc", *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


def test_demo_command_end_to_end_local(tmp_path: Path) -> None:
    proc = _module("demo", "--dir", "d", "--size", "128", "--engine", "local", "-o", "r.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads((tmp_path / "r.json").read_text())
    files = sorted((tmp_path / "d").rglob("*_31UFS_NDVI_10M_V200.tif"))  # the neighbours lie outside the bbox
    assert len(files) == 9 and doc["files"]["ok"] == 9
    ref = brute_force(files, uint8_bins().array, bbox=SEED_BBOX)
    assert doc["counts"] == ref["counts"].tolist() and doc["nodata"] == ref["nodata"] > 0
    assert "histcalc: histogram of 9 file(s): 9 ok, 0 failed (local engine" in proc.stdout


@pytest.mark.spark
def test_demo_command_on_spark_equals_local(tmp_path: Path) -> None:
    local = _module("demo", "--dir", "d", "--size", "64", "--engine", "local", "-o", "l.json", cwd=tmp_path)
    spark = _module("demo", "--dir", "d", "--size", "64", "--master", "local[2]", "-o", "s.json", cwd=tmp_path)
    assert local.returncode == 0 and spark.returncode == 0, spark.stderr[-2000:]
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("l.json", "s.json"))
    assert a["counts"] == b["counts"] and a["nodata"] == b["nodata"] and b["engine"] == "spark"


def test_masked_grouped_run_writes_every_format(demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow.parquet as pq
    from matplotlib.image import imread

    out = {k: tmp_path / f"r.{k}" for k in ("json", "csv", "parquet", "png")}
    code, stdout, _ = _run(
        capsys,
        "--catalog",
        str(demo),
        "--engine",
        "local",
        "--mask-asset",
        "SCENECLASSIFICATION",
        "--group-by",
        "month",
        "--bbox",
        ",".join(map(str, SEED_BBOX)),
        "-o",
        str(out["json"]),
        "--csv",
        str(out["csv"]),
        "--parquet",
        str(out["parquet"]),
        "--plot",
        str(out["png"]),
        "-q",
    )
    assert code == 0
    doc = json.loads(out["json"].read_text())
    assert [g["group"] for g in doc["groups"]] == ["2024-05", "2024-06"] and doc["masked"] > 0
    assert [sum(x) for x in zip(*(g["counts"] for g in doc["groups"]), strict=True)] == doc["counts"]
    assert doc["pixels"] == doc["stats"]["count"] + doc["nodata"] + doc["masked"] + doc["below"] + doc["above"]
    rows = list(csv.DictReader(out["csv"].open()))
    table = pq.read_table(out["parquet"]).to_pydict()
    assert table["group"] == [r["group"] for r in rows] and table["count"] == [int(r["count"]) for r in rows]
    assert {r["group"] for r in rows} == {"2024-05", "2024-06", "all"}
    height, width = imread(out["png"]).shape[:2]
    assert (width, height) == (990, 770)  # 9 x 7 inches at 110 dpi: histogram + per-group panel
    assert "group 2024-05:" in stdout
    redraw = tmp_path / "again.png"
    assert _run(capsys, "plot", str(out["json"]), "-o", str(redraw))[0] == 0
    assert imread(redraw).shape == imread(out["png"]).shape


def test_plot_of_something_else_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "x.json"
    other.write_text("[1, 2]")
    code, _, err = _run(capsys, "plot", str(other), "-o", str(tmp_path / "x.png"))
    assert code == 2 and "not a histcalc result" in err


def test_missing_java_is_one_clear_line(demo: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "PATH")}
    proc = subprocess.run(
        [sys.executable, "-m", "histcalc", "--catalog", str(demo)],
        env={**env, "PATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 6
    assert proc.stderr.strip().splitlines()[-1].startswith("histcalc: error: Spark needs Java 17 or newer")
    assert "Traceback" not in proc.stderr


@pytest.mark.spark
def test_unknown_spark_master_is_one_clear_line(demo: Path) -> None:
    proc = _module("--catalog", str(demo), "--master", "nosuch://127.0.0.1:1", cwd=demo.parent)
    assert proc.returncode == 6, proc.stderr[-1500:]
    last = proc.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("histcalc: error: cannot start Spark (master nosuch://127.0.0.1:1)")
        and "Traceback" not in proc.stderr
    )


def test_py4j_retry_chatter_stays_out_of_the_users_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    """py4j logs a retried send at INFO on the root logger with a traceback; a user must not see it."""
    import logging

    import py4j.java_gateway

    from histcalc.cli import configure_logging

    configure_logging(0)
    root = logging.getLogger()
    for level, text in ((logging.INFO, "Exception while sending command."), (logging.WARNING, "py4j warning")):
        root.handle(logging.LogRecord("root", level, py4j.java_gateway.__file__, 1, text, None, None))
    logging.getLogger("histcalc").info("ours")
    err = capsys.readouterr().err
    assert "Exception while sending command" not in err and "py4j warning" in err and "ours" in err


def test_kernel_setting_is_checked_before_any_pixel_and_a_slow_fallback_is_said(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown HISTCALC_KERNEL, or one this installation lacks, is a usage error before the job; ``auto``
    without C kernels or numba counts with numpy (same counts) and says so once, with the way out."""
    from histcalc import kernel_loading

    out_json = tmp_path / "out.json"
    args = ["--catalog", str(demo), "--engine", "local", "--workers", "1", "-o", str(out_json), "-q"]
    monkeypatch.setenv("HISTCALC_KERNEL", "Fortran")
    code, _, err = _run(capsys, *args)
    assert code == 2 and "HISTCALC_KERNEL must be one of auto, c, numba, numpy, got 'fortran'" in err
    assert not out_json.exists()
    monkeypatch.setattr(kernel_loading, "_native", None)
    monkeypatch.setattr(kernel_loading, "_native_error", "not built (test)")
    monkeypatch.setattr(kernel_loading, "_numba_found", False)
    for name, fragment in (("C", "no C kernels"), ("numba", "pip install 'histcalc[numba]'")):
        monkeypatch.setenv("HISTCALC_KERNEL", name)
        code, _, err = _run(capsys, *args)
        assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1
        assert not out_json.exists()
    monkeypatch.setenv("HISTCALC_KERNEL", "auto")
    code, _, err = _run(capsys, *args)
    assert code == 0 and "counting with numpy" in err and "histcalc[numba]" in err
    counted = json.loads(out_json.read_text())["counts"]
    monkeypatch.setattr(kernel_loading, "_native", None)
    monkeypatch.setattr(kernel_loading, "_native_error", None)  # the C kernels again
    out_json.unlink()
    assert _run(capsys, *args)[0] == 0
    assert json.loads(out_json.read_text())["counts"] == counted and sum(counted) > 0


def test_a_lon_lat_box_job_imports_only_what_it_uses(demo: Path, tmp_path: Path) -> None:
    """A short job's time is mostly imports: a lon/lat box needs no pyproj (~30 ms), a job without a login no
    HTTP server or token code (~25 ms), and no job imports pandas."""
    import subprocess
    import sys

    script = f"""
import sys
from histcalc.cli import main
code = main(["--catalog", {str(demo)!r}, "--start-date", "2024-05-01", "--end-date", "2024-05-31",
             "--bbox", {",".join(map(str, SEED_BBOX))!r}, "--engine", "local", "--workers", "1", "-q",
             "--output", {str(tmp_path / "r.json")!r}])
assert code == 0, code
loaded = [m for m in ("pyproj", "http.server", "histcalc.token_relay", "histcalc.token_refresh", "pandas")
          if m in sys.modules]
assert not loaded, loaded
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sum(json.loads((tmp_path / "r.json").read_text())["counts"]) > 0
    # a directory of GeoTIFFs is no STAC: no pystac (~60 ms), although every job names its catalog in its output
    folder = script.replace(repr(str(demo)), repr(str(demo.parent / "data"))).replace(
        '"--start-date"', '"--pattern", "*_NDVI_10M_*.tif", "--start-date"'
    )
    folder = folder.replace('"pandas")', '"pandas", "pystac")')
    done = subprocess.run([sys.executable, "-c", folder], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
