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
#include <dirent.h>
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

/* ---- Workloads (docs/workloads.md, issue 14) ------------------------------------------------
 *
 * The same promises for keys of every workload kind. A workload scenario is one key of one kind
 * (its issuance when the kind is issued, the workload's own calls from its address in us-east-1,
 * carrying what that workload's calls carry: the ECS marker, ec2RoleDelivery, a session form), then
 * the thief's calls and a forger's issuances of any kind, as above. AWS writes the session (the ARN)
 * and ec2RoleDelivery on every use of the key, the thief's included; the thief chooses the user
 * agent: none, the Lambda marker, an ECS marker (Fargate or EC2), or Lambda and ECS at once.
 *
 *   4. one record per ingest: the finding never disappears and its severity never drops; the whole
 *      set again (twice) changes nothing; another arrival order, all at once, gives the same verdict;
 *   5. adding markers of any kind to the thief's calls never shrinks the outside set nor lowers the
 *      severity below what the same calls without markers give (a marker never buys a kind with
 *      more lenient rules, nor an address the key's own), nor changes a kind AWS wrote (issuance,
 *      ec2RoleDelivery); and once a finding is raised, more calls with markers added or removed
 *      never lower it;
 *   6. the same, on the workload fixtures (tests/cases/NN_wl_*.json, made by make_cases.py): copies
 *      of every use with markers of each kind added or removed, arriving after the fixture, never
 *      lower any finding the fixture raised. (tests/test_cases.c runs every fixture in every order
 *      and twice.)
 */
#define WL_AKID "ASIAINVARIANTWL00001"
#define WL_CASES_DIR "tests/cases"
#define WL_CASES_MAX 128

enum wl_scn {
    WS_ECS_MARKED,      /* issued by ecs-tasks, the task's calls marked exec-env/AWS_ECS_FARGATE (anchored) */
    WS_ECS_UNMARKED,    /* issued by ecs-tasks, the task's calls without a marker (rule 7) */
    WS_EC2_ISSUED,      /* issued by ec2, ec2RoleDelivery on every use */
    WS_EC2_UNISSUED,    /* ec2RoleDelivery on every use, issuance not seen: outside-AWS rules */
    WS_POD,             /* EKS Pod Identity: issued by pods.eks, session eks-...-<uuid> */
    WS_IRSA,            /* EKS IRSA: AssumeRoleWithWebIdentity from the node (sometimes from outside) */
    WS_BUILD,           /* CodeBuild: session AWSCodeBuild-..., calls marked exec-env/AWS_ECS_EC2 */
    WS_ECS_MARKER_ONLY, /* an AWS fleet signing with the role (exec-env/AWS_ECS_FARGATE), not issued */
    WS_LAMBDA,          /* a Lambda key, for the ECS marker put on its calls */
    WS_COUNT
};

static const char *const UA_GO = "aws-sdk-go-v2/1.24.0 os/linux lang/go#1.21.5 md/GOOS#linux md/GOARCH#amd64";
static const char *const UA_ECS_F = "aws-sdk-java/2.25.60 Linux/5.10.219 Java/17.0.11 exec-env/AWS_ECS_FARGATE io/sync";
static const char *const UA_ECS_E = "aws-cli/2.34.11 ua/2.1 os/linux#5.10.0 exec-env/AWS_ECS_EC2 md/command#s3.sync";
static const char *const UA_BOTH = "Boto3/1.34.20 ua/2.0 os/linux#5.10 lang/python#3.12.1 "
                                   "exec-env/AWS_Lambda_python3.12 exec-env/AWS_ECS_FARGATE Botocore/1.34.20";
/* The thief's user agents: 0 has no marker; the others add markers of each kind. */
#define WL_N_UAS 5

static const char *wl_ua(int i)
{
    const char *const uas[WL_N_UAS] = { UA_CLI, UA_MARK, UA_ECS_F, UA_ECS_E, UA_BOTH };
    return uas[i];
}

struct wl_profile_of {
    const char *role, *session, *own_ua;
    const char *issuer;   /* invokedBy of the AssumeRole issuance; "irsa"; NULL: none seen */
    int delivery;         /* ec2RoleDelivery on every use */
};

