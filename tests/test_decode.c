/* test_decode.c — the CloudTrail decoder (service/decode.h): every accepted form, plain and gzip,
 * the look-alikes it refuses, malformed records and inputs, the caps, the time parsers and the
 * classification of each record.
 *
 * Every input goes through decode_all(), which decodes it whole (dec_buffer) and again fed in
 * 1-byte and 7-byte chunks, and asserts the three runs give identical results (return code,
 * message, statistics, events and skips): streaming must not change anything.
 */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "classify.h"
#include "decode.h"
#include "workload.h"

#define COL_MAX 64
#define SHAPES_FILE "tests/data/lambda-event-shapes.json"
#define BOMB_BYTES (50u << 20)   /* 50 MB of spaces: compresses ~1000:1 */

#define ACCT "111122223333"
#define ROLE "arn:aws:iam::" ACCT ":role/orders-fn-role"
#define KEY1 "ASIAQEXAMPLEKEY00001"
#define KEY2 "ASIAQEXAMPLEKEY00002"
#define UA_PY "Boto3/1.34.20 md/Botocore#1.34.20 ua/2.0 os/linux#5.10 lang/python#3.12.1 exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.20"
#define UA_CLI_MAC "aws-cli/2.15.0 md/awscrt#0.19.19 ua/2.0 os/macos#23.2.0 md/arch#arm64 lang/python#3.11.6"
#define UA_CLI_LINUX "aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 source/x86_64.ubuntu.22 prompt/off"
#define UA_WORKER "awslambda-worker/1.0 rusoto/0.48.0 rust/1.94.0 linux"
#define T_ISSUE 1710318801   /* 2024-03-13T08:33:21Z */
#define T_EXPIRES 1710362001 /* Mar 13, 2024, 8:33:21 PM */

/* ---- collecting what the decoder delivers ------------------------------------------------ */

struct got {
    int rc;
    char msg[DEC_MSG_MAX];
    struct dec_stats st;
    size_t n_ev, n_skip;
    size_t ev_index[COL_MAX];
    struct ev_event ev[COL_MAX];
    size_t skip_index[COL_MAX];
    char skip[COL_MAX][160];
};

static int akid_clean(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
            return 0;
    return 1;
}

static int on_event(void *ud, size_t index, const struct ev_event *ev)
{
    struct got *g = ud;
    /* whatever the input, an event never carries a key id with protocol or control characters */
    if (!akid_clean(ev->akid))
        fail_msg("event %zu carries a dirty access key id", index);
    if ((ev->kind == EV_ISSUE || ev->kind == EV_USE) && strlen(ev->akid) < 16)
        fail_msg("event %zu of kind %d has no access key id", index, ev->kind);
    if (g->n_ev < COL_MAX) {
        g->ev_index[g->n_ev] = index;
        g->ev[g->n_ev] = *ev;
    }
    g->n_ev++;
    return 0;
}

static int on_skip(void *ud, size_t index, const char *reason)
{
    struct got *g = ud;
    if (g->n_skip < COL_MAX) {
        g->skip_index[g->n_skip] = index;
        snprintf(g->skip[g->n_skip], sizeof g->skip[0], "%s", reason);
    }
    g->n_skip++;
    return 0;
}

/* chunk 0: dec_buffer in one call; otherwise dec_feed in chunks of that size. */
static struct got *decode_chunks(const void *buf, size_t len, size_t chunk, const struct dec_limits *lim)
{
    struct got *g = calloc(1, sizeof *g);
    assert_non_null(g);
    struct dec_sink sink = { on_event, on_skip, g };
    if (chunk == 0) {
        g->rc = dec_buffer(buf, len, &sink, lim, &g->st, g->msg, sizeof g->msg);
        return g;
    }
    struct dec *d = dec_new(&sink, lim);
    assert_non_null(d);
    const uint8_t *p = buf;
    int rc = 0;
    for (size_t off = 0; off < len && !rc; off += chunk)
        rc = dec_feed(d, p + off, len - off < chunk ? len - off : chunk);
    if (!rc)
        rc = dec_finish(d);
    g->rc = rc;
    snprintf(g->msg, sizeof g->msg, "%s", rc ? dec_message(d) : "");
    g->st = *dec_stats(d);
    dec_free(d);
    return g;
}

static void assert_same_event(const struct ev_event *a, const struct ev_event *b)
{
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->time, b->time);
    assert_int_equal(a->expires, b->expires);
    assert_int_equal(a->session_created, b->session_created);
    assert_string_equal(a->id, b->id);
    assert_string_equal(a->akid, b->akid);
    assert_string_equal(a->account, b->account);
    assert_string_equal(a->region, b->region);
    assert_string_equal(a->source_ip, b->source_ip);
    assert_string_equal(a->action, b->action);
    assert_string_equal(a->error, b->error);
    assert_string_equal(a->user_agent, b->user_agent);
    assert_string_equal(a->runtime, b->runtime);
    assert_string_equal(a->workload_id, b->workload_id);
    assert_string_equal(a->role_arn, b->role_arn);
    assert_string_equal(a->vpce_account, b->vpce_account);
}

static void assert_same_got(const struct got *a, const struct got *b)
{
    assert_int_equal(a->rc, b->rc);
    assert_string_equal(a->msg, b->msg);
    /* on an error the input is void (the engine stores nothing): what was delivered before the
     * error was found depends on the chunking, the verdict does not */
    if (a->rc)
        return;
    assert_int_equal(a->st.records, b->st.records);
    assert_int_equal(a->st.events, b->st.events);
    assert_int_equal(a->st.skipped, b->st.skipped);
    assert_int_equal(a->st.gzip, b->st.gzip);
    assert_int_equal(a->n_ev, b->n_ev);
    assert_int_equal(a->n_skip, b->n_skip);
    for (size_t i = 0; i < a->n_ev && i < COL_MAX; i++) {
        assert_int_equal(a->ev_index[i], b->ev_index[i]);
        assert_same_event(&a->ev[i], &b->ev[i]);
    }
    for (size_t i = 0; i < a->n_skip && i < COL_MAX; i++) {
        assert_int_equal(a->skip_index[i], b->skip_index[i]);
        assert_string_equal(a->skip[i], b->skip[i]);
    }
}

/* Whole, 1-byte and 7-byte feeding must agree; returns the whole run (free it). */
static struct got *decode_lim(const void *buf, size_t len, const struct dec_limits *lim)
{
    struct got *whole = decode_chunks(buf, len, 0, lim);
    static const size_t chunks[] = { 1, 7 };
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        struct got *g = decode_chunks(buf, len, chunks[i], lim);
        assert_same_got(whole, g);
        free(g);
    }
    assert_int_equal(whole->st.bytes_in, len);
    return whole;
}

static struct got *decode_all(const void *buf, size_t len)
{
    return decode_lim(buf, len, NULL);
}

static struct got *decode_str(const char *s)
{
    return decode_all(s, strlen(s));
}

/* ---- gzip, made here with zlib ------------------------------------------------------------ */

static uint8_t *gz(const void *src, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, len) + 64;
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    z.next_in = (unsigned char *)src;
    z.avail_in = (unsigned)len;
    z.next_out = out;
    z.avail_out = (unsigned)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    assert_int_equal(out[0], 0x1f);
    assert_int_equal(out[1], 0x8b);
    return out;
}

/* ---- records, built with jansson ---------------------------------------------------------- */

static json_t *issue_rec(const char *akid, const char *id, const char *session, const char *expiration)
{
    json_t *r = json_pack("{s:s, s:{s:s, s:s}, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:{s:{s:s, s:s, s:s}},"
                          " s:s, s:s, s:s, s:s}",
                          "eventVersion", "1.08", "userIdentity", "type", "AWSService", "invokedBy",
                          "lambda.amazonaws.com", "eventTime", "2024-03-13T08:33:21Z", "eventSource",
                          "sts.amazonaws.com", "eventName", "AssumeRole", "awsRegion", "us-east-1",
                          "sourceIPAddress", "lambda.amazonaws.com", "userAgent", "lambda.amazonaws.com",
                          "requestParameters", "roleArn", ROLE, "roleSessionName", session, "responseElements",
                          "credentials", "accessKeyId", akid, "sessionToken", "IQoJb3JpZ2luX2VjE", "expiration",
                          expiration, "eventID", id, "eventType", "AwsApiCall", "recipientAccountId", ACCT,
                          "eventCategory", "Management");
    assert_non_null(r);
    return r;
}

static json_t *use_rec(const char *akid, const char *id, const char *t, const char *ip, const char *ua,
                       const char *source, const char *name)
{
    json_t *r = json_pack(
        "{s:s, s:{s:s, s:s, s:s, s:s, s:s, s:{s:{s:s, s:s, s:s}, s:{s:s, s:s}}}, s:s, s:s, s:s, s:s, s:s, s:s,"
        " s:n, s:n, s:s, s:s, s:b, s:s, s:s, s:s, s:{s:s, s:s, s:s}, s:[{s:s, s:s}]}",
        "eventVersion", "1.08", "userIdentity", "type", "AssumedRole", "principalId", "AROAEXAMPLEID:orders-fn", "arn",
        "arn:aws:sts::" ACCT ":assumed-role/orders-fn-role/orders-fn", "accountId", ACCT, "accessKeyId", akid,
        "sessionContext", "sessionIssuer", "type", "Role", "arn", ROLE, "accountId", ACCT, "attributes",
        "creationDate", "2024-03-13T08:33:21Z", "mfaAuthenticated", "false", "eventTime", t, "eventSource", source,
        "eventName", name, "awsRegion", "us-east-1", "sourceIPAddress", ip, "userAgent", ua, "requestParameters",
        "responseElements", "requestID", "req-1", "eventID", id, "readOnly", 1, "eventType", "AwsApiCall",
        "recipientAccountId", ACCT, "eventCategory", "Management", "tlsDetails", "tlsVersion", "TLSv1.3",
        "cipherSuite", "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader", "sts.us-east-1.amazonaws.com",
        "resources", "ARN", ROLE, "type", "AWS::IAM::Role");
    assert_non_null(r);
    return r;
}

static json_t *iam_user_rec(const char *id)
{
    json_t *r = json_pack("{s:{s:s, s:s, s:s, s:s}, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "userIdentity", "type",
                          "IAMUser", "arn", "arn:aws:iam::" ACCT ":user/alice", "accountId", ACCT, "accessKeyId",
                          "AKIAIOSFODNN7EXAMPLE", "eventTime", "2024-03-13T09:00:00Z", "eventSource",
                          "iam.amazonaws.com", "eventName", "ListUsers", "awsRegion", "us-east-1",
                          "sourceIPAddress", "198.51.100.7", "userAgent", UA_CLI_LINUX, "eventID", id);
    assert_non_null(r);
    return r;
}

