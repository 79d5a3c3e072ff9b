/* store_lmdb.c — the durable embedded store: LMDB in a data directory (docs/durable-store.md).
 *
 * The default store of `serve`: one process, state that survives a restart and a kill -9. The same
 * contract as the memory and Redis stores (store.h), checked by the same tests.
 *
 * Shape: one committer thread owns the only write transaction. Every write call becomes a job on
 * its queue; the committer takes what queued while it was busy (at most LM_GROUP_MAX jobs), runs
 * each job in a nested transaction of one write transaction (a failing job is rolled back alone),
 * commits once, and only then answers the jobs. LMDB's commit writes the data pages, fsyncs them,
 * then writes the meta page synchronously, so an answer means "on disk" and requests that arrive
 * during one fsync share the next: group commit. Reads use the handle's own MVCC snapshot and are
 * never blocked by the committer.
 *
 * Expiry as in Redis: a key expired is absent at read time; a sweeper thread removes expired keys
 * and findings in bounded steps (LM_SWEEP_STEP) so the file stops growing at a size proportional
 * to live state (LMDB reuses freed pages; the file never shrinks by itself: a backup compacts).
 */
#include "store.h"
#include "store_lmdb.h"
#include "cw.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "detect.h"
#include "event.h"

#define LM_SCHEMA 1u               /* the file's layout: meta "schema"; a newer file is refused */
#define LM_APP "credwatch"         /* meta "app": a directory of another LMDB program is refused */
#define LM_READERS_MAX 1024        /* read slots: one per handle (worker threads, sinks, sweeper) */
#define LM_SWEEP_STEP 512          /* expired keys (and as many findings) removed per sweep job */
#define LM_SWEEP_PERIOD_MS 1000    /* between sweeps when the last found less than a full step */
#define LM_LOCK_FILE "credwatch.lock"
#define LM_HEADROOM_DIV 8          /* the map is the bound plus an eighth (at least LM_HEADROOM_MIN): */
#define LM_HEADROOM_MIN ((uint64_t)4 << 20) /* new key state stops at the bound, and removals (the
                                    * sweeper: LMDB copies a page to change it), findings, statuses and
                                    * the outbox still have room: a file filled to the map's last page
                                    * could not even delete */
#define LM_LIST_EXTRA_SCAN 100000  /* findings examined past a full page to tell whether more match;
                                    * beyond, `more` is said without proof (an empty next page) */

static const char *const lm_db_names[LM_DB_COUNT] = {
    "meta", "key", "seen", "kexp", "finding", "fidx", "fexp",
    "out_meta", "out_queue", "out_sink", "out_held", "out_redo", "out_dead",
};

/* ---- key state --------------------------------------------------------------------------------
 * LM_KEY value: struct lm_keyrec, then the blob. Stored and read with memcpy: LMDB values carry no
 * alignment promise. */
struct lm_keyrec {
    uint64_t version;
    int64_t expire_ms;
    uint32_t n_seen;     /* hashes in the key's dedup set (the cap without counting them) */
    uint8_t keep;        /* enum store_keep, kept for a future bound on the file */
    uint8_t pad[3];
};

/* Index keys: a big-endian time then an id, so byte order is time order. Every buffer handed to
 * idx_key is LM_IDX_MAX bytes, which holds the longest id it copies (STORE_ID_MAX - 1), whatever
 * the id's kind: an access key id is shorter, but the bound should not rest on each caller. */
#define LM_IDX_MAX (8 + STORE_ID_MAX)

static size_t idx_key(uint8_t *out, int64_t ms, const char *id)
{
    uint64_t u = (uint64_t)ms;
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(u >> (56 - 8 * i));
    size_t n = strnlen(id, STORE_ID_MAX - 1);
    memcpy(out + 8, id, n);
    return 8 + n;
}

static int64_t idx_ms(const MDB_val *k)
{
    const uint8_t *p = k->mv_data;
    uint64_t u = 0;
    for (size_t i = 0; i < 8 && i < k->mv_size; i++)
        u = u << 8 | p[i];
    return (int64_t)u;
}

static MDB_val str_val(const char *s)
{
    MDB_val v = { strlen(s), (void *)s };
    return v;
}

/* The key's record when it is there: 1 found, 0 absent, or an error. */
static int key_get(MDB_txn *txn, struct lm_shared *sh, const char *akid, struct lm_keyrec *rec, MDB_val *blob)
{
    MDB_val k = str_val(akid), v;
    int r = mdb_get(txn, sh->dbi[LM_KEY], &k, &v);
    if (r == MDB_NOTFOUND)
        return 0;
    if (r)
        return lm_err(sh, r, "read a key");
    if (v.mv_size < sizeof *rec)
        return lm_err(sh, MDB_CORRUPTED, "a key record shorter than its header");
    memcpy(rec, v.mv_data, sizeof *rec);
    if (blob) {
        blob->mv_size = v.mv_size - sizeof *rec;
        blob->mv_data = (uint8_t *)v.mv_data + sizeof *rec;
    }
    return 1;
}

/* Room for `need` bytes of blob copies on the handle (sized to the batch, as the memory store). */
static int blobs_room(struct lm_store *h, size_t need)
{
    if (need <= h->blobs_cap)
        return 0;
    uint8_t *nb = realloc(h->blobs, need);
    if (!nb)
        return CW_EUNAVAIL;
    h->blobs = nb;
    h->blobs_cap = need;
    return 0;
}

/* Which of it's hashes the key's dedup set holds. */
static int seen_test(MDB_txn *txn, struct lm_shared *sh, struct store_load *it)
{
    MDB_cursor *c;
    int r = mdb_cursor_open(txn, sh->dbi[LM_SEEN], &c);
    if (r)
        return lm_err(sh, r, "open the dedup set");
    for (size_t j = 0; j < it->n_hashes; j++) {
        uint64_t hv = it->hashes[j];
        MDB_val k = str_val(it->akid), v = { sizeof hv, &hv };
        r = mdb_cursor_get(c, &k, &v, MDB_GET_BOTH);
        it->seen[j] = r == 0;
        if (r && r != MDB_NOTFOUND)
            break;
    }
    mdb_cursor_close(c);
    return r && r != MDB_NOTFOUND ? lm_err(sh, r, "read the dedup set") : 0;
}

/* One lookup per key: the values stay valid while the snapshot is open, so the blobs are copied
 * once their total size is known. */
