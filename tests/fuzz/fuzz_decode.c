/* fuzz_decode.c — the CloudTrail decoder (service/decode.h) on arbitrary bytes.
 *
 * Each input is decoded whole with dec_buffer, then again through dec_new/dec_feed/dec_finish in
 * chunks of pseudo-random sizes (seeded from the input, so a crash reproduces from the file), and
 * a third time one byte at a time for short inputs. Streaming must not change anything: the
 * return code, the message (but its byte offset, see msg_text), the statistics and every
 * delivered event and skip must be identical.
 * Also checked: every string field of an event is NUL-terminated within its bound, the indices
 * are strictly increasing, and records = events + skipped. (bytes_json is compared only on
 * success: after an error, how far the parser read depends on where the chunk ended.)
 */
#include "fuzz_common.h"

#include "decode.h"

#define FZ_CHUNK_MAX 97          /* largest random chunk: small, so chunk borders land everywhere */
#define FZ_BYTEWISE_MAX 2048     /* inputs up to this size are also fed one byte at a time */

struct run {
    int rc;
    char msg[DEC_MSG_MAX];
    struct dec_stats st;
    size_t n_ev, n_skip;
    uint64_t digest;
    size_t last_index;
    int any;
};

static uint64_t event_digest(uint64_t h, const struct ev_event *ev)
{
    h = fz_fnv(h, &ev->kind, sizeof ev->kind);
    h = fz_fnv(h, &ev->flags, sizeof ev->flags);
    h = fz_fnv(h, &ev->time, sizeof ev->time);
    h = fz_fnv(h, &ev->expires, sizeof ev->expires);
    h = fz_fnv(h, &ev->session_created, sizeof ev->session_created);
    h = fz_fnv_str(h, ev->id, sizeof ev->id);
    h = fz_fnv_str(h, ev->akid, sizeof ev->akid);
    h = fz_fnv_str(h, ev->account, sizeof ev->account);
    h = fz_fnv_str(h, ev->region, sizeof ev->region);
    h = fz_fnv_str(h, ev->source_ip, sizeof ev->source_ip);
    h = fz_fnv_str(h, ev->action, sizeof ev->action);
    h = fz_fnv_str(h, ev->error, sizeof ev->error);
    h = fz_fnv_str(h, ev->user_agent, sizeof ev->user_agent);
    h = fz_fnv_str(h, ev->runtime, sizeof ev->runtime);
    h = fz_fnv_str(h, ev->workload_id, sizeof ev->workload_id);
    h = fz_fnv_str(h, ev->role_arn, sizeof ev->role_arn);
    h = fz_fnv_str(h, ev->vpce_account, sizeof ev->vpce_account);
    h = fz_fnv(h, &ev->wl_kind, sizeof ev->wl_kind);  /* the workload evidence (issue 14) */
    h = fz_fnv(h, &ev->wl_ident, sizeof ev->wl_ident);
    h = fz_fnv(h, &ev->wl_weak, sizeof ev->wl_weak);
    h = fz_fnv(h, &ev->wl_markers, sizeof ev->wl_markers);
    return h;
}

static void see_index(struct run *r, size_t index)
{
    fz_check(!r->any || index > r->last_index, "record indices not strictly increasing");
    r->any = 1;
    r->last_index = index;
}

static int on_event(void *ud, size_t index, const struct ev_event *ev)
{
    struct run *r = ud;
    see_index(r, index);
    fz_check(ev->kind == EV_OTHER || ev->kind == EV_ISSUE || ev->kind == EV_USE, "unknown event kind");
    r->n_ev++;
    r->digest = fz_fnv(r->digest, "E", 1);
    r->digest = fz_fnv(r->digest, &index, sizeof index);
    r->digest = event_digest(r->digest, ev);
    return 0;
}

static int on_skip(void *ud, size_t index, const char *reason)
{
    struct run *r = ud;
    see_index(r, index);
    fz_check(reason != NULL, "skip without a reason");
    r->n_skip++;
    r->digest = fz_fnv(r->digest, "S", 1);
    r->digest = fz_fnv(r->digest, &index, sizeof index);
    r->digest = fz_fnv(r->digest, reason, strlen(reason));
    return 0;
}

