"""Zones: reading every vector format, subsets per raster, and label layers against brute force on every pixel.

The reference for the centre rule is shapely's point-in-polygon test on every pixel centre. Centres exactly on
a boundary follow the documented half-open rule: a centre counts for a zone when the point an infinitesimal
step to its right (and an even smaller step down, in pixel rows) is inside, which the reference evaluates by
moving the centre by 1e-6 px right and 1e-9 px down.
"""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
import shapely.affinity
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from rasterio.transform import Affine

from histcalc.errors import InvalidZones, UsageError
from histcalc.label_cache import LabelCache
from histcalc.labels import label_layers, window_labels
from histcalc.parcels import make_parcels, parcel_geometries
from histcalc.zone_files import load_zones
from histcalc.zones import Zones, ZoneSubset, pack
from tests.conftest import write_raster

UTM31 = "EPSG:32631"
ORIGIN = (600000.0, 5700000.0)
PIXEL = 10.0
GRID = Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1])


def at(col: float, row: float) -> tuple[float, float]:
    """CRS coordinates of pixel-space point (col, row) on GRID: (c + 0.5, r + 0.5) is a pixel centre."""
    return ORIGIN[0] + col * PIXEL, ORIGIN[1] - row * PIXEL


def poly(*points: tuple[float, float], holes: list[list[tuple[float, float]]] | None = None) -> Any:
    return shapely.Polygon([at(*p) for p in points], [[at(*p) for p in h] for h in holes or []])


def zones_of(geoms: list[Any], crs: str = UTM31, ids: list[str] | None = None) -> Zones:
    ids = ids or [f"z{i}" for i in range(len(geoms))]
    return Zones(ids, np.array(geoms, dtype=object), crs, [])


def centres(transform: Affine, shape: tuple[int, int], right: float = 0.0, down: float = 0.0) -> tuple[Any, Any]:
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return transform * (cols + 0.5 + right, rows + 0.5 + down)


