/* fuzz_firehose.c — POST /v1/ingest/firehose without HTTP: Firehose's envelope reader
 * (api_fh_envelope, api_fh_answer) and the CloudWatch Logs subscription message parser
 * (cwl_gunzip, cwl_parse), as h_firehose and record_bytes (api_handlers.c) chain them.
 *
 * Every input is read two ways:
 *   1. as a request body: inflated first when it starts with gzip's magic (Content-Encoding: gzip),
 *      then read as the envelope; each record's data is base64-decoded and handed to the record
 *      pipeline (gzip inflated under CWL_MESSAGE_MAX and the decoder's ratio, then cwl_parse);
 *   2. as one record's bytes itself (the seeds hold bare subscription messages, plain and gzip),
 *      so the message parser is reached without the mutator having to write valid base64.
 * Invariants:
 *   - no crash, no leak (libFuzzer's -detect_leaks), no input over 10 s (run.sh's -timeout);
 *   - the envelope: a request accepted has 1-API_FH_RECORDS_MAX records, an id api_fh_request_id_ok
 *     takes, each record's data a span inside the body or inside the copies, the copies and the
 *     records' bytes together never more than the body; a refused one says why, within the message
 *     buffer, and its id is "" or one that may be echoed;
 *   - the header id: the body's own id gives the same verdict, another valid id refuses it and
 *     echoes nothing of the body;
 *   - the answer is JSON of exactly requestId (the id given), timestamp and, on failure,
 *     errorMessage (the text given), for every verdict the reader gives;
 *   - the message parser: the sink sees events only for a DATA_MESSAGE that parsed whole, indexed
 *     0, 1, ... in order, at most CWL_EVENTS_MAX, each message no longer than the input and all of
 *     them together neither; an error has a message, valid UTF-8 (it is quoted in a JSON log line);
 *     inflation stays under its bounds; a sink that
 *     stops at event k stops the parse there (CW_EABORT, k + 1 events seen, kind CWL_NONE);
 *   - deterministic: a second read of the same bytes gives the same digest of everything delivered.
 */
#include "fuzz_common.h"

#include <jansson.h>

#include "api_b64.h"
#include "api_firehose.h"
#include "cw.h"
#include "cwlogs.h"
#include "decode.h"

#define FZ_FH_MAX_INFLATED ((size_t)64 << 20)  /* the envelope's inflated copy (the server's default is
                                                  DEC_DEFAULT_MAX_INFLATED; less keeps RSS low) */
#define FZ_FH_RAW_MAX (API_FH_RECORD_B64_MAX / 4 * 3)  /* as run_records' buffer */
#define FZ_MSG 256

static uint8_t raw[FZ_FH_RAW_MAX];

/* ---- the message parser ---- */

struct fz_sink {
    uint64_t h;
    size_t calls, bytes, in_len;
    size_t stop_at;  /* SIZE_MAX: never */
};

static int fz_take(void *ud, size_t index, const char *msg, size_t len)
{
    struct fz_sink *s = ud;
    fz_check(index == s->calls, "log events delivered out of order");
    fz_check(index < CWL_EVENTS_MAX, "more log events delivered than CWL_EVENTS_MAX");
    s->calls++;
    if (msg) {
        fz_check(len <= s->in_len, "a log event's message is longer than its input");
        s->bytes += len;
        fz_check(s->bytes <= s->in_len, "the log events' messages are longer than their input");
        s->h = fz_fnv(s->h, msg, len);
    }
    s->h = fz_fnv(s->h, msg ? "m" : "n", 1);
    return index == s->stop_at;
}

