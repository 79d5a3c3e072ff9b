/* api_config.c — see api_config.h. */
#include "api_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "settings.h"
#include "store.h"

enum opt_kind { OPT_LISTEN, OPT_REDIS_URL, OPT_REDIS_CLUSTER, OPT_INGEST_TOKENS, OPT_READ_TOKENS, OPT_ALLOW_UNAUTH, OPT_THREADS,
                OPT_MAX_BODY, OPT_MAX_INFLATED, OPT_REDIS_TIMEOUT, OPT_DRAIN, OPT_CONN_TIMEOUT, OPT_MAX_CONNECTIONS,
                OPT_MAX_INFLIGHT_INGEST, OPT_MAX_INFLIGHT_INGEST_BYTES, OPT_HEADER_TIMEOUT, OPT_UPLOAD_TIMEOUT,
                OPT_STORE_MAX_BYTES, OPT_COUNT };

/* One table drives the environment, the flags and --help, so they cannot drift apart. */
static const struct opt {
    enum opt_kind kind;
    const char *flag;
    const char *env;
    const char *def;
    const char *help;
} OPTS[OPT_COUNT] = {
    {OPT_LISTEN, "--listen", "CREDWATCH_LISTEN", API_DEFAULT_LISTEN,
     "host:port to listen on; IPv6 as [::1]:8080; port 0 picks a free port (logged)"},
    {OPT_REDIS_URL, "--redis-url", "CREDWATCH_REDIS_URL", "(unset: embedded in-memory store)",
     "redis://[user:password@]host:port[/db]; unset = one instance, state lost on restart"},
    {OPT_REDIS_CLUSTER, "--redis-cluster", "CREDWATCH_REDIS_CLUSTER", "(unset)",
     "Redis Cluster seed nodes: [redis://][user:password@]host:port,host:port,..."},
    {OPT_INGEST_TOKENS, "--ingest-tokens", "CREDWATCH_INGEST_TOKENS", "(none)",
     "comma-separated tokens allowed to POST /v1/ingest/..."},
    {OPT_READ_TOKENS, "--read-tokens", "CREDWATCH_READ_TOKENS", "(none)",
     "comma-separated tokens allowed to GET findings and keys and PATCH findings"},
    {OPT_ALLOW_UNAUTH, "--allow-unauthenticated", "CREDWATCH_ALLOW_UNAUTHENTICATED", "0",
     "1 = a role without tokens is open even on a non-loopback address"},
    {OPT_THREADS, "--threads", "CREDWATCH_THREADS", "(number of CPUs)", "HTTP worker threads"},
    {OPT_MAX_BODY, "--max-body-bytes", "CREDWATCH_MAX_BODY_BYTES", "33554432",
     "largest request body accepted (as sent, compressed or not): 413 above"},
    {OPT_MAX_INFLATED, "--max-inflated-bytes", "CREDWATCH_MAX_INFLATED_BYTES", "268435456",
     "largest decompressed ingest body: 413 above"},
    {OPT_REDIS_TIMEOUT, "--redis-timeout-ms", "CREDWATCH_REDIS_TIMEOUT_MS", "1000",
     "Redis connect and command timeout"},
    {OPT_DRAIN, "--drain-seconds", "CREDWATCH_DRAIN_SECONDS", "20",
     "on SIGTERM, how long in-flight requests may take to finish"},
    {OPT_CONN_TIMEOUT, "--connection-timeout-seconds", "CREDWATCH_CONNECTION_TIMEOUT_S", "75",
     "a connection idle this long (no byte received or sent) is closed; above a load balancer's 60 s"},
    {OPT_MAX_CONNECTIONS, "--max-connections", "CREDWATCH_MAX_CONNECTIONS", "4096",
     "open client connections (lowered to fit the open-file limit); beyond, new ones are closed"},
    {OPT_MAX_INFLIGHT_INGEST, "--max-inflight-ingest", "CREDWATCH_MAX_INFLIGHT_INGEST", "(2 x threads)",
     "ingest requests admitted at once (uploading or processing): 503 + Retry-After beyond"},
    {OPT_MAX_INFLIGHT_INGEST_BYTES, "--max-inflight-ingest-bytes", "CREDWATCH_MAX_INFLIGHT_INGEST_BYTES",
     "(4 x max body bytes)", "ingest body bytes buffered at once over all requests: 503 + Retry-After beyond"},
    {OPT_HEADER_TIMEOUT, "--header-timeout-seconds", "CREDWATCH_HEADER_TIMEOUT_S", "10",
     "a new connection must finish its request headers within this (a kept-alive one: idle timeout + this)"},
    {OPT_UPLOAD_TIMEOUT, "--upload-timeout-seconds", "CREDWATCH_UPLOAD_TIMEOUT_S", "60",
     "a request body must arrive within this after its headers; slower uploads are cut, freeing their slot"},
    {OPT_STORE_MAX_BYTES, "--store-max-bytes", "CREDWATCH_STORE_MAX_BYTES", "268435456",
     "memory bound of the embedded store; at it, keys without findings are evicted (soonest-expiring first)"},
};

