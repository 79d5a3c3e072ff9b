/* test_sink.c — the delivery module without a network: configuration (every error names its
 * variable, secrets never in snk_describe), the bodies of each sink type (Slack escaping of
 * attacker-chosen strings, PagerDuty trigger/resolve), HMAC-SHA256 (RFC 4231 cases 1-2) and the
 * webhook signature recomputed from SHA-256 alone, retry classification, backoff bounds with a
 * fixed random source, Retry-After (seconds and HTTP date), give-up age. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/sha.h>

#include "cw.h"
#include "sink.h"
#include "sink_sign.h"

/* ---- a fake environment ------------------------------------------------------------------- */

#define ENV_MAX 32
static const char *env_names[ENV_MAX], *env_values[ENV_MAX];
static size_t env_n;

static void env_clear(void)
{
    env_n = 0;
}

static void env_set(const char *name, const char *value)
{
    for (size_t i = 0; i < env_n; i++)
        if (strcmp(env_names[i], name) == 0) {
            env_values[i] = value;
            return;
        }
    assert_true(env_n < ENV_MAX);
    env_names[env_n] = name;
    env_values[env_n++] = value;
}

static const char *env_get(const char *name)
{
    for (size_t i = 0; i < env_n; i++)
        if (strcmp(env_names[i], name) == 0)
            return env_values[i];
    return NULL;
}

#define SECRET "whsec-0123456789abcdef-SECRET"
#define ROUTING "R0UTINGKEY-0123456789abcdef"

/* Three valid sinks: a webhook, a Slack hook, PagerDuty. */
static void env_three(void)
{
    env_clear();
    env_set("CREDWATCH_SINKS", "hook,ops-slack,pd");
    env_set("CREDWATCH_SINK_HOOK_TYPE", "webhook");
    env_set("CREDWATCH_SINK_HOOK_URL", "https://user:pw@receiver.example:8443/in?token=abc");
    env_set("CREDWATCH_SINK_HOOK_SECRET", SECRET);
    env_set("CREDWATCH_SINK_OPS_SLACK_TYPE", "slack");
    env_set("CREDWATCH_SINK_OPS_SLACK_URL", "https://hooks.slack.com/services/T000/B000/XXXXSLACKTOKEN");
    env_set("CREDWATCH_SINK_OPS_SLACK_MIN_SEVERITY", "high");
    env_set("CREDWATCH_SINK_OPS_SLACK_FINDING_BASE_URL", "https://credwatch.example/v1/findings/");
    env_set("CREDWATCH_SINK_PD_TYPE", "pagerduty");
    env_set("CREDWATCH_SINK_PD_ROUTING_KEY", ROUTING);
    env_set("CREDWATCH_SINK_PD_TIMEOUT_MS", "5000");
}

static void test_config_ok(void **state)
{
    (void)state;
    struct snk_confs cs;
    char msg[SNK_MSG_MAX];
    env_three();
    assert_int_equal(snk_config_load(&cs, env_get, msg, sizeof msg), CW_OK);
    assert_int_equal(cs.n, 3);
    assert_string_equal(cs.sink[0].name, "hook");
    assert_int_equal(cs.sink[0].type, SNK_WEBHOOK);
    assert_int_equal(cs.sink[0].format, SNK_FMT_CREDWATCH);
    assert_int_equal(cs.sink[0].min_severity, SNK_SEV_LOW);
    assert_int_equal(cs.sink[0].timeout_ms, 10000);
    assert_int_equal(cs.sink[0].connect_timeout_ms, 3000);
    assert_int_equal(cs.sink[0].give_up_s, SNK_GIVE_UP_S);
    assert_string_equal(cs.sink[0].secret, SECRET);
    assert_int_equal(cs.sink[1].type, SNK_SLACK);
    assert_int_equal(cs.sink[1].min_severity, SNK_SEV_HIGH);
    assert_string_equal(cs.sink[1].finding_base_url, "https://credwatch.example/v1/findings/");
    assert_int_equal(cs.sink[2].type, SNK_PAGERDUTY);
    assert_string_equal(cs.sink[2].url, SNK_PAGERDUTY_URL);
    assert_int_equal(cs.sink[2].timeout_ms, 5000);
    assert_int_equal(cs.sink[2].connect_timeout_ms, 3000);
    /* unset or empty: no sinks, no error */
    env_clear();
    assert_int_equal(snk_config_load(&cs, env_get, msg, sizeof msg), CW_OK);
    assert_int_equal(cs.n, 0);
    env_set("CREDWATCH_SINKS", "");
    assert_int_equal(snk_config_load(&cs, env_get, msg, sizeof msg), CW_OK);
    assert_int_equal(cs.n, 0);
}

/* Every CREDWATCH_SINK_* variable must belong to a sink of the list: a misspelt suffix or a sink left
 * out of CREDWATCH_SINKS is refused at start, naming the variable. */
static void test_config_env_names(void **state)
{
    (void)state;
    struct snk_confs cs;
    char msg[SNK_MSG_MAX];
    env_three();
    assert_int_equal(snk_config_load(&cs, env_get, msg, sizeof msg), CW_OK);
    char *ok[] = { "PATH=/bin", "CREDWATCH_SINKS=hook,ops-slack,pd", "CREDWATCH_SINK_HOOK_TYPE=webhook",
                   "CREDWATCH_SINK_OPS_SLACK_MIN_SEVERITY=high", "CREDWATCH_SINK_PD_TIMEOUT_MS=5000", NULL };
    assert_int_equal(snk_config_check_env(&cs, ok, msg, sizeof msg), CW_OK);
    char *typo[] = { "CREDWATCH_SINK_OPS_SLACK_MIN_SEVERTY=high", NULL };
    assert_int_equal(snk_config_check_env(&cs, typo, msg, sizeof msg), CW_ECONFIG);
    assert_non_null(strstr(msg, "CREDWATCH_SINK_OPS_SLACK_MIN_SEVERTY"));
    char *unlisted[] = { "CREDWATCH_SINK_AUDIT_TYPE=webhook", NULL };
    assert_int_equal(snk_config_check_env(&cs, unlisted, msg, sizeof msg), CW_ECONFIG);
    assert_non_null(strstr(msg, "CREDWATCH_SINK_AUDIT_TYPE"));
    struct snk_confs none = { 0 };
    char *orphan[] = { "CREDWATCH_SINK_HOOK_URL=https://x.example/", NULL };
    assert_int_equal(snk_config_check_env(&none, orphan, msg, sizeof msg), CW_ECONFIG);
    char *prefix_only[] = { "CREDWATCH_SINK_HOOK_=x", NULL };
    assert_int_equal(snk_config_check_env(&cs, prefix_only, msg, sizeof msg), CW_ECONFIG);
}

