/* store_redis.c — the store on Redis, shared by any number of credwatch instances.
 *
 * Layout (every key of one access key shares the hash tag {AKID}, so it also works on a cluster):
 *   cw:k:{AKID}   string: 8-byte big-endian version + det_encode blob; PXAT = key expiry
 *   cw:s:{AKID}   set of event-id hashes (signed 64-bit integers: Redis keeps them as an intset)
 *   cw:f:{ID}     hash: ev (evidence JSON), st (status), nt (note), ca/ua (created/updated ms),
 *                 sv (severity), ac (account), fn (function), ver (key version of the evidence)
 *   cw:fidx       sorted set: finding id by created_ms, for listing newest first
 * Writes of key state are a compare-and-set in one Lua script (version check, SET, SADD), so two
 * instances never lose each other's events. Every batch is pipelined: one round trip per call.
 * Loads are a plain pipelined GET + SMISMEMBER: if another instance commits in between, the
 * version check of the commit fails and the engine reloads.
 */
#include "store.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "detect.h"
#include "event.h"

#define RS_HOST_MAX 256
#define RS_CRED_MAX 256
#define RS_VERSION_BYTES 8
#define RS_BACKOFF_MIN_MS 100           /* first reconnect delay after a failure */
#define RS_BACKOFF_MAX_MS 2000          /* cap of the doubling delay */
#define RS_LIST_SCAN_MAX 5000           /* index entries examined per list call (filters) */
#define RS_LIST_BATCH 200               /* index entries fetched per round trip while listing */
#define RS_SADD_CHUNK "1000"            /* unpack() has a stack limit: add hashes in chunks */
#define RS_INDEX "cw:fidx"
#define RS_KEY_MAX 96

struct rs_config {
    char host[RS_HOST_MAX];
    int port;
    char user[RS_CRED_MAX];
    char password[RS_CRED_MAX];
    int db;
    int timeout_ms;
};

