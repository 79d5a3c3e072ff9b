/* store_redis.c — the store on Redis, shared by any number of credwatch instances.
 *
 * Layout (every key of one access key shares the hash tag {AKID}, so it also works on a cluster):
 *   cw:k:{AKID}   string: 8-byte big-endian version + det_encode blob; PXAT = key expiry
 *   cw:s:{AKID}   set of event-id hashes (signed 64-bit integers: Redis keeps them as an intset)
 *   cw:f:{ID}     hash: ev (evidence JSON), st (status), nt (note), ca/ua (created/updated ms),
 *                 sv (severity), ac (account), fn (function), ver (key version of the evidence)
 *   cw:fidx       sorted set: finding id by created_ms, for listing newest first
 * Writes of key state are a compare-and-set in one Lua script (version check, SET, SADD), so two
 * instances never lose each other's events. Every batch is pipelined (one round trip per node per
 * call) through redis_conn, which also speaks the cluster protocol: the same code runs on a
 * Redis Cluster (CREDWATCH_REDIS_CLUSTER), since each script touches keys of one slot only.
 * Loads are a plain pipelined GET + SMISMEMBER: if another instance commits in between, the
 * version check of the commit fails and the engine reloads.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "detect.h"
#include "event.h"
#include "redis_conn.h"

#define RS_VERSION_BYTES 8
#define RS_LIST_SCAN_MAX 5000           /* index entries examined per list call (filters) */
#define RS_LIST_BATCH 200               /* index entries fetched per round trip while listing */
#define RS_LIST_TIE_ROUNDS 5000         /* windows skipped at one score when the cursor's entry is gone
                                         * (5000 x 200 = a million findings created in one millisecond) */
#define RS_SADD_CHUNK "1000"            /* unpack() has a stack limit: add hashes in chunks */
#define RS_INDEX "cw:fidx"
#define RS_KEY_MAX 96

struct rs_store {
    struct store base;
    struct rconn *rc;
    struct rconn_batch *b;
    int s_commit, s_fput, s_patch;   /* script indices */
    char *loaded;                    /* blobs returned by load(), valid until the next call */
    size_t loaded_cap;
};

/* CAS of one key's state and dedup set. KEYS: state, seen. ARGV: expected version ("" = absent),
 * new value, expire-at ms, dedup cap, hashes... Returns 1 written, 0 version changed. */
