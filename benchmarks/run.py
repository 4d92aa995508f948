"""Side-by-side performance of histcalc on Terrascope-like tiles: ``python benchmarks/run.py``.

Generates the tiles once (benchmarks/cache/), then runs every method once per repetition, in
turn (the order rotates each repetition so drift spreads evenly), each in a fresh process whose
process tree is sampled for peak memory, and writes the medians to RESULTS.md (+ RESULTS.json).
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402
from procmon import TreeMonitor  # noqa: E402
from tiles import ensure_tiles  # noqa: E402

SEED_BBOX = "4.91,51.16,5.24,51.27"
RUNNER_TIMEOUT_S = 900


@dataclass(frozen=True)
class Case:
    """One thing to measure: a method at a parallelism, on full tiles or on the seed bbox."""

    label: str
    method: str
    workers: int
    scope: str = "full"  # "full" (every tile), "bbox" (the seed bbox) or "tile" (the first tile alone)
    rss: str = "pool"  # where the work runs: "self" (runner), "pool" (pool workers), "spark", "tool"

    @property
    def key(self) -> str:
        return f"{self.method}/{self.scope}/{self.workers}"


@dataclass
class Measurement:
    case: Case
    rep: int
    seconds: float | None = None
    worker_peak_mb: float | None = None
    runner_peak_mb: float | None = None
    jvm_peak_mb: float | None = None
    session_s: float | None = None
    warmup_s: float | None = None
    cpu_s: float | None = None
    jvm_cpu_s: float | None = None
    dn_counts: list[int] | None = None
    load1: float = 0.0
    note: str = ""
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.time()
    workers = args.workers or len(os.sched_getaffinity(0))
    print(f"tiles: {args.tiles} x {args.size} px in {args.cache} (generated once)", flush=True)
    t0 = time.perf_counter()
    files = [str(p) for p in ensure_tiles(args.cache, args.tiles, args.size, workers)]
    print(f"tiles ready in {time.perf_counter() - t0:.1f} s", flush=True)
    _warm_page_cache(files)
    cases, skipped = plan_cases(workers, args.quick)
    for note in skipped:
        print(f"skipped: {note}", flush=True)
    logs = args.cache / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    measurements: list[Measurement] = []
    for rep in range(args.reps):
        shift = rep % len(cases)
        for case in cases[shift:] + cases[:shift]:
            measurements.extend(measure(case, rep, files, logs))
    kernels = measure_kernels(files, logs)
    meta = report.machine(workers, started, args, len(files))
    meta["skipped"] = skipped
    meta["startup"] = measure_startup(files, logs)
    meta["pipeline"] = measure_pipeline(files, workers, logs)
    meta["whole"] = measure_whole_processes(files, logs, max(3, args.reps))
    window_px = report.bbox_pixels(files[0], SEED_BBOX)
    pixels = {"full": len(files) * args.size**2, "bbox": len(files) * window_px, "tile": args.size**2}
    summary = report.summarize(measurements, pixels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report.markdown(summary, kernels, meta))
    raw = {"meta": meta, "summary": summary, "kernels": kernels, "measurements": [_jsonable(m) for m in measurements]}
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=str))
    print(report.console(summary), flush=True)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')} in {time.time() - started:.0f} s", flush=True)
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="histcalc benchmark harness (see benchmarks/README.md)")
    parser.add_argument("--tiles", type=int, default=8, help="number of tiles (default 8)")
    parser.add_argument("--size", type=int, default=10980, help="tile width and height in px (default 10980)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per method (default 3, --quick 1)")
    parser.add_argument("--workers", type=int, default=None, help="parallelism (default: usable cores)")
    parser.add_argument("--quick", action="store_true", help="only the cases at full parallelism, one repetition")
    parser.add_argument("--cache", type=Path, default=HERE / "cache", help="tile cache folder")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="results table (and .json beside)")
    args = parser.parse_args(argv)
    if args.reps is None:
        args.reps = 1 if args.quick else 3
    if args.tiles < 1 or args.size < 64 or args.reps < 1:
        parser.error("--tiles and --reps must be >= 1, --size >= 64")
    return args


def plan_cases(workers: int, quick: bool) -> tuple[list[Case], list[str]]:
    """The cases this machine can run, and a note for each peer that is not installed."""
    w = workers
    single = (
        []
        if quick
        else [
            Case("decode limit (rasterio, every block)", "decode", 1, rss="self"),
            Case("histcalc local engine", "histcalc_local", 1, rss="self"),
            Case("histcalc local engine, HISTCALC_KERNEL=numba", "histcalc_local_numba", 1, rss="self"),
        ]
    )
    one_tile = [
        Case("decode limit (rasterio, every block)", "decode", n, "tile", rss="self" if n == 1 else "pool")
        for n in sorted({1, w})
    ] + [
        Case("histcalc local engine", "histcalc_local", n, "tile", rss="self" if n == 1 else "pool")
        for n in sorted({1, w})
    ]
    cases = [
        *single,
        *one_tile,
        Case("decode limit (rasterio, every block)", "decode", w),
        Case("classic (whole band + np.histogram)", "classic", w),
        Case("histcalc local engine", "histcalc_local", w),
        Case("histcalc local engine, HISTCALC_KERNEL=numba", "histcalc_local_numba", w),
        Case("decode limit (blocks touching bbox)", "decode", w, "bbox"),
        Case("classic (whole band + np.histogram)", "classic", w, "bbox"),
        Case("histcalc local engine", "histcalc_local", w, "bbox"),
    ]
    skipped = []
    if _have_java():
        if not quick:
            cases.append(Case("histcalc Spark local[1]", "histcalc_spark", 1, rss="spark"))
        cases.append(Case(f"histcalc Spark local[{w}]", "histcalc_spark", w, rss="spark"))
    else:
        skipped.append("histcalc on Spark: no Java runtime found")
    if importlib.util.find_spec("dask") and importlib.util.find_spec("rioxarray"):
        cases.append(Case("dask + rioxarray (da.histogram, fixed range)", "dask", w, rss="self"))
    else:
        skipped.append("dask + rioxarray: not installed (pip install 'dask[array]' rioxarray)")
    if shutil.which("gdalinfo"):
        cases.append(Case("gdalinfo -hist (GDAL CLI)", "gdalinfo", w, rss="tool"))
    else:
        skipped.append("gdalinfo -hist: not installed (apt-get install gdal-bin)")
    return cases, skipped


def _have_java() -> bool:
    try:
        from histcalc.engines.spark import check_java

        check_java()
        return True
    except Exception:
        return False


def measure(case: Case, rep: int, files: list[str], logs: Path, timeout: float = RUNNER_TIMEOUT_S) -> list[Measurement]:
    """Run ``case`` once in a fresh process; one Measurement per result it reports."""
    scope_files = files[:1] if case.scope == "tile" else files
    command = [sys.executable, str(HERE / "methods.py"), case.method, "--workers", str(case.workers), *scope_files]
    if case.scope == "bbox":
        command += ["--bbox", SEED_BBOX]
    load1 = os.getloadavg()[0]
    log_path = logs / f"{case.method}-{case.scope}-{case.workers}-rep{rep}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        with TreeMonitor(proc.pid) as monitor:
            try:
                stdout, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, _ = proc.communicate()
    rows = _result_rows(stdout)
    if proc.returncode != 0 or rows is None:
        tail = log_path.read_text().strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        print(f"  rep {rep} {case.label} [{case.key}]: FAILED ({tail[0][:200]})", flush=True)
        return [Measurement(case, rep, load1=load1, error=tail[0][:300])]
    out = []
    for row in rows:
        this = (
            case if row.get("part", "full") == "full" else Case(case.label, case.method, case.workers, "bbox", case.rss)
        )
        m = Measurement(
            this,
            rep,
            seconds=row["seconds"],
            runner_peak_mb=row["self_peak_mb"],
            session_s=row.get("session_s"),
            warmup_s=row.get("warmup_s"),
            cpu_s=row.get("cpu_s"),
            jvm_cpu_s=row.get("jvm_cpu_s"),
            dn_counts=row.get("dn_counts"),
            load1=load1,
            note=row.get("note", ""),
            extra=row.get("extra", {}),
        )
        if row.get("files_failed"):  # a fast failure is no measurement
            m.seconds, m.error = None, f"{row['files_failed']} file(s) failed, see {log_path}"
            print(f"  rep {rep} {this.label} [{this.key}]: FAILED ({m.error})", flush=True)
            out.append(m)
            continue
        m.worker_peak_mb = _worker_peak(case.rss, monitor, row)
        m.jvm_peak_mb = monitor.peak_mb("jvm")
        out.append(m)
        print(
            f"  rep {rep} {this.label} [{this.key}]: {m.seconds:.2f} s, worker peak {m.worker_peak_mb} MB", flush=True
        )
    return out


def _worker_peak(rss: str, monitor: TreeMonitor, row: dict[str, Any]) -> float | None:
    """Peak RSS of the process(es) that did the counting (sampled, or exact from rusage)."""
    if rss == "self":
        return float(row["self_peak_mb"])
    if rss == "spark":
        return monitor.peak_mb("worker")
    sampled = monitor.peak_mb("tool" if rss == "tool" else "worker")
    return max(v for v in (sampled, row.get("children_peak_mb")) if v is not None)


def _result_rows(stdout: str) -> list[dict[str, Any]] | None:
    for line in stdout.splitlines():
        if line.startswith("BENCH-RESULT "):
            rows: list[dict[str, Any]] = json.loads(line.split(" ", 1)[1])
            return rows
    return None


def measure_kernels(files: list[str], logs: Path) -> list[dict[str, Any]]:
    command = [sys.executable, str(HERE / "methods.py"), "kernels", files[0]]
    with open(logs / "kernels.log", "w") as log:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True, timeout=RUNNER_TIMEOUT_S)
    rows = _result_rows(done.stdout) or []
    for row in rows:
        row.pop("self_peak_mb", None)
        row.pop("children_peak_mb", None)
    return rows


def measure_startup(files: list[str], logs: Path, warm_runs: int = 3) -> list[dict[str, Any]]:
    """First kernel call in a fresh process: the C kernels, then numba once with an empty cache (JIT), then
    with the cache."""
    import tempfile

    out = []
    for run in range(warm_runs):
        command = [sys.executable, str(HERE / "methods.py"), "jit", files[0]]
        with open(logs / f"c-load-{run}.log", "w") as log:
            env = {**os.environ, "HISTCALC_KERNEL": "c"}
            done = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env, check=False)
        out += [{"cache": "C kernels (compiled into the wheel)", **row} for row in _result_rows(done.stdout) or []]
    with tempfile.TemporaryDirectory(prefix="histcalc-numba-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "HISTCALC_KERNEL": "numba"}
        for run in range(1 + warm_runs):
            command = [sys.executable, str(HERE / "methods.py"), "jit", files[0]]
            with open(logs / f"jit-{run}.log", "w") as log:
                done = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env, check=False)
            for row in _result_rows(done.stdout) or []:
                out.append({"cache": "cold (empty cache: JIT)" if run == 0 else "warm (cache present)", **row})
    return out


def measure_whole_processes(files: list[str], logs: Path, reps: int) -> list[dict[str, Any]]:
    """The seed bbox over ``files`` as whole processes, one process each, wall time from start to exit:
    the interpreter alone, the interpreter + rasterio + decoding the blocks the box touches (the floor),
    and the ``histcalc`` command on a folder of the same files (``--workers 1``)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="histcalc-bbox-") as tmp:
        folder = Path(tmp) / "tiles"
        folder.mkdir()
        for f in files:
            (folder / Path(f).name).symlink_to(Path(f).resolve())
        histcalc = [str(Path(sys.executable).with_name("histcalc"))]
        if not Path(histcalc[0]).exists():
            histcalc = [sys.executable, "-m", "histcalc"]
        ways = {
            "python -c pass (interpreter start)": [sys.executable, "-c", "pass"],
            "python + import rasterio + decoding the blocks the box touches (floor)": [
                sys.executable, str(HERE / "methods.py"), "decode", "--workers", "1", "--bbox", SEED_BBOX, *files,
            ],
            "histcalc --catalog DIR --bbox ... --engine local --workers 1 (whole command)": [
                *histcalc, "--catalog", str(folder), "--pattern", "*.tif", "--bbox", SEED_BBOX, "--engine", "local",
                "--workers", "1", "-q", "--output", str(Path(tmp) / "out.json"),
            ],
        }  # fmt: skip
        times: dict[str, list[float]] = {way: [] for way in ways}
        for rep in range(reps):
            for n, (way, command) in enumerate(ways.items()):
                started = time.perf_counter()
                with open(logs / f"whole-{n}-rep{rep}.log", "w") as log:
                    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=log, check=False)
                if done.returncode == 0:
                    times[way].append(time.perf_counter() - started)
    return [{"way": way, "seconds": report._median(t), "runs": len(t)} for way, t in times.items()]


def measure_pipeline(files: list[str], workers: int, logs: Path) -> list[dict[str, Any]]:
    """One tile in one process: serial, with a reader thread, with ``workers`` reading-and-counting threads."""
    command = [sys.executable, str(HERE / "methods.py"), "pipeline", "--workers", str(workers), files[0]]
    with open(logs / "pipeline.log", "w") as log:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, text=True, timeout=RUNNER_TIMEOUT_S)
    return _result_rows(done.stdout) or []


def _warm_page_cache(files: list[str]) -> None:
    """Read every file once so that all methods see the same warm page cache (we time CPU, not disk)."""
    for f in files:
        with open(f, "rb") as handle:
            while handle.read(16 << 20):
                pass


def _jsonable(m: Measurement) -> dict[str, Any]:
    out = asdict(m)
    out["case"] = asdict(m.case)
    out.pop("dn_counts")
    return out


if __name__ == "__main__":
    sys.exit(main())
