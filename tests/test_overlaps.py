"""``--overlaps once`` on synthetic tiles laid on the real Sentinel-2 grid (200 m pixels: 549 x 549 a tile).

Same zone: the result equals the histogram of a per-date mosaic on the common grid, count for count.
Across zones 31/32: each pixel's owner is found by an independent brute force (pixel centre -> lon/lat ->
the MGRS square of the zone it lies in, by the forward lettering rule; else the first selected file in
priority order that covers it) and compared with what every file counted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from rasterio.transform import Affine

from histcalc import Scene, compute_histogram
from histcalc.bins import BinSpec
from histcalc.histogram import Histogram
from tests.conftest import write_raster

PX = 200.0  # divides both 100 km and 109.8 km: neighbouring tiles of one zone share pixel centres
N = 549
DN_BINS = BinSpec.per_digital_number("uint8", 1.0, 0.0)
# (EPSG, upper-left x, upper-left y) of real tiles around Brussels and across the 31/32 zone edge
TILES = {
    "31UFS": (32631, 600_000.0, 5_700_000.0),
    "31UGS": (32631, 700_000.0, 5_700_000.0),
    "31UFR": (32631, 600_000.0, 5_600_000.0),
    "31UGR": (32631, 700_000.0, 5_600_000.0),
    "32ULB": (32632, 300_000.0, 5_700_000.0),
}
Field = Callable[[np.ndarray, np.ndarray], np.ndarray]


def zone31_field(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """DNs of the ground in zone 31 coordinates, nodata (255) west of a slanted swath edge."""
    dn = ((x // PX) * 7 + (y // PX) * 3) % 251
    return np.where(x - 0.2 * (y - 5_490_000.0) < 615_000.0, 255, dn).astype(np.uint8)


def centres(tile: str) -> tuple[np.ndarray, np.ndarray]:
    _, x0, y0 = TILES[tile]
    cols, rows = np.meshgrid(np.arange(N), np.arange(N))
    return x0 + (cols + 0.5) * PX, y0 - (rows + 0.5) * PX


def write_tile(
    root: Path, tile: str, platform: str, stamp: str, values: np.ndarray, version: str = "V200", copy: str = ""
) -> Scene:
    epsg, x0, y0 = TILES[tile]
    name = f"{platform}_{stamp}_{tile}_NDVI_10M_{version}"
    folder = root / stamp / f"{tile}{copy}{version}"
    folder.mkdir(parents=True, exist_ok=True)
    path = write_raster(folder / f"{name}.tif", values, crs=f"EPSG:{epsg}", transform=Affine(PX, 0, x0, 0, -PX, y0),
                        nodata=255, block=128)  # fmt: skip
    return Scene(id=name, href=str(path), day=date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8])))


def same_zone_scenes(root: Path) -> tuple[list[Scene], dict[str, list[str]]]:
    """Three acquisitions: all four tiles; three (31UFS filtered out); 31UFS alone."""
    selected = {
        "S2A 20240503T104621": ["31UFS", "31UGS", "31UFR", "31UGR"],
        "S2B 20240508T104619": ["31UGS", "31UFR", "31UGR"],
        "S2A 20240513T104621": ["31UFS"],
    }
    scenes = []
    for acquisition, tiles in selected.items():
        platform, stamp = acquisition.split()
        scenes += [write_tile(root, t, platform, stamp, zone31_field(*centres(t))) for t in tiles]
    return scenes, selected


def mosaic_centres(tiles: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The pixel centres of one date's mosaic on the common 200 m grid: every cell a selected tile covers."""
    x0, y1, size = 600_000.0, 5_700_000.0, 1049  # 31UFS's corner to 31UGR's far corner
    cols, rows = np.meshgrid(np.arange(size), np.arange(size))
    x, y = x0 + (cols + 0.5) * PX, y1 - (rows + 0.5) * PX
    covered = np.zeros(x.shape, dtype=bool)
    for tile in tiles:
        _, tx, ty = TILES[tile]
        covered |= (x > tx) & (x < tx + 109_800.0) & (y < ty) & (y > ty - 109_800.0)
    return x[covered], y[covered]


def mosaic_dns(tiles: list[str]) -> np.ndarray:
    return zone31_field(*mosaic_centres(tiles))