/* Sets (value non-NULL) or deletes a dotted path, creating objects on the way. Steals value. */
static void set_path(json_t *obj, const char *path, json_t *value)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *p = buf;
    for (;;) {
        char *dot = strchr(p, '.');
        if (!dot)
            break;
        *dot = 0;
        json_t *next = json_object_get(obj, p);
        if (!json_is_object(next)) {
            next = json_object();
            json_object_set_new(obj, p, next);
        }
        obj = next;
        p = dot + 1;
    }
    if (value)
        json_object_set_new(obj, p, value);
    else
        json_object_del(obj, p);
}

static char *dump(json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT);
    assert_non_null(s);
    json_decref(v);
    return s;
}

/* {"Records":[...]} from the records given (stolen), NULL-terminated. */
static char *records_file(json_t *first, ...)
{
    json_t *arr = json_array();
    va_list ap;
    va_start(ap, first);
    for (json_t *r = first; r; r = va_arg(ap, json_t *))
        json_array_append_new(arr, r);
    va_end(ap);
    return dump(json_pack("{s:o}", "Records", arr));
}

static json_t *eventbridge(json_t *record, const char *detail_type)
{
    json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[], s:o}", "version", "0", "id",
                          "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type", detail_type, "source", "aws.sts",
                          "account", ACCT, "time", "2024-03-13T08:33:21Z", "region", "us-east-1", "resources",
                          "detail", record);
    assert_non_null(e);
    return e;
}

#define VIA_CT "AWS API Call via CloudTrail"

/* The three records most tests use: an issuance, a marked use, an IAM user's call. */
static json_t *r_issue(void) { return issue_rec(KEY1, "ev-issue", "orders-fn", "Mar 13, 2024, 8:33:21 PM"); }
static json_t *r_use(void)
{
    return use_rec(KEY1, "ev-use", "2024-03-13T08:33:25Z", "3.5.140.2", UA_PY, "dynamodb.amazonaws.com", "PutItem");
}
static json_t *r_other(void) { return iam_user_rec("ev-other"); }

static void assert_three(const struct got *g, size_t base)
{
    assert_int_equal(g->rc, CW_OK);
    assert_int_equal(g->n_ev, 3);
    assert_int_equal(g->n_skip, 0);
    assert_int_equal(g->st.records, 3);
    assert_int_equal(g->st.events, 3);
    assert_int_equal(g->ev_index[0], base + 0);
    assert_int_equal(g->ev_index[2], base + 2);
    const struct ev_event *is = &g->ev[0], *u = &g->ev[1], *o = &g->ev[2];
    assert_int_equal(is->kind, EV_ISSUE);
    assert_string_equal(is->akid, KEY1);
    assert_string_equal(is->id, "ev-issue");
    assert_int_equal(is->time, T_ISSUE);
    assert_int_equal(is->expires, T_EXPIRES);
    assert_string_equal(is->workload_id, "orders-fn");
    assert_string_equal(is->role_arn, ROLE);
    assert_string_equal(is->account, ACCT);
    assert_string_equal(is->region, "us-east-1");
    assert_string_equal(is->action, "sts:AssumeRole");
    assert_int_equal(u->kind, EV_USE);
    assert_string_equal(u->akid, KEY1);
    assert_int_equal(u->time, T_ISSUE + 4);
    assert_int_equal(u->session_created, T_ISSUE);
    assert_int_equal(u->flags, EV_F_MARKED);
    assert_string_equal(u->runtime, "python3.12");
    assert_string_equal(u->workload_id, "orders-fn");
    assert_string_equal(u->role_arn, ROLE);
    assert_string_equal(u->account, ACCT);
    assert_string_equal(u->source_ip, "3.5.140.2");
    assert_string_equal(u->action, "dynamodb:PutItem");
    assert_string_equal(u->error, "");
    assert_int_equal(o->kind, EV_OTHER);
    assert_string_equal(o->akid, "");
    assert_string_equal(o->action, "iam:ListUsers");
}

/* ---- accepted forms ------------------------------------------------------------------------ */

static void test_records_file(void **state)
{
    (void)state;
    char *s = records_file(r_issue(), r_use(), r_other(), NULL);
    struct got *g = decode_str(s);
    assert_three(g, 0);
    assert_int_equal(g->st.gzip, 0);
    assert_int_equal(g->st.bytes_json, strlen(s));
    free(g);
    /* gzip of the same bytes: same result, told by the magic bytes */
    size_t zl;
    uint8_t *z = gz(s, strlen(s), &zl);
    g = decode_all(z, zl);
    assert_three(g, 0);
    assert_int_equal(g->st.gzip, 1);
    assert_int_equal(g->st.bytes_json, strlen(s));
    free(g);
    free(z);
    free(s);
}

static void test_bare_array(void **state)
{
    (void)state;
    json_t *a = json_pack("[o, o, o]", r_issue(), r_use(), r_other());
    char *s = dump(a);
    struct got *g = decode_str(s);
    assert_three(g, 0);
    free(g);
    size_t zl;
    uint8_t *z = gz(s, strlen(s), &zl);
    g = decode_all(z, zl);
    assert_three(g, 0);
    free(g);
    free(z);
    free(s);
}

static void test_eventbridge_one(void **state)
{
    (void)state;
    char *s = dump(eventbridge(r_use(), VIA_CT));
    struct got *g = decode_str(s);
    assert_int_equal(g->rc, CW_OK);
    assert_int_equal(g->n_ev, 1);
    assert_int_equal(g->n_skip, 0);
    assert_int_equal(g->ev[0].kind, EV_USE);
    assert_string_equal(g->ev[0].akid, KEY1);
    assert_string_equal(g->ev[0].id, "ev-use");  /* the record's eventID, not the event's id */
    assert_string_equal(g->ev[0].region, "us-east-1");
    assert_int_equal(g->ev[0].flags, EV_F_MARKED);
    free(g);
    /* the detail first, the wrapper keys after: the same */
    s[0] = 0;
    free(s);
    json_t *e = json_pack("{s:o, s:s, s:s}", "detail", r_issue(), "detail-type", VIA_CT, "source", "aws.sts");
    s = dump(e);
    g = decode_str(s);
    assert_int_equal(g->rc, CW_OK);
    assert_int_equal(g->n_ev, 1);
    assert_int_equal(g->ev[0].kind, EV_ISSUE);
    assert_int_equal(g->ev[0].expires, T_EXPIRES);
    free(g);
    free(s);
}

static void test_eventbridge_array(void **state)
{
    (void)state;
    json_t *a = json_pack("[o, o, o]", eventbridge(r_issue(), VIA_CT), eventbridge(r_use(), VIA_CT),
                          eventbridge(r_other(), "AWS Service Event via CloudTrail"));
    char *s = dump(a);
    struct got *g = decode_str(s);
    assert_three(g, 0);
    free(g);
    size_t zl;
    uint8_t *z = gz(s, strlen(s), &zl);
    g = decode_all(z, zl);
    assert_three(g, 0);
    free(g);
    free(z);
    free(s);
}

static char *join_lines(char *a, char *b, char *c, const char *sep)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3 * strlen(sep) + 1;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, "%s%s%s%s%s%s", a, sep, b, sep, c, sep);
    free(a);
    free(b);
    free(c);
    return s;
}

static void test_ndjson(void **state)
{
    (void)state;
    /* newline-delimited records, CRLF too, and simply concatenated */
    static const char *const seps[] = { "\n", "\r\n", "" };
    for (size_t i = 0; i < sizeof seps / sizeof seps[0]; i++) {
        char *s = join_lines(dump(r_issue()), dump(r_use()), dump(r_other()), seps[i]);
        struct got *g = decode_str(s);
        assert_three(g, 0);
        free(g);
        size_t zl;
        uint8_t *z = gz(s, strlen(s), &zl);
        g = decode_all(z, zl);
        assert_three(g, 0);
        free(g);
        free(z);
        free(s);
    }
    /* newline-delimited EventBridge events */
    char *s = join_lines(dump(eventbridge(r_issue(), VIA_CT)), dump(eventbridge(r_use(), VIA_CT)),
                         dump(eventbridge(r_other(), VIA_CT)), "\n");
    struct got *g = decode_str(s);
    assert_three(g, 0);
    free(g);
    free(s);
    /* several CloudTrail files one after the other: indices continue across them */
    s = join_lines(records_file(r_issue(), NULL), records_file(r_use(), NULL), records_file(r_other(), NULL), "\n");
    g = decode_str(s);
    assert_three(g, 0);
    free(g);
    free(s);
}

static void test_gzip_two_members(void **state)
{
    (void)state;
    char *s = records_file(r_issue(), r_use(), r_other(), NULL);
    size_t n = strlen(s), half = n / 2;  /* cut in the middle of a record: `cat a.gz b.gz` */
    size_t l1, l2;
    uint8_t *z1 = gz(s, half, &l1), *z2 = gz(s + half, n - half, &l2);
    uint8_t *both = malloc(l1 + l2);
    assert_non_null(both);
    memcpy(both, z1, l1);
    memcpy(both + l1, z2, l2);
    struct got *g = decode_all(both, l1 + l2);
    assert_three(g, 0);
    assert_int_equal(g->st.gzip, 1);
    assert_int_equal(g->st.bytes_json, n);
    free(g);
    /* garbage after the last member is refused */
    uint8_t *bad = malloc(l1 + l2 + 3);
    assert_non_null(bad);
    memcpy(bad, both, l1 + l2);
    memcpy(bad + l1 + l2, "xyz", 3);
    g = decode_all(bad, l1 + l2 + 3);
    assert_int_equal(g->rc, CW_EGZIP);
    assert_non_null(strstr(g->msg, "trailing data"));
    free(g);
    free(bad);
    free(both);
    free(z1);
    free(z2);
    free(s);
}

/* A plain input that starts with 0x1f but not the gzip magic is JSON, and malformed. */
static void test_gzip_magic_only(void **state)
{
    (void)state;
    static const uint8_t notgz[] = { 0x1f, '{', '}' };
    struct got *g = decode_all(notgz, sizeof notgz);
    assert_int_equal(g->rc, CW_EJSON);
    assert_int_equal(g->st.gzip, 0);
    assert_non_null(strstr(g->msg, "malformed JSON at byte 0"));
    free(g);
}

