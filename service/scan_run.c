/* scan_run.c — decoding threads, a bounded queue of paths, shards that apply by key. */
#include "scan_run.h"
#include "cw.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scan_walk.h"

#define SCAN_QUEUE_PER_JOB 4          /* paths waiting per thread: the walk stays just ahead */
#define SCAN_PROGRESS_EVERY_S 0.5
#define SCAN_READ_CHUNK ((size_t)1 << 20) /* standard input read whole grows by this much first */
#define SCAN_SHARD_IDX_INITIAL 1024

struct shard {
    pthread_mutex_t mu;
    pthread_cond_t cv;                /* an apply finished */
    struct evbuf fill;                /* events collected from every thread */
    struct eng *eng;                  /* applies; its own store handle */
    struct store *st;
    struct eng_report *rep;
    int applying;
};

struct run {
    const struct scan_run_cfg *c;
    size_t batch;
    struct shard *shards;
    unsigned nshards;
    /* the queue of paths, filled by the walk (the calling thread) */
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full, progress;
    char **q;
    size_t q_cap, q_head, q_len;
    int walk_done;
    unsigned started;                 /* threads running */
    unsigned decoding;                /* threads still reading files: shards are flushed for the
                                       * last time only when none is, or events would be left behind */
    unsigned running;                 /* threads not finished */
    /* what the scan met, under mu */
    struct scan_totals t;
    double t0, last_progress;
};

struct worker {
    struct run *r;
    unsigned id;
    struct eng *eng;                  /* decodes only; never applies */
    struct eng_report *rep;
    size_t *idx;                      /* the pending events' indexes, grouped by shard */
    size_t cap_idx;
    size_t *count;                    /* [nshards] events per shard, then group starts */
    int fail;                         /* the last distribute's error */
    /* The spill (scan_run.h): the full chunks of the file being decoded, in a temporary file of
     * this thread's, created when first needed and emptied after each file. */
    int spill_fd;                     /* -1 until a file first spills */
    size_t spill_bytes;               /* written for the current file */
    size_t spill_chunks, spill_events;
    int spill_dirty;                  /* something was written since the last emptying */
    int spilled, redecoded;           /* what the current file took: counted into the totals */
};

/* ---- shards ----------------------------------------------------------------------------------- */

/* Which shard owns event i's key: the akid's hash (evbuf.h), computed once when it was decoded. Any
 * stable function works; the same key must always land on the same shard, so that one engine at a
 * time applies it. */
static unsigned shard_of(const struct evbuf *evs, size_t i, unsigned n)
{
    return evb_khash(evs, i) % n;
}

/* Applies the shard's engine's pending events, retrying while the store is unavailable (a Redis
 * failover): the dedup set makes a retried batch apply each event once, and the engine counts the
 * events its failed attempts committed as accepted, not as duplicates. */
static void shard_apply(struct run *r, struct shard *sh)
{
    int rc = 0;
    size_t pending = eng_pending(sh->eng);
    for (int attempt = 0; attempt <= SCAN_APPLY_RETRIES; attempt++) {
        if (attempt)
            sleep(1u << (attempt - 1));
        if ((rc = eng_apply(sh->eng, cw_now_ms(), sh->rep)) != CW_EUNAVAIL)
            break;
        fprintf(stderr, "credwatch scan: %s%s\n", sh->rep->message,
                attempt < SCAN_APPLY_RETRIES ? " (retrying)" : "");
    }
    pthread_mutex_lock(&r->mu);
    r->t.duplicates += sh->rep->duplicates;
    if (rc) {
        if (rc != CW_EUNAVAIL)
            fprintf(stderr, "credwatch scan: %s\n", sh->rep->message[0] ? sh->rep->message : "cannot apply events");
        r->t.lost_events += pending - eng_pending_committed(sh->eng);  /* committed ones are not lost */
    }
    pthread_mutex_unlock(&r->mu);
    eng_discard(sh->eng);
}

/* With sh->mu held: when the filling buffer holds a batch (or `all`), it becomes the engine's and
 * is applied with the lock released, so other threads go on filling the next one. A thread that
 * finds the shard's engine busy goes back to decoding instead of waiting, until the filling buffer
 * holds SCAN_FILL_BATCHES batches: only then does it wait (the memory bound). */
