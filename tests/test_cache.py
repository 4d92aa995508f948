"""--cache (issue 13): a re-run reads only what it has not counted, and equals a run without the cache.

Expected values come from numpy over every pixel (tests.conftest.brute_force) or from a clean run
without a cache; ``files_cached`` says how many files were not read.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from rasterio.transform import Affine

from histcalc import Scene, compute_histogram
from histcalc.bins import BinSpec
from histcalc.cache import LocalStore
from histcalc.cache_entry import CorruptEntry, decode, encode
from histcalc.cache_key import UnhashableValue, canonical, job_hash, task_key
from histcalc.cached_task import ENTRY_SUFFIX
from histcalc.plan import JobSpec, Overrides, Task, run_task
from histcalc.result import JobResult
from tests.conftest import brute_force, write_raster

BOTH = pytest.mark.parametrize("engine", ["local", pytest.param("spark", marks=pytest.mark.spark)])
CRS = "EPSG:32631"
X0, Y0, PX = 600000.0, 5700000.0, 10.0
GRID = Affine(PX, 0, X0, 0, -PX, Y0)
BINS = BinSpec.per_digital_number("uint8", 0.004, -0.08)
MAY = [date(2024, 5, d) for d in (3, 8, 13, 18, 23)]
JUNE = [date(2024, 6, d) for d in (2, 7, 12)]


def write_scene(folder: Path, day: date, seed: int, shape: tuple[int, int] = (48, 40)) -> Scene:
    """An NDVI-like uint8 file (nodata 255, ~5 % of it) and an SCL-like sibling for masks."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 251, shape, dtype=np.uint8)
    data[rng.random(shape) < 0.05] = 255
    name = f"S2A_{day:%Y%m%d}T104621_31UFS"
    path = write_raster(folder / f"{name}_NDVI.tif", data, crs=CRS, transform=GRID, nodata=255,
                        scale=0.004, offset=-0.08, block=16)  # fmt: skip
    scl = write_raster(folder / f"{name}_SCL.tif", rng.integers(0, 12, shape, dtype=np.uint8), crs=CRS,
                       transform=GRID, block=16)  # fmt: skip
    return Scene(id=name, href=str(path), day=day, extra_hrefs={"SCL": str(scl)})


@pytest.fixture
def season(tmp_path: Path) -> tuple[list[Scene], list[Scene]]:
    folder = tmp_path / "data"
    folder.mkdir()
    may = [write_scene(folder, d, i) for i, d in enumerate(MAY)]
    june = [write_scene(folder, d, 100 + i) for i, d in enumerate(JUNE)]
    return may, june


def run(scenes: list[Scene], engine: str, spark: Any, cache: Path | str | None, **kw: Any) -> JobResult:
    spark = spark if engine == "spark" else None
    return compute_histogram(scenes, kw.pop("bins", BINS), engine=engine, spark=spark, workers=2,
                             cache=None if cache is None else str(cache), **kw)  # fmt: skip


def assert_same(got: JobResult, want: JobResult) -> None:
    """Counts and tallies exactly; moments as the merge order allows (it differs between any two runs)."""
    assert set(got.groups) == set(want.groups)
    for g, w in [(got.histogram, want.histogram), *((got.groups[k], want.groups[k]) for k in want.groups)]:
        np.testing.assert_array_equal(g.counts, w.counts)
        assert (g.below, g.above, g.nodata, g.masked, g.vmin, g.vmax) == (
            w.below, w.above, w.nodata, w.masked, w.vmin, w.vmax
        )  # fmt: skip
        assert g.moments.n == w.moments.n
        assert g.moments.mean == pytest.approx(w.moments.mean, rel=1e-12)
        assert g.moments.m2 == pytest.approx(w.moments.m2, rel=1e-9)
    assert got.files_ok == want.files_ok and got.files_failed == want.files_failed


def entries(cache: Path) -> list[Path]:
    return sorted(p for p in cache.rglob(f"*{ENTRY_SUFFIX}") if not p.name.startswith("."))