/* Every refused setting: CW_ECONFIG, the message names the variable, and no secret's value. */
static void test_config_errors(void **state)
{
    (void)state;
    static const struct { const char *var, *value, *named; } cases[] = {
        { "CREDWATCH_SINKS", "hook,Bad", "CREDWATCH_SINKS" },
        { "CREDWATCH_SINKS", "hook,hook", "CREDWATCH_SINKS" },
        { "CREDWATCH_SINKS", "a-b,a_b", "CREDWATCH_SINKS" },
        { "CREDWATCH_SINKS", "hook,", "CREDWATCH_SINKS" },
        { "CREDWATCH_SINKS", "a,b,c,d,e,f,g,h,i", "CREDWATCH_SINKS" },
        { "CREDWATCH_SINKS", "abcdefghijklmnopqrstuvwxyz0123456", "CREDWATCH_SINKS" },
        { "CREDWATCH_SINK_HOOK_TYPE", "email", "CREDWATCH_SINK_HOOK_TYPE" },
        { "CREDWATCH_SINK_HOOK_TYPE", "", "CREDWATCH_SINK_HOOK_TYPE" },
        { "CREDWATCH_SINK_HOOK_URL", "ftp://x.example/", "CREDWATCH_SINK_HOOK_URL" },
        { "CREDWATCH_SINK_HOOK_URL", "https:///path", "CREDWATCH_SINK_HOOK_URL" },
        { "CREDWATCH_SINK_HOOK_URL", "https://x.example/a b", "CREDWATCH_SINK_HOOK_URL" },
        { "CREDWATCH_SINK_HOOK_URL", "", "CREDWATCH_SINK_HOOK_URL" },
        { "CREDWATCH_SINK_HOOK_SECRET", "", "CREDWATCH_SINK_HOOK_SECRET" },
        { "CREDWATCH_SINK_HOOK_SECRET", "short-secret", "CREDWATCH_SINK_HOOK_SECRET" },
        { "CREDWATCH_SINK_HOOK_FORMAT", "xml", "CREDWATCH_SINK_HOOK_FORMAT" },
        { "CREDWATCH_SINK_HOOK_MIN_SEVERITY", "urgent", "CREDWATCH_SINK_HOOK_MIN_SEVERITY" },
        { "CREDWATCH_SINK_HOOK_CA_FILE", "/nonexistent/ca.pem", "CREDWATCH_SINK_HOOK_CA_FILE" },
        { "CREDWATCH_SINK_HOOK_TIMEOUT_MS", "99", "CREDWATCH_SINK_HOOK_TIMEOUT_MS" },
        { "CREDWATCH_SINK_HOOK_TIMEOUT_MS", "60001", "CREDWATCH_SINK_HOOK_TIMEOUT_MS" },
        { "CREDWATCH_SINK_HOOK_TIMEOUT_MS", "10s", "CREDWATCH_SINK_HOOK_TIMEOUT_MS" },
        { "CREDWATCH_SINK_HOOK_CONNECT_TIMEOUT_MS", "20000", "CREDWATCH_SINK_HOOK_CONNECT_TIMEOUT_MS" },
        { "CREDWATCH_SINK_HOOK_GIVE_UP_SECONDS", "59", "CREDWATCH_SINK_HOOK_GIVE_UP_SECONDS" },
        { "CREDWATCH_SINK_HOOK_ROUTING_KEY", ROUTING, "CREDWATCH_SINK_HOOK_ROUTING_KEY" },
        { "CREDWATCH_SINK_OPS_SLACK_URL", "", "CREDWATCH_SINK_OPS_SLACK_URL" },
        { "CREDWATCH_SINK_OPS_SLACK_SECRET", SECRET, "CREDWATCH_SINK_OPS_SLACK_SECRET" },
        { "CREDWATCH_SINK_OPS_SLACK_FORMAT", "ocsf", "CREDWATCH_SINK_OPS_SLACK_FORMAT" },
        { "CREDWATCH_SINK_OPS_SLACK_FINDING_BASE_URL", "https://x/<a|b>", "CREDWATCH_SINK_OPS_SLACK_FINDING_BASE_URL" },
        { "CREDWATCH_SINK_PD_ROUTING_KEY", "", "CREDWATCH_SINK_PD_ROUTING_KEY" },
        { "CREDWATCH_SINK_PD_URL", "javascript:alert(1)", "CREDWATCH_SINK_PD_URL" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct snk_confs cs;
        char msg[SNK_MSG_MAX];
        env_three();
        env_set(cases[i].var, cases[i].value);
        int rc = snk_config_load(&cs, env_get, msg, sizeof msg);
        if (rc != CW_ECONFIG || !strstr(msg, cases[i].named))
            fail_msg("case %zu (%s=%s): rc %d, msg \"%s\"", i, cases[i].var, cases[i].value, rc, msg);
        if (strstr(msg, SECRET) || strstr(msg, ROUTING) || strstr(msg, "SLACKTOKEN") || strstr(msg, "token=abc"))
            fail_msg("case %zu: a secret in the message \"%s\"", i, msg);
        assert_int_equal(cs.n, 0);
    }
}

static void test_describe_redacts(void **state)
{
    (void)state;
    struct snk_confs cs;
    char msg[SNK_MSG_MAX], line[4096];
    env_three();
    assert_int_equal(snk_config_load(&cs, env_get, msg, sizeof msg), CW_OK);
    for (size_t i = 0; i < cs.n; i++) {
        snk_describe(&cs.sink[i], line, sizeof line);
        assert_non_null(strstr(line, cs.sink[i].name));
        if (strstr(line, SECRET) || strstr(line, ROUTING) || strstr(line, "pw@") || strstr(line, "token=abc") ||
            strstr(line, "SLACKTOKEN") || strstr(line, "T000"))
            fail_msg("secret in \"%s\"", line);
    }
    snk_describe(&cs.sink[0], line, sizeof line);
    assert_non_null(strstr(line, "url=https://[redacted]@receiver.example:8443/in?[redacted]"));
    assert_non_null(strstr(line, "secret=[redacted]"));
    snk_describe(&cs.sink[1], line, sizeof line);
    assert_non_null(strstr(line, "url=https://hooks.slack.com/[redacted]"));
    snk_describe(&cs.sink[2], line, sizeof line);
    assert_non_null(strstr(line, "routing_key=[redacted]"));
    assert_non_null(strstr(line, "url=" SNK_PAGERDUTY_URL));
}

/* ---- payloads ----------------------------------------------------------------------------- */

/* A finding document as GET /v1/findings/{id} returns it (build/credwatch scan tests/data/api_cloudtrail.json),
 * with the attacker-chosen strings, status and severity given. */
static char *finding(const char *fn, const char *ua, const char *status, const char *severity)
{
    json_t *d = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:[s], s:[{s:s, s:s, s:i}], s:[s], "
        "s:{s:s, s:s, s:s, s:s}, s:[{s:s, s:s}], s:s, s:n, s:s, s:s}",
        "id", "cwf-ASIAEXAMPLEKEY000001", "access_key_id", "ASIAEXAMPLEKEY000001", "account_id", "111122223333",
        "region", "eu-west-1", "function_name", fn, "role_arn", "arn:aws:iam::111122223333:role/fn-role",
        "severity", severity, "explained", 0, "first_outside_at", "2024-03-13T09:10:00Z",
        "outside_source_ips", "198.51.100.7",
        "outside_sources", "ip", "198.51.100.7", "network", "unknown", "count", 1,
        "outside_actions", "sts:GetCallerIdentity",
        "first_outside_use", "at", "2024-03-13T09:10:00Z", "source_ip", "198.51.100.7", "user_agent", ua,
        "action", "sts:GetCallerIdentity",
        "reasons", "code", "outside_address", "text", "used from an address that is not the function's network",
        "status", status, "note", "created_at", "2024-03-13T09:10:01.000Z", "updated_at", "2024-03-13T09:10:01.000Z");
    assert_non_null(d);
    char *s = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    return s;
}

