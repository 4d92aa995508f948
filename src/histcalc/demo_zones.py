"""``histcalc demo --zones``: demo parcels over the seed's area and the defaults of a per-parcel job.

The parcels are :func:`histcalc.parcels.make_parcels` fields (Voronoi cells inside land-use blocks,
1.2-9 ha per block on average, 0.5-20 ha each) in a square centred on the seed's bbox, as large as the
bbox's height allows (about 12 km), in the tile's CRS (EPSG:32631). They lie inside the bbox, so the
demo keeps the seed's bbox as its AOI and every field counts all its pixels. At the default 60 m demo
pixels (0.36 ha) a typical field holds about 8 pixel centres; fields under ~0.7 ha may hold none.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from histcalc.demo import EPSG

log = logging.getLogger(__name__)

PARCELS = 3_000  # fits the square with room to spare (about 4,500 fields would)
PARCEL_SEED = 2024
PARCELS_FILE = "parcels.gpkg"
STATS_FILE = "parcel-stats.csv"
ZONE_ID = "parcel_id"
MASK_ASSET = "SCENECLASSIFICATION"
_MARKER = "histcalc-parcels.json"


def parcel_bounds(bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """The largest north-up rectangle in the tile's CRS inside the lon/lat ``bbox`` (edges densified)."""
    from rasterio.warp import transform

    w, s, e, n = bbox
    t = np.linspace(0.0, 1.0, 21)
    edges = {
        "west": (np.full_like(t, w), s + t * (n - s)),
        "east": (np.full_like(t, e), s + t * (n - s)),
        "south": (w + t * (e - w), np.full_like(t, s)),
        "north": (w + t * (e - w), np.full_like(t, n)),
    }
    xy = {k: transform("EPSG:4326", f"EPSG:{EPSG}", list(lon), list(lat)) for k, (lon, lat) in edges.items()}
    west, east = max(xy["west"][0]), min(xy["east"][0])
    south, north = max(xy["south"][1]), min(xy["north"][1])
    return (float(west), float(south), float(east), float(north))


def ensure_parcels(root: str | Path, bbox: tuple[float, float, float, float]) -> Path:
    """The demo parcels under ``root``, generated unless the same ones are already there."""
    from histcalc.parcels import make_parcels

    path = Path(root).resolve() / PARCELS_FILE
    marker = path.with_name(_MARKER)
    recipe = {"n": PARCELS, "seed": PARCEL_SEED, "bbox": list(bbox), "crs": f"EPSG:{EPSG}"}
    if path.exists() and marker.exists() and json.loads(marker.read_text()) == recipe:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)  # GeoPackage: pyogrio would add a layer to an existing file
    make_parcels(parcel_bounds(bbox), f"EPSG:{EPSG}", PARCELS, PARCEL_SEED, path)
    marker.write_text(json.dumps(recipe))
    return path


def apply_zone_defaults(ns: argparse.Namespace, root: str | Path) -> bool:
    """Fill in the per-parcel, per-date, cloud-masked job unless the user chose otherwise.

    ``ns.zones`` is True for the demo's own parcels (then ``--zone-id`` defaults to ``parcel_id``),
    or the user's zones file. Returns whether the demo's parcels are to be made (:func:`ensure_parcels`,
    after every option has been checked).
    """
    own = ns.zones is True
    if own:
        ns.zones = str(Path(root).resolve() / PARCELS_FILE)
        ns.zone_id = ns.zone_id or ZONE_ID
    ns.group_by = ns.group_by or "date"
    ns.mask_asset = ns.mask_asset or MASK_ASSET
    ns.zone_stats = ns.zone_stats or str(Path(root) / STATS_FILE)
    return own
