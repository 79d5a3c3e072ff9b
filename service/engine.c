/* engine.c — decode, group by key, load, apply, compare-and-set, findings.
 *
 * Exactly-once: an event counts for a key only if its id hash is not in the key's dedup set, and
 * the new state and the new hashes are written in one compare-and-set. When another instance
 * committed the same key in between, the CAS fails and this engine reloads and reapplies, so two
 * instances never lose each other's events and a finding is created by exactly one of them (the
 * one whose commit moved the verdict from "no finding" to "finding").
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "render.h"

#define ENG_EVENTS_INITIAL 256
#define ENG_EVENTS_MAX EVB_MAX_EVENTS  /* the order array follows the event buffer's own bound */
#define ENG_READ_BYTES (256u << 10)    /* a streamed input is fed to the decoder in pieces of this size */
#define ENG_NAMED_INITIAL 1024         /* slots of the set of finding ids past the report's list */
#define ENG_RADIX_MIN 256              /* events from which sort_order sorts by radix (below, qsort:
                                        * four passes over 256 counters cost more than it saves) */

struct eng {
    struct store *st;
    struct eng_config cfg;
    /* per-ingest scratch, kept between calls to avoid reallocating */
    struct evbuf evs;          /* decoded events, packed, with their identity hash */
    int ids_private;           /* the store's dedup sets are this process's: evb_push_own's hash */
    struct eng_report *rep;
    size_t *order;             /* room for twice the events: the second half is sort_order's scratch */
    size_t cap_order;
    struct ev_event ev;        /* the event being applied, unpacked */
    uint8_t *rbuf;             /* ENG_READ_BYTES: a streamed input's piece */
    /* Two passes for an input with more events than one chunk: pass 1 checks it whole and keeps
     * at most chunk_bytes of events (overflow set past it); pass 2 (streaming) decodes it again and
     * hands each full chunk to flush. */
    size_t chunk_bytes;
    int overflow, streaming;
    size_t pass1_records;      /* records pass 1 counted in the last input: pass 2 must meet as many */
    /* eng_set_spill: pass 1 hands each full chunk to spill instead of dropping the rest; only for an
     * input decoded into an empty buffer (spill_now), so a chunk holds this input's events alone. */
    int (*spill)(void *ud, struct eng *e);
    void *spill_ud;
    int spill_now;
    int (*flush)(void *ud, struct eng *e);
    void *flush_ud;
    int flush_rc;              /* the flush's error that stopped pass 2 */
    int64_t flush_now_ms;      /* eng_ingest's pass 2: the wall clock of its applies */
    struct det_key key;        /* the working state: det_key is large, keep it off the stack */
    /* The working key's verdict before its new events, judged in place (key_apply), and of that
     * state only what det_notable reads: the addresses this verdict holds outside, at their
     * indices, copied when it is a finding (nothing else of `old` is ever set or read). A copy of
     * the whole state (33 KB) per key, judged after the apply, was a tenth of the engine's
     * instructions; a repair judged the state a third time. */
    struct det_verdict vo;
    size_t ids_before;         /* report ids of earlier applies into the same report (add_finding_id) */
    /* keep_failed: per pending event (evbuf index), what earlier attempts on these kept events did
     * (EV_OURS, EV_SAFE), so a retry that meets them in the store's dedup set counts them as this
     * engine's own, not as duplicates, and a caller that gives up knows which are not lost
     * (eng_pending_committed: n_safe). One flag per event, not a count: a failover that lost an
     * attempt's writes makes the retry commit the same events again, counted once all the same. */
    uint8_t *evflags;
    size_t cap_evflags, n_safe;
    int kept;                  /* the pending events are a failed attempt's, kept */
    /* Hashes of the finding ids counted into the report past its list (ENG_FINDINGS_MAX): a later
     * chunk's update of one of them must not count it again. Open addressing, 0 = empty. */
    uint64_t *named;
    size_t cap_named, n_named;
    struct det_key old;
    uint8_t blob[DET_ENCODED_MAX];
};

struct eng *eng_new(struct store *st, const struct eng_config *cfg)
{
    struct eng *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->st = st;
    if (cfg)
        e->cfg = *cfg;
    if (!e->cfg.late_margin_s)
        e->cfg.late_margin_s = DET_LATE_MARGIN;
    e->chunk_bytes = e->cfg.chunk_bytes ? e->cfg.chunk_bytes : ENG_CHUNK_BYTES;
    e->ids_private = store_ids_private(st);
    evb_init(&e->evs);
    return e;
}

void eng_free(struct eng *e)
{
    if (!e)
        return;
    evb_free(&e->evs);
    free(e->order);
    free(e->rbuf);
    free(e->named);
    free(e->evflags);
    free(e);
}

void eng_set_net(struct eng *e, const struct nr_table *net)
{
    e->cfg.det.net = net;
}

void eng_finding_id(const char *akid, char *out, size_t size)
{
    /* One finding per key, so the key names it: stable across instances and retries. */
    snprintf(out, size, "cwf-%s", akid);
}


/* ---- decoding into the event list ----------------------------------------------------------- */

static int on_event(void *ud, size_t index, const struct ev_event *ev)
{
    (void)index;
    struct eng *e = ud;
    if (ev->kind == EV_OTHER) {
        if (!e->streaming)
            e->rep->ignored++;  /* a valid record the detector has no use for: never "accepted" */
        return 0;
    }
    if (!e->streaming && (e->overflow || evb_bytes(&e->evs) >= e->chunk_bytes)) {
        if (!e->overflow && e->spill_now && e->spill(e->spill_ud, e) == 0) {
            evb_clear(&e->evs);  /* the chunk is the spill's now: pass 1 goes on collecting */
        } else {
            e->overflow = 1;  /* pass 1 goes on checking and counting; pass 2 will bring the events */
            return 0;
        }
    }
    if (e->ids_private ? evb_push_own(&e->evs, ev) : evb_push(&e->evs, ev, det_event_hash(ev)))
        return 1;  /* the decoder stops (CW_EABORT): reported as out of memory */
    if (e->streaming && evb_bytes(&e->evs) >= e->chunk_bytes && (e->flush_rc = e->flush(e->flush_ud, e)))
        return 1;  /* CW_EABORT, e->flush_rc says why */
    return 0;
}