void api_config_usage(FILE *out)
{
    fprintf(out, "usage: credwatch serve [flags]\n\n"
                 "Each flag overrides the environment variable of the same meaning.\n\n");
    for (size_t i = 0; i < OPT_COUNT; i++)
        fprintf(out, "  %-24s %-32s default %s\n  %24s %s\n", OPTS[i].flag, OPTS[i].env, OPTS[i].def, "",
                OPTS[i].help);
    fprintf(out, "\nNetwork knowledge, shared with `credwatch scan` (environment only):\n"
                 "  CREDWATCH_AWS_IP_RANGES  path of AWS's ip-ranges.json\n"
                 "  CREDWATCH_ALLOW_CIDRS    CIDR[=label],... never treated as outside (NAT, egress)\n"
                 "  CREDWATCH_ACCOUNTS       the organisation's account ids (VPC endpoint owners)\n\n");
    fprintf(out, "  %-24s print the routes (METHOD /path) and exit\n", "--print-routes");
    fprintf(out, "  %-24s this text\n", "--help");
}

/* Parses a decimal integer in [lo, hi] with nothing after it. */
static int parse_uint(const char *s, unsigned long long lo, unsigned long long hi, unsigned long long *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
    }
    return 0;
}

/* "host:port" or "[v6]:port" → a socket address. Host names are resolved once, at start. */
static int parse_listen(struct api_config *c, const char *v, char *msg, size_t msg_size, const char *name)
{
    size_t len = strlen(v);
    if (len == 0 || len >= API_LISTEN_MAX) {
        snprintf(msg, msg_size, "%s: expected host:port", name);
        return CW_ECONFIG;
    }
    char host[API_LISTEN_MAX];
    const char *port;
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':') {
            snprintf(msg, msg_size, "%s: expected [ipv6]:port, got \"%s\"", name, v);
            return CW_ECONFIG;
        }
        size_t hl = (size_t)(close - v - 1);
        memcpy(host, v + 1, hl);
        host[hl] = '\0';
        port = close + 2;
    } else {
        const char *colon = strrchr(v, ':');
        if (!colon || memchr(v, ':', (size_t)(colon - v))) {
            snprintf(msg, msg_size, "%s: expected host:port (IPv6 as [::1]:8080), got \"%s\"", name, v);
            return CW_ECONFIG;
        }
        size_t hl = (size_t)(colon - v);
        memcpy(host, v, hl);
        host[hl] = '\0';
        port = colon + 1;
    }
    unsigned long long p;
    if (host[0] == '\0' || parse_uint(port, 0, 65535, &p)) {
        snprintf(msg, msg_size, "%s: expected host:port with a port 0-65535, got \"%s\"", name, v);
        return CW_ECONFIG;
    }
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(msg, msg_size, "%s: cannot resolve \"%s\": %s", name, host, gai_strerror(rc));
        return CW_ECONFIG;
    }
    memcpy(&c->addr, res->ai_addr, res->ai_addrlen);
    c->addr_len = res->ai_addrlen;
    c->ipv6 = res->ai_family == AF_INET6;
    c->loopback = is_loopback(res->ai_addr);
    freeaddrinfo(res);
    memcpy(c->listen, v, len + 1);
    return 0;
}

