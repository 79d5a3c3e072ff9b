/* test_invariants.c — the verdict's promises against an attacker (docs/detection.md, "Invariants"),
 * checked on generated scenarios rather than hand-written ones.
 *
 * A scenario is a Lambda key: its issuance and the function's own marked calls from its address in
 * us-east-1 (the earliest uses), then the thief's and a forger's records, drawn from everything they
 * control: user agents (the runtime marker, the worker's, a Java SDK's), request parameters (a KMS
 * encryption context naming the function), actions, outcomes, and where they call from (the
 * internet, EC2 in the function's region and in others, IPv4 and IPv6, their own VPC endpoints,
 * floods of addresses, before the function's first call), plus a forger's issuances and records that
 * reuse a real record's event id. Then:
 *
 *   1. one record per ingest, an analyst triaging the finding as soon as it exists: the finding
 *      never disappears, its severity never drops, and its status stays the analyst's (a resolved
 *      finding may reopen on new outside use, nothing else);
 *   2. two arrival orders give the same verdict (the key's context, which shows the current one);
 *   3. rewriting only what the thief chooses (user agent, encryption context) on the thief's own
 *      calls never shrinks the set of outside addresses nor lowers the severity, outside the one
 *      documented exemption (the worker's and the cold-start calls' exact shapes, from the
 *      function's region: never generated here for the thief).
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "engine.h"
#include "render.h"
#include "settings.h"
#include "store.h"

#define SCENARIOS 150          /* generated keys per property */
#define THIEF_MAX 40           /* thief/forger records per scenario */
#define RANGES "tests/data/aws-ip-ranges-2026-08-22.json"
#define ACCT "111122223333"
#define AKID "ASIAINVARIANT0000001"
#define T0 1710318801          /* 2024-03-13T08:33:21Z, the issuance */

static struct set_net g_net;

static unsigned rnd_next(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void iso(int64_t t, char *buf, size_t n)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *const UA_MARK = "Boto3/1.34.20 md/Botocore#1.34.20 ua/2.0 os/linux#5.10 lang/python#3.12.1 "
                                   "exec-env/AWS_Lambda_python3.12 Botocore/1.34.20";
static const char *const UA_WORKER = "awslambda-worker/1.0 rusoto/0.48.0 rust/1.94.0 linux";
static const char *const UA_JAVA = "aws-sdk-java/1.12.500 Linux/5.10 OpenJDK_64-Bit_Server_VM/25.362";
static const char *const UA_CLI = "aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 source/x86_64.ubuntu.22";
static const char *const FN_IP = "3.80.1.10";  /* the function's own address: us-east-1 EC2 */

/* Where the thief calls from. None is the function's own address. */
static const char *const THIEF_IPS[] = {
    "198.51.100.7", "203.0.113.9", "91.198.174.10",     /* the internet */
    "3.80.200.5", "100.24.7.7", "3.80.7.21",            /* EC2 of the function's region */
    "3.248.0.10", "54.72.0.10", "15.193.0.10",          /* EC2 of other regions */
    "2a05:d018::10", "2600:1f18::99",                   /* IPv6: eu-west-1, us-east-1 */
    "10.8.0.5",                                         /* behind their own VPC endpoint */
};
#define N_THIEF_IPS (sizeof THIEF_IPS / sizeof THIEF_IPS[0])

static const char *const ACTIONS[][2] = {
    { "sts.amazonaws.com", "GetCallerIdentity" }, { "iam.amazonaws.com", "CreateUser" },
    { "secretsmanager.amazonaws.com", "GetSecretValue" }, { "s3.amazonaws.com", "ListObjects" },
    { "ec2.amazonaws.com", "DescribeInstances" }, { "kms.amazonaws.com", "Decrypt" },
    { "logs.amazonaws.com", "CreateLogStream" }, { "dynamodb.amazonaws.com", "PutItem" },
    { "acm.amazonaws.com", "ListCertificates" }, { "lambda.amazonaws.com", "UpdateFunctionCode20150331v2" },
};
#define N_ACTIONS (sizeof ACTIONS / sizeof ACTIONS[0])

static json_t *issuance(const char *id, int64_t t, const char *region, const char *fn, const char *acct)
{
    char ts[32];
    iso(t, ts, sizeof ts);
    char role[128];
    snprintf(role, sizeof role, "arn:aws:iam::%s:role/%s-role", acct, fn);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s},s:{s:s,s:s},s:{s:{s:s,s:s}},s:s}", "eventVersion", "1.08",
                     "eventID", id, "eventTime", ts, "eventSource", "sts.amazonaws.com", "eventName", "AssumeRole",
                     "awsRegion", region, "sourceIPAddress", "lambda.amazonaws.com", "userIdentity", "type",
                     "AWSService", "invokedBy", "lambda.amazonaws.com", "requestParameters", "roleArn", role,
                     "roleSessionName", fn, "responseElements", "credentials", "accessKeyId", AKID, "expiration",
                     "Mar 13, 2024, 8:33:21 PM", "recipientAccountId", acct);
}

