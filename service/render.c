/* render.c — findings and key context as JSON.
 *
 * The documents are written straight into a growable buffer (cw_buf), with no document tree: the
 * finding's evidence is rendered for every commit that judges a finding, and building and dumping
 * a jansson tree for it was a third of a scan's instructions. The output is byte for byte what
 * jansson's json_dumps(JSON_COMPACT | JSON_ENSURE_ASCII) gave for the same tree, which
 * tests/test_render.c checks against a jansson renderer kept there as the oracle:
 *   - members in the order written, "," and ":" with no blanks;
 *   - strings escaped as jansson does: \" \\ \b \f \n \r \t, other control characters as \u00XX,
 *     every character above U+007F as \uXXXX (upper-case hex; a UTF-16 surrogate pair above
 *     U+FFFF); '/' and DEL as they are;
 *   - a string that is not well-formed UTF-8 (RFC 3629: no overlong form, no surrogate, nothing
 *     above U+10FFFF) is left out with its member name, or from its array, as jansson left out
 *     the NULL its json_string returned. Every string may come from a sender: nothing reaches the
 *     document unescaped. */
#include "render.h"

#include "cw.h"

#include <string.h>

/* The longest document: every string of it is a field of the key or of the verdict (an address at
 * most four times: its lists, its source and the first and last use), each byte escaped to at most
 * six (\u00XX), beside static texts (reasons, ATT&CK) well under 64 KiB. Only a bug could reach it. */
#define RND_DOC_MAX (4 * 6 * (sizeof(struct det_key) + sizeof(struct det_verdict)) + 65536)
#define RND_DOC_INITIAL 4096  /* a finding's evidence is 2-3 KB: most take one allocation */
#define RND_DEPTH_MAX 8    /* nesting of containers; the documents use 4 */
#define RND_INT_MAX 24     /* an int64_t in decimal: 19 digits and a sign */

/* ---- the writer ------------------------------------------------------------------------------ */

struct jw {
    struct cw_buf b;
    int rc;                /* the first failure (CW_ENOMEM, CW_ETOOBIG); later writes do nothing */
    unsigned depth;        /* open containers */
    unsigned filled;       /* bit d: the container at depth d has a member, so the next needs "," */
};

static void jw_init(struct jw *w)
{
    cw_buf_init(&w->b, RND_DOC_MAX);
    w->rc = 0;
    w->depth = 0;
    w->filled = 0;
}

/* Room for n more bytes and the final NUL at w->b.p + w->b.len, or NULL (w->rc set). The writers
 * ask once per member for the most it can take (a string's bytes escaped to at most six each) and
 * then write bytes directly: one check per member, not one call per byte or piece. */
static char *room(struct jw *w, size_t n)
{
    struct cw_buf *b = &w->b;
    if (w->rc)
        return NULL;
    if (n >= b->cap - b->len) {  /* also the first write: cap 0 */
        void *p = b->p;
        if (n > b->max || b->len > b->max - n)
            w->rc = CW_ETOOBIG;
        else  /* cw_buf's rule: the cap does not count the NUL */
            w->rc = cw_grow(&p, &b->cap, b->len + n + 1, 1, RND_DOC_INITIAL, b->max + 1);
        if (w->rc)
            return NULL;
        b->p = p;
    }
    return b->p + b->len;
}

static void put(struct jw *w, const char *s, size_t n)
{
    char *o = room(w, n);
    if (!o)
        return;
    memcpy(o, s, n);
    w->b.len += n;
}

/* The separator a new member or element needs and its name (key NULL: an array element), at o
 * with room for them; returns the end. Names are constants of this file: plain ASCII, as they are. */
static char *member_at(struct jw *w, char *o, const char *key, size_t key_len)
{
    unsigned bit = 1u << w->depth;
    if (w->filled & bit)
        *o++ = ',';
    w->filled |= bit;
    if (key) {
        *o++ = '"';
        memcpy(o, key, key_len);
        o += key_len;
        *o++ = '"';
        *o++ = ':';
    }
    return o;
}

#define MEMBER_ROOM 4  /* "," and the quotes and colon around a name */

/* A member whose value is the n bytes of val, as they are (null, true, a number, a container's
 * opening). */
