"""Fixtures for the deployment tests: a private Docker engine, a locally made base image,
the histcalc wheel, the two images, and helpers around scripts/submit_job.sh.

The Docker engine is a real ``dockerd`` (Debian's docker.io) started for the session with its
data root, exec root and socket in a temporary folder outside the build context; it runs with no
bridge and no iptables rules, so builds and containers use ``--network host`` / ``none``. No
registry is reachable, so the base image is made here: ``debootstrap --variant=minbase
bookworm`` (the tarball is cached, see HISTCALC_TEST_CACHE), ``docker import``, then a stand-in
tagged ``python:3.11-slim-bookworm`` (tests/deploy/standin/Dockerfile).

Environment knobs:
  HISTCALC_TEST_CACHE      cache folder for the debootstrap tarball [/var/tmp/histcalc-test-cache]
  HISTCALC_DOCKER_KEEP=1   keep the engine's temporary folder (debugging)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STANDIN_DIR = Path(__file__).resolve().parent / "standin"

MINBASE_TAG = "histcalc-test/bookworm-minbase:latest"
BASE_TAG = "python:3.11-slim-bookworm"
IMAGE_TAG = "histcalc:latest"
STAGED_TAG = "histcalc:staged"
DEBOOTSTRAP_MAX_AGE_S = 7 * 24 * 3600  # refresh weekly: bookworm gets point releases

# Timings and sizes collected over the session, printed at the end (pytest -s not needed).
REPORT: dict[str, str] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("histcalc deployment: timings and image sizes")
        for key, value in REPORT.items():
            terminalreporter.write_line(f"{key:42s} {value}")


def _cache_dir() -> Path:
    path = Path(os.environ.get("HISTCALC_TEST_CACHE", "/var/tmp/histcalc-test-cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _tail(text: str | bytes | None, lines: int = 60) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join((text or "").splitlines()[-lines:])


# ----------------------------------------------------------------------------- docker engine
@dataclass
class DockerEngine:
    root: Path
    socket: Path
    process: subprocess.Popen[bytes]
    client: str
    env: dict[str, str] = field(default_factory=dict)

    def run(
        self, *args: str, timeout: float = 600, check: bool = True, input: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.client, *args],
            env=self.env,
            capture_output=True,
            text=input is None,
            timeout=timeout,
            input=input,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"docker {' '.join(args[:6])} ... exited {result.returncode}\n"
                f"stdout:\n{_tail(result.stdout)}\nstderr:\n{_tail(result.stderr)}"
            )
        return result  # type: ignore[return-value]

    def image_size(self, tag: str) -> int:
        return int(self.run("image", "inspect", "--format", "{{.Size}}", tag).stdout.strip())

    def has_image(self, tag: str) -> bool:
        return self.run("image", "inspect", tag, check=False).returncode == 0


def _docker_client() -> str | None:
    # The client that came with Debian's dockerd matches its API and builds with the classic
    # builder by default; a newer client on PATH works too with DOCKER_BUILDKIT=0.
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _stop_engine(engine: DockerEngine) -> None:
    children = _child_pids(engine.process.pid)
    with contextlib.suppress(ProcessLookupError):
        engine.process.send_signal(signal.SIGTERM)
    try:
        engine.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        engine.process.kill()
        engine.process.wait(timeout=10)
    for pid in children:  # dockerd's own containerd, should it outlive its parent
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _unmount_below(engine.root)


def _child_pids(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _unmount_below(root: Path) -> None:
    """dockerd bind-mounts its data root and overlay layers; undo what a hard stop left."""
    prefix = str(root.resolve())
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mountpoint in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mountpoint], capture_output=True, check=False)


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[DockerEngine]:
    dockerd = shutil.which("dockerd")
    client = _docker_client()
    if dockerd is None or client is None:
        pytest.skip("dockerd/docker not installed (scripts/ci/install-docker-deps.sh installs docker.io)")
    if os.geteuid() != 0:
        pytest.skip("a private dockerd needs root")
    root = Path(tempfile.mkdtemp(prefix="histcalc-dockerd-"))
    if str(root).startswith(str(REPO)):
        raise AssertionError("the engine's folder must lie outside the build context")
    sock = root / "docker.sock"
    (root / "client-config").mkdir()
    log = open(root / "dockerd.log", "wb")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        [
            dockerd,
            "--data-root",
            str(root / "data"),
            "--exec-root",
            str(root / "exec"),
            "--pidfile",
            str(root / "dockerd.pid"),
            "-H",
            f"unix://{sock}",
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    env = {
        **os.environ,
        "DOCKER_HOST": f"unix://{sock}",
        "DOCKER_BUILDKIT": "0",
        # Keep the host's ~/.docker (credential helpers, contexts) out of these tests.
        "DOCKER_CONFIG": str(root / "client-config"),
    }
    engine = DockerEngine(root, sock, process, client, env)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                log_text = (root / "dockerd.log").read_text()
                raise AssertionError(f"dockerd exited {process.returncode}:\n{_tail(log_text)}")
            if engine.run("version", check=False, timeout=10).returncode == 0:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"dockerd not up in 60 s:\n{_tail((root / 'dockerd.log').read_text())}")
            time.sleep(0.5)
        yield engine
    finally:
        _stop_engine(engine)
        log.close()
        if os.environ.get("HISTCALC_DOCKER_KEEP") != "1":
            shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------ base image
def _debootstrap_tarball() -> Path:
    """bookworm minbase as a tarball, made once and kept in the cache folder."""
    tarball = _cache_dir() / "debootstrap-bookworm-minbase.tar"
    if tarball.exists() and time.time() - tarball.stat().st_mtime < DEBOOTSTRAP_MAX_AGE_S:
        return tarball
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        pytest.skip("debootstrap not installed (scripts/ci/install-docker-deps.sh installs it)")
    with tempfile.TemporaryDirectory(prefix="histcalc-debootstrap-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        started = time.monotonic()
        result = subprocess.run(
            [debootstrap, "--variant=minbase", "bookworm", str(rootfs), "http://deb.debian.org/debian"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0:
            raise AssertionError(f"debootstrap failed:\n{_tail(result.stdout)}\n{_tail(result.stderr)}")
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
        partial.replace(tarball)
        REPORT["debootstrap (not cached)"] = f"{time.monotonic() - started:.0f} s"
    return tarball


def _host_pip_conf() -> str:
    """The host's pip settings that also make sense inside a build: http(s) indexes only."""
    lines = ["[global]", "cert = /usr/local/share/histcalc-test/ca-bundle.crt"]
    for key in ("index-url", "extra-index-url"):
        urls = os.environ.get(f"PIP_{key.upper().replace('-', '_')}", "")
        if not urls:
            result = subprocess.run(
                [sys.executable, "-m", "pip", "config", "get", f"global.{key}"],
                capture_output=True,
                text=True,
                check=False,
            )
            urls = result.stdout.strip() if result.returncode == 0 else ""
        kept = [u for u in urls.split() if u.startswith(("http://", "https://"))]
        if kept:
            lines.append(f"{key} = {' '.join(kept)}")
    return "\n".join(lines) + "\n"


