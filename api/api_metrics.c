/* api_metrics.c — see api_metrics.h. */
#include "api_metrics.h"

#include "cw.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_conn.h"
#include "api_firehose.h"
#include "api_tls.h"
#include "sink_run.h"

static const char *const METHODS[] = {"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS", "OTHER"};
#define N_METHODS (sizeof METHODS / sizeof METHODS[0])
static const unsigned STATUSES[] = {200, 201, 204, 400, 401, 403, 404, 405, 408, 411,
                                    413, 414, 415, 429, 431, 500, 501, 503, 0 /* other */};
#define N_STATUSES (sizeof STATUSES / sizeof STATUSES[0])
/* Bucket bounds in seconds; 4.5 s marks the sender's 5 s deadline minus a margin. */
static const double BUCKETS[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 4.5, 5, 10};
#define N_BUCKETS (sizeof BUCKETS / sizeof BUCKETS[0])

struct hist {
    atomic_uint_fast64_t bucket[N_BUCKETS + 1]; /* not cumulative; the last is +Inf */
    atomic_uint_fast64_t sum_us;
    atomic_uint_fast64_t count;
};

static atomic_uint_fast64_t requests[API_P_COUNT][N_METHODS][N_STATUSES];
static struct hist req_hist[API_P_COUNT];
static struct hist store_hist;
static atomic_uint_fast64_t rec_ingested, rec_ignored, rec_duplicate, rec_skipped, find_created, find_updated, store_errors,
    deadline_exceeded, ingest_shed;
static atomic_int ready_gauge;
static atomic_size_t mem_bytes, mem_max_bytes;
static atomic_uint_fast64_t mem_evicted[2], mem_evicted_logged;
/* the durable store's figures, in struct api_metrics_disk's order; disk_set once it reported */
#define DISK_FIELDS 7
static atomic_uint_fast64_t disk[DISK_FIELDS];
static atomic_int disk_set;
static atomic_llong mem_logged_at_s;
static atomic_long inflight_gauge;
/* Firehose: answers by outcome (FH_OUTCOMES), records, log events, control messages, rejections */
static const char *const FH_OUTCOMES[] = {"ok", "invalid", "unauthorized", "too_large", "unavailable", "other"};
#define N_FH_OUTCOMES (sizeof FH_OUTCOMES / sizeof FH_OUTCOMES[0])
static atomic_uint_fast64_t fh_requests[N_FH_OUTCOMES], fh_records, fh_log_events, fh_control,
    fh_rejected[API_FH_R_COUNT];

static void hist_observe(struct hist *h, double s)
{
    size_t i = 0;
    while (i < N_BUCKETS && s > BUCKETS[i])
        i++;
    atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint_fast64_t)(s > 0 ? s * 1e6 : 0), memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void api_metrics_request(enum api_path route, const char *method, unsigned status, double seconds)
{
    if ((unsigned)route >= API_P_COUNT)
        route = API_P_NONE;
    size_t m = N_METHODS - 1, st = N_STATUSES - 1;
    for (size_t i = 0; i + 1 < N_METHODS; i++)
        if (method && strcmp(method, METHODS[i]) == 0)
            m = i;
    for (size_t i = 0; i + 1 < N_STATUSES; i++)
        if (status == STATUSES[i])
            st = i;
    atomic_fetch_add_explicit(&requests[route][m][st], 1, memory_order_relaxed);
    hist_observe(&req_hist[route], seconds);
}

void api_metrics_records(size_t accepted, size_t ignored, size_t duplicates, size_t skipped, size_t created,
                         size_t updated)
{
    atomic_fetch_add_explicit(&rec_ingested, accepted, memory_order_relaxed);
    atomic_fetch_add_explicit(&rec_ignored, ignored, memory_order_relaxed);
    atomic_fetch_add_explicit(&rec_duplicate, duplicates, memory_order_relaxed);
    atomic_fetch_add_explicit(&rec_skipped, skipped, memory_order_relaxed);
    atomic_fetch_add_explicit(&find_created, created, memory_order_relaxed);
    atomic_fetch_add_explicit(&find_updated, updated, memory_order_relaxed);
}

void api_metrics_store(double seconds) { hist_observe(&store_hist, seconds); }

