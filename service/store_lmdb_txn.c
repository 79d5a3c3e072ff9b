/* store_lmdb_txn.c — the durable store's lowest layer: the shared state's errors, the committer
 * (every write a job, jobs grouped into one write transaction and one commit) and the handles'
 * read snapshots. store_lmdb.c (the store: keys, findings, expiry, open) and store_lmdb_out.c (the
 * outbox) both call it, and it calls neither: its own file, so the arrows between the three point
 * one way (store_lmdb.c -> store_lmdb_out.c -> here).
 */
#include "store_lmdb.h"
#include "cw.h"

#include <pthread.h>
#include <stdio.h>

MDB_dbi lm_dbi(const struct lm_shared *sh, enum lm_db db)
{
    return sh->dbi[db];
}

struct lm_out *lm_out_of(struct lm_shared *sh)
{
    return sh->out;
}

int lm_err(struct lm_shared *sh, int mdb_rc, const char *what)
{
    if (mdb_rc == 0)
        return 0;
    if (mdb_rc == MDB_NOTFOUND)
        return CW_ENOTFOUND;
    pthread_mutex_lock(&sh->mu);
    if (mdb_rc == MDB_MAP_FULL)
        snprintf(sh->why, sizeof sh->why, "the data file in %s reached its bound (CREDWATCH_DATA_MAX_BYTES)", sh->dir);
    else
        snprintf(sh->why, sizeof sh->why, "%s: %s (data directory %s)", what, mdb_strerror(mdb_rc), sh->dir);
    pthread_mutex_unlock(&sh->mu);
    return CW_EUNAVAIL;
}

/* ---- the committer ------------------------------------------------------------------------- */

/* Runs one job in txn: its own nested transaction when it shares the group (so its failure is
 * rolled back alone), the group's transaction itself when it is alone (a nested transaction costs
 * an allocation of LMDB's dirty list). Returns 0 when the job's changes stand. */
static int run_job(struct lm_shared *sh, MDB_txn *txn, struct lm_job *j, int alone)
{
    if (alone)
        return j->rc = j->fn(txn, sh, j->arg);
    MDB_txn *child;
    int r = mdb_txn_begin(sh->env, txn, 0, &child);
    if (r)
        return j->rc = lm_err(sh, r, "begin a nested transaction");
    j->rc = j->fn(child, sh, j->arg);
    if (j->rc) {
        mdb_txn_abort(child);
        return 0;  /* the group goes on without it */
    }
    r = mdb_txn_commit(child);
    if (r)
        j->rc = lm_err(sh, r, "commit a nested transaction");
    return 0;
}

/* One group: one write transaction, one commit (the fsync), then every job's answer. */
static void run_group(struct lm_shared *sh, struct lm_job *jobs)
{
    MDB_txn *txn;
    int alone = jobs->next == NULL;
    int r = mdb_txn_begin(sh->env, NULL, 0, &txn);
    if (r) {
        int e = lm_err(sh, r, "begin the write transaction");
        for (struct lm_job *j = jobs; j; j = j->next)
            j->rc = e;
        return;
    }
    for (struct lm_job *j = jobs; j; j = j->next)
        run_job(sh, txn, j, alone);
    if (alone && jobs->rc) {
        mdb_txn_abort(txn);
        return;
    }
    r = mdb_txn_commit(txn);
    if (r) {
        int e = lm_err(sh, r, "commit");
        for (struct lm_job *j = jobs; j; j = j->next)
            if (!j->rc)
                j->rc = e;
    }
}

/* The id of the last committed transaction: it moves only when a commit wrote (and so synced). */
static size_t last_txnid(struct lm_shared *sh)
{
    MDB_envinfo ei;
    return mdb_env_info(sh->env, &ei) == 0 ? ei.me_last_txnid : 0;
}

/* Answers jobs (under sh->mu). */
static void answer(struct lm_shared *sh, struct lm_job *jobs)
{
    for (struct lm_job *j = jobs; j; j = j->next)
        j->done = 1;
    pthread_cond_broadcast(&sh->cv_done);
}