static void run_init(struct run *r)
{
    memset(r, 0, sizeof *r);
    r->digest = FZ_FNV_OFFSET;
}

/* The message without its "at byte N: " offset. yajl names the offset of the offending token
 * differently when that token straddles two chunks (it buffers the partial token), so the offset
 * may move by up to a token's length with the chunking; the rest of the message may not. */
static const char *msg_text(const char *m)
{
    const char *p = strstr(m, " at byte ");
    if (!p)
        return m;
    const char *colon = strchr(p, ':');
    return colon ? colon : m;
}

static void check_same(const struct run *a, const struct run *b, const char *how)
{
    if (a->rc != b->rc || strcmp(msg_text(a->msg), msg_text(b->msg)) != 0 || a->n_ev != b->n_ev || a->n_skip != b->n_skip ||
        a->digest != b->digest || a->st.records != b->st.records || a->st.events != b->st.events ||
        a->st.skipped != b->st.skipped || a->st.gzip != b->st.gzip ||
        (a->rc == 0 && a->st.bytes_json != b->st.bytes_json)) {
        fprintf(stderr, "whole: rc=%d msg=%s ev=%zu skip=%zu records=%zu json=%zu\n", a->rc, a->msg, a->n_ev,
                a->n_skip, a->st.records, a->st.bytes_json);
        fprintf(stderr, "%s: rc=%d msg=%s ev=%zu skip=%zu records=%zu json=%zu\n", how, b->rc, b->msg, b->n_ev,
                b->n_skip, b->st.records, b->st.bytes_json);
        fz_check(0, "chunked decode differs from whole decode");
    }
}

/* Feeds data in chunks: sizes from the generator, or 1 when state is NULL. */
static void run_chunked(const uint8_t *data, size_t size, uint64_t *state, struct run *r)
{
    struct dec_sink sink = { on_event, on_skip, r };
    run_init(r);
    struct dec *d = dec_new(&sink, NULL);
    fz_check(d != NULL, "dec_new failed");
    size_t pos = 0;
    int rc = 0;
    while (pos < size && rc == 0) {
        size_t n = state ? 1 + (size_t)(fz_next(state) % FZ_CHUNK_MAX) : 1;
        if (n > size - pos)
            n = size - pos;
        rc = dec_feed(d, data + pos, n);
        pos += n;
    }
    if (rc == 0)
        rc = dec_finish(d);
    r->rc = rc;
    snprintf(r->msg, sizeof r->msg, "%s", dec_message(d));
    r->st = *dec_stats(d);
    dec_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct run whole, part;
    struct dec_sink sink = { on_event, on_skip, &whole };

    run_init(&whole);
    whole.rc = dec_buffer(data, size, &sink, NULL, &whole.st, whole.msg, sizeof whole.msg);
    fz_check(whole.rc == CW_OK || whole.rc == CW_EJSON || whole.rc == CW_EGZIP || whole.rc == CW_ETOOBIG ||
                 whole.rc == CW_EREFUSED || whole.rc == CW_EDEPTH || whole.rc == CW_ENOMEM || whole.rc == CW_EABORT,
             "return code outside the decoder's documented set");
    fz_check(whole.n_ev == whole.st.events, "events delivered != stats.events");
    fz_check(whole.n_skip == whole.st.skipped, "skips delivered != stats.skipped");
    fz_check(whole.st.records == whole.st.events + whole.st.skipped, "records != events + skipped");
    fz_check(whole.rc == 0 || whole.msg[0] != 0, "an error without a message");

    uint64_t state = fz_fnv(FZ_FNV_OFFSET, data, size);
    run_chunked(data, size, &state, &part);
    check_same(&whole, &part, "random chunks");
    if (size <= FZ_BYTEWISE_MAX) {
        run_chunked(data, size, NULL, &part);
        check_same(&whole, &part, "byte by byte");
    }
    return 0;
}
