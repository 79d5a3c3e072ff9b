/* scan_store.c — a scan's store and its output (see scan_store.h).
 *
 * Several scan processes on one Redis (or Redis Cluster) judge the same keys together: the engine's
 * compare-and-set and per-key dedup sets make the state of a key the same whichever process applied
 * which of its events, and in which order, so N processes over N disjoint parts of an archive leave
 * the findings one scan of the whole archive leaves (docs/detection.md, invariant 5), and a part
 * scanned twice (a rerun after a crash) changes nothing. Each process prints the findings it created
 * or updated (its share: a finding whose evidence spans parts is in the share of each process that
 * touched it); `scan --report` prints them all.
 *
 * The state lifetime. Archive events are in the past, so their keys' state would expire at the
 * arrival floor (engine late margin, 2 h in serve): a part scanned more than 2 h after another would
 * no longer meet the state the other left, and a key issued in one part and replayed in the other
 * would be missed without a word. A scan keeps its state SCAN_STATE_TTL_DEFAULT_S (7 days) instead:
 * long enough for many machines to work through a large archive, and for a failed part to be rerun
 * after a weekend; short enough that the state of a finished scan leaves Redis by itself (findings
 * stay their 90 days). --state-ttl sets it, for the in-memory scan too (a scan of hours is one scan).
 *
 * What is printed is judged on each key's final stored state (engine.h judge_whole): a finding one
 * part raised on some of a key's records that all of them do not support stays stored, not printed.
 */
#include "scan_store.h"
#include "cw.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "export.h"
#include "render.h"

#define SCAN_SHARE_INITIAL 1024             /* slots of a new set (a power of two) */
#define SCAN_REDIS_TIMEOUT_MS_DEFAULT 5000  /* a scan waits for Redis rather than fail a part: serve's
                                             * 1 s is a request's budget, a scan has none */
#define SCAN_REDIS_TIMEOUT_MS_MAX 60000     /* serve's bound on CREDWATCH_REDIS_TIMEOUT_MS */
#define SCAN_MSG_MAX 512

/* ---- options ------------------------------------------------------------------------------- */

/* "7d", "36h", "90m", "3600s" or "3600" (seconds) into *s; -1 when it is none of those. */
static int parse_duration(const char *v, int64_t *s)
{
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (end == v || errno || n < 0 || v[0] == '-' || v[0] == '+' || v[0] == ' ')
        return -1;
    int64_t unit = *end == 'd' ? 86400 : *end == 'h' ? 3600 : *end == 'm' ? 60 : 1;
    if (*end && (strchr("dhms", *end) == NULL || end[1]))
        return -1;
    if (n > INT64_MAX / unit / 1000)  /* the engine multiplies by 1000 */
        return -1;
    *s = (int64_t)n * unit;
    return 0;
}

static int check_ttl(struct scan_store_opts *o)
{
    o->state_ttl_s = SCAN_STATE_TTL_DEFAULT_S;
    if (!o->state_ttl)
        return 0;
    if (o->report) {
        fprintf(stderr, "credwatch scan: --state-ttl: --report writes no key state, so sets no lifetime\n");
        return CW_ECONFIG;
    }
    if (parse_duration(o->state_ttl, &o->state_ttl_s)) {
        fprintf(stderr, "credwatch scan: --state-ttl: \"%s\" is not a duration (a whole number with d, h, m or s: "
                "7d, 36h, 90m)\n", o->state_ttl);
        return CW_ECONFIG;
    }
    if (o->state_ttl_s < SCAN_STATE_TTL_MIN_S || o->state_ttl_s > SCAN_STATE_TTL_MAX_S) {
        fprintf(stderr, "credwatch scan: --state-ttl: %s is outside 1h..90d (key state must outlive the scan, "
                "and never the findings)\n", o->state_ttl);
        return CW_ECONFIG;
    }
    return 0;
}

int scan_store_check(struct scan_store_opts *o, int npaths)
{
    if (o->redis_url && o->redis_cluster) {
        fprintf(stderr, "credwatch scan: --redis-url and --redis-cluster: both choose the store; give one\n");
        return CW_ECONFIG;
    }
    if (o->report && !scan_store_shared(o)) {
        fprintf(stderr, "credwatch scan: --report lists what scans stored in Redis: give --redis-url or "
                "--redis-cluster (a scan in memory prints its findings itself)\n");
        return CW_ECONFIG;
    }
    if (o->report && npaths) {
        fprintf(stderr, "credwatch scan: --report takes no PATH: it prints what the scans of every part stored "
                "(scan the parts first, each with the same --redis-url or --redis-cluster)\n");
        return CW_ECONFIG;
    }
    return check_ttl(o);
}

int scan_store_shared(const struct scan_store_opts *o)
{
    return o->redis_url != NULL || o->redis_cluster != NULL;
}

