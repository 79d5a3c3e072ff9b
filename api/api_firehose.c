/* api_firehose.c — POST /v1/ingest/firehose: Amazon Data Firehose's HTTP endpoint delivery, and
 * through it CloudWatch Logs subscriptions (api_firehose.h has the protocol).
 *
 * Status policy. Firehose treats only 200 as delivered and 413 as final, and retries anything else
 * with the same request id until the stream's retry duration runs out, then writes the request to
 * its S3 backup bucket. So:
 *   - a transient fault (the store unavailable, out of memory, admission control) is 503, never
 *     4xx: the retry succeeds, and the event ids make its repeats duplicates (exactly once);
 *   - a request that is no Firehose envelope at all (not JSON, no records array, 0 or more than
 *     API_FH_RECORDS_MAX records, a record without string data, an invalid requestId, a header id
 *     that is not the body's) is 400 with errorMessage: a healthy Firehose never sends one, so it
 *     is a misconfigured sender; the retries change nothing and the request ends in the backup
 *     bucket, where it can be read and replayed, instead of being dropped here in silence;
 *   - a missing or wrong access key is 401 (403 for a read token): retried, then backed up, so
 *     nothing is lost while the key is fixed;
 *   - a body over CREDWATCH_MAX_BODY_BYTES (or inflating past CREDWATCH_MAX_INFLATED_BYTES) is 413;
 *   - a record that can never be valid (bad base64, over API_FH_RECORD_MAX, a gzip bomb, not
 *     CloudTrail, a malformed CloudWatch Logs message, a log event that is not CloudTrail) does not
 *     fail the request: Firehose cannot resend part of a batch, so a non-200 would resend every good
 *     record with it until the retry duration ends and then send them all to S3, blinding detection
 *     for that long because of one record that no retry can mend. The rest is applied and the
 *     answer is 200; the bad record is counted (credwatch_firehose_records_rejected_total{reason})
 *     and logged (the first API_FH_LOG_REJECTS of a request one by one, then their number).
 * Every answer on this route, refusals of the headers included, is in Firehose's shape
 * (api_fh_answer; api_reply.c's api_fh_reply sends it, and api_reply_error hands it this route's
 * refusals). The counts Firehose ignores ride in X-Credwatch-* headers of a 200. The route's handler,
 * which decodes the records and applies them, is api_handlers.c's h_firehose; this file is the
 * protocol alone (no libmicrohttpd, no engine), so the unit tests reach all of it.
 */
#include "api_firehose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <yajl/yajl_parse.h>

#include "cw.h"

static const char *const REASONS[API_FH_R_COUNT] = {
    [API_FH_R_BASE64] = "invalid_base64",   [API_FH_R_TOO_LARGE] = "too_large",
    [API_FH_R_GZIP_BOMB] = "gzip_bomb",     [API_FH_R_GZIP] = "invalid_gzip",
    [API_FH_R_CWLOGS] = "invalid_cwlogs",   [API_FH_R_NOT_CLOUDTRAIL] = "not_cloudtrail",
};

const char *api_fh_reason_name(enum api_fh_reason r)
{
    return (unsigned)r < API_FH_R_COUNT ? REASONS[r] : "unknown";
}

static int id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == ':';
}

int api_fh_request_id_ok(const char *s, size_t n)
{
    if (!s || n == 0 || n > API_FH_REQUEST_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!id_char((unsigned char)s[i]))
            return 0;
    return 1;
}

static int blank(char c) { return c == ' ' || c == '\t'; }

