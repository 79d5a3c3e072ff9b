/* store_redis.c — the store on Redis, shared by any number of credwatch instances.
 *
 * Layout (every key of one access key shares the hash tag {AKID}, so it also works on a cluster):
 *   cw:k2:{AKID}  string: 8-byte big-endian version, a flags byte, the count (2 bytes) and the
 *                 8-byte hashes of the events applied (the dedup set, at most STORE_SEEN_MAX),
 *                 then the det_encode blob; PXAT = key expiry
 *   cw:f:{ID}     hash: ev (evidence JSON), st (status), nt (note), ca/ua (created/updated ms),
 *                 sv (severity), ac (account), fn (function), wk (workload kind; absent in a
 *                 finding of a release before workloads: lambda), ver (key version of the evidence)
 *   cw:fidx       sorted set: finding id by created_ms, for listing newest first
 * A load is one MGET per round (per key on a cluster); the client finds the duplicates among the
 * hashes. A commit is a compare-and-set of the one value: SET NX for a new key, a Lua script for
 * the existing keys of a round (version check, the new hashes appended, SET), so two instances
 * never lose each other's events and state and dedup hashes change in one step. Every batch is
 * pipelined (one round trip per node per call) through redis_conn, which also speaks the cluster
 * protocol: the same code runs on a Redis Cluster (CREDWATCH_REDIS_CLUSTER), since each script
 * touches keys of one slot only. If another instance commits between a load and a commit, the
 * version check fails and the engine reloads.
 *
 * The previous release's layout (before issue 17) kept the state in cw:k:{AKID} (version + blob)
 * and the hashes in a set cw:s:{AKID}: one more key per access key, a SADD member per event and a
 * script call per key, which made Redis's CPU per record twice what it is now. Its keys live at
 * most ~14 h, but dropping them at an upgrade would forget the issuance and history of every key
 * in use; so a load reads cw:k where cw:k2 is absent, and checks cw:s for the keys written by that
 * release (flag RS_FLAG_LEGACY), and the first commit takes the key over into cw:k2 (script_commit);
 * the old keys expire on their own. Instances of both releases on one Redis (a rolling upgrade) do
 * not see each other's later writes of a key the new release took over: replace them all within
 * minutes, as for a state format change (README, "Known limits").
 */
#include "store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "detect.h"
#include "event.h"
#include "redis_conn.h"

#define RS_VERSION_BYTES 8
#define RS_HASH_BYTES 8                 /* a dedup hash in a key's value, big-endian */
#define RS_COUNT_BYTES 2                /* how many hashes a value holds, big-endian */
#define RS_HEAD (RS_VERSION_BYTES + 1 + RS_COUNT_BYTES)  /* a value's header: version, flags, count */
#define RS_FLAG_LEGACY 1                /* the previous release's set cw:s:{AKID} holds hashes of the key too */
#define RS_SCRIPT_KEYS_MAX 128          /* keys per commit script call and per MGET on one Redis: bounds how
                                         * long one call holds Redis (~1 ms), not the round trips */
#define RS_LINEAR_MAX 64                /* hashes x remembered up to which a plain comparison beats sorting */
#define RS_NUM_MAX 24                   /* a decimal 64-bit integer and its NUL */
#define RS_LIST_SCAN_MAX 5000           /* index entries examined per list call (filters) */
#define RS_LIST_BATCH 200               /* index entries fetched per round trip while listing */
#define RS_LIST_TIE_ROUNDS 5000         /* windows skipped at one score when the cursor's entry is gone
                                         * (5000 x 200 = a million findings created in one millisecond) */
#define RS_INDEX "cw:fidx"
#define RS_STR_(x) #x
#define RS_STR(x) RS_STR_(x)
#define RS_UPDATES_MAX RS_STR(STORE_UPDATES_MAX)  /* the cap, as the scripts read it */
#define RS_OUT "cw:out:{o}"             /* the outbox stream (see "the outbox" below) */
#define RS_DSTAT "cw:dstat:{o}"         /* dead letters dropped at the bound, per sink */
#define RS_KEY_MAX 96

_Static_assert(STORE_SEEN_MAX < 1 << (8 * RS_COUNT_BYTES), "a value counts its hashes in RS_COUNT_BYTES");

/* What the handles of one store share (clones): whether events are recorded. */
struct rs_shared {
    pthread_mutex_t mu;
    int refs;
    int sinks_open;                  /* this process opened sinks */
    int groups, checked;             /* the outbox has a consumer group, as last checked */
    int64_t checked_ms;              /* cw_mono_ms of that check */
};

struct rs_store {
    struct store base;
    struct rconn *rc;
    struct rconn_batch *b, *b2;      /* b2: the outbox's commands while b's replies are read */
    struct rs_shared *sh;
    int s_commit, s_fput, s_patch;   /* script indices */
    int s_mark, s_dead, s_retry, s_trim, s_stats, s_after;
    char *loaded;                    /* blobs returned by load(), valid until the next call */
    size_t loaded_cap;
    uint64_t *sorted;                /* load(): a key's remembered hashes, sorted for lookups */
    size_t sorted_cap;
};

/* Compare-and-set of existing keys (a new key is a plain SET NX: see commit_new), on one Redis a
 * round's keys in calls of RS_SCRIPT_KEYS_MAX (one call instead of one per key: the per-call cost
 * was most of Redis's CPU per record), on a cluster one key per call (a script touches one slot).
 * KEYS: per key its state in this layout and in the previous release's. ARGV: the dedup bound
 * (hashes), then per key: expected version (8 bytes), new version (8 bytes), state, expire-at ms,
 * the new hashes (8 bytes each). Returns per key 1 (written) or 0 (the version changed).
 * The value (RS_HEAD): version, flags, count of hashes (2 bytes), the hashes, the state. A key of
 * the previous release (no value here, its cw:k at the expected version) is taken over: written
 * here with the flag RS_FLAG_LEGACY, since its set cw:s keeps holding the hashes applied before
 * (loads look there too); its cw:k and cw:s are left to expire. */
static const char script_commit[] =
    "local max, r = tonumber(ARGV[1]), {}\n"
    "for i = 1, #KEYS / 2 do\n"
    "  local k, o, a = KEYS[2 * i - 1], KEYS[2 * i], 5 * i - 3\n"
    "  local exp, ver, blob, at, new = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]\n"
    "  local cur, flag, old = redis.call('GET', k), '\\1', ''\n"
    "  r[i] = 0\n"
    "  if cur then\n"
    "    if string.sub(cur, 1, 8) == exp then\n"
    "      flag = string.sub(cur, 9, 9)\n"
    "      old = string.sub(cur, 12, 11 + 8 * ((string.byte(cur, 10) or 0) * 256 + (string.byte(cur, 11) or 0)))\n"
    "      r[i] = 1\n"
    "    end\n"
    "  elseif redis.call('GETRANGE', o, 0, 7) == exp then\n"
    "    r[i] = 1\n"
    "  end\n"
    "  if r[i] == 1 then\n"
    "    new = string.sub(new, 1, 8 * math.max(0, max - #old / 8))\n"
    "    local n = (#old + #new) / 8\n"
    "    redis.call('SET', k, ver .. flag .. string.char(math.floor(n / 256), n % 256) .. old .. new .. blob,"
    " 'PXAT', at)\n"
    "  end\n"
    "end\n"
    "return r\n";

/* The outbox step of a finding script (store.h, "Finding events"): a change to report (kind > 0:
 * 1 created, 2 updated, 3 status) takes a new revision rv when events are recorded (ARGV[rec] ==
 * "1"); the answer r gets rv, qd (the last revision queued) and, when rv > qd, the finding as of
 * now for the event: kind, evidence, status, "=" note or "", created, updated. */
#define RS_LUA_OUT \
    "local function out(k, r, kind, rec)\n" \
    "  if kind > 0 and rec == '1' then\n" \
    "    redis.call('HINCRBY', k, 'rv', 1)\n" \
    "    redis.call('HSET', k, 'rk', kind)\n" \
    "  end\n" \
    "  local f = redis.call('HMGET', k, 'rv', 'qd', 'rk', 'ev', 'st', 'nt', 'ca', 'ua')\n" \
    "  local rv, qd = tonumber(f[1] or '0'), tonumber(f[2] or '0')\n" \
    "  r[#r + 1] = rv\n" \
    "  r[#r + 1] = qd\n" \
    "  if rv > qd then\n" \
    "    r[#r + 1] = f[3] or '2'\n" \
    "    r[#r + 1] = f[4] or '{}'\n" \
    "    r[#r + 1] = f[5] or 'open'\n" \
    "    r[#r + 1] = f[6] and ('=' .. f[6]) or ''\n" \
    "    r[#r + 1] = f[7] or '0'\n" \
    "    r[#r + 1] = f[8] or '0'\n" \
    "  end\n" \
    "  return r\n" \
    "end\n"

/* Evidence update of one finding (status rule of store_next_status). KEYS: finding.
 * ARGV: evidence, severity, account, function, version, new_outside, now_ms, retention_ms,
 * ensure ("1": a repair: create when absent, update only when the stored evidence is of an older
 * key version, whose write was lost), notify (enum store_notify: "1" grown, counted in 'nu' and
 * pushed while below STORE_UPDATES_MAX, "2" raised), record ("1": events are recorded), outside
 * count (kept as 'oc': a repair whose count grew reopens, as the lost write's new_outside would),
 * workload kind (kept as 'wk'). Returns {created, created_ms, rv, qd [, event fields]} (RS_LUA_OUT); created = -1
 * when nothing was written (the stored evidence is newer, or ensure and it exists): then no new
 * revision, but a revision not yet queued is answered for queueing (the repair). */
#define RS_FPUT_FIELDS \
    "'ev', A[1], 'sv', A[2], 'ac', A[3], 'fn', A[4], 'ver', A[5], 'ua', A[7], 'oc', A[12], 'wk', A[13]"
