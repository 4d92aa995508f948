"""Fresh access tokens for Spark executors on other hosts, without the login ever leaving the driver.

The driver keeps the only refresher (:mod:`histcalc.token_refresh`) and runs a tiny HTTP endpoint,
``GET /token``, that answers the *current access token* to requests carrying the job's relay key
(``Authorization: Bearer <key>``; 32 random bytes made for this job, worthless after it). The URL and
the key travel to the executors inside the broadcast job spec (the GDAL settings, under names that
every settings printer hides), never in the Spark configuration, the environment, the UI or the JSON
query. On each executor process, :func:`local_settings` fetches a token, writes it to a 0600 header
file of its own (atomically) and keeps it fresh from a daemon thread, and GDAL reads that file.

So the refresh token and the password stay on the driver; executors only ever hold access tokens
that expire within minutes. See docs/auth.md for the design and its limits.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from histcalc.gdalenv import RELAY_URL

log = logging.getLogger(__name__)
RELAY_KEY = "HISTCALC_TOKEN_RELAY_KEY"  # "KEY" in the name: gdalenv.redacted/describe hide its value
FETCH_TIMEOUT = 10.0
_REFETCH_AT = 0.5  # of the remaining life of the token an executor fetched
_MIN_WAIT = 1.0

CurrentToken = Callable[[], tuple[str, float]]  # (access token, seconds it stays valid)


class TokenRelay:
    """The driver's endpoint: ``with TokenRelay(current, host) as relay: settings.update(relay.settings())``."""

    def __init__(self, current: CurrentToken, host: str = "127.0.0.1", advertise: str | None = None) -> None:
        from histcalc.redact import register_secret

        self.key = secrets.token_urlsafe(32)
        register_secret(self.key)
        self._server = ThreadingHTTPServer((host, 0), _handler(current, self.key))
        self._server.daemon_threads = True
        self.url = f"http://{advertise or host}:{self._server.server_address[1]}/token"
        self._thread = threading.Thread(target=self._server.serve_forever, name="histcalc-token-relay", daemon=True)

    def __enter__(self) -> TokenRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def settings(self) -> dict[str, str]:
        return {RELAY_URL: self.url, RELAY_KEY: self.key}


def _handler(current: CurrentToken, key: str) -> type[BaseHTTPRequestHandler]:
    expected = f"Bearer {key}"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # http.server's name
            if self.path != "/token" or not secrets.compare_digest(self.headers.get("Authorization", ""), expected):
                self.send_error(403)
                return
            token, valid_for = current()
            body = json.dumps({"access_token": token, "expires_in": valid_for}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # no access log: nothing to leak, nothing to read
            pass

    return Handler


# ---------------------------------------------------------------- executor side


def local_settings(settings: Mapping[str, str]) -> dict[str, str]:
    """``settings`` for this process: relay keys replaced by a header file kept fresh here."""
    options = dict(settings)
    url, key = options.pop(RELAY_URL, None), options.pop(RELAY_KEY, None)
    if url and key:
        options["GDAL_HTTP_HEADER_FILE"] = str(_client(url, key).path)
    return options


_clients: dict[tuple[int, str], _RelayClient] = {}
_clients_lock = threading.Lock()


def _client(url: str, key: str) -> _RelayClient:
    """One client a process and relay (a forked process starts its own: threads do not survive fork)."""
    with _clients_lock:
        ident = (os.getpid(), url)
        if ident not in _clients:
            _clients[ident] = _RelayClient(url, key)
        return _clients[ident]


class _RelayClient:
    def __init__(self, url: str, key: str) -> None:
        from histcalc.token_refresh import write_header_file

        self._write = write_header_file
        self.url, self._key = url, key
        self.directory = tempfile.mkdtemp(prefix="histcalc-executor-auth-")  # 0700
        atexit.register(shutil.rmtree, self.directory, True)
        self.path = Path(self.directory) / "gdal-headers.txt"
        valid_for = self._fetch()  # the first read of this process waits for a token; later ones never do
        self._thread = threading.Thread(target=self._run, args=(valid_for,), name="histcalc-relay", daemon=True)
        self._thread.start()

    def _fetch(self) -> float:
        request = urllib.request.Request(self.url, headers={"Authorization": f"Bearer {self._key}"})
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:  # the driver's relay
            answer = json.load(response)
        self._write(self.path, str(answer["access_token"]))
        return float(answer["expires_in"])

    def _run(self, valid_for: float) -> None:
        good_until = time.monotonic() + valid_for
        while True:
            time.sleep(max(_MIN_WAIT, _REFETCH_AT * valid_for))
            try:
                valid_for = self._fetch()
                good_until = time.monotonic() + valid_for
            except (OSError, ValueError, KeyError) as exc:  # the driver is busy, or gone
                if time.monotonic() > good_until:  # gone: its job is over (a later job starts a new client)
                    _forget(self)
                    shutil.rmtree(self.directory, ignore_errors=True)  # a worker killed before this leaves it
                    return
                log.warning("executor token fetch failed, retrying: %s", type(exc).__name__)
                valid_for = 2 * _MIN_WAIT


def _forget(client: _RelayClient) -> None:
    with _clients_lock:
        for ident, known in list(_clients.items()):
            if known is client:
                del _clients[ident]
