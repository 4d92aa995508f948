"""Plots drawn from the counts: per-group percentiles, display rebinning, labels, "no data"."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from histcalc.bins import BinSpec
from histcalc.cli import main
from histcalc.demo import generate
from histcalc.histogram import Histogram
from histcalc.plot import MAX_BARS, figure
from tests.conftest import brute_force, uint8_bins

pytest.importorskip("matplotlib")

SEED_BBOX = (4.91, 51.16, 5.24, 51.27)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("demo"), size=96)


def _stairs(ax: Any) -> tuple[np.ndarray, np.ndarray]:
    (patch,) = [p for p in ax.patches if hasattr(p, "get_data")]
    data = patch.get_data()
    return np.asarray(data.values), np.asarray(data.edges)


def test_group_panel_draws_percentiles_computed_from_the_counts(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    args = ["--catalog", str(demo), "--engine", "local", "--bbox", ",".join(map(str, SEED_BBOX))]
    args += ["--start-date", "2024-05-01", "--end-date", "2024-06-10"]
    code = main(
        [*args, "--group-by", "date", "--percentiles", "10,90", "-o", str(out), "--plot", str(tmp_path / "p.png")]
    )
    assert code == 0, capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert set(doc["stats"]["percentiles"]) == {"p10", "p90"}  # the JSON has no p25/p50/p75 ...
    fig = figure(doc)
    groups_ax = fig.axes[1]
    files = sorted(demo.parent.rglob("*NDVI_10M_V200.tif"))
    medians = []
    for g in doc["groups"]:
        day = g["group"].replace("-", "")
        ref = brute_force([f for f in files if f"_{day}T" in f.name], uint8_bins().array, bbox=SEED_BBOX)
        medians.append(np.percentile(ref["values"], 50, method="inverted_cdf") if ref["values"].size else np.nan)
    drawn = np.asarray(groups_ax.lines[0].get_ydata(), dtype=float)  # ... yet the panel has its medians
    np.testing.assert_allclose(drawn, medians, atol=1e-12)
    assert np.isfinite(drawn).sum() >= 8 and len(groups_ax.collections) == 2  # p25-p75 and p2-p98 bands
    assert groups_ax.get_ylabel() == "NDVI" and fig.axes[0].get_xlabel() == "NDVI"
    title = fig.axes[0].get_title()
    assert "2024-05-01 to 2024-06-10" in title and "bbox 4.91, 51.16, 5.24, 51.27" in title and "9 of 9" in title


def test_a_million_bins_are_rebinned_for_display(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(7)
    values = np.clip(rng.normal(0.45, 0.12, 200_000), 0, 1)
    h = Histogram.of_values(values, BinSpec.uniform(1_000_000, 0.0, 1.0))
    doc = {**h.to_dict(), "variable": "NDVI", "query": {"start_date": "2024-05-01", "end_date": "2024-05-31"}}
    result = tmp_path / "big.json"
    result.write_text(json.dumps(doc))
    started = time.perf_counter()
    code = main(["plot", str(result)])
    elapsed = time.perf_counter() - started
    assert code == 0 and (tmp_path / "big.png").stat().st_size > 10_000  # the default: RESULT with .png
    assert capsys.readouterr().out == f"plot: {tmp_path / 'big.png'}\n"
    assert elapsed < 20, f"{elapsed:.1f} s"  # 53 s before (one bar per bin)
    counts, edges = _stairs(figure(doc).axes[0])
    assert len(counts) <= MAX_BARS and counts.sum() == len(values)
    assert edges[0] <= values.min() < edges[1]
    assert edges[-2] <= values.max() <= edges[-1]
    np.testing.assert_array_equal(counts, np.histogram(values, bins=edges)[0])  # bars are bins of the values


def test_zero_pixels_plot_says_no_data(tmp_path: Path) -> None:
    h = Histogram(uint8_bins(), np.zeros(256, dtype=np.int64), nodata=1234)
    doc = {**h.to_dict(), "groups": [{"group": "2024-05-01", **{k: v for k, v in h.to_dict().items() if k != "edges"}}]}
    fig = figure(doc)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert any(t.startswith("no data: 0 pixels counted") and "1,234 nodata" in t for t in texts)
    assert np.isnan(np.asarray(fig.axes[1].lines[0].get_ydata(), dtype=float)).all()


def test_a_result_of_the_earlier_format_still_plots(tmp_path: Path) -> None:
    legacy = {
        "edges": [0.0, 0.5, 1.0],
        "discrete": False,
        "counts": [3, 1],
        "moments": {"n": 4, "mean": 0.4, "m2": 0.2},
        "min": 0.1,
        "max": 0.9,
        "query": {"asset": "NDVI"},
    }
    h = Histogram.from_dict(legacy)
    assert h.count == 4 and h.moments.m2 == 0.2 and (h.vmin, h.vmax) == (0.1, 0.9)
    assert figure(legacy).axes[0].get_xlabel() == "NDVI"
