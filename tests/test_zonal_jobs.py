"""Zonal jobs end to end, on both engines, against a brute-force centre-in-polygon test on every pixel."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from rasterio.transform import Affine

from histcalc import Scene, compute_histogram
from histcalc.bins import BinSpec
from histcalc.plan import Overrides
from histcalc.zone_files import load_zones
from tests.conftest import write_raster

CRS = "EPSG:32631"
X0, Y0, PX = 600000.0, 5700000.0, 10.0
H, W = 40, 50
BINS = BinSpec.per_digital_number("uint8", 0.004, -0.08)
SCL_DROP = (3, 8, 9)


def box(c0: float, r0: float, c1: float, r1: float) -> shapely.Polygon:
    """A rectangle given in pixel units (column, row) of the test grid."""
    return shapely.box(X0 + c0 * PX, Y0 - r1 * PX, X0 + c1 * PX, Y0 - r0 * PX)


# Edges sit a quarter pixel off the centres unless a test wants centres on an edge.
ZONES: dict[str, shapely.Geometry] = {
    "holed": shapely.Polygon(box(2.25, 2.25, 20.25, 18.25).exterior, [box(8.25, 6.25, 12.25, 10.25).exterior.coords]),
    "overlaps holed": box(15.25, 10.25, 30.25, 25.25),
    "two parts, 'quoted'": shapely.MultiPolygon([box(32.25, 2.25, 36.25, 6.25), box(40.25, 30.25, 47.25, 38.25)]),
    "left,half": box(0.25, 26.25, 10.5, 39.25),  # shares the edge at column 10.5 (pixel centres) with:
    "right half ñ": box(10.5, 26.25, 20.25, 39.25),
    "outside the data": box(70.25, 2.25, 80.25, 8.25),
    "smaller than a pixel": box(44.6, 10.6, 44.9, 10.9),
}


@pytest.fixture
def zones_file(tmp_path: Path) -> Path:
    import geopandas as gpd

    frame = gpd.GeoDataFrame({"name": list(ZONES)}, geometry=list(ZONES.values()), crs=CRS)
    path = tmp_path / "zones.gpkg"
    frame.to_file(path, driver="GPKG")
    return path


def scenes(tmp_path: Path, days: int = 2, with_scl: bool = False) -> list[Scene]:
    rng = np.random.default_rng(11)
    out = []
    for d in range(days):
        data = rng.integers(0, 251, (H, W), dtype=np.uint8)
        data[rng.random((H, W)) < 0.05] = 255
        path = write_raster(tmp_path / f"ndvi_{d}.tif", data, crs=CRS, transform=Affine(PX, 0, X0, 0, -PX, Y0),
                            nodata=255, scale=0.004, offset=-0.08, block=16)  # fmt: skip
        extra = {}
        if with_scl:
            scl = rng.integers(0, 12, (H, W), dtype=np.uint8)
            extra["SCL"] = str(write_raster(tmp_path / f"scl_{d}.tif", scl, crs=CRS,
                                            transform=Affine(PX, 0, X0, 0, -PX, Y0), block=16))  # fmt: skip
        out.append(Scene(id=f"s{d}", href=str(path), day=date(2024, 5, 1 + d), extra_hrefs=extra))
    return out


def brute_force(scene: Scene, zone: shapely.Geometry, drop: tuple[int, ...] = ()) -> dict[str, Any]:
    """DN counts, nodata and masked pixels of ``zone`` in ``scene``: shapely's test on every pixel centre."""
    import rasterio

    with rasterio.open(scene.href) as src:
        data = src.read(1)
    rows, cols = np.mgrid[0:H, 0:W]
    inside = shapely.contains_xy(zone, X0 + (cols + 0.5) * PX, Y0 - (rows + 0.5) * PX)
    masked = np.zeros((H, W), bool)
    if drop:
        with rasterio.open(scene.extra_hrefs["SCL"]) as src:
            masked = np.isin(src.read(1), drop) & (data != 255)
    counted = inside & (data != 255) & ~masked
    return {
        "counts": np.bincount(data[counted], minlength=256)[:256],
        "nodata": int((inside & (data == 255)).sum()),
        "masked": int((inside & masked).sum()),
    }


