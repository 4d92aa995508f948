"""--cache on real servers: an S3 cache (moto) written by Spark executors, S3 and HTTP (nginx) files keyed by ETag."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from histcalc import Scene, compute_histogram
from histcalc.cache import S3Store
from histcalc.cached_task import ENTRY_SUFFIX
from tests.conftest import brute_force
from tests.servers.nginx import NginxServer
from tests.servers.s3 import SECRET_KEY, MotoS3Server
from tests.test_cache import BINS, JUNE, MAY, assert_same, write_scene

pytestmark = pytest.mark.servers
DATA, CACHE = "archive", "histcalc-cache"


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3Server]:
    with MotoS3Server() as server:
        server.client().create_bucket(Bucket=CACHE)
        yield server


def upload(s3: MotoS3Server, scenes: list[Scene]) -> list[Scene]:
    """The scenes' NDVI files in the data bucket, as s3:// hrefs."""
    client = s3.client()
    if DATA not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=DATA)
    out = []
    for scene in scenes:
        key = f"ndvi/{Path(scene.href).name}"
        client.upload_file(scene.href, DATA, key)
        out.append(Scene(id=scene.id, href=f"s3://{DATA}/{key}", day=scene.day))
    return out


def entry_count(s3: MotoS3Server, prefix: str) -> int:
    store = S3Store(f"s3://{CACHE}/{prefix}", s3.gdal_settings())
    return sum(1 for e in store.list() if e.name.endswith(ENTRY_SUFFIX))


@pytest.mark.spark
def test_an_s3_cache_from_spark_executors_with_s3_files(s3: MotoS3Server, tmp_path: Path, spark: Any) -> None:
    may = upload(s3, [write_scene(tmp_path, d, i) for i, d in enumerate(MAY)])
    june = upload(s3, [write_scene(tmp_path, d, 50 + i) for i, d in enumerate(JUNE)])
    cache, gdal = f"s3://{CACHE}/spark-run", s3.gdal_settings()

    def job(scenes: list[Scene], location: str | None) -> Any:
        return compute_histogram(scenes, BINS, engine="spark", spark=spark, gdal=gdal, cache=location)

    assert job(may, cache).files_cached == 0
    assert entry_count(s3, "spark-run") == len(may)  # written by the executors
    second = job(may + june, cache)
    assert second.files_cached == len(may)
    assert_same(second, job(may + june, None))
    ref = brute_force([tmp_path / Path(s.href).name for s in may + june], BINS.array)
    np.testing.assert_array_equal(second.histogram.counts, ref["counts"])
    (tmp_path / "new").mkdir()
    rewritten = write_scene(tmp_path / "new", MAY[0], seed=777)
    s3.client().upload_file(rewritten.href, DATA, f"ndvi/{Path(rewritten.href).name}")  # new ETag
    third = job(may + june, cache)
    assert third.files_cached == len(may) + len(june) - 1
    files = [Path(rewritten.href)] + [tmp_path / Path(s.href).name for s in (may + june)[1:]]
    np.testing.assert_array_equal(third.histogram.counts, brute_force(files, BINS.array)["counts"])


def test_cli_on_an_s3_cache_info_and_prune(
    s3: MotoS3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from histcalc.cli import main

    for key, value in s3.gdal_settings().items():
        monkeypatch.setenv(key, value)
    for i, day in enumerate([*MAY, *JUNE]):
        write_scene(tmp_path, day, i)
    cache = f"s3://{CACHE}/cli"
    argv = ["--catalog", str(tmp_path), "--engine", "local", "--workers", "2", "--cache", cache, "-q"]
    assert main([*argv, "--start-date", "2024-05-01", "--end-date", "2024-05-31"]) == 0
    assert main(argv) == 0
    assert f"{len(MAY)} from cache, {len(JUNE)} read" in capsys.readouterr().out
    assert main(["cache", "info", cache]) == 0
    out = capsys.readouterr().out
    assert f"{len(MAY) + len(JUNE)} entries" in out and "1 job(s)" in out and SECRET_KEY not in out
    assert main(["cache", "prune", cache, "--older-than", "0d"]) == 0
    assert entry_count(s3, "cli") == 0
    assert main([*argv, "--cache", f"s3://no-such-bucket-{date.today():%Y%m%d}/x"]) == 7
    err = capsys.readouterr().err.strip()
    assert "cannot write there" in err and len(err.splitlines()) == 1 and SECRET_KEY not in err


def test_http_files_behind_a_token_are_keyed_by_etag_and_not_fetched_again(tmp_path: Path) -> None:
    served = tmp_path / "www"
    served.mkdir()
    scenes = [write_scene(served, d, i) for i, d in enumerate(MAY)]
    with NginxServer(served) as http:
        remote = [Scene(id=s.id, href=f"{http.url}/secure/{Path(s.href).name}", day=s.day) for s in scenes]
        gdal = {"GDAL_HTTP_HEADERS": f"Authorization: Bearer {http.token}"}

        def job(location: str | None) -> Any:
            return compute_histogram(remote, BINS, engine="local", workers=2, gdal=gdal, cache=location)

        cache = str(tmp_path / "cache")
        assert job(cache).files_cached == 0
        mark = http.log_mark()
        again = job(cache)
        assert again.files_cached == len(MAY)
        requests = http.records(mark)
        assert {(r.method, r.status) for r in requests} == {("HEAD", 200)}  # no pixel was fetched again
        assert len(requests) == len(MAY)
        assert_same(again, job(None))
        (tmp_path / "new").mkdir()
        rewritten = write_scene(tmp_path / "new", MAY[2], seed=4242)
        target = served / Path(rewritten.href).name
        Path(rewritten.href).replace(target)
        os.utime(target, (time.time() + 10, time.time() + 10))  # nginx's ETag: mtime and size
        third = job(cache)
        assert third.files_cached == len(MAY) - 1
        want = brute_force([served / Path(s.href).name for s in scenes], BINS.array)
        np.testing.assert_array_equal(third.histogram.counts, want["counts"])


def test_a_rewritten_s3_file_is_counted_fresh_in_a_process_that_read_it_before(
    s3: MotoS3Server, tmp_path: Path
) -> None:
    """GDAL serves a remote file's cached bytes for the life of a process, unasked: the recount must not see them."""
    local = [write_scene(tmp_path, d, 300 + i) for i, d in enumerate(MAY[:3])]
    scenes = upload(s3, local)
    cache, gdal = str(tmp_path / "cache"), s3.gdal_settings()

    def job(location: str | None) -> Any:  # one process: the reads happen in this one, with GDAL's cache
        return compute_histogram(scenes, BINS, engine="local", workers=1, gdal=gdal, cache=location)

    job(None)  # GDAL now holds the files' bytes
    (tmp_path / "new").mkdir()
    rewritten = write_scene(tmp_path / "new", MAY[0], seed=31337)
    s3.client().upload_file(rewritten.href, DATA, f"ndvi/{Path(rewritten.href).name}")
    result = job(cache)
    files = [Path(rewritten.href)] + [Path(s.href) for s in local[1:]]
    np.testing.assert_array_equal(result.histogram.counts, brute_force(files, BINS.array)["counts"])
