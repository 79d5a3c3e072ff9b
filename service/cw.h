/* cw.h — what every module shares: the one error space, RFC 3339 time, the clocks, and bounded
 * growth of arrays and byte buffers. Nothing here knows of events, stores or HTTP, so any file may
 * include it without creating an arrow that points up (in the spirit of libuv's uv-common). */
#ifndef CW_CW_H
#define CW_CW_H

#include <stddef.h>
#include <stdint.h>

#define CW_VERSION "0.1.0"  /* credwatch's release: `credwatch --version`, OCSF metadata.product.version */

/* ---- errors ---------------------------------------------------------------------------------
 * Every function that can fail returns 0 or one of these (negative), as libuv's UV_E* or
 * hiredis's REDIS_ERR_*. Where a caller needs more than the class of the failure, the function
 * also fills a message buffer naming the field, byte or variable at fault; cw_strerror gives the
 * class in words for logs. The values are part of no protocol: compare with the names.
 * CW_EINVAL is -1 on purpose: a small static parser or predicate that says "returns -1" returns the
 * same value, so a caller can pass it on without translating. */
enum cw_err {
    CW_OK = 0,
    CW_EINVAL = -1,     /* a bad argument or malformed value, or a call in the wrong state */
    CW_ENOMEM = -2,
    CW_EIO = -3,        /* a file cannot be opened or read */
    CW_EFORMAT = -4,    /* a file that is not of the expected shape; the message names where */
    CW_ETOOBIG = -5,    /* over a named bound (size, count, ratio): 413 at the API */
    CW_ENOSPC = -6,     /* an output buffer too small (output truncated, still NUL-terminated) */
    CW_EJSON = -7,      /* malformed JSON; the message names the byte offset */
    CW_EGZIP = -8,      /* a corrupt gzip stream */
    CW_EREFUSED = -9,   /* a look-alike of CloudTrail (S3 notification, SNS, digest) or an unknown shape */
    CW_EDEPTH = -10,    /* JSON nested deeper than the decoder's bound */
    CW_EABORT = -11,    /* a callback asked to stop */
    CW_EINPUT = -12,    /* an ingest input that will never be valid: 400, the message says why */
    CW_EUNAVAIL = -13,  /* the store cannot answer now (down, contention, out of memory): 503, retry */
    CW_ENOTFOUND = -14,
    CW_ECONFIG = -15,   /* a setting or flag out of range: exit 2, the message names it */
    CW_ENOCRED = -16,   /* no credentials presented: 401 */
    CW_EBADCRED = -17,  /* an unknown token or a malformed credential header: 401 */
    CW_EFORBIDDEN = -18 /* a valid token of the other role: 403 */
};
#define CW_ERR_LAST CW_EFORBIDDEN

/* The class of err in words ("store unavailable"); "unknown error" for a value not above. */
const char *cw_strerror(int err);

/* ---- time -----------------------------------------------------------------------------------
 * One parser and one formatter of RFC 3339 for the decoders, the renderer and the API. */
#define CW_TIME_MAX 32  /* "2024-03-13T08:33:21.000Z" is 24 bytes; room to spare */

/* Parse flags. The API takes RFC 3339 as written (flags 0). CloudTrail's own fields are read as
 * exports write them (CW_TIME_CLOUDTRAIL): a space for 'T' and no zone, as panther-analysis'
 * samples do; CloudTrail is UTC, so an offset other than +00:00 is refused rather than trusted. */
#define CW_TIME_SPACE 1u   /* accept ' ' between date and time */
#define CW_TIME_NOZONE 2u  /* accept a missing zone, read as UTC */
#define CW_TIME_UTC 4u     /* refuse offsets other than Z and +00:00 */
#define CW_TIME_CLOUDTRAIL (CW_TIME_SPACE | CW_TIME_NOZONE | CW_TIME_UTC)