#define RS_FPUT_ARGS 14
/* One call writes several findings (KEYS: each finding; ARGV: RS_FPUT_ARGS per finding, in that
 * order, the 14th its id) on one Redis, one on a cluster (a script touches one slot); the answer is
 * the list of each finding's. A new finding costs three calls (HSETNX of its creation time, one
 * HSET, PEXPIRE); without events recorded its answer needs no read: no revision was taken (rv = qd
 * = 0). An existing one costs four (one HMGET of what the rules read, one HSET, PEXPIRE, and the
 * HMGET of RS_LUA_OUT): each call from Lua costs about as much as a command of its own. On one
 * Redis the listing index is one more key (KEYS[n + 1]): each finding's entry is added here (ZADD
 * NX at its created_ms, fixed at creation), with the write itself, which saves fput_queue's round
 * trip and its ZADD per finding; on a cluster the index is in another slot: fput_queue adds them. */
static const char script_fput[] =
    RS_LUA_OUT
    "local function put(k, A)\n"
    "  local created, kind, ca = 0, 0, A[7]\n"
    "  if redis.call('HSETNX', k, 'ca', ca) == 1 then\n"
    "    created, kind = 1, 1\n"
    "    redis.call('HSET', k, 'st', 'open', " RS_FPUT_FIELDS ")\n"
    "  else\n"
    "    local f = redis.call('HMGET', k, 'ca', 'ver', 'st', 'oc', 'nu')\n"
    "    ca = f[1]\n"
    "    local ver = tonumber(f[2] or '0')\n"
    "    if tonumber(A[5]) < ver or (A[9] == '1' and tonumber(A[5]) == ver) then\n"
    "      return out(k, {-1, ca}, 0, A[11])\n"
    "    end\n"
    "    local st = f[3]\n"
    "    local st0 = st\n"
    "    local grew = A[9] == '1' and tonumber(A[12]) > tonumber(f[4] or '0')\n"
    "    if (A[6] == '1' or grew) and (st == 'resolved' or st == 'retracted') then st = 'open' end\n"
    "    local nu = tonumber(f[5] or '0')\n"
    "    if st ~= st0 then kind = 3\n"
    "    elseif A[10] == '2' or (A[10] == '1' and nu < " RS_UPDATES_MAX ") then kind = 2 end\n"
    "    if kind == 2 and A[10] == '1' and A[11] == '1' then\n"
    "      redis.call('HSET', k, 'st', st, 'nu', nu + 1, " RS_FPUT_FIELDS ")\n"
    "    else\n"
    "      redis.call('HSET', k, 'st', st, " RS_FPUT_FIELDS ")\n"
    "    end\n"
    "  end\n"
    "  redis.call('PEXPIRE', k, A[8])\n"
    "  if created == 1 and A[11] ~= '1' then return {1, ca, 0, 0} end\n"
    "  return out(k, {created, ca}, kind, A[11])\n"
    "end\n"
    "local r, n = {}, #ARGV / " RS_STR(RS_FPUT_ARGS) "\n"
    "local idx = KEYS[n + 1]\n"
    "for i = 1, n do\n"
    "  local A = {unpack(ARGV, " RS_STR(RS_FPUT_ARGS) " * i - " RS_STR(RS_FPUT_ARGS) " + 1, " RS_STR(RS_FPUT_ARGS) " * i)}\n"
    "  r[i] = put(KEYS[i], A)\n"
    "  if idx then redis.call('ZADD', idx, 'NX', r[i][2], A[14]) end\n"
    "end\n"
    "return r\n";

/* Status/note change of an existing finding. KEYS: finding. ARGV: status ("" = keep it), note
 * ("keep" = keep it, else "=" and the note: the prefix keeps a note that reads "keep" from meaning
 * "keep it"), now_ms, record. Returns {1, rv, qd [, event fields]} (RS_LUA_OUT; a status change
 * is a revision), or 0 when the finding does not exist. */
static const char script_patch[] =
    RS_LUA_OUT
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "local kind = 0\n"
    "if ARGV[1] ~= '' and ARGV[1] ~= redis.call('HGET', KEYS[1], 'st') then kind = 3 end\n"
    "if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'st', ARGV[1]) end\n"
    "if ARGV[2] ~= 'keep' then redis.call('HSET', KEYS[1], 'nt', string.sub(ARGV[2], 2)) end\n"
    "redis.call('HSET', KEYS[1], 'ua', ARGV[3])\n"
    "return out(KEYS[1], {1}, kind, ARGV[4])\n";