/* One use of the key. ctx_fn: a cold-start encryption context naming that function ("" none). */
static json_t *use(const char *id, int64_t t, const char *ip, const char *ua, const char *src, const char *name,
                   int failed, const char *region, const char *vpce_acct, const char *ctx_fn)
{
    char ts[32];
    iso(t, ts, sizeof ts);
    json_t *r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s,s:s}}", "eventVersion", "1.08", "eventID", id,
                          "eventTime", ts, "eventSource", src, "eventName", name, "awsRegion", region,
                          "sourceIPAddress", ip, "userAgent", ua, "userIdentity", "type", "AssumedRole",
                          "accessKeyId", AKID, "accountId", ACCT, "arn",
                          "arn:aws:sts::" ACCT ":assumed-role/orders-fn-role/orders-fn");
    if (failed)
        json_object_set_new(r, "errorCode", json_string("AccessDenied"));
    if (vpce_acct && vpce_acct[0]) {
        json_object_set_new(r, "vpcEndpointId", json_string("vpce-0fedcba987654321f"));
        json_object_set_new(r, "vpcEndpointAccountId", json_string(vpce_acct));
    }
    if (ctx_fn && ctx_fn[0]) {
        char arn[160];
        snprintf(arn, sizeof arn, "arn:aws:lambda:us-east-1:" ACCT ":function:%s", ctx_fn);
        json_object_set_new(r, "requestParameters",
                            json_pack("{s:{s:s}}", "encryptionContext", "aws:lambda:FunctionArn", arn));
    }
    return r;
}

/* The thief's choice for one record; the network part and the thief-chosen part apart, so that
 * property 3 can rewrite only the latter. */
struct thief_rec {
    int ip;              /* THIEF_IPS index */
    int action, failed, region_other;
    int ua;              /* 0 CLI, 1 marker, 2 worker, 3 Java + encryption context naming the function */
    int forged_issue;    /* a forger's AssumeRole instead of a use */
    int early;           /* made before the function's first call (the key read at once) */
    int reuse_id;        /* a forger's record reusing the previous record's event id */
};

struct scenario {
    size_t n_own, n_thief;
    struct thief_rec thief[THIEF_MAX];
    int flood;           /* the thief also floods from 20 EC2 addresses of the function's region */
    int ext_flood;       /* ... or from 18 addresses of their own (external, marked) */
};

static void gen(struct scenario *sc, unsigned *seed)
{
    memset(sc, 0, sizeof *sc);
    sc->n_own = 1 + rnd_next(seed) % 4;
    sc->n_thief = 1 + rnd_next(seed) % THIEF_MAX;
    sc->flood = rnd_next(seed) % 5 == 0;
    sc->ext_flood = rnd_next(seed) % 5 == 0;
    for (size_t i = 0; i < sc->n_thief; i++) {
        struct thief_rec *t = &sc->thief[i];
        t->ip = (int)(rnd_next(seed) % N_THIEF_IPS);
        t->action = (int)(rnd_next(seed) % N_ACTIONS);
        t->failed = rnd_next(seed) % 3 == 0;
        t->region_other = rnd_next(seed) % 4 == 0;
        t->ua = (int)(rnd_next(seed) % 4);
        t->forged_issue = rnd_next(seed) % 12 == 0;
        t->early = rnd_next(seed) % 8 == 0;
        t->reuse_id = i > 0 && rnd_next(seed) % 8 == 0;
    }
}

