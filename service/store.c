/* store.c — what both store implementations share: names of statuses, freeing. */
#include "store.h"

#include <stdlib.h>
#include <string.h>

static const char *const status_names[STORE_ST_COUNT] = {
    [STORE_ST_OPEN] = "open", [STORE_ST_ACKNOWLEDGED] = "acknowledged", [STORE_ST_RESOLVED] = "resolved",
    [STORE_ST_SUPPRESSED] = "suppressed", [STORE_ST_RETRACTED] = "retracted",
};

const char *store_status_name(int st)
{
    return st >= 0 && st < STORE_ST_COUNT ? status_names[st] : "open";
}

int store_status_parse(const char *s)
{
    for (int i = 0; i < STORE_ST_COUNT; i++)
        if (strcmp(s, status_names[i]) == 0)
            return i;
    return -1;
}

void store_finding_free(struct store_finding *f)
{
    if (!f)
        return;
    free(f->evidence_json);
    free(f->note);
    f->evidence_json = NULL;
    f->note = NULL;
}

int store_next_status(int current, int exists, int new_outside)
{
    if (!exists)
        return STORE_ST_OPEN;
    if (new_outside && (current == STORE_ST_RESOLVED || current == STORE_ST_RETRACTED))
        return STORE_ST_OPEN;
    return current;
}
