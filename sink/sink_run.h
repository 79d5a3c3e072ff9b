/* sink_run.h — the delivery threads: one per sink, each with its own store handle and HTTP handle,
 * taking the sink's events from the store's outbox (store.h, "Finding events") and posting them
 * with snk_deliver. At least once: an event is acknowledged only after the receiver's 2xx (or
 * dead-lettered with the reason); one held by an instance that died goes to another consumer after
 * the store's claim time. Per sink, events go out in the order the outbox hands them; a retryable
 * failure stops the sink (its held events come back first) until the backoff has passed, so a
 * receiver that is down is not hammered and later events do not overtake earlier ones. */
#ifndef CW_SINK_RUN_H
#define CW_SINK_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "sink_config.h"
#include "store.h"

/* Events taken per out_read, at most: a sink takes fewer when its timeout is long, so that a whole
 * batch of slow deliveries still ends within half the claim time (claim / (2 x timeout), at least 1)
 * and no live instance's event is claimed by another while it waits its turn. */
#define SNK_RUN_BATCH 16
#define SNK_RUN_POLL_MS 200           /* an idle sink looks for new events this often (at once when kicked) */
#define SNK_RUN_TRIM_MS 5000          /* out_trim and out_stats this often per sink */
#define SNK_RUN_STORE_BACKOFF_MS 1000 /* after a store failure (Redis down: the events wait there) */
/* Delivery threads run this much nicer than the process (Linux: per thread; at most 19): a CPU-bound
 * instance serves ingest first, deliveries take the CPU it leaves (sink_run.c, thread_identity). */
#define SNK_RUN_NICE 10
#define SNK_RUN_REASON_MAX STORE_REASON_MAX  /* a dead letter's reason, as the store keeps it */
/* Delivery latency (event queued -> receiver's 2xx) histogram bounds, seconds; +Inf is implied. */
#define SNK_RUN_LAT_BOUNDS 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300
#define SNK_RUN_LAT_N 11

/* One sink's counters since this process started, and the outbox as last seen. */
struct snk_run_stats {
    uint64_t delivered;          /* acknowledged after a 2xx */
    uint64_t failed_attempts;    /* deliveries that will be retried (transport, 408, 429, 5xx) */
    uint64_t dead_lettered;      /* given up: permanent refusal, too old, unreadable */
    uint64_t dead_lettered_full; /* of the outbox's oldest, at its bound (out_trim) */
    uint64_t filtered;           /* below the sink's minimum severity: acknowledged, not sent */
    uint64_t store_errors;       /* outbox calls that failed */
    uint64_t lat_count, lat_bucket[SNK_RUN_LAT_N];  /* cumulative counts per bound */
    double lat_sum_s;
    struct store_out_stats out;  /* the last out_stats (every SNK_RUN_TRIM_MS) */
    int out_known;               /* out holds a reading */
    long last_status;            /* the last delivery's HTTP status, 0 transport failure, -1 none yet */
};

/* The caller's log, called from the delivery threads (level "info", "warn", "error"). */
typedef void (*snk_run_log_fn)(const char *level, const char *msg, const char *sink, const char *detail);

struct snk_run;

/* Starts one thread per sink of confs, each on its own clone of store (the caller keeps store alive
 * until snk_run_stop), as consumer `consumer` (unique per process: host and pid). out_open must have
 * been called. Returns 0, CW_ENOMEM or CW_EINVAL (no sinks), with msg saying why. */
int snk_run_start(const struct snk_confs *confs, struct store *store, const char *consumer, snk_run_log_fn log,
                  struct snk_run **out, char *msg, size_t msg_size);

/* Stops the threads and waits for them: a delivery in flight finishes (at most its sink's timeout);
 * events not acknowledged stay held in the store and are handed out again. NULL is a no-op. */
void snk_run_stop(struct snk_run *r);

/* New events were queued here (an ingest that raised or grew a finding, a status change, a dead
 * letter sent back): idle delivery threads look at once instead of at their next poll. Events queued
 * by other instances are found by the poll (SNK_RUN_POLL_MS). NULL is a no-op; cheap (a broadcast). */
void snk_run_kick(struct snk_run *r);

size_t snk_run_count(const struct snk_run *r);
const struct snk_conf *snk_run_conf(const struct snk_run *r, size_t i);
/* A snapshot of sink i's counters (taken under its lock). */
void snk_run_stats(struct snk_run *r, size_t i, struct snk_run_stats *out);

#endif
