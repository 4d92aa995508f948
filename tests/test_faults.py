"""Bad files and failing tasks: every file is accounted for, by name, with a one-line reason.

Each test name says the fault; docs/errors.md lists what the user sees for each.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from histcalc import BinSpec, Scene, compute_histogram
from histcalc.cli import main
from histcalc.errors import OutputError, RasterReadError
from histcalc.report import write_atomic
from tests.conftest import uint8_bins, write_raster

BOTH = pytest.mark.parametrize("engine", ["local", pytest.param("spark", marks=pytest.mark.spark)])


def _good(folder: Path, name: str = "good", value: int = 100) -> Path:
    data = np.full((20, 30), value, np.uint8)
    return write_raster(folder / f"{name}.tif", data, nodata=255, scale=0.004, offset=-0.08, block=None)


def _faulty_files(folder: Path) -> dict[str, Path]:
    """One file per fault, each failing in its own way."""
    real = _good(folder, "real")
    truncated = folder / "truncated.tif"
    big = write_raster(folder / "big.tif", np.random.default_rng(1).integers(0, 250, (300, 300), np.uint8), block=64)
    truncated.write_bytes(big.read_bytes()[: big.stat().st_size // 2])
    not_tiff = folder / "not_a_tiff.tif"
    not_tiff.write_text("this is a text file, not a raster\n")
    return {"missing": folder / "missing.tif", "truncated": truncated, "not_tiff": not_tiff, "real": real}


def _run(engine: str, spark: Any, scenes: list[Scene], **kw: Any) -> Any:
    return compute_histogram(
        scenes, uint8_bins(), engine=engine, spark=spark if engine == "spark" else None, workers=2, **kw
    )


@BOTH
def test_missing_truncated_and_not_a_tiff_are_named_and_the_rest_counted(
    tmp_path: Path, engine: str, spark: Any
) -> None:
    files = _faulty_files(tmp_path)
    result = _run(engine, spark, [Scene(id=k, href=str(p)) for k, p in files.items()])
    assert sorted(result.files_failed) == sorted(str(files[k]) for k in ("missing", "truncated", "not_tiff"))
    assert result.files_ok == [str(files["real"])]
    assert all("\n" not in e and Path(h).name in e for h, e in result.files_failed.items())
    assert result.histogram.count == 600 and result.histogram.pixels == 600  # only the good file's pixels


@BOTH
def test_on_error_fail_stops_with_the_file_named(tmp_path: Path, engine: str, spark: Any) -> None:
    files = _faulty_files(tmp_path)
    with pytest.raises(RasterReadError, match=r"not_a_tiff\.tif"):
        _run(
            engine,
            spark,
            [Scene(id="x", href=str(files["not_tiff"])), Scene(id="r", href=str(files["real"]))],
            on_error="fail",
        )


@pytest.mark.spark
def test_a_failing_file_split_in_parts_is_reported_once_and_counts_nothing(tmp_path: Path, spark: Any) -> None:
    files = _faulty_files(tmp_path)
    result = _run("spark", spark, [Scene(id="t", href=str(files["truncated"]))])  # 1 file -> several parts
    assert list(result.files_failed) == [str(files["truncated"])] and result.histogram.pixels == 0


NO_DAC = ["setpriv", "--inh-caps=-dac_override,-dac_read_search", "--bounding-set=-dac_override,-dac_read_search"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_permission_denied_is_a_named_failure(tmp_path: Path) -> None:
    """Root reads anything; without its DAC capabilities a mode-000 file is refused as for anyone."""
    path = _good(tmp_path)
    path.chmod(0o000)
    code = (
        "import json,sys; from histcalc import Scene, compute_histogram; from tests.conftest import uint8_bins;"
        f"r = compute_histogram([Scene(id='p', href={str(path)!r})], uint8_bins(), engine='local', workers=1);"
        "print(json.dumps(r.files_failed))"
    )
    proc = subprocess.run(
        [*NO_DAC, sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent.parent,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    failed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert list(failed) == [str(path)] and "ermission denied" in failed[str(path)]


def test_a_file_of_another_dtype_and_crs_is_counted_in_physical_units(tmp_path: Path) -> None:
    a = _good(tmp_path, "a", value=100)
    b = write_raster(
        tmp_path / "b.tif",
        np.arange(600, dtype=np.uint16).reshape(20, 30),
        crs="EPSG:32632",
        nodata=0,
        scale=0.004,
        offset=-0.08,
        block=None,
    )
    bins = BinSpec.per_digital_number("uint8", 0.004, -0.08)
    result = compute_histogram([Scene(id="a", href=str(a)), Scene(id="b", href=str(b))], bins, engine="local")
    h = result.histogram
    assert h.pixels == 1200 and h.nodata == 1 and h.above == 600 - 256  # DN 256.. lie above the uint8 range
    assert h.counts[100] == 600 + 1 and h.counts.sum() == 600 + 255 - 1 + 1  # DN 1..255 of b, DN 100 of a


def test_constant_raster(tmp_path: Path) -> None:
    h = compute_histogram([Scene(id="c", href=str(_good(tmp_path, value=42)))], uint8_bins(), engine="local").histogram
    st = h.stats()
    assert h.count == 600 and h.counts[42] == 600 and st["std"] == 0.0
    assert st["min"] == st["max"] == st["percentiles"]["p50"] == pytest.approx(42 * 0.004 - 0.08)


def test_entirely_nodata_raster_gives_empty_statistics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_raster(tmp_path / "empty_20240501.tif", np.full((10, 10), 255, np.uint8), nodata=255, block=None)
    out = tmp_path / "r.json"
    assert main(["--catalog", str(tmp_path), "--engine", "local", "-o", str(out), "-q"]) == 8
    doc = json.loads(out.read_text())
    assert doc["nodata"] == 100 and sum(doc["counts"]) == 0
    assert doc["stats"]["mean"] is None and doc["stats"]["percentiles"]["p50"] is None
    captured = capsys.readouterr()
    assert "(no pixels counted)" in captured.out
    assert "no pixel was counted: of 100 pixels read, 100 are nodata" in captured.err


@pytest.mark.parametrize(("allow", "code"), [("0", 5), ("1", 0), ("50%", 0), ("10%", 5), ("x", 2), ("150%", 2)])
def test_allow_failures(tmp_path: Path, allow: str, code: int, capsys: pytest.CaptureFixture[str]) -> None:
    _good(tmp_path, "good_20240501")
    (tmp_path / "bad_20240502.tif").write_text("not a tiff")
    assert main(["--catalog", str(tmp_path), "--engine", "local", "--allow-failures", allow, "-q"]) == code
    err = capsys.readouterr().err
    assert err.count("\n") <= 1 and "Traceback" not in err


def test_outputs_are_written_atomically(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    target.write_text("previous result")
    write_atomic(target, "new result")
    assert target.read_text() == "new result" and sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]
    (tmp_path / "blocked").mkdir()
    (tmp_path / "blocked" / "r.json").mkdir()  # a directory where the file should go: the rename fails
    with pytest.raises(OutputError, match="cannot write"):
        write_atomic(tmp_path / "blocked" / "r.json", "x")
    assert [p.name for p in (tmp_path / "blocked").iterdir()] == ["r.json"]  # no temp file left behind
