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
/* 4: one address set for every use (the marked-address set is gone), address priorities,
 * issuances, evictions, peak severity. Blobs of versions 2-3 are refused: the engine then starts
 * the key over (its state lives at most ~14 h; findings are kept apart and are not affected).
 * 5: workloads (issue 14): each issuance's kind and (EKS) source address, the key's workload
 * evidence. Version 4 is still read, as what it held: Lambda's issuances, no other workload's
 * evidence, so no key state is discarded by the upgrade. */
#define CODEC_VERSION 5
#define CODEC_VERSION_MIN 4
#define CODEC_V_WORKLOADS 5

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
    int version;  /* the blob's format version */
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

/* A count that must fit a field of `max`: anything larger is a corrupt blob. */
static uint64_t get_bounded(struct rbuf *r, uint64_t max)
{
    uint64_t v = get_u64(r);
    if (v > max)
        r->bad = 1;
    return v;
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

static int use_equal(const struct det_use *a, const struct det_use *b)
{
    return a->at == b->at && a->failed == b->failed && !strcmp(a->region, b->region) &&
           !strcmp(a->event_id, b->event_id) && !strcmp(a->action, b->action) && !strcmp(a->user_agent, b->user_agent);
}

/* Which parts of a candidate the encoding leaves out (they equal another part): 1 last use =
 * first use, 2 last user agent = first's, 4 earliest marked call = first use. The decoder
 * refuses a blob whose shape is not the one its content gives, so every blob that decodes
 * re-encodes to the same bytes. */
static unsigned cand_shape(const struct det_cand *c)
{
    unsigned shape = 0;
    if (use_equal(&c->last, &c->first))
        shape |= 1;
    if (strcmp(c->last.user_agent, c->first.user_agent) == 0)
        shape |= 2;
    if (c->marked_count && c->marked_at == c->first.at && !strcmp(c->marked_id, c->first.event_id) &&
        !strcmp(c->marked_region, c->first.region))
        shape |= 4;
    return shape;
}

static void put_issue(struct wbuf *w, const struct det_issue *i)
{
    put_i64(w, i->at);
    put_i64(w, i->expires);
    put_str(w, i->event_id, sizeof i->event_id);
    put_str(w, i->account, sizeof i->account);
    put_str(w, i->region, sizeof i->region);
    put_str(w, i->workload_id, sizeof i->workload_id);
    put_str(w, i->role_arn, sizeof i->role_arn);
    put_u64(w, i->kind);
    put_str(w, i->source_ip, sizeof i->source_ip);
}

static void get_issue(struct rbuf *r, struct det_issue *i)
{
    i->at = get_time(r);
    i->expires = get_time(r);
    get_str(r, i->event_id, sizeof i->event_id);
    get_str(r, i->account, sizeof i->account);
    get_str(r, i->region, sizeof i->region);
    get_str(r, i->workload_id, sizeof i->workload_id);
    get_str(r, i->role_arn, sizeof i->role_arn);
    if (r->version < CODEC_V_WORKLOADS) {
        i->kind = WL_LAMBDA;  /* version 4 kept Lambda's issuances only */
        return;
    }
    i->kind = (uint8_t)get_bounded(r, WL_KIND_COUNT - 1);
    if (i->kind == WL_NONE)
        r->bad = 1;
    get_str(r, i->source_ip, sizeof i->source_ip);
}

/* ---- encoding ------------------------------------------------------------------------------- */

/* The key's identity, context, runtime and issuances. */
static void put_key_head(struct wbuf *w, const struct det_key *k)
{
    put_str(w, k->akid, sizeof k->akid);
    put_byte(w, (uint8_t)(k->issued | k->marked << 1 | k->evicted_regions_truncated << 2 | k->marked_off_ec2 << 3 |
                          k->token_outside << 4));
    put_u64(w, (uint64_t)k->wl_ident | (uint64_t)k->wl_weak << 8 | (uint64_t)k->wl_markers << 16);
    if (!k->issued) {  /* an issued key's context is its first issuance's: not written twice */
        put_str(w, k->account, sizeof k->account);
        put_str(w, k->workload_id, sizeof k->workload_id);
        put_str(w, k->role_arn, sizeof k->role_arn);
    }
    put_str(w, k->runtime, sizeof k->runtime);
    put_i64(w, k->runtime_at);
    put_u64(w, k->runtime_id);
    put_u64(w, k->n_issues);
    for (size_t i = 0; i < k->n_issues && i < 2; i++)
        put_issue(w, &k->iss[i]);
}

/* The key's times, counts, what the address set could not keep, and its peak severity. */
static void put_key_tail(struct wbuf *w, const struct det_key *k)
{
    put_i64(w, k->expires);
    put_i64(w, k->session_created);
    put_i64(w, k->first_seen);
    put_i64(w, k->last_seen);
    put_u64(w, k->on_behalf_count);
    put_u64(w, k->evicted_prio);
    put_u64(w, k->evicted_count);
    put_u64(w, k->n_evicted_regions);
    for (size_t g = 0; g < k->n_evicted_regions; g++)
        put_str(w, k->evicted_regions[g], sizeof k->evicted_regions[g]);
    put_u64(w, k->peak_severity);
}

/* A candidate's uses: the common cases cost nothing: one call (last = first), one client (the
 * same user agent), the first call marked (marked = first). */
static void put_cand_uses(struct wbuf *w, const struct det_cand *c)
{
    unsigned shape = cand_shape(c);
    put_byte(w, (uint8_t)shape);
    put_use(w, &c->first);
    if (!(shape & 1)) {
        put_i64(w, c->last.at);
        put_str(w, c->last.region, sizeof c->last.region);
        put_str(w, c->last.event_id, sizeof c->last.event_id);
        put_str(w, c->last.action, sizeof c->last.action);
        if (!(shape & 2))
            put_str(w, c->last.user_agent, sizeof c->last.user_agent);
        put_byte(w, c->last.failed);
    }
    if (c->marked_count && !(shape & 4)) {
        put_i64(w, c->marked_at);
        put_str(w, c->marked_id, sizeof c->marked_id);
        put_str(w, c->marked_region, sizeof c->marked_region);
    }
}

static void put_cand(struct wbuf *w, const struct det_cand *c)
{
    put_str(w, c->ip, sizeof c->ip);
    put_str(w, c->vpce_account, sizeof c->vpce_account);
    put_u64(w, c->prio);
    put_u64(w, c->count);
    put_u64(w, c->ok_count);
    put_u64(w, c->exempt_count);
    put_u64(w, c->presigned_count);
    put_u64(w, c->marked_count);
    put_u64(w, c->flags);
    put_u64(w, c->cold_arns);
    if (c->cold_arns)
        put_str(w, c->cold_arn, sizeof c->cold_arn);
    put_cand_uses(w, c);
    put_byte(w, c->actions_truncated);
    put_u64(w, c->n_actions);
    for (size_t a = 0; a < c->n_actions; a++) {
        put_str(w, c->actions[a].name, sizeof c->actions[a].name);
        put_byte(w, c->actions[a].ok);
    }
    put_byte(w, c->regions_truncated);
    put_u64(w, c->n_regions);
    for (size_t g = 0; g < c->n_regions; g++)
        put_str(w, c->regions[g], sizeof c->regions[g]);
}

int det_encode(const struct det_key *k, uint8_t *buf, size_t cap)
{
    struct wbuf w = { buf, 0, cap, 0 };
    put_byte(&w, CODEC_MAGIC0);
    put_byte(&w, CODEC_MAGIC1);
    put_byte(&w, CODEC_VERSION);
    put_key_head(&w, k);
    put_key_tail(&w, k);
    put_u64(&w, k->n_cands);
    for (size_t i = 0; i < k->n_cands; i++)
        put_cand(&w, &k->cands[i]);
    return w.overflow ? -1 : (int)w.len;
}

/* ---- decoding: the mirror of encoding, refusing what det_encode never writes ------------------
 * A reader that meets a fault sets r->bad and the blob is refused at the end; the loops stop at
 * the first fault so a corrupt count costs no more reading. */

/* The magic and a version this build reads: another program's blob, or a layout refused on
 * purpose (see CODEC_VERSION_MIN), reads no further. */
static void get_header(struct rbuf *r)
{
    if (r->len < 3 || r->p[0] != CODEC_MAGIC0 || r->p[1] != CODEC_MAGIC1 || r->p[2] < CODEC_VERSION_MIN ||
        r->p[2] > CODEC_VERSION) {
        r->bad = 1;
        return;
    }
    r->version = r->p[2];
    r->pos = 3;
}

static void get_key_head(struct rbuf *r, struct det_key *k)
{
    get_str(r, k->akid, sizeof k->akid);
    uint64_t fl = get_bounded(r, r->version >= CODEC_V_WORKLOADS ? 31 : 7);
    k->issued = fl & 1;
    k->marked = (fl >> 1) & 1;
    k->evicted_regions_truncated = (fl >> 2) & 1;
    k->marked_off_ec2 = (fl >> 3) & 1;
    k->token_outside = (fl >> 4) & 1;
    if (r->version < CODEC_V_WORKLOADS)
        k->marked_off_ec2 = k->marked;  /* version 4 kept no ec2RoleDelivery: its marked calls had none */
    if (r->version >= CODEC_V_WORKLOADS) {
        uint64_t wl = get_bounded(r, (uint64_t)WL_MASK_ALL << 16 | WL_MASK_ALL << 8 | WL_MASK_ALL);
        k->wl_ident = (uint8_t)(wl & 0xff);
        k->wl_weak = (uint8_t)(wl >> 8 & 0xff);
        k->wl_markers = (uint8_t)(wl >> 16 & 0xff);
        if ((k->wl_ident | k->wl_weak | k->wl_markers) & ~WL_MASK_ALL)
            r->bad = 1;
    }
    if (!k->issued) {
        get_str(r, k->account, sizeof k->account);
        get_str(r, k->workload_id, sizeof k->workload_id);
        get_str(r, k->role_arn, sizeof k->role_arn);
    }
    get_str(r, k->runtime, sizeof k->runtime);
    k->runtime_at = get_time(r);
    k->runtime_id = get_u64(r);
    k->n_issues = (uint8_t)get_bounded(r, UINT8_MAX);
    if (!k->issued != !k->n_issues)
        r->bad = 1;
    for (size_t i = 0; i < k->n_issues && i < 2 && !r->bad; i++)
        get_issue(r, &k->iss[i]);
    if (k->issued) {
        memcpy(k->account, k->iss[0].account, sizeof k->account);
        memcpy(k->workload_id, k->iss[0].workload_id, sizeof k->workload_id);
        memcpy(k->role_arn, k->iss[0].role_arn, sizeof k->role_arn);
    }
}

static void get_key_tail(struct rbuf *r, struct det_key *k)
{
    k->expires = get_time(r);
    k->session_created = get_time(r);
    k->first_seen = get_time(r);
    k->last_seen = get_time(r);
    k->on_behalf_count = get_u32(r);
    k->evicted_prio = (uint8_t)get_bounded(r, DET_PRIO_FOREIGN_VPCE + 1);
    k->evicted_count = get_u32(r);
    k->n_evicted_regions = (uint8_t)get_bounded(r, DET_EVICTED_REGIONS_MAX);
    for (size_t g = 0; g < k->n_evicted_regions && !r->bad; g++)
        get_str(r, k->evicted_regions[g], sizeof k->evicted_regions[g]);
    k->peak_severity = (uint8_t)get_bounded(r, DET_SEV_CRITICAL);
}

static void get_cand_uses(struct rbuf *r, struct det_cand *c)
{
    uint64_t shape = get_bounded(r, 7);
    get_use(r, &c->first);
    if (shape & 1) {
        c->last = c->first;
    } else {
        c->last.at = get_time(r);
        get_str(r, c->last.region, sizeof c->last.region);
        get_str(r, c->last.event_id, sizeof c->last.event_id);
        get_str(r, c->last.action, sizeof c->last.action);
        if (shape & 2)
            memcpy(c->last.user_agent, c->first.user_agent, sizeof c->last.user_agent);
        else
            get_str(r, c->last.user_agent, sizeof c->last.user_agent);
        c->last.failed = get_bool(r);
    }
    if (c->marked_count && (shape & 4)) {
        c->marked_at = c->first.at;
        memcpy(c->marked_id, c->first.event_id, sizeof c->marked_id);
        memcpy(c->marked_region, c->first.region, sizeof c->marked_region);
    } else if (c->marked_count) {
        c->marked_at = get_time(r);
        get_str(r, c->marked_id, sizeof c->marked_id);
        get_str(r, c->marked_region, sizeof c->marked_region);
    }
    if (!r->bad && cand_shape(c) != shape)
        r->bad = 1;  /* not the canonical encoding of this content */
}

static void get_cand(struct rbuf *r, struct det_cand *c)
{
    get_str(r, c->ip, sizeof c->ip);
    get_str(r, c->vpce_account, sizeof c->vpce_account);
    c->prio = (uint8_t)get_bounded(r, DET_PRIO_FOREIGN_VPCE);
    c->count = get_u32(r);
    c->ok_count = get_u32(r);
    c->exempt_count = get_u32(r);
    c->presigned_count = get_u32(r);
    c->marked_count = get_u32(r);
    c->flags = (unsigned)get_bounded(r, UINT32_MAX);
    c->cold_arns = (uint8_t)get_bounded(r, 2);
    if (c->cold_arns)
        get_str(r, c->cold_arn, sizeof c->cold_arn);
    get_cand_uses(r, c);
    c->actions_truncated = get_bool(r);
    c->n_actions = (uint8_t)get_bounded(r, DET_CAND_ACTIONS_MAX);
    for (size_t a = 0; a < c->n_actions && !r->bad; a++) {
        get_str(r, c->actions[a].name, sizeof c->actions[a].name);
        c->actions[a].ok = get_bool(r);
    }
    c->regions_truncated = get_bool(r);
    c->n_regions = (uint8_t)get_bounded(r, DET_CAND_REGIONS_MAX);
    for (size_t g = 0; g < c->n_regions && !r->bad; g++)
        get_str(r, c->regions[g], sizeof c->regions[g]);
}

int det_decode(struct det_key *k, const uint8_t *buf, size_t len)
{
    struct rbuf r = { buf, len, 0, 0, 0 };
    det_key_init(k, "");  /* all but the address slots: each is cleared as it is read */
    get_header(&r);
    if (!r.bad) {
        get_key_head(&r, k);
        get_key_tail(&r, k);
        k->n_cands = (uint8_t)get_bounded(&r, DET_CANDS_MAX);
        for (size_t i = 0; i < k->n_cands && !r.bad; i++) {
            memset(&k->cands[i], 0, sizeof k->cands[i]);  /* the fields a blob may leave out are 0 */
            get_cand(&r, &k->cands[i]);
        }
        if (!r.bad && !det_key_ordered(k))
            r.bad = 1;  /* sets out of order or with a member twice: det_apply's searches rely on the order */
    }
    return r.bad || r.pos != len ? -1 : 0;  /* a blob with bytes past its end is not one det_encode wrote */
}
