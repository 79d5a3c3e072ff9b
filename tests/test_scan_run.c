/* test_scan_run.c — scan_run.c's shards, white-box (the file is included: its functions are static).
 *
 * The memory bound of a shard (scan_run.h): while its engine applies, its filling buffer grows to
 * SCAN_FILL_BATCHES batches and at most one chunk more, however many threads bring events to it (a
 * hot key: every thread's events go to one shard). Threads that find it full wait before adding.
 *
 * The spill (scan_run.h): a file of many chunks is decoded once, its full chunks spilled and read
 * back, and leaves what the same records in small files leave; a file refused after many chunks
 * leaves nothing; past the spill bound a file takes the two passes, with the same result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "scan_run.c"

#define T_BATCH 4096          /* the shard's batch */
#define T_THREADS 4           /* threads distributing to the one shard at once */
#define T_WATCH_S 1.0         /* how long the buffer is watched while the threads run */

/* A packed event with every string field full: the same key, told apart by the id. */
static void event_full(struct ev_event *ev, int seed)
{
    memset(ev, 0, sizeof *ev);
    ev->kind = EV_USE;
    ev->time = 1710318801 + seed;
    snprintf(ev->akid, sizeof ev->akid, "ASIAHOTKEYHOTKEY0001");
    snprintf(ev->id, sizeof ev->id, "id-%d", seed);
    memset(ev->user_agent, 'u', EV_UA_MAX - 1);
    memset(ev->role_arn, 'r', EV_ARN_MAX - 1);
}

/* Events of one chunk (T_BATCH bytes, scan.c makes the chunk no larger than the batch) pending in e. */
static void fill_chunk(struct eng *e, int seed)
{
    struct evbuf b;
    struct ev_event ev;
    evb_init(&b);
    for (int i = 0; evb_bytes(&b) < T_BATCH; i++) {
        event_full(&ev, seed * 1000 + i);
        assert_int_equal(evb_push(&b, &ev, (uint64_t)(seed * 1000 + i)), 0);
    }
    for (size_t i = 0; i < evb_count(&b); i++)
        assert_int_equal(eng_add(e, &b, i), 0);
    evb_free(&b);
}

static void *distribute_main(void *arg)
{
    struct worker *w = arg;
    w->fail = distribute(w, w->eng);  /* checked after the join: cmocka asserts on the test's thread */
    return NULL;
}

