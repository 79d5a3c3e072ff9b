/* test_engine.c — the engine's promises that no fixture shows: a retry after a failed finding
 * write repairs the finding (the key's commit had already succeeded), and a plain duplicate changes
 * nothing. A store wrapper makes the in-memory store fail on demand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "engine.h"
#include "store.h"

/* The in-memory store, with finding_put failing while `fail_puts` > 0. */
struct flaky {
    struct store base;
    struct store *inner;
    int fail_puts;
    unsigned commits, fail_commit;  /* fail_commit: the number (from 1) of the commit call that fails */
};
static struct store_ops flaky_ops;

static int fl_load(struct store *s, struct store_load *it, size_t n) { return store_load(((struct flaky *)s)->inner, it, n); }
static int64_t last_expire_ms;  /* expire_at_ms of the last key committed through the wrapper */
static int fl_commit(struct store *s, struct store_commit *it, size_t n)
{
    struct flaky *f = (struct flaky *)s;
    if (f->fail_commit && ++f->commits == f->fail_commit)
        return CW_EUNAVAIL;
    for (size_t i = 0; i < n; i++)
        last_expire_ms = it[i].expire_at_ms;
    return store_commit(f->inner, it, n);
}
static int fl_put(struct store *s, struct store_finding_put *it, size_t n)
{
    struct flaky *f = (struct flaky *)s;
    if (f->fail_puts > 0) {
        f->fail_puts--;
        return CW_EUNAVAIL;
    }
    return store_finding_put(f->inner, it, n);
}
static int fl_get(struct store *s, const char *id, struct store_finding *o) { return store_finding_get(((struct flaky *)s)->inner, id, o); }
static const char *fl_why(struct store *s) { return store_why(((struct flaky *)s)->inner); }