static const char script_commit[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "local v = cur and string.sub(cur, 1, 8) or ''\n"
    "if v ~= ARGV[1] then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])\n"
    "if #ARGV > 4 then\n"
    "  local room = tonumber(ARGV[4]) - redis.call('SCARD', KEYS[2])\n"
    "  local last = math.min(#ARGV, 4 + room)\n"
    "  for i = 5, last, " RS_SADD_CHUNK " do\n"
    "    redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + " RS_SADD_CHUNK " - 1, last)))\n"
    "  end\n"
    "  redis.call('PEXPIREAT', KEYS[2], ARGV[3])\n"
    "end\n"
    "return 1\n";

/* Evidence update of one finding (status rule of store_next_status). KEYS: finding.
 * ARGV: evidence, severity, account, function, version, new_outside, now_ms, retention_ms,
 * ensure ("1": create only when absent). Returns {created, created_ms}; created = -1 when nothing
 * was written (the stored evidence is newer, or ensure and it exists). */
static const char script_fput[] =
    "local ca = redis.call('HGET', KEYS[1], 'ca')\n"
    "local created = 0\n"
    "if ca and ARGV[9] == '1' then return {-1, ca} end\n"
    "if ca then\n"
    "  local ver = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')\n"
    "  if tonumber(ARGV[5]) < ver then return {-1, ca} end\n"
    "  local st = redis.call('HGET', KEYS[1], 'st')\n"
    "  if ARGV[6] == '1' and (st == 'resolved' or st == 'retracted') then st = 'open' end\n"
    "  redis.call('HSET', KEYS[1], 'st', st)\n"
    "else\n"
    "  created = 1\n"
    "  ca = ARGV[7]\n"
    "  redis.call('HSET', KEYS[1], 'st', 'open', 'ca', ca)\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'ev', ARGV[1], 'sv', ARGV[2], 'ac', ARGV[3], 'fn', ARGV[4], 'ver', ARGV[5],"
    " 'ua', ARGV[7])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[8])\n"
    "return {created, ca}\n";

/* Status/note change of an existing finding. KEYS: finding. ARGV: status ("" = keep it), note
 * ("keep" = keep it, else "=" and the note: the prefix keeps a note that reads "keep" from meaning
 * "keep it"), now_ms. Returns 1, or 0 when the finding does not exist. */
static const char script_patch[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'st', ARGV[1]) end\n"
    "if ARGV[2] ~= 'keep' then redis.call('HSET', KEYS[1], 'nt', string.sub(ARGV[2], 2)) end\n"
    "redis.call('HSET', KEYS[1], 'ua', ARGV[3])\n"
    "return 1\n";

static void key_name(char *out, size_t size, char kind, const char *id)
{
    snprintf(out, size, "cw:%c:{%s}", kind, id);
}

/* Runs the batch; an error reply of any command (NOSCRIPT is handled below us; OOM, READONLY,
 * CROSSSLOT ...) fails the call as unavailable: the caller answers 503 and the sender retries. */
static int run(struct rs_store *r)
{
    if (rconn_batch_exec(r->rc, r->b))
        return CW_EUNAVAIL;
    for (size_t i = 0; i < rconn_batch_size(r->b); i++) {
        redisReply *x = rconn_batch_reply(r->b, i);
        if (!x || x->type == REDIS_REPLY_ERROR)
            return CW_EUNAVAIL;
    }
    return 0;
}

/* ---- key state ------------------------------------------------------------------------------ */

static int rs_load(struct store *s, struct store_load *items, size_t n)
{
    struct rs_store *r = (struct rs_store *)s;
    if (!n)
        return 0;
    rconn_batch_reset(r->b);
    char kbuf[RS_KEY_MAX], sk[RS_KEY_MAX];
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        key_name(kbuf, sizeof kbuf, 'k', items[i].akid);
        if (rconn_batch_add(r->b, kbuf, "GET %s", kbuf) < 0)
            rc = CW_EUNAVAIL;
        if (items[i].n_hashes && !rc) {
            size_t argc = items[i].n_hashes + 2;
            const char **argv = malloc(argc * sizeof *argv);
            size_t *lens = malloc(argc * sizeof *lens);
            char (*nums)[24] = malloc(items[i].n_hashes * sizeof *nums);
            if (argv && lens && nums) {
                key_name(sk, sizeof sk, 's', items[i].akid);
                argv[0] = "SMISMEMBER";
                lens[0] = 10;
                argv[1] = sk;
                lens[1] = strlen(sk);
                for (size_t j = 0; j < items[i].n_hashes; j++) {
                    snprintf(nums[j], sizeof nums[j], "%lld", (long long)(int64_t)items[i].hashes[j]);
                    argv[j + 2] = nums[j];
                    lens[j + 2] = strlen(nums[j]);
                }
                if (rconn_batch_add_argv(r->b, sk, (int)argc, argv, lens) < 0)
                    rc = CW_EUNAVAIL;
            } else {
                rc = CW_EUNAVAIL;
            }
            free(argv);
            free(lens);
            free(nums);
        }
    }
    if (rc || (rc = run(r)))
        return rc;
    size_t need = 0;
    for (size_t i = 0, k = 0; i < n; k += items[i].n_hashes ? 2 : 1, i++) {
        redisReply *g = rconn_batch_reply(r->b, k);
        if (g->type == REDIS_REPLY_STRING)
            need += g->len;
    }
    if (need > r->loaded_cap) {
        char *nb = realloc(r->loaded, need);
        if (!nb)
            return CW_EUNAVAIL;
        r->loaded = nb;
        r->loaded_cap = need;
    }
    size_t off = 0;
    for (size_t i = 0, k = 0; i < n; i++) {
        struct store_load *it = &items[i];
        redisReply *g = rconn_batch_reply(r->b, k++);
        it->blob = NULL;
        it->blob_len = 0;
        it->version = 0;
        if (g->type == REDIS_REPLY_STRING && g->len > RS_VERSION_BYTES) {
            uint64_t v = 0;
            for (int b = 0; b < RS_VERSION_BYTES; b++)
                v = v << 8 | (uint8_t)g->str[b];
            it->version = v;
            memcpy(r->loaded + off, g->str + RS_VERSION_BYTES, g->len - RS_VERSION_BYTES);
            it->blob = (const uint8_t *)r->loaded + off;
            it->blob_len = g->len - RS_VERSION_BYTES;
            off += g->len - RS_VERSION_BYTES;
        }
        if (it->n_hashes) {
            redisReply *m = rconn_batch_reply(r->b, k++);
            for (size_t j = 0; j < it->n_hashes; j++)
                it->seen[j] = m->type == REDIS_REPLY_ARRAY && j < m->elements &&
                              m->element[j]->type == REDIS_REPLY_INTEGER && m->element[j]->integer == 1;
        }
    }
    return 0;
}

