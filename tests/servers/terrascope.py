"""A small Terrascope-like Sentinel-2 NDVI V2 archive: COG files and the STAC items describing them.

The files follow the real layout (``YYYY/MM/DD/<product>/<product>_NDVI_10M_V200.tif``, uint8,
NDVI = 0.004 * DN - 0.08, nodata 255, UTM zone 31N) but are small, so they write in well under a
second. Items carry the NDVI asset's main href (remote: HTTP or S3, chosen by the caller) and the
mounted path as ``alternate.local.href``, as the Terrascope STAC API does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin

COLLECTION = "terrascope-s2-ndvi-v2"
ASSET = "NDVI"
NODATA = 255
SCALE, OFFSET = 0.004, -0.08
CRS = "EPSG:32631"
PIXEL = 10.0
# The seed job's defaults: the query every integration test runs.
BBOX = (4.91, 51.16, 5.24, 51.27)
START, END = "2024-05-01", "2024-06-10"
# What the test servers hold (see fixtures.py).
BUCKET = "terrascope"
S3_COLLECTION = f"{COLLECTION}-s3"
PAGING_COLLECTION = "paging-test"
PAGING_COUNT = 237  # not a multiple of any page size the tests use
BROKEN_COLLECTION = "broken-hrefs"

# (tile, upper-left x, upper-left y): two overlapping pieces of tile 31UFS around the default AOI.
TILES = (("31UFS", 630_000.0, 5_682_000.0), ("31UFS", 640_000.0, 5_676_000.0))
# Acquisitions, chosen to probe inclusive whole UTC days: the first and the last instant of the
# range are in, the instants just outside are out.
TIMES = (
    "2024-04-30T23:59:59Z",  # the day before start: out
    "2024-05-01T00:00:00Z",  # first instant of start day: in
    "2024-05-03T10:46:21Z",
    "2024-06-10T23:59:59Z",  # last second of end day: in
    "2024-06-11T00:00:00Z",  # the day after end: out
)
IN_RANGE = (1, 2, 3)

STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json",
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
]


@dataclasses.dataclass(frozen=True)
class Scene:
    """One file of the archive, with what its STAC item needs to say about it."""

    id: str
    datetime: str
    tile: str
    relpath: str  # below the archive root, with '/' separators: the same key over HTTP and S3
    path: Path
    bbox: tuple[float, float, float, float]  # lon/lat
    footprint: list[list[float]]  # lon/lat ring
    cloud_cover: float


@dataclasses.dataclass(frozen=True)
class Archive:
    root: Path
    scenes: tuple[Scene, ...]

    def in_range(self) -> list[Scene]:
        """The scenes the default query (dates and bbox) must find."""
        return [s for i, s in enumerate(self.scenes) if i // len(TILES) in IN_RANGE]


def product_id(when: datetime, tile: str, platform: str = "S2A") -> str:
    return f"{platform}_{when:%Y%m%dT%H%M%S}_{tile}_NDVI_10M_V200"


def write_archive(root: Path, size: int = 1024, blocksize: int = 256) -> Archive:
    """Write one COG per (time, tile) under ``root``: ``size`` x ``size`` px, deterministic values."""
    scenes = []
    for t_index, stamp in enumerate(TIMES):
        when = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        for k_index, (tile, x0, y0) in enumerate(TILES):
            seed = 1000 * t_index + k_index
            scenes.append(_write_scene(root, when, tile, x0, y0, size, blocksize, seed, stamp))
    return Archive(root=root, scenes=tuple(scenes))


def _write_scene(
    root: Path, when: datetime, tile: str, x0: float, y0: float, size: int, blocksize: int, seed: int, stamp: str
) -> Scene:
    platform = "S2A" if seed % 2 == 0 else "S2B"
    # The two pieces of a tile at one time differ by platform, which keeps their ids unique.
    pid = product_id(when, tile, platform)
    relpath = f"{when:%Y/%m/%d}/{pid}/{pid}.tif"
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_cog(path, x0, y0, size, blocksize, seed)
    ring = _footprint(x0, y0, size)
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    return Scene(
        id=pid,
        datetime=stamp,
        tile=tile,
        relpath=relpath,
        path=path,
        bbox=(min(lons), min(lats), max(lons), max(lats)),
        footprint=ring,
        cloud_cover=float((seed // 1000 * 29 + seed % 1000 * 53) % 100),
    )


def write_big_cog(root: Path, size: int = 4096, blocksize: int = 512) -> Scene:
    """One larger COG (default 4096 px, 41 km, ~15 MB) under ``root/measure/``, for counting bytes."""
    when = datetime(2024, 5, 3, 10, 46, 21, tzinfo=UTC)
    pid = product_id(when, "31UFS") + "_LARGE"
    relpath = f"measure/{pid}.tif"
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    x0, y0 = 630_000.0, 5_682_000.0
    # One random block tiled over the raster: as costly to fetch per block as real data, quick to make.
    block = np.random.default_rng(4242).integers(0, 251, (blocksize, blocksize), dtype="uint8")
    reps = -(-size // blocksize)
    _write_cog(path, x0, y0, size, blocksize, values=np.tile(block, (reps, reps))[:size, :size])
    ring = _footprint(x0, y0, size)
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    bbox = (min(lons), min(lats), max(lons), max(lats))
    return Scene(pid, "2024-05-03T10:46:21Z", "31UFS", relpath, path, bbox, ring, 0.0)


def lonlat_box(x: float, y: float, half: float) -> tuple[float, float, float, float]:
    """The lon/lat box around UTM 31N point (x, y) reaching ``half`` metres each way."""
    to_lonlat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    w, s = to_lonlat.transform(x - half, y - half)
    e, n = to_lonlat.transform(x + half, y + half)
    return (w, s, e, n)


def ndvi_values(size: int, seed: int) -> np.ndarray:
    """DN 0..250 with a smooth field plus noise, and a band of nodata along the left edge."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    smooth = 125 + 100 * np.sin(xx / 97.0 + seed) * np.cos(yy / 131.0)
    dn = np.clip(smooth + rng.normal(0, 20, (size, size)), 0, 250).astype("uint8")
    dn[:, : size // 16] = NODATA
    return dn


def _write_cog(
    path: Path, x0: float, y0: float, size: int, blocksize: int, seed: int = 0, values: np.ndarray | None = None
) -> None:
    profile: dict[str, Any] = {
        "driver": "COG",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "uint8",
        "crs": CRS,
        "transform": from_origin(x0, y0, PIXEL, PIXEL),
        "nodata": NODATA,
        "blocksize": blocksize,
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(ndvi_values(size, seed) if values is None else values, 1)
        dst.scales = (SCALE,)
        dst.offsets = (OFFSET,)


def _footprint(x0: float, y0: float, size: int) -> list[list[float]]:
    to_lonlat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    x1, y1 = x0 + size * PIXEL, y0 - size * PIXEL
    corners = [(x0, y1), (x1, y1), (x1, y0), (x0, y0), (x0, y1)]
    return [[round(v, 7) for v in to_lonlat.transform(x, y)] for x, y in corners]


def stac_item(scene: Scene, href: str, collection: str = COLLECTION, local_key: str = "local") -> dict[str, Any]:
    """The STAC item for ``scene`` whose NDVI asset points at ``href`` (mounted path as alternate)."""
    asset: dict[str, Any] = {
        "href": href,
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "title": "NDVI",
        "roles": ["data"],
        "raster:bands": [{"data_type": "uint8", "nodata": NODATA, "scale": SCALE, "offset": OFFSET}],
        "alternate": {local_key: {"href": str(scene.path)}},
    }
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": STAC_EXTENSIONS,
        "id": scene.id,
        "collection": collection,
        "geometry": {"type": "Polygon", "coordinates": [scene.footprint]},
        "bbox": list(scene.bbox),
        "properties": {
            "datetime": scene.datetime,
            "platform": "sentinel-2a" if scene.id.startswith("S2A") else "sentinel-2b",
            "instruments": ["msi"],
            "eo:cloud_cover": scene.cloud_cover,
            "proj:epsg": 32631,
            "tileId": scene.tile,
            "product_type": "NDVI",
        },
        "assets": {ASSET: asset},
        "links": [],
    }


def stac_collection(collection: str = COLLECTION, description: str = "Terrascope-like NDVI V2") -> dict[str, Any]:
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": collection,
        "description": description,
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [[2.5, 49.4, 6.5, 51.6]]},
            "temporal": {"interval": [["2015-07-01T00:00:00Z", None]]},
        },
        "links": [],
    }


