"""The AOI's pixels per window, rasterised once per grid (histcalc.aoi_masks): rectangles are read and counted
without a mask, other shapes with one; either way the counts equal a centre-in-polygon test on every pixel."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rasterio.transform import Affine

from histcalc import BinSpec, Overrides, Scene, aoi_masks, compute_histogram
from histcalc.aoi import AOI
from histcalc.aoi_masks import WindowInside
from tests.conftest import write_raster

T = Affine(10.0, 0, 600000.0, 0, -10.0, 5700000.0)
RNG = np.random.default_rng(5)


def _centres(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.indices(shape)
    return T.c + (cols + 0.5) * T.a, T.f + (rows + 0.5) * T.e


def _polygon(ring: list[list[float]]) -> AOI:
    return AOI(json.dumps({"type": "Polygon", "coordinates": [[*ring, ring[0]]]}), "EPSG:32631")


def _scenes(tmp_path: Path, shape: tuple[int, int], dates: int) -> tuple[list[Scene], list[np.ndarray]]:
    scenes: list[Scene] = []
    arrays: list[np.ndarray] = []
    for k in range(dates):
        data = RNG.integers(0, 256, shape, dtype=np.uint8)
        valid = RNG.random(shape) > 0.1  # an internal mask band: its masked pixels are nodata
        path = write_raster(tmp_path / f"d{k}.tif", data, transform=T, block=32, mask=valid)
        scenes.append(Scene(id=f"d{k}", href=str(path), day=date(2024, 5, 1 + k)))
        arrays.append(np.where(valid, data.astype(np.int16), -1))
    return scenes, arrays


def test_window_inside_keeps_rectangles_and_masks_the_rest() -> None:
    box = np.zeros((6, 7), bool)
    box[1:4, 2:6] = True
    assert WindowInside.of(box.copy()) == WindowInside((1, 4), (2, 6))
    np.testing.assert_array_equal(WindowInside.of(box.copy()).as_mask((6, 7)), box)
    assert WindowInside.of(np.ones((6, 7), bool)).as_mask((6, 7)) is None
    assert WindowInside.of(np.zeros((6, 7), bool)).empty
    corner = box.copy()
    corner[3, 5] = False  # an L: no rectangle
    found = WindowInside.of(corner.copy())
    assert found.mask is not None and not found.empty
    np.testing.assert_array_equal(found.as_mask((6, 7)), corner)


BOX = [[600123.0, 5699021.0], [600547.0, 5699021.0], [600547.0, 5699777.0], [600123.0, 5699777.0]]
TRIANGLE = [[600013.0, 5699013.0], [600887.0, 5699113.0], [600301.0, 5699897.0]]


def _expected_inside(ring: list[list[float]], shape: tuple[int, int], all_touched: bool) -> np.ndarray:
    """Centres inside the polygon; with ``all_touched``, for the box, cells that overlap it."""
    from matplotlib.path import Path as Polygon

    x, y = _centres(shape)
    if not all_touched:
        return np.asarray(Polygon(ring).contains_points(np.c_[x.ravel(), y.ravel()]).reshape(shape))
    (w, s), (e, n) = ring[0], ring[2]
    half = T.a / 2
    return (x + half > w) & (x - half < e) & (y + half > s) & (y - half < n)


@pytest.mark.parametrize("engine", ["local", pytest.param("spark", marks=pytest.mark.spark)])
@pytest.mark.parametrize(
    ("ring", "all_touched"),
    [(BOX, False), (BOX, True), (TRIANGLE, False)],
    ids=["box (a rectangle of pixels)", "box, all touched", "triangle (a mask)"],
)
def test_aoi_counts_equal_centre_test_on_every_date(
    tmp_path: Path, ring: list[list[float]], all_touched: bool, engine: str, spark: Any
) -> None:
    shape = (100, 90)
    scenes, arrays = _scenes(tmp_path, shape, 3)
    inside = _expected_inside(ring, shape, all_touched)
    cache = aoi_masks.process_cache()
    hits = cache.hits
    result = compute_histogram(
        scenes,
        BinSpec.per_digital_number("uint8", 1.0, 0.0),
        aoi=_polygon(ring),
        group_by="date",
        engine=engine,
        spark=spark if engine == "spark" else None,
        workers=1,
        overrides=Overrides(all_touched=all_touched),
    )
    if engine == "local":
        assert cache.hits >= hits + 2  # the second and third date reuse the first one's pixels
    for scene, data in zip(scenes, arrays, strict=True):
        h = result.groups[scene.day.isoformat()]
        values = data[inside]
        np.testing.assert_array_equal(h.counts, np.bincount(values[values >= 0], minlength=256))
        assert h.nodata == int(np.count_nonzero(values < 0)) > 0
        assert h.pixels == int(inside.sum())


def test_mask_cache_keeps_a_grid_too_big_for_it_and_makes_room_for_the_next_grid() -> None:
    """Two tiles in one CRS: the first tile's windows outgrow the budget, so the windows it holds stay (they come
    back at every date); the second tile's windows then take their place (other grid, dropped first)."""
    aoi = _polygon([[600000.0, 5699000.0], [600900.0, 5699900.0], [600100.0, 5699950.0]])
    cache = aoi_masks.AoiMaskCache(max_bytes=100 * 90)  # one window's mask
    windows = [T * Affine.translation(0, 50 * k) for k in range(2)]

    def get(transform: Affine, grid: str) -> WindowInside:
        return cache.get(aoi, "EPSG:32631", aoi.geometry, transform, (100, 90), False, grid)

    for _date in range(3):
        kept = [get(w, "tile A") for w in windows]
    assert (cache.hits, cache.misses) == (2, 4)  # the first window hit on dates 2 and 3, the second never
    assert get(windows[0], "tile A") is kept[0]
    get(windows[0] * Affine.translation(-3, 0), "tile B")  # a neighbouring tile, its grid 30 m to the west
    get(windows[0], "tile A")
    assert (cache.hits, cache.misses) == (3, 6)  # tile B's window took tile A's place
