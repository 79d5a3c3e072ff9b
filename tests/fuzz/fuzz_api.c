/* fuzz_api.c — the API's pure parsers, which see attacker-controlled header and query text
 * before any token is checked: the pagination cursor, the credential headers, token lists,
 * RFC 3339 times, content types and encodings, base64, and the router.
 *
 * The first byte picks nothing: every parser sees every input (they are cheap), the input being
 * cut at its first NUL into a C string as libmicrohttpd would hand it over. Invariants: a cursor
 * that decodes re-encodes to the same text; a time that parses formats and parses back to the
 * same milliseconds; base64 that decodes re-encodes to the same text (one encoding per value);
 * outputs are NUL-terminated within their bounds.
 */
#include "fuzz_common.h"

#include "api_auth.h"
#include "api_b64.h"
#include "api_content.h"
#include "api_cursor.h"
#include "api_route.h"
#include "classify.h"
#include "cw.h"
#include "engine.h"

#define FZ_TEXT_MAX 4096     /* longest header value tried; libmicrohttpd's pool bounds real ones */
#define FZ_B64_OUT_MAX 3072  /* decoded bytes of FZ_TEXT_MAX characters, at most */

static char text[FZ_TEXT_MAX + 1];
static char half_a[FZ_TEXT_MAX + 1], half_b[FZ_TEXT_MAX + 1];

static void check_cursor(const char *s)
{
    int64_t ms = 0;
    char id[STORE_ID_MAX];
    if (api_cursor_decode(s, &ms, id) != 0)
        return;
    fz_check(strnlen(id, sizeof id) < sizeof id, "cursor id not terminated");
    fz_check(api_finding_id_valid(id), "a cursor decoded to an invalid id");
    char again[API_CURSOR_MAX];
    fz_check(api_cursor_encode(ms, id, again, sizeof again) == 0, "a decoded cursor does not encode");
    fz_check(strcmp(again, s) == 0, "cursor encoding is not unique");
}

static void check_time(const char *s)
{
    int64_t ms = 0;
    if (cw_time_parse(s, 0, &ms) != 0)
        return;
    char out[CW_TIME_MAX];
    if (cw_time_format(ms, 1, out, sizeof out) != 0)
        return;  /* parseable but not representable (year beyond 9999 & co.): refused elsewhere */
    int64_t back = 0;
    fz_check(cw_time_parse(out, 0, &back) == 0, "a formatted time does not parse");
    fz_check(back == ms, "time format/parse does not round-trip");
}

static void check_b64(const char *s, size_t n)
{
    static uint8_t bin[FZ_B64_OUT_MAX];
    static char again[FZ_TEXT_MAX + 1];
    int m = api_b64_decode(s, n, 1, bin, sizeof bin);
    if (m >= 0) {
        fz_check(api_b64url_encode(bin, (size_t)m, again, sizeof again) == (int)n, "base64url length differs");
        fz_check(memcmp(again, s, n) == 0, "base64url encoding is not unique");
    }
    (void)api_b64_decode(s, n, 0, bin, sizeof bin);
}

static void check_auth(const char *a, const char *b)
{
    char cred[API_TOKEN_MAX];
    int r = api_auth_credential(a, b, cred, sizeof cred);
    fz_check(r >= -1 && r <= 1, "credential result out of range");
    if (r == 1)
        fz_check(strnlen(cred, sizeof cred) < sizeof cred, "credential not terminated");
    (void)api_auth_credential(a, NULL, cred, sizeof cred);
    (void)api_auth_credential(NULL, a, cred, sizeof cred);

    static struct api_tokens ingest, read;
    char msg[256];
    if (api_tokens_parse(a, &ingest, msg, sizeof msg) == 0) {
        fz_check(ingest.n <= API_TOKENS_MAX, "too many tokens");
        for (size_t i = 0; i < ingest.n; i++)
            fz_check(ingest.len[i] >= API_TOKEN_MIN && ingest.len[i] < API_TOKEN_MAX, "token length out of bounds");
    } else {
        memset(&ingest, 0, sizeof ingest);
    }
    memset(&read, 0, sizeof read);
    int d = api_auth_check(&ingest, &read, API_ROLE_INGEST, b, NULL);
    fz_check(d <= 0 && d >= CW_EFORBIDDEN, "auth decision out of range");
}

static void check_route(const char *s)
{
    static const char *methods[] = { "GET", "POST", "PATCH", "DELETE", "HEAD" };
    struct api_match m;
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        int r = api_route_match(methods[i], s, &m);
        fz_check(r == API_ROUTE_OK || r == API_ROUTE_NOT_FOUND || r == API_ROUTE_BAD_METHOD, "route result");
        fz_check(strnlen(m.param, sizeof m.param) < sizeof m.param, "route param not terminated");
        fz_check(r != API_ROUTE_OK || m.route != NULL, "a matched route without a route");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FZ_TEXT_MAX)
        size = FZ_TEXT_MAX;
    memcpy(text, data, size);
    text[size] = 0;
    size_t n = strlen(text);

    /* Two header values from one input: split at the first '\n' (absent: the second is empty). */
    const char *nl = memchr(text, '\n', n);
    size_t la = nl ? (size_t)(nl - text) : n;
    memcpy(half_a, text, la);
    half_a[la] = 0;
    snprintf(half_b, sizeof half_b, "%s", nl ? nl + 1 : "");

    check_cursor(text);
    (void)api_finding_id_valid(text);
    (void)cls_akid_valid(text);
    check_time(text);
    check_b64(text, n);
    check_auth(half_a, half_b);
    check_route(text);
    (void)api_content_type_ingest(text);
    (void)api_content_type_json(text);
    (void)api_content_encoding(text);
    return 0;
}
