/* redis_conn.c — the public connection object and its batches: commands are formatted when added
 * and sent as one pipeline per node, following the cluster's redirections (see redis_conn.h).
 * The layers below: redis_cluster.c (slots, MOVED/ASK), redis_node.c (one address's connection,
 * backoff, the process-wide address table); redis_url.c parses the settings. */
#include "redis_conn.h"
#include "redis_cluster.h"
#include "redis_node.h"
#include "redis_tls.h"
#include "cw.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RCONN_TRYAGAIN_MS 20       /* wait before resending after TRYAGAIN / CLUSTERDOWN */
#define RCONN_TRYAGAIN_SHIFT_MAX 5 /* the wait doubles each round up to 20 ms << 5 = 640 ms */
#define RCONN_BATCH_INITIAL 32     /* commands a new batch has room for */
#define RCONN_BATCH_MAX ((size_t)INT_MAX)  /* rconn_batch_add returns the index as an int */

const char *rconn_error(const struct rconn *c) { return c->err; }

int rconn_is_cluster(const struct rconn *c) { return c->cfg.cluster; }

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

/* ---- connections ------------------------------------------------------------------------------ */

struct rconn *rconn_new(const struct rconn_config *cfg, const struct rconn_tls *tls, char *msg, size_t msg_size)
{
    int files = tls && ((tls->ca_file && *tls->ca_file) || (tls->cert_file && *tls->cert_file) ||
                        (tls->key_file && *tls->key_file));
    if (files && !cfg->tls) {  /* a CA or client certificate given for a plain connection: a mistake */
        snprintf(msg, msg_size, "a CA file or client certificate is set, but the address is redis://, not rediss://");
        return NULL;
    }
    struct rconn *c = calloc(1, sizeof *c);
    if (!c || (cfg->cluster && rcluster_map_new(c))) {
        free(c);
        snprintf(msg, msg_size, "out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    if (cfg->tls && !(c->tls = rtls_ctx_new(tls ? tls->ca_file : NULL, tls ? tls->cert_file : NULL,
                                            tls ? tls->key_file : NULL, msg, msg_size))) {
        rconn_free(c);
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_seeds && i < RCONN_NODES_MAX; i++)
        c->nodes[c->n_nodes++].addr = cfg->seeds[i];
    return c;
}

struct rconn *rconn_clone(const struct rconn *src)
{
    struct rconn_config plain = src->cfg;
    char msg[RCONN_MSG_MAX];
    plain.tls = 0;  /* the context is shared, not built again from the files */
    struct rconn *c = rconn_new(&plain, NULL, msg, sizeof msg);
    if (!c)
        return NULL;
    c->cfg.tls = src->cfg.tls;
    if (src->tls && SSL_CTX_up_ref(src->tls))
        c->tls = src->tls;
    else if (src->tls) {
        rconn_free(c);
        return NULL;
    }
    for (size_t i = 0; i < src->n_scripts; i++)
        c->scripts[c->n_scripts++] = src->scripts[i];
    return c;
}

void rconn_free(struct rconn *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_nodes; i++)
        rio_free(c->nodes[i].io);
    SSL_CTX_free(c->tls);
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
    void *cmds = b->cmds;
    if (cw_grow(&cmds, &b->cap, b->n + 1, sizeof *b->cmds, RCONN_BATCH_INITIAL, RCONN_BATCH_MAX)) {
        free(buf);
        return -1;
    }
    b->cmds = cmds;
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

#define ASKING_RESP "*1\r\n$6\r\nASKING\r\n"

/* Queues every pending command of node i on its connection (ASKING first where asked). */
static int queue_node(struct rconn *c, struct rconn_batch *b, size_t i, const uint8_t *pending, struct rio *io)
{
    size_t sent = 0;
    for (size_t k = 0; k < b->n; k++) {
        struct cmd *m = &b->cmds[k];
        if (!pending[k] || m->node != (int)i)
            continue;
        if (m->script >= 0)
            fill_sha(c, m);
        if ((m->asking && rio_append(io, ASKING_RESP, sizeof ASKING_RESP - 1)) || rio_append(io, m->buf, m->len))
            return -1;
        sent++;
    }
    return (int)(sent > 0);
}

