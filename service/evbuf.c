/* evbuf.c — packed events: a fixed header, then each string field with its NUL, akid first. */
#include "evbuf.h"
#include "cw.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVB_ARENA_INITIAL 65536
#define EVB_OFF_INITIAL 256
#define EVB_ALIGN 8               /* each event starts aligned, so its header is read in place */

/* The string fields, in packed order: akid and id first (the engine's sort keys). */
enum { S_AKID, S_ID, S_ACCOUNT, S_REGION, S_IP, S_ACTION, S_ERROR, S_UA, S_RUNTIME, S_WLID, S_ARN, S_VPCE,
       S_COLD, S_COUNT };

_Static_assert(EV_ID_MAX <= 256 && EV_AKID_MAX <= 256 && EV_ACCOUNT_MAX <= 256 && EV_REGION_MAX <= 256 &&
                   EV_IP_MAX <= 256 && EV_ACTION_MAX <= 256 && EV_ERROR_MAX <= 256 && EV_UA_MAX <= 256 &&
                   EV_RUNTIME_MAX <= 256 && EV_WORKLOAD_ID_MAX <= 256 && EV_ARN_MAX <= 256 &&
                   EV_COLD_ARN_MAX <= 256,
               "a packed string's length is one byte");

struct evb_head {
    uint64_t hash;
    int64_t time, expires, session_created;
    uint32_t flags;
    uint16_t size;                /* header + strings, before alignment */
    uint8_t kind, wl_kind, wl_ident, wl_weak, wl_markers;
    uint8_t len[S_COUNT];         /* string lengths without the NUL: every field is < 256 bytes */
};

/* The fields of an event in packed order, with their bounds (for unpacking). */
#define EVB_FIELDS(ev)                                                                                       \
    {                                                                                                        \
        (ev)->akid, (ev)->id, (ev)->account, (ev)->region, (ev)->source_ip, (ev)->action, (ev)->error,       \
            (ev)->user_agent, (ev)->runtime, (ev)->workload_id, (ev)->role_arn, (ev)->vpce_account,          \
            (ev)->cold_arn                                                                                   \
    }

void evb_init(struct evbuf *b)
{
    memset(b, 0, sizeof *b);
}

void evb_free(struct evbuf *b)
{
    free(b->arena);
    free(b->slot);
    evb_init(b);
}

void evb_clear(struct evbuf *b)
{
    b->len = 0;
    b->n = 0;
}

void evb_truncate(struct evbuf *b, size_t n)
{
    if (n >= b->n)
        return;
    b->len = b->slot[n].off;  /* event n starts where the kept ones end (and their padding) */
    b->n = n;
}

void evb_trim(struct evbuf *b, size_t keep_bytes)
{
    if (b->cap > keep_bytes)
        evb_free(b);
    else
        evb_clear(b);
}

/* Room for one more event of `size` bytes; its offset in *at. */
static int reserve(struct evbuf *b, size_t size, size_t *at)
{
    size_t start = (b->len + EVB_ALIGN - 1) & ~(size_t)(EVB_ALIGN - 1);
    void *p = b->arena, *o = b->slot;
    int rc = cw_grow(&p, &b->cap, start + size, 1, EVB_ARENA_INITIAL, EVB_MAX_BYTES);
    b->arena = p;
    if (!rc)
        rc = cw_grow(&o, &b->cap_off, b->n + 1, sizeof *b->slot, EVB_OFF_INITIAL, EVB_MAX_EVENTS);
    b->slot = o;
    if (rc)
        return rc;
    memset(b->arena + b->len, 0, start - b->len);  /* the padding too is written out whole (evb_write) */
    *at = start;
    return 0;
}

/* A hash of a packed event's content, 8 bytes at a time: the header's fields that are the event's
 * (kind, flags, times, workload bits), then its strings back to back, each with its NUL, so
 * ("ab", "c") and ("a", "bc") differ. Each word is xored in, multiplied by an odd constant (2^64
 * over the golden ratio) and its high half folded down; the end is murmur3's 64-bit finaliser (a
 * published avalanche). Equal content gives equal hashes, as an identity must; a collision between
 * two events of one key (at most STORE_SEEN_MAX kept) has odds of about 2^-43. Never 0. */
#define EVB_MIX 0x9e3779b97f4a7c15ull
static uint64_t mix_word(uint64_t h, uint64_t w)
{
    h = (h ^ w) * EVB_MIX;
    return h ^ (h >> 29);
}

