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

SCALE, OFFSET, NODATA = 0.004, -0.08, 255
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


def _decode_part(path: str, part: int, parts: int, window: Any = None, cachemax_mb: int | None = None) -> int:
    """Decode every block (of the block rows in this share) touching ``window``: one read per block row.

    Reading a whole row of blocks at once is cheaper than one read per block (fewer calls and
    copies) and decodes exactly the same blocks, so it is the fairer floor.
    """
    import rasterio
    from rasterio.windows import Window

    env = {} if cachemax_mb is None else {"GDAL_CACHEMAX": cachemax_mb}
    pixels = 0
    with rasterio.Env(**env), rasterio.open(path) as src:
        bh, bw = src.block_shapes[0]
        w = window or Window(0, 0, src.width, src.height)
        col0 = (w.col_off // bw) * bw
        col1 = min(src.width, -(-(w.col_off + w.width) // bw) * bw)
        first, last = (w.row_off // bh) * bh, w.row_off + w.height
        for row in list(range(first, last, bh))[part::parts]:
            band = src.read(1, window=Window(col0, row, col1 - col0, min(bh, src.height - row)))
            pixels += band.size
    return pixels


def decode(
    files: Sequence[str], workers: int, bbox: Sequence[float] | None, cachemax_mb: int | None = None
) -> dict[str, Any]:
    window = bbox_window(files[0], bbox) if bbox else None
    items = [(f, p, n, window, cachemax_mb) for f, p, n in _split_rows(files, workers)]
    started = time.perf_counter()
    pixels = sum(_pool_map(_decode_part, items, workers))
    return {"seconds": time.perf_counter() - started, "pixels_decoded": pixels}


def decode_small_cache(files: Sequence[str], workers: int, bbox: Sequence[float] | None) -> dict[str, Any]:
    """The decode limit with GDAL's block cache capped at 64 MB (the default is 5% of RAM)."""
    return {**decode(files, workers, bbox, cachemax_mb=64), "note": "GDAL_CACHEMAX=64 (MB)"}


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
    return {"seconds": seconds, "dn_counts": counts, "nodata": int(h.nodata), "files_failed": len(result.files_failed)}


def histcalc_local(files: Sequence[str], workers: int, bbox: Sequence[float] | None) -> dict[str, Any]:
    from histcalc import AOI, compute_histogram

    aoi = AOI.from_bbox(tuple(bbox)) if bbox else None  # type: ignore[arg-type]
    scenes = _scenes(files)
    started = time.perf_counter()
    result = compute_histogram(scenes, aoi=aoi, engine="local", workers=workers)
    return _histcalc_row(result, time.perf_counter() - started)


SLICE_PX = 65536


def sliced_bincount(x: Any, weights: Any = None, minlength: int = 0) -> Any:
    """np.bincount over 64 Ki px slices: the same counts, with the intp temporary kept in cache."""
    x = np.asarray(x)
    if weights is not None or x.ndim != 1 or x.size <= SLICE_PX:
        return np.bincount(x, weights, minlength)
    total = np.zeros(minlength, dtype=np.int64)
    for start in range(0, x.size, SLICE_PX):
        part = np.bincount(x[start : start + SLICE_PX], minlength=minlength)
        if part.size > total.size:
            total = np.concatenate([total, np.zeros(part.size - total.size, dtype=np.int64)])
        total[: part.size] += part
    return total


def _patch_counter() -> None:
    """The proposed change to histcalc.raster, applied here only (src/ is not edited).

    np.bincount converts its input to intp: on a 5.6 Mpx band that is a 45 MB temporary and runs
    from memory; on 64 Ki px slices the temporary stays in cache and the count is ~2x cheaper.
    histcalc.raster's ``np`` is swapped for a view of numpy whose bincount is sliced, so the patch
    follows whatever the module's counting code looks like today.
    """
    import types

    from histcalc import raster

    class _Numpy(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            return getattr(np, name)

    patched = _Numpy("numpy")
    patched.bincount = sliced_bincount  # type: ignore[attr-defined]
    raster.np = patched  # type: ignore[attr-defined]


def histcalc_patched(files: Sequence[str], workers: int, bbox: Sequence[float] | None) -> dict[str, Any]:
    """What-if: histcalc local engine with 64 Ki px bincount slices and GDAL_CACHEMAX=64 MB per task."""
    from histcalc import AOI, compute_histogram, gdalenv

    _patch_counter()  # pool workers are forked from this process, so they run the patched code
    settings: dict[str, Any] = {**gdalenv.capture(), "GDAL_CACHEMAX": 64}  # rasterio wants an int here
    aoi = AOI.from_bbox(tuple(bbox)) if bbox else None  # type: ignore[arg-type]
    scenes = _scenes(files)
    started = time.perf_counter()
    result = compute_histogram(scenes, aoi=aoi, engine="local", workers=workers, gdal=settings)
    return {
        **_histcalc_row(result, time.perf_counter() - started),
        "note": "bincount per 64 Ki px slice + GDAL_CACHEMAX=64 (monkeypatched in the benchmark)",
    }


def histcalc_spark(files: Sequence[str], workers: int, bbox: Sequence[float] | None) -> list[dict[str, Any]]:
    """On one fresh local[N] session: the bbox job with cold Python workers, the full job, the bbox job again.

    The first job pays for starting Spark's Python workers; timing the full job second keeps that
    cost out of its throughput, and reports it (cold bbox job - warm bbox job) as ``warmup_s``.
    """
    from histcalc import AOI, compute_histogram
    from histcalc.engines import spark as spark_engine

    scenes = _scenes(files)
    aoi = AOI.from_bbox(tuple(bbox or SEED_BBOX))  # type: ignore[arg-type]
    started = time.perf_counter()
    session = spark_engine.session(f"local[{workers}]", app_name="histcalc-bench")
    session_s = time.perf_counter() - started

    def job(area: Any) -> dict[str, Any]:
        cpu0, t0 = _tree_cpu(), time.perf_counter()
        result = compute_histogram(scenes, aoi=area, engine="spark", spark=session)
        seconds, cpu1 = time.perf_counter() - t0, _tree_cpu()
        row = _histcalc_row(result, seconds)
        row["cpu_s"] = sum(cpu1.values()) - sum(cpu0.values())
        row["jvm_cpu_s"] = cpu1["jvm"] - cpu0["jvm"]
        return row

    try:
        cold = job(aoi)
        full = job(None)
        small = job(aoi)
    finally:
        session.stop()
    warmup = {"session_s": session_s, "warmup_s": max(0.0, cold["seconds"] - small["seconds"])}
    return [{**full, "part": "full", **warmup}, {**small, "part": "bbox", **warmup}]


def _tree_cpu() -> dict[str, float]:
    """CPU seconds (user + system) so far of this process's tree, JVM and Python processes apart."""
    from procmon import _descendants

    tick = os.sysconf("SC_CLK_TCK")
    out = {"jvm": 0.0, "python": 0.0}
    for pid in _descendants(os.getpid()) | {os.getpid()}:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
            command = open(f"/proc/{pid}/cmdline").read().split("\0", 1)[0]  # noqa: SIM115
        except OSError:
            continue
        kind = "jvm" if command.endswith("java") else "python"
        out[kind] += (int(fields[11]) + int(fields[12])) / tick
    return out


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

    with rasterio.open(files[0]) as src:
        rows = min(src.height, 2048)
        band = src.read(1, window=Window(0, 0, src.width, rows))
        width, pixels = src.width, src.width * src.height
        band_rows = max(src.block_shapes[0][0], (8 * 1024 * 1024 // width) // 512 * 512)
    flat = band.ravel()

    def chunked(n: int) -> Callable[[], Any]:
        def run() -> Any:
            total = np.zeros(256, dtype=np.int64)
            for i in range(0, flat.size, n):
                total += np.bincount(flat[i : i + n], minlength=256)
            return total

        return run

    candidates = {
        "np.histogram(bins=256) (classic)": lambda: np.histogram(flat, bins=256),
        f"np.bincount per {band_rows}-row band (histcalc now)": chunked(band_rows * width),
        "np.bincount per 64 Ki px slice": chunked(65536),
    }
    rows_out = []
    for name, fn in candidates.items():
        best = min(_timed(fn) for _ in range(3))
        rows_out.append({"kernel": name, "ns_per_px": best / flat.size * 1e9})
    decode_s = min(_timed(lambda: _decode_part(files[0], 0, 1)) for _ in range(2))
    small_cache_s = min(_timed(lambda: _decode_part(files[0], 0, 1, None, 64)) for _ in range(2))
    rows_out.append(
        {"kernel": "rasterio decode, one read per block row (for scale)", "ns_per_px": decode_s / pixels * 1e9}
    )
    rows_out.append({"kernel": "the same with GDAL_CACHEMAX=64 MB", "ns_per_px": small_cache_s / pixels * 1e9})
    return rows_out


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


METHODS: dict[str, Callable[..., Any]] = {
    "decode": decode,
    "decode_small_cache": decode_small_cache,
    "histcalc_patched": histcalc_patched,
    "classic": classic,
    "histcalc_local": histcalc_local,
    "histcalc_spark": histcalc_spark,
    "dask": dask_rioxarray,
    "gdalinfo": gdalinfo,
    "kernels": kernels,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("method", choices=sorted(METHODS))
    parser.add_argument("files", nargs="+")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--bbox", type=lambda s: tuple(float(v) for v in s.split(",")), default=None)
    args = parser.parse_args(argv)
    cpu_before = _cpu_seconds()
    out = METHODS[args.method](args.files, args.workers, args.bbox)
    cpu_s = _cpu_seconds() - cpu_before
    rows = out if isinstance(out, list) else [out]
    for row in rows:
        # CPU of this process and its waited-for children (pool workers, gdalinfo)
        if args.method != "histcalc_spark":  # Spark jobs measure their own process tree
            row["cpu_s"] = cpu_s
        row["self_peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        row["children_peak_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    print("BENCH-RESULT " + json.dumps(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