static int lm_load_in(struct lm_store *h, MDB_txn *txn, struct store_load *items, size_t n, int64_t now)
{
    struct lm_shared *sh = h->sh;
    MDB_val *vals = malloc((n ? n : 1) * sizeof *vals);  /* n <= the engine's keys per round */
    if (!vals)
        return CW_EUNAVAIL;
    size_t need = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        struct lm_keyrec rec;
        int f = key_get(txn, sh, items[i].akid, &rec, &vals[i]);
        items[i].version = f > 0 && rec.expire_ms >= now ? rec.version : 0;  /* expired: absent, as in Redis */
        if (f < 0)
            rc = f;
        else if (!items[i].version)
            vals[i].mv_data = NULL;
        else
            need += vals[i].mv_size;
    }
    if (!rc && blobs_room(h, need))
        rc = CW_EUNAVAIL;
    size_t off = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        struct store_load *it = &items[i];
        it->blob = NULL;
        it->blob_len = 0;
        if (it->n_hashes)  /* seen may be NULL with no hashes (a presence check) */
            memset(it->seen, 0, it->n_hashes);
        if (!vals[i].mv_data)
            continue;
        memcpy(h->blobs + off, vals[i].mv_data, vals[i].mv_size);
        it->blob = h->blobs + off;
        it->blob_len = vals[i].mv_size;
        off += vals[i].mv_size;
        rc = seen_test(txn, sh, it);
    }
    free(vals);
    return rc;
}

static int lm_load(struct store *s, struct store_load *items, size_t n)
{
    struct lm_store *h = (struct lm_store *)s;
    MDB_txn *txn;
    int rc = lm_read(h, &txn);
    if (rc)
        return rc;
    rc = lm_load_in(h, txn, items, n, cw_now_ms());
    lm_read_done(h);
    return rc;
}

/* Removes a key, its dedup set and its expiry entry. */
static int key_drop(MDB_txn *txn, struct lm_shared *sh, const char *akid, int64_t expire_ms)
{
    MDB_val k = str_val(akid);
    uint8_t ik[LM_IDX_MAX];
    MDB_val xk = { idx_key(ik, expire_ms, akid), ik };
    int r = mdb_del(txn, sh->dbi[LM_KEY], &k, NULL);
    int r2 = mdb_del(txn, sh->dbi[LM_SEEN], &k, NULL);
    int r3 = mdb_del(txn, sh->dbi[LM_KEXP], &xk, NULL);
    r = r && r != MDB_NOTFOUND ? r : r2 && r2 != MDB_NOTFOUND ? r2 : r3 && r3 != MDB_NOTFOUND ? r3 : 0;
    return lm_err(sh, r, "remove a key");
}

/* Adds c's hashes to the key's dedup set, up to STORE_SEEN_MAX (beyond, as in the other stores,
 * counts may include duplicates). */
static int seen_add(MDB_txn *txn, struct lm_shared *sh, const struct store_commit *c, uint32_t *n_seen)
{
    MDB_val k = str_val(c->akid);
    for (size_t j = 0; j < c->n_hashes && *n_seen < STORE_SEEN_MAX; j++) {
        uint64_t hv = c->hashes[j];
        MDB_val v = { sizeof hv, &hv };
        int r = mdb_put(txn, sh->dbi[LM_SEEN], &k, &v, MDB_NODUPDATA);
        if (r == MDB_KEYEXIST)
            continue;
        if (r)
            return lm_err(sh, r, "add to the dedup set");
        (*n_seen)++;
    }
    return 0;
}

/* One compare-and-set: c->ok = 1 when written, 0 when the stored version moved. */
static int commit_one(MDB_txn *txn, struct lm_shared *sh, struct store_commit *c, int64_t now)
{
    struct lm_keyrec rec;
    c->ok = 0;
    if (strlen(c->akid) >= EV_AKID_MAX)
        return CW_EINVAL;
    int f = key_get(txn, sh, c->akid, &rec, NULL);
    if (f < 0)
        return f;
    if (f && rec.expire_ms < now) {  /* expired, not yet swept: a reused id starts clean */
        int r = key_drop(txn, sh, c->akid, rec.expire_ms);
        if (r)
            return r;
        f = 0;
    }
    if ((f ? rec.version : 0) != c->version)
        return 0;
    uint8_t ik[LM_IDX_MAX];
    if (f && rec.expire_ms != c->expire_at_ms) {
        MDB_val xk = { idx_key(ik, rec.expire_ms, c->akid), ik };
        int r = mdb_del(txn, sh->dbi[LM_KEXP], &xk, NULL);
        if (r && r != MDB_NOTFOUND)
            return lm_err(sh, r, "move a key's expiry");
    }
    if (!f)
        memset(&rec, 0, sizeof rec);
    int rc = seen_add(txn, sh, c, &rec.n_seen);
    if (rc)
        return rc;
    rec.version = c->new_version;
    rec.expire_ms = c->expire_at_ms;
    rec.keep = c->keep;
    MDB_val k = str_val(c->akid), v = { sizeof rec + c->blob_len, NULL };
    int r = mdb_put(txn, sh->dbi[LM_KEY], &k, &v, MDB_RESERVE);
    if (r)
        return lm_err(sh, r, "write a key");
    memcpy(v.mv_data, &rec, sizeof rec);
    memcpy((uint8_t *)v.mv_data + sizeof rec, c->blob, c->blob_len);
    MDB_val xk = { idx_key(ik, c->expire_at_ms, c->akid), ik }, empty = { 0, NULL };
    r = mdb_put(txn, sh->dbi[LM_KEXP], &xk, &empty, 0);
    if (r)
        return lm_err(sh, r, "index a key's expiry");
    c->ok = 1;
    return 0;
}

struct commit_job {
    struct store_commit *items;
    size_t n;
};

/* 1 when the pages of every tree (free pages aside: they are reused) pass the bound. */
static int over_bound(MDB_txn *txn, struct lm_shared *sh)
{
    uint64_t pages = 0;
    MDB_stat st;
    for (int i = 0; i < LM_DB_COUNT; i++)
        if (mdb_stat(txn, sh->dbi[i], &st) == 0)
            pages += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    return pages * sh->psize > sh->max_bytes;
}

static int commit_job(MDB_txn *txn, struct lm_shared *sh, void *arg)
{
    struct commit_job *a = arg;
    int64_t now = cw_now_ms();
    if (over_bound(txn, sh))
        return lm_err(sh, MDB_MAP_FULL, "write key state");
    for (size_t i = 0; i < a->n; i++) {
        int rc = commit_one(txn, sh, &a->items[i], now);
        if (rc) {
            for (size_t j = 0; j < a->n; j++)
                a->items[j].ok = 0;  /* rolled back whole: nothing of this call was written */
            return rc;
        }
    }
    return 0;
}

static int lm_commit(struct store *s, struct store_commit *items, size_t n)
{
    struct lm_store *h = (struct lm_store *)s;
    struct commit_job a = { items, n };
    int rc = lm_write(h->sh, commit_job, &a);
    if (rc)
        for (size_t i = 0; i < n; i++)
            items[i].ok = 0;
    return rc;
}

