"""Archive-scale benchmark: driver time and memory for 10^4-10^5 tiny files and 10^6 synthetic tasks.

    .venv/bin/python benchmarks/scale.py                          # 10k and 100k files, local + Spark, 1M tasks
    .venv/bin/python benchmarks/scale.py --files 2000 --engines local --synthetic 20000   # a quick look

Tiny files (64 x 64 px uint8, one per "scene") make reading and counting cheap, so what is left is the
bookkeeping: scene selection (a directory walk), planning, shipping tasks, merging partial results and
reporting. Each measurement runs in a fresh process; its peak RSS is the kernel's high-water mark
(VmHWM) of the driver process (and, for Spark, of the driver's JVM). The bookkeeping share is measured
on the local engine with one process: the time spent inside ``raster.histogram_of`` (reading and
counting) is timed around each call, everything else is bookkeeping.

Files are generated once under ``benchmarks/cache/scale/`` (gitignored) and reused.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache" / "scale"
SIDE = 64
PER_FOLDER = 1000


def file_name(i: int) -> str:
    day = date(2024, 5, 1 + i % 28)
    return f"S2A_{day:%Y%m%d}T104621_31UFS_NDVI_10M_V200_{i:06d}.tif"


def ensure_files(n: int) -> Path:
    """``n`` tiny GeoTIFFs under CACHE/<n>/ in folders of 1,000 (made once)."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    root = CACHE / str(n)
    done = root / "complete.json"
    if done.exists():
        return root
    rng = np.random.default_rng(n)
    profile = {"driver": "GTiff", "width": SIDE, "height": SIDE, "count": 1, "dtype": "uint8", "nodata": 255}
    profile.update(crs="EPSG:32631", compress="deflate", transform=from_origin(600000, 5700000, 10, 10))
    started = time.perf_counter()
    for i in range(n):
        folder = root / f"{i // PER_FOLDER:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        with rasterio.open(folder / file_name(i), "w", **profile) as dst:
            dst.write(rng.integers(0, 256, (SIDE, SIDE), dtype=np.uint8), 1)
    done.write_text(json.dumps({"files": n, "seconds": time.perf_counter() - started}))
    return root


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: getrusage would also count the parent's peak before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_files(engine: str, n: int, workers: int) -> dict[str, Any]:
    """One job over ``n`` cached tiny files, in this (fresh) process."""
    from histcalc import Query, compute_histogram, find_scenes
    from histcalc.bins import BinSpec

    root = ensure_files(n)
    timed = _time_reads() if engine == "local" and workers == 1 else None
    jvm: dict[str, float] = {}
    session = None
    if engine == "spark":  # started before the clock: the session start is not the job's
        from histcalc.engines import spark as spark_engine

        session = spark_engine.session(f"local[{workers}]", app_name="histcalc-scale")
    started = time.perf_counter()
    scenes = find_scenes(Query(catalog=str(root), collection=None))
    selected = time.perf_counter()
    bins = BinSpec.uniform(50, 0, 250)
    # the files are copies of one tile per day: count every one (what is measured), no de-duplication
    if session is not None:
        with _jvm_monitor(jvm):
            result = compute_histogram(scenes, bins, engine="spark", spark=session, overlaps="count")
        session.stop()
    else:
        result = compute_histogram(scenes, bins, engine="local", workers=workers, overlaps="count")
    total = time.perf_counter() - started
    row = {
        "engine": engine,
        "files": n,
        "workers": workers,
        "select_s": round(selected - started, 2),
        "total_s": round(total, 2),
        "job_s": round(result.elapsed_s, 2),
        "per_file_ms": round(1000 * total / n, 3),
        "driver_rss_mb": round(_peak_rss_mb(), 1),
        "jvm_rss_mb": round(jvm.get("peak_mb", 0.0), 1) or None,
        "ok": len(result.files_ok),
        "failed": len(result.files_failed),
        "counted": result.histogram.count,
    }
    if timed is not None:
        row["read_count_s"] = round(timed["seconds"], 2)
        row["bookkeeping_share"] = round(1 - timed["seconds"] / total, 3)
    return row


def _time_reads() -> dict[str, float]:
    """Wrap the reader that every task calls, to add up the time spent reading and counting."""
    import histcalc.plan as plan

    spent = {"seconds": 0.0}
    inner = plan.histogram_of

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent["seconds"] += time.perf_counter() - t0

    plan.histogram_of = timed  # type: ignore[assignment]
    return spent


