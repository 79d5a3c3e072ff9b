/* api_server.c — `credwatch serve`, phase by phase: the settings, the signals, the certificate of
 * HTTPS and the network tables (both reloaded on SIGHUP), the store, the connection guard and the libmicrohttpd daemon, the sinks'
 * delivery threads, the wait for a stop signal, draining, and one cleanup path for a start that
 * fails. The arrows point down:
 * each request is api_request.c's (its callbacks are handed to the daemon here), and nothing
 * calls back up into this file. */
#include "api.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_backup.h"
#include "api_conn.h"
#include "api_cors.h"
#include "api_http.h"
#include "api_log.h"
#include "api_metrics.h"
#include "api_request.h"
#include "api_tls.h"
#include "cw.h"
#include "settings.h"
#include "sink.h"
#include "sink_run.h"

#define API_FD_RESERVE 64u                  /* descriptors kept for Redis, logs, the listener */
#define API_CONNECTION_MEMORY ((size_t)64 << 10) /* per connection: headers and MHD buffers only */
#define API_DRAIN_POLL_NS 10000000L         /* 10 ms between checks while draining */
#define API_LOG_LINE_MAX 512               /* one libmicrohttpd message; the rest is cut */

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

static json_t *tls_json(const struct api_tls_info *in)
{
    return json_pack("{s:s,s:s,s:s,s:i,s:i}", "subject", in->subject, "not_after", in->not_after, "sha256",
                     in->fingerprint, "chain", (int)in->chain, "client_cas", (int)in->client_cas);
}

/* SIGHUP with HTTPS: the certificate and key (and client CA) read again; handshakes from now on get
 * the new ones, connections already open keep theirs. A bad file keeps the old set. */
static void reload_tls(const struct api_server *s)
{
    if (!s->cfg.tls.cert[0])
        return;
    struct api_tls_info in;
    char msg[512];
    if (api_tls_reload(&in, msg, sizeof msg) != 0) {
        api_log("error", "certificate not reloaded: the previous one stays", json_pack("{s:s}", "error", msg));
        return;
    }
    api_log("info", "certificate reloaded", tls_json(&in));
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
    /* HTTPS: the certificate comes from api_tls per handshake (so SIGHUP can replace it); without
     * it the array holds only its end. */
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)api_tls_cert_cb},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)API_TLS_PRIORITIES},
        {MHD_OPTION_END, 0, NULL},
    };
    int https = s->cfg.tls.cert[0] != '\0';
    if (https)
        flags |= MHD_USE_TLS;
    /* The cap is api_conn's (it refuses at once and keeps a probe reserve); MHD's own limit, a
     * little above, is only the backstop: at it MHD stops accepting and clients wait. */
    unsigned limit = mhd_connections(s);
    /* MHD's option list is variadic; a pool of 1 is the same as no pool. */
    return MHD_start_daemon(flags, 0, api_conn_accept, NULL, api_request_access, s,
                            MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, /* first: covers option parsing */
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&s->cfg.addr,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)s->cfg.threads,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)s->cfg.conn_timeout_s,
                            MHD_OPTION_CONNECTION_LIMIT, limit,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, API_CONNECTION_MEMORY,
                            MHD_OPTION_NOTIFY_COMPLETED, api_request_completed, NULL,
                            MHD_OPTION_NOTIFY_CONNECTION, api_conn_notify, NULL,
                            MHD_OPTION_URI_LOG_CALLBACK, api_request_uri, NULL,
                            MHD_OPTION_ARRAY, https ? tls : tls + 2,
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

/* The sinks (sink_config.h), and the claim time against their timeouts: an event still in flight
 * at one instance must not be handed to another, so the claim time exceeds twice the longest
 * request a sink may take. */
static int sinks_config(struct api_server *s, char *msg, size_t msg_size)
{
    if (snk_config_load(&s->sinks, env_get, msg, msg_size) ||
        snk_config_check_env(&s->sinks, environ, msg, msg_size))
        return CW_ECONFIG;
    for (size_t i = 0; i < s->sinks.n; i++)
        if ((long)s->cfg.outbox_claim_ms <= 2 * s->sinks.sink[i].timeout_ms) {
            snprintf(msg, msg_size, "CREDWATCH_OUTBOX_CLAIM_MS: %u ms must exceed twice sink %s's timeout (%ld ms)",
                     s->cfg.outbox_claim_ms, s->sinks.sink[i].name, s->sinks.sink[i].timeout_ms);
            return CW_ECONFIG;
        }
    struct store_out_limits lim;
    store_out_get_limits(&lim);
    lim.claim_ms = s->cfg.outbox_claim_ms;
    store_out_set_limits(&lim);
    return CW_OK;
}

