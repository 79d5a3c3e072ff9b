/* redis_conn.c — batches of commands to one Redis or a Redis Cluster (see redis_conn.h). */
#include "redis_conn.h"
#include "cw.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RCONN_BACKOFF_MIN_MS 100   /* first reconnect delay of a failed node */
#define RCONN_BACKOFF_MAX_MS 2000
#define RCONN_TRYAGAIN_MS 20       /* wait before resending after TRYAGAIN / CLUSTERDOWN */
#define RCONN_NO_NODE 0xffff

struct node {
    struct rconn_addr addr;
    redisContext *ctx;
    uint64_t seen_epoch;           /* the address's answer epoch when this connection last heard it */
    int backoff_ms;
    uint32_t scripts_loaded;       /* bit per script known to be loaded on this node */
};

struct rconn {
    struct rconn_config cfg;
    struct node nodes[RCONN_NODES_MAX];
    size_t n_nodes;
    uint16_t *slots;               /* cluster: node index per slot, RCONN_NO_NODE unknown */
    int map_stale;
    const char *scripts[RCONN_SCRIPTS_MAX];
    char shas[RCONN_SCRIPTS_MAX][41];
    size_t n_scripts;
    char err[RCONN_MSG_MAX];       /* why the last batch failed, for logs and /readyz; "" none */
};

/* Remembers the first reason of this batch's failure (the later ones are its consequences). */
static void set_err(struct rconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct rconn *c, const char *fmt, ...)
{
    if (c->err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

const char *rconn_error(const struct rconn *c) { return c->err; }

struct cmd {
    char *buf;                     /* formatted RESP */
    size_t len;
    unsigned slot;                 /* RCONN_SLOTS = any node */
    int script;                    /* EVALSHA of this script, or -1 */
    redisReply *reply;
    int node;                      /* where it goes next */
    int asking;                    /* resend with ASKING first */
};

struct rconn_batch {
    struct cmd *cmds;
    size_t n, cap;
};

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

/* ---- slots ------------------------------------------------------------------------------------ */

static uint16_t crc16(const char *p, size_t n)
{
    uint16_t crc = 0;  /* CRC16-XMODEM: poly 0x1021, init 0, as the cluster specification says */
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)((uint8_t)p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? (uint16_t)(crc << 1 ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

unsigned rconn_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        const char *close = memchr(open + 1, '}', len - (size_t)(open + 1 - key));
        if (close && close > open + 1)
            return crc16(open + 1, (size_t)(close - open - 1)) % RCONN_SLOTS;
    }
    return crc16(key, len) % RCONN_SLOTS;
}

/* ---- configuration ------------------------------------------------------------------------------- */

static int pct_decode(const char *s, size_t n, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            char hex[3] = { s[i + 1], s[i + 2], 0 };
            char *end;
            long v = strtol(hex, &end, 16);
            if (*end || v <= 0)
                return -1;
            ch = (char)v;
            i += 2;
        }
        if (o + 1 >= size)
            return -1;
        out[o++] = ch;
    }
    out[o] = 0;
    return 0;
}

/* "host:port" or "[v6]:port" of length n. */
static int parse_hostport(const char *p, size_t n, struct rconn_addr *a, int default_port, char *msg, size_t msg_size)
{
    const char *colon;
    a->port = default_port;
    if (n && p[0] == '[') {
        const char *close = memchr(p, ']', n);
        if (!close) {
            snprintf(msg, msg_size, "unterminated [IPv6] host");
            return -1;
        }
        snprintf(a->host, sizeof a->host, "%.*s", (int)(close - p - 1), p + 1);
        colon = close + 1 < p + n && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(p, ':', n);
        size_t hl = colon ? (size_t)(colon - p) : n;
        if (hl == 0 || hl >= sizeof a->host) {
            snprintf(msg, msg_size, "missing or too long host in \"%.*s\"", (int)(n > 60 ? 60 : n), p);
            return -1;
        }
        snprintf(a->host, sizeof a->host, "%.*s", (int)hl, p);
    }
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end != p + n || port < 1 || port > 65535) {
            snprintf(msg, msg_size, "invalid port in \"%.*s\"", (int)(n > 60 ? 60 : n), p);
            return -1;
        }
        a->port = (int)port;
    }
    return 0;
}

