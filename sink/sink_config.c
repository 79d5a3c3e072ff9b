/* sink_config.c — CREDWATCH_SINKS and its per-sink variables, checked once at start (sink_config.h). */
#include "sink_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cw.h"

#define ENV_PREFIX "CREDWATCH_SINK_"
#define VAR_MAX 96                  /* CREDWATCH_SINK_ + 31-byte name + _CONNECT_TIMEOUT_MS */
#define TIMEOUT_MIN_MS 100L         /* below this a TLS handshake to a distant receiver cannot finish */
#define TIMEOUT_MAX_MS 60000L       /* a sink must not hold a delivery thread longer than the store's claim */
#define TIMEOUT_DEFAULT_MS 10000L
#define CONNECT_DEFAULT_MS 3000L
#define GIVE_UP_MIN_S 60L
#define GIVE_UP_MAX_S 604800L       /* a week: longer and a "stolen key" alert describes an expired key */

/* Where the variables of one sink are read from, and where a failure is told. */
struct env {
    const char *(*get)(const char *name);
    const char *sink;
    char var[VAR_MAX];              /* the variable last read: what an error names */
    char *msg;
    size_t msg_size;
};

static const char *const type_names[] = { [SNK_WEBHOOK] = "webhook", [SNK_SLACK] = "slack",
                                          [SNK_PAGERDUTY] = "pagerduty" };
static const char *const format_names[] = { [SNK_FMT_CREDWATCH] = "credwatch", [SNK_FMT_OCSF] = "ocsf",
                                            [SNK_FMT_ASFF] = "asff" };
static const char *const sev_names[] = { [SNK_SEV_LOW] = "low", [SNK_SEV_MEDIUM] = "medium",
                                         [SNK_SEV_HIGH] = "high", [SNK_SEV_CRITICAL] = "critical" };

static int lookup(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (names[i] && s && strcmp(names[i], s) == 0)
            return i;
    return -1;
}

int snk_severity_parse(const char *s)
{
    return lookup(sev_names, (int)(sizeof sev_names / sizeof sev_names[0]), s);
}

const char *snk_type_name(enum snk_type t)
{
    return t >= SNK_WEBHOOK && t <= SNK_PAGERDUTY ? type_names[t] : "unknown";
}

const char *snk_format_name(enum snk_format f)
{
    return f >= SNK_FMT_CREDWATCH && f <= SNK_FMT_ASFF ? format_names[f] : "unknown";
}

static int fail(struct env *e, const char *what)
{
    snprintf(e->msg, e->msg_size, "%s: %s", e->var, what);
    return CW_ECONFIG;
}

/* The value of CREDWATCH_SINK_<NAME>_<suffix>; NULL when unset or empty. */
static const char *val(struct env *e, const char *suffix)
{
    size_t n = (size_t)snprintf(e->var, sizeof e->var, ENV_PREFIX);
    for (const char *p = e->sink; *p && n + 1 < sizeof e->var; p++)
        e->var[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    snprintf(e->var + n, sizeof e->var - n, "_%s", suffix);
    const char *v = e->get(e->var);
    return v && *v ? v : NULL;
}

/* A variable the type does not use: refused, so a mistyped TYPE or a stray secret is seen. */
static int refuse(struct env *e, const char *suffix, const char *type)
{
    if (!val(e, suffix))
        return 0;
    char why[64];
    snprintf(why, sizeof why, "not used by a %s sink (unset it)", type);
    return fail(e, why);
}

static int copy(struct env *e, const char *v, char *out, size_t size)
{
    if (strlen(v) >= size)
        return fail(e, "too long");
    memcpy(out, v, strlen(v) + 1);
    return 0;
}

static int parse_long(struct env *e, const char *v, long lo, long hi, long *out)
{
    char *end = (char *)v;
    errno = 0;
    long x = (v[0] >= '0' && v[0] <= '9') ? strtol(v, &end, 10) : -1;
    if (x < 0 || errno || *end || x < lo || x > hi) {
        char why[80];
        snprintf(why, sizeof why, "not a whole number in %ld-%ld", lo, hi);
        return fail(e, why);
    }
    *out = x;
    return 0;
}

/* http or https, a host, and none of the bytes that would end a Slack link (<>|), quote it in a
 * header or log line, or hide in one (controls, spaces, non-ASCII). The value is never echoed: a
 * Slack URL is itself the credential. */
static int check_url(struct env *e, const char *v, char *out, size_t size)
{
    size_t skip = strncasecmp(v, "https://", 8) == 0 ? 8 : strncasecmp(v, "http://", 7) == 0 ? 7 : 0;
    if (!skip)
        return fail(e, "not an http:// or https:// URL");
    if (!v[skip] || strchr("/?#@:", v[skip]))
        return fail(e, "URL without a host");
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p >= 0x7f || strchr("<>|\"`\\", *p))
            return fail(e, "URL with a space, control, quote, <, >, | or non-ASCII byte");
    return copy(e, v, out, size);
}