static void put_version(char *out, uint64_t v)
{
    for (int b = RS_VERSION_BYTES - 1; b >= 0; b--) {
        out[b] = (char)(v & 0xff);
        v >>= 8;
    }
}

static int rs_commit(struct store *s, struct store_commit *items, size_t n)
{
    struct rs_store *r = (struct rs_store *)s;
    if (!n)
        return 0;
    rconn_batch_reset(r->b);
    for (size_t i = 0; i < n; i++) {
        struct store_commit *c = &items[i];
        size_t nargs = 4 + c->n_hashes;
        const char **args = malloc(nargs * sizeof *args);
        size_t *lens = malloc(nargs * sizeof *lens);
        char (*nums)[24] = malloc((c->n_hashes + 2) * sizeof *nums);
        char *val = malloc(RS_VERSION_BYTES + c->blob_len);
        char expected[RS_VERSION_BYTES], kk[RS_KEY_MAX], sk[RS_KEY_MAX];
        int added = -1;
        if (args && lens && nums && val) {
            key_name(kk, sizeof kk, 'k', c->akid);
            key_name(sk, sizeof sk, 's', c->akid);
            put_version(expected, c->version);
            put_version(val, c->new_version);
            memcpy(val + RS_VERSION_BYTES, c->blob, c->blob_len);
            snprintf(nums[0], sizeof nums[0], "%lld", (long long)c->expire_at_ms);
            snprintf(nums[1], sizeof nums[1], "%d", STORE_SEEN_MAX);
            size_t a = 0;
            args[a] = expected, lens[a++] = c->version ? RS_VERSION_BYTES : 0;
            args[a] = val, lens[a++] = RS_VERSION_BYTES + c->blob_len;
            args[a] = nums[0], lens[a++] = strlen(nums[0]);
            args[a] = nums[1], lens[a++] = strlen(nums[1]);
            for (size_t j = 0; j < c->n_hashes; j++) {
                snprintf(nums[j + 2], sizeof nums[0], "%lld", (long long)(int64_t)c->hashes[j]);
                args[a] = nums[j + 2], lens[a++] = strlen(nums[j + 2]);
            }
            const char *keys[2] = { kk, sk };
            added = rconn_batch_eval(r->b, r->s_commit, 2, keys, (int)a, args, lens);
        }
        free(args);
        free(lens);
        free(nums);
        free(val);
        if (added < 0)
            return CW_EUNAVAIL;
    }
    int rc = run(r);
    for (size_t i = 0; i < n; i++) {
        redisReply *x = rconn_batch_reply(r->b, i);
        items[i].ok = !rc && x && x->type == REDIS_REPLY_INTEGER && x->integer == 1;
    }
    return rc;
}

/* ---- findings -------------------------------------------------------------------------------- */

