"""Shared fixtures: tiny rasters written to tmp_path, a brute-force reference, a Spark session."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import Affine

from histcalc.bins import BinSpec


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """In CI a test skipped for a missing tool is a failure: CI installs every tool, so a skip hides one."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and "not installed" in str(report.longrepr):
        report.outcome = "failed"


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Unit tests never reach past 127.0.0.1: connecting elsewhere raises at once."""
    if request.node.get_closest_marker("servers") or request.node.get_closest_marker("cluster"):
        return
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1") or "/" in host):
            raise OSError(f"network access to {host} blocked in tests")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: str = "EPSG:32631",
    transform: Affine | None = None,
    nodata: float | None = None,
    scale: float = 1.0,
    offset: float = 0.0,
    block: int | None = 64,
    mask: np.ndarray | None = None,
) -> Path:
    """A GeoTIFF of one band; tiled with ``block`` px tiles, or striped when ``block`` is None."""
    height, width = data.shape
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": transform or Affine(100.0, 0, 600000.0, 0, -100.0, 5700000.0),
        "nodata": nodata,
        "compress": "deflate",
    }
    if block:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        dst.scales, dst.offsets = (scale,), (offset,)
        if mask is not None:
            dst.write_mask(mask.astype(np.uint8) * 255)
    return path


def brute_force(
    paths: list[Path],
    edges: np.ndarray,
    bbox: tuple[float, float, float, float] | None = None,
    scale: float | None = None,
    offset: float | None = None,
) -> dict[str, Any]:
    """The reference: every pixel of every file, in plain numpy (centre-in-bbox tested in lon/lat)."""
    values, nodata_total = [], 0
    for path in paths:
        with rasterio.open(path) as src:
            arr = src.read(1)
            valid = src.read_masks(1) != 0 if src.nodata is None else np.ones(arr.shape, bool)
            s = src.scales[0] if scale is None else scale
            o = src.offsets[0] if offset is None else offset
            nodata = src.nodata
            inside = np.ones(arr.shape, bool)
            if bbox is not None:
                rows, cols = np.mgrid[0 : src.height, 0 : src.width]
                t = src.transform
                xs = t.c + t.a * (cols + 0.5) + t.b * (rows + 0.5)
                ys = t.f + t.d * (cols + 0.5) + t.e * (rows + 0.5)
                lon, lat = Transformer.from_crs(src.crs, "EPSG:4326", always_xy=True).transform(xs, ys)
                inside = (lon >= bbox[0]) & (lon <= bbox[2]) & (lat >= bbox[1]) & (lat <= bbox[3])
        if nodata is not None:
            valid &= ~(np.isnan(arr) if np.isnan(nodata) else arr == nodata)
        if arr.dtype.kind == "f":
            valid &= ~np.isnan(arr)
        nodata_total += int((inside & ~valid).sum())
        values.append(arr[inside & valid].astype(np.float64) * s + o)
    allv = np.concatenate(values) if values else np.zeros(0)
    counts, _ = np.histogram(allv, bins=edges)
    return {
        "counts": counts.astype(np.int64),
        "below": int((allv < edges[0]).sum()),
        "above": int((allv > edges[-1]).sum()),
        "nodata": nodata_total,
        "values": allv[(allv >= edges[0]) & (allv <= edges[-1])],
    }


def assert_matches(result: Any, ref: dict[str, Any]) -> None:
    h = result.histogram
    np.testing.assert_array_equal(h.counts, ref["counts"])
    assert (h.below, h.above, h.nodata) == (ref["below"], ref["above"], ref["nodata"])
    if ref["values"].size:
        assert h.vmin == ref["values"].min() and h.vmax == ref["values"].max()
        assert h.moments.mean == pytest.approx(ref["values"].mean(), rel=1e-9, abs=1e-12)
        assert h.moments.std == pytest.approx(ref["values"].std(), rel=1e-7, abs=1e-12)


def uint8_bins() -> BinSpec:
    return BinSpec.per_digital_number("uint8", 0.004, -0.08)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """One real Spark session (local mode, 2 cores) for the whole test run."""
    from histcalc.engines.spark import session

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    s = session("local[2]", app_name="histcalc-tests")
    yield s
    s.stop()
