/* store.c — what both store implementations share: names of statuses, freeing, outbox limits and names. */
#include "store.h"

#include <stdlib.h>
#include <string.h>

static const char *const status_names[STORE_ST_COUNT] = {
    [STORE_ST_OPEN] = "open", [STORE_ST_ACKNOWLEDGED] = "acknowledged", [STORE_ST_RESOLVED] = "resolved",
    [STORE_ST_SUPPRESSED] = "suppressed", [STORE_ST_RETRACTED] = "retracted",
};

const char *store_status_name(int st)
{
    return st >= 0 && st < STORE_ST_COUNT ? status_names[st] : "open";
}

int store_status_parse(const char *s)
{
    for (int i = 0; i < STORE_ST_COUNT; i++)
        if (strcmp(s, status_names[i]) == 0)
            return i;
    return -1;
}

const char *store_workload_name(const char *w)
{
    return w && w[0] ? w : "lambda";
}

void store_finding_free(struct store_finding *f)
{
    if (!f)
        return;
    free(f->evidence_json);
    free(f->note);
    f->evidence_json = NULL;
    f->note = NULL;
}

int store_finding_get_many(struct store *s, const char *const *ids, size_t n, struct store_finding *out, int *rcs)
{
    if (s->ops->finding_get_many)
        return s->ops->finding_get_many(s, ids, n, out, rcs);
    for (size_t i = 0; i < n; i++) {
        rcs[i] = s->ops->finding_get(s, ids[i], &out[i]);
        if (rcs[i] && rcs[i] != CW_ENOTFOUND) {
            for (size_t k = 0; k < i; k++)
                if (!rcs[k])
                    store_finding_free(&out[k]);
            return CW_EUNAVAIL;
        }
    }
    return 0;
}

int store_next_status(int current, int exists, int new_outside)
{
    if (!exists)
        return STORE_ST_OPEN;
    if (new_outside && (current == STORE_ST_RESOLVED || current == STORE_ST_RETRACTED))
        return STORE_ST_OPEN;
    return current;
}

void store_event_free(struct store_event *ev)
{
    if (ev)
        store_finding_free(&ev->finding);
}

static struct store_out_limits out_limits = { STORE_OUT_MAX, STORE_OUT_CLAIM_MS, STORE_DEAD_MAX };

void store_out_set_limits(const struct store_out_limits *l)
{
    struct store_out_limits d = { STORE_OUT_MAX, STORE_OUT_CLAIM_MS, STORE_DEAD_MAX };
    out_limits = l ? *l : d;
}

void store_out_get_limits(struct store_out_limits *l)
{
    *l = out_limits;
}

int store_sink_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= STORE_SINK_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int store_consumer_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n >= STORE_CONSUMER_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] <= ' ' || (unsigned char)name[i] >= 0x7f)
            return 0;
    return 1;
}

const char *store_event_kind_name(int kind)
{
    switch (kind) {
    case STORE_EV_CREATED:
        return "created";
    case STORE_EV_STATUS:
        return "status";
    default:
        return "updated";
    }
}