/* After the event of revision ARGV[1] is in the outbox: qd = max(qd, rv). KEYS: finding. */
static const char script_mark[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
    "local qd = tonumber(redis.call('HGET', KEYS[1], 'qd') or '0')\n"
    "if tonumber(ARGV[1]) > qd then redis.call('HSET', KEYS[1], 'qd', ARGV[1]) end\n"
    "return 1\n";

/* A dead letter: the event's fields, 'rs' reason, 'en' the entry it was; the oldest go past the
 * bound, counted in the stats hash (field: the sink). */
#define RS_LUA_DEAD \
    "local function dead(dk, sk, sink, max, fields, reason, entry)\n" \
    "  local n = redis.call('XLEN', dk)\n" \
    "  if max <= 0 then redis.call('HINCRBY', sk, sink, 1) return end\n" \
    "  if n >= max then\n" \
    "    redis.call('HINCRBY', sk, sink, redis.call('XTRIM', dk, 'MAXLEN', max - 1))\n" \
    "  end\n" \
    "  local a = {}\n" \
    "  for i = 1, #fields, 2 do\n" \
    "    if fields[i] ~= 'rs' and fields[i] ~= 'en' then a[#a + 1] = fields[i]; a[#a + 1] = fields[i + 1] end\n" \
    "  end\n" \
    "  redis.call('XADD', dk, '*', 'rs', reason, 'en', entry, unpack(a))\n" \
    "end\n"

/* out_dead. KEYS: source stream (outbox or redo), dead letters, stats. ARGV: sink, entry id, dead
 * max, reason, from redo ("1": the entry is deleted too), field pairs... Returns 1. */
static const char script_dead[] =
    RS_LUA_DEAD
    "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])\n"
    "if ARGV[5] == '1' then redis.call('XDEL', KEYS[1], ARGV[2]) end\n"
    "dead(KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[3]), {unpack(ARGV, 6)}, ARGV[4], ARGV[2])\n"
    "return 1\n";

/* dead_retry. KEYS: dead letters, redo. ARGV: sink, entry ("" = all), max. Moves the entries to
 * redo (its group made when missing). Returns how many, or -1 when the one entry is unknown. */
static const char script_retry[] =
    "pcall(redis.call, 'XGROUP', 'CREATE', KEYS[2], ARGV[1], '0', 'MKSTREAM')\n"
    "local es\n"
    "if ARGV[2] ~= '' then es = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])\n"
    "else es = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[3]) end\n"
    "if ARGV[2] ~= '' and #es == 0 then return -1 end\n"
    "for _, e in ipairs(es) do\n"
    "  local a = {}\n"
    "  for i = 1, #e[2], 2 do\n"
    "    if e[2][i] ~= 'rs' and e[2][i] ~= 'en' and e[2][i] ~= 'rq' then a[#a + 1] = e[2][i]; a[#a + 1] = e[2][i + 1] end\n"
    "  end\n"
    "  a[#a + 1] = 'rq'; a[#a + 1] = ARGV[4]\n"
    "  redis.call('XADD', KEYS[2], '*', unpack(a))\n"
    "  redis.call('XDEL', KEYS[1], e[1])\n"
    "end\n"
    "return #es\n";

/* Stream ids and group info for the trim and stats scripts. */
#define RS_LUA_IDS \
    "local function idp(id) local a, b = string.match(id, '^(%d+)-(%d+)$') return tonumber(a), tonumber(b) end\n" \
    "local function idlt(x, y) local a, b = idp(x) local c, d = idp(y) return a < c or (a == c and b < d) end\n" \
    "local function idnext(id) local a, b = idp(id) return string.format('%d-%d', a, b + 1) end\n" \
    "local function groups(k)\n" \
    "  local ok, gs = pcall(redis.call, 'XINFO', 'GROUPS', k)\n" \
    "  local out = {}\n" \
    "  if not ok then return out end\n" \
    "  for _, g in ipairs(gs) do\n" \
    "    local t = {}\n" \
    "    for i = 1, #g, 2 do t[g[i]] = g[i + 1] end\n" \
    "    out[#out + 1] = t\n" \
    "  end\n" \
    "  return out\n" \
    "end\n" \
    "local function needs(k, t)\n" \
    "  if t['pending'] > 0 then return redis.call('XPENDING', k, t['name'])[2] end\n" \
    "  return idnext(t['last-delivered-id'])\n" \
    "end\n"

/* out_trim. KEYS: outbox, dead letters, stats. ARGV: sink, out max, dead max. The sink's oldest
 * undelivered events past out max become dead letters ("outbox full": read by a consumer of the
 * trim's own and acknowledged, so the group's lag stays known); then the entries no group needs
 * go (XTRIM MINID). An unknown lag (Redis cannot tell it) dead-letters nothing. Returns how many. */
static const char script_trim[] =
    RS_LUA_DEAD RS_LUA_IDS
    "local moved, max = 0, tonumber(ARGV[2])\n"
    "local gs = groups(KEYS[1])\n"
    "for _, t in ipairs(gs) do\n"
    "  if t['name'] == ARGV[1] and t['lag'] and t['lag'] > max then\n"
    "    local excess = t['lag'] - max\n"
    "    while excess > 0 do\n"
    "      local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], 'cw-trim', 'COUNT', math.min(excess, 1000),"
    " 'STREAMS', KEYS[1], '>')\n"
    "      if not r or #r[1][2] == 0 then break end\n"
    "      for _, e in ipairs(r[1][2]) do\n"
    "        dead(KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[3]), e[2], 'outbox full', e[1])\n"
    "        redis.call('XACK', KEYS[1], ARGV[1], e[1])\n"
    "        moved = moved + 1\n"
    "      end\n"
    "      excess = excess - #r[1][2]\n"
    "    end\n"
    "    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], 'cw-trim')\n"
    "  end\n"
    "end\n"
    "local min = nil\n"
    "for _, t in ipairs(groups(KEYS[1])) do\n"
    "  local n = needs(KEYS[1], t)\n"
    "  if not min or idlt(n, min) then min = n end\n"
    "end\n"
    "if min then redis.call('XTRIM', KEYS[1], 'MINID', min) end\n"
    "return moved\n";

/* out_stats. KEYS: outbox, redo, dead letters, stats. ARGV: sink. Returns {undelivered, held,
 * dead, dropped, id of the oldest event not acknowledged or ""}; undelivered -1: unknown lag. */
static const char script_stats[] =
    RS_LUA_IDS
    "local lag, held, oldest = 0, 0, ''\n"
    "for _, t in ipairs(groups(KEYS[1])) do\n"
    "  if t['name'] == ARGV[1] then\n"
    "    lag = t['lag'] or -1\n"
    "    held = t['pending']\n"
    "    local n = needs(KEYS[1], t)\n"
    "    local e = redis.call('XRANGE', KEYS[1], n, '+', 'COUNT', 1)\n"
    "    if #e > 0 then oldest = e[1][1] end\n"
    "  end\n"
    "end\n"
    "for _, t in ipairs(groups(KEYS[2])) do\n"
    "  if t['name'] == ARGV[1] then\n"
    "    held = held + t['pending']\n"
    "    if lag >= 0 then lag = lag + redis.call('XLEN', KEYS[2]) - t['pending'] end\n"
    "  end\n"
    "end\n"
    "return {lag, held, redis.call('XLEN', KEYS[3]), tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0'), oldest}\n";

static void key_name(char *out, size_t size, char kind, const char *id)
{
    snprintf(out, size, "cw:%c:{%s}", kind, id);
}

/* The state of an access key: this layout's cw:k2 (value with the dedup hashes), or with legacy
 * set the previous release's cw:k (version and state; its hashes are in the set cw:s). */
static void state_key(char out[RS_KEY_MAX], const char *akid, int legacy)
{
    snprintf(out, RS_KEY_MAX, legacy ? "cw:k:{%s}" : "cw:k2:{%s}", akid);
}

/* Runs the batch; an error reply of any command (NOSCRIPT is handled below us; OOM, READONLY,
 * CROSSSLOT ...) fails the call as unavailable: the caller answers 503 and the sender retries. */
static int run_on(struct rs_store *r, struct rconn_batch *b)
{
    if (rconn_batch_exec(r->rc, b))
        return CW_EUNAVAIL;
    for (size_t i = 0; i < rconn_batch_size(b); i++) {
        redisReply *x = rconn_batch_reply(b, i);
        if (!x || x->type == REDIS_REPLY_ERROR)
            return CW_EUNAVAIL;
    }
    return 0;
}

static int run(struct rs_store *r)
{
    return run_on(r, r->b);
}

/* ---- key state ------------------------------------------------------------------------------ */

/* Versions, counts and dedup hashes as big-endian bytes. */
static uint64_t get_be(const char *p, int bytes)
{
    uint64_t v = 0;
    for (int b = 0; b < bytes; b++)
        v = v << 8 | (uint8_t)p[b];
    return v;
}

static void put_be(char *out, uint64_t v, int bytes)
{
    for (int b = bytes - 1; b >= 0; b--) {
        out[b] = (char)(v & 0xff);
        v >>= 8;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* seen[j] = 1 for every hash of it among the m remembered hashes at p. Few of either: compared
 * directly; else the remembered ones sorted once and searched. */
static int seen_from(struct rs_store *r, struct store_load *it, const char *p, size_t m)
{
    if (!m)
        return 0;
    if (m * it->n_hashes <= RS_LINEAR_MAX) {
        for (size_t i = 0; i < m; i++) {
            uint64_t h = get_be(p + i * RS_HASH_BYTES, RS_HASH_BYTES);
            for (size_t j = 0; j < it->n_hashes; j++)
                it->seen[j] |= it->hashes[j] == h;
        }
        return 0;
    }
    if (m > r->sorted_cap) {
        uint64_t *ns = realloc(r->sorted, m * sizeof *ns);
        if (!ns)
            return CW_EUNAVAIL;
        r->sorted = ns;
        r->sorted_cap = m;
    }
    for (size_t i = 0; i < m; i++)
        r->sorted[i] = get_be(p + i * RS_HASH_BYTES, RS_HASH_BYTES);
    qsort(r->sorted, m, sizeof *r->sorted, cmp_u64);
    for (size_t j = 0; j < it->n_hashes; j++)
        it->seen[j] |= bsearch(&it->hashes[j], r->sorted, m, sizeof *r->sorted, cmp_u64) != NULL;
    return 0;
}

/* Phase 1 of a load: every key's state in this layout and in the previous release's (read when
 * the first is absent), as one MGET per RS_SCRIPT_KEYS_MAX keys on one Redis, one per key on a
 * cluster (its two keys share a slot). */
static int load_send(struct rs_store *r, const struct store_load *items, size_t n)
{
    size_t per = rconn_is_cluster(r->rc) ? 1 : RS_SCRIPT_KEYS_MAX;
    size_t cap = 1 + 2 * (n < per ? n : per);
    const char **argv = malloc(cap * sizeof *argv);
    size_t *lens = malloc(cap * sizeof *lens);
    char (*names)[RS_KEY_MAX] = malloc((cap - 1) * sizeof *names);
    int rc = argv && lens && names ? 0 : CW_EUNAVAIL;
    rconn_batch_reset(r->b);
    for (size_t i = 0; i < n && !rc; i += per) {
        size_t a = 0, m = n - i < per ? n - i : per;
        argv[a] = "MGET", lens[a++] = 4;
        for (size_t j = 0; j < 2 * m; j++) {
            state_key(names[j], items[i + j / 2].akid, j % 2);
            argv[a] = names[j], lens[a++] = strlen(names[j]);
        }
        if (rconn_batch_add_argv(r->b, names[0], (int)a, argv, lens) < 0)
            rc = CW_EUNAVAIL;
    }
    free(argv);
    free(lens);
    free(names);
    return rc ? rc : run(r);
}

/* The MGET answer of key i: its state in this layout (legacy 0) or in the previous one (1). */
static const redisReply *load_reply(struct rs_store *r, size_t i, int legacy)
{
    size_t per = rconn_is_cluster(r->rc) ? 1 : RS_SCRIPT_KEYS_MAX;
    const redisReply *x = rconn_batch_reply(r->b, i / per);
    size_t at = 2 * (i % per) + (size_t)legacy;
    const redisReply *v = x && x->type == REDIS_REPLY_ARRAY && at < x->elements ? x->element[at] : NULL;
    return v && v->type == REDIS_REPLY_STRING ? v : NULL;
}

/* Key i's state, copied to r->loaded at *off, with its seen flags from the hashes it remembers.
 * Returns 1 when the previous release's set cw:s may hold more of its hashes, else 0; <0 out of
 * memory. A value cut short (never written so) keeps its version and gives a state the engine
 * cannot read, so the engine starts the key over and the script rewrites it whole. */
static int load_take(struct rs_store *r, struct store_load *it, size_t i, size_t *off)
{
    const redisReply *v = load_reply(r, i, 0), *old = v ? NULL : load_reply(r, i, 1);
    it->blob = NULL;
    it->blob_len = 0;
    it->version = 0;
    if (it->n_hashes)  /* seen may be NULL without hashes */
        memset(it->seen, 0, it->n_hashes);
    size_t head = RS_VERSION_BYTES, m = 0;
    if (v && v->len >= RS_HEAD) {
        m = (size_t)get_be(v->str + RS_VERSION_BYTES + 1, RS_COUNT_BYTES);
        head = RS_HEAD + m * RS_HASH_BYTES;
    }
    const redisReply *g = v ? v : old;
    if (!g || g->len <= head)
        return 0;
    it->version = get_be(g->str, RS_VERSION_BYTES);
    memcpy(r->loaded + *off, g->str + head, g->len - head);
    it->blob = (const uint8_t *)r->loaded + *off;
    it->blob_len = g->len - head;
    *off += it->blob_len;
    if (!v)
        return 1;  /* written by the previous release: its set holds the hashes */
    if (seen_from(r, it, v->str + RS_HEAD, m))
        return -1;
    return (v->str[RS_VERSION_BYTES] & RS_FLAG_LEGACY) != 0;
}

/* SMISMEMBER of a key's hashes in the previous release's set (signed decimal members). */
static int add_legacy_check(struct rconn_batch *b, const struct store_load *it)
{
    size_t argc = it->n_hashes + 2;
    const char **argv = malloc(argc * sizeof *argv);
    size_t *lens = malloc(argc * sizeof *lens);
    char (*nums)[RS_NUM_MAX] = malloc(it->n_hashes * sizeof *nums);
    char sk[RS_KEY_MAX];
    int rc = -1;
    if (argv && lens && nums) {
        key_name(sk, sizeof sk, 's', it->akid);
        argv[0] = "SMISMEMBER", lens[0] = 10;
        argv[1] = sk, lens[1] = strlen(sk);
        for (size_t j = 0; j < it->n_hashes; j++) {
            snprintf(nums[j], sizeof nums[j], "%lld", (long long)(int64_t)it->hashes[j]);
            argv[j + 2] = nums[j], lens[j + 2] = strlen(nums[j]);
        }
        rc = rconn_batch_add_argv(b, sk, (int)argc, argv, lens);
    }
    free(argv);
    free(lens);
    free(nums);
    return rc < 0 ? -1 : 0;
}

/* Phase 2, only for keys the previous release wrote (legacy[i]): their hashes looked up in its
 * set too, one round trip for all. */
static int load_legacy(struct rs_store *r, struct store_load *items, size_t n, const uint8_t *legacy)
{
    rconn_batch_reset(r->b);
    for (size_t i = 0; i < n; i++)
        if (legacy[i] && add_legacy_check(r->b, &items[i]))
            return CW_EUNAVAIL;
    int rc = run(r);
    for (size_t i = 0, k = 0; i < n && !rc; i++) {
        if (!legacy[i])
            continue;
        redisReply *m = rconn_batch_reply(r->b, k++);
        for (size_t j = 0; j < items[i].n_hashes; j++)
            items[i].seen[j] |= m->type == REDIS_REPLY_ARRAY && j < m->elements &&
                                m->element[j]->type == REDIS_REPLY_INTEGER && m->element[j]->integer == 1;
    }
    return rc;
}

static int rs_load(struct store *s, struct store_load *items, size_t n)
{
    struct rs_store *r = (struct rs_store *)s;
    if (!n)
        return 0;
    int rc = load_send(r, items, n);
    if (rc)
        return rc;
    size_t need = 0;
    for (size_t i = 0; i < n; i++) {
        const redisReply *g = load_reply(r, i, 0);
        if (g || (g = load_reply(r, i, 1)) != NULL)
            need += g->len;
    }
    if (need > r->loaded_cap) {
        char *nb = realloc(r->loaded, need);
        if (!nb)
            return CW_EUNAVAIL;
        r->loaded = nb;
        r->loaded_cap = need;
    }
    uint8_t *legacy = calloc(n, 1);
    size_t off = 0, n_legacy = 0;
    rc = legacy ? 0 : CW_EUNAVAIL;
    for (size_t i = 0; i < n && !rc; i++) {
        int lg = load_take(r, &items[i], i, &off);
        if (lg < 0)
            rc = CW_EUNAVAIL;
        legacy[i] = lg > 0 && items[i].n_hashes;
        n_legacy += legacy[i];
    }
    if (!rc && n_legacy)
        rc = load_legacy(r, items, n, legacy);
    free(legacy);
    return rc;
}

/* The hashes a commit adds: at most STORE_SEEN_MAX (the script keeps the bound with those stored). */
static size_t commit_hashes(const struct store_commit *c)
{
    return c->n_hashes < STORE_SEEN_MAX ? c->n_hashes : STORE_SEEN_MAX;
}

/* A new key (version 0): one plain SET NX of its whole value, header, hashes and state. */
static int commit_new(struct rs_store *r, const struct store_commit *c)
{
    size_t nh = commit_hashes(c), len = RS_HEAD + nh * RS_HASH_BYTES + c->blob_len;
    char *v = malloc(len), kk[RS_KEY_MAX], at[RS_NUM_MAX];
    if (!v)
        return -1;
    put_be(v, c->new_version, RS_VERSION_BYTES);
    v[RS_VERSION_BYTES] = 0;
    put_be(v + RS_VERSION_BYTES + 1, nh, RS_COUNT_BYTES);
    for (size_t j = 0; j < nh; j++)
        put_be(v + RS_HEAD + j * RS_HASH_BYTES, c->hashes[j], RS_HASH_BYTES);
    memcpy(v + RS_HEAD + nh * RS_HASH_BYTES, c->blob, c->blob_len);
    state_key(kk, c->akid, 0);
    snprintf(at, sizeof at, "%lld", (long long)c->expire_at_ms);
    int rc = rconn_batch_add(r->b, kk, "SET %s %b NX PXAT %s", kk, v, len, at);
    free(v);
    return rc < 0 ? -1 : 0;
}

/* One call of the commit script for the existing keys items[idx[0..n)] (see script_commit). */
static int commit_cas(struct rs_store *r, const struct store_commit *items, const size_t *idx, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += 2 * RS_VERSION_BYTES + RS_NUM_MAX + commit_hashes(&items[idx[i]]) * RS_HASH_BYTES;
    const char **keys = malloc(2 * n * sizeof *keys), **args = malloc((1 + 5 * n) * sizeof *args);
    size_t *lens = malloc((1 + 5 * n) * sizeof *lens);
    char (*names)[RS_KEY_MAX] = malloc(2 * n * sizeof *names), *buf = malloc(bytes), max[RS_NUM_MAX];
    int added = -1;
    if (keys && args && lens && names && buf) {
        size_t a = 0;
        char *p = buf;
        snprintf(max, sizeof max, "%d", STORE_SEEN_MAX);
        args[a] = max, lens[a++] = strlen(max);
        for (size_t i = 0; i < n; i++) {
            const struct store_commit *c = &items[idx[i]];
            size_t nh = commit_hashes(c);
            for (int w = 0; w < 2; w++)
                state_key(names[2 * i + w], c->akid, w), keys[2 * i + w] = names[2 * i + w];
            put_be(p, c->version, RS_VERSION_BYTES);
            put_be(p + RS_VERSION_BYTES, c->new_version, RS_VERSION_BYTES);
            args[a] = p, lens[a++] = RS_VERSION_BYTES;
            args[a] = p + RS_VERSION_BYTES, lens[a++] = RS_VERSION_BYTES;
            p += 2 * RS_VERSION_BYTES;
            args[a] = (const char *)c->blob, lens[a++] = c->blob_len;
            snprintf(p, RS_NUM_MAX, "%lld", (long long)c->expire_at_ms);
            args[a] = p, lens[a++] = strlen(p);
            p += RS_NUM_MAX;
            for (size_t j = 0; j < nh; j++)
                put_be(p + j * RS_HASH_BYTES, c->hashes[j], RS_HASH_BYTES);
            args[a] = p, lens[a++] = nh * RS_HASH_BYTES;
            p += nh * RS_HASH_BYTES;
        }
        added = rconn_batch_eval(r->b, r->s_commit, (int)(2 * n), keys, (int)a, args, lens);
    }
    free(keys);
    free(args);
    free(lens);
    free(names);
    free(buf);
    return added < 0 ? -1 : 0;
}

/* Queues the commands of a commit: a SET NX per new key, the script per RS_SCRIPT_KEYS_MAX existing
 * keys (one Redis) or per key (cluster). at[i] is where item i's answer is: command at[i].cmd,
 * element at[i].el of the script's answer, or -1 for a SET. */
struct rs_at {
    size_t cmd;
    long el;
};

static int commit_send(struct rs_store *r, const struct store_commit *items, size_t n, struct rs_at *at,
                       size_t *idx)
{
    size_t per = rconn_is_cluster(r->rc) ? 1 : RS_SCRIPT_KEYS_MAX, m = 0;
    rconn_batch_reset(r->b);
    for (size_t i = 0; i < n; i++) {
        if (items[i].version) {
            idx[m++] = i;
            continue;
        }
        at[i] = (struct rs_at){ rconn_batch_size(r->b), -1 };
        if (commit_new(r, &items[i]))
            return CW_EUNAVAIL;
    }
    for (size_t i = 0; i < m; i += per) {
        size_t k = m - i < per ? m - i : per;
        for (size_t j = 0; j < k; j++)
            at[idx[i + j]] = (struct rs_at){ rconn_batch_size(r->b), (long)j };
        if (commit_cas(r, items, idx + i, k))
            return CW_EUNAVAIL;
    }
    return run(r);
}

static int rs_commit(struct store *s, struct store_commit *items, size_t n)
{
    struct rs_store *r = (struct rs_store *)s;
    if (!n)
        return 0;
    struct rs_at *at = calloc(n, sizeof *at);
    size_t *idx = calloc(n, sizeof *idx);
    int rc = at && idx ? commit_send(r, items, n, at, idx) : CW_EUNAVAIL;
    for (size_t i = 0; i < n; i++) {
        const redisReply *x = rc ? NULL : rconn_batch_reply(r->b, at[i].cmd);
        if (x && at[i].el < 0)
            items[i].ok = x->type == REDIS_REPLY_STATUS;  /* OK; nil: the key exists (lost the race) */
        else if (x)
            items[i].ok = x->type == REDIS_REPLY_ARRAY && (size_t)at[i].el < x->elements &&
                          x->element[at[i].el]->type == REDIS_REPLY_INTEGER && x->element[at[i].el]->integer == 1;
        else
            items[i].ok = 0;
    }
    free(at);
    free(idx);
    return rc;
}

/* ---- findings -------------------------------------------------------------------------------- */

static int rs_recording(struct rs_store *r, int *record);
static long long queue_add(struct rconn_batch *b, const redisReply *x, size_t at, const char *id, const char *now);
static int queue_mark(struct rs_store *r, const char *const *ids, const long long *revs, size_t n);

/* One call of the finding script for items[0..n) (see script_fput); on one Redis the listing
 * index is its last key. */
static int fput_add(struct rs_store *r, const struct store_finding_put *items, size_t n, int record)
{
    int with_index = !rconn_is_cluster(r->rc);
    const char **keys = malloc((n + 1) * sizeof *keys), **args = malloc(n * RS_FPUT_ARGS * sizeof *args);
    char (*fk)[RS_KEY_MAX] = malloc(n * sizeof *fk), (*nums)[3][RS_NUM_MAX] = malloc(n * sizeof *nums), ret[RS_NUM_MAX];
    int added = -1;
    if (keys && args && fk && nums) {
        snprintf(ret, sizeof ret, "%lld", (long long)STORE_FINDING_RETENTION_S * 1000);
        for (size_t i = 0; i < n; i++) {
            const struct store_finding_put *u = &items[i];
            key_name(fk[i], sizeof fk[i], 'f', u->id);
            keys[i] = fk[i];
            snprintf(nums[i][0], RS_NUM_MAX, "%llu", (unsigned long long)u->version);
            snprintf(nums[i][1], RS_NUM_MAX, "%lld", (long long)u->now_ms);
            snprintf(nums[i][2], RS_NUM_MAX, "%u", u->outside_count);
            const char *a[RS_FPUT_ARGS] = { u->evidence_json, u->severity ? u->severity : "", u->account ? u->account : "",
                                            u->function ? u->function : "", nums[i][0], u->new_outside ? "1" : "0",
                                            nums[i][1], ret, u->ensure ? "1" : "0",
                                            u->notify == STORE_NOTIFY_RAISED ? "2" : u->notify ? "1" : "0",
                                            record ? "1" : "0", nums[i][2], store_workload_name(u->workload),
                                            u->id };
            memcpy(args + i * RS_FPUT_ARGS, a, sizeof a);
        }
        keys[n] = RS_INDEX;
        added = rconn_batch_eval(r->b, r->s_fput, (int)n + with_index, keys, (int)(n * RS_FPUT_ARGS), args, NULL);
    }
    free(keys);
    free(args);
    free(fk);
    free(nums);
    return added < 0 ? -1 : 0;
}

/* Sends the finding scripts of items, RS_SCRIPT_KEYS_MAX findings a call on one Redis, one on a
 * cluster; their answers stay in r->b (fput_reply). */
static int fput_send(struct rs_store *r, struct store_finding_put *items, size_t n, int record)
{
    size_t per = rconn_is_cluster(r->rc) ? 1 : RS_SCRIPT_KEYS_MAX;
    rconn_batch_reset(r->b);
    for (size_t i = 0; i < n; i += per)
        if (fput_add(r, items + i, n - i < per ? n - i : per, record))
            return CW_EUNAVAIL;
    return run(r);
}

/* The answer of finding i of the last fput_send, or NULL. */
static const redisReply *fput_reply(struct rs_store *r, size_t i)
{
    size_t per = rconn_is_cluster(r->rc) ? 1 : RS_SCRIPT_KEYS_MAX;
    const redisReply *x = rconn_batch_reply(r->b, i / per);
    return x && x->type == REDIS_REPLY_ARRAY && i % per < x->elements ? x->element[i % per] : NULL;
}

/* The second step of a finding write (store.h, "Finding events"): on a cluster the listing index
 * (created_ms is fixed at creation, so ZADD NX is idempotent; on one Redis the script added it),
 * and the events not yet queued, in one round trip (none when there is nothing to send); then
 * their revisions marked queued. Any error reply (an XADD refused) fails the call, and the
 * sender's retry queues what is missing. */
static int fput_queue(struct rs_store *r, struct store_finding_put *items, size_t n, long long *revs,
                      const char **ids)
{
    rconn_batch_reset(r->b2);
    int with_index = rconn_is_cluster(r->rc);
    char now[24];
    for (size_t i = 0; i < n; i++) {
        const redisReply *x = fput_reply(r, i);
        items[i].created = 0;
        if (!x || x->type != REDIS_REPLY_ARRAY || x->elements < 4 || x->element[0]->type != REDIS_REPLY_INTEGER ||
            x->element[1]->type != REDIS_REPLY_STRING)
            return CW_EUNAVAIL;
        items[i].created = x->element[0]->integer == 1;
        ids[i] = items[i].id;
        snprintf(now, sizeof now, "%lld", (long long)items[i].now_ms);
        if ((with_index && rconn_batch_add(r->b2, RS_INDEX, "ZADD %s NX %s %s", RS_INDEX, x->element[1]->str,
                                      items[i].id) < 0) ||
            (revs[i] = queue_add(r->b2, x, 2, items[i].id, now)) < 0)
            return CW_EUNAVAIL;
    }
    if (run_on(r, r->b2))
        return CW_EUNAVAIL;
    return queue_mark(r, ids, revs, n);
}

static int rs_finding_put(struct store *s, struct store_finding_put *items, size_t n)
{
    struct rs_store *r = (struct rs_store *)s;
    if (!n)
        return 0;
    for (size_t i = 0; i < n; i++)
        items[i].revision = 0;
    int record, rc = rs_recording(r, &record);
    if (rc || (rc = fput_send(r, items, n, record)))
        return rc;
    long long *revs = calloc(n, sizeof *revs);
    const char **ids = calloc(n, sizeof *ids);
    rc = revs && ids ? fput_queue(r, items, n, revs, ids) : CW_EUNAVAIL;
    for (size_t i = 0; i < n && !rc; i++)
        items[i].revision = revs[i] > 0 ? (uint64_t)revs[i] : 0;
    free(revs);
    free(ids);
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

/* The fields a listing filters on (sv, ac, fn, wk). A finding written before workloads has no wk:
 * it is a Lambda finding. */
struct rs_filter_fields {
    int sev;
    char acct[EV_ACCOUNT_MAX];
    char fn[EV_FUNCTION_MAX];
    char wk[STORE_WORKLOAD_MAX];
};

/* HGETALL reply to a finding; returns 0, CW_ENOTFOUND for an empty hash. Fills the filter
 * fields too when ff is not NULL. */
static int parse_finding(const redisReply *h, const char *id, struct store_finding *out, struct rs_filter_fields *ff)
{
    memset(out, 0, sizeof *out);
    if (h->type != REDIS_REPLY_ARRAY || h->elements == 0)
        return CW_ENOTFOUND;
    snprintf(out->id, sizeof out->id, "%s", id);
    if (ff) {
        memset(ff, 0, sizeof *ff);
        ff->sev = -1;
        snprintf(ff->wk, sizeof ff->wk, "%s", store_workload_name(NULL));
    }
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
        else if (ff && strcmp(k->str, "sv") == 0)
            ff->sev = det_severity_parse(v->str);
        else if (ff && strcmp(k->str, "ac") == 0)
            snprintf(ff->acct, sizeof ff->acct, "%s", v->str);
        else if (ff && strcmp(k->str, "fn") == 0)
            snprintf(ff->fn, sizeof ff->fn, "%s", v->str);
        else if (ff && strcmp(k->str, "wk") == 0)
            snprintf(ff->wk, sizeof ff->wk, "%s", store_workload_name(v->str));
    }
    if (!out->evidence_json) {
        store_finding_free(out);
        return CW_ENOTFOUND;
    }
    return 0;
}


/* The findings in one round trip (store.h): one HGETALL each, pipelined (on a cluster, to each
 * finding's node). */
static int rs_finding_get_many(struct store *s, const char *const *ids, size_t n, struct store_finding *out,
                               int *rcs)
{
    struct rs_store *r = (struct rs_store *)s;
    char fk[RS_KEY_MAX];
    rconn_batch_reset(r->b);
    for (size_t i = 0; i < n; i++) {
        key_name(fk, sizeof fk, 'f', ids[i]);
        if (rconn_batch_add(r->b, fk, "HGETALL %s", fk) < 0)
            return CW_EUNAVAIL;
    }
    int rc = n ? run(r) : 0;
    size_t done = 0;
    for (; done < n && !rc; done++) {
        rcs[done] = parse_finding(rconn_batch_reply(r->b, done), ids[done], &out[done], NULL);
        if (rcs[done] && rcs[done] != CW_ENOTFOUND)
            rc = CW_EUNAVAIL;
    }
    for (size_t i = 0; rc && i < done; i++)  /* nothing filled on a failure */
        if (!rcs[i])
            store_finding_free(&out[i]);
    return rc;
}

static int rs_finding_get(struct store *s, const char *id, struct store_finding *out)
{
    int found;
    int rc = rs_finding_get_many(s, &id, 1, out, &found);
    return rc ? rc : found;
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
/* The window of the index after the cursor's entry, by rank, in one step: the rank and the range
 * are read together, so findings created meanwhile (they rank first, newest first) cannot shift
 * the window back over entries already listed. KEYS: index. ARGV: cursor id, its score, count.
 * Returns the entries WITHSCORES, or nil when the cursor's entry is gone or moved (the caller then
 * continues by score). */
static const char script_after[] =
    "local r = redis.call('ZREVRANK', KEYS[1], ARGV[1])\n"
    "if not r then return false end\n"
    "local s = redis.call('ZSCORE', KEYS[1], ARGV[1])\n"
    "if tonumber(s) ~= tonumber(ARGV[2]) then return false end\n"
    "return redis.call('ZREVRANGE', KEYS[1], r + 1, r + tonumber(ARGV[3]), 'WITHSCORES')\n";

/* The window after the cursor's entry (script_after) into *z, or NULL when there is no cursor or
 * its entry is gone: then the caller reads by score. The reply stays valid until the next batch. */
static int list_after(struct rs_store *r, const struct rs_list *l, redisReply **z)
{
    *z = NULL;
    if (!l->have_after)
        return 0;
    char ms[24], cnt[24];
    snprintf(ms, sizeof ms, "%lld", (long long)l->after_ms);
    snprintf(cnt, sizeof cnt, "%d", RS_LIST_BATCH);
    const char *keys[1] = { RS_INDEX };
    const char *args[3] = { l->after_id, ms, cnt };
    rconn_batch_reset(r->b);
    if (rconn_batch_eval(r->b, r->s_after, 1, keys, 3, args, NULL) < 0 || run(r))
        return CW_EUNAVAIL;
    redisReply *x = rconn_batch_reply(r->b, 0);
    if (x->type == REDIS_REPLY_ARRAY)
        *z = x;
    return 0;
}

/* The window by score: at or below the cursor's score (or until), down to since, skipping
 * tie_skip entries. *z valid until the next batch. */
static int list_by_score(struct rs_store *r, const struct rs_list *l, redisReply **z)
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
    if (rconn_batch_add(r->b, RS_INDEX, "ZREVRANGEBYSCORE %s %s %s WITHSCORES LIMIT %lld %d", RS_INDEX, max, min,
                        (long long)l->tie_skip, RS_LIST_BATCH) < 0 || run(r))
        return CW_EUNAVAIL;
    *z = rconn_batch_reply(r->b, 0);
    return (*z)->type == REDIS_REPLY_ARRAY ? 0 : CW_EUNAVAIL;
}

/* Reads the next window of the index into l->ids and l->scores (l->fetched of them): by rank after
 * the cursor's entry, else by score, leaving out the entries at the cursor's score that sort before
 * it, a window further each time (tie_skip). *exhausted: no entry (in range) follows the window. */
static int list_window(struct rs_store *r, struct rs_list *l, int *exhausted)
{
    const struct store_query *q = l->q;
    redisReply *z;
    if (list_after(r, l, &z))
        return CW_EUNAVAIL;
    int by_rank = z != NULL;
    if (!z && list_by_score(r, l, &z))
        return CW_EUNAVAIL;
    size_t m = z->elements / 2;
    int below = 0;  /* by rank: reached entries older than `since` */
    l->fetched = 0;
    for (size_t i = 0; i < m; i++) {
        int64_t sc = strtoll(z->element[2 * i + 1]->str, NULL, 10);
        const char *id = z->element[2 * i]->str;
        if (by_rank && q->since_ms && sc < q->since_ms) {
            below = 1;
            break;
        }
        if (!by_rank && l->have_after && sc == l->after_ms && strcmp(id, l->after_id) >= 0)
            continue;
        snprintf(l->ids[l->fetched], sizeof l->ids[0], "%s", id);
        l->scores[l->fetched++] = sc;
    }
    *exhausted = m < RS_LIST_BATCH || below;
    return 0;
}

static int list_match(const struct store_query *q, const struct store_finding *f, const struct rs_filter_fields *ff)
{
    return (q->status < 0 || f->status == q->status) && (q->severity < 0 || ff->sev == q->severity) &&
           (!q->account || strcmp(q->account, ff->acct) == 0) && (!q->function || strcmp(q->function, ff->fn) == 0) &&
           (!q->workload || strcmp(q->workload, ff->wk) == 0);
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
        struct rs_filter_fields ff;
        if (parse_finding(rconn_batch_reply(r->b, i), l->ids[i], &f, &ff)) {
            /* expired: unindex below (memmove: stale may equal i, which snprintf may not overlap) */
            memmove(l->ids[stale++], l->ids[i], sizeof l->ids[0]);
            continue;
        }
        if (list_match(l->q, &f, &ff))
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
        int exhausted;
        if ((rc = list_window(r, &l, &exhausted)))
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
    int record, rc = rs_recording(r, &record);
    if (rc)
        return rc;
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
    const char *args[4] = { status >= 0 ? store_status_name(status) : "", nv, now, record ? "1" : "0" };
    rconn_batch_reset(r->b);
    int added = rconn_batch_eval(r->b, r->s_patch, 1, keys, 4, args, NULL);
    free(nv);
    if (added < 0 || (rc = run(r)))
        return CW_EUNAVAIL;
    redisReply *x = rconn_batch_reply(r->b, 0);
    if (x->type == REDIS_REPLY_INTEGER && x->integer == 0)
        return CW_ENOTFOUND;
    rconn_batch_reset(r->b2);
    long long rv = queue_add(r->b2, x, 1, id, now);
    if (rv < 0 || (rv > 0 && run_on(r, r->b2)))
        return CW_EUNAVAIL;  /* the same patch again queues it */
    const char *ids[1] = { id };
    return rv > 0 ? queue_mark(r, ids, &rv, 1) : 0;
}

/* ---- the outbox -------------------------------------------------------------------------------
 * Streams under one hash tag, so the scripts that move entries between them run on one cluster
 * slot: RS_OUT (every event; a consumer group per sink), cw:dead:{o}:<sink> (dead letters),
 * cw:redo:{o}:<sink> (dead letters sent back; a group named as the sink), RS_DSTAT (dead letters
 * dropped at the bound, per sink). An entry handed out from redo reads "r<id>". */

static void sink_key(char *out, size_t size, const char *kind, const char *sink)
{
    snprintf(out, size, "cw:%s:{o}:%s", kind, sink);
}

/* Executes the batch without judging error replies (the caller reads them). 0 or CW_EUNAVAIL. */
static int exec_raw(struct rs_store *r, struct rconn_batch *b)
{
    return rconn_batch_exec(r->rc, b) ? CW_EUNAVAIL : 0;
}

static int is_error(const redisReply *x)
{
    return !x || x->type == REDIS_REPLY_ERROR;
}

/* Are events recorded? This process opened sinks, or the outbox has a consumer group (cached for
 * STORE_OUT_GROUPS_CHECK_MS). 0 or CW_EUNAVAIL. */
static int rs_recording(struct rs_store *r, int *record)
{
    struct rs_shared *sh = r->sh;
    int64_t now = cw_mono_ms();
    pthread_mutex_lock(&sh->mu);
    int known = sh->sinks_open || (sh->checked && now - sh->checked_ms < STORE_OUT_GROUPS_CHECK_MS);
    *record = sh->sinks_open || sh->groups;
    pthread_mutex_unlock(&sh->mu);
    if (known)
        return 0;
    rconn_batch_reset(r->b2);
    if (rconn_batch_add(r->b2, RS_OUT, "XINFO GROUPS %s", RS_OUT) < 0 || exec_raw(r, r->b2))
        return CW_EUNAVAIL;
    redisReply *x = rconn_batch_reply(r->b2, 0);
    /* Only "no such key" means no outbox yet. Any other error (LOADING after a restart, NOPERM,
     * MASTERDOWN) is no answer: taken as "no groups" and cached, it would let this instance write
     * findings without queueing their events for the sinks other instances deliver to. */
    if (is_error(x) && !(x && x->str && strstr(x->str, "no such key")))
        return CW_EUNAVAIL;
    int groups = x->type == REDIS_REPLY_ARRAY && x->elements > 0;
    pthread_mutex_lock(&sh->mu);
    sh->groups = groups;
    sh->checked = 1;
    sh->checked_ms = now;
    pthread_mutex_unlock(&sh->mu);
    *record = groups;
    return 0;
}

static const char *reply_str(const redisReply *x, size_t *len)
{
    if (x && (x->type == REDIS_REPLY_STRING || x->type == REDIS_REPLY_STATUS)) {
        *len = x->len;
        return x->str;
    }
    *len = 0;
    return "";
}

/* A finding script's answer x from element `at` on: rv, qd and, when rv > qd, the event's fields
 * (RS_LUA_OUT). Adds its XADD to b and returns rv (0: nothing to queue, -1: out of memory). */
static long long queue_add(struct rconn_batch *b, const redisReply *x, size_t at, const char *id, const char *now)
{
    if (x->type != REDIS_REPLY_ARRAY || x->elements < at + 2 || x->element[at]->type != REDIS_REPLY_INTEGER)
        return 0;
    long long rv = x->element[at]->integer, qd = x->element[at + 1]->integer;
    if (rv <= qd || x->elements < at + 8)
        return 0;
    static const char *const names[6] = { "kind", "ev", "st", "nt", "ca", "ua" };
    const char *argv[21];
    size_t lens[21], a = 0;
    char rvs[24];
    snprintf(rvs, sizeof rvs, "%lld", rv);
    argv[a] = "XADD", lens[a++] = 4;
    argv[a] = RS_OUT, lens[a++] = strlen(RS_OUT);
    argv[a] = "*", lens[a++] = 1;
    argv[a] = "id", lens[a++] = 2;
    argv[a] = id, lens[a++] = strlen(id);
    argv[a] = "rev", lens[a++] = 3;
    argv[a] = rvs, lens[a++] = strlen(rvs);
    for (size_t i = 0; i < 6; i++) {
        argv[a] = names[i], lens[a++] = strlen(names[i]);
        argv[a] = reply_str(x->element[at + 2 + i], &lens[a]), a++;
    }
    argv[a] = "q", lens[a++] = 1;
    argv[a] = now, lens[a++] = strlen(now);
    return rconn_batch_add_argv(b, RS_OUT, (int)a, argv, lens) < 0 ? -1 : rv;
}

/* Sets qd of each finding ids[i] with revs[i] > 0 (after their XADDs succeeded). */
static int queue_mark(struct rs_store *r, const char *const *ids, const long long *revs, size_t n)
{
    rconn_batch_reset(r->b2);
    char fk[RS_KEY_MAX], rv[24];
    size_t added = 0;
    for (size_t i = 0; i < n; i++) {
        if (revs[i] <= 0)
            continue;
        key_name(fk, sizeof fk, 'f', ids[i]);
        snprintf(rv, sizeof rv, "%lld", revs[i]);
        const char *keys[1] = { fk };
        const char *args[1] = { rv };
        if (rconn_batch_eval(r->b2, r->s_mark, 1, keys, 1, args, NULL) < 0)
            return CW_EUNAVAIL;
        added++;
    }
    if (!added)
        return 0;
    if (exec_raw(r, r->b2))
        return CW_EUNAVAIL;
    for (size_t i = 0; i < rconn_batch_size(r->b2); i++)
        if (is_error(rconn_batch_reply(r->b2, i)))
            return CW_EUNAVAIL;
    return 0;
}

static int rs_out_open(struct store *s, const char *const *sinks, size_t n)
{
    struct rs_store *r = (struct rs_store *)s;
    if (n > STORE_SINK_MAX)
        return CW_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!store_sink_name_valid(sinks[i]))
            return CW_EINVAL;
    rconn_batch_reset(r->b2);
    char rk[RS_KEY_MAX];
    for (size_t i = 0; i < n; i++) {
        sink_key(rk, sizeof rk, "redo", sinks[i]);
        /* "$": a new sink gets the events from its creation on */
        if (rconn_batch_add(r->b2, RS_OUT, "XGROUP CREATE %s %s $ MKSTREAM", RS_OUT, sinks[i]) < 0 ||
            rconn_batch_add(r->b2, rk, "XGROUP CREATE %s %s 0 MKSTREAM", rk, sinks[i]) < 0)
            return CW_EUNAVAIL;
    }
    if (n && exec_raw(r, r->b2))
        return CW_EUNAVAIL;
    for (size_t i = 0; i < rconn_batch_size(r->b2); i++) {
        redisReply *x = rconn_batch_reply(r->b2, i);
        if (is_error(x) && (!x || strncmp(x->str, "BUSYGROUP", 9) != 0))
            return CW_EUNAVAIL;
    }
    if (n) {
        pthread_mutex_lock(&r->sh->mu);
        r->sh->sinks_open = 1;
        pthread_mutex_unlock(&r->sh->mu);
    }
    return 0;
}

/* One stream entry [id, fields] into ev; 0, 1 when the entry is gone (trimmed while held), or
 * CW_EUNAVAIL. */
static int parse_event(const redisReply *e, int redo, struct store_event *ev)
{
    memset(ev, 0, sizeof *ev);
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING)
        return CW_EUNAVAIL;
    snprintf(ev->entry, sizeof ev->entry, "%s%s", redo ? "r" : "", e->element[0]->str);
    const redisReply *f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY)
        return 1;
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const char *k = f->element[i]->str, *v = f->element[i + 1]->str;
        size_t vl = f->element[i + 1]->len;
        if (!k || !v)
            continue;
        if (!strcmp(k, "id"))
            snprintf(ev->finding.id, sizeof ev->finding.id, "%s", v);
        else if (!strcmp(k, "rev"))
            ev->revision = strtoull(v, NULL, 10);
        else if (!strcmp(k, "kind"))
            ev->kind = v[0] >= '1' && v[0] <= '3' && !v[1] ? v[0] - '0' : STORE_EV_UPDATED;  /* as the scripts write it */
        else if (!strcmp(k, "ev"))
            ev->finding.evidence_json = dup_n(v, vl);
        else if (!strcmp(k, "st")) {
            int st = store_status_parse(v);
            ev->finding.status = st < 0 ? STORE_ST_OPEN : st;
        }
        else if (!strcmp(k, "nt") && vl > 0)
            ev->finding.note = dup_n(v + 1, vl - 1);
        else if (!strcmp(k, "ca"))
            ev->finding.created_ms = strtoll(v, NULL, 10);
        else if (!strcmp(k, "ua"))
            ev->finding.updated_ms = strtoll(v, NULL, 10);
        else if (!strcmp(k, "q"))
            ev->queued_ms = strtoll(v, NULL, 10);
        else if (!strcmp(k, "rq"))
            ev->retried_ms = strtoll(v, NULL, 10);
        else if (!strcmp(k, "rs"))
            snprintf(ev->reason, sizeof ev->reason, "%s", v);
        else if (!strcmp(k, "at"))
            ev->attempts = (uint32_t)strtoul(v, NULL, 10);
    }
    if (!ev->finding.evidence_json) {
        store_event_free(ev);
        return CW_EUNAVAIL;
    }
    return 0;
}

