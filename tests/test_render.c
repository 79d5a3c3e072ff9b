/* test_render.c — render.c writes its documents without a JSON tree; this suite proves that the
 * output is byte for byte what the jansson renderer it replaced (kept below, test-only, as the
 * oracle) gave: json_dumps(JSON_COMPACT | JSON_ENSURE_ASCII) of the same tree. Varied key states
 * and verdicts (every workload kind, severity, verdict mode and reason; 0 to 16 addresses; strings
 * a sender chose: quotes, backslashes, control characters, non-ASCII, invalid UTF-8, fields at
 * their bound) are rendered both ways and compared, for the evidence, the key context and the
 * finding. A few direct checks pin the escaping itself, oracle or not.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "cw.h"
#include "render.h"

#define ROUNDS 4000  /* random states per run; every kind x severity x mode many times over */

/* ---- the oracle: render.c as it was (commit bffa627), on jansson ------------------------------- */

static json_t *o_time_or_null(int64_t secs)
{
    if (!secs)
        return json_null();
    char b[CW_TIME_MAX];
    cw_time_format(secs * 1000, 0, b, sizeof b);
    return json_string(b);
}

static json_t *o_str_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

static json_t *o_use(const struct det_use *u, const char *ip)
{
    json_t *o = json_object();
    json_object_set_new(o, "at", o_time_or_null(u->at));
    json_object_set_new(o, "event_id", json_string(u->event_id));
    json_object_set_new(o, "source_ip", json_string(ip));
    json_object_set_new(o, "user_agent", json_string(u->user_agent));
    json_object_set_new(o, "action", json_string(u->action));
    json_object_set_new(o, "outcome", json_string(u->failed ? "failed" : "succeeded"));
    return o;
}

static json_t *o_ips(const struct det_key *k, const uint8_t *idx, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(k->cands[idx[i]].ip));
    return a;
}

static json_t *o_conflicting(const struct det_key *k)
{
    if (k->n_issues < 2)
        return json_null();
    const struct det_issue *i = &k->iss[1];
    json_t *o = json_object();
    json_object_set_new(o, "records", json_integer(k->n_issues));
    json_object_set_new(o, "event_id", json_string(i->event_id));
    json_object_set_new(o, "issued_at", o_time_or_null(i->at));
    json_object_set_new(o, "account_id", o_str_or_null(i->account));
    json_object_set_new(o, "region", o_str_or_null(i->region));
    json_object_set_new(o, "kind", json_string(wl_kind_name((enum wl_kind)i->kind)));
    json_object_set_new(o, "workload_id", o_str_or_null(i->workload_id));
    json_object_set_new(o, "function_name", o_str_or_null(i->kind == WL_LAMBDA ? i->workload_id : ""));
    json_object_set_new(o, "role_arn", o_str_or_null(i->role_arn));
    return o;
}