static void member_raw(struct jw *w, const char *key, const char *val, size_t n)
{
    size_t key_len = key ? strlen(key) : 0;
    char *o = room(w, key_len + MEMBER_ROOM + n);
    if (!o)
        return;
    o = member_at(w, o, key, key_len);
    memcpy(o, val, n);
    w->b.len = (size_t)(o + n - w->b.p);
}

static void jw_open(struct jw *w, const char *key, char c)
{
    member_raw(w, key, &c, 1);
    if (w->depth + 1 < RND_DEPTH_MAX)
        w->depth++;
    else if (!w->rc)
        w->rc = CW_ETOOBIG;
    w->filled &= ~(1u << w->depth);
}

static void jw_close(struct jw *w, char c)
{
    put(w, &c, 1);
    if (w->depth)
        w->depth--;
}

static const char hex[] = "0123456789ABCDEF";

static char *u16_escape(char *o, unsigned u)
{
    o[0] = '\\';
    o[1] = 'u';
    o[2] = hex[(u >> 12) & 15];
    o[3] = hex[(u >> 8) & 15];
    o[4] = hex[(u >> 4) & 15];
    o[5] = hex[u & 15];
    return o + 6;
}

/* The code point of the UTF-8 sequence at s[0..n), n >= 1, and its length in *len; -1 when it is
 * not well-formed (a continuation or C0, C1, F5-FF lead byte, a missing continuation byte, an
 * overlong form, a surrogate, above U+10FFFF). */
static long utf8_next(const unsigned char *s, size_t n, size_t *len)
{
    unsigned char c = s[0];
    size_t need = c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
    if (!need || need > n)
        return -1;
    long cp = c & (need == 2 ? 0x1F : need == 3 ? 0x0F : 0x07);
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return -1;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return -1;
    *len = need;
    return cp;
}

/* One character that is not plain ASCII (s[0]), escaped at o; the end, or NULL when s does not
 * start with a UTF-8 character. *used: the bytes of s it took. */
static char *escape_one(char *o, const unsigned char *s, size_t n, size_t *used)
{
    static const char short_esc[] = "btn\0fr";  /* \b \t \n \f \r by code 8..13 (11 has none) */
    unsigned char c = s[0];
    *used = 1;
    if (c == '"' || c == '\\') {
        *o++ = '\\';
        *o++ = (char)c;
        return o;
    }
    if (c < 0x20) {
        if (c >= 8 && c <= 13 && short_esc[c - 8]) {
            *o++ = '\\';
            *o++ = short_esc[c - 8];
            return o;
        }
        return u16_escape(o, c);
    }
    long cp = utf8_next(s, n, used);
    if (cp < 0)
        return NULL;
    if (cp < 0x10000)
        return u16_escape(o, (unsigned)cp);
    cp -= 0x10000;
    o = u16_escape(o, 0xD800 | (unsigned)(cp >> 10));
    return u16_escape(o, 0xDC00 | (unsigned)(cp & 0x3FF));
}

/* Bytes written as they are in a JSON string: printable ASCII but the quote and the backslash (a
 * table: one load per byte on the hot loop, not four comparisons). */
static const unsigned char plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 10 */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* 20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* 30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* 40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,  /* 50 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* 60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* 70 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 80 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 90 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* A0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* B0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* C0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* D0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* E0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* F0 */
};

#define ESCAPE_MAX 6  /* bytes written per byte of a string at most: \u00XX for a control character */

/* Eight bytes at a time: does the word hold a byte that is not plain (below 0x20, '"', '\\', or
 * 0x80 and above)? The usual bit tricks (a byte equal to zero, less than n): they may flag a plain
 * word (a borrow past a flagged byte) but never pass one that is not; a flagged word is then
 * written byte by byte. Most strings are plain ASCII: this copies them a word per step. */
#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull
static int word_special(uint64_t w)
{
    uint64_t quote = w ^ (ONES * '"'), bslash = w ^ (ONES * '\\');
    uint64_t lt_space = (w - ONES * 0x20) & ~w;
    uint64_t eq_quote = (quote - ONES) & ~quote, eq_bslash = (bslash - ONES) & ~bslash;
    return ((lt_space | eq_quote | eq_bslash | w) & HIGHS) != 0;
}