def brute_centre(geom: Any, transform: Affine, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre is in ``geom`` under the half-open boundary rule (see the module docstring)."""
    x, y = centres(transform, shape, right=1e-6, down=1e-9)
    return shapely.contains_xy(geom, x, y)


def zone_masks(layers: list[np.ndarray], n: int, shape: tuple[int, int]) -> list[np.ndarray]:
    """Per subset zone, the pixels labelled with it in any layer."""
    return [np.any([layer == k + 1 for layer in layers], axis=0) if layers else np.zeros(shape, bool) for k in range(n)]


def assert_labels_match_brute_force(zones: Zones, transform: Affine, shape: tuple[int, int], crs: str = UTM31) -> Any:
    (x0, y0), (x1, y1) = transform * (0, 0), transform * (shape[1], shape[0])
    subset = zones.for_raster(crs, (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
    layers = label_layers(subset, transform, shape)
    masks = zone_masks(layers, len(subset), shape)
    for k, index in enumerate(subset.indices):
        expected = brute_centre(zones.geometries[index], transform, shape)
        np.testing.assert_array_equal(masks[k], expected, err_msg=f"zone {zones.ids[index]}")
    for layer in layers:  # a layer never holds two zones on one pixel: labels are exact, not overwritten
        assert layer.dtype == np.int32 and layer.shape == shape
    return subset, layers


# --- the centre rule, against brute force --------------------------------------------------------------------


def test_adjacent_zones_with_edges_through_pixel_centres_count_each_pixel_once() -> None:
    # A 3 x 3 checkerboard of squares whose edges run exactly through pixel centres (x.5 in pixel space),
    # plus a square cut along its diagonal, which passes through centres too: every tie in the book.
    squares = [poly((c, r), (c + 4, r), (c + 4, r + 4), (c, r + 4)) for c in (0.5, 4.5, 8.5) for r in (0.5, 4.5, 8.5)]
    triangles = [poly((12.5, 0.5), (20.5, 0.5), (20.5, 8.5)), poly((12.5, 0.5), (20.5, 8.5), (12.5, 8.5))]
    zones = zones_of(squares + triangles)
    shape = (16, 24)
    subset, layers = assert_labels_match_brute_force(zones, GRID, shape)
    assert len(layers) == 1  # zones that only share edges stay in one layer
    union = shapely.union_all(zones.geometries)
    x, y = centres(GRID, shape)
    on_shared_edges = shapely.intersects_xy(shapely.union_all(shapely.boundary(zones.geometries)), x, y)
    assert on_shared_edges.sum() > 100  # the ties really are exercised
    per_zone = sum(int(m.sum()) for m in zone_masks(layers, len(subset), shape))
    assert per_zone == int(brute_centre(union, GRID, shape).sum()) == 12 * 12 + 8 * 8


def test_overlapping_and_nested_zones_get_their_own_layers() -> None:
    big = poly((1.2, 1.3), (14.7, 1.1), (13.9, 11.6), (0.8, 12.2))
    inner = poly((3.3, 3.1), (7.6, 3.4), (7.2, 8.8), (3.1, 7.7))
    crossing = poly((6.1, -2.0), (19.4, 4.2), (16.3, 15.5), (5.2, 9.4))
    twin = poly((6.1, -2.0), (19.4, 4.2), (16.3, 15.5), (5.2, 9.4))
    zones = zones_of([big, inner, crossing, twin])
    _, layers = assert_labels_match_brute_force(zones, GRID, (14, 20))
    assert len(layers) >= 3  # twin overlaps crossing and big; inner lies in big


def test_holes_and_an_island_filling_the_hole() -> None:
    ring = poly((0.5, 0.5), (10.5, 0.5), (10.5, 10.5), (0.5, 10.5), holes=[[(3.5, 3.5), (7.5, 3.5), (7.5, 7.5)]])
    island = poly((3.5, 3.5), (7.5, 3.5), (7.5, 7.5))
    zones = zones_of([ring, island])
    subset, layers = assert_labels_match_brute_force(zones, GRID, (12, 12))
    counts = [int(m.sum()) for m in zone_masks(layers, len(subset), (12, 12))]
    assert sum(counts) == 100 and counts[1] > 0 and len(layers) == 1


def test_multipart_zone_and_a_sub_pixel_zone_and_a_zone_outside() -> None:
    parts = shapely.MultiPolygon([poly((0.2, 0.3), (3.7, 0.1), (2.2, 4.4)), poly((6.1, 5.2), (9.8, 5.9), (8.1, 9.3))])
    speck = poly((4.6, 1.6), (4.9, 1.6), (4.9, 1.9))  # between pixel centres: no pixel, but still a zone
    far = poly((500, 500), (510, 500), (510, 510))
    zones = zones_of([parts, speck, far])
    subset, layers = assert_labels_match_brute_force(zones, GRID, (10, 10))
    assert list(subset.indices) == [0, 1]  # the far zone does not intersect this raster
    counts = [int(m.sum()) for m in zone_masks(layers, len(subset), (10, 10))]
    assert counts[0] > 0 and counts[1] == 0


def test_random_polygons_with_holes_match_brute_force_in_every_window() -> None:
    rng = np.random.default_rng(7)
    geoms = []
    for _ in range(25):
        cx, cy, radius = rng.uniform(0, 40), rng.uniform(0, 30), rng.uniform(0.3, 9)
        angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(3, 12)))
        radii = radius * rng.uniform(0.3, 1.0, len(angles))
        outer = [(cx + r * np.cos(t), cy + r * np.sin(t)) for r, t in zip(radii, angles, strict=True)]
        hole = [(cx + 0.2 * radius * np.cos(t), cy + 0.2 * radius * np.sin(t)) for t in (0.0, 2.0, 4.0)]
        geom = shapely.make_valid(poly(*outer, holes=[hole] if radius > 3 else None))
        geoms.append(shapely.union_all([p for p in shapely.get_parts(geom) if p.geom_type == "Polygon"]))
    zones = zones_of(geoms)
    shape = (32, 44)
    subset, full = assert_labels_match_brute_force(zones, GRID, shape)
    masks = zone_masks(full, len(subset), shape)
    for top, height, left, width in [(0, 7, 0, 44), (7, 20, 0, 44), (27, 5, 3, 30), (10, 1, 20, 1)]:
        window = GRID * Affine.translation(left, top)
        parts = zone_masks(label_layers(subset, window, (height, width)), len(subset), (height, width))
        for k in range(len(subset)):
            np.testing.assert_array_equal(parts[k], masks[k][top : top + height, left : left + width])


def test_a_south_up_grid_matches_brute_force() -> None:
    zones = zones_of([poly((0.5, 0.5), (10.5, 0.5), (10.5, 10.5)), poly((0.5, 0.5), (10.5, 10.5), (0.5, 10.5))])
    south_up = Affine(PIXEL, 0, ORIGIN[0], 0, PIXEL, ORIGIN[1] - 12 * PIXEL)  # rows grow northwards
    subset, layers = assert_labels_match_brute_force(zones, south_up, (12, 12))
    assert sum(int(m.sum()) for m in zone_masks(layers, len(subset), (12, 12))) == 100


def test_parcels_tile_without_overlaps_and_count_each_pixel_once() -> None:
    geoms = parcel_geometries((ORIGIN[0], ORIGIN[1] - 3000, ORIGIN[0] + 3000, ORIGIN[1]), 60, seed=3)
    zones = zones_of(list(geoms))
    shape = (300, 300)
    subset, layers = assert_labels_match_brute_force(zones, GRID, shape)
    assert len(layers) == 1
    union = brute_centre(shapely.union_all(geoms), GRID, shape)
    assert sum(int(m.sum()) for m in zone_masks(layers, len(subset), shape)) == int(union.sum())


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), points=st.integers(4, 40), half=st.booleans())
def test_triangulations_of_pixel_centres_partition_the_pixels(seed: int, points: int, half: bool) -> None:
    # Delaunay triangles of random pixel centres (or pixel corners): shared edges run through many centres,
    # vertices sit on centres, and the triangles tile their hull.
    rng = np.random.default_rng(seed)
    lattice = rng.integers(0, 14, (points, 2)) + (0.5 if half else 0.0)
    triangles = shapely.get_parts(shapely.delaunay_triangles(shapely.multipoints([at(*p) for p in lattice])))
    if len(triangles) == 0:
        return
    zones = zones_of(list(triangles))
    shape = (15, 15)
    subset, layers = assert_labels_match_brute_force(zones, GRID, shape)
    assert len(layers) <= 1
    per_zone = sum(int(m.sum()) for m in zone_masks(layers, len(subset), shape))
    assert per_zone == int(brute_centre(shapely.union_all(triangles), GRID, shape).sum())


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 12))
def test_overlapping_lattice_polygons_each_match_brute_force(seed: int, count: int) -> None:
    # Convex hulls of random pixel centres (or corners): vertices exactly on the lattice, edges through centres,
    # overlapping each other at random. (Repairing self-intersections instead would add vertices that are off
    # the lattice by rounding, where "exactly on the edge" stops being well defined.)
    rng = np.random.default_rng(seed)
    offset = rng.choice([0.0, 0.5])
    hulls = [
        shapely.convex_hull(shapely.multipoints([at(*p) for p in rng.integers(-2, 16, (int(rng.integers(3, 7)), 2))]))
        for _ in range(count)
    ]
    hulls = [shapely.affinity.translate(h, offset * PIXEL, -offset * PIXEL) for h in hulls if h.area > 0]
    if hulls:
        assert_labels_match_brute_force(zones_of(hulls), GRID, (14, 14))


# --- CRSs -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("zone_crs", ["EPSG:4326", "EPSG:32631"])
def test_zones_spanning_two_utm_zones_label_rasters_in_both(zone_crs: str) -> None:
    # Zones across 6 degrees E (the UTM 31/32 boundary), in lon/lat or in UTM 31 (then reaching into zone 32);
    # the same area gridded in each UTM zone.
    across = shapely.Polygon([(5.9512, 51.0021), (6.0517, 51.0043), (6.0423, 51.0531), (5.9611, 51.0488)])
    parts = shapely.MultiPolygon([shapely.box(5.95, 51.01, 5.97, 51.02), shapely.box(6.02, 51.03, 6.04, 51.045)])
    to_zone_crs = Transformer.from_crs("EPSG:4326", zone_crs, always_xy=True)
    geoms = [shapely.transform(g, lambda xy: np.column_stack(to_zone_crs.transform(*xy.T))) for g in (across, parts)]
    zones = zones_of(geoms, crs=zone_crs)
    for crs in ("EPSG:32631", "EPSG:32632"):
        to_utm = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        xs, ys = to_utm.transform([5.94, 6.06, 5.94, 6.06], [50.99, 50.99, 51.06, 51.06])
        transform = Affine(30.0, 0, round(min(xs), -2), 0, -30.0, round(max(ys), -2))
        shape = (int((max(ys) - min(ys)) / 30) + 10, int((max(xs) - min(xs)) / 30) + 10)
        bounds = (transform.c, transform.f - 30.0 * shape[0], transform.c + 30.0 * shape[1], transform.f)
        subset = zones.for_raster(crs, bounds)
        assert list(subset.indices) == [0, 1]
        masks = zone_masks(label_layers(subset, transform, shape), len(subset), shape)
        # Reference: every pixel centre moved to the zones' CRS, tested against the undensified zone there.
        x, y = centres(transform, shape)
        zx, zy = Transformer.from_crs(crs, zone_crs, always_xy=True).transform(x, y)
        for k in range(len(subset)):
            expected = shapely.contains_xy(zones.geometries[k], zx, zy)
            wrong = masks[k] != expected
            # Straight in one CRS is not straight in another: only centres within centimetres of an edge may differ.
            near_edge = shapely.distance(subset.geometries()[k].boundary, shapely.points(x[wrong], y[wrong]))
            assert np.all(near_edge < 0.05), f"{crs}: zone {k} differs {near_edge.max()} m from its edge"
            area_px = shapely.area(subset.geometries()[k]) / 900
            assert abs(masks[k].sum() - area_px) < 0.03 * area_px


def test_a_zone_reaching_round_the_globe_is_clipped_before_projecting() -> None:
    strip = shapely.box(3.0, 50.95, 170.0, 51.05)  # in UTM 31 longitude 170 folds back to finite nonsense
    fold = shapely.box(-170.0, 50.99, 2.0, 51.01)
    zones = zones_of([strip, fold], crs="EPSG:4326")
    to_utm = Transformer.from_crs("EPSG:4326", UTM31, always_xy=True)
    x0, y0 = to_utm.transform(4.9, 51.1)
    transform = Affine(50.0, 0, round(x0, -2), 0, -50.0, round(y0, -2))
    shape = (400, 300)
    bounds = (transform.c, transform.f - 50.0 * shape[0], transform.c + 50.0 * shape[1], transform.f)
    subset = zones.for_raster(UTM31, bounds)
    masks = zone_masks(label_layers(subset, transform, shape), len(subset), shape)
    x, y = centres(transform, shape)
    lon, lat = Transformer.from_crs(UTM31, "EPSG:4326", always_xy=True).transform(x, y)
    for k, index in enumerate(subset.indices):
        np.testing.assert_array_equal(masks[k], shapely.contains_xy(zones.geometries[index], lon, lat))
    assert masks[0].sum() > 1000
    width = subset.bounds[:, 2] - subset.bounds[:, 0]
    assert np.all(width < 3 * 300 * 50)  # clipped to the raster's surroundings, not folded across the globe


def test_subset_pickles_small_and_labels_the_same() -> None:
    zones = zones_of([poly((0.5, 0.5), (5.5, 0.5), (3.3, 4.1)), poly((2, 2), (9, 2), (9, 9))])
    subset = zones.for_raster(UTM31, (ORIGIN[0], ORIGIN[1] - 100, ORIGIN[0] + 100, ORIGIN[1]))
    again = pickle.loads(pickle.dumps(subset))
    assert isinstance(again, ZoneSubset) and again.key == subset.key
    for a, b in zip(label_layers(subset, GRID, (10, 10)), label_layers(again, GRID, (10, 10)), strict=True):
        np.testing.assert_array_equal(a, b)
    assert zones.for_raster(UTM31, (ORIGIN[0], ORIGIN[1] - 100, ORIGIN[0] + 100, ORIGIN[1])) is subset


def test_label_cache_shares_labels_across_files_of_one_grid() -> None:
    zones = zones_of([poly((0.5, 0.5), (5.5, 0.5), (3.3, 4.1))])
    subset = zones.for_raster(UTM31, (ORIGIN[0], ORIGIN[1] - 100, ORIGIN[0] + 100, ORIGIN[1]))
    cache = LabelCache(max_bytes=10 * 10 * 4)
    first = cache.get(subset, GRID, (10, 10))
    assert cache.get(subset, GRID, (10, 10)) is first and (cache.hits, cache.misses) == (1, 1)
    assert not first.layers[0].flags.writeable
    # a grid whose windows outgrow the budget keeps those it holds: the windows come back in the same order at
    # every date, and least-recently-used would drop each one just before it is needed
    second = GRID * Affine.translation(1, 0)
    for _date in range(3):
        assert cache.get(subset, GRID, (10, 10)) is first
        cache.get(subset, second, (10, 10))
    assert (cache.hits, cache.misses) == (4, 4)
    other = zones_of([poly((1.5, 1.5), (6.5, 1.5), (4.3, 5.1))]).for_raster(
        UTM31, (ORIGIN[0], ORIGIN[1] - 100, ORIGIN[0] + 100, ORIGIN[1])
    )
    assert other.key != subset.key
    cache.get(other, GRID, (10, 10))  # another subset makes room: the first goes
    cache.get(subset, GRID, (10, 10))
    assert (cache.hits, cache.misses) == (4, 6)
    # the same zones over another raster grid (a neighbouring tile in the same CRS) are another group too
    cache.get(subset, second, (10, 10), grid="tile B")
    assert cache.get(subset, second, (10, 10), grid="tile B") is not None and (cache.hits, cache.misses) == (5, 7)
    cache.get(subset, GRID, (10, 10))
    assert (cache.hits, cache.misses) == (5, 8)  # tile B's window took the place


def test_a_window_of_more_zones_than_uint16_holds_has_int32_labels() -> None:
    """90,000 one-pixel zones in a 300 x 300 window: local ids past 65,534 need int32 (uint16 below that)."""
    side = 300
    rows, cols = np.divmod(np.arange(side * side), side)
    x0, y1 = at(cols + 0.2, rows + 0.2)
    x1, y0 = at(cols + 0.8, rows + 0.8)
    zones = zones_of(list(shapely.box(x0, y0, x1, y1)))
    subset = zones.for_raster(UTM31, (ORIGIN[0], ORIGIN[1] - side * PIXEL, ORIGIN[0] + side * PIXEL, ORIGIN[1]))
    labels = window_labels(subset, GRID, (side, side))
    assert len(labels) == 1 and labels.layers[0].dtype == np.int32 and labels.pixels == (side * side,)
    expected = (np.arange(side * side) + 1).reshape(side, side)  # zone k covers pixel k's centre
    np.testing.assert_array_equal(labels.positions()[labels.layers[0]], subset.indices[expected - 1] + 1)
    small = window_labels(subset, GRID, (200, side))  # 60,000 zones
    assert small.layers[0].dtype == np.uint16
    np.testing.assert_array_equal(small.positions()[small.layers[0]], subset.indices[expected[:200] - 1] + 1)


def test_rotated_grid_is_refused() -> None:
    subset = pack(np.array([poly((0.5, 0.5), (5.5, 0.5), (3.3, 4.1))], dtype=object), np.array([0]), UTM31)
    with pytest.raises(UsageError):
        label_layers(subset, Affine(10, 1, 0, 0, -10, 0), (4, 4))


# --- all_touched ----------------------------------------------------------------------------------------------


def test_all_touched_matches_pixel_boxes_intersecting_each_zone() -> None:
    rng = np.random.default_rng(11)
    geoms = [
        shapely.convex_hull(shapely.multipoints([at(*p) for p in rng.uniform((0, 0), (20, 14), (5, 2)) + offset]))
        for offset in rng.uniform(-3, 3, (8, 2))
    ]
    geoms.append(poly((2.3, 2.2), (6.1, 2.2), (6.1, 5.7), (2.3, 5.7)))  # adjacent to the next one along x = 6.1
    geoms.append(poly((6.1, 2.2), (9.4, 2.2), (9.4, 5.7), (6.1, 5.7)))
    zones = zones_of([g for g in geoms if g.area > 0])
    shape = (16, 22)
    subset = zones.for_raster(UTM31, (ORIGIN[0], ORIGIN[1] - 160, ORIGIN[0] + 220, ORIGIN[1]))
    masks = zone_masks(label_layers(subset, GRID, shape, all_touched=True), len(subset), shape)
    for k, index in enumerate(subset.indices):
        np.testing.assert_array_equal(masks[k], brute_touched(zones.geometries[index], GRID, shape))


def brute_touched(geom: Any, transform: Affine, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose open square meets the zone's interior: the intersection has an area."""
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    (x0, y0), (x1, y1) = transform * (cols, rows), transform * (cols + 1, rows + 1)
    boxes = shapely.box(np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1))
    return shapely.area(shapely.intersection(geom, boxes)) > 1e-9


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(1, 8), half=st.booleans())
def test_all_touched_on_lattice_polygons_matches_brute_force(seed: int, count: int, half: bool) -> None:
    # Vertices on pixel corners (edges along grid lines: touching a side is not entering) or on centres.
    rng = np.random.default_rng(seed)
    hulls = [
        shapely.convex_hull(shapely.multipoints([at(*p) for p in rng.integers(-2, 14, (int(rng.integers(3, 6)), 2))]))
        for _ in range(count)
    ]
    hulls = [shapely.affinity.translate(h, 0.5 * PIXEL * half, -0.5 * PIXEL * half) for h in hulls if h.area > 0]
    if not hulls:
        return
    zones = zones_of(hulls)
    shape = (12, 12)
    subset = zones.for_raster(UTM31, (ORIGIN[0], ORIGIN[1] - 120, ORIGIN[0] + 120, ORIGIN[1]))
    masks = zone_masks(label_layers(subset, GRID, shape, all_touched=True), len(subset), shape)
    for k, index in enumerate(subset.indices):
        np.testing.assert_array_equal(masks[k], brute_touched(zones.geometries[index], GRID, shape))


