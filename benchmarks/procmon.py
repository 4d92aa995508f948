"""Peak resident memory and CPU time of a process tree, from /proc (Linux).

VmHWM is the kernel's own high-water mark of a process's RSS, so sampling it every 50 ms loses
only growth in a process's last 50 ms of life. Processes are grouped by kind: the measured
runner itself, its Python worker processes, JVMs (Spark), and other tools (gdalinfo).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_PROC = Path("/proc")


class TreeMonitor:
    """Samples the VmHWM of ``root`` and all its descendants in a background thread."""

    def __init__(self, root: int, interval: float = 0.05) -> None:
        self.root, self.interval = root, interval
        self.peaks: dict[int, tuple[str, int]] = {}  # pid -> (kind, peak KiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        for pid in _descendants(self.root) | {self.root}:
            hwm = _vm_hwm_kib(pid)
            if hwm is None:
                continue
            kind = _kind(pid, self.root)  # every time: spark-submit's shell execs into the JVM
            self.peaks[pid] = (kind, max(hwm, self.peaks.get(pid, ("", 0))[1]))

    def peak_mb(self, kind: str) -> float | None:
        values = [kib for k, kib in self.peaks.values() if k == kind]
        return round(max(values) / 1024, 1) if values else None

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.peaks.values() if k == kind)


def tree_cpu(root: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of ``root``'s process tree, by kind of process.

    "runner": ``root``'s own time; "reaped": that of the children ``root`` has waited for (cutime +
    cstime: a process pool's exited workers); every other process adds its own time and its reaped
    children's to its kind ("worker", "jvm", "tool", "other"), so the CPU of processes that exited
    stays in the sum (Python workers that Spark's daemon reaped). The difference of two calls is the
    CPU spent between them, as long as no process changes kind (a pool that exists before and is shut
    down after moves its workers' time from "worker" to "reaped": compare sums, or start pools inside).
    """
    tick = os.sysconf("SC_CLK_TCK")
    out = {"runner": 0.0, "reaped": 0.0}
    for pid in _descendants(root) | {root}:
        try:
            fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        own = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        reaped = (int(fields[13]) + int(fields[14])) / tick  # cutime, cstime
        if pid == root:
            out["runner"] += own
            out["reaped"] += reaped
        else:
            kind = _kind(pid, root)
            out[kind] = out.get(kind, 0.0) + own + reaped
    return out


def _descendants(root: int) -> set[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.scandir(_PROC):
        if not entry.name.isdigit():
            continue
        try:
            stat = (_PROC / entry.name / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, stack = set(), [root]
    while stack:
        for child in parents.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def _vm_hwm_kib(pid: int) -> int | None:
    try:
        for line in (_PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _kind(pid: int, root: int) -> str:
    if pid == root:
        return "runner"
    try:
        cmdline = (_PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "other"
    first = cmdline.split(" ", 1)[0]
    if first.endswith("java"):
        return "jvm"
    if "python" in first:
        return "worker"
    return "tool" if first and not first.endswith(("sh", "bash")) else "other"