/* Is a thief record shaped exactly like Lambda's own platform calls from the function's region
 * (the documented exemption)? Property 3 leaves those out. */
static int platform_shaped(const struct thief_rec *t)
{
    const char *ip = THIEF_IPS[t->ip];
    int own_region = (t->ip >= 3 && t->ip <= 5) || strcmp(ip, "2600:1f18::99") == 0;  /* us-east-1 EC2 */
    int worker = t->ua == 2 && strcmp(ACTIONS[t->action][1], "CreateLogStream") == 0;
    int cold = t->ua == 3 && strcmp(ACTIONS[t->action][1], "Decrypt") == 0;
    return own_region && (worker || cold);
}

/* The records of a scenario in their canonical order; ua_override >= 0 rewrites every thief use's
 * user agent choice (property 3). */
static json_t *records(const struct scenario *sc, int ua_override)
{
    json_t *a = json_array();
    char id[64];
    json_array_append_new(a, issuance("00000000-0000-4000-8000-000000000001", T0, "us-east-1", "orders-fn", ACCT));
    for (size_t i = 0; i < sc->n_own; i++) {
        snprintf(id, sizeof id, "own-%zu", i);
        json_array_append_new(a, use(id, T0 + 4 + (int64_t)i * 30, FN_IP, UA_MARK, "dynamodb.amazonaws.com", "PutItem",
                                     0, "us-east-1", NULL, NULL));
    }
    for (size_t i = 0; i < sc->n_thief; i++) {
        const struct thief_rec *t = &sc->thief[i];
        int64_t at = t->early ? T0 + 1 + (int64_t)(i % 4) : T0 + 600 + (int64_t)i * 17;
        snprintf(id, sizeof id, "thief-%02zu", t->reuse_id ? i - 1 : i);
        if (t->forged_issue) {
            static const char *const regions[] = { "ap-south-1", "eu-west-1", "us-east-1" };
            json_array_append_new(a, issuance(id, at, regions[t->action % 3], t->failed ? "innocent-fn" : "orders-fn",
                                              t->region_other ? "444455556666" : ACCT));
            continue;
        }
        int ua = ua_override >= 0 && !platform_shaped(t) ? ua_override : t->ua;
        struct thief_rec tt = *t;
        tt.ua = ua;
        if (ua_override >= 0 && platform_shaped(&tt))
            ua = 0;  /* the rewrite must not create the exempt shape either */
        const char *uas[] = { UA_CLI, UA_MARK, UA_WORKER, UA_JAVA };
        const char *ip = THIEF_IPS[t->ip];
        const char *vpce = strcmp(ip, "10.8.0.5") == 0 ? "999988887777" : NULL;
        json_array_append_new(a, use(id, at, ip, uas[ua], ACTIONS[t->action][0], ACTIONS[t->action][1], t->failed,
                                     t->region_other ? "ap-southeast-2" : "us-east-1", vpce,
                                     ua == 3 ? "orders-fn" : NULL));
    }
    for (size_t i = 0; sc->flood && i < 20; i++) {
        char ip[32];
        snprintf(id, sizeof id, "flood-%02zu", i);
        snprintf(ip, sizeof ip, "100.24.0.%zu", i + 1);
        json_array_append_new(a, use(id, T0 + 900 + (int64_t)i, ip, i % 2 ? UA_WORKER : UA_CLI, "logs.amazonaws.com",
                                     "CreateLogStream", 0, "us-east-1", NULL, NULL));
    }
    for (size_t i = 0; sc->ext_flood && i < 18; i++) {
        char ip[32];
        snprintf(id, sizeof id, "ext-%02zu", i);
        snprintf(ip, sizeof ip, "203.0.113.%zu", 100 + i);
        json_array_append_new(a, use(id, T0 + 950 + (int64_t)i, ip, i % 2 ? UA_MARK : UA_CLI, "sts.amazonaws.com",
                                     "GetCallerIdentity", 0, "us-east-1", NULL, NULL));
    }
    return a;
}

