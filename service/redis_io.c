/* redis_io.c — one connection to one Redis address: a non-blocking TCP socket whose every wait is
 * a poll bounded by the timeout, TLS on top when asked (redis_tls.c), the output buffer, and
 * hiredis's redisReader as the parser. See redis_io.h. */
#include "redis_io.h"
#include "redis_tls.h"
#include "cw.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <limits.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RIO_READ_CHUNK 16384  /* one TLS record at most; hiredis read 16 KiB at a time too */

struct rio {
    int fd;
    SSL *ssl;                      /* NULL: plain TCP */
    int timeout_ms;
    struct cw_buf out;             /* formatted commands not sent yet */
    redisReader *reader;
    size_t reply_bytes;            /* bytes received towards the reply being read (RIO_REPLY_MAX) */
    char err[RIO_ERR_MAX];         /* the first failure; the connection is then unusable */
};

const char *rio_error(const struct rio *io) { return io->err; }

static void fail(struct rio *io, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct rio *io, const char *fmt, ...)
{
    if (io->err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(io->err, sizeof io->err, fmt, ap);
    va_end(ap);
}

/* Until fd is readable or writable (ev), at most ms. 0, or -1 with why. An error or hang-up
 * counts as ready: the next read or write tells which. */
static int wait_fd(int fd, short ev, int ms, char *why, size_t size)
{
    struct pollfd p = { .fd = fd, .events = ev };
    int n;
    do
        n = poll(&p, 1, ms);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        return 0;
    if (n == 0)
        snprintf(why, size, "timed out after %d ms", ms);
    else
        snprintf(why, size, "poll: %s", strerror(errno));
    return -1;
}

static int wait_io(struct rio *io, short ev)
{
    char why[RIO_ERR_MAX];
    if (!wait_fd(io->fd, ev, io->timeout_ms, why, sizeof why))
        return 0;
    fail(io, "%s", why);
    return CW_EUNAVAIL;
}

/* One address of the name: a connected non-blocking socket, or -1 with why. */
static int tcp_try(const struct addrinfo *ai, int timeout_ms, char *why, size_t size)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        snprintf(why, size, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1, e = 0;
    /* a pipeline is written at once, and the replies are waited for: no Nagle delay (as hiredis) */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS)
            e = errno;
        else if (wait_fd(fd, POLLOUT, timeout_ms, why, size)) {
            close(fd);
            return -1;
        } else {
            socklen_t len = sizeof e;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len))
                e = errno;
        }
    }
    if (e) {
        snprintf(why, size, "%s", strerror(e));
        close(fd);
        return -1;
    }
    return fd;
}

static int tcp_connect(const char *host, int port, int timeout_ms, char *why, size_t size)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res, *ai;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc) {
        snprintf(why, size, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = tcp_try(ai, timeout_ms, why, size);
    freeaddrinfo(res);
    return fd;
}

/* The TLS handshake, within timeout_ms in all (a server that trickles bytes cannot hold it longer). */
static int tls_handshake(struct rio *io, SSL_CTX *ctx, const char *host)
{
    io->ssl = rtls_session(ctx, io->fd, host);
    if (!io->ssl) {
        fail(io, "TLS: cannot set up a session for host %s", host);
        return CW_EUNAVAIL;
    }
    int64_t deadline = cw_mono_ms() + io->timeout_ms;
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(io->ssl);
        if (r == 1)
            return 0;
        int e = SSL_get_error(io->ssl, r);
        int64_t left = deadline - cw_mono_ms();
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            char why[RIO_ERR_MAX];
            rtls_failure(io->ssl, r, why, sizeof why);
            fail(io, "%s", why);
            return CW_EUNAVAIL;
        }
        char why[RIO_ERR_MAX];
        if (left <= 0 || wait_fd(io->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, (int)left, why, sizeof why)) {
            fail(io, "TLS handshake: no answer within %d ms", io->timeout_ms);
            return CW_EUNAVAIL;
        }
    }
}

