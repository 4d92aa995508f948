"""GDAL and credential settings, captured on the driver and re-applied inside every task.

Spark executors do not inherit the driver's environment, so the settings travel with
each task as a plain dict and are applied with ``rasterio.Env`` around the reads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# Environment variables that configure GDAL's drivers and virtual file systems.
_PREFIXES = ("GDAL_", "CPL_", "VSI_", "AWS_", "CPL_VSIL_", "GS_", "AZURE_")
_SECRET_MARKERS = ("SECRET", "TOKEN", "PASSWORD", "KEY", "HEADER")

# Sensible defaults for cloud-optimised reads; the user's environment wins.
DEFAULTS: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "1",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF",
}


def capture(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The GDAL-relevant settings of ``environ`` (default: this process), over our defaults."""
    source = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    settings.update({k: v for k, v in source.items() if k.startswith(_PREFIXES)})
    return settings


def redacted(settings: Mapping[str, str]) -> dict[str, str]:
    """A copy safe to log: values of secret-looking keys are replaced."""
    return {k: ("***" if any(m in k for m in _SECRET_MARKERS) else v) for k, v in settings.items()}
