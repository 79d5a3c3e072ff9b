/* store_mem.c — the embedded store: key state and findings in this process's memory.
 *
 * For one instance (the default `serve`) and for `scan`. Same contract as the Redis store,
 * checked by the same store tests: versioned compare-and-set of key blobs, a per-key dedup set,
 * findings with sticky status. One mutex guards everything: the critical sections are short
 * (copies of a few hundred bytes) and the engine batches its calls.
 *
 * Memory is bounded (store_mem_limit, STORE_MEM_DEFAULT_BYTES): keys, their dedup sets and the
 * findings are counted. Past the bound, expired keys go first, then the keys with no Lambda
 * evidence, then Lambda keys without a finding, each class soonest-expiring first (their
 * credentials are closest to useless); a key with a finding is never evicted. When nothing is
 * left to evict, new keys and findings are refused (CW_EUNAVAIL: the sender retries).
 */
#include "store.h"
#include "cw.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "detect.h"
#include "event.h"

#define MEM_MAX_KEYS (8u << 20)        /* tracked keys; beyond, commits fail as unavailable */
#define MEM_MAX_FINDINGS (1u << 20)    /* findings kept */
#define MEM_SWEEP_EVERY 4096           /* commits between sweeps of expired keys */
#define MEM_INITIAL_BUCKETS 1024       /* key table; doubles as it fills */
#define MEM_FINDING_BUCKETS 65536      /* finding table; fixed: findings are few */
/* The findings are also kept in the listing's order (newest first, then id descending) in a skip
 * list, so that a page of GET /v1/findings costs the seek to its cursor (O(log n), expected) and the
 * findings it walks, not a walk of every finding: each finding is on level 0 and, with chance 1/2,
 * on the next level too, up to MEM_ORDER_LEVELS levels: log2 of MEM_MAX_FINDINGS, where more levels
 * stop shortening the seek. */
#define MEM_ORDER_LEVELS 20
_Static_assert((1u << MEM_ORDER_LEVELS) >= MEM_MAX_FINDINGS, "the skip list's levels cover the findings kept");
#define MEM_EVICT_TO_PCT 90            /* an eviction pass frees down to this share of the bound */
#define MEM_ROOM_RETRY_MS 1000         /* after a pass that could not free enough (keys with findings
                                        * fill the bound): refuse new keys at once until then, instead
                                        * of walking the table on every commit */

struct mem_key {
    struct mem_key *next;
    uint64_t h;          /* det_id_hash(akid): a chain is walked by it, the name compared on a match */
    char akid[EV_AKID_MAX];
    uint8_t *blob;
    size_t len;
    uint64_t version;
    int64_t expire_at_ms;
    uint64_t *seen;      /* sorted */
    size_t n_seen, cap_seen;
    uint8_t keep;        /* enum store_keep: eviction class */
};

struct mem_finding {
    struct mem_finding *next;
    char id[STORE_ID_MAX];
    char *evidence;
    char *note;
    int status;
    int severity;
    char account[EV_ACCOUNT_MAX];
    char function[EV_FUNCTION_MAX];
    char workload[STORE_WORKLOAD_MAX];  /* kind name, "lambda" when the put named none */
    int64_t created_ms, updated_ms;
    uint64_t version;    /* key state version the evidence came from */
    uint64_t rv, qd;     /* outbox: the finding's last revision, the last one queued */
    unsigned updates;    /* evidence-growth events pushed (at most STORE_UPDATES_MAX) */
    uint32_t outside;    /* the evidence's outside count (a repair that grew it reopens) */
    int rk;              /* the kind of revision rv (enum store_event_kind) */
    unsigned levels;     /* of the listing's order: 1..MEM_ORDER_LEVELS links below */
    struct mem_finding *order[];  /* the next finding in the listing's order, on each level */
};

/* ---- the outbox's shapes (its code is below the findings) ----------------------------------- */

/* An event as the outbox keeps it: in the queue (shared by the sinks), or a sink's copy while held,
 * sent back (redo) or dead. */
struct mem_ev {
    struct mem_ev *next;
    uint64_t qseq;           /* queue events: 1, 2, 3 ... (a sink's backlog is last - cursor) */
    uint64_t n;              /* the number in the entry id, unique in the store */
    struct store_event ev;   /* ev.attempts: times handed out so far */
    char consumer[STORE_CONSUMER_MAX];
    int64_t handed_ms;
};

struct mem_evq {
    struct mem_ev *head, *tail;
    size_t n;
};

struct mem_sink {
    char name[STORE_SINK_NAME_MAX];
    uint64_t cursor;         /* qseq of the last queue event handed out (or dead-lettered) new */
    struct mem_evq held, redo, dead;
    uint64_t dead_dropped;
};

struct mem_outbox {
    struct mem_evq queue;
    uint64_t qseq, entry_n;  /* the last ones assigned */
    struct mem_sink sinks[STORE_SINK_MAX];
    size_t n_sinks;          /* 0: nothing is recorded (scan, serve without sinks) */
};

struct mem_shared {
    pthread_mutex_t mu;
    int refs;
    struct mem_key **keys;
    size_t n_buckets, n_keys;
    struct mem_finding **findings;
    size_t n_fbuckets, n_findings;
    struct mem_finding *order[MEM_ORDER_LEVELS];  /* the newest finding on each level */
    uint64_t order_rng;               /* xorshift64: the levels of new findings */
    uint64_t list_walked;             /* findings the listings looked at (store_mem_stats) */
    uint64_t commits;
    size_t bytes, max_bytes;          /* counted: keys, dedup sets, findings */
    uint64_t evicted[STORE_KEEP_FINDING];  /* per class evicted */
    int full;                         /* the last call was refused at the bound (for store_why) */
    int64_t room_retry_ms;            /* an eviction pass that could not reach its target: no other before */
    struct mem_outbox out;            /* its events count in bytes too */
    size_t fault_max_bytes;           /* tests only: the bound before STORE_FAULT_OUTBOX shrank it, 0 none */
};

struct mem_store {
    struct store base;
    struct mem_shared *sh;
    uint8_t *blobs;      /* this handle's copies of loaded blobs (valid until its next call) */
    size_t blobs_cap;
};

