/* api_cors.c — see api_cors.h. */
#include "api_cors.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api_http.h"
#include "cw.h"

#define API_CORS_HOST_MAX 253   /* the longest text form of a DNS name */
#define API_CORS_QUOTE_MAX 80   /* how much of a refused origin a message quotes */
#define API_CORS_STR_(x) #x
#define API_CORS_STR(x) API_CORS_STR_(x)

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

/* Dot-separated labels of letters, digits and '-': a host name as a browser sends it (an
 * internationalised one in its xn-- form) or an IPv4 address. No empty label, so no trailing dot. */
static int host_name_ok(const char *h, size_t n)
{
    if (n == 0 || n > API_CORS_HOST_MAX)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        if (h[i] == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (is_alpha(h[i]) || is_digit(h[i]) || h[i] == '-') {
            label++;
        } else {
            return 0;
        }
    }
    return label > 0;
}

/* "[v6]": hex digits, colons and dots (an embedded IPv4 address) between brackets. */
static int host_v6_ok(const char *h, size_t n)
{
    if (n < 4 || h[0] != '[' || h[n - 1] != ']')
        return 0;
    for (size_t i = 1; i + 1 < n; i++)
        if (!is_hex(h[i]) && h[i] != ':' && h[i] != '.')
            return 0;
    return 1;
}

/* The port after ':': 1-65535 without a leading zero, and not the scheme's default port, which a
 * browser never sends (such an entry could never match). NULL when fine, else the fault. */
static const char *port_fault(const char *p, size_t n, int https)
{
    static const char bad[] = "expected a port 1-65535 after the host";
    if (n == 0 || n > 5 || p[0] == '0')
        return bad;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(p[i]))
            return bad;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v > 65535)
        return bad;
    if (v == (https ? 443u : 80u))
        return https ? "leave out :443: browsers never send the default port" : "leave out :80: browsers never send "
                                                                                 "the default port";
    return NULL;
}

/* What follows "scheme://": nothing of a URL but the host and port. NULL when fine. */
static const char *authority_fault(const char *h, size_t n, int https)
{
    for (size_t i = 0; i < n; i++) {
        if (h[i] == '/' || h[i] == '\\')
            return i + 1 == n && h[i] == '/' ? "no trailing slash: an origin has no path" : "an origin has no path";
        if (h[i] == '?' || h[i] == '#')
            return "an origin has no query or fragment";
        if (h[i] == '@')
            return "an origin has no user name or password";
    }
    size_t hn;
    if (n && h[0] == '[') {
        const char *close = memchr(h, ']', n);
        hn = close ? (size_t)(close - h) + 1 : n;
        if (!host_v6_ok(h, hn))
            return "expected an IPv6 address between [ and ]";
    } else {
        const char *colon = memchr(h, ':', n);
        hn = colon ? (size_t)(colon - h) : n;
        if (!host_name_ok(h, hn))
            return "expected a host name or address (letters, digits, '-' and '.') after the scheme";
    }
    if (hn == n)
        return NULL;
    if (h[hn] != ':')
        return "expected ':' and a port after the host";
    return port_fault(h + hn + 1, n - hn - 1, https);
}

/* Is s[0..n) an origin we accept? NULL when it is, else the fault. */
static const char *origin_fault(const char *s, size_t n)
{
    if (n > API_CORS_ORIGIN_LEN_MAX)
        return "longer than " API_CORS_STR(API_CORS_ORIGIN_LEN_MAX) " bytes (API_CORS_ORIGIN_LEN_MAX)";
    if (n == 4 && strncasecmp(s, "null", 4) == 0)
        return "\"null\" is refused: sandboxed frames and local files all send it, so it would admit anyone";
    if (memchr(s, '*', n))
        return "wildcards are refused: list each origin";
    size_t sl = n >= 7 && strncasecmp(s, "http://", 7) == 0 ? 7 : n >= 8 && strncasecmp(s, "https://", 8) == 0 ? 8 : 0;
    if (!sl)
        return "expected http:// or https:// and a host, e.g. https://soc.example.com";
    return authority_fault(s + sl, n - sl, sl == 8);
}

/* Copies at most API_CORS_QUOTE_MAX bytes of s[0..n) for a message, printable ASCII only: the
 * value goes to a JSON log line, which must be valid UTF-8. */
static void quote(const char *s, size_t n, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n && i < API_CORS_QUOTE_MAX && o + 1 < size; i++)
        out[o++] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
    out[o] = '\0';
}

/* Validates and stores one item of the list (len > 0); k is its place, from 1. */
static int add_origin(struct api_cors *out, const char *s, size_t len, size_t k, char *msg, size_t msg_size)
{
    char q[API_CORS_QUOTE_MAX + 1];
    quote(s, len, q, sizeof q);
    if (out->n == API_CORS_ORIGINS_MAX) {
        snprintf(msg, msg_size, "more than %d origins (API_CORS_ORIGINS_MAX)", API_CORS_ORIGINS_MAX);
        return -1;
    }
    const char *why = origin_fault(s, len);
    if (why) {
        snprintf(msg, msg_size, "origin %zu \"%s%s\": %s", k, q, len > API_CORS_QUOTE_MAX ? "..." : "", why);
        return -1;
    }
    char *o = out->origin[out->n];
    for (size_t i = 0; i < len; i++)
        o[i] = lower(s[i]);
    o[len] = '\0';
    if (api_cors_allowed(out, o)) {
        snprintf(msg, msg_size, "origin %zu \"%s\" is listed twice", k, q);
        return -1;
    }
    out->n++;
    return 0;
}