static struct snk_conf conf_of(enum snk_type t)
{
    struct snk_conf c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "t");
    c.type = t;
    c.min_severity = SNK_SEV_LOW;
    c.timeout_ms = 1000;
    c.connect_timeout_ms = 1000;
    c.give_up_s = SNK_GIVE_UP_S;
    snprintf(c.url, sizeof c.url, "http://127.0.0.1:9/");
    snprintf(c.secret, sizeof c.secret, SECRET);
    snprintf(c.routing_key, sizeof c.routing_key, ROUTING);
    return c;
}

static json_t *build(const struct snk_conf *c, const struct snk_formatters *fmt, const char *doc, uint64_t rev,
                     int kind, struct snk_payload *p)
{
    char msg[256];
    int rc = snk_payload_build(c, fmt, doc, rev, kind, p, msg, sizeof msg);
    if (rc)
        fail_msg("snk_payload_build: %d %s", rc, msg);
    json_t *j = json_loads(p->body, 0, NULL);
    assert_non_null(j);
    assert_int_equal(strlen(p->body), p->len);
    return j;
}

static char *stub_ocsf(const char *doc)
{
    json_t *d = json_loads(doc, 0, NULL);
    char buf[256];
    snprintf(buf, sizeof buf, "{\"class_uid\":2004,\"finding_info\":{\"uid\":\"%s\"}}",
             json_string_value(json_object_get(d, "id")));
    json_decref(d);
    return strdup(buf);
}

static char *stub_broken(const char *doc)
{
    (void)doc;
    return strdup("{not json");
}

