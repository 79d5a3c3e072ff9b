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
 * Every answer on this route, refusals of the headers included (api_reply_error hands them here),
 * is in Firehose's shape. The counts Firehose ignores ride in X-Credwatch-* headers of a 200.
 */
#include "api_firehose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_http.h"
#include "api_log.h"
#include "api_metrics.h"
#include "api_b64.h"
#include "cwlogs.h"

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

/* ---- the answer ---- */

/* The id we echo: the body's once read, else the header's when it is one we may echo, else "". */
static const char *answer_id(struct api_req *r)
{
    if (r->fh_id[0])
        return r->fh_id;
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Amz-Firehose-Request-Id");
    return h && api_fh_request_id_ok(h, strnlen(h, API_FH_REQUEST_ID_MAX + 1)) ? h : "";
}

enum MHD_Result api_fh_reply(struct api_req *r, unsigned status, const char *error_message)
{
    const char *id = answer_id(r);
    json_int_t now = (json_int_t)cw_now_ms();
    json_t *doc = error_message ? json_pack("{s:s,s:I,s:s}", "requestId", id, "timestamp", now, "errorMessage",
                                            error_message)
                                : json_pack("{s:s,s:I}", "requestId", id, "timestamp", now);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    api_metrics_fh_request(status);
    if (!text) {
        /* out of memory, or a message that is not UTF-8: the same shape, from the stack (the id's
         * characters need no escaping) */
        char fixed[API_FH_REQUEST_ID_MAX + 160];
        int n = snprintf(fixed, sizeof fixed, "{\"requestId\":\"%s\",\"timestamp\":%lld%s}", id, (long long)now,
                         error_message ? ",\"errorMessage\":\"the request failed\"" : "");
        return api_reply(r, status, "application/json", fixed, (size_t)n, 0);
    }
    return api_reply(r, status, "application/json", text, strlen(text), 1);
}

/* ---- one request's records ---- */

struct fh_run {
    struct api_req *r;
    struct eng *eng;
    struct eng_report *rep;
    uint8_t *raw;               /* one record's data, decoded (API_FH_RECORD_B64_MAX / 4 * 3 bytes) */
    size_t records, skipped, ignored;  /* CloudTrail records, as summed over eng_decode's reports */
    size_t log_events, control, rejected, logged;
    size_t by_reason[API_FH_R_COUNT];
    size_t index;               /* the Firehose record at hand */
    int gzip;                   /* it was gzip */
    int fatal;                  /* CW_ENOMEM: the request is answered 503 */
};

static void reject(struct fh_run *f, enum api_fh_reason why, long event, const char *detail)
{
    f->rejected++;
    f->by_reason[why]++;
    if (f->logged >= API_FH_LOG_REJECTS)
        return;
    f->logged++;
    json_t *fields = json_pack("{s:s,s:I,s:s}", "requestId", f->r->fh_id, "record", (json_int_t)f->index, "reason",
                               api_fh_reason_name(why));
    if (fields && event >= 0)
        json_object_set_new(fields, "log_event", json_integer(event));
    if (fields && detail && detail[0])
        json_object_set_new(fields, "message", json_string(detail));  /* NULL (not UTF-8): left out */
    api_log("warn", "firehose record rejected", fields);
}

/* One input for the CloudTrail decoder: its events are kept for the one eng_apply. 0, or 1 when the
 * request must stop (out of memory). */
static int decode(struct fh_run *f, const uint8_t *buf, size_t len, long event)
{
    int rc = eng_decode(f->eng, buf, len, f->rep);
    if (rc == 0) {
        f->records += f->rep->records;
        f->skipped += f->rep->skipped;
        f->ignored += f->rep->ignored;
        return 0;
    }
    if (rc == CW_ENOMEM) {
        f->fatal = CW_ENOMEM;
        return 1;
    }
    /* a gzip record of at most API_FH_RECORD_MAX can pass a size cap only by its ratio */
    reject(f, rc != CW_ETOOBIG ? API_FH_R_NOT_CLOUDTRAIL : f->gzip ? API_FH_R_GZIP_BOMB : API_FH_R_TOO_LARGE, event,
           f->rep->message);
    return 0;
}

static int on_log_event(void *ud, size_t index, const char *msg, size_t len)
{
    struct fh_run *f = ud;
    f->log_events++;
    if (!msg) {
        reject(f, API_FH_R_CWLOGS, (long)index, "a log event without a string message");
        return 0;
    }
    return decode(f, (const uint8_t *)msg, len, (long)index);
}

