/* sink.c — one delivery: payload, signature, POST, verdict (sink.h). */
#include "sink.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cw.h"
#include "sink_sign.h"

#define HEADER_MAX (64 + SNK_SIG_MAX + SNK_ID_MAX)

struct snk {
    struct snk_conf conf;
    struct snk_formatters fmt;
    struct snk_http *http;
};

int snk_open(const struct snk_conf *c, const struct snk_formatters *fmt, struct snk **out)
{
    struct snk *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        return CW_ENOMEM;
    s->conf = *c;
    if (fmt)
        s->fmt = *fmt;
    int rc = snk_http_open(&s->conf, &s->http);
    if (rc) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void snk_close(struct snk *s)
{
    if (!s)
        return;
    snk_http_close(s->http);
    memset(&s->conf, 0, sizeof s->conf);  /* the secrets go with the sink */
    free(s);
}

const struct snk_conf *snk_conf_of(const struct snk *s)
{
    return &s->conf;
}

/* The webhook's three headers. */
static int webhook_headers(const struct snk *s, const struct snk_payload *p, int64_t now_ms,
                           char lines[3][HEADER_MAX])
{
    char sig[SNK_SIG_MAX];
    int rc = snk_sign(s->conf.secret, now_ms / 1000, p->body, p->len, sig, sizeof sig);
    if (rc)
        return rc;
    snprintf(lines[0], HEADER_MAX, "Credwatch-Signature: %s", sig);
    snprintf(lines[1], HEADER_MAX, "Credwatch-Event: %s", p->event);
    snprintf(lines[2], HEADER_MAX, "Credwatch-Idempotency-Key: %s", p->idempotency_key);
    return 0;
}

int snk_deliver(struct snk *s, const char *finding_json, uint64_t revision, int kind, int64_t now_ms,
                struct snk_result *res)
{
    struct snk_payload p;
    char lines[3][HEADER_MAX];
    const char *headers[3] = { lines[0], lines[1], lines[2] };
    size_t n_headers = 0;
    memset(res, 0, sizeof *res);
    res->retry_after_s = -1;
    int rc = snk_payload_build(&s->conf, &s->fmt, finding_json, revision, kind, &p, res->error, sizeof res->error);
    if (rc)
        goto out;
    if (s->conf.type == SNK_WEBHOOK) {
        if ((rc = webhook_headers(s, &p, now_ms, lines))) {
            snprintf(res->error, sizeof res->error, "cannot sign the body: %s", cw_strerror(rc));
            goto out;
        }
        n_headers = 3;
    }
    rc = snk_http_post(s->http, s->conf.url, headers, n_headers, p.body, p.len, now_ms, res);
out:
    snk_payload_free(&p);
    /* a body that cannot be built never will be; memory may come back */
    res->verdict = rc == 0 || rc == CW_EUNAVAIL ? (int)snk_classify(res)
                 : rc == CW_ENOMEM ? SNK_RETRY : SNK_PERMANENT;
    return rc;
}
