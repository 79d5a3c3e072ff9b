/* api_metrics.h — process-wide counters (atomics, no locks) and their Prometheus text form.
 * Process-wide state lives here, in the connection guard (api_conn.c), the per-thread worker key
 * (api_worker.c) and redis_node.c's address table; everything else hangs off the server. */
#ifndef CW_API_METRICS_H
#define CW_API_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "api_route.h"

#define API_METRICS_TEXT_MAX ((size_t)1 << 20)  /* bound of the /metrics body */

/* One answered request: route template, method, status, wall time. Labels are mapped onto
 * fixed sets (unknown methods → OTHER, unlisted statuses → other) so cardinality is bounded. */
void api_metrics_request(enum api_path route, const char *method, unsigned status, double seconds);

/* Outcome of one successful ingest. */
void api_metrics_records(size_t accepted, size_t ignored, size_t duplicates, size_t skipped, size_t created,
                         size_t updated);

/* Time spent in store work (see the HELP text for what it covers). */
void api_metrics_store(double seconds);
void api_metrics_store_error(void);

/* An ingest that took longer than the sender's deadline allows (answered anyway). */
void api_metrics_deadline(void);

/* An ingest refused by admission control (503 + Retry-After: too many or too large in flight). */
void api_metrics_shed(void);

/* POST /v1/ingest/firehose: one answer (by its status: the outcome label), the records of an
 * envelope, its CloudWatch Logs log events and control messages, and the records (or log
 * events) dropped, by enum api_fh_reason (n of them in by_reason). */
void api_metrics_fh_request(unsigned status);
void api_metrics_fh_records(size_t records, size_t log_events, size_t control);
void api_metrics_fh_rejected(const size_t *by_reason, size_t n);

int api_metrics_ready(int ready);
/* The embedded store's size and evictions, after each ingest. Returns 1 when keys were evicted
 * since the last time it returned 1 and API_METRICS_EVICT_LOG_S have passed (log it). */
#define API_METRICS_EVICT_LOG_S 60
int api_metrics_store_mem(size_t bytes, size_t max_bytes, uint64_t evicted_pending, uint64_t evicted_lambda);  /* returns 1 when readiness changed */
/* The durable store's figures (store_lmdb_info), read when /metrics is asked for; rendered once set. */
struct api_metrics_disk {
    uint64_t file_bytes, used_bytes, max_bytes;  /* the data file, its pages in use, its bound */
    uint64_t keys, findings;                     /* tracked keys (expired ones not yet swept too), findings */
    uint64_t swept_keys, swept_findings;         /* removed by expiry since the start */
};
void api_metrics_store_disk(const struct api_metrics_disk *d);
void api_metrics_inflight(int delta);
long api_metrics_inflight_now(void);

struct snk_run;

/* Renders every metric, those of the sinks' delivery threads (run, NULL when there are none)
 * too; the caller frees the text. NULL when out of memory. */
char *api_metrics_render(struct snk_run *run, size_t *len);

#endif
