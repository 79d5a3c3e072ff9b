/* api_cors.h — CORS for dashboards on other origins (CREDWATCH_CORS_ORIGINS): which origins may
 * call the read API from a browser, the preflight's verdict, and the headers of a reply.
 *
 * Only routes of the read role (API_ROLE_READ) are offered cross-origin; never the ingest routes
 * (a forwarder is no browser), and not the routes that need no token (probes, metrics, the
 * contract, the page: a dashboard has no use for them across origins). Origins are compared
 * exactly, byte for byte, with the list lowercased at start: browsers send the origin serialised
 * as the Fetch standard does it (scheme and host lowercase, no default port), so a listed origin
 * is written that way too. No Access-Control-Allow-Credentials: the token travels in a header the
 * dashboard's script sets, never in a cookie. */
#ifndef CW_API_CORS_H
#define CW_API_CORS_H

#include <jansson.h>
#include <stddef.h>

#include "api_route.h"

#define API_CORS_ORIGINS_MAX 16       /* origins listed; a few dashboards in practice */
#define API_CORS_ORIGIN_LEN_MAX 267   /* "https://" + a 253-byte host name + ":65535" */
#define API_CORS_MAX_AGE_S "600"      /* a browser reuses a preflight's answer this long */
/* What a dashboard's script may send: its credential (Authorization or X-Api-Key), the JSON type
 * of a PATCH or a retry, and X-Requested-With (a 401 then challenges Bearer only, api_reply.c); the
 * read API reads no other request header. */
#define API_CORS_ALLOW_HEADERS "Authorization, Content-Type, X-Api-Key, X-Requested-With"
#define API_CORS_METHODS_MAX 64       /* "GET, PATCH": the read methods of one path */
#define API_CORS_MSG_MAX 256          /* a refusal's message: one quoted origin and its fault */

struct api_cors {
    size_t n;                                               /* 0: CORS off, no header ever */
    char origin[API_CORS_ORIGINS_MAX][API_CORS_ORIGIN_LEN_MAX + 1]; /* lowercased */
};

struct api_req;
struct MHD_Response;

/* Parses a comma-separated list of origins, scheme://host[:port] with scheme http or https (blanks
 * around items ignored). Refused: a path or trailing slash, a query, user info, a wildcard, "null",
 * a default port, an empty item, a duplicate, more than API_CORS_ORIGINS_MAX, one longer than
 * API_CORS_ORIGIN_LEN_MAX. Returns 0, or -1 with msg naming the origin and the fault. A NULL or
 * empty csv gives an empty list. */
int api_cors_parse(const char *csv, struct api_cors *out, char *msg, size_t msg_size);

/* Is origin (a request's Origin header, NULL when absent) listed? */
int api_cors_allowed(const struct api_cors *c, const char *origin);

/* May the route be called cross-origin (a read-role route)? */
int api_cors_route_eligible(const struct api_route *route);

/* The methods of path p that may be called cross-origin, "GET, PATCH", from the route table; their
 * number (0: the path is never offered cross-origin). */
size_t api_cors_methods(enum api_path p, char *out, size_t size);

/* The verdict on a preflight (OPTIONS) for path p: 0 when the origin is listed and method is one
 * of api_cors_methods(p), else -1 with why set (CORS off, not a preflight, the path, the origin or
 * the method). origin and method are the request's headers, NULL when absent. */
int api_cors_preflight(const struct api_cors *c, enum api_path p, const char *origin, const char *method, char *why,
                       size_t why_size);

/* Adds the CORS headers a reply to r calls for: none when CORS is off or the path has no read-role
 * route; else Vary: Origin, and Access-Control-Allow-Origin when the origin is listed (any status,
 * a 405 too; not a refused preflight); a preflight accepted (r->preflight) also gets the methods,
 * headers and max age. */
void api_cors_add_headers(const struct api_req *r, struct MHD_Response *resp);

/* The list as a JSON array, for the start log. */
json_t *api_cors_json(const struct api_cors *c);

#endif
