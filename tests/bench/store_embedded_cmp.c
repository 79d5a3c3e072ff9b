/* store_embedded_cmp.c — SQLite (WAL) beside LMDB on credwatch's store access pattern (issue 16, step 0).
 *
 * Not built by the Makefile (tests/bench/ is outside its globs). Build and run:
 *
 *   cc -O2 -Wall -pthread -o /tmp/store_embedded_cmp tests/bench/store_embedded_cmp.c -lsqlite3 -llmdb
 *   /tmp/store_embedded_cmp [DIR=/tmp/secmp] [SECONDS=4] [REPS=3] [sqlite-wal|lmdb]
 *
 * (Debian 12: apt-get install -y libsqlite3-dev liblmdb-dev.)
 *
 * What one "request" of N records does, as the engine does it (service/engine.c, one round):
 *   - read phase, in the worker thread on its own read handle (SQLite connection / LMDB read txn):
 *     load K key states (blob, version) and ask which of the N event ids each key has seen;
 *   - write phase, handed to the one committer thread: compare-and-set the K states (version check
 *     inside the write transaction; a lost race is counted and rewritten as the engine's retry
 *     would), add the N event ids to the per-key dedup sets, keep the per-key expiry index, put 1%
 *     of the records as findings (document ~1 KiB, created-time index, expiry index);
 *   - group commit: the committer takes every request queued, applies them all in one write
 *     transaction and commits it with an fsync (SQLite synchronous=FULL: one fsync of the WAL;
 *     LMDB default flags: fdatasync of the data pages, then the meta page
 *     written through its O_DSYNC descriptor); every request of the group is
 *     answered only after that commit returned. Several concurrent requests share one fsync.
 * Two worker threads. N=1 (single events: K=1) and N=1000 (a batch: K=100 keys, 10 events each).
 * Keys are drawn from a space of KEYSPACE access key ids. Each configuration runs REPS times on a
 * fresh directory; printed: the median records/s, and the bytes on disk per key touched (after a
 * WAL checkpoint for SQLite; data.mdb's size for LMDB) with the events per key behind that figure
 * (the dedup sets grow with events per key, up to STORE_SEEN_MAX = 2048 in the real store), and the
 * p50/p99 latency of a request (its load, its wait in the queue, its group's commit), median over runs.
 * Not measured here: expiry sweeps, finding_list filters, the outbox, backup (see docs/durable-store.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KEYSPACE 20000
#define BLOB_LEN 600            /* a key's det_encode blob: README puts a marked key past 512 B */
#define EVIDENCE_LEN 1000       /* a finding's evidence document */
#define MAX_K 100
#define WORKERS_MAX 16
static int WORKERS = 2;          /* CW_BENCH_WORKERS=n (1..16) to see groups form with more senders */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t rnd(uint64_t *s)  /* xorshift64* */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "store_embedded_cmp: %s: %s\n", what, why);
    exit(1);
}

/* ---- one request ------------------------------------------------------------------------------ */

struct req {
    int n, k;
    char akid[MAX_K][24];
    uint64_t ver[MAX_K];            /* as loaded */
    uint64_t *hash;                 /* [n]: record i belongs to key i % k */
    uint8_t *seen;                  /* [n] */
    int nfind;
    char fid[16][40];
    int done;
    struct req *next;
};

static void req_make(struct req *r, int n, uint64_t *seed)
{
    r->n = n;
    r->k = n == 1 ? 1 : (n / 10 > MAX_K ? MAX_K : n / 10);
    for (int j = 0; j < r->k; j++) {
        /* distinct keys within a request, as the engine groups events by key */
        for (;;) {
            snprintf(r->akid[j], sizeof r->akid[j], "ASIA%016" PRIu64, rnd(seed) % KEYSPACE);
            int dup = 0;
            for (int i = 0; i < j; i++)
                dup |= !strcmp(r->akid[i], r->akid[j]);
            if (!dup)
                break;
        }
    }
    for (int i = 0; i < n; i++)
        r->hash[i] = rnd(seed);
    r->nfind = 0;
    for (int i = 0; i < n; i++)
        if (rnd(seed) % 100 == 0 && r->nfind < 16)  /* 1% of records make a finding write */
            snprintf(r->fid[r->nfind++], sizeof r->fid[0], "f-%016" PRIx64, rnd(seed));
    r->done = 0;
    r->next = NULL;
}

