"""What tasks return and how it adds up: partial results, then the job's result.

Counts are kept per group (one group, "", without ``--group-by``). A file read in several parts
(few large files, many cores) is kept apart until the end, so a file that failed in one part
contributes nothing rather than part of its pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from histcalc.bins import BinSpec
from histcalc.histogram import Histogram, merge_all

Groups = dict[str, Histogram]


@dataclass(frozen=True)
class Partial:
    """A reducible share of the job: counts per group, counts of file parts, file statuses."""

    groups: Groups = field(default_factory=dict)
    parts: dict[str, tuple[str, Histogram]] = field(default_factory=dict)
    ok: frozenset[str] = frozenset()
    failed: dict[str, str] = field(default_factory=dict)

    def __add__(self, other: Partial) -> Partial:
        parts = dict(self.parts)
        for href, (group, h) in other.parts.items():
            parts[href] = (group, parts[href][1] + h) if href in parts else (group, h)
        return Partial(
            _add_groups(self.groups, other.groups), parts, self.ok | other.ok, {**self.failed, **other.failed}
        )

    def finish(self, hrefs: list[str], engine: str, elapsed: float, bins: BinSpec) -> JobResult:
        """The job's result: whole files only, each selected file either ok or failed."""
        groups = dict(self.groups)
        for href, (group, h) in self.parts.items():
            if href not in self.failed:
                groups = _add_groups(groups, {group: h})
        failed = {h: self.failed[h] for h in hrefs if h in self.failed}
        ok = [h for h in hrefs if h in self.ok and h not in self.failed]
        for href in hrefs:  # cannot happen unless an engine lost a task; never hide it
            if href not in self.ok and href not in self.failed:
                failed[href] = "no result came back for this file"
        total = merge_all(groups.values(), bins)
        return JobResult(total, dict(sorted(groups.items())), len(hrefs), ok, failed, engine, elapsed)


def _add_groups(a: Mapping[str, Histogram], b: Mapping[str, Histogram]) -> Groups:
    out = dict(a)
    for key, h in b.items():
        out[key] = out[key] + h if key in out else h
    return out


@dataclass(frozen=True)
class JobResult:
    """The merged histogram, the histogram of each group, and an account of every selected file."""

    histogram: Histogram
    groups: Groups
    files_total: int
    files_ok: list[str]
    files_failed: dict[str, str]
    engine: str
    elapsed_s: float
    startup_s: float = 0.0

    def files_dict(self) -> dict[str, Any]:
        return {
            "total": self.files_total,
            "ok": len(self.files_ok),
            "failed": [{"href": h, "error": e} for h, e in self.files_failed.items()],
        }