struct rs_store {
    struct store base;
    struct rs_config cfg;
    redisContext *c;
    int64_t retry_at_ms;      /* no reconnect before this (backoff) */
    int backoff_ms;
    int scripts_loaded;
    char sha_commit[41], sha_fput[41], sha_patch[41];
    char *loaded;             /* blobs returned by load(), valid until the next call */
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
 * ARGV: evidence, severity, account, function, version, new_outside, retract, now_ms, retention_ms.
 * Returns {created, created_ms}; created = -1 when the stored evidence is newer. */
static const char script_fput[] =
    "local ca = redis.call('HGET', KEYS[1], 'ca')\n"
    "local created = 0\n"
    "if ca then\n"
    "  local ver = tonumber(redis.call('HGET', KEYS[1], 'ver') or '0')\n"
    "  if tonumber(ARGV[5]) < ver then return {-1, ca} end\n"
    "  local st = redis.call('HGET', KEYS[1], 'st')\n"
    "  if ARGV[7] == '1' then st = 'retracted'\n"
    "  elseif ARGV[6] == '1' and (st == 'resolved' or st == 'retracted') then st = 'open' end\n"
    "  redis.call('HSET', KEYS[1], 'st', st)\n"
    "else\n"
    "  created = 1\n"
    "  ca = ARGV[8]\n"
    "  local st = 'open'\n"
    "  if ARGV[7] == '1' then st = 'retracted' end\n"
    "  redis.call('HSET', KEYS[1], 'st', st, 'ca', ca)\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'ev', ARGV[1], 'sv', ARGV[2], 'ac', ARGV[3], 'fn', ARGV[4], 'ver', ARGV[5],"
    " 'ua', ARGV[8])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[9])\n"
    "return {created, ca}\n";

/* Status/note change of an existing finding. KEYS: finding. ARGV: status ("" keep), note ("\0"
 * prefix = keep), now_ms. Returns 1, or 0 when the finding does not exist. */
static const char script_patch[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'st', ARGV[1]) end\n"
    "if ARGV[2] ~= 'keep' then redis.call('HSET', KEYS[1], 'nt', string.sub(ARGV[2], 2)) end\n"
    "redis.call('HSET', KEYS[1], 'ua', ARGV[3])\n"
    "return 1\n";

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- connection ----------------------------------------------------------------------------- */

static void rs_drop(struct rs_store *r)
{
    if (r->c)
        redisFree(r->c);
    r->c = NULL;
    r->scripts_loaded = 0;
    r->backoff_ms = r->backoff_ms ? r->backoff_ms * 2 : RS_BACKOFF_MIN_MS;
    if (r->backoff_ms > RS_BACKOFF_MAX_MS)
        r->backoff_ms = RS_BACKOFF_MAX_MS;
    r->retry_at_ms = wall_ms() + r->backoff_ms;
}

static int load_script(redisContext *c, const char *src, char *sha)
{
    redisReply *rep = redisCommand(c, "SCRIPT LOAD %s", src);
    int ok = rep && rep->type == REDIS_REPLY_STRING && rep->len == 40;
    if (ok)
        memcpy(sha, rep->str, 41);
    if (rep)
        freeReplyObject(rep);
    return ok ? 0 : -1;
}

static int simple_ok(redisReply *rep)
{
    int ok = rep && rep->type != REDIS_REPLY_ERROR;
    if (rep)
        freeReplyObject(rep);
    return ok;
}

/* Returns 0 with a live context, or STORE_EUNAVAIL (during backoff, without trying). */
static int rs_conn(struct rs_store *r)
{
    if (r->c && r->scripts_loaded)
        return 0;
    if (!r->c) {
        if (wall_ms() < r->retry_at_ms)
            return STORE_EUNAVAIL;
        struct timeval tv = { r->cfg.timeout_ms / 1000, (r->cfg.timeout_ms % 1000) * 1000 };
        r->c = redisConnectWithTimeout(r->cfg.host, r->cfg.port, tv);
        if (!r->c || r->c->err) {
            rs_drop(r);
            return STORE_EUNAVAIL;
        }
        redisSetTimeout(r->c, tv);  /* the connect timeout does not cover commands */
        if (r->cfg.password[0]) {
            redisReply *rep = r->cfg.user[0]
                                  ? redisCommand(r->c, "AUTH %s %s", r->cfg.user, r->cfg.password)
                                  : redisCommand(r->c, "AUTH %s", r->cfg.password);
            if (!simple_ok(rep)) {
                rs_drop(r);
                return STORE_EUNAVAIL;
            }
        }
        if (r->cfg.db && !simple_ok(redisCommand(r->c, "SELECT %d", r->cfg.db))) {
            rs_drop(r);
            return STORE_EUNAVAIL;
        }
    }
    if (load_script(r->c, script_commit, r->sha_commit) || load_script(r->c, script_fput, r->sha_fput) ||
        load_script(r->c, script_patch, r->sha_patch)) {
        rs_drop(r);
        return STORE_EUNAVAIL;
    }
    r->scripts_loaded = 1;
    r->backoff_ms = 0;
    return 0;
}

/* Reads n pipelined replies into out[]. On an I/O error the context is dead: dropped. */
static int read_replies(struct rs_store *r, redisReply **out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        void *rep = NULL;
        if (redisGetReply(r->c, &rep) != REDIS_OK || !rep) {
            for (size_t j = 0; j < i; j++)
                freeReplyObject(out[j]);
            rs_drop(r);
            return STORE_EUNAVAIL;
        }
        out[i] = rep;
    }
    return 0;
}

static void free_replies(redisReply **reps, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (reps[i])
            freeReplyObject(reps[i]);
}

/* An error reply (NOSCRIPT after a SCRIPT FLUSH or a restart, OOM, READONLY...) fails the call
 * as unavailable; NOSCRIPT also makes the next call load the scripts again. */