def dn_counts(dns: np.ndarray) -> tuple[np.ndarray, int]:
    return np.bincount(dns[dns != 255], minlength=256).astype(np.int64), int((dns == 255).sum())


def assert_counted_once(histogram: Histogram, values: np.ndarray, duplicate: int) -> None:
    """``histogram`` holds each location of ``values`` once, and ``duplicate`` pixels of the other copies."""
    counts, nodata = dn_counts(values)
    np.testing.assert_array_equal(histogram.counts, counts)
    assert (histogram.nodata, histogram.duplicate) == (nodata, duplicate)


@pytest.mark.parametrize("engine", ["local", "spark"])
def test_same_zone_once_equals_the_per_date_mosaic(tmp_path: Path, engine: str, request: pytest.FixtureRequest) -> None:
    scenes, selected = same_zone_scenes(tmp_path)
    spark = request.getfixturevalue("spark") if engine == "spark" else None
    result = compute_histogram(scenes, DN_BINS, engine=engine, spark=spark, workers=2, overlaps="once")
    expected = np.zeros(256, np.int64)
    nodata = 0
    for tiles in selected.values():
        counts, missing = dn_counts(mosaic_dns(tiles))
        expected, nodata = expected + counts, nodata + missing
    h = result.histogram
    np.testing.assert_array_equal(h.counts, expected)
    assert h.nodata == nodata and h.below == h.above == h.masked == 0
    assert h.duplicate == len(scenes) * N * N - int(expected.sum()) - nodata > 0


def test_count_keeps_every_files_pixels(tmp_path: Path) -> None:
    scenes, _ = same_zone_scenes(tmp_path)
    result = compute_histogram(scenes, DN_BINS, workers=2, overlaps="count")
    files = [zone31_field(*centres(s.id.split("_")[2])) for s in scenes]
    counts, nodata = dn_counts(np.concatenate([f.ravel() for f in files]))
    np.testing.assert_array_equal(result.histogram.counts, counts)
    assert (result.histogram.nodata, result.histogram.duplicate) == (nodata, 0)


def test_once_is_the_default_and_tallies_add_up_per_group(tmp_path: Path) -> None:
    scenes, selected = same_zone_scenes(tmp_path)
    result = compute_histogram(scenes, DN_BINS, workers=2, group_by="date")
    for day, tiles in zip(("2024-05-03", "2024-05-08", "2024-05-13"), selected.values(), strict=True):
        g = result.groups[day]
        assert g.pixels == len(tiles) * N * N
        assert g.count + g.nodata == len(mosaic_dns(tiles))