/* Routes every call the engine makes through the wrapper. */
static void flaky_wrap(struct flaky *f)
{
    flaky_ops = *f->inner->ops;
    flaky_ops.load = fl_load;
    flaky_ops.commit = fl_commit;
    flaky_ops.finding_put = fl_put;
    flaky_ops.why = fl_why;
    flaky_ops.finding_get = fl_get;
    f->base.ops = &flaky_ops;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char batch[] =
    "{\"Records\":["
    "{\"eventID\":\"i1\",\"eventTime\":\"2024-03-13T08:33:21Z\",\"eventSource\":\"sts.amazonaws.com\",\"eventName\":\"AssumeRole\","
    "\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"lambda.amazonaws.com\",\"userAgent\":\"lambda.amazonaws.com\","
    "\"userIdentity\":{\"type\":\"AWSService\",\"invokedBy\":\"lambda.amazonaws.com\"},"
    "\"requestParameters\":{\"roleArn\":\"arn:aws:iam::111122223333:role/r\",\"roleSessionName\":\"fn\"},"
    "\"responseElements\":{\"credentials\":{\"accessKeyId\":\"ASIAENGINETEST000001\",\"expiration\":\"Mar 13, 2024, 8:33:21 PM\"}}},"
    "{\"eventID\":\"u1\",\"eventTime\":\"2024-03-13T09:00:00Z\",\"eventSource\":\"sts.amazonaws.com\",\"eventName\":\"GetCallerIdentity\","
    "\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"198.51.100.7\",\"userAgent\":\"aws-cli/2.15.0\","
    "\"userIdentity\":{\"type\":\"AssumedRole\",\"accessKeyId\":\"ASIAENGINETEST000001\",\"accountId\":\"111122223333\","
    "\"arn\":\"arn:aws:sts::111122223333:assumed-role/r/fn\"}}]}";

static void test_retry_repairs_lost_finding(void **state)
{
    (void)state;
    struct flaky f = { .inner = store_mem_new() };
    flaky_wrap(&f);
    struct eng *e = eng_new(&f.base, NULL);
    struct eng_report *rep = malloc(sizeof *rep);
    assert_non_null(e);
    assert_non_null(rep);
    f.fail_puts = 1;  /* the key commits, then the finding write fails: the sender gets a 503 */
    assert_int_equal(eng_ingest(e, (const uint8_t *)batch, sizeof batch - 1, now_ms(), rep), CW_EUNAVAIL);
    struct store_finding out;
    assert_int_equal(store_finding_get(f.inner, "cwf-ASIAENGINETEST000001", &out), CW_ENOTFOUND);
    /* the sender retries: every event is a duplicate, and the finding is written */
    assert_int_equal(eng_ingest(e, (const uint8_t *)batch, sizeof batch - 1, now_ms(), rep), 0);
    assert_int_equal(rep->duplicates, 2);
    assert_int_equal(rep->created, 1);
    assert_int_equal(rep->n_ids, 1);
    assert_int_equal(store_finding_get(f.inner, "cwf-ASIAENGINETEST000001", &out), 0);
    int64_t updated = out.updated_ms;
    store_finding_free(&out);
    /* a further duplicate changes nothing, not even updated_at */
    struct timespec ts = { 0, 5 * 1000000 };
    nanosleep(&ts, NULL);
    assert_int_equal(eng_ingest(e, (const uint8_t *)batch, sizeof batch - 1, now_ms(), rep), 0);
    assert_int_equal(rep->created, 0);
    assert_int_equal(rep->n_ids, 0);
    assert_int_equal(store_finding_get(f.inner, "cwf-ASIAENGINETEST000001", &out), 0);
    assert_int_equal(out.updated_ms, updated);
    store_finding_free(&out);
    free(rep);
    eng_free(e);
    store_free(f.inner);
}

/* A key whose state expired and is made anew (a replayed archive, a late file) updates its finding,
 * which outlives key state, and never lowers its severity. Regression: the new state started at
 * version 1, below the finding's, and the finding stayed stale while the key view moved on. */
static const char first[] =
    "{\"Records\":["
    "{\"eventID\":\"i1\",\"eventTime\":\"2024-03-13T08:33:21Z\",\"eventSource\":\"sts.amazonaws.com\",\"eventName\":\"AssumeRole\","
    "\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"lambda.amazonaws.com\",\"userAgent\":\"lambda.amazonaws.com\","
    "\"userIdentity\":{\"type\":\"AWSService\",\"invokedBy\":\"lambda.amazonaws.com\"},"
    "\"requestParameters\":{\"roleArn\":\"arn:aws:iam::111122223333:role/r\",\"roleSessionName\":\"fn\"},"
    "\"responseElements\":{\"credentials\":{\"accessKeyId\":\"ASIAENGINETEST000002\",\"expiration\":\"Mar 13, 2024, 8:33:21 PM\"}}},"
    "{\"eventID\":\"u1\",\"eventTime\":\"2024-03-13T09:00:00Z\",\"eventSource\":\"secretsmanager.amazonaws.com\",\"eventName\":\"GetSecretValue\","
    "\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"198.51.100.7\",\"userAgent\":\"aws-cli/2.15.0\","
    "\"userIdentity\":{\"type\":\"AssumedRole\",\"accessKeyId\":\"ASIAENGINETEST000002\",\"accountId\":\"111122223333\","
    "\"arn\":\"arn:aws:sts::111122223333:assumed-role/r/fn\"}}]}";

static void test_key_made_anew_updates_finding(void **state)
{
    (void)state;
    struct store *st = store_mem_new();
    struct eng_config cfg = { .late_margin_s = 1 };  /* key state lives 1 s past arrival */
    struct eng *e = eng_new(st, &cfg);
    struct eng_report *rep = malloc(sizeof *rep);
    assert_non_null(e);
    assert_non_null(rep);
    assert_int_equal(eng_ingest(e, (const uint8_t *)first, sizeof first - 1, now_ms(), rep), 0);
    assert_int_equal(rep->created, 1);
    /* a second commit of the old state: its finding's version is 2 */
    char *more = strdup(first);
    assert_non_null(more);
    memcpy(strstr(more, "\"u1\""), "\"u0\"", 4);
    assert_int_equal(eng_ingest(e, (const uint8_t *)more, strlen(more), now_ms(), rep), 0);
    assert_int_equal(rep->n_ids, 1);
    free(more);
    struct store_finding f;
    assert_int_equal(store_finding_get(st, "cwf-ASIAENGINETEST000002", &f), 0);
    assert_non_null(strstr(f.evidence_json, "\"severity\":\"critical\""));
    store_finding_free(&f);
    /* the key state expires (events from 2024: only the arrival floor kept it) */
    struct timespec ts = { 1, 300 * 1000000 };
    nanosleep(&ts, NULL);
    char *later = strdup(first);
    assert_non_null(later);
    /* the same issuance again, and a failed call from another address */
    char *u = strstr(later, "\"u1\"");
    memcpy(u, "\"u2\"", 4);
    char *ip = strstr(later, "198.51.100.7");
    memcpy(ip, "198.51.100.9", 12);
    char *ok = strstr(later, "\"arn\":\"arn:aws:sts");
    assert_non_null(ok);
    static char buf[4096];
    snprintf(buf, sizeof buf, "%.*s\"errorCode\":\"AccessDenied\",%s", (int)(ok - later), later, ok);
    assert_int_equal(eng_ingest(e, (const uint8_t *)buf, strlen(buf), now_ms(), rep), 0);
    assert_int_equal(rep->duplicates, 0);  /* the old state, and its dedup set, are gone */
    assert_int_equal(rep->created, 0);
    assert_int_equal(rep->n_ids, 1);
    assert_int_equal(store_finding_get(st, "cwf-ASIAENGINETEST000002", &f), 0);
    if (!strstr(f.evidence_json, "198.51.100.9"))
        fail_msg("the finding did not take the new state's evidence: %s", f.evidence_json);
    if (!strstr(f.evidence_json, "\"severity\":\"critical\""))
        fail_msg("the finding's severity dropped with the new state: %s", f.evidence_json);
    store_finding_free(&f);
    free(later);
    free(rep);
    eng_free(e);
    store_free(st);
}

/* A far-future eventTime (year 9999) keeps key state no longer than the credentials' lifetime plus
 * the late margin from arrival; a past one at least the margin. */
static void test_state_life_bounded(void **state)
{
    (void)state;
    struct flaky f = { .inner = store_mem_new() };
    flaky_wrap(&f);
    struct eng *e = eng_new(&f.base, NULL);
    struct eng_report *rep = malloc(sizeof *rep);
    assert_non_null(e);
    assert_non_null(rep);
    char *future = strdup(batch);
    assert_non_null(future);
    for (char *p = future; (p = strstr(p, "2024-03-13T")); p += 4)
        memcpy(p, "9999", 4);
    int64_t now = now_ms();
    /* an old archive: the arrival floor */
    assert_int_equal(eng_ingest(e, (const uint8_t *)batch, sizeof batch - 1, now, rep), 0);
    assert_int_equal(last_expire_ms, now + (int64_t)DET_LATE_MARGIN * 1000);
    /* the same key, its records dated 9999 (new event ids): the ceiling */
    for (char *p = future; (p = strstr(p, "\"eventID\":\"")); p += 11)
        p[12] = 'F';
    assert_int_equal(eng_ingest(e, (const uint8_t *)future, strlen(future), now, rep), 0);
    assert_int_equal(rep->accepted, 2);
    assert_int_equal(last_expire_ms, now + (int64_t)(DET_CRED_LIFETIME + DET_LATE_MARGIN) * 1000);
    free(future);
    free(rep);
    eng_free(e);
    store_free(f.inner);
}

/* Finding events: the same evidence twice queues one event; a later record from a new outside
 * address queues a second, of a higher revision. */
static size_t out_take(struct store *st, uint64_t *rev, int *kind)
{
    struct store_event ev[8];
    size_t n = 0;
    assert_int_equal(store_out_read(st, "s", "c", 8, now_ms(), ev, &n), 0);
    for (size_t i = 0; i < n; i++) {
        *rev = ev[i].revision;
        *kind = ev[i].kind;
        const char *e = ev[i].entry;
        assert_int_equal(store_out_ack(st, "s", &e, 1), 0);
        store_event_free(&ev[i]);
    }
    return n;
}

static void test_finding_events(void **state)
{
    (void)state;
    struct store *st = store_mem_new();
    const char *const sinks[] = { "s" };
    assert_int_equal(store_out_open(st, sinks, 1), 0);
    struct eng *e = eng_new(st, NULL);
    struct eng_report *rep = malloc(sizeof *rep);
    assert_non_null(e);
    assert_non_null(rep);
    uint64_t rev = 0;
    int kind = 0;
    assert_int_equal(eng_ingest(e, (const uint8_t *)batch, sizeof batch - 1, now_ms(), rep), 0);
    assert_int_equal(out_take(st, &rev, &kind), 1);
    assert_int_equal(rev, 1);
    assert_int_equal(kind, STORE_EV_CREATED);
    assert_int_equal(eng_ingest(e, (const uint8_t *)batch, sizeof batch - 1, now_ms(), rep), 0);
    assert_int_equal(out_take(st, &rev, &kind), 0);
    /* the same address again, a new event id: a refresh, no event */
    char *again = strdup(batch);
    assert_non_null(again);
    memcpy(strstr(again, "\"u1\""), "\"u7\"", 4);
    assert_int_equal(eng_ingest(e, (const uint8_t *)again, strlen(again), now_ms(), rep), 0);
    assert_int_equal(rep->accepted, 1);
    assert_int_equal(out_take(st, &rev, &kind), 0);
    /* a new outside address: notable */
    memcpy(strstr(again, "\"u7\""), "\"u8\"", 4);
    memcpy(strstr(again, "198.51.100.7"), "198.51.100.9", 12);
    assert_int_equal(eng_ingest(e, (const uint8_t *)again, strlen(again), now_ms(), rep), 0);
    assert_int_equal(out_take(st, &rev, &kind), 1);
    assert_int_equal(rev, 2);
    assert_int_equal(kind, STORE_EV_UPDATED);
    free(again);
    free(rep);
    eng_free(e);
    store_free(st);
}

/* Two keys with findings in one input: each key's update is compared with its own earlier
 * verdict. The engine keeps, between the verdict before and the one after, only the outside
 * addresses of the earlier finding (engine.c, key_apply); the second key must not be compared with
 * what the first left there. A refresh of both is no event; a new address of the second is one. */
static char *two_keys(const char *id_a, const char *id_b, const char *ip_b)
{
    size_t n = sizeof batch - 1;
    char *two = malloc(2 * n + 2);
    assert_non_null(two);
    memcpy(two, batch, n - 2);                       /* the records of key ...01, without "]}" */
    two[n - 2] = ',';
    memcpy(two + n - 1, batch + 12, n - 12);          /* key ...02's, after {"Records":[ */
    two[2 * n - 13] = 0;
    char *b = two + n - 1;
    for (char *p = b; (p = strstr(p, "ASIAENGINETEST000001")); p += 20)
        p[19] = '2';
    memcpy(strstr(b, "\"i1\""), "\"i2\"", 4);
    memcpy(strstr(b, "\"u1\""), id_b, 4);
    memcpy(strstr(b, "198.51.100.7"), ip_b, 12);
    memcpy(strstr(two, "\"u1\""), id_a, 4);
    return two;
}

static void test_finding_events_two_keys(void **state)
{
    (void)state;
    struct store *st = store_mem_new();
    const char *const sinks[] = { "s" };
    assert_int_equal(store_out_open(st, sinks, 1), 0);
    struct eng *e = eng_new(st, NULL);
    struct eng_report *rep = malloc(sizeof *rep);
    assert_non_null(e);
    assert_non_null(rep);
    uint64_t rev = 0;
    int kind = 0;
    char *in = two_keys("\"u1\"", "\"u1\"", "198.51.100.8");
    assert_int_equal(eng_ingest(e, (const uint8_t *)in, strlen(in), now_ms(), rep), 0);
    assert_int_equal(rep->keys, 2);
    assert_int_equal(rep->findings, 2);
    assert_int_equal(out_take(st, &rev, &kind), 2);
    free(in);
    /* both keys again from their own addresses, new event ids: refreshes, no event */
    in = two_keys("\"u5\"", "\"u5\"", "198.51.100.8");
    assert_int_equal(eng_ingest(e, (const uint8_t *)in, strlen(in), now_ms(), rep), 0);
    assert_int_equal(rep->accepted, 2);
    assert_int_equal(out_take(st, &rev, &kind), 0);
    free(in);
    /* the second key from the first key's address: new for it, one event (an update) */
    in = two_keys("\"u6\"", "\"u6\"", "198.51.100.7");
    assert_int_equal(eng_ingest(e, (const uint8_t *)in, strlen(in), now_ms(), rep), 0);
    assert_int_equal(out_take(st, &rev, &kind), 1);
    assert_int_equal(kind, STORE_EV_UPDATED);
    free(in);
    free(rep);
    eng_free(e);
    store_free(st);
}

/* One use of the test key from ip, as its own batch (event id `id`). */
static size_t use_batch(char *buf, size_t size, const char *id, const char *ip)
{
    int n = snprintf(buf, size,
                     "{\"Records\":[{\"eventID\":\"%s\",\"eventTime\":\"2024-03-13T09:30:00Z\",\"eventSource\":\"sts.amazonaws.com\","
                     "\"eventName\":\"GetCallerIdentity\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"%s\","
                     "\"userAgent\":\"aws-cli/2.15.0\",\"userIdentity\":{\"type\":\"AssumedRole\","
                     "\"accessKeyId\":\"ASIAENGINETEST000001\",\"accountId\":\"111122223333\","
                     "\"arn\":\"arn:aws:sts::111122223333:assumed-role/r/fn\"}}]}", id, ip);
    assert_true(n > 0 && (size_t)n < size);
    return (size_t)n;
}

/* A notable change whose finding write failed after its key committed: the sender's retry is all
 * duplicates, and its repair must still write the evidence and queue the event (it was lost). */
static void test_lost_update_repaired(void **state)
{
    (void)state;
    struct flaky f = { .inner = store_mem_new() };
    flaky_wrap(&f);
    const char *const sinks[] = { "s" };
    assert_int_equal(store_out_open(f.inner, sinks, 1), 0);
    struct eng *e = eng_new(&f.base, NULL);
    struct eng_report *rep = malloc(sizeof *rep);
    assert_non_null(e);
    assert_non_null(rep);
    uint64_t rev = 0;
    int kind = 0;
    assert_int_equal(eng_ingest(e, (const uint8_t *)batch, sizeof batch - 1, now_ms(), rep), 0);
    assert_int_equal(out_take(f.inner, &rev, &kind), 1);
    char buf[2048];
    size_t len = use_batch(buf, sizeof buf, "u2", "203.0.113.5");
    f.fail_puts = 1;
    assert_int_equal(eng_ingest(e, (const uint8_t *)buf, len, now_ms(), rep), CW_EUNAVAIL);
    assert_int_equal(eng_ingest(e, (const uint8_t *)buf, len, now_ms(), rep), 0);  /* the retry */
    assert_int_equal(rep->duplicates, 1);
    assert_int_equal(out_take(f.inner, &rev, &kind), 1);
    assert_int_equal(rev, 2);
    struct store_finding fd;
    assert_int_equal(store_finding_get(f.inner, "cwf-ASIAENGINETEST000001", &fd), 0);
    assert_non_null(strstr(fd.evidence_json, "203.0.113.5"));
    store_finding_free(&fd);
    /* a plain duplicate after that changes nothing */
    assert_int_equal(eng_ingest(e, (const uint8_t *)buf, len, now_ms(), rep), 0);
    assert_int_equal(out_take(f.inner, &rev, &kind), 0);
    /* resolved, then new outside use whose write is lost: the repair reopens it, as the write would */
    assert_int_equal(store_finding_patch(f.inner, "cwf-ASIAENGINETEST000001", STORE_ST_RESOLVED, NULL, now_ms()), 0);
    assert_int_equal(out_take(f.inner, &rev, &kind), 1);
    len = use_batch(buf, sizeof buf, "u3", "203.0.113.9");
    f.fail_puts = 1;
    assert_int_equal(eng_ingest(e, (const uint8_t *)buf, len, now_ms(), rep), CW_EUNAVAIL);
    assert_int_equal(eng_ingest(e, (const uint8_t *)buf, len, now_ms(), rep), 0);
    assert_int_equal(out_take(f.inner, &rev, &kind), 1);
    assert_int_equal(kind, STORE_EV_STATUS);
    assert_int_equal(store_finding_get(f.inner, "cwf-ASIAENGINETEST000001", &fd), 0);
    assert_int_equal(fd.status, STORE_ST_OPEN);
    store_finding_free(&fd);
    free(rep);
    eng_free(e);
    store_free(f.inner);
}

/* Every field of a use is the thief's: a stream of new addresses (each sorting first, so each one
 * is kept and "new") pushes at most STORE_UPDATES_MAX "updated" events for the finding, not one per
 * batch; the finding still keeps the evidence. */
static void test_update_flood_capped(void **state)
{
    (void)state;
    struct store *st = store_mem_new();
    const char *const sinks[] = { "s" };
    assert_int_equal(store_out_open(st, sinks, 1), 0);
    struct eng *e = eng_new(st, NULL);
    struct eng_report *rep = malloc(sizeof *rep);
    assert_non_null(e);
    assert_non_null(rep);
    uint64_t rev = 0;
    int kind = 0;
    assert_int_equal(eng_ingest(e, (const uint8_t *)batch, sizeof batch - 1, now_ms(), rep), 0);
    size_t events = out_take(st, &rev, &kind), updated = 0;
    char buf[2048], id[16], ip[32];
    for (int i = 250; i >= 100; i--) {
        snprintf(id, sizeof id, "f%d", i);
        snprintf(ip, sizeof ip, "198.51.100.%d", i);
        size_t len = use_batch(buf, sizeof buf, id, ip);
        assert_int_equal(eng_ingest(e, (const uint8_t *)buf, len, now_ms(), rep), 0);
        size_t got = out_take(st, &rev, &kind);
        if (got)
            assert_true(kind == STORE_EV_UPDATED);
        updated += got;
    }
    assert_true(updated >= 4);  /* growth is reported, up to the cap, and each severity raise
                                 * (at most three: low, medium, high, critical) beyond it */
    assert_true(updated <= STORE_UPDATES_MAX + 3);
    assert_true(events + updated < 151 / 3);    /* not one per batch */
    struct store_finding fd;
    assert_int_equal(store_finding_get(st, "cwf-ASIAENGINETEST000001", &fd), 0);
    assert_non_null(strstr(fd.evidence_json, "198.51.100.100"));  /* the evidence is all kept */
    store_finding_free(&fd);
    free(rep);
    eng_free(e);
    store_free(st);
}

/* Two access keys whose akid hashes (32-bit FNV-1a, evbuf.h) are equal: the engine sorts by that
 * hash first, so their events fall into one run, which must still be ordered by key (then event)
 * before keys are split. Events arrive interleaved, A B A B, with one repeat of A's use. The pair
 * was found by a search over generated akids (FNV-1a of both is 0x777c07c3). */
#define COLL_A "ASIACOLLIDEU5XCAAAAA"
#define COLL_B "ASIACOLLIDEIJLDAAAAA"
#define COLL_ISSUE(id, akid)                                                                                      \
    "{\"eventID\":\"" id "\",\"eventTime\":\"2024-03-13T08:33:21Z\",\"eventSource\":\"sts.amazonaws.com\","     \
    "\"eventName\":\"AssumeRole\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"lambda.amazonaws.com\","     \
    "\"userAgent\":\"lambda.amazonaws.com\",\"userIdentity\":{\"type\":\"AWSService\",\"invokedBy\":"           \
    "\"lambda.amazonaws.com\"},\"requestParameters\":{\"roleArn\":\"arn:aws:iam::111122223333:role/r\","         \
    "\"roleSessionName\":\"fn\"},\"responseElements\":{\"credentials\":{\"accessKeyId\":\"" akid "\","          \
    "\"expiration\":\"Mar 13, 2024, 8:33:21 PM\"}}}"
#define COLL_USE(id, akid)                                                                                        \
    "{\"eventID\":\"" id "\",\"eventTime\":\"2024-03-13T09:00:00Z\",\"eventSource\":\"sts.amazonaws.com\","     \
    "\"eventName\":\"GetCallerIdentity\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"198.51.100.7\","     \
    "\"userAgent\":\"aws-cli/2.15.0\",\"userIdentity\":{\"type\":\"AssumedRole\",\"accessKeyId\":\"" akid "\"," \
    "\"accountId\":\"111122223333\",\"arn\":\"arn:aws:sts::111122223333:assumed-role/r/fn\"}}"
static const char colliding[] = "{\"Records\":[" COLL_ISSUE("ia", COLL_A) "," COLL_ISSUE("ib", COLL_B) ","
                                COLL_USE("ua", COLL_A) "," COLL_USE("ub", COLL_B) "," COLL_USE("ua", COLL_A) "]}";

static void test_colliding_key_hashes(void **state)
{
    (void)state;
    struct store *st = store_mem_new();
    struct eng *e = eng_new(st, NULL);
    struct eng_report *rep = malloc(sizeof *rep);
    assert_non_null(e);
    assert_non_null(rep);
    assert_int_equal(eng_ingest(e, (const uint8_t *)colliding, sizeof colliding - 1, now_ms(), rep), 0);
    assert_int_equal(rep->records, 5);
    assert_int_equal(rep->keys, 2);        /* interleaved and unsorted, they would split into 4 */
    assert_int_equal(rep->duplicates, 1);  /* the repeat of ua, next to it once sorted */
    assert_int_equal(rep->created, 2);
    struct store_finding out;
    assert_int_equal(store_finding_get(st, "cwf-" COLL_A, &out), 0);
    store_finding_free(&out);
    assert_int_equal(store_finding_get(st, "cwf-" COLL_B, &out), 0);
    store_finding_free(&out);
    free(rep);
    eng_free(e);
    store_free(st);
}

/* The akid hash evbuf keeps (evbuf.c: FNV-1a, 32 bits), for picking keys that sort_order must
 * tell apart by their hash's last byte. */
static uint32_t akid_hash(const char *akid)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)akid; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