static json_t *o_outside_sources(const struct det_key *k, const struct det_verdict *v)
{
    static const char *const why[] = { "outside_address", "copied_user_agent", "inside_aws", "foreign_vpc_endpoint",
                                       "other_address" };
    json_t *a = json_array();
    for (size_t i = 0; i < v->n_outside; i++) {
        const struct det_cand *c = &k->cands[v->outside[i]];
        json_t *o = json_object();
        json_object_set_new(o, "ip", json_string(c->ip));
        json_object_set_new(o, "network", json_string(v->outside_class[i]));
        json_object_set_new(o, "why", json_string(why[v->outside_why[i]]));
        json_object_set_new(o, "count", json_integer(c->count));
        json_object_set_new(o, "succeeded", json_integer(c->ok_count));
        json_object_set_new(o, "first_at", o_time_or_null(c->first.at));
        json_object_set_new(o, "last_at", o_time_or_null(c->last.at));
        json_object_set_new(o, "vpc_endpoint_account", o_str_or_null(c->vpce_account));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *o_allowed_sources(const struct det_key *k, const struct det_verdict *v)
{
    json_t *a = json_array();
    for (size_t i = 0; i < v->n_allowed; i++) {
        const struct det_cand *c = &k->cands[v->allowed[i]];
        json_t *o = json_object();
        json_object_set_new(o, "ip", json_string(c->ip));
        json_object_set_new(o, "network", json_string(v->allowed_class[i]));
        json_object_set_new(o, "count", json_integer(c->count));
        json_array_append_new(a, o);
    }
    return a;
}

static const char *o_function_of(const struct det_key *k, const struct det_verdict *v)
{
    return v->kind == WL_LAMBDA || v->kind == WL_NONE ? k->workload_id : "";
}

static json_t *o_workload(const struct det_key *k, const struct det_verdict *v)
{
    json_t *o = json_object();
    json_object_set_new(o, "kind", v->kind == WL_NONE ? json_null() : json_string(wl_kind_name(v->kind)));
    json_object_set_new(o, "id", o_str_or_null(k->workload_id));
    return o;
}

static char *o_dump(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(o);
    return s;
}

static json_t *o_attack(const struct det_verdict *v)
{
    enum { ALL = 0, LAMBDA_ONLY, OTHERS, IMDS };
    static const struct {
        const char *id, *name;
        int who;
    } attack[] = {
        { "T1078.004", "Valid Accounts: Cloud Accounts", ALL },
        { "T1550.001", "Use Alternate Authentication Material: Application Access Token", ALL },
        { "T1552", "Unsecured Credentials (from the function's environment)", LAMBDA_ONLY },
        { "T1552", "Unsecured Credentials (from the workload's environment)", OTHERS },
        { "T1552.005", "Unsecured Credentials: Cloud Instance Metadata API", IMDS },
    };
    int lam = v->kind == WL_LAMBDA || v->kind == WL_NONE;
    int imds = v->kind == WL_EC2 || v->kind == WL_ECS || v->kind == WL_EKS;
    json_t *at = json_array();
    for (size_t i = 0; i < sizeof attack / sizeof attack[0]; i++) {
        int who = attack[i].who;
        if ((who == LAMBDA_ONLY && !lam) || (who == OTHERS && lam) || (who == IMDS && !imds))
            continue;
        json_t *t = json_object();
        json_object_set_new(t, "id", json_string(attack[i].id));
        json_object_set_new(t, "name", json_string(attack[i].name));
        json_array_append_new(at, t);
    }
    return at;
}

static json_t *o_actions(const struct det_key *k, const struct det_verdict *v)
{
    json_t *acts = json_array();
    const char *prev = NULL;
    for (;;) {
        const char *best = NULL;
        for (size_t i = 0; i < v->n_outside; i++) {
            const struct det_cand *c = &k->cands[v->outside[i]];
            for (size_t a = 0; a < c->n_actions; a++) {
                const char *n = c->actions[a].name;
                if ((!prev || strcmp(n, prev) > 0) && (!best || strcmp(n, best) < 0))
                    best = n;
            }
        }
        if (!best)
            break;
        json_array_append_new(acts, json_string(best));
        prev = best;
    }
    return acts;
}

static json_t *o_reasons(const struct det_verdict *v)
{
    json_t *rs = json_array();
    for (unsigned i = 0; i < DET_R_COUNT; i++) {
        unsigned bit = 1u << i;
        if (!(v->reasons & bit))
            continue;
        json_t *r = json_object();
        json_object_set_new(r, "code", json_string(det_reason_code(bit)));
        json_object_set_new(r, "text", json_string(det_reason_text_for(bit, v->kind)));
        json_array_append_new(rs, r);
    }
    return rs;
}

static char *o_evidence(const struct det_key *k, const struct det_verdict *v, const char *finding_id)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(finding_id));
    json_object_set_new(o, "access_key_id", json_string(k->akid));
    json_object_set_new(o, "account_id", o_str_or_null(k->account));
    json_object_set_new(o, "region", o_str_or_null(v->region));
    json_object_set_new(o, "function_name", o_str_or_null(o_function_of(k, v)));
    json_object_set_new(o, "workload", o_workload(k, v));
    json_object_set_new(o, "role_arn", o_str_or_null(k->role_arn));
    json_object_set_new(o, "runtime", o_str_or_null(k->runtime));
    json_object_set_new(o, "severity", json_string(det_severity_name(v->severity)));
    json_object_set_new(o, "explained", json_boolean(v->explained));
    json_object_set_new(o, "first_outside_at", o_time_or_null(v->outside_first));
    json_object_set_new(o, "last_outside_at", o_time_or_null(v->outside_last));
    json_object_set_new(o, "outside_count", json_integer(v->outside_count));
    json_object_set_new(o, "outside_source_ips", o_ips(k, v->outside, v->n_outside));
    json_object_set_new(o, "outside_sources", o_outside_sources(k, v));
    json_object_set_new(o, "outside_actions", o_actions(k, v));
    json_object_set_new(o, "first_outside_use", v->first_use ? o_use(v->first_use, v->first_cand->ip) : json_null());
    json_object_set_new(o, "last_outside_use", v->last_use ? o_use(v->last_use, v->last_cand->ip) : json_null());
    json_object_set_new(o, "inside_source_ips", o_ips(k, v->inside, v->n_inside));
    json_object_set_new(o, "inside_count", json_integer(v->inside_count));
    json_object_set_new(o, "evicted_count", json_integer(k->evicted_count));
    json_object_set_new(o, "issued_by_event_id", o_str_or_null(k->issued ? k->iss[0].event_id : ""));
    json_object_set_new(o, "issued_at", o_time_or_null(k->issued ? k->iss[0].at : 0));
    json_object_set_new(o, "expires_at", o_time_or_null(k->issued ? k->iss[0].expires : 0));
    json_object_set_new(o, "conflicting_issuance", o_conflicting(k));
    json_object_set_new(o, "reasons", o_reasons(v));
    json_object_set_new(o, "attack", o_attack(v));
    return o_dump(o);
}

