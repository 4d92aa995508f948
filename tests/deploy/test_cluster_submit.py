"""A real distributed run: the demo job submitted through scripts/submit_job.sh to a Spark
standalone master with two workers on 127.0.0.1; one worker is killed by PID while the job runs,
and the result must still equal the local engine's, count for count."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.submit_helpers import SUBMIT_SCRIPT, parse_dry_run
from tests.support.spark_cluster import SparkStandaloneCluster, free_port, java_available

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

# Pixels per tile side: big enough that the job runs for seconds on 2 x 1 core, small enough
# that the dataset is written in well under a minute. The whole tile is counted (a bbox larger
# than the tiles), so every pixel is read.
DEMO_SIZE = int(os.environ.get("HISTCALC_CLUSTER_DEMO_SIZE", "4000"))
WHOLE_TILES = "2,49,9,54"
JOB_TIMEOUT_S = 600


def _histcalc() -> list[str]:
    return [sys.executable, "-m", "histcalc"]


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read().decode())


@pytest.fixture(scope="module")
def demo_catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("demo") / "data"
    started = time.monotonic()
    subprocess.run(
        [*_histcalc(), "demo", "--dir", str(root), "--size", str(DEMO_SIZE), "--generate-only", "-q"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    print(f"demo dataset ({DEMO_SIZE} px) written in {time.monotonic() - started:.1f} s")
    yield root
    shutil.rmtree(root, ignore_errors=True)  # ~75 MB: not left for pytest's temp retention


@pytest.fixture(scope="module")
def local_result(demo_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("local") / "local.json"
    subprocess.run(
        [*_histcalc(), "demo", "--dir", str(demo_catalog), "--size", str(DEMO_SIZE), "--bbox", WHOLE_TILES,
         "--engine", "local", "--output", str(out), "-q"],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return json.loads(out.read_text())  # type: ignore[no-any-return]


@pytest.fixture
def cluster() -> Any:
    if not java_available():
        pytest.skip("no java")
    with SparkStandaloneCluster(workers=2, cores_per_worker=1, memory_per_worker="1g") as running:
        yield running


def _submit_env(tmp_path: Path) -> dict[str, str]:
    java_home = os.environ.get("JAVA_HOME") or str(Path(shutil.which("java") or "").resolve().parents[1])
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "HISTOGRAM__PROCESSOR_MEMORY": "512m",
        "HISTOGRAM__PROCESSOR_EXECUTOR_CORES": "1",
        "HISTOGRAM__DRIVER_MEMORY": "1g",
        "HISTCALC_PYTHON": sys.executable,
        "CONTAINER_PYSPARK_PYTHON": sys.executable,
        "CONTAINER_JAVA_HOME": java_home,
        "SPARK_SUBMIT": str(Path(bin_dir) / "spark-submit"),
    }


def _running_job(ui: str) -> tuple[str, dict[str, Any]] | None:
    """(app id, the job in progress) from the driver's REST API, once a job has tasks running."""
    with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
        apps = _get_json(f"{ui}/api/v1/applications")
        if apps:
            app_id = apps[0]["id"]
            for job in _get_json(f"{ui}/api/v1/applications/{app_id}/jobs"):
                if job["status"] == "RUNNING" and job["numActiveTasks"] > 0:
                    return app_id, job
    return None


def _worker_to_kill(cluster: SparkStandaloneCluster, ui: str, app_id: str) -> int:
    """Index of a worker whose executor is running one of the job's tasks."""
    busy = {e["id"] for e in _get_json(f"{ui}/api/v1/applications/{app_id}/executors") if e["activeTasks"] > 0}
    for index, worker in enumerate(cluster.workers):
        state = _get_json(f"http://127.0.0.1:{worker.web_port}/json/")
        if any(str(e.get("id")) in busy for e in state.get("executors", [])):
            return index
    return 0


def test_submit_to_standalone_survives_a_lost_worker(
    cluster: SparkStandaloneCluster, demo_catalog: Path, local_result: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "cluster.json"
    ui_port = free_port()
    job_args = [
        "--catalog", str(demo_catalog / "catalog.json"),
        "--start_date=2024-05-01", "--end-date", "2024-06-10",
        "--bbox", WHOLE_TILES, "--engine", "spark", "--output", str(out),
    ]  # fmt: skip
    script_args = ["--conf", f"spark.ui.port={ui_port}", "--", *job_args]
    env = {**_submit_env(tmp_path), "SPARK_MASTER": cluster.master_url, "DEPLOY_MODE": "client"}

    dry = subprocess.run(["bash", str(SUBMIT_SCRIPT), "--dry-run", *script_args], env=env, capture_output=True,
                         text=True, check=True)  # fmt: skip
    argv = parse_dry_run(dry.stdout)
    assert argv[argv.index("--master") + 1] == cluster.master_url
    assert argv[-len(job_args) :] == job_args

    log_path = tmp_path / "submit.log"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        submit = subprocess.Popen(
            ["bash", str(SUBMIT_SCRIPT), *script_args], env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            killed_at, job_then = _kill_a_worker_mid_job(cluster, submit, f"http://127.0.0.1:{ui_port}")
            returncode = submit.wait(timeout=JOB_TIMEOUT_S)
        finally:
            if submit.poll() is None:
                os.killpg(submit.pid, 9)
                submit.wait()
    elapsed = time.monotonic() - started
    log_text = log_path.read_text(errors="replace")
    assert returncode == 0, f"spark-submit exited {returncode}:\n{log_text[-6000:]}"
    print(
        f"job took {elapsed:.1f} s; worker killed at {killed_at:.1f} s with "
        f"{job_then['numCompletedTasks']}/{job_then['numTasks']} task(s) done"
    )

    result = json.loads(out.read_text())
    files = 27  # 9 dates of 31UFS and of its neighbours 31UGS and 32ULB (the demo's three tiles)
    assert result["files"]["total"] == local_result["files"]["total"] == files
    assert result["files"]["failed"] == []
    assert result["counts"] == local_result["counts"]
    assert result["edges"] == local_result["edges"]
    for key in ("below", "above", "nodata", "duplicate"):
        assert result[key] == local_result[key], key
    assert result["duplicate"] > 0  # the tiles overlap: --overlaps once (the default) counts each place once
    tallies = result["nodata"] + result.get("masked", 0) + result["duplicate"]
    assert sum(result["counts"]) == files * DEMO_SIZE * DEMO_SIZE - tallies


def _kill_a_worker_mid_job(
    cluster: SparkStandaloneCluster, submit: subprocess.Popen[bytes], ui: str
) -> tuple[float, dict[str, Any]]:
    started = time.monotonic()
    deadline = started + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        if submit.poll() is not None:
            pytest.fail(f"the job ended (exit {submit.returncode}) before a worker could be killed mid-job")
        found = _running_job(ui)
        if found is not None:
            app_id, job = found
            index = _worker_to_kill(cluster, ui, app_id)
            pid = cluster.kill_worker(index)
            assert not cluster.workers[index].alive(), f"worker pid {pid} still alive"
            return time.monotonic() - started, job
        time.sleep(0.1)
    pytest.fail("no running job seen on the driver's UI")