/* ---- look-alikes ---------------------------------------------------------------------------- */

static void assert_refused(const char *doc, const char *why)
{
    struct got *g = decode_str(doc);
    if (g->rc != CW_EREFUSED || !strstr(g->msg, why))
        fail_msg("expected refusal containing \"%s\", got %d \"%s\" for %.80s", why, g->rc, g->msg, doc);
    assert_int_equal(g->n_ev, 0);
    free(g);
    /* the same in gzip */
    size_t zl;
    uint8_t *z = gz(doc, strlen(doc), &zl);
    g = decode_all(z, zl);
    assert_int_equal(g->rc, CW_EREFUSED);
    assert_non_null(strstr(g->msg, why));
    free(g);
    free(z);
}

static void test_lookalikes(void **state)
{
    (void)state;
    assert_refused("{\"Records\":[{\"eventVersion\":\"2.1\",\"eventSource\":\"aws:s3\",\"awsRegion\":\"us-east-1\","
                   "\"eventTime\":\"2024-03-13T08:35:00.000Z\",\"eventName\":\"ObjectCreated:Put\","
                   "\"userIdentity\":{\"principalId\":\"AWS:AIDAEXAMPLE\"},\"requestParameters\":"
                   "{\"sourceIPAddress\":\"3.5.140.2\"},\"responseElements\":{\"x-amz-request-id\":\"C3D13FE58DE4C810\"},"
                   "\"s3\":{\"s3SchemaVersion\":\"1.0\",\"bucket\":{\"name\":\"trail-bucket\"},\"object\":"
                   "{\"key\":\"AWSLogs/111122223333/CloudTrail/x.json.gz\",\"size\":1024}}}]}",
                   "S3 event notification");
    assert_refused("{\"Type\":\"Notification\",\"MessageId\":\"22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\","
                   "\"TopicArn\":\"arn:aws:sns:us-east-1:111122223333:trail\",\"Subject\":\"x\","
                   "\"Message\":\"{\\\"s3Bucket\\\":\\\"trail-bucket\\\"}\",\"Timestamp\":\"2024-03-13T08:35:00.000Z\"}",
                   "SNS notification");
    assert_refused("{\"Records\":[{\"EventSource\":\"aws:sns\",\"EventVersion\":\"1.0\",\"EventSubscriptionArn\":"
                   "\"arn:aws:sns:us-east-1:111122223333:trail:sub\",\"Sns\":{\"Type\":\"Notification\","
                   "\"Message\":\"{}\",\"Timestamp\":\"2024-03-13T08:35:00.000Z\"}}]}",
                   "SNS notification");
    assert_refused("{\"Records\":[{\"messageId\":\"059f36b4-87a3-44ab-83d2-661975830a7d\",\"receiptHandle\":\"AQEB\","
                   "\"body\":\"{\\\"Records\\\":[]}\",\"attributes\":{},\"messageAttributes\":{},"
                   "\"eventSource\":\"aws:sqs\",\"eventSourceARN\":\"arn:aws:sqs:us-east-1:111122223333:q\","
                   "\"awsRegion\":\"us-east-1\"}]}",
                   "aws:sqs");
    /* an SQS message with no eventSource: its body marks it */
    assert_refused("[{\"messageId\":\"059f36b4\",\"body\":\"{}\"}]", "SQS message");
    assert_refused("{\"awsAccountId\":\"111122223333\",\"digestStartTime\":\"2024-03-13T07:35:00Z\","
                   "\"digestEndTime\":\"2024-03-13T08:35:00Z\",\"digestS3Bucket\":\"trail-bucket\","
                   "\"digestPublicKeyFingerprint\":\"6d7e\",\"digestSignatureAlgorithm\":\"SHA256withRSA\","
                   "\"previousDigestSignature\":null,\"logFiles\":[{\"s3Bucket\":\"trail-bucket\",\"s3Object\":"
                   "\"AWSLogs/111122223333/CloudTrail/x.json.gz\",\"hashValue\":\"a1\",\"newestEventTime\":"
                   "\"2024-03-13T08:30:00Z\",\"oldestEventTime\":\"2024-03-13T07:40:00Z\"}]}",
                   "digest");
    /* shapes that are no records at all */
    assert_refused("{\"hello\":\"world\"}", "no CloudTrail records found");
    assert_refused("\"Records\"", "expected a JSON object or array");
    assert_refused("42", "expected a JSON object or array");
}

static void test_eventbridge_not_cloudtrail(void **state)
{
    (void)state;
    json_t *ec2 = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "version", "0", "detail-type",
                            "EC2 Instance State-change Notification", "source", "aws.ec2", "detail", "instance-id",
                            "i-0123456789abcdef0", "state", "running");
    json_t *a = json_pack("[o, o, o]", eventbridge(r_use(), VIA_CT), ec2, eventbridge(r_other(), VIA_CT));
    char *s = dump(a);
    struct got *g = decode_str(s);
    assert_int_equal(g->rc, CW_OK);
    assert_int_equal(g->st.records, 3);
    assert_int_equal(g->n_ev, 2);
    assert_int_equal(g->ev_index[0], 0);
    assert_int_equal(g->ev_index[1], 2);
    assert_int_equal(g->n_skip, 1);
    assert_int_equal(g->skip_index[0], 1);
    assert_string_equal(g->skip[0], "EventBridge detail-type \"EC2 Instance State-change Notification\" is not "
                                    "CloudTrail");
    free(g);
    free(s);
    /* a CloudTrail-looking record under a foreign detail-type is skipped too: the wrapper decides */
    s = dump(eventbridge(r_use(), "Scheduled Event"));
    g = decode_str(s);
    assert_int_equal(g->rc, CW_OK);
    assert_int_equal(g->n_ev, 0);
    assert_int_equal(g->n_skip, 1);
    assert_non_null(strstr(g->skip[0], "is not CloudTrail"));
    free(g);
    free(s);
}

/* ---- malformed input ------------------------------------------------------------------------ */

static void test_malformed_json_offset(void **state)
{
    (void)state;
    /* the offending byte is the ']' at offset 13 */
    const char *doc = "{\"Records\":[{]}";
    struct got *g = decode_str(doc);
    assert_int_equal(g->rc, CW_EJSON);
    assert_non_null(strstr(g->msg, "malformed JSON at byte 13:"));
    free(g);
    /* further in: the error is after a whole valid record */
    char *rec = dump(r_use());
    size_t n = strlen(rec) + 64;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, "{\"Records\":[%s,,]}", rec);
    size_t want = strlen("{\"Records\":[") + strlen(rec) + 1;  /* the second comma */
    char expect[64];
    snprintf(expect, sizeof expect, "malformed JSON at byte %zu:", want);
    g = decode_str(s);
    assert_int_equal(g->rc, CW_EJSON);
    if (!strstr(g->msg, expect))
        fail_msg("expected \"%s\" in \"%s\"", expect, g->msg);
    free(g);
    /* the same, gzip: the offset counts inflated JSON bytes */
    size_t zl;
    uint8_t *z = gz(s, strlen(s), &zl);
    g = decode_all(z, zl);
    assert_int_equal(g->rc, CW_EJSON);
    assert_non_null(strstr(g->msg, expect));
    free(g);
    free(z);
    /* unexpected end of input names the length */
    g = decode_str("{\"Records\":[");
    assert_int_equal(g->rc, CW_EJSON);
    assert_string_equal(g->msg, "malformed JSON at byte 12: unexpected end of input");
    free(g);
    free(s);
    free(rec);
}

static void test_empty(void **state)
{
    (void)state;
    struct got *g = decode_chunks("", 0, 0, NULL);
    assert_int_equal(g->rc, CW_EJSON);
    assert_non_null(strstr(g->msg, "empty input"));
    free(g);
    g = decode_str("  \n\r\n ");
    assert_int_equal(g->rc, CW_EJSON);
    assert_string_equal(g->msg, "malformed JSON at byte 6: unexpected end of input");
    free(g);
    g = decode_str("{");
    assert_int_equal(g->rc, CW_EJSON);
    free(g);
    size_t zl;
    uint8_t *z = gz("", 0, &zl);
    g = decode_all(z, zl);
    assert_int_equal(g->rc, CW_EJSON);
    assert_non_null(strstr(g->msg, "empty input"));
    free(g);
    free(z);
    /* an empty Records array is a valid, empty file */
    g = decode_str("{\"Records\":[]}");
    assert_int_equal(g->rc, CW_OK);
    assert_int_equal(g->st.records, 0);
    free(g);
}

struct bad_field {
    const char *path;   /* dotted path in the use record (or issuance when issue is set) */
    const char *json;   /* replacement value; NULL deletes */
    int issue;
    const char *reason;
};

