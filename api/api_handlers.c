/* api_handlers.c — what each route does once its request is authorised and its body read.
 *
 * Status policy (EventBridge retries only 429 and 5xx): 400 only for input that will never be
 * valid; any transient fault (store unavailable, out of memory) is a 503 with Retry-After, and
 * the engine's dedup by event id makes the retry count once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_b64.h"
#include "api_backup.h"
#include "api_firehose.h"
#include "api_cursor.h"
#include "api_http.h"
#include "api_log.h"
#include "api_metrics.h"
#include "api_ui.h"
#include "classify.h"
#include "cw.h"
#include "cwlogs.h"
#include "detect.h"
#include "export.h"
#include "render.h"

#define API_ACCOUNT_LEN 12  /* AWS account ids are 12 digits */

/* The API's finding document is render.c's (the evidence plus the triage fields), the same bytes
 * `scan` prints. A record whose evidence is not a JSON object must not break every listing that
 * would include it: it is shown with its id and triage fields only, and logged. */
static char *finding_doc(const struct store_finding *f)
{
    char *doc = rnd_finding(f);
    if (doc)
        return doc;
    api_log("error", "stored finding evidence is not a JSON object", json_pack("{s:s}", "id", f->id));
    json_t *id = json_string(f->id);
    char *idj = id ? json_dumps(id, JSON_ENCODE_ANY) : NULL;
    json_decref(id);
    if (!idj)
        return NULL;
    size_t cap = strlen(idj) + 16;
    char *ev = malloc(cap);
    if (ev) {
        snprintf(ev, cap, "{\"id\":%s}", idj);
        struct store_finding bare = *f;
        bare.evidence_json = ev;
        doc = rnd_finding(&bare);
        free(ev);
    }
    free(idj);
    return doc;
}

/* ?format=: credwatch (the default, finding_doc as it is), ocsf or asff (export.c). */
static int format_arg(const char *value)
{
    return value ? exp_format_parse(value) : -1;
}

static enum MHD_Result bad_format(struct api_req *r)
{
    return api_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_format", "format must be one of " EXP_FORMAT_NAMES);
}

/* The finding in format fmt: 0 with *out, CW_ENOMEM, CW_EFORMAT when the stored document lacks
 * what the format needs (no account id for ASFF), or CW_EJSON when it is corrupt: logged. */
static int finding_in(const struct store_finding *f, int fmt, char **out)
{
    char *doc = finding_doc(f);
    *out = NULL;
    if (!doc)
        return CW_ENOMEM;
    if (fmt == EXP_CREDWATCH) {
        *out = doc;
        return 0;
    }
    int rc = exp_convert(doc, fmt, NULL, out);
    free(doc);
    if (rc != 0 && rc != CW_ENOMEM) {
        api_log("error", "stored finding cannot be shown in the requested format",
                json_pack("{s:s,s:s}", "id", f->id, "format", fmt == EXP_OCSF ? "ocsf" : "asff"));
        rc = rc == CW_EFORMAT ? CW_EFORMAT : CW_EJSON;
    }
    return rc;
}

/* A store failure on a read path: 404 for not found, 503 for anything transient, with the store's
 * own reason when it has one (WRONGPASS, OOM, a node down), as the ingest path and /readyz say it. */
static enum MHD_Result store_failure(struct api_req *r, struct store *st, int rc, const char *what)
{
    if (rc == CW_ENOTFOUND)
        return api_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", what);
    api_metrics_store_error();
    const char *why = st ? store_why(st) : "";
    char msg[API_ERR_MSG_MAX];
    snprintf(msg, sizeof msg, "the store is unavailable%s%s; retry", why[0] ? ": " : "", why);
    return api_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "store_unavailable", msg);
}

static enum MHD_Result no_worker(struct api_req *r)
{
    return api_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "store_unavailable",
                           "cannot open a store handle; retry");
}

/* ---- POST /v1/ingest/{cloudtrail,eventbridge} (and firehose: api_firehose.c) ---- */

/* After an ingest's engine work (dt seconds, records decoded): the store-time histogram, the
 * deadline counter and log, the embedded store's size. */
static void ingest_account(struct api_req *r, struct api_worker *w, double dt, size_t records)
{
    api_metrics_store(dt);
    if (dt > API_DEADLINE_S) {
        /* The sender may have given up and will retry: dedup makes that harmless, and the work
         * is done, so answer it anyway; the counter shows the instance is too slow. */
        api_metrics_deadline();
        api_log("warn", "ingest slower than the senders' deadline",
                json_pack("{s:f,s:I,s:I}", "seconds", dt, "bytes", (json_int_t)r->len, "records",
                          (json_int_t)records));
    }
    if (r->srv->embedded) {
        struct store_mem_stats ms;
        store_mem_stats(w->st, &ms);
        if (api_metrics_store_mem(ms.bytes, ms.max_bytes, ms.evicted_pending, ms.evicted_lambda))
            api_log("warn", "the embedded store is at its memory bound: keys without findings were evicted",
                    json_pack("{s:I,s:I,s:I,s:I}", "bytes", (json_int_t)ms.bytes, "max_bytes", (json_int_t)ms.max_bytes,
                              "evicted_pending", (json_int_t)ms.evicted_pending, "evicted_lambda",
                              (json_int_t)ms.evicted_lambda));
    }
}

static json_t *ingest_doc(const struct eng_report *rep)
{
    json_t *skipped = json_array(), *ids = json_array();
    for (size_t i = 0; i < rep->n_skips && i < ENG_SKIPS_MAX; i++)
        json_array_append_new(skipped, json_pack("{s:I,s:s}", "index", (json_int_t)rep->skips[i].index, "reason",
                                                 rep->skips[i].reason));
    for (size_t i = 0; i < rep->n_ids && i < ENG_FINDINGS_MAX; i++)
        json_array_append_new(ids, json_string(rep->ids[i]));
    return json_pack("{s:I,s:I,s:I,s:I,s:o,s:I,s:o,s:I,s:I}", "records", (json_int_t)rep->records, "accepted",
                     (json_int_t)rep->accepted, "ignored", (json_int_t)rep->ignored, "duplicates",
                     (json_int_t)rep->duplicates, "skipped", skipped,
                     "skipped_count", (json_int_t)rep->skipped, "findings", ids, "findings_count",
                     (json_int_t)rep->findings, "keys", (json_int_t)rep->keys);
}

