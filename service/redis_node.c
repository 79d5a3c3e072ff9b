/* redis_node.c — one address's connection: connect, authenticate, select, back off after a
 * failure, load the scripts; and the process-wide address table the connections of every thread
 * share (the only process-wide state of the redis_ files). See redis_node.h. */
#include "redis_node.h"
#include "cw.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define RCONN_BACKOFF_MIN_MS 100   /* first reconnect delay of a failed node */
#define RCONN_BACKOFF_MAX_MS 2000  /* the doubling stops here: a node back up is retried within 2 s */

void rnode_set_err(struct rconn *c, const char *fmt, ...)
{
    if (c->err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
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

void rnode_drop(struct rconn *c, size_t i)
{
    struct rnode *n = &c->nodes[i];
    rio_free(n->io);
    n->io = NULL;
    n->scripts_loaded = 0;
    n->backoff_ms = n->backoff_ms ? n->backoff_ms * 2 : RCONN_BACKOFF_MIN_MS;
    if (n->backoff_ms > RCONN_BACKOFF_MAX_MS)
        n->backoff_ms = RCONN_BACKOFF_MAX_MS;
    n->seen_epoch = addr_epoch(&n->addr, 0);  /* only answers heard after this failure cut the wait */
    addr_quiet(&n->addr, cw_mono_ms() + n->backoff_ms);  /* every connection waits, not just this one */
    if (c->cfg.cluster)
        c->map_stale = 1;  /* a failed master may have been replaced */
}

void rnode_fail(struct rconn *c, size_t i, const char *why)
{
    rnode_set_err(c, "%s", why);
    addr_why_set(&c->nodes[i].addr, why);
    rnode_drop(c, i);
}

void rnode_lost(struct rconn *c, size_t i, const char *what)
{
    struct rnode *n = &c->nodes[i];
    char why[RCONN_MSG_MAX];
    snprintf(why, sizeof why, "%s: no answer from %s:%d: %s", what, n->addr.host, n->addr.port,
             n->io && rio_error(n->io)[0] ? rio_error(n->io) : "connection lost");
    rnode_fail(c, i, why);
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
static int reply_error(struct rconn *c, redisReply *r, const char *what, struct rnode *n)
{
    char why[RCONN_MSG_MAX] = "";
    if (r && r->type == REDIS_REPLY_ERROR)
        snprintf(why, sizeof why, "%s refused by %s:%d: %.160s", what, n->addr.host, n->addr.port, r->str);
    else if (!r)
        snprintf(why, sizeof why, "%s: no answer from %s:%d: %s", what, n->addr.host, n->addr.port,
                 n->io && rio_error(n->io)[0] ? rio_error(n->io) : "connection lost");
    if (why[0]) {
        rnode_set_err(c, "%s", why);
        addr_why_set(&n->addr, why);
    }
    return reply_ok(r);
}

struct rio *rnode_io(struct rconn *c, size_t i)
{
    struct rnode *n = &c->nodes[i];
    if (n->io)
        return n->io;
    if (!addr_may_try(&n->addr, n->seen_epoch, cw_mono_ms(), (int64_t)c->cfg.timeout_ms + RCONN_BACKOFF_MIN_MS)) {
        char why[RCONN_MSG_MAX];
        addr_why_get(&n->addr, why, sizeof why);
        rnode_set_err(c, "%s (%s:%d, waiting to retry)", why, n->addr.host, n->addr.port);
        return NULL;
    }
    char err[RIO_ERR_MAX];
    /* every node, the seeds and those met through MOVED/ASK, with the same TLS context */
    n->io = rio_connect(n->addr.host, n->addr.port, c->cfg.timeout_ms, c->tls, err, sizeof err);
    if (!n->io) {
        char why[RCONN_MSG_MAX];
        snprintf(why, sizeof why, "cannot connect to %s:%d: %s", n->addr.host, n->addr.port, err);
        rnode_fail(c, i, why);
        return NULL;
    }
    if (c->cfg.password[0]) {  /* after the TLS handshake: the password never travels in clear */
        redisReply *r = c->cfg.user[0] ? rio_command(n->io, "AUTH %s %s", c->cfg.user, c->cfg.password)
                                       : rio_command(n->io, "AUTH %s", c->cfg.password);
        if (!reply_error(c, r, "AUTH", n)) {
            rnode_drop(c, i);
            return NULL;
        }
    }
    if (!c->cfg.cluster && c->cfg.db && !reply_error(c, rio_command(n->io, "SELECT %d", c->cfg.db), "SELECT", n)) {
        rnode_drop(c, i);
        return NULL;
    }
    /* the backoff is reset by the first reply (rnode_answered), not here: a hung node (SIGSTOP,
     * overloaded) still accepts TCP connections in the kernel, and resetting on connect kept its
     * backoff at the minimum, so every thread paid the full command timeout every ~100 ms */
    return n->io;
}

void rnode_answered(struct rconn *c, size_t i)
{
    struct rnode *n = &c->nodes[i];
    if (n->backoff_ms || !n->seen_epoch)  /* after a failure, or first contact: tell the others */
        n->seen_epoch = addr_epoch(&n->addr, 1);
    n->backoff_ms = 0;
}

int rnode_load_scripts(struct rconn *c, size_t i)
{
    struct rnode *n = &c->nodes[i];
    for (size_t s = 0; s < c->n_scripts; s++) {
        if (n->scripts_loaded & (1u << s))
            continue;
        redisReply *r = rio_command(n->io, "SCRIPT LOAD %s", c->scripts[s]);
        if (!r) {  /* often the first command on a new connection: what failed is worth saying */
            rnode_lost(c, i, "SCRIPT LOAD");
            return CW_EUNAVAIL;
        }
        int ok = r->type == REDIS_REPLY_STRING && r->len == 40;
        if (ok)
            memcpy(c->shas[s], r->str, 41);
        else
            rnode_set_err(c, "SCRIPT LOAD refused by %s:%d: %.160s", n->addr.host, n->addr.port,
                    r->type == REDIS_REPLY_ERROR ? r->str : "an unexpected reply");
        freeReplyObject(r);
        if (!ok)
            return CW_EUNAVAIL;
        n->scripts_loaded |= 1u << s;
    }
    return 0;
}

int rnode_find_or_add(struct rconn *c, const char *host, int port)
{
    for (size_t i = 0; i < c->n_nodes; i++)
        if (c->nodes[i].addr.port == port && strcmp(c->nodes[i].addr.host, host) == 0)
            return (int)i;
    if (c->n_nodes == RCONN_NODES_MAX)
        return -1;
    struct rnode *n = &c->nodes[c->n_nodes];
    memset(n, 0, sizeof *n);
    snprintf(n->addr.host, sizeof n->addr.host, "%s", host);
    n->addr.port = port;
    return (int)c->n_nodes++;
}
