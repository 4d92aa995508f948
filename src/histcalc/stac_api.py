"""Search a STAC API (pystac-client). The only module that talks to STAC API servers.

Every failure (unreachable server, time-out, HTTP error after the retries, unknown collection, a
URL that is no STAC API) comes out as one ``CatalogError`` with a one-line message that names the
API (without credentials or query string) and the reason.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import Any

import pystac

from histcalc.errors import CatalogError
from histcalc.redact import redact, safe_url

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 1000  # items per page: 50 requests for 50,000 scenes, a few MB of JSON each
DEFAULT_TIMEOUT = 30.0  # seconds, for connecting and for each read
DEFAULT_RETRIES = 3
DEFAULT_BACKOFF = 0.5  # seconds; sleeps 0, 2x, 4x ... between retries (urllib3's schedule)
RETRY_STATUSES = (429, 500, 502, 503, 504)

Filter = str | Mapping[str, Any]
Query = Mapping[str, Any] | Sequence[str]


def datetime_range(start: date, end: date) -> str:
    """The RFC 3339 interval covering whole UTC days ``start`` through ``end``, both included."""
    return f"{start.isoformat()}T00:00:00Z/{end.isoformat()}T23:59:59.999999Z"


def search_items(
    url: str,
    collection: str,
    start: date,
    end: date,
    bbox: tuple[float, float, float, float] | None,
    *,
    filter: Filter | None = None,
    query: Query | None = None,
    max_items: int | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    headers: Mapping[str, str] | None = None,
) -> Iterator[pystac.Item]:
    """Items of ``collection`` between ``start`` and ``end`` (inclusive whole UTC days) over ``bbox``.

    ``filter`` is CQL2, as text (``"eo:cloud_cover < 20"``) or as a CQL2-JSON dict; ``query`` is the
    older query extension (``{"eo:cloud_cover": {"lt": 20}}``). Pages of ``page_size`` items are
    followed until the result set (or ``max_items``) is exhausted. 429/5xx answers, refused
    connections and time-outs are retried ``retries`` times with exponential ``backoff``.
    """
    where = safe_url(url)
    try:
        client = open_client(url, timeout=timeout, retries=retries, backoff=backoff, headers=headers)
        _require_conformance(client, where, filter is not None, query is not None)
        _require_collection(client, collection, where)
        search = client.search(
            collections=[collection],
            datetime=datetime_range(start, end),
            bbox=list(bbox) if bbox else None,
            filter=dict(filter) if isinstance(filter, Mapping) else filter,
            query=_query_arg(query),
            limit=page_size,
            max_items=max_items,
        )
        # Not search.items(): it roots every Item at the client, whose resolution cache then keeps
        # all of them alive (416 MB of driver memory for 50,000 items). Items without a root are freed
        # as soon as the caller has taken what it needs.
        for item in search.items_as_dicts():
            yield pystac.Item.from_dict(item, preserve_dict=False)
    except CatalogError:
        raise
    except Exception as exc:  # pystac-client, requests and pystac raise many kinds: all mean the same here
        raise CatalogError(f"STAC API {where}: {describe(exc, timeout)}") from exc


def open_client(
    url: str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    backoff: float = DEFAULT_BACKOFF,
    headers: Mapping[str, str] | None = None,
) -> Any:
    """A pystac-client ``Client`` whose requests time out and retry with backoff."""
    from pystac_client import Client
    from pystac_client.stac_api_io import StacApiIO
    from urllib3 import Retry

    retry = Retry(
        total=retries,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,  # retry POST /search too: a search has no side effects
        raise_on_status=False,  # after the last retry, hand back the response so its status is reported
        respect_retry_after_header=False,  # our own bounded backoff: a huge Retry-After must not stall a job
    )
    _redact_request_logs()
    stac_io = StacApiIO(headers=dict(headers or {}), timeout=timeout, max_retries=retry)
    # Client.open re-applies its own ``timeout`` to the StacApiIO it is given: pass ours again.
    return Client.open(url, stac_io=stac_io, timeout=timeout)


def _require_conformance(client: Any, where: str, filter: bool, query: bool) -> None:
    """pystac-client only warns when an API lacks filter/query; the API would then ignore it."""
    from pystac_client.conformance import ConformanceClasses

    if filter and not client.conforms_to(ConformanceClasses.FILTER):
        raise CatalogError(f"STAC API {where}: does not support the filter extension (CQL2)")
    if query and not client.conforms_to(ConformanceClasses.QUERY):
        raise CatalogError(f"STAC API {where}: does not support the query extension")


def _require_collection(client: Any, collection: str, where: str) -> None:
    if client.get_collection(collection) is None:
        raise CatalogError(f"STAC API {where}: no collection {collection!r}")


def _query_arg(query: Query | None) -> Any:
    if query is None or isinstance(query, Mapping):
        return dict(query) if query is not None else None
    return list(query)


def describe(exc: BaseException, timeout: float | None = None) -> str:
    """One line saying why a request to a STAC API failed."""
    import requests

    status = getattr(exc, "status_code", None)
    if status:
        return f"HTTP {status}{_detail(str(exc))}"
    cause = _root_request_error(exc)
    # After the last retry urllib3 reports a read time-out as a ConnectionError: look at the text too.
    if isinstance(cause, requests.Timeout) or (cause is not None and "timed out" in str(cause)):
        return f"no answer within {timeout:g} s (timed out)" if timeout else "timed out"
    if isinstance(cause, requests.ConnectionError):
        reason = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(cause))
        return f"cannot connect ({reason.group(1).strip() if reason else 'connection failed'})"
    if isinstance(exc, (json.JSONDecodeError, pystac.STACError, KeyError, TypeError)):
        return f"not a STAC API ({type(exc).__name__}: {_first_line(str(exc))})"
    return _first_line(str(exc)) or type(exc).__name__


def _root_request_error(exc: BaseException) -> BaseException | None:
    """pystac-client re-raises requests' exceptions as ``APIError(str(err))``: find the original."""
    import requests

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, requests.RequestException):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _detail(body: str) -> str:
    """': <description>' from a STAC API error body (JSON ``description``/``detail``), if any."""
    try:
        data = json.loads(body)
    except ValueError:
        text = _first_line(body)
        return f": {text}" if text and "<" not in text else ""
    if isinstance(data, dict):
        text = data.get("description") or data.get("detail") or data.get("message") or ""
        return f": {_first_line(str(text))}" if text else ""
    return ""


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


class _RedactSecrets(logging.Filter):
    """pystac-client and urllib3 log request URLs and headers at DEBUG: hide credentials in them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def _redact_request_logs() -> None:
    for name in ("pystac_client.stac_api_io", "urllib3.connectionpool"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactSecrets) for f in logger.filters):
            logger.addFilter(_RedactSecrets())
