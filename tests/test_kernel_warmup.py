"""HISTCALC_KERNEL=auto loads numba in a background thread and switches to it between blocks.

The counts must not depend on when the switch happens, callers that need the compiled kernels
wait for the thread instead of loading them twice, and a forked pool never hangs on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from histcalc import kernel, kernel_float, kernel_loading, raster
from histcalc.bins import BinSpec
from histcalc.errors import UsageError
from histcalc.raster import ReadSpec
from histcalc.task_counter import TaskCounter
from tests.conftest import brute_force, uint8_bins, write_raster

BLOCK_ROWS = 16
BLOCKS = 8  # windows of one 64 x 128 px raster once a window is one row of 16 px blocks


@pytest.fixture
def fresh_kernels(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process as if it had no C kernels and numba were not loaded yet (its modules stay imported:
    loading again is quick): what ``auto`` does in an installation built without a C compiler."""
    monkeypatch.delenv("HISTCALC_KERNEL", raising=False)
    monkeypatch.setattr(kernel_loading, "_native", None)
    monkeypatch.setattr(kernel_loading, "_native_error", "not built (test)")
    monkeypatch.setattr(kernel_loading, "_ready", threading.Event())
    monkeypatch.setattr(kernel_loading, "_warm_up_thread", None)
    monkeypatch.setattr(kernel_loading, "_task_pixels", 0)
    monkeypatch.setattr(kernel_loading, "WARM_UP_PIXELS", 10**15)  # no thread unless a test starts one
    monkeypatch.setattr(kernel_loading, "_tasks_seen", 0)
    monkeypatch.setattr(kernel_loading, "_idle_core", False)
    monkeypatch.setattr(kernel_loading, "_expected_tasks", 1)
    monkeypatch.setattr(raster, "_BAND_PIXELS", 64 * BLOCK_ROWS)  # one read per row of blocks
    yield
    kernel_loading.join_warm_up()


@pytest.fixture
def tile(tmp_path: Path) -> Path:
    data = np.random.default_rng(12).integers(0, 256, size=(BLOCKS * BLOCK_ROWS, 64), dtype=np.uint8)
    data[:20, :10] = 255  # nodata
    return write_raster(tmp_path / "tile.tif", data, nodata=255, block=BLOCK_ROWS)