void api_metrics_fh_request(unsigned status)
{
    size_t o = status == 200 ? 0 : status == 400 ? 1 : status == 401 || status == 403 ? 2 : status == 413 ? 3
             : status == 503 ? 4 : 5;
    atomic_fetch_add_explicit(&fh_requests[o], 1, memory_order_relaxed);
}

void api_metrics_fh_records(size_t records, size_t log_events, size_t control)
{
    atomic_fetch_add_explicit(&fh_records, records, memory_order_relaxed);
    atomic_fetch_add_explicit(&fh_log_events, log_events, memory_order_relaxed);
    atomic_fetch_add_explicit(&fh_control, control, memory_order_relaxed);
}

void api_metrics_fh_rejected(const size_t *by_reason, size_t n)
{
    for (size_t i = 0; i < n && i < API_FH_R_COUNT; i++)
        if (by_reason[i])
            atomic_fetch_add_explicit(&fh_rejected[i], by_reason[i], memory_order_relaxed);
}
void api_metrics_store_error(void) { atomic_fetch_add_explicit(&store_errors, 1, memory_order_relaxed); }
void api_metrics_deadline(void) { atomic_fetch_add_explicit(&deadline_exceeded, 1, memory_order_relaxed); }
void api_metrics_shed(void) { atomic_fetch_add_explicit(&ingest_shed, 1, memory_order_relaxed); }
int api_metrics_store_mem(size_t bytes, size_t max_bytes, uint64_t evicted_pending, uint64_t evicted_lambda)
{
    atomic_store(&mem_bytes, bytes);
    atomic_store(&mem_max_bytes, max_bytes);
    atomic_store(&mem_evicted[0], evicted_pending);
    atomic_store(&mem_evicted[1], evicted_lambda);
    uint64_t total = evicted_pending + evicted_lambda, seen = atomic_load(&mem_evicted_logged);
    long long now = (long long)(cw_now_ms() / 1000), last = atomic_load(&mem_logged_at_s);
    if (total == seen || now - last < API_METRICS_EVICT_LOG_S)
        return 0;
    /* one thread wins the right to log this interval */
    if (!atomic_compare_exchange_strong(&mem_logged_at_s, &last, now))
        return 0;
    atomic_store(&mem_evicted_logged, total);
    return 1;
}

void api_metrics_store_disk(const struct api_metrics_disk *d)
{
    const uint64_t v[DISK_FIELDS] = {d->file_bytes, d->used_bytes, d->max_bytes, d->keys, d->findings,
                                     d->swept_keys, d->swept_findings};
    for (size_t i = 0; i < DISK_FIELDS; i++)
        atomic_store(&disk[i], v[i]);
    atomic_store(&disk_set, 1);
}

int api_metrics_ready(int ready) { return atomic_exchange(&ready_gauge, ready ? 1 : 0) != (ready ? 1 : 0); }
void api_metrics_inflight(int delta) { atomic_fetch_add(&inflight_gauge, delta); }
long api_metrics_inflight_now(void) { return atomic_load(&inflight_gauge); }

/* The /metrics text: a bounded buffer whose appends fail, and stay failed, past its bound. */
struct text {
    struct cw_buf b;
    int failed;
};

#define PUT_LINE_MAX 1024  /* an append formatted on the stack; a longer one (rare) on the heap */

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    char line[PUT_LINE_MAX], *s = line;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof line) {
        s = malloc((size_t)n + 1);
        if (s) {
            va_start(ap, fmt);
            vsnprintf(s, (size_t)n + 1, fmt, ap);
            va_end(ap);
        }
    }
    if (n < 0 || !s || cw_buf_append(&t->b, s, (size_t)n) != CW_OK)
        t->failed = 1;
    if (s != line)
        free(s);
}

