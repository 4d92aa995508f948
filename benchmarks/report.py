"""Medians, ratios, target checks and the RESULTS.md text of a benchmark run."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from typing import Any

VALID_DNS = 251  # DN 0..250 are NDVI values; 255 is nodata


def bbox_pixels(path: str, bbox_text: str) -> int:
    from methods import bbox_window

    window = bbox_window(path, [float(v) for v in bbox_text.split(",")])
    return int(window.width * window.height)


def summarize(measurements: Sequence[Any], pixels: dict[str, int]) -> list[dict[str, Any]]:
    """One row per case (method, scope, workers): medians over repetitions, ratios, agreement.

    ``pixels``: pixels covered per scope ("full", "bbox", "tile").
    """
    groups: dict[str, list[Any]] = {}
    for m in measurements:
        groups.setdefault(m.case.key, []).append(m)
    rows = [_row(ms, pixels[ms[0].case.scope]) for ms in groups.values()]
    scopes = {"full": 0, "tile": 1, "bbox": 2}
    rows.sort(key=lambda r: (scopes.get(r["scope"], 3), _ORDER.get(r["method"], 9), r["workers"]))
    by_key = {(r["method"], r["scope"], r["workers"]): r for r in rows}
    ncores = len(os.sched_getaffinity(0))
    for r in rows:
        decode = by_key.get(("decode", r["scope"], r["workers"]))
        classic = [c for (m, s, _w), c in by_key.items() if m == "classic" and s == r["scope"]]
        r["x_decode"] = _ratio(r["median_s"], decode and decode["median_s"])
        r["x_decode_cpu"] = _ratio(r["cpu_s"], decode and decode["cpu_s"])
        if classic and not r["method"].startswith("decode"):
            r["x_faster_than_classic"] = _ratio(classic[0]["median_s"], r["median_s"])
            r["classic_workers"] = classic[0]["workers"]
        r["cores"] = min(r["workers"], ncores)
        r["mpx_s_core"] = r["mpx_s"] / r["cores"] if r["mpx_s"] else None
    _check_counts(rows, by_key)
    return rows


_ORDER = {
    "decode": 0,
    "classic": 1,
    "histcalc_local": 2,
    "histcalc_local_numba": 2.5,
    "histcalc_spark": 3,
    "dask": 4,
    "gdalinfo": 5,
}


def _timing(ms: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """The repetitions that ran, and what every row says of a case's repetitions: its name and times."""
    case = ms[0].case
    ok = [m for m in ms if m.seconds is not None]
    times = [m.seconds for m in ok]
    return ok, {
        "label": case.label,
        "method": case.method,
        "workers": case.workers,
        "reps": len(ok),
        "failed": len(ms) - len(ok),
        "errors": sorted({m.error for m in ms if m.error}),
        "median_s": statistics.median(times) if times else None,
        "min_s": min(times) if times else None,
        "max_s": max(times) if times else None,
    }


def _row(ms: list[Any], pixels: int) -> dict[str, Any]:
    ok, timing = _timing(ms)
    median = timing["median_s"]
    sessions = [m.session_s for m in ok if m.session_s is not None]
    cpus = [m.cpu_s for m in ok if m.cpu_s]
    return {
        **timing,
        "scope": ms[0].case.scope,
        "pixels": pixels,
        "mpx_s": pixels / median / 1e6 if median else None,
        "worker_peak_mb": max((m.worker_peak_mb for m in ok if m.worker_peak_mb), default=None),
        "runner_peak_mb": max((m.runner_peak_mb for m in ok if m.runner_peak_mb), default=None),
        "jvm_peak_mb": max((m.jvm_peak_mb for m in ok if m.jvm_peak_mb), default=None),
        "session_s": statistics.median(sessions) if sessions else None,
        "warmup_s": statistics.median(m.warmup_s or 0.0 for m in ok) if sessions else None,
        "with_session_s": statistics.median(m.seconds + m.session_s + (m.warmup_s or 0.0) for m in ok)
        if sessions
        else None,
        "cpu_s": statistics.median(cpus) if cpus else None,
        "jvm_cpu_s": statistics.median(jv) if (jv := [m.jvm_cpu_s for m in ok if m.jvm_cpu_s is not None]) else None,
        "mpx_cpu_s": pixels / statistics.median(cpus) / 1e6 if cpus else None,
        "notes": sorted({m.note for m in ok if m.note}),
        "counts": next((m.dn_counts for m in ok if m.dn_counts), None),
        "max_load1": max(m.load1 for m in ms),
    }


