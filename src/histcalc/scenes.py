"""Scene selection: the only module that reads catalogs (STAC API, static STAC, directories).

Whatever the source, the result is a list of small frozen :class:`Scene` records, sorted by
date and id, that the planner turns into tasks.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from histcalc.aoi import BBox
from histcalc.dates import parse_date, parse_interval  # noqa: F401  (re-exported: they lived here)
from histcalc.errors import CatalogError, InvalidDate, NoScenesFound, UsageError

log = logging.getLogger(__name__)

TERRASCOPE_STAC_API = "https://stac.terrascope.be/"
HrefMode = Literal["auto", "local", "remote"]
_LOCAL_KEYS = ("local", "MEP")  # Terrascope's alternate asset keys for the mounted path
TIFF_SUFFIXES = (".tif", ".tiff", ".TIF", ".TIFF")


@dataclass(frozen=True)
class Query:
    """What to select: a catalog, a collection, inclusive UTC days and an optional lon/lat box."""

    catalog: str = TERRASCOPE_STAC_API
    collection: str | None = "terrascope-s2-ndvi-v2"
    start: date | None = None
    end: date | None = None
    bbox: BBox | None = None
    asset: str = "NDVI"
    href_mode: HrefMode = "auto"
    filter: str | None = None  # CQL2 text, or CQL2-JSON when it starts with "{" (STAC APIs only)
    pattern: str | None = None  # directories: a glob over file names that replaces the asset selection

    def cql2(self) -> str | dict[str, Any] | None:
        """The filter as pystac-client takes it: CQL2 text, or a parsed CQL2-JSON document."""
        text = (self.filter or "").strip()
        if not text:
            return None
        if not text.startswith("{"):
            return text
        try:
            parsed: dict[str, Any] = json.loads(text)
        except ValueError as exc:
            raise UsageError(f"--filter looks like CQL2-JSON but is not valid JSON: {exc}") from exc
        return parsed

    def __post_init__(self) -> None:
        if self.start and self.end and self.end < self.start:
            raise InvalidDate(f"--end-date {self.end} is before --start-date {self.start}")

    def to_dict(self) -> dict[str, Any]:
        from histcalc.redact import safe_url

        return {
            "catalog": safe_url(self.catalog),  # no credentials or signed query strings in outputs
            "collection": self.collection,
            "start_date": self.start.isoformat() if self.start else None,
            "end_date": self.end.isoformat() if self.end else None,
            "bbox": list(self.bbox) if self.bbox else None,
            "asset": self.asset,
            "href_mode": self.href_mode,
            "filter": self.filter,
            "pattern": self.pattern,
        }


@dataclass(frozen=True)
class Scene:
    """One raster file to count, with what the catalog says about its values."""

    id: str
    href: str
    day: date | None = None
    collection: str | None = None
    bbox: BBox | None = None
    scale: float | None = None
    offset: float | None = None
    nodata: float | None = None
    dtype: str | None = None
    tile: str | None = None
    updated: str | None = None  # the item's `updated` property: when its files were last (re)processed
    acquired: str | None = None  # "platform datetime" from the catalog: the acquisition of --overlaps once
    version: str | None = None  # processing baseline or version: the latest copy of a tile counts
    extra_hrefs: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


def find_scenes(query: Query, headers: Mapping[str, str] | None = None) -> list[Scene]:
    """Scenes matching ``query``; NoScenesFound when there are none. ``headers``: for a STAC API's requests."""
    source = query.catalog
    if is_stac_api(source):
        from histcalc.stac_api import search_items

        if not (query.start and query.end):
            raise InvalidDate(
                "a STAC API search needs a first and a last day: --start-date and --end-date, or --datetime A/B"
            )
        items: Iterable[Any] = search_items(
            source, query.collection or "", query.start, query.end, query.bbox, filter=query.cql2(), headers=headers
        )
        scenes = _scenes_from_items(items, query)
    elif is_tiff(source):
        from histcalc.directory import scene_from_file

        scenes = scene_from_file(source, query)
    elif not _is_url(source) and Path(source).is_dir() and not (Path(source) / "catalog.json").exists():
        from histcalc.directory import scenes_from_directory

        scenes = scenes_from_directory(Path(source), query)
    else:
        scenes = _scenes_from_static_catalog(source, query)
    if not scenes:
        raise NoScenesFound(f"no scenes match {_describe(query)}")
    scenes.sort(key=lambda s: (s.day or date.min, s.id))
    log.info("selected %d scene(s) from %s", len(scenes), source)
    return scenes


