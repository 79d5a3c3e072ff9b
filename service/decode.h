/* decode.h — bytes of CloudTrail in, normalised events out.
 *
 * Accepted, plain or gzip (told apart by the magic bytes, never by a name):
 *   - a CloudTrail log file {"Records":[record, ...]}
 *   - a bare JSON array of records, or of EventBridge events
 *   - one EventBridge event ("... via CloudTrail", the record in "detail")
 *   - newline-delimited (or simply concatenated) records or events
 * Refused with a reason: S3 event notifications, SNS/SQS wrappers, CloudTrail digest files.
 *
 * The parser is yajl (event callbacks, streaming): the input is fed in chunks as it is inflated,
 * so memory stays bounded for any body size. Nothing outside decode.c knows which parser it is.
 *
 * Errors (cw.h): 0, or CW_EJSON, CW_EGZIP, CW_ETOOBIG, CW_EREFUSED, CW_EDEPTH, CW_ENOMEM, CW_EABORT;
 * the message buffer names the byte or field at fault.
 */
#ifndef CW_DECODE_H
#define CW_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "cw.h"

#include "event.h"

#define DEC_MSG_MAX 256
/* The whole message of a CloudTrail digest file's refusal: scan skips such files by it, so it must
 * be matched whole (other messages quote the input: an eventSource "aws:digest" is not a digest). */
#define DEC_DIGEST_MSG "a CloudTrail digest file, not log records"
#define DEC_MAX_DEPTH 64                   /* JSON nesting accepted; deeper is refused */
#define DEC_DEFAULT_MAX_INFLATED (256u << 20) /* cap on the inflated size of one input */
#define DEC_DEFAULT_MAX_RATIO 200u         /* cap on inflated/compressed (gzip bombs) */
#define DEC_DEFAULT_MAX_RECORDS 250000u    /* records in one input */

/* The sink receives each record: its index in the input (0-based), and either the event or, when
 * the record was skipped, a reason. Returning non-zero stops decoding with CW_EABORT. */
struct dec_sink {
    int (*event)(void *ud, size_t index, const struct ev_event *ev);
    int (*skip)(void *ud, size_t index, const char *reason);
    void *ud;
};

struct dec_limits {
    size_t max_inflated;  /* 0 = DEC_DEFAULT_MAX_INFLATED */
    unsigned max_ratio;   /* 0 = DEC_DEFAULT_MAX_RATIO */
    size_t max_records;   /* 0 = DEC_DEFAULT_MAX_RECORDS */
};

struct dec_stats {
    size_t records;       /* records seen (events + skipped) */
    size_t events;        /* records delivered to sink->event */
    size_t skipped;       /* records delivered to sink->skip */
    size_t bytes_in;      /* bytes fed (compressed if gzip) */
    size_t bytes_json;    /* bytes of JSON parsed */
    int gzip;             /* input was gzip */
};

struct dec;

/* A decoder for one input. Returns NULL when out of memory. */
struct dec *dec_new(const struct dec_sink *sink, const struct dec_limits *lim);
void dec_free(struct dec *d);

/* Feed the next chunk of the input; the first bytes decide gzip or plain. */
int dec_feed(struct dec *d, const uint8_t *buf, size_t len);
/* Signal the end of the input; fails if the JSON or the gzip stream is incomplete. */
int dec_finish(struct dec *d);

const char *dec_message(const struct dec *d);
const struct dec_stats *dec_stats(const struct dec *d);

/* Decode a whole buffer in one call (dec_new, dec_feed, dec_finish). msg gets the message. */
int dec_buffer(const uint8_t *buf, size_t len, const struct dec_sink *sink, const struct dec_limits *lim,
               struct dec_stats *stats, char *msg, size_t msg_size);

#endif
