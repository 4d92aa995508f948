"""Issue #11, input side: what a first-time user types and the files they meet, each against numpy."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from histcalc.bins import BinSpec
from histcalc.cli import main
from histcalc.demo import MOUNT, generate
from tests.conftest import brute_force, uint8_bins, write_raster

SEED_BBOX = (4.91, 51.16, 5.24, 51.27)
SCL_DROP = (0, 3, 8, 9, 10, 11)
DN_EDGES = np.arange(257) - 0.5  # files with scale 1: one bin per digital number


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo dataset (static catalog + Terrascope-shaped folders with NDVI and SCL side by side)."""
    return generate(tmp_path_factory.mktemp("demo"), size=64).parent


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _job(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "r.json"
    code, _, err = _run(capsys, *args, "--engine", "local", "--workers", "1", "-o", str(out))
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out.read_text())
    return doc


# --- 1. directory catalogs select by asset -------------------------------------------------------------


def test_directory_counts_only_the_asset_files(demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _job(capsys, tmp_path, "--catalog", str(demo / "data"), "--asset", "NDVI")
    ndvi = sorted((demo / MOUNT).rglob("*_NDVI_10M_V200.tif"))
    assert len(ndvi) == 9 and len(list((demo / MOUNT).rglob("*.tif"))) == 18
    ref = brute_force(ndvi, uint8_bins().array)
    assert doc["counts"] == ref["counts"].tolist() and doc["nodata"] == ref["nodata"]
    assert doc["files"]["total"] == 9


def test_directory_default_asset_is_ndvi_and_logs_what_it_left_out(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    code, _, err = _run(capsys, "--catalog", str(demo / "data"), "--engine", "local", "-o", str(out))
    assert code == 0 and json.loads(out.read_text())["files"]["total"] == 9
    assert "9 GeoTIFF(s) of asset NDVI kept, 9 of other assets left out (SCENECLASSIFICATION (9))" in err


def test_pattern_overrides_the_asset(demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = _job(capsys, tmp_path, "--catalog", str(demo / "data"), "--pattern", "*SCENECLASSIFICATION*")
    scl = sorted((demo / MOUNT).rglob("*_SCENECLASSIFICATION_20M_V200.tif"))
    values = np.concatenate([rasterio.open(p).read(1).ravel() for p in scl])
    assert doc["files"]["total"] == 9 and doc["nodata"] == int((values == 0).sum())
    assert doc["counts"][:12] == np.bincount(values[values != 0], minlength=256)[:12].tolist()


def test_unknown_asset_lists_the_assets_found(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--catalog", str(demo / "data"), "--asset", "LAI", "--engine", "local")
    assert code == 2 and err.count("\n") == 1
    assert "assets found: NDVI (9), SCENECLASSIFICATION (9)" in err
    code, _, err = _run(capsys, "--catalog", str(demo / "data"), "--pattern", "*B04*", "--engine", "local")
    assert code == 4 and "matches --pattern '*B04*'" in err


def test_mask_asset_works_for_a_directory(demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--catalog", str(demo / "data"), "--mask-asset", "SCENECLASSIFICATION")
    doc = _job(capsys, tmp_path, *args)
    counts, nodata, masked = np.zeros(256, np.int64), 0, 0
    for path in sorted((demo / MOUNT).rglob("*_NDVI_10M_V200.tif")):
        ndvi = rasterio.open(path).read(1)
        scl_path = Path(str(path).replace("_NDVI_10M_", "_SCENECLASSIFICATION_20M_"))
        scl10 = np.repeat(np.repeat(rasterio.open(scl_path).read(1), 2, axis=0), 2, axis=1)
        bad, dropped = ndvi == 255, np.isin(scl10, SCL_DROP)
        counts += np.bincount(ndvi[~bad & ~dropped], minlength=256)
        nodata, masked = nodata + int(bad.sum()), masked + int((dropped & ~bad).sum())
    assert doc["counts"] == counts.tolist() and (doc["nodata"], doc["masked"]) == (nodata, masked) and masked > 0


def test_a_single_tif_as_the_catalog(demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = sorted((demo / MOUNT).rglob("*_NDVI_10M_V200.tif"))[0]
    doc = _job(capsys, tmp_path, "--catalog", str(path))
    ref = brute_force([path], uint8_bins().array)
    assert doc["files"]["total"] == 1 and doc["counts"] == ref["counts"].tolist()


# --- 3. local files see their sidecars (.msk, .aux.xml) -----------------------------------------------


def test_external_msk_mask_is_honoured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(3)
    data = rng.integers(0, 200, (70, 50), dtype=np.uint8)
    keep = rng.random(data.shape) < 0.6
    folder = tmp_path / "d"
    folder.mkdir()
    path = folder / "ext_20240501.tif"
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=False):
        write_raster(path, data, mask=keep, block=None)
    assert Path(f"{path}.msk").exists()
    with rasterio.open(path) as src:  # GDAL's own view of the mask, as any GDAL tool sees it
        gdal_mask = src.read_masks(1) != 0
    assert (gdal_mask == keep).all()
    doc = _job(capsys, tmp_path, "--catalog", str(folder))
    assert doc["counts"] == np.bincount(data[gdal_mask], minlength=256).tolist()
    assert doc["nodata"] == int((~gdal_mask).sum()) > 0


@pytest.mark.skipif(shutil.which("gdal_translate") is None, reason="gdal_translate (gdal-bin) not installed")
def test_aux_xml_scale_offset_and_nodata_are_honoured(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = np.random.default_rng(4).integers(0, 50, (40, 30), dtype=np.uint8)
    plain = write_raster(tmp_path / "plain.tif", data, block=None)
    folder = tmp_path / "d"
    folder.mkdir()
    out = folder / "pam_20240501.tif"
    # PROFILE=BASELINE keeps GDAL's own tags out of the TIFF: nodata, scale and offset go to out.tif.aux.xml
    cmd = ["gdal_translate", "-q", "-co", "PROFILE=BASELINE", "-a_nodata", "7", "-a_scale", "0.5", "-a_offset", "10"]
    subprocess.run([*cmd, str(plain), str(out)], check=True)
    assert "<Scale>0.5</Scale>" in Path(f"{out}.aux.xml").read_text()
    doc = _job(capsys, tmp_path, "--catalog", str(folder))
    valid = data[data != 7].astype(np.float64) * 0.5 + 10
    edges = np.asarray(doc["edges"])
    assert edges[0] == 9.75 and edges[1] - edges[0] == pytest.approx(0.5)  # one bin per DN, centred
    assert doc["counts"] == np.histogram(valid, bins=edges)[0].tolist()
    assert doc["nodata"] == int((data == 7).sum()) > 0 and doc["stats"]["mean"] == pytest.approx(valid.mean())


# --- 2. one AOI code path -----------------------------------------------------------------------------


@pytest.mark.parametrize("res", [60.0, 20.0])
def test_bbox_and_the_same_geojson_polygon_count_the_same_pixels(tmp_path: Path, res: float) -> None:
    """Seed box on tile 31UFS's pixel grid (the demo's at 60 m); both spellings equal the exact lon/lat test."""
    from rasterio.transform import Affine

    from histcalc.aoi import AOI, load_geojson
    from histcalc.raster import ReadSpec, histogram_of

    shape = (int(18000 / res), int(30000 / res))
    path = write_raster(
        tmp_path / "t.tif", np.zeros(shape, np.uint8), transform=Affine(res, 0, 630000.0, 0, -res, 5685000.0)
    )
    w, s, e, n = SEED_BBOX
    geojson = tmp_path / "aoi.geojson"
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    geojson.write_text(json.dumps({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}}))
    clockwise = tmp_path / "cw.geojson"
    clockwise.write_text(json.dumps({"type": "Polygon", "coordinates": [ring[::-1]]}))
    expected = int(brute_force([path], uint8_bins().array, bbox=SEED_BBOX)["counts"].sum())
    spellings = [AOI.from_bbox(SEED_BBOX), load_geojson(geojson), load_geojson(clockwise)]
    counts = [histogram_of(str(path), uint8_bins(), ReadSpec(aoi=aoi)).count for aoi in spellings]
    assert counts == [expected] * 3 and expected > 0


@pytest.mark.parametrize(
    ("crs", "fragment"), [("EPSG:99999", "unknown CRS 'EPSG:99999'"), ("urn:ogc:def:crs:XYZ::1", "unknown CRS")]
)
def test_geojson_with_an_unknown_crs_is_a_usage_error(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], crs: str, fragment: str
) -> None:
    aoi = tmp_path / "aoi.geojson"
    ring = [[4.9, 51.1], [5.2, 51.1], [5.2, 51.2], [4.9, 51.1]]
    aoi.write_text(json.dumps({"type": "Polygon", "crs": {"properties": {"name": crs}}, "coordinates": [ring]}))
    code, _, err = _run(capsys, "--catalog", str(demo / "catalog.json"), "--aoi", str(aoi), "--engine", "local")
    assert code == 2 and fragment in err and err.count("\n") == 1


def test_geojson_with_projected_coordinates_and_no_crs_is_refused(tmp_path: Path) -> None:
    from histcalc.aoi import load_geojson
    from histcalc.errors import UsageError

    aoi = tmp_path / "utm.geojson"
    aoi.write_text(json.dumps({"type": "Polygon", "coordinates": [[[6e5, 5.6e6], [6.1e5, 5.6e6], [6e5, 5.7e6]]]}))
    with pytest.raises(UsageError, match=r"outside lon -180\.\.180"):
        load_geojson(aoi)


# --- 4. files an AOI cannot be placed on simply ---------------------------------------------------------


def _failed(doc: dict[str, Any]) -> dict[str, str]:
    return {Path(f["href"]).name: f["error"] for f in doc["files"]["failed"]}


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_no_crs_is_a_named_failure_and_a_rotated_file_is_exact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rasterio.transform import Affine

    folder = tmp_path / "d"
    folder.mkdir()
    rng = np.random.default_rng(8)
    data = rng.integers(0, 250, (150, 120), dtype=np.uint8)
    good = write_raster(folder / "good_20240501.tif", data, transform=Affine(100, 0, 630000, 0, -100, 5685000))
    write_raster(folder / "nocrs_20240501.tif", data, crs=None, transform=Affine.identity())  # type: ignore[arg-type]
    rotated = write_raster(folder / "rot_20240501.tif", data, transform=Affine(90, 30, 630000, 25, -95, 5685000))
    out = tmp_path / "r.json"
    bbox = (4.9, 51.2, 5.5, 51.28)  # cuts through both georeferenced files
    code, _, _ = _run(
        capsys, "--catalog", str(folder), "--bbox=4.9,51.2,5.5,51.28", "--engine", "local", "-o", str(out)
    )
    doc = json.loads(out.read_text())
    assert code == 5 and doc["files"]["total"] == 3
    assert list(_failed(doc)) == ["nocrs_20240501.tif"] and "has no CRS" in _failed(doc)["nocrs_20240501.tif"]
    ref = brute_force([good, rotated], DN_EDGES, bbox=bbox)  # pixel centres through the full affine
    one = brute_force([rotated], DN_EDGES, bbox=bbox)
    assert doc["counts"] == ref["counts"].tolist() and 0 < one["counts"].sum() < data.size


def test_rotated_file_without_an_aoi_counts_every_pixel(tmp_path: Path) -> None:
    from rasterio.transform import Affine

    from histcalc.raster import ReadSpec, histogram_of

    data = np.random.default_rng(5).integers(0, 250, (30, 20), dtype=np.uint8)
    path = write_raster(tmp_path / "rot.tif", data, transform=Affine(100, 10, 630000, 10, -100, 5685000), block=None)
    h = histogram_of(str(path), BinSpec.per_digital_number("uint8", 1.0, 0.0), ReadSpec())
    np.testing.assert_array_equal(h.counts, np.bincount(data.ravel(), minlength=256))


GEOS = "+proj=geos +h=35786023 +lon_0=-75 +sweep=x +ellps=GRS80 +units=m +no_defs"


def test_full_disk_geostationary_image_matches_a_bbox(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """GOES-East-like full disk: corners in space, so its footprint cannot come from its corners."""
    from rasterio.transform import from_bounds

    from histcalc.raster import inspect

    half = 5_434_894.7  # the full disk's half-width in metres of the geos projection
    data = np.random.default_rng(6).integers(0, 250, (128, 128), dtype=np.uint8)
    folder = tmp_path / "d"
    folder.mkdir()
    transform = from_bounds(-half, -half, half, half, 128, 128)
    path = write_raster(folder / "goes_20240501.tif", data, crs=GEOS, transform=transform)
    footprint = inspect(str(path)).lonlat_bounds
    assert footprint is not None and footprint[0] < -150 and footprint[2] > 0 and footprint[3] > 75
    bbox = (-60.0, -20.0, -40.0, 0.0)
    doc = _job(capsys, tmp_path, "--catalog", str(folder), "--bbox=" + ",".join(map(str, bbox)))
    ref = brute_force([path], DN_EDGES, bbox=bbox)
    assert doc["counts"] == ref["counts"].tolist() and sum(doc["counts"]) > 10


# --- 5. what users type -------------------------------------------------------------------------------


def _query(*argv: str) -> Any:
    from histcalc.argv import join_number_args
    from histcalc.cli import job_parser, query_from_args

    return query_from_args(job_parser().parse_args(join_number_args(argv)))


@pytest.fixture(scope="module")
def west(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lon/lat raster over San Francisco: negative longitudes."""
    from rasterio.transform import from_origin

    folder = tmp_path_factory.mktemp("west")
    data = np.random.default_rng(7).integers(0, 250, (60, 80), dtype=np.uint8)
    write_raster(folder / "sf_20240501.tif", data, crs="EPSG:4326", transform=from_origin(-122.6, 37.9, 0.004, 0.004))
    return folder


@pytest.mark.parametrize(
    "spelling",
    [
        ["--bbox", "-122.5,37.7,-122.3,37.8"],
        ["--bbox", "-122.5", "37.7", "-122.3", "37.8"],
        ["--bbox=-122.5,37.7,-122.3,37.8"],
        ["--bbox", "-122.5, 37.7, -122.3, 37.8"],
    ],
)
def test_negative_and_separate_bbox_numbers(
    west: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], spelling: list[str]
) -> None:
    doc = _job(capsys, tmp_path, "--catalog", str(west), *spelling, "--range", "-1", "300", "--bins", "301")
    bbox = (-122.5, 37.7, -122.3, 37.8)
    ref = brute_force([west / "sf_20240501.tif"], np.linspace(-1, 300, 302), bbox=bbox)
    assert doc["query"]["bbox"] == list(bbox) and doc["counts"] == ref["counts"].tolist()
    assert 0 < sum(doc["counts"]) < 60 * 80


def test_negative_range_after_a_space() -> None:
    from histcalc.argv import join_number_args
    from histcalc.cli import bins_from_args, job_parser

    for argv in (["--range", "-1,1"], ["--range", "-1", "1"], ["--range=-1,1"], ["--range", "-1e0,1"]):
        bins = bins_from_args(job_parser().parse_args(join_number_args([*argv, "--bins", "4"])))
        assert bins is not None and bins.edges == (-1.0, -0.5, 0.0, 0.5, 1.0)


@pytest.mark.parametrize(
    ("argv", "start", "end"),
    [
        (["--start-date", "2024-05-01T10:00:00Z", "--end-date", "2024-06-10T23:59:59Z"], "2024-05-01", "2024-06-10"),
        (["--start-date", "2024-05-01T23:30:00-02:00"], "2024-05-02", None),  # its UTC day
        (["--start-date", "2024-05", "--end-date", "2024-06"], "2024-05-01", "2024-06-30"),
        (["--start-date", "2024", "--end-date", "2024"], "2024-01-01", "2024-12-31"),
        (["--end-date", "2024-02"], None, "2024-02-29"),
        (["--datetime", "2024-05-01/2024-06-10"], "2024-05-01", "2024-06-10"),
        (["--datetime", "2024-05-01T00:00:00Z/2024-06-10T00:00:00Z"], "2024-05-01", "2024-06-10"),
        (["--datetime", "2024-05/.."], "2024-05-01", None),
        (["--datetime", "../2024-06"], None, "2024-06-30"),
        (["--datetime", "2024-05"], "2024-05-01", "2024-05-31"),
    ],
)
def test_date_spellings(argv: list[str], start: str | None, end: str | None) -> None:
    query, _ = _query("--catalog", ".", *argv)
    assert (query.start and query.start.isoformat(), query.end and query.end.isoformat()) == (start, end)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--datetime", "2024-05", "--start-date", "2024-05-01"], "either --datetime"),
        (["--datetime", "2024-13"], "--datetime must be a date"),
        (["--bins", "100000000"], "up to 10,000,000"),
        (["--percentiles", "50,150"], "0..100"),
        (["--percentiles", "-1"], "0..100"),
        (["--scale", "0"], "--scale must be a finite number other than 0"),
        (["--scale", "nan"], "--scale"),
        (["--catalog", "ftp://example.org/catalog.json"], "unsupported URL scheme ftp://"),
    ],
)
def test_more_bad_input_is_one_line_and_exit_2(
    demo: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    code, _, err = _run(capsys, "--catalog", str(demo / "catalog.json"), "--engine", "local", *argv)
    assert code == 2 and fragment in err and err.count("\n") == 1, err


def test_bins_without_range_span_the_data_type(demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    code, _, err = _run(
        capsys, "--catalog", str(demo / "catalog.json"), "--bins", "100", "--engine", "local", "-o", str(out)
    )
    doc = json.loads(out.read_text())
    assert code == 0
    edges = np.linspace(-0.5 * 0.004 - 0.08, 255.5 * 0.004 - 0.08, 101)  # uint8 DN -0.5..255.5, physical
    np.testing.assert_allclose(doc["edges"], edges, rtol=0, atol=1e-12)
    ref = brute_force(sorted((demo / MOUNT).rglob("*_NDVI_10M_V200.tif")), np.asarray(doc["edges"]))
    assert doc["counts"] == ref["counts"].tolist()
    assert "bins hold 2 or 3 values each" in err and "aligned bins: --range -0.082,0.95 --bins 86" in err


def test_aligned_bins_do_not_warn(demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--catalog", str(demo / "catalog.json"), "--bins", "64", "--dry-run")
    assert code == 0 and "steps of the data" not in err
    code, _, err = _run(capsys, "--catalog", str(demo / "catalog.json"), "--range", "0,1", "--bins", "300", "--dry-run")
    assert code == 0 and "some bins stay empty" in err


# --- 6. checks against the first header, options that do nothing, hints -----------------------------------


def test_band_beyond_the_files_is_a_usage_error(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--catalog", str(demo / "catalog.json"), "--band", "2", "--engine", "local", "-q")
    assert code == 2 and "--band 2: the files have 1 band(s)" in err and err.count("\n") == 1


def test_options_that_do_nothing_warn(west: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--catalog", str(west), "--engine", "local", "--dry-run"]
    code, _, err = _run(capsys, *args, "--mask-values", "3,8", "--master", "local[2]", "--workers", "64")
    assert code == 0
    assert "--mask-values does nothing without --mask-asset" in err
    assert "--master does nothing with --engine local" in err
    assert "--workers 64: only 16 task(s) to run" in err


def test_swapped_bbox_gets_a_hint(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--catalog", str(demo / "catalog.json"), "--bbox", "51.16,4.91,51.27,5.24")
    assert code == 4 and "lon/lat swapped? --bbox is W,S,E,N" in err and "--bbox 4.91,51.16,5.24,51.27" in err
    code, _, err = _run(capsys, "--catalog", str(demo / "catalog.json"), "--bbox", "37.7,-122.5,37.8,-122.3")
    assert code == 2 and "latitudes" in err and "--bbox -122.5,37.7,-122.3,37.8" in err


def test_static_catalog_refusing_connections_is_one_clean_line(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    code, _, err = _run(capsys, "--catalog", f"http://127.0.0.1:{port}/catalog.json", "--engine", "local")
    assert code == 3 and err.count("\n") == 1
    assert err.startswith(f"histcalc: error: static catalog http://127.0.0.1:{port}/catalog.json: cannot connect (")


# --- 7. --dry-run ----------------------------------------------------------------------------------------


def test_dry_run_plans_and_estimates_without_reading(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "r.json"
    code, stdout, _ = _run(capsys, "--catalog", str(demo / "catalog.json"), "--engine", "local", "--workers", "2",
                           "--dry-run", "-o", str(out))  # fmt: skip
    assert code == 0 and not out.exists()
    assert "dry run: 9 scene(s), 9 file(s) (0 remote), 9 task(s) on 2 core(s)" in stdout
    assert f"to read: {9 * 64 * 64:,} pixels, 36.9 KB uncompressed" in stdout and "estimated time: ~" in stdout
    assert stdout.count("S2A_20240501T104621_31UFS_NDVI_10M_V200") == 2  # id and href of the first scene


def test_dry_run_with_an_aoi_counts_the_window(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from histcalc import AOI, Query, find_scenes
    from histcalc.dryrun import estimate
    from histcalc.plan import plan_tasks, split_parts

    scenes = find_scenes(Query(catalog=str(demo / "catalog.json")))
    aoi = AOI.from_bbox(SEED_BBOX)
    est = estimate(scenes, aoi, plan_tasks(scenes, split_parts(len(scenes), 2)), 2)
    files = sorted((demo / MOUNT).rglob("*_NDVI_10M_V200.tif"))
    inside = brute_force(files, uint8_bins().array, bbox=SEED_BBOX)
    in_aoi = int(inside["counts"].sum()) + inside["nodata"]
    assert est.files == 9 and est.sampled == 5 and in_aoi <= est.pixels < 9 * 64 * 64 // 4


# --- 8. --help and -v ------------------------------------------------------------------------------------


def test_help_shows_subcommands_examples_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0
    assert "histcalc demo" in out and "histcalc plot" in out and "examples:" in out
    assert "exit codes:" in out and "4 no scene matched" in out
    for flag in ("--pattern", "--datetime", "--dry-run", "--filter", "--allow-failures"):
        assert flag in out


def test_verbose_lists_files_and_resolved_values(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--catalog", str(demo / "catalog.json"), "--dry-run", "-v", "--bins", "64")
    assert code == 0
    assert err.count("selected 2024-") == 9 and "S2B_20240506T104621_31UFS_NDVI_10M_V200.tif" in err
    assert "values: uint8, physical = DN * 0.004 + -0.08, nodata 255.0" in err and "64 bins -0.082..0.942" in err


def test_readme_flag_table_lists_every_flag() -> None:
    from histcalc.cli import job_parser

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = "\n".join(line for line in readme.splitlines() if line.startswith("| `"))
    flags = {o for a in job_parser()._actions for o in a.option_strings if o.startswith("--") and "_" not in o}
    missing = sorted(f for f in flags if f"`{f}" not in table and f"{f} " not in table and f"{f}`" not in table)
    assert not missing, missing


# --- found trying the CLI as a new user ----------------------------------------------------------------


def test_choices_and_asset_keys_ignore_case(demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--catalog", str(demo / "catalog.json"), "--asset", "ndvi", "--group-by", "Month")
    doc = _job(capsys, tmp_path, *args, "--mask-asset", "sceneclassification", "--engine", "LOCAL")
    assert doc["files"]["total"] == 9 and doc["masked"] > 0


def test_unknown_catalog_asset_or_mask_asset_lists_what_there_is(
    demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = str(demo / "catalog.json")
    code, _, err = _run(capsys, "--catalog", catalog, "--asset", "LAI", "--engine", "local", "-q")
    assert (
        code == 2 and "no selected item has the asset 'LAI' (--asset); their assets: NDVI, SCENECLASSIFICATION" in err
    )
    code, _, err = _run(capsys, "--catalog", catalog, "--mask-asset", "SCL", "--engine", "local", "-q")
    assert (
        code == 2 and "--mask-asset SCL: the selected scenes have no such asset" in err and "SCENECLASSIFICATION" in err
    )
    assert err.count("\n") == 1


def test_unpadded_and_slashed_dates() -> None:
    query, _ = _query("--catalog", ".", "--start-date", "2024-5-1", "--end-date", "2024/6/10")
    assert (query.start.isoformat(), query.end.isoformat()) == ("2024-05-01", "2024-06-10")


def test_demo_takes_datetime_instead_of_the_seed_days(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.json"
    argv = ["demo", "--dir", str(tmp_path / "d"), "--size", "32", "--engine", "local", "--datetime", "2024-05"]
    code, _, err = _run(capsys, *argv, "-o", str(out), "-q")
    doc = json.loads(out.read_text())
    assert code == 0, err
    assert (doc["query"]["start_date"], doc["query"]["end_date"]) == ("2024-05-01", "2024-05-31")
    assert doc["files"]["total"] == 7  # May 1, 6, ..., 31


def test_no_swap_hint_for_a_box_that_reads_the_same_swapped(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "--catalog", str(demo / "catalog.json"), "--bbox", "0,0,1,1", "-q")
    assert code == 4 and "swapped" not in err


def test_pattern_with_a_stac_catalog_warns(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for catalog in (demo / "catalog.json", demo):  # the demo folder holds its catalog.json: read as that
        code, _, err = _run(capsys, "--catalog", str(catalog), "--pattern", "*.tif", "--dry-run", "-q")
        assert code == 0 and "--pattern does nothing with a STAC catalog" in err


def test_an_aoi_partly_off_the_disk_is_a_named_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rasterio.transform import from_bounds

    half = 5_434_894.7
    folder = tmp_path / "d"
    folder.mkdir()
    data = np.ones((64, 64), dtype=np.uint8)
    write_raster(folder / "goes_20240501.tif", data, crs=GEOS, transform=from_bounds(-half, -half, half, half, 64, 64))
    out = tmp_path / "r.json"
    code, _, _ = _run(capsys, "--catalog", str(folder), "--bbox=-10,0,40,10", "--engine", "local", "-o", str(out))
    assert code == 5 and "beyond the Earth's disk" in _failed(json.loads(out.read_text()))["goes_20240501.tif"]


def test_aoi_as_inline_geojson_and_a_hint_for_other_formats(
    demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from histcalc.aoi import AOI, load_geojson
    from histcalc.errors import UsageError

    w, s, e, n = SEED_BBOX
    text = json.dumps({"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]})
    assert load_geojson(text).geometry == AOI.from_bbox(SEED_BBOX).geometry
    shapefile = tmp_path / "fields.shp"
    shapefile.write_bytes(b"\x00\x00\x27\x0a")
    with pytest.raises(UsageError, match=r"ogr2ogr -f GeoJSON aoi\.geojson fields\.shp"):
        load_geojson(shapefile)


def test_catalog_with_a_tilde_after_an_equals_sign(
    demo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(demo))
    code, stdout, _ = _run(capsys, "--catalog=~/catalog.json", "--dry-run", "-q")
    assert code == 0 and "dry run: 9 scene(s)" in stdout


def test_number_lists_after_spaces() -> None:
    from histcalc.argv import join_number_args

    argv = ["--percentiles", "10", "90", "--mask-values", "3", "8,9", "--offset", "-0.08", "--bbox", "1", "2", "3", "4"]
    assert join_number_args([*argv, "-q"]) == [
        "--percentiles=10,90",
        "--mask-values=3,8,9",
        "--offset=-0.08",
        "--bbox=1,2,3,4",
        "-q",
    ]
    assert join_number_args(["--bbox", "1,2,3,4", "5"]) == ["--bbox=1,2,3,4", "5"]  # a fifth number stays out


def test_an_unreachable_single_file_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/S2A_20240501T104621_31UFS_NDVI_10M_V200.tif"
    code, _, err = _run(capsys, "--catalog", url, "--engine", "local", "-q")
    assert code == 5 and err.count("\n") == 1
    assert f"no selected file opens to choose the bins: {url}: " in err and "connect" in err
