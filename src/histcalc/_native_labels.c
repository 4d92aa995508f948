/* Zone labels of a raster window: runs of pixel centres inside each zone, and runs burnt into label rasters.
 * The numpy originals and the rules are in histcalc/label_runs.py and histcalc/label_burn.py; these compute
 * the very same numbers. */
#include "_native.h"

/* ---- runs of pixel centres ---------------------------------------------------------------------
 * Edge e (pixel space, lower end first, py0 < py1) crosses the centre lines of rows first[e] ..
 * first[e] + count[e] - 1 at x = ((row + 0.5 - py0) * dx) / dy + px0, evaluated in that order (as
 * label_runs._x_at does, so two zones sharing an edge get the same bits); the crossing's column is
 * clip(ceil(x - 0.5), 0, width). Edges come grouped by zone, zones increasing. Per zone, the crossings are
 * bucketed by row, sorted by column within a row and paired (even-odd): each pair [enter, leave) with
 * leave > enter is a run. Runs come out by zone, then row, then column, as label_runs.centre_runs sorts them.
 * Returns the number of runs; -1 when a row has an odd number of crossings of a zone (a ring that is not
 * closed), -2 when the edges are not grouped by increasing zone, -3 when out of memory.
 */
typedef struct {
    i64 *rows_at; /* per row of the zone's span: crossings so far, then bucket starts */
    i64 *cols;    /* the zone's crossings' columns, bucketed by row */
    i64 span_cap, cross_cap;
} Scratch;

static int reserve(Scratch *s, i64 span, i64 crossings) {
    if (span + 1 > s->span_cap) {
        free(s->rows_at);
        s->span_cap = 2 * (span + 1);
        s->rows_at = (i64 *)malloc((size_t)s->span_cap * sizeof(i64));
    }
    if (crossings > s->cross_cap) {
        free(s->cols);
        s->cross_cap = 2 * crossings;
        s->cols = (i64 *)malloc((size_t)s->cross_cap * sizeof(i64));
    }
    return s->rows_at != NULL && s->cols != NULL;
}

static inline i64 crossing_column(double px0, double py0, double dx, double dy, i64 row, i64 width) {
    double x = (double)row + 0.5;
    x -= py0;
    x *= dx;
    x /= dy;
    x += px0;
    x -= 0.5;
    x = ceil(x);
    if (!(x >= 0.0)) return 0; /* also NaN, as np.clip(nan) ... astype gives an undefined value: never here */
    if (x > (double)width) return width;
    return (i64)x;
}

EXPORT i64 centre_runs(const double *px0, const double *py0, const double *dx, const double *dy, const i64 *zone,
                       const i64 *first, const i64 *count, i64 n_edges, i64 width, i64 *out_row, i64 *out_zone,
                       i64 *out_start, i64 *out_stop) {
    Scratch s = {NULL, NULL, 0, 0};
    i64 runs = 0, status = 0;
    for (i64 a = 0; a < n_edges && status == 0;) {
        i64 z = zone[a], b = a, lo = -1, hi = -1, crossings = 0;
        for (; b < n_edges && zone[b] == z; b++) { /* the zone's edges: its rows' span and crossings */
            if (count[b] <= 0) continue;
            if (lo < 0 || first[b] < lo) lo = first[b];
            if (first[b] + count[b] > hi) hi = first[b] + count[b];
            crossings += count[b];
        }
        if (b < n_edges && zone[b] < z) {
            status = -2;
            break;
        }
        if (crossings == 0) {
            a = b;
            continue;
        }
        i64 span = hi - lo;
        if (!reserve(&s, span, crossings)) {
            status = -3;
            break;
        }
        i64 *at = s.rows_at;
        memset(at, 0, (size_t)(span + 1) * sizeof(i64));
        for (i64 e = a; e < b; e++)
            for (i64 k = 0; k < count[e]; k++) at[first[e] - lo + k + 1]++;
        for (i64 r = 0; r < span; r++) at[r + 1] += at[r]; /* at[r]: where row r's crossings start */
        for (i64 e = a; e < b; e++)
            for (i64 k = 0; k < count[e]; k++) {
                i64 row = first[e] + k;
                s.cols[at[row - lo]++] = crossing_column(px0[e], py0[e], dx[e], dy[e], row, width);
            }
        /* at[r] is now where row r's crossings end; row r's start at at[r - 1] (0 for the first row) */
        for (i64 r = 0; r < span && status == 0; r++) {
            i64 begin = r == 0 ? 0 : at[r - 1], end = at[r];
            i64 *c = s.cols + begin, n = end - begin;
            if (n & 1) {
                status = -1;
                break;
            }
            for (i64 i = 1; i < n; i++) { /* insertion sort: a row of a zone has a few crossings */
                i64 v = c[i], j = i - 1;
                for (; j >= 0 && c[j] > v; j--) c[j + 1] = c[j];
                c[j + 1] = v;
            }
            for (i64 i = 0; i < n; i += 2) {
                if (c[i + 1] <= c[i]) continue;
                out_row[runs] = lo + r;
                out_zone[runs] = z;
                out_start[runs] = c[i];
                out_stop[runs] = c[i + 1];
                runs++;
            }
        }
        a = b;
    }
    free(s.rows_at);
    free(s.cols);
    return status != 0 ? status : runs;
}

/* ---- runs burnt into a label raster ------------------------------------------------------------
 * labels[row * width + col] = value[i] for col in [start[i], stop[i]) of every run i; labels starts zeroed.
 * Returns how many pixels already held a label (0: the runs are disjoint).
 */