def _scenes_from_static_catalog(source: str, query: Query) -> list[Scene]:
    import pystac

    path = source
    if not _is_url(source) and Path(source).is_dir():
        path = str(Path(source) / "catalog.json")
    if not _is_url(path) and not Path(path).exists():
        raise CatalogError(f"catalog {source} does not exist")
    try:
        obj = pystac.read_file(path)
    except Exception as exc:  # pystac raises many types for non-STAC JSON
        raise CatalogError(_unreadable(source, exc)) from exc
    items = _items_of(obj, source)
    return _scenes_from_items(items, query)


def _items_of(obj: Any, source: str) -> Iterable[Any]:
    import pystac

    if isinstance(obj, pystac.Item):
        return [obj]
    if isinstance(obj, pystac.ItemCollection):
        return list(obj)
    if isinstance(obj, pystac.Catalog):  # Collection is a Catalog
        return list(obj.get_items(recursive=True))
    raise CatalogError(f"{source} is a STAC {type(obj).__name__}, not a catalog, collection or item")


def _scenes_from_items(items: Iterable[Any], query: Query) -> list[Scene]:
    """Scenes of the matching items; items without the asset are named once, with the keys they have."""
    scenes, lacking, keys = [], [], set()
    for item in items:
        scene = _scene_from_item(item, query)
        if scene is None and _asset_key(item, query.asset) is None and _item_matches(item, query):
            lacking.append(item.id)
            keys.update(item.assets)
        elif scene is not None:
            scenes.append(scene)
    if lacking:
        have = ", ".join(sorted(keys)) or "none"
        if not scenes:
            raise UsageError(f"no selected item has the asset {query.asset!r} (--asset); their assets: {have}")
        log.warning(
            "%d item(s) have no asset %r and were skipped (e.g. %s; their assets: %s)",
            len(lacking),
            query.asset,
            lacking[0],
            have,
        )
    return scenes


def _asset_key(item: Any, wanted: str) -> str | None:
    """The item's key for asset ``wanted``: exact, else the one key that matches ignoring case."""
    if wanted in item.assets:
        return wanted
    folded = [k for k in item.assets if k.lower() == wanted.lower()]
    return folded[0] if len(folded) == 1 else None


def _item_matches(item: Any, query: Query) -> bool:
    if query.collection and item.collection_id and item.collection_id != query.collection:
        return False
    return day_matches(_item_day(item), query) and bbox_matches(item.bbox, query.bbox)


def _scene_from_item(item: Any, query: Query) -> Scene | None:
    """A Scene for a pystac Item when it matches the query's collection, days and bbox."""
    if query.collection and item.collection_id and item.collection_id != query.collection:
        return None
    day = _item_day(item)
    if not day_matches(day, query) or not bbox_matches(item.bbox, query.bbox):
        return None
    key = _asset_key(item, query.asset)
    if key is None:
        return None
    asset = item.assets[key]
    band = _raster_band(asset)
    extra = {k: _choose_href(a, query.href_mode) for k, a in item.assets.items() if k != key}
    return Scene(
        id=item.id,
        href=_choose_href(asset, query.href_mode),
        day=day,
        collection=item.collection_id,
        bbox=tuple(item.bbox) if item.bbox else None,
        scale=_opt_float(band.get("scale")),
        offset=_opt_float(band.get("offset")),
        nodata=_opt_float(band.get("nodata")),
        dtype=band.get("data_type"),
        tile=_tile_of(item),
        updated=_text_or_none(item.properties.get("updated")),
        acquired=_acquired_of(item),
        version=_version_of(item),
        extra_hrefs=extra,
    )


