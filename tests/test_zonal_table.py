"""Sparse per-zone tables against dense per-zone Histograms built independently, over random tasks."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from histcalc.bins import BinSpec
from histcalc.histogram import Histogram
from histcalc.zonal import ZoneTable, concat, dn_slots_and_values
from histcalc.zonal_stats import zone_stats
from histcalc.zone_readout import ReadOut
from histcalc.zone_sum import ZoneSum
from tests.support.kernels import kernel_env
from tests.support.tables import assert_same_table

SCALE, OFFSET, NODATA_DN = 0.004, -0.08, 255
PERCENTILES = (0, 2, 25, 50, 75, 98, 100)


def dense_table(counts, tallies, subset, slots, values, bins: BinSpec, reset: bool = False) -> ZoneTable:
    """Dense ``counts[1 + k]`` of zone ``subset[k]`` read out as the zone counter does (row 0: no zone)."""
    out = ReadOut(slots, values, bins.count)
    out.take(counts, tallies, np.arange(1, len(counts), dtype=np.int64), subset, reset)
    return out.table()


def task_table(rng: np.random.Generator, zones: int, subset: np.ndarray, bins: BinSpec) -> tuple[ZoneTable, dict]:
    """A random task: dense (label, DN) counts and tallies, and the same as plain per-zone Histograms."""
    counts = np.zeros((len(subset) + 1, 256), np.int64)
    hot = rng.integers(0, 256, size=(len(subset) + 1, 6))
    for row, dns in enumerate(hot):
        counts[row, dns] += rng.integers(0, 50, size=6)
    tallies = rng.integers(0, 3, size=(len(subset) + 1, 2)).astype(np.int64)
    slots, values = dn_slots_and_values(0, 256, NODATA_DN, SCALE, OFFSET, bins)
    table = dense_table(counts, tallies, subset, slots, values, bins)
    dense = {}
    for k, zone in enumerate(subset):
        row = counts[k + 1].copy()
        nodata = int(row[NODATA_DN]) + int(tallies[k + 1, 0])
        row[NODATA_DN] = 0
        seen = np.flatnonzero(row)
        h = Histogram.of_weighted(values[seen], row[seen], bins, nodata=nodata, masked=int(tallies[k + 1, 1]))
        if h.pixels:
            dense[int(zone)] = h
    return table, dense


@pytest.mark.parametrize("bins", [BinSpec.per_digital_number("uint8", SCALE, OFFSET), BinSpec.uniform(7, 0.1, 0.8)])
@pytest.mark.parametrize("stats_kernel", ["c", "numba", "numpy"])
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), tasks=st.integers(1, 6))
def test_summed_tables_equal_dense_histograms_zone_by_zone(
    bins: BinSpec, stats_kernel: str, seed: int, tasks: int
) -> None:
    """Statistics by the compiled pass and by the column-wise numpy reference, against dense Histograms."""
    rng = np.random.default_rng(seed)
    zones = 30
    total, expected = ZoneSum(), {}
    for _ in range(tasks):
        subset = np.sort(rng.choice(zones, size=rng.integers(1, zones), replace=False)).astype(np.int64)
        table, dense = task_table(rng, zones, subset, bins)
        total.add(table)
        for zone, h in dense.items():
            expected[zone] = expected[zone] + h if zone in expected else h
    result = total.table()
    assert result.zone.tolist() == sorted(expected)
    with kernel_env(stats_kernel):
        columns = zone_stats(result, bins, PERCENTILES)
    for i, zone in enumerate(result.zone):
        h = expected[int(zone)]
        stats = h.stats(PERCENTILES)
        assert (columns["pixels"][i], columns["count"][i]) == (h.pixels, h.count)
        assert (columns["below"][i], columns["above"][i]) == (h.below, h.above)
        assert (columns["nodata"][i], columns["masked"][i]) == (h.nodata, h.masked)
        for name in ("mean", "std", "min", "max"):
            np.testing.assert_allclose(columns[name][i], stats[name], rtol=1e-9, atol=1e-12, equal_nan=True)
        for q in PERCENTILES:
            want = stats["percentiles"][f"p{q:g}"]
            np.testing.assert_allclose(columns[f"p{q:g}"][i], want, rtol=1e-9, equal_nan=True)


def test_merging_many_tables_compacts_and_stays_exact() -> None:
    bins = BinSpec.per_digital_number("uint8", SCALE, OFFSET)
    rng = np.random.default_rng(1)
    total, count = ZoneSum(), 0
    for _ in range(400):
        subset = np.sort(rng.choice(5000, size=300, replace=False)).astype(np.int64)
        table, dense = task_table(rng, 5000, subset, bins)
        count += sum(h.count for h in dense.values())
        total.add(table)
    merged = total.table()
    assert len(np.unique(merged.zone)) == len(merged.zone)
    assert int(zone_stats(merged, bins, ())["count"].sum()) == count


def _tables_by_every_kernel(
    monkeypatch: pytest.MonkeyPatch, counts: np.ndarray, tallies: np.ndarray, bins: BinSpec, scale: float
):
    """The tables read out by the C kernels, by numba's, and by the numpy reference (last)."""
    subset = np.arange(10, 10 + len(counts) - 1, dtype=np.int64)
    slots, values = dn_slots_and_values(0, 256, NODATA_DN, scale, OFFSET, bins)
    tables = []
    for name in ("c", "numba", "numpy"):
        monkeypatch.setenv("HISTCALC_KERNEL", name)
        tables.append(dense_table(counts, tallies, subset, slots, values, bins))
    return tables


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize(
    ("bins", "scale"),
    [
        (BinSpec.per_digital_number("uint8", SCALE, OFFSET), SCALE),
        (BinSpec.uniform(7, 0.1, 0.8), SCALE),  # several DNs per bin, and DNs below/above the range
        (BinSpec.uniform(5, -1.0, 0.0), -SCALE),  # a negative scale: slots fall with the DN (reference path)
    ],
)
def test_compiled_zone_table_equals_the_numpy_reference(
    monkeypatch: pytest.MonkeyPatch, dtype: type, bins: BinSpec, scale: float
) -> None:
    rng = np.random.default_rng(7)
    counts = np.zeros((401, 256), dtype)
    hot = rng.random(counts.shape) < 0.05
    counts[hot] = rng.integers(1, 1000, size=int(hot.sum()))
    counts[5] = 0  # a zone with nothing, one with only nodata DNs, one with only tallies
    counts[6] = 0
    counts[6, NODATA_DN] = 3
    counts[7] = 0
    tallies = np.zeros((401, 2), np.int64)
    tallies[7] = (2, 1)
    tallies[rng.integers(1, 401, 30)] = rng.integers(0, 4, size=(30, 2))
    *compiled_tables, reference = _tables_by_every_kernel(monkeypatch, counts, tallies, bins, scale)
    reference = reference.compacted()  # one cell per (zone, slot), sorted, as the compiled table is
    assert 6 + 10 - 1 in reference.zone and 4 + 10 not in reference.zone
    for compiled in compiled_tables:
        for name in ("cell_zone", "cell_slot", "cell_count", "zone", "nodata", "masked", "n", "vmin", "vmax"):
            np.testing.assert_array_equal(getattr(compiled, name), getattr(reference, name), err_msg=name)
        for name in ("mean", "m2"):
            np.testing.assert_allclose(getattr(compiled, name), getattr(reference, name), rtol=1e-12, err_msg=name)


