"""The fast paths of reading and cutting zones give what the plain ways give.

Each check compares with an independent way of getting the same thing: shapely's own ``to_ragged_array``
for the flat arrays, shapely's ``intersects`` on every zone for the zones meeting a raster, pyogrio's
feature-by-feature reader for the Arrow reader, the per-value id text for the vectorised one.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
import shapely.affinity

from histcalc.errors import AccountingError
from histcalc.parcels import parcel_geometries
from histcalc.zone_files import _id_text, _id_texts, _read_arrow, _read_raw, load_zones
from histcalc.zones import Zones, flatten

UTM31 = "EPSG:32631"


def _with_holes(rng: np.random.Generator, n: int) -> list[Any]:
    """Random polygons, some with one or two holes, some multi-part (a part with a hole too)."""
    out = []
    for _ in range(n):
        x, y = rng.uniform(0, 1000, 2)
        outer = shapely.box(x, y, x + 50, y + 50)
        holes = [shapely.box(x + 5 + 20 * k, y + 5, x + 15 + 20 * k, y + 15) for k in range(int(rng.integers(0, 3)))]
        polygon = shapely.difference(outer, shapely.union_all(holes)) if holes else outer
        if rng.random() < 0.3:
            polygon = shapely.MultiPolygon([polygon, shapely.box(x + 60, y, x + 70, y + 10)])
        out.append(polygon)
    return out


def _ragged(geoms: np.ndarray) -> tuple[Any, ...]:
    """shapely.to_ragged_array in the MultiPolygon layout (a Polygon is one part), offsets as int64."""
    kind, coords, offsets = shapely.to_ragged_array(geoms)
    if kind == shapely.GeometryType.POLYGON:
        offsets = (*offsets, np.arange(len(geoms) + 1))
    return (coords, *(np.asarray(o, dtype=np.int64) for o in offsets))


EMPTY, EMPTY_MULTI = shapely.from_wkt("POLYGON EMPTY"), shapely.from_wkt("MULTIPOLYGON EMPTY")


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: _with_holes(rng, 200),
        lambda rng: [g for g in _with_holes(rng, 50) if g.geom_type == "Polygon"],  # Polygons only
        lambda rng: [EMPTY, *_with_holes(rng, 20), EMPTY_MULTI, EMPTY],  # empty zones keep their place
        lambda rng: [shapely.MultiPolygon([g]) for g in _with_holes(rng, 20) if g.geom_type == "Polygon"],
        lambda rng: list(parcel_geometries((600000, 5600000, 610000, 5610000), 500, 3)),
    ],
    ids=["mixed", "polygons", "empties", "single-part-multipolygons", "parcels"],
)
def test_flat_arrays_equal_shapely_ragged_arrays(make: Any) -> None:
    geoms = np.array(make(np.random.default_rng(1)), dtype=object)
    expected = _ragged(geoms)
    got = flatten(geoms)
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert all(a.dtype == np.int64 for a in got[1:])


def test_flattening_anything_but_polygons_is_refused() -> None:
    line = shapely.LineString([(0, 0), (1, 1)])
    with pytest.raises(AccountingError, match="only \\(multi\\)polygons"):
        flatten(np.array([shapely.box(0, 0, 1, 1), line], dtype=object))


def test_zones_meeting_a_raster_are_those_shapely_says_intersect() -> None:
    bounds = (600000.0, 5600000.0, 600100.0, 5600100.0)
    box = shapely.box(*bounds)
    # An L whose bounding box covers the raster's corner but that stays outside it.
    corners = [(600110, 5599890), (600110, 5600200), (600120, 5600200), (600120, 5599880), (599890, 5599880)]
    around = shapely.Polygon([*corners, (599890, 5599890)])
    geoms = [
        shapely.box(600010, 5600010, 600020, 5600020),  # inside
        shapely.box(600090, 5600090, 600150, 5600150),  # across the corner
        shapely.box(600100, 5600000, 600150, 5600050),  # touching the right side only
        shapely.box(600200, 5600000, 600250, 5600050),  # outside
        around,
        EMPTY,
        shapely.box(599000, 5599000, 601000, 5601000),  # around the whole raster
        *_with_holes(np.random.default_rng(5), 300),
    ]
    small = [shapely.affinity.scale(g, 0.2, 0.2, origin=(0, 0)) for g in geoms[7:]]  # 0 to 214 m
    geoms[7:] = [shapely.affinity.translate(g, 599950, 5599950) for g in small]
    zones = Zones([f"z{i}" for i in range(len(geoms))], np.array(geoms, dtype=object), UTM31, [])
    subset = zones.for_raster(UTM31, bounds)
    expected = np.flatnonzero(shapely.intersects(box, zones.geometries))
    np.testing.assert_array_equal(subset.indices, expected)
    assert {0, 1, 2, 6} <= set(subset.indices.tolist()) and not {3, 4, 5} & set(subset.indices.tolist())
    assert 10 < len(expected) < len(geoms) - 10  # the random ones fall on both sides


def _write_layer(path: Path, geoms: list[Any], **fields: Any) -> Path:
    from pyogrio import raw

    driver = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".shp": "ESRI Shapefile"}[path.suffix]
    raw.write(
        str(path),
        geometry=shapely.to_wkb(np.array(geoms, dtype=object), include_srid=False),
        field_data=list(fields.values()),
        fields=list(fields),
        geometry_type="Unknown",
        crs=UTM31,
        driver=driver,
    )
    return path


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".shp"])
@pytest.mark.parametrize("column", [None, "name", "number", "maybe", "day"])
def test_arrow_reader_reads_what_the_feature_reader_reads(tmp_path: Path, suffix: str, column: str | None) -> None:
    pytest.importorskip("pyarrow")
    rng = np.random.default_rng(2)
    geoms = [*_with_holes(rng, 6), None, shapely.force_3d(shapely.box(0, 0, 1, 1), 7.0)]
    n = len(geoms)
    fields: dict[str, Any] = {
        "name": np.array(["field, north", 'the "big" one', "Ærø-mark 7", "ñandú/β", "·", "x", "y", "z"], dtype=object),
        "number": np.arange(100, 100 + n, dtype=np.int64),
        "maybe": np.array([1.0, np.nan, 3.0, 4.5, 5.0, 6.0, 7.0, 8.0]),
        "day": np.array([datetime.date(2024, 5, d) for d in range(1, n + 1)], dtype="datetime64[D]"),
    }
    if suffix == ".shp":
        del fields["day"]  # a Shapefile date field is read back as text by GDAL: nothing more to compare
        if column == "day":
            pytest.skip("Shapefile: no date field")
    path = _write_layer(tmp_path / f"z{suffix}", geoms, **fields)
    ids_arrow, wkb_arrow = _read_arrow(path, None, column)
    ids_raw, wkb_raw = _read_raw(path, None, column)
    assert _id_texts(ids_arrow) == _id_texts(ids_raw)
    mine = shapely.force_2d(shapely.from_wkb(wkb_arrow))
    theirs = shapely.from_wkb(wkb_raw)
    both_missing = shapely.is_missing(mine) & shapely.is_missing(theirs)
    assert (shapely.equals_exact(mine, theirs, tolerance=0) | both_missing).all()
    if column != "maybe":  # (its empty id is an error) load_zones keeps 2D geometries, as force_2d did
        zones = load_zones(path, id_field=column)
        assert not shapely.has_z(zones.geometries).any()
        assert zones.ids == _id_texts(ids_raw)


@pytest.mark.parametrize(
    "values",
    [
        np.arange(-3, 5, dtype=np.int64),
        np.arange(3, dtype=np.uint16),
        np.array(["a", "b,1", "Ærø", ""], dtype=object),
        np.array(["a", None, "c"], dtype=object),
        np.array([1.0, 2.5, np.nan, 1e20]),
        np.array([b"caf\xc3\xa9", "x", 3, 4.0, None], dtype=object),
        np.array([], dtype=float),
        np.array([np.datetime64("2024-05-01")]),
    ],
)
def test_id_texts_equal_the_text_of_each_id(values: np.ndarray) -> None:
    assert _id_texts(values) == [_id_text(v) for v in np.asarray(values, dtype=object)]


def test_reading_zones_imports_neither_pandas_nor_geopandas_and_pyogrio_still_knows_them(tmp_path: Path) -> None:
    """pyogrio's import and pyarrow's ``to_numpy`` would import both (0.3-0.5 s of a one-date zonal job)."""
    import subprocess
    import sys

    pytest.importorskip("geopandas")
    path = _write_layer(tmp_path / "z.gpkg", _with_holes(np.random.default_rng(3), 5), name=np.array(list("abcde")))
    script = f"""
import sys
from histcalc.zone_files import load_zones
zones = load_zones({str(path)!r}, id_field="name")
assert zones.ids == list("abcde"), zones.ids
assert "pandas" not in sys.modules and "geopandas" not in sys.modules, "imported"
import pandas, geopandas, pyogrio
from packaging.version import Version
from pyogrio import _compat
assert _compat.HAS_GEOPANDAS
assert _compat.PANDAS_GE_20 == (Version(pandas.__version__) >= Version("2.0.0"))
assert sys.modules["pandas"] is pandas and isinstance(pandas.DataFrame(), pandas.DataFrame)
frame = pyogrio.read_dataframe({str(path)!r})
assert isinstance(frame, geopandas.GeoDataFrame) and frame["name"].tolist() == list("abcde")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
