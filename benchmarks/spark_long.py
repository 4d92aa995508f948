"""Spark local[1] vs local[2] on a job long enough that session start is not the story: ``spark_long.py``.

    .venv/bin/python benchmarks/spark_long.py                       # >= 60 s of counting on local[1], 3 repetitions
    .venv/bin/python benchmarks/spark_long.py --seconds 5 --reps 1  # a short check of the harness

The job is the cached full tiles of ``tiles.py`` listed many times under distinct hrefs: symlinks in
``<cache>/long/<size>px/``, each named as its own acquisition (a distinct sensing day), because histcalc
de-duplicates identical hrefs and, under ``--overlaps once`` (the default, kept here), copies of one tile
and acquisition, not files. The page cache serves the repeats, so decoding and counting are measured, not
the disk. The number of links comes from the decode time of one tile on one core (best of 3, in this
process): no engine counts faster than it decodes, so the job takes local[1] at least ``--seconds``.

Four cases, each in a fresh process whose tree is sampled (``procmon``), in an order that rotates each
repetition: Spark local[1] and local[2] (session start, Python worker start and job apart) and the local
engine on 1 and 2 processes. Each records the job's CPU by role (driver, JVM, the Python processes that
decode and count). Every run's histogram must equal every other's and account for every pixel of every
link, or the run fails. Results: SPARK_LONG_RESULTS.md (+ .json). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402
import run  # noqa: E402
from run import Case, Measurement  # noqa: E402
from tiles import ensure_tiles  # noqa: E402

FIRST_DAY = date(2025, 1, 1)  # the links' sensing days: one per link, so each is its own acquisition
CASES = [
    Case("histcalc Spark local[1]", "spark_long", 1, rss="spark"),
    Case("histcalc Spark local[2]", "spark_long", 2, rss="spark"),
    Case("histcalc local engine", "local_long", 1, rss="self"),
    Case("histcalc local engine", "local_long", 2, rss="pool"),
]


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.time()
    if not run._have_java():
        print("Spark needs a Java runtime (17 or newer) and none was found: nothing to compare", flush=True)
        return 1
    tiles = [str(p) for p in ensure_tiles(args.cache, args.tiles, args.size, 2)]
    run._warm_page_cache(tiles)
    decode_s = decode_seconds(tiles[0])
    count = args.files or max(len(tiles), math.ceil(args.seconds / decode_s))
    files = link_repeats(tiles, count, args.cache / "long" / f"{args.size}px")
    check_acquisitions(files)
    pixels = count * args.size**2
    print(
        f"{count} links to {len(tiles)} tile(s) of {args.size} px = {pixels / 1e9:.1f} Gpx; one tile decodes in "
        f"{decode_s:.2f} s, so local[1] counts >= {count * decode_s:.0f} s",
        flush=True,
    )
    logs = args.cache / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    timeout = run.RUNNER_TIMEOUT_S + 10 * count * decode_s
    measurements: list[Measurement] = []
    uptime = [os.getloadavg()]
    for rep in range(args.reps):
        shift = rep % len(CASES)
        for case in CASES[shift:] + CASES[:shift]:
            measurements.extend(run.measure(case, rep, files, logs, timeout))
    uptime.append(os.getloadavg())
    problems = disagreements(measurements, pixels)
    meta = report.machine(len(os.sched_getaffinity(0)), started, args, len(tiles))
    meta.update(links=count, decode_s=decode_s, target_s=args.seconds, loadavg=uptime, problems=problems, legend=LEGEND)
    rows, ratios = report.long_summary(measurements, pixels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report.long_markdown(rows, ratios, meta))
    raw = {"meta": meta, "summary": rows, "ratios": ratios, "measurements": [run._jsonable(m) for m in measurements]}
    args.out.with_suffix(".json").write_text(json.dumps(raw, indent=1, default=str))
    print(report.long_console(rows, ratios), flush=True)
    for problem in problems:
        print(f"PROBLEM: {problem}", flush=True)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')} in {time.time() - started:.0f} s", flush=True)
    return 1 if problems else 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Spark local[1] vs local[2] on a long job (see benchmarks/README.md)")
    parser.add_argument("--seconds", type=float, default=60.0, help="counting seconds on one core, at least (60)")
    parser.add_argument("--files", type=int, default=0, help="number of links instead (overrides --seconds)")
    parser.add_argument("--tiles", type=int, default=4, help="distinct cached tiles the links point to (default 4)")
    parser.add_argument("--size", type=int, default=10980, help="tile width and height in px (default 10980)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per case (default 3)")
    parser.add_argument("--cache", type=Path, default=HERE / "cache", help="tile cache folder")
    parser.add_argument("--out", type=Path, default=HERE / "SPARK_LONG_RESULTS.md", help="results (and .json)")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.files < 0 or args.tiles < 1 or args.reps < 1 or args.size < 64:
        parser.error("--seconds must be > 0, --files >= 0, --tiles and --reps >= 1, --size >= 64")
    return args


def decode_seconds(path: str) -> float:
    """Best of 3: decoding every block of one tile in this process, under histcalc's GDAL settings."""
    from methods import _decode_part, _timed, histcalc_gdal

    gdal = histcalc_gdal()
    return min(_timed(lambda: _decode_part(path, 0, 1, None, gdal)) for _ in range(3))


