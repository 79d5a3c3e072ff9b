/* test_detect.c — the detection core's state: the binary codec (det_encode/det_decode), the
 * order independence of its bounded sets, its lifetime (det_expires_at), the sensitive actions
 * and the severity names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "detect.h"
#include "render.h"

#define KEY "ASIAQEXAMPLEKEY00001"
#define T0 1710318801 /* 2024-03-13T08:33:21Z */
#define TIME_MAX 253402300799LL /* 9999-12-31T23:59:59Z, the latest time the codec accepts */

/* Fills dst with `cap - 1` characters derived from tag and i (no NUL inside). */
static void fill(char *dst, size_t cap, char tag, size_t i)
{
    for (size_t j = 0; j + 1 < cap; j++)
        dst[j] = (char)('a' + (tag + i * 7 + j) % 26);
    dst[0] = tag;
    dst[1] = (char)('A' + i % 26);  /* distinct and sorted by i */
    dst[cap - 1] = 0;
}

static void fill_use(struct det_use *u, size_t i, int64_t at)
{
    u->at = at;
    fill(u->event_id, sizeof u->event_id, 'e', i);
    fill(u->action, sizeof u->action, 'a', i);
    fill(u->user_agent, sizeof u->user_agent, 'u', i);
    u->failed = (uint8_t)(i & 1);
}

/* The largest state: every string at its bound, every array at its cap, big counters. */
static void full_state(struct det_key *k)
{
    memset(k, 0, sizeof *k);
    fill(k->akid, sizeof k->akid, 'K', 0);
    /* an issued key's context is its first issuance's (the codec writes it once) */
    fill(k->account, sizeof k->account, 'c', 0);
    fill(k->workload_id, sizeof k->workload_id, 'f', 0);
    fill(k->role_arn, sizeof k->role_arn, 'R', 0);
    fill(k->runtime, sizeof k->runtime, 'p', 0);
    k->runtime_id = UINT64_MAX;
    k->runtime_at = T0;
    k->issued = 1;
    k->marked = 1;
    k->n_issues = UINT8_MAX;
    for (size_t i = 0; i < 2; i++) {
        struct det_issue *is = &k->iss[i];
        is->at = TIME_MAX / 3 + (int64_t)i;
        is->expires = TIME_MAX - (int64_t)i;
        fill(is->event_id, sizeof is->event_id, 'i', i);
        fill(is->account, sizeof is->account, 'c', i);
        fill(is->region, sizeof is->region, 'r', i);
        fill(is->workload_id, sizeof is->workload_id, 'f', i);
        fill(is->role_arn, sizeof is->role_arn, 'R', i);
        is->kind = (uint8_t)(WL_EKS + i);  /* the highest kinds (codec version 5) */
        fill(is->source_ip, sizeof is->source_ip, 's', i);
    }
    k->wl_ident = k->wl_weak = k->wl_markers = WL_MASK_ALL;
    /* the widest times det_decode accepts (an event's year is at most 9999) */
    k->expires = TIME_MAX;
    k->session_created = TIME_MAX - 1;
    k->first_seen = T0;
    k->last_seen = TIME_MAX - 2;
    k->on_behalf_count = UINT32_MAX - 1;
    k->evicted_prio = DET_PRIO_FOREIGN_VPCE + 1;
    k->evicted_count = UINT32_MAX - 4;
    k->n_evicted_regions = DET_EVICTED_REGIONS_MAX;
    k->evicted_regions_truncated = 1;
    for (size_t g = 0; g < DET_EVICTED_REGIONS_MAX; g++)
        fill(k->evicted_regions[g], sizeof k->evicted_regions[g], 'x', g);
    k->peak_severity = DET_SEV_CRITICAL;
    k->n_cands = DET_CANDS_MAX;
    for (size_t i = 0; i < DET_CANDS_MAX; i++) {
        struct det_cand *c = &k->cands[i];
        fill(c->ip, sizeof c->ip, 'C', i);
        fill(c->vpce_account, sizeof c->vpce_account, 'v', i);
        c->prio = DET_PRIO_FOREIGN_VPCE;
        c->count = UINT32_MAX;
        c->ok_count = UINT32_MAX - 1;
        c->exempt_count = UINT32_MAX - 2;
        c->presigned_count = UINT32_MAX - 3;
        c->marked_count = UINT32_MAX - 4;
        c->flags = 0xffffffffu;
        c->cold_arns = 2;
        fill(c->cold_arn, sizeof c->cold_arn, 'n', i);
        fill_use(&c->first, i, T0 + (int64_t)i);
        fill_use(&c->last, i + 1, TIME_MAX - (int64_t)i);
        c->marked_at = TIME_MAX - 5;
        fill(c->marked_id, sizeof c->marked_id, 'm', i);
        fill(c->marked_region, sizeof c->marked_region, 'g', i);
        c->n_actions = DET_CAND_ACTIONS_MAX;
        c->actions_truncated = 1;
        for (size_t a = 0; a < DET_CAND_ACTIONS_MAX; a++) {
            fill(c->actions[a].name, sizeof c->actions[a].name, 'A', a);
            c->actions[a].ok = (uint8_t)(a & 1);
        }
        c->n_regions = DET_CAND_REGIONS_MAX;
        c->regions_truncated = 1;
        for (size_t g = 0; g < DET_CAND_REGIONS_MAX; g++)
            fill(c->regions[g], sizeof c->regions[g], 'g', g);
    }
}

static void test_codec_full_roundtrip(void **state)
{
    (void)state;
    static struct det_key k, back;
    static uint8_t blob[DET_ENCODED_MAX], again[DET_ENCODED_MAX];
    full_state(&k);
    /* DET_ENCODED_MAX is documented as the upper bound: the largest state must fit */
    int len = det_encode(&k, blob, sizeof blob);
    if (len < 0)
        fail_msg("the largest state does not fit DET_ENCODED_MAX (%zu bytes)", (size_t)DET_ENCODED_MAX);
    assert_true((size_t)len <= DET_ENCODED_MAX);
    assert_true(len > 16000);  /* the state really is at its largest */
    assert_int_equal(det_decode(&back, blob, (size_t)len), 0);
    assert_memory_equal(&k, &back, sizeof k);
    assert_int_equal(det_encode(&back, again, sizeof again), len);
    assert_memory_equal(blob, again, (size_t)len);
    /* one byte short of the room needed: refused, never a cut blob */
    assert_true(det_encode(&k, again, (size_t)len - 1) < 0);
    assert_int_equal(det_encode(&k, again, (size_t)len), len);
}

/* Regression (fuzz_codec): a blob whose 0/1 fields (use failed, actions_truncated, action ok)
 * held a varint of 0x80 or more decoded, and its re-encoding (one byte per field, continuation
 * bit set) no longer decoded: the key then failed every ingest. Such blobs are refused now. */
/* Times outside the years an event can have (found by fuzz_codec: a corrupt blob with a time near
 * INT64_MAX made det_expires_at overflow) are refused as corrupt; the largest real one decodes. */