/* ---- findings ---------------------------------------------------------------------------------
 * LM_FIND value: LM_FREC_VERSION, the fixed fields, then account, function, workload, note and
 * evidence, each a u32 length and its bytes and a NUL (a note of length LM_NO_NOTE is none), so a
 * decoded record's strings are C strings pointing into the value. */
#define LM_FREC_VERSION 1u
#define LM_NO_NOTE UINT32_MAX

struct lm_frec_fixed {
    uint32_t format;
    int32_t status, severity, rk;
    int64_t created_ms, updated_ms, expire_ms;
    uint64_t version, rv, qd;
    uint32_t outside, updates;
};

static const char *frec_str(const uint8_t **p, const uint8_t *end, int *bad)
{
    uint32_t n;
    if (end - *p < (ptrdiff_t)sizeof n) {
        *bad = 1;
        return NULL;
    }
    memcpy(&n, *p, sizeof n);
    *p += sizeof n;
    if (n == LM_NO_NOTE)
        return NULL;
    if ((uint64_t)(end - *p) < (uint64_t)n + 1 || (*p)[n] != 0) {
        *bad = 1;
        return NULL;
    }
    const char *s = (const char *)*p;
    *p += (size_t)n + 1;
    return s;
}

int lm_frec_decode(const MDB_val *v, struct lm_frec *out)
{
    struct lm_frec_fixed x;
    if (v->mv_size < sizeof x)
        return CW_EFORMAT;
    memcpy(&x, v->mv_data, sizeof x);
    if (x.format != LM_FREC_VERSION)
        return CW_EFORMAT;
    *out = (struct lm_frec){ .created_ms = x.created_ms, .updated_ms = x.updated_ms, .expire_ms = x.expire_ms,
                             .version = x.version, .rv = x.rv, .qd = x.qd, .outside = x.outside,
                             .updates = x.updates, .status = x.status, .severity = x.severity, .rk = x.rk };
    const uint8_t *p = (const uint8_t *)v->mv_data + sizeof x, *end = (const uint8_t *)v->mv_data + v->mv_size;
    int bad = 0;
    out->account = frec_str(&p, end, &bad);
    out->function = frec_str(&p, end, &bad);
    out->workload = frec_str(&p, end, &bad);
    out->note = frec_str(&p, end, &bad);
    out->evidence = frec_str(&p, end, &bad);
    if (bad || !out->account || !out->function || !out->workload || !out->evidence)
        return CW_EFORMAT;
    return 0;
}

static size_t frec_size(const struct lm_frec *r)
{
    size_t n = sizeof(struct lm_frec_fixed) + 5 * sizeof(uint32_t);
    const char *s[5] = { r->account, r->function, r->workload, r->note, r->evidence };
    for (int i = 0; i < 5; i++)
        n += s[i] ? strlen(s[i]) + 1 : 0;
    return n;
}

static void frec_put_str(uint8_t **p, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) : LM_NO_NOTE;
    memcpy(*p, &n, sizeof n);
    *p += sizeof n;
    if (s) {
        memcpy(*p, s, (size_t)n + 1);
        *p += (size_t)n + 1;
    }
}

/* Writes finding `id` as r (its strings are copied before the old value goes: they may point
 * into it), with its index entries moved when its times changed (old: the record it replaces). */
static int frec_write(MDB_txn *txn, struct lm_shared *sh, const char *id, const struct lm_frec *r,
                      const struct lm_frec *old)
{
    size_t size = frec_size(r);
    if (size > UINT32_MAX / 2)
        return CW_EINVAL;
    uint8_t *buf = malloc(size);
    if (!buf)
        return CW_EUNAVAIL;
    struct lm_frec_fixed x = { LM_FREC_VERSION, r->status, r->severity, r->rk, r->created_ms, r->updated_ms,
                               r->expire_ms, r->version, r->rv, r->qd, r->outside, r->updates };
    memcpy(buf, &x, sizeof x);
    uint8_t *p = buf + sizeof x;
    frec_put_str(&p, r->account);
    frec_put_str(&p, r->function);
    frec_put_str(&p, r->workload);
    frec_put_str(&p, r->note);
    frec_put_str(&p, r->evidence);
    uint8_t ik[LM_IDX_MAX];
    MDB_val empty = { 0, NULL }, xk;
    int64_t old_exp = old ? old->expire_ms : 0;
    MDB_val k = str_val(id), v = { size, buf };
    int e = mdb_put(txn, sh->dbi[LM_FIND], &k, &v, 0);
    free(buf);
    if (!e && old && old_exp != r->expire_ms) {
        xk = (MDB_val){ idx_key(ik, old_exp, id), ik };
        e = mdb_del(txn, sh->dbi[LM_FEXP], &xk, NULL);
        e = e == MDB_NOTFOUND ? 0 : e;
    }
    if (!e && (!old || old_exp != r->expire_ms)) {
        xk = (MDB_val){ idx_key(ik, r->expire_ms, id), ik };
        e = mdb_put(txn, sh->dbi[LM_FEXP], &xk, &empty, 0);
    }
    if (!e && !old) {
        xk = (MDB_val){ idx_key(ik, r->created_ms, id), ik };
        e = mdb_put(txn, sh->dbi[LM_FIDX], &xk, &empty, 0);
    }
    return lm_err(sh, e, "write a finding");
}

/* 1 found (r decoded, pointing into the transaction's pages), 0 absent, or an error. */
static int frec_get(MDB_txn *txn, struct lm_shared *sh, const char *id, struct lm_frec *r)
{
    MDB_val k = str_val(id), v;
    int e = mdb_get(txn, sh->dbi[LM_FIND], &k, &v);
    if (e == MDB_NOTFOUND)
        return 0;
    if (e)
        return lm_err(sh, e, "read a finding");
    if (lm_frec_decode(&v, r))
        return lm_err(sh, MDB_CORRUPTED, "a finding record of an unknown shape");
    return 1;
}

int lm_frec_finding(const char *id, const struct lm_frec *r, struct store_finding *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", id);
    out->evidence_json = strdup(r->evidence);
    out->note = r->note ? strdup(r->note) : NULL;
    out->status = r->status;
    out->created_ms = r->created_ms;
    out->updated_ms = r->updated_ms;
    if (!out->evidence_json || (r->note && !out->note)) {
        store_finding_free(out);
        return CW_ENOMEM;
    }
    return 0;
}

/* After a finding change in txn: a new revision when the change is one to report and events are
 * recorded, then the event of the last revision queued unless it already is (the repair of a
 * failed queue). As the memory store: when queueing fails the change stands and the call answers
 * CW_EUNAVAIL (the sender's retry queues the event). *soft gets that failure. */
