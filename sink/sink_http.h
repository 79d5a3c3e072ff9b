/* sink_http.h — one POST to a receiver over libcurl, with the sink's TLS and time settings.
 * One struct snk_http (one curl easy handle, its connection kept alive) per sink per thread:
 * a handle is never shared between threads. */
#ifndef CW_SINK_HTTP_H
#define CW_SINK_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "sink_config.h"

#define SNK_ERROR_MAX 256           /* libcurl's CURL_ERROR_SIZE */
#define SNK_RESPONSE_MAX (64 * 1024) /* response body read (and dropped) before the transfer is cut */

/* What one attempt came to. */
struct snk_result {
    long status;                    /* HTTP status; 0 when no response came (transport failure) */
    char error[SNK_ERROR_MAX];      /* libcurl's words for a transport failure, else "" */
    int64_t retry_after_s;          /* Retry-After in seconds from the response (a date: from now), -1 none */
    int64_t elapsed_ms;
    int verdict;                    /* enum snk_verdict, set by snk_deliver */
};

struct snk_http;

/* curl_global_init: once at start, before any thread makes a handle (libcurl's rule). 0 or CW_ENOMEM. */
int snk_global_init(void);
void snk_global_cleanup(void);

/* A handle with the sink's settings: TLS verified (the system CA store, or CA_FILE), connect and
 * total timeouts, no redirects, http/https only, no signals. Proxies come from the environment
 * (http_proxy, https_proxy, no_proxy), which libcurl reads itself. 0 or CW_ENOMEM. */
int snk_http_open(const struct snk_conf *c, struct snk_http **out);
void snk_http_close(struct snk_http *h);

/* POSTs body as application/json to url with the extra header lines ("Name: value"). Fills res;
 * returns 0 when a response came (any status), CW_EUNAVAIL on a transport failure, CW_ENOMEM. */
int snk_http_post(struct snk_http *h, const char *url, const char *const *headers, size_t n_headers,
                  const char *body, size_t len, int64_t now_ms, struct snk_result *res);

#endif
