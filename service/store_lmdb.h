/* store_lmdb.h — inside the durable store: what its three files share (store_lmdb.c: the
 * environment, key state, findings, expiry; store_lmdb_out.c: the outbox; store_lmdb_txn.c: the
 * shared state's errors, the committer and the read snapshots, below both).
 * Nothing outside these files includes it: the store's face is store.h.
 *
 * Writes: every write runs as a job on the one committer thread (lm_write). The committer takes
 * the jobs queued while it was busy, runs each in its own nested transaction of one write
 * transaction, commits once (LMDB syncs data pages, then the meta page), and only then answers
 * each job: a write call that returned 0 is on disk. A job that fails is rolled back alone.
 * Reads: a handle's own read-only snapshot (lm_read / lm_read_done), never blocked by writes.
 */
#ifndef CW_STORE_LMDB_H
#define CW_STORE_LMDB_H

#include <lmdb.h>
#include <pthread.h>
#include <stdint.h>

#include "store.h"

enum lm_db {
    LM_META = 0,  /* "schema" -> u32 version; "app" -> "credwatch" */
    LM_KEY,       /* akid -> struct lm_keyrec + blob */
    LM_SEEN,      /* akid -> u64 event hash (DUPSORT|DUPFIXED|INTEGERDUP): the dedup set */
    LM_KEXP,      /* [expire_ms BE64][akid] -> "" : keys by expiry, for the sweeper */
    LM_FIND,      /* finding id -> finding record (lm_frec_encode) */
    LM_FIDX,      /* [created_ms BE64][id] -> "" : newest first, the list cursor */
    LM_FEXP,      /* [expire_ms BE64][id] -> "" : findings by expiry */
    LM_OUT_META,  /* the outbox's own records: store_lmdb_out.c */
    LM_OUT_QUEUE,
    LM_OUT_SINK,
    LM_OUT_HELD,
    LM_OUT_REDO,
    LM_OUT_DEAD,
    LM_DB_COUNT
};

struct lm_shared;

/* A handle (one per thread): the store, its read snapshot, its copies of loaded blobs. */
struct lm_store {
    struct store base;
    struct lm_shared *sh;
    MDB_txn *rtxn;          /* reset between calls, renewed by lm_read */
    int rtxn_live;
    uint8_t *blobs;         /* this handle's copies of loaded blobs (valid until its next call) */
    size_t blobs_cap;
};

MDB_dbi lm_dbi(const struct lm_shared *sh, enum lm_db db);

/* A write job: runs on the committer thread inside its own nested transaction. Return 0 to keep
 * its changes, or an error (cw.h) to roll them back; an LMDB error should become CW_EUNAVAIL
 * through lm_err (which also records why for store_why). */
typedef int (*lm_job_fn)(MDB_txn *txn, struct lm_shared *sh, void *arg);

#define LM_DIR_MAX 3072            /* a data directory's path, bytes */
#define LM_WHY_MAX 256
#define LM_GROUP_MAX 256           /* jobs per commit: bounds one group's latency and its dirty pages */

/* A write waiting for the committer (lm_write's, on the caller's stack). */
struct lm_job {
    struct lm_job *next;
    lm_job_fn fn;
    void *arg;
    int rc;
    int done;
};

/* What the handles of one store share; fields under mu where they say so, the rest set at open. */
struct lm_shared {
    MDB_env *env;
    MDB_dbi dbi[LM_DB_COUNT];
    char dir[LM_DIR_MAX];
    int lock_fd;
    pthread_mutex_t mu;              /* the job queue, refs, why, stop */
    pthread_cond_t cv_job, cv_done, cv_stop;
    struct lm_job *head, *tail;
    int stop, refs;
    pthread_t committer, sweeper;
    int threads;                     /* 1 committer, 2 both running */
    char why[LM_WHY_MAX];
    uint64_t max_bytes;              /* CREDWATCH_DATA_MAX_BYTES: pages in the trees, freelist aside */
    unsigned psize;
    uint64_t swept_keys, swept_findings;
    struct lm_out *out;
};

