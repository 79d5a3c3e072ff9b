/* api_conn.c — see api_conn.h.
 *
 * Every open connection has an entry (allocated when libmicrohttpd reports it started, freed
 * when it reports it closed) on one list under one mutex. The reaper thread walks the list and
 * shuts down the socket of an entry past its deadline. libmicrohttpd reports a connection closed
 * before it closes the socket, and the report takes the same mutex, so the reaper never shuts
 * down a descriptor that has been closed and reused for another connection. shutdown() only
 * wakes libmicrohttpd's own event loop, which then closes and cleans up the connection in its
 * thread: the guard never closes a descriptor itself.
 */
#include "api_conn.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "cw.h"

struct conn {
    struct conn *prev, *next;
    int fd;
    int probe_only;
    int upload;        /* the deadline is an upload's (else headers') */
    double deadline;   /* monotonic seconds; 0 = none (the service is working on a request) */
    void *attached;    /* api_conn_attach: released when the connection closes */
    void (*release)(void *);
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn *head;
static struct api_conn_limits limits;
static atomic_long open_conns;
static atomic_ullong refused, cut_headers, cut_upload;
static atomic_int stopping;
static pthread_t reaper;
static int reaper_started;

static struct conn *conn_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void set_deadline(struct MHD_Connection *c, double in_s, int upload)
{
    struct conn *k = conn_of(c);
    if (!k)
        return;
    pthread_mutex_lock(&lock);
    k->deadline = in_s > 0 ? cw_mono_s() + in_s : 0;
    k->upload = upload;
    pthread_mutex_unlock(&lock);
}

enum MHD_Result api_conn_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)cls;
    (void)addr;
    (void)addrlen;
    if (atomic_load(&open_conns) >= (long)(limits.max_connections + API_CONN_PROBE_RESERVE)) {
        atomic_fetch_add(&refused, 1);
        return MHD_NO;  /* libmicrohttpd closes it at once */
    }
    return MHD_YES;
}

void api_conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        long n = atomic_fetch_add(&open_conns, 1) + 1;
        struct conn *k = calloc(1, sizeof *k);
        *socket_context = k;
        if (!k)
            return;  /* unguarded: MHD's idle timeout still applies */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        k->fd = ci ? ci->connect_fd : -1;
        k->probe_only = n > (long)limits.max_connections;
        k->deadline = cw_mono_s() + limits.header_timeout_s;
        pthread_mutex_lock(&lock);
        k->next = head;
        if (head)
            head->prev = k;
        head = k;
        pthread_mutex_unlock(&lock);
        return;
    }
    atomic_fetch_sub(&open_conns, 1);
    struct conn *k = *socket_context;
    *socket_context = NULL;
    if (!k)
        return;
    pthread_mutex_lock(&lock);
    if (k->prev)
        k->prev->next = k->next;
    else
        head = k->next;
    if (k->next)
        k->next->prev = k->prev;
    pthread_mutex_unlock(&lock);
    if (k->release)
        k->release(k->attached);
    free(k);
}

/* Only the connection's own thread calls these (its handshake, its close), so no lock. */
int api_conn_attach(struct MHD_Connection *c, void *p, void (*release)(void *))
{
    struct conn *k = conn_of(c);
    if (!k)
        return -1;
    if (k->release)
        k->release(k->attached);
    k->attached = p;
    k->release = release;
    return 0;
}

void *api_conn_attached(struct MHD_Connection *c)
{
    struct conn *k = conn_of(c);
    return k ? k->attached : NULL;
}

void api_conn_headers_done(struct MHD_Connection *c, int has_body)
{
    set_deadline(c, has_body ? limits.upload_timeout_s : 0, has_body);
}

void api_conn_body_done(struct MHD_Connection *c) { set_deadline(c, 0, 0); }

void api_conn_request_done(struct MHD_Connection *c)
{
    /* the next request may come after an idle pause; its headers then get the usual time */
    set_deadline(c, (double)limits.idle_timeout_s + limits.header_timeout_s, 0);
}

int api_conn_probe_only(struct MHD_Connection *c)
{
    struct conn *k = conn_of(c);
    return k && k->probe_only;
}

static void *reap(void *arg)
{
    (void)arg;
    const struct timespec tick = { 0, API_CONN_REAP_MS * 1000000L };
    while (!atomic_load(&stopping)) {
        nanosleep(&tick, NULL);
        double now = cw_mono_s();
        pthread_mutex_lock(&lock);
        for (struct conn *k = head; k; k = k->next) {
            if (!k->deadline || now < k->deadline || k->fd < 0)
                continue;
            shutdown(k->fd, SHUT_RDWR);
            atomic_fetch_add(k->upload ? &cut_upload : &cut_headers, 1);
            k->deadline = 0;  /* once: libmicrohttpd now closes it */
        }
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

int api_conn_start(const struct api_conn_limits *lim)
{
    limits = *lim;
    atomic_store(&stopping, 0);
    int rc = pthread_create(&reaper, NULL, reap, NULL);
    if (rc) {
        errno = rc;
        return -1;
    }
    reaper_started = 1;
    return 0;
}

void api_conn_stop(void)
{
    if (!reaper_started)
        return;
    atomic_store(&stopping, 1);
    pthread_join(reaper, NULL);
    reaper_started = 0;
}

unsigned long long api_conn_refused_total(void) { return atomic_load(&refused); }
unsigned long long api_conn_cut_total(int upload) { return atomic_load(upload ? &cut_upload : &cut_headers); }
long api_conn_open_now(void) { return atomic_load(&open_conns); }
