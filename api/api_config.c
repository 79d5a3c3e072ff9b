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

#include "engine.h"
#include "settings.h"
#include "store.h"

enum opt_kind { OPT_LISTEN, OPT_REDIS_URL, OPT_REDIS_CLUSTER, OPT_STORE, OPT_DATA_DIR, OPT_DATA_MAX_BYTES, OPT_INGEST_TOKENS, OPT_READ_TOKENS, OPT_ALLOW_UNAUTH, OPT_THREADS,
                OPT_MAX_BODY, OPT_MAX_INFLATED, OPT_INGEST_CHUNK, OPT_REDIS_TIMEOUT, OPT_DRAIN, OPT_CONN_TIMEOUT, OPT_MAX_CONNECTIONS,
                OPT_MAX_INFLIGHT_INGEST, OPT_MAX_INFLIGHT_INGEST_BYTES, OPT_HEADER_TIMEOUT, OPT_UPLOAD_TIMEOUT,
                OPT_STORE_MAX_BYTES, OPT_OUTBOX_CLAIM_MS, OPT_CORS_ORIGINS, OPT_TLS_CERT, OPT_TLS_KEY,
                OPT_TLS_KEY_PASSWORD, OPT_TLS_CLIENT_CA, OPT_REDIS_CA_FILE, OPT_REDIS_CLIENT_CERT,
                OPT_REDIS_CLIENT_KEY, OPT_COUNT };

/* How a value is read and where it goes: one setter per type (set_value picks it). */
enum opt_type {
    T_INT,      /* int field: a decimal in [lo, hi] */
    T_UINT,     /* unsigned field: the same */
    T_SIZE,     /* size_t field: the same */
    T_BOOL,     /* int field: "1", "0" or "" (= 0); a bare flag means 1 */
    T_STRING,   /* char[hi + 1] field; `prefix` required unless empty */
    T_TOKENS,   /* struct api_tokens field */
    T_HOOK      /* parsed by `hook`: the rules no other option shares */
};

struct opt;
/* Sets the option from v, or fills msg blaming `name`. (One line: layout_check would read a
 * declaration over several lines as the start of a function body.) */
typedef int opt_hook(struct api_config *, const struct opt *, const char *v, const char *name, char *msg, size_t);

/* One table drives the environment, the flags, --help and the checks, so they cannot drift apart.
 * Options are applied in table order: with several bad values, the first one here is reported. */
struct opt {
    const char *flag;
    const char *env;
    const char *def;
    const char *help;
    enum opt_type type;
    size_t off;                 /* offsetof() of the field in struct api_config */
    unsigned long long lo, hi;  /* numbers: the range; strings: hi is the longest length */
    const char *expect;         /* the words after "expected" in the message */
    const char *prefix;         /* strings: a required prefix of a non-empty value */
    opt_hook *hook;
};

#define FIELD(f) offsetof(struct api_config, f)
#define OPT_DATA_MAX_DEFAULT "8589934592"  /* --help's text of STORE_DURABLE_DEFAULT_BYTES */
_Static_assert(STORE_DURABLE_DEFAULT_BYTES == 8589934592ULL, "OPT_DATA_MAX_DEFAULT must follow the store's default");
#define OPT_CHUNK_DEFAULT "8388608"        /* --help's text of ENG_CHUNK_BYTES */
_Static_assert(ENG_CHUNK_BYTES == 8388608, "OPT_CHUNK_DEFAULT must follow the engine's default");
_Static_assert(API_MAX_CHUNK_BYTES + ((size_t)64 << 10) <= EVB_MAX_BYTES, "a chunk and one more event must fit one event buffer");

static opt_hook set_listen, set_store_bytes, set_cors_origins, set_store_kind, set_data_dir_given, set_data_bytes;