def _tile_of(item: Any) -> str | None:
    props = item.properties
    tile = props.get("tileId") or props.get("s2:mgrs_tile") or props.get("grid:code")
    if not tile and props.get("mgrs:utm_zone") and props.get("mgrs:grid_square"):  # the MGRS extension
        tile = f"{int(props['mgrs:utm_zone']):02d}{props.get('mgrs:latitude_band', '')}{props['mgrs:grid_square']}"
    return str(tile).removeprefix("MGRS-") if tile else None


def _acquired_of(item: Any) -> str | None:
    platform, when = item.properties.get("platform"), item.properties.get("datetime")
    return f"{platform} {when}" if platform and when else None


def _version_of(item: Any) -> str | None:
    props = item.properties
    version = props.get("s2:processing_baseline") or props.get("processing:version")
    return str(version) if version else None


def _choose_href(asset: Any, mode: HrefMode) -> str:
    """The mounted path (``alternate.local.href`` or ``MEP``) or the main href, per ``mode``."""
    alternates = asset.extra_fields.get("alternate") or {}
    local = next((alternates[k]["href"] for k in _LOCAL_KEYS if isinstance(alternates.get(k), dict)), None)
    remote: str = asset.get_absolute_href() or asset.href
    if mode == "remote" or local is None:
        if mode == "local":
            raise CatalogError(f"asset {remote} has no alternate.local.href (--href-mode local)")
        return remote
    if mode == "local" or os.path.exists(local):
        return str(local)
    return remote


def _raster_band(asset: Any) -> dict[str, Any]:
    bands = asset.extra_fields.get("raster:bands") or []
    return dict(bands[0]) if bands and isinstance(bands[0], dict) else {}


def _item_day(item: Any) -> date | None:
    when: datetime | None = item.datetime or item.common_metadata.start_datetime
    if when is None:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(UTC)
    return when.date()


def is_tiff(source: str) -> bool:
    """A path or URL naming one GeoTIFF (query strings of signed URLs ignored)."""
    return source.split("?", 1)[0].endswith(TIFF_SUFFIXES)


def day_matches(day: date | None, query: Query) -> bool:
    if day is None:
        return query.start is None and query.end is None
    return (query.start is None or day >= query.start) and (query.end is None or day <= query.end)


def bbox_matches(bbox: Any, wanted: BBox | None) -> bool:
    if wanted is None or bbox is None:
        return True
    w, s, e, n = (float(v) for v in list(bbox)[:4])
    return not (e < wanted[0] or w > wanted[2] or n < wanted[1] or s > wanted[3])


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def is_stac_api(catalog: str) -> bool:
    """A URL that is not a JSON document is searched as a STAC API."""
    return _is_url(catalog) and not catalog.lower().split("?", 1)[0].endswith(".json") and not is_tiff(catalog)


def _is_url(text: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text) is not None


def _unreadable(source: str, exc: BaseException) -> str:
    """One line for a static catalog that could not be read: unreachable, HTTP error, or not STAC."""
    from urllib.error import HTTPError, URLError

    from histcalc.redact import safe_url

    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, (URLError, ConnectionError, TimeoutError)):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, HTTPError):
        return f"static catalog {safe_url(source)}: HTTP {cause.code} {cause.reason}"
    if cause is not None and _is_url(source):
        reason = getattr(cause, "reason", None) or cause
        text = getattr(reason, "strerror", None) or str(reason)
        return f"static catalog {safe_url(source)}: cannot connect ({text})"
    return f"{source} is not a readable STAC catalog: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _describe(query: Query) -> str:
    from histcalc.redact import safe_url

    parts = [f"catalog {safe_url(query.catalog)}"]
    stac = _is_url(query.catalog) or query.catalog.lower().endswith(".json")
    if query.collection and stac:
        parts.append(f"collection {query.collection}")
    if not stac:
        parts.append(f"asset {query.asset}" if not query.pattern else f"pattern {query.pattern}")
    if query.start or query.end:
        parts.append(f"dates {query.start or 'any'} to {query.end or 'any'}")
    if query.bbox:
        parts.append("bbox " + ",".join(f"{v:g}" for v in query.bbox))
    return ", ".join(parts)
