/* api_server.c — `credwatch serve`: configuration, the libmicrohttpd daemon, the request
 * lifecycle (headers, body, completion, admission), signals and draining. The arrows point down:
 * this file calls api_dispatch (api_handlers.c), which answers through api_reply.c and runs on
 * the per-thread workers of api_worker.c; neither of those calls back up here. */
#include "api.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_conn.h"
#include "api_content.h"
#include "api_http.h"
#include "api_log.h"
#include "api_metrics.h"
#include "cw.h"
#include "settings.h"

#define API_FD_RESERVE 64u                  /* descriptors kept for Redis, logs, the listener */
#define API_CONNECTION_MEMORY ((size_t)64 << 10) /* per connection: headers and MHD buffers only */
#define API_DRAIN_POLL_NS 10000000L         /* 10 ms between checks while draining */
#define API_LOG_LINE_MAX 512

/* SIGHUP: reads CREDWATCH_AWS_IP_RANGES (and the allow-list) again and publishes the new table;
 * requests in flight finish with the table they started with. A bad file keeps the old table. */
static void reload_net(struct api_server *s)
{
    struct set_net fresh;
    char msg[SET_MSG_MAX];
    if (set_net_from_env(&fresh, msg, sizeof msg) != 0) {
        api_log("error", "network settings not reloaded: the previous ones stay", json_pack("{s:s}", "error", msg));
        return;
    }
    struct nr_stats st = { 0 };
    nr_table_stats(fresh.table, &st);
    nr_slot_set(s->net, fresh.table);  /* the slot takes over the reference */
    fresh.table = NULL;
    api_log("info", "network settings reloaded",
            json_pack("{s:I,s:I}", "aws_prefixes", (json_int_t)st.aws_prefixes, "allow_entries",
                      (json_int_t)st.allow_entries));
}

/* ---- request lifecycle ---- */

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

