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
def count_zones(
    layers, rowmap, data, counts, tallies, excess, lo, nodata_dn,
    inside, valid, classes, dropped, use_inside, use_valid, use_quality, in_range,
):  # fmt: skip
    """(zone row, DN) counts of every label layer in one pass.

    ``layers[l, i]`` is pixel ``i``'s label in layer ``l`` (0: no zone), ``rowmap[label]`` its row in
    ``counts``/``tallies``. A pixel in k > 1 zones adds k - 1 to ``excess[dn - lo]`` (or to the excess
    nodata/masked tallies): the union of the zones is their sum less the excess. Returns (label pixels
    summed over the layers, excess pixels, excess nodata by mask band, excess masked); the first is -1
    when a label lies outside ``rowmap``. With ``in_range`` the caller vouches that every label indexes
    ``rowmap`` (a row map as long as the labels' type has values): the unmasked path checks none.
    """
    if layers.shape[0] == 1 and in_range and not (use_inside or use_valid or use_quality):
        return _count_one_layer_plain(layers[0], rowmap, data, counts, lo)
    if layers.shape[0] == 1:
        return _count_one_layer(
            layers[0], rowmap, data, counts, tallies, lo, nodata_dn,
            inside, valid, classes, dropped, use_inside, use_valid, use_quality,
        )  # fmt: skip
    out = np.zeros(4, dtype=np.int64)
    size = rowmap.size
    for i in range(data.size):
        if use_inside and not inside[i]:
            continue
        v = data[i]
        kind = 0  # the pixel's class, once it is in a zone: 0 counted, 2 nodata by mask band, 3 masked
        if use_valid and not valid[i]:
            kind = 2
        elif use_quality and dropped[classes[i]] and v != nodata_dn:
            kind = 3
        hits = 0
        for layer in range(layers.shape[0]):
            z = layers[layer, i]
            if z == 0:
                continue
            if z < 0 or z >= size:
                out[0] = -1
                return out
            hits += 1
            r = np.uintp(rowmap[z])
            if kind == 2:
                tallies[r, 0] += 1
            elif kind == 3:
                tallies[r, 1] += 1
            else:
                counts[r, np.uintp(v - lo)] += 1
        out[0] += hits
        if hits > 1:
            out[1] += hits - 1
            if kind == 0:
                excess[np.uintp(v - lo)] += hits - 1
            else:
                out[kind] += hits - 1
    return out


@njit(nogil=True, cache=True)
def _count_one_layer_plain(labels, rowmap, data, counts, lo):
    """:func:`count_zones` for one layer of labels in range and no mask: the hot path, in a loop of its own.

    LLVM does not take the flags' tests out of :func:`_count_one_layer`'s loop, and the label check costs
    too: 100,000 parcels on a tile, 52 ms a date here against 65 ms there.
    """
    out = np.zeros(4, dtype=np.int64)
    pixels = 0
    for i in range(data.size):
        z = labels[i]
        if z == 0:
            continue
        pixels += 1
        counts[np.uintp(rowmap[z]), np.uintp(data[i] - lo)] += 1
    out[0] = pixels
    return out


