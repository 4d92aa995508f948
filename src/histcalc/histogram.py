"""The Histogram value: counts on shared edges, tallies, exact moments; merge by addition.

Pure numpy, no I/O. Every task produces one; the engines add them up.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from histcalc.bins import BinSpec, FloatArray, IntArray, bin_index, count_slots
from histcalc.errors import IncompatibleHistograms, MissingDependency

DEFAULT_PERCENTILES: tuple[float, ...] = (2.0, 25.0, 50.0, 75.0, 98.0)
BINS_PER_DN = "per_digital_number"
"""``bins_kind`` of one bin per digital number: each bin holds one possible value, its centre."""
BINS_INTERVALS = "intervals"
"""``bins_kind`` of bins that hold any value between their edges."""
PERCENTILES_EXACT = "inverted_cdf"
"""Percentiles of per-DN bins: exact, numpy's ``method="inverted_cdf"`` over the values."""
PERCENTILES_INTERPOLATED = "linear_within_bin"
"""Percentiles of interval bins: interpolated linearly inside the bin that holds the rank."""
_SIGNIFICANT = 12


@dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations, merged with Chan's parallel formula."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def of(cls, values: FloatArray, weights: IntArray | None = None) -> Moments:
        n = int(values.size if weights is None else weights.sum())
        if n == 0:
            return cls()
        mean = float(np.average(values, weights=weights))
        m2 = float(np.sum((values - mean) ** 2 * (1 if weights is None else weights)))
        return cls(n, mean, m2)

    def __add__(self, other: Moments) -> Moments:
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * other.n / n
        return Moments(n, mean, self.m2 + other.m2 + delta * delta * self.n * other.n / n)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.n) if self.n else math.nan


