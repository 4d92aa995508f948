"""Zone tables held in a third of their memory, between the tasks that make them and the outputs that read them.

A :class:`~histcalc.zonal.ZoneTable` computes in int64 and float64: 24 bytes a cell. A season of 100,000
parcels holds 41 M cells over its 40 dates, ~1 GB, most of it small numbers. A :class:`PackedTable` keeps
each integer column in the narrowest type that holds it and, where the cells are sorted by zone (every task's
table and every compacted sum is), replaces the cell's zone by the number of cells of each zone row:
3 bytes a cell for per-DN bins of uint8 data (slot uint8, count uint16). :class:`ZoneTables` is a job's
tables by group, unpacked one group at a time when read; :class:`~histcalc.zone_sum.ZoneSum` adds tables up
in this form. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc.heap import small_pages
from histcalc.zonal import I64, TABLE_FIELDS, ZoneTable, concat

_CELL_ZONE = TABLE_FIELDS.index("cell_zone")
_ZONE = TABLE_FIELDS.index("zone")


_NARROW_TYPES = (np.uint8, np.uint16, np.int16, np.uint32, np.int32)


def narrowed(column: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """An int64 column in the first of ``_NARROW_TYPES`` that holds all its values (else as it is)."""
    if column.dtype != np.int64 or not len(column):
        return column
    low, high = int(column.min()), int(column.max())
    for kind in _NARROW_TYPES:
        info = np.iinfo(kind)
        if info.min <= low and high <= info.max:
            return column.astype(kind)
    return column


@dataclass(frozen=True)
class PackedTable:
    """A :class:`ZoneTable`'s fields in :data:`~histcalc.zonal.TABLE_FIELDS` order, integer ones narrowed.

    ``runs``: ``columns[cell_zone]`` holds how many cells each zone row has (cells sorted by zone, each
    cell's zone among the zone rows) instead of each cell's zone. ``compact``: known to be what
    :meth:`~histcalc.zonal.ZoneTable.compacted` makes (whoever receives it need not check).
    """

    columns: tuple[npt.NDArray[Any], ...]
    runs: bool
    rows: int  # cells + zone rows, as ZoneTable.rows
    compact: bool = False

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.columns)


def pack(table: ZoneTable, compact: bool = False) -> PackedTable:
    """``table`` packed; ``compact``: the caller knows it is compact."""
    columns = [getattr(table, name) for name in TABLE_FIELDS]
    lengths = _zone_runs(table.cell_zone, table.zone)
    if lengths is not None:
        columns[_CELL_ZONE] = lengths
    return PackedTable(tuple(narrowed(c) for c in columns), lengths is not None, table.rows, compact)


def unpack(packed: PackedTable) -> ZoneTable:
    columns: list[Any] = [c.astype(np.int64) if c.dtype.kind in "iu" else c for c in packed.columns]
    if packed.runs:
        columns[_CELL_ZONE] = np.repeat(columns[_ZONE], columns[_CELL_ZONE])
    return ZoneTable(*columns)


def _zone_runs(cell_zone: I64, zone: I64) -> I64 | None:
    """How many cells each zone row has, when the cells are sorted by zone, the zone rows strictly increase
    and every cell's zone has a row; else None. One pass over the cells (a date of 100,000 parcels: ~5 ms)."""
    n = len(cell_zone)
    if not n or (len(zone) > 1 and not bool(np.all(zone[1:] > zone[:-1]))):
        return None
    starts = np.flatnonzero(np.concatenate(([True], cell_zone[1:] != cell_zone[:-1])))
    values = cell_zone[starts]  # strictly increasing exactly when the cells are sorted by zone
    if len(values) > 1 and not bool(np.all(values[1:] > values[:-1])):
        return None
    rows = np.searchsorted(zone, values)
    if int(rows[-1]) >= len(zone) or not np.array_equal(zone[rows], values):
        return None  # a cell of a zone without a row
    lengths = np.zeros(len(zone), np.int64)
    lengths[rows] = np.diff(np.append(starts, n))
    return lengths


class ZoneTables(Mapping[str, ZoneTable]):
    """A job's zone tables by group, held packed; each read unpacks the group asked for."""

    def __init__(self, packed: Mapping[str, PackedTable] | None = None) -> None:
        self._packed = dict(packed or {})

    def __getitem__(self, group: str) -> ZoneTable:
        return unpack(self._packed[group])

    def __iter__(self) -> Iterator[str]:
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self._packed.values())

    def packs(self) -> list[PackedTable]:
        """The packed tables, in group order."""
        return list(self._packed.values())

    def __repr__(self) -> str:
        return f"ZoneTables({len(self)} group(s), {self.nbytes:,} bytes packed)"


_SLOT = TABLE_FIELDS.index("cell_slot")
_COUNT = TABLE_FIELDS.index("cell_count")
_DENSE_ENTRIES = 1 << 21  # (zone, slot) sums held densely at a time: 16 MB of int64
_DENSE_MAX_SLOTS = 4096  # more slots than this (16-bit data): too few zones a block, let ZoneSum sort instead


