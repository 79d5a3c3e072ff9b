/* test_cw.c — the shared module: error names, RFC 3339 time, bounded growth, lower bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cw.h"

/* Every code has its own words, and a value outside the enum is named unknown. */
static void test_strerror(void **state)
{
    (void)state;
    for (int a = CW_OK; a >= CW_ERR_LAST; a--) {
        const char *sa = cw_strerror(a);
        if (strcmp(sa, "unknown error") == 0)
            fail_msg("code %d has no words", a);
        for (int b = a - 1; b >= CW_ERR_LAST; b--)
            if (strcmp(sa, cw_strerror(b)) == 0)
                fail_msg("codes %d and %d share \"%s\"", a, b, sa);
    }
    assert_string_equal(cw_strerror(CW_ERR_LAST - 1), "unknown error");
    assert_string_equal(cw_strerror(1), "unknown error");
    assert_string_equal(cw_strerror(CW_EUNAVAIL), "store unavailable");
}

static void test_time_flags(void **state)
{
    (void)state;
    int64_t ms;
    /* the API's strict form refuses what the CloudTrail form accepts */
    assert_int_equal(cw_time_parse("2024-03-13 08:33:21Z", 0, &ms), CW_EINVAL);
    assert_int_equal(cw_time_parse("2024-03-13 08:33:21Z", CW_TIME_SPACE, &ms), CW_OK);
    assert_int_equal(ms, 1710318801000);
    assert_int_equal(cw_time_parse("2024-03-13T08:33:21", 0, &ms), CW_EINVAL);
    assert_int_equal(cw_time_parse("2024-03-13T08:33:21", CW_TIME_NOZONE, &ms), CW_OK);
    assert_int_equal(ms, 1710318801000);
    assert_int_equal(cw_time_parse("2024-03-13T09:33:21+01:00", 0, &ms), CW_OK);
    assert_int_equal(ms, 1710318801000);
    assert_int_equal(cw_time_parse("2024-03-13T09:33:21+01:00", CW_TIME_UTC, &ms), CW_EINVAL);
    assert_int_equal(cw_time_parse("2024-03-13T08:33:21+00:00", CW_TIME_UTC, &ms), CW_OK);
    /* a leap second is the first instant of the next minute */
    assert_int_equal(cw_time_parse("2016-12-31T23:59:60Z", 0, &ms), CW_OK);
    assert_int_equal(ms, 1483228800000);
    assert_int_equal(cw_time_parse("0000-01-01T00:00:00Z", 0, &ms), CW_OK);
    assert_int_equal(cw_time_parse(NULL, 0, &ms), CW_EINVAL);
    int64_t secs;
    assert_int_equal(cw_time_civil(2023, 2, 29, 0, 0, 0, &secs), CW_EINVAL);
    assert_int_equal(cw_time_civil(2000, 2, 29, 0, 0, 0, &secs), CW_OK);
    assert_int_equal(cw_time_civil(1900, 2, 29, 0, 0, 0, &secs), CW_EINVAL);
    assert_int_equal(cw_time_civil(2024, 1, 1, 24, 0, 0, &secs), CW_EINVAL);
}

static void test_time_format(void **state)
{
    (void)state;
    char b[CW_TIME_MAX];
    assert_int_equal(cw_time_format(1710318801007, 0, b, sizeof b), CW_OK);
    assert_string_equal(b, "2024-03-13T08:33:21Z");
    assert_int_equal(cw_time_format(-1, 1, b, sizeof b), CW_OK);
    assert_string_equal(b, "1969-12-31T23:59:59.999Z");
    assert_int_equal(cw_time_format(0, 1, b, sizeof b), CW_OK);
    assert_string_equal(b, "1970-01-01T00:00:00.000Z");
    /* year 10000: refused, and the buffer still holds a valid time */
    assert_int_equal(cw_time_format(253402300800000, 0, b, sizeof b), CW_EINVAL);
    assert_string_equal(b, "1970-01-01T00:00:00Z");
    assert_int_equal(cw_time_format(0, 1, b, 24), CW_EINVAL);
    assert_string_equal(b, "");
    /* every millisecond of a few sample days goes through format and parse unchanged */
    for (int64_t t = -86400000LL * 3; t < 4102444800000LL; t += 86400000LL * 37 + 12345) {
        int64_t back;
        assert_int_equal(cw_time_format(t, 1, b, sizeof b), CW_OK);
        assert_int_equal(cw_time_parse(b, 0, &back), CW_OK);
        assert_int_equal(back, t);
    }
}