static int on_skip(void *ud, size_t index, const char *reason)
{
    struct eng *e = ud;
    struct eng_report *r = e->rep;
    if (e->streaming)
        return 0;  /* pass 1 reported it */
    if (r->n_skips < ENG_SKIPS_MAX) {
        r->skips[r->n_skips].index = index;
        snprintf(r->skips[r->n_skips].reason, sizeof r->skips[0].reason, "%s", reason);
        r->n_skips++;
    }
    return 0;
}

/* Events in (key hash, key, event id, identity) order: a key's events together, and a repeat of one
 * event (same id and content: the identity hash, det_event_hash or evb_push_own's) next to it. Two
 * records with one id and different content are two events (a forgery reusing a real id must not
 * shadow the real record), and they compare by their identity, not by arrival. qsort_r is a GNU
 * extension with the context last; used so threads never share sort state. */
static int cmp_order_r(const void *a, const void *b, void *ctx)
{
    const struct evbuf *evs = ctx;
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    /* keys need grouping, not alphabetical order: their hash first spares most string compares */
    uint32_t ka = evb_khash(evs, ia), kb = evb_khash(evs, ib);
    if (ka != kb)
        return ka < kb ? -1 : 1;
    int c = strcmp(evb_akid(evs, ia), evb_akid(evs, ib));
    if (c)
        return c;
    if ((c = strcmp(evb_id(evs, ia), evb_id(evs, ib))))
        return c;
    uint64_t ha = evb_hash(evs, ia), hb = evb_hash(evs, ib);
    return ha < hb ? -1 : ha > hb;
}

/* ---- per-key work --------------------------------------------------------------------------- */

struct keywork {
    size_t first, count;         /* range in e->order: this key's distinct events */
    uint64_t *hashes;
    uint8_t *seen;
    size_t dups;                 /* events the store had already applied (not this engine's own) */
    int done;
};

/* evflags bits (struct eng) */
#define EV_OURS 1u  /* committed by an earlier attempt of this engine on the kept events */
#define EV_SAFE 2u  /* ... and its key's finding writes succeeded after: not lost if the caller gives up */

