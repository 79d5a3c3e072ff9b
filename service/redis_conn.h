/* redis_conn.h — pipelined command batches to one Redis or to a Redis Cluster, over TCP or TLS.
 *
 * No C cluster client exists for Debian 12's hiredis 0.14, so this module speaks the cluster
 * protocol itself, and only what the store needs: key slots (CRC16-XMODEM mod 16384, hash tags),
 * the slot map from CLUSTER SLOTS, MOVED (update the map, resend), ASK (ASKING + resend once to
 * that node), TRYAGAIN and CLUSTERDOWN (bounded backoff), and a pipeline per node. A single Redis is
 * the same code with one node and no slots. Lua scripts are registered once and loaded on each
 * node when it answers NOSCRIPT.
 *
 * A connection is not thread-safe: one per thread (rconn_clone). Errors: 0, or CW_EUNAVAIL
 * (transient: the node or the cluster cannot answer now; the caller retries later).
 *
 * Layers, each calling only those below it: redis_conn.c (the connection and its batches),
 * redis_cluster.c (slots, the slot map, MOVED/ASK), redis_node.c (one address's connection and
 * backoff, the process-wide address table), redis_io.c (the socket, TLS or not, the output buffer
 * and hiredis's reply parser), redis_tls.c (OpenSSL: the context, the session, why a handshake
 * failed); redis_url.c parses the settings.
 */
#ifndef CW_REDIS_CONN_H
#define CW_REDIS_CONN_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "cw.h"

#define RCONN_NODES_MAX 64       /* cluster nodes known at once */
#define RCONN_SEEDS_MAX 16       /* seed addresses in CREDWATCH_REDIS_CLUSTER */
#define RCONN_SCRIPTS_MAX 16
#define RCONN_SLOTS 16384
#define RCONN_HOST_MAX 256
#define RCONN_CRED_MAX 256
#define RCONN_REDIRECTS_MAX 8    /* MOVED/ASK/TRYAGAIN rounds per batch before giving up */
#define RCONN_MSG_MAX 256

struct rconn_addr {
    char host[RCONN_HOST_MAX];
    int port;
};

struct rconn_config {
    int cluster;                               /* 0: seeds[0] is the one Redis */
    int tls;                                   /* rediss://: every node over TLS (struct rconn_tls) */
    struct rconn_addr seeds[RCONN_SEEDS_MAX];
    size_t n_seeds;
    char user[RCONN_CRED_MAX];
    char password[RCONN_CRED_MAX];
    int db;                                    /* standalone only: clusters have db 0 */
    int timeout_ms;
};

struct rconn;

/* Parses "redis[s]://[user:password@]host:port[/db]" (standalone) or, for a cluster,
 * "[redis[s]://][user:password@]host:port,host:port,..." (credentials apply to every node);
 * rediss:// sets cfg.tls.
 * Returns 0, or -1 with msg saying what is wrong. */
int rconn_parse_url(const char *url, struct rconn_config *cfg, char *msg, size_t msg_size);
int rconn_parse_cluster(const char *seeds, struct rconn_config *cfg, char *msg, size_t msg_size);

/* The files of a TLS connection (cfg.tls); NULL or "" each: the system's CA store, no client
 * certificate. key_file "" with a cert_file: the key is in cert_file. */
struct rconn_tls {
    const char *ca_file, *cert_file, *key_file;
};

/* Connects lazily: nothing happens until the first batch; the TLS files are read now, so a bad one
 * stops the start. NULL with msg (out of memory, a file and OpenSSL's reason, files without
 * rediss://). */
struct rconn *rconn_new(const struct rconn_config *cfg, const struct rconn_tls *tls, char *msg, size_t msg_size);
/* A new connection with the same configuration and scripts (for another thread). */
struct rconn *rconn_clone(const struct rconn *c);
void rconn_free(struct rconn *c);
/* 1 on a Redis Cluster: a command's keys must then share a slot (one Redis: any keys). */
int rconn_is_cluster(const struct rconn *c);
/* Why the last rconn_batch_exec failed or had an error reply, in words ("" when it did not). */
const char *rconn_error(const struct rconn *c);

/* Registers a Lua script; returns its index (for rconn_batch_eval) or -1. Before any batch. */
int rconn_script(struct rconn *c, const char *source);

/* A batch of commands, executed as pipelines (one per node). Replies are in order of addition. */
struct rconn_batch;
struct rconn_batch *rconn_batch_new(void);
void rconn_batch_free(struct rconn_batch *b);
void rconn_batch_reset(struct rconn_batch *b);  /* frees commands and replies, keeps memory */

/* Adds a command routed by `key` (the key it touches; NULL = any node). printf-like hiredis
 * format (%s, %b with pointer and length). Returns its index, or -1 when out of memory. */
int rconn_batch_add(struct rconn_batch *b, const char *key, const char *fmt, ...);
int rconn_batch_add_argv(struct rconn_batch *b, const char *key, int argc, const char **argv, const size_t *lens);
/* EVALSHA of a registered script with its keys and arguments, routed by keys[0]. */
int rconn_batch_eval(struct rconn_batch *b, int script, int nkeys, const char **keys, int nargs,
                     const char **args, const size_t *arg_lens);

/* Sends the batch and reads every reply. 0: every command got a reply (it may be an error reply
 * of the command itself, e.g. WRONGTYPE); CW_EUNAVAIL: the connection or cluster failed. */
int rconn_batch_exec(struct rconn *c, struct rconn_batch *b);
size_t rconn_batch_size(const struct rconn_batch *b);
redisReply *rconn_batch_reply(const struct rconn_batch *b, size_t i);

/* The slot of a key (exposed for tests). */
unsigned rconn_key_slot(const char *key, size_t len);

#endif
