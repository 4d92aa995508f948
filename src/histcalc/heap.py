"""Giving freed heap memory back to the operating system after large, short-lived numpy arrays.

A zonal task allocates and frees arrays of tens of MB (a window's labels and data, the task's sparse
table, a group's statistics). glibc serves allocations below its mmap threshold from the heap, and it
raises that threshold (up to 32 MB) each time a large mapped block is freed, so these arrays end up on
the heap, whose freed pages it keeps: measured on 100,000 parcels, the driver's resident memory grew by
~40 MB a date (1,342 MB after 12 dates) while live arrays stayed flat; with ``malloc_trim`` after each
task it levelled off at ~960 MB. Fixing the threshold low instead made plain reads 45 % slower (every
block read then faults fresh pages in), so the heap is trimmed where a zonal task ends, not tuned.

Trimming after every task has its own price: the next task faults the same pages in again. With the
tables kept in memory (100,000 parcels, 40 dates) that cost 1.5 s of 9.7 s, ~37 ms a date, and saved no
memory at all (the peak is the tables). So :func:`trim` gives pages back only once the process has grown
by more than ``_SLACK`` since it last did: the resident memory it can hold beyond its live arrays stays
bounded, and a run whose memory does not grow pays nothing.

``small_pages`` is the other side of the same VM: arrays written once in order are made without huge pages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import importlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

_SLACK = 128 * 1024 * 1024
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class _Trimmed:
    resident_after = 0  # the process's resident bytes after the last trim


def trim() -> None:
    """Return the heap's free pages to the system (glibc's ``malloc_trim``, ~1 ms) when the process grew by
    more than ``_SLACK`` since the last time; nothing elsewhere."""
    release = _malloc_trim()
    if release is None:
        return
    now = resident_bytes()
    if now is not None and now <= _Trimmed.resident_after + _SLACK:
        return
    release(0)
    _Trimmed.resident_after = resident_bytes() or 0


def resident_bytes() -> int | None:
    """This process's resident memory (Linux: ``/proc/self/statm``), None where it cannot be read."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        function: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # musl (Alpine) has no malloc_trim
        log.debug("no malloc_trim in this C library: freed heap memory stays with the process")
        return None
    return function


@contextmanager
def small_pages() -> Iterator[None]:
    """Arrays made inside come without numpy's request for transparent huge pages.

    The read-out's columns are written once, in order, and read in order: huge pages spare them no TLB
    misses, and on a VM whose host takes back the guest's free memory each 2 MB page faults in slowly.
    Measured here, 12 dates of 100,000 parcels (60 MB of new cells a date, kept as the result): the
    read-out took 73-97 ms a date with huge pages and 36-37 ms without. numpy's switch is process-wide and
    takes no lock (a lock held while a process forks would be held for ever in the child): an array another
    thread makes meanwhile only misses its huge pages, and two threads in here at once can at worst leave
    the switch off.
    """
    switch = _madvise_switch()
    if switch is None:
        yield
        return
    before = switch(False)
    try:
        yield
    finally:
        switch(before)


@functools.cache
def _madvise_switch() -> Callable[[bool], bool] | None:
    """numpy's ``_set_madvise_hugepage`` (numpy 2: ``numpy._core``, 1.x: ``numpy.core``), None without it."""
    for name in ("numpy._core.multiarray", "numpy.core.multiarray"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        switch: Callable[[bool], bool] | None = getattr(module, "_set_madvise_hugepage", None)
        return switch
    return None
