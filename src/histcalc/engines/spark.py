"""The Spark engine: parallelize(tasks) -> mapPartitions(count) -> treeReduce(add).

Each partition returns one Partial (a few KB of int64 counts), so the reduce moves arrays
whose size depends on the bins, never on the number of files or pixels.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from typing import Any

from histcalc.bins import BinSpec
from histcalc.errors import EngineError, JavaNotFound, RasterReadError
from histcalc.plan import OnError, Task, run_tasks
from histcalc.result import Partial

log = logging.getLogger(__name__)

_PARTITIONS_PER_CORE = 4
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
    return spark


def run(
    tasks: Sequence[Task],
    bins: BinSpec,
    gdal: Mapping[str, str],
    on_error: OnError,
    spark: Any,
) -> Partial:
    """Run ``tasks`` on the session's executors and tree-reduce their partial results."""
    sc = spark.sparkContext
    slices = max(1, min(len(tasks), sc.defaultParallelism * _PARTITIONS_PER_CORE))
    log.info("spark engine: %d task(s) in %d partition(s) on %s", len(tasks), slices, sc.master)
    count = partial(_count_partition, bins=bins, gdal=dict(gdal), on_error=on_error)
    try:
        rdd = sc.parallelize(list(tasks), numSlices=slices).mapPartitions(count)
        result: Partial = rdd.treeReduce(_add, depth=2)
    except Exception as exc:
        raise _task_error(exc) from exc
    return result


def parallelism(spark: Any) -> int:
    return int(spark.sparkContext.defaultParallelism)


def _count_partition(
    tasks: Iterator[Task], bins: BinSpec, gdal: dict[str, str], on_error: OnError
) -> Iterator[Partial]:
    yield run_tasks(list(tasks), bins, gdal, on_error)


def _add(a: Partial, b: Partial) -> Partial:
    return a + b


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
