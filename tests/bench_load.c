/* bench_load.c — a paced (open-loop) HTTP load generator for tests/bench_serve.sh.
 *
 * wrk sends as fast as the server answers, so it measures throughput, not latency at a given
 * load; Debian 12 has no wrk2. This sends requests on a fixed schedule (request i is due at
 * start + i / rate) over keep-alive connections, one request in flight per connection, and
 * measures each latency from the request's *scheduled* time, not from when a connection was free
 * to send it: a stall delays every request queued behind it and is counted for all of them
 * (no coordinated omission, as in wrk2). Wake-ups come from a timerfd at the next due time, so
 * the generator never spins.
 *
 * Request bodies are templates (tests/bench/serve_gen.py) whose `@N@` marks get an 8-character
 * tag per request: request c uses template c % T with tag RUN (c / T), so every request carries
 * new keys and event ids. Without templates the requests are GETs.
 *
 * usage: bench_load HOST PORT PATH RATE SECONDS CONNECTIONS [-w WARMUP_S] [-r RUN] [-a TOKEN]
 *                   [-t CONTENT_TYPE] [TEMPLATE...]
 * Prints one line: counts and latency percentiles (ms) of the requests after the warm-up.
 * Run without arguments (as tests/bench.sh runs every bench program) it says what it is and exits 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define BL_CONNS_MAX 1024
#define BL_TEMPLATES_MAX 256
#define BL_TAG_LEN 8
#define BL_IN_MAX (1u << 20)          /* a response larger than this is an error */
#define BL_HEAD_MAX 4096              /* request line and headers */
#define BL_TAIL_S 5                   /* after the schedule ends: time allowed for answers */
#define BL_EVENTS 256

struct tmpl {
    char **parts;                     /* the text split at every @N@ */
    size_t *lens;
    size_t n_parts;
    size_t body_len;                  /* with the tags in */
};

enum { C_IDLE = 0, C_BUSY };

struct conn {
    int fd;
    int state;
    char *out;
    size_t out_len, out_off;
    char *in;
    size_t in_len, in_cap;
    int64_t due_ns;                   /* scheduled time of the request in flight */
    int measured;                     /* the request is after the warm-up */
};

struct stats {
    uint32_t *lat_us;                 /* latencies of measured requests */
    size_t n_lat, cap_lat;
    size_t ok, other, errors, unsent;
    int64_t max_lag_ns;               /* worst delay between due time and actual send */
};

static const char *g_host, *g_path, *g_token, *g_ctype = "application/json";
static int g_port;
static struct tmpl g_tmpl[BL_TEMPLATES_MAX];
static size_t g_n_tmpl;
static unsigned g_run;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int load_template(const char *path, struct tmpl *t)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)n + 1);
    if (!text || fread(text, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(text);
        return -1;
    }
    fclose(f);
    text[n] = 0;
    size_t cap = 16;
    t->parts = malloc(cap * sizeof *t->parts);
    t->lens = malloc(cap * sizeof *t->lens);
    t->n_parts = 0;
    t->body_len = 0;
    char *p = text;
    for (;;) {
        char *m = strstr(p, "@N@");
        if (t->n_parts + 1 >= cap) {
            cap *= 2;
            t->parts = realloc(t->parts, cap * sizeof *t->parts);
            t->lens = realloc(t->lens, cap * sizeof *t->lens);
        }
        if (!t->parts || !t->lens)
            return -1;
        t->parts[t->n_parts] = p;
        t->lens[t->n_parts] = m ? (size_t)(m - p) : strlen(p);
        t->body_len += t->lens[t->n_parts];
        t->n_parts++;
        if (!m)
            break;
        t->body_len += BL_TAG_LEN;
        p = m + 3;
    }
    return 0;
}

