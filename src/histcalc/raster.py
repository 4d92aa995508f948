"""Raster reading: the only module that calls ``rasterio.open``.

A task reads one file (or one slice of its rows) in bands of whole block rows, clipped to the
AOI window, so memory stays bounded by one band whatever the tile size, and hands each window to the
task's :class:`~histcalc.task_counter.TaskCounter` (per DN for integers, mapped to the bins once per task).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from histcalc import aoi_masks, kernel, kernel_loading
from histcalc.aoi import AOI, BBox
from histcalc.bins import BinSpec
from histcalc.errors import AccountingError, RasterReadError
from histcalc.footprint import aoi_in_raster as _aoi_in_raster
from histcalc.footprint import lonlat_footprint
from histcalc.histogram import Histogram
from histcalc.owned import ownership, split_duplicates
from histcalc.task_counter import TaskCounter

if TYPE_CHECKING:
    from histcalc.zonal import ZoneTable
    from histcalc.zone_counter import ZoneCounter
    from histcalc.zones import ZoneSubset

# Rows per read: whole block rows, up to about this many pixels at once (~8 MB of uint8).
_BAND_PIXELS = 8 * 1024 * 1024


@dataclass(frozen=True)
class RasterInfo:
    """Header facts of one band, read without touching pixel data."""

    dtype: str
    nodata: float | None
    scale: float
    offset: float
    crs: str
    width: int
    height: int
    lonlat_bounds: BBox | None  # None: unknown (no CRS, or no point of the raster maps onto the Earth)
    count: int = 1


@dataclass(frozen=True)
class ReadSpec:
    """What to read from a file: band, value overrides, AOI and the part of its rows."""

    band: int = 1
    scale: float | None = None
    offset: float | None = None
    nodata: float | None = None
    aoi: AOI | None = None
    part: int = 0
    parts: int = 1
    mask_href: str | None = None
    mask_values: tuple[int, ...] = ()
    all_touched: bool = False
    owned: bytes | None = None  # --overlaps once: WKB of the region this file counts (None: all of it)
    cover: tuple[str, ...] = ()  # --overlaps once: the other halves of a split datastrip, in order
    cover_before: int = 0  # how many of them come before this file


@contextmanager
def opened(href: str, gdal: Mapping[str, str] | None = None) -> Iterator[Any]:
    """``rasterio.open`` under the captured GDAL settings, with failures as RasterReadError."""
    import rasterio
    from rasterio.errors import RasterioError

    from histcalc.gdalenv import for_href, rasterio_env

    with rasterio_env(for_href(gdal or {}, href)):
        try:
            src = rasterio.open(href)
        except (RasterioError, OSError) as exc:
            raise RasterReadError(f"{href}: {_one_line(exc)}") from exc
        with src:
            yield src


def inspect(href: str, band: int = 1, gdal: Mapping[str, str] | None = None) -> RasterInfo:
    """Header facts of ``href`` (dtype, nodata, scale/offset, CRS, size, lon/lat bounds)."""
    with opened(href, gdal) as src:
        _check_band(src, band, href)
        return RasterInfo(
            dtype=src.dtypes[band - 1],
            nodata=src.nodata,
            scale=float(src.scales[band - 1]),
            offset=float(src.offsets[band - 1]),
            crs=src.crs.to_string() if src.crs else "",
            width=src.width,
            height=src.height,
            lonlat_bounds=lonlat_footprint(src),
            count=src.count,
        )


def grid_of(href: str, gdal: Mapping[str, str] | None = None) -> tuple[Any, BBox]:
    """The CRS and bounds (in that CRS) of ``href``'s pixel grid, from its header."""
    with opened(href, gdal) as src:
        if src.crs is None:
            raise RasterReadError(f"{href}: has no CRS, so zones cannot be placed on it")
        return src.crs, tuple(src.bounds)


@dataclass(frozen=True)
class Extent:
    """What a job will read of one file: the AOI's pixel window, from the header alone."""

    pixels: int  # pixels in the AOI's window (0 when the AOI misses the file)
    file_pixels: int
    itemsize: int


def aoi_extent(href: str, aoi: AOI | None, band: int = 1, gdal: Mapping[str, str] | None = None) -> Extent:
    """The pixels of ``href`` inside the AOI's window (the whole file without an AOI); reads no pixel."""
    from rasterio.features import bounds as geometry_bounds

    with opened(href, gdal) as src:
        _check_band(src, band, href)
        full = src.width * src.height
        itemsize = np.dtype(src.dtypes[band - 1]).itemsize
        geometry = _aoi_in_raster(src, aoi)
        if aoi is None or geometry is None:
            return Extent(full if aoi is None else 0, full, itemsize)
        window = _pixel_window(src, geometry_bounds(geometry))
        return Extent(0 if window is None else int(window.width * window.height), full, itemsize)


