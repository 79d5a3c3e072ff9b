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

struct edge {
    const char *key;
    unsigned char len;
    unsigned char node;   /* child interior node, or 0 */
    unsigned char field;  /* leaf field (enum cls_field), or CLS_F_NONE */
};

#define E_NODE(k, n) { k, sizeof(k) - 1, n, CLS_F_NONE }
#define E_LEAF(k, f) { k, sizeof(k) - 1, N_SKIP, f }

static const struct edge rec_edges[] = {
    E_LEAF("eventID", CLS_F_EVENT_ID), E_LEAF("eventTime", CLS_F_EVENT_TIME),
    E_LEAF("eventSource", CLS_F_EVENT_SOURCE), E_LEAF("eventName", CLS_F_EVENT_NAME),
    E_LEAF("awsRegion", CLS_F_REGION), E_LEAF("sourceIPAddress", CLS_F_SOURCE_IP),
    E_LEAF("userAgent", CLS_F_USER_AGENT), E_LEAF("errorCode", CLS_F_ERROR_CODE),
    E_LEAF("eventType", CLS_F_EVENT_TYPE), E_LEAF("eventCategory", CLS_F_EVENT_CATEGORY),
    E_LEAF("recipientAccountId", CLS_F_RECIPIENT), E_LEAF("vpcEndpointId", CLS_F_VPCE_ID),
    E_LEAF("vpcEndpointAccountId", CLS_F_VPCE_ACCOUNT),
    E_NODE("userIdentity", N_UI), E_NODE("requestParameters", N_RP),
    E_NODE("responseElements", N_RE), E_NODE("additionalEventData", N_AED),
};
static const struct edge ui_edges[] = {
    E_LEAF("type", CLS_F_UI_TYPE), E_LEAF("accessKeyId", CLS_F_UI_AKID), E_LEAF("arn", CLS_F_UI_ARN),
    E_LEAF("accountId", CLS_F_UI_ACCOUNT), E_LEAF("invokedBy", CLS_F_UI_INVOKED_BY),
    E_LEAF("userName", CLS_F_UI_USER_NAME), E_LEAF("identityProvider", CLS_F_UI_PROVIDER),
    E_NODE("sessionContext", N_UI_SC),
};
static const struct edge sc_edges[] = {
    E_NODE("sessionIssuer", N_UI_SC_ISSUER), E_NODE("attributes", N_UI_SC_ATTR),
    E_LEAF("ec2RoleDelivery", CLS_F_UI_EC2_DELIVERY),
};
static const struct edge issuer_edges[] = { E_LEAF("arn", CLS_F_UI_ISSUER_ARN) };
static const struct edge attr_edges[] = { E_LEAF("creationDate", CLS_F_UI_CREATED) };
static const struct edge rp_edges[] = {
    E_LEAF("roleArn", CLS_F_RP_ROLE_ARN), E_LEAF("roleSessionName", CLS_F_RP_SESSION),
    E_NODE("encryptionContext", N_RP_ENC),
};
static const struct edge enc_edges[] = { E_LEAF("aws:lambda:FunctionArn", CLS_F_RP_FUNCTION_ARN) };
static const struct edge re_edges[] = {
    E_NODE("credentials", N_RE_CRED), E_LEAF("subjectFromWebIdentityToken", CLS_F_RE_SUBJECT),
};
static const struct edge cred_edges[] = {
    E_LEAF("accessKeyId", CLS_F_RE_AKID), E_LEAF("expiration", CLS_F_RE_EXPIRATION),
};
static const struct edge aed_edges[] = { E_LEAF("AuthenticationMethod", CLS_F_AED_AUTH) };

struct node_def {
    const struct edge *edges;
    size_t n;
    const char *path;  /* for messages */
};

#define NODE_DEF(arr, p) { arr, sizeof(arr) / sizeof(arr[0]), p }
static const struct node_def nodes[N_COUNT] = {
    [N_SKIP] = { NULL, 0, "" },
    [N_REC] = NODE_DEF(rec_edges, "record"),
    [N_UI] = NODE_DEF(ui_edges, "userIdentity"),
    [N_UI_SC] = NODE_DEF(sc_edges, "userIdentity.sessionContext"),
    [N_UI_SC_ISSUER] = NODE_DEF(issuer_edges, "userIdentity.sessionContext.sessionIssuer"),
    [N_UI_SC_ATTR] = NODE_DEF(attr_edges, "userIdentity.sessionContext.attributes"),
    [N_RP] = NODE_DEF(rp_edges, "requestParameters"),
    [N_RP_ENC] = NODE_DEF(enc_edges, "requestParameters.encryptionContext"),
    [N_RE] = NODE_DEF(re_edges, "responseElements"),
    [N_RE_CRED] = NODE_DEF(cred_edges, "responseElements.credentials"),
    [N_AED] = NODE_DEF(aed_edges, "additionalEventData"),
};

/* ---- wrapper keys of a record-capable object ---------------------------------------------- */

enum wkey { W_NONE = 0, W_RECORDS, W_DETAIL, W_DETAIL_TYPE, W_TYPE, W_MESSAGE, W_SNS, W_BODY, W_DIGEST };