static char *o_finding(const struct store_finding *f)
{
    const char *ev = f->evidence_json;
    size_t n = ev ? strlen(ev) : 0;
    if (n < 2 || ev[0] != '{' || ev[n - 1] != '}')
        return NULL;
    char created[CW_TIME_MAX], updated[CW_TIME_MAX];
    cw_time_format(f->created_ms, 1, created, sizeof created);
    cw_time_format(f->updated_ms, 1, updated, sizeof updated);
    json_t *note_j = f->note ? json_string(f->note) : NULL;
    char *note = note_j ? json_dumps(note_j, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
    json_decref(note_j);
    if (f->note && !note)
        return NULL;
    const char *status = store_status_name(f->status);
    size_t cap = n + strlen(status) + (note ? strlen(note) : 4) + 2 * CW_TIME_MAX + 96;
    char *out = malloc(cap);
    if (out)
        snprintf(out, cap, "%.*s%s\"status\":\"%s\",\"note\":%s,\"created_at\":\"%s\",\"updated_at\":\"%s\"}",
                 (int)(n - 1), ev, n > 2 ? "," : "", status, note ? note : "null", created, updated);
    free(note);
    return out;
}

static json_t *o_tally(uint32_t count, int64_t first, int64_t last, json_t *ips)
{
    json_t *o = json_object();
    json_object_set_new(o, "count", json_integer(count));
    json_object_set_new(o, "first_at", o_time_or_null(first));
    json_object_set_new(o, "last_at", o_time_or_null(last));
    json_object_set_new(o, "source_ips", ips);
    return o;
}

static char *o_key_context(const struct det_key *k, const struct det_verdict *v, const char *finding_id)
{
    json_t *o = json_object();
    json_object_set_new(o, "access_key_id", json_string(k->akid));
    json_object_set_new(o, "lambda", json_boolean(v->lambda));
    json_object_set_new(o, "workload", o_workload(k, v));
    json_object_set_new(o, "verdict_rules", json_string(v->mode == WL_VERDICT_FULL ? "full"
                                                        : v->mode == WL_VERDICT_OUTSIDE_AWS ? "outside_aws" : "none"));
    json_object_set_new(o, "issued", json_boolean(k->issued));
    json_object_set_new(o, "runtime_marker", json_boolean(k->marked));
    json_object_set_new(o, "function_name", o_str_or_null(o_function_of(k, v)));
    json_object_set_new(o, "role_arn", o_str_or_null(k->role_arn));
    json_object_set_new(o, "account_id", o_str_or_null(k->account));
    json_object_set_new(o, "region", o_str_or_null(v->region));
    json_object_set_new(o, "issued_by_event_id", o_str_or_null(k->issued ? k->iss[0].event_id : ""));
    json_object_set_new(o, "expires_at", o_time_or_null(k->issued ? k->iss[0].expires : 0));
    json_object_set_new(o, "conflicting_issuance", o_conflicting(k));
    json_object_set_new(o, "evicted_count", json_integer(k->evicted_count));
    json_object_set_new(o, "inside", o_tally(v->inside_count, v->inside_first, v->inside_last,
                                             o_ips(k, v->inside, v->n_inside)));
    json_t *outside = o_tally(v->outside_count, v->outside_first, v->outside_last, o_ips(k, v->outside, v->n_outside));
    json_t *none = o_tally(0, 0, 0, json_array());
    json_object_set_new(outside, "sources", o_outside_sources(k, v));
    json_object_set_new(none, "sources", json_array());
    json_object_set_new(o, "outside", v->workload ? outside : none);
    json_object_set_new(o, "unattributed", v->workload ? none : outside);
    json_object_set_new(o, "not_judged", o_tally(v->unjudged_count, 0, 0, o_ips(k, v->unjudged, v->n_unjudged)));
    json_object_set_new(o, "on_behalf_count", json_integer(k->on_behalf_count));
    json_object_set_new(o, "allowlisted_count", json_integer(v->allowlisted_count));
    json_object_set_new(o, "allowlisted_sources", o_allowed_sources(k, v));
    json_object_set_new(o, "finding_id", o_str_or_null(finding_id));
    return o_dump(o);
}

/* ---- varied states ------------------------------------------------------------------------ */

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(uint32_t n)  /* 0..n-1; xorshift64*, fixed seed: a failure repeats */
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545F4914F6CDD1Dull) >> 32) % n;
}

