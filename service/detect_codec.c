/* detect_codec.c — det_key to and from a compact binary blob (what the stores keep).
 *
 * Why binary: Redis memory per tracked key is budgeted (≤ 512 bytes); JSON of the same state is
 * two to three times larger. Layout: magic "CW", format version, then fields in a fixed order;
 * integers as LEB128 varints, strings as a varint length and bytes. Empty arrays cost one byte,
 * so a typical Lambda key (issued, one inside address) encodes to ~200 bytes.
 */
#include "detect.h"

#include <string.h>

#define CODEC_MAGIC0 'C'
#define CODEC_MAGIC1 'W'
#define CODEC_VERSION 3  /* 2: det_use.region; 3: det_cand.regions (version 2 blobs still decode) */
#define CODEC_VERSION_MIN 2

struct wbuf {
    uint8_t *p;
    size_t len, cap;
    int overflow;
};

static void put_byte(struct wbuf *w, uint8_t b)
{
    if (w->len >= w->cap) {
        w->overflow = 1;
        return;
    }
    w->p[w->len++] = b;
}

static void put_u64(struct wbuf *w, uint64_t v)
{
    while (v >= 0x80) {
        put_byte(w, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    put_byte(w, (uint8_t)v);
}

static void put_i64(struct wbuf *w, int64_t v)
{
    put_u64(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63)); /* zigzag: times are never negative, but be safe */
}

static void put_str(struct wbuf *w, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap - 1);
    put_u64(w, n);
    if (w->len + n > w->cap) {
        w->overflow = 1;
        return;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
}

struct rbuf {
    const uint8_t *p;
    size_t len, pos;
    int bad;
};

static uint64_t get_u64(struct rbuf *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->pos >= r->len) {
            r->bad = 1;
            return 0;
        }
        uint8_t b = r->p[r->pos++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

static int64_t get_i64(struct rbuf *r)
{
    uint64_t v = get_u64(r);
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Every time in the state is an event time the decoder accepted (years 1970-9999), so anything
 * else is a corrupt blob; refusing it here also keeps det_expires_at's sums from overflowing. */
#define CODEC_TIME_MAX 253402300799LL  /* 9999-12-31T23:59:59Z */

static int64_t get_time(struct rbuf *r)
{
    int64_t t = get_i64(r);
    if (t < 0 || t > CODEC_TIME_MAX)
        r->bad = 1;
    return t;
}

static uint32_t get_u32(struct rbuf *r)
{
    uint64_t v = get_u64(r);
    if (v > UINT32_MAX)
        r->bad = 1;
    return (uint32_t)v;
}

/* A 0/1 field det_encode writes as one byte. Anything else is refused: a value of 0x80 or more
 * would be written back as a byte with the varint continuation bit set, and the re-encoded state
 * would no longer decode (found by fuzz_codec: a key then fails every ingest). */
static uint8_t get_bool(struct rbuf *r)
{
    uint64_t v = get_u64(r);
    if (v > 1)
        r->bad = 1;
    return (uint8_t)(v & 1);
}

static void get_str(struct rbuf *r, char *dst, size_t cap)
{
    uint64_t n = get_u64(r);
    if (r->bad || n >= cap || n > r->len - r->pos || memchr(r->p + r->pos, 0, n)) {
        r->bad = 1;
        dst[0] = 0;
        return;
    }
    memcpy(dst, r->p + r->pos, n);
    dst[n] = 0;
    r->pos += n;
}

static void put_use(struct wbuf *w, const struct det_use *u)
{
    put_i64(w, u->at);
    put_str(w, u->region, sizeof u->region);
    put_str(w, u->event_id, sizeof u->event_id);
    put_str(w, u->action, sizeof u->action);
    put_str(w, u->user_agent, sizeof u->user_agent);
    put_byte(w, u->failed);
}

static void get_use(struct rbuf *r, struct det_use *u)
{
    u->at = get_time(r);
    get_str(r, u->region, sizeof u->region);
    get_str(r, u->event_id, sizeof u->event_id);
    get_str(r, u->action, sizeof u->action);
    get_str(r, u->user_agent, sizeof u->user_agent);
    u->failed = get_bool(r);
}

int det_encode(const struct det_key *k, uint8_t *buf, size_t cap)
{
    struct wbuf w = { buf, 0, cap, 0 };
    put_byte(&w, CODEC_MAGIC0);
    put_byte(&w, CODEC_MAGIC1);
    put_byte(&w, CODEC_VERSION);
    put_str(&w, k->akid, sizeof k->akid);
    put_str(&w, k->account, sizeof k->account);
    put_str(&w, k->region, sizeof k->region);
    put_str(&w, k->function, sizeof k->function);
    put_str(&w, k->role_arn, sizeof k->role_arn);
    put_str(&w, k->runtime, sizeof k->runtime);
    put_str(&w, k->issue_event_id, sizeof k->issue_event_id);
    put_byte(&w, (uint8_t)(k->issued | k->marked << 1 | k->inside_ips_truncated << 2 | k->cands_truncated << 3));
    put_i64(&w, k->issued_at);
    put_i64(&w, k->expires);
    put_i64(&w, k->session_created);
    put_i64(&w, k->first_seen);
    put_i64(&w, k->last_seen);
    put_u64(&w, k->inside_count);
    put_i64(&w, k->inside_first);
    put_i64(&w, k->inside_last);
    put_u64(&w, k->on_behalf_count);
    put_u64(&w, k->n_inside_ips);
    for (size_t i = 0; i < k->n_inside_ips; i++)
        put_str(&w, k->inside_ips[i], sizeof k->inside_ips[i]);
    put_u64(&w, k->n_cands);
    for (size_t i = 0; i < k->n_cands; i++) {
        const struct det_cand *c = &k->cands[i];
        put_str(&w, c->ip, sizeof c->ip);
        put_u64(&w, c->count);
        put_u64(&w, c->ok_count);
        put_u64(&w, c->exempt_count);
        put_u64(&w, c->presigned_count);
        put_u64(&w, c->flags);
        put_str(&w, c->vpce_account, sizeof c->vpce_account);
        put_use(&w, &c->first);
        put_use(&w, &c->last);
        put_byte(&w, c->actions_truncated);
        put_u64(&w, c->n_actions);
        for (size_t a = 0; a < c->n_actions; a++) {
            put_str(&w, c->actions[a].name, sizeof c->actions[a].name);
            put_byte(&w, c->actions[a].ok);
        }
        put_byte(&w, c->regions_truncated);
        put_u64(&w, c->n_regions);
        for (size_t g = 0; g < c->n_regions; g++)
            put_str(&w, c->regions[g], sizeof c->regions[g]);
    }
    return w.overflow ? -1 : (int)w.len;
}

int det_decode(struct det_key *k, const uint8_t *buf, size_t len)
{
    struct rbuf r = { buf, len, 0, 0 };
    memset(k, 0, sizeof *k);
    if (len < 3 || buf[0] != CODEC_MAGIC0 || buf[1] != CODEC_MAGIC1 || buf[2] < CODEC_VERSION_MIN ||
        buf[2] > CODEC_VERSION)
        return -1;
    int version = buf[2];
    r.pos = 3;
    get_str(&r, k->akid, sizeof k->akid);
    get_str(&r, k->account, sizeof k->account);
    get_str(&r, k->region, sizeof k->region);
    get_str(&r, k->function, sizeof k->function);
    get_str(&r, k->role_arn, sizeof k->role_arn);
    get_str(&r, k->runtime, sizeof k->runtime);
    get_str(&r, k->issue_event_id, sizeof k->issue_event_id);
    uint64_t fl = get_u64(&r);
    k->issued = fl & 1;
    k->marked = (fl >> 1) & 1;
    k->inside_ips_truncated = (fl >> 2) & 1;
    k->cands_truncated = (fl >> 3) & 1;
    k->issued_at = get_time(&r);
    k->expires = get_time(&r);
    k->session_created = get_time(&r);
    k->first_seen = get_time(&r);
    k->last_seen = get_time(&r);
    k->inside_count = get_u32(&r);
    k->inside_first = get_time(&r);
    k->inside_last = get_time(&r);
    k->on_behalf_count = get_u32(&r);
    uint64_t n = get_u64(&r);
    if (n > DET_INSIDE_IPS_MAX)
        return -1;
    k->n_inside_ips = (uint8_t)n;
    for (size_t i = 0; i < n; i++)
        get_str(&r, k->inside_ips[i], sizeof k->inside_ips[i]);
    n = get_u64(&r);
    if (n > DET_CANDS_MAX)
        return -1;
    k->n_cands = (uint8_t)n;
    for (size_t i = 0; i < n && !r.bad; i++) {
        struct det_cand *c = &k->cands[i];
        get_str(&r, c->ip, sizeof c->ip);
        c->count = get_u32(&r);
        c->ok_count = get_u32(&r);
        c->exempt_count = get_u32(&r);
        c->presigned_count = get_u32(&r);
        c->flags = (unsigned)get_u64(&r);
        get_str(&r, c->vpce_account, sizeof c->vpce_account);
        get_use(&r, &c->first);
        get_use(&r, &c->last);
        c->actions_truncated = get_bool(&r);
        uint64_t na = get_u64(&r);
        if (na > DET_CAND_ACTIONS_MAX)
            return -1;
        c->n_actions = (uint8_t)na;
        for (size_t a = 0; a < na; a++) {
            get_str(&r, c->actions[a].name, sizeof c->actions[a].name);
            c->actions[a].ok = get_bool(&r);
        }
        if (version >= 3) {
            c->regions_truncated = get_bool(&r);
            uint64_t ng = get_u64(&r);
            if (ng > DET_CAND_REGIONS_MAX)
                return -1;
            c->n_regions = (uint8_t)ng;
            for (size_t g = 0; g < ng; g++)
                get_str(&r, c->regions[g], sizeof c->regions[g]);
        }
    }
    if (r.bad || r.pos != len)
        return -1;
    return 0;
}
