/* api_request.c — one request's lifecycle, as libmicrohttpd's callbacks: the raw request target,
 * the headers (framing, the probe reserve, route, credentials, the route's own checks, admission
 * of ingest), the body, and completion. The arrows point down: this file calls api_dispatch (api_handlers.c), which answers
 * through api_reply.c and runs on the per-thread workers of api_worker.c; none of them calls back
 * up here, and api_server.c only hands these callbacks to the daemon. */
#include "api_request.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_conn.h"
#include "api_content.h"
#include "api_cors.h"
#include "api_http.h"
#include "api_metrics.h"
#include "cw.h"

static void defer_error(struct api_req *r, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void defer_error(struct api_req *r, unsigned status, const char *code, const char *fmt, ...)
{
    r->pending_status = status;
    r->pending_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->pending_msg, sizeof r->pending_msg, fmt, ap);
    va_end(ap);
    r->limit = 0; /* any body is read and dropped */
}

/* Parses Content-Length; -1 when absent or not a plain number (MHD has validated it already). */
static long long content_length(struct MHD_Connection *c)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!v || *v < '0' || *v > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || n > (unsigned long long)INT64_MAX)
        return -1;
    return (long long)n;
}

static const char *header(struct api_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* ---- admission control of ingest ----
 *
 * Work queued beyond what the threads can finish within the senders' 5 s deadline only makes
 * every sender time out and retry. So an ingest is admitted at its headers only while fewer than
 * cfg.max_inflight_ingest are admitted (uploading or processing) and its body fits in what is
 * left of cfg.max_inflight_bytes (Content-Length reserved at once; a chunked body reserves as it
 * grows). Otherwise it is answered 503 with Retry-After at once, which EventBridge and the
 * forwarder retry later: shedding costs a retry, queueing costs a timeout and the same retry.
 * Both are released when the request completes. */

static int admit_bytes(struct api_req *r, size_t n)
{
    struct api_server *s = r->srv;
    size_t cur = atomic_load(&s->ingest_bytes);
    do {
        if (cur > s->cfg.max_inflight_bytes || n > s->cfg.max_inflight_bytes - cur)
            return 0;
    } while (!atomic_compare_exchange_weak(&s->ingest_bytes, &cur, cur + n));
    r->reserved += n;
    return 1;
}

static int admit_ingest(struct api_req *r, long long clen)
{
    struct api_server *s = r->srv;
    unsigned cur = atomic_load(&s->ingest_admitted);
    do {
        if (cur >= s->cfg.max_inflight_ingest)
            return 0;
    } while (!atomic_compare_exchange_weak(&s->ingest_admitted, &cur, cur + 1));
    r->admitted = 1;
    if (clen > 0 && !admit_bytes(r, (size_t)clen))
        return 0;
    return 1;
}

static void admission_release(struct api_req *r)
{
    if (r->admitted)
        atomic_fetch_sub(&r->srv->ingest_admitted, 1);
    if (r->reserved)
        atomic_fetch_sub(&r->srv->ingest_bytes, r->reserved);
    r->admitted = 0;
    r->reserved = 0;
}

static void shed(struct api_req *r, const char *what)
{
    api_metrics_shed();
    admission_release(r);
    defer_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "overloaded", "too many %s in flight; retry later", what);
}

static int expects_continue(struct api_req *r)
{
    const char *e = header(r, MHD_HTTP_HEADER_EXPECT);
    return e && strcasecmp(e, "100-continue") == 0;
}

/* ---- the headers, phase by phase ----
 *
 * Each phase either lets the request go on (HDR_NEXT) or refuses it through defer_error and says
 * when the refusal is sent: HDR_NOW when a body is on its way that will be refused anyway, else
 * HDR_LATER (after the body, or on the next call when there is none, so the connection stays
 * keep-alive). HDR_LATER and HDR_NOW are on_headers' own answers, 0 and 1. */
enum hdr_verdict { HDR_NEXT = -1, HDR_LATER = 0, HDR_NOW = 1 };