class _jvm_monitor:
    def __init__(self, out: dict[str, float]) -> None:
        import os

        sys.path.insert(0, str(HERE))
        from procmon import TreeMonitor

        self.out, self.monitor = out, TreeMonitor(os.getpid(), interval=0.2)

    def __enter__(self) -> None:
        self.monitor.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.monitor.__exit__(*exc)
        jvm = [kib for kind, kib in self.monitor.peaks.values() if kind == "jvm"]
        self.out["peak_mb"] = max(jvm, default=0) / 1024


def run_synthetic(n: int) -> dict[str, Any]:
    """Plan ``n`` tasks from synthetic scenes and merge ``n`` one-file results: no pixel is read."""
    import numpy as np

    from histcalc.bins import BinSpec
    from histcalc.histogram import Histogram
    from histcalc.plan import JobSpec, plan_tasks
    from histcalc.result import Partial
    from histcalc.scenes import Scene

    started = time.perf_counter()
    scenes = [
        Scene(id=f"s{i}", href=f"/data/2024/05/01/{file_name(i)}", day=date(2024, 5, 1 + i % 28)) for i in range(n)
    ]
    tasks = plan_tasks(scenes, 1, group_by="date")
    planned = time.perf_counter()
    bins = BinSpec.per_digital_number("uint8", 0.004, -0.08)
    job = JobSpec(bins)
    one = Histogram.of_values(np.full(10, 0.4), bins)
    total = Partial()
    for task in tasks:  # what the engine does with each task's result, without reading a file
        total.merge(Partial.of_task(task.href, {("", task.group): one}, job.parts > 1))
    result = total.finish([s.href for s in scenes], len(tasks), "synthetic", 0.0, bins, grouped=True)
    merged = time.perf_counter()
    assert result.histogram.count == 10 * n
    return {
        "tasks": n,
        "plan_s": round(planned - started, 2),
        "merge_s": round(merged - planned, 2),
        "total_s": round(merged - started, 2),
        "driver_rss_mb": round(_peak_rss_mb(), 1),
    }


def _child(args: list[str]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"benchmark run {args} failed:\n{out.stderr[-3000:]}")
    row: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return row


def markdown(rows: list[dict[str, Any]], synthetic: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Archive-scale results (benchmarks/scale.py)",
        "",
        f"Machine: {meta['machine']}; run {meta['date']}; load average before the run {meta['load']}.",
        "",
        "| engine | files | processes | total s | ms / file | driver RSS MB | JVM RSS MB | bookkeeping share |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        share = f"{100 * r['bookkeeping_share']:.1f} %" if r.get("bookkeeping_share") is not None else ""
        lines.append(
            f"| {r['engine']} | {r['files']:,} | {r['workers']} | {r['total_s']} | {r['per_file_ms']} | "
            f"{r['driver_rss_mb']} | {r['jvm_rss_mb'] or ''} | {share} |"
        )
    lines += ["", "| synthetic tasks | plan s | merge s | total s | driver RSS MB |", "|---|---|---|---|---|"]
    lines += [
        f"| {s['tasks']:,} | {s['plan_s']} | {s['merge_s']} | {s['total_s']} | {s['driver_rss_mb']} |"
        for s in synthetic
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--files", default="10000,100000", help="file counts (comma-separated)")
    p.add_argument("--engines", default="local,spark")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--synthetic", default="1000000", help="synthetic task counts (comma-separated, or '')")
    p.add_argument("--out", default=str(HERE / "SCALE_RESULTS.md"))
    p.add_argument("--one", nargs=3, metavar=("ENGINE", "FILES", "WORKERS"), help=argparse.SUPPRESS)
    p.add_argument("--one-synthetic", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        print(json.dumps(run_files(args.one[0], int(args.one[1]), int(args.one[2]))))
        return 0
    if args.one_synthetic:
        print(json.dumps(run_synthetic(args.one_synthetic)))
        return 0
    import os
    import platform

    meta = {"machine": f"{platform.node()} {os.cpu_count()} cores"}
    meta["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    meta["load"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    counts = [int(x) for x in args.files.split(",") if x]
    rows = []
    for n in counts:
        ensure_files(n)
        for engine in args.engines.split(","):
            for workers in [1, args.workers] if engine == "local" else [args.workers]:
                rows.append(_child(["--one", engine, str(n), str(workers)]))
                print(json.dumps(rows[-1]), flush=True)
    synthetic = [_child(["--one-synthetic", s]) for s in args.synthetic.split(",") if s]
    for s in synthetic:
        print(json.dumps(s), flush=True)
    Path(args.out).write_text(markdown(rows, synthetic, meta))
    Path(args.out).with_suffix(".json").write_text(json.dumps({"meta": meta, "files": rows, "synthetic": synthetic}))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