static const struct opt OPTS[OPT_COUNT] = {
    [OPT_LISTEN] = {"--listen", "CREDWATCH_LISTEN", API_DEFAULT_LISTEN,
     "host:port to listen on; IPv6 as [::1]:8080; port 0 picks a free port (logged)",
     T_HOOK, FIELD(listen), 0, 0, NULL, NULL, set_listen},
    [OPT_REDIS_URL] = {"--redis-url", "CREDWATCH_REDIS_URL", "(unset: the embedded store, see --store)",
     "redis[s]://[user:password@]host:port[/db]: the store shared by several instances (rediss:// = TLS)",
     T_STRING, FIELD(redis_url), 0, API_URL_MAX - 1, "redis://host:port[/db] or rediss://host:port[/db]", "redis",
     NULL},
    [OPT_REDIS_CLUSTER] = {"--redis-cluster", "CREDWATCH_REDIS_CLUSTER", "(unset)",
     "Redis Cluster seed nodes: [redis[s]://][user:password@]host:port,host:port,... (rediss:// = TLS)",
     T_STRING, FIELD(redis_cluster), 0, API_URL_MAX - 1, NULL, NULL, NULL},
    [OPT_STORE] = {"--store", "CREDWATCH_STORE", "durable",
     "without Redis: durable (on disk in the data directory, one instance) or memory (lost on restart)",
     T_HOOK, FIELD(store_kind), 0, 0, NULL, NULL, set_store_kind},
    [OPT_DATA_DIR] = {"--data-dir", "CREDWATCH_DATA_DIR",
     "($STATE_DIRECTORY, else " SET_DATA_DIR_SYSTEM " when writable, else " SET_DATA_DIR_LOCAL ")",
     "the durable store's directory (created if missing; one process at a time: a lock file)",
     T_HOOK, FIELD(data_dir), 0, 0, NULL, NULL, set_data_dir_given},
    [OPT_DATA_MAX_BYTES] = {"--data-max-bytes", "CREDWATCH_DATA_MAX_BYTES", OPT_DATA_MAX_DEFAULT,
     "bound of the durable store's data file; at it, new state is refused with 503 until expiry frees room",
     T_HOOK, FIELD(data_max_bytes), 0, 0, NULL, NULL, set_data_bytes},
    [OPT_INGEST_TOKENS] = {"--ingest-tokens", "CREDWATCH_INGEST_TOKENS", "(none)",
     "comma-separated tokens allowed to POST /v1/ingest/...",
     T_TOKENS, FIELD(ingest), 0, 0, NULL, NULL, NULL},
    [OPT_READ_TOKENS] = {"--read-tokens", "CREDWATCH_READ_TOKENS", "(none)",
     "comma-separated tokens allowed to GET findings and keys and PATCH findings",
     T_TOKENS, FIELD(read), 0, 0, NULL, NULL, NULL},
    [OPT_ALLOW_UNAUTH] = {"--allow-unauthenticated", "CREDWATCH_ALLOW_UNAUTHENTICATED", "0",
     "1 = a role without tokens is open even on a non-loopback address",
     T_BOOL, FIELD(allow_unauth), 0, 0, "1 or 0", NULL, NULL},
    [OPT_THREADS] = {"--threads", "CREDWATCH_THREADS", "(CPUs; durable store: 8 x CPUs, at least 16)", "HTTP worker threads",
     T_UINT, FIELD(threads), 1, API_THREADS_MAX, "an integer", NULL, NULL},
    [OPT_MAX_BODY] = {"--max-body-bytes", "CREDWATCH_MAX_BODY_BYTES", "33554432",
     "largest request body accepted (as sent, compressed or not): 413 above",
     T_SIZE, FIELD(max_body), API_MIN_BODY, API_MAX_BODY, "bytes,", NULL, NULL},
    [OPT_MAX_INFLATED] = {"--max-inflated-bytes", "CREDWATCH_MAX_INFLATED_BYTES", "268435456",
     "largest decompressed ingest body: 413 above",
     T_SIZE, FIELD(max_inflated), API_MIN_BODY, API_MAX_INFLATED, "bytes,", NULL, NULL},
    [OPT_INGEST_CHUNK] = {"--ingest-chunk-bytes", "CREDWATCH_INGEST_CHUNK_BYTES", OPT_CHUNK_DEFAULT,
     "decoded events one ingest request holds at once (packed, ~300 B each); a request with more is decoded twice",
     T_SIZE, FIELD(ingest_chunk_bytes), API_MIN_CHUNK_BYTES, API_MAX_CHUNK_BYTES, "bytes,", NULL, NULL},
    [OPT_REDIS_TIMEOUT] = {"--redis-timeout-ms", "CREDWATCH_REDIS_TIMEOUT_MS", "1000",
     "Redis connect and command timeout",
     T_INT, FIELD(redis_timeout_ms), 1, API_MAX_REDIS_TIMEOUT_MS, "milliseconds,", NULL, NULL},
    [OPT_DRAIN] = {"--drain-seconds", "CREDWATCH_DRAIN_SECONDS", "20",
     "on SIGTERM, how long in-flight requests may take to finish",
     T_UINT, FIELD(drain_s), 0, API_MAX_DRAIN_S, "seconds,", NULL, NULL},
    [OPT_CONN_TIMEOUT] = {"--connection-timeout-seconds", "CREDWATCH_CONNECTION_TIMEOUT_S", "75",
     "a connection idle this long (no byte received or sent) is closed; above a load balancer's 60 s",
     T_UINT, FIELD(conn_timeout_s), 1, API_MAX_CONN_TIMEOUT_S, "seconds,", NULL, NULL},
    [OPT_MAX_CONNECTIONS] = {"--max-connections", "CREDWATCH_MAX_CONNECTIONS", "4096",
     "open client connections (lowered to fit the open-file limit); beyond, new ones are closed",
     T_UINT, FIELD(max_connections), API_MIN_CONNECTIONS, API_MAX_CONNECTIONS, "an integer", NULL, NULL},
    [OPT_MAX_INFLIGHT_INGEST] = {"--max-inflight-ingest", "CREDWATCH_MAX_INFLIGHT_INGEST", "(2 x threads)",
     "ingest requests admitted at once (uploading or processing): 503 + Retry-After beyond",
     T_UINT, FIELD(max_inflight_ingest), 1, API_MAX_INFLIGHT_INGEST, "an integer", NULL, NULL},
    [OPT_MAX_INFLIGHT_INGEST_BYTES] = {"--max-inflight-ingest-bytes", "CREDWATCH_MAX_INFLIGHT_INGEST_BYTES",
     "(4 x max body bytes)", "ingest body bytes buffered at once over all requests: 503 + Retry-After beyond",
     T_SIZE, FIELD(max_inflight_bytes), API_MIN_BODY, API_MAX_INFLATED, "bytes,", NULL, NULL},
    [OPT_HEADER_TIMEOUT] = {"--header-timeout-seconds", "CREDWATCH_HEADER_TIMEOUT_S", "10",
     "a new connection must finish its request headers within this (a kept-alive one: idle timeout + this)",
     T_UINT, FIELD(header_timeout_s), 1, API_MAX_CONN_TIMEOUT_S, "seconds,", NULL, NULL},
    [OPT_UPLOAD_TIMEOUT] = {"--upload-timeout-seconds", "CREDWATCH_UPLOAD_TIMEOUT_S", "60",
     "a request body must arrive within this after its headers; slower uploads are cut, freeing their slot",
     T_UINT, FIELD(upload_timeout_s), 1, API_MAX_CONN_TIMEOUT_S, "seconds,", NULL, NULL},
    [OPT_STORE_MAX_BYTES] = {"--store-max-bytes", "CREDWATCH_STORE_MAX_BYTES", "268435456",
     "memory bound of the memory store (CREDWATCH_STORE=memory); at it, keys without findings are evicted (soonest-expiring first)",
     T_HOOK, FIELD(store_max_bytes), 0, 0, NULL, NULL, set_store_bytes},
    [OPT_OUTBOX_CLAIM_MS] = {"--outbox-claim-ms", "CREDWATCH_OUTBOX_CLAIM_MS", "60000",
     "a finding event held this long by an instance without being delivered goes to another (it died)",
     T_UINT, FIELD(outbox_claim_ms), API_MIN_CLAIM_MS, API_MAX_CLAIM_MS, "milliseconds,", NULL, NULL},
    [OPT_CORS_ORIGINS] = {"--cors-origins", "CREDWATCH_CORS_ORIGINS", "(none: no CORS header)",
     "comma-separated origins (http[s]://host[:port]) whose pages may call the read API from a browser",
     T_HOOK, FIELD(cors), 0, 0, NULL, NULL, set_cors_origins},
    /* HTTPS: the files are read and checked at start (api_tls.c), so a bad one stops the start. */
    [OPT_TLS_CERT] = {"--tls-cert", "CREDWATCH_TLS_CERT", "(unset: plain HTTP)",
     "PEM certificate, its chain after it: the listener speaks HTTPS (TLS 1.2+); reread on SIGHUP",
     T_STRING, FIELD(tls.cert), 0, SET_PATH_MAX - 1, NULL, NULL, NULL},
    [OPT_TLS_KEY] = {"--tls-key", "CREDWATCH_TLS_KEY", "(unset)",
     "PEM private key of --tls-cert (PKCS#1, PKCS#8, SEC1; encrypted with the password below); reread on SIGHUP",
     T_STRING, FIELD(tls.key), 0, SET_PATH_MAX - 1, NULL, NULL, NULL},
    /* no flag: a password in argv is readable by every user through ps */
    [OPT_TLS_KEY_PASSWORD] = {NULL, "CREDWATCH_TLS_KEY_PASSWORD", "(unset: the key is not encrypted)",
     "password of an encrypted --tls-key (environment only)",
     T_STRING, FIELD(tls.key_password), 0, API_TLS_PASSWORD_MAX - 1, NULL, NULL, NULL},
    [OPT_TLS_CLIENT_CA] = {"--tls-client-ca", "CREDWATCH_TLS_CLIENT_CA", "(unset: no client certificate asked)",
     "PEM CA certificates: every client must present a certificate they signed (mutual TLS), and a token",
     T_STRING, FIELD(tls.client_ca), 0, SET_PATH_MAX - 1, NULL, NULL, NULL},
    /* TLS to Redis (rediss://): read when the store is made, so a bad file stops the start */
    [OPT_REDIS_CA_FILE] = {"--redis-ca-file", "CREDWATCH_REDIS_CA_FILE", "(the system's CA store)",
     "PEM file of the CA(s) that sign the Redis server's certificate (rediss:// only)",
     T_STRING, FIELD(redis_ca_file), 0, SET_PATH_MAX - 1, NULL, NULL, NULL},
    [OPT_REDIS_CLIENT_CERT] = {"--redis-client-cert", "CREDWATCH_REDIS_CLIENT_CERT", "(none)",
     "PEM client certificate (chain) for a Redis that asks for one (tls-auth-clients yes)",
     T_STRING, FIELD(redis_client_cert), 0, SET_PATH_MAX - 1, NULL, NULL, NULL},
    [OPT_REDIS_CLIENT_KEY] = {"--redis-client-key", "CREDWATCH_REDIS_CLIENT_KEY", "(in the certificate file)",
     "PEM key of the Redis client certificate (not encrypted)",
     T_STRING, FIELD(redis_client_key), 0, SET_PATH_MAX - 1, NULL, NULL, NULL},
};