static int check_errors(struct rs_store *r, redisReply **reps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (reps[i]->type == REDIS_REPLY_ERROR) {
            if (strncmp(reps[i]->str, "NOSCRIPT", 8) == 0)
                r->scripts_loaded = 0;
            return STORE_EUNAVAIL;
        }
    }
    return 0;
}

static void key_name(char *out, size_t size, char kind, const char *id)
{
    snprintf(out, size, "cw:%c:{%s}", kind, id);
}

/* ---- key state ------------------------------------------------------------------------------ */

static int rs_load(struct store *s, struct store_load *items, size_t n)
{
    struct rs_store *r = (struct rs_store *)s;
    if (!n)
        return 0;
    int rc = rs_conn(r);
    if (rc)
        return rc;
    char kbuf[RS_KEY_MAX];
    for (size_t i = 0; i < n; i++) {
        key_name(kbuf, sizeof kbuf, 'k', items[i].akid);
        redisAppendCommand(r->c, "GET %s", kbuf);
        if (items[i].n_hashes) {
            size_t argc = items[i].n_hashes + 2;
            const char **argv = malloc(argc * sizeof *argv);
            size_t *lens = malloc(argc * sizeof *lens);
            char (*nums)[24] = malloc(items[i].n_hashes * sizeof *nums);
            char sk[RS_KEY_MAX];
            if (!argv || !lens || !nums) {
                free(argv);
                free(lens);
                free(nums);
                rs_drop(r);  /* the pipeline is half written: the connection cannot be reused */
                return STORE_EUNAVAIL;
            }
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
            redisAppendCommandArgv(r->c, (int)argc, argv, lens);
            free(argv);
            free(lens);
            free(nums);
        }
    }
    size_t nrep = 0;
    for (size_t i = 0; i < n; i++)
        nrep += items[i].n_hashes ? 2 : 1;
    redisReply **reps = calloc(nrep, sizeof *reps);
    if (!reps) {
        rs_drop(r);
        return STORE_EUNAVAIL;
    }
    if ((rc = read_replies(r, reps, nrep))) {
        free(reps);
        return rc;
    }
    if ((rc = check_errors(r, reps, nrep)))
        goto out;
    size_t need = 0;
    for (size_t i = 0, k = 0; i < n; k += items[i].n_hashes ? 2 : 1, i++)
        if (reps[k]->type == REDIS_REPLY_STRING)
            need += reps[k]->len;
    if (need > r->loaded_cap) {
        char *nb = realloc(r->loaded, need);
        if (!nb) {
            rc = STORE_EUNAVAIL;
            goto out;
        }
        r->loaded = nb;
        r->loaded_cap = need;
    }
    size_t off = 0;
    for (size_t i = 0, k = 0; i < n; i++) {
        struct store_load *it = &items[i];
        redisReply *g = reps[k++];
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
            redisReply *m = reps[k++];
            for (size_t j = 0; j < it->n_hashes; j++)
                it->seen[j] = m->type == REDIS_REPLY_ARRAY && j < m->elements &&
                              m->element[j]->type == REDIS_REPLY_INTEGER && m->element[j]->integer == 1;
        }
    }