/* A string member (key NULL: an array element); NULL or not UTF-8: nothing at all. */
static void jw_str(struct jw *w, const char *key, const char *str)
{
    if (!str)
        return;
    size_t n = strlen(str), key_len = key ? strlen(key) : 0;
    char *o = room(w, key_len + MEMBER_ROOM + 2 + ESCAPE_MAX * n);
    if (!o)
        return;
    unsigned filled = w->filled;
    o = member_at(w, o, key, key_len);
    *o++ = '"';
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        uint64_t word;
        if (n - i >= sizeof word) {
            memcpy(&word, s + i, sizeof word);
            if (!word_special(word)) {
                memcpy(o, &word, sizeof word);
                o += sizeof word;
                i += sizeof word;
                continue;
            }
        }
        if (plain[s[i]]) {
            *o++ = (char)s[i++];
            continue;
        }
        size_t used;
        if (!(o = escape_one(o, s + i, n - i, &used))) {
            w->filled = filled;  /* not UTF-8: the member goes, as if it never was */
            return;
        }
        i += used;
    }
    *o++ = '"';
    w->b.len = (size_t)(o - w->b.p);
}

static void jw_null(struct jw *w, const char *key)
{
    member_raw(w, key, "null", 4);
}

static void jw_str_or_null(struct jw *w, const char *key, const char *s)
{
    if (s && s[0])
        jw_str(w, key, s);
    else
        jw_null(w, key);
}

static void jw_bool(struct jw *w, const char *key, int b)
{
    if (b)
        member_raw(w, key, "true", 4);
    else
        member_raw(w, key, "false", 5);
}

