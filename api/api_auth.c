/* api_auth.c — see api_auth.h. */
#include "api_auth.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api_b64.h"
#include "cw.h"

/* A Basic credential decodes to "user:token"; user names are short in practice. */
#define API_BASIC_DECODED_MAX (2 * API_TOKEN_MAX)
#define API_BASIC_ENCODED_MAX ((API_BASIC_DECODED_MAX + 2) / 3 * 4)

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Tokens travel in headers: printable ASCII without blanks, commas or quotes keeps every
 * transport (Bearer, X-Api-Key, Basic password) able to carry them unchanged. */
static int token_char_ok(unsigned char c) { return c > 0x20 && c < 0x7f && c != ',' && c != '"'; }

int api_tokens_parse(const char *csv, struct api_tokens *out, char *msg, size_t msg_size)
{
    memset(out, 0, sizeof *out);
    const char *p = cw_csv_begin(csv), *start;
    size_t len;
    while (cw_csv_next(&p, &start, &len)) {
        if (len == 0) {
            snprintf(msg, msg_size, "empty token in the list");
            return -1;
        }
        if (out->n == API_TOKENS_MAX) {
            snprintf(msg, msg_size, "more than %d tokens", API_TOKENS_MAX);
            return -1;
        }
        if (len < API_TOKEN_MIN || len >= API_TOKEN_MAX) {
            snprintf(msg, msg_size, "token %zu is %zu bytes; tokens must be %d to %d bytes", out->n + 1, len,
                     API_TOKEN_MIN, API_TOKEN_MAX - 1);
            return -1;
        }
        for (size_t i = 0; i < len; i++) {
            if (!token_char_ok((unsigned char)start[i])) {
                snprintf(msg, msg_size, "token %zu has a character that is not printable ASCII "
                         "(blanks, commas and quotes are refused)", out->n + 1);
                return -1;
            }
        }
        memcpy(out->tok[out->n], start, len);
        out->len[out->n] = len;
        out->n++;
    }
    return 0;
}

/* Copies a credential of len bytes into out (NUL-terminated) if it fits and is well formed. */
static int take(const char *s, size_t len, char *out, size_t out_size)
{
    if (len == 0 || len >= out_size || len >= API_TOKEN_MAX)
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!token_char_ok((unsigned char)s[i]))
            return -1;
    memcpy(out, s, len);
    out[len] = '\0';
    return 1;
}

/* Trims blanks on both sides of [*s, *s + *len). */
static void trim(const char **s, size_t *len)
{
    while (*len && is_blank(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && is_blank((*s)[*len - 1]))
        (*len)--;
}

int api_auth_credential(const char *authorization, const char *api_key, char *out, size_t out_size)
{
    if (authorization) {
        const char *s = authorization;
        size_t len = strlen(s);
        trim(&s, &len);
        size_t scheme = 0;
        while (scheme < len && !is_blank(s[scheme]))
            scheme++;
        const char *arg = s + scheme;
        size_t arg_len = len - scheme;
        trim(&arg, &arg_len);
        if (scheme == 6 && strncasecmp(s, "Bearer", 6) == 0)
            return take(arg, arg_len, out, out_size);
        if (scheme == 5 && strncasecmp(s, "Basic", 5) == 0) {
            if (arg_len == 0 || arg_len > API_BASIC_ENCODED_MAX)
                return -1;
            uint8_t dec[API_BASIC_DECODED_MAX];
            int n = api_b64_decode(arg, arg_len, 0, dec, sizeof dec);
            if (n < 0)
                return -1;
            const uint8_t *colon = memchr(dec, ':', (size_t)n);
            if (!colon)
                return -1;
            size_t off = (size_t)(colon - dec) + 1;
            return take((const char *)dec + off, (size_t)n - off, out, out_size);
        }
        return -1; /* another scheme (Digest, Negotiate...) is not ours */
    }
    if (api_key) {
        const char *s = api_key;
        size_t len = strlen(s);
        trim(&s, &len);
        return take(s, len, out, out_size);
    }
    return 0;
}

int api_ct_equal(const char a[API_TOKEN_MAX], size_t alen, const char b[API_TOKEN_MAX], size_t blen)
{
    /* volatile keeps the compiler from turning the loop into an early-exit memcmp. */
    volatile unsigned char diff = 0;
    for (size_t i = 0; i < API_TOKEN_MAX; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    size_t dl = alen ^ blen;
    for (size_t i = 0; i < sizeof dl; i++)
        diff |= (unsigned char)(dl >> (8 * i));
    return diff == 0;
}

int api_tokens_match(const struct api_tokens *t, const char *cred)
{
    char padded[API_TOKEN_MAX];
    memset(padded, 0, sizeof padded);
    size_t len = strnlen(cred, API_TOKEN_MAX);
    if (len >= API_TOKEN_MAX)
        return 0;
    memcpy(padded, cred, len);
    int found = 0;
    for (size_t i = 0; i < t->n && i < API_TOKENS_MAX; i++)
        found |= api_ct_equal(t->tok[i], t->len[i], padded, len);
    return found;
}

int api_auth_check(const struct api_tokens *ingest, const struct api_tokens *read, enum api_role role,
                   const char *authorization, const char *api_key)
{
    const struct api_tokens *mine = role == API_ROLE_INGEST ? ingest : read;
    const struct api_tokens *other = role == API_ROLE_INGEST ? read : ingest;
    if (role == API_ROLE_NONE || mine->n == 0)
        return CW_OK; /* an open role: allowed only where api_config permits it */
    char cred[API_TOKEN_MAX];
    int rc = api_auth_credential(authorization, api_key, cred, sizeof cred);
    if (rc == 0)
        return CW_ENOCRED;
    if (rc < 0)
        return CW_EBADCRED;
    int ok = api_tokens_match(mine, cred);
    int wrong_role = api_tokens_match(other, cred);
    memset(cred, 0, sizeof cred);
    if (ok)
        return CW_OK;
    return wrong_role ? CW_EFORBIDDEN : CW_EBADCRED;
}