static uint64_t *named_slot(uint64_t *slots, size_t cap, uint64_t h)
{
    size_t i = (size_t)h & (cap - 1);
    while (slots[i] && slots[i] != h)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

/* Adds id to the set of ids counted past the report's list. 1 when it was there already, 0 when
 * added or when the set cannot grow (out of memory: counted, at worst once too many). */
static int named_seen(struct eng *e, const char *id)
{
    uint64_t h = det_id_hash(id);  /* never 0: 0 marks a free slot */
    if (2 * (e->n_named + 1) > e->cap_named) {
        size_t cap = e->cap_named ? 2 * e->cap_named : ENG_NAMED_INITIAL;
        uint64_t *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return 0;
        for (size_t i = 0; i < e->cap_named; i++)
            if (e->named[i])
                *named_slot(slots, cap, e->named[i]) = e->named[i];
        free(e->named);
        e->named = slots;
        e->cap_named = cap;
    }
    uint64_t *slot = named_slot(e->named, e->cap_named, h);
    if (*slot)
        return 1;
    *slot = h;
    e->n_named++;
    return 0;
}

/* One apply_all names each key once, so an id needs comparing only with those of earlier applies
 * into the same report (the chunks of a large input): ids [0, before), and past the list the set
 * of those counted without a name. */
static void add_finding_id(struct eng *e, struct eng_report *r, const char *id, size_t before)
{
    for (size_t i = 0; i < before; i++)
        if (strcmp(r->ids[i], id) == 0)
            return;
    if (r->n_ids < ENG_FINDINGS_MAX)
        snprintf(r->ids[r->n_ids++], sizeof r->ids[0], "%s", id);
    else if (named_seen(e, id))
        return;
    r->findings++;
}

/* Where a finding write's strings live until the store call: the working key is reused for the
 * next key of the round, so nothing may point into it (a multi-key ingest once filed every
 * finding under the last key's account and function). */
struct finding_bufs {
    char id[STORE_ID_MAX];
    char account[EV_ACCOUNT_MAX];
    char function[EV_FUNCTION_MAX];
    char *doc;
};

/* The finding write of the working key (e->key) judged as v, at key state `version`. */
static int finding_put_of(struct eng *e, const struct det_verdict *v, uint64_t version, int64_t now_ms,
                          struct store_finding_put *p, struct finding_bufs *b)
{
    eng_finding_id(e->key.akid, b->id, sizeof b->id);
    if (!(b->doc = rnd_evidence(&e->key, v, b->id)))
        return CW_ENOMEM;
    snprintf(b->account, sizeof b->account, "%s", e->key.account);
    /* the function filter (GET /v1/findings?function=) names Lambda functions only */
    const char *fn = v->kind == WL_LAMBDA ? e->key.workload_id : "";
    size_t fn_len = strnlen(fn, sizeof b->function - 1);  /* a function name is at most 64 bytes; a */
    if (fn[fn_len])                                        /* forged longer one is cut on a character */
        fn_len = cw_utf8_cut(fn, fn_len);
    snprintf(b->function, sizeof b->function, "%.*s", (int)fn_len, fn);
    memset(p, 0, sizeof *p);
    p->id = b->id;
    p->evidence_json = b->doc;
    p->severity = det_severity_name(v->severity);
    p->account = b->account;
    p->function = b->function;
    p->workload = wl_kind_name(v->kind);  /* a static name: the list filter ?workload= */
    p->version = version;
    p->outside_count = v->outside_count;
    p->now_ms = now_ms;
    return 0;
}


/* The version a commit writes. A key made anew (absent, or expired) starts from the wall clock,
 * not from 1: its finding may outlive the old state (findings are kept 90 days, key state hours),
 * and the finding's evidence is only replaced by evidence of a newer state version. Starting at
 * 1 again left the finding stale for good while the key view moved on. Shifted by 11 bits: a
 * re-creation comes at least an hour after the old state's last commit (its pending window),
 * which leaves room for 7 billion commits, and versions stay below 2^53 until 2109, so Redis's
 * Lua (doubles) compares them exactly. */
#define ENG_VERSION_EPOCH_SHIFT 11
static uint64_t next_version(uint64_t version, int64_t now_ms)
{
    if (version)
        return version + 1;
    uint64_t epoch = now_ms > 0 ? (uint64_t)now_ms << ENG_VERSION_EPOCH_SHIFT : 1;
    return epoch;
}

/* When a committed state expires. Event times are the sender's: a year-9999 eventTime must not
 * keep state for millennia. No credentials live longer than DET_CRED_LIFETIME, so from arrival
 * the state needs at most that plus the late margin; a replayed archive's past times get the
 * floor. */
static int64_t state_expiry(const struct eng *e, int64_t now_ms)
{
    int64_t exp_ms = det_expires_at(&e->key) * 1000;
    int64_t floor_ms = now_ms + e->cfg.late_margin_s * 1000;
    int64_t ceiling_ms = now_ms + ((int64_t)DET_CRED_LIFETIME + e->cfg.late_margin_s) * 1000;
    int64_t at = exp_ms > floor_ms ? exp_ms : floor_ms;
    return at > ceiling_ms ? ceiling_ms : at;
}

/* *slot (owned, may be NULL) becomes a copy of the first len bytes of src, len from det_encode.
 * On failure *slot is unchanged. */
static int keep_blob(uint8_t **slot, const uint8_t *src, int len)
{
    uint8_t *b = len > 0 ? realloc(*slot, (size_t)len) : NULL;
    if (!b)
        return CW_ENOMEM;
    memcpy(b, src, (size_t)len);
    *slot = b;
    return 0;
}

static const char *key_akid(const struct eng *e, const struct keywork *w)
{
    return evb_akid(&e->evs, e->order[w->first]);
}

/* ---- one round: load, apply, compare-and-set, findings -------------------------------------- */

/* A key of the round with new events, by commit index. */
struct round_commit {
    size_t kw;                  /* its index in the round's keywork */
    uint8_t *blob;              /* the commit's blob (owned) */
    struct finding_bufs buf;    /* the strings of its finding write */
};

/* A round's scratch. Every array has room for all n keys of the round (n >= commits + repairs,
 * so puts can also hold every finding write sent). */
struct round {
    struct eng *e;
    struct keywork *kw;
    size_t n;
    int64_t now_ms;
    struct store_load *loads;        /* [nl] the keys not done yet */
    size_t *load_kw;                 /* [nl] their index in kw */
    struct store_commit *commits;    /* [nc] the keys with new events */
    struct round_commit *cs;         /* [nc] */
    struct store_finding_put *puts;  /* [nc] their finding writes (id NULL: none); then those sent */
    struct store_finding_put *rputs; /* [nr] repairs of findings of keys with nothing new */
    struct finding_bufs *rbufs;      /* [nr] */
    size_t nl, nc, nr;
};

static int round_init(struct round *r, struct eng *e, struct keywork *kw, size_t n, int64_t now_ms)
{
    memset(r, 0, sizeof *r);
    r->e = e;
    r->kw = kw;
    r->n = n;
    r->now_ms = now_ms;
    r->loads = calloc(n, sizeof *r->loads);
    r->load_kw = calloc(n, sizeof *r->load_kw);
    r->commits = calloc(n, sizeof *r->commits);
    r->cs = calloc(n, sizeof *r->cs);
    r->puts = calloc(n, sizeof *r->puts);
    r->rputs = calloc(n, sizeof *r->rputs);
    r->rbufs = calloc(n, sizeof *r->rbufs);
    if (!r->loads || !r->load_kw || !r->commits || !r->cs || !r->puts || !r->rputs || !r->rbufs)
        return CW_ENOMEM;
    return 0;
}

static void round_free(struct round *r)
{
    for (size_t j = 0; r->cs && j < r->n; j++) {
        free(r->cs[j].blob);
        free(r->cs[j].buf.doc);
    }
    for (size_t j = 0; r->rbufs && j < r->n; j++)
        free(r->rbufs[j].doc);
    free(r->loads);
    free(r->load_kw);
    free(r->commits);
    free(r->cs);
    free(r->puts);
    free(r->rputs);
    free(r->rbufs);
}

/* Phase 1: the state, version and dedup flags of every key not done yet, in one store call. */
static int round_load(struct round *r)
{
    const struct eng *e = r->e;
    for (size_t i = 0; i < r->n; i++) {
        struct keywork *w = &r->kw[i];
        if (w->done)
            continue;
        struct store_load *l = &r->loads[r->nl];
        l->akid = key_akid(e, w);
        l->hashes = w->hashes;
        l->n_hashes = w->count;
        l->seen = w->seen;
        r->load_kw[r->nl++] = i;
    }
    return store_load(e->st, r->loads, r->nl) ? CW_EUNAVAIL : 0;
}

/* The loaded state in e->key, judged as it was (e->vo, e->old), with the key's events the store
 * has not seen applied; their hashes move to the front of w->hashes. Returns how many were new.
 * e->vo's pointers (first_use, ...) point into e->key: valid only when none was new. */
static size_t key_apply(struct eng *e, struct keywork *w, const struct store_load *l)
{
    /* a blob this version cannot read: start over rather than fail the key forever */
    if (!l->version || det_decode(&e->key, l->blob, l->blob_len))
        det_key_init(&e->key, key_akid(e, w));
    det_judge(&e->key, &e->cfg.det, &e->vo);
    if (e->vo.finding)  /* det_notable compares only with a finding's outside addresses */
        for (size_t i = 0; i < e->vo.n_outside; i++)
            e->old.cands[e->vo.outside[i]] = e->key.cands[e->vo.outside[i]];
    size_t fresh = 0, dups = 0;
    for (size_t k = 0; k < w->count; k++) {
        if (w->seen[k]) {
            dups += !(e->evflags && e->evflags[e->order[w->first + k]] & EV_OURS);
            continue;
        }
        evb_get(&e->evs, e->order[w->first + k], &e->ev);
        det_apply_ctx(&e->key, &e->ev, &e->cfg.det);
        w->hashes[fresh++] = w->hashes[k];
    }
    w->dups = dups;
    return fresh;
}

/* A key with nothing new: if its state says "finding", make sure the finding exists. An earlier
 * request may have committed the key and then failed to write the finding (503), and its retry —
 * this request — is all duplicates. ensure writes only when the finding is absent, so a plain
 * duplicate changes nothing; it also queues a finding event the failed request could not queue
 * (the store's rv > qd), without a new revision. */
static int key_repair(struct round *r, const struct store_load *l)
{
    struct eng *e = r->e;
    const struct det_verdict *vc = &e->vo;  /* nothing was applied: the state key_apply judged */
    if (!vc->finding || r->nr >= r->n)
        return 0;
    if (finding_put_of(e, vc, l->version, r->now_ms, &r->rputs[r->nr], &r->rbufs[r->nr]))
        return CW_ENOMEM;
    /* A stored finding older than the key's state lost the write of a commit: the store applies
     * this one instead and reports it (what that commit found is no longer known, so it is reported
     * as a raise: an extra event at worst, never a missing one). */
    r->rputs[r->nr].notify = STORE_NOTIFY_RAISED;
    r->rputs[r->nr++].ensure = 1;
    return 0;
}

/* A key with `fresh` new events: its compare-and-set and, when it judges a finding, the finding
 * write, at commit index nc. */
static int key_commit(struct round *r, size_t j, size_t fresh)
{
    struct eng *e = r->e;
    struct keywork *w = &r->kw[r->load_kw[j]];
    struct round_commit *slot = &r->cs[r->nc];
    /* the verdict after, beside the one before (key_apply), for the finding write below; the new
     * one's severity is remembered in the state, so no later evidence can lower it */
    const struct det_verdict *vo = &e->vo;
    struct det_verdict vn;
    det_judge(&e->key, &e->cfg.det, &vn);
    if (!e->cfg.judge_whole)
        det_remember(&e->key, &vn);
    int len = det_encode(&e->key, e->blob, sizeof e->blob);
    if (keep_blob(&slot->blob, e->blob, len))
        return CW_ENOMEM;
    struct store_commit *c = &r->commits[r->nc];
    c->akid = key_akid(e, w);
    c->version = r->loads[j].version;
    c->new_version = next_version(c->version, r->now_ms);
    c->blob = slot->blob;
    c->blob_len = (size_t)len;
    c->hashes = w->hashes;
    c->n_hashes = fresh;
    c->keep = vn.finding ? STORE_KEEP_FINDING : vn.workload ? STORE_KEEP_WORKLOAD : STORE_KEEP_PENDING;
    c->expire_at_ms = state_expiry(e, r->now_ms);
    /* A finding is never retracted by evidence (any record may be forged by a holder of an
     * ingest token): once raised it stays, explained or not, with its status. */
    if (vn.finding) {
        if (finding_put_of(e, &vn, c->new_version, r->now_ms, &r->puts[r->nc], &slot->buf))
            return CW_ENOMEM;
        r->puts[r->nc].new_outside = vn.outside_count > vo->outside_count;
        r->puts[r->nc].notify = !vo->finding || vn.severity > vo->severity ? STORE_NOTIFY_RAISED
                                : det_notable(&e->old, vo, &e->key, &vn) ? STORE_NOTIFY_GREW : STORE_NOTIFY_NONE;
    }
    slot->kw = r->load_kw[j];
    r->nc++;
    return 0;
}

/* Phase 2: every loaded key's new events applied, judged, and made a commit or a repair. A key
 * with nothing new is done here; its duplicates count now. */
static int round_apply(struct round *r)
{
    for (size_t j = 0; j < r->nl; j++) {
        struct keywork *w = &r->kw[r->load_kw[j]];
        size_t fresh = key_apply(r->e, w, &r->loads[j]);
        int rc;
        if (!fresh) {
            w->done = 1;
            r->e->rep->duplicates += w->dups;
            rc = key_repair(r, &r->loads[j]);
        } else {
            rc = key_commit(r, j, fresh);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* Commit j made its key anew and judges a finding that already exists (kept 90 days, longer
 * than key state) with severity `floor`: that is the floor of the new state's, or a replayed
 * archive would lower it. The commit's blob and finding write are redone with the floor. */
static int commit_floor(struct round *r, size_t j, int floor)
{
    struct eng *e = r->e;
    struct store_commit *c = &r->commits[j];
    struct store_finding_put *p = &r->puts[j];
    if (floor <= 0 || det_decode(&e->key, c->blob, c->blob_len))
        return 0;
    e->key.peak_severity = (uint8_t)(floor > e->key.peak_severity ? floor : e->key.peak_severity);
    struct det_verdict vf;
    det_judge(&e->key, &e->cfg.det, &vf);
    int len = det_encode(&e->key, e->blob, sizeof e->blob);
    if (keep_blob(&r->cs[j].blob, e->blob, len))
        return CW_ENOMEM;
    c->blob = r->cs[j].blob;
    c->blob_len = (size_t)len;
    int new_outside = p->new_outside, notify = p->notify;
    free(r->cs[j].buf.doc);
    r->cs[j].buf.doc = NULL;
    if (finding_put_of(e, &vf, c->new_version, r->now_ms, p, &r->cs[j].buf))
        return CW_ENOMEM;
    p->new_outside = new_outside;
    p->notify = notify;
    return 0;
}

/* The floors of commits js[0..m) from their existing findings, read in one store call (one round
 * trip on Redis: one read per new key was a tenth of Redis's time per record in bench_serve). */
static int floors_apply(struct round *r, const size_t *js, const char **ids, size_t m)
{
    struct store_finding *old = calloc(m, sizeof *old);
    int *rcs = calloc(m, sizeof *rcs);
    int rc = old && rcs ? 0 : CW_ENOMEM;
    if (!rc && store_finding_get_many(r->e->st, ids, m, old, rcs))
        rc = CW_EUNAVAIL;
    else if (!rc)
        for (size_t k = 0; k < m; k++) {
            int floor = rcs[k] ? 0 : rnd_severity_of(old[k].evidence_json);
            if (!rcs[k])
                store_finding_free(&old[k]);
            if (!rc)
                rc = commit_floor(r, js[k], floor);
        }
    free(old);
    free(rcs);
    return rc;
}

/* Phase 3: severity floors. Only new keys that judge a finding pay this read (the loaded blobs
 * are not needed any more). */
static int round_floor(struct round *r)
{
    size_t m = 0;
    for (size_t j = 0; j < r->nc && !r->e->cfg.judge_whole; j++)
        m += !r->commits[j].version && r->puts[j].id;
    if (!m)
        return 0;  /* most rounds: nothing to read, nothing allocated */
    size_t *js = malloc(m * sizeof *js);
    const char **ids = malloc(m * sizeof *ids);
    int rc = js && ids ? 0 : CW_ENOMEM;
    for (size_t j = 0, k = 0; j < r->nc && !rc; j++) {
        if (r->commits[j].version || !r->puts[j].id)
            continue;
        js[k] = j;
        ids[k++] = r->puts[j].id;
    }
    if (!rc)
        rc = floors_apply(r, js, ids, m);
    free(js);
    free(ids);
    return rc;
}

/* keep_failed: the flag set on the key's events this engine committed (EV_OURS: its new ones,
 * now in the store; EV_SAFE: those, once their key's finding writes succeeded). */
static void mark_events(struct eng *e, const struct keywork *w, uint8_t flag)
{
    for (size_t k = 0; e->evflags && k < w->count; k++) {
        uint8_t *f = &e->evflags[e->order[w->first + k]];
        if (flag == EV_OURS ? !w->seen[k] : (*f & EV_OURS) && !(*f & EV_SAFE)) {
            *f |= flag;
            e->n_safe += flag == EV_SAFE;
        }
    }
}

/* Phase 5, after the compare-and-set: the keys committed are done (one that lost the race is
 * reloaded next attempt; its dups were not counted), and their finding writes and the repairs go
 * to the store in one call. */
static int round_findings(struct round *r)
{
    struct eng_report *rep = r->e->rep;
    size_t np = 0;
    for (size_t j = 0; j < r->nc; j++) {
        if (!r->commits[j].ok)
            continue;
        struct keywork *w = &r->kw[r->cs[j].kw];
        w->done = 1;
        rep->duplicates += w->dups;
        mark_events(r->e, w, EV_OURS);
        if (r->puts[j].id)
            r->puts[np++] = r->puts[j];
    }
    for (size_t j = 0; j < r->nr; j++)  /* puts has room: n >= commits + repairs */
        r->puts[np++] = r->rputs[j];
    if (np && store_finding_put(r->e->st, r->puts, np))
        return CW_EUNAVAIL;
    for (size_t j = 0; j < r->nl; j++)  /* every key done this round has its findings written */
        if (r->kw[r->load_kw[j]].done)
            mark_events(r->e, &r->kw[r->load_kw[j]], EV_SAFE);
    for (size_t j = 0; j < np; j++) {
        if (!r->puts[j].ensure || r->puts[j].created) {
            add_finding_id(r->e, rep, r->puts[j].id, r->e->ids_before);
            if (r->e->cfg.on_finding)
                r->e->cfg.on_finding(r->e->cfg.on_finding_ud, r->puts[j].id, r->puts[j].created);
        }
        if (r->puts[j].created)
            rep->created++;
    }
    return 0;
}

/* One round: load the keys, apply their new events, CAS them; then write findings of the
 * keys committed. Keys that lost a race stay !done for the next attempt. Each phase is one store
 * call (round_floor one per new key it reads), in this order; a store failure is CW_EUNAVAIL at
 * once, and a key committed before a failed finding write is repaired by the sender's retry. */
static int round_keys(struct eng *e, struct keywork *kw, size_t n, int64_t now_ms)
{
    struct round r;
    int rc = round_init(&r, e, kw, n, now_ms);
    if (rc)
        goto out;
    if ((rc = round_load(&r)))
        goto out;
    if ((rc = round_apply(&r)))
        goto out;
    if ((rc = round_floor(&r)))
        goto out;
    if (store_commit(e->st, r.commits, r.nc)) {  /* phase 4 */
        rc = CW_EUNAVAIL;
        goto out;
    }
    rc = round_findings(&r);
out:
    round_free(&r);
    return rc;
}

/* ---- one apply: order, key ranges, rounds of ENG_KEYS_PER_ROUND keys ------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

_Static_assert(sizeof(size_t) == sizeof(uint64_t) && EVB_MAX_EVENTS <= UINT32_MAX,
               "e->order holds (key hash << 32 | index) while it is sorted");

/* Two neighbours in e->order are one event (cmp_order_r's equality): the 64-bit identity first,
 * which differs for nearly every pair, before any string. */
static int same_event(const struct evbuf *evs, size_t a, size_t b)
{
    return evb_hash(evs, a) == evb_hash(evs, b) && evb_khash(evs, a) == evb_khash(evs, b) &&
           strcmp(evb_akid(evs, a), evb_akid(evs, b)) == 0 && strcmp(evb_id(evs, a), evb_id(evs, b)) == 0;
}

/* Stable LSD radix sort of v[0..n) by bits 32..63 (the key hash), a byte a pass, through tmp[n].
 * The low halves (the indexes) rise on entry, and a stable pass keeps them rising among equal
 * hashes, so the result is v sorted as whole 64-bit values: what qsort by cmp_u64 gives, in four
 * linear passes instead of ~log2(n) compares a value through a function pointer. */
static void radix_high32(size_t *v, size_t *tmp, size_t n)
{
    size_t *src = v, *dst = tmp;
    for (unsigned shift = 32; shift < 64; shift += 8) {
        size_t at[256] = { 0 };
        for (size_t i = 0; i < n; i++)
            at[src[i] >> shift & 0xff]++;
        for (size_t b = 0, sum = 0; b < 256; b++) {
            size_t c = at[b];
            at[b] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[at[src[i] >> shift & 0xff]++] = src[i];
        size_t *t = src;
        src = dst;
        dst = t;
    }  /* an even number of passes: the sorted values are back in v */
}

/* e->order in cmp_order_r's order, in two steps. The events sit in an arena of megabytes, so a
 * comparator reading two of them per comparison missed the cache on most of the n log n
 * comparisons (a tenth of a scan's time went to sorting). First the integers (key hash << 32 |
 * index) are sorted, touching no event; then each run of one key hash (nearly always one key's
 * few events) is sorted by cmp_order_r. The result is the same order as one qsort_r by cmp_order_r. */
static void sort_order(struct eng *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        e->order[i] = (uint64_t)evb_khash(&e->evs, i) << 32 | i;
    if (n >= ENG_RADIX_MIN)
        radix_high32(e->order, e->order + n, n);  /* order_events gave e->order room for 2n */
    else
        qsort(e->order, n, sizeof *e->order, cmp_u64);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && e->order[j] >> 32 == e->order[i] >> 32)
            j++;
        for (size_t k = i; k < j; k++)
            e->order[k] &= UINT32_MAX;
        if (j - i > 1)
            qsort_r(e->order + i, j - i, sizeof *e->order, cmp_order_r, &e->evs);
        i = j;
    }
}

/* e->order: the events in (key, event id, identity) order, repeats of one event inside this
 * input dropped (they are duplicates too). *n_unique: the events left. */
static int order_events(struct eng *e, size_t *n_unique)
{
    /* evs already holds its events, so only memory can fail (CW_ENOMEM) */
    size_t n = evb_count(&e->evs);
    void *order = e->order;
    int rc = cw_grow(&order, &e->cap_order, 2 * n, sizeof *e->order, ENG_EVENTS_INITIAL, 2 * ENG_EVENTS_MAX);
    e->order = order;
    if (rc)
        return rc;
    sort_order(e, n);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w && same_event(&e->evs, e->order[w - 1], e->order[i])) {
            e->rep->duplicates++;
            continue;
        }
        e->order[w++] = e->order[i];
    }
    *n_unique = w;
    return 0;
}

/* The keys of one apply. Each key's hashes and seen are its slice of the arrays here, at the
 * key's range in e->order. */
struct keyset {
    struct keywork *kw;
    size_t n;
    uint64_t *hashes;
    uint8_t *seen;
};

static int starts_key(const struct eng *e, size_t i)
{
    if (i == 0)
        return 1;
    size_t a = e->order[i], b = e->order[i - 1];
    return evb_khash(&e->evs, a) != evb_khash(&e->evs, b) || strcmp(evb_akid(&e->evs, a), evb_akid(&e->evs, b)) != 0;
}

static int keyset_build(struct eng *e, size_t n_unique, struct keyset *ks)
{
    memset(ks, 0, sizeof *ks);
    for (size_t i = 0; i < n_unique; i++)
        ks->n += (size_t)starts_key(e, i);
    e->rep->keys += ks->n;  /* summed over the chunks of a large input: a key in two chunks counts twice */
    ks->kw = calloc(ks->n, sizeof *ks->kw);
    ks->hashes = malloc(n_unique * sizeof *ks->hashes);
    ks->seen = malloc(n_unique);
    if (!ks->kw || !ks->hashes || !ks->seen)
        return CW_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n_unique; i++) {
        if (starts_key(e, i)) {
            ks->kw[k].first = i;
            ks->kw[k].hashes = ks->hashes + i;
            ks->kw[k].seen = ks->seen + i;
            k++;
        }
        ks->kw[k - 1].count++;
        ks->hashes[i] = evb_hash(&e->evs, e->order[i]);
    }
    return 0;
}

