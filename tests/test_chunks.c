/* test_chunks.c — issue 17: an ingest holds at most one chunk of decoded events (engine.h).
 *
 * The packed event buffer (evbuf.h) on its own, then the engine's two passes over generated CloudTrail
 * bodies: a body applied whole and applied through many tiny chunks must leave the same findings and key
 * views and report the same counts; a body refused as a whole stores nothing even when pass 1 saw many
 * chunks; pass 2 never holds more than a chunk and one event; a stream decodes like a buffer and a
 * stream that cannot be read (or rewound) is CW_EIO; a store failure in pass 2 is CW_EUNAVAIL and the
 * sender's retry ends exactly where one clean ingest does. A scan's spill: buffers written to a file and
 * read back as pushed (a file cut short or corrupt refused), and pass 1 handing its full chunks to
 * eng_set_spill's callback instead of dropping them (falling back to two passes when it fails). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "engine.h"
#include "evbuf.h"
#include "store.h"

/* One wall clock for every ingest, so findings are stamped alike; the real one, since the stores expire
 * key state by their own clock (a fixed past time would expire every key between two chunks). */
static int64_t t_now_ms;
#define T_KEYS 240                /* temporary keys in a generated body */
#define T_ROUNDS 6                /* records per key: issuance, marked uses, outside uses or others */
#define T_CHUNK_PER_ROUND ((size_t)256 << 10) /* a round of the many-keys body spans a few chunks */
#define T_TINY_CHUNK 2048         /* a handful of events: pass 2 flushes hundreds of chunks */
#define T_ALIGN_SLACK 7           /* evbuf.c starts each event on 8 bytes: up to 7 of padding before it */
#define T_REC_MAX 2048            /* one generated record */
#define T_FAIL_COMMIT 4           /* the store's commit call that fails in the failure test */

/* ---- a CloudTrail body generator ----------------------------------------------------------------- */

struct gen {
    char *p;
    size_t len, cap;
    size_t seq;                 /* records written: event ids and times follow it */
    char far[T_REC_MAX];        /* a record repeated at the very end of the body */
};

static void gen_append(struct gen *g, const char *s)
{
    size_t n = strlen(s);
    if (g->len + n + 1 > g->cap) {
        g->cap = (g->len + n + 1) * 2;
        g->p = realloc(g->p, g->cap);
        assert_non_null(g->p);
    }
    memcpy(g->p + g->len, s, n + 1);
    g->len += n;
}

static void gen_record(struct gen *g, const char *rec)
{
    gen_append(g, g->seq ? "," : "{\"Records\":[");
    gen_append(g, rec);
    g->seq++;
}

static void akid_of(size_t k, char *out, size_t size)
{
    snprintf(out, size, "ASIACHUNKTEST%07zu", k);
}

/* The id and the time of the next record: every record its own second, so no evidence depends on
 * which of two equal times is applied first. */
static void id_time(const struct gen *g, char *id, char *when)
{
    snprintf(id, 24, "chunk-%08zu", g->seq);
    size_t s = g->seq;
    snprintf(when, 24, "2024-03-13T%02zu:%02zu:%02zuZ", 8 + s / 3600, s / 60 % 60, s % 60);
}

static void rec_issue(const struct gen *g, size_t k, char *rec)
{
    char id[24], when[24], akid[32];
    id_time(g, id, when);
    akid_of(k, akid, sizeof akid);
    snprintf(rec, T_REC_MAX,
             "{\"eventVersion\":\"1.08\",\"eventID\":\"%s\",\"eventTime\":\"%s\",\"eventSource\":\"sts.amazonaws.com\","
             "\"eventName\":\"AssumeRole\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"lambda.amazonaws.com\","
             "\"userAgent\":\"lambda.amazonaws.com\",\"userIdentity\":{\"type\":\"AWSService\",\"invokedBy\":\"lambda.amazonaws.com\"},"
             "\"requestParameters\":{\"roleArn\":\"arn:aws:iam::111122223333:role/fn%zu-role\",\"roleSessionName\":\"fn%zu\"},"
             "\"responseElements\":{\"credentials\":{\"accessKeyId\":\"%s\",\"expiration\":\"Mar 13, 2024, 8:33:21 PM\"}}}",
             id, when, k, k, akid);
}

#define T_UA_MARKED "Boto3/1.34.20 md/Botocore#1.34.20 ua/2.0 os/linux#5.10 lang/python#3.12.1 exec-env/AWS_Lambda_python3.12"
#define T_UA_CLI "aws-cli/2.15.0 ua/2.0 os/linux#6.1 md/arch#x86_64"

/* A use of key k: from ip, with ua, calling source/name; failed when error is set. */
static void rec_use(const struct gen *g, size_t k, const char *ip, const char *ua, const char *source,
                    const char *name, int error, char *rec)
{
    char id[24], when[24], akid[32];
    id_time(g, id, when);
    akid_of(k, akid, sizeof akid);
    snprintf(rec, T_REC_MAX,
             "{\"eventVersion\":\"1.08\",\"eventID\":\"%s\",\"eventTime\":\"%s\",\"eventSource\":\"%s\","
             "\"eventName\":\"%s\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"%s\",\"userAgent\":\"%s\","
             "\"userIdentity\":{\"type\":\"AssumedRole\",\"accessKeyId\":\"%s\",\"accountId\":\"111122223333\","
             "\"arn\":\"arn:aws:sts::111122223333:assumed-role/fn%zu-role/fn%zu\"}%s}",
             id, when, source, name, ip, ua, akid, k, k, error ? ",\"errorCode\":\"AccessDenied\"" : "");
}

/* Not a use of a temporary key (an IAM user's long-term key): counted as ignored. */
static void rec_iam_user(const struct gen *g, size_t k, char *rec)
{
    char id[24], when[24];
    id_time(g, id, when);
    snprintf(rec, T_REC_MAX,
             "{\"eventVersion\":\"1.08\",\"eventID\":\"%s\",\"eventTime\":\"%s\",\"eventSource\":\"s3.amazonaws.com\","
             "\"eventName\":\"ListBuckets\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"192.0.2.10\",\"userAgent\":\"%s\","
             "\"userIdentity\":{\"type\":\"IAMUser\",\"accessKeyId\":\"AKIACHUNKUSER%07zu\",\"accountId\":\"111122223333\","
             "\"arn\":\"arn:aws:iam::111122223333:user/u%zu\"}}",
             id, when, T_UA_CLI, k, k);
}

