/* fuzz_codec.c — the key state codec (det_decode/det_encode) on arbitrary bytes.
 *
 * A blob comes back from Redis, which another version or a corrupt write may have produced, so
 * det_decode must refuse garbage without reading out of bounds and must only produce states the
 * detector can judge. Invariants: when a blob decodes, its encoding fits DET_ENCODED_MAX, decodes
 * to the identical state, and re-encodes to the identical bytes (the encoding is a fixed point);
 * judging and rendering the state's expiry never crash.
 */
#include "fuzz_common.h"

#include "detect.h"

static struct det_key k1, k2;
static uint8_t enc1[DET_ENCODED_MAX], enc2[DET_ENCODED_MAX];

static void check_strings(const struct det_key *k)
{
    fz_check(strnlen(k->akid, sizeof k->akid) < sizeof k->akid, "akid not terminated");
    fz_check(strnlen(k->role_arn, sizeof k->role_arn) < sizeof k->role_arn, "role_arn not terminated");
    fz_check(k->n_issues >= k->issued && (k->n_issues == 0) == !k->issued, "issuance count and flag disagree");
    fz_check(k->n_cands <= DET_CANDS_MAX, "too many candidates");
    for (size_t i = 0; i < k->n_cands; i++) {
        fz_check(k->cands[i].n_actions <= DET_CAND_ACTIONS_MAX, "too many actions");
        fz_check(strnlen(k->cands[i].ip, EV_IP_MAX) < EV_IP_MAX, "candidate ip not terminated");
        fz_check(strnlen(k->cands[i].last.user_agent, EV_UA_MAX) < EV_UA_MAX, "user agent not terminated");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* det_decode leaves the address slots past n_cands as they were (det_key_init): k1 is cleared
     * and k2 filled with garbage, so that the comparison below is of every byte det_decode sets */
    memset(&k1, 0, sizeof k1);
    memset(&k2, 0xA5, sizeof k2);
    if (det_decode(&k1, data, size) != 0)
        return 0;
    check_strings(&k1);

    struct det_verdict v;
    det_judge(&k1, NULL, &v);
    fz_check(v.n_outside <= k1.n_cands, "more outside candidates than candidates");
    (void)det_expires_at(&k1);

    int n1 = det_encode(&k1, enc1, sizeof enc1);
    fz_check(n1 > 0, "a decoded state does not encode");
    fz_check(det_decode(&k2, enc1, (size_t)n1) == 0, "an encoded state does not decode");
    size_t slots = offsetof(struct det_key, cands), past = slots + sizeof k1.cands;
    fz_check(memcmp(&k1, &k2, slots) == 0 && k1.n_cands == k2.n_cands &&
             memcmp(k1.cands, k2.cands, k1.n_cands * sizeof k1.cands[0]) == 0 &&
             memcmp((char *)&k1 + past, (char *)&k2 + past, sizeof k1 - past) == 0,
             "decode(encode(state)) != state");
    int n2 = det_encode(&k2, enc2, sizeof enc2);
    fz_check(n2 == n1 && memcmp(enc1, enc2, (size_t)n1) == 0, "encoding is not a fixed point");
    return 0;
}