static struct wl_profile_of wl_of(int kind)
{
    switch (kind) {
    case WS_ECS_MARKED:
        return (struct wl_profile_of){ "orders-task-role", "0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b", UA_ECS_F,
                                       "ecs-tasks.amazonaws.com", 0 };
    case WS_ECS_UNMARKED:
        return (struct wl_profile_of){ "orders-task-role", "0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b", UA_GO,
                                       "ecs-tasks.amazonaws.com", 0 };
    case WS_EC2_ISSUED:
        return (struct wl_profile_of){ "web-instance-role", "i-0abcdef1234567890", UA_CLI, "ec2.amazonaws.com", 1 };
    case WS_EC2_UNISSUED:
        return (struct wl_profile_of){ "web-instance-role", "i-0abcdef1234567890", UA_CLI, NULL, 1 };
    case WS_POD:
        return (struct wl_profile_of){ "pod-role", "eks-payments-invoice-w-3b2d6f0e-8a41-4c7e-9d15-2f6b8e0c4a71", UA_GO,
                                       "pods.eks.amazonaws.com", 0 };
    case WS_IRSA:
        return (struct wl_profile_of){ "web-identity-role", "1700000000000000001", UA_GO, "irsa", 0 };
    case WS_BUILD:
        return (struct wl_profile_of){ "codebuild-service-role", "AWSCodeBuild-7c2e9a41", UA_ECS_E, NULL, 0 };
    case WS_ECS_MARKER_ONLY:
        return (struct wl_profile_of){ "ecsEventsRole", "example-schedule-session", UA_ECS_F, NULL, 0 };
    default:
        return (struct wl_profile_of){ "orders-fn-role", "orders-fn", UA_MARK, "lambda.amazonaws.com", 0 };
    }
}

#define OIDC_PROVIDER "arn:aws:iam::" ACCT ":oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"

/* An issuance of the key: sts:AssumeRole by an AWS service for `session`, or (issuer "irsa") the
 * pod's AssumeRoleWithWebIdentity from `ip`. */
static json_t *wl_issuance(const char *id, int64_t t, const char *issuer, const char *session, const char *ip)
{
    char ts[32];
    iso(t, ts, sizeof ts);
    if (strcmp(issuer, "irsa") == 0)
        return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s},s:{s:s,s:s},"
                         "s:{s:{s:s,s:s},s:s,s:s},s:s}",
                         "eventVersion", "1.08", "eventID", id, "eventTime", ts, "eventSource", "sts.amazonaws.com",
                         "eventName", "AssumeRoleWithWebIdentity", "awsRegion", "us-east-1", "sourceIPAddress", ip,
                         "userAgent", UA_GO, "userIdentity", "type", "WebIdentityUser", "userName",
                         "system:serviceaccount:payments:invoice-worker", "identityProvider", OIDC_PROVIDER,
                         "requestParameters", "roleArn", "arn:aws:iam::" ACCT ":role/web-identity-role",
                         "roleSessionName", session, "responseElements", "credentials", "accessKeyId", WL_AKID,
                         "expiration", "Mar 13, 2024, 9:33:21 AM", "subjectFromWebIdentityToken",
                         "system:serviceaccount:payments:invoice-worker", "provider", OIDC_PROVIDER,
                         "recipientAccountId", ACCT);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s},s:{s:s,s:s},s:{s:{s:s,s:s}},s:s}", "eventVersion",
                     "1.08", "eventID", id, "eventTime", ts, "eventSource", "sts.amazonaws.com", "eventName",
                     "AssumeRole", "awsRegion", "us-east-1", "sourceIPAddress", issuer, "userAgent", issuer,
                     "userIdentity", "type", "AWSService", "invokedBy", issuer, "requestParameters", "roleArn",
                     "arn:aws:iam::" ACCT ":role/workload-role", "roleSessionName", session, "responseElements",
                     "credentials", "accessKeyId", WL_AKID, "expiration", "Mar 13, 2024, 2:33:21 PM",
                     "recipientAccountId", ACCT);
}

