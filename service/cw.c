/* cw.c — see cw.h. */
#include "cw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- errors ------------------------------------------------------------------------------- */

const char *cw_strerror(int err)
{
    switch ((enum cw_err)err) {
    case CW_OK: return "success";
    case CW_EINVAL: return "invalid argument";
    case CW_ENOMEM: return "out of memory";
    case CW_EIO: return "input/output error";
    case CW_EFORMAT: return "malformed file";
    case CW_ETOOBIG: return "over a size or count bound";
    case CW_ENOSPC: return "output buffer too small";
    case CW_EJSON: return "malformed JSON";
    case CW_EGZIP: return "corrupt gzip stream";
    case CW_EREFUSED: return "not CloudTrail";
    case CW_EDEPTH: return "JSON nested too deep";
    case CW_EABORT: return "stopped by a callback";
    case CW_EINPUT: return "invalid input";
    case CW_EUNAVAIL: return "store unavailable";
    case CW_ENOTFOUND: return "not found";
    case CW_ECONFIG: return "invalid setting";
    case CW_ENOCRED: return "credentials required";
    case CW_EBADCRED: return "invalid credentials";
    case CW_EFORBIDDEN: return "forbidden for this token";
    }
    return "unknown error";
}

/* ---- time --------------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a civil date (proleptic Gregorian; H. Hinnant's published algorithm).
 * timegm would do, but it depends on the C library's range and is not declared by C11. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse, for the formatter. */
static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* Reads exactly n digits and advances *p. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

#define CW_TIME_FRACTION_MAX 9  /* nanoseconds */

int cw_time_civil(int y, int mo, int d, int h, int mi, int s, int64_t *secs)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 0 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && is_leap(y)) || h < 0 ||
        h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60)
        return CW_EINVAL;
    *secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s;
    return CW_OK;
}

int cw_time_parse(const char *s, unsigned flags, int64_t *ms)
{
    const char *p = s;
    int y, mo, d, h, mi, se;
    if (!s || digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d))
        return CW_EINVAL;
    if (*p != 'T' && *p != 't' && !(*p == ' ' && (flags & CW_TIME_SPACE)))
        return CW_EINVAL;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' || digits(&p, 2, &se))
        return CW_EINVAL;
    int frac_ms = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        while (*p >= '0' && *p <= '9') {
            if (nd < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            if (++nd > CW_TIME_FRACTION_MAX)
                return CW_EINVAL;
            p++;
        }
        if (nd == 0)
            return CW_EINVAL;
        for (; nd < 3; nd++)
            frac_ms *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
            return CW_EINVAL;
        offset_min = sign * (oh * 60 + om);
    } else if (!(*p == '\0' && (flags & CW_TIME_NOZONE))) {
        return CW_EINVAL;
    }
    if (offset_min && (flags & CW_TIME_UTC))
        return CW_EINVAL;
    if (*p)
        return CW_EINVAL;
    int64_t secs;
    if (cw_time_civil(y, mo, d, h, mi, se, &secs))
        return CW_EINVAL;
    *ms = (secs - (int64_t)offset_min * 60) * 1000 + frac_ms;
    return CW_OK;
}

#define CW_MS_PER_DAY 86400000LL

/* Two decimal digits of v (0-99) at o. */
static char *two_digits(char *o, unsigned v)
{
    o[0] = (char)('0' + v / 10);
    o[1] = (char)('0' + v % 10);
    return o + 2;
}

/* Written digit by digit: snprintf took 3,000 instructions a call, and a finding's evidence holds
 * up to a few dozen times (tests/test_cw.c compares with the snprintf form). */