def histogram_of(href: str, bins: BinSpec, spec: ReadSpec, gdal: Mapping[str, str] | None = None) -> Histogram:
    """Histogram of the valid pixels of ``href`` inside the AOI, for one part of its rows."""
    try:
        with opened(href, gdal) as src:
            _check_band(src, spec.band, href)
            return _count(src, bins, spec, gdal)
    except (RasterReadError, AccountingError):
        raise
    except Exception as exc:  # GDAL read errors surface as many types; name the file
        raise RasterReadError(f"{href}: {_one_line(exc)}") from exc


def zonal_histogram_of(
    href: str, bins: BinSpec, spec: ReadSpec, subset: ZoneSubset, gdal: Mapping[str, str] | None = None
) -> tuple[Histogram, ZoneTable]:
    """Histogram of the pixels of ``href`` in any zone of ``subset`` (and the AOI), and each zone's table."""
    from histcalc.zone_counter import ZoneCounter

    try:
        with opened(href, gdal) as src:
            _check_band(src, spec.band, href)
            counter = _counter_for(src, bins, spec)
            if not counter.integer:
                raise RasterReadError(f"{href}: zonal histograms need 8- or 16-bit integer data, not {src.dtypes[0]}")
            zones = ZoneCounter(
                subset, counter.lo, counter.dn_counts.shape[1], counter.nodata_dn, spec.all_touched,
                bins, counter.scale, counter.offset, (src.transform.a, src.transform.e, src.width * src.height),
            )  # fmt: skip
            histogram = _count_with(src, counter, spec, gdal, zones)
            return histogram, zones.table()
    except (RasterReadError, AccountingError):
        raise
    except Exception as exc:  # GDAL read errors surface as many types; name the file
        raise RasterReadError(f"{href}: {_one_line(exc)}") from exc


def _count(src: Any, bins: BinSpec, spec: ReadSpec, gdal: Mapping[str, str] | None) -> Histogram:
    return _count_with(src, _counter_for(src, bins, spec), spec, gdal)


def _counter_for(src: Any, bins: BinSpec, spec: ReadSpec) -> TaskCounter:
    scale = float(src.scales[spec.band - 1]) if spec.scale is None else spec.scale
    offset = float(src.offsets[spec.band - 1]) if spec.offset is None else spec.offset
    nodata = src.nodata if spec.nodata is None else spec.nodata
    return TaskCounter(bins, scale, offset, nodata, src.dtypes[spec.band - 1])


def _count_with(
    src: Any, counter: TaskCounter, spec: ReadSpec, gdal: Mapping[str, str] | None, zones: ZoneCounter | None = None
) -> Histogram:
    """Read the windows of the AOI (and of the zones) and count them; with ``zones``, only zone pixels."""
    geometry = _aoi_in_raster(src, spec.aoi)
    if spec.aoi is not None and geometry is None:
        return counter.result()
    extent = _extent(geometry, zones)
    if zones is not None and extent is None:
        return counter.result()
    windows = _bands(src, extent, spec.part, spec.parts)
    kernel_loading.note_task(sum(int(w.width * w.height) for w in windows))  # may start loading numba
    halves = partial(opened, gdal=gdal)  # --overlaps once: the other halves of a split datastrip
    grid = (tuple(src.transform)[:6], src.width, src.height)  # the dates of a tile share it, and its windows
    with _quality_grid(src, spec, gdal) as quality, ownership(src, spec, halves) as owned:
        for window in windows:
            transform = src.window_transform(window)
            shape = (int(window.height), int(window.width))
            labels = zones.labels(transform, shape, grid) if zones is not None else None
            layers = labels.layers if labels is not None else []
            if zones is not None and not layers:
                continue  # no zone has a pixel centre here: nothing to read
            inside = None
            if geometry is not None and spec.aoi is not None:
                masks = aoi_masks.process_cache()
                part = masks.get(spec.aoi, src.crs, geometry, transform, shape, spec.all_touched, grid)
                if zones is None and part.mask is None:  # a rectangle: read just it, count it without a mask
                    if part.empty:
                        continue
                    window = _sub_window(window, part.rows, part.cols)
                    transform = src.window_transform(window)
                    shape = (int(window.height), int(window.width))
                else:
                    inside = part.as_mask(shape)
            own = None if owned is None else owned.mask(window, transform, shape)
            if own is not None:
                inside, duplicate = split_duplicates(own, inside, layers)
                counter.add_duplicate(duplicate)
                if zones is None and not inside.any():
                    continue  # another file counts every pixel here: nothing to read
            data = src.read(spec.band, window=window)
            valid = _valid_mask(src, spec.band, window)
            classes = None if quality is None else kernel.Quality.of(quality.read(1, window=window), spec.mask_values)
            if zones is not None and labels is not None:
                zones.add(labels, transform, data, inside, valid, classes, counter)
            else:
                counter.add(data, inside, valid, classes)
    if zones is not None:
        zones.finish(counter)
    return counter.result()