/* The entries of a reply ([[id, fields], ...]) into out[*n..max), with `attempts` (-1: as stored);
 * entries gone while held are
 * acknowledged (added to gone, ids of the outbox stream only: redo entries are deleted on ack). */
static int take_entries(const redisReply *es, int redo, long attempts, struct store_event *out, size_t *n,
                        size_t max, struct rconn_batch *gone, const char *sink)
{
    if (!es || es->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i < es->elements && *n < max; i++) {
        int rc = parse_event(es->element[i], redo, &out[*n]);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            if (!redo)
                rconn_batch_add(gone, RS_OUT, "XACK %s %s %s", RS_OUT, sink, out[*n].entry);
            continue;
        }
        if (attempts >= 0)  /* else the count stored with the entry (dead letters) */
            out[*n].attempts = (uint32_t)attempts;
        (*n)++;
    }
    return 0;
}

/* One step of out_read (store.h's order): 0 the consumer's own held events, 1 events others held
 * past the claim time, 2 events sent back, 3 new events. */
static int read_add(struct rs_store *r, int step, const char *sink, const char *consumer, const char *cnt,
                    const char *rk)
{
    struct store_out_limits lim;
    store_out_get_limits(&lim);
    char idle[24];
    snprintf(idle, sizeof idle, "%lld", (long long)lim.claim_ms);
    switch (step) {
    case 0:
        return rconn_batch_add(r->b, RS_OUT, "XREADGROUP GROUP %s %s COUNT %s STREAMS %s %s 0 0", sink, consumer, cnt,
                               RS_OUT, rk);
    case 1:
        if (rconn_batch_add(r->b, RS_OUT, "XAUTOCLAIM %s %s %s %s 0-0 COUNT %s", RS_OUT, sink, consumer, idle, cnt) < 0)
            return -1;
        return rconn_batch_add(r->b, rk, "XAUTOCLAIM %s %s %s %s 0-0 COUNT %s", rk, sink, consumer, idle, cnt);
    case 2:
        return rconn_batch_add(r->b, rk, "XREADGROUP GROUP %s %s COUNT %s STREAMS %s >", sink, consumer, cnt, rk);
    default:
        return rconn_batch_add(r->b, RS_OUT, "XREADGROUP GROUP %s %s COUNT %s STREAMS %s >", sink, consumer, cnt,
                               RS_OUT);
    }
}

