"""Remote sources end to end: a real STAC API, COGs over HTTP (nginx) and S3 (moto), both engines.

The same query through the STAC API must give the same histogram whether the files are read from
the mounted paths (``alternate.local.href``), over HTTP with range requests, or from S3; on the
local engine and on Spark. Every failure mode ends as a named failed file or a one-line error.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from histcalc import AOI, BinSpec, JobResult, Query, Scene, compute_histogram, find_scenes, gdalenv
from histcalc.stac_api import safe_url

from .servers import terrascope as ts
from .servers._proc import free_port
from .servers.s3 import SECRET_KEY

pytest_plugins = ["tests.servers.fixtures"]

START, END = date(2024, 5, 1), date(2024, 6, 10)
AOI_BBOX = AOI.from_bbox(ts.BBOX)
ARGS = ["--start-date", "2024-05-01", "--end-date", "2024-06-10", "--bbox", ",".join(map(str, ts.BBOX))]
FAST_FAIL = {"GDAL_HTTP_TIMEOUT": "2", "GDAL_HTTP_MAX_RETRY": "0"}  # the hanging server: 2 s, not 60


def query(api: Any, collection: str = ts.COLLECTION, href_mode: str = "remote") -> Query:
    return Query(api.url, collection, START, END, ts.BBOX, ts.ASSET, href_mode)  # type: ignore[arg-type]


def assert_same_histogram(result: JobResult, reference: JobResult) -> None:
    np.testing.assert_array_equal(result.histogram.counts, reference.histogram.counts)
    h, r = result.histogram, reference.histogram
    assert (h.below, h.above, h.nodata) == (r.below, r.above, r.nodata)
    assert result.files_failed == {}
    assert len(result.files_ok) == len(reference.files_ok) == result.files_total


def run_cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    cmd = [sys.executable, "-m", "histcalc", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=120, check=False)


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in proc.stderr
    return [line for line in proc.stderr.splitlines() if line.startswith("histcalc: error:")]


@pytest.fixture
def s3_env(s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The S3 server's endpoint and keys in this process's environment, as a user would set them."""
    settings = s3_server.gdal_settings()
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    return settings


@pytest.fixture(scope="module")
def reference(stac_api: Any) -> JobResult:
    """The histogram of the mounted files, found through the same STAC API query."""
    scenes = find_scenes(query(stac_api, href_mode="local"))
    assert all(Path(s.href).is_file() for s in scenes)
    result = compute_histogram(scenes, aoi=AOI_BBOX, engine="local", workers=1)
    assert len(result.files_ok) == 6 and result.histogram.count > 0
    return result


# --- the STAC API picks the hrefs ------------------------------------------------------------


@pytest.mark.servers
@pytest.mark.parametrize(("mode", "prefix"), [("auto", "/"), ("local", "/"), ("remote", "http://127.0.0.1:")])
def test_href_mode_chooses_the_mounted_path_or_the_remote_href(stac_api, mode, prefix):
    scenes = find_scenes(query(stac_api, href_mode=mode))
    assert len(scenes) == 6
    assert all(s.href.startswith(prefix) for s in scenes)


@pytest.mark.servers
def test_auto_falls_back_to_the_remote_href_when_the_mounted_path_is_missing(stac_api):
    auto = find_scenes(query(stac_api, ts.BROKEN_COLLECTION, href_mode="auto"))
    assert len(auto) == 6 and all("://" in s.href for s in auto)
    local = find_scenes(query(stac_api, ts.BROKEN_COLLECTION, href_mode="local"))
    assert all(s.href.startswith("/data/MTDA/") and not Path(s.href).exists() for s in local)


# --- same histogram from every source, on both engines -----------------------------------------


@pytest.mark.servers
def test_http_local_engine_matches_the_mounted_files(stac_api, reference):
    scenes = find_scenes(query(stac_api))
    assert all(s.href.startswith("http://127.0.0.1:") for s in scenes)
    assert_same_histogram(compute_histogram(scenes, aoi=AOI_BBOX, engine="local", workers=2), reference)


@pytest.mark.servers
def test_s3_local_engine_matches_the_mounted_files(stac_api, s3_env, reference):
    scenes = find_scenes(query(stac_api, ts.S3_COLLECTION))
    assert all(s.href.startswith(f"s3://{ts.BUCKET}/") for s in scenes)
    assert_same_histogram(compute_histogram(scenes, aoi=AOI_BBOX, engine="local", workers=2), reference)