def paging_items(collection: str, count: int, day: str = "2024-05-15") -> Iterator[dict[str, Any]]:
    """``count`` metadata-only items on one day over the default AOI, for paging through results."""
    base = datetime.fromisoformat(f"{day}T00:00:00+00:00")
    w, s, e, n = BBOX
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    for i in range(count):
        when = base + timedelta(seconds=17 * i)
        scene = Scene(
            id=f"{product_id(when, '31UFS')}_{i:05d}",
            datetime=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            tile="31UFS",
            relpath=f"paging/{i:05d}.tif",
            path=Path(f"/data/MTDA/TERRASCOPE_Sentinel2/NDVI_V2/paging/{i:05d}.tif"),
            bbox=(w, s, e, n),
            footprint=ring,
            cloud_cover=float(i % 100),
        )
        yield stac_item(scene, f"https://example.invalid/{scene.relpath}", collection)


def broken_items(scene: Scene, hrefs: dict[str, str], collection: str = BROKEN_COLLECTION) -> list[dict[str, Any]]:
    """Copies of ``scene``'s item, one per ``name: href`` (hrefs that fail in chosen ways).

    Their mounted path (``alternate.local.href``) does not exist, as off the cluster.
    """
    items = []
    for name, href in hrefs.items():
        missing = Path(f"/data/MTDA/TERRASCOPE_Sentinel2/NDVI_V2/missing/{scene.id}_{name}.tif")
        items.append(stac_item(dataclasses.replace(scene, id=f"{scene.id}_{name}", path=missing), href, collection))
    return items