# --- rasterstats ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("all_touched", [False, True])
def test_counts_equal_rasterstats_categorical(tmp_path: Path, all_touched: bool) -> None:
    rasterstats = pytest.importorskip("rasterstats", reason="rasterstats not installed")
    rng = np.random.default_rng(5)
    data = rng.integers(0, 6, (40, 50), dtype=np.uint8)
    path = write_raster(tmp_path / "r.tif", data, transform=GRID, block=16)
    geoms = [
        shapely.buffer(shapely.points(at(*rng.uniform(3, 45, 2))), rng.uniform(8, 90), quad_segs=5) for _ in range(12)
    ]
    geoms.append(parcel_geometries((ORIGIN[0], ORIGIN[1] - 400, ORIGIN[0] + 500, ORIGIN[1]), 3, seed=1)[0])
    zones = zones_of(geoms)
    subset = zones.for_raster(UTM31, (ORIGIN[0], ORIGIN[1] - 400, ORIGIN[0] + 500, ORIGIN[1]))
    layers = label_layers(subset, GRID, data.shape, all_touched=all_touched)
    ours = {k: {} for k in range(len(subset))}
    for layer in layers:
        for k in np.unique(layer[layer > 0]):
            values, counts = np.unique(data[layer == k], return_counts=True)
            ours[int(k) - 1] = dict(zip(values.tolist(), counts.tolist(), strict=True))
    theirs = rasterstats.zonal_stats(list(geoms), str(path), categorical=True, all_touched=all_touched, nodata=255)
    for k, index in enumerate(subset.indices):
        expected = {int(v): int(n) for v, n in theirs[index].items()}
        assert ours[k] == expected, f"zone {index}"
    assert sum(sum(c.values()) for c in ours.values()) > 500