/* Enough events for sort_order's radix sort (ENG_RADIX_MIN): 150 pairs of keys whose hashes agree
 * in their low 24 bits and differ in the top 8 (found by a search here), each key issued and used,
 * every use sent twice, the records in an order that interleaves keys (a stride coprime to the
 * count). Sorted, each key's events are one run and each repeat sits next to its original: 300
 * keys, 300 duplicates. A sort that stopped a byte short, or left any event out of place, would
 * split a key or leave a repeat apart (counted as a new event of the key). */
static void test_many_events_sorted(void **state)
{
    (void)state;
    enum { KEYS = 300, RECS = 3 * KEYS, STRIDE = 7 };  /* 900 records; gcd(7, 900) = 1 */
    static char recs[RECS][1024];
    static char akids[KEYS][32];
    enum { SLOTS = 1 << 24 };
    uint32_t *by_low = calloc(SLOTS, sizeof *by_low);  /* low 24 bits -> candidate + 1; UINT32_MAX: paired */
    assert_non_null(by_low);
    int found = 0;
    for (uint32_t c = 0; found < KEYS && c < 4000000; c++) {
        char a[32];
        snprintf(a, sizeof a, "ASIASORTTEST%08u", c);
        uint32_t h = akid_hash(a), *slot = &by_low[h & (SLOTS - 1)];
        char b[32];
        if (*slot == UINT32_MAX)
            continue;
        if (*slot) {
            snprintf(b, sizeof b, "ASIASORTTEST%08u", *slot - 1);
            if (akid_hash(b) != h) {  /* same low 24 bits, another top byte */
                memcpy(akids[found++], b, sizeof b);
                memcpy(akids[found++], a, sizeof a);
                *slot = UINT32_MAX;   /* each candidate in one pair */
                continue;
            }
        }
        if (!*slot)
            *slot = c + 1;
    }
    free(by_low);
    assert_int_equal(found, KEYS);
    for (int k = 0; k < KEYS; k++) {
        char ia[16], ua[16];
        const char *akid = akids[k];
        snprintf(ia, sizeof ia, "i%d", k);
        snprintf(ua, sizeof ua, "u%d", k);
        snprintf(recs[3 * k], sizeof recs[0], COLL_ISSUE("%s", "%s"), ia, akid);
        snprintf(recs[3 * k + 1], sizeof recs[0], COLL_USE("%s", "%s"), ua, akid);
        snprintf(recs[3 * k + 2], sizeof recs[0], COLL_USE("%s", "%s"), ua, akid);
    }
    size_t cap = RECS * sizeof recs[0] + 64, len = 0;
    char *body = malloc(cap);
    assert_non_null(body);
    len += (size_t)snprintf(body + len, cap - len, "{\"Records\":[");
    for (int i = 0; i < RECS; i++)
        len += (size_t)snprintf(body + len, cap - len, "%s%s", i ? "," : "", recs[(size_t)i * STRIDE % RECS]);
    len += (size_t)snprintf(body + len, cap - len, "]}");
    struct store *st = store_mem_new();
    struct eng *e = eng_new(st, NULL);
    struct eng_report *rep = malloc(sizeof *rep);
    assert_non_null(e);
    assert_non_null(rep);
    assert_int_equal(eng_ingest(e, (const uint8_t *)body, len, now_ms(), rep), 0);
    assert_int_equal(rep->records, RECS);
    assert_int_equal(rep->keys, KEYS);
    assert_int_equal(rep->duplicates, KEYS);
    assert_int_equal(rep->created, KEYS);
    free(rep);
    eng_free(e);
    store_free(st);
    free(body);
}

