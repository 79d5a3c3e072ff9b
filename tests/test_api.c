/* test_api.c — the HTTP layer's pure pieces: credentials, constant-time compare, base64,
 * cursors, RFC 3339, configuration, content negotiation, routing, CORS, metrics text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "api_auth.h"
#include "api_b64.h"
#include "api_config.h"
#include "api_content.h"
#include "api_cors.h"
#include "api_cursor.h"
#include "api_metrics.h"
#include "api_route.h"
#include "api_ui.h"
#include "cw.h"
#include "engine.h"
#include "settings.h"
#include "sink_http.h"
#include "sink_run.h"
#include "store.h"

#define TOK_I "ingest-token-0123456789"
#define TOK_R "read-token-0123456789ab"

/* ---- credentials ---- */

static void test_credential_bearer(void **state)
{
    (void)state;
    char out[API_TOKEN_MAX];
    assert_int_equal(api_auth_credential("Bearer " TOK_I, NULL, out, sizeof out), 1);
    assert_string_equal(out, TOK_I);
    assert_int_equal(api_auth_credential("  bearer    " TOK_I "  ", NULL, out, sizeof out), 1);
    assert_string_equal(out, TOK_I);
    assert_int_equal(api_auth_credential("Bearer", NULL, out, sizeof out), -1);
    assert_int_equal(api_auth_credential("Bearer a b", NULL, out, sizeof out), -1); /* a blank inside */
    assert_int_equal(api_auth_credential("Digest abc", NULL, out, sizeof out), -1);
    assert_int_equal(api_auth_credential("Bearerx abc", NULL, out, sizeof out), -1);
}

