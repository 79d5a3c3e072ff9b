/* api_route.c — see api_route.h. */
#include "api_route.h"

#include <string.h>

#include "api.h"

static const char *const TEMPLATES[API_P_COUNT] = {
    [API_P_INGEST_CLOUDTRAIL] = "/v1/ingest/cloudtrail",
    [API_P_INGEST_EVENTBRIDGE] = "/v1/ingest/eventbridge",
    [API_P_INGEST_FIREHOSE] = "/v1/ingest/firehose",
    [API_P_FINDINGS] = "/v1/findings",
    [API_P_FINDING] = "/v1/findings/{id}",
    [API_P_KEY] = "/v1/keys/{accessKeyId}",
    [API_P_SINKS] = "/v1/sinks",
    [API_P_SINK_DEAD] = "/v1/sinks/{name}/dead-letters",
    [API_P_SINK_RETRY] = "/v1/sinks/{name}/dead-letters/retry",
    [API_P_BACKUP] = "/v1/backup",
    [API_P_HEALTHZ] = "/healthz",
    [API_P_READYZ] = "/readyz",
    [API_P_METRICS] = "/metrics",
    [API_P_OPENAPI] = "/openapi.json",
    [API_P_ROOT] = "/",
    [API_P_UI_BARE] = "/ui",
    [API_P_UI] = "/ui/",
    [API_P_UI_FILE] = "/ui/{file}",
    [API_P_NONE] = "none",
};

static const struct api_route ROUTES[] = {
    {API_P_INGEST_CLOUDTRAIL, "POST", API_H_INGEST, API_ROLE_INGEST},
    {API_P_INGEST_EVENTBRIDGE, "POST", API_H_INGEST, API_ROLE_INGEST},
    /* Amazon Data Firehose's HTTP endpoint delivery (api_firehose.c): the ingest token, also in
     * X-Amz-Firehose-Access-Key */
    {API_P_INGEST_FIREHOSE, "POST", API_H_FIREHOSE, API_ROLE_INGEST},
    {API_P_FINDINGS, "GET", API_H_LIST, API_ROLE_READ},
    {API_P_FINDING, "GET", API_H_GET, API_ROLE_READ},
    {API_P_FINDING, "PATCH", API_H_PATCH, API_ROLE_READ},
    {API_P_KEY, "GET", API_H_KEY, API_ROLE_READ},
    /* findings out: the read token lists, and retries, what the sinks could not deliver */
    {API_P_SINKS, "GET", API_H_SINKS, API_ROLE_READ},
    {API_P_SINK_DEAD, "GET", API_H_DEAD_LETTERS, API_ROLE_READ},
    {API_P_SINK_RETRY, "POST", API_H_SINK_RETRY, API_ROLE_READ},
    /* a copy of the durable store: the read token already reads every finding it holds */
    {API_P_BACKUP, "GET", API_H_BACKUP, API_ROLE_READ},
    {API_P_HEALTHZ, "GET", API_H_HEALTHZ, API_ROLE_NONE},
    {API_P_READYZ, "GET", API_H_READYZ, API_ROLE_NONE},
    {API_P_METRICS, "GET", API_H_METRICS, API_ROLE_NONE},
    {API_P_OPENAPI, "GET", API_H_OPENAPI, API_ROLE_NONE},
    /* the findings page: its files hold no data (every finding comes through the API, with the
     * read token), so they are served without one, and the page can ask for the token */
    {API_P_ROOT, "GET", API_H_ROOT, API_ROLE_NONE},
    {API_P_UI_BARE, "GET", API_H_ROOT, API_ROLE_NONE},
    {API_P_UI, "GET", API_H_UI, API_ROLE_NONE},
    {API_P_UI_FILE, "GET", API_H_UI, API_ROLE_NONE},
};
#define N_ROUTES (sizeof ROUTES / sizeof ROUTES[0])

const char *api_path_template(enum api_path p)
{
    return (unsigned)p < API_P_COUNT ? TEMPLATES[p] : TEMPLATES[API_P_NONE];
}

const struct api_route *api_routes(size_t *n)
{
    *n = N_ROUTES;
    return ROUTES;
}

/* Matches one template segment by segment; a "{name}" segment takes one non-empty segment.
 * Returns 1 on a match, with the parameter (if any) copied into m. */
static int path_match(const char *tmpl, const char *path, struct api_match *m)
{
    const char *t = tmpl, *p = path;
    m->param[0] = '\0';
    m->param_too_long = 0;
    while (*t && *p) {
        if (*t != '/' || *p != '/')
            return 0;
        t++;
        p++;
        size_t tl = strcspn(t, "/"), pl = strcspn(p, "/");
        if (t[0] == '{') {
            if (pl == 0)
                return 0;
            if (pl >= API_PARAM_MAX) {
                m->param_too_long = 1;
            } else {
                memcpy(m->param, p, pl);
                m->param[pl] = '\0';
            }
        } else if (tl != pl || memcmp(t, p, tl) != 0) {
            return 0;
        }
        t += tl;
        p += pl;
    }
    return *t == '\0' && *p == '\0';
}

int api_route_match(const char *method, const char *path, struct api_match *m)
{
    memset(m, 0, sizeof *m);
    m->path = API_P_NONE;
    for (int p = 0; p < API_P_NONE; p++) {
        if (!path_match(TEMPLATES[p], path, m))
            continue;
        m->path = (enum api_path)p;
        size_t used = 0;
        for (size_t i = 0; i < N_ROUTES; i++) {
            if (ROUTES[i].path != m->path)
                continue;
            if (strcmp(ROUTES[i].method, method) == 0)
                m->route = &ROUTES[i];
            size_t ml = strlen(ROUTES[i].method);
            if (used + ml + 3 <= API_ALLOW_MAX) {
                if (used) {
                    memcpy(m->allow + used, ", ", 2);
                    used += 2;
                }
                memcpy(m->allow + used, ROUTES[i].method, ml);
                used += ml;
                m->allow[used] = '\0';
            }
        }
        return m->route ? API_ROUTE_OK : API_ROUTE_BAD_METHOD;
    }
    return API_ROUTE_NOT_FOUND;
}

int api_print_routes(FILE *out)
{
    for (size_t i = 0; i < N_ROUTES; i++)
        if (fprintf(out, "%s %s\n", ROUTES[i].method, TEMPLATES[ROUTES[i].path]) < 0)
            return -1;
    return fflush(out) == 0 ? 0 : -1;
}
