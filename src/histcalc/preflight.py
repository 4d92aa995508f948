"""Checks on the first file's header, before the job: band count, bins and the values they will see.

Options that only make sense against the data (``--band 2`` on one-band files, ``--bins N``
without ``--range``, bins narrower than the data's digital-number step) are settled here, on the
driver, from one header: a usage error or a warning now rather than a wrong or empty result later.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from histcalc.bins import BinSpec, dn_limits
from histcalc.errors import InvalidBins, RasterReadError, UsageError
from histcalc.raster import RasterInfo, inspect
from histcalc.scenes import Scene

log = logging.getLogger(__name__)

_HEADERS_TRIED = 3  # unreadable first files: the job names them; the check uses the next one
_HEADERS_TRIED_FOR_BINS = 20  # beyond that the planner goes on looking (each try may be a network round trip)


@dataclass(frozen=True)
class Values:
    """How the counted files encode values, as resolved for the first readable file."""

    href: str
    info: RasterInfo
    scale: float
    offset: float
    nodata: float | None

    @property
    def integer(self) -> bool:
        kind = np.dtype(self.info.dtype)
        return kind.kind in "ui" and kind.itemsize <= 2


def first_values(
    scenes: Sequence[Scene],
    band: int,
    overrides: tuple[float | None, float | None, float | None],
    gdal: Mapping[str, str] | None = None,
    *,
    required: bool = False,
) -> Values | None:
    """The resolved scale, offset and nodata of the first readable file (override > catalog > file).

    None when none of the first few files opens, unless ``required`` (the bins depend on it):
    then up to 20 files are tried, and when none of the scenes opens a RasterReadError says why the
    first one did not.
    """
    scale, offset, nodata = overrides
    failures: list[RasterReadError] = []
    tried = scenes[: _HEADERS_TRIED_FOR_BINS if required else _HEADERS_TRIED]
    for scene in tried:
        try:
            info = inspect(scene.href, 1, gdal)
        except RasterReadError as exc:
            log.debug("cannot read the header of %s: %s", scene.href, exc)
            failures.append(exc)
            continue
        if band > info.count:
            raise UsageError(f"--band {band}: the files have {info.count} band(s) (first file: {scene.href})")
        return Values(
            scene.href,
            info,
            _first(scale, scene.scale, info.scale) or 1.0,
            _first(offset, scene.offset, info.offset) or 0.0,
            _first(nodata, scene.nodata, info.nodata),
        )
    if required and failures and len(tried) == len(scenes):
        others = f" (nor could {len(failures) - 1} other(s))" if len(failures) > 1 else ""
        raise RasterReadError(f"no selected file opens to choose the bins{others}: {failures[0]}")
    return None


def bins_over_dtype(count: int, values: Values) -> BinSpec:
    """``count`` equal bins over the physical range of the data type (half a step beyond each end)."""
    if not values.integer:
        raise InvalidBins(f"--bins without --range needs integer data; {values.info.dtype} data needs --range LO,HI")
    lo, hi = dn_limits(values.info.dtype)
    ends = sorted(((lo - 0.5) * values.scale + values.offset, (hi + 0.5) * values.scale + values.offset))
    log.info("--bins %d without --range: the %s range %g..%g in physical units", count, values.info.dtype, *ends)
    return BinSpec.uniform(count, ends[0], ends[1])


def misalignment(bins: BinSpec, values: Values) -> str | None:
    """Why equal-width ``bins`` do not fit integer data's step, with aligned bins to use instead; or None."""
    if not values.integer or bins.discrete or values.scale == 0:
        return None
    edges = bins.array
    width, step = float(edges[1] - edges[0]), abs(values.scale)
    if not np.allclose(np.diff(edges), width, rtol=1e-9, atol=0):
        return None  # explicit, unequal edges: the user's choice
    per_bin = width / step
    if _whole(per_bin):
        return None  # every bin holds the same number of values (k steps of a half-open bin)
    lo_dn = math.floor((edges[0] - values.offset) / step + 0.5 + 1e-9)
    hi_dn = math.ceil((edges[-1] - values.offset) / step - 0.5 - 1e-9)
    k = max(1, round(per_bin))
    count = math.ceil((hi_dn - lo_dn + 1) / k)
    lo, hi = (lo_dn - 0.5) * step + values.offset, (lo_dn - 0.5 + count * k) * step + values.offset
    if per_bin < 1:
        effect = "some bins stay empty"
    else:
        effect = f"bins hold {math.floor(per_bin)} or {math.ceil(per_bin)} values each (a comb pattern)"
    return (
        f"bin width {width:.6g} is {per_bin:.3g} steps of the data ({step:g} per digital number), so {effect}; "
        f"aligned bins: --range {lo:.6g},{hi:.6g} --bins {count} ({k} value(s) per bin), "
        "or no --bins/--range for one bin per value"
    )


def describe(values: Values, bins: BinSpec | None) -> str:
    """One log line: the resolved encoding and bins."""
    info = values.info
    shape = f"{bins.count} bins {bins.edges[0]:.6g}..{bins.edges[-1]:.6g}" if bins else "one bin per digital number"
    return (
        f"values: {info.dtype}, physical = DN * {values.scale:g} + {values.offset:g}, nodata {values.nodata}, "
        f"CRS {info.crs or 'none'}, {info.width}x{info.height} px; {shape} (first file {values.href})"
    )


def _whole(x: float) -> bool:
    return abs(x - round(x)) < 1e-6


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)