static void jw_int(struct jw *w, const char *key, int64_t v)
{
    char d[RND_INT_MAX];
    size_t i = sizeof d;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        d[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        d[--i] = '-';
    member_raw(w, key, d + i, sizeof d - i);
}

/* A time in seconds as RFC 3339 (ASCII: written as it is), or null for 0 (never seen). */
static void jw_time_or_null(struct jw *w, const char *key, int64_t secs)
{
    if (!secs) {
        jw_null(w, key);
        return;
    }
    char t[CW_TIME_MAX + 2];
    cw_time_format(secs * 1000, 0, t + 1, CW_TIME_MAX);
    size_t n = strlen(t + 1);
    t[0] = '"';
    t[n + 1] = '"';
    member_raw(w, key, t, n + 2);
}

/* The document, malloc'd and NUL-terminated; NULL when a write failed. */
static char *jw_end(struct jw *w)
{
    if (room(w, 0))
        w->b.p[w->b.len] = '\0';
    if (w->rc) {
        cw_buf_free(&w->b);
        return NULL;
    }
    return w->b.p;
}

/* ---- the parts ------------------------------------------------------------------------------- */

static void use_json(struct jw *w, const char *key, const struct det_use *u, const char *ip)
{
    jw_open(w, key, '{');
    jw_time_or_null(w, "at", u->at);
    jw_str(w, "event_id", u->event_id);
    jw_str(w, "source_ip", ip);
    jw_str(w, "user_agent", u->user_agent);
    jw_str(w, "action", u->action);
    jw_str(w, "outcome", u->failed ? "failed" : "succeeded");
    jw_close(w, '}');
}

/* The addresses of candidates idx[0..n) of k. */
static void ips_json(struct jw *w, const char *key, const struct det_key *k, const uint8_t *idx, size_t n)
{
    jw_open(w, key, '[');
    for (size_t i = 0; i < n; i++)
        jw_str(w, NULL, k->cands[idx[i]].ip);
    jw_close(w, ']');
}

/* The second issuance record of a key (a real key has one), shown so an analyst sees both. */
static void conflicting_issuance(struct jw *w, const struct det_key *k)
{
    if (k->n_issues < 2) {
        jw_null(w, "conflicting_issuance");
        return;
    }
    const struct det_issue *i = &k->iss[1];
    jw_open(w, "conflicting_issuance", '{');
    jw_int(w, "records", k->n_issues);
    jw_str(w, "event_id", i->event_id);
    jw_time_or_null(w, "issued_at", i->at);
    jw_str_or_null(w, "account_id", i->account);
    jw_str_or_null(w, "region", i->region);
    jw_str(w, "kind", wl_kind_name((enum wl_kind)i->kind));
    jw_str_or_null(w, "workload_id", i->workload_id);
    jw_str_or_null(w, "function_name", i->kind == WL_LAMBDA ? i->workload_id : "");
    jw_str_or_null(w, "role_arn", i->role_arn);
    jw_close(w, '}');
}

/* Each outside address with its network class and tally. */
static void outside_sources(struct jw *w, const char *key, const struct det_key *k, const struct det_verdict *v)
{
    static const char *const why[] = { "outside_address", "copied_user_agent", "inside_aws", "foreign_vpc_endpoint",
                                       "other_address" };
    jw_open(w, key, '[');
    for (size_t i = 0; i < v->n_outside; i++) {
        const struct det_cand *c = &k->cands[v->outside[i]];
        jw_open(w, NULL, '{');
        jw_str(w, "ip", c->ip);
        jw_str(w, "network", v->outside_class[i]);
        jw_str(w, "why", why[v->outside_why[i]]);
        jw_int(w, "count", c->count);
        jw_int(w, "succeeded", c->ok_count);
        jw_time_or_null(w, "first_at", c->first.at);
        jw_time_or_null(w, "last_at", c->last.at);
        jw_str_or_null(w, "vpc_endpoint_account", c->vpce_account);
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

static void allowed_sources(struct jw *w, const struct det_key *k, const struct det_verdict *v)
{
    jw_open(w, "allowlisted_sources", '[');
    for (size_t i = 0; i < v->n_allowed; i++) {
        const struct det_cand *c = &k->cands[v->allowed[i]];
        jw_open(w, NULL, '{');
        jw_str(w, "ip", c->ip);
        jw_str(w, "network", v->allowed_class[i]);
        jw_int(w, "count", c->count);
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

/* The Lambda function's name: the workload id of a Lambda key, and of a key no workload claims yet
 * (its session name, as before workloads); null for the other workloads, whose ids are not
 * function names (workload.id has them). */
static const char *function_of(const struct det_key *k, const struct det_verdict *v)
{
    return v->kind == WL_LAMBDA || v->kind == WL_NONE ? k->workload_id : "";
}

/* "workload": {"kind": "ecs", "id": "d190d14a-..."}; kind null when no workload claims the key. */
static void workload_json(struct jw *w, const struct det_key *k, const struct det_verdict *v)
{
    jw_open(w, "workload", '{');
    if (v->kind == WL_NONE)
        jw_null(w, "kind");
    else
        jw_str(w, "kind", wl_kind_name(v->kind));
    jw_str_or_null(w, "id", k->workload_id);
    jw_close(w, '}');
}

/* ATT&CK (docs/detection.md): how the key is used, and how it was obtained. */
static void attack_json(struct jw *w, const struct det_verdict *v)
{
    /* Lambda keeps its wording; a task, an instance or a pod also serves its keys from a metadata
     * endpoint (IMDS, the ECS credential endpoint, EKS Pod Identity's agent) */
    enum { ALL = 0, LAMBDA_ONLY, OTHERS, IMDS };
    static const struct {
        const char *id, *name;
        int who;
    } attack[] = {
        { "T1078.004", "Valid Accounts: Cloud Accounts", ALL },
        { "T1550.001", "Use Alternate Authentication Material: Application Access Token", ALL },
        { "T1552", "Unsecured Credentials (from the function's environment)", LAMBDA_ONLY },
        { "T1552", "Unsecured Credentials (from the workload's environment)", OTHERS },
        { "T1552.005", "Unsecured Credentials: Cloud Instance Metadata API", IMDS },
    };
    int lam = v->kind == WL_LAMBDA || v->kind == WL_NONE;
    int imds = v->kind == WL_EC2 || v->kind == WL_ECS || v->kind == WL_EKS;
    jw_open(w, "attack", '[');
    for (size_t i = 0; i < sizeof attack / sizeof attack[0]; i++) {
        int who = attack[i].who;
        if ((who == LAMBDA_ONLY && !lam) || (who == OTHERS && lam) || (who == IMDS && !imds))
            continue;
        jw_open(w, NULL, '{');
        jw_str(w, "id", attack[i].id);
        jw_str(w, "name", attack[i].name);
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

/* The union of actions over the outside addresses, sorted and unique. */
static void outside_actions(struct jw *w, const struct det_key *k, const struct det_verdict *v)
{
    jw_open(w, "outside_actions", '[');
    const char *prev = NULL;
    for (;;) {
        const char *best = NULL;
        for (size_t i = 0; i < v->n_outside; i++) {
            const struct det_cand *c = &k->cands[v->outside[i]];
            for (size_t a = 0; a < c->n_actions; a++) {
                const char *n = c->actions[a].name;
                if ((!prev || strcmp(n, prev) > 0) && (!best || strcmp(n, best) < 0))
                    best = n;
            }
        }
        if (!best)
            break;
        jw_str(w, NULL, best);
        prev = best;
    }
    jw_close(w, ']');
}

static void reasons_json(struct jw *w, const struct det_verdict *v)
{
    jw_open(w, "reasons", '[');
    for (unsigned i = 0; i < DET_R_COUNT; i++) {
        unsigned bit = 1u << i;
        if (!(v->reasons & bit))
            continue;
        jw_open(w, NULL, '{');
        jw_str(w, "code", det_reason_code(bit));
        jw_str(w, "text", det_reason_text_for(bit, v->kind));
        jw_close(w, '}');
    }
    jw_close(w, ']');
}

static void outside_uses(struct jw *w, const struct det_verdict *v)
{
    if (v->first_use)
        use_json(w, "first_outside_use", v->first_use, v->first_cand->ip);
    else
        jw_null(w, "first_outside_use");
    if (v->last_use)
        use_json(w, "last_outside_use", v->last_use, v->last_cand->ip);
    else
        jw_null(w, "last_outside_use");
}

char *rnd_evidence(const struct det_key *k, const struct det_verdict *v, const char *finding_id)
{
    struct jw w;
    jw_init(&w);
    jw_open(&w, NULL, '{');
    jw_str(&w, "id", finding_id);
    jw_str(&w, "access_key_id", k->akid);
    jw_str_or_null(&w, "account_id", k->account);
    jw_str_or_null(&w, "region", v->region);
    jw_str_or_null(&w, "function_name", function_of(k, v));
    workload_json(&w, k, v);
    jw_str_or_null(&w, "role_arn", k->role_arn);
    jw_str_or_null(&w, "runtime", k->runtime);
    jw_str(&w, "severity", det_severity_name(v->severity));
    jw_bool(&w, "explained", v->explained);
    jw_time_or_null(&w, "first_outside_at", v->outside_first);
    jw_time_or_null(&w, "last_outside_at", v->outside_last);
    jw_int(&w, "outside_count", v->outside_count);
    ips_json(&w, "outside_source_ips", k, v->outside, v->n_outside);
    outside_sources(&w, "outside_sources", k, v);
    outside_actions(&w, k, v);
    outside_uses(&w, v);
    ips_json(&w, "inside_source_ips", k, v->inside, v->n_inside);
    jw_int(&w, "inside_count", v->inside_count);
    jw_int(&w, "evicted_count", k->evicted_count);
    jw_str_or_null(&w, "issued_by_event_id", k->issued ? k->iss[0].event_id : "");
    jw_time_or_null(&w, "issued_at", k->issued ? k->iss[0].at : 0);
    jw_time_or_null(&w, "expires_at", k->issued ? k->iss[0].expires : 0);
    conflicting_issuance(&w, k);
    reasons_json(&w, v);
    attack_json(&w, v);
    jw_close(&w, '}');
    return jw_end(&w);
}

char *rnd_finding(const struct store_finding *f)
{
    /* The evidence is a compact JSON object this module wrote; the status fields are spliced in
     * before its closing brace instead of parsing and re-serialising it (that was a quarter of a
     * scan's time). Evidence that is not an object gives NULL: the API shows such a record with
     * its id and triage fields only (api_handlers.c, finding_doc). */
    const char *ev = f->evidence_json;
    size_t n = ev ? strlen(ev) : 0;
    if (n < 2 || ev[0] != '{' || ev[n - 1] != '}')
        return NULL;
    char created[CW_TIME_MAX], updated[CW_TIME_MAX];
    cw_time_format(f->created_ms, 1, created, sizeof created);
    cw_time_format(f->updated_ms, 1, updated, sizeof updated);
    struct jw w;
    jw_init(&w);
    put(&w, ev, n - 1);  /* inside the evidence's braces: its members come first */
    w.depth = 1;
    w.filled = n > 2 ? 2u : 0u;
    jw_str(&w, "status", store_status_name(f->status));
    size_t before = w.b.len;
    if (f->note)
        jw_str(&w, "note", f->note);
    else
        jw_null(&w, "note");
    if (w.b.len == before && !w.rc) {  /* a note that is not UTF-8 (the API refuses those) */
        cw_buf_free(&w.b);
        return NULL;
    }
    jw_str(&w, "created_at", created);
    jw_str(&w, "updated_at", updated);
    jw_close(&w, '}');
    return jw_end(&w);
}

/* "inside", "outside", "unattributed", "not_judged": a count, the first and last times, the
 * addresses (candidates idx[0..n) of k), and (sources) each outside address's tally. */
struct tally {
    uint32_t count;
    int64_t first, last;
    const uint8_t *idx;
    size_t n;
    int sources;          /* 1: "sources" of v's outside addresses; -1: "sources": []; 0: none */
};

static void tally_json(struct jw *w, const char *key, const struct det_key *k, const struct det_verdict *v,
                       const struct tally *t)
{
    jw_open(w, key, '{');
    jw_int(w, "count", t->count);
    jw_time_or_null(w, "first_at", t->first);
    jw_time_or_null(w, "last_at", t->last);
    ips_json(w, "source_ips", k, t->idx, t->n);
    if (t->sources > 0)
        outside_sources(w, "sources", k, v);
    else if (t->sources < 0)
        ips_json(w, "sources", k, NULL, 0);
    jw_close(w, '}');
}

/* "outside" and "unattributed": uses of a key with no workload evidence are not judged (yet), so
 * they are shown apart as unattributed, and "outside" is then empty (and the other way round). */
static void outside_tallies(struct jw *w, const struct det_key *k, const struct det_verdict *v)
{
    struct tally out = { v->outside_count, v->outside_first, v->outside_last, v->outside, v->n_outside, 1 };
    struct tally none = { 0, 0, 0, NULL, 0, -1 };
    tally_json(w, "outside", k, v, v->workload ? &out : &none);
    tally_json(w, "unattributed", k, v, v->workload ? &none : &out);
}

char *rnd_key_context(const struct det_key *k, const struct det_verdict *v, const char *finding_id)
{
    struct jw w;
    jw_init(&w);
    jw_open(&w, NULL, '{');
    jw_str(&w, "access_key_id", k->akid);
    jw_bool(&w, "lambda", v->lambda);
    workload_json(&w, k, v);
    jw_str(&w, "verdict_rules", v->mode == WL_VERDICT_FULL ? "full" : v->mode == WL_VERDICT_OUTSIDE_AWS ? "outside_aws"
                                                                                                       : "none");
    jw_bool(&w, "issued", k->issued);
    jw_bool(&w, "runtime_marker", k->marked);
    jw_str_or_null(&w, "function_name", function_of(k, v));
    jw_str_or_null(&w, "role_arn", k->role_arn);
    jw_str_or_null(&w, "account_id", k->account);
    jw_str_or_null(&w, "region", v->region);
    jw_str_or_null(&w, "issued_by_event_id", k->issued ? k->iss[0].event_id : "");
    jw_time_or_null(&w, "expires_at", k->issued ? k->iss[0].expires : 0);
    conflicting_issuance(&w, k);
    jw_int(&w, "evicted_count", k->evicted_count);
    struct tally inside = { v->inside_count, v->inside_first, v->inside_last, v->inside, v->n_inside, 0 };
    tally_json(&w, "inside", k, v, &inside);
    outside_tallies(&w, k, v);
    /* outside-AWS rules: AWS, private and unknown addresses, which nothing tells from the workload's */
    struct tally unjudged = { v->unjudged_count, 0, 0, v->unjudged, v->n_unjudged, 0 };
    tally_json(&w, "not_judged", k, v, &unjudged);
    jw_int(&w, "on_behalf_count", k->on_behalf_count);
    jw_int(&w, "allowlisted_count", v->allowlisted_count);
    allowed_sources(&w, k, v);
    jw_str_or_null(&w, "finding_id", finding_id);
    jw_close(&w, '}');
    return jw_end(&w);
}
/* The first occurrence of the tag is the field itself: rnd_evidence writes "severity" before any
 * string a sender chose except the key's context, and every string is JSON-escaped, so a quote
 * inside a chosen string is written \" and never completes the tag. */
int rnd_severity_of(const char *json)
{
    static const char tag[] = "\"severity\":\"";
    const char *p = json ? strstr(json, tag) : NULL;
    if (!p)
        return -1;
    p += sizeof tag - 1;
    const char *q = strchr(p, '"');
    char name[16];
    if (!q || (size_t)(q - p) >= sizeof name)
        return -1;
    memcpy(name, p, (size_t)(q - p));
    name[q - p] = 0;
    return det_severity_parse(name);
}