/* A malformed record (no eventTime): skipped with a reason, the rest of the body still counts. */
static void rec_malformed(const struct gen *g, size_t k, char *rec)
{
    char id[24], when[24], akid[32];
    id_time(g, id, when);
    akid_of(k, akid, sizeof akid);
    snprintf(rec, T_REC_MAX,
             "{\"eventVersion\":\"1.08\",\"eventID\":\"%s\",\"eventSource\":\"sts.amazonaws.com\",\"eventName\":"
             "\"GetCallerIdentity\",\"userIdentity\":{\"type\":\"AssumedRole\",\"accessKeyId\":\"%s\"}}",
             id, akid);
}

/* Record `round` of key k. Keys k % 3 == 0 are used from two outside addresses after their marked
 * uses (findings); k % 3 == 1 stay inside; k % 3 == 2 have records of other kinds among theirs. */
static void rec_of(const struct gen *g, size_t k, int round, char *rec)
{
    static const char *const src[] = {"dynamodb.amazonaws.com", "s3.amazonaws.com", "sqs.amazonaws.com"};
    static const char *const act[] = {"PutItem", "GetObject", "SendMessage"};
    char inside[24], outside[24];
    snprintf(inside, sizeof inside, "3.5.140.%zu", k % 250 + 1);
    snprintf(outside, sizeof outside, "%s.%zu", round == 4 ? "198.51.100" : "203.0.113", k % 200 + 1);
    if (round == 0)
        rec_issue(g, k, rec);
    else if (round >= 4 && k % 3 == 0)
        rec_use(g, k, outside, T_UA_CLI, round == 4 ? "sts.amazonaws.com" : "iam.amazonaws.com",
                round == 4 ? "GetCallerIdentity" : "ListUsers", round == 5, rec);
    else if (round == 4 && k % 3 == 2)
        rec_iam_user(g, k, rec);
    else if (round == 5 && k % 3 == 2 && k % 5 == 0)
        rec_malformed(g, k, rec);
    else
        rec_use(g, k, inside, T_UA_MARKED, src[round % 3], act[round % 3], 0, rec);
}

/* A body of n_keys keys, their records interleaved round by round (so each key's events lie far
 * apart and fall in many chunks), with exact repeats: one right after its record, one at the end. */
static char *gen_body(size_t n_keys, size_t *len)
{
    struct gen *g = calloc(1, sizeof *g);
    assert_non_null(g);
    char rec[T_REC_MAX];
    for (int r = 0; r < T_ROUNDS; r++) {
        for (size_t k = 0; k < n_keys; k++) {
            rec_of(g, k, r, rec);
            gen_record(g, rec);
            if (k % 40 == 7 && r == 2)
                gen_record(g, rec);  /* the same record twice in a row: a duplicate */
            if (k == 3 && r == 1)
                memcpy(g->far, rec, sizeof rec);
        }
    }
    gen_record(g, g->far);  /* the same record again, hundreds of records later */
    gen_append(g, "]}");
    char *out = g->p;
    *len = g->len;
    free(g);
    return out;
}

/* ---- helpers ------------------------------------------------------------------------------------- */

static struct eng *eng_chunked(struct store *st, size_t chunk)
{
    struct eng_config cfg = {.chunk_bytes = chunk};
    struct eng *e = eng_new(st, &cfg);
    assert_non_null(e);
    return e;
}

static struct eng_report *report_new(void)
{
    struct eng_report *r = calloc(1, sizeof *r);
    assert_non_null(r);
    return r;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The counts that do not depend on the chunking (keys does: engine.h, a key in two chunks counts twice),
 * the skips, and the finding ids as a set. */
static void same_report(struct eng_report *a, struct eng_report *b)
{
    assert_int_equal(a->records, b->records);
    assert_int_equal(a->accepted, b->accepted);
    assert_int_equal(a->ignored, b->ignored);
    assert_int_equal(a->duplicates, b->duplicates);
    assert_int_equal(a->skipped, b->skipped);
    assert_int_equal(a->findings, b->findings);
    assert_int_equal(a->created, b->created);
    assert_int_equal(a->n_skips, b->n_skips);
    for (size_t i = 0; i < a->n_skips; i++) {
        assert_int_equal(a->skips[i].index, b->skips[i].index);
        assert_string_equal(a->skips[i].reason, b->skips[i].reason);
    }
    assert_int_equal(a->n_ids, b->n_ids);
    qsort(a->ids, a->n_ids, sizeof a->ids[0], cmp_id);
    qsort(b->ids, b->n_ids, sizeof b->ids[0], cmp_id);
    for (size_t i = 0; i < a->n_ids; i++)
        assert_string_equal(a->ids[i], b->ids[i]);
}

/* Every key's view and finding alike in both stores (read through engines ea and eb); returns the
 * number of findings. */
static size_t same_stores(struct eng *ea, struct store *sa, struct eng *eb, struct store *sb, size_t n_keys)
{
    size_t found = 0;
    for (size_t k = 0; k < n_keys; k++) {
        char akid[32], fid[STORE_ID_MAX];
        akid_of(k, akid, sizeof akid);
        char *ja = NULL, *jb = NULL;
        assert_int_equal(eng_key_json(ea, akid, &ja), 0);
        assert_int_equal(eng_key_json(eb, akid, &jb), 0);
        if (strcmp(ja, jb) != 0)
            fail_msg("key %s differs:\n%s\n%s", akid, ja, jb);
        free(ja);
        free(jb);
        eng_finding_id(akid, fid, sizeof fid);
        struct store_finding fa, fb;
        int ra = store_finding_get(sa, fid, &fa), rb = store_finding_get(sb, fid, &fb);
        assert_int_equal(ra, rb);
        if (ra == CW_ENOTFOUND)
            continue;
        assert_int_equal(ra, 0);
        found++;
        if (strcmp(fa.evidence_json, fb.evidence_json) != 0)
            fail_msg("finding %s differs:\n%s\n%s", fid, fa.evidence_json, fb.evidence_json);
        assert_int_equal(fa.status, fb.status);
        assert_int_equal(fa.created_ms, fb.created_ms);
        assert_int_equal(fa.updated_ms, fb.updated_ms);
        store_finding_free(&fa);
        store_finding_free(&fb);
    }
    return found;
}

/* ---- evbuf ----------------------------------------------------------------------------------------- */

/* Every string field filled to its bound (size - 1 bytes) with `c`, every number set from `seed`. */
static void event_full(struct ev_event *ev, char c, int seed)
{
    memset(ev, 0, sizeof *ev);
    ev->kind = EV_USE;
    ev->flags = EV_F_MARKED | EV_F_FAILED | EV_F_WL_MARKED;
    ev->time = 1710318801 + seed;
    ev->expires = -7 - seed;
    ev->session_created = INT64_MAX - seed;
    char *f[] = {ev->id, ev->akid, ev->account, ev->region, ev->source_ip, ev->action, ev->error, ev->user_agent,
                 ev->runtime, ev->workload_id, ev->role_arn, ev->vpce_account, ev->cold_arn};
    size_t n[] = {EV_ID_MAX, EV_AKID_MAX, EV_ACCOUNT_MAX, EV_REGION_MAX, EV_IP_MAX, EV_ACTION_MAX, EV_ERROR_MAX,
                  EV_UA_MAX, EV_RUNTIME_MAX, EV_WORKLOAD_ID_MAX, EV_ARN_MAX, EV_ACCOUNT_MAX, EV_COLD_ARN_MAX};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        memset(f[i], c + (char)i, n[i] - 1);
        f[i][n[i] - 1] = 0;
    }
    ev->wl_kind = 3;
    ev->wl_ident = 0x11;
    ev->wl_weak = 0x22;
    ev->wl_markers = 0x44;
}