struct world {
    struct store *st;
    struct eng *eng;
    struct eng_report *rep;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void world_open(struct world *w)
{
    struct eng_config cfg = { .late_margin_s = 0 };
    set_net_ctx(&g_net, &cfg.det);
    w->st = store_mem_new();
    w->eng = eng_new(w->st, &cfg);
    w->rep = malloc(sizeof *w->rep);
    assert_non_null(w->st);
    assert_non_null(w->eng);
    assert_non_null(w->rep);
}

static void world_close(struct world *w)
{
    eng_free(w->eng);
    store_free(w->st);
    free(w->rep);
}

static void ingest(struct world *w, json_t *recs)
{
    json_t *doc = json_pack("{s:O}", "Records", recs);
    char *s = json_dumps(doc, JSON_COMPACT);
    int rc = eng_ingest(w->eng, (const uint8_t *)s, strlen(s), now_ms(), w->rep);
    if (rc)
        fail_msg("ingest: %d %s", rc, w->rep->message);
    free(s);
    json_decref(doc);
}

/* The key's context without finding_id (which also says whether a finding was ever raised). */
static char *verdict_of(struct world *w)
{
    char *ctx = NULL;
    assert_int_equal(eng_key_json(w->eng, AKID, &ctx), 0);
    json_error_t err;
    json_t *o = json_loads(ctx, 0, &err);
    assert_non_null(o);
    json_object_del(o, "finding_id");
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    free(ctx);
    return s;
}

static void shuffle(size_t *order, size_t n, unsigned *seed)
{
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = rnd_next(seed) % (i + 1);
        size_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* Properties 1 and 2. */
static void t_never_lowered_and_order_free(void **state)
{
    (void)state;
    unsigned seed = 20261203;
    size_t triaged = 0, explained = 0, reopened = 0;
    for (int s = 0; s < SCENARIOS; s++) {
        struct scenario sc;
        gen(&sc, &seed);
        json_t *recs = records(&sc, -1);
        size_t n = json_array_size(recs);
        size_t order[THIEF_MAX + 64];
        shuffle(order, n, &seed);
        static const int statuses[] = { STORE_ST_ACKNOWLEDGED, STORE_ST_SUPPRESSED, STORE_ST_RESOLVED };
        int analyst = statuses[s % 3];
        struct world w;
        world_open(&w);
        char fid[STORE_ID_MAX];
        eng_finding_id(AKID, fid, sizeof fid);
        int seen = 0, sev = 0, was_reopened = 0;
        for (size_t i = 0; i < n; i++) {
            json_t *one = json_array();
            json_array_append(one, json_array_get(recs, order[i]));
            ingest(&w, one);
            json_decref(one);
            struct store_finding f;
            int rc = store_finding_get(w.st, fid, &f);
            if (rc == CW_ENOTFOUND) {
                if (seen)
                    fail_msg("scenario %d: the finding disappeared after record %zu", s, i);
                continue;
            }
            assert_int_equal(rc, 0);
            json_error_t err;
            json_t *doc = json_loads(f.evidence_json, 0, &err);
            assert_non_null(doc);
            int now_sev = det_severity_parse(json_string_value(json_object_get(doc, "severity")));
            if (now_sev < sev)
                fail_msg("scenario %d: severity fell from %d to %d at record %zu: %s", s, sev, now_sev, i, f.evidence_json);
            sev = now_sev;
            if (!seen) {
                assert_int_equal(f.status, STORE_ST_OPEN);
                assert_int_equal(store_finding_patch(w.st, fid, analyst, NULL, now_ms()), 0);
                seen = 1;
                triaged++;
            } else if (f.status != analyst) {
                /* the only change the engine may make: a resolved finding reopens on new outside use */
                if (!(analyst == STORE_ST_RESOLVED && f.status == STORE_ST_OPEN) &&
                    !(was_reopened && f.status == STORE_ST_OPEN))
                    fail_msg("scenario %d: status %s replaced the analyst's %s", s, store_status_name(f.status),
                             store_status_name(analyst));
                was_reopened = 1;
            }
            json_decref(doc);
            store_finding_free(&f);
        }
        reopened += (size_t)was_reopened;
        struct store_finding f;
        if (seen && store_finding_get(w.st, fid, &f) == 0) {
            explained += strstr(f.evidence_json, "\"explained\":true") != NULL;
            store_finding_free(&f);
        }
        char *v1 = verdict_of(&w);
        world_close(&w);
        /* another order, all at once: the same verdict */
        world_open(&w);
        shuffle(order, n, &seed);
        json_t *again = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append(again, json_array_get(recs, order[i]));
        ingest(&w, again);
        json_decref(again);
        char *v2 = verdict_of(&w);
        if (strcmp(v1, v2) != 0)
            fail_msg("scenario %d: two arrival orders, two verdicts:\n%s\n%s", s, v1, v2);
        free(v1);
        free(v2);
        world_close(&w);
        json_decref(recs);
    }
    /* the generator really exercised what it claims to */
    print_message("invariants: %d scenarios, %zu triaged findings, %zu explained, %zu resolved-and-reopened\n",
                  SCENARIOS, triaged, explained, reopened);
    assert_true(triaged > SCENARIOS / 2);
}

static int severity_of(const char *ctx_json, json_t **outside_ips)
{
    json_error_t err;
    json_t *o = json_loads(ctx_json, 0, &err);
    assert_non_null(o);
    *outside_ips = json_incref(json_object_get(json_object_get(o, "outside"), "source_ips"));
    json_decref(o);
    return 0;
}

/* Property 3: the thief's user agent and request parameters never buy "inside". */
static void t_thief_fields_never_buy_inside(void **state)
{
    (void)state;
    unsigned seed = 777;
    size_t compared = 0;
    for (int s = 0; s < SCENARIOS; s++) {
        struct scenario sc;
        gen(&sc, &seed);
        json_t *base_ips = NULL;
        char *base_doc = NULL;
        int base_sev = 0;
        for (int ua = 0; ua < 4; ua++) {
            struct world w;
            world_open(&w);
            json_t *recs = records(&sc, ua);
            ingest(&w, recs);
            json_decref(recs);
            char *ctx = NULL;
            assert_int_equal(eng_key_json(w.eng, AKID, &ctx), 0);
            json_t *ips;
            severity_of(ctx, &ips);
            struct store_finding f;
            char fid[STORE_ID_MAX];
            eng_finding_id(AKID, fid, sizeof fid);
            int sev = 0;
            if (store_finding_get(w.st, fid, &f) == 0) {
                json_error_t err;
                json_t *doc = json_loads(f.evidence_json, 0, &err);
                sev = det_severity_parse(json_string_value(json_object_get(doc, "severity")));
                json_decref(doc);
                store_finding_free(&f);
            }
            if (ua == 0) {
                base_ips = ips;
                base_doc = ctx;
                base_sev = sev;
                ctx = NULL;
            } else {
                /* every outside address of the plain-CLI version is still outside */
                size_t i;
                json_t *ip;
                json_array_foreach(base_ips, i, ip) {
                    int found = 0;
                    size_t j;
                    json_t *g;
                    json_array_foreach(ips, j, g) found |= json_equal(g, ip);
                    if (!found)
                        fail_msg("scenario %d: user agent %d made %s inside:\n%s\nvs\n%s", s, ua,
                                 json_string_value(ip), ctx, base_doc);
                }
                if (sev < base_sev)
                    fail_msg("scenario %d: user agent %d lowered severity %d to %d", s, ua, base_sev, sev);
                json_decref(ips);
                compared++;
            }
            free(ctx);
            world_close(&w);
        }
        json_decref(base_ips);
        free(base_doc);
    }
    assert_true(compared == (size_t)SCENARIOS * 3);
}

static int setup(void **state)
{
    (void)state;
    char msg[SET_MSG_MAX];
    if (set_net_load(&g_net, RANGES, "", ACCT, msg, sizeof msg)) {
        fprintf(stderr, "%s (run from the repository root)\n", msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    set_net_free(&g_net);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_never_lowered_and_order_free),
        cmocka_unit_test(t_thief_fields_never_buy_inside),
    };
    return cmocka_run_group_tests_name("invariants", tests, setup, teardown);
}
