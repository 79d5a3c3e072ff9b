/* sink_http.c — one POST per call over a kept-alive libcurl easy handle (sink_http.h). */
#include "sink_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "cw.h"
#include "sink_retry.h"

#define USER_AGENT "credwatch-sink/1"

struct snk_http {
    CURL *curl;
    char error[CURL_ERROR_SIZE];
    size_t received;                /* response bytes of the current transfer */
    int64_t now_ms;                 /* the caller's clock, for a Retry-After date */
    int64_t retry_after_s;
    int over_cap;                   /* the response passed SNK_RESPONSE_MAX: we cut it */
};

int snk_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : CW_ENOMEM;
}

void snk_global_cleanup(void)
{
    curl_global_cleanup();
}

/* The body is read and dropped: a receiver's answer is not evidence, and a large one must not
 * hold the thread or the memory. */
static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct snk_http *h = arg;
    (void)data;
    h->received += size * n;
    if (h->received > SNK_RESPONSE_MAX) {
        h->over_cap = 1;
        return 0;  /* libcurl stops the transfer (CURLE_WRITE_ERROR) */
    }
    return size * n;
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    struct snk_http *h = arg;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && len < 128 && strncasecmp(line, name, sizeof name - 1) == 0) {
        char v[128];
        memcpy(v, line + sizeof name - 1, len - (sizeof name - 1));
        v[len - (sizeof name - 1)] = '\0';
        int64_t secs;
        if (snk_retry_after_parse(v, h->now_ms, &secs) == 0)
            h->retry_after_s = secs;
    } else if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
        h->retry_after_s = -1;  /* a new response (after a 100 Continue): its own headers count */
    }
    return len;
}

/* The options that do not change between posts. */
static int set_options(struct snk_http *h, const struct snk_conf *c)
{
    CURL *k = h->curl;
    CURLcode e = CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500  /* 7.85: the string form; the bitmask one is deprecated there */
    e |= curl_easy_setopt(k, CURLOPT_PROTOCOLS_STR, "http,https");
    e |= curl_easy_setopt(k, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    e |= curl_easy_setopt(k, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    e |= curl_easy_setopt(k, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    e |= curl_easy_setopt(k, CURLOPT_FOLLOWLOCATION, 0L);
    e |= curl_easy_setopt(k, CURLOPT_NOSIGNAL, 1L);  /* threads: no SIGALRM for DNS timeouts */
    e |= curl_easy_setopt(k, CURLOPT_SSL_VERIFYPEER, 1L);
    e |= curl_easy_setopt(k, CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->ca_file[0])
        e |= curl_easy_setopt(k, CURLOPT_CAINFO, c->ca_file);
    e |= curl_easy_setopt(k, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    e |= curl_easy_setopt(k, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    e |= curl_easy_setopt(k, CURLOPT_USERAGENT, USER_AGENT);
    e |= curl_easy_setopt(k, CURLOPT_ERRORBUFFER, h->error);
    e |= curl_easy_setopt(k, CURLOPT_WRITEFUNCTION, on_body);
    e |= curl_easy_setopt(k, CURLOPT_WRITEDATA, h);
    e |= curl_easy_setopt(k, CURLOPT_HEADERFUNCTION, on_header);
    e |= curl_easy_setopt(k, CURLOPT_HEADERDATA, h);
    e |= curl_easy_setopt(k, CURLOPT_POST, 1L);
    return e == CURLE_OK ? 0 : CW_EINVAL;
}

int snk_http_open(const struct snk_conf *c, struct snk_http **out)
{
    struct snk_http *h = calloc(1, sizeof *h);
    if (!h || !(h->curl = curl_easy_init()) || set_options(h, c)) {
        snk_http_close(h);
        *out = NULL;
        return CW_ENOMEM;
    }
    *out = h;
    return 0;
}

void snk_http_close(struct snk_http *h)
{
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    free(h);
}

static struct curl_slist *header_list(const char *const *headers, size_t n)
{
    /* "Expect:" off: a receiver that does not answer 100 Continue must not cost a second */
    static const char *const fixed[] = { "Content-Type: application/json", "Accept: application/json", "Expect:" };
    struct curl_slist *list = NULL, *next;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] + n; i++) {
        const char *line = i < sizeof fixed / sizeof fixed[0] ? fixed[i] : headers[i - sizeof fixed / sizeof fixed[0]];
        if (!(next = curl_slist_append(list, line))) {
            curl_slist_free_all(list);
            return NULL;
        }
        list = next;
    }
    return list;
}

int snk_http_post(struct snk_http *h, const char *url, const char *const *headers, size_t n_headers,
                  const char *body, size_t len, int64_t now_ms, struct snk_result *res)
{
    memset(res, 0, sizeof *res);
    res->retry_after_s = -1;
    struct curl_slist *list = header_list(headers, n_headers);
    if (!list) {
        snprintf(res->error, sizeof res->error, "out of memory");
        return CW_ENOMEM;
    }
    h->error[0] = '\0';
    h->received = 0;
    h->over_cap = 0;
    h->now_ms = now_ms;
    h->retry_after_s = -1;
    curl_easy_setopt(h->curl, CURLOPT_URL, url);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    int64_t t0 = cw_mono_ms();
    CURLcode e = curl_easy_perform(h->curl);
    res->elapsed_ms = cw_mono_ms() - t0;
    long status = 0;
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(list);
    /* a response we cut for its size still answered: its status stands */
    if (e == CURLE_OK || (h->over_cap && status > 0)) {
        res->status = status;
        res->retry_after_s = h->retry_after_s;
        if (h->over_cap)
            snprintf(res->error, sizeof res->error, "response body over %d bytes, not read", SNK_RESPONSE_MAX);
        return 0;
    }
    snprintf(res->error, sizeof res->error, "%s", h->error[0] ? h->error : curl_easy_strerror(e));
    return CW_EUNAVAIL;
}