/* ---- engines ---------------------------------------------------------------------------------- */

struct engine {
    const char *name;
    void *(*open)(const char *dir);
    void *(*reader)(void *db);
    void (*reader_free)(void *rd);
    void (*load)(void *rd, struct req *r);
    void (*write_group)(void *db, struct req **rs, int n, uint64_t *conflicts);
    long long (*disk_bytes)(void *db, const char *dir);
    void (*close)(void *db);
};

static uint8_t blob_src[BLOB_LEN + 64];
static char evidence_src[EVIDENCE_LEN + 1];

/* -- SQLite ----------------------------------------------------------------------------------- */

static const char sq_schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID;"
    "INSERT OR IGNORE INTO meta VALUES('schema','1');"
    "CREATE TABLE IF NOT EXISTS keystate(akid TEXT PRIMARY KEY, version INTEGER NOT NULL,"
    " expire_ms INTEGER NOT NULL, keep INTEGER NOT NULL, n_seen INTEGER NOT NULL, blob BLOB NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS keystate_exp ON keystate(expire_ms);"
    "CREATE TABLE IF NOT EXISTS seen(akid TEXT NOT NULL, h INTEGER NOT NULL, PRIMARY KEY(akid, h)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS finding(id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL,"
    " updated_ms INTEGER NOT NULL, expire_ms INTEGER NOT NULL, status INTEGER NOT NULL,"
    " severity INTEGER NOT NULL, account TEXT, function TEXT, workload TEXT, version INTEGER NOT NULL,"
    " outside_count INTEGER NOT NULL, nu INTEGER NOT NULL, rv INTEGER NOT NULL, qd INTEGER NOT NULL,"
    " note TEXT, evidence TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS finding_created ON finding(created_ms, id);"
    "CREATE INDEX IF NOT EXISTS finding_exp ON finding(expire_ms);";

struct sq_db {
    char path[512];
    sqlite3 *w;
    sqlite3_stmt *get_ver, *put_key, *add_seen, *put_finding;
};

struct sq_rd {
    sqlite3 *c;
    sqlite3_stmt *get, *has;
};

static sqlite3 *sq_conn(const char *path)
{
    sqlite3 *c;
    if (sqlite3_open_v2(path, &c, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL))
        die("sqlite3_open_v2", sqlite3_errmsg(c));
    sqlite3_busy_timeout(c, 5000);
    return c;
}

static void sq_exec(sqlite3 *c, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(c, sql, NULL, NULL, &err) != SQLITE_OK)
        die(sql, err ? err : "?");
}

static sqlite3_stmt *sq_prep(sqlite3 *c, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v3(c, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL))
        die(sql, sqlite3_errmsg(c));
    return st;
}

static void *sq_open(const char *dir)
{
    struct sq_db *d = calloc(1, sizeof *d);
    snprintf(d->path, sizeof d->path, "%s/credwatch.db", dir);
    d->w = sq_conn(d->path);
    sq_exec(d->w, sq_schema);
    d->get_ver = sq_prep(d->w, "SELECT version FROM keystate WHERE akid=?1");
    d->put_key = sq_prep(d->w, "INSERT INTO keystate(akid,version,expire_ms,keep,n_seen,blob) VALUES(?1,?2,?3,0,?4,?5)"
                               " ON CONFLICT(akid) DO UPDATE SET version=?2, expire_ms=?3, n_seen=n_seen+?4, blob=?5");
    d->add_seen = sq_prep(d->w, "INSERT OR IGNORE INTO seen(akid,h) VALUES(?1,?2)");
    d->put_finding = sq_prep(d->w, "INSERT INTO finding(id,created_ms,updated_ms,expire_ms,status,severity,account,"
                                   "function,workload,version,outside_count,nu,rv,qd,note,evidence)"
                                   " VALUES(?1,?2,?2,?3,0,2,'123456789012','fn','lambda',1,1,0,1,0,NULL,?4)"
                                   " ON CONFLICT(id) DO UPDATE SET updated_ms=?2, evidence=?4, rv=rv+1");
    return d;
}

