/* detect.c — folding events into key state, and judging the state (domain.md §3–5).
 *
 * Order independence is by construction: det_apply only takes unions, minima, maxima and sums,
 * and every bounded set keeps its smallest members (so the kept set is a function of the set of
 * events, not of their order). det_judge reads the state only.
 */
#include "detect.h"

#include <string.h>

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* Takes src when it is "smaller" (the deterministic choice among conflicting values). */
static void take_min_str(char *dst, size_t cap, const char *src)
{
    if (src[0] && (!dst[0] || strcmp(src, dst) < 0))
        copy_str(dst, cap, src);
}

static void min_time(int64_t *dst, int64_t t)
{
    if (t && (!*dst || t < *dst))
        *dst = t;
}

static void max_time(int64_t *dst, int64_t t)
{
    if (t > *dst)
        *dst = t;
}

void det_key_init(struct det_key *k, const char *akid)
{
    memset(k, 0, sizeof *k);
    copy_str(k->akid, sizeof k->akid, akid);
}

/* (time, event id) order, so "first" and "last" do not depend on arrival. */
static int use_cmp(int64_t at, const char *id, const struct det_use *u)
{
    if (at != u->at)
        return at < u->at ? -1 : 1;
    return strcmp(id, u->event_id);
}

static void use_set(struct det_use *u, const struct ev_event *ev)
{
    u->at = ev->time;
    copy_str(u->region, sizeof u->region, ev->region);
    copy_str(u->event_id, sizeof u->event_id, ev->id);
    copy_str(u->action, sizeof u->action, ev->action);
    copy_str(u->user_agent, sizeof u->user_agent, ev->user_agent);
    u->failed = (ev->flags & EV_F_FAILED) != 0;
}

/* Inserts s into a sorted set of strings keeping the `cap` smallest. Returns its index, or -1
 * when it does not belong to the kept set; *truncated is set when anything was left out. */
static int sorted_insert(char *base, size_t stride, uint8_t *n, size_t cap, const char *s, uint8_t *truncated,
                         int *inserted)
{
    size_t lo = 0, hi = *n;
    *inserted = 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(base + mid * stride, s);
        if (c == 0)
            return (int)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (*n == cap) {
        *truncated = 1;
        if (lo == cap)
            return -1;
        (*n)--; /* evict the largest */
    }
    memmove(base + (lo + 1) * stride, base + lo * stride, (*n - lo) * stride);
    memset(base + lo * stride, 0, stride);
    (*n)++;
    *inserted = 1;
    return (int)lo;
}

