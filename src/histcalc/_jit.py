"""The numba kernels behind :mod:`histcalc.kernel` (which documents the contract and holds the references).

Kept apart so that ``HISTCALC_KERNEL=numpy`` never imports numba. ``nogil``: a reader thread can
decode the next block while a kernel counts this one; ``cache``: compiled once per machine (the
cache folder is set by :func:`histcalc.kernel_loading.ensure_cache_dir` before numba reads its config).
Masks are always arrays (empty when unused) plus a flag, so each data dtype compiles once. Arrays
are 1-D (the caller passes a contiguous block flattened, or row by row): indexing a flat array
measured 0.31 ns/px against 0.50 ns/px with 2-D indexing.
"""

# mypy: ignore-errors
from __future__ import annotations

from histcalc.kernel_loading import ensure_cache_dir

ensure_cache_dir()

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

if not numba.config.CACHE_DIR:  # numba was imported (its config read) before histcalc set the variable
    numba.config.CACHE_DIR = ensure_cache_dir()


@njit(nogil=True, cache=True, inline="always")
def _kept(i, v, nodata_dn, valid, classes, dropped, use_valid, use_quality):
    """0 counted, 1 nodata by mask band, 2 masked by quality (the nodata DN is never masked)."""
    if use_valid and not valid[i]:
        return 1
    if use_quality and dropped[classes[i]] and v != nodata_dn:
        return 2
    return 0


@njit(nogil=True, cache=True)
def count_dn(data, counts, lo, nodata_dn, inside, valid, classes, dropped, use_inside, use_valid, use_quality):
    """Per-DN counts into ``counts[way, dn - lo]``; returns (pixels inside, nodata by mask band, masked)."""
    out = np.zeros(3, dtype=np.int64)
    ways = counts.shape[0]
    if not (use_inside or use_valid or use_quality):
        _count_plain(data, counts, lo)
        out[0] = data.size
        return out
    for i in range(data.size):
        if use_inside and not inside[i]:
            continue
        out[0] += 1
        v = data[i]
        kind = _kept(i, v, nodata_dn, valid, classes, dropped, use_valid, use_quality)
        if kind == 0:
            counts[i & (ways - 1), np.uintp(v - lo)] += 1
        else:
            out[kind] += 1
    return out


@njit(nogil=True, cache=True)
def _count_plain(data, counts, lo):
    """The hot path (no masks): consecutive pixels go to interleaved sub-histograms when ways >= 4."""
    n = data.size
    if counts.shape[0] >= 4:
        i = 0
        while i + 4 <= n:
            counts[0, np.uintp(data[i] - lo)] += 1
            counts[1, np.uintp(data[i + 1] - lo)] += 1
            counts[2, np.uintp(data[i + 2] - lo)] += 1
            counts[3, np.uintp(data[i + 3] - lo)] += 1
            i += 4
        while i < n:
            counts[0, np.uintp(data[i] - lo)] += 1
            i += 1
        return
    for i in range(n):
        counts[0, np.uintp(data[i] - lo)] += 1


@njit(nogil=True, cache=True)
def count_zonal(labels, data, counts, tallies, lo, nodata_dn, valid, classes, dropped, use_valid, use_quality):
    """(label, DN) counts and per-label (nodata by mask band, masked); True when a label is out of range.

    No per-pixel tally of pixels per label: that increment on a run of one label is a dependency
    chain (it made the kernel ~1.5 x slower); the caller derives it from the counts.
    """
    zones = counts.shape[0]
    for i in range(data.size):
        z = labels[i]
        if z < 0 or z >= zones:
            return True
        v = data[i]
        kind = _kept(i, v, nodata_dn, valid, classes, dropped, use_valid, use_quality)
        if kind == 0:
            counts[np.uintp(z), np.uintp(v - lo)] += 1
        else:
            tallies[np.uintp(z), kind - 1] += 1
    return False


@njit(nogil=True, cache=True, inline="always")
def _bin_of(v, edges, first, last, norm, nbins, uniform):
    """numpy's bin of ``first <= v <= last``: edges[i] <= v < edges[i+1], the last bin closed."""
    if v == last:
        return nbins - 1
    if uniform:
        i = min(max(int((v - first) * norm), 0), nbins - 1)
        while i > 0 and v < edges[i]:
            i -= 1
        while i < nbins - 1 and v >= edges[i + 1]:
            i += 1
        return i
    return np.searchsorted(edges, v, side="right") - 1


