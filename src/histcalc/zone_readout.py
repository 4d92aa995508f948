"""A task's finished zones as one sparse table: appended as their dense rows are read out, sorted at the end.

Each zone is read out once (``kernel.zone_cells``, compiled): its cells ``(zone, slot, count)`` and its row
(nodata, masked, n, mean, m2, min, max) are appended to growing buffers, so no per-window tables are made
and nothing is added up. :meth:`ReadOut.table` puts the zones in order by moving each zone's run of cells
(``kernel.gather_runs``); a zone read out twice (a task whose windows did not come top to bottom) is
summed by :meth:`~histcalc.zonal.ZoneTable.compacted` instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc import kernel
from histcalc.heap import small_pages
from histcalc.zonal import ZoneTable

I64 = npt.NDArray[np.int64]
Cells = tuple[I64, I64, I64]  # zone, slot, count
F64 = npt.NDArray[np.float64]
_CELLS_PER_ZONE = 32


class ReadOut:
    """The cells and zone rows read out so far (zone ids are the job's zone indices), and the sums of what was
    read out: counts by DN and the nodata and masked tallies (:attr:`totals`)."""

    def __init__(self, dn_slots: I64, dn_values: F64, nbins: int, zones: int = 0) -> None:
        self.dn_slots, self.dn_values, self.nbins = dn_slots, dn_values, nbins
        self.compiled = kernel.zone_cells_compiled(dn_slots)
        # Room for ``zones`` zones of ~32 cells, say: np.empty only reserves address space, the pages a
        # task does not fill are never touched.
        size = zones * _CELLS_PER_ZONE
        with small_pages():
            self.cells: Cells = (np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size, np.int64))
            self.ints = np.empty((zones, 5), np.int64)  # zone, nodata, masked, n, first cell
            self.floats = np.empty((zones, 4), np.float64)  # mean, m2, min, max
        self.n_cells = self.n_zones = 0
        self.totals = np.zeros(len(dn_slots) + 2, np.int64)  # counts by DN, then nodata and masked tallies
        self._tables: list[ZoneTable] = []  # the reference path's tables

    def take(self, counts: npt.NDArray[Any], tallies: I64, rows: I64, zone_ids: I64, reset: bool = True) -> None:
        """Append the zones ``zone_ids`` held in dense ``rows`` of ``counts``/``tallies`` (zeroed with ``reset``)."""
        if not self.compiled:
            self._take_reference(counts, tallies, rows, zone_ids, reset)
            return
        done = 0
        while done < len(rows):
            self._reserve(len(rows) - done, counts.shape[1])
            out = (self.cells, self.n_cells, self.ints, self.floats, self.n_zones, self.totals)
            step, self.n_cells, self.n_zones = kernel.zone_cells(
                counts, tallies, rows[done:], zone_ids[done:], self.dn_slots, self.dn_values, self.nbins, reset, out
            )
            done += step

    def _reserve(self, rows: int, dns: int) -> None:
        """Room for at least one more row's cells and for ``rows`` more zones (doubling)."""
        if self.n_cells + dns > len(self.cells[0]):
            size = max(2 * len(self.cells[0]), self.n_cells + 64 * dns)
            with small_pages():
                zone, slot, count = (
                    np.concatenate([c[: self.n_cells], np.empty(size - self.n_cells, np.int64)]) for c in self.cells
                )
            self.cells = (zone, slot, count)
        if self.n_zones + rows > len(self.ints):
            size = max(2 * len(self.ints), self.n_zones + rows)
            with small_pages():
                ints, floats = np.empty((size, 5), np.int64), np.empty((size, 4), np.float64)
            ints[: self.n_zones], floats[: self.n_zones] = self.ints[: self.n_zones], self.floats[: self.n_zones]
            self.ints, self.floats = ints, floats

    def _take_reference(self, counts: npt.NDArray[Any], tallies: I64, rows: I64, zone_ids: I64, reset: bool) -> None:
        """The numpy reference: :meth:`ZoneTable.from_cells` over a dense copy of the rows."""
        dense = counts[rows].astype(np.int64)
        self.totals[:-2] += dense.sum(axis=0)
        self.totals[-2:] += tallies[rows].sum(axis=0)
        zone_rows, dns = np.nonzero(dense)
        with_none = np.concatenate([np.zeros((1, 2), np.int64), tallies[rows]])  # row 0: "no zone"
        table = ZoneTable.from_cells(
            zone_ids, zone_rows, dns, dense[zone_rows, dns], with_none, self.dn_slots, self.dn_values, self.nbins
        )
        self._tables.append(table)
        if reset:
            counts[rows], tallies[rows] = 0, 0

    def table(self) -> ZoneTable:
        """Everything read out, as one compact table (sorted by zone, then slot)."""
        from histcalc.zonal import concat

        if not self.compiled:
            merged = concat(self._tables)
            return merged if merged.is_compact() else merged.compacted()
        ints, floats = self.ints[: self.n_zones], self.floats[: self.n_zones]
        for column in self.cells:  # the unused tail goes back (numpy reallocates in place: no copy)
            column.resize(self.n_cells, refcheck=False)
        cells: tuple[I64, ...] = self.cells
        order = np.argsort(ints[:, 0], kind="stable")
        zones = ints[order, 0]
        if np.any(zones[1:] == zones[:-1]):  # a zone read out twice: add its parts up
            return self._as_table(cells, ints, floats).compacted()
        if np.any(order != np.arange(len(order))):
            lengths = np.diff(np.append(ints[:, 4], self.n_cells))
            cells = kernel.gather_runs(cells, ints[:, 4], lengths, order)
            ints, floats = ints[order], floats[order]
        return self._as_table(cells, ints, floats)

    @staticmethod
    def _as_table(cells: tuple[I64, ...], ints: I64, floats: F64) -> ZoneTable:
        i, f = np.ascontiguousarray(ints.T), np.ascontiguousarray(floats.T)
        return ZoneTable(cells[0], cells[1], cells[2], i[0], i[1], i[2], i[3], f[0], f[1], f[2], f[3])