static void out_settle(MDB_txn *txn, struct lm_shared *sh, const char *id, struct lm_frec *r, int kind,
                       int64_t now_ms, uint64_t *revision, int *soft)
{
    if (kind && lm_out_recording(sh)) {
        r->rv++;
        r->rk = kind;
    }
    if (r->rv <= r->qd)
        return;
    MDB_txn *child;
    int e = mdb_txn_begin(sh->env, txn, 0, &child);
    int rc = e ? lm_err(sh, e, "begin a nested transaction") : lm_out_queue(child, sh, id, r, now_ms);
    if (!e && rc)
        mdb_txn_abort(child);
    else if (!e && (e = mdb_txn_commit(child)) != 0)
        rc = lm_err(sh, e, "queue a finding event");
    if (rc) {
        *soft = CW_EUNAVAIL;
        return;
    }
    r->qd = r->rv;
    if (revision)
        *revision = r->rv;
}

/* One evidence update (store.h store_finding_put; the rules of store_mem.c's put_one). */
static int put_one(MDB_txn *txn, struct lm_shared *sh, struct store_finding_put *u, int *soft)
{
    struct lm_frec r, old;
    u->created = 0;
    u->revision = 0;
    if (!u->id || !u->id[0] || strlen(u->id) >= STORE_ID_MAX || !u->evidence_json)
        return CW_EINVAL;
    int f = frec_get(txn, sh, u->id, &old);
    if (f < 0)
        return f;
    /* evidence from an older state than the one stored: keep the newer; a repair (ensure) writes
     * only over evidence of an older state (the write of a later commit was lost) */
    if (f && (u->version < old.version || (u->ensure && u->version == old.version))) {
        if (old.rv <= old.qd)
            return 0;
        r = old;  /* the repair of a failed queue (store.h): the missing event, no new revision */
        out_settle(txn, sh, u->id, &r, 0, u->now_ms, &u->revision, soft);
        return r.qd == old.qd ? 0 : frec_write(txn, sh, u->id, &r, &old);
    }
    int kind;
    if (!f) {
        r = (struct lm_frec){ .created_ms = u->now_ms, .status = store_next_status(0, 0, u->new_outside) };
        u->created = 1;
        kind = STORE_EV_CREATED;
    } else {
        r = old;
        int grew = u->ensure && u->outside_count > old.outside;
        int st = store_next_status(old.status, 1, u->new_outside || grew);
        int push = u->notify == STORE_NOTIFY_RAISED || (u->notify == STORE_NOTIFY_GREW && old.updates < STORE_UPDATES_MAX);
        kind = st != old.status ? STORE_EV_STATUS : push ? STORE_EV_UPDATED : 0;
        if (kind == STORE_EV_UPDATED && u->notify == STORE_NOTIFY_GREW && lm_out_recording(sh))
            r.updates++;
        r.status = st;
    }
    r.evidence = u->evidence_json;
    r.version = u->version;
    r.outside = u->outside_count;
    r.updated_ms = u->now_ms;
    /* retention from the store's clock, as Redis' PEXPIRE: a caller's time (a test's, a replay's)
     * in the past would make a new finding expired at once, and the sweeper would take it */
    r.expire_ms = cw_now_ms() + (int64_t)STORE_FINDING_RETENTION_S * 1000;
    r.severity = u->severity ? det_severity_parse(u->severity) : -1;
    char acc[EV_ACCOUNT_MAX], fn[EV_FUNCTION_MAX];
    snprintf(acc, sizeof acc, "%s", u->account ? u->account : "");
    snprintf(fn, sizeof fn, "%s", u->function ? u->function : "");
    r.account = acc;
    r.function = fn;
    r.workload = store_workload_name(u->workload);
    out_settle(txn, sh, u->id, &r, kind, u->now_ms, &u->revision, soft);
    return frec_write(txn, sh, u->id, &r, f ? &old : NULL);
}

struct put_job {
    struct store_finding_put *items;
    size_t n;
    int soft;     /* an event not queued: the call answers CW_EUNAVAIL, its writes stand */
};

static int put_job(MDB_txn *txn, struct lm_shared *sh, void *arg)
{
    struct put_job *a = arg;
    for (size_t i = 0; i < a->n; i++) {
        int rc = put_one(txn, sh, &a->items[i], &a->soft);
        if (rc)
            return rc;
    }
    return 0;
}

static int lm_finding_put(struct store *s, struct store_finding_put *items, size_t n)
{
    struct put_job a = { items, n, 0 };
    int rc = lm_write(((struct lm_store *)s)->sh, put_job, &a);
    if (rc)
        for (size_t i = 0; i < n; i++)
            items[i].created = 0, items[i].revision = 0;
    return rc ? rc : a.soft;
}

static int lm_finding_get(struct store *s, const char *id, struct store_finding *out)
{
    struct lm_store *h = (struct lm_store *)s;
    MDB_txn *txn;
    struct lm_frec r;
    if (!id || !id[0] || strlen(id) >= STORE_ID_MAX)  /* LMDB refuses an empty key: no such finding */
        return CW_ENOTFOUND;
    int rc = lm_read(h, &txn);
    if (rc)
        return rc;
    int f = frec_get(txn, h->sh, id, &r);
    rc = f < 0 ? f : !f ? CW_ENOTFOUND : lm_frec_finding(id, &r, out) ? CW_EUNAVAIL : 0;
    lm_read_done(h);
    return rc;
}

struct patch_job {
    const char *id, *note;
    int status;
    int64_t now_ms;
    int soft;
};

static int patch_job(MDB_txn *txn, struct lm_shared *sh, void *arg)
{
    struct patch_job *a = arg;
    struct lm_frec r, old;
    int f = frec_get(txn, sh, a->id, &old);
    if (f <= 0)
        return f < 0 ? f : CW_ENOTFOUND;
    r = old;
    if (a->note)
        r.note = a->note;
    int kind = a->status >= 0 && a->status != old.status ? STORE_EV_STATUS : 0;
    if (a->status >= 0)
        r.status = a->status;
    r.updated_ms = a->now_ms;
    out_settle(txn, sh, a->id, &r, kind, a->now_ms, NULL, &a->soft);
    return frec_write(txn, sh, a->id, &r, &old);
}

static int lm_finding_patch(struct store *s, const char *id, int status, const char *note, int64_t now_ms)
{
    if (!id || !id[0] || strlen(id) >= STORE_ID_MAX)  /* LMDB refuses an empty key: no such finding */
        return CW_ENOTFOUND;
    struct patch_job a = { id, note, status, now_ms, 0 };
    int rc = lm_write(((struct lm_store *)s)->sh, patch_job, &a);
    return rc ? rc : a.soft;
}

