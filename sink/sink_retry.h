/* sink_retry.h — what to do after an attempt: delivered, retry later (when), or never. Pure:
 * time and randomness come from the caller, so the policy is tested without waiting. */
#ifndef CW_SINK_RETRY_H
#define CW_SINK_RETRY_H

#include <stdint.h>

#include "sink_http.h"

#define SNK_BACKOFF_BASE_MS 1000    /* the first retry waits up to a second */
/* The longest wait between attempts. Below the store outbox's 60 s claim time, so the instance
 * that holds an event retries it before another instance may take it over. */
#define SNK_BACKOFF_MAX_MS 30000
#define SNK_RETRY_AFTER_MAX_S 1000000000LL  /* a larger Retry-After is read as this (then capped) */

enum snk_verdict {
    SNK_DELIVERED = 0,  /* 2xx */
    SNK_RETRY = 1,      /* transport failure or timeout, 408, 429, 5xx */
    SNK_PERMANENT = 2   /* any other status: 3xx (redirects are not followed), 4xx; dead-letter now */
};

enum snk_verdict snk_classify(const struct snk_result *r);

/* A uniform 64-bit random number. */
typedef uint64_t (*snk_rand_fn)(void *ctx);
uint64_t snk_rand_os(void *ctx);    /* getrandom(2); the clock when that fails */

/* The wait before retry number `attempt` (1 = after the first failure): full jitter, uniform in
 * [0, min(SNK_BACKOFF_MAX_MS, SNK_BACKOFF_BASE_MS * 2^(attempt-1))]. After a 429 or 503 with
 * Retry-After (r may be NULL), at least that, still at most SNK_BACKOFF_MAX_MS. */
int64_t snk_backoff_ms(unsigned attempt, const struct snk_result *r, snk_rand_fn rnd, void *ctx);

/* 1 when an event queued at queued_ms is too old at now_ms to try again (give_up_s: the sink's
 * GIVE_UP_SECONDS, SNK_GIVE_UP_S by default): dead-letter it. */
int snk_give_up(int64_t queued_ms, int64_t now_ms, int64_t give_up_s);

/* A Retry-After value: delta seconds, or an HTTP date (IMF-fixdate, "Sun, 06 Nov 1994 08:49:37
 * GMT") read against now_ms (a date past: 0). 0 with *secs set, or CW_EINVAL. */
int snk_retry_after_parse(const char *value, int64_t now_ms, int64_t *secs);

#endif
