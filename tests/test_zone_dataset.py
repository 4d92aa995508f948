"""Per-zone tables written as Parquet datasets where they are reduced equal the tables a job returns.

The returned tables are checked against a brute-force centre-in-polygon count in test_zonal_jobs.py; here the
datasets (written by Spark's executors, or by the local engine's driver) must hold the same rows: every
group's statistics and histograms, and the whole period with every input zone, also in zone blocks that
no pixel reached.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from histcalc import compute_histogram
from histcalc.zone_dataset import MARKER, ZoneDatasets
from histcalc.zone_files import load_zones
from histcalc.zone_report import stats_columns, tidy_rows
from tests.test_zonal_jobs import BINS, CRS, ZONES, scenes

PERCENTILES = (2.0, 50.0, 98.0)


@pytest.fixture
def zones_gpkg(tmp_path: Path) -> Path:
    import geopandas as gpd

    path = tmp_path / "zones.gpkg"
    gpd.GeoDataFrame({"name": list(ZONES)}, geometry=list(ZONES.values()), crs=CRS).to_file(path, driver="GPKG")
    return path


def _read(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()  # type: ignore[no-any-return]


def _expected_stats(result: Any) -> dict[tuple[str, str], dict[str, Any]]:
    columns = stats_columns(result, PERCENTILES)
    names = list(columns)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*(list(columns[n]) for n in names), strict=True)]
    return {(r["zone"], r["group"]): r for r in rows}


@pytest.mark.parametrize(
    ("engine", "workers"), [("local", 1), ("local", 2), pytest.param("spark", None, marks=pytest.mark.spark)]
)
def test_datasets_hold_the_same_tables_as_the_result(
    engine: str,
    workers: int | None,
    zones_gpkg: Path,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    spark = request.getfixturevalue("spark") if engine == "spark" else None
    scene_list = scenes(tmp_path, days=3)
    zones = load_zones(zones_gpkg, id_field="name")
    kept = compute_histogram(scene_list, BINS, engine=engine, spark=spark, group_by="date", zones=zones)
    # blocks of 3 zones: 7 zones make 3 blocks, the last ("smaller than a pixel") reached by no pixel
    targets = ZoneDatasets(str(tmp_path / "tidy"), str(tmp_path / "stats"), PERCENTILES, zone_block=3)
    for _ in range(2):  # a second run replaces the first dataset, it does not add to it
        written = compute_histogram(
            scene_list,
            BINS,
            engine=engine,
            spark=spark,
            workers=workers,
            group_by="date",
            zones=zones,
            zone_datasets=targets,
        )
    assert written.zone_tables == {} and written.groups.keys() == kept.groups.keys()
    assert written.histogram.counts.tolist() == kept.histogram.counts.tolist() and written.histogram.count > 0
    assert written.zones_with_pixels == sum(
        1 for r in _expected_stats(kept).values() if r["group"] == "all" and r["count"]
    )
    assert (tmp_path / "tidy" / MARKER).exists() and not list(tmp_path.glob(".*staging*"))

    tidy = sorted((r["zone"], r["group"], r["bin_low"], r["bin_high"], r["count"]) for r in _read(tmp_path / "tidy"))
    assert tidy == sorted(tidy_rows(kept)) and len(tidy) > 100

    want = _expected_stats(kept)
    got = {(r["zone"], r["group"]): r for r in _read(tmp_path / "stats")}
    assert got.keys() == want.keys()
    assert {zone for zone, group in got if group == "all"} == set(ZONES)  # every zone, with pixels or not
    for key, row in got.items():
        for name, value in want[key].items():
            if isinstance(value, str):
                assert row[name] == value, (key, name)
            elif isinstance(value, float) and math.isnan(value):
                assert row[name] is None or math.isnan(row[name]), (key, name)
            else:
                assert row[name] == pytest.approx(value, rel=1e-12), (key, name)


def test_cli_writes_datasets_and_refuses_what_cannot_work(
    zones_gpkg: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from histcalc.cli import main

    data = tmp_path / "data"
    data.mkdir()
    scenes(data, days=1)
    base = ["--catalog", str(data), "--engine", "local", "-q"]
    zonal = [*base, "--zones", str(zones_gpkg), "--zone-id", "name"]
    assert main([*zonal, "--parquet", f"{tmp_path}/tidy/", "--zone-stats", f"{tmp_path}/stats/"]) == 0
    rows = _read(tmp_path / "stats")
    assert sorted(r["zone"] for r in rows) == sorted(ZONES) and {r["group"] for r in rows} == {"all"}
    capsys.readouterr()

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    refused = {
        "a directory of other files": [*zonal, "--parquet", f"{tmp_path}/mine/"],
        "with a file table": [*zonal, "--parquet", f"{tmp_path}/t/", "--csv", f"{tmp_path}/t.csv"],
        "without zones": [*base, "--parquet", f"{tmp_path}/plain/"],
    }
    for case, argv in refused.items():
        assert main(argv) == 2, case
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--parquet" in err, (case, err)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / "t").exists() and not (tmp_path / "plain").exists()


def test_the_local_writer_writes_a_group_when_its_last_task_is_in(tmp_path: Path) -> None:
    """The driver does not hold finished groups: each is written and dropped after its last task."""
    import numpy as np

    from histcalc.bins import BinSpec
    from histcalc.plan import Task
    from histcalc.result import Partial
    from histcalc.zonal import ZoneTable
    from histcalc.zone_dataset import LocalWriter, Written, prepare

    def table(zone: int, count: int) -> ZoneTable:
        i = np.array([zone], np.int64)
        return ZoneTable(i, np.array([1]), np.array([count]), i, i * 0, i * 0, np.array([count]),
                         np.array([0.5]), np.array([0.0]), np.array([0.5]), np.array([0.5]))  # fmt: skip

    bins = BinSpec.uniform(2, 0.0, 1.0)
    spec = prepare(ZoneDatasets(str(tmp_path / "tidy"), None), ["a", "b"], bins, grouped=True)
    written = Written()
    writer = LocalWriter(spec, written, {"d1": 2, "d2": 1})
    total = Partial()
    steps = [("d1", 0, 3), ("d2", 1, 5), ("d1", 1, 7)]  # d1's tasks arrive around d2's
    held, parts_after = [], []
    for group, zone, count in steps:
        total.merge(Partial.of_task(f"{group}-{zone}", {}, False, {group: table(zone, count)}))
        writer.done([Task(f"{group}-{zone}", group)], total)
        held.append(sorted(total.zonal))
        parts_after.append(sorted(p.parent.name for p in Path(spec.tidy or "").rglob("part-*.parquet")))
    assert held == [["d1"], ["d1"], []]  # a group leaves the driver's total with its last task
    assert parts_after[0] == []  # no group finished yet
    assert "group=d2" in parts_after[2]  # written (in the writer thread) before d1 was handed to it
    writer.close(total)
    parts = sorted(p.parent.name for p in Path(spec.tidy or "").rglob("part-*.parquet"))
    assert parts == ["group=all", "group=d1", "group=d2"]
    whole = sorted((r["zone"], r["count"]) for r in _read(Path(spec.tidy or "") / "group=all") if r["bin_low"] == 0.0)
    assert whole == [("a", 3), ("b", 12)] and written.with_pixels == 2


def test_spark_gathers_a_blocks_parts_of_every_group_and_adds_them_up_once() -> None:
    """combineByKey's three functions, as Spark calls them on two map partitions and a reducer: a block's parts
    (one per group) are gathered packed and summed once; other records add up as reduceByKey added them."""
    import numpy as np

    from histcalc.zonal import ZoneTable, concat
    from histcalc.zone_dataset import BlockParts, gather_add, gather_merge, gather_start
    from histcalc.zone_sum import summed

    def table(zones: list[int], slot: int, count: int) -> ZoneTable:
        z = np.array(zones, np.int64)
        ones = np.ones(len(z), np.int64)
        return ZoneTable(z, ones * slot, ones * count, z, z * 0, z * 0, ones * count,
                         ones * 0.5, ones * 0.0, ones * 0.5, ones * 0.5)  # fmt: skip

    parts = [table([0, 2], 1, 3), table([1, 2], 1, 4), table([2], 2, 5)]  # three groups' parts of one block
    first = gather_add(gather_start(parts[0]), parts[1])  # one map partition held two groups
    gathered = gather_merge(first, gather_start(parts[2]))  # the reducer meets the other partition's
    assert isinstance(gathered, BlockParts) and len(gathered) == 3
    got, want = summed(gathered), concat(parts).compacted()
    assert list(zip(got.cell_zone, got.cell_slot, got.cell_count, strict=True)) == [
        (0, 1, 3),
        (1, 1, 4),
        (2, 1, 7),
        (2, 2, 5),
    ]
    assert got.n.tolist() == want.n.tolist() == [3, 4, 12]
    assert gather_merge(gather_add(gather_start(2), 3), gather_start(4)) == 9  # ("c",): tasks from the cache


def test_a_group_that_cannot_be_written_fails_the_job_with_its_reason(
    zones_gpkg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer thread's error reaches the caller as the one-line OutputError; nothing is published, and
    the parts staged before it go."""
    from histcalc import zone_dataset
    from histcalc.errors import OutputError

    write = zone_dataset._write_part
    groups: list[str] = []

    def second_refused(root: str, group: str, part: str, pieces: Any) -> None:
        groups.append(group)
        if len(groups) == 2:
            raise OutputError(f"cannot write the dataset part {root}/group={group}: No space left on device")
        write(root, group, part, pieces)

    monkeypatch.setattr(zone_dataset, "_write_part", second_refused)
    zones = load_zones(zones_gpkg, id_field="name")
    scene_list = scenes(tmp_path, days=3)
    before = sorted(p.name for p in tmp_path.iterdir())
    targets = ZoneDatasets(str(tmp_path / "tidy") + "/", None, PERCENTILES)
    with pytest.raises(OutputError, match="No space left"):
        compute_histogram(scene_list, BINS, workers=1, group_by="date", zones=zones, zone_datasets=targets)
    assert len(groups) == 2  # the first group was written (staged), the second failed
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no target, no staging directory left


