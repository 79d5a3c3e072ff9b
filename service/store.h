/* store.h — where key state and findings live: the embedded in-memory store or Redis.
 *
 * Key state is an opaque blob (det_encode) with a version; writes are compare-and-set on that
 * version, so two instances updating one key never lose each other's events: the loser reloads
 * and reapplies. Each key also remembers the hashes of the events already applied to it (the
 * dedup set), written in the same atomic step as the state, so an event counts exactly once.
 *
 * Every call takes a batch, so the Redis implementation can pipeline a whole request's work.
 * Errors (cw.h): 0, CW_EUNAVAIL (transient: the caller answers 503), CW_ENOTFOUND where a call
 * says so, CW_ENOMEM, CW_EINVAL for a bad sink or consumer name (outbox calls).
 * Store handles are not thread-safe: one per thread (store_clone), sharing the backend.
 */
#ifndef CW_STORE_H
#define CW_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "cw.h"


#define STORE_SEEN_MAX 2048         /* dedup hashes remembered per key; beyond, counts may include duplicates */
#define STORE_FINDING_RETENTION_S (90 * 24 * 3600) /* findings outlive key state: 90 days */
#define STORE_ID_MAX 64
#define STORE_NOTE_MAX 1024
#define STORE_LIST_MAX 500          /* findings per page */
#define STORE_WORKLOAD_MAX 16       /* a workload kind's name ("codebuild"), NUL included */

/* The outbox (findings out): see "Finding events" below. */
#define STORE_SINK_MAX 8            /* sinks per deployment */
#define STORE_SINK_NAME_MAX 32      /* [a-z0-9_-]{1,31}: part of Redis key and group names */
#define STORE_CONSUMER_MAX 64       /* a consumer (instance) name, 1-63 printable bytes */
#define STORE_OUT_MAX 100000        /* undelivered events kept per sink; beyond, the oldest are dead-lettered */
#define STORE_OUT_CLAIM_MS 60000    /* an event held this long without an ack goes to another consumer */
#define STORE_OUT_READ_MAX 64       /* events per out_read */
#define STORE_DEAD_MAX 10000        /* dead letters kept per sink; beyond, the oldest go (counted) */
#define STORE_OUT_ENTRY_MAX 48      /* an outbox entry id, "1712345678901-0" */
#define STORE_REASON_MAX 128

enum store_status { STORE_ST_OPEN = 0, STORE_ST_ACKNOWLEDGED, STORE_ST_RESOLVED, STORE_ST_SUPPRESSED,
                    STORE_ST_RETRACTED, STORE_ST_COUNT };

/* Load of one key: in akid, hashes[n_hashes]; out blob (borrowed until the next call on the
 * handle), version (0 = absent) and seen[i] = 1 when hashes[i] was already applied. */
struct store_load {
    const char *akid;
    const uint64_t *hashes;
    size_t n_hashes;
    uint8_t *seen;
    const uint8_t *blob;
    size_t blob_len;
    uint64_t version;
};

/* What a key's state holds, as far as a bounded store cares: it gives up PENDING keys (no workload
 * evidence) first, then WORKLOAD keys (a workload's, of any kind, without a finding), never FINDING
 * keys. The memory store's "lambda" eviction counter predates workloads and keeps its name (a
 * metric label dashboards read). */
enum store_keep { STORE_KEEP_PENDING = 0, STORE_KEEP_WORKLOAD, STORE_KEEP_FINDING };

/* Compare-and-set of one key: written only if the stored version is still `version`.
 * The new hashes join the dedup set. Out: ok = 1 written, 0 lost the race (reload and retry). */

struct store_commit {
    const char *akid;
    uint64_t version;
    uint64_t new_version;   /* the version written: more than `version` (engine.c: next_version) */
    const uint8_t *blob;
    size_t blob_len;
    const uint64_t *hashes;
    size_t n_hashes;
    int64_t expire_at_ms;   /* absolute, wall clock */
    uint8_t keep;           /* enum store_keep: what a bounded store gives up first */
    int ok;
};

/* Evidence update of one finding. The store keeps status and note; a new finding starts open;
 * a resolved (or, from an older release, retracted) finding reopens when `new_outside` is set.
 * Nothing else changes a status: the engine never retracts a finding (docs/detection.md). */