static void test_malformed_records(void **state)
{
    (void)state;
    static const struct bad_field bad[] = {
        { "userIdentity", "\"AssumedRole\"", 0, "userIdentity must be an object" },
        { "userIdentity.accessKeyId", "12345", 0, "userIdentity.accessKeyId must be a string" },
        { "userIdentity.type", "[\"AssumedRole\"]", 0, "userIdentity.type must be a string" },
        { "userIdentity.arn", "{}", 0, "userIdentity.arn must be a string" },
        { "userIdentity.invokedBy", "true", 0, "userIdentity.invokedBy must be a string" },
        { "userIdentity.sessionContext", "\"x\"", 0, "userIdentity.sessionContext must be an object" },
        { "userIdentity.sessionContext.attributes.creationDate", "1710318801", 0,
          "userIdentity.sessionContext.attributes.creationDate must be a string" },
        { "eventTime", "\"yesterday\"", 0, "eventTime is not an ISO-8601 UTC time" },
        { "eventTime", "\"2024-02-30T08:33:25Z\"", 0, "eventTime is not an ISO-8601 UTC time" },
        { "eventTime", "\"2023-02-29T08:33:25Z\"", 0, "eventTime is not an ISO-8601 UTC time" },
        { "eventTime", "1710318801", 0, "eventTime must be a string" },
        { "eventID", NULL, 0, "not a CloudTrail record: no eventID" },
        { "eventName", NULL, 0, "not a CloudTrail record: no eventName" },
        { "eventSource", NULL, 0, "not a CloudTrail record: no eventSource" },
        { "eventTime", NULL, 0, "not a CloudTrail record: no eventTime" },
        { "eventID", "null", 0, "not a CloudTrail record: no eventID" },
        { "eventName", "false", 0, "eventName must be a string" },
        { "eventSource", "{\"a\":1}", 0, "eventSource must be a string" },
        { "sourceIPAddress", "[1,2]", 0, "sourceIPAddress must be a string" },
        { "userAgent", "7", 0, "userAgent must be a string" },
        { "errorCode", "{}", 0, "errorCode must be a string" },
        { "awsRegion", "[]", 0, "awsRegion must be a string" },
        { "requestParameters", "\"roleArn\"", 0, "requestParameters must be an object" },
        { "additionalEventData", "[]", 0, "additionalEventData must be an object" },
        { "eventID", "\"0123456789012345678901234567890123456789012345678901234567890123456789\"", 0,
          "eventID is too long" },
        { "userIdentity.accessKeyId", "\"ASIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"", 0,
          "userIdentity.accessKeyId is too long" },
        { "userIdentity.accessKeyId", "\"ASIA_BAD_KEY_0000000\"", 0,
          "userIdentity.accessKeyId is not an access key id" },
        { "userIdentity.accessKeyId", "\"ASIASHORT\"", 0, "userIdentity.accessKeyId is not an access key id" },
        { "responseElements.credentials", "[]", 1, "responseElements.credentials must be an object" },
        { "responseElements", "\"none\"", 1, "responseElements must be an object" },
        { "responseElements.credentials.accessKeyId", "[]", 1,
          "responseElements.credentials.accessKeyId must be a string" },
        { "responseElements.credentials.accessKeyId", "\"REDACTED\"", 1,
          "responseElements.credentials.accessKeyId is not an access key id" },
        { "responseElements.credentials.expiration", "1710362001", 1,
          "responseElements.credentials.expiration must be a string" },
        { "requestParameters.roleSessionName", "[]", 1, "requestParameters.roleSessionName must be a string" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *r = bad[i].issue ? issue_rec(KEY2, "ev-bad", "orders-fn", "Mar 13, 2024, 8:33:21 PM")
                                 : use_rec(KEY2, "ev-bad", "2024-03-13T08:33:25Z", "198.51.100.7", UA_CLI_LINUX,
                                           "sts.amazonaws.com", "GetCallerIdentity");
        json_t *v = NULL;
        if (bad[i].json) {
            v = json_loads(bad[i].json, JSON_DECODE_ANY, NULL);
            assert_non_null(v);
        }
        set_path(r, bad[i].path, v);
        char *s = records_file(r_issue(), r, r_use(), NULL);
        struct got *g = decode_str(s);
        if (g->rc != CW_OK || g->n_skip != 1 || g->n_ev != 2 || strcmp(g->skip[0], bad[i].reason) != 0)
            fail_msg("%s = %s: rc %d, %zu events, %zu skipped, reason \"%s\", want \"%s\"", bad[i].path,
                     bad[i].json ? bad[i].json : "(deleted)", g->rc, g->n_ev, g->n_skip,
                     g->n_skip ? g->skip[0] : "", bad[i].reason);
        assert_int_equal(g->skip_index[0], 1);
        assert_int_equal(g->ev_index[0], 0);
        assert_int_equal(g->ev_index[1], 2);
        assert_int_equal(g->st.records, 3);
        assert_int_equal(g->st.skipped, 1);
        assert_string_equal(g->ev[0].akid, KEY1);
        assert_string_equal(g->ev[1].akid, KEY1);
        free(g);
        free(s);
    }
    /* elements that cannot be records, and a record holding Records */
    char *good = dump(r_use());
    size_t n = strlen(good) * 2 + 128;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, "{\"Records\":[42,%s,\"x\",null,{\"Records\":[]},%s]}", good, good);
    struct got *g = decode_str(s);
    assert_int_equal(g->rc, CW_OK);
    assert_int_equal(g->st.records, 6);
    assert_int_equal(g->n_ev, 2);
    assert_int_equal(g->ev_index[0], 1);
    assert_int_equal(g->ev_index[1], 5);
    assert_int_equal(g->n_skip, 4);
    assert_int_equal(g->skip_index[0], 0);
    assert_string_equal(g->skip[0], "record is not a JSON object");
    assert_int_equal(g->skip_index[1], 2);
    assert_int_equal(g->skip_index[2], 3);
    assert_int_equal(g->skip_index[3], 4);
    assert_string_equal(g->skip[3], "a record may not hold Records");
    free(g);
    free(s);
    free(good);
}

/* {"Records":[{... "requestParameters":{"a": [[[...]]]}}]}: 4 levels, then n arrays. */
static char *nested(size_t n)
{
    char *rec = dump(r_use());
    size_t cap = strlen(rec) + 2 * n + 128;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t len = strlen(rec);
    /* replace the closing brace of the record with the deep member */
    rec[len - 1] = 0;
    int w = snprintf(s, cap, "{\"Records\":[%s,\"deep\":{\"a\":", rec);
    size_t at = (size_t)w;
    for (size_t i = 0; i < n; i++)
        s[at++] = '[';
    for (size_t i = 0; i < n; i++)
        s[at++] = ']';
    snprintf(s + at, cap - at, "}}]}");
    free(rec);
    return s;
}

static void test_depth(void **state)
{
    (void)state;
    /* root, Records, record, deep: 4 levels, so 60 arrays reach DEC_MAX_DEPTH exactly */
    char *s = nested(DEC_MAX_DEPTH - 4);
    struct got *g = decode_str(s);
    assert_int_equal(g->rc, CW_OK);
    assert_int_equal(g->n_ev, 1);
    free(g);
    free(s);
    s = nested(DEC_MAX_DEPTH - 3);
    g = decode_str(s);
    assert_int_equal(g->rc, CW_EDEPTH);
    assert_non_null(strstr(g->msg, "deeper than 64 levels"));
    free(g);
    free(s);
    /* far deeper, at the root */
    char deep[10001];
    memset(deep, '[', 5000);
    memset(deep + 5000, ']', 5000);
    deep[10000] = 0;
    g = decode_str(deep);
    assert_int_equal(g->rc, CW_EDEPTH);
    free(g);
}

static void test_truncated_gzip(void **state)
{
    (void)state;
    char *s = records_file(r_issue(), r_use(), r_other(), NULL);
    size_t zl;
    uint8_t *z = gz(s, strlen(s), &zl);
    /* without its trailer (CRC, size), and cut in the middle of the deflate data */
    static const size_t cuts[] = { 4, 8, 0 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        size_t len = cuts[i] ? zl - cuts[i] : zl / 2;
        struct got *g = decode_all(z, len);
        assert_int_equal(g->rc, CW_EGZIP);
        assert_non_null(strstr(g->msg, "gzip"));
        free(g);
    }
    /* a corrupted CRC */
    z[zl - 6] ^= 0x55;
    struct got *g = decode_all(z, zl);
    assert_int_equal(g->rc, CW_EGZIP);
    assert_non_null(strstr(g->msg, "corrupt gzip data"));
    free(g);
    /* just the magic */
    g = decode_all(z, 2);
    assert_int_equal(g->rc, CW_EGZIP);
    assert_non_null(strstr(g->msg, "truncated gzip stream"));
    free(g);
    free(z);
    free(s);
}

/* Regression (fuzz_decode): malformed JSON inside a gzip stream whose CRC is also wrong. Fed whole,
 * inflate returned the output and the CRC error in one call and the output was dropped, so the
 * answer was "corrupt gzip data"; fed in chunks, the JSON error came first. Both must agree:
 * the first error in the stream (decode_all compares the whole and the chunked runs). */
static void test_gzip_corrupt_after_bad_json(void **state)
{
    (void)state;
    static const char bad[] = "{\"Records\":[{\"eventID\":\"a\"}, nonsense]}";
    size_t zl;
    uint8_t *z = gz(bad, sizeof bad - 1, &zl);
    z[zl - 6] ^= 0x55; /* the CRC */
    struct got *g = decode_all(z, zl);
    assert_int_equal(g->rc, CW_EJSON);
    assert_non_null(strstr(g->msg, "malformed JSON"));
    free(g);
    free(z);
}

static void test_gzip_bomb(void **state)
{
    (void)state;
    char *spaces = malloc(BOMB_BYTES + 16);
    assert_non_null(spaces);
    memcpy(spaces, "{\"Records\":[", 12);
    memset(spaces + 12, ' ', BOMB_BYTES);
    memcpy(spaces + 12 + BOMB_BYTES, "]}", 3);
    size_t zl;
    uint8_t *z = gz(spaces, BOMB_BYTES + 14, &zl);
    assert_true(zl < BOMB_BYTES / DEC_DEFAULT_MAX_RATIO);  /* a real bomb: far over the ratio */
    struct got *g = decode_chunks(z, zl, 0, NULL);
    assert_int_equal(g->rc, CW_ETOOBIG);
    assert_non_null(strstr(g->msg, "decompression bomb"));
    /* refused before inflating it all */
    assert_true(g->st.bytes_json < (size_t)zl * DEC_DEFAULT_MAX_RATIO + (2u << 20));
    free(g);
    g = decode_chunks(z, zl, 1, NULL);
    assert_int_equal(g->rc, CW_ETOOBIG);
    assert_non_null(strstr(g->msg, "decompression bomb"));
    free(g);
    /* a higher ratio lets it through, and then the inflated-size cap refuses it */
    struct dec_limits lim = { .max_ratio = 100000, .max_inflated = 8u << 20 };
    g = decode_chunks(z, zl, 0, &lim);
    assert_int_equal(g->rc, CW_ETOOBIG);
    assert_non_null(strstr(g->msg, "larger than 8388608 bytes once inflated"));
    assert_true(g->st.bytes_json <= lim.max_inflated);
    free(g);
    /* and both caps generous: it is only whitespace, so valid */
    lim.max_inflated = BOMB_BYTES + 64;
    g = decode_chunks(z, zl, 0, &lim);
    assert_int_equal(g->rc, CW_OK);
    assert_int_equal(g->st.records, 0);
    free(g);
    free(z);
    free(spaces);
}

static void test_max_inflated_plain(void **state)
{
    (void)state;
    char *s = records_file(r_issue(), r_use(), r_other(), NULL);
    struct dec_limits lim = { .max_inflated = strlen(s) - 1 };
    struct got *g = decode_lim(s, strlen(s), &lim);
    assert_int_equal(g->rc, CW_ETOOBIG);
    assert_non_null(strstr(g->msg, "once inflated"));
    free(g);
    lim.max_inflated = strlen(s);
    g = decode_lim(s, strlen(s), &lim);
    assert_int_equal(g->rc, CW_OK);
    free(g);
    free(s);
}