static void *sq_reader(void *db)
{
    struct sq_db *d = db;
    struct sq_rd *r = calloc(1, sizeof *r);
    r->c = sq_conn(d->path);
    r->get = sq_prep(r->c, "SELECT version, blob FROM keystate WHERE akid=?1");
    r->has = sq_prep(r->c, "SELECT 1 FROM seen WHERE akid=?1 AND h=?2");
    return r;
}

static void sq_reader_free(void *rd)
{
    struct sq_rd *r = rd;
    sqlite3_finalize(r->get);
    sqlite3_finalize(r->has);
    sqlite3_close(r->c);
    free(r);
}

static void sq_load(void *rd, struct req *q)
{
    struct sq_rd *r = rd;
    sq_exec(r->c, "BEGIN");  /* one snapshot for the whole load, as the store's load call would */
    for (int j = 0; j < q->k; j++) {
        sqlite3_bind_text(r->get, 1, q->akid[j], -1, SQLITE_STATIC);
        q->ver[j] = 0;
        if (sqlite3_step(r->get) == SQLITE_ROW) {
            q->ver[j] = (uint64_t)sqlite3_column_int64(r->get, 0);
            volatile size_t len = sqlite3_column_bytes(r->get, 1);  /* the blob is read */
            (void)len;
        }
        sqlite3_reset(r->get);
    }
    for (int i = 0; i < q->n; i++) {
        sqlite3_bind_text(r->has, 1, q->akid[i % q->k], -1, SQLITE_STATIC);
        sqlite3_bind_int64(r->has, 2, (int64_t)q->hash[i]);
        q->seen[i] = sqlite3_step(r->has) == SQLITE_ROW;
        sqlite3_reset(r->has);
    }
    sq_exec(r->c, "COMMIT");
}

static void sq_write_group(void *db, struct req **rs, int n, uint64_t *conflicts)
{
    struct sq_db *d = db;
    int64_t now = wall_ms();
    sq_exec(d->w, "BEGIN IMMEDIATE");
    for (int g = 0; g < n; g++) {
        struct req *q = rs[g];
        for (int j = 0; j < q->k; j++) {
            sqlite3_bind_text(d->get_ver, 1, q->akid[j], -1, SQLITE_STATIC);
            uint64_t cur = sqlite3_step(d->get_ver) == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(d->get_ver, 0) : 0;
            sqlite3_reset(d->get_ver);
            if (cur != q->ver[j])
                (*conflicts)++;  /* the engine would reload and reapply: the rewrite below stands for it */
            int added = 0;
            for (int i = j; i < q->n; i += q->k) {
                if (q->seen[i])
                    continue;
                sqlite3_bind_text(d->add_seen, 1, q->akid[j], -1, SQLITE_STATIC);
                sqlite3_bind_int64(d->add_seen, 2, (int64_t)q->hash[i]);
                if (sqlite3_step(d->add_seen) != SQLITE_DONE)
                    die("seen", sqlite3_errmsg(d->w));
                added += sqlite3_changes(d->w);
                sqlite3_reset(d->add_seen);
            }
            sqlite3_bind_text(d->put_key, 1, q->akid[j], -1, SQLITE_STATIC);
            sqlite3_bind_int64(d->put_key, 2, (int64_t)cur + 1);
            sqlite3_bind_int64(d->put_key, 3, now + 13 * 3600 * 1000LL);
            sqlite3_bind_int(d->put_key, 4, added);
            sqlite3_bind_blob(d->put_key, 5, blob_src + (q->hash[0] % 64), BLOB_LEN, SQLITE_STATIC);
            if (sqlite3_step(d->put_key) != SQLITE_DONE)
                die("keystate", sqlite3_errmsg(d->w));
            sqlite3_reset(d->put_key);
        }
        for (int f = 0; f < q->nfind; f++) {
            sqlite3_bind_text(d->put_finding, 1, q->fid[f], -1, SQLITE_STATIC);
            sqlite3_bind_int64(d->put_finding, 2, now);
            sqlite3_bind_int64(d->put_finding, 3, now + 90LL * 24 * 3600 * 1000);
            sqlite3_bind_text(d->put_finding, 4, evidence_src, EVIDENCE_LEN, SQLITE_STATIC);
            if (sqlite3_step(d->put_finding) != SQLITE_DONE)
                die("finding", sqlite3_errmsg(d->w));
            sqlite3_reset(d->put_finding);
        }
    }
    sq_exec(d->w, "COMMIT");  /* synchronous=FULL: the WAL is fsynced before this returns */
}

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? 0 : (long long)st.st_size;
}

