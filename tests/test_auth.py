"""Login, token refresh and redaction against a real OpenID Connect provider and a real gated range server.

LemonLDAP::NG (Debian) issues 20-second JWT access tokens; nginx serves the COGs only to requests whose
token its userinfo endpoint accepts (auth_request), and serves the token endpoint under Terrascope's
Keycloak path. Installed by scripts/ci/install-auth-deps.sh and install-server-deps.sh.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from histcalc import gdalenv
from histcalc.cli import main
from histcalc.redact import forget_secrets, redact, register_secret
from histcalc.token_refresh import write_header_file
from histcalc.token_relay import TokenRelay, local_settings
from tests.conftest import write_raster
from tests.servers._proc import find_executable, free_port
from tests.servers.oidc import CLIENT_ID, PASSWORD, PORTAL_PSGI, USER, GatedNginx, LemonLdapServer

N_FILES = 30  # read two at a time at SLOW_RATE (~5 s a file): a job of ~75 s, over three token lifetimes
SLOW_RATE = "2k"  # bytes per second and connection on /protected-slow/
TOKEN_SECONDS = 20

servers = pytest.mark.servers


# ---------------------------------------------------------------- unit: one place redacts


def test_the_issues_example_is_redacted_everywhere_it_could_go() -> None:
    line = "selected 3 scene(s) from http://alice:PASSWORD@host/?token=abc.def&x=1"
    assert redact(line) == "selected 3 scene(s) from http://***@host/?token=***&x=1"
    assert "s3cr3t-value" not in redact('{"refresh_token": "s3cr3t-value"}')
    assert redact("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer ***"
    register_secret("hunter2-password")
    try:
        assert redact("failed: why hunter2-password here") == "failed: why *** here"
    finally:
        forget_secrets()


def test_a_catalog_url_with_credentials_never_reaches_logs_errors_or_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret_url = f"http://alice:PASSWORD@127.0.0.1:{free_port()}/catalog.json?token=tok-SECRET-123"
    code = main(["--catalog", secret_url, "--engine", "local", "-v", "-o", str(tmp_path / "r.json")])
    out, err = capsys.readouterr()
    assert code == 3 and len(err.strip().splitlines()) >= 1
    for text in (out, err):
        assert "PASSWORD" not in text and "tok-SECRET-123" not in text
    logging.getLogger("histcalc.scenes").info("selected 3 scene(s) from %s", secret_url)  # the issue's line
    logged = capsys.readouterr().err
    assert "selected 3 scene(s) from http://***@127.0.0.1" in logged and "PASSWORD" not in logged


def test_header_file_is_replaced_atomically_and_user_only(tmp_path: Path) -> None:
    path = tmp_path / "headers.txt"
    write_header_file(path, "first-token")
    write_header_file(path, "second-token")
    assert path.read_text() == "Authorization: Bearer second-token\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["headers.txt"]  # no temporary file left behind


def test_a_refreshed_header_file_travels_as_a_path_never_as_its_contents(tmp_path: Path) -> None:
    path = tmp_path / "h.txt"
    write_header_file(path, "the-token")
    environ = {"GDAL_HTTP_HEADER_FILE": str(path), gdalenv.REFRESHED_HEADER_FILE: str(path)}
    settings = gdalenv.capture({**environ, "GDAL_HTTP_HEADERS": "Authorization: Bearer stale\r\nX-A: 1"})
    assert settings["GDAL_HTTP_HEADER_FILE"] == str(path)
    assert settings["GDAL_HTTP_HEADERS"] == "X-A: 1"  # one Authorization header: the live one
    assert "the-token" not in json.dumps(settings)
    # without the marker, a user's header file is still inlined (executors elsewhere cannot read it)
    assert "GDAL_HTTP_HEADER_FILE" not in gdalenv.capture({"GDAL_HTTP_HEADER_FILE": str(path)})


def test_the_token_relay_answers_only_to_the_jobs_key() -> None:
    with TokenRelay(lambda: ("the-access-token", 12.5)) as relay:
        settings = relay.settings()
        assert "the-access-token" not in json.dumps(settings)
        assert relay.key not in gdalenv.describe(settings)  # hidden wherever settings are logged
        wrong = urllib.request.Request(relay.url, headers={"Authorization": "Bearer not-the-key"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(wrong, timeout=5)
        assert refused.value.code == 403
        local = local_settings(settings)  # what an executor process does with them
        assert set(local) == {"GDAL_HTTP_HEADER_FILE"}
        header = Path(local["GDAL_HTTP_HEADER_FILE"])
        assert header.read_text() == "Authorization: Bearer the-access-token\n"
        assert stat.S_IMODE(header.stat().st_mode) == 0o600


# ---------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def idp() -> Iterator[LemonLdapServer]:
    if find_executable("plackup") is None or not PORTAL_PSGI.is_file():
        pytest.skip("LemonLDAP::NG not installed (scripts/ci/install-auth-deps.sh)")
    if find_executable("nginx") is None:
        pytest.skip("nginx not installed (scripts/ci/install-server-deps.sh)")
    with LemonLdapServer(token_seconds=TOKEN_SECONDS) as server:
        yield server


@pytest.fixture(scope="module")
def rasters(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Small uint8 GeoTIFFs (values 0..250, nodata 255), uncompressed: ~10 KB each to send slowly."""
    root = tmp_path_factory.mktemp("gated")
    rng = np.random.default_rng(15)
    paths = []
    for i in range(N_FILES):
        data = rng.integers(0, 251, (96, 96), dtype=np.uint8)
        data[:3, :] = 255
        paths.append(write_raster(root / f"f{i:02d}.tif", data, nodata=255, block=None))
    return paths


