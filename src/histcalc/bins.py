"""Bin edges shared by every task, and the rule that maps values onto them.

The convention is numpy's: bins are half-open ``[e_i, e_i+1)`` except the last, which is
closed, so a result equals ``np.histogram(values, bins=edges)`` over all valid values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from histcalc.errors import InvalidBins

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class BinSpec:
    """Monotonic bin edges; ``discrete`` when each bin holds exactly one possible value (its centre)."""

    edges: tuple[float, ...]
    discrete: bool = False

    def __post_init__(self) -> None:
        if len(self.edges) < 2:
            raise InvalidBins("a histogram needs at least one bin (two edges)")
        arr = np.asarray(self.edges, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise InvalidBins("bin edges must be finite numbers")
        if not np.all(np.diff(arr) > 0):
            raise InvalidBins("bin edges must increase strictly")

    @classmethod
    def uniform(cls, bins: int, lo: float, hi: float) -> BinSpec:
        """``bins`` equal bins from ``lo`` to ``hi`` (numpy's ``linspace`` edges)."""
        if bins <= 0:
            raise InvalidBins(f"the number of bins must be a positive integer, got {bins}")
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
            raise InvalidBins(f"the bin range needs LO < HI (finite numbers), got {lo:g},{hi:g}")
        return cls(tuple(np.linspace(lo, hi, bins + 1).tolist()))

    @classmethod
    def per_digital_number(cls, dtype: str, scale: float = 1.0, offset: float = 0.0) -> BinSpec:
        """One bin per digital number of an integer ``dtype``, centred on its physical value."""
        lo, hi = dn_limits(dtype)
        if scale <= 0:
            raise InvalidBins(f"one bin per digital number needs a positive scale, got {scale}")
        dns = np.arange(lo, hi + 2, dtype=np.float64) - 0.5
        return cls(tuple((dns * scale + offset).tolist()), discrete=True)

    @property
    def array(self) -> FloatArray:
        return np.asarray(self.edges, dtype=np.float64)

    @property
    def count(self) -> int:
        return len(self.edges) - 1


def dn_limits(dtype: str) -> tuple[int, int]:
    """Smallest and largest digital number of an integer dtype we count by bincount."""
    kind = np.dtype(dtype)
    if kind.kind not in "ui" or kind.itemsize > 2:
        raise InvalidBins(f"one bin per digital number needs 8- or 16-bit integer data, not {dtype}")
    info = np.iinfo(kind)
    return int(info.min), int(info.max)


def bin_index(values: FloatArray, edges: FloatArray) -> IntArray:
    """Bin of each value with numpy's convention: 0 below, 1..N inside, N+1 above the edges."""
    idx = np.searchsorted(edges, values, side="right").astype(np.int64)
    idx[values == edges[-1]] = len(edges) - 1  # the last bin is closed
    return idx


def count_slots(idx: IntArray, nslots: int, weights: IntArray | None = None) -> IntArray:
    """Counts per slot index (as made by :func:`bin_index`), optionally weighted, exactly in int64."""
    if weights is None:
        return np.bincount(idx, minlength=nslots).astype(np.int64)
    slots = np.zeros(nslots, dtype=np.int64)
    np.add.at(slots, idx, weights)  # integer adds: exact, unlike bincount's float weights
    return slots