def _check_counts(rows: list[dict[str, Any]], by_key: dict[tuple[str, str, int], dict[str, Any]]) -> None:
    """Each method's counts of DN 0..250 against histcalc's local engine (same scope)."""
    refs = {
        scope: next((r["counts"] for (m, s, _), r in by_key.items() if m == "histcalc_local" and s == scope), None)
        for scope in ("full", "bbox", "tile")
    }
    for r in rows:
        ref = refs[r["scope"]]
        if r["method"].startswith("decode"):
            r["agrees"] = ""
        elif r["counts"] is None or ref is None:
            r["agrees"] = "n/a"
        elif r["method"] == "classic" and r["scope"] == "bbox":
            r["agrees"] = "n/a (rectangle)"
        else:
            r["agrees"] = "yes" if r["counts"][:VALID_DNS] == ref[:VALID_DNS] else "NO"
    for r in rows:
        r.pop("counts")


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def targets(rows: list[dict[str, Any]], workers: int, size: int) -> list[tuple[str, str, str]]:
    """(target, PASS/FAIL/n/a, the measurement that says so)."""
    get = {(r["method"], r["scope"], r["workers"]): r for r in rows if r["median_s"]}
    out = []
    local, decode = get.get(("histcalc_local", "full", workers)), get.get(("decode", "full", workers))
    if local and decode:
        x = local["x_decode"]
        out.append(
            (
                "full tiles: histcalc local <= 1.15 x decode limit",
                _pass(x is not None and x <= 1.15),
                f"{_f(local['median_s'])} s vs {_f(decode['median_s'])} s = {_f(x)} x ({workers} processes)",
            )
        )
    if local and local.get("x_faster_than_classic"):
        x = local["x_faster_than_classic"]
        out.append(
            (
                "full tiles: histcalc local >= 5 x faster than classic",
                _pass(x >= 5),
                f"classic {_f(get[('classic', 'full', workers)]['median_s'])} s / histcalc "
                f"{_f(local['median_s'])} s = {_f(x)} x (both {workers} processes)",
            )
        )
    small = get.get(("histcalc_local", "bbox", workers))
    if small and small.get("x_faster_than_classic"):
        x = small["x_faster_than_classic"]
        out.append(
            (
                "seed bbox: histcalc >= 20 x faster than classic",
                _pass(x >= 20),
                f"classic {_f(get[('classic', 'bbox', workers)]['median_s'])} s / histcalc "
                f"{_f(small['median_s'])} s = {_f(x)} x",
            )
        )
    peaks = [
        (r["label"] + f" ({r['workers']})", r["worker_peak_mb"])
        for r in rows
        if r["method"].startswith("histcalc") and r["scope"] == "full" and r["worker_peak_mb"]
    ]
    if peaks:
        worst = max(p for _, p in peaks)
        text = ", ".join(f"{n}: {p:.0f} MB" for n, p in peaks)
        status = _pass(worst <= 250) if size >= 10980 else "n/a (tiles < 10980 px)"
        out.append(("peak RSS per worker process <= 250 MB (10980 px tiles)", status, text))
    spark_w = get.get(("histcalc_spark", "full", workers))
    single = [r for r in (get.get(("histcalc_spark", "full", 1)), get.get(("histcalc_local", "full", 1))) if r]
    if spark_w and single:
        ratios = [(r["label"] + " (1)", r["median_s"] / spark_w["median_s"]) for r in single]
        best = max(x for _, x in ratios)
        out.append(
            (
                f"Spark local[{workers}] >= 1.6 x single-core throughput",
                _pass(best >= 1.6),
                "; ".join(f"vs {n}: {_f(x)} x" for n, x in ratios) + " (job time, no session start)",
            )
        )
    one, many = get.get(("histcalc_local", "tile", 1)), get.get(("histcalc_local", "tile", workers))
    if one and many and workers > 1:
        x = many["median_s"] / one["median_s"]
        out.append(
            (
                f"one tile on {workers} cores <= 0.6 x its one-core time (histcalc local)",
                _pass(x <= 0.6),
                f"{_f(many['median_s'])} s vs {_f(one['median_s'])} s = {_f(x)} x",
            )
        )
    for peer in ("dask", "gdalinfo"):
        p = get.get((peer, "full", workers))
        if local and p:
            x = p["median_s"] / local["median_s"]
            out.append(
                (
                    f"histcalc local faster than {p['label']}",
                    _pass(x > 1),
                    f"{_f(p['median_s'])} s vs histcalc {_f(local['median_s'])} s = histcalc {_f(x)} x faster",
                )
            )
    return out


