/* api_firehose.h — Amazon Data Firehose's HTTP endpoint delivery protocol (version 1.0): the
 * envelope's bounds and checks, the access key's two forms. Pure, no libmicrohttpd: the route's
 * handler and its replies (api_fh_ingest, api_fh_reply) are declared in api_http.h.
 *
 * The protocol, as AWS's "HTTP endpoint delivery request and response specifications" gives it:
 * POST, Content-Type application/json, Content-Encoding gzip when the stream compresses, headers
 * X-Amz-Firehose-Protocol-Version (1.0), X-Amz-Firehose-Request-Id (the same for every retry of
 * one request), X-Amz-Firehose-Source-Arn, X-Amz-Firehose-Access-Key and optionally
 * X-Amz-Firehose-Common-Attributes; the body {"requestId","timestamp","records":[{"data":"<base64>"}]}.
 * The answer: Content-Type application/json, a Content-Length, {"requestId":"<the same>",
 * "timestamp":<ms>} and on failure "errorMessage"; only 200 is success, and Firehose gives the
 * endpoint 3 minutes.
 */
#ifndef CW_API_FIREHOSE_H
#define CW_API_FIREHOSE_H

#include <stddef.h>
#include <stdint.h>

#include "cw.h"

#define API_FH_RECORDS_MAX 10000                 /* records in one request (1 or more) */
#define API_FH_RECORD_MAX ((size_t)1000 << 10)   /* one record's data, decoded: Firehose's 1,000 KiB */
#define API_FH_RECORD_B64_MAX ((API_FH_RECORD_MAX + 2) / 3 * 4)  /* the same in base64 */
#define API_FH_REQUEST_ID_MAX 128                /* Firehose's ids are GUIDs (36 characters) */
#define API_FH_ACCESS_KEY_MAX 4096               /* Firehose's bound on the access key header */
#define API_FH_LOG_REJECTS 5                     /* rejected records logged one by one per request */
#define API_FH_COUNT_HEADERS 6                   /* X-Credwatch-* counts on a 200 */
#define API_FH_DEPTH_MAX 16                      /* JSON nesting of an envelope (Firehose's is 3) */

/* Is s (n bytes) a request id we echo: 1-API_FH_REQUEST_ID_MAX characters of [A-Za-z0-9._:-]?
 * Firehose sends GUIDs; anything else (quotes, control bytes, 10 KB) is refused with 400 rather
 * than echoed into the answer and the log. */
int api_fh_request_id_ok(const char *s, size_t n);

/* The token in X-Amz-Firehose-Access-Key: the header verbatim (an access key configured on the
 * stream), or the value of "api_key" when the header is the JSON object Firehose's Secrets
 * Manager integration keeps, {"api_key":"<token>"} (AWS documents that form for the secret; the
 * specification does not say whether Firehose sends the object or its api_key, so both are taken).
 * Blanks around either are cut. Returns 1 with out set, 0 when header is NULL or blank, -1 when
 * it is over API_FH_ACCESS_KEY_MAX, or a JSON object without a string api_key that fits out. */
int api_fh_access_key(const char *header, char *out, size_t out_size);

/* Why a record (or a CloudWatch Logs log event) is dropped: the label set of
 * credwatch_firehose_records_rejected_total{reason}. */
enum api_fh_reason {
    API_FH_R_BASE64 = 0,     /* data is not standard base64 with padding */
    API_FH_R_TOO_LARGE,      /* over API_FH_RECORD_MAX decoded, or over the decoder's size caps */
    API_FH_R_GZIP_BOMB,      /* inflates past the decoder's ratio (DEC_DEFAULT_MAX_RATIO) */
    API_FH_R_GZIP,           /* a corrupt or truncated gzip stream */
    API_FH_R_CWLOGS,         /* a CloudWatch Logs message that is malformed (messageType, logEvents) */
    API_FH_R_NOT_CLOUDTRAIL, /* the decoder refused it: not JSON, not CloudTrail, a look-alike */
    API_FH_R_COUNT
};
const char *api_fh_reason_name(enum api_fh_reason r);

/* One request's envelope, as api_fh_envelope read it: the body's requestId and each record's data
 * (api_fh_data; a span of the body, which must outlive it, or of copies when yajl unescaped it). */
struct api_fh_span {
    const char *p;   /* in the body, or NULL: at off in copies */
    size_t off, len;
};
struct api_fh_env {
    char id[API_FH_REQUEST_ID_MAX + 1];
    size_t n;                 /* records (counted past API_FH_RECORDS_MAX, kept up to it) */
    struct api_fh_span *rec;
    struct cw_buf copies;
    int oom;                  /* out of memory: a transient fault, not the sender's */
};

/* Reads the body (plain JSON) as Firehose's envelope, with yajl's callbacks: no tree, the data
 * strings left where they are. header_id: X-Amz-Firehose-Request-Id, NULL when absent. Returns NULL
 * when it is a Firehose request (env->id, env->n records of 1-API_FH_RECORDS_MAX), else why not (a
 * static text, or m; env->oom when memory ran out), with env->id the body's id only when that is the
 * one to echo (else "": the caller echoes the header's). Free env with api_fh_env_free either way. */
const char *api_fh_envelope(const uint8_t *body, size_t len, const char *header_id, struct api_fh_env *env,
                            char *m, size_t size);
const char *api_fh_data(const struct api_fh_env *env, size_t i, size_t *len);
void api_fh_env_free(struct api_fh_env *env);

/* The answer's body, malloc'd: {"requestId":id,"timestamp":now_ms} and "errorMessage" unless
 * error_message is NULL, in that order. NULL when out of memory or error_message is not UTF-8. */
char *api_fh_answer(const char *id, int64_t now_ms, const char *error_message, size_t *len);

#endif
