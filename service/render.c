/* render.c — findings and key context as JSON (jansson: small documents, not the hot path). */
#include "render.h"

#include "cw.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static json_t *time_or_null(int64_t secs)
{
    if (!secs)
        return json_null();
    char b[CW_TIME_MAX];
    cw_time_format(secs * 1000, 0, b, sizeof b);
    return json_string(b);
}

static json_t *str_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

static json_t *use_json(const struct det_use *u, const char *ip)
{
    json_t *o = json_object();
    json_object_set_new(o, "at", time_or_null(u->at));
    json_object_set_new(o, "event_id", json_string(u->event_id));
    json_object_set_new(o, "source_ip", json_string(ip));
    json_object_set_new(o, "user_agent", json_string(u->user_agent));
    json_object_set_new(o, "action", json_string(u->action));
    json_object_set_new(o, "outcome", json_string(u->failed ? "failed" : "succeeded"));
    return o;
}

static json_t *inside_ips(const struct det_key *k, const struct det_verdict *v)
{
    json_t *a = json_array();
    for (size_t i = 0; i < v->n_inside; i++)
        json_array_append_new(a, json_string(k->cands[v->inside[i]].ip));
    return a;
}

/* The second issuance record of a key (a real key has one), shown so an analyst sees both. */
static json_t *conflicting_issuance(const struct det_key *k)
{
    if (k->n_issues < 2)
        return json_null();
    const struct det_issue *i = &k->iss[1];
    json_t *o = json_object();
    json_object_set_new(o, "records", json_integer(k->n_issues));
    json_object_set_new(o, "event_id", json_string(i->event_id));
    json_object_set_new(o, "issued_at", time_or_null(i->at));
    json_object_set_new(o, "account_id", str_or_null(i->account));
    json_object_set_new(o, "region", str_or_null(i->region));
    json_object_set_new(o, "kind", json_string(wl_kind_name((enum wl_kind)i->kind)));
    json_object_set_new(o, "workload_id", str_or_null(i->workload_id));
    json_object_set_new(o, "function_name", str_or_null(i->kind == WL_LAMBDA ? i->workload_id : ""));
    json_object_set_new(o, "role_arn", str_or_null(i->role_arn));
    return o;
}

static json_t *outside_ips(const struct det_key *k, const struct det_verdict *v)
{
    json_t *a = json_array();
    for (size_t i = 0; i < v->n_outside; i++)
        json_array_append_new(a, json_string(k->cands[v->outside[i]].ip));
    return a;
}

/* Each outside address with its network class and tally. */
static json_t *outside_sources(const struct det_key *k, const struct det_verdict *v)
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
        json_object_set_new(o, "first_at", time_or_null(c->first.at));
        json_object_set_new(o, "last_at", time_or_null(c->last.at));
        json_object_set_new(o, "vpc_endpoint_account", str_or_null(c->vpce_account));
        json_array_append_new(a, o);
    }
    return a;
}

static json_t *allowed_sources(const struct det_key *k, const struct det_verdict *v)
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

/* The Lambda function's name: the workload id of a Lambda key, and of a key no workload claims yet
 * (its session name, as before workloads); null for the other workloads, whose ids are not
 * function names (workload.id has them). */
static const char *function_of(const struct det_key *k, const struct det_verdict *v)
{
    return v->kind == WL_LAMBDA || v->kind == WL_NONE ? k->workload_id : "";
}

/* "workload": {"kind": "ecs", "id": "d190d14a-..."}; kind null when no workload claims the key. */
static json_t *workload_json(const struct det_key *k, const struct det_verdict *v)
{
    json_t *o = json_object();
    json_object_set_new(o, "kind", v->kind == WL_NONE ? json_null() : json_string(wl_kind_name(v->kind)));
    json_object_set_new(o, "id", str_or_null(k->workload_id));
    return o;
}

static char *dump(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(o);
    return s;
}

/* ATT&CK (docs/detection.md): how the key is used, and how it was obtained. */
static json_t *attack_json(const struct det_verdict *v)
{
    /* Lambda keeps its wording; a task, an instance or a pod also serves its keys from a metadata
     * endpoint (IMDS, the ECS credential endpoint, EKS Pod Identity's agent) */
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

char *rnd_evidence(const struct det_key *k, const struct det_verdict *v, const char *finding_id)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(finding_id));
    json_object_set_new(o, "access_key_id", json_string(k->akid));
    json_object_set_new(o, "account_id", str_or_null(k->account));
    json_object_set_new(o, "region", str_or_null(v->region));
    json_object_set_new(o, "function_name", str_or_null(function_of(k, v)));
    json_object_set_new(o, "workload", workload_json(k, v));
    json_object_set_new(o, "role_arn", str_or_null(k->role_arn));
    json_object_set_new(o, "runtime", str_or_null(k->runtime));
    json_object_set_new(o, "severity", json_string(det_severity_name(v->severity)));
    json_object_set_new(o, "explained", json_boolean(v->explained));
    json_object_set_new(o, "first_outside_at", time_or_null(v->outside_first));
    json_object_set_new(o, "last_outside_at", time_or_null(v->outside_last));
    json_object_set_new(o, "outside_count", json_integer(v->outside_count));
    json_object_set_new(o, "outside_source_ips", outside_ips(k, v));
    json_object_set_new(o, "outside_sources", outside_sources(k, v));
    /* union of actions over the outside addresses, sorted and unique */
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
    json_object_set_new(o, "outside_actions", acts);
    json_object_set_new(o, "first_outside_use", v->first_use ? use_json(v->first_use, v->first_cand->ip) : json_null());
    json_object_set_new(o, "last_outside_use", v->last_use ? use_json(v->last_use, v->last_cand->ip) : json_null());
    json_object_set_new(o, "inside_source_ips", inside_ips(k, v));
    json_object_set_new(o, "inside_count", json_integer(v->inside_count));
    json_object_set_new(o, "evicted_count", json_integer(k->evicted_count));
    json_object_set_new(o, "issued_by_event_id", str_or_null(k->issued ? k->iss[0].event_id : ""));
    json_object_set_new(o, "issued_at", time_or_null(k->issued ? k->iss[0].at : 0));
    json_object_set_new(o, "expires_at", time_or_null(k->issued ? k->iss[0].expires : 0));
    json_object_set_new(o, "conflicting_issuance", conflicting_issuance(k));
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
    json_object_set_new(o, "reasons", rs);
    json_object_set_new(o, "attack", attack_json(v));
    return dump(o);
}

