/* store_lmdb_out.c — the durable store's outbox: finding events on disk, in the same file (and the
 * same transaction) as the finding change that made them, delivered with store_mem.c's semantics
 * (store.h, "Finding events").
 *
 * Layout (the databases of enum lm_db; numbers in records are little-endian, in keys big-endian so
 * that LMDB's byte order is their order):
 *   LM_OUT_META   "ctr" -> [ver u8][7 zero][qseq u64][entry_n u64]: the last queue sequence and the
 *                 last entry number given (entry ids "<ms>-<n>" as the memory store's: n is unique
 *                 in the store, so it never repeats after a restart either)
 *   LM_OUT_QUEUE  [qseq BE64] -> event record: the events shared by the sinks
 *   LM_OUT_SINK   sink name -> [ver u8][7 zero][cursor][dead_dropped][held][redo][dead] (u64 each):
 *                 the qseq of the last queue event the sink took, and its counts
 *   LM_OUT_HELD, LM_OUT_REDO, LM_OUT_DEAD   [sink][NUL][n BE64] -> event record: a sink's own copies
 *                 (handed out and not acknowledged; sent back by dead_retry; dead), in entry order
 * An event record is [ver u8][kind u8][status u8][len of id, entry, consumer, reason: u8 each]
 * [zero u8][revision u64][n u64][queued, retried, handed, created, updated: i64][attempts u32]
 * [note len u32][evidence len u32][4 zero], then id, entry, consumer, reason, note NUL, evidence
 * NUL (a length of LO_NONE: no such string). Held records name their consumer and when they were
 * handed out; the others leave those empty. Every record is checked against its value's size before
 * a length in it is followed: a value of another shape is CW_EUNAVAIL with the reason (store_why).
 *
 * Recording: as the memory store, events are recorded only once this process opened a sink
 * (lm_out_recording, no transaction). Costs: out_read walks the sink's held events (its own, then
 * those past the claim time), as the memory store does; an idle out_read (nothing held, sent back
 * or new, seen on the handle's snapshot) and a trim that changes nothing write nothing, so the
 * delivery threads' polling costs no commit.
 *
 * Restart: a sink known from before continues from its stored cursor. Every event held at the
 * first out_open of a sink in this process was held by a process that has ended (one process per
 * directory: the lock), so it is released to be claimed at once rather than after the claim time:
 * events queued and not acknowledged before a crash are delivered again (at least once).
 *
 * A sink on disk that this process did not open (removed from the configuration, or not opened
 * yet): events are recorded for it as for the others (it has a cursor), and it holds back the
 * queue from being forgotten by at most out_max events, the backlog an open sink may have before
 * out_trim dead-letters its oldest. Past that its cursor moves on and the events it skipped count in
 * its dead_dropped (no dead letters are written for a sink nobody delivers). Why not "only the open
 * sinks hold the queue": a sink that could not be opened at start (a failed first out_open, then
 * one thread per sink opening its own) would lose its undelivered events to the first trim of
 * another; why not "every sink on disk holds it": a sink removed from the configuration would grow
 * the file without end, since nobody trims it.
 */
#include "store_lmdb.h"
#include "cw.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LO_REC_V1 1                 /* first byte of an event record: its layout (above) */
#define LO_REC_HEAD 80              /* the fixed part of an event record: 76 bytes of fields, 4 zero
                                     * (room for one more field without a new layout) */
#define LO_NONE UINT32_MAX          /* a string length: the string is absent (no note) */
#define LO_CTR_V1 1                 /* first byte of the counters record: its layout */
#define LO_CTR_SIZE 24              /* [ver][7][qseq][entry_n] */
#define LO_CTR_KEY "ctr"            /* the counters' key in LM_OUT_META */
#define LO_SINK_V1 1                /* first byte of a sink record: its layout */
#define LO_SINK_SIZE 48             /* [ver][7][cursor][dead_dropped][held][redo][dead] */
#define LO_KEY_MAX (STORE_SINK_NAME_MAX + 8)  /* [sink][NUL][n BE64]: a name is at most 31 bytes */
#define LO_SEQ_MAX 20               /* decimal digits of a u64, the n of an entry id */

/* What the process knows without a transaction: the sinks it opened and the tests' fault. */
struct lm_out {
    pthread_mutex_t mu;
    char open[STORE_SINK_MAX][STORE_SINK_NAME_MAX];
    size_t n_open;
    atomic_int recording;   /* n_open > 0, read by every finding write */
    atomic_int fault;       /* enum store_fault: tests only (lm_test_fault) */
};

struct lo_ctr {
    uint64_t qseq, entry_n;
};

struct lo_sink {
    uint64_t cursor, dead_dropped, held, redo, dead;
};

/* An event record: ev's strings are the record's own (owned) or point into an LMDB value (a view,
 * valid until the next write of the transaction: lo_own copies it before any write). */
struct lo_rec {
    struct store_event ev;
    uint64_t n;
    char consumer[STORE_CONSUMER_MAX];
    int64_t handed_ms;
};

/* ---- bytes ------------------------------------------------------------------------------------ */

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

/* The key [sink][NUL][n BE64] of a sink's held, redo or dead record; its length. */
static size_t part_key(uint8_t *out, const char *sink, uint64_t n)
{
    size_t len = strlen(sink);
    memcpy(out, sink, len + 1);
    put_be64(out + len + 1, n);
    return len + 9;
}

/* The n of an entry id "<ms>-<n>" (both decimal), 0 when it is not one. */
static uint64_t entry_n(const char *entry)
{
    const char *dash = entry ? strchr(entry, '-') : NULL;
    if (!dash || dash == entry || !dash[1] || strlen(dash + 1) > LO_SEQ_MAX)
        return 0;
    for (const char *p = entry; *p; p++)
        if (p != dash && (*p < '0' || *p > '9'))
            return 0;
    return strtoull(dash + 1, NULL, 10);
}

/* A record of the wrong shape: unavailable, with the reason for store_why. */
static int corrupt(struct lm_shared *sh, const char *what)
{
    return lm_err(sh, MDB_CORRUPTED, what);
}

/* ---- event records ---------------------------------------------------------------------------- */