static void test_payload_webhook(void **state)
{
    (void)state;
    struct snk_conf c = conf_of(SNK_WEBHOOK);
    struct snk_payload p;
    char *doc = finding("my-fn", "aws-cli/2.15.0", "open", "high");
    static const char *const events[] = { NULL, "finding.created", "finding.updated", "finding.status_changed" };
    for (int kind = 1; kind <= 3; kind++) {
        json_t *j = build(&c, NULL, doc, 7, kind, &p);
        assert_string_equal(json_string_value(json_object_get(j, "event")), events[kind]);
        assert_string_equal(p.event, events[kind]);
        assert_string_equal(json_string_value(json_object_get(j, "idempotency_key")), "cwf-ASIAEXAMPLEKEY000001:7");
        assert_string_equal(p.idempotency_key, "cwf-ASIAEXAMPLEKEY000001:7");
        assert_int_equal(json_integer_value(json_object_get(j, "revision")), 7);
        json_t *want = json_loads(doc, 0, NULL);
        assert_true(json_equal(json_object_get(j, "finding"), want));
        assert_null(json_object_get(j, "format"));
        json_decref(want);
        json_decref(j);
        snk_payload_free(&p);
    }
    /* ocsf through the hook; a missing or failing converter is an error, not a credwatch body */
    c.format = SNK_FMT_OCSF;
    struct snk_formatters fmt = { .ocsf = stub_ocsf, .asff = stub_broken };
    json_t *j = build(&c, &fmt, doc, 8, SNK_KIND_UPDATED, &p);
    assert_string_equal(json_string_value(json_object_get(j, "format")), "ocsf");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "finding"), "class_uid")), 2004);
    json_decref(j);
    snk_payload_free(&p);
    char msg[256];
    assert_int_equal(snk_payload_build(&c, NULL, doc, 8, 1, &p, msg, sizeof msg), CW_EINVAL);
    assert_non_null(strstr(msg, "ocsf"));
    c.format = SNK_FMT_ASFF;
    assert_int_equal(snk_payload_build(&c, &fmt, doc, 8, 1, &p, msg, sizeof msg), CW_EINVAL);
    assert_null(p.body);
    /* not a document, no id, unknown kind */
    c.format = SNK_FMT_CREDWATCH;
    assert_int_equal(snk_payload_build(&c, NULL, "[1]", 1, 1, &p, msg, sizeof msg), CW_EJSON);
    assert_int_equal(snk_payload_build(&c, NULL, "{\"id\":\"a\"} x", 1, 1, &p, msg, sizeof msg), CW_EJSON);
    assert_int_equal(snk_payload_build(&c, NULL, "{\"severity\":\"high\"}", 1, 1, &p, msg, sizeof msg), CW_EINVAL);
    assert_int_equal(snk_payload_build(&c, NULL, "{\"id\":\"a\\r\\nX-Evil: 1\"}", 1, 1, &p, msg, sizeof msg),
                     CW_EINVAL);
    assert_int_equal(snk_payload_build(&c, NULL, doc, 1, 4, &p, msg, sizeof msg), CW_EINVAL);
    /* the credwatch body reads the id where render.c writes it, first; anywhere else it is parsed:
     * the same id either way, and an escape in a leading id is refused, never cut at the quote */
    json_t *later = json_pack("{s:s, s:s}", "severity", "high", "id", "cwf-B");
    char *later_s = json_dumps(later, JSON_COMPACT);
    j = build(&c, NULL, later_s, 2, SNK_KIND_CREATED, &p);
    assert_string_equal(p.idempotency_key, "cwf-B:2");
    assert_true(json_equal(json_object_get(j, "finding"), later));
    json_decref(j);
    snk_payload_free(&p);
    j = build(&c, NULL, "{\"id\":\"cwf-A\",\"severity\":\"high\"}", 3, SNK_KIND_CREATED, &p);
    assert_string_equal(p.idempotency_key, "cwf-A:3");
    json_decref(j);
    snk_payload_free(&p);
    assert_int_equal(snk_payload_build(&c, NULL, "{\"id\":\"cwf-\\\"x\"}", 1, 1, &p, msg, sizeof msg), CW_EINVAL);
    assert_int_equal(snk_payload_build(&c, NULL, "{\"id\":\"cwf-A\",}", 1, 1, &p, msg, sizeof msg), CW_EJSON);
    assert_int_equal(snk_payload_build(&c, NULL, "  ", 1, 1, &p, msg, sizeof msg), CW_EJSON);
    /* yajl takes it, jansson does not (a NUL escape): never readable, so not retryable (not ENOMEM) */
    assert_int_equal(snk_payload_build(&c, NULL, "{\"x\":\"\\u0000\",\"id\":\"a\"}", 1, 1, &p, msg, sizeof msg),
                     CW_EJSON);
    json_decref(later);
    free(later_s);
    free(doc);
}

static void test_mrkdwn(void **state)
{
    (void)state;
    char out[5 * 32 + 4];
    snk_mrkdwn("<@U123> & <!here>", 32, out, sizeof out);
    assert_string_equal(out, "&lt;@U123&gt; &amp; &lt;!here&gt;");
    snk_mrkdwn("a`b\nc", 32, out, sizeof out);
    assert_string_equal(out, "a'b c");
    /* cut on a character boundary: the 3-byte euro sign does not fit in 4 bytes after "abc" */
    snk_mrkdwn("abc\xE2\x82\xAC" "def", 4, out, sizeof out);
    assert_string_equal(out, "abc\xE2\x80\xA6");
}

/* A thief writes the user agent and names nothing less than the function: neither may mention,
 * link or overflow. */
static void test_payload_slack(void **state)
{
    (void)state;
    struct snk_conf c = conf_of(SNK_SLACK);
    snprintf(c.finding_base_url, sizeof c.finding_base_url, "https://credwatch.example/v1/findings/");
    struct snk_payload p;
    char ua[5000];
    snprintf(ua, sizeof ua, "<@U123> <https://evil|click> <!channel> ");
    memset(ua + strlen(ua), 'A', sizeof ua - strlen(ua) - 1);
    ua[sizeof ua - 1] = '\0';
    char *doc = finding("<https://evil|click>&<@U123>", ua, "open", "critical");
    json_t *j = build(&c, NULL, doc, 3, SNK_KIND_CREATED, &p);
    static const char *const bad[] = { "<@U123>", "<https://evil", "<!channel>", "evil|click>" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (strstr(p.body, bad[i]))
            fail_msg("\"%s\" reached Slack: %s", bad[i], p.body);
    assert_non_null(strstr(p.body, "&lt;@U123&gt;"));
    assert_non_null(strstr(p.body, "&lt;https://evil|click&gt;&amp;&lt;@U123&gt;"));
    char run[SNK_SLACK_FIELD_MAX + 2];
    memset(run, 'A', sizeof run - 1);
    run[sizeof run - 1] = '\0';
    assert_null(strstr(p.body, run));                 /* the user agent is cut to its bound */
    assert_true(p.len < 16000);
    /* the one readable message: text for notifications, blocks with every fact, the link */
    const char *text = json_string_value(json_object_get(j, "text"));
    assert_non_null(text);
    assert_non_null(strstr(text, "critical"));
    json_t *blocks = json_object_get(j, "blocks");
    assert_true(json_array_size(blocks) >= 3);
    static const char *const want[] = { "Severity", "Status", "Function", "Account", "111122223333", "Region",
                                        "eu-west-1", "`198.51.100.7 (unknown)`", "`sts:GetCallerIdentity`",
                                        "open", "finding.created" };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(p.body, want[i]))
            fail_msg("\"%s\" missing from %s", want[i], p.body);
    assert_non_null(strstr(p.body, "<https://credwatch.example/v1/findings/cwf-ASIAEXAMPLEKEY000001|"));
    json_decref(j);
    snk_payload_free(&p);
    free(doc);
    /* without a base, no link at all */
    c.finding_base_url[0] = '\0';
    doc = finding("my-fn", "ua", "open", "low");
    j = build(&c, NULL, doc, 3, SNK_KIND_CREATED, &p);
    assert_null(strstr(p.body, "<http"));
    json_decref(j);
    snk_payload_free(&p);
    free(doc);
}