static int read_step(struct rs_store *r, int step, const char *sink, const char *consumer, size_t max,
                     struct store_event *out, size_t *n)
{
    char rk[RS_KEY_MAX], cnt[24];
    sink_key(rk, sizeof rk, "redo", sink);
    snprintf(cnt, sizeof cnt, "%zu", max - *n);
    rconn_batch_reset(r->b);
    rconn_batch_reset(r->b2);
    if (read_add(r, step, sink, consumer, cnt, rk) < 0 || run(r))
        return CW_EUNAVAIL;
    int rc = 0;
    long attempts = step < 2;  /* Redis does not say how often: a repeat is at least the second */
    for (size_t i = 0; i < rconn_batch_size(r->b) && !rc; i++) {
        const redisReply *x = rconn_batch_reply(r->b, i);
        if (step == 1) {  /* XAUTOCLAIM: [next, entries, deleted] */
            if (x->type == REDIS_REPLY_ARRAY && x->elements >= 2)
                rc = take_entries(x->element[1], i == 1, attempts, out, n, max, r->b2, sink);
            continue;
        }
        for (size_t j = 0; x->type == REDIS_REPLY_ARRAY && j < x->elements && !rc; j++) {  /* [[stream, entries]] */
            const redisReply *se = x->element[j];
            if (se->type != REDIS_REPLY_ARRAY || se->elements != 2 || se->element[0]->type != REDIS_REPLY_STRING)
                continue;
            rc = take_entries(se->element[1], strcmp(se->element[0]->str, RS_OUT) != 0, attempts, out, n, max,
                              r->b2, sink);
        }
    }
    if (rconn_batch_size(r->b2))
        exec_raw(r, r->b2);  /* best effort: a later read acknowledges them again */
    return rc;
}