static void test_full_shard_waits_before_adding(void **state)
{
    (void)state;
    struct store *st = store_mem_new();
    struct eng_config cfg = { .chunk_bytes = T_BATCH };
    struct scan_run_cfg c = { .st = st, .eng = &cfg, .jobs = T_THREADS, .batch_bytes = T_BATCH };
    struct run r = { .c = &c, .batch = T_BATCH, .nshards = 1 };
    pthread_mutex_init(&r.mu, NULL);
    assert_int_equal(shards_new(&r), 0);
    struct worker ws[T_THREADS + 1];
    memset(ws, 0, sizeof ws);
    for (unsigned i = 0; i <= T_THREADS; i++) {
        ws[i].r = &r;
        ws[i].eng = eng_new(st, &cfg);
        ws[i].count = calloc(2, sizeof *ws[i].count);
        assert_non_null(ws[i].eng);
        fill_chunk(ws[i].eng, (int)i + 1);
    }
    /* the shard as another thread's apply leaves it: applying, its buffer full */
    struct shard *sh = &r.shards[0];
    size_t one_chunk = eng_pending_bytes(ws[0].eng);
    for (int k = 0; evb_bytes(&sh->fill) < SCAN_FILL_BATCHES * T_BATCH; k++) {
        fill_chunk(ws[T_THREADS].eng, 100 + k);
        for (size_t i = 0; i < eng_pending(ws[T_THREADS].eng); i++)
            assert_int_equal(evb_copy(&sh->fill, eng_events(ws[T_THREADS].eng), i), 0);
        eng_discard(ws[T_THREADS].eng);
    }
    size_t full = evb_bytes(&sh->fill);
    sh->applying = 1;
    pthread_t th[T_THREADS];
    for (unsigned i = 0; i < T_THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, distribute_main, &ws[i]), 0);
    /* A thread that is slow to start can only hide the fault, never fail this with the fix. */
    size_t most = full;
    for (double t0 = cw_mono_s(); cw_mono_s() - t0 < T_WATCH_S;) {
        pthread_mutex_lock(&sh->mu);
        if (evb_bytes(&sh->fill) > most)
            most = evb_bytes(&sh->fill);
        pthread_mutex_unlock(&sh->mu);
        usleep(1000);
    }
    assert_true(most <= full + one_chunk + 8);
    pthread_mutex_lock(&sh->mu);
    sh->applying = 0;  /* the other thread's apply is over */
    pthread_cond_broadcast(&sh->cv);
    pthread_mutex_unlock(&sh->mu);
    for (unsigned i = 0; i < T_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ws[i].fail, 0);
    }
    pthread_mutex_lock(&sh->mu);
    shard_flush_locked(&r, sh, 1);
    pthread_mutex_unlock(&sh->mu);
    assert_int_equal(evb_count(&sh->fill), 0);
    for (unsigned i = 0; i <= T_THREADS; i++) {
        eng_free(ws[i].eng);
        free(ws[i].idx);
        free(ws[i].count);
    }
    shards_free(&r);
    pthread_mutex_destroy(&r.mu);
    store_free(st);
}

/* ---- the spill --------------------------------------------------------------------------------- */

#define T_KEYS 90                 /* temporary keys in the generated records */
#define T_PER_KEY 5               /* records per key: issuance, two marked uses, an outside use, an IAM user's */
#define T_SMALL 7                 /* records per small file */
#define T_REC 1024                /* one generated record */

static void t_akid(size_t k, char *out, size_t size)
{
    snprintf(out, size, "ASIASPILLTEST%07zu", k);
}

/* Record r of the generated trail: for key r / T_PER_KEY, an issuance to a Lambda function, two uses
 * from its own address with the Lambda marker, a use from elsewhere with the CLI (every third key:
 * a finding), and a call with an IAM user's key (ignored). Every record its own id and second. */
static void t_record(size_t r, char *rec)
{
    size_t k = r / T_PER_KEY, kind = r % T_PER_KEY;
    char akid[32], when[24];
    t_akid(k, akid, sizeof akid);
    snprintf(when, sizeof when, "2024-03-13T%02zu:%02zu:%02zuZ", 8 + r / 3600, r / 60 % 60, r % 60);
    if (kind == 0) {
        snprintf(rec, T_REC,
                 "{\"eventID\":\"spill-%06zu\",\"eventTime\":\"%s\",\"eventSource\":\"sts.amazonaws.com\","
                 "\"eventName\":\"AssumeRole\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"lambda.amazonaws.com\","
                 "\"userAgent\":\"lambda.amazonaws.com\",\"userIdentity\":{\"type\":\"AWSService\","
                 "\"invokedBy\":\"lambda.amazonaws.com\"},\"requestParameters\":{\"roleArn\":"
                 "\"arn:aws:iam::111122223333:role/fn%zu-role\",\"roleSessionName\":\"fn%zu\"},\"responseElements\":"
                 "{\"credentials\":{\"accessKeyId\":\"%s\",\"expiration\":\"Mar 13, 2024, 8:33:21 PM\"}}}",
                 r, when, k, k, akid);
        return;
    }
    const char *ip = kind == 3 && k % 3 == 0 ? "198.51.100.7" : "203.0.113.5";
    const char *ua = kind == 3 ? "aws-cli/2.15.0 ua/2.0 os/linux#6.1"
                               : "Boto3/1.34.20 md/Botocore#1.34.20 exec-env/AWS_Lambda_python3.12";
    const char *who = kind == 4 ? "\"type\":\"IAMUser\",\"accessKeyId\":\"AKIASPILLUSER0000001\","
                                  "\"accountId\":\"111122223333\",\"arn\":\"arn:aws:iam::111122223333:user/u\""
                                : NULL;
    char assumed[256];
    snprintf(assumed, sizeof assumed, "\"type\":\"AssumedRole\",\"accessKeyId\":\"%s\",\"accountId\":\"111122223333\","
             "\"arn\":\"arn:aws:sts::111122223333:assumed-role/fn%zu-role/fn%zu\"", akid, k, k);
    snprintf(rec, T_REC,
             "{\"eventID\":\"spill-%06zu\",\"eventTime\":\"%s\",\"eventSource\":\"s3.amazonaws.com\","
             "\"eventName\":\"GetObject\",\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"%s\",\"userAgent\":\"%s\","
             "\"userIdentity\":{%s}}",
             r, when, ip, ua, who ? who : assumed);
}

