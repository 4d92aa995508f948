"""Misbehaving servers on 127.0.0.1, run in threads of the test process.

- ``HangingServer``: accepts connections and never answers (clients must time out).
- ``FlakyProxy``: answers the first requests with chosen error statuses, then forwards to a real
  upstream server (keeping the Host header, so the upstream's links point back through the proxy).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ._proc import free_port


class HangingServer:
    """``with HangingServer() as url:`` -> a URL whose server accepts and stays silent."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        self._sock.settimeout(0.1)
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                conn, _ = self._sock.accept()
                self._held.append(conn)
                self.accepted += 1

    def __enter__(self) -> HangingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self._sock.close()


class FlakyProxy:
    """``with FlakyProxy(upstream, [503, 503]) as proxy:`` fails two requests, then forwards."""

    def __init__(self, upstream: str, failures: Iterable[int] = ()) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.failures = list(failures)
        self.seen: list[tuple[str, str, int]] = []  # (method, path, status answered)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def fail_next(self, *statuses: int) -> None:
        with self._lock:
            self.failures.extend(statuses)

    def _next_failure(self) -> int | None:
        with self._lock:
            return self.failures.pop(0) if self.failures else None

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.seen.append((method, path, status))

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                failure = proxy._next_failure()
                if failure is not None:
                    proxy._record(self.command, self.path, failure)
                    self._reply(failure, b'{"code":"ServerError","description":"injected failure"}', {})
                    return
                status, data, headers = self._forward(body)
                proxy._record(self.command, self.path, status)
                self._reply(status, data, headers)

            def _forward(self, body: bytes | None) -> tuple[int, bytes, dict[str, str]]:
                req = urllib.request.Request(proxy.upstream + self.path, data=body, method=self.command)
                for key in ("Content-Type", "Accept", "Host"):
                    if self.headers.get(key):
                        req.add_header(key, self.headers[key])
                try:
                    with urllib.request.urlopen(req, timeout=30) as resp:
                        return int(resp.status), resp.read(), {"Content-Type": resp.headers["Content-Type"]}
                except urllib.error.HTTPError as exc:
                    return int(exc.code), exc.read(), {"Content-Type": exc.headers.get("Content-Type", "")}

            def _reply(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", headers.get("Content-Type") or "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def __enter__(self) -> FlakyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
