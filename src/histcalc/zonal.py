"""Per-zone histograms kept sparse: what a zonal task returns and how tables add up (their statistics:
:mod:`histcalc.zonal_stats`).

A :class:`ZoneTable` holds, for one group (date, month, ... or all), the non-zero cells ``(zone, slot,
count)`` of many zones, where ``slot`` 0 is "below the range", ``1..N`` are the bins and ``N + 1`` is
"above the range", plus one row per zone with its nodata and masked tallies and the exact moments, min
and max of its counted values. 100,000 parcels of a few hundred pixels each take a few MB, where a dense
zones x bins array would take hundreds.

Tables are added by concatenation and compacted (cells summed by ``(zone, slot)``, moments merged with
the parallel formula) only when the pending rows have doubled: merging stays linear in what is added.
Pure numpy, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc.bins import BinSpec, bin_index

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ZoneTable:
    """Sparse per-zone counts of one group; zones are indices into the job's list of zone ids."""

    cell_zone: I64
    cell_slot: I64
    cell_count: I64
    zone: I64
    nodata: I64
    masked: I64
    n: I64
    mean: F64
    m2: F64
    vmin: F64
    vmax: F64

    @classmethod
    def empty(cls) -> ZoneTable:
        i, f = np.zeros(0, np.int64), np.zeros(0, np.float64)
        return cls(i, i, i, i, i, i, i, f, f, f, f)

    @classmethod
    def from_cells(
        cls,
        zone_index: I64,
        rows: I64,
        dns: I64,
        c: I64,
        tallies: I64,
        dn_slots: I64,
        dn_values: F64,
        nbins: int,
    ) -> ZoneTable:
        """One task's table from unique cells ``(row, DN column, count)`` (row ``k`` is zone ``zone_index[k]``)."""
        n = len(zone_index)
        is_nodata = dn_slots[dns] < 0
        nodata = tallies[1:, 0] + isum(rows[is_nodata], c[is_nodata], n)
        rows, dns, c = rows[~is_nodata], dns[~is_nodata], c[~is_nodata]
        seen = np.flatnonzero((np.bincount(rows, minlength=n) > 0) | (nodata > 0) | (tallies[1:, 1] > 0))
        slots = dn_slots[dns]
        inside = (slots >= 1) & (slots <= nbins)
        table = cls(
            zone_index[rows], slots, c, zone_index, nodata, tallies[1:, 1].copy(),
            *_moments(rows, dn_values[dns], c, inside, n),
        ).only_zones(seen)  # fmt: skip
        if _one_slot_per_dn(dn_slots):
            return table  # cells already unique by (zone, slot), zones sorted: nothing to add up
        return table.compacted()

    def only_zones(self, rows: I64 | slice) -> ZoneTable:
        """This table's zone rows ``rows`` (positions in ``self.zone``), cells unchanged."""
        z = self
        return ZoneTable(
            z.cell_zone, z.cell_slot, z.cell_count, z.zone[rows], z.nodata[rows], z.masked[rows],
            z.n[rows], z.mean[rows], z.m2[rows], z.vmin[rows], z.vmax[rows],
        )  # fmt: skip

    def only_cells(self, keep: npt.NDArray[np.bool_] | slice) -> ZoneTable:
        """This table with the cells where ``keep`` is true (or in the slice ``keep``), zone rows unchanged."""
        z = self
        return ZoneTable(
            z.cell_zone[keep], z.cell_slot[keep], z.cell_count[keep], z.zone, z.nodata, z.masked,
            z.n, z.mean, z.m2, z.vmin, z.vmax,
        )  # fmt: skip

    @property
    def rows(self) -> int:
        return len(self.cell_zone) + len(self.zone)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickled packed (:func:`histcalc.zone_pack.pack`: narrow integers, a compact table's cells' zones as
        runs), unpacked when loaded: what pool workers and Spark executors send is a table, and most of it is
        small counts and zone indices (a date of 100,000 parcels: 2.5 M cells of 24 bytes, ~3 once packed)."""
        from histcalc import zone_pack

        return zone_pack.unpack, (zone_pack.pack(self),)

    def _cell_keys(self) -> I64:
        """One int64 per cell, ordered as (zone, slot)."""
        key: I64 = self.cell_zone * (self.cell_slot.max(initial=0) + 1) + self.cell_slot
        return key

    def is_compact(self) -> bool:
        """Whether this table already is what :meth:`compacted` makes (a task's table usually is): an O(n) check
        (compiled: a date of 100,000 parcels, 2.5 M cells, took 13 ms through int64 keys and their diff)."""
        from histcalc import kernel

        return bool(np.all(np.diff(self.zone) > 0)) and kernel.pairs_increase(self.cell_zone, self.cell_slot)

    def compacted(self) -> ZoneTable:
        """Cells summed by (zone, slot), one row per zone, both sorted by zone."""
        order, starts = _runs(self._cell_keys())
        first = order[starts]
        counts = _run_sums(self.cell_count[order], starts)
        del order  # tables of millions of cells: temporaries go as soon as they are used
        zorder, zstarts = _runs(self.zone)
        zinv = np.empty(len(zorder), np.int64)
        zinv[zorder] = np.repeat(np.arange(len(zstarts)), np.diff(np.append(zstarts, len(zorder))))
        nz = len(zstarts)
        n = _run_sums(self.n[zorder], zstarts)
        total = np.bincount(zinv, weights=self.n * self.mean, minlength=nz)
        mean = np.divide(total, n, out=np.zeros(nz), where=n > 0)
        dev = self.mean - mean[zinv]
        m2: F64 = np.asarray(np.bincount(zinv, weights=self.m2 + self.n * dev * dev, minlength=nz), np.float64)
        vmin = np.minimum.reduceat(self.vmin[zorder], zstarts) if nz else np.zeros(0)
        vmax = np.maximum.reduceat(self.vmax[zorder], zstarts) if nz else np.zeros(0)
        return ZoneTable(
            self.cell_zone[first], self.cell_slot[first], counts, self.zone[zorder[zstarts]],
            _run_sums(self.nodata[zorder], zstarts), _run_sums(self.masked[zorder], zstarts), n, mean, m2, vmin, vmax,
        )  # fmt: skip


def _runs(key: I64) -> tuple[I64, I64]:
    """The stable order of ``key`` and where each run of equal keys starts in it.

    A stable sort of int64 is a timsort: tables that are each sorted already (a running sum's compacted
    part and the tables added since; a task's windows) merge in linear time, where ``np.unique``'s
    quicksort starts over.
    """
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    fresh = np.ones(len(ordered), dtype=bool)
    fresh[1:] = ordered[1:] != ordered[:-1]
    return order, np.flatnonzero(fresh)


def _run_sums(values: I64, starts: I64) -> I64:
    """Sums of ``values`` (in run order) over each run beginning at ``starts``: exact integers.

    By differences of one cumulative sum: ``np.add.reduceat`` costs ~14 ns a run, and most runs of a
    task's table are single cells.
    """
    values = values.astype(np.int64, copy=False)
    if len(starts) == len(values):  # every run is one item
        return values.copy()
    total = np.cumsum(values)
    ends = np.append(starts[1:], len(values)) - 1
    sums: I64 = total[ends]
    sums[1:] -= total[ends[:-1]]
    return sums


def with_zones(table: ZoneTable, zones: I64) -> ZoneTable:
    """``table`` plus an empty row for each of ``zones`` that it does not hold (every zone gets a row)."""
    missing = np.setdiff1d(zones, table.zone)
    if not len(missing):
        return table
    i, f = np.zeros(len(missing), np.int64), np.zeros(len(missing), np.float64)
    empty = np.zeros(0, np.int64)
    filler = ZoneTable(empty, empty, empty, missing, i, i, i, f, f, f + np.inf, f - np.inf)
    if not table.is_compact():
        return concat([table, filler]).compacted()
    # the cells stay as they are (the new rows have none): only the zone rows are put in order
    rows = concat([table.only_cells(slice(0, 0)), filler])
    placed = rows.only_zones(np.argsort(rows.zone, kind="stable"))
    return ZoneTable(table.cell_zone, table.cell_slot, table.cell_count, *(getattr(placed, n) for n in ROW_FIELDS))


def zone_blocks(table: ZoneTable, size: int) -> Iterator[tuple[int, ZoneTable]]:
    """``table`` (compact: rows and cells sorted by zone) cut into blocks of ``size`` zones, as slices."""
    if not table.is_compact():
        table = table.compacted()
    zone_block, cell_block = table.zone // size, table.cell_zone // size
    for block in np.unique(zone_block).tolist():  # every zone with cells has a row
        rows = slice(*np.searchsorted(zone_block, [block, block + 1]).tolist())
        cells = slice(*np.searchsorted(cell_block, [block, block + 1]).tolist())
        yield int(block), table.only_zones(rows).only_cells(cells)


def _one_slot_per_dn(dn_slots: I64) -> bool:
    """True when no two DNs share a slot (per-DN bins): a task's cells are then unique by (zone, slot)."""
    used = dn_slots[dn_slots >= 0]
    return len(np.unique(used)) == len(used)


def concat(tables: Sequence[ZoneTable]) -> ZoneTable:
    if not tables:
        return ZoneTable.empty()
    if len(tables) == 1:
        return tables[0]
    fields = ZoneTable.__dataclass_fields__
    return ZoneTable(**{name: np.concatenate([getattr(t, name) for t in tables]) for name in fields})


TABLE_FIELDS = tuple(ZoneTable.__dataclass_fields__)
ROW_FIELDS = TABLE_FIELDS[3:]  # zone, nodata, masked, n, mean, m2, vmin, vmax


def dn_slots_and_values(
    lo: int, n_dn: int, nodata_dn: int | None, scale: float, offset: float, bins: BinSpec
) -> tuple[I64, F64]:
    """Slot (0 below, 1..N, N + 1 above; -1 nodata) and physical value of each DN ``lo .. lo + n_dn - 1``."""
    dns = np.arange(lo, lo + n_dn, dtype=np.float64)
    values = dns * scale + offset
    slots = bin_index(values, bins.array)
    if nodata_dn is not None:
        slots[nodata_dn - lo] = -1
    return slots, values


def _moments(rows: I64, values: F64, c: I64, inside: npt.NDArray[np.bool_], nz: int) -> tuple[Any, ...]:
    r, v, w = rows[inside], values[inside], c[inside]
    n = isum(r, w, nz)
    total = np.bincount(r, weights=v * w, minlength=nz)
    mean = np.divide(total, n, out=np.zeros(nz), where=n > 0)
    dev = v - mean[r]
    m2 = np.bincount(r, weights=w * dev * dev, minlength=nz)
    vmin, vmax = np.full(nz, math.inf), np.full(nz, -math.inf)
    np.minimum.at(vmin, r, v)
    np.maximum.at(vmax, r, v)
    return n, mean, m2, vmin, vmax


def isum(index: I64, weights: I64, size: int) -> I64:
    """Integer sums of ``weights`` by ``index``: bincount's float64 sums are exact below 2**53 pixels."""
    return np.rint(np.bincount(index, weights=weights, minlength=size)).astype(np.int64)