/* ---- listing: the created index, newest first ------------------------------------------------ */

static int list_matches(const struct lm_frec *r, const struct store_query *q)
{
    if (q->status >= 0 && r->status != q->status)
        return 0;
    if (q->severity >= 0 && r->severity != q->severity)
        return 0;
    if (q->account && strcmp(q->account, r->account) != 0)
        return 0;
    if (q->function && strcmp(q->function, r->function) != 0)
        return 0;
    if (q->workload && strcmp(q->workload, r->workload) != 0)
        return 0;
    return 1;
}

/* Places cursor c on the newest index entry the query may return: before (after_ms, after_id)
 * when continuing, else at until_ms, else the last. MDB_NOTFOUND when there is none. */
static int list_start(MDB_cursor *c, const struct store_query *q, MDB_val *k)
{
    uint8_t ik[LM_IDX_MAX];
    MDB_val v;
    int cont = q->after_ms || q->after_id[0];
    if (!cont && !q->until_ms)
        return mdb_cursor_get(c, k, &v, MDB_LAST);
    if (cont) {  /* the entry itself is excluded: seek it, then step back */
        *k = (MDB_val){ idx_key(ik, q->after_ms, q->after_id), ik };
    } else {     /* created_ms <= until_ms: seek the first entry after until_ms, then step back */
        *k = (MDB_val){ idx_key(ik, q->until_ms + 1, ""), ik };
    }
    int e = mdb_cursor_get(c, k, &v, MDB_SET_RANGE);
    if (e == MDB_NOTFOUND)
        return mdb_cursor_get(c, k, &v, MDB_LAST);
    return e ? e : mdb_cursor_get(c, k, &v, MDB_PREV);
}

struct list_walk {
    const struct store_query *q;
    struct store_finding *out;
    size_t limit, n;
    int more;
};

/* Walks from the start entry back in time, collecting matches. */
static int list_walk(MDB_txn *txn, struct lm_shared *sh, MDB_cursor *c, struct list_walk *w)
{
    MDB_val k, v;
    size_t extra = 0;
    int e = list_start(c, w->q, &k);
    for (; e == 0; e = mdb_cursor_get(c, &k, &v, MDB_PREV)) {
        int64_t ms = idx_ms(&k);
        if (w->q->since_ms && ms < w->q->since_ms)
            break;
        if (w->q->until_ms && ms > w->q->until_ms)
            continue;
        char id[STORE_ID_MAX];
        size_t idn = k.mv_size - 8 < sizeof id - 1 ? k.mv_size - 8 : sizeof id - 1;
        memcpy(id, (const char *)k.mv_data + 8, idn);
        id[idn] = 0;
        struct lm_frec r;
        int f = frec_get(txn, sh, id, &r);
        if (f < 0)
            return f;
        if (!f || !list_matches(&r, w->q)) {
            if (w->n == w->limit && ++extra > LM_LIST_EXTRA_SCAN) {
                w->more = 1;
                return 0;
            }
            continue;
        }
        if (w->n == w->limit) {
            w->more = 1;
            return 0;
        }
        if (lm_frec_finding(id, &r, &w->out[w->n]))
            return CW_EUNAVAIL;
        w->n++;
    }
    return e == 0 || e == MDB_NOTFOUND ? 0 : lm_err(sh, e, "walk the findings index");
}

static int lm_finding_list(struct store *s, const struct store_query *q, struct store_finding *out,
                           size_t *n_out, int *more)
{
    struct lm_store *h = (struct lm_store *)s;
    MDB_txn *txn;
    MDB_cursor *c;
    struct list_walk w = { q, out, q->limit ? q->limit : 1, 0, 0 };
    *n_out = 0;
    *more = 0;
    int rc = lm_read(h, &txn);
    if (rc)
        return rc;
    int e = mdb_cursor_open(txn, h->sh->dbi[LM_FIDX], &c);
    rc = e ? lm_err(h->sh, e, "open the findings index") : list_walk(txn, h->sh, c, &w);
    if (!e)
        mdb_cursor_close(c);
    lm_read_done(h);
    if (rc) {
        for (size_t i = 0; i < w.n; i++)
            store_finding_free(&out[i]);
        return rc;
    }
    *n_out = w.n;
    *more = w.more;
    return 0;
}

/* ---- expiry ------------------------------------------------------------------------------------ */

struct sweep_job {
    int64_t now_ms;
    size_t max, keys, findings;
};

/* What the sweeper does with an expired index entry whose record it cannot read (a damaged value,
 * or one of a shape this build does not know): it removes the record and the entry, and says so
 * in store_why. Stopping there instead would fail every later step (a step is one job, rolled back
 * whole), so nothing would expire again and the file would grow without end; and a record nobody
 * can read serves no reader either (a key's would fail every load and commit of its id). */
static int sweep_unreadable(MDB_txn *txn, struct lm_shared *sh, MDB_cursor *c, enum lm_db db, const char *id)
{
    MDB_val k = str_val(id);
    int e = mdb_del(txn, sh->dbi[db], &k, NULL);
    if (!e && db == LM_KEY)
        e = mdb_del(txn, sh->dbi[LM_SEEN], &k, NULL);
    e = e == MDB_NOTFOUND ? 0 : e;
    e = e ? e : mdb_cursor_del(c, 0);
    if (!e) {
        pthread_mutex_lock(&sh->mu);
        snprintf(sh->why, sizeof sh->why, "the sweeper removed an unreadable expired %s record \"%s\" (data directory %s)",
                 db == LM_KEY ? "key" : "finding", id, sh->dir);
        pthread_mutex_unlock(&sh->mu);
    }
    return e;
}

/* The id after an index key's 8-byte time, as a C string of at most cap - 1 bytes. */
static void idx_id(const MDB_val *k, char *id, size_t cap)
{
    size_t n = k->mv_size > 8 ? k->mv_size - 8 : 0;
    n = n < cap - 1 ? n : cap - 1;
    memcpy(id, (const char *)k->mv_data + 8, n);
    id[n] = 0;
}

/* One expired key index entry k: the key removed when the entry is its expiry, else the entry
 * alone (the key moved on: a later commit wrote a new expiry). 0 or an error (cw.h). */