/* r as a record into a new buffer (*v; the caller frees v->mv_data). 0 or CW_ENOMEM. */
static int rec_encode(const struct lo_rec *r, MDB_val *v)
{
    const struct store_event *ev = &r->ev;
    const char *sh[4] = { ev->finding.id, ev->entry, r->consumer, ev->reason };
    const char *lg[2] = { ev->finding.note, ev->finding.evidence_json };
    size_t size = LO_REC_HEAD;
    for (int i = 0; i < 4; i++)
        size += strlen(sh[i]);
    for (int i = 0; i < 2; i++)
        size += lg[i] ? strlen(lg[i]) + 1 : 0;
    uint8_t *p = malloc(size);
    if (!p)
        return CW_ENOMEM;
    memset(p, 0, LO_REC_HEAD);
    p[0] = LO_REC_V1;
    p[1] = (uint8_t)ev->kind;
    p[2] = (uint8_t)ev->finding.status;
    for (int i = 0; i < 4; i++)
        p[3 + i] = (uint8_t)strlen(sh[i]);
    put_le(p + 8, ev->revision, 8);
    put_le(p + 16, r->n, 8);
    int64_t times[5] = { ev->queued_ms, ev->retried_ms, r->handed_ms, ev->finding.created_ms, ev->finding.updated_ms };
    for (int i = 0; i < 5; i++)
        put_le(p + 24 + 8 * i, (uint64_t)times[i], 8);
    put_le(p + 64, ev->attempts, 4);
    for (int i = 0; i < 2; i++)
        put_le(p + 68 + 4 * i, lg[i] ? strlen(lg[i]) : LO_NONE, 4);
    size_t at = LO_REC_HEAD;
    for (int i = 0; i < 4; i++) {
        memcpy(p + at, sh[i], strlen(sh[i]));
        at += strlen(sh[i]);
    }
    for (int i = 0; i < 2; i++)
        if (lg[i]) {
            memcpy(p + at, lg[i], strlen(lg[i]) + 1);
            at += strlen(lg[i]) + 1;
        }
    v->mv_data = p;
    v->mv_size = size;
    return 0;
}

/* The fixed-size strings of a record into their fields; 0, or -1 when one is too long. */
static int rec_short_strings(const uint8_t *p, struct lo_rec *r)
{
    static const size_t max[4] = { STORE_ID_MAX, STORE_OUT_ENTRY_MAX, STORE_CONSUMER_MAX, STORE_REASON_MAX };
    char *dst[4] = { r->ev.finding.id, r->ev.entry, r->consumer, r->ev.reason };
    size_t at = LO_REC_HEAD;
    for (int i = 0; i < 4; i++) {
        size_t len = p[3 + i];
        if (len >= max[i] || memchr(p + at, 0, len))
            return -1;
        memcpy(dst[i], p + at, len);
        dst[i][len] = 0;
        at += len;
    }
    return 0;
}

/* A view of the record v (strings into v). 0, or CW_EFORMAT for a value of another shape: every
 * length is checked against the value's size before it is followed. */
static int rec_view(const MDB_val *v, struct lo_rec *r)
{
    const uint8_t *p = v->mv_data;
    memset(r, 0, sizeof *r);
    if (v->mv_size < LO_REC_HEAD || p[0] != LO_REC_V1 || p[1] < STORE_EV_CREATED || p[1] > STORE_EV_STATUS ||
        p[2] >= STORE_ST_COUNT || p[7] != 0 || rec_short_strings(p, r))
        return CW_EFORMAT;
    size_t at = LO_REC_HEAD + (size_t)p[3] + p[4] + p[5] + p[6];
    char **lg[2] = { &r->ev.finding.note, &r->ev.finding.evidence_json };
    for (int i = 0; i < 2; i++) {
        uint64_t len = get_le(p + 68 + 4 * i, 4);
        if (len == LO_NONE)
            continue;
        if (len >= v->mv_size || at + len + 1 > v->mv_size || p[at + len] != 0)
            return CW_EFORMAT;
        *lg[i] = (char *)(p + at);
        at += len + 1;
    }
    if (at != v->mv_size)
        return CW_EFORMAT;
    r->ev.kind = p[1];
    r->ev.finding.status = p[2];
    r->ev.revision = get_le(p + 8, 8);
    r->n = get_le(p + 16, 8);
    r->ev.queued_ms = (int64_t)get_le(p + 24, 8);
    r->ev.retried_ms = (int64_t)get_le(p + 32, 8);
    r->handed_ms = (int64_t)get_le(p + 40, 8);
    r->ev.finding.created_ms = (int64_t)get_le(p + 48, 8);
    r->ev.finding.updated_ms = (int64_t)get_le(p + 56, 8);
    r->ev.attempts = (uint32_t)get_le(p + 64, 4);
    return 0;
}

/* A view made the record's own (its strings copied). 0 or CW_ENOMEM (r then owns nothing). */
static int rec_own(struct lo_rec *r)
{
    struct store_finding *f = &r->ev.finding;
    const char *note = f->note, *evidence = f->evidence_json;
    f->note = note ? strdup(note) : NULL;
    f->evidence_json = evidence ? strdup(evidence) : NULL;
    if ((note && !f->note) || (evidence && !f->evidence_json)) {
        store_event_free(&r->ev);
        return CW_ENOMEM;
    }
    return 0;
}

/* The record v, owned (free with store_event_free(&r->ev)). 0, CW_ENOMEM or CW_EUNAVAIL (shape). */
static int rec_get(struct lm_shared *sh, const MDB_val *v, struct lo_rec *r)
{
    if (rec_view(v, r))
        return corrupt(sh, "an outbox event record of another shape");
    return rec_own(r);
}

static int rec_put(MDB_txn *txn, struct lm_shared *sh, enum lm_db db, const MDB_val *key, const struct lo_rec *r)
{
    MDB_val v;
    int rc = rec_encode(r, &v);
    if (rc)
        return rc;
    rc = lm_err(sh, mdb_put(txn, lm_dbi(sh, db), (MDB_val *)key, &v, 0), "outbox: write an event");
    free(v.mv_data);
    return rc;
}

/* ---- counters and sinks ----------------------------------------------------------------------- */