static void keyset_free(struct keyset *ks)
{
    free(ks->kw);
    free(ks->hashes);
    free(ks->seen);
}

/* The n keys at kw: rounds until every one is committed, or CW_EUNAVAIL when contention outlasts
 * ENG_CAS_RETRIES (the sender retries). */
static int apply_keys(struct eng *e, struct keywork *kw, size_t n, int64_t now_ms)
{
    int rc = 0;
    for (int attempt = 0; attempt < ENG_CAS_RETRIES && !rc; attempt++) {
        size_t pending = 0;
        for (size_t i = 0; i < n; i++) {
            if (kw[i].done)
                continue;
            pending++;
            /* a retry reloads the dedup flags for the full set of this key's events */
            for (size_t j = 0; j < kw[i].count; j++)
                kw[i].hashes[j] = evb_hash(&e->evs, e->order[kw[i].first + j]);
        }
        if (!pending)
            break;
        rc = round_keys(e, kw, n, now_ms);
    }
    for (size_t i = 0; i < n && !rc; i++)
        if (!kw[i].done)
            rc = CW_EUNAVAIL;
    return rc;
}

static int apply_all(struct eng *e, int64_t now_ms)
{
    if (evb_count(&e->evs) == 0)
        return 0;
    e->ids_before = e->rep->n_ids;
    if (!e->rep->findings && e->n_named) {  /* a new report: no id of it is counted yet */
        memset(e->named, 0, e->cap_named * sizeof *e->named);
        e->n_named = 0;
    }
    size_t n_unique;
    int rc = order_events(e, &n_unique);
    if (rc)
        return rc;
    struct keyset ks;
    rc = keyset_build(e, n_unique, &ks);
    for (size_t base = 0; base < ks.n && !rc; base += ENG_KEYS_PER_ROUND) {
        size_t n = ks.n - base < ENG_KEYS_PER_ROUND ? ks.n - base : ENG_KEYS_PER_ROUND;
        rc = apply_keys(e, ks.kw + base, n, now_ms);
    }
    keyset_free(&ks);
    return rc;
}