static enum hdr_verdict check_route(struct api_req *r, const char *url)
{
    int rc = api_route_match(r->method, url, &r->match);
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
    int a = api_auth_check(&cfg->ingest, &cfg->read, r->match.route->role, header(r, MHD_HTTP_HEADER_AUTHORIZATION),
                           header(r, "X-Api-Key"));
    if (a == CW_ENOCRED || a == CW_EBADCRED) {
        defer_error(r, MHD_HTTP_UNAUTHORIZED, "unauthorized",
                    a == CW_ENOCRED ? "credentials required: Authorization: Bearer <token>, X-Api-Key or Basic"
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
        return check_ingest(r, clen, has_body);
    case API_H_PATCH:
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
    enum hdr_verdict v = check_route(r, url);
    if (v == HDR_NEXT)
        v = check_auth(r, has_body);
    if (v == HDR_NEXT)
        v = check_body(r, clen, has_body);
    if (v == HDR_NEXT)
        v = alloc_body(r, clen);
    return v == HDR_NOW;
}

/* The most a body buffer may grow to: the limit, but the first buffer of a body without
 * Content-Length is API_INITIAL_BODY_CAP even under a smaller limit, as it always was (the
 * 413 check in on_body is the bound on the body; this is only the bound on the buffer). */
static size_t body_buf_max(const struct api_req *r)
{
    return r->limit > API_INITIAL_BODY_CAP ? r->limit : API_INITIAL_BODY_CAP;
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
    void *p = r->body;
    if (cw_grow(&p, &r->cap, r->len + n, 1, API_INITIAL_BODY_CAP, body_buf_max(r)) != CW_OK) {
        defer_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "insufficient_memory", "cannot buffer the body");
        goto drop;
    }
    r->body = p;
    /* a body without Content-Length reserves its bytes as its buffer grows */
    if (r->admitted && r->cap > r->reserved && !admit_bytes(r, r->cap - r->reserved)) {
        shed(r, "ingest bytes");
        goto drop;
    }
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
 * libmicrohttpd hands to on_request as *con_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct api_req *r = *con_cls;
    if (!r || !r->started) {
        /* First call: headers only. Mark the request; queue nothing unless refusing a body.
         * on_uri usually made it already, with its verdict on the raw request target. */
        if (!r && !(r = calloc(1, sizeof *r)))
            return MHD_NO;
        r->started = 1;
        r->srv = cls;
        r->conn = conn;
        r->method = method;
        r->t0 = cw_mono_s();
        r->match.path = API_P_NONE;
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
    return api_dispatch(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)toe;
    struct api_req *r = *con_cls;
    if (!r)
        return;
    if (!r->started) {  /* made by on_uri; the headers never completed */
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

/* libmicrohttpd's own messages, as JSON log lines. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[API_LOG_LINE_MAX];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    api_log("warn", line, json_pack("{s:s}", "source", "libmicrohttpd"));
}

/* ---- start, serve, drain ---- */

static const char *env_get(const char *name) { return getenv(name); }

static unsigned connection_limit(unsigned wanted)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < wanted + API_FD_RESERVE)
        return rl.rlim_cur > 2 * API_FD_RESERVE ? (unsigned)(rl.rlim_cur - API_FD_RESERVE) : API_FD_RESERVE;
    return wanted;
}

/* libmicrohttpd's connection limit (what the open-file limit allows, up to the cap, the probe
 * reserve and one per thread for accepts racing the guard's count) and the guard's cap below it,
 * so the reserve survives a low RLIMIT_NOFILE. */
static unsigned mhd_connections(const struct api_server *s)
{
    return connection_limit(s->cfg.max_connections + API_CONN_PROBE_RESERVE + s->cfg.threads);
}

static unsigned guard_cap(const struct api_server *s)
{
    unsigned m = mhd_connections(s), slack = API_CONN_PROBE_RESERVE + s->cfg.threads;
    unsigned cap = m > slack ? m - slack : 1;
    return cap < s->cfg.max_connections ? cap : s->cfg.max_connections;
}

static struct MHD_Daemon *start_daemon(struct api_server *s)
{
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (s->cfg.ipv6)
        flags |= MHD_USE_IPv6;
    /* The cap is api_conn's (it refuses at once and keeps a probe reserve); MHD's own limit, a
     * little above, is only the backstop: at it MHD stops accepting and clients wait. */
    unsigned limit = mhd_connections(s);
    /* MHD's option list is variadic; a pool of 1 is the same as no pool. */
    return MHD_start_daemon(flags, 0, api_conn_accept, NULL, on_request, s,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, /* first: covers option parsing */
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&s->cfg.addr,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)s->cfg.threads,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->cfg.conn_timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, limit,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, API_CONNECTION_MEMORY,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                            MHD_OPTION_NOTIFY_CONNECTION, api_conn_notify, NULL,
                            MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
                            MHD_OPTION_END);
}

/* Waits until no request is in flight or the drain budget is spent; returns those left. */
static long drain(unsigned budget_s, double *waited)
{
    double t0 = cw_mono_s(), deadline = t0 + budget_s;
    long left;
    while ((left = api_metrics_inflight_now()) > 0 && cw_mono_s() < deadline) {
        struct timespec ts = {0, API_DRAIN_POLL_NS};
        nanosleep(&ts, NULL);
    }
    *waited = cw_mono_s() - t0;
    return api_metrics_inflight_now();
}

/* ---- the phases of `credwatch serve`, in order ----
 * Each phase that can fail returns 0 or a CW_E* code, having logged why; api_serve sends every
 * failure through one cleanup path. A refused setting (CW_ECONFIG) exits 2, any other start-up
 * failure 1. */

#define SERVE_EXIT_CONFIG 2  /* a setting refused: the operator must change it, a retry will not help */
#define SERVE_EXIT_FAILED 1

static int settings_phase(struct api_server *s, int argc, char **argv)
{
    char msg[512];
    if (api_config_load(&s->cfg, argc, argv, env_get, msg, sizeof msg) == 0)
        return CW_OK;
    api_log("error", "invalid configuration", json_pack("{s:s}", "error", msg));
    fprintf(stderr, "credwatch serve: %s\n", msg);
    return CW_ECONFIG;
}

static void signals_phase(sigset_t *stop)
{
    /* Writes to a closed peer (client or Redis) must fail with EPIPE, not kill the process. */
    struct sigaction ign = {0};
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, NULL);
    /* SIGTERM/SIGINT are blocked before any thread starts, so every thread inherits the mask
     * and the main thread alone receives them, synchronously, with sigwait. */
    sigemptyset(stop);
    sigaddset(stop, SIGTERM);
    sigaddset(stop, SIGINT);
    sigaddset(stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, stop, NULL);
}