/* Builds request c into the connection's output buffer. */
static int build_request(struct conn *c, uint64_t seq)
{
    char head[BL_HEAD_MAX];
    int hl;
    free(c->out);
    c->out = NULL;
    if (g_n_tmpl == 0) {
        hl = snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", g_path, g_host, g_port);
        if (hl < 0 || (size_t)hl >= sizeof head || !(c->out = malloc((size_t)hl)))
            return -1;
        memcpy(c->out, head, (size_t)hl);
        c->out_len = (size_t)hl;
        c->out_off = 0;
        return 0;
    }
    const struct tmpl *t = &g_tmpl[seq % g_n_tmpl];
    char tag[BL_TAG_LEN + 1];
    snprintf(tag, sizeof tag, "%02X%06X", g_run & 0xff, (unsigned)((seq / g_n_tmpl) & 0xffffff));
    hl = snprintf(head, sizeof head,
                  "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\n%s%s%sContent-Length: %zu\r\n\r\n",
                  g_path, g_host, g_port, g_ctype, g_token ? "Authorization: Bearer " : "", g_token ? g_token : "",
                  g_token ? "\r\n" : "", t->body_len);
    if (hl < 0 || (size_t)hl >= sizeof head || !(c->out = malloc((size_t)hl + t->body_len)))
        return -1;
    char *o = c->out;
    memcpy(o, head, (size_t)hl);
    o += hl;
    for (size_t i = 0; i < t->n_parts; i++) {
        memcpy(o, t->parts[i], t->lens[i]);
        o += t->lens[i];
        if (i + 1 < t->n_parts) {
            memcpy(o, tag, BL_TAG_LEN);
            o += BL_TAG_LEN;
        }
    }
    c->out_len = (size_t)(o - c->out);
    c->out_off = 0;
    return 0;
}

static int conn_open(struct conn *c, int ep)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)g_port);
    if (inet_pton(AF_INET, g_host, &sa.sin_addr) != 1)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {  /* loopback: immediate */
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->state = C_IDLE;
    c->in_len = 0;
    return 0;
}

static void conn_close(struct conn *c, int ep)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = C_IDLE;
}