static void put_hist(struct text *t, const char *name, const char *labels, const struct hist *h)
{
    uint_fast64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i <= N_BUCKETS; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        if (i < N_BUCKETS)
            put(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, BUCKETS[i], (unsigned long long)cum);
        else
            put(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
    }
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    put(t, "%s_sum%s%s%s %.6f\n", name, open, labels, close,
        (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6);
    /* _count equals the +Inf bucket as read above, so a scrape is self-consistent. */
    put(t, "%s_count%s%s%s %llu\n", name, open, labels, close, (unsigned long long)cum);
}

static void put_counter(struct text *t, const char *name, const char *help, atomic_uint_fast64_t *v)
{
    put(t, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
        (unsigned long long)atomic_load_explicit(v, memory_order_relaxed));
}

static void put_requests(struct text *t)
{
    put(t, "# HELP credwatch_http_requests_total HTTP requests answered, by route template, method and status.\n"
           "# TYPE credwatch_http_requests_total counter\n");
    for (size_t r = 0; r < API_P_COUNT; r++)
        for (size_t m = 0; m < N_METHODS; m++)
            for (size_t s = 0; s < N_STATUSES; s++) {
                unsigned long long v = atomic_load_explicit(&requests[r][m][s], memory_order_relaxed);
                if (!v)
                    continue;
                if (STATUSES[s])
                    put(t, "credwatch_http_requests_total{route=\"%s\",method=\"%s\",status=\"%u\"} %llu\n",
                        api_path_template((enum api_path)r), METHODS[m], STATUSES[s], v);
                else
                    put(t, "credwatch_http_requests_total{route=\"%s\",method=\"%s\",status=\"other\"} %llu\n",
                        api_path_template((enum api_path)r), METHODS[m], v);
            }
    put(t, "# HELP credwatch_http_request_duration_seconds Time from request headers to the response, by route "
           "template.\n# TYPE credwatch_http_request_duration_seconds histogram\n");
    for (size_t r = 0; r < API_P_COUNT; r++) {
        char labels[96];
        snprintf(labels, sizeof labels, "route=\"%s\"", api_path_template((enum api_path)r));
        put_hist(t, "credwatch_http_request_duration_seconds", labels, &req_hist[r]);
    }
}

static void put_ingest(struct text *t)
{
    put_counter(t, "credwatch_records_ingested_total", "Records applied to a key's state for the first time.",
                &rec_ingested);
    put_counter(t, "credwatch_records_ignored_total",
                "Valid records that are not a use or an issuance of a temporary key (AKIA keys, anonymous "
                "S3 data events, network activity).", &rec_ignored);
    put_counter(t, "credwatch_records_duplicate_total", "Records already applied before (retried deliveries).",
                &rec_duplicate);
    put_counter(t, "credwatch_records_skipped_total", "Malformed records skipped by ingest.", &rec_skipped);
    put_counter(t, "credwatch_findings_created_total", "Findings created by ingest.", &find_created);
    put_counter(t, "credwatch_findings_updated_total", "Existing findings updated by ingest (new evidence).",
                &find_updated);
    put_counter(t, "credwatch_store_errors_total", "Store operations that failed (store unavailable or contended).",
                &store_errors);
    put_counter(t, "credwatch_ingest_deadline_exceeded_total",
                "Ingest requests whose engine work took longer than 4.5 s (the senders' deadline is 5 s); "
                "answered anyway.", &deadline_exceeded);
    put_counter(t, "credwatch_ingest_shed_total",
                "Ingest requests refused with 503 and Retry-After by admission control (CREDWATCH_MAX_INFLIGHT_INGEST, "
                "CREDWATCH_MAX_INFLIGHT_INGEST_BYTES).", &ingest_shed);
    put(t, "# HELP credwatch_store_duration_seconds Wall time of store work per request: the whole eng_ingest "
           "call for ingest (decode included: an approximation), single store calls for reads.\n"
           "# TYPE credwatch_store_duration_seconds histogram\n");
    put_hist(t, "credwatch_store_duration_seconds", "", &store_hist);
}

static void put_firehose(struct text *t)
{
    put(t, "# HELP credwatch_firehose_requests_total POST /v1/ingest/firehose answers by outcome: ok (200), "
           "invalid (400: no Firehose envelope), unauthorized (401, 403), too_large (413), unavailable (503: "
           "Firehose retries), other.\n# TYPE credwatch_firehose_requests_total counter\n");
    for (size_t i = 0; i < N_FH_OUTCOMES; i++)
        put(t, "credwatch_firehose_requests_total{outcome=\"%s\"} %llu\n", FH_OUTCOMES[i],
            (unsigned long long)atomic_load_explicit(&fh_requests[i], memory_order_relaxed));
    put_counter(t, "credwatch_firehose_records_total", "Firehose records received in valid envelopes.", &fh_records);
    put_counter(t, "credwatch_firehose_log_events_total",
                "CloudWatch Logs log events read from subscription messages (DATA_MESSAGE).", &fh_log_events);
    put_counter(t, "credwatch_firehose_control_messages_total",
                "CloudWatch Logs CONTROL_MESSAGE records: accepted and dropped.", &fh_control);
    put(t, "# HELP credwatch_firehose_records_rejected_total Firehose records (or CloudWatch Logs log events) that "
           "can never be applied, dropped while the rest of the request is applied (200), by reason.\n"
           "# TYPE credwatch_firehose_records_rejected_total counter\n");
    for (size_t i = 0; i < API_FH_R_COUNT; i++)
        put(t, "credwatch_firehose_records_rejected_total{reason=\"%s\"} %llu\n",
            api_fh_reason_name((enum api_fh_reason)i),
            (unsigned long long)atomic_load_explicit(&fh_rejected[i], memory_order_relaxed));
}

static void put_state(struct text *t)
{
    put(t, "# HELP credwatch_ready 1 when the instance is ready to serve (store reachable, not draining).\n"
           "# TYPE credwatch_ready gauge\ncredwatch_ready %d\n", atomic_load(&ready_gauge));
    put(t, "# HELP credwatch_inflight_requests Requests being handled now.\n"
           "# TYPE credwatch_inflight_requests gauge\ncredwatch_inflight_requests %ld\n",
        atomic_load(&inflight_gauge));
    if (atomic_load(&mem_max_bytes))  /* only the embedded store reports its size */
        put(t, "# HELP credwatch_store_bytes Memory the embedded store counts (keys, dedup sets, findings).\n"
               "# TYPE credwatch_store_bytes gauge\ncredwatch_store_bytes %zu\n"
               "# HELP credwatch_store_max_bytes The embedded store's bound (CREDWATCH_STORE_MAX_BYTES).\n"
               "# TYPE credwatch_store_max_bytes gauge\ncredwatch_store_max_bytes %zu\n"
               "# HELP credwatch_store_evicted_keys_total Keys the embedded store gave up at its bound, by what "
               "they held (never keys with findings).\n# TYPE credwatch_store_evicted_keys_total counter\n"
               "credwatch_store_evicted_keys_total{class=\"pending\"} %llu\n"
               "credwatch_store_evicted_keys_total{class=\"lambda\"} %llu\n",
            atomic_load(&mem_bytes), atomic_load(&mem_max_bytes), (unsigned long long)atomic_load(&mem_evicted[0]),
            (unsigned long long)atomic_load(&mem_evicted[1]));
}

static void put_disk(struct text *t)
{
    static const char *const gauges[][2] = {
        {"credwatch_store_file_bytes", "Bytes the durable store's data file takes on disk (free pages included, reused)."},
        {"credwatch_store_used_bytes", "Pages of the durable store's data file in use."},
        {"credwatch_store_data_max_bytes", "The durable store's data file bound (CREDWATCH_DATA_MAX_BYTES)."},
        {"credwatch_store_keys", "Keys the durable store tracks (expired ones not yet swept included)."},
        {"credwatch_store_findings", "Findings the durable store holds."},
    };
    if (!atomic_load(&disk_set))  /* only the durable store reports these */
        return;
    for (size_t i = 0; i < sizeof gauges / sizeof gauges[0]; i++)
        put(t, "# HELP %s %s\n# TYPE %s gauge\n%s %llu\n", gauges[i][0], gauges[i][1], gauges[i][0], gauges[i][0],
            (unsigned long long)atomic_load(&disk[i]));
    put(t, "# HELP credwatch_store_swept_total Records the durable store's expiry removed since the start.\n"
           "# TYPE credwatch_store_swept_total counter\ncredwatch_store_swept_total{kind=\"keys\"} %llu\n"
           "credwatch_store_swept_total{kind=\"findings\"} %llu\n",
        (unsigned long long)atomic_load(&disk[5]), (unsigned long long)atomic_load(&disk[6]));
}

static void put_connections(struct text *t)
{
    put(t, "# HELP credwatch_connections_open Client connections open now (the probe reserve included).\n"
           "# TYPE credwatch_connections_open gauge\ncredwatch_connections_open %ld\n"
           "# HELP credwatch_connections_refused_total Connections closed at once because the cap and its probe "
           "reserve were full (CREDWATCH_MAX_CONNECTIONS).\n"
           "# TYPE credwatch_connections_refused_total counter\ncredwatch_connections_refused_total %llu\n"
           "# HELP credwatch_connections_cut_total Connections shut down past a deadline: request headers "
           "(CREDWATCH_HEADER_TIMEOUT_S) or request body (CREDWATCH_UPLOAD_TIMEOUT_S).\n"
           "# TYPE credwatch_connections_cut_total counter\n"
           "credwatch_connections_cut_total{deadline=\"headers\"} %llu\n"
           "credwatch_connections_cut_total{deadline=\"upload\"} %llu\n",
        api_conn_open_now(), api_conn_refused_total(), api_conn_cut_total(0), api_conn_cut_total(1));
    if (!api_tls_not_after())  /* plain HTTP */
        return;
    put(t, "# HELP credwatch_tls_certificate_not_after_seconds Expiry of the certificate served now (a renewal "
           "that SIGHUP did not load shows here).\n"
           "# TYPE credwatch_tls_certificate_not_after_seconds gauge\n"
           "credwatch_tls_certificate_not_after_seconds %lld\n"
           "# HELP credwatch_tls_reloads_total SIGHUP reloads of the certificate and key: ok, or failed (old pair "
           "kept).\n"
           "# TYPE credwatch_tls_reloads_total counter\ncredwatch_tls_reloads_total{result=\"ok\"} %llu\n"
           "credwatch_tls_reloads_total{result=\"failed\"} %llu\n"
           "# HELP credwatch_tls_client_refused_total Handshakes refused for a client certificate not signed by "
           "CREDWATCH_TLS_CLIENT_CA (GnuTLS refuses a missing one before, uncounted).\n"
           "# TYPE credwatch_tls_client_refused_total counter\ncredwatch_tls_client_refused_total %llu\n",
        api_tls_not_after(), api_tls_reloads_total(1), api_tls_reloads_total(0), api_tls_client_refused_total());
}

/* The sinks' families, each with one line per sink (sink="<name>": [a-z0-9_-], safe as a label). */
struct sink_family {
    const char *name, *type, *help;
    size_t off;  /* of the uint64_t in struct snk_run_stats */
};

static const struct sink_family SINK_COUNTERS[] = {
    {"credwatch_sink_delivered_total", "counter", "Events the sink's receiver acknowledged with a 2xx.",
     offsetof(struct snk_run_stats, delivered)},
    {"credwatch_sink_failed_attempts_total", "counter",
     "Deliveries that failed and will be retried (transport error, 408, 429, 5xx).",
     offsetof(struct snk_run_stats, failed_attempts)},
    {"credwatch_sink_filtered_total", "counter",
     "Events below the sink's minimum severity: acknowledged without sending.", offsetof(struct snk_run_stats, filtered)},
};
/* From the outbox as the delivery thread last read it (every SNK_RUN_TRIM_MS). */
static const struct sink_family SINK_GAUGES[] = {
    {"credwatch_sink_queue_depth", "gauge", "Events waiting for the sink, not yet handed out.",
     offsetof(struct store_out_stats, depth)},
    {"credwatch_sink_queue_held", "gauge", "Events handed out to a delivery thread and not yet acknowledged.",
     offsetof(struct store_out_stats, held)},
    {"credwatch_sink_dead_letters", "gauge", "Dead letters kept for the sink (GET /v1/sinks/{name}/dead-letters).",
     offsetof(struct store_out_stats, dead)},
};
#define N_SINK_COUNTERS (sizeof SINK_COUNTERS / sizeof SINK_COUNTERS[0])
#define N_SINK_GAUGES (sizeof SINK_GAUGES / sizeof SINK_GAUGES[0])

struct sink_snap {
    const char *name;
    struct snk_run_stats st;
};

static uint64_t field(const void *base, size_t off)
{
    uint64_t v;
    memcpy(&v, (const char *)base + off, sizeof v);
    return v;
}

static void put_sink_counts(struct text *t, const struct sink_snap *s, size_t n)
{
    for (size_t f = 0; f < N_SINK_COUNTERS; f++) {
        const struct sink_family *c = &SINK_COUNTERS[f];
        put(t, "# HELP %s %s\n# TYPE %s %s\n", c->name, c->help, c->name, c->type);
        for (size_t i = 0; i < n; i++)
            put(t, "%s{sink=\"%s\"} %llu\n", c->name, s[i].name, (unsigned long long)field(&s[i].st, c->off));
    }
    put(t, "# HELP credwatch_sink_dead_lettered_total Events given up: refused for good, too old or unreadable "
           "(refused), or the oldest past the outbox's bound (outbox_full).\n"
           "# TYPE credwatch_sink_dead_lettered_total counter\n");
    for (size_t i = 0; i < n; i++)
        put(t, "credwatch_sink_dead_lettered_total{sink=\"%s\",reason=\"refused\"} %llu\n"
               "credwatch_sink_dead_lettered_total{sink=\"%s\",reason=\"outbox_full\"} %llu\n",
            s[i].name, (unsigned long long)s[i].st.dead_lettered, s[i].name,
            (unsigned long long)s[i].st.dead_lettered_full);
}

static void put_sink_queues(struct text *t, const struct sink_snap *s, size_t n)
{
    for (size_t f = 0; f < N_SINK_GAUGES; f++) {
        const struct sink_family *g = &SINK_GAUGES[f];
        put(t, "# HELP %s %s\n# TYPE %s %s\n", g->name, g->help, g->name, g->type);
        for (size_t i = 0; i < n; i++)
            if (s[i].st.out_known)
                put(t, "%s{sink=\"%s\"} %llu\n", g->name, s[i].name, (unsigned long long)field(&s[i].st.out, g->off));
    }
    put(t, "# HELP credwatch_sink_oldest_undelivered_age_seconds Age of the oldest event not yet acknowledged "
           "(0 when none waits).\n# TYPE credwatch_sink_oldest_undelivered_age_seconds gauge\n");
    int64_t now = cw_now_ms();
    for (size_t i = 0; i < n; i++) {
        int64_t oldest = s[i].st.out.oldest_ms;
        if (s[i].st.out_known)
            put(t, "credwatch_sink_oldest_undelivered_age_seconds{sink=\"%s\"} %.3f\n", s[i].name,
                oldest > 0 && now > oldest ? (double)(now - oldest) / 1000.0 : 0.0);
    }
}

static void put_sink_latency(struct text *t, const struct sink_snap *s, size_t n)
{
    static const double BOUNDS[SNK_RUN_LAT_N] = {SNK_RUN_LAT_BOUNDS};
    put(t, "# HELP credwatch_sink_delivery_latency_seconds Time from an event's queueing to its receiver's 2xx.\n"
           "# TYPE credwatch_sink_delivery_latency_seconds histogram\n");
    for (size_t i = 0; i < n; i++) {
        const struct snk_run_stats *st = &s[i].st;
        for (size_t b = 0; b < SNK_RUN_LAT_N; b++)  /* lat_bucket is cumulative already */
            put(t, "credwatch_sink_delivery_latency_seconds_bucket{sink=\"%s\",le=\"%g\"} %llu\n", s[i].name,
                BOUNDS[b], (unsigned long long)st->lat_bucket[b]);
        put(t, "credwatch_sink_delivery_latency_seconds_bucket{sink=\"%s\",le=\"+Inf\"} %llu\n"
               "credwatch_sink_delivery_latency_seconds_sum{sink=\"%s\"} %.6f\n"
               "credwatch_sink_delivery_latency_seconds_count{sink=\"%s\"} %llu\n",
            s[i].name, (unsigned long long)st->lat_count, s[i].name, st->lat_sum_s, s[i].name,
            (unsigned long long)st->lat_count);
    }
}

/* Nothing at all without sinks: a deployment that delivers nowhere has no sink series. */
static void put_sinks(struct text *t, struct snk_run *run)
{
    struct sink_snap s[SNK_MAX];
    size_t n = run ? snk_run_count(run) : 0;
    if (n > SNK_MAX)
        n = SNK_MAX;
    for (size_t i = 0; i < n; i++) {
        s[i].name = snk_run_conf(run, i)->name;
        snk_run_stats(run, i, &s[i].st);
    }
    if (!n)
        return;
    put_sink_counts(t, s, n);
    put_sink_queues(t, s, n);
    put_sink_latency(t, s, n);
}

char *api_metrics_render(struct snk_run *run, size_t *len)
{
    struct text t = {.failed = 0};
    /* - 1: the bound has always counted the terminating NUL, which cw_buf does not */
    cw_buf_init(&t.b, API_METRICS_TEXT_MAX - 1);
    put_requests(&t);
    put_ingest(&t);
    put_firehose(&t);
    put_state(&t);
    put_disk(&t);
    put_connections(&t);
    put_sinks(&t, run);
    if (t.failed) {
        cw_buf_free(&t.b);
        return NULL;
    }
    *len = t.b.len;
    return t.b.p;
}