# --- reading zone files ---------------------------------------------------------------------------------------

AWKWARD_IDS = ["field, north", 'the "big" one', "Ærø-mark 7", "ñandú/β", "plain"]


def _write(path: Path, geoms: list[Any], crs: str, **fields: list[Any]) -> Path:
    from pyogrio import raw

    driver = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".shp": "ESRI Shapefile"}[path.suffix]
    raw.write(
        str(path),
        geometry=shapely.to_wkb(np.array(geoms, dtype=object)),
        field_data=[np.array(v, dtype=object) for v in fields.values()],
        fields=list(fields),
        geometry_type="Unknown",
        crs=crs,
        driver=driver,
    )
    return path


def _squares(n: int) -> list[Any]:
    return [shapely.box(600000 + 100 * i, 5600000, 600090 + 100 * i, 5600090) for i in range(n)]


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp", ".parquet"])
def test_every_format_keeps_awkward_ids_and_the_declared_crs(tmp_path: Path, suffix: str) -> None:
    geoms = _squares(len(AWKWARD_IDS))
    path = tmp_path / f"zones{suffix}"
    if suffix == ".parquet":
        geopandas = pytest.importorskip("geopandas", reason="geopandas not installed")
        geopandas.GeoDataFrame({"name": AWKWARD_IDS}, geometry=geoms, crs=UTM31).to_parquet(path)
    else:
        _write(path, geoms, UTM31, name=AWKWARD_IDS, n=list(range(len(geoms))))
    zones = load_zones(path, id_field="name")
    assert zones.ids == AWKWARD_IDS
    assert shapely.equals(zones.geometries, np.array(geoms, dtype=object)).all()
    assert "32631" in zones.crs