/* ---- decoding: one pass, or two for an input larger than a chunk ------------------------------ */

/* The input through the decoder (a buffer in one piece, a stream in ENG_READ_BYTES pieces). The
 * decoder's status; *rd_err is set when the stream could not be read. */
static int run_decoder(struct eng *e, const struct eng_input *in, struct dec_stats *ds, char *msg, size_t msz,
                       int *rd_err)
{
    struct dec_sink sink = { on_event, on_skip, e };
    *rd_err = 0;
    if (in->buf || !in->read)
        return dec_buffer(in->buf, in->len, &sink, &e->cfg.limits, ds, msg, msz);
    if (!e->rbuf && !(e->rbuf = malloc(ENG_READ_BYTES))) {
        snprintf(msg, msz, "out of memory");
        return CW_ENOMEM;
    }
    struct dec *d = dec_new(&sink, &e->cfg.limits);
    if (!d) {
        snprintf(msg, msz, "out of memory");
        return CW_ENOMEM;
    }
    int rc = 0;
    for (;;) {
        size_t got = 0;
        if ((*rd_err = in->read(in->ud, e->rbuf, ENG_READ_BYTES, &got)) != 0 || got == 0)
            break;
        if ((rc = dec_feed(d, e->rbuf, got)) != 0)
            break;
    }
    if (!rc && !*rd_err)
        rc = dec_finish(d);
    *ds = *dec_stats(d);
    snprintf(msg, msz, "%s", rc ? dec_message(d) : *rd_err ? "cannot read the input" : "");
    dec_free(d);
    return *rd_err && !rc ? CW_EIO : rc;
}

