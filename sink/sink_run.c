/* sink_run.c — see sink_run.h. One thread per sink:
 *   every SNK_RUN_TRIM_MS: out_trim (the outbox's bound) and out_stats (the metrics' view);
 *   out_read up to SNK_RUN_BATCH events (the thread's own held ones first, then claimed, redone, new);
 *   each in order: below the sink's minimum severity -> done; too old -> dead letter; else deliver:
 *   2xx -> done, refused for good -> dead letter, retryable -> stop the batch and wait the backoff
 *   (the rest stay held by this consumer and come back first, in order);
 *   the batch's done events are acknowledged together at its end.
 * The store is the only queue: nothing is kept in this process that a crash could lose. */
#include "sink_run.h"

#include <errno.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cw.h"
#include "export.h"
#include "render.h"
#include "sink.h"

struct run_sink {
    struct snk_run *run;
    struct snk_conf conf;
    struct store *st;           /* this thread's own handle */
    pthread_t thread;
    int started;
    pthread_mutex_t mu;         /* guards stats */
    struct snk_run_stats stats;
    unsigned attempt;           /* consecutive retryable failures */
    int64_t retry_at_ms, trim_at_ms;  /* monotonic: a wall clock set back must not stall the sink */
    size_t batch;               /* events per out_read (SNK_RUN_BATCH, fewer for a slow sink) */
    int store_down;             /* the last outbox call failed (logged once per outage) */
};

struct snk_run {
    char consumer[STORE_CONSUMER_MAX];
    snk_run_log_fn log;
    int64_t backoff_max_ms;     /* below the claim time: a live instance keeps what it holds */
    pthread_mutex_t mu;         /* guards stop and kicks, with cv */
    pthread_cond_t cv;
    int stop;
    uint64_t kicks;             /* snk_run_kick calls: an idle sink looks at once */
    size_t n;
    struct run_sink sink[SNK_MAX];
};

static const double LAT_BOUNDS[SNK_RUN_LAT_N] = { SNK_RUN_LAT_BOUNDS };

/* ---- the formats of webhook bodies (service/export.c) ---- */

static char *as_format(const char *doc, int fmt)
{
    char *out = NULL;
    return exp_convert(doc, fmt, NULL, &out) == 0 ? out : NULL;
}

static char *as_ocsf(const char *doc)
{
    return as_format(doc, EXP_OCSF);
}

static char *as_asff(const char *doc)
{
    return as_format(doc, EXP_ASFF);
}

/* ---- waiting, interruptibly ---- */

/* Sleeps until now + ms or stop, or (seen not NULL: an idle sink's wait) a kick after *seen, the
 * count when its last look began, so that a kick during that look is not missed. A backoff passes
 * NULL: no kick shortens it. Returns 1 when stopping. */
static int wait_for(struct snk_run *r, int64_t ms, const uint64_t *seen)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);  /* the condition variable's clock (snk_run_start) */
    int64_t ns = (int64_t)ts.tv_nsec + (ms > 0 ? ms : 0) * 1000000;
    ts.tv_sec += (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&r->mu);
    while (!r->stop && (!seen || r->kicks == *seen) && pthread_cond_timedwait(&r->cv, &r->mu, &ts) == 0)
        ;
    int stop = r->stop;
    pthread_mutex_unlock(&r->mu);
    return stop;
}

static int wait_ms(struct snk_run *r, int64_t ms)
{
    return wait_for(r, ms, NULL);
}

static uint64_t kicks_now(struct snk_run *r)
{
    pthread_mutex_lock(&r->mu);
    uint64_t k = r->kicks;
    pthread_mutex_unlock(&r->mu);
    return k;
}