static enum hdr_verdict refuse_at(int now) { return now ? HDR_NOW : HDR_LATER; }

/* OPTIONS on a known path is a CORS preflight (it is no route of the table: the answer follows
 * from the path's read-role routes, api_cors.c). It needs no token, since browsers send none, and
 * reads no body; accepted, it is answered 204 once any body is dropped, else 403 cors_refused. */
static enum hdr_verdict check_preflight(struct api_req *r, int has_body)
{
    char why[API_CORS_MSG_MAX];
    if (api_cors_preflight(&r->srv->cfg.cors, r->match.path, header(r, "Origin"),
                           header(r, "Access-Control-Request-Method"), why, sizeof why)) {
        defer_error(r, MHD_HTTP_FORBIDDEN, "cors_refused", "%s", why);
        return refuse_at(has_body);
    }
    r->preflight = 1;
    r->limit = 0;
    return HDR_LATER;
}

static enum hdr_verdict check_route(struct api_req *r, const char *url, int has_body)
{
    int rc = api_route_match(r->method, url, &r->match);
    if (rc == API_ROUTE_BAD_METHOD && strcmp(r->method, "OPTIONS") == 0)
        return check_preflight(r, has_body);
    if (rc == API_ROUTE_NOT_FOUND) {
        defer_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no route for %.100s", url);
        return HDR_LATER;
    }
    if (rc == API_ROUTE_BAD_METHOD) {
        defer_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", "%.16s is not allowed on %s; allowed: %s",
                    r->method, api_path_template(r->match.path), r->match.allow);
        return HDR_LATER;
    }
    return HDR_NEXT;
}

static enum hdr_verdict check_auth(struct api_req *r, int has_body)
{
    const struct api_config *cfg = &r->srv->cfg;
    const char *authz = header(r, MHD_HTTP_HEADER_AUTHORIZATION), *key = header(r, "X-Api-Key");
    char fh_key[API_TOKEN_MAX];
    if (r->match.route->handler == API_H_FIREHOSE && !authz && !key) {
        /* Firehose sends its access key in its own header (api_fh_access_key: the key, or the
         * Secrets Manager object); a malformed one is passed on as it is, to be refused */
        const char *fh = header(r, "X-Amz-Firehose-Access-Key");
        int k = api_fh_access_key(fh, fh_key, sizeof fh_key);
        key = k > 0 ? fh_key : k < 0 ? fh : NULL;
    }
    int a = api_auth_check(&cfg->ingest, &cfg->read, r->match.route->role, authz, key);
    memset(fh_key, 0, sizeof fh_key);
    if (a == CW_ENOCRED || a == CW_EBADCRED) {
        defer_error(r, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                    a == CW_ENOCRED ? "credentials required: Authorization: Bearer <token>, X-Api-Key or Basic"
                                      " (on /v1/ingest/firehose also X-Amz-Firehose-Access-Key)"
                                          : "invalid credentials");
        return refuse_at(has_body);
    }
    if (a == CW_EFORBIDDEN) {
        defer_error(r, MHD_HTTP_FORBIDDEN, "forbidden", "this token may not %s %s", r->method,
                    api_path_template(r->match.path));
        return refuse_at(has_body);
    }
    return HDR_NEXT;
}

