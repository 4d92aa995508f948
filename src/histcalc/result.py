"""What tasks return and how it adds up: partial results, then the job's result.

A file read in several parts (few large files, many cores) is kept apart until the end, so a
file that failed in one part contributes nothing rather than part of its pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from histcalc.bins import BinSpec
from histcalc.histogram import Histogram


@dataclass(frozen=True)
class Partial:
    """A reducible share of the job: counts of whole files, counts of file parts, file statuses."""

    total: Histogram
    parts: dict[str, Histogram] = field(default_factory=dict)
    ok: frozenset[str] = frozenset()
    failed: dict[str, str] = field(default_factory=dict)

    @classmethod
    def empty(cls, bins: BinSpec) -> Partial:
        return cls(Histogram.empty(bins))

    def __add__(self, other: Partial) -> Partial:
        parts = dict(self.parts)
        for href, h in other.parts.items():
            parts[href] = parts[href] + h if href in parts else h
        return Partial(self.total + other.total, parts, self.ok | other.ok, {**self.failed, **other.failed})

    def finish(self, hrefs: list[str], engine: str, elapsed: float) -> JobResult:
        """The job's result: whole files only, each selected file either ok or failed."""
        total = self.total
        for href, h in self.parts.items():
            if href not in self.failed:
                total = total + h
        failed = {h: self.failed[h] for h in hrefs if h in self.failed}
        ok = [h for h in hrefs if h in self.ok and h not in self.failed]
        missing = [h for h in hrefs if h not in self.ok and h not in self.failed]
        for href in missing:  # cannot happen unless an engine lost a task; never hide it
            failed[href] = "no result came back for this file"
        return JobResult(total, len(hrefs), ok, failed, engine, elapsed)


@dataclass(frozen=True)
class JobResult:
    """The merged histogram and an account of every selected file."""

    histogram: Histogram
    files_total: int
    files_ok: list[str]
    files_failed: dict[str, str]
    engine: str
    elapsed_s: float

    def files_dict(self) -> dict[str, Any]:
        return {
            "total": self.files_total,
            "ok": len(self.files_ok),
            "failed": [{"href": h, "error": e} for h, e in self.files_failed.items()],
        }