static void same_event(const struct evbuf *b, size_t i, const struct ev_event *want, uint64_t hash)
{
    struct ev_event got;
    evb_get(b, i, &got);
    assert_memory_equal(&got, want, sizeof got);  /* every byte: what follows a NUL is zero in both */
    assert_int_equal(evb_hash(b, i), hash);
    assert_string_equal(evb_akid(b, i), want->akid);
    assert_string_equal(evb_id(b, i), want->id);
}

/* The packed size of the largest event, with the padding that may precede it. */
static size_t max_event_bytes(void)
{
    struct evbuf b;
    struct ev_event ev;
    evb_init(&b);
    event_full(&ev, 'a', 0);
    assert_int_equal(evb_push(&b, &ev, 1), 0);
    size_t n = evb_bytes(&b) + T_ALIGN_SLACK;
    evb_free(&b);
    return n;
}

/* evb_push_own's identity (the memory store's, store_ids_private): one event pushed twice has one
 * hash, and an event that differs from it in any one field, number or workload bit, or whose
 * strings split at another place ("ab", "c" against "a", "bc"), has another; never 0. */
static uint64_t own_of(const struct ev_event *ev)
{
    struct evbuf b;
    evb_init(&b);
    assert_int_equal(evb_push_own(&b, ev), 0);
    assert_int_equal(evb_push_own(&b, ev), 0);
    uint64_t h = evb_hash(&b, 0);
    assert_int_equal(evb_hash(&b, 1), h);
    assert_true(h != 0);
    struct ev_event got;
    evb_get(&b, 1, &got);
    assert_memory_equal(&got, ev, sizeof got);
    evb_free(&b);
    return h;
}

static void test_evbuf_own_identity(void **state)
{
    (void)state;
    enum { VARIANTS = 13 + 9 + 2 };
    static struct ev_event base, v[VARIANTS];
    event_full(&base, 'a', 3);
    base.id[10] = 0;  /* shorter strings, so a split can move */
    memset(base.id + 11, 0, sizeof base.id - 11);
    base.region[4] = 0;
    memset(base.region + 5, 0, sizeof base.region - 5);
    uint64_t h0 = own_of(&base);
    size_t n = 0;
    for (int f = 0; f < 13; f++, n++) {  /* each string field, one byte changed */
        v[n] = base;
        char *fs[] = {v[n].id, v[n].akid, v[n].account, v[n].region, v[n].source_ip, v[n].action, v[n].error,
                      v[n].user_agent, v[n].runtime, v[n].workload_id, v[n].role_arn, v[n].vpce_account,
                      v[n].cold_arn};
        fs[f][0] ^= 1;
    }
    v[n] = base, v[n++].kind ^= 1;
    v[n] = base, v[n++].flags ^= 1u << 7;
    v[n] = base, v[n++].time ^= 1;
    v[n] = base, v[n++].expires ^= 1;
    v[n] = base, v[n++].session_created ^= 1;
    v[n] = base, v[n++].wl_kind ^= 1;
    v[n] = base, v[n++].wl_ident ^= 1;
    v[n] = base, v[n++].wl_weak ^= 1;
    v[n] = base, v[n++].wl_markers ^= 1;
    v[n] = base;  /* the id's last byte moved to the front of the account, packed after it */
    v[n].id[9] = 0;
    memmove(v[n].account + 1, v[n].account, sizeof v[n].account - 2);
    v[n++].account[0] = base.id[9];
    v[n] = base;  /* the region's last byte moved to the next string's front */
    v[n].region[3] = 0;
    memmove(v[n].source_ip + 1, v[n].source_ip, sizeof v[n].source_ip - 2);
    v[n++].source_ip[0] = base.region[3];
    assert_int_equal(n, VARIANTS);
    uint64_t hs[VARIANTS];
    for (size_t i = 0; i < n; i++) {
        hs[i] = own_of(&v[i]);
        assert_true(hs[i] != h0);
        for (size_t j = 0; j < i; j++)
            assert_true(hs[i] != hs[j]);
    }
}

static void test_evbuf_round_trip(void **state)
{
    (void)state;
    struct evbuf b, c;
    evb_init(&b);
    evb_init(&c);
    struct ev_event full, empty, other;
    event_full(&full, 'A', 1);
    memset(&empty, 0, sizeof empty);  /* every string empty, every number 0 */
    event_full(&other, 'a', 2);
    other.id[5] = 0;                  /* a shorter field: the rest of it must come back zero */
    memset(other.id + 6, 0, sizeof other.id - 6);
    assert_int_equal(evb_push(&b, &full, 0x0123456789abcdefULL), 0);
    assert_int_equal(evb_push(&b, &empty, 0), 0);
    assert_int_equal(evb_push(&b, &other, UINT64_MAX), 0);
    assert_int_equal(evb_count(&b), 3);
    same_event(&b, 0, &full, 0x0123456789abcdefULL);
    same_event(&b, 1, &empty, 0);
    same_event(&b, 2, &other, UINT64_MAX);
    /* an event is its header and its strings: an empty one is far smaller than the struct (the point) */
    struct evbuf small;
    evb_init(&small);
    assert_int_equal(evb_push(&small, &empty, 0), 0);
    assert_true(evb_bytes(&small) < sizeof empty / 8);
    evb_free(&small);
    /* copied between buffers, as packed */
    assert_int_equal(evb_copy(&c, &b, 2), 0);
    assert_int_equal(evb_copy(&c, &b, 0), 0);
    same_event(&c, 0, &other, UINT64_MAX);
    same_event(&c, 1, &full, 0x0123456789abcdefULL);
    /* truncated: the first events stay, the next push lands where the dropped one was */
    size_t two = evb_bytes(&b);
    assert_int_equal(evb_push(&b, &full, 9), 0);
    evb_truncate(&b, 3);
    assert_true(evb_bytes(&b) >= two && evb_bytes(&b) <= two + T_ALIGN_SLACK);  /* its padding may stay */
    evb_truncate(&b, 1);
    assert_int_equal(evb_count(&b), 1);
    assert_int_equal(evb_push(&b, &other, 5), 0);
    same_event(&b, 0, &full, 0x0123456789abcdefULL);
    same_event(&b, 1, &other, 5);
    evb_truncate(&b, 7);  /* more than held: nothing changes */
    assert_int_equal(evb_count(&b), 2);
    evb_truncate(&b, 0);
    assert_int_equal(evb_count(&b), 0);
    assert_int_equal(evb_bytes(&b), 0);
    evb_free(&b);
    evb_free(&c);
}

