/* sink_retry.c — classification, backoff with full jitter, give-up age, Retry-After (sink_retry.h). */
#include "sink_retry.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "cw.h"

enum snk_verdict snk_classify(const struct snk_result *r)
{
    long s = r->status;
    if (s >= 200 && s <= 299)
        return SNK_DELIVERED;
    if (s == 0 || s == 408 || s == 429 || (s >= 500 && s <= 599))
        return SNK_RETRY;
    return SNK_PERMANENT;
}

uint64_t snk_rand_os(void *ctx)
{
    (void)ctx;
    uint64_t v;
    if (getrandom(&v, sizeof v, 0) == (ssize_t)sizeof v)
        return v;
    return (uint64_t)cw_mono_ms() * 0x9E3779B97F4A7C15ULL;  /* jitter only spreads load: no secret */
}

int64_t snk_backoff_ms(unsigned attempt, const struct snk_result *r, snk_rand_fn rnd, void *ctx)
{
    int64_t ceiling = SNK_BACKOFF_MAX_MS;
    if (attempt <= 1)
        ceiling = SNK_BACKOFF_BASE_MS;
    else if (attempt < 16 && ((int64_t)SNK_BACKOFF_BASE_MS << (attempt - 1)) < SNK_BACKOFF_MAX_MS)
        ceiling = (int64_t)SNK_BACKOFF_BASE_MS << (attempt - 1);
    int64_t delay = (int64_t)(rnd(ctx) % (uint64_t)(ceiling + 1));
    if (r && (r->status == 429 || r->status == 503) && r->retry_after_s >= 0) {
        int64_t asked = r->retry_after_s > SNK_BACKOFF_MAX_MS / 1000 ? SNK_BACKOFF_MAX_MS : r->retry_after_s * 1000;
        if (asked > delay)
            delay = asked;
    }
    return delay;
}

int snk_give_up(int64_t queued_ms, int64_t now_ms, int64_t give_up_s)
{
    return now_ms - queued_ms >= give_up_s * 1000;
}

/* IMF-fixdate only: RFC 9110 makes it the one form a sender generates. */
static int http_date(const char *v, int64_t *secs)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char wd[4], mon[4];
    int d, y, h, mi, s, used = 0;
    if (sscanf(v, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", wd, &d, mon, &y, &h, &mi, &s, &used) != 7 ||
        !used || v[used] || strlen(mon) != 3)
        return CW_EINVAL;
    const char *m = strstr(months, mon);
    if (!m || (m - months) % 3)
        return CW_EINVAL;
    return cw_time_civil(y, (int)(m - months) / 3 + 1, d, h, mi, s, secs);
}

int snk_retry_after_parse(const char *value, int64_t now_ms, int64_t *secs)
{
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = strlen(value);
    while (n && (value[n - 1] == ' ' || value[n - 1] == '\t' || value[n - 1] == '\r' || value[n - 1] == '\n'))
        n--;
    char v[64];
    if (n == 0 || n >= sizeof v)
        return CW_EINVAL;
    memcpy(v, value, n);
    v[n] = '\0';
    if (strspn(v, "0123456789") == n) {
        int64_t x = 0;
        for (size_t i = 0; i < n && x < SNK_RETRY_AFTER_MAX_S; i++)
            x = x * 10 + (v[i] - '0');
        *secs = x < SNK_RETRY_AFTER_MAX_S ? x : SNK_RETRY_AFTER_MAX_S;
        return 0;
    }
    int64_t at;
    if (http_date(v, &at))
        return CW_EINVAL;
    int64_t ahead_ms = at * 1000 - now_ms;
    *secs = ahead_ms > 0 ? (ahead_ms + 999) / 1000 : 0;
    return 0;
}