int api_fh_access_key(const char *header, char *out, size_t out_size)
{
    if (!header)
        return 0;
    size_t len = strnlen(header, API_FH_ACCESS_KEY_MAX + 1);
    if (len > API_FH_ACCESS_KEY_MAX)
        return -1;
    const char *s = header;
    while (len && blank(*s)) {
        s++;
        len--;
    }
    while (len && blank(s[len - 1]))
        len--;
    if (len == 0)
        return 0;
    if (s[0] != '{') {  /* the key as configured on the stream */
        if (len >= out_size)
            return -1;
        memcpy(out, s, len);
        out[len] = '\0';
        return 1;
    }
    json_t *doc = json_loadb(s, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *key = json_object_get(doc, "api_key");
    int rc = -1;
    if (json_is_string(key) && json_string_length(key) < out_size &&
        strlen(json_string_value(key)) == json_string_length(key)) {
        memcpy(out, json_string_value(key), json_string_length(key) + 1);
        rc = 1;
    }
    json_decref(doc);
    return rc;
}

static int key_is(const unsigned char *k, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(k, name, n) == 0;
}

/* ---- the envelope: yajl's callbacks, one pass, no tree ----
 * The body can be tens of MiB of base64; a tree would copy every string. A data string is kept as
 * a span of the body when yajl hands it over in place (no escapes: base64 has none), else copied. */

struct env_state {
    struct api_fh_env *env;
    int depth, key, in_record, record_key_data, bad, oom;
    int seen_id, seen_ts, seen_records, records_array, id_ok, ts_ok;
    size_t cap;
    const uint8_t *body;
    size_t body_len;
    char m[128];
};
enum { E_OTHER = 0, E_ID, E_TS, E_RECORDS };

static int env_fail(struct env_state *s, const char *why)
{
    if (!s->bad)
        snprintf(s->m, sizeof s->m, "%s", why);
    s->bad = 1;
    return 0;
}

/* A value at the current depth: a records element starts here. */
static int env_value(struct env_state *s, int is_map)
{
    if (s->depth == 1 && s->key == E_RECORDS)
        s->records_array = 0;
    if (s->depth != 2 || s->key != E_RECORDS || !s->records_array)
        return 1;  /* not an element of records */
    struct api_fh_env *e = s->env;
    if (e->n >= API_FH_RECORDS_MAX) {
        e->n++;  /* counted, for the message; nothing kept */
        s->in_record = 0;
        return 1;
    }
    if (!is_map)
        return env_fail(s, "a record is not an object with a string data");
    void *p = e->rec;
    if (cw_grow(&p, &s->cap, e->n + 1, sizeof *e->rec, 64, API_FH_RECORDS_MAX)) {
        s->oom = 1;
        return 0;
    }
    e->rec = p;
    e->rec[e->n].p = NULL;
    e->rec[e->n].off = 0;
    e->rec[e->n].len = SIZE_MAX;  /* no data yet */
    e->n++;
    s->in_record = 1;
    return 1;
}

static int env_scalar(void *ctx, int is_int)
{
    struct env_state *s = ctx;
    if (s->depth == 1 && s->key == E_TS)
        s->ts_ok = is_int;
    if (s->depth == 3 && s->in_record && s->record_key_data)
        return env_fail(s, "a record is not an object with a string data");
    s->record_key_data = 0;
    return env_value(s, 0);
}
static int env_null(void *ctx) { return env_scalar(ctx, 0); }
static int env_bool(void *ctx, int b) { (void)b; return env_scalar(ctx, 0); }

static int env_number(void *ctx, const char *v, size_t n)
{
    size_t i = n && v[0] == '-';
    int integer = i < n;
    for (; i < n; i++)
        integer &= v[i] >= '0' && v[i] <= '9';
    return env_scalar(ctx, integer);
}

static int env_string(void *ctx, const unsigned char *v, size_t n)
{
    struct env_state *s = ctx;
    if (s->depth == 1 && s->key == E_ID) {
        s->id_ok = api_fh_request_id_ok((const char *)v, n);
        if (s->id_ok) {
            memcpy(s->env->id, v, n);
            s->env->id[n] = '\0';
        }
        return 1;
    }
    if (s->depth == 1 && s->key == E_TS)
        s->ts_ok = 0;
    if (s->depth == 3 && s->in_record && s->record_key_data) {
        struct api_fh_span *sp = &s->env->rec[s->env->n - 1];
        s->record_key_data = 0;
        if (sp->len != SIZE_MAX)
            return env_fail(s, "a record has data twice");
        if (v >= s->body && v + n <= s->body + s->body_len) {
            sp->p = (const char *)v;
        } else {
            sp->off = s->env->copies.len;
            if (cw_buf_append(&s->env->copies, v, n) != CW_OK) {
                s->oom = 1;
                return 0;
            }
        }
        sp->len = n;
        return 1;
    }
    return env_value(s, 0);
}

static int env_key(void *ctx, const unsigned char *k, size_t n)
{
    struct env_state *s = ctx;
    if (s->depth == 1) {
        s->key = key_is(k, n, "requestId") ? E_ID : key_is(k, n, "timestamp") ? E_TS
               : key_is(k, n, "records") ? E_RECORDS : E_OTHER;
        int *seen = s->key == E_ID ? &s->seen_id : s->key == E_TS ? &s->seen_ts
                  : s->key == E_RECORDS ? &s->seen_records : NULL;
        if (seen && (*seen)++)
            return env_fail(s, "a member of the envelope is given twice");
    } else if (s->depth == 3 && s->in_record) {
        s->record_key_data = key_is(k, n, "data");
    }
    return 1;
}

static int env_start(struct env_state *s, int is_map)
{
    if (s->depth == 0 && !is_map)
        return env_fail(s, "the body is not a JSON object");
    if (s->depth == 1 && s->key == E_ID)
        s->id_ok = 0;
    if (s->depth == 1 && s->key == E_TS)
        s->ts_ok = 0;
    if (s->depth == 3 && s->in_record && s->record_key_data)
        return env_fail(s, "a record is not an object with a string data");
    s->record_key_data = 0;
    if (s->depth > 0 && !env_value(s, is_map))
        return 0;
    if (s->depth == 1 && s->key == E_RECORDS)
        s->records_array = !is_map;
    if (++s->depth > API_FH_DEPTH_MAX)
        return env_fail(s, "the body nests deeper than a Firehose request");
    return 1;
}
static int env_start_map(void *ctx) { return env_start(ctx, 1); }
static int env_start_array(void *ctx) { return env_start(ctx, 0); }

static int env_end(void *ctx)
{
    struct env_state *s = ctx;
    s->depth--;
    if (s->depth == 2 && s->in_record) {
        s->in_record = 0;
        if (s->env->n <= API_FH_RECORDS_MAX && s->env->rec[s->env->n - 1].len == SIZE_MAX)
            return env_fail(s, "a record is not an object with a string data");
    }
    if (s->depth == 1)
        s->key = E_OTHER;
    return 1;
}

static const yajl_callbacks ENV_CALLBACKS = {
    .yajl_null = env_null,
    .yajl_boolean = env_bool,
    .yajl_number = env_number,
    .yajl_string = env_string,
    .yajl_start_map = env_start_map,
    .yajl_map_key = env_key,
    .yajl_end_map = env_end,
    .yajl_start_array = env_start_array,
    .yajl_end_array = env_end,
};

/* What is wrong with the envelope once parsed, or NULL. */
static const char *env_verdict(struct env_state *s, const char *header_id, char *m, size_t size)
{
    struct api_fh_env *e = s->env;
    if (!s->seen_id || !s->id_ok) {
        e->id[0] = '\0';
        return "requestId must be a string of 1-128 characters [A-Za-z0-9._:-]";
    }
    if (header_id && strcmp(header_id, e->id) != 0) {
        e->id[0] = '\0';  /* the header's is echoed */
        return "X-Amz-Firehose-Request-Id is not the body's requestId";
    }
    if (s->seen_ts && !s->ts_ok)
        return "timestamp must be an integer (milliseconds since the epoch)";
    if (!s->seen_records || !s->records_array)
        return "records must be an array";
    if (e->n == 0 || e->n > API_FH_RECORDS_MAX) {
        snprintf(m, size, "records holds %zu records; 1-%d are accepted", e->n, API_FH_RECORDS_MAX);
        return m;
    }
    return NULL;
}

const char *api_fh_envelope(const uint8_t *body, size_t len, const char *header_id, struct api_fh_env *env,
                            char *m, size_t size)
{
    memset(env, 0, sizeof *env);
    cw_buf_init(&env->copies, len);
    struct env_state s = {.env = env, .body = body, .body_len = len};
    yajl_handle y = yajl_alloc(&ENV_CALLBACKS, NULL, &s);
    if (!y) {
        env->oom = 1;
        return "out of memory";
    }
    yajl_status st = yajl_parse(y, body, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(y);
    size_t at = yajl_get_bytes_consumed(y);
    yajl_free(y);
    const char *why = NULL;
    if (s.oom) {
        env->oom = 1;
        why = "out of memory";
    } else if (s.bad) {
        snprintf(m, size, "%s", s.m);
        why = m;
    } else if (st != yajl_status_ok) {
        snprintf(m, size, "the body is not JSON (near byte %zu)", at);
        why = m;
    } else {
        why = env_verdict(&s, header_id, m, size);
    }
    if (why && (s.bad || st != yajl_status_ok))
        env->id[0] = '\0';  /* not read to its end: the header's id is echoed */
    return why;
}

const char *api_fh_data(const struct api_fh_env *env, size_t i, size_t *len)
{
    const struct api_fh_span *sp = &env->rec[i];
    *len = sp->len;
    return sp->p ? sp->p : env->copies.p + sp->off;
}

void api_fh_env_free(struct api_fh_env *env)
{
    free(env->rec);
    cw_buf_free(&env->copies);
    env->rec = NULL;
    env->n = 0;
}

/* ---- the answer ---- */

char *api_fh_answer(const char *id, int64_t now_ms, const char *error_message, size_t *len)
{
    json_t *doc = error_message ? json_pack("{s:s,s:I,s:s}", "requestId", id, "timestamp", (json_int_t)now_ms,
                                            "errorMessage", error_message)
                                : json_pack("{s:s,s:I}", "requestId", id, "timestamp", (json_int_t)now_ms);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (text)
        *len = strlen(text);
    return text;
}