static void shard_flush_locked(struct run *r, struct shard *sh, int all)
{
    if (!all && sh->applying && evb_bytes(&sh->fill) < SCAN_FILL_BATCHES * r->batch)
        return;
    while (sh->applying)
        pthread_cond_wait(&sh->cv, &sh->mu);
    if (evb_count(&sh->fill) == 0 || (!all && evb_bytes(&sh->fill) < r->batch))
        return;  /* another thread applied it while this one waited */
    eng_swap_events(sh->eng, &sh->fill);
    sh->applying = 1;
    pthread_mutex_unlock(&sh->mu);
    shard_apply(r, sh);
    pthread_mutex_lock(&sh->mu);
    sh->applying = 0;
    pthread_cond_broadcast(&sh->cv);
}

/* The worker's pending events, counting-sorted into per-shard groups (w->idx). */
static int group_by_shard(struct worker *w, const struct evbuf *evs)
{
    size_t n = evb_count(evs);
    unsigned ns = w->r->nshards;
    void *idx = w->idx;
    int rc = cw_grow(&idx, &w->cap_idx, n ? n : 1, sizeof *w->idx, SCAN_SHARD_IDX_INITIAL, EVB_MAX_EVENTS);
    w->idx = idx;
    if (rc)
        return rc;
    memset(w->count, 0, (ns + 1) * sizeof *w->count);
    for (size_t i = 0; i < n; i++)
        w->count[shard_of(evs, i, ns) + 1]++;
    for (unsigned s = 1; s <= ns; s++)
        w->count[s] += w->count[s - 1];  /* count[s] is now where shard s's group starts */
    for (size_t i = 0; i < n; i++)
        w->idx[w->count[shard_of(evs, i, ns)]++] = i;
    for (unsigned s = ns; s > 0; s--)
        w->count[s] = w->count[s - 1];  /* back to starts: group s is [count[s], count[s + 1]) */
    w->count[0] = 0;
    return 0;
}

/* Events go to their shards. */
static int distribute_evs(struct worker *w, const struct evbuf *evs)
{
    int rc = group_by_shard(w, evs);
    for (unsigned s = 0; s < w->r->nshards && !rc; s++) {
        size_t from = w->count[s], to = s + 1 < w->r->nshards ? w->count[s + 1] : evb_count(evs);
        if (from == to)
            continue;
        struct shard *sh = &w->r->shards[s];
        pthread_mutex_lock(&sh->mu);
        /* Full: wait for room before adding, not after (every thread used to add its share first
         * and then wait, so a hot key's shard grew by a chunk per thread: past EVB_MAX_BYTES at 32
         * threads); once its engine is free, the full buffer is applied first. So a thread adds
         * only below SCAN_FILL_BATCHES batches: one chunk of overshoot, as scan_run.h bounds. */
        while (evb_bytes(&sh->fill) >= SCAN_FILL_BATCHES * w->r->batch) {
            if (sh->applying)
                pthread_cond_wait(&sh->cv, &sh->mu);
            else
                shard_flush_locked(w->r, sh, 0);
        }
        for (size_t k = from; k < to && !rc; k++)
            rc = evb_copy(&sh->fill, evs, w->idx[k]);
        if (!rc)
            shard_flush_locked(w->r, sh, 0);
        pthread_mutex_unlock(&sh->mu);
    }
    return rc ? CW_ENOMEM : 0;
}

/* The engine's flush (engine.h): its pending events go to their shards. */
static int distribute(void *ud, struct eng *e)
{
    int rc = distribute_evs(ud, eng_events(e));
    eng_discard(e);
    return rc;
}

/* ---- the spill: a large file decoded once ------------------------------------------------------ */

/* A temporary file in $TMPDIR (else /tmp), unlinked at once: nothing is left behind whatever ends
 * the scan. -1 when it cannot be made (the file then takes two passes). */
static int spill_open(void)
{
    const char *dir = getenv("TMPDIR");
    char path[PATH_MAX];
    if (!dir || !*dir)
        dir = "/tmp";
    if (snprintf(path, sizeof path, "%s/credwatch-spill-XXXXXX", dir) >= (int)sizeof path)
        return -1;
    int fd = mkstemp(path);
    if (fd >= 0)
        unlink(path);
    return fd;
}

/* The engine's spill (eng_set_spill): pass 1's full chunk appended to the thread's spill file. An
 * error here (past the bound, a full disk) is no error of the file: the engine falls back to two
 * passes, which need no disk, and spill_reset forgets what was written. */