static int ctr_get(MDB_txn *txn, struct lm_shared *sh, struct lo_ctr *c)
{
    MDB_val k = { sizeof LO_CTR_KEY - 1, (void *)LO_CTR_KEY }, v;
    memset(c, 0, sizeof *c);
    int rc = mdb_get(txn, lm_dbi(sh, LM_OUT_META), &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;  /* a new file: nothing queued yet */
    if (rc)
        return lm_err(sh, rc, "outbox: read the counters");
    const uint8_t *p = v.mv_data;
    if (v.mv_size != LO_CTR_SIZE || p[0] != LO_CTR_V1)
        return corrupt(sh, "the outbox counters of another shape");
    c->qseq = get_le(p + 8, 8);
    c->entry_n = get_le(p + 16, 8);
    return 0;
}

static int ctr_put(MDB_txn *txn, struct lm_shared *sh, const struct lo_ctr *c)
{
    uint8_t b[LO_CTR_SIZE] = { LO_CTR_V1 };
    put_le(b + 8, c->qseq, 8);
    put_le(b + 16, c->entry_n, 8);
    MDB_val k = { sizeof LO_CTR_KEY - 1, (void *)LO_CTR_KEY }, v = { sizeof b, b };
    return lm_err(sh, mdb_put(txn, lm_dbi(sh, LM_OUT_META), &k, &v, 0), "outbox: write the counters");
}

static int sink_decode(struct lm_shared *sh, const MDB_val *v, struct lo_sink *k)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size != LO_SINK_SIZE || p[0] != LO_SINK_V1)
        return corrupt(sh, "an outbox sink record of another shape");
    uint64_t *f[5] = { &k->cursor, &k->dead_dropped, &k->held, &k->redo, &k->dead };
    for (int i = 0; i < 5; i++)
        *f[i] = get_le(p + 8 + 8 * i, 8);
    return 0;
}

static void sink_encode(const struct lo_sink *k, uint8_t b[LO_SINK_SIZE])
{
    const uint64_t f[5] = { k->cursor, k->dead_dropped, k->held, k->redo, k->dead };
    memset(b, 0, LO_SINK_SIZE);
    b[0] = LO_SINK_V1;
    for (int i = 0; i < 5; i++)
        put_le(b + 8 + 8 * i, f[i], 8);
}

/* The sink's record: 0, CW_ENOTFOUND (never opened), or CW_EUNAVAIL. */
static int sink_get(MDB_txn *txn, struct lm_shared *sh, const char *sink, struct lo_sink *k)
{
    MDB_val key = { strlen(sink), (void *)sink }, v;
    memset(k, 0, sizeof *k);
    int rc = mdb_get(txn, lm_dbi(sh, LM_OUT_SINK), &key, &v);
    if (rc == MDB_NOTFOUND)
        return CW_ENOTFOUND;
    if (rc)
        return lm_err(sh, rc, "outbox: read a sink");
    return sink_decode(sh, &v, k);
}

static int sink_put(MDB_txn *txn, struct lm_shared *sh, const char *sink, const struct lo_sink *k)
{
    uint8_t b[LO_SINK_SIZE];
    sink_encode(k, b);
    MDB_val key = { strlen(sink), (void *)sink }, v = { sizeof b, b };
    return lm_err(sh, mdb_put(txn, lm_dbi(sh, LM_OUT_SINK), &key, &v, 0), "outbox: write a sink");
}

/* ---- the process's part ----------------------------------------------------------------------- */

struct lm_out *lm_out_new(void)
{
    struct lm_out *o = calloc(1, sizeof *o);
    if (o && pthread_mutex_init(&o->mu, NULL)) {
        free(o);
        return NULL;
    }
    return o;
}

void lm_out_free(struct lm_out *o)
{
    if (!o)
        return;
    pthread_mutex_destroy(&o->mu);
    free(o);
}

int lm_out_recording(struct lm_shared *sh)
{
    struct lm_out *o = lm_out_of(sh);
    return o && atomic_load(&o->recording);
}

/* 1 when this process opened sink (o->mu held). */
static int opened_locked(const struct lm_out *o, const char *sink)
{
    for (size_t i = 0; i < o->n_open; i++)
        if (strcmp(o->open[i], sink) == 0)
            return 1;
    return 0;
}

static int opened(struct lm_shared *sh, const char *sink)
{
    struct lm_out *o = lm_out_of(sh);
    pthread_mutex_lock(&o->mu);
    int yes = opened_locked(o, sink);
    pthread_mutex_unlock(&o->mu);
    return yes;
}

/* A sink a call may name: valid and opened by this process (as the memory store: CW_EINVAL). */
static int sink_usable(struct lm_shared *sh, const char *sink)
{
    return sink && store_sink_name_valid(sink) && opened(sh, sink) ? 0 : CW_EINVAL;
}

/* ---- a sink's part of the held, redo and dead databases --------------------------------------- */

/* A cursor on db (*c NULL when it cannot be opened): close with cur_close. */
static int cur_open(MDB_txn *txn, struct lm_shared *sh, enum lm_db db, MDB_cursor **c)
{
    *c = NULL;
    int rc = mdb_cursor_open(txn, lm_dbi(sh, db), c);
    if (rc)
        *c = NULL;
    return lm_err(sh, rc, "outbox: open a cursor");
}

static void cur_close(MDB_cursor *c)
{
    if (c)
        mdb_cursor_close(c);
}

/* The end of a walk: its own error, else the cursor's (MDB_NOTFOUND: walked to the end). */
static int walk_end(struct lm_shared *sh, int rc, int mrc, const char *what)
{
    return rc ? rc : mrc == 0 || mrc == MDB_NOTFOUND ? 0 : lm_err(sh, mrc, what);
}

/* Positions c on the sink's first record with n >= from (op MDB_SET_RANGE) or on the next one
 * (MDB_NEXT); k and v get it. 0, MDB_NOTFOUND past the sink's part, or an LMDB error. */
static int part_step(MDB_cursor *c, const char *sink, uint64_t from, MDB_cursor_op op, MDB_val *k, MDB_val *v)
{
    uint8_t kb[LO_KEY_MAX];
    size_t plen = strlen(sink) + 1;
    if (op == MDB_SET_RANGE) {
        k->mv_size = part_key(kb, sink, from);
        k->mv_data = kb;
    }
    int rc = mdb_cursor_get(c, k, v, op);
    if (rc)
        return rc;
    if (k->mv_size != plen + 8 || memcmp(k->mv_data, sink, plen) != 0)
        return MDB_NOTFOUND;
    return 0;
}

/* ---- queueing (a finding write's job) --------------------------------------------------------- */

