"""Search a STAC API (pystac-client). The only module that talks to STAC API servers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pystac

from histcalc.errors import CatalogError


def search_items(
    url: str,
    collection: str,
    start: date,
    end: date,
    bbox: tuple[float, float, float, float] | None,
) -> Iterator[pystac.Item]:
    """Items of ``collection`` between ``start`` and ``end`` (inclusive whole UTC days) over ``bbox``."""
    from pystac_client import Client
    from pystac_client.exceptions import APIError

    try:
        client = Client.open(url)
        search = client.search(
            collections=[collection],
            datetime=f"{start.isoformat()}T00:00:00Z/{end.isoformat()}T23:59:59.999999Z",
            bbox=list(bbox) if bbox else None,
        )
        yield from search.items()
    except (APIError, OSError) as exc:
        raise CatalogError(f"STAC API {url}: {exc}".splitlines()[0]) from exc
