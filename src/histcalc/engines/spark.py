"""The Spark engine: parallelize(tasks) -> mapPartitions(count) -> reduceByKey(add) -> driver.

Each partition merges its tasks' results in place into one keyed Partial and emits it as records
(key -> histogram, plus one record of failures and task count). The records are added up by key
on the executors, and the driver streams the reduced records in (``toLocalIterator``): it never
holds more than the final result, whatever the number of files, zones or groups. The shared
:class:`JobSpec` (bins, AOI, GDAL settings) is broadcast once, not shipped with every task.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from histcalc import kernel_loading
from histcalc.cached_task import TaskCache, run_cached_tasks
from histcalc.engines import Progress
from histcalc.errors import EngineError, JavaNotFound, RasterReadError
from histcalc.plan import JobSpec, Task
from histcalc.result import Partial, merge_records

if TYPE_CHECKING:
    from histcalc.zone_dataset import DatasetSpec, Written

log = logging.getLogger(__name__)

_PARTITIONS_PER_CORE = 4
_TASKS_PER_PARTITION = 500  # beyond 4 x cores: bounded retry cost and even load for 10^5-10^6 tasks
_REDUCERS_PER_CORE = 4  # zonal jobs: see reducer_count
_TASK_ERROR = re.compile(r"histcalc\.errors\.(\w+): (.+)")


def check_java() -> None:
    """Fail early and clearly when no Java runtime can start Spark's JVM."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.path.exists(os.path.join(java_home, "bin", "java")):
        return
    if shutil.which("java") is None:
        raise JavaNotFound(
            "Spark needs Java 17 or newer and none was found (set JAVA_HOME or install "
            "openjdk-17-jre-headless), or use --engine local"
        )


def under_spark_submit() -> bool:
    """True when spark-submit started this Python process (it then owns the master setting)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def session(master: str | None = None, app_name: str = "histcalc") -> Any:
    """A SparkSession; ``master`` None keeps spark-submit's choice, or uses ``local[*]``."""
    check_java()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    try:
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.appName(app_name)
        if master is None and not under_spark_submit():
            master = "local[*]"
        if master is not None:
            builder = builder.master(master)
        if master is not None and master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # never bind a public interface locally
            builder = builder.config("spark.ui.enabled", "false")
        spark = builder.config("spark.ui.showConsoleProgress", "false").getOrCreate()
    except Exception as exc:
        raise EngineError(f"cannot start Spark (master {master}): {_one_line(exc)}") from exc
    spark.sparkContext.setLogLevel("WARN")
    _warn_of_secrets(spark)
    return spark


def _warn_of_secrets(spark: Any) -> None:
    """histcalc puts no secret into a Spark configuration; say so if one got there by other means (the UI shows it)."""
    from histcalc.redact import leaked_keys

    leaked = leaked_keys(spark.sparkContext.getConf().getAll())
    if leaked:
        log.warning(
            "the Spark configuration holds secret-looking values (shown in the Spark UI): %s", ", ".join(leaked)
        )


def run(
    tasks: Sequence[Task],
    job: JobSpec,
    spark: Any,
    progress: Progress | None = None,
    cache: TaskCache | None = None,
    dataset: tuple[DatasetSpec, Written] | None = None,
) -> Partial:
    """Run ``tasks`` on the session's executors, reduce by key there, stream the result in.

    With ``cache`` (small: a location and a hash), the executors read and write their tasks' entries.
    ``dataset``: the executors write the per-zone tables where they reduce them (``histcalc.zone_dataset``)
    and report to the ``Written`` what they wrote; the tables do not come back.
    """
    sc = spark.sparkContext
    slices = partitions(len(tasks), sc.defaultParallelism)
    if cache is not None:  # a re-run's new files are the last dates: spread them over the partitions
        tasks = interleaved(tasks, slices)
    log.info("spark engine: %d task(s) in %d partition(s) on %s", len(tasks), slices, sc.master)
    reducers = reducer_count(
        slices, sc.defaultParallelism, len({task.group for task in tasks}) if job.zone_subsets else 0
    )
    shared = sc.broadcast(job)
    writers = sc.broadcast(dataset[0]) if dataset is not None else None
    try:
        records = (
            sc.parallelize(tasks, numSlices=slices)
            .mapPartitions(lambda part: _count_partition(part, shared.value, cache))
            .reduceByKey(merge_records, numPartitions=reducers)
        )
        if writers is not None:
            records = _written_by_executors(records, writers, reducers)
        with _watched(sc, progress):
            return Partial.from_records(_reported(records.toLocalIterator(prefetchPartitions=True), dataset))
    except Exception as exc:
        raise _task_error(exc) from exc
    finally:
        shared.unpersist()
        if writers is not None:
            writers.unpersist()


