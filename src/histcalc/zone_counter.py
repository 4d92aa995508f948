"""One task's counts per zone: label layers of each window x digital numbers, with the compiled kernel.

For every window the reader hands over, the zones' label layers (``histcalc.label_cache``, cached per grid so
the dates of one tile share them) are counted against the window's DNs in one pass (``kernel.count_zones``)
into dense ``[row, DN]`` counts (:class:`~histcalc.zone_rows.ZoneRows`), uint16 where no zone can hold more
pixels. While the subset's rows fit ``_DENSE_BUDGET`` every zone has its row for the whole task and is read
out once at the end, in zone order; beyond it a zone borrows a row from the first window it meets to the
last (the windows are row bands read top to bottom, and a zone's bounds say when it is done). Either way a
zone is read out once with its whole task's counts into the task's sparse table
(:class:`~histcalc.zone_readout.ReadOut`): nothing is added up. The union of the zones, which the task's main
histogram holds, is the zones' sums by DN less the excess of pixels in several zones (the kernel counts
it). 16-bit data keeps sparse (zone, DN) cells instead, counted in numpy, and its union is counted from a
mask. The task's table is checked to account for every labelled pixel.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc import kernel
from histcalc.bins import BinSpec
from histcalc.errors import AccountingError
from histcalc.label_cache import process_cache
from histcalc.labels import WindowLabels
from histcalc.task_counter import TaskCounter
from histcalc.zonal import ZoneTable, dn_slots_and_values
from histcalc.zone_readout import ReadOut
from histcalc.zone_rows import ZoneRows
from histcalc.zones import ZoneSubset

BoolArray = npt.NDArray[np.bool_]
_DENSE_MAX_DNS = 4096
_INT32_MAX = np.iinfo(np.int32).max
_UINT16_MAX = np.iinfo(np.uint16).max
_DENSE_BUDGET = 64 * 1024 * 1024


class ZoneCounter:
    """Accumulates per-zone tables over the windows of one task: (zone, DN) counts, nodata and masked tallies."""

    def __init__(
        self,
        subset: ZoneSubset,
        lo: int,
        n_dn: int,
        nodata_dn: int | None,
        all_touched: bool,
        bins: BinSpec,
        scale: float,
        offset: float,
        grid: tuple[float, float, int] | None = None,
    ) -> None:
        """``grid``: the raster's pixel width and height (CRS units) and its pixels, which bound a zone's count."""
        self.subset, self.lo, self.nodata_dn, self.all_touched = subset, lo, nodata_dn, all_touched
        self.n_dn = n_dn
        self.bins = bins
        self.slots, self.values = dn_slots_and_values(lo, n_dn, nodata_dn, scale, offset, bins)
        # 8-bit data (256 columns) is counted into dense rows lent to the open zones; 16-bit data (65,536
        # columns, 0.5 MB a zone) keeps sparse (zone, DN) cells instead, counted in numpy.
        self.wide = n_dn > _DENSE_MAX_DNS
        dtype = self._cell_type(grid)
        self.rows = ZoneRows(0 if self.wide else len(subset), 0 if self.wide else n_dn, dtype)
        # A row for every zone of the subset when they fit the budget (parcels in uint16: 51 MB for 100,000),
        # read out once at the end in zone order; else rows lent to the zones of about one window at a time.
        self.lend = len(subset) * n_dn * np.dtype(dtype).itemsize > _DENSE_BUDGET
        self.met = np.zeros(0 if self.lend else len(subset), bool)  # zones some window met (the rest stay zero)
        self.readout = ReadOut(self.slots, self.values, bins.count, len(subset))
        self.excess = np.zeros(n_dn if not self.wide else 0, np.int64)  # see kernel.count_zones
        self.excess_tallies = np.zeros(3, np.int64)  # pixels, nodata by mask band, masked
        self.cells: list[npt.NDArray[np.int64]] = []
        self.tallies = np.zeros((len(subset) + 1, 2 if self.wide else 0), dtype=np.int64)
        self.labelled = 0

    def _cell_type(self, grid: tuple[float, float, int] | None) -> type[np.integer[Any]]:
        """The narrowest dense count that no (zone, DN) cell can overflow in this task: a zone counts at most
        the pixels its bounds touch (parcels: uint16, half the rows of int32), and at most the raster's."""
        if grid is None:
            return np.int64
        width, height, pixels = grid
        if len(self.subset):
            b = self.subset.bounds
            touched = (np.ceil((b[:, 2] - b[:, 0]) / abs(width)) + 2) * (np.ceil((b[:, 3] - b[:, 1]) / abs(height)) + 2)
            if touched.max() <= _UINT16_MAX:
                return np.uint16
        return np.int32 if pixels <= _INT32_MAX else np.int64

    def bounds(self) -> tuple[float, float, float, float] | None:
        """The zones' extent in the raster's CRS (None: no zone meets the raster)."""
        if len(self.subset) == 0:
            return None
        b = self.subset.bounds
        return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())

    def labels(self, transform: Any, shape: tuple[int, int], grid: Any = None) -> WindowLabels:
        """A window's labels (cached per process, grouped by the raster's ``grid``)."""
        return process_cache().get(self.subset, transform, shape, self.all_touched, grid)

    def add(
        self,
        labels: WindowLabels,
        transform: Any,
        data: npt.NDArray[Any],
        inside: BoolArray | None,
        valid: npt.NDArray[Any] | None,
        quality: kernel.Quality | None,
        union: TaskCounter,
    ) -> None:
        """Count ``data`` for the zones of ``labels`` inside the AOI, and the pixels in any zone into ``union``.

        ``transform`` is the window's: when rows are lent, the zones that end above its bottom line are read
        out (the windows of a task come top to bottom; one that does not only costs a merge).
        """
        if self.wide:
            union.add(data, self._add_wide(labels, data, inside, valid, quality), valid, quality)
            return
        if not len(labels.zones):
            return
        if len(self.rows.counts) == 1 and self.lend:  # the first window: room for its zones and a quarter more
            self.rows = ZoneRows(len(self.subset), self.n_dn, self.rows.dtype, len(labels.zones) * 5 // 4)
        elif len(self.rows.counts) == 1:
            self.rows = ZoneRows.every_zone(len(self.subset), self.n_dn, self.rows.dtype)
        rowmap = self.rows.rowmap(labels.zones)
        layers = labels.stacked()
        seen = kernel.count_zones(
            layers, rowmap, data, self.rows.counts, self.rows.tallies, self.excess, self.lo, self.nodata_dn,
            inside, valid, quality,
        )  # fmt: skip
        self.labelled += seen.labelled
        self.excess_tallies += (seen.excess.pixels, seen.excess.nodata, seen.excess.masked)
        if self.lend:
            self._read_out(labels.zones[self._done(labels.zones, transform, data.shape[0])])
        else:
            self.met[labels.zones] = True

    def finish(self, union: TaskCounter) -> None:
        """After the last window: read out the zones still open and hand ``union`` the pixels in any zone (for
        8-bit data, the zones' sums by DN less the excess of overlapping zones)."""
        if self.wide:
            return
        self._read_out(self.rows.open if self.lend else np.flatnonzero(self.met))
        if not self.lend:
            self.rows.give_back()
        totals, (pixels, nodata, masked) = self.readout.totals, self.excess_tallies.tolist()
        tallies = kernel.Tallies(self.labelled - pixels, int(totals[-2]) - nodata, int(totals[-1]) - masked)
        union.add_union(totals[:-2] - self.excess, tallies)

    def _done(self, zones: npt.NDArray[np.int64], transform: Any, height: int) -> BoolArray:
        """Which of ``zones`` lie wholly above the window's bottom line (in its pixel rows): no later window
        (further down) can hold a pixel of theirs, by centre or by touch."""
        b = self.subset.bounds[zones]
        rows = (b[:, [1, 3]] - transform.f) / transform.e
        done: BoolArray = rows.max(axis=1) <= height - 1e-6
        return done

    def _read_out(self, zones: npt.NDArray[np.int64]) -> None:
        """``zones`` (subset positions) are done: their rows are read out and go back."""
        if len(zones):
            self.readout.take(self.rows.counts, self.rows.tallies, self.rows.rows_of(zones), self.subset.indices[zones])
            self.rows.release(zones)

    def _add_wide(
        self,
        labels: WindowLabels,
        data: npt.NDArray[Any],
        inside: BoolArray | None,
        valid: npt.NDArray[Any] | None,
        quality: kernel.Quality | None,
    ) -> BoolArray:
        """16-bit data: each layer's sparse cells (:meth:`_add_sparse`); returns the pixels in any zone."""
        global_ids = labels.positions()
        union: BoolArray = np.zeros(data.shape, dtype=bool)
        for layer, pixels in zip(labels.layers, labels.pixels, strict=True):
            local = layer if inside is None else np.where(inside, layer, 0).astype(np.int32)
            self._add_sparse(global_ids[local], data, valid, quality)
            in_zone = local != 0
            self.labelled += pixels if inside is None else int(np.count_nonzero(in_zone))
            np.logical_or(union, in_zone, out=union)
        return union

    def _add_sparse(
        self,
        labels: npt.NDArray[np.int32],
        data: npt.NDArray[Any],
        valid: npt.NDArray[Any] | None,
        quality: kernel.Quality | None,
    ) -> None:
        """(zone, DN) cells of one layer as sorted unique keys with counts (the kernel's rule, in numpy)."""
        good = np.ones(data.shape, dtype=bool) if valid is None else valid.astype(bool)
        dropped = np.zeros(data.shape, dtype=bool) if quality is None else quality.dropped[quality.classes]
        nodata_dn = self.lo - 1 if self.nodata_dn is None else self.nodata_dn
        masked = good & dropped & (data != nodata_dn)
        kept = good & ~masked & (labels != 0)
        keys = labels[kept].astype(np.int64) * self.n_dn + (data[kept].astype(np.int64) - self.lo)
        unique, counts = np.unique(keys, return_counts=True)
        self.cells.append(np.stack([unique, counts.astype(np.int64)]))
        size = len(self.tallies)
        self.tallies[:, 0] += np.bincount(labels[~good].ravel(), minlength=size)
        self.tallies[:, 1] += np.bincount(labels[masked].ravel(), minlength=size)

    def table(self) -> ZoneTable:
        """The task's per-zone table, after checking that it accounts for every labelled pixel."""
        if not self.wide:
            table = self.readout.table()
        else:
            rows, dns, c = self._sparse_cells()
            table = ZoneTable.from_cells(
                self.subset.indices, rows, dns, c, self.tallies, self.slots, self.values, self.bins.count
            )
        # every labelled pixel is in a cell (in or out of range), or is nodata or masked
        counted = int(table.cell_count.sum() + table.nodata.sum() + table.masked.sum())
        if counted != self.labelled:
            raise AccountingError(f"zones counted {counted} pixels but {self.labelled} were labelled")
        return table

    def _sparse_cells(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """The sparse cells summed over windows and layers: zone row (0-based), DN column, count."""
        if not self.cells:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty
        stacked = np.concatenate(self.cells, axis=1)
        keys, inverse = np.unique(stacked[0], return_inverse=True)
        counts = np.bincount(inverse, weights=stacked[1]).astype(np.int64)
        return keys // self.n_dn - 1, keys % self.n_dn, counts
