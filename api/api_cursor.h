/* api_cursor.h — the opaque pagination cursor of GET /v1/findings: base64url (no padding) of
 * "<created_ms>:<id>", the position of the last finding of a page (findings are ordered newest
 * first by created_at, then by id). Clients must treat it as opaque; the format may change. */
#ifndef CW_API_CURSOR_H
#define CW_API_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define API_CURSOR_MAX 128  /* encoded length bound, NUL included: 20 digits + ':' + 63-byte id */

/* Is this a well-formed finding id (as a path parameter or inside a cursor)? Printable ASCII
 * without '/', '%', blanks or quotes, 1 to STORE_ID_MAX - 1 bytes. */
int api_finding_id_valid(const char *id);

/* Returns 0, or -1 when the id is invalid or out is too small. */
int api_cursor_encode(int64_t created_ms, const char *id, char *out, size_t out_size);

/* Returns 0, or -1 for anything that api_cursor_encode could not have produced. */
int api_cursor_decode(const char *cursor, int64_t *created_ms, char id[STORE_ID_MAX]);

#endif
