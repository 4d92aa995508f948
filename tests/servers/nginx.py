"""nginx (Debian's package) serving a directory over HTTP with range requests, and an access log
that records the bytes sent for every request, so a test can measure what a COG read fetched.

Locations besides the plain files:
  /fail500/...   always answers 500
  /secure/...    the same files, but only with ``Authorization: Bearer <token>``, else 401
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

from ._proc import (
    ManagedProcess,
    ServerStartError,
    find_executable,
    free_port,
    port_open,
    remove_workdir,
    wait_until,
)

LOG_FORMAT = '$request_method $uri $status $body_bytes_sent "$http_range"'


@dataclasses.dataclass(frozen=True)
class AccessRecord:
    method: str
    path: str
    status: int
    bytes_sent: int
    range: str


class NginxServer:
    """``with NginxServer(root) as http: http.url`` -> ``http://127.0.0.1:PORT``."""

    def __init__(self, root: Path, token: str = "histcalc-test-token") -> None:
        self.root = root.resolve()
        self.token = token
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(tempfile.mkdtemp(prefix="histcalc-nginx-"))
        self.access_log = self.workdir / "access.log"
        self._proc: ManagedProcess | None = None

    def __enter__(self) -> NginxServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        nginx = find_executable("nginx")
        if nginx is None:
            raise ServerStartError("nginx not found: run scripts/ci/install-server-deps.sh")
        conf = self.workdir / "nginx.conf"
        conf.write_text(self._config())
        log = self.workdir / "server.log"
        argv = [nginx, "-p", str(self.workdir), "-c", str(conf), "-e", str(self.workdir / "error.log")]
        self._proc = ManagedProcess(argv, log)
        wait_until(lambda: self._up(), 15, "nginx", self.workdir / "error.log")

    def _up(self) -> bool:
        assert self._proc is not None
        self._proc.check_alive("nginx")
        return port_open(self.port)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None
        remove_workdir(self.workdir)

    def _config(self) -> str:
        temp = self.workdir / "temp"
        temp.mkdir(exist_ok=True)
        # Workers of a root master drop to 'nobody', who cannot read the test's temp dirs.
        user = "user root;" if os.geteuid() == 0 else ""
        temps = "\n".join(
            f"    {kind}_temp_path {temp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return f"""
{user}
daemon off;
worker_processes 1;
pid {self.workdir / "nginx.pid"};
error_log {self.workdir / "error.log"} warn;
events {{ worker_connections 256; }}
http {{
    log_format ranges '{LOG_FORMAT}';
    access_log {self.access_log} ranges;
{temps}
    types {{ image/tiff tif tiff; application/json json; }}
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 30;
    server {{
        listen 127.0.0.1:{self.port};
        root {self.root};
        location /fail500/ {{ return 500; }}
        location /secure/ {{
            if ($http_authorization != "Bearer {self.token}") {{ return 401; }}
            alias {self.root}/;
        }}
{self._extra_locations()}
    }}
}}
"""

    def _extra_locations(self) -> str:
        """More ``location`` blocks for the server (subclasses: tests/servers/oidc.py)."""
        return ""

    def log_mark(self) -> int:
        """A position in the access log; pass it to ``records`` to see only later requests."""
        return self.access_log.stat().st_size if self.access_log.exists() else 0

    def records(self, since: int = 0) -> list[AccessRecord]:
        if not self.access_log.exists():
            return []
        with self.access_log.open("rb") as fh:
            fh.seek(since)
            lines = fh.read().decode().splitlines()
        return [_parse(line) for line in lines if line.strip()]


def _parse(line: str) -> AccessRecord:
    head, _, rng = line.partition(' "')
    method, path, status, sent = head.split()
    return AccessRecord(method, path, int(status), int(sent), rng.rstrip('"').strip("-"))
