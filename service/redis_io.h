/* redis_io.h — private to the redis_ files: one connection to one Redis address, credwatch's own
 * (hiredis 0.14, Debian 12's, has no TLS). A TCP socket, optionally wrapped in TLS (redis_tls.h),
 * an output buffer of formatted commands, and hiredis's reply parser (redisReader), so replies are
 * the same redisReply objects as before. Blocking in behaviour, as hiredis's blocking context was:
 * every wait (connect, TLS handshake, each send, each read) is bounded by the timeout, and a
 * connection that failed once is to be freed (the caller reconnects, with its backoff).
 * Errors: 0 or CW_EUNAVAIL (rio_error says why), CW_ENOMEM. */
#ifndef CW_REDIS_IO_H
#define CW_REDIS_IO_H

#include <hiredis/hiredis.h>
#include <openssl/ssl.h>
#include <stddef.h>

/* The largest reply read (bytes received for one reply): far above any reply of the store (a page
 * of findings, a batch's GETs), and a bound against a peer that sends without end. */
#define RIO_REPLY_MAX ((size_t)256 << 20)
/* The largest pipeline buffered for sending: batches are bounded upstream by the request body caps. */
#define RIO_OUT_MAX ((size_t)1 << 31)
#define RIO_ERR_MAX 256

struct rio;

/* Connects to host:port: TCP within timeout_ms, then, when tls is not NULL, the TLS handshake within
 * timeout_ms more (the server's certificate verified for host). NULL with why ("connection refused",
 * "TLS: server certificate not trusted: certificate has expired ..."). */
struct rio *rio_connect(const char *host, int port, int timeout_ms, SSL_CTX *tls, char *why, size_t why_size);
void rio_free(struct rio *io);

/* Queues a formatted command (RESP) for the next rio_reply. 0, CW_ETOOBIG or CW_ENOMEM. */
int rio_append(struct rio *io, const char *cmd, size_t len);
/* Sends what is queued, then reads the next reply. 0 with *reply (freeReplyObject), or CW_EUNAVAIL
 * (timeout, connection closed, protocol error, reply over RIO_REPLY_MAX). */
int rio_reply(struct rio *io, redisReply **reply);
/* One command (hiredis format, as redisCommand): its reply, or NULL on failure. */
redisReply *rio_command(struct rio *io, const char *fmt, ...);
/* Why the connection failed, in words ("" while it has not). */
const char *rio_error(const struct rio *io);

#endif