/* The bytes of one record: a CloudWatch Logs subscription message, or anything decode.h takes. */
static void record_bytes(struct fh_run *f, const uint8_t *buf, size_t len)
{
    uint8_t *plain = NULL;
    size_t plain_len = 0;
    f->gzip = cwl_is_gzip(buf, len);
    if (f->gzip) {
        unsigned ratio = f->r->srv->eng_cfg.limits.max_ratio ? f->r->srv->eng_cfg.limits.max_ratio
                                                               : DEC_DEFAULT_MAX_RATIO;
        switch (cwl_gunzip(buf, len, CWL_MESSAGE_MAX, ratio, &plain, &plain_len)) {
        case CWL_GZ_OK:
            buf = plain;
            len = plain_len;
            break;
        case CWL_GZ_BIG:
            break;  /* no subscription message is that large: the decoder streams it, under its caps */
        case CWL_GZ_RATIO:
            reject(f, API_FH_R_GZIP_BOMB, -1, "the record inflates past the decoder's ratio");
            return;
        case CWL_GZ_CORRUPT:
            reject(f, API_FH_R_GZIP, -1, "the record is a corrupt or truncated gzip stream");
            return;
        case CWL_GZ_NOMEM:
            f->fatal = CW_ENOMEM;
            return;
        }
    }
    enum cwl_kind kind;
    size_t n_events;
    char msg[DEC_MSG_MAX];
    struct cwl_sink sink = {on_log_event, f};
    int rc = cwl_parse(buf, len, &sink, &kind, &n_events, msg, sizeof msg);
    if (rc == CW_ENOMEM)
        f->fatal = CW_ENOMEM;
    else if (rc == CW_EABORT)
        ;  /* on_log_event set fatal */
    else if (rc)
        reject(f, API_FH_R_CWLOGS, -1, msg);
    else if (kind == CWL_CONTROL)
        f->control++;
    else if (kind == CWL_NONE)
        decode(f, buf, len, -1);
    free(plain);
}

static void one_record(struct fh_run *f, json_t *data)
{
    size_t n = json_string_length(data);
    if (n > API_FH_RECORD_B64_MAX) {
        reject(f, API_FH_R_TOO_LARGE, -1, "the record's data is over 1,000 KiB");
        return;
    }
    int dn = api_b64_decode(json_string_value(data), n, 0, f->raw, API_FH_RECORD_B64_MAX / 4 * 3);
    if (dn < 0) {
        reject(f, API_FH_R_BASE64, -1, "the record's data is not base64 (standard alphabet, padded)");
        return;
    }
    if ((size_t)dn > API_FH_RECORD_MAX) {
        reject(f, API_FH_R_TOO_LARGE, -1, "the record's data is over 1,000 KiB");
        return;
    }
    record_bytes(f, f->raw, (size_t)dn);
}

/* ---- the envelope ---- */

/* The envelope's checks; NULL when it is one, else why not (in m). Sets r->fh_id. */
static const char *envelope(struct api_req *r, json_t *doc, json_t **records, char *m, size_t size)
{
    if (!json_is_object(doc))
        return "the body is not a JSON object";
    json_t *id = json_object_get(doc, "requestId");
    if (!json_is_string(id) || !api_fh_request_id_ok(json_string_value(id), json_string_length(id)))
        return "requestId must be a string of 1-128 characters [A-Za-z0-9._:-]";
    memcpy(r->fh_id, json_string_value(id), json_string_length(id) + 1);
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Amz-Firehose-Request-Id");
    if (h && strcmp(h, r->fh_id) != 0) {
        /* answer with the header's id, the one Firehose (or whoever sent it) keys the request on */
        r->fh_id[0] = '\0';
        return "X-Amz-Firehose-Request-Id is not the body's requestId";
    }
    json_t *ts = json_object_get(doc, "timestamp");
    if (ts && !json_is_integer(ts))
        return "timestamp must be an integer (milliseconds since the epoch)";
    *records = json_object_get(doc, "records");
    size_t n = json_array_size(*records);
    if (!json_is_array(*records))
        return "records must be an array";
    if (n == 0 || n > API_FH_RECORDS_MAX) {
        snprintf(m, size, "records holds %zu records; 1-%d are accepted", n, API_FH_RECORDS_MAX);
        return m;
    }
    for (size_t i = 0; i < n; i++)
        if (!json_is_string(json_object_get(json_array_get(*records, i), "data"))) {
            snprintf(m, size, "records[%zu] is not an object with a string data", i);
            return m;
        }
    return NULL;
}

static void count_header(struct api_req *r, const char *name, size_t v)
{
    if (r->n_xhdr >= API_FH_COUNT_HEADERS)
        return;
    r->xhdr[r->n_xhdr].name = name;
    snprintf(r->xhdr[r->n_xhdr].value, sizeof r->xhdr[0].value, "%zu", v);
    r->n_xhdr++;
}

