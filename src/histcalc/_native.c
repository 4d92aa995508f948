/*
 * histcalc's counting kernels in C, compiled ahead of time into a plain shared library (no Python
 * API: one file serves every Python version) and called through ctypes, which releases the GIL for
 * the length of a call. histcalc/_native.py binds them and documents each contract; the numpy
 * references in histcalc/kernel.py and histcalc/kernel_float.py are what the tests compare them with.
 *
 * Conventions: arrays are C-contiguous and checked by the caller (no bounds checks here); masks are
 * NULL when unused; a bool or mask band is one byte a pixel (0: false / masked). Every function comes
 * in one copy per element type, made by the macros below: <name>_<data>[_<labels>_<counts>].
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(_WIN32)
#define EXPORT __declspec(dllexport)
#else
#define EXPORT __attribute__((visibility("default")))
#endif

typedef int64_t i64;

/* The interface's version: histcalc/_native.py refuses a library of another one (an editable install whose
 * library was built from older sources). Raise it with every change of a signature or of a contract. */
EXPORT int histcalc_kernels_abi(void) { return 1; }

/* Quality class of pixel i: 8- or 16-bit classes (exactly one of the two is set when used). */
static inline int dropped_at(i64 i, const uint8_t *c8, const uint16_t *c16, const uint8_t *dropped) {
    return dropped[c8 ? c8[i] : c16[i]];
}

/* ---- per-DN counts ------------------------------------------------------------------------------
 * counts[way][v - lo] (ways x ncols, int64), out[3] += (pixels inside, nodata by mask band, masked).
 * The nodata DN is counted in its column whatever its class; it is only spared the quality mask.
 */
#define COUNT_DN(SUFFIX, T)                                                                                 \
    EXPORT void count_dn_##SUFFIX(const T *data, i64 n, i64 *counts, i64 ways, i64 ncols, i64 lo,          \
                                  i64 nodata_dn, const uint8_t *inside, const uint8_t *valid,              \
                                  const uint8_t *c8, const uint16_t *c16, const uint8_t *dropped,          \
                                  i64 *out) {                                                               \
        int quality = dropped != NULL && (c8 != NULL || c16 != NULL);                                       \
        if (inside == NULL && valid == NULL && !quality) {                                                  \
            i64 i = 0;                                                                                      \
            if (ways >= 4) {                                                                                \
                i64 *c0 = counts - lo, *c1 = c0 + ncols, *c2 = c1 + ncols, *c3 = c2 + ncols;                \
                for (; i + 4 <= n; i += 4) {                                                                \
                    c0[data[i]]++;                                                                          \
                    c1[data[i + 1]]++;                                                                      \
                    c2[data[i + 2]]++;                                                                      \
                    c3[data[i + 3]]++;                                                                      \
                }                                                                                           \
            }                                                                                               \
            for (; i < n; i++) counts[(i64)data[i] - lo]++;                                                 \
            out[0] += n;                                                                                    \
            return;                                                                                         \
        }                                                                                                   \
        i64 seen = 0, missing = 0, masked = 0, mask = ways - 1;                                             \
        for (i64 i = 0; i < n; i++) {                                                                       \
            if (inside && !inside[i]) continue;                                                             \
            seen++;                                                                                         \
            T v = data[i];                                                                                  \
            if (valid && !valid[i]) {                                                                       \
                missing++;                                                                                  \
            } else if (quality && (i64)v != nodata_dn && dropped_at(i, c8, c16, dropped)) {                 \
                masked++;                                                                                   \
            } else {                                                                                        \
                counts[(i & mask) * ncols + ((i64)v - lo)]++;                                               \
            }                                                                                               \
        }                                                                                                   \
        out[0] += seen;                                                                                     \
        out[1] += missing;                                                                                  \
        out[2] += masked;                                                                                   \
    }

COUNT_DN(u8, uint8_t)
COUNT_DN(i8, int8_t)
COUNT_DN(u16, uint16_t)
COUNT_DN(i16, int16_t)