static size_t key_bytes(const struct mem_key *k)
{
    return sizeof *k + k->len + k->cap_seen * sizeof *k->seen;
}

static size_t finding_bytes(const struct mem_finding *f)
{
    return sizeof *f + f->levels * sizeof f->order[0] + (f->evidence ? strlen(f->evidence) + 1 : 0) + (f->note ? strlen(f->note) + 1 : 0);
}

static void key_free(struct mem_key *k)
{
    free(k->blob);
    free(k->seen);
    free(k);
}

/* Unlinks and frees a key, keeping the count and the bytes. */
static void key_drop(struct mem_shared *sh, struct mem_key **p)
{
    struct mem_key *dead = *p;
    *p = dead->next;
    sh->bytes -= key_bytes(dead);
    key_free(dead);
    sh->n_keys--;
}

static struct mem_key **key_slot(struct mem_shared *sh, const char *akid)
{
    uint64_t h = det_id_hash(akid);
    struct mem_key **p = &sh->keys[h & (sh->n_buckets - 1)];
    while (*p && ((*p)->h != h || strcmp((*p)->akid, akid) != 0))
        p = &(*p)->next;
    return p;
}

static int grow_keys(struct mem_shared *sh)
{
    size_t n = sh->n_buckets * 2;
    struct mem_key **nb = calloc(n, sizeof *nb);
    if (!nb)
        return -1;
    for (size_t i = 0; i < sh->n_buckets; i++) {
        struct mem_key *k = sh->keys[i];
        while (k) {
            struct mem_key *next = k->next;
            size_t b = k->h & (n - 1);
            k->next = nb[b];
            nb[b] = k;
            k = next;
        }
    }
    free(sh->keys);
    sh->keys = nb;
    sh->n_buckets = n;
    return 0;
}

