"""What the command logs and where: stderr at the chosen level, without py4j's and Spark's chatter."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from histcalc.redact import protect_handlers


def configure_logging(level: int) -> None:
    chosen = logging.INFO if level == 0 else (logging.DEBUG if level > 0 else logging.WARNING)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_not_py4j_chatter)
    logging.basicConfig(level=chosen, handlers=[handler], force=True)
    protect_handlers()  # every handler's text goes through redact (credentials in URLs, tokens)
    for noisy in ("py4j", "pyspark", "rasterio"):
        logging.getLogger(noisy).setLevel(max(chosen, logging.WARNING))
    logging.getLogger("urllib3").setLevel(logging.DEBUG if level > 1 else logging.ERROR)  # retries: we say it


def _not_py4j_chatter(record: logging.LogRecord) -> bool:
    """py4j logs a retried send on a stale gateway connection at INFO on the *root* logger, with a traceback."""
    return record.levelno >= logging.WARNING or f"{os.sep}py4j{os.sep}" not in record.pathname


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Logs to whatever ``sys.stderr`` is at the time of each record (it may be swapped)."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def quiet_spark_startup(quiet: bool) -> None:
    """With -q, a driver JVM started from here logs errors only (no log4j and Spark start-up lines).

    spark-submit's launcher puts ``SPARK_SUBMIT_OPTS`` on the driver's java command line; the
    properties file sends log4j2's output at level ERROR to stderr. Under spark-submit the JVM
    is already running and its own log4j configuration applies.
    """
    from histcalc.engines.spark import under_spark_submit

    if not quiet or under_spark_submit():
        return
    config = Path(__file__).with_name("log4j2-quiet.properties")
    option = f"-Dlog4j2.configurationFile={config.as_uri()}"
    current = os.environ.get("SPARK_SUBMIT_OPTS", "")
    if option not in current:
        os.environ["SPARK_SUBMIT_OPTS"] = f"{current} {option}".strip()