void api_config_usage(FILE *out)
{
    fprintf(out, "usage: credwatch serve [flags]\n\n"
                 "Each flag overrides the environment variable of the same meaning.\n\n");
    for (size_t i = 0; i < OPT_COUNT; i++)
        fprintf(out, "  %-24s %-32s default %s\n  %24s %s\n", OPTS[i].flag ? OPTS[i].flag : "", OPTS[i].env,
                OPTS[i].def, "", OPTS[i].help);
    fprintf(out, "\nNetwork knowledge, shared with `credwatch scan` (environment only):\n"
                 "  CREDWATCH_AWS_IP_RANGES  path of AWS's ip-ranges.json\n"
                 "  CREDWATCH_ALLOW_CIDRS    CIDR[=label],... never treated as outside (NAT, egress)\n"
                 "  CREDWATCH_ACCOUNTS       the organisation's account ids (VPC endpoint owners)\n"
                 "  CREDWATCH_WORKLOADS      workloads judged: lambda,ecs,ec2,eks,codebuild or all (default all)\n\n");
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

static int set_listen(struct api_config *c, const struct opt *o, const char *v, const char *name, char *msg,
                      size_t msg_size)
{
    (void)o;
    return parse_listen(c, v, msg, msg_size, name);
}

/* The same rules as scan's (settings.c), so the two commands cannot disagree on a bound. */
static int set_store_bytes(struct api_config *c, const struct opt *o, const char *v, const char *name, char *msg,
                           size_t msg_size)
{
    (void)o;
    return set_store_max_bytes(v, name, &c->store_max_bytes, msg, msg_size) ? CW_ECONFIG : CW_OK;
}

/* "durable" or "memory"; "" is the default (durable), as an exported but empty variable means. */
static int set_store_kind(struct api_config *c, const struct opt *o, const char *v, const char *name, char *msg,
                          size_t msg_size)
{
    (void)o;
    c->store_given = *v != '\0';
    if (!*v || strcmp(v, "durable") == 0) {
        c->store_kind = API_STORE_DURABLE;
    } else if (strcmp(v, "memory") == 0) {
        c->store_kind = API_STORE_MEMORY;
    } else {
        snprintf(msg, msg_size, "%s: expected durable or memory, got \"%.40s\"", name, v);
        return CW_ECONFIG;
    }
    return CW_OK;
}

/* Kept as given; the default is resolved once every value is in (resolve_data_dir). */
static int set_data_dir_given(struct api_config *c, const struct opt *o, const char *v, const char *name,
                              char *msg, size_t msg_size)
{
    (void)o;
    if (strlen(v) >= sizeof c->data_dir) {
        snprintf(msg, msg_size, "%s: longer than %zu bytes", name, sizeof c->data_dir - 1);
        return CW_ECONFIG;
    }
    memcpy(c->data_dir, v, strlen(v) + 1);
    return CW_OK;
}

static int set_data_bytes(struct api_config *c, const struct opt *o, const char *v, const char *name, char *msg,
                          size_t msg_size)
{
    (void)o;
    return set_data_max_bytes(v, name, &c->data_max_bytes, msg, msg_size) ? CW_ECONFIG : CW_OK;
}

/* The origins' own rules (api_cors.c): exact origins, no wildcard, no "null", a named bound. */
static int set_cors_origins(struct api_config *c, const struct opt *o, const char *v, const char *name, char *msg,
                            size_t msg_size)
{
    (void)o;
    char why[API_CORS_MSG_MAX];
    if (api_cors_parse(v, &c->cors, why, sizeof why)) {
        snprintf(msg, msg_size, "%s: %s", name, why);
        return CW_ECONFIG;
    }
    return CW_OK;
}

/* A number of o's range, or the message every numeric option gives ("expected seconds, 1-3600"). */
static int parse_number(const struct opt *o, const char *v, const char *name, unsigned long long *n, char *msg,
                        size_t msg_size)
{
    if (parse_uint(v, o->lo, o->hi, n)) {
        snprintf(msg, msg_size, "%s: expected %s %llu-%llu", name, o->expect, o->lo, o->hi);
        return CW_ECONFIG;
    }
    return CW_OK;
}

static int set_int(void *field, const struct opt *o, const char *v, const char *name, char *msg, size_t msg_size)
{
    unsigned long long n;
    int rc = parse_number(o, v, name, &n, msg, msg_size);
    if (rc == CW_OK)
        *(int *)field = (int)n;
    return rc;
}

static int set_unsigned(void *field, const struct opt *o, const char *v, const char *name, char *msg,
                        size_t msg_size)
{
    unsigned long long n;
    int rc = parse_number(o, v, name, &n, msg, msg_size);
    if (rc == CW_OK)
        *(unsigned *)field = (unsigned)n;
    return rc;
}

static int set_size(void *field, const struct opt *o, const char *v, const char *name, char *msg, size_t msg_size)
{
    unsigned long long n;
    int rc = parse_number(o, v, name, &n, msg, msg_size);
    if (rc == CW_OK)
        *(size_t *)field = (size_t)n;
    return rc;
}

/* "" reads as 0, so an exported but empty variable means the default. */
static int set_bool(void *field, const struct opt *o, const char *v, const char *name, char *msg, size_t msg_size)
{
    if (strcmp(v, "1") && strcmp(v, "0") && *v) {
        snprintf(msg, msg_size, "%s: expected %s", name, o->expect);
        return CW_ECONFIG;
    }
    *(int *)field = strcmp(v, "1") == 0;
    return CW_OK;
}

static int set_string(void *field, const struct opt *o, const char *v, const char *name, char *msg,
                      size_t msg_size)
{
    size_t len = strlen(v);
    if (len > o->hi) {
        snprintf(msg, msg_size, "%s: longer than %llu bytes", name, o->hi);
        return CW_ECONFIG;
    }
    if (len && o->prefix && strncmp(v, o->prefix, strlen(o->prefix)) != 0) {
        snprintf(msg, msg_size, "%s: expected %s", name, o->expect);
        return CW_ECONFIG;
    }
    memcpy(field, v, len + 1);
    return CW_OK;
}

static int set_tokens(void *field, const struct opt *o, const char *v, const char *name, char *msg,
                      size_t msg_size)
{
    (void)o;
    char tmsg[160];
    if (api_tokens_parse(v, field, tmsg, sizeof tmsg)) {
        snprintf(msg, msg_size, "%s: %s", name, tmsg);
        return CW_ECONFIG;
    }
    return CW_OK;
}

/* Applies one value (from the environment or a flag); `name` is what the message blames. */
static int set_value(struct api_config *c, const struct opt *o, const char *v, const char *name, char *msg,
                     size_t msg_size)
{
    void *field = (char *)c + o->off;
    switch (o->type) {
    case T_INT:
        return set_int(field, o, v, name, msg, msg_size);
    case T_UINT:
        return set_unsigned(field, o, v, name, msg, msg_size);
    case T_SIZE:
        return set_size(field, o, v, name, msg, msg_size);
    case T_BOOL:
        return set_bool(field, o, v, name, msg, msg_size);
    case T_STRING:
        return set_string(field, o, v, name, msg, msg_size);
    case T_TOKENS:
        return set_tokens(field, o, v, name, msg, msg_size);
    case T_HOOK:
        return o->hook(c, o, v, name, msg, msg_size);
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

/* --help and --print-routes answer without looking at anything else, so they work in any
 * environment (a build step, a broken deployment being debugged). Returns 1 when one is given. */
static int wants_no_config(struct api_config *c, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            c->help = 1;
        else if (strcmp(argv[i], "--print-routes") == 0)
            c->print_routes = 1;
    }
    return c->help || c->print_routes;
}

/* Defaults in the fields' own types. The listen address is the exception: its default is text,
 * preset by read_env, because it must be resolved like a given address. */
static void set_defaults(struct api_config *c)
{
    c->threads = 0;  /* derive_threads: it depends on the store */
    c->max_body = API_DEFAULT_MAX_BODY;
    c->max_inflated = API_DEFAULT_MAX_INFLATED;
    c->ingest_chunk_bytes = ENG_CHUNK_BYTES;
    c->redis_timeout_ms = API_DEFAULT_REDIS_TIMEOUT_MS;
    c->drain_s = API_DEFAULT_DRAIN_S;
    c->conn_timeout_s = API_DEFAULT_CONN_TIMEOUT_S;
    c->header_timeout_s = API_DEFAULT_HEADER_TIMEOUT_S;
    c->store_max_bytes = STORE_MEM_DEFAULT_BYTES;
    c->upload_timeout_s = API_DEFAULT_UPLOAD_TIMEOUT_S;
    c->max_connections = API_DEFAULT_CONNECTIONS;
    c->outbox_claim_ms = STORE_OUT_CLAIM_MS;
    c->store_kind = API_STORE_DURABLE;
    c->data_max_bytes = STORE_DURABLE_DEFAULT_BYTES;
}

/* values[i] / names[i]: the text given for option i and what a message about it blames. */
static void read_env(api_env_fn env, const char **values, const char **names)
{
    values[OPT_LISTEN] = API_DEFAULT_LISTEN;
    names[OPT_LISTEN] = OPTS[OPT_LISTEN].env;
    for (size_t i = 0; i < OPT_COUNT; i++) {
        const char *v = env ? env(OPTS[i].env) : NULL;
        if (v) {
            values[i] = v;
            names[i] = OPTS[i].env;
        }
    }
}

/* The option a flag names ("--x" or "--x=value"); OPT_COUNT when none. */
static size_t find_flag(const char *a)
{
    size_t k;
    for (k = 0; k < OPT_COUNT; k++) {
        if (!OPTS[k].flag)
            continue;  /* environment only */
        size_t fl = strlen(OPTS[k].flag);
        if (strncmp(a, OPTS[k].flag, fl) == 0 && (a[fl] == '\0' || a[fl] == '='))
            break;
    }
    return k;
}

/* Flags override the environment: "--x=value", "--x value", or a bare boolean "--x". */
static int read_flags(int argc, char **argv, const char **values, const char **names, char *msg, size_t msg_size)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        size_t k = find_flag(a);
        if (k == OPT_COUNT) {
            snprintf(msg, msg_size, "unknown argument \"%.64s\" (see --help)", a);
            return CW_ECONFIG;
        }
        const char *eq = strchr(a, '=');
        if (eq) {
            values[k] = eq + 1;
        } else if (OPTS[k].type == T_BOOL) {
            values[k] = "1";
        } else if (i + 1 < argc) {
            values[k] = argv[++i];
        } else {
            snprintf(msg, msg_size, "%s: missing value", OPTS[k].flag);
            return CW_ECONFIG;
        }
        names[k] = OPTS[k].flag;
    }
    return CW_OK;
}