static int rs_out_read(struct store *s, const char *sink, const char *consumer, size_t max, int64_t now_ms,
                       struct store_event *out, size_t *n)
{
    struct rs_store *r = (struct rs_store *)s;
    (void)now_ms;  /* Redis's own clock measures how long an event is held */
    *n = 0;
    if (!store_sink_name_valid(sink) || !store_consumer_name_valid(consumer))
        return CW_EINVAL;
    if (max > STORE_OUT_READ_MAX)
        max = STORE_OUT_READ_MAX;
    int rc = 0;
    for (int step = 0; step < 4 && *n < max && !rc; step++)
        rc = read_step(r, step, sink, consumer, max, out, n);
    if (rc) {
        for (size_t i = 0; i < *n; i++)
            store_event_free(&out[i]);
        *n = 0;
    }
    return rc;
}

/* "<ms>-<seq>": a stream id as Redis writes it (anything else never names an entry). */
static int entry_valid(const char *id)
{
    size_t a = strspn(id, "0123456789");
    return a > 0 && a < 21 && id[a] == '-' && strspn(id + a + 1, "0123456789") > 0 &&
           id[a + 1 + strspn(id + a + 1, "0123456789")] == 0 && strlen(id) < STORE_OUT_ENTRY_MAX;
}

static int rs_out_ack(struct store *s, const char *sink, const char *const *entries, size_t n)
{
    struct rs_store *r = (struct rs_store *)s;
    if (!store_sink_name_valid(sink))
        return CW_EINVAL;
    char rk[RS_KEY_MAX];
    sink_key(rk, sizeof rk, "redo", sink);
    rconn_batch_reset(r->b);
    for (size_t i = 0; i < n; i++) {
        const char *e = entries[i];
        int redo = e[0] == 'r', bad = 0;
        if (!entry_valid(e + redo))
            continue;  /* never handed out: nothing to acknowledge */
        if (redo)
            bad = rconn_batch_add(r->b, rk, "XACK %s %s %s", rk, sink, e + 1) < 0 ||
                  rconn_batch_add(r->b, rk, "XDEL %s %s", rk, e + 1) < 0;
        else
            bad = rconn_batch_add(r->b, RS_OUT, "XACK %s %s %s", RS_OUT, sink, e) < 0;
        if (bad)
            return CW_EUNAVAIL;
    }
    return rconn_batch_size(r->b) ? run(r) : 0;
}