/* What a finding write reports. Evidence growth (a new outside address, action or region) is
 * pushed for the first STORE_UPDATES_MAX times per finding only: every field of it is the thief's
 * to choose, and an unbounded stream of "updated" events from one key would queue ahead of every
 * other finding's alerts and push them to the outbox's bound. The finding itself keeps all the
 * evidence; a severity raise and a status change are always pushed. */
enum store_notify { STORE_NOTIFY_NONE = 0, STORE_NOTIFY_GREW = 1, STORE_NOTIFY_RAISED = 2 };
#define STORE_UPDATES_MAX 32

struct store_finding_put {
    const char *id;
    const char *evidence_json;  /* the finding document without status/note/created_at/updated_at */
    const char *severity;
    const char *account;
    const char *function;
    const char *workload;       /* the workload's kind name (wl_kind_name: "ecs"); NULL or "" is
                                 * "lambda", what every finding of an older release was */
    uint64_t version;           /* the key state version this evidence reflects: an older one is ignored */
    int new_outside;
    uint32_t outside_count;     /* calls from outside the evidence counts: a repair reopens a resolved
                                 * finding when it grew (new_outside of the write that was lost) */
    int ensure;                 /* a repair: create it when absent; otherwise write only over evidence
                                 * of an older key version (a later write was lost), else nothing */
    int64_t now_ms;
    int notify;                 /* in: enum store_notify: what the engine judged of the change */
    int created;                /* out: 1 when this call created it */
    uint64_t revision;          /* out: the revision of the event queued by this call, 0 none */
};

struct store_query {
    int status;        /* -1 any, else enum store_status */
    int severity;      /* -1 any, else an exact enum det_severity */
    const char *account;   /* NULL any */
    const char *function;  /* NULL any */
    const char *workload;  /* NULL any, else a kind name: a finding stored without one is "lambda" */
    int64_t since_ms, until_ms; /* created_at range; 0 = open */
    size_t limit;
    /* cursor: position to continue after (created_ms, id); 0/"" = from the newest */
    int64_t after_ms;
    char after_id[STORE_ID_MAX];
};

/* A finding as stored: the caller frees with store_finding_free. */
struct store_finding {
    char id[STORE_ID_MAX];
    char *evidence_json;
    int status;
    char *note;
    int64_t created_ms, updated_ms;
};

/* ---- Finding events (the outbox) ----------------------------------------------------------
 * A finding event is recorded for every change that matters to a responder: a finding created
 * (STORE_EV_CREATED); its evidence grown or its severity raised (finding_put with notify:
 * STORE_EV_UPDATED); its status changed (finding_patch, or a reopen by new outside use:
 * STORE_EV_STATUS). A refresh (times, counts) is none. Each event carries the finding as of that
 * change and a revision that only grows per finding: (finding id, revision) is its idempotency key.
 * At least once: the event is queued before finding_put/finding_patch return 0; when queueing
 * fails they return CW_EUNAVAIL and the retry (a duplicate put with ensure, the same patch) queues
 * the missing event without a new revision. A crash may repeat an event with the same key.
 * When events are recorded: the embedded store only after out_open named at least one sink
 * (scan never calls it, so it pays nothing); the Redis store when this process called out_open
 * with sinks, or when the outbox has at least one consumer group (another instance delivers;
 * checked at most every STORE_OUT_GROUPS_CHECK_MS), so an instance without sinks still queues
 * for the others. A sink sees the events recorded from its first out_open on, not before.
 * Delivery: out_read hands each event of a sink to one consumer at a time (its own held events
 * first, then events another consumer held longer than the claim time, then dead letters sent
 * back by dead_retry, then new ones); out_ack after delivery. Order per finding: by revision;
 * across findings and consumers: none promised. */
#define STORE_OUT_GROUPS_CHECK_MS 10000

enum store_event_kind { STORE_EV_CREATED = 1, STORE_EV_UPDATED, STORE_EV_STATUS };

struct store_event {
    char entry[STORE_OUT_ENTRY_MAX];  /* the store's id of this delivery (ack, dead letter, retry) */
    uint64_t revision;
    int kind;                         /* enum store_event_kind */
    int64_t queued_ms;
    struct store_finding finding;     /* as of this revision; owned: store_event_free */
    uint32_t attempts;                /* times handed out before this one, when the store knows it */
    int64_t retried_ms;               /* when dead_retry sent it back, 0 never: a sink's give-up age
                                       * counts from here, or a day-old event retried would be given
                                       * up again at once */
    char reason[STORE_REASON_MAX];    /* dead letters: why */
};

