"""Raster grids (CRS and bounds) read from the files' headers on the driver, once per file and job.

Zonal planning (which zones meet a file) and ``--overlaps once`` (which part of its footprint a file owns)
both need each file's grid; a job that does both reads each header once. Remote headers are read in
threads (one or two requests each); local ones in this thread: they are quick, and GDAL used from threads
can leave the local engine's forked workers deadlocked (remote jobs get a forkserver instead of fork).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from histcalc.errors import RasterReadError
from histcalc.gdalenv import is_remote

BBox = tuple[float, float, float, float]
Grid = tuple[Any, BBox]
"""A rasterio CRS and the bounds of the pixel grid in it."""
_THREADS = 8


class Grids:
    """The grids of a job's files, read on first request (``read``) and kept for the job."""

    def __init__(self, gdal: Mapping[str, str]) -> None:
        self._gdal = gdal
        self._known: dict[str, Grid | RasterReadError] = {}

    def read(self, hrefs: Iterable[str]) -> None:
        """Read the headers of those of ``hrefs`` not read yet."""
        todo = list(dict.fromkeys(h for h in hrefs if h not in self._known))
        if any(is_remote(h) for h in todo):
            with ThreadPoolExecutor(_THREADS) as pool:
                self._known.update(zip(todo, pool.map(self._header, todo), strict=True))
        else:
            self._known.update((h, self._header(h)) for h in todo)

    def of(self, href: str) -> Grid:
        """The grid of ``href`` (its header read now if it was not); RasterReadError when it cannot be read."""
        if href not in self._known:
            self.read([href])
        found = self._known[href]
        if isinstance(found, RasterReadError):
            raise found
        return found

    def _header(self, href: str) -> Grid | RasterReadError:
        from histcalc.raster import grid_of

        try:
            crs, bounds = grid_of(href, self._gdal)
        except RasterReadError as exc:  # the file fails by name when its task reads it
            return exc
        west, south, east, north = (float(v) for v in bounds)
        return crs, (west, south, east, north)