static void sweep(struct mem_shared *sh, int64_t now)
{
    for (size_t i = 0; i < sh->n_buckets; i++) {
        struct mem_key **p = &sh->keys[i];
        while (*p) {
            if ((*p)->expire_at_ms < now) {
                key_drop(sh, p);
            } else {
                p = &(*p)->next;
            }
        }
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Frees keys of class `keep`, soonest-expiring first, until the bytes are at most `target`. The
 * cut-off expiry is found once per pass (a sort of the class's expiries), so a pass costs
 * O(n log n) and frees a tenth of the bound: rare, and never per commit. */
static void evict_class(struct mem_shared *sh, uint8_t keep, size_t target)
{
    size_t n = 0, class_bytes = 0, j = 0;
    for (size_t i = 0; i < sh->n_buckets; i++)
        for (struct mem_key *k = sh->keys[i]; k; k = k->next)
            if (k->keep == keep) {
                n++;
                class_bytes += key_bytes(k);
            }
    if (!n)
        return;
    int64_t *exp = malloc(n * sizeof *exp);
    int64_t cut = INT64_MAX;  /* without memory for the sort: the whole class, in table order */
    if (exp) {
        for (size_t i = 0; i < sh->n_buckets; i++)
            for (struct mem_key *k = sh->keys[i]; k; k = k->next)
                if (k->keep == keep)
                    exp[j++] = k->expire_at_ms;
        qsort(exp, n, sizeof *exp, cmp_i64);
        /* the share of the class to free, by bytes, taken as the same share of its keys */
        size_t need = sh->bytes - target;
        size_t idx = need >= class_bytes ? n - 1 : (size_t)((double)need / (double)class_bytes * (double)n);
        cut = exp[idx < n ? idx : n - 1];
        free(exp);
    }
    for (size_t i = 0; i < sh->n_buckets && sh->bytes > target; i++) {
        struct mem_key **p = &sh->keys[i];
        while (*p && sh->bytes > target) {
            if ((*p)->keep == keep && (*p)->expire_at_ms <= cut) {
                key_drop(sh, p);
                sh->evicted[keep]++;
            } else {
                p = &(*p)->next;
            }
        }
    }
}

/* Room for `need` more bytes: when they would pass the bound, expired keys go, then each
 * evictable class, down to MEM_EVICT_TO_PCT of the bound. */
static void make_room(struct mem_shared *sh, int64_t now, size_t need)
{
    if (sh->bytes + need <= sh->max_bytes || now < sh->room_retry_ms)
        return;
    sweep(sh, now);
    size_t target = sh->max_bytes / 100 * MEM_EVICT_TO_PCT;
    if (need > sh->max_bytes - target)
        target = need < sh->max_bytes ? sh->max_bytes - need : 0;
    for (uint8_t c = STORE_KEEP_PENDING; c < STORE_KEEP_FINDING && sh->bytes > target; c++)
        evict_class(sh, c, target);
    sh->room_retry_ms = sh->bytes > target ? now + MEM_ROOM_RETRY_MS : 0;
}

#define MEM_SEEN_INITIAL 16  /* dedup hashes of a new key, first allocation; grows to STORE_SEEN_MAX */

static int cmp_u64(const void *key, const void *elem)
{
    uint64_t x = *(const uint64_t *)key, y = *(const uint64_t *)elem;
    return x < y ? -1 : x > y;
}

/* Where h is or would go in the sorted set. */
static size_t seen_find(const struct mem_key *k, uint64_t h)
{
    return cw_lower_bound(k->seen, k->n_seen, sizeof *k->seen, &h, cmp_u64);
}

static int seen_has(const struct mem_key *k, uint64_t h)
{
    size_t i = seen_find(k, h);
    return i < k->n_seen && k->seen[i] == h;
}

/* Adds h to the set; 0, or CW_ENOMEM. */
static int seen_add(struct mem_key *k, uint64_t h)
{
    size_t at = seen_find(k, h);
    if (at < k->n_seen && k->seen[at] == h)
        return 0;
    if (k->n_seen >= STORE_SEEN_MAX)
        return 0;  /* bounded: see STORE_SEEN_MAX */
    void *seen = k->seen;
    int rc = cw_grow(&seen, &k->cap_seen, k->n_seen + 1, sizeof *k->seen, MEM_SEEN_INITIAL, STORE_SEEN_MAX);
    if (rc != 0)
        return rc;
    k->seen = seen;
    memmove(&k->seen[at + 1], &k->seen[at], (k->n_seen - at) * sizeof *k->seen);
    k->seen[at] = h;
    k->n_seen++;
    return 0;
}

static int mem_load(struct store *s, struct store_load *items, size_t n)
{
    struct mem_store *m = (struct mem_store *)s;
    struct mem_shared *sh = m->sh;
    int64_t now = cw_now_ms();
    pthread_mutex_lock(&sh->mu);
    size_t need = 0;
    for (size_t i = 0; i < n; i++) {
        struct mem_key *k = *key_slot(sh, items[i].akid);
        if (k && k->expire_at_ms >= now)
            need += k->len;
    }
    /* Sized to the batch exactly, not doubled, so not cw_grow (which would keep up to twice the
     * largest batch); no bound of its own: a batch's blobs are copies of keys the store bounds. */
    if (need > m->blobs_cap) {
        uint8_t *nb = realloc(m->blobs, need);
        if (!nb) {
            pthread_mutex_unlock(&sh->mu);
            return CW_EUNAVAIL;
        }
        m->blobs = nb;
        m->blobs_cap = need;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        struct store_load *it = &items[i];
        struct mem_key *k = *key_slot(sh, it->akid);
        if (k && k->expire_at_ms < now)
            k = NULL;
        it->blob = NULL;
        it->blob_len = 0;
        it->version = k ? k->version : 0;
        if (k) {
            memcpy(m->blobs + off, k->blob, k->len);
            it->blob = m->blobs + off;
            it->blob_len = k->len;
            off += k->len;
        }
        for (size_t j = 0; j < it->n_hashes; j++)
            it->seen[j] = k ? (uint8_t)seen_has(k, it->hashes[j]) : 0;
    }
    pthread_mutex_unlock(&sh->mu);
    return 0;
}

static int mem_commit(struct store *s, struct store_commit *items, size_t n)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    int64_t now = cw_now_ms();
    int rc = 0;
    pthread_mutex_lock(&sh->mu);
    sh->full = 0;
    for (size_t i = 0; i < n; i++) {
        struct store_commit *c = &items[i];
        struct mem_key **slot = key_slot(sh, c->akid), *k = *slot;
        if (k && k->expire_at_ms < now) {  /* expired: as if absent */
            key_drop(sh, slot);
            k = NULL;
            slot = key_slot(sh, c->akid);
        }
        c->ok = 0;
        if ((k ? k->version : 0) != c->version)
            continue;
        uint8_t *blob = malloc(c->blob_len ? c->blob_len : 1);
        if (!blob) {
            rc = CW_EUNAVAIL;
            continue;
        }
        memcpy(blob, c->blob, c->blob_len);
        if (!k) {
            make_room(sh, now, sizeof *k + c->blob_len);  /* frees a tenth of the bound when it acts */
            slot = key_slot(sh, c->akid);
            if (sh->n_keys >= MEM_MAX_KEYS || sh->bytes + sizeof *k + c->blob_len > sh->max_bytes) {
                free(blob);
                rc = CW_EUNAVAIL;
                sh->full = 1;
                continue;
            }
            k = calloc(1, sizeof *k);
            if (!k) {
                free(blob);
                rc = CW_EUNAVAIL;
                continue;
            }
            snprintf(k->akid, sizeof k->akid, "%s", c->akid);
            k->h = det_id_hash(k->akid);
            k->next = *slot;
            *slot = k;
            sh->n_keys++;
            sh->bytes += key_bytes(k);
        }
        sh->bytes -= key_bytes(k);
        free(k->blob);
        k->blob = blob;
        k->len = c->blob_len;
        k->version = c->new_version;
        k->expire_at_ms = c->expire_at_ms;
        k->keep = c->keep;
        for (size_t j = 0; j < c->n_hashes; j++)
            if (seen_add(k, c->hashes[j]))
                rc = CW_EUNAVAIL;
        sh->bytes += key_bytes(k);
        c->ok = 1;
    }
    make_room(sh, now, 0);  /* an update may have grown past the bound */
    if (sh->n_keys > sh->n_buckets)
        grow_keys(sh);  /* at most one key a bucket on average: most lookups are of a new key, which
                         * walks its whole chain (on failure the chains just get longer) */
    if (++sh->commits % MEM_SWEEP_EVERY == 0)
        sweep(sh, now);
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

/* ---- findings ----------------------------------------------------------------------------- */

static struct mem_finding **finding_slot(struct mem_shared *sh, const char *id)
{
    struct mem_finding **p = &sh->findings[det_id_hash(id) & (sh->n_fbuckets - 1)];
    while (*p && strcmp((*p)->id, id) != 0)
        p = &(*p)->next;
    return p;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static int out_settle(struct mem_shared *sh, struct mem_finding *f, int kind, int64_t now_ms, uint64_t *revision);

/* Newest first: created_ms descending, then id descending (a total order for the cursor). */
static int before(int64_t ams, const char *aid, int64_t bms, const char *bid)
{
    if (ams != bms)
        return ams > bms;
    return strcmp(aid, bid) > 0;
}

/* ---- the listing's order: a skip list (MEM_ORDER_LEVELS) ---- */

static struct mem_finding **order_link(struct mem_shared *sh, struct mem_finding *x, unsigned level)
{
    return x ? &x->order[level] : &sh->order[level];
}

/* A new finding's levels: 1, and one more with chance 1/2 each time. */
static unsigned order_levels(struct mem_shared *sh)
{
    uint64_t x = sh->order_rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    sh->order_rng = x;
    unsigned levels = 1;
    while (levels < MEM_ORDER_LEVELS && (x & 1)) {
        levels++;
        x >>= 1;
    }
    return levels;
}

/* On each level, the last finding for which first(f, ud) holds (NULL: none, the head). first holds
 * for a prefix of the order. */
static void order_seek(struct mem_shared *sh, int (*first)(const struct mem_finding *f, const void *ud),
                       const void *ud, struct mem_finding **prev)
{
    struct mem_finding *x = NULL, *n;
    for (unsigned l = MEM_ORDER_LEVELS; l-- > 0;) {
        while ((n = *order_link(sh, x, l)) && first(n, ud))
            x = n;
        prev[l] = x;
    }
}

static int sorts_before(const struct mem_finding *f, const void *ud)
{
    const struct mem_finding *g = ud;
    return before(f->created_ms, f->id, g->created_ms, g->id);
}

static void order_insert(struct mem_shared *sh, struct mem_finding *f)
{
    struct mem_finding *prev[MEM_ORDER_LEVELS];
    order_seek(sh, sorts_before, f, prev);
    for (unsigned l = 0; l < f->levels; l++) {
        f->order[l] = *order_link(sh, prev[l], l);
        *order_link(sh, prev[l], l) = f;
    }
}

/* A new finding, linked at slot, its evidence ev (owned on success). NULL at the bound. */
static struct mem_finding *finding_new(struct mem_shared *sh, struct mem_finding **slot,
                                       const struct store_finding_put *u, const char *ev)
{
    unsigned levels = order_levels(sh);
    size_t size = sizeof(struct mem_finding) + levels * sizeof(struct mem_finding *);
    size_t need = size + strlen(ev) + 1;
    struct mem_finding *f;
    make_room(sh, cw_now_ms(), need);
    if (sh->n_findings >= MEM_MAX_FINDINGS || sh->bytes + need > sh->max_bytes || !(f = calloc(1, size))) {
        sh->full = 1;
        return NULL;
    }
    snprintf(f->id, sizeof f->id, "%s", u->id);
    f->created_ms = u->now_ms;  /* never changes: the finding keeps its place in the order */
    f->status = store_next_status(0, 0, u->new_outside);
    f->levels = levels;
    f->next = *slot;
    *slot = f;
    order_insert(sh, f);
    sh->n_findings++;
    return f;
}

/* One evidence update. *fp: the finding (NULL when none), *kind: the change an event reports
 * (enum store_event_kind, 0 none). */
static int put_one(struct mem_shared *sh, struct store_finding_put *u, struct mem_finding **fp, int *kind)
{
    struct mem_finding **slot = finding_slot(sh, u->id), *f = *slot;
    char *ev = dup_str(u->evidence_json);
    *fp = f;
    *kind = 0;
    if (!ev)
        return CW_EUNAVAIL;
    /* evidence from an older state than the one stored: keep the newer; a repair (ensure) writes
     * only over evidence of an older state (the write of a later commit was lost) */
    if (f && (u->version < f->version || (u->ensure && u->version == f->version))) {
        free(ev);
        return 0;
    }
    if (!f) {
        if (!(f = finding_new(sh, slot, u, ev))) {
            free(ev);
            return CW_EUNAVAIL;
        }
        u->created = 1;
        *kind = STORE_EV_CREATED;
    } else {
        int grew = u->ensure && u->outside_count > f->outside;
        int st = store_next_status(f->status, 1, u->new_outside || grew);
        int push = u->notify == STORE_NOTIFY_RAISED || (u->notify == STORE_NOTIFY_GREW && f->updates < STORE_UPDATES_MAX);
        *kind = st != f->status ? STORE_EV_STATUS : push ? STORE_EV_UPDATED : 0;
        if (*kind == STORE_EV_UPDATED && u->notify == STORE_NOTIFY_GREW && sh->out.n_sinks)
            f->updates++;
        f->status = st;
        sh->bytes -= finding_bytes(f);
    }
    free(f->evidence);
    f->evidence = ev;
    sh->bytes += finding_bytes(f);
    f->version = u->version;
    f->outside = u->outside_count;
    f->updated_ms = u->now_ms;
    f->severity = u->severity ? det_severity_parse(u->severity) : -1;
    snprintf(f->account, sizeof f->account, "%s", u->account ? u->account : "");
    snprintf(f->function, sizeof f->function, "%s", u->function ? u->function : "");
    snprintf(f->workload, sizeof f->workload, "%s", store_workload_name(u->workload));
    *fp = f;
    return 0;
}

static int mem_finding_put(struct store *s, struct store_finding_put *items, size_t n)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    int rc = 0;
    pthread_mutex_lock(&sh->mu);
    for (size_t i = 0; i < n; i++) {
        struct store_finding_put *u = &items[i];
        struct mem_finding *f;
        int kind;
        u->created = 0;
        u->revision = 0;
        int r1 = put_one(sh, u, &f, &kind);
        if (r1)
            rc = r1;
        else if (f && out_settle(sh, f, kind, u->now_ms, &u->revision))
            rc = CW_EUNAVAIL;  /* the finding is written; the retry (ensure) queues its event */
    }
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

static int copy_out(const struct mem_finding *f, struct store_finding *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->id, sizeof out->id, "%s", f->id);
    out->evidence_json = dup_str(f->evidence);
    out->note = f->note ? dup_str(f->note) : NULL;
    out->status = f->status;
    out->created_ms = f->created_ms;
    out->updated_ms = f->updated_ms;
    if (!out->evidence_json || (f->note && !out->note)) {
        store_finding_free(out);
        return CW_EUNAVAIL;
    }
    return 0;
}

static int mem_finding_get(struct store *s, const char *id, struct store_finding *out)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    pthread_mutex_lock(&sh->mu);
    struct mem_finding *f = *finding_slot(sh, id);
    int rc = f ? copy_out(f, out) : CW_ENOTFOUND;
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

static int matches(const struct mem_finding *f, const struct store_query *q)
{
    if (q->status >= 0 && f->status != q->status)
        return 0;
    if (q->severity >= 0 && f->severity != q->severity)
        return 0;
    if (q->account && strcmp(q->account, f->account) != 0)
        return 0;
    if (q->function && strcmp(q->function, f->function) != 0)
        return 0;
    if (q->workload && strcmp(q->workload, f->workload) != 0)
        return 0;
    if (q->since_ms && f->created_ms < q->since_ms)
        return 0;
    if (q->until_ms && f->created_ms > q->until_ms)
        return 0;
    if ((q->after_ms || q->after_id[0]) && !before(q->after_ms, q->after_id, f->created_ms, f->id))
        return 0;
    return 1;
}

/* Before the first finding a query may list: at or before its cursor, or created after its until. */
static int before_start(const struct mem_finding *f, const void *ud)
{
    const struct store_query *q = ud;
    if ((q->after_ms || q->after_id[0]) && !before(q->after_ms, q->after_id, f->created_ms, f->id))
        return 1;
    return q->until_ms && f->created_ms > q->until_ms;
}

/* The page: from the first finding past the cursor (the skip list's seek), along the order, each
 * checked by matches() as before; it stops at the `limit + 1`th match (*more) or at the first finding
 * created before since. A page costs the seek and the findings it walks: with no filter but time,
 * its own length plus one; a filter that few findings pass walks as far as it must to fill it. */
static int mem_finding_list(struct store *s, const struct store_query *q, struct store_finding *out,
                            size_t *n_out, int *more)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    size_t limit = q->limit ? q->limit : 1, n = 0, walked = 0;
    struct mem_finding *prev[MEM_ORDER_LEVELS];
    int rc = 0;
    *more = 0;
    pthread_mutex_lock(&sh->mu);
    order_seek(sh, before_start, q, prev);
    for (struct mem_finding *f = *order_link(sh, prev[0], 0); f && !rc; f = f->order[0]) {
        walked++;
        if (q->since_ms && f->created_ms < q->since_ms)
            break;  /* the rest were created earlier still */
        if (!matches(f, q))
            continue;
        if (n == limit) {
            *more = 1;
            break;
        }
        if ((rc = copy_out(f, &out[n])) == 0)
            n++;
    }
    sh->list_walked += walked;
    pthread_mutex_unlock(&sh->mu);
    if (rc) {
        while (n-- > 0)
            store_finding_free(&out[n]);
        *more = 0;
        return rc;
    }
    *n_out = n;
    return 0;
}

static int mem_finding_patch(struct store *s, const char *id, int status, const char *note, int64_t now_ms)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    int rc = 0;
    pthread_mutex_lock(&sh->mu);
    struct mem_finding *f = *finding_slot(sh, id);
    if (!f) {
        rc = CW_ENOTFOUND;
    } else {
        char *nn = note ? dup_str(note) : NULL;
        if (note && !nn) {
            rc = CW_EUNAVAIL;
        } else {
            if (note) {
                sh->bytes -= finding_bytes(f);
                free(f->note);
                f->note = nn;
                sh->bytes += finding_bytes(f);
            }
            int kind = status >= 0 && status != f->status ? STORE_EV_STATUS : 0;
            if (status >= 0)
                f->status = status;
            f->updated_ms = now_ms;
            rc = out_settle(sh, f, kind, now_ms, NULL);
        }
    }
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

/* ---- the outbox ------------------------------------------------------------------------------
 * The same semantics as the Redis store's streams, under the one lock: one queue of events shared
 * by the sinks (a sink's cursor says which it has taken), and per sink the events held by a
 * consumer, sent back from the dead letters (redo) and dead. Held, redo and dead events are the
 * sink's own copies, so the queue forgets an event once every sink's cursor passed it. Every event
 * counts in the store's bytes; only new events are refused at the bound (the sender retries). */

static size_t mev_bytes(const struct mem_ev *e)
{
    const struct store_finding *f = &e->ev.finding;
    return sizeof *e + (f->evidence_json ? strlen(f->evidence_json) + 1 : 0) + (f->note ? strlen(f->note) + 1 : 0);
}

static void mev_free(struct mem_shared *sh, struct mem_ev *e)
{
    sh->bytes -= mev_bytes(e);
    store_event_free(&e->ev);
    free(e);
}

/* A copy of ev's finding into out (strings duplicated). 0 or CW_EUNAVAIL. */
static int event_copy(const struct store_event *ev, struct store_event *out)
{
    *out = *ev;
    out->finding.evidence_json = ev->finding.evidence_json ? dup_str(ev->finding.evidence_json) : NULL;
    out->finding.note = ev->finding.note ? dup_str(ev->finding.note) : NULL;
    if ((ev->finding.evidence_json && !out->finding.evidence_json) || (ev->finding.note && !out->finding.note)) {
        store_event_free(out);
        return CW_EUNAVAIL;
    }
    return 0;
}

/* A new outbox node holding a copy of ev under a new entry id; NULL when out of memory. */
static struct mem_ev *mev_new(struct mem_shared *sh, const struct store_event *ev, int64_t now_ms)
{
    struct mem_ev *e = calloc(1, sizeof *e);
    if (!e || event_copy(ev, &e->ev)) {
        free(e);
        return NULL;
    }
    e->n = ++sh->out.entry_n;
    snprintf(e->ev.entry, sizeof e->ev.entry, "%lld-%llu", (long long)now_ms, (unsigned long long)e->n);
    sh->bytes += mev_bytes(e);
    return e;
}

static void evq_push(struct mem_evq *q, struct mem_ev *e)
{
    e->next = NULL;
    if (q->tail)
        q->tail->next = e;
    else
        q->head = e;
    q->tail = e;
    q->n++;
}

/* Unlinks *p (a link of q); prev is the node before it (NULL: the head). */
static struct mem_ev *evq_take(struct mem_evq *q, struct mem_ev **p, struct mem_ev *prev)
{
    struct mem_ev *e = *p;
    *p = e->next;
    if (q->tail == e)
        q->tail = prev;
    q->n--;
    e->next = NULL;
    return e;
}

static void evq_clear(struct mem_shared *sh, struct mem_evq *q)
{
    for (struct mem_ev *e = q->head, *next; e; e = next) {
        next = e->next;
        mev_free(sh, e);
    }
    memset(q, 0, sizeof *q);
}

/* The number in an entry id ("<ms>-<n>"), 0 when it is not one of ours. */
static uint64_t entry_n(const char *entry)
{
    const char *dash = entry ? strchr(entry, '-') : NULL;
    return dash ? strtoull(dash + 1, NULL, 10) : 0;
}

static struct mem_sink *sink_of(struct mem_shared *sh, const char *name)
{
    for (size_t i = 0; i < sh->out.n_sinks; i++)
        if (strcmp(sh->out.sinks[i].name, name) == 0)
            return &sh->out.sinks[i];
    return NULL;
}

/* Queues finding f as of now (revision f->rv). 0, or CW_EUNAVAIL (memory bound, out of memory). */
static int out_queue(struct mem_shared *sh, const struct mem_finding *f, int64_t now_ms)
{
    struct store_event ev = { .revision = f->rv, .kind = f->rk, .queued_ms = now_ms };
    snprintf(ev.finding.id, sizeof ev.finding.id, "%s", f->id);
    ev.finding.evidence_json = f->evidence;
    ev.finding.note = f->note;
    ev.finding.status = f->status;
    ev.finding.created_ms = f->created_ms;
    ev.finding.updated_ms = f->updated_ms;
    size_t need = sizeof(struct mem_ev) + finding_bytes(f);
    make_room(sh, now_ms, need);
    if (sh->bytes + need > sh->max_bytes) {
        sh->full = 1;
        return CW_EUNAVAIL;
    }
    struct mem_ev *e = mev_new(sh, &ev, now_ms);
    if (!e)
        return CW_EUNAVAIL;
    e->qseq = ++sh->out.qseq;
    evq_push(&sh->out.queue, e);
    return 0;
}

/* After a finding write: a new revision when the change is one to report and events are recorded,
 * then the event of the last revision queued unless it is already (the repair of a failed queue). */
static int out_settle(struct mem_shared *sh, struct mem_finding *f, int kind, int64_t now_ms, uint64_t *revision)
{
    if (kind && sh->out.n_sinks) {
        f->rv++;
        f->rk = kind;
    }
    if (f->rv <= f->qd)
        return 0;
    if (out_queue(sh, f, now_ms))
        return CW_EUNAVAIL;
    f->qd = f->rv;
    if (revision)
        *revision = f->rv;
    return 0;
}

static int mem_out_open(struct store *s, const char *const *sinks, size_t n)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    for (size_t i = 0; i < n; i++)
        if (!store_sink_name_valid(sinks[i]))
            return CW_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&sh->mu);
    for (size_t i = 0; i < n && !rc; i++) {
        if (sink_of(sh, sinks[i]))
            continue;
        if (sh->out.n_sinks >= STORE_SINK_MAX) {
            rc = CW_EINVAL;
            break;
        }
        struct mem_sink *k = &sh->out.sinks[sh->out.n_sinks++];
        memset(k, 0, sizeof *k);
        snprintf(k->name, sizeof k->name, "%s", sinks[i]);
        k->cursor = sh->out.qseq;  /* a new sink gets the events from now on */
    }
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

/* The sink of a call, locked; NULL (unlocked) with *rc = CW_EINVAL when unknown or invalid. */
static struct mem_sink *sink_lock(struct mem_shared *sh, const char *name, int *rc)
{
    *rc = CW_EINVAL;
    if (!store_sink_name_valid(name))
        return NULL;
    pthread_mutex_lock(&sh->mu);
    struct mem_sink *k = sink_of(sh, name);
    if (!k) {
        pthread_mutex_unlock(&sh->mu);
        return NULL;
    }
    *rc = 0;
    return k;
}

/* Hands held event e to consumer as out[*n]. */
static int hand_out(struct mem_ev *e, const char *consumer, int64_t now_ms, struct store_event *out, size_t *n)
{
    if (event_copy(&e->ev, &out[*n]))
        return CW_EUNAVAIL;
    e->ev.attempts++;
    snprintf(e->consumer, sizeof e->consumer, "%s", consumer);
    e->handed_ms = now_ms;
    (*n)++;
    return 0;
}

/* Held events first: the consumer's own, then those another held past the claim time. */
static int read_held(struct mem_sink *k, const char *consumer, size_t max, int64_t now_ms,
                     struct store_event *out, size_t *n)
{
    struct store_out_limits lim;
    store_out_get_limits(&lim);
    for (int pass = 0; pass < 2; pass++)
        for (struct mem_ev *e = k->held.head; e && *n < max; e = e->next) {
            int own = strcmp(e->consumer, consumer) == 0;
            if (pass == 0 ? !own : own || now_ms - e->handed_ms < lim.claim_ms)
                continue;
            if (hand_out(e, consumer, now_ms, out, n))
                return CW_EUNAVAIL;
        }
    return 0;
}

/* Then the events sent back, then new ones: each becomes held by the consumer. */
static int read_fresh(struct mem_shared *sh, struct mem_sink *k, const char *consumer, size_t max, int64_t now_ms,
                      struct store_event *out, size_t *n)
{
    while (*n < max && k->redo.head) {
        struct mem_ev *e = evq_take(&k->redo, &k->redo.head, NULL);
        evq_push(&k->held, e);
        if (hand_out(e, consumer, now_ms, out, n))
            return CW_EUNAVAIL;  /* held: handed out again by a later read */
    }
    for (struct mem_ev *q = sh->out.queue.head; q && *n < max; q = q->next) {
        if (q->qseq <= k->cursor)
            continue;
        struct mem_ev *e = calloc(1, sizeof *e);
        if (!e || event_copy(&q->ev, &e->ev)) {
            free(e);
            return CW_EUNAVAIL;
        }
        e->n = q->n;
        sh->bytes += mev_bytes(e);
        evq_push(&k->held, e);
        k->cursor = q->qseq;
        if (hand_out(e, consumer, now_ms, out, n))
            return CW_EUNAVAIL;
    }
    return 0;
}

static int mem_out_read(struct store *s, const char *sink, const char *consumer, size_t max, int64_t now_ms,
                        struct store_event *out, size_t *n)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    int rc;
    *n = 0;
    if (!store_consumer_name_valid(consumer))
        return CW_EINVAL;
    struct mem_sink *k = sink_lock(sh, sink, &rc);
    if (!k)
        return rc;
    if (max > STORE_OUT_READ_MAX)
        max = STORE_OUT_READ_MAX;
    rc = read_held(k, consumer, max, now_ms, out, n);
    if (!rc)
        rc = read_fresh(sh, k, consumer, max, now_ms, out, n);
    pthread_mutex_unlock(&sh->mu);
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            store_event_free(&out[i]);
        *n = 0;
    }
    return rc;
}