/* Pieces a sender could put in a string; the invalid ones are not UTF-8 (RFC 3629). */
static const char *const plain_atoms[] = {
    "a", "Z", "0", " ", "/", "~", "\x7f", "arn:aws:iam::111122223333:role/x", "198.51.100.7", "2001:db8::1",
    "\"", "\\", "\\\"", "\"}", "\b", "\f", "\n", "\r", "\t", "\x01", "\x0b", "\x1b", "\x1f",
    "\xc2\x80", "\xc3\xa9", "\xdf\xbf", "\xe0\xa0\x80", "\xe2\x82\xac", "\xed\x9f\xbf", "\xee\x80\x80",
    "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
};
static const char *const bad_atoms[] = {
    "\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xc2", "\xc2\x41", "\xe0\x80\x80", "\xe0\x9f\xbf", "\xed\xa0\x80",
    "\xed\xbf\xbf", "\xe2\x82", "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80",
    "\xf8\x88\x80\x80\x80", "\xfe", "\xff", "\xf0\x9f\x98",
};
#define N_PLAIN (sizeof plain_atoms / sizeof plain_atoms[0])
#define N_BAD (sizeof bad_atoms / sizeof bad_atoms[0])

static void append_atom(char *dst, size_t cap, size_t *len, const char *atom)
{
    size_t n = strlen(atom);
    if (*len + n < cap) {
        memcpy(dst + *len, atom, n);
        *len += n;
    }
}

/* A string for a field of cap bytes: empty, plain, hostile, invalid, random bytes, or at its bound. */
static void rand_str(char *dst, size_t cap)
{
    size_t len = 0, want;
    switch (rnd(10)) {
    case 0:
        break;
    case 1: case 2: case 3:  /* mostly ordinary text */
        want = 1 + rnd((uint32_t)(cap - 1));
        while (len < want && len + 1 < cap)
            dst[len++] = (char)('a' + rnd(26));
        break;
    case 4: case 5:  /* valid, with everything that needs escaping */
        want = 1 + rnd((uint32_t)(cap - 1));
        for (int tries = 0; len < want && tries < 64; tries++)
            append_atom(dst, cap, &len, plain_atoms[rnd(N_PLAIN)]);
        break;
    case 6:  /* one invalid sequence somewhere */
        for (int i = 0, at = (int)rnd(4); i < 4; i++)
            append_atom(dst, cap, &len, i == at ? bad_atoms[rnd(N_BAD)] : plain_atoms[rnd(N_PLAIN)]);
        break;
    case 7:  /* random bytes */
        want = rnd((uint32_t)cap);
        while (len < want)
            dst[len++] = (char)(1 + rnd(255));
        break;
    default:  /* at its bound: cap - 1 bytes, possibly ending inside a character */
        while (len + 1 < cap) {
            size_t before = len;
            append_atom(dst, cap, &len, plain_atoms[rnd(N_PLAIN)]);
            if (len == before)
                dst[len++] = (char)(rnd(2) ? 'x' : 0xe2);
        }
        break;
    }
    dst[len] = 0;
}