int eng_decode_in(struct eng *e, const struct eng_input *in, struct eng_report *rep)
{
    memset(rep, 0, offsetof(struct eng_report, skips));
    rep->n_ids = 0;
    rep->findings = rep->created = 0;
    rep->message[0] = 0;
    e->rep = rep;
    size_t before = evb_count(&e->evs);
    int overflow_before = e->overflow, rd_err;
    struct dec_stats ds;
    e->spill_now = e->spill && before == 0 && !e->overflow;
    int drc = run_decoder(e, in, &ds, rep->message, sizeof rep->message, &rd_err);
    e->spill_now = 0;
    rep->records = ds.records;
    rep->skipped = ds.skipped;
    e->pass1_records = ds.records;
    if (!drc)
        return 0;
    /* an input refused as a whole contributes nothing, not even the records before the fault */
    evb_truncate(&e->evs, before);
    e->overflow = overflow_before;
    switch (drc) {
    case CW_ETOOBIG:
        return CW_ETOOBIG;
    case CW_EIO:
        return CW_EIO;
    case CW_ENOMEM:
    case CW_EABORT:
        snprintf(rep->message, sizeof rep->message, "out of memory");
        return CW_ENOMEM;
    default:
        return CW_EINPUT;
    }
}

int eng_decode(struct eng *e, const uint8_t *buf, size_t len, struct eng_report *rep)
{
    struct eng_input in = { .buf = buf, .len = len };
    return eng_decode_in(e, &in, rep);
}

