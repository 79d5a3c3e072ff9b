/* engine.h — one ingest, end to end: decode, group by key, load state, judge, commit, findings.
 *
 * The engine is where the pure core (decode, detect, render) meets the store and the caller's
 * wall clock (now_ms), and it owns the write path: nothing else loads or commits key state or
 * writes a finding's evidence. The API also goes to the store directly, for findings as stored
 * (listing, one finding, a status change) and for the store's health (/readyz, /metrics); a key's
 * view goes through eng_key_json. Both `serve` (one engine per worker thread) and `scan` (one
 * engine, in-memory store) go through it.
 * An input that will never be valid (malformed JSON, a look-alike, too big) changes nothing:
 * the whole input is decoded before the store is touched.
 */
#ifndef CW_ENGINE_H
#define CW_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "cw.h"

#include "decode.h"
#include "detect.h"
#include "evbuf.h"
#include "store.h"

#define ENG_SKIPS_MAX 100        /* skipped records reported one by one; the count is always exact */
#define ENG_FINDINGS_MAX 1000    /* finding ids reported per ingest; the count is always exact */
#define ENG_KEYS_PER_ROUND 512   /* keys per pipelined store round trip */
#define ENG_CAS_RETRIES 16       /* reload-and-reapply attempts when another instance won a race */
#define ENG_MSG_MAX 256
/* Decoded events are kept packed (evbuf.h, ~300 bytes each) and at most ENG_CHUNK_BYTES of them at
 * once: an input with more is checked whole first (pass 1: counted, its events past the chunk
 * dropped), then decoded again and applied one chunk at a time (pass 2). So an ingest holds at most
 * one chunk of events whatever its size (a 256 MiB inflated body held ~236 MB of events before),
 * and an input refused as a whole still stores nothing. Inputs that fit one chunk (every ordinary
 * CloudTrail file and request) are decoded once. */
#define ENG_CHUNK_BYTES ((size_t)8 << 20)
/* Scratch memory an engine keeps between inputs; a larger batch's is freed once applied, so a
 * worker does not hold a big request's memory until the next one. */
#define ENG_KEEP_BYTES ((size_t)4 << 20)

struct eng_skip {
    size_t index;
    char reason[128];
};

struct eng_report {
    size_t records;      /* records in the input */
    size_t accepted;     /* records applied to a key's state for the first time */
    size_t ignored;      /* valid records that are not a use or an issuance of a temporary key
                          * (an IAM user's AKIA key, an anonymous S3 data event, network activity) */
    size_t duplicates;   /* records already applied before (event id seen for the key) */
    size_t skipped;      /* malformed records */
    size_t keys;         /* distinct access keys touched */
    size_t n_skips;
    struct eng_skip skips[ENG_SKIPS_MAX];
    size_t findings;     /* findings created or updated */
    size_t created;      /* of which created */
    size_t n_ids;
    char ids[ENG_FINDINGS_MAX][STORE_ID_MAX];
    char message[ENG_MSG_MAX];
};

struct eng_config {
    struct dec_limits limits;
    struct det_ctx det;
    int64_t late_margin_s;   /* 0 = DET_LATE_MARGIN: a record is kept at least this long after arrival */
    size_t chunk_bytes;      /* 0 = ENG_CHUNK_BYTES (tests set small ones to drive pass 2) */
    size_t keep_bytes;       /* 0 = ENG_KEEP_BYTES; a scan shard keeps its batch's buffers (its bound
                              * counts them anyway) instead of growing them again for every batch */
    /* The verdict is the whole evidence's: no severity memory (det_remember) between commits, no
     * floor from an existing finding. The service keeps a severity once raised (an analyst saw it,
     * and later records are the thief's to forge); a scan, which has every record at once, judges
     * each key on all of them, so its findings do not depend on how its events were batched
     * (scan --jobs, docs/detection.md section 6). A finding raised on part of the evidence and not
     * supported by all of it is left in the store; eng_key_verdict tells the caller. */
    int judge_whole;
    int keep_failed;         /* eng_apply keeps its events when the store was unavailable, for the
                              * caller's own retry (scan); otherwise they are dropped (the sender retries) */
    /* Called for every finding this engine created or updated (id, 1 when created), after the store
     * has it: scan keeps its own share this way, beyond ENG_FINDINGS_MAX per report. NULL: none. */
    void (*on_finding)(void *ud, const char *id, int created);
    void *on_finding_ud;
};

struct eng;

/* The engine borrows the store (one handle per engine: not thread-safe) and the config. */
struct eng *eng_new(struct store *st, const struct eng_config *cfg);
void eng_free(struct eng *e);

/* Ingests one input (any decode.h form, plain or gzip). now_ms is the wall clock, used only
 * for the store's expiry floor and the findings' created_at/updated_at. The report (caller's
 * memory; large, allocate it) is filled in any case. Returns 0, CW_EINPUT (never valid: 400, the
 * message says why), CW_ETOOBIG (over a size cap: 413), CW_EUNAVAIL (store unavailable or
 * contention beyond the retries: 503, retry) or CW_ENOMEM. */
int eng_ingest(struct eng *e, const uint8_t *buf, size_t len, int64_t now_ms, struct eng_report *rep);

