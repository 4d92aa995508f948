"""Which files are the same acquisition, the same tile, and which copy of a tile is the latest.

The acquisition key groups files that saw the ground at the same moment: the platform plus the sensing
time (``time``, the default) or the sensing day (``day``, for catalogs that stamp every tile with its own
granule time). It comes from the catalog (``Scene.acquired``: STAC ``platform`` + ``datetime``) or from a
Sentinel-2 file name: Terrascope's ``S2A_20240503T104621_31UFS_NDVI_10M_V200.tif`` or ESA's
``S2A_MSIL2A_20240503T104621_N0510_R051_T31UFS_...``. A file without one is never de-duplicated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from histcalc.mgrs_grid import TileId
from histcalc.scenes import Scene

ACQUISITION_KEYS: tuple[str, ...] = ("time", "day")
_TERRASCOPE = re.compile(r"(S2[A-D])_(\d{8}T\d{6})_(\d{2}[C-HJ-NP-X][A-Z]{2})_.*?(?:_(V\d{3}))?$")
_ESA = re.compile(r"(S2[A-D])_MSI\w{3}_(\d{8}T\d{6})_(N\d{4})_R\d{3}_T(\d{2}[C-HJ-NP-X][A-Z]{2})")
_PLATFORMS = {"sentinel-2a": "S2A", "sentinel-2b": "S2B", "sentinel-2c": "S2C", "sentinel-2d": "S2D"}


@dataclass(frozen=True)
class Facts:
    """What the overlap rule needs to know of one file."""

    acquisition: str | None  # None: never de-duplicated
    tile: TileId | None  # None: not on the Sentinel-2 grid (generic priority rule)
    version: str  # larger is newer: the catalog's ``updated``, then the processing baseline or version


def facts_of(scene: Scene, key: str = "time") -> Facts:
    """The acquisition (by ``key``: "time" or "day"), MGRS tile and copy version of ``scene``, from its
    catalog fields or its file name."""
    name = scene.href.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    platform, when, tile_text, version = _from_name(scene.id) or _from_name(name) or (None, None, None, None)
    if scene.acquired:
        platform, _, when = scene.acquired.partition(" ")
        platform = _PLATFORMS.get(platform.lower(), platform)
    acquisition = None
    if platform and when:
        stamp = re.sub(r"[^0-9T]", "", when.upper())
        acquisition = f"{platform} {stamp[:8] if key == 'day' else stamp[:15]}"
    tile = TileId.parse(scene.tile or tile_text or "")
    updated = getattr(scene, "updated", None) or ""  # a catalog's last update, where it gives one
    return Facts(acquisition, tile, f"{updated}|{scene.version or version or ''}")


def _from_name(name: str) -> tuple[str, str, str, str | None] | None:
    """(platform, sensing time, tile, version) from a Terrascope or ESA Sentinel-2 product or file name."""
    esa = _ESA.search(name)
    if esa:
        return esa[1], esa[2], esa[4], esa[3]
    terrascope = _TERRASCOPE.search(name)
    if terrascope:
        return terrascope[1], terrascope[2], terrascope[3], terrascope[4]
    return None