static void test_max_records(void **state)
{
    (void)state;
    char *s = records_file(r_issue(), r_use(), r_other(), NULL);
    struct dec_limits lim = { .max_records = 2 };
    struct got *g = decode_lim(s, strlen(s), &lim);
    assert_int_equal(g->rc, CW_ETOOBIG);
    assert_string_equal(g->msg, "more than 2 records in one input");
    free(g);
    lim.max_records = 3;
    g = decode_lim(s, strlen(s), &lim);
    assert_int_equal(g->rc, CW_OK);
    assert_int_equal(g->n_ev, 3);
    free(g);
    free(s);
    /* elements that are not objects count too */
    s = strdup("[1,2,3]");
    lim.max_records = 2;
    g = decode_lim(s, strlen(s), &lim);
    assert_int_equal(g->rc, CW_ETOOBIG);
    free(g);
    free(s);
}

/* An element that holds Records is a record too (skipped, with its reason), counted against
 * max_records like any other: at the bound it is refused. It used to be counted without the check,
 * so a last such element took the input to max + 1 records, accepted, and a run of them was never
 * held to the bound at all. */
static void test_max_records_nested_records(void **state)
{
    (void)state;
    char *good = dump(r_use());
    size_t cap = strlen(good) * 2 + 128;
    char *s = malloc(cap);
    assert_non_null(s);
    static const char *const shapes[] = { "{\"Records\":[%s,%s,{\"Records\":[]}]}", "[%s,%s,{\"Records\":[]}]" };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        snprintf(s, cap, shapes[i], good, good);
        struct dec_limits lim = { .max_records = 3 };  /* exactly the bound: accepted */
        struct got *g = decode_lim(s, strlen(s), &lim);
        assert_int_equal(g->rc, CW_OK);
        assert_int_equal(g->st.records, 3);
        assert_int_equal(g->n_ev, 2);
        assert_int_equal(g->n_skip, 1);
        assert_int_equal(g->skip_index[0], 2);
        assert_string_equal(g->skip[0], "a record may not hold Records");
        free(g);
        lim.max_records = 2;  /* one past it: refused with the bound's message */
        g = decode_lim(s, strlen(s), &lim);
        assert_int_equal(g->rc, CW_ETOOBIG);
        assert_string_equal(g->msg, "more than 2 records in one input");
        assert_int_equal(g->st.records, 2);
        assert_int_equal(g->n_skip, 0);
        free(g);
    }
    /* nothing but such elements: they were never held to the bound at all */
    snprintf(s, cap, "[{\"Records\":[]},{\"Records\":[]},{\"Records\":[]}]");
    struct dec_limits lim = { .max_records = 2 };
    struct got *g = decode_lim(s, strlen(s), &lim);
    assert_int_equal(g->rc, CW_ETOOBIG);
    assert_int_equal(g->st.records, 2);
    free(g);
    free(s);
    free(good);
}

/* Key ids carrying CR/LF, Redis protocol text or NUL are skipped, never produced. */
static void test_hostile_key_ids(void **state)
{
    (void)state;
    static const char *const keys[] = {
        "ASIA\r\n*1\r\n$4\r\nPING",
        "ASIAQEXAMPLEKEY0\r\n01",
        "ASIAQEXAMPLEKEY0 001",
        "ASIAQEXAMPLEKEY0001\n",
        "ASIAQEXAMPLEKEY0\"001",
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        for (int issue = 0; issue <= 1; issue++) {
            json_t *r = issue ? issue_rec(keys[i], "ev-bad", "orders-fn", "Mar 13, 2024, 8:33:21 PM")
                              : use_rec(keys[i], "ev-bad", "2024-03-13T08:33:25Z", "198.51.100.7", UA_CLI_LINUX,
                                        "sts.amazonaws.com", "GetCallerIdentity");
            char *s = records_file(r_use(), r, NULL);
            struct got *g = decode_str(s);  /* on_event fails the test on a dirty key id */
            assert_int_equal(g->rc, CW_OK);
            assert_int_equal(g->n_ev, 1);
            assert_int_equal(g->n_skip, 1);
            assert_int_equal(g->skip_index[0], 1);
            assert_non_null(strstr(g->skip[0], "accessKeyId is not an access key id"));
            free(g);
            free(s);
        }
    }
    /* NUL, escaped in JSON: the string yajl delivers holds a zero byte */
    char *base = dump(r_use());
    static const char *const nuls[] = { "ASIAQEXAMPLEKEY\\u000000001", "ASIAQEXAMPLEKEY00001\\u0000" };
    for (size_t i = 0; i < sizeof nuls / sizeof nuls[0]; i++) {
        char *p = strstr(base, KEY1);
        assert_non_null(p);
        size_t n = strlen(base) + 64;
        char *s = malloc(n);
        assert_non_null(s);
        snprintf(s, n, "[%.*s%s%s]", (int)(p - base), base, nuls[i], p + strlen(KEY1));
        struct got *g = decode_str(s);
        assert_int_equal(g->rc, CW_OK);
        assert_int_equal(g->n_ev, 0);
        assert_int_equal(g->n_skip, 1);
        assert_string_equal(g->skip[0], "userIdentity.accessKeyId contains a NUL character");
        free(g);
        free(s);
    }
    /* NUL as a raw byte inside a string: the lexer refuses it (RFC 8259: control characters are
     * escaped), which is why decode.c skips the NUL scan for strings that are the input's own
     * bytes. A yajl that let one through would make this fail before a key id could be cut. */
    {
        char *p = strstr(base, KEY1);
        assert_non_null(p);
        size_t n = strlen(base) + 2;
        char *s = malloc(n + 1);
        assert_non_null(s);
        snprintf(s, n + 1, "[%s]", base);
        s[1 + (p - base) + 15] = '\0';  /* inside the key id's string */
        struct got *g = decode_all(s, n);
        assert_int_equal(g->rc, CW_EJSON);
        assert_int_equal(g->n_ev, 0);
        assert_non_null(strstr(g->msg, "malformed JSON"));
        free(g);
        free(s);
    }
    free(base);
}

/* ---- time parsers ------------------------------------------------------------------------------ */

struct time_case {
    const char *s;
    int ok;
    int64_t want;
};