static void test_credential_basic(void **state)
{
    (void)state;
    char out[API_TOKEN_MAX];
    /* "user:read-token-0123456789ab" */
    assert_int_equal(api_auth_credential("Basic dXNlcjpyZWFkLXRva2VuLTAxMjM0NTY3ODlhYg==", NULL, out, sizeof out), 1);
    assert_string_equal(out, TOK_R);
    /* ":tok" with an empty user name: "OnRva2VuLXdpdGgtbm8tdXNlcg==" is ":token-with-no-user" */
    assert_int_equal(api_auth_credential("Basic OnRva2VuLXdpdGgtbm8tdXNlcg==", NULL, out, sizeof out), 1);
    assert_string_equal(out, "token-with-no-user");
    /* no colon: "dXNlcg==" is "user" */
    assert_int_equal(api_auth_credential("Basic dXNlcg==", NULL, out, sizeof out), -1);
    /* empty password: "dXNlcjo=" is "user:" */
    assert_int_equal(api_auth_credential("Basic dXNlcjo=", NULL, out, sizeof out), -1);
    assert_int_equal(api_auth_credential("Basic !!!!", NULL, out, sizeof out), -1);
    assert_int_equal(api_auth_credential("Basic dXNlcg", NULL, out, sizeof out), -1); /* padding missing */
    char huge[4096];
    memset(huge, 'A', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    memcpy(huge, "Basic ", 6);
    assert_int_equal(api_auth_credential(huge, NULL, out, sizeof out), -1);
}

static void test_credential_api_key(void **state)
{
    (void)state;
    char out[API_TOKEN_MAX];
    assert_int_equal(api_auth_credential(NULL, TOK_R, out, sizeof out), 1);
    assert_string_equal(out, TOK_R);
    assert_int_equal(api_auth_credential(NULL, NULL, out, sizeof out), 0);
    assert_int_equal(api_auth_credential(NULL, "", out, sizeof out), -1);
    char longtok[API_TOKEN_MAX + 8];
    memset(longtok, 'x', sizeof longtok - 1);
    longtok[sizeof longtok - 1] = '\0';
    assert_int_equal(api_auth_credential(NULL, longtok, out, sizeof out), -1);
    /* Authorization wins over X-Api-Key */
    assert_int_equal(api_auth_credential("Bearer " TOK_I, TOK_R, out, sizeof out), 1);
    assert_string_equal(out, TOK_I);
}

static void test_ct_equal(void **state)
{
    (void)state;
    char a[API_TOKEN_MAX] = {0}, b[API_TOKEN_MAX] = {0};
    memcpy(a, "secret-token-value", 18);
    memcpy(b, "secret-token-value", 18);
    assert_true(api_ct_equal(a, 18, b, 18));
    b[17] = 'X';
    assert_false(api_ct_equal(a, 18, b, 18));
    b[17] = 'e';
    assert_false(api_ct_equal(a, 18, b, 17)); /* same bytes, other length */
    b[0] ^= 1;
    assert_false(api_ct_equal(a, 18, b, 18));
}

static void test_tokens_parse(void **state)
{
    (void)state;
    struct api_tokens t;
    char msg[160];
    assert_int_equal(api_tokens_parse(" " TOK_I " , " TOK_R " ", &t, msg, sizeof msg), 0);
    assert_int_equal(t.n, 2);
    assert_string_equal(t.tok[0], TOK_I);
    assert_string_equal(t.tok[1], TOK_R);
    assert_int_equal(api_tokens_parse(NULL, &t, msg, sizeof msg), 0);
    assert_int_equal(t.n, 0);
    assert_int_equal(api_tokens_parse("   ", &t, msg, sizeof msg), 0);
    assert_int_equal(t.n, 0);
    assert_int_equal(api_tokens_parse("short", &t, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "bytes"));
    assert_int_equal(api_tokens_parse(TOK_I ",," TOK_R, &t, msg, sizeof msg), -1);
    assert_int_equal(api_tokens_parse(TOK_I ",", &t, msg, sizeof msg), -1);
    assert_int_equal(api_tokens_parse("token with blanks inside", &t, msg, sizeof msg), -1);
    char many[API_TOKENS_MAX * 24 + 64] = "";
    size_t off = 0;
    for (int i = 0; i <= API_TOKENS_MAX; i++)
        off += (size_t)snprintf(many + off, sizeof many - off, "%stoken-number-%04d", i ? "," : "", i);
    assert_int_equal(api_tokens_parse(many, &t, msg, sizeof msg), -1);
}

static void test_auth_check(void **state)
{
    (void)state;
    struct api_tokens in, rd, none;
    char msg[160];
    assert_int_equal(api_tokens_parse(TOK_I, &in, msg, sizeof msg), 0);
    assert_int_equal(api_tokens_parse(TOK_R, &rd, msg, sizeof msg), 0);
    assert_int_equal(api_tokens_parse(NULL, &none, msg, sizeof msg), 0);
    assert_int_equal(api_auth_check(&in, &rd, API_ROLE_INGEST, "Bearer " TOK_I, NULL), CW_OK);
    assert_int_equal(api_auth_check(&in, &rd, API_ROLE_READ, NULL, TOK_R), CW_OK);
    assert_int_equal(api_auth_check(&in, &rd, API_ROLE_READ, "Bearer " TOK_I, NULL), CW_EFORBIDDEN);
    assert_int_equal(api_auth_check(&in, &rd, API_ROLE_INGEST, NULL, TOK_R), CW_EFORBIDDEN);
    assert_int_equal(api_auth_check(&in, &rd, API_ROLE_READ, NULL, NULL), CW_ENOCRED);
    assert_int_equal(api_auth_check(&in, &rd, API_ROLE_READ, "Bearer not-a-known-token-at-all", NULL),
                     CW_EBADCRED);
    assert_int_equal(api_auth_check(&in, &rd, API_ROLE_READ, "Negotiate xyz", NULL), CW_EBADCRED);
    assert_int_equal(api_auth_check(&in, &rd, API_ROLE_NONE, NULL, NULL), CW_OK);
    /* a role without tokens is open (api_config decides whether that may listen) */
    assert_int_equal(api_auth_check(&in, &none, API_ROLE_READ, NULL, NULL), CW_OK);
    assert_int_equal(api_auth_check(&in, &none, API_ROLE_INGEST, NULL, NULL), CW_ENOCRED);
}

/* ---- base64 and cursors ---- */

static void test_b64(void **state)
{
    (void)state;
    /* RFC 4648 §10 vectors, URL-safe without padding */
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    char out[32];
    uint8_t dec[32];
    for (size_t i = 0; i < 7; i++) {
        size_t n = strlen(plain[i]);
        assert_int_equal(api_b64url_encode((const uint8_t *)plain[i], n, out, sizeof out), (int)strlen(enc[i]));
        assert_string_equal(out, enc[i]);
        assert_int_equal(api_b64_decode(enc[i], strlen(enc[i]), 1, dec, sizeof dec), (int)n);
        assert_memory_equal(dec, plain[i], n);
    }
    assert_int_equal(api_b64_decode("Zm9vYg==", 8, 0, dec, sizeof dec), 4);
    assert_int_equal(api_b64_decode("Zm9vYg==", 8, 1, dec, sizeof dec), -1); /* no padding in URL form */
    assert_int_equal(api_b64_decode("Zh", 2, 1, dec, sizeof dec), -1);       /* non-zero leftover bits */
    assert_int_equal(api_b64_decode("Z", 1, 1, dec, sizeof dec), -1);
    assert_int_equal(api_b64_decode("Zm9v", 4, 1, dec, 2), -1);             /* output too small */
    assert_int_equal(api_b64url_encode((const uint8_t *)"foobar", 6, out, 8), -1);
    static const uint8_t hi[] = {0xfb, 0xff};
    assert_int_equal(api_b64url_encode(hi, 2, out, sizeof out), 3);
    assert_string_equal(out, "-_8");
}

static void test_cursor(void **state)
{
    (void)state;
    char cur[API_CURSOR_MAX], id[STORE_ID_MAX];
    int64_t ms = 0;
    assert_int_equal(api_cursor_encode(1710318801000, "cwf-ASIAEXAMPLEKEY000001", cur, sizeof cur), 0);
    assert_int_equal(api_cursor_decode(cur, &ms, id), 0);
    assert_int_equal(ms, 1710318801000);
    assert_string_equal(id, "cwf-ASIAEXAMPLEKEY000001");
    assert_null(strchr(cur, '=')); /* URL-safe, unpadded */
    assert_null(strchr(cur, '+'));
    assert_null(strchr(cur, '/'));
    /* anything the encoder could not have produced is refused */
    assert_int_equal(api_cursor_decode("", &ms, id), -1);
    assert_int_equal(api_cursor_decode("not base64!", &ms, id), -1);
    char bad[API_CURSOR_MAX];
    static const char *const raws[] = {"0123:x", "12", "12:", ":abc", "-5:abc", "12:a b", "12:a/b",
                                       "1234567890123456789:x"};
    for (size_t i = 0; i < sizeof raws / sizeof raws[0]; i++) {
        assert_true(api_b64url_encode((const uint8_t *)raws[i], strlen(raws[i]), bad, sizeof bad) >= 0);
        assert_int_equal(api_cursor_decode(bad, &ms, id), -1);
    }
    char longid[STORE_ID_MAX + 1];
    memset(longid, 'a', STORE_ID_MAX);
    longid[STORE_ID_MAX] = '\0';
    assert_int_equal(api_cursor_encode(1, longid, cur, sizeof cur), -1);
    assert_int_equal(api_cursor_encode(-1, "x", cur, sizeof cur), -1);
    char toolong[API_CURSOR_MAX + 10];
    memset(toolong, 'A', sizeof toolong - 1);
    toolong[sizeof toolong - 1] = '\0';
    assert_int_equal(api_cursor_decode(toolong, &ms, id), -1);
    /* the longest id still round-trips */
    memset(longid, 'z', STORE_ID_MAX - 1);
    longid[STORE_ID_MAX - 1] = '\0';
    assert_int_equal(api_cursor_encode(INT64_C(999999999999999999), longid, cur, sizeof cur), 0);
    assert_int_equal(api_cursor_decode(cur, &ms, id), 0);
    assert_string_equal(id, longid);
}

/* ---- time ---- */

static void test_time(void **state)
{
    (void)state;
    char b[CW_TIME_MAX];
    assert_int_equal(cw_time_format(1710318801000, 1, b, sizeof b), 0);
    assert_string_equal(b, "2024-03-13T08:33:21.000Z");
    assert_int_equal(cw_time_format(1710318801007, 1, b, sizeof b), 0);
    assert_string_equal(b, "2024-03-13T08:33:21.007Z");
    assert_int_equal(cw_time_format(0, 1, b, 10), -1);
    int64_t ms;
    assert_int_equal(cw_time_parse("2024-03-13T08:33:21Z", 0, &ms), 0);
    assert_int_equal(ms, 1710318801000);
    assert_int_equal(cw_time_parse("2024-03-13t08:33:21.5z", 0, &ms), 0);
    assert_int_equal(ms, 1710318801500);
    assert_int_equal(cw_time_parse("2024-03-13T10:33:21.123456789+02:00", 0, &ms), 0);
    assert_int_equal(ms, 1710318801123);
    assert_int_equal(cw_time_parse("2024-03-13T03:33:21-05:00", 0, &ms), 0);
    assert_int_equal(ms, 1710318801000);
    assert_int_equal(cw_time_parse("2024-02-29T00:00:00Z", 0, &ms), 0);
    static const char *const bad[] = {"2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-03-13 08:33:21Z",
                                      "2024-03-13T08:33:21", "2024-03-13T24:00:00Z", "2024-03-13T08:33:21.Z",
                                      "2024-03-13T08:33:21.1234567890Z", "2024-03-13T08:33:21Zjunk",
                                      "2024-3-13T08:33:21Z", "", "1710318801"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(cw_time_parse(bad[i], 0, &ms), -1);
}

/* ---- configuration ---- */

static const char *const *test_env;

static const char *fake_env(const char *name)
{
    for (size_t i = 0; test_env && test_env[i]; i += 2)
        if (strcmp(test_env[i], name) == 0)
            return test_env[i + 1];
    return NULL;
}

static int load(struct api_config *c, const char *const *env, int argc, char **argv, char *msg, size_t size)
{
    test_env = env;
    return api_config_load(c, argc, argv, fake_env, msg, size);
}

static void test_config_defaults(void **state)
{
    (void)state;
    static struct api_config c;
    char msg[512];
    char *argv[] = {"serve"};
    assert_int_equal(load(&c, NULL, 1, argv, msg, sizeof msg), 0);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_true(c.loopback);
    assert_false(c.ipv6);
    assert_string_equal(c.redis_url, "");
    assert_int_equal(c.max_body, (size_t)32 << 20);
    assert_int_equal(c.max_inflated, (size_t)256 << 20);
    assert_int_equal(c.ingest_chunk_bytes, ENG_CHUNK_BYTES);
    assert_int_equal(c.redis_timeout_ms, 1000);
    assert_int_equal(c.drain_s, 20);
    assert_true(c.threads >= 1);
    assert_int_equal(c.ingest.n, 0);
}

/* The durable store's default thread count lets requests share a commit; the others keep one
 * thread per CPU; a given count is kept on every store. */
static void test_config_threads_per_store(void **state)
{
    (void)state;
    static struct api_config c;
    char msg[512];
    char *argv[] = {"serve"};
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned want = cpus < 1 ? 1 : cpus > API_THREADS_MAX ? API_THREADS_MAX : (unsigned)cpus;
    static const char *const mem[] = {"CREDWATCH_STORE", "memory", NULL};
    assert_int_equal(load(&c, mem, 1, argv, msg, sizeof msg), 0);
    assert_int_equal(c.threads, want);
    static const char *const red[] = {"CREDWATCH_REDIS_URL", "redis://127.0.0.1:6379", NULL};
    assert_int_equal(load(&c, red, 1, argv, msg, sizeof msg), 0);
    assert_int_equal(c.threads, want);
    assert_int_equal(load(&c, NULL, 1, argv, msg, sizeof msg), 0);  /* durable, the default */
    unsigned durable = want * API_DURABLE_THREADS_PER_CPU;
    durable = durable < API_DURABLE_THREADS_MIN ? API_DURABLE_THREADS_MIN : durable;
    assert_int_equal(c.threads, durable > API_THREADS_MAX ? API_THREADS_MAX : durable);
    assert_int_equal(c.max_inflight_ingest, 2 * c.threads);
    static const char *const given[] = {"CREDWATCH_THREADS", "3", NULL};
    assert_int_equal(load(&c, given, 1, argv, msg, sizeof msg), 0);
    assert_int_equal(c.threads, 3);
}

static void test_config_env_and_flags(void **state)
{
    (void)state;
    static struct api_config c;
    char msg[512];
    static const char *const env[] = {"CREDWATCH_LISTEN", "[::1]:9000", "CREDWATCH_INGEST_TOKENS", TOK_I,
                                      "CREDWATCH_READ_TOKENS", TOK_R "," TOK_I "x", "CREDWATCH_THREADS", "3",
                                      "CREDWATCH_MAX_BODY_BYTES", "2048", "CREDWATCH_REDIS_URL",
                                      "redis://127.0.0.1:6379/0", "CREDWATCH_DRAIN_SECONDS", "5", NULL};
    char *argv[] = {"serve", "--threads=7", "--max-inflated-bytes", "4096", "--redis-timeout-ms=250"};
    assert_int_equal(load(&c, env, 5, argv, msg, sizeof msg), 0);
    assert_true(c.ipv6);
    assert_true(c.loopback);
    assert_int_equal(c.threads, 7); /* the flag overrides the variable */
    assert_int_equal(c.max_body, 2048);
    assert_int_equal(c.max_inflated, 4096);
    assert_int_equal(c.redis_timeout_ms, 250);
    assert_int_equal(c.drain_s, 5);
    assert_int_equal(c.ingest.n, 1);
    assert_int_equal(c.read.n, 2);
    assert_string_equal(c.redis_url, "redis://127.0.0.1:6379/0");
}

static void test_config_invalid(void **state)
{
    (void)state;
    static struct api_config c;
    char msg[512];
    char *argv[] = {"serve"};
    static const struct {
        const char *var, *value;
    } bad[] = {
        {"CREDWATCH_THREADS", "0"}, {"CREDWATCH_THREADS", "abc"}, {"CREDWATCH_THREADS", "4x"},
        {"CREDWATCH_MAX_BODY_BYTES", "-1"}, {"CREDWATCH_MAX_BODY_BYTES", "10"},
        {"CREDWATCH_MAX_INFLATED_BYTES", ""}, {"CREDWATCH_REDIS_TIMEOUT_MS", "0"},
        {"CREDWATCH_DRAIN_SECONDS", "99999"}, {"CREDWATCH_LISTEN", "8080"}, {"CREDWATCH_LISTEN", "::1:8080"},
        {"CREDWATCH_LISTEN", "127.0.0.1:70000"}, {"CREDWATCH_LISTEN", "[::1]8080"},
        {"CREDWATCH_REDIS_URL", "http://x"}, {"CREDWATCH_ALLOW_UNAUTHENTICATED", "yes"},
        {"CREDWATCH_INGEST_TOKENS", "tiny"}, {"CREDWATCH_CORS_ORIGINS", "*"},
        {"CREDWATCH_CORS_ORIGINS", "https://soc.example.com/"},
        {"CREDWATCH_INGEST_CHUNK_BYTES", "4095"}, {"CREDWATCH_INGEST_CHUNK_BYTES", "134217729"},
        {"CREDWATCH_INGEST_CHUNK_BYTES", "8M"}, {"CREDWATCH_INGEST_CHUNK_BYTES", ""},
        {"CREDWATCH_INGEST_CHUNK_BYTES", "-4096"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *env[] = {bad[i].var, bad[i].value, NULL};
        assert_int_equal(load(&c, env, 1, argv, msg, sizeof msg), CW_ECONFIG);
        assert_non_null(strstr(msg, bad[i].var)); /* the message names the variable */
    }
    char *argv2[] = {"serve", "--threads=0"};
    assert_int_equal(load(&c, NULL, 2, argv2, msg, sizeof msg), CW_ECONFIG);
    assert_non_null(strstr(msg, "--threads"));
    char *argv3[] = {"serve", "--bogus"};
    assert_int_equal(load(&c, NULL, 2, argv3, msg, sizeof msg), CW_ECONFIG);
    char *argv4[] = {"serve", "--listen"};
    assert_int_equal(load(&c, NULL, 2, argv4, msg, sizeof msg), CW_ECONFIG);
    char *argv5[] = {"serve", "--ingest-chunk-bytes=1024"};
    assert_int_equal(load(&c, NULL, 2, argv5, msg, sizeof msg), CW_ECONFIG);
    assert_non_null(strstr(msg, "--ingest-chunk-bytes"));
}

/* The chunk of decoded events an ingest holds (engine.h): both ends of its range are taken, the flag
 * overrides the variable, and the bounds are the named ones. */
static void test_config_ingest_chunk(void **state)
{
    (void)state;
    static struct api_config c;
    char msg[512];
    char *argv[] = {"serve"};
    char lo[32], hi[32];
    snprintf(lo, sizeof lo, "%zu", (size_t)API_MIN_CHUNK_BYTES);
    snprintf(hi, sizeof hi, "%zu", (size_t)API_MAX_CHUNK_BYTES);
    const char *const at_lo[] = {"CREDWATCH_INGEST_CHUNK_BYTES", lo, NULL};
    assert_int_equal(load(&c, at_lo, 1, argv, msg, sizeof msg), 0);
    assert_int_equal(c.ingest_chunk_bytes, 4096);
    const char *const at_hi[] = {"CREDWATCH_INGEST_CHUNK_BYTES", hi, NULL};
    assert_int_equal(load(&c, at_hi, 1, argv, msg, sizeof msg), 0);
    assert_int_equal(c.ingest_chunk_bytes, (size_t)128 << 20);
    assert_true(API_MAX_CHUNK_BYTES < EVB_MAX_BYTES);  /* a chunk is filled past its size by one event */
    char *flag[] = {"serve", "--ingest-chunk-bytes", "65536"};
    assert_int_equal(load(&c, at_lo, 3, flag, msg, sizeof msg), 0);
    assert_int_equal(c.ingest_chunk_bytes, 65536);
    /* the message gives the range */
    const char *const below[] = {"CREDWATCH_INGEST_CHUNK_BYTES", "100", NULL};
    assert_int_equal(load(&c, below, 1, argv, msg, sizeof msg), CW_ECONFIG);
    assert_non_null(strstr(msg, "4096-134217728"));
}

/* HTTPS settings: both files or neither, the password and client CA only with them, the password
 * from the environment only (no flag: argv is public through ps). The files are read at start. */
static void test_config_tls(void **state)
{
    (void)state;
    static struct api_config c;
    char msg[512];
    char *argv[] = {"serve"};
    static const struct {
        const char *var, *value, *blamed;
    } half[] = {
        {"CREDWATCH_TLS_CERT", "/x/cert.pem", "CREDWATCH_TLS_KEY"},
        {"CREDWATCH_TLS_KEY", "/x/key.pem", "CREDWATCH_TLS_CERT"},
        {"CREDWATCH_TLS_KEY_PASSWORD", "pw", "CREDWATCH_TLS_KEY_PASSWORD"},
        {"CREDWATCH_TLS_CLIENT_CA", "/x/ca.pem", "CREDWATCH_TLS_CLIENT_CA"},
    };
    for (size_t i = 0; i < sizeof half / sizeof half[0]; i++) {
        const char *env[] = {half[i].var, half[i].value, NULL};
        assert_int_equal(load(&c, env, 1, argv, msg, sizeof msg), CW_ECONFIG);
        assert_non_null(strstr(msg, half[i].blamed));
    }
    static const char *const both[] = {"CREDWATCH_TLS_CERT", "/x/cert.pem", "CREDWATCH_TLS_KEY", "/x/key.pem",
                                       "CREDWATCH_TLS_KEY_PASSWORD", "pw", NULL};
    assert_int_equal(load(&c, both, 1, argv, msg, sizeof msg), 0);
    assert_string_equal(c.tls.key_password, "pw");
    assert_string_equal(c.tls.client_ca, "");
    char *flags[] = {"serve", "--tls-cert=/y/c.pem", "--tls-key", "/y/k.pem", "--tls-client-ca=/y/ca.pem"};
    assert_int_equal(load(&c, NULL, 5, flags, msg, sizeof msg), 0);
    assert_string_equal(c.tls.cert, "/y/c.pem");
    assert_string_equal(c.tls.key, "/y/k.pem");
    assert_string_equal(c.tls.client_ca, "/y/ca.pem");
    char *pw_flag[] = {"serve", "--tls-cert=/y/c.pem", "--tls-key=/y/k.pem", "--tls-key-password=pw"};
    assert_int_equal(load(&c, NULL, 4, pw_flag, msg, sizeof msg), CW_ECONFIG);
    assert_non_null(strstr(msg, "unknown argument"));
    assert_int_equal(load(&c, NULL, 1, argv, msg, sizeof msg), 0);
    assert_string_equal(c.tls.cert, ""); /* plain HTTP by default */
}

static void test_config_exposure(void **state)
{
    (void)state;
    static struct api_config c;
    char msg[512];
    char *argv[] = {"serve"};
    static const char *const open_env[] = {"CREDWATCH_LISTEN", "0.0.0.0:8080", NULL};
    assert_int_equal(load(&c, open_env, 1, argv, msg, sizeof msg), CW_ECONFIG);
    assert_non_null(strstr(msg, "CREDWATCH_LISTEN"));
    static const char *const half_env[] = {"CREDWATCH_LISTEN", "0.0.0.0:8080", "CREDWATCH_INGEST_TOKENS", TOK_I, NULL};
    assert_int_equal(load(&c, half_env, 1, argv, msg, sizeof msg), CW_ECONFIG);
    assert_non_null(strstr(msg, "CREDWATCH_READ_TOKENS"));
    static const char *const allow_env[] = {"CREDWATCH_LISTEN", "0.0.0.0:8080", "CREDWATCH_ALLOW_UNAUTHENTICATED", "1",
                                            NULL};
    assert_int_equal(load(&c, allow_env, 1, argv, msg, sizeof msg), 0);
    assert_false(c.loopback);
    static const char *const tok_env[] = {"CREDWATCH_LISTEN", "0.0.0.0:8080", "CREDWATCH_INGEST_TOKENS", TOK_I,
                                          "CREDWATCH_READ_TOKENS", TOK_R, NULL};
    assert_int_equal(load(&c, tok_env, 1, argv, msg, sizeof msg), 0);
    /* a token listed for both roles is refused at start, naming both variables */
    static const char *const both_env[] = {"CREDWATCH_LISTEN", "0.0.0.0:8080", "CREDWATCH_INGEST_TOKENS",
                                           TOK_I "," TOK_R, "CREDWATCH_READ_TOKENS", TOK_R, NULL};
    assert_int_equal(load(&c, both_env, 1, argv, msg, sizeof msg), CW_ECONFIG);
    assert_non_null(strstr(msg, "CREDWATCH_READ_TOKENS"));
    assert_non_null(strstr(msg, "token 2"));
    static const char *const lo_env[] = {"CREDWATCH_LISTEN", "127.0.0.2:8080", NULL};
    assert_int_equal(load(&c, lo_env, 1, argv, msg, sizeof msg), 0);
    assert_true(c.loopback);
    /* --help and --print-routes work even with a broken environment */
    static const char *const broken[] = {"CREDWATCH_THREADS", "zero", NULL};
    char *help[] = {"serve", "--help"};
    assert_int_equal(load(&c, broken, 2, help, msg, sizeof msg), 0);
    assert_true(c.help);
    char *routes[] = {"serve", "--print-routes"};
    assert_int_equal(load(&c, broken, 2, routes, msg, sizeof msg), 0);
    assert_true(c.print_routes);
}

/* The store choice: CREDWATCH_STORE, the data directory and its defaults, the file bound. */
static void test_config_store(void **state)
{
    (void)state;
    static struct api_config c;
    char msg[512];
    char *argv[] = {"serve"};
    assert_int_equal(load(&c, NULL, 1, argv, msg, sizeof msg), 0);
    assert_int_equal(c.store_kind, API_STORE_DURABLE); /* the default keeps what it was told */
    assert_false(c.store_given);
    assert_true(c.data_max_bytes == STORE_DURABLE_DEFAULT_BYTES);
    assert_true(c.data_dir[0] != '\0');
    assert_non_null(c.data_dir_from);
    /* systemd's StateDirectory=: the first of its paths */
    static const char *const sd[] = {"STATE_DIRECTORY", "/var/lib/cw-a:/var/lib/cw-b", NULL};
    assert_int_equal(load(&c, sd, 1, argv, msg, sizeof msg), 0);
    assert_string_equal(c.data_dir, "/var/lib/cw-a");
    assert_string_equal(c.data_dir_from, "STATE_DIRECTORY");
    /* the variable wins over systemd's, the flag over the variable */
    static const char *const given[] = {"STATE_DIRECTORY", "/var/lib/cw-a", "CREDWATCH_DATA_DIR", "/srv/cw", NULL};
    assert_int_equal(load(&c, given, 1, argv, msg, sizeof msg), 0);
    assert_string_equal(c.data_dir, "/srv/cw");
    assert_string_equal(c.data_dir_from, "CREDWATCH_DATA_DIR");
    char *flag[] = {"serve", "--data-dir=rel/dir", "--store", "durable"};
    assert_int_equal(load(&c, given, 4, flag, msg, sizeof msg), 0);
    assert_string_equal(c.data_dir, "rel/dir");
    assert_true(c.store_given);
    static const char *const mem[] = {"CREDWATCH_STORE", "memory", NULL};
    assert_int_equal(load(&c, mem, 1, argv, msg, sizeof msg), 0);
    assert_int_equal(c.store_kind, API_STORE_MEMORY);
    /* "" is unset: the default, and no conflict with Redis */
    static const char *const empty[] = {"CREDWATCH_STORE", "", "CREDWATCH_REDIS_URL", "redis://127.0.0.1:6379", NULL};
    assert_int_equal(load(&c, empty, 1, argv, msg, sizeof msg), 0);
    assert_false(c.store_given);
    /* the image's CREDWATCH_DATA_DIR beside a Redis URL is no conflict */
    static const char *const dd[] = {"CREDWATCH_DATA_DIR", "/data", "CREDWATCH_REDIS_URL", "redis://127.0.0.1:6379", NULL};
    assert_int_equal(load(&c, dd, 1, argv, msg, sizeof msg), 0);
}

static void expect_refused(const char *const *env, const char *a, const char *b)
{
    static struct api_config c;
    char msg[512];
    char *argv[] = {"serve"};
    assert_int_equal(load(&c, env, 1, argv, msg, sizeof msg), CW_ECONFIG);
    assert_non_null(strstr(msg, a));
    if (b)
        assert_non_null(strstr(msg, b));
}

static void test_config_store_invalid(void **state)
{
    (void)state;
    static const char *const kind[] = {"CREDWATCH_STORE", "lmdb", NULL};
    expect_refused(kind, "CREDWATCH_STORE", "durable or memory");
    static const char *const upper[] = {"CREDWATCH_STORE", "Durable", NULL};
    expect_refused(upper, "CREDWATCH_STORE", NULL);
    /* two choices of store: the message names both */
    static const char *const both[] = {"CREDWATCH_STORE", "durable", "CREDWATCH_REDIS_URL", "redis://127.0.0.1:6379",
                                       NULL};
    expect_refused(both, "CREDWATCH_STORE", "CREDWATCH_REDIS_URL");
    static const char *const both_c[] = {"CREDWATCH_STORE", "memory", "CREDWATCH_REDIS_CLUSTER", "127.0.0.1:7000",
                                         NULL};
    expect_refused(both_c, "CREDWATCH_STORE", "CREDWATCH_REDIS_CLUSTER");
    /* the file bound at and beyond its limits */
    char lo[32], hi[32], lo_ok[32], hi_ok[32];
    snprintf(lo, sizeof lo, "%llu", (unsigned long long)STORE_DURABLE_MIN_BYTES - 1);
    snprintf(hi, sizeof hi, "%llu", (unsigned long long)SET_DATA_BYTES_MAX + 1);
    snprintf(lo_ok, sizeof lo_ok, "%llu", (unsigned long long)STORE_DURABLE_MIN_BYTES);
    snprintf(hi_ok, sizeof hi_ok, "%llu", (unsigned long long)SET_DATA_BYTES_MAX);
    const char *const below[] = {"CREDWATCH_DATA_MAX_BYTES", lo, NULL}, *const above[] = {"CREDWATCH_DATA_MAX_BYTES", hi, NULL};
    expect_refused(below, "CREDWATCH_DATA_MAX_BYTES", "expected bytes");
    expect_refused(above, "CREDWATCH_DATA_MAX_BYTES", NULL);
    static const char *const junk[] = {"CREDWATCH_DATA_MAX_BYTES", "8G", NULL};
    expect_refused(junk, "CREDWATCH_DATA_MAX_BYTES", NULL);
    static struct api_config c;
    char msg[512];
    char *argv[] = {"serve"};
    const char *const at_lo[] = {"CREDWATCH_DATA_MAX_BYTES", lo_ok, NULL}, *const at_hi[] = {"CREDWATCH_DATA_MAX_BYTES", hi_ok, NULL};
    assert_int_equal(load(&c, at_lo, 1, argv, msg, sizeof msg), 0);
    assert_true(c.data_max_bytes == STORE_DURABLE_MIN_BYTES);
    assert_int_equal(load(&c, at_hi, 1, argv, msg, sizeof msg), 0);
    assert_true(c.data_max_bytes == SET_DATA_BYTES_MAX);
    /* a path at SET_PATH_MAX - 1 bytes is taken, one more is refused */
    static char path[SET_PATH_MAX + 1];
    memset(path, 'd', SET_PATH_MAX - 1);
    path[SET_PATH_MAX - 1] = '\0';
    const char *const fits[] = {"CREDWATCH_DATA_DIR", path, NULL};
    assert_int_equal(load(&c, fits, 1, argv, msg, sizeof msg), 0);
    assert_int_equal(strlen(c.data_dir), SET_PATH_MAX - 1);
    path[SET_PATH_MAX - 1] = 'd';
    const char *const too_long[] = {"CREDWATCH_DATA_DIR", path, NULL};
    expect_refused(too_long, "CREDWATCH_DATA_DIR", "longer than");
}

/* The default directory without systemd: the system one when usable, else beside the process. */
static void test_data_dir_default(void **state)
{
    (void)state;
    char out[SET_PATH_MAX], msg[256], tmpl[] = "/tmp/cw-datadir-XXXXXX";
    const char *from = NULL;
    const char *tmp = mkdtemp(tmpl);
    assert_non_null(tmp);
    assert_int_equal(set_data_dir(NULL, NULL, tmp, out, sizeof out, &from, msg, sizeof msg), 0);
    assert_string_equal(out, tmp);
    assert_string_equal(from, "system");
    char missing[64];  /* missing, in a parent that may be written: the store creates it */
    snprintf(missing, sizeof missing, "%s/credwatch", tmp);
    assert_int_equal(set_data_dir("", "", missing, out, sizeof out, &from, msg, sizeof msg), 0);
    assert_string_equal(out, missing);
    char deep[80];  /* its parent is missing too: not usable */
    snprintf(deep, sizeof deep, "%s/no/credwatch", tmp);
    assert_int_equal(set_data_dir(NULL, NULL, deep, out, sizeof out, &from, msg, sizeof msg), 0);
    assert_string_equal(out, SET_DATA_DIR_LOCAL);
    assert_string_equal(from, "local");
    assert_int_equal(set_data_dir(NULL, ":/x", "/etc/passwd", out, sizeof out, &from, msg, sizeof msg), 0);
    assert_string_equal(out, SET_DATA_DIR_LOCAL);  /* a file is no directory; an empty first path is unset */
    assert_int_equal(rmdir(tmp), 0);
}

/* ---- content negotiation ---- */

static void test_content(void **state)
{
    (void)state;
    assert_true(api_content_type_ingest("application/json"));
    assert_true(api_content_type_ingest("Application/JSON; charset=utf-8"));
    assert_true(api_content_type_ingest(" application/x-ndjson "));
    assert_true(api_content_type_ingest("application/gzip"));
    assert_true(api_content_type_ingest("application/octet-stream"));
    assert_false(api_content_type_ingest(NULL));
    assert_false(api_content_type_ingest("text/plain"));
    assert_false(api_content_type_ingest("application/jsonx"));
    assert_false(api_content_type_ingest("application/x-www-form-urlencoded"));
    assert_true(api_content_type_json("application/json;charset=UTF-8"));
    assert_false(api_content_type_json("application/x-ndjson"));
    assert_int_equal(api_content_encoding(NULL), API_ENC_IDENTITY);
    assert_int_equal(api_content_encoding("identity"), API_ENC_IDENTITY);
    assert_int_equal(api_content_encoding(" GZIP "), API_ENC_GZIP);
    assert_int_equal(api_content_encoding("x-gzip"), API_ENC_GZIP);
    assert_int_equal(api_content_encoding("br"), API_ENC_UNSUPPORTED);
    assert_int_equal(api_content_encoding("deflate"), API_ENC_UNSUPPORTED);
    assert_int_equal(api_content_encoding("gzip, br"), API_ENC_UNSUPPORTED);
}

/* ---- routing ---- */

static void test_routes(void **state)
{
    (void)state;
    struct api_match m;
    assert_int_equal(api_route_match("POST", "/v1/ingest/cloudtrail", &m), API_ROUTE_OK);
    assert_int_equal(m.route->handler, API_H_INGEST);
    assert_int_equal(m.route->role, API_ROLE_INGEST);
    assert_int_equal(api_route_match("GET", "/v1/findings/cwf-X", &m), API_ROUTE_OK);
    assert_int_equal(m.route->handler, API_H_GET);
    assert_string_equal(m.param, "cwf-X");
    assert_int_equal(api_route_match("PATCH", "/v1/findings/cwf-X", &m), API_ROUTE_OK);
    assert_int_equal(m.route->handler, API_H_PATCH);
    assert_int_equal(m.route->role, API_ROLE_READ);
    assert_int_equal(api_route_match("DELETE", "/v1/findings/cwf-X", &m), API_ROUTE_BAD_METHOD);
    assert_string_equal(m.allow, "GET, PATCH");
    assert_int_equal(m.path, API_P_FINDING);
    assert_int_equal(api_route_match("GET", "/v1/ingest/cloudtrail", &m), API_ROUTE_BAD_METHOD);
    assert_string_equal(m.allow, "POST");
    assert_int_equal(api_route_match("GET", "/v1/findings/", &m), API_ROUTE_NOT_FOUND);
    assert_int_equal(api_route_match("GET", "/v1/findings/a/b", &m), API_ROUTE_NOT_FOUND);
    assert_int_equal(api_route_match("GET", "/v1/findingsx", &m), API_ROUTE_NOT_FOUND);
    assert_int_equal(api_route_match("GET", "//", &m), API_ROUTE_NOT_FOUND);
    assert_int_equal(m.path, API_P_NONE);
    assert_int_equal(api_route_match("GET", "/healthz/", &m), API_ROUTE_NOT_FOUND);
    assert_int_equal(api_route_match("GET", "/v1/keys/ASIAEXAMPLEKEY000001", &m), API_ROUTE_OK);
    assert_string_equal(m.param, "ASIAEXAMPLEKEY000001");
    char longp[API_PARAM_MAX + 32] = "/v1/keys/";
    memset(longp + 9, 'A', API_PARAM_MAX + 10);
    longp[9 + API_PARAM_MAX + 10] = '\0';
    assert_int_equal(api_route_match("GET", longp, &m), API_ROUTE_OK);
    assert_true(m.param_too_long);
    assert_string_equal(api_path_template(API_P_KEY), "/v1/keys/{accessKeyId}");
}

/* Findings out: the read token lists sinks and lists and retries their dead letters; the retry
 * is a small-JSON-body route of its own (api_request.c buffers it as it buffers a PATCH). */
static void test_sink_routes(void **state)
{
    (void)state;
    struct api_match m;
    assert_int_equal(api_route_match("GET", "/v1/sinks", &m), API_ROUTE_OK);
    assert_int_equal(m.route->handler, API_H_SINKS);
    assert_int_equal(m.route->role, API_ROLE_READ);
    assert_int_equal(api_route_match("GET", "/v1/sinks/soc-hook/dead-letters", &m), API_ROUTE_OK);
    assert_int_equal(m.route->handler, API_H_DEAD_LETTERS);
    assert_int_equal(m.route->role, API_ROLE_READ);
    assert_string_equal(m.param, "soc-hook");
    assert_int_equal(api_route_match("POST", "/v1/sinks/soc-hook/dead-letters/retry", &m), API_ROUTE_OK);
    assert_int_equal(m.path, API_P_SINK_RETRY);
    assert_int_equal(m.route->handler, API_H_SINK_RETRY);
    assert_int_equal(m.route->role, API_ROLE_READ);
    assert_string_equal(m.param, "soc-hook");
    assert_int_equal(api_route_match("GET", "/v1/sinks/soc-hook/dead-letters/retry", &m), API_ROUTE_BAD_METHOD);
    assert_string_equal(m.allow, "POST");
    assert_int_equal(api_route_match("POST", "/v1/sinks", &m), API_ROUTE_BAD_METHOD);
    assert_string_equal(m.allow, "GET");
    assert_int_equal(api_route_match("GET", "/v1/sinks/soc-hook", &m), API_ROUTE_NOT_FOUND);
    assert_int_equal(api_route_match("GET", "/v1/sinks//dead-letters", &m), API_ROUTE_NOT_FOUND);
    assert_int_equal(api_route_match("GET", "/v1/sinks/a/dead-letters/retry/x", &m), API_ROUTE_NOT_FOUND);
    assert_string_equal(api_path_template(API_P_SINK_DEAD), "/v1/sinks/{name}/dead-letters");
    /* Firehose's route: the ingest role, its own handler (its answers in Firehose's shape) */
    assert_int_equal(api_route_match("POST", "/v1/ingest/firehose", &m), API_ROUTE_OK);
    assert_int_equal(m.path, API_P_INGEST_FIREHOSE);
    assert_int_equal(m.route->handler, API_H_FIREHOSE);
    assert_int_equal(m.route->role, API_ROLE_INGEST);
    assert_int_equal(api_route_match("GET", "/v1/ingest/firehose", &m), API_ROUTE_BAD_METHOD);
    /* the durable store's copy: the read role, GET only */
    assert_int_equal(api_route_match("GET", "/v1/backup", &m), API_ROUTE_OK);
    assert_int_equal(m.route->handler, API_H_BACKUP);
    assert_int_equal(m.route->role, API_ROLE_READ);
    assert_int_equal(api_route_match("POST", "/v1/backup", &m), API_ROUTE_BAD_METHOD);
    size_t n;
    const struct api_route *r = api_routes(&n);
    assert_int_equal(n, 19);
    for (size_t i = 0; i < n; i++) /* every route can be reached by its own template */
        assert_non_null(api_path_template(r[i].path));
}

/* The findings page: / sends a browser to /ui/, whose files need no token (they hold no data);
 * the compiled-in table finds index.html for "/ui/" and nothing outside ui/. */
static void test_page_routes(void **state)
{
    (void)state;
    struct api_match m;
    assert_int_equal(api_route_match("GET", "/", &m), API_ROUTE_OK);
    assert_int_equal(m.route->handler, API_H_ROOT);
    assert_int_equal(api_route_match("GET", "/ui/", &m), API_ROUTE_OK);
    assert_int_equal(m.route->handler, API_H_UI);
    assert_int_equal(m.route->role, API_ROLE_NONE);
    assert_int_equal(api_route_match("GET", "/ui/app.js", &m), API_ROUTE_OK);
    assert_int_equal(m.path, API_P_UI_FILE);
    assert_string_equal(m.param, "app.js");
    assert_int_equal(api_route_match("GET", "/ui", &m), API_ROUTE_OK);  /* to /ui/ */
    assert_int_equal(m.route->handler, API_H_ROOT);
    assert_int_equal(api_route_match("GET", "/ui//", &m), API_ROUTE_NOT_FOUND);
    assert_int_equal(api_route_match("GET", "/ui/a/b.js", &m), API_ROUTE_NOT_FOUND);
    assert_int_equal(api_route_match("POST", "/ui/", &m), API_ROUTE_BAD_METHOD);
    const struct api_ui_asset *a = api_ui_find(NULL);
    assert_non_null(a);
    assert_string_equal(a->name, "index.html");
    assert_ptr_equal(api_ui_find(""), a);
    assert_string_equal(a->type, "text/html; charset=utf-8");
    assert_null(api_ui_find("../openapi.json"));
    assert_null(api_ui_find("openapi.json"));
    assert_true(api_ui_total_bytes <= UI_MAX_BYTES);
    assert_true(api_ui_assets_n >= 1);
}

/* ---- CORS ---- */

static void test_cors_parse(void **state)
{
    (void)state;
    static struct api_cors c;
    char msg[API_CORS_MSG_MAX];
    assert_int_equal(api_cors_parse(" https://SOC.Example.com , http://127.0.0.1:3000,http://[::1]:8443 ", &c, msg,
                                    sizeof msg), 0);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.origin[0], "https://soc.example.com"); /* lowercased, as browsers send it */
    assert_string_equal(c.origin[1], "http://127.0.0.1:3000");
    assert_string_equal(c.origin[2], "http://[::1]:8443");
    assert_int_equal(api_cors_parse(NULL, &c, msg, sizeof msg), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(api_cors_parse("  ", &c, msg, sizeof msg), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(api_cors_parse("https://xn--bcher-kva.example:8443", &c, msg, sizeof msg), 0);
    /* each refused form, with the word its message must hold */
    static const struct {
        const char *v, *why;
    } bad[] = {
        {"https://soc.example.com/", "trailing slash"}, {"https://soc.example.com/app", "no path"},
        {"https://soc.example.com?x=1", "query"}, {"https://soc.example.com#top", "fragment"},
        {"https://user@soc.example.com", "user name"}, {"*", "wildcard"}, {"https://*.example.com", "wildcard"},
        {"null", "null"}, {"NULL", "null"}, {"ftp://soc.example.com", "http://"}, {"soc.example.com", "http://"},
        {"https://", "host"}, {"https://soc..example.com", "host"}, {"https://soc.example.com.", "host"},
        {"https://soc_example.com", "host"}, {"https://soc.example.com:", "port"},
        {"https://soc.example.com:0", "port"}, {"https://soc.example.com:65536", "port"},
        {"https://soc.example.com:08443", "port"}, {"https://soc.example.com:44x", "port"},
        {"https://soc.example.com:443", ":443"}, {"http://soc.example.com:80", ":80"}, {"http://[::1", "IPv6"},
        {"http://[zz::1]:3000", "IPv6"}, {"http://[::1]3000", "port"}, {"https://a.example,", "empty"},
        {"https://a.example,,https://b.example", "empty"}, {"https://a.example,https://A.example", "twice"},
        {"https://soc.exam ple.com", "host"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msg[0] = '\0';
        assert_int_equal(api_cors_parse(bad[i].v, &c, msg, sizeof msg), -1);
        if (!strstr(msg, bad[i].why))
            fail_msg("\"%s\": \"%s\" lacks \"%s\"", bad[i].v, msg, bad[i].why);
    }
    /* the length bound: API_CORS_ORIGIN_LEN_MAX accepted, one byte more refused */
    char longest[API_CORS_ORIGIN_LEN_MAX + 2];
    size_t host = API_CORS_ORIGIN_LEN_MAX - strlen("https://") - strlen(":65535");
    memcpy(longest, "https://", 8);
    for (size_t i = 0; i < host; i++)
        longest[8 + i] = i % 60 == 59 ? '.' : 'a';
    memcpy(longest + 8 + host, ":65535", 7);
    assert_int_equal(strlen(longest), API_CORS_ORIGIN_LEN_MAX);
    assert_int_equal(api_cors_parse(longest, &c, msg, sizeof msg), 0);
    memmove(longest + 9, longest + 8, strlen(longest + 8) + 1);
    longest[8] = 'b';
    assert_int_equal(api_cors_parse(longest, &c, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "longer than"));
    /* the count bound: API_CORS_ORIGINS_MAX accepted, one more refused */
    char many[API_CORS_ORIGINS_MAX * 32 + 64] = "";
    size_t off = 0;
    for (int i = 0; i < API_CORS_ORIGINS_MAX; i++)
        off += (size_t)snprintf(many + off, sizeof many - off, "%shttps://d%d.example", i ? "," : "", i);
    assert_int_equal(api_cors_parse(many, &c, msg, sizeof msg), 0);
    assert_int_equal(c.n, API_CORS_ORIGINS_MAX);
    snprintf(many + off, sizeof many - off, ",https://one-more.example");
    assert_int_equal(api_cors_parse(many, &c, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "more than"));
}

static void test_cors_match(void **state)
{
    (void)state;
    static struct api_cors c;
    char msg[API_CORS_MSG_MAX];
    assert_int_equal(api_cors_parse("https://soc.example.com,http://127.0.0.1:3000", &c, msg, sizeof msg), 0);
    assert_true(api_cors_allowed(&c, "https://soc.example.com"));
    assert_true(api_cors_allowed(&c, "http://127.0.0.1:3000"));
    assert_false(api_cors_allowed(&c, NULL));
    assert_false(api_cors_allowed(&c, ""));
    assert_false(api_cors_allowed(&c, "null"));
    assert_false(api_cors_allowed(&c, "http://soc.example.com"));       /* another scheme */
    assert_false(api_cors_allowed(&c, "https://soc.example.com:8443")); /* another port */
    assert_false(api_cors_allowed(&c, "https://soc.example.com/"));
    assert_false(api_cors_allowed(&c, "https://soc.example.com.evil.example"));
    assert_false(api_cors_allowed(&c, "https://soc.example.co"));
    assert_false(api_cors_allowed(&c, "http://127.0.0.1:30000"));
    assert_false(api_cors_allowed(&c, "HTTPS://SOC.EXAMPLE.COM")); /* browsers never send it so */
    /* the configuration carries it, named in a refusal */
    static struct api_config cfg;
    char *argv[] = {"serve", "--cors-origins", "http://127.0.0.1:3000"};
    assert_int_equal(load(&cfg, NULL, 3, argv, msg, sizeof msg), 0);
    assert_int_equal(cfg.cors.n, 1);
    char *none[] = {"serve"};
    assert_int_equal(load(&cfg, NULL, 1, none, msg, sizeof msg), 0);
    assert_int_equal(cfg.cors.n, 0); /* default: no CORS header ever */
}

/* Only the read role's routes are offered cross-origin, with the methods the route table has. */
static void test_cors_routes(void **state)
{
    (void)state;
    size_t n;
    const struct api_route *r = api_routes(&n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(api_cors_route_eligible(&r[i]), r[i].role == API_ROLE_READ);
    assert_false(api_cors_route_eligible(NULL));
    char m[API_CORS_METHODS_MAX];
    assert_int_equal(api_cors_methods(API_P_FINDING, m, sizeof m), 2);
    assert_string_equal(m, "GET, PATCH");
    assert_int_equal(api_cors_methods(API_P_FINDINGS, m, sizeof m), 1);
    assert_string_equal(m, "GET");
    assert_int_equal(api_cors_methods(API_P_SINK_RETRY, m, sizeof m), 1);
    assert_string_equal(m, "POST");
    static const enum api_path never[] = {API_P_INGEST_CLOUDTRAIL, API_P_INGEST_EVENTBRIDGE, API_P_HEALTHZ,
                                          API_P_READYZ, API_P_METRICS, API_P_OPENAPI, API_P_ROOT, API_P_UI,
                                          API_P_UI_FILE, API_P_NONE};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        assert_int_equal(api_cors_methods(never[i], m, sizeof m), 0);
        assert_string_equal(m, "");
    }
    static struct api_cors c, off;
    char why[API_CORS_MSG_MAX];
    assert_int_equal(api_cors_parse("https://soc.example.com", &c, why, sizeof why), 0);
    const char *o = "https://soc.example.com";
    assert_int_equal(api_cors_preflight(&c, API_P_FINDING, o, "PATCH", why, sizeof why), 0);
    assert_int_equal(api_cors_preflight(&c, API_P_FINDINGS, o, "GET", why, sizeof why), 0);
    assert_int_equal(api_cors_preflight(&c, API_P_SINK_RETRY, o, "POST", why, sizeof why), 0);
    static const struct {
        const struct api_cors *c;
        enum api_path p;
        const char *origin, *method, *why;
    } no[] = {
        {&off, API_P_FINDINGS, "https://soc.example.com", "GET", "CREDWATCH_CORS_ORIGINS is unset"},
        {&c, API_P_FINDINGS, NULL, "GET", "Origin"},
        {&c, API_P_FINDINGS, "https://soc.example.com", NULL, "Access-Control-Request-Method"},
        {&c, API_P_INGEST_CLOUDTRAIL, "https://soc.example.com", "POST", "/v1/ingest/cloudtrail"},
        {&c, API_P_INGEST_EVENTBRIDGE, "https://soc.example.com", "POST", "not offered"},
        {&c, API_P_HEALTHZ, "https://soc.example.com", "GET", "only the read API"},
        {&c, API_P_FINDINGS, "https://evil.example", "GET", "https://evil.example"},
        {&c, API_P_FINDING, "https://soc.example.com", "DELETE", "offered: GET, PATCH"},
        {&c, API_P_FINDINGS, "https://soc.example.com", "PATCH", "offered: GET"},
        {&c, API_P_FINDING, "https://soc.example.com", "patch", "not offered"},
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        assert_int_equal(api_cors_preflight(no[i].c, no[i].p, no[i].origin, no[i].method, why, sizeof why), -1);
        if (!strstr(why, no[i].why))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, no[i].why);
    }
}

static void test_metrics_text(void **state)
{
    (void)state;
    api_metrics_request(API_P_FINDINGS, "GET", 200, 0.003);
    api_metrics_request(API_P_NONE, "BREW", 418, 0.2);
    api_metrics_records(3, 2, 1, 0, 1, 0);
    api_metrics_store(0.01);
    api_metrics_ready(1);
    size_t len = 0;
    char *t = api_metrics_render(NULL, &len);
    assert_non_null(t);
    assert_int_equal(strlen(t), len);
    static const char *const want[] = {
        "credwatch_http_requests_total{route=\"/v1/findings\",method=\"GET\",status=\"200\"} 1\n",
        "credwatch_http_requests_total{route=\"none\",method=\"OTHER\",status=\"other\"} 1\n",
        "credwatch_http_request_duration_seconds_bucket{route=\"/v1/findings\",le=\"0.005\"} 1\n",
        "credwatch_http_request_duration_seconds_count{route=\"/v1/findings\"} 1\n",
        "credwatch_records_ingested_total 3\n", "credwatch_records_ignored_total 2\n", "credwatch_records_duplicate_total 1\n",
        "credwatch_records_skipped_total 0\n", "credwatch_findings_created_total 1\n",
        "credwatch_findings_updated_total 0\n", "credwatch_store_errors_total 0\n",
        "credwatch_store_duration_seconds_bucket{le=\"+Inf\"} 1\n", "credwatch_ready 1\n",
        "credwatch_inflight_requests 0\n", "# TYPE credwatch_store_duration_seconds histogram\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(t, want[i]))
            fail_msg("missing: %s", want[i]);
    assert_null(strstr(t, "credwatch_store_file_bytes"));  /* not the durable store: no disk figures */
    free(t);
    const struct api_metrics_disk d = {65536, 40960, STORE_DURABLE_DEFAULT_BYTES, 42, 7, 3, 1};
    api_metrics_store_disk(&d);
    t = api_metrics_render(NULL, &len);
    assert_non_null(t);
    static const char *const disk[] = {"credwatch_store_file_bytes 65536\n", "credwatch_store_used_bytes 40960\n",
                                       "credwatch_store_data_max_bytes 8589934592\n", "credwatch_store_keys 42\n",
                                       "credwatch_store_findings 7\n", "credwatch_store_swept_total{kind=\"keys\"} 3\n",
                                       "credwatch_store_swept_total{kind=\"findings\"} 1\n"};
    for (size_t i = 0; i < sizeof disk / sizeof disk[0]; i++)
        if (!strstr(t, disk[i]))
            fail_msg("missing: %s", disk[i]);
    free(t);
}

/* The sink families, from a delivery thread that has delivered nothing yet (its receiver's port is
 * closed, and the store holds no event): every series is there, at zero, with the sink label. */
static void test_metrics_sinks(void **state)
{
    (void)state;
    assert_int_equal(snk_global_init(), 0);
    struct store *st = store_mem_new();
    assert_non_null(st);
    const char *names[1] = {"soc-hook"};
    assert_int_equal(store_out_open(st, names, 1), 0);
    static struct snk_confs cs;
    memset(&cs, 0, sizeof cs);
    cs.n = 1;
    struct snk_conf *c = &cs.sink[0];
    snprintf(c->name, sizeof c->name, "soc-hook");
    c->type = SNK_WEBHOOK;
    c->min_severity = SNK_SEV_LOW;
    snprintf(c->url, sizeof c->url, "http://127.0.0.1:9/");
    snprintf(c->secret, sizeof c->secret, "0123456789abcdef0123");
    c->timeout_ms = 1000;
    c->connect_timeout_ms = 500;
    c->give_up_s = SNK_GIVE_UP_S;
    struct snk_run *run = NULL;
    char msg[128];
    assert_int_equal(snk_run_start(&cs, st, "test:1", NULL, &run, msg, sizeof msg), 0);
    size_t len = 0;
    char *t = api_metrics_render(run, &len);
    assert_non_null(t);
    assert_int_equal(strlen(t), len);
    static const char *const want[] = {
        "# TYPE credwatch_sink_delivered_total counter\n", "credwatch_sink_delivered_total{sink=\"soc-hook\"} 0\n",
        "credwatch_sink_failed_attempts_total{sink=\"soc-hook\"} 0\n",
        "credwatch_sink_dead_lettered_total{sink=\"soc-hook\",reason=\"refused\"} 0\n",
        "credwatch_sink_dead_lettered_total{sink=\"soc-hook\",reason=\"outbox_full\"} 0\n",
        "credwatch_sink_filtered_total{sink=\"soc-hook\"} 0\n",
        "# TYPE credwatch_sink_queue_depth gauge\n", "# TYPE credwatch_sink_queue_held gauge\n",
        "# TYPE credwatch_sink_dead_letters gauge\n", "# TYPE credwatch_sink_oldest_undelivered_age_seconds gauge\n",
        "# TYPE credwatch_sink_delivery_latency_seconds histogram\n",
        "credwatch_sink_delivery_latency_seconds_bucket{sink=\"soc-hook\",le=\"0.05\"} 0\n",
        "credwatch_sink_delivery_latency_seconds_bucket{sink=\"soc-hook\",le=\"300\"} 0\n",
        "credwatch_sink_delivery_latency_seconds_bucket{sink=\"soc-hook\",le=\"+Inf\"} 0\n",
        "credwatch_sink_delivery_latency_seconds_sum{sink=\"soc-hook\"} 0.000000\n",
        "credwatch_sink_delivery_latency_seconds_count{sink=\"soc-hook\"} 0\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(t, want[i]))
            fail_msg("missing: %s", want[i]);
    /* no URL or secret in the text, whatever the families say */
    assert_null(strstr(t, "127.0.0.1:9"));
    assert_null(strstr(t, "0123456789abcdef0123"));
    free(t);
    snk_run_stop(run);
    /* without sinks there is no sink family at all */
    t = api_metrics_render(NULL, &len);
    assert_non_null(t);
    assert_null(strstr(t, "credwatch_sink_"));
    free(t);
    store_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_credential_bearer), cmocka_unit_test(test_credential_basic),
        cmocka_unit_test(test_credential_api_key), cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_tokens_parse),      cmocka_unit_test(test_auth_check),
        cmocka_unit_test(test_b64),               cmocka_unit_test(test_cursor),
        cmocka_unit_test(test_time),              cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_threads_per_store),
        cmocka_unit_test(test_config_env_and_flags), cmocka_unit_test(test_config_invalid),
        cmocka_unit_test(test_config_exposure),   cmocka_unit_test(test_content),
        cmocka_unit_test(test_config_tls),        cmocka_unit_test(test_config_ingest_chunk),
        cmocka_unit_test(test_config_store),      cmocka_unit_test(test_config_store_invalid),
        cmocka_unit_test(test_data_dir_default),
        cmocka_unit_test(test_routes),            cmocka_unit_test(test_sink_routes),
        cmocka_unit_test(test_page_routes),       cmocka_unit_test(test_cors_parse),
        cmocka_unit_test(test_cors_match),        cmocka_unit_test(test_cors_routes),
        cmocka_unit_test(test_metrics_text),      cmocka_unit_test(test_metrics_sinks),
    };
    return cmocka_run_group_tests_name("api", tests, NULL, NULL);
}