static void test_payload_pagerduty(void **state)
{
    (void)state;
    struct snk_conf c = conf_of(SNK_PAGERDUTY);
    snprintf(c.finding_base_url, sizeof c.finding_base_url, "https://credwatch.example/v1/findings/");
    static const struct { const char *status, *action; } cases[] = {
        { "open", "trigger" }, { "acknowledged", "trigger" }, { "resolved", "resolve" },
        { "suppressed", "resolve" }, { "retracted", "resolve" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct snk_payload p;
        char *doc = finding("my-fn", "ua", cases[i].status, "high");
        json_t *j = build(&c, NULL, doc, 2, SNK_KIND_STATUS, &p);
        assert_string_equal(json_string_value(json_object_get(j, "event_action")), cases[i].action);
        assert_string_equal(json_string_value(json_object_get(j, "routing_key")), ROUTING);
        assert_string_equal(json_string_value(json_object_get(j, "dedup_key")), "cwf-ASIAEXAMPLEKEY000001");
        json_t *pl = json_object_get(j, "payload");
        if (!strcmp(cases[i].action, "resolve")) {
            assert_null(pl);
        } else {
            assert_string_equal(json_string_value(json_object_get(pl, "severity")), "error");
            assert_string_equal(json_string_value(json_object_get(pl, "source")), "credwatch");
            assert_string_equal(json_string_value(json_object_get(pl, "component")), "my-fn");
            assert_string_equal(json_string_value(json_object_get(pl, "group")), "111122223333");
            assert_string_equal(json_string_value(json_object_get(pl, "class")), "lambda-credential-exfiltration");
            assert_string_equal(json_string_value(json_object_get(pl, "timestamp")), "2024-03-13T09:10:00Z");
            assert_non_null(strstr(json_string_value(json_object_get(pl, "summary")), "198.51.100.7"));
            json_t *cd = json_object_get(pl, "custom_details");
            assert_string_equal(json_string_value(json_object_get(cd, "access_key_id")), "ASIAEXAMPLEKEY000001");
            assert_int_equal(json_integer_value(json_object_get(cd, "revision")), 2);
            assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "links"), 0),
                                                                  "href")),
                                "https://credwatch.example/v1/findings/cwf-ASIAEXAMPLEKEY000001");
        }
        json_decref(j);
        snk_payload_free(&p);
        free(doc);
    }
    assert_string_equal(snk_pd_severity("critical"), "critical");
    assert_string_equal(snk_pd_severity("high"), "error");
    assert_string_equal(snk_pd_severity("medium"), "warning");
    assert_string_equal(snk_pd_severity("low"), "info");
    /* a long function name: the summary stays within PagerDuty's 1024 */
    char fn[3000];
    memset(fn, 'f', sizeof fn - 1);
    fn[sizeof fn - 1] = '\0';
    struct snk_payload p;
    char *doc = finding(fn, "ua", "open", "critical");
    json_t *j = build(&c, NULL, doc, 1, 1, &p);
    const char *summary = json_string_value(json_object_get(json_object_get(j, "payload"), "summary"));
    assert_true(strlen(summary) <= SNK_PD_SUMMARY_MAX && strlen(summary) > 900);
    json_decref(j);
    snk_payload_free(&p);
    free(doc);
}

/* finding() of workload kind `kind` named `id` (NULL: none), function_name null as render.c writes
 * it for every kind but Lambda; kind NULL: a Lambda finding that names its workload. */
static char *workload_finding(const char *kind, const char *id, const char *severity)
{
    char *base = finding("my-fn", "aws-cli/2.15.0", "open", severity);
    json_t *d = json_loads(base, 0, NULL);
    free(base);
    assert_non_null(d);
    json_object_set_new(d, "workload", json_pack("{s:s,s:o}", "kind", kind ? kind : "lambda", "id",
                                                 id ? json_string(id) : json_null()));
    if (kind)
        json_object_set_new(d, "function_name", json_null());
    char *out = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    return out;
}

/* The Slack header, text and field and PagerDuty's summary, component and class name the workload
 * ("ECS task <id>") where a Lambda finding names its function; a Lambda finding's messages are the
 * same with or without the workload in its document; a thief-chosen workload id is escaped and
 * bounded like a function name. */