def _written_by_executors(records: Any, writers: Any, reducers: int) -> Any:
    """Groups written where they were reduced, then the whole period reduced and written by blocks of zones."""
    from histcalc import zone_dataset

    return (
        records.flatMap(lambda record: zone_dataset.write_reduced(record, writers.value))
        .combineByKey(
            zone_dataset.gather_start, zone_dataset.gather_add, zone_dataset.gather_merge, numPartitions=reducers
        )
        .flatMap(lambda record: zone_dataset.write_whole(record, writers.value))
    )


def _reported(records: Iterator[Any], dataset: tuple[DatasetSpec, Written] | None) -> Iterator[Any]:
    """The records, less the writers' reports (given to the ``Written``)."""
    for key, value in records:
        if key[0] == "zw" and dataset is not None:
            dataset[1].add(value)
        else:
            yield key, value


def partitions(n_tasks: int, parallelism: int) -> int:
    """Partitions for ``n_tasks``: 4 per core, more when there are many tasks (500 at most in each)."""
    wanted = max(parallelism * _PARTITIONS_PER_CORE, -(-n_tasks // _TASKS_PER_PARTITION))
    return max(1, min(n_tasks, wanted))


def reducer_count(slices: int, parallelism: int, zonal_groups: int = 0) -> int:
    """Reduce partitions: one per core, or for a zonal job up to 4 per core while there are groups for them.

    A reducer holds every key it was sent until it has merged them all, and a zonal group's table is tens of
    MB (100,000 parcels x a date: 60 MB). Measured with 40 dates on Spark local[2] writing datasets: a Python
    worker peaked at 1.11 GB with 2 reducers, 0.93 GB with 8 (33.6 s against 32.1 s), 0.79 GB with 40 (51 s:
    more Spark tasks than work).
    """
    reducers = max(1, min(slices, parallelism))
    return max(reducers, min(zonal_groups, _REDUCERS_PER_CORE * parallelism))


def interleaved(tasks: Sequence[Task], slices: int) -> list[Task]:
    """``tasks`` dealt round-robin, newest (last) first, into Spark's contiguous slices ``[i*n//slices, ...)``."""
    n = len(tasks)
    sizes = [(i + 1) * n // slices - i * n // slices for i in range(slices)]
    buckets: list[list[Task]] = [[] for _ in range(slices)]
    i = 0
    for task in reversed(tasks):
        while len(buckets[i]) == sizes[i]:  # the sizes add up to n: a free bucket is always found
            i = (i + 1) % slices
        buckets[i].append(task)
        i = (i + 1) % slices
    return [task for bucket in buckets for task in bucket]


def parallelism(spark: Any) -> int:
    return int(spark.sparkContext.defaultParallelism)


def _count_partition(
    tasks: Iterator[Task], job: JobSpec, cache: TaskCache | None
) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if job.zone_subsets:  # without C kernels, a (reused) Python worker loads numba's while its first task reads
        kernel_loading.start_warm_up()
    yield from run_cached_tasks(tasks, job, cache).records()


def _watched(sc: Any, progress: Progress | None) -> Any:
    """Report Spark's task progress while the job runs."""
    import contextlib

    from histcalc.progress import watch_spark

    return watch_spark(sc, progress) if progress is not None else contextlib.nullcontext()


def _task_error(exc: BaseException) -> Exception:
    """Our own error raised inside a task, recovered from Spark's wrapped traceback text."""
    match = _TASK_ERROR.search(str(exc))
    if match and match[1] == "RasterReadError":
        return RasterReadError(match[2].strip())
    if match:
        return EngineError(f"{match[1]}: {match[2].strip()}")
    return EngineError(f"Spark job failed: {_one_line(exc)}")


def _one_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).strip().splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__