struct store_out_stats {
    uint64_t depth;         /* events not yet handed out (new and sent back) */
    uint64_t held;          /* handed out, not acknowledged */
    uint64_t dead;          /* dead letters kept */
    uint64_t dead_dropped;  /* dead letters dropped at STORE_DEAD_MAX, ever */
    int64_t oldest_ms;      /* queued time of the oldest event not acknowledged, 0 none */
};

/* The outbox bounds, process-wide: the defaults are the constants above. Tests shrink them (the
 * claim time is also XAUTOCLAIM's min-idle-time); set before any outbox call. NULL: defaults. */
struct store_out_limits {
    size_t out_max;         /* STORE_OUT_MAX */
    int64_t claim_ms;       /* STORE_OUT_CLAIM_MS */
    size_t dead_max;        /* STORE_DEAD_MAX */
};
void store_out_set_limits(const struct store_out_limits *l);
void store_out_get_limits(struct store_out_limits *l);

/* Tests only (store_test_fault): a failure the contract suite provokes the same way on every store,
 * so one list of tests runs on all of them without knowing their insides. Production code never
 * calls it. STORE_FAULT_OUTBOX: from now on queueing a finding event fails (the finding write
 * answers CW_EUNAVAIL) until STORE_FAULT_NONE: the memory store shrinks its bound to what it holds,
 * Redis makes the outbox stream's key a string (XADD answers WRONGTYPE; clearing deletes the key,
 * so the sinks' groups must be opened again), the durable store refuses the event in its job. */
enum store_fault { STORE_FAULT_NONE = 0, STORE_FAULT_OUTBOX };

struct store;

struct store_ops {
    const char *name;
    /* 1 when the dedup sets live and die with this process (the memory store): the engine may then
     * name events by a faster identity than det_event_hash (evbuf.h, evb_push_own). 0 when
     * they are kept across restarts or shared (durable, Redis): there the identity is
     * det_event_hash, which earlier releases stored and which must not change. */
    int ids_private;
    int (*load)(struct store *s, struct store_load *items, size_t n);
    int (*commit)(struct store *s, struct store_commit *items, size_t n);
    int (*finding_put)(struct store *s, struct store_finding_put *items, size_t n);
    int (*finding_get)(struct store *s, const char *id, struct store_finding *out);
    /* n findings at once (the engine's severity floors of a round's new keys): rcs[i] 0 (out[i]
     * filled, the caller frees) or CW_ENOTFOUND; returns 0, or CW_EUNAVAIL with nothing filled.
     * NULL: store_finding_get_many asks finding_get one by one (a local store pays no round trip). */
    int (*finding_get_many)(struct store *s, const char *const *ids, size_t n, struct store_finding *out,
                            int *rcs);
    /* out gets up to q->limit findings, newest first; *n_out how many; *more 1 if more remain. */
    int (*finding_list)(struct store *s, const struct store_query *q, struct store_finding *out,
                        size_t *n_out, int *more);
    /* status < 0 leaves it; note NULL leaves it. */
    int (*finding_patch)(struct store *s, const char *id, int status, const char *note, int64_t now_ms);
    /* The outbox (see "Finding events"). Sinks: 1..STORE_SINK_MAX valid names (CW_EINVAL). */
    int (*out_open)(struct store *s, const char *const *sinks, size_t n);
    /* Up to max (<= STORE_OUT_READ_MAX) events for consumer; out[0..*n) owned by the caller. */
    int (*out_read)(struct store *s, const char *sink, const char *consumer, size_t max, int64_t now_ms,
                    struct store_event *out, size_t *n);
    int (*out_ack)(struct store *s, const char *sink, const char *const *entries, size_t n);
    /* Moves a held event to the sink's dead letters with a reason, atomically with its ack. */
    int (*out_dead)(struct store *s, const char *sink, const struct store_event *ev, const char *reason,
                    int64_t now_ms);
    /* Dead-letters ("outbox full") the oldest undelivered events past out_max, and forgets the
     * events every sink has acknowledged. */
    int (*out_trim)(struct store *s, const char *sink, int64_t now_ms, size_t *dead_lettered);
    int (*out_stats)(struct store *s, const char *sink, int64_t now_ms, struct store_out_stats *st);
    /* Dead letters oldest first, after entry `after` ("" or NULL: from the first). */
    int (*dead_list)(struct store *s, const char *sink, const char *after, size_t limit, struct store_event *out,
                     size_t *n, int *more);
    /* Sends one dead letter (CW_ENOTFOUND: no such entry) or all (entry NULL) back for delivery. */
    int (*dead_retry)(struct store *s, const char *sink, const char *entry, int64_t now_ms, size_t *moved);
    /* 0 when the store answers and accepts writes (a store that only reads is not ready). */
    int (*ping)(struct store *s);
    /* Why the last failed operation failed, in words for a log and /readyz ("" unknown). */
    const char *(*why)(struct store *s);
    struct store *(*clone)(struct store *s);
    void (*free)(struct store *s);
    /* Tests only: enum store_fault. 0, or CW_EINVAL for a fault the store does not know. */
    int (*test_fault)(struct store *s, int fault);
};