/* Sends every pending command of node i as one pipeline and reads the replies. */
static int exec_node(struct rconn *c, struct rconn_batch *b, size_t i, const uint8_t *pending)
{
    struct rio *io = rnode_io(c, i);
    if (!io)
        return CW_EUNAVAIL;
    if (rnode_load_scripts(c, i))
        return CW_EUNAVAIL;
    int sent = queue_node(c, b, i, pending, io);
    if (sent < 0) {
        rnode_fail(c, i, "out of memory queueing a pipeline");
        return CW_EUNAVAIL;
    }
    for (size_t k = 0; k < b->n && sent; k++) {
        struct cmd *m = &b->cmds[k];
        if (!pending[k] || m->node != (int)i)
            continue;
        redisReply *r = NULL;
        if (m->asking) {
            if (rio_reply(io, &r)) {
                rnode_lost(c, i, "ASKING");
                return CW_EUNAVAIL;
            }
            freeReplyObject(r);
            r = NULL;
        }
        if (rio_reply(io, &r) || !r) {
            char why[RCONN_MSG_MAX];
            snprintf(why, sizeof why, "no answer from %s:%d: %s", c->nodes[i].addr.host, c->nodes[i].addr.port,
                     rio_error(io)[0] ? rio_error(io) : "connection lost");
            rnode_fail(c, i, why);
            return CW_EUNAVAIL;
        }
        if (m->reply)
            freeReplyObject(m->reply);
        m->reply = r;
        m->asking = 0;
    }
    rnode_answered(c, i);
    return 0;
}

/* Gives every pending command its node (an ASK keeps the node it names); *left counts them.
 * CW_EUNAVAIL when a slot has no known node. */
static int batch_route(struct rconn *c, struct rconn_batch *b, const uint8_t *pending, size_t *left)
{
    *left = 0;
    for (size_t k = 0; k < b->n; k++) {
        struct cmd *m = &b->cmds[k];
        if (!pending[k])
            continue;
        if (!m->asking)
            m->node = rcluster_route(c, m->slot);
        if (m->node < 0) {
            c->map_stale = 1;  /* a slot nobody serves: the cluster is changing or down */
            return CW_EUNAVAIL;
        }
        (*left)++;
    }
    return 0;
}

/* One pipeline per node that has work. */
static int batch_send(struct rconn *c, struct rconn_batch *b, const uint8_t *pending)
{
    for (size_t i = 0; i < c->n_nodes; i++) {
        int has = 0, rc;
        for (size_t k = 0; k < b->n && !has; k++)
            has = pending[k] && b->cmds[k].node == (int)i;
        if (has && (rc = exec_node(c, b, i, pending)))
            return rc;
    }
    return 0;
}

/* Follows the redirections; every other reply is final (no longer pending). *again: a command is
 * to be resent; *wait: after a pause (TRYAGAIN, CLUSTERDOWN). 0 or CW_EUNAVAIL. */
static int batch_follow(struct rconn *c, struct rconn_batch *b, uint8_t *pending, int *again, int *wait)
{
    for (size_t k = 0; k < b->n; k++) {
        struct cmd *m = &b->cmds[k];
        if (!pending[k])
            continue;
        int kind = rcluster_redirect(c, m->reply, &m->node, &m->asking);
        if (kind < 0)
            return kind;
        if (kind == RCLUSTER_FINAL) {
            pending[k] = 0;
            continue;
        }
        *again = 1;
        if (kind == RCLUSTER_NOSCRIPT)
            c->nodes[m->node].scripts_loaded = 0;  /* flushed or restarted: load again */
        else if (kind == RCLUSTER_TRYAGAIN)
            *wait = 1;
    }
    return 0;
}

/* Rounds of route, send, follow until every command has its final reply, at most
 * RCONN_REDIRECTS_MAX redirections deep. 0 or CW_EUNAVAIL. */
static int batch_rounds(struct rconn *c, struct rconn_batch *b, uint8_t *pending)
{
    for (int round = 0;; round++) {
        size_t left;
        int rc, again = 0, wait = 0;
        if (c->cfg.cluster && c->map_stale && rcluster_refresh(c))
            return CW_EUNAVAIL;
        if ((rc = batch_route(c, b, pending, &left)) || !left)
            return rc;
        if ((rc = batch_send(c, b, pending)) || (rc = batch_follow(c, b, pending, &again, &wait)))
            return rc;
        if (!again)
            return 0;
        if (round == RCONN_REDIRECTS_MAX)
            return CW_EUNAVAIL;
        if (wait)
            sleep_ms(RCONN_TRYAGAIN_MS << (round < RCONN_TRYAGAIN_SHIFT_MAX ? round : RCONN_TRYAGAIN_SHIFT_MAX));
    }
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
    int rc = batch_rounds(c, b, pending);
    free(pending);
    for (size_t k = 0; !rc && k < b->n; k++)  /* OOM, NOAUTH, READONLY, MISCONF, ... */
        if (b->cmds[k].reply && b->cmds[k].reply->type == REDIS_REPLY_ERROR)
            rnode_set_err(c, "Redis refused a command: %.200s", b->cmds[k].reply->str);
    if (rc)
        rnode_set_err(c, "the Redis cluster's slot map could not be learnt, or a slot is not served");
    return rc;
}