static int spill_chunk(void *ud, struct eng *e)
{
    struct worker *w = ud;
    const struct evbuf *evs = eng_events(e);
    size_t max = w->r->c->spill_max_bytes ? w->r->c->spill_max_bytes : SCAN_SPILL_MAX_BYTES;
    size_t bytes = evb_file_bytes(evs);
    if (bytes > max || w->spill_bytes > max - bytes)
        return CW_ETOOBIG;
    if (w->spill_fd < 0 && (w->spill_fd = spill_open()) < 0)
        return CW_EIO;
    w->spill_dirty = 1;
    if (evb_write(evs, w->spill_fd))
        return CW_EIO;
    w->spill_bytes += bytes;
    w->spill_chunks++;
    w->spill_events += evb_count(evs);
    return 0;
}

/* The spill file emptied for the next file (its disk given back now, not at the next large file);
 * one that cannot be emptied is closed, and a new one made when needed. */
static void spill_reset(struct worker *w)
{
    if (w->spill_dirty && (ftruncate(w->spill_fd, 0) != 0 || lseek(w->spill_fd, 0, SEEK_SET) != 0)) {
        close(w->spill_fd);
        w->spill_fd = -1;
    }
    w->spill_dirty = 0;
    w->spill_bytes = w->spill_chunks = w->spill_events = 0;
}

/* The spilled chunks of an accepted file read back one at a time, each handed to the shards (the
 * order of a key's events does not matter: its state's merge is order-independent). They are read
 * into the engine's buffer (empty: its last chunk is distributed), so a thread still holds one chunk.
 * Exactly the chunks and events written are expected. */
static int spill_read_back(struct worker *w)
{
    if (lseek(w->spill_fd, 0, SEEK_SET) != 0)
        return CW_EIO;
    struct evbuf b;
    evb_init(&b);
    eng_swap_events(w->eng, &b);
    size_t events = 0;
    int rc = 0, end = 0;
    for (size_t k = 0; k < w->spill_chunks && !rc; k++) {
        if (!(rc = evb_read_next(&b, w->spill_fd, &end)) && end)
            rc = CW_EFORMAT;
        if (!rc) {
            events += evb_count(&b);
            rc = distribute_evs(w, &b);
        }
    }
    if (!rc && events != w->spill_events)
        rc = CW_EFORMAT;
    evb_clear(&b);
    eng_swap_events(w->eng, &b);
    evb_free(&b);
    return rc;
}

/* ---- one file ---------------------------------------------------------------------------------- */

static int file_read(void *ud, uint8_t *buf, size_t cap, size_t *got)
{
    FILE *f = ud;
    *got = fread(buf, 1, cap, f);
    return *got == 0 && ferror(f) ? CW_EIO : 0;
}

static int file_rewind(void *ud)
{
    FILE *f = ud;
    clearerr(f);
    return fseek(f, 0, SEEK_SET) ? CW_EIO : 0;
}

/* An unseekable input (standard input, a pipe) read whole, up to SCAN_MAX_WHOLE_BYTES. */
static int read_whole(FILE *f, uint8_t **out, size_t *len)
{
    void *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        int rc = n == cap ? cw_grow(&buf, &cap, n + 1, 1, SCAN_READ_CHUNK, SCAN_MAX_WHOLE_BYTES) : 0;
        if (rc) {
            free(buf);
            return rc;
        }
        size_t got = fread((uint8_t *)buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        return CW_EIO;
    }
    *out = buf;
    *len = n;
    return 0;
}

static const char *whole_error(int rc)
{
    return rc == CW_ETOOBIG ? "file too large to scan" : strerror(rc == CW_ENOMEM ? ENOMEM : EIO);
}

/* An accepted file's events handed to the shards: the last chunk and the spilled ones (decoded once),
 * or, when pass 1 could not spill them all, the whole file decoded again (pass 2; what was spilled is
 * forgotten). An error reading the spill back is the file's, reported as pass 2's are: some of its
 * events are with the shards by then, and decoding it again would hand them over twice (the
 * dedup sets hold a bounded number of ids per key, so a second copy could be counted twice). */
static int deliver(struct worker *w, struct eng_input *in)
{
    if (eng_overflowed(w->eng)) {
        w->redecoded = 1;
        return eng_redecode_in(w->eng, in, distribute, w);
    }
    int rc = distribute(w, w->eng);
    if (!rc && w->spill_chunks) {
        w->spilled = 1;
        rc = spill_read_back(w);
    }
    return rc;
}