static void test_codec_time_range(void **state)
{
    (void)state;
    static struct det_key k, back;
    static uint8_t blob[DET_ENCODED_MAX];
    det_key_init(&k, "ASIATIMERANGE0000001");
    k.marked = 1;
    k.first_seen = k.last_seen = TIME_MAX;
    int len = det_encode(&k, blob, sizeof blob);
    assert_true(len > 0);
    assert_int_equal(det_decode(&back, blob, (size_t)len), 0);
    assert_true(det_expires_at(&back) > back.first_seen);
    k.first_seen = INT64_MAX - 1000;
    len = det_encode(&k, blob, sizeof blob);
    assert_true(len > 0);
    assert_int_equal(det_decode(&back, blob, (size_t)len), -1);
    k.first_seen = 1;
    k.session_created = -5;
    len = det_encode(&k, blob, sizeof blob);
    assert_true(len > 0);
    assert_int_equal(det_decode(&back, blob, (size_t)len), -1);
}

static void test_codec_bool_fields(void **state)
{
    (void)state;
    static struct det_key k, back;
    static uint8_t blob[DET_ENCODED_MAX], bad[DET_ENCODED_MAX + 1];
    full_state(&k);
    k.cands[0].actions_truncated = 1;
    int len = det_encode(&k, blob, sizeof blob);
    assert_true(len > 0);
    /* every byte equal to 1 that can be widened to the two-byte varint of 0x81 and still decode
     * as a 0/1 field must now be refused; any blob that decodes must re-encode and decode again */
    size_t tried = 0;
    for (int i = 3; i < len; i++) {
        if (blob[i] != 1)
            continue;
        memcpy(bad, blob, (size_t)i);
        bad[i] = 0x81;
        bad[i + 1] = 0x01;
        memcpy(bad + i + 2, blob + i + 1, (size_t)(len - i - 1));
        if (det_decode(&back, bad, (size_t)len + 1) == 0) {
            static uint8_t again[DET_ENCODED_MAX];
            int n = det_encode(&back, again, sizeof again);
            assert_true(n > 0);
            assert_int_equal(det_decode(&back, again, (size_t)n), 0);
        }
        tried++;
    }
    assert_true(tried > 0);
}

/* The sets det_apply keeps in order (and the engine searches and merges as such: binary search of
 * the regions, ordered insertion of addresses and issuances) must come back in that order or not
 * at all: a blob written with two entries swapped, or one twice, is refused like any corrupt blob.
 * det_encode writes whatever state it is given, so each tampered blob is the valid one with the
 * same bytes in another order (the same length). */
static void tamper_regions_swapped(struct det_key *k)
{
    char t[EV_REGION_MAX];
    memcpy(t, k->cands[3].regions[1], sizeof t);
    memcpy(k->cands[3].regions[1], k->cands[3].regions[2], sizeof t);
    memcpy(k->cands[3].regions[2], t, sizeof t);
}
static void tamper_regions_twice(struct det_key *k) { memcpy(k->cands[0].regions[1], k->cands[0].regions[0], EV_REGION_MAX); }
static void tamper_evicted_swapped(struct det_key *k)
{
    char t[EV_REGION_MAX];
    memcpy(t, k->evicted_regions[0], sizeof t);
    memcpy(k->evicted_regions[0], k->evicted_regions[3], sizeof t);
    memcpy(k->evicted_regions[3], t, sizeof t);
}
static void tamper_evicted_twice(struct det_key *k) { memcpy(k->evicted_regions[3], k->evicted_regions[2], EV_REGION_MAX); }
static void tamper_cands_swapped(struct det_key *k)
{
    struct det_cand t = k->cands[4];
    k->cands[4] = k->cands[5];
    k->cands[5] = t;
}
static void tamper_cands_twice(struct det_key *k)
{
    memcpy(k->cands[1].ip, k->cands[0].ip, sizeof k->cands[1].ip);
    memcpy(k->cands[1].vpce_account, k->cands[0].vpce_account, sizeof k->cands[1].vpce_account);
}
static void tamper_cands_prio(struct det_key *k) { k->cands[0].prio = DET_PRIO_FOREIGN_VPCE - 1; }  /* higher first */
static void tamper_issues_swapped(struct det_key *k)
{
    struct det_issue t = k->iss[0];
    k->iss[0] = k->iss[1];
    k->iss[1] = t;
    /* the context the codec takes from the first issuance follows it, as det_apply would have it */
    memcpy(k->account, k->iss[0].account, sizeof k->account);
    memcpy(k->workload_id, k->iss[0].workload_id, sizeof k->workload_id);
    memcpy(k->role_arn, k->iss[0].role_arn, sizeof k->role_arn);
}
static void tamper_actions_twice(struct det_key *k) { memcpy(k->cands[2].actions[5].name, k->cands[2].actions[4].name, sizeof k->cands[2].actions[4].name); }

static void test_codec_rejects_unsorted(void **state)
{
    (void)state;
    static struct det_key k, t, back;
    static uint8_t blob[DET_ENCODED_MAX], bad[DET_ENCODED_MAX];
    static const struct {
        const char *name;
        void (*tamper)(struct det_key *);
    } cases[] = {
        { "an address's regions swapped", tamper_regions_swapped },
        { "an address's region twice", tamper_regions_twice },
        { "evicted regions swapped", tamper_evicted_swapped },
        { "an evicted region twice", tamper_evicted_twice },
        { "addresses swapped", tamper_cands_swapped },
        { "an address twice", tamper_cands_twice },
        { "an address out of priority order", tamper_cands_prio },
        { "issuances swapped", tamper_issues_swapped },
        { "an address's action twice", tamper_actions_twice },
    };
    full_state(&k);
    int len = det_encode(&k, blob, sizeof blob);
    assert_true(len > 0);
    assert_int_equal(det_decode(&back, blob, (size_t)len), 0);  /* the untampered blob is valid */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        t = k;
        cases[i].tamper(&t);
        int n = det_encode(&t, bad, sizeof bad);
        assert_true(n > 0);
        if (n != len)
            fail_msg("%s: the tampered blob is not the valid one reordered", cases[i].name);
        if (memcmp(bad, blob, (size_t)len) == 0)
            fail_msg("%s: nothing tampered", cases[i].name);
        if (det_decode(&back, bad, (size_t)n) != -1)
            fail_msg("%s: accepted", cases[i].name);
    }
}