static enum MHD_Result h_ingest(struct api_req *r)
{
    if (r->len == 0)
        return api_reply_error(r, MHD_HTTP_BAD_REQUEST, "empty_body", "the request body is empty");
    if (r->gzip && (r->len < 2 || r->body[0] != 0x1f || r->body[1] != 0x8b))
        return api_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_gzip",
                               "Content-Encoding is gzip but the body is not a gzip stream");
    struct api_worker *w = api_worker_get(r->srv);
    if (!w)
        return no_worker(r);
    struct eng_report *rep = w->rep;
    memset(rep, 0, sizeof *rep);
    double t0 = cw_mono_s();
    api_worker_net(r->srv, w);
    int rc = eng_ingest(w->eng, r->body, r->len, cw_now_ms(), rep);
    api_worker_net_done(w);
    ingest_account(r, w, cw_mono_s() - t0, rep->records);
    switch (rc) {
    case CW_OK:
        api_metrics_records(rep->accepted, rep->ignored, rep->duplicates, rep->skipped, rep->created,
                            rep->findings - rep->created);
        if (rep->findings)
            snk_run_kick(r->srv->run);  /* their events are queued: deliver now, not at the next poll */
        return api_reply_json(r, MHD_HTTP_OK, ingest_doc(rep));
    case CW_EINPUT:
        return api_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_input",
                               rep->message[0] ? rep->message : "the body is not CloudTrail");
    case CW_ETOOBIG:
        return api_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                               rep->message[0] ? rep->message : "the input exceeds a size cap");
    case CW_ENOMEM:
        return api_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "insufficient_memory", "out of memory; retry");
    case CW_EUNAVAIL:
        api_metrics_store_error();
        return api_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "store_unavailable",
                               rep->message[0] ? rep->message : "the store is unavailable; retry");
    default: {
        char m[96];
        snprintf(m, sizeof m, "engine error: %s", cw_strerror(rc));
        return api_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error", m);
    }
    }
}

/* ---- POST /v1/ingest/firehose (the protocol: api_firehose.c) ---- */

struct fh_run {
    struct api_req *r;
    struct eng *eng;
    struct eng_report *rep;
    uint8_t *raw;               /* one record's data, decoded (API_FH_RECORD_B64_MAX / 4 * 3 bytes) */
    size_t records, skipped, ignored;  /* CloudTrail records, as summed over eng_decode's reports */
    size_t log_events, control, rejected, logged;
    size_t by_reason[API_FH_R_COUNT];
    size_t index;               /* the Firehose record at hand */
    size_t max_records;         /* CloudTrail records decoded in the whole request (the decoder's max_records) */
    size_t inflate_left;        /* bytes the request's gzip records may still inflate to: one budget of
                                 * CREDWATCH_MAX_INFLATED_BYTES per request, as on the other routes */
    size_t inflate_start;       /* inflate_left before the first record */
    int too_big;                /* CW_ETOOBIG's cause: 0 records, 1 inflated bytes, 2 refused inputs */
    int gzip;                   /* it was gzip */
    int fatal;                  /* CW_ENOMEM: the request is answered 503; CW_ETOOBIG: 413 */
    /* Pass 2 (engine.h): a request with more events than one chunk is read again, each input pass 1
     * accepted fed to the engine's stream; inputs are numbered in the order decode sees them. */
    int replay;
    size_t input_no;
    size_t *refused;            /* numbers of the inputs pass 1 refused, ascending */
    size_t n_refused, cap_refused, refused_at;
};

#define FH_REFUSED_INITIAL 16
/* Inputs pass 1 may refuse in one request (8 MB of their numbers): past it the request is 413. A
 * request is at most 10,000 records of 1,000 KiB, so only a hostile one holds a million inputs that
 * do not decode. Tested at its value (tests/firehose_test.py refused_bound): 100 gzip subscription
 * messages of 10,000 log events are a million inputs in 200 KB, so no lower bound for tests. */
#define FH_REFUSED_MAX 1000000