/* Optional "redis://" and "user:password@"; returns the rest. */
static const char *parse_prefix(const char *s, struct rconn_config *cfg, char *msg, size_t msg_size, int *bad)
{
    static const char scheme[] = "redis://";
    *bad = 0;
    if (strncmp(s, scheme, sizeof scheme - 1) == 0)
        s += sizeof scheme - 1;
    else if (strstr(s, "://")) {
        snprintf(msg, msg_size, "must start with redis:// (TLS rediss:// is not supported by this build)");
        *bad = 1;
        return s;
    }
    const char *at = strrchr(s, '@');
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        const char *pw = colon ? colon + 1 : s;
        if ((colon && pct_decode(s, (size_t)(colon - s), cfg->user, sizeof cfg->user)) ||
            pct_decode(pw, (size_t)(at - pw), cfg->password, sizeof cfg->password)) {
            snprintf(msg, msg_size, "invalid user name or password (percent-encode special characters)");
            *bad = 1;
        }
        s = at + 1;
    }
    return s;
}

int rconn_parse_url(const char *url, struct rconn_config *cfg, char *msg, size_t msg_size)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->timeout_ms = 1000;
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(msg, msg_size, "must start with redis:// (TLS rediss:// is not supported by this build)");
        return -1;
    }
    int bad;
    const char *p = parse_prefix(url, cfg, msg, msg_size, &bad);
    if (bad)
        return -1;
    const char *slash = strchr(p, '/');
    size_t hp = slash ? (size_t)(slash - p) : strlen(p);
    if (parse_hostport(p, hp, &cfg->seeds[0], 6379, msg, msg_size))
        return -1;
    cfg->n_seeds = 1;
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end || db < 0 || db > 1000) {
            snprintf(msg, msg_size, "invalid database number");
            return -1;
        }
        cfg->db = (int)db;
    }
    return 0;
}

int rconn_parse_cluster(const char *seeds, struct rconn_config *cfg, char *msg, size_t msg_size)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->timeout_ms = 1000;
    cfg->cluster = 1;
    int bad;
    const char *p = parse_prefix(seeds, cfg, msg, msg_size, &bad);
    if (bad)
        return -1;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n) {
            if (cfg->n_seeds == RCONN_SEEDS_MAX) {
                snprintf(msg, msg_size, "more than %d seed nodes", RCONN_SEEDS_MAX);
                return -1;
            }
            if (parse_hostport(p, n, &cfg->seeds[cfg->n_seeds], 6379, msg, msg_size))
                return -1;
            cfg->n_seeds++;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    if (!cfg->n_seeds) {
        snprintf(msg, msg_size, "no seed node (host:port,host:port,...)");
        return -1;
    }
    return 0;
}

/* ---- connections ------------------------------------------------------------------------------ */

struct rconn *rconn_new(const struct rconn_config *cfg)
{
    struct rconn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->cfg = *cfg;
    if (cfg->cluster) {
        c->slots = malloc(RCONN_SLOTS * sizeof *c->slots);
        if (!c->slots) {
            free(c);
            return NULL;
        }
        for (size_t i = 0; i < RCONN_SLOTS; i++)
            c->slots[i] = RCONN_NO_NODE;
        c->map_stale = 1;
    }
    for (size_t i = 0; i < cfg->n_seeds && i < RCONN_NODES_MAX; i++)
        c->nodes[c->n_nodes++].addr = cfg->seeds[i];
    return c;
}

struct rconn *rconn_clone(const struct rconn *src)
{
    struct rconn *c = rconn_new(&src->cfg);
    if (!c)
        return NULL;
    for (size_t i = 0; i < src->n_scripts; i++)
        c->scripts[c->n_scripts++] = src->scripts[i];
    return c;
}

void rconn_free(struct rconn *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].ctx)
            redisFree(c->nodes[i].ctx);
    free(c->slots);
    free(c);
}

int rconn_script(struct rconn *c, const char *source)
{
    if (c->n_scripts == RCONN_SCRIPTS_MAX)
        return -1;
    c->scripts[c->n_scripts] = source;
    return (int)c->n_scripts++;
}

/* Every worker thread has its own connection, but what an address is going through is shared:
 *  - its answer epoch advances when any connection hears from it after a failure, so connections
 *    in backoff retry at once after Redis comes back (otherwise /readyz says ready while other
 *    workers still answer 503 until their own backoff ends);
 *  - its quiet time is shared, and one connection at a time claims a probe, so a hung node (a
 *    stopped master still accepts TCP connections) costs one worker one command timeout per probe,
 *    not every worker a timeout each; requests for its slots answer 503 at once meanwhile. */