static int parse_names(const char *list, char names[SNK_MAX][SNK_NAME_MAX + 1], size_t *n, struct env *e)
{
    snprintf(e->var, sizeof e->var, "CREDWATCH_SINKS");
    *n = 0;
    for (const char *p = list; *p;) {
        while (*p == ' ')
            p++;
        size_t len = strcspn(p, ", ");
        if (len == 0 || len > SNK_NAME_MAX || strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_-") < len)
            return fail(e, "each name is 1-31 of a-z 0-9 _ -, comma-separated");
        if (*n == SNK_MAX)
            return fail(e, "more than 8 sinks");
        memcpy(names[*n], p, len);
        names[*n][len] = '\0';
        for (size_t i = 0; i < *n; i++) {
            /* "a-b" and "a_b" read the same variables: the same sink twice */
            int same = strlen(names[i]) == len;
            for (size_t k = 0; same && k < len; k++)
                same = (names[i][k] == '-' ? '_' : names[i][k]) == (p[k] == '-' ? '_' : p[k]);
            if (same)
                return fail(e, "a sink named twice ('-' and '_' read the same variables)");
        }
        (*n)++;
        p += len;
        while (*p == ' ')
            p++;
        if (*p == ',' && !*++p)
            return fail(e, "a trailing comma");
    }
    return 0;
}

static int load_webhook(struct env *e, struct snk_conf *c)
{
    const char *v;
    int rc;
    if (!(v = val(e, "URL")))
        return fail(e, "required for a webhook sink");
    if ((rc = check_url(e, v, c->url, sizeof c->url)))
        return rc;
    if (!(v = val(e, "SECRET")))
        return fail(e, "required for a webhook sink (the HMAC key the receiver checks)");
    if (strlen(v) < SNK_SECRET_MIN)
        return fail(e, "shorter than 16 bytes");
    if ((rc = copy(e, v, c->secret, sizeof c->secret)))
        return rc;
    if ((v = val(e, "FORMAT"))) {
        int f = lookup(format_names, (int)(sizeof format_names / sizeof format_names[0]), v);
        if (f < 0)
            return fail(e, "not one of credwatch, ocsf, asff");
        c->format = (enum snk_format)f;
    }
    if ((rc = refuse(e, "ROUTING_KEY", "webhook")) || (rc = refuse(e, "FINDING_BASE_URL", "webhook")))
        return rc;
    return 0;
}

static int load_slack_pd(struct env *e, struct snk_conf *c)
{
    const char *v, *tn = snk_type_name(c->type);
    int rc;
    if ((v = val(e, "URL"))) {
        if ((rc = check_url(e, v, c->url, sizeof c->url)))
            return rc;
    } else if (c->type == SNK_SLACK) {
        return fail(e, "required for a slack sink (the incoming-webhook URL)");
    } else {
        snprintf(c->url, sizeof c->url, "%s", SNK_PAGERDUTY_URL);
    }
    if (c->type == SNK_PAGERDUTY) {
        if (!(v = val(e, "ROUTING_KEY")))
            return fail(e, "required for a pagerduty sink");
        if ((rc = copy(e, v, c->routing_key, sizeof c->routing_key)))
            return rc;
    } else if ((rc = refuse(e, "ROUTING_KEY", tn))) {
        return rc;
    }
    if ((v = val(e, "FINDING_BASE_URL")) && (rc = check_url(e, v, c->finding_base_url, sizeof c->finding_base_url)))
        return rc;
    if ((rc = refuse(e, "SECRET", tn)) || (rc = refuse(e, "FORMAT", tn)))
        return rc;
    return 0;
}

/* The settings every type has. */
static int load_common(struct env *e, struct snk_conf *c)
{
    const char *v;
    int rc;
    long x;
    if ((v = val(e, "MIN_SEVERITY")) && (c->min_severity = snk_severity_parse(v)) < 0)
        return fail(e, "not one of low, medium, high, critical");
    if ((v = val(e, "CA_FILE"))) {
        if ((rc = copy(e, v, c->ca_file, sizeof c->ca_file)))
            return rc;
        FILE *f = fopen(v, "r");
        if (!f)
            return fail(e, "cannot be read");
        fclose(f);
    }
    if ((v = val(e, "TIMEOUT_MS")) && (rc = parse_long(e, v, TIMEOUT_MIN_MS, TIMEOUT_MAX_MS, &c->timeout_ms)))
        return rc;
    if ((v = val(e, "CONNECT_TIMEOUT_MS"))) {
        if ((rc = parse_long(e, v, TIMEOUT_MIN_MS, TIMEOUT_MAX_MS, &c->connect_timeout_ms)))
            return rc;
        if (c->connect_timeout_ms > c->timeout_ms)
            return fail(e, "longer than the sink's TIMEOUT_MS");
    } else if (c->connect_timeout_ms > c->timeout_ms) {
        c->connect_timeout_ms = c->timeout_ms;
    }
    if ((v = val(e, "GIVE_UP_SECONDS"))) {
        if ((rc = parse_long(e, v, GIVE_UP_MIN_S, GIVE_UP_MAX_S, &x)))
            return rc;
        c->give_up_s = x;
    }
    return 0;
}

static int load_one(struct env *e, const char *name, struct snk_conf *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->format = SNK_FMT_CREDWATCH;
    c->min_severity = SNK_SEV_LOW;
    c->timeout_ms = TIMEOUT_DEFAULT_MS;
    c->connect_timeout_ms = CONNECT_DEFAULT_MS;
    c->give_up_s = SNK_GIVE_UP_S;
    e->sink = name;
    const char *v = val(e, "TYPE");
    int t = v ? lookup(type_names, (int)(sizeof type_names / sizeof type_names[0]), v) : -1;
    if (t < 0)
        return fail(e, v ? "not one of webhook, slack, pagerduty" : "required (webhook, slack or pagerduty)");
    c->type = (enum snk_type)t;
    int rc = c->type == SNK_WEBHOOK ? load_webhook(e, c) : load_slack_pd(e, c);
    return rc ? rc : load_common(e, c);
}

static const char *env_get(const char *name)
{
    return getenv(name);
}

int snk_config_load(struct snk_confs *out, const char *(*get)(const char *name), char *msg, size_t msg_size)
{
    char names[SNK_MAX][SNK_NAME_MAX + 1];
    struct env e = { .get = get ? get : env_get, .msg = msg, .msg_size = msg_size };
    size_t n = 0;
    int rc = 0;
    if (msg_size)
        msg[0] = '\0';
    out->n = 0;
    const char *list = e.get("CREDWATCH_SINKS");
    if (list && (rc = parse_names(list, names, &n, &e)))
        return rc;
    for (size_t i = 0; i < n; i++) {
        if ((rc = load_one(&e, names[i], &out->sink[i]))) {
            memset(out->sink, 0, sizeof out->sink);  /* no secret left behind in a failed load */
            return rc;
        }
    }
    out->n = n;
    return 0;
}

/* The settings a sink reads (the suffixes of CREDWATCH_SINK_<NAME>_...). */
static const char *const SUFFIXES[] = { "TYPE", "URL", "SECRET", "ROUTING_KEY", "FORMAT", "MIN_SEVERITY", "CA_FILE",
                                        "TIMEOUT_MS", "CONNECT_TIMEOUT_MS", "GIVE_UP_SECONDS", "FINDING_BASE_URL" };

/* 1 when var (NAME=value) is CREDWATCH_SINK_<name of c>_<a known suffix>. */
static int var_of(const struct snk_conf *c, const char *var, size_t len)
{
    char pre[sizeof ENV_PREFIX + SNK_NAME_MAX + 1];
    size_t n = (size_t)snprintf(pre, sizeof pre, ENV_PREFIX);
    for (const char *p = c->name; *p && n + 2 < sizeof pre; p++)
        pre[n++] = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
    pre[n++] = '_';
    if (len <= n || strncmp(var, pre, n) != 0)
        return 0;
    for (size_t i = 0; i < sizeof SUFFIXES / sizeof SUFFIXES[0]; i++)
        if (strlen(SUFFIXES[i]) == len - n && strncmp(var + n, SUFFIXES[i], len - n) == 0)
            return 1;
    return 0;
}

int snk_config_check_env(const struct snk_confs *confs, char *const *env, char *msg, size_t msg_size)
{
    for (char *const *e = env; e && *e; e++) {
        if (strncmp(*e, ENV_PREFIX, sizeof ENV_PREFIX - 1) != 0)
            continue;
        size_t len = strcspn(*e, "=");
        int known = 0;
        for (size_t i = 0; i < confs->n && !known; i++)
            known = var_of(&confs->sink[i], *e, len);
        if (!known) {
            snprintf(msg, msg_size, "%.*s: not a setting of a sink named in CREDWATCH_SINKS (a misspelt name, "
                     "or a sink left out of the list)", (int)(len < 96 ? len : 96), *e);
            return CW_ECONFIG;
        }
    }
    return 0;
}

/* The URL as the log may show it: scheme://host[:port][/path], userinfo, query and fragment
 * replaced by [redacted]; with_path 0 keeps only scheme and host. */
static void redact_url(const char *url, int with_path, char *out, size_t size)
{
    const char *host = strstr(url, "://");
    host = host ? host + 3 : url;
    size_t auth_len = strcspn(host, "/?#");
    const char *at = memchr(host, '@', auth_len);
    const char *h = at ? at + 1 : host;
    size_t hlen = auth_len - (size_t)(h - host);
    const char *path = host + auth_len;
    size_t plen = with_path ? strcspn(path, "?#") : 0;
    const char *cut = path[plen] == '\0' ? "" : with_path ? "?[redacted]" : "/[redacted]";
    snprintf(out, size, "%.*s%s%.*s%.*s%s", (int)(host - url), url, at ? "[redacted]@" : "", (int)hlen, h,
             (int)plen, path, cut);
}

void snk_describe(const struct snk_conf *c, char *out, size_t size)
{
    char url[SNK_URL_MAX + 32], base[SNK_URL_MAX + 32] = "";
    redact_url(c->url, c->type != SNK_SLACK, url, sizeof url);
    if (c->finding_base_url[0])
        redact_url(c->finding_base_url, 1, base, sizeof base);
    snprintf(out, size,
             "sink %s: type=%s url=%s%s%s%s%s min_severity=%s timeout_ms=%ld connect_timeout_ms=%ld "
             "give_up_seconds=%lld ca_file=%s%s%s",
             c->name, snk_type_name(c->type), url, c->type == SNK_WEBHOOK ? " format=" : "",
             c->type == SNK_WEBHOOK ? snk_format_name(c->format) : "", base[0] ? " finding_base_url=" : "", base,
             c->min_severity >= SNK_SEV_LOW && c->min_severity <= SNK_SEV_CRITICAL ? sev_names[c->min_severity] : "?",
             c->timeout_ms, c->connect_timeout_ms, (long long)c->give_up_s, c->ca_file[0] ? c->ca_file : "(system)",
             c->secret[0] ? " secret=[redacted]" : "", c->routing_key[0] ? " routing_key=[redacted]" : "");
}
