/* Passes over zone tables: dense rows to sparse cells, sorted-pair checks, run gathering, percentiles.
 * See _native.h. */
#include "_native.h"

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