#define RCONN_EPOCHS_MAX 256
static pthread_mutex_t epochs_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    struct rconn_addr addr;
    uint64_t epoch;
    int64_t quiet_until_ms;        /* no new connection before this (backoff, or a probe running) */
    char why[RCONN_MSG_MAX];       /* why the last attempt failed: told by every connection in backoff */
} epochs[RCONN_EPOCHS_MAX];
static size_t n_epochs;

/* The address's entry (created on first use), or -1 when the table is full. Under epochs_mu. */
static int addr_entry(const struct rconn_addr *a)
{
    size_t i;
    for (i = 0; i < n_epochs; i++)
        if (epochs[i].addr.port == a->port && strcmp(epochs[i].addr.host, a->host) == 0)
            return (int)i;
    if (n_epochs == RCONN_EPOCHS_MAX)
        return -1;
    epochs[i].addr = *a;
    epochs[i].epoch = 0;
    epochs[i].quiet_until_ms = 0;
    epochs[i].why[0] = '\0';
    n_epochs++;
    return (int)i;
}

/* The address's epoch, advanced by one when `bump`; 0 when the table is full (no shortcut). */
static uint64_t addr_epoch(const struct rconn_addr *a, int bump)
{
    uint64_t e = 0;
    pthread_mutex_lock(&epochs_mu);
    int i = addr_entry(a);
    if (i >= 0) {
        if (bump) {
            epochs[i].epoch++;
            epochs[i].quiet_until_ms = 0;
        }
        e = epochs[i].epoch;
    }
    pthread_mutex_unlock(&epochs_mu);
    return e;
}

/* May this connection (which last heard `seen` from the address) connect now? Yes when another
 * connection heard from it since; no while it is quiet; else yes, and the probe is claimed for
 * probe_ms so that the other connections wait for its outcome. */
static int addr_may_try(const struct rconn_addr *a, uint64_t seen, int64_t now, int64_t probe_ms)
{
    int ok = 1;
    pthread_mutex_lock(&epochs_mu);
    int i = addr_entry(a);
    /* quiet_until 0: no failure since the last answer, so nothing to wait for or claim (many
     * workers connecting at start must not turn each other away) */
    if (i >= 0 && epochs[i].epoch == seen && epochs[i].quiet_until_ms) {
        if (now < epochs[i].quiet_until_ms)
            ok = 0;
        else
            epochs[i].quiet_until_ms = now + probe_ms;
    }
    pthread_mutex_unlock(&epochs_mu);
    return ok;
}

/* The address's last failure, in words: set by the connection that met it, read by the others. */
static void addr_why_set(const struct rconn_addr *a, const char *why)
{
    pthread_mutex_lock(&epochs_mu);
    int i = addr_entry(a);
    if (i >= 0)
        snprintf(epochs[i].why, sizeof epochs[i].why, "%s", why);
    pthread_mutex_unlock(&epochs_mu);
}

static void addr_why_get(const struct rconn_addr *a, char *out, size_t size)
{
    pthread_mutex_lock(&epochs_mu);
    int i = addr_entry(a);
    snprintf(out, size, "%s", i >= 0 && epochs[i].why[0] ? epochs[i].why : "it failed recently");
    pthread_mutex_unlock(&epochs_mu);
}

static void addr_quiet(const struct rconn_addr *a, int64_t until)
{
    pthread_mutex_lock(&epochs_mu);
    int i = addr_entry(a);
    if (i >= 0)
        epochs[i].quiet_until_ms = until;
    pthread_mutex_unlock(&epochs_mu);
}

static void node_drop(struct rconn *c, struct node *n)
{
    if (n->ctx)
        redisFree(n->ctx);
    n->ctx = NULL;
    n->scripts_loaded = 0;
    n->backoff_ms = n->backoff_ms ? n->backoff_ms * 2 : RCONN_BACKOFF_MIN_MS;
    if (n->backoff_ms > RCONN_BACKOFF_MAX_MS)
        n->backoff_ms = RCONN_BACKOFF_MAX_MS;
    n->seen_epoch = addr_epoch(&n->addr, 0);  /* only answers heard after this failure cut the wait */
    addr_quiet(&n->addr, cw_mono_ms() + n->backoff_ms);  /* every connection waits, not just this one */
    if (c->cfg.cluster)
        c->map_stale = 1;  /* a failed master may have been replaced */
}