/* Drops the held event of that entry, if any. */
static void held_drop(struct mem_shared *sh, struct mem_sink *k, const char *entry)
{
    uint64_t want = entry_n(entry);
    for (struct mem_ev **p = &k->held.head, *prev = NULL; *p; prev = *p, p = &(*p)->next)
        if ((*p)->n == want && strcmp((*p)->ev.entry, entry) == 0) {
            mev_free(sh, evq_take(&k->held, p, prev));
            return;
        }
}

static int mem_out_ack(struct store *s, const char *sink, const char *const *entries, size_t n)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    int rc;
    struct mem_sink *k = sink_lock(sh, sink, &rc);
    if (!k)
        return rc;
    for (size_t i = 0; i < n; i++)
        held_drop(sh, k, entries[i]);
    pthread_mutex_unlock(&sh->mu);
    return 0;
}

/* Adds a dead letter of ev to the sink, dropping the oldest past the bound (counted). */
static int dead_add(struct mem_shared *sh, struct mem_sink *k, const struct store_event *ev, const char *reason,
                    int64_t now_ms)
{
    struct store_out_limits lim;
    store_out_get_limits(&lim);
    while (k->dead.n && k->dead.n >= lim.dead_max) {
        mev_free(sh, evq_take(&k->dead, &k->dead.head, NULL));
        k->dead_dropped++;
    }
    struct mem_ev *d = mev_new(sh, ev, now_ms);
    if (!d)
        return CW_EUNAVAIL;
    snprintf(d->ev.reason, sizeof d->ev.reason, "%s", reason ? reason : "");
    if (lim.dead_max)
        evq_push(&k->dead, d);
    else {
        mev_free(sh, d);
        k->dead_dropped++;
    }
    return 0;
}