static int settings_phase(struct api_server *s, int argc, char **argv)
{
    char msg[512];
    if (api_config_load(&s->cfg, argc, argv, env_get, msg, sizeof msg) == 0 &&
        sinks_config(s, msg, sizeof msg) == 0)
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
    char kinds[64];
    set_workloads_name(net->kinds, kinds, sizeof kinds);
    api_log("info", "workloads judged", json_pack("{s:s}", "workloads", kinds));
    if (!net->n_accounts)  /* said at start: the cost shows only later, as other_address findings */
        api_log("warn", "CREDWATCH_ACCOUNTS is unset: calls through VPC endpoints cannot be told from a thief's own "
                        "endpoint and are judged outside (other_address); list the organisation's accounts",
                json_pack("{s:b}", "accounts", 0));
    /* requests take the table from the slot (SIGHUP swaps it); the slot holds its own reference */
    s->net = nr_slot_new(nr_table_ref(net->table));
    if (!s->net) {
        api_log("error", "out of memory", json_pack("{s:s}", "phase", "network tables"));
        return CW_ENOMEM;
    }
    if (!net->aws_ranges)
        api_log("warn", "CREDWATCH_AWS_IP_RANGES is unset: AWS addresses are not told apart from the internet",
                NULL);
    return CW_OK;
}

/* The variable a refusal of the Redis store blames: a TLS file's own, else the address's. */
static const char *redis_var(const struct api_server *s, const char *msg)
{
    const char *var = store_redis_tls_var(msg);
    if (var)
        return var;
    return s->cfg.redis_cluster[0] ? "CREDWATCH_REDIS_CLUSTER" : "CREDWATCH_REDIS_URL";
}

static int redis_store(struct api_server *s)
{
    char msg[256] = "";
    const struct store_redis_tls tls = { s->cfg.redis_ca_file, s->cfg.redis_client_cert, s->cfg.redis_client_key };
    if (s->cfg.redis_cluster[0]) {
        s->base = store_redis_cluster_new(s->cfg.redis_cluster, s->cfg.redis_timeout_ms, &tls, msg, sizeof msg);
        s->store_name = "redis-cluster";
    } else {
        s->base = store_redis_new(s->cfg.redis_url, s->cfg.redis_timeout_ms, &tls, msg, sizeof msg);
        s->store_name = "redis";
    }
    if (s->base)
        return CW_OK;
    const char *var = redis_var(s, msg);
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
    api_log("warn", "CREDWATCH_STORE=memory: embedded in-memory store, single instance only, "
                    "state is lost on restart", json_pack("{s:s}", "store", "memory"));
    return CW_OK;
}

/* The durable store in the data directory. A directory that cannot be used (in use by another
 * process, not writable, a newer schema) is a setting to change: exit 2 with the store's message,
 * which names the directory. */
static int durable_store(struct api_server *s)
{
    char msg[512] = "";
    const char *dir = s->cfg.data_dir;
    s->store_name = "durable";
    s->base = store_lmdb_new(dir, s->cfg.data_max_bytes, msg, sizeof msg);
    if (!s->base) {
        api_log("error", "cannot open the durable store",
                json_pack("{s:s,s:s,s:s}", "data_dir", dir, "data_dir_from", s->cfg.data_dir_from, "error", msg));
        fprintf(stderr, "credwatch serve: CREDWATCH_DATA_DIR=%s: %s\n", dir, msg);
        return CW_ECONFIG;
    }
    s->durable = 1;
    char stale[256] = "";
    if (api_backup_clean(dir, stale, sizeof stale))
        api_log("warn", "a backup copy left by an earlier process could not be removed",
                json_pack("{s:s}", "error", stale));
    struct store_lmdb_info in = {0};
    store_lmdb_info(s->base, &in);
    char line[SET_PATH_MAX + 160];
    snprintf(line, sizeof line, "store: durable (LMDB) at %s, schema %u, %llu keys, %llu findings", dir, in.schema,
             (unsigned long long)in.keys, (unsigned long long)in.findings);
    api_log("info", line,
            json_pack("{s:s,s:s,s:s,s:i,s:I,s:I,s:I,s:I}", "store", "durable", "data_dir", dir, "data_dir_from",
                      s->cfg.data_dir_from, "schema", (int)in.schema, "keys", (json_int_t)in.keys, "findings",
                      (json_int_t)in.findings, "file_bytes", (json_int_t)in.file_bytes, "max_bytes",
                      (json_int_t)s->cfg.data_max_bytes));
    return CW_OK;
}

