/* decode.c — CloudTrail bytes to ev_event, with yajl's event callbacks and zlib.
 *
 * Why callbacks and not a DOM: a DOM allocates every node of a ~1.6 KB record to read a dozen
 * fields (jansson: ~22 k records/s here). The callbacks below walk a small static trie of the
 * paths the detector reads; any other subtree is skipped by depth counting, with no allocation.
 *
 * Shape of the input is found while parsing: a "record-capable" object (the root object, an
 * element of a root array or of a root "Records" array) is a bare record, an EventBridge wrapper
 * (its "detail" is the record) or a CloudTrail file (its "Records" holds the records). Wrapper
 * keys that only look-alikes have (S3/SNS/SQS, digests) make the input refused.
 *
 * What a record's fields mean is classify.c's: the callbacks capture them in a cls_rec and hand
 * it over when the record ends; classify.c knows nothing of yajl and never calls back here.
 */
#include "decode.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>
#include <zlib.h>

#include "classify.h"

#define DEC_INFLATE_CHUNK (64u * 1024u)  /* inflate output per step */
#define DEC_RATIO_SLACK (1u << 20)       /* small inputs may exceed the ratio by this many bytes */
#define DEC_WRAP_MAX 64                  /* wrapper string fields kept (detail-type, Type) */
#define DEC_REC_ERROR_MAX 128            /* a parse error of one record, naming its field */

/* ---- the paths read, as a trie over object keys ---------------------------------------- */

/* Interior nodes of the record trie. */
enum node {
    N_SKIP = 0, N_REC, N_UI, N_UI_SC, N_UI_SC_ISSUER, N_UI_SC_ATTR, N_RP, N_RP_ENC, N_RE, N_RE_CRED,
    N_AED, N_COUNT
};

/* Keys of a record-capable object that make it a wrapper (or a look-alike to refuse), not a record.
 * No record field is named as one of them. */
enum wkey { W_NONE = 0, W_RECORDS, W_DETAIL, W_DETAIL_TYPE, W_TYPE, W_MESSAGE, W_SNS, W_BODY, W_DIGEST };

/* Where a key leads from a node: a child interior node, a leaf field, a wrapper key (from N_REC
 * only, and only heeded in a record-capable object), or nothing (a key nobody reads). */
struct edge {
    unsigned char node;   /* child interior node, or N_SKIP */
    unsigned char field;  /* leaf field (enum cls_field), or CLS_F_NONE */
    unsigned char wrap;   /* enum wkey, or W_NONE */
};

/* Each node's path, for messages. */
static const char *const node_path[N_COUNT] = {
    [N_SKIP] = "", [N_REC] = "record", [N_UI] = "userIdentity", [N_UI_SC] = "userIdentity.sessionContext",
    [N_UI_SC_ISSUER] = "userIdentity.sessionContext.sessionIssuer",
    [N_UI_SC_ATTR] = "userIdentity.sessionContext.attributes", [N_RP] = "requestParameters",
    [N_RP_ENC] = "requestParameters.encryptionContext", [N_RE] = "responseElements",
    [N_RE_CRED] = "responseElements.credentials", [N_AED] = "additionalEventData",
};

/* The 8 or 4 bytes at p, whatever their alignment (a memcpy of constant size is one load, and of
 * a string literal a constant). */
static inline uint64_t word8(const void *p)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

static inline uint32_t word4(const void *p)
{
    uint32_t w;
    memcpy(&w, p, sizeof w);
    return w;
}

/* Is k (len bytes) the key s (n bytes)? By words, the last one overlapping the one before; a
 * plain memcmp of a constant length becomes word compares too, but only in the blocks the
 * compiler deems hot: in the others it stays a call (seen at the sixth key of one length). */
static inline __attribute__((always_inline)) int key_is(const unsigned char *k, size_t len, const char *s,
                                                         size_t n)
{
    if (len != n)
        return 0;
    if (n < 4) {
        for (size_t i = 0; i < n; i++)
            if (k[i] != (unsigned char)s[i])
                return 0;
        return 1;
    }
    if (n < 8)
        return word4(k) == word4(s) && word4(k + n - 4) == word4(s + n - 4);
    for (size_t i = 0; i + 8 < n; i += 8)
        if (word8(k + i) != word8(s + i))
            return 0;
    return word8(k + n - 8) == word8(s + n - 8);
}