static int mem_out_dead(struct store *s, const char *sink, const struct store_event *ev, const char *reason,
                        int64_t now_ms)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    int rc;
    struct mem_sink *k = sink_lock(sh, sink, &rc);
    if (!k)
        return rc;
    rc = dead_add(sh, k, ev, reason, now_ms);
    if (!rc)
        held_drop(sh, k, ev->entry);
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

/* Forgets the queue events every sink's cursor has passed (held ones are the sinks' copies). */
static void queue_forget(struct mem_shared *sh)
{
    uint64_t min = sh->out.qseq;
    for (size_t i = 0; i < sh->out.n_sinks; i++)
        if (sh->out.sinks[i].cursor < min)
            min = sh->out.sinks[i].cursor;
    while (sh->out.queue.head && sh->out.queue.head->qseq <= min)
        mev_free(sh, evq_take(&sh->out.queue, &sh->out.queue.head, NULL));
}

static int mem_out_trim(struct store *s, const char *sink, int64_t now_ms, size_t *dead_lettered)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    int rc;
    *dead_lettered = 0;
    struct mem_sink *k = sink_lock(sh, sink, &rc);
    if (!k)
        return rc;
    struct store_out_limits lim;
    store_out_get_limits(&lim);
    for (struct mem_ev *q = sh->out.queue.head; q && sh->out.qseq - k->cursor > lim.out_max && !rc; q = q->next) {
        if (q->qseq <= k->cursor)
            continue;
        rc = dead_add(sh, k, &q->ev, "outbox full", now_ms);
        if (!rc) {
            k->cursor = q->qseq;
            (*dead_lettered)++;
        }
    }
    queue_forget(sh);
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

