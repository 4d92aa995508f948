"""Bins and the Histogram value: numpy's convention, exact merges, statistics from counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from histcalc.bins import BinSpec
from histcalc.errors import IncompatibleHistograms, InvalidBins
from histcalc.histogram import Histogram

EDGES = BinSpec.uniform(10, 0.0, 1.0)
values_st = st.lists(st.floats(-0.5, 1.5, allow_nan=False), max_size=200).map(np.array)


def test_uniform_edges_are_numpys() -> None:
    np.testing.assert_array_equal(EDGES.array, np.linspace(0, 1, 11))


def test_per_digital_number_bins_are_centred_on_physical_values() -> None:
    bins = BinSpec.per_digital_number("uint8", 0.004, -0.08)
    assert bins.count == 256 and bins.discrete
    centres = (bins.array[:-1] + bins.array[1:]) / 2
    np.testing.assert_allclose(centres, np.arange(256) * 0.004 - 0.08)


@pytest.mark.parametrize(
    ("bins", "lo", "hi"), [(0, 0, 1), (-3, 0, 1), (10, 1, 1), (10, 2, 1), (10, math.nan, 1), (10, 0, math.inf)]
)
def test_impossible_bins_are_refused(bins: int, lo: float, hi: float) -> None:
    with pytest.raises(InvalidBins):
        BinSpec.uniform(bins, lo, hi)


def test_float_dtype_has_no_per_dn_bins() -> None:
    with pytest.raises(InvalidBins, match="float32"):
        BinSpec.per_digital_number("float32")


def test_last_bin_is_closed_and_outside_values_are_tallied() -> None:
    h = Histogram.of_values(np.array([-0.1, 0.0, 0.05, 0.999, 1.0, 1.0001, np.inf, -np.inf]), EDGES)
    expected, _ = np.histogram([0.0, 0.05, 0.999, 1.0], bins=EDGES.array)
    np.testing.assert_array_equal(h.counts, expected)
    assert (h.below, h.above, h.count) == (2, 2, 4)
    assert (h.vmin, h.vmax) == (0.0, 1.0)


@given(values_st)
def test_counts_equal_numpy_histogram(values: np.ndarray) -> None:
    h = Histogram.of_values(values, EDGES)
    expected, _ = np.histogram(values, bins=EDGES.array)
    np.testing.assert_array_equal(h.counts, expected)
    assert h.below == int((values < 0).sum()) and h.above == int((values > 1).sum())


@given(values_st, values_st, values_st)
def test_merge_is_addition_of_parts(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    ha, hb, hc = (Histogram.of_values(v, EDGES) for v in (a, b, c))
    whole = Histogram.of_values(np.concatenate([a, b, c]), EDGES)
    for merged in ((ha + hb) + hc, ha + (hb + hc), hc + hb + ha):
        np.testing.assert_array_equal(merged.counts, whole.counts)
        assert (merged.below, merged.above, merged.vmin, merged.vmax) == (
            whole.below,
            whole.above,
            whole.vmin,
            whole.vmax,
        )
        assert merged.moments.n == whole.moments.n
        assert merged.moments.mean == pytest.approx(whole.moments.mean, abs=1e-9)
        assert merged.moments.m2 == pytest.approx(whole.moments.m2, rel=1e-9, abs=1e-9)


@given(values_st)
def test_mean_std_min_max_equal_numpy(values: np.ndarray) -> None:
    stats = Histogram.of_values(values, EDGES).stats()
    inside = values[(values >= 0) & (values <= 1)]
    if inside.size == 0:
        assert stats["count"] == 0 and math.isnan(stats["mean"])
        return
    assert stats["count"] == inside.size
    assert stats["mean"] == pytest.approx(inside.mean(), abs=1e-9)
    assert stats["std"] == pytest.approx(inside.std(), abs=1e-7)
    assert (stats["min"], stats["max"]) == (inside.min(), inside.max())


@settings(max_examples=200)
@given(
    st.lists(st.integers(0, 255), min_size=1, max_size=300),
    st.sampled_from([1.0, 2.0, 5.0, 25.0, 50.0, 75.0, 98.0, 99.0]),
)
def test_discrete_percentiles_are_exact(dns: list[int], q: float) -> None:
    """With one bin per digital number, percentiles equal numpy's inverted-CDF percentiles."""
    bins = BinSpec.per_digital_number("uint8", 0.004, -0.08)
    values = np.array(dns, dtype=np.float64) * 0.004 - 0.08
    h = Histogram.of_values(values, bins)
    assert h.percentile(q) == pytest.approx(np.percentile(values, q, method="inverted_cdf"), abs=1e-12)


def test_continuous_percentile_interpolates_within_the_bin() -> None:
    h = Histogram.of_values(np.array([0.05, 0.15, 0.25, 0.35]), BinSpec.uniform(4, 0.0, 0.4))
    assert h.percentile(50) == pytest.approx(0.2)
    assert h.percentile(25) == pytest.approx(0.1)
    assert h.percentile(0) == 0.05 and h.percentile(100) == 0.35


def test_adding_different_edges_is_refused() -> None:
    with pytest.raises(IncompatibleHistograms):
        Histogram.zeros(EDGES) + Histogram.zeros(BinSpec.uniform(5, 0, 1))


def test_round_trip_through_dict() -> None:
    h = Histogram.of_values(np.array([0.1, 0.2, 2.0]), EDGES)
    back = Histogram.from_dict(h.to_dict())
    np.testing.assert_array_equal(back.counts, h.counts)
    np.testing.assert_allclose(back.bins.array, h.bins.array, rtol=0, atol=1e-12)  # edges rounded for JSON
    assert back.moments.n == h.moments.n and back.moments.mean == h.moments.mean and back.above == 1
    assert back.moments.std == pytest.approx(h.moments.std, rel=1e-12) and (back + h).count == 2 * h.count


def test_counts_are_int64_beyond_32_bits() -> None:
    big = Histogram(EDGES, np.full(10, 2**31, dtype=np.int64))
    total = big + big
    assert total.counts.dtype == np.int64 and total.count == 10 * 2**32