/* Applies one value (from the environment or a flag); `name` is what the message blames. */
static int apply(struct api_config *c, enum opt_kind k, const char *v, const char *name, char *msg, size_t msg_size)
{
    unsigned long long n;
    char tmsg[160];
    switch (k) {
    case OPT_LISTEN:
        return parse_listen(c, v, msg, msg_size, name);
    case OPT_REDIS_URL: {
        size_t len = strlen(v);
        if (len >= API_URL_MAX) {
            snprintf(msg, msg_size, "%s: longer than %d bytes", name, API_URL_MAX - 1);
            return CW_ECONFIG;
        }
        if (len && strncmp(v, "redis://", 8) != 0) {
            snprintf(msg, msg_size, "%s: expected redis://host:port[/db]", name);
            return CW_ECONFIG;
        }
        memcpy(c->redis_url, v, len + 1);
        return 0;
    }
    case OPT_REDIS_CLUSTER: {
        size_t len = strlen(v);
        if (len >= API_URL_MAX) {
            snprintf(msg, msg_size, "%s: longer than %d bytes", name, API_URL_MAX - 1);
            return CW_ECONFIG;
        }
        memcpy(c->redis_cluster, v, len + 1);
        return 0;
    }
    case OPT_INGEST_TOKENS:
    case OPT_READ_TOKENS:
        if (api_tokens_parse(v, k == OPT_INGEST_TOKENS ? &c->ingest : &c->read, tmsg, sizeof tmsg)) {
            snprintf(msg, msg_size, "%s: %s", name, tmsg);
            return CW_ECONFIG;
        }
        return 0;
    case OPT_ALLOW_UNAUTH:
        if (strcmp(v, "1") && strcmp(v, "0") && *v) {
            snprintf(msg, msg_size, "%s: expected 1 or 0", name);
            return CW_ECONFIG;
        }
        c->allow_unauth = strcmp(v, "1") == 0;
        return 0;
    case OPT_THREADS:
        if (parse_uint(v, 1, API_THREADS_MAX, &n)) {
            snprintf(msg, msg_size, "%s: expected an integer 1-%d", name, API_THREADS_MAX);
            return CW_ECONFIG;
        }
        c->threads = (unsigned)n;
        return 0;
    case OPT_MAX_BODY:
        if (parse_uint(v, API_MIN_BODY, API_MAX_BODY, &n)) {
            snprintf(msg, msg_size, "%s: expected bytes, %d-%zu", name, API_MIN_BODY, API_MAX_BODY);
            return CW_ECONFIG;
        }
        c->max_body = (size_t)n;
        return 0;
    case OPT_MAX_INFLATED:
        if (parse_uint(v, API_MIN_BODY, API_MAX_INFLATED, &n)) {
            snprintf(msg, msg_size, "%s: expected bytes, %d-%zu", name, API_MIN_BODY, API_MAX_INFLATED);
            return CW_ECONFIG;
        }
        c->max_inflated = (size_t)n;
        return 0;
    case OPT_REDIS_TIMEOUT:
        if (parse_uint(v, 1, API_MAX_REDIS_TIMEOUT_MS, &n)) {
            snprintf(msg, msg_size, "%s: expected milliseconds, 1-%d", name, API_MAX_REDIS_TIMEOUT_MS);
            return CW_ECONFIG;
        }
        c->redis_timeout_ms = (int)n;
        return 0;
    case OPT_DRAIN:
        if (parse_uint(v, 0, API_MAX_DRAIN_S, &n)) {
            snprintf(msg, msg_size, "%s: expected seconds, 0-%d", name, API_MAX_DRAIN_S);
            return CW_ECONFIG;
        }
        c->drain_s = (unsigned)n;
        return 0;
    case OPT_CONN_TIMEOUT:
        if (parse_uint(v, 1, API_MAX_CONN_TIMEOUT_S, &n)) {
            snprintf(msg, msg_size, "%s: expected seconds, 1-%d", name, API_MAX_CONN_TIMEOUT_S);
            return CW_ECONFIG;
        }
        c->conn_timeout_s = (unsigned)n;
        return 0;
    case OPT_MAX_CONNECTIONS:
        if (parse_uint(v, API_MIN_CONNECTIONS, API_MAX_CONNECTIONS, &n)) {
            snprintf(msg, msg_size, "%s: expected an integer %d-%d", name, API_MIN_CONNECTIONS, API_MAX_CONNECTIONS);
            return CW_ECONFIG;
        }
        c->max_connections = (unsigned)n;
        return 0;
    case OPT_MAX_INFLIGHT_INGEST:
        if (parse_uint(v, 1, API_MAX_INFLIGHT_INGEST, &n)) {
            snprintf(msg, msg_size, "%s: expected an integer 1-%d", name, API_MAX_INFLIGHT_INGEST);
            return CW_ECONFIG;
        }
        c->max_inflight_ingest = (unsigned)n;
        return 0;
    case OPT_STORE_MAX_BYTES:  /* the same rules as scan's (settings.c) */
        return set_store_max_bytes(v, name, &c->store_max_bytes, msg, msg_size) ? CW_ECONFIG : 0;
    case OPT_HEADER_TIMEOUT:
    case OPT_UPLOAD_TIMEOUT:
        if (parse_uint(v, 1, API_MAX_CONN_TIMEOUT_S, &n)) {
            snprintf(msg, msg_size, "%s: expected seconds, 1-%d", name, API_MAX_CONN_TIMEOUT_S);
            return CW_ECONFIG;
        }
        if (k == OPT_HEADER_TIMEOUT)
            c->header_timeout_s = (unsigned)n;
        else
            c->upload_timeout_s = (unsigned)n;
        return 0;
    case OPT_MAX_INFLIGHT_INGEST_BYTES:
        if (parse_uint(v, API_MIN_BODY, API_MAX_INFLATED, &n)) {
            snprintf(msg, msg_size, "%s: expected bytes, %d-%zu", name, API_MIN_BODY, API_MAX_INFLATED);
            return CW_ECONFIG;
        }
        c->max_inflight_bytes = (size_t)n;
        return 0;
    case OPT_COUNT:
        break;
    }
    return CW_ECONFIG;
}