int cw_time_format(int64_t ms, int with_ms, char *out, size_t size)
{
    /* floor division: -1 ms is 23:59:59.999 of the day before */
    int64_t days = ms / CW_MS_PER_DAY, rem = ms % CW_MS_PER_DAY;
    if (rem < 0) {
        rem += CW_MS_PER_DAY;
        days -= 1;
    }
    int y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    int fail = y < 0 || y > 9999;
    if (fail)
        y = 1970, mo = 1, d = 1, rem = 0;
    unsigned sec = (unsigned)(rem / 1000), frac = (unsigned)(rem % 1000);
    char t[CW_TIME_MAX], *o = t;
    o = two_digits(o, (unsigned)y / 100);
    o = two_digits(o, (unsigned)y % 100);
    *o++ = '-';
    o = two_digits(o, mo);
    *o++ = '-';
    o = two_digits(o, d);
    *o++ = 'T';
    o = two_digits(o, sec / 3600);
    *o++ = ':';
    o = two_digits(o, sec / 60 % 60);
    *o++ = ':';
    o = two_digits(o, sec % 60);
    if (with_ms) {
        *o++ = '.';
        *o++ = (char)('0' + frac / 100);
        o = two_digits(o, frac % 100);
    }
    *o++ = 'Z';
    size_t n = (size_t)(o - t);
    if (n >= size) {
        if (size)
            out[0] = '\0';
        return CW_EINVAL;
    }
    memcpy(out, t, n);
    out[n] = '\0';
    return fail ? CW_EINVAL : CW_OK;
}

int64_t cw_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

double cw_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t cw_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- bounded growth ----------------------------------------------------------------------- */

size_t cw_grow_target(size_t cap, size_t need, size_t initial, size_t max)
{
    if (need <= cap)
        return cap;
    if (need > max)
        return 0;
    size_t ncap = cap ? cap : (initial ? initial : 1);
    while (ncap < need)
        ncap = ncap > max / 2 ? max : ncap * 2;
    return ncap > max ? max : ncap;
}

int cw_grow(void **array, size_t *cap, size_t need, size_t elem_size, size_t initial, size_t max)
{
    if (need <= *cap)
        return CW_OK;
    size_t ncap = cw_grow_target(*cap, need, initial, max);
    if (!ncap)
        return CW_ETOOBIG;
    if (elem_size && ncap > SIZE_MAX / elem_size)
        return CW_ENOMEM;
    void *p = realloc(*array, ncap * elem_size);
    if (!p)
        return CW_ENOMEM;
    *array = p;
    *cap = ncap;
    return CW_OK;
}

void cw_buf_init(struct cw_buf *b, size_t max)
{
    b->p = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

#define CW_BUF_INITIAL 4096

int cw_buf_append(struct cw_buf *b, const void *data, size_t n)
{
    if (n > b->max || b->len > b->max - n)
        return CW_ETOOBIG;
    void *p = b->p;
    /* + 1 for the terminating NUL, which the cap does not count */
    int rc = cw_grow(&p, &b->cap, b->len + n + 1, 1, CW_BUF_INITIAL, b->max + 1);
    if (rc)
        return rc;
    b->p = p;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return CW_OK;
}

void cw_buf_reset(struct cw_buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

void cw_buf_free(struct cw_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- sorted arrays ------------------------------------------------------------------------ */

size_t cw_lower_bound(const void *base, size_t n, size_t elem_size, const void *key,
                      int (*cmp)(const void *key, const void *elem))
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cmp(key, (const char *)base + mid * elem_size) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- comma-separated lists ---- */

static int csv_blank(char c) { return c == ' ' || c == '\t'; }

const char *cw_csv_begin(const char *csv)
{
    const char *p = csv;
    while (p && csv_blank(*p))
        p++;
    return p && *p ? csv : NULL;
}

int cw_csv_next(const char **p, const char **item, size_t *len)
{
    const char *s = *p;
    if (!s)
        return 0;
    while (csv_blank(*s))
        s++;
    const char *start = s;
    while (*s && *s != ',')
        s++;
    const char *end = s;
    while (end > start && csv_blank(end[-1]))
        end--;
    *item = start;
    *len = (size_t)(end - start);
    *p = *s ? s + 1 : NULL;
    return 1;
}

size_t cw_utf8_cut(const char *s, size_t n)
{
    size_t i = n, cont = 0;
    while (i > 0 && cont < 3 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        cont++;
    }
    if (i == 0)
        return n;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return need > 1 && cont + 1 < need ? i - 1 : n;
}