def test_default_ids_are_feature_ids(tmp_path: Path) -> None:
    geoms = _squares(3)
    features = [
        {"type": "Feature", "id": fid, "properties": {}, "geometry": shapely.geometry.mapping(g)}
        for fid, g in zip(["a,1", "b", 'c"'], geoms, strict=True)
    ]
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32631"}}
    text_ids = tmp_path / "text.geojson"
    text_ids.write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": features}))
    assert load_zones(text_ids).ids == ["a,1", "b", 'c"']
    for feature, fid in zip(features, [10, 20, 30], strict=True):
        feature["id"] = fid
    int_ids = tmp_path / "int.geojson"
    int_ids.write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": features}))
    assert load_zones(int_ids).ids == ["10", "20", "30"]
    gpkg = _write(tmp_path / "z.gpkg", geoms, UTM31, name=["x", "y", "z"])
    assert load_zones(gpkg).ids == ["1", "2", "3"]  # GeoPackage FIDs start at 1
    shp = _write(tmp_path / "z.shp", geoms, UTM31, name=["x", "y", "z"])
    assert load_zones(shp).ids == ["0", "1", "2"]  # a Shapefile's FID is its index


@pytest.mark.skipif(shutil.which("ogr2ogr") is None, reason="ogr2ogr (Debian gdal-bin) not installed")
@pytest.mark.parametrize("driver,suffix", [("GPKG", ".gpkg"), ("ESRI Shapefile", ".shp"), ("GeoJSON", ".geojson")])
def test_files_written_by_ogr2ogr(tmp_path: Path, driver: str, suffix: str) -> None:
    source = _write(tmp_path / "src.gpkg", _squares(5), "EPSG:32631", name=AWKWARD_IDS)
    target = tmp_path / f"out{suffix}"
    # Reprojected by GDAL itself: the zones come back in the CRS the file declares.
    subprocess.run(
        ["ogr2ogr", "-f", driver, "-t_srs", "EPSG:3035", "-lco", "ENCODING=UTF-8", str(target), str(source)]
        if suffix == ".shp"
        else ["ogr2ogr", "-f", driver, "-t_srs", "EPSG:3035", str(target), str(source)],
        check=True,
        capture_output=True,
    )
    zones = load_zones(target, id_field="name")
    assert zones.ids == AWKWARD_IDS
    assert "3035" in zones.crs
    back = Transformer.from_crs("EPSG:3035", UTM31, always_xy=True)
    centroid = shapely.get_coordinates(shapely.centroid(zones.geometries[0]))[0]
    assert np.allclose(back.transform(*centroid), (600045, 5600045), atol=0.5)