/* The shared store, then what the workers need before the first request. A store that does not
 * accept writes yet is no failure: the service starts not ready and becomes ready when it does. */
static int store_phase(struct api_server *s)
{
    int err = s->cfg.redis_url[0] || s->cfg.redis_cluster[0] ? redis_store(s)
              : s->cfg.store_kind == API_STORE_MEMORY        ? memory_store(s)
                                                              : durable_store(s);
    if (err)
        return err;
    s->eng_cfg.limits.max_inflated = s->cfg.max_inflated;
    s->eng_cfg.chunk_bytes = s->cfg.ingest_chunk_bytes;  /* each worker's engine copies it (eng_new) */
    api_worker_init();
    atomic_store(&s->draining, 0);
    atomic_store(&s->backup_busy, 0);
    int ping = store_ping(s->base);
    api_metrics_ready(ping == 0);
    if (ping != 0)
        api_log("warn", "the store does not accept writes at start; not ready until it does",
                json_pack("{s:s,s:s}", "store", s->store_name, "error", store_why(s->base)));
    return CW_OK;
}

/* HTTPS: the files read and checked before anything listens; a refused one exits 2 naming it. */
static int tls_phase(const struct api_server *s)
{
    if (!s->cfg.tls.cert[0])
        return CW_OK;
    struct api_tls_info in;
    char msg[512];
    int err = api_tls_init(&s->cfg.tls, &in, msg, sizeof msg);
    if (err) {
        api_log("error", "invalid configuration", json_pack("{s:s}", "error", msg));
        fprintf(stderr, "credwatch serve: %s\n", msg);
        return err == CW_ENOMEM ? CW_ENOMEM : CW_ECONFIG;
    }
    api_log("info", "certificate loaded", tls_json(&in));
    return CW_OK;
}

