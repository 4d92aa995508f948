"""Zonal histograms side by side (issue 10): ``python benchmarks/zones.py`` (``--quick``: a smoke run).

100,000 demo parcels (``histcalc.parcels``, cached as a GeoPackage) over the full 10980 px tiles of
``benchmarks/run.py`` (``tiles.py``, same cache). Each case runs in a fresh process whose tree is sampled
for peak RSS (``procmon.py``), cases in turn with the order rotated each repetition; medians go to
ZONES_RESULTS.md (+ .json):

- one date: the plain one-AOI histogram (AOI = the parcels' bounding box, so both jobs read the same
  windows; and the whole tile with no AOI for scale) against the zonal job (``load_zones`` +
  ``compute_histogram(zones=...)``), local engine, 1 and N processes;
- a season (every tile of the cache, ``--group-by date``): zonal against plain over the same files;
- peers on the first tile: exactextract (raster-sequential, ``count`` and ``unique``/``frac``) and
  rasterstats ``zonal_stats(categorical=True)`` on every K-th parcel, extrapolated to all of them;
- checks: the zones' counts add up to the union histogram's count; rasterstats' categorical counts
  equal histcalc's for every parcel of its subset; the label cache's hits and misses in a 1-process run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from procmon import TreeMonitor  # noqa: E402
from tiles import ensure_tiles  # noqa: E402

TIMEOUT_S = 1200
RESULT = "ZONES-RESULT "


@dataclass(frozen=True)
class Case:
    """One measured job: a method over the first ``dates`` tiles on ``workers`` processes."""

    label: str
    method: str  # a key of CHILD_METHODS
    workers: int
    dates: int
    label_budget_mib: int = 0  # zonal only: a label cache of this size instead of the default (0)

    @property
    def key(self) -> str:
        budget = f"/cache{self.label_budget_mib}" if self.label_budget_mib else ""
        return f"{self.method}/{self.workers}p/{self.dates}d{budget}"


# -- the parent: plan, run each case in a fresh process, report ---------------------------------


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.report:
        return report_again(args.report, args.out)
    started = time.time()
    uptime_start = _uptime()
    print(f"load at start: {uptime_start}", flush=True)
    files = [str(p) for p in ensure_tiles(args.cache, args.dates, args.size, args.workers)]
    parcels = ensure_parcels(args.cache, args.parcels)
    args.parcels_bounds, args.parcels_crs = _bounds_and_crs(parcels)
    _warm_page_cache([*files, str(parcels)])
    logs = args.cache / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    timed, peers = plan_cases(args)
    runs: list[dict[str, Any]] = []
    for rep in range(args.reps):
        shift = rep % len(timed)
        for case in timed[shift:] + timed[:shift]:
            runs.append(measure(case, rep, files, parcels, args, logs))
    for case in peers:
        runs.append(measure(case, 0, files, parcels, args, logs))
    meta = {
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "uptime_start": uptime_start,
        "uptime_end": _uptime(),
        "cores": len(os.sched_getaffinity(0)),
        "size_px": args.size,
        "dates": args.dates,
        "parcels": args.parcels,
        "reps": args.reps,
        "sample_every": args.sample_every,
        "quick": args.quick,
        "total_s": round(time.time() - started, 1),
    }
    summary = summarize(runs, meta)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(summary, meta))
    raw = {"meta": meta, "summary": summary, "runs": [_without_samples(r) for r in runs]}
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1))
    print(markdown(summary, meta), flush=True)
    print(f"wrote {args.out} in {meta['total_s']:.0f} s", flush=True)
    return 0


def report_again(raw_path: Path, out: Path) -> int:
    """Rewrite the tables from a results JSON (the per-parcel samples are not kept: checks are carried over)."""
    raw = json.loads(raw_path.read_text())
    summary = summarize(raw["runs"], raw["meta"])
    summary["checks"] = raw["summary"]["checks"]
    out.write_text(markdown(summary, raw["meta"]))
    out.with_suffix(".json").write_text(json.dumps({**raw, "summary": summary}, indent=1))
    return 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="zonal histogram benchmark (issue 10), see benchmarks/README.md")
    parser.add_argument("--quick", action="store_true", help="small tiles, few parcels, one repetition (~1 min)")
    parser.add_argument("--dates", type=int, default=None, help="tiles in the season (default 20, --quick 4)")
    parser.add_argument("--size", type=int, default=None, help="tile px (default 10980, --quick 1024)")
    parser.add_argument("--parcels", type=int, default=None, help="parcels (default 100000, --quick 2000)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions of the timed cases (default 3, --quick 1)")
    parser.add_argument("--sample-every", type=int, default=None, help="rasterstats on every K-th parcel (100)")
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="N (default: cores)")
    parser.add_argument("--no-peers", action="store_true", help="skip exactextract and rasterstats")
    parser.add_argument(
        "--label-budget", type=int, default=0, help="also a 1-process season with this label cache (MiB)"
    )
    parser.add_argument("--cache", type=Path, default=HERE / "cache", help="tiles and parcels cache folder")
    parser.add_argument("--report", type=Path, default=None, help="only rewrite --out from this results JSON")
    parser.add_argument("--out", type=Path, default=HERE / "ZONES_RESULTS.md", help="results (+ .json beside)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.dates = args.dates or (4 if quick else 20)
    args.size = args.size or (1024 if quick else 10980)
    args.parcels = args.parcels or (2000 if quick else 100_000)
    args.reps = args.reps or (1 if quick else 3)
    args.sample_every = args.sample_every or (10 if quick else 100)
    if args.dates < 2 or args.size < 64 or args.parcels < 10 or args.reps < 1 or args.workers < 1:
        parser.error("--dates >= 2, --size >= 64, --parcels >= 10, --reps >= 1, --workers >= 1")
    return args


def plan_cases(args: argparse.Namespace) -> tuple[list[Case], list[Case]]:
    """The timed cases (repeated) and the peers (once: they take minutes)."""
    d, n = args.dates, args.workers
    timed = [
        Case("plain, whole tile (no AOI)", "plain_tile", 1, 1),
        Case("plain, AOI = parcels' bbox", "plain", 1, 1),
        Case("zonal", "zonal", 1, 1),
        Case("plain, AOI = parcels' bbox", "plain", n, 1),
        Case("zonal", "zonal", n, 1),
        Case("plain, AOI = parcels' bbox", "plain", 1, d),
        Case("zonal", "zonal", 1, d),
        Case("plain, AOI = parcels' bbox", "plain", n, d),
        Case("zonal", "zonal", n, d),
        Case("zonal, --all-touched (neighbours share their edge pixels: 5-6 label layers)", "zonal_touched", 1, d),
        Case("zonal, Parquet datasets (--parquet DIR/ --zone-stats DIR/)", "zonal_datasets", 1, d),
        Case("zonal on Spark local[N], Parquet datasets written by the executors", "zonal_spark_datasets", n, d),
        Case("plain CLI, whole process (--aoi parcels' bbox)", "plain_cli", 1, 1),
        Case("zonal CLI, whole process (--zones, --zone-stats)", "zonal_cli", 1, 1),
    ]
    if n == 1:
        timed = [c for i, c in enumerate(timed) if i not in (3, 4, 7, 8)]
    peers = (
        [Case(f"zonal, label cache {args.label_budget} MiB", "zonal", 1, d, args.label_budget)]
        if args.label_budget
        else []
    )
    if args.no_peers:
        return timed, peers
    if importlib.util.find_spec("exactextract"):
        peers += [
            Case("exactextract, raster-sequential, count", "exactextract", 1, 1),
            Case("exactextract, raster-sequential, unique + frac", "exactextract_unique", 1, 1),
        ]
    if importlib.util.find_spec("rasterstats"):
        peers.append(Case(f"rasterstats categorical, every {args.sample_every}th parcel", "rasterstats", 1, 1))
    return timed, peers


def ensure_parcels(cache: Path, n: int) -> Path:
    """``n`` demo parcels over tile 31UFS (seed 1) as a GeoPackage, generated once."""
    from histcalc.demo import EPSG, ORIGIN, TILE_METRES
    from histcalc.parcels import make_parcels

    path = cache / f"parcels-{n}-seed1.gpkg"
    if not path.exists():
        left, top = ORIGIN
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:  # same name (the layer's) and atomic
            partial = Path(tmp) / path.name
            make_parcels((left, top - TILE_METRES, left + TILE_METRES, top), f"EPSG:{EPSG}", n, 1, partial)
            os.replace(partial, path)
    return path


def _bounds_and_crs(path: Path) -> tuple[list[float], str]:
    import pyogrio

    info = pyogrio.read_info(path)
    return [float(v) for v in info["total_bounds"]], str(info["crs"])


def measure(
    case: Case, rep: int, files: list[str], parcels: Path, args: argparse.Namespace, logs: Path
) -> dict[str, Any]:
    """Run ``case`` in a fresh process under the memory monitor; its JSON result plus timing context."""
    command = [sys.executable, __file__, "--child", case.method, "--parcels-file", str(parcels)]
    command += ["--workers", str(case.workers), "--budget", str(case.label_budget_mib)]
    command += ["--every", str(args.sample_every), *files[: case.dates]]
    command += ["--bbox", ",".join(str(v) for v in args.parcels_bounds), "--bbox-crs", args.parcels_crs]
    load1 = os.getloadavg()[0]
    log_path = logs / f"zones-{case.key.replace('/', '-')}-rep{rep}.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
        with TreeMonitor(proc.pid) as monitor:
            try:
                stdout, _ = proc.communicate(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, _ = proc.communicate()
    row: dict[str, Any] = {"case": case.__dict__, "key": case.key, "rep": rep, "load1": load1}
    lines = [line for line in stdout.splitlines() if line.startswith(RESULT)]
    if proc.returncode != 0 or not lines:
        tail = log_path.read_text().strip().splitlines()[-1:] or [f"exit code {proc.returncode}"]
        row["error"] = tail[0][:300]
        print(f"  rep {rep} {case.label} [{case.key}]: FAILED ({row['error']})", flush=True)
        return row
    row.update(json.loads(lines[-1][len(RESULT) :]))
    row["driver_peak_mb"] = monitor.peak_mb("runner")
    row["worker_peak_mb"] = monitor.peak_mb("worker")
    row["worker_processes"] = monitor.count("worker")
    print(
        f"  rep {rep} {case.label} [{case.key}]: {row['seconds']:.2f} s, driver {row['driver_peak_mb']} MB, "
        f"workers {row['worker_peak_mb']} MB (load {load1:.1f})",
        flush=True,
    )
    return row


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def _warm_page_cache(paths: list[str]) -> None:
    for path in paths:
        with open(path, "rb") as handle:
            while handle.read(16 << 20):
                pass


# -- summary ------------------------------------------------------------------------------------


def summarize(runs: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """Medians per case, the checks, and the issue's targets as ratios of medians from this run."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_key.setdefault(run["key"], []).append(run)
    rows = [_row(group) for group in by_key.values()]
    med = {r["key"]: r["median_s"] for r in rows if r["median_s"] is not None}
    cpu = {r["key"]: r["cpu_s"] for r in rows if r["cpu_s"]}
    n, d = max((r["workers"] for r in rows), default=1), meta["dates"]
    return {
        "rows": rows,
        "checks": _checks(runs),
        "targets": _targets(med, cpu, runs, n, d),
        "label_cache": _label_cache(runs, d),
    }