static void reject(struct fh_run *f, enum api_fh_reason why, long event, const char *detail)
{
    if (f->replay)
        return;  /* counted and logged in pass 1 */
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
/* Pass 2's turn of an input: skipped if pass 1 refused it, else fed to the engine's stream. */
static int replay_input(struct fh_run *f, const uint8_t *buf, size_t len, size_t no)
{
    if (f->refused_at < f->n_refused && f->refused[f->refused_at] == no) {
        f->refused_at++;
        return 0;
    }
    struct eng_input in = { .buf = buf, .len = len };
    int rc = eng_stream_feed(f->eng, &in);
    if (rc)
        f->fatal = rc == CW_EINPUT ? CW_EIO : rc;  /* it decoded in pass 1: nothing else may fail now */
    return rc != 0;
}

/* Pass 1 refused input `no`: remembered, so pass 2 skips it. 0, or 1 out of memory. */
static int remember_refused(struct fh_run *f, size_t no)
{
    void *a = f->refused;
    int rc = cw_grow(&a, &f->cap_refused, f->n_refused + 1, sizeof *f->refused, FH_REFUSED_INITIAL, FH_REFUSED_MAX);
    if (rc) {
        f->fatal = rc;  /* CW_ENOMEM, or CW_ETOOBIG past FH_REFUSED_MAX */
        f->too_big = 2;
        return 1;
    }
    f->refused = a;
    f->refused[f->n_refused++] = no;
    return 0;
}

static int decode(struct fh_run *f, const uint8_t *buf, size_t len, long event)
{
    size_t no = f->input_no++;
    if (f->replay)
        return replay_input(f, buf, len, no);
    int rc = eng_decode(f->eng, buf, len, f->rep);
    if (rc == 0) {
        f->records += f->rep->records;
        f->skipped += f->rep->skipped;
        f->ignored += f->rep->ignored;
        /* max_records bounds one input only, and the request is read twice past one chunk of
         * events: 10,000 small gzip records inflating to a MiB of records each would be tens of
         * GiB of decoding. The request as a whole gets the bound one input has on the other routes;
         * past it, 413: Firehose backs the request up to S3 instead of retrying it, and a healthy
         * stream sized as the README says never comes near it. */
        if (f->records > f->max_records) {
            f->fatal = CW_ETOOBIG;
            f->too_big = 0;
            return 1;
        }
        return 0;
    }
    if (rc == CW_ENOMEM) {
        f->fatal = CW_ENOMEM;
        return 1;
    }
    if (remember_refused(f, no))
        return 1;
    /* gzip records reach the decoder inflated (record_bytes): a size cap passed here is the
     * decoder's own, and the label keeps what the record was sent as */
    reject(f, rc != CW_ETOOBIG ? API_FH_R_NOT_CLOUDTRAIL : f->gzip ? API_FH_R_GZIP_BOMB : API_FH_R_TOO_LARGE, event,
           f->rep->message);
    return 0;
}

static int on_log_event(void *ud, size_t index, const char *msg, size_t len)
{
    struct fh_run *f = ud;
    f->log_events += !f->replay;
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
        /* Every gzip record is inflated here, against what is left of the request's budget: each
         * record's own ratio cap alone let 10,000 small records cost 200 MiB of inflating each, all
         * of it refused (a review finding). Past the budget the request is 413, not retried. */
        switch (cwl_gunzip(buf, len, f->inflate_left, ratio, &plain, &plain_len)) {
        case CWL_GZ_OK:
            f->inflate_left -= plain_len;
            buf = plain;
            len = plain_len;
            break;
        case CWL_GZ_BIG:
            f->fatal = CW_ETOOBIG;
            f->too_big = 1;
            return;
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
        f->control += !f->replay;
    else if (kind == CWL_NONE)
        decode(f, buf, len, -1);
    free(plain);
}

static void one_record(struct fh_run *f, const char *data, size_t n)
{
    if (n > API_FH_RECORD_B64_MAX) {
        reject(f, API_FH_R_TOO_LARGE, -1, "the record's data is over 1,000 KiB");
        return;
    }
    int dn = api_b64_decode(data, n, 0, f->raw, API_FH_RECORD_B64_MAX / 4 * 3);
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
    if (f->rejected > f->logged)
        api_log("warn", "firehose records rejected",
                json_pack("{s:s,s:I,s:I}", "requestId", r->fh_id, "rejected", (json_int_t)f->rejected, "logged",
                          (json_int_t)f->logged));
    if (rc == CW_ENOMEM)
        return api_fh_reply(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory; retry");
    if (rc == CW_ETOOBIG) {
        char m[128];
        if (f->too_big == 2)
            snprintf(m, sizeof m, "more than %d inputs of the request are not CloudTrail", FH_REFUSED_MAX);
        else if (f->too_big)
            snprintf(m, sizeof m, "the records inflate past CREDWATCH_MAX_INFLATED_BYTES; send smaller buffers");
        else
            snprintf(m, sizeof m, "the records hold more than %zu CloudTrail records; send smaller buffers",
                     f->max_records);
        return api_fh_reply(r, MHD_HTTP_CONTENT_TOO_LARGE, m);
    }
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
    /* counted once delivered: a 503's records come again with Firehose's retry */
    api_metrics_fh_rejected(f->by_reason, API_FH_R_COUNT);
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

static void read_records(struct fh_run *f, const struct api_fh_env *env)
{
    for (size_t i = 0; i < env->n && !f->fatal; i++) {
        size_t len;
        const char *data = api_fh_data(env, i, &len);
        f->index = i;
        one_record(f, data, len);
    }
}

/* Pass 2 of a request with more events than one chunk: the records read again, the inputs pass 1
 * accepted applied chunk by chunk. A store failure here leaves earlier chunks applied; Firehose's
 * retry brings them again as duplicates. */
static int replay_records(struct fh_run *f, const struct api_fh_env *env)
{
    struct eng_report *rep = f->rep;
    rep->duplicates = rep->keys = rep->findings = rep->created = rep->n_ids = 0;
    f->replay = 1;
    f->input_no = 0;
    f->inflate_left = f->inflate_start;  /* the same records inflate the same way again */
    eng_stream_now(f->eng, cw_now_ms());
    eng_stream_begin(f->eng, eng_flush_apply, NULL);
    read_records(f, env);
    int rc = eng_stream_end(f->eng);
    if (f->fatal)
        rc = f->fatal;
    eng_discard(f->eng);
    return rc;
}

/* Decodes every record, then applies them once: one request, one store round, as on the other
 * ingest routes (two passes when it holds more events than one chunk: engine.h). */
static enum MHD_Result run_records(struct api_req *r, const struct api_fh_env *env, size_t inflated)
{
    struct api_worker *w = api_worker_get(r->srv);
    if (!w)
        return api_fh_reply(r, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot open a store handle; retry");
    struct fh_run f = {.r = r, .eng = w->eng, .rep = w->rep};
    f.max_records = r->srv->eng_cfg.limits.max_records ? r->srv->eng_cfg.limits.max_records : DEC_DEFAULT_MAX_RECORDS;
    size_t budget = r->srv->eng_cfg.limits.max_inflated ? r->srv->eng_cfg.limits.max_inflated
                                                        : DEC_DEFAULT_MAX_INFLATED;
    f.inflate_left = inflated < budget ? budget - inflated : 0;  /* a gzip envelope spent its part */
    f.inflate_start = f.inflate_left;
    f.raw = malloc(API_FH_RECORD_B64_MAX / 4 * 3);
    if (!f.raw)
        return api_fh_reply(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory; retry");
    memset(w->rep, 0, sizeof *w->rep);
    double t0 = cw_mono_s();
    api_worker_net(r->srv, w);
    eng_discard(w->eng);
    size_t n = env->n;
    read_records(&f, env);
    int rc = f.fatal;
    if (rc)
        eng_discard(w->eng);  /* nothing of a request refused in pass 1 is applied: Firehose resends it
                                 all (or, 413, backs it up to S3) */
    else if (!eng_overflowed(w->eng))
        rc = eng_apply(w->eng, cw_now_ms(), w->rep);
    else
        rc = replay_records(&f, env);
    free(f.raw);
    free(f.refused);
    api_worker_net_done(w);
    ingest_account(r, w, cw_mono_s() - t0, f.records);
    return finish(&f, rc, n);
}

static enum MHD_Result h_firehose(struct api_req *r)
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
    struct api_fh_env env;
    char m[API_ERR_MSG_MAX];
    const char *why = api_fh_envelope(body, len, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                                             "X-Amz-Firehose-Request-Id"),
                                      &env, m, sizeof m);
    memcpy(r->fh_id, env.id, sizeof r->fh_id);
    enum MHD_Result res = env.oom ? api_fh_reply(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory; retry")
                        : why     ? api_fh_reply(r, MHD_HTTP_BAD_REQUEST, why)
                                  : run_records(r, &env, plain ? len : 0);
    api_fh_env_free(&env);
    free(plain);  /* the records' data pointed into it */
    return res;
}

/* ---- GET /v1/findings ---- */

struct list_args {
    struct store_query q;
    const char *bad;            /* the first invalid or unknown parameter */
    int format;                 /* enum exp_format */
    const char *bad_code;
    char cursor_id[STORE_ID_MAX];
};

static int set_bad(struct list_args *a, const char *name, const char *code)
{
    if (!a->bad) {
        a->bad = name;
        a->bad_code = code;
    }
    return MHD_NO;
}

static int digits_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return s[n] == '\0';
}

/* A workload kind's name as the API spells it (lambda, ecs, ec2, eks, codebuild): the store's
 * static name, or NULL when value is none of them. */
static const char *workload_arg(const char *value)
{
    for (int k = WL_LAMBDA; k < WL_KIND_COUNT; k++)
        if (strcmp(value, wl_kind_name((enum wl_kind)k)) == 0)
            return wl_kind_name((enum wl_kind)k);
    return NULL;
}

/* One query argument; MHD has already percent-decoded it. Unknown names are refused, so a typo
 * ("?stauts=open") cannot silently widen a dashboard's query. */
static enum MHD_Result list_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct list_args *a = cls;
    if (!value)
        return set_bad(a, key, strcmp(key, "format") == 0 ? "invalid_format" : "invalid_parameter");
    if (strcmp(key, "status") == 0) {
        if ((a->q.status = store_status_parse(value)) < 0)
            return set_bad(a, "status", "invalid_parameter");
    } else if (strcmp(key, "severity") == 0) {
        if ((a->q.severity = det_severity_parse(value)) < 0)
            return set_bad(a, "severity", "invalid_parameter");
    } else if (strcmp(key, "account") == 0) {
        if (!digits_only(value, API_ACCOUNT_LEN))
            return set_bad(a, "account", "invalid_parameter");
        a->q.account = value;
    } else if (strcmp(key, "function") == 0) {
        size_t n = strnlen(value, EV_FUNCTION_MAX);
        if (n == 0 || n >= EV_FUNCTION_MAX)
            return set_bad(a, "function", "invalid_parameter");
        a->q.function = value;
    } else if (strcmp(key, "workload") == 0) {
        if (!(a->q.workload = workload_arg(value)))
            return set_bad(a, "workload", "invalid_parameter");
    } else if (strcmp(key, "since") == 0 || strcmp(key, "until") == 0) {
        int64_t ms;
        if (cw_time_parse(value, 0, &ms) != 0 || ms < 0)
            return set_bad(a, key[0] == 's' ? "since" : "until", "invalid_parameter");
        if (key[0] == 's')
            a->q.since_ms = ms;
        else
            a->q.until_ms = ms;
    } else if (strcmp(key, "limit") == 0) {
        size_t n = strnlen(value, 4);
        if (n == 0 || n > 3 || !digits_only(value, n))
            return set_bad(a, "limit", "invalid_parameter");
        long v = strtol(value, NULL, 10);
        if (v < 1 || v > STORE_LIST_MAX)
            return set_bad(a, "limit", "invalid_parameter");
        a->q.limit = (size_t)v;
    } else if (strcmp(key, "format") == 0) {
        if ((a->format = format_arg(value)) < 0)
            return set_bad(a, "format", "invalid_format");
    } else if (strcmp(key, "cursor") == 0) {
        if (api_cursor_decode(value, &a->q.after_ms, a->cursor_id) != 0)
            return set_bad(a, "cursor", "invalid_cursor");
        memcpy(a->q.after_id, a->cursor_id, sizeof a->q.after_id);
    } else {
        return set_bad(a, key, "unknown_parameter");
    }
    return MHD_YES;
}

static enum MHD_Result h_list(struct api_req *r)
{
    struct list_args a;
    memset(&a, 0, sizeof a);
    a.q.status = -1;
    a.q.severity = -1;
    a.q.limit = API_DEFAULT_LIST_LIMIT;
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, list_arg, &a);
    if (a.bad) {
        char m[160];
        if (strcmp(a.bad_code, "unknown_parameter") == 0)
            snprintf(m, sizeof m, "unknown query parameter \"%.64s\"", a.bad);
        else if (strcmp(a.bad, "limit") == 0)
            snprintf(m, sizeof m, "limit must be an integer 1-%d", STORE_LIST_MAX);
        else if (strcmp(a.bad, "format") == 0)
            snprintf(m, sizeof m, "format must be one of %s", EXP_FORMAT_NAMES);
        else if (strcmp(a.bad, "since") == 0 || strcmp(a.bad, "until") == 0)
            snprintf(m, sizeof m, "%s must be an RFC 3339 date-time, e.g. 2024-03-13T08:33:21Z", a.bad);
        else
            snprintf(m, sizeof m, "invalid value for %.64s", a.bad);
        return api_reply_error(r, MHD_HTTP_BAD_REQUEST, a.bad_code, m);
    }
    if (a.q.since_ms && a.q.until_ms && a.q.since_ms > a.q.until_ms)
        return api_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_parameter", "since is after until");
    struct api_worker *w = api_worker_get(r->srv);
    if (!w)
        return no_worker(r);
    struct store_finding *out = calloc(a.q.limit, sizeof *out);
    if (!out)
        return api_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "insufficient_memory", "out of memory; retry");
    size_t n = 0;
    int more = 0;
    double t0 = cw_mono_s();
    int rc = store_finding_list(w->st, &a.q, out, &n, &more);
    api_metrics_store(cw_mono_s() - t0);
    enum MHD_Result res;
    if (rc != 0) {
        res = store_failure(r, w->st, rc, "no findings");
    } else {
        /* the page is assembled from the documents as rendered: no parse and re-dump of each */
        char cur[API_CURSOR_MAX];
        int has_cur = more && n > 0 && api_cursor_encode(out[n - 1].created_ms, out[n - 1].id, cur, sizeof cur) == 0;
        char **docs = calloc(n ? n : 1, sizeof *docs);
        size_t total = sizeof "{\"findings\":[],\"next_cursor\":null}" + API_CURSOR_MAX + 2, ok = docs != NULL;
        for (size_t i = 0; ok && i < n; i++) {
            /* a record the format cannot show is left out (and logged), not the whole page */
            int drc = finding_in(&out[i], a.format, &docs[i]);
            ok = drc != CW_ENOMEM;
            if (docs[i])
                total += strlen(docs[i]) + 1;
        }
        char *body = ok ? malloc(total) : NULL;
        if (body) {
            size_t len = (size_t)snprintf(body, total, "{\"findings\":[");
            for (size_t i = 0, shown = 0; i < n; i++)
                if (docs[i])
                    len += (size_t)snprintf(body + len, total - len, "%s%s", shown++ ? "," : "", docs[i]);
            if (has_cur)
                len += (size_t)snprintf(body + len, total - len, "],\"next_cursor\":\"%s\"}", cur);  /* base64url */
            else
                len += (size_t)snprintf(body + len, total - len, "],\"next_cursor\":null}");
            res = api_reply(r, MHD_HTTP_OK, "application/json", body, len, 1);
        } else {
            res = api_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "insufficient_memory", "out of memory; retry");
        }
        for (size_t i = 0; docs && i < n; i++)
            free(docs[i]);
        free(docs);
    }
    for (size_t i = 0; i < n && i < a.q.limit; i++)
        store_finding_free(&out[i]);
    free(out);
    return res;
}