/* The same network knowledge as `scan` (AWS ranges, allow-lists, own accounts), so both
 * commands reach the same verdicts. Read-only once built: every worker's engine shares it. */
static int network_phase(struct api_server *s, struct set_net *net)
{
    char msg[SET_MSG_MAX];
    if (set_net_from_env(net, msg, sizeof msg) != 0) {
        api_log("error", "invalid configuration", json_pack("{s:s}", "error", msg));
        fprintf(stderr, "credwatch serve: %s\n", msg);
        return CW_ECONFIG;
    }
    set_net_ctx(net, &s->eng_cfg.det);
    /* requests take the table from the slot (SIGHUP swaps it); the slot holds its own reference */
    s->net = nr_slot_new(nr_table_ref(net->table));
    if (!s->net)
        return CW_ENOMEM;
    if (!net->aws_ranges)
        api_log("warn", "CREDWATCH_AWS_IP_RANGES is unset: AWS addresses are not told apart from the internet",
                NULL);
    return CW_OK;
}

static int redis_store(struct api_server *s)
{
    char msg[256] = "";
    const char *var = s->cfg.redis_cluster[0] ? "CREDWATCH_REDIS_CLUSTER" : "CREDWATCH_REDIS_URL";
    if (s->cfg.redis_cluster[0]) {
        s->base = store_redis_cluster_new(s->cfg.redis_cluster, s->cfg.redis_timeout_ms, msg, sizeof msg);
        s->store_name = "redis-cluster";
    } else {
        s->base = store_redis_new(s->cfg.redis_url, s->cfg.redis_timeout_ms, msg, sizeof msg);
        s->store_name = "redis";
    }
    if (s->base)
        return CW_OK;
    api_log("error", "invalid configuration", json_pack("{s:s,s:s}", "variable", var, "error", msg));
    fprintf(stderr, "credwatch serve: %s: %s\n", var, msg);
    return CW_ECONFIG;
}

static int memory_store(struct api_server *s)
{
    s->base = store_mem_new();
    s->store_name = "memory";
    s->embedded = 1;
    if (!s->base) {
        api_log("error", "cannot create the in-memory store", NULL);
        return CW_ENOMEM;
    }
    store_mem_limit(s->base, s->cfg.store_max_bytes);
    api_log("warn", "CREDWATCH_REDIS_URL is unset: embedded in-memory store, single instance only, "
                    "state is lost on restart", json_pack("{s:s}", "store", "memory"));
    return CW_OK;
}

/* The shared store, then what the workers need before the first request. A store that does not
 * accept writes yet is no failure: the service starts not ready and becomes ready when it does. */
static int store_phase(struct api_server *s)
{
    int err = s->cfg.redis_url[0] || s->cfg.redis_cluster[0] ? redis_store(s) : memory_store(s);
    if (err)
        return err;
    s->eng_cfg.limits.max_inflated = s->cfg.max_inflated;
    api_worker_init();
    atomic_store(&s->draining, 0);
    int ping = store_ping(s->base);
    api_metrics_ready(ping == 0);
    if (ping != 0)
        api_log("warn", "the store does not accept writes at start; not ready until it does",
                json_pack("{s:s,s:s}", "store", s->store_name, "error", store_why(s->base)));
    return CW_OK;
}

static void log_started(const struct api_server *s, struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int open_roles = s->cfg.ingest.n == 0 || s->cfg.read.n == 0;
    api_log("info", "listening",
            json_pack("{s:s,s:i,s:s,s:i,s:I,s:I,s:b,s:b}", "listen", s->cfg.listen, "port",
                      info ? (int)info->port : -1, "store", s->store_name, "threads", (int)s->cfg.threads,
                      "max_body_bytes", (json_int_t)s->cfg.max_body, "max_inflated_bytes",
                      (json_int_t)s->cfg.max_inflated, "ingest_auth", s->cfg.ingest.n > 0, "read_auth",
                      s->cfg.read.n > 0));
    api_log("info", "limits",
            json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:I}", "connection_timeout_s", (int)s->cfg.conn_timeout_s,
                      "header_timeout_s", (int)s->cfg.header_timeout_s, "upload_timeout_s",
                      (int)s->cfg.upload_timeout_s, "max_connections", (int)guard_cap(s),
                      "probe_reserve", (int)API_CONN_PROBE_RESERVE, "max_inflight_ingest",
                      (int)s->cfg.max_inflight_ingest, "max_inflight_ingest_bytes",
                      (json_int_t)s->cfg.max_inflight_bytes));
    if (open_roles)
        api_log("warn", "a role has no token: its routes are open to anyone who can reach the address",
                json_pack("{s:b,s:b}", "ingest_open", s->cfg.ingest.n == 0, "read_open", s->cfg.read.n == 0));
}