static uint64_t own_hash(const struct evb_head *h)
{
    uint64_t x = mix_word(EVB_MIX, (uint64_t)h->kind | (uint64_t)h->wl_kind << 8 | (uint64_t)h->wl_ident << 16 |
                                       (uint64_t)h->wl_weak << 24 | (uint64_t)h->wl_markers << 32 |
                                       (uint64_t)h->size << 40);
    x = mix_word(x, h->flags);
    x = mix_word(x, (uint64_t)h->time);
    x = mix_word(x, (uint64_t)h->expires);
    x = mix_word(x, (uint64_t)h->session_created);
    const unsigned char *p = (const unsigned char *)(h + 1);
    size_t n = h->size - sizeof *h;  /* the strings, NULs included */
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        x = mix_word(x, w);
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        x = mix_word(x, w);
    }
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x ? x : 1;
}

/* FNV-1a of the akid: evb_khash. */
static uint32_t akid_hash(const char *akid)
{
    uint32_t kh = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)akid; *p; p++)
        kh = (kh ^ *p) * 16777619u;
    return kh;
}

static int push(struct evbuf *b, const struct ev_event *ev, uint64_t hash, int own)
{
    const char *f[S_COUNT] = EVB_FIELDS(ev);
    size_t lens[S_COUNT], size = sizeof(struct evb_head);
    for (int i = 0; i < S_COUNT; i++) {
        lens[i] = strlen(f[i]);  /* every field is NUL-terminated within its bound (< 256) */
        size += lens[i] + 1;
    }
    size_t at;
    int rc = reserve(b, size, &at);
    if (rc)
        return rc;
    struct evb_head *h = (struct evb_head *)(b->arena + at);
    h->hash = hash;
    uint32_t kh = akid_hash(ev->akid);
    h->time = ev->time;
    h->expires = ev->expires;
    h->session_created = ev->session_created;
    h->flags = ev->flags;
    h->size = (uint16_t)size;
    h->kind = (uint8_t)ev->kind;
    h->wl_kind = ev->wl_kind;
    h->wl_ident = ev->wl_ident;
    h->wl_weak = ev->wl_weak;
    h->wl_markers = ev->wl_markers;
    char *s = (char *)(h + 1);
    for (int i = 0; i < S_COUNT; i++) {
        h->len[i] = (uint8_t)lens[i];
        memcpy(s, f[i], lens[i] + 1);
        s += lens[i] + 1;
    }
    if (own)
        h->hash = own_hash(h);
    b->slot[b->n++] = (struct evb_slot){ (uint32_t)at, kh };
    b->len = at + size;
    return 0;
}

int evb_push(struct evbuf *b, const struct ev_event *ev, uint64_t hash)
{
    return push(b, ev, hash, 0);
}

int evb_push_own(struct evbuf *b, const struct ev_event *ev)
{
    return push(b, ev, 0, 1);
}

static const struct evb_head *head(const struct evbuf *b, size_t i)
{
    return (const struct evb_head *)(b->arena + b->slot[i].off);
}

int evb_copy(struct evbuf *b, const struct evbuf *src, size_t i)
{
    const struct evb_head *h = head(src, i);
    size_t at, size = h->size;
    int rc = reserve(b, size, &at);
    if (rc)
        return rc;
    memcpy(b->arena + at, h, size);  /* h is src's: src is never b while its arena may move */
    b->slot[b->n++] = (struct evb_slot){ (uint32_t)at, src->slot[i].khash };
    b->len = at + size;
    return 0;
}

const char *evb_akid(const struct evbuf *b, size_t i)
{
    return (const char *)(head(b, i) + 1);
}

const char *evb_id(const struct evbuf *b, size_t i)
{
    const struct evb_head *h = head(b, i);
    return (const char *)(h + 1) + h->len[S_AKID] + 1;
}

uint64_t evb_hash(const struct evbuf *b, size_t i)
{
    return head(b, i)->hash;
}

void evb_get(const struct evbuf *b, size_t i, struct ev_event *ev)
{
    const struct evb_head *h = head(b, i);
    memset(ev, 0, sizeof *ev);
    ev->kind = (enum ev_kind)h->kind;
    ev->flags = h->flags;
    ev->time = h->time;
    ev->expires = h->expires;
    ev->session_created = h->session_created;
    ev->wl_kind = h->wl_kind;
    ev->wl_ident = h->wl_ident;
    ev->wl_weak = h->wl_weak;
    ev->wl_markers = h->wl_markers;
    char *f[S_COUNT] = EVB_FIELDS(ev);
    const char *s = (const char *)(h + 1);
    for (int k = 0; k < S_COUNT; k++) {
        memcpy(f[k], s, (size_t)h->len[k] + 1);
        s += h->len[k] + 1;
    }
}

/* ---- to and from a file ---------------------------------------------------------------------- */

#define EVB_FILE_MAGIC 0x31425645u  /* "EVB1": a spill file read back is one this code wrote */

struct evb_file_head {
    uint32_t magic, zero;
    uint64_t n, len;              /* events, arena bytes */
};

/* Each string field's room in struct ev_event, in packed order: a length read back from a file
 * must fit it before evb_get copies it there. */