/* The spill file's form (evbuf.c): a 24-byte header (magic, 0, event count, arena bytes), then the
 * slots, then the arena. The test corrupts it at these offsets. */
#define T_FH_COUNT 8
#define T_FH_BYTES 16
#define T_FH_SIZE 24

/* A fresh temporary file holding b, rewound. */
static int file_of(const struct evbuf *b)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    int fd = dup(fileno(f));
    fclose(f);
    assert_true(fd >= 0);
    assert_int_equal(evb_write(b, fd), 0);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

/* Overwrites 8 bytes at off of fd, rewound. */
static void poke(int fd, off_t off, uint64_t v)
{
    assert_int_equal(pwrite(fd, &v, sizeof v, off), (ssize_t)sizeof v);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
}

/* Buffers written to a file one after the other (scan's spill) come back one at a time with every
 * field, hash and akid hash as pushed, then the end; a header cut short, not its own, or above the
 * bounds, a file cut short, and an event whose string runs past its field are refused. */
static void test_evbuf_file_round_trip(void **state)
{
    (void)state;
    struct evbuf a, b, back;
    evb_init(&a);
    evb_init(&b);
    evb_init(&back);
    struct ev_event full, empty, other;
    event_full(&full, 'A', 1);
    memset(&empty, 0, sizeof empty);
    event_full(&other, 'a', 2);
    memset(other.id + 5, 0, sizeof other.id - 5);  /* a shorter field: padding before the next event */
    assert_int_equal(evb_push(&a, &full, 0x0123456789abcdefULL), 0);
    assert_int_equal(evb_push(&a, &other, UINT64_MAX), 0);
    assert_int_equal(evb_push(&a, &empty, 0), 0);
    assert_int_equal(evb_push_own(&b, &other), 0);
    assert_int_equal(evb_push(&b, &full, 7), 0);
    evb_truncate(&b, 1);  /* the padding evb_truncate keeps is no fault */
    int fd = file_of(&a);
    assert_int_equal(lseek(fd, 0, SEEK_END), (off_t)evb_file_bytes(&a));
    assert_int_equal(evb_write(&b, fd), 0);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    int end = 1;
    assert_int_equal(evb_read_next(&back, fd, &end), 0);
    assert_int_equal(end, 0);
    assert_int_equal(evb_count(&back), 3);
    same_event(&back, 0, &full, 0x0123456789abcdefULL);
    same_event(&back, 1, &other, UINT64_MAX);
    same_event(&back, 2, &empty, 0);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(evb_khash(&back, i), evb_khash(&a, i));
    assert_int_equal(evb_read_next(&back, fd, &end), 0);
    assert_int_equal(evb_count(&back), 1);
    same_event(&back, 0, &other, evb_hash(&b, 0));
    assert_int_equal(evb_khash(&back, 0), evb_khash(&b, 0));
    assert_int_equal(evb_read_next(&back, fd, &end), 0);
    assert_int_equal(end, 1);
    assert_int_equal(evb_count(&back), 0);
    /* cut short: in the header, in the slots, in the arena */
    off_t cuts[] = { T_FH_SIZE - 1, T_FH_SIZE + 4, (off_t)evb_file_bytes(&a) - 1 };
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        assert_int_equal(ftruncate(fd, cuts[k]), 0);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        assert_int_equal(evb_read_next(&back, fd, &end), CW_EFORMAT);
        assert_int_equal(evb_count(&back), 0);
    }
    close(fd);
    fd = file_of(&a);
    poke(fd, 0, 0x1234);  /* not a spill header */
    assert_int_equal(evb_read_next(&back, fd, &end), CW_EFORMAT);
    close(fd);
    fd = file_of(&a);
    poke(fd, T_FH_COUNT, EVB_MAX_EVENTS + 1);
    assert_int_equal(evb_read_next(&back, fd, &end), CW_ETOOBIG);
    poke(fd, T_FH_COUNT, 3);
    poke(fd, T_FH_BYTES, (uint64_t)EVB_MAX_BYTES + 1);
    assert_int_equal(evb_read_next(&back, fd, &end), CW_ETOOBIG);
    poke(fd, T_FH_BYTES, evb_bytes(&a));
    assert_int_equal(evb_read_next(&back, fd, &end), 0);  /* restored: read again */
    same_event(&back, 2, &empty, 0);
    close(fd);
    /* event 0's akid (31 'B's, then its NUL): a byte changed (its akid hash no longer its own), and
     * its NUL overwritten (the string would run into the next field) */
    for (int k = 0; k < 2; k++) {
        fd = file_of(&a);
        uint8_t raw[4096];
        ssize_t n = pread(fd, raw, sizeof raw, 0);
        assert_true(n == (ssize_t)evb_file_bytes(&a));
        char want[EV_AKID_MAX];
        memcpy(want, full.akid, sizeof want);  /* with its NUL */
        uint8_t *at = memmem(raw, (size_t)n, want, strlen(full.akid) + 1);
        assert_non_null(at);
        at[k ? strlen(full.akid) : 3] = 'Z';
        assert_int_equal(pwrite(fd, raw, (size_t)n, 0), n);
        assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
        assert_int_equal(evb_read_next(&back, fd, &end), CW_EFORMAT);
        assert_int_equal(evb_count(&back), 0);
        close(fd);
    }
    evb_free(&a);
    evb_free(&b);
    evb_free(&back);
}

/* evb_trim keeps a small buffer's memory for the next batch and frees a large one's. */
static void test_evbuf_trim(void **state)
{
    (void)state;
    struct evbuf b;
    struct ev_event ev;
    evb_init(&b);
    event_full(&ev, 'k', 3);
    assert_int_equal(evb_push(&b, &ev, 1), 0);
    uint8_t *arena = b.arena;
    size_t cap = b.cap;
    evb_trim(&b, cap);  /* not above keep_bytes: kept, emptied */
    assert_ptr_equal(b.arena, arena);
    assert_int_equal(b.cap, cap);
    assert_int_equal(evb_count(&b), 0);
    assert_int_equal(evb_push(&b, &ev, 2), 0);
    same_event(&b, 0, &ev, 2);
    evb_trim(&b, cap - 1);  /* above: freed */
    assert_null(b.arena);
    assert_null(b.slot);
    assert_int_equal(b.cap, 0);
    assert_int_equal(evb_count(&b), 0);
    assert_int_equal(evb_push(&b, &ev, 3), 0);  /* and usable again */
    same_event(&b, 0, &ev, 3);
    evb_free(&b);
}