int eng_overflowed(const struct eng *e)
{
    return e->overflow;
}

void eng_set_spill(struct eng *e, int (*spill)(void *ud, struct eng *e), void *ud)
{
    e->spill = spill;
    e->spill_ud = ud;
}

void eng_stream_begin(struct eng *e, int (*flush)(void *ud, struct eng *e), void *ud)
{
    evb_clear(&e->evs);
    e->overflow = 0;
    e->streaming = 1;
    e->flush = flush;
    e->flush_ud = ud;
    e->flush_rc = 0;
}

/* What a pass-2 decoder status means: pass 1 found the input valid, so a failure now is the flush's
 * (the store's), memory, or the input changed under us (a file rewritten during the scan). */
static int stream_status(const struct eng *e, int rc)
{
    if (rc == CW_EABORT)
        return e->flush_rc ? e->flush_rc : CW_ENOMEM;
    if (rc == CW_ENOMEM || rc == CW_EIO)
        return rc;
    return rc ? CW_EINPUT : 0;
}

/* eng_stream_feed, with the records the input held. */
static int stream_feed(struct eng *e, const struct eng_input *in, size_t *records)
{
    struct dec_stats ds = {0};
    char msg[DEC_MSG_MAX];
    int rd_err;
    int rc = stream_status(e, run_decoder(e, in, &ds, msg, sizeof msg, &rd_err));
    *records = ds.records;
    return rc;
}

int eng_stream_feed(struct eng *e, const struct eng_input *in)
{
    size_t records;
    return stream_feed(e, in, &records);
}

int eng_stream_end(struct eng *e)
{
    int rc = evb_count(&e->evs) ? e->flush(e->flush_ud, e) : 0;  /* the last, partial chunk */
    e->streaming = 0;
    return rc;
}

int eng_redecode_in(struct eng *e, const struct eng_input *in, int (*flush)(void *ud, struct eng *e), void *ud)
{
    if (!in->buf && in->read && (!in->rewind || in->rewind(in->ud)))
        return CW_EIO;
    size_t records;
    eng_stream_begin(e, flush, ud);
    int rc = stream_feed(e, in, &records);
    int erc = eng_stream_end(e);
    if (rc == CW_EINPUT || (!rc && records != e->pass1_records))
        rc = CW_EIO;  /* it decoded in pass 1 with as many records: it changed (a file rewritten) */
    return rc ? rc : erc;
}