/* ---- opening the store --------------------------------------------------------------------- */

/* CREDWATCH_REDIS_TIMEOUT_MS, as serve reads it (1..60000), else the scan's default. */
static int redis_timeout(int *ms)
{
    const char *v = getenv("CREDWATCH_REDIS_TIMEOUT_MS");
    *ms = SCAN_REDIS_TIMEOUT_MS_DEFAULT;
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (*end || errno || n < 1 || n > SCAN_REDIS_TIMEOUT_MS_MAX) {
        fprintf(stderr, "credwatch scan: CREDWATCH_REDIS_TIMEOUT_MS: \"%s\" is not milliseconds in 1..%d\n", v,
                SCAN_REDIS_TIMEOUT_MS_MAX);
        return CW_ECONFIG;
    }
    *ms = (int)n;
    return 0;
}

/* The address and the name to blame for it: the option's value, or with "env" the variable's (so a
 * password can stay off the command line, where every local user's `ps` shows it). */
static const char *redis_spec(const struct scan_store_opts *o, const char **blame)
{
    int cluster = o->redis_cluster != NULL;
    const char *v = cluster ? o->redis_cluster : o->redis_url;
    *blame = cluster ? "--redis-cluster" : "--redis-url";
    if (strcmp(v, "env") != 0)
        return v;
    *blame = cluster ? "CREDWATCH_REDIS_CLUSTER" : "CREDWATCH_REDIS_URL";
    const char *e = getenv(*blame);
    return e && *e ? e : NULL;
}

static struct store *open_redis(const struct scan_store_opts *o, const char **name, int *rc)
{
    const char *blame;
    const char *spec = redis_spec(o, &blame);
    int timeout_ms;
    *name = o->redis_cluster ? "redis-cluster" : "redis";
    *rc = CW_ECONFIG;
    if (!spec) {
        fprintf(stderr, "credwatch scan: %s env: %s is unset or empty\n", o->redis_cluster ? "--redis-cluster"
                : "--redis-url", blame);
        return NULL;
    }
    if (redis_timeout(&timeout_ms))
        return NULL;
    char msg[SCAN_MSG_MAX] = "";
    const struct store_redis_tls tls = { getenv("CREDWATCH_REDIS_CA_FILE"), getenv("CREDWATCH_REDIS_CLIENT_CERT"),
                                         getenv("CREDWATCH_REDIS_CLIENT_KEY") };
    struct store *st = o->redis_cluster ? store_redis_cluster_new(spec, timeout_ms, &tls, msg, sizeof msg)
                                        : store_redis_new(spec, timeout_ms, &tls, msg, sizeof msg);
    if (!st) {
        const char *var = store_redis_tls_var(msg);
        fprintf(stderr, "credwatch scan: %s: %s\n", var ? var : blame, msg);
        return NULL;
    }
    /* The store connects lazily: ask now, so a wrong address or password is one line and exit 2
     * before any file is read, not a failure per batch. */
    if (store_ping(st)) {
        const char *why = store_why(st);
        fprintf(stderr, "credwatch scan: %s: the store cannot be used: %s\n", blame, why && *why ? why : "no answer");
        store_free(st);
        *rc = CW_EUNAVAIL;
        return NULL;
    }
    *rc = 0;
    return st;
}

struct store *scan_store_open(const struct scan_store_opts *o, size_t mem_max_bytes, const char **name, int *rc)
{
    if (scan_store_shared(o))
        return open_redis(o, name, rc);
    *name = "memory";
    struct store *st = store_mem_new();
    if (!st) {
        fprintf(stderr, "credwatch scan: out of memory\n");
        *rc = CW_ENOMEM;
        return NULL;
    }
    store_mem_limit(st, mem_max_bytes);
    *rc = 0;
    return st;
}

/* ---- the own share: a set of finding ids ----------------------------------------------------- */

struct scan_share {
    pthread_mutex_t mu;
    char **slots;       /* open addressing, linear probing; NULL is free */
    size_t cap, n, max;
    int failed;         /* CW_ETOOBIG or CW_ENOMEM met by an add, 0 none */
    size_t dropped;     /* ids not kept at the bound */
};

struct scan_share *scan_share_new(size_t max)
{
    struct scan_share *sh = calloc(1, sizeof *sh);
    if (!sh)
        return NULL;
    sh->max = max;
    sh->cap = SCAN_SHARE_INITIAL;
    sh->slots = calloc(sh->cap, sizeof *sh->slots);
    if (!sh->slots || pthread_mutex_init(&sh->mu, NULL)) {
        free(sh->slots);
        free(sh);
        return NULL;
    }
    return sh;
}

void scan_share_free(struct scan_share *sh)
{
    if (!sh)
        return;
    for (size_t i = 0; i < sh->cap; i++)
        free(sh->slots[i]);
    free(sh->slots);
    pthread_mutex_destroy(&sh->mu);
    free(sh);
}

