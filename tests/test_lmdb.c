/* test_lmdb.c — what only the durable store has (the contract itself is test_store.c's, on every
 * store): the schema check and the refusal of a directory that is not credwatch's, the bound of
 * the data file (writes refused with a reason, reads and removals still served), expiry swept in
 * bounded steps, concurrent writers answered only after their group's commit, and the dedup
 * identity the engine gives it (det_event_hash, where the memory store gets its own).
 * Each test gets a fresh directory under $TMPDIR and removes it.
 */
#include <lmdb.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cw.h"
#include "decode.h"
#include "detect.h"
#include "engine.h"
#include "evbuf.h"
#include "store.h"

#define T_THREADS 4
#define T_PER_THREAD 40       /* single-key commits per writer thread */
#define T_FILL_BLOB 3000      /* bytes per key when filling the smallest file */

struct dir {
    char path[256];
};

static int setup(void **state)
{
    struct dir *d = calloc(1, sizeof *d);
    const char *tmp = getenv("TMPDIR");
    snprintf(d->path, sizeof d->path, "%s/cw-lmdb-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(d->path))
        return -1;
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    struct dir *d = *state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->path);
    int rc = system(cmd);
    free(d);
    return rc == 0 ? 0 : -1;
}

static struct store *open_dir(const char *path, uint64_t max)
{
    char msg[512];
    struct store *s = store_lmdb_new(path, max, msg, sizeof msg);
    if (!s)
        fprintf(stderr, "# store_lmdb_new: %s\n", msg);
    return s;
}

/* The dedup identity each store gets from the engine: the durable store (like Redis) keeps
 * det_event_hash, which earlier releases wrote into its files and which must not change; only the
 * memory store, whose sets die with the process, gets evbuf's faster hash of the packed event
 * (store_ops.ids_private). An event is ingested into each, then each store is asked which of the
 * two hashes of that event it has seen. */
static const char ident_rec[] =
    "{\"Records\":[{\"eventID\":\"id-1\",\"eventTime\":\"2024-03-13T09:00:00Z\",\"eventSource\":"
    "\"sts.amazonaws.com\",\"eventName\":\"GetCallerIdentity\",\"awsRegion\":\"us-east-1\","
    "\"sourceIPAddress\":\"198.51.100.7\",\"userAgent\":\"aws-cli/2.15.0\",\"userIdentity\":{\"type\":"
    "\"AssumedRole\",\"accessKeyId\":\"ASIAIDENTITYTEST0001\",\"accountId\":\"111122223333\",\"arn\":"
    "\"arn:aws:sts::111122223333:assumed-role/r/fn\"}}]}";

static int keep_event(void *ud, size_t index, const struct ev_event *ev)
{
    (void)index;
    *(struct ev_event *)ud = *ev;
    return 0;
}

static void seen_of(struct store *st, const uint64_t hashes[2], uint8_t seen[2])
{
    struct eng *e = eng_new(st, NULL);
    struct eng_report *rep = malloc(sizeof *rep);
    assert_non_null(e);
    assert_non_null(rep);
    assert_int_equal(eng_ingest(e, (const uint8_t *)ident_rec, sizeof ident_rec - 1, cw_now_ms(), rep), 0);
    assert_int_equal(rep->accepted, 1);
    struct store_load l = { .akid = "ASIAIDENTITYTEST0001", .hashes = hashes, .n_hashes = 2, .seen = seen };
    assert_int_equal(store_load(st, &l, 1), 0);
    assert_true(l.version != 0);
    free(rep);
    eng_free(e);
}

static void t_engine_identity(void **state)
{
    struct dir *d = *state;
    struct ev_event ev;
    struct dec_sink sink = { keep_event, NULL, &ev };
    struct dec_stats st;
    char msg[DEC_MSG_MAX];
    assert_int_equal(dec_buffer((const uint8_t *)ident_rec, sizeof ident_rec - 1, &sink, NULL, &st, msg, sizeof msg), 0);
    struct evbuf b;
    evb_init(&b);
    assert_int_equal(evb_push_own(&b, &ev), 0);
    const uint64_t hashes[2] = { det_event_hash(&ev), evb_hash(&b, 0) };
    evb_free(&b);
    assert_true(hashes[0] != hashes[1]);
    uint8_t seen[2];
    struct store *durable = open_dir(d->path, STORE_DURABLE_MIN_BYTES);
    assert_non_null(durable);
    seen_of(durable, hashes, seen);
    assert_int_equal(seen[0], 1);  /* det_event_hash: what the files of earlier releases hold */
    assert_int_equal(seen[1], 0);
    store_free(durable);
    struct store *mem = store_mem_new();
    seen_of(mem, hashes, seen);
    assert_int_equal(seen[0], 0);
    assert_int_equal(seen[1], 1);  /* the process's own */
    store_free(mem);
}

