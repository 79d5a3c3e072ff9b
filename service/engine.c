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

struct eng {
    struct store *st;
    struct eng_config cfg;
    /* per-ingest scratch, kept between calls to avoid reallocating */
    struct ev_event *evs;
    size_t n_evs, cap_evs;
    struct eng_report *rep;
    size_t *order;
    uint64_t *ident;           /* det_event_hash of each event, parallel to evs */
    size_t cap_order;
    struct det_key key;        /* working copies: det_key is large, keep it off the stack */
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
    return e;
}

void eng_free(struct eng *e)
{
    if (!e)
        return;
    free(e->evs);
    free(e->order);
    free(e->ident);
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

int eng_akid_valid(const char *akid)
{
    size_t n = strlen(akid);
    if (n < 16 || n >= EV_AKID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((akid[i] >= 'A' && akid[i] <= 'Z') || (akid[i] >= '0' && akid[i] <= '9')))
            return 0;
    return 1;
}

/* ---- decoding into the event list ----------------------------------------------------------- */

static int on_event(void *ud, size_t index, const struct ev_event *ev)
{
    (void)index;
    struct eng *e = ud;
    if (ev->kind == EV_OTHER) {
        e->rep->ignored++;  /* a valid record the detector has no use for: never "accepted" */
        return 0;
    }
    if (e->n_evs == e->cap_evs) {
        size_t cap = e->cap_evs ? e->cap_evs * 2 : ENG_EVENTS_INITIAL;
        struct ev_event *n = realloc(e->evs, cap * sizeof *n);
        if (!n)
            return 1;
        e->evs = n;
        e->cap_evs = cap;
    }
    e->evs[e->n_evs++] = *ev;
    return 0;
}

static int on_skip(void *ud, size_t index, const char *reason)
{
    struct eng *e = ud;
    struct eng_report *r = e->rep;
    if (r->n_skips < ENG_SKIPS_MAX) {
        r->skips[r->n_skips].index = index;
        snprintf(r->skips[r->n_skips].reason, sizeof r->skips[0].reason, "%s", reason);
        r->n_skips++;
    }
    return 0;
}

/* Events in (key, event id, identity) order: a key's events together, and a repeat of one event
 * (same id and content: det_event_hash) next to it. Two records with one id and different content
 * are two events (a forgery reusing a real id must not shadow the real record), and they compare
 * by their identity, not by arrival. qsort_r is a GNU extension with the context last; used so
 * threads never share sort state. */
struct order_ctx {
    const struct ev_event *evs;
    const uint64_t *ident;
};

static int cmp_order_r(const void *a, const void *b, void *ctx)
{
    const struct order_ctx *oc = ctx;
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    const struct ev_event *x = &oc->evs[ia], *y = &oc->evs[ib];
    int c = strcmp(x->akid, y->akid);
    if (c)
        return c;
    if ((c = strcmp(x->id, y->id)))
        return c;
    return oc->ident[ia] < oc->ident[ib] ? -1 : oc->ident[ia] > oc->ident[ib];
}

/* ---- per-key work --------------------------------------------------------------------------- */

struct keywork {
    size_t first, count;         /* range in e->order: this key's distinct events */
    uint64_t *hashes;
    uint8_t *seen;
    size_t dups;                 /* events the store had already applied */
    int done;
};

static void add_finding_id(struct eng_report *r, const char *id)
{
    for (size_t i = 0; i < r->n_ids; i++)
        if (strcmp(r->ids[i], id) == 0)
            return;
    r->findings++;
    if (r->n_ids < ENG_FINDINGS_MAX)
        snprintf(r->ids[r->n_ids++], sizeof r->ids[0], "%s", id);
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
    snprintf(b->function, sizeof b->function, "%s", e->key.function);
    memset(p, 0, sizeof *p);
    p->id = b->id;
    p->evidence_json = b->doc;
    p->severity = det_severity_name(v->severity);
    p->account = b->account;
    p->function = b->function;
    p->version = version;
    p->now_ms = now_ms;
    return 0;
}

/* The severity a stored finding shows (its evidence's "severity"), or -1. The first occurrence is
 * the field itself: rnd_evidence writes it before any string a sender chose except the key's
 * context, and those are JSON-escaped, so a quote inside them never matches the tag. */
static int finding_severity(const struct store_finding *f)
{
    static const char tag[] = "\"severity\":\"";
    const char *p = f->evidence_json ? strstr(f->evidence_json, tag) : NULL;
    if (!p)
        return -1;
    p += sizeof tag - 1;
    const char *q = strchr(p, '"');
    char name[16];
    if (!q || (size_t)(q - p) >= sizeof name)
        return -1;
    memcpy(name, p, (size_t)(q - p));
    name[q - p] = 0;
    return det_severity_parse(name);
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

/* One round: load the keys, apply their new events, CAS them; then write findings of the
 * keys committed. Keys that lost a race stay !done for the next attempt. */
static int round_keys(struct eng *e, struct keywork *kw, size_t n, int64_t now_ms)
{
    struct store_load *loads = calloc(n, sizeof *loads);
    struct store_commit *commits = calloc(n, sizeof *commits);
    uint8_t **blobs = calloc(n, sizeof *blobs);
    struct store_finding_put *puts = calloc(n, sizeof *puts);
    struct finding_bufs *bufs = calloc(n, sizeof *bufs);
    size_t *commit_of = calloc(n, sizeof *commit_of);
    /* repairs of findings of keys with nothing new (see below) */
    struct store_finding_put *rputs = calloc(n, sizeof *rputs);
    struct finding_bufs *rbufs = calloc(n, sizeof *rbufs);
    size_t nr = 0;
    int rc = CW_ENOMEM;
    if (!loads || !commits || !blobs || !puts || !bufs || !commit_of || !rputs || !rbufs)
        goto out;
    size_t nl = 0;
    for (size_t i = 0; i < n; i++) {
        if (kw[i].done)
            continue;
        const struct ev_event *ev0 = &e->evs[e->order[kw[i].first]];
        loads[nl].akid = ev0->akid;
        loads[nl].hashes = kw[i].hashes;
        loads[nl].n_hashes = kw[i].count;
        loads[nl].seen = kw[i].seen;
        commit_of[nl] = i;
        nl++;
    }
    if (store_load(e->st, loads, nl)) {
        rc = CW_EUNAVAIL;
        goto out;
    }
    size_t nc = 0;
    for (size_t j = 0; j < nl; j++) {
        struct keywork *w = &kw[commit_of[j]];
        const struct ev_event *ev0 = &e->evs[e->order[w->first]];
        if (loads[j].version) {
            if (det_decode(&e->key, loads[j].blob, loads[j].blob_len)) {
                /* a blob this version cannot read: start over rather than fail the key forever */
                det_key_init(&e->key, ev0->akid);
            }
        } else {
            det_key_init(&e->key, ev0->akid);
        }
        e->old = e->key;
        size_t fresh = 0, dups = 0;
        for (size_t k = 0; k < w->count; k++) {
            if (w->seen[k]) {
                dups++;
                continue;
            }
            det_apply_ctx(&e->key, &e->evs[e->order[w->first + k]], &e->cfg.det);
            w->hashes[fresh++] = w->hashes[k];
        }
        w->dups = dups;
        if (!fresh) {
            w->done = 1;
            e->rep->duplicates += dups;
            /* Nothing new, but if the state says "finding", make sure the finding exists: an
             * earlier request may have committed the key and then failed to write the finding
             * (503), and its retry — this request — is all duplicates. ensure writes only when
             * the finding is absent, so a plain duplicate changes nothing. */
            struct det_verdict vc;
            det_judge(&e->key, &e->cfg.det, &vc);
            if (vc.finding && nr < n) {
                if (finding_put_of(e, &vc, loads[j].version, now_ms, &rputs[nr], &rbufs[nr])) {
                    rc = CW_ENOMEM;
                    goto out;
                }
                rputs[nr++].ensure = 1;
            }
            continue;
        }
        /* verdicts before and after, for the finding write below; the new one's severity is
         * remembered in the state, so no later evidence can lower it */
        struct det_verdict vo, vn;
        det_judge(&e->old, &e->cfg.det, &vo);
        det_judge(&e->key, &e->cfg.det, &vn);
        det_remember(&e->key, &vn);
        int len = det_encode(&e->key, e->blob, sizeof e->blob);
        if (len < 0 || !(blobs[nc] = malloc((size_t)len))) {
            rc = CW_ENOMEM;
            goto out;
        }
        memcpy(blobs[nc], e->blob, (size_t)len);
        int64_t exp_ms = det_expires_at(&e->key) * 1000;
        int64_t floor_ms = now_ms + e->cfg.late_margin_s * 1000;
        struct store_commit *c = &commits[nc];
        c->akid = ev0->akid;
        c->version = loads[j].version;
        c->new_version = next_version(loads[j].version, now_ms);
        c->blob = blobs[nc];
        c->blob_len = (size_t)len;
        c->hashes = w->hashes;
        c->n_hashes = fresh;
        c->keep = vn.finding ? STORE_KEEP_FINDING : vn.lambda ? STORE_KEEP_LAMBDA : STORE_KEEP_PENDING;
        /* Event times are the sender's: a year-9999 eventTime must not keep state for
         * millennia. No credentials live longer than DET_CRED_LIFETIME, so from arrival the state
         * needs at most that plus the late margin; a replayed archive's past times get the floor. */
        int64_t ceiling_ms = now_ms + ((int64_t)DET_CRED_LIFETIME + e->cfg.late_margin_s) * 1000;
        c->expire_at_ms = exp_ms > floor_ms ? exp_ms : floor_ms;
        if (c->expire_at_ms > ceiling_ms)
            c->expire_at_ms = ceiling_ms;
        /* A finding is never retracted by evidence (any record may be forged by a holder of an
         * ingest token): once raised it stays, explained or not, with its status. */
        if (vn.finding) {
            if (finding_put_of(e, &vn, c->new_version, now_ms, &puts[nc], &bufs[nc])) {
                rc = CW_ENOMEM;
                goto out;
            }
            puts[nc].new_outside = vn.outside_count > vo.outside_count;
        }
        commit_of[nc] = commit_of[j];
        nc++;
    }
    /* A key made anew (its old state expired) may already have a finding, kept 90 days: its
     * severity is the floor of the new state's, or a replayed archive would lower it. Only new
     * keys that judge a finding pay this read (the loaded blobs are not needed any more). */
    for (size_t j = 0; j < nc; j++) {
        if (commits[j].version || !puts[j].id)
            continue;
        struct store_finding old;
        int grc = store_finding_get(e->st, puts[j].id, &old);
        if (grc == CW_ENOTFOUND)
            continue;
        if (grc) {
            rc = CW_EUNAVAIL;
            goto out;
        }
        int floor = finding_severity(&old);
        store_finding_free(&old);
        if (floor <= 0 || det_decode(&e->key, commits[j].blob, commits[j].blob_len))
            continue;
        e->key.peak_severity = (uint8_t)(floor > e->key.peak_severity ? floor : e->key.peak_severity);
        struct det_verdict vf;
        det_judge(&e->key, &e->cfg.det, &vf);
        int len = det_encode(&e->key, e->blob, sizeof e->blob);
        uint8_t *nb = len > 0 ? realloc(blobs[j], (size_t)len) : NULL;
        if (!nb) {
            rc = CW_ENOMEM;
            goto out;
        }
        memcpy(nb, e->blob, (size_t)len);
        blobs[j] = nb;
        commits[j].blob = nb;
        commits[j].blob_len = (size_t)len;
        int new_outside = puts[j].new_outside;
        free(bufs[j].doc);
        bufs[j].doc = NULL;
        if (finding_put_of(e, &vf, commits[j].new_version, now_ms, &puts[j], &bufs[j])) {
            rc = CW_ENOMEM;
            goto out;
        }
        puts[j].new_outside = new_outside;
    }
    if (store_commit(e->st, commits, nc)) {
        rc = CW_EUNAVAIL;
        goto out;
    }
    size_t np = 0;
    for (size_t j = 0; j < nc; j++) {
        if (!commits[j].ok)
            continue;  /* lost the race: reload next attempt; its dups were not counted */
        kw[commit_of[j]].done = 1;
        e->rep->duplicates += kw[commit_of[j]].dups;
        if (puts[j].id)
            puts[np++] = puts[j];
    }
    for (size_t j = 0; j < nr; j++)  /* puts has room: n >= commits + repairs */
        puts[np++] = rputs[j];
    if (np && store_finding_put(e->st, puts, np)) {
        rc = CW_EUNAVAIL;
        goto out;
    }
    for (size_t j = 0; j < np; j++) {
        if (!puts[j].ensure || puts[j].created)
            add_finding_id(e->rep, puts[j].id);
        if (puts[j].created)
            e->rep->created++;
    }
    rc = 0;
out:
    if (blobs)
        for (size_t j = 0; j < n; j++)
            free(blobs[j]);
    for (size_t j = 0; bufs && j < n; j++)
        free(bufs[j].doc);
    for (size_t j = 0; rbufs && j < n; j++)
        free(rbufs[j].doc);
    free(rputs);
    free(rbufs);
    free(loads);
    free(commits);
    free(blobs);
    free(puts);
    free(bufs);
    free(commit_of);
    return rc;
}

static int apply_all(struct eng *e, int64_t now_ms)
{
    struct eng_report *r = e->rep;
    if (e->n_evs == 0)
        return 0;
    if (e->cap_order < e->n_evs) {
        size_t *o = realloc(e->order, e->n_evs * sizeof *o);
        if (o)
            e->order = o;
        uint64_t *id = realloc(e->ident, e->n_evs * sizeof *id);
        if (id)
            e->ident = id;
        if (!o || !id)
            return CW_ENOMEM;
        e->cap_order = e->n_evs;
    }
    for (size_t i = 0; i < e->n_evs; i++) {
        e->order[i] = i;
        e->ident[i] = det_event_hash(&e->evs[i]);
    }
    struct order_ctx oc = { e->evs, e->ident };
    qsort_r(e->order, e->n_evs, sizeof *e->order, cmp_order_r, &oc);
    /* drop repeats of one event inside this input: they are duplicates too */
    size_t w = 0;
    for (size_t i = 0; i < e->n_evs; i++) {
        if (w && cmp_order_r(&e->order[w - 1], &e->order[i], &oc) == 0) {
            r->duplicates++;
            continue;
        }
        e->order[w++] = e->order[i];
    }
    size_t n_unique = w;
    /* key ranges */
    size_t n_keys = 0;
    for (size_t i = 0; i < n_unique; i++)
        if (i == 0 || strcmp(e->evs[e->order[i]].akid, e->evs[e->order[i - 1]].akid) != 0)
            n_keys++;
    r->keys = n_keys;
    struct keywork *kw = calloc(n_keys, sizeof *kw);
    uint64_t *hashes = malloc(n_unique * sizeof *hashes);
    uint8_t *seen = malloc(n_unique);
    int rc = CW_ENOMEM;
    if (!kw || !hashes || !seen)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < n_unique; i++) {
        if (i == 0 || strcmp(e->evs[e->order[i]].akid, e->evs[e->order[i - 1]].akid) != 0) {
            kw[k].first = i;
            kw[k].hashes = hashes + i;
            kw[k].seen = seen + i;
            k++;
        }
        kw[k - 1].count++;
        hashes[i] = e->ident[e->order[i]];
    }
    rc = 0;
    for (size_t base = 0; base < n_keys && !rc; base += ENG_KEYS_PER_ROUND) {
        size_t n = n_keys - base < ENG_KEYS_PER_ROUND ? n_keys - base : ENG_KEYS_PER_ROUND;
        int attempt;
        for (attempt = 0; attempt < ENG_CAS_RETRIES && !rc; attempt++) {
            size_t pending = 0;
            for (size_t i = 0; i < n; i++) {
                if (!kw[base + i].done) {
                    pending++;
                    /* a retry reloads the dedup flags for the full set of this key's events */
                    size_t first = kw[base + i].first;
                    for (size_t j = 0; j < kw[base + i].count; j++)
                        hashes[first + j] = e->ident[e->order[first + j]];
                }
            }
            if (!pending)
                break;
            rc = round_keys(e, kw + base, n, now_ms);
        }
        if (!rc)
            for (size_t i = 0; i < n; i++)
                if (!kw[base + i].done)
                    rc = CW_EUNAVAIL;  /* contention beyond the retries: the sender retries */
    }
out:
    free(kw);
    free(hashes);
    free(seen);
    return rc;
}

int eng_decode(struct eng *e, const uint8_t *buf, size_t len, struct eng_report *rep)
{
    memset(rep, 0, offsetof(struct eng_report, skips));
    rep->n_ids = 0;
    rep->findings = rep->created = 0;
    rep->message[0] = 0;
    e->rep = rep;
    size_t before = e->n_evs;
    struct dec_sink sink = { on_event, on_skip, e };
    struct dec_stats ds;
    int drc = dec_buffer(buf, len, &sink, &e->cfg.limits, &ds, rep->message, sizeof rep->message);
    rep->records = ds.records;
    rep->skipped = ds.skipped;
    if (!drc)
        return 0;
    /* an input refused as a whole contributes nothing, not even the records before the fault */
    e->n_evs = before;
    switch (drc) {
    case CW_ETOOBIG:
        return CW_ETOOBIG;
    case CW_ENOMEM:
    case CW_EABORT:
        snprintf(rep->message, sizeof rep->message, "out of memory");
        return CW_ENOMEM;
    default:
        return CW_EINPUT;
    }
}

size_t eng_pending(const struct eng *e)
{
    return e->n_evs;
}

int eng_apply(struct eng *e, int64_t now_ms, struct eng_report *rep)
{
    rep->duplicates = rep->keys = rep->findings = rep->created = rep->n_ids = 0;
    e->rep = rep;
    int rc = apply_all(e, now_ms);
    e->n_evs = 0;  /* applied, or (on a store error) left to the sender's retry */
    if (e->cap_evs > ENG_EVENTS_KEEP) {
        free(e->evs);
        free(e->order);
        free(e->ident);
        e->evs = NULL;
        e->order = NULL;
        e->ident = NULL;
        e->cap_evs = e->cap_order = 0;
    }
    if (rc == CW_EUNAVAIL)
    {
        const char *why = store_why(e->st);
        snprintf(rep->message, sizeof rep->message, "the store is unavailable; retry later%s%.200s",
                 why[0] ? ": " : "", why);
    }
    else if (rc == CW_ENOMEM)
        snprintf(rep->message, sizeof rep->message, "out of memory");
    return rc;
}

int eng_ingest(struct eng *e, const uint8_t *buf, size_t len, int64_t now_ms, struct eng_report *rep)
{
    e->n_evs = 0;
    int rc = eng_decode(e, buf, len, rep);
    if (rc)
        return rc;  /* nothing was stored: decoding happens before any store call */
    size_t records = rep->records, skipped = rep->skipped;
    rc = eng_apply(e, now_ms, rep);
    size_t ignored = rep->ignored;
    rep->accepted = records - skipped - ignored - rep->duplicates;
    return rc;
}

int eng_key_json(struct eng *e, const char *akid, char **json)
{
    struct store_load l = { .akid = akid };
    if (store_load(e->st, &l, 1))
        return CW_EUNAVAIL;
    if (!l.version)
        return CW_ENOTFOUND;
    if (det_decode(&e->key, l.blob, l.blob_len))
        return CW_EUNAVAIL;
    struct det_verdict v;
    det_judge(&e->key, &e->cfg.det, &v);
    char fid[STORE_ID_MAX];
    eng_finding_id(akid, fid, sizeof fid);
    *json = rnd_key_context(&e->key, &v, v.finding ? fid : NULL);
    return *json ? 0 : CW_ENOMEM;
}
