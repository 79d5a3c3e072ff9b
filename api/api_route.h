/* api_route.h — the one route table: the router matches against it, --print-routes prints it,
 * metrics label requests with its path templates, and tests compare it with openapi.json. */
#ifndef CW_API_ROUTE_H
#define CW_API_ROUTE_H

#include <stddef.h>

#include "api_auth.h"

/* Path templates; API_P_NONE labels requests that matched no path. */
enum api_path { API_P_INGEST_CLOUDTRAIL = 0, API_P_INGEST_EVENTBRIDGE, API_P_INGEST_FIREHOSE, API_P_FINDINGS, API_P_FINDING, API_P_KEY,
                API_P_SINKS, API_P_SINK_DEAD, API_P_SINK_RETRY, API_P_BACKUP, API_P_HEALTHZ, API_P_READYZ, API_P_METRICS,
                API_P_OPENAPI, API_P_ROOT, API_P_UI_BARE, API_P_UI, API_P_UI_FILE, API_P_NONE, API_P_COUNT };

/* The handler also tells api_request.c which body a route reads: API_H_INGEST the ingest body,
 * API_H_PATCH and API_H_SINK_RETRY a small JSON object (application/json, API_PATCH_BODY_MAX), the
 * others none. */
enum api_handler { API_H_INGEST = 0, API_H_LIST, API_H_GET, API_H_PATCH, API_H_KEY, API_H_SINKS, API_H_DEAD_LETTERS,
                   API_H_SINK_RETRY, API_H_HEALTHZ, API_H_READYZ, API_H_METRICS, API_H_OPENAPI, API_H_ROOT,
                   API_H_UI, API_H_FIREHOSE, API_H_BACKUP };

struct api_route {
    enum api_path path;
    const char *method;
    enum api_handler handler;
    enum api_role role;   /* API_ROLE_NONE: no token needed */
};

#define API_PARAM_MAX 160   /* a path parameter: access key ids are at most 128 characters */
#define API_ALLOW_MAX 64    /* the Allow header of a 405 */

struct api_match {
    const struct api_route *route;  /* NULL unless API_ROUTE_OK */
    enum api_path path;             /* API_P_NONE when no path matched */
    char param[API_PARAM_MAX];      /* the {id} / {accessKeyId} / {name} / {file} segment, if any */
    int param_too_long;             /* the segment did not fit: param is empty */
    char allow[API_ALLOW_MAX];      /* methods of the matched path, "GET, PATCH" */
};

enum { API_ROUTE_OK = 0, API_ROUTE_NOT_FOUND = -1, API_ROUTE_BAD_METHOD = -2 };

/* The path template of p ("/v1/findings/{id}"), or "none" for API_P_NONE. */
const char *api_path_template(enum api_path p);

/* Matches method and path (no query string). Returns API_ROUTE_OK, API_ROUTE_NOT_FOUND (404)
 * or API_ROUTE_BAD_METHOD (405: m->path and m->allow are set). */
int api_route_match(const char *method, const char *path, struct api_match *m);

/* The table itself, for tests and the OpenAPI check. */
const struct api_route *api_routes(size_t *n);

#endif
