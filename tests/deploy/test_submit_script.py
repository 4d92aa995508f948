"""scripts/submit_job.sh --dry-run on the host (no Docker, no cluster): every setting, quoting."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.submit_helpers import REPO, conf_values, option, parse_dry_run, run_submit

DATA_MOUNT = "/data/MTDA/TERRASCOPE_Sentinel2/NDVI_V2/:/data/MTDA/TERRASCOPE_Sentinel2/NDVI_V2/:ro"
SEED = ["--start_date=2024-05-01", "--end_date=2024-06-10"]


def dry_run(*args: str, **env: str) -> list[str]:
    result = run_submit(["--dry-run", *args], env=env)
    assert result.returncode == 0, result.stderr
    return parse_dry_run(result.stdout)


def test_defaults_target_yarn_cluster_mode_in_docker() -> None:
    argv = dry_run(*SEED, IMAGE="registry.example/histcalc:0.1.0")
    confs = conf_values(argv)
    assert option(argv, "--master") == "yarn"
    assert option(argv, "--deploy-mode") == "cluster"
    assert option(argv, "--executor-memory") == "4G"
    assert option(argv, "--executor-cores") == "1"
    for prefix in ("spark.yarn.appMasterEnv.", "spark.executorEnv."):
        assert confs[prefix + "YARN_CONTAINER_RUNTIME_TYPE"] == "docker"
        assert confs[prefix + "YARN_CONTAINER_RUNTIME_DOCKER_IMAGE"] == "registry.example/histcalc:0.1.0"
        assert confs[prefix + "YARN_CONTAINER_RUNTIME_DOCKER_MOUNTS"] == DATA_MOUNT
        assert confs[prefix + "PYSPARK_PYTHON"] == "/usr/local/bin/python"
        assert confs[prefix + "JAVA_HOME"] == "/usr/lib/jvm/java-17"
        assert prefix + "YARN_CONTAINER_RUNTIME_DOCKER_CLIENT_CONFIG" not in confs
    import histcalc.job

    assert argv[-3:] == [histcalc.job.__file__, *SEED]


def test_memory_cores_and_registry_config_come_from_the_environment() -> None:
    argv = dry_run(
        *SEED,
        HISTOGRAM__PROCESSOR_MEMORY="8gb",
        HISTOGRAM__PROCESSOR_EXECUTOR_CORES="3",
        HISTOGRAM__DRIVER_MEMORY="2g",
        DOCKER_CLIENT_CONFIG="hdfs:///user/histcalc/.docker/config.json",
        MOUNTS="/a:/a:ro",
        EXTRA_MOUNTS="/b:/b:rw",
        YARN_QUEUE="batch",
    )
    confs = conf_values(argv)
    assert option(argv, "--executor-memory") == "8gb"
    assert option(argv, "--executor-cores") == "3"
    assert option(argv, "--driver-memory") == "2g"
    assert option(argv, "--queue") == "batch"
    for prefix in ("spark.yarn.appMasterEnv.", "spark.executorEnv."):
        assert (
            confs[prefix + "YARN_CONTAINER_RUNTIME_DOCKER_CLIENT_CONFIG"] == "hdfs:///user/histcalc/.docker/config.json"
        )
        assert confs[prefix + "YARN_CONTAINER_RUNTIME_DOCKER_MOUNTS"] == "/a:/a:ro,/b:/b:rw"


def test_standalone_override_and_extra_conf() -> None:
    argv = dry_run(
        "--conf", "spark.ui.port=4321", "--", *SEED, SPARK_MASTER="spark://127.0.0.1:7077", DEPLOY_MODE="client"
    )
    assert option(argv, "--master") == "spark://127.0.0.1:7077"
    assert option(argv, "--deploy-mode") == "client"
    assert conf_values(argv)["spark.ui.port"] == "4321"
    assert argv[-2:] == SEED


def test_job_arguments_are_passed_verbatim_never_evaluated(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    nasty = [
        f"--output=/tmp/a b/$(touch {marker})`touch {marker}`;rm -rf /",
        "--bbox",
        "4.91,51.16,5.24,51.27",
        "--catalog=*",
        'it\'s "quoted"',
        "",
        "--dry-run",  # after the first job argument, this is the job's, not the script's
    ]
    argv = dry_run(*SEED, *nasty)
    assert argv[-len(nasty) - 2 :] == [*SEED, *nasty]
    assert not marker.exists()


BAD_SETTINGS = [
    ("HISTOGRAM__PROCESSOR_MEMORY", "lots"),
    ("HISTOGRAM__PROCESSOR_EXECUTOR_CORES", "0"),
    ("DEPLOY_MODE", "x"),
]


@pytest.mark.parametrize(("name", "value"), BAD_SETTINGS)
def test_bad_settings_are_refused(name: str, value: str) -> None:
    result = run_submit(["--dry-run", *SEED], env={name: value})
    assert result.returncode == 2
    assert name.split("__")[-1].split("_")[0].lower() in result.stderr.lower() or name in result.stderr


@pytest.mark.parametrize("env_name", ["spark35", "spark4"])
def test_env_files_are_selectable(env_name: str) -> None:
    result = run_submit(["--dry-run", "--env", env_name, *SEED])
    assert result.returncode == 0, result.stderr
    confs = conf_values(parse_dry_run(result.stdout))
    assert confs["spark.yarn.maxAppAttempts"] == "1"
    assert confs["spark.executor.memoryOverhead"] == "1g"
    assert (REPO / "scripts" / "env" / f"{env_name}.env").is_file()


def test_help_and_missing_env_file() -> None:
    assert "Usage: submit_job.sh" in run_submit(["--help"]).stdout
    result = run_submit(["--dry-run", "--env", "/nonexistent/spark9.env"])
    assert result.returncode == 2 and "env file" in result.stderr