/* The edges are code, not a table: every key of every record comes to cb_map_key, most of them
 * keys nobody reads, and a scan of a node's edges compared each key with every edge (17 at the
 * record: a tenth of the decoder's instructions). A switch on the length, then compares with
 * constant strings (key_is: a word compare or two each), tell a key in a few instructions. Each
 * compare checks the length too, so a key written under the wrong case can only never match
 * (the tests would see it), never match wrongly. */
#define LEAF(s, f)                                                                                \
    do {                                                                                          \
        if (key_is(k, len, s, sizeof(s) - 1))                                                     \
            return (struct edge){ N_SKIP, f, W_NONE };                                            \
    } while (0)
#define NODE(s, n)                                                                                \
    do {                                                                                          \
        if (key_is(k, len, s, sizeof(s) - 1))                                                     \
            return (struct edge){ n, CLS_F_NONE, W_NONE };                                        \
    } while (0)
#define WRAP(s, w)                                                                                \
    do {                                                                                          \
        if (key_is(k, len, s, sizeof(s) - 1))                                                     \
            return (struct edge){ N_SKIP, CLS_F_NONE, w };                                        \
    } while (0)
#define NO_EDGE ((struct edge){ N_SKIP, CLS_F_NONE, W_NONE })

/* The record's own keys, and the wrapper keys: every key of a record-capable object comes here,
 * one switch for both. */
static struct edge rec_edge(const unsigned char *k, size_t len)
{
    switch (len) {
    case 3: WRAP("Sns", W_SNS); break;
    case 4:
        WRAP("Type", W_TYPE);
        WRAP("body", W_BODY);
        break;
    case 6: WRAP("detail", W_DETAIL); break;
    case 7:
        LEAF("eventID", CLS_F_EVENT_ID);
        WRAP("Records", W_RECORDS);
        WRAP("Message", W_MESSAGE);
        break;
    case 8: WRAP("logFiles", W_DIGEST); break;
    case 9:
        LEAF("eventTime", CLS_F_EVENT_TIME);
        LEAF("eventName", CLS_F_EVENT_NAME);
        LEAF("awsRegion", CLS_F_REGION);
        LEAF("userAgent", CLS_F_USER_AGENT);
        LEAF("errorCode", CLS_F_ERROR_CODE);
        LEAF("eventType", CLS_F_EVENT_TYPE);
        break;
    case 11:
        LEAF("eventSource", CLS_F_EVENT_SOURCE);
        WRAP("detail-type", W_DETAIL_TYPE);
        break;
    case 12: NODE("userIdentity", N_UI); break;
    case 13:
        LEAF("eventCategory", CLS_F_EVENT_CATEGORY);
        LEAF("vpcEndpointId", CLS_F_VPCE_ID);
        break;
    case 15:
        LEAF("sourceIPAddress", CLS_F_SOURCE_IP);
        WRAP("digestStartTime", W_DIGEST);
        break;
    case 16: NODE("responseElements", N_RE); break;
    case 17: NODE("requestParameters", N_RP); break;
    case 18: LEAF("recipientAccountId", CLS_F_RECIPIENT); break;
    case 19: NODE("additionalEventData", N_AED); break;
    case 20: LEAF("vpcEndpointAccountId", CLS_F_VPCE_ACCOUNT); break;
    case 26: WRAP("digestPublicKeyFingerprint", W_DIGEST); break;
    default: break;
    }
    return NO_EDGE;
}

/* userIdentity's keys. */
static struct edge ui_edge(const unsigned char *k, size_t len)
{
    switch (len) {
    case 3: LEAF("arn", CLS_F_UI_ARN); break;
    case 4: LEAF("type", CLS_F_UI_TYPE); break;
    case 8: LEAF("userName", CLS_F_UI_USER_NAME); break;
    case 9:
        LEAF("accountId", CLS_F_UI_ACCOUNT);
        LEAF("invokedBy", CLS_F_UI_INVOKED_BY);
        break;
    case 11: LEAF("accessKeyId", CLS_F_UI_AKID); break;
    case 14: NODE("sessionContext", N_UI_SC); break;
    case 16: LEAF("identityProvider", CLS_F_UI_PROVIDER); break;
    default: break;
    }
    return NO_EDGE;
}

