"""Every count checked against plain numpy over every pixel, on both engines.

The rasters are tiny and odd-sized (not multiples of their block size), in three CRSs,
with nodata, internal masks, NaN/Inf, scale/offset, and an AOI that cuts through them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.transform import Affine

from histcalc import AOI, BinSpec, Overrides, Scene, compute_histogram
from histcalc.raster import ReadSpec, histogram_of
from tests.conftest import assert_matches, brute_force, uint8_bins, write_raster

RNG = np.random.default_rng(7)
# Tile 31UFS corner region and a box that cuts it (lon/lat): pixels on both sides of every edge.
UTM31 = Affine(100.0, 0, 600000.0, 0, -100.0, 5700000.0)
BBOX_31 = (4.50, 51.30, 4.80, 51.42)


def _scene(path: Path, **kw: Any) -> Scene:
    return Scene(id=path.stem, href=str(path), **kw)


def _uint8(path: Path, shape: tuple[int, int] = (217, 300), **kw: Any) -> Path:
    data = RNG.integers(0, 251, shape, dtype=np.uint8)
    data[RNG.random(shape) < 0.1] = 255
    return write_raster(path, data, nodata=255, scale=0.004, offset=-0.08, **kw)


@pytest.mark.parametrize("block", [64, 256, None], ids=["tiled64", "tiled256", "striped"])
def test_uint8_whole_file(tmp_path: Path, block: int | None) -> None:
    path = _uint8(tmp_path / "a.tif", block=block)
    h = histogram_of(str(path), uint8_bins(), ReadSpec())
    ref = brute_force([path], uint8_bins().array)
    np.testing.assert_array_equal(h.counts, ref["counts"])
    assert h.nodata == ref["nodata"] > 0


def test_parts_add_up_to_the_whole_file(tmp_path: Path) -> None:
    path = _uint8(tmp_path / "a.tif", shape=(1000, 130), block=64)
    whole = histogram_of(str(path), uint8_bins(), ReadSpec())
    parts = [histogram_of(str(path), uint8_bins(), ReadSpec(part=i, parts=5)) for i in range(5)]
    total = parts[0] + parts[1] + parts[2] + parts[3] + parts[4]
    np.testing.assert_array_equal(total.counts, whole.counts)
    assert total.nodata == whole.nodata and total.pixels == 1000 * 130


@pytest.mark.parametrize(
    ("dtype", "nodata", "scale", "offset"),
    [("uint16", 0, 0.0001, 0.0), ("int16", -32768, 0.5, 10.0), ("int16", None, 1.0, 0.0)],
)
def test_sixteen_bit_integers_one_bin_per_dn(
    tmp_path: Path, dtype: str, nodata: Any, scale: float, offset: float
) -> None:
    info = np.iinfo(dtype)
    data = RNG.integers(info.min, info.max, (97, 131), dtype=dtype, endpoint=True)
    if nodata is not None:
        data[:5] = nodata
    path = write_raster(tmp_path / "x.tif", data, nodata=nodata, scale=scale, offset=offset, block=32)
    bins = BinSpec.per_digital_number(dtype, scale, offset)
    h = histogram_of(str(path), bins, ReadSpec())
    ref = brute_force([path], bins.array)
    np.testing.assert_array_equal(h.counts, ref["counts"])
    assert h.nodata == ref["nodata"] and h.count + h.nodata == data.size


def test_float32_with_nan_inf_nodata_and_out_of_range(tmp_path: Path) -> None:
    data = RNG.normal(0.5, 0.4, (150, 77)).astype(np.float32)
    data[0, :10] = np.nan
    data[1, :3] = np.inf
    data[1, 3:5] = -np.inf
    data[2, :7] = -9999.0
    path = write_raster(tmp_path / "f.tif", data, nodata=-9999.0, block=32)
    bins = BinSpec.uniform(50, 0.0, 1.0)
    h = histogram_of(str(path), bins, ReadSpec())
    ref = brute_force([path], bins.array)
    assert_matches(type("R", (), {"histogram": h})(), ref)
    assert h.nodata == 17 and h.above >= 3 and h.below >= 2


def test_internal_mask_band_counts_as_nodata(tmp_path: Path) -> None:
    data = RNG.integers(0, 256, (90, 70), dtype=np.uint8)
    mask = RNG.random((90, 70)) > 0.3
    path = write_raster(tmp_path / "m.tif", data, nodata=None, mask=mask, block=32)
    bins = BinSpec.per_digital_number("uint8")
    h = histogram_of(str(path), bins, ReadSpec())
    np.testing.assert_array_equal(h.counts, np.bincount(data[mask], minlength=256))
    assert h.nodata == int((~mask).sum())


def test_scale_and_offset_overrides(tmp_path: Path) -> None:
    path = _uint8(tmp_path / "a.tif")
    bins = BinSpec.uniform(20, 0.0, 100.0)
    h = histogram_of(str(path), bins, ReadSpec(scale=0.5, offset=1.0))
    ref = brute_force([path], bins.array, scale=0.5, offset=1.0)
    np.testing.assert_array_equal(h.counts, ref["counts"])
    assert (h.below, h.above) == (ref["below"], ref["above"])


def _mixed_dataset(root: Path) -> tuple[list[Path], tuple[float, float, float, float]]:
    """Three files in three CRSs, all cut by one lon/lat box near the UTM 31/32 border."""
    bbox = (5.90, 51.00, 6.15, 51.10)
    a = _uint8(
        root / "utm31.tif",
        shape=(201, 203),
        transform=Affine(60.0, 0, 700000.0, 0, -60.0, 5665000.0),
        crs="EPSG:32631",
        block=64,
    )
    b = _uint8(
        root / "utm32.tif",
        shape=(150, 333),
        transform=Affine(50.0, 0, 280000.0, 0, -50.0, 5666000.0),
        crs="EPSG:32632",
        block=32,
    )
    c = _uint8(
        root / "wgs84.tif",
        shape=(120, 190),
        transform=Affine(0.0021, 0, 5.87, 0, -0.0013, 51.13),
        crs="EPSG:4326",
        block=None,
    )
    return [a, b, c], bbox


def test_aoi_cuts_three_crss_pixel_centre_rule(tmp_path: Path) -> None:
    paths, bbox = _mixed_dataset(tmp_path)
    aoi = AOI.from_bbox(bbox)
    for path in paths:
        h = histogram_of(str(path), uint8_bins(), ReadSpec(aoi=aoi))
        ref = brute_force([path], uint8_bins().array, bbox=bbox)
        with rasterio.open(path) as src:
            assert 0 < h.pixels < src.width * src.height, f"the box must cut {path}"
        np.testing.assert_array_equal(h.counts, ref["counts"], err_msg=str(path))
        assert h.nodata == ref["nodata"], path


def test_aoi_that_misses_a_file_counts_nothing(tmp_path: Path) -> None:
    path = _uint8(tmp_path / "a.tif")
    h = histogram_of(str(path), uint8_bins(), ReadSpec(aoi=AOI.from_bbox((10.0, 40.0, 10.5, 40.5))))
    assert h.pixels == 0


@pytest.mark.spark
@pytest.mark.parametrize("engine", ["local", "spark"])
def test_engines_equal_brute_force_on_mixed_dataset(tmp_path: Path, engine: str, spark: Any) -> None:
    paths, bbox = _mixed_dataset(tmp_path)
    scenes = [_scene(p) for p in paths]
    result = compute_histogram(
        scenes, None, AOI.from_bbox(bbox), engine=engine, spark=spark if engine == "spark" else None, workers=2
    )
    assert result.files_total == 3 and not result.files_failed
    assert result.histogram.bins == uint8_bins()  # default: one bin per DN, physical units
    assert_matches(result, brute_force(paths, uint8_bins().array, bbox=bbox))


@pytest.mark.spark
@pytest.mark.parametrize("engine", ["local", "spark"])
def test_engines_equal_brute_force_float_bins_no_aoi(tmp_path: Path, engine: str, spark: Any) -> None:
    """Few files, many parts each: the row shares must add up to the whole files."""
    paths = [_uint8(tmp_path / f"t{i}.tif", shape=(333 + i, 101), block=32) for i in range(2)]
    bins = BinSpec.uniform(37, 0.1, 0.8)
    result = compute_histogram(
        [_scene(p) for p in paths], bins, engine=engine, spark=spark if engine == "spark" else None, workers=2
    )
    assert_matches(result, brute_force(paths, bins.array))
    assert result.histogram.pixels == sum(333 + i for i in range(2)) * 101


@pytest.mark.spark
def test_overrides_and_catalog_scale_agree_across_engines(tmp_path: Path, spark: Any) -> None:
    path = _uint8(tmp_path / "a.tif")
    scene = _scene(path, scale=0.01, offset=0.0)  # the catalog's raster:bands wins over the file
    bins = BinSpec.uniform(25, 0.0, 2.5)
    local = compute_histogram([scene], bins, engine="local", workers=1)
    on_spark = compute_histogram([scene], bins, spark=spark)
    ref = brute_force([path], bins.array, scale=0.01, offset=0.0)
    np.testing.assert_array_equal(local.histogram.counts, ref["counts"])
    np.testing.assert_array_equal(on_spark.histogram.counts, ref["counts"])
    forced = compute_histogram([scene], bins, engine="local", workers=1, overrides=Overrides(scale=0.02))
    np.testing.assert_array_equal(
        forced.histogram.counts, brute_force([path], bins.array, scale=0.02, offset=0.0)["counts"]
    )


def test_band_selects_one_band_of_a_multiband_raster(tmp_path: Path) -> None:
    data = RNG.integers(0, 256, (3, 40, 50), dtype=np.uint8)
    path = tmp_path / "rgb.tif"
    profile = {
        "driver": "GTiff",
        "width": 50,
        "height": 40,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32631",
        "transform": UTM31,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    bins = BinSpec.per_digital_number("uint8")
    for band in (1, 2, 3):
        h = histogram_of(str(path), bins, ReadSpec(band=band))
        np.testing.assert_array_equal(h.counts, np.bincount(data[band - 1].ravel(), minlength=256))
    result = compute_histogram([_scene(path)], bins, engine="local", overrides=Overrides(band=4))
    assert "has 3 band(s), band 4 was asked for" in result.files_failed[str(path)]