struct rio *rio_connect(const char *host, int port, int timeout_ms, SSL_CTX *tls, char *why, size_t why_size)
{
    struct rio *io = calloc(1, sizeof *io);
    if (!io || !(io->reader = redisReaderCreate())) {
        free(io);
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    io->timeout_ms = timeout_ms;
    cw_buf_init(&io->out, RIO_OUT_MAX);
    io->fd = tcp_connect(host, port, timeout_ms, why, why_size);
    if (io->fd >= 0 && tls && tls_handshake(io, tls, host))
        snprintf(why, why_size, "%s", io->err);
    else if (io->fd >= 0)
        return io;
    rio_free(io);
    return NULL;
}

void rio_free(struct rio *io)
{
    if (!io)
        return;
    if (io->ssl) {
        if (!io->err[0]) {  /* close_notify, best effort: never after a TLS error (OpenSSL forbids it) */
            ERR_clear_error();
            SSL_shutdown(io->ssl);
        }
        SSL_free(io->ssl);
        ERR_clear_error();
    }
    if (io->fd >= 0)
        close(io->fd);
    cw_buf_free(&io->out);
    redisReaderFree(io->reader);
    free(io);
}

int rio_append(struct rio *io, const char *cmd, size_t len)
{
    return cw_buf_append(&io->out, cmd, len);
}

/* Bytes sent (> 0), or 0 with *ev the event to wait for, or 0 with *ev 0 on failure (io->err). */
static size_t send_some(struct rio *io, const char *p, size_t n, short *ev)
{
    *ev = 0;
    if (!io->ssl) {
        ssize_t w = send(io->fd, p, n, MSG_NOSIGNAL);
        if (w > 0)
            return (size_t)w;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            *ev = POLLOUT;
        else
            fail(io, "write: %s", w < 0 ? strerror(errno) : "nothing written");
        return 0;
    }
    ERR_clear_error();
    int w = SSL_write(io->ssl, p, n > INT_MAX ? INT_MAX : (int)n);
    if (w > 0)
        return (size_t)w;
    int e = SSL_get_error(io->ssl, w);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *ev = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    } else {
        char why[RIO_ERR_MAX];
        rtls_failure(io->ssl, w, why, sizeof why);
        fail(io, "%s", why);
    }
    return 0;
}

static int flush_out(struct rio *io)
{
    size_t off = 0;
    while (off < io->out.len) {
        short ev;
        size_t n = send_some(io, io->out.p + off, io->out.len - off, &ev);
        off += n;
        if (!n && (!ev || wait_io(io, ev)))
            break;
    }
    int rc = off < io->out.len ? CW_EUNAVAIL : 0;
    cw_buf_reset(&io->out);
    return rc;
}

/* Bytes received (> 0), or 0 with *ev the event to wait for, or 0 with *ev 0 on failure. */
static size_t recv_some(struct rio *io, char *buf, size_t size, short *ev)
{
    *ev = 0;
    if (!io->ssl) {
        ssize_t r = recv(io->fd, buf, size, 0);
        if (r > 0)
            return (size_t)r;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            *ev = POLLIN;
        else
            fail(io, "%s", r == 0 ? "Server closed the connection" : strerror(errno));
        return 0;
    }
    ERR_clear_error();
    int r = SSL_read(io->ssl, buf, (int)size);
    if (r > 0)
        return (size_t)r;
    int e = SSL_get_error(io->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        *ev = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    } else {
        char why[RIO_ERR_MAX];
        rtls_failure(io->ssl, r, why, sizeof why);
        fail(io, "%s", why);
    }
    return 0;
}

/* Reads what has arrived (waiting for it at most the timeout) into the parser. */
static int read_some(struct rio *io)
{
    char buf[RIO_READ_CHUNK];
    for (;;) {
        short ev;
        size_t n = recv_some(io, buf, sizeof buf, &ev);
        if (n) {
            if (io->reply_bytes + n > RIO_REPLY_MAX) {
                fail(io, "a reply larger than %zu bytes", RIO_REPLY_MAX);
                return CW_EUNAVAIL;
            }
            io->reply_bytes += n;
            if (redisReaderFeed(io->reader, buf, n) != REDIS_OK) {
                fail(io, "%s", io->reader->errstr[0] ? io->reader->errstr : "out of memory");
                return CW_EUNAVAIL;
            }
            return 0;
        }
        if (!ev || wait_io(io, ev))
            return CW_EUNAVAIL;
    }
}

int rio_reply(struct rio *io, redisReply **reply)
{
    void *r = NULL;
    *reply = NULL;
    if (io->err[0])
        return CW_EUNAVAIL;
    int rc = redisReaderGetReply(io->reader, &r);
    if (rc == REDIS_OK && !r && io->out.len && flush_out(io))
        return CW_EUNAVAIL;
    while (rc == REDIS_OK && !r) {
        if (read_some(io))
            return CW_EUNAVAIL;
        rc = redisReaderGetReply(io->reader, &r);
    }
    if (rc != REDIS_OK) {
        fail(io, "protocol error: %s", io->reader->errstr);
        return CW_EUNAVAIL;
    }
    /* what is buffered past this reply belongs to the next ones */
    io->reply_bytes = io->reader->len - io->reader->pos;
    *reply = r;
    return 0;
}

redisReply *rio_command(struct rio *io, const char *fmt, ...)
{
    char *cmd = NULL;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    if (len < 0 || !cmd) {
        fail(io, "out of memory");
        return NULL;
    }
    redisReply *r = NULL;
    int rc = rio_append(io, cmd, (size_t)len);
    free(cmd);
    if (rc)
        fail(io, "out of memory");
    else
        rio_reply(io, &r);
    return r;
}