static void test_payload_workloads(void **state)
{
    (void)state;
    struct snk_conf slack = conf_of(SNK_SLACK), pd = conf_of(SNK_PAGERDUTY);
    struct snk_payload p;
    static const struct { const char *kind, *id, *field, *what, *header, *summary, *class; } cases[] = {
        { "ecs", "0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b", "*Workload*\n`ECS task 0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b`",
          "ECS task credentials of `0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b` used from `198.51.100.7`",
          "credwatch: critical stolen ECS task credentials",
          "stolen ECS task credentials of 0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b (account 111122223333, eu-west-1)",
          "ecs-credential-exfiltration" },
        { "ec2", "i-0abcdef1234567890", "*Workload*\n`EC2 instance i-0abcdef1234567890`",
          "EC2 instance credentials of `i-0abcdef1234567890`", "credwatch: critical stolen EC2 instance credentials",
          "stolen EC2 instance credentials of i-0abcdef1234567890 ", "ec2-credential-exfiltration" },
        { "eks", NULL, "*Workload*\n`EKS pod -`", "EKS pod credentials of `-`", "credwatch: critical stolen EKS pod credentials",
          "stolen EKS pod credentials of an unknown pod ", "eks-credential-exfiltration" },
        { "codebuild", "AWSCodeBuild-7c2e9a41", "*Workload*\n`CodeBuild build AWSCodeBuild-7c2e9a41`",
          "CodeBuild build credentials of `AWSCodeBuild-7c2e9a41`", "credwatch: critical stolen CodeBuild build credentials",
          "stolen CodeBuild build credentials of AWSCodeBuild-7c2e9a41 ", "codebuild-credential-exfiltration" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *doc = workload_finding(cases[i].kind, cases[i].id, "critical");
        json_t *j = build(&slack, NULL, doc, 1, SNK_KIND_CREATED, &p);
        const char *text = json_string_value(json_object_get(j, "text"));
        if (!strstr(text, cases[i].what))
            fail_msg("%s: Slack text without \"%s\": %s", cases[i].kind, cases[i].what, text);
        json_t *blocks = json_object_get(j, "blocks");
        assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(blocks, 0), "text"), "text")),
                            cases[i].header);
        json_t *fields = json_object_get(json_array_get(blocks, 2), "fields");
        assert_string_equal(json_string_value(json_object_get(json_array_get(fields, 2), "text")), cases[i].field);
        assert_null(strstr(p.body, "Function"));
        assert_null(strstr(p.body, "Lambda"));
        json_decref(j);
        snk_payload_free(&p);
        j = build(&pd, NULL, doc, 1, SNK_KIND_CREATED, &p);
        json_t *pl = json_object_get(j, "payload");
        const char *summary = json_string_value(json_object_get(pl, "summary"));
        if (!strstr(summary, cases[i].summary))
            fail_msg("%s: summary without \"%s\": %s", cases[i].kind, cases[i].summary, summary);
        assert_string_equal(json_string_value(json_object_get(pl, "component")), cases[i].id ? cases[i].id : "");
        assert_string_equal(json_string_value(json_object_get(pl, "class")), cases[i].class);
        json_t *wl = json_object_get(json_object_get(pl, "custom_details"), "workload");
        assert_string_equal(json_string_value(json_object_get(wl, "kind")), cases[i].kind);
        json_decref(j);
        snk_payload_free(&p);
        free(doc);
    }
    /* a Lambda finding: the same Slack body with or without workload in the document, PagerDuty's
     * texts too (custom_details carries the document's workload when there is one) */
    char *old = finding("my-fn", "aws-cli/2.15.0", "open", "critical"), *now = workload_finding(NULL, "my-fn", "critical");
    struct snk_payload p2;
    json_decref(build(&slack, NULL, old, 1, SNK_KIND_CREATED, &p));
    json_decref(build(&slack, NULL, now, 1, SNK_KIND_CREATED, &p2));
    assert_string_equal(p.body, p2.body);
    assert_non_null(strstr(p.body, "*Function*\\n`my-fn`"));
    assert_non_null(strstr(p.body, "Lambda credentials of `my-fn`"));
    assert_non_null(strstr(p.body, "credwatch: critical stolen Lambda credentials"));
    snk_payload_free(&p);
    snk_payload_free(&p2);
    json_t *a = build(&pd, NULL, old, 1, SNK_KIND_CREATED, &p), *b = build(&pd, NULL, now, 1, SNK_KIND_CREATED, &p2);
    static const char *const same[] = { "summary", "component", "class", "severity", "group" };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++)
        assert_string_equal(json_string_value(json_object_get(json_object_get(a, "payload"), same[i])),
                            json_string_value(json_object_get(json_object_get(b, "payload"), same[i])));
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "payload"), "class")),
                        "lambda-credential-exfiltration");
    json_decref(a);
    json_decref(b);
    snk_payload_free(&p);
    snk_payload_free(&p2);
    free(old);
    free(now);
    /* a thief-chosen workload id (a session name): escaped for Slack, bounded, plain for PagerDuty */
    char id[3000];
    snprintf(id, sizeof id, "<!channel> <https://evil|click>`\n");
    memset(id + strlen(id), 'W', sizeof id - strlen(id) - 1);
    id[sizeof id - 1] = '\0';
    char *doc = workload_finding("ecs", id, "critical");
    json_t *j = build(&slack, NULL, doc, 1, SNK_KIND_CREATED, &p);
    static const char *const bad[] = { "<!channel>", "<https://evil", "evil|click>" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (strstr(p.body, bad[i]))
            fail_msg("\"%s\" reached Slack: %s", bad[i], p.body);
    assert_non_null(strstr(p.body, "`ECS task &lt;!channel&gt; &lt;https://evil|click&gt;' "));
    char run[SNK_SLACK_FIELD_MAX + 2];
    memset(run, 'W', sizeof run - 1);
    run[sizeof run - 1] = '\0';
    assert_null(strstr(p.body, run));
    json_decref(j);
    snk_payload_free(&p);
    j = build(&pd, NULL, doc, 1, SNK_KIND_CREATED, &p);
    const char *summary = json_string_value(json_object_get(json_object_get(j, "payload"), "summary"));
    assert_true(strlen(summary) <= SNK_PD_SUMMARY_MAX);
    assert_null(strchr(summary, '\n'));
    json_decref(j);
    snk_payload_free(&p);
    free(doc);
}