static void test_parse_time(void **state)
{
    (void)state;
    static const struct time_case cases[] = {
        { "2024-03-13T08:33:21Z", 1, 1710318801 },
        { "2024-03-13T08:33:21.123Z", 1, 1710318801 },
        { "2024-03-13T08:33:21.5Z", 1, 1710318801 },
        { "2024-03-13T08:33:21+00:00", 1, 1710318801 },
        { "2024-03-13 08:33:21", 1, 1710318801 },   /* panther-analysis' shapes */
        { "2024-02-29T00:00:00Z", 1, 1709164800 },
        { "1970-01-01T00:00:00Z", 1, 0 },
        { "2016-12-31T23:59:60Z", 1, 1483228800 },  /* a leap second: the next second */
        { "2024-03-13T08:33:21+01:00", 0, 0 },
        { "2024-03-13T08:33:21Zjunk", 0, 0 },
        { "2024-03-13T08:33:21.Z", 0, 0 },
        { "2024-03-13T24:00:00Z", 0, 0 },
        { "2024-03-13T08:60:00Z", 0, 0 },
        { "2024-13-01T00:00:00Z", 0, 0 },
        { "2024-00-01T00:00:00Z", 0, 0 },
        { "2024-04-31T00:00:00Z", 0, 0 },
        { "2023-02-29T00:00:00Z", 0, 0 },           /* not a leap year */
        { "1900-02-29T00:00:00Z", 0, 0 },
        { "1969-12-31T23:59:59Z", 0, 0 },
        { "2024-03-13", 0, 0 },
        { "2024-3-13T08:33:21Z", 0, 0 },
        { "2024-03-13T08:33:2xZ", 0, 0 },
        { "", 0, 0 },
        { "Mar 13, 2024, 8:33:21 PM", 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t t = -12345;
        int rc = cls_parse_time(cases[i].s, &t);
        if (cases[i].ok ? (rc != 0 || t != cases[i].want) : rc != -1)
            fail_msg("cls_parse_time(\"%s\") = %d, %lld", cases[i].s, rc, (long long)t);
    }
}

static void test_parse_expiration(void **state)
{
    (void)state;
    static const struct time_case cases[] = {
        { "Mar 13, 2024, 8:33:21 PM", 1, 1710362001 },
        { "Aug 26, 2019 11:15:26 PM", 1, 1566861326 },
        { "Jun 2, 2024, 10:37:12 PM", 1, 1717367832 },
        { "Jan 1, 2024, 12:00:00 AM", 1, 1704067200 },        /* midnight */
        { "Jan 1, 2024, 12:30:00 PM", 1, 1704112200 },        /* half past noon */
        { "Jan 1, 2024, 12:59:59 AM", 1, 1704067200 + 3599 },
        { "Jan 1, 2024, 11:59:59 PM", 1, 1704067200 + 86399 },
        { "Jan 1, 2024, 1:00:00 AM", 1, 1704067200 + 3600 },
        { "Jan 1, 2024, 1:00:00 PM", 1, 1704067200 + 13 * 3600 },
        { "Feb 29, 2024, 8:00:00 am", 1, 1709164800 + 8 * 3600 },
        { "Dec 31, 2023 11:59:59 PM", 1, 1704067199 },
        { "2024-03-13T20:33:21Z", 1, 1710362001 },            /* ISO accepted too */
        { "Mar 13, 2024, 13:33:21 PM", 0, 0 },
        { "Mar 13, 2024, 0:33:21 AM", 0, 0 },
        { "Mar 13, 2024, 8:33:21", 0, 0 },
        { "Mar 13, 2024, 8:33:21 XM", 0, 0 },
        { "Mar 13, 2024, 8:33:21 PMX", 0, 0 },
        { "Mar 32, 2024, 8:33:21 PM", 0, 0 },
        { "Apr 31, 2024, 8:33:21 PM", 0, 0 },
        { "Feb 29, 2023, 8:33:21 PM", 0, 0 },
        { "Mar 0, 2024, 8:33:21 PM", 0, 0 },
        { "Foo 13, 2024, 8:33:21 PM", 0, 0 },
        { "Mar 13 2024, 8:33:21 PM", 0, 0 },
        { "Mar 13, 24, 8:33:21 PM", 0, 0 },
        { "Mar 13, 2024, 8:3:21 PM", 0, 0 },
        { "Mar 13, 2024, 8:33:61 PM", 0, 0 },
        { "March 13, 2024", 0, 0 },
        { "", 0, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t t = -12345;
        int rc = cls_parse_expiration(cases[i].s, &t);
        if (cases[i].ok ? (rc != 0 || t != cases[i].want) : rc != -1)
            fail_msg("cls_parse_expiration(\"%s\") = %d, %lld", cases[i].s, rc, (long long)t);
    }
    /* an issuance with an unreadable expiration still issues; the detector falls back to +12 h */
    char *s = records_file(issue_rec(KEY1, "ev-x", "orders-fn", "soon"), NULL);
    struct got *g = decode_str(s);
    assert_int_equal(g->n_ev, 1);
    assert_int_equal(g->ev[0].kind, EV_ISSUE);
    assert_int_equal(g->ev[0].expires, 0);
    free(g);
    free(s);
}

/* ---- classification -------------------------------------------------------------------------- */

/* Decodes one record alone (in a Records file) and returns its event. */
static struct ev_event one(json_t *rec)
{
    char *s = records_file(rec, NULL);
    struct got *g = decode_str(s);
    if (g->rc != CW_OK || g->n_ev != 1)
        fail_msg("expected one event, got rc %d (%s), %zu events, skip \"%s\"", g->rc, g->msg, g->n_ev,
                 g->n_skip ? g->skip[0] : "");
    struct ev_event ev = g->ev[0];
    free(g);
    free(s);
    return ev;
}

static json_t *use_ua(const char *ua, const char *ip)
{
    return use_rec(KEY1, "ev-c", "2024-03-13T09:00:00Z", ip, ua, "sts.amazonaws.com", "GetCallerIdentity");
}

static void test_classification(void **state)
{
    (void)state;
    struct ev_event ev = one(use_ua(UA_PY, "3.5.140.2"));
    assert_int_equal(ev.flags, EV_F_MARKED);
    assert_string_equal(ev.runtime, "python3.12");

    ev = one(use_ua("aws-sdk-nodejs/2.1500.0 linux/v20.9.0 exec-env/AWS_Lambda_nodejs20.x promise", "3.5.140.2"));
    assert_int_equal(ev.flags, EV_F_MARKED);
    assert_string_equal(ev.runtime, "nodejs20.x");

    ev = one(use_ua("aws-sdk-go/1.40.21 (go1.17; linux; amd64) exec-env/AWS_Lambda_go1.x", "3.5.140.2"));
    assert_int_equal(ev.flags, EV_F_MARKED);
    assert_string_equal(ev.runtime, "go1.x");

    /* not Lambda: another execution environment; a marker glued inside another token */
    ev = one(use_ua("Boto3/1.34.20 md/Botocore#1.34.20 exec-env/AWS_ECS_FARGATE Botocore/1.34.20", "10.0.0.5"));
    assert_int_equal(ev.flags, EV_F_WL_MARKED);  /* another workload's marker (ECS): weak */
    assert_int_equal(ev.wl_markers, WL_MASK(WL_ECS));
    assert_string_equal(ev.runtime, "");
    ev = one(use_ua("Boto3/1.34.20 xexec-env/AWS_Lambda_python3.12", "10.0.0.5"));
    assert_int_equal(ev.flags & EV_F_MARKED, 0);
    ev = one(use_ua("Boto3/1.34.20 exec-env/AWS_Lambda_", "10.0.0.5"));
    assert_int_equal(ev.flags & EV_F_MARKED, 0);

    /* Lambda's own calls with the key */
    json_t *w = use_rec(KEY1, "ev-w", "2024-03-13T08:33:22Z", "3.5.140.9", UA_WORKER, "logs.amazonaws.com",
                        "CreateLogStream");
    set_path(w, "errorCode", json_string("AccessDenied"));
    ev = one(w);
    assert_int_equal(ev.flags, EV_F_WORKER | EV_F_FAILED);
    assert_string_equal(ev.error, "AccessDenied");
    assert_string_equal(ev.action, "logs:CreateLogStream");

    json_t *k = use_rec(KEY1, "ev-k", "2024-03-13T08:33:22Z", "3.5.140.10",
                        "aws-sdk-java/1.12.500 Linux/5.10 OpenJDK_64-Bit_Server_VM/25.362", "kms.amazonaws.com",
                        "Decrypt");
    set_path(k, "requestParameters.encryptionContext.aws:lambda:FunctionArn",
             json_string("arn:aws:lambda:us-east-1:" ACCT ":function:orders-fn"));
    set_path(k, "requestParameters.encryptionAlgorithm", json_string("SYMMETRIC_DEFAULT"));
    ev = one(k);
    assert_int_equal(ev.flags, EV_F_COLDSTART);
    assert_string_equal(ev.action, "kms:Decrypt");
    /* a Decrypt without the function's encryption context is an ordinary call */
    ev = one(use_rec(KEY1, "ev-k2", "2024-03-13T08:33:22Z", "3.5.140.10", UA_CLI_LINUX, "kms.amazonaws.com",
                     "Decrypt"));
    assert_int_equal(ev.flags, 0);

    /* on-behalf: invokedBy, a service name, AWS Internal */
    json_t *ob = use_ua("s3.amazonaws.com", "s3.amazonaws.com");
    set_path(ob, "userIdentity.invokedBy", json_string("s3.amazonaws.com"));
    ev = one(ob);
    assert_int_equal(ev.flags, EV_F_ON_BEHALF);
    ob = use_ua("cloudformation.amazonaws.com", "198.51.100.20");
    set_path(ob, "userIdentity.invokedBy", json_string("cloudformation.amazonaws.com"));
    ev = one(ob);
    assert_int_equal(ev.flags, EV_F_ON_BEHALF);
    ev = one(use_ua("lambda.amazonaws.com", "lambda.amazonaws.com"));
    assert_int_equal(ev.flags, EV_F_ON_BEHALF);
    ev = one(use_ua("AWS Internal", "AWS Internal"));
    assert_int_equal(ev.flags, EV_F_ON_BEHALF);
    ev = one(use_ua(UA_CLI_LINUX, "amazonaws.com"));  /* not a service name */
    assert_int_equal(ev.flags, 0);

    /* presigned URL */
    json_t *ps = use_rec(KEY1, "ev-p", "2024-03-13T09:00:00Z", "203.0.113.50", "Mozilla/5.0 (X11; Linux x86_64)",
                         "s3.amazonaws.com", "GetObject");
    set_path(ps, "additionalEventData.AuthenticationMethod", json_string("QueryString"));
    set_path(ps, "additionalEventData.SignatureVersion", json_string("SigV4"));
    ev = one(ps);
    assert_int_equal(ev.flags, EV_F_PRESIGNED);
    ps = use_rec(KEY1, "ev-p2", "2024-03-13T09:00:00Z", "203.0.113.50", UA_CLI_LINUX, "s3.amazonaws.com",
                 "GetObject");
    set_path(ps, "additionalEventData.AuthenticationMethod", json_string("AuthHeader"));
    ev = one(ps);
    assert_int_equal(ev.flags, 0);

    /* desktop CLI */
    ev = one(use_ua(UA_CLI_MAC, "198.51.100.7"));
    assert_int_equal(ev.flags, EV_F_DESKTOP);
    ev = one(use_ua("aws-cli/1.18.0 Python/3.8.0 Windows/10 botocore/1.15.0", "198.51.100.7"));
    assert_int_equal(ev.flags, EV_F_DESKTOP);
    ev = one(use_ua("aws-cli/1.18.0 Python/3.8.0 Darwin/19.6.0 botocore/1.15.0", "198.51.100.7"));
    assert_int_equal(ev.flags, EV_F_DESKTOP);
    ev = one(use_ua(UA_CLI_LINUX, "198.51.100.7"));
    assert_int_equal(ev.flags, 0);

    /* VPC endpoint */
    json_t *v = use_ua(UA_PY, "10.0.1.23");
    set_path(v, "vpcEndpointId", json_string("vpce-0123456789abcdef0"));
    set_path(v, "vpcEndpointAccountId", json_string("444455556666"));
    ev = one(v);
    assert_int_equal(ev.flags, EV_F_MARKED | EV_F_VPCE);
    assert_string_equal(ev.vpce_account, "444455556666");
    assert_string_equal(ev.source_ip, "10.0.1.23");

    /* network activity is not an API use */
    json_t *na = use_ua(UA_CLI_LINUX, "198.51.100.7");
    set_path(na, "eventType", json_string("AwsVpceEvent"));
    set_path(na, "eventCategory", json_string("NetworkActivity"));
    ev = one(na);
    assert_int_equal(ev.kind, EV_OTHER);
    assert_string_equal(ev.akid, "");
    na = use_ua(UA_CLI_LINUX, "198.51.100.7");
    set_path(na, "eventCategory", json_string("NetworkActivity"));
    assert_int_equal(one(na).kind, EV_OTHER);

    /* Lambda issuance with a Lambda-service session: no function name */
    ev = one(issue_rec(KEY2, "ev-i", "awslambda_55_20240602202712548", "Jun 2, 2024, 10:37:12 PM"));
    assert_int_equal(ev.kind, EV_ISSUE);
    assert_string_equal(ev.akid, KEY2);
    assert_string_equal(ev.workload_id, "");
    assert_int_equal(ev.expires, 1717367832);
    assert_string_equal(ev.role_arn, ROLE);
    /* without recipientAccountId the account comes from the role ARN */
    json_t *i2 = r_issue();
    set_path(i2, "recipientAccountId", NULL);
    ev = one(i2);
    assert_string_equal(ev.account, ACCT);
    /* a failed AssumeRole issues nothing; an AssumeRole by another workload's service is that
     * workload's issuance; by a service that is no workload's, or by CodeBuild (no public sample
     * of its issuance: docs/workloads.md 1.7), no issuance */
    json_t *i3 = r_issue();
    set_path(i3, "errorCode", json_string("AccessDenied"));
    assert_int_equal(one(i3).kind, EV_OTHER);
    json_t *i4 = r_issue();
    set_path(i4, "userIdentity.invokedBy", json_string("ecs-tasks.amazonaws.com"));
    ev = one(i4);
    assert_int_equal(ev.kind, EV_ISSUE);
    assert_int_equal(ev.wl_kind, WL_ECS);
    assert_string_equal(ev.workload_id, "orders-fn");
    const char *not_issuers[] = { "codebuild.amazonaws.com", "rolesanywhere.amazonaws.com", "ssm.amazonaws.com",
                                  "lambda.amazonaws.com.evil.example" };
    for (size_t n = 0; n < sizeof not_issuers / sizeof not_issuers[0]; n++) {
        json_t *i5 = r_issue();
        set_path(i5, "userIdentity.invokedBy", json_string(not_issuers[n]));
        assert_int_equal(one(i5).kind, EV_OTHER);
    }

    /* long-term keys and other identities are not uses */
    assert_int_equal(one(r_other()).kind, EV_OTHER);
    json_t *ak = use_ua(UA_CLI_LINUX, "198.51.100.7");
    set_path(ak, "userIdentity.accessKeyId", json_string("AKIAIOSFODNN7EXAMPLE"));
    assert_int_equal(one(ak).kind, EV_OTHER);

    /* the user agent is cut, not refused */
    char longua[600];
    memset(longua, 'u', sizeof longua - 1);
    longua[sizeof longua - 1] = 0;
    ev = one(use_ua(longua, "198.51.100.7"));
    assert_int_equal(strlen(ev.user_agent), EV_UA_MAX - 1);
}

/* The panther-analysis shapes (tests/data/lambda-event-shapes.json), as they are. */
static void test_panther_shapes(void **state)
{
    (void)state;
    json_error_t err;
    json_t *shapes = json_load_file(SHAPES_FILE, 0, &err);
    if (!shapes)
        fail_msg("%s: %s", SHAPES_FILE, err.text);
    assert_int_equal(json_array_size(shapes), 7);
    json_t *recs = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(shapes, i, it) json_array_append(recs, json_object_get(it, "record"));
    char *s = dump(json_pack("{s:o}", "Records", recs));
    struct got *g = decode_str(s);
    assert_int_equal(g->rc, CW_OK);
    assert_int_equal(g->st.records, 7);
    /* 0: an IAM user's denied call with a Go Lambda user agent: not a temporary key */
    /* 1, 2: AssumedRole ASIA keys from the Go runtime: marked uses */
    /* 3, 4: AssumedRole with key "1111": not a temporary key id */
    /* 5, 6: Lambda's AssumeRole with the key id "REDACTED": skipped, never an issuance */
    assert_int_equal(g->n_ev, 5);
    assert_int_equal(g->n_skip, 2);
    assert_int_equal(g->skip_index[0], 5);
    assert_int_equal(g->skip_index[1], 6);
    assert_string_equal(g->skip[0], "responseElements.credentials.accessKeyId is not an access key id");
    assert_int_equal(g->ev[0].kind, EV_OTHER);
    assert_int_equal(g->ev[1].kind, EV_USE);
    assert_string_equal(g->ev[1].akid, "ASIAJMVY5WC5K4TDFNFA");
    assert_int_equal(g->ev[1].flags, EV_F_MARKED | EV_F_FAILED);
    assert_string_equal(g->ev[1].runtime, "go1.x");
    assert_string_equal(g->ev[1].action, "glue:GetPartition");
    assert_int_equal(g->ev[1].time, 1634221282); /* "2021-10-14 14:21:22" */
    assert_int_equal(g->ev[2].kind, EV_USE);
    assert_string_equal(g->ev[2].akid, "ASIA153151351351351");
    assert_int_equal(g->ev[2].flags, EV_F_MARKED);
    assert_int_equal(g->ev[3].kind, EV_OTHER);
    assert_int_equal(g->ev[4].kind, EV_OTHER);
    free(g);
    free(s);

    /* the same shapes with real key ids: the worker call and the Lambda-session issuance */
    json_t *worker = json_deep_copy(json_object_get(json_array_get(shapes, 4), "record"));
    set_path(worker, "userIdentity.accessKeyId", json_string(KEY1));
    struct ev_event ev = one(worker);
    assert_int_equal(ev.kind, EV_USE);
    assert_true(ev.flags & EV_F_WORKER);
    json_t *issue = json_deep_copy(json_object_get(json_array_get(shapes, 5), "record"));
    set_path(issue, "responseElements.credentials.accessKeyId", json_string(KEY2));
    ev = one(issue);
    assert_int_equal(ev.kind, EV_ISSUE);
    assert_string_equal(ev.akid, KEY2);
    assert_string_equal(ev.workload_id, "");  /* awslambda_55_...: Lambda's own session */
    assert_int_equal(ev.expires, 1717367832);
    assert_string_equal(ev.account, "123456789123");
    json_decref(shapes);
}

/* The consumer stops decoding. */
static int stop_event(void *ud, size_t index, const struct ev_event *ev)
{
    (void)ev;
    *(size_t *)ud = index;
    return index == 1;
}

static void test_sink_abort(void **state)
{
    (void)state;
    char *s = records_file(r_issue(), r_use(), r_other(), NULL);
    size_t last = 99;
    struct dec_sink sink = { stop_event, NULL, &last };
    char msg[DEC_MSG_MAX];
    int rc = dec_buffer((const uint8_t *)s, strlen(s), &sink, NULL, NULL, msg, sizeof msg);
    assert_int_equal(rc, CW_EABORT);
    assert_int_equal(last, 1);
    free(s);
}

/* ---- the trie: every field's path reaches its field --------------------------------------- */

/* Each field read, by its dotted path (cls_field_name), set to a number in a use record: the
 * record is skipped naming that field, so the key lookup (decode.c's length switch) found every
 * edge of the path, and a wrapper-like key or a path one level off finds nothing. The bounds
 * table keeps the rule cls_field_cuttable had: evidence fields are cut, the others refused. */
static void test_trie_every_field(void **state)
{
    (void)state;
    for (int f = CLS_F_NONE + 1; f < CLS_F_COUNT; f++) {
        json_t *r = r_use();
        set_path(r, cls_field_name((enum cls_field)f), json_integer(5));
        char *s = records_file(r, NULL);
        struct got *g = decode_str(s);
        char want[160];
        snprintf(want, sizeof want, "%s must be a string", cls_field_name((enum cls_field)f));
        assert_int_equal(g->rc, 0);
        assert_int_equal(g->n_skip, 1);
        assert_string_equal(g->skip[0], want);
        free(g);
        free(s);
    }
    /* the same keys one level down are nobody's: the record is a use like any other */
    static const char *const off[] = { "userIdentity.eventID", "requestParameters.accessKeyId",
                                       "userIdentity.sessionContext.arn", "responseElements.accessKeyId",
                                       "additionalEventData.eventName", "userIdentity.Records" };
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++) {
        json_t *r = r_use();
        set_path(r, off[i], json_integer(5));
        char *s = records_file(r, NULL);
        struct got *g = decode_str(s);
        assert_int_equal(g->rc, 0);
        assert_int_equal(g->n_ev, 1);
        assert_int_equal(g->n_skip, 0);
        free(g);
        free(s);
    }
    static const enum cls_field cut[] = { CLS_F_USER_AGENT, CLS_F_ERROR_CODE, CLS_F_UI_ARN, CLS_F_UI_ISSUER_ARN,
                                          CLS_F_RP_ROLE_ARN, CLS_F_RP_SESSION, CLS_F_RP_FUNCTION_ARN, CLS_F_VPCE_ID,
                                          CLS_F_UI_INVOKED_BY, CLS_F_UI_USER_NAME, CLS_F_UI_PROVIDER,
                                          CLS_F_UI_EC2_DELIVERY, CLS_F_RE_SUBJECT };
    for (int f = CLS_F_NONE; f < CLS_F_COUNT; f++) {
        int want = 0;
        for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++)
            want |= cut[i] == (enum cls_field)f;
        assert_int_equal(cls_field_cuttable((enum cls_field)f), want);
        if (want)
            assert_int_equal(cls_field_max((enum cls_field)f), CLS_VALUE_MAX - 1);
    }
}

