/*
 * Shared by histcalc's counting kernels in C (_native_counts.c, _native_tables.c), compiled ahead of
 * time into one plain shared library (no Python API: one build serves every Python version) and called
 * through ctypes, which releases the GIL for the length of a call. histcalc/_native.py binds them and documents each contract; the numpy
 * references in histcalc/kernel.py and histcalc/kernel_float.py are what the tests compare them with.
 *
 * Conventions: arrays are C-contiguous and checked by the caller (no bounds checks here); masks are
 * NULL when unused; a bool or mask band is one byte a pixel (0: false / masked). Every function comes
 * in one copy per element type, made by macros: <name>_<data>[_<labels>_<counts>].
 */
#ifndef HISTCALC_NATIVE_H
#define HISTCALC_NATIVE_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#define EXPORT __declspec(dllexport)
#else
#define EXPORT __attribute__((visibility("default")))
#endif

typedef int64_t i64;

/* How many pixels ahead the zonal kernel fetches the counts row a pixel will need (~5 image rows of 100 px
 * or one of 500: far enough to hide a miss to memory, near enough to stay in L1 until used). */
#define PREFETCH_AHEAD 512

static inline void prefetch_for_write(const void *p) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p, 1, 3);
#else
    (void)p;
#endif
}

/* Quality class of pixel i: 8- or 16-bit classes (exactly one of the two is set when used). */
static inline int dropped_at(i64 i, const uint8_t *c8, const uint16_t *c16, const uint8_t *dropped) {
    return dropped[c8 ? c8[i] : c16[i]];
}

#endif