/* One use of the workload's key; AWS writes the session and ec2RoleDelivery, the caller the rest. */
static json_t *wl_use_rec(const char *id, int64_t t, const char *ip, const char *ua, const char *src, const char *name,
                          int failed, const char *region, const char *vpce_acct, const struct wl_profile_of *p)
{
    char ts[32], arn[192];
    iso(t, ts, sizeof ts);
    snprintf(arn, sizeof arn, "arn:aws:sts::" ACCT ":assumed-role/%s/%s", p->role, p->session);
    json_t *r = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s,s:s}}", "eventVersion", "1.08", "eventID", id,
                          "eventTime", ts, "eventSource", src, "eventName", name, "awsRegion", region,
                          "sourceIPAddress", ip, "userAgent", ua, "userIdentity", "type", "AssumedRole", "accessKeyId",
                          WL_AKID, "accountId", ACCT, "arn", arn);
    if (p->delivery)
        json_object_set_new(json_object_get(r, "userIdentity"), "sessionContext",
                            json_pack("{s:s}", "ec2RoleDelivery", "2.0"));
    if (failed)
        json_object_set_new(r, "errorCode", json_string("AccessDenied"));
    if (vpce_acct && vpce_acct[0]) {
        json_object_set_new(r, "vpcEndpointId", json_string("vpce-0fedcba987654321f"));
        json_object_set_new(r, "vpcEndpointAccountId", json_string(vpce_acct));
    }
    return r;
}

struct wl_scenario {
    int kind;             /* enum wl_scn */
    int irsa_outside;     /* WS_IRSA: the token exchanged from outside AWS */
    struct scenario sc;   /* n_own, the thief's records (ua: a wl_ua index) */
};

static void wl_gen(struct wl_scenario *w, unsigned *seed)
{
    gen(&w->sc, seed);
    w->kind = (int)(rnd_next(seed) % WS_COUNT);
    w->irsa_outside = rnd_next(seed) % 4 == 0;
    w->sc.flood = w->sc.ext_flood = 0;
    if (rnd_next(seed) % 2)  /* half the scenarios few thief records: one loud address must not mask the rest */
        w->sc.n_thief = 1 + w->sc.n_thief % 4;
    for (size_t i = 0; i < w->sc.n_thief; i++)
        w->sc.thief[i].ua = (int)(rnd_next(seed) % WL_N_UAS);
}

/* The scenario's records; ua_override >= 0 gives every thief use that user agent. */
static json_t *wl_records(const struct wl_scenario *w, int ua_override)
{
    struct wl_profile_of p = wl_of(w->kind);
    json_t *a = json_array();
    char id[64];
    if (p.issuer)
        json_array_append_new(a, wl_issuance("00000000-0000-4000-8000-000000000001", T0, p.issuer, p.session,
                                             w->irsa_outside ? "198.51.100.7" : FN_IP));
    for (size_t i = 0; i < w->sc.n_own; i++) {
        snprintf(id, sizeof id, "own-%zu", i);
        json_array_append_new(a, wl_use_rec(id, T0 + 4 + (int64_t)i * 30, FN_IP, p.own_ua, "dynamodb.amazonaws.com",
                                            "PutItem", 0, "us-east-1", NULL, &p));
    }
    static const char *const forged_by[] = { "lambda.amazonaws.com", "ecs-tasks.amazonaws.com", "ec2.amazonaws.com",
                                             "pods.eks.amazonaws.com", "irsa" };
    for (size_t i = 0; i < w->sc.n_thief; i++) {
        const struct thief_rec *t = &w->sc.thief[i];
        int64_t at = t->early ? T0 + 1 + (int64_t)(i % 4) : T0 + 600 + (int64_t)i * 17;
        snprintf(id, sizeof id, "thief-%02zu", t->reuse_id ? i - 1 : i);
        if (t->forged_issue) {  /* a forger's issuance of any kind, before or after the real one */
            json_array_append_new(a, wl_issuance(id, t->early ? T0 - 60 : at, forged_by[t->action % 5],
                                                 t->failed ? "i-0fedcba9876543210" : p.session, THIEF_IPS[t->ip]));
            continue;
        }
        const char *ip = THIEF_IPS[t->ip];
        const char *vpce = strcmp(ip, "10.8.0.5") == 0 ? "999988887777" : NULL;
        json_array_append_new(a, wl_use_rec(id, at, ip, wl_ua(ua_override >= 0 ? ua_override : t->ua),
                                            ACTIONS[t->action][0], ACTIONS[t->action][1], t->failed,
                                            t->region_other ? "ap-southeast-2" : "us-east-1", vpce, &p));
    }
    return a;
}