/* A realistic state made by det_apply. */
static void applied_state(struct det_key *k)
{
    det_key_init(k, KEY);
    struct ev_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = EV_ISSUE;
    ev.time = T0;
    ev.expires = T0 + 43200;
    snprintf(ev.id, sizeof ev.id, "00000000-0000-4000-8000-000000000001");
    snprintf(ev.akid, sizeof ev.akid, KEY);
    snprintf(ev.account, sizeof ev.account, "111122223333");
    snprintf(ev.region, sizeof ev.region, "us-east-1");
    snprintf(ev.workload_id, sizeof ev.workload_id, "orders-fn");
    snprintf(ev.role_arn, sizeof ev.role_arn, "arn:aws:iam::111122223333:role/orders-fn-role");
    assert_int_equal(det_apply(k, &ev), 1);
    ev.kind = EV_USE;
    ev.flags = EV_F_MARKED;
    ev.time = T0 + 4;
    ev.session_created = T0;
    snprintf(ev.id, sizeof ev.id, "00000000-0000-4000-8000-000000000002");
    snprintf(ev.source_ip, sizeof ev.source_ip, "3.5.140.2");
    snprintf(ev.action, sizeof ev.action, "dynamodb:PutItem");
    snprintf(ev.runtime, sizeof ev.runtime, "python3.12");
    assert_int_equal(det_apply(k, &ev), 1);
    ev.flags = EV_F_FAILED | EV_F_DESKTOP;
    ev.time = T0 + 3600;
    snprintf(ev.id, sizeof ev.id, "00000000-0000-4000-8000-000000000003");
    snprintf(ev.source_ip, sizeof ev.source_ip, "2001:db8::7");
    snprintf(ev.action, sizeof ev.action, "iam:CreateUser");
    snprintf(ev.error, sizeof ev.error, "AccessDenied");
    snprintf(ev.user_agent, sizeof ev.user_agent, "aws-cli/2.15.0 os/macos#23.2.0");
    assert_int_equal(det_apply(k, &ev), 1);
}

static void test_codec_applied_roundtrip(void **state)
{
    (void)state;
    static struct det_key k, back;
    uint8_t blob[DET_ENCODED_MAX], again[DET_ENCODED_MAX];
    applied_state(&k);
    int len = det_encode(&k, blob, sizeof blob);
    assert_true(len > 0);
    assert_true(len < 512);  /* the Redis budget per key (detect_codec.c) */
    assert_int_equal(det_decode(&back, blob, (size_t)len), 0);
    assert_int_equal(det_encode(&back, again, sizeof again), len);
    assert_memory_equal(blob, again, (size_t)len);
    assert_string_equal(back.akid, KEY);
    assert_string_equal(back.workload_id, "orders-fn");
    assert_int_equal(back.issued, 1);
    assert_int_equal(back.marked, 1);
    assert_int_equal(back.expires, T0 + 43200);
    /* one address set: the function's (marked) and the outside one, by address */
    assert_int_equal(back.n_cands, 2);
    assert_string_equal(back.cands[0].ip, "2001:db8::7");
    assert_int_equal(back.cands[0].flags, EV_F_FAILED | EV_F_DESKTOP);
    assert_string_equal(back.cands[0].first.user_agent, "aws-cli/2.15.0 os/macos#23.2.0");
    assert_string_equal(back.cands[1].ip, "3.5.140.2");
    assert_int_equal(back.cands[1].marked_count, 1);
    /* the verdicts of both states are the same */
    struct det_verdict v1, v2;
    det_judge(&k, NULL, &v1);
    det_judge(&back, NULL, &v2);
    assert_int_equal(v1.finding, 1);
    assert_int_equal(v2.finding, 1);
    assert_int_equal(v1.severity, v2.severity);
    assert_int_equal(v1.reasons, v2.reasons);
    assert_int_equal(v2.severity, DET_SEV_HIGH);  /* every outside call failed, from a desktop */
}

static void test_codec_rejects(void **state)
{
    (void)state;
    static struct det_key k, back;
    static uint8_t blob[DET_ENCODED_MAX + 16], bad[DET_ENCODED_MAX + 16];
    applied_state(&k);
    int len = det_encode(&k, blob, DET_ENCODED_MAX);
    assert_true(len > 10);
    /* every strict prefix, the empty one included */
    for (int n = 0; n < len; n++)
        if (det_decode(&back, blob, (size_t)n) != -1)
            fail_msg("a prefix of %d of %d bytes was accepted", n, len);
    /* a byte too many */
    memcpy(bad, blob, (size_t)len);
    bad[len] = 0;
    assert_int_equal(det_decode(&back, bad, (size_t)len + 1), -1);
    /* foreign: magic, version, JSON, another codec */
    memcpy(bad, blob, (size_t)len);
    bad[0] = 'X';
    assert_int_equal(det_decode(&back, bad, (size_t)len), -1);
    memcpy(bad, blob, (size_t)len);
    bad[2] = (uint8_t)(blob[2] + 1);  /* a version this build does not know */
    assert_int_equal(det_decode(&back, bad, (size_t)len), -1);
    bad[2] = 0;
    assert_int_equal(det_decode(&back, bad, (size_t)len), -1);
    static const char json[] = "{\"akid\":\"" KEY "\"}";
    assert_int_equal(det_decode(&back, (const uint8_t *)json, sizeof json - 1), -1);
    /* corrupted: the akid's length says more than the blob holds */
    memcpy(bad, blob, (size_t)len);
    bad[3] = 0x7f;
    assert_int_equal(det_decode(&back, bad, (size_t)len), -1);
    /* a string longer than its field */
    memcpy(bad, blob, (size_t)len);
    bad[3] = EV_AKID_MAX;
    assert_int_equal(det_decode(&back, bad, (size_t)len), -1);
    /* a NUL inside a string */
    memcpy(bad, blob, (size_t)len);
    bad[5] = 0;
    assert_int_equal(det_decode(&back, bad, (size_t)len), -1);
    /* a varint that never ends */
    memcpy(bad, blob, 3);
    memset(bad + 3, 0x80, 12);
    assert_int_equal(det_decode(&back, bad, 15), -1);
    /* the decoded state is never left half-filled with the caller's old data */
    memset(&back, 0x5a, sizeof back);
    assert_int_equal(det_decode(&back, blob, 2), -1);
    assert_int_equal(back.n_cands, 0);
    assert_string_equal(back.akid, "");
}

/* Counts over the caps are rejected: a blob with n_cands > DET_CANDS_MAX, a peak severity that does
 * not exist. */
static void test_codec_rejects_counts(void **state)
{
    (void)state;
    static struct det_key k, back;
    static uint8_t blob[DET_ENCODED_MAX];
    full_state(&k);
    /* an encoder that believes in bigger caps: patch the counts in a valid blob */
    k.n_cands = 1;
    k.peak_severity = 0;
    int len = det_encode(&k, blob, sizeof blob);
    assert_true(len > 0);
    assert_int_equal(det_decode(&back, blob, (size_t)len), 0);
    /* locate the peak severity byte: it precedes the n_cands byte, then the first ip */
    size_t ip_len = strlen(k.cands[0].ip);
    size_t at = 0;
    for (size_t i = 3; i + 2 < (size_t)len; i++)
        if (blob[i] == 0 && blob[i + 1] == 1 && blob[i + 2] == ip_len && memcmp(blob + i + 3, k.cands[0].ip, 4) == 0)
            at = i;
    assert_true(at > 0);
    blob[at + 1] = DET_CANDS_MAX + 1;
    assert_int_equal(det_decode(&back, blob, (size_t)len), -1);
    blob[at + 1] = 1;
    blob[at] = DET_SEV_CRITICAL + 1;
    assert_int_equal(det_decode(&back, blob, (size_t)len), -1);
    blob[at] = 0;
    assert_int_equal(det_decode(&back, blob, (size_t)len), 0);
}

