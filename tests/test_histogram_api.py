"""The Histogram as a Python user meets it: centres, pandas, xarray, repr, emptiness, error wording."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import histcalc
from histcalc.bins import BinSpec
from histcalc.errors import InvalidBins, MissingDependency
from histcalc.histogram import Histogram
from tests.conftest import uint8_bins

VALUES = np.array([0.05, 0.15, 0.15, 0.35, 0.95, 1.5, -0.2])  # 1.5 above, -0.2 below the range [0, 1]


def _h() -> Histogram:
    return Histogram.of_values(VALUES, BinSpec.uniform(10, 0.0, 1.0), nodata=3, masked=2)


def test_bin_centres_are_the_middles_without_float_noise() -> None:
    np.testing.assert_array_equal(_h().bin_centres, [0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95])
    per_dn = Histogram.zeros(uint8_bins()).bin_centres  # one bin per DN: the centre is DN * 0.004 - 0.08
    assert per_dn[0] == -0.08 and per_dn[20] == 0.0 and per_dn[120] == 0.4
    np.testing.assert_allclose(per_dn, np.arange(256) * 0.004 - 0.08, rtol=0, atol=1e-15)


def test_to_pandas_is_tidy_with_the_tallies_in_attrs() -> None:
    frame = _h().to_pandas()
    assert list(frame.columns) == ["bin_low", "bin_high", "bin_centre", "count"] and len(frame) == 10
    expected, _ = np.histogram(VALUES, bins=np.linspace(0, 1, 11))
    np.testing.assert_array_equal(frame["count"].to_numpy(), expected)
    assert frame["bin_low"].iloc[3] == 0.3 and frame["bin_high"].iloc[2] == 0.3  # linspace's 0.30000000000000004
    assert frame.attrs == {"below": 1, "above": 1, "nodata": 3, "masked": 2, "duplicate": 0}


def test_to_xarray_has_the_centres_as_coordinate() -> None:
    da = _h().to_xarray()
    assert da.dims == ("bin",) and da.name == "count" and int(da.sum()) == 5
    assert float(da.sel(bin=0.15)) == 2 and float(da["bin_low"].sel(bin=0.95)) == 0.9
    assert da.attrs["below"] == 1 and da.attrs["bins_kind"] == "intervals"


@pytest.mark.parametrize(("module", "method"), [("pandas", "to_pandas"), ("xarray", "to_xarray")])
def test_a_missing_optional_library_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, module: str, method: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependency, match=rf"{method}\(\) needs {module}: pip install {module}"):
        getattr(_h(), method)()
    assert issubclass(MissingDependency, ImportError)  # `except ImportError` works too


def test_repr_is_short_and_says_what_matters() -> None:
    text = repr(Histogram.zeros(uint8_bins()) + Histogram.of_values(np.array([0.4]), uint8_bins()))
    assert text == (
        "Histogram(256 bins from -0.082 to 0.942, count=1, below=0, above=0, nodata=0, masked=0, duplicate=0)"
    )


def test_empty_is_a_property_and_zeros_the_constructor() -> None:
    assert Histogram.zeros(uint8_bins()).empty is True and _h().empty is False
    assert Histogram.zeros(uint8_bins()).counts.tolist() == [0] * 256


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: BinSpec.uniform(0, 0.0, 1.0), "the number of bins must be a positive integer, got 0"),
        (lambda: BinSpec.uniform(5, 1.0, 0.0), "the bin range needs LO < HI (finite numbers), got 1,0"),
    ],
)
def test_library_errors_do_not_name_command_line_flags(make: object, message: str) -> None:
    with pytest.raises(InvalidBins) as info:
        make()  # type: ignore[operator]
    assert str(info.value) == message and "--" not in message


def test_the_package_exports_what_the_readme_uses() -> None:
    for name in ("Histogram", "BinSpec", "Progress", "MissingDependency", "watch_spark"):
        assert name in histcalc.__all__ and hasattr(histcalc, name)