def test_once_with_aoi_quality_mask_and_groups(tmp_path: Path) -> None:
    """The mosaic rule inside a lon/lat box across the four tiles' overlaps, with a cloud mask per tile."""
    from histcalc import Overrides
    from histcalc.aoi import AOI

    def clouds(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.where(((x // PX + y // PX) % 9 == 0), 9, 4).astype(np.uint8)  # SCL: 9 cloud, 4 vegetation

    scenes, selected = same_zone_scenes(tmp_path)
    for i, scene in enumerate(scenes):
        tile = scene.id.split("_")[2]
        scl = write_tile(tmp_path / "scl", tile, "S2A", f"202405{10 + i:02d}T000000", clouds(*centres(tile)))
        scenes[i] = Scene(scene.id, scene.href, scene.day, extra_hrefs={"SCL": scl.href})
    bbox = (4.95, 50.35, 6.15, 50.95)
    result = compute_histogram(
        scenes, DN_BINS, AOI.from_bbox(bbox), workers=2, group_by="date",
        overrides=Overrides(mask_asset="SCL", mask_values=(9,)),
    )  # fmt: skip
    to_lonlat = Transformer.from_crs("EPSG:32631", "EPSG:4326", always_xy=True)
    for day, tiles in zip(("2024-05-03", "2024-05-08", "2024-05-13"), selected.values(), strict=True):
        x, y = mosaic_centres(tiles)
        lon, lat = to_lonlat.transform(x, y)
        inside = (lon >= bbox[0]) & (lon <= bbox[2]) & (lat >= bbox[1]) & (lat <= bbox[3])
        dns, cloudy = zone31_field(x[inside], y[inside]), clouds(x[inside], y[inside]) == 9
        counts, nodata = dn_counts(np.where(cloudy & (dns != 255), 0, dns)[~(cloudy & (dns != 255))])
        g = result.groups[day]
        np.testing.assert_array_equal(g.counts, counts, err_msg=day)
        assert (g.nodata, g.masked) == (nodata, int((cloudy & (dns != 255)).sum())), day
        assert g.duplicate > 0 or len(tiles) == 1


def test_cli_option_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from histcalc.cli import main

    for tile in ("31UFS", "31UGS"):
        write_tile(tmp_path / "data", tile, "S2A", "20240503T104621", zone31_field(*centres(tile)))
    args = ["--catalog", str(tmp_path / "data"), "--engine", "local", "--workers", "2", "-q"]
    assert main([*args, "-o", str(tmp_path / "once.json")]) == 0
    once = capsys.readouterr().out
    assert main([*args, "--overlaps", "count", "-o", str(tmp_path / "count.json")]) == 0
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("once.json", "count.json"))
    strip = 49 * N  # the 9.8 km strip 31UFS reaches into 31UGS's square, 49 columns of 200 m
    assert (a["duplicate"], b["duplicate"]) == (strip, 0) and a["pixels"] == b["pixels"] == 2 * N * N
    assert a["query"]["overlaps"] == "once" and b["query"]["overlaps"] == "count"
    assert f"{strip:,} duplicate" in once
    assert main([*args, "--overlaps", "twice"]) == 2
    err = capsys.readouterr().err
    assert "--overlaps" in err and "twice" in err and "Traceback" not in err


# -- across the zone edge -----------------------------------------------------------------------------

_COLUMNS = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")
_ROWS = "ABCDEFGHJKLMNPQRSTUV"


def mgrs_square_of(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Forward MGRS: the tile id (zone, band U, square letters) of each lon/lat in the zone it lies in."""
    zone = np.floor((lon + 180.0) / 6.0).astype(int) + 1
    out = np.empty(lon.shape, dtype=object)
    for z in np.unique(zone):
        at = zone == z
        x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{32600 + z}", always_xy=True).transform(lon[at], lat[at])
        col = np.array(list(_COLUMNS[(z - 1) % 3]))[(x // 100_000).astype(int) - 1]
        row = np.array(list(_ROWS))[((y // 100_000).astype(int) + (5 if z % 2 == 0 else 0)) % 20]
        out[at] = [f"{z:02d}U{c}{r}" for c, r in zip(col, row, strict=True)]
    return out


def covers(tile: str, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    epsg, x0, y0 = TILES[tile]
    x, y = Transformer.from_crs("EPSG:4326", f"EPSG:{epsg}", always_xy=True).transform(lon, lat)
    return (x > x0) & (x < x0 + N * PX) & (y < y0) & (y > y0 - N * PX)


def brute_force_owned(tile: str, selected: list[str]) -> np.ndarray:
    """True where ``tile`` owns its pixel: natural owner if selected and covering, else first in priority."""
    epsg, _, _ = TILES[tile]
    x, y = centres(tile)
    lon, lat = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True).transform(x, y)
    natural = mgrs_square_of(lon, lat)
    owner = np.full(x.shape, "", dtype=object)
    for other in selected:  # natural owners first
        owner[(natural == other) & covers(other, lon, lat)] = other
    for other in sorted(selected):  # then the first in priority (tile id) wins what is left
        owner[(owner == "") & covers(other, lon, lat)] = other
    owned: np.ndarray = owner == tile
    return owned


def lonlat_field(tile: str) -> np.ndarray:
    epsg, _, _ = TILES[tile]
    lon, lat = Transformer.from_crs(f"EPSG:{epsg}", "EPSG:4326", always_xy=True).transform(*centres(tile))
    dn = (np.floor(lon * 97.0) * 5 + np.floor(lat * 131.0) * 3) % 251
    return np.where(lat > 51.5 - 0.05 * (lon - 5.0) ** 2, 255, dn).astype(np.uint8)


@pytest.mark.parametrize("selected", [["31UFS", "31UGS", "32ULB"], ["31UGS", "32ULB"], ["31UFS", "31UGR", "32ULB"]])
def test_across_zones_each_file_counts_exactly_what_it_owns(tmp_path: Path, selected: list[str]) -> None:
    scenes = [write_tile(tmp_path, t, "S2A", "20240503T104621", lonlat_field(t)) for t in selected]
    result = compute_histogram(scenes, DN_BINS, workers=2, group_by="item")
    for scene, tile in zip(scenes, selected, strict=True):
        owned = brute_force_owned(tile, selected)
        counts, nodata = dn_counts(lonlat_field(tile)[owned])
        g = result.groups[scene.id]
        np.testing.assert_array_equal(g.counts, counts, err_msg=tile)
        assert (g.nodata, g.duplicate) == (nodata, int((~owned).sum())), tile
    assert result.histogram.pixels == len(selected) * N * N


def test_across_zones_ownership_pixel_by_pixel(tmp_path: Path) -> None:
    """The planned regions, rasterised as the reader does, against the brute force on every pixel."""
    from rasterio.windows import Window

    from histcalc.overlaps import plan_ownership
    from histcalc.owned import Owned

    selected = ["31UFS", "31UGS", "32ULB", "31UGR"]
    scenes = [write_tile(tmp_path, t, "S2A", "20240503T104621", lonlat_field(t)) for t in selected]
    ownership = plan_ownership(scenes, {})
    for scene, tile in zip(scenes, selected, strict=True):
        key = ownership.keys[scene.href]
        _, x0, y0 = TILES[tile]
        mask = Owned(None if key is None else ownership.regions[key]).mask(
            Window(0, 0, N, N), Affine(PX, 0, x0, 0, -PX, y0), (N, N)
        )
        own = np.ones((N, N), bool) if mask is None else mask
        brute = brute_force_owned(tile, selected)
        assert int((own != brute).sum()) == 0, tile


# -- copies of one tile ------------------------------------------------------------------------------


def test_a_reprocessed_copy_counts_nothing(tmp_path: Path) -> None:
    values = zone31_field(*centres("31UFS"))
    old = write_tile(tmp_path, "31UFS", "S2A", "20240503T104621", np.full((N, N), 7, np.uint8), version="V200")
    new = write_tile(tmp_path, "31UFS", "S2A", "20240503T104621", values, version="V210")
    result = compute_histogram([old, new], DN_BINS, workers=2)
    assert_counted_once(result.histogram, values, duplicate=N * N)


def test_split_datastrip_halves_are_both_counted(tmp_path: Path) -> None:
    """Two copies of one version: each location once, from the first half (by href) with data there; where
    neither has data, the first tallies it as nodata."""
    values = zone31_field(*centres("31UFS"))
    rows = np.arange(N)[:, None] + np.zeros(N, int)
    north, south = values.copy(), values.copy()
    north[rows >= 300] = 255
    south[rows < 250] = 255  # rows 250..299 hold data in both halves
    first = write_tile(tmp_path, "31UFS", "S2A", "20240503T104621", north, copy="a")
    second = write_tile(tmp_path, "31UFS", "S2A", "20240503T104621", south, copy="b")
    result = compute_histogram([second, first], DN_BINS, workers=2)
    assert_counted_once(result.histogram, values, duplicate=N * N)


def test_many_identical_copies_count_once_and_read_at_most_four(tmp_path: Path) -> None:
    values = zone31_field(*centres("31UFS"))
    copies = [write_tile(tmp_path, "31UFS", "S2A", "20240503T104621", values, copy=str(i)) for i in range(6)]
    result = compute_histogram(copies, DN_BINS, workers=2)
    assert_counted_once(result.histogram, values, duplicate=5 * N * N)


# -- zones -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["local", "spark"])
def test_zonal_job_counts_each_location_once(tmp_path: Path, engine: str, request: pytest.FixtureRequest) -> None:
    import geopandas as gpd

    from histcalc.zone_files import load_zones

    straddling = shapely.box(690_050.0, 5_620_050.0, 720_050.0, 5_650_050.0)  # across the 31UFS/31UGS overlap
    path = tmp_path / "zones.gpkg"
    gpd.GeoDataFrame({"name": ["strip"]}, geometry=[straddling], crs="EPSG:32631").to_file(path, driver="GPKG")
    scenes = [write_tile(tmp_path, t, "S2A", "20240503T104621", zone31_field(*centres(t))) for t in ("31UFS", "31UGS")]
    spark = request.getfixturevalue("spark") if engine == "spark" else None
    zones = load_zones(path, id_field="name")
    result = compute_histogram(scenes, DN_BINS, engine=engine, spark=spark, workers=2, zones=zones)
    xs = np.arange(600_100.0, 809_800.0, PX)
    ys = np.arange(5_590_300.0, 5_700_000.0, PX)
    x, y = np.meshgrid(xs, ys)
    inside = (x > 690_050.0) & (x < 720_050.0) & (y > 5_620_050.0) & (y < 5_650_050.0)
    counts, nodata = dn_counts(zone31_field(x[inside], y[inside]))
    zone = result.zone_histogram("strip")
    np.testing.assert_array_equal(zone.counts, counts)
    np.testing.assert_array_equal(result.histogram.counts, counts)
    assert zone.nodata == nodata
    # the overlap strip 700,000..709,800 m inside the zone: 49 columns x 150 rows seen twice
    assert result.histogram.duplicate == 49 * 150


def test_catalog_items_give_acquisition_tile_and_version(tmp_path: Path) -> None:
    """STAC items: ``platform`` + ``datetime``, the MGRS extension's tile and ``s2:processing_baseline``."""
    import json

    from histcalc.acquisition import facts_of
    from histcalc.scenes import Query, find_scenes

    def item(name: str, baseline: str) -> dict[str, object]:
        props = {"datetime": "2024-05-03T10:46:21.024Z", "platform": "sentinel-2b", "s2:processing_baseline": baseline,
                 "mgrs:utm_zone": 31, "mgrs:latitude_band": "U", "mgrs:grid_square": "FS"}  # fmt: skip
        asset = {"href": f"{tmp_path}/{name}.tif", "type": "image/tiff"}
        return {"type": "Feature", "stac_version": "1.0.0", "id": name, "properties": props, "assets": {"NDVI": asset},
                "geometry": None, "links": []}  # fmt: skip

    scenes = []
    for name, baseline in (("a", "05.00"), ("b", "05.10")):
        (tmp_path / f"{name}.json").write_text(json.dumps(item(name, baseline)))
        scenes += find_scenes(Query(catalog=str(tmp_path / f"{name}.json"), collection=None))
    facts = [facts_of(s) for s in scenes]
    assert [f.acquisition for f in facts] == ["S2B 20240503T104621"] * 2
    assert [str(f.tile) for f in facts] == ["31UFS", "31UFS"] and facts[1].version > facts[0].version


def test_a_cached_rerun_with_a_new_acquisition_reads_only_its_files(tmp_path: Path) -> None:
    """With --cache, the regions of earlier acquisitions are unchanged, so their entries are reused."""
    scenes, selected = same_zone_scenes(tmp_path / "data")
    first = [s for s in scenes if "20240508" not in s.href]  # an acquisition of three tiles arrives later
    cache = str(tmp_path / "cache")
    compute_histogram(first, DN_BINS, workers=1, overlaps="once", cache=cache)
    again = compute_histogram(scenes, DN_BINS, workers=1, overlaps="once", cache=cache)
    clean = compute_histogram(scenes, DN_BINS, workers=1, overlaps="once")
    assert again.files_cached == len(first) and len(scenes) - len(first) == len(selected["S2B 20240508T104619"])
    np.testing.assert_array_equal(again.histogram.counts, clean.histogram.counts)
    assert again.histogram.duplicate == clean.histogram.duplicate > 0


def test_a_zonal_job_with_overlaps_reads_each_header_once_on_the_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Zone planning and the overlap rule share the headers they read (histcalc.grids)."""
    from typing import Any

    import histcalc.raster as raster
    from histcalc.zones import Zones

    scenes, _ = same_zone_scenes(tmp_path)
    opened: list[str] = []
    real = raster.grid_of

    def counting(href: str, gdal: Any = None) -> Any:
        opened.append(href)
        return real(href, gdal)

    monkeypatch.setattr(raster, "grid_of", counting)
    field = shapely.box(650_000.0, 5_580_000.0, 720_000.0, 5_650_000.0)  # across the four tiles' overlaps
    zones = Zones(["field"], np.array([field], dtype=object), "EPSG:32631", [])
    result = compute_histogram(scenes, DN_BINS, workers=1, zones=zones)
    assert sorted(opened) == sorted(s.href for s in scenes)
    assert result.zone_histogram("field").count > 0