def _extent(geometry: dict[str, Any] | None, zones: ZoneCounter | None) -> BBox | None:
    """The bounds to read: the AOI's, the zones', or their intersection (None: everything, or nothing)."""
    from rasterio.features import bounds as geometry_bounds

    aoi = geometry_bounds(geometry) if geometry is not None else None
    zone = zones.bounds() if zones is not None else None
    if aoi is None or zone is None:
        return aoi or zone
    return (max(aoi[0], zone[0]), max(aoi[1], zone[1]), min(aoi[2], zone[2]), min(aoi[3], zone[3]))


@contextmanager
def _quality_grid(src: Any, spec: ReadSpec, gdal: Mapping[str, str] | None) -> Iterator[Any]:
    """The mask asset (e.g. 20 m SCL) resampled by nearest neighbour onto the data's grid, or None."""
    if spec.mask_href is None:
        yield None
        return
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    with opened(spec.mask_href, gdal) as mask_src:
        grid = {"crs": src.crs, "transform": src.transform, "width": src.width, "height": src.height}
        with WarpedVRT(mask_src, resampling=Resampling.nearest, **grid) as vrt:
            yield vrt


def _valid_mask(src: Any, band: int, window: Any) -> npt.NDArray[np.uint8] | None:
    """Non-zero where not masked by an internal mask or alpha band (nodata values are the counter's).

    GDAL's 0/255 mask goes to the kernel as it is read: no boolean copy.
    """
    from rasterio.enums import MaskFlags

    flags = src.mask_flag_enums[band - 1]
    if MaskFlags.per_dataset in flags or MaskFlags.alpha in flags:
        mask: npt.NDArray[np.uint8] = src.read_masks(band, window=window)
        return mask
    return None


def _bands(src: Any, extent: BBox | None, part: int, parts: int) -> list[Any]:
    """Read windows of whole block rows over the window of ``extent`` (raster CRS); this task's share of them."""
    from rasterio.windows import Window

    full = Window(0, 0, src.width, src.height) if extent is None else _pixel_window(src, extent)
    if full is None:
        return []
    block_h = src.block_shapes[0][0]
    rows_per_band = max(block_h, (_BAND_PIXELS // max(full.width, 1)) // block_h * block_h)
    first = (full.row_off // block_h) * block_h
    starts = range(first, full.row_off + full.height, rows_per_band)
    windows = []
    for start in starts:
        top = max(start, full.row_off)
        bottom = min(start + rows_per_band, full.row_off + full.height)
        windows.append(Window(full.col_off, top, full.width, bottom - top))
    return windows[part::parts]


def _pixel_window(src: Any, extent: BBox) -> Any:
    """The whole pixels that ``extent`` (raster CRS) touches, clipped to the raster; None when it misses."""
    from rasterio.windows import Window, from_bounds

    if extent[0] >= extent[2] or extent[1] >= extent[3]:
        return None
    w = from_bounds(*extent, transform=src.transform)
    col0, row0 = math.floor(w.col_off), math.floor(w.row_off)
    col1, row1 = math.ceil(w.col_off + w.width), math.ceil(w.row_off + w.height)
    return _intersect(Window(0, 0, src.width, src.height), Window(col0, row0, col1 - col0, row1 - row0))


def _intersect(a: Any, b: Any) -> Any:
    from rasterio.windows import Window

    col0, row0 = max(a.col_off, b.col_off), max(a.row_off, b.row_off)
    col1 = min(a.col_off + a.width, b.col_off + b.width)
    row1 = min(a.row_off + a.height, b.row_off + b.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(int(col0), int(row0), int(col1 - col0), int(row1 - row0))


def _sub_window(window: Any, rows: tuple[int, int], cols: tuple[int, int]) -> Any:
    """The part of ``window`` from/to ``rows`` and ``cols`` (counted from its corner)."""
    from rasterio.windows import Window

    return Window(int(window.col_off) + cols[0], int(window.row_off) + rows[0], cols[1] - cols[0], rows[1] - rows[0])


def _check_band(src: Any, band: int, href: str) -> None:
    if not 1 <= band <= src.count:
        raise RasterReadError(f"{href}: has {src.count} band(s), band {band} was asked for")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