/* The formatter as it was (snprintf), with the C library's calendar: the digit-by-digit one must
 * write the same bytes and return the same code for every time and every buffer size. */
static int time_format_ref(int64_t ms, int with_ms, char *out, size_t size)
{
    int64_t days = ms / 86400000LL, rem = ms % 86400000LL;
    if (rem < 0) {
        rem += 86400000LL;
        days -= 1;
    }
    time_t t = (time_t)(days * 86400);
    struct tm tm;
    int fail = !gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999;
    int y = fail ? 1970 : tm.tm_year + 1900, mo = fail ? 1 : tm.tm_mon + 1, d = fail ? 1 : tm.tm_mday;
    if (fail)
        rem = 0;
    int sec = (int)(rem / 1000), frac = (int)(rem % 1000);
    int n = with_ms ? snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, mo, d, sec / 3600, sec / 60 % 60,
                               sec % 60, frac)
                    : snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, mo, d, sec / 3600, sec / 60 % 60, sec % 60);
    if (n < 0 || (size_t)n >= size) {
        if (size)
            out[0] = '\0';
        return CW_EINVAL;
    }
    return fail ? CW_EINVAL : CW_OK;
}

static void test_time_format_same(void **state)
{
    (void)state;
    uint64_t x = 0x243F6A8885A308D3ull;
    const int64_t edges[] = { 0, -1, 1, 999, -86400000LL, 253402300799999LL, 253402300800000LL, -62167219200000LL,
                              -62167219200001LL, INT64_MAX, INT64_MIN, 951782400000LL /* 2000-02-29 */ };
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t ms = i < (int)(sizeof edges / sizeof edges[0]) ? edges[i]
                     : i % 3 == 0 ? (int64_t)x                                    /* any 64-bit value */
                     : (int64_t)(x % 320000000000000ULL) - 62200000000000LL;     /* years -1..9999 and past */
        for (int with_ms = 0; with_ms <= 1; with_ms++) {
            size_t size = i % 7 == 0 ? (size_t)(x >> 40) % (CW_TIME_MAX + 1) : CW_TIME_MAX;
            char want[CW_TIME_MAX] = "x", got[CW_TIME_MAX] = "x";
            int rw = time_format_ref(ms, with_ms, want, size);
            int rg = cw_time_format(ms, with_ms, got, size);
            assert_int_equal(rg, rw);
            if (size)
                assert_string_equal(got, want);
        }
    }
}