/* The committer thread's body (store_lmdb_txn.c); store_lmdb_new starts it with the shared state. */
void *lm_committer_main(void *arg);

/* Runs fn(arg) as a job and returns its result once the group it joined is on disk; CW_EUNAVAIL
 * when the commit failed (disk full, I/O error: nothing of the group is kept). */
int lm_write(struct lm_shared *sh, lm_job_fn fn, void *arg);

/* This handle's read snapshot (renewed at each call: it sees every write that returned before). */
int lm_read(struct lm_store *h, MDB_txn **txn);
void lm_read_done(struct lm_store *h);

/* An LMDB return code as the store's error: 0 stays 0, MDB_NOTFOUND is CW_ENOTFOUND, the rest
 * CW_EUNAVAIL, with mdb_strerror and `what` kept for store_why. */
int lm_err(struct lm_shared *sh, int mdb_rc, const char *what);

/* ---- findings, as stored ------------------------------------------------------------------- */

/* A finding record, decoded: strings point into the LMDB value (valid while its transaction is). */
struct lm_frec {
    int64_t created_ms, updated_ms, expire_ms;
    uint64_t version;       /* key state version the evidence came from */
    uint64_t rv, qd;        /* outbox: the finding's last revision, the last one queued */
    uint32_t outside;       /* the evidence's outside count */
    uint32_t updates;       /* evidence-growth events pushed (at most STORE_UPDATES_MAX) */
    int32_t status, severity, rk;
    const char *account, *function, *workload, *note /* NULL: none */, *evidence;
};

/* 0, or CW_EFORMAT for a value that is not a finding record of this schema. */
int lm_frec_decode(const MDB_val *v, struct lm_frec *out);

/* out gets the finding's public shape, strings duplicated. 0 or CW_ENOMEM. */
int lm_frec_finding(const char *id, const struct lm_frec *r, struct store_finding *out);

/* ---- the outbox (store_lmdb_out.c) ----------------------------------------------------------
 * Same semantics as store_mem.c's outbox (store.h "Finding events"), in the same file, written in
 * the same transaction as the finding change that makes an event. */

/* 1 when this process opened at least one sink (out_open): only then are events recorded. */
int lm_out_recording(struct lm_shared *sh);

/* Queues finding `id` as of record r (revision r->rv, kind r->rk) in txn. 0 or an error. */
int lm_out_queue(MDB_txn *txn, struct lm_shared *sh, const char *id, const struct lm_frec *r, int64_t now_ms);

/* The outbox's part of the shared state: created at open, freed at close. */
struct lm_out;
struct lm_out *lm_out_new(void);
void lm_out_free(struct lm_out *o);
struct lm_out *lm_out_of(struct lm_shared *sh);

int lm_out_open(struct store *s, const char *const *sinks, size_t n);
int lm_out_read(struct store *s, const char *sink, const char *consumer, size_t max, int64_t now_ms,
                struct store_event *out, size_t *n);
int lm_out_ack(struct store *s, const char *sink, const char *const *entries, size_t n);
int lm_out_dead(struct store *s, const char *sink, const struct store_event *ev, const char *reason, int64_t now_ms);
int lm_out_trim(struct store *s, const char *sink, int64_t now_ms, size_t *dead_lettered);
int lm_out_stats(struct store *s, const char *sink, int64_t now_ms, struct store_out_stats *st);
int lm_out_dead_list(struct store *s, const char *sink, const char *after, size_t limit, struct store_event *out,
                     size_t *n, int *more);
int lm_out_dead_retry(struct store *s, const char *sink, const char *entry, int64_t now_ms, size_t *moved);

/* Tests only: the ops table's test_fault (store.h, enum store_fault). STORE_FAULT_OUTBOX makes
 * lm_out_queue fail with CW_EUNAVAIL until STORE_FAULT_NONE. */
int lm_test_fault(struct store *s, int fault);

#endif