/* ---- GET / PATCH /v1/findings/{id} ---- */

static enum MHD_Result reply_finding(struct api_req *r, struct store *st, const char *id, int fmt)
{
    struct store_finding f;
    memset(&f, 0, sizeof f);
    double t0 = cw_mono_s();
    int rc = store_finding_get(st, id, &f);
    api_metrics_store(cw_mono_s() - t0);
    if (rc != 0) {
        store_finding_free(&f);
        return store_failure(r, st, rc, "no such finding");
    }
    char *doc = NULL;
    rc = finding_in(&f, fmt, &doc);
    store_finding_free(&f);
    /* The finding lacks what the format needs (ASFF: a 12-digit account id, which a key seen only
     * through its runtime marker may not have): the representation asked for does not exist. */
    if (rc == CW_EFORMAT)
        return api_reply_error(r, MHD_HTTP_NOT_ACCEPTABLE, "format_unavailable",
                               "this finding cannot be shown in the requested format (see the log for the field)");
    if (rc == CW_EJSON)
        return api_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                               "the stored finding is corrupt (see the log)");
    if (!doc)
        return api_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "insufficient_memory", "out of memory; retry");
    return api_reply(r, MHD_HTTP_OK, "application/json", doc, strlen(doc), 1);
}

static enum MHD_Result h_get(struct api_req *r)
{
    if (r->match.param_too_long || !api_finding_id_valid(r->match.param))
        return api_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such finding");
    /* only ?format= is read here; other parameters are ignored, as they always were */
    const char *fv = NULL;
    int fmt = EXP_CREDWATCH;
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, "format", strlen("format"), &fv, NULL) == MHD_YES &&
        (fmt = format_arg(fv)) < 0)
        return bad_format(r);
    struct api_worker *w = api_worker_get(r->srv);
    if (!w)
        return no_worker(r);
    return reply_finding(r, w->st, r->match.param, fmt);
}