static int rs_out_dead(struct store *s, const char *sink, const struct store_event *ev, const char *reason,
                       int64_t now_ms)
{
    struct rs_store *r = (struct rs_store *)s;
    (void)now_ms;
    if (!store_sink_name_valid(sink))
        return CW_EINVAL;
    struct store_out_limits lim;
    store_out_get_limits(&lim);
    int redo = ev->entry[0] == 'r';
    const char *id = ev->entry + redo;
    char src[RS_KEY_MAX], dk[RS_KEY_MAX], nums[6][24];
    if (redo)
        sink_key(src, sizeof src, "redo", sink);
    else
        snprintf(src, sizeof src, "%s", RS_OUT);
    sink_key(dk, sizeof dk, "dead", sink);
    const struct store_finding *f = &ev->finding;
    size_t nl = f->note ? strlen(f->note) : 0;
    char *nt = malloc(nl + 2);
    if (!nt)
        return CW_EUNAVAIL;
    if (f->note)
        nt[0] = '=', memcpy(nt + 1, f->note, nl + 1);
    else
        nt[0] = 0;
    snprintf(nums[0], sizeof nums[0], "%zu", lim.dead_max);
    snprintf(nums[1], sizeof nums[1], "%llu", (unsigned long long)ev->revision);
    snprintf(nums[2], sizeof nums[2], "%d", ev->kind);
    snprintf(nums[3], sizeof nums[3], "%lld", (long long)f->created_ms);
    snprintf(nums[4], sizeof nums[4], "%lld", (long long)f->updated_ms);
    snprintf(nums[5], sizeof nums[5], "%lld", (long long)ev->queued_ms);
    char at[24];
    snprintf(at, sizeof at, "%u", ev->attempts);
    const char *keys[3] = { src, dk, RS_DSTAT };
    const char *args[25] = { sink, entry_valid(id) ? id : "0-0", nums[0], reason ? reason : "", redo ? "1" : "0",
                             "id", f->id, "rev", nums[1], "kind", nums[2], "ev", f->evidence_json ? f->evidence_json : "{}",
                             "st", store_status_name(f->status), "nt", nt, "ca", nums[3], "ua", nums[4], "q", nums[5],
                             "at", at };
    rconn_batch_reset(r->b);
    int added = rconn_batch_eval(r->b, r->s_dead, 3, keys, 25, args, NULL);
    free(nt);
    return added < 0 ? CW_EUNAVAIL : run(r);
}

static int rs_out_trim(struct store *s, const char *sink, int64_t now_ms, size_t *dead_lettered)
{
    struct rs_store *r = (struct rs_store *)s;
    (void)now_ms;
    *dead_lettered = 0;
    if (!store_sink_name_valid(sink))
        return CW_EINVAL;
    struct store_out_limits lim;
    store_out_get_limits(&lim);
    char dk[RS_KEY_MAX], om[24], dm[24];
    sink_key(dk, sizeof dk, "dead", sink);
    snprintf(om, sizeof om, "%zu", lim.out_max);
    snprintf(dm, sizeof dm, "%zu", lim.dead_max);
    const char *keys[3] = { RS_OUT, dk, RS_DSTAT };
    const char *args[3] = { sink, om, dm };
    rconn_batch_reset(r->b);
    if (rconn_batch_eval(r->b, r->s_trim, 3, keys, 3, args, NULL) < 0 || run(r))
        return CW_EUNAVAIL;
    redisReply *x = rconn_batch_reply(r->b, 0);
    *dead_lettered = x->type == REDIS_REPLY_INTEGER && x->integer > 0 ? (size_t)x->integer : 0;
    return 0;
}

