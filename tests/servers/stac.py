"""A real STAC API: stac-fastapi-pgstac (uvicorn) on PostgreSQL + PostGIS (Debian packages) + pgstac.

The same stack that backs many production STAC APIs: item search with bbox, datetime, CQL2 filter
and the query extension, token paging. The database is a throw-away cluster in a temp dir
(``initdb``; fsync off), migrated with pypgstac and loaded with the caller's collections and items.
PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ._proc import ManagedProcess, ServerStartError, free_port, http_ok, port_open, remove_workdir, wait_until


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]  # the newest installed major version
    path = shutil.which(name)
    if path is None:
        raise ServerStartError(f"PostgreSQL's {name} not found: run scripts/ci/install-server-deps.sh")
    return path


class PostgresCluster:
    """A temporary PostgreSQL cluster on 127.0.0.1 with trust authentication."""

    def __init__(self) -> None:
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="histcalc-pg-"))
        self.data = self.workdir / "data"
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._proc: ManagedProcess | None = None
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
            self._as_postgres = ["runuser", "-u", "postgres", "--"]

    def start(self) -> None:
        import subprocess

        initdb = [_pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "-N"]
        done = subprocess.run(self._as_postgres + initdb, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServerStartError(f"initdb failed: {done.stderr.strip()[-500:]}")
        options = ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        argv = [_pg_bin("postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.workdir)]
        argv += ["-c", "listen_addresses=127.0.0.1", *options]
        log = self.workdir / "postgres.log"
        self._proc = ManagedProcess(self._as_postgres + argv, log)
        wait_until(self._up, 30, "PostgreSQL", log)

    def _up(self) -> bool:
        assert self._proc is not None
        self._proc.check_alive("PostgreSQL")
        if not port_open(self.port):
            return False
        import psycopg  # the port opens before the server accepts sessions ("starting up")

        try:
            psycopg.connect(self.dsn, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop(timeout=20, sig=signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown
            self._proc = None
        remove_workdir(self.workdir)


def load_pgstac(dsn: str, collections: Iterable[Mapping[str, Any]], items: Iterable[Mapping[str, Any]]) -> None:
    """Install the pgstac schema (PostGIS included) and upsert ``collections`` then ``items``."""
    from pypgstac.db import PgstacDB
    from pypgstac.load import Loader, Methods
    from pypgstac.migrate import Migrate

    with PgstacDB(dsn=dsn) as db:
        Migrate(db).run_migration()
        loader = Loader(db)
        loader.load_collections(iter([dict(c) for c in collections]), Methods.upsert)
        loader.load_items(iter([dict(i) for i in items]), Methods.upsert)


class StacApiServer:
    """``with StacApiServer(collections, items) as api: api.url`` -> a loaded STAC API."""

    def __init__(self, collections: Iterable[Mapping[str, Any]], items: Iterable[Mapping[str, Any]]) -> None:
        self.collections = list(collections)
        self.items = list(items)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = PostgresCluster()
        self.workdir = Path(tempfile.mkdtemp(prefix="histcalc-stac-api-"))
        self.log = self.workdir / "uvicorn.log"
        self._proc: ManagedProcess | None = None

    def __enter__(self) -> StacApiServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.db.start()
        load_pgstac(self.db.dsn, self.collections, self.items)
        env = {
            **os.environ,
            "PGUSER": "postgres",
            "PGPASSWORD": "unused-trust-auth",
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.db.port),
            "PGDATABASE": "postgres",
        }
        argv = [sys.executable, "-m", "uvicorn", "stac_fastapi.pgstac.app:create_app", "--factory"]
        argv += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "info"]
        # cwd: the settings read a '.env' file from the working directory; use an empty one.
        self._proc = ManagedProcess(argv, self.log, env=env, cwd=self.workdir)
        wait_until(self._up, 60, "stac-fastapi-pgstac", self.log)

    def _up(self) -> bool:
        assert self._proc is not None
        self._proc.check_alive("stac-fastapi-pgstac")
        return http_ok(f"{self.url}/_mgmt/ping")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None
        self.db.stop()
        remove_workdir(self.workdir)

    def log_mark(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def request_lines(self, since: int = 0) -> list[str]:
        """uvicorn's access-log lines (one per request) written after ``since``."""
        with self.log.open("rb") as fh:
            fh.seek(since)
            text = fh.read().decode(errors="replace")
        return [line for line in text.splitlines() if '" ' in line and "HTTP/1.1" in line]
