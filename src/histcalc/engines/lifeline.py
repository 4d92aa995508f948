"""Worker processes that die with the driver: no orphans after a SIGKILL or the OOM killer.

A pool worker whose driver is killed outright would otherwise sleep forever (~100 MB each).
Two guards, installed in each worker when it starts:
- Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker when its parent dies
  (the parent is the driver for forked workers, the forkserver for the others; the forkserver
  itself exits when the driver's end of its pipe closes);
- everywhere: a daemon thread that exits the worker once the driver's pid is gone or the worker
  was re-parented (``getppid`` changed).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1
_POLL_S = 1.0


def exit_with_parent(driver_pid: int) -> None:
    """Make this (worker) process exit when its parent or the driver ``driver_pid`` dies."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        _parent_death_signal()
    if not _alive(parent) or not _alive(driver_pid):  # the parent died before the signal was armed
        os._exit(1)
    watcher = threading.Thread(target=_watch, args=(parent, driver_pid), name="histcalc-lifeline", daemon=True)
    watcher.start()


def _parent_death_signal() -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _watch(parent: int, driver_pid: int) -> None:
    while os.getppid() == parent and _alive(driver_pid):
        time.sleep(_POLL_S)
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
