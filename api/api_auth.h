/* api_auth.h — who may call what: token lists per role, credential extraction, constant-time
 * comparison. Pure: takes header values as strings, knows nothing of libmicrohttpd.
 *
 * Roles: an ingest token may POST to /v1/ingest/{cloudtrail,eventbridge}; a read token may GET findings and keys and
 * PATCH findings (SOC analysts triage: changing a finding's status is part of reading the queue,
 * and a forwarder's ingest token must never be able to silence a finding). A role with no token
 * configured is open; api_config refuses an open role on a non-loopback address unless
 * CREDWATCH_ALLOW_UNAUTHENTICATED=1.
 */
#ifndef CW_API_AUTH_H
#define CW_API_AUTH_H

#include <stddef.h>

#include "cw.h"

#define API_TOKENS_MAX 16   /* tokens per role */
#define API_TOKEN_MAX 256   /* bytes per token buffer, NUL included: tokens are at most 255 bytes */
#define API_TOKEN_MIN 16    /* shorter tokens are refused at start: guessable */

enum api_role { API_ROLE_NONE = 0, API_ROLE_INGEST, API_ROLE_READ };

/* Tokens are kept zero-padded to API_TOKEN_MAX so a comparison always reads the same bytes. */
struct api_tokens {
    size_t n;
    size_t len[API_TOKENS_MAX];
    char tok[API_TOKENS_MAX][API_TOKEN_MAX];
};

/* Parses a comma-separated list (blanks around items ignored, empty items refused). Returns 0,
 * or -1 with msg set (a token too short, too long, with a control character or a blank, or too
 * many). A NULL or empty csv gives an empty list. */
int api_tokens_parse(const char *csv, struct api_tokens *out, char *msg, size_t msg_size);

/* Extracts the presented credential: `Authorization: Bearer X`, `Authorization: Basic
 * base64(user:X)` (the password is the token, the user name is ignored) or `X-Api-Key: X`, the
 * Authorization header first. Either header may be NULL. Returns 1 with out set, 0 when none
 * was presented, -1 when a header is present but malformed or too long. */
int api_auth_credential(const char *authorization, const char *api_key, char *out, size_t out_size);

/* Compares two zero-padded API_TOKEN_MAX buffers and their lengths in time independent of
 * their contents. Returns 1 when equal. */
int api_ct_equal(const char a[API_TOKEN_MAX], size_t alen, const char b[API_TOKEN_MAX], size_t blen);

/* Is cred one of the list's tokens? Compares with every token (no early exit). */
int api_tokens_match(const struct api_tokens *t, const char *cred);

/* The decision for one request needing `role`, given the two lists and the headers: CW_OK,
 * CW_ENOCRED (nothing presented: 401), CW_EBADCRED (an unknown token or a malformed header: 401)
 * or CW_EFORBIDDEN (a valid token of the other role: 403). */
int api_auth_check(const struct api_tokens *ingest, const struct api_tokens *read, enum api_role role,
                   const char *authorization, const char *api_key);

#endif