#define EVB_ROOM(f) sizeof(((struct ev_event *)0)->f)
static const size_t field_room[S_COUNT] = {
    EVB_ROOM(akid), EVB_ROOM(id), EVB_ROOM(account), EVB_ROOM(region), EVB_ROOM(source_ip),
    EVB_ROOM(action), EVB_ROOM(error), EVB_ROOM(user_agent), EVB_ROOM(runtime), EVB_ROOM(workload_id),
    EVB_ROOM(role_arn), EVB_ROOM(vpce_account), EVB_ROOM(cold_arn),
};

/* All n bytes written, through short writes and signals. */
static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return CW_EIO;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Up to n bytes read, through short reads and signals; *got < n only at the end of the file. */
static int read_all(int fd, void *p, size_t n, size_t *got)
{
    uint8_t *c = p;
    *got = 0;
    while (*got < n) {
        ssize_t r = read(fd, c + *got, n - *got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return CW_EIO;
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

size_t evb_file_bytes(const struct evbuf *b)
{
    return sizeof(struct evb_file_head) + b->n * sizeof *b->slot + b->len;
}

int evb_write(const struct evbuf *b, int fd)
{
    struct evb_file_head fh = { EVB_FILE_MAGIC, 0, b->n, b->len };
    int rc = write_all(fd, &fh, sizeof fh);
    if (!rc && b->n)
        rc = write_all(fd, b->slot, b->n * sizeof *b->slot);
    if (!rc && b->len)
        rc = write_all(fd, b->arena, b->len);
    return rc;
}

/* Event i as read back describes a packed event: where the previous one ends or after, aligned,
 * inside the arena, its strings NUL-terminated within their fields' room, its akid hash its own.
 * *end: where it ends. So evb_get and evb_akid on a read-back buffer stay within its memory. */
static int slot_valid(const struct evbuf *b, size_t i, size_t *end)
{
    size_t off = b->slot[i].off;
    if (off < *end || off % EVB_ALIGN || off > b->len || b->len - off < sizeof(struct evb_head))
        return 0;
    const struct evb_head *h = head(b, i);
    if (h->size > b->len - off)
        return 0;
    size_t size = sizeof *h;
    const char *s = (const char *)(h + 1);
    for (int k = 0; k < S_COUNT; k++) {
        if ((size_t)h->len[k] + 1 > field_room[k] || size + h->len[k] + 1 > h->size)
            return 0;
        if (memchr(s, 0, h->len[k]) || s[h->len[k]] != 0)
            return 0;
        size += h->len[k] + 1;
        s += h->len[k] + 1;
    }
    if (size != h->size || akid_hash(evb_akid(b, i)) != b->slot[i].khash)
        return 0;
    *end = off + size;
    return 1;
}

int evb_read_next(struct evbuf *b, int fd, int *end)
{
    struct evb_file_head fh;
    size_t got;
    evb_clear(b);
    *end = 0;
    int rc = read_all(fd, &fh, sizeof fh, &got);
    if (rc || got == 0) {
        *end = !rc;
        return rc;
    }
    if (got < sizeof fh || fh.magic != EVB_FILE_MAGIC || fh.zero || (fh.n == 0) != (fh.len == 0))
        return CW_EFORMAT;
    if (fh.n > EVB_MAX_EVENTS || fh.len > EVB_MAX_BYTES)
        return CW_ETOOBIG;
    void *p = b->arena, *o = b->slot;
    rc = cw_grow(&p, &b->cap, (size_t)fh.len ? (size_t)fh.len : 1, 1, EVB_ARENA_INITIAL, EVB_MAX_BYTES);
    b->arena = p;
    if (!rc)
        rc = cw_grow(&o, &b->cap_off, (size_t)fh.n ? (size_t)fh.n : 1, sizeof *b->slot, EVB_OFF_INITIAL,
                     EVB_MAX_EVENTS);
    b->slot = o;
    size_t slot_bytes = (size_t)fh.n * sizeof *b->slot;
    if (!rc && !(rc = read_all(fd, b->slot, slot_bytes, &got)) && got < slot_bytes)
        rc = CW_EFORMAT;  /* cut short */
    if (!rc && !(rc = read_all(fd, b->arena, (size_t)fh.len, &got)) && got < (size_t)fh.len)
        rc = CW_EFORMAT;
    if (rc)
        return rc;  /* b still empty */
    b->n = (size_t)fh.n;
    b->len = (size_t)fh.len;
    size_t at = 0;
    for (size_t i = 0; !rc && i < b->n; i++)
        if (!slot_valid(b, i, &at))
            rc = CW_EFORMAT;
    if (!rc && b->len - at >= EVB_ALIGN)
        rc = CW_EFORMAT;  /* bytes after the last event, beyond its padding (evb_truncate keeps it) */
    if (rc)
        evb_clear(b);
    return rc;
}