static int set_values(struct api_config *c, const char **values, const char **names, char *msg, size_t msg_size)
{
    for (size_t i = 0; i < OPT_COUNT; i++) {
        if (!values[i])
            continue;
        int rc = set_value(c, &OPTS[i], values[i], names[i], msg, msg_size);
        if (rc)
            return rc;
    }
    return CW_OK;
}

/* The HTTP threads when CREDWATCH_THREADS is unset. A thread holds its request until the store has
 * answered; on the durable store that answer waits for a commit's fsync, and requests only share a
 * commit (group commit) when several are waiting at once. With as many threads as CPUs (2 here),
 * at most 2 requests share one, and single events pay an fsync each (measured by
 * tests/bench_store.sh: 1.0 syncs per request with 2 threads, 0.19 with 16). The memory and Redis
 * stores answer without a disk wait: one thread per CPU keeps them busy. */
static void derive_threads(struct api_config *c)
{
    if (c->threads)
        return;
    unsigned n = cpu_count();
    int durable = !c->redis_url[0] && !c->redis_cluster[0] && c->store_kind == API_STORE_DURABLE;
    if (durable)
        n = n * API_DURABLE_THREADS_PER_CPU < API_DURABLE_THREADS_MIN ? API_DURABLE_THREADS_MIN
                                                                      : n * API_DURABLE_THREADS_PER_CPU;
    c->threads = n > API_THREADS_MAX ? API_THREADS_MAX : n;
}

