"""A boto3 S3 client built from the job's GDAL settings, so executors reach the same server as GDAL does.

boto3 is optional (the ``s3`` extra): only an ``s3://`` cache and the identity of S3 files need it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from histcalc.errors import MissingDependency

_CLIENTS: dict[tuple[tuple[str, str], ...], Any] = {}  # one client per process and settings (they are thread-safe)
_S3_KEYS = (
    "AWS_S3_ENDPOINT",
    "AWS_HTTPS",
    "AWS_VIRTUAL_HOSTING",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "AWS_NO_SIGN_REQUEST",
)


def split_s3(url: str) -> tuple[str, str]:
    """``s3://bucket/some/key`` -> (``bucket``, ``some/key``)."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise ValueError(f"{url} names no bucket")
    return bucket, key


def s3_client(settings: Mapping[str, str]) -> Any:
    """A client for GDAL's endpoint, credentials and addressing style in ``settings`` (else boto3's defaults)."""
    wanted = tuple(sorted((k, v) for k, v in settings.items() if k in _S3_KEYS))
    client = _CLIENTS.get(wanted)
    if client is None:
        client = _CLIENTS[wanted] = _new_client(dict(wanted))
    return client


def _new_client(s: dict[str, str]) -> Any:
    try:
        import boto3
        from botocore import UNSIGNED
        from botocore.config import Config
    except ImportError as exc:
        raise MissingDependency(
            "an s3:// cache or S3 files with --cache need boto3: pip install 'histcalc[s3]'"
        ) from exc
    endpoint = s.get("AWS_S3_ENDPOINT")
    scheme = "http" if s.get("AWS_HTTPS", "YES").upper() in ("NO", "FALSE", "OFF", "0") else "https"
    path_style = s.get("AWS_VIRTUAL_HOSTING", "TRUE").upper() in ("NO", "FALSE", "OFF", "0")
    unsigned = s.get("AWS_NO_SIGN_REQUEST", "NO").upper() in ("YES", "TRUE", "ON", "1")
    config = Config(
        s3={"addressing_style": "path" if path_style else "auto"},
        retries={"max_attempts": 3, "mode": "standard"},
        signature_version=UNSIGNED if unsigned else None,
    )
    session = boto3.session.Session(profile_name=s.get("AWS_PROFILE"))
    return session.client(
        "s3",
        endpoint_url=f"{scheme}://{endpoint}" if endpoint else None,
        aws_access_key_id=s.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=s.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=s.get("AWS_SESSION_TOKEN"),
        region_name=s.get("AWS_REGION") or s.get("AWS_DEFAULT_REGION"),
        config=config,
    )