static unsigned cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > API_THREADS_MAX ? API_THREADS_MAX : (unsigned)n;
}

int api_config_load(struct api_config *c, int argc, char **argv, api_env_fn env, char *msg, size_t msg_size)
{
    memset(c, 0, sizeof *c);
    msg[0] = '\0';
    /* --help and --print-routes answer without looking at anything else, so they work in any
     * environment (a build step, a broken deployment being debugged). */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            c->help = 1;
        else if (strcmp(argv[i], "--print-routes") == 0)
            c->print_routes = 1;
    }
    if (c->help || c->print_routes)
        return 0;

    c->threads = cpu_count();
    c->max_body = API_DEFAULT_MAX_BODY;
    c->max_inflated = API_DEFAULT_MAX_INFLATED;
    c->redis_timeout_ms = API_DEFAULT_REDIS_TIMEOUT_MS;
    c->drain_s = API_DEFAULT_DRAIN_S;
    c->conn_timeout_s = API_DEFAULT_CONN_TIMEOUT_S;
    c->header_timeout_s = API_DEFAULT_HEADER_TIMEOUT_S;
    c->store_max_bytes = STORE_MEM_DEFAULT_BYTES;
    c->upload_timeout_s = API_DEFAULT_UPLOAD_TIMEOUT_S;
    c->max_connections = API_DEFAULT_CONNECTIONS;
    const char *values[OPT_COUNT] = {0};
    const char *names[OPT_COUNT] = {0};
    values[OPT_LISTEN] = API_DEFAULT_LISTEN;
    names[OPT_LISTEN] = "CREDWATCH_LISTEN";
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const char *v = env ? env(OPTS[i].env) : NULL;
        if (v) {
            values[i] = v;
            names[i] = OPTS[i].env;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        size_t k;
        for (k = 0; k < OPT_COUNT; k++) {
            size_t fl = strlen(OPTS[k].flag);
            if (strncmp(a, OPTS[k].flag, fl) == 0 && (a[fl] == '\0' || a[fl] == '='))
                break;
        }
        if (k == OPT_COUNT) {
            snprintf(msg, msg_size, "unknown argument \"%.64s\" (see --help)", a);
            return CW_ECONFIG;
        }
        const char *eq = strchr(a, '=');
        if (eq) {
            values[k] = eq + 1;
        } else if (k == OPT_ALLOW_UNAUTH) {
            values[k] = "1"; /* a bare boolean flag */
        } else if (i + 1 < argc) {
            values[k] = argv[++i];
        } else {
            snprintf(msg, msg_size, "%s: missing value", OPTS[k].flag);
            return CW_ECONFIG;
        }
        names[k] = OPTS[k].flag;
    }
    for (size_t i = 0; i < OPT_COUNT; i++) {
        if (!values[i])
            continue;
        int rc = apply(c, (enum opt_kind)i, values[i], names[i], msg, msg_size);
        if (rc)
            return rc;
    }
    /* Admission defaults follow the thread count and the body cap: two ingests per thread keep
     * every thread busy (one processing, one uploading) without queueing work no thread will
     * reach before the senders' 5 s deadline. */
    if (!c->max_inflight_ingest)
        c->max_inflight_ingest = 2 * c->threads;
    if (!c->max_inflight_bytes)
        c->max_inflight_bytes = API_INFLIGHT_BODIES * c->max_body;
    if (c->max_inflight_bytes < c->max_body) {
        snprintf(msg, msg_size, "CREDWATCH_MAX_INFLIGHT_INGEST_BYTES: %zu is below the body cap %zu: no large "
                 "body could ever be admitted", c->max_inflight_bytes, c->max_body);
        return CW_ECONFIG;
    }
    if (c->redis_url[0] && c->redis_cluster[0]) {
        snprintf(msg, msg_size, "CREDWATCH_REDIS_CLUSTER: set either it or CREDWATCH_REDIS_URL, not both");
        return CW_ECONFIG;
    }
    /* A token has one role: one listed for both would let a forwarder read findings, or a
     * dashboard post records (issue: a leaked ingest token may not reach analysts' data). */
    for (size_t i = 0; i < c->ingest.n; i++) {
        if (api_tokens_match(&c->read, c->ingest.tok[i])) {
            snprintf(msg, msg_size, "CREDWATCH_INGEST_TOKENS and CREDWATCH_READ_TOKENS: token %zu of the ingest "
                     "tokens is also a read token; give each role its own tokens", i + 1);
            return CW_ECONFIG;
        }
    }
    /* An open role (no token) on a reachable address would hand findings, or the power to feed
     * forged events, to anyone on the network: refuse unless explicitly allowed. */
    int open_role = c->ingest.n == 0 || c->read.n == 0;
    if (open_role && !c->loopback && !c->allow_unauth) {
        snprintf(msg, msg_size, "CREDWATCH_LISTEN: %s is not a loopback address and %s; set "
                 "CREDWATCH_INGEST_TOKENS and CREDWATCH_READ_TOKENS, or CREDWATCH_ALLOW_UNAUTHENTICATED=1",
                 c->listen, c->ingest.n == 0 && c->read.n == 0 ? "no tokens are configured"
                 : c->ingest.n == 0 ? "CREDWATCH_INGEST_TOKENS is empty" : "CREDWATCH_READ_TOKENS is empty");
        return CW_ECONFIG;
    }
    return 0;
}