/* The severity of the key's finding (0: none), in *outside its outside addresses, and in kind (when
 * not NULL) the key's workload kind ("none" for none). */
static int wl_state_kind(struct world *w, const char *akid, json_t **outside, char *kind, size_t kind_size)
{
    char *ctx = NULL;
    assert_int_equal(eng_key_json(w->eng, akid, &ctx), 0);
    severity_of(ctx, outside);
    if (kind) {
        json_error_t err;
        json_t *o = json_loads(ctx, 0, &err);
        assert_non_null(o);
        const char *k = json_string_value(json_object_get(json_object_get(o, "workload"), "kind"));
        snprintf(kind, kind_size, "%s", k ? k : "none");
        json_decref(o);
    }
    free(ctx);
    char fid[STORE_ID_MAX];
    eng_finding_id(akid, fid, sizeof fid);
    struct store_finding f;
    int sev = 0;
    if (store_finding_get(w->st, fid, &f) == 0) {
        json_error_t err;
        json_t *doc = json_loads(f.evidence_json, 0, &err);
        assert_non_null(doc);
        sev = det_severity_parse(json_string_value(json_object_get(doc, "severity")));
        json_decref(doc);
        store_finding_free(&f);
    }
    return sev;
}

static int wl_state(struct world *w, const char *akid, json_t **outside)
{
    return wl_state_kind(w, akid, outside, NULL, 0);
}

static char *wl_verdict_of(struct world *w, const char *akid)
{
    char *ctx = NULL;
    assert_int_equal(eng_key_json(w->eng, akid, &ctx), 0);
    json_error_t err;
    json_t *o = json_loads(ctx, 0, &err);
    assert_non_null(o);
    json_object_del(o, "finding_id");
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    free(ctx);
    return s;
}

/* Property 4. */
static void t_workload_order_free_twice(void **state)
{
    (void)state;
    unsigned seed = 20261205;
    size_t findings = 0, kinds_seen = 0;
    unsigned kinds = 0;
    for (int s = 0; s < SCENARIOS; s++) {
        struct wl_scenario ws;
        wl_gen(&ws, &seed);
        kinds |= 1u << ws.kind;
        json_t *recs = wl_records(&ws, -1);
        size_t n = json_array_size(recs);
        size_t order[THIEF_MAX + 64];
        shuffle(order, n, &seed);
        struct world w;
        world_open(&w);
        int sev = 0, seen = 0;
        for (size_t i = 0; i < n; i++) {
            json_t *one = json_array();
            json_array_append(one, json_array_get(recs, order[i]));
            ingest(&w, one);
            json_decref(one);
            json_t *ips;
            int now = wl_state(&w, WL_AKID, &ips);
            json_decref(ips);
            if (seen && now == 0)
                fail_msg("workload scenario %d (kind %d): the finding disappeared after record %zu", s, ws.kind, i);
            if (now < sev)
                fail_msg("workload scenario %d (kind %d): severity fell from %d to %d at record %zu", s, ws.kind, sev,
                         now, i);
            seen |= now > 0;
            sev = now;
        }
        findings += (size_t)seen;
        char *v1 = wl_verdict_of(&w, WL_AKID);
        ingest(&w, recs);  /* twice: every record a duplicate */
        char *v1b = wl_verdict_of(&w, WL_AKID);
        if (strcmp(v1, v1b) != 0)
            fail_msg("workload scenario %d (kind %d): the same records twice changed the verdict:\n%s\n%s", s, ws.kind,
                     v1, v1b);
        world_close(&w);
        world_open(&w);
        shuffle(order, n, &seed);
        json_t *again = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append(again, json_array_get(recs, order[i]));
        ingest(&w, again);
        json_decref(again);
        char *v2 = wl_verdict_of(&w, WL_AKID);
        if (strcmp(v1, v2) != 0)
            fail_msg("workload scenario %d (kind %d): two arrival orders, two verdicts:\n%s\n%s", s, ws.kind, v1, v2);
        free(v1);
        free(v1b);
        free(v2);
        world_close(&w);
        json_decref(recs);
    }
    for (int k = 0; k < WS_COUNT; k++)
        kinds_seen += (kinds >> k) & 1u;
    print_message("workload invariants: %d scenarios, %zu kinds, %zu with a finding\n", SCENARIOS, kinds_seen, findings);
    assert_int_equal(kinds_seen, WS_COUNT);
    assert_true(findings > SCENARIOS / 3);
}