static enum MHD_Result h_patch(struct api_req *r)
{
    if (r->match.param_too_long || !api_finding_id_valid(r->match.param))
        return api_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such finding");
    json_error_t err;
    json_t *doc = r->len ? json_loadb((const char *)r->body, r->len, JSON_REJECT_DUPLICATES, &err) : NULL;
    if (!json_is_object(doc)) {
        json_decref(doc);
        return api_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_json",
                               "the body must be a JSON object {\"status\":...,\"note\":...}");
    }
    int status = -1;
    const char *note = NULL, *key, *problem = NULL;
    char note_too_long[64];
    snprintf(note_too_long, sizeof note_too_long, "note is longer than %d bytes", STORE_NOTE_MAX);
    json_t *v;
    json_object_foreach(doc, key, v) {
        if (strcmp(key, "status") == 0) {
            status = json_is_string(v) ? store_status_parse(json_string_value(v)) : -1;
            if (status < 0)
                problem = "status must be one of open, acknowledged, resolved, suppressed";
            else if (status == STORE_ST_RETRACTED)
                problem = "status retracted cannot be set (it only remains on findings stored by older releases)";
        } else if (strcmp(key, "note") == 0) {
            if (!json_is_string(v))
                problem = "note must be a string";
            else if (json_string_length(v) > STORE_NOTE_MAX)
                problem = note_too_long;
            else
                note = json_string_value(v);
        } else {
            problem = "only status and note may be changed";
        }
        if (problem)
            break;
    }
    if (!problem && status < 0 && !note)
        problem = "nothing to change: give status and/or note";
    if (problem) {
        json_decref(doc);
        return api_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_parameter", problem);
    }
    struct api_worker *w = api_worker_get(r->srv);
    if (!w) {
        json_decref(doc);
        return no_worker(r);
    }
    double t0 = cw_mono_s();
    int rc = store_finding_patch(w->st, r->match.param, status, note, cw_now_ms());
    api_metrics_store(cw_mono_s() - t0);
    json_decref(doc); /* note pointed into doc */
    if (rc != 0)
        return store_failure(r, w->st, rc, "no such finding");
    snk_run_kick(r->srv->run);
    return reply_finding(r, w->st, r->match.param, EXP_CREDWATCH);
}

/* ---- GET /v1/keys/{accessKeyId} ---- */

static enum MHD_Result h_key(struct api_req *r)
{
    if (r->match.param_too_long || !cls_akid_valid(r->match.param))
        return api_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_access_key_id",
                               "not an access key id (e.g. ASIAEXAMPLEKEY000001)");
    struct api_worker *w = api_worker_get(r->srv);
    if (!w)
        return no_worker(r);
    char *json = NULL;
    double t0 = cw_mono_s();
    api_worker_net(r->srv, w);
    int rc = eng_key_json(w->eng, r->match.param, &json);
    api_worker_net_done(w);
    api_metrics_store(cw_mono_s() - t0);
    if (rc == 0 && json)
        return api_reply(r, MHD_HTTP_OK, "application/json", json, strlen(json), 1);
    free(json);
    if (rc == CW_ENOTFOUND)
        return api_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no state for this access key");
    if (rc == CW_EUNAVAIL || rc == CW_ENOMEM || rc == 0)
        return store_failure(r, w->st, CW_EUNAVAIL, NULL);
    char m[96];
    snprintf(m, sizeof m, "engine error: %s", cw_strerror(rc));
    return api_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error", m);
}

/* ---- findings out: GET /v1/sinks, GET /v1/sinks/{name}/dead-letters, POST .../retry ---- */