static int reply_ok(redisReply *r)
{
    int ok = r && r->type != REDIS_REPLY_ERROR;
    if (r)
        freeReplyObject(r);
    return ok;
}

/* reply_ok, naming the refusal: "AUTH refused by host:port: WRONGPASS invalid username-password
 * pair", "SELECT refused by ...: ERR DB index is out of range", or the connection's error. */
static int reply_error(struct rconn *c, redisReply *r, const char *what, struct node *n)
{
    char why[RCONN_MSG_MAX] = "";
    if (r && r->type == REDIS_REPLY_ERROR)
        snprintf(why, sizeof why, "%s refused by %s:%d: %.160s", what, n->addr.host, n->addr.port, r->str);
    else if (!r)
        snprintf(why, sizeof why, "%s: no answer from %s:%d: %s", what, n->addr.host, n->addr.port,
                 n->ctx && n->ctx->errstr[0] ? n->ctx->errstr : "connection lost");
    if (why[0]) {
        set_err(c, "%s", why);
        addr_why_set(&n->addr, why);
    }
    return reply_ok(r);
}

/* A live context to node i, or NULL (during its backoff, without trying). */
static redisContext *node_ctx(struct rconn *c, size_t i)
{
    struct node *n = &c->nodes[i];
    if (n->ctx)
        return n->ctx;
    if (!addr_may_try(&n->addr, n->seen_epoch, cw_mono_ms(), (int64_t)c->cfg.timeout_ms + RCONN_BACKOFF_MIN_MS)) {
        char why[RCONN_MSG_MAX];
        addr_why_get(&n->addr, why, sizeof why);
        set_err(c, "%s (%s:%d, waiting to retry)", why, n->addr.host, n->addr.port);
        return NULL;
    }
    struct timeval tv = { c->cfg.timeout_ms / 1000, (c->cfg.timeout_ms % 1000) * 1000 };
    n->ctx = redisConnectWithTimeout(n->addr.host, n->addr.port, tv);
    if (!n->ctx || n->ctx->err) {
        char why[RCONN_MSG_MAX];
        snprintf(why, sizeof why, "cannot connect to %s:%d: %s", n->addr.host, n->addr.port,
                 n->ctx ? n->ctx->errstr : "out of memory");
        set_err(c, "%s", why);
        addr_why_set(&n->addr, why);
        node_drop(c, n);
        return NULL;
    }
    redisSetTimeout(n->ctx, tv);  /* the connect timeout does not cover commands */
    if (c->cfg.password[0]) {
        redisReply *r = c->cfg.user[0] ? redisCommand(n->ctx, "AUTH %s %s", c->cfg.user, c->cfg.password)
                                       : redisCommand(n->ctx, "AUTH %s", c->cfg.password);
        if (!reply_error(c, r, "AUTH", n)) {
            node_drop(c, n);
            return NULL;
        }
    }
    if (!c->cfg.cluster && c->cfg.db && !reply_error(c, redisCommand(n->ctx, "SELECT %d", c->cfg.db), "SELECT", n)) {
        node_drop(c, n);
        return NULL;
    }
    /* the backoff is reset by the first reply (node_answered), not here: a hung node (SIGSTOP,
     * overloaded) still accepts TCP connections in the kernel, and resetting on connect kept its
     * backoff at the minimum, so every thread paid the full command timeout every ~100 ms */
    return n->ctx;
}

/* Node i answered: its next failure starts the backoff from the minimum again. */
static void node_answered(struct rconn *c, size_t i)
{
    struct node *n = &c->nodes[i];
    if (n->backoff_ms || !n->seen_epoch)  /* after a failure, or first contact: tell the others */
        n->seen_epoch = addr_epoch(&n->addr, 1);
    n->backoff_ms = 0;
}

static int load_scripts(struct rconn *c, size_t i)
{
    struct node *n = &c->nodes[i];
    for (size_t s = 0; s < c->n_scripts; s++) {
        if (n->scripts_loaded & (1u << s))
            continue;
        redisReply *r = redisCommand(n->ctx, "SCRIPT LOAD %s", c->scripts[s]);
        if (!r) {
            node_drop(c, n);
            return CW_EUNAVAIL;
        }
        int ok = r->type == REDIS_REPLY_STRING && r->len == 40;
        if (ok)
            memcpy(c->shas[s], r->str, 41);
        else
            set_err(c, "SCRIPT LOAD refused by %s:%d: %.160s", n->addr.host, n->addr.port,
                    r->type == REDIS_REPLY_ERROR ? r->str : "an unexpected reply");
        freeReplyObject(r);
        if (!ok)
            return CW_EUNAVAIL;
        n->scripts_loaded |= 1u << s;
    }
    return 0;
}

