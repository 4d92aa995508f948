"""pytest fixtures that start the real servers once per test session.

Load them from a test module with::

    pytest_plugins = ["tests.servers.fixtures"]

(a plugin, not an import, so every module shares the same session-scoped servers).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import terrascope as ts
from .faults import HangingServer
from .nginx import NginxServer
from .s3 import MotoS3Server
from .stac import StacApiServer

BUCKET, S3_COLLECTION = ts.BUCKET, ts.S3_COLLECTION
PAGING_COLLECTION, PAGING_COUNT = ts.PAGING_COLLECTION, ts.PAGING_COUNT


@pytest.fixture(scope="session")
def terrascope_archive(tmp_path_factory: pytest.TempPathFactory) -> ts.Archive:
    """Terrascope-like NDVI COGs on local disk (the 'mounted' copy)."""
    return ts.write_archive(tmp_path_factory.mktemp("MTDA") / "TERRASCOPE_Sentinel2" / "NDVI_V2")


@pytest.fixture(scope="session")
def big_cog(terrascope_archive: ts.Archive) -> ts.Scene:
    """A 4096 x 4096 px COG (512 px blocks) next to the archive, served by nginx too."""
    return ts.write_big_cog(terrascope_archive.root)


@pytest.fixture(scope="session")
def http_server(terrascope_archive: ts.Archive) -> Iterator[NginxServer]:
    """nginx serving the archive with range requests; ``.records()`` reads its access log."""
    with NginxServer(terrascope_archive.root) as server:
        yield server


@pytest.fixture(scope="session")
def s3_server(terrascope_archive: ts.Archive) -> Iterator[MotoS3Server]:
    """moto's S3 server holding the archive in bucket ``terrascope`` under the same keys."""
    with MotoS3Server() as server:
        server.upload(BUCKET, [(s.path, s.relpath) for s in terrascope_archive.scenes])
        yield server


@pytest.fixture(scope="session")
def hanging_http() -> Iterator[HangingServer]:
    """A server that accepts connections and never answers."""
    with HangingServer() as server:
        yield server


def broken_hrefs(archive: ts.Archive, http: NginxServer, hanging: HangingServer) -> dict[str, str]:
    """One readable href and one per failure mode, keyed by a short name."""
    relpath = archive.in_range()[0].relpath
    return {
        "good": f"{http.url}/{relpath}",
        "http404": f"{http.url}/no/such/file.tif",
        "http500": f"{http.url}/fail500/{relpath}",
        "hanging": f"{hanging.url}/{relpath}",
        "s3-no-key": f"s3://{BUCKET}/no/such/key.tif",
        "s3-no-bucket": f"s3://no-such-bucket/{relpath}",
    }


@pytest.fixture(scope="session")
def stac_api(
    terrascope_archive: ts.Archive,
    http_server: NginxServer,
    s3_server: MotoS3Server,
    hanging_http: HangingServer,
) -> Iterator[StacApiServer]:
    """stac-fastapi-pgstac with four collections:

    - ``terrascope-s2-ndvi-v2``: NDVI hrefs over HTTP (nginx), mounted path as ``alternate.local``
    - ``terrascope-s2-ndvi-v2-s3``: the same scenes with ``s3://terrascope/...`` hrefs
    - ``paging-test``: 237 metadata-only items on 2024-05-15, for paging
    - ``broken-hrefs``: one good remote href and one per failure mode (see ``broken_hrefs``)
    """
    scenes = terrascope_archive.scenes
    items = [ts.stac_item(s, f"{http_server.url}/{s.relpath}") for s in scenes]
    items += [ts.stac_item(s, f"s3://{BUCKET}/{s.relpath}", S3_COLLECTION) for s in scenes]
    items += list(ts.paging_items(PAGING_COLLECTION, PAGING_COUNT))
    hrefs = broken_hrefs(terrascope_archive, http_server, hanging_http)
    items += ts.broken_items(terrascope_archive.in_range()[0], hrefs)
    names = (ts.COLLECTION, S3_COLLECTION, PAGING_COLLECTION, ts.BROKEN_COLLECTION)
    collections = [ts.stac_collection(c) for c in names]
    with StacApiServer(collections, items) as server:
        yield server