def test_layer_is_chosen_by_name(tmp_path: Path) -> None:
    from pyogrio import raw

    path = _write(tmp_path / "z.gpkg", _squares(2), UTM31, name=["a", "b"])
    raw.write(
        str(path),
        geometry=shapely.to_wkb(np.array(_squares(3), dtype=object)),
        field_data=[np.array(["p", "q", "r"], dtype=object)],
        fields=["name"],
        geometry_type="Polygon",
        crs=UTM31,
        driver="GPKG",
        layer="second",
        append=False,
    )
    assert load_zones(path, id_field="name", layer="second").ids == ["p", "q", "r"]
    with pytest.raises(InvalidZones, match="nope"):
        load_zones(path, layer="nope")


def test_duplicate_ids_are_an_error_naming_them(tmp_path: Path) -> None:
    path = _write(tmp_path / "z.gpkg", _squares(5), UTM31, name=["a", "b,1", "a", "b,1", "c"])
    with pytest.raises(InvalidZones, match=r"2 duplicate zone id\(s\).*'a', 'b,1'") as err:
        load_zones(path, id_field="name")
    assert err.value.exit_code == 2 and isinstance(err.value, UsageError)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: p / "missing.gpkg", "cannot read zones"),
        (lambda p: (p / "junk.geojson").write_text("{not json") and p / "junk.geojson", "cannot read zones"),
        (lambda p: _write(p / "z.gpkg", _squares(2), UTM31, name=["a", "b"]), "'nope' is not a field"),
    ],
)
def test_unreadable_files_and_bad_id_fields_are_one_line_errors(tmp_path: Path, make: Any, message: str) -> None:
    with pytest.raises(InvalidZones, match=message) as err:
        load_zones(make(tmp_path), id_field="nope" if "field" in message else None)
    assert "\n" not in str(err.value)


