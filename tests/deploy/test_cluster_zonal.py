"""A zonal job over 10,000 parcels on a standalone Spark cluster (2 workers on 127.0.0.1) equals the local engine.

Both runs are the CLI a user would type (``histcalc demo --zones FILE --group-by date ...``), one with
``--master spark://...`` and one with ``--engine local``; their per-zone statistics, tidy per-zone tables and
JSON histograms must be equal cell for cell. The local engine's zone counts are checked against a brute-force
centre-in-polygon count elsewhere (tests/test_zonal_jobs.py); here the cluster must reproduce them through
the broadcast of 10,000 zones' subsets, the executors' reduceByKey of the sparse tables and the stream to
the driver.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from histcalc.demo import EPSG
from histcalc.parcels import make_parcels
from tests.support.spark_cluster import SparkStandaloneCluster, java_available

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

PARCELS = 10_000
DEMO_SIZE = 1830  # 60 m pixels: a parcel has a few dozen pixels
JOB_TIMEOUT_S = 600
PARCEL_AREA = (610_000.0, 5_640_000.0, 650_000.0, 5_680_000.0)  # inside tile 31UFS (EPSG:32631)
WHOLE_TILES = "2,49,9,54"  # the job reads wherever a parcel is


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("zonal-cluster")
    data = root / "data"
    subprocess.run(
        [sys.executable, "-m", "histcalc", "demo", "--dir", str(data), "--size", str(DEMO_SIZE), "--generate-only"],
        check=True, capture_output=True, timeout=JOB_TIMEOUT_S,
    )  # fmt: skip
    parcels = make_parcels(PARCEL_AREA, f"EPSG:{EPSG}", PARCELS, 11, root / "parcels.gpkg")
    return data, parcels


@pytest.fixture(scope="module")
def cluster() -> Iterator[SparkStandaloneCluster]:
    if not java_available():
        pytest.skip("no Java runtime")
    with SparkStandaloneCluster(workers=2, cores_per_worker=1, memory_per_worker="1g") as running:
        yield running


def _run(data: Path, parcels: Path, out: Path, engine: list[str], tables: list[str]) -> dict[str, Any]:
    out.mkdir()
    argv = [
        sys.executable, "-m", "histcalc", "demo", "--dir", str(data), "--size", str(DEMO_SIZE),
        "--zones", str(parcels), "--bbox", WHOLE_TILES, "--zone-id", "parcel_id", "--group-by", "date",
        "--output", str(out / "result.json"), "-q", *engine, *tables,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "result.json").read_text())  # type: ignore[no-any-return]


def test_zonal_job_on_a_standalone_cluster_equals_the_local_engine(
    dataset: tuple[Path, Path], cluster: SparkStandaloneCluster, tmp_path: Path
) -> None:
    """The cluster's executors write Parquet datasets; the local engine writes single files; same rows."""
    import pyarrow.parquet as pq

    data, parcels = dataset
    remote, here = tmp_path / "cluster", tmp_path / "local"
    datasets = ["--parquet", f"{remote}/tidy/", "--zone-stats", f"{remote}/stats/"]
    on_cluster = _run(data, parcels, remote, ["--master", cluster.master_url], datasets)
    files = ["--parquet", f"{here}/tidy.parquet", "--zone-stats", f"{here}/stats.parquet"]
    local = _run(data, parcels, here, ["--engine", "local"], files)

    assert on_cluster["engine"] == "spark" and local["engine"] == "local"
    assert on_cluster["files"]["failed"] == [] and on_cluster["files"]["total"] == local["files"]["total"] > 1
    assert on_cluster["counts"] == local["counts"] and sum(local["counts"]) > 0
    assert on_cluster["groups"] == local["groups"]
    assert on_cluster["zones"]["with_pixels"] == local["zones"]["with_pixels"] > PARCELS // 2
    group_counts = {g["group"]: sum(g["counts"]) for g in local["groups"]}
    assert len(group_counts) > 1

    stats = {name: _by_key(pq.read_table(path).to_pylist(), ("zone", "group"))
             for name, path in (("cluster", remote / "stats"), ("local", here / "stats.parquet"))}  # fmt: skip
    assert stats["cluster"].keys() == stats["local"].keys()
    assert sum(1 for _zone, group in stats["local"] if group == "all") == PARCELS  # every parcel, pixels or not
    for key, row in stats["local"].items():
        for name, value in row.items():
            got = stats["cluster"][key][name]
            if name in ("mean", "std", "valid_fraction") and value is not None and value == value:
                assert got == pytest.approx(value, rel=1e-9, abs=1e-12), (key, name)  # "all" merges in another order
            else:
                assert got == value or (got != got and value != value), (key, name)

    tidy = {name: sorted(_tuples(pq.read_table(path).to_pylist()))
            for name, path in (("cluster", remote / "tidy"), ("local", here / "tidy.parquet"))}  # fmt: skip
    assert tidy["cluster"] == tidy["local"]
    by_group: dict[str, int] = {}
    for _zone, group, _lo, _hi, count in tidy["local"]:
        by_group[group] = by_group.get(group, 0) + count
    expected = {g: n for g, n in group_counts.items() if n}  # the parcels do not overlap
    assert by_group == {**expected, "all": sum(local["counts"])}


def _by_key(rows: list[dict[str, Any]], names: tuple[str, ...]) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(row[n] for n in names): row for row in rows}


def _tuples(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["zone"], r["group"], r["bin_low"], r["bin_high"], r["count"]) for r in rows]