/* ---- per-(zone, DN) counts ----------------------------------------------------------------------
 * layers[l * n + i]: pixel i's label in layer l (0: none); rowmap[label] its row of counts (ncols per
 * row, type C) and of tallies (tally_cols per row: nodata by mask band, masked). A pixel in k > 1
 * zones adds k - 1 to excess[v - lo] or to the excess tallies. out[4] = (label pixels over the layers,
 * excess pixels, excess nodata, excess masked); out[0] = -1 when a label lies outside rowmap (then
 * the counts are partly added: the caller raises). in_range: every label indexes rowmap (no checks).
 */
#define COUNT_ZONES(SUFFIX, T, L, C)                                                                        \
    EXPORT void count_zones_##SUFFIX(const L *layers, i64 nlayers, const int32_t *rowmap, i64 nrows,       \
                                     const T *data, i64 n, C *counts, i64 ncols, i64 *tallies,             \
                                     i64 tally_cols, i64 *excess, i64 lo, i64 nodata_dn,                   \
                                     const uint8_t *inside, const uint8_t *valid, const uint8_t *c8,       \
                                     const uint16_t *c16, const uint8_t *dropped, int in_range,            \
                                     i64 *out) {                                                            \
        int quality = dropped != NULL && (c8 != NULL || c16 != NULL);                                       \
        i64 labelled = 0;                                                                                   \
        out[0] = out[1] = out[2] = out[3] = 0;                                                              \
        if (nlayers == 1 && inside == NULL && valid == NULL && !quality) {                                  \
            /* By runs: a zone's pixels come in runs along a row (~14 px for parcels) and the pixels of no  \
             * zone in long ones, skipped 8 bytes of labels at a time. A branch per pixel on its label     \
             * cost more than the counting. */                                                              \
            const i64 per_word = (i64)(sizeof(uint64_t) / sizeof(L));                                        \
            i64 i = 0;                                                                                      \
            while (i < n) {                                                                                 \
                L z = layers[i];                                                                            \
                if (z == 0) {                                                                               \
                    for (i++; i + per_word <= n; i += per_word) {                                           \
                        uint64_t word;                                                                      \
                        memcpy(&word, layers + i, sizeof word);                                             \
                        if (word != 0) break;                                                               \
                    }                                                                                       \
                    continue;                                                                               \
                }                                                                                           \
                if (!in_range && ((i64)z < 0 || (i64)z >= nrows)) { /* checked once per run */              \
                    out[0] = -1;                                                                            \
                    return;                                                                                 \
                }                                                                                           \
                C *row = counts + (i64)rowmap[z] * ncols - lo;                                              \
                i64 j = i;                                                                                  \
                do {                                                                                        \
                    row[data[j]]++;                                                                         \
                    j++;                                                                                    \
                } while (j < n && layers[j] == z);                                                          \
                labelled += j - i;                                                                          \
                i = j;                                                                                      \
            }                                                                                               \
            out[0] = labelled;                                                                              \
            return;                                                                                         \
        }                                                                                                   \
        if (nlayers == 1) {                                                                                 \
            for (i64 i = 0; i < n; i++) {                                                                   \
                L z = layers[i];                                                                            \
                if (z == 0 || (inside && !inside[i])) continue;                                             \
                if ((i64)z < 0 || (i64)z >= nrows) {                                                        \
                    out[0] = -1;                                                                            \
                    return;                                                                                 \
                }                                                                                           \
                T v = data[i];                                                                              \
                i64 r = rowmap[z];                                                                          \
                labelled++;                                                                                 \
                if (valid && !valid[i])                                                                     \
                    tallies[r * tally_cols]++;                                                              \
                else if (quality && (i64)v != nodata_dn && dropped_at(i, c8, c16, dropped))                 \
                    tallies[r * tally_cols + 1]++;                                                          \
                else                                                                                        \
                    counts[r * ncols + ((i64)v - lo)]++;                                                    \
            }                                                                                               \
            out[0] = labelled;                                                                              \
            return;                                                                                         \
        }                                                                                                   \
        i64 extra = 0, extra_missing = 0, extra_masked = 0;                                                 \
        for (i64 i = 0; i < n; i++) {                                                                       \
            if (inside && !inside[i]) continue;                                                             \
            T v = data[i];                                                                                  \
            int kind = 0; /* 0 counted, 1 nodata by mask band, 2 masked */                                  \
            if (valid && !valid[i])                                                                         \
                kind = 1;                                                                                   \
            else if (quality && (i64)v != nodata_dn && dropped_at(i, c8, c16, dropped))                     \
                kind = 2;                                                                                   \
            i64 hits = 0;                                                                                   \
            for (i64 l = 0; l < nlayers; l++) {                                                             \
                L z = layers[l * n + i];                                                                    \
                if (z == 0) continue;                                                                       \
                if ((i64)z < 0 || (i64)z >= nrows) {                                                        \
                    out[0] = -1;                                                                            \
                    return;                                                                                 \
                }                                                                                           \
                hits++;                                                                                     \
                i64 r = rowmap[z];                                                                          \
                if (kind == 0)                                                                              \
                    counts[r * ncols + ((i64)v - lo)]++;                                                    \
                else                                                                                        \
                    tallies[r * tally_cols + kind - 1]++;                                                   \
            }                                                                                               \
            labelled += hits;                                                                               \
            if (hits > 1) {                                                                                 \
                extra += hits - 1;                                                                          \
                if (kind == 0)                                                                              \
                    excess[(i64)v - lo] += hits - 1;                                                        \
                else if (kind == 1)                                                                         \
                    extra_missing += hits - 1;                                                              \
                else                                                                                        \
                    extra_masked += hits - 1;                                                               \
            }                                                                                               \
        }                                                                                                   \
        out[0] = labelled;                                                                                  \
        out[1] = extra;                                                                                     \
        out[2] = extra_missing;                                                                             \
        out[3] = extra_masked;                                                                              \
    }

