/* evbuf.h — decoded events kept compactly between decoding and judging.
 *
 * A struct ev_event is ~944 bytes of fixed fields, most of them empty: an ingest of 250,000
 * records held ~236 MB of them. An evbuf keeps each event as a small header and its strings
 * back to back (~250-400 bytes for a real record), with the akid and event id first so the
 * engine can sort and group without unpacking, and the event's dedup identity (det_event_hash)
 * computed once, at push.
 */
#ifndef CW_EVBUF_H
#define CW_EVBUF_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

/* Bytes of packed events one buffer holds at most: 256 MiB, far above any chunk the engine or the
 * scan fills (they flush at ENG_CHUNK_BYTES / SCAN_SHARD_BYTES), so only a caller bug reaches it. */
#define EVB_MAX_BYTES ((size_t)256 << 20)
#define EVB_MAX_EVENTS (EVB_MAX_BYTES / 64)  /* a packed event is at least 64 bytes */

/* Where event i is, and its akid's hash: beside the offsets, not in the event, so the sort and the
 * shard split read them in order from a small array instead of one cache line of the arena each. */
struct evb_slot {
    uint32_t off;         /* offset of the event in arena */
    uint32_t khash;       /* evb_khash */
};

struct evbuf {
    uint8_t *arena;       /* packed events back to back */
    size_t len, cap;
    struct evb_slot *slot; /* [n] */
    size_t n, cap_off;
};

void evb_init(struct evbuf *b);
void evb_free(struct evbuf *b);
void evb_clear(struct evbuf *b);          /* n = 0, memory kept */
void evb_truncate(struct evbuf *b, size_t n);  /* the first n events kept (n <= count) */
/* Frees the memory when it holds more than keep_bytes of arena (a big batch's memory is not kept
 * until the next one), else keeps it. */
void evb_trim(struct evbuf *b, size_t keep_bytes);

/* Appends ev (hash: its det_event_hash). 0, CW_ENOMEM, or CW_ETOOBIG past EVB_MAX_BYTES. */
int evb_push(struct evbuf *b, const struct ev_event *ev, uint64_t hash);
/* The same, the event named by a hash of its packed form instead (evbuf.c own_hash): for stores
 * whose dedup sets are the process's own (store_ids_private). det_event_hash walks the strings a
 * byte at a time (FNV-1a, a multiply per byte, ~4 % of a scan) and stays the identity wherever one
 * is stored. */
int evb_push_own(struct evbuf *b, const struct ev_event *ev);
/* Appends event i of src, as packed. Same errors. */
int evb_copy(struct evbuf *b, const struct evbuf *src, size_t i);

static inline size_t evb_count(const struct evbuf *b) { return b->n; }
static inline size_t evb_bytes(const struct evbuf *b) { return b->len; }

const char *evb_akid(const struct evbuf *b, size_t i);
const char *evb_id(const struct evbuf *b, size_t i);
uint64_t evb_hash(const struct evbuf *b, size_t i);
/* A hash of the akid (FNV-1a, 32 bits), computed once at push: equal akids have equal ones. */
static inline uint32_t evb_khash(const struct evbuf *b, size_t i) { return b->slot[i].khash; }
/* Event i unpacked into *ev (every string field NUL-terminated; what follows a NUL is zero). */
void evb_get(const struct evbuf *b, size_t i, struct ev_event *ev);

/* A buffer's events written to / read back from a file descriptor (scan's spill, scan_run.c): a
 * header (a magic word, the event count, the arena's bytes), the slot array, then the arena. Read
 * back, every event's hash, akid hash and fields are what was pushed. evb_write: 0 or CW_EIO.
 * evb_read_next replaces *b's events with the next buffer in fd: 0, *end = 1 when fd was at its end
 * (nothing read), CW_EFORMAT (a header or slot that does not describe packed events, or a file cut
 * short), CW_ETOOBIG (a header above EVB_MAX_BYTES / EVB_MAX_EVENTS), CW_ENOMEM or CW_EIO. */
int evb_write(const struct evbuf *b, int fd);
int evb_read_next(struct evbuf *b, int fd, int *end);
/* Bytes evb_write writes for b: what a caller bounding a file counts. */
size_t evb_file_bytes(const struct evbuf *b);

#endif