int lm_out_queue(MDB_txn *txn, struct lm_shared *sh, const char *id, const struct lm_frec *r, int64_t now_ms)
{
    struct lm_out *o = lm_out_of(sh);
    if (o && atomic_load(&o->fault) == STORE_FAULT_OUTBOX)
        return CW_EUNAVAIL;
    struct lo_ctr c;
    int rc = ctr_get(txn, sh, &c);
    if (rc)
        return rc;
    struct lo_rec e = { .n = ++c.entry_n };
    e.ev.revision = r->rv;
    e.ev.kind = (int)r->rk;
    e.ev.queued_ms = now_ms;
    snprintf(e.ev.entry, sizeof e.ev.entry, "%lld-%llu", (long long)now_ms, (unsigned long long)e.n);
    snprintf(e.ev.finding.id, sizeof e.ev.finding.id, "%s", id);
    e.ev.finding.status = (int)r->status;
    e.ev.finding.created_ms = r->created_ms;
    e.ev.finding.updated_ms = r->updated_ms;
    /* r's strings may be in LMDB's pages: encoded (copied) before this job writes anything */
    e.ev.finding.evidence_json = (char *)r->evidence;
    e.ev.finding.note = (char *)r->note;
    if (e.ev.kind < STORE_EV_CREATED || e.ev.kind > STORE_EV_STATUS || e.ev.finding.status < 0 ||
        e.ev.finding.status >= STORE_ST_COUNT)
        return corrupt(sh, "a finding record whose event kind or status is out of range");
    MDB_val v;
    if ((rc = rec_encode(&e, &v)) != 0)
        return rc;
    uint8_t kb[8];
    put_be64(kb, ++c.qseq);
    MDB_val k = { sizeof kb, kb };
    rc = lm_err(sh, mdb_put(txn, lm_dbi(sh, LM_OUT_QUEUE), &k, &v, MDB_APPEND), "outbox: queue an event");
    free(v.mv_data);
    return rc ? rc : ctr_put(txn, sh, &c);
}

/* ---- out_open --------------------------------------------------------------------------------- */

struct open_job {
    const char *const *sinks;
    size_t n;
    const int *first;     /* first[i]: sinks[i] is opened by this process for the first time */
};

/* The n of a part key (part_step found it). */
static uint64_t part_n(const MDB_val *k)
{
    return get_be64((const uint8_t *)k->mv_data + k->mv_size - 8);
}

/* Releases the events held for sink by a process that has ended: claimable at once. Each step
 * seeks past the last record rewritten (no cursor is relied on across a write). */
static int release_held(MDB_txn *txn, struct lm_shared *sh, const char *sink)
{
    MDB_cursor *c;
    int rc = cur_open(txn, sh, LM_OUT_HELD, &c);
    MDB_val k, v;
    uint64_t from = 0;
    int mrc = 0;
    while (!rc && (mrc = part_step(c, sink, from, MDB_SET_RANGE, &k, &v)) == 0) {
        struct lo_rec r;
        uint8_t kb[LO_KEY_MAX];
        uint64_t n = part_n(&k);
        MDB_val key = { part_key(kb, sink, n), kb };
        if ((rc = rec_get(sh, &v, &r)) != 0)
            break;
        r.consumer[0] = 0;
        r.handed_ms = 0;
        rc = rec_put(txn, sh, LM_OUT_HELD, &key, &r);
        store_event_free(&r.ev);
        from = n + 1;
    }
    cur_close(c);
    return walk_end(sh, rc, mrc, "outbox: read held events");
}

/* The first queue sequence still kept, or qseq + 1 when the queue is empty. */
static int queue_first(MDB_txn *txn, struct lm_shared *sh, const struct lo_ctr *ctr, uint64_t *first)
{
    MDB_cursor *c;
    int rc = cur_open(txn, sh, LM_OUT_QUEUE, &c);
    if (rc)
        return rc;
    MDB_val k, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    *first = ctr->qseq + 1;
    if (!mrc && k.mv_size == 8)
        *first = get_be64(k.mv_data);
    else if (!mrc)
        rc = corrupt(sh, "an outbox queue key of another shape");
    else if (mrc != MDB_NOTFOUND)
        rc = lm_err(sh, mrc, "outbox: read the queue");
    mdb_cursor_close(c);
    return rc;
}

static int open_job(MDB_txn *txn, struct lm_shared *sh, void *arg)
{
    const struct open_job *j = arg;
    struct lo_ctr ctr;
    uint64_t first;
    int rc = ctr_get(txn, sh, &ctr);
    if (!rc)
        rc = queue_first(txn, sh, &ctr, &first);
    for (size_t i = 0; i < j->n && !rc; i++) {
        struct lo_sink k;
        rc = sink_get(txn, sh, j->sinks[i], &k);
        if (rc == CW_ENOTFOUND) {
            memset(&k, 0, sizeof k);
            k.cursor = ctr.qseq;  /* a new sink gets the events from now on */
            rc = 0;
        } else if (!rc && k.cursor + 1 < first) {
            k.cursor = first - 1;  /* forgotten while it was away (counted then in dead_dropped) */
        }
        if (!rc && j->first[i])
            rc = release_held(txn, sh, j->sinks[i]);
        if (!rc)
            rc = sink_put(txn, sh, j->sinks[i], &k);
    }
    return rc;
}

int lm_out_open(struct store *s, const char *const *sinks, size_t n)
{
    struct lm_shared *sh = ((struct lm_store *)s)->sh;
    struct lm_out *o = lm_out_of(sh);
    int first[STORE_SINK_MAX];
    if (n > STORE_SINK_MAX)
        return CW_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!store_sink_name_valid(sinks[i]))
            return CW_EINVAL;
    if (!n)
        return 0;
    pthread_mutex_lock(&o->mu);
    size_t fresh = 0;
    for (size_t i = 0; i < n; i++) {
        first[i] = !opened_locked(o, sinks[i]);
        for (size_t j = 0; j < i && first[i]; j++)
            first[i] = strcmp(sinks[j], sinks[i]) != 0;
        fresh += (size_t)first[i];
    }
    int full = o->n_open + fresh > STORE_SINK_MAX;
    pthread_mutex_unlock(&o->mu);
    if (full)
        return CW_EINVAL;  /* more sinks than a deployment may have: none is opened */
    struct open_job j = { sinks, n, first };
    int rc = lm_write(sh, open_job, &j);
    if (rc)
        return rc;
    pthread_mutex_lock(&o->mu);
    for (size_t i = 0; i < n; i++)
        if (!opened_locked(o, sinks[i]) && o->n_open < STORE_SINK_MAX)
            snprintf(o->open[o->n_open++], sizeof o->open[0], "%s", sinks[i]);
    atomic_store(&o->recording, 1);
    pthread_mutex_unlock(&o->mu);
    return 0;
}

/* The first queue event with a sequence >= from, owned: 0, CW_ENOTFOUND (none), or an error. */
static int queue_at(MDB_txn *txn, struct lm_shared *sh, uint64_t from, uint64_t *seq, struct lo_rec *r)
{
    MDB_cursor *c;
    int rc = cur_open(txn, sh, LM_OUT_QUEUE, &c);
    if (rc)
        return rc;
    uint8_t qb[8];
    put_be64(qb, from);
    MDB_val k = { sizeof qb, qb }, v;
    int mrc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (mrc == MDB_NOTFOUND)
        rc = CW_ENOTFOUND;
    else if (mrc)
        rc = lm_err(sh, mrc, "outbox: read the queue");
    else if (k.mv_size != 8)
        rc = corrupt(sh, "an outbox queue key of another shape");
    else if ((rc = rec_get(sh, &v, r)) == 0)
        *seq = get_be64(k.mv_data);
    cur_close(c);
    return rc;
}