static int64_t rand_time(void)
{
    switch (rnd(8)) {
    case 0: return 0;                                  /* never: null */
    case 1: return -(int64_t)rnd(100000000);           /* before 1970 */
    case 2: return 253402300800LL + rnd(1000000);      /* year 10000: the formatter's epoch fallback */
    default: return 1710318801LL + rnd(86400 * 400);
    }
}

static void rand_use(struct det_use *u)
{
    u->at = rand_time();
    rand_str(u->region, sizeof u->region);
    rand_str(u->event_id, sizeof u->event_id);
    rand_str(u->action, sizeof u->action);
    rand_str(u->user_agent, sizeof u->user_agent);
    u->failed = (uint8_t)rnd(2);
}

static void rand_cand(struct det_cand *c)
{
    rand_str(c->ip, sizeof c->ip);
    rand_str(c->vpce_account, sizeof c->vpce_account);
    c->count = rnd(2) ? rnd(10) : UINT32_MAX - rnd(3);
    c->ok_count = rnd(1000);
    rand_use(&c->first);
    rand_use(&c->last);
    c->n_actions = (uint8_t)rnd(DET_CAND_ACTIONS_MAX + 1);
    static const char *const common[] = { "s3:GetObject", "iam:CreateUser", "sts:GetCallerIdentity" };
    for (size_t a = 0; a < c->n_actions; a++) {
        if (rnd(2))  /* shared names: the union removes repeats across addresses */
            snprintf(c->actions[a].name, sizeof c->actions[a].name, "%s", common[rnd(3)]);
        else
            rand_str(c->actions[a].name, sizeof c->actions[a].name);
    }
}

static void rand_issue(struct det_issue *i)
{
    i->at = rand_time();
    i->expires = rand_time();
    i->kind = (uint8_t)rnd(WL_KIND_COUNT);
    rand_str(i->event_id, sizeof i->event_id);
    rand_str(i->account, sizeof i->account);
    rand_str(i->region, sizeof i->region);
    rand_str(i->workload_id, sizeof i->workload_id);
    rand_str(i->role_arn, sizeof i->role_arn);
}

static void rand_key(struct det_key *k)
{
    memset(k, 0, sizeof *k);
    rand_str(k->akid, sizeof k->akid);
    rand_str(k->account, sizeof k->account);
    rand_str(k->workload_id, sizeof k->workload_id);
    rand_str(k->role_arn, sizeof k->role_arn);
    rand_str(k->runtime, sizeof k->runtime);
    k->issued = (uint8_t)rnd(2);
    k->marked = (uint8_t)rnd(2);
    k->n_issues = (uint8_t)(rnd(4) == 0 ? 255 : rnd(4));
    rand_issue(&k->iss[0]);
    rand_issue(&k->iss[1]);
    k->evicted_count = rnd(3) ? 0 : rnd(100000);
    k->on_behalf_count = rnd(50);
    k->n_cands = (uint8_t)rnd(DET_CANDS_MAX + 1);
    for (size_t i = 0; i < k->n_cands; i++)
        rand_cand(&k->cands[i]);
}

/* Indices into k's addresses, as a verdict lists them. */
static uint8_t rand_indices(const struct det_key *k, uint8_t *idx)
{
    if (!k->n_cands)
        return 0;
    uint8_t n = (uint8_t)rnd((uint32_t)k->n_cands + 1);
    for (uint8_t i = 0; i < n; i++)
        idx[i] = (uint8_t)rnd(k->n_cands);
    return n;
}

