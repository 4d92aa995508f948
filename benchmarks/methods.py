"""One measurement in a fresh process: ``python benchmarks/methods.py METHOD --workers N FILE...``.

run.py starts this script once per method and repetition (so every measurement starts cold in
Python, warm in the page cache), samples the memory of its process tree, and reads the single
JSON line it prints: a list of measurements, each with its wall time, the pixels it covered and,
where the method yields them, the counts per digital number (to check that methods agree).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import numpy as np

from histcalc.demo import NODATA, OFFSET, SCALE

SEED_BBOX = (4.91, 51.16, 5.24, 51.27)
Counts = np.ndarray


# -- helpers shared by the plain-rasterio methods ------------------------------------------------


def bbox_window(path: str, bbox: Sequence[float]) -> Any:
    """The raster window (whole pixels) covering the lon/lat ``bbox`` projected into the file's CRS."""
    import rasterio
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window, from_bounds

    with rasterio.open(path) as src:
        bounds = transform_bounds("EPSG:4326", src.crs, *bbox, densify_pts=64)
        w = from_bounds(*bounds, transform=src.transform)
        col0, row0 = max(0, math.floor(w.col_off)), max(0, math.floor(w.row_off))
        col1 = min(src.width, math.ceil(w.col_off + w.width))
        row1 = min(src.height, math.ceil(w.row_off + w.height))
        return Window(col0, row0, col1 - col0, row1 - row0)


def _pool_map(fn: Callable[..., Any], items: Sequence[Any], workers: int) -> list[Any]:
    if workers == 1:
        return [fn(*item) for item in items]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(fn, *zip(*items, strict=True)))


def _split_rows(files: Sequence[str], workers: int) -> list[tuple[str, int, int]]:
    """(file, part, parts): files split into interleaved block-row shares when there are few files."""
    parts = max(1, math.ceil(3 * workers / len(files))) if len(files) < 2 * workers else 1
    return [(f, p, parts) for f in files for p in range(parts)]


# -- 1. decode limit ----------------------------------------------------------------------------


def histcalc_gdal() -> dict[str, str]:
    """The GDAL settings histcalc applies around its reads (``gdalenv.capture()``, GDAL_CACHEMAX=64 MB)."""
    from histcalc import gdalenv

    return gdalenv.capture()