/* A caller that keeps a batch the store refused and applies it again (scan, keep_failed): the
 * events its failed attempt committed are met in the dedup set on the retry, and are this
 * engine's own: counted as accepted, not as duplicates, and not lost if the caller gives up. */
static void test_kept_retry_counts_own_commits(void **state)
{
    (void)state;
    struct flaky f = { .inner = store_mem_new() };
    flaky_wrap(&f);
    struct eng_config cfg = { .keep_failed = 1 };
    struct eng *e = eng_new(&f.base, &cfg);
    struct eng_report *rep = malloc(sizeof *rep);
    assert_non_null(e);
    assert_non_null(rep);
    assert_int_equal(eng_decode(e, (const uint8_t *)colliding, sizeof colliding - 1, rep), 0);
    f.fail_puts = 1;  /* both keys commit (4 distinct events), then the finding write fails */
    assert_int_equal(eng_apply(e, now_ms(), rep), CW_EUNAVAIL);
    assert_int_equal(eng_pending(e), 5);
    /* committed, but their findings are not written: a caller that gave up now would miss both
     * findings, so none of the events counts as not lost (was 4: scan said 1 event lost) */
    assert_int_equal(eng_pending_committed(e), 0);
    assert_int_equal(eng_apply(e, now_ms(), rep), 0);
    assert_int_equal(rep->duplicates, 1);  /* only the input's own repeat of ua */
    assert_int_equal(rep->created, 2);     /* the retry's repairs write both findings */
    assert_int_equal(eng_pending(e), 0);
    assert_int_equal(eng_pending_committed(e), 0);
    /* a real duplicate afterwards is one */
    assert_int_equal(eng_decode(e, (const uint8_t *)colliding, sizeof colliding - 1, rep), 0);
    assert_int_equal(eng_apply(e, now_ms(), rep), 0);
    assert_int_equal(rep->duplicates, 5);
    free(rep);
    eng_free(e);
    store_free(f.inner);
}

