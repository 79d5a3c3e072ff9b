/* test_firehose.c — CloudWatch Logs subscription messages (service/cwlogs.c) and Firehose's envelope
 * helpers (api/api_firehose.c): every bound at its value and one past it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zlib.h>

#include <jansson.h>

#include "api_firehose.h"
#include "cwlogs.h"

/* gzip of n bytes of src (a test helper; compressBound covers gzip's header too with slack) */
static uint8_t *gz(const void *src, size_t n, size_t *out_len)
{
    size_t cap = compressBound((uLong)n) + 64;
    uint8_t *out = malloc(cap);
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

struct got {
    size_t n, nulls;
    char last[256];
};

static int take(void *ud, size_t index, const char *msg, size_t len)
{
    struct got *g = ud;
    (void)index;
    g->n++;
    if (!msg) {
        g->nulls++;
        return 0;
    }
    snprintf(g->last, sizeof g->last, "%.*s", (int)len, msg);
    return 0;
}

static int parse(const char *s, enum cwl_kind *kind, struct got *g)
{
    memset(g, 0, sizeof *g);
    struct cwl_sink sink = {take, g};
    size_t n;
    char msg[128];
    return cwl_parse((const uint8_t *)s, strlen(s), &sink, kind, &n, msg, sizeof msg);
}

static void test_gunzip_bounds(void **state)
{
    (void)state;
    static const char text[] = "{\"eventVersion\":\"1.08\"}";
    size_t zl, ol;
    uint8_t *z = gz(text, sizeof text - 1, &zl), *out;
    assert_int_equal(cwl_gunzip(z, zl, 1000, 200, &out, &ol), CWL_GZ_OK);
    assert_int_equal(ol, sizeof text - 1);
    assert_memory_equal(out, text, ol);
    free(out);
    /* max_out at the size: fits; one below: too big (and not a bomb: within the ratio) */
    assert_int_equal(cwl_gunzip(z, zl, sizeof text - 1, 200, &out, &ol), CWL_GZ_OK);
    free(out);
    assert_int_equal(cwl_gunzip(z, zl, sizeof text - 2, 200, &out, &ol), CWL_GZ_BIG);
    assert_null(out);
    /* truncated, trailing garbage, not gzip */
    assert_int_equal(cwl_gunzip(z, zl - 1, 1000, 200, &out, &ol), CWL_GZ_CORRUPT);
    uint8_t *tail = malloc(zl + 3);
    memcpy(tail, z, zl);
    memcpy(tail + zl, "abc", 3);
    assert_int_equal(cwl_gunzip(tail, zl + 3, 1000, 200, &out, &ol), CWL_GZ_CORRUPT);
    free(tail);
    assert_int_equal(cwl_gunzip((const uint8_t *)text, sizeof text - 1, 1000, 200, &out, &ol), CWL_GZ_CORRUPT);
    /* two members, as gzip(1) concatenates them */
    uint8_t *two = malloc(2 * zl);
    memcpy(two, z, zl);
    memcpy(two + zl, z, zl);
    assert_int_equal(cwl_gunzip(two, 2 * zl, 1000, 200, &out, &ol), CWL_GZ_OK);
    assert_int_equal(ol, 2 * (sizeof text - 1));
    free(out);
    free(two);
    free(z);
}

/* A bomb: the ratio bound is in_len * ratio + CWL_RATIO_SLACK, and passing it says so, not BIG. */
static void test_gunzip_ratio(void **state)
{
    (void)state;
    size_t n = CWL_RATIO_SLACK * 4, zl, ol;
    uint8_t *zeros = calloc(1, n), *out;
    uint8_t *z = gz(zeros, n, &zl);
    assert_true(zl * 200 + CWL_RATIO_SLACK < n);
    assert_int_equal(cwl_gunzip(z, zl, CWL_MESSAGE_MAX, 200, &out, &ol), CWL_GZ_RATIO);
    assert_null(out);
    /* the ratio exactly at the output: slack n - zl*ratio makes it fit */
    unsigned ratio = (unsigned)((n - CWL_RATIO_SLACK) / zl + 1);
    assert_int_equal(cwl_gunzip(z, zl, CWL_MESSAGE_MAX, ratio, &out, &ol), CWL_GZ_OK);
    assert_int_equal(ol, n);
    free(out);
    free(z);
    free(zeros);
}

static void test_parse_kinds(void **state)
{
    (void)state;
    enum cwl_kind k;
    struct got g;
    assert_int_equal(parse("{\"eventVersion\":\"1.08\"}", &k, &g), 0);
    assert_int_equal(k, CWL_NONE);
    assert_int_equal(parse("{\"messageType\":\"CONTROL_MESSAGE\",\"logEvents\":[{\"message\":\"x\"}]}", &k, &g), 0);
    assert_int_equal(k, CWL_CONTROL);
    assert_int_equal(g.n, 0);
    assert_int_equal(parse("{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[{\"id\":\"1\",\"message\":\"{\\\"a\\\":1}\"},"
                           "{\"id\":\"2\"},{\"message\":\"last\"}]}", &k, &g), 0);
    assert_int_equal(k, CWL_DATA);
    assert_int_equal(g.n, 3);
    assert_int_equal(g.nulls, 1);
    assert_string_equal(g.last, "last");
    /* a record that only mentions messageType deeper down is no message */
    assert_int_equal(parse("{\"requestParameters\":{\"messageType\":\"DATA_MESSAGE\"}}", &k, &g), 0);
    assert_int_equal(k, CWL_NONE);
    /* NDJSON naming messageType: not one JSON value, left to the decoder */
    assert_int_equal(parse("{\"messageType\":\"DATA_MESSAGE\"}\n{}", &k, &g), 0);
    assert_int_equal(k, CWL_NONE);
    /* any member order; a member twice, or a malformed end, and nothing reaches the sink */
    assert_int_equal(parse("{\"logEvents\":[{\"message\":\"a\\\"b\"},7],\"messageType\":\"DATA_MESSAGE\"}", &k, &g), 0);
    assert_int_equal(k, CWL_DATA);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.nulls, 1);
    assert_string_equal(g.last, "a\"b");
    assert_int_equal(parse("{\"messageType\":\"DATA_MESSAGE\",\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[]}", &k, &g), 0);
    assert_int_equal(k, CWL_NONE);
    assert_int_equal(parse("{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[{\"message\":\"a\"}]", &k, &g), 0);
    assert_int_equal(k, CWL_NONE);
    assert_int_equal(g.n, 0);
    assert_int_equal(parse("{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[{\"message\":\"a\",\"message\":\"b\"}]}", &k, &g), 0);
    assert_int_equal(g.nulls, 1);
    assert_int_equal(parse("{\"messageType\":7,\"logEvents\":[]}", &k, &g), 0);
    assert_int_equal(k, CWL_NONE);
    assert_int_equal(parse("{\"messageType\":\"OTHER\",\"logEvents\":[]}", &k, &g), CW_EFORMAT);
    assert_int_equal(parse("{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":{}}", &k, &g), CW_EFORMAT);
    assert_int_equal(k, CWL_NONE);
}

/* An unknown messageType is quoted in the error, which the reject's log line carries as JSON: only
 * printable ASCII of it, the rest '?' (a cut inside a character, or the overlong sequences yajl lets
 * through, made jansson drop the detail; fuzz_firehose found the second). A NUL is no end of it. */
static int type_error(const char *type, char *msg, size_t size)
{
    char buf[256];
    snprintf(buf, sizeof buf, "{\"messageType\":\"%s\",\"logEvents\":[]}", type);
    struct got g;
    memset(&g, 0, sizeof g);
    struct cwl_sink sink = {take, &g};
    enum cwl_kind kind;
    size_t n;
    int rc = cwl_parse((const uint8_t *)buf, strlen(buf), &sink, &kind, &n, msg, size);
    json_t *j = json_string(msg);
    assert_non_null(j);
    json_decref(j);
    return rc;
}

static void test_parse_type_quoted(void **state)
{
    (void)state;
    char msg[256], type[64] = "";
    for (int i = 0; i < 20; i++)
        strcat(type, "\xc3\xa9");  /* 40 bytes of 2-byte characters: the 31 kept end inside one */
    assert_int_equal(type_error(type, msg, sizeof msg), CW_EFORMAT);
    assert_non_null(strstr(msg, "\"???????????????????????????????\" is neither"));
    assert_int_equal(type_error("\xc3\xa9\xc1\xa9x", msg, sizeof msg), CW_EFORMAT);  /* overlong */
    assert_non_null(strstr(msg, "\"????x\""));
    assert_int_equal(type_error("DATA_MESSAGE\\u0000x", msg, sizeof msg), CW_EFORMAT);
    assert_non_null(strstr(msg, "\"DATA_MESSAGE?x\""));
    assert_int_equal(type_error("a\\nb\\\"c", msg, sizeof msg), CW_EFORMAT);
    assert_non_null(strstr(msg, "\"a?b\"c\""));
}

/* Nesting: CWL_DEPTH_MAX levels are read, one more is no subscription message. */
static void test_parse_depth(void **state)
{
    (void)state;
    for (int d = CWL_DEPTH_MAX; d <= CWL_DEPTH_MAX + 1; d++) {
        char s[512];
        size_t o = (size_t)snprintf(s, sizeof s, "{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[],\"x\":");
        for (int i = 1; i < d; i++)
            s[o++] = '[';
        for (int i = 1; i < d; i++)
            s[o++] = ']';
        snprintf(s + o, sizeof s - o, "}");
        enum cwl_kind k;
        struct got g;
        assert_int_equal(parse(s, &k, &g), 0);
        assert_int_equal(k, d == CWL_DEPTH_MAX ? CWL_DATA : CWL_NONE);
        assert_int_equal(g.n, 0);  /* arrays after logEvents are no log events */
    }
}

/* CWL_EVENTS_MAX log events are read; one more refuses the message. */
static void test_parse_events_bound(void **state)
{
    (void)state;
    for (size_t n = CWL_EVENTS_MAX; n <= CWL_EVENTS_MAX + 1; n++) {
        size_t cap = 64 + n * 16;
        char *s = malloc(cap);
        size_t o = (size_t)snprintf(s, cap, "{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[");
        for (size_t i = 0; i < n; i++)
            o += (size_t)snprintf(s + o, cap - o, "%s{\"message\":\"m\"}", i ? "," : "");
        snprintf(s + o, cap - o, "]}");
        enum cwl_kind k;
        struct got g;
        int rc = parse(s, &k, &g);
        if (n == CWL_EVENTS_MAX) {
            assert_int_equal(rc, 0);
            assert_int_equal(g.n, n);
        } else {
            assert_int_equal(rc, CW_ETOOBIG);
            assert_int_equal(g.n, 0);
        }
        free(s);
    }
}

static int stop_at_first(void *ud, size_t index, const char *msg, size_t len)
{
    (void)ud;
    (void)msg;
    (void)len;
    return index == 0;
}

static void test_parse_abort(void **state)
{
    (void)state;
    static const char s[] = "{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[{\"message\":\"a\"},{\"message\":\"b\"}]}";
    struct cwl_sink sink = {stop_at_first, NULL};
    enum cwl_kind k;
    size_t n;
    char msg[64];
    assert_int_equal(cwl_parse((const uint8_t *)s, sizeof s - 1, &sink, &k, &n, msg, sizeof msg), CW_EABORT);
    assert_int_equal(n, 1);
}

static void test_request_id(void **state)
{
    (void)state;
    char id[API_FH_REQUEST_ID_MAX + 2];
    memset(id, 'a', sizeof id);
    assert_true(api_fh_request_id_ok("ed4acda5-034f-9f42-bba1-f29aea6d7d8f", 36));
    assert_true(api_fh_request_id_ok(id, API_FH_REQUEST_ID_MAX));
    assert_false(api_fh_request_id_ok(id, API_FH_REQUEST_ID_MAX + 1));
    assert_false(api_fh_request_id_ok("", 0));
    assert_false(api_fh_request_id_ok("a\"b", 3));
    assert_false(api_fh_request_id_ok("a b", 3));
    assert_false(api_fh_request_id_ok("a\nb", 3));
}

static void test_access_key(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(api_fh_access_key(NULL, out, sizeof out), 0);
    assert_int_equal(api_fh_access_key("  ", out, sizeof out), 0);
    assert_int_equal(api_fh_access_key(" tok-0123456789abcdef ", out, sizeof out), 1);
    assert_string_equal(out, "tok-0123456789abcdef");
    assert_int_equal(api_fh_access_key("{\"api_key\": \"tok-0123456789abcdef\"}", out, sizeof out), 1);
    assert_string_equal(out, "tok-0123456789abcdef");
    assert_int_equal(api_fh_access_key("{\"api_key\": 1}", out, sizeof out), -1);
    assert_int_equal(api_fh_access_key("{\"key\": \"x\"}", out, sizeof out), -1);
    assert_int_equal(api_fh_access_key("{\"api_key\": \"a\\u0000b\"}", out, sizeof out), -1);
    assert_int_equal(api_fh_access_key("{not json", out, sizeof out), -1);
    /* the header's bound: API_FH_ACCESS_KEY_MAX bytes are read (and, over out, refused), one more is not */
    char *big = malloc(API_FH_ACCESS_KEY_MAX + 2);
    memset(big, 'k', API_FH_ACCESS_KEY_MAX + 1);
    big[API_FH_ACCESS_KEY_MAX + 1] = '\0';
    assert_int_equal(api_fh_access_key(big, out, sizeof out), -1);
    char *fits = malloc(API_FH_ACCESS_KEY_MAX + 1);
    memset(fits, 'k', API_FH_ACCESS_KEY_MAX);
    fits[API_FH_ACCESS_KEY_MAX] = '\0';
    char *fits_out = malloc(API_FH_ACCESS_KEY_MAX + 1);
    assert_int_equal(api_fh_access_key(fits, fits_out, API_FH_ACCESS_KEY_MAX + 1), 1);
    assert_int_equal(strlen(fits_out), API_FH_ACCESS_KEY_MAX);
    free(fits_out);
    free(fits);
    free(big);
    /* the key exactly filling out, and one byte over */
    char key[256];
    memset(key, 'k', 255);
    key[255] = '\0';
    assert_int_equal(api_fh_access_key(key, out, sizeof out), 1);
    char key2[257];
    memset(key2, 'k', 256);
    key2[256] = '\0';
    assert_int_equal(api_fh_access_key(key2, out, sizeof out), -1);
}

static const char *env_check(const char *body, const char *header_id, char *id)
{
    static char m[128];
    struct api_fh_env env;
    const char *why = api_fh_envelope((const uint8_t *)body, strlen(body), header_id, &env, m, sizeof m);
    assert_false(env.oom);
    memcpy(id, env.id, sizeof env.id);
    if (!why) {
        assert_true(env.n >= 1 && env.n <= API_FH_RECORDS_MAX);
        for (size_t i = 0; i < env.n; i++) {
            size_t len;
            assert_non_null(api_fh_data(&env, i, &len));
        }
    }
    api_fh_env_free(&env);
    return why;
}

/* The envelope: 1-API_FH_RECORDS_MAX records, a valid id, the header's id the body's. */
static void test_envelope(void **state)
{
    (void)state;
    char id[API_FH_REQUEST_ID_MAX + 1];
    assert_null(env_check("{\"requestId\":\"r-1\",\"timestamp\":1,\"records\":[{\"data\":\"\"}]}", NULL, id));
    assert_string_equal(id, "r-1");
    assert_null(env_check("{\"requestId\":\"r-1\",\"records\":[{\"data\":\"\"}]}", "r-1", id));
    assert_non_null(env_check("{\"requestId\":\"r-1\",\"records\":[{\"data\":\"\"}]}", "r-2", id));
    assert_string_equal(id, "");  /* the header's is echoed */
    assert_non_null(env_check("{\"requestId\":\"r-1\",\"timestamp\":\"1\",\"records\":[{\"data\":\"\"}]}", NULL, id));
    assert_non_null(env_check("{\"requestId\":\"r-1\",\"records\":[]}", NULL, id));
    assert_non_null(env_check("{\"requestId\":\"r-1\",\"records\":[{\"data\":1}]}", NULL, id));
    assert_non_null(env_check("{\"requestId\":\"r 1\",\"records\":[{\"data\":\"\"}]}", NULL, id));
    assert_string_equal(id, "");
    assert_non_null(env_check("[]", NULL, id));
    assert_non_null(env_check("{\"requestId\":\"r-1\",\"records\":[{\"data\":\"\"}]", NULL, id));  /* cut */
    assert_string_equal(id, "");
    assert_non_null(env_check("{\"requestId\":\"r-1\",\"requestId\":\"r-1\",\"records\":[{\"data\":\"\"}]}", NULL, id));
    assert_non_null(env_check("{\"requestId\":\"r-1\",\"records\":[{\"data\":\"\",\"data\":\"\"}]}", NULL, id));
    assert_non_null(env_check("{\"requestId\":\"r-1\",\"records\":[{}]}", NULL, id));
    assert_non_null(env_check("{\"requestId\":\"r-1\",\"records\":[[]]}", NULL, id));
    assert_non_null(env_check("{\"requestId\":\"r-1\",\"timestamp\":1.5,\"records\":[{\"data\":\"\"}]}", NULL, id));
    assert_string_equal(id, "r-1");  /* read to its end, its id valid: echoed */
    /* an escaped data string is copied out, unescaped */
    {
        static const char b[] = "{\"requestId\":\"r\",\"records\":[{\"data\":\"QQ\\u003d\\u003d\"},{\"data\":\"QUI=\"}]}";
        struct api_fh_env env;
        char m[64];
        assert_null(api_fh_envelope((const uint8_t *)b, sizeof b - 1, NULL, &env, m, sizeof m));
        size_t len;
        const char *d = api_fh_data(&env, 0, &len);
        assert_int_equal(len, 4);
        assert_memory_equal(d, "QQ==", 4);
        d = api_fh_data(&env, 1, &len);
        assert_memory_equal(d, "QUI=", 4);
        assert_true(d > b && d < b + sizeof b);  /* in place */
        api_fh_env_free(&env);
    }
    /* nesting: API_FH_DEPTH_MAX levels in an unknown member are read, one more is refused */
    for (int depth = API_FH_DEPTH_MAX; depth <= API_FH_DEPTH_MAX + 1; depth++) {
        char b[256];
        size_t o = (size_t)snprintf(b, sizeof b, "{\"requestId\":\"r\",\"records\":[{\"data\":\"\"}],\"x\":");
        for (int i = 1; i < depth; i++)
            b[o++] = '[';
        for (int i = 1; i < depth; i++)
            b[o++] = ']';
        snprintf(b + o, sizeof b - o, "}");
        const char *why = env_check(b, NULL, id);
        if (depth == API_FH_DEPTH_MAX)
            assert_null(why);
        else
            assert_non_null(why);
    }
    /* the record bound at its value and one past */
    for (size_t n = API_FH_RECORDS_MAX; n <= API_FH_RECORDS_MAX + 1; n++) {
        size_t cap = 64 + n * 12;
        char *b = malloc(cap);
        size_t o = (size_t)snprintf(b, cap, "{\"requestId\":\"r\",\"records\":[");
        for (size_t i = 0; i < n; i++)
            o += (size_t)snprintf(b + o, cap - o, "%s{\"data\":\"\"}", i ? "," : "");
        snprintf(b + o, cap - o, "]}");
        const char *why = env_check(b, NULL, id);
        if (n == API_FH_RECORDS_MAX)
            assert_null(why);
        else
            assert_non_null(why);
        free(b);
    }
}

static void test_answer(void **state)
{
    (void)state;
    size_t len;
    char *t = api_fh_answer("r-1", 1710318801000, NULL, &len);
    assert_string_equal(t, "{\"requestId\":\"r-1\",\"timestamp\":1710318801000}");
    assert_int_equal(len, strlen(t));
    free(t);
    t = api_fh_answer("", 5, "bad \"thing\"", &len);
    assert_string_equal(t, "{\"requestId\":\"\",\"timestamp\":5,\"errorMessage\":\"bad \\\"thing\\\"\"}");
    free(t);
    assert_null(api_fh_answer("r", 5, "not \xff UTF-8", &len));
}

static void test_reasons(void **state)
{
    (void)state;
    for (int i = 0; i < API_FH_R_COUNT; i++)
        for (int j = i + 1; j < API_FH_R_COUNT; j++)
            assert_string_not_equal(api_fh_reason_name((enum api_fh_reason)i), api_fh_reason_name((enum api_fh_reason)j));
    assert_string_equal(api_fh_reason_name(API_FH_R_COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gunzip_bounds), cmocka_unit_test(test_gunzip_ratio),
        cmocka_unit_test(test_parse_kinds),   cmocka_unit_test(test_parse_events_bound),
        cmocka_unit_test(test_parse_abort),   cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_access_key),    cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_envelope),      cmocka_unit_test(test_answer),
        cmocka_unit_test(test_parse_depth),   cmocka_unit_test(test_parse_type_quoted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
