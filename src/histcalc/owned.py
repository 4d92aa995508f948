"""Which pixels of a window a task owns under ``--overlaps once``: pixel centres in its region (from
:mod:`histcalc.overlaps`), and, for the halves of a split datastrip (copies of one tile on one grid), each
location once: the first half in order with data there counts it; where no half has data the first half
tallies it as nodata; every other half tallies it as duplicate.

No file is opened here: :mod:`histcalc.raster` opens the copies and hands them over.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from histcalc.errors import RasterReadError

if TYPE_CHECKING:
    from histcalc.raster import ReadSpec

BoolArray = npt.NDArray[np.bool_]


@contextmanager
def ownership(
    src: Any, spec: ReadSpec, open_href: Callable[[str], AbstractContextManager[Any]]
) -> Iterator[Owned | None]:
    """The task's ownership test under ``--overlaps once`` (None: it counts every pixel); ``open_href``
    opens the other halves of a split datastrip (raster.py's ``opened``)."""
    if spec.owned is None and not spec.cover:
        yield None
        return
    with ExitStack() as stack:
        halves = [stack.enter_context(open_href(href)) for href in spec.cover]
        for half, href in zip(halves, spec.cover, strict=True):
            if half.transform != src.transform or half.shape != src.shape:
                raise RasterReadError(f"{href}: a copy of the same tile and acquisition on another grid")
        yield Owned(spec.owned, [src, *halves] if halves else [], spec.cover_before, spec.band, spec.nodata)


def split_duplicates(own: BoolArray, inside: BoolArray | None, layers: Sequence[Any]) -> tuple[BoolArray, int]:
    """The pixels a task still counts, and how many another file counts (in the AOI ``inside``, and in a
    zone of ``layers`` for zonal jobs): those leave every other tally and become ``duplicate``."""
    seen = np.ones(own.shape, dtype=bool) if inside is None else inside
    if len(layers):
        seen = seen & np.logical_or.reduce([layer != 0 for layer in layers])
    duplicate = int(np.count_nonzero(seen & ~own))
    return (own if inside is None else inside & own), duplicate


class Owned:
    """One task's ownership test, window by window."""

    def __init__(
        self,
        region_wkb: bytes | None,
        halves: Sequence[Any] = (),
        before: int = 0,
        band: int = 1,
        nodata: float | None = None,
    ) -> None:
        """``halves``: this file, then the other halves in order (``before`` of them come before it)."""
        import shapely
        from shapely import prepared

        self.region = None if region_wkb is None else shapely.from_wkb(region_wkb)
        self.prepared = None if self.region is None else prepared.prep(self.region)
        self.halves, self.before, self.band, self.nodata = halves, before, band, nodata

    def mask(self, window: Any, transform: Any, shape: tuple[int, int]) -> BoolArray | None:
        """True where this task counts the pixel (or tallies it as nodata); None: every pixel of the window."""
        own = self._in_region(transform, shape)
        if len(self.halves) > 1:
            mine = self._has_data(self.halves[0], window)
            others = [self._has_data(h, window) for h in self.halves[1:]]
            earlier = np.logical_or.reduce(others[: self.before], initial=False) & np.ones(shape, dtype=bool)
            later = np.logical_or.reduce(others[self.before :], initial=False)
            first = self.before == 0
            keep = (mine & ~earlier) | (~mine & ~later) if first else mine & ~earlier
            own = keep if own is None else own & keep
        return own

    def _in_region(self, transform: Any, shape: tuple[int, int]) -> BoolArray | None:
        if self.region is None or self.prepared is None:
            return None
        import shapely
        from rasterio.features import geometry_mask

        height, width = shape
        x0, y0 = transform * (0, 0)
        x1, y1 = transform * (width, height)
        box = shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        if self.prepared.contains(box):
            return None
        if not self.prepared.intersects(box):
            return np.zeros(shape, dtype=bool)
        inside: BoolArray = geometry_mask([self.region], out_shape=shape, transform=transform, invert=True)
        return inside

    def _has_data(self, cover: Any, window: Any) -> BoolArray:
        """Pixels of ``cover`` (a copy on the same grid) that hold data: not nodata, NaN or masked."""
        from rasterio.enums import MaskFlags

        data = cover.read(self.band, window=window)
        nodata = cover.nodata if self.nodata is None else self.nodata
        has: BoolArray = np.ones(data.shape, dtype=bool) if nodata is None else data != nodata
        if data.dtype.kind == "f":
            has &= ~np.isnan(data)
        flags = cover.mask_flag_enums[self.band - 1]
        if MaskFlags.per_dataset in flags or MaskFlags.alpha in flags:
            has &= cover.read_masks(self.band, window=window) != 0
        return has