/* Parses YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM) ('t' and 'z' in lower case too) into
 * milliseconds since the epoch, UTC. The fraction is at most nine digits (nanoseconds, the most
 * any producer writes; more is refused rather than read without end) and is truncated to
 * milliseconds; a leap second (:60) is the first instant of the next minute. Years 0000-9999.
 * Returns 0 or CW_EINVAL. */
int cw_time_parse(const char *s, unsigned flags, int64_t *ms);

/* Seconds since the epoch of a civil date and time, UTC, checked (months, days of the month, Feb 29
 * only in leap years, hours 0-23, minutes 0-59, seconds 0-60). Years 0-9999. 0 or CW_EINVAL. */
int cw_time_civil(int y, int mo, int d, int h, int mi, int s, int64_t *secs);

/* Formats milliseconds since the epoch as 2024-03-13T08:33:21.000Z (with_ms) or
 * 2024-03-13T08:33:21Z. Returns 0, or CW_EINVAL when the year is outside 0000-9999 or size is
 * too small (out is then "", or the epoch when size allows it: a caller that prints without
 * checking prints a valid time). */
int cw_time_format(int64_t ms, int with_ms, char *out, size_t size);

int64_t cw_now_ms(void);  /* wall clock, milliseconds since the epoch */
double cw_mono_s(void);   /* monotonic seconds, for durations and deadlines */
int64_t cw_mono_ms(void); /* monotonic milliseconds */

/* ---- bounded growth -------------------------------------------------------------------------
 * The one doubling rule, in the spirit of curl's dynbuf: an array grows to hold `need` elements,
 * doubling from `initial`, never past `max` elements (a named bound of the caller), with the
 * multiplications checked. On failure the array and *cap are unchanged. Returns 0, CW_ETOOBIG
 * when need > max, or CW_ENOMEM. */
/* Comma-separated lists of the settings (tokens, origins). cw_csv_begin: csv, or NULL when it is
 * NULL or only blanks (an empty list). cw_csv_next: the next item of *p with the blanks (space,
 * tab) around it cut, as *item and *len (0: an empty item, e.g. after a stray comma); moves *p past
 * it and its comma, to NULL after the last. Returns 1 while there is an item, 0 once *p is NULL. */
const char *cw_csv_begin(const char *csv);
int cw_csv_next(const char **p, const char **item, size_t *len);

int cw_grow(void **array, size_t *cap, size_t need, size_t elem_size, size_t initial, size_t max);
/* The capacity cw_grow would give (cap itself when need fits; 0 when need > max), for a caller that
 * must account for the memory before taking it (the API's in-flight byte budget). */
size_t cw_grow_target(size_t cap, size_t need, size_t initial, size_t max);

/* A byte buffer with a cap (max < SIZE_MAX: one byte more is kept for the NUL). len bytes are used; p is NUL-terminated after every append, so the
 * content can be read as a string when it holds no NUL. */
struct cw_buf {
    char *p;
    size_t len, cap, max;
};
void cw_buf_init(struct cw_buf *b, size_t max);
/* Appends n bytes. Returns 0, CW_ETOOBIG (len + n > max; nothing appended) or CW_ENOMEM. */
int cw_buf_append(struct cw_buf *b, const void *data, size_t n);
void cw_buf_reset(struct cw_buf *b);  /* len = 0, memory kept */
void cw_buf_free(struct cw_buf *b);

/* ---- sorted arrays --------------------------------------------------------------------------
 * The first index in [0, n) whose element is not less than key (n when none): the one binary
 * search. cmp(key, element) < 0 when key sorts before element. */
size_t cw_lower_bound(const void *base, size_t n, size_t elem_size, const void *key,
                      int (*cmp)(const void *key, const void *elem));

/* Where to cut s[0..n) (a prefix of a longer UTF-8 string) so that it does not end inside a
 * character: n, or the start of a last character that has fewer bytes than its lead byte says.
 * Records' strings are copied into fixed fields and then into JSON, which cannot carry half a
 * character (jansson refuses the whole string). Invalid sequences are left as they are. */
size_t cw_utf8_cut(const char *s, size_t n);

#endif
