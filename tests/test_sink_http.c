/* test_sink_http.c — snk_deliver against tests/sink_receiver.py on loopback (run by tests/it_sinks.sh,
 * which starts the receivers and passes):
 *   SINK_RECV_HTTP_PORT   the plain receiver's port        SINK_RECV_SECRET  the webhook secret it checks
 *   SINK_RECV_HTTPS_PORT  the HTTPS receiver's port         SINK_RECV_CA      the certificate it serves
 * Without SINK_RECV_HTTP_PORT (`make unit`) the suite runs no test: it prints the TAP plan "1..0 # SKIP"
 * (cmocka's own skip prints `not ok`, which tests/run_all.sh would count as a failure).
 * Checks: a signed webhook is delivered over HTTP, and over HTTPS with CA_FILE; without the CA the
 * certificate is refused; 429 with Retry-After, a 503 with an HTTP date, 500, 400, 410, 408, a redirect
 * not followed, a receiver slower than the timeout, a refused port, a wrong secret (the receiver answers
 * 401), a response over the cap; Slack and PagerDuty bodies arrive (it_sinks.sh reads what the receiver
 * recorded). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "cw.h"
#include "sink.h"

static const char *http_port, *https_port, *ca, *secret;

static const char doc[] =
    "{\"id\":\"cwf-ASIAEXAMPLEKEY000001\",\"access_key_id\":\"ASIAEXAMPLEKEY000001\",\"account_id\":\"111122223333\","
    "\"region\":\"eu-west-1\",\"function_name\":\"my-fn\",\"severity\":\"high\",\"outside_source_ips\":[\"198.51.100.7\"],"
    "\"outside_sources\":[{\"ip\":\"198.51.100.7\",\"network\":\"unknown\"}],\"outside_actions\":[\"sts:GetCallerIdentity\"],"
    "\"first_outside_use\":{\"user_agent\":\"aws-cli/2.15.0 <@U123>\",\"action\":\"sts:GetCallerIdentity\"},"
    "\"first_outside_at\":\"2024-03-13T09:10:00Z\",\"status\":\"open\"}";

static int setup(void **state)
{
    (void)state;
    http_port = getenv("SINK_RECV_HTTP_PORT");
    https_port = getenv("SINK_RECV_HTTPS_PORT");
    ca = getenv("SINK_RECV_CA");
    secret = getenv("SINK_RECV_SECRET");
    return snk_global_init();
}

static int teardown(void **state)
{
    (void)state;
    snk_global_cleanup();
    return 0;
}

static struct snk_conf conf(enum snk_type type, const char *url)
{
    struct snk_conf c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "probe");
    c.type = type;
    c.min_severity = SNK_SEV_LOW;
    c.timeout_ms = 5000;
    c.connect_timeout_ms = 2000;
    c.give_up_s = SNK_GIVE_UP_S;
    snprintf(c.url, sizeof c.url, "%s", url);
    snprintf(c.secret, sizeof c.secret, "%s", secret ? secret : "");
    snprintf(c.routing_key, sizeof c.routing_key, "probe-routing-key");
    return c;
}

/* One delivery of the document to url (path and query on the plain receiver unless https). */
static int deliver(const struct snk_conf *c, int kind, struct snk_result *res)
{
    struct snk *s;
    assert_int_equal(snk_open(c, NULL, &s), 0);
    int rc = snk_deliver(s, doc, 5, kind, cw_now_ms(), res);
    snk_close(s);
    return rc;
}

static struct snk_conf hook(const char *path_query)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%s%s", http_port, path_query);
    return conf(SNK_WEBHOOK, url);
}

static void test_http_delivered(void **state)
{
    (void)state;
    struct snk_conf c = hook("/hook");
    struct snk *s;
    struct snk_result res;
    assert_int_equal(snk_open(&c, NULL, &s), 0);
    /* two events on one handle: the kept-alive connection carries the second */
    for (int kind = SNK_KIND_CREATED; kind <= SNK_KIND_UPDATED; kind++) {
        assert_int_equal(snk_deliver(s, doc, (uint64_t)kind, kind, cw_now_ms(), &res), 0);
        assert_int_equal(res.status, 200);
        assert_int_equal(res.verdict, SNK_DELIVERED);
        assert_string_equal(res.error, "");
        assert_int_equal(res.retry_after_s, -1);
        assert_true(res.elapsed_ms >= 0 && res.elapsed_ms < 5000);
    }
    snk_close(s);
}

static void test_https(void **state)
{
    (void)state;
    if (!https_port || !ca)
        fail_msg("SINK_RECV_HTTPS_PORT and SINK_RECV_CA are needed");
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%s/hook", https_port);
    struct snk_conf c = conf(SNK_WEBHOOK, url);
    struct snk_result res;
    /* the certificate is no public CA's: refused by default */
    assert_int_equal(deliver(&c, SNK_KIND_CREATED, &res), CW_EUNAVAIL);
    assert_int_equal(res.status, 0);
    assert_int_equal(res.verdict, SNK_RETRY);
    if (!strstr(res.error, "certificate"))
        fail_msg("error \"%s\" does not name the certificate", res.error);
    /* with CA_FILE it is trusted, name (IP SAN) and all */
    snprintf(c.ca_file, sizeof c.ca_file, "%s", ca);
    assert_int_equal(deliver(&c, SNK_KIND_CREATED, &res), 0);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.verdict, SNK_DELIVERED);
}