static int mem_out_stats(struct store *s, const char *sink, int64_t now_ms, struct store_out_stats *st)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    int rc;
    (void)now_ms;
    memset(st, 0, sizeof *st);
    struct mem_sink *k = sink_lock(sh, sink, &rc);
    if (!k)
        return rc;
    st->depth = sh->out.qseq - k->cursor + k->redo.n;
    st->held = k->held.n;
    st->dead = k->dead.n;
    st->dead_dropped = k->dead_dropped;
    const struct mem_ev *first[3] = { k->held.head, k->redo.head, NULL };
    for (const struct mem_ev *q = sh->out.queue.head; q && !first[2]; q = q->next)
        if (q->qseq > k->cursor)
            first[2] = q;
    for (int i = 0; i < 3; i++)
        for (const struct mem_ev *e = first[i]; e; e = i == 0 ? e->next : NULL)
            if (!st->oldest_ms || e->ev.queued_ms < st->oldest_ms)
                st->oldest_ms = e->ev.queued_ms;
    pthread_mutex_unlock(&sh->mu);
    return 0;
}

static int mem_dead_list(struct store *s, const char *sink, const char *after, size_t limit,
                         struct store_event *out, size_t *n, int *more)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    int rc;
    *n = 0;
    *more = 0;
    struct mem_sink *k = sink_lock(sh, sink, &rc);
    if (!k)
        return rc;
    uint64_t from = after && *after ? entry_n(after) : 0;
    for (const struct mem_ev *e = k->dead.head; e && !rc; e = e->next) {
        if (e->n <= from)
            continue;
        if (*n >= limit) {
            *more = 1;
            break;
        }
        rc = event_copy(&e->ev, &out[*n]);
        if (!rc)
            (*n)++;
    }
    pthread_mutex_unlock(&sh->mu);
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            store_event_free(&out[i]);
        *n = 0;
    }
    return rc;
}