static int node_find_or_add(struct rconn *c, const char *host, int port)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].addr.port == port && strcmp(c->nodes[i].addr.host, host) == 0)
            return (int)i;
    if (c->n_nodes == RCONN_NODES_MAX)
        return -1;
    struct node *n = &c->nodes[c->n_nodes];
    memset(n, 0, sizeof *n);
    snprintf(n->addr.host, sizeof n->addr.host, "%s", host);
    n->addr.port = port;
    return (int)c->n_nodes++;
}

/* Learns the slot map from any reachable node (known nodes first, then the seeds). */
static int refresh_map(struct rconn *c)
{
    for (size_t i = 0; i < c->n_nodes; i++) {
        redisContext *ctx = node_ctx(c, i);
        if (!ctx)
            continue;
        redisReply *r = redisCommand(ctx, "CLUSTER SLOTS");
        if (!r) {
            node_drop(c, &c->nodes[i]);
            continue;
        }
        node_answered(c, i);
        if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
            freeReplyObject(r);
            continue;
        }
        for (size_t s = 0; s < RCONN_SLOTS; s++)
            c->slots[s] = RCONN_NO_NODE;
        for (size_t e = 0; e < r->elements; e++) {
            redisReply *range = r->element[e];
            if (range->type != REDIS_REPLY_ARRAY || range->elements < 3)
                continue;
            redisReply *master = range->element[2];
            if (master->type != REDIS_REPLY_ARRAY || master->elements < 2 ||
                master->element[0]->type != REDIS_REPLY_STRING || master->element[1]->type != REDIS_REPLY_INTEGER)
                continue;
            const char *host = master->element[0]->len ? master->element[0]->str : c->nodes[i].addr.host;
            int idx = node_find_or_add(c, host, (int)master->element[1]->integer);
            long long lo = range->element[0]->integer, hi = range->element[1]->integer;
            if (idx < 0 || lo < 0 || hi >= RCONN_SLOTS || lo > hi)
                continue;
            for (long long s = lo; s <= hi; s++)
                c->slots[s] = (uint16_t)idx;
        }
        freeReplyObject(r);
        c->map_stale = 0;
        return 0;
    }
    return CW_EUNAVAIL;
}

/* ---- batches ---------------------------------------------------------------------------------- */

struct rconn_batch *rconn_batch_new(void)
{
    return calloc(1, sizeof(struct rconn_batch));
}

void rconn_batch_reset(struct rconn_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->cmds[i].buf);
        if (b->cmds[i].reply)
            freeReplyObject(b->cmds[i].reply);
    }
    b->n = 0;
}

void rconn_batch_free(struct rconn_batch *b)
{
    if (!b)
        return;
    rconn_batch_reset(b);
    free(b->cmds);
    free(b);
}

static int push_cmd(struct rconn_batch *b, const char *key, char *buf, int len, int script)
{
    if (len < 0 || !buf)
        return -1;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        struct cmd *nc = realloc(b->cmds, cap * sizeof *nc);
        if (!nc) {
            free(buf);
            return -1;
        }
        b->cmds = nc;
        b->cap = cap;
    }
    struct cmd *c = &b->cmds[b->n];
    memset(c, 0, sizeof *c);
    c->buf = buf;
    c->len = (size_t)len;
    c->slot = key ? rconn_key_slot(key, strlen(key)) : RCONN_SLOTS;
    c->script = script;
    return (int)b->n++;
}

int rconn_batch_add(struct rconn_batch *b, const char *key, const char *fmt, ...)
{
    char *buf = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&buf, fmt, ap);
    va_end(ap);
    return push_cmd(b, key, buf, len, -1);
}

int rconn_batch_add_argv(struct rconn_batch *b, const char *key, int argc, const char **argv, const size_t *lens)
{
    char *buf = NULL;
    int len = redisFormatCommandArgv(&buf, argc, argv, lens);
    return push_cmd(b, key, buf, len, -1);
}

/* EVALSHA's SHA is filled in at send time (it is known once a node loaded the script), so the
 * command is stored with a placeholder of the same length. */
