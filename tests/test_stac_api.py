"""histcalc.stac_api against a real STAC API (stac-fastapi-pgstac on PostgreSQL/PostGIS) on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import time
from datetime import date

import pytest

from histcalc.errors import CatalogError
from histcalc.stac_api import safe_url, search_items

from .servers import terrascope as ts
from .servers._proc import free_port
from .servers.faults import FlakyProxy, HangingServer
from .servers.terrascope import PAGING_COLLECTION, PAGING_COUNT

# A plugin rather than an import, so all modules share one set of session-scoped servers.
pytest_plugins = ["tests.servers.fixtures"]

pytestmark = pytest.mark.servers

START, END = date(2024, 5, 1), date(2024, 6, 10)


def ids(items: object) -> set[str]:
    return {item.id for item in items}  # type: ignore[attr-defined]


def test_finds_the_scenes_of_the_inclusive_date_range_over_the_bbox(stac_api, terrascope_archive):
    found = list(search_items(stac_api.url, ts.COLLECTION, START, END, ts.BBOX))
    assert ids(found) == {s.id for s in terrascope_archive.in_range()}
    asset = found[0].assets[ts.ASSET]
    assert asset.href.startswith("http://127.0.0.1:")
    assert asset.extra_fields["alternate"]["local"]["href"].endswith(".tif")


@pytest.mark.parametrize(
    ("day", "stamp"),
    [
        (date(2024, 4, 30), "2024-04-30T23:59:59Z"),  # last second of the day is in
        (date(2024, 5, 1), "2024-05-01T00:00:00Z"),  # first instant of the day is in
        (date(2024, 6, 11), "2024-06-11T00:00:00Z"),
    ],
)
def test_a_single_day_is_the_whole_utc_day(stac_api, terrascope_archive, day, stamp):
    found = list(search_items(stac_api.url, ts.COLLECTION, day, day, ts.BBOX))
    assert ids(found) == {s.id for s in terrascope_archive.scenes if s.datetime == stamp}


def test_a_bbox_elsewhere_matches_nothing(stac_api):
    assert list(search_items(stac_api.url, ts.COLLECTION, START, END, (3.0, 50.5, 3.1, 50.6))) == []


def test_pages_through_a_large_result_set(stac_api):
    mark = stac_api.log_mark()
    found = list(search_items(stac_api.url, PAGING_COLLECTION, START, END, ts.BBOX, page_size=20))
    assert len(found) == PAGING_COUNT == len(ids(found))
    searches = [line for line in stac_api.request_lines(mark) if "/search" in line]
    assert len(searches) == -(-PAGING_COUNT // 20)  # one request per page of 20


def test_max_items_stops_early(stac_api):
    found = list(search_items(stac_api.url, PAGING_COLLECTION, START, END, None, page_size=10, max_items=25))
    assert len(found) == 25


@pytest.mark.parametrize(
    "kwargs",
    [
        {"filter": "eo:cloud_cover < 50"},
        {"filter": {"op": "<", "args": [{"property": "eo:cloud_cover"}, 50]}},
        {"query": {"eo:cloud_cover": {"lt": 50}}},
    ],
    ids=["cql2-text", "cql2-json", "query-extension"],
)
def test_filters_on_properties(stac_api, terrascope_archive, kwargs):
    found = list(search_items(stac_api.url, ts.COLLECTION, START, END, ts.BBOX, **kwargs))
    expected = {s.id for s in terrascope_archive.in_range() if s.cloud_cover < 50}
    assert 0 < len(expected) < len(terrascope_archive.in_range())
    assert ids(found) == expected


def one_line_error(excinfo: pytest.ExceptionInfo[CatalogError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_unknown_collection_is_a_one_line_catalog_error(stac_api):
    with pytest.raises(CatalogError) as excinfo:
        list(search_items(stac_api.url, "no-such-collection", START, END, ts.BBOX))
    assert one_line_error(excinfo) == f"STAC API {stac_api.url}: no collection 'no-such-collection'"


def test_unreachable_api_is_a_one_line_catalog_error():
    url = f"http://127.0.0.1:{free_port()}/"
    started = time.monotonic()
    with pytest.raises(CatalogError) as excinfo:
        list(search_items(url, ts.COLLECTION, START, END, ts.BBOX, retries=2, backoff=0.1))
    assert "cannot connect (Connection refused)" in one_line_error(excinfo)
    assert time.monotonic() - started < 10


def test_hanging_api_times_out():
    with HangingServer() as hanging:
        started = time.monotonic()
        with pytest.raises(CatalogError) as excinfo:
            list(search_items(hanging.url, ts.COLLECTION, START, END, ts.BBOX, timeout=1, retries=1))
        elapsed = time.monotonic() - started
    assert "no answer within 1 s" in one_line_error(excinfo)
    assert hanging.accepted == 2  # the first try and one retry
    assert elapsed < 6


def test_retries_5xx_with_backoff_then_succeeds(stac_api, terrascope_archive):
    with FlakyProxy(stac_api.url, [503, 502]) as proxy:
        found = list(search_items(proxy.url, ts.COLLECTION, START, END, ts.BBOX, backoff=0.05))
    assert ids(found) == {s.id for s in terrascope_archive.in_range()}
    assert [status for _, _, status in proxy.seen[:3]] == [503, 502, 200]


def test_retries_a_failed_page_in_the_middle_of_paging(stac_api):
    with FlakyProxy(stac_api.url) as proxy:
        found = []
        pages = search_items(proxy.url, PAGING_COLLECTION, START, END, None, page_size=50, backoff=0.05)
        for item in pages:
            if len(found) == 0:
                proxy.fail_next(500, 504)  # the next page request fails twice
            found.append(item)
    assert len(ids(found)) == PAGING_COUNT
    statuses = [status for _, path, status in proxy.seen if path.startswith("/search")]
    assert statuses.count(500) == 1 and statuses.count(504) == 1


def test_gives_up_after_the_retries_with_the_status_in_one_line(stac_api):
    with FlakyProxy(stac_api.url, [500] * 10) as proxy, pytest.raises(CatalogError) as excinfo:
        list(search_items(proxy.url, ts.COLLECTION, START, END, ts.BBOX, retries=2, backoff=0))
    assert one_line_error(excinfo) == f"STAC API {proxy.url}: HTTP 500: injected failure"
    assert len(proxy.seen) == 3  # the first try and two retries


def test_a_url_that_is_no_stac_api_is_a_catalog_error(http_server, terrascope_archive):
    cog = f"{http_server.url}/{terrascope_archive.scenes[0].relpath}"
    with pytest.raises(CatalogError) as excinfo:
        list(search_items(cog, ts.COLLECTION, START, END, ts.BBOX, retries=0))
    assert one_line_error(excinfo).startswith(f"STAC API {cog}: ")


@pytest.fixture
def api_without_filter(http_server, terrascope_archive):
    """A static landing page served by nginx that conforms to item search but not to filter/query."""
    root = terrascope_archive.root / "no-filter-api"
    (root / "collections").mkdir(parents=True, exist_ok=True)
    url = f"{http_server.url}/no-filter-api/"
    conforms = ["core", "item-search", "collections"]
    landing = {
        "type": "Catalog",
        "stac_version": "1.0.0",
        "id": "no-filter",
        "description": "item search without the filter and query extensions",
        "conformsTo": [f"https://api.stacspec.org/v1.0.0/{c}" for c in conforms],
        "links": [{"rel": "search", "href": f"{url}search", "method": "POST"}],
    }
    (root / "index.html").write_text(json.dumps(landing))
    (root / "collections" / ts.COLLECTION).write_text(json.dumps(ts.stac_collection()))
    return url


@pytest.mark.parametrize(
    ("kwargs", "extension"),
    [({"filter": "eo:cloud_cover < 50"}, "filter extension (CQL2)"), ({"query": ["eo:cloud_cover<50"]}, "query")],
)
def test_a_filter_the_api_cannot_apply_is_an_error_not_ignored(api_without_filter, kwargs, extension):
    with pytest.raises(CatalogError) as excinfo:
        list(search_items(api_without_filter, ts.COLLECTION, START, END, ts.BBOX, **kwargs))
    assert f"does not support the {extension}" in one_line_error(excinfo)


def test_credentials_stay_out_of_messages_and_logs(stac_api, caplog):
    secret = "s3cr3t-bearer-value"
    url = stac_api.url.replace("http://", f"http://user:{secret}@") + "/?token=" + secret
    caplog.set_level(logging.DEBUG)
    with pytest.raises(CatalogError) as excinfo:
        list(search_items(url, "no-such-collection", START, END, None, headers={"Authorization": f"Bearer {secret}"}))
    assert secret not in str(excinfo.value)
    assert secret not in caplog.text
    assert "Authorization" in caplog.text  # the request was logged, with the value hidden


def test_safe_url_drops_userinfo_and_query():
    assert safe_url("https://me:pw@stac.example:8443/api?token=x#f") == "https://stac.example:8443/api"