#define BURN(SUFFIX, L)                                                                                       \
    EXPORT i64 burn_runs_##SUFFIX(const i64 *row, const i64 *start, const i64 *stop, const i64 *value, i64 n,  \
                                  i64 width, L *labels) {                                                     \
        i64 again = 0;                                                                                        \
        for (i64 i = 0; i < n; i++) {                                                                         \
            L v = (L)value[i];                                                                                \
            L *p = labels + row[i] * width;                                                                   \
            for (i64 c = start[i]; c < stop[i]; c++) {                                                        \
                again += p[c] != 0;                                                                           \
                p[c] = v;                                                                                     \
            }                                                                                                 \
        }                                                                                                     \
        return again;                                                                                         \
    }

BURN(u16, uint16_t)
BURN(i32, int32_t)

/* ---- layers of overlapping zones -----------------------------------------------------------------
 * Greedy colouring of the conflict graph (label_burn.greedy_layers): node by node in increasing order, the
 * smallest layer that no lower neighbour holds. pairs (left[k], right[k]) are edges between nodes 0 .. n - 1.
 * layers[n] is written; returns the number of layers, or -1 when out of memory.
 */
EXPORT i64 greedy_layers(i64 n, const i64 *left, const i64 *right, i64 n_pairs, int32_t *layers) {
    i64 *start = (i64 *)calloc((size_t)n + 1, sizeof(i64));
    i64 *next = (i64 *)malloc((size_t)(n + 1) * sizeof(i64));
    i64 *lower = (i64 *)malloc((size_t)(2 * n_pairs + 1) * sizeof(i64));
    uint8_t *taken = (uint8_t *)calloc((size_t)n + 2, 1);
    i64 used = n > 0 ? 1 : 0;
    if (start == NULL || next == NULL || lower == NULL || taken == NULL) {
        free(start), free(next), free(lower), free(taken);
        return -1;
    }
    for (i64 k = 0; k < n_pairs; k++) { /* each node's lower neighbours, in CSR form */
        i64 a = left[k], b = right[k];
        if (a != b) start[(a > b ? a : b) + 1]++;
    }
    for (i64 v = 0; v < n; v++) start[v + 1] += start[v];
    memcpy(next, start, (size_t)(n + 1) * sizeof(i64));
    for (i64 k = 0; k < n_pairs; k++) {
        i64 a = left[k], b = right[k];
        if (a == b) continue;
        i64 hi = a > b ? a : b, lo = a > b ? b : a;
        lower[next[hi]++] = lo;
    }
    for (i64 v = 0; v < n; v++) {
        i64 degree = start[v + 1] - start[v];
        for (i64 k = start[v]; k < start[v + 1]; k++) /* layers above the degree cannot all be taken */
            if (layers[lower[k]] <= degree) taken[layers[lower[k]]] = 1;
        int32_t layer = 0;
        while (taken[layer]) layer++;
        layers[v] = layer;
        if (layer + 1 > used) used = layer + 1;
        for (i64 k = start[v]; k < start[v + 1]; k++)
            if (layers[lower[k]] <= degree) taken[layers[lower[k]]] = 0;
    }
    free(start), free(next), free(lower), free(taken);
    return used;
}

/* ---- pixels an edge passes through (--all-touched) -------------------------------------------------
 * label_runs.edge_runs for edge e over rows first[e] .. first[e] + count[e] - 1: in row strip r the edge spans
 * x from its crossing of max(r, py0) to that of min(r + 1, py1) (a horizontal edge: px0 to px1), and passes
 * through the open squares of columns floor(x_min) .. ceil(x_max) - 1 (a vertical piece only off a grid
 * line), clipped to 0 .. width. Runs come out edge by edge, row by row; returns their number.
 */
static inline double x_at(double px0, double py0, double dx, double dy, double y) {
    y -= py0;
    y *= dx;
    y /= dy;
    y += px0;
    return y;
}

static inline double clip(double v, double lo, double hi) { return v < lo ? lo : (v > hi ? hi : v); }

EXPORT i64 edge_runs(const double *px0, const double *py0, const double *px1, const double *py1, const i64 *zone,
                     const i64 *first, const i64 *count, i64 n_edges, i64 width, i64 *out_row, i64 *out_zone,
                     i64 *out_start, i64 *out_stop) {
    i64 runs = 0;
    for (i64 e = 0; e < n_edges; e++) {
        double x0 = px0[e], y0 = py0[e], x1 = px1[e], y1 = py1[e], dx = x1 - x0, dy = y1 - y0;
        int sloped = y0 < y1;
        for (i64 k = 0; k < count[e]; k++) {
            i64 row = first[e] + k;
            double xa = x0, xb = x1;
            if (sloped) {
                double low = (double)row > y0 ? (double)row : y0;
                double high = (double)row + 1.0 < y1 ? (double)row + 1.0 : y1;
                xa = x_at(x0, y0, dx, dy, low);
                xb = x_at(x0, y0, dx, dy, high);
            }
            double x_min = xa < xb ? xa : xb, x_max = xa < xb ? xb : xa;
            double start = floor(x_min);
            double stop = x_min < x_max ? ceil(x_max) : (x_min == start ? start : start + 1.0);
            i64 a = (i64)clip(start, 0.0, (double)width), b = (i64)clip(stop, 0.0, (double)width);
            if (b <= a) continue;
            out_row[runs] = row;
            out_zone[runs] = zone[e];
            out_start[runs] = a;
            out_stop[runs] = b;
            runs++;
        }
    }
    return runs;
}