static void record(struct stats *s, struct conn *c, int status, int64_t t)
{
    if (!c->measured)
        return;
    if (status >= 200 && status < 300)
        s->ok++;
    else if (status > 0)
        s->other++;
    else
        s->errors++;
    if (status <= 0)
        return;
    if (s->n_lat == s->cap_lat) {
        s->cap_lat = s->cap_lat ? s->cap_lat * 2 : 65536;
        s->lat_us = realloc(s->lat_us, s->cap_lat * sizeof *s->lat_us);
        if (!s->lat_us) {
            fprintf(stderr, "bench_load: out of memory\n");
            exit(1);
        }
    }
    int64_t us = (t - c->due_ns) / 1000;
    s->lat_us[s->n_lat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int flush_out(struct conn *c, int ep)
{
    while (c->out_off < c->out_len) {
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w < 0 && errno == EAGAIN) {
            struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
            epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            return 0;
        }
        if (w <= 0)
            return -1;
        c->out_off += (size_t)w;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    return 0;
}

/* Parses a complete response in c->in: returns its status, 0 if incomplete, -1 if malformed.
 * *consumed gets its length, *close_after whether the server will close. */
static int parse_response(const struct conn *c, size_t *consumed, int *close_after)
{
    const char *in = c->in;
    const char *end = memmem(in, c->in_len, "\r\n\r\n", 4);
    if (!end)
        return c->in_len > BL_HEAD_MAX * 4 ? -1 : 0;
    size_t head = (size_t)(end - in) + 4;
    int status = 0;
    if (c->in_len < 12 || sscanf(in, "HTTP/1.%*c %d", &status) != 1)
        return -1;
    size_t clen = 0;
    *close_after = 0;
    for (const char *l = strstr(in, "\r\n"); l && l < end; l = strstr(l + 2, "\r\n")) {
        const char *h = l + 2;
        if (strncasecmp(h, "Content-Length:", 15) == 0)
            clen = strtoul(h + 15, NULL, 10);
        else if (strncasecmp(h, "Connection:", 11) == 0 && strstr(h, "close") && strstr(h, "close") < strstr(h, "\r\n"))
            *close_after = 1;
    }
    if (c->in_len < head + clen)
        return 0;
    *consumed = head + clen;
    return status;
}

static int read_in(struct conn *c, struct stats *s, int ep)
{
    for (;;) {
        if (c->in_cap - c->in_len < 4096) {
            if (c->in_cap >= BL_IN_MAX)
                return -1;
            c->in_cap = c->in_cap ? c->in_cap * 2 : 16384;
            c->in = realloc(c->in, c->in_cap + 1);
            if (!c->in)
                return -1;
        }
        ssize_t r = read(c->fd, c->in + c->in_len, c->in_cap - c->in_len);
        if (r < 0 && errno == EAGAIN)
            break;
        if (r <= 0)
            return -1;
        c->in_len += (size_t)r;
    }
    c->in[c->in_len] = 0;
    if (c->state != C_BUSY)
        return -1;  /* bytes nobody asked for */
    size_t used = 0;
    int close_after = 0;
    int st = parse_response(c, &used, &close_after);
    if (st == 0)
        return 0;
    if (st < 0)
        return -1;
    record(s, c, st, now_ns());
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    c->state = C_IDLE;
    if (close_after) {
        conn_close(c, ep);
        if (conn_open(c, ep) != 0)
            return -1;
    }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(const struct stats *s, double p)
{
    if (!s->n_lat)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(s->n_lat - 1) + 0.5);
    return s->lat_us[i] / 1000.0;
}

static void usage(FILE *out)
{
    fputs("usage: bench_load HOST PORT PATH RATE SECONDS CONNECTIONS [-w WARMUP_S] [-r RUN] [-a TOKEN]\n"
          "                  [-t CONTENT_TYPE] [TEMPLATE...]\n"
          "A paced load generator (latency from each request's scheduled time) used by tests/bench_serve.sh.\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        if (argc == 1) {
            puts("bench_load: paced HTTP load generator for tests/bench_serve.sh (no figures of its own)");
            return 0;
        }
        usage(stderr);
        return 2;
    }
    g_host = argv[1];
    g_port = (int)strtol(argv[2], NULL, 10);
    g_path = argv[3];
    double rate = strtod(argv[4], NULL);
    double seconds = strtod(argv[5], NULL);
    long nconn = strtol(argv[6], NULL, 10);
    double warmup = 1.0;
    for (int i = 7; i < argc; i++) {
        if (strcmp(argv[i], "-w") == 0 && i + 1 < argc)
            warmup = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "-r") == 0 && i + 1 < argc)
            g_run = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "-a") == 0 && i + 1 < argc)
            g_token = argv[++i];
        else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
            g_ctype = argv[++i];
        else if (g_n_tmpl < BL_TEMPLATES_MAX) {
            if (load_template(argv[i], &g_tmpl[g_n_tmpl]) != 0) {
                fprintf(stderr, "bench_load: cannot read %s\n", argv[i]);
                return 2;
            }
            g_n_tmpl++;
        }
    }
    if (rate <= 0 || seconds <= 0 || nconn < 1 || nconn > BL_CONNS_MAX || g_port <= 0) {
        usage(stderr);
        return 2;
    }
    int ep = epoll_create1(0);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct epoll_event tev = { .events = EPOLLIN, .data.ptr = NULL };
    if (ep < 0 || tfd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev) != 0) {
        perror("bench_load: epoll/timerfd");
        return 1;
    }
    struct conn *conns = calloc((size_t)nconn, sizeof *conns);
    for (long i = 0; i < nconn; i++) {
        conns[i].fd = -1;
        if (conn_open(&conns[i], ep) != 0) {
            fprintf(stderr, "bench_load: cannot connect to %s:%d\n", g_host, g_port);
            return 1;
        }
    }
    struct stats s;
    memset(&s, 0, sizeof s);
    const int64_t interval = (int64_t)(1e9 / rate);
    const uint64_t total = (uint64_t)(rate * seconds);
    const uint64_t first_measured = (uint64_t)(rate * warmup);
    const int64_t t0 = now_ns() + 10000000;  /* 10 ms to settle */
    uint64_t next = 0;                          /* next request to send */
    long rr = 0;                                /* round-robin start for idle connections */
    int64_t stop_at = 0;
    struct epoll_event evs[BL_EVENTS];
    for (;;) {
        int64_t t = now_ns();
        /* send every due request that has an idle connection */
        while (next < total && t0 + (int64_t)next * interval <= t) {
            struct conn *c = NULL;
            for (long k = 0; k < nconn; k++) {
                struct conn *cand = &conns[(rr + k) % nconn];
                if (cand->fd >= 0 && cand->state == C_IDLE) {
                    c = cand;
                    rr = (rr + k + 1) % nconn;
                    break;
                }
            }
            if (!c)
                break;  /* all busy: the request waits, its latency keeps counting */
            if (build_request(c, next) != 0) {
                fprintf(stderr, "bench_load: cannot build a request\n");
                return 1;
            }
            c->due_ns = t0 + (int64_t)next * interval;
            c->measured = next >= first_measured;
            if (t - c->due_ns > s.max_lag_ns)
                s.max_lag_ns = t - c->due_ns;
            c->state = C_BUSY;
            next++;
            if (flush_out(c, ep) != 0) {
                record(&s, c, -1, t);
                conn_close(c, ep);
                conn_open(c, ep);
            }
        }
        int busy = 0;
        for (long k = 0; k < nconn; k++)
            busy += conns[k].state == C_BUSY;
        if (next >= total) {
            if (!stop_at)
                stop_at = t + (int64_t)BL_TAIL_S * 1000000000;
            if (!busy || t > stop_at)
                break;
        }
        /* wake at the next due time (only when a connection could take it), or on I/O */
        struct itimerspec its;
        memset(&its, 0, sizeof its);
        int64_t due = next < total && busy < nconn ? t0 + (int64_t)next * interval : t + 100000000;
        if (due <= t)
            due = t + 1000;
        its.it_value.tv_sec = due / 1000000000;
        its.it_value.tv_nsec = due % 1000000000;
        timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
        int n = epoll_wait(ep, evs, BL_EVENTS, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                uint64_t exp;
                if (read(tfd, &exp, sizeof exp) < 0) { /* spurious wake-up: nothing to do */ }
                continue;
            }
            if (c->fd < 0)
                continue;
            int bad = 0;
            if (evs[i].events & EPOLLOUT)
                bad = flush_out(c, ep) != 0;
            if (!bad && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                bad = read_in(c, &s, ep) != 0;
            if (bad) {
                if (c->state == C_BUSY)
                    record(&s, c, -1, now_ns());
                conn_close(c, ep);
                if (conn_open(c, ep) != 0) {
                    fprintf(stderr, "bench_load: cannot reconnect\n");
                    return 1;
                }
            }
        }
    }
    size_t in_flight = 0;
    for (long k = 0; k < nconn; k++)
        in_flight += conns[k].state == C_BUSY && conns[k].measured;
    s.unsent = total - next;
    s.errors += in_flight;
    qsort(s.lat_us, s.n_lat, sizeof *s.lat_us, cmp_u32);
    double span = seconds - warmup;
    printf("bench_load: %zu requests measured at %.0f/s over %ld connections (%.1f s after %.1f s warm-up): "
           "2xx %zu, other %zu, errors %zu, unsent %zu; latency ms p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f; "
           "max send lag %.2f ms\n",
           s.n_lat + s.errors, rate, nconn, span, warmup, s.ok, s.other, s.errors, s.unsent, pct(&s, 50), pct(&s, 90),
           pct(&s, 99), pct(&s, 99.9), s.n_lat ? s.lat_us[s.n_lat - 1] / 1000.0 : 0, s.max_lag_ns / 1e6);
    for (long k = 0; k < nconn; k++) {
        conn_close(&conns[k], ep);
        free(conns[k].out);
        free(conns[k].in);
    }
    free(conns);
    free(s.lat_us);
    close(tfd);
    close(ep);
    return s.other || s.errors || s.unsent ? 1 : 0;
}