/* Pushing the largest events until the buffer refuses: CW_ETOOBIG before EVB_MAX_BYTES is passed, the
 * buffer as it was (its events readable), and its end within one event of the bound, so a chunk must
 * stay below EVB_MAX_BYTES by at least one event (api_config.h's API_MAX_CHUNK_BYTES). ~256 MB, 0.3 s. */
static void test_evbuf_bound(void **state)
{
    (void)state;
    struct evbuf b;
    struct ev_event ev;
    evb_init(&b);
    event_full(&ev, 'm', 4);
    size_t n = 0;
    int rc;
    while ((rc = evb_push(&b, &ev, n)) == 0)
        n++;
    assert_int_equal(rc, CW_ETOOBIG);
    assert_int_equal(evb_count(&b), n);
    assert_true(evb_bytes(&b) <= EVB_MAX_BYTES);
    assert_true(evb_bytes(&b) + max_event_bytes() > EVB_MAX_BYTES);
    assert_int_equal(evb_copy(&b, &b, 0), CW_ETOOBIG);
    assert_int_equal(evb_count(&b), n);
    same_event(&b, n - 1, &ev, n - 1);
    same_event(&b, 0, &ev, 0);
    evb_free(&b);
}

/* ---- whole and chunked ------------------------------------------------------------------------------ */

static void test_whole_equals_chunked(void **state)
{
    (void)state;
    size_t len;
    char *body = gen_body(T_KEYS, &len);
    struct store *sa = store_mem_new(), *sb = store_mem_new();
    struct eng *ea = eng_chunked(sa, 0), *eb = eng_chunked(sb, T_TINY_CHUNK);
    struct eng_report *ra = report_new(), *rb = report_new();
    /* the tiny chunk really takes pass 2, the default one does not */
    assert_int_equal(eng_decode(eb, (const uint8_t *)body, len, rb), 0);
    assert_true(eng_overflowed(eb));
    assert_int_equal(eng_decode(ea, (const uint8_t *)body, len, ra), 0);
    assert_false(eng_overflowed(ea));
    eng_discard(ea);
    eng_discard(eb);
    assert_int_equal(eng_ingest(ea, (const uint8_t *)body, len, t_now_ms, ra), 0);
    assert_int_equal(eng_ingest(eb, (const uint8_t *)body, len, t_now_ms, rb), 0);
    /* the body is what it means to be: every kind of record is there */
    assert_int_equal(ra->records, T_KEYS * T_ROUNDS + T_KEYS / 40 + 1);
    assert_int_equal(ra->duplicates, T_KEYS / 40 + 1);
    assert_true(ra->ignored > 0 && ra->skipped > 0);
    assert_int_equal(ra->created, (T_KEYS + 2) / 3);
    assert_true(rb->keys > ra->keys);  /* keys counted per chunk (engine.h) */
    same_report(ra, rb);
    assert_int_equal(same_stores(ea, sa, eb, sb, T_KEYS), (T_KEYS + 2) / 3);
    struct store_mem_stats ma, mb;
    store_mem_stats(sa, &ma);
    store_mem_stats(sb, &mb);
    assert_int_equal(ma.keys, mb.keys);
    assert_int_equal(ma.findings, mb.findings);
    /* and again: all duplicates, through either path */
    assert_int_equal(eng_ingest(eb, (const uint8_t *)body, len, t_now_ms, rb), 0);
    assert_int_equal(rb->accepted, 0);
    assert_int_equal(rb->duplicates, ra->accepted + ra->duplicates);
    free(ra);
    free(rb);
    eng_free(ea);
    eng_free(eb);
    store_free(sa);
    store_free(sb);
    free(body);
}

/* More findings than the report names (ENG_FINDINGS_MAX), each key's records in several chunks: a
 * finding raised in one chunk and updated in a later one is still one finding ("the count is always
 * exact", engine.h), as in a whole ingest. */
static void test_findings_counted_once_past_ids_max(void **state)
{
    (void)state;
    size_t n_keys = 3 * (ENG_FINDINGS_MAX + 100), len;
    char *body = gen_body(n_keys, &len);
    struct store *sa = store_mem_new(), *sb = store_mem_new();
    struct eng *ea = eng_chunked(sa, 0), *eb = eng_chunked(sb, T_CHUNK_PER_ROUND);
    struct eng_report *ra = report_new(), *rb = report_new();
    assert_int_equal(eng_ingest(ea, (const uint8_t *)body, len, t_now_ms, ra), 0);
    assert_int_equal(eng_ingest(eb, (const uint8_t *)body, len, t_now_ms, rb), 0);
    assert_true(rb->keys > ra->keys);  /* pass 2 took several chunks */
    assert_int_equal(ra->created, n_keys / 3);
    assert_int_equal(ra->findings, n_keys / 3);
    assert_int_equal(rb->created, n_keys / 3);
    assert_int_equal(rb->findings, n_keys / 3);
    assert_int_equal(rb->n_ids, ENG_FINDINGS_MAX);
    free(ra);
    free(rb);
    eng_free(ea);
    eng_free(eb);
    store_free(sa);
    store_free(sb);
    free(body);
}

/* Truncated JSON at the very end, after many chunks' worth of valid records: refused whole. */
static void test_garbage_at_end_stores_nothing(void **state)
{
    (void)state;
    size_t len;
    char *body = gen_body(T_KEYS, &len);
    static const char tail[] = ",{\"eventID\":\"x\",\"eventTi";
    body = realloc(body, len + sizeof tail);
    assert_non_null(body);
    memcpy(body + len - 2, tail, sizeof tail);  /* "]}" replaced */
    len = len - 2 + sizeof tail - 1;
    struct store *st = store_mem_new();
    struct eng *e = eng_chunked(st, T_TINY_CHUNK);
    struct eng_report *rep = report_new();
    assert_int_equal(eng_ingest(e, (const uint8_t *)body, len, t_now_ms, rep), CW_EINPUT);
    assert_true(rep->message[0] != 0);
    assert_int_equal(eng_pending(e), 0);
    assert_false(eng_overflowed(e));
    struct store_mem_stats ms;
    store_mem_stats(st, &ms);
    assert_int_equal(ms.keys, 0);
    assert_int_equal(ms.findings, 0);
    for (size_t k = 0; k < T_KEYS; k++) {
        char akid[32], *json = NULL;
        akid_of(k, akid, sizeof akid);
        assert_int_equal(eng_key_json(e, akid, &json), CW_ENOTFOUND);
    }
    free(rep);
    eng_free(e);
    store_free(st);
    free(body);
}