struct store {
    const struct store_ops *ops;
};

static inline int store_ids_private(const struct store *s)
{
    return s && s->ops->ids_private;
}

/* The embedded store: one process, lost on exit. Thread-safe, clones share it. Its memory is
 * bounded (STORE_MEM_DEFAULT_BYTES, or store_mem_limit): see store_mem.c for what goes first. */
#define STORE_MEM_DEFAULT_BYTES ((size_t)256 << 20)  /* a small VM's share; ~250,000 keys */
#define STORE_MEM_MIN_BYTES ((size_t)1 << 20)
struct store *store_mem_new(void);
void store_mem_limit(struct store *s, size_t max_bytes);
struct store_mem_stats {
    size_t keys, findings, bytes, max_bytes;
    uint64_t evicted_pending, evicted_lambda;  /* keys given up at the bound, by class */
    uint64_t list_walked;  /* findings the listings looked at, in all: a page walks about its own length */
};
void store_mem_stats(struct store *s, struct store_mem_stats *out);

/* The durable embedded store (LMDB, store_lmdb.c): key state, findings, statuses, notes and the
 * outbox in a data directory, on disk before a write call returns (group commit: concurrent calls
 * share one fsync). One process per directory (a lock file; a second open fails naming the
 * directory and the holder's pid). max_bytes bounds the data file (LMDB's map size): at it, writes
 * fail with CW_EUNAVAIL and store_why says so. Thread-safe as the other stores: one handle per
 * thread (store_clone). NULL with msg filled when the directory cannot be used (missing and not
 * creatable, in use, a file of a newer schema, not credwatch's). */
#define STORE_DURABLE_DEFAULT_BYTES ((uint64_t)8 << 30)   /* data file bound: 8 GiB, ~3 M tracked keys */
#define STORE_DURABLE_MIN_BYTES ((uint64_t)16 << 20)
struct store *store_lmdb_new(const char *dir, uint64_t max_bytes, char *msg, size_t msg_size);
struct store_lmdb_info {
    unsigned schema;            /* the file's schema version */
    uint64_t keys, findings;    /* tracked keys (expired ones not yet swept included), findings */
    uint64_t file_bytes;        /* the data file's blocks on disk */
    uint64_t file_high_bytes;   /* its pages up to the highest ever used (it never shrinks) */
    uint64_t used_bytes;        /* pages of live data (what CREDWATCH_DATA_MAX_BYTES bounds; the rest
                                 * of the file is free pages, reused before the file grows) */
    uint64_t swept_keys, swept_findings;  /* removed by expiry since open */
};
int store_lmdb_info(struct store *s, struct store_lmdb_info *out);
/* A consistent copy of the whole store into the new directory `dest` (created; it must not exist or
 * be empty), while writes go on (compacted: free pages are not copied). 0, or CW_EIO with msg. */
int store_lmdb_backup(struct store *s, const char *dest, char *msg, size_t msg_size);
/* Runs expiry now, up to `max` keys and findings (tests; serve sweeps by itself every second). */
int store_lmdb_sweep(struct store *s, int64_t now_ms, size_t max, size_t *removed);

/* The files of a TLS connection to Redis (rediss://); NULL, or "" each: the system's CA store, no
 * client certificate; key_file "": the key is in cert_file. */
struct store_redis_tls {
    const char *ca_file, *cert_file, *key_file;
};

/* The variable a refusal of store_redis_new / store_redis_cluster_new blames, from its message: a TLS
 * file's own (CREDWATCH_REDIS_CA_FILE, _CLIENT_CERT, _CLIENT_KEY), or NULL when the message is about
 * the address. The messages are redis_tls.c's, so the mapping lives there. */
const char *store_redis_tls_var(const char *msg);

