"""Reading and validating zone files: the one way zones come in, as a ``histcalc.zones.Zones``.

``load_zones`` reads a vector file (GeoJSON, GeoPackage, Shapefile, FlatGeobuf: anything GDAL/OGR reads) with
pyogrio, through GDAL's Arrow stream when pyarrow is installed, and GeoParquet with geopandas. It takes the
ids from a field, the feature ids or the index (text, unique, none missing), repairs what geometry it can and
reports the rest per zone by id: every zone of the input is kept, an empty or unusable geometry simply counts
no pixel.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from histcalc import ogr
from histcalc.errors import InvalidZones
from histcalc.zones import ZoneProblem, Zones, polygonal_parts

log = logging.getLogger(__name__)


def load_zones(path: str | Path, id_field: str | None = None, layer: str | int | None = None) -> Zones:
    """Read zones from a vector file; ids from ``id_field``, else the feature id (FID), else the index.

    OGR formats (GeoJSON, GeoPackage, Shapefile, FlatGeobuf ...) are read with pyogrio, through GDAL's Arrow
    stream when pyarrow is installed; GeoParquet with geopandas (pyogrio's wheels carry no Parquet driver), the
    ``parquet`` extra.
    """
    reader = _read_geoparquet if str(path).lower().endswith((".parquet", ".geoparquet")) else _read_ogr
    crs, id_values, column, geoms = reader(path, id_field, layer)
    if crs is None:
        raise InvalidZones(f"zones file {path} declares no CRS (add one, e.g. with ogr2ogr -a_srs EPSG:4326)")
    ids = _ids(id_values, column, path)
    geoms, problems = _polygonal(geoms, ids)
    for problem in problems:
        log.warning("%s", problem)
    log.info("zones: %d read from %s (%s), %d with problems", len(ids), path, crs, len(problems))
    return Zones(ids, geoms, crs, problems)


_Read = tuple[str | None, Any, str | None, npt.NDArray[np.object_]]


def _read_ogr(path: str | Path, id_field: str | None, layer: str | int | None) -> _Read:
    import shapely

    try:
        info = ogr.pyogrio().read_info(str(path), layer=layer)
        column = _id_column(id_field, [str(f) for f in info["fields"]], str(info.get("driver", "")), path)
        values, wkb = _read_arrow(path, layer, column) if _has_pyarrow() else _read_raw(path, layer, column)
    except InvalidZones:
        raise
    except Exception as exc:  # pyogrio raises its own DataSourceError/DataLayerError, with GDAL's message
        raise InvalidZones(f"cannot read zones from {path}: {_first_line(exc)}") from None
    crs = None if info["crs"] is None else str(info["crs"])
    geoms = shapely.from_wkb(wkb, on_invalid="ignore")
    if len(geoms) and (shapely.get_coordinate_dimension(geoms) > 2).any():  # Arrow reads cannot force 2D
        geoms = shapely.force_2d(geoms)
    return crs, values, column, geoms


def _has_pyarrow() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def _read_raw(path: str | Path, layer: str | int | None, column: str | None) -> tuple[Any, Any]:
    """The ids (``column``'s values, else the FIDs) and WKB geometries, feature by feature (no pyarrow)."""
    raw = ogr.pyogrio().raw
    _, fids, wkb, values = raw.read(
        str(path), layer=layer, columns=[column] if column else [], return_fids=True, force_2d=True
    )
    return values[0] if column else fids, wkb


def _read_arrow(path: str | Path, layer: str | int | None, column: str | None) -> tuple[Any, Any]:
    """:func:`_read_raw` through GDAL's Arrow stream: a few times faster (no Python step per feature).

    Ids of other types than text and numbers (dates, say) are read as :func:`_read_raw` reads them, so that
    their text does not depend on the path taken.
    """
    import pyarrow

    raw = ogr.pyogrio().raw
    meta, table = raw.read_arrow(str(path), layer=layer, columns=[column] if column else [], return_fids=not column)
    if not meta["geometry_name"]:  # a layer without geometries: let the feature reader say what it says
        return _read_raw(path, layer, column)
    ids = table.column(column or meta["fid_column"])
    kind = ids.type
    if pyarrow.types.is_string(kind) or pyarrow.types.is_integer(kind) or pyarrow.types.is_floating(kind):
        values = _arrow_values(ids, plain=not pyarrow.types.is_string(kind) and ids.null_count == 0)
    else:  # dates, say: as the feature reader reads them
        values = raw.read(str(path), layer=layer, columns=[column], read_geometry=False)[3][0]
    return values, _arrow_values(table.column(meta["geometry_name"]), plain=False)


def _arrow_values(column: Any, plain: bool) -> npt.NDArray[Any]:
    """An Arrow column's values: numbers (``plain``) as a numpy array of their type, else as objects.

    Through Python lists: pyarrow's ``to_numpy`` imports pandas, when installed, on its first call (0.2 s).
    """
    return np.asarray(column.to_pylist()) if plain else np.array(column.to_pylist(), dtype=object)


def _read_geoparquet(path: str | Path, id_field: str | None, layer: str | int | None) -> _Read:
    import shapely

    try:
        import geopandas
    except ImportError:
        raise InvalidZones("reading GeoParquet zones needs geopandas: pip install 'histcalc[parquet]'") from None
    if layer is not None:
        raise InvalidZones(f"--zones-layer: a GeoParquet file has one layer ({path})")
    try:
        frame = geopandas.read_parquet(str(path))
    except Exception as exc:  # file missing, not Parquet, or no GeoParquet metadata
        raise InvalidZones(f"cannot read zones from {path}: {_first_line(exc)}") from None
    column = _id_column(id_field, [str(c) for c in frame.columns], "Parquet", path)
    values = frame[column].to_numpy(dtype=object) if column else frame.index.to_numpy(dtype=object)
    crs = None if frame.crs is None else str(frame.crs.to_string())
    geoms = shapely.force_2d(np.asarray(frame.geometry.array, dtype=object))
    return crs, values, column, geoms


def _id_column(id_field: str | None, fields: list[str], driver: str, path: str | Path) -> str | None:
    if id_field is not None:
        if id_field not in fields:
            raise InvalidZones(f"--zone-id {id_field!r} is not a field of {path} (fields: {', '.join(fields)})")
        return id_field
    # GDAL's GeoJSON driver turns string feature ids into an "id" field (integer ids become the FID).
    if driver.startswith("GeoJSON") and "id" in fields:
        return "id"
    return None


def _ids(values: Any, column: str | None, path: str | Path) -> list[str]:
    if values is None:
        raise InvalidZones(f"{path} has no feature ids: name an id field with --zone-id")
    ids = _id_texts(values)
    missing = [i for i, v in enumerate(ids) if v is None] if None in ids else []
    if missing:
        where = ", ".join(str(i) for i in missing[:5])
        raise InvalidZones(f"zone id field {column!r} is empty for {len(missing)} feature(s) of {path} (at {where})")
    duplicates = [k for k, n in Counter(ids).items() if n > 1] if len(set(ids)) < len(ids) else []
    if duplicates:
        shown = ", ".join(repr(d) for d in duplicates[:10]) + (" ..." if len(duplicates) > 10 else "")
        raise InvalidZones(f"{len(duplicates)} duplicate zone id(s) in {path}: {shown}")
    return cast("list[str]", ids)  # none is missing


def _id_texts(values: Any) -> list[str | None]:
    """Each id's text (None when missing); integers and plain strings without a Python call per id."""
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        return [str(v) for v in array.tolist()]
    if array.dtype == object:
        items = array.tolist()
        if all(type(v) is str for v in items):
            return items  # type: ignore[no-any-return]
    return [_id_text(v) for v in np.asarray(values, dtype=object)]


def _id_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # an integer field read with nulls comes back as float
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _polygonal(geoms: npt.NDArray[np.object_], ids: list[str]) -> tuple[npt.NDArray[np.object_], list[ZoneProblem]]:
    """Every geometry as a valid (multi)polygon, possibly empty; what had to change is reported per zone."""
    import shapely

    kind = shapely.get_type_id(geoms)  # -1 for a missing geometry
    fine = shapely.is_valid(geoms) & np.isin(kind, (3, 6)) & ~shapely.is_empty(geoms)
    out = geoms.copy()
    problems: list[ZoneProblem] = []
    for i in np.flatnonzero(~fine):  # the few that need looking at, one by one
        geom = geoms[i]
        if geom is None or geom.is_empty:
            out[i], message = shapely.from_wkt("POLYGON EMPTY"), "no geometry: the zone counts no pixel"
        else:
            out[i], message = _repair(geom)
        problems.append(ZoneProblem(ids[i], message))
    return out, problems


def _repair(geom: Any) -> tuple[Any, str]:
    import shapely

    reason = "" if geom.is_valid else shapely.is_valid_reason(geom)
    repaired = polygonal_parts(shapely.make_valid(geom) if reason else geom)
    if repaired.is_empty:
        what = f"invalid geometry ({reason})" if reason else f"{geom.geom_type} is not polygonal"
        return repaired, f"{what}: the zone counts no pixel"
    if reason:
        return repaired, f"invalid geometry ({reason}) repaired with make_valid, polygonal parts kept"
    return repaired, f"{geom.geom_type}: only its polygonal parts are kept"


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