static int rs_finding_put(struct store *s, struct store_finding_put *items, size_t n)
{
    struct rs_store *r = (struct rs_store *)s;
    if (!n)
        return 0;
    rconn_batch_reset(r->b);
    char fk[RS_KEY_MAX], ver[24], now[24], ret[24];
    snprintf(ret, sizeof ret, "%lld", (long long)STORE_FINDING_RETENTION_S * 1000);
    for (size_t i = 0; i < n; i++) {
        struct store_finding_put *u = &items[i];
        key_name(fk, sizeof fk, 'f', u->id);
        snprintf(ver, sizeof ver, "%llu", (unsigned long long)u->version);
        snprintf(now, sizeof now, "%lld", (long long)u->now_ms);
        const char *keys[1] = { fk };
        const char *args[9] = { u->evidence_json, u->severity ? u->severity : "", u->account ? u->account : "",
                                u->function ? u->function : "", ver, u->new_outside ? "1" : "0",
                                now, ret, u->ensure ? "1" : "0" };
        if (rconn_batch_eval(r->b, r->s_fput, 1, keys, 9, args, NULL) < 0)
            return CW_EUNAVAIL;
    }
    int rc = run(r);
    if (rc)
        return rc;
    /* created_ms as the script answered it, before the batch is reused for the index */
    char (*cas)[24] = malloc(n * sizeof *cas);
    if (!cas)
        return CW_EUNAVAIL;
    for (size_t i = 0; i < n; i++) {
        redisReply *x = rconn_batch_reply(r->b, i);
        items[i].created = 0;
        if (x->type != REDIS_REPLY_ARRAY || x->elements != 2 || x->element[0]->type != REDIS_REPLY_INTEGER) {
            free(cas);
            return CW_EUNAVAIL;
        }
        items[i].created = x->element[0]->integer == 1;
        snprintf(cas[i], sizeof cas[i], "%s", x->element[1]->type == REDIS_REPLY_STRING ? x->element[1]->str : "0");
    }
    /* the listing index: created_ms is fixed at creation, so ZADD NX is idempotent */
    rconn_batch_reset(r->b);
    for (size_t i = 0; i < n && !rc; i++)
        if (rconn_batch_add(r->b, RS_INDEX, "ZADD %s NX %s %s", RS_INDEX, cas[i], items[i].id) < 0)
            rc = CW_EUNAVAIL;
    free(cas);
    return rc ? rc : run(r);
}

static char *dup_n(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* HGETALL reply to a finding; returns 0, CW_ENOTFOUND for an empty hash. Fills the filter
 * fields too (sv, ac, fn) when asked. */
static int parse_finding(const redisReply *h, const char *id, struct store_finding *out, int *sev, char *acct,
                         size_t acct_size, char *fn, size_t fn_size)
{
    memset(out, 0, sizeof *out);
    if (h->type != REDIS_REPLY_ARRAY || h->elements == 0)
        return CW_ENOTFOUND;
    snprintf(out->id, sizeof out->id, "%s", id);
    if (sev)
        *sev = -1;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *k = h->element[i], *v = h->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(k->str, "ev") == 0)
            out->evidence_json = dup_n(v->str, v->len);
        else if (strcmp(k->str, "nt") == 0)
            out->note = dup_n(v->str, v->len);
        else if (strcmp(k->str, "st") == 0)
            out->status = store_status_parse(v->str) < 0 ? STORE_ST_OPEN : store_status_parse(v->str);
        else if (strcmp(k->str, "ca") == 0)
            out->created_ms = strtoll(v->str, NULL, 10);
        else if (strcmp(k->str, "ua") == 0)
            out->updated_ms = strtoll(v->str, NULL, 10);
        else if (sev && strcmp(k->str, "sv") == 0)
            *sev = det_severity_parse(v->str);
        else if (acct && strcmp(k->str, "ac") == 0)
            snprintf(acct, acct_size, "%s", v->str);
        else if (fn && strcmp(k->str, "fn") == 0)
            snprintf(fn, fn_size, "%s", v->str);
    }
    if (!out->evidence_json) {
        store_finding_free(out);
        return CW_ENOTFOUND;
    }
    return 0;
}

static int rs_finding_get(struct store *s, const char *id, struct store_finding *out)
{
    struct rs_store *r = (struct rs_store *)s;
    char fk[RS_KEY_MAX];
    key_name(fk, sizeof fk, 'f', id);
    rconn_batch_reset(r->b);
    if (rconn_batch_add(r->b, fk, "HGETALL %s", fk) < 0)
        return CW_EUNAVAIL;
    int rc = run(r);
    return rc ? rc : parse_finding(rconn_batch_reply(r->b, 0), id, out, NULL, NULL, 0, NULL, 0);
}

/* One listing in progress (rs_finding_list): the cursor, moved past every entry examined; the
 * window of index entries last read; the page so far. */
struct rs_list {
    const struct store_query *q;
    struct store_finding *out;
    size_t limit, n, examined;
    int64_t after_ms;
    char after_id[STORE_ID_MAX];
    int have_after, more;
    size_t tie_skip, tie_rounds;       /* windows skipped at the cursor's score (its entry gone) */
    char (*ids)[STORE_ID_MAX];         /* the window, RS_LIST_BATCH entries at most */
    int64_t *scores;
    size_t fetched;
};