@pytest.mark.servers
@pytest.mark.spark
def test_spark_executors_do_not_inherit_the_drivers_environment(spark, s3_env):
    """Why the settings must travel with the tasks: the S3 keys set now never reach the workers.

    (Every test here asks for ``spark`` before ``s3_env``, so the JVM never starts with the keys.)
    """
    seen = spark.sparkContext.parallelize([0], 1).map(lambda _: os.environ.get("AWS_SECRET_ACCESS_KEY")).collect()
    assert seen == [None]


@pytest.mark.servers
@pytest.mark.spark
@pytest.mark.parametrize("collection", [ts.COLLECTION, ts.S3_COLLECTION], ids=["http", "s3"])
def test_spark_engine_matches_the_mounted_files(spark, stac_api, s3_env, reference, collection):
    scenes = find_scenes(query(stac_api, collection))
    result = compute_histogram(scenes, aoi=AOI_BBOX, engine="spark", spark=spark)
    assert_same_histogram(result, reference)


@pytest.mark.servers
@pytest.mark.spark
def test_bearer_token_reaches_spark_tasks(http_server, terrascope_archive, spark, reference):
    scenes = [Scene(s.id, f"{http_server.url}/secure/{s.relpath}") for s in terrascope_archive.in_range()]
    settings = gdalenv.capture({}, token=http_server.token)
    result = compute_histogram(scenes, aoi=AOI_BBOX, engine="spark", spark=spark, gdal=settings)
    assert_same_histogram(result, reference)


@pytest.mark.servers
def test_without_the_token_every_file_fails_by_name(http_server, terrascope_archive):
    # other URLs than the test above: GDAL caches a URL's answers in each process
    scenes = [Scene(s.id, f"{http_server.url}/secure//{s.relpath}") for s in terrascope_archive.in_range()]
    bins = BinSpec.per_digital_number("uint8", ts.SCALE, ts.OFFSET)  # default bins would need a readable file
    result = compute_histogram(scenes, bins, AOI_BBOX, engine="local", workers=2, gdal=gdalenv.capture({}))
    assert sorted(result.files_failed) == sorted(s.href for s in scenes)
    assert all("401" in error for error in result.files_failed.values())


@pytest.mark.servers
def test_local_workers_do_not_share_the_parents_http_connections(http_server, terrascope_archive):
    """The driver reads a header over HTTP (default bins do) and keeps the connection open; worker
    processes forked from it would inherit that socket and interleave their requests on it."""
    from histcalc.raster import inspect

    settings = gdalenv.capture({})
    first, *others = terrascope_archive.scenes
    inspect(f"{http_server.url}/{first.relpath}?fork-test", 1, settings)
    scenes = [Scene(s.id, f"{http_server.url}/{s.relpath}?fork-test") for s in others]
    bins = BinSpec.per_digital_number("uint8", ts.SCALE, ts.OFFSET)
    started = time.monotonic()
    result = compute_histogram(scenes, bins, engine="local", workers=2, gdal=settings)
    assert result.files_failed == {}
    assert time.monotonic() - started < 15  # not stalled until the server drops the shared connection


# --- the CLI -------------------------------------------------------------------------------------


@pytest.mark.servers
@pytest.mark.parametrize("collection", [ts.COLLECTION, ts.S3_COLLECTION], ids=["http", "s3"])
def test_cli_remote_matches_the_mounted_files(stac_api, s3_server, reference, tmp_path, collection):
    out = tmp_path / "out.json"
    args = ["--catalog", stac_api.url, "--collection", collection, *ARGS, "--href-mode", "remote"]
    args += ["--engine", "local", "--workers", "2", "--output", str(out), "-vv"]
    proc = run_cli(args, s3_server.gdal_settings())
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["counts"] == reference.histogram.counts.tolist()
    assert {k: doc["files"][k] for k in ("total", "ok", "failed")} == {"total": 6, "ok": 6, "failed": []}
    assert len(doc["files"]["used"]) == 6
    for text in (proc.stdout, proc.stderr, out.read_text()):
        assert SECRET_KEY not in text  # even at debug level


@pytest.mark.servers
def test_cli_failure_modes_are_named_failed_files(stac_api, s3_server, tmp_path):
    out = tmp_path / "out.json"
    args = ["--catalog", stac_api.url, "--collection", ts.BROKEN_COLLECTION, *ARGS]
    args += ["--engine", "local", "--workers", "2", "--output", str(out)]
    proc = run_cli(args, {**s3_server.gdal_settings(), **FAST_FAIL})
    assert proc.returncode == 5, proc.stderr[-2000:]  # TooManyFailures
    assert len(error_lines(proc)) == 1
    doc = json.loads(out.read_text())
    assert doc["files"]["total"] == 6 and doc["files"]["ok"] == 1
    errors = {f["href"]: f["error"] for f in doc["files"]["failed"]}
    assert len(errors) == 5 and all("\n" not in e and e for e in errors.values())
    by_kind = {_kind(href): error for href, error in errors.items()}
    assert "404" in by_kind["http404"] and "500" in by_kind["http500"]
    assert "timed out" in by_kind["hanging"].lower() or "timeout" in by_kind["hanging"].lower()
    assert {"s3-no-key", "s3-no-bucket"} <= set(by_kind)
    assert SECRET_KEY not in proc.stderr + proc.stdout + out.read_text()