/* The two halves of eng_ingest, for callers that apply several inputs at once (scan: a key that
 * appears in many files is then loaded, judged and written once per batch, not once per file).
 * eng_decode decodes one input and keeps its events (a refused input keeps none) and fills the
 * decode part of rep (records, skipped, skips, message); eng_apply applies every kept event and
 * fills the rest (duplicates, keys, findings). */
int eng_decode(struct eng *e, const uint8_t *buf, size_t len, struct eng_report *rep);
int eng_apply(struct eng *e, int64_t now_ms, struct eng_report *rep);
size_t eng_pending(const struct eng *e);        /* events decoded and not yet applied */
size_t eng_pending_bytes(const struct eng *e);  /* their packed size */
/* keep_failed: of the pending events, those that failed attempts already committed with their
 * findings written (their keys' compare-and-set and their round's finding write succeeded before
 * the store failed). A retry counts every committed event as accepted, not as a duplicate; a caller
 * that gives up has lost only the rest (a key committed without its finding write is lost: its
 * finding is missing until a later apply of its events repairs it). */
size_t eng_pending_committed(const struct eng *e);
/* Drops the events decoded and not yet applied (a caller that gives up between the two halves). */
void eng_discard(struct eng *e);

/* An input in memory (buf, len), or a stream read in pieces: read gives the next bytes (*got = 0
 * at the end; non-zero: a read error) and rewind goes back to the first byte for pass 2. */
struct eng_input {
    const uint8_t *buf;
    size_t len;
    int (*read)(void *ud, uint8_t *buf, size_t cap, size_t *got);
    int (*rewind)(void *ud);
    void *ud;
};
/* eng_decode over either kind of input; a stream that cannot be read is CW_EIO. */
int eng_decode_in(struct eng *e, const struct eng_input *in, struct eng_report *rep);
/* After eng_decode(_in) kept only the first chunk of an input's events (eng_overflowed): drops the
 * kept events and decodes the same input again, calling flush each time a chunk of events is
 * pending and once at the end; flush takes them (eng_apply, or eng_events + eng_discard). The
 * report stays pass 1's. Returns 0, flush's error, CW_ENOMEM, or CW_EIO when the input cannot be
 * read again, no longer decodes, or holds another number of records than pass 1 counted (changed
 * under us: a file rewritten between the passes; what was flushed before the end stays flushed). */
int eng_overflowed(const struct eng *e);
/* Pass 1 without pass 2 (scan: a large file decoded once). With a spill set, eng_decode(_in) of an
 * input into an engine that holds no events hands each full chunk to spill (it takes eng_events(e):
 * writes them elsewhere) and goes on collecting; 0 from spill empties the buffer. An error from
 * spill is no error of the input: the engine falls back to the two passes (overflow set, the rest
 * dropped; the caller redecodes and forgets what it spilled). So once an input is accepted and not
 * eng_overflowed, its events are the spilled chunks and the pending ones; once refused, nothing is
 * pending and the spilled chunks are the caller's to discard (a file refused whole stores nothing).
 * An engine that held events before the input never spills (a chunk would mix inputs): it
 * overflows as without a spill. NULL: no spill (serve). */
void eng_set_spill(struct eng *e, int (*spill)(void *ud, struct eng *e), void *ud);
int eng_redecode_in(struct eng *e, const struct eng_input *in, int (*flush)(void *ud, struct eng *e), void *ud);
/* Pass 2 over a request of several inputs (Firehose): begin, feed each input pass 1 accepted (and
 * only those: a chunk may be flushed in the middle of an input, so one that fails now would leave
 * its first records applied), end. feed returns 0, or CW_EINPUT (the input no longer decodes), the
 * flush's error or CW_ENOMEM, which stop the request; end flushes the last chunk. */
void eng_stream_begin(struct eng *e, int (*flush)(void *ud, struct eng *e), void *ud);
int eng_stream_feed(struct eng *e, const struct eng_input *in);
int eng_stream_end(struct eng *e);
/* eng_ingest's flush: applies the chunk at now_ms (set by eng_stream_now), its counts added to the
 * report of the last eng_decode. */
int eng_flush_apply(void *ud, struct eng *e);
void eng_stream_now(struct eng *e, int64_t now_ms);
/* The pending events (for a caller that hands them to other engines), and one of them added. */
const struct evbuf *eng_events(const struct eng *e);
int eng_add(struct eng *e, const struct evbuf *src, size_t i);
/* The pending events and *b exchanged (no copy): a scan shard fills a buffer while its engine
 * applies the previous one. */
void eng_swap_events(struct eng *e, struct evbuf *b);

/* The verdict of a key's stored state: 0, CW_ENOTFOUND (no state), CW_EUNAVAIL. */
int eng_key_verdict(struct eng *e, const char *akid, struct det_verdict *v);

/* Key context as JSON (GET /v1/keys/{id}); *json is malloc'd. 0, CW_ENOTFOUND if unknown,
 * CW_EUNAVAIL or CW_ENOMEM. */
int eng_key_json(struct eng *e, const char *akid, char **json);

/* Points the engine at another network table (after a reload); NULL = none. The caller keeps
 * the table alive while the engine may use it. */
void eng_set_net(struct eng *e, const struct nr_table *net);

/* The finding id of a key. */
void eng_finding_id(const char *akid, char *out, size_t size);

#endif