def test_a_compact_table_is_recognised_and_an_unsorted_one_is_not() -> None:
    bins = BinSpec.per_digital_number("uint8", SCALE, OFFSET)
    table, _ = task_table(np.random.default_rng(3), 50, np.arange(0, 50, 2, dtype=np.int64), bins)
    compact = table.compacted()
    assert compact.is_compact()
    kept = ZoneSum(compact)
    packed = kept.packed()
    assert kept.packed() is packed and packed.runs  # nothing to add up: kept as it is, cells as runs per zone
    assert_same_table(kept.table(), compact)
    both = concat([compact, compact])
    assert not both.is_compact()
    summed = ZoneSum(both).table()
    np.testing.assert_array_equal(summed.cell_count, 2 * compact.cell_count)


@pytest.mark.parametrize("kernel", ["c", "numba", "numpy"])
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), batches=st.integers(1, 8), again=st.booleans())
def test_zones_read_out_in_batches_equal_dense_histograms(kernel: str, seed: int, batches: int, again: bool) -> None:
    """A task's zones read out of dense rows in batches (as windows finish them), in any zone order, equal
    per-zone Histograms; the rows are zeroed; a zone read out twice (``again``) has its parts added up."""

    os.environ["HISTCALC_KERNEL"] = kernel
    try:
        rng = np.random.default_rng(seed)
        bins = BinSpec.per_digital_number("uint8", SCALE, OFFSET)
        slots, values = dn_slots_and_values(0, 256, NODATA_DN, SCALE, OFFSET, bins)
        zones = rng.permutation(60)[:40].astype(np.int64)  # row k + 1 holds zone zones[k]
        table, expected = task_table(rng, 60, zones, bins)
        del table
        counts = np.zeros((41, 256), np.int32)
        tallies = np.zeros((41, 2), np.int64)
        for k, zone in enumerate(zones):  # the dense rows back from the expected Histograms
            h = expected.get(int(zone))
            if h is not None:
                counts[k + 1] = h.counts  # per-DN bins: bin i is DN i (the nodata DN's bin is empty)
                tallies[k + 1] = (h.nodata, h.masked)
        out = ReadOut(slots, values, bins.count, len(zones))
        rows = rng.permutation(np.arange(1, 41))
        cuts = np.sort(rng.choice(np.arange(1, 40), size=batches - 1, replace=False))
        second = {}
        for part in np.split(rows, cuts):
            if again and len(part) > 1:  # half of one zone's row read out now, the rest later
                row = int(part[0])
                second[row] = counts[row] - counts[row] // 2
                counts[row] //= 2
            out.take(counts, tallies, np.sort(part).astype(np.int64), zones[np.sort(part) - 1])
        for row, rest in second.items():
            counts[row] = rest
            out.take(counts, tallies, np.array([row], np.int64), zones[[row - 1]])
        merged = out.table()
    finally:
        os.environ.pop("HISTCALC_KERNEL")
    assert not counts.any() and not tallies.any()
    assert merged.is_compact() and merged.zone.tolist() == sorted(expected)
    columns = zone_stats(merged, bins, (50,))
    for i, zone in enumerate(merged.zone):
        h = expected[int(zone)]
        got = [int(columns[name][i]) for name in ("count", "below", "above", "nodata", "masked")]
        assert got == [h.count, h.below, h.above, h.nodata, h.masked]
        cells = merged.cell_zone == zone
        dense = np.zeros(bins.count + 2, np.int64)
        dense[merged.cell_slot[cells]] = merged.cell_count[cells]
        assert dense[1:-1].tolist() == h.counts.tolist()
        np.testing.assert_allclose(columns["mean"][i], h.stats(())["mean"], rtol=1e-9, equal_nan=True)