/* Writes meta key `name` = value straight into the directory's file (the store must be closed). */
static void poke_meta(const char *path, const char *name, const void *value, size_t len)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, path, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    MDB_val k = { strlen(name), (void *)name }, v = { len, (void *)value };
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void t_schema_newer_refused(void **state)
{
    struct dir *d = *state;
    struct store *s = open_dir(d->path, STORE_DURABLE_MIN_BYTES);
    assert_non_null(s);
    struct store_lmdb_info info;
    assert_int_equal(store_lmdb_info(s, &info), 0);
    store_free(s);
    uint32_t newer = info.schema + 1;
    poke_meta(d->path, "schema", &newer, sizeof newer);
    char msg[512] = "";
    assert_null(store_lmdb_new(d->path, STORE_DURABLE_MIN_BYTES, msg, sizeof msg));
    assert_non_null(strstr(msg, d->path));
    assert_non_null(strstr(msg, "schema version"));
    assert_non_null(strstr(msg, "upgrade credwatch"));
    /* the refusal changed nothing: the right version opens again */
    poke_meta(d->path, "schema", &info.schema, sizeof info.schema);
    assert_non_null(s = open_dir(d->path, STORE_DURABLE_MIN_BYTES));
    store_free(s);
}

static void t_foreign_file_refused(void **state)
{
    struct dir *d = *state;
    struct store *s = open_dir(d->path, STORE_DURABLE_MIN_BYTES);
    assert_non_null(s);
    store_free(s);
    poke_meta(d->path, "app", "other", 5);
    char msg[512] = "";
    assert_null(store_lmdb_new(d->path, STORE_DURABLE_MIN_BYTES, msg, sizeof msg));
    assert_non_null(strstr(msg, "not credwatch's"));
    /* a file that is not LMDB at all */
    char f[300];
    snprintf(f, sizeof f, "%s/sub", d->path);
    assert_int_equal(mkdir(f, 0700), 0);
    snprintf(f, sizeof f, "%s/sub/data.mdb", d->path);
    FILE *fp = fopen(f, "w");
    assert_non_null(fp);
    for (int i = 0; i < 4096; i++)
        fputs("not a database ", fp);
    fclose(fp);
    snprintf(f, sizeof f, "%s/sub", d->path);
    assert_null(store_lmdb_new(f, STORE_DURABLE_MIN_BYTES, msg, sizeof msg));
    assert_non_null(strstr(msg, f));
}