def _host_ca_bundle() -> Path:
    candidates = (
        os.environ.get("PIP_CERT"),
        os.environ.get("SSL_CERT_FILE"),
        "/etc/ssl/certs/ca-certificates.crt",
    )
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise AssertionError("no CA bundle on the host for pip inside the build")


@pytest.fixture(scope="session")
def base_image(docker_engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The stand-in for python:3.11-slim-bookworm, built on the imported debootstrap tree."""
    started = time.monotonic()
    tarball = _debootstrap_tarball()
    docker_engine.run("import", str(tarball), MINBASE_TAG)
    context = tmp_path_factory.mktemp("standin")
    shutil.copy(STANDIN_DIR / "Dockerfile", context / "Dockerfile")
    shutil.copy(_host_ca_bundle(), context / "host-ca-bundle.crt")
    (context / "pip.conf").write_text(_host_pip_conf())
    docker_engine.run(
        "build",
        "--network",
        "host",
        "--build-arg",
        f"MINBASE={MINBASE_TAG}",
        "-t",
        BASE_TAG,
        str(context),
        timeout=900,
    )
    REPORT["base image (import + stand-in build)"] = f"{time.monotonic() - started:.0f} s"
    return BASE_TAG


# ------------------------------------------------------------------------ wheel + context
@dataclass
class BuildContext:
    path: Path
    wheel: Path


_CONTEXT_SKIP = {
    ".git",
    ".venv",
    "venv",
    "dist",
    "build",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    "demo-data",
    "benchmarks",
}


@pytest.fixture(scope="session")
def build_context(tmp_path_factory: pytest.TempPathFactory) -> BuildContext:
    """A copy of the repository (as a clean clone has it) with the wheel in dist/."""
    context = tmp_path_factory.mktemp("context") / "histcalc"
    shutil.copytree(
        REPO,
        context,
        ignore=lambda _d, names: [n for n in names if n in _CONTEXT_SKIP or n.endswith(".egg-info")],
    )
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(context / "dist"), str(context)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise AssertionError(f"python -m build failed:\n{_tail(result.stdout)}\n{_tail(result.stderr)}")
    wheels = sorted((context / "dist").glob("histcalc-*.whl"))
    assert len(wheels) == 1, wheels
    return BuildContext(context, wheels[0])


@dataclass
class BuiltImage:
    tag: str
    seconds: float
    size: int
    log: str


def _build(engine: DockerEngine, context: Path, tag: str, *args: str) -> BuiltImage:
    started = time.monotonic()
    result = engine.run("build", "--network", "host", "-t", tag, *args, str(context), timeout=1800)
    seconds = time.monotonic() - started
    size = engine.image_size(tag)
    REPORT[f"build {tag}"] = f"{seconds:.0f} s, {size / 1e6:.0f} MB"
    return BuiltImage(tag, seconds, size, result.stdout)


@pytest.fixture(scope="session")
def histcalc_image(docker_engine: DockerEngine, base_image: str, build_context: BuildContext) -> BuiltImage:
    """./Dockerfile with the prebuilt wheel (PACKAGE_NAME), as CI builds it."""
    return _build(
        docker_engine,
        build_context.path,
        IMAGE_TAG,
        "--build-arg",
        f"PACKAGE_NAME={build_context.wheel.name}",
        "--build-arg",
        f"BASE_IMAGE={base_image}",
    )


@pytest.fixture(scope="session")
def staged_image(docker_engine: DockerEngine, base_image: str, build_context: BuildContext) -> BuiltImage:
    """staged.Dockerfile: the wheel is built inside the builder stage."""
    return _build(
        docker_engine,
        build_context.path,
        STAGED_TAG,
        "-f",
        str(build_context.path / "staged.Dockerfile"),
        "--build-arg",
        f"BASE_IMAGE={base_image}",
    )


@pytest.fixture(params=["Dockerfile", "staged.Dockerfile"], scope="session")
def any_image(request: pytest.FixtureRequest) -> BuiltImage:
    name = "histcalc_image" if request.param == "Dockerfile" else "staged_image"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]