static void test_grow(void **state)
{
    (void)state;
    int *a = NULL;
    size_t cap = 0;
    assert_int_equal(cw_grow((void **)&a, &cap, 1, sizeof *a, 4, 10), CW_OK);
    assert_int_equal(cap, 4);
    assert_int_equal(cw_grow((void **)&a, &cap, 5, sizeof *a, 4, 10), CW_OK);
    assert_int_equal(cap, 8);
    /* doubling past the bound stops at the bound */
    assert_int_equal(cw_grow((void **)&a, &cap, 9, sizeof *a, 4, 10), CW_OK);
    assert_int_equal(cap, 10);
    int *before = a;
    assert_int_equal(cw_grow((void **)&a, &cap, 11, sizeof *a, 4, 10), CW_ETOOBIG);
    assert_ptr_equal(a, before);
    assert_int_equal(cap, 10);
    /* a size whose byte count overflows is refused, not wrapped */
    assert_int_equal(cw_grow((void **)&a, &cap, SIZE_MAX / 2, sizeof *a, 4, SIZE_MAX), CW_ENOMEM);
    assert_int_equal(cap, 10);
    free(a);
    /* the target alone, as a caller that accounts before it allocates sees it */
    assert_int_equal(cw_grow_target(0, 1, 4, 10), 4);
    assert_int_equal(cw_grow_target(4, 3, 4, 10), 4);     /* fits: unchanged */
    assert_int_equal(cw_grow_target(4, 5, 4, 10), 8);
    assert_int_equal(cw_grow_target(8, 9, 4, 10), 10);    /* clamped to the bound */
    assert_int_equal(cw_grow_target(10, 11, 4, 10), 0);   /* over it */
    assert_int_equal(cw_grow_target(0, 100, 65536, 8192), 8192); /* a first size over the bound */
}

static void test_buf(void **state)
{
    (void)state;
    struct cw_buf b;
    cw_buf_init(&b, 8);
    assert_int_equal(cw_buf_append(&b, "abcde", 5), CW_OK);
    assert_int_equal(cw_buf_append(&b, "fgh", 3), CW_OK);
    assert_string_equal(b.p, "abcdefgh");
    assert_int_equal(cw_buf_append(&b, "i", 1), CW_ETOOBIG);
    assert_int_equal(b.len, 8);
    assert_string_equal(b.p, "abcdefgh");
    assert_int_equal(cw_buf_append(&b, "x", SIZE_MAX), CW_ETOOBIG);
    cw_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.p, "");
    assert_int_equal(cw_buf_append(&b, "", 0), CW_OK);
    cw_buf_free(&b);
    assert_null(b.p);
}

static int cmp_int(const void *key, const void *elem)
{
    int k = *(const int *)key, e = *(const int *)elem;
    return k < e ? -1 : k > e;
}

static void test_lower_bound(void **state)
{
    (void)state;
    static const int v[] = {1, 3, 3, 5, 9};
    int keys[] = {0, 1, 2, 3, 4, 9, 10};
    size_t want[] = {0, 0, 1, 1, 3, 4, 5};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_int_equal(cw_lower_bound(v, 5, sizeof v[0], &keys[i], cmp_int), want[i]);
    assert_int_equal(cw_lower_bound(v, 0, sizeof v[0], &keys[3], cmp_int), 0);
}

/* The settings' comma-separated lists: blanks around items cut, an empty item reported as such
 * (a stray comma), a list of blanks or nothing empty. */
static void test_csv(void **state)
{
    (void)state;
    assert_null(cw_csv_begin(NULL));
    assert_null(cw_csv_begin(" \t "));
    const char *p = cw_csv_begin(" a , bc\t,,d ,"), *item;
    size_t len;
    const char *want[] = { "a", "bc", "", "d", "" };
    size_t k = 0;
    while (cw_csv_next(&p, &item, &len)) {
        assert_true(k < 5);
        assert_int_equal(len, strlen(want[k]));
        assert_memory_equal(item, want[k], len);
        k++;
    }
    assert_int_equal(k, 5);
    assert_null(p);
    assert_int_equal(cw_csv_next(&p, &item, &len), 0);
    p = cw_csv_begin("one");
    assert_int_equal(cw_csv_next(&p, &item, &len), 1);
    assert_int_equal(len, 3);
    assert_int_equal(cw_csv_next(&p, &item, &len), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror),   cmocka_unit_test(test_time_flags), cmocka_unit_test(test_time_format), cmocka_unit_test(test_time_format_same),
        cmocka_unit_test(test_grow),       cmocka_unit_test(test_buf),        cmocka_unit_test(test_lower_bound),
        cmocka_unit_test(test_csv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