static int sweep_key_one(MDB_txn *txn, struct lm_shared *sh, MDB_cursor *c, const MDB_val *k)
{
    char akid[EV_AKID_MAX];
    idx_id(k, akid, sizeof akid);
    MDB_val kk = str_val(akid), v;
    int e = akid[0] ? mdb_get(txn, sh->dbi[LM_KEY], &kk, &v) : MDB_NOTFOUND;
    struct lm_keyrec rec = { .expire_ms = idx_ms(k) - 1 };  /* absent: not the entry's key */
    if (!e && v.mv_size < sizeof rec)
        return lm_err(sh, sweep_unreadable(txn, sh, c, LM_KEY, akid), "sweep expired keys");
    if (!e)
        memcpy(&rec, v.mv_data, sizeof rec);
    if ((!e || e == MDB_NOTFOUND) && rec.expire_ms == idx_ms(k))
        return key_drop(txn, sh, akid, rec.expire_ms);
    e = e && e != MDB_NOTFOUND ? e : mdb_cursor_del(c, 0);
    return lm_err(sh, e, "sweep expired keys");
}

/* Removes up to a->max expired keys (expire_ms < now, as load reads them). */
static int sweep_keys(MDB_txn *txn, struct lm_shared *sh, struct sweep_job *a)
{
    MDB_cursor *c;
    MDB_val k, v;
    int rc = 0, e = mdb_cursor_open(txn, sh->dbi[LM_KEXP], &c);
    if (e)
        return lm_err(sh, e, "open the key expiry index");
    while (!rc && a->keys < a->max && (e = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0 && idx_ms(&k) < a->now_ms) {
        rc = sweep_key_one(txn, sh, c, &k);
        a->keys += !rc;
    }
    mdb_cursor_close(c);
    if (rc)
        return rc;
    return e == 0 || e == MDB_NOTFOUND ? 0 : lm_err(sh, e, "sweep expired keys");
}

/* One expired finding index entry k: the finding removed (with its created index entry) when the
 * entry is its expiry, else the entry alone. An LMDB code. */
static int sweep_finding_one(MDB_txn *txn, struct lm_shared *sh, MDB_cursor *c, const MDB_val *k)
{
    char id[STORE_ID_MAX];
    idx_id(k, id, sizeof id);
    MDB_val fk = str_val(id), v;
    int e = id[0] ? mdb_get(txn, sh->dbi[LM_FIND], &fk, &v) : MDB_NOTFOUND;
    struct lm_frec r;
    if (e == MDB_NOTFOUND)
        return mdb_cursor_del(c, 0);
    if (e)
        return e;
    if (lm_frec_decode(&v, &r))
        return sweep_unreadable(txn, sh, c, LM_FIND, id);
    int64_t created = r.created_ms, expire = r.expire_ms;  /* r points into pages the deletes change */
    if ((e = mdb_cursor_del(c, 0)) != 0 || expire != idx_ms(k))
        return e;
    uint8_t ik[LM_IDX_MAX];
    MDB_val xk = { idx_key(ik, created, id), ik };
    e = mdb_del(txn, sh->dbi[LM_FIDX], &xk, NULL);
    e = e == MDB_NOTFOUND ? 0 : e;  /* a missing created entry must not keep the finding forever */
    return e ? e : mdb_del(txn, sh->dbi[LM_FIND], &fk, NULL);
}

/* Removes up to a->max findings past their retention, with their index entries and nothing else
 * (their outbox events are the outbox's, bounded there). */
static int sweep_findings(MDB_txn *txn, struct lm_shared *sh, struct sweep_job *a)
{
    MDB_cursor *c;
    MDB_val k, v;
    int e = mdb_cursor_open(txn, sh->dbi[LM_FEXP], &c);
    if (e)
        return lm_err(sh, e, "open the finding expiry index");
    while (a->findings < a->max && (e = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0 && idx_ms(&k) < a->now_ms) {
        if ((e = sweep_finding_one(txn, sh, c, &k)) != 0)
            break;
        a->findings++;
    }
    mdb_cursor_close(c);
    return e == 0 || e == MDB_NOTFOUND ? 0 : lm_err(sh, e, "sweep expired findings");
}

static int sweep_job(MDB_txn *txn, struct lm_shared *sh, void *arg)
{
    int rc = sweep_keys(txn, sh, arg);
    return rc ? rc : sweep_findings(txn, sh, arg);
}

int store_lmdb_sweep(struct store *s, int64_t now_ms, size_t max, size_t *removed)
{
    struct lm_shared *sh = ((struct lm_store *)s)->sh;
    struct sweep_job a = { now_ms, max, 0, 0 };
    int rc = lm_write(sh, sweep_job, &a);
    *removed = rc ? 0 : a.keys + a.findings;
    if (!rc) {
        pthread_mutex_lock(&sh->mu);
        sh->swept_keys += a.keys;
        sh->swept_findings += a.findings;
        pthread_mutex_unlock(&sh->mu);
    }
    return rc;
}

/* The sweeper: a step every LM_SWEEP_PERIOD_MS, at once again while steps come back full (a
 * backlog drains in steps, other jobs queue between them). It writes through the committer like
 * any caller, so it needs no handle of its own. */
static void *sweeper_main(void *arg)
{
    struct lm_shared *sh = arg;
    struct lm_store tmp = { .sh = sh };
    int full = 0;
    pthread_mutex_lock(&sh->mu);
    while (!sh->stop) {
        if (!full) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += LM_SWEEP_PERIOD_MS / 1000;
            until.tv_nsec += (long)(LM_SWEEP_PERIOD_MS % 1000) * 1000000L;
            if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&sh->cv_stop, &sh->mu, &until);
            if (sh->stop)
                break;
        }
        pthread_mutex_unlock(&sh->mu);
        size_t removed = 0;
        int rc = store_lmdb_sweep(&tmp.base, cw_now_ms(), LM_SWEEP_STEP, &removed);
        full = !rc && removed >= LM_SWEEP_STEP;
        pthread_mutex_lock(&sh->mu);
    }
    pthread_mutex_unlock(&sh->mu);
    return NULL;
}

/* ---- the directory: lock, environment, schema ---------------------------------------------- */

/* mkdir -p of dir (0700 for what it creates). */
static int make_dir(const char *dir, char *msg, size_t msg_size)
{
    char path[LM_DIR_MAX];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p)
            continue;
        char c = *p;
        *p = 0;
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            snprintf(msg, msg_size, "data directory %s: cannot create %s: %s", dir, path, strerror(errno));
            return CW_EIO;
        }
        *p = c;
        if (!c)
            break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(msg, msg_size, "data directory %s: not a directory", dir);
        return CW_EIO;
    }
    return 0;
}

/* One process per directory: an exclusive flock on DIR/credwatch.lock, released by the kernel when
 * the process dies (a kill -9 leaves no stale lock). LMDB's own lock file lets processes share an
 * environment, which is not what this store is written for. */