/* Where key k leads from interior node n. The smaller nodes list their few keys. */
static struct edge trie_edge(int n, const unsigned char *k, size_t len)
{
    if (n == N_REC)  /* most keys read: a predicted branch before the jump table */
        return rec_edge(k, len);
    switch (n) {
    case N_UI: return ui_edge(k, len);
    case N_UI_SC:
        NODE("sessionIssuer", N_UI_SC_ISSUER);
        NODE("attributes", N_UI_SC_ATTR);
        LEAF("ec2RoleDelivery", CLS_F_UI_EC2_DELIVERY);
        break;
    case N_UI_SC_ISSUER: LEAF("arn", CLS_F_UI_ISSUER_ARN); break;
    case N_UI_SC_ATTR: LEAF("creationDate", CLS_F_UI_CREATED); break;
    case N_RP:
        LEAF("roleArn", CLS_F_RP_ROLE_ARN);
        LEAF("roleSessionName", CLS_F_RP_SESSION);
        NODE("encryptionContext", N_RP_ENC);
        break;
    case N_RP_ENC: LEAF("aws:lambda:FunctionArn", CLS_F_RP_FUNCTION_ARN); break;
    case N_RE:
        NODE("credentials", N_RE_CRED);
        LEAF("subjectFromWebIdentityToken", CLS_F_RE_SUBJECT);
        break;
    case N_RE_CRED:
        LEAF("accessKeyId", CLS_F_RE_AKID);
        LEAF("expiration", CLS_F_RE_EXPIRATION);
        break;
    case N_AED: LEAF("AuthenticationMethod", CLS_F_AED_AUTH); break;
    default: break;
    }
    return NO_EDGE;
}
#undef LEAF
#undef NODE
#undef WRAP
#undef NO_EDGE

/* ---- decoder state ------------------------------------------------------------------------- */

enum role {
    R_SKIP = 0,     /* a subtree nobody reads */
    R_RC,           /* record-capable object */
    R_REC,          /* an object inside the record (node tells which) */
    R_ROOT_ARRAY,   /* array at the root: elements are record-capable */
    R_RECORDS,      /* "Records" array: elements are record-capable */
};

struct frame {
    unsigned char is_map;
    unsigned char role;
    unsigned char node;
    unsigned char rc_level; /* for R_RC: 0 root, 1 nested */
};

enum pending { P_NONE = 0, P_FIELD, P_NODE, P_WRAP };

struct scratch {
    struct cls_rec rec;         /* the fields of the current record; rec.error points at error_buf */
    char error_buf[DEC_REC_ERROR_MAX];
    char why[CLS_WHY_MAX];      /* cls_event's reason, when it builds one */
    unsigned wrap;              /* bit per enum wkey seen */
    char detail_type[DEC_WRAP_MAX];
    char type[DEC_WRAP_MAX];
};

struct dec {
    struct dec_sink sink;
    struct dec_limits lim;
    struct dec_stats st;
    char msg[DEC_MSG_MAX];
    int err;                    /* sticky error */
    yajl_handle y;
    /* gzip */
    int mode;                   /* 0 undecided, 1 plain, 2 gzip */
    unsigned char magic[2];
    size_t n_magic;
    z_stream z;
    int z_init;
    int z_ended;                /* the last gzip member ended; only trailing zeros allowed */
    unsigned char *zbuf;
    /* parse */
    size_t json_before;         /* JSON bytes fed to yajl before the current chunk */
    uintptr_t in_lo, in_hi;     /* the chunk yajl_parse is given: [in_lo, in_hi) (has_nul) */
    int depth;
    struct frame stack[DEC_MAX_DEPTH];
    int pending;
    int pending_field;
    int pending_node;
    int pending_wrap;
    int root_container;         /* the current root value had Records */
    size_t roots;               /* root values seen */
    struct scratch sc;          /* last: dec_new zeroes what comes before it */
};

__attribute__((format(printf, 3, 4))) static void set_msg(struct dec *d, int err, const char *fmt, ...)
{
    if (d->err)
        return;
    d->err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
}

static void rec_fail(struct dec *d, const char *fmt, const char *what)
{
    if (d->sc.rec.error)
        return;
    snprintf(d->sc.error_buf, sizeof d->sc.error_buf, fmt, what);
    d->sc.rec.error = d->sc.error_buf;
}

static void scratch_reset(struct scratch *sc)
{
    memset(sc->rec.set, 0, sizeof sc->rec.set);
    memset(sc->rec.toolong, 0, sizeof sc->rec.toolong);
    sc->rec.error = NULL;
    sc->rec.detail_type = NULL;
    sc->wrap = 0;
    sc->detail_type[0] = 0;
    sc->type[0] = 0;
}

static const char *sval(const struct scratch *sc, enum cls_field f)
{
    return sc->rec.set[f] ? sc->rec.val[f] : NULL;
}

