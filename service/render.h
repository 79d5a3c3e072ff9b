/* render.h — the JSON documents credwatch shows: findings and key context.
 *
 * One place decides every field name, so `scan` output, the API and openapi/ stay the same.
 * All functions return a malloc'd NUL-terminated string (free with free) or NULL when out of memory.
 */
#ifndef CW_RENDER_H
#define CW_RENDER_H

#include <stddef.h>
#include <stdint.h>

#include "detect.h"
#include "store.h"

/* The finding's evidence (every field but status, note, created_at, updated_at). */
char *rnd_evidence(const struct det_key *k, const struct det_verdict *v, const char *finding_id);

/* The full finding: the stored evidence plus status, note, created_at, updated_at. NULL when out
 * of memory or when the stored evidence is not a JSON object (a corrupt record). */
char *rnd_finding(const struct store_finding *f);

/* The severity a finding document or its evidence shows (enum det_severity), or -1, without parsing
 * it: the first "severity" member is the field itself (see render.c). For the hot paths that only
 * need this one field (the engine's severity floor, a sink's minimum severity). */
int rnd_severity_of(const char *json);

/* GET /v1/keys/{id}: the key's context. finding_id NULL when the key has no finding. */
char *rnd_key_context(const struct det_key *k, const struct det_verdict *v, const char *finding_id);

#endif