static int take_lock(const char *dir, int *fd_out, char *msg, size_t msg_size)
{
    char path[LM_DIR_MAX + sizeof LM_LOCK_FILE + 1];
    snprintf(path, sizeof path, "%s/%s", dir, LM_LOCK_FILE);
    int fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(msg, msg_size, "data directory %s: cannot open %s: %s", dir, path, strerror(errno));
        return CW_EIO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[24] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        snprintf(msg, msg_size, "data directory %s is in use by another credwatch process (pid %s, from %s)", dir,
                 pid[0] ? pid : "unknown", path);
        close(fd);
        return CW_EIO;
    }
    char pid[24];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* the pid is for the message of a second process only: no reason to refuse the start */
    }
    *fd_out = fd;
    return 0;
}

/* The schema check in the first write transaction: a new file gets LM_APP and LM_SCHEMA, a file of
 * another program or a newer schema is refused by name. */
static int schema_check(MDB_txn *txn, struct lm_shared *sh, char *msg, size_t msg_size)
{
    MDB_val ka = str_val("app"), ks = str_val("schema"), v;
    int e = mdb_get(txn, sh->dbi[LM_META], &ka, &v);
    if (e == MDB_NOTFOUND) {
        uint32_t ver = LM_SCHEMA;
        MDB_val app = str_val(LM_APP), vv = { sizeof ver, &ver };
        e = mdb_put(txn, sh->dbi[LM_META], &ka, &app, 0);
        e = e ? e : mdb_put(txn, sh->dbi[LM_META], &ks, &vv, 0);
        if (e)
            snprintf(msg, msg_size, "data directory %s: cannot write the schema version: %s", sh->dir, mdb_strerror(e));
        return e ? CW_EIO : 0;
    }
    if (e || v.mv_size != strlen(LM_APP) || memcmp(v.mv_data, LM_APP, v.mv_size) != 0) {
        snprintf(msg, msg_size, "data directory %s holds an LMDB file that is not credwatch's", sh->dir);
        return CW_EFORMAT;
    }
    uint32_t ver = 0;
    e = mdb_get(txn, sh->dbi[LM_META], &ks, &v);
    if (!e && v.mv_size == sizeof ver)
        memcpy(&ver, v.mv_data, sizeof ver);
    if (ver != LM_SCHEMA) {
        snprintf(msg, msg_size, "data directory %s: schema version %u, this credwatch reads version %u: %s", sh->dir,
                 ver, LM_SCHEMA, ver > LM_SCHEMA ? "upgrade credwatch, or point CREDWATCH_DATA_DIR elsewhere"
                                                 : "point CREDWATCH_DATA_DIR elsewhere");
        return CW_EFORMAT;
    }
    return 0;
}

/* Opens every named database (creating them in a new file) and checks the schema, in one write
 * transaction. */
static int open_dbs(struct lm_shared *sh, char *msg, size_t msg_size)
{
    MDB_txn *txn = NULL;
    int e = mdb_txn_begin(sh->env, NULL, 0, &txn);
    for (int i = 0; !e && i < LM_DB_COUNT; i++) {
        unsigned flags = MDB_CREATE | (i == LM_SEEN ? MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP : 0);
        e = mdb_dbi_open(txn, lm_db_names[i], flags, &sh->dbi[i]);
    }
    if (e) {
        snprintf(msg, msg_size, "data directory %s: cannot open the store: %s", sh->dir, mdb_strerror(e));
        if (txn)
            mdb_txn_abort(txn);
        return CW_EIO;
    }
    int rc = schema_check(txn, sh, msg, msg_size);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    e = mdb_txn_commit(txn);
    if (e) {
        snprintf(msg, msg_size, "data directory %s: cannot write: %s", sh->dir, mdb_strerror(e));
        return CW_EIO;
    }
    return 0;
}

static int env_open(struct lm_shared *sh, uint64_t max_bytes, char *msg, size_t msg_size)
{
    int e = mdb_env_create(&sh->env);
    e = e ? e : mdb_env_set_maxdbs(sh->env, LM_DB_COUNT);
    e = e ? e : mdb_env_set_maxreaders(sh->env, LM_READERS_MAX);
    uint64_t headroom = max_bytes / LM_HEADROOM_DIV > LM_HEADROOM_MIN ? max_bytes / LM_HEADROOM_DIV : LM_HEADROOM_MIN;
    sh->max_bytes = max_bytes;
    e = e ? e : mdb_env_set_mapsize(sh->env, (size_t)(max_bytes + headroom));
    /* MDB_NOTLS: a read snapshot belongs to a handle, not to a thread (a thread may hold several). */
    /* MDB_NOMETASYNC: the committer syncs each commit's meta page itself, with the next group's
     * data or on its own, before it answers (store_lmdb_txn.c lm_committer_main). */
    e = e ? e : mdb_env_open(sh->env, sh->dir, MDB_NOTLS | MDB_NOMETASYNC, 0600);
    if (e) {
        snprintf(msg, msg_size, "data directory %s: cannot open: %s", sh->dir, mdb_strerror(e));
        return CW_EIO;
    }
    int dead = 0;
    mdb_reader_check(sh->env, &dead);  /* read slots of a process that was killed */
    MDB_stat st;
    sh->psize = mdb_env_stat(sh->env, &st) == 0 ? st.ms_psize : 4096;
    return open_dbs(sh, msg, msg_size);
}

/* ---- handles ------------------------------------------------------------------------------------ */

static int lm_ping(struct store *s)
{
    struct lm_store *h = (struct lm_store *)s;
    MDB_txn *txn;
    int rc = lm_read(h, &txn);  /* the file answers; writes are refused only when the disk is */
    if (!rc)
        lm_read_done(h);
    return rc;
}

static const char *lm_why(struct store *s)
{
    struct lm_shared *sh = ((struct lm_store *)s)->sh;
    return sh->why;  /* written under the lock, read without: a torn message is still a message */
}

static struct store *handle_new(struct lm_shared *sh);

static struct store *lm_clone(struct store *s)
{
    struct lm_shared *sh = ((struct lm_store *)s)->sh;
    struct store *c = handle_new(sh);
    if (c) {
        pthread_mutex_lock(&sh->mu);
        sh->refs++;
        pthread_mutex_unlock(&sh->mu);
    }
    return c;
}