/* Redis at url (redis[s]://[user:password@]host:port[/db]; rediss:// is TLS, its files in tls, which
 * may be NULL). Connects lazily and reconnects after failures with backoff, so a Redis outage turns
 * into CW_EUNAVAIL, not a dead process. msg gets the reason when the URL is invalid or a TLS file
 * cannot be used (NULL returned). */
struct store *store_redis_new(const char *url, int timeout_ms, const struct store_redis_tls *tls, char *msg,
                              size_t msg_size);

/* The same store on a Redis Cluster: seeds "[redis[s]://][user:password@]host:port,host:port,..."
 * (rediss://: every node over TLS, the seeds and those met through MOVED and ASK). */
struct store *store_redis_cluster_new(const char *seeds, int timeout_ms, const struct store_redis_tls *tls,
                                      char *msg, size_t msg_size);

static inline int store_load(struct store *s, struct store_load *it, size_t n) { return s->ops->load(s, it, n); }
static inline int store_commit(struct store *s, struct store_commit *it, size_t n) { return s->ops->commit(s, it, n); }
static inline int store_finding_put(struct store *s, struct store_finding_put *it, size_t n) { return s->ops->finding_put(s, it, n); }
static inline int store_finding_get(struct store *s, const char *id, struct store_finding *o) { return s->ops->finding_get(s, id, o); }
int store_finding_get_many(struct store *s, const char *const *ids, size_t n, struct store_finding *out, int *rcs);
static inline int store_finding_list(struct store *s, const struct store_query *q, struct store_finding *o, size_t *n, int *more) { return s->ops->finding_list(s, q, o, n, more); }
static inline int store_finding_patch(struct store *s, const char *id, int st, const char *note, int64_t now) { return s->ops->finding_patch(s, id, st, note, now); }
static inline int store_out_open(struct store *s, const char *const *sinks, size_t n) { return s->ops->out_open(s, sinks, n); }
static inline int store_out_read(struct store *s, const char *sink, const char *consumer, size_t max, int64_t now, struct store_event *o, size_t *n) { return s->ops->out_read(s, sink, consumer, max, now, o, n); }
static inline int store_out_ack(struct store *s, const char *sink, const char *const *entries, size_t n) { return s->ops->out_ack(s, sink, entries, n); }
static inline int store_out_dead(struct store *s, const char *sink, const struct store_event *ev, const char *reason, int64_t now) { return s->ops->out_dead(s, sink, ev, reason, now); }
static inline int store_out_trim(struct store *s, const char *sink, int64_t now, size_t *dead_lettered) { return s->ops->out_trim(s, sink, now, dead_lettered); }
static inline int store_out_stats(struct store *s, const char *sink, int64_t now, struct store_out_stats *st) { return s->ops->out_stats(s, sink, now, st); }
static inline int store_dead_list(struct store *s, const char *sink, const char *after, size_t limit, struct store_event *o, size_t *n, int *more) { return s->ops->dead_list(s, sink, after, limit, o, n, more); }
static inline int store_dead_retry(struct store *s, const char *sink, const char *entry, int64_t now, size_t *moved) { return s->ops->dead_retry(s, sink, entry, now, moved); }
static inline int store_ping(struct store *s) { return s->ops->ping(s); }
static inline const char *store_why(struct store *s) { return s->ops->why(s); }
static inline struct store *store_clone(struct store *s) { return s->ops->clone(s); }
static inline void store_free(struct store *s) { if (s) s->ops->free(s); }
static inline int store_test_fault(struct store *s, int fault) { return s->ops->test_fault(s, fault); }

void store_finding_free(struct store_finding *f);
void store_event_free(struct store_event *ev);
int store_sink_name_valid(const char *name);        /* 1 when [a-z0-9_-]{1,31} */
int store_consumer_name_valid(const char *name);    /* 1 when 1..63 bytes, printable, no space */
const char *store_event_kind_name(int kind);        /* "created", "updated", "status" */

/* The status rule both stores apply on an evidence update (documented at store_finding_put):
 * analysts' statuses stick; resolved/retracted reopen on new outside use. */
int store_next_status(int current, int exists, int new_outside);
const char *store_status_name(int st);
int store_status_parse(const char *s);  /* -1 if unknown */

/* The workload kind a finding is stored under: w, or "lambda" when w is NULL or "" (a put that
 * names none, a finding written by a release before workloads). */
const char *store_workload_name(const char *w);

#endif