out:
    free_replies(reps, nrep);
    free(reps);
    return rc;
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
    int rc = rs_conn(r);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        struct store_commit *c = &items[i];
        size_t argc = 9 + c->n_hashes;
        const char **argv = malloc(argc * sizeof *argv);
        size_t *lens = malloc(argc * sizeof *lens);
        char (*nums)[24] = malloc((c->n_hashes + 2) * sizeof *nums);
        char *val = malloc(RS_VERSION_BYTES + c->blob_len);
        char expected[RS_VERSION_BYTES], kk[RS_KEY_MAX], sk[RS_KEY_MAX];
        if (!argv || !lens || !nums || !val) {
            free(argv);
            free(lens);
            free(nums);
            free(val);
            rs_drop(r);
            return STORE_EUNAVAIL;
        }
        key_name(kk, sizeof kk, 'k', c->akid);
        key_name(sk, sizeof sk, 's', c->akid);
        put_version(expected, c->version);
        put_version(val, c->version + 1);
        memcpy(val + RS_VERSION_BYTES, c->blob, c->blob_len);
        snprintf(nums[0], sizeof nums[0], "%lld", (long long)c->expire_at_ms);
        snprintf(nums[1], sizeof nums[1], "%d", STORE_SEEN_MAX);
        size_t a = 0;
        argv[a] = "EVALSHA", lens[a++] = 7;
        argv[a] = r->sha_commit, lens[a++] = 40;
        argv[a] = "2", lens[a++] = 1;
        argv[a] = kk, lens[a++] = strlen(kk);
        argv[a] = sk, lens[a++] = strlen(sk);
        argv[a] = expected, lens[a++] = c->version ? RS_VERSION_BYTES : 0;
        argv[a] = val, lens[a++] = RS_VERSION_BYTES + c->blob_len;
        argv[a] = nums[0], lens[a++] = strlen(nums[0]);
        argv[a] = nums[1], lens[a++] = strlen(nums[1]);
        for (size_t j = 0; j < c->n_hashes; j++) {
            snprintf(nums[j + 2], sizeof nums[0], "%lld", (long long)(int64_t)c->hashes[j]);
            argv[a] = nums[j + 2], lens[a++] = strlen(nums[j + 2]);
        }
        redisAppendCommandArgv(r->c, (int)a, argv, lens);
        free(argv);
        free(lens);
        free(nums);
        free(val);
    }
    redisReply **reps = calloc(n, sizeof *reps);
    if (!reps) {
        rs_drop(r);
        return STORE_EUNAVAIL;
    }
    if ((rc = read_replies(r, reps, n))) {
        free(reps);
        return rc;
    }
    rc = check_errors(r, reps, n);
    for (size_t i = 0; i < n; i++)
        items[i].ok = !rc && reps[i]->type == REDIS_REPLY_INTEGER && reps[i]->integer == 1;
    free_replies(reps, n);
    free(reps);
    return rc;
}

/* ---- findings -------------------------------------------------------------------------------- */

static int rs_finding_put(struct store *s, struct store_finding_put *items, size_t n)
{
    struct rs_store *r = (struct rs_store *)s;
    if (!n)
        return 0;
    int rc = rs_conn(r);
    if (rc)
        return rc;
    char fk[RS_KEY_MAX], ver[24], now[24], ret[24];
    snprintf(ret, sizeof ret, "%lld", (long long)STORE_FINDING_RETENTION_S * 1000);
    for (size_t i = 0; i < n; i++) {
        struct store_finding_put *u = &items[i];
        key_name(fk, sizeof fk, 'f', u->id);
        snprintf(ver, sizeof ver, "%llu", (unsigned long long)u->version);
        snprintf(now, sizeof now, "%lld", (long long)u->now_ms);
        redisAppendCommand(r->c, "EVALSHA %s 1 %s %s %s %s %s %s %s %s %s %s", r->sha_fput, fk, u->evidence_json,
                           u->severity ? u->severity : "", u->account ? u->account : "",
                           u->function ? u->function : "", ver, u->new_outside ? "1" : "0",
                           u->retract ? "1" : "0", now, ret);
    }
    redisReply **reps = calloc(2 * n, sizeof *reps);
    if (!reps) {
        rs_drop(r);
        return STORE_EUNAVAIL;
    }
    if ((rc = read_replies(r, reps, n)))
        goto out_free;
    if ((rc = check_errors(r, reps, n)))
        goto out;
    /* the listing index: created_ms is fixed at creation, so ZADD NX is idempotent */
    size_t nz = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *x = reps[i];
        items[i].created = 0;
        if (x->type != REDIS_REPLY_ARRAY || x->elements != 2 || x->element[0]->type != REDIS_REPLY_INTEGER) {
            rc = STORE_EUNAVAIL;
            goto out;
        }
        items[i].created = x->element[0]->integer == 1;
        const char *ca = x->element[1]->type == REDIS_REPLY_STRING ? x->element[1]->str : "0";
        redisAppendCommand(r->c, "ZADD %s NX %s %s", RS_INDEX, ca, items[i].id);
        nz++;
    }
    if ((rc = read_replies(r, reps + n, nz)))
        goto out;
    rc = check_errors(r, reps + n, nz);
    free_replies(reps + n, nz);