/* ---- pass 2's memory ------------------------------------------------------------------------------- */

struct flushlog {
    size_t calls, events, max_bytes, total_bytes;
    int keep;                  /* copy the events into `got` */
    struct evbuf got;
    int fail_at;               /* the call that fails (1-based), 0 none */
};

static int flush_record(void *ud, struct eng *e)
{
    struct flushlog *l = ud;
    l->calls++;
    if (eng_pending_bytes(e) > l->max_bytes)
        l->max_bytes = eng_pending_bytes(e);
    l->events += eng_pending(e);
    l->total_bytes += eng_pending_bytes(e);
    const struct evbuf *evs = eng_events(e);
    for (size_t i = 0; l->keep && i < evb_count(evs); i++)
        assert_int_equal(evb_copy(&l->got, evs, i), 0);
    eng_discard(e);
    return l->fail_at && (int)l->calls == l->fail_at ? CW_EUNAVAIL : 0;
}

static void test_pass2_memory_bound(void **state)
{
    (void)state;
    size_t len;
    char *body = gen_body(T_KEYS, &len);
    struct store *st = store_mem_new();
    struct eng *e = eng_chunked(st, T_TINY_CHUNK);
    struct eng_report *rep = report_new();
    const size_t bound = T_TINY_CHUNK + max_event_bytes();
    assert_int_equal(eng_decode(e, (const uint8_t *)body, len, rep), 0);
    assert_true(eng_overflowed(e));
    assert_true(eng_pending_bytes(e) <= bound);  /* pass 1 keeps one chunk too */
    size_t events = rep->records - rep->skipped - rep->ignored;
    struct flushlog l = {0};
    struct eng_input in = {.buf = (const uint8_t *)body, .len = len};
    assert_int_equal(eng_redecode_in(e, &in, flush_record, &l), 0);
    assert_int_equal(l.events, events);
    assert_true(l.max_bytes <= bound);
    assert_true(l.max_bytes >= T_TINY_CHUNK);  /* the chunks do fill */
    /* every flush but the last holds a full chunk: none comes early */
    assert_true(l.calls > 100);
    assert_true(l.calls <= l.total_bytes / T_TINY_CHUNK + 1);
    assert_int_equal(eng_pending(e), 0);
    /* a flush that fails stops pass 2 with its error */
    struct flushlog f = {.fail_at = 3};
    assert_int_equal(eng_redecode_in(e, &in, flush_record, &f), CW_EUNAVAIL);
    assert_int_equal(f.calls, 3);
    free(rep);
    eng_free(e);
    store_free(st);
    free(body);
}

/* Pass 2 over several inputs (Firehose): each one fed, all their events flushed chunk by chunk; an input
 * that no longer decodes stops with CW_EINPUT (the caller feeds only what pass 1 accepted). */
static void test_stream_feed_inputs(void **state)
{
    (void)state;
    size_t len;
    char *body = gen_body(T_KEYS, &len);
    struct store *st = store_mem_new();
    struct eng *e = eng_chunked(st, T_TINY_CHUNK);
    struct eng_report *rep = report_new();
    assert_int_equal(eng_decode(e, (const uint8_t *)body, len, rep), 0);
    size_t events = rep->records - rep->skipped - rep->ignored;
    eng_discard(e);
    struct flushlog l = {0};
    struct eng_input in = {.buf = (const uint8_t *)body, .len = len};
    static const char bad[] = "{\"Records\":[{\"eventID\":";
    struct eng_input gone = {.buf = (const uint8_t *)bad, .len = sizeof bad - 1};
    eng_stream_begin(e, flush_record, &l);
    assert_int_equal(eng_stream_feed(e, &in), 0);
    assert_int_equal(eng_stream_feed(e, &in), 0);
    assert_int_equal(eng_stream_end(e), 0);
    assert_int_equal(l.events, 2 * events);  /* both inputs, the partial last chunk included */
    assert_true(l.max_bytes <= T_TINY_CHUNK + max_event_bytes());
    eng_stream_begin(e, flush_record, &l);
    assert_int_equal(eng_stream_feed(e, &gone), CW_EINPUT);
    eng_stream_end(e);
    eng_discard(e);
    free(rep);
    eng_free(e);
    store_free(st);
    free(body);
}

/* ---- streams ------------------------------------------------------------------------------------------ */

struct mstream {
    const uint8_t *p;
    size_t len, pos, turn;
    size_t fail_at;            /* a read at or past this offset fails (0: never) */
    int fail_rewind;
};

static int ms_read(void *ud, uint8_t *buf, size_t cap, size_t *got)
{
    static const size_t pieces[] = {1, 7, 4099, 333, 65537, 12, 262143};  /* odd sizes, some over a JSON token */
    struct mstream *m = ud;
    if (m->fail_at && m->pos >= m->fail_at)
        return -1;
    size_t n = pieces[m->turn++ % (sizeof pieces / sizeof pieces[0])];
    n = n < cap ? n : cap;
    n = n < m->len - m->pos ? n : m->len - m->pos;
    if (m->fail_at && m->pos + n > m->fail_at)
        n = m->fail_at - m->pos;
    memcpy(buf, m->p + m->pos, n);
    m->pos += n;
    *got = n;
    return 0;
}

static int ms_rewind(void *ud)
{
    struct mstream *m = ud;
    m->pos = m->turn = 0;
    return m->fail_rewind ? -1 : 0;
}

static struct eng_input stream_of(struct mstream *m)
{
    struct eng_input in = {.read = ms_read, .rewind = ms_rewind, .ud = m};
    return in;
}

static void same_events(const struct evbuf *a, const struct evbuf *b)
{
    assert_int_equal(evb_count(a), evb_count(b));
    struct ev_event ev;
    for (size_t i = 0; i < evb_count(a); i++) {
        evb_get(a, i, &ev);
        same_event(b, i, &ev, evb_hash(a, i));
    }
}

