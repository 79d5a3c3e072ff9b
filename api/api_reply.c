/* api_reply.c — queuing replies: a body with its status, JSON documents, and the error document
 * every refusal uses (its message made valid UTF-8, so it can always be encoded). */
#include "api_http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_cors.h"
#include "api_log.h"
#include "api_metrics.h"
#include "api_ui.h"
#include "cw.h"

static int xhr_request(const struct api_req *r)
{
    const char *x = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Requested-With");
    return x && strcasecmp(x, "XMLHttpRequest") == 0;
}

/* Every reply, data or page: a browser never sniffs a type, never frames it, never sends where it
 * came from; only the page's own files may run script, and only their own (API_UI_CSP). */
static void add_security_headers(const struct api_req *r, struct MHD_Response *resp)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_SECURITY_POLICY, r->page ? API_UI_CSP : API_DATA_CSP);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_X_CONTENT_TYPE_OPTIONS, "nosniff");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_X_FRAME_OPTIONS, "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
}

enum MHD_Result api_reply(struct api_req *r, unsigned status, const char *content_type, void *body, size_t len,
                          int must_free)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, body, must_free ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (!resp) {
        if (must_free)
            free(body);
        return MHD_NO;
    }
    return api_reply_response(r, status, content_type, resp);
}

enum MHD_Result api_reply_response(struct api_req *r, unsigned status, const char *content_type,
                                   struct MHD_Response *resp)
{
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    add_security_headers(r, resp);
    api_cors_add_headers(r, resp);
    if (r->location)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
    for (size_t i = 0; i < r->n_xhdr && i < API_FH_COUNT_HEADERS; i++)
        MHD_add_response_header(resp, r->xhdr[i].name, r->xhdr[i].value);
    switch (status) {
    case MHD_HTTP_UNAUTHORIZED:
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"credwatch\"");
        /* A Basic challenge makes a browser open its own login dialog over the page: a script's
         * request that says so (X-Requested-With: XMLHttpRequest, the findings page's and most
         * dashboards' convention) gets only the Bearer one and asks for the token itself. */
        if (!xhr_request(r))
            MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Basic realm=\"credwatch\"");
        break;
    case MHD_HTTP_METHOD_NOT_ALLOWED:
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->match.allow);
        break;
    case MHD_HTTP_SERVICE_UNAVAILABLE:
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, API_RETRY_AFTER_S);
        break;
    default:
        break;
    }
    /* While draining, tell keep-alive clients to reconnect (to another instance); after an
     * ambiguously framed request, never read another one from the same connection. */
    if (atomic_load(&r->srv->draining) || r->close_after)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    if (rc == MHD_YES)
        r->status = status;
    return rc;
}

enum MHD_Result api_reply_json(struct api_req *r, unsigned status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text) {
        static const char oom[] = "{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}";
        return api_reply(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", (void *)oom, sizeof oom - 1, 0);
    }
    return api_reply(r, status, "application/json", text, strlen(text), 1);
}

/* Copies s into out (size > 0) with every byte that is not part of valid UTF-8 replaced by '?':
 * messages quote client input (a path, a method), and JSON can only carry UTF-8. */
static void utf8_clean(const char *s, char *out, size_t size)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p && o + 1 < size) {
        size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 && *p >= 0xc2 ? 2 : (*p & 0xf0) == 0xe0 ? 3
                 : (*p & 0xf8) == 0xf0 && *p <= 0xf4 ? 4 : 0;
        size_t k = 1;
        while (n && k < n && (p[k] & 0xc0) == 0x80)
            k++;
        if (!n || k < n || o + n + 1 > size) {
            out[o++] = '?';
            p++;
            continue;
        }
        memcpy(out + o, p, n);
        o += n;
        p += n;
    }
    out[o] = 0;
}

int api_utf8_valid(const char *s)
{
    char tmp[API_URI_MAX + 1];
    if (strlen(s) > API_URI_MAX)
        return 0;
    utf8_clean(s, tmp, sizeof tmp);
    return strcmp(tmp, s) == 0;  /* a '?' of the input stays one; a bad byte became one */
}

enum MHD_Result api_reply_error(struct api_req *r, unsigned status, const char *code, const char *message)
{
    char clean[API_ERR_MSG_MAX * 2];
    utf8_clean(message ? message : "", clean, sizeof clean);
    message = clean;
    json_t *doc = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message ? message : "");
    if (status >= 500) {
        /* During a Redis outage every request fails: log at most one line per second, with
         * the number of failures left out since the previous line (metrics count them all). */
        static atomic_llong last_s;
        static atomic_long suppressed;
        long long now_s = (long long)cw_mono_s();
        long long prev = atomic_load(&last_s);
        if (prev != now_s && atomic_compare_exchange_strong(&last_s, &prev, now_s))
            api_log("warn", "request failed",
                    json_pack("{s:s,s:s,s:i,s:s,s:s,s:I}", "method", r->method, "route",
                              api_path_template(r->match.path), "status", (int)status, "code", code, "message",
                              message ? message : "", "suppressed", (json_int_t)atomic_exchange(&suppressed, 0)));
        else
            atomic_fetch_add(&suppressed, 1);
    }
    if (r->match.path == API_P_INGEST_FIREHOSE) {  /* Firehose's shape, whatever refused it */
        json_decref(doc);
        return api_fh_reply(r, status, message);
    }
    return api_reply_json(r, status, doc);
}

/* The id we echo: the body's once read, else the header's when it is one we may echo, else "". */
static const char *fh_answer_id(struct api_req *r)
{
    if (r->fh_id[0])
        return r->fh_id;
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Amz-Firehose-Request-Id");
    return h && api_fh_request_id_ok(h, strnlen(h, API_FH_REQUEST_ID_MAX + 1)) ? h : "";
}

enum MHD_Result api_fh_reply(struct api_req *r, unsigned status, const char *error_message)
{
    const char *id = fh_answer_id(r);
    int64_t now = cw_now_ms();
    size_t len = 0;
    char *text = api_fh_answer(id, now, error_message, &len);
    api_metrics_fh_request(status);
    if (!text) {
        /* out of memory, or a message that is not UTF-8: the same shape, from the stack (the id's
         * characters need no escaping) */
        char fixed[API_FH_REQUEST_ID_MAX + 160];
        int n = snprintf(fixed, sizeof fixed, "{\"requestId\":\"%s\",\"timestamp\":%lld%s}", id, (long long)now,
                         error_message ? ",\"errorMessage\":\"the request failed\"" : "");
        return api_reply(r, status, "application/json", fixed, (size_t)n, 0);
    }
    return api_reply(r, status, "application/json", text, len, 1);
}