static int mem_dead_retry(struct store *s, const char *sink, const char *entry, int64_t now_ms, size_t *moved)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    int rc;
    *moved = 0;
    struct mem_sink *k = sink_lock(sh, sink, &rc);
    if (!k)
        return rc;
    uint64_t want = entry ? entry_n(entry) : 0;
    for (struct mem_ev **p = &k->dead.head, *prev = NULL; *p;) {
        if (entry && ((*p)->n != want || strcmp((*p)->ev.entry, entry) != 0)) {
            prev = *p;
            p = &(*p)->next;
            continue;
        }
        struct mem_ev *e = evq_take(&k->dead, p, prev);
        e->ev.reason[0] = 0;
        e->ev.retried_ms = now_ms;
        e->n = ++sh->out.entry_n;  /* a new entry: the dead letter's id is gone */
        snprintf(e->ev.entry, sizeof e->ev.entry, "%lld-%llu", (long long)e->ev.queued_ms, (unsigned long long)e->n);
        evq_push(&k->redo, e);
        (*moved)++;
        if (entry)
            break;
    }
    pthread_mutex_unlock(&sh->mu);
    return entry && !*moved ? CW_ENOTFOUND : 0;
}

static void out_free(struct mem_shared *sh)
{
    evq_clear(sh, &sh->out.queue);
    for (size_t i = 0; i < sh->out.n_sinks; i++) {
        evq_clear(sh, &sh->out.sinks[i].held);
        evq_clear(sh, &sh->out.sinks[i].redo);
        evq_clear(sh, &sh->out.sinks[i].dead);
    }
}