/* Takes the next group off the queue (under sh->mu): at most LM_GROUP_MAX jobs. */
static struct lm_job *take_group(struct lm_shared *sh)
{
    struct lm_job *jobs = sh->head, *last = jobs;
    for (int n = 1; n < LM_GROUP_MAX && last->next; n++)
        last = last->next;
    sh->head = last->next;
    if (!sh->head)
        sh->tail = NULL;
    last->next = NULL;
    return jobs;
}

/* A commit's two synchronous points, made one. LMDB commits in two steps: the data pages, fsynced,
 * then the meta page that makes them the current state. The environment is opened MDB_NOMETASYNC:
 * the meta page is written but not synced at commit, which keeps the file consistent (the data is
 * on disk before the meta that points to it) and leaves the last commit undone by a power loss
 * until the next sync. So a group's jobs are answered only once its meta page is on disk too:
 * after the next group's commit (its fsync of the file flushes the earlier meta page with its own
 * data) when one is queued, else after an fsync of its own. Under load that is one fsync per group
 * instead of two; alone, the same two. A commit that wrote nothing (every job failed, or only
 * read) syncs nothing: the group waiting is then synced as if nothing were queued. A kill -9 loses
 * neither way (the page cache outlives the process); tests/it_durable.sh checks that part. */
void *lm_committer_main(void *arg)
{
    struct lm_shared *sh = arg;
    struct lm_job *pending = NULL;  /* committed; their meta page not yet synced */
    pthread_mutex_lock(&sh->mu);
    for (;;) {
        if (pending && !sh->head) {
            pthread_mutex_unlock(&sh->mu);
            int r = mdb_env_sync(sh->env, 1);
            int e = r ? lm_err(sh, r, "sync the data file") : 0;
            for (struct lm_job *j = pending; j && e; j = j->next)
                if (!j->rc)
                    j->rc = e;  /* committed, maybe on disk, not known to be: the sender retries */
            pthread_mutex_lock(&sh->mu);
            answer(sh, pending);
            pending = NULL;
            continue;
        }
        while (!sh->head && !sh->stop)
            pthread_cond_wait(&sh->cv_job, &sh->mu);
        if (!sh->head)
            break;
        struct lm_job *jobs = take_group(sh);
        pthread_mutex_unlock(&sh->mu);
        size_t before = last_txnid(sh);
        run_group(sh, jobs);
        int synced = last_txnid(sh) != before;
        pthread_mutex_lock(&sh->mu);
        if (!synced) {
            answer(sh, jobs);  /* nothing of theirs to sync */
            continue;
        }
        if (pending)
            answer(sh, pending);  /* this commit's fsync carried their meta page */
        pending = jobs;
    }
    pthread_mutex_unlock(&sh->mu);
    return NULL;
}

int lm_write(struct lm_shared *sh, lm_job_fn fn, void *arg)
{
    struct lm_job j = { .fn = fn, .arg = arg };
    pthread_mutex_lock(&sh->mu);
    if (sh->stop) {
        pthread_mutex_unlock(&sh->mu);
        return CW_EUNAVAIL;
    }
    if (sh->tail)
        sh->tail->next = &j;
    else
        sh->head = &j;
    sh->tail = &j;
    pthread_cond_signal(&sh->cv_job);
    while (!j.done)
        pthread_cond_wait(&sh->cv_done, &sh->mu);
    pthread_mutex_unlock(&sh->mu);
    return j.rc;
}

int lm_read(struct lm_store *h, MDB_txn **txn)
{
    int r = h->rtxn ? mdb_txn_renew(h->rtxn) : MDB_BAD_TXN;
    if (r) {  /* no snapshot yet, or one that cannot be renewed: a new one */
        if (h->rtxn)
            mdb_txn_abort(h->rtxn);
        h->rtxn = NULL;
        r = mdb_txn_begin(h->sh->env, NULL, MDB_RDONLY, &h->rtxn);
        if (r) {
            h->rtxn = NULL;
            return lm_err(h->sh, r, "begin a read transaction");
        }
    }
    h->rtxn_live = 1;
    *txn = h->rtxn;
    return 0;
}

void lm_read_done(struct lm_store *h)
{
    if (h->rtxn && h->rtxn_live)
        mdb_txn_reset(h->rtxn);
    h->rtxn_live = 0;
}