/* ---- records to the sink --------------------------------------------------------------------- */

/* Counts a record and gives its index; refuses the input past max_records. */
static int next_record(struct dec *d, size_t *index)
{
    if (d->st.records >= d->lim.max_records) {
        set_msg(d, CW_ETOOBIG, "more than %zu records in one input", d->lim.max_records);
        return 0;
    }
    *index = d->st.records++;
    return 1;
}

/* Hands a record to the sink, as a skip when why is set. Returns 0 when the consumer stops. */
static int deliver(struct dec *d, size_t index, const struct ev_event *ev, const char *why)
{
    int rc;
    if (why) {
        d->st.skipped++;
        rc = d->sink.skip ? d->sink.skip(d->sink.ud, index, why) : 0;
    } else {
        d->st.events++;
        rc = d->sink.event ? d->sink.event(d->sink.ud, index, ev) : 0;
    }
    if (rc) {
        set_msg(d, CW_EABORT, "stopped by the consumer");
        return 0;
    }
    return 1;
}

/* Refuses the input when the ending record-capable object is a look-alike or no record at all. */
static int refuse_shape(struct dec *d, int level)
{
    const struct scratch *sc = &d->sc;
    if (sc->wrap & (1u << W_DIGEST)) {
        set_msg(d, CW_EREFUSED, "%s", DEC_DIGEST_MSG);
        return 1;
    }
    if ((sc->wrap & (1u << W_SNS)) || ((sc->wrap & (1u << W_MESSAGE)) && strcmp(sc->type, "Notification") == 0)) {
        set_msg(d, CW_EREFUSED, "an SNS notification wrapper: send the CloudTrail record or file it carries");
        return 1;
    }
    const char *src = sval(sc, CLS_F_EVENT_SOURCE);
    if (src && strncmp(src, "aws:", 4) == 0) {
        if (strcmp(src, "aws:s3") == 0)
            set_msg(d, CW_EREFUSED, "an S3 event notification (eventSource aws:s3), not CloudTrail: "
                                    "send the log file the notification points to");
        else
            set_msg(d, CW_EREFUSED, "a %.40s event wrapper, not a CloudTrail record: send the record it carries",
                    src);
        return 1;
    }
    if ((sc->wrap & (1u << W_BODY)) && !sval(sc, CLS_F_EVENT_NAME)) {
        set_msg(d, CW_EREFUSED, "an SQS message wrapper: send the CloudTrail record or file it carries");
        return 1;
    }
    /* A lone root object with nothing of a record and no EventBridge detail is an unknown shape:
     * refused, not counted as one skipped record (the sender must learn it sends the wrong thing). */
    if (level == 0 && !(sc->wrap & (1u << W_DETAIL)) && !sc->rec.set[CLS_F_EVENT_NAME] &&
        !sc->rec.set[CLS_F_EVENT_SOURCE] && !sc->rec.set[CLS_F_EVENT_TIME] && !sc->rec.set[CLS_F_EVENT_ID]) {
        set_msg(d, CW_EREFUSED, "no CloudTrail records found (expected Records, an EventBridge event or a record)");
        return 1;
    }
    return 0;
}

/* Ends a record-capable object: emits its record, or refuses the input for a look-alike. */
static int finish_rc(struct dec *d, int level)
{
    struct scratch *sc = &d->sc;
    if (level == 0 && d->root_container)
        return 1;  /* a CloudTrail file: its records were emitted one by one */
    size_t index;
    if (sc->wrap & (1u << W_RECORDS))  /* a record like any other, held to max_records like any other */
        return next_record(d, &index) && deliver(d, index, NULL, "a record may not hold Records");
    if (refuse_shape(d, level))
        return 0;
    if (!next_record(d, &index))
        return 0;
    if ((sc->wrap & (1u << W_DETAIL)) && sc->detail_type[0])
        sc->rec.detail_type = sc->detail_type;
    struct ev_event ev;
    return deliver(d, index, &ev, cls_event(&sc->rec, &ev, sc->why));
}

/* ---- yajl callbacks ---------------------------------------------------------------------------- */

static int push(struct dec *d, int is_map, int role, int node, int rc_level)
{
    if (d->depth >= DEC_MAX_DEPTH) {
        set_msg(d, CW_EDEPTH, "JSON nested deeper than %d levels", DEC_MAX_DEPTH);
        return 0;
    }
    struct frame *f = &d->stack[d->depth++];
    f->is_map = (unsigned char)is_map;
    f->role = (unsigned char)role;
    f->node = (unsigned char)node;
    f->rc_level = (unsigned char)rc_level;
    return 1;
}