@pytest.fixture
def counters(monkeypatch: pytest.MonkeyPatch) -> list[TaskCounter]:
    """The TaskCounters of the tasks run meanwhile (to see how many blocks each kernel counted)."""
    seen: list[TaskCounter] = []
    real_init = TaskCounter.__init__

    def recording_init(self: TaskCounter, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        seen.append(self)

    monkeypatch.setattr(TaskCounter, "__init__", recording_init)
    return seen


def load_after_blocks(monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    """Load the real numba kernels right after the k-th block a TaskCounter counts (the switch point)."""
    real_add = TaskCounter.add
    calls = [0]

    def add_then_maybe_load(self: TaskCounter, *args: Any, **kwargs: Any) -> None:
        real_add(self, *args, **kwargs)
        calls[0] += 1
        if calls[0] == k:
            kernel_loading.warm_up()

    monkeypatch.setattr(TaskCounter, "add", add_then_maybe_load)


def assert_counts_of(tile: Path, histogram: Any) -> None:
    ref = brute_force([tile], uint8_bins().array)
    np.testing.assert_array_equal(histogram.counts, ref["counts"])
    assert histogram.nodata == ref["nodata"]


@pytest.mark.parametrize("switch_after", [0, 1, 5, BLOCKS], ids=["before", "after-1", "after-5", "never"])
@pytest.mark.usefixtures("fresh_kernels")
def test_auto_counts_equal_brute_force_wherever_it_switches(
    monkeypatch: pytest.MonkeyPatch, tile: Path, counters: list[TaskCounter], switch_after: int
) -> None:
    if switch_after == 0:
        kernel_loading.warm_up()
    else:
        load_after_blocks(monkeypatch, switch_after)
    histogram = raster.histogram_of(str(tile), uint8_bins(), ReadSpec())
    assert_counts_of(tile, histogram)
    (counter,) = counters
    assert (counter.numpy_blocks, counter.compiled_blocks) == (switch_after, BLOCKS - switch_after)


@pytest.mark.usefixtures("fresh_kernels")
def test_the_warm_up_thread_starts_once_a_process_has_enough_pixels(
    monkeypatch: pytest.MonkeyPatch, tile: Path, counters: list[TaskCounter]
) -> None:
    monkeypatch.setattr(kernel_loading, "WARM_UP_PIXELS", 2 * 64 * 128)  # reached by the second task
    raster.histogram_of(str(tile), uint8_bins(), ReadSpec())
    assert kernel_loading._warm_up_thread is None and counters[0].compiled_blocks == 0
    histogram = raster.histogram_of(str(tile), uint8_bins(), ReadSpec())
    assert kernel_loading._warm_up_thread is not None
    assert_counts_of(tile, histogram)  # with numba from wherever the thread was done
    kernel_loading.join_warm_up()
    assert kernel_loading.use_compiled()
    assert_counts_of(tile, raster.histogram_of(str(tile), uint8_bins(), ReadSpec()))
    assert counters[-1].compiled_blocks == BLOCKS


@pytest.mark.usefixtures("fresh_kernels")
def test_auto_loads_early_only_when_a_core_is_idle_and_enough_tasks_follow() -> None:
    third = kernel_loading.WARM_UP_PIXELS_IDLE_CORE // 3 + 1  # three such tasks reach the idle-core threshold
    kernel_loading.set_idle_core(False, tasks=3)
    kernel_loading.note_task(third)  # a busy machine: not yet worth a core's 0.35 s
    kernel_loading.set_idle_core(True, tasks=2)
    kernel_loading.note_task(third)  # an idle core, but two tasks are too little work to pay the load back
    assert kernel_loading._warm_up_thread is None


@pytest.mark.usefixtures("fresh_kernels")
def test_auto_loads_at_the_first_task_when_a_core_is_idle_and_enough_tasks_follow() -> None:
    third = kernel_loading.WARM_UP_PIXELS_IDLE_CORE // 3 + 1
    kernel_loading.set_idle_core(True, tasks=3)
    kernel_loading.note_task(third)  # the first of three: with the two to come, the load pays
    assert kernel_loading._warm_up_thread is not None


@pytest.mark.usefixtures("fresh_kernels")
@pytest.mark.parametrize("name", ["numba", "numpy"])
def test_numba_and_numpy_settings_count_every_block_their_way(
    monkeypatch: pytest.MonkeyPatch, tile: Path, counters: list[TaskCounter], name: str
) -> None:
    monkeypatch.setenv("HISTCALC_KERNEL", name)
    assert_counts_of(tile, raster.histogram_of(str(tile), uint8_bins(), ReadSpec()))
    compiled = BLOCKS if name == "numba" else 0
    assert (counters[0].compiled_blocks, counters[0].numpy_blocks) == (compiled, BLOCKS - compiled)
    assert (kernel_loading._warm_up_thread is None) == (name == "numpy")


@pytest.mark.parametrize("name", ["auto", "c"])
def test_with_the_c_kernels_every_block_counts_compiled_and_numba_never_loads(
    monkeypatch: pytest.MonkeyPatch, tile: Path, counters: list[TaskCounter], name: str
) -> None:
    """The C kernels load in ~1 ms, so ``auto`` counts with them from the first block and starts no thread."""
    monkeypatch.setenv("HISTCALC_KERNEL", name)
    monkeypatch.setattr(kernel_loading, "_warm_up_thread", None)
    monkeypatch.setattr(kernel_loading, "WARM_UP_PIXELS", 0)  # numba's thread would start at once
    monkeypatch.setattr(raster, "_BAND_PIXELS", 64 * BLOCK_ROWS)
    assert kernel_loading.compiled_kernels().__name__ == "histcalc._native"
    assert_counts_of(tile, raster.histogram_of(str(tile), uint8_bins(), ReadSpec()))
    assert (counters[0].compiled_blocks, counters[0].numpy_blocks) == (BLOCKS, 0)
    assert kernel_loading._warm_up_thread is None


def test_c_kernels_asked_for_but_not_built_are_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HISTCALC_KERNEL", "c")
    monkeypatch.setattr(kernel_loading, "_native", None)
    monkeypatch.setattr(kernel_loading, "_native_error", "not built (test)")
    with pytest.raises(UsageError, match=r"HISTCALC_KERNEL=c.*no C kernels"):
        kernel_loading.use_compiled()


@pytest.mark.usefixtures("fresh_kernels")
def test_callers_that_need_the_kernels_wait_for_the_one_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Zonal and float counts started while the thread loads share its load, and count right."""
    loads: list[str] = []
    real_load = kernel_loading._load_first_kernel

    def counted_load(jit: Any) -> None:
        loads.append(threading.current_thread().name)
        real_load(jit)

    monkeypatch.setattr(kernel_loading, "_load_first_kernel", counted_load)
    rng = np.random.default_rng(3)
    data = rng.integers(0, 256, size=(40, 30), dtype=np.uint8)
    labels = rng.integers(0, 5, size=data.shape, dtype=np.int32)
    values = rng.normal(0.5, 0.3, size=data.shape).astype(np.float32)
    edges = np.linspace(0.0, 1.0, 11)
    results: dict[str, Any] = {}

    def zonal() -> None:
        counts = np.zeros((5, 256), np.int32)
        tallies, excess = np.zeros((5, 2), np.int64), np.zeros(256, np.int64)
        kernel.count_zones(labels[None], np.arange(5, dtype=np.int32), data, counts, tallies, excess, 0)
        results["zonal"] = counts

    def floats() -> None:
        counts = np.zeros(10, np.int64)
        kernel_float.count_float(values, edges, counts)
        results["float"] = counts

    kernel_loading.start_warm_up()
    callers = [threading.Thread(target=zonal), threading.Thread(target=floats)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join(timeout=60)
    kernel_loading.join_warm_up()
    assert loads == ["histcalc-kernel-warm-up"]
    expected_zonal = np.zeros((5, 256), np.int64)
    np.add.at(expected_zonal, (labels.ravel(), data.ravel()), 1)
    expected_zonal[0] = 0  # label 0: no zone, not counted
    np.testing.assert_array_equal(results["zonal"], expected_zonal)
    np.testing.assert_array_equal(results["float"], np.histogram(values.astype(np.float64), bins=edges)[0])


FORKED_JOBS = """
import json, sys
from histcalc import Scene, compute_histogram, kernel_loading
from histcalc.bins import BinSpec
plain, floats = sys.argv[1], sys.argv[2]
kernel_loading.WARM_UP_PIXELS = 0  # every forked worker starts loading numba on its first task
def job(href, bins):
    result = compute_histogram([Scene(id="s", href=href)], bins, engine="local", workers=2)
    return {"counts": result.histogram.counts.tolist(), "nodata": result.histogram.nodata}
out = {"workers warm up": job(plain, BinSpec.per_digital_number("uint8")),
       "float workers": job(floats, BinSpec.uniform(10, 0.0, 1.0))}
kernel_loading.start_warm_up()  # the driver loads too: the pool must wait for it before forking
out["driver warmed up"] = job(plain, BinSpec.per_digital_number("uint8"))
print(json.dumps(out))
"""


def test_a_forked_pool_with_warm_up_threads_finishes(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    plain = write_raster(tmp_path / "plain.tif", rng.integers(0, 256, (256, 96), dtype=np.uint8), block=16)
    floats = write_raster(tmp_path / "float.tif", rng.uniform(-0.2, 1.2, (256, 96)).astype(np.float32), block=16)
    env = {**os.environ, "HISTCALC_KERNEL": "auto"}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FORKED_JOBS), str(plain), str(floats)],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,  # a deadlock fails here instead of hanging the suite
        check=True,
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    dn_edges = BinSpec.per_digital_number("uint8").array
    for name in ("workers warm up", "driver warmed up"):
        assert out[name]["counts"] == brute_force([plain], dn_edges)["counts"].tolist(), name
    assert out["float workers"]["counts"] == brute_force([floats], np.linspace(0.0, 1.0, 11))["counts"].tolist()


@pytest.mark.usefixtures("fresh_kernels")
def test_without_c_kernels_or_numba_every_count_takes_the_numpy_references(
    monkeypatch: pytest.MonkeyPatch, tile: Path, counters: list[TaskCounter]
) -> None:
    """A wheel built without a C compiler and installed without the numba extra: ``auto`` counts with numpy,
    starts no thread and never asks for compiled kernels; ``=numba`` is a usage error naming the extra."""
    monkeypatch.setattr(kernel_loading, "_numba_found", False)
    monkeypatch.setattr(kernel_loading, "WARM_UP_PIXELS", 0)

    def no_compiled_kernels() -> None:
        raise AssertionError("no compiled kernels in this installation")

    monkeypatch.setattr(kernel_loading, "compiled_kernels", no_compiled_kernels)
    monkeypatch.setattr(kernel, "compiled_kernels", no_compiled_kernels)
    monkeypatch.setattr(kernel_float, "compiled_kernels", no_compiled_kernels)
    assert kernel_loading.kernel_family() == "numpy"
    assert_counts_of(tile, raster.histogram_of(str(tile), uint8_bins(), ReadSpec()))
    assert (counters[0].compiled_blocks, counters[0].numpy_blocks) == (0, BLOCKS)
    assert kernel_loading._warm_up_thread is None
    data = np.arange(12, dtype=np.uint8).reshape(3, 4)
    counts, tallies, excess = np.zeros((3, 256), np.int32), np.zeros((3, 2), np.int64), np.zeros(256, np.int64)
    kernel.count_zones(np.ones((1, 3, 4), np.int32), np.arange(3, dtype=np.int32), data, counts, tallies, excess, 0)
    assert counts[1, :12].tolist() == [1] * 12 and counts.sum() == 12
    floats = np.zeros(4, np.int64)
    kernel_float.count_float(data.astype(np.float32), np.linspace(0, 12, 5), floats)
    assert floats.tolist() == [3, 3, 3, 3]
    monkeypatch.setenv("HISTCALC_KERNEL", "numba")
    with pytest.raises(UsageError, match=r"histcalc\[numba\]"):
        kernel_loading.kernel_family()
