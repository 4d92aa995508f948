"""GDAL and credential settings, captured on the driver and re-applied inside every task.

Spark executors do not inherit the driver's environment, so the settings travel with
each task as a plain dict and are applied with ``rasterio.Env`` around the reads.

What is captured, over our defaults for cloud-optimised reads:
- every ``GDAL_*``, ``CPL_*``, ``VSI_*``, ``AWS_*``, ``GS_*``, ``AZURE_*`` variable, and the CA bundle
  variables curl honours;
- ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (boto's way to name an S3-compatible server)
  turned into GDAL's ``AWS_S3_ENDPOINT``, ``AWS_HTTPS`` and path-style ``AWS_VIRTUAL_HOSTING``;
- a bearer token (``HISTCALC_HTTP_TOKEN`` or ``capture(token=...)``) and the contents of
  ``GDAL_HTTP_HEADER_FILE`` become inline ``GDAL_HTTP_HEADERS`` (GDAL >= 3.6): the header file
  exists on the driver only, executors would not find it.

Inside a task, open rasters under ``rasterio_env(settings)`` rather than ``rasterio.Env(**settings)``:
rasterio refuses ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` as plain config options, and
without them in the task's own environment it would look for credentials with boto3 and find none.

Secrets stay in the dict the tasks get; anything that logs or prints settings uses ``redacted``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Environment variables that configure GDAL's drivers and virtual file systems.
_PREFIXES = ("GDAL_", "CPL_", "VSI_", "AWS_", "GS_", "AZURE_")
_NAMES = ("CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
_SECRET_MARKERS = (
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASS",
    "PWD",
    "KEY",
    "HEADER",
    "BEARER",
    "CREDENTIAL",
    "CONNECTION_STRING",
    "SAS",
    "COOKIE",
)
TOKEN_VARIABLE = "HISTCALC_HTTP_TOKEN"
# Set by histcalc.cli_auth while a job runs: this header file is rewritten with fresh tokens, so tasks
# must read it by path (on every request), never a copy of its contents made when the job started.
REFRESHED_HEADER_FILE = "HISTCALC_REFRESHED_HEADER_FILE"
RELAY_URL = "HISTCALC_TOKEN_RELAY_URL"  # histcalc.token_relay: where executors fetch fresh tokens
# What rasterio.Env will not take as config options: handed to it as a session instead.
_AWS_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

# Sensible defaults for cloud-optimised reads; the user's environment wins.
DEFAULTS: dict[str, str] = {
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MAX_RETRY": "3",  # on 429, 502, 503, 504 and some network errors
    "GDAL_HTTP_RETRY_DELAY": "1",
    "GDAL_HTTP_CONNECTTIMEOUT": "10",  # seconds to connect
    "GDAL_HTTP_TIMEOUT": "60",  # seconds for one request: a hanging server fails the file, not the job
    # Every block is read once: a large block cache only costs memory (~120 MB a worker at GDAL's
    # default of 5% of RAM) and allocation time. Measured in benchmarks/RESULTS.md.
    "GDAL_CACHEMAX": "64",
}


# For remote files only: no directory listing and no sidecar probes per open (each is an HTTP request).
# Local files keep GDAL's default, so .msk masks, .aux.xml scale/offset/nodata and .ovr are found.
REMOTE_DEFAULTS: dict[str, str] = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}
_REMOTE_PREFIXES = ("/vsicurl", "/vsis3", "/vsigs", "/vsiaz", "/vsiadls", "/vsioss", "/vsiswift", "/vsiwebhdfs")


def is_remote(href: str) -> bool:
    """An href GDAL reads over the network (a URL, or a /vsicurl/, /vsis3/, ... path)."""
    return "://" in href.split("?", 1)[0] or href.startswith(_REMOTE_PREFIXES)


def for_href(settings: Mapping[str, str], href: str) -> dict[str, str]:
    """``settings`` to open ``href`` with: the remote-only defaults added for remote hrefs (the user's win)."""
    return {**REMOTE_DEFAULTS, **settings} if is_remote(href) else dict(settings)


def capture(environ: Mapping[str, str] | None = None, *, token: str | None = None) -> dict[str, str]:
    """The GDAL-relevant settings of ``environ`` (default: this process), over our defaults."""
    source = os.environ if environ is None else environ
    settings = dict(DEFAULTS)
    settings.update({k: v for k, v in source.items() if k.startswith(_PREFIXES) or k in _NAMES})
    settings.update(_s3_endpoint(source, settings))
    refreshed = source.get(REFRESHED_HEADER_FILE)
    settings.update(_http_headers(settings, token or source.get(TOKEN_VARIABLE), refreshed))
    return settings


def _s3_endpoint(source: Mapping[str, str], settings: Mapping[str, str]) -> dict[str, str]:
    """GDAL's S3 endpoint options from boto's ``AWS_ENDPOINT_URL[_S3]``, unless already set."""
    url = source.get("AWS_ENDPOINT_URL_S3") or source.get("AWS_ENDPOINT_URL")
    if not url or "AWS_S3_ENDPOINT" in settings:
        return {}
    parts = urlsplit(url if "://" in url else f"https://{url}")
    found = {"AWS_S3_ENDPOINT": parts.netloc + parts.path.rstrip("/")}
    found["AWS_HTTPS"] = settings.get("AWS_HTTPS", "NO" if parts.scheme == "http" else "YES")
    found["AWS_VIRTUAL_HOSTING"] = settings.get("AWS_VIRTUAL_HOSTING", "FALSE")  # custom servers: path style
    return found


def _http_headers(settings: dict[str, str], token: str | None, refreshed: str | None = None) -> dict[str, str]:
    """Inline ``GDAL_HTTP_HEADERS`` from the driver's header file and/or a bearer token.

    A ``refreshed`` header file (kept fresh by a token refresher) stays a path, and is the only
    source of the ``Authorization`` header: two would make the server choose.
    """
    lines = [ln for ln in settings.get("GDAL_HTTP_HEADERS", "").splitlines() if ln.strip()]
    header_file = settings.get("GDAL_HTTP_HEADER_FILE")
    if refreshed:
        settings["GDAL_HTTP_HEADER_FILE"] = refreshed
        lines = [ln for ln in lines if not ln.lower().startswith("authorization:")]
        settings.pop("GDAL_HTTP_HEADERS", None)
        return {"GDAL_HTTP_HEADERS": "\r\n".join(lines)} if lines else {}
    if header_file and Path(header_file).is_file():
        lines += [ln.strip() for ln in Path(header_file).read_text().splitlines() if ln.strip()]
        del settings["GDAL_HTTP_HEADER_FILE"]  # a driver-local path: executors get the contents instead
    if token:
        lines = [ln for ln in lines if not ln.lower().startswith("authorization:")]
        lines.append(f"Authorization: Bearer {token.strip()}")
    return {"GDAL_HTTP_HEADERS": "\r\n".join(lines)} if lines else {}


def request_headers(settings: Mapping[str, str]) -> dict[str, str]:
    """The HTTP headers GDAL sends with ``settings``, for a request made without GDAL (a cache's HEAD).

    ``GDAL_HTTP_HEADERS`` and the lines of ``GDAL_HTTP_HEADER_FILE`` (read now: a refreshed file holds the
    current token); on a Spark executor the token relay's header file (see :mod:`histcalc.token_relay`).
    """
    if RELAY_URL in settings:
        from histcalc.token_relay import local_settings

        settings = local_settings(settings)
    lines = settings.get("GDAL_HTTP_HEADERS", "").replace("\r\n", "\n").split("\n")
    header_file = settings.get("GDAL_HTTP_HEADER_FILE")
    if header_file and Path(header_file).is_file():
        lines += Path(header_file).read_text().splitlines()
    pairs = [line.split(":", 1) for line in lines if ":" in line]
    return {name.strip(): value.strip() for name, value in pairs}


def rasterio_env(settings: Mapping[str, str]) -> Any:
    """A ``rasterio.Env`` that applies ``settings``, S3 keys included, with no boto3 or os.environ needed."""
    import rasterio

    if RELAY_URL in settings:  # a Spark executor: its own header file, fed by the driver's token relay
        from histcalc.token_relay import local_settings

        settings = local_settings(settings)
    options: dict[str, Any] = dict(settings)
    if "GDAL_CACHEMAX" in options:  # rasterio takes only an int (MB); GDAL itself reads "10%" and the like
        cache = str(options.pop("GDAL_CACHEMAX")).strip()
        if cache.isdigit():
            options["GDAL_CACHEMAX"] = int(cache)
    credentials = {k: options.pop(k) for k in _AWS_CREDENTIALS if k in options}
    if not credentials:
        return rasterio.Env(**options)
    return rasterio.Env(session=_config_session(credentials), **options)


def _config_session(credentials: dict[str, str]) -> Any:
    """A rasterio Session that sets ``credentials`` as GDAL config options when the Env is entered.

    Once they are set, ``rasterio.open("s3://...")`` sees credentials in the environment and uses
    them as they are (it would otherwise make a boto3 session, which finds nothing on an executor).
    """
    from rasterio.session import Session

    class ConfigCredentials(Session):  # type: ignore[misc]
        def __init__(self, options: dict[str, str]) -> None:
            self._options = options

        @classmethod
        def hascreds(cls, config: Mapping[str, Any]) -> bool:
            return True

        def get_credential_options(self) -> dict[str, str]:
            return dict(self._options)

        def __repr__(self) -> str:
            return f"ConfigCredentials({sorted(self._options)})"  # names only, never the values

    return ConfigCredentials(credentials)


def is_secret(key: str) -> bool:
    return any(marker in key.upper() for marker in _SECRET_MARKERS)


def redacted(settings: Mapping[str, str]) -> dict[str, str]:
    """A copy safe to log: values of secret-looking keys are replaced."""
    return {k: ("***" if is_secret(k) else v) for k, v in settings.items()}


def describe(settings: Mapping[str, str]) -> str:
    """One line for a log: ``KEY=value`` pairs, secrets hidden, sorted."""
    return " ".join(f"{k}={v}" for k, v in sorted(redacted(settings).items()))