def check(result: Any, scene_list: list[Scene], groups: dict[str, list[Scene]], drop: tuple[int, ...] = ()) -> None:
    assert result.zone_ids == list(ZONES)
    for zone_id, geometry in ZONES.items():
        if zone_id in ("left,half", "right half ñ"):
            continue  # their shared edge runs through pixel centres: checked by the union test below
        for group, members in groups.items():
            want = [brute_force(s, geometry, drop) for s in members]
            got = result.zone_histogram(zone_id, group)
            np.testing.assert_array_equal(got.counts, sum(w["counts"] for w in want), err_msg=zone_id)
            assert got.nodata == sum(w["nodata"] for w in want), zone_id
            assert got.masked == sum(w["masked"] for w in want), zone_id
    halves = shapely.union(ZONES["left,half"], ZONES["right half ñ"])
    for group, members in groups.items():
        union = sum(brute_force(s, halves, drop)["counts"] for s in members)
        left, right = (result.zone_histogram(z, group) for z in ("left,half", "right half ñ"))
        np.testing.assert_array_equal(left.counts + right.counts, union)
        assert left.count and right.count
    for group in groups:
        assert result.zone_histogram("outside the data", group).pixels == 0
        assert result.zone_histogram("smaller than a pixel", group).pixels == 0


@pytest.mark.parametrize("engine", ["local", pytest.param("spark", marks=pytest.mark.spark)])
def test_zones_by_date_with_a_mask_equal_brute_force(engine: str, zones_file: Path, tmp_path: Path, request) -> None:
    spark = request.getfixturevalue("spark") if engine == "spark" else None
    scene_list = scenes(tmp_path, days=2, with_scl=True)
    zones = load_zones(zones_file, id_field="name")
    overrides = Overrides(mask_asset="SCL", mask_values=SCL_DROP)
    result = compute_histogram(
        scene_list, BINS, engine=engine, spark=spark, workers=2, overrides=overrides, group_by="date", zones=zones
    )
    check(result, scene_list, {s.day.isoformat(): [s] for s in scene_list}, SCL_DROP)  # type: ignore[union-attr]
    by_date = [result.zone_histogram("holed", s.day.isoformat()) for s in scene_list]  # type: ignore[union-attr]
    np.testing.assert_array_equal(result.zone_histogram("holed").counts, sum(h.counts for h in by_date))
    with pytest.raises(KeyError, match="no group"):
        result.zone_histogram("holed", "2030-01-01")


@pytest.mark.parametrize("engine", ["local", pytest.param("spark", marks=pytest.mark.spark)])
def test_zones_over_the_whole_period_and_the_union_histogram(
    engine: str, zones_file: Path, tmp_path: Path, request
) -> None:
    spark = request.getfixturevalue("spark") if engine == "spark" else None
    scene_list = scenes(tmp_path, days=3)
    result = compute_histogram(scene_list, BINS, engine=engine, spark=spark, zones=load_zones(zones_file, "name"))
    check(result, scene_list, {"": scene_list})
    union = shapely.union_all(list(ZONES.values()))
    assert result.histogram.count == sum(int(brute_force(s, union)["counts"].sum()) for s in scene_list)