/* Decodes the query's cursor into l. 0 or CW_EUNAVAIL (out of memory). */
static int list_start(struct rs_list *l, const struct store_query *q, struct store_finding *out)
{
    memset(l, 0, sizeof *l);
    l->q = q;
    l->out = out;
    l->limit = q->limit ? q->limit : 1;
    l->after_ms = q->after_ms;
    snprintf(l->after_id, sizeof l->after_id, "%s", q->after_id);
    l->have_after = l->after_ms || l->after_id[0];
    l->ids = malloc(RS_LIST_BATCH * sizeof *l->ids);
    l->scores = malloc(RS_LIST_BATCH * sizeof *l->scores);
    if (!l->ids || !l->scores) {
        free(l->ids);
        free(l->scores);
        return CW_EUNAVAIL;
    }
    return 0;
}

/* After a cursor whose entry is still indexed, the listing continues right after it by rank: any
 * number of findings may share its millisecond (one request can create thousands). *rank is that
 * entry's rank, or -1 when there is no cursor or its entry is gone (expired and unindexed). */
static int list_cursor_rank(struct rs_store *r, const struct rs_list *l, long long *rank)
{
    *rank = -1;
    if (!l->have_after)
        return 0;
    rconn_batch_reset(r->b);
    if (rconn_batch_add(r->b, RS_INDEX, "ZREVRANK %s %s", RS_INDEX, l->after_id) < 0 ||
        rconn_batch_add(r->b, RS_INDEX, "ZSCORE %s %s", RS_INDEX, l->after_id) < 0 || run(r))
        return CW_EUNAVAIL;
    redisReply *rk = rconn_batch_reply(r->b, 0), *zs = rconn_batch_reply(r->b, 1);
    if (rk->type == REDIS_REPLY_INTEGER && zs->type == REDIS_REPLY_STRING &&
        strtoll(zs->str, NULL, 10) == l->after_ms)
        *rank = rk->integer;
    return 0;
}

/* Reads the next window of the index into l->ids and l->scores (l->fetched of them): by rank after
 * the cursor's entry, else by score, leaving out the entries at the cursor's score that sort before
 * it, a window further each time (tie_skip). *exhausted: no entry (in range) follows the window. */
static int list_window(struct rs_store *r, struct rs_list *l, long long rank, int *exhausted)
{
    const struct store_query *q = l->q;
    char max[32], min[32];
    if (l->have_after)
        snprintf(max, sizeof max, "%lld", (long long)l->after_ms);
    else if (q->until_ms)
        snprintf(max, sizeof max, "%lld", (long long)q->until_ms);
    else
        snprintf(max, sizeof max, "+inf");
    if (q->since_ms)
        snprintf(min, sizeof min, "%lld", (long long)q->since_ms);
    else
        snprintf(min, sizeof min, "-inf");
    rconn_batch_reset(r->b);
    int added = rank >= 0
                    ? rconn_batch_add(r->b, RS_INDEX, "ZREVRANGE %s %lld %lld WITHSCORES", RS_INDEX, rank + 1,
                                      rank + RS_LIST_BATCH)
                    : rconn_batch_add(r->b, RS_INDEX, "ZREVRANGEBYSCORE %s %s %s WITHSCORES LIMIT %lld %d", RS_INDEX,
                                      max, min, (long long)l->tie_skip, RS_LIST_BATCH);
    if (added < 0 || run(r))
        return CW_EUNAVAIL;
    redisReply *z = rconn_batch_reply(r->b, 0);
    if (z->type != REDIS_REPLY_ARRAY)
        return CW_EUNAVAIL;
    size_t m = z->elements / 2;
    int below = 0;  /* by rank: reached entries older than `since` */
    l->fetched = 0;
    for (size_t i = 0; i < m; i++) {
        int64_t sc = strtoll(z->element[2 * i + 1]->str, NULL, 10);
        const char *id = z->element[2 * i]->str;
        if (rank >= 0 && q->since_ms && sc < q->since_ms) {
            below = 1;
            break;
        }
        if (rank < 0 && l->have_after && sc == l->after_ms && strcmp(id, l->after_id) >= 0)
            continue;
        snprintf(l->ids[l->fetched], sizeof l->ids[0], "%s", id);
        l->scores[l->fetched++] = sc;
    }
    *exhausted = m < RS_LIST_BATCH || below;
    return 0;
}

static int list_match(const struct store_query *q, const struct store_finding *f, int sev, const char *acct,
                      const char *fn)
{
    return (q->status < 0 || f->status == q->status) && (q->severity < 0 || sev == q->severity) &&
           (!q->account || strcmp(q->account, acct) == 0) && (!q->function || strcmp(q->function, fn) == 0);
}