static void t_bad_arguments(void **state)
{
    struct dir *d = *state;
    char msg[512] = "";
    assert_null(store_lmdb_new("", STORE_DURABLE_MIN_BYTES, msg, sizeof msg));
    assert_null(store_lmdb_new(d->path, STORE_DURABLE_MIN_BYTES - 1, msg, sizeof msg));
    assert_non_null(strstr(msg, "bound"));
    char f[300];
    snprintf(f, sizeof f, "%s/file", d->path);
    FILE *fp = fopen(f, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_null(store_lmdb_new(f, STORE_DURABLE_MIN_BYTES, msg, sizeof msg));
    assert_non_null(strstr(msg, f));
}

static int commit_key(struct store *s, const char *akid, uint64_t ver, const uint8_t *blob, size_t len,
                      int64_t expire_ms)
{
    uint64_t h = det_id_hash(akid);
    struct store_commit c = { akid, ver, ver + 1, blob, len, &h, 1, expire_ms, STORE_KEEP_PENDING, 0 };
    int rc = store_commit(s, &c, 1);
    return rc ? rc : c.ok ? 0 : 1;
}

/* At the file's bound writes fail as unavailable with the reason; reads go on; once the sweeper
 * removed expired keys, the space is reused and writes succeed again. */
static void t_bound_then_reuse(void **state)
{
    struct dir *d = *state;
    struct store *s = open_dir(d->path, STORE_DURABLE_MIN_BYTES);
    assert_non_null(s);
    static uint8_t blob[T_FILL_BLOB];
    memset(blob, 'x', sizeof blob);
    int64_t now = cw_now_ms();
    int rc = 0, n = 0;
    char akid[32];
    while (n < 100000) {  /* 16 MiB / 3 KB: refused well before */
        snprintf(akid, sizeof akid, "ASIAFILL%08d", n);
        /* the first 1,000 expire an hour before the rest: what the sweep (told it is that hour; the
         * background sweeper goes by the clock) will free */
        rc = commit_key(s, akid, 0, blob, sizeof blob, n < 1000 ? now + 3600 * 1000 : now + 7200 * 1000);
        if (rc)
            break;
        n++;
    }
    assert_int_equal(rc, CW_EUNAVAIL);
    assert_true(n > 1000);
    assert_non_null(strstr(store_why(s), "CREDWATCH_DATA_MAX_BYTES"));
    /* a finding and an analyst's status still go in: the headroom is theirs and the sweeper's */
    struct store_finding_put p = { .id = "cwf-at-bound", .evidence_json = "{}", .severity = "high", .version = 1,
                                   .new_outside = 1, .now_ms = now };
    assert_int_equal(store_finding_put(s, &p, 1), 0);
    assert_int_equal(store_finding_patch(s, "cwf-at-bound", STORE_ST_ACKNOWLEDGED, "seen", now), 0);
    snprintf(akid, sizeof akid, "ASIAFILL%08d", n - 1);  /* a long-lived one */
    uint64_t h = det_id_hash(akid);
    uint8_t seen = 0;
    struct store_load l = { akid, &h, 1, &seen, NULL, 0, 0 };
    assert_int_equal(store_load(s, &l, 1), 0);  /* reads are served at the bound */
    assert_int_equal(l.blob_len, sizeof blob);
    assert_int_equal(seen, 1);
    size_t removed = 0;
    do {
        assert_int_equal(store_lmdb_sweep(s, now + 3601 * 1000, 256, &removed), 0);
        assert_true(removed <= 256);  /* a step is bounded */
    } while (removed);
    struct store_lmdb_info info;
    assert_int_equal(store_lmdb_info(s, &info), 0);
    assert_int_equal(info.swept_keys, 1000);
    assert_int_equal(info.keys, (uint64_t)n - 1000);
    assert_int_equal(commit_key(s, "ASIAAFTERSWEEP", 0, blob, sizeof blob, now + 7200 * 1000), 0);
    store_free(s);
}

/* An expired key reads as absent before any sweep, and a reused id starts afresh. */
static void t_expired_absent_then_reused(void **state)
{
    struct dir *d = *state;
    struct store *s = open_dir(d->path, STORE_DURABLE_MIN_BYTES);
    assert_non_null(s);
    int64_t now = cw_now_ms();
    assert_int_equal(commit_key(s, "ASIAEXPIRING", 0, (const uint8_t *)"a", 1, now + 200), 0);
    while (cw_now_ms() <= now + 250)
        usleep(20000);
    uint64_t h = det_id_hash("ASIAEXPIRING");
    uint8_t seen = 1;
    struct store_load l = { "ASIAEXPIRING", &h, 1, &seen, NULL, 0, 0 };
    assert_int_equal(store_load(s, &l, 1), 0);
    assert_int_equal(l.version, 0);
    assert_int_equal(seen, 0);  /* the dedup set went with the key */
    /* version 0 writes again (the expired one is as absent), and the old dedup entries are gone */
    assert_int_equal(commit_key(s, "ASIAEXPIRING", 0, (const uint8_t *)"b", 1, now + 3600 * 1000), 0);
    struct store_lmdb_info info;
    assert_int_equal(store_lmdb_info(s, &info), 0);
    assert_int_equal(info.keys, 1);
    store_free(s);
}

struct writer {
    struct store *s;
    int id, failed;
};

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    char akid[32];
    for (int i = 0; i < T_PER_THREAD; i++) {
        snprintf(akid, sizeof akid, "ASIAW%02dK%04d", w->id, i);
        if (commit_key(w->s, akid, 0, (const uint8_t *)akid, strlen(akid), cw_now_ms() + 3600 * 1000))
            w->failed++;
    }
    return NULL;
}