def _pass(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _f(x: float | None, digits: int = 2) -> str:
    if x is None:
        return "—"
    if digits == 0 and abs(x) < 10:  # small throughputs (tiny smoke-test tiles) keep two figures
        return f"{x:.2g}"
    return f"{x:.{digits}f}"


def markdown(rows: list[dict[str, Any]], kernels: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# histcalc benchmark results",
        "",
        f"Generated by `python benchmarks/run.py {meta['args']}` on {meta['date']} ({meta['duration_s']:.0f} s).",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in meta["machine"].items()),
        "",
        f"Data: {meta['tiles']} tile(s) of {meta['size']} x {meta['size']} px uint8 DEFLATE COG (512 px blocks, "
        "nodata 255), Terrascope NDVI V2 layout, page cache warm. Seed bbox "
        f"{meta['bbox']} = {meta['bbox_fraction']:.1%} of a tile. Medians of {meta['reps']} repetition(s), methods "
        "alternating, each in a fresh process.",
        "",
        "## Results",
        "",
        "| scope | method | procs | median s (min-max) | Mpx/s | Mpx/s/core | Mpx/CPU-s | x decode "
        "| x decode (CPU) | x faster than classic | worker peak RSS MB | counts agree |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['scope']} | {r['label']} | {r['workers']} | {_f(r['median_s'])} ({_f(r['min_s'])}-{_f(r['max_s'])})"
            f" | {_f(r['mpx_s'], 0)} | {_f(r['mpx_s_core'], 0)} | {_f(r.get('mpx_cpu_s'), 0)} | {_f(r['x_decode'])} "
            f"| {_f(r['x_decode_cpu'])} "
            f"| {_f(r.get('x_faster_than_classic'))} | {_f(r['worker_peak_mb'], 0)} | {r['agrees']} |"
        )
    lines += ["", "## Targets (ratios from this run)", "", "| target | status | measurement |", "|---|---|---|"]
    lines += [f"| {t} | {s} | {m} |" for t, s, m in targets(rows, meta["workers"], meta["size"])]
    spark = [r for r in rows if r["method"] == "histcalc_spark" and r["session_s"] is not None]
    if spark:
        lines += [
            "",
            "## Spark: job time with and without session start",
            "",
            "| scope | local[N] | session start s | Python worker start s | job s "
            "| session + worker start + job s | job CPU s (of which JVM) | JVM peak RSS MB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r['scope']} | {r['workers']} | {_f(r['session_s'])} | {_f(r['warmup_s'])} | {_f(r['median_s'])} "
            f"| {_f(r['with_session_s'])} | {_f(r['cpu_s'])} ({_f(r['jvm_cpu_s'])}) | {_f(r['jvm_peak_mb'], 0)} |"
            for r in spark
        ]
    if kernels:
        lines += [
            "",
            "## Counting kernels on decoded pixels (one process, best of 3)",
            "",
            "| kernel | ns per pixel |",
            "|---|---:|",
        ]
        lines += [f"| {k['kernel']} | {_f(k['ns_per_px'])} |" for k in kernels]
    lines += _startup_lines(meta.get("startup", [])) + _pipeline_lines(meta.get("pipeline", []))
    lines += _whole_lines(meta.get("whole", []))
    where: dict[tuple[str, str], list[str]] = {}  # one line per (row label, note), however many rows share it
    for r in rows:
        for n in r["notes"]:
            where.setdefault((r["label"], n), []).append(f"{r['scope']}, {r['workers']}")
    notes = [f"- {label} ({'; '.join(cases)}): {n}" for (label, n), cases in where.items()]
    notes += [
        f"- {r['label']} ({r['scope']}, {r['workers']}): {r['failed']} failed run(s): {'; '.join(r['errors'])}"
        for r in rows
        if r["failed"]
    ]
    notes += [f"- skipped: {s}" for s in meta.get("skipped", [])]
    notes.append(
        f"- highest 1-min load average at the start of a measurement: {max(r['max_load1'] for r in rows):.2f}"
        f" on {meta['machine']['nproc']} cores (other work on the machine shows up here)"
    )
    lines += ["", "## Notes", "", *notes, "", *meta.get("legend", []), ""]
    return "\n".join(lines)