/* An ingest: size, encoding and type first (they refuse whatever the load), then admission. */
static enum hdr_verdict check_ingest(struct api_req *r, long long clen, int has_body)
{
    const struct api_config *cfg = &r->srv->cfg;
    if (clen >= 0 && (unsigned long long)clen > cfg->max_body) {
        defer_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large", "body of %lld bytes exceeds %zu bytes",
                    clen, cfg->max_body);
        return HDR_NOW;
    }
    int enc = api_content_encoding(header(r, MHD_HTTP_HEADER_CONTENT_ENCODING));
    if (enc == API_ENC_UNSUPPORTED) {
        defer_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                    "Content-Encoding must be gzip or identity");
        return refuse_at(has_body);
    }
    if (!api_content_type_ingest(header(r, MHD_HTTP_HEADER_CONTENT_TYPE))) {
        defer_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                    "Content-Type must be application/json, application/x-ndjson, application/gzip or "
                    "application/octet-stream");
        return refuse_at(has_body);
    }
    r->gzip = enc == API_ENC_GZIP;
    if (!admit_ingest(r, clen)) {
        shed(r, r->admitted ? "ingest bytes" : "ingest requests");
        /* Answering while the body is still coming makes the kernel reset the connection
         * (unread data at close), and the client sees an error instead of 503 and
         * Retry-After. So the body is read and dropped (no memory held), and the 503 sent
         * after it; only a client waiting for "100 Continue" is answered at once. */
        return refuse_at(has_body && expects_continue(r));
    }
    r->limit = cfg->max_body;
    return HDR_NEXT;
}

static enum hdr_verdict check_patch(struct api_req *r, long long clen, int has_body)
{
    if (clen > API_PATCH_BODY_MAX) {
        defer_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large", "body exceeds %d bytes",
                    API_PATCH_BODY_MAX);
        return HDR_NOW;
    }
    if (!api_content_type_json(header(r, MHD_HTTP_HEADER_CONTENT_TYPE))) {
        defer_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                    "Content-Type must be application/json");
        return refuse_at(has_body);
    }
    r->limit = API_PATCH_BODY_MAX;
    return HDR_NEXT;
}

/* The route's own checks; each sets r->limit, the body it will buffer. */
static enum hdr_verdict check_body(struct api_req *r, long long clen, int has_body)
{
    switch (r->match.route->handler) {
    case API_H_INGEST:
    case API_H_FIREHOSE:
        return check_ingest(r, clen, has_body);
    case API_H_PATCH:
    case API_H_SINK_RETRY:  /* a small JSON object too */
        return check_patch(r, clen, has_body);
    default:
        r->limit = 0; /* GET: a body means nothing here and is dropped */
        return HDR_NEXT;
    }
}

/* Content-Length is known and within the cap: the buffer is allocated once. */
static enum hdr_verdict alloc_body(struct api_req *r, long long clen)
{
    if (!r->limit || clen <= 0)
        return HDR_NEXT;
    r->body = malloc((size_t)clen);
    if (!r->body) {
        defer_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "insufficient_memory", "cannot buffer %lld bytes", clen);
        return HDR_NOW;
    }
    r->cap = (size_t)clen;
    return HDR_NEXT;
}

/* Decides everything the headers alone can decide. Returns 1 when the reply should be queued
 * at once (a body is on its way that we will refuse anyway), else 0. Replies for requests
 * without a body are deferred to the next call, so the connection stays keep-alive. */
static int on_headers(struct api_req *r, const char *url)
{
    long long clen = content_length(r->conn);
    int has_body = clen > 0 || header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
    enum hdr_verdict v = check_route(r, url, has_body);
    if (v == HDR_NEXT)
        v = check_auth(r, has_body);
    if (v == HDR_NEXT)
        v = check_body(r, clen, has_body);
    if (v == HDR_NEXT)
        v = alloc_body(r, clen);
    return v == HDR_NOW;
}

/* Appends a chunk of the body; past the limit the request turns into a 413 (sent once the
 * upload is over: MHD cannot answer mid-upload). Any refusal drops what was buffered. */
static void on_body(struct api_req *r, const char *data, size_t n)
{
    if (r->pending_status || r->limit == 0)
        return;
    if (n > r->limit - r->len) {
        defer_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large", "body exceeds %zu bytes", r->limit);
        goto drop;
    }
    /* a body without Content-Length reserves its bytes as its buffer grows, before it grows: an
     * upload over the budget is shed without first taking the memory the budget exists to bound */
    size_t target = cw_grow_target(r->cap, r->len + n, API_INITIAL_BODY_CAP, r->limit);
    if (r->admitted && target > r->reserved && !admit_bytes(r, target - r->reserved)) {
        shed(r, "ingest bytes");
        goto drop;
    }
    void *p = r->body;
    if (cw_grow(&p, &r->cap, r->len + n, 1, API_INITIAL_BODY_CAP, r->limit) != CW_OK) {
        defer_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "insufficient_memory", "cannot buffer the body");
        goto drop;
    }
    r->body = p;
    memcpy(r->body + r->len, data, n);
    r->len += n;
    return;