@njit(nogil=True, cache=True)
def count_float(
    data, edges, counts, scale, offset, nodata, uniform,
    inside, valid, classes, dropped, use_inside, use_valid, use_quality,
):  # fmt: skip
    """Per-bin counts; returns (pixels, nodata, masked, below, above, n) and (shift, s1, s2, vmin, vmax).

    ``shift`` is the first counted value, ``s1``/``s2`` the sums of (v - shift) and its square.
    """
    nbins = counts.size
    first, last = edges[0], edges[nbins]
    norm = nbins / (last - first)
    physical = scale != 1.0 or offset != 0.0
    check_nodata = nodata == nodata
    # scalars, not array cells, so that LLVM keeps the tallies in registers
    outside = missing = masked = below = above = n = 0
    shift = s1 = s2 = 0.0
    vmin, vmax = np.inf, -np.inf
    for i in range(data.size):
        if use_inside and not inside[i]:
            outside += 1
            continue
        raw = data[i]
        if (use_valid and not valid[i]) or raw != raw or (check_nodata and raw == nodata):
            missing += 1
            continue
        if use_quality and dropped[classes[i]]:
            masked += 1
            continue
        v = np.float64(raw)
        if physical:
            v = v * scale + offset
        if v < first:
            below += 1
        elif v > last:
            above += 1
        else:
            counts[_bin_of(v, edges, first, last, norm, nbins, uniform)] += 1
            if n == 0:
                shift = v
            n += 1
            d = v - shift
            s1 += d
            s2 += d * d
            vmin = min(vmin, v)
            vmax = max(vmax, v)
    ints = np.array([data.size - outside, missing, masked, below, above, n], dtype=np.int64)
    return ints, np.array([shift, s1, s2, vmin, vmax])


@njit(nogil=True, cache=True)
def zone_cells(counts, tallies, dn_slots, dn_values, nbins):
    """A task's sparse zone table from dense ``counts[label, dn]`` in two passes (sizes, then fill).

    Row ``r + 1`` of ``counts``/``tallies`` is the subset's zone ``r``; ``dn_slots`` must not decrease
    over the DNs it places (the caller checks), so the DNs of one slot are adjacent and their counts
    add up to one cell. Returns the cells (row, slot, count) and the seen rows with their nodata, masked,
    n, mean, m2, min and max.
    """
    zones, dns = counts.shape[0] - 1, counts.shape[1]
    n_cells = n_seen = 0
    for r in range(zones):
        seen = tallies[r + 1, 0] > 0 or tallies[r + 1, 1] > 0
        last = -2
        for j in range(dns):
            if counts[r + 1, j] == 0:
                continue
            seen = True
            s = dn_slots[j]
            if s >= 0 and s != last:
                n_cells += 1
                last = s
        n_seen += seen
    cell_row = np.empty(n_cells, np.int64)
    cell_slot = np.empty(n_cells, np.int64)
    cell_count = np.zeros(n_cells, np.int64)
    rows = np.empty(n_seen, np.int64)
    ints = np.zeros((n_seen, 3), np.int64)  # nodata, masked, n
    floats = np.empty((n_seen, 4), np.float64)  # mean, m2, min, max
    k = q = 0
    for r in range(zones):
        nodata, masked = tallies[r + 1, 0], tallies[r + 1, 1]
        first, n, total, vmin, vmax = k, 0, 0.0, np.inf, -np.inf
        last = -2
        for j in range(dns):
            c = counts[r + 1, j]
            if c == 0:
                continue
            s = dn_slots[j]
            if s < 0:
                nodata += c
                continue
            if s != last:
                cell_row[k], cell_slot[k] = r, s
                k += 1
                last = s
            cell_count[k - 1] += c
            if 1 <= s <= nbins:
                v = dn_values[j]
                n += c
                total += v * c
                vmin = min(vmin, v)
                vmax = max(vmax, v)
        if k == first and nodata == 0 and masked == 0:
            continue
        mean = total / n if n > 0 else 0.0
        m2 = 0.0
        for j in range(dns):
            c = counts[r + 1, j]
            s = dn_slots[j]
            if c != 0 and 1 <= s <= nbins:
                d = dn_values[j] - mean
                m2 += c * d * d
        rows[q] = r
        ints[q, 0], ints[q, 1], ints[q, 2] = nodata, masked, n
        floats[q, 0], floats[q, 1], floats[q, 2], floats[q, 3] = mean, m2, vmin, vmax
        q += 1
    return cell_row, cell_slot, cell_count, rows, ints, floats


@njit(nogil=True, cache=True)
def merge_runs(key, count, bounds):
    """Runs ``[bounds[i], bounds[i + 1])`` of ``key``, each ascending, merged into one ascending run with
    the counts of equal keys added up (a k-way merge: the smallest head of the k runs, k is small)."""
    k = len(bounds) - 1
    at = bounds[:-1].copy()
    out_key = np.empty(len(key), np.int64)
    out_count = np.empty(len(key), np.int64)
    n = 0
    while True:
        best = -1
        smallest = 0
        for r in range(k):
            if at[r] < bounds[r + 1] and (best < 0 or key[at[r]] < smallest):
                best = r
                smallest = key[at[r]]
        if best < 0:
            break
        c = count[at[best]]
        at[best] += 1
        if n > 0 and out_key[n - 1] == smallest:
            out_count[n - 1] += c
        else:
            out_key[n] = smallest
            out_count[n] = c
            n += 1
    return out_key[:n], out_count[:n]
