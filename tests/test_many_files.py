"""Thousands of files: the reduce moves a few partial histograms, never one per file."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from histcalc import Scene, compute_histogram
from tests.conftest import uint8_bins, write_raster

FILES = 2000


@pytest.fixture(scope="module")
def many_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Scene], np.ndarray]:
    root = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(3)
    expected = np.zeros(256, np.int64)
    scenes = []
    for i in range(FILES):
        data = rng.integers(0, 256, (6, 5), dtype=np.uint8)
        path = write_raster(root / f"f{i:04d}.tif", data, nodata=255, scale=0.004, offset=-0.08, block=None)
        expected += np.bincount(data.ravel(), minlength=256)
        scenes.append(Scene(id=path.stem, href=str(path)))
    return scenes, expected


@pytest.mark.slow
@pytest.mark.spark
def test_two_thousand_files_on_spark(many_files: tuple[list[Scene], np.ndarray], spark: Any) -> None:
    scenes, all_dns = many_files
    expected = all_dns.copy()
    result = compute_histogram(scenes, uint8_bins(), spark=spark)
    nodata = int(expected[255])
    expected[255] = 0
    np.testing.assert_array_equal(result.histogram.counts, expected)
    assert result.histogram.nodata == nodata
    assert result.files_total == FILES and len(result.files_ok) == FILES and not result.files_failed


@pytest.mark.slow
def test_two_thousand_files_local(many_files: tuple[list[Scene], np.ndarray]) -> None:
    scenes, all_dns = many_files
    result = compute_histogram(scenes, uint8_bins(), engine="local", workers=2)
    np.testing.assert_array_equal(result.histogram.counts[:255], all_dns[:255])
    assert result.histogram.nodata == all_dns[255]
    assert len(result.files_ok) == FILES
