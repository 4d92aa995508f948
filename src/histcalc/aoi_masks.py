"""The AOI's pixels in a read window, kept per process: every date of a tile grid reuses them.

The AOI in a raster's CRS is the same for every file of that CRS, and the files of one tile grid (all dates
of a Sentinel-2 tile) share their window transforms, so the AOI is rasterised once per window, not once per
file. A mask whose pixels form one rectangle (a box drawn in the raster's CRS, or an AOI that covers the
window) is kept as that rectangle: the caller reads just those pixels and counts them without a mask, which
is exact (the same pixels) and spares the masked kernel.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from histcalc.aoi import AOI
from histcalc.budget_cache import BudgetCache

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class WindowInside:
    """Which pixels of a window the AOI holds: a rectangle (rows and columns from/to, window pixels), or
    a mask when they form none. No pixel: an empty rectangle."""

    rows: tuple[int, int]
    cols: tuple[int, int]
    mask: BoolArray | None = None

    @property
    def empty(self) -> bool:
        return self.mask is None and (self.rows[0] >= self.rows[1] or self.cols[0] >= self.cols[1])

    @property
    def nbytes(self) -> int:
        return 0 if self.mask is None else int(self.mask.nbytes)

    def as_mask(self, shape: tuple[int, int]) -> BoolArray | None:
        """The pixels as a mask over a window of ``shape`` (None: every pixel)."""
        if self.mask is not None:
            return self.mask
        if self.rows == (0, shape[0]) and self.cols == (0, shape[1]):
            return None
        mask = np.zeros(shape, bool)
        mask[self.rows[0] : self.rows[1], self.cols[0] : self.cols[1]] = True
        return mask

    @classmethod
    def of(cls, mask: BoolArray) -> WindowInside:
        """The rectangle ``mask`` is True on when it is one (also none: empty), else the mask itself."""
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if not len(rows):
            return cls((0, 0), (0, 0))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        if np.count_nonzero(mask) == (r1 - r0) * (c1 - c0):
            return cls((r0, r1), (c0, c1))
        mask.setflags(write=False)  # shared between files
        return cls((r0, r1), (c0, c1), mask)


class AoiMaskCache(BudgetCache[WindowInside]):
    """:class:`WindowInside` per (AOI, CRS, window transform and shape, rule), grouped by raster grid: beyond
    ``max_bytes`` other grids' masks go first (rectangles cost nothing)."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        super().__init__(max_bytes)

    def get(
        self,
        aoi: AOI,
        crs: Any,
        geometry: dict[str, Any],
        transform: Any,
        shape: tuple[int, int],
        all_touched: bool = False,
        grid: Hashable = None,
    ) -> WindowInside:
        """``geometry``: ``aoi`` in ``crs`` (what :func:`histcalc.footprint.aoi_in_raster` gives); ``grid``: the
        raster's grid (transform and size), whose windows the dates of a tile share."""

        def make() -> WindowInside:
            from rasterio.features import geometry_mask

            mask: BoolArray = geometry_mask(
                [geometry], out_shape=shape, transform=transform, invert=True, all_touched=all_touched
            )
            return WindowInside.of(mask)

        crs_key = crs.to_wkt() if hasattr(crs, "to_wkt") else str(crs)
        key = (aoi, crs_key, tuple(transform)[:6], shape, all_touched)
        return self._get(key, make, (aoi, crs_key, all_touched, grid))


@functools.cache
def process_cache() -> AoiMaskCache:
    """One cache per process (Spark python worker, pool worker or the local engine's), made on first use."""
    return AoiMaskCache()
