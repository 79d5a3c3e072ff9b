/* api_content.c — see api_content.h. */
#include "api_content.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Does the media type (before any ';', blanks trimmed) equal one of names? */
static int media_type_in(const char *ct, const char *const *names, size_t n)
{
    if (!ct)
        return 0;
    while (is_blank(*ct))
        ct++;
    size_t len = strcspn(ct, ";");
    while (len && is_blank(ct[len - 1]))
        len--;
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) == len && strncasecmp(ct, names[i], len) == 0)
            return 1;
    return 0;
}

int api_content_type_ingest(const char *content_type)
{
    static const char *const ok[] = {"application/json", "application/x-ndjson", "application/gzip",
                                     "application/octet-stream"};
    return media_type_in(content_type, ok, sizeof ok / sizeof ok[0]);
}

int api_content_type_json(const char *content_type)
{
    static const char *const ok[] = {"application/json"};
    return media_type_in(content_type, ok, 1);
}

int api_content_encoding(const char *ce)
{
    if (!ce)
        return API_ENC_IDENTITY;
    while (is_blank(*ce))
        ce++;
    size_t len = strlen(ce);
    while (len && is_blank(ce[len - 1]))
        len--;
    if (len == 0 || (len == 8 && strncasecmp(ce, "identity", 8) == 0))
        return API_ENC_IDENTITY;
    if ((len == 4 && strncasecmp(ce, "gzip", 4) == 0) || (len == 6 && strncasecmp(ce, "x-gzip", 6) == 0))
        return API_ENC_GZIP;
    return API_ENC_UNSUPPORTED;
}