def test_tidy_parts_are_written_a_row_group_at_a_time(
    zones_gpkg: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Row groups of 7 cells (2.5 M rows a date for 100,000 parcels are written 262,144 at a time): the same rows."""
    import pyarrow.parquet as pq

    from histcalc import zone_dataset

    monkeypatch.setattr(zone_dataset, "_TIDY_ROWS", 7)
    scene_list = scenes(tmp_path, days=2)
    zones = load_zones(zones_gpkg, id_field="name")
    kept = compute_histogram(scene_list, BINS, workers=1, group_by="date", zones=zones)
    targets = ZoneDatasets(str(tmp_path / "tidy"), None, PERCENTILES)
    compute_histogram(scene_list, BINS, workers=1, group_by="date", zones=zones, zone_datasets=targets)
    tidy = sorted((r["zone"], r["group"], r["bin_low"], r["bin_high"], r["count"]) for r in _read(tmp_path / "tidy"))
    assert tidy == sorted(tidy_rows(kept)) and len(tidy) > 100
    parts = list((tmp_path / "tidy").glob("group=*/part-*.parquet"))
    metadata = [pq.ParquetFile(p).metadata for p in parts]
    assert parts and all(m.num_row_groups >= -(-m.num_rows // 7) for m in metadata)
    assert max(m.num_row_groups for m in metadata) > 1