/* Property 5. */
static void t_workload_markers_never_lower(void **state)
{
    (void)state;
    unsigned seed = 4242;
    size_t compared = 0;
    for (int s = 0; s < SCENARIOS; s++) {
        struct wl_scenario ws;
        wl_gen(&ws, &seed);
        json_t *base_ips = NULL;
        int base_sev = 0;
        char base_kind[16] = "", kind[16];
        /* a kind AWS wrote (an issuance, ec2RoleDelivery) is not the thief's to change; a session form
         * or a fleet's ECS marker ranks below the Lambda marker by design (docs/workloads.md 5.3) */
        int kind_fixed = ws.kind != WS_BUILD && ws.kind != WS_ECS_MARKER_ONLY;
        for (int ua = 0; ua < WL_N_UAS; ua++) {
            struct world w;
            world_open(&w);
            json_t *recs = wl_records(&ws, ua);
            ingest(&w, recs);
            json_decref(recs);
            json_t *ips;
            int sev = wl_state_kind(&w, WL_AKID, &ips, kind, sizeof kind);
            world_close(&w);
            if (ua == 0) {
                base_ips = ips;
                base_sev = sev;
                memcpy(base_kind, kind, sizeof kind);
                continue;
            }
            if (kind_fixed && strcmp(kind, base_kind) != 0)
                fail_msg("workload scenario %d (kind %d): markers %d changed the key's kind from %s to %s", s, ws.kind,
                         ua, base_kind, kind);
            size_t i;
            json_t *ip;
            json_array_foreach(base_ips, i, ip) {
                int found = 0;
                size_t j;
                json_t *g;
                json_array_foreach(ips, j, g) found |= json_equal(g, ip);
                if (!found)
                    fail_msg("workload scenario %d (kind %d): markers %d made %s inside", s, ws.kind, ua,
                             json_string_value(ip));
            }
            if (sev < base_sev)
                fail_msg("workload scenario %d (kind %d): markers %d lowered severity %d to %d", s, ws.kind, ua,
                         base_sev, sev);
            json_decref(ips);
            compared++;
        }
        json_decref(base_ips);
        /* once raised: the thief's calls again with each user agent in turn (other events: the user
         * agent is part of an event's identity), markers added and removed, never lower it */
        struct world w;
        world_open(&w);
        int sev = 0;
        for (int step = 0; step < WL_N_UAS * 2; step++) {
            int ua = (int)(rnd_next(&seed) % WL_N_UAS);
            json_t *recs = wl_records(&ws, ua);
            ingest(&w, recs);
            json_decref(recs);
            json_t *ips;
            int now = wl_state(&w, WL_AKID, &ips);
            json_decref(ips);
            if (now < sev)
                fail_msg("workload scenario %d (kind %d): user agent %d after a finding lowered %d to %d", s, ws.kind, ua,
                         sev, now);
            sev = now;
        }
        world_close(&w);
    }
    assert_true(compared == (size_t)SCENARIOS * (WL_N_UAS - 1));
}

/* The user agent with every exec-env/ token taken out, then `add` appended ("" nothing). */
static json_t *ua_rewritten(const char *ua, const char *add)
{
    char out[512];
    size_t n = 0;
    const char *p = ua ? ua : "";
    while (*p && n < sizeof out - 1) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int drop = strncmp(p, "exec-env/", 9) == 0 || strncmp(p, "[exec-env/", 10) == 0;
        if (!drop && len && n + len + 1 < sizeof out) {
            if (n)
                out[n++] = ' ';
            memcpy(out + n, p, len);
            n += len;
        }
        p += len + (e ? 1 : 0);
    }
    out[n] = 0;
    if (add[0] && n + strlen(add) + 2 < sizeof out)
        snprintf(out + n, sizeof out - n, "%s%s", n ? " " : "", add);
    return json_string(out);
}

