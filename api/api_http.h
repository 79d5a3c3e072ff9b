/* api_http.h — the contract between the server plumbing (api_server.c: the daemon;
 * api_request.c: the request lifecycle; api_reply.c: replies; api_worker.c: per-thread engines)
 * and the route handlers (api_handlers.c). Internal to api/: nothing outside this folder
 * includes it. */
#ifndef CW_API_HTTP_H
#define CW_API_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "api_config.h"
#include "api_firehose.h"
#include "api_route.h"
#include "engine.h"
#include "sink_run.h"
#include "netranges.h"

#define API_PATCH_BODY_MAX 16384          /* a status and a note of STORE_NOTE_MAX, JSON-escaped */
#define API_ERR_MSG_MAX 320               /* message of a deferred error reply */
#define API_URI_MAX 4096                  /* request target, path and query: 414 above */
#define API_QUERY_PARAMS_MAX 32           /* query parameters (the API has at most 8): 414 above */
#define API_RETRY_AFTER_S "2"             /* Retry-After of 503s: EventBridge retries with its own backoff */
#define API_DEADLINE_S 4.5                /* senders give up after 5 s: slower ingests are counted */
#define API_DEFAULT_LIST_LIMIT 100
#define API_INITIAL_BODY_CAP ((size_t)64 << 10) /* first allocation when no Content-Length is given (the limit when smaller: a small limit must not reserve more than it admits) */

/* The embedded OpenAPI document (build/openapi_blob.c, from openapi/openapi.json). */
extern const char cw_openapi_json[];
extern const size_t cw_openapi_json_len;

/* Process-wide service state: the configuration (read-only once serving), the shared store
 * every worker clones, and the draining flag. */
struct api_server {
    struct api_config cfg;
    struct eng_config eng_cfg;
    struct store *base;
    const char *store_name;       /* "durable", "memory", "redis" or "redis-cluster" */
    int embedded;                 /* the in-memory store (store_mem_*) */
    int durable;                  /* the durable store (store_lmdb_*) in cfg.data_dir */
    atomic_int backup_busy;       /* a GET /v1/backup is being made or sent (one at a time) */
    atomic_int draining;
    /* Admission control of ingest (see api_request.c): requests and body bytes admitted now. */
    atomic_uint ingest_admitted;
    atomic_size_t ingest_bytes;
    struct nr_slot *net;          /* the network table, swapped on SIGHUP */
    /* Findings out (sink/): the sinks configured and their delivery threads; run is NULL when no
     * sink is configured. GET /v1/sinks and /metrics read their counters. */
    struct snk_confs sinks;
    struct snk_run *run;
};

/* A worker thread's own store handle and engine (store handles are not thread-safe), created
 * on the thread's first request and freed when the thread exits. rep is its reusable report. */
struct api_worker {
    struct store *st;
    struct eng *eng;
    struct eng_report *rep;
    struct nr_table *net;         /* the table this worker's request holds (api_worker_net) */
};

/* Points the worker's engine at the current network table for one request, holding a reference
 * until api_worker_net_done: a SIGHUP reload in between cannot free it under the request. */
void api_worker_net(struct api_server *s, struct api_worker *w);
void api_worker_net_done(struct api_worker *w);

/* One request, from its headers to the completion callback. */
struct api_req {
    struct api_server *srv;
    struct MHD_Connection *conn;
    const char *method;           /* owned by MHD, valid for the request */
    struct api_match match;
    double t0;                    /* monotonic seconds at the headers */
    unsigned status;              /* the status queued (0: none, e.g. the client went away) */
    /* A reply decided before the body arrived (404, 405, 401...), sent once it is read. */
    unsigned pending_status;
    const char *pending_code;
    char pending_msg[API_ERR_MSG_MAX];
    /* The body, accumulated up to limit (0: a body is not expected and is discarded). */
    uint8_t *body;
    size_t len, cap, limit;
    int gzip;                     /* Content-Encoding: gzip */
    int admitted;                 /* holds one of srv->ingest_admitted */
    int close_after;              /* answer with Connection: close (a request framed ambiguously) */
    const char *location;         /* Location of a redirect (static text), or NULL */
    int page;                     /* the reply is a file of the page: its CSP lets its own script run */
    int preflight;                /* an accepted CORS preflight (OPTIONS): 204 with api_cors.c's headers */
    int started;                  /* api_request_access has seen the headers */
    unsigned uri_status;          /* the raw request target refused (from api_request_uri), 0 when fine */
    const char *uri_code;
    char uri_msg[96];
    size_t reserved;              /* bytes held in srv->ingest_bytes */
    /* POST /v1/ingest/firehose: the body's requestId once checked ("" before: the header's is
     * echoed), and the counts a 200 carries as X-Credwatch-* headers */
    char fh_id[API_FH_REQUEST_ID_MAX + 1];
    struct {
        const char *name;
        char value[24];
    } xhdr[API_FH_COUNT_HEADERS];
    size_t n_xhdr;
};

/* The calling thread's worker, created on first use; NULL when the store or engine could not
 * be created (the handler answers 503). */
struct api_worker *api_worker_get(struct api_server *s);
/* Once per process, before the first request (api_worker.c). */
void api_worker_init(void);

/* Queue a reply; body is copied unless must_free (then MHD frees it with free()).
 * The reply functions return what MHD_queue_response returned. */
enum MHD_Result api_reply(struct api_req *r, unsigned status, const char *content_type, void *body, size_t len,
                          int must_free);
/* Queue resp (taken: destroyed here, queued or not) with the headers every reply gets; for bodies
 * api_reply cannot hold (a stream: GET /v1/backup). */
enum MHD_Result api_reply_response(struct api_req *r, unsigned status, const char *content_type,
                                   struct MHD_Response *resp);
/* Queue doc (stolen) as compact JSON. */
enum MHD_Result api_reply_json(struct api_req *r, unsigned status, json_t *doc);
/* Queue {"error":{"code","message"}} with the headers the status calls for (WWW-Authenticate,
 * Allow, Retry-After). */
enum MHD_Result api_reply_error(struct api_req *r, unsigned status, const char *code, const char *message);
/* Is s valid UTF-8 (api_reply.c)? Request targets and methods are checked with it. */
int api_utf8_valid(const char *s);

/* Runs the route's handler once the whole body is in. */
enum MHD_Result api_dispatch(struct api_req *r);

/* An answer on POST /v1/ingest/firehose, in Firehose's shape (api_fh_answer): every reply on that
 * route goes through it (api_reply_error hands it that route's refusals). It echoes r->fh_id, or
 * before the body is read the X-Amz-Firehose-Request-Id header when valid, else "".
 * error_message NULL: success (with the X-Credwatch-* headers in r->xhdr). */
enum MHD_Result api_fh_reply(struct api_req *r, unsigned status, const char *error_message);

#endif