@pytest.fixture(scope="module")
def gate(idp: LemonLdapServer, rasters: list[Path]) -> Iterator[GatedNginx]:
    with GatedNginx(rasters[0].parent, idp, slow_rate=SLOW_RATE) as server:
        yield server


@pytest.fixture
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    for name in ("TERRASCOPE_USERNAME", "TERRASCOPE_PASSWORD", "HISTCALC_HTTP_TOKEN", "GDAL_HTTP_HEADER_FILE"):
        monkeypatch.delenv(name, raising=False)
    forget_secrets()
    return home


def _items(base: str, paths: list[Path]) -> list[Any]:
    """STAC items whose NDVI assets are ``base/<file>`` (served by nginx), one a day from 2024-05-01."""
    import pystac

    day = datetime(2024, 5, 1, tzinfo=UTC)
    square = {"type": "Polygon", "coordinates": [[[4, 51], [5, 51], [5, 52], [4, 52], [4, 51]]]}
    items = []
    for i, p in enumerate(paths):
        item = pystac.Item(p.stem, square, [4, 51, 5, 52], day + timedelta(days=i), {})
        item.add_asset("NDVI", pystac.Asset(f"{base}/{p.name}", media_type=pystac.MediaType.GEOTIFF))
        items.append(item)
    return items


