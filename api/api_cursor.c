/* api_cursor.c — see api_cursor.h. */
#include "api_cursor.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api_b64.h"

#define API_CURSOR_RAW_MAX 96  /* decoded bound: 20 + 1 + STORE_ID_MAX - 1, rounded up */

static int id_char_ok(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '/' && c != '%' && c != '"' && c != '\\' && c != '?' && c != '#';
}

int api_finding_id_valid(const char *id)
{
    size_t len = strnlen(id, STORE_ID_MAX);
    if (len == 0 || len >= STORE_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!id_char_ok((unsigned char)id[i]))
            return 0;
    return 1;
}

int api_cursor_encode(int64_t created_ms, const char *id, char *out, size_t out_size)
{
    if (created_ms < 0 || !api_finding_id_valid(id))
        return -1;
    char raw[API_CURSOR_RAW_MAX];
    int n = snprintf(raw, sizeof raw, "%" PRId64 ":%s", created_ms, id);
    if (n <= 0 || (size_t)n >= sizeof raw)
        return -1;
    return api_b64url_encode((const uint8_t *)raw, (size_t)n, out, out_size) < 0 ? -1 : 0;
}

int api_cursor_decode(const char *cursor, int64_t *created_ms, char id[STORE_ID_MAX])
{
    size_t len = strnlen(cursor, API_CURSOR_MAX);
    if (len == 0 || len >= API_CURSOR_MAX)
        return -1;
    uint8_t raw[API_CURSOR_RAW_MAX + 1];
    int n = api_b64_decode(cursor, len, 1, raw, sizeof raw - 1);
    if (n <= 0)
        return -1;
    raw[n] = '\0';
    if (memchr(raw, '\0', (size_t)n))
        return -1;
    /* Decimal milliseconds without sign or leading zeros (canonical), then ':' and the id. */
    const char *p = (const char *)raw;
    int64_t v = 0;
    size_t nd = 0;
    while (p[nd] >= '0' && p[nd] <= '9') {
        if (nd >= 18) /* 18 digits already pass the year 30000 */
            return -1;
        v = v * 10 + (p[nd] - '0');
        nd++;
    }
    if (nd == 0 || (nd > 1 && p[0] == '0') || p[nd] != ':')
        return -1;
    const char *idp = p + nd + 1;
    if (!api_finding_id_valid(idp))
        return -1;
    *created_ms = v;
    size_t idlen = strlen(idp);
    memcpy(id, idp, idlen + 1);
    return 0;
}