/* The file's events checked and handed to the shards. Returns 0, or -1 when the file could not be
 * read or decoded (said), 1 when it is a CloudTrail digest (skipped). */
static int decode_file(struct worker *w, const char *path, struct eng_input *in)
{
    int rc = eng_decode_in(w->eng, in, w->rep);
    const struct eng_report *rep = w->rep;
    if (rc == CW_EINPUT && strcmp(rep->message, DEC_DIGEST_MSG) == 0)
        return 1;  /* CloudTrail-Digest files sit beside the logs: expected, not an error */
    if (rc) {
        fprintf(stderr, "credwatch scan: %s: %s\n", path, rep->message[0] ? rep->message : cw_strerror(rc));
        eng_discard(w->eng);
        return -1;  /* refused whole: its spilled chunks are never read (scan_file forgets them) */
    }
    for (size_t i = 0; i < rep->n_skips; i++)
        fprintf(stderr, "credwatch scan: %s: record %zu skipped: %s\n", path, rep->skips[i].index,
                rep->skips[i].reason);
    if (rep->skipped > rep->n_skips)
        fprintf(stderr, "credwatch scan: %s: %zu more records skipped\n", path, rep->skipped - rep->n_skips);
    rc = deliver(w, in);
    if (rc) {
        fprintf(stderr, "credwatch scan: %s: %s after the file was checked; its events may be applied in part\n",
                path, rc == CW_ENOMEM ? "out of memory" : w->spilled ? "cannot read back its spilled events"
                                                                    : "read error or changed");
        eng_discard(w->eng);
        return -1;
    }
    return 0;
}

static void count_file(struct worker *w, int outcome, unsigned long long bytes)
{
    struct run *r = w->r;
    const struct eng_report *rep = w->rep;
    pthread_mutex_lock(&r->mu);
    r->t.bytes += bytes;
    r->t.spilled_files += (size_t)w->spilled;
    r->t.redecoded_files += (size_t)w->redecoded;
    w->spilled = w->redecoded = 0;
    if (outcome < 0) {
        r->t.bad_files++;
    } else if (outcome > 0) {
        r->t.refused_files++;
    } else {
        r->t.files++;
        r->t.records += rep->records;
        r->t.skipped += rep->skipped;
        r->t.ignored += rep->ignored;
    }
    pthread_mutex_unlock(&r->mu);
}

static void scan_file(struct worker *w, const char *path)
{
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    struct stat sb;
    if (!f || fstat(fileno(f), &sb) != 0) {
        fprintf(stderr, "credwatch scan: %s: %s\n", path, strerror(errno));
        if (f && !is_stdin)
            fclose(f);
        count_file(w, -1, 0);
        return;
    }
    struct eng_input in = { .read = file_read, .rewind = file_rewind, .ud = f };
    uint8_t *whole = NULL;
    int outcome, rc = 0;
    if (!S_ISREG(sb.st_mode) && (rc = read_whole(f, &whole, &in.len)) == 0) {
        in.buf = whole;  /* it cannot be read twice */
        in.read = NULL;
    }
    if (rc) {
        fprintf(stderr, "credwatch scan: %s: %s\n", path, whole_error(rc));
        outcome = -1;
    } else {
        outcome = decode_file(w, path, &in);
        spill_reset(w);  /* whatever the outcome: the spill belongs to one file */
    }
    unsigned long long bytes = S_ISREG(sb.st_mode) ? (unsigned long long)sb.st_size : in.len;
    free(whole);
    if (!is_stdin)
        fclose(f);
    count_file(w, outcome, bytes);
}

/* ---- the queue of paths, the threads ----------------------------------------------------------- */

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct run *r = w->r;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (!r->q_len && !r->walk_done)
            pthread_cond_wait(&r->not_empty, &r->mu);
        if (!r->q_len) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        char *path = r->q[r->q_head];
        r->q_head = (r->q_head + 1) % r->q_cap;
        r->q_len--;
        pthread_cond_signal(&r->not_full);
        pthread_mutex_unlock(&r->mu);
        scan_file(w, path);
        free(path);
    }
    /* every file read by every thread: this one applies what is left in its share of the shards */
    pthread_mutex_lock(&r->mu);
    if (--r->decoding == 0)
        pthread_cond_broadcast(&r->not_empty);
    while (r->decoding)
        pthread_cond_wait(&r->not_empty, &r->mu);
    unsigned stride = r->started;
    pthread_mutex_unlock(&r->mu);
    for (unsigned s = w->id; s < r->nshards; s += stride) {
        pthread_mutex_lock(&r->shards[s].mu);
        shard_flush_locked(r, &r->shards[s], 1);
        pthread_mutex_unlock(&r->shards[s].mu);
    }
    pthread_mutex_lock(&r->mu);
    r->running--;
    pthread_cond_broadcast(&r->progress);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* The progress line, with r->mu held: files, records, records/s and, when the total size is known,
 * the ETA from the bytes read. */