/* Reads the window's findings and adds those the filters pass to the page, moving the cursor past
 * each one examined, until the page is full (l->more: the window has more). Entries whose finding
 * expired are unindexed, best effort: a later listing retries. */
static int list_filter(struct rs_store *r, struct rs_list *l)
{
    rconn_batch_reset(r->b);
    char fk[RS_KEY_MAX];
    for (size_t i = 0; i < l->fetched; i++) {
        key_name(fk, sizeof fk, 'f', l->ids[i]);
        if (rconn_batch_add(r->b, fk, "HGETALL %s", fk) < 0)
            return CW_EUNAVAIL;
    }
    int rc = run(r);
    if (rc)
        return rc;
    size_t stale = 0;
    for (size_t i = 0; i < l->fetched; i++) {
        if (l->n >= l->limit) {
            l->more = 1;
            break;
        }
        l->examined++;
        l->after_ms = l->scores[i];
        snprintf(l->after_id, sizeof l->after_id, "%s", l->ids[i]);
        l->have_after = 1;
        struct store_finding f;
        int sev;
        char acct[EV_ACCOUNT_MAX] = "", fn[EV_FUNCTION_MAX] = "";
        if (parse_finding(rconn_batch_reply(r->b, i), l->ids[i], &f, &sev, acct, sizeof acct, fn, sizeof fn)) {
            /* expired: unindex below (memmove: stale may equal i, which snprintf may not overlap) */
            memmove(l->ids[stale++], l->ids[i], sizeof l->ids[0]);
            continue;
        }
        if (list_match(l->q, &f, sev, acct, fn))
            l->out[l->n++] = f;
        else
            store_finding_free(&f);
    }
    if (stale) {
        rconn_batch_reset(r->b);
        for (size_t i = 0; i < stale; i++)
            rconn_batch_add(r->b, RS_INDEX, "ZREM %s %s", RS_INDEX, l->ids[i]);
        run(r);
    }
    return 0;
}

/* Builds the page's answer once the listing stops: *more and *n_out, or on failure no page. */
static int list_finish(struct rs_list *l, int rc, size_t *n_out, int *more)
{
    free(l->ids);
    free(l->scores);
    if (rc) {
        for (size_t i = 0; i < l->n; i++)
            store_finding_free(&l->out[i]);
        return rc;
    }
    *more = l->more;
    if (!*more && l->n >= l->limit)
        *more = 1;  /* the page is full: the next one may be empty, which is cheap to find out */
    if (l->examined >= RS_LIST_SCAN_MAX && l->n < l->limit)
        *more = 1;  /* filters matched little: the caller continues with the cursor */
    *n_out = l->n;
    return 0;
}

static int rs_finding_list(struct store *s, const struct store_query *q, struct store_finding *out, size_t *n_out,
                           int *more)
{
    struct rs_store *r = (struct rs_store *)s;
    struct rs_list l;
    *more = 0;
    int rc = list_start(&l, q, out);
    if (rc)
        return rc;
    while (l.n < l.limit && l.examined < RS_LIST_SCAN_MAX) {
        long long rank;
        int exhausted;
        if ((rc = list_cursor_rank(r, &l, &rank)) || (rc = list_window(r, &l, rank, &exhausted)))
            break;
        if (!l.fetched && !exhausted) {
            if (++l.tie_rounds > RS_LIST_TIE_ROUNDS) {
                rc = CW_EUNAVAIL;  /* more findings at one millisecond than any listing can skip */
                break;
            }
            l.tie_skip += RS_LIST_BATCH;
            continue;
        }
        l.tie_skip = 0;
        if ((rc = list_filter(r, &l)) || l.more || exhausted)
            break;
    }
    return list_finish(&l, rc, n_out, more);
}

static int rs_finding_patch(struct store *s, const char *id, int status, const char *note, int64_t now_ms)
{
    struct rs_store *r = (struct rs_store *)s;
    char fk[RS_KEY_MAX], now[24];
    key_name(fk, sizeof fk, 'f', id);
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    /* the note travels with a one-byte prefix so that it is never the marker "keep" */
    size_t nl = note ? strlen(note) : 0;
    char *nv = malloc(nl + sizeof "keep" + 1);
    if (!nv)
        return CW_EUNAVAIL;
    if (note) {
        nv[0] = '=';
        memcpy(nv + 1, note, nl + 1);
    } else {
        memcpy(nv, "keep", 5);
    }
    const char *keys[1] = { fk };
    const char *args[3] = { status >= 0 ? store_status_name(status) : "", nv, now };
    rconn_batch_reset(r->b);
    int added = rconn_batch_eval(r->b, r->s_patch, 1, keys, 3, args, NULL);
    free(nv);
    if (added < 0)
        return CW_EUNAVAIL;
    int rc = run(r);
    if (rc)
        return rc;
    redisReply *x = rconn_batch_reply(r->b, 0);
    return x->type == REDIS_REPLY_INTEGER && x->integer == 1 ? 0 : CW_ENOTFOUND;
}

