/* classify.h — what one CloudTrail record means: its raw fields, as the parser captured them, to a
 * normalised ev_event (an issuance, a use, or a record the detector ignores), or the reason the
 * record is skipped. Knows no JSON: decode.c fills a cls_rec per record and calls cls_event; nothing
 * here calls back into the parser.
 */
#ifndef CW_CLASSIFY_H
#define CW_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"

/* The fields read, each named by its path in the record. 0 is "no field" (the parser's trie). */
enum cls_field {
    CLS_F_NONE = 0,
    CLS_F_EVENT_ID, CLS_F_EVENT_TIME, CLS_F_EVENT_SOURCE, CLS_F_EVENT_NAME, CLS_F_REGION,
    CLS_F_SOURCE_IP, CLS_F_USER_AGENT, CLS_F_ERROR_CODE, CLS_F_EVENT_TYPE, CLS_F_EVENT_CATEGORY,
    CLS_F_RECIPIENT, CLS_F_VPCE_ID, CLS_F_VPCE_ACCOUNT,
    CLS_F_UI_TYPE, CLS_F_UI_AKID, CLS_F_UI_ARN, CLS_F_UI_ACCOUNT, CLS_F_UI_INVOKED_BY,
    CLS_F_UI_ISSUER_ARN, CLS_F_UI_CREATED,
    CLS_F_RP_ROLE_ARN, CLS_F_RP_SESSION, CLS_F_RP_FUNCTION_ARN, CLS_F_RE_AKID, CLS_F_RE_EXPIRATION,
    CLS_F_AED_AUTH,
    CLS_F_UI_USER_NAME, CLS_F_UI_PROVIDER, CLS_F_UI_EC2_DELIVERY, CLS_F_RE_SUBJECT,
    CLS_F_COUNT
};

#define CLS_VALUE_MAX 512  /* bytes kept of one value, NUL included: the longest cls_field_max + 1 */
#define CLS_WHY_MAX 128    /* a skip reason built from a field's name or value */

/* One record as the parser captured it; reset per record, no allocation. A value over its
 * cls_field_max is kept cut when cls_field_cuttable, else only marked too long: it is an error
 * only where the record's kind needs the field (cls_event decides). */
struct cls_rec {
    char val[CLS_F_COUNT][CLS_VALUE_MAX];
    unsigned short len[CLS_F_COUNT];     /* strlen(val[f]) wherever set[f]: cls_event copies by it */
    unsigned char set[CLS_F_COUNT];      /* a string value was kept */
    unsigned char toolong[CLS_F_COUNT];
    const char *error;        /* the parser's first reason the record is malformed, or NULL */
    const char *detail_type;  /* the EventBridge detail-type it came in, or NULL (no wrapper) */
};

const char *cls_field_name(enum cls_field f);  /* "userIdentity.accessKeyId", for messages */
size_t cls_field_max(enum cls_field f);        /* longest value kept, NUL excluded */
int cls_field_cuttable(enum cls_field f);      /* a longer value is cut: evidence only */

/* The same two facts as a table, for the parser's per-value path: a table read where two calls
 * into another object file cost more than the test itself. */
struct cls_field_bound {
    unsigned short max;      /* cls_field_max */
    unsigned char cuttable;  /* cls_field_cuttable */
};
extern const struct cls_field_bound cls_field_bounds[CLS_F_COUNT];

/* Builds *ev from the record. Returns NULL, or the reason the record is skipped (a constant, the
 * record's error, or a text in why[CLS_WHY_MAX]); *ev is then not filled. */
const char *cls_event(const struct cls_rec *r, struct ev_event *ev, char *why);

/* An access key id as AWS writes them: 16 to EV_AKID_MAX - 1 upper-case letters and digits. The one
 * check, for records (classify.c) and for the API's path parameter (GET /v1/keys/{id}). 1 or 0. */
int cls_akid_valid(const char *s);

/* CloudTrail's times, in seconds since the epoch: an RFC 3339 eventTime (cw_time_parse's
 * CW_TIME_CLOUDTRAIL reading, from 1970 on), and AssumeRole's expiration, written
 * "Mar 13, 2024, 8:33:21 PM" or "Aug 26, 2019 11:15:26 PM" (UTC) or as an eventTime.
 * Return 0 and set *out, or CW_EINVAL (-1). */
int cls_parse_time(const char *s, int64_t *out);
int cls_parse_expiration(const char *s, int64_t *out);

#endif
