/* api_log.c — see api_log.h. */
#include "api_log.h"

#include <stdio.h>
#include <stdlib.h>

#include "cw.h"

void api_log(const char *level, const char *msg, json_t *fields)
{
    json_t *o = json_object();
    char ts[CW_TIME_MAX];
    if (!o) {
        json_decref(fields);
        return;
    }
    if (cw_time_format(cw_now_ms(), 1, ts, sizeof ts) == 0)
        json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level));
    json_object_set_new(o, "msg", json_string(msg ? msg : ""));
    if (json_is_object(fields))
        json_object_update(o, fields);
    json_decref(fields);
    char *line = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!line)
        return;
    /* One locked write per line: stdio locks the stream for the call. */
    flockfile(stderr);
    fputs(line, stderr);
    fputc('\n', stderr);
    fflush(stderr);
    funlockfile(stderr);
    free(line);
}
