/* sink_sign.c — HMAC-SHA256 webhook signatures over "<t>.<body>" (sink_sign.h). */
#include "sink_sign.h"

#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "cw.h"

int snk_hmac_sha256(const void *key, size_t key_len, const void *const *parts, const size_t *lens, size_t n_parts,
                    unsigned char out[SNK_HMAC_LEN])
{
    int rc = CW_ENOMEM;
    size_t out_len = 0;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                            OSSL_PARAM_construct_end() };
    /* EVP_MAC_init refuses a NULL key even of length 0 (RFC 4231 allows any length) */
    static const unsigned char empty[1];
    if (!ctx || !EVP_MAC_init(ctx, key_len ? key : empty, key_len, params))
        goto out;
    for (size_t i = 0; i < n_parts; i++)
        if (lens[i] && !EVP_MAC_update(ctx, parts[i], lens[i]))
            goto out;
    if (!EVP_MAC_final(ctx, out, &out_len, SNK_HMAC_LEN) || out_len != SNK_HMAC_LEN)
        goto out;
    rc = 0;
out:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

int snk_sign(const char *secret, int64_t t, const char *body, size_t body_len, char *out, size_t size)
{
    char ts[24];
    unsigned char mac[SNK_HMAC_LEN];
    int tn = snprintf(ts, sizeof ts, "%lld.", (long long)t);
    const void *parts[] = { ts, body };
    const size_t lens[] = { (size_t)tn, body_len };
    int rc = snk_hmac_sha256(secret, strlen(secret), parts, lens, 2, mac);
    if (rc)
        return rc;
    int n = snprintf(out, size, "t=%lld,v1=", (long long)t);
    if (n < 0 || (size_t)n + 2 * SNK_HMAC_LEN >= size)
        return CW_ENOSPC;
    for (size_t i = 0; i < SNK_HMAC_LEN; i++)
        snprintf(out + n + 2 * i, 3, "%02x", mac[i]);
    return 0;
}
