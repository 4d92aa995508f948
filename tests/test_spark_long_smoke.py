"""benchmarks/spark_long.py still runs: a tiny version (10 links to 2 tiles of 512 px), results in tmp_path.

A smoke test of the harness, not a benchmark: the four cases run, their histograms agree and account
for every pixel of every link (the script fails otherwise), and the CPU of each job is split by role.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "spark_long.py"

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def test_spark_long_runs_tiny(tmp_path: Path) -> None:
    out = tmp_path / "SPARK_LONG.md"
    command = [sys.executable, str(SCRIPT), "--size", "512", "--tiles", "2", "--files", "10", "--reps", "1"]
    command += ["--cache", str(tmp_path / "cache"), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    links = sorted((tmp_path / "cache" / "long" / "512px").iterdir())
    assert len(links) == 10 and all(link.is_symlink() for link in links)
    assert len({link.resolve() for link in links}) == 2  # two tiles, five names each
    raw = json.loads(out.with_suffix(".json").read_text())
    cases = {(r["method"], r["workers"]): r for r in raw["summary"]}
    assert set(cases) == {("spark_long", 1), ("spark_long", 2), ("local_long", 1), ("local_long", 2)}
    for row in cases.values():
        assert row["median_s"] > 0 and row["ns_px"]["counting"] > 0, row
    for workers in (1, 2):
        spark = cases[("spark_long", workers)]
        assert spark["session_s"] > 0 and spark["cpu_s"]["jvm"] > 0
    assert cases[("local_long", 1)]["cpu_s"]["jvm"] == 0
    pixels = 10 * 512 * 512
    for m in raw["measurements"]:  # each run saw every pixel of every link, none as a duplicate
        account = m["extra"]["account"]
        assert sum(account.values()) == pixels and account["duplicate"] == 0, account
    text = out.read_text()
    assert "## CPU during the job" in text and "every run's histogram is equal" in text
