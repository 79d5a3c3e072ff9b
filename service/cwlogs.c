/* cwlogs.c — see cwlogs.h. */
#include "cwlogs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>
#include <zlib.h>

int cwl_is_gzip(const uint8_t *buf, size_t len)
{
    return len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b;
}

enum cwl_gz cwl_gunzip(const uint8_t *in, size_t in_len, size_t max_out, unsigned max_ratio, uint8_t **out,
                       size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (!cwl_is_gzip(in, in_len))
        return CWL_GZ_CORRUPT;
    /* the ratio bound, checked (a huge in_len cannot wrap it) */
    size_t ratio_cap = SIZE_MAX;
    if (max_ratio && in_len <= (SIZE_MAX - CWL_RATIO_SLACK) / max_ratio)
        ratio_cap = in_len * max_ratio + CWL_RATIO_SLACK;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
        return CWL_GZ_NOMEM;
    struct cw_buf b;
    cw_buf_init(&b, max_out < ratio_cap ? max_out : ratio_cap);
    uint8_t chunk[4096];
    enum cwl_gz rc = CWL_GZ_OK;
    z.next_in = (Bytef *)in;
    z.avail_in = 0;
    size_t fed = 0;
    for (;;) {
        if (z.avail_in == 0 && fed < in_len) {
            size_t n = in_len - fed < CWL_INFLATE_CHUNK ? in_len - fed : CWL_INFLATE_CHUNK;
            z.next_in = (Bytef *)(in + fed);
            z.avail_in = (uInt)n;
            fed += n;
        }
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        int zr = inflate(&z, Z_NO_FLUSH);
        size_t got = sizeof chunk - z.avail_out;
        if (got) {
            int ar = cw_buf_append(&b, chunk, got);
            if (ar == CW_ETOOBIG) {
                rc = b.len + got > ratio_cap ? CWL_GZ_RATIO : CWL_GZ_BIG;
                break;
            }
            if (ar) {
                rc = CWL_GZ_NOMEM;
                break;
            }
        }
        if (zr == Z_STREAM_END) {
            /* another member follows (gzip of concatenated files), or the end */
            if (z.avail_in == 0 && fed == in_len)
                break;
            if (z.avail_in >= 2 && z.next_in[0] == 0x1f && z.next_in[1] == 0x8b) {
                inflateReset(&z);
                continue;
            }
            rc = CWL_GZ_CORRUPT;  /* trailing bytes that are no gzip member */
            break;
        }
        if (zr == Z_MEM_ERROR) {
            rc = CWL_GZ_NOMEM;
            break;
        }
        if (zr != Z_OK) {
            rc = CWL_GZ_CORRUPT;  /* a data error, or the input ended inside the stream (Z_BUF_ERROR) */
            break;
        }
    }
    inflateEnd(&z);
    if (rc != CWL_GZ_OK) {
        cw_buf_free(&b);
        return rc;
    }
    if (!b.p) {  /* an empty stream: still a buffer to free */
        b.p = calloc(1, 1);
        if (!b.p)
            return CWL_GZ_NOMEM;
    }
    *out = (uint8_t *)b.p;
    *out_len = b.len;
    return CWL_GZ_OK;
}

/* Is there a "messageType" member anywhere? Cheap: most records are not subscription messages, and
 * only those that name it are parsed as a whole. */
static int names_message_type(const uint8_t *buf, size_t len)
{
    static const char key[] = "\"messageType\"";
    return memmem(buf, len, key, sizeof key - 1) != NULL;
}

/* ---- parsing: yajl's callbacks, one pass, no tree ----
 * The messages are copied out as the parse meets them (yajl's string may live in its own buffer only
 * for the callback) and handed to the sink only once the whole input has parsed as one JSON object:
 * a message that turns out malformed at its end gives the decoder nothing. */

struct cwl_span {
    size_t off, len;  /* in the copy; len CWL_NO_MESSAGE: the event has no string message */
};
#define CWL_NO_MESSAGE SIZE_MAX

