/* api_b64.h — base64 (RFC 4648): the standard alphabet for HTTP Basic credentials, the URL-safe
 * alphabet without padding for pagination cursors. Pure functions, no allocation. */
#ifndef CW_API_B64_H
#define CW_API_B64_H

#include <stddef.h>
#include <stdint.h>

/* Encodes n bytes with the URL-safe alphabet, no padding, NUL-terminated. Returns the length
 * written (without the NUL), or -1 when out_size is too small. */
int api_b64url_encode(const uint8_t *in, size_t n, char *out, size_t out_size);

/* Decodes n characters. url = 1: URL-safe alphabet, padding refused; url = 0: standard alphabet,
 * padding required to a multiple of 4. Any other character, or non-zero bits left over in the
 * last character, is an error (so every value has exactly one encoding). Returns the number of
 * bytes written, or -1. */
int api_b64_decode(const char *in, size_t n, int url, uint8_t *out, size_t out_size);

#endif