/* A kept batch of more keys than one round: the first round commits (its keys judge no finding:
 * nothing more to write), the second round's commit fails. The first round's events are applied
 * whole, and are what eng_pending_committed counts; the second's are lost if the caller gives up. */
static void test_kept_retry_committed_rounds(void **state)
{
    (void)state;
    enum { N = ENG_KEYS_PER_ROUND + 8 };
    size_t cap = (size_t)N * 400 + 64, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    len += (size_t)snprintf(buf + len, cap - len, "{\"Records\":[");
    for (unsigned i = 0; i < N; i++) {
        char akid[32];
        snprintf(akid, sizeof akid, "ASIAROUNDS%010u", i);
        len += (size_t)snprintf(buf + len, cap - len,
                                "%s{\"eventID\":\"r%u\",\"eventTime\":\"2024-03-13T09:00:00Z\",\"eventSource\":"
                                "\"sts.amazonaws.com\",\"eventName\":\"GetCallerIdentity\",\"awsRegion\":\"us-east-1\","
                                "\"sourceIPAddress\":\"198.51.100.7\",\"userAgent\":\"aws-cli/2.15.0\",\"userIdentity\":"
                                "{\"type\":\"AssumedRole\",\"accessKeyId\":\"%s\",\"accountId\":\"111122223333\"}}",
                                i ? "," : "", i, akid);
        assert_true(len < cap);
    }
    len += (size_t)snprintf(buf + len, cap - len, "]}");
    struct flaky f = { .inner = store_mem_new(), .fail_commit = 2 };
    flaky_wrap(&f);
    struct eng_config cfg = { .keep_failed = 1 };
    struct eng *e = eng_new(&f.base, &cfg);
    struct eng_report *rep = malloc(sizeof *rep);
    assert_non_null(e);
    assert_non_null(rep);
    assert_int_equal(eng_decode(e, (const uint8_t *)buf, len, rep), 0);
    assert_int_equal(eng_pending(e), N);
    assert_int_equal(eng_apply(e, now_ms(), rep), CW_EUNAVAIL);
    assert_int_equal(eng_pending_committed(e), ENG_KEYS_PER_ROUND);
    assert_int_equal(eng_apply(e, now_ms(), rep), 0);  /* the retry: the first round met in the dedup set */
    assert_int_equal(rep->duplicates, 0);
    assert_int_equal(rep->keys, N);
    /* A failover that loses what the first attempt wrote (an asynchronous replica promoted): the
     * retry commits the first round's events again, and they still count once. Counted per attempt,
     * they were 2 x 512 committed of 520 pending, and the caller's "lost" (pending - committed)
     * wrapped around to ~1.8e19. */
    assert_int_equal(eng_decode(e, (const uint8_t *)buf, len, rep), 0);
    store_free(f.inner);
    f.inner = store_mem_new();
    f.commits = 0;
    assert_int_equal(eng_apply(e, now_ms(), rep), CW_EUNAVAIL);
    store_free(f.inner);
    f.inner = store_mem_new();  /* the failover: nothing of that attempt is left */
    f.commits = 0;
    assert_int_equal(eng_apply(e, now_ms(), rep), CW_EUNAVAIL);
    assert_int_equal(eng_pending(e), N);
    assert_int_equal(eng_pending_committed(e), ENG_KEYS_PER_ROUND);
    f.fail_commit = 0;
    assert_int_equal(eng_apply(e, now_ms(), rep), 0);
    assert_int_equal(rep->duplicates, 0);  /* the first round's events were this engine's own */
    free(rep);
    free(buf);
    eng_free(e);
    store_free(f.inner);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_repairs_lost_finding),
        cmocka_unit_test(test_colliding_key_hashes),
        cmocka_unit_test(test_many_events_sorted),
        cmocka_unit_test(test_kept_retry_counts_own_commits),
        cmocka_unit_test(test_kept_retry_committed_rounds),
        cmocka_unit_test(test_key_made_anew_updates_finding),
        cmocka_unit_test(test_state_life_bounded),
        cmocka_unit_test(test_finding_events),
        cmocka_unit_test(test_finding_events_two_keys),
        cmocka_unit_test(test_lost_update_repaired),
        cmocka_unit_test(test_update_flood_capped),
    };
    return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
