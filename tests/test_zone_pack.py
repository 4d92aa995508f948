"""Zone tables held packed give back exactly what was packed, in a fraction of the memory."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from histcalc.zonal import ZoneTable
from histcalc.zone_pack import ZoneTables, pack, unpack
from histcalc.zone_sum import ZoneSum, total, whole
from tests.support.tables import assert_same_table


def _random_table(rng: np.random.Generator, top: int, sort: bool) -> ZoneTable:
    """A table of any shape: cells of zones with or without a zone row, sorted or not, counts up to ``top``."""
    n, z = int(rng.integers(0, 60)), int(rng.integers(0, 25))
    low = -top if rng.random() < 0.3 else 0
    zone = rng.choice(np.arange(-5 if low else 0, 40), size=z, replace=rng.random() < 0.2).astype(np.int64)
    pool = zone if (len(zone) and rng.random() < 0.7) else np.arange(40, dtype=np.int64)
    cell_zone = rng.choice(pool, size=n).astype(np.int64)
    if sort:
        zone, cell_zone = np.unique(zone), np.sort(cell_zone)
    z = len(zone)
    ints = [rng.integers(low, top, size, dtype=np.int64) for size in (n, n, z, z, z)]
    floats = [rng.normal(size=z) for _ in range(4)]
    if z:
        floats[2][0] = np.inf  # vmin of a zone without values
    return ZoneTable(cell_zone, ints[0], ints[1], zone, *ints[2:], *floats)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([3, 300, 70_000, 2**31, 2**40]), st.booleans())
def test_packing_gives_back_the_table_exactly(seed: int, top: int, sort: bool) -> None:
    table = _random_table(np.random.default_rng(seed), top, sort)
    packed = pack(table)
    assert_same_table(unpack(packed), table)
    assert_same_table(unpack(pickle.loads(pickle.dumps(packed))), table)
    assert packed.rows == table.rows


def test_a_compact_table_of_small_counts_packs_to_three_bytes_a_cell() -> None:
    """Per-DN bins of uint8 data: slot uint8, count uint16, zones as runs (100,000 parcels' date: 2.5 M cells)."""
    rng = np.random.default_rng(4)
    zones = np.sort(rng.choice(100_000, 2_000, replace=False)).astype(np.int64)
    per_zone = rng.integers(0, 200, len(zones))  # DNs 0..250 in slots 1..251
    cell_zone = np.repeat(zones, per_zone)
    slot = np.concatenate([np.sort(rng.choice(251, k, replace=False)) + 1 for k in per_zone]).astype(np.int64)
    f = np.zeros(len(zones))
    ints = [rng.integers(0, 3_000, len(zones)) for _ in range(4)]
    table = ZoneTable(cell_zone, slot, rng.integers(1, 60_000, len(slot)), zones, *ints[1:], f, f, f, f)
    assert table.is_compact()
    packed = pack(table)
    assert packed.runs
    cells = len(cell_zone)
    assert packed.nbytes <= 3 * cells + 48 * len(zones)  # against 24 bytes a cell and 64 a zone row unpacked
    assert_same_table(unpack(packed), table)


def test_tables_by_group_unpack_on_each_read_and_sum_over_groups() -> None:
    rng = np.random.default_rng(5)
    tables = {}
    for group in ("2024-05-01", "2024-05-11", "2024-05-21"):
        table = _random_table(rng, 300, sort=True)
        tables[group] = ZoneSum(table).table()  # compacted
    held = ZoneTables({g: ZoneSum(t).packed() for g, t in tables.items()})
    assert list(held) == list(tables) and len(held) == 3
    for group, table in tables.items():
        assert_same_table(held[group], table)
        assert held[group] is not held[group]  # unpacked afresh: nothing kept widened
    whole = total(held.values())
    by_hand: dict[tuple[int, int], int] = {}
    for t in tables.values():
        for z, s, c in zip(t.cell_zone.tolist(), t.cell_slot.tolist(), t.cell_count.tolist(), strict=True):
            by_hand[(z, s)] = by_hand.get((z, s), 0) + c
    keys = zip(whole.cell_zone.tolist(), whole.cell_slot.tolist(), strict=True)
    got = dict(zip(keys, whole.cell_count.tolist(), strict=True))
    assert got == by_hand
    assert whole.n.sum() == sum(int(t.n.sum()) for t in tables.values())


def test_a_sum_pickles_packed_and_adds_on() -> None:
    rng = np.random.default_rng(6)
    a, b = _random_table(rng, 300, sort=True), _random_table(rng, 300, sort=True)
    running = ZoneSum(a)
    again = pickle.loads(pickle.dumps(running))
    again.add(b)
    assert_same_table(again.table(), total([a, b]))
    assert_same_table(running.table(), ZoneSum(a).table())


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.sampled_from([300, 2**40]))
def test_the_dense_sum_of_groups_equals_compacting_them_all(seed: int, groups: int, top: int) -> None:
    """The whole period summed block by block equals the sort-based compaction of every group at once."""
    from histcalc.zonal import concat, with_zones
    from histcalc.zone_pack import dense_blocks, dense_sum

    rng = np.random.default_rng(seed)
    tables = []
    for _ in range(groups):
        t = _random_table(rng, top, sort=True)
        t = ZoneTable(
            t.cell_zone, np.abs(t.cell_slot) % 258, *[getattr(t, n) for n in list(t.__dataclass_fields__)[2:]]
        )
        tables.append(ZoneSum(t).table())  # compact, as a job's groups are
    packs = [pack(t) for t in tables]
    got = dense_sum(packs)
    if not all(p.runs for p in packs):
        assert got is None
        return
    assert got is not None
    assert_same_table(got, concat(tables).compacted())
    # block by block with a row for every zone, as the statistics of the whole period are written
    every = list(dense_blocks(packs, (-5, 45)))
    assert all(b.is_compact() for b in every)
    assert_same_table(concat(every), with_zones(concat(tables).compacted(), np.arange(-5, 45, dtype=np.int64)))


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.booleans())
def test_a_block_of_every_group_sums_to_what_compacting_them_all_gives(seed: int, groups: int, wide: bool) -> None:
    """``summed`` (the whole period of one block of zones, from its part of each group) adds densely where it can
    and as a running sum where it cannot (16-bit slots); either way it equals compacting every part at once."""
    from histcalc.zonal import concat, with_zones
    from histcalc.zone_sum import summed

    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(groups):
        t = _random_table(rng, 300, sort=True)
        slots = np.abs(t.cell_slot) % 258 + (70_000 if wide else 0)
        n = np.abs(t.n)
        moments = np.where(n == 0, 0.0, t.mean), np.where(n == 0, 0.0, np.abs(t.m2))  # as tasks make them
        rows = [np.abs(t.nodata), np.abs(t.masked), n, *moments, t.vmin, t.vmax]
        parts.append(ZoneSum(ZoneTable(t.cell_zone, slots, np.abs(t.cell_count), t.zone, *rows)).table())
    span = (-5, 45)
    got = with_zones(summed(parts), np.arange(*span, dtype=np.int64))
    want = with_zones(concat(parts).compacted(), np.arange(*span, dtype=np.int64))
    for name in ZoneTable.__dataclass_fields__:  # moments merge in another order: an ulp apart
        a, b = getattr(got, name), getattr(want, name)
        if name in ("mean", "m2"):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)


