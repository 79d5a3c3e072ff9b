/* api_firehose.c — POST /v1/ingest/firehose: Amazon Data Firehose's HTTP endpoint delivery, and
 * through it CloudWatch Logs subscriptions (api_firehose.h has the protocol).
 *
 * Status policy. Firehose treats only 200 as delivered and 413 as final, and retries anything else
 * with the same request id until the stream's retry duration runs out, then writes the request to
 * its S3 backup bucket. So:
 *   - a transient fault (the store unavailable, out of memory, admission control) is 503, never
 *     4xx: the retry succeeds, and the event ids make its repeats duplicates (exactly once);
 *   - a request that is no Firehose envelope at all (not JSON, no records array, 0 or more than
 *     API_FH_RECORDS_MAX records, a record without string data, an invalid requestId, a header id
 *     that is not the body's) is 400 with errorMessage: a healthy Firehose never sends one, so it
 *     is a misconfigured sender; the retries change nothing and the request ends in the backup
 *     bucket, where it can be read and replayed, instead of being dropped here in silence;
 *   - a missing or wrong access key is 401 (403 for a read token): retried, then backed up, so
 *     nothing is lost while the key is fixed;
 *   - a body over CREDWATCH_MAX_BODY_BYTES (or inflating past CREDWATCH_MAX_INFLATED_BYTES) is 413;
 *   - a record that can never be valid (bad base64, over API_FH_RECORD_MAX, a gzip bomb, not
 *     CloudTrail, a malformed CloudWatch Logs message, a log event that is not CloudTrail) does not
 *     fail the request: Firehose cannot resend part of a batch, so a non-200 would resend every good
 *     record with it until the retry duration ends and then send them all to S3, blinding detection
 *     for that long because of one record that no retry can mend. The rest is applied and the
 *     answer is 200; the bad record is counted (credwatch_firehose_records_rejected_total{reason})
 *     and logged (the first API_FH_LOG_REJECTS of a request one by one, then their number).
 * Every answer on this route, refusals of the headers included, is in Firehose's shape
 * (api_fh_answer; api_reply.c's api_fh_reply sends it, and api_reply_error hands it this route's
 * refusals). The counts Firehose ignores ride in X-Credwatch-* headers of a 200. The route's handler,
 * which decodes the records and applies them, is api_handlers.c's h_firehose; this file is the
 * protocol alone (no libmicrohttpd, no engine), so the unit tests reach all of it.
 */
#include "api_firehose.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cw.h"

static const char *const REASONS[API_FH_R_COUNT] = {
    [API_FH_R_BASE64] = "invalid_base64",   [API_FH_R_TOO_LARGE] = "too_large",
    [API_FH_R_GZIP_BOMB] = "gzip_bomb",     [API_FH_R_GZIP] = "invalid_gzip",
    [API_FH_R_CWLOGS] = "invalid_cwlogs",   [API_FH_R_NOT_CLOUDTRAIL] = "not_cloudtrail",
};

const char *api_fh_reason_name(enum api_fh_reason r)
{
    return (unsigned)r < API_FH_R_COUNT ? REASONS[r] : "unknown";
}

static int id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == '.' || c == ':';
}

int api_fh_request_id_ok(const char *s, size_t n)
{
    if (!s || n == 0 || n > API_FH_REQUEST_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!id_char((unsigned char)s[i]))
            return 0;
    return 1;
}

static int blank(char c) { return c == ' ' || c == '\t'; }

int api_fh_access_key(const char *header, char *out, size_t out_size)
{
    if (!header)
        return 0;
    size_t len = strnlen(header, API_FH_ACCESS_KEY_MAX + 1);
    if (len > API_FH_ACCESS_KEY_MAX)
        return -1;
    const char *s = header;
    while (len && blank(*s)) {
        s++;
        len--;
    }
    while (len && blank(s[len - 1]))
        len--;
    if (len == 0)
        return 0;
    if (s[0] != '{') {  /* the key as configured on the stream */
        if (len >= out_size)
            return -1;
        memcpy(out, s, len);
        out[len] = '\0';
        return 1;
    }
    json_t *doc = json_loadb(s, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *key = json_object_get(doc, "api_key");
    int rc = -1;
    if (json_is_string(key) && json_string_length(key) < out_size &&
        strlen(json_string_value(key)) == json_string_length(key)) {
        memcpy(out, json_string_value(key), json_string_length(key) + 1);
        rc = 1;
    }
    json_decref(doc);
    return rc;
}

/* ---- the envelope and the answer ---- */

const char *api_fh_envelope(json_t *doc, const char *header_id, char id[API_FH_REQUEST_ID_MAX + 1],
                            json_t **records, char *m, size_t size)
{
    id[0] = '\0';
    *records = NULL;
    if (!json_is_object(doc))
        return "the body is not a JSON object";
    json_t *jid = json_object_get(doc, "requestId");
    if (!json_is_string(jid) || !api_fh_request_id_ok(json_string_value(jid), json_string_length(jid)))
        return "requestId must be a string of 1-128 characters [A-Za-z0-9._:-]";
    if (header_id && strcmp(header_id, json_string_value(jid)) != 0)
        return "X-Amz-Firehose-Request-Id is not the body's requestId";  /* id stays "": the header's is echoed */
    memcpy(id, json_string_value(jid), json_string_length(jid) + 1);
    json_t *ts = json_object_get(doc, "timestamp");
    if (ts && !json_is_integer(ts))
        return "timestamp must be an integer (milliseconds since the epoch)";
    json_t *recs = json_object_get(doc, "records");
    size_t n = json_array_size(recs);
    if (!json_is_array(recs))
        return "records must be an array";
    if (n == 0 || n > API_FH_RECORDS_MAX) {
        snprintf(m, size, "records holds %zu records; 1-%d are accepted", n, API_FH_RECORDS_MAX);
        return m;
    }
    for (size_t i = 0; i < n; i++)
        if (!json_is_string(json_object_get(json_array_get(recs, i), "data"))) {
            snprintf(m, size, "records[%zu] is not an object with a string data", i);
            return m;
        }
    *records = recs;
    return NULL;
}

char *api_fh_answer(const char *id, int64_t now_ms, const char *error_message, size_t *len)
{
    json_t *doc = error_message ? json_pack("{s:s,s:I,s:s}", "requestId", id, "timestamp", (json_int_t)now_ms,
                                            "errorMessage", error_message)
                                : json_pack("{s:s,s:I}", "requestId", id, "timestamp", (json_int_t)now_ms);
    char *text = doc ? json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(doc);
    if (text)
        *len = strlen(text);
    return text;
}
