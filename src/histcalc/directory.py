"""Directories of GeoTIFFs (and single files) as catalogs: which files count, their days and siblings.

A directory holds files of several assets side by side (Terrascope: ``..._NDVI_10M_V200.tif`` beside
``..._SCENECLASSIFICATION_20M_V200.tif``). The asset is a word of the file name; ``--pattern`` selects
by glob instead. Other assets of the same product become the scene's ``extra_hrefs`` (``--mask-asset``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from histcalc.aoi import BBox
from histcalc.errors import NoScenesFound, UsageError
from histcalc.scenes import TIFF_SUFFIXES, Query, Scene, bbox_matches, day_matches

log = logging.getLogger(__name__)

_DATE_TOKEN = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?:T\d{6})?(?!\d)")


def scenes_from_directory(root: Path, query: Query) -> list[Scene]:
    """The selected GeoTIFFs under ``root`` whose name's day and header footprint match ``query``."""
    from histcalc.raster import inspect

    tiffs = sorted(p for p in root.rglob("*") if p.suffix in TIFF_SUFFIXES and p.is_file())
    chosen = select_files(tiffs, root, query)
    products = _products(tiffs)
    scenes = []
    for path in chosen:
        day = _day_from_name(path.name)
        if not day_matches(day, query):
            continue
        bbox: BBox | None = None
        if query.bbox is not None:
            try:
                bbox = inspect(str(path)).lonlat_bounds
            except Exception as exc:  # unreadable: keep it, the task reports it by name
                log.debug("cannot read header of %s: %s", path, exc)
            if not bbox_matches(bbox, query.bbox):
                continue
        scenes.append(Scene(id=path.stem, href=str(path), day=day, bbox=bbox, extra_hrefs=_siblings(path, products)))
    return scenes


def scene_from_file(source: str, query: Query) -> list[Scene]:
    """A single GeoTIFF (path or URL) given as the catalog: one scene, dated by its name if it can be."""
    name = source.rstrip("/").rsplit("/", 1)[-1]
    day = _day_from_name(name)
    return [Scene(id=name.rsplit(".", 1)[0], href=source, day=day)] if day_matches(day, query) else []


def select_files(tiffs: list[Path], root: Path, query: Query) -> list[Path]:
    """The GeoTIFFs of a directory to count: those matching ``--pattern``, else those of ``--asset``.

    An asset is a word of the file name between separators (``_NDVI_`` in
    ``S2A_20240503T104621_31UFS_NDVI_10M_V200.tif``). Files named by another asset (an upper-case
    word such as ``SCENECLASSIFICATION``) are not counted; files that name no asset at all are.
    """
    if query.pattern:
        return _by_pattern(tiffs, root, query.pattern)
    wanted = query.asset.upper()
    mine = {p for p in tiffs if wanted in _tokens(p)}
    other = {p: asset_words(p) for p in tiffs if p not in mine and asset_words(p)}
    if not mine and other:
        found = _asset_summary(other.values())
        raise UsageError(
            f"no file under {root} has the asset {query.asset!r} in its name (token _{query.asset}_); "
            f"assets found: {found}; choose one with --asset, or select files with --pattern GLOB"
        )
    chosen = [p for p in tiffs if p not in other]
    if other:
        log.info(
            "directory %s: %d GeoTIFF(s) of asset %s kept, %d of other assets left out (%s)",
            root,
            len(chosen),
            query.asset,
            len(other),
            _asset_summary(other.values()),
        )
    elif not mine and chosen:
        log.info("directory %s: no file name carries an asset word, all %d GeoTIFF(s) counted", root, len(chosen))
    return chosen


def _by_pattern(tiffs: list[Path], root: Path, pattern: str) -> list[Path]:
    """Files whose name (or path below ``root`` when the pattern has a ``/``) matches the glob."""
    from fnmatch import fnmatchcase

    def key(p: Path) -> str:
        return p.relative_to(root).as_posix() if "/" in pattern else p.name

    chosen = [p for p in tiffs if fnmatchcase(key(p), pattern)]
    log.info("directory %s: %d of %d GeoTIFF(s) match --pattern %s", root, len(chosen), len(tiffs), pattern)
    if not chosen and tiffs:
        found = _asset_summary(asset_words(p) for p in tiffs) or "none named"
        raise NoScenesFound(
            f"no GeoTIFF under {root} matches --pattern {pattern!r} ({len(tiffs)} found; assets: {found})"
        )
    return chosen


_ASSET_WORD = re.compile(r"^[A-Z][A-Z]+$")
_RESOLUTION = re.compile(r"^\d+M$", re.IGNORECASE)


def _tokens(path: Path) -> list[str]:
    return [t.upper() for t in re.split(r"[_.\-]", path.stem) if t]


def asset_words(path: Path) -> set[str]:
    """The asset names a file name carries: its upper-case words (NDVI, SCENECLASSIFICATION, ...)."""
    return {t for t in re.split(r"[_.\-]", path.stem) if _ASSET_WORD.match(t)}


def _asset_summary(words: Iterable[set[str]]) -> str:
    from collections import Counter

    counts = Counter(w for ws in words for w in ws)
    return ", ".join(f"{w} ({n})" for w, n in sorted(counts.items()))


def _products(tiffs: list[Path]) -> dict[tuple[Path, tuple[str, ...]], list[Path]]:
    """Files grouped by folder and product: names that differ only by asset word and resolution
    (``..._SCENECLASSIFICATION_20M_V200.tif`` beside ``..._NDVI_10M_V200.tif``)."""
    groups: dict[tuple[Path, tuple[str, ...]], list[Path]] = {}
    for path in tiffs:
        groups.setdefault((path.parent, _product_key(path)), []).append(path)
    return groups


def _siblings(path: Path, products: dict[tuple[Path, tuple[str, ...]], list[Path]]) -> dict[str, str]:
    """The other assets of ``path``'s product, by asset word (what ``--mask-asset`` names)."""
    out: dict[str, str] = {}
    for other in products.get((path.parent, _product_key(path)), []):
        for word in sorted(asset_words(other) - asset_words(path)):
            out.setdefault(word, str(other))
    return out


def _product_key(path: Path) -> tuple[str, ...]:
    parts = re.split(r"[_.\-]", path.stem)
    return tuple(t for t in parts if t and not _ASSET_WORD.match(t) and not _RESOLUTION.match(t))


def _day_from_name(name: str) -> date | None:
    for match in _DATE_TOKEN.finditer(name):
        try:
            return date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            continue
    return None