void snk_run_kick(struct snk_run *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->kicks++;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static int stopping(struct snk_run *r)
{
    pthread_mutex_lock(&r->mu);
    int stop = r->stop;
    pthread_mutex_unlock(&r->mu);
    return stop;
}

/* ---- one sink's bookkeeping ---- */

static void store_failed(struct run_sink *s, const char *what)
{
    pthread_mutex_lock(&s->mu);
    s->stats.store_errors++;
    pthread_mutex_unlock(&s->mu);
    if (!s->store_down && s->run->log)
        s->run->log("warn", "outbox unavailable; events wait in the store", s->conf.name, what);
    s->store_down = 1;
}

static void store_ok(struct run_sink *s)
{
    if (s->store_down && s->run->log)
        s->run->log("info", "outbox available again", s->conf.name, NULL);
    s->store_down = 0;
}

/* The bound and the metrics' view, every SNK_RUN_TRIM_MS. */
static void housekeeping(struct run_sink *s, int64_t now)
{
    int64_t mono = cw_mono_ms();
    if (mono < s->trim_at_ms)
        return;
    s->trim_at_ms = mono + SNK_RUN_TRIM_MS;
    size_t full = 0;
    struct store_out_stats os;
    if (store_out_trim(s->st, s->conf.name, now, &full) || store_out_stats(s->st, s->conf.name, now, &os)) {
        store_failed(s, "trim/stats");
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->stats.dead_lettered_full += full;
    s->stats.out = os;
    s->stats.out_known = 1;
    pthread_mutex_unlock(&s->mu);
    if (full && s->run->log) {
        char d[64];
        snprintf(d, sizeof d, "%zu events dead-lettered (outbox full)", full);
        s->run->log("warn", "outbox bound reached: the oldest undelivered events were dead-lettered", s->conf.name, d);
    }
}

static void count_delivered(struct run_sink *s, const struct store_event *ev, int64_t now, long status)
{
    double lat = ev->queued_ms > 0 && now > ev->queued_ms ? (double)(now - ev->queued_ms) / 1000.0 : 0.0;
    pthread_mutex_lock(&s->mu);
    s->stats.delivered++;
    s->stats.last_status = status;
    s->stats.lat_count++;
    s->stats.lat_sum_s += lat;
    for (size_t i = 0; i < SNK_RUN_LAT_N; i++)
        if (lat <= LAT_BOUNDS[i])
            s->stats.lat_bucket[i]++;
    pthread_mutex_unlock(&s->mu);
}

/* Gives ev up with a reason; the store acknowledges it in the same step. */
static int dead_letter(struct run_sink *s, const struct store_event *ev, const char *reason, int64_t now)
{
    if (store_out_dead(s->st, s->conf.name, ev, reason, now)) {
        store_failed(s, "dead letter");
        return CW_EUNAVAIL;
    }
    pthread_mutex_lock(&s->mu);
    s->stats.dead_lettered++;
    pthread_mutex_unlock(&s->mu);
    if (s->run->log)
        s->run->log("warn", "event dead-lettered", s->conf.name, reason);
    return 0;
}

/* Events done with (delivered, or below the sink's minimum severity) wait here until the end of their
 * batch and are acknowledged in one call: one Redis round trip per batch instead of one per event.
 * If that call fails (the store is down), this instance gets them back first on its next read and
 * sends them again; an instance that dies in between leaves them to another after the claim time.
 * Either way the repeats carry the same idempotency keys: at least once, no loss. (A pipeline that
 * fails part way may acknowledge some without their being counted: the counters may undercount.) */
struct done {
    const char *entry[SNK_RUN_BATCH];
    const struct store_event *ev[SNK_RUN_BATCH];
    int64_t at_ms[SNK_RUN_BATCH];   /* delivered at (0: filtered) */
    long status[SNK_RUN_BATCH];
    size_t n;
};

static void done_add(struct done *d, const struct store_event *ev, int64_t at_ms, long status)
{
    d->entry[d->n] = ev->entry;
    d->ev[d->n] = ev;
    d->at_ms[d->n] = at_ms;
    d->status[d->n++] = status;
}

/* Acknowledges d's events and counts them; CW_EUNAVAIL when the store failed (they come back). */
static int ack_done(struct run_sink *s, struct done *d)
{
    if (!d->n)
        return 0;
    if (store_out_ack(s->st, s->conf.name, d->entry, d->n)) {
        store_failed(s, "ack");
        d->n = 0;
        return CW_EUNAVAIL;
    }
    for (size_t i = 0; i < d->n; i++) {
        if (d->at_ms[i]) {
            count_delivered(s, d->ev[i], d->at_ms[i], d->status[i]);
        } else {
            pthread_mutex_lock(&s->mu);
            s->stats.filtered++;
            pthread_mutex_unlock(&s->mu);
        }
    }
    d->n = 0;
    return 0;
}

/* ---- one event ---- */

enum { EV_DONE = 0, EV_RETRY = 1, EV_STORE = 2 };

/* A retryable failure: when to try again. */
static void schedule_retry(struct run_sink *s, const struct snk_result *res, int64_t now)
{
    s->attempt++;
    int64_t wait = snk_backoff_ms(s->attempt, res, snk_rand_os, NULL);
    if (wait > s->run->backoff_max_ms)
        wait = s->run->backoff_max_ms;
    (void)now;
    s->retry_at_ms = cw_mono_ms() + wait;
    pthread_mutex_lock(&s->mu);
    s->stats.failed_attempts++;
    s->stats.last_status = res->status;
    pthread_mutex_unlock(&s->mu);
}

static void refusal_reason(const struct snk_result *res, char *out, size_t size)
{
    if (res->status > 0)
        snprintf(out, size, "refused: HTTP %ld%s%s", res->status, res->error[0] ? ": " : "", res->error);
    else
        snprintf(out, size, "refused: %s", res->error[0] ? res->error : "the body could not be built");
}

static int deliver_one(struct run_sink *s, struct snk *sk, const struct store_event *ev, struct done *d)
{
    int64_t now = cw_now_ms();
    char reason[SNK_RUN_REASON_MAX];
    char *doc = rnd_finding(&ev->finding);
    if (!doc)
        return dead_letter(s, ev, "the stored finding cannot be rendered", now) ? EV_STORE : EV_DONE;
    int rc = EV_DONE;
    if (!snk_wants(&s->conf, doc)) {
        done_add(d, ev, 0, 0);
    } else if (snk_give_up(ev->retried_ms > ev->queued_ms ? ev->retried_ms : ev->queued_ms, now, s->conf.give_up_s)) {
        snprintf(reason, sizeof reason, "undelivered for over %lld s (last HTTP status %ld)",
                 (long long)s->conf.give_up_s, s->stats.last_status);
        rc = dead_letter(s, ev, reason, now) ? EV_STORE : EV_DONE;
    } else {
        struct snk_result res;
        snk_deliver(sk, doc, ev->revision, ev->kind, now, &res);
        now = cw_now_ms();
        if (res.verdict == SNK_DELIVERED) {
            done_add(d, ev, now, res.status);
        } else if (res.verdict == SNK_PERMANENT) {
            pthread_mutex_lock(&s->mu);
            s->stats.last_status = res.status;
            pthread_mutex_unlock(&s->mu);
            refusal_reason(&res, reason, sizeof reason);
            rc = dead_letter(s, ev, reason, now) ? EV_STORE : EV_DONE;
        } else {
            schedule_retry(s, &res, now);
            rc = EV_RETRY;
        }
    }
    free(doc);
    if (rc == EV_DONE)
        s->attempt = 0;
    return rc;
}

/* ---- the thread ---- */

/* One round: read a batch and work through it. Returns the wait before the next round, ms; *idle
 * is set when the outbox had nothing (a kick may end that wait, never a backoff). */
static int64_t round_once(struct run_sink *s, struct snk *sk, int *idle)
{
    *idle = 0;
    struct store_event evs[SNK_RUN_BATCH];
    size_t n = 0;
    int64_t now = cw_now_ms(), mono = cw_mono_ms();
    housekeeping(s, now);
    if (mono < s->retry_at_ms)
        return s->retry_at_ms - mono;
    /* After a failure the outbox may have gone (a Redis without persistence restarted, a flush):
     * make the sink's group again before reading; where it exists this changes nothing. */
    const char *name = s->conf.name;
    if (s->store_down && store_out_open(s->st, &name, 1)) {
        store_failed(s, "open");
        return SNK_RUN_STORE_BACKOFF_MS;
    }
    if (store_out_read(s->st, s->conf.name, s->run->consumer, s->batch, now, evs, &n)) {
        store_failed(s, "read");
        return SNK_RUN_STORE_BACKOFF_MS;
    }
    store_ok(s);
    int64_t wait = n ? 0 : SNK_RUN_POLL_MS;
    *idle = n == 0;
    struct done d = { .n = 0 };
    for (size_t i = 0; i < n && wait == 0 && !stopping(s->run); i++) {
        int rc = deliver_one(s, sk, &evs[i], &d);
        if (rc == EV_RETRY)
            wait = s->retry_at_ms - cw_mono_ms();
        else if (rc == EV_STORE)
            wait = SNK_RUN_STORE_BACKOFF_MS;
    }
    /* what was delivered is acknowledged even when the batch stopped early; what was not worked on
     * stays held and comes back first */
    if (ack_done(s, &d) && wait == 0)
        wait = SNK_RUN_STORE_BACKOFF_MS;
    for (size_t i = 0; i < n; i++)
        store_event_free(&evs[i]);
    return wait;
}

/* The thread's name (ps, top, /proc: "cw:<name>", cut to 15 bytes) and its priority: below
 * the request threads by SNK_RUN_NICE, so that when CPU is short, ingest (whose senders wait with
 * a deadline) goes first and delivery (which has the claim time to spare) waits; both are best
 * effort, and the outbox depth and oldest-age metrics show a delivery that falls behind. */
static void thread_identity(const struct run_sink *s)
{
    char name[16];
    snprintf(name, sizeof name, "cw:%s", s->conf.name);
    pthread_setname_np(pthread_self(), name);
    /* relative to the thread's own value, inherited from the thread that started it: an instance
     * started under `nice -n 15` delivers at 19, never above its request threads */
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, (id_t)gettid());
    int want = cur + SNK_RUN_NICE > 19 ? 19 : cur + SNK_RUN_NICE;
    if ((errno != 0 || setpriority(PRIO_PROCESS, (id_t)gettid(), want) != 0) && s->run->log)
        s->run->log("warn", "cannot lower the delivery thread's priority; it competes with ingest", s->conf.name,
                    NULL);
}

static void *sink_thread(void *arg)
{
    struct run_sink *s = arg;
    thread_identity(s);
    struct snk_formatters fmt = { .ocsf = as_ocsf, .asff = as_asff };
    struct snk *sk = NULL;
    if (snk_open(&s->conf, &fmt, &sk)) {
        if (s->run->log)
            s->run->log("error", "sink cannot start: out of memory", s->conf.name, NULL);
        return NULL;
    }
    /* The sink's group, until the store answers (Redis may be down at start); the same call at
     * start made it already in the usual case, and making it again changes nothing. */
    const char *name = s->conf.name;
    while (store_out_open(s->st, &name, 1)) {
        store_failed(s, "open");
        if (wait_ms(s->run, SNK_RUN_STORE_BACKOFF_MS))
            goto out;
    }
    store_ok(s);
    while (!stopping(s->run)) {
        int idle;
        uint64_t seen = kicks_now(s->run);
        int64_t wait = round_once(s, sk, &idle);
        if (wait > 0 && wait_for(s->run, wait, idle ? &seen : NULL))
            break;
    }
out:
    snk_close(sk);
    return NULL;
}

/* ---- start and stop ---- */

static void run_free(struct snk_run *r)
{
    for (size_t i = 0; i < r->n; i++) {
        store_free(r->sink[i].st);
        pthread_mutex_destroy(&r->sink[i].mu);
    }
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static int sink_init(struct snk_run *r, size_t i, const struct snk_conf *c, struct store *store, int64_t claim_ms)
{
    struct run_sink *s = &r->sink[i];
    s->run = r;
    s->conf = *c;
    int64_t fit = c->timeout_ms > 0 ? claim_ms / (2 * c->timeout_ms) : SNK_RUN_BATCH;
    s->batch = fit < 1 ? 1 : fit > SNK_RUN_BATCH ? SNK_RUN_BATCH : (size_t)fit;
    s->stats.last_status = -1;
    pthread_mutex_init(&s->mu, NULL);
    s->st = store_clone(store);
    return s->st ? 0 : CW_ENOMEM;
}

int snk_run_start(const struct snk_confs *confs, struct store *store, const char *consumer, snk_run_log_fn log,
                  struct snk_run **out, char *msg, size_t msg_size)
{
    *out = NULL;
    if (!confs->n || confs->n > SNK_MAX || !store_consumer_name_valid(consumer)) {
        snprintf(msg, msg_size, "no sinks, or an invalid consumer name");
        return CW_EINVAL;
    }
    struct snk_run *r = calloc(1, sizeof *r);
    if (!r)
        goto nomem;
    snprintf(r->consumer, sizeof r->consumer, "%s", consumer);
    r->log = log;
    struct store_out_limits lim;
    store_out_get_limits(&lim);
    r->backoff_max_ms = lim.claim_ms / 2 < SNK_BACKOFF_MAX_MS ? lim.claim_ms / 2 : SNK_BACKOFF_MAX_MS;
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);  /* waits survive the wall clock being set */
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    for (; r->n < confs->n; r->n++)
        if (sink_init(r, r->n, &confs->sink[r->n], store, lim.claim_ms)) {
            r->n++;
            goto nomem;
        }
    for (size_t i = 0; i < r->n; i++) {
        if (pthread_create(&r->sink[i].thread, NULL, sink_thread, &r->sink[i]) != 0) {
            snk_run_stop(r);
            snprintf(msg, msg_size, "cannot start a delivery thread");
            return CW_ENOMEM;
        }
        r->sink[i].started = 1;
    }
    *out = r;
    return 0;
nomem:
    if (r)
        run_free(r);
    snprintf(msg, msg_size, "out of memory starting the delivery threads");
    return CW_ENOMEM;
}

void snk_run_stop(struct snk_run *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; i < r->n; i++)
        if (r->sink[i].started)
            pthread_join(r->sink[i].thread, NULL);
    run_free(r);
}

size_t snk_run_count(const struct snk_run *r)
{
    return r ? r->n : 0;
}

const struct snk_conf *snk_run_conf(const struct snk_run *r, size_t i)
{
    return r && i < r->n ? &r->sink[i].conf : NULL;
}

void snk_run_stats(struct snk_run *r, size_t i, struct snk_run_stats *out)
{
    memset(out, 0, sizeof *out);
    out->last_status = -1;
    if (!r || i >= r->n)
        return;
    pthread_mutex_lock(&r->sink[i].mu);
    *out = r->sink[i].stats;
    pthread_mutex_unlock(&r->sink[i].mu);
}