struct cwl_state {
    int depth;                /* maps and arrays open */
    int key;                  /* at depth 1: the member being read (K_*) */
    int in_event;             /* inside a logEvents element that is an object (depth 3) */
    int event_key_message;    /* that element's member being read is "message" */
    int seen_type, seen_events, events_array, bad;  /* bad: a duplicate member or too deep: no message */
    char type[32];            /* messageType, cut */
    int type_is_string;
    size_t n_events;          /* logEvents elements, counted past the bound too */
    struct cwl_span *spans;   /* up to CWL_EVENTS_MAX */
    size_t cap_spans;
    struct cw_buf text;       /* the messages, one after another */
    int oom;
};
enum { K_OTHER = 0, K_TYPE, K_EVENTS };

static int key_is(const unsigned char *k, size_t n, const char *name)
{
    return n == strlen(name) && memcmp(k, name, n) == 0;
}

/* A value (scalar or the start of a container) at the current depth. */
static void on_value(struct cwl_state *s, int is_array, int is_map)
{
    if (s->depth == 1 && s->key == K_EVENTS)
        s->events_array = is_array;
    if (s->depth == 2 && s->key == K_EVENTS && s->events_array) {  /* a logEvents element */
        if (s->n_events < CWL_EVENTS_MAX) {
            void *p = s->spans;
            if (cw_grow(&p, &s->cap_spans, s->n_events + 1, sizeof *s->spans, 64, CWL_EVENTS_MAX)) {
                s->oom = 1;
                return;
            }
            s->spans = p;
            s->spans[s->n_events].off = 0;
            s->spans[s->n_events].len = CWL_NO_MESSAGE;
        }
        s->n_events++;
        s->in_event = is_map;
    }
}

static int cb_scalar(void *ctx)
{
    struct cwl_state *s = ctx;
    on_value(s, 0, 0);
    if (s->depth == 1 && s->key == K_TYPE)
        s->type_is_string = 0;
    s->event_key_message = 0;
    return !s->oom;
}
static int cb_null(void *ctx) { return cb_scalar(ctx); }
static int cb_bool(void *ctx, int b) { (void)b; return cb_scalar(ctx); }
static int cb_number(void *ctx, const char *v, size_t n) { (void)v; (void)n; return cb_scalar(ctx); }

static int cb_string(void *ctx, const unsigned char *v, size_t n)
{
    struct cwl_state *s = ctx;
    if (s->depth == 1 && s->key == K_TYPE) {
        s->type_is_string = 1;
        /* Kept as printable ASCII, anything else '?' (a NUL too: "DATA_MESSAGE\u0000x" is no
         * DATA_MESSAGE): an unknown type is quoted in the reject's log line, which is JSON, and
         * half a character there, or yajl's overlong sequences (it lets C0/C1 leads through),
         * would make jansson drop the whole detail. */
        size_t keep = n < sizeof s->type ? n : sizeof s->type - 1;
        for (size_t i = 0; i < keep; i++)
            s->type[i] = v[i] >= 0x20 && v[i] < 0x7f ? (char)v[i] : '?';
        s->type[keep] = '\0';
        return 1;
    }
    on_value(s, 0, 0);
    if (s->depth == 3 && s->in_event && s->event_key_message && s->n_events <= CWL_EVENTS_MAX) {
        struct cwl_span *sp = &s->spans[s->n_events - 1];
        if (sp->len != CWL_NO_MESSAGE) {  /* "message" twice: neither is trusted */
            sp->len = CWL_NO_MESSAGE;
        } else {
            sp->off = s->text.len;
            sp->len = n;
            if (cw_buf_append(&s->text, v, n) != CW_OK)
                s->oom = 1;
        }
    }
    s->event_key_message = 0;
    return !s->oom;
}

static int cb_map_key(void *ctx, const unsigned char *k, size_t n)
{
    struct cwl_state *s = ctx;
    if (s->depth == 1) {
        s->key = key_is(k, n, "messageType") ? K_TYPE : key_is(k, n, "logEvents") ? K_EVENTS : K_OTHER;
        int *seen = s->key == K_TYPE ? &s->seen_type : s->key == K_EVENTS ? &s->seen_events : NULL;
        if (seen && (*seen)++)
            s->bad = 1;  /* a member twice (jansson's JSON_REJECT_DUPLICATES would refuse it) */
    } else if (s->depth == 3 && s->in_event) {
        s->event_key_message = key_is(k, n, "message");
    }
    return !s->bad;
}