void eng_swap_events(struct eng *e, struct evbuf *b)
{
    struct evbuf t = e->evs;
    e->evs = *b;
    *b = t;
    e->overflow = 0;
}

const struct evbuf *eng_events(const struct eng *e)
{
    return &e->evs;
}

int eng_add(struct eng *e, const struct evbuf *src, size_t i)
{
    return evb_copy(&e->evs, src, i);
}

size_t eng_pending(const struct eng *e)
{
    return evb_count(&e->evs);
}

size_t eng_pending_bytes(const struct eng *e)
{
    return evb_bytes(&e->evs);
}

size_t eng_pending_committed(const struct eng *e)
{
    return e->kept ? e->n_safe : 0;
}

void eng_discard(struct eng *e)
{
    e->kept = 0;
    evb_clear(&e->evs);
    e->overflow = 0;
}

/* ---- applying ------------------------------------------------------------------------------- */

/* The events applied, and the memory of a big batch given back (a worker does not keep a large
 * input's arrays until the next one). */
static void applied(struct eng *e)
{
    size_t keep = e->cfg.keep_bytes ? e->cfg.keep_bytes : ENG_KEEP_BYTES;
    evb_trim(&e->evs, keep);
    e->overflow = 0;
    e->kept = 0;
    if (e->cap_evflags > keep) {
        free(e->evflags);
        e->evflags = NULL;
        e->cap_evflags = 0;
    }
    if (e->cap_named > keep / sizeof *e->named) {
        free(e->named);
        e->named = NULL;
        e->cap_named = e->n_named = 0;
    }
    if (e->cap_order > keep / sizeof *e->order) {
        free(e->order);
        e->order = NULL;
        e->cap_order = 0;
    }
}

static void apply_message(struct eng *e, int rc, struct eng_report *rep)
{
    if (rc == CW_EUNAVAIL) {
        const char *why = store_why(e->st);
        snprintf(rep->message, sizeof rep->message, "the store is unavailable; retry later%s%.200s",
                 why[0] ? ": " : "", why);
    } else if (rc == CW_ENOMEM) {
        snprintf(rep->message, sizeof rep->message, "out of memory");
    }
}

/* keep_failed: flags for the pending events, all clear for a new batch, kept for a retry. */
static int evflags_ready(struct eng *e)
{
    size_t n = evb_count(&e->evs);
    void *p = e->evflags;
    int rc = cw_grow(&p, &e->cap_evflags, n ? n : 1, 1, ENG_EVENTS_INITIAL, ENG_EVENTS_MAX);
    e->evflags = p;
    if (rc)
        return rc;
    if (!e->kept) {  /* kept events are the same ones, at the same indexes: their flags stay */
        memset(e->evflags, 0, n);
        e->n_safe = 0;
    }
    return 0;
}

int eng_apply(struct eng *e, int64_t now_ms, struct eng_report *rep)
{
    rep->duplicates = rep->keys = rep->findings = rep->created = rep->n_ids = 0;
    e->rep = rep;
    int rc = e->cfg.keep_failed ? evflags_ready(e) : 0;
    if (!rc)
        rc = apply_all(e, now_ms);
    if (rc == CW_EUNAVAIL && e->cfg.keep_failed)
        e->kept = 1;  /* for the caller's retry, with what this attempt committed */
    else
        applied(e);  /* applied, or (on a store error) left to the sender's retry */
    apply_message(e, rc, rep);
    return rc;
}

void eng_stream_now(struct eng *e, int64_t now_ms)
{
    e->flush_now_ms = now_ms;
}

/* Pass 2 of an ingest: each chunk applied as it fills, its counts added to the report. */
int eng_flush_apply(void *ud, struct eng *e)
{
    (void)ud;
    int rc = apply_all(e, e->flush_now_ms);
    evb_clear(&e->evs);
    return rc;
}

int eng_ingest(struct eng *e, const uint8_t *buf, size_t len, int64_t now_ms, struct eng_report *rep)
{
    eng_discard(e);
    int rc = eng_decode(e, buf, len, rep);
    if (rc)
        return rc;  /* nothing was stored: the whole input is checked before any store call */
    size_t records = rep->records, skipped = rep->skipped;
    if (!e->overflow) {
        rc = eng_apply(e, now_ms, rep);
    } else {
        /* more events than one chunk: pass 1 found the input valid, pass 2 applies it chunk by chunk */
        rep->duplicates = rep->keys = rep->findings = rep->created = rep->n_ids = 0;
        eng_stream_now(e, now_ms);
        struct eng_input in = { .buf = buf, .len = len };
        rc = eng_redecode_in(e, &in, eng_flush_apply, NULL);
        applied(e);
        apply_message(e, rc, rep);
    }
    size_t ignored = rep->ignored;
    rep->accepted = records - skipped - ignored - rep->duplicates;
    return rc;
}

int eng_key_verdict(struct eng *e, const char *akid, struct det_verdict *v)
{
    struct store_load l = { .akid = akid };
    if (store_load(e->st, &l, 1))
        return CW_EUNAVAIL;
    if (!l.version)
        return CW_ENOTFOUND;
    if (det_decode(&e->key, l.blob, l.blob_len))
        return CW_EUNAVAIL;
    det_judge(&e->key, &e->cfg.det, v);
    return 0;
}

int eng_key_json(struct eng *e, const char *akid, char **json)
{
    struct det_verdict v;
    int rc = eng_key_verdict(e, akid, &v);  /* leaves the state in e->key */
    if (rc)
        return rc;
    char fid[STORE_ID_MAX];
    eng_finding_id(akid, fid, sizeof fid);
    *json = rnd_key_context(&e->key, &v, v.finding ? fid : NULL);
    return *json ? 0 : CW_ENOMEM;
}
