/* redis_cluster.h — private to redis_conn.c: the cluster protocol over the nodes of redis_node.h
 * (key slots, the slot map from CLUSTER SLOTS, MOVED and ASK). */
#ifndef CW_REDIS_CLUSTER_H
#define CW_REDIS_CLUSTER_H

#include "redis_node.h"

/* What an error reply asks of the sender (rcluster_redirect). */
enum rcluster_redirect {
    RCLUSTER_FINAL = 0,        /* not a redirection: the reply is the command's */
    RCLUSTER_MOVED = 'M',      /* the slot moved for good: the map is updated, resend there */
    RCLUSTER_ASK = 'A',        /* the slot is migrating: resend there once, after ASKING */
    RCLUSTER_TRYAGAIN = 'T',   /* TRYAGAIN or CLUSTERDOWN: resend after a pause */
    RCLUSTER_NOSCRIPT = 'N'    /* the node lost its scripts: load them, resend */
};

/* The slot map of a new cluster connection, every slot unknown and the map stale. 0 or CW_ENOMEM. */
int rcluster_map_new(struct rconn *c);
/* Learns the slot map from any reachable node (known nodes first, then the seeds). 0 or CW_EUNAVAIL. */
int rcluster_refresh(struct rconn *c);
/* The node of a key's slot (RCONN_SLOTS: a command for any node); -1 when no node serves it. */
int rcluster_route(const struct rconn *c, unsigned slot);
/* Classifies a reply. For MOVED and ASK, *node becomes the node named (added when new), and MOVED
 * updates the map while ASK sets *asking. CW_EUNAVAIL when that node cannot be added. */
int rcluster_redirect(struct rconn *c, const redisReply *r, int *node, int *asking);

#endif