static void test_statuses(void **state)
{
    (void)state;
    static const struct { const char *q; long status; enum snk_verdict v; int64_t ra; } cases[] = {
        { "/hook?status=429&retry_after=7", 429, SNK_RETRY, 7 },
        { "/hook?status=500", 500, SNK_RETRY, -1 },
        { "/hook?status=400", 400, SNK_PERMANENT, -1 },
        { "/hook?status=410", 410, SNK_PERMANENT, -1 },
        { "/hook?status=408", 408, SNK_RETRY, -1 },
        /* not followed: the receiver must see no request on /after-redirect */
        { "/hook?status=302&location=/after-redirect", 302, SNK_PERMANENT, -1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct snk_conf c = hook(cases[i].q);
        struct snk_result res;
        assert_int_equal(deliver(&c, SNK_KIND_CREATED, &res), 0);
        if (res.status != cases[i].status || res.verdict != (int)cases[i].v || res.retry_after_s != cases[i].ra)
            fail_msg("%s: status %ld verdict %d retry_after %lld", cases[i].q, res.status, res.verdict,
                     (long long)res.retry_after_s);
    }
    /* Retry-After as an HTTP date 30 s ahead */
    struct snk_conf c = hook("/hook?status=503&retry_after_date=30");
    struct snk_result res;
    assert_int_equal(deliver(&c, SNK_KIND_CREATED, &res), 0);
    assert_int_equal(res.status, 503);
    assert_true(res.retry_after_s >= 28 && res.retry_after_s <= 31);
    uint64_t r = 0;
    assert_int_equal(snk_backoff_ms(1, &res, snk_rand_os, &r) >= 28000, 1);
}

static void test_timeout(void **state)
{
    (void)state;
    struct snk_conf c = hook("/hook?sleep_ms=4000");
    c.timeout_ms = 1000;
    c.connect_timeout_ms = 500;
    struct snk_result res;
    int64_t t0 = cw_mono_ms();
    assert_int_equal(deliver(&c, SNK_KIND_CREATED, &res), CW_EUNAVAIL);
    int64_t took = cw_mono_ms() - t0;
    assert_int_equal(res.status, 0);
    assert_int_equal(res.verdict, SNK_RETRY);
    assert_true(res.error[0] != '\0');
    if (took < 900 || took > 2500)
        fail_msg("the 1 s timeout took %lld ms", (long long)took);
}

static void test_refused(void **state)
{
    (void)state;
    /* a port that was just free: nothing listens */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/hook", ntohs(a.sin_port));
    struct snk_conf c = conf(SNK_WEBHOOK, url);
    struct snk_result res;
    assert_int_equal(deliver(&c, SNK_KIND_CREATED, &res), CW_EUNAVAIL);
    assert_int_equal(res.status, 0);
    assert_int_equal(res.verdict, SNK_RETRY);
    assert_true(res.elapsed_ms < 2000);
    assert_true(res.error[0] != '\0');
}

static void test_wrong_secret(void **state)
{
    (void)state;
    struct snk_conf c = hook("/hook");
    snprintf(c.secret, sizeof c.secret, "not-the-receivers-secret");
    struct snk_result res;
    assert_int_equal(deliver(&c, SNK_KIND_CREATED, &res), 0);
    assert_int_equal(res.status, 401);
    assert_int_equal(res.verdict, SNK_PERMANENT);
}

static void test_response_cap(void **state)
{
    (void)state;
    struct snk_conf c = hook("/hook?big=1000000");
    struct snk_result res;
    assert_int_equal(deliver(&c, SNK_KIND_CREATED, &res), 0);
    assert_int_equal(res.status, 200);  /* the receiver took it; we only stopped reading */
    assert_int_equal(res.verdict, SNK_DELIVERED);
    assert_non_null(strstr(res.error, "over"));
}

static void test_slack_pagerduty(void **state)
{
    (void)state;
    char url[128];
    struct snk_result res;
    snprintf(url, sizeof url, "http://127.0.0.1:%s/slack", http_port);
    struct snk_conf c = conf(SNK_SLACK, url);
    c.secret[0] = '\0';
    snprintf(c.finding_base_url, sizeof c.finding_base_url, "https://credwatch.example/v1/findings/");
    assert_int_equal(deliver(&c, SNK_KIND_CREATED, &res), 0);
    assert_int_equal(res.status, 200);
    snprintf(url, sizeof url, "http://127.0.0.1:%s/pd", http_port);
    c = conf(SNK_PAGERDUTY, url);
    c.secret[0] = '\0';
    assert_int_equal(deliver(&c, SNK_KIND_CREATED, &res), 0);
    assert_int_equal(res.status, 202);
    assert_int_equal(res.verdict, SNK_DELIVERED);
}

int main(void)
{
    if (!getenv("SINK_RECV_HTTP_PORT") || !getenv("SINK_RECV_SECRET")) {
        printf("1..0 # SKIP SINK_RECV_HTTP_PORT unset: tests/it_sinks.sh runs this suite with its receivers\n");
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_delivered), cmocka_unit_test(test_https),
        cmocka_unit_test(test_statuses),       cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_refused),        cmocka_unit_test(test_wrong_secret),
        cmocka_unit_test(test_response_cap),   cmocka_unit_test(test_slack_pagerduty),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
