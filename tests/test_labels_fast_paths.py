"""The shortcuts inside the zone labels equal the plain numpy they replace (the pixels themselves are checked
against brute force in tests/test_zones.py)."""

from __future__ import annotations

import numpy as np
import pytest

from histcalc.labels import _burn, _repeat_rows, _zone_ids


@pytest.mark.parametrize(
    "zone",
    [
        np.array([], dtype=np.int64),
        np.array([7], dtype=np.int64),
        np.array([0, 0, 3, 3, 3, 9, 12, 12], dtype=np.int64),  # sorted, as the runs come out
        np.array([5, 1, 5, 0, 2, 2], dtype=np.int64),  # not sorted: np.unique's way
        np.sort(np.random.default_rng(4).integers(0, 1000, 5000)),
    ],
)
def test_zone_ids_equal_numpy_unique(zone: np.ndarray) -> None:
    zones, local = _zone_ids(zone)
    expected_zones, expected_local = np.unique(zone, return_inverse=True)
    np.testing.assert_array_equal(zones, expected_zones)
    np.testing.assert_array_equal(local, expected_local)
    np.testing.assert_array_equal(zones[local], zone)


def test_repeat_rows_lists_each_item_row_pair() -> None:
    rng = np.random.default_rng(8)
    first = rng.integers(-5, 100, 300)
    count = rng.integers(0, 6, 300)
    item, rows = _repeat_rows(first, count)
    expected = [(i, int(first[i]) + k) for i in range(300) for k in range(int(count[i]))]
    assert list(zip(item.tolist(), rows.tolist(), strict=True)) == expected


@pytest.mark.parametrize(("dtype", "top"), [(np.uint16, 65_534), (np.int32, 2_000_000)])
def test_burn_writes_each_run_and_nothing_else(dtype: type, top: int) -> None:
    """Labels near the top of the type: uint16 sums of the steps wrap around and still come out exact."""
    rng = np.random.default_rng(9)
    shape = (40, 30)
    expected = np.zeros(shape, np.int64)
    rows, start, stop, value = [], [], [], []
    for k in range(1, 60):  # disjoint runs, some ending at the right edge, some abutting
        label = top - 1000 * k if k % 2 else k
        r = int(rng.integers(0, shape[0]))
        free = np.flatnonzero(expected[r] == 0)
        if len(free) == 0:
            continue
        a = int(free[rng.integers(0, len(free))])
        b = a + 1
        while b < shape[1] and expected[r, b] == 0 and rng.random() < 0.8:
            b += 1
        expected[r, a:b] = label
        rows.append(r), start.append(a), stop.append(b), value.append(label)
    got = _burn(np.array(rows), np.array(start), np.array(stop), np.array(value, np.int64), shape, dtype)
    assert got.shape == shape and got.dtype == dtype
    np.testing.assert_array_equal(got.astype(np.int64), expected)
