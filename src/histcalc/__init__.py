"""histcalc: exact histograms of pixel values over large satellite raster archives.

Select scenes from a STAC API, a static STAC catalog or a directory of GeoTIFFs, count every
valid pixel inside an AOI into common bin edges on Spark or a local process pool, and report.
"""

from __future__ import annotations

__version__ = "0.1.0"

from histcalc.aoi import AOI, load_geojson, parse_bbox
from histcalc.bins import BinSpec
from histcalc.compute import compute_histogram
from histcalc.errors import HistcalcError, MissingDependency
from histcalc.histogram import Histogram, Moments
from histcalc.plan import Overrides
from histcalc.progress import Progress, watch_spark
from histcalc.result import JobResult
from histcalc.scenes import Query, Scene, find_scenes

__all__ = [
    "AOI",
    "BinSpec",
    "HistcalcError",
    "Histogram",
    "JobResult",
    "MissingDependency",
    "Moments",
    "Overrides",
    "Progress",
    "Query",
    "Scene",
    "__version__",
    "compute_histogram",
    "find_scenes",
    "load_geojson",
    "parse_bbox",
    "watch_spark",
]
