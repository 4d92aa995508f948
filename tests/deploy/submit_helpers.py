"""Helpers for running scripts/submit_job.sh and reading its --dry-run output."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUBMIT_SCRIPT = REPO / "scripts" / "submit_job.sh"


def parse_dry_run(output: str) -> list[str]:
    """The argv that the printed (shell-quoted) command stands for, as bash reads it."""
    result = subprocess.run(
        ["bash", "-c", 'eval "args=( $1 )"; printf "%s\\0" "${args[@]}"', "_", output],
        capture_output=True,
        check=True,
    )
    return result.stdout.decode().split("\0")[:-1]


def run_submit(
    args: Sequence[str], env: dict[str, str] | None = None, clear_env: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """scripts/submit_job.sh with a clean environment (plus ``env``), as a user would run it."""
    base = {k: v for k, v in os.environ.items() if not _submit_setting(k)} if clear_env else dict(os.environ)
    base["HISTCALC_PYTHON"] = sys.executable
    return subprocess.run(
        ["bash", str(SUBMIT_SCRIPT), *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _submit_setting(name: str) -> bool:
    return name.startswith(("HISTOGRAM__", "SPARK_", "YARN_", "HISTCALC_")) or name in {
        "IMAGE",
        "MOUNTS",
        "EXTRA_MOUNTS",
        "DEPLOY_MODE",
        "DOCKER_CLIENT_CONFIG",
        "JOB_FILE",
        "CONTAINER_JAVA_HOME",
        "CONTAINER_PYSPARK_PYTHON",
        "PYSPARK_PYTHON",
    }


def conf_values(argv: Sequence[str]) -> dict[str, str]:
    """--conf KEY=VALUE pairs of a spark-submit argv (the last one wins, as in spark-submit)."""
    confs: dict[str, str] = {}
    for flag, value in itertools.pairwise(argv):
        if flag == "--conf":
            key, _, val = value.partition("=")
            confs[key] = val
    return confs


def option(argv: Sequence[str], name: str) -> str | None:
    for flag, value in itertools.pairwise(argv):
        if flag == name:
            return value
    return None


def json_file(path: Path) -> dict[str, object]:
    return json.loads(path.read_text())  # type: ignore[no-any-return]