def test_cli_writes_per_zone_tables_that_match_the_api(zones_file: Path, tmp_path: Path) -> None:
    import csv

    from histcalc.cli import main

    scene_list = scenes(tmp_path, days=1)
    stats, tidy = tmp_path / "stats.csv", tmp_path / "tidy.csv"
    argv = ["--catalog", str(tmp_path), "--engine", "local", "--zones", str(zones_file), "--zone-id", "name"]
    both = ["--csv", str(tidy), "--parquet", str(tmp_path / "tidy.parquet")]
    assert main([*argv, "--zone-stats", str(stats), *both, "-q"]) == 0
    rows = list(csv.DictReader(stats.open(encoding="utf-8")))
    assert [r["zone"] for r in rows] == list(ZONES) and {r["group"] for r in rows} == {"all"}
    for row in rows:
        want = brute_force(scene_list[0], ZONES[row["zone"]]) if "half" not in row["zone"] else None
        if want is not None:
            assert int(row["count"]) == int(want["counts"].sum()) and int(row["nodata"]) == want["nodata"]
    counts: dict[str, int] = {}
    for r in csv.DictReader(tidy.open(encoding="utf-8")):
        counts[r["zone"]] = counts.get(r["zone"], 0) + int(r["count"])
    assert counts == {r["zone"]: int(r["count"]) for r in rows if int(r["count"])}
    # the CSV's bin edges (each formatted once per block of zones) are the Parquet table's, to 12 digits
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(tmp_path / "tidy.parquet").to_pylist()
    text = list(csv.DictReader(tidy.open(encoding="utf-8")))
    assert len(text) == len(table) > 10
    for got, want in zip(text, table, strict=True):
        assert (got["zone"], got["group"], int(got["count"])) == (want["zone"], want["group"], want["count"])
        for edge in ("bin_low", "bin_high"):
            assert float(got[edge]) == float(f"{want[edge]:.12g}"), (got, want)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--zone-id", "name"], "--zone-id needs --zones FILE"),
        (["--zones", "{zones}", "--zone-stats", "{tmp}/stats.xlsx"], "use a .csv, .parquet, .gpkg or .geojson"),
        (["--zones", "{zones}", "--zone-id", "nope"], "nope"),
        (["--zones", "{tmp}/missing.gpkg"], "missing.gpkg"),
    ],
)
def test_bad_zone_options_are_one_line_before_any_pixel(
    extra: list[str], message: str, zones_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from histcalc.cli import main

    scenes(tmp_path, days=1)
    args = [a.format(zones=zones_file, tmp=tmp_path) for a in extra]
    assert main(["--catalog", str(tmp_path), "--engine", "local", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_zones_on_float_data_are_refused_up_front(zones_file: Path, tmp_path: Path) -> None:
    from histcalc.errors import UsageError

    path = write_raster(
        tmp_path / "f.tif", np.ones((H, W), np.float32), crs=CRS, transform=Affine(PX, 0, X0, 0, -PX, Y0)
    )
    with pytest.raises(UsageError, match="8- or 16-bit integer"):
        compute_histogram([Scene("f", str(path))], BinSpec.uniform(4, 0, 2), zones=load_zones(zones_file, "name"))


@pytest.mark.parametrize("engine", ["local", pytest.param("spark", marks=pytest.mark.spark)])
def test_sixteen_bit_data_with_many_zones_counts_sparsely(engine: str, tmp_path: Path, request) -> None:
    """uint16 DNs keep sparse (zone, DN) cells: 2,000 one-pixel zones must not cost 2,000 x 0.5 MB."""
    import geopandas as gpd

    spark = request.getfixturevalue("spark") if engine == "spark" else None
    rng = np.random.default_rng(3)
    data = rng.integers(0, 60000, (H, W), dtype=np.uint16)
    data[rng.random((H, W)) < 0.1] = 0
    grid = Affine(PX, 0, X0, 0, -PX, Y0)
    path = write_raster(tmp_path / "u16.tif", data, crs=CRS, transform=grid, nodata=0, scale=0.5, block=16)
    cells = [(r, c) for r in range(H) for c in range(W)][:2000]
    geoms = [box(c + 0.1, r + 0.1, c + 0.9, r + 0.9) for r, c in cells] + [box(3.25, 3.25, 30.25, 20.25)]
    ids = [f"px{r}_{c}" for r, c in cells] + ["big"]
    gpd.GeoDataFrame({"id": ids}, geometry=geoms, crs=CRS).to_file(tmp_path / "z.gpkg", driver="GPKG")
    bins = BinSpec.uniform(40, 0, 30000)
    result = compute_histogram([Scene("u16", str(path))], bins, engine=engine, spark=spark,
                               zones=load_zones(tmp_path / "z.gpkg", "id"))  # fmt: skip
    for zone_id, geometry in [("px0_7", geoms[7]), ("px12_3", geoms[12 * W + 3]), ("big", geoms[-1])]:
        rows, cols = np.mgrid[0:H, 0:W]
        inside = shapely.contains_xy(geometry, X0 + (cols + 0.5) * PX, Y0 - (rows + 0.5) * PX)
        values = data[inside & (data != 0)].astype(np.float64) * 0.5
        got = result.zone_histogram(zone_id)
        np.testing.assert_array_equal(got.counts, np.histogram(values, bins.array)[0], err_msg=zone_id)
        assert got.nodata == int((inside & (data == 0)).sum()) and got.pixels == int(inside.sum())
        if values.size:
            assert got.moments.mean == pytest.approx(values.mean()) and got.vmax == values.max()


@pytest.mark.parametrize(("uint16_max", "int32_max", "chosen"), [(50, 2**31 - 1, np.int32), (50, 50, np.int64)])
def test_dense_zone_counts_widen_before_a_cell_could_overflow(
    zones_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uint16_max: int, int32_max: int, chosen: type
) -> None:
    """Dense counts are uint16 while no zone's bounds touch more pixels than it holds, int32 while the raster's
    pixels fit, int64 beyond (the limits lowered here to 50): the counts stay exact in each."""
    import histcalc.zone_counter as zone_counter

    made: list[Any] = []
    monkeypatch.setattr(zone_counter, "_UINT16_MAX", uint16_max)
    monkeypatch.setattr(zone_counter, "_INT32_MAX", int32_max)
    monkeypatch.setattr(zone_counter.ZoneCounter, "_cell_type", _recorded(zone_counter.ZoneCounter._cell_type, made))
    scene_list = scenes(tmp_path, days=2)
    result = compute_histogram(scene_list, BINS, workers=1, group_by="date", zones=load_zones(zones_file, "name"))
    check(result, scene_list, {s.day.isoformat(): [s] for s in scene_list})  # type: ignore[union-attr]
    assert made and set(made) == {chosen}


def test_parcels_count_into_uint16_rows(zones_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test zones touch at most ~400 pixels each: their rows are uint16 (and the counts exact)."""
    import histcalc.zone_counter as zone_counter

    made: list[Any] = []
    monkeypatch.setattr(zone_counter.ZoneCounter, "_cell_type", _recorded(zone_counter.ZoneCounter._cell_type, made))
    scene_list = scenes(tmp_path, days=1)
    result = compute_histogram(scene_list, BINS, workers=1, zones=load_zones(zones_file, "name"))
    check(result, scene_list, {"": scene_list})
    assert made and set(made) == {np.uint16}


def _recorded(method: Any, made: list[Any]) -> Any:
    def wrapper(self: Any, *args: Any) -> Any:
        made.append(method(self, *args))
        return made[-1]

    return wrapper


@pytest.mark.parametrize("engine", ["local", pytest.param("spark", marks=pytest.mark.spark)])
def test_rows_lent_window_by_window_count_the_same(
    engine: str, zones_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request
) -> None:
    """With the dense budget at 0, each zone borrows a row while windows of 16 pixel rows meet it and is read
    out after its last one (most before the task ends): the tables still equal brute force."""
    import histcalc.raster as raster
    import histcalc.zone_counter as zone_counter

    spark = request.getfixturevalue("spark") if engine == "spark" else None
    monkeypatch.setattr(zone_counter, "_DENSE_BUDGET", 0)
    monkeypatch.setattr(raster, "_BAND_PIXELS", 16 * W)
    reads: list[int] = []
    monkeypatch.setattr(zone_counter.ZoneCounter, "_read_out", _counted(zone_counter.ZoneCounter._read_out, reads))
    scene_list = scenes(tmp_path, days=2, with_scl=True)
    overrides = Overrides(mask_asset="SCL", mask_values=SCL_DROP)
    result = compute_histogram(
        scene_list, BINS, engine=engine, spark=spark, workers=1, overrides=overrides, group_by="date",
        zones=load_zones(zones_file, "name"),
    )  # fmt: skip
    check(result, scene_list, {s.day.isoformat(): [s] for s in scene_list}, SCL_DROP)  # type: ignore[union-attr]
    if engine == "local":  # the tasks ran in this process: zones were read out in more than one batch a task
        assert sum(1 for n in reads if n) > len(scene_list)


def _counted(method: Any, reads: list[int]) -> Any:
    def wrapper(self: Any, zones: Any) -> Any:
        reads.append(len(zones))
        return method(self, zones)

    return wrapper