static void rand_verdict(const struct det_key *k, struct det_verdict *v, unsigned round)
{
    memset(v, 0, sizeof *v);
    v->kind = (enum wl_kind)(round % WL_KIND_COUNT);
    v->severity = (enum det_severity)(round / WL_KIND_COUNT % (DET_SEV_CRITICAL + 1));
    v->mode = (enum wl_verdict)(round / (WL_KIND_COUNT * 5) % 3);
    v->finding = (int)rnd(2);
    v->explained = (int)rnd(2);
    v->workload = v->kind != WL_NONE;
    v->lambda = v->kind == WL_LAMBDA;
    v->reasons = rnd(4) ? (unsigned)rnd(1u << DET_R_COUNT) : (1u << DET_R_COUNT) - 1;
    rand_str(v->region, sizeof v->region);
    v->outside_count = rnd(1000);
    v->outside_first = rand_time();
    v->outside_last = rand_time();
    v->inside_count = rnd(1000);
    v->inside_first = rand_time();
    v->inside_last = rand_time();
    v->n_inside = rand_indices(k, v->inside);
    v->n_allowed = rand_indices(k, v->allowed);
    for (size_t i = 0; i < v->n_allowed; i++)
        rand_str(v->allowed_class[i], sizeof v->allowed_class[i]);
    v->allowlisted_count = rnd(100);
    v->n_unjudged = rand_indices(k, v->unjudged);
    v->unjudged_count = rnd(100);
    v->n_outside = rand_indices(k, v->outside);
    for (size_t i = 0; i < v->n_outside; i++) {
        v->outside_why[i] = (uint8_t)rnd(DET_WHY_OTHER_ADDRESS + 1);
        rand_str(v->outside_class[i], sizeof v->outside_class[i]);
    }
    if (v->n_outside && rnd(4)) {
        v->first_cand = &k->cands[v->outside[rnd(v->n_outside)]];
        v->last_cand = &k->cands[v->outside[rnd(v->n_outside)]];
        v->first_use = &v->first_cand->first;
        v->last_use = rnd(2) ? &v->last_cand->last : &v->last_cand->first;
    }
}

static void assert_same(const char *what, unsigned round, char *want, char *got)
{
    if ((want == NULL) != (got == NULL) || (want && strcmp(want, got) != 0)) {
        size_t i = 0;
        while (want && got && want[i] && want[i] == got[i])
            i++;
        print_error("%s, round %u: differs at byte %zu\n jansson: %s\n writer:  %s\n", what, round, i,
                    want ? want : "(NULL)", got ? got : "(NULL)");
        fail();
    }
    free(want);
    free(got);
}

/* ---- the tests ---------------------------------------------------------------------------- */

static void test_same_as_jansson(void **state)
{
    (void)state;
    struct det_key *k = malloc(sizeof *k);
    struct det_verdict *v = malloc(sizeof *v);
    assert_non_null(k);
    assert_non_null(v);
    char fid[STORE_ID_MAX], note[300];
    for (unsigned round = 0; round < ROUNDS; round++) {
        rand_key(k);
        rand_verdict(k, v, round);
        rand_str(fid, sizeof fid);
        const char *id = rnd(8) ? fid : NULL;
        assert_same("evidence", round, o_evidence(k, v, id), rnd_evidence(k, v, id));
        assert_same("key context", round, o_key_context(k, v, id), rnd_key_context(k, v, id));
        /* the finding: evidence as stored (this round's, empty, or not an object) with a note */
        char *ev = o_evidence(k, v, id);
        rand_str(note, sizeof note);
        int shape = (int)rnd(6);
        struct store_finding f = { 0 };
        f.evidence_json = shape == 0 ? "{}" : shape == 1 ? "[1]" : shape == 2 ? "{" : ev;
        f.note = rnd(3) ? note : NULL;
        f.status = (int)rnd(STORE_ST_COUNT);
        f.created_ms = rand_time() * 1000 + rnd(1000);
        f.updated_ms = rand_time() * 1000 + rnd(1000);
        assert_same("finding", round, o_finding(&f), rnd_finding(&f));
        free(ev);
    }
    free(k);
    free(v);
}

/* A use whose strings hold every class of character the escaper treats apart. */
static void escaped_use(struct det_key *k, struct det_verdict *v, const char *ua)
{
    memset(k, 0, sizeof *k);
    memset(v, 0, sizeof *v);
    snprintf(k->akid, sizeof k->akid, "ASIAQEXAMPLERENDER01");
    k->n_cands = 1;
    snprintf(k->cands[0].ip, sizeof k->cands[0].ip, "198.51.100.7");
    snprintf(k->cands[0].first.user_agent, sizeof k->cands[0].first.user_agent, "%s", ua);
    snprintf(k->cands[0].first.action, sizeof k->cands[0].first.action, "s3:GetObject");
    v->n_outside = 1;
    v->first_cand = v->last_cand = &k->cands[0];
    v->first_use = v->last_use = &k->cands[0].first;
}