/* ---- the NUL scan the parser skips, and values left from an earlier record ----------------- */

/* A \u0000 in any field read, at its first byte, in its middle, at its last, or past a cuttable
 * field's cut: the record is skipped naming the field, whatever the feeding (decode_all: whole, 1-
 * and 7-byte pieces, so the string reaches yajl split across two chunks) and gzip in 1-byte pieces
 * (split across inflate outputs). decode.c skips the NUL scan for strings that are the chunk's own
 * bytes; a string holding a NUL never is one (decoded from its escape), and is still scanned. */
static void test_nul_every_field(void **state)
{
    (void)state;
    for (int f = CLS_F_NONE + 1; f < CLS_F_COUNT; f++) {
        const char *name = cls_field_name((enum cls_field)f);
        size_t max = cls_field_max((enum cls_field)f);
        size_t len = max < 12 ? max : 12;
        size_t at[4] = { 0, len / 2, len - 1, 0 };
        size_t n_at = 3;
        if (cls_field_cuttable((enum cls_field)f)) {  /* cut at max, yet the whole value is refused */
            at[3] = max + 40;
            n_at = 4;
        }
        for (size_t i = 0; i < n_at; i++) {
            size_t n = i == 3 ? max + 80 : len;
            char v[CLS_VALUE_MAX + 128];
            memset(v, 'a', n);
            v[at[i]] = 0;
            for (int issue = 0; issue <= 1; issue++) {
                json_t *r = issue ? r_issue() : r_use();
                set_path(r, name, json_stringn(v, n));
                char *s = records_file(r_other(), r, NULL);
                struct got *g = decode_str(s);
                char want[160];
                snprintf(want, sizeof want, "%s contains a NUL character", name);
                assert_int_equal(g->rc, CW_OK);
                assert_int_equal(g->n_skip, 1);
                assert_int_equal(g->skip_index[0], 1);
                assert_string_equal(g->skip[0], want);
                size_t zl;
                uint8_t *z = gz(s, strlen(s), &zl);
                struct got *gz1 = decode_chunks(z, zl, 1, NULL);
                assert_int_equal(gz1->rc, CW_OK);
                assert_int_equal(gz1->st.gzip, 1);
                assert_int_equal(gz1->n_ev, g->n_ev);
                assert_int_equal(gz1->n_skip, 1);
                assert_string_equal(gz1->skip[0], want);
                free(gz1);
                free(z);
                free(g);
                free(s);
            }
        }
    }
}

/* dec_new leaves the value buffers unwritten: a record must read nothing an earlier record of the
 * same input wrote. Each optional field is written at its bound by a first record, then absent
 * from the second (a file, an EventBridge detail after a plain record, NDJSON): the second's event
 * is the one it makes alone. */