static uint64_t check_cwl(const uint8_t *buf, size_t len, size_t stop_at)
{
    struct fz_sink s = {.h = FZ_FNV_OFFSET, .in_len = len, .stop_at = stop_at};
    struct cwl_sink sink = {fz_take, &s};
    enum cwl_kind kind = (enum cwl_kind)-1;
    size_t n = SIZE_MAX;
    char msg[FZ_MSG];
    memset(msg, 'x', sizeof msg);
    int rc = cwl_parse(buf, len, &sink, &kind, &n, msg, sizeof msg);
    fz_check(memchr(msg, '\0', sizeof msg) != NULL, "cwl_parse's message not NUL-terminated");
    fz_check(rc == 0 || rc == CW_EFORMAT || rc == CW_ETOOBIG || rc == CW_EABORT, "cwl_parse: unexpected result");
    fz_check(n == s.calls, "n_events is not the events the sink saw");
    fz_check(kind == CWL_NONE || kind == CWL_DATA || kind == CWL_CONTROL, "cwl_parse: unknown kind");
    if (rc != 0) {
        fz_check(msg[0] != '\0', "cwl_parse failed without a message");
        fz_check(kind == CWL_NONE, "cwl_parse failed with a kind");
        json_t *j = json_string(msg);  /* the message goes into a JSON log line: UTF-8 or lost */
        fz_check(j != NULL, "cwl_parse's message is not UTF-8");
        json_decref(j);
    }
    if (rc == CW_EABORT)
        fz_check(stop_at != SIZE_MAX && s.calls == stop_at + 1, "the parse went on past a sink that stopped");
    else
        fz_check(s.calls <= stop_at, "a sink's stop was not honoured");
    if (kind != CWL_DATA && rc != CW_EABORT)
        fz_check(s.calls == 0, "events delivered for input that is no DATA_MESSAGE");
    if (len > CWL_MESSAGE_MAX)
        fz_check(s.calls == 0, "events delivered from a message over CWL_MESSAGE_MAX");
    uint64_t h = fz_fnv(s.h, &rc, sizeof rc);
    h = fz_fnv(h, &kind, sizeof kind);
    return fz_fnv_str(h, msg, sizeof msg);
}

/* One record's bytes as record_bytes takes them: inflated when gzip (CWL_MESSAGE_MAX, the ratio),
 * then the message parser; a stop at a point drawn from the input, to check CW_EABORT. */
static uint64_t check_record(const uint8_t *buf, size_t len, uint64_t *rng)
{
    uint64_t h = FZ_FNV_OFFSET;
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    if (cwl_is_gzip(buf, len)) {
        enum cwl_gz g = cwl_gunzip(buf, len, CWL_MESSAGE_MAX, DEC_DEFAULT_MAX_RATIO, &plain, &plain_len);
        fz_check(g != CWL_GZ_NOMEM, "cwl_gunzip ran out of memory");
        fz_check((g == CWL_GZ_OK) == (plain != NULL), "cwl_gunzip's buffer does not match its result");
        h = fz_fnv(h, &g, sizeof g);
        if (g != CWL_GZ_OK)
            return h;
        fz_check(plain_len <= CWL_MESSAGE_MAX, "inflated past max_out");
        fz_check(plain_len <= len * (size_t)DEC_DEFAULT_MAX_RATIO + CWL_RATIO_SLACK, "inflated past the ratio");
        fz_check(plain[plain_len] == '\0', "the inflated buffer is not NUL-terminated");
        buf = plain;
        len = plain_len;
    }
    h = fz_fnv(h, &len, sizeof len);
    uint64_t a = check_cwl(buf, len, SIZE_MAX);
    h = fz_fnv(h, &a, sizeof a);
    uint64_t b = check_cwl(buf, len, SIZE_MAX);
    fz_check(a == b, "cwl_parse is not deterministic");
    size_t stop = (size_t)(fz_next(rng) % 4);
    (void)check_cwl(buf, len, stop);
    free(plain);
    return h;
}

/* ---- the envelope ---- */

static void check_answer(const char *id, const char *error_message)
{
    size_t len = 0;
    char *text = api_fh_answer(id, 1700000000123, error_message, &len);
    fz_check(text != NULL, "no answer for a verdict of the envelope reader");
    fz_check(strlen(text) == len, "the answer's length is not its text's");
    json_error_t err;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
    fz_check(doc != NULL, "the answer is not JSON");
    fz_check(json_object_size(doc) == (error_message ? 3u : 2u), "the answer has other members");
    fz_check(json_is_string(json_object_get(doc, "requestId")) &&
                 strcmp(json_string_value(json_object_get(doc, "requestId")), id) == 0,
             "the answer's requestId is not the one given");
    fz_check(json_integer_value(json_object_get(doc, "timestamp")) == 1700000000123, "the answer's timestamp");
    if (error_message)
        fz_check(json_is_string(json_object_get(doc, "errorMessage")) &&
                     strcmp(json_string_value(json_object_get(doc, "errorMessage")), error_message) == 0,
                 "the answer's errorMessage is not the one given");
    json_decref(doc);
    free(text);
}