out:
    free_replies(reps, n);
out_free:
    free(reps);
    return rc;
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

/* HGETALL reply to a finding; returns 0, STORE_ENOTFOUND for an empty hash. Fills the filter
 * fields too (sv, ac, fn) when asked. */
static int parse_finding(const redisReply *h, const char *id, struct store_finding *out, int *sev, char *acct,
                         size_t acct_size, char *fn, size_t fn_size)
{
    memset(out, 0, sizeof *out);
    if (h->type != REDIS_REPLY_ARRAY || h->elements == 0)
        return STORE_ENOTFOUND;
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
        return STORE_ENOTFOUND;
    }
    return 0;
}

static int rs_finding_get(struct store *s, const char *id, struct store_finding *out)
{
    struct rs_store *r = (struct rs_store *)s;
    int rc = rs_conn(r);
    if (rc)
        return rc;
    char fk[RS_KEY_MAX];
    key_name(fk, sizeof fk, 'f', id);
    redisReply *h = redisCommand(r->c, "HGETALL %s", fk);
    if (!h) {
        rs_drop(r);
        return STORE_EUNAVAIL;
    }
    rc = h->type == REDIS_REPLY_ERROR ? STORE_EUNAVAIL : parse_finding(h, id, out, NULL, NULL, 0, NULL, 0);
    freeReplyObject(h);
    return rc;
}