/* ---- out_read --------------------------------------------------------------------------------- */

struct read_job {
    const char *sink, *consumer;
    size_t max;
    int64_t now_ms, claim_ms;
    struct lo_sink k;
    struct store_event *out;   /* out[0..n): handed out, owned by the caller once the job is on disk */
    size_t n;
};

/* r (owned) handed to the job's consumer: written back as held under key with one more attempt
 * and the consumer's name, and moved to out (with the attempts before this one). */
static int hand_out(MDB_txn *txn, struct lm_shared *sh, struct read_job *j, const MDB_val *key, struct lo_rec *r)
{
    struct lo_rec held = *r;
    held.ev.attempts++;
    snprintf(held.consumer, sizeof held.consumer, "%s", j->consumer);
    held.handed_ms = j->now_ms;
    int rc = rec_put(txn, sh, LM_OUT_HELD, key, &held);
    if (rc) {
        store_event_free(&r->ev);
        return rc;
    }
    j->out[j->n++] = r->ev;
    return 0;
}

/* Held events: pass 0 the consumer's own, pass 1 those another held past the claim time. */
static int read_held(MDB_txn *txn, struct lm_shared *sh, struct read_job *j, int pass)
{
    MDB_cursor *c;
    int rc = cur_open(txn, sh, LM_OUT_HELD, &c), mrc = 0;
    MDB_val k, v;
    uint64_t from = 0;
    while (!rc && j->n < j->max && (mrc = part_step(c, j->sink, from, MDB_SET_RANGE, &k, &v)) == 0) {
        struct lo_rec r;
        uint64_t n = part_n(&k);
        from = n + 1;
        if (rec_view(&v, &r)) {
            rc = corrupt(sh, "an outbox event record of another shape");
            break;
        }
        int own = strcmp(r.consumer, j->consumer) == 0;
        if (pass == 0 ? !own : own || j->now_ms - r.handed_ms < j->claim_ms)
            continue;
        uint8_t kb[LO_KEY_MAX];
        MDB_val key = { part_key(kb, j->sink, n), kb };
        if ((rc = rec_own(&r)) == 0)
            rc = hand_out(txn, sh, j, &key, &r);
    }
    cur_close(c);
    return walk_end(sh, rc, mrc, "outbox: read held events");
}

/* Then the events sent back by dead_retry, oldest first: each becomes held by the consumer. */
static int read_redo(MDB_txn *txn, struct lm_shared *sh, struct read_job *j)
{
    MDB_cursor *c;
    int rc = cur_open(txn, sh, LM_OUT_REDO, &c), mrc = 0;
    MDB_val k, v;
    while (!rc && j->n < j->max && (mrc = part_step(c, j->sink, 0, MDB_SET_RANGE, &k, &v)) == 0) {
        struct lo_rec r;
        uint8_t kb[LO_KEY_MAX];
        MDB_val key = { part_key(kb, j->sink, part_n(&k)), kb };
        if ((rc = rec_get(sh, &v, &r)) != 0)
            break;
        rc = lm_err(sh, mdb_del(txn, lm_dbi(sh, LM_OUT_REDO), &key, NULL), "outbox: take a sent-back event");
        if (rc) {
            store_event_free(&r.ev);
            break;
        }
        j->k.redo--;
        j->k.held++;
        rc = hand_out(txn, sh, j, &key, &r);
    }
    cur_close(c);
    return walk_end(sh, rc, mrc, "outbox: read sent-back events");
}

/* Then new events, after the sink's cursor: the sink's own copy becomes held (same entry id). */
static int read_queue(MDB_txn *txn, struct lm_shared *sh, struct read_job *j)
{
    int rc = 0;
    while (!rc && j->n < j->max) {
        struct lo_rec r;
        uint64_t seq;
        if ((rc = queue_at(txn, sh, j->k.cursor + 1, &seq, &r)) != 0)
            break;
        uint8_t kb[LO_KEY_MAX];
        MDB_val key = { part_key(kb, j->sink, r.n), kb };
        j->k.cursor = seq;
        j->k.held++;
        rc = hand_out(txn, sh, j, &key, &r);
    }
    return rc == CW_ENOTFOUND ? 0 : rc;
}

static int read_job(MDB_txn *txn, struct lm_shared *sh, void *arg)
{
    struct read_job *j = arg;
    for (size_t i = 0; i < j->n; i++)
        store_event_free(&j->out[i]);  /* a job run again (the committer may retry a group) */
    j->n = 0;
    int rc = sink_get(txn, sh, j->sink, &j->k);
    if (rc == CW_ENOTFOUND)
        rc = corrupt(sh, "an open outbox sink without its record");
    for (int pass = 0; pass < 2 && !rc; pass++)
        rc = read_held(txn, sh, j, pass);
    if (!rc)
        rc = read_redo(txn, sh, j);
    if (!rc)
        rc = read_queue(txn, sh, j);
    if (!rc && j->n)
        rc = sink_put(txn, sh, j->sink, &j->k);
    return rc;  /* nothing handed out: nothing written, and LMDB's commit of nothing syncs nothing */
}

/* 1 when the sink may have something for a consumer (held events, sent-back ones, new ones), 0
 * when it has nothing, on the handle's snapshot: a delivery thread polls every sink this way (every
 * SNK_RUN_POLL_MS when idle), and an idle poll should not cost a write job. */
static int read_maybe(struct lm_store *h, const char *sink)
{
    MDB_txn *txn;
    struct lo_sink k;
    struct lo_ctr ctr;
    int rc = lm_read(h, &txn);
    if (rc)
        return rc;
    rc = sink_get(txn, h->sh, sink, &k);
    if (!rc)
        rc = ctr_get(txn, h->sh, &ctr);
    lm_read_done(h);
    if (rc == CW_ENOTFOUND)
        return 1;  /* the job says what is wrong */
    return rc ? rc : k.held || k.redo || ctr.qseq != k.cursor;
}