static long long sq_disk_bytes(void *db, const char *dir)
{
    struct sq_db *d = db;
    sq_exec(d->w, "PRAGMA wal_checkpoint(TRUNCATE)");
    char p[600];
    snprintf(p, sizeof p, "%s/credwatch.db", dir);
    long long b = file_size(p);
    snprintf(p, sizeof p, "%s/credwatch.db-wal", dir);
    return b + file_size(p);
}

static void sq_close(void *db)
{
    struct sq_db *d = db;
    sqlite3_finalize(d->get_ver);
    sqlite3_finalize(d->put_key);
    sqlite3_finalize(d->add_seen);
    sqlite3_finalize(d->put_finding);
    sqlite3_close(d->w);
    free(d);
}

/* -- LMDB ------------------------------------------------------------------------------------- */

/* Databases: key (akid -> [version u64][expire_ms i64][keep u8][n_seen u32][blob]),
 * seen (akid -> u64 hash, MDB_DUPSORT|MDB_DUPFIXED), kexp ([expire_ms BE][akid] -> ""),
 * finding (id -> [created i64][updated i64][expire i64][...][evidence]), fidx ([created BE][id] -> ""),
 * fexp ([expire BE][id] -> ""), meta (schema version). */
struct lm_db {
    MDB_env *env;
    MDB_dbi key, seen, kexp, finding, fidx, fexp, meta;
};

#define LMC(call) do { int rc_ = (call); if (rc_) die(#call, mdb_strerror(rc_)); } while (0)
#define KHDR 21

static void be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static void *lm_open(const char *dir)
{
    struct lm_db *d = calloc(1, sizeof *d);
    LMC(mdb_env_create(&d->env));
    LMC(mdb_env_set_maxdbs(d->env, 8));
    LMC(mdb_env_set_mapsize(d->env, (size_t)4 << 30));
    LMC(mdb_env_set_maxreaders(d->env, 64));
    LMC(mdb_env_open(d->env, dir, MDB_NOTLS, 0600));
    MDB_txn *t;
    LMC(mdb_txn_begin(d->env, NULL, 0, &t));
    LMC(mdb_dbi_open(t, "key", MDB_CREATE, &d->key));
    LMC(mdb_dbi_open(t, "seen", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &d->seen));
    LMC(mdb_dbi_open(t, "kexp", MDB_CREATE, &d->kexp));
    LMC(mdb_dbi_open(t, "finding", MDB_CREATE, &d->finding));
    LMC(mdb_dbi_open(t, "fidx", MDB_CREATE, &d->fidx));
    LMC(mdb_dbi_open(t, "fexp", MDB_CREATE, &d->fexp));
    LMC(mdb_dbi_open(t, "meta", MDB_CREATE, &d->meta));
    MDB_val k = { 6, "schema" }, v = { 1, "1" };
    LMC(mdb_put(t, d->meta, &k, &v, 0));
    LMC(mdb_txn_commit(t));
    return d;
}

struct lm_rd {
    struct lm_db *d;
};

static void *lm_reader(void *db)
{
    struct lm_rd *r = calloc(1, sizeof *r);
    r->d = db;
    return r;
}

static void lm_reader_free(void *rd) { free(rd); }