drop:
    free(r->body);
    r->body = NULL;
    r->len = r->cap = 0;
}

/* Counts the values of one request header (MHD keeps every occurrence). */
struct hcount {
    const char *name;
    int n;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    (void)value;
    struct hcount *h = cls;
    if (strcasecmp(key, h->name) == 0)
        h->n++;
    return MHD_YES;
}

/* RFC 9112 §6.3: a request with Transfer-Encoding and Content-Length, or with Content-Length more
 * than once, is framed ambiguously; a proxy in front may have framed it otherwise, so the bytes
 * after it could be read as a request nobody sent. Refused with 400, and the connection closed. */
static int framing_ambiguous(struct api_req *r)
{
    struct hcount cl = { MHD_HTTP_HEADER_CONTENT_LENGTH, 0 }, te = { MHD_HTTP_HEADER_TRANSFER_ENCODING, 0 };
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_header, &cl);
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, count_header, &te);
    if (cl.n <= 1 && !(cl.n && te.n) && te.n <= 1)
        return 0;
    defer_error(r, MHD_HTTP_BAD_REQUEST, "ambiguous_framing",
                cl.n > 1 ? "Content-Length is given more than once" : te.n > 1 ? "Transfer-Encoding is given more than once"
                                                                       : "both Content-Length and Transfer-Encoding are given");
    r->close_after = 1;
    return 1;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The raw request target, before libmicrohttpd unescapes it (which would cut it at a %00 and
 * pass other bytes on as they are). Its verdict rides on the request record this returns, which
 * libmicrohttpd hands to api_request_access as *con_cls. */
void *api_request_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    struct api_req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    size_t len = strlen(uri), params = 0;
    const char *q = strchr(uri, '?');
    if (q)
        for (const char *p = q + 1; *p; p++)
            params += *p == '&' || *p == ';';
    if (q && q[1])
        params++;
    char path[API_URI_MAX + 1];
    size_t o = 0;
    int nul = 0;
    for (size_t i = 0; i < len && o < API_URI_MAX; i++) {
        int c = (unsigned char)uri[i];
        if (c == '%' && i + 2 < len && hexval(uri[i + 1]) >= 0 && hexval(uri[i + 2]) >= 0) {
            c = hexval(uri[i + 1]) * 16 + hexval(uri[i + 2]);
            i += 2;
        } else if (c == '+' && q && uri + i > q) {
            c = ' ';
        }
        if (!c)
            nul = 1;
        else
            path[o++] = (char)c;
    }
    path[o] = 0;
    if (len > API_URI_MAX) {
        r->uri_status = MHD_HTTP_URI_TOO_LONG;
        r->uri_code = "uri_too_long";
        snprintf(r->uri_msg, sizeof r->uri_msg, "the request target is %zu bytes; at most %d", len, API_URI_MAX);
    } else if (params > API_QUERY_PARAMS_MAX) {
        r->uri_status = MHD_HTTP_URI_TOO_LONG;
        r->uri_code = "too_many_parameters";
        snprintf(r->uri_msg, sizeof r->uri_msg, "%zu query parameters; at most %d", params, API_QUERY_PARAMS_MAX);
    } else if (nul) {
        r->uri_status = MHD_HTTP_BAD_REQUEST;
        r->uri_code = "invalid_request";
        snprintf(r->uri_msg, sizeof r->uri_msg, "the request target contains an escaped NUL (%%00)");
    } else if (!api_utf8_valid(path)) {
        r->uri_status = MHD_HTTP_BAD_REQUEST;
        r->uri_code = "invalid_request";
        snprintf(r->uri_msg, sizeof r->uri_msg, "the request target is not UTF-8 once unescaped");
    }
    /* A refused target's query is cut here, before libmicrohttpd splits it: it stores every
     * parameter in the connection's fixed memory pool, and ~1,000 of them (7 KB) exhaust it so that
     * it cannot even send its own error, and the client gets no answer at all. libmicrohttpd 0.9.75
     * passes the request line's own buffer, which it parses right after this callback returns; an
     * empty query there makes it store nothing. Only a refused target is touched: its reply is
     * ours (r->uri_status), and nothing reads the query again. */
    if (r->uri_status && q && q[1])
        ((char *)q)[1] = '\0';
    return r;
}