static void test_wants(void **state)
{
    (void)state;
    struct snk_conf c = conf_of(SNK_SLACK);
    static const char *const sev[] = { "low", "medium", "high", "critical" };
    for (int min = SNK_SEV_LOW; min <= SNK_SEV_CRITICAL; min++) {
        c.min_severity = min;
        for (int s = 0; s < 4; s++) {
            char *doc = finding("fn", "ua", "resolved", sev[s]);
            assert_int_equal(snk_wants(&c, doc), s + 1 >= min);
            free(doc);
        }
    }
    /* the severity is read by its tag: a function name a forger chose that spells a lower one, ahead of
     * the field, is escaped and cannot lower it below the sink's minimum */
    c.min_severity = SNK_SEV_HIGH;
    char *forged = finding("x\",\"severity\":\"low", "ua", "open", "high");
    assert_int_equal(snk_wants(&c, forged), 1);
    free(forged);
    c.min_severity = SNK_SEV_CRITICAL;
    assert_int_equal(snk_wants(&c, "{\"severity\":\"apocalyptic\"}"), 1);
    assert_int_equal(snk_wants(&c, "not json"), 1);
}

/* ---- signatures --------------------------------------------------------------------------- */

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void test_hmac_rfc4231(void **state)
{
    (void)state;
    unsigned char key1[20], mac[SNK_HMAC_LEN];
    char h[2 * SNK_HMAC_LEN + 1];
    memset(key1, 0x0b, sizeof key1);
    const void *parts1[] = { "Hi There" };
    const size_t lens1[] = { 8 };
    assert_int_equal(snk_hmac_sha256(key1, sizeof key1, parts1, lens1, 1, mac), 0);
    hex(mac, sizeof mac, h);
    assert_string_equal(h, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    /* case 2, the message given in two parts: the parts are one message */
    const void *parts2[] = { "what do ya want ", "for nothing?" };
    const size_t lens2[] = { 16, 12 };
    assert_int_equal(snk_hmac_sha256("Jefe", 4, parts2, lens2, 2, mac), 0);
    hex(mac, sizeof mac, h);
    assert_string_equal(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

/* HMAC by its definition (RFC 2104) over SHA-256 alone: H((K^opad) || H((K^ipad) || m)). */
static void hmac_by_hand(const char *key, const char *msg, size_t len, unsigned char out[32])
{
    unsigned char k[64] = { 0 }, ipad[64], opad[64], inner[32];
    memcpy(k, key, strlen(key));  /* the test key is shorter than a block */
    for (int i = 0; i < 64; i++) {
        ipad[i] = k[i] ^ 0x36;
        opad[i] = k[i] ^ 0x5c;
    }
    unsigned char buf[64 + 256];
    assert_true(len <= 256);
    memcpy(buf, ipad, 64);
    memcpy(buf + 64, msg, len);
    SHA256(buf, 64 + len, inner);
    memcpy(buf, opad, 64);
    memcpy(buf + 64, inner, 32);
    SHA256(buf, 64 + 32, out);
}

static void test_signature(void **state)
{
    (void)state;
    const char *body = "{\"event\":\"finding.created\",\"revision\":1}";
    char sig[SNK_SIG_MAX], want[SNK_SIG_MAX], signed_text[256], h[65];
    unsigned char mac[32];
    assert_int_equal(snk_sign(SECRET, 1710318801, body, strlen(body), sig, sizeof sig), 0);
    snprintf(signed_text, sizeof signed_text, "1710318801.%s", body);
    hmac_by_hand(SECRET, signed_text, strlen(signed_text), mac);
    hex(mac, 32, h);
    snprintf(want, sizeof want, "t=1710318801,v1=%s", h);
    assert_string_equal(sig, want);
    /* another time or body, another signature */
    assert_int_equal(snk_sign(SECRET, 1710318802, body, strlen(body), want, sizeof want), 0);
    assert_string_not_equal(sig, want);
    assert_int_equal(snk_sign(SECRET, 1, body, strlen(body), sig, 20), CW_ENOSPC);
}

/* ---- retry policy ------------------------------------------------------------------------- */

static void test_classify(void **state)
{
    (void)state;
    static const struct { long status; enum snk_verdict v; } table[] = {
        { 200, SNK_DELIVERED }, { 201, SNK_DELIVERED }, { 202, SNK_DELIVERED }, { 204, SNK_DELIVERED },
        { 0, SNK_RETRY }, { 408, SNK_RETRY }, { 429, SNK_RETRY }, { 500, SNK_RETRY }, { 502, SNK_RETRY },
        { 503, SNK_RETRY }, { 504, SNK_RETRY }, { 599, SNK_RETRY },
        { 301, SNK_PERMANENT }, { 302, SNK_PERMANENT }, { 307, SNK_PERMANENT }, { 400, SNK_PERMANENT },
        { 401, SNK_PERMANENT }, { 403, SNK_PERMANENT }, { 404, SNK_PERMANENT }, { 410, SNK_PERMANENT },
        { 413, SNK_PERMANENT }, { 422, SNK_PERMANENT },
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        struct snk_result r = { .status = table[i].status, .retry_after_s = -1 };
        if (snk_classify(&r) != table[i].v)
            fail_msg("status %ld: %d, want %d", table[i].status, snk_classify(&r), table[i].v);
    }
}

static uint64_t fixed_rand(void *ctx)
{
    return *(uint64_t *)ctx;
}

static void test_backoff(void **state)
{
    (void)state;
    uint64_t r = UINT64_MAX;
    int64_t prev = 0;
    /* the largest draw gives the ceiling: 1 s doubling to 30 s, never beyond */
    for (unsigned a = 1; a <= 64; a++) {
        int64_t ceiling = a <= 5 ? 1000LL << (a - 1) : SNK_BACKOFF_MAX_MS;
        r = (uint64_t)ceiling;  /* rnd % (ceiling + 1) = ceiling */
        int64_t d = snk_backoff_ms(a, NULL, fixed_rand, &r);
        assert_int_equal(d, ceiling);
        assert_true(d >= prev && d <= SNK_BACKOFF_MAX_MS);
        prev = d;
        r = UINT64_MAX;
        d = snk_backoff_ms(a, NULL, fixed_rand, &r);
        assert_true(d >= 0 && d <= ceiling);
        r = 0;
        assert_int_equal(snk_backoff_ms(a, NULL, fixed_rand, &r), 0);  /* full jitter starts at 0 */
    }
    assert_int_equal(SNK_BACKOFF_MAX_MS, 30000);
    /* Retry-After on 429/503: at least that, capped; on a 500 it is only a hint we do not take */
    r = 0;
    struct snk_result res = { .status = 429, .retry_after_s = 7 };
    assert_int_equal(snk_backoff_ms(1, &res, fixed_rand, &r), 7000);
    res.status = 503;
    res.retry_after_s = 3600;
    assert_int_equal(snk_backoff_ms(1, &res, fixed_rand, &r), SNK_BACKOFF_MAX_MS);
    res.retry_after_s = 1;
    r = 20000;
    assert_int_equal(snk_backoff_ms(6, &res, fixed_rand, &r), 20000);  /* the jitter was longer */
    res.status = 500;
    res.retry_after_s = 20;
    r = 0;
    assert_int_equal(snk_backoff_ms(1, &res, fixed_rand, &r), 0);
    res.status = 429;
    res.retry_after_s = -1;
    assert_int_equal(snk_backoff_ms(1, &res, fixed_rand, &r), 0);
    /* the OS source is usable */
    int64_t d = snk_backoff_ms(3, NULL, snk_rand_os, NULL);
    assert_true(d >= 0 && d <= 4000);
}

static void test_retry_after(void **state)
{
    (void)state;
    int64_t s, at;
    assert_int_equal(snk_retry_after_parse("7", 0, &s), 0);
    assert_int_equal(s, 7);
    assert_int_equal(snk_retry_after_parse(" 120 \r\n", 0, &s), 0);
    assert_int_equal(s, 120);
    assert_int_equal(snk_retry_after_parse("99999999999999999999999", 0, &s), 0);
    assert_int_equal(s, SNK_RETRY_AFTER_MAX_S);
    assert_int_equal(cw_time_civil(1994, 11, 6, 8, 49, 37, &at), 0);
    assert_int_equal(snk_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", at * 1000 - 10000, &s), 0);
    assert_int_equal(s, 10);
    assert_int_equal(snk_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", at * 1000 - 9500, &s), 0);
    assert_int_equal(s, 10);  /* rounded up: never retry before the time asked */
    assert_int_equal(snk_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", at * 1000 + 5000, &s), 0);
    assert_int_equal(s, 0);   /* a date past: now */
    assert_int_equal(snk_retry_after_parse("Sun, 06 Nov 1994 08:49:37 UTC", 0, &s), CW_EINVAL);
    assert_int_equal(snk_retry_after_parse("Sun, 06 Foo 1994 08:49:37 GMT", 0, &s), CW_EINVAL);
    assert_int_equal(snk_retry_after_parse("Sun, 31 Feb 1994 08:49:37 GMT", 0, &s), CW_EINVAL);
    assert_int_equal(snk_retry_after_parse("", 0, &s), CW_EINVAL);
    assert_int_equal(snk_retry_after_parse("-5", 0, &s), CW_EINVAL);
    assert_int_equal(snk_retry_after_parse("5s", 0, &s), CW_EINVAL);
}

static void test_give_up(void **state)
{
    (void)state;
    int64_t q = 1710318801000;
    assert_false(snk_give_up(q, q, SNK_GIVE_UP_S));
    assert_false(snk_give_up(q, q + SNK_GIVE_UP_S * 1000LL - 1, SNK_GIVE_UP_S));
    assert_true(snk_give_up(q, q + SNK_GIVE_UP_S * 1000LL, SNK_GIVE_UP_S));
    assert_true(snk_give_up(q, q + 61000, 60));
    assert_false(snk_give_up(q, q - 1000, 60));  /* a clock that went back keeps the event */
}

/* A body that cannot be built is a permanent failure, and nothing is sent. */
static void test_deliver_bad_document(void **state)
{
    (void)state;
    struct snk_conf c = conf_of(SNK_WEBHOOK);
    struct snk *s;
    struct snk_result res;
    assert_int_equal(snk_global_init(), 0);
    assert_int_equal(snk_open(&c, NULL, &s), 0);
    assert_int_equal(snk_deliver(s, "{\"id\":", 1, 1, 0, &res), CW_EJSON);
    assert_int_equal(res.verdict, SNK_PERMANENT);
    assert_int_equal(res.status, 0);
    assert_true(res.error[0] != '\0');
    assert_string_equal(snk_conf_of(s)->name, "t");
    snk_close(s);
    snk_global_cleanup();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_ok),       cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_env_names),
        cmocka_unit_test(test_describe_redacts), cmocka_unit_test(test_payload_webhook),
        cmocka_unit_test(test_mrkdwn),          cmocka_unit_test(test_payload_slack),
        cmocka_unit_test(test_payload_pagerduty), cmocka_unit_test(test_wants),
        cmocka_unit_test(test_payload_workloads),
        cmocka_unit_test(test_hmac_rfc4231),    cmocka_unit_test(test_signature),
        cmocka_unit_test(test_classify),        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_retry_after),     cmocka_unit_test(test_give_up),
        cmocka_unit_test(test_deliver_bad_document),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