int api_cors_parse(const char *csv, struct api_cors *out, char *msg, size_t msg_size)
{
    memset(out, 0, sizeof *out);
    const char *p = cw_csv_begin(csv), *start;
    size_t len;
    for (size_t k = 1; cw_csv_next(&p, &start, &len); k++) {
        if (len == 0) {
            snprintf(msg, msg_size, "origin %zu is empty (a stray comma?)", k);
            return -1;
        }
        if (add_origin(out, start, len, k, msg, msg_size))
            return -1;
    }
    return 0;
}

int api_cors_allowed(const struct api_cors *c, const char *origin)
{
    if (!origin)
        return 0;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->origin[i], origin) == 0)
            return 1;
    return 0;
}

int api_cors_route_eligible(const struct api_route *route)
{
    return route && route->role == API_ROLE_READ;
}

size_t api_cors_methods(enum api_path p, char *out, size_t size)
{
    size_t n_routes, k = 0, used = 0;
    const struct api_route *routes = api_routes(&n_routes);
    if (size)
        out[0] = '\0';
    for (size_t i = 0; i < n_routes; i++) {
        if (routes[i].path != p || !api_cors_route_eligible(&routes[i]))
            continue;
        int w = snprintf(out + used, size - used, "%s%s", k ? ", " : "", routes[i].method);
        if (w < 0 || (size_t)w >= size - used)
            break;  /* API_CORS_METHODS_MAX holds every path's methods; never cut one in half */
        used += (size_t)w;
        k++;
    }
    return k;
}

/* Is method one of the cross-origin methods of path p? */
static int method_offered(enum api_path p, const char *method)
{
    size_t n_routes;
    const struct api_route *routes = api_routes(&n_routes);
    for (size_t i = 0; i < n_routes; i++)
        if (routes[i].path == p && api_cors_route_eligible(&routes[i]) && strcmp(routes[i].method, method) == 0)
            return 1;
    return 0;
}

int api_cors_preflight(const struct api_cors *c, enum api_path p, const char *origin, const char *method, char *why,
                       size_t why_size)
{
    char methods[API_CORS_METHODS_MAX];
    const char *tmpl = api_path_template(p);
    if (!c->n)
        snprintf(why, why_size, "cross-origin requests are not enabled (CREDWATCH_CORS_ORIGINS is unset)");
    else if (!origin)
        snprintf(why, why_size, "not a CORS preflight: no Origin header");
    else if (!method)
        snprintf(why, why_size, "not a CORS preflight: no Access-Control-Request-Method header");
    else if (api_cors_methods(p, methods, sizeof methods) == 0)
        snprintf(why, why_size, "%s is not offered cross-origin: only the read API is", tmpl);
    else if (!api_cors_allowed(c, origin))
        snprintf(why, why_size, "origin \"%.100s\" is not in CREDWATCH_CORS_ORIGINS", origin);
    else if (!method_offered(p, method))
        snprintf(why, why_size, "%.16s %s is not offered cross-origin; offered: %s", method, tmpl, methods);
    else
        return 0;
    return -1;
}

void api_cors_add_headers(const struct api_req *r, struct MHD_Response *resp)
{
    const struct api_cors *c = &r->srv->cfg.cors;
    char methods[API_CORS_METHODS_MAX];
    /* Every reply on a path the read API offers, whatever its status and method (a 405, a refused
     * preflight), varies by Origin: a cache must not give one origin's answer to another. */
    if (!c->n || api_cors_methods(r->match.path, methods, sizeof methods) == 0)
        return;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Origin");
    const char *origin = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Origin");
    int refused_preflight = !r->preflight && r->method && strcmp(r->method, "OPTIONS") == 0;
    if (refused_preflight || !api_cors_allowed(c, origin))
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", origin);
    if (!r->preflight)
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", methods);
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", API_CORS_ALLOW_HEADERS);
    MHD_add_response_header(resp, "Access-Control-Max-Age", API_CORS_MAX_AGE_S);
    /* Chromium's Private Network Access: a dashboard on a public HTTPS origin calling credwatch on a
     * private or loopback address asks first; a listed origin is allowed that too. */
    const char *pna = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Access-Control-Request-Private-Network");
    if (pna && strcmp(pna, "true") == 0)
        MHD_add_response_header(resp, "Access-Control-Allow-Private-Network", "true");
}

json_t *api_cors_json(const struct api_cors *c)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < c->n; i++)
        json_array_append_new(a, json_string(c->origin[i]));
    return a;
}