/* By the first byte first: every key of every record comes here, and no record field starts as a
 * wrapper key does, so most are told apart by one comparison. */
static int wrapper_key(const unsigned char *k, size_t len)
{
#define WK(s, w) if (len == sizeof(s) - 1 && memcmp(k, s, len) == 0) return w
    switch (len ? k[0] : 0) {
    case 'R': WK("Records", W_RECORDS); break;
    case 'd':
        WK("detail", W_DETAIL);
        WK("detail-type", W_DETAIL_TYPE);
        WK("digestStartTime", W_DIGEST);
        WK("digestPublicKeyFingerprint", W_DIGEST);
        break;
    case 'T': WK("Type", W_TYPE); break;
    case 'M': WK("Message", W_MESSAGE); break;
    case 'S': WK("Sns", W_SNS); break;
    case 'b': WK("body", W_BODY); break;
    case 'l': WK("logFiles", W_DIGEST); break;
    default: break;
    }
#undef WK
    return W_NONE;
}

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
    int depth;
    struct frame stack[DEC_MAX_DEPTH];
    int pending;
    int pending_field;
    int pending_node;
    int pending_wrap;
    int root_container;         /* the current root value had Records */
    size_t roots;               /* root values seen */
    struct scratch sc;
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
    if ((sc->wrap & (1u << W_SNS)) || (strcmp(sc->type, "Notification") == 0 && (sc->wrap & (1u << W_MESSAGE)))) {
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

/* A value of the announced field: a string is kept (cut, or marked too long, at the field's bound);
 * null is as if absent; any other type fails the record. */
static void store_field(struct dec *d, enum cls_field f, char kind, const unsigned char *s, size_t len)
{
    struct cls_rec *r = &d->sc.rec;
    if (kind != 's') {
        if (kind != 'n')
            rec_fail(d, "%s must be a string", cls_field_name(f));
        return;
    }
    size_t max = cls_field_max(f);
    if (len > max && !cls_field_cuttable(f)) {
        /* judged by cls_event: a field is only an error where the detector reads it
         * (userIdentity.accountId is "ANONYMOUS_PRINCIPAL" on anonymous S3 data events) */
        r->toolong[f] = 1;
    } else if (memchr(s, 0, len)) {
        rec_fail(d, "%s contains a NUL character", cls_field_name(f));
    } else {
        size_t n = len > max ? max : len;
        memcpy(r->val[f], s, n);
        r->val[f][n] = 0;
        r->len[f] = (unsigned short)n;
        r->set[f] = 1;
    }
}

/* A scalar or container arrives where a record field or node was announced. kind: 's' string,
 * 'n' null, 'm' map, 'a' array, 'o' other scalar. Stores a string field's value, or fails the
 * record (or refuses the input) when the value has the wrong type; the caller opens any frame. */
static void value_pending(struct dec *d, char kind, const unsigned char *s, size_t len)
{
    struct scratch *sc = &d->sc;
    if (d->pending == P_FIELD) {
        store_field(d, (enum cls_field)d->pending_field, kind, s, len);
    } else if (d->pending == P_NODE) {
        if (kind != 'm' && kind != 'n')
            rec_fail(d, "%s must be an object", nodes[d->pending_node].path);
    } else if (d->pending == P_WRAP) {
        int w = d->pending_wrap;
        if (kind == 's' && len < DEC_WRAP_MAX && (w == W_DETAIL_TYPE || w == W_TYPE)) {
            char *dst = w == W_DETAIL_TYPE ? sc->detail_type : sc->type;
            memcpy(dst, s, len);
            dst[len] = 0;
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

/* Called for every value: handles the element-of-array case and the announced key. */
static int on_value(struct dec *d, char kind, const unsigned char *s, size_t len)
{
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
    if (d->pending != P_NONE)
        value_pending(d, kind, s, len);
    return d->err ? 0 : 1;  /* a refusal of the whole input stops the parse */
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
    if (top->role == R_RC) {
        int w = wrapper_key(k, len);
        if (w) {
            d->sc.wrap |= 1u << w;
            if (w == W_RECORDS && top->rc_level == 0)
                d->root_container = 1;  /* the elements reset the scratch: remember it here */
            d->pending = P_WRAP;
            d->pending_wrap = w;
            return 1;
        }
    }
    const struct node_def *nd = &nodes[top->node];
    for (size_t i = 0; i < nd->n; i++) {
        const struct edge *e = &nd->edges[i];
        if (e->len == len && (unsigned char)e->key[0] == k[0] && memcmp(e->key, k, len) == 0) {
            if (e->field) {
                d->pending = P_FIELD;
                d->pending_field = e->field;
            } else {
                d->pending = P_NODE;
                d->pending_node = e->node;
            }
            return 1;
        }
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
    struct dec *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
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
    yajl_status s = yajl_parse(d->y, buf, len);
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
    if (msg && msg_size)
        snprintf(msg, msg_size, "%s", rc ? d->msg : "");
    dec_free(d);
    return rc;
}