"""``histcalc demo --zones``: demo parcels inside the seed's bbox, per-parcel per-date counts against a brute
force over every pixel centre, and the parcels' median plot against the statistics table."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.warp import transform

from histcalc.cli import main
from histcalc.demo import EPSG, TILE_METRES
from histcalc.demo_zones import PARCELS, ensure_parcels
from histcalc.zone_plot import figure, plot_zone_medians

SEED_BBOX = (4.91, 51.16, 5.24, 51.27)
SIZE = 366  # 300 m pixels: fast; a few hundred parcels hold a pixel centre
SCL_DROPPED = (0, 3, 8, 9, 10, 11)  # the SCL classes the demo masks by default


def _parcels(path: Path) -> tuple[list[str], Any]:
    import pyogrio

    meta, _, wkb, fields = pyogrio.raw.read(str(path), columns=["parcel_id"])
    assert meta["crs"] == f"EPSG:{EPSG}"
    return [str(x) for x in fields[0]], shapely.from_wkb(wkb)


def _stats(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("demo-zones")
    data = root / "d"
    args = ["demo", "--zones", "--dir", str(data), "--size", str(SIZE), "--engine", "local", "--workers", "2"]
    code = main([*args, "-q", "-o", str(root / "r.json"), "--plot-parcels", str(root / "parcels.png")])
    assert code == 0
    ids, geoms = _parcels(data / "parcels.gpkg")
    return {
        "root": root,
        "data": data,
        "ids": ids,
        "geoms": geoms,
        "stats": _stats(data / "parcel-stats.csv"),
        "doc": json.loads((root / "r.json").read_text()),
    }


def _brute_force(data: Path, geoms: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per date: (pixel centres, valid pixels) per parcel, from every pixel centre of every NDVI file."""
    tree = shapely.STRtree(geoms)
    out = {}
    for ndvi_path in sorted(data.rglob("*_31UFS_NDVI_10M_V200.tif")):  # the parcels lie in 31UFS alone
        scl_path = Path(str(ndvi_path).replace("NDVI_10M", "SCENECLASSIFICATION_20M"))
        with rasterio.open(ndvi_path) as src, rasterio.open(scl_path) as scl_src:
            dn, scl, t = src.read(1), scl_src.read(1), src.transform
            assert scl_src.width * 2 == src.width  # 20 m SCL: pixel (r, c) of the data is (r // 2, c // 2)
        rows, cols = np.mgrid[0 : dn.shape[0], 0 : dn.shape[1]]
        x, y = t.c + (cols.ravel() + 0.5) * t.a, t.f + (rows.ravel() + 0.5) * t.e
        point, parcel = tree.query(shapely.points(x, y), predicate="within")
        valid = (dn.ravel() != 255) & ~np.isin(scl[rows.ravel() // 2, cols.ravel() // 2], SCL_DROPPED)
        pixels = np.bincount(parcel, minlength=len(geoms))
        counted = np.bincount(parcel[valid[point]], minlength=len(geoms))
        stamp = ndvi_path.name.split("_")[1][:8]
        out[f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:]}"] = (pixels, counted)
    return out


def test_parcels_lie_inside_the_seed_bbox_and_are_deterministic(run: dict[str, Any], tmp_path: Path) -> None:
    ids, geoms = run["ids"], run["geoms"]
    assert len(ids) == PARCELS and len(set(ids)) == PARCELS and ids[0] == "P000001"
    assert not shapely.overlaps(geoms[:, None], geoms[None, :200]).any()  # adjacent fields, no overlap
    xy = shapely.get_coordinates(geoms)
    lon, lat = transform(f"EPSG:{EPSG}", "EPSG:4326", list(xy[:, 0]), list(xy[:, 1]))
    w, s, e, n = SEED_BBOX
    assert w < min(lon) and max(lon) < e and s < min(lat) and max(lat) < n
    again_ids, again = _parcels(ensure_parcels(tmp_path, SEED_BBOX))
    assert again_ids == ids and bool(shapely.equals_exact(again, geoms, tolerance=0).all())
    cached = run["data"] / "parcels.gpkg"
    before = cached.stat().st_mtime_ns
    assert ensure_parcels(run["data"], SEED_BBOX) == cached and cached.stat().st_mtime_ns == before


def test_most_parcels_hold_several_pixels_at_the_default_60m(run: dict[str, Any]) -> None:
    geoms = run["geoms"]
    res = TILE_METRES / 1830
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    cols = np.arange(math.floor((x0 - 600000.0) / res), math.ceil((x1 - 600000.0) / res))
    rows = np.arange(math.floor((5700000.0 - y1) / res), math.ceil((5700000.0 - y0) / res))
    c, r = np.meshgrid(cols, rows)
    centres = shapely.points(600000.0 + (c.ravel() + 0.5) * res, 5700000.0 - (r.ravel() + 0.5) * res)
    _, parcel = shapely.STRtree(geoms).query(centres, predicate="within")
    per_parcel = np.bincount(parcel, minlength=len(geoms))
    areas = shapely.area(geoms) / 10_000
    assert areas.min() >= 0.5 and areas.max() <= 20
    assert np.mean(per_parcel >= 3) > 0.9 and np.median(per_parcel) >= 4


def test_every_parcel_counts_what_a_brute_force_counts(run: dict[str, Any]) -> None:
    ids, stats = run["ids"], run["stats"]
    whole = {r["zone"]: r for r in stats if r["group"] == "all"}
    assert sorted(whole) == sorted(ids)  # every parcel appears, also those without a pixel centre
    expected = _brute_force(run["data"], run["geoms"])
    assert len(expected) == 9
    by_date = {(r["zone"], r["group"]): r for r in stats if r["group"] != "all"}
    total_pixels = sum(p for p, _ in expected.values())
    total_counted = sum(c for _, c in expected.values())
    assert 0 < total_counted.sum() < total_pixels.sum()  # the mask and the swath dropped some
    for k, zone in enumerate(ids):
        assert (int(whole[zone]["pixels"]), int(whole[zone]["count"])) == (total_pixels[k], total_counted[k])
        for day, (pixels, counted) in expected.items():
            row = by_date.get((zone, day))
            got = (int(row["pixels"]), int(row["count"])) if row else (0, 0)
            assert got == (pixels[k], counted[k]), (zone, day)


def test_parcel_counts_add_up_to_the_union_histogram(run: dict[str, Any]) -> None:
    doc, stats = run["doc"], run["stats"]
    whole = [r for r in stats if r["group"] == "all"]
    assert sum(int(r["count"]) for r in whole) == sum(doc["counts"]) == doc["stats"]["count"]
    assert doc["zones"]["total"] == PARCELS
    for group in doc["groups"]:
        in_group = [r for r in stats if r["group"] == group["group"]]
        assert sum(int(r["count"]) for r in in_group) == sum(group["counts"])


def _csv_medians(stats: list[dict[str, str]], zone: str) -> dict[str, float]:
    return {r["group"]: float(r["p50"]) if r["p50"] else math.nan for r in stats if r["zone"] == zone}


def test_parcel_plot_draws_the_tables_medians(run: dict[str, Any], tmp_path: Path) -> None:
    assert (run["root"] / "parcels.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stats = run["stats"]
    png = tmp_path / "p.png"
    series = plot_zone_medians(run["data"] / "parcel-stats.csv", png, n=3)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    counts = sorted((-int(r["count"]), r["zone"]) for r in stats if r["group"] == "all")
    assert list(series) == [zone for _, zone in counts[:3]]  # the parcels with the most counted pixels
    fig = figure(series, "t")
    for line, zone in zip(fig.axes[0].get_lines(), series, strict=True):
        expected = _csv_medians(stats, zone)
        days = sorted(g for g in expected if g != "all")
        drawn = np.asarray(line.get_ydata(), dtype=float)
        assert len(drawn) == len(days) == 9
        np.testing.assert_array_equal(drawn, [expected[d] for d in days])
        assert [d.isoformat() for d in line.get_xdata()] == days
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_demo_over_a_zones_file_to_parquet_plots_the_same(run: dict[str, Any], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    parquet, png = tmp_path / "stats.parquet", tmp_path / "p.png"
    args = ["demo", "--dir", str(run["data"]), "--size", str(SIZE), "--engine", "local", "--workers", "2", "-q"]
    zones = ["--zones", str(run["data"] / "parcels.gpkg"), "--zone-id", "parcel_id"]
    assert main([*args, *zones, "--zone-stats", str(parquet), "--plot-parcels", str(png)]) == 0
    table = pq.read_table(parquet).to_pylist()
    got = {(r["zone"], r["group"]): (r["pixels"], r["count"]) for r in table}
    want = {(r["zone"], r["group"]): (int(r["pixels"]), int(r["count"])) for r in run["stats"]}
    assert got == want
    from_csv = plot_zone_medians(run["data"] / "parcel-stats.csv", tmp_path / "a.png", n=4)
    from_parquet = plot_zone_medians(parquet, tmp_path / "b.png", n=4)
    assert list(from_parquet) == list(from_csv) and len(from_csv) == 4
    for zone, points in from_csv.items():  # Parquet keeps every float digit, the CSV 12 significant ones
        assert [g for g, _ in from_parquet[zone]] == [g for g, _ in points]
        np.testing.assert_allclose([v for _, v in from_parquet[zone]], [v for _, v in points], rtol=1e-11)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--plot-parcels", "x.png"], "--plot-parcels needs --zones"),
        (["--zones", "--zone-stats", "s.gpkg", "--plot-parcels", "x.png"], "reads a .csv or .parquet"),
        (["--zones", "--plot-parcels", "x.txt"], "cannot plot to x.txt"),
    ],
)
def test_bad_parcel_plot_options_fail_before_any_work(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["demo", "--dir", "d", "--size", "32", "--engine", "local", *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "d" / "catalog.json").exists()