def _startup_lines(runs: list[dict[str, Any]]) -> list[str]:
    if not runs:
        return []
    lines = [
        "",
        "## Kernel start-up: first call in a fresh process (C: loading the library; numba: import + compile or "
        "cache load)",
        "",
        "| kernels | wall s | CPU s |",
        "|---|---:|---:|",
    ]
    return lines + [f"| {r['cache']} | {_f(r['seconds'], 3)} | {_f(r.get('cpu_s'), 3)} |" for r in runs]


def _whole_lines(ways: list[dict[str, Any]]) -> list[str]:
    """The seed bbox as whole processes, and the target: histcalc <= 1.2 x the floor."""
    if len(ways) < 3 or not all(w["seconds"] for w in ways):
        return []
    floor, whole = ways[1]["seconds"], ways[2]["seconds"]
    lines = [
        "",
        "## The seed bbox as whole processes (one process each, median wall time from start to exit)",
        "",
        "| process | s | x floor |",
        "|---|---:|---:|",
    ]
    lines += [f"| {w['way']} | {_f(w['seconds'])} | {_f(w['seconds'] / floor)} |" for w in ways]
    ratio = whole / floor
    target = f"Target (issue 12): the seed's bbox job <= 1.2 x the floor: {_pass(ratio <= 1.2)}, {ratio:.2f} x."
    return [*lines, "", target]


def _pipeline_lines(ways: list[dict[str, Any]]) -> list[str]:
    if not ways:
        return []
    serial = ways[0]["seconds"]
    lines = [
        "",
        "## One tile in one process: overlapping decoding and counting (best of 3)",
        "",
        "| way | s | x serial |",
        "|---|---:|---:|",
    ]
    return lines + [f"| {w['way']} | {_f(w['seconds'])} | {_f(w['seconds'] / serial)} |" for w in ways]


LEGEND = [
    "## How to read this",
    "",
    "- *decode limit*: rasterio reads every block (or every block touching the bbox), one read per row of "
    "blocks, and does nothing else, under the GDAL settings histcalc applies to its own reads "
    "(`histcalc.gdalenv.capture()` entered with `gdalenv.rasterio_env`: GDAL_CACHEMAX=64 MB, "
    "GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR, ...), so *x decode* prices histcalc's counting and "
    "overhead, not a GDAL setting. classic, dask and gdalinfo run with GDAL's defaults, as their users would.",
    "- *classic*: the seed job's method, per file `src.read(1)` then `np.histogram(band, bins=256)` (bbox: cut "
    "the box's pixel rectangle out of the whole band first), files spread over the same number of processes.",
    "- *procs*: processes (dask: threads; gdalinfo: concurrent gdalinfo processes; Spark: local[N] cores).",
    "- *Mpx/s/core*: pixels covered (whole tiles, or the bbox's pixel rectangle) per second, divided by procs.",
    "- *Mpx/CPU-s*: pixels per CPU second of the measured process tree (user + system; less sensitive to other "
    "load on the machine than wall time; for Spark it includes the JVM's CPU during the job).",
    "- *x decode*: median time / median time of the decode limit with the same procs and scope (1.00 = free counting).",
    "- *x decode (CPU)*: the same ratio on CPU seconds of the process tree (robust to other load).",
    "- *x faster than classic*: classic median / this median (classic ran with the procs of its own row).",
    "- *worker peak RSS*: highest VmHWM of a process that decoded and counted (pool worker, Spark Python worker, "
    "gdalinfo, or the runner itself when it did the work in-process).",
    "- *counts agree*: counts of DN 0..250 equal histcalc local engine's (same scope).",
    "- Spark rows time a job on a started session whose Python workers are already up (a small bbox job ran "
    "first); session start and the first job's worker start-up are in the Spark table.",
]


def machine(workers: int, started: float, args: Any, tiles: int) -> dict[str, Any]:
    import numpy
    import rasterio

    info = {
        "nproc": len(os.sched_getaffinity(0)),
        "CPU": _cpu_model(),
        "memory": f"{_mem_total_gib():.1f} GiB",
        "OS": platform.platform(),
        "Python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "rasterio / GDAL": f"{rasterio.__version__} / {rasterio.__gdal_version__}",
        "pyspark": _version("pyspark"),
        "Java": _first_line(["java", "-version"]),
        "dask / rioxarray": f"{_version('dask')} / {_version('rioxarray')}",
        "gdalinfo": _first_line(["gdalinfo", "--version"]),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "unset") + " (numpy BLAS is not on these paths)",
    }
    from methods import bbox_window

    window = bbox_window(str(args.cache / f"{args.size}px" / _first_tile(args)), [4.91, 51.16, 5.24, 51.27])
    return {
        "machine": info,
        "workers": workers,
        "tiles": tiles,
        "size": args.size,
        "reps": args.reps,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        "duration_s": time.time() - started,
        "args": " ".join(sys.argv[1:]) or "(defaults)",
        "bbox": "4.91,51.16,5.24,51.27",
        "bbox_fraction": window.width * window.height / args.size**2,
        "legend": LEGEND,
    }


