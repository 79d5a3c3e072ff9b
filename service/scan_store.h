/* scan_store.h — where a scan keeps its state, and how it prints what it found (scan.c's store
 * half): the embedded memory store (the default) or Redis / a Redis Cluster shared by several scan
 * processes, each given a disjoint part of an archive; the set of findings one process created or
 * updated (its own share); printing findings in finding-id order; and `scan --report`, every
 * finding in a shared store (the merged result of all the parts).
 */
#ifndef CW_SCAN_STORE_H
#define CW_SCAN_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "store.h"

/* Findings one scan prints in id order: their ids are held in memory to be sorted (~80 bytes each,
 * so ~160 MB at the bound). One scan finding more stolen keys than this is an archive for the API's
 * paged listing; the scan says so and exits 2 rather than print part of them. */
#define SCAN_FINDINGS_MAX 2000000u
/* Key state written by a scan lives this long after it was written (engine late margin): longer
 * than the whole multi-process scan, reruns of a failed part included (see scan_store.c). */
#define SCAN_STATE_TTL_DEFAULT_S (7 * 24 * 3600)
#define SCAN_STATE_TTL_MIN_S 3600               /* below, a slow part could outlive its keys' state */
#define SCAN_STATE_TTL_MAX_S (90 * 24 * 3600)   /* findings' own retention: state never outlives them */

/* The store options of the command line, as given (scan.c parses them into this). */
struct scan_store_opts {
    const char *redis_url;      /* --redis-url URL, or "env": $CREDWATCH_REDIS_URL */
    const char *redis_cluster;  /* --redis-cluster SEEDS, or "env": $CREDWATCH_REDIS_CLUSTER */
    const char *state_ttl;      /* --state-ttl DURATION (NULL: SCAN_STATE_TTL_DEFAULT_S) */
    int report;                 /* --report */
    int64_t state_ttl_s;        /* out of scan_store_check */
};

/* Checks the options together (npaths: how many PATHs were given) and parses --state-ttl. Returns
 * 0, or CW_ECONFIG with the reason printed on standard error. */
int scan_store_check(struct scan_store_opts *o, int npaths);

/* 1 when the options choose Redis or a Redis Cluster (a shared store). */
int scan_store_shared(const struct scan_store_opts *o);

/* The store the options choose: memory (bounded by mem_max_bytes), or Redis / a Redis Cluster with
 * serve's TLS and timeout variables, checked to answer and accept writes. NULL with the reason
 * printed and *rc set: CW_ECONFIG (a setting), CW_EUNAVAIL (not reachable), CW_ENOMEM. *name gets
 * "memory", "redis" or "redis-cluster". */
struct store *scan_store_open(const struct scan_store_opts *o, size_t mem_max_bytes, const char **name, int *rc);

/* The ids of the findings one scan created or updated: a set, at most `max` ids. Thread-safe (each
 * worker's engine may report into one set). At the bound further ids are counted, not kept. */
struct scan_share;
struct scan_share *scan_share_new(size_t max);
void scan_share_free(struct scan_share *sh);
int scan_share_add(struct scan_share *sh, const char *id);  /* 0, CW_ETOOBIG (at the bound), CW_ENOMEM */
size_t scan_share_count(const struct scan_share *sh);      /* distinct ids kept */
/* eng_config.on_finding's shape: ud is the set. A failure is remembered and reported by
 * scan_store_print (the engine cannot be told to stop from here). */
void scan_share_on_finding(void *ud, const char *id, int created);

/* What was printed. */
struct scan_print_stats {
    size_t findings;         /* findings printed (or not showable in the format, which still count) */
    size_t by_severity[4];   /* low, medium, high, critical, by the documents' severity */
    size_t unsupported;      /* left out: raised on part of a key's records, not supported by all */
};

/* Prints the findings of share (NULL: every finding in the store) in `format` (enum exp_format), one
 * per line, sorted by finding id; retracted findings are left out, and, with judge (the scan's engine
 * config, judge_whole), findings the key's stored state no longer supports (engine.h judge_whole:
 * raised on part of the evidence; a key whose state is gone keeps its finding). Returns 0;
 * CW_ETOOBIG when more than SCAN_FINDINGS_MAX findings (or share's bound) were met: nothing printed,
 * the reason on standard error; CW_ENOTFOUND (a share's finding gone from the store), CW_EUNAVAIL,
 * CW_ENOMEM: the reason on standard error. */
int scan_store_print(struct store *st, struct scan_share *share, int format, const struct eng_config *judge,
                     struct scan_print_stats *ps);
/* The same with the bound given (tests). */
int scan_store_print_max(struct store *st, struct scan_share *share, int format, size_t max,
                         const struct eng_config *judge, struct scan_print_stats *ps);

/* `scan --report`: every finding in the shared store st (the merged result of every part; name as
 * scan_store_open gave it), judged as scan_store_print does with the same network settings as the
 * parts' scans, and a one-line summary on standard error unless quiet. Returns the exit status: 0,
 * 1 with fail_on_findings when a finding exists, 2 when the listing fails. */
int scan_store_report(struct store *st, const char *name, const struct eng_config *judge, int format,
                      int fail_on_findings, int quiet);

#endif