@njit(nogil=True, cache=True)
def _count_one_layer(
    labels, rowmap, data, counts, tallies, lo, nodata_dn,
    inside, valid, classes, dropped, use_inside, use_valid, use_quality,
):  # fmt: skip
    """:func:`count_zones` for one layer (zones that do not overlap: no excess), with masks.

    The mask tests are written out rather than taken from ``_kept``: with ``tallies[row, kind - 1]``
    LLVM made this loop 15 ns/px instead of ~2.3.
    """
    out = np.zeros(4, dtype=np.int64)
    size = rowmap.size
    pixels = 0  # a scalar, not an array cell, so that LLVM keeps it in a register
    for i in range(data.size):
        z = labels[i]
        if z == 0 or (use_inside and not inside[i]):
            continue
        if z < 0 or z >= size:
            out[0] = -1
            return out
        v = data[i]
        r = np.uintp(rowmap[z])
        pixels += 1
        if use_valid and not valid[i]:
            tallies[r, 0] += 1
        elif use_quality and dropped[classes[i]] and v != nodata_dn:
            tallies[r, 1] += 1
        else:
            counts[r, np.uintp(v - lo)] += 1
    out[0] = pixels
    return out


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
def zone_cells(
    counts, tallies, rows, zone_ids, dn_slots, dn_values, nbins, reset,
    cell_zone, cell_slot, cell_count, n_cells, ints, floats, n_zones, totals,
):  # fmt: skip
    """Append the sparse table of the dense ``rows`` (zones ``zone_ids``) to the cell columns, ``ints``, ``floats``.

    ``counts[row, dn]``, ``tallies[row, (nodata, masked)]``. Appends, from ``n_cells`` and ``n_zones``,
    the cells ``(zone, slot, count)`` and, for each zone seen (a cell, nodata or masked), ``(zone, nodata,
    masked, n, first cell)`` and ``(mean, m2, min, max)``; adds the rows' counts by DN to ``totals[:-2]``
    and their tallies to ``totals[-2:]``. With ``reset``, zeroes the rows as it reads them.
    ``dn_slots`` must not decrease over the DNs it places (the caller checks), so the DNs of one slot
    are adjacent and add up to one cell. Stops before a row that might not fit: returns (rows done,
    n_cells, n_zones).
    """
    dns = counts.shape[1]
    nonzero = np.empty(dns, np.int64)
    p = 0
    while p < len(rows) and n_cells + dns <= cell_zone.size and n_zones < ints.shape[0]:
        r = rows[p]
        m = 0
        for j in range(dns):  # the row's non-zero DNs, without a branch per DN
            nonzero[m] = j
            m += counts[r, j] != 0
        nodata, masked = tallies[r, 0], tallies[r, 1]
        totals[dns] += nodata
        totals[dns + 1] += masked
        first, n, total, vmin, vmax = n_cells, 0, 0.0, np.inf, -np.inf
        last = -2
        for t in range(m):
            j = nonzero[t]
            c = counts[r, j]
            totals[j] += c
            s = dn_slots[j]
            if s < 0:
                nodata += c
                continue
            if s != last:
                cell_zone[n_cells], cell_slot[n_cells], cell_count[n_cells] = zone_ids[p], s, 0
                n_cells += 1
                last = s
            cell_count[n_cells - 1] += c
            if 1 <= s <= nbins:
                v = dn_values[j]
                n += c
                total += v * c
                vmin = min(vmin, v)
                vmax = max(vmax, v)
        mean = total / n if n > 0 else 0.0
        m2 = 0.0
        for t in range(m):
            j = nonzero[t]
            s = dn_slots[j]
            if 1 <= s <= nbins:
                d = dn_values[j] - mean
                m2 += counts[r, j] * d * d
            if reset:
                counts[r, j] = 0
        if reset:
            tallies[r, 0] = tallies[r, 1] = 0
        p += 1
        if n_cells == first and nodata == 0 and masked == 0:
            continue
        ints[n_zones, 0], ints[n_zones, 1], ints[n_zones, 2] = zone_ids[p - 1], nodata, masked
        ints[n_zones, 3], ints[n_zones, 4] = n, first
        floats[n_zones, 0], floats[n_zones, 1], floats[n_zones, 2], floats[n_zones, 3] = mean, m2, vmin, vmax
        n_zones += 1
    return p, n_cells, n_zones


@njit(nogil=True, cache=True)
def gather_runs(columns, starts, lengths, order, out):
    """``out[c]`` = the runs of ``columns[c]`` with run ``order[k]`` (``starts``, ``lengths``) placed k-th
    (``columns``, ``out``: tuples of 1-D arrays).

    ``out`` comes from numpy: its allocator asks for huge pages, numba's does not, and first touching
    60 MB of 4 KB pages cost ~10 ns a cell here.
    """
    n = 0
    for k in range(len(order)):
        s, m = starts[order[k]], lengths[order[k]]
        for c in range(len(columns)):
            out[c][n : n + m] = columns[c][s : s + m]
        n += m


@njit(nogil=True, cache=True)
def pairs_increase(major, minor):
    """Whether the pairs ``(major[i], minor[i])`` strictly increase, in one pass without temporaries."""
    for i in range(1, major.size):
        if major[i] < major[i - 1] or (major[i] == major[i - 1] and minor[i] <= minor[i - 1]):
            return False
    return True


@njit(nogil=True, cache=True)
def zone_cell_stats(first, last, cell_slot, cell_count, nbins, edges, discrete, qs, vmin, vmax, sums, pct):
    """Per zone ``k`` (cells ``first[k]:last[k]``, in slot order): ``sums[k]`` = (below, above, count) and
    ``pct[t, k]`` the ``qs[t]``-th percentile by :meth:`histcalc.histogram.Histogram.percentile`'s rule."""
    for k in range(first.size):
        below = above = count = 0
        for j in range(first[k], last[k]):
            s = cell_slot[j]
            if s == 0:
                below += cell_count[j]
            elif s == nbins + 1:
                above += cell_count[j]
            else:
                count += cell_count[j]
        sums[k, 0], sums[k, 1], sums[k, 2] = below, above, count
        for t in range(qs.size):
            q = qs[t]
            if count == 0:
                pct[t, k] = np.nan
            elif q <= 0:
                pct[t, k] = vmin[k]
            elif q >= 100:
                pct[t, k] = vmax[k]
            else:
                rank = np.ceil(q / 100 * count - 1e-9) if discrete else q / 100 * count
                cum = prior = 0
                j = first[k]
                for j in range(first[k], last[k]):  # the first in-range cell whose cumulative count reaches rank
                    s = cell_slot[j]
                    if 1 <= s <= nbins:
                        prior = cum
                        cum += cell_count[j]
                        if cum >= rank:
                            break
                s = cell_slot[j]
                if discrete:
                    pct[t, k] = (edges[s - 1] + edges[s]) / 2
                else:
                    value = edges[s - 1] + (rank - prior) / cell_count[j] * (edges[s] - edges[s - 1])
                    pct[t, k] = min(max(value, vmin[k]), vmax[k])