#define API_DEAD_LIMIT_DEFAULT 50  /* dead letters per page when ?limit= is not given */
#define API_DEAD_LIMIT_MAX 100     /* each carries a whole finding document: a page stays small */
#define API_ENTRY_DIGITS_MAX 20    /* a part of an entry id, "<ms>-<seq>": a uint64 in decimal */
/* The dead-letter cursor: base64url of the last entry id of a page, NUL included. */
#define API_DEAD_CURSOR_MAX ((STORE_OUT_ENTRY_MAX + 2) / 3 * 4 + 1)
#define API_BODY_NAMES_MAX 160     /* the unknown members a 400 names */

/* An entry id as both stores make them, "<digits>-<digits>" (a Redis stream id): anything else,
 * from a cursor or a retry body, never names a dead letter and is refused before the store. */
static int entry_id_valid(const char *s)
{
    size_t a = strspn(s, "0123456789");
    if (a == 0 || a > API_ENTRY_DIGITS_MAX || s[a] != '-')
        return 0;
    size_t b = strspn(s + a + 1, "0123456789");
    return b > 0 && b <= API_ENTRY_DIGITS_MAX && s[a + 1 + b] == '\0';
}

static int dead_cursor_encode(const char *entry, char *out, size_t size)
{
    if (!entry_id_valid(entry))
        return -1;
    return api_b64url_encode((const uint8_t *)entry, strlen(entry), out, size) < 0 ? -1 : 0;
}

/* 0 with the entry id, or -1 for anything dead_cursor_encode could not have produced. */
static int dead_cursor_decode(const char *cursor, char entry[STORE_OUT_ENTRY_MAX])
{
    size_t len = strnlen(cursor, API_DEAD_CURSOR_MAX);
    if (len == 0 || len >= API_DEAD_CURSOR_MAX)
        return -1;
    int n = api_b64_decode(cursor, len, 1, (uint8_t *)entry, STORE_OUT_ENTRY_MAX - 1);
    if (n <= 0)
        return -1;
    entry[n] = '\0';
    return strlen(entry) == (size_t)n && entry_id_valid(entry) ? 0 : -1;
}

/* The sink named by the path: NULL with the reply queued in *res when the name cannot be a sink's
 * (400) or no sink of this deployment has it (404). */
static const struct snk_conf *sink_param(struct api_req *r, enum MHD_Result *res)
{
    const struct snk_confs *cs = &r->srv->sinks;
    if (r->match.param_too_long || !store_sink_name_valid(r->match.param)) {
        *res = api_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_parameter",
                               "a sink name is 1-31 characters a-z, 0-9, '_' and '-'");
        return NULL;
    }
    for (size_t i = 0; i < cs->n; i++)
        if (strcmp(cs->sink[i].name, r->match.param) == 0)
            return &cs->sink[i];
    char m[96];
    snprintf(m, sizeof m, "no sink named \"%s\"", r->match.param);  /* [a-z0-9_-]: safe to echo */
    *res = api_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", m);
    return NULL;
}

/* This instance's counters of sink c: zero, and no status, when its thread is not running. */
static void sink_counters(struct snk_run *run, const struct snk_conf *c, struct snk_run_stats *st)
{
    memset(st, 0, sizeof *st);
    st->last_status = -1;
    for (size_t i = 0, n = run ? snk_run_count(run) : 0; i < n; i++)
        if (strcmp(snk_run_conf(run, i)->name, c->name) == 0) {
            snk_run_stats(run, i, st);
            return;
        }
}

/* Whole seconds since ms (0: nothing waits); a clock step back reads as 0. Whole: a queue's age
 * needs no more, and a double would print as 9.1010000000000009. */
static json_int_t age_s(int64_t ms, int64_t now_ms)
{
    return ms > 0 && now_ms > ms ? (json_int_t)((now_ms - ms) / 1000) : 0;
}

/* One sink: its settings without URL, secret or routing key (a URL can be the credential: Slack's
 * path is), this instance's counters and the outbox as the store holds it now. */
static json_t *sink_doc(struct snk_run *run, const struct snk_conf *c, const struct store_out_stats *os,
                        int64_t now_ms)
{
    struct snk_run_stats st;
    sink_counters(run, c, &st);
    json_t *queue = json_pack("{s:I,s:I,s:I,s:I,s:I}", "depth", (json_int_t)os->depth, "held", (json_int_t)os->held,
                              "dead", (json_int_t)os->dead, "dead_dropped", (json_int_t)os->dead_dropped,
                              "oldest_age_seconds", age_s(os->oldest_ms, now_ms));
    json_t *format = c->type == SNK_WEBHOOK ? json_string(snk_format_name(c->format)) : json_null();
    json_t *last = st.last_status >= 0 ? json_integer(st.last_status) : json_null();
    return json_pack("{s:s,s:s,s:o,s:s,s:I,s:I,s:I,s:I,s:I,s:o,s:o}", "name", c->name, "type",
                     snk_type_name(c->type), "format", format, "min_severity",
                     det_severity_name((enum det_severity)c->min_severity), "delivered", (json_int_t)st.delivered,
                     "failed_attempts", (json_int_t)st.failed_attempts, "dead_lettered", (json_int_t)st.dead_lettered,
                     "dead_lettered_full", (json_int_t)st.dead_lettered_full, "filtered", (json_int_t)st.filtered,
                     "last_status", last, "queue", queue);
}

static enum MHD_Result h_sinks(struct api_req *r)
{
    const struct snk_confs *cs = &r->srv->sinks;
    json_t *list = json_array();
    struct api_worker *w = cs->n ? api_worker_get(r->srv) : NULL;
    if (cs->n && !w) {
        json_decref(list);
        return no_worker(r);
    }
    for (size_t i = 0; i < cs->n; i++) {
        struct store_out_stats os;
        memset(&os, 0, sizeof os);
        int64_t now = cw_now_ms();
        double t0 = cw_mono_s();
        int rc = store_out_stats(w->st, cs->sink[i].name, now, &os);
        api_metrics_store(cw_mono_s() - t0);
        if (rc != 0) {
            json_decref(list);
            return store_failure(r, w->st, rc == CW_ENOTFOUND ? CW_EUNAVAIL : rc, NULL);
        }
        json_array_append_new(list, sink_doc(r->srv->run, &cs->sink[i], &os, now));
    }
    if (json_array_size(list) != cs->n) {  /* a sink_doc ran out of memory */
        json_decref(list);
        return api_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "insufficient_memory", "out of memory; retry");
    }
    return api_reply_json(r, MHD_HTTP_OK, json_pack("{s:o}", "sinks", list));
}

