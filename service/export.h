/* export.h — a finding document (render.c's rnd_finding) in the formats other tools import:
 * an OCSF 1.8.0 Detection Finding (class 2004) or an AWS Security Hub ASFF finding (2018-10-08).
 *
 * Pure: no clock, no I/O. The input is the document as credwatch stores and serves it; what a
 * CloudTrail record put in it (function name, user agent, addresses) is carried as data only and
 * cut on a UTF-8 character boundary where a limit applies, never used to choose an id or a status.
 */
#ifndef CW_EXPORT_H
#define CW_EXPORT_H

#include <stddef.h>

enum exp_format { EXP_CREDWATCH = 0, EXP_OCSF, EXP_ASFF };

#define EXP_FORMAT_NAMES "credwatch, ocsf, asff"  /* for messages that name the accepted values */

/* The format named s ("credwatch", "ocsf", "asff"), or -1. */
int exp_format_parse(const char *s);

struct exp_opts {
    const char *asff_product_arn;  /* NULL: arn:<partition>:securityhub:<region>:<account>:product/<account>/default */
    const char *product_version;   /* OCSF metadata.product.version; NULL: this build's (CW_VERSION) */
};

/* The finding document doc (a JSON object) in format fmt, as compact JSON (ASCII, one line) in
 * *out (malloc'd; the caller frees). EXP_CREDWATCH gives a copy of doc. opts may be NULL.
 * Returns 0, CW_EINVAL (unknown fmt), CW_EJSON (doc is not a JSON object), CW_EFORMAT (a field
 * the format needs is missing or invalid: id, access_key_id, severity, status, created_at,
 * updated_at; for ASFF also a 12-digit account_id, and region unless a product ARN is given)
 * or CW_ENOMEM. *out is NULL on failure. */
int exp_convert(const char *doc, int fmt, const struct exp_opts *opts, char **out);

/* The length of the longest prefix of s[0..len) that is at most max bytes and ends on a UTF-8
 * character boundary (s is valid UTF-8). */
size_t exp_utf8_cut(const char *s, size_t len, size_t max);

#endif
