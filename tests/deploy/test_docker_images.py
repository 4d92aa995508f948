"""Real builds of Dockerfile and staged.Dockerfile on a private Docker engine, and checks inside
the images: Python, Java, histcalc, the submit script's dry run, the demo job (local and Spark).

Containers run with --network none: the job needs nothing from outside the image."""

from __future__ import annotations

import json

import pytest

from tests.deploy.conftest import REPORT, BuiltImage, DockerEngine
from tests.deploy.submit_helpers import conf_values, option, parse_dry_run

pytestmark = [pytest.mark.docker, pytest.mark.slow]

DEMO_SIZE = "300"


def run_in(engine: DockerEngine, image: BuiltImage, *command: str, env: dict[str, str] | None = None,
           timeout: float = 600) -> str:  # fmt: skip
    env_args = [arg for key, value in (env or {}).items() for arg in ("-e", f"{key}={value}")]
    result = engine.run("run", "--rm", "--network", "none", *env_args, image.tag, *command, timeout=timeout)
    return result.stdout


def test_image_runtime(docker_engine: DockerEngine, any_image: BuiltImage) -> None:
    script = r"""
set -e
echo "user=$(id -u)"
python --version
java -version 2>&1 | head -1
echo "JAVA_HOME=$JAVA_HOME PYSPARK_PYTHON=$PYSPARK_PYTHON"
test -x "$JAVA_HOME/bin/java"
python -c 'import histcalc, histcalc.job, pyspark, rasterio, numpy; print("import ok", pyspark.__version__)'
histcalc --help >/dev/null && python -m histcalc --help >/dev/null && echo "cli ok"
HISTCALC_KERNEL=c python -c 'from histcalc import kernel_loading as k; print("kernels", k.compiled_kernels().__name__)'
for tool in gcc cc make g++; do if command -v "$tool" >/dev/null; then echo "build tool $tool"; fi; done
python -c 'import build' 2>/dev/null && echo "build module present" || true
python -c 'import numba' 2>/dev/null && echo "numba present" || true
ls /tmp/wheels 2>/dev/null && echo "wheel left" || true
"""
    out = run_in(docker_engine, any_image, "bash", "-c", script)
    assert "user=0" not in out and "user=1000" in out
    assert "Python 3.11" in out
    assert 'openjdk version "17' in out
    assert "JAVA_HOME=/usr/lib/jvm/java-17 PYSPARK_PYTHON=/usr/local/bin/python" in out
    assert "import ok" in out and "cli ok" in out
    assert "kernels histcalc._native" in out  # the C kernels came with the wheel (both images)
    assert "build tool" not in out and "build module present" not in out and "wheel left" not in out
    assert "numba present" not in out  # the C kernels came instead (numba is the extra for builds without them)


def test_submit_script_dry_run_inside(docker_engine: DockerEngine, any_image: BuiltImage) -> None:
    out = run_in(
        docker_engine, any_image, "/spark_submits/submit_job.sh", "--dry-run", "--start_date=2024-05-01",
        env={"HISTOGRAM__PROCESSOR_MEMORY": "8gb", "IMAGE": "registry.example/histcalc:0.1.0"},
    )  # fmt: skip
    argv = parse_dry_run(out)
    confs = conf_values(argv)
    assert option(argv, "--executor-memory") == "8gb"
    assert confs["spark.executorEnv.YARN_CONTAINER_RUNTIME_DOCKER_IMAGE"] == "registry.example/histcalc:0.1.0"
    assert confs["spark.yarn.appMasterEnv.JAVA_HOME"] == "/usr/lib/jvm/java-17"
    assert argv[-2].endswith("/histcalc/job.py") and argv[-1] == "--start_date=2024-05-01"
    # Without IMAGE, the image submits itself (HISTCALC_IMAGE baked in at build time).
    own = conf_values(parse_dry_run(run_in(docker_engine, any_image, "/spark_submits/submit_job.sh", "--dry-run")))
    assert own["spark.executorEnv.YARN_CONTAINER_RUNTIME_DOCKER_IMAGE"] == "histcalc:latest"


def test_demo_job_local_and_spark_agree(docker_engine: DockerEngine, any_image: BuiltImage) -> None:
    script = f"""
set -e
cd /tmp
histcalc demo --dir /tmp/demo --size {DEMO_SIZE} --engine local --output /tmp/local.json -q >/dev/null
histcalc demo --dir /tmp/demo --size {DEMO_SIZE} --engine spark --output /tmp/spark.json -q \
    >/dev/null 2>/tmp/spark.log || {{ cat /tmp/spark.log >&2; exit 1; }}
python -c 'import json; print(json.dumps([json.load(open(f)) for f in ("/tmp/local.json", "/tmp/spark.json")]))'
"""
    out = run_in(docker_engine, any_image, "bash", "-c", script, env={"SPARK_LOCAL_IP": "127.0.0.1"})
    local, spark = json.loads(out.strip().splitlines()[-1])
    assert local["files"]["total"] == 9 and local["files"]["failed"] == []
    assert sum(local["counts"]) > 0
    assert spark["counts"] == local["counts"]
    assert spark["nodata"] == local["nodata"]


def test_image_sizes(docker_engine: DockerEngine, histcalc_image: BuiltImage, staged_image: BuiltImage) -> None:
    """Both images carry the same runtime; the staged one differs only by what its builder left."""
    REPORT["size Dockerfile / staged.Dockerfile"] = (
        f"{histcalc_image.size / 1e6:.0f} MB / {staged_image.size / 1e6:.0f} MB"
    )
    assert abs(histcalc_image.size - staged_image.size) < 50e6
    # The two builds share the Java layer: the second one found it in the cache.
    assert "Using cache" in staged_image.log