/* ---- order independence of the bounded sets --------------------------------------------------- */

#define N_ADDR (DET_CANDS_MAX * 3)
#define N_ACTIONS (DET_CAND_ACTIONS_MAX * 2)

static void make_use(struct ev_event *ev, size_t i, unsigned flags, const char *ip, const char *action)
{
    memset(ev, 0, sizeof *ev);
    ev->kind = EV_USE;
    ev->flags = flags;
    ev->time = T0 + (int64_t)(i % 7) * 60;  /* ties in time: the event id breaks them */
    snprintf(ev->id, sizeof ev->id, "evt-%04zu", i);
    snprintf(ev->akid, sizeof ev->akid, KEY);
    snprintf(ev->source_ip, sizeof ev->source_ip, "%s", ip);
    snprintf(ev->action, sizeof ev->action, "%s", action);
    snprintf(ev->user_agent, sizeof ev->user_agent, "ua-%zu", i);
    snprintf(ev->account, sizeof ev->account, "1111222233%02zu", i % 50);
    snprintf(ev->workload_id, sizeof ev->workload_id, "fn-%zu", i % 5);
    if (flags & EV_F_MARKED)
        snprintf(ev->runtime, sizeof ev->runtime, "python3.%zu", i % 13);
}

static size_t n_events;
static struct ev_event events[N_ADDR * 2 + N_ACTIONS + 8];

static void build_events(void)
{
    n_events = 0;
    char ip[EV_IP_MAX], action[EV_ACTION_MAX];
    /* unmarked uses from N_ADDR addresses (outside candidates), some failed */
    for (size_t i = 0; i < N_ADDR; i++) {
        snprintf(ip, sizeof ip, "198.51.%zu.%zu", (i * 37) % 256, i);
        snprintf(action, sizeof action, "s3:Op%02zu", i % 5);
        make_use(&events[n_events], n_events, i % 3 == 0 ? EV_F_FAILED : 0, ip, action);
        n_events++;
    }
    /* marked uses from N_ADDR addresses (inside addresses) */
    for (size_t i = 0; i < N_ADDR; i++) {
        snprintf(ip, sizeof ip, "3.5.%zu.%zu", 140 + i % 4, (i * 53) % 256);
        make_use(&events[n_events], n_events, EV_F_MARKED, ip, "dynamodb:PutItem");
        n_events++;
    }
    /* one outside address with many actions */
    for (size_t i = 0; i < N_ACTIONS; i++) {
        snprintf(action, sizeof action, "iam:Action%02zu", (i * 11) % N_ACTIONS);
        make_use(&events[n_events], n_events, i & 1 ? EV_F_FAILED : 0, "198.51.0.0", action);
        n_events++;
    }
}

static int apply_order(const size_t *order, uint8_t *blob, struct det_key *k)
{
    det_key_init(k, KEY);
    for (size_t i = 0; i < n_events; i++)
        assert_int_equal(det_apply(k, &events[order[i]]), 1);
    int len = det_encode(k, blob, DET_ENCODED_MAX);
    assert_true(len > 0);
    return len;
}

static void test_bounded_sets_order(void **state)
{
    (void)state;
    static struct det_key k1, k2;
    static uint8_t b1[DET_ENCODED_MAX], b2[DET_ENCODED_MAX];
    static size_t order[sizeof events / sizeof events[0]];
    build_events();
    assert_true(n_events > DET_CANDS_MAX);
    for (size_t i = 0; i < n_events; i++)
        order[i] = i;
    int l1 = apply_order(order, b1, &k1);
    /* reversed */
    for (size_t i = 0; i < n_events; i++)
        order[i] = n_events - 1 - i;
    int l2 = apply_order(order, b2, &k2);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, (size_t)l1);
    /* a few seeded shuffles */
    unsigned seed = 12345;
    for (int round = 0; round < 20; round++) {
        for (size_t i = n_events - 1; i > 0; i--) {
            seed = seed * 1103515245u + 12345u;
            size_t j = (seed >> 8) % (i + 1);
            size_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        l2 = apply_order(order, b2, &k2);
        assert_int_equal(l1, l2);
        assert_memory_equal(b1, b2, (size_t)l1);
    }
    /* one address set, marked and unmarked uses alike; without network tables every address has
     * the same priority, so the kept members are the smallest addresses, sorted */
    assert_int_equal(k1.n_cands, DET_CANDS_MAX);
    assert_int_equal(k1.evicted_prio, DET_PRIO_UNKNOWN + 1);
    assert_true(k1.evicted_count > 0);
    for (size_t i = 1; i < k1.n_cands; i++)
        assert_true(strcmp(k1.cands[i - 1].ip, k1.cands[i].ip) < 0);
    /* no address outside the kept set is smaller than the largest kept one */
    uint32_t kept_calls = 0;
    for (size_t i = 0; i < k1.n_cands; i++)
        kept_calls += k1.cands[i].count;
    assert_int_equal(kept_calls + k1.evicted_count, n_events);
    for (size_t e = 0; e < n_events; e++) {
        const struct ev_event *ev = &events[e];
        if (strcmp(ev->source_ip, k1.cands[DET_CANDS_MAX - 1].ip) < 0) {
            int found = 0;
            for (size_t i = 0; i < k1.n_cands; i++)
                found |= strcmp(k1.cands[i].ip, ev->source_ip) == 0;
            assert_true(found);
        }
    }
    /* the address with many actions kept the successful ones first, then by name */
    assert_string_equal(k1.cands[0].ip, "198.51.0.0");
    assert_int_equal(k1.cands[0].n_actions, DET_CAND_ACTIONS_MAX);
    assert_int_equal(k1.cands[0].actions_truncated, 1);
    for (size_t a = 0; a < DET_CAND_ACTIONS_MAX; a++) {
        char want[EV_ACTION_MAX];
        snprintf(want, sizeof want, "iam:Action%02zu", 2 * a);  /* the even ones succeeded */
        assert_string_equal(k1.cands[0].actions[a].name, want);
        assert_int_equal(k1.cands[0].actions[a].ok, 1);
    }
    /* context fields are minima, whatever the order; the runtime is the earliest marked call's */
    assert_string_equal(k1.account, "111122223300");
    assert_string_equal(k1.workload_id, "fn-0");
    const struct ev_event *earliest = NULL;
    for (size_t e = 0; e < n_events; e++) {
        const struct ev_event *ev = &events[e];
        if ((ev->flags & EV_F_MARKED) &&
            (!earliest || ev->time < earliest->time ||
             (ev->time == earliest->time && det_id_hash(ev->id) < det_id_hash(earliest->id))))
            earliest = ev;
    }
    assert_non_null(earliest);
    assert_string_equal(k1.runtime, earliest->runtime);
}

