/* cwlogs.h — CloudWatch Logs subscription messages: bytes in, the log events' messages out.
 *
 * A subscription filter (to Firehose, Kinesis or Lambda) sends each batch of a log group's events as
 * one gzip'd JSON object: {"messageType":"DATA_MESSAGE","owner","logGroup","logStream",
 * "subscriptionFilters":[...],"logEvents":[{"id","timestamp","message"},...]}, or a CONTROL_MESSAGE
 * when the subscription is created (a reachability check, no events). For a CloudTrail trail that
 * sends to CloudWatch Logs each message is one CloudTrail record as JSON text.
 *
 * Parsed with yajl's callbacks in one pass, no tree (a message of 1,000 events is read at the
 * decoder's speed). Pure (no I/O, no store, no clock), like decode.c: the caller hands each message to the CloudTrail
 * decoder. Here rather than in api/ because it is a decoder of bytes into records, as decode.c is,
 * and `scan` or a fuzz target may use it without HTTP.
 */
#ifndef CW_CWLOGS_H
#define CW_CWLOGS_H

#include <stddef.h>
#include <stdint.h>

#include "cw.h"

/* A subscription message is held whole to parse it: CloudWatch Logs batches at most 1,048,576
 * bytes of events (PutLogEvents), so 8 MiB inflated is ample; a larger input is no subscription
 * message (the Firehose route gives it to the CloudTrail decoder as it is). */
#define CWL_MESSAGE_MAX ((size_t)8 << 20)
#define CWL_EVENTS_MAX 10000u          /* log events in one message: PutLogEvents' bound per batch */
#define CWL_RATIO_SLACK ((size_t)1 << 20) /* as decode.c: a small gzip may exceed the ratio by this */
#define CWL_INFLATE_CHUNK ((size_t)64 << 10)
#define CWL_DEPTH_MAX 64                 /* JSON nesting read (as DEC_MAX_DEPTH); deeper is no message */

enum cwl_kind { CWL_NONE = 0, CWL_DATA, CWL_CONTROL };

/* Outcome of cwl_gunzip. */
enum cwl_gz {
    CWL_GZ_OK = 0,
    CWL_GZ_CORRUPT,  /* not a gzip stream, corrupt, truncated, or bytes after its end */
    CWL_GZ_RATIO,    /* inflated past in_len * max_ratio + CWL_RATIO_SLACK: a gzip bomb */
    CWL_GZ_BIG,      /* inflated past max_out (within the ratio) */
    CWL_GZ_NOMEM
};

/* Does buf start with gzip's magic bytes? */
int cwl_is_gzip(const uint8_t *buf, size_t len);

/* Inflates one gzip stream (concatenated members too, as gzip(1) writes them) into a malloc'd
 * buffer of at most max_out bytes, stopping as soon as a bound is passed (max_ratio 0: no ratio
 * bound). *out is NULL unless CWL_GZ_OK; then the caller frees it (NUL-terminated, not counted). */
enum cwl_gz cwl_gunzip(const uint8_t *in, size_t in_len, size_t max_out, unsigned max_ratio, uint8_t **out,
                       size_t *out_len);

/* Receives each log event's message (index in logEvents); msg is NULL when the event has no string
 * "message" (CloudWatch Logs never sends one: a forgery or a corruption, counted by the caller). msg
 * may hold NUL bytes (JSON \u0000): use len. Non-zero stops parsing with CW_EABORT. */
struct cwl_sink {
    int (*message)(void *ud, size_t index, const char *msg, size_t len);
    void *ud;
};

/* Reads buf (plain JSON: inflate first) as a subscription message; the sink sees nothing unless
 * the whole of buf is one well-formed JSON object. Returns 0 with *kind:
 * CWL_NONE when it is no subscription message (not one JSON object with a string "messageType":
 * a CloudTrail record or file, an EventBridge event, NDJSON: the caller's decoder takes it),
 * CWL_CONTROL (no events), CWL_DATA (each event given to sink in order). Else CW_EFORMAT (a
 * messageType that is neither, or logEvents that are not an array), CW_ETOOBIG (more than
 * CWL_EVENTS_MAX events, or len over CWL_MESSAGE_MAX), CW_ENOMEM or CW_EABORT, with msg set.
 * *n_events counts the events handed to the sink. */
int cwl_parse(const uint8_t *buf, size_t len, const struct cwl_sink *sink, enum cwl_kind *kind, size_t *n_events,
              char *msg, size_t msg_size);

#endif