/* Pass 1 over a stream keeps what it keeps over the buffer, and reports the same. */
static void test_stream_decodes_like_buffer(void **state)
{
    (void)state;
    size_t len;
    char *body = gen_body(T_KEYS, &len);
    struct store *st = store_mem_new();
    struct eng *e = eng_chunked(st, 0);
    struct eng_report *ra = report_new(), *rb = report_new();
    struct flushlog la = {.keep = 1}, lb = {.keep = 1};
    evb_init(&la.got);
    evb_init(&lb.got);
    assert_int_equal(eng_decode(e, (const uint8_t *)body, len, ra), 0);
    flush_record(&la, e);
    struct mstream m = {.p = (const uint8_t *)body, .len = len};
    struct eng_input in = stream_of(&m);
    assert_int_equal(eng_decode_in(e, &in, rb), 0);
    assert_true(m.turn > 7);  /* read in many pieces */
    flush_record(&lb, e);
    assert_int_equal(ra->records, rb->records);
    assert_int_equal(ra->skipped, rb->skipped);
    assert_int_equal(ra->ignored, rb->ignored);
    assert_int_equal(ra->n_skips, rb->n_skips);
    assert_true(evb_count(&la.got) > 1000);
    same_events(&la.got, &lb.got);
    /* both passes over a stream with a tiny chunk: pass 2 brings every event, in the same order */
    struct eng *t = eng_chunked(st, T_TINY_CHUNK);
    ms_rewind(&m);
    assert_int_equal(eng_decode_in(t, &in, rb), 0);
    assert_true(eng_overflowed(t));
    struct flushlog lc = {.keep = 1};
    evb_init(&lc.got);
    assert_int_equal(eng_redecode_in(t, &in, flush_record, &lc), 0);
    assert_true(lc.calls > 100);
    same_events(&la.got, &lc.got);
    evb_free(&la.got);
    evb_free(&lb.got);
    evb_free(&lc.got);
    free(ra);
    free(rb);
    eng_free(e);
    eng_free(t);
    store_free(st);
    free(body);
}

/* A stream that cannot be rewound or read: CW_EIO, and nothing of it kept or flushed. */
static void test_stream_errors(void **state)
{
    (void)state;
    size_t len;
    char *body = gen_body(T_KEYS, &len);
    struct store *st = store_mem_new();
    struct eng *e = eng_chunked(st, T_TINY_CHUNK);
    struct eng_report *rep = report_new();
    struct mstream m = {.p = (const uint8_t *)body, .len = len, .fail_rewind = 1};
    struct eng_input in = stream_of(&m);
    assert_int_equal(eng_decode_in(e, &in, rep), 0);
    assert_true(eng_overflowed(e));
    struct flushlog l = {0};
    assert_int_equal(eng_redecode_in(e, &in, flush_record, &l), CW_EIO);
    assert_int_equal(l.calls, 0);
    eng_discard(e);
    /* a read error in pass 1, after another input's events were kept: those stay, none of this one */
    static const char one[] = "{\"Records\":[{\"eventID\":\"solo\",\"eventTime\":\"2024-03-13T09:00:00Z\","
                              "\"eventSource\":\"sts.amazonaws.com\",\"eventName\":\"GetCallerIdentity\",\"awsRegion\":"
                              "\"us-east-1\",\"sourceIPAddress\":\"198.51.100.7\",\"userAgent\":\"aws-cli/2.15.0\","
                              "\"userIdentity\":{\"type\":\"AssumedRole\",\"accessKeyId\":\"ASIACHUNKSOLO0000001\","
                              "\"accountId\":\"111122223333\",\"arn\":\"arn:aws:sts::111122223333:assumed-role/r/s\"}}]}";
    struct eng *d = eng_chunked(st, 0);
    assert_int_equal(eng_decode(d, (const uint8_t *)one, sizeof one - 1, rep), 0);
    assert_int_equal(eng_pending(d), 1);
    struct mstream bad = {.p = (const uint8_t *)body, .len = len, .fail_at = len / 2};
    struct eng_input bin = stream_of(&bad);
    assert_int_equal(eng_decode_in(d, &bin, rep), CW_EIO);
    assert_true(rep->message[0] != 0);
    assert_int_equal(eng_pending(d), 1);
    /* the same on the tiny chunk, where pass 1 had overflowed before the error: all undone */
    bad.pos = bad.turn = 0;
    assert_int_equal(eng_decode_in(e, &bin, rep), CW_EIO);
    assert_int_equal(eng_pending(e), 0);
    assert_false(eng_overflowed(e));
    /* an input that still decodes in pass 2 but holds other records (a file rewritten between the
     * passes, here grown by a record): CW_EIO too, not a silent mix of two versions */
    size_t len2;
    char *grown = gen_body(T_KEYS + 1, &len2);
    struct mstream m2 = {.p = (const uint8_t *)body, .len = len};
    struct eng_input in2 = stream_of(&m2);
    assert_int_equal(eng_decode_in(e, &in2, rep), 0);
    assert_true(eng_overflowed(e));
    m2.p = (const uint8_t *)grown;
    m2.len = len2;
    struct flushlog l2 = {0};
    assert_int_equal(eng_redecode_in(e, &in2, flush_record, &l2), CW_EIO);
    eng_discard(e);
    free(grown);
    /* and in pass 2: CW_EIO */
    m.fail_rewind = 0;
    ms_rewind(&m);
    assert_int_equal(eng_decode_in(e, &in, rep), 0);
    m.fail_at = len / 2;
    assert_int_equal(eng_redecode_in(e, &in, flush_record, &l), CW_EIO);
    struct store_mem_stats ms;
    store_mem_stats(st, &ms);
    assert_int_equal(ms.keys, 0);  /* nothing here was ever applied */
    free(rep);
    eng_free(e);
    eng_free(d);
    store_free(st);
    free(body);
}

/* ---- a store failure in pass 2 ---------------------------------------------------------------------- */

/* The memory store with its commit call number `fail_commit` failing (counted from 1). */
struct flaky {
    struct store base;
    struct store *inner;
    int commits, fail_commit;
};
static struct store_ops flaky_ops;

static int fk_load(struct store *s, struct store_load *it, size_t n) { return store_load(((struct flaky *)s)->inner, it, n); }
static int fk_put(struct store *s, struct store_finding_put *it, size_t n) { return store_finding_put(((struct flaky *)s)->inner, it, n); }
static int fk_get(struct store *s, const char *id, struct store_finding *o) { return store_finding_get(((struct flaky *)s)->inner, id, o); }
static const char *fk_why(struct store *s) { return store_why(((struct flaky *)s)->inner); }
static int fk_commit(struct store *s, struct store_commit *it, size_t n)
{
    struct flaky *f = (struct flaky *)s;
    if (++f->commits == f->fail_commit)
        return CW_EUNAVAIL;
    return store_commit(f->inner, it, n);
}

static void flaky_wrap(struct flaky *f)
{
    flaky_ops = *f->inner->ops;
    flaky_ops.load = fk_load;
    flaky_ops.commit = fk_commit;
    flaky_ops.finding_put = fk_put;
    flaky_ops.finding_get = fk_get;
    flaky_ops.why = fk_why;
    f->base.ops = &flaky_ops;
}