static enum MHD_Result finish(struct fh_run *f, int rc, size_t n_records)
{
    struct api_req *r = f->r;
    struct eng_report *rep = f->rep;
    api_metrics_fh_records(n_records, f->log_events, f->control);
    api_metrics_fh_rejected(f->by_reason, API_FH_R_COUNT);
    if (f->rejected > f->logged)
        api_log("warn", "firehose records rejected",
                json_pack("{s:s,s:I,s:I}", "requestId", r->fh_id, "rejected", (json_int_t)f->rejected, "logged",
                          (json_int_t)f->logged));
    if (rc == CW_ENOMEM)
        return api_fh_reply(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory; retry");
    if (rc == CW_EUNAVAIL) {
        api_metrics_store_error();
        return api_fh_reply(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                            rep->message[0] ? rep->message : "the store is unavailable; retry");
    }
    if (rc) {
        char m[96];
        snprintf(m, sizeof m, "engine error: %s; retry", cw_strerror(rc));
        return api_fh_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, m);
    }
    size_t accepted = f->records - f->skipped - f->ignored - rep->duplicates;
    api_metrics_records(accepted, f->ignored, rep->duplicates, f->skipped, rep->created,
                        rep->findings - rep->created);
    if (rep->findings)
        snk_run_kick(r->srv->run);
    count_header(r, "X-Credwatch-Records", f->records);
    count_header(r, "X-Credwatch-Accepted", accepted);
    count_header(r, "X-Credwatch-Duplicates", rep->duplicates);
    count_header(r, "X-Credwatch-Ignored", f->ignored);
    count_header(r, "X-Credwatch-Skipped", f->skipped);
    count_header(r, "X-Credwatch-Rejected", f->rejected);
    return api_fh_reply(r, MHD_HTTP_OK, NULL);
}

/* Decodes every record, then applies them once: one request, one store round, as on the other
 * ingest routes. */
static enum MHD_Result run_records(struct api_req *r, json_t *records)
{
    struct api_worker *w = api_worker_get(r->srv);
    if (!w)
        return api_fh_reply(r, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot open a store handle; retry");
    struct fh_run f = {.r = r, .eng = w->eng, .rep = w->rep};
    f.raw = malloc(API_FH_RECORD_B64_MAX / 4 * 3);
    if (!f.raw)
        return api_fh_reply(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory; retry");
    memset(w->rep, 0, sizeof *w->rep);
    double t0 = cw_mono_s();
    api_worker_net(r->srv, w);
    eng_discard(w->eng);
    size_t n = json_array_size(records);
    for (size_t i = 0; i < n && !f.fatal; i++) {
        f.index = i;
        one_record(&f, json_object_get(json_array_get(records, i), "data"));
    }
    free(f.raw);
    int rc = f.fatal;
    if (rc)
        eng_discard(w->eng);  /* nothing of a failed request is applied: Firehose resends it all */
    else
        rc = eng_apply(w->eng, cw_now_ms(), w->rep);
    api_worker_net_done(w);
    api_ingest_account(r, w, cw_mono_s() - t0, f.records);
    return finish(&f, rc, n);
}

enum MHD_Result api_fh_ingest(struct api_req *r)
{
    if (r->len == 0)
        return api_fh_reply(r, MHD_HTTP_BAD_REQUEST, "the request body is empty");
    const uint8_t *body = r->body;
    size_t len = r->len;
    uint8_t *plain = NULL;
    if (r->gzip) {
        const struct dec_limits *lim = &r->srv->eng_cfg.limits;
        size_t max = lim->max_inflated ? lim->max_inflated : DEC_DEFAULT_MAX_INFLATED;
        switch (cwl_gunzip(body, len, max, lim->max_ratio ? lim->max_ratio : DEC_DEFAULT_MAX_RATIO, &plain, &len)) {
        case CWL_GZ_OK:
            body = plain;
            break;
        case CWL_GZ_CORRUPT:
            return api_fh_reply(r, MHD_HTTP_BAD_REQUEST,
                                "Content-Encoding is gzip but the body is not a whole gzip stream");
        case CWL_GZ_RATIO:
        case CWL_GZ_BIG:
            return api_fh_reply(r, MHD_HTTP_CONTENT_TOO_LARGE,
                                "the body inflates past CREDWATCH_MAX_INFLATED_BYTES or the decoder's ratio");
        case CWL_GZ_NOMEM:
            return api_fh_reply(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory; retry");
        }
    }
    json_error_t err;
    json_t *doc = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &err);
    free(plain);
    if (!doc) {
        if (json_error_code(&err) == json_error_out_of_memory)
            return api_fh_reply(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory; retry");
        char m[API_ERR_MSG_MAX];
        snprintf(m, sizeof m, "the body is not JSON: %.200s at byte %d", err.text, err.position);
        return api_fh_reply(r, MHD_HTTP_BAD_REQUEST, m);
    }
    json_t *records = NULL;
    char m[API_ERR_MSG_MAX];
    const char *why = envelope(r, doc, &records, m, sizeof m);
    enum MHD_Result res = why ? api_fh_reply(r, MHD_HTTP_BAD_REQUEST, why) : run_records(r, records);
    json_decref(doc);
    return res;
}