static void log_started(const struct api_server *s, struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int open_roles = s->cfg.ingest.n == 0 || s->cfg.read.n == 0;
    api_log("info", "listening",
            json_pack("{s:s,s:i,s:s,s:s,s:i,s:I,s:I,s:b,s:b,s:o*}", "listen", s->cfg.listen, "port",
                      info ? (int)info->port : -1, "scheme", s->cfg.tls.cert[0] ? "https" : "http", "store", s->store_name, "threads", (int)s->cfg.threads,
                      "max_body_bytes", (json_int_t)s->cfg.max_body, "max_inflated_bytes",
                      (json_int_t)s->cfg.max_inflated, "ingest_auth", s->cfg.ingest.n > 0, "read_auth",
                      s->cfg.read.n > 0, "cors_origins", api_cors_json(&s->cfg.cors)));
    api_log("info", "limits",
            json_pack("{s:i,s:i,s:i,s:i,s:i,s:i,s:I,s:I}", "connection_timeout_s", (int)s->cfg.conn_timeout_s,
                      "header_timeout_s", (int)s->cfg.header_timeout_s, "upload_timeout_s",
                      (int)s->cfg.upload_timeout_s, "max_connections", (int)guard_cap(s),
                      "probe_reserve", (int)API_CONN_PROBE_RESERVE, "max_inflight_ingest",
                      (int)s->cfg.max_inflight_ingest, "max_inflight_ingest_bytes",
                      (json_int_t)s->cfg.max_inflight_bytes, "ingest_chunk_bytes",
                      (json_int_t)s->cfg.ingest_chunk_bytes));
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

static void sink_log(const char *level, const char *msg, const char *sink, const char *detail)
{
    api_log(level, msg, json_pack("{s:s,s:s?}", "sink", sink, "detail", detail));
}

/* Findings out: the outbox's groups (a sink sees the events from its first start on), then one
 * delivery thread per sink. An outbox that cannot be opened now (Redis down) is no failure: the
 * threads open it themselves when the store answers. */
static int sinks_phase(struct api_server *s)
{
    if (!s->sinks.n)
        return CW_OK;
    if (snk_global_init()) {
        api_log("error", "cannot initialise libcurl", NULL);
        return CW_ENOMEM;
    }
    const char *names[SNK_MAX];
    for (size_t i = 0; i < s->sinks.n; i++) {
        char line[1024];
        snk_describe(&s->sinks.sink[i], line, sizeof line);
        api_log("info", "sink", json_pack("{s:s}", "sink", line));
        names[i] = s->sinks.sink[i].name;
    }
    if (store_out_open(s->base, names, s->sinks.n))
        api_log("warn", "the outbox cannot be opened now; the delivery threads retry",
                json_pack("{s:s}", "error", store_why(s->base)));
    /* The consumer name is this process's alone: host and pid, and a random part, since two
     * containers on one host's network can both be pid 1 (a shared name would share held events). */
    char host[64] = "", consumer[STORE_CONSUMER_MAX], msg[128];
    unsigned int nonce = 0;
    gethostname(host, sizeof host - 1);
    if (getrandom(&nonce, sizeof nonce, 0) != (ssize_t)sizeof nonce)
        nonce = (unsigned int)cw_mono_ms();
    snprintf(consumer, sizeof consumer, "%.40s:%ld:%08x", host[0] ? host : "credwatch", (long)getpid(), nonce);
    if (snk_run_start(&s->sinks, s->base, consumer, sink_log, &s->run, msg, sizeof msg)) {
        api_log("error", "cannot start the delivery threads", json_pack("{s:s}", "error", msg));
        return CW_ENOMEM;
    }
    return CW_OK;
}

/* Serves until SIGTERM or SIGINT, which it returns; each SIGHUP reloads the network table and, with
 * HTTPS, the certificate. */
static int wait_phase(struct api_server *s, const sigset_t *stop)
{
    int sig = 0;
    for (;;) {
        if (sigwait(stop, &sig) != 0)
            continue;
        if (sig != SIGHUP)
            return sig;
        reload_net(s);
        reload_tls(s);
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
    snk_run_stop(s->run);  /* before the store it reads from */
    s->run = NULL;
    if (s->sinks.n)
        snk_global_cleanup();
    if (s->base)
        store_free(s->base);
    s->base = NULL;
    nr_slot_free(s->net);
    s->net = NULL;
    set_net_free(net);
    api_tls_free();  /* after the daemon: no handshake is left */
}

/* Blocks of API_MMAP_THRESHOLD and more (a large request's body, its chunk of decoded events: engine.h)
 * are mapped for themselves and given back to the system when freed. glibc's default threshold adapts
 * instead: once such a block is freed it rises to that size (up to 32 MiB), after which blocks that
 * large come from the thread's heap and stay resident when freed, and a realloc may copy (old and new
 * block both resident). Measured by tests/it_memory.sh: each worker kept ~16 MiB after its second
 * large request, and that request's peak was 8 MiB higher than the first's. A fixed threshold turns
 * the adapting off. At ENG_KEEP_BYTES, what an engine keeps between inputs anyway, ordinary requests
 * (a 1,000-record batch is ~1.5 MB) stay on the heap and pay no mapping per request. */
#define API_MMAP_THRESHOLD ((int)4 << 20)
_Static_assert(API_MMAP_THRESHOLD == ENG_KEEP_BYTES, "the threshold follows what an engine keeps");

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
    mallopt(M_MMAP_THRESHOLD, API_MMAP_THRESHOLD);  /* before any worker thread allocates */
    signals_phase(&stop);
    if ((err = tls_phase(&srv)) != CW_OK || (err = network_phase(&srv, &net)) != CW_OK || (err = store_phase(&srv)) != CW_OK ||
        (err = sinks_phase(&srv)) != CW_OK || (err = start_phase(&srv, &d)) != CW_OK)
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