def test_the_dense_sum_goes_block_by_block_and_refuses_what_it_cannot_do(monkeypatch: Any) -> None:
    from histcalc import zone_pack
    from histcalc.zonal import concat

    rng = np.random.default_rng(8)
    fields = list(ZoneTable.__dataclass_fields__)[2:]
    tables = []
    while len(tables) < 5:  # tables whose every cell's zone has a row (runs form), slots 0..199
        t = _random_table(rng, 300, sort=True)
        t = ZoneSum(ZoneTable(t.cell_zone, t.cell_slot % 200, *[getattr(t, n) for n in fields])).table()
        if len(t.cell_zone) and pack(t).runs:
            tables.append(t)
    monkeypatch.setattr(zone_pack, "_DENSE_ENTRIES", 200 * 3)  # blocks of 3 zones
    assert_same_table(zone_pack.dense_sum([pack(t) for t in tables]), concat(tables).compacted())
    wide = ZoneTable(
        np.array([1]),
        np.array([70_000]),
        np.array([2]),
        np.array([1]),
        *[np.zeros(1, np.int64)] * 3,
        *[np.zeros(1)] * 4,
    )
    assert zone_pack.dense_sum([pack(wide)]) is None  # 16-bit slots: left to ZoneSum
    held = ZoneTables({"a": pack(wide), "b": pack(wide)})
    both = whole(held)
    assert both.cell_count.tolist() == [4] and both.cell_slot.tolist() == [70_000]


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_empty_rows_for_every_zone_are_added_without_touching_the_cells(seed: int, compact: bool) -> None:
    """``with_zones`` on a compact table (cells kept, rows merged) equals adding and compacting everything."""
    from histcalc.zonal import concat, with_zones

    rng = np.random.default_rng(seed)
    table = _random_table(rng, 300, sort=True)
    assume(min(table.cell_zone.min(initial=0), table.cell_slot.min(initial=0), table.zone.min(initial=0)) >= 0)
    assume(table.n.min(initial=0) >= 0)
    empty = table.n == 0  # as tasks make them: no values, no moments
    head = [getattr(table, n) for n in list(ZoneTable.__dataclass_fields__)[:7]]
    moments = np.where(empty, 0.0, table.mean), np.where(empty, 0.0, table.m2)
    table = ZoneTable(*head, *moments, table.vmin, table.vmax)
    if compact:
        table = ZoneSum(table).table()
    zones = np.arange(-5, 45, dtype=np.int64)
    got = with_zones(table, zones)
    missing = np.setdiff1d(zones, table.zone)
    i, f, e = np.zeros(len(missing), np.int64), np.zeros(len(missing)), np.zeros(0, np.int64)
    filler = ZoneTable(e, e, e, missing, i, i, i, f, f, f + np.inf, f - np.inf)
    want = concat([table, filler]).compacted() if len(missing) else table
    for name in ZoneTable.__dataclass_fields__:  # compacting recomputes each mean as (n * mean) / n: an ulp off
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype
        if name in ("mean", "m2"):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)
        else:
            np.testing.assert_array_equal(a, b, err_msg=name)
    assert set(got.zone.tolist()) >= set(zones.tolist())


def test_a_compact_sum_sent_from_a_worker_is_not_unpacked_to_be_checked_again(monkeypatch: Any) -> None:
    from histcalc import zone_sum

    table = ZoneSum(_random_table(np.random.default_rng(9), 300, sort=True)).table()
    sent = pickle.dumps(ZoneSum(table))  # as a pool worker returns its partial result

    def unpacked(_packed: Any) -> ZoneTable:
        raise AssertionError("unpacked")

    monkeypatch.setattr(zone_sum, "unpack", unpacked)
    received = pickle.loads(sent)
    assert received.packed().compact
    monkeypatch.undo()
    assert_same_table(received.table(), table)