static void test_no_value_from_earlier_record(void **state)
{
    (void)state;
    static const enum cls_field optional[] = {
        CLS_F_REGION, CLS_F_SOURCE_IP, CLS_F_USER_AGENT, CLS_F_ERROR_CODE, CLS_F_EVENT_TYPE, CLS_F_EVENT_CATEGORY,
        CLS_F_RECIPIENT, CLS_F_VPCE_ID, CLS_F_VPCE_ACCOUNT, CLS_F_UI_ARN, CLS_F_UI_ACCOUNT, CLS_F_UI_INVOKED_BY,
        CLS_F_UI_ISSUER_ARN, CLS_F_UI_CREATED, CLS_F_RP_ROLE_ARN, CLS_F_RP_SESSION, CLS_F_RP_FUNCTION_ARN,
        CLS_F_RE_EXPIRATION, CLS_F_AED_AUTH, CLS_F_UI_USER_NAME, CLS_F_UI_PROVIDER, CLS_F_UI_EC2_DELIVERY,
        CLS_F_RE_SUBJECT,
    };
    for (int issue = 0; issue <= 1; issue++) {
        json_t *full = issue ? r_issue() : r_use();
        json_t *bare = issue ? r_issue() : r_use();
        for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
            char v[CLS_VALUE_MAX];
            size_t n = cls_field_max(optional[i]);
            memset(v, 'Q', n);
            set_path(full, cls_field_name(optional[i]), json_stringn(v, n));
            set_path(bare, cls_field_name(optional[i]), NULL);
        }
        char *alone = records_file(json_deep_copy(bare), NULL);
        struct got *want = decode_str(alone);
        assert_int_equal(want->n_ev, 1);
        char *pair = records_file(json_deep_copy(full), json_deep_copy(bare), NULL);
        char *lines = join_lines(dump(json_deep_copy(full)), dump(json_deep_copy(bare)), strdup(""), "\n");
        char *detail = join_lines(dump(json_deep_copy(full)),
                                  dump(eventbridge(json_deep_copy(bare), "AWS API Call via CloudTrail")), strdup(""), "\n");
        const char *inputs[] = { pair, lines, detail };
        for (size_t k = 0; k < 3; k++) {
            struct got *g = decode_str(inputs[k]);
            assert_int_equal(g->rc, CW_OK);
            assert_int_equal(g->st.records, 2);
            assert_true(g->n_ev >= 1);
            assert_int_equal(g->ev_index[g->n_ev - 1], 1);
            assert_same_event(&g->ev[g->n_ev - 1], &want->ev[0]);
            free(g);
        }
        free(want);
        free(alone);
        free(pair);
        free(lines);
        free(detail);
        json_decref(full);
        json_decref(bare);
    }
}

/* The wrapper's strings are compared as C strings: "AWS API Call via CloudTrail\u0000x" must not
 * read as the CloudTrail detail-type (its record applied), nor "Notification\u0000x" as an SNS
 * notification; the record is skipped naming the wrapper field, whole and in 1-byte pieces. */
static void test_nul_in_wrapper(void **state)
{
    (void)state;
    char dt[64];
    size_t n = (size_t)snprintf(dt, sizeof dt, "%s", VIA_CT);
    memcpy(dt + n, "\0x", 3);
    json_t *e = eventbridge(r_use(), VIA_CT);
    json_object_set_new(e, "detail-type", json_stringn(dt, n + 2));
    char *s = dump(json_pack("[o, o]", eventbridge(r_use(), VIA_CT), e));
    struct got *g = decode_str(s);
    assert_int_equal(g->rc, CW_OK);
    assert_int_equal(g->st.records, 2);
    assert_int_equal(g->n_ev, 1);
    assert_int_equal(g->n_skip, 1);
    assert_int_equal(g->skip_index[0], 1);
    assert_string_equal(g->skip[0], "detail-type contains a NUL character");
    struct got *g1 = decode_chunks((const uint8_t *)s, strlen(s), 1, NULL);
    assert_int_equal(g1->n_ev, 1);
    assert_int_equal(g1->n_skip, 1);
    assert_string_equal(g1->skip[0], "detail-type contains a NUL character");
    free(g1);
    free(g);
    free(s);
    /* an SNS envelope whose Type is "Notification" and a NUL: not read as a notification */
    const char *sns = "[{\"Type\":\"Notification\\u0000x\",\"MessageId\":\"22b80b92\","
                      "\"Message\":\"{}\",\"Timestamp\":\"2024-03-13T08:35:00.000Z\"}]";
    g = decode_str(sns);
    assert_int_equal(g->n_ev, 0);
    assert_int_equal(g->n_skip, 1);
    assert_string_equal(g->skip[0], "Type contains a NUL character");
    free(g);
}

/* ---- classify.c's string work, against its earlier forms ------------------------------------ */

/* A use record as the parser captures it, with the given user agent, source and name. */
static void captured_use(struct cls_rec *r, const char *ua, const char *src, const char *name)
{
    memset(r->set, 0, sizeof r->set);
    memset(r->toolong, 0, sizeof r->toolong);
    r->error = r->detail_type = NULL;
    const struct { enum cls_field f; const char *v; } fields[] = {
        { CLS_F_EVENT_ID, "e1" }, { CLS_F_EVENT_TIME, "2024-03-13T09:00:00Z" }, { CLS_F_EVENT_SOURCE, src },
        { CLS_F_EVENT_NAME, name }, { CLS_F_REGION, "us-east-1" }, { CLS_F_SOURCE_IP, "198.51.100.7" },
        { CLS_F_USER_AGENT, ua }, { CLS_F_UI_TYPE, "AssumedRole" }, { CLS_F_UI_AKID, KEY1 },
        { CLS_F_UI_ACCOUNT, ACCT }, { CLS_F_UI_ARN, "arn:aws:sts::" ACCT ":assumed-role/orders-fn-role/fn" },
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        size_t n = strlen(fields[i].v);
        assert_true(n <= cls_field_max(fields[i].f));
        memcpy(r->val[fields[i].f], fields[i].v, n + 1);
        r->len[fields[i].f] = (unsigned short)n;
        r->set[fields[i].f] = 1;
    }
}

/* The desktop test as it was: a strstr per SDK name, then per operating-system mark. */
static int desktop_ref(const char *ua)
{
    static const char *const sdks[] = { "aws-cli/", "Boto3/", "Botocore/", "aws-sdk-", "AWSPowerShell", "aws-toolkit" };
    static const char *const marks[] = { "Darwin/", "Windows", "Macintosh", "Mac OS X", "os/macos", "os/windows",
                                         "md/OS#macos", "md/OS#windows", "Win64", "Win32" };
    int sdk = 0;
    for (size_t i = 0; i < sizeof sdks / sizeof sdks[0]; i++)
        sdk |= strstr(ua, sdks[i]) != NULL;
    for (size_t i = 0; sdk && i < sizeof marks / sizeof marks[0]; i++)
        if (strstr(ua, marks[i]))
            return 1;
    return 0;
}

/* EV_F_DESKTOP and the action name, for user agents assembled from the names and marks, their
 * prefixes and look-alikes, at every position; and action names at and past their bound. */
static void test_classify_strings_same(void **state)
{
    (void)state;
    static const char *const parts[] = {
        "aws-cli/", "aws-cli", "Boto3/", "Boto3", "Botocore/", "aws-sdk-", "aws-sdk", "AWSPowerShell", "AWSPowerShel",
        "aws-toolkit", "Darwin/", "Darwin", "Windows", "Window", "Macintosh", "Mac OS X", "Mac OS", "os/macos",
        "os/windows", "md/OS#macos", "md/OS#windows", "Win64", "Win32", "Win", "os/linux", " ", "/", "a", "aaws-cli/",
        "exec-env/AWS_Lambda_python3.12", "\xc3\xa9", "aws-toolki", "Botocore", "Boto", "AWS", "aws-",
    };
    static struct cls_rec r;
    struct ev_event ev;
    char why[CLS_WHY_MAX], ua[256];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int round = 0; round < 20000; round++) {
        size_t n = 0;
        for (int k = 0, parts_n = 1 + round % 6; k < parts_n; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            const char *p = parts[x % (sizeof parts / sizeof parts[0])];
            size_t pl = strlen(p);
            if (n + pl < sizeof ua) {
                memcpy(ua + n, p, pl);
                n += pl;
            }
        }
        ua[n] = 0;
        captured_use(&r, ua, "sts.amazonaws.com", "GetCallerIdentity");
        assert_null(cls_event(&r, &ev, why));
        assert_int_equal(ev.kind, EV_USE);
        if (!!(ev.flags & EV_F_DESKTOP) != desktop_ref(ua))
            fail_msg("desktop flag differs for \"%s\"", ua);
    }
    /* the action: service prefix, ':', name, cut at its bound exactly as snprintf cut it */
    char src[80], name[80], want[EV_ACTION_MAX];
    for (size_t sl = 0; sl <= 64; sl += 1) {
        for (size_t nl = 1; nl <= 64; nl += nl < 57 ? 8 : 1) {
            memset(src, 's', sl);
            strcpy(src + sl, sl % 3 && sl <= 50 ? ".amazonaws.com" : "");  /* eventSource: 64 at most */
            memset(name, 'N', nl);
            name[nl] = 0;
            if (!strlen(src))
                continue;
            captured_use(&r, "aws-cli/2.15.0", src, name);
            assert_null(cls_event(&r, &ev, why));
            const char *dot = strchr(src, '.');
            snprintf(want, sizeof want, "%.*s:%s", (int)(dot ? (size_t)(dot - src) : strlen(src)), src, name);
            assert_string_equal(ev.action, want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_file),
        cmocka_unit_test(test_bare_array),
        cmocka_unit_test(test_eventbridge_one),
        cmocka_unit_test(test_eventbridge_array),
        cmocka_unit_test(test_ndjson),
        cmocka_unit_test(test_gzip_two_members),
        cmocka_unit_test(test_gzip_magic_only),
        cmocka_unit_test(test_lookalikes),
        cmocka_unit_test(test_eventbridge_not_cloudtrail),
        cmocka_unit_test(test_malformed_json_offset),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_malformed_records),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_truncated_gzip),
        cmocka_unit_test(test_gzip_corrupt_after_bad_json),
        cmocka_unit_test(test_gzip_bomb),
        cmocka_unit_test(test_max_inflated_plain),
        cmocka_unit_test(test_max_records),
        cmocka_unit_test(test_max_records_nested_records),
        cmocka_unit_test(test_hostile_key_ids),
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_parse_expiration),
        cmocka_unit_test(test_classification),
        cmocka_unit_test(test_panther_shapes),
        cmocka_unit_test(test_sink_abort),
        cmocka_unit_test(test_classify_strings_same),
        cmocka_unit_test(test_trie_every_field),
        cmocka_unit_test(test_nul_every_field),
        cmocka_unit_test(test_nul_in_wrapper),
        cmocka_unit_test(test_no_value_from_earlier_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
