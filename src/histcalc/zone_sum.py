"""Running sums of zone tables, held packed (:mod:`histcalc.zone_pack`): what a job keeps per group between
its tasks and its outputs. Pure numpy."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping

import numpy as np

from histcalc.zonal import ZoneTable, concat, with_zones, zone_blocks
from histcalc.zone_pack import PackedTable, ZoneTables, dense_blocks, dense_sum, dense_summable, pack, unpack

_COMPACT_MIN_ROWS = 1 << 16  # pending rows below which a sum is not compacted yet


class ZoneSum:
    """A running sum of zone tables: added by concatenation, compacted when the pending rows doubled.

    Every table is held packed from the moment it is added; a compaction unpacks the pending ones, adds them
    up and packs the sum.
    """

    __slots__ = ("_compact_rows", "_pending", "_pending_rows")

    def __init__(self, first: ZoneTable | PackedTable | None = None) -> None:
        self._pending: list[PackedTable] = []
        self._pending_rows = 0
        self._compact_rows = 0
        if first is not None:
            self.add(first)

    def add(self, table: ZoneTable | PackedTable) -> None:
        """Add ``table``; a first table known or found compact (a task's usually is) is never unpacked to be
        checked again, here or where this sum is sent (pool workers send their sums packed)."""
        if isinstance(table, ZoneTable):
            table = pack(table, compact=not self._pending and table.is_compact())
        self._pending.append(table)
        self._pending_rows += table.rows
        if table.compact and len(self._pending) == 1:
            self._compact_rows = table.rows
        elif self._pending_rows > max(_COMPACT_MIN_ROWS, 2 * self._compact_rows):
            self.packed()

    def merge(self, other: ZoneSum) -> None:
        for table in other._pending:
            self.add(table)

    def packed(self) -> PackedTable:
        """The sum so far, compacted, packed."""
        if not self._pending:
            return pack(ZoneTable.empty())
        if len(self._pending) != 1 or self._pending_rows != self._compact_rows:
            merged = concat([unpack(p) for p in self._pending])
            if len(self._pending) == 1 and merged.is_compact():  # sent by a process that did not check it
                self._pending = [dataclasses.replace(self._pending[0], compact=True)]
            else:
                self._pending = [pack(merged.compacted(), compact=True)]
            del merged
            self._pending_rows = self._compact_rows = self._pending[0].rows
        return self._pending[0]

    def table(self) -> ZoneTable:
        """The sum so far, compacted."""
        return unpack(self.packed())

    def __getstate__(self) -> PackedTable:
        return self.packed()

    def __setstate__(self, packed: PackedTable) -> None:
        self.__init__(packed)  # type: ignore[misc]


def total(tables: Iterable[ZoneTable | PackedTable]) -> ZoneTable:
    """The sum of ``tables`` (over all groups, say), added one at a time: never all of them unpacked at once."""
    whole = ZoneSum()
    for table in tables:
        whole.add(table)
    return whole.table()


def summed(tables: Iterable[ZoneTable | PackedTable]) -> ZoneTable:
    """The sum of ``tables`` (a job's groups, or one block of zones of each), added densely where they can be
    (no sort: 40 dates of a block of 8,192 parcels in ~0.09 s, where compacting sorted took ~0.29 s), else
    one at a time (:func:`total`)."""
    packs = [t if isinstance(t, PackedTable) else pack(t) for t in tables]
    dense = dense_sum(packs) if len(packs) > 1 else None
    return dense if dense is not None else total(packs)


def whole(tables: Mapping[str, ZoneTable]) -> ZoneTable:
    """The sum of a job's group tables: the whole period (:func:`summed`; held packed, they are not packed again)."""
    return summed(tables.packs() if isinstance(tables, ZoneTables) else tables.values())


def whole_blocks(tables: Mapping[str, ZoneTable], every: int | None, size: int) -> Iterator[ZoneTable]:
    """:func:`whole` as compact tables of consecutive blocks of zones, one block held at a time where the tables
    are added densely. ``every``: zones 0 .. every - 1 each get a row (empty if they had no pixel)."""
    span = None if every is None else (0, every)
    if len(tables) > 1 and isinstance(tables, ZoneTables) and dense_summable(tables.packs()):
        yield from dense_blocks(tables.packs(), span)
        return
    table = whole(tables)
    if every is not None:
        table = with_zones(table, np.arange(every, dtype=np.int64))
    for _block, part in zone_blocks(table, size):
        yield part