def test_a_file_without_crs_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "z.shp", _squares(2), UTM31, name=["a", "b"])
    path.with_suffix(".prj").unlink()
    with pytest.raises(InvalidZones, match="declares no CRS"):
        load_zones(path)


def test_empty_id_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "z.gpkg", _squares(2), UTM31, name=["a", None])
    with pytest.raises(InvalidZones, match="empty for 1 feature"):
        load_zones(path, id_field="name")


def test_bad_geometries_are_repaired_or_reported_per_zone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bowtie = shapely.Polygon([(600000, 5600000), (600100, 5600100), (600100, 5600000), (600000, 5600100)])
    line = shapely.LineString([(600000, 5600000), (600100, 5600100)])
    mixed = shapely.GeometryCollection([shapely.box(600000, 5600000, 600050, 5600050), line])
    good = shapely.box(600200, 5600000, 600300, 5600100)
    path = tmp_path / "z.geojson"
    geoms = [bowtie, line, mixed, good, None]
    features = [
        {"type": "Feature", "properties": {"name": n}, "geometry": None if g is None else shapely.geometry.mapping(g)}
        for n, g in zip(["bow", "line", "mixed", "good", "none"], geoms, strict=True)
    ]
    crs = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32631"}}
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": crs, "features": features}))
    zones = load_zones(path, id_field="name")
    assert zones.ids == ["bow", "line", "mixed", "good", "none"]  # every zone is kept
    problems = {p.zone_id: p.message for p in zones.problems}
    assert set(problems) == {"bow", "line", "mixed", "none"}
    assert "repaired" in problems["bow"] and "Self-intersection" in problems["bow"]
    assert shapely.area(zones.geometries[0]) == pytest.approx(5000)  # both triangles of the bow tie
    assert zones.geometries[1].is_empty and "not polygonal" in problems["line"]
    assert shapely.equals(zones.geometries[2], shapely.box(600000, 5600000, 600050, 5600050))
    assert zones.geometries[4].is_empty and "no geometry" in problems["none"]
    assert all(shapely.is_valid(zones.geometries))
    assert "zone 'bow'" in caplog.text
    subset = zones.for_raster(UTM31, (600000, 5599900, 600400, 5600200))
    layers = label_layers(subset, Affine(10, 0, 600000, 0, -10, 5600200), (30, 40))
    assert sum(int((layer > 0).sum()) for layer in layers) == 50 + 25 + 100