/* ---- lifetime ---------------------------------------------------------------------------------- */

/* det_key_init and det_decode leave the address slots as they were (a slot is cleared when it is
 * taken or read): a state built or decoded over memory full of another key's data, or of garbage,
 * encodes, judges and renders exactly as one built over zeroes. */
static void judged(const struct det_key *k, char **doc, uint8_t *blob, int *len)
{
    struct det_verdict v;
    det_judge(k, NULL, &v);
    *doc = rnd_evidence(k, &v, "cwf-test");
    assert_non_null(*doc);
    *len = det_encode(k, blob, DET_ENCODED_MAX);
    assert_true(*len > 0);
}

static void test_slots_left_as_they_were(void **state)
{
    (void)state;
    static struct det_key clean, dirty;
    static uint8_t b1[DET_ENCODED_MAX], b2[DET_ENCODED_MAX];
    static size_t order[sizeof events / sizeof events[0]];
    char *d1, *d2;
    int l1, l2;
    build_events();
    for (size_t i = 0; i < n_events; i++)
        order[i] = i;
    memset(&clean, 0, sizeof clean);
    memset(&dirty, 0xA5, sizeof dirty);
    apply_order(order, b1, &clean);
    apply_order(order, b2, &dirty);
    judged(&clean, &d1, b1, &l1);
    judged(&dirty, &d2, b2, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, (size_t)l1);
    assert_string_equal(d1, d2);
    free(d2);
    /* decoded over garbage, and over a fuller state (the largest: every slot taken); every byte
     * det_decode sets, the slots it reads included, is what a decode over zeroes gives */
    memset(&dirty, 0x5A, sizeof dirty);
    assert_int_equal(det_decode(&dirty, b1, (size_t)l1), 0);
    assert_int_equal(det_decode(&clean, b1, (size_t)l1), 0);
    size_t slots = offsetof(struct det_key, cands), past = slots + sizeof clean.cands;
    assert_memory_equal(&dirty, &clean, slots);
    assert_memory_equal(dirty.cands, clean.cands, clean.n_cands * sizeof clean.cands[0]);
    assert_memory_equal((char *)&dirty + past, (char *)&clean + past, sizeof clean - past);
    judged(&dirty, &d2, b2, &l2);
    assert_memory_equal(b1, b2, (size_t)l1);
    assert_string_equal(d1, d2);
    free(d2);
    static struct det_key small, full;
    applied_state(&small);  /* two addresses */
    int ls = det_encode(&small, b1, DET_ENCODED_MAX);
    assert_true(ls > 0);
    memset(&clean, 0, sizeof clean);
    assert_int_equal(det_decode(&clean, b1, (size_t)ls), 0);
    full_state(&full);
    assert_int_equal(det_decode(&full, b1, (size_t)ls), 0);
    free(d1);
    judged(&clean, &d1, b1, &l1);
    judged(&full, &d2, b2, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, (size_t)l1);
    assert_string_equal(d1, d2);
    free(d1);
    free(d2);
}

static void test_expires_at(void **state)
{
    (void)state;
    static struct det_key k;
    struct ev_event ev;
    /* issued, with the expiration from the record */
    applied_state(&k);
    assert_int_equal(det_expires_at(&k), (int64_t)T0 + 43200 + DET_LATE_MARGIN);
    /* issued without an expiration: issue time + 12 h */
    det_key_init(&k, KEY);
    memset(&ev, 0, sizeof ev);
    ev.kind = EV_ISSUE;
    ev.time = T0;
    snprintf(ev.id, sizeof ev.id, "i1");
    snprintf(ev.akid, sizeof ev.akid, KEY);
    det_apply(&k, &ev);
    assert_int_equal(det_expires_at(&k), (int64_t)T0 + DET_CRED_LIFETIME + DET_LATE_MARGIN);
    /* marked, no issuance: the session's creation + 12 h, whatever the use times */
    det_key_init(&k, KEY);
    make_use(&ev, 1, EV_F_MARKED, "3.5.140.2", "s3:GetObject");
    ev.time = T0 + 5000;
    ev.session_created = T0 - 100;
    det_apply(&k, &ev);
    assert_int_equal(det_expires_at(&k), (int64_t)T0 - 100 + DET_CRED_LIFETIME + DET_LATE_MARGIN);
    /* marked with no creation date: the first use + 12 h */
    det_key_init(&k, KEY);
    make_use(&ev, 2, EV_F_MARKED, "3.5.140.2", "s3:GetObject");
    ev.time = T0 + 5000;
    det_apply(&k, &ev);
    make_use(&ev, 3, EV_F_MARKED, "3.5.140.2", "s3:GetObject");
    ev.time = T0 + 9000;
    det_apply(&k, &ev);
    assert_int_equal(det_expires_at(&k), (int64_t)T0 + 5000 + DET_CRED_LIFETIME + DET_LATE_MARGIN);
    /* pending (no Lambda evidence): the last event + the pending window */
    det_key_init(&k, KEY);
    make_use(&ev, 4, 0, "198.51.100.7", "s3:GetObject");
    ev.time = T0 + 100;
    ev.session_created = T0;
    det_apply(&k, &ev);
    make_use(&ev, 5, 0, "198.51.100.8", "s3:GetObject");
    ev.time = T0 + 50;
    det_apply(&k, &ev);
    assert_int_equal(det_expires_at(&k), (int64_t)T0 + 100 + DET_PENDING_WINDOW + DET_LATE_MARGIN);
    /* the same key, then issued: the issuance's lifetime wins */
    memset(&ev, 0, sizeof ev);
    ev.kind = EV_ISSUE;
    ev.time = T0;
    ev.expires = T0 + 3600;
    snprintf(ev.id, sizeof ev.id, "i2");
    snprintf(ev.akid, sizeof ev.akid, KEY);
    det_apply(&k, &ev);
    assert_int_equal(det_expires_at(&k), (int64_t)T0 + 3600 + DET_LATE_MARGIN);
    /* events of other keys and EV_OTHER change nothing */
    make_use(&ev, 6, EV_F_MARKED, "3.5.140.2", "s3:GetObject");
    snprintf(ev.akid, sizeof ev.akid, "ASIAQEXAMPLEKEY00009");
    assert_int_equal(det_apply(&k, &ev), 0);
    ev.kind = EV_OTHER;
    snprintf(ev.akid, sizeof ev.akid, KEY);
    assert_int_equal(det_apply(&k, &ev), 0);
}

/* ---- names and actions ------------------------------------------------------------------------- */