struct dead_args {
    size_t limit;
    char after[STORE_OUT_ENTRY_MAX];
    const char *bad, *bad_code;
};

static enum MHD_Result dead_bad(struct dead_args *a, const char *name, const char *code)
{
    if (!a->bad) {
        a->bad = name;
        a->bad_code = code;
    }
    return MHD_NO;
}

/* ?limit= and ?cursor=; anything else is refused, as on GET /v1/findings. */
static enum MHD_Result dead_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct dead_args *a = cls;
    if (strcmp(key, "limit") == 0) {
        size_t n = value ? strnlen(value, 4) : 0;
        if (n == 0 || n > 3 || !digits_only(value, n))
            return dead_bad(a, "limit", "invalid_parameter");
        long v = strtol(value, NULL, 10);
        if (v < 1 || v > API_DEAD_LIMIT_MAX)
            return dead_bad(a, "limit", "invalid_parameter");
        a->limit = (size_t)v;
    } else if (strcmp(key, "cursor") == 0) {
        if (!value || dead_cursor_decode(value, a->after) != 0)
            return dead_bad(a, "cursor", "invalid_cursor");
    } else {
        return dead_bad(a, key, "unknown_parameter");
    }
    return MHD_YES;
}

/* s as a JSON string; bytes that are not UTF-8 (a receiver's answer quoted in a reason) as '?'. */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j)
        return j;
    char clean[STORE_REASON_MAX];
    size_t i = 0;
    for (; s[i] && i + 1 < sizeof clean; i++)
        clean[i] = (unsigned char)s[i] < 0x80 ? s[i] : '?';
    clean[i] = '\0';
    return json_string(clean);
}

/* One dead letter with its finding as of its revision (the document GET /v1/findings/{id} gave then). */
static json_t *dead_doc(const struct store_event *ev)
{
    char *text = finding_doc(&ev->finding), at[CW_TIME_MAX];
    json_t *finding = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (!finding)
        return NULL;
    cw_time_format(ev->queued_ms, 1, at, sizeof at);
    return json_pack("{s:s,s:s,s:I,s:s,s:s,s:o,s:o}", "entry", ev->entry, "finding_id", ev->finding.id, "revision",
                     (json_int_t)ev->revision, "kind", store_event_kind_name(ev->kind), "queued_at", at, "reason",
                     json_text(ev->reason), "finding", finding);
}

static json_t *dead_page(const struct store_event *ev, size_t n, int more)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        if (json_array_append_new(list, dead_doc(&ev[i])) != 0) {
            json_decref(list);
            return NULL;
        }
    char cur[API_DEAD_CURSOR_MAX];
    json_t *next = more && n > 0 && dead_cursor_encode(ev[n - 1].entry, cur, sizeof cur) == 0 ? json_string(cur)
                                                                                          : json_null();
    return json_pack("{s:o,s:o}", "dead_letters", list, "next_cursor", next);
}

static enum MHD_Result dead_refused(struct api_req *r, const struct dead_args *a)
{
    char m[160];
    if (strcmp(a->bad_code, "unknown_parameter") == 0)
        snprintf(m, sizeof m, "unknown query parameter \"%.64s\"", a->bad);
    else if (strcmp(a->bad, "limit") == 0)
        snprintf(m, sizeof m, "limit must be an integer 1-%d", API_DEAD_LIMIT_MAX);
    else
        snprintf(m, sizeof m, "cursor is not a next_cursor of this list");
    return api_reply_error(r, MHD_HTTP_BAD_REQUEST, a->bad_code, m);
}

static enum MHD_Result h_dead_letters(struct api_req *r)
{
    enum MHD_Result res;
    const struct snk_conf *c = sink_param(r, &res);
    if (!c)
        return res;
    struct dead_args a = {.limit = API_DEAD_LIMIT_DEFAULT};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, dead_arg, &a);
    if (a.bad)
        return dead_refused(r, &a);
    struct api_worker *w = api_worker_get(r->srv);
    if (!w)
        return no_worker(r);
    struct store_event *ev = calloc(a.limit, sizeof *ev);
    if (!ev)
        return api_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "insufficient_memory", "out of memory; retry");
    size_t n = 0;
    int more = 0;
    double t0 = cw_mono_s();
    int rc = store_dead_list(w->st, c->name, a.after, a.limit, ev, &n, &more);
    api_metrics_store(cw_mono_s() - t0);
    if (rc != 0) {
        res = store_failure(r, w->st, rc == CW_ENOTFOUND ? CW_EUNAVAIL : rc, NULL);
    } else {
        json_t *doc = dead_page(ev, n, more);
        res = doc ? api_reply_json(r, MHD_HTTP_OK, doc)
                  : api_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "insufficient_memory", "out of memory; retry");
    }
    for (size_t i = 0; i < n && i < a.limit; i++)
        store_event_free(&ev[i]);
    free(ev);
    return res;
}

/* The retry body: {"entry":"<id>"} one, {} or {"all":true} all. 0 with *entry (NULL: all), or
 * -1 with the problem in m. */
static int retry_body(json_t *doc, const char **entry, char *m, size_t size)
{
    const char *key;
    json_t *v, *all = NULL;
    char unknown[API_BODY_NAMES_MAX] = "";
    size_t used = 0, n_unknown = 0;
    *entry = NULL;
    json_object_foreach(doc, key, v) {
        if (strcmp(key, "entry") == 0) {
            *entry = json_is_string(v) ? json_string_value(v) : "";
        } else if (strcmp(key, "all") == 0) {
            all = v;
        } else if (used < sizeof unknown) {
            used += (size_t)snprintf(unknown + used, sizeof unknown - used, "%s\"%.40s\"", used ? ", " : "", key);
            n_unknown++;
        }
    }
    if (unknown[0])
        snprintf(m, size, "unknown member%s %s (a retry takes entry or all)", n_unknown > 1 ? "s" : "", unknown);
    else if (*entry && !entry_id_valid(*entry))
        snprintf(m, size, "entry must be the entry of a dead letter, e.g. \"1712345678901-0\"");
    else if (all && !json_is_true(all))
        snprintf(m, size, "all must be true (or leave it out, and entry, to retry every dead letter)");
    else if (all && *entry)
        snprintf(m, size, "give entry (retry one) or all (retry every one), not both");
    else
        return 0;
    return -1;
}

