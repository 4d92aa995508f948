"""A synthetic, Terrascope-shaped NDVI V2 dataset with its static STAC catalog.

Tile 31UFS geometry (EPSG:32631, 109.8 km square), uint8 COGs with nodata 255, scale 0.004
and offset -0.08, Terrascope file names and folder layout, a scene every five days from
2024-05-01 to 2024-06-10, a 20 m scene classification (SCL) beside each NDVI file, and
smooth fields that green up over the season with clouds, water and a swath edge of nodata.

Each acquisition also has the real neighbours of 31UFS on the Sentinel-2 grid: 31UGS to the east (the same
zone, overlapping it by 9.8 km) and 32ULB across the UTM zone edge at 6 degrees east, so that ``--overlaps``
has overlapping tiles to work on. The fields, clouds and water are laid on the ground (31UFS's frame), so
the tiles agree where they overlap, up to each tile's own sensor noise and resampling; 31UFS's files are
the same as before the neighbours came.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

COLLECTION = "terrascope-s2-ndvi-v2"
TILE = "31UFS"
EPSG = 32631
ORIGIN = (600000.0, 5700000.0)  # upper-left corner of tile 31UFS
# Upper-left corners of 31UFS and its real neighbours: east in the same zone, and across the zone edge.
TILES: dict[str, tuple[int, tuple[float, float]]] = {
    TILE: (EPSG, ORIGIN),
    "31UGS": (32631, (700000.0, 5700000.0)),
    "32ULB": (32632, (300000.0, 5700000.0)),
}
TILE_METRES = 109800.0
SCALE, OFFSET, NODATA = 0.004, -0.08, 255
MOUNT = Path("data/MTDA/TERRASCOPE_Sentinel2/NDVI_V2")
DEFAULT_SIZE = 1830  # 60 m pixels: the demo job runs in well under a minute
FULL_SIZE = 10980


@dataclass(frozen=True)
class DemoScene:
    platform: str
    day: date
    tile: str = TILE

    @property
    def stamp(self) -> str:
        return f"{self.day:%Y%m%d}T104621"

    @property
    def product(self) -> str:
        return f"{self.platform}_{self.stamp}_{self.tile}_NDVI_V200"

    def file_name(self, layer: str) -> str:
        return f"{self.platform}_{self.stamp}_{self.tile}_{layer}_V200.tif"


def demo_scenes(
    start: date = date(2024, 5, 1), end: date = date(2024, 6, 10), every: int = 5, tiles: tuple[str, ...] = (TILE,)
) -> list[DemoScene]:
    days = [start + timedelta(days=d) for d in range(0, (end - start).days + 1, every)]
    return [DemoScene("S2A" if i % 2 == 0 else "S2B", day, tile) for i, day in enumerate(days) for tile in tiles]


def ensure(root: str | Path, size: int = DEFAULT_SIZE, tiles: tuple[str, ...] = tuple(TILES)) -> Path:
    """The demo catalog under ``root`` (31UFS and its neighbours), unless the same one is already there."""
    marker = Path(root) / "histcalc-demo.json"
    made = {"size": size, "tiles": list(tiles)}
    if marker.exists() and json.loads(marker.read_text()) == made:
        return Path(root).resolve() / "catalog.json"
    catalog = generate(root, size, tiles=tiles)
    marker.write_text(json.dumps(made))
    return catalog


def generate(root: str | Path, size: int = DEFAULT_SIZE, seed: int = 2024, tiles: tuple[str, ...] = (TILE,)) -> Path:
    """Write the dataset of ``tiles`` (default 31UFS alone; :data:`TILES` has its neighbours) under ``root``;
    returns the path of its ``catalog.json``."""
    root = Path(root).resolve()
    items = []
    days = sorted({s.day for s in demo_scenes()})
    for scene in demo_scenes(tiles=tiles):
        folder = root / MOUNT / f"{scene.day:%Y/%m/%d}" / scene.product
        folder.mkdir(parents=True, exist_ok=True)
        ndvi_dn, scl = _scene_layers(size, days.index(scene.day), seed, scene.tile)
        ndvi_path = folder / scene.file_name("NDVI_10M")
        scl_path = folder / scene.file_name("SCENECLASSIFICATION_20M")
        epsg, origin = TILES[scene.tile]
        _write_cog(ndvi_path, ndvi_dn, TILE_METRES / size, epsg, origin, nodata=NODATA, scale=SCALE, offset=OFFSET)
        _write_cog(scl_path, scl, TILE_METRES / scl.shape[0], epsg, origin, nodata=0)
        items.append(_item(root, scene, ndvi_path, scl_path, size))
    catalog = _write_catalog(root, items)
    log.info("demo dataset: %d scenes of %d px under %s", len(items), size, root)
    return catalog


def _scene_layers(
    size: int, index: int, seed: int, tile: str = TILE
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """NDVI digital numbers (10 m grid) and SCL classes (20 m grid) of ``tile`` for the ``index``-th date.

    The ground is laid out in 31UFS's frame (x, y: 0..1 across it); the clouds of a date are the same on
    every tile; 31UFS draws its noise first from the date's generator (its files predate the neighbours).
    """
    rng = np.random.default_rng(seed + index)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    field = 0.35 + 0.22 * np.sin(9 * x + 2 * y) * np.cos(7 * y - x) + 0.1 * np.sin(31 * x * y)
    noise = rng.normal(0, 0.03, (size, size)).astype(np.float32)
    water = np.abs(y - 0.55 - 0.1 * np.sin(6 * x)) < 0.012
    water_noise = rng.standard_normal(int(water.sum()))
    clouds_at = _blob_params(rng, count=3 + index % 4, radius=0.06)
    if tile != TILE:  # the same ground and clouds seen from the neighbour's pixels, with its own noise
        x, y = _in_first_tile_frame(tile, size)
        field = 0.35 + 0.22 * np.sin(9 * x + 2 * y) * np.cos(7 * y - x) + 0.1 * np.sin(31 * x * y)
        own = np.random.default_rng([seed, index, list(TILES).index(tile)])
        noise = own.normal(0, 0.03, (size, size)).astype(np.float32)
        water = np.abs(y - 0.55 - 0.1 * np.sin(6 * x)) < 0.012
        water_noise = own.standard_normal(int(water.sum()))
    ndvi = field + 0.03 * index + noise
    ndvi[water] = -0.04 + 0.02 * water_noise
    clouds = _blobs(clouds_at, x, y)
    ndvi[clouds] = 0.02 + 0.03 * rng.random(int(clouds.sum()))
    dn = np.clip(np.rint((ndvi - OFFSET) / SCALE), 0, 250).astype(np.uint8)
    # Alternate relative orbits: every other date the tile's west lies outside the swath (no data).
    swath = (x - 0.3 * y < 0.33) if index % 2 else np.zeros(x.shape, dtype=bool)
    dn[swath] = NODATA
    scl = np.where(water, 6, np.where(ndvi > 0.3, 4, 5)).astype(np.uint8)
    scl[clouds] = 9
    scl[np.roll(clouds, size // 40, axis=1) & ~clouds] = 3  # cloud shadows
    scl[swath] = 0
    return dn, scl[::2, ::2].copy()


def _in_first_tile_frame(tile: str, size: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """``tile``'s pixel centres in 31UFS's frame (0..1 across it), through the ground (EPSG:32631)."""
    from pyproj import Transformer

    epsg, (x0, y0) = TILES[tile]
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    res = TILE_METRES / size
    east, north = x0 + cols * res, y0 - rows * res
    if epsg != EPSG:
        east, north = Transformer.from_crs(epsg, EPSG, always_xy=True).transform(east, north)
    x = (east - ORIGIN[0]) / TILE_METRES - 0.5 / size  # 31UFS's own x is the pixel's left edge / size
    y = (ORIGIN[1] - north) / TILE_METRES - 0.5 / size
    return x.astype(np.float32), y.astype(np.float32)


def _blob_params(rng: np.random.Generator, count: int, radius: float) -> list[tuple[Any, Any, Any]]:
    """Centres and radii of ``count`` clouds (numpy float64 scalars: the float32 ground promotes to them)."""
    xs, ys, rs = rng.random(count), rng.random(count), radius * (0.5 + rng.random(count))
    return list(zip(xs, ys, rs, strict=True))


def _blobs(params: list[tuple[Any, Any, Any]], x: Any, y: Any) -> npt.NDArray[np.bool_]:
    out = np.zeros(x.shape, dtype=bool)
    for cx, cy, r in params:
        out |= (x - cx) ** 2 + (y - cy) ** 2 < r * r
    return out


def _write_cog(
    path: Path,
    data: npt.NDArray[np.uint8],
    res: float,
    epsg: int,
    origin: tuple[float, float],
    nodata: int,
    scale: float = 1.0,
    offset: float = 0.0,
) -> None:
    import rasterio.shutil
    from rasterio.io import MemoryFile
    from rasterio.transform import from_origin

    profile = {
        "driver": "GTiff",
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": "uint8",
        "crs": f"EPSG:{epsg}",
        "transform": from_origin(*origin, res, res),
        "nodata": nodata,
    }
    with MemoryFile() as mem:
        with mem.open(**profile) as tmp:
            tmp.write(data, 1)
            tmp.scales, tmp.offsets = (scale,), (offset,)
        with mem.open() as tmp:
            rasterio.shutil.copy(
                tmp, path, driver="COG", compress="DEFLATE", blocksize=512, overview_resampling="nearest"
            )


def _item(root: Path, scene: DemoScene, ndvi: Path, scl: Path, size: int) -> dict[str, Any]:
    from rasterio.warp import transform_bounds

    res = TILE_METRES / size
    epsg, origin = TILES[scene.tile]
    bounds = (origin[0], origin[1] - TILE_METRES, origin[0] + TILE_METRES, origin[1])
    w, s, e, n = transform_bounds(f"EPSG:{epsg}", "EPSG:4326", *bounds, densify_pts=21)
    item_id = scene.product.replace("_NDVI_V200", "_NDVI_10M_V200")
    band = {"nodata": NODATA, "data_type": "uint8", "scale": SCALE, "offset": OFFSET, "spatial_resolution": 10}

    def asset(path: Path, title: str, raster: dict[str, Any]) -> dict[str, Any]:
        return {
            "href": _rel(path, root / "items" / item_id),
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "title": title,
            "roles": ["data"],
            "alternate": {"local": {"href": str(path)}},
            "raster:bands": [raster],
        }

    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/alternate-assets/v1.1.0/schema.json",
        ],
        "id": item_id,
        "collection": COLLECTION,
        "geometry": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        "bbox": [w, s, e, n],
        "properties": {
            "datetime": f"{scene.day.isoformat()}T10:46:21Z",
            "platform": "sentinel-2a" if scene.platform == "S2A" else "sentinel-2b",
            "tileId": scene.tile,
            "proj:epsg": epsg,
            "proj:shape": [size, size],
            "proj:transform": [res, 0.0, origin[0], 0.0, -res, origin[1]],
        },
        "assets": {
            "NDVI": asset(ndvi, "NDVI", band),
            "SCENECLASSIFICATION": asset(
                scl, "Scene classification (SCL, 20 m)", {"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}
            ),
        },
        "links": [
            {"rel": "collection", "href": "../../collection.json", "type": "application/json"},
            {"rel": "parent", "href": "../../collection.json", "type": "application/json"},
            {"rel": "root", "href": "../../catalog.json", "type": "application/json"},
        ],
    }


def _rel(path: Path, base: Path) -> str:
    import os

    return os.path.relpath(path, base)


def _write_catalog(root: Path, items: list[dict[str, Any]]) -> Path:
    for item in items:
        folder = root / "items" / item["id"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{item['id']}.json").write_text(json.dumps(item, indent=1))
    ws, ss, es, ns = zip(*(i["bbox"] for i in items), strict=True)
    collection = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": COLLECTION,
        "description": "Synthetic Terrascope Sentinel-2 NDVI V2 (histcalc demo data)",
        "license": "CC-BY-4.0",
        "extent": {
            "spatial": {"bbox": [[min(ws), min(ss), max(es), max(ns)]]},
            "temporal": {"interval": [[items[0]["properties"]["datetime"], items[-1]["properties"]["datetime"]]]},
        },
        "links": [
            {"rel": "root", "href": "./catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "./catalog.json", "type": "application/json"},
            *(
                {"rel": "item", "href": f"./items/{i['id']}/{i['id']}.json", "type": "application/geo+json"}
                for i in items
            ),
        ],
    }
    catalog = {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "histcalc-demo",
        "description": "histcalc demo catalog",
        "links": [
            {"rel": "root", "href": "./catalog.json", "type": "application/json"},
            {"rel": "child", "href": "./collection.json", "type": "application/json"},
        ],
    }
    (root / "collection.json").write_text(json.dumps(collection, indent=1))
    (root / "catalog.json").write_text(json.dumps(catalog, indent=1))
    return root / "catalog.json"
