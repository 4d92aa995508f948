"""The benchmark harness still runs: benchmarks/run.py in its tiny mode, results written to tmp_path.

This is a smoke test of the harness (tile generator, every method runner, memory sampler, report),
not a benchmark: two 512 px tiles, one repetition. Peers that are not installed (dask, rioxarray,
gdal-bin) and Spark without Java are skipped by the harness itself, with a note in the results.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def test_harness_runs_in_quick_mode(tmp_path: Path) -> None:
    out = tmp_path / "RESULTS.md"
    command = [
        sys.executable,
        str(RUN),
        "--quick",
        "--size",
        "512",
        "--tiles",
        "2",
        "--reps",
        "1",
        "--cache",
        str(tmp_path / "cache"),
        "--out",
        str(out),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "FAILED" not in done.stdout, done.stdout

    text = out.read_text()
    for heading in ("## Machine", "## Results", "## Targets", "## Counting kernels"):
        assert heading in text
    raw = json.loads(out.with_suffix(".json").read_text())
    rows = {(r["method"], r["scope"]): r for r in raw["summary"]}
    for key in [("decode", "full"), ("classic", "full"), ("histcalc_local", "full"), ("histcalc_local", "bbox")]:
        assert rows[key]["median_s"] and rows[key]["median_s"] > 0, key
    assert rows[("histcalc_local", "full")]["worker_peak_mb"] > 0
    # the decode limit runs under histcalc's own GDAL settings, and says so
    assert any("GDAL_CACHEMAX=64" in n for n in rows[("decode", "full")]["notes"]), rows[("decode", "full")]["notes"]
    assert "gdalenv.rasterio_env" in text
    assert not [key for key in rows if key[0] in ("histcalc_patched", "decode_small_cache")]  # no what-if rows
    for key, row in rows.items():  # every method that reports counts agrees with histcalc
        assert row["agrees"] != "NO", key
    assert not list((tmp_path / "cache" / "512px").glob(".*.tif"))  # no scratch or partial tiles left
    print(f"benchmark harness quick mode: {elapsed:.1f} s")