static void lm_load(void *rd, struct req *q)
{
    struct lm_db *d = ((struct lm_rd *)rd)->d;
    MDB_txn *t;
    LMC(mdb_txn_begin(d->env, NULL, MDB_RDONLY, &t));
    MDB_cursor *c;
    LMC(mdb_cursor_open(t, d->seen, &c));
    for (int j = 0; j < q->k; j++) {
        MDB_val k = { strlen(q->akid[j]), q->akid[j] }, v;
        q->ver[j] = 0;
        if (!mdb_get(t, d->key, &k, &v)) {
            memcpy(&q->ver[j], v.mv_data, 8);
            volatile uint8_t last = ((uint8_t *)v.mv_data)[v.mv_size - 1];  /* the blob is read */
            (void)last;
        }
    }
    for (int i = 0; i < q->n; i++) {
        const char *a = q->akid[i % q->k];
        MDB_val k = { strlen(a), (void *)a }, v = { 8, &q->hash[i] };
        q->seen[i] = mdb_cursor_get(c, &k, &v, MDB_GET_BOTH) == 0;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(t);
}

static void lm_write_group(void *db, struct req **rs, int n, uint64_t *conflicts)
{
    struct lm_db *d = db;
    int64_t now = wall_ms();
    MDB_txn *t;
    LMC(mdb_txn_begin(d->env, NULL, 0, &t));
    uint8_t buf[KHDR + BLOB_LEN];
    for (int g = 0; g < n; g++) {
        struct req *q = rs[g];
        for (int j = 0; j < q->k; j++) {
            size_t al = strlen(q->akid[j]);
            MDB_val k = { al, q->akid[j] }, v;
            uint64_t cur = 0;
            int64_t old_exp = 0;
            uint32_t n_seen = 0;
            if (!mdb_get(t, d->key, &k, &v)) {
                memcpy(&cur, v.mv_data, 8);
                memcpy(&old_exp, (uint8_t *)v.mv_data + 8, 8);
                memcpy(&n_seen, (uint8_t *)v.mv_data + 17, 4);
            }
            if (cur != q->ver[j])
                (*conflicts)++;
            for (int i = j; i < q->n; i += q->k) {
                if (q->seen[i])
                    continue;
                MDB_val sv = { 8, &q->hash[i] };
                int rc = mdb_put(t, d->seen, &k, &sv, MDB_NODUPDATA);
                if (rc && rc != MDB_KEYEXIST)
                    die("seen", mdb_strerror(rc));
                n_seen += !rc;
            }
            uint8_t ek[8 + 24];
            if (old_exp) {  /* the expiry index moves with the key's expiry */
                be64(ek, (uint64_t)old_exp);
                memcpy(ek + 8, q->akid[j], al);
                MDB_val ekv = { 8 + al, ek };
                mdb_del(t, d->kexp, &ekv, NULL);
            }
            uint64_t nv = cur + 1;
            int64_t exp = now + 13 * 3600 * 1000LL;
            memcpy(buf, &nv, 8);
            memcpy(buf + 8, &exp, 8);
            buf[16] = 0;
            memcpy(buf + 17, &n_seen, 4);
            memcpy(buf + KHDR, blob_src + (q->hash[0] % 64), BLOB_LEN);
            MDB_val nvv = { sizeof buf, buf };
            LMC(mdb_put(t, d->key, &k, &nvv, 0));
            be64(ek, (uint64_t)exp);
            memcpy(ek + 8, q->akid[j], al);
            MDB_val ekv = { 8 + al, ek }, empty = { 0, "" };
            LMC(mdb_put(t, d->kexp, &ekv, &empty, 0));
        }
        for (int f = 0; f < q->nfind; f++) {
            size_t il = strlen(q->fid[f]);
            MDB_val k = { il, q->fid[f] }, v;
            static uint8_t fb[64 + EVIDENCE_LEN];
            int64_t created = now, exp = now + 90LL * 24 * 3600 * 1000;
            int exists = !mdb_get(t, d->finding, &k, &v);
            if (exists)
                memcpy(&created, v.mv_data, 8);
            memcpy(fb, &created, 8);
            memcpy(fb + 8, &now, 8);
            memcpy(fb + 16, &exp, 8);
            memset(fb + 24, 0, 40);   /* status, severity, version, counts, revisions, field offsets */
            memcpy(fb + 64, evidence_src, EVIDENCE_LEN);
            MDB_val fv = { sizeof fb, fb };
            LMC(mdb_put(t, d->finding, &k, &fv, 0));
            if (!exists) {
                uint8_t ik[8 + 40];
                MDB_val empty = { 0, "" };
                be64(ik, (uint64_t)created);
                memcpy(ik + 8, q->fid[f], il);
                MDB_val ikv = { 8 + il, ik };
                LMC(mdb_put(t, d->fidx, &ikv, &empty, 0));
                be64(ik, (uint64_t)exp);
                LMC(mdb_put(t, d->fexp, &ikv, &empty, 0));
            }
        }
    }
    LMC(mdb_txn_commit(t));  /* default flags: data pages and the meta page are synced before this returns */
}

static long long lm_disk_bytes(void *db, const char *dir)
{
    (void)db;
    char p[600];
    snprintf(p, sizeof p, "%s/data.mdb", dir);
    return file_size(p);
}

static void lm_close(void *db)
{
    struct lm_db *d = db;
    mdb_env_close(d->env);
    free(d);
}

static const struct engine engines[] = {
    { "sqlite-wal", sq_open, sq_reader, sq_reader_free, sq_load, sq_write_group, sq_disk_bytes, sq_close },
    { "lmdb", lm_open, lm_reader, lm_reader_free, lm_load, lm_write_group, lm_disk_bytes, lm_close },
};

/* ---- the committer and the workers ------------------------------------------------------------ */

struct run {
    const struct engine *e;
    void *db;
    int n;
    double end;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    struct req *queue;
    int stop;
    uint64_t records, requests, groups, conflicts;
    uint8_t touched[KEYSPACE];
    double *lat;                    /* request latencies (s): load, queue, commit */
    size_t n_lat;
};

#define LAT_MAX 400000

static void *committer(void *arg)
{
    struct run *r = arg;
    struct req *group[WORKERS_MAX];
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->queue && !r->stop)
            pthread_cond_wait(&r->cv_work, &r->mu);
        if (!r->queue && r->stop)
            break;
        int n = 0;
        for (struct req *q = r->queue; q && n < (int)(sizeof group / sizeof *group); q = q->next)
            group[n++] = q;
        r->queue = NULL;
        pthread_mutex_unlock(&r->mu);
        uint64_t conflicts = 0;
        r->e->write_group(r->db, group, n, &conflicts);
        pthread_mutex_lock(&r->mu);
        r->conflicts += conflicts;
        r->groups++;
        for (int i = 0; i < n; i++)
            group[i]->done = 1;
        pthread_cond_broadcast(&r->cv_done);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

struct worker {
    struct run *r;
    uint64_t seed;
};

static void *worker(void *arg)
{
    struct worker *w = arg;
    struct run *r = w->r;
    void *rd = r->e->reader(r->db);
    struct req q;
    q.hash = malloc(r->n * sizeof *q.hash);
    q.seen = malloc(r->n);
    uint64_t recs = 0, reqs = 0;
    while (now_s() < r->end) {
        req_make(&q, r->n, &w->seed);
        double t_req = now_s();
        r->e->load(rd, &q);
        pthread_mutex_lock(&r->mu);
        q.next = r->queue;
        r->queue = &q;
        pthread_cond_signal(&r->cv_work);
        while (!q.done)
            pthread_cond_wait(&r->cv_done, &r->mu);
        for (int j = 0; j < q.k; j++)
            r->touched[strtoull(q.akid[j] + 4, NULL, 10)] = 1;
        if (r->n_lat < LAT_MAX)
            r->lat[r->n_lat++] = now_s() - t_req;
        pthread_mutex_unlock(&r->mu);
        recs += r->n;
        reqs++;
    }
    pthread_mutex_lock(&r->mu);
    r->records += recs;
    r->requests += reqs;
    pthread_mutex_unlock(&r->mu);
    r->e->reader_free(rd);
    free(q.hash);
    free(q.seen);
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct result {
    double rps, bytes_per_key, events_per_key, bytes_per_event, reqs_per_group, p50_ms, p99_ms;
    uint64_t conflicts;
};

static struct result run_once(const struct engine *e, const char *base, int n, double secs, int rep)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s-n%d-r%d", base, e->name, n, rep);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, dir);
    if (system(cmd))
        die("mkdir", dir);
    struct run *r = calloc(1, sizeof *r);
    r->e = e;
    r->n = n;
    r->lat = malloc(LAT_MAX * sizeof *r->lat);
    r->db = e->open(dir);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv_work, NULL);
    pthread_cond_init(&r->cv_done, NULL);
    pthread_t ct, wt[WORKERS_MAX];
    struct worker ws[WORKERS_MAX];
    pthread_create(&ct, NULL, committer, r);
    double t0 = now_s();
    r->end = t0 + secs;
    for (int i = 0; i < WORKERS; i++) {
        ws[i].r = r;
        ws[i].seed = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1) + (uint64_t)rep * 7919 + (uint64_t)n;
        pthread_create(&wt[i], NULL, worker, &ws[i]);
    }
    for (int i = 0; i < WORKERS; i++)
        pthread_join(wt[i], NULL);
    double t1 = now_s();
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv_work);
    pthread_mutex_unlock(&r->mu);
    pthread_join(ct, NULL);
    size_t keys = 0;
    for (size_t i = 0; i < KEYSPACE; i++)
        keys += r->touched[i];
    long long bytes = e->disk_bytes(r->db, dir);
    struct result res = {
        .rps = r->records / (t1 - t0),
        .bytes_per_key = keys ? (double)bytes / keys : 0,
        .events_per_key = keys ? (double)r->records / keys : 0,
        .bytes_per_event = r->records ? (double)bytes / r->records : 0,
        .reqs_per_group = r->groups ? (double)r->requests / r->groups : 0,
        .conflicts = r->conflicts,
    };
    qsort(r->lat, r->n_lat, sizeof *r->lat, cmp_d);
    if (r->n_lat) {
        res.p50_ms = r->lat[r->n_lat / 2] * 1e3;
        res.p99_ms = r->lat[(size_t)(r->n_lat * 0.99)] * 1e3;
    }
    free(r->lat);
    e->close(r->db);
    free(r);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd))
        die("rm", dir);
    return res;
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : "/tmp/secmp";
    double secs = argc > 2 ? atof(argv[2]) : 4;
    int reps = argc > 3 ? atoi(argv[3]) : 3;
    const char *only = argc > 4 ? argv[4] : NULL;  /* "sqlite-wal" or "lmdb": that engine only */
    if (getenv("CW_BENCH_WORKERS"))
        WORKERS = atoi(getenv("CW_BENCH_WORKERS"));
    if (WORKERS < 1 || WORKERS > WORKERS_MAX)
        die("CW_BENCH_WORKERS", "1..16");
    if (reps < 1 || reps > 15 || secs <= 0)
        die("usage", "store_embedded_cmp [DIR] [SECONDS] [REPS 1..15] [sqlite-wal|lmdb]");
    for (size_t i = 0; i < sizeof blob_src; i++)
        blob_src[i] = (uint8_t)(i * 131 + 7);  /* not compressible to nothing, not random either */
    for (size_t i = 0; i < EVIDENCE_LEN; i++)
        evidence_src[i] = "{\"k\":\"abcdefghij0123456789\"}"[i % 27];
    printf("sqlite %s, lmdb %s; %d workers, %d keys, %.1f s x %d reps per row, medians\n",
           sqlite3_libversion(), mdb_version(NULL, NULL, NULL), WORKERS, KEYSPACE, secs, reps);
    printf("%-11s %5s %12s %11s %11s %11s %10s %10s %8s %8s\n", "engine", "N", "records/s", "bytes/key", "events/key",
           "bytes/event", "reqs/commit", "conflicts", "p50 ms", "p99 ms");
    static const int ns[] = { 1, 1000 };
    for (size_t ni = 0; ni < 2; ni++)
        for (size_t ei = 0; ei < sizeof engines / sizeof *engines; ei++) {
            if (only && strcmp(only, engines[ei].name))
                continue;
            double rps[15], bpk[15], epk[15], bpe[15], rpg[15], cf[15], p50[15], p99[15];
            for (int k = 0; k < reps; k++) {
                struct result x = run_once(&engines[ei], base, ns[ni], secs, k);
                rps[k] = x.rps;
                bpk[k] = x.bytes_per_key;
                epk[k] = x.events_per_key;
                bpe[k] = x.bytes_per_event;
                rpg[k] = x.reqs_per_group;
                cf[k] = (double)x.conflicts;
                p50[k] = x.p50_ms;
                p99[k] = x.p99_ms;
            }
            printf("%-11s %5d %12.0f %11.0f %11.1f %11.1f %10.2f %10.0f %8.2f %8.2f\n", engines[ei].name, ns[ni],
                   median(rps, reps), median(bpk, reps), median(epk, reps), median(bpe, reps), median(rpg, reps),
                   median(cf, reps), median(p50, reps), median(p99, reps));
            fflush(stdout);
        }
    return 0;
}
