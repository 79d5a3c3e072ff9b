/* fuzz_ingest.c — the request-body path of POST /v1/ingest: eng_ingest over the embedded store.
 *
 * Each input is ingested three ways, each into a fresh store: the bytes as they are, the bytes
 * gzip-wrapped by the harness (the decoder must not care), and once more as-is into the first
 * store (a retry of the same body). Invariants:
 *   - records = accepted + ignored + duplicates + skipped for an accepted input, and a refused input
 *     reports nothing accepted and no finding;
 *   - the gzip-wrapped input gives the same result as the plain one (unless the ratio cap
 *     refuses it: a highly compressible input is a bomb by definition; or the input is gzip
 *     already: one layer is inflated, so gzip of gzip is refused by design);
 *   - a second ingest of the same bytes creates and updates no finding and accepts no new use;
 *   - every finding the report names exists, its evidence and its key's context are valid JSON.
 */
#include "fuzz_common.h"

#include <time.h>

#include <jansson.h>
#include <zlib.h>

#include "engine.h"
#include "store.h"

#define FZ_GZIP_WINDOW (15 + 16)     /* zlib: 15-bit window, +16 = gzip header and trailer */
#define FZ_GZIP_LEVEL 6
#define FZ_FINDINGS_CHECKED 8        /* findings of one input whose documents are validated */

static struct eng_report rep1, rep2, repz;

/* The wall clock, as the server passes it: the embedded store expires keys against the real
 * clock, so a fixed "now" in the past would make every key expired on arrival. */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* gzip of data in a malloc'd buffer; NULL when zlib fails (then the check is skipped). */
static uint8_t *gzip_of(const uint8_t *data, size_t size, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, FZ_GZIP_LEVEL, Z_DEFLATED, FZ_GZIP_WINDOW, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    uLong cap = deflateBound(&z, (uLong)size);
    uint8_t *out = malloc(cap ? cap : 1);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)size;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

static void check_report(int rc, const struct eng_report *r)
{
    fz_check(rc == CW_OK || rc == CW_EINPUT || rc == CW_ETOOBIG, "unexpected engine error");
    fz_check(r->skipped <= r->records, "more skipped than records");
    fz_check(r->duplicates <= r->records - r->skipped, "more duplicates than unskipped records");
    /* Only an accepted input's counts are answered (a refused one gets an error document, and
     * its records/skipped say how far decoding got before the refusal). */
    if (rc == CW_OK)
        fz_check(r->records == r->accepted + r->ignored + r->duplicates + r->skipped,
                 "records != accepted + ignored + duplicates + skipped");
    fz_check(r->created <= r->findings, "more created than findings");
    fz_check(r->n_skips <= ENG_SKIPS_MAX && r->n_skips <= r->skipped, "skip list longer than the count");
    fz_check(r->n_ids <= ENG_FINDINGS_MAX && r->n_ids <= r->findings, "id list longer than the count");
    if (rc != CW_OK) {
        fz_check(r->accepted == 0 && r->findings == 0, "a refused input reported work done");
        fz_check(r->message[0] != 0, "a refused input without a message");
    }
}

static void check_json(const char *text, const char *what)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    if (!j)
        fprintf(stderr, "%s: %s\n%s\n", what, err.text, text);
    fz_check(j != NULL, "the service produced invalid JSON");
    json_decref(j);
}

/* Every finding named by the report must be retrievable, with valid documents. */
static void check_findings(struct eng *e, struct store *st, const struct eng_report *r)
{
    for (size_t i = 0; i < r->n_ids && i < FZ_FINDINGS_CHECKED; i++) {
        struct store_finding f;
        memset(&f, 0, sizeof f);
        fz_check(store_finding_get(st, r->ids[i], &f) == 0, "a reported finding is not in the store");
        check_json(f.evidence_json, "finding evidence");
        store_finding_free(&f);
        const char *akid = strchr(r->ids[i], '-');
        fz_check(akid != NULL, "finding id without a key");
        char *ctx = NULL;
        int krc = eng_key_json(e, akid + 1, &ctx);
        if (krc != 0)
            fprintf(stderr, "eng_key_json(%s) = %d\n", akid + 1, krc);
        fz_check(krc == 0, "a finding's key has no context");
        check_json(ctx, "key context");
        free(ctx);
    }
}

static int ingest_fresh(const uint8_t *data, size_t size, struct eng_report *r, struct store **st_out,
                        struct eng **e_out)
{
    struct store *st = store_mem_new();
    fz_check(st != NULL, "store_mem_new failed");
    struct eng *e = eng_new(st, NULL);
    fz_check(e != NULL, "eng_new failed");
    int rc = eng_ingest(e, data, size, now_ms(), r);
    check_report(rc, r);
    *st_out = st;
    *e_out = e;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct store *st;
    struct eng *e;
    int rc1 = ingest_fresh(data, size, &rep1, &st, &e);
    if (rc1 == CW_OK)
        check_findings(e, st, &rep1);

    /* The same body again: a sender's retry. Nothing new may come of it. */
    int rc2 = eng_ingest(e, data, size, now_ms(), &rep2);
    check_report(rc2, &rep2);
    fz_check(rc2 == rc1, "a retry got another answer");
    fz_check(rep2.records == rep1.records && rep2.skipped == rep1.skipped, "a retry decoded differently");
    fz_check(rep2.created == 0, "a retry created a finding");
    fz_check(rep2.findings == 0, "a retry updated a finding");
    eng_free(e);
    store_free(st);

    /* The same body gzip-wrapped, into a fresh store: the same outcome. */
    size_t zlen = 0;
    uint8_t *z = gzip_of(data, size, &zlen);
    if (z) {
        int rcz = ingest_fresh(z, zlen, &repz, &st, &e);
        int bomb = rcz == CW_ETOOBIG && size > (size_t)DEC_DEFAULT_MAX_RATIO * zlen;
        /* The decoder inflates one layer: gzip of a gzip input is JSON-less bytes, refused. */
        int double_gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
        if (!bomb && !double_gzip) {
            if (rcz != rc1 || repz.records != rep1.records || repz.skipped != rep1.skipped ||
                repz.accepted != rep1.accepted || repz.duplicates != rep1.duplicates ||
                repz.findings != rep1.findings || repz.created != rep1.created) {
                fprintf(stderr, "plain rc=%d rec=%zu skip=%zu acc=%zu dup=%zu fnd=%zu (%s)\n", rc1, rep1.records,
                        rep1.skipped, rep1.accepted, rep1.duplicates, rep1.findings, rep1.message);
                fprintf(stderr, "gzip  rc=%d rec=%zu skip=%zu acc=%zu dup=%zu fnd=%zu (%s)\n", rcz, repz.records,
                        repz.skipped, repz.accepted, repz.duplicates, repz.findings, repz.message);
                fz_check(0, "gzip-wrapped input ingested differently");
            }
        }
        eng_free(e);
        store_free(st);
        free(z);
    }
    return 0;
}