/* Does a string yajl hands over hold a NUL? yajl hands a string without escapes as the input's
 * own bytes, which its lexer has already refused to hold any control character (0x00 included,
 * whatever yajl_dont_validate_strings says): only a string it decoded (a \u0000) or joined across
 * two chunks lies elsewhere, and only that one needs the scan. Saves a memchr call per value.
 * This rests on how yajl 2.1.0 (Debian 12's libyajl2) is written, not on what it documents; a
 * yajl that let a raw NUL through would fail test_decode's raw-NUL case before a key id could be
 * cut short by one here (RFC 8259 requires control characters escaped, so none should). */
static int has_nul(const struct dec *d, const unsigned char *s, size_t len)
{
    uintptr_t p = (uintptr_t)s;
    if (p >= d->in_lo && p <= d->in_hi && len <= d->in_hi - p)
        return 0;
    return memchr(s, 0, len) != NULL;
}

/* A string value of the announced field: kept (cut, or marked too long, at the field's bound). */
static void store_string(struct dec *d, enum cls_field f, const unsigned char *s, size_t len)
{
    struct cls_rec *r = &d->sc.rec;
    const struct cls_field_bound *b = &cls_field_bounds[f];
    if (len > b->max && !b->cuttable) {
        /* judged by cls_event: a field is only an error where the detector reads it
         * (userIdentity.accountId is "ANONYMOUS_PRINCIPAL" on anonymous S3 data events) */
        r->toolong[f] = 1;
    } else if (has_nul(d, s, len)) {
        rec_fail(d, "%s contains a NUL character", cls_field_name(f));
    } else {
        size_t n = len > b->max ? b->max : len;
        memcpy(r->val[f], s, n);
        r->val[f][n] = 0;
        r->len[f] = (unsigned short)n;
        r->set[f] = 1;
    }
}

/* A value of the announced field: a string is kept; null is as if absent; any other type fails
 * the record. */
static void store_field(struct dec *d, enum cls_field f, char kind, const unsigned char *s, size_t len)
{
    if (kind == 's')
        store_string(d, f, s, len);
    else if (kind != 'n')
        rec_fail(d, "%s must be a string", cls_field_name(f));
}

/* A scalar or container arrives where a record field or node was announced. kind: 's' string,
 * 'n' null, 'm' map, 'a' array, 'o' other scalar. Stores a string field's value, or fails the
 * record (or refuses the input) when the value has the wrong type; the caller opens any frame. */
static void value_pending(struct dec *d, char kind, const unsigned char *s, size_t len)
{
    struct scratch *sc = &d->sc;
    if (d->pending == P_FIELD) {
        store_field(d, (enum cls_field)d->pending_field, kind, s, len);  /* all of it: cb_string skips here */
    } else if (d->pending == P_NODE) {
        if (kind != 'm' && kind != 'n')
            rec_fail(d, "%s must be an object", node_path[d->pending_node]);
    } else if (d->pending == P_WRAP) {
        int w = d->pending_wrap;
        if (kind == 's' && (w == W_DETAIL_TYPE || w == W_TYPE)) {
            /* kept as C strings and compared with strcmp: "Notification\u0000x" must not read as
             * "Notification", so a NUL fails the record as it does in a field */
            if (has_nul(d, s, len)) {
                rec_fail(d, "%s contains a NUL character", w == W_DETAIL_TYPE ? "detail-type" : "Type");
            } else if (len < DEC_WRAP_MAX) {
                char *dst = w == W_DETAIL_TYPE ? sc->detail_type : sc->type;
                memcpy(dst, s, len);
                dst[len] = 0;
            }
        }
        if (w == W_DETAIL && kind != 'm')
            rec_fail(d, "detail must be an object%s", "");
        if (w == W_RECORDS && kind != 'a') {
            if (d->depth == 1)  /* a CloudTrail file whose Records is not a list: nothing to count */
                set_msg(d, CW_EREFUSED, "Records must be an array of CloudTrail records");
            else
                rec_fail(d, "Records must be an array%s", "");
        }
    }
}

/* Called for every value: handles the announced key and the element-of-array case. A key is
 * announced only in a map, so the announced value is told first, by one test. */