enum MHD_Result api_request_access(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct api_req *r = *con_cls;
    if (!r || !r->started) {
        /* First call: headers only. Mark the request; queue nothing unless refusing a body.
         * api_request_uri usually made it already, with its verdict on the raw request target. */
        if (!r && !(r = calloc(1, sizeof *r)))
            return MHD_NO;
        r->started = 1;
        r->srv = cls;
        r->conn = conn;
        r->method = method;
        r->t0 = cw_mono_s();
        r->match.path = API_P_NONE;
        /* The refusals below come before the route is matched; Firehose's are in its shape too
         * (api_reply_error goes by the path): a probe-reserve 503 reaches a healthy stream. */
        if (url && strcmp(url, api_path_template(API_P_INGEST_FIREHOSE)) == 0)
            r->match.path = API_P_INGEST_FIREHOSE;
        *con_cls = r;
        api_metrics_inflight(1);
        if (r->uri_status) {
            defer_error(r, r->uri_status, r->uri_code, "%s", r->uri_msg);
            r->close_after = 1;
            return api_reply_error(r, r->pending_status, r->pending_code, r->pending_msg);
        }
        if (!api_utf8_valid(method)) {
            defer_error(r, MHD_HTTP_BAD_REQUEST, "invalid_request", "the method is not UTF-8 text");
            r->close_after = 1;
            return api_reply_error(r, r->pending_status, r->pending_code, r->pending_msg);
        }
        if (framing_ambiguous(r))
            return api_reply_error(r, r->pending_status, r->pending_code, r->pending_msg);
        api_conn_headers_done(conn, content_length(conn) > 0 || header(r, MHD_HTTP_HEADER_TRANSFER_ENCODING));
        if (api_conn_probe_only(conn)) {
            /* accepted into the probe reserve: the probes only, and the slot freed after */
            r->close_after = 1;
            if (strcmp(method, "GET") != 0 || (strcmp(url, "/healthz") != 0 && strcmp(url, "/readyz") != 0)) {
                defer_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "too_many_connections",
                            "the connection limit is reached; only GET /healthz and /readyz are answered");
                return api_reply_error(r, r->pending_status, r->pending_code, r->pending_msg);
            }
        }
        if (on_headers(r, url))
            return api_reply_error(r, r->pending_status, r->pending_code, r->pending_msg);
        return MHD_YES;
    }
    if (*upload_data_size) {
        on_body(r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    api_conn_body_done(conn);
    if (r->status) /* already answered */
        return MHD_YES;
    if (r->pending_status)
        return api_reply_error(r, r->pending_status, r->pending_code, r->pending_msg);
    if (r->preflight)
        return api_reply(r, MHD_HTTP_NO_CONTENT, NULL, (void *)"", 0, 0);
    return api_dispatch(r);
}

void api_request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                            enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)toe;
    struct api_req *r = *con_cls;
    if (!r)
        return;
    if (!r->started) {  /* made by api_request_uri; the headers never completed */
        free(r);
        *con_cls = NULL;
        return;
    }
    api_metrics_request(r->match.path, r->method, r->status, cw_mono_s() - r->t0);
    api_metrics_inflight(-1);
    api_conn_request_done(conn);
    admission_release(r);
    free(r->body);
    free(r);
    *con_cls = NULL;
}
