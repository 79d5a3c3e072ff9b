/* scan_run.h — a scan's files decoded on every core and applied to the shared state.
 *
 * `jobs` threads each take the next file, check it whole and decode it once (past one chunk of
 * events, the full chunks are spilled to a temporary file, below), and hand its events to shards by
 * access key: shard k owns every key whose name hashes
 * to k, collects their events from every thread, and applies them in batches on its own engine and
 * store handle. A key's events are therefore applied by one engine at a time (no compare-and-set
 * contention between threads), in batches whose composition depends on thread timing; the verdict
 * does not (the key state's merge is order-independent, tests/it_scan_jobs.sh compares runs).
 *
 * Memory is bounded whatever the archive's size: each thread holds one chunk of events
 * (ENG_CHUNK_BYTES) and a read piece, each shard at most three batches (one applying, and up to
 * two filling meanwhile: scan_run.c SCAN_FILL_BATCHES) plus one chunk of overshoot; files are
 * streamed, never read whole (standard input and other unseekable files excepted: read whole, up to
 * SCAN_MAX_WHOLE_BYTES).
 *
 * A file with more than one chunk of events must still be checked whole before any of them counts
 * (a file refused as a whole stores nothing). Its full chunks go to the thread's spill file
 * (engine.h eng_set_spill; $TMPDIR, else /tmp, unlinked at once, emptied after each file) while it
 * is checked; once accepted, the last chunk and then the spilled ones, read back one at a time, go
 * to the shards; refused, they are forgotten. Memory stays one chunk per thread; disk is at most
 * spill_max_bytes per thread (SCAN_SPILL_MAX_BYTES) and only during a large file. Past the bound,
 * or when the spill cannot be written, the file takes two passes instead (checked whole, then
 * decoded again chunk by chunk: engine.h), as every large file did before: about twice the CPU.
 * The totals count both kinds (spilled_files, redecoded_files).
 */
#ifndef CW_SCAN_RUN_H
#define CW_SCAN_RUN_H

#include <stddef.h>

#include "engine.h"
#include "store.h"

#define SCAN_JOBS_MAX 256                          /* threads and shards */
#define SCAN_BATCH_BYTES ((size_t)8 << 20)         /* packed events a shard collects before applying */
#define SCAN_BATCH_MIN_BYTES 4096                  /* --batch-bytes' range */
#define SCAN_FILL_BATCHES 2                        /* a shard's filling buffer grows to this many batches
                                                    * while its engine applies the previous one, before
                                                    * threads wait */
/* A shard's filling buffer holds at most SCAN_FILL_BATCHES batches and one chunk (scan_run.c
 * distribute), all in one evbuf: past EVB_MAX_BYTES its events could not be added at all (every
 * file after it "out of memory", its events applied in part), which a 1 GiB maximum allowed. */
#define SCAN_BATCH_MAX_BYTES ((size_t)64 << 20)
_Static_assert(SCAN_FILL_BATCHES * SCAN_BATCH_MAX_BYTES + 2 * ENG_CHUNK_BYTES <= EVB_MAX_BYTES,
               "a shard's filling buffer fits in one evbuf");
#define SCAN_MAX_WHOLE_BYTES ((size_t)2048 << 20)  /* standard input (read whole: it cannot be read twice) */
#define SCAN_MAX_RECORDS_PER_FILE 5000000u
/* Spill file bytes per thread (scan_run.c spill_chunk): ~1.7 million events of ~300 bytes, far above
 * a CloudTrail file (a busy account's hold tens of thousands of records); past it a file is decoded
 * twice rather than fill a small /tmp. jobs threads can hold jobs times this at once. */
#define SCAN_SPILL_MAX_BYTES ((size_t)512 << 20)
#define SCAN_APPLY_RETRIES 5                       /* a batch the store refused (Redis down): retried, with
                                                    * 1, 2, 4, 8 s between, before its events are lost */

struct scan_run_cfg {
    struct store *st;                 /* shared; every thread uses its own store_clone */
    const struct eng_config *eng;     /* each engine's config */
    unsigned jobs;                    /* 1..SCAN_JOBS_MAX */
    size_t batch_bytes;               /* 0 = SCAN_BATCH_BYTES */
    int progress;                     /* a progress line on stderr */
    size_t total_files;               /* for the progress line; 0 unknown */
    unsigned long long total_bytes;   /* for its ETA; 0 unknown */
    size_t spill_max_bytes;           /* 0 = SCAN_SPILL_MAX_BYTES (tests set tiny ones) */
};

struct scan_totals {
    size_t files, bad_files, refused_files, records, skipped, duplicates, ignored;
    unsigned long long bytes;         /* of the files read (as stored: compressed) */
    size_t lost_events;               /* events of batches the store refused after every retry */
    size_t spilled_files;             /* files past a chunk decoded once, their chunks spilled */
    size_t redecoded_files;           /* files past a chunk decoded twice (the spill bound, or its error) */
};

/* Scans the paths (scan_walk.h). Returns 0 when the scan ran (t says what it met), or CW_ENOMEM /
 * CW_EUNAVAIL when its threads or store handles could not be made (said on stderr). */
int scan_run(const struct scan_run_cfg *c, char *const *paths, int npaths, struct scan_totals *t);

#endif