static int on_value(struct dec *d, char kind, const unsigned char *s, size_t len)
{
    if (d->pending != P_NONE) {
        value_pending(d, kind, s, len);
        return d->err ? 0 : 1;  /* a refusal of the whole input stops the parse */
    }
    if (d->depth == 0) {
        d->roots++;
        if (kind != 'm' && kind != 'a') {
            set_msg(d, CW_EREFUSED, "expected a JSON object or array at the top level");
            return 0;
        }
        return 1;
    }
    struct frame *top = &d->stack[d->depth - 1];
    if (!top->is_map) {
        if ((top->role == R_ROOT_ARRAY || top->role == R_RECORDS) && kind != 'm') {
            /* an element that cannot be a record */
            size_t index;
            if (!next_record(d, &index) || !deliver(d, index, NULL, "record is not a JSON object"))
                return 0;
        }
        return 1;
    }
    return d->err ? 0 : 1;
}

static int cb_null(void *ctx)
{
    struct dec *d = ctx;
    int ok = on_value(d, 'n', NULL, 0);
    d->pending = P_NONE;
    return ok;
}

static int cb_bool(void *ctx, int b)
{
    (void)b;
    struct dec *d = ctx;
    int ok = on_value(d, 'o', NULL, 0);
    d->pending = P_NONE;
    return ok;
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    (void)s;
    (void)len;
    struct dec *d = ctx;
    int ok = on_value(d, 'o', NULL, 0);
    d->pending = P_NONE;
    return ok;
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    struct dec *d = ctx;
    /* A field read, most of a record's values: value_pending's P_FIELD case called directly, past
     * on_value's other cases. store_field is that case whole, so a check added to it holds here
     * too; it never refuses the whole input (rec_fail fails the record only), so the parse goes on. */
    if (d->pending == P_FIELD) {
        d->pending = P_NONE;
        store_field(d, (enum cls_field)d->pending_field, 's', s, len);
        return 1;
    }
    int ok = on_value(d, 's', s, len);
    d->pending = P_NONE;
    return ok;
}

static int cb_start_map(void *ctx)
{
    struct dec *d = ctx;
    if (!on_value(d, 'm', NULL, 0))
        return 0;
    int role = R_SKIP, node = N_SKIP, level = 0;
    if (d->depth == 0) {
        role = R_RC;
        level = 0;
        d->root_container = 0;
    } else {
        struct frame *top = &d->stack[d->depth - 1];
        if (!top->is_map) {
            if (top->role == R_ROOT_ARRAY || top->role == R_RECORDS) {
                role = R_RC;
                level = 1;
            }
        } else if (d->pending == P_NODE) {
            role = R_REC;
            node = d->pending_node;
        } else if (d->pending == P_WRAP && d->pending_wrap == W_DETAIL) {
            role = R_REC;
            node = N_REC;
        }
    }
    d->pending = P_NONE;
    if (role == R_RC) {
        scratch_reset(&d->sc);
        node = N_REC;
    }
    return push(d, 1, role, node, level);
}

static int cb_map_key(void *ctx, const unsigned char *k, size_t len)
{
    struct dec *d = ctx;
    struct frame *top = &d->stack[d->depth - 1];
    d->pending = P_NONE;
    if (top->role == R_SKIP)
        return 1;
    struct edge e = trie_edge(top->node, k, len);
    if (e.wrap) {
        if (top->role == R_RC) {  /* elsewhere (an EventBridge detail) a key like any unread one */
            int w = e.wrap;
            d->sc.wrap |= 1u << w;
            if (w == W_RECORDS && top->rc_level == 0)
                d->root_container = 1;  /* the elements reset the scratch: remember it here */
            d->pending = P_WRAP;
            d->pending_wrap = w;
        }
    } else if (e.field) {
        d->pending = P_FIELD;
        d->pending_field = e.field;
    } else if (e.node) {
        d->pending = P_NODE;
        d->pending_node = e.node;
    }
    return 1;
}

static int cb_end_map(void *ctx)
{
    struct dec *d = ctx;
    struct frame f = d->stack[--d->depth];
    d->pending = P_NONE;
    if (f.role == R_RC) {
        if (!finish_rc(d, f.rc_level))  /* emits the record, or refuses an unknown shape */
            return 0;
    }
    return 1;
}

static int cb_start_array(void *ctx)
{
    struct dec *d = ctx;
    if (!on_value(d, 'a', NULL, 0))
        return 0;
    int role = R_SKIP;
    if (d->depth == 0) {
        role = R_ROOT_ARRAY;
        d->root_container = 1;
    } else {
        struct frame *top = &d->stack[d->depth - 1];
        if (top->is_map && top->role == R_RC && top->rc_level == 0 && d->pending == P_WRAP &&
            d->pending_wrap == W_RECORDS)
            role = R_RECORDS;
    }
    d->pending = P_NONE;
    return push(d, 0, role, N_SKIP, 0);
}