static void shared_free(struct lm_shared *sh)
{
    pthread_mutex_lock(&sh->mu);
    sh->stop = 1;
    pthread_cond_broadcast(&sh->cv_job);
    pthread_cond_broadcast(&sh->cv_stop);
    pthread_mutex_unlock(&sh->mu);
    if (sh->threads >= 2)
        pthread_join(sh->sweeper, NULL);
    if (sh->threads >= 1)
        pthread_join(sh->committer, NULL);  /* after the jobs queued before the stop */
    if (sh->env)
        mdb_env_close(sh->env);
    if (sh->lock_fd >= 0)
        close(sh->lock_fd);  /* the lock goes with it */
    lm_out_free(sh->out);
    pthread_cond_destroy(&sh->cv_job);
    pthread_cond_destroy(&sh->cv_done);
    pthread_cond_destroy(&sh->cv_stop);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

static void lm_free(struct store *s)
{
    struct lm_store *h = (struct lm_store *)s;
    struct lm_shared *sh = h->sh;
    if (h->rtxn)
        mdb_txn_abort(h->rtxn);
    free(h->blobs);
    free(h);
    pthread_mutex_lock(&sh->mu);
    int last = --sh->refs == 0;
    pthread_mutex_unlock(&sh->mu);
    if (last)
        shared_free(sh);
}

static const struct store_ops lm_ops = {
    .name = "durable",
    .load = lm_load,
    .commit = lm_commit,
    .finding_put = lm_finding_put,
    .finding_get = lm_finding_get,
    .finding_list = lm_finding_list,
    .finding_patch = lm_finding_patch,
    .out_open = lm_out_open,
    .out_read = lm_out_read,
    .out_ack = lm_out_ack,
    .out_dead = lm_out_dead,
    .out_trim = lm_out_trim,
    .out_stats = lm_out_stats,
    .dead_list = lm_out_dead_list,
    .dead_retry = lm_out_dead_retry,
    .ping = lm_ping,
    .why = lm_why,
    .clone = lm_clone,
    .free = lm_free,
    .test_fault = lm_test_fault,
};

static struct store *handle_new(struct lm_shared *sh)
{
    struct lm_store *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->base.ops = &lm_ops;
    h->sh = sh;
    return &h->base;
}

static struct lm_shared *shared_new(const char *dir)
{
    struct lm_shared *sh = calloc(1, sizeof *sh);
    if (!sh)
        return NULL;
    snprintf(sh->dir, sizeof sh->dir, "%s", dir);
    sh->lock_fd = -1;
    sh->refs = 1;
    pthread_mutex_init(&sh->mu, NULL);
    pthread_cond_init(&sh->cv_job, NULL);
    pthread_cond_init(&sh->cv_done, NULL);
    pthread_cond_init(&sh->cv_stop, NULL);
    return sh;
}

struct store *store_lmdb_new(const char *dir, uint64_t max_bytes, char *msg, size_t msg_size)
{
    snprintf(msg, msg_size, "out of memory");
    if (!dir || !dir[0] || strlen(dir) >= LM_DIR_MAX - 16) {
        snprintf(msg, msg_size, "data directory: empty or longer than %d bytes", LM_DIR_MAX - 16);
        return NULL;
    }
    if (max_bytes < STORE_DURABLE_MIN_BYTES || max_bytes > SIZE_MAX / 2) {
        snprintf(msg, msg_size, "data directory %s: bound of %llu bytes, below the least (%llu)", dir,
                 (unsigned long long)max_bytes, (unsigned long long)STORE_DURABLE_MIN_BYTES);
        return NULL;
    }
    struct lm_shared *sh = shared_new(dir);
    if (!sh)
        return NULL;
    struct store *s = NULL;
    if (make_dir(dir, msg, msg_size) || take_lock(dir, &sh->lock_fd, msg, msg_size) ||
        env_open(sh, max_bytes, msg, msg_size) || !(sh->out = lm_out_new()) || !(s = handle_new(sh)))
        goto fail;
    /* the files LMDB may just have created are names in the directory: a power loss must not lose
     * them with the first commits that went into them */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    if (pthread_create(&sh->committer, NULL, lm_committer_main, sh) != 0)
        goto fail;
    sh->threads = 1;
    if (pthread_create(&sh->sweeper, NULL, sweeper_main, sh) != 0)
        goto fail;
    sh->threads = 2;
    msg[0] = 0;
    return s;
fail:
    free(s);
    shared_free(sh);
    return NULL;
}

int store_lmdb_info(struct store *s, struct store_lmdb_info *out)
{
    struct lm_store *h = (struct lm_store *)s;
    struct lm_shared *sh = h->sh;
    MDB_txn *txn;
    MDB_stat st;
    MDB_envinfo ei;
    struct stat fst;
    char path[LM_DIR_MAX + 16];
    memset(out, 0, sizeof *out);
    out->schema = LM_SCHEMA;
    int rc = lm_read(h, &txn);
    if (rc)
        return rc;
    if (!mdb_stat(txn, sh->dbi[LM_KEY], &st))
        out->keys = st.ms_entries;
    if (!mdb_stat(txn, sh->dbi[LM_FIND], &st))
        out->findings = st.ms_entries;
    for (int i = 0; i < LM_DB_COUNT; i++)
        if (mdb_stat(txn, sh->dbi[i], &st) == 0)
            out->used_bytes += (st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) * (uint64_t)sh->psize;
    lm_read_done(h);
    if (!mdb_env_info(sh->env, &ei))
        out->file_high_bytes = ((uint64_t)ei.me_last_pgno + 1) * sh->psize;
    snprintf(path, sizeof path, "%s/data.mdb", sh->dir);
    if (stat(path, &fst) == 0)
        out->file_bytes = (uint64_t)fst.st_blocks * 512;  /* on disk, not the apparent size */
    pthread_mutex_lock(&sh->mu);
    out->swept_keys = sh->swept_keys;
    out->swept_findings = sh->swept_findings;
    pthread_mutex_unlock(&sh->mu);
    return 0;
}

/* A copy into dest/data.mdb: written as data.mdb.tmp, fsynced, renamed, the directory fsynced, so
 * dest never holds half a copy under the final name. */
int store_lmdb_backup(struct store *s, const char *dest, char *msg, size_t msg_size)
{
    struct lm_shared *sh = ((struct lm_store *)s)->sh;
    char tmp[LM_DIR_MAX + 32], fin[LM_DIR_MAX + 32];
    if (make_dir(dest, msg, msg_size))
        return CW_EIO;
    snprintf(tmp, sizeof tmp, "%s/data.mdb.tmp", dest);
    snprintf(fin, sizeof fin, "%s/data.mdb", dest);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(msg, msg_size, "backup %s: %s", tmp, strerror(errno));
        return CW_EIO;
    }
    int e = mdb_env_copyfd2(sh->env, fd, MDB_CP_COMPACT);
    const char *what = e ? mdb_strerror(e) : fsync(fd) != 0 ? strerror(errno) : NULL;
    if (close(fd) != 0 && !what)
        what = strerror(errno);
    if (!what && rename(tmp, fin) != 0)
        what = strerror(errno);
    if (what) {
        unlink(tmp);
        snprintf(msg, msg_size, "backup into %s: %s", dest, what);
        return CW_EIO;
    }
    int dfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}