def link_repeats(tiles: list[str], count: int, folder: Path) -> list[str]:
    """``count`` symlinks in ``folder`` to ``tiles`` in turn, each named as a distinct acquisition."""
    from histcalc.demo import DemoScene

    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.tif"):  # links of an earlier run may point to other tiles
        if old.is_symlink():
            old.unlink()
    links = []
    for k in range(count):
        scene = DemoScene("S2A" if k % 2 == 0 else "S2B", FIRST_DAY + timedelta(days=k))
        link = folder / scene.file_name("NDVI_10M")
        link.symlink_to(os.path.relpath(tiles[k % len(tiles)], folder))
        links.append(str(link))
    return links


def check_acquisitions(files: list[str]) -> None:
    """Fail unless every link is its own acquisition for ``--overlaps once`` (the engines' default)."""
    from methods import _scenes

    from histcalc.acquisition import facts_of

    seen = {facts_of(scene).acquisition for scene in _scenes(files)}
    if None in seen or len(seen) != len(files):
        raise SystemExit(f"the links are not {len(files)} distinct acquisitions ({len(seen)}): fix link_repeats")


def disagreements(measurements: list[Measurement], pixels: int) -> list[str]:
    """What is wrong with the runs' results: histograms that differ, pixels not accounted for."""
    ok = [m for m in measurements if m.seconds is not None]
    problems = [f"{m.case.label} ({m.case.workers}) rep {m.rep} failed: {m.error}" for m in measurements if m.error]
    reference = ok[0].dn_counts if ok else None
    for m in ok:
        name = f"{m.case.label} ({m.case.workers}) rep {m.rep}"
        account = m.extra.get("account", {})
        if m.dn_counts != reference:
            problems.append(f"{name}: histogram differs from {ok[0].case.label} ({ok[0].case.workers})")
        if sum(account.values()) != pixels or account.get("duplicate"):
            problems.append(f"{name}: accounts for {sum(account.values())} of {pixels} px ({account})")
    return problems


LEGEND = [
    "## How to read this",
    "",
    "- Every case runs in a fresh process (methods.py `spark_long` / `local_long`), the whole process tree "
    "sampled: peak RSS from VmHWM every 50 ms, CPU from /proc (utime + stime of each process plus the time of "
    "the children it reaped) at the job's start and end.",
    "- *session start*: `SparkSession` creation (JVM start); *Python worker start*: the seed bbox job on the "
    "first 8 links run first (cold Python workers) minus the same job run after the long job. Neither is in *job s*.",
    "- *driver*: the Python process that plans and merges (for the local engine on 1 process it also counts: "
    "its time is under *counting*). *JVM*: Spark's driver and executor (one JVM in local mode: scheduling, task "
    "serialisation, the shuffle of the partial histograms). *counting*: the Python processes that decode and "
    "count: Spark's Python daemon and workers, the local engine's pool (or the driver itself on 1 process).",
    "- *ns/px*: CPU seconds per pixel of the links (nodata included), x 1e9. *x local engine*: this row's ns/px "
    "over the local engine's with the same number of processes.",
    "- *speed-up*: job seconds on 1 core / job seconds on 2 (same engine). *cores busy*: the tree's CPU seconds "
    "during the job / job seconds (1.00 = one core busy all the time; below the procs: waiting, or other load).",
    "- The kernel is the default (`HISTCALC_KERNEL=auto`): numpy until a process has counted ~400 Mpx, then numba.",
]


if __name__ == "__main__":
    sys.exit(main())