static int rs_finding_list(struct store *s, const struct store_query *q, struct store_finding *out, size_t *n_out,
                           int *more)
{
    struct rs_store *r = (struct rs_store *)s;
    int rc = rs_conn(r);
    if (rc)
        return rc;
    size_t limit = q->limit ? q->limit : 1, n = 0, examined = 0;
    char max[32], min[32];
    int64_t after_ms = q->after_ms;
    char after_id[STORE_ID_MAX];
    snprintf(after_id, sizeof after_id, "%s", q->after_id);
    int have_after = after_ms || after_id[0];
    *more = 0;
    snprintf(min, sizeof min, "%lld", (long long)q->since_ms);
    if (!q->since_ms)
        snprintf(min, sizeof min, "-inf");
    while (n < limit && examined < RS_LIST_SCAN_MAX) {
        int64_t top = have_after ? after_ms : (q->until_ms ? q->until_ms : INT64_MAX);
        if (top == INT64_MAX)
            snprintf(max, sizeof max, "+inf");
        else
            snprintf(max, sizeof max, "%lld", (long long)top);
        /* entries at the cursor's own score that sort before it are skipped below */
        redisReply *z = redisCommand(r->c, "ZREVRANGEBYSCORE %s %s %s WITHSCORES LIMIT 0 %d", RS_INDEX, max, min,
                                     RS_LIST_BATCH);
        if (!z) {
            rs_drop(r);
            rc = STORE_EUNAVAIL;
            break;
        }
        if (z->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(z);
            rc = STORE_EUNAVAIL;
            break;
        }
        size_t m = z->elements / 2, fetched = 0;
        char (*ids)[STORE_ID_MAX] = calloc(m ? m : 1, sizeof *ids);
        int64_t *scores = calloc(m ? m : 1, sizeof *scores);
        if (!ids || !scores) {
            free(ids);
            free(scores);
            freeReplyObject(z);
            rc = STORE_EUNAVAIL;
            break;
        }
        for (size_t i = 0; i < m; i++) {
            int64_t sc = strtoll(z->element[2 * i + 1]->str, NULL, 10);
            const char *id = z->element[2 * i]->str;
            if (have_after && sc == after_ms && strcmp(id, after_id) >= 0)
                continue;
            snprintf(ids[fetched], sizeof ids[0], "%s", id);
            scores[fetched++] = sc;
        }
        int exhausted = m < RS_LIST_BATCH;
        freeReplyObject(z);
        char fk[RS_KEY_MAX];
        for (size_t i = 0; i < fetched; i++) {
            key_name(fk, sizeof fk, 'f', ids[i]);
            redisAppendCommand(r->c, "HGETALL %s", fk);
        }
        redisReply **reps = calloc(fetched ? fetched : 1, sizeof *reps);
        if (!reps || (rc = read_replies(r, reps, fetched))) {
            free(reps);
            free(ids);
            free(scores);
            rc = STORE_EUNAVAIL;
            break;
        }
        for (size_t i = 0; i < fetched; i++) {
            examined++;
            after_ms = scores[i];
            snprintf(after_id, sizeof after_id, "%s", ids[i]);
            have_after = 1;
            if (n >= limit) {
                *more = 1;
                break;
            }
            struct store_finding f;
            int sev;
            char acct[EV_ACCOUNT_MAX] = "", fn[EV_FUNCTION_MAX] = "";
            if (parse_finding(reps[i], ids[i], &f, &sev, acct, sizeof acct, fn, sizeof fn)) {
                /* expired finding still indexed: drop it from the index */
                redisReply *d = redisCommand(r->c, "ZREM %s %s", RS_INDEX, ids[i]);
                if (d)
                    freeReplyObject(d);
                continue;
            }
            int ok = (q->status < 0 || f.status == q->status) && (q->severity < 0 || sev == q->severity) &&
                     (!q->account || strcmp(q->account, acct) == 0) &&
                     (!q->function || strcmp(q->function, fn) == 0);
            if (ok)
                out[n++] = f;
            else
                store_finding_free(&f);
        }
        free_replies(reps, fetched);
        free(reps);
        free(ids);
        free(scores);
        if (*more || exhausted)
            break;
        if (n >= limit) {
            /* is anything left? one more look decides `more` */
            *more = 1;
            break;
        }
    }
    if (examined >= RS_LIST_SCAN_MAX && n < limit)
        *more = 1;  /* filters matched little: the caller continues with the cursor */
    if (rc) {
        for (size_t i = 0; i < n; i++)
            store_finding_free(&out[i]);
        return rc;
    }
    *n_out = n;
    return 0;
}

static int rs_finding_patch(struct store *s, const char *id, int status, const char *note, int64_t now_ms)
{
    struct rs_store *r = (struct rs_store *)s;
    int rc = rs_conn(r);
    if (rc)
        return rc;
    char fk[RS_KEY_MAX], now[24];
    key_name(fk, sizeof fk, 'f', id);
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    /* the note travels with a one-byte prefix so that "keep" can never be a note */
    size_t nl = note ? strlen(note) : 0;
    char *nv = malloc(nl + sizeof "keep" + 1);
    if (!nv)
        return STORE_EUNAVAIL;
    if (note) {
        nv[0] = '=';
        memcpy(nv + 1, note, nl + 1);
    } else {
        memcpy(nv, "keep", 5);
    }
    const char *st = status >= 0 ? store_status_name(status) : "";
    redisReply *x = redisCommand(r->c, "EVALSHA %s 1 %s %s %s %s", r->sha_patch, fk, st, nv, now);
    free(nv);
    if (!x) {
        rs_drop(r);
        return STORE_EUNAVAIL;
    }
    if (x->type == REDIS_REPLY_ERROR) {
        if (strncmp(x->str, "NOSCRIPT", 8) == 0)
            r->scripts_loaded = 0;
        rc = STORE_EUNAVAIL;
    } else {
        rc = x->type == REDIS_REPLY_INTEGER && x->integer == 1 ? 0 : STORE_ENOTFOUND;
    }
    freeReplyObject(x);
    return rc;
}