def _decode_part(path: str, part: int, parts: int, window: Any = None, gdal: dict[str, str] | None = None) -> int:
    """Decode every block (of the block rows in this share) touching ``window``: one read per block row.

    Reading a whole row of blocks at once is cheaper than one read per block (fewer calls and
    copies) and decodes exactly the same blocks, so it is the fairer floor. ``gdal``: settings
    applied the way histcalc applies them (``gdalenv.rasterio_env``); None: GDAL's defaults.
    """
    import rasterio
    from rasterio.windows import Window

    from histcalc import gdalenv

    pixels = 0
    env = rasterio.Env() if gdal is None else gdalenv.rasterio_env(gdal)
    with env, rasterio.open(path) as src:
        bh, bw = src.block_shapes[0]
        w = window or Window(0, 0, src.width, src.height)
        col0 = (w.col_off // bw) * bw
        col1 = min(src.width, -(-(w.col_off + w.width) // bw) * bw)
        first, last = (w.row_off // bh) * bh, w.row_off + w.height
        for row in list(range(first, last, bh))[part::parts]:
            band = src.read(1, window=Window(col0, row, col1 - col0, min(bh, src.height - row)))
            pixels += band.size
    return pixels


def decode(files: Sequence[str], workers: int, bbox: Sequence[float] | None) -> dict[str, Any]:
    """The decode limit under histcalc's own GDAL settings, so that *x decode* compares like with like."""
    window = bbox_window(files[0], bbox) if bbox else None
    gdal = histcalc_gdal()
    items = [(f, p, n, window, gdal) for f, p, n in _split_rows(files, workers)]
    started = time.perf_counter()
    pixels = sum(_pool_map(_decode_part, items, workers))
    return {
        "seconds": time.perf_counter() - started,
        "pixels_decoded": pixels,
        "note": "GDAL settings as histcalc applies them: gdalenv.capture() under gdalenv.rasterio_env "
        f"(GDAL_CACHEMAX={gdal.get('GDAL_CACHEMAX', 'GDAL default')} MB)",
    }


# -- 2. the classic job: whole-band read + np.histogram(band, bins=256) per file ----------------


def _classic_file(path: str, window: Any = None) -> tuple[Counts, Counts]:
    import rasterio

    with rasterio.open(path) as src:
        band = src.read(1)
    if window is not None:  # the classic job read the whole band, then cut the box out of it
        band = band[window.row_off : window.row_off + window.height, window.col_off : window.col_off + window.width]
    counts, edges = np.histogram(band, bins=256)
    return counts, edges


def classic(files: Sequence[str], workers: int, bbox: Sequence[float] | None) -> dict[str, Any]:
    window = bbox_window(files[0], bbox) if bbox else None
    started = time.perf_counter()
    results = _pool_map(_classic_file, [(f, window) for f in files], workers)
    seconds = time.perf_counter() - started
    total = sum(c for c, _ in results)
    same_edges = all(np.array_equal(results[0][1], e) for _, e in results)
    # with min 0 and max 255 in a file, its 256 bins over [0, 255] hold one digital number each
    dn_aligned = same_edges and results[0][1][0] == 0 and results[0][1][-1] == 255
    return {
        "seconds": seconds,
        "dn_counts": total.tolist() if dn_aligned else None,
        "note": ""
        if dn_aligned
        else "np.histogram(bins=256) spans each file's own min..max, so bin edges differ between files "
        "(a tile without DN 0 gets other edges): the classic job's summed counts are not one histogram",
    }


# -- 3. histcalc ---------------------------------------------------------------------------------


def _scenes(files: Sequence[str]) -> list[Any]:
    from pathlib import Path

    from histcalc import Scene

    return [Scene(id=Path(f).stem, href=f, scale=SCALE, offset=OFFSET, nodata=NODATA, dtype="uint8") for f in files]


def _histcalc_row(result: Any, seconds: float) -> dict[str, Any]:
    h = result.histogram
    counts = np.asarray(h.counts, dtype=np.int64).tolist()
    # every pixel of the files read lands in one of these: how spark_long.py checks nothing was skipped
    account = {name: int(getattr(h, name)) for name in ("below", "above", "nodata", "masked", "duplicate")}
    return {
        "seconds": seconds,
        "dn_counts": counts,
        "nodata": int(h.nodata),
        "files_failed": len(result.files_failed),
        "extra": {"account": {"counted": int(sum(counts)), **account}},
    }


def histcalc_local(files: Sequence[str], workers: int, bbox: Sequence[float] | None) -> dict[str, Any]:
    from histcalc import AOI, compute_histogram

    aoi = AOI.from_bbox(tuple(bbox)) if bbox else None  # type: ignore[arg-type]
    scenes = _scenes(files)
    started = time.perf_counter()
    result = compute_histogram(scenes, aoi=aoi, engine="local", workers=workers)
    return _histcalc_row(result, time.perf_counter() - started)


def histcalc_local_numba(files: Sequence[str], workers: int, bbox: Sequence[float] | None) -> dict[str, Any]:
    """The local engine with the numba kernel from the first pixel (HISTCALC_KERNEL=numba; the default is auto)."""
    os.environ["HISTCALC_KERNEL"] = "numba"  # forked pool workers inherit it
    return histcalc_local(files, workers, bbox)


def histcalc_spark(files: Sequence[str], workers: int, bbox: Sequence[float] | None) -> list[dict[str, Any]]:
    """On one fresh local[N] session: the bbox job with cold Python workers, the full job, the bbox job again.

    The first job pays for starting Spark's Python workers; timing the full job second keeps that
    cost out of its throughput, and reports it (cold bbox job - warm bbox job) as ``warmup_s``.
    """
    full, small, warmup = _spark_jobs(files, files, workers, bbox)
    return [{**full, "part": "full", **warmup}, {**small, "part": "bbox", **warmup}]


def _spark_jobs(
    files: Sequence[str], small_files: Sequence[str], workers: int, bbox: Sequence[float] | None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, float]]:
    """A fresh local[N] session: the bbox job on ``small_files`` (cold Python workers), the full job on
    ``files``, the bbox job again; (full job, warm bbox job, session and worker start seconds)."""
    from histcalc import AOI, compute_histogram
    from histcalc.engines import spark as spark_engine

    scenes, small = _scenes(files), _scenes(small_files)
    aoi = AOI.from_bbox(tuple(bbox or SEED_BBOX))  # type: ignore[arg-type]
    started = time.perf_counter()
    session = spark_engine.session(f"local[{workers}]", app_name="histcalc-bench")
    session_s = time.perf_counter() - started

    def job(chosen: list[Any], area: Any) -> dict[str, Any]:
        result, seconds, cpu = _with_cpu(lambda: compute_histogram(chosen, aoi=area, engine="spark", spark=session))
        row = _histcalc_row(result, seconds)
        row["cpu_s"], row["jvm_cpu_s"] = sum(cpu.values()), cpu.get("jvm", 0.0)
        row["extra"] = {**row["extra"], "cpu": _cpu_roles(cpu, in_process=False)}
        return row

    try:
        cold = job(small, aoi)
        full = job(scenes, None)
        warm = job(small, aoi)
    finally:
        session.stop()
    return full, warm, {"session_s": session_s, "warmup_s": max(0.0, cold["seconds"] - warm["seconds"])}


def _with_cpu(fn: Callable[[], Any]) -> tuple[Any, float, dict[str, float]]:
    """``fn()``, its wall seconds and the CPU seconds its process tree spent meanwhile, by kind (procmon)."""
    from procmon import tree_cpu

    cpu0, started = tree_cpu(os.getpid()), time.perf_counter()
    value = fn()
    seconds, cpu1 = time.perf_counter() - started, tree_cpu(os.getpid())
    return value, seconds, {k: cpu1.get(k, 0.0) - cpu0.get(k, 0.0) for k in cpu1.keys() | cpu0.keys()}


def _cpu_roles(cpu: dict[str, float], in_process: bool) -> dict[str, float]:
    """CPU seconds by role: the Python driver, the JVM, and the processes that decode and count.

    ``in_process``: the driver counted itself (local engine, 1 process), so its time is the counting's.
    Otherwise the counting processes are the Python workers: Spark's (its daemon and the workers it
    forks) or the local engine's pool (live, or exited and reaped by the driver).
    """
    driver = cpu.get("runner", 0.0)
    counting = sum(v for k, v in cpu.items() if k not in ("runner", "jvm"))
    if in_process:
        driver, counting = 0.0, counting + driver
    return {"driver": driver, "jvm": cpu.get("jvm", 0.0), "counting": counting}


def _tree_cpu() -> dict[str, float]:
    """CPU seconds (user + system) so far of this process's tree, JVM and Python processes apart.

    Each live process counts its own time and that of the children it has waited for (cutime,
    cstime), so the CPU of exited processes stays in the sum: pool workers that histcalc's
    ``forkserver`` reaped, Python workers that Spark's daemon reaped. ``RUSAGE_CHILDREN`` alone
    would miss those, as they are not children of this process.
    """
    from procmon import tree_cpu

    cpu = tree_cpu(os.getpid())
    return {"jvm": cpu.get("jvm", 0.0), "python": sum(v for k, v in cpu.items() if k != "jvm")}


# -- 3b. long jobs (spark_long.py): many files, each engine's job CPU by role ----------------------

SMALL_JOB_FILES = 8  # the bbox jobs around a long Spark job: enough tasks to start every Python worker


def spark_long(files: Sequence[str], workers: int, bbox: Sequence[float] | None) -> dict[str, Any]:
    """A fresh local[N] session; the seed bbox on the first files starts the Python workers, then the long job."""
    full, _, warmup = _spark_jobs(files, files[:SMALL_JOB_FILES], workers, bbox)
    return {**full, **warmup}


def local_long(files: Sequence[str], workers: int, bbox: Sequence[float] | None) -> dict[str, Any]:
    """The local engine on every file (its pool starts inside the clock, as in real use)."""
    from histcalc import compute_histogram

    scenes = _scenes(files)
    result, seconds, cpu = _with_cpu(lambda: compute_histogram(scenes, engine="local", workers=workers))
    row = _histcalc_row(result, seconds)
    row["cpu_s"] = sum(cpu.values())
    row["extra"] = {**row["extra"], "cpu": _cpu_roles(cpu, in_process=workers == 1)}
    return row


# -- 4. peers: dask + rioxarray, gdalinfo -hist --------------------------------------------------


def dask_rioxarray(files: Sequence[str], workers: int, bbox: Sequence[float] | None) -> dict[str, Any]:
    import dask
    import dask.array as da
    import rioxarray

    started = time.perf_counter()
    histograms, chunks = [], None
    for f in files:
        arr = rioxarray.open_rasterio(f, chunks=True, lock=False)  # block-aligned auto chunks
        chunks = chunks or str(arr.data.chunksize)
        counts, _ = da.histogram(arr.data, bins=256, range=(-0.5, 255.5))
        histograms.append(counts)
    total = dask.compute(sum(histograms), scheduler="threads", num_workers=workers)[0]
    return {
        "seconds": time.perf_counter() - started,
        "dn_counts": np.asarray(total).tolist(),
        "note": f"chunks {chunks}, {workers} thread(s)",
    }


def _gdalinfo_hist(path: str) -> Counts:
    command = ["gdalinfo", "-hist", "-nomd", "-norat", "-noct", "--config", "GDAL_PAM_ENABLED", "NO", path]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()
    for i, line in enumerate(out):
        if "buckets from" in line:
            return np.array([int(v) for v in out[i + 1].split()], dtype=np.int64)
    raise RuntimeError(f"no histogram in gdalinfo output for {path}")


def gdalinfo(files: Sequence[str], workers: int, bbox: Sequence[float] | None) -> dict[str, Any]:
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:  # threads only wait: each gdalinfo is its own process
        results = list(pool.map(_gdalinfo_hist, files))
    seconds = time.perf_counter() - started
    leftovers = [f for f in files if os.path.exists(f + ".aux.xml")]
    for f in leftovers:  # a cached histogram would make the next repetition free
        os.remove(f + ".aux.xml")
    return {
        "seconds": seconds,
        "dn_counts": sum(results).tolist(),
        "note": f"{workers} gdalinfo process(es) at a time" + (", removed .aux.xml" if leftovers else ""),
    }


# -- counting kernels on decoded pixels (why the hot path costs what it costs) -------------------


def kernels(files: Sequence[str], workers: int, bbox: Sequence[float] | None) -> list[dict[str, Any]]:
    import rasterio
    from rasterio.windows import Window

    from histcalc import kernel, raster

    with rasterio.open(files[0]) as src:
        rows = min(src.height, 2048)
        band = src.read(1, window=Window(0, 0, src.width, rows))
        width, pixels = src.width, src.width * src.height
        band_rows = max(src.block_shapes[0][0], (raster._BAND_PIXELS // width) // 512 * 512)
    flat = band.ravel()
    rows_out = []
    for name, fn in _count_candidates(band, band_rows, kernel).items():
        fn()  # compile (or load from the cache) outside the clock
        best = min(_timed(fn) for _ in range(3))
        rows_out.append({"kernel": name, "ns_per_px": best / flat.size * 1e9})
    gdal = histcalc_gdal()
    decode_s = min(_timed(lambda: _decode_part(files[0], 0, 1, None, gdal)) for _ in range(2))
    default_s = min(_timed(lambda: _decode_part(files[0], 0, 1)) for _ in range(2))
    rows_out.append(
        {
            "kernel": "rasterio decode, one read per block row, histcalc's GDAL settings "
            f"(GDAL_CACHEMAX={gdal.get('GDAL_CACHEMAX', 'default')} MB) (for scale)",
            "ns_per_px": decode_s / pixels * 1e9,
        }
    )
    rows_out.append(
        {"kernel": "the same with GDAL's defaults (block cache 5% of RAM)", "ns_per_px": default_s / pixels * 1e9}
    )
    return rows_out


def _count_candidates(band: np.ndarray, band_rows: int, kernel: Any) -> dict[str, Callable[[], Any]]:
    """Ways of counting one decoded band: the numpy methods histcalc used before, and histcalc.kernel's."""
    from histcalc import kernel_float

    flat, width = band.ravel(), band.shape[1]

    def bincount_by(n: int) -> Callable[[], Any]:
        def run() -> Any:
            total = np.zeros(256, dtype=np.int64)
            for i in range(0, flat.size, n):
                total += np.bincount(flat[i : i + n], minlength=256)
            return total

        return run

    def dn(name: str, ways: int, inside: Any = None) -> Callable[[], Any]:
        def run() -> Any:
            os.environ["HISTCALC_KERNEL"] = name
            return kernel.count_dn(band, np.zeros((ways, 256), np.int64), 0, NODATA, inside)

        return run

    # ~100,000 parcels over a 10980 px tile: squares of 35 px, labels numbered row by row
    labels = (np.arange(band.shape[0])[:, None] // 35 * 314 + np.arange(width)[None, :] // 35 + 1).astype(np.int32)
    aoi = np.zeros(band.shape, dtype=bool)
    aoi[:, width // 4 : 3 * width // 4] = True
    physical = (band * np.float32(SCALE) + np.float32(OFFSET)).astype(np.float32)
    edges = np.linspace(-0.08, 0.94, 257)

    # allocated once: 4 bytes x zones x 256 (the zone counter lends rows of such an array to the open zones)
    zone_counts = np.zeros((int(labels.max()) + 1, 256), np.int32)
    zone_tallies, excess = np.zeros((len(zone_counts), 2), np.int64), np.zeros(256, np.int64)
    rowmap = np.arange(len(zone_counts), dtype=np.int32)

    def zonal(name: str) -> Callable[[], Any]:
        def run() -> Any:
            os.environ["HISTCALC_KERNEL"] = name
            return kernel.count_zones(labels[None], rowmap, band, zone_counts, zone_tallies, excess, 0, NODATA)

        return run

    def floats(name: str) -> Callable[[], Any]:
        def run() -> Any:
            os.environ["HISTCALC_KERNEL"] = name
            return kernel_float.count_float(physical, edges, np.zeros(256, np.int64), nodata=np.nan)

        return run

    return {
        "np.histogram(bins=256) (classic)": lambda: np.histogram(flat, bins=256),
        f"np.bincount per {band_rows}-row read (histcalc before slicing)": bincount_by(band_rows * width),
        "np.bincount per 64 Ki px slice (histcalc before the kernel; now numpy's path, "
        "and HISTCALC_KERNEL=auto's until a process has counted ~400 Mpx)": bincount_by(1 << 16),
        "kernel.count_dn, C, 1 histogram": dn("c", 1),
        "kernel.count_dn, C, 4 interleaved sub-histograms (what histcalc runs)": dn("c", 4),
        "kernel.count_dn, numba, 4 interleaved sub-histograms (without a C compiler)": dn("numba", 4),
        "kernel.count_dn, C, with an AOI mask (half the band inside; per pixel read)": dn("c", 4, aoi),
        "kernel.count_dn, numba, with the same AOI mask": dn("numba", 4, aoi),
        "kernel.count_dn, numpy reference, with the same AOI mask": dn("numpy", 1, aoi),
        "kernel.count_zones, C, ~100,000 parcels (35 px squares) x DN": zonal("c"),
        "kernel.count_zones, numba, the same": zonal("numba"),
        "kernel.count_float, C, float32 into 256 bins (+ moments, min, max)": floats("c"),
        "kernel.count_float, numba, the same": floats("numba"),
        "kernel.count_float, numpy reference, the same": floats("numpy"),
    }


def pipeline(files: Sequence[str], workers: int, bbox: Sequence[float] | None) -> list[dict[str, Any]]:
    """One tile, read by histcalc's windows and counted by kernel.count_dn, in one process three ways:
    serially; with one reader thread feeding the counting caller through a bounded queue; and with
    ``workers`` threads, each reading and counting its own share of the windows (own dataset handle).
    GDAL decodes and the kernel counts with the GIL released, so threads can use several cores.
    """
    import queue
    import threading

    from histcalc import gdalenv, kernel, raster

    path, gdal = files[0], histcalc_gdal()
    with raster.opened(path, gdal) as src:
        windows = raster._bands(src, None, 0, 1)

    def count_share(share: list[Any], counts: np.ndarray) -> None:
        with raster.opened(path, gdal) as src:
            for w in share:
                kernel.count_dn(src.read(1, window=w), counts, 0, NODATA)

    def serial() -> np.ndarray:
        counts = np.zeros((4, 256), np.int64)
        count_share(windows, counts)
        return counts

    def reader_thread() -> np.ndarray:
        counts, blocks = np.zeros((4, 256), np.int64), queue.Queue(maxsize=2)

        def read() -> None:
            with gdalenv.rasterio_env(gdal), raster.opened(path, gdal) as src:
                for w in windows:
                    blocks.put(src.read(1, window=w))
            blocks.put(None)

        reader = threading.Thread(target=read)
        reader.start()
        while (block := blocks.get()) is not None:
            kernel.count_dn(block, counts, 0, NODATA)
        reader.join()
        return counts

    def threads() -> np.ndarray:
        counts = [np.zeros((4, 256), np.int64) for _ in range(workers)]
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(count_share, [windows[i::workers] for i in range(workers)], counts))
        return sum(counts)

    serial()  # compile, warm GDAL
    out, expected = [], serial().sum(axis=0)
    for name, fn in (
        ("serial: read then count, one thread", serial),
        ("1 reader thread + counting caller, queue of 2", reader_thread),
        (f"{workers} threads, each reading and counting a share", threads),
    ):
        best, counts = math.inf, None
        for _ in range(3):
            started = time.perf_counter()
            counts = fn()
            best = min(best, time.perf_counter() - started)
        assert counts is not None and np.array_equal(counts.sum(axis=0), expected), name
        out.append({"way": name, "seconds": best})
    return out


def jit(files: Sequence[str], workers: int, bbox: Sequence[float] | None) -> dict[str, Any]:
    """First-call cost of the kernels in this fresh process (HISTCALC_KERNEL=c: the C library's load; =numba:
    NUMBA_CACHE_DIR decides cold or warm)."""
    started = time.perf_counter()
    from histcalc import kernel

    kernel.count_dn(np.zeros((2, 8), np.uint8), np.zeros((4, 256), np.int64), 0)
    first_plain = time.perf_counter() - started
    kernel.count_dn(np.zeros((2, 8), np.uint8), np.zeros((4, 256), np.int64), 0, 255, np.ones((2, 8), bool))
    return {
        "seconds": time.perf_counter() - started,
        "first_plain_s": first_plain,
        "cache_dir": os.environ.get("NUMBA_CACHE_DIR", ""),
    }


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _cpu_seconds() -> float:
    """CPU seconds of this process's tree: itself, live descendants, and every exited one that was waited for."""
    return sum(_tree_cpu().values())


METHODS: dict[str, Callable[..., Any]] = {
    "decode": decode,
    "classic": classic,
    "histcalc_local": histcalc_local,
    "histcalc_local_numba": histcalc_local_numba,
    "histcalc_spark": histcalc_spark,
    "spark_long": spark_long,
    "local_long": local_long,
    "dask": dask_rioxarray,
    "gdalinfo": gdalinfo,
    "kernels": kernels,
    "jit": jit,
    "pipeline": pipeline,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("method", choices=sorted(METHODS))
    parser.add_argument("files", nargs="+")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--bbox", type=lambda s: tuple(float(v) for v in s.split(",")), default=None)
    args = parser.parse_args(argv)
    # Every method starts with rasterio imported (~0.5 s with boto3, which rasterio.session pulls in), as
    # in a long-running process: without this, only methods that happened to open a file before starting
    # their clock (the bbox window) were spared it. Worker processes a method starts without inheriting
    # it (histcalc's forkserver pool) still pay for their own imports: that is the method's cost.
    import rasterio  # noqa: F401

    cpu_before = _cpu_seconds()
    out = METHODS[args.method](args.files, args.workers, args.bbox)
    cpu_s = _cpu_seconds() - cpu_before
    rows = out if isinstance(out, list) else [out]
    for row in rows:
        # CPU of this process tree (pool workers, histcalc's forkserver and its workers, gdalinfo)
        row.setdefault("cpu_s", cpu_s)  # methods that time a job (Spark, the long jobs) measure its CPU themselves
        row["self_peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        row["children_peak_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    print("BENCH-RESULT " + json.dumps(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
