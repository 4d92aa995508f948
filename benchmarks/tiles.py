"""Terrascope-like benchmark tiles: uint8 NDVI COGs of tile 31UFS, written once into a cache folder.

Each tile is generated in strips of 512 rows (memory stays ~150 MB whatever the size) into a
tiled scratch GeoTIFF, then copied to a DEFLATE COG with 512 px blocks and overviews, like the
Terrascope NDVI V2 files: nodata 255, scale 0.004, offset -0.08, DN 0..250 valid. Values are a
smooth field with per-pixel noise (so DEFLATE works about as hard as on real data), a river of low
values, a few clouds, and a swath edge of nodata whose position changes per date.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

# The tile's geometry, value encoding and file names are the demo dataset's: one source for both.
from histcalc.demo import EPSG, NODATA, OFFSET, ORIGIN, SCALE, TILE_METRES, DemoScene

GENERATOR_VERSION = 1  # bump when the pixels change: cached tiles of another version are remade
STRIP = 512


@dataclass(frozen=True)
class TileSpec:
    index: int
    size: int

    @property
    def day(self) -> date:
        return date(2024, 5, 1) + timedelta(days=5 * self.index)

    @property
    def name(self) -> str:
        platform = "S2A" if self.index % 2 == 0 else "S2B"
        return DemoScene(platform, self.day).file_name("NDVI_10M")


def ensure_tiles(cache: Path, count: int, size: int, workers: int = 1) -> list[Path]:
    """Paths of ``count`` tiles of ``size`` px under ``cache``, generating the missing ones."""
    folder = cache / f"{size}px"
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "generator.json"
    if marker.exists() and json.loads(marker.read_text()).get("version") != GENERATOR_VERSION:
        for old in folder.glob("*.tif"):
            old.unlink()
    marker.write_text(json.dumps({"version": GENERATOR_VERSION, "size": size}))
    specs = [TileSpec(i, size) for i in range(count)]
    missing = [s for s in specs if not (folder / s.name).exists()]
    if missing and workers > 1 and len(missing) > 1:
        with ProcessPoolExecutor(min(workers, len(missing))) as pool:
            list(pool.map(_write_tile, [folder] * len(missing), missing))
    else:
        for spec in missing:
            _write_tile(folder, spec)
    return [folder / s.name for s in specs]


def _write_tile(folder: Path, spec: TileSpec) -> Path:
    import rasterio
    import rasterio.shutil
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    target = folder / spec.name
    scratch = folder / f".{spec.name}.scratch.tif"
    partial = folder / f".{spec.name}.partial.tif"
    res = TILE_METRES / spec.size
    profile = {
        "driver": "GTiff",
        "width": spec.size,
        "height": spec.size,
        "count": 1,
        "dtype": "uint8",
        "crs": f"EPSG:{EPSG}",
        "transform": from_origin(*ORIGIN, res, res),
        "nodata": NODATA,
        "tiled": True,
        "blockxsize": STRIP,
        "blockysize": STRIP,
    }
    clouds = _cloud_centres(spec)
    with rasterio.open(scratch, "w", **profile) as dst:
        dst.scales, dst.offsets = (SCALE,), (OFFSET,)
        for row in range(0, spec.size, STRIP):
            height = min(STRIP, spec.size - row)
            dst.write(_strip(spec, row, height, clouds), 1, window=Window(0, row, spec.size, height))
    with rasterio.open(scratch) as src:
        rasterio.shutil.copy(
            src, partial, driver="COG", compress="DEFLATE", blocksize=512, overview_resampling="nearest"
        )
    scratch.unlink()
    os.replace(partial, target)  # atomic: an interrupted run never leaves a half tile behind
    return target


def _cloud_centres(spec: TileSpec) -> np.ndarray:
    rng = np.random.default_rng([2024, spec.index])
    count = 3 + spec.index % 4
    radius = 0.06 * (0.5 + rng.random(count))
    return np.stack([rng.random(count), rng.random(count), radius], axis=1).astype(np.float32)


def _strip(spec: TileSpec, row: int, height: int, clouds: np.ndarray) -> np.ndarray:
    """Digital numbers of rows ``row`` .. ``row + height`` (x, y in tile units 0..1)."""
    size = spec.size
    y = (np.arange(row, row + height, dtype=np.float32) / size)[:, None]
    x = (np.arange(size, dtype=np.float32) / size)[None, :]
    rng = np.random.default_rng([2024, spec.index, row])
    ndvi = 0.35 + 0.22 * np.sin(9 * x + 2 * y) * np.cos(7 * y - x) + 0.1 * np.sin(31 * x * y)
    ndvi = ndvi + 0.03 * spec.index + rng.normal(0, 0.03, (height, size)).astype(np.float32)
    water = np.abs(y - 0.55 - 0.1 * np.sin(6 * x)) < 0.012
    ndvi[water] = -0.04
    for cx, cy, r in clouds:
        ndvi[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = 0.03
    dn = np.clip(np.rint((ndvi - OFFSET) / SCALE), 0, 250).astype(np.uint8)
    dn[np.broadcast_to(x - 0.3 * y < 0.25 + 0.06 * (spec.index % 3), dn.shape)] = NODATA
    return dn