static size_t id_hash(const char *id)
{
    uint64_t h = 1469598103934665603ull;  /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ull;
    return (size_t)h;
}

/* The slot of id, or the free slot where it would go. */
static size_t find_slot(char **slots, size_t cap, const char *id)
{
    size_t i = id_hash(id) & (cap - 1);
    while (slots[i] && strcmp(slots[i], id) != 0)
        i = (i + 1) & (cap - 1);
    return i;
}

/* Doubles the table (kept at most half full, so probes stay short). */
static int share_grow(struct scan_share *sh)
{
    size_t cap = sh->cap * 2;
    char **slots = calloc(cap, sizeof *slots);
    if (!slots)
        return CW_ENOMEM;
    for (size_t i = 0; i < sh->cap; i++)
        if (sh->slots[i])
            slots[find_slot(slots, cap, sh->slots[i])] = sh->slots[i];
    free(sh->slots);
    sh->slots = slots;
    sh->cap = cap;
    return 0;
}

static int share_add_locked(struct scan_share *sh, const char *id)
{
    size_t i = find_slot(sh->slots, sh->cap, id);
    if (sh->slots[i])
        return 0;
    if (sh->n >= sh->max) {
        sh->dropped++;
        return CW_ETOOBIG;
    }
    if (2 * (sh->n + 1) > sh->cap) {
        if (share_grow(sh))
            return CW_ENOMEM;
        i = find_slot(sh->slots, sh->cap, id);
    }
    if (!(sh->slots[i] = strdup(id)))
        return CW_ENOMEM;
    sh->n++;
    return 0;
}

int scan_share_add(struct scan_share *sh, const char *id)
{
    pthread_mutex_lock(&sh->mu);
    int rc = share_add_locked(sh, id);
    if (rc && !sh->failed)
        sh->failed = rc;
    pthread_mutex_unlock(&sh->mu);
    return rc;
}

size_t scan_share_count(const struct scan_share *sh)
{
    return sh->n;
}

void scan_share_on_finding(void *ud, const char *id, int created)
{
    (void)created;  /* an update is as much this process's finding as a creation */
    scan_share_add(ud, id);
}

/* ---- printing in id order -------------------------------------------------------------------- */

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The set's ids, sorted (borrowed from the set; the array is the caller's to free). */
static char **sorted_ids(struct scan_share *sh)
{
    char **ids = malloc((sh->n ? sh->n : 1) * sizeof *ids);
    if (!ids)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < sh->cap; i++)
        if (sh->slots[i])
            ids[k++] = sh->slots[i];
    qsort(ids, k, sizeof *ids, cmp_ids);
    return ids;
}

/* One finding in the chosen format; a stored document the format cannot show is reported and left
 * out (a finding with no account id anywhere has no ASFF form), so the other findings still print.
 * It still counts as a finding: --fail-on-findings must not pass because of the output format. */
static void print_one(const struct store_finding *f, int format, struct scan_print_stats *ps)
{
    char *doc = rnd_finding(f), *out = NULL;
    if (!doc)
        return;  /* out of memory, or evidence that is not an object: skipped, as it always was */
    int rc = exp_convert(doc, format, NULL, &out);
    if (rc == 0)
        puts(out);
    else
        fprintf(stderr, "credwatch scan: finding %s: %s\n", f->id,
                rc == CW_ENOMEM ? "out of memory" : "cannot be shown in this format");
    free(out);
    free(doc);
    ps->findings++;
    int sev = rnd_severity_of(f->evidence_json);
    if (sev >= DET_SEV_LOW && sev <= DET_SEV_CRITICAL)
        ps->by_severity[sev - DET_SEV_LOW]++;
}

/* Every finding of the store into sh (ids only). 0, CW_ETOOBIG, CW_EUNAVAIL or CW_ENOMEM. */
static int collect_all(struct store *st, struct scan_share *sh)
{
    struct store_query q = { .status = -1, .severity = -1, .limit = STORE_LIST_MAX };
    struct store_finding page[STORE_LIST_MAX];
    int more = 1, rc = 0;
    while (more && rc == 0) {
        size_t n = 0;
        if ((rc = store_finding_list(st, &q, page, &n, &more)) != 0)
            break;
        for (size_t i = 0; i < n; i++) {
            if (rc == 0)
                rc = scan_share_add(sh, page[i].id);
            if (i == n - 1) {
                q.after_ms = page[i].created_ms;
                snprintf(q.after_id, sizeof q.after_id, "%s", page[i].id);
            }
            store_finding_free(&page[i]);
        }
        more = more && n > 0;
    }
    return rc;
}

