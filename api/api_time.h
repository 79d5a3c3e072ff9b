/* api_time.h — RFC 3339 timestamps as the API shows and accepts them, and the two clocks. */
#ifndef CW_API_TIME_H
#define CW_API_TIME_H

#include <stddef.h>
#include <stdint.h>

#define API_TIME_MAX 32  /* "2024-03-13T08:33:21.000Z" is 24 bytes; room for years > 9999 */

/* Formats milliseconds since the epoch as UTC with milliseconds, e.g. 2024-03-13T08:33:21.000Z.
 * Returns 0, or -1 when the time cannot be represented or size is too small. */
int api_time_format(int64_t ms, char *out, size_t size);

/* Parses RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM); 't' and 'z' are
 * accepted in lower case. Fractions beyond milliseconds are truncated. Returns 0, or -1. */
int api_time_parse(const char *s, int64_t *ms);

int64_t api_now_ms(void);  /* wall clock */
double api_mono_s(void);   /* monotonic seconds, for durations */

#endif
