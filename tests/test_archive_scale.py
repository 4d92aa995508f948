"""Archive scale: merging is linear, few results in flight, keyed reduce, no orphaned workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from histcalc.bins import BinSpec
from histcalc.engines.local import bounded
from histcalc.engines.spark import partitions, reducer_count
from histcalc.histogram import Histogram
from histcalc.result import Partial, merge_records
from tests.conftest import write_raster

BINS = BinSpec.per_digital_number("uint8", 0.004, -0.08)


def one_file_partial(i: int, groups: int = 40) -> Partial:
    if i % 97 == 0:
        return Partial.of_failure(f"/data/f{i}.tif", "unreadable")
    values = np.full(3, (i % 200) * 0.004 - 0.08)
    return Partial.of_task(f"/data/f{i}.tif", {("", f"g{i % groups}"): Histogram.of_values(values, BINS)}, False)


def merged(n: int) -> Partial:
    total = Partial()
    for i in range(n):
        total.merge(one_file_partial(i))
    return total


def test_merging_adds_each_histogram_once_and_never_copies_the_total(monkeypatch: pytest.MonkeyPatch) -> None:
    additions = 0
    add = Histogram.__add__

    def counted(self: Histogram, other: Histogram) -> Histogram:
        nonlocal additions
        additions += 1
        return add(self, other)

    monkeypatch.setattr(Histogram, "__add__", counted)
    n = 20_000
    total = merged(n)
    failures = len(range(0, n, 97))
    # one addition per merged histogram, minus the first of each of the 40 keys: O(addend), not O(total)
    assert additions == n - failures - 40
    assert total.tasks == n and len(total.failed) == failures
    assert sum(h.count for h in total.histograms.values()) == 3 * (n - failures)


def test_merging_time_grows_linearly_with_the_number_of_partials() -> None:
    """CPU time (not wall time: the machine may be busy), the collector paused, best of three."""
    import gc

    def seconds(n: int) -> float:
        partials = [one_file_partial(i) for i in range(n)]
        gc.disable()
        try:
            started = time.process_time()
            total = Partial()
            for p in partials:
                total.merge(p)
            return time.process_time() - started
        finally:
            gc.enable()

    small = min(seconds(10_000) for _ in range(3))
    large = min(seconds(100_000) for _ in range(2))
    assert large < 15 * max(small, 0.01), f"10x the partials took {large / small:.1f}x the CPU time"
    assert large < 10, f"merging 100,000 partials took {large:.1f} s of CPU"


def test_keyed_records_reduced_by_key_equal_direct_merging() -> None:
    """What Spark does (records -> reduceByKey -> stream to the driver) equals merging in one process."""
    direct = merged(3000)
    reduced: dict[tuple[object, ...], object] = {}
    for start in range(0, 3000, 250):  # twelve "partitions"
        part = Partial()
        for i in range(start, start + 250):
            part.merge(one_file_partial(i))
        for key, value in part.records():
            reduced[key] = merge_records(reduced[key], value) if key in reduced else value
    streamed = Partial.from_records(reduced.items())
    assert streamed.tasks == direct.tasks == 3000 and streamed.failed == direct.failed
    assert streamed.histograms.keys() == direct.histograms.keys()
    for key, h in direct.histograms.items():
        np.testing.assert_array_equal(streamed.histograms[key].counts, h.counts)
        assert streamed.histograms[key].moments.n == h.moments.n


def test_split_file_parts_count_only_when_every_part_succeeded() -> None:
    h = Histogram.of_values(np.array([0.1, 0.2]), BINS)
    total = Partial()
    for part in (
        Partial.of_task("/a.tif", {("", ""): h}, True),
        Partial.of_task("/a.tif", {("", ""): h}, True),
        Partial.of_task("/b.tif", {("", ""): h}, True),
        Partial.of_failure("/b.tif", "truncated"),
    ):
        total.merge(part)
    result = total.finish(["/a.tif", "/b.tif"], 4, "local", 0.0, BINS)
    assert result.histogram.count == 4 and result.files_ok == ["/a.tif"]
    assert result.files_failed == {"/b.tif": "truncated"}


def test_a_lost_task_is_an_error_not_a_silently_smaller_count() -> None:
    from histcalc.errors import EngineError

    with pytest.raises(EngineError, match="3 task"):
        merged(2).finish(["/data/f0.tif", "/data/f1.tif"], 3, "local", 0.0, BINS)


def test_few_results_in_flight() -> None:
    """The local engine pulls tasks lazily: never more than ``limit`` submitted and not yet merged."""
    pulled = 0

    def tasks() -> object:
        nonlocal pulled
        for i in range(1000):
            pulled += 1
            yield i

    with ThreadPoolExecutor(2) as pool:
        for taken, _ in enumerate(bounded(pool, lambda i: i * i, tasks(), limit=8), 1):
            assert pulled <= taken + 8
    assert taken == 1000


@pytest.mark.parametrize(("tasks", "cores", "expected"), [(1, 8, 1), (100, 2, 8), (10_000, 2, 20), (10**6, 16, 2000)])
def test_partitions_stay_sensible_for_many_tasks(tasks: int, cores: int, expected: int) -> None:
    assert partitions(tasks, cores) == expected


@pytest.mark.parametrize(
    ("slices", "cores", "groups", "expected"), [(8, 2, 0, 2), (8, 2, 1, 2), (8, 2, 5, 5), (8, 2, 40, 8), (1, 16, 3, 3)]
)
def test_zonal_jobs_reduce_in_up_to_four_partitions_per_core(
    slices: int, cores: int, groups: int, expected: int
) -> None:
    """A reducer holds its zonal groups' tables until it has merged them: more reducers, fewer tables each."""
    assert reducer_count(slices, cores, groups) == expected


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").exists(), reason="needs /proc to find the worker processes")
def test_no_worker_is_left_behind_when_the_driver_is_killed(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    for i in range(400):
        write_raster(tmp_path / f"f{i:04d}.tif", rng.integers(0, 250, (256, 256), dtype=np.uint8), block=None)
    argv = [sys.executable, "-m", "histcalc", "--catalog", str(tmp_path), "--engine", "local", "--workers", "2"]
    argv += ["--range", "0,250", "--bins", "50"]
    driver = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers: set[int] = set()
        while len(workers) < 2 and time.monotonic() < deadline and driver.poll() is None:
            workers = {p for p in _children(driver.pid) if _alive(p)}
            time.sleep(0.05)
        assert len(workers) >= 2, "the job ended before its workers could be seen; make it longer"
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in workers if _alive(p)], "worker processes outlived their driver"
    finally:
        if driver.poll() is None:
            driver.kill()