/* Admission defaults follow the thread count and the body cap: two ingests per thread keep
 * every thread busy (one processing, one uploading) without queueing work no thread will
 * reach before the senders' 5 s deadline. */
static void derive_admission(struct api_config *c)
{
    if (!c->max_inflight_ingest)
        c->max_inflight_ingest = 2 * c->threads;
    if (!c->max_inflight_bytes)
        c->max_inflight_bytes = API_INFLIGHT_BODIES * c->max_body;
}

/* HTTPS needs both files, and the password and the client CA mean nothing without them: a half
 * configuration would otherwise start plain HTTP, or ignore a setting the operator believes applies. */
static int check_tls(const struct api_config *c, char *msg, size_t msg_size)
{
    const struct api_tls_files *t = &c->tls;
    if (t->cert[0] && !t->key[0]) {
        snprintf(msg, msg_size, "CREDWATCH_TLS_KEY: unset while CREDWATCH_TLS_CERT is set; HTTPS needs both");
        return CW_ECONFIG;
    }
    if (t->key[0] && !t->cert[0]) {
        snprintf(msg, msg_size, "CREDWATCH_TLS_CERT: unset while CREDWATCH_TLS_KEY is set; HTTPS needs both");
        return CW_ECONFIG;
    }
    if (!t->cert[0] && (t->key_password[0] || t->client_ca[0])) {
        snprintf(msg, msg_size, "%s: set without CREDWATCH_TLS_CERT and CREDWATCH_TLS_KEY (plain HTTP)",
                 t->client_ca[0] ? "CREDWATCH_TLS_CLIENT_CA" : "CREDWATCH_TLS_KEY_PASSWORD");
        return CW_ECONFIG;
    }
    return CW_OK;
}

