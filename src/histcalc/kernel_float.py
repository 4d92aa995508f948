"""The float count: raw values scaled to physical units, counted into bin edges with tallies and moments.

Same pixel classification as :mod:`histcalc.kernel` (AOI, mask band, nodata/NaN, quality classes); the
compiled kernel (``_native.count_float``, or ``_jit``'s) and its numpy reference ``count_float_numpy`` share
one contract.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from histcalc.kernel import (
    Array,
    BoolArray,
    Counts,
    Quality,
    ValidArray,
    check_shapes,
    flat_parts,
    used_flags,
)
from histcalc.kernel_loading import compiled_kernels, kernel_family


@dataclass(frozen=True)
class FloatTallies:
    """One float call: tallies, and the count, mean, sum of squared deviations (m2), min and max of the
    counted (in-range) values."""

    pixels: int = 0
    nodata: int = 0
    masked: int = 0
    below: int = 0
    above: int = 0
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    vmin: float = math.inf
    vmax: float = -math.inf

    def __add__(self, other: FloatTallies) -> FloatTallies:
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n if n else 0.0
        m2 = self.m2 + other.m2 + (delta * delta * self.n * other.n / n if n else 0.0)
        return FloatTallies(
            self.pixels + other.pixels,
            self.nodata + other.nodata,
            self.masked + other.masked,
            self.below + other.below,
            self.above + other.above,
            n,
            mean,
            m2,
            min(self.vmin, other.vmin),
            max(self.vmax, other.vmax),
        )


def count_float(
    data: Array,
    edges: npt.NDArray[np.float64],
    counts: Counts,
    scale: float = 1.0,
    offset: float = 0.0,
    nodata: float | None = None,
    inside: BoolArray | None = None,
    valid: ValidArray | None = None,
    quality: Quality | None = None,
) -> FloatTallies:
    """Add ``data * scale + offset`` to ``counts`` on ``edges`` (numpy's convention: last bin closed).

    Nodata is NaN or the raw value ``nodata``; NaN ``nodata`` means NaN only.
    """
    check_shapes(data, inside, valid, None if quality is None else quality.classes)
    if counts.size != edges.size - 1:
        raise ValueError(f"{edges.size} edges need {edges.size - 1} counts, got {counts.size}")
    nd = math.nan if nodata is None else float(nodata)
    scale, offset = float(scale), float(offset)
    if kernel_family() == "numpy":
        return count_float_numpy(data, edges, counts, scale, offset, nd, inside, valid, quality)
    _jit = compiled_kernels()  # waits for a warm-up thread that is loading them
    q = quality or Quality.keep_all()
    total, uniform, used = FloatTallies(), _uniform(edges), used_flags(inside, valid, quality)
    for d, i, v, c in flat_parts(data, inside, valid, q.classes):
        ints, floats = _jit.count_float(d, edges, counts, scale, offset, nd, uniform, i, v, c, q.dropped, *used)
        total += _float_tallies(ints, floats)
    return total


def _float_tallies(ints: Counts, floats: npt.NDArray[np.float64]) -> FloatTallies:
    """Tallies from the kernel's sums ``s1 = sum(v - shift)``, ``s2 = sum((v - shift)**2)``.

    The kernel shifts by the first counted value, so the variance does not cancel catastrophically
    when values sit far from zero (and is exactly 0 for constant values).
    """
    pixels, nodata, masked, below, above, n = (int(x) for x in ints)
    shift, s1, s2, vmin, vmax = (float(x) for x in floats)
    mean, m2 = (shift + s1 / n, max(0.0, s2 - s1 * s1 / n)) if n else (0.0, 0.0)
    return FloatTallies(pixels, nodata, masked, below, above, n, mean, m2, vmin, vmax)


def _uniform(edges: npt.NDArray[np.float64]) -> bool:
    """Equal-width edges (up to rounding), where a first guess of the bin is at most one off."""
    widths = np.diff(edges)
    return bool(np.all(np.abs(widths - widths.mean()) <= 1e-9 * abs(widths.mean())))


def count_float_numpy(
    data: Array,
    edges: npt.NDArray[np.float64],
    counts: Counts,
    scale: float,
    offset: float,
    nodata: float,
    inside: BoolArray | None,
    valid: ValidArray | None,
    quality: Quality | None,
) -> FloatTallies:
    """Reference for :func:`count_float`."""
    seen = np.ones(data.shape, dtype=bool) if inside is None else inside
    good = seen if valid is None else seen & valid.astype(bool)
    missing = np.isnan(data) if data.dtype.kind == "f" else np.zeros(data.shape, dtype=bool)
    if not math.isnan(nodata):
        missing |= data == nodata
    dropped = np.zeros(data.shape, dtype=bool) if quality is None else quality.dropped[quality.classes]
    masked = good & ~missing & dropped
    values = data[good & ~missing & ~dropped].astype(np.float64)
    if scale != 1.0 or offset != 0.0:
        values = values * scale + offset
    hist, _ = np.histogram(values, bins=edges)
    counts += hist
    below, above = int((values < edges[0]).sum()), int((values > edges[-1]).sum())
    kept = values[(values >= edges[0]) & (values <= edges[-1])]
    mean = float(kept.mean()) if kept.size else 0.0
    return FloatTallies(
        pixels=int(seen.sum()),
        nodata=int((seen & ~good).sum() + (good & missing).sum()),
        masked=int(masked.sum()),
        below=below,
        above=above,
        n=int(kept.size),
        mean=mean,
        m2=float(np.sum((kept - mean) ** 2)),
        vmin=float(kept.min()) if kept.size else math.inf,
        vmax=float(kept.max()) if kept.size else -math.inf,
    )