/* dir/name holding records [from, to), then tail (NULL: the file's proper end). */
static void t_write(const char *dir, const char *name, size_t from, size_t to, const char *tail)
{
    char path[512], rec[T_REC];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"Records\":[", f);
    for (size_t r = from; r < to; r++) {
        t_record(r, rec);
        fprintf(f, "%s%s", r > from ? "," : "", rec);
    }
    fputs(tail ? tail : "]}", f);
    assert_int_equal(fclose(f), 0);
}

/* A new directory under /tmp. */
static void t_dir(char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/test_scan_run.XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void t_rmdir(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* The directory scanned into st with T_BATCH chunks and batches (scan.c makes the chunk the batch). */
static void t_scan(struct store *st, const char *dir, unsigned jobs, size_t spill_max, struct scan_totals *t)
{
    struct eng_config cfg = { .chunk_bytes = T_BATCH, .judge_whole = 1 };
    struct scan_run_cfg c = { .st = st, .eng = &cfg, .jobs = jobs, .batch_bytes = T_BATCH,
                              .spill_max_bytes = spill_max };
    char *paths[] = { (char *)dir };
    assert_int_equal(scan_run(&c, paths, 1, t), 0);
}

/* Two scans' totals and every key's verdict are the same; returns the findings. */
static size_t t_same(struct store *sa, const struct scan_totals *a, struct store *sb, const struct scan_totals *b)
{
    assert_int_equal(a->records, T_KEYS * T_PER_KEY);
    assert_int_equal(a->records, b->records);
    assert_int_equal(a->ignored, b->ignored);
    assert_int_equal(a->skipped, b->skipped);
    assert_int_equal(a->duplicates, 0);
    assert_int_equal(b->duplicates, 0);
    assert_int_equal(a->bad_files + b->bad_files + a->lost_events + b->lost_events, 0);
    struct store_mem_stats ma, mb;
    store_mem_stats(sa, &ma);
    store_mem_stats(sb, &mb);
    assert_int_equal(ma.keys, mb.keys);
    assert_int_equal(ma.findings, mb.findings);
    struct eng *ea = eng_new(sa, NULL), *eb = eng_new(sb, NULL);
    for (size_t k = 0; k < T_KEYS; k++) {
        char akid[32];
        struct det_verdict va, vb;
        t_akid(k, akid, sizeof akid);
        assert_int_equal(eng_key_verdict(ea, akid, &va), 0);
        assert_int_equal(eng_key_verdict(eb, akid, &vb), 0);
        assert_int_equal(va.finding, vb.finding);
        assert_int_equal(va.severity, vb.severity);
        assert_int_equal(va.reasons, vb.reasons);
        assert_int_equal(va.outside_count, vb.outside_count);
        assert_int_equal(va.inside_count, vb.inside_count);
    }
    eng_free(ea);
    eng_free(eb);
    return ma.findings;
}

/* Two files of many chunks each, on one thread (one spill file, emptied between them): each decoded
 * once, with the totals and verdicts of the same records in small files; with the spill bound below
 * one chunk, or no spill file to be had, the two passes, the same again. */
static void test_spill_decodes_once(void **state)
{
    (void)state;
    char big[64], small[64];
    t_dir(big, sizeof big);
    t_dir(small, sizeof small);
    size_t n = T_KEYS * T_PER_KEY, half = n / 2;
    t_write(big, "a.json", 0, half, NULL);
    t_write(big, "b.json", half, n, NULL);
    for (size_t r = 0, i = 0; r < n; r += T_SMALL, i++) {
        char name[32];
        snprintf(name, sizeof name, "s%04zu.json", i);
        t_write(small, name, r, r + T_SMALL < n ? r + T_SMALL : n, NULL);
    }
    struct store *sa = store_mem_new(), *sb = store_mem_new(), *sc = store_mem_new();
    struct scan_totals ta, tb, tc;
    t_scan(sa, big, 1, 0, &ta);
    t_scan(sb, small, 2, 0, &tb);
    t_scan(sc, big, 1, 1, &tc);
    assert_int_equal(ta.files, 2);
    assert_int_equal(ta.spilled_files, 2);
    assert_int_equal(ta.redecoded_files, 0);
    assert_int_equal(tb.spilled_files + tb.redecoded_files, 0);  /* each fits one chunk */
    assert_int_equal(tc.spilled_files, 0);
    assert_int_equal(tc.redecoded_files, 2);
    assert_true(t_same(sa, &ta, sb, &tb) > 0);
    t_same(sa, &ta, sc, &tc);
    /* no spill file can be made ($TMPDIR missing): the two passes, the same again */
    const char *tmpdir = getenv("TMPDIR");
    char *was = tmpdir ? strdup(tmpdir) : NULL;
    struct store *sd = store_mem_new();
    struct scan_totals td;
    setenv("TMPDIR", "/nonexistent/test_scan_run", 1);
    t_scan(sd, big, 1, 0, &td);
    if (was)
        setenv("TMPDIR", was, 1);
    else
        unsetenv("TMPDIR");
    free(was);
    assert_int_equal(td.spilled_files, 0);
    assert_int_equal(td.redecoded_files, 2);
    t_same(sa, &ta, sd, &td);
    store_free(sa);
    store_free(sb);
    store_free(sc);
    store_free(sd);
    t_rmdir(big);
    t_rmdir(small);
}

/* A file valid for many chunks, then cut in a record: refused whole, nothing of it applied (its full
 * chunks were spilled before the fault was met). */
static void test_spill_refused_stores_nothing(void **state)
{
    (void)state;
    char dir[64];
    t_dir(dir, sizeof dir);
    t_write(dir, "cut.json", 0, T_KEYS * T_PER_KEY, ",{\"eventID\":\"x\",\"eventTi");
    struct store *st = store_mem_new();
    struct scan_totals t;
    t_scan(st, dir, 2, 0, &t);
    assert_int_equal(t.bad_files, 1);
    assert_int_equal(t.files + t.records + t.spilled_files + t.redecoded_files, 0);
    struct store_mem_stats ms;
    store_mem_stats(st, &ms);
    assert_int_equal(ms.keys, 0);
    assert_int_equal(ms.findings, 0);
    struct eng *e = eng_new(st, NULL);
    for (size_t k = 0; k < T_KEYS; k++) {
        char akid[32];
        struct det_verdict v;
        t_akid(k, akid, sizeof akid);
        assert_int_equal(eng_key_verdict(e, akid, &v), CW_ENOTFOUND);
    }
    eng_free(e);
    store_free(st);
    t_rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_shard_waits_before_adding),
        cmocka_unit_test(test_spill_decodes_once),
        cmocka_unit_test(test_spill_refused_stores_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