def _kind(href: str) -> str:
    if "/fail500/" in href:
        return "http500"
    if "no/such/file" in href:
        return "http404"
    if "no/such/key" in href:
        return "s3-no-key"
    if "no-such-bucket" in href:
        return "s3-no-bucket"
    return "hanging"


@pytest.mark.servers
@pytest.mark.spark
def test_spark_failure_modes_are_named_failed_files(spark, stac_api, s3_env, monkeypatch):
    for key, value in FAST_FAIL.items():
        monkeypatch.setenv(key, value)
    scenes = find_scenes(query(stac_api, ts.BROKEN_COLLECTION))
    result = compute_histogram(scenes, aoi=AOI_BBOX, engine="spark", spark=spark)
    assert len(result.files_ok) == 1 and len(result.files_failed) == 5
    assert {_kind(h) for h in result.files_failed} == {"http404", "http500", "hanging", "s3-no-key", "s3-no-bucket"}


@pytest.mark.servers
@pytest.mark.parametrize(
    ("catalog", "collection", "expected"),
    [
        ("API", "no-such-collection", "no collection 'no-such-collection'"),
        ("UNREACHABLE", ts.COLLECTION, "cannot connect (Connection refused)"),
    ],
    ids=["unknown-collection", "unreachable-api"],
)
def test_cli_catalog_errors_are_one_line(stac_api, catalog, collection, expected):
    url = stac_api.url if catalog == "API" else f"http://127.0.0.1:{free_port()}/"
    proc = run_cli(["--catalog", url, "--collection", collection, *ARGS, "--engine", "local"])
    assert proc.returncode == 3  # CatalogError
    assert error_lines(proc) == [f"histcalc: error: STAC API {safe_url(url)}: {expected}"]


# --- only the blocks needed cross the network -----------------------------------------------------


def small_aoi() -> AOI:
    """A 600 m x 600 m box near the middle of the large COG (41 km wide), inside one 512 px block."""
    return AOI.from_bbox(ts.lonlat_box(653_040.0, 5_658_960.0, 300.0))


@pytest.mark.servers
def test_small_aoi_over_http_fetches_a_small_part_of_the_cog(http_server, big_cog, record_property):
    url = f"{http_server.url}/{big_cog.relpath}"
    mark = http_server.log_mark()
    result = compute_histogram([Scene(big_cog.id, url)], aoi=small_aoi(), engine="local", workers=1)
    requests = [r for r in http_server.records(mark) if r.path.endswith(big_cog.relpath)]
    fetched, size = sum(r.bytes_sent for r in requests), big_cog.path.stat().st_size
    local = compute_histogram([Scene(big_cog.id, str(big_cog.path))], aoi=small_aoi(), engine="local", workers=1)
    np.testing.assert_array_equal(result.histogram.counts, local.histogram.counts)
    assert result.histogram.count == local.histogram.count > 3000  # ~60 x 60 px
    record_property("http_bytes_fetched", fetched)
    record_property("http_requests", len(requests))
    record_property("cog_bytes", size)
    print(f"\nHTTP: {len(requests)} requests, {fetched} of {size} bytes ({100 * fetched / size:.2f} %)")
    assert all(r.status in (200, 206) for r in requests)
    assert fetched < 0.05 * size


@pytest.mark.servers
def test_small_aoi_over_s3_makes_few_range_requests(s3_server, s3_env, big_cog, record_property):
    s3_server.client().upload_file(str(big_cog.path), ts.BUCKET, big_cog.relpath)
    mark = s3_server.log_mark()
    href = f"s3://{ts.BUCKET}/{big_cog.relpath}"
    result = compute_histogram([Scene(big_cog.id, href)], aoi=small_aoi(), engine="local", workers=1)
    assert result.files_ok == [href] and result.histogram.count > 3000
    requests = [r for r in s3_server.requests(mark) if big_cog.relpath in r[1]]
    record_property("s3_requests", len(requests))
    print(f"\nS3: {len(requests)} requests for a 600 m AOI of a {big_cog.path.stat().st_size} byte COG")
    assert 0 < len(requests) <= 8


