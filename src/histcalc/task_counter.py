"""One task's counts: by digital number for 8- and 16-bit integers, by bin for floats, with its pixel account.

The reader (:mod:`histcalc.raster`) hands each decoded window to :meth:`TaskCounter.add`; the counting itself
is the kernels' (:mod:`histcalc.kernel`, :mod:`histcalc.kernel_float`); :meth:`TaskCounter.result` maps the
per-DN counts to the shared bins once per task and checks that every pixel read landed in one tally.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc import kernel, kernel_float, kernel_loading
from histcalc.bins import BinSpec, dn_limits
from histcalc.errors import AccountingError
from histcalc.histogram import Histogram, Moments


class TaskCounter:
    """Accumulates one task's counts: by digital number for integers, by bin for floats.

    Every pixel inside the AOI lands in exactly one tally, checked in :meth:`result`: nodata
    (nodata value, NaN, mask band) first, then masked (quality mask), then counted/below/above.
    The counting itself is :mod:`histcalc.kernel`'s (one pass, no copies of the block).
    """

    def __init__(self, bins: BinSpec, scale: float, offset: float, nodata: float | None, dtype: str) -> None:
        self.bins, self.scale, self.offset, self.nodata = bins, scale, offset, nodata
        self.integer = np.dtype(dtype).kind in "ui" and np.dtype(dtype).itemsize <= 2
        self.lo = dn_limits(dtype)[0] if self.integer else 0
        size = (dn_limits(dtype)[1] - self.lo + 1) if self.integer else 0
        # one row per interleaved sub-histogram (kernel.dn_ways), summed in result()
        self.dn_counts = np.zeros((kernel.dn_ways(np.dtype(dtype)), size), dtype=np.int64)
        self.nodata_dn = int(nodata) if nodata is not None and _is_dn(nodata, self.lo, size) else None
        self.edges = bins.array
        self.float_counts = np.zeros(bins.count, dtype=np.int64)
        self.floats = kernel_float.FloatTallies()
        self.nodata_pixels = 0
        self.masked_pixels = 0
        self.duplicate_pixels = 0
        self.pixels = 0
        self.compiled_blocks = 0  # blocks counted per DN compiled (C; numba once auto has loaded it)
        self.numpy_blocks = 0
        if not self.integer:  # the float count needs compiled kernels: without C, load numba's while a block is read
            kernel_loading.start_warm_up()

    def add(
        self,
        data: npt.NDArray[Any],
        inside: npt.NDArray[np.bool_] | None,
        valid: npt.NDArray[Any] | None,
        quality: kernel.Quality | None = None,
    ) -> None:
        """Count ``data`` ``inside`` the AOI: not ``valid`` (mask band) is nodata, dropped ``quality`` classes masked.

        ``valid`` is a mask band as read (0 = masked) or a boolean array.
        """
        if self.integer:
            compiled = kernel_loading.use_compiled()  # per block: without C, auto switches to numba once it is loaded
            t = kernel.count_dn(data, self.dn_counts, self.lo, self.nodata_dn, inside, valid, quality, compiled)
            self.compiled_blocks, self.numpy_blocks = (
                self.compiled_blocks + compiled,
                self.numpy_blocks + (not compiled),
            )
            self.pixels, self.nodata_pixels = self.pixels + t.pixels, self.nodata_pixels + t.nodata
            self.masked_pixels += t.masked
            return
        f = kernel_float.count_float(
            data, self.edges, self.float_counts, self.scale, self.offset, self.nodata, inside, valid, quality
        )
        self.floats += f
        self.pixels += f.pixels

    def add_union(self, dn_counts: npt.NDArray[np.int64], seen: kernel.Tallies) -> None:
        """Pixels counted elsewhere (the union of a task's zones): ``dn_counts`` by DN from ``lo``, and their
        account (the nodata DN still in its column, as :meth:`add` counts it)."""
        self.dn_counts[0] += dn_counts
        self.pixels, self.nodata_pixels = self.pixels + seen.pixels, self.nodata_pixels + seen.nodata
        self.masked_pixels += seen.masked

    def add_duplicate(self, pixels: int) -> None:
        """``pixels`` that another file of the same acquisition counts (``--overlaps once``)."""
        self.duplicate_pixels += pixels
        self.pixels += pixels

    def _physical(self, raw: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        values = raw.astype(np.float64)
        if self.scale != 1.0 or self.offset != 0.0:
            values = values * self.scale + self.offset
        return values

    def result(self) -> Histogram:
        """This task's histogram, after checking that it accounts for every pixel inside the AOI."""
        if self.integer:
            dn_counts, nodata = self.dn_counts.sum(axis=0), self.nodata_pixels
            if self.nodata_dn is not None:
                nodata += int(dn_counts[self.nodata_dn - self.lo])
                dn_counts[self.nodata_dn - self.lo] = 0
            seen = np.flatnonzero(dn_counts)
            h = Histogram.of_weighted(self._physical(seen + self.lo), dn_counts[seen], self.bins)
            h = replace(h, nodata=h.nodata + nodata, masked=h.masked + self.masked_pixels)
        else:
            f = self.floats
            moments = Moments(f.n, f.mean, f.m2) if f.n else Moments()
            h = Histogram(
                self.bins, self.float_counts.copy(), f.below, f.above, f.nodata, f.masked, moments, f.vmin, f.vmax
            )
        h = replace(h, duplicate=self.duplicate_pixels)
        if h.pixels != self.pixels:
            raise AccountingError(f"counted {h.pixels} pixels but read {self.pixels} inside the AOI")
        return h


def _is_dn(value: float, lo: int, size: int) -> bool:
    return float(value).is_integer() and lo <= value < lo + size
