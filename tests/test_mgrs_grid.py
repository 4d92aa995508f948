"""The Sentinel-2 grid from tile ids, against real tiles' geotransforms."""

from __future__ import annotations

from pathlib import Path

import pytest

from histcalc.acquisition import facts_of
from histcalc.mgrs_grid import TILE, TileId
from histcalc.scenes import Scene

# Upper-left corners of real Sentinel-2 tiles (their geotransforms):
# - 31UFS: the demo's and Terrascope's tile over Brussels, x 600,000, y 5,700,000 in EPSG:32631;
# - 53HPA: an S2A L1C granule's detector footprint envelope (s2reader's test data) reaches x 600,000 and
#   y 6,100,000 in EPSG:32753, the tile's west and north edges.
REAL_UPPER_LEFT = {
    "31UFS": (32631, 600_000.0, 5_700_000.0),
    "53HPA": (32753, 600_000.0, 6_100_000.0),
}


@pytest.mark.parametrize("tile", sorted(REAL_UPPER_LEFT))
def test_real_tiles_upper_left_is_the_squares_north_west_corner(tile: str) -> None:
    epsg, x, y = REAL_UPPER_LEFT[tile]
    parsed = TileId.parse(tile)
    assert parsed is not None and parsed.epsg == epsg
    assert parsed.square(top=y) == (x, y - 100_000.0, x + 100_000.0, y)
    assert parsed.tile_bounds(top=y) == (x, y - TILE, x + TILE, y)


def test_neighbours_in_the_same_zone_and_across_the_zone_edge() -> None:
    """31UGS is east of 31UFS; 32ULB, east of the zone edge (even zone: rows lettered from F), at the same
    northings in 32 (a real tile: e.g. S2B_MSIL2A_20191012T103029_N0213_R108_T32ULB_...)."""
    gs, lb, fr = TileId.parse("31UGS"), TileId.parse("T32ULB"), TileId.parse("MGRS-31UFR")
    assert gs is not None and lb is not None and fr is not None
    assert gs.square(5_700_000.0) == (700_000.0, 5_600_000.0, 800_000.0, 5_700_000.0)
    assert lb.epsg == 32632 and lb.square(5_700_000.0) == (300_000.0, 5_600_000.0, 400_000.0, 5_700_000.0)
    assert fr.square(5_600_000.0) == (600_000.0, 5_500_000.0, 700_000.0, 5_600_000.0)


def test_row_cycle_is_taken_from_the_top_edge() -> None:
    """A row letter repeats every 2,000 km: the file's top edge picks the cycle."""
    fs = TileId.parse("31UFS")
    assert fs is not None
    assert fs.square(top=3_700_000.0)[3] == 3_700_000.0
    assert fs.square(top=5_698_000.0)[3] == 5_700_000.0  # a cropped file near the square's top


def test_zone_and_band_spans() -> None:
    fs, x = TileId.parse("31UFS"), TileId.parse("33XVH")
    assert fs is not None and x is not None
    assert fs.zone_longitudes() == (0.0, 6.0) and fs.band_latitudes() == (48.0, 56.0)
    assert x.band_latitudes() == (72.0, 84.0)


@pytest.mark.parametrize("text", ["31UIS", "31UFW", "61UFS", "31ULB", "NDVI", ""])
def test_not_tile_ids(text: str) -> None:
    """I/O are not letters; rows stop at V; zones stop at 60; L is no column of zone 31."""
    assert TileId.parse(text) is None


def test_acquisition_from_terrascope_and_esa_names_and_items() -> None:
    terrascope = Scene("S2A_20240503T104621_31UFS_NDVI_10M_V200", "/d/S2A_20240503T104621_31UFS_NDVI_10M_V200.tif")
    esa = Scene("x", "/d/S2B_MSIL2A_20240503T104619_N0510_R051_T31UGS_20240503T130000.tif")
    item = Scene("i", "/d/i.tif", tile="32ULB", acquired="sentinel-2a 2024-05-03T10:46:21.024Z", version="05.10")
    facts = [facts_of(s) for s in (terrascope, esa, item)]
    assert [f.acquisition for f in facts] == ["S2A 20240503T104621", "S2B 20240503T104619", "S2A 20240503T104621"]
    assert [str(f.tile) for f in facts] == ["31UFS", "31UGS", "32ULB"]
    assert facts[0].version.endswith("V200") and facts[1].version.endswith("N0510")
    assert facts_of(esa, "day").acquisition == "S2B 20240503"
    assert facts_of(Scene("a", "/d/a.tif")).acquisition is None


def test_demo_tiles_lie_on_the_grid(tmp_path: Path) -> None:
    """The demo's 31UFS, 31UGS and 32ULB files sit where their tile ids say."""
    import rasterio

    from histcalc.demo import TILES, generate

    generate(tmp_path, size=16, tiles=tuple(TILES))
    files = sorted(tmp_path.rglob("*_2024050[16]T*_NDVI_10M_V200.tif"))
    assert len(files) == 2 * len(TILES)
    for path in files:
        tile = TileId.parse(path.name.split("_")[2])
        assert tile is not None
        with rasterio.open(path) as src:
            assert src.crs.to_epsg() == tile.epsg
            assert tuple(src.bounds) == pytest.approx(tile.tile_bounds(top=src.bounds.top))