#define SHA_PLACEHOLDER "0000000000000000000000000000000000000000"

int rconn_batch_eval(struct rconn_batch *b, int script, int nkeys, const char **keys, int nargs, const char **args,
                     const size_t *arg_lens)
{
    int argc = 3 + nkeys + nargs;
    const char **argv = malloc((size_t)argc * sizeof *argv);
    size_t *lens = malloc((size_t)argc * sizeof *lens);
    char nk[16];
    if (!argv || !lens) {
        free(argv);
        free(lens);
        return -1;
    }
    snprintf(nk, sizeof nk, "%d", nkeys);
    int a = 0;
    argv[a] = "EVALSHA", lens[a++] = 7;
    argv[a] = SHA_PLACEHOLDER, lens[a++] = 40;
    argv[a] = nk, lens[a++] = strlen(nk);
    for (int i = 0; i < nkeys; i++)
        argv[a] = keys[i], lens[a++] = strlen(keys[i]);
    for (int i = 0; i < nargs; i++)
        argv[a] = args[i], lens[a++] = arg_lens ? arg_lens[i] : strlen(args[i]);
    char *buf = NULL;
    int len = redisFormatCommandArgv(&buf, argc, argv, lens);
    free(argv);
    free(lens);
    return push_cmd(b, nkeys ? keys[0] : NULL, buf, len, script);
}

size_t rconn_batch_size(const struct rconn_batch *b)
{
    return b->n;
}

redisReply *rconn_batch_reply(const struct rconn_batch *b, size_t i)
{
    return i < b->n ? b->cmds[i].reply : NULL;
}

/* Writes the script's SHA into an EVALSHA command ("*N\r\n$7\r\nEVALSHA\r\n$40\r\n<sha>"). */
static void fill_sha(struct rconn *c, struct cmd *m)
{
    char *p = strstr(m->buf, "\r\n$40\r\n");
    if (p)
        memcpy(p + 7, c->shas[m->script], 40);
}

/* Redirection of an error reply: 'M' MOVED, 'A' ASK, 'T' TRYAGAIN/CLUSTERDOWN, 'N' NOSCRIPT, 0. */
static int redirect_kind(const redisReply *r, unsigned *slot, char *host, size_t host_size, int *port)
{
    if (!r || r->type != REDIS_REPLY_ERROR)
        return 0;
    if (strncmp(r->str, "NOSCRIPT", 8) == 0)
        return 'N';
    if (strncmp(r->str, "TRYAGAIN", 8) == 0 || strncmp(r->str, "CLUSTERDOWN", 11) == 0)
        return 'T';
    int moved = strncmp(r->str, "MOVED ", 6) == 0, ask = strncmp(r->str, "ASK ", 4) == 0;
    if (!moved && !ask)
        return 0;
    const char *p = r->str + (moved ? 6 : 4);
    char *end;
    unsigned long s = strtoul(p, &end, 10);
    if (*end != ' ' || s >= RCONN_SLOTS)
        return 0;
    const char *hp = end + 1, *colon = strrchr(hp, ':');
    if (!colon || (size_t)(colon - hp) >= host_size)
        return 0;
    snprintf(host, host_size, "%.*s", (int)(colon - hp), hp);
    *port = (int)strtol(colon + 1, NULL, 10);
    *slot = (unsigned)s;
    return moved ? 'M' : 'A';
}

static int route(struct rconn *c, struct cmd *m)
{
    if (!c->cfg.cluster)
        return 0;
    if (m->slot == RCONN_SLOTS)
        return c->slots[0] == RCONN_NO_NODE ? 0 : c->slots[0];
    return c->slots[m->slot] == RCONN_NO_NODE ? -1 : c->slots[m->slot];
}

