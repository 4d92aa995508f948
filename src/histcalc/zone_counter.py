"""One task's counts per zone: label layers of each window x digital numbers, with the compiled kernel.

For every window the reader hands over, the zones' label layers (``histcalc.labels``, cached per grid so the
dates of one tile share them) are clipped to the AOI and counted against the window's DNs in one pass per
layer (``kernel.count_zonal``). The pixels in any zone form the union that the task's main histogram
counts. At the end the dense ``[zones + 1, DNs]`` counts become a sparse :class:`~histcalc.zonal.ZoneTable`
in bin space, after checking that every labelled pixel is accounted for.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc import kernel
from histcalc.bins import BinSpec
from histcalc.errors import AccountingError
from histcalc.labels import process_cache
from histcalc.zonal import ZoneTable, dn_slots_and_values
from histcalc.zones import ZoneSubset

BoolArray = npt.NDArray[np.bool_]


class ZoneCounter:
    """Accumulates (zone, DN) counts and per-zone nodata/masked tallies over the windows of one task."""

    def __init__(self, subset: ZoneSubset, lo: int, n_dn: int, nodata_dn: int | None, all_touched: bool) -> None:
        self.subset, self.lo, self.nodata_dn, self.all_touched = subset, lo, nodata_dn, all_touched
        self.counts = np.zeros((len(subset) + 1, n_dn), dtype=np.int64)
        self.tallies = np.zeros((len(subset) + 1, 2), dtype=np.int64)
        self.labelled = 0

    def bounds(self) -> tuple[float, float, float, float] | None:
        """The zones' extent in the raster's CRS (None: no zone meets the raster)."""
        if len(self.subset) == 0:
            return None
        b = self.subset.bounds
        return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())

    def layers(self, transform: Any, shape: tuple[int, int]) -> list[npt.NDArray[np.int32]]:
        layers: list[npt.NDArray[np.int32]] = process_cache().get(self.subset, transform, shape, self.all_touched)
        return layers

    def add(
        self,
        layers: list[npt.NDArray[np.int32]],
        data: npt.NDArray[Any],
        inside: BoolArray | None,
        valid: npt.NDArray[Any] | None,
        quality: kernel.Quality | None,
    ) -> BoolArray:
        """Count ``data`` for the zones of ``layers`` inside the AOI; returns the pixels in any zone."""
        union = np.zeros(data.shape, dtype=bool)
        for layer in layers:
            labels = layer if inside is None else np.where(inside, layer, 0).astype(np.int32)
            self.tallies += kernel.count_zonal(labels, data, self.counts, self.lo, self.nodata_dn, valid, quality)
            in_zone = labels != 0
            self.labelled += int(np.count_nonzero(in_zone))
            union |= in_zone
        return union

    def table(self, bins: BinSpec, scale: float, offset: float) -> ZoneTable:
        """The task's per-zone table, after checking that it accounts for every labelled pixel."""
        counted = int(self.counts[1:].sum() + self.tallies[1:].sum())
        if counted != self.labelled:
            raise AccountingError(f"zones counted {counted} pixels but {self.labelled} were labelled")
        slots, values = dn_slots_and_values(self.lo, self.counts.shape[1], self.nodata_dn, scale, offset, bins)
        return ZoneTable.from_dn_counts(self.subset.indices, self.counts, self.tallies, slots, values, bins.count)