int lm_out_read(struct store *s, const char *sink, const char *consumer, size_t max, int64_t now_ms,
                struct store_event *out, size_t *n)
{
    struct lm_shared *sh = ((struct lm_store *)s)->sh;
    *n = 0;
    if (!consumer || !store_consumer_name_valid(consumer) || sink_usable(sh, sink))
        return CW_EINVAL;
    struct store_out_limits lim;
    store_out_get_limits(&lim);
    struct read_job j = { .sink = sink, .consumer = consumer, .now_ms = now_ms, .claim_ms = lim.claim_ms, .out = out };
    j.max = max > STORE_OUT_READ_MAX ? STORE_OUT_READ_MAX : max;
    int rc = j.max ? read_maybe((struct lm_store *)s, sink) : 0;
    if (rc <= 0)
        return rc;
    rc = lm_write(sh, read_job, &j);
    if (rc) {
        for (size_t i = 0; i < j.n; i++)
            store_event_free(&out[i]);  /* rolled back: nothing was handed out */
        return rc;
    }
    *n = j.n;
    return 0;
}

/* ---- out_ack, out_dead ------------------------------------------------------------------------ */

struct ack_job {
    const char *sink;
    const char *const *entries;
    size_t n;
    const struct store_event *dead;   /* out_dead: the event to dead-letter, with reason and time */
    const char *reason;
    int64_t now_ms;
};

