"""A zonal job over 10,000 parcels on a standalone Spark cluster (2 workers on 127.0.0.1) equals the local engine.

Both runs are the CLI a user would type (``histcalc demo --zones FILE --group-by date ...``), one with
``--master spark://...`` and one with ``--engine local``; their per-zone statistics, tidy per-zone tables and
JSON histograms must be equal cell for cell. The local engine's zone counts are checked against a brute-force
centre-in-polygon count elsewhere (tests/test_zonal_jobs.py); here the cluster must reproduce them through
the broadcast of 10,000 zones' subsets, the executors' reduceByKey of the sparse tables and the stream to
the driver.
"""

from __future__ import annotations

import csv
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


def _run(data: Path, parcels: Path, out: Path, engine: list[str]) -> dict[str, Any]:
    out.mkdir()
    argv = [
        sys.executable, "-m", "histcalc", "demo", "--dir", str(data), "--size", str(DEMO_SIZE),
        "--zones", str(parcels), "--bbox", WHOLE_TILES, "--zone-id", "parcel_id", "--group-by", "date",
        "--zone-stats", str(out / "stats.csv"), "--parquet", str(out / "tidy.parquet"),
        "--output", str(out / "result.json"), "-q", *engine,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "result.json").read_text())  # type: ignore[no-any-return]


def test_zonal_job_on_a_standalone_cluster_equals_the_local_engine(
    dataset: tuple[Path, Path], cluster: SparkStandaloneCluster, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    data, parcels = dataset
    on_cluster = _run(data, parcels, tmp_path / "cluster", ["--master", cluster.master_url])
    local = _run(data, parcels, tmp_path / "local", ["--engine", "local"])

    assert on_cluster["engine"] == "spark" and local["engine"] == "local"
    assert on_cluster["files"]["failed"] == [] and on_cluster["files"]["total"] == local["files"]["total"] > 1
    assert on_cluster["counts"] == local["counts"] and sum(local["counts"]) > 0
    assert on_cluster["groups"] == local["groups"]
    group_counts = {g["group"]: sum(g["counts"]) for g in local["groups"]}
    assert len(group_counts) > 1

    stats = {name: _rows(tmp_path / name / "stats.csv") for name in ("cluster", "local")}
    zones_per_group = {g: sum(1 for row in stats["local"] if row["group"] == g) for g in group_counts}
    assert set(zones_per_group.values()) == {PARCELS}  # every parcel in every group, also with no pixel
    _assert_same_stats(stats["cluster"], stats["local"])
    with_pixels = {row["zone"] for row in stats["local"] if int(row["count"]) > 0}
    assert PARCELS // 2 < len(with_pixels) <= PARCELS

    tidy = {name: pq.read_table(tmp_path / name / "tidy.parquet").to_pylist() for name in ("cluster", "local")}
    key = lambda row: (row["zone"], row["group"], row["bin_low"])  # noqa: E731
    assert sorted(tidy["cluster"], key=key) == sorted(tidy["local"], key=key)
    by_group: dict[str, int] = {}
    for row in tidy["local"]:
        by_group[row["group"]] = by_group.get(row["group"], 0) + row["count"]
    expected = {g: n for g, n in group_counts.items() if n}  # the parcels do not overlap
    assert by_group == {**expected, "all": sum(local["counts"])}


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return sorted(csv.DictReader(handle), key=lambda row: (row["zone"], row["group"]))


def _assert_same_stats(got: list[dict[str, str]], want: list[dict[str, str]]) -> None:
    """Counts equal; moments to 1e-9 (the "all" rows merge dates in another order on the cluster)."""
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.keys() == b.keys()
        for name in a:
            if name in ("mean", "std", "valid_fraction") and a[name] and b[name]:
                assert float(a[name]) == pytest.approx(float(b[name]), rel=1e-9, abs=1e-12), (a["zone"], name)
            else:
                assert a[name] == b[name], (a["zone"], a["group"], name)
