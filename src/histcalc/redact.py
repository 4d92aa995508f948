"""Secrets out of every text histcalc writes: the one place that hides them.

Every log line (a formatter on every handler), the one-line error, the printed summary, the JSON /
CSV outputs and anything put into a Spark configuration go through :func:`redact`. It hides:

- credentials in URLs (``http://alice:PASSWORD@host``) and secret query parameters
  (``token``, ``access_token``, ``sig``, ``X-Amz-*``, ``password``, ...);
- bearer/basic credentials (``Authorization: Bearer ...``), JWTs, and ``"refresh_token": "..."``
  style key/value pairs in provider answers;
- every value registered at runtime with :func:`register_secret` (the password a login used, the
  access and refresh tokens): those are replaced wherever they appear, in whatever form of text.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

MASK = "***"
_MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words and numbers

_SECRET_NAMES = (
    r"access_token|refresh_token|id_token|[\w.-]*token|password|passwd|pwd|secret|client_secret"
    r"|api_?key|apikey|key|sig|signature|code|x-amz-[\w-]+|x-goog-[\w-]+|sas|sv|se|sp"
)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # user:password@ in any URL
    (re.compile(r"(://)[^/@\s:'\"]+:[^/@\s'\"]*@"), rf"\1{MASK}@"),
    # ?token=...&sig=... and friends (also after ';' and in form bodies)
    (re.compile(rf"((?:^|[?&;\s])(?:{_SECRET_NAMES})=)[^&\s'\"#]+", re.IGNORECASE), rf"\1{MASK}"),
    # Authorization: Bearer xyz / Basic xyz (in headers, reprs, messages)
    (re.compile(r"\b(Bearer|Basic)(\s+)[A-Za-z0-9._~+/=-]{4,}", re.IGNORECASE), rf"\1\2{MASK}"),
    # JSON or dict reprs: "refresh_token": "xyz", 'password': 'xyz'
    (
        re.compile(
            r"""(["']?(?:access_token|refresh_token|id_token|password|client_secret)["']?\s*[:=]\s*["']?)[^"'\s,&}]+""",
            re.IGNORECASE,
        ),
        rf"\1{MASK}",
    ),
    # header dict reprs: {'X-Api-Key': 'xyz', 'Cookie': '...'}
    (
        re.compile(r"""(['"](?:Authorization|X-Api-Key|Cookie|Proxy-Authorization)['"]\s*:\s*)(['"])[^'"]*\2""", re.I),
        rf"\1\2{MASK}\2",
    ),
    # a JWT anywhere (header.payload.signature, base64url)
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"), MASK),
)

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Hide ``value`` wherever it appears from now on (a password, a token)."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def forget_secrets() -> None:
    """Drop the registered values (tests run many jobs in one process)."""
    with _lock:
        _secrets.clear()


def redact(text: str) -> str:
    """``text`` with every known and every recognisable secret replaced by ``***``."""
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)  # a longer secret first: it may contain a shorter
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_data(value: Any) -> Any:
    """A JSON-like value (dicts, lists, strings) with every string redacted; other values as they are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v) for v in value]
    return value


def redact_pairs(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Configuration pairs (a Spark conf's ``getAll()``) with secret-looking values hidden."""
    return [(k, redact(v)) for k, v in pairs]


def leaked_keys(pairs: Iterable[tuple[str, str]]) -> list[str]:
    """The keys whose values :func:`redact` would change: secrets where they must never be (a Spark conf)."""
    return [k for k, v in pairs if redact(v) != v]


class RedactingFormatter(logging.Formatter):
    """Formats a record with the formatter it wraps, then redacts the whole text (tracebacks too)."""

    def __init__(self, inner: logging.Formatter | None = None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        return redact(self.inner.format(record))


def protect_handlers(logger: logging.Logger | None = None) -> None:
    """Give every handler of ``logger`` (default: the root logger) a redacting formatter, once."""
    for handler in (logger or logging.getLogger()).handlers:
        if not isinstance(handler.formatter, RedactingFormatter):
            handler.setFormatter(RedactingFormatter(handler.formatter))


def safe_url(url: str) -> str:
    """``url`` without user:password and query string, fit for messages and logs (no pystac import: every job
    names its catalog this way)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", "")) if parts.scheme else url
