/* Counting a decoded block: per DN, per (zone, DN), and float values into bins. See _native.h. */
#include "_native.h"

/* The interface's version: histcalc/_native.py refuses a library of another one (an editable install whose
 * library was built from older sources). Raise it with every change of a signature or of a contract. */
EXPORT int histcalc_kernels_abi(void) { return 2; }

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
        if ((inside == NULL) != (valid == NULL) && !quality && ways >= 4) {                                 \
            /* One mask alone, the AOI's or the mask band (GDAL's 0 / 255): each pixel adds its flag (0 or \
             * 1) without a branch, into the 4 interleaved histograms (0.76 -> 0.44 and 0.89 -> 0.46        \
             * ns/px). With both masks the branchy loop below skips the outside faster. */                 \
            const uint8_t *flag = inside != NULL ? inside : valid;                                          \
            i64 kept = 0, i = 0;                                                                            \
            i64 *c0 = counts - lo, *c1 = c0 + ncols, *c2 = c1 + ncols, *c3 = c2 + ncols;                    \
            for (; i + 4 <= n; i += 4) {                                                                    \
                i64 a = flag[i] != 0, b = flag[i + 1] != 0, c = flag[i + 2] != 0, d = flag[i + 3] != 0;     \
                c0[data[i]] += a;                                                                           \
                c1[data[i + 1]] += b;                                                                       \
                c2[data[i + 2]] += c;                                                                       \
                c3[data[i + 3]] += d;                                                                       \
                kept += a + b + c + d;                                                                      \
            }                                                                                               \
            for (; i < n; i++) {                                                                            \
                i64 a = flag[i] != 0;                                                                       \
                c0[data[i]] += a;                                                                           \
                kept += a;                                                                                  \
            }                                                                                               \
            if (inside != NULL) {                                                                           \
                out[0] += kept; /* pixels inside */                                                         \
            } else {                                                                                        \
                out[0] += n;                                                                                \
                out[1] += n - kept; /* nodata by mask band */                                               \
            }                                                                                               \
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
        if (inside == NULL && valid == NULL && !quality) {                                                  \
            /* Branch-free through a table of row pointers (label 0: a scratch row), 8 pixels at a time,    \
             * blocks of no zone skipped, and the row a pixel PREFETCH_AHEAD further on will need fetched   \
             * now: the rows of ~20,000 parcels outgrow the caches, and a branch at every run's end (~14    \
             * px) cost more than the counting. Several layers (--all-touched, overlapping zones) go one    \
             * after the other, each pixel's zones tallied in hits[] for the excess at the end. */          \
            C **row_of = (C **)malloc((size_t)nrows * sizeof(C *));                                         \
            C *scratch = (C *)calloc((size_t)ncols, sizeof(C));                                             \
            uint8_t *hits = nlayers > 1 ? (uint8_t *)calloc((size_t)n + 8, 1) : NULL;                       \
            if (row_of != NULL && scratch != NULL && (nlayers == 1 || hits != NULL) && nlayers < 255) {     \
                row_of[0] = scratch - lo;                                                                   \
                for (i64 z = 1; z < nrows; z++) row_of[z] = counts + (i64)rowmap[z] * ncols - lo;           \
                i64 bad = 0;                                                                                \
                for (i64 l = 0; l < nlayers && !bad; l++) {                                                 \
                    const L *layer = layers + l * n;                                                        \
                    i64 i = 0;                                                                              \
                    for (; i + 8 <= n && !bad; i += 8) {                                                    \
                        const L *b = layer + i;                                                             \
                        L any = 0;                                                                          \
                        for (int k = 0; k < 8; k++) any |= b[k];                                            \
                        if (any == 0) continue;                                                             \
                        if (!in_range)                                                                      \
                            for (int k = 0; k < 8; k++) bad |= (uint64_t)(i64)b[k] >= (uint64_t)nrows;      \
                        if (bad) break;                                                                     \
                        if (i + PREFETCH_AHEAD + 8 <= n) {                                                  \
                            for (int k = PREFETCH_AHEAD; k < PREFETCH_AHEAD + 8; k += 4) {                  \
                                i64 z = (i64)layer[i + k];                                                  \
                                z = (uint64_t)z < (uint64_t)nrows ? z : 0;                                  \
                                prefetch_for_write(row_of[z] + data[i + k]);                                \
                            }                                                                               \
                        }                                                                                   \
                        for (int k = 0; k < 8; k++) {                                                       \
                            row_of[b[k]][data[i + k]]++;                                                    \
                            labelled += b[k] != 0;                                                          \
                        }                                                                                   \
                        if (hits != NULL)                                                                   \
                            for (int k = 0; k < 8; k++) hits[i + k] += b[k] != 0;                           \
                    }                                                                                       \
                    for (; i < n && !bad; i++) {                                                            \
                        bad = (uint64_t)(i64)layer[i] >= (uint64_t)nrows;                                   \
                        if (bad) break;                                                                     \
                        row_of[layer[i]][data[i]]++;                                                        \
                        labelled += layer[i] != 0;                                                          \
                        if (hits != NULL) hits[i] += layer[i] != 0;                                         \
                    }                                                                                       \
                }                                                                                           \
                i64 extra = 0;                                                                              \
                if (hits != NULL && !bad) {                                                                 \
                    for (i64 i = 0; i < n; i += 8) { /* pixels in several zones: 8 at a time, most in one */\
                        uint64_t word;                                                                      \
                        memcpy(&word, hits + i, 8);                                                         \
                        if ((word & 0xFEFEFEFEFEFEFEFEull) == 0) continue; /* every byte 0 or 1 */          \
                        for (i64 k = i; k < i + 8 && k < n; k++)                                            \
                            if (hits[k] > 1) {                                                              \
                                excess[(i64)data[k] - lo] += hits[k] - 1;                                   \
                                extra += hits[k] - 1;                                                       \
                            }                                                                               \
                    }                                                                                       \
                }                                                                                           \
                free(row_of);                                                                               \
                free(scratch);                                                                              \
                free(hits);                                                                                 \
                out[0] = bad ? -1 : labelled; /* a label outside rowmap: the caller raises */               \
                out[1] = bad ? 0 : extra;                                                                   \
                return;                                                                                     \
            }                                                                                               \
            free(row_of); /* out of memory: the loops below */                                              \
            free(scratch);                                                                                  \
            free(hits);                                                                                     \
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
