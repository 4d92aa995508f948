"""Quality masks (SCL at half resolution), groups, GeoJSON polygons with holes, all-touched,
each checked against plain numpy on both engines."""

from __future__ import annotations

import json
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rasterio.transform import Affine

from histcalc import BinSpec, Overrides, Scene, compute_histogram, load_geojson
from histcalc.aoi import AOI
from histcalc.raster import ReadSpec, histogram_of
from tests.conftest import uint8_bins, write_raster

RNG = np.random.default_rng(11)
SCL_DROP = (0, 3, 8, 9, 10, 11)
NDVI_T = Affine(10.0, 0, 600000.0, 0, -10.0, 5700000.0)
SCL_T = Affine(20.0, 0, 600000.0, 0, -20.0, 5700000.0)
BOTH = pytest.mark.parametrize("engine", ["local", pytest.param("spark", marks=pytest.mark.spark)])


def _ndvi_and_scl(
    folder: Path, name: str, shape: tuple[int, int] = (100, 90)
) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    ndvi = RNG.integers(0, 251, shape, dtype=np.uint8)
    ndvi[RNG.random(shape) < 0.05] = 255
    scl = RNG.choice(np.array([0, 3, 4, 5, 6, 8, 9, 10, 11], np.uint8), (shape[0] // 2, shape[1] // 2))
    a = write_raster(folder / f"{name}_NDVI.tif", ndvi, transform=NDVI_T, nodata=255, scale=0.004, offset=-0.08)
    b = write_raster(folder / f"{name}_SCL.tif", scl, transform=SCL_T, nodata=0, block=32)
    return a, b, ndvi, scl


def _expected_masked(ndvi: np.ndarray, scl: np.ndarray) -> tuple[np.ndarray, int, int]:
    """(counts per DN, nodata, masked) by hand: SCL repeated 2x2 onto the 10 m grid."""
    scl10 = np.repeat(np.repeat(scl, 2, axis=0), 2, axis=1)
    nodata = ndvi == 255
    dropped = np.isin(scl10, SCL_DROP)
    counts = np.bincount(ndvi[~nodata & ~dropped], minlength=256)
    return counts, int(nodata.sum()), int((dropped & ~nodata).sum())


def test_scl_mask_at_half_resolution(tmp_path: Path) -> None:
    a, b, ndvi, scl = _ndvi_and_scl(tmp_path, "x")
    h = histogram_of(str(a), uint8_bins(), ReadSpec(mask_href=str(b), mask_values=SCL_DROP))
    counts, nodata, masked = _expected_masked(ndvi, scl)
    np.testing.assert_array_equal(h.counts, counts)
    assert (h.nodata, h.masked) == (nodata, masked) and masked > 0
    assert h.pixels == ndvi.size


@BOTH
def test_masked_grouped_job_equals_numpy_per_month(tmp_path: Path, engine: str, spark: Any) -> None:
    days = [date(2024, 5, 3), date(2024, 5, 28), date(2024, 6, 2), date(2024, 7, 1)]
    scenes, expected = [], {}
    for i, day in enumerate(days):
        a, b, ndvi, scl = _ndvi_and_scl(tmp_path / str(i), f"S2A_{day:%Y%m%d}")
        scenes.append(Scene(id=a.stem, href=str(a), day=day, extra_hrefs={"SCENECLASSIFICATION": str(b)}))
        counts, nodata, masked = _expected_masked(ndvi, scl)
        month = f"{day:%Y-%m}"
        prev = expected.get(month, (0, 0, 0))
        expected[month] = (prev[0] + counts, prev[1] + nodata, prev[2] + masked)
    over = Overrides(mask_asset="SCENECLASSIFICATION", mask_values=SCL_DROP)
    result = compute_histogram(
        scenes,
        uint8_bins(),
        engine=engine,
        spark=spark if engine == "spark" else None,
        workers=2,
        overrides=over,
        group_by="month",
    )
    assert list(result.groups) == ["2024-05", "2024-06", "2024-07"]
    for month, (counts, nodata, masked) in expected.items():
        g = result.groups[month]
        np.testing.assert_array_equal(g.counts, counts, err_msg=month)
        assert (g.nodata, g.masked) == (nodata, masked), month
    total = sum(e[0] for e in expected.values())
    np.testing.assert_array_equal(result.histogram.counts, total)
    assert result.histogram.masked == sum(e[2] for e in expected.values())


def _even_odd_inside(px: np.ndarray, py: np.ndarray, rings: list[list[list[float]]]) -> np.ndarray:
    """Ray casting over every ring (holes included): the brute-force point-in-polygon test."""
    inside = np.zeros(px.shape, dtype=bool)
    for ring in rings:
        for (x1, y1), (x2, y2) in pairwise(ring):
            crosses = (y1 > py) != (y2 > py)
            with np.errstate(divide="ignore", invalid="ignore"):
                x_at = (x2 - x1) * (py - y1) / (y2 - y1) + x1
            inside ^= crosses & (px < x_at)
    return inside


@BOTH
def test_geojson_polygon_with_a_hole(tmp_path: Path, engine: str, spark: Any) -> None:
    shape, t = (120, 150), Affine(0.001, 0, 5.0, 0, -0.001, 51.0)
    data = RNG.integers(0, 256, shape, dtype=np.uint8)
    path = write_raster(tmp_path / "wgs.tif", data, crs="EPSG:4326", transform=t, block=32)
    outer = [[5.01013, 50.98017], [5.13021, 50.90033], [5.14007, 50.97511], [5.01013, 50.98017]]
    hole = [[5.06011, 50.96019], [5.11003, 50.95013], [5.10017, 50.93027], [5.06011, 50.96019]]
    geojson = tmp_path / "aoi.geojson"
    geojson.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [outer, hole]}}
                ],
            }
        )
    )
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    px, py = 5.0 + 0.001 * (cols + 0.5), 51.0 - 0.001 * (rows + 0.5)
    inside = _even_odd_inside(px, py, [outer, hole])
    result = compute_histogram(
        [Scene(id="w", href=str(path))],
        BinSpec.per_digital_number("uint8"),
        load_geojson(geojson),
        engine=engine,
        spark=spark if engine == "spark" else None,
    )
    np.testing.assert_array_equal(result.histogram.counts, np.bincount(data[inside], minlength=256))
    assert 0 < inside.sum() < inside.size