/* Sends every pending command of node i as one pipeline and reads the replies. */
static int exec_node(struct rconn *c, struct rconn_batch *b, size_t i, const uint8_t *pending)
{
    redisContext *ctx = node_ctx(c, i);
    if (!ctx)
        return CW_EUNAVAIL;
    if (load_scripts(c, i))
        return CW_EUNAVAIL;
    size_t sent = 0;
    for (size_t k = 0; k < b->n; k++) {
        struct cmd *m = &b->cmds[k];
        if (!pending[k] || m->node != (int)i)
            continue;
        if (m->script >= 0)
            fill_sha(c, m);
        if (m->asking)
            redisAppendCommand(ctx, "ASKING");
        redisAppendFormattedCommand(ctx, m->buf, m->len);
        sent++;
    }
    for (size_t k = 0; k < b->n && sent; k++) {
        struct cmd *m = &b->cmds[k];
        if (!pending[k] || m->node != (int)i)
            continue;
        void *r = NULL;
        if (m->asking) {
            if (redisGetReply(ctx, &r) != REDIS_OK) {
                node_drop(c, &c->nodes[i]);
                return CW_EUNAVAIL;
            }
            freeReplyObject(r);
            r = NULL;
        }
        if (redisGetReply(ctx, &r) != REDIS_OK || !r) {
            char why[RCONN_MSG_MAX];
            snprintf(why, sizeof why, "no answer from %s:%d: %s", c->nodes[i].addr.host, c->nodes[i].addr.port,
                     ctx->errstr[0] ? ctx->errstr : "connection lost");
            set_err(c, "%s", why);
            addr_why_set(&c->nodes[i].addr, why);
            node_drop(c, &c->nodes[i]);
            return CW_EUNAVAIL;
        }
        if (m->reply)
            freeReplyObject(m->reply);
        m->reply = r;
        m->asking = 0;
    }
    node_answered(c, i);
    return 0;
}

int rconn_batch_exec(struct rconn *c, struct rconn_batch *b)
{
    c->err[0] = '\0';
    if (!b->n)
        return 0;
    uint8_t *pending = malloc(b->n);
    if (!pending)
        return CW_EUNAVAIL;
    memset(pending, 1, b->n);
    int rc = 0;
    for (int round = 0; round <= RCONN_REDIRECTS_MAX; round++) {
        if (c->cfg.cluster && c->map_stale && refresh_map(c)) {
            rc = CW_EUNAVAIL;
            break;
        }
        size_t left = 0;
        for (size_t k = 0; k < b->n; k++) {
            if (!pending[k])
                continue;
            if (!b->cmds[k].asking)
                b->cmds[k].node = route(c, &b->cmds[k]);
            if (b->cmds[k].node < 0) {
                c->map_stale = 1;  /* a slot nobody serves: the cluster is changing or down */
                rc = CW_EUNAVAIL;
                goto out;
            }
            left++;
        }
        if (!left)
            break;
        /* one pipeline per node that has work */
        for (size_t i = 0; i < c->n_nodes; i++) {
            int has = 0;
            for (size_t k = 0; k < b->n && !has; k++)
                has = pending[k] && b->cmds[k].node == (int)i;
            if (has && (rc = exec_node(c, b, i, pending)))
                goto out;
        }
        /* follow redirections; everything else is final */
        int again = 0, wait = 0;
        for (size_t k = 0; k < b->n; k++) {
            if (!pending[k])
                continue;
            struct cmd *m = &b->cmds[k];
            char host[RCONN_HOST_MAX];
            unsigned slot;
            int port;
            int kind = redirect_kind(m->reply, &slot, host, sizeof host, &port);
            if (!kind) {
                pending[k] = 0;
                continue;
            }
            again = 1;
            if (kind == 'N') {
                c->nodes[m->node].scripts_loaded = 0;  /* flushed or restarted: load again */
            } else if (kind == 'T') {
                wait = 1;
            } else {
                int idx = node_find_or_add(c, host, port);
                if (idx < 0) {
                    rc = CW_EUNAVAIL;
                    goto out;
                }
                if (kind == 'M') {
                    /* the slot's new owner, as the owner says: more current than a CLUSTER SLOTS
                     * of another node during a resharding, so no full refresh here */
                    c->slots[slot] = (uint16_t)idx;
                    m->node = idx;
                } else {
                    m->asking = 1;
                    m->node = idx;
                }
            }
        }
        if (!again)
            break;
        if (round == RCONN_REDIRECTS_MAX) {
            rc = CW_EUNAVAIL;
            break;
        }
        if (wait)
            sleep_ms(RCONN_TRYAGAIN_MS << (round < 5 ? round : 5));
    }
out:
    free(pending);
    for (size_t k = 0; !rc && k < b->n; k++)  /* OOM, NOAUTH, READONLY, MISCONF, ... */
        if (b->cmds[k].reply && b->cmds[k].reply->type == REDIS_REPLY_ERROR)
            set_err(c, "Redis refused a command: %.200s", b->cmds[k].reply->str);
    if (rc)
        set_err(c, "the Redis cluster's slot map could not be learnt, or a slot is not served");
    return rc;
}