static int rs_ping(struct store *s)
{
    struct rs_store *r = (struct rs_store *)s;
    int rc = rs_conn(r);
    if (rc)
        return rc;
    redisReply *x = redisCommand(r->c, "PING");
    if (!x) {
        rs_drop(r);
        return STORE_EUNAVAIL;
    }
    rc = x->type == REDIS_REPLY_ERROR ? STORE_EUNAVAIL : 0;
    freeReplyObject(x);
    return rc;
}

static struct store *rs_clone(struct store *s);

static void rs_free(struct store *s)
{
    struct rs_store *r = (struct rs_store *)s;
    if (r->c)
        redisFree(r->c);
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
    .clone = rs_clone,
    .free = rs_free,
};

static struct store *rs_new(const struct rs_config *cfg)
{
    struct rs_store *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->base.ops = &rs_ops;
    r->cfg = *cfg;
    return &r->base;
}

static struct store *rs_clone(struct store *s)
{
    return rs_new(&((struct rs_store *)s)->cfg);
}

/* Percent-decoding for user and password in the URL (they may hold ':' or '@'). */
static int pct_decode(const char *s, size_t n, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                return -1;
            char hex[3] = { s[i + 1], s[i + 2], 0 };
            char *end;
            long v = strtol(hex, &end, 16);
            if (*end || v <= 0)
                return -1;
            ch = (char)v;
            i += 2;
        }
        if (o + 1 >= size)
            return -1;
        out[o++] = ch;
    }
    out[o] = 0;
    return 0;
}

struct store *store_redis_new(const char *url, int timeout_ms, char *msg, size_t msg_size)
{
    struct rs_config cfg = { .port = 6379, .timeout_ms = timeout_ms > 0 ? timeout_ms : 1000 };
    static const char scheme[] = "redis://";
    if (strncmp(url, scheme, sizeof scheme - 1) != 0) {
        snprintf(msg, msg_size, "must start with redis:// (TLS rediss:// is not supported by this build)");
        return NULL;
    }
    const char *p = url + sizeof scheme - 1;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        if (colon && pct_decode(p, (size_t)(colon - p), cfg.user, sizeof cfg.user)) {
            snprintf(msg, msg_size, "invalid user name");
            return NULL;
        }
        if (pct_decode(pw, (size_t)(at - pw), cfg.password, sizeof cfg.password)) {
            snprintf(msg, msg_size, "invalid password");
            return NULL;
        }
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    size_t hostport = slash ? (size_t)(slash - p) : strlen(p);
    const char *colon;
    if (p[0] == '[') {  /* [::1]:6379 */
        const char *close = memchr(p, ']', hostport);
        if (!close) {
            snprintf(msg, msg_size, "unterminated [IPv6] host");
            return NULL;
        }
        snprintf(cfg.host, sizeof cfg.host, "%.*s", (int)(close - p - 1), p + 1);
        colon = close + 1 < p + hostport && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(p, ':', hostport);
        size_t hl = colon ? (size_t)(colon - p) : hostport;
        if (hl == 0 || hl >= sizeof cfg.host) {
            snprintf(msg, msg_size, "missing or too long host");
            return NULL;
        }
        snprintf(cfg.host, sizeof cfg.host, "%.*s", (int)hl, p);
    }
    if (colon) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (end != p + hostport || port < 1 || port > 65535) {
            snprintf(msg, msg_size, "invalid port");
            return NULL;
        }
        cfg.port = (int)port;
    }
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end || db < 0 || db > 1000) {
            snprintf(msg, msg_size, "invalid database number");
            return NULL;
        }
        cfg.db = (int)db;
    }
    struct store *s = rs_new(&cfg);
    if (!s)
        snprintf(msg, msg_size, "out of memory");
    return s;
}
