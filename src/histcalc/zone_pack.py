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

from histcalc.zonal import _TABLE_FIELDS, I64, ZoneTable, narrowed

_CELL_ZONE = _TABLE_FIELDS.index("cell_zone")
_ZONE = _TABLE_FIELDS.index("zone")


@dataclass(frozen=True)
class PackedTable:
    """A :class:`ZoneTable`'s fields in :data:`~histcalc.zonal._TABLE_FIELDS` order, integer ones narrowed.

    ``runs``: ``columns[cell_zone]`` holds how many cells each zone row has (cells sorted by zone, each
    cell's zone among the zone rows) instead of each cell's zone.
    """

    columns: tuple[npt.NDArray[Any], ...]
    runs: bool
    rows: int  # cells + zone rows, as ZoneTable.rows

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.columns)


def pack(table: ZoneTable) -> PackedTable:
    columns = [getattr(table, name) for name in _TABLE_FIELDS]
    lengths = _zone_runs(table.cell_zone, table.zone)
    if lengths is not None:
        columns[_CELL_ZONE] = lengths
    return PackedTable(tuple(narrowed(c) for c in columns), lengths is not None, table.rows)


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

    def __repr__(self) -> str:
        return f"ZoneTables({len(self)} group(s), {self.nbytes:,} bytes packed)"