/* The connection guard, then the daemon: both run, or neither. CW_EIO when the guard's thread
 * cannot start or the daemon cannot listen on the address. */
static int start_phase(struct api_server *s, struct MHD_Daemon **d)
{
    const struct api_conn_limits lim = { guard_cap(s), s->cfg.conn_timeout_s,
                                          s->cfg.header_timeout_s, s->cfg.upload_timeout_s };
    if (api_conn_start(&lim) != 0) {
        api_log("error", "cannot start the connection guard", json_pack("{s:s}", "error", strerror(errno)));
        return CW_EIO;
    }
    *d = start_daemon(s);
    if (!*d) {
        api_conn_stop();
        api_log("error", "cannot start the HTTP server", json_pack("{s:s}", "listen", s->cfg.listen));
        return CW_EIO;
    }
    log_started(s, *d);
    return CW_OK;
}

/* Serves until SIGTERM or SIGINT, which it returns; each SIGHUP reloads the network table. */
static int wait_phase(struct api_server *s, const sigset_t *stop)
{
    int sig = 0;
    for (;;) {
        if (sigwait(stop, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            return sig;
        reload_net(s);
    }
}

/* Readiness fails first, so the load balancer stops sending; then stop accepting, let in-flight
 * requests finish within the budget, and stop. Returns the requests abandoned. */
static long shutdown_phase(struct api_server *s, struct MHD_Daemon *d, int sig, double *waited)
{
    atomic_store(&s->draining, 1);
    api_metrics_ready(0);
    api_log("info", "draining", json_pack("{s:s,s:i,s:I}", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                                          "drain_seconds", (int)s->cfg.drain_s, "inflight",
                                          (json_int_t)api_metrics_inflight_now()));
    MHD_socket lsock = MHD_quiesce_daemon(d);
    /* Quiesced, the socket still queues new connections that nobody will accept: shut it so
     * they are refused at once and the client retries elsewhere. It is closed only after
     * MHD_stop_daemon, as libmicrohttpd requires. */
    if (lsock != MHD_INVALID_SOCKET)
        shutdown(lsock, SHUT_RDWR);
    long left = drain(s->cfg.drain_s, waited);
    MHD_stop_daemon(d);
    api_conn_stop();
    if (lsock != MHD_INVALID_SOCKET)
        close(lsock);
    return left;
}

/* What the phases made, in reverse; safe on what was never made. */
static void release(struct api_server *s, struct set_net *net)
{
    if (s->base)
        store_free(s->base);
    s->base = NULL;
    nr_slot_free(s->net);
    s->net = NULL;
    set_net_free(net);
}

int api_serve(int argc, char **argv)
{
    static struct api_server srv; /* one service per process; large (token lists), so not on the stack */
    static struct set_net net;
    struct MHD_Daemon *d = NULL;
    sigset_t stop;
    double waited = 0;
    int err = settings_phase(&srv, argc, argv);
    if (err)
        goto fail;
    if (srv.cfg.help) {
        api_config_usage(stdout);
        return 0;
    }
    if (srv.cfg.print_routes)
        return api_print_routes(stdout) == 0 ? 0 : 1;
    signals_phase(&stop);
    if ((err = network_phase(&srv, &net)) != CW_OK || (err = store_phase(&srv)) != CW_OK ||
        (err = start_phase(&srv, &d)) != CW_OK)
        goto fail;
    long left = shutdown_phase(&srv, d, wait_phase(&srv, &stop), &waited);
    release(&srv, &net);
    api_log(left ? "warn" : "info", "stopped",
            json_pack("{s:f,s:I}", "drain_waited_s", waited, "inflight_abandoned", (json_int_t)left));
    return 0;
fail:
    /* a start that did not get to serve: everything made so far (nothing, for a refused setting) */
    release(&srv, &net);
    return err == CW_ECONFIG ? SERVE_EXIT_CONFIG : SERVE_EXIT_FAILED;
}