static void show_progress(struct run *r, int final)
{
    double t = cw_mono_s(), dt = t - r->t0;
    if (!r->c->progress || (!final && t - r->last_progress < SCAN_PROGRESS_EVERY_S))
        return;
    r->last_progress = t;
    size_t files = r->t.files + r->t.bad_files + r->t.refused_files;
    char eta[32] = "";
    unsigned long long total = r->c->total_bytes, done = r->t.bytes;
    if (!final && total && done && done < total) {
        double left = dt * (double)(total - done) / (double)done;
        snprintf(eta, sizeof eta, ", ETA %d:%02d:%02d", (int)(left / 3600), (int)left / 60 % 60, (int)left % 60);
    }
    char of[32] = "";
    if (r->c->total_files)
        snprintf(of, sizeof of, "/%zu", r->c->total_files);
    fprintf(stderr, "\rscanning: %zu%s files, %zu records, %.0f records/s%s\033[K%s", files, of, r->t.records,
            dt > 0 ? r->t.records / dt : 0.0, eta, final ? "\n" : "");
}

/* Waits on cv with r->mu held, for at most the progress interval. */
static void timed_wait(struct run *r, pthread_cond_t *cv)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long ns = ts.tv_nsec + (long)(SCAN_PROGRESS_EVERY_S * 1e9);
    ts.tv_sec += ns / 1000000000L;
    ts.tv_nsec = ns % 1000000000L;
    pthread_cond_timedwait(cv, &r->mu, &ts);
}

/* scan_walk's visit: the path joins the queue, waiting while it is full. */
static int enqueue(void *ud, const char *path)
{
    struct run *r = ud;
    char *p = strdup(path);
    if (!p) {
        fprintf(stderr, "credwatch scan: %s: out of memory\n", path);
        pthread_mutex_lock(&r->mu);
        r->t.bad_files++;
        pthread_mutex_unlock(&r->mu);
        return 0;
    }
    pthread_mutex_lock(&r->mu);
    while (r->q_len == r->q_cap) {
        timed_wait(r, &r->not_full);
        show_progress(r, 0);
    }
    r->q[(r->q_head + r->q_len) % r->q_cap] = p;
    r->q_len++;
    pthread_cond_signal(&r->not_empty);
    pthread_mutex_unlock(&r->mu);
    return 0;
}

/* ---- set-up --------------------------------------------------------------------------------- */

static struct eng_report *new_report(void)
{
    return malloc(sizeof(struct eng_report));
}

static int shards_new(struct run *r)
{
    struct eng_config cfg = *r->c->eng;
    cfg.keep_failed = 1;  /* shard_apply retries a batch the store refused */
    cfg.keep_bytes = (SCAN_FILL_BATCHES + 1) * r->batch + ENG_CHUNK_BYTES;  /* a batch's and its overshoot */
    r->shards = calloc(r->nshards, sizeof *r->shards);
    if (!r->shards)
        return CW_ENOMEM;
    for (unsigned s = 0; s < r->nshards; s++) {
        struct shard *sh = &r->shards[s];
        pthread_mutex_init(&sh->mu, NULL);
        pthread_cond_init(&sh->cv, NULL);
        evb_init(&sh->fill);
        sh->st = store_clone(r->c->st);
        sh->eng = sh->st ? eng_new(sh->st, &cfg) : NULL;
        sh->rep = new_report();
        if (!sh->eng || !sh->rep)
            return sh->st ? CW_ENOMEM : CW_EUNAVAIL;
    }
    return 0;
}

static void shards_free(struct run *r)
{
    for (unsigned s = 0; r->shards && s < r->nshards; s++) {
        struct shard *sh = &r->shards[s];
        eng_free(sh->eng);
        store_free(sh->st);
        free(sh->rep);
        evb_free(&sh->fill);
        pthread_mutex_destroy(&sh->mu);
        pthread_cond_destroy(&sh->cv);
    }
    free(r->shards);
}