/* Writers on their own handles: every answered write is there after a reopen (the answers came
 * after their commits), and none was lost to another's group. */
static void t_concurrent_writers_reopen(void **state)
{
    struct dir *d = *state;
    struct store *s = open_dir(d->path, STORE_DURABLE_MIN_BYTES);
    assert_non_null(s);
    pthread_t t[T_THREADS];
    struct writer w[T_THREADS];
    for (int i = 0; i < T_THREADS; i++) {
        w[i] = (struct writer){ store_clone(s), i, 0 };
        assert_non_null(w[i].s);
        assert_int_equal(pthread_create(&t[i], NULL, writer_main, &w[i]), 0);
    }
    for (int i = 0; i < T_THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failed, 0);
        store_free(w[i].s);
    }
    store_free(s);
    assert_non_null(s = open_dir(d->path, STORE_DURABLE_MIN_BYTES));
    struct store_lmdb_info info;
    assert_int_equal(store_lmdb_info(s, &info), 0);
    assert_int_equal(info.keys, T_THREADS * T_PER_THREAD);
    uint64_t h = 0;
    uint8_t seen;
    struct store_load l = { "ASIAW03K0039", &h, 1, &seen, NULL, 0, 0 };
    assert_int_equal(store_load(s, &l, 1), 0);
    assert_int_equal(l.version, 1);
    assert_memory_equal(l.blob, "ASIAW03K0039", l.blob_len);
    store_free(s);
}

/* A backup taken while open is a store of its own with the same content. */
static void t_backup_opens(void **state)
{
    struct dir *d = *state;
    struct store *s = open_dir(d->path, STORE_DURABLE_MIN_BYTES);
    assert_non_null(s);
    assert_int_equal(commit_key(s, "ASIABACKEDUP", 0, (const uint8_t *)"state", 5, cw_now_ms() + 3600 * 1000), 0);
    struct store_finding_put p = { .id = "cwf-backup", .evidence_json = "{}", .severity = "high", .version = 1,
                                   .new_outside = 1, .now_ms = cw_now_ms() };
    assert_int_equal(store_finding_put(s, &p, 1), 0);
    assert_int_equal(store_finding_patch(s, "cwf-backup", STORE_ST_ACKNOWLEDGED, "looked at", cw_now_ms()), 0);
    char dest[300], msg[256];
    snprintf(dest, sizeof dest, "%s/copy", d->path);
    assert_int_equal(store_lmdb_backup(s, dest, msg, sizeof msg), 0);
    struct store *c = open_dir(dest, STORE_DURABLE_MIN_BYTES);
    assert_non_null(c);
    struct store_finding f;
    assert_int_equal(store_finding_get(c, "cwf-backup", &f), 0);
    assert_int_equal(f.status, STORE_ST_ACKNOWLEDGED);
    assert_string_equal(f.note, "looked at");
    store_finding_free(&f);
    struct store_lmdb_info info;
    assert_int_equal(store_lmdb_info(c, &info), 0);
    assert_int_equal(info.keys, 1);
    store_free(c);
    store_free(s);
}

/* Writes the raw value `v` under `key` in database `db` straight into the directory's file (the
 * store must be closed): a record of a shape the store does not expect. */
