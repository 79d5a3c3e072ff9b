/* api_conn.h — the connection guard: what libmicrohttpd 0.9.75 does not bound on its own.
 *
 * - A cap that refuses at once: beyond the cap (and its probe reserve) a new connection is closed
 *   as soon as it is accepted, instead of waiting in the listen backlog until an idle one times out.
 * - A probe reserve: API_CONN_PROBE_RESERVE connections beyond the cap are accepted for
 *   GET /healthz and /readyz only (anything else is answered 503 and closed), so a full service
 *   still answers its liveness and readiness probes.
 * - Deadlines that an idle timeout cannot give (one byte every few seconds resets it): request
 *   headers complete within header_timeout_s of the connection's start (a kept-alive connection:
 *   within idle timeout + header timeout of its previous answer), and a request body within
 *   upload_timeout_s of its headers. A connection past its deadline is shut down; libmicrohttpd
 *   then closes it and completes its request, which frees the request's ingest slot.
 */
#ifndef CW_API_CONN_H
#define CW_API_CONN_H

#include <microhttpd.h>

#define API_CONN_PROBE_RESERVE 8u   /* connections beyond the cap, for the probes only */
#define API_CONN_REAP_MS 200        /* how often deadlines are checked */

struct api_conn_limits {
    unsigned max_connections;       /* the cap (before the probe reserve) */
    unsigned idle_timeout_s;        /* MHD's idle timeout, which the keep-alive deadline adds to */
    unsigned header_timeout_s;
    unsigned upload_timeout_s;
};

/* Starts the reaper thread. 0, or -1 (errno) when the thread cannot start. */
int api_conn_start(const struct api_conn_limits *lim);
/* Stops it; after MHD_stop_daemon, when no connection is left. */
void api_conn_stop(void);

/* For MHD_start_daemon's accept policy (apc) argument and MHD_OPTION_NOTIFY_CONNECTION. */
enum MHD_Result api_conn_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen);
void api_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode code);

/* The request's headers are complete; has_body: a body follows (the upload deadline starts). */
void api_conn_headers_done(struct MHD_Connection *c, int has_body);
/* The request's body is complete: no deadline while the service works on it. */
void api_conn_body_done(struct MHD_Connection *c);
/* The request was answered: the keep-alive deadline starts. */
void api_conn_request_done(struct MHD_Connection *c);
/* Was the connection accepted into the probe reserve? */
int api_conn_probe_only(struct MHD_Connection *c);

/* Keeps p with the connection until it closes, then calls release(p): what the connection's TLS
 * handshake took (api_tls.c) lives as long as the connection. A second attach releases the first.
 * 0, or -1 when the connection has no entry (its allocation failed): the caller keeps p. */
int api_conn_attach(struct MHD_Connection *c, void *p, void (*release)(void *));
/* What was attached, or NULL. */
void *api_conn_attached(struct MHD_Connection *c);

/* Counters for /metrics. */
unsigned long long api_conn_refused_total(void);
unsigned long long api_conn_cut_total(int upload);  /* 0: header deadline, 1: upload deadline */
long api_conn_open_now(void);

#endif