static int rs_out_stats(struct store *s, const char *sink, int64_t now_ms, struct store_out_stats *st)
{
    struct rs_store *r = (struct rs_store *)s;
    (void)now_ms;
    memset(st, 0, sizeof *st);
    if (!store_sink_name_valid(sink))
        return CW_EINVAL;
    char rk[RS_KEY_MAX], dk[RS_KEY_MAX];
    sink_key(rk, sizeof rk, "redo", sink);
    sink_key(dk, sizeof dk, "dead", sink);
    const char *keys[4] = { RS_OUT, rk, dk, RS_DSTAT };
    const char *args[1] = { sink };
    rconn_batch_reset(r->b);
    if (rconn_batch_eval(r->b, r->s_stats, 4, keys, 1, args, NULL) < 0 || run(r))
        return CW_EUNAVAIL;
    redisReply *x = rconn_batch_reply(r->b, 0);
    if (x->type != REDIS_REPLY_ARRAY || x->elements != 5)
        return CW_EUNAVAIL;
    long long v[4];
    for (int i = 0; i < 4; i++)
        v[i] = x->element[i]->type == REDIS_REPLY_INTEGER ? x->element[i]->integer : 0;
    st->depth = v[0] > 0 ? (uint64_t)v[0] : 0;  /* an unknown lag (-1) shows as 0 */
    st->held = (uint64_t)(v[1] > 0 ? v[1] : 0);
    st->dead = (uint64_t)(v[2] > 0 ? v[2] : 0);
    st->dead_dropped = (uint64_t)(v[3] > 0 ? v[3] : 0);
    if (x->element[4]->type == REDIS_REPLY_STRING)
        st->oldest_ms = strtoll(x->element[4]->str, NULL, 10);  /* the id's time: Redis's clock */
    return 0;
}

static int rs_dead_list(struct store *s, const char *sink, const char *after, size_t limit,
                        struct store_event *out, size_t *n, int *more)
{
    struct rs_store *r = (struct rs_store *)s;
    *n = 0;
    *more = 0;
    if (!store_sink_name_valid(sink))
        return CW_EINVAL;
    char dk[RS_KEY_MAX], from[STORE_OUT_ENTRY_MAX + 2], cnt[24];
    sink_key(dk, sizeof dk, "dead", sink);
    if (after && *after && !entry_valid(after))
        return CW_EINVAL;
    snprintf(from, sizeof from, after && *after ? "(%s" : "-", after);
    snprintf(cnt, sizeof cnt, "%zu", limit + 1);
    rconn_batch_reset(r->b);
    rconn_batch_reset(r->b2);
    if (rconn_batch_add(r->b, dk, "XRANGE %s %s + COUNT %s", dk, from, cnt) < 0 || run(r))
        return CW_EUNAVAIL;
    redisReply *x = rconn_batch_reply(r->b, 0);
    int rc = take_entries(x, 0, -1, out, n, limit, r->b2, sink);
    *more = !rc && x->type == REDIS_REPLY_ARRAY && x->elements > limit;
    return rc;
}

static int rs_dead_retry(struct store *s, const char *sink, const char *entry, int64_t now_ms, size_t *moved)
{
    struct rs_store *r = (struct rs_store *)s;
    *moved = 0;
    if (!store_sink_name_valid(sink))
        return CW_EINVAL;
    if (entry && !entry_valid(entry))
        return CW_ENOTFOUND;
    struct store_out_limits lim;
    store_out_get_limits(&lim);
    char dk[RS_KEY_MAX], rk[RS_KEY_MAX], cnt[24], now[24];
    sink_key(dk, sizeof dk, "dead", sink);
    sink_key(rk, sizeof rk, "redo", sink);
    snprintf(cnt, sizeof cnt, "%zu", lim.dead_max);
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    const char *keys[2] = { dk, rk };
    const char *args[4] = { sink, entry ? entry : "", cnt, now };
    rconn_batch_reset(r->b);
    if (rconn_batch_eval(r->b, r->s_retry, 2, keys, 4, args, NULL) < 0 || run(r))
        return CW_EUNAVAIL;
    redisReply *x = rconn_batch_reply(r->b, 0);
    if (x->type != REDIS_REPLY_INTEGER)
        return CW_EUNAVAIL;
    if (x->integer < 0)
        return CW_ENOTFOUND;
    *moved = (size_t)x->integer;
    return 0;
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
    pthread_mutex_lock(&r->sh->mu);
    int last = --r->sh->refs == 0;
    pthread_mutex_unlock(&r->sh->mu);
    if (last) {
        pthread_mutex_destroy(&r->sh->mu);
        free(r->sh);
    }
    rconn_batch_free(r->b);
    rconn_batch_free(r->b2);
    rconn_free(r->rc);
    free(r->loaded);
    free(r->sorted);
    free(r);
}

/* Tests only (store.h, enum store_fault): the outbox fault makes the stream's key a string, so XADD
 * answers WRONGTYPE as it would for any key clash; clearing deletes it (the sinks' groups with it:
 * the caller opens them again, as a delivery thread does after a failure). */
static int rs_test_fault(struct store *s, int fault)
{
    struct rs_store *r = (struct rs_store *)s;
    if (fault != STORE_FAULT_NONE && fault != STORE_FAULT_OUTBOX)
        return CW_EINVAL;
    rconn_batch_reset(r->b);
    if (rconn_batch_add(r->b, RS_OUT, "DEL %s", RS_OUT) < 0 ||
        (fault == STORE_FAULT_OUTBOX && rconn_batch_add(r->b, RS_OUT, "SET %s broken", RS_OUT) < 0))
        return CW_EUNAVAIL;
    return run(r);
}

static const struct store_ops rs_ops = {
    .name = "redis",
    .load = rs_load,
    .commit = rs_commit,
    .finding_put = rs_finding_put,
    .finding_get = rs_finding_get,
    .finding_get_many = rs_finding_get_many,
    .finding_list = rs_finding_list,
    .finding_patch = rs_finding_patch,
    .out_open = rs_out_open,
    .out_read = rs_out_read,
    .out_ack = rs_out_ack,
    .out_dead = rs_out_dead,
    .out_trim = rs_out_trim,
    .out_stats = rs_out_stats,
    .dead_list = rs_dead_list,
    .dead_retry = rs_dead_retry,
    .ping = rs_ping,
    .why = rs_why,
    .clone = rs_clone,
    .free = rs_free,
    .test_fault = rs_test_fault,
};

/* A handle over rc sharing sh (NULL: a new one). */
static struct store *rs_wrap(struct rconn *rc, struct rs_shared *sh)
{
    struct rs_store *r = calloc(1, sizeof *r);
    int own = !sh;
    if (own && (sh = calloc(1, sizeof *sh)) != NULL)
        pthread_mutex_init(&sh->mu, NULL);
    if (!r || !rc || !sh || !(r->b = rconn_batch_new()) || !(r->b2 = rconn_batch_new())) {
        if (r)
            rconn_batch_free(r->b);
        free(r);
        rconn_free(rc);
        if (own && sh) {
            pthread_mutex_destroy(&sh->mu);
            free(sh);
        }
        return NULL;
    }
    pthread_mutex_lock(&sh->mu);
    sh->refs++;
    pthread_mutex_unlock(&sh->mu);
    r->base.ops = &rs_ops;
    r->rc = rc;
    r->sh = sh;
    return &r->base;
}

static struct store *rs_new(const struct rconn_config *cfg, const struct store_redis_tls *tls, char *msg,
                            size_t msg_size)
{
    struct rconn_tls files = { 0 };
    if (tls)
        files = (struct rconn_tls){ tls->ca_file, tls->cert_file, tls->key_file };
    struct rconn *rc = rconn_new(cfg, &files, msg, msg_size);
    if (!rc)
        return NULL;
    struct store *s = rs_wrap(rc, NULL);
    if (!s)
        return NULL;
    struct rs_store *r = (struct rs_store *)s;
    r->s_commit = rconn_script(rc, script_commit);
    r->s_fput = rconn_script(rc, script_fput);
    r->s_patch = rconn_script(rc, script_patch);
    r->s_mark = rconn_script(rc, script_mark);
    r->s_dead = rconn_script(rc, script_dead);
    r->s_retry = rconn_script(rc, script_retry);
    r->s_trim = rconn_script(rc, script_trim);
    r->s_stats = rconn_script(rc, script_stats);
    r->s_after = rconn_script(rc, script_after);
    return s;
}

static struct store *rs_clone(struct store *s)
{
    struct rs_store *src = (struct rs_store *)s;
    struct store *c = rs_wrap(rconn_clone(src->rc), src->sh);
    if (c) {
        struct rs_store *r = (struct rs_store *)c;
        r->s_commit = src->s_commit;
        r->s_fput = src->s_fput;
        r->s_patch = src->s_patch;
        r->s_mark = src->s_mark;
        r->s_dead = src->s_dead;
        r->s_retry = src->s_retry;
        r->s_trim = src->s_trim;
        r->s_stats = src->s_stats;
        r->s_after = src->s_after;
    }
    return c;
}

/* Both constructors: parse the address(es), then the same store over one node or a cluster. */
static struct store *rs_from(int (*parse)(const char *, struct rconn_config *, char *, size_t), const char *spec,
                             int timeout_ms, const struct store_redis_tls *tls, char *msg, size_t msg_size)
{
    struct rconn_config cfg;
    if (parse(spec, &cfg, msg, msg_size))
        return NULL;
    if (timeout_ms > 0)  /* else the parser's default (redis_url.c) */
        cfg.timeout_ms = timeout_ms;
    msg[0] = '\0';
    struct store *s = rs_new(&cfg, tls, msg, msg_size);
    if (!s && !msg[0])
        snprintf(msg, msg_size, "out of memory");
    return s;
}

struct store *store_redis_new(const char *url, int timeout_ms, const struct store_redis_tls *tls, char *msg,
                              size_t msg_size)
{
    return rs_from(rconn_parse_url, url, timeout_ms, tls, msg, msg_size);
}

struct store *store_redis_cluster_new(const char *seeds, int timeout_ms, const struct store_redis_tls *tls,
                                      char *msg, size_t msg_size)
{
    return rs_from(rconn_parse_cluster, seeds, timeout_ms, tls, msg, msg_size);
}
