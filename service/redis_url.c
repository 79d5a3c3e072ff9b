/* redis_url.c — CREDWATCH_REDIS_URL and CREDWATCH_REDIS_CLUSTER into a struct rconn_config (see
 * redis_conn.h). Pure parsing: it knows no connection, so nothing here calls the other redis_ files. */
#include "redis_conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URL_PORT_DEFAULT 6379       /* Redis's own, when an address names no port */
#define URL_TIMEOUT_MS_DEFAULT 1000 /* until the caller sets CREDWATCH_REDIS_TIMEOUT_MS's value */
#define URL_DB_MAX 1000             /* a sanity bound: Redis's default is 16 databases */

static int pct_decode(const char *s, size_t n, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            char hex[3] = { s[i + 1], s[i + 2], 0 };
            char *end;
            long v = strtol(hex, &end, 16);
            if (*end || v <= 0)
                return -1;
            ch = (char)v;
            i += 2;
        }
        if (o + 1 >= size)
            return -1;
        out[o++] = ch;
    }
    out[o] = 0;
    return 0;
}

/* "host:port" or "[v6]:port" of length n. */
static int parse_hostport(const char *p, size_t n, struct rconn_addr *a, int default_port, char *msg, size_t msg_size)
{
    const char *colon;
    a->port = default_port;
    if (n && p[0] == '[') {
        const char *close = memchr(p, ']', n);
        if (!close) {
            snprintf(msg, msg_size, "unterminated [IPv6] host");
            return -1;
        }
        snprintf(a->host, sizeof a->host, "%.*s", (int)(close - p - 1), p + 1);
        colon = close + 1 < p + n && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(p, ':', n);
        size_t hl = colon ? (size_t)(colon - p) : n;
        if (hl == 0 || hl >= sizeof a->host) {
            snprintf(msg, msg_size, "missing or too long host in \"%.*s\"", (int)(n > 60 ? 60 : n), p);
            return -1;
        }
        snprintf(a->host, sizeof a->host, "%.*s", (int)hl, p);
    }
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end != p + n || port < 1 || port > 65535) {
            snprintf(msg, msg_size, "invalid port in \"%.*s\"", (int)(n > 60 ? 60 : n), p);
            return -1;
        }
        a->port = (int)port;
    }
    return 0;
}

/* "redis://" or "rediss://" (TLS): sets cfg->tls and returns the rest; s itself when neither. */
static const char *parse_scheme(const char *s, struct rconn_config *cfg)
{
    static const char plain[] = "redis://", tls[] = "rediss://";
    if (strncmp(s, plain, sizeof plain - 1) == 0)
        return s + sizeof plain - 1;
    if (strncmp(s, tls, sizeof tls - 1) == 0) {
        cfg->tls = 1;
        return s + sizeof tls - 1;
    }
    return s;
}

/* Optional "redis://" or "rediss://" and "user:password@"; returns the rest. */
static const char *parse_prefix(const char *s, struct rconn_config *cfg, char *msg, size_t msg_size, int *bad)
{
    const char *rest = parse_scheme(s, cfg);
    *bad = 0;
    if (rest == s && strstr(s, "://")) {
        snprintf(msg, msg_size, "must start with redis:// or rediss:// (TLS)");
        *bad = 1;
        return s;
    }
    s = rest;
    const char *at = strrchr(s, '@');
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        const char *pw = colon ? colon + 1 : s;
        if ((colon && pct_decode(s, (size_t)(colon - s), cfg->user, sizeof cfg->user)) ||
            pct_decode(pw, (size_t)(at - pw), cfg->password, sizeof cfg->password)) {
            snprintf(msg, msg_size, "invalid user name or password (percent-encode special characters)");
            *bad = 1;
        }
        s = at + 1;
    }
    return s;
}

int rconn_parse_url(const char *url, struct rconn_config *cfg, char *msg, size_t msg_size)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->timeout_ms = URL_TIMEOUT_MS_DEFAULT;
    if (strncmp(url, "redis://", 8) != 0 && strncmp(url, "rediss://", 9) != 0) {
        snprintf(msg, msg_size, "must start with redis:// or rediss:// (TLS)");
        return -1;
    }
    int bad;
    const char *p = parse_prefix(url, cfg, msg, msg_size, &bad);
    if (bad)
        return -1;
    const char *slash = strchr(p, '/');
    size_t hp = slash ? (size_t)(slash - p) : strlen(p);
    if (parse_hostport(p, hp, &cfg->seeds[0], URL_PORT_DEFAULT, msg, msg_size))
        return -1;
    cfg->n_seeds = 1;
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end || db < 0 || db > URL_DB_MAX) {
            snprintf(msg, msg_size, "invalid database number");
            return -1;
        }
        cfg->db = (int)db;
    }
    return 0;
}

int rconn_parse_cluster(const char *seeds, struct rconn_config *cfg, char *msg, size_t msg_size)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->timeout_ms = URL_TIMEOUT_MS_DEFAULT;
    cfg->cluster = 1;
    int bad;
    const char *p = parse_prefix(seeds, cfg, msg, msg_size, &bad);
    if (bad)
        return -1;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n) {
            if (cfg->n_seeds == RCONN_SEEDS_MAX) {
                snprintf(msg, msg_size, "more than %d seed nodes", RCONN_SEEDS_MAX);
                return -1;
            }
            /* a scheme per seed would read as a host "rediss" with an invalid port: say what is meant */
            const char *sep = memchr(p, ':', n);
            if (sep && (size_t)(sep - p) + 3 <= n && sep[1] == '/' && sep[2] == '/') {
                snprintf(msg, msg_size, "the scheme (redis:// or rediss://) comes once, before the first seed, "
                         "not in \"%.*s\"", (int)(n > 60 ? 60 : n), p);
                return -1;
            }
            if (parse_hostport(p, n, &cfg->seeds[cfg->n_seeds], URL_PORT_DEFAULT, msg, msg_size))
                return -1;
            cfg->n_seeds++;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    if (!cfg->n_seeds) {
        snprintf(msg, msg_size, "no seed node (host:port,host:port,...)");
        return -1;
    }
    return 0;
}