# --- demo parcels ---------------------------------------------------------------------------------------------


def test_parcels_are_deterministic_adjacent_fields_of_half_to_twenty_hectares(tmp_path: Path) -> None:
    bounds = (600000.0, 5590200.0, 709800.0, 5700000.0)
    path = make_parcels(bounds, UTM31, 400, seed=9, path=tmp_path / "p.gpkg")
    again = make_parcels(bounds, UTM31, 400, seed=9, path=tmp_path / "q.geojson")
    zones, other = load_zones(path, id_field="parcel_id"), load_zones(again, id_field="parcel_id")
    assert len(zones) == 400 and zones.ids[0] == "P000001" and zones.ids == other.ids
    assert shapely.equals_exact(zones.geometries, other.geometries, tolerance=1e-6).all()
    area = shapely.area(zones.geometries) / 10_000
    assert area.min() >= 0.5 and area.max() <= 20
    assert shapely.is_valid(zones.geometries).all()
    left, right = zones.tree.query(zones.geometries, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(zones.geometries[left[pairs]], zones.geometries[right[pairs]]))
    assert np.all(overlap < 1e-6)  # fields touch, never overlap
    shared = shapely.length(shapely.intersection(zones.geometries[left[pairs]], zones.geometries[right[pairs]]))
    neighbours = np.unique(np.concatenate([left[pairs][shared > 1], right[pairs][shared > 1]]))
    assert len(neighbours) > 0.95 * len(zones)  # fields share edges with neighbours
    parquet = load_zones(make_parcels(bounds, UTM31, 400, seed=9, path=tmp_path / "p.parquet"))
    assert parquet.ids[:3] == ["0", "1", "2"]  # GeoParquet without an id field: the row index
    assert shapely.equals_exact(parquet.geometries, zones.geometries, tolerance=1e-6).all()
    with pytest.raises(UsageError, match="unknown vector format"):
        make_parcels(bounds, UTM31, 10, seed=9, path=tmp_path / "p.txt")
    different = parcel_geometries(bounds, 400, seed=10)
    assert not shapely.equals(different[0], zones.geometries[0])


def test_parcels_that_cannot_fit_are_an_error_not_an_endless_loop() -> None:
    from histcalc.errors import UsageError
    from histcalc.parcels import parcel_geometries

    with pytest.raises(UsageError, match="do not fit"):
        parcel_geometries((0.0, 0.0, 2000.0, 2000.0), 500, 1)