/* Reads body as the envelope and every record through the pipeline; the digest of it all. */
static uint64_t check_envelope(const uint8_t *body, size_t len, uint64_t *rng)
{
    struct api_fh_env env;
    char m[API_FH_REQUEST_ID_MAX + 192];
    memset(m, 'x', sizeof m);
    const char *why = api_fh_envelope(body, len, NULL, &env, m, sizeof m);
    fz_check(!env.oom, "the envelope reader ran out of memory");
    if (why == m)  /* m is written only when the refusal is formatted there */
        fz_check(memchr(m, '\0', sizeof m) != NULL, "the envelope's message not NUL-terminated");
    size_t id_len = strnlen(env.id, sizeof env.id);
    fz_check(id_len < sizeof env.id, "the envelope's id not NUL-terminated");
    fz_check(id_len == 0 || api_fh_request_id_ok(env.id, id_len), "an id that may not be echoed");
    check_answer(env.id, why);
    uint64_t h = fz_fnv_str(FZ_FNV_OFFSET, why ? why : "", 4096);
    h = fz_fnv_str(h, env.id, sizeof env.id);
    h = fz_fnv(h, &env.n, sizeof env.n);
    fz_check(env.copies.len <= len, "the envelope's copies are larger than the body");
    if (why) {
        fz_check(why[0] != '\0', "a refusal without a message");
        api_fh_env_free(&env);
        return h;
    }
    fz_check(env.n >= 1 && env.n <= API_FH_RECORDS_MAX, "an accepted envelope's record count");
    fz_check(id_len > 0, "an accepted envelope without an id");
    size_t total = 0;
    for (size_t i = 0; i < env.n; i++) {
        size_t n = 0;
        const char *data = api_fh_data(&env, i, &n);
        fz_check(n != SIZE_MAX, "an accepted record without data");
        if (env.rec[i].p)
            fz_check((const uint8_t *)data >= body && (const uint8_t *)data + n <= body + len,
                     "a record's span is outside the body");
        else
            fz_check(env.rec[i].off + n <= env.copies.len, "a record's copy is outside the copies");
        total += n;
        fz_check(total <= len, "the records' data is longer than the body");
        h = fz_fnv(h, data, n);
        h = fz_fnv(h, &n, sizeof n);
        if (n > API_FH_RECORD_B64_MAX)
            continue;  /* refused as too_large before decoding */
        int dn = api_b64_decode(data, n, 0, raw, sizeof raw);
        h = fz_fnv(h, &dn, sizeof dn);
        if (dn < 0 || (size_t)dn > API_FH_RECORD_MAX)
            continue;
        fz_check((size_t)dn <= n / 4 * 3, "base64 decoded to more than it holds");
        uint64_t r = check_record(raw, (size_t)dn, rng);
        h = fz_fnv(h, &r, sizeof r);
    }
    char id[sizeof env.id];
    memcpy(id, env.id, sizeof id);
    api_fh_env_free(&env);

    /* the header id: the body's own gives the same verdict; another refuses and echoes nothing */
    const char *w2 = api_fh_envelope(body, len, id, &env, m, sizeof m);
    fz_check(w2 == NULL && strcmp(env.id, id) == 0, "the body's own id in the header changed the verdict");
    api_fh_env_free(&env);
    const char *other = strcmp(id, "fuzz-other-id") ? "fuzz-other-id" : "fuzz-other-id-2";
    w2 = api_fh_envelope(body, len, other, &env, m, sizeof m);
    fz_check(w2 != NULL && env.id[0] == '\0', "a header id that is not the body's was accepted");
    check_answer(other, w2);
    api_fh_env_free(&env);
    return h;
}

static uint64_t one_pass(const uint8_t *data, size_t size)
{
    uint64_t rng = fz_fnv(FZ_FNV_OFFSET, data, size < 64 ? size : 64);
    const uint8_t *body = data;
    size_t len = size;
    uint8_t *plain = NULL;
    uint64_t h = FZ_FNV_OFFSET;
    if (cwl_is_gzip(data, size)) {  /* Content-Encoding: gzip, as h_firehose inflates it */
        enum cwl_gz g = cwl_gunzip(data, size, FZ_FH_MAX_INFLATED, DEC_DEFAULT_MAX_RATIO, &plain, &len);
        fz_check(g != CWL_GZ_NOMEM, "cwl_gunzip ran out of memory");
        h = fz_fnv(h, &g, sizeof g);
        if (g == CWL_GZ_OK) {
            fz_check(len <= FZ_FH_MAX_INFLATED, "the body inflated past max_inflated");
            body = plain;
        } else {
            len = 0;
        }
    }
    if (plain || !cwl_is_gzip(data, size)) {
        uint64_t e = check_envelope(body, len, &rng);
        h = fz_fnv(h, &e, sizeof e);
    }
    free(plain);
    uint64_t r = check_record(data, size, &rng);
    return fz_fnv(h, &r, sizeof r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t a = one_pass(data, size);
    uint64_t b = one_pass(data, size);
    fz_check(a == b, "the envelope and its records read differently the second time");
    return 0;
}