def test_geojson_in_a_projected_crs(tmp_path: Path) -> None:
    data = RNG.integers(0, 256, (80, 80), dtype=np.uint8)
    path = write_raster(tmp_path / "utm.tif", data, transform=NDVI_T, block=32)
    x0, x1, y0, y1 = 600101.0, 600559.0, 5699291.0, 5699859.0
    box = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    geojson = tmp_path / "utm.geojson"
    geojson.write_text(
        json.dumps(
            {"type": "Polygon", "coordinates": [box], "crs": {"type": "name", "properties": {"name": "EPSG:32631"}}}
        )
    )
    h = histogram_of(str(path), BinSpec.per_digital_number("uint8"), ReadSpec(aoi=load_geojson(geojson)))
    rows, cols = np.mgrid[0:80, 0:80]
    cx, cy = 600000.0 + 10.0 * (cols + 0.5), 5700000.0 - 10.0 * (rows + 0.5)
    inside = (cx > x0) & (cx < x1) & (cy > y0) & (cy < y1)
    np.testing.assert_array_equal(h.counts, np.bincount(data[inside], minlength=256))
    assert inside.sum() == 46 * 57


def test_all_touched_takes_every_cell_the_box_overlaps(tmp_path: Path) -> None:
    shape, t = (60, 70), Affine(0.01, 0, 4.0, 0, -0.01, 52.0)
    data = RNG.integers(0, 256, shape, dtype=np.uint8)
    path = write_raster(tmp_path / "w.tif", data, crs="EPSG:4326", transform=t, block=None)
    bbox = (4.1234, 51.6543, 4.4321, 51.8765)
    bins = BinSpec.per_digital_number("uint8")
    touched = histogram_of(str(path), bins, ReadSpec(aoi=AOI.from_bbox(bbox), all_touched=True))
    centres = histogram_of(str(path), bins, ReadSpec(aoi=AOI.from_bbox(bbox)))
    c0, c1 = int((bbox[0] - 4.0) // 0.01), int((bbox[2] - 4.0) // 0.01)
    r0, r1 = int((52.0 - bbox[3]) // 0.01), int((52.0 - bbox[1]) // 0.01)
    np.testing.assert_array_equal(touched.counts, np.bincount(data[r0 : r1 + 1, c0 : c1 + 1].ravel(), minlength=256))
    assert centres.count < touched.count


def test_group_keys() -> None:
    from histcalc.plan import group_key

    s = Scene(id="S2B_20240506T104619_31UFS_NDVI_10M_V200", href="/x.tif", day=date(2024, 5, 6))
    assert [group_key(s, g) for g in ("date", "month", "year", "tile", "item", None)] == [
        "2024-05-06",
        "2024-05",
        "2024",
        "31UFS",
        s.id,
        "",
    ]