/* Drops the held event of that entry, if any (an unknown entry is no error: acked already). */
static int held_drop(MDB_txn *txn, struct lm_shared *sh, const char *sink, const char *entry, struct lo_sink *k)
{
    uint64_t n = entry_n(entry);
    if (!n)
        return 0;
    uint8_t kb[LO_KEY_MAX];
    MDB_val key = { part_key(kb, sink, n), kb }, v;
    int rc = mdb_get(txn, lm_dbi(sh, LM_OUT_HELD), &key, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return lm_err(sh, rc, "outbox: read a held event");
    struct lo_rec r;
    if (rec_view(&v, &r))
        return corrupt(sh, "an outbox event record of another shape");
    if (strcmp(r.ev.entry, entry) != 0)
        return 0;
    k->held--;
    return lm_err(sh, mdb_del(txn, lm_dbi(sh, LM_OUT_HELD), &key, NULL), "outbox: acknowledge an event");
}

/* Adds a dead letter of ev (a new entry id) to the sink, dropping the oldest past the bound
 * (counted); with a bound of 0 the letter itself is dropped, counted. */
static int dead_add(MDB_txn *txn, struct lm_shared *sh, const char *sink, struct lo_sink *k, struct lo_ctr *ctr,
                    const struct store_event *ev, const char *reason, int64_t now_ms)
{
    struct store_out_limits lim;
    store_out_get_limits(&lim);
    MDB_cursor *c;
    int rc = cur_open(txn, sh, LM_OUT_DEAD, &c), mrc = 0;
    MDB_val dk, dv;
    while (!rc && k->dead && k->dead >= lim.dead_max && (mrc = part_step(c, sink, 0, MDB_SET_RANGE, &dk, &dv)) == 0) {
        rc = lm_err(sh, mdb_cursor_del(c, 0), "outbox: drop a dead letter");
        k->dead--;
        k->dead_dropped++;
    }
    cur_close(c);
    if ((rc = walk_end(sh, rc, mrc, "outbox: read dead letters")) != 0)
        return rc;
    struct lo_rec d = { .ev = *ev, .n = ++ctr->entry_n };
    snprintf(d.ev.entry, sizeof d.ev.entry, "%lld-%llu", (long long)now_ms, (unsigned long long)d.n);
    snprintf(d.ev.reason, sizeof d.ev.reason, "%s", reason ? reason : "");
    if (!lim.dead_max) {
        k->dead_dropped++;
        return 0;
    }
    uint8_t kb[LO_KEY_MAX];
    MDB_val key = { part_key(kb, sink, d.n), kb };
    k->dead++;
    return rec_put(txn, sh, LM_OUT_DEAD, &key, &d);
}

static int ack_job(MDB_txn *txn, struct lm_shared *sh, void *arg)
{
    const struct ack_job *j = arg;
    struct lo_sink k;
    struct lo_ctr ctr;
    int rc = sink_get(txn, sh, j->sink, &k);
    if (rc == CW_ENOTFOUND)
        rc = corrupt(sh, "an open outbox sink without its record");
    if (!rc && j->dead && (rc = ctr_get(txn, sh, &ctr)) == 0 &&
        (rc = dead_add(txn, sh, j->sink, &k, &ctr, j->dead, j->reason, j->now_ms)) == 0)
        rc = ctr_put(txn, sh, &ctr);
    for (size_t i = 0; i < j->n && !rc; i++)
        rc = held_drop(txn, sh, j->sink, j->entries[i], &k);
    return rc ? rc : sink_put(txn, sh, j->sink, &k);
}

int lm_out_ack(struct store *s, const char *sink, const char *const *entries, size_t n)
{
    struct lm_shared *sh = ((struct lm_store *)s)->sh;
    if (sink_usable(sh, sink))
        return CW_EINVAL;
    if (!n)
        return 0;
    struct ack_job j = { .sink = sink, .entries = entries, .n = n };
    return lm_write(sh, ack_job, &j);
}

int lm_out_dead(struct store *s, const char *sink, const struct store_event *ev, const char *reason, int64_t now_ms)
{
    struct lm_shared *sh = ((struct lm_store *)s)->sh;
    if (sink_usable(sh, sink) || !ev || ev->kind < STORE_EV_CREATED || ev->kind > STORE_EV_STATUS ||
        ev->finding.status < 0 || ev->finding.status >= STORE_ST_COUNT)
        return CW_EINVAL;
    const char *entry = ev->entry;
    struct ack_job j = { .sink = sink, .entries = &entry, .n = 1, .dead = ev, .reason = reason, .now_ms = now_ms };
    return lm_write(sh, ack_job, &j);
}

/* ---- out_trim --------------------------------------------------------------------------------- */

struct trim_job {
    const char *sink;
    int64_t now_ms;
    struct store_out_limits lim;
    size_t dead_lettered;
};

/* A sink this process did not open keeps at most out_max events of the queue (the header says
 * why): past that its cursor moves on, the events it skips counted as dropped. */
static int unopened_bound(MDB_cursor *c, struct lm_shared *sh, const struct lo_ctr *ctr, size_t out_max,
                          MDB_val *key, struct lo_sink *k)
{
    if (ctr->qseq - k->cursor <= out_max)
        return 0;
    uint64_t to = ctr->qseq - out_max;
    k->dead_dropped += to - k->cursor;
    k->cursor = to;
    uint8_t b[LO_SINK_SIZE];
    sink_encode(k, b);
    MDB_val v = { sizeof b, b };
    return lm_err(sh, mdb_cursor_put(c, key, &v, MDB_CURRENT), "outbox: move an unopened sink on");
}

/* The lowest cursor of every sink on disk (after unopened_bound), qseq when there is none. */
static int queue_min(MDB_txn *txn, struct lm_shared *sh, const struct lo_ctr *ctr, size_t out_max, uint64_t *min)
{
    MDB_cursor *c;
    int rc = cur_open(txn, sh, LM_OUT_SINK, &c), mrc = 0;
    MDB_val k, v;
    *min = ctr->qseq;
    for (MDB_cursor_op op = MDB_FIRST; !rc && (mrc = mdb_cursor_get(c, &k, &v, op)) == 0; op = MDB_NEXT) {
        struct lo_sink sk;
        char name[STORE_SINK_NAME_MAX];
        if ((rc = sink_decode(sh, &v, &sk)) != 0)
            break;
        if (k.mv_size >= sizeof name) {
            rc = corrupt(sh, "an outbox sink name of another shape");
            break;
        }
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = 0;
        if (!opened(sh, name))
            rc = unopened_bound(c, sh, ctr, out_max, &k, &sk);
        if (sk.cursor < *min)
            *min = sk.cursor;
    }
    cur_close(c);
    return walk_end(sh, rc, mrc, "outbox: read the sinks");
}

/* Forgets the queue events every sink's cursor has passed (held ones are the sinks' copies). */
static int queue_forget(MDB_txn *txn, struct lm_shared *sh, const struct lo_ctr *ctr, size_t out_max)
{
    uint64_t min;
    int rc = queue_min(txn, sh, ctr, out_max, &min);
    MDB_cursor *c = NULL;
    if (!rc)
        rc = cur_open(txn, sh, LM_OUT_QUEUE, &c);
    MDB_val k, v;
    int mrc = 0;
    while (!rc && (mrc = mdb_cursor_get(c, &k, &v, MDB_FIRST)) == 0 && k.mv_size == 8 && get_be64(k.mv_data) <= min)
        rc = lm_err(sh, mdb_cursor_del(c, 0), "outbox: forget an event");
    cur_close(c);
    return walk_end(sh, rc, mrc, "outbox: read the queue");
}

static int trim_job(MDB_txn *txn, struct lm_shared *sh, void *arg)
{
    struct trim_job *j = arg;
    struct lo_sink k;
    struct lo_ctr ctr;
    j->dead_lettered = 0;
    int rc = sink_get(txn, sh, j->sink, &k);
    if (rc == CW_ENOTFOUND)
        rc = corrupt(sh, "an open outbox sink without its record");
    if (!rc)
        rc = ctr_get(txn, sh, &ctr);
    while (!rc && ctr.qseq - k.cursor > j->lim.out_max) {
        struct lo_rec r;
        uint64_t seq;
        if ((rc = queue_at(txn, sh, k.cursor + 1, &seq, &r)) != 0)
            break;
        k.cursor = seq;
        rc = dead_add(txn, sh, j->sink, &k, &ctr, &r.ev, "outbox full", j->now_ms);
        store_event_free(&r.ev);
        j->dead_lettered += !rc;
    }
    if (rc == CW_ENOTFOUND)
        rc = 0;  /* the events it lacks were forgotten: nothing more to dead-letter */
    if (!rc && j->dead_lettered && (rc = sink_put(txn, sh, j->sink, &k)) == 0)
        rc = ctr_put(txn, sh, &ctr);
    /* a trim that changes nothing writes nothing (the delivery threads trim every sink regularly) */
    return rc ? rc : queue_forget(txn, sh, &ctr, j->lim.out_max);
}

int lm_out_trim(struct store *s, const char *sink, int64_t now_ms, size_t *dead_lettered)
{
    struct lm_shared *sh = ((struct lm_store *)s)->sh;
    *dead_lettered = 0;
    if (sink_usable(sh, sink))
        return CW_EINVAL;
    struct trim_job j = { .sink = sink, .now_ms = now_ms };
    store_out_get_limits(&j.lim);
    int rc = lm_write(sh, trim_job, &j);
    if (!rc)
        *dead_lettered = j.dead_lettered;
    return rc;
}

/* ---- out_stats, dead_list (the handle's read snapshot) ---------------------------------------- */

/* The oldest queued time among the sink's records of db (all of them, or only the first). */
static int part_oldest(MDB_txn *txn, struct lm_shared *sh, enum lm_db db, const char *sink, int all, int64_t *oldest)
{
    MDB_cursor *c;
    int rc = cur_open(txn, sh, db, &c), mrc = 0;
    MDB_val k, v;
    for (MDB_cursor_op op = MDB_SET_RANGE; !rc && (mrc = part_step(c, sink, 0, op, &k, &v)) == 0; op = MDB_NEXT) {
        struct lo_rec r;
        if (rec_view(&v, &r)) {
            rc = corrupt(sh, "an outbox event record of another shape");
            break;
        }
        if (!*oldest || r.ev.queued_ms < *oldest)
            *oldest = r.ev.queued_ms;
        if (!all)
            break;
    }
    cur_close(c);
    return walk_end(sh, rc, mrc, "outbox: read a sink's events");
}

static int stats_in(MDB_txn *txn, struct lm_shared *sh, const char *sink, struct store_out_stats *st)
{
    struct lo_sink k;
    struct lo_ctr ctr;
    int rc = sink_get(txn, sh, sink, &k);
    if (rc == CW_ENOTFOUND)
        return corrupt(sh, "an open outbox sink without its record");
    if (rc || (rc = ctr_get(txn, sh, &ctr)) != 0)
        return rc;
    st->depth = ctr.qseq - k.cursor + k.redo;
    st->held = k.held;
    st->dead = k.dead;
    st->dead_dropped = k.dead_dropped;
    if ((rc = part_oldest(txn, sh, LM_OUT_HELD, sink, 1, &st->oldest_ms)) != 0 ||
        (rc = part_oldest(txn, sh, LM_OUT_REDO, sink, 0, &st->oldest_ms)) != 0)
        return rc;
    struct lo_rec r;
    uint64_t seq;
    rc = queue_at(txn, sh, k.cursor + 1, &seq, &r);
    if (rc == CW_ENOTFOUND)
        return 0;
    if (!rc && (!st->oldest_ms || r.ev.queued_ms < st->oldest_ms))
        st->oldest_ms = r.ev.queued_ms;
    if (!rc)
        store_event_free(&r.ev);
    return rc;
}

int lm_out_stats(struct store *s, const char *sink, int64_t now_ms, struct store_out_stats *st)
{
    struct lm_store *h = (struct lm_store *)s;
    (void)now_ms;
    memset(st, 0, sizeof *st);
    if (sink_usable(h->sh, sink))
        return CW_EINVAL;
    MDB_txn *txn;
    int rc = lm_read(h, &txn);
    if (rc)
        return rc;
    rc = stats_in(txn, h->sh, sink, st);
    lm_read_done(h);
    if (rc)
        memset(st, 0, sizeof *st);
    return rc;
}

static int dead_list_in(MDB_txn *txn, struct lm_shared *sh, const char *sink, uint64_t from, size_t limit,
                        struct store_event *out, size_t *n, int *more)
{
    MDB_cursor *c;
    int rc = cur_open(txn, sh, LM_OUT_DEAD, &c), mrc = 0;
    MDB_val k, v;
    for (MDB_cursor_op op = MDB_SET_RANGE; !rc && (mrc = part_step(c, sink, from, op, &k, &v)) == 0; op = MDB_NEXT) {
        if (*n >= limit) {
            *more = 1;
            break;
        }
        struct lo_rec r;
        if ((rc = rec_get(sh, &v, &r)) == 0)
            out[(*n)++] = r.ev;
    }
    cur_close(c);
    return walk_end(sh, rc, mrc, "outbox: read dead letters");
}

int lm_out_dead_list(struct store *s, const char *sink, const char *after, size_t limit, struct store_event *out,
                     size_t *n, int *more)
{
    struct lm_store *h = (struct lm_store *)s;
    *n = 0;
    *more = 0;
    if (sink_usable(h->sh, sink))
        return CW_EINVAL;
    MDB_txn *txn;
    int rc = lm_read(h, &txn);
    if (rc)
        return rc;
    uint64_t from = after && *after ? entry_n(after) + 1 : 0;
    rc = dead_list_in(txn, h->sh, sink, from, limit, out, n, more);
    lm_read_done(h);
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            store_event_free(&out[i]);
        *n = 0;
        *more = 0;
    }
    return rc;
}