static void test_action_sensitive(void **state)
{
    (void)state;
    static const char *const yes[] = {
        "iam:CreateUser", "iam:CreateAccessKey", "iam:AttachRolePolicy", "iam:PutUserPolicy", "iam:UpdateAssumeRolePolicy",
        "iam:DeleteRolePermissionsBoundary", "iam:AddUserToGroup", "iam:UploadSSHPublicKey", "sts:AssumeRole",
        "secretsmanager:GetSecretValue", "ssm:GetParameter", "ssm:GetParametersByPath", "kms:Decrypt",
        "s3:GetObject", "s3:ListBuckets", "ec2:RunInstances", "cloudtrail:StopLogging", "cloudtrail:DeleteTrail",
        "guardduty:DeleteDetector", "lambda:UpdateFunctionCode20150331v2", "lambda:CreateFunction20150331",
        "lambda:AddPermission20150331v2",
    };
    static const char *const no[] = {
        "iam:ListUsers", "iam:GetRole", "iam:SimulatePrincipalPolicy", "sts:GetCallerIdentity", "s3:ListObjects",
        "s3:PutObject", "kms:Encrypt", "kms:GenerateDataKey", "ec2:DescribeInstances", "cloudtrail:LookupEvents",
        "lambda:GetFunction20150331v2", "lambda:Invoke", "dynamodb:PutItem", "", "iam:", "sts:AssumeRoleX",
        "xiam:CreateUser", "IAM:CreateUser", "logs:CreateLogStream",
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!det_action_sensitive(yes[i]))
            fail_msg("%s should be sensitive", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (det_action_sensitive(no[i]))
            fail_msg("%s should not be sensitive", no[i]);
}

static void test_severity_names(void **state)
{
    (void)state;
    static const char *const names[] = { "none", "low", "medium", "high", "critical" };
    for (int s = DET_SEV_NONE; s <= DET_SEV_CRITICAL; s++)
        assert_string_equal(det_severity_name((enum det_severity)s), names[s]);
    for (int s = DET_SEV_LOW; s <= DET_SEV_CRITICAL; s++)
        assert_int_equal(det_severity_parse(names[s]), s);
    assert_string_equal(det_severity_name((enum det_severity)99), "none");
    assert_int_equal(det_severity_parse("none"), -1);  /* not a severity a finding can have */
    assert_int_equal(det_severity_parse("HIGH"), -1);
    assert_int_equal(det_severity_parse("hig"), -1);
    assert_int_equal(det_severity_parse("high "), -1);
    assert_int_equal(det_severity_parse(""), -1);
    /* reason codes: one per bit, distinct, and an unknown bit is "unknown" */
    for (unsigned i = 0; i < DET_R_COUNT; i++) {
        assert_string_not_equal(det_reason_code(1u << i), "unknown");
        assert_true(strlen(det_reason_text(1u << i)) > 10);
        for (unsigned j = 0; j < i; j++)
            assert_string_not_equal(det_reason_code(1u << i), det_reason_code(1u << j));
    }
    assert_string_equal(det_reason_code(DET_R_ISSUED_BY_LAMBDA), "issued_by_lambda");
    assert_string_equal(det_reason_code(DET_R_PRESIGNED_ONLY), "presigned_url_only");
    assert_string_equal(det_reason_code(3), "unknown");
    assert_string_equal(det_reason_code(1u << DET_R_COUNT), "unknown");
    assert_string_equal(det_reason_text(0), "");
}

/* det_notable: which changes are told to a responder. States are built by hand: the function reads
 * only the outside candidates of each verdict and its finding and severity. */
static void notable_cand(struct det_key *k, struct det_verdict *v, const char *ip, const char *action,
                         const char *region)
{
    struct det_cand *c = &k->cands[k->n_cands];
    memset(c, 0, sizeof *c);
    snprintf(c->ip, sizeof c->ip, "%s", ip);
    snprintf(c->actions[0].name, sizeof c->actions[0].name, "%s", action);
    c->n_actions = 1;
    snprintf(c->regions[0], sizeof c->regions[0], "%s", region);
    c->n_regions = 1;
    v->outside[v->n_outside++] = k->n_cands++;
}

static void test_notable(void **state)
{
    (void)state;
    static struct det_key o, n;
    struct det_verdict vo, vn;
    memset(&o, 0, sizeof o);
    memset(&vo, 0, sizeof vo);
    memset(&vn, 0, sizeof vn);
    /* no finding before, one now */
    vn.finding = 1;
    vn.severity = DET_SEV_HIGH;
    assert_int_equal(det_notable(&o, &vo, &o, &vn), 1);
    /* no finding at all */
    vn.finding = 0;
    assert_int_equal(det_notable(&o, &vo, &o, &vn), 0);
    vo.finding = vn.finding = 1;
    vo.severity = DET_SEV_HIGH;
    notable_cand(&o, &vo, "198.51.100.7", "sts:GetCallerIdentity", "us-east-1");
    n = o;
    vn = vo;
    n.cands[0].count = 99;  /* a refresh: counts and times */
    n.last_seen += 1000;
    assert_int_equal(det_notable(&o, &vo, &n, &vn), 0);
    vn.severity = DET_SEV_CRITICAL;
    assert_int_equal(det_notable(&o, &vo, &n, &vn), 1);
    vn.severity = DET_SEV_HIGH;
    /* a new outside address */
    notable_cand(&n, &vn, "198.51.100.9", "sts:GetCallerIdentity", "us-east-1");
    assert_int_equal(det_notable(&o, &vo, &n, &vn), 1);
    /* the same set at other indices is no change */
    struct det_key o2 = n;
    struct det_verdict vo2 = vn;
    vo2.outside[0] = 1;
    vo2.outside[1] = 0;
    assert_int_equal(det_notable(&o2, &vo2, &n, &vn), 0);
    /* a new action of a known outside address */
    n = o;
    vn = vo;
    snprintf(n.cands[0].actions[1].name, sizeof n.cands[0].actions[1].name, "iam:CreateAccessKey");
    n.cands[0].n_actions = 2;
    assert_int_equal(det_notable(&o, &vo, &n, &vn), 1);
    /* a new region of one */
    n = o;
    snprintf(n.cands[0].regions[1], sizeof n.cands[0].regions[1], "eu-west-1");
    n.cands[0].n_regions = 2;
    assert_int_equal(det_notable(&o, &vo, &n, &vn), 1);
    /* of the state before, only the addresses its verdict held outside count (the engine keeps no
     * other): an address that was the function's and is outside now is new, and an old address
     * slot that is not outside, whatever it holds, is never compared with */
    n = o;
    vn = vo;
    notable_cand(&o, &vo, "203.0.113.5", "sts:GetCallerIdentity", "us-east-1");
    vo.n_outside = 1;  /* 203.0.113.5 was inside */
    notable_cand(&n, &vn, "203.0.113.5", "sts:GetCallerIdentity", "us-east-1");
    assert_int_equal(det_notable(&o, &vo, &n, &vn), 1);
    vn.n_outside = 1;
    memset(&o.cands[1], 0x5A, sizeof o.cands[1]);  /* garbage where nothing is outside */
    assert_int_equal(det_notable(&o, &vo, &n, &vn), 0);
    o.n_cands = n.n_cands = 1;
    /* an outside address judged inside now (fewer) is no event */
    n = o;
    vn = vo;
    vn.n_outside = 0;
    assert_int_equal(det_notable(&o, &vo, &n, &vn), 0);
}

/* ---- workloads: what earlier versions stored stays readable and means the same ---------------- */

/* Three events of a Lambda key: its issuance, a marked call from its address, a desktop CLI call
 * from 198.51.100.7 (as classify.c writes them now: an issuance carries its kind). */
static void v4_events(struct ev_event ev[3])
{
    static const struct {
        enum ev_kind kind;
        const char *id, *ip, *ua, *action;
        int64_t t;
        unsigned flags;
    } e[3] = {
        { EV_ISSUE, "ev-issue", "lambda.amazonaws.com", "lambda.amazonaws.com", "sts:AssumeRole", 1710318801, 0 },
        { EV_USE, "ev-in", "3.5.140.2", "Boto3/1.34.20 exec-env/AWS_Lambda_python3.12", "dynamodb:PutItem", 1710318805,
          EV_F_MARKED },
        { EV_USE, "ev-out", "198.51.100.7", "aws-cli/2.15.0 Darwin/23.2.0", "s3:ListBuckets", 1710319805, EV_F_DESKTOP },
    };
    for (int i = 0; i < 3; i++) {
        memset(&ev[i], 0, sizeof ev[i]);
        ev[i].kind = e[i].kind;
        ev[i].flags = e[i].flags;
        ev[i].time = e[i].t;
        snprintf(ev[i].id, sizeof ev[i].id, "%s", e[i].id);
        snprintf(ev[i].akid, sizeof ev[i].akid, "ASIAQEXAMPLECODEC004");
        snprintf(ev[i].account, sizeof ev[i].account, "111122223333");
        snprintf(ev[i].region, sizeof ev[i].region, "us-east-1");
        snprintf(ev[i].source_ip, sizeof ev[i].source_ip, "%s", e[i].ip);
        snprintf(ev[i].action, sizeof ev[i].action, "%s", e[i].action);
        snprintf(ev[i].user_agent, sizeof ev[i].user_agent, "%s", e[i].ua);
        snprintf(ev[i].workload_id, sizeof ev[i].workload_id, "orders-fn");
        snprintf(ev[i].role_arn, sizeof ev[i].role_arn, "arn:aws:iam::111122223333:role/orders-fn-role");
    }
    ev[0].expires = 1710362001;
    ev[0].wl_kind = WL_LAMBDA;
    snprintf(ev[1].runtime, sizeof ev[1].runtime, "python3.12");
}

/* det_encode of v4_events' key (judged, peak severity remembered) by the engine of commit 68d46c5,
 * codec version 4: the program that made it applied the same three events (without wl_kind). */
static const char V4_BLOB[] =
    "4357041441534941514558414d504c45434f444543303034030a707974686f6e332e3132aa938bdf0c80ebffd8ae96a6"
    "842901a2938bdf0ca2b690df0c0865762d69737375650c3131313132323232333333330975732d656173742d31096f72"
    "646572732d666e2d61726e3a6177733a69616d3a3a3131313132323232333333333a726f6c652f6f72646572732d666e"
    "2d726f6c65a2b690df0c00a2938bdf0cfaa28bdf0c0000000004020c3139382e35312e3130302e370003010100000040"
    "0003faa28bdf0c0975732d656173742d310665762d6f75740e73333a4c6973744275636b6574731c6177732d636c692f"
    "322e31352e302044617277696e2f32332e322e300000010e73333a4c6973744275636b6574730100010975732d656173"
    "742d3109332e352e3134302e3200030101000001010007aa938bdf0c0975732d656173742d310565762d696e1064796e"
    "616d6f64623a5075744974656d2c426f746f332f312e33342e323020657865632d656e762f4157535f4c616d6264615f"
    "707974686f6e332e31320000011064796e616d6f64623a5075744974656d0100010975732d656173742d31";

static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
    size_t n = strlen(h) / 2;
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned b;
        assert_int_equal(sscanf(h + 2 * i, "%2x", &b), 1);
        out[i] = (uint8_t)b;
    }
    return n;
}

