/* sink_sign.h — the webhook signature, Stripe's scheme: the header
 *   Credwatch-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 * lets a receiver check who sent the body and refuse a replay older than its tolerance. */
#ifndef CW_SINK_SIGN_H
#define CW_SINK_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define SNK_HMAC_LEN 32                 /* SHA-256 */
#define SNK_SIG_MAX (24 + 4 + 2 * SNK_HMAC_LEN + 1)  /* "t=" digits ",v1=" hex NUL */

/* HMAC-SHA256 of the parts, concatenated, under key (OpenSSL's EVP_MAC). 0 or CW_ENOMEM. */
int snk_hmac_sha256(const void *key, size_t key_len, const void *const *parts, const size_t *lens, size_t n_parts,
                    unsigned char out[SNK_HMAC_LEN]);

/* "t=<t>,v1=<hex>" for body at unix time t. 0, CW_ENOMEM or CW_ENOSPC. */
int snk_sign(const char *secret, int64_t t, const char *body, size_t body_len, char *out, size_t size);

#endif
