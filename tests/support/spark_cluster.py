"""A Spark standalone cluster (one master, N workers) on 127.0.0.1 for tests.

Uses ``$SPARK_HOME/bin/spark-class`` of the pip-installed pyspark (SPARK_HOME = the pyspark
package directory) and Java from ``JAVA_HOME`` or ``PATH``. Every daemon gets free ports, its
own process group and a work/log directory under one temporary folder, so a test can kill a
worker by PID and ``stop()`` always leaves nothing behind::

    with SparkStandaloneCluster(workers=2) as cluster:
        run(["spark-submit", "--master", cluster.master_url, ...])
        cluster.kill_worker(0)            # SIGKILL the worker JVM and its executors

or as a pytest fixture: ``yield from spark_cluster_fixture(workers=2)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"


class SparkClusterError(RuntimeError):
    """The cluster did not come up (the message carries the daemons' log tails)."""


def spark_home() -> Path:
    """The pip pyspark's directory, which is a complete SPARK_HOME (bin/, jars/)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def java_available() -> bool:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return True
    return shutil.which("java") is not None


@dataclass
class Daemon:
    """One master or worker JVM (spark-class execs java, so the PID is the JVM's)."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    web_port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class SparkStandaloneCluster:
    """Start with ``start()`` or ``with``; ``stop()`` is idempotent and always cleans up."""

    def __init__(
        self,
        workers: int = 2,
        cores_per_worker: int = 1,
        memory_per_worker: str = "1g",
        startup_timeout: float = 90.0,
        base_dir: str | os.PathLike[str] | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        if workers < 0:
            raise ValueError("workers must be >= 0")
        self.n_workers = workers
        self.cores_per_worker = cores_per_worker
        self.memory_per_worker = memory_per_worker
        self.startup_timeout = startup_timeout
        self._base_dir_arg = base_dir
        self._extra_env = dict(extra_env or {})
        self.spark_home = spark_home()
        self.root: Path | None = None
        self.master: Daemon | None = None
        self.workers: list[Daemon] = []
        self.master_port = 0

    # -- public surface ------------------------------------------------------------------
    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    @property
    def master_web_url(self) -> str:
        assert self.master is not None, "cluster not started"
        return f"http://{HOST}:{self.master.web_port}"

    @property
    def worker_pids(self) -> list[int]:
        return [worker.pid for worker in self.workers]

    def start(self) -> SparkStandaloneCluster:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Kill every daemon's process group (executors and Python workers included)."""
        daemons = [*self.workers, *([self.master] if self.master else [])]
        for daemon in daemons:
            _signal_group(daemon.process, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for daemon in daemons:
            with contextlib.suppress(subprocess.TimeoutExpired):
                daemon.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        for daemon in daemons:
            _signal_group(daemon.process, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                daemon.process.wait(timeout=10)
        self.workers = []
        self.master = None
        if self.root is not None and self._base_dir_arg is None:
            shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def kill_worker(self, index: int, sig: int = signal.SIGKILL, with_executors: bool = True) -> int:
        """Kill worker ``index`` by PID (and, by default, its executors: a lost node). Returns the PID."""
        worker = self.workers[index]
        os.kill(worker.pid, sig)
        if with_executors:
            _signal_group(worker.process, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.process.wait(timeout=10)
        return worker.pid

    def state(self) -> dict[str, object]:
        """The master's JSON status (workers, their state, running applications)."""
        with urllib.request.urlopen(f"{self.master_web_url}/json/", timeout=5) as response:
            return json.loads(response.read().decode())  # type: ignore[no-any-return]

    def alive_workers(self) -> int:
        workers = self.state().get("workers", [])
        assert isinstance(workers, list)
        return sum(1 for worker in workers if worker.get("state") == "ALIVE")

    def wait_for_workers(self, count: int, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (timeout or self.startup_timeout)
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                if self.alive_workers() >= count:
                    return
            time.sleep(0.5)
        raise SparkClusterError(f"{count} worker(s) not registered in time\n{self._logs()}")

    def __enter__(self) -> SparkStandaloneCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -----------------------------------------------------------------------
    def _start(self) -> None:
        if not java_available():
            raise SparkClusterError("no java: set JAVA_HOME or put java on PATH")
        base = self._base_dir_arg
        self.root = Path(base) if base is not None else Path(tempfile.mkdtemp(prefix="histcalc-spark-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.master_port = free_port()
        self.master = self._spawn(
            "master",
            "org.apache.spark.deploy.master.Master",
            ["--host", HOST, "--port", str(self.master_port)],
        )
        self._wait_for_master()
        for index in range(self.n_workers):
            self.workers.append(
                self._spawn(
                    f"worker{index}",
                    "org.apache.spark.deploy.worker.Worker",
                    [
                        self.master_url,
                        "--host",
                        HOST,
                        "--port",
                        str(free_port()),
                        "--cores",
                        str(self.cores_per_worker),
                        "--memory",
                        self.memory_per_worker,
                        "--work-dir",
                        str(self.root / f"worker{index}-work"),
                    ],
                )
            )
        self.wait_for_workers(self.n_workers)

    def _spawn(self, name: str, main_class: str, args: list[str]) -> Daemon:
        assert self.root is not None
        web_port = free_port()
        log_path = self.root / f"{name}.log"
        local_dir = self.root / f"{name}-local"
        local_dir.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "SPARK_HOME": str(self.spark_home),
            "SPARK_LOCAL_IP": HOST,
            "SPARK_LOCAL_DIRS": str(local_dir),
            "SPARK_LOG_DIR": str(self.root),
            "SPARK_NO_DAEMONIZE": "1",
            **self._extra_env,
        }
        command = [
            str(self.spark_home / "bin" / "spark-class"),
            main_class,
            *args,
            "--webui-port",
            str(web_port),
        ]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.root,
                start_new_session=True,
            )
        return Daemon(name, process, log_path, web_port)

    def _wait_for_master(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                if self.state().get("status") == "ALIVE":
                    return
            time.sleep(0.5)
        raise SparkClusterError(f"master not up in {self.startup_timeout:.0f} s\n{self._logs()}")

    def _check_alive(self) -> None:
        for daemon in [self.master, *self.workers]:
            if daemon is not None and not daemon.alive():
                raise SparkClusterError(f"{daemon.name} exited with {daemon.process.returncode}\n{self._logs()}")

    def _logs(self) -> str:
        daemons = [d for d in [self.master, *self.workers] if d is not None]
        return "\n".join(f"--- {d.name} (pid {d.pid}) ---\n{d.log_tail()}" for d in daemons)


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the daemon's whole process group (it leads one: start_new_session=True)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def spark_cluster_fixture(**kwargs: object) -> Iterator[SparkStandaloneCluster]:
    """Generator body for a pytest fixture: ``yield from spark_cluster_fixture(workers=2)``."""
    cluster = SparkStandaloneCluster(**kwargs)  # type: ignore[arg-type]
    with cluster:
        yield cluster