#define COUNT_ZONES_COUNTS(SUFFIX, T, L)                                                                    \
    COUNT_ZONES(SUFFIX##_u16, T, L, uint16_t)                                                               \
    COUNT_ZONES(SUFFIX##_i32, T, L, int32_t)                                                                \
    COUNT_ZONES(SUFFIX##_i64, T, L, int64_t)
#define COUNT_ZONES_LABELS(SUFFIX, T)                                                                       \
    COUNT_ZONES_COUNTS(SUFFIX##_u8, T, uint8_t)                                                             \
    COUNT_ZONES_COUNTS(SUFFIX##_u16, T, uint16_t)                                                           \
    COUNT_ZONES_COUNTS(SUFFIX##_i32, T, int32_t)

COUNT_ZONES_LABELS(u8, uint8_t)
COUNT_ZONES_LABELS(i8, int8_t)
COUNT_ZONES_LABELS(u16, uint16_t)
COUNT_ZONES_LABELS(i16, int16_t)

/* ---- float counts ---------------------------------------------------------------------------------
 * data * scale + offset into counts on edges[0..nbins] (numpy's rule: edges[k] <= v < edges[k + 1], the
 * last bin closed). ints[6] = (pixels inside, nodata, masked, below, above, counted); floats[5] =
 * (shift, sum(v - shift), sum((v - shift)^2), min, max) with shift the first counted value. Nodata:
 * mask band invalid, NaN, or the raw value nodata (unless nodata is NaN).
 */
static inline i64 bin_of(double v, const double *edges, double first, double last, double norm, i64 nbins,
                         int uniform) {
    if (v == last) return nbins - 1;
    if (uniform) {
        double guess = (v - first) * norm;
        i64 k = guess < 0 ? 0 : guess > (double)(nbins - 1) ? nbins - 1 : (i64)guess;
        while (k > 0 && v < edges[k]) k--;
        while (k < nbins - 1 && v >= edges[k + 1]) k++;
        return k;
    }
    i64 lo = 0, hi = nbins + 1; /* first edge > v (numpy's searchsorted, side right), less one */
    while (lo < hi) {
        i64 mid = lo + (hi - lo) / 2;
        if (edges[mid] <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - 1;
}

#define COUNT_FLOAT(SUFFIX, T)                                                                              \
    EXPORT void count_float_##SUFFIX(const T *data, i64 n, const double *edges, i64 *counts, i64 nbins,    \
                                     double scale, double offset, double nodata, int uniform,              \
                                     const uint8_t *inside, const uint8_t *valid, const uint8_t *c8,       \
                                     const uint16_t *c16, const uint8_t *dropped, i64 *ints,               \
                                     double *floats) {                                                      \
        int quality = dropped != NULL && (c8 != NULL || c16 != NULL);                                       \
        double first = edges[0], last = edges[nbins], norm = (double)nbins / (last - first);               \
        int physical = scale != 1.0 || offset != 0.0, check_nodata = nodata == nodata;                      \
        i64 outside = 0, missing = 0, masked = 0, below = 0, above = 0, counted = 0;                        \
        double shift = 0.0, s1 = 0.0, s2 = 0.0, vmin = INFINITY, vmax = -INFINITY;                          \
        for (i64 i = 0; i < n; i++) {                                                                       \
            if (inside && !inside[i]) {                                                                     \
                outside++;                                                                                  \
                continue;                                                                                   \
            }                                                                                               \
            double raw = (double)data[i];                                                                   \
            if ((valid && !valid[i]) || raw != raw || (check_nodata && raw == nodata)) {                    \
                missing++;                                                                                  \
                continue;                                                                                   \
            }                                                                                               \
            if (quality && dropped_at(i, c8, c16, dropped)) {                                               \
                masked++;                                                                                   \
                continue;                                                                                   \
            }                                                                                               \
            double v = physical ? raw * scale + offset : raw;                                               \
            if (v < first) {                                                                                \
                below++;                                                                                    \
            } else if (v > last) {                                                                          \
                above++;                                                                                    \
            } else {                                                                                        \
                counts[bin_of(v, edges, first, last, norm, nbins, uniform)]++;                              \
                if (counted == 0) shift = v;                                                                \
                counted++;                                                                                  \
                double d = v - shift;                                                                       \
                s1 += d;                                                                                    \
                s2 += d * d;                                                                                \
                vmin = v < vmin ? v : vmin;                                                                 \
                vmax = v > vmax ? v : vmax;                                                                 \
            }                                                                                               \
        }                                                                                                   \
        ints[0] = n - outside;                                                                              \
        ints[1] = missing;                                                                                  \
        ints[2] = masked;                                                                                   \
        ints[3] = below;                                                                                    \
        ints[4] = above;                                                                                    \
        ints[5] = counted;                                                                                  \
        floats[0] = shift;                                                                                  \
        floats[1] = s1;                                                                                     \
        floats[2] = s2;                                                                                     \
        floats[3] = vmin;                                                                                   \
        floats[4] = vmax;                                                                                   \
    }

COUNT_FLOAT(f32, float)
COUNT_FLOAT(f64, double)
COUNT_FLOAT(i32, int32_t)
COUNT_FLOAT(u32, uint32_t)
COUNT_FLOAT(i64, int64_t)
COUNT_FLOAT(u64, uint64_t)

/* ---- dense zone rows to sparse cells -------------------------------------------------------------
 * Appends the cells (zone, slot, count) of rows[p] (zone zone_ids[p]) of counts (ncols DNs per row)
 * from *n_cells, and for each zone seen (a cell, nodata or masked) ints[5] = (zone, nodata, masked, n,
 * first cell) and floats[4] = (mean, m2, min, max) from *n_zones; adds the counts by DN to
 * totals[0..ncols) and the tallies to totals[ncols], totals[ncols + 1]. dn_slots[j] < 0: the DN is
 * nodata; slots must not decrease over the placed DNs. With reset, zeroes the rows it reads. Stops
 * before a row that might not fit (cap_cells, cap_zones); returns the rows done.
 */
#define ZONE_CELLS(SUFFIX, C)                                                                               \
    EXPORT i64 zone_cells_##SUFFIX(C *counts, i64 ncols, i64 *tallies, const i64 *rows, i64 nrows,         \
                                   const i64 *zone_ids, const i64 *dn_slots, const double *dn_values,      \
                                   i64 nbins, int reset, i64 *cell_zone, i64 *cell_slot, i64 *cell_count,  \
                                   i64 cap_cells, i64 *n_cells_io, i64 *ints, double *floats,              \
                                   i64 cap_zones, i64 *n_zones_io, i64 *totals, i64 *nonzero) {            \
        i64 n_cells = *n_cells_io, n_zones = *n_zones_io, p = 0;                                            \
        while (p < nrows && n_cells + ncols <= cap_cells && n_zones < cap_zones) {                          \
            C *row = counts + rows[p] * ncols;                                                              \
            i64 *tally = tallies + rows[p] * 2;                                                             \
            i64 m = 0, j = 0;                                                                               \
            /* the row's non-zero DNs: 8 bytes of zeros skipped at once (a zone holds a few dozen DNs), */  \
            /* then without a branch per DN */                                                              \
            for (const i64 per_word = (i64)(sizeof(uint64_t) / sizeof(C)); j + per_word <= ncols; j += per_word) { \
                uint64_t word;                                                                              \
                memcpy(&word, row + j, sizeof word);                                                        \
                if (word == 0) continue;                                                                    \
                for (i64 q = j; q < j + per_word; q++) {                                                    \
                    nonzero[m] = q;                                                                         \
                    m += row[q] != 0;                                                                       \
                }                                                                                           \
            }                                                                                               \
            for (; j < ncols; j++) {                                                                        \
                nonzero[m] = j;                                                                             \
                m += row[j] != 0;                                                                           \
            }                                                                                               \
            i64 nodata = tally[0], masked = tally[1];                                                       \
            totals[ncols] += nodata;                                                                        \
            totals[ncols + 1] += masked;                                                                    \
            i64 first = n_cells, counted = 0, last = -2;                                                    \
            double total = 0.0, vmin = INFINITY, vmax = -INFINITY;                                          \
            for (i64 t = 0; t < m; t++) {                                                                   \
                i64 j = nonzero[t], c = (i64)row[j], s = dn_slots[j];                                       \
                totals[j] += c;                                                                             \
                if (s < 0) {                                                                                \
                    nodata += c;                                                                            \
                    continue;                                                                               \
                }                                                                                           \
                if (s != last) {                                                                            \
                    cell_zone[n_cells] = zone_ids[p];                                                       \
                    cell_slot[n_cells] = s;                                                                 \
                    cell_count[n_cells] = 0;                                                                \
                    n_cells++;                                                                              \
                    last = s;                                                                               \
                }                                                                                           \
                cell_count[n_cells - 1] += c;                                                               \
                if (1 <= s && s <= nbins) {                                                                 \
                    double v = dn_values[j];                                                                \
                    counted += c;                                                                           \
                    total += v * (double)c;                                                                 \
                    if (v < vmin) vmin = v;                                                                 \
                    if (v > vmax) vmax = v;                                                                 \
                }                                                                                           \
            }                                                                                               \
            double mean = counted > 0 ? total / (double)counted : 0.0, m2 = 0.0;                            \
            for (i64 t = 0; t < m; t++) {                                                                   \
                i64 j = nonzero[t], s = dn_slots[j];                                                        \
                if (1 <= s && s <= nbins) {                                                                 \
                    double d = dn_values[j] - mean;                                                         \
                    m2 += (double)row[j] * d * d;                                                           \
                }                                                                                           \
                if (reset) row[j] = 0;                                                                      \
            }                                                                                               \
            if (reset) tally[0] = tally[1] = 0;                                                             \
            p++;                                                                                            \
            if (n_cells == first && nodata == 0 && masked == 0) continue;                                   \
            i64 *out = ints + n_zones * 5;                                                                  \
            double *fout = floats + n_zones * 4;                                                            \
            out[0] = zone_ids[p - 1];                                                                       \
            out[1] = nodata;                                                                                \
            out[2] = masked;                                                                                \
            out[3] = counted;                                                                               \
            out[4] = first;                                                                                 \
            fout[0] = mean;                                                                                 \
            fout[1] = m2;                                                                                   \
            fout[2] = vmin;                                                                                 \
            fout[3] = vmax;                                                                                 \
            n_zones++;                                                                                      \
        }                                                                                                   \
        *n_cells_io = n_cells;                                                                              \
        *n_zones_io = n_zones;                                                                              \
        return p;                                                                                           \
    }

ZONE_CELLS(u16, uint16_t)
ZONE_CELLS(i32, int32_t)
ZONE_CELLS(i64, int64_t)

/* ---- small passes over tables ---------------------------------------------------------------------*/

/* Whether the pairs (major[i], minor[i]) strictly increase. */
EXPORT int pairs_increase_i64(const i64 *major, const i64 *minor, i64 n) {
    for (i64 i = 1; i < n; i++)
        if (major[i] < major[i - 1] || (major[i] == major[i - 1] && minor[i] <= minor[i - 1])) return 0;
    return 1;
}

/* dst = the runs src[starts[r] : starts[r] + lengths[r]] (elements of itemsize bytes) for r in order. */
EXPORT void gather_runs(const char *src, char *dst, i64 itemsize, const i64 *starts, const i64 *lengths,
                        const i64 *order, i64 norder) {
    for (i64 k = 0; k < norder; k++) {
        i64 r = order[k], bytes = lengths[r] * itemsize;
        memcpy(dst, src + starts[r] * itemsize, (size_t)bytes);
        dst += bytes;
    }
}

/* Per zone k (cells first[k]..last[k], in slot order): sums[k * 3] = (below, above, count) and
 * pct[t * nzones + k] its qs[t]-th percentile by Histogram.percentile's rule (discrete: the middle of
 * the bin of rank ceil(q/100 * count); else interpolated within the bin, clipped to min..max). */
EXPORT void zone_cell_stats(const i64 *first, const i64 *last, i64 nzones, const i64 *cell_slot,
                            const i64 *cell_count, i64 nbins, const double *edges, int discrete,
                            const double *qs, i64 nqs, const double *vmin, const double *vmax, i64 *sums,
                            double *pct) {
    for (i64 k = 0; k < nzones; k++) {
        i64 below = 0, above = 0, count = 0;
        for (i64 j = first[k]; j < last[k]; j++) {
            i64 s = cell_slot[j];
            if (s == 0)
                below += cell_count[j];
            else if (s == nbins + 1)
                above += cell_count[j];
            else
                count += cell_count[j];
        }
        sums[k * 3] = below;
        sums[k * 3 + 1] = above;
        sums[k * 3 + 2] = count;
        for (i64 t = 0; t < nqs; t++) {
            double q = qs[t], *cell = pct + t * nzones + k;
            if (count == 0) {
                *cell = NAN;
            } else if (q <= 0) {
                *cell = vmin[k];
            } else if (q >= 100) {
                *cell = vmax[k];
            } else {
                double rank = discrete ? ceil(q / 100 * (double)count - 1e-9) : q / 100 * (double)count;
                i64 cum = 0, prior = 0, j = first[k];
                for (j = first[k]; j < last[k]; j++) {
                    i64 s = cell_slot[j];
                    if (1 <= s && s <= nbins) {
                        prior = cum;
                        cum += cell_count[j];
                        if ((double)cum >= rank) break;
                    }
                }
                if (j == last[k]) j--; /* as Python's loop variable: the last cell looked at */
                i64 s = cell_slot[j];
                if (discrete) {
                    *cell = (edges[s - 1] + edges[s]) / 2;
                } else {
                    double value =
                        edges[s - 1] + (rank - (double)prior) / (double)cell_count[j] * (edges[s] - edges[s - 1]);
                    *cell = value < vmin[k] ? vmin[k] : value > vmax[k] ? vmax[k] : value;
                }
            }
        }
    }
}