char *rnd_finding(const struct store_finding *f)
{
    /* The evidence is a compact JSON object this module wrote; the status fields are spliced in
     * before its closing brace instead of parsing and re-serialising it (that was a quarter of a
     * scan's time). Evidence that is not an object gives NULL: the API shows such a record with
     * its id and triage fields only (api_handlers.c, finding_doc). */
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
        return NULL;  /* out of memory, or a note that is not UTF-8 (the API refuses those) */
    const char *status = store_status_name(f->status);
    size_t cap = n + strlen(status) + (note ? strlen(note) : 4) + 2 * CW_TIME_MAX + 96;
    char *out = malloc(cap);
    if (out)
        snprintf(out, cap, "%.*s%s\"status\":\"%s\",\"note\":%s,\"created_at\":\"%s\",\"updated_at\":\"%s\"}",
                 (int)(n - 1), ev, n > 2 ? "," : "", status, note ? note : "null", created, updated);
    free(note);
    return out;
}

static json_t *tally(uint32_t count, int64_t first, int64_t last, json_t *ips)
{
    json_t *o = json_object();
    json_object_set_new(o, "count", json_integer(count));
    json_object_set_new(o, "first_at", time_or_null(first));
    json_object_set_new(o, "last_at", time_or_null(last));
    json_object_set_new(o, "source_ips", ips);
    return o;
}

char *rnd_key_context(const struct det_key *k, const struct det_verdict *v, const char *finding_id)
{
    json_t *o = json_object();
    json_object_set_new(o, "access_key_id", json_string(k->akid));
    json_object_set_new(o, "lambda", json_boolean(v->lambda));
    json_object_set_new(o, "workload", workload_json(k, v));
    json_object_set_new(o, "verdict_rules", json_string(v->mode == WL_VERDICT_FULL ? "full"
                                                        : v->mode == WL_VERDICT_OUTSIDE_AWS ? "outside_aws" : "none"));
    json_object_set_new(o, "issued", json_boolean(k->issued));
    json_object_set_new(o, "runtime_marker", json_boolean(k->marked));
    json_object_set_new(o, "function_name", str_or_null(function_of(k, v)));
    json_object_set_new(o, "role_arn", str_or_null(k->role_arn));
    json_object_set_new(o, "account_id", str_or_null(k->account));
    json_object_set_new(o, "region", str_or_null(v->region));
    json_object_set_new(o, "issued_by_event_id", str_or_null(k->issued ? k->iss[0].event_id : ""));
    json_object_set_new(o, "expires_at", time_or_null(k->issued ? k->iss[0].expires : 0));
    json_object_set_new(o, "conflicting_issuance", conflicting_issuance(k));
    json_object_set_new(o, "evicted_count", json_integer(k->evicted_count));
    json_object_set_new(o, "inside", tally(v->inside_count, v->inside_first, v->inside_last, inside_ips(k, v)));
    /* Uses of a key with no workload evidence are not judged (yet): shown apart as unattributed. */
    json_t *outside = tally(v->outside_count, v->outside_first, v->outside_last, outside_ips(k, v));
    json_t *none = tally(0, 0, 0, json_array());
    json_object_set_new(outside, "sources", outside_sources(k, v));
    json_object_set_new(none, "sources", json_array());
    json_object_set_new(o, "outside", v->workload ? outside : none);
    json_object_set_new(o, "unattributed", v->workload ? none : outside);
    /* outside-AWS rules: AWS, private and unknown addresses, which nothing tells from the workload's */
    json_t *uj = json_array();
    for (size_t i = 0; i < v->n_unjudged; i++)
        json_array_append_new(uj, json_string(k->cands[v->unjudged[i]].ip));
    json_object_set_new(o, "not_judged", tally(v->unjudged_count, 0, 0, uj));
    json_object_set_new(o, "on_behalf_count", json_integer(k->on_behalf_count));
    json_object_set_new(o, "allowlisted_count", json_integer(v->allowlisted_count));
    json_object_set_new(o, "allowlisted_sources", allowed_sources(k, v));
    json_object_set_new(o, "finding_id", str_or_null(finding_id));
    return dump(o);
}

/* The first occurrence of the tag is the field itself: rnd_evidence writes "severity" before any
 * string a sender chose except the key's context, and every string is JSON-escaped, so a quote
 * inside a chosen string is written \" and never completes the tag. */
int rnd_severity_of(const char *json)
{
    static const char tag[] = "\"severity\":\"";
    const char *p = json ? strstr(json, tag) : NULL;
    if (!p)
        return -1;
    p += sizeof tag - 1;
    const char *q = strchr(p, '"');
    char name[16];
    if (!q || (size_t)(q - p) >= sizeof name)
        return -1;
    memcpy(name, p, (size_t)(q - p));
    name[q - p] = 0;
    return det_severity_parse(name);
}
