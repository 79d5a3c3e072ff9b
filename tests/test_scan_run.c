/* test_scan_run.c — scan_run.c's shards, white-box (the file is included: its functions are static).
 *
 * The memory bound of a shard (scan_run.h): while its engine applies, its filling buffer grows to
 * SCAN_FILL_BATCHES batches and at most one chunk more, however many threads bring events to it (a
 * hot key: every thread's events go to one shard). Threads that find it full wait before adding.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_shard_waits_before_adding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
