"""Where cache entries live: a local directory or an ``s3://bucket/prefix``, with get / put / list / delete.

Entries are whole objects written at once: locally to a unique temporary name in the same directory, then
``os.replace`` (two writers of one key never see each other's half-written bytes; the last one wins, and
both wrote the same counts); on S3 a PUT is atomic by itself. Names are relative, ``<job hash>/<key>.hcp``.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from histcalc.errors import HistcalcError, OutputError, UsageError

TMP_MARK = ".tmp-"
"""Part of a local temporary name: such files are not entries (a writer died before its rename)."""


@dataclass(frozen=True)
class EntryInfo:
    """One stored object: its name under the location, its size and when it was written (Unix seconds)."""

    name: str
    size: int
    modified: float


class Store(Protocol):
    @property
    def location(self) -> str: ...

    def get(self, name: str) -> bytes | None: ...

    def put(self, name: str, data: bytes) -> None: ...

    def list(self) -> Iterator[EntryInfo]: ...

    def delete(self, name: str) -> None: ...


def open_store(location: str, settings: Mapping[str, str] | None = None) -> Store:
    """The store at ``location``: ``s3://bucket/prefix`` (reached with ``settings``, GDAL's) or a directory."""
    if location.startswith("s3://"):
        return S3Store(location, dict(settings or {}))
    if "://" in location:
        raise UsageError(f"--cache takes a directory or an s3://bucket/prefix, not {location.split('://')[0]}://")
    return LocalStore(location)


def check_writable(store: Store) -> None:
    """Write and remove a probe object: the job fails here, in one line, before any pixel is read."""
    name = f"probe-{uuid.uuid4().hex}"
    try:
        store.put(name, b"histcalc cache probe\n")
        store.delete(name)
    except HistcalcError:
        raise
    except Exception as exc:  # OSError locally, botocore's errors on S3
        raise OutputError(f"--cache {store.location}: cannot write there ({_reason(exc)})") from exc


@dataclass(frozen=True)
class LocalStore:
    """A directory; created on first write."""

    location: str

    @property
    def root(self) -> Path:
        return Path(self.location).expanduser()

    def get(self, name: str) -> bytes | None:
        try:
            return (self.root / name).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, name: str, data: bytes) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:12]}")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def list(self) -> Iterator[EntryInfo]:
        """Every file under the directory, temporary ones of dead writers included (prune removes them)."""
        for folder, _dirs, files in os.walk(self.root):
            for file in files:
                path = Path(folder) / file
                with contextlib.suppress(FileNotFoundError):  # pruned or renamed meanwhile
                    st = path.stat()
                    yield EntryInfo(path.relative_to(self.root).as_posix(), st.st_size, st.st_mtime)

    def delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)


@dataclass(frozen=True)
class S3Store:
    """Objects under ``s3://bucket/prefix``; the client is made in each process from ``settings``."""

    location: str
    settings: dict[str, str] = field(repr=False)  # credentials: never in a repr or a log

    def _client_and_key(self, name: str) -> tuple[object, str, str]:
        from histcalc.s3 import s3_client, split_s3

        bucket, prefix = split_s3(self.location.rstrip("/"))
        return s3_client(self.settings), bucket, f"{prefix}/{name}" if prefix else name

    def get(self, name: str) -> bytes | None:
        client, bucket, key = self._client_and_key(name)
        try:
            data: bytes = client.get_object(Bucket=bucket, Key=key)["Body"].read()  # type: ignore[attr-defined]
        except Exception as exc:
            if _status(exc) == 404:
                return None
            raise
        return data

    def put(self, name: str, data: bytes) -> None:
        client, bucket, key = self._client_and_key(name)
        client.put_object(Bucket=bucket, Key=key, Body=data)  # type: ignore[attr-defined]

    def list(self) -> Iterator[EntryInfo]:
        client, bucket, root = self._client_and_key("")
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=root)  # type: ignore[attr-defined]
        for page in pages:
            for obj in page.get("Contents", []):
                yield EntryInfo(obj["Key"][len(root) :], int(obj["Size"]), obj["LastModified"].timestamp())

    def delete(self, name: str) -> None:
        client, bucket, key = self._client_and_key(name)
        client.delete_object(Bucket=bucket, Key=key)  # type: ignore[attr-defined]


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).strip().splitlines()[0] if str(text).strip() else type(exc).__name__
