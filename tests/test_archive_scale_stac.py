"""A STAC API search over 50,000 items: every item selected, page by page, with a small driver."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.servers import terrascope as ts
from tests.servers.stac import StacApiServer

pytestmark = [pytest.mark.servers, pytest.mark.slow]

COLLECTION = "archive-scale"
ITEMS = 50_000
DRIVER_RSS_LIMIT_MB = 300

SELECT = """
import json, sys
from datetime import date
from histcalc.scenes import Query, find_scenes
scenes = find_scenes(Query(sys.argv[1], sys.argv[2], date(2024, 5, 1), date(2024, 6, 30), (4.0, 50.0, 6.0, 52.0)))
# VmHWM, not getrusage: after fork + exec, ru_maxrss still holds the parent's (pytest's) peak
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"scenes": len(scenes), "unique": len({s.id for s in scenes}), "rss_mb": hwm / 1024}))
"""


@pytest.fixture(scope="module")
def big_api() -> Iterator[StacApiServer]:
    items = ts.paging_items(COLLECTION, ITEMS)  # 17 s apart from 2024-05-15: ten days of scenes
    with StacApiServer([ts.stac_collection(COLLECTION)], items) as server:
        yield server


def test_selects_fifty_thousand_items_page_by_page_with_a_small_driver(big_api: StacApiServer) -> None:
    mark = big_api.log_mark()
    out = subprocess.run(
        [sys.executable, "-c", SELECT, big_api.url, COLLECTION], capture_output=True, text=True, check=True
    )
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["scenes"] == found["unique"] == ITEMS
    searches = [line for line in big_api.request_lines(mark) if "/search" in line]
    assert len(searches) == ITEMS // 1000  # pages of 1,000 items
    assert found["rss_mb"] < DRIVER_RSS_LIMIT_MB, f"driver peak RSS {found['rss_mb']:.0f} MB"