def _row(group: list[dict[str, Any]]) -> dict[str, Any]:
    case = group[0]["case"]
    ok = [r for r in group if "error" not in r]
    seconds = [r["seconds"] for r in ok]

    def peak(name: str) -> float | None:
        values = [r[name] for r in ok if r.get(name) is not None]
        return max(values) if values else None

    return {
        "key": group[0]["key"],
        "label": case["label"],
        "method": case["method"],
        "workers": case["workers"],
        "dates": case["dates"],
        "reps": len(ok),
        "errors": [r["error"] for r in group if "error" in r],
        "median_s": statistics.median(seconds) if seconds else None,
        "min_s": min(seconds, default=None),
        "max_s": max(seconds, default=None),
        "load_zones_s": _median([r["load_s"] for r in ok if "load_s" in r]),
        "cpu_s": _median([r["cpu_s"] for r in ok if "cpu_s" in r]),
        "driver_peak_mb": peak("driver_peak_mb"),
        "worker_peak_mb": peak("worker_peak_mb"),
        "worker_processes": peak("worker_processes"),
        "load1": [round(r["load1"], 1) for r in group],
        "note": ok[0].get("note", "") if ok else "",
    }


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _checks(runs: list[dict[str, Any]]) -> list[str]:
    out = []
    for run in runs:
        if run["case"]["method"] == "zonal_touched" and "zone_sum" in run and run["rep"] == 0:
            shared = run["zone_sum"] - run["union_count"]
            out.append(
                f"{run['key']}: sum over the zones {run['zone_sum']:,} >= the union's count {run['union_count']:,}"
                f" (pixels on shared edges count for each neighbour: {shared / run['union_count']:.1%} more)"
                if shared >= 0
                else f"{run['key']}: sum over the zones {run['zone_sum']:,} < the union's {run['union_count']:,}"
            )
        elif run["case"]["method"].startswith("zonal") and "zone_sum" in run and run["rep"] == 0:
            same = run["zone_sum"] == run["union_count"]
            out.append(
                f"{run['key']}: sum over the zones of their counts {run['zone_sum']:,} "
                f"{'==' if same else '!='} the union histogram's count {run['union_count']:,}"
                f" ({run['zones_with_pixels']:,} of {run['zones']:,} zones with counted pixels)"
            )
    ours = next((r.get("samples") for r in runs if r["key"] == "zonal/1p/1d" and r.get("samples")), None)
    theirs = next((r.get("samples") for r in runs if r["case"]["method"] == "rasterstats" and "samples" in r), None)
    if ours is not None and theirs is not None:
        differ = [z for z in theirs if ours.get(z, {}) != theirs[z]]
        pixels = sum(sum(c.values()) for c in theirs.values())
        verdict = "equal count for count" if not differ else f"DIFFER for {len(differ)}: {differ[:5]}"
        out.append(f"rasterstats categorical vs histcalc, {len(theirs)} parcels ({pixels:,} pixels): {verdict}")
    ee = next((r for r in runs if r["case"]["method"] == "exactextract" and "coverage_sum" in r), None)
    union = next((r["union_count"] for r in runs if r["key"] == "zonal/1p/1d" and "union_count" in r), None)
    pixels = next((r["zone_pixels"] for r in runs if r["key"] == "zonal/1p/1d" and "zone_pixels" in r), None)
    if ee is not None and union and pixels:
        out.append(
            f"exactextract count (coverage-weighted) over all parcels {ee['coverage_sum']:,.0f} vs histcalc's "
            f"centre-rule count of valid pixels {union:,} ({100 * (ee['coverage_sum'] / union - 1):+.2f} %) and of "
            f"all pixels, nodata included, {pixels:,} ({100 * (ee['coverage_sum'] / pixels - 1):+.2f} %)"
        )
    return out