def test_small_pages_turns_numpys_huge_page_request_off_inside_and_back_after() -> None:
    """The read-out's buffers are made without huge pages; numpy's setting is restored, also on an error."""
    from histcalc.heap import _madvise_switch, small_pages

    switch = _madvise_switch()
    if switch is None:
        pytest.skip("this numpy has no huge page switch")
    before = switch(True)
    try:
        with small_pages():
            assert switch(False) is False  # off inside (switch returns the setting it replaced)
        assert switch(True) is True  # on again after
        with pytest.raises(RuntimeError), small_pages():
            raise RuntimeError("boom")
        assert switch(True) is True
    finally:
        switch(before)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([10, 300, 70_000, 2**31, 2**40]))
def test_a_table_pickles_narrow_and_loads_exactly_as_it_was(seed: int, top: int) -> None:
    """Pool workers and Spark executors send tables pickled with narrowed integer columns: what arrives is
    the same table, int64 columns and all, whatever the range of the values (negative ones too)."""
    import pickle

    rng = np.random.default_rng(seed)
    n, z = int(rng.integers(0, 50)), int(rng.integers(0, 20))

    def ints(size: int) -> np.ndarray:
        return rng.integers(-top if rng.random() < 0.3 else 0, top, size, dtype=np.int64)

    floats = [rng.normal(size=z) for _ in range(4)]
    table = ZoneTable(ints(n), ints(n), ints(n), ints(z), ints(z), ints(z), ints(z), *floats)
    loaded = pickle.loads(pickle.dumps(table))
    for name in ZoneTable.__dataclass_fields__:
        before, after = getattr(table, name), getattr(loaded, name)
        assert after.dtype == before.dtype and np.array_equal(after, before), name


def test_a_table_of_small_counts_pickles_in_under_half_its_bytes() -> None:
    import pickle

    rng = np.random.default_rng(3)
    cells, zones = 10_000, 300
    zone = np.sort(rng.integers(0, 100_000, cells))
    f = np.zeros(zones)
    table = ZoneTable(
        zone, rng.integers(1, 257, cells), rng.integers(1, 3000, cells), *[np.arange(zones)] * 4, f, f, f, f
    )
    in_memory = sum(getattr(table, k).nbytes for k in ZoneTable.__dataclass_fields__)
    assert len(pickle.dumps(table)) < 0.5 * in_memory