def _catalog(tmp_path: Path, base: str, paths: list[Path]) -> Path:
    """A static STAC catalog of :func:`_items`."""
    import pystac

    catalog = pystac.Catalog("gated", "files served to authenticated users only")
    for item in _items(base, paths):
        catalog.add_item(item)
    root = tmp_path / "catalog"
    catalog.normalize_hrefs(str(root))
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def _login(gate: GatedNginx, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TERRASCOPE_USERNAME", USER)
    monkeypatch.setenv("TERRASCOPE_PASSWORD", PASSWORD)
    assert main(["login", "--token-url", gate.token_url]) == 0
    monkeypatch.delenv("TERRASCOPE_PASSWORD")
    capsys.readouterr()


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("histcalc: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _job_args(catalog: Path, out: Path, *extra: str) -> list[str]:
    return ["--catalog", str(catalog), "--bins", "256", "--range", "0,256", "-o", str(out), *extra]


def _reference(paths: list[Path]) -> np.ndarray:
    values = []
    for p in paths:
        import rasterio

        with rasterio.open(p) as src:
            arr = src.read(1)
        values.append(arr[arr != 255])
    return np.histogram(np.concatenate(values), bins=np.arange(257))[0]


@servers
def test_login_keeps_only_the_refresh_token_in_a_user_only_file(
    gate: GatedNginx, config_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _login(gate, monkeypatch, capsys)
    stored = config_home / "histcalc" / "login.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    data = json.loads(stored.read_text())
    assert sorted(data) == ["client_id", "refresh_token", "token_url", "username"]
    assert data["client_id"] == CLIENT_ID and data["token_url"] == gate.token_url
    assert "eyJ" not in stored.read_text()  # no JWT: the access and id tokens are not kept
    # the stored token is a real refresh token: the provider grants on it
    form = {"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": data["refresh_token"]}
    with urllib.request.urlopen(gate.token_url, urllib.parse.urlencode(form).encode()) as resp:
        assert json.load(resp)["access_token"].startswith("eyJ")
    assert main(["logout"]) == 0 and not stored.exists()
    assert main(["logout"]) == 0 and "no stored login" in capsys.readouterr().out


@servers
def test_the_password_is_never_a_command_line_argument(config_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["login", "--password", "x"]) == 2
    assert "unrecognized arguments" in _one_error_line(capsys.readouterr().err)


@servers
def test_wrong_password_is_one_line_with_its_exit_code(
    gate: GatedNginx, config_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TERRASCOPE_PASSWORD", "not-the-password")
    assert main(["login", "--username", USER, "--token-url", gate.token_url]) == 9
    line = _one_error_line(capsys.readouterr().err)
    assert "wrong username or password" in line and "not-the-password" not in line
    assert not (config_home / "histcalc" / "login.json").exists()


@servers
def test_unreachable_provider_is_one_line_with_its_exit_code(
    config_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TERRASCOPE_PASSWORD", "pw-unreachable")
    url = f"http://127.0.0.1:{free_port()}/token"
    assert main(["login", "--username", "u", "--token-url", url]) == 11
    assert "cannot reach the login provider" in _one_error_line(capsys.readouterr().err)


@servers
def test_revoked_or_damaged_login_says_log_in_again(
    gate: GatedNginx,
    rasters: list[Path],
    config_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    catalog = _catalog(tmp_path, f"{gate.url}/protected", rasters[:2])
    _login(gate, monkeypatch, capsys)
    gate.idp.revoke_all()
    assert main(_job_args(catalog, tmp_path / "r.json", "--engine", "local")) == 10
    assert "run `histcalc login` again" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "r.json").exists()
    (config_home / "histcalc" / "login.json").write_text("{not json")
    assert main(_job_args(catalog, tmp_path / "r.json", "--engine", "local", "--auth", "stored")) == 10
    assert "run `histcalc login` again" in _one_error_line(capsys.readouterr().err)


@servers
def test_data_server_refusing_the_token_is_one_line_before_any_pixel(
    gate: GatedNginx,
    rasters: list[Path],
    config_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    catalog = _catalog(tmp_path, f"{gate.url}/secure", rasters[:3])  # /secure wants another token
    _login(gate, monkeypatch, capsys)
    mark = gate.log_mark()
    assert main(_job_args(catalog, tmp_path / "r.json", "--engine", "local")) == 12
    assert "HTTP 401" in _one_error_line(capsys.readouterr().err)
    assert len([r for r in gate.records(mark) if r.path.startswith("/secure/")]) == 1  # the probe only


@servers
def test_env_credentials_read_gated_files_and_store_nothing(
    gate: GatedNginx,
    rasters: list[Path],
    config_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    catalog = _catalog(tmp_path, f"{gate.url}/protected", rasters[:4])
    monkeypatch.setenv("TERRASCOPE_USERNAME", USER)
    monkeypatch.setenv("TERRASCOPE_PASSWORD", PASSWORD)
    monkeypatch.setenv("HISTCALC_TOKEN_URL", gate.token_url)
    out = tmp_path / "r.json"
    assert main(_job_args(catalog, out, "--engine", "local", "--workers", "1", "--auth", "env")) == 0
    doc = json.loads(out.read_text())
    np.testing.assert_array_equal(doc["counts"], _reference(rasters[:4]))
    assert not (config_home / "histcalc").exists()


@servers
@pytest.mark.spark
@pytest.mark.slow
def test_a_job_longer_than_three_token_lifetimes_reads_every_file_on_both_engines(
    gate: GatedNginx,
    rasters: list[Path],
    config_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    spark: Any,
) -> None:
    """Also reads what Spark's JVM writes to the process's stderr (capfd, not capsys)."""
    capsys = capfd
    assert spark.sparkContext.defaultParallelism == 2
    catalog = _catalog(tmp_path, f"{gate.url}/protected-slow", rasters)
    _login(gate, monkeypatch, capsys)
    stored = json.loads((config_home / "histcalc" / "login.json").read_text())["refresh_token"]
    mark = gate.log_mark()
    # the local engine in a process of its own, at the same time as Spark here
    local_out, spark_out = tmp_path / "local.json", tmp_path / "spark.json"
    local_log = tmp_path / "local.log"
    with local_log.open("w") as log_fh:
        local = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "histcalc",
                *_job_args(catalog, local_out, "--engine", "local", "--workers", "2"),
                "-vv",
            ],
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )
        started = time.monotonic()
        code = main(_job_args(catalog, spark_out, "--engine", "spark", "-vv"))
        spark_seconds = time.monotonic() - started
        assert local.wait(timeout=300) == 0, local_log.read_text()[-3000:]
    spark_out_text, spark_err = capsys.readouterr()
    assert code == 0, spark_err[-3000:]
    assert spark_seconds > 3 * TOKEN_SECONDS
    expected = _reference(rasters)
    for out in (local_out, spark_out):
        doc = json.loads(out.read_text())
        assert doc["files"]["failed"] == [] and doc["files"]["ok"] == N_FILES
        np.testing.assert_array_equal(doc["counts"], expected)
    reads = [r for r in gate.records(mark) if r.path.startswith("/protected-slow/")]
    assert reads and all(r.status in (200, 206) for r in reads), {r.status for r in reads}
    refreshes = [r for r in gate.records(mark) if r.path.endswith("/openid-connect/token")]
    assert len(refreshes) >= 2 * 4  # each job: the first token and >= 3 refreshes (12 s apart)
    assert "spark executors get fresh tokens from the driver" in spark_err  # the relay, not the driver's file
    secrets = [PASSWORD, stored]
    conf = "\n".join(f"{k}={v}" for k, v in spark.sparkContext.getConf().getAll())
    texts = {
        "spark log": spark_err + spark_out_text,
        "local log": local_log.read_text(),
        "spark json": spark_out.read_text(),
        "local json": local_out.read_text(),
        "spark conf": conf,
    }
    assert "HISTCALC_TOKEN_RELAY" not in conf
    for name, text in texts.items():
        assert "Bearer ey" not in text and "eyJ" not in text, name  # no access token
        for secret in secrets:
            assert secret not in text, name


@servers
def test_without_refresh_the_same_job_fails_with_named_files(
    gate: GatedNginx,
    rasters: list[Path],
    config_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    form = {"grant_type": "password", "client_id": CLIENT_ID, "username": USER, "password": PASSWORD, "scope": "openid"}
    with urllib.request.urlopen(gate.token_url, urllib.parse.urlencode(form).encode()) as resp:
        token = json.load(resp)["access_token"]
    monkeypatch.setenv("HISTCALC_HTTP_TOKEN", token)  # one token for the whole job: the old way
    catalog = _catalog(tmp_path, f"{gate.url}/protected-slow", rasters[:8])
    out = tmp_path / "r.json"
    args = _job_args(catalog, out, "--engine", "local", "--workers", "1", "--auth", "none")
    assert main(args) == 5
    _, err = capsys.readouterr()
    doc = json.loads(out.read_text())
    failed = doc["files"]["failed"]
    assert failed and doc["files"]["ok"] >= 1
    assert all("/protected-slow/f" in f["href"] and "401" in f["error"] for f in failed), failed
    assert token not in err and token not in out.read_text()


def _std_logs(root: Path) -> str:
    """The executors' stdout and stderr under ``root``; the executors may still be deleting their block
    directories meanwhile (os.walk passes over a folder that vanished, Path.rglob raised)."""
    texts = []
    for folder, _subfolders, names in os.walk(root):
        for name in names:
            if name.startswith("std"):
                try:
                    texts.append(Path(folder, name).read_text(errors="replace"))
                except FileNotFoundError:
                    continue
    return "".join(texts)


@servers
@pytest.mark.cluster
@pytest.mark.slow
def test_executors_of_a_standalone_cluster_get_fresh_tokens_from_the_driver(
    gate: GatedNginx,
    rasters: list[Path],
    config_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Executors in processes of their own (as on other hosts) read for longer than a token lives."""
    from tests.support.spark_cluster import SparkStandaloneCluster, java_available

    if not java_available():
        pytest.skip("java not installed (scripts/ci/install-java.sh)")
    files = rasters[:12]  # two executors, ~5 s a file: ~30 s of reads, longer than one 20 s token
    catalog = _catalog(tmp_path, f"{gate.url}/protected-slow", files)
    _login(gate, monkeypatch, capsys)
    stored = json.loads((config_home / "histcalc" / "login.json").read_text())["refresh_token"]
    out, log_path = tmp_path / "r.json", tmp_path / "job.log"
    mark = gate.log_mark()
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}
    with SparkStandaloneCluster(workers=2) as cluster, log_path.open("w") as log_fh:
        args = _job_args(catalog, out, "--engine", "spark", "--master", cluster.master_url, "-vv")
        job = subprocess.run(
            [sys.executable, "-m", "histcalc", *args], stdout=log_fh, stderr=subprocess.STDOUT, env=env, timeout=300
        )
        executor_logs = _std_logs(Path(cluster.root or "."))
    log_text = log_path.read_text()
    assert job.returncode == 0, log_text[-4000:]
    doc = json.loads(out.read_text())
    assert doc["files"]["failed"] == [] and doc["elapsed_s"] > TOKEN_SECONDS
    np.testing.assert_array_equal(doc["counts"], _reference(files))
    reads = [r for r in gate.records(mark) if r.path.startswith("/protected-slow/")]
    assert reads and all(r.status in (200, 206) for r in reads), {r.status for r in reads}
    for text in (log_text, out.read_text(), executor_logs):
        assert PASSWORD not in text and stored not in text and "eyJ" not in text


@servers
def test_a_stac_api_that_wants_a_login_gets_the_token_after_its_401(
    gate: GatedNginx,
    idp: LemonLdapServer,
    rasters: list[Path],
    config_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.servers.stac import StacApiServer
    from tests.servers.terrascope import stac_collection

    if not any(Path("/usr/lib/postgresql").glob("*/bin/postgres")):
        pytest.skip("PostgreSQL not installed (scripts/ci/install-server-deps.sh)")
    files = rasters[:3]
    items = [
        dict(item.to_dict(), collection="terrascope-s2-ndvi-v2") for item in _items(f"{gate.url}/protected", files)
    ]
    with StacApiServer([stac_collection()], items) as api, GatedNginx(files[0].parent, idp, upstream=api.url) as stac:
        args = ["--catalog", stac.url, "--datetime", "2024-05-01/2024-05-31", "--bbox", "4.1,51.1,4.9,51.9"]
        args += ["--bins", "256", "--range", "0,256", "--engine", "local", "--workers", "1"]
        before = stac.log_mark()
        assert main([*args, "--auth", "none"]) == 3  # without a login: the catalog's 401, one line
        assert "HTTP 401" in _one_error_line(capsys.readouterr().err)
        # nginx logs a request after its response is sent: wait for that line, or the next run's records get it
        deadline = time.monotonic() + 10
        while not stac.records(before) and time.monotonic() < deadline:
            time.sleep(0.05)
        # env credentials for a provider on another host name: the token is sent only once the API asks
        monkeypatch.setenv("TERRASCOPE_USERNAME", USER)
        monkeypatch.setenv("TERRASCOPE_PASSWORD", PASSWORD)
        monkeypatch.setenv("HISTCALC_TOKEN_URL", gate.token_url.replace("127.0.0.1", "localhost"))
        mark = stac.log_mark()
        assert main([*args, "--auth", "env", "-o", str(tmp_path / "r.json")]) == 0
        statuses = [r.status for r in stac.records(mark)]
    assert statuses[0] == 401 and statuses[1:] and all(s == 200 for s in statuses[1:]), statuses
    np.testing.assert_array_equal(json.loads((tmp_path / "r.json").read_text())["counts"], _reference(files))


@servers
def test_the_password_prompt_does_not_echo(gate: GatedNginx, config_home: Path) -> None:
    """``histcalc login`` on a real terminal (a pty): the password typed is not shown, the login is stored."""
    import pty

    env = {k: v for k, v in os.environ.items() if not k.startswith("TERRASCOPE_")}
    argv = [sys.executable, "-m", "histcalc", "login", "--username", USER, "--token-url", gate.token_url]
    pid, fd = pty.fork()
    if pid == 0:  # the child: histcalc on the pty
        os.execve(argv[0], argv, env)
    seen = b""
    deadline = time.monotonic() + 60
    while b"password:" not in seen.lower() and time.monotonic() < deadline:
        seen += os.read(fd, 1024)
    os.write(fd, PASSWORD.encode() + b"\n")
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, seen
    after_prompt = seen.lower().split(b"password:", 1)[1]
    assert PASSWORD.encode() not in after_prompt.replace(b"logged in as dwho", b""), seen
    assert (config_home / "histcalc" / "login.json").is_file()


def test_without_a_terminal_the_missing_password_is_a_usage_error(
    config_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # noqa: SIM115 (pytest restores stdin)
    assert main(["login", "--username", "someone"]) == 2
    assert "TERRASCOPE_PASSWORD" in _one_error_line(capsys.readouterr().err)


@servers
def test_a_stored_login_is_not_sent_to_other_sites_unless_asked(
    gate: GatedNginx,
    rasters: list[Path],
    config_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A login at 'localhost' and files at '127.0.0.1': without --auth no token leaves for the files' host."""
    monkeypatch.setenv("TERRASCOPE_USERNAME", USER)
    monkeypatch.setenv("TERRASCOPE_PASSWORD", PASSWORD)
    assert main(["login", "--token-url", gate.token_url.replace("127.0.0.1", "localhost")]) == 0
    monkeypatch.delenv("TERRASCOPE_PASSWORD")
    files = rasters[-2:]  # never read at /protected/ by this process: GDAL's cache would answer for the server
    catalog = _catalog(tmp_path, f"{gate.url}/protected", files)
    mark = gate.log_mark()
    assert main(_job_args(catalog, tmp_path / "a.json", "--engine", "local", "--workers", "1")) == 5
    assert not [r for r in gate.records(mark) if r.path.endswith("/openid-connect/token")]  # no token fetched
    assert {r.status for r in gate.records(mark) if r.path.startswith("/protected/")} == {401}
    capsys.readouterr()
    out = tmp_path / "b.json"
    assert main(_job_args(catalog, out, "--engine", "local", "--workers", "1", "--auth", "stored")) == 0
    np.testing.assert_array_equal(json.loads(out.read_text())["counts"], _reference(files))


@servers
def test_a_cached_rerun_with_a_login_checks_files_with_the_token_and_reads_none(
    gate: GatedNginx,
    rasters: list[Path],
    config_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--cache asks the server whether a file changed (HEAD): with the login's header, not a 401."""
    files = rasters[6:8]
    catalog = _catalog(tmp_path, f"{gate.url}/protected", files)
    _login(gate, monkeypatch, capsys)
    cache = tmp_path / "cache"
    for run in ("first", "second"):
        mark = gate.log_mark()
        out = tmp_path / f"{run}.json"
        assert main(_job_args(catalog, out, "--engine", "local", "--workers", "1", "--cache", str(cache))) == 0
        np.testing.assert_array_equal(json.loads(out.read_text())["counts"], _reference(files))
    second = [r for r in gate.records(mark) if r.path.startswith("/protected/")]
    heads = [r for r in second if r.method == "HEAD"]
    assert len(heads) == len(files) and {r.status for r in heads} == {200}, second
    assert sum(r.bytes_sent for r in second) <= 1, second  # the login's probe: one byte; no pixel read
