/* redis_cluster.c — the cluster protocol, as much as the store needs: key slots (CRC16-XMODEM mod
 * 16384, hash tags), the slot map from CLUSTER SLOTS, and MOVED/ASK. A connection to one Redis
 * has no map and routes everything to its one node. See redis_cluster.h. */
#include "redis_cluster.h"
#include "cw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RCONN_NO_NODE 0xffff       /* a slot of the map whose node is unknown */

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

int rcluster_map_new(struct rconn *c)
{
    c->slots = malloc(RCONN_SLOTS * sizeof *c->slots);
    if (!c->slots)
        return CW_ENOMEM;
    for (size_t i = 0; i < RCONN_SLOTS; i++)
        c->slots[i] = RCONN_NO_NODE;
    c->map_stale = 1;
    return 0;
}

int rcluster_refresh(struct rconn *c)
{
    for (size_t i = 0; i < c->n_nodes; i++) {
        struct rio *io = rnode_io(c, i);
        if (!io)
            continue;
        redisReply *r = rio_command(io, "CLUSTER SLOTS");
        if (!r) {
            rnode_lost(c, i, "CLUSTER SLOTS");
            continue;
        }
        rnode_answered(c, i);
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
            int idx = rnode_find_or_add(c, host, (int)master->element[1]->integer);
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

/* The kind of an error reply (enum rcluster_redirect); for MOVED and ASK also its slot and node. */
static int redirect_kind(const redisReply *r, unsigned *slot, char *host, size_t host_size, int *port)
{
    if (!r || r->type != REDIS_REPLY_ERROR)
        return RCLUSTER_FINAL;
    if (strncmp(r->str, "NOSCRIPT", 8) == 0)
        return RCLUSTER_NOSCRIPT;
    if (strncmp(r->str, "TRYAGAIN", 8) == 0 || strncmp(r->str, "CLUSTERDOWN", 11) == 0)
        return RCLUSTER_TRYAGAIN;
    int moved = strncmp(r->str, "MOVED ", 6) == 0, ask = strncmp(r->str, "ASK ", 4) == 0;
    if (!moved && !ask)
        return RCLUSTER_FINAL;
    const char *p = r->str + (moved ? 6 : 4);
    char *end;
    unsigned long s = strtoul(p, &end, 10);
    if (*end != ' ' || s >= RCONN_SLOTS)
        return RCLUSTER_FINAL;
    const char *hp = end + 1, *colon = strrchr(hp, ':');
    if (!colon || (size_t)(colon - hp) >= host_size)
        return RCLUSTER_FINAL;
    snprintf(host, host_size, "%.*s", (int)(colon - hp), hp);
    *port = (int)strtol(colon + 1, NULL, 10);
    *slot = (unsigned)s;
    return moved ? RCLUSTER_MOVED : RCLUSTER_ASK;
}

int rcluster_route(const struct rconn *c, unsigned slot)
{
    if (!c->cfg.cluster)
        return 0;
    if (slot == RCONN_SLOTS)
        return c->slots[0] == RCONN_NO_NODE ? 0 : c->slots[0];
    return c->slots[slot] == RCONN_NO_NODE ? -1 : c->slots[slot];
}

int rcluster_redirect(struct rconn *c, const redisReply *r, int *node, int *asking)
{
    char host[RCONN_HOST_MAX];
    unsigned slot;
    int port;
    int kind = redirect_kind(r, &slot, host, sizeof host, &port);
    if (kind != RCLUSTER_MOVED && kind != RCLUSTER_ASK)
        return kind;
    int idx = rnode_find_or_add(c, host, port);
    if (idx < 0)
        return CW_EUNAVAIL;
    if (kind == RCLUSTER_MOVED) {
        /* the slot's new owner, as the owner says: more current than a CLUSTER SLOTS of another
         * node during a resharding, so no full refresh here */
        c->slots[slot] = (uint16_t)idx;
    } else {
        *asking = 1;
    }
    *node = idx;
    return kind;
}