/* 1 when the whole evidence supports the stored finding: its key's state still judges a finding
 * (engine.h judge_whole). A key whose state is gone (expired, evicted) keeps its finding as stored;
 * so does every finding when there is no judge. */
static int supported(struct eng *je, const struct store_finding *f)
{
    struct det_verdict v;
    return !je || strncmp(f->id, "cwf-", 4) != 0 || eng_key_verdict(je, f->id + 4, &v) != 0 || v.finding;
}

/* The findings of ids[0..n) from the store, printed. strict: a missing one is an error (an own
 * share names only findings this process wrote); else skipped (gone since it was listed). */
static int print_ids(struct store *st, struct eng *je, char **ids, size_t n, int format, int strict,
                     struct scan_print_stats *ps)
{
    int status = 0;
    for (size_t i = 0; i < n; i++) {
        struct store_finding f;
        int rc = store_finding_get(st, ids[i], &f);
        if (rc == CW_ENOTFOUND) {
            if (strict) {
                fprintf(stderr, "credwatch scan: finding %s: written by this scan, no longer in the store\n", ids[i]);
                status = CW_ENOTFOUND;
            }
            continue;
        }
        if (rc) {
            const char *why = store_why(st);
            fprintf(stderr, "credwatch scan: finding %s: cannot be read: %s\n", ids[i],
                    why && *why ? why : cw_strerror(rc));
            return rc;
        }
        if (f.status != STORE_ST_RETRACTED && !supported(je, &f))
            ps->unsupported++;
        else if (f.status != STORE_ST_RETRACTED)
            print_one(&f, format, ps);
        store_finding_free(&f);
    }
    return status;
}

static void bound_message(const struct scan_share *sh, int own)
{
    if (own)
        fprintf(stderr, "credwatch scan: more than %zu findings in this scan's share: none printed (the bound on "
                "findings a scan sorts and prints); with the state in Redis every finding is in the store (page "
                "through GET /v1/findings), in memory scan the archive in parts\n", sh->max);
    else
        fprintf(stderr, "credwatch scan: more than %zu findings: none printed (the bound on findings a scan sorts "
                "and prints); scan the archive in parts, or keep the state in Redis and page through GET "
                "/v1/findings\n", sh->max);
}

int scan_store_print_max(struct store *st, struct scan_share *share, int format, size_t max,
                         const struct eng_config *judge, struct scan_print_stats *ps)
{
    memset(ps, 0, sizeof *ps);
    struct eng *je = judge ? eng_new(st, judge) : NULL;  /* without one (out of memory) every finding prints */
    struct scan_share *all = share ? NULL : scan_share_new(max);
    struct scan_share *sh = share ? share : all;
    int rc = sh ? 0 : CW_ENOMEM;
    if (rc == 0 && all && (rc = collect_all(st, all)) != 0 && rc != CW_ETOOBIG && rc != CW_ENOMEM) {
        const char *why = store_why(st);
        fprintf(stderr, "credwatch scan: cannot list the findings: %s\n", why && *why ? why : cw_strerror(rc));
    }
    if (rc == 0 && share && (share->failed || share->n > max))
        rc = share->failed ? share->failed : CW_ETOOBIG;
    if (rc == CW_ETOOBIG)
        bound_message(sh, share != NULL);
    char **ids = rc == 0 ? sorted_ids(sh) : NULL;
    if (rc == 0 && !ids)
        rc = CW_ENOMEM;
    if (rc == CW_ENOMEM)
        fprintf(stderr, "credwatch scan: out of memory listing the findings\n");
    if (rc == 0)
        rc = print_ids(st, je, ids, sh->n, format, share != NULL, ps);
    fflush(stdout);
    eng_free(je);
    free(ids);
    scan_share_free(all);
    return rc;
}

int scan_store_print(struct store *st, struct scan_share *share, int format, const struct eng_config *judge,
                     struct scan_print_stats *ps)
{
    return scan_store_print_max(st, share, format, SCAN_FINDINGS_MAX, judge, ps);
}

/* ---- scan --report --------------------------------------------------------------------------- */

int scan_store_report(struct store *st, const char *name, const struct eng_config *judge, int format,
                      int fail_on_findings, int quiet)
{
    struct scan_print_stats ps;
    double t0 = cw_mono_s();
    int rc = scan_store_print(st, NULL, format, judge, &ps);
    if (!quiet)
        fprintf(stderr, "credwatch scan: report: %zu findings in the %s store (%zu critical, %zu high, %zu medium, "
                "%zu low; %zu not supported by all of their key's records, not printed)%s, %.1f s\n", ps.findings,
                name, ps.by_severity[3], ps.by_severity[2], ps.by_severity[1], ps.by_severity[0], ps.unsupported,
                rc ? ", INCOMPLETE: see above" : "", cw_mono_s() - t0);
    return rc ? 2 : (fail_on_findings && ps.findings) ? 1 : 0;
}
