"""heap.trim: gives the heap's free pages back once the process grew by more than the slack, not before."""

from __future__ import annotations

import sys

import pytest

from histcalc import heap

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or heap._malloc_trim() is None, reason="glibc's malloc_trim only"
)
_MB = 1024 * 1024


def _holes(total: int) -> list[bytearray]:
    """``total`` bytes of heap chunks (64 KB: below glibc's mmap threshold), every other one freed: the
    freed half is held in holes of the heap that only ``malloc_trim`` gives back."""
    chunks = [bytearray(b"x" * (64 * 1024)) for _ in range(total // (64 * 1024))]
    return chunks[::2]


def test_trim_gives_back_the_holes_once_the_process_grew_past_the_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap._Trimmed, "resident_after", heap.resident_bytes() or 0)
    kept = _holes(4 * heap._SLACK)  # grows by ~4 x the slack, half of it freed into holes
    before = heap.resident_bytes() or 0
    heap.trim()
    after = heap.resident_bytes() or 0
    assert before - after > heap._SLACK, (before // _MB, after // _MB)
    assert heap._Trimmed.resident_after == pytest.approx(after, abs=8 * _MB)
    del kept


def test_trim_keeps_the_pages_while_the_process_grew_less_than_the_slack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heap._Trimmed, "resident_after", heap.resident_bytes() or 0)
    kept = _holes(heap._SLACK // 2)
    before = heap.resident_bytes() or 0
    heap.trim()
    after = heap.resident_bytes() or 0
    assert before - after < 4 * _MB, (before // _MB, after // _MB)  # the holes (~32 MB) stay resident
    del kept