@dataclass(frozen=True)
class Histogram:
    """Counts of valid values per bin, plus what was not counted and why.

    ``below``/``above``: valid values outside the edges; ``nodata``: nodata, NaN or masked-band
    pixels; ``masked``: pixels removed by a quality mask; ``duplicate``: pixels another file of the same
    acquisition counts (``--overlaps once``). ``moments``, ``vmin`` and ``vmax`` describe
    the counted (in-range) values exactly.
    """

    bins: BinSpec
    counts: IntArray
    below: int = 0
    above: int = 0
    nodata: int = 0
    masked: int = 0
    moments: Moments = field(default_factory=Moments)
    vmin: float = math.inf
    vmax: float = -math.inf
    duplicate: int = 0

    @classmethod
    def zeros(cls, bins: BinSpec) -> Histogram:
        """A histogram on ``bins`` with nothing counted (the start of a sum)."""
        return cls(bins, np.zeros(bins.count, dtype=np.int64))

    @classmethod
    def of_values(cls, values: FloatArray, bins: BinSpec, nodata: int = 0, masked: int = 0) -> Histogram:
        """Histogram of valid (finite or infinite, never NaN) ``values``."""
        return cls.of_weighted(values.astype(np.float64, copy=False), None, bins, nodata, masked)

    @classmethod
    def of_weighted(
        cls, values: FloatArray, weights: IntArray | None, bins: BinSpec, nodata: int = 0, masked: int = 0
    ) -> Histogram:
        """Histogram of ``values`` each seen ``weights`` times (``None``: once)."""
        edges = bins.array
        idx = bin_index(values, edges)
        slots = count_slots(idx, len(edges) + 1, weights)
        inside = (idx > 0) & (idx < len(edges))
        if weights is not None:
            inside &= weights > 0
        kept = values[inside]
        kept_w = None if weights is None else weights[inside]
        return cls(
            bins,
            slots[1:-1].copy(),
            below=int(slots[0]),
            above=int(slots[-1]),
            nodata=nodata,
            masked=masked,
            moments=Moments.of(kept, kept_w),
            vmin=float(kept.min()) if kept.size else math.inf,
            vmax=float(kept.max()) if kept.size else -math.inf,
        )

    def __add__(self, other: Histogram) -> Histogram:
        if self.bins != other.bins and not _same_edges(self.bins, other.bins):
            raise IncompatibleHistograms("histograms with different bin edges cannot be added")
        return Histogram(
            self.bins,
            self.counts + other.counts,
            self.below + other.below,
            self.above + other.above,
            self.nodata + other.nodata,
            self.masked + other.masked,
            self.moments + other.moments,
            min(self.vmin, other.vmin),
            max(self.vmax, other.vmax),
            self.duplicate + other.duplicate,
        )

    def __repr__(self) -> str:
        edges = self.bins.array
        return (
            f"Histogram({self.bins.count} bins from {edges[0]:.6g} to {edges[-1]:.6g}, count={self.count:,}, "
            f"below={self.below:,}, above={self.above:,}, nodata={self.nodata:,}, masked={self.masked:,}, "
            f"duplicate={self.duplicate:,})"
        )

    @property
    def count(self) -> int:
        """Values counted in the bins."""
        return int(self.counts.sum())

    @property
    def empty(self) -> bool:
        """True when no value was counted in the bins (as ``DataFrame.empty``)."""
        return self.count == 0

    @property
    def bin_centres(self) -> FloatArray:
        """The middle of each bin (for one bin per digital number: the DN's physical value)."""
        edges = self.bins.array
        return clean_numbers((edges[:-1] + edges[1:]) / 2)

    @property
    def bins_kind(self) -> str:
        """:data:`BINS_PER_DN` or :data:`BINS_INTERVALS`."""
        return BINS_PER_DN if self.bins.discrete else BINS_INTERVALS

    @property
    def percentiles_method(self) -> str:
        """How :meth:`percentile` reads the counts: exact for one bin per DN, else interpolated."""
        return PERCENTILES_EXACT if self.bins.discrete else PERCENTILES_INTERPOLATED

    @property
    def pixels(self) -> int:
        """Every pixel accounted for: counted, out of range, nodata, masked and duplicate."""
        return self.count + self.below + self.above + self.nodata + self.masked + self.duplicate

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) of the counted values, read from the cumulative counts.

        Discrete bins give numpy's ``inverted_cdf`` result exactly; continuous bins interpolate
        linearly inside the bin that holds the rank.
        """
        n = self.count
        if n == 0:
            return math.nan
        if q <= 0:
            return self.vmin
        if q >= 100:
            return self.vmax
        cum = np.cumsum(self.counts)
        edges = self.bins.array
        if self.bins.discrete:
            i = int(np.searchsorted(cum, math.ceil(q / 100 * n - 1e-9), side="left"))
            return float((edges[i] + edges[i + 1]) / 2)
        rank = q / 100 * n
        i = int(np.searchsorted(cum, rank, side="left"))
        before = cum[i - 1] if i else 0
        frac = (rank - before) / self.counts[i]
        value = edges[i] + frac * (edges[i + 1] - edges[i])
        return float(min(max(value, self.vmin), self.vmax))

    def stats(self, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> dict[str, Any]:
        empty = self.count == 0
        return {
            "count": self.count,
            "valid_fraction": (self.count / self.pixels) if self.pixels else math.nan,
            "mean": math.nan if empty else self.moments.mean,
            "std": self.moments.std,
            "min": math.nan if empty else self.vmin,
            "max": math.nan if empty else self.vmax,
            "percentiles": {_pname(q): self.percentile(q) for q in percentiles},
            "percentiles_method": self.percentiles_method,
        }

    def to_dict(self, percentiles: Sequence[float] = DEFAULT_PERCENTILES) -> dict[str, Any]:
        """The documented JSON form: edges (rounded, see :func:`clean_numbers`), counts, tallies, stats."""
        return {
            "edges": clean_numbers(self.bins.array).tolist(),
            "bins_kind": self.bins_kind,
            "counts": self.counts.tolist(),
            "below": self.below,
            "above": self.above,
            "nodata": self.nodata,
            "masked": self.masked,
            "duplicate": self.duplicate,
            "pixels": self.pixels,
            "stats": _clean_stats(self.stats(percentiles), self.bins.array),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        """The inverse of :meth:`to_dict` (also reads results of histcalc 0.1's ``moments`` form)."""
        counts = np.asarray(data["counts"], dtype=np.int64)
        stats = data.get("stats") or {}
        discrete = data.get("bins_kind") == BINS_PER_DN or bool(data.get("discrete", False))
        return cls(
            BinSpec(tuple(float(e) for e in data["edges"]), discrete),
            counts,
            int(data.get("below", 0)),
            int(data.get("above", 0)),
            int(data.get("nodata", 0)),
            int(data.get("masked", 0)),
            _moments_of(data, stats, int(counts.sum())),
            _number(stats.get("min", data.get("min")), math.inf),
            _number(stats.get("max", data.get("max")), -math.inf),
            int(data.get("duplicate", 0)),
        )

    def to_pandas(self) -> Any:
        """A tidy DataFrame, one row per bin: bin_low, bin_high, bin_centre, count (tallies in ``attrs``)."""
        pd = _optional_import("pandas", "to_pandas()")
        edges = clean_numbers(self.bins.array)
        frame = pd.DataFrame(
            {"bin_low": edges[:-1], "bin_high": edges[1:], "bin_centre": self.bin_centres, "count": self.counts}
        )
        frame.attrs.update(self._tallies())
        return frame

    def to_xarray(self) -> Any:
        """An ``xarray.DataArray`` of counts along dimension ``bin`` (coordinate: the bin centres)."""
        xr = _optional_import("xarray", "to_xarray()")
        edges = clean_numbers(self.bins.array)
        return xr.DataArray(
            self.counts,
            dims=("bin",),
            coords={"bin": self.bin_centres, "bin_low": ("bin", edges[:-1]), "bin_high": ("bin", edges[1:])},
            name="count",
            attrs={**self._tallies(), "bins_kind": self.bins_kind},
        )

    def _tallies(self) -> dict[str, int]:
        return {
            "below": self.below,
            "above": self.above,
            "nodata": self.nodata,
            "masked": self.masked,
            "duplicate": self.duplicate,
        }


def clean_numbers(values: FloatArray, like: FloatArray | None = None) -> FloatArray:
    """``values`` rounded 12 digits below the largest magnitude of ``like`` (default: of ``values``).

    Edges made as DN * scale + offset or by ``linspace`` carry float noise in the last bits
    (0.020000000000000004 -> 0.02); rounding relative to the largest edge also turns a noisy
    2.7e-17 into 0. Values so close that rounding would merge them are returned unchanged.
    """
    decimals = _decimals(values if like is None else like)
    if decimals is None:
        return values.copy()
    rounded = np.round(values, decimals) + 0.0  # + 0.0 turns -0.0 into 0.0
    if values.size > 1 and not np.all(np.diff(rounded) > 0) and np.all(np.diff(values) > 0):
        return values.copy()
    return np.asarray(rounded, dtype=np.float64)


def _decimals(reference: FloatArray) -> int | None:
    finite = reference[np.isfinite(reference)]
    largest = float(np.abs(finite).max()) if finite.size else 0.0
    return None if largest == 0.0 else _SIGNIFICANT - 1 - math.floor(math.log10(largest))


def _clean_stats(stats: dict[str, Any], edges: FloatArray) -> dict[str, Any]:
    """Values on the scale of the edges (min, max, percentiles) rounded as the edges are."""

    def clean(value: float) -> float:
        return value if not math.isfinite(value) else float(clean_numbers(np.array([value]), edges)[0])

    pct = {k: clean(v) for k, v in stats["percentiles"].items()}
    return {**stats, "min": clean(stats["min"]), "max": clean(stats["max"]), "percentiles": pct}


def _same_edges(a: BinSpec, b: BinSpec) -> bool:
    """Equal up to the rounding of :func:`clean_numbers` (a result read back from JSON)."""
    if a.count != b.count or a.discrete != b.discrete:
        return False
    x, y = a.array, b.array
    tolerance = 10.0 ** (1 - _SIGNIFICANT) * float(max(np.abs(x).max(), np.abs(y).max()))
    return bool(np.all(np.abs(x - y) <= tolerance))


def _moments_of(data: dict[str, Any], stats: dict[str, Any], n: int) -> Moments:
    legacy = data.get("moments")
    if legacy:
        return Moments(int(legacy.get("n", 0)), float(legacy.get("mean", 0.0)), float(legacy.get("m2", 0.0)))
    if n == 0 or stats.get("mean") is None:
        return Moments()
    std = _number(stats.get("std"), 0.0)
    return Moments(n, float(stats["mean"]), std * std * n)


def _number(value: Any, default: float) -> float:
    return default if value is None else float(value)


def _optional_import(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(f"{what} needs {module}: pip install {module}") from exc


def merge_all(histograms: Iterable[Histogram], bins: BinSpec) -> Histogram:
    total = Histogram.zeros(bins)
    for h in histograms:
        total = total + h
    return total


def _pname(q: float) -> str:
    return f"p{q:g}"
