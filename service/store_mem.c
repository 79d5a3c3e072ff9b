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
#define MEM_EVICT_TO_PCT 90            /* an eviction pass frees down to this share of the bound */
#define MEM_ROOM_RETRY_MS 1000         /* after a pass that could not free enough (keys with findings
                                        * fill the bound): refuse new keys at once until then, instead
                                        * of walking the table on every commit */

struct mem_key {
    struct mem_key *next;
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
    int64_t created_ms, updated_ms;
    uint64_t version;    /* key state version the evidence came from */
};

struct mem_shared {
    pthread_mutex_t mu;
    int refs;
    struct mem_key **keys;
    size_t n_buckets, n_keys;
    struct mem_finding **findings;
    size_t n_fbuckets, n_findings;
    uint64_t commits;
    size_t bytes, max_bytes;          /* counted: keys, dedup sets, findings */
    uint64_t evicted[STORE_KEEP_FINDING];  /* per class evicted */
    int full;                         /* the last call was refused at the bound (for store_why) */
    int64_t room_retry_ms;            /* an eviction pass that could not reach its target: no other before */
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
    return sizeof *f + (f->evidence ? strlen(f->evidence) + 1 : 0) + (f->note ? strlen(f->note) + 1 : 0);
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
    struct mem_key **p = &sh->keys[det_id_hash(akid) & (sh->n_buckets - 1)];
    while (*p && strcmp((*p)->akid, akid) != 0)
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
            size_t b = det_id_hash(k->akid) & (n - 1);
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
    if (sh->n_keys > sh->n_buckets * 2)
        grow_keys(sh);  /* on failure the chains just get longer */
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

static int mem_finding_put(struct store *s, struct store_finding_put *items, size_t n)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    int rc = 0;
    pthread_mutex_lock(&sh->mu);
    for (size_t i = 0; i < n; i++) {
        struct store_finding_put *u = &items[i];
        struct mem_finding **slot = finding_slot(sh, u->id), *f = *slot;
        char *ev = dup_str(u->evidence_json);
        u->created = 0;
        if (!ev) {
            rc = CW_EUNAVAIL;
            continue;
        }
        if (f && (u->ensure || u->version < f->version)) {
            free(ev);  /* evidence from an older state than the one stored: keep the newer */
            continue;
        }
        if (!f) {
            size_t need = sizeof *f + strlen(ev) + 1;
            make_room(sh, cw_now_ms(), need);
            if (sh->n_findings >= MEM_MAX_FINDINGS || sh->bytes + need > sh->max_bytes ||
                !(f = calloc(1, sizeof *f))) {
                free(ev);
                rc = CW_EUNAVAIL;
                sh->full = 1;
                continue;
            }
            snprintf(f->id, sizeof f->id, "%s", u->id);
            f->created_ms = u->now_ms;
            f->status = store_next_status(0, 0, u->new_outside);
            f->next = *slot;
            *slot = f;
            sh->n_findings++;
            u->created = 1;
        } else {
            f->status = store_next_status(f->status, 1, u->new_outside);
            sh->bytes -= finding_bytes(f);
        }
        free(f->evidence);
        f->evidence = ev;
        sh->bytes += finding_bytes(f);
        f->version = u->version;
        f->updated_ms = u->now_ms;
        f->severity = u->severity ? det_severity_parse(u->severity) : -1;
        snprintf(f->account, sizeof f->account, "%s", u->account ? u->account : "");
        snprintf(f->function, sizeof f->function, "%s", u->function ? u->function : "");
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

/* Newest first: created_ms descending, then id descending (a total order for the cursor). */
static int before(int64_t ams, const char *aid, int64_t bms, const char *bid)
{
    if (ams != bms)
        return ams > bms;
    return strcmp(aid, bid) > 0;
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
    if (q->since_ms && f->created_ms < q->since_ms)
        return 0;
    if (q->until_ms && f->created_ms > q->until_ms)
        return 0;
    if ((q->after_ms || q->after_id[0]) && !before(q->after_ms, q->after_id, f->created_ms, f->id))
        return 0;
    return 1;
}

static int mem_finding_list(struct store *s, const struct store_query *q, struct store_finding *out,
                            size_t *n_out, int *more)
{
    struct mem_shared *sh = ((struct mem_store *)s)->sh;
    size_t limit = q->limit ? q->limit : 1;
    /* selection of the `limit` newest matching findings: a sorted window, one pass */
    const struct mem_finding **win = calloc(limit + 1, sizeof *win);
    if (!win)
        return CW_EUNAVAIL;
    size_t n = 0, total = 0;
    pthread_mutex_lock(&sh->mu);
    for (size_t b = 0; b < sh->n_fbuckets; b++) {
        for (const struct mem_finding *f = sh->findings[b]; f; f = f->next) {
            if (!matches(f, q))
                continue;
            total++;
            size_t pos = n;
            while (pos > 0 && before(f->created_ms, f->id, win[pos - 1]->created_ms, win[pos - 1]->id))
                pos--;
            if (pos >= limit)
                continue;
            size_t move = (n < limit ? n : limit - 1) - pos;
            memmove(&win[pos + 1], &win[pos], move * sizeof *win);
            win[pos] = f;
            if (n < limit)
                n++;
        }
    }
    int rc = 0;
    size_t i;
    for (i = 0; i < n && !rc; i++)
        rc = copy_out(win[i], &out[i]);
    pthread_mutex_unlock(&sh->mu);
    free(win);
    if (rc) {
        while (i-- > 0)
            store_finding_free(&out[i]);
        return rc;
    }
    *n_out = n;
    *more = total > n;
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
            if (status >= 0)
                f->status = status;
            f->updated_ms = now_ms;
        }
    }
    pthread_mutex_unlock(&sh->mu);
    return rc;
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
    free(sh->keys);
    free(sh->findings);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

static const struct store_ops mem_ops = {
    .name = "memory",
    .load = mem_load,
    .commit = mem_commit,
    .finding_put = mem_finding_put,
    .finding_get = mem_finding_get,
    .finding_list = mem_finding_list,
    .finding_patch = mem_finding_patch,
    .ping = mem_ping,
    .why = mem_why,
    .clone = mem_clone,
    .free = mem_free,
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
    out->evicted_lambda = sh->evicted[STORE_KEEP_LAMBDA];
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
    return s;
}
