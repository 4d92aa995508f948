"""Progress while a job runs: a live bar on a terminal, a log line every few seconds otherwise.

Engines report through one callable, ``progress(done, total, failed)``: tasks done, tasks in all,
files failed so far. On Spark, :func:`watch_spark` polls the driver's status tracker from a
daemon thread and reports through the same callable.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TextIO

log = logging.getLogger(__name__)

LOG_INTERVAL_S = 10.0
SPARK_POLL_S = 1.0


class Progress(Protocol):
    """Called as tasks finish; ``failed`` (files failed so far) defaults to 0."""

    def __call__(self, done: int, total: int, failed: int = 0) -> None: ...


def describe(done: int, total: int, failed: int, elapsed_s: float) -> str:
    """One line: tasks done/total, files failed, rate and ETA (the rate from the start, not smoothed)."""
    share = f" ({100 * done / total:.0f}%)" if total else ""
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    eta = f"ETA {_duration((total - done) / rate)}" if rate > 0 and done < total else "ETA ?"
    if done >= total:
        eta = f"done in {_duration(elapsed_s)}"
    return f"{done}/{total} tasks{share}, {failed} file(s) failed, {rate:.3g} tasks/s, {eta}"


def _duration(seconds: float) -> str:
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class LogProgress:
    """Logs :func:`describe` at most every ``interval_s`` seconds, and once when all tasks are done.

    Time counts from the first report, when tasks run (not from a Spark session's start).

    For batch jobs and YARN driver logs, where a redrawn bar would be one line per update.
    """

    def __init__(
        self, interval_s: float = LOG_INTERVAL_S, clock: Callable[[], float] = time.monotonic, logger: Any = log
    ) -> None:
        self._interval = interval_s
        self._clock = clock
        self._log = logger
        self._start: float | None = None  # the first report: rates exclude the time before (Spark's start)
        self._last = 0.0
        self._finished = False

    def __call__(self, done: int, total: int, failed: int = 0) -> None:
        now = self._clock()
        if self._start is None:
            self._start = self._last = now
        finished = total > 0 and done >= total
        if self._finished or (not finished and now - self._last < self._interval):
            return
        self._last, self._finished = now, finished
        self._log.info("%s", describe(done, total, failed, now - self._start))


class BarProgress:
    """A tqdm bar on ``stream`` (a terminal), created at the first report, closed by :meth:`close`."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._bar: Any = None

    def __call__(self, done: int, total: int, failed: int = 0) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="task", file=self._stream, dynamic_ncols=True, desc="histcalc")
        if total != self._bar.total:
            self._bar.total = total
        self._bar.set_postfix_str(f"{failed} file(s) failed", refresh=False)
        self._bar.update(done - self._bar.n)  # update(), not n=: tqdm's rate and ETA follow the increments

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextmanager
def reporter(stream: TextIO, enabled: bool = True, interval_s: float = LOG_INTERVAL_S) -> Iterator[Progress | None]:
    """The progress for a run: a bar when ``stream`` is a terminal, else log lines; None if not ``enabled``."""
    if not enabled:
        yield None
        return
    if not _is_terminal(stream):
        yield LogProgress(interval_s)
        return
    from tqdm.contrib.logging import logging_redirect_tqdm

    bar = BarProgress(stream)
    try:
        with logging_redirect_tqdm():  # log lines print above the bar instead of through it
            yield bar
    finally:
        bar.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream
        return False


@contextmanager
def watch_spark(
    spark_context: Any,
    progress: Callable[[int, int, int], None] | None,
    interval_s: float = SPARK_POLL_S,
    failed: Callable[[], int] | None = None,
) -> Iterator[None]:
    """Report the Spark tasks of the active stages through ``progress`` while the block runs.

    A daemon thread polls ``spark_context.statusTracker()`` every ``interval_s`` seconds (the
    tracker is cheap and only reads the driver's state); ``failed`` gives the files failed so far
    (e.g. an accumulator's value). On a normal exit the last total is reported as done.
    """
    if progress is None:
        yield
        return
    stop = threading.Event()
    last = [0, 0]

    def poll() -> None:
        while not stop.wait(interval_s):
            done, total = _spark_tasks(spark_context)
            if total:
                last[:] = [done, total]
                progress(done, total, failed() if failed else 0)

    thread = threading.Thread(target=poll, name="histcalc-spark-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval_s + 5)
    if last[1]:
        progress(last[1], last[1], failed() if failed else 0)


def _spark_tasks(spark_context: Any) -> tuple[int, int]:
    """Completed and total tasks of the active stages; (0, 0) when the tracker cannot answer."""
    try:
        tracker = spark_context.statusTracker()
        infos = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
    except Exception:  # the gateway closing under us: progress is best effort, never a failure
        log.debug("spark status tracker unavailable", exc_info=True)
        return 0, 0
    stages = [i for i in infos if i is not None]
    return sum(i.numCompletedTasks for i in stages), sum(i.numTasks for i in stages)
