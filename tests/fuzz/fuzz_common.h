/* fuzz_common.h — helpers shared by the libFuzzer harnesses (tests/fuzz/fuzz_*.c).
 *
 * The harnesses assert with fz_check rather than assert(): they are built with -O1 and may be
 * built with -DNDEBUG, and an invariant that silently stops being checked is worse than none.
 * abort() is what libFuzzer reports as a crash, with the input saved.
 */
#ifndef CW_FUZZ_COMMON_H
#define CW_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define fz_check(cond, what)                                                              \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "fuzz invariant failed: %s (%s:%d)\n", (what), __FILE__, __LINE__); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

/* FNV-1a over bytes: a digest of what a decoder delivered, so two runs can be compared
 * without keeping every event. */
#define FZ_FNV_OFFSET 1469598103934665603ull
#define FZ_FNV_PRIME 1099511628211ull

static inline uint64_t fz_fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= FZ_FNV_PRIME;
    }
    return h;
}

/* A string field up to its NUL (bytes after it are not part of the value). */
static inline uint64_t fz_fnv_str(uint64_t h, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    fz_check(n < cap, "string field not NUL-terminated within its bound");
    h = fz_fnv(h, s, n);
    return fz_fnv(h, "", 1);
}

/* splitmix64: a deterministic generator seeded from the input, so the chunking of one input
 * is the same in every run (a crash reproduces from the saved input alone). */
static inline uint64_t fz_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#endif