/* Property 6, on the workload fixtures. */
static void t_workload_fixtures_markers_never_lower(void **state)
{
    (void)state;
    static const char *const adds[] = { "", "exec-env/AWS_Lambda_python3.12", "exec-env/AWS_ECS_FARGATE",
                                        "exec-env/AWS_ECS_EC2", "exec-env/AWS_Lambda_nodejs20.x exec-env/AWS_ECS_EC2" };
    DIR *d = opendir(WL_CASES_DIR);
    assert_non_null(d);
    char *paths[WL_CASES_MAX];
    size_t np = 0;
    struct dirent *de;
    while ((de = readdir(d)) && np < WL_CASES_MAX) {
        size_t len = strlen(de->d_name);
        if (len > 8 && strncmp(de->d_name + 2, "_wl_", 4) == 0 && strcmp(de->d_name + len - 5, ".json") == 0) {
            size_t plen = sizeof WL_CASES_DIR + len + 1;
            paths[np] = malloc(plen);
            assert_non_null(paths[np]);
            snprintf(paths[np], plen, "%s/%s", WL_CASES_DIR, de->d_name);
            np++;
        }
    }
    closedir(d);
    size_t raised = 0;
    for (size_t c = 0; c < np; c++) {
        json_error_t err;
        json_t *fx = json_load_file(paths[c], 0, &err);
        if (!fx)
            fail_msg("%s: %s", paths[c], err.text);
        json_t *st = json_object_get(fx, "settings");
        struct set_net net;
        char msg[SET_MSG_MAX];
        if (set_net_load(&net, json_string_value(json_object_get(st, "aws_ip_ranges")),
                         json_string_value(json_object_get(st, "allow_cidrs")),
                         json_string_value(json_object_get(st, "accounts")), msg, sizeof msg))
            fail_msg("%s: settings: %s", paths[c], msg);
        struct eng_config cfg = { .late_margin_s = 0 };
        set_net_ctx(&net, &cfg.det);
        struct world w = { store_mem_new(), NULL, malloc(sizeof(struct eng_report)) };
        w.eng = eng_new(w.st, &cfg);
        assert_non_null(w.eng);
        json_t *recs = json_object_get(fx, "records");
        ingest(&w, recs);
        /* the findings the fixture raised, by key */
        json_t *expect = json_object_get(fx, "expect"), *e;
        size_t i;
        int sev[16] = { 0 };
        assert_true(json_array_size(expect) <= 16);
        json_array_foreach(expect, i, e) {
            json_t *ips;
            sev[i] = wl_state(&w, json_string_value(json_object_get(e, "access_key_id")), &ips);
            json_decref(ips);
            assert_true(sev[i] > 0);
            raised++;
        }
        for (size_t a = 0; a < sizeof adds / sizeof adds[0]; a++) {
            json_t *copies = json_array(), *r;
            size_t k;
            json_array_foreach(recs, k, r) {
                json_t *ui = json_object_get(r, "userIdentity");
                if (!json_is_string(json_object_get(ui, "accessKeyId")))
                    continue;  /* an issuance: not the caller's user agent */
                json_t *cp = json_deep_copy(r);
                char id[96];
                snprintf(id, sizeof id, "%s-ua%zu", json_string_value(json_object_get(r, "eventID")), a);
                json_object_set_new(cp, "eventID", json_string(id));
                json_object_set_new(cp, "userAgent", ua_rewritten(json_string_value(json_object_get(r, "userAgent")),
                                                                  adds[a]));
                json_array_append_new(copies, cp);
            }
            ingest(&w, copies);
            json_decref(copies);
            json_array_foreach(expect, i, e) {
                json_t *ips;
                const char *akid = json_string_value(json_object_get(e, "access_key_id"));
                int now = wl_state(&w, akid, &ips);
                json_decref(ips);
                if (now < sev[i])
                    fail_msg("%s: %s: uses again with \"%s\" lowered severity %d to %d", paths[c], akid, adds[a],
                             sev[i], now);
                sev[i] = now;
            }
        }
        world_close(&w);
        set_net_free(&net);
        json_decref(fx);
        free(paths[c]);
    }
    print_message("workload fixtures: %zu, %zu findings held through marker rewrites\n", np, raised);
    assert_true(np >= 20 && raised >= 10);
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
        cmocka_unit_test(t_workload_order_free_twice),
        cmocka_unit_test(t_workload_markers_never_lower),
        cmocka_unit_test(t_workload_fixtures_markers_never_lower),
    };
    return cmocka_run_group_tests_name("invariants", tests, setup, teardown);
}