static int cb_start(void *ctx, int is_map)
{
    struct cwl_state *s = ctx;
    if (s->depth == 0 && !is_map)
        s->bad = 1;  /* not an object: no subscription message */
    if (s->depth == 1 && s->key == K_TYPE)
        s->type_is_string = 0;
    if (s->depth > 0)
        on_value(s, !is_map, is_map);
    s->event_key_message = 0;
    if (++s->depth > CWL_DEPTH_MAX)
        s->bad = 1;
    return !s->bad && !s->oom;
}
static int cb_start_map(void *ctx) { return cb_start(ctx, 1); }
static int cb_start_array(void *ctx) { return cb_start(ctx, 0); }

static int cb_end(void *ctx)
{
    struct cwl_state *s = ctx;
    s->depth--;
    if (s->depth == 2)
        s->in_event = 0;
    if (s->depth == 1)
        s->key = K_OTHER;
    return 1;
}

static const yajl_callbacks CWL_CALLBACKS = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_bool,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end,
};

/* Parses buf whole; 0 when it is one JSON object (s filled), 1 when not (or malformed), CW_ENOMEM. */
static int parse_all(const uint8_t *buf, size_t len, struct cwl_state *s)
{
    yajl_handle y = yajl_alloc(&CWL_CALLBACKS, NULL, s);
    if (!y)
        return CW_ENOMEM;
    yajl_status st = yajl_parse(y, buf, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(y);
    yajl_free(y);
    if (s->oom)
        return CW_ENOMEM;
    return st == yajl_status_ok && !s->bad ? 0 : 1;
}

static int deliver(struct cwl_state *s, const struct cwl_sink *sink, size_t *n_events, char *msg, size_t msg_size)
{
    for (size_t i = 0; i < s->n_events; i++) {
        const struct cwl_span *sp = &s->spans[i];
        (*n_events)++;
        int stop = sp->len == CWL_NO_MESSAGE ? sink->message(sink->ud, i, NULL, 0)
                                             : sink->message(sink->ud, i, s->text.p + sp->off, sp->len);
        if (stop) {
            snprintf(msg, msg_size, "stopped at log event %zu", i);
            return CW_EABORT;
        }
    }
    return 0;
}

int cwl_parse(const uint8_t *buf, size_t len, const struct cwl_sink *sink, enum cwl_kind *kind, size_t *n_events,
              char *msg, size_t msg_size)
{
    *kind = CWL_NONE;
    *n_events = 0;
    if (msg_size)
        msg[0] = '\0';
    if (!names_message_type(buf, len))
        return 0;
    if (len > CWL_MESSAGE_MAX) {
        snprintf(msg, msg_size, "a CloudWatch Logs message larger than %zu bytes", CWL_MESSAGE_MAX);
        return CW_ETOOBIG;
    }
    struct cwl_state s;
    memset(&s, 0, sizeof s);
    cw_buf_init(&s.text, len);  /* the messages, unescaped, are never longer than the input */
    int rc = parse_all(buf, len, &s);
    if (rc == CW_ENOMEM) {
        snprintf(msg, msg_size, "out of memory");
    } else if (rc == 1 || !s.type_is_string) {
        rc = 0;  /* no subscription message: the CloudTrail decoder says what it is */
    } else if (strcmp(s.type, "CONTROL_MESSAGE") == 0) {
        *kind = CWL_CONTROL;
    } else if (strcmp(s.type, "DATA_MESSAGE") != 0) {
        snprintf(msg, msg_size, "messageType \"%s\" is neither DATA_MESSAGE nor CONTROL_MESSAGE", s.type);
        rc = CW_EFORMAT;
    } else if (!s.events_array) {
        snprintf(msg, msg_size, "a DATA_MESSAGE without a logEvents array");
        rc = CW_EFORMAT;
    } else if (s.n_events > CWL_EVENTS_MAX) {
        snprintf(msg, msg_size, "%zu log events in one message; at most %u", s.n_events, CWL_EVENTS_MAX);
        rc = CW_ETOOBIG;
    } else {
        *kind = CWL_DATA;
        rc = deliver(&s, sink, n_events, msg, msg_size);
        if (rc)
            *kind = CWL_NONE;
    }
    free(s.spans);
    cw_buf_free(&s.text);
    return rc;
}