static int rs_ping(struct store *s)
{
    struct rs_store *r = (struct rs_store *)s;
    rconn_batch_reset(r->b);
    /* A write that changes nothing: ZADD XX only updates members that exist, and this one never
     * does (finding ids start with "cwf-"). Redis refuses it like any write when it cannot take writes (OOM at maxmemory with
     * noeviction, a read-only replica, MISCONF), so readiness says what ingest would meet; a
     * read (EXISTS) answered while every ingest got 503. Routed by the index key, which every
     * finding write touches: on a cluster this also proves the slot map can be learnt. */
    if (rconn_batch_add(r->b, RS_INDEX, "ZADD %s XX 0 %s", RS_INDEX, "readiness-probe") < 0)
        return CW_EUNAVAIL;
    return run(r);
}

static const char *rs_why(struct store *s) { return rconn_error(((struct rs_store *)s)->rc); }

static struct store *rs_clone(struct store *s);

static void rs_free(struct store *s)
{
    struct rs_store *r = (struct rs_store *)s;
    rconn_batch_free(r->b);
    rconn_free(r->rc);
    free(r->loaded);
    free(r);
}

static const struct store_ops rs_ops = {
    .name = "redis",
    .load = rs_load,
    .commit = rs_commit,
    .finding_put = rs_finding_put,
    .finding_get = rs_finding_get,
    .finding_list = rs_finding_list,
    .finding_patch = rs_finding_patch,
    .ping = rs_ping,
    .why = rs_why,
    .clone = rs_clone,
    .free = rs_free,
};

static struct store *rs_wrap(struct rconn *rc)
{
    struct rs_store *r = calloc(1, sizeof *r);
    if (!r || !rc || !(r->b = rconn_batch_new())) {
        free(r);
        rconn_free(rc);
        return NULL;
    }
    r->base.ops = &rs_ops;
    r->rc = rc;
    return &r->base;
}

static struct store *rs_new(const struct rconn_config *cfg)
{
    struct rconn *rc = rconn_new(cfg);
    if (!rc)
        return NULL;
    struct store *s = rs_wrap(rc);
    if (!s)
        return NULL;
    struct rs_store *r = (struct rs_store *)s;
    r->s_commit = rconn_script(rc, script_commit);
    r->s_fput = rconn_script(rc, script_fput);
    r->s_patch = rconn_script(rc, script_patch);
    return s;
}

static struct store *rs_clone(struct store *s)
{
    struct rs_store *src = (struct rs_store *)s;
    struct store *c = rs_wrap(rconn_clone(src->rc));
    if (c) {
        struct rs_store *r = (struct rs_store *)c;
        r->s_commit = src->s_commit;
        r->s_fput = src->s_fput;
        r->s_patch = src->s_patch;
    }
    return c;
}

/* Both constructors: parse the address(es), then the same store over one node or a cluster. */
static struct store *rs_from(int (*parse)(const char *, struct rconn_config *, char *, size_t), const char *spec,
                             int timeout_ms, char *msg, size_t msg_size)
{
    struct rconn_config cfg;
    if (parse(spec, &cfg, msg, msg_size))
        return NULL;
    cfg.timeout_ms = timeout_ms > 0 ? timeout_ms : 1000;
    struct store *s = rs_new(&cfg);
    if (!s)
        snprintf(msg, msg_size, "out of memory");
    return s;
}

struct store *store_redis_new(const char *url, int timeout_ms, char *msg, size_t msg_size)
{
    return rs_from(rconn_parse_url, url, timeout_ms, msg, msg_size);
}

struct store *store_redis_cluster_new(const char *seeds, int timeout_ms, char *msg, size_t msg_size)
{
    return rs_from(rconn_parse_cluster, seeds, timeout_ms, msg, msg_size);
}