def dense_summable(packs: list[PackedTable]) -> bool:
    """Whether :func:`dense_blocks` can add ``packs`` up: every table in runs form, its slots few enough for
    dense blocks (not 16-bit data's), none negative. Otherwise :class:`~histcalc.zone_sum.ZoneSum` sorts."""
    if not packs or not all(p.runs for p in packs):
        return False
    low = min(int(p.columns[_SLOT].min(initial=0)) for p in packs)
    return low >= 0 and max(int(p.columns[_SLOT].max(initial=0)) for p in packs) < _DENSE_MAX_SLOTS


def dense_blocks(packs: list[PackedTable], span: tuple[int, int] | None = None) -> Iterator[ZoneTable]:
    """The sum of ``packs`` (a job's groups: the whole period) without sorting, as compact tables of
        consecutive blocks of zones (see :func:`dense_summable`): cells are added into a dense block of zones x
        slots at a time, zone rows into arrays over the zones' range. ``span``: the zone values to cover (default:
        those with rows), each of which then gets a row, empty if it had none (as
    :func:`~histcalc.zonal.with_zones` adds them).

        Their concatenation is the table that compacting the concatenation of ``packs`` gives: every (zone, slot)
        cell of any input, counts exact, moments merged in the order of ``packs`` as
        :meth:`~histcalc.zonal.ZoneTable.compacted` merges them. 40 dates of 100,000 parcels (41 M cells into
        11 M): ~1 s, where sorting took ~5 s; one block of ~8,000 zones is held at a time.
    """
    zones = [p.columns[_ZONE] for p in packs if len(p.columns[_ZONE])]
    every = span is not None
    if span is None:
        if not zones:
            return
        span = (min(int(z[0]) for z in zones), max(int(z[-1]) for z in zones) + 1)
    low, high = span
    if zones:
        low, high = min(low, *(int(z[0]) for z in zones)), max(high, *(int(z[-1]) + 1 for z in zones))
    slots = max(int(p.columns[_SLOT].max(initial=0)) for p in packs) + 1
    rows = _zone_rows(packs, low, high - low, every)
    zone_of = [p.columns[_ZONE].astype(np.int64) - low for p in packs]
    starts = [np.concatenate(([0], np.cumsum(p.columns[_CELL_ZONE], dtype=np.int64))) for p in packs]
    block = max(1, _DENSE_ENTRIES // slots)
    counts = np.zeros(block * slots, np.int64)
    seen = np.zeros(block * slots, np.bool_)
    for first in range(0, high - low, block):
        for p, zone, start in zip(packs, zone_of, starts, strict=True):
            r0, r1 = np.searchsorted(zone, (first, first + block))
            c0, c1 = start[r0], start[r1]
            key = np.repeat(zone[r0:r1] - first, p.columns[_CELL_ZONE][r0:r1]) * slots
            key += p.columns[_SLOT][c0:c1]
            np.add.at(counts, key, p.columns[_COUNT][c0:c1].astype(np.int64))  # ufunc.at is fast without casts
            seen[key] = True
        cells = np.flatnonzero(seen)
        cell_zone, cell_slot = np.divmod(cells, slots)
        cell_zone += first + low
        cell_count = counts[cells]
        counts[cells], seen[cells] = 0, False
        r0, r1 = np.searchsorted(rows[0], (first + low, first + low + block))
        yield ZoneTable(cell_zone, cell_slot, cell_count, *(r[r0:r1] for r in rows))


def dense_sum(packs: list[PackedTable]) -> ZoneTable | None:
    """The whole of :func:`dense_blocks` as one table, or None when it cannot add ``packs`` up."""
    if not dense_summable(packs):
        return None
    with small_pages():  # written once in order: huge pages only cost their slow first touch (heap.small_pages)
        return concat(list(dense_blocks(packs))) if any(len(p.columns[_ZONE]) for p in packs) else unpack(packs[0])


def _zone_rows(packs: list[PackedTable], low: int, span: int, every: bool) -> tuple[Any, ...]:
    """The summed zone rows (zone, nodata, masked, n, mean, m2, min, max) of the zones that have one, or of
    ``every`` zone from ``low`` on."""
    present = np.zeros(span, np.bool_)
    ints = np.zeros((3, span), np.int64)  # nodata, masked, n
    weighted = np.zeros(span)
    vmin, vmax = np.full(span, np.inf), np.full(span, -np.inf)
    named = [dict(zip(TABLE_FIELDS, p.columns, strict=True)) for p in packs]
    for c in named:
        z = c["zone"].astype(np.int64) - low
        present[z] = True
        for i, name in enumerate(("nodata", "masked", "n")):
            np.add.at(ints[i], z, c[name].astype(np.int64))
        np.add.at(weighted, z, c["n"] * c["mean"])
        np.minimum.at(vmin, z, c["vmin"])
        np.maximum.at(vmax, z, c["vmax"])
    n = ints[2]
    mean = np.divide(weighted, n, out=np.zeros(span), where=n > 0)
    m2 = np.zeros(span)
    for c in named:
        z = c["zone"].astype(np.int64) - low
        dev = c["mean"] - mean[z]
        np.add.at(m2, z, c["m2"] + c["n"] * dev * dev)
    keep = np.arange(span) if every else np.flatnonzero(present)
    return keep + low, ints[0][keep], ints[1][keep], n[keep], mean[keep], m2[keep], vmin[keep], vmax[keep]