static int cb_end_array(void *ctx)
{
    struct dec *d = ctx;
    d->depth--;
    d->pending = P_NONE;
    return 1;
}

static const yajl_callbacks callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_bool,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end_map,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end_array,
};

/* ---- feeding ------------------------------------------------------------------------------------ */

struct dec *dec_new(const struct dec_sink *sink, const struct dec_limits *lim)
{
    /* Not calloc: the scratch is nearly all of the decoder (a cls_rec holds every field's value
     * buffer, ~16 KB), and zeroing it cost as much as decoding a record, paid by every input (one
     * record per request is serve's usual case). Everything before it is zeroed; the scratch gets
     * its flags when a record starts (scratch_reset), and a value is read only where set[] says
     * it was written. */
    struct dec *d = malloc(sizeof *d);
    if (!d)
        return NULL;
    memset(d, 0, offsetof(struct dec, sc));
    scratch_reset(&d->sc);
    if (sink)
        d->sink = *sink;
    if (lim)
        d->lim = *lim;
    if (!d->lim.max_inflated)
        d->lim.max_inflated = DEC_DEFAULT_MAX_INFLATED;
    if (!d->lim.max_ratio)
        d->lim.max_ratio = DEC_DEFAULT_MAX_RATIO;
    if (!d->lim.max_records)
        d->lim.max_records = DEC_DEFAULT_MAX_RECORDS;
    d->y = yajl_alloc(&callbacks, NULL, d);
    if (!d->y) {
        free(d);
        return NULL;
    }
    yajl_config(d->y, yajl_allow_multiple_values, 1);
    return d;
}

void dec_free(struct dec *d)
{
    if (!d)
        return;
    if (d->z_init)
        inflateEnd(&d->z);
    free(d->zbuf);
    yajl_free(d->y);
    free(d);
}

static int parse_json(struct dec *d, const unsigned char *buf, size_t len)
{
    if (d->err)
        return d->err;
    if (d->st.bytes_json + len > d->lim.max_inflated) {
        set_msg(d, CW_ETOOBIG, "input larger than %zu bytes once inflated", d->lim.max_inflated);
        return d->err;
    }
    d->json_before = d->st.bytes_json;
    d->st.bytes_json += len;
    d->in_lo = (uintptr_t)buf;
    d->in_hi = (uintptr_t)buf + len;
    yajl_status s = yajl_parse(d->y, buf, len);
    d->in_lo = d->in_hi = 0;  /* buf is the caller's: once parsed, no address is "the input" */
    if (s == yajl_status_ok)
        return 0;
    if (d->err)  /* a callback stopped the parse and said why */
        return d->err;
    /* yajl counts the offending byte (or token) as consumed: name the offset of its last byte, 0-based */
    size_t at = d->json_before + yajl_get_bytes_consumed(d->y);
    if (at > 0)
        at--;
    unsigned char *e = yajl_get_error(d->y, 0, buf, len);
    char what[128];
    snprintf(what, sizeof what, "%s", e ? (const char *)e : "parse error");
    if (e)
        yajl_free_error(d->y, e);
    /* yajl's message ends with a newline */
    size_t n = strlen(what);
    while (n && (what[n - 1] == '\n' || what[n - 1] == ' '))
        what[--n] = 0;
    snprintf(d->msg, sizeof d->msg, "malformed JSON at byte %zu: %s", at, what);
    d->err = CW_EJSON;
    return d->err;
}

