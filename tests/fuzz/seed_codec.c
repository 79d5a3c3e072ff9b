/* seed_codec.c — writes fuzz_codec's seeds: the det_encode blob of every key in the given
 * CloudTrail inputs (one state per key, every event of it applied), one file per key.
 * Usage: seed_codec OUTDIR FILE...   (built and run by `make fuzz-seeds`) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "detect.h"

#define SEED_KEYS_MAX 64            /* keys per input file kept: the fixtures have a handful */
#define SEED_FILE_MAX (4u << 20)    /* fixtures are a few KB */
#define SEED_PATH_MAX 512

struct keys {
    size_t n;
    struct det_key k[SEED_KEYS_MAX];
};

static int on_event(void *ud, size_t index, const struct ev_event *ev)
{
    struct keys *ks = ud;
    (void)index;
    if (!ev->akid[0])
        return 0;
    size_t i = 0;
    while (i < ks->n && strcmp(ks->k[i].akid, ev->akid) != 0)
        i++;
    if (i == ks->n) {
        if (ks->n == SEED_KEYS_MAX)
            return 0;
        det_key_init(&ks->k[ks->n++], ev->akid);
    }
    det_apply(&ks->k[i], ev);
    return 0;
}

static int on_skip(void *ud, size_t index, const char *reason)
{
    (void)ud, (void)index, (void)reason;
    return 0;
}

int main(int argc, char **argv)
{
    static struct keys ks;
    static uint8_t buf[SEED_FILE_MAX], blob[DET_ENCODED_MAX];
    if (argc < 3) {
        fprintf(stderr, "usage: %s OUTDIR FILE...\n", argv[0]);
        return 2;
    }
    for (int a = 2; a < argc; a++) {
        FILE *f = fopen(argv[a], "rb");
        if (!f)
            return 1;
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        ks.n = 0;
        struct dec_sink sink = { on_event, on_skip, &ks };
        char msg[DEC_MSG_MAX];
        if (dec_buffer(buf, len, &sink, NULL, NULL, msg, sizeof msg) != 0)
            fprintf(stderr, "%s: %s\n", argv[a], msg);
        for (size_t i = 0; i < ks.n; i++) {
            int n = det_encode(&ks.k[i], blob, sizeof blob);
            if (n < 0)
                return 1;
            char path[SEED_PATH_MAX];
            const char *base = strrchr(argv[a], '/');
            snprintf(path, sizeof path, "%s/%s-%zu", argv[1], base ? base + 1 : argv[a], i);
            FILE *o = fopen(path, "wb");
            if (!o || fwrite(blob, 1, (size_t)n, o) != (size_t)n)
                return 1;
            fclose(o);
        }
    }
    return 0;
}