# --- settings captured on the driver (no servers needed) --------------------------------------------


def test_capture_takes_gdal_and_cloud_settings_over_defaults():
    env = {"GDAL_HTTP_TIMEOUT": "5", "AWS_REGION": "eu-west-1", "CURL_CA_BUNDLE": "/ca.pem", "HOME": "/root"}
    settings = gdalenv.capture(env)
    assert settings["GDAL_HTTP_TIMEOUT"] == "5"  # the user's value wins
    assert gdalenv.for_href(settings, "/vsis3/b/k.tif")["GDAL_DISABLE_READDIR_ON_OPEN"] == "EMPTY_DIR"  # remote only
    assert "GDAL_DISABLE_READDIR_ON_OPEN" not in gdalenv.for_href(settings, "/data/k.tif")  # local: sidecars seen
    assert settings["AWS_REGION"] == "eu-west-1" and settings["CURL_CA_BUNDLE"] == "/ca.pem"
    assert "HOME" not in settings
    assert pickle.loads(pickle.dumps(settings)) == settings  # travels to executors as it is


@pytest.mark.parametrize(
    ("url", "endpoint", "https"),
    [("http://127.0.0.1:9000", "127.0.0.1:9000", "NO"), ("https://s3.example.org", "s3.example.org", "YES")],
)
def test_capture_translates_boto_endpoint_urls(url, endpoint, https):
    settings = gdalenv.capture({"AWS_ENDPOINT_URL": url})
    assert settings["AWS_S3_ENDPOINT"] == endpoint and settings["AWS_HTTPS"] == https
    assert settings["AWS_VIRTUAL_HOSTING"] == "FALSE"
    assert gdalenv.capture({"AWS_ENDPOINT_URL": url, "AWS_S3_ENDPOINT": "x:1"})["AWS_S3_ENDPOINT"] == "x:1"


def test_capture_inlines_the_header_file_and_the_token(tmp_path):
    header_file = tmp_path / "headers.txt"
    header_file.write_text("X-Client: histcalc\nAuthorization: Bearer old\n")
    settings = gdalenv.capture({"GDAL_HTTP_HEADER_FILE": str(header_file)})
    assert "GDAL_HTTP_HEADER_FILE" not in settings  # executors cannot see the driver's file
    assert settings["GDAL_HTTP_HEADERS"] == "X-Client: histcalc\r\nAuthorization: Bearer old"
    with_token = gdalenv.capture({"GDAL_HTTP_HEADER_FILE": str(header_file), "HISTCALC_HTTP_TOKEN": "new"})
    assert with_token["GDAL_HTTP_HEADERS"] == "X-Client: histcalc\r\nAuthorization: Bearer new"
    assert gdalenv.capture({}, token="t")["GDAL_HTTP_HEADERS"] == "Authorization: Bearer t"


def test_redacted_hides_every_secret_and_keeps_the_rest():
    secrets = {
        "AWS_SECRET_ACCESS_KEY": "a",
        "AWS_SESSION_TOKEN": "b",
        "GDAL_HTTP_HEADERS": "Authorization: Bearer c",
        "GDAL_HTTP_USERPWD": "me:d",
        "AZURE_STORAGE_CONNECTION_STRING": "e",
        "GDAL_HTTP_BEARER": "f",
    }
    plain = {"AWS_S3_ENDPOINT": "127.0.0.1:9000", "GDAL_HTTP_TIMEOUT": "60"}
    shown = gdalenv.redacted({**secrets, **plain})
    assert all(shown[k] == "***" for k in secrets) and all(shown[k] == v for k, v in plain.items())
    line = gdalenv.describe({**secrets, **plain})
    assert "\n" not in line and not any(f"={v}" in line for v in secrets.values())


@pytest.mark.servers
@pytest.mark.parametrize(
    "text", ["eo:cloud_cover < 50", '{"op": "<", "args": [{"property": "eo:cloud_cover"}, 50]}'], ids=["cql2", "json"]
)
def test_cli_filter_selects_by_cloud_cover(stac_api, terrascope_archive, tmp_path, text):
    out = tmp_path / "out.json"
    args = ["--catalog", stac_api.url, "--collection", ts.COLLECTION, *ARGS, "--filter", text]
    proc = run_cli([*args, "--href-mode", "local", "--engine", "local", "--workers", "1", "--output", str(out)])
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = [s for s in terrascope_archive.in_range() if s.cloud_cover < 50]
    assert 0 < len(expected) < len(terrascope_archive.in_range())
    doc = json.loads(out.read_text())
    assert doc["files"]["total"] == len(expected) and doc["query"]["filter"] == text