static void cand_add_action(struct det_cand *c, const struct ev_event *ev)
{
    /* actions are kept as a sorted set of names; ok is the union over calls */
    size_t lo = 0, hi = c->n_actions;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strcmp(c->actions[mid].name, ev->action);
        if (r == 0) {
            c->actions[mid].ok |= !(ev->flags & EV_F_FAILED);
            return;
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (c->n_actions == DET_CAND_ACTIONS_MAX) {
        c->actions_truncated = 1;
        if (lo == DET_CAND_ACTIONS_MAX)
            return;
        c->n_actions--;
    }
    memmove(&c->actions[lo + 1], &c->actions[lo], (c->n_actions - lo) * sizeof c->actions[0]);
    copy_str(c->actions[lo].name, sizeof c->actions[lo].name, ev->action);
    c->actions[lo].ok = !(ev->flags & EV_F_FAILED);
    c->n_actions++;
}

static void add_cand(struct det_key *k, const struct ev_event *ev)
{
    int inserted;
    int i = sorted_insert((char *)k->cands, sizeof k->cands[0], &k->n_cands, DET_CANDS_MAX, ev->source_ip,
                          &k->cands_truncated, &inserted);
    if (i < 0)
        return;
    struct det_cand *c = &k->cands[i];
    if (inserted) {
        copy_str(c->ip, sizeof c->ip, ev->source_ip);
        use_set(&c->first, ev);
        use_set(&c->last, ev);
    } else {
        if (use_cmp(ev->time, ev->id, &c->first) < 0)
            use_set(&c->first, ev);
        if (use_cmp(ev->time, ev->id, &c->last) > 0)
            use_set(&c->last, ev);
    }
    c->count++;
    if (!(ev->flags & EV_F_FAILED))
        c->ok_count++;
    if (ev->flags & (EV_F_WORKER | EV_F_COLDSTART))
        c->exempt_count++;
    if (ev->flags & EV_F_PRESIGNED)
        c->presigned_count++;
    c->flags |= ev->flags;
    take_min_str(c->vpce_account, sizeof c->vpce_account, ev->vpce_account);
    cand_add_action(c, ev);
    if (ev->region[0]) {
        int r = sorted_insert((char *)c->regions, sizeof c->regions[0], &c->n_regions, DET_CAND_REGIONS_MAX,
                              ev->region, &c->regions_truncated, &inserted);
        if (r >= 0 && inserted)
            copy_str(c->regions[r], sizeof c->regions[r], ev->region);
    }
}

static void add_inside_ip(struct det_key *k, const char *ip)
{
    int inserted;
    int i = sorted_insert((char *)k->inside_ips, sizeof k->inside_ips[0], &k->n_inside_ips, DET_INSIDE_IPS_MAX, ip,
                          &k->inside_ips_truncated, &inserted);
    if (i >= 0 && inserted)
        copy_str(k->inside_ips[i], sizeof k->inside_ips[i], ip);
}

/* A marked call from an address that is neither AWS, private, nor allow-listed: the runtime's
 * user agent, sent from somewhere else. Needs the AWS ranges to be told at all. */
static int copied_marker(const struct ev_event *ev, const struct det_ctx *ctx)
{
    struct nr_match m;
    if (!ctx || !ctx->net || !ctx->aws_ranges || !(ev->flags & EV_F_MARKED))
        return 0;
    return nr_lookup(ctx->net, ev->source_ip, &m) == NR_EXTERNAL;
}

int det_apply(struct det_key *k, const struct ev_event *ev)
{
    return det_apply_ctx(k, ev, NULL);
}

int det_apply_ctx(struct det_key *k, const struct ev_event *ev, const struct det_ctx *ctx)
{
    if (ev->kind == EV_OTHER || strcmp(ev->akid, k->akid) != 0)
        return 0;
    min_time(&k->first_seen, ev->time);
    max_time(&k->last_seen, ev->time);
    if (ev->kind == EV_ISSUE) {
        /* One issuance per key in practice; if two differ, the smaller event id wins. */
        if (!k->issued || strcmp(ev->id, k->issue_event_id) < 0) {
            k->issued = 1;
            copy_str(k->issue_event_id, sizeof k->issue_event_id, ev->id);
            k->issued_at = ev->time;
            k->expires = ev->expires ? ev->expires : ev->time + DET_CRED_LIFETIME;
            copy_str(k->account, sizeof k->account, ev->account);
            copy_str(k->region, sizeof k->region, ev->region);
            copy_str(k->function, sizeof k->function, ev->function);
            copy_str(k->role_arn, sizeof k->role_arn, ev->role_arn);
        }
        return 1;
    }
    /* A use: context fields come from the issuance when there is one, else the smallest seen. */
    if (!k->issued) {
        take_min_str(k->account, sizeof k->account, ev->account);
        take_min_str(k->function, sizeof k->function, ev->function);
        take_min_str(k->role_arn, sizeof k->role_arn, ev->role_arn);
    }
    min_time(&k->session_created, ev->session_created);
    if (ev->flags & EV_F_ON_BEHALF) {
        k->on_behalf_count++;  /* neither inside nor outside */
        return 1;
    }
    if ((ev->flags & EV_F_MARKED) && !(ev->flags & (EV_F_WORKER | EV_F_COLDSTART)) && !copied_marker(ev, ctx)) {
        k->marked = 1;
        k->inside_count++;
        min_time(&k->inside_first, ev->time);
        max_time(&k->inside_last, ev->time);
        take_min_str(k->runtime, sizeof k->runtime, ev->runtime);
        if (!k->issued)
            take_min_str(k->region, sizeof k->region, ev->region);
        add_inside_ip(k, ev->source_ip);
        return 1;
    }
    /* Unmarked, Lambda's own worker / cold-start call, or a copied marker (the cand keeps
     * EV_F_MARKED): judged later against the key's inside addresses and the network knowledge. */
    if (ev->flags & EV_F_MARKED)
        k->marked = 1;  /* even copied, the marker names a Lambda runtime's key */
    add_cand(k, ev);
    return 1;
}

/* ---- verdict ---------------------------------------------------------------------------- */

static int inside_ip(const struct det_key *k, const char *ip)
{
    size_t lo = 0, hi = k->n_inside_ips;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(k->inside_ips[mid], ip);
        if (c == 0)
            return 1;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* Domain.md §4, "critical" list. Matched on service prefix and action name. */
int det_action_sensitive(const char *action)
{
    static const char *const exact[] = {
        "sts:AssumeRole", "sts:GetFederationToken", "secretsmanager:GetSecretValue", "ssm:GetParameter",
        "ssm:GetParameters", "ssm:GetParametersByPath", "kms:Decrypt", "ec2:RunInstances", "cloudtrail:StopLogging", "cloudtrail:DeleteTrail", "cloudtrail:UpdateTrail",
        "cloudtrail:PutEventSelectors", "guardduty:DeleteDetector", "guardduty:UpdateDetector",
        "guardduty:DisassociateFromMasterAccount", "s3:ListBuckets", "s3:GetObject",
        "ec2:CreateKeyPair", "ec2:ImportKeyPair", "ec2:AuthorizeSecurityGroupIngress",
    };
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(action, exact[i]) == 0)
            return 1;
    /* Lambda's event names carry an API version suffix: UpdateFunctionCode20150331v2 */
    static const char *const prefixes[] = { "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
                                            "lambda:CreateFunction", "lambda:AddPermission" };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(action, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    /* every IAM write: Create*, Put*, Attach*, Update*, Add*, Delete*, Set* */
    if (strncmp(action, "iam:", 4) == 0) {
        static const char *const verbs[] = { "Create", "Put", "Attach", "Update", "Add", "Delete", "Set",
                                             "Detach", "Remove", "Upload" };
        for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
            if (strncmp(action + 4, verbs[i], strlen(verbs[i])) == 0)
                return 1;
    }
    return 0;
}

static int org_account(const struct det_ctx *ctx, const char *acct)
{
    for (size_t i = 0; i < ctx->n_accounts; i++)
        if (strcmp(ctx->accounts[i], acct) == 0)
            return 1;
    return 0;
}

static enum det_severity max_sev(enum det_severity a, enum det_severity b)
{
    return a > b ? a : b;
}

/* Severity of one outside address (domain.md §4), before the key-wide raises. */
static enum det_severity cand_severity(const struct det_cand *c, enum det_why why, enum nr_class cls)
{
    int sensitive_ok = 0;
    for (size_t a = 0; a < c->n_actions; a++)
        if (c->actions[a].ok && det_action_sensitive(c->actions[a].name))
            sensitive_ok = 1;
    if (why == DET_WHY_COPIED_MARKER)
        return DET_SEV_CRITICAL;
    if (c->presigned_count == c->count)
        return DET_SEV_LOW;  /* a browser fetching a presigned URL made with the key */
    if (why == DET_WHY_INSIDE_AWS)
        return sensitive_ok ? DET_SEV_HIGH : DET_SEV_MEDIUM;
    if (sensitive_ok && cls != NR_AWS)
        return DET_SEV_CRITICAL;
    if (c->ok_count > c->presigned_count || (c->flags & EV_F_DESKTOP))
        return DET_SEV_HIGH;
    return DET_SEV_MEDIUM;  /* every call failed */
}

void det_judge(const struct det_key *k, const struct det_ctx *ctx, struct det_verdict *v)
{
    memset(v, 0, sizeof *v);
    v->lambda = k->issued || k->marked;
    v->inside_count = k->inside_count;
    v->inside_first = k->inside_first;
    v->inside_last = k->inside_last;
    const struct nr_table *net = ctx ? ctx->net : NULL;
    int all_presigned = 1, ok = 0, sensitive_ok = 0;
    for (size_t i = 0; i < k->n_cands; i++) {
        const struct det_cand *c = &k->cands[i];
        struct nr_match m = { .cls = NR_NOT_IP };
        if (net)
            nr_lookup(net, c->ip, &m);
        int aws = m.cls == NR_AWS;
        enum det_why why = DET_WHY_ADDRESS;
        if ((c->flags & EV_F_VPCE) && ctx && ctx->n_accounts && c->vpce_account[0] &&
            !org_account(ctx, c->vpce_account)) {
            why = DET_WHY_FOREIGN_VPCE;  /* the attacker's own endpoint: outside wherever it is */
        } else if (c->flags & EV_F_MARKED) {
            why = DET_WHY_COPIED_MARKER; /* only cands from a non-AWS address carry the marker */
        } else if (inside_ip(k, c->ip)) {
            continue;
        } else if (m.cls == NR_ALLOW) {
            v->allowlisted_count += c->count;
            v->allowed[v->n_allowed] = (uint8_t)i;
            nr_class_string(&m, v->allowed_class[v->n_allowed], sizeof v->allowed_class[0]);
            v->n_allowed++;
            continue;
        } else if (c->exempt_count == c->count && (!ctx || !ctx->aws_ranges || aws)) {
            /* Lambda's worker / cold-start calls, from AWS: inside-equivalent. From elsewhere the
             * same user agent and call are an attacker's imitation. */
            v->inside_count += c->count;
            min_time(&v->inside_first, c->first.at);
            max_time(&v->inside_last, c->last.at);
            continue;
        } else if (aws && !k->marked) {
            /* a runtime that sends no marker: its own region's AWS addresses are its network */
            if (!k->region[0] || strcmp(m.region, k->region) == 0 || strcmp(m.region, "GLOBAL") == 0) {
                v->inside_count += c->count;
                min_time(&v->inside_first, c->first.at);
                max_time(&v->inside_last, c->last.at);
                continue;
            }
        } else if (aws && k->marked) {
            why = DET_WHY_INSIDE_AWS;    /* GuardDuty's InsideAWS analogue */
        }
        size_t o = v->n_outside++;
        v->outside[o] = (uint8_t)i;
        v->outside_why[o] = (uint8_t)why;
        if (net && (m.cls != NR_EXTERNAL || ctx->aws_ranges))
            nr_class_string(&m, v->outside_class[o], sizeof v->outside_class[o]);
        else  /* without AWS's ranges a public address may be AWS's or anyone's */
            copy_str(v->outside_class[o], sizeof v->outside_class[o], "unknown");
        v->outside_count += c->count;
        v->severity = max_sev(v->severity, cand_severity(c, why, m.cls));
        if (c->presigned_count != c->count)
            all_presigned = 0;
        ok |= c->ok_count > 0;
        for (size_t a = 0; a < c->n_actions; a++)
            if (c->actions[a].ok && det_action_sensitive(c->actions[a].name))
                sensitive_ok = 1;
        if (c->flags & EV_F_DESKTOP)
            v->reasons |= DET_R_DESKTOP_CLIENT;
        if (why == DET_WHY_COPIED_MARKER)
            v->reasons |= DET_R_COPIED_MARKER;
        else if (why == DET_WHY_INSIDE_AWS)
            v->reasons |= DET_R_INSIDE_AWS;
        else if (why == DET_WHY_FOREIGN_VPCE)
            v->reasons |= DET_R_FOREIGN_VPCE;
        for (size_t r = 0; k->region[0] && r < c->n_regions; r++)
            if (strcmp(c->regions[r], k->region) != 0)
                v->reasons |= DET_R_NEW_REGION;
        if (!v->first_use || use_cmp(c->first.at, c->first.event_id, v->first_use) < 0) {
            v->first_use = &c->first;
            v->first_cand = c;
        }
        if (!v->last_use || use_cmp(c->last.at, c->last.event_id, v->last_use) > 0) {
            v->last_use = &c->last;
            v->last_cand = c;
        }
    }
    if (k->issued)
        v->reasons |= DET_R_ISSUED_BY_LAMBDA;
    if (k->marked)
        v->reasons |= DET_R_RUNTIME_MARKER;
    if (v->first_use) {
        v->outside_first = v->first_use->at;
        v->outside_last = v->last_use->at;
    }
    v->finding = v->lambda && v->n_outside > 0;
    if (!v->finding) {
        v->severity = DET_SEV_NONE;
        v->reasons &= DET_R_ISSUED_BY_LAMBDA | DET_R_RUNTIME_MARKER;
        return;
    }
    v->reasons |= DET_R_OUTSIDE_ADDRESS;
    if (v->reasons & DET_R_NEW_REGION)
        v->severity = max_sev(v->severity, DET_SEV_HIGH);
    if (all_presigned)
        v->reasons |= DET_R_PRESIGNED_ONLY;
    else if (sensitive_ok)
        v->reasons |= DET_R_SENSITIVE_ACTION | DET_R_SUCCESSFUL_CALL;
    else if (ok)
        v->reasons |= DET_R_SUCCESSFUL_CALL;
    else
        v->reasons |= DET_R_ALL_FAILED;
}

int64_t det_expires_at(const struct det_key *k)
{
    int64_t end;
    if (k->issued)
        end = k->expires;
    else if (k->marked)
        end = (k->session_created ? k->session_created : k->first_seen) + DET_CRED_LIFETIME;
    else
        end = k->last_seen + DET_PENDING_WINDOW;
    return end + DET_LATE_MARGIN;
}

/* ---- names ------------------------------------------------------------------------------- */

static const char *const sev_names[] = { "none", "low", "medium", "high", "critical" };

const char *det_severity_name(enum det_severity s)
{
    return (unsigned)s < sizeof sev_names / sizeof sev_names[0] ? sev_names[s] : "none";
}

int det_severity_parse(const char *s)
{
    for (int i = DET_SEV_LOW; i <= DET_SEV_CRITICAL; i++)
        if (strcmp(s, sev_names[i]) == 0)
            return i;
    return -1;
}

static const struct {
    const char *code, *text;
} reasons[DET_R_COUNT] = {
    { "issued_by_lambda", "Lambda issued this key (sts:AssumeRole by lambda.amazonaws.com)" },
    { "runtime_marker", "calls with this key carried the Lambda runtime marker (exec-env/AWS_Lambda_*)" },
    { "outside_address", "used from an address the function's runtime never used with this key" },
    { "successful_call", "at least one call from outside succeeded" },
    { "all_calls_failed", "every call from outside failed" },
    { "sensitive_action", "a sensitive action succeeded from outside (IAM write, secrets, KMS decrypt, ...)" },
    { "desktop_client", "an AWS CLI or SDK on a desktop operating system used the key" },
    { "presigned_url_only", "only presigned S3 URLs were used from outside" },
    { "copied_user_agent", "a call carrying the Lambda runtime marker came from a non-AWS address" },
    { "inside_aws", "an unmarked call came from an AWS address this key never used (GuardDuty InsideAWS analogue)" },
    { "foreign_vpc_endpoint", "a call went through a VPC endpoint owned by an account outside the organisation" },
    { "new_region", "the key was used outside in a region the function does not run in" },
};

static int bit_index(unsigned bit)
{
    for (int i = 0; i < DET_R_COUNT; i++)
        if (bit == 1u << i)
            return i;
    return -1;
}

const char *det_reason_code(unsigned bit)
{
    int i = bit_index(bit);
    return i < 0 ? "unknown" : reasons[i].code;
}

const char *det_reason_text(unsigned bit)
{
    int i = bit_index(bit);
    return i < 0 ? "" : reasons[i].text;
}