static enum MHD_Result h_sink_retry(struct api_req *r)
{
    enum MHD_Result res;
    const struct snk_conf *c = sink_param(r, &res);
    if (!c)
        return res;
    json_error_t err;
    json_t *doc = r->len ? json_loadb((const char *)r->body, r->len, JSON_REJECT_DUPLICATES, &err) : NULL;
    if (!json_is_object(doc)) {
        json_decref(doc);
        return api_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_json",
                               "the body must be a JSON object: {\"entry\":\"...\"} retries one, {} all");
    }
    const char *entry;
    char m[API_ERR_MSG_MAX];
    if (retry_body(doc, &entry, m, sizeof m) != 0) {
        json_decref(doc);
        return api_reply_error(r, MHD_HTTP_BAD_REQUEST, "invalid_parameter", m);
    }
    struct api_worker *w = api_worker_get(r->srv);
    size_t moved = 0;
    int rc = CW_EUNAVAIL, one = entry != NULL;
    if (w) {
        double t0 = cw_mono_s();
        rc = store_dead_retry(w->st, c->name, entry, cw_now_ms(), &moved);
        api_metrics_store(cw_mono_s() - t0);
    }
    if (rc == CW_ENOTFOUND && one)
        snprintf(m, sizeof m, "no dead letter \"%s\" in sink \"%s\"", entry, c->name);
    json_decref(doc); /* entry pointed into doc */
    if (!w)
        return no_worker(r);
    if (rc == CW_ENOTFOUND && one)
        return api_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", m);
    if (rc != 0)
        return store_failure(r, w->st, rc == CW_ENOTFOUND ? CW_EUNAVAIL : rc, NULL);
    if (moved)
        snk_run_kick(r->srv->run);
    return api_reply_json(r, MHD_HTTP_OK, json_pack("{s:I}", "retried", (json_int_t)moved));
}

/* ---- operations ---- */

static enum MHD_Result h_healthz(struct api_req *r)
{
    /* Liveness: the process answers. Never the store: a Redis outage must not restart pods. */
    return api_reply_json(r, MHD_HTTP_OK, json_pack("{s:s}", "status", "ok"));
}

static enum MHD_Result h_readyz(struct api_req *r)
{
    if (atomic_load(&r->srv->draining)) {
        api_metrics_ready(0);
        return api_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "draining", "shutting down");
    }
    struct api_worker *w = api_worker_get(r->srv);
    int rc = w ? store_ping(w->st) : CW_EUNAVAIL;
    const char *why = w && rc ? store_why(w->st) : "";
    if (!why[0])
        why = w ? "no reason given" : "out of memory";
    /* logged when readiness changes, so a wrong password or a full Redis is in the log once */
    if (api_metrics_ready(rc == 0 && !atomic_load(&r->srv->draining)))
        api_log(rc ? "warn" : "info", rc ? "not ready: the store does not accept writes" : "ready",
                rc ? json_pack("{s:s,s:s}", "store", r->srv->store_name, "error", why)
                   : json_pack("{s:s}", "store", r->srv->store_name));
    if (rc != 0) {
        api_metrics_store_error();
        char msg[API_ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "the store does not answer or refuses writes: %s", why);
        return api_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "store_unavailable", msg);
    }
    return api_reply_json(r, MHD_HTTP_OK, json_pack("{s:s,s:s}", "status", "ready", "store", r->srv->store_name));
}

/* The durable store's figures, read now: a gauge of the file must not wait for an ingest. */
static void disk_figures(struct api_req *r)
{
    struct api_worker *w = r->srv->durable ? api_worker_get(r->srv) : NULL;
    struct store_lmdb_info in = {0};
    if (!w || store_lmdb_info(w->st, &in) != 0)
        return;
    struct api_metrics_disk d = {in.file_bytes, in.used_bytes, r->srv->cfg.data_max_bytes, in.keys, in.findings,
                                 in.swept_keys, in.swept_findings};
    api_metrics_store_disk(&d);
}

static enum MHD_Result h_metrics(struct api_req *r)
{
    disk_figures(r);
    size_t len = 0;
    char *text = api_metrics_render(r->srv->run, &len);
    if (!text)
        return api_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error", "cannot render metrics");
    return api_reply(r, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len, 1);
}

/* The contract is compiled in; api_reply copies it (about 60 KB, rarely fetched) so that every
 * reply, this one too, gets the same headers (Cache-Control, Connection: close while draining). */
static enum MHD_Result h_openapi(struct api_req *r)
{
    return api_reply(r, MHD_HTTP_OK, "application/json", (void *)cw_openapi_json, cw_openapi_json_len, 0);
}

/* GET / is where a browser starts, and GET /ui is the page without its slash: to the page. The
 * Location is relative ("ui/" from "/" or from "/ui" is "/ui/"), so it also holds behind a proxy
 * that serves credwatch under a path prefix. */
static enum MHD_Result h_root(struct api_req *r)
{
    r->location = "ui/";
    return api_reply(r, MHD_HTTP_FOUND, "text/plain; charset=utf-8", (void *)"ui/\n", 4, 0);
}

/* The page's files are compiled in (api_ui.h); api_reply adds the page's CSP to these replies. */
static enum MHD_Result h_ui(struct api_req *r)
{
    const struct api_ui_asset *a =
        r->match.param_too_long ? NULL : api_ui_find(r->match.path == API_P_UI ? NULL : r->match.param);
    if (!a)
        return api_reply_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such file of the findings page");
    r->page = 1;
    return api_reply(r, MHD_HTTP_OK, a->type, (void *)a->data, a->len, 0);
}

enum MHD_Result api_dispatch(struct api_req *r)
{
    switch (r->match.route->handler) {
    case API_H_INGEST: return h_ingest(r);
    case API_H_FIREHOSE: return h_firehose(r);
    case API_H_LIST: return h_list(r);
    case API_H_GET: return h_get(r);
    case API_H_PATCH: return h_patch(r);
    case API_H_SINK_RETRY: return h_sink_retry(r);
    case API_H_KEY: return h_key(r);
    case API_H_SINKS: return h_sinks(r);
    case API_H_DEAD_LETTERS: return h_dead_letters(r);
    case API_H_HEALTHZ: return h_healthz(r);
    case API_H_READYZ: return h_readyz(r);
    case API_H_METRICS: return h_metrics(r);
    case API_H_OPENAPI: return h_openapi(r);
    case API_H_ROOT: return h_root(r);
    case API_H_UI: return h_ui(r);
    case API_H_BACKUP: return api_backup_get(r);
    }
    return api_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal_error", "no handler");
}