static int inflate_feed(struct dec *d, const unsigned char *buf, size_t len, int finish)
{
    d->z.next_in = (unsigned char *)buf;
    d->z.avail_in = (unsigned)len;
    while (d->z.avail_in > 0 || finish) {
        if (d->z_ended) {
            /* another gzip member may follow (concatenated files); anything else is garbage */
            if (d->z.avail_in == 0)
                break;
            if (d->z.next_in[0] != 0x1f) {
                set_msg(d, CW_EGZIP, "trailing data after the gzip stream");
                return d->err;
            }
            inflateReset(&d->z);
            d->z_ended = 0;
        }
        d->z.next_out = d->zbuf;
        d->z.avail_out = DEC_INFLATE_CHUNK;
        int r = inflate(&d->z, Z_NO_FLUSH);
        size_t got = DEC_INFLATE_CHUNK - d->z.avail_out;
        /* The output inflated before a corruption is parsed first, so the error reported is the
         * first one in the stream whatever the chunking: fed in small chunks, those bytes would
         * have reached the parser before inflate saw the corruption (found by fuzz_decode). */
        int corrupt = r != Z_OK && r != Z_STREAM_END && !(r == Z_BUF_ERROR && got == 0);
        if (got) {
            /* ratio cap: a small gzip may hold gigabytes */
            size_t limit = d->st.bytes_in * (size_t)d->lim.max_ratio + DEC_RATIO_SLACK;
            if (d->st.bytes_json + got > limit) {
                set_msg(d, CW_ETOOBIG, "gzip expands more than %ux: refused as a decompression bomb",
                        d->lim.max_ratio);
                return d->err;
            }
            if (parse_json(d, d->zbuf, got))
                return d->err;
        }
        if (corrupt) {
            set_msg(d, CW_EGZIP, "corrupt gzip data: %s", d->z.msg ? d->z.msg : "inflate failed");
            return d->err;
        }
        if (r == Z_STREAM_END)
            d->z_ended = 1;
        else if (got == 0 && d->z.avail_in == 0)
            break;
    }
    return 0;
}

static int start(struct dec *d)
{
    if (d->magic[0] == 0x1f && d->magic[1] == 0x8b) {
        d->mode = 2;
        d->st.gzip = 1;
        d->zbuf = malloc(DEC_INFLATE_CHUNK);
        if (!d->zbuf || inflateInit2(&d->z, 16 + MAX_WBITS) != Z_OK) {
            set_msg(d, CW_ENOMEM, "out of memory");
            return d->err;
        }
        d->z_init = 1;
        return inflate_feed(d, d->magic, d->n_magic, 0);
    }
    d->mode = 1;
    return parse_json(d, d->magic, d->n_magic);
}

int dec_feed(struct dec *d, const uint8_t *buf, size_t len)
{
    if (d->err)
        return d->err;
    d->st.bytes_in += len;
    while (d->mode == 0 && len > 0) {
        d->magic[d->n_magic++] = *buf++;
        len--;
        if (d->n_magic == 2 && start(d))
            return d->err;
    }
    if (len == 0)
        return d->err;
    return d->mode == 2 ? inflate_feed(d, buf, len, 0) : parse_json(d, buf, len);
}

int dec_finish(struct dec *d)
{
    if (d->err)
        return d->err;
    if (d->mode == 0 && d->n_magic == 1) {
        d->mode = 1;
        if (parse_json(d, d->magic, 1))
            return d->err;
    }
    if (d->mode == 2) {
        if (inflate_feed(d, NULL, 0, 1))
            return d->err;
        if (!d->z_ended) {
            set_msg(d, CW_EGZIP, "truncated gzip stream");
            return d->err;
        }
    }
    if (d->st.bytes_json == 0) {
        set_msg(d, CW_EJSON, "empty input: expected CloudTrail JSON");
        return d->err;
    }
    yajl_status s = yajl_complete_parse(d->y);
    if (s != yajl_status_ok && !d->err) {
        snprintf(d->msg, sizeof d->msg, "malformed JSON at byte %zu: unexpected end of input", d->st.bytes_json);
        d->err = CW_EJSON;
    }
    if (!d->err && d->roots == 0) {
        set_msg(d, CW_EJSON, "empty input: expected CloudTrail JSON");
    }
    return d->err;
}

const char *dec_message(const struct dec *d)
{
    return d->msg;
}

const struct dec_stats *dec_stats(const struct dec *d)
{
    return &d->st;
}

int dec_buffer(const uint8_t *buf, size_t len, const struct dec_sink *sink, const struct dec_limits *lim,
               struct dec_stats *stats, char *msg, size_t msg_size)
{
    struct dec *d = dec_new(sink, lim);
    if (!d) {
        if (msg && msg_size)
            snprintf(msg, msg_size, "out of memory");
        return CW_ENOMEM;
    }
    int rc = dec_feed(d, buf, len);
    if (!rc)
        rc = dec_finish(d);
    if (stats)
        *stats = d->st;
    if (msg && msg_size) {  /* snprintf's "%s", without its ~500 instructions per input */
        const char *m = rc ? d->msg : "";
        size_t n = strnlen(m, msg_size - 1);
        memcpy(msg, m, n);
        msg[n] = 0;
    }
    dec_free(d);
    return rc;
}