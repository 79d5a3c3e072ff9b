/* cwlogs.c — see cwlogs.h. */
#include "cwlogs.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    json_error_t err;
    json_t *doc = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, &err);
    if (!doc) {
        /* not one JSON value (NDJSON, or malformed): the CloudTrail decoder says what it is; out of
         * memory is told apart, since the caller must answer it as a transient fault */
        if (json_error_code(&err) == json_error_out_of_memory) {
            snprintf(msg, msg_size, "out of memory");
            return CW_ENOMEM;
        }
        return 0;
    }
    json_t *type = json_object_get(doc, "messageType");
    int rc = 0;
    if (!json_is_object(doc) || !json_is_string(type)) {
        json_decref(doc);
        return 0;
    }
    const char *t = json_string_value(type);
    if (strcmp(t, "CONTROL_MESSAGE") == 0) {
        *kind = CWL_CONTROL;
    } else if (strcmp(t, "DATA_MESSAGE") != 0) {
        snprintf(msg, msg_size, "messageType \"%.40s\" is neither DATA_MESSAGE nor CONTROL_MESSAGE", t);
        rc = CW_EFORMAT;
    } else {
        json_t *events = json_object_get(doc, "logEvents");
        size_t n = json_array_size(events);
        if (!json_is_array(events)) {
            snprintf(msg, msg_size, "a DATA_MESSAGE without a logEvents array");
            rc = CW_EFORMAT;
        } else if (n > CWL_EVENTS_MAX) {
            snprintf(msg, msg_size, "%zu log events in one message; at most %u", n, CWL_EVENTS_MAX);
            rc = CW_ETOOBIG;
        } else {
            *kind = CWL_DATA;
            for (size_t i = 0; i < n && !rc; i++) {
                json_t *m = json_object_get(json_array_get(events, i), "message");
                (*n_events)++;
                if (sink->message(sink->ud, i, json_is_string(m) ? json_string_value(m) : NULL,
                                  json_is_string(m) ? json_string_length(m) : 0)) {
                    snprintf(msg, msg_size, "stopped at log event %zu", i);
                    rc = CW_EABORT;
                }
            }
        }
    }
    json_decref(doc);
    if (rc)
        *kind = CWL_NONE;
    return rc;
}