def _targets(
    med: dict[str, float], cpu: dict[str, float], runs: list[dict[str, Any]], n: int, d: int
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def ratio(name: str, num: str, den: str, limit: float, higher_is_better: bool = False) -> None:
        if num not in med or den not in med:
            out.append({"target": name, "value": None, "met": None, "figures": f"{num} or {den} missing"})
            return
        value = med[num] / med[den]
        met = value >= limit if higher_is_better else value <= limit
        figures = f"{med[num]:.2f} s / {med[den]:.2f} s"
        if num in cpu and den in cpu:  # CPU seconds: less sensitive to the other agents' load
            figures += f"; CPU {cpu[num]:.1f} s / {cpu[den]:.1f} s = {cpu[num] / cpu[den]:.2f}"
        out.append({"target": name, "value": round(value, 2), "met": met, "figures": figures})

    for p in sorted({1, n}):
        ratio(f"one date, {p} process(es): zonal <= 3 x plain", f"zonal/{p}p/1d", f"plain/{p}p/1d", 3)
        ratio(
            f"season of {d} dates, {p} process(es): zonal <= 1.5 x plain", f"zonal/{p}p/{d}d", f"plain/{p}p/{d}d", 1.5
        )
    ratio("one date, whole CLI processes: zonal <= 3 x plain", "zonal_cli/1p/1d", "plain_cli/1p/1d", 3)
    ratio(
        f"season of {d} dates, 1 process, Parquet datasets: zonal <= 1.5 x plain",
        f"zonal_datasets/1p/{d}d",
        f"plain/1p/{d}d",
        1.5,
    )
    for method in ("exactextract", "exactextract_unique"):
        ratio(f">= 10 x faster than {method} (one tile, 1 process each)", f"{method}/1p/1d", "zonal/1p/1d", 10, True)
    rs = next((r for r in runs if r["case"]["method"] == "rasterstats" and "extrapolated_s" in r), None)
    if rs is not None and "zonal/1p/1d" in med:
        med["rasterstats_all"] = rs["extrapolated_s"]
        ratio(
            ">= 100 x faster than rasterstats (extrapolated, 1 process each)",
            "rasterstats_all",
            "zonal/1p/1d",
            100,
            True,
        )
    for method, what in (
        ("zonal", "tables returned in memory"),
        ("zonal_datasets", "tables written as datasets"),
        ("zonal_spark_datasets", "Spark, datasets written by the executors"),
    ):
        peaks: list[tuple[str, float]] = [
            (r["key"], float(r[k]))
            for r in runs
            if r["case"]["method"] == method and not r["case"]["label_budget_mib"]
            for k in ("driver_peak_mb", "worker_peak_mb")
            if r.get(k) is not None
        ]
        if peaks:
            key, worst = max(peaks, key=lambda kv: kv[1])
            name = f"peak RSS of driver and workers <= 1 GB (zonal jobs, {what})"
            figures = f"largest {worst:.0f} MB in {key}"
            out.append({"target": name, "value": worst, "met": worst <= 1024, "figures": figures})
    one, season = (_driver_peak(runs, key) for key in ("zonal/1p/1d", f"zonal/1p/{d}d"))
    if one and season and d < 40:  # the driver keeps one sparse table per date: growth is linear in dates
        per_date = (season - one) / (d - 1)
        at40 = one + 39 * per_date
        name = "the same, extrapolated to 40 dates (1 process: driver)"
        figures = f"{one:.0f} MB at 1 date, {season:.0f} MB at {d}: +{per_date:.0f} MB per date, linear"
        out.append({"target": name, "value": round(at40), "met": at40 <= 1024, "figures": figures})
    return out


def _driver_peak(runs: list[dict[str, Any]], key: str) -> float:
    return max((r["driver_peak_mb"] for r in runs if r["key"] == key and r.get("driver_peak_mb")), default=0.0)


def _label_cache(runs: list[dict[str, Any]], d: int) -> list[dict[str, Any]]:
    out = []
    for run in runs:
        if run["case"]["method"] == "zonal" and run["case"]["workers"] == 1 and run["rep"] == 0 and "cache_hits" in run:
            total = run["cache_hits"] + run["cache_misses"]
            out.append(
                {
                    "key": run["key"],
                    "hits": run["cache_hits"],
                    "misses": run["cache_misses"],
                    "hit_rate": round(run["cache_hits"] / total, 3) if total else None,
                    "cached_mib": run.get("cache_mib"),
                    "budget_mib": run.get("cache_budget_mib"),
                    "windows_per_file": run.get("windows_per_file"),
                }
            )
    return out


def markdown(summary: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        "# Zonal histograms: benchmark results (issue 10)",
        "",
        f"`python benchmarks/zones.py{' --quick' if meta['quick'] else ''}` on {meta['date_utc']}: "
        f"{meta['parcels']:,} parcels, tiles of {meta['size_px']} px, a season of {meta['dates']} dates, "
        f"{meta['reps']} repetition(s) of the timed cases (peers once), {meta['cores']} cores, "
        f"{meta['total_s']:.0f} s in all.",
        "",
        f"Machine load (shared with other agents): at start `{meta['uptime_start']}`; at end "
        f"`{meta['uptime_end']}`. Each row lists the 1-minute load average when each repetition started.",
        "",
        "| case | processes | dates | median s (min-max) | load_zones s | CPU s | driver peak MB | worker peak MB"
        " | load1 | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary["rows"]:
        spread = "failed" if r["median_s"] is None else f"{r['median_s']:.2f} ({r['min_s']:.2f}-{r['max_s']:.2f})"
        workers = f"{r['worker_peak_mb']:.0f} ({r['worker_processes']})" if r["worker_peak_mb"] else "-"
        cells = [
            r["label"], str(r["workers"]), str(r["dates"]), spread, _fmt(r["load_zones_s"]), _fmt(r["cpu_s"], 1),
            _fmt(r["driver_peak_mb"], 0), workers, ", ".join(str(v) for v in r["load1"]),
            (r["note"] + (" ERRORS: " + "; ".join(r["errors"]) if r["errors"] else "")).replace("|", "/"),
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Targets of issue 10", "", "| target | value | met | figures |", "|---|---|---|---|"]
    for t in summary["targets"]:
        met = "n/a" if t["met"] is None else ("met" if t["met"] else "MISSED")
        lines.append(f"| {t['target']} | {_fmt(t['value'])} | {met} | {t['figures']} |")
    lines += ["", "## Checks", ""] + [f"- {c}" for c in summary["checks"]]
    lines += ["", "## Label cache (1-process runs, `histcalc.label_cache.process_cache()`)", ""]
    for c in summary["label_cache"]:
        lines.append(
            f"- {c['key']}: {c['hits']} hits, {c['misses']} misses (hit rate {_fmt(c['hit_rate'], 3)}); "
            f"{c['windows_per_file']} windows per file, {_fmt(c['cached_mib'], 0)} MiB of labels held at the end "
            f"of a budget of {c['budget_mib']} MiB"
        )
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _without_samples(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if k != "samples"}


# -- the child: one measurement in this fresh process -------------------------------------------


def child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("method")
    parser.add_argument("files", nargs="+")
    parser.add_argument("--parcels-file", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--budget", type=int, default=0)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--bbox", type=lambda t: tuple(float(v) for v in t.split(",")), default=None)
    parser.add_argument("--bbox-crs", default=None)
    args = parser.parse_args(argv)
    import rasterio  # noqa: F401  (imported before any clock, as in benchmarks/methods.py)

    cpu0 = _tree_cpu()
    out = CHILD_METHODS[args.method](args)
    out["cpu_s"] = round(_tree_cpu() - cpu0, 2)
    print(RESULT + json.dumps(out), flush=True)
    return 0


def _scenes(files: list[str]) -> list[Any]:
    from datetime import date

    from histcalc import Scene
    from histcalc.demo import NODATA, OFFSET, SCALE

    def day(path: str) -> date:
        stamp = Path(path).name.split("_")[1]
        return date(int(stamp[:4]), int(stamp[4:6]), int(stamp[6:8]))

    return [
        Scene(id=Path(f).stem, href=f, day=day(f), scale=SCALE, offset=OFFSET, nodata=NODATA, dtype="uint8")
        for f in files
    ]


def _group_by(files: list[str]) -> str | None:
    return "date" if len(files) > 1 else None


def run_plain(args: argparse.Namespace) -> dict[str, Any]:
    """The one-AOI histogram over the parcels' bounding box (in the tiles' CRS), no zones."""
    from histcalc import AOI, compute_histogram

    w, s, e, n = args.bbox  # read by the parent: pyogrio (a second GDAL) would add ~150 MB to this process
    box = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
    aoi = AOI(json.dumps(box), args.bbox_crs)
    started = time.perf_counter()
    result = compute_histogram(_scenes(args.files), aoi=aoi, workers=args.workers, group_by=_group_by(args.files))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "union_count": result.histogram.count, "failed": len(result.files_failed)}


def run_plain_tile(args: argparse.Namespace) -> dict[str, Any]:
    from histcalc import compute_histogram

    started = time.perf_counter()
    result = compute_histogram(_scenes(args.files), workers=args.workers, group_by=_group_by(args.files))
    return {"seconds": time.perf_counter() - started, "union_count": result.histogram.count}


def run_zonal(args: argparse.Namespace, all_touched: bool = False) -> dict[str, Any]:
    """load_zones + compute_histogram(zones=...); then (untimed) the checks and the label cache's account."""
    from histcalc import compute_histogram, label_cache
    from histcalc.plan import Overrides
    from histcalc.zone_files import load_zones

    if args.budget:  # a benchmark setting, to see what a larger cache would give; forked workers inherit it
        label_cache.process_cache().max_bytes = args.budget * 1024 * 1024
    started = time.perf_counter()
    zones = load_zones(args.parcels_file, id_field="parcel_id")
    load_s = time.perf_counter() - started
    result = compute_histogram(
        _scenes(args.files),
        workers=args.workers,
        group_by=_group_by(args.files),
        zones=zones,
        overrides=Overrides(all_touched=all_touched),
    )
    seconds = time.perf_counter() - started
    out: dict[str, Any] = {"seconds": seconds, "load_s": load_s, "failed": len(result.files_failed)}
    out.update(_zone_totals(result))
    cache = label_cache.process_cache()
    if cache.hits + cache.misses:  # the tasks ran in this process
        out.update(cache_hits=cache.hits, cache_misses=cache.misses, cache_budget_mib=cache.max_bytes >> 20)
        out["cache_mib"] = round(cache._bytes / 2**20, 1)
        out["windows_per_file"] = (cache.hits + cache.misses) // len(args.files)
    if len(args.files) == 1:
        out["samples"] = _zone_dn_counts(result, _sample_ids(result.zone_ids, args.every))
    where = "this process" if cache.hits + cache.misses else "pool workers"
    out["note"] = f"tasks ran in {where}; {out['table_cells']:,} table cells in {out['groups']} group(s)"
    return out


def run_zonal_datasets(args: argparse.Namespace, spark: Any = None) -> dict[str, Any]:
    """As a user with 100,000 parcels and a season would: the tables go to Parquet datasets, not to memory."""
    import tempfile

    import pyarrow.parquet as pq

    from histcalc import compute_histogram
    from histcalc.zone_dataset import ZoneDatasets
    from histcalc.zone_files import load_zones

    with tempfile.TemporaryDirectory(prefix="zones-bench-") as out:
        targets = ZoneDatasets(f"{out}/tidy/", f"{out}/stats/", (2.0, 50.0, 98.0))
        started = time.perf_counter()
        zones = load_zones(args.parcels_file, id_field="parcel_id")
        load_s = time.perf_counter() - started
        scenes, group_by = _scenes(args.files), _group_by(args.files)
        engine = {"engine": "spark", "spark": spark} if spark is not None else {"workers": args.workers}
        result = compute_histogram(scenes, group_by=group_by, zones=zones, zone_datasets=targets, **engine)
        seconds = time.perf_counter() - started
        whole = pq.read_table(f"{out}/stats/group=all").to_pydict()  # untimed: the check
    return {
        "seconds": seconds,
        "load_s": load_s,
        "failed": len(result.files_failed),
        "zone_sum": int(sum(whole["count"])),
        "union_count": result.histogram.count,
        "zones": len(whole["zone"]),
        "zones_with_pixels": int(result.zones_with_pixels or 0),
        "note": "tables written as Parquet datasets (group=<date> and group=all), none kept in memory",
    }


def run_zonal_spark_datasets(args: argparse.Namespace) -> dict[str, Any]:
    """The same on Spark local[N] (session start apart): executors write the datasets, the driver gets counts."""
    from histcalc.engines.spark import session

    started = time.perf_counter()
    spark = session(f"local[{args.workers}]")
    session_s = time.perf_counter() - started
    try:
        out = run_zonal_datasets(args, spark)
    finally:
        spark.stop()
    out["note"] = f"Spark local[{args.workers}], session start {session_s:.1f} s apart; " + out["note"]
    return out


def run_plain_cli(args: argparse.Namespace) -> dict[str, Any]:
    """``histcalc --aoi <the parcels' bbox>`` as a user runs it: a whole process, JSON written."""
    return _cli(args, zonal=False)


def run_zonal_cli(args: argparse.Namespace) -> dict[str, Any]:
    """``histcalc --zones parcels.gpkg --zone-stats stats.parquet`` as a user runs it: a whole process."""
    return _cli(args, zonal=True)


def _cli(args: argparse.Namespace, zonal: bool) -> dict[str, Any]:
    """The CLI on a directory of links to the case's files; seconds from process start to exit."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="zones-cli-") as tmp:
        folder = Path(tmp) / "tiles"
        folder.mkdir()
        for f in args.files:
            (folder / Path(f).name).symlink_to(Path(f).resolve())
        command = [sys.executable, "-m", "histcalc", "--catalog", str(folder), "--pattern", "*.tif", "-q"]
        command += ["--engine", "local", "--workers", str(args.workers), "--output", f"{tmp}/out.json"]
        if len(args.files) > 1:
            command += ["--group-by", "date"]
        if zonal:
            command += ["--zones", str(args.parcels_file), "--zone-id", "parcel_id"]
            stats = f"{tmp}/stats/" if len(args.files) > 1 else f"{tmp}/stats.parquet"
            command += ["--zone-stats", stats]
        else:
            w, s, e, n = args.bbox
            box = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}
            aoi = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": args.bbox_crs}},
                   "features": [{"type": "Feature", "properties": {}, "geometry": box}]}  # fmt: skip
            Path(f"{tmp}/aoi.geojson").write_text(json.dumps(aoi))
            command += ["--aoi", f"{tmp}/aoi.geojson"]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"histcalc exited {done.returncode}: {done.stderr.strip()[-500:]}")
        report = json.loads(Path(f"{tmp}/out.json").read_text())
    return {"seconds": seconds, "union_count": report["stats"]["count"], "note": "whole process: " + " ".join(
        Path(c).name if "/" in c else c for c in command[2:])}  # fmt: skip


def _zone_totals(result: Any) -> dict[str, Any]:
    """Sum over zones (and dates) of their in-bin counts, the union's count, zones that counted a pixel."""
    import numpy as np

    nbins = result.histogram.bins.count
    zone_sum, with_pixels, cells, pixels = 0, np.zeros(len(result.zone_ids), bool), 0, 0
    for table in result.zone_tables.values():
        inside = (table.cell_slot >= 1) & (table.cell_slot <= nbins)
        zone_sum += int(table.cell_count[inside].sum())
        pixels += int(table.cell_count.sum() + table.nodata.sum() + table.masked.sum())
        with_pixels[table.cell_zone[inside & (table.cell_count > 0)]] = True
        cells += len(table.cell_count)
    return {
        "zone_sum": zone_sum,
        "zone_pixels": pixels,
        "union_count": result.histogram.count,
        "zones": len(result.zone_ids),
        "zones_with_pixels": int(with_pixels.sum()),
        "table_cells": cells,
        "groups": len(result.zone_tables),
    }


def _sample_ids(ids: list[str], every: int) -> list[str]:
    return ids[::every]


def _zone_dn_counts(result: Any, ids: list[str]) -> dict[str, dict[str, int]]:
    """{zone id: {DN: count}} from the one-group result (per-DN bins: slot s is DN s - 1 for uint8 data)."""
    import numpy as np

    table = result.zone_tables[""]
    position = {zone_id: i for i, zone_id in enumerate(result.zone_ids)}
    wanted = np.array([position[z] for z in ids], dtype=np.int64)
    nbins = result.histogram.bins.count
    keep = np.isin(table.cell_zone, wanted) & (table.cell_slot >= 1) & (table.cell_slot <= nbins)
    keep &= table.cell_count > 0
    out: dict[str, dict[str, int]] = {z: {} for z in ids}
    for zone, slot, count in zip(
        table.cell_zone[keep].tolist(), table.cell_slot[keep].tolist(), table.cell_count[keep].tolist(), strict=True
    ):
        out[result.zone_ids[zone]][str(slot - 1)] = count
    return out


def run_rasterstats(args: argparse.Namespace) -> dict[str, Any]:
    """zonal_stats(categorical=True) on every K-th parcel of the first tile, in the raster's CRS; extrapolated."""
    import pyogrio
    import shapely
    from rasterstats import zonal_stats

    _, _, wkb, fields = pyogrio.raw.read(args.parcels_file, columns=["parcel_id"])
    ids = [str(v) for v in fields[0]][:: args.every]
    geoms = shapely.from_wkb(wkb)[:: args.every]
    started = time.perf_counter()
    stats = zonal_stats(list(geoms), args.files[0], categorical=True)
    seconds = time.perf_counter() - started
    samples = {z: {str(int(k)): int(v) for k, v in s.items()} for z, s in zip(ids, stats, strict=True)}
    total = len(wkb)
    return {
        "seconds": seconds,
        "subset": len(ids),
        "extrapolated_s": seconds * total / len(ids),
        "samples": samples,
        "note": f"{len(ids):,} parcels (every {args.every}th) in {seconds:.1f} s, "
        f"x {total / len(ids):.0f} = {seconds * total / len(ids):.0f} s for all {total:,} (extrapolated)",
    }


def run_exactextract(args: argparse.Namespace, ops: tuple[str, ...] = ("count",)) -> dict[str, Any]:
    """exact_extract on the first tile, raster-sequential (coverage-weighted: not the centre rule)."""
    import geopandas
    from exactextract import exact_extract

    started = time.perf_counter()
    # exactextract 0.3 takes no vector file name without GDAL's Python bindings (osgeo): a GeoDataFrame
    parcels = geopandas.read_file(args.parcels_file)
    load_s = time.perf_counter() - started
    frame = exact_extract(args.files[0], parcels, list(ops), strategy="raster-sequential", output="pandas")
    seconds = time.perf_counter() - started
    note = f"ops {', '.join(ops)}; includes reading the parcels with geopandas"
    out: dict[str, Any] = {"seconds": seconds, "load_s": load_s, "features": len(frame), "note": note}
    if "count" in ops:
        out["coverage_sum"] = float(frame["count"].sum())
    return out


def run_exactextract_unique(args: argparse.Namespace) -> dict[str, Any]:
    return run_exactextract(args, ("unique", "frac"))


def _tree_cpu() -> float:
    from methods import _tree_cpu as tree_cpu  # user + system of this process tree, reaped children included

    return sum(tree_cpu().values())


CHILD_METHODS = {
    "plain": run_plain,
    "plain_tile": run_plain_tile,
    "zonal": run_zonal,
    "zonal_touched": lambda args: run_zonal(args, all_touched=True),
    "zonal_datasets": run_zonal_datasets,
    "zonal_spark_datasets": run_zonal_spark_datasets,
    "plain_cli": run_plain_cli,
    "zonal_cli": run_zonal_cli,
    "rasterstats": run_rasterstats,
    "exactextract": run_exactextract,
    "exactextract_unique": run_exactextract_unique,
}


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.exit(child(sys.argv[2:]))
    sys.exit(main())
