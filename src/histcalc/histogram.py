"""The Histogram value: counts on shared edges, tallies, exact moments; merge by addition.

Pure numpy, no I/O. Every task produces one; the engines add them up.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from histcalc.bins import BinSpec, FloatArray, IntArray, bin_index, count_slots
from histcalc.errors import IncompatibleHistograms

DEFAULT_PERCENTILES: tuple[float, ...] = (2.0, 25.0, 50.0, 75.0, 98.0)


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
    pixels; ``masked``: pixels removed by a quality mask. ``moments``, ``vmin`` and ``vmax`` describe
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

    @classmethod
    def empty(cls, bins: BinSpec) -> Histogram:
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
        if self.bins != other.bins:
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
        )

    @property
    def count(self) -> int:
        """Values counted in the bins."""
        return int(self.counts.sum())

    @property
    def pixels(self) -> int:
        """Every pixel accounted for: counted, out of range, nodata and masked."""
        return self.count + self.below + self.above + self.nodata + self.masked

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
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": list(self.bins.edges),
            "discrete": self.bins.discrete,
            "counts": self.counts.tolist(),
            "below": self.below,
            "above": self.above,
            "nodata": self.nodata,
            "masked": self.masked,
            "moments": {"n": self.moments.n, "mean": self.moments.mean, "m2": self.moments.m2},
            "min": None if self.count == 0 else self.vmin,
            "max": None if self.count == 0 else self.vmax,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        m = data.get("moments") or {}
        return cls(
            BinSpec(tuple(float(e) for e in data["edges"]), bool(data.get("discrete", False))),
            np.asarray(data["counts"], dtype=np.int64),
            int(data.get("below", 0)),
            int(data.get("above", 0)),
            int(data.get("nodata", 0)),
            int(data.get("masked", 0)),
            Moments(int(m.get("n", 0)), float(m.get("mean", 0.0)), float(m.get("m2", 0.0))),
            math.inf if data.get("min") is None else float(data["min"]),
            -math.inf if data.get("max") is None else float(data["max"]),
        )


def merge_all(histograms: Iterable[Histogram], bins: BinSpec) -> Histogram:
    total = Histogram.empty(bins)
    for h in histograms:
        total = total + h
    return total


def _pname(q: float) -> str:
    return f"p{q:g}"
