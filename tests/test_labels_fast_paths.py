"""The shortcuts inside the zone labels equal the plain numpy they replace (the pixels themselves are checked
against brute force in tests/test_zones.py, with the kernels a default installation has: the C runs and burn
where built). Here the C runs and burn equal numpy's, so both paths are held to brute force."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import shapely
import shapely.affinity
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.transform import Affine

from histcalc.kernel_loading import native_kernels
from histcalc.label_burn import burn
from histcalc.label_runs import repeat_rows
from histcalc.labels import _zone_ids, window_labels
from histcalc.parcels import parcel_geometries
from histcalc.zones import Zones

needs_c = pytest.mark.skipif(native_kernels() is None, reason="this installation has no C kernels")


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
    item, rows = repeat_rows(first, count)
    expected = [(i, int(first[i]) + k) for i in range(300) for k in range(int(count[i]))]
    assert list(zip(item.tolist(), rows.tolist(), strict=True)) == expected


@pytest.mark.parametrize("kernels", ["numpy", pytest.param("c", marks=needs_c)])
@pytest.mark.parametrize(("dtype", "top"), [(np.uint16, 65_534), (np.int32, 2_000_000)])
def test_burn_writes_each_run_and_nothing_else(
    dtype: type, top: int, kernels: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Labels near the top of the type: uint16 sums of the steps wrap around and still come out exact."""
    monkeypatch.setenv("HISTCALC_KERNEL", kernels)
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
    got = burn(np.array(rows), np.array(start), np.array(stop), np.array(value, np.int64), shape, dtype)
    assert got.shape == shape and got.dtype == dtype
    np.testing.assert_array_equal(got.astype(np.int64), expected)


def _random_zones(rng: np.random.Generator) -> list[Any]:
    """Polygons with and without holes (overlapping), Delaunay triangles of pixel centres (shared edges through
    centres, vertices on them) and demo parcels: the shapes whose labels test_zones.py checks by brute force."""
    geoms = []
    for _ in range(int(rng.integers(1, 15))):
        cx, cy, radius = rng.uniform(0, 300), rng.uniform(-200, 0), rng.uniform(3, 90)
        angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(3, 12)))
        radii = radius * rng.uniform(0.3, 1.0, len(angles))
        outer = [(cx + r * np.cos(t), cy + r * np.sin(t)) for r, t in zip(radii, angles, strict=True)]
        hole = [(cx + 0.2 * radius * np.cos(t), cy + 0.2 * radius * np.sin(t)) for t in (0.0, 2.0, 4.0)]
        geom = shapely.make_valid(shapely.Polygon(outer, [hole] if radius > 30 else None))
        geoms.extend(p for p in shapely.get_parts(geom) if p.geom_type == "Polygon")
    lattice = rng.integers(0, 30, (int(rng.integers(4, 30)), 2)) * 10.0 + rng.choice([0.0, 5.0], 2)  # corners, mixed
    geoms.extend(shapely.get_parts(shapely.delaunay_triangles(shapely.multipoints(lattice * [1, -1]))))
    # vertices on pixel corners' columns between row lines, the leftmost and rightmost of their rings: the edge
    # pieces that end there make the x range of a row strip end exactly on a grid line
    for x, y in rng.integers(0, 25, (3, 2)):
        px, py = -20.0 + 10.0 * x, 20.0 - 10.0 * (y + 0.5)
        geoms.append(shapely.Polygon([(px, py), (px + 40, py + 13), (px + 40, py - 22)]))
        geoms.append(shapely.Polygon([(px, py), (px - 40, py + 17), (px - 40, py - 26)]))
    fields = parcel_geometries((0.0, -3000.0, 3000.0, 0.0), int(rng.integers(1, 40)), seed=int(rng.integers(99)))
    geoms.extend(shapely.affinity.scale(f, 0.1, 0.1, origin=(0, 0)) for f in fields)  # shared edges stay shared
    return geoms


@needs_c
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), all_touched=st.booleans())
def test_c_labels_equal_numpy_labels(seed: int, all_touched: bool) -> None:
    """Every window's layers and zones, made with the C runs and burn, equal numpy's bit for bit."""
    rng = np.random.default_rng(seed)
    geoms = _random_zones(rng)
    zones = Zones([f"z{i}" for i in range(len(geoms))], np.array(geoms, dtype=object), "EPSG:32631", [])
    subset = zones.for_raster("EPSG:32631", (-50.0, -350.0, 350.0, 50.0))
    grid = Affine(10.0, 0, -20.0, 0, -10.0, 20.0)
    for top, height, left, width in [(0, 34, 0, 34), (3, 11, 5, 20), (20, 1, 0, 34)]:
        window = grid * Affine.translation(left, top)
        with pytest.MonkeyPatch.context() as env:
            env.setenv("HISTCALC_KERNEL", "numpy")
            want = window_labels(subset, window, (height, width), all_touched)
        got = window_labels(subset, window, (height, width), all_touched)
        np.testing.assert_array_equal(got.zones, want.zones)
        assert got.pixels == want.pixels and len(got.layers) == len(want.layers)
        for a, b in zip(got.layers, want.layers, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)


@needs_c
def test_the_c_bindings_refuse_what_the_c_code_would_read_or_write_out_of_bounds() -> None:
    from histcalc import _native

    labels = np.zeros((4, 5), np.uint16)
    one = np.array([1])
    for row, start, stop in [(4, 0, 1), (-1, 0, 1), (0, -1, 2), (0, 3, 6)]:
        with pytest.raises(ValueError, match="outside"):
            _native.burn_runs(np.array([row]), np.array([start]), np.array([stop]), one, labels)
    with pytest.raises(TypeError):
        _native.burn_runs(one * 0, one * 0, one, one, np.zeros((4, 5), np.int64))
    assert _native.burn_runs(np.array([0, 0]), np.array([0, 2]), np.array([3, 4]), np.array([1, 2]), labels) == 1
    assert labels[0].tolist() == [1, 1, 2, 2, 0]
    edge = [np.array([v]) for v in (0.0, 0.2, 3.0, 3.0)]  # one edge alone: its row is crossed once
    with pytest.raises(ValueError, match="in pairs"):
        _native.centre_runs(*edge, np.array([0]), np.array([0]), np.array([3]), 10)
    unsorted = [np.array([0.0, 5.0]), np.zeros(2), np.zeros(2), np.ones(2)]
    assert _native.centre_runs(*unsorted, np.array([3, 1]), np.zeros(2, np.int64), np.ones(2, np.int64), 10) is None


@needs_c
@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 60), density=st.floats(0.0, 0.5))
def test_c_greedy_layers_equal_the_python_ones(seed: int, n: int, density: float) -> None:
    """The colouring of the conflict graph (neighbours sharing pixels with --all-touched, overlapping zones), with
    repeated and self pairs, equals the Python loop node for node; no two neighbours share a layer."""
    from histcalc.label_burn import greedy_layers

    rng = np.random.default_rng(seed)
    pairs = int(density * n * n)
    left, right = rng.integers(0, max(n, 1), pairs), rng.integers(0, max(n, 1), pairs)
    if n == 0:
        left, right = left[:0], right[:0]
    got = greedy_layers(n, left, right)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HISTCALC_KERNEL", "numpy")
        want = greedy_layers(n, left, right)
    assert got.dtype == want.dtype == np.int32
    np.testing.assert_array_equal(got, want)
    differ = left != right
    assert not np.any(got[left[differ]] == got[right[differ]])
