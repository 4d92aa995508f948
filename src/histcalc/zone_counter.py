"""One task's counts per zone: label layers of each window x digital numbers, with the compiled kernel.

For every window the reader hands over, the zones' label layers (``histcalc.labels``, cached per grid so the
dates of one tile share them) are clipped to the AOI and counted against the window's DNs in one pass per
layer (``kernel.count_zonal``). The pixels in any zone form the union that the task's main histogram
counts. Labels are window-local ids (``labels.WindowLabels``), so a window's dense ``[its zones + 1, DNs]``
counts (int32 while no cell can overflow) hold only the zones it meets: for 100,000 parcels over a tile,
~15 MB a window instead of 102 MB a task. Each window's counts become a sparse
:class:`~histcalc.zonal.ZoneTable` in bin space at once, by a compiled pass (``kernel.zone_cells``); the
task's table adds them up (zones that span windows), after checking that every labelled pixel is accounted
for.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc import kernel
from histcalc.bins import BinSpec
from histcalc.errors import AccountingError
from histcalc.labels import WindowLabels, process_cache
from histcalc.zonal import ZoneTable, dn_slots_and_values, merge_compact
from histcalc.zones import ZoneSubset

BoolArray = npt.NDArray[np.bool_]
_DENSE_MAX_DNS = 4096
_INT32_MAX = np.iinfo(np.int32).max


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
    ) -> None:
        self.subset, self.lo, self.nodata_dn, self.all_touched = subset, lo, nodata_dn, all_touched
        self.n_dn = n_dn
        self.bins = bins
        self.slots, self.values = dn_slots_and_values(lo, n_dn, nodata_dn, scale, offset, bins)
        # 8-bit data (256 columns) is counted per window into dense [window's zones + 1, DN] counts, made a
        # sparse table at once; 16-bit data (65,536 columns, 0.5 MB a zone) keeps sparse (zone, DN) cells
        # instead, counted in numpy.
        self.wide = n_dn > _DENSE_MAX_DNS
        self.tables: list[ZoneTable] = []
        self.cells: list[npt.NDArray[np.int64]] = []
        self.tallies = np.zeros((len(subset) + 1, 2 if self.wide else 0), dtype=np.int64)
        self.labelled = 0

    def bounds(self) -> tuple[float, float, float, float] | None:
        """The zones' extent in the raster's CRS (None: no zone meets the raster)."""
        if len(self.subset) == 0:
            return None
        b = self.subset.bounds
        return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())

    def labels(self, transform: Any, shape: tuple[int, int]) -> WindowLabels:
        return process_cache().get(self.subset, transform, shape, self.all_touched)

    def add(
        self,
        labels: WindowLabels,
        data: npt.NDArray[Any],
        inside: BoolArray | None,
        valid: npt.NDArray[Any] | None,
        quality: kernel.Quality | None,
    ) -> BoolArray:
        """Count ``data`` for the zones of ``labels`` inside the AOI; returns the pixels in any zone."""
        # int32 halves the window's dense counts; int64 only where a cell could pass 2**31 - 1
        wide_cells = data.size * len(labels) > _INT32_MAX
        counts = np.zeros((len(labels.zones) + 1, 0 if self.wide else self.n_dn), np.int64 if wide_cells else np.int32)
        tallies = np.zeros((len(labels.zones) + 1, 2), dtype=np.int64)
        global_ids = labels.positions() if self.wide else None
        union: BoolArray | None = None
        for layer, pixels in zip(labels.layers, labels.pixels, strict=True):
            local = layer if inside is None else np.where(inside, layer, 0).astype(np.int32)
            if global_ids is not None:
                self._add_sparse(global_ids[local], data, valid, quality)
            else:
                tallies += kernel.count_zonal(local, data, counts, self.lo, self.nodata_dn, valid, quality)
            in_zone = local != 0
            self.labelled += pixels if inside is None else int(np.count_nonzero(in_zone))
            union = in_zone if union is None else np.logical_or(union, in_zone, out=union)
        if union is None:
            union = np.zeros(data.shape, dtype=bool)
        if not self.wide and len(labels.zones):
            zone_index = self.subset.indices[labels.zones]
            self.tables.append(
                ZoneTable.from_dn_counts(zone_index, counts, tallies, self.slots, self.values, self.bins.count)
            )
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
            table = merge_compact(self.tables)  # zones that span windows have a row in each: added up
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