static void poke_raw(const char *path, const char *db, const void *key, size_t klen, const void *v, size_t vlen)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, path, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
    MDB_val k = { klen, (void *)key }, val = { vlen, (void *)v };
    assert_int_equal(mdb_put(txn, dbi, &k, &val, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* An expired index entry whose record cannot be read (a damaged or foreign value) must not stop
 * the sweeper: before the fix, every step failed on it and rolled back, so no key or finding was
 * ever removed again and the file grew without bound. */
static void t_sweep_past_unreadable(void **state)
{
    struct dir *d = *state;
    struct store *s = open_dir(d->path, STORE_DURABLE_MIN_BYTES);
    assert_non_null(s);
    int64_t now = cw_now_ms();
    assert_int_equal(commit_key(s, "ASIASWEEPME00001", 0, (const uint8_t *)"a", 1, now + 1000), 0);
    store_free(s);
    /* a finding and a key whose records are garbage, both indexed as expired long ago */
    uint8_t ik[8 + 32] = { 0, 0, 0, 0, 0, 0, 0, 1 };
    memcpy(ik + 8, "cwf-garbage", 11);
    poke_raw(d->path, "finding", "cwf-garbage", 11, "junk", 4);
    poke_raw(d->path, "fexp", ik, 8 + 11, "", 0);
    memcpy(ik + 8, "ASIAGARBAGE00001", 16);
    poke_raw(d->path, "key", "ASIAGARBAGE00001", 16, "xy", 2);
    poke_raw(d->path, "kexp", ik, 8 + 16, "", 0);
    assert_non_null(s = open_dir(d->path, STORE_DURABLE_MIN_BYTES));
    size_t removed = 0, total = 0;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(store_lmdb_sweep(s, now + 3600 * 1000, 256, &removed), 0);
        total += removed;
    }
    assert_true(total >= 1);
    struct store_lmdb_info info;
    assert_int_equal(store_lmdb_info(s, &info), 0);
    assert_int_equal(info.swept_keys >= 1, 1);
    assert_int_equal(info.keys, 0);      /* the garbage key went too: its id can be written again */
    assert_int_equal(info.findings, 0);
    assert_non_null(strstr(store_why(s), "unreadable"));
    assert_int_equal(commit_key(s, "ASIAGARBAGE00001", 0, (const uint8_t *)"b", 1, now + 3600 * 1000), 0);
    uint8_t seen = 0;
    uint64_t h = det_id_hash("ASIASWEEPME00001");
    struct store_load l = { "ASIASWEEPME00001", &h, 1, &seen, NULL, 0, 0 };
    assert_int_equal(store_load(s, &l, 1), 0);
    assert_int_equal(l.version, 0);
    store_free(s);
}

#define T_FULL_WRITERS 4
#define T_FULL_TRIES 400      /* commits per writer while the file may not grow */
#define T_FULL_BLOB 6000      /* bytes per key: a few commits fill the room left */

struct full_writer {
    struct store *s;
    int id;
    uint8_t ok[T_FULL_TRIES];  /* 1: answered 0, so it must be on disk */
    int n_ok, n_err;
};

static void *full_writer_main(void *arg)
{
    struct full_writer *w = arg;
    static const uint8_t blob[T_FULL_BLOB];
    char akid[32];
    for (int i = 0; i < T_FULL_TRIES; i++) {
        snprintf(akid, sizeof akid, "ASIAFULL%02dK%04d", w->id, i);
        int rc = commit_key(w->s, akid, 0, blob, sizeof blob, cw_now_ms() + 3600 * 1000);
        w->ok[i] = rc == 0;
        w->n_ok += rc == 0;
        w->n_err += rc != 0;
    }
    return NULL;
}

/* The disk fills during a group commit (here: the file may not grow past a limit, EFBIG): every
 * write of a failed group answers an error, every write answered 0 is there after the limit
 * goes and after a reopen, and the store goes on writing once there is room again. */
static void t_disk_full_answers(void **state)
{
    struct dir *d = *state;
    struct store *s = open_dir(d->path, STORE_DURABLE_MIN_BYTES);
    assert_non_null(s);
    assert_int_equal(commit_key(s, "ASIABEFOREFULL01", 0, (const uint8_t *)"a", 1, cw_now_ms() + 3600 * 1000), 0);
    char f[300];
    struct stat st;
    snprintf(f, sizeof f, "%s/data.mdb", d->path);
    assert_int_equal(stat(f, &st), 0);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)st.st_size + 256 * 1024;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    pthread_t t[T_FULL_WRITERS];
    static struct full_writer w[T_FULL_WRITERS];
    for (int i = 0; i < T_FULL_WRITERS; i++) {
        w[i] = (struct full_writer){ .s = store_clone(s), .id = i };
        assert_non_null(w[i].s);
        assert_int_equal(pthread_create(&t[i], NULL, full_writer_main, &w[i]), 0);
    }
    int n_ok = 0, n_err = 0;
    for (int i = 0; i < T_FULL_WRITERS; i++) {
        pthread_join(t[i], NULL);
        n_ok += w[i].n_ok;
        n_err += w[i].n_err;
    }
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    fprintf(stderr, "# disk full: %d answered, %d refused\n", n_ok, n_err);
    assert_true(n_err > 0);
    /* room again: the store writes */
    assert_int_equal(commit_key(s, "ASIAAFTERFULL001", 0, (const uint8_t *)"b", 1, cw_now_ms() + 3600 * 1000), 0);
    for (int round = 0; round < 2; round++) {
        uint64_t h = 0;
        uint8_t seen;
        for (int i = 0; i < T_FULL_WRITERS; i++)
            for (int j = 0; j < T_FULL_TRIES; j++) {
                char akid[32];
                snprintf(akid, sizeof akid, "ASIAFULL%02dK%04d", i, j);
                struct store_load l = { akid, &h, 1, &seen, NULL, 0, 0 };
                assert_int_equal(store_load(s, &l, 1), 0);
                if (w[i].ok[j])
                    assert_int_equal(l.version, 1);  /* acknowledged: there */
            }
        if (round == 0) {
            for (int i = 0; i < T_FULL_WRITERS; i++)
                store_free(w[i].s);
            store_free(s);
            assert_non_null(s = open_dir(d->path, STORE_DURABLE_MIN_BYTES));
        }
    }
    store_free(s);
}

