"""The label step of zonal histograms on a full tile: ``python benchmarks/zone_labels.py [--parcels N]``.

Generates N demo parcels over the demo tile 31UFS (histcalc.parcels), reads them back (histcalc.zone_files),
cuts the tile's subset in its own CRS and in the neighbouring UTM zone's, and labels the whole 10980 px grid in the
row bands the raster reader uses (centre rule, then all-touched); then the same bands with
rasterio.features.rasterize (shapely geometries, as measured in issue 10) for comparison. Prints one JSON
line of timings (seconds) and memory (MiB); one core.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from affine import Affine

from histcalc import demo
from histcalc.labels import label_layers
from histcalc.parcels import make_parcels
from histcalc.zone_files import load_zones

BAND_PIXELS = 8 * 1024 * 1024  # as histcalc.raster reads: whole-width bands of about 8 Mpx


def main(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parcels", type=int, default=100_000)
    parser.add_argument("--size", type=int, default=demo.FULL_SIZE)
    parser.add_argument("--skip-rasterio", action="store_true")
    args = parser.parse_args(argv)
    left, top = demo.ORIGIN
    bounds = (left, top - demo.TILE_METRES, left + demo.TILE_METRES, top)
    out: dict[str, Any] = {"parcels": args.parcels, "size": args.size}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "parcels.gpkg"
        out["generate_and_write_s"] = _timed(lambda: make_parcels(bounds, "EPSG:32631", args.parcels, 1, path))[1]
        with multiprocessing.get_context("spawn").Pool(1) as pool:  # a fresh process: its own peak RSS
            out["load_rss_mib"] = pool.apply(_load_memory, (path,))
        zones, out["load_s"] = _timed(lambda: load_zones(path))
    _, out["strtree_s"] = _timed(lambda: zones.tree)
    subset, out["subset_same_crs_s"] = _timed(lambda: zones.for_raster("EPSG:32631", bounds))
    _, out["subset_other_crs_s"] = _timed(lambda: zones.for_raster("EPSG:32632", (166000, 5590000, 280000, 5710000)))
    pixel = demo.TILE_METRES / args.size
    grid = Affine(pixel, 0, left, 0, -pixel, top)
    bands = _bands(args.size)
    out["labelled_pixels"], out["labels_s"] = _timed(lambda: _label(subset, grid, bands))
    out["labelled_pixels_all_touched"], out["labels_all_touched_s"] = _timed(
        lambda: _label(subset, grid, bands, all_touched=True)
    )
    if not args.skip_rasterio:
        _, out["rasterio_rasterize_s"] = _timed(lambda: _rasterio(subset, grid, bands))
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out


def _bands(size: int) -> list[tuple[int, tuple[int, int]]]:
    rows = max(1, BAND_PIXELS // size)
    return [(r, (min(rows, size - r), size)) for r in range(0, size, rows)]


def _label(subset: Any, grid: Affine, bands: list[tuple[int, tuple[int, int]]], all_touched: bool = False) -> int:
    labelled = 0
    for row, shape in bands:
        for layer in label_layers(subset, grid * Affine.translation(0, row), shape, all_touched):
            labelled += int((layer > 0).sum())
    return labelled


def _rasterio(subset: Any, grid: Affine, bands: list[tuple[int, tuple[int, int]]]) -> None:
    import numpy as np
    import shapely
    from rasterio.features import rasterize

    geoms = subset.geometries()
    for row, shape in bands:
        transform = grid * Affine.translation(0, row)
        x0, y1 = transform * (0, 0)
        x1, y0 = transform * (shape[1], shape[0])
        near = np.flatnonzero(shapely.intersects(geoms, shapely.box(x0, y0, x1, y1)))
        if len(near):
            pairs = [(geoms[k], int(k) + 1) for k in near]
            rasterize(pairs, out_shape=shape, transform=transform, fill=0, dtype="int32")


def _timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, round(time.perf_counter() - start, 3)


def _load_memory(path: Path) -> float:
    """Growth of this process's peak RSS while loading the zones (libraries imported before)."""
    import pyogrio  # noqa: F401
    import shapely  # noqa: F401

    before = _peak_kib()
    zones = load_zones(path)
    assert len(zones)
    return round((_peak_kib() - before) / 1024, 1)


def _peak_kib() -> int:
    # VmHWM, not ru_maxrss: getrusage keeps the parent's high-water mark across exec.
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
