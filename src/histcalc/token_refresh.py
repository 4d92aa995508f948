"""Keep a GDAL header file holding a fresh bearer token for as long as a job runs.

GDAL re-reads ``GDAL_HTTP_HEADER_FILE`` on every HTTP request, so a file rewritten atomically
(a temporary file beside it, then ``os.replace``: a reader sees the old token or the new one, never
half a line) keeps long reads working while tokens expire every few minutes. Only the file's *path*
goes into the job's GDAL settings; the token itself never enters a log, a setting or an output.

A daemon thread refreshes at ``REFRESH_AT`` of each token's life. A failed refresh is retried
(every few seconds) until the current token is about to expire; a refresh token the provider no
longer accepts stops the refresher with one logged error (the reads then fail by name, with 401).
A rotated refresh token is handed to ``on_rotate`` (the CLI stores it); an answer without one keeps
the old one.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from histcalc.errors import AuthError, LoginExpired
from histcalc.oidc import Provider, Tokens

log = logging.getLogger(__name__)

REFRESH_AT = 0.6  # of a token's life: a 5-minute token is replaced after 3 minutes, a 20 s one after 12 s
RETRY_SECONDS = 2.0
HEADER_FILE_NAME = "gdal-headers.txt"


def write_header_file(path: Path, access_token: str) -> None:
    """``Authorization: Bearer <token>`` in ``path``, replaced atomically, mode 0600."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # 0600 from the first byte
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(f"Authorization: Bearer {access_token}\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class HeaderFileRefresher:
    """``with HeaderFileRefresher(provider, tokens) as r: settings["GDAL_HTTP_HEADER_FILE"] = str(r.path)``."""

    def __init__(
        self,
        provider: Provider,
        tokens: Tokens,
        on_rotate: Callable[[str], None] | None = None,
        directory: Path | None = None,
    ) -> None:
        self.provider = provider
        self.tokens = tokens
        self.on_rotate = on_rotate
        self._own_dir = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="histcalc-auth-"))  # 0700
        self.path = self.directory / HEADER_FILE_NAME
        self.refreshes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="histcalc-token-refresh", daemon=True)

    def __enter__(self) -> HeaderFileRefresher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        write_header_file(self.path, self.tokens.access_token)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _run(self) -> None:
        while not self._stop.wait(self._seconds_to_next()):
            try:
                self._refresh()
            except LoginExpired as exc:
                log.error("token refresh stopped: %s", exc)
                return
            except AuthError as exc:
                log.warning("token refresh failed, retrying in %.0f s: %s", RETRY_SECONDS, exc)
                if self._stop.wait(RETRY_SECONDS):
                    return

    def _seconds_to_next(self) -> float:
        due = self.tokens.obtained + REFRESH_AT * self.tokens.expires_in
        return max(0.0, due - time.monotonic())

    def _refresh(self) -> None:
        old = self.tokens
        if old.refresh_token is None:
            raise LoginExpired("the provider gave no refresh token: the access token cannot be renewed")
        new = self.provider.refresh_grant(old.refresh_token)
        write_header_file(self.path, new.access_token)  # before the old token could be revoked by its use
        self.tokens = new
        self.refreshes += 1
        log.debug("access token renewed (%d so far), valid for %.0f s", self.refreshes, new.expires_in)
        if new.refresh_token != old.refresh_token and new.refresh_token and self.on_rotate:
            self.on_rotate(new.refresh_token)