#define T_HUGE_EVIDENCE ((size_t)24 << 20)  /* more than the smallest file and its headroom */
#define T_HUGE_TRIES 6

struct huge_putter {
    struct store *s;
    int n_err;
};

static void *huge_main(void *arg)
{
    struct huge_putter *hp = arg;
    char *ev = malloc(T_HUGE_EVIDENCE + 1);
    assert_non_null(ev);
    memset(ev, 'e', T_HUGE_EVIDENCE);
    ev[T_HUGE_EVIDENCE] = 0;
    for (int i = 0; i < T_HUGE_TRIES; i++) {
        struct store_finding_put p = { .id = "cwf-too-big", .evidence_json = ev, .severity = "high", .version = 1,
                                       .new_outside = 1, .now_ms = cw_now_ms() };
        hp->n_err += store_finding_put(hp->s, &p, 1) != 0;
    }
    free(ev);
    return NULL;
}

/* A job that fills the map (MDB_MAP_FULL in its nested transaction) while others share its
 * group: it alone fails; the others' writes are answered 0 and are there after a reopen. */
static void t_map_full_job_alone_fails(void **state)
{
    struct dir *d = *state;
    struct store *s = open_dir(d->path, STORE_DURABLE_MIN_BYTES);
    assert_non_null(s);
    struct huge_putter hp = { store_clone(s), 0 };
    pthread_t th, tw[T_THREADS];
    struct writer w[T_THREADS];
    assert_int_equal(pthread_create(&th, NULL, huge_main, &hp), 0);
    for (int i = 0; i < T_THREADS; i++) {
        w[i] = (struct writer){ store_clone(s), i, 0 };
        assert_int_equal(pthread_create(&tw[i], NULL, writer_main, &w[i]), 0);
    }
    pthread_join(th, NULL);
    for (int i = 0; i < T_THREADS; i++) {
        pthread_join(tw[i], NULL);
        assert_int_equal(w[i].failed, 0);
        store_free(w[i].s);
    }
    assert_int_equal(hp.n_err, T_HUGE_TRIES);
    store_free(hp.s);
    struct store_finding f;
    assert_int_equal(store_finding_get(s, "cwf-too-big", &f), CW_ENOTFOUND);
    store_free(s);
    assert_non_null(s = open_dir(d->path, STORE_DURABLE_MIN_BYTES));
    struct store_lmdb_info info;
    assert_int_equal(store_lmdb_info(s, &info), 0);
    assert_int_equal(info.keys, T_THREADS * T_PER_THREAD);
    assert_int_equal(info.findings, 0);
    store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(t_engine_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(t_schema_newer_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(t_foreign_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(t_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(t_bound_then_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(t_expired_absent_then_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(t_concurrent_writers_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(t_backup_opens, setup, teardown),
        cmocka_unit_test_setup_teardown(t_sweep_past_unreadable, setup, teardown),
        cmocka_unit_test_setup_teardown(t_disk_full_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(t_map_full_job_alone_fails, setup, teardown),
    };
    return cmocka_run_group_tests_name("store_durable", tests, NULL, NULL);
}