@BOTH
def test_may_then_may_june_reads_only_june_and_equals_a_clean_run(
    engine: str, season: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    spark = request.getfixturevalue("spark") if engine == "spark" else None
    may, june = season
    cache = tmp_path / "cache"
    first = run(may, engine, spark, cache, group_by="month")
    assert first.files_cached == 0 and len(entries(cache)) == len(may)
    second = run(may + june, engine, spark, cache, group_by="month")
    assert second.files_cached == len(may)  # the June files were the only ones read
    assert len(entries(cache)) == len(may) + len(june)
    clean = run(may + june, engine, spark, None, group_by="month")
    assert clean.files_cached is None and "cached" not in clean.files_dict()
    assert_same(second, clean)
    ref = brute_force([Path(s.href) for s in may + june], BINS.array)
    np.testing.assert_array_equal(second.histogram.counts, ref["counts"])
    assert second.histogram.nodata == ref["nodata"]
    assert second.files_dict()["cached"] == len(may)
    third = run(may + june, engine, spark, cache, group_by="month")
    assert third.files_cached == len(may) + len(june)
    assert_same(third, clean)


@BOTH
def test_a_file_rewritten_in_place_is_recounted(
    engine: str, season: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    spark = request.getfixturevalue("spark") if engine == "spark" else None
    may, _ = season
    cache = tmp_path / "cache"
    run(may, engine, spark, cache)
    before = os.stat(may[0].href)
    rewritten = write_scene(Path(may[0].href).parent, MAY[0], seed=999)  # same name, new content
    os.utime(rewritten.href, ns=(before.st_atime_ns, before.st_mtime_ns + 5_000_000_000))  # coarse clocks
    again = run(may, engine, spark, cache)
    assert again.files_cached == len(may) - 1
    ref = brute_force([Path(s.href) for s in may], BINS.array)
    np.testing.assert_array_equal(again.histogram.counts, ref["counts"])
    assert again.histogram.nodata == ref["nodata"]


def test_a_rewritten_mask_file_is_recounted(season: Any, tmp_path: Path) -> None:
    may, _ = season
    cache = tmp_path / "cache"
    masked = {"overrides": Overrides(mask_asset="SCL", mask_values=(3, 8, 9))}
    run(may, "local", None, cache, **masked)
    scl = Path(may[1].extra_hrefs["SCL"])
    before = os.stat(scl)
    write_raster(scl, np.full((48, 40), 8, np.uint8), crs=CRS, transform=GRID, block=16)  # all cloud now
    os.utime(scl, ns=(before.st_atime_ns, before.st_mtime_ns + 5_000_000_000))
    again = run(may, "local", None, cache, **masked)
    assert again.files_cached == len(may) - 1
    assert_same(again, run(may, "local", None, None, **masked))


@pytest.mark.parametrize(
    "change",
    [
        {"bins": BinSpec.uniform(10, -0.1, 1.0)},
        {"overrides": Overrides(mask_asset="SCL", mask_values=(3, 8, 9))},
        {"overrides": Overrides(mask_asset="SCL", mask_values=(3, 8))},
        {"overrides": Overrides(nodata=0)},
        {"aoi": "box"},
        {"group_by": "date"},
    ],
    ids=["bins", "mask", "mask values", "nodata", "aoi", "grouping"],
)
def test_changing_a_counting_option_misses(change: dict[str, Any], season: Any, tmp_path: Path) -> None:
    from histcalc.aoi import AOI

    may, _ = season
    cache = tmp_path / "cache"
    base = {"overrides": Overrides(mask_asset="SCL", mask_values=(3, 8, 9, 10))}
    run(may, "local", None, cache, **base)
    if change.get("aoi"):
        ring = [[4.0, 50.0], [4.5, 50.0], [4.5, 52.0], [4.0, 52.0], [4.0, 50.0]]
        change = {**base, "aoi": AOI.from_polygons([[ring]])}
    changed = {**base, **change}
    assert run(may, "local", None, cache, **changed).files_cached == 0
    assert_same(run(may, "local", None, cache, **changed), run(may, "local", None, None, **changed))
    assert run(may, "local", None, cache, **base).files_cached == len(may)  # the first job's entries remain


def test_the_job_hash_covers_every_counting_field_and_nothing_else() -> None:
    job = JobSpec(BINS)
    same = [dataclasses.replace(job, gdal={"GDAL_HTTP_TIMEOUT": "5"}), dataclasses.replace(job, on_error="fail")]
    assert {job_hash(j) for j in same} == {job_hash(job)}
    changed = [
        dataclasses.replace(job, band=2),
        dataclasses.replace(job, bins=BinSpec.uniform(4, 0, 1)),
        dataclasses.replace(job, mask_values=(3,)),
        dataclasses.replace(job, all_touched=True),
        dataclasses.replace(job, parts=2),
    ]
    assert len({job_hash(j) for j in [job, *changed]}) == len(changed) + 1
    keys = {f.name for f in dataclasses.fields(Task)} - {"href"}
    task = Task("a.tif")
    values = {"group": "2024-05", "scale": 2.0, "offset": 1.0, "nodata": 0.0, "mask_href": "m.tif", "part": 1,
              "zone_key": "k", "updated": "2024-06-01T00:00:00Z"}  # fmt: skip
    variants = [dataclasses.replace(task, **{k: values[k]}) for k in keys if k in values]
    assert len(variants) == len(keys) - len(keys - values.keys())
    key_of = [task_key("j", t, job, "size=1;mtime_ns=2") for t in [task, *variants]]
    assert len(set(key_of)) == len(key_of)
    assert task_key("j", task, job, "size=1;mtime_ns=3") != key_of[0]  # the file changed
    with pytest.raises(UnhashableValue):
        canonical(object())
    geoms = np.array([shapely.box(0, 0, 1, 1), shapely.box(0, 0, 2, 2)], dtype=object)
    copy = np.array([shapely.box(0, 0, 1, 1), shapely.box(0, 0, 2, 2)], dtype=object)
    assert canonical(geoms) == canonical(copy) != canonical(copy[::-1])  # by value, not by address


def test_zones_key_by_geometry_not_by_file(tmp_path: Path) -> None:
    import geopandas as gpd

    from histcalc.zone_files import load_zones

    def subset(name: str, shift: float) -> Any:
        poly = shapely.box(X0 + 20 + shift, Y0 - 200, X0 + 200, Y0 - 20)
        gpd.GeoDataFrame({"id": ["a"]}, geometry=[poly], crs=CRS).to_file(tmp_path / name, driver="GPKG")
        return load_zones(tmp_path / name, "id").for_raster(CRS, (X0, Y0 - 480, X0 + 400, Y0))

    one, renamed, moved = subset("a.gpkg", 0), subset("b.gpkg", 0), subset("c.gpkg", 10)

    def key(s: Any) -> str:
        job = JobSpec(BINS, zone_subsets={"k": s})
        return task_key(job_hash(job), Task("x.tif", zone_key="k"), job, "size=1")

    assert key(one) == key(renamed) and key(one) != key(moved)


@BOTH
def test_zonal_may_then_june_equals_a_clean_run_and_moved_zones_miss(
    engine: str, season: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import geopandas as gpd

    from histcalc.zone_files import load_zones

    spark = request.getfixturevalue("spark") if engine == "spark" else None

    def zones_file(name: str, shift: float) -> Any:
        polys = [shapely.box(X0 + 22 + shift, Y0 - 300, X0 + 180, Y0 - 12),
                 shapely.box(X0 + 150, Y0 - 470, X0 + 390, Y0 - 250)]  # fmt: skip
        gpd.GeoDataFrame({"id": ["p1", "p2"]}, geometry=polys, crs=CRS).to_file(tmp_path / name, driver="GPKG")
        return load_zones(tmp_path / name, "id")

    zones = zones_file("z.gpkg", 0)
    may, june = season
    cache = tmp_path / "cache"
    run(may, engine, spark, cache, zones=zones, group_by="month")
    second = run(may + june, engine, spark, cache, zones=zones, group_by="month")
    clean = run(may + june, engine, spark, None, zones=zones, group_by="month")
    assert second.files_cached == len(may)
    assert_same(second, clean)
    for zone in ("p1", "p2"):
        for month in ("2024-05", "2024-06"):
            got, want = second.zone_histogram(zone, month), clean.zone_histogram(zone, month)
            np.testing.assert_array_equal(got.counts, want.counts)
            assert (got.nodata, got.masked, got.vmin, got.vmax) == (want.nodata, want.masked, want.vmin, want.vmax)
            assert got.moments.mean == pytest.approx(want.moments.mean, rel=1e-12)
    moved = zones_file("moved.gpkg", 40.0)  # one zone's edge moves by 4 pixels
    assert run(may, engine, spark, cache, zones=moved, group_by="month").files_cached == 0
    renamed = zones_file("renamed.gpkg", 0)  # the same zones in another file
    assert run(may + june, engine, spark, cache, zones=renamed, group_by="month").files_cached == len(may) + len(june)


def test_a_corrupt_entry_is_reported_recounted_and_overwritten(
    season: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    may, _ = season
    cache = tmp_path / "cache"
    clean = compute_histogram(may, BINS, engine="local", workers=1)
    compute_histogram(may, BINS, engine="local", workers=1, cache=str(cache))
    torn, flipped = entries(cache)[:2]
    torn.write_bytes(torn.read_bytes()[:50])
    data = bytearray(flipped.read_bytes())
    data[-20] ^= 0xFF
    flipped.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="histcalc"):
        again = compute_histogram(may, BINS, engine="local", workers=1, cache=str(cache))
    assert again.files_cached == len(may) - 2
    assert_same(again, clean)
    warned = [r.getMessage() for r in caplog.records if "corrupt entry" in r.getMessage()]
    assert len(warned) == 2 and any(torn.name in w for w in warned) and any(flipped.name in w for w in warned)
    assert compute_histogram(may, BINS, engine="local", workers=1, cache=str(cache)).files_cached == len(may)


def test_entries_round_trip_and_refuse_damage(season: Any) -> None:
    may, _ = season
    job = JobSpec(BINS, parts=2)
    task = Task(may[0].href, group="2024-05", part=1)
    partial = run_task(task, job)
    data = encode(partial, {"job": "J"})
    back = decode(data, task.href, BINS, "J")
    assert (back.tasks, back.cached) == (1, 1)
    h, b = partial.parts[task.href][("", "2024-05")], back.parts[task.href][("", "2024-05")]
    np.testing.assert_array_equal(h.counts, b.counts)
    assert (h.moments, h.vmin, h.vmax, h.nodata) == (b.moments, b.vmin, b.vmax, b.nodata)
    for bad, why in [(data[:30], "truncated"), (b"X" + data[1:], "header"), (data[:-1], "checksum")]:
        with pytest.raises(CorruptEntry, match=why):
            decode(bad, task.href, BINS, "J")
    with pytest.raises(CorruptEntry, match="another job"):
        decode(data, task.href, BINS, "K")
    with pytest.raises(CorruptEntry, match="bins"):
        decode(data, task.href, BinSpec.uniform(3, 0, 1), "J")


def test_concurrent_writers_of_one_key_never_leave_a_torn_entry(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    store = LocalStore(str(tmp_path / "c"))
    payloads = [bytes([i]) * 200_000 for i in range(8)]

    def write_and_read(i: int) -> bool:
        store.put("j/k.hcp", payloads[i % 8])
        got = store.get("j/k.hcp")
        return got in payloads

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(write_and_read, range(64)))
    assert [e.name for e in store.list()] == ["j/k.hcp"]  # no temporary file left behind


def test_failed_files_are_not_cached_and_are_retried(season: Any, tmp_path: Path) -> None:
    may, _ = season
    broken = tmp_path / "data" / "S2A_20240520T104621_31UFS_NDVI.tif"
    broken.write_bytes(b"not a tiff")
    scenes = [*may, Scene(id="broken", href=str(broken), day=date(2024, 5, 20))]
    cache = tmp_path / "cache"
    first = run(scenes, "local", None, cache)
    assert list(first.files_failed) == [str(broken)] and len(entries(cache)) == len(may)
    write_raster(broken, np.full((8, 8), 7, np.uint8), crs=CRS, transform=GRID, nodata=255, scale=0.004, offset=-0.08)
    second = run(scenes, "local", None, cache)
    assert second.files_cached == len(may) and not second.files_failed
    assert second.histogram.count == first.histogram.count + 64


@pytest.mark.parametrize("engine", ["local", pytest.param("spark", marks=[pytest.mark.spark, pytest.mark.slow])])
def test_cli_kill_9_half_way_then_the_rerun_reads_only_the_rest(engine: str, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    days = [date(2024, 5, 1 + i % 28) for i in range(160)]
    for i, day in enumerate(days):
        rng = np.random.default_rng(i)
        write_raster(folder / f"S2B_{day:%Y%m%d}T1{i:05d}_31UFS_NDVI.tif", rng.integers(0, 256, (256, 256), np.uint8),
                     crs=CRS, transform=GRID, nodata=255, block=64)  # fmt: skip
    cache = tmp_path / "cache"
    engine_args = ["--workers", "2"] if engine == "local" else ["--master", "local[2]"]
    argv = [sys.executable, "-m", "histcalc", "--catalog", str(folder), "--engine", engine, *engine_args,
            "--cache", str(cache), "-q", "-o", str(tmp_path / "r.json")]  # fmt: skip
    driver = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while len(entries(cache)) < 20 if cache.exists() else True:
        assert driver.poll() is None, "the job ended before it could be killed: " + driver.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    done = _settled(cache)
    assert 20 <= done < len(days)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    import json

    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["files"]["cached"] == done and doc["files"]["total"] == len(days)
    assert doc["query"]["cache"] == str(cache)
    clean = compute_histogram(
        [Scene(id=p.stem, href=str(p)) for p in sorted(folder.iterdir())], None, engine="local", workers=2
    )
    assert doc["counts"] == clean.histogram.counts.tolist() and doc["nodata"] == clean.histogram.nodata
    assert len(entries(cache)) == len(days)


def _settled(cache: Path) -> int:
    """Entries once the killed driver's workers are gone (they exit with it: the count stops moving)."""
    last, still = -1, 0
    while still < 5:
        now = len(entries(cache))
        still = still + 1 if now == last else 0
        last = now
        time.sleep(0.2)
    return last


def test_a_reprocessed_item_misses_by_its_updated_property(season: Any, tmp_path: Path) -> None:
    import pystac

    from histcalc.scenes import Query, _scene_from_item

    may, _ = season
    item = pystac.Item("x", None, None, datetime(2024, 5, 3, tzinfo=UTC), {"updated": "2024-06-01T10:00:00Z"})
    item.add_asset("NDVI", pystac.Asset(may[0].href))
    assert _scene_from_item(item, Query(catalog="x.json", collection=None)).updated == "2024-06-01T10:00:00Z"
    cache = tmp_path / "cache"
    stamped = [dataclasses.replace(s, updated="2024-06-01T10:00:00Z") for s in may]
    run(stamped, "local", None, cache)
    assert run(stamped, "local", None, cache).files_cached == len(may)
    stamped[1] = dataclasses.replace(stamped[1], updated="2024-07-15T08:00:00Z")  # the catalog reprocessed it
    assert run(stamped, "local", None, cache).files_cached == len(may) - 1


def test_cli_cache_info_prune_and_an_unwritable_cache(
    season: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from histcalc.cli import main
    from histcalc.cli_cache import cutoff_of

    cache = tmp_path / "cache"
    argv = ["--catalog", str(tmp_path / "data"), "--engine", "local", "--workers", "2", "-q"]
    assert main([*argv, "--cache", str(cache), "--end-date", "2024-05-31"]) == 0
    assert main([*argv, "--cache", str(cache), "-o", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert f"{len(MAY)} from cache, {len(JUNE)} read" in out
    (cache / "stray.hcp.tmp-1-abc").write_bytes(b"torn")  # a writer that died before its rename
    assert main(["cache", "info", str(cache)]) == 0
    info = capsys.readouterr().out
    assert f"{len(MAY) + len(JUNE)} entries" in info and "1 job(s)" in info and "1 temporary file" in info
    assert "256 bins" in info
    assert main(["cache", "prune", str(cache), "--older-than", "2000-01-01"]) == 0
    assert len(entries(cache)) == len(MAY) + len(JUNE)
    assert main(["cache", "prune", str(cache), "--older-than", "0"]) == 0
    assert entries(cache) == [] and not [p for p in cache.rglob("*") if p.is_file()]
    now = 1_700_000_000.0
    assert cutoff_of("30", now) == cutoff_of("30d", now) == now - 30 * 86_400
    assert cutoff_of("2024-05-01", now) == datetime(2024, 5, 1, tzinfo=UTC).timestamp()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    capsys.readouterr()
    assert main([*argv, "--cache", str(blocker / "sub")]) == 7
    err = capsys.readouterr().err.strip()
    assert err.startswith("histcalc: error: --cache") and len(err.splitlines()) == 1


def test_two_jobs_filling_one_cache_at_once(season: Any, tmp_path: Path) -> None:
    from histcalc.cache_entry import decode as decode_entry

    may, june = season
    cache = tmp_path / "cache"
    argv = [sys.executable, "-m", "histcalc", "--catalog", str(tmp_path / "data"), "--engine", "local",
            "--workers", "1", "--cache", str(cache), "-q"]  # fmt: skip
    jobs = [subprocess.Popen([*argv, "-o", str(tmp_path / f"{i}.json")], stderr=subprocess.PIPE) for i in range(2)]
    for job in jobs:
        assert job.wait(timeout=120) == 0, job.stderr.read().decode() if job.stderr else ""
    import json

    clean = compute_histogram(may + june, None, engine="local", workers=1)
    for i in range(2):
        doc = json.loads((tmp_path / f"{i}.json").read_text())
        assert doc["counts"] == clean.histogram.counts.tolist() and doc["nodata"] == clean.histogram.nodata
    stored = entries(cache)
    assert len(stored) == len(may) + len(june)
    job_key = json.loads(next(cache.rglob("job.json")).read_text())["job"]
    for path in stored:  # every entry whole: its checksum and arrays check out
        decode_entry(path.read_bytes(), "x.tif", clean.histogram.bins, job_key)
    assert compute_histogram(may + june, None, engine="local", workers=1, cache=str(cache)).files_cached == len(stored)


def test_spark_partitions_get_a_share_of_the_last_files_with_a_cache() -> None:
    from histcalc.engines.spark import interleaved

    tasks = [Task(f"{i}.tif") for i in range(44)]
    order = interleaved(tasks, 8)
    assert sorted(order, key=lambda t: int(t.href.split(".")[0])) == tasks
    slices = [order[i * 44 // 8 : (i + 1) * 44 // 8] for i in range(8)]  # how pyspark cuts a list
    assert all(any(t in s for t in tasks[-8:]) for s in slices)  # each partition has one of the 8 newest


def test_every_histogram_field_survives_an_entry() -> None:
    """A tally added to Histogram later must be stored too: every field, each set to a distinct value."""
    from histcalc.histogram import Histogram, Moments
    from histcalc.result import Partial

    counts = np.arange(BINS.count, dtype=np.int64) % 7
    values: dict[str, Any] = {"bins": BINS, "counts": counts, "moments": Moments(int(counts.sum()), 0.25, 3.5)}
    for i, f in enumerate(dataclasses.fields(Histogram)):
        if f.name not in values:
            values[f.name] = 11.0 + i if f.type in ("float", float) else 11 + i
    h = Histogram(**values)
    back = decode(encode(Partial({("", "g"): h}, tasks=1), {"job": "J"}), "f.tif", BINS, "J").histograms[("", "g")]
    for f in dataclasses.fields(Histogram):
        got, want = getattr(back, f.name), getattr(h, f.name)
        assert np.array_equal(got, want) if f.name == "counts" else got == want, f.name