/* ---- dead_retry ------------------------------------------------------------------------------- */

struct retry_job {
    const char *sink, *entry;   /* entry NULL: every dead letter */
    int64_t now_ms;
    size_t moved;
};

/* Moves the dead letter r (at key) to the sent-back events under a new entry id. */
static int retry_one(MDB_txn *txn, struct lm_shared *sh, struct retry_job *j, struct lo_sink *k,
                     struct lo_ctr *ctr, const MDB_val *key, struct lo_rec *r)
{
    int rc = lm_err(sh, mdb_del(txn, lm_dbi(sh, LM_OUT_DEAD), (MDB_val *)key, NULL), "outbox: take a dead letter");
    if (rc)
        return rc;
    r->n = ++ctr->entry_n;  /* a new entry: the dead letter's id is gone */
    snprintf(r->ev.entry, sizeof r->ev.entry, "%lld-%llu", (long long)r->ev.queued_ms, (unsigned long long)r->n);
    r->ev.reason[0] = 0;
    r->ev.retried_ms = j->now_ms;
    uint8_t kb[LO_KEY_MAX];
    MDB_val rkey = { part_key(kb, j->sink, r->n), kb };
    k->dead--;
    k->redo++;
    j->moved++;
    return rec_put(txn, sh, LM_OUT_REDO, &rkey, r);
}

/* The dead letter to move next: the entry's (once), or the sink's first. 0, CW_ENOTFOUND, error. */
static int retry_next(MDB_txn *txn, struct lm_shared *sh, const struct retry_job *j, uint8_t *kb, MDB_val *key,
                      struct lo_rec *r)
{
    MDB_val v;
    int mrc;
    if (j->entry) {
        uint64_t n = entry_n(j->entry);
        if (!n || j->moved)
            return CW_ENOTFOUND;
        key->mv_size = part_key(kb, j->sink, n);
        key->mv_data = kb;
        mrc = mdb_get(txn, lm_dbi(sh, LM_OUT_DEAD), key, &v);
    } else {
        MDB_cursor *c;
        int rc = cur_open(txn, sh, LM_OUT_DEAD, &c);
        if (rc)
            return rc;
        mrc = part_step(c, j->sink, 0, MDB_SET_RANGE, key, &v);
        if (!mrc) {
            key->mv_size = part_key(kb, j->sink, part_n(key));
            key->mv_data = kb;  /* a copy: the cursor's key is LMDB's until the next write */
        }
        cur_close(c);
    }
    if (mrc)
        return mrc == MDB_NOTFOUND ? CW_ENOTFOUND : lm_err(sh, mrc, "outbox: read dead letters");
    int rc = rec_get(sh, &v, r);
    if (!rc && j->entry && strcmp(r->ev.entry, j->entry) != 0) {
        store_event_free(&r->ev);
        rc = CW_ENOTFOUND;
    }
    return rc;
}

static int retry_job(MDB_txn *txn, struct lm_shared *sh, void *arg)
{
    struct retry_job *j = arg;
    struct lo_sink k;
    struct lo_ctr ctr;
    j->moved = 0;
    int rc = sink_get(txn, sh, j->sink, &k);
    if (rc == CW_ENOTFOUND)
        rc = corrupt(sh, "an open outbox sink without its record");
    if (!rc)
        rc = ctr_get(txn, sh, &ctr);
    while (!rc) {
        uint8_t kb[LO_KEY_MAX];
        MDB_val key;
        struct lo_rec r;
        if ((rc = retry_next(txn, sh, j, kb, &key, &r)) != 0)
            break;
        rc = retry_one(txn, sh, j, &k, &ctr, &key, &r);
        store_event_free(&r.ev);
    }
    if (rc == CW_ENOTFOUND)
        rc = j->entry && !j->moved ? CW_ENOTFOUND : 0;
    if (!rc && j->moved && (rc = sink_put(txn, sh, j->sink, &k)) == 0)
        rc = ctr_put(txn, sh, &ctr);
    return rc;
}

int lm_out_dead_retry(struct store *s, const char *sink, const char *entry, int64_t now_ms, size_t *moved)
{
    struct lm_shared *sh = ((struct lm_store *)s)->sh;
    *moved = 0;
    if (sink_usable(sh, sink))
        return CW_EINVAL;
    struct retry_job j = { .sink = sink, .entry = entry, .now_ms = now_ms };
    int rc = lm_write(sh, retry_job, &j);
    if (!rc)
        *moved = j.moved;
    return rc;
}

/* ---- tests only ------------------------------------------------------------------------------- */

int lm_test_fault(struct store *s, int fault)
{
    struct lm_out *o = lm_out_of(((struct lm_store *)s)->sh);
    if (fault != STORE_FAULT_NONE && fault != STORE_FAULT_OUTBOX)
        return CW_EINVAL;
    atomic_store(&o->fault, fault);
    return 0;
}