/* A key state written by version 4 reads as Lambda's, with the same verdict; re-encoded it is
 * exactly the state the same events make today. */
static void test_codec_reads_v4(void **state)
{
    (void)state;
    static struct det_key old, fresh;
    static uint8_t v4[DET_ENCODED_MAX], a[DET_ENCODED_MAX], b[DET_ENCODED_MAX];
    size_t n = unhex(V4_BLOB, v4, sizeof v4);
    assert_int_equal(v4[2], 4);
    assert_int_equal(det_decode(&old, v4, n), 0);
    assert_true(old.issued);
    assert_int_equal(old.iss[0].kind, WL_LAMBDA);
    assert_string_equal(old.workload_id, "orders-fn");
    assert_int_equal(det_kind(&old, NULL), WL_LAMBDA);
    struct det_verdict v;
    det_judge(&old, NULL, &v);
    assert_true(v.finding && v.lambda && v.workload);
    assert_int_equal(v.severity, DET_SEV_CRITICAL);
    assert_int_equal(v.mode, WL_VERDICT_FULL);

    struct ev_event ev[3];
    v4_events(ev);
    det_key_init(&fresh, "ASIAQEXAMPLECODEC004");
    for (int i = 0; i < 3; i++)
        assert_int_equal(det_apply(&fresh, &ev[i]), 1);
    det_judge(&fresh, NULL, &v);
    det_remember(&fresh, &v);
    int la = det_encode(&old, a, sizeof a), lb = det_encode(&fresh, b, sizeof b);
    assert_true(la > 0);
    assert_int_equal(la, lb);
    assert_int_equal(a[2], 5);  /* written back in the current version */
    assert_memory_equal(a, b, (size_t)la);
    /* a version 4 blob carries no workload fields: read as version 5 it no longer parses */
    v4[2] = 5;
    assert_int_equal(det_decode(&old, v4, n), -1);
}

/* The identities earlier versions stored in the duplicate sets (values printed by the engine of
 * commit 68d46c5 for these events): a redelivered Lambda issuance or use must still be a duplicate
 * during a rolling upgrade, or one issuance counted twice would read as a conflicting issuance. */
static void test_event_hash_unchanged(void **state)
{
    (void)state;
    struct ev_event ev[3];
    v4_events(ev);
    assert_true(det_event_hash(&ev[0]) == 11146633357764691882ull);
    assert_true(det_event_hash(&ev[1]) == 18308344907068314810ull);
    assert_true(det_event_hash(&ev[2]) == 13380433515846921974ull);
    /* and what workloads add is covered: another issuer, an AWS-written identity, a marker */
    struct ev_event e = ev[0];
    e.wl_kind = WL_ECS;
    assert_true(det_event_hash(&e) != det_event_hash(&ev[0]));
    e = ev[2];
    e.wl_ident = WL_MASK(WL_EC2);
    assert_true(det_event_hash(&e) != det_event_hash(&ev[2]));
    e = ev[2];
    e.wl_markers = WL_MASK(WL_ECS);
    assert_true(det_event_hash(&e) != det_event_hash(&ev[2]));
}

