"""An S3-compatible server: moto in server mode (PyPI ``moto[server]``), a separate process on 127.0.0.1.

GDAL reaches it through /vsis3/ with ``AWS_S3_ENDPOINT``, ``AWS_HTTPS=NO`` and path-style
addressing (``AWS_VIRTUAL_HOSTING=FALSE``); ``gdal_settings()`` gives exactly those.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._proc import ManagedProcess, free_port, http_ok, remove_workdir, wait_until

ACCESS_KEY = "histcalc-test-access-key"
# A distinctive value, so tests can assert it appears in no log and no output.
SECRET_KEY = "histcalc-SECRET-do-not-log-9f3b"
REGION = "us-east-1"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # werkzeug colours some status lines even in a file
_REQUEST = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


class MotoS3Server:
    """``with MotoS3Server() as s3: s3.upload(bucket, files)``; ``s3.url`` is the endpoint."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.endpoint}"
        self.workdir = Path(tempfile.mkdtemp(prefix="histcalc-moto-"))
        self.log = self.workdir / "moto.log"
        self._proc: ManagedProcess | None = None

    def __enter__(self) -> MotoS3Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        self._proc = ManagedProcess(argv, self.log, cwd=self.workdir)
        wait_until(self._up, 30, "moto S3 server", self.log)

    def _up(self) -> bool:
        assert self._proc is not None
        self._proc.check_alive("moto S3 server")
        return http_ok(f"{self.url}/moto-api/")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None
        remove_workdir(self.workdir)

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def upload(self, bucket: str, files: Iterable[tuple[Path, str]]) -> None:
        """Create ``bucket`` and put each (local path, key) into it."""
        s3 = self.client()
        s3.create_bucket(Bucket=bucket)
        for path, key in files:
            s3.upload_file(str(path), bucket, key)

    def gdal_settings(self) -> dict[str, str]:
        """The environment GDAL's /vsis3/ needs to talk to this server."""
        return {
            "AWS_S3_ENDPOINT": self.endpoint,
            "AWS_HTTPS": "NO",
            "AWS_VIRTUAL_HOSTING": "FALSE",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION,
        }

    def log_mark(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def requests(self, since: int = 0) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request the server logged after ``since``."""
        with self.log.open("rb") as fh:
            fh.seek(since)
            text = _ANSI.sub("", fh.read().decode(errors="replace"))
        return [(m["method"], m["path"], int(m["status"])) for m in _REQUEST.finditer(text)]
