/* api_b64.c — see api_b64.h. */
#include "api_b64.h"

#include <pthread.h>

/* Decoding maps characters through a table per alphabet (value_of); encoding is only ever URL-safe. */
static const char URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int api_b64url_encode(const uint8_t *in, size_t n, char *out, size_t out_size)
{
    size_t need = n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
    if (need + 1 > out_size || need > (size_t)0x7fffffff)
        return -1;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = URL[v >> 18 & 63];
        out[o++] = URL[v >> 12 & 63];
        out[o++] = URL[v >> 6 & 63];
        out[o++] = URL[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = URL[v >> 18 & 63];
        out[o++] = URL[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = URL[v >> 18 & 63];
        out[o++] = URL[v >> 12 & 63];
        out[o++] = URL[v >> 6 & 63];
    }
    out[o] = '\0';
    return (int)o;
}

/* The value of one character in the chosen alphabet, or -1: a table per alphabet (Firehose
 * records are up to 1,000 KiB of base64 each, so this is on the ingest path). */
static signed char B64_STD[256], B64_URL[256];
static pthread_once_t b64_once = PTHREAD_ONCE_INIT;

static void b64_tables(void)
{
    for (int c = 0; c < 256; c++) {
        int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52 : -1;
        B64_STD[c] = (signed char)(c == '+' ? 62 : c == '/' ? 63 : v);
        B64_URL[c] = (signed char)(c == '-' ? 62 : c == '_' ? 63 : v);
    }
}

static int value_of(char c, const signed char *table)
{
    return table[(unsigned char)c];
}

int api_b64_decode(const char *in, size_t n, int url, uint8_t *out, size_t out_size)
{
    if (!url) {
        /* Standard form: a multiple of 4 with at most two '=' at the end. */
        if (n % 4)
            return -1;
        if (n && in[n - 1] == '=')
            n--;
        if (n && in[n - 1] == '=')
            n--;
    }
    if (n % 4 == 1)
        return -1;
    pthread_once(&b64_once, b64_tables);
    const signed char *table = url ? B64_URL : B64_STD;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = value_of(in[i], table);
        if (v < 0)
            return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= out_size)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* leftover bits must be zero: one encoding per value */
        return -1;
    if (o > 0x7fffffff)
        return -1;
    return (int)o;
}
