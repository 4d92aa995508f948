"""Progress while a job runs: log lines on a clock, a tqdm bar, Spark's status tracker, a quiet -q."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from histcalc.cli import main
from histcalc.demo import generate
from histcalc.progress import BarProgress, LogProgress, describe, reporter, watch_spark
from tests.conftest import write_raster


class _Clock:
    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0)


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, fmt: str, *args: Any) -> None:
        self.lines.append(fmt % args)


def test_log_lines_come_every_interval_and_once_at_the_end() -> None:
    lines = _Lines()
    # the first report (t=0) starts the clock; then reports at t = 1, 5, 11, 12, 25, 30 (all done), 31
    progress = LogProgress(interval_s=10, clock=_Clock(0, 1, 5, 11, 12, 25, 30, 31), logger=lines)
    progress(0, 10)
    for done, failed in [(1, 0), (2, 0), (3, 1), (4, 1), (8, 1), (10, 2), (10, 2)]:
        progress(done, 10, failed)
    assert lines.lines == [
        "3/10 tasks (30%), 1 file(s) failed, 0.273 tasks/s, ETA 26 s",  # 7 left at 3/11 per s
        "8/10 tasks (80%), 1 file(s) failed, 0.32 tasks/s, ETA 6 s",
        "10/10 tasks (100%), 2 file(s) failed, 0.333 tasks/s, done in 30 s",
    ]


def test_two_argument_calls_still_work_and_long_etas_read_well() -> None:
    lines = _Lines()
    progress = LogProgress(interval_s=0, clock=_Clock(0, 100), logger=lines)
    progress(0, 100)
    progress(1, 100)  # two arguments, as the engines called it before
    assert lines.lines[1:] == ["1/100 tasks (1%), 0 file(s) failed, 0.01 tasks/s, ETA 2 h 45 min"]
    assert describe(30, 40, 0, 60).endswith("ETA 20 s") and describe(1, 40, 0, 60).endswith("ETA 39 min 00 s")


def test_the_bar_is_tqdm_with_the_failed_files() -> None:
    stream = io.StringIO()
    bar = BarProgress(stream)
    for done in range(1, 5):
        bar(done, 4, done // 2)
    bar.close()
    last = stream.getvalue().split("\r")[-1]
    assert "histcalc: 100%" in last and "4/4" in last and "2 file(s) failed" in last


def test_a_pipe_gets_log_lines_and_quiet_gets_nothing() -> None:
    with reporter(io.StringIO()) as progress:
        assert isinstance(progress, LogProgress)
    with reporter(io.StringIO(), enabled=False) as progress:
        assert progress is None


def test_the_command_logs_progress_when_stderr_is_not_a_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for day in ("20240501", "20240502", "20240503"):
        write_raster(tmp_path / f"x_{day}.tif", np.arange(16, dtype=np.uint8).reshape(4, 4), block=None)
    assert main(["--catalog", str(tmp_path), "--engine", "local", "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "histcalc.progress: 3/3 tasks (100%), 0 file(s) failed" in err and err.count("tasks (") == 1


@pytest.mark.spark
def test_watch_spark_reports_the_tasks_of_a_real_job(spark: Any) -> None:
    seen: list[tuple[int, int, int]] = []
    sc = spark.sparkContext
    with watch_spark(sc, lambda d, t, f=0: seen.append((d, t, f)), interval_s=0.05, failed=lambda: 1):
        assert sc.parallelize(range(8), 8).map(lambda x: time.sleep(0.4) or x).count() == 8
    assert len(seen) >= 3 and all(total == 8 and failed == 1 for _, total, failed in seen)
    done = [d for d, _, _ in seen]
    assert done == sorted(done) and done[-1] == 8 and done[0] < 8  # live, then the end reported once


@pytest.mark.spark
def test_quiet_spark_run_prints_no_log4j_lines(tmp_path: Path) -> None:
    catalog = generate(tmp_path / "demo", size=32)
    proc = subprocess.run(
        [sys.executable, "-m", "histcalc", "--catalog", str(catalog), "--master", "local[1]", "-q"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The JVM itself warns about the incubator module Spark 4 loads; no log4j switch reaches that line.
    lines = [ln for ln in proc.stderr.splitlines() if not ln.startswith("WARNING: Using incubator modules")]
    assert lines == [], proc.stderr
    assert proc.stdout.startswith("histcalc: histogram of 9 file(s): 9 ok")
    logging.getLogger(__name__).info("quiet spark stderr: %r", proc.stderr)


def test_on_a_terminal_log_lines_print_above_the_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    import fcntl
    import os
    import pty
    import select
    import struct
    import termios

    from histcalc.cli import configure_logging

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with os.fdopen(slave, "w") as terminal:
        monkeypatch.setattr(sys, "stderr", terminal)
        configure_logging(0)
        with reporter(terminal) as progress:
            assert isinstance(progress, BarProgress)
            progress(1, 3)
            logging.getLogger("histcalc").info("a log line")
            progress(3, 3, 1)
    out = b""
    while select.select([master], [], [], 0.5)[0]:
        try:
            out += os.read(master, 4096)
        except OSError:  # EIO: the terminal's other side is closed and everything was read
            break
    os.close(master)
    shown = out.decode()
    assert "\rhistcalc: 100%" in shown and "3/3" in shown and "1 file(s) failed" in shown
    log_at = shown.index("INFO histcalc: a log line\r\n")
    assert shown.rfind("\r", 0, log_at) > shown.index("histcalc:   0%")  # the bar was cleared, then the line