static int workers_new(struct run *r, struct worker *ws)
{
    for (unsigned i = 0; i < r->c->jobs; i++)
        ws[i].spill_fd = -1;  /* before any can fail: workers_free closes the ones made */
    for (unsigned i = 0; i < r->c->jobs; i++) {
        ws[i].r = r;
        ws[i].id = i;
        ws[i].eng = eng_new(r->c->st, r->c->eng);  /* decodes only: the store is never called */
        ws[i].rep = new_report();
        ws[i].count = calloc(r->nshards + 1, sizeof *ws[i].count);
        if (!ws[i].eng || !ws[i].rep || !ws[i].count)
            return CW_ENOMEM;
        /* A worker's engine decodes one file at a time and hands every event on before the next
         * (decode_file): it holds none when a file starts, as eng_set_spill requires. */
        eng_set_spill(ws[i].eng, spill_chunk, &ws[i]);
    }
    return 0;
}

static void workers_free(struct run *r, struct worker *ws)
{
    for (unsigned i = 0; ws && i < r->c->jobs; i++) {
        eng_free(ws[i].eng);
        free(ws[i].rep);
        free(ws[i].idx);
        free(ws[i].count);
        if (ws[i].spill_fd >= 0)
            close(ws[i].spill_fd);
    }
    free(ws);
}

/* Starts the threads, walks the paths into the queue, waits for the threads, showing progress. */
static int run_threads(struct run *r, struct worker *ws, char *const *paths, int npaths)
{
    pthread_t *th = calloc(r->c->jobs, sizeof *th);
    if (!th)
        return CW_ENOMEM;
    unsigned started = 0;
    pthread_mutex_lock(&r->mu);  /* held until the counts are right: no thread finishes before */
    r->decoding = r->running = r->c->jobs;
    for (; started < r->c->jobs; started++)
        if (pthread_create(&th[started], NULL, worker_main, &ws[started]) != 0)
            break;
    r->started = started;
    r->decoding = r->running = started;
    pthread_mutex_unlock(&r->mu);
    size_t bad = started ? scan_walk(paths, npaths, enqueue, r) : 0;
    pthread_mutex_lock(&r->mu);
    r->t.bad_files += bad;
    r->walk_done = 1;
    pthread_cond_broadcast(&r->not_empty);
    while (r->running) {
        timed_wait(r, &r->progress);
        show_progress(r, 0);
    }
    show_progress(r, 1);
    pthread_mutex_unlock(&r->mu);
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    free(th);
    for (unsigned s = 0; s < r->nshards; s++) {  /* shards of threads that did not start */
        pthread_mutex_lock(&r->shards[s].mu);
        shard_flush_locked(r, &r->shards[s], 1);
        pthread_mutex_unlock(&r->shards[s].mu);
    }
    if (!started)
        fprintf(stderr, "credwatch scan: cannot start a thread\n");
    return started ? 0 : CW_ENOMEM;
}

int scan_run(const struct scan_run_cfg *c, char *const *paths, int npaths, struct scan_totals *t)
{
    struct run r = { .c = c, .batch = c->batch_bytes ? c->batch_bytes : SCAN_BATCH_BYTES, .nshards = c->jobs };
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.not_empty, NULL);
    pthread_cond_init(&r.not_full, NULL);
    pthread_cond_init(&r.progress, NULL);
    r.q_cap = (size_t)c->jobs * SCAN_QUEUE_PER_JOB;
    r.q = calloc(r.q_cap, sizeof *r.q);
    r.t0 = cw_mono_s();
    struct worker *ws = calloc(c->jobs, sizeof *ws);
    int rc = !r.q || !ws ? CW_ENOMEM : shards_new(&r);
    if (!rc)
        rc = workers_new(&r, ws);
    if (!rc)
        rc = run_threads(&r, ws, paths, npaths);
    else
        fprintf(stderr, "credwatch scan: %s\n",
                rc == CW_EUNAVAIL ? "cannot open a store handle per thread" : "out of memory");
    *t = r.t;
    workers_free(&r, ws);
    shards_free(&r);
    free(r.q);
    pthread_mutex_destroy(&r.mu);
    pthread_cond_destroy(&r.not_empty);
    pthread_cond_destroy(&r.not_full);
    pthread_cond_destroy(&r.progress);
    return rc;
}