/* det_kind ranks the evidence (docs/workloads.md 5.3) whatever the order it came in, and a marker,
 * the one thing a thief chooses, never outranks what AWS writes. */
static void test_kind_ranking(void **state)
{
    (void)state;
    struct ev_event ev[6];
    v4_events(ev);  /* ev[0] an issuance, ev[1..2] uses: reshaped below */
    struct ev_event marker = ev[2], weak = ev[2], lam = ev[1], ident = ev[2], eks = ev[0], ecs = ev[0];
    snprintf(marker.id, sizeof marker.id, "ev-marker");
    marker.wl_markers = WL_MASK(WL_ECS);
    marker.flags |= EV_F_WL_MARKED;
    snprintf(weak.id, sizeof weak.id, "ev-weak");
    weak.wl_weak = WL_MASK(WL_CODEBUILD);
    snprintf(ident.id, sizeof ident.id, "ev-ident");
    ident.wl_ident = WL_MASK(WL_EC2);
    snprintf(eks.id, sizeof eks.id, "ev-eks");
    eks.wl_kind = WL_EKS;
    snprintf(ecs.id, sizeof ecs.id, "ev-ecs");
    ecs.wl_kind = WL_ECS;
    ecs.time = eks.time + 1;  /* a later issuance of another kind: a conflict, not a new kind */
    /* each step adds stronger evidence; the kind it must give. ec2RoleDelivery (ident) does not
     * outrank the Lambda marker here: a marked call went without it, which AWS never writes for an
     * IMDS key (a forged identity must not move a Lambda key to the outside-AWS rules). */
    const struct ev_event *steps[] = { &marker, &weak, &lam, &ident, &eks, &ecs };
    const enum wl_kind kinds[] = { WL_ECS, WL_CODEBUILD, WL_LAMBDA, WL_LAMBDA, WL_EKS, WL_EKS };
    const enum wl_verdict modes[] = { WL_VERDICT_OUTSIDE_AWS, WL_VERDICT_OUTSIDE_AWS, WL_VERDICT_FULL,
                                      WL_VERDICT_FULL, WL_VERDICT_FULL, WL_VERDICT_FULL };
    static struct det_key k, r;
    struct det_verdict v;
    det_key_init(&k, "ASIAQEXAMPLECODEC004");
    for (size_t i = 0; i < 6; i++) {
        det_apply(&k, steps[i]);
        det_judge(&k, NULL, &v);
        assert_int_equal(det_kind(&k, NULL), kinds[i]);
        assert_int_equal(v.kind, kinds[i]);
        assert_int_equal(v.mode, modes[i]);
        assert_true(v.workload);
        /* the same evidence backwards gives the same kind */
        det_key_init(&r, "ASIAQEXAMPLECODEC004");
        for (size_t j = i + 1; j-- > 0;)
            det_apply(&r, steps[j]);
        assert_int_equal(det_kind(&r, NULL), kinds[i]);
    }
    assert_int_equal(k.n_issues, 2);  /* both issuances kept: the verdict reports the conflict */
    assert_int_equal(k.iss[0].kind, WL_EKS);
    /* switched off: the kind is no longer judged (state kept from before), and a new key's
     * evidence of that kind is not taken in */
    struct det_ctx ctx = { .kinds = WL_MASK_ALL & ~WL_MASK(WL_EKS) };
    det_judge(&k, &ctx, &v);
    assert_int_equal(v.kind, WL_NONE);
    assert_false(v.workload || v.finding);
    det_key_init(&r, "ASIAQEXAMPLECODEC004");
    assert_int_equal(det_apply_ctx(&r, &eks, &ctx), 0);
    assert_false(r.issued);
    ctx.kinds = WL_MASK(WL_LAMBDA);
    det_apply_ctx(&r, &marker, &ctx);  /* a use stays a use, without the ECS marker */
    assert_int_equal(r.wl_markers, 0);
    assert_int_equal(det_kind(&r, NULL), WL_NONE);
    ctx.kinds = WL_MASK(WL_ECS);
    det_apply_ctx(&r, &lam, &ctx);  /* Lambda switched off: its marker is dropped too */
    assert_false(r.marked);
    assert_int_equal(det_kind(&r, NULL), WL_NONE);
    /* the texts speak of the workload; Lambda's keep their words */
    assert_string_equal(det_reason_text_for(DET_R_OUTSIDE_ADDRESS, WL_LAMBDA), det_reason_text(DET_R_OUTSIDE_ADDRESS));
    assert_non_null(strstr(det_reason_text_for(DET_R_OUTSIDE_ADDRESS, WL_EC2), "workload's network"));
    assert_null(strstr(det_reason_text_for(DET_R_NEW_REGION, WL_ECS), "function"));
    assert_string_equal(det_reason_text_for(DET_R_INSIDE_AWS, WL_EKS), det_reason_text(DET_R_INSIDE_AWS));
    /* a thief's Lambda marker on an EC2 key's calls (AWS writes ec2RoleDelivery on them too) leaves
     * it an EC2 key; ec2RoleDelivery outranks the marker when no marked call contradicts it */
    struct ev_event lam_ec2 = lam;
    lam_ec2.wl_ident = WL_MASK(WL_EC2);
    det_key_init(&r, "ASIAQEXAMPLECODEC004");
    det_apply(&r, &ident);
    det_apply(&r, &lam_ec2);
    enum wl_evidence strongest;
    assert_int_equal(det_kind(&r, &strongest), WL_EC2);
    assert_int_equal(strongest, WL_EV_IDENTITY);
    det_apply(&r, &lam);  /* and a marked call without it makes the identity doubtful: Lambda's rules */
    assert_int_equal(det_kind(&r, &strongest), WL_LAMBDA);
    assert_int_equal(strongest, WL_EV_MARKER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notable),
        cmocka_unit_test(test_codec_full_roundtrip),
        cmocka_unit_test(test_codec_applied_roundtrip),
        cmocka_unit_test(test_codec_rejects),
        cmocka_unit_test(test_codec_rejects_unsorted),
        cmocka_unit_test(test_codec_rejects_counts),
        cmocka_unit_test(test_bounded_sets_order),
        cmocka_unit_test(test_codec_bool_fields),
        cmocka_unit_test(test_codec_time_range), cmocka_unit_test(test_codec_reads_v4),
        cmocka_unit_test(test_event_hash_unchanged), cmocka_unit_test(test_kind_ranking),
        cmocka_unit_test(test_expires_at), cmocka_unit_test(test_slots_left_as_they_were),
        cmocka_unit_test(test_action_sensitive),
        cmocka_unit_test(test_severity_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
