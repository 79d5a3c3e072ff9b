/* api_log.h — one JSON object per line on stderr: {"ts","level","msg", ...fields}. */
#ifndef CW_API_LOG_H
#define CW_API_LOG_H

#include <jansson.h>

/* Writes one line. fields (may be NULL) is a JSON object whose members are added; the
 * reference is stolen. Lines from concurrent threads never interleave. */
void api_log(const char *level, const char *msg, json_t *fields);

#endif