/* The rules between options, once every value is in place. */
static int check_whole(const struct api_config *c, char *msg, size_t msg_size)
{
    if (c->max_inflight_bytes < c->max_body) {
        snprintf(msg, msg_size, "CREDWATCH_MAX_INFLIGHT_INGEST_BYTES: %zu is below the body cap %zu: no large "
                 "body could ever be admitted", c->max_inflight_bytes, c->max_body);
        goto fail;
    }
    if (c->redis_url[0] && c->redis_cluster[0]) {
        snprintf(msg, msg_size, "CREDWATCH_REDIS_CLUSTER: set either it or CREDWATCH_REDIS_URL, not both");
        goto fail;
    }
    if (check_tls(c, msg, msg_size))
        goto fail;
    /* Two choices of store would leave one silently ignored: say which to drop. (CREDWATCH_DATA_DIR
     * beside Redis is not refused: the container image sets it for every deployment.) */
    if (c->store_given && (c->redis_url[0] || c->redis_cluster[0])) {
        const char *redis = c->redis_url[0] ? "CREDWATCH_REDIS_URL" : "CREDWATCH_REDIS_CLUSTER";
        snprintf(msg, msg_size, "CREDWATCH_STORE and %s: both choose the store; unset CREDWATCH_STORE to use "
                 "Redis, or %s to use the embedded %s store", redis, redis,
                 c->store_kind == API_STORE_MEMORY ? "memory" : "durable");
        goto fail;
    }
    /* A token has one role: one listed for both would let a forwarder read findings, or a
     * dashboard post records (issue: a leaked ingest token may not reach analysts' data). */
    for (size_t i = 0; i < c->ingest.n; i++) {
        if (api_tokens_match(&c->read, c->ingest.tok[i])) {
            snprintf(msg, msg_size, "CREDWATCH_INGEST_TOKENS and CREDWATCH_READ_TOKENS: token %zu of the ingest "
                     "tokens is also a read token; give each role its own tokens", i + 1);
            goto fail;
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
        goto fail;
    }
    return CW_OK;
fail:
    return CW_ECONFIG;
}

/* The durable store's directory when it is the store: the given one, or the default of
 * set_data_dir ($STATE_DIRECTORY, then SET_DATA_DIR_SYSTEM, then SET_DATA_DIR_LOCAL). */
static int resolve_data_dir(struct api_config *c, api_env_fn env, char *msg, size_t msg_size)
{
    if (c->redis_url[0] || c->redis_cluster[0] || c->store_kind != API_STORE_DURABLE)
        return CW_OK;
    char given[SET_PATH_MAX];
    memcpy(given, c->data_dir, sizeof given);
    const char *state_dir = env ? env("STATE_DIRECTORY") : NULL;
    if (set_data_dir(given, state_dir, SET_DATA_DIR_SYSTEM, c->data_dir, sizeof c->data_dir, &c->data_dir_from,
                     msg, msg_size))
        return CW_ECONFIG;
    return CW_OK;
}

int api_config_load(struct api_config *c, int argc, char **argv, api_env_fn env, char *msg, size_t msg_size)
{
    memset(c, 0, sizeof *c);
    msg[0] = '\0';
    if (wants_no_config(c, argc, argv))
        return CW_OK;
    set_defaults(c);
    const char *values[OPT_COUNT] = {0};
    const char *names[OPT_COUNT] = {0};
    read_env(env, values, names);
    int rc = read_flags(argc, argv, values, names, msg, msg_size);
    if (rc == CW_OK)
        rc = set_values(c, values, names, msg, msg_size);
    if (rc == CW_OK) {
        derive_threads(c);
        derive_admission(c);
        rc = check_whole(c, msg, msg_size);
    }
    if (rc == CW_OK)
        rc = resolve_data_dir(c, env, msg, msg_size);
    return rc;
}
