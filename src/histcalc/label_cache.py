"""Zone labels kept per process: every date of a tile grid reuses its windows' labels.

The labels of a window are computed once (:func:`histcalc.labels.window_labels`) and kept within a byte
budget; other grids' windows are dropped first (:class:`~histcalc.budget_cache.BudgetCache`). Windows of
fewer than 65,535 zones have uint16 layers (half the memory, and half the bytes the counting kernel reads per
pixel): :mod:`histcalc.labels` makes them so.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import Any

from histcalc.budget_cache import BudgetCache
from histcalc.labels import WindowLabels, window_labels
from histcalc.zones import ZoneSubset


class LabelCache(BudgetCache[WindowLabels]):
    """Label layers per (subset, grid window, rule), within ``max_bytes`` (see :class:`BudgetCache`).

    The files of one tile grid (all dates of a Sentinel-2 tile) share their subset (``Zones.for_raster`` is
    memoised) and their window transforms, so after the first date every window's labels are a cache hit.
    Returned arrays are read-only: they are shared between files.
    """

    def __init__(self, max_bytes: int = 512 * 1024 * 1024) -> None:
        super().__init__(max_bytes)

    def get(
        self,
        subset: ZoneSubset,
        window_transform: Any,
        shape: tuple[int, int],
        all_touched: bool = False,
        grid: Hashable = None,
    ) -> WindowLabels:
        """``grid``: the raster's grid (transform and size): beyond the budget other grids' windows go first."""

        def make() -> WindowLabels:
            labels = window_labels(subset, window_transform, shape, all_touched)
            for layer in [*labels.layers, *([] if labels.block is None else [labels.block])]:
                layer.setflags(write=False)
            return labels

        key = (subset.key, tuple(window_transform)[:6], tuple(shape), all_touched)
        return self._get(key, make, (subset.key, all_touched, grid))


@functools.cache
def process_cache() -> LabelCache:
    """One label cache per process (per Spark python worker or pool worker), created on first use."""
    return LabelCache()
