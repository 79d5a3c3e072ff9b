/* redis_node.h — private to the redis_ files (redis_conn.c, redis_cluster.c, redis_node.c): the
 * layout of a connection, and its nodes: one address's connection, its backoff, and the
 * process-wide table of what each address is going through. Users include redis_conn.h. */
#ifndef CW_REDIS_NODE_H
#define CW_REDIS_NODE_H

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "redis_conn.h"
#include "redis_io.h"

struct rnode {
    struct rconn_addr addr;
    struct rio *io;                /* NULL: not connected */
    uint64_t seen_epoch;           /* the address's answer epoch when this connection last heard it */
    int backoff_ms;
    uint32_t scripts_loaded;       /* bit per script known to be loaded on this node */
};

struct rconn {
    struct rconn_config cfg;
    SSL_CTX *tls;                  /* rediss://: shared by the clones (one reference each); else NULL */
    struct rnode nodes[RCONN_NODES_MAX];
    size_t n_nodes;
    uint16_t *slots;               /* cluster: node index per slot (redis_cluster.c) */
    int map_stale;
    const char *scripts[RCONN_SCRIPTS_MAX];
    char shas[RCONN_SCRIPTS_MAX][41];
    size_t n_scripts;
    char err[RCONN_MSG_MAX];       /* why the last batch failed, for logs and /readyz; "" none */
};

/* Remembers the first reason of this batch's failure (the later ones are its consequences). */
void rnode_set_err(struct rconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A live connection to node i, or NULL (during its backoff, without trying). */
struct rio *rnode_io(struct rconn *c, size_t i);
/* Node i answered: its next failure starts the backoff from the minimum again. */
void rnode_answered(struct rconn *c, size_t i);
/* Node i failed: closes it and starts (or doubles) its backoff, for every connection. */
void rnode_drop(struct rconn *c, size_t i);
/* rnode_drop, with why it failed in words: the batch's error and what the others are told. */
void rnode_fail(struct rconn *c, size_t i, const char *why);
/* rnode_fail after `what` got no reply: "what: no answer from host:port: <the connection's error>". */
void rnode_lost(struct rconn *c, size_t i, const char *what);
/* Loads the registered scripts node i lacks. 0 or CW_EUNAVAIL. */
int rnode_load_scripts(struct rconn *c, size_t i);
/* The index of the node at host:port, added when new; -1 when RCONN_NODES_MAX are known. */
int rnode_find_or_add(struct rconn *c, const char *host, int port);

#endif