static int mem_ping(struct store *s)
{
    (void)s;
    return 0;
}

static const char *mem_why(struct store *s)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    pthread_mutex_lock(&sh->mu);
    int full = sh->full;  /* of the last commit or finding write, by any handle */
    pthread_mutex_unlock(&sh->mu);
    return full ? "the embedded store is at its memory bound (CREDWATCH_STORE_MAX_BYTES) and holds only keys "
                  "with findings"
                : "";
}

static struct store *mem_clone(struct store *s);

static void mem_free(struct store *s)
{
    struct mem_store *m = (struct mem_store *)s;
    struct mem_shared *sh = m->sh;
    pthread_mutex_lock(&sh->mu);
    int last = --sh->refs == 0;
    pthread_mutex_unlock(&sh->mu);
    free(m->blobs);
    free(m);
    if (!last)
        return;
    for (size_t i = 0; i < sh->n_buckets; i++)
        for (struct mem_key *k = sh->keys[i], *next; k; k = next) {
            next = k->next;
            key_free(k);
        }
    for (size_t i = 0; i < sh->n_fbuckets; i++)
        for (struct mem_finding *f = sh->findings[i], *next; f; f = next) {
            next = f->next;
            free(f->evidence);
            free(f->note);
            free(f);
        }
    out_free(sh);
    free(sh->keys);
    free(sh->findings);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

/* Tests only (store.h, enum store_fault): the outbox fault shrinks the bound to what the store holds,
 * so the next event meets the real refusal at the bound (a store holding keys without findings
 * gives those up first: the contract suite's test holds none); clearing gives the bound back. */
static int mem_test_fault(struct store *s, int fault)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    if (fault != STORE_FAULT_NONE && fault != STORE_FAULT_OUTBOX)
        return CW_EINVAL;
    pthread_mutex_lock(&sh->mu);
    if (fault == STORE_FAULT_OUTBOX && !sh->fault_max_bytes) {
        sh->fault_max_bytes = sh->max_bytes;
        sh->max_bytes = sh->bytes;
    } else if (fault == STORE_FAULT_NONE && sh->fault_max_bytes) {
        sh->max_bytes = sh->fault_max_bytes;
        sh->fault_max_bytes = 0;
    }
    pthread_mutex_unlock(&sh->mu);
    return 0;
}

static const struct store_ops mem_ops = {
    .name = "memory",
    .ids_private = 1,
    .load = mem_load,
    .commit = mem_commit,
    .finding_put = mem_finding_put,
    .finding_get = mem_finding_get,
    .finding_list = mem_finding_list,
    .finding_patch = mem_finding_patch,
    .out_open = mem_out_open,
    .out_read = mem_out_read,
    .out_ack = mem_out_ack,
    .out_dead = mem_out_dead,
    .out_trim = mem_out_trim,
    .out_stats = mem_out_stats,
    .dead_list = mem_dead_list,
    .dead_retry = mem_dead_retry,
    .ping = mem_ping,
    .why = mem_why,
    .clone = mem_clone,
    .free = mem_free,
    .test_fault = mem_test_fault,
};

static struct store *handle_new(struct mem_shared *sh)
{
    struct mem_store *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->base.ops = &mem_ops;
    m->sh = sh;
    return &m->base;
}

static struct store *mem_clone(struct store *s)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    struct store *c = handle_new(sh);
    if (c) {
        pthread_mutex_lock(&sh->mu);
        sh->refs++;
        pthread_mutex_unlock(&sh->mu);
    }
    return c;
}

void store_mem_limit(struct store *s, size_t max_bytes)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    pthread_mutex_lock(&sh->mu);
    sh->max_bytes = max_bytes;
    pthread_mutex_unlock(&sh->mu);
}

void store_mem_stats(struct store *s, struct store_mem_stats *out)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    pthread_mutex_lock(&sh->mu);
    out->keys = sh->n_keys;
    out->findings = sh->n_findings;
    out->bytes = sh->bytes;
    out->max_bytes = sh->max_bytes;
    out->evicted_pending = sh->evicted[STORE_KEEP_PENDING];
    out->evicted_lambda = sh->evicted[STORE_KEEP_WORKLOAD];
    out->list_walked = sh->list_walked;
    pthread_mutex_unlock(&sh->mu);
}

struct store *store_mem_new(void)
{
    struct mem_shared *sh = calloc(1, sizeof *sh);
    if (!sh)
        return NULL;
    sh->n_buckets = MEM_INITIAL_BUCKETS;
    sh->n_fbuckets = MEM_FINDING_BUCKETS;
    sh->keys = calloc(sh->n_buckets, sizeof *sh->keys);
    sh->findings = calloc(sh->n_fbuckets, sizeof *sh->findings);
    struct store *s = sh->keys && sh->findings ? handle_new(sh) : NULL;
    if (!s) {
        free(sh->keys);
        free(sh->findings);
        free(sh);
        return NULL;
    }
    pthread_mutex_init(&sh->mu, NULL);
    sh->refs = 1;
    sh->max_bytes = STORE_MEM_DEFAULT_BYTES;
    sh->order_rng = 0x9E3779B97F4A7C15ull;  /* any state but 0: the levels change the cost, never the order */
    return s;
}