def _first_tile(args: Any) -> str:
    from tiles import TileSpec

    return TileSpec(0, args.size).name


def console(rows: list[dict[str, Any]]) -> str:
    out = []
    for r in rows:
        out.append(
            f"{r['scope']:4} {r['label'][:44]:44} {r['workers']:2}  {_f(r['median_s']):>7} s  "
            f"x decode {_f(r['x_decode']):>5}  x classic {_f(r.get('x_faster_than_classic')):>6}  "
            f"peak {_f(r['worker_peak_mb'], 0):>5} MB  {r['agrees']}"
        )
    return "\n".join(out)


def _proc_field(path: str, key: str) -> str | None:
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpu_model() -> str:
    return _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown"


def _mem_total_gib() -> float:
    text = _proc_field("/proc/meminfo", "MemTotal")
    return int(text.split()[0]) / 1024**2 if text else 0.0


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _first_line(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "unknown"


# -- spark_long.py: Spark local[1] vs local[2] on a long job, against the local engine ---------------

_ROLES = ("driver", "jvm", "counting")


def long_summary(measurements: Sequence[Any], pixels: int) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
    """One row per case (medians over repetitions, CPU by role and per pixel), and the ratios between cases."""
    groups: dict[str, list[Any]] = {}
    for m in measurements:
        groups.setdefault(m.case.key, []).append(m)
    rows = [_long_row(ms, pixels) for ms in groups.values()]
    rows.sort(key=lambda r: (r["method"] != "spark_long", r["workers"]))
    get = {(r["method"], r["workers"]): r for r in rows}
    for r in rows:
        local = get.get(("local_long", r["workers"]))
        r["x_local_counting"] = _ratio(r["ns_px"]["counting"], local and local["ns_px"]["counting"])
        r["x_local_tree"] = _ratio(r["ns_px"]["tree"], local and local["ns_px"]["tree"])
    ratios = {
        "spark_speedup": _speedup(get, "spark_long"),
        "local_speedup": _speedup(get, "local_long"),
        "spark_vs_local_1": _ratio(_med(get, "spark_long", 1), _med(get, "local_long", 1)),
        "spark_vs_local_2": _ratio(_med(get, "spark_long", 2), _med(get, "local_long", 2)),
    }
    return rows, ratios


def _long_row(ms: list[Any], pixels: int) -> dict[str, Any]:
    ok, timing = _timing(ms)
    median = timing["median_s"]
    cpu = {role: _median([m.extra["cpu"][role] for m in ok if "cpu" in m.extra]) for role in _ROLES}
    cpu["tree"] = _median([m.cpu_s for m in ok if m.cpu_s is not None])
    return {
        **timing,
        "mpx_s": pixels / median / 1e6 if median else None,
        "session_s": _median([m.session_s for m in ok if m.session_s is not None]),
        "warmup_s": _median([m.warmup_s for m in ok if m.warmup_s is not None]),
        "cpu_s": cpu,
        "ns_px": {role: s * 1e9 / pixels if s is not None else None for role, s in cpu.items()},
        "worker_peak_mb": max((m.worker_peak_mb for m in ok if m.worker_peak_mb), default=None),
        "jvm_peak_mb": max((m.jvm_peak_mb for m in ok if m.jvm_peak_mb), default=None),
        "max_load1": max(m.load1 for m in ms),
    }


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _med(get: dict[tuple[str, int], dict[str, Any]], method: str, workers: int) -> float | None:
    row = get.get((method, workers))
    return row["median_s"] if row else None


def _speedup(get: dict[tuple[str, int], dict[str, Any]], method: str) -> float | None:
    return _ratio(_med(get, method, 1), _med(get, method, 2))


def long_markdown(rows: list[dict[str, Any]], ratios: dict[str, float | None], meta: dict[str, Any]) -> str:
    links, pixels = meta["links"], meta["links"] * meta["size"] ** 2
    lines = [
        "# histcalc: Spark local[1] vs local[2] on a long job",
        "",
        f"Generated by `python benchmarks/spark_long.py {meta['args']}` on {meta['date']} "
        f"({meta['duration_s']:.0f} s).",
        "",
        "## Machine",
        "",
        *(f"- {k}: {v}" for k, v in meta["machine"].items()),
        "",
        f"Data: {links} links (symlinks, each named as its own acquisition) to {meta['tiles']} tile(s) of "
        f"{meta['size']} x {meta['size']} px uint8 DEFLATE COG = {pixels / 1e9:.2f} Gpx; the page cache serves "
        f"the repeats (decoding is measured, not the disk). One tile decodes in {meta['decode_s']:.2f} s on one core "
        f"(best of 3), so {links} links take local[1] at least {links * meta['decode_s']:.0f} s (asked: "
        f">= {meta['target_s']:.0f} s). Medians of {meta['reps']} repetition(s), cases alternating, each in a "
        f"fresh process. Load average (1, 5, 15 min) at start {_loads(meta['loadavg'][0])}, at end "
        f"{_loads(meta['loadavg'][-1])}.",
        "",
        "## Job time",
        "",
        "| engine | procs | session start s | Python worker start s | job s (min-max) | Mpx/s | speed-up 2 vs 1 "
        "| cores busy |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        speedup = ratios[f"{'spark' if r['method'] == 'spark_long' else 'local'}_speedup"] if r["workers"] > 1 else None
        lines.append(
            f"| {r['label']} | {r['workers']} | {_f(r['session_s'])} | {_f(r['warmup_s'])} "
            f"| {_f(r['median_s'])} ({_f(r['min_s'])}-{_f(r['max_s'])}) | {_f(r['mpx_s'], 0)} | {_f(speedup)} "
            f"| {_f(_ratio(r['cpu_s']['tree'], r['median_s']))} |"
        )
    lines += [
        "",
        f"Spark job time / local engine job time: {_f(ratios['spark_vs_local_1'])} x on 1 core, "
        f"{_f(ratios['spark_vs_local_2'])} x on 2.",
        "",
        "## CPU during the job (whole process tree, medians)",
        "",
        "| engine | procs | CPU s: tree | driver | JVM | counting | ns/px: tree | JVM | counting "
        "| x local engine: counting | tree | peak RSS MB: counting process | JVM |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cpu, ns, in_process = r["cpu_s"], r["ns_px"], r["method"] == "local_long" and r["workers"] == 1
        lines.append(
            f"| {r['label']} | {r['workers']} | {_f(cpu['tree'])} | {'—' if in_process else _f(cpu['driver'])} "
            f"| {_f(cpu['jvm'])} | {_f(cpu['counting'])} | {_f(ns['tree'])} | {_f(ns['jvm'])} | {_f(ns['counting'])} "
            f"| {_f(r['x_local_counting'])} | {_f(r['x_local_tree'])} | {_f(r['worker_peak_mb'], 0)} "
            f"| {_f(r['jvm_peak_mb'], 0)} |"
        )
    notes = [f"- {p}" for p in meta["problems"]] or [
        "- every run's histogram is equal to every other's, and each accounts for every pixel of every link "
        "(counted + nodata, none a duplicate)"
    ]
    notes += [f"- {r['label']} ({r['workers']}): {r['failed']} failed run(s)" for r in rows if r["failed"]]
    notes.append(
        f"- highest 1-min load average at the start of a measurement: {max(r['max_load1'] for r in rows):.2f} "
        f"on {meta['machine']['nproc']} cores"
    )
    return "\n".join([*lines, "", "## Notes", "", *notes, "", *meta["legend"], ""])


def _loads(values: Sequence[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def long_console(rows: list[dict[str, Any]], ratios: dict[str, float | None]) -> str:
    out = [
        f"{r['label'][:26]:26} {r['workers']}  job {_f(r['median_s']):>7} s  {_f(r['mpx_s'], 0):>5} Mpx/s  "
        f"counting {_f(r['ns_px']['counting']):>5} ns/px  tree {_f(r['ns_px']['tree']):>5} ns/px"
        for r in rows
    ]
    out.append(f"speed-up 2 vs 1: Spark {_f(ratios['spark_speedup'])} x, local engine {_f(ratios['local_speedup'])} x")
    return "\n".join(out)