static void test_store_failure_then_retry(void **state)
{
    (void)state;
    size_t len;
    char *body = gen_body(T_KEYS, &len);
    struct store *clean = store_mem_new();
    struct flaky f = {.inner = store_mem_new(), .fail_commit = T_FAIL_COMMIT};
    flaky_wrap(&f);
    struct eng *ec = eng_chunked(clean, T_TINY_CHUNK), *ef = eng_chunked(&f.base, T_TINY_CHUNK);
    struct eng_report *rc = report_new(), *rf = report_new();
    assert_int_equal(eng_ingest(ec, (const uint8_t *)body, len, t_now_ms, rc), 0);
    /* the 4th chunk's commit fails: 503, the first three chunks stay applied */
    assert_int_equal(eng_ingest(ef, (const uint8_t *)body, len, t_now_ms, rf), CW_EUNAVAIL);
    assert_non_null(strstr(rf->message, "store is unavailable"));
    assert_int_equal(f.commits, T_FAIL_COMMIT);
    assert_int_equal(eng_pending(ef), 0);
    struct store_mem_stats ms;
    store_mem_stats(f.inner, &ms);
    assert_true(ms.keys > 0 && ms.keys < T_KEYS);
    /* the sender retries, the store healthy: what was applied counts as duplicates, once */
    assert_int_equal(eng_ingest(ef, (const uint8_t *)body, len, t_now_ms, rf), 0);
    assert_int_equal(rf->records, rc->records);
    assert_int_equal(rf->accepted + rf->duplicates, rc->accepted + rc->duplicates);
    assert_true(rf->duplicates > rc->duplicates);
    assert_int_equal(same_stores(ec, clean, ef, f.inner, T_KEYS), (T_KEYS + 2) / 3);
    /* a third time: nothing new anywhere */
    assert_int_equal(eng_ingest(ef, (const uint8_t *)body, len, t_now_ms, rf), 0);
    assert_int_equal(rf->accepted, 0);
    assert_int_equal(rf->duplicates, rc->accepted + rc->duplicates);
    assert_int_equal(rf->created, 0);
    assert_int_equal(same_stores(ec, clean, ef, f.inner, T_KEYS), (T_KEYS + 2) / 3);
    free(rc);
    free(rf);
    eng_free(ec);
    eng_free(ef);
    store_free(clean);
    store_free(f.inner);
    free(body);
}

/* eng_set_spill's callback in tests: every spilled chunk appended to all, until fail_at calls. */
struct t_spill {
    struct evbuf all;
    size_t calls, fail_at;        /* fail_at 0: never fails */
};

static int t_spill_cb(void *ud, struct eng *e)
{
    struct t_spill *sp = ud;
    if (++sp->calls == sp->fail_at)
        return CW_EIO;
    const struct evbuf *evs = eng_events(e);
    for (size_t i = 0; i < evb_count(evs); i++)
        assert_int_equal(evb_copy(&sp->all, evs, i), 0);
    return 0;
}

/* eng_redecode_in's flush in tests: the chunk appended to all, then dropped. */
static int t_pass2_cb(void *ud, struct eng *e)
{
    int rc = t_spill_cb(ud, e);
    eng_discard(e);
    return rc;
}

/* Pass 1 with a spill: the spilled chunks and the pending events are, in order, every event one pass
 * into one chunk keeps; refused, nothing pending; a spill that fails, or an engine holding events
 * before the input, falls back to the two passes (overflowed, pass 2 still brings every event). */
static void test_spill_hook(void **state)
{
    (void)state;
    size_t len;
    char *body = gen_body(T_KEYS, &len);
    struct store *st = store_mem_new();
    struct eng *whole = eng_chunked(st, 0), *e = eng_chunked(st, T_TINY_CHUNK);
    struct eng_report *rep = report_new();
    struct t_spill sp = { .fail_at = 0 };
    evb_init(&sp.all);
    assert_int_equal(eng_decode(whole, (const uint8_t *)body, len, rep), 0);
    assert_false(eng_overflowed(whole));
    eng_set_spill(e, t_spill_cb, &sp);
    assert_int_equal(eng_decode(e, (const uint8_t *)body, len, rep), 0);
    assert_false(eng_overflowed(e));
    assert_true(sp.calls > 10);
    assert_true(eng_pending_bytes(e) <= T_TINY_CHUNK + max_event_bytes() + T_ALIGN_SLACK);
    for (size_t i = 0; i < eng_pending(e); i++)
        assert_int_equal(evb_copy(&sp.all, eng_events(e), i), 0);
    same_events(eng_events(whole), &sp.all);
    eng_discard(e);
    /* the same body cut in a record: refused, nothing pending (the spilled chunks are the caller's) */
    assert_int_equal(eng_decode(e, (const uint8_t *)body, len - 2, rep), CW_EINPUT);
    assert_int_equal(eng_pending(e), 0);
    assert_false(eng_overflowed(e));
    /* the third spill fails: overflowed, as without a spill, and pass 2 brings every event */
    evb_clear(&sp.all);
    sp.calls = 0;
    sp.fail_at = 3;
    assert_int_equal(eng_decode(e, (const uint8_t *)body, len, rep), 0);
    assert_true(eng_overflowed(e));
    assert_int_equal(sp.calls, 3);
    struct eng_input in = { .buf = (const uint8_t *)body, .len = len };
    struct t_spill pass2 = { .fail_at = 0 };
    evb_init(&pass2.all);
    assert_int_equal(eng_redecode_in(e, &in, t_pass2_cb, &pass2), 0);
    same_events(eng_events(whole), &pass2.all);
    evb_free(&pass2.all);
    /* an engine that held an event before the input never spills */
    eng_discard(e);
    sp.calls = 0;
    sp.fail_at = 0;
    assert_int_equal(eng_add(e, eng_events(whole), 0), 0);
    assert_int_equal(eng_decode(e, (const uint8_t *)body, len, rep), 0);
    assert_true(eng_overflowed(e));
    assert_int_equal(sp.calls, 0);
    eng_discard(e);
    evb_free(&sp.all);
    free(rep);
    eng_free(whole);
    eng_free(e);
    store_free(st);
    free(body);
}

int main(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    t_now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evbuf_round_trip),
        cmocka_unit_test(test_evbuf_own_identity),
        cmocka_unit_test(test_evbuf_file_round_trip),
        cmocka_unit_test(test_evbuf_trim),
        cmocka_unit_test(test_evbuf_bound),
        cmocka_unit_test(test_whole_equals_chunked),
        cmocka_unit_test(test_garbage_at_end_stores_nothing),
        cmocka_unit_test(test_findings_counted_once_past_ids_max),
        cmocka_unit_test(test_pass2_memory_bound),
        cmocka_unit_test(test_stream_feed_inputs),
        cmocka_unit_test(test_stream_decodes_like_buffer),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_store_failure_then_retry),
        cmocka_unit_test(test_spill_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