static void test_escapes(void **state)
{
    (void)state;
    struct det_key *k = malloc(sizeof *k);
    struct det_verdict v;
    assert_non_null(k);
    /* quote, backslash, the short escapes, other controls as \u00XX, DEL and '/' as they are,
     * non-ASCII as \uXXXX in upper case, above U+FFFF as a surrogate pair */
    escaped_use(k, &v, "q\"b\\s/\b\f\n\r\t\x01\x0b\x1f\x7f\xc3\xa9\xe2\x82\xac\xef\xbf\xbf\xf0\x9f\x98\x80");
    char *doc = rnd_evidence(k, &v, "cwf-x");
    assert_non_null(doc);
    assert_non_null(strstr(doc, "\"user_agent\":\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u000B\\u001F\x7f"
                                "\\u00E9\\u20AC\\uFFFF\\uD83D\\uDE00\",\"action\":\"s3:GetObject\""));
    free(doc);
    /* not UTF-8 (a surrogate, an overlong form, a cut character): the member is left out, as
     * jansson left it, and the document stays valid JSON */
    const char *bad[] = { "a\xed\xa0\x80", "\xc0\xaf", "ok\xe2\x82" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        escaped_use(k, &v, bad[i]);
        doc = rnd_evidence(k, &v, "cwf-x");
        assert_non_null(doc);
        assert_null(strstr(doc, "\"user_agent\""));
        assert_non_null(strstr(doc, "\"source_ip\":\"198.51.100.7\",\"action\":\"s3:GetObject\""));
        json_error_t err;
        json_t *j = json_loads(doc, 0, &err);
        assert_non_null(j);
        json_decref(j);
        free(doc);
    }
    free(k);
}

/* Every byte that needs care, at every position of a string longer than the eight bytes the
 * writer takes at a time, and the plain bytes next to them (' ', DEL), against the oracle. */
static void test_every_position(void **state)
{
    (void)state;
    static const char *const odd[] = { "\x01", "\x1f", "\"", "\\", "\x7f", " ", "~", "\xc3\xa9", "\xe2\x82\xac",
                                       "\xf0\x9f\x98\x80", "\x80", "\xff", "\xed\xa0\x80", "\n" };
    struct det_key *k = malloc(sizeof *k);
    struct det_verdict v;
    assert_non_null(k);
    char ua[EV_UA_MAX];
    for (size_t len = 1; len < 40; len++) {
        for (size_t at = 0; at < len; at++) {
            for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
                size_t ol = strlen(odd[i]);
                if (at + ol > len)
                    continue;
                memset(ua, 'a', len);
                memcpy(ua + at, odd[i], ol);
                ua[len] = 0;
                escaped_use(k, &v, ua);
                assert_same("position", (unsigned)(len * 1000 + at), o_evidence(k, &v, "cwf-x"), rnd_evidence(k, &v, "cwf-x"));
            }
        }
    }
    free(k);
}

/* A note that is not UTF-8 gives no finding document (the API refuses such notes). */
static void test_finding_note(void **state)
{
    (void)state;
    struct store_finding f = { 0 };
    f.evidence_json = "{\"id\":\"cwf-x\"}";
    f.note = "line\nbreak \"quoted\" \xc3\xa9";
    char *doc = rnd_finding(&f);
    assert_non_null(doc);
    assert_string_equal(doc, "{\"id\":\"cwf-x\",\"status\":\"open\",\"note\":\"line\\nbreak \\\"quoted\\\" \\u00E9\","
                             "\"created_at\":\"1970-01-01T00:00:00.000Z\",\"updated_at\":\"1970-01-01T00:00:00.000Z\"}");
    free(doc);
    f.note = "\xff";
    assert_null(rnd_finding(&f));
    f.note = NULL;
    f.evidence_json = "{}";
    doc = rnd_finding(&f);
    assert_non_null(doc);
    assert_string_equal(doc, "{\"status\":\"open\",\"note\":null,\"created_at\":\"1970-01-01T00:00:00.000Z\","
                             "\"updated_at\":\"1970-01-01T00:00:00.000Z\"}");
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_jansson),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_every_position),
        cmocka_unit_test(test_finding_note),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
