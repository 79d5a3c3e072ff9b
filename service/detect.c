/* detect.c — folding events into key state, and judging the state (docs/detection.md).
 *
 * Order independence is by construction: det_apply only takes unions, minima, maxima and sums,
 * and every bounded set keeps its members by a priority that a later event cannot change (an
 * address's enum det_prio; an action's (sensitive, succeeded) pair only rises and is all the set
 * keeps of it), so the kept set is a function of the set of events, not of their order.
 * det_judge reads the state only.
 *
 * Who controls what (docs/detection.md, "Threat model"): the thief chooses the user agent, the
 * request parameters, the actions and where they call from; AWS writes the source address, the
 * VPC endpoint, the event time, the error code and the issuance. Nothing the thief chooses makes
 * a use inside on its own: inside needs an address the thief cannot be at (the key's first marked
 * address when no other address could be the function's, the organisation's VPC endpoints, an
 * allow-listed range, or, for a runtime that never marks its calls, an AWS address of the
 * function's region).
 *
 * Workloads (docs/workloads.md): the rules were written for Lambda and every workload is a profile
 * of them. A key's kind (det_kind) comes from its state: issuance, AWS-written identity, markers.
 * A key whose issuance was seen, or that carries the Lambda marker, gets the full rules; any other
 * workload evidence gets only the outside-AWS rules (a foreign endpoint, an external address),
 * because nothing places its home network. Markers anchor the home address for Lambda and for an
 * issued ECS task only; EC2 instances, EKS pods and CodeBuild builds have no marker, so their
 * region's AWS addresses are their network (rule 7).
 */
#include "detect.h"

#include "cw.h"

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

/* Every field but the address slots: with n_cands 0 none is read, and a slot is cleared when an
 * address takes it (cand_slot) or is decoded into it (det_decode). Clearing all sixteen, 31 KB of
 * the 33 KB, for every new or loaded key was a tenth of the engine's instructions. */
void det_key_init(struct det_key *k, const char *akid)
{
    size_t slots = offsetof(struct det_key, cands), past = slots + sizeof k->cands;
    memset(k, 0, slots);
    memset((char *)k + past, 0, sizeof *k - past);
    copy_str(k->akid, sizeof k->akid, akid);
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

/* Order of uses: time, event id, then the content. The event id is AWS's, but a holder of an ingest
 * token can post a record that reuses a real one's id with other content; both are then applied
 * (the dedup identity covers the content: det_event_hash), and the content decides between them,
 * so "first" and "last" never depend on arrival. */
static int use_fields_cmp(int64_t at, const char *id, const char *action, const char *ua, const char *region,
                          int failed, const struct det_use *u)
{
    int c;
    if (at != u->at)
        return at < u->at ? -1 : 1;
    if ((c = strcmp(id, u->event_id)) || (c = strcmp(action, u->action)) || (c = strcmp(ua, u->user_agent)) ||
        (c = strcmp(region, u->region)))
        return c;
    return failed - (int)u->failed;
}

/* An event against a kept use. The fields are compared as use_set keeps them (cut to their bounds). */
static int use_cmp(const struct ev_event *ev, const struct det_use *u)
{
    if (ev->time != u->at)
        return ev->time < u->at ? -1 : 1;
    int c = strcmp(ev->id, u->event_id);  /* both fit EV_ID_MAX: the decoder refuses longer ids */
    if (c)
        return c;
    struct det_use e;  /* the rare tie: compare what is kept */
    use_set(&e, ev);
    return use_fields_cmp(e.at, e.event_id, e.action, e.user_agent, e.region, e.failed, u);
}

static int use_order(const struct det_use *a, const struct det_use *b)
{
    return use_fields_cmp(a->at, a->event_id, a->action, a->user_agent, a->region, a->failed, b);
}

static int at_id_cmp(int64_t a, const char *aid, int64_t b, const char *bid)
{
    if (a != b)
        return a < b ? -1 : 1;
    return strcmp(aid, bid);
}

static int str_cmp(const void *key, const void *elem)
{
    return strcmp(key, elem);
}

/* Adds s to a sorted set of distinct strings of `stride` bytes each, keeping the `cap` smallest
 * (used where every member is equally important: event regions); *truncated is set when anything
 * was left out. A member already there is left as it is. */
static void sorted_insert(char *base, size_t stride, uint8_t *n, size_t cap, const char *s, uint8_t *truncated)
{
    size_t lo = cw_lower_bound(base, *n, stride, s, str_cmp);
    if (lo < *n && strcmp(base + lo * stride, s) == 0)
        return;
    if (*n == cap) {
        *truncated = 1;
        if (lo == cap)
            return;
        (*n)--; /* evict the largest */
    }
    memmove(base + (lo + 1) * stride, base + lo * stride, (*n - lo) * stride);
    memset(base + lo * stride, 0, stride);
    copy_str(base + lo * stride, stride, s);
    (*n)++;
}

/* ---- actions: sensitive and successful first ------------------------------------------------ */

/* An action's rank: a successful sensitive action, a sensitive attempt, a success, a failure.
 * The rank of a name only rises (ok is a union), so a name pushed out at a lower rank that comes
 * back at a higher one comes back whole: the set keeps nothing else of it. */
static int action_rank(const char *name, int ok)
{
    return det_action_sensitive(name) * 2 + ok;
}

/* Order of the action set: rank descending, then name. */
static int action_cmp(int rank_a, const char *a, int rank_b, const char *b)
{
    if (rank_a != rank_b)
        return rank_a > rank_b ? -1 : 1;
    return strcmp(a, b);
}

static void cand_add_action(struct det_cand *c, const struct ev_event *ev)
{
    int ok = !(ev->flags & EV_F_FAILED);
    /* already kept? then its rank may rise: take it out and put it back where it now belongs */
    for (size_t i = 0; i < c->n_actions; i++) {
        if (strcmp(c->actions[i].name, ev->action) == 0) {
            ok |= c->actions[i].ok;
            memmove(&c->actions[i], &c->actions[i + 1], (c->n_actions - i - 1) * sizeof c->actions[0]);
            c->n_actions--;
            break;
        }
    }
    int rank = action_rank(ev->action, ok);
    size_t pos = 0;
    while (pos < c->n_actions &&
           action_cmp(action_rank(c->actions[pos].name, c->actions[pos].ok), c->actions[pos].name, rank, ev->action) < 0)
        pos++;
    if (c->n_actions == DET_CAND_ACTIONS_MAX) {
        c->actions_truncated = 1;
        if (pos == DET_CAND_ACTIONS_MAX)
            return;
        c->n_actions--;  /* the lowest-ranked goes */
    }
    memmove(&c->actions[pos + 1], &c->actions[pos], (c->n_actions - pos) * sizeof c->actions[0]);
    copy_str(c->actions[pos].name, sizeof c->actions[pos].name, ev->action);
    c->actions[pos].ok = (uint8_t)ok;
    c->n_actions++;
}

/* ---- addresses ------------------------------------------------------------------------------ */

static int org_account(const struct det_ctx *ctx, const char *acct)
{
    for (size_t i = 0; i < ctx->n_accounts; i++)
        if (strcmp(ctx->accounts[i], acct) == 0)
            return 1;
    return 0;
}

/* A VPC endpoint of an account outside the organisation: the attacker's own. Judged only when
 * the organisation's accounts are configured and the record names the endpoint's owner. */
static int foreign_vpce(const struct det_ctx *ctx, const char *vpce_account)
{
    return ctx && ctx->n_accounts && vpce_account[0] && !org_account(ctx, vpce_account);
}

static int own_vpce(const struct det_ctx *ctx, const char *vpce_account)
{
    return ctx && ctx->n_accounts && vpce_account[0] && org_account(ctx, vpce_account);
}

static enum nr_class lookup(const struct det_ctx *ctx, const char *ip, struct nr_match *m)
{
    memset(m, 0, sizeof *m);
    m->cls = NR_NOT_IP;
    m->region = m->service = m->label = "";
    if (ctx && ctx->net)
        nr_lookup(ctx->net, ip, m);
    return m->cls;
}

static enum det_prio address_prio(const struct det_ctx *ctx, const char *ip, const char *vpce_account,
                                  struct nr_match *m)
{
    enum nr_class cls = lookup(ctx, ip, m);
    if (foreign_vpce(ctx, vpce_account))
        return DET_PRIO_FOREIGN_VPCE;
    switch (cls) {
    case NR_ALLOW:
        return DET_PRIO_ALLOWED;
    case NR_PRIVATE:
        return DET_PRIO_PRIVATE;
    case NR_AWS:
        return DET_PRIO_AWS;
    case NR_EXTERNAL:
        return ctx && ctx->aws_ranges ? DET_PRIO_EXTERNAL : DET_PRIO_UNKNOWN;
    default:
        return DET_PRIO_UNKNOWN;
    }
}

/* Order of the address set: priority descending, then address, then endpoint owner. */
static int cand_cmp(unsigned prio_a, const char *ip_a, const char *vpce_a, const struct det_cand *b)
{
    if (prio_a != b->prio)
        return prio_a > b->prio ? -1 : 1;
    int c = strcmp(ip_a, b->ip);
    return c ? c : strcmp(vpce_a, b->vpce_account);
}

/* What the set could not keep: the highest priority, the calls, the AWS regions. An address that
 * is not kept is never kept later (its priority is fixed and whatever ranked above it still does),
 * so these are the same for every arrival order. */
static void note_evicted(struct det_key *k, unsigned prio, const struct nr_match *m, uint32_t count)
{
    if (prio + 1 > k->evicted_prio)
        k->evicted_prio = (uint8_t)(prio + 1);
    k->evicted_count += count;
    if (m->cls == NR_AWS && m->region[0]) {
        sorted_insert((char *)k->evicted_regions, sizeof k->evicted_regions[0], &k->n_evicted_regions,
                      DET_EVICTED_REGIONS_MAX, m->region, &k->evicted_regions_truncated);
    }
}

/* Lambda's worker creates the function's log group and streams; Lambda decrypts the function's
 * environment at cold start. Only those actions, with those shapes, can be exempt. */
static int exempt_shaped(const struct ev_event *ev)
{
    if (ev->flags & EV_F_MARKED)
        return 0;  /* neither component sends the runtime marker */
    if ((ev->flags & EV_F_WORKER) &&
        (strcmp(ev->action, "logs:CreateLogGroup") == 0 || strcmp(ev->action, "logs:CreateLogStream") == 0))
        return 1;
    return (ev->flags & EV_F_COLDSTART) && strcmp(ev->action, "kms:Decrypt") == 0;
}

/* Can an address of this priority be the function's network? Private and AWS addresses can; the
 * rest never can (external, a foreign endpoint), cannot be told (unknown), or are never judged
 * (allow-listed). */
static int own_capable(unsigned prio)
{
    return prio == DET_PRIO_PRIVATE || prio == DET_PRIO_AWS;
}

/* The address a full set gives up for a newcomer, as an index into the 17 addresses the set and
 * the newcomer make in priority order (the newcomer at `pos`). Priority alone would let a thief's
 * sixteen outside addresses push the function's own address out of the evidence, so the first
 * DET_CANDS_OWN_MIN addresses that can be the function's network, and the first
 * DET_CANDS_MAX - DET_CANDS_OWN_MIN of the others, are always kept; what goes is the
 * lowest-priority address beyond both reserves. The choice depends on the set of addresses only
 * (ranks within a class only fall as addresses join, and a reserve only fills), so an address
 * given up is never chosen back: the kept set stays a function of the set of events. */
static size_t cand_victim(const struct det_key *k, size_t pos, unsigned prio)
{
    size_t own = 0, other = 0, victim = 0;
    for (size_t x = 0; x <= DET_CANDS_MAX; x++) {
        unsigned p = x == pos ? prio : k->cands[x < pos ? x : x - 1].prio;
        size_t *rank = own_capable(p) ? &own : &other;
        size_t reserve = own_capable(p) ? DET_CANDS_OWN_MIN : DET_CANDS_MAX - DET_CANDS_OWN_MIN;
        if ((*rank)++ >= reserve)
            victim = x;  /* beyond its reserve; the last such in priority order goes */
    }
    return victim;
}

/* Finds or makes the slot of (address, endpoint owner); NULL when the newcomer is the address a
 * full set gives up (then it is counted as evicted). */
static struct det_cand *cand_slot(struct det_key *k, const struct ev_event *ev, const struct det_ctx *ctx)
{
    struct nr_match m;
    const char *vpce = (ev->flags & EV_F_VPCE) ? ev->vpce_account : "";
    /* the slot is found by its priority, so look it up first (ranges reloaded since keep the old) */
    for (size_t i = 0; i < k->n_cands; i++)
        if (strcmp(k->cands[i].ip, ev->source_ip) == 0 && strcmp(k->cands[i].vpce_account, vpce) == 0)
            return &k->cands[i];
    unsigned prio = address_prio(ctx, ev->source_ip, vpce, &m);
    size_t pos = 0;
    while (pos < k->n_cands && cand_cmp(prio, ev->source_ip, vpce, &k->cands[pos]) > 0)
        pos++;
    if (k->n_cands == DET_CANDS_MAX) {
        size_t victim = cand_victim(k, pos, prio);
        if (victim == pos) {
            note_evicted(k, prio, &m, 1);
            return NULL;
        }
        size_t gi = victim < pos ? victim : victim - 1;
        struct det_cand *gone = &k->cands[gi];
        struct nr_match gm;
        lookup(ctx, gone->ip, &gm);
        note_evicted(k, gone->prio, &gm, gone->count);
        memmove(&k->cands[gi], &k->cands[gi + 1], (k->n_cands - gi - 1) * sizeof k->cands[0]);
        k->n_cands--;
        if (gi < pos)
            pos--;
    }
    memmove(&k->cands[pos + 1], &k->cands[pos], (k->n_cands - pos) * sizeof k->cands[0]);
    struct det_cand *c = &k->cands[pos];
    memset(c, 0, sizeof *c);
    copy_str(c->ip, sizeof c->ip, ev->source_ip);
    copy_str(c->vpce_account, sizeof c->vpce_account, vpce);
    c->prio = (uint8_t)prio;
    use_set(&c->first, ev);
    use_set(&c->last, ev);
    k->n_cands++;
    return c;
}

static void add_cand(struct det_key *k, const struct ev_event *ev, const struct det_ctx *ctx)
{
    struct det_cand *c = cand_slot(k, ev, ctx);
    if (!c)
        return;  /* counted as evicted */
    if (use_cmp(ev, &c->first) < 0)
        use_set(&c->first, ev);
    if (use_cmp(ev, &c->last) > 0)
        use_set(&c->last, ev);
    c->count++;
    if (!(ev->flags & EV_F_FAILED))
        c->ok_count++;
    int exempt = exempt_shaped(ev);
    if (exempt) {
        c->exempt_count++;
        if (ev->flags & EV_F_COLDSTART) {
            if (!c->cold_arns) {
                copy_str(c->cold_arn, sizeof c->cold_arn, ev->cold_arn);
                c->cold_arns = 1;
            } else if (strcmp(ev->cold_arn, c->cold_arn) != 0) {
                c->cold_arns = 2;
                take_min_str(c->cold_arn, sizeof c->cold_arn, ev->cold_arn);
            }
        }
    }
    /* any workload's marker: which one anchors the key's home is det_judge's choice (its kind) */
    if ((ev->flags & (EV_F_MARKED | EV_F_WL_MARKED)) && !exempt) {
        int o = c->marked_count ? at_id_cmp(ev->time, ev->id, c->marked_at, c->marked_id) : -1;
        if (o < 0) {
            c->marked_at = ev->time;
            copy_str(c->marked_id, sizeof c->marked_id, ev->id);
            copy_str(c->marked_region, sizeof c->marked_region, ev->region);
        } else if (o == 0) {  /* one event id, two contents (a forgery): the smaller region */
            take_min_str(c->marked_region, sizeof c->marked_region, ev->region);
        }
        c->marked_count++;
    }
    if (ev->flags & EV_F_PRESIGNED)
        c->presigned_count++;
    c->flags |= ev->flags;
    cand_add_action(c, ev);
    if (ev->region[0])
        sorted_insert((char *)c->regions, sizeof c->regions[0], &c->n_regions, DET_CAND_REGIONS_MAX, ev->region,
                      &c->regions_truncated);
}

/* ---- issuance ------------------------------------------------------------------------------- */

/* An expiry the credentials can really have: after the issue and at most DET_CRED_LIFETIME later
 * (the longest a role session lives). Anything else (a forged 1971, a year 9999) is replaced by
 * the issue time plus the lifetime, so no record can shorten or stretch a key's life. */
static int64_t valid_expiry(const struct ev_event *ev)
{
    int64_t e = ev->expires;
    if (e <= ev->time || e > ev->time + DET_CRED_LIFETIME)
        e = ev->time + DET_CRED_LIFETIME;
    return e;
}

/* An issuance of no stated kind is Lambda's: the only issuer before workloads (and the shape of
 * every event made by hand in the tests). */
static enum wl_kind issue_kind(const struct ev_event *ev)
{
    return ev->wl_kind ? (enum wl_kind)ev->wl_kind : WL_LAMBDA;
}

/* Total order of issuance records by content: time first, then every field. The event id comes
 * last, so it only separates records that agree on everything else. */
static int issue_cmp(const struct det_issue *a, const struct det_issue *b)
{
    int c;
    if (a->at != b->at)
        return a->at < b->at ? -1 : 1;
    if ((c = strcmp(a->account, b->account)) || (c = strcmp(a->region, b->region)) ||
        (c = strcmp(a->workload_id, b->workload_id)) || (c = strcmp(a->role_arn, b->role_arn)))
        return c;
    if (a->expires != b->expires)
        return a->expires < b->expires ? -1 : 1;
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    if ((c = strcmp(a->source_ip, b->source_ip)))
        return c;
    return strcmp(a->event_id, b->event_id);
}

/* A real key has exactly one issuance. A second one (a forged record, posted with a leaked
 * ingest token) must not rewrite the first: both are kept (the two first in issue_cmp order, so
 * the choice does not depend on arrival), the verdict reports the conflict and raises severity,
 * and region-based leniency needs both to agree. */
static void apply_issue(struct det_key *k, const struct ev_event *ev)
{
    struct det_issue n;
    memset(&n, 0, sizeof n);
    n.at = ev->time;
    n.expires = valid_expiry(ev);
    copy_str(n.event_id, sizeof n.event_id, ev->id);
    copy_str(n.account, sizeof n.account, ev->account);
    copy_str(n.region, sizeof n.region, ev->region);
    copy_str(n.workload_id, sizeof n.workload_id, ev->workload_id);
    copy_str(n.role_arn, sizeof n.role_arn, ev->role_arn);
    n.kind = (uint8_t)issue_kind(ev);
    if (n.kind == WL_EKS)  /* IRSA: the pod asked STS itself, from its own network */
        copy_str(n.source_ip, sizeof n.source_ip, ev->source_ip);
    unsigned before = k->n_issues;
    if (k->n_issues < UINT8_MAX)
        k->n_issues++;
    if (before == 0) {
        k->iss[0] = n;
    } else if (issue_cmp(&n, &k->iss[0]) < 0) {
        k->iss[1] = k->iss[0];
        k->iss[0] = n;
    } else if (before == 1 || issue_cmp(&n, &k->iss[1]) < 0) {
        k->iss[1] = n;
    }
    k->issued = 1;
    max_time(&k->expires, n.expires);
    copy_str(k->account, sizeof k->account, k->iss[0].account);
    copy_str(k->workload_id, sizeof k->workload_id, k->iss[0].workload_id);
    copy_str(k->role_arn, sizeof k->role_arn, k->iss[0].role_arn);
}

#define FNV_OFFSET 1469598103934665603ull
#define FNV_PRIME 1099511628211ull

static uint64_t fnv_str(uint64_t h, const char *s)
{
    while (*s)
        h = (h ^ (uint8_t)*s++) * FNV_PRIME;
    return (h ^ 0xffu) * FNV_PRIME;  /* a separator no string contains, so fields cannot run together */
}

static uint64_t fnv_int(uint64_t h, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 0; i < 8; i++, u >>= 8)
        h = (h ^ (u & 0xffu)) * FNV_PRIME;
    return h;
}

uint64_t det_id_hash(const char *id)
{
    uint64_t h = FNV_OFFSET;
    while (*id)
        h = (h ^ (uint8_t)*id++) * FNV_PRIME;
    return h ? h : 1;
}

uint64_t det_event_hash(const struct ev_event *ev)
{
    uint64_t h = fnv_str(FNV_OFFSET, ev->id);
    h = fnv_int(h, ev->kind);
    h = fnv_int(h, ev->flags);
    h = fnv_int(h, ev->time);
    h = fnv_int(h, ev->expires);
    h = fnv_int(h, ev->session_created);
    const char *const fields[] = { ev->akid,    ev->account,  ev->region,   ev->source_ip,    ev->action,
                                   ev->error,   ev->user_agent, ev->runtime, ev->workload_id, ev->role_arn,
                                   ev->vpce_account, ev->cold_arn };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        h = fnv_str(h, fields[i]);
    /* The workload evidence, only where it differs from what every event was before workloads (a
     * Lambda issuance, a use naming none): the identity of an event of those shapes stays what
     * earlier versions stored in the duplicate sets, so instances of two versions side by side in
     * a rolling upgrade still count a redelivered issuance once (counted twice it would read as
     * a conflicting issuance). A use's wl_kind follows from the fields hashed here. */
    if (ev->kind == EV_ISSUE && ev->wl_kind != WL_LAMBDA && ev->wl_kind != WL_NONE)
        h = fnv_int(h, ev->wl_kind);
    if (ev->wl_ident | ev->wl_weak | ev->wl_markers)
        h = fnv_int(h, (int64_t)ev->wl_ident << 16 | (int64_t)ev->wl_weak << 8 | ev->wl_markers);
    return h ? h : 1;
}

/* ---- the order of the kept sets -------------------------------------------------------------- */

/* n strings of `stride` bytes in strictly ascending order: sorted and distinct, as sorted_insert keeps them. */
static int strs_ascending(const char *base, size_t stride, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (strcmp(base + (i - 1) * stride, base + i * stride) >= 0)
            return 0;
    return 1;
}

/* An address's own sets: regions sorted and distinct, action names distinct. Their order by rank is
 * not checked: it follows det_action_sensitive's list, which a later version may change, and a
 * kept state must not be thrown away for that. */
static int cand_ordered(const struct det_cand *c)
{
    if (!strs_ascending((const char *)c->regions, sizeof c->regions[0], c->n_regions))
        return 0;
    for (size_t a = 0; a < c->n_actions; a++)
        for (size_t b = a + 1; b < c->n_actions; b++)
            if (strcmp(c->actions[a].name, c->actions[b].name) == 0)
                return 0;
    return 1;
}

int det_key_ordered(const struct det_key *k)
{
    if (k->n_cands > DET_CANDS_MAX || k->n_evicted_regions > DET_EVICTED_REGIONS_MAX)
        return 0;
    if (k->n_issues >= 2 && issue_cmp(&k->iss[0], &k->iss[1]) > 0)
        return 0;
    if (!strs_ascending((const char *)k->evicted_regions, sizeof k->evicted_regions[0], k->n_evicted_regions))
        return 0;
    for (size_t i = 0; i < k->n_cands; i++) {
        const struct det_cand *c = &k->cands[i];
        if (c->n_regions > DET_CAND_REGIONS_MAX || c->n_actions > DET_CAND_ACTIONS_MAX || !cand_ordered(c))
            return 0;
        if (i && cand_cmp(k->cands[i - 1].prio, k->cands[i - 1].ip, k->cands[i - 1].vpce_account, c) >= 0)
            return 0;  /* by (priority, address, endpoint owner), each once */
    }
    return 1;
}

int det_apply(struct det_key *k, const struct ev_event *ev)
{
    return det_apply_ctx(k, ev, NULL);
}

/* CREDWATCH_WORKLOADS: what a disabled workload's evidence becomes. Its issuance is ignored (a
 * record the detector does not use), its identity and markers are dropped from a use, which stays
 * a use (the key may still be another workload's). 1 when *ev is to be ignored. */
static int gate(const struct ev_event *ev, unsigned kinds, struct ev_event *out)
{
    if (ev->kind == EV_ISSUE)
        return !(kinds & WL_MASK(issue_kind(ev)));
    *out = *ev;
    out->wl_ident &= (uint8_t)kinds;
    out->wl_weak &= (uint8_t)kinds;
    out->wl_markers &= (uint8_t)kinds;
    if (!out->wl_markers)
        out->flags &= ~(unsigned)EV_F_WL_MARKED;
    if (!(kinds & WL_MASK(WL_LAMBDA))) {
        out->flags &= ~(unsigned)EV_F_MARKED;
        out->runtime[0] = 0;
    }
    return 0;
}

int det_apply_ctx(struct det_key *k, const struct ev_event *ev, const struct det_ctx *ctx)
{
    struct ev_event gated;
    if (ev->kind == EV_OTHER || strcmp(ev->akid, k->akid) != 0)
        return 0;
    if (ctx && ctx->kinds && (ctx->kinds & WL_MASK_ALL) != WL_MASK_ALL) {
        if (gate(ev, ctx->kinds, &gated))
            return 0;
        if (ev->kind == EV_USE)
            ev = &gated;
    }
    min_time(&k->first_seen, ev->time);
    max_time(&k->last_seen, ev->time);
    if (ev->kind == EV_ISSUE) {
        apply_issue(k, ev);
        /* IRSA: the pod asks STS itself. An exchange from outside AWS means the token was taken;
         * kept as a union, since a record pushed out of the two kept issuances (by forged earlier
         * ones) must not take that evidence with it. Judged once, with the ranges loaded then, as an
         * address's priority is. */
        struct nr_match m;
        if (issue_kind(ev) == WL_EKS && ctx && ctx->aws_ranges && lookup(ctx, ev->source_ip, &m) == NR_EXTERNAL)
            k->token_outside = 1;
        return 1;
    }
    /* A use: context fields come from the issuance when there is one, else the smallest seen. */
    if (!k->issued) {
        take_min_str(k->account, sizeof k->account, ev->account);
        take_min_str(k->workload_id, sizeof k->workload_id, ev->workload_id);
        take_min_str(k->role_arn, sizeof k->role_arn, ev->role_arn);
    }
    k->wl_ident |= ev->wl_ident;
    k->wl_weak |= ev->wl_weak;
    k->wl_markers |= ev->wl_markers;
    min_time(&k->session_created, ev->session_created);
    if (ev->flags & EV_F_ON_BEHALF) {
        k->on_behalf_count++;  /* neither inside nor outside */
        return 1;
    }
    if ((ev->flags & EV_F_MARKED) && !(ev->wl_ident & WL_MASK(WL_EC2)))
        k->marked_off_ec2 = 1;
    if (ev->flags & EV_F_MARKED) {
        /* even copied, the marker names a Lambda runtime's key; the runtime shown is the one of
         * the earliest marked call (the function's own comes before any replay) */
        uint64_t h = det_id_hash(ev->id);
        if (!k->marked || ev->time < k->runtime_at || (ev->time == k->runtime_at && h < k->runtime_id) ||
            (ev->time == k->runtime_at && h == k->runtime_id && strcmp(ev->runtime, k->runtime) < 0)) {
            copy_str(k->runtime, sizeof k->runtime, ev->runtime);
            k->runtime_at = ev->time;
            k->runtime_id = h;
        }
        k->marked = 1;
    }
    add_cand(k, ev, ctx);
    return 1;
}

/* ---- verdict ---------------------------------------------------------------------------- */

/* Domain: the "critical" list (docs/detection.md). Matched on service prefix and action name. */
int det_action_sensitive(const char *action)
{
    static const char *const exact[] = {
        "sts:AssumeRole", "sts:GetFederationToken", "secretsmanager:GetSecretValue", "ssm:GetParameter",
        "ssm:GetParameters", "ssm:GetParametersByPath", "ssm:GetParameterHistory", "ssm:SendCommand",
        "ssm:StartSession", "kms:Decrypt", "ec2:RunInstances", "cloudtrail:StopLogging", "cloudtrail:DeleteTrail",
        "cloudtrail:UpdateTrail", "cloudtrail:PutEventSelectors", "cloudtrail:DeleteEventDataStore",
        "cloudtrail:StopEventDataStoreIngestion", "cloudtrail:UpdateEventDataStore", "guardduty:DeleteDetector",
        "guardduty:UpdateDetector", "guardduty:DisassociateFromMasterAccount",
        "guardduty:DisassociateFromAdministratorAccount", "guardduty:CreateIPSet", "guardduty:UpdateIPSet",
        "guardduty:CreateFilter", "guardduty:UpdateFilter", "s3:ListBuckets", "s3:GetObject", "ec2:CreateKeyPair",
        "ec2:ImportKeyPair", "ec2:AuthorizeSecurityGroupIngress", "ec2:ModifySecurityGroupRules",
        "ec2-instance-connect:SendSSHPublicKey",
    };
    /* the first byte before the rest: asked for every event, mostly of no listed action */
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (action[0] == exact[i][0] && strcmp(action, exact[i]) == 0)
            return 1;
    /* Lambda's event names carry an API version suffix: UpdateFunctionCode20150331v2 */
    static const char *const prefixes[] = { "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
                                            "lambda:CreateFunction", "lambda:AddPermission",
                                            "lambda:UpdateFunctionUrlConfig", "lambda:PublishLayerVersion" };
    for (size_t i = 0; action[0] == 'l' && i < sizeof prefixes / sizeof prefixes[0]; i++)
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

static enum det_severity max_sev(enum det_severity a, enum det_severity b)
{
    return a > b ? a : b;
}

/* The lowest kind named in a WL_MASK set, WL_NONE for none. */
static enum wl_kind lowest_kind(unsigned mask)
{
    for (int kd = WL_NONE + 1; kd < WL_KIND_COUNT; kd++)
        if (mask & WL_MASK(kd))
            return (enum wl_kind)kd;
    return WL_NONE;
}

enum wl_kind det_kind(const struct det_key *k, enum wl_evidence *strongest)
{
    enum wl_evidence dummy;
    enum wl_evidence *ev = strongest ? strongest : &dummy;
    *ev = WL_EV_NONE;
    if (k->issued) {
        *ev = WL_EV_ISSUANCE;
        return k->iss[0].kind ? (enum wl_kind)k->iss[0].kind : WL_LAMBDA;
    }
    /* ec2RoleDelivery is the only identity field, and EC2's */
    if (k->wl_ident && !(k->marked && k->marked_off_ec2)) {
        *ev = WL_EV_IDENTITY;
        return lowest_kind(k->wl_ident);
    }
    if (k->marked) {
        *ev = WL_EV_MARKER;
        return WL_LAMBDA;
    }
    if (k->wl_weak) {
        *ev = WL_EV_IDENTITY_WEAK;
        return lowest_kind(k->wl_weak);
    }
    if (k->wl_markers)
        *ev = WL_EV_MARKER_WEAK;
    return lowest_kind(k->wl_markers);
}

/* What det_judge works with besides the state. */
struct judge {
    const struct det_key *k;
    const struct det_ctx *ctx;
    enum wl_kind kind;            /* det_kind */
    int full;                     /* the full rules apply (issued, or Lambda-marked) */
    int anchored;                 /* the workload's own calls carry a marker that anchors its home
                                   * (Lambda's; an issued ECS task's): rules 3 and 8 instead of 7 */
    int kind_conflict;            /* two kept issuances name different workloads */
    int aws_ranges;
    int region_conflict;          /* two issuances name different regions: no region leniency */
    const char *region;           /* the function's region, "" unknown */
    const struct det_cand *home;
    struct nr_match m[DET_CANDS_MAX];
};

/* Is the AWS address region r the function's? GLOBAL prefixes (CloudFront origin-facing and
 * others) are no region's: a thief's own distribution or instance can sit behind them, so they
 * never count as the function's region (red-team finding: a Go key used via CloudFront looked
 * inside). */
static int own_region(const struct judge *j, const char *r)
{
    return j->region[0] && !j->region_conflict && strcmp(r, j->region) == 0;
}

/* Can this address be the function's network (before we know which address that is)? Never an
 * address that is certainly not (external, a foreign endpoint) or an allow-listed one (which is
 * never judged). With AWS ranges, an AWS address must be of the issuance's region. */
static int home_eligible(const struct judge *j, const struct det_cand *c, const struct nr_match *m)
{
    switch (c->prio) {
    case DET_PRIO_PRIVATE:
        /* Through a VPC endpoint. With the organisation's accounts known, only its own endpoints
         * (an endpoint of another account, or one whose record names no owner, may be the
         * thief's: red-team finding); without them, any (a documented limit). */
        return !(j->ctx && j->ctx->n_accounts) || own_vpce(j->ctx, c->vpce_account);
    case DET_PRIO_AWS:
        return !j->k->issued || own_region(j, m->region);
    case DET_PRIO_UNKNOWN:
        return !j->aws_ranges;  /* without ranges nothing can be told; with them, not an address */
    default:
        return 0;
    }
}

/* Does the cold-start decrypt's function ARN name this key's function? Each part the key knows
 * (region, account, function name) must match: arn:<partition>:lambda:<region>:<account>:function:<name>[:qualifier]. */
static int arn_names_function(const struct judge *j, const char *arn)
{
    const char *f[8];
    size_t len[8], n = 0;
    const char *p = arn;
    while (n < 8) {
        const char *e = strchr(p, ':');
        f[n] = p;
        len[n] = e ? (size_t)(e - p) : strlen(p);
        n++;
        if (!e)
            break;
        p = e + 1;
    }
    if (n < 7 || len[0] != 3 || strncmp(f[0], "arn", 3) != 0 || len[2] != 6 || strncmp(f[2], "lambda", 6) != 0 ||
        len[5] != 8 || strncmp(f[5], "function", 8) != 0)
        return 0;
    const char *want[3] = { j->region, j->k->account, j->k->workload_id };
    const size_t at[3] = { 3, 4, 6 };
    for (size_t i = 0; i < 3; i++)
        if (want[i][0] && (strlen(want[i]) != len[at[i]] || strncmp(want[i], f[at[i]], len[at[i]]) != 0))
            return 0;
    return 1;
}

/* Lambda's own calls (worker log group/stream creation, cold-start decrypt) are the function's
 * only from where Lambda makes them: an AWS address of the function's region, for the function
 * the issuance names. Without AWS ranges the address cannot be judged and the shape decides. */
static int platform_calls(const struct judge *j, const struct det_cand *c, const struct nr_match *m)
{
    /* Lambda's alone: no public sample shows another platform's own calls with a workload's key
     * (docs/workloads.md 5.6), and the shapes matched are Lambda's worker and cold start */
    if (j->kind != WL_LAMBDA || j->kind_conflict || !c->count || c->exempt_count != c->count)
        return 0;
    if (j->aws_ranges && !(m->cls == NR_AWS && own_region(j, m->region)))
        return 0;
    if (c->cold_arns && (c->cold_arns > 1 || !arn_names_function(j, c->cold_arn)))
        return 0;
    return 1;
}

static int has_ok_action(const struct det_cand *c, const char *name)
{
    for (size_t a = 0; c && a < c->n_actions; a++)
        if (c->actions[a].ok && strcmp(c->actions[a].name, name) == 0)
            return 1;
    return 0;
}

static int has_region(const struct det_cand *c, const char *r)
{
    for (size_t g = 0; c && g < c->n_regions; g++)
        if (strcmp(c->regions[g], r) == 0)
            return 1;
    return 0;
}

static int ok_sensitive(const struct det_action *a)
{
    return a->ok && det_action_sensitive(a->name);
}

/* A successful sensitive action from this address; with `beyond_home`, only one the function's
 * own address never made (the function's own behaviour from a second address is not evidence). */
static int sensitive_ok(const struct det_cand *c, const struct det_cand *home, int beyond_home)
{
    for (size_t a = 0; a < c->n_actions; a++)
        if (ok_sensitive(&c->actions[a]) && !(beyond_home && has_ok_action(home, c->actions[a].name)))
            return 1;
    /* A set that overflowed while full of successful sensitive actions may have given one up that
     * the function's address never made: a thief who repeats the function's eight sensitive
     * actions must not push a ninth out of sight (red-team finding). The set keeps them first, so
     * its lowest-ranked member says whether it was full of them. */
    return beyond_home && c->actions_truncated && c->n_actions && ok_sensitive(&c->actions[c->n_actions - 1]);
}

/* Might this outside address be a second egress of the function's own (inside_aws, other_address)?
 * Then only what the function's own address never did is evidence. */
static int maybe_own_egress(enum det_why why)
{
    return why == DET_WHY_INSIDE_AWS || why == DET_WHY_OTHER_ADDRESS;
}

/* Did this outside address make a successful sensitive action, as the verdict counts one? The
 * severity and the sensitive_action reason both read this answer, so they cannot disagree. */
static int outside_sensitive(const struct judge *j, const struct det_cand *c, enum det_why why)
{
    return maybe_own_egress(why) ? sensitive_ok(c, j->home, 1) : sensitive_ok(c, NULL, 0);
}

/* The runtime marker from a network that is never the function's. */
static int copied_marker(const struct det_cand *c, enum det_why why)
{
    return why == DET_WHY_COPIED_MARKER || (why == DET_WHY_FOREIGN_VPCE && c->marked_count);
}

/* S3 operations an application hands out as presigned URLs (downloads and uploads). */
static int handed_out(const char *action)
{
    static const char *const ops[] = { "s3:GetObject", "s3:PutObject", "s3:HeadObject", "s3:UploadPart",
                                       "s3:CreateMultipartUpload", "s3:CompleteMultipartUpload",
                                       "s3:AbortMultipartUpload" };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(action, ops[i]) == 0)
            return 1;
    return 0;
}

/* Only presigned URLs of the kind an application hands to its users were used from this address:
 * a browser fetching a URL the function made. The thief can sign any request as a presigned URL
 * (the authentication method is the caller's choice), so anything else signed that way (listing,
 * bucket policy, deletes) is judged like any other call (red-team finding). */
static int presigned_only(const struct det_cand *c)
{
    if (c->presigned_count != c->count || c->actions_truncated)
        return 0;
    for (size_t a = 0; a < c->n_actions; a++)
        if (!handed_out(c->actions[a].name))
            return 0;
    return 1;
}

/* Severity of one outside address, before the key-wide raises (docs/detection.md, "Severity");
 * sens is outside_sensitive's answer for it. */
static enum det_severity cand_severity(const struct det_cand *c, enum det_why why, enum nr_class cls, int sens)
{
    if (copied_marker(c, why))
        return DET_SEV_CRITICAL;
    if (presigned_only(c))
        return DET_SEV_LOW;  /* a browser fetching a presigned URL made with the key */
    if (maybe_own_egress(why))
        /* might be the function's own second egress: at most medium, unless it did something
         * sensitive the function's own address never did (all that sens counts here) */
        return sens ? DET_SEV_HIGH : DET_SEV_MEDIUM;
    if (sens && cls != NR_AWS)
        return DET_SEV_CRITICAL;
    /* not presigned-only (that returned above), so any success counts, presigned ones included:
     * comparing successes with presigned calls let failed presigned calls hide successful
     * others (red-team finding) */
    if (c->ok_count || (c->flags & EV_F_DESKTOP))
        return DET_SEV_HIGH;
    return DET_SEV_MEDIUM;  /* every call failed */
}

/* Is any use of this outside address in or from a region the function does not run in? An event
 * region the function's own address also called is not new (a function may call other regions). */
static int new_region(const struct judge *j, const struct det_cand *c, const struct nr_match *m)
{
    if (!j->region[0])
        return 0;
    if (m->cls == NR_AWS && !own_region(j, m->region))
        return 1;  /* from another region's network (or the issuances disagree on the region) */
    if (c->regions_truncated)
        return 1;  /* more regions than kept: one given up may be new (a thief who repeats the
                    * function's four regions must not push a fifth out of sight) */
    for (size_t r = 0; r < c->n_regions; r++)
        if (strcmp(c->regions[r], j->region) != 0 && !has_region(j->home, c->regions[r]))
            return 1;
    return 0;
}

/* The lowest severity a key whose address set overflowed can have: the evicted addresses are not
 * known any more, so they are taken to be as bad as their priority allows. An AWS address cannot
 * make more than high; one of the function's region, for a runtime that never marks its calls,
 * is inside-equivalent, and a flood of those is an anomaly: medium. */
static enum det_severity evicted_floor(const struct judge *j)
{
    const struct det_key *k = j->k;
    if (!k->evicted_prio)
        return DET_SEV_NONE;
    switch (k->evicted_prio - 1) {
    case DET_PRIO_ALLOWED:
        return DET_SEV_NONE;
    case DET_PRIO_PRIVATE:
        return j->full ? DET_SEV_MEDIUM : DET_SEV_NONE;
    case DET_PRIO_AWS: {
        if (!j->full)
            return DET_SEV_NONE;  /* outside-AWS rules: an AWS address is not judged */
        int other = j->anchored || k->evicted_regions_truncated || !j->region[0] || j->region_conflict;
        for (size_t r = 0; r < k->n_evicted_regions; r++)
            other |= !own_region(j, k->evicted_regions[r]);
        return other ? DET_SEV_HIGH : DET_SEV_MEDIUM;
    }
    case DET_PRIO_UNKNOWN:
        return j->full ? DET_SEV_CRITICAL : DET_SEV_NONE;  /* outside-AWS rules: cannot be told */
    default:
        return DET_SEV_CRITICAL;
    }
}

static void count_inside(struct det_verdict *v, const struct det_cand *c)
{
    v->inside_count += c->count;
    min_time(&v->inside_first, c->first.at);
    max_time(&v->inside_last, c->last.at);
}

/* Where one address stands in a verdict. */
enum place {
    PLACE_ALLOWED,   /* allow-listed: never judged, shown in the key's context */
    PLACE_INSIDE,    /* the function's network */
    PLACE_PLATFORM,  /* Lambda's own calls: inside-equivalent, but not the function's network */
    PLACE_UNJUDGED,  /* outside-AWS rules: an address nothing tells from the workload's own */
    PLACE_OUTSIDE    /* judged; *why says why it is outside */
};

/* Where address i stands when address `home` (-1: none) is the key's own: the rules of
 * docs/detection.md ("The verdict", numbered as there) in their order; the first that applies
 * decides. */
static enum place place_of(const struct judge *j, size_t i, int home, enum det_why *why)
{
    const struct det_cand *c = &j->k->cands[i];
    const struct nr_match *m = &j->m[i];
    int marked = j->anchored;
    *why = DET_WHY_ADDRESS;
    if (c->prio == DET_PRIO_FOREIGN_VPCE) {
        *why = DET_WHY_FOREIGN_VPCE;  /* 1: the attacker's own endpoint: outside wherever it is */
        return PLACE_OUTSIDE;
    }
    if (c->prio == DET_PRIO_ALLOWED)  /* 2 */
        return PLACE_ALLOWED;
    if ((int)i == home || own_vpce(j->ctx, c->vpce_account))  /* 3, 4 */
        return PLACE_INSIDE;
    if (platform_calls(j, c, m))  /* 5 */
        return PLACE_PLATFORM;
    if (!j->full && c->prio != DET_PRIO_EXTERNAL)
        return PLACE_UNJUDGED;  /* outside-AWS rules: only 1, 2, 4 and 6 apply */
    switch (c->prio) {
    case DET_PRIO_EXTERNAL:  /* 6 */
        *why = c->marked_count ? DET_WHY_COPIED_MARKER : DET_WHY_ADDRESS;
        break;
    case DET_PRIO_AWS:  /* 7, 8 */
        if (!marked && own_region(j, m->region))
            return PLACE_INSIDE;  /* a runtime that never marks its calls: its region's AWS addresses are its network */
        *why = marked ? DET_WHY_INSIDE_AWS : DET_WHY_ADDRESS;
        break;
    case DET_PRIO_PRIVATE:  /* 9: an endpoint not known to be the organisation's */
        *why = DET_WHY_OTHER_ADDRESS;
        break;
    default:  /* DET_PRIO_UNKNOWN: 9 for a marked address when nothing can be told, else 10 */
        *why = marked && c->marked_count && !j->aws_ranges ? DET_WHY_OTHER_ADDRESS : DET_WHY_ADDRESS;
        break;
    }
    return PLACE_OUTSIDE;
}

/* The reasons one outside address gives. */
static unsigned outside_reasons(const struct judge *j, const struct det_cand *c, enum det_why why,
                                const struct nr_match *m)
{
    unsigned r = 0;
    if (c->flags & EV_F_DESKTOP)
        r |= DET_R_DESKTOP_CLIENT;
    if (copied_marker(c, why))
        r |= DET_R_COPIED_MARKER;
    if (why == DET_WHY_INSIDE_AWS)
        r |= DET_R_INSIDE_AWS;
    else if (why == DET_WHY_FOREIGN_VPCE)
        r |= DET_R_FOREIGN_VPCE;
    else if (why == DET_WHY_OTHER_ADDRESS)
        r |= DET_R_OTHER_ADDRESS;
    if (new_region(j, c, m))
        r |= DET_R_NEW_REGION;
    return r;
}

/* What the key-wide reasons need to know of the outside addresses taken together. */
struct outside_sum {
    int all_presigned;  /* every one used only presigned URLs of the kinds applications hand out */
    int ok;             /* one made a successful call */
    int sens;           /* one made a successful sensitive action, as outside_sensitive reads it */
};

static void judge_outside(const struct judge *j, size_t i, enum det_why why, struct det_verdict *v,
                          struct outside_sum *s)
{
    const struct det_cand *c = &j->k->cands[i];
    const struct nr_match *m = &j->m[i];
    size_t o = v->n_outside++;
    v->outside[o] = (uint8_t)i;
    v->outside_why[o] = (uint8_t)why;
    if (j->ctx && j->ctx->net && (m->cls != NR_EXTERNAL || j->aws_ranges))
        nr_class_string(m, v->outside_class[o], sizeof v->outside_class[o]);
    else  /* without AWS's ranges a public address may be AWS's or anyone's */
        copy_str(v->outside_class[o], sizeof v->outside_class[o], "unknown");
    v->outside_count += c->count;
    int sens = outside_sensitive(j, c, why);
    v->current = max_sev(v->current, cand_severity(c, why, m->cls, sens));
    s->all_presigned &= presigned_only(c);
    s->ok |= c->ok_count > 0;
    s->sens |= sens;
    v->reasons |= outside_reasons(j, c, why, m);
    if (!v->first_use || use_order(&c->first, v->first_use) < 0) {
        v->first_use = &c->first;
        v->first_cand = c;
    }
    if (!v->last_use || use_order(&c->last, v->last_use) > 0) {
        v->last_use = &c->last;
        v->last_cand = c;
    }
}

/* An EKS pod's web identity token exchanged for this key from an address outside AWS: the pod
 * asks STS itself (IRSA), from its node's network, so the token was replayed by someone else.
 * The address is AWS-written; without AWS's ranges it cannot be told and counts for nothing. */
static int issued_outside(const struct judge *j)
{
    const struct det_key *k = j->k;
    if (k->token_outside)
        return 1;
    struct nr_match m;
    for (size_t i = 0; i < k->n_issues && i < 2; i++)
        if (j->aws_ranges && k->iss[i].kind == WL_EKS && k->iss[i].source_ip[0] &&
            lookup(j->ctx, k->iss[i].source_ip, &m) == NR_EXTERNAL)
            return 1;
    return 0;
}

/* The reasons that say why the key is a workload's. */
static unsigned evidence_reasons(const struct judge *j)
{
    const struct det_key *k = j->k;
    unsigned r = 0;
    if (k->issued)
        r |= j->kind == WL_LAMBDA ? DET_R_ISSUED_BY_LAMBDA : DET_R_ISSUED_BY_SERVICE;
    if (k->marked)
        r |= DET_R_RUNTIME_MARKER;
    if (j->kind != WL_NONE && (k->wl_markers & WL_MASK(j->kind)))
        r |= DET_R_WORKLOAD_MARKER;
    if (j->kind != WL_NONE && ((k->wl_ident | k->wl_weak) & WL_MASK(j->kind)))
        r |= DET_R_WORKLOAD_IDENTITY;
    return r;
}

/* The key-wide part, once every address is placed: whether the evidence makes a finding (a
 * workload's key with an outside address, an overflow of the address set, or a stolen IRSA token),
 * what the outside uses did, and the raises that no single address makes (docs/detection.md,
 * "Severity"). */
static void judge_key(const struct judge *j, const struct outside_sum *s, struct det_verdict *v)
{
    const struct det_key *k = j->k;
    v->reasons |= evidence_reasons(j);
    if (v->first_use) {
        v->outside_first = v->first_use->at;
        v->outside_last = v->last_use->at;
    }
    enum det_severity floor = evicted_floor(j);
    int stolen_token = v->workload && j->full && issued_outside(j);
    int now = v->workload && (v->n_outside > 0 || floor > DET_SEV_NONE || stolen_token);
    v->finding = now;
    if (!now) {
        v->current = DET_SEV_NONE;
        return;
    }
    if (v->n_outside) {
        v->reasons |= DET_R_OUTSIDE_ADDRESS;
        if (s->all_presigned)
            v->reasons |= DET_R_PRESIGNED_ONLY;
        else if (s->sens)
            v->reasons |= DET_R_SENSITIVE_ACTION | DET_R_SUCCESSFUL_CALL;
        else if (s->ok)
            v->reasons |= DET_R_SUCCESSFUL_CALL;
        else
            v->reasons |= DET_R_ALL_FAILED;
    }
    if (v->reasons & DET_R_NEW_REGION)
        v->current = max_sev(v->current, DET_SEV_HIGH);
    if (floor > DET_SEV_NONE) {
        v->reasons |= DET_R_TRUNCATED;
        v->current = max_sev(v->current, floor);
    }
    if (k->n_issues >= 2) {
        v->reasons |= DET_R_CONFLICTING_ISSUANCE;
        v->current = max_sev(v->current, DET_SEV_HIGH);
    }
    if (stolen_token) {
        v->reasons |= DET_R_ISSUED_OUTSIDE;
        v->current = max_sev(v->current, DET_SEV_HIGH);
    }
}

/* A key with no issuance and no home has no region of its own (the outside-AWS rules, or a marked
 * key whose marked calls all came from outside). Its finding still needs one to be filed where a
 * responder looks (an ASFF finding's product ARN names a region): the smallest region its calls
 * named (awsRegion), from the kept addresses' sorted region sets, so the same for every order. It
 * only labels the finding: the rules never read it (they read judge.region). */
static void calls_region(const struct det_key *k, struct det_verdict *v)
{
    for (size_t i = 0; i < k->n_cands; i++)
        if (k->cands[i].n_regions && (!v->region[0] || strcmp(k->cands[i].regions[0], v->region) < 0))
            copy_str(v->region, sizeof v->region, k->cands[i].regions[0]);
}

/* Judges the state as if address `home` (-1: none) were the key's own, and the function's region,
 * for a key whose issuance was not seen, that of address `region_of`; v->finding says whether the
 * evidence alone makes a finding (det_judge adds the key's history). */
static void judge_as(const struct judge *jp, int home, int region_of, struct det_verdict *v)
{
    struct judge j = *jp;
    const struct det_key *k = j.k;
    memset(v, 0, sizeof *v);
    v->home = home;
    v->kind = j.kind;
    v->workload = j.kind != WL_NONE;
    v->lambda = j.kind == WL_LAMBDA;
    v->mode = !v->workload ? WL_VERDICT_NONE : j.full ? WL_VERDICT_FULL : WL_VERDICT_OUTSIDE_AWS;
    j.home = home >= 0 ? &k->cands[home] : NULL;
    if (region_of >= 0 && !k->issued)  /* a key seen only in its uses: the region of its own network */
        j.region = j.m[region_of].cls == NR_AWS && strcmp(j.m[region_of].region, "GLOBAL") != 0
                       ? j.m[region_of].region
                       : k->cands[region_of].marked_region;
    copy_str(v->region, sizeof v->region, j.region);
    struct outside_sum s = { 1, 0, 0 };
    for (size_t i = 0; i < k->n_cands; i++) {
        const struct det_cand *c = &k->cands[i];
        enum det_why why;
        switch (place_of(&j, i, home, &why)) {
        case PLACE_ALLOWED:
            v->allowlisted_count += c->count;
            v->allowed[v->n_allowed] = (uint8_t)i;
            nr_class_string(&j.m[i], v->allowed_class[v->n_allowed], sizeof v->allowed_class[0]);
            v->n_allowed++;
            break;
        case PLACE_INSIDE:
            v->inside[v->n_inside++] = (uint8_t)i;
            count_inside(v, c);
            break;
        case PLACE_PLATFORM:
            count_inside(v, c);  /* counted as inside, but not listed as the function's network */
            break;
        case PLACE_UNJUDGED:
            v->unjudged_count += c->count;
            v->unjudged[v->n_unjudged++] = (uint8_t)i;
            break;
        case PLACE_OUTSIDE:
            judge_outside(&j, i, why, v, &s);
            break;
        }
    }
    judge_key(&j, &s, v);
    if (!v->region[0] && v->workload)
        calls_region(k, v);
}

static int may_be_own(const struct judge *j, const struct det_cand *c, const struct nr_match *m)
{
    return c->marked_count && home_eligible(j, c, m);
}

/* More than one address that could be the function's made marked calls (`earliest` the earliest
 * of them). Usually the earliest is the function's, but a thief who reads the key before the
 * function's first marked call (its first calls unmarked, or in the same second) and replays it
 * from an EC2 instance of the function's region is earliest (red-team finding), and nothing in
 * CloudTrail tells the two apart. So neither is assumed inside: every contested address is shown
 * outside, and the severity is the highest that any of them being the function's own gives (never
 * the harsher "none is the function's", which would make a function's own second egress address
 * look like a theft). A thief gains nothing by being first. */
static void judge_contested(const struct judge *j, int earliest, struct det_verdict *v)
{
    const struct det_key *k = j->k;
    judge_as(j, -1, earliest, v);
    enum det_severity sev = DET_SEV_NONE;
    unsigned reasons = 0;
    struct det_verdict alt;
    for (size_t i = 0; i < k->n_cands; i++) {
        if (!may_be_own(j, &k->cands[i], &j->m[i]))
            continue;
        judge_as(j, (int)i, earliest, &alt);
        sev = max_sev(sev, alt.current);
        reasons |= alt.reasons;
    }
    v->current = sev;
    if (reasons & DET_R_SUCCESSFUL_CALL)
        reasons &= ~(unsigned)DET_R_ALL_FAILED;
    if (!(v->reasons & DET_R_PRESIGNED_ONLY))
        reasons &= ~(unsigned)DET_R_PRESIGNED_ONLY;
    v->reasons = reasons | DET_R_CONTESTED_OWN;
}

void det_judge(const struct det_key *k, const struct det_ctx *ctx, struct det_verdict *v)
{
    struct judge j;
    memset(&j, 0, sizeof j);
    j.k = k;
    j.ctx = ctx;
    j.aws_ranges = ctx && ctx->net && ctx->aws_ranges;
    /* a third issuance is a conflict whatever the two kept say (two forged ones that agree with
     * each other must not restore the region leniency: red-team finding) */
    j.region_conflict = k->n_issues > 2 || (k->n_issues == 2 && strcmp(k->iss[0].region, k->iss[1].region) != 0);
    /* Two issuances of different workloads: the earliest decides the kind, and a forger can be
     * earliest. Any leniency a kind gives (rule 7 for unanchored kinds, rule 5 for Lambda) needs the
     * issuances to agree on it, as on the region, so a forged EC2 issuance ahead of a Lambda key's
     * real one cannot make its thief's same-region address inside (a red-team finding). */
    j.kind_conflict = k->n_issues > 2 || (k->n_issues == 2 && k->iss[0].kind != k->iss[1].kind);
    /* The Lambda marker on a key issued to another workload: its calls say Lambda, its issuance says
     * otherwise, and a forged issuance is one record (a thief's marker on an EC2 key's calls carries
     * AWS's ec2RoleDelivery with it, so it does not count here). The marker's anchor and the
     * issuance's region leniency are both withdrawn. */
    if (k->issued && k->marked && k->iss[0].kind != WL_LAMBDA && !(k->iss[0].kind == WL_EC2 && !k->marked_off_ec2))
        j.kind_conflict = 1;
    j.region_conflict |= j.kind_conflict;
    j.region = k->issued ? k->iss[0].region : "";
    enum wl_evidence strongest;
    j.kind = det_kind(k, &strongest);
    if (ctx && ctx->kinds && !(ctx->kinds & WL_MASK(j.kind)))
        j.kind = WL_NONE;  /* state kept from before the workload was switched off */
    j.full = wl_verdict(j.kind, strongest) == WL_VERDICT_FULL;
    j.anchored = (j.kind == WL_LAMBDA && k->marked) ||
                 (j.kind == WL_ECS && k->issued && (k->wl_markers & WL_MASK(WL_ECS)));
    for (size_t i = 0; i < k->n_cands; i++)
        lookup(ctx, k->cands[i].ip, &j.m[i]);
    /* The key's own address: its earliest marked call (by event time, then event id) from an
     * address that can be the function's network. The marker alone (a user agent) never makes an
     * address the function's; being early does, when no other address contests it. */
    int home = -1, contested = 0;
    size_t own_kept = 0;
    for (size_t i = 0; i < k->n_cands; i++) {
        const struct det_cand *c = &k->cands[i];
        own_kept += own_capable(c->prio);
        if (!j.anchored || !may_be_own(&j, c, &j.m[i]))
            continue;
        contested |= home >= 0;
        if (home < 0 || at_id_cmp(c->marked_at, c->marked_id, k->cands[home].marked_at, k->cands[home].marked_id) < 0)
            home = (int)i;
    }
    /* A full reserve of such addresses and an overflow: the function's own address may be among those
     * not kept, so the earliest kept one is not known to be the function's either. */
    if (home >= 0 && own_kept >= DET_CANDS_OWN_MIN && k->evicted_count)
        contested = 1;
    if (!contested)
        judge_as(&j, home, home, v);
    else
        judge_contested(&j, home, v);
    int now = v->finding;
    /* A finding, once committed, stays, and its severity never drops (peak_severity). */
    v->severity = max_sev(v->current, (enum det_severity)k->peak_severity);
    v->finding = now || k->peak_severity > DET_SEV_NONE;
    if (v->finding && !now) {
        v->explained = 1;
        v->reasons |= DET_R_EXPLAINED;
    }
    if (!v->finding)
        v->reasons &= DET_R_ISSUED_BY_LAMBDA | DET_R_RUNTIME_MARKER | DET_R_ISSUED_BY_SERVICE |
                      DET_R_WORKLOAD_MARKER | DET_R_WORKLOAD_IDENTITY;
}

/* The outside candidate of v (judged on k) with c's address and endpoint account, or NULL. */
static const struct det_cand *outside_match(const struct det_key *k, const struct det_verdict *v,
                                            const struct det_cand *c)
{
    for (uint8_t i = 0; i < v->n_outside; i++) {
        const struct det_cand *o = &k->cands[v->outside[i]];
        if (strcmp(o->ip, c->ip) == 0 && strcmp(o->vpce_account, c->vpce_account) == 0)
            return o;
    }
    return NULL;
}

/* Does c hold an action or a region that o does not? */
static int cand_grew(const struct det_cand *o, const struct det_cand *c)
{
    for (uint8_t i = 0; i < c->n_actions; i++) {
        uint8_t j = 0;
        while (j < o->n_actions && strcmp(o->actions[j].name, c->actions[i].name) != 0)
            j++;
        if (j == o->n_actions)
            return 1;
    }
    for (uint8_t i = 0; i < c->n_regions; i++) {
        uint8_t j = 0;
        while (j < o->n_regions && strcmp(o->regions[j], c->regions[i]) != 0)
            j++;
        if (j == o->n_regions)
            return 1;
    }
    return 0;
}

int det_notable(const struct det_key *old, const struct det_verdict *vo, const struct det_key *new,
                const struct det_verdict *vn)
{
    if (!vn->finding)
        return 0;
    if (!vo->finding || vn->severity > vo->severity)
        return 1;
    for (uint8_t i = 0; i < vn->n_outside; i++) {
        const struct det_cand *c = &new->cands[vn->outside[i]];
        const struct det_cand *o = outside_match(old, vo, c);
        if (!o || cand_grew(o, c))
            return 1;
    }
    return 0;
}

void det_remember(struct det_key *k, const struct det_verdict *v)
{
    if (v->finding && v->severity > k->peak_severity)
        k->peak_severity = (uint8_t)v->severity;
}

int64_t det_expires_at(const struct det_key *k)
{
    int64_t end;
    if (k->issued)
        end = k->expires;
    else if (det_kind(k, NULL) != WL_NONE)
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
    { "outside_address", "used from an address that is not the function's network" },
    { "successful_call", "at least one call from outside succeeded" },
    { "all_calls_failed", "every call from outside failed" },
    { "sensitive_action", "a sensitive action succeeded from outside (IAM write, secrets, KMS decrypt, ...)" },
    { "desktop_client", "an AWS CLI or SDK on a desktop operating system used the key" },
    { "presigned_url_only", "only presigned S3 URLs were used from outside" },
    { "copied_user_agent", "a call carrying the Lambda runtime marker came from a network that is never the function's (non-AWS address or foreign VPC endpoint)" },
    { "inside_aws", "a call came from an AWS address that is not the key's own network (GuardDuty InsideAWS analogue)" },
    { "foreign_vpc_endpoint", "a call went through a VPC endpoint owned by an account outside the organisation" },
    { "new_region", "the key was used outside in or from a region the function does not run in" },
    { "other_address", "a call came from an address that is not the key's own network and whose network cannot be told apart (no AWS ranges, or a private address behind an endpoint not known to be the organisation's)" },
    { "evidence_truncated", "the key was used from more addresses than are kept; those not kept are taken to be outside" },
    { "conflicting_issuance", "more than one issuance record names this key (a real key has one): a forged record, or a forwarder's fault" },
    { "explained", "later evidence explains the outside uses; the finding and its severity stay as raised" },
    { "contested_own_address", "more than one address that could be the function's network made marked calls; the earliest is shown as the function's, and the severity is the highest that any of them being the function's gives" },
    { "issued_by_service", "an AWS service issued this key to a workload (sts:AssumeRole by ecs-tasks, ec2 or pods.eks, or an EKS pod's AssumeRoleWithWebIdentity)" },
    { "workload_marker", "calls with this key carried the workload's SDK marker (exec-env/AWS_ECS_*); CodeBuild and AWS service fleets carry it too, so alone it allows only the outside-AWS rules" },
    { "workload_identity", "AWS-written identity fields (sessionContext.ec2RoleDelivery) or the session name's form (i-..., AWSCodeBuild-..., eks-...-<uuid>) tie this key to the workload; without its issuance only the outside-AWS rules apply" },
    { "issued_outside", "the EKS pod's web identity token was exchanged for this key from an address outside AWS: the token itself was replayed" },
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

/* The texts that speak of "the function", for a task, an instance, a pod or a build. Lambda keeps
 * the texts above word for word (analysts' saved searches and the tests read them). */
static const struct {
    unsigned bit;
    const char *text;
} workload_texts[] = {
    { DET_R_OUTSIDE_ADDRESS, "used from an address that is not the workload's network" },
    { DET_R_COPIED_MARKER, "a call carrying a workload's SDK marker (exec-env/...) came from a network that is never the workload's (non-AWS address or foreign VPC endpoint)" },
    { DET_R_NEW_REGION, "the key was used outside in or from a region the workload does not run in" },
    { DET_R_CONTESTED_OWN, "more than one address that could be the workload's network made marked calls; the earliest is shown as the workload's, and the severity is the highest that any of them being the workload's gives" },
};

const char *det_reason_text_for(unsigned bit, enum wl_kind kind)
{
    if (kind != WL_LAMBDA && kind != WL_NONE)
        for (size_t i = 0; i < sizeof workload_texts / sizeof workload_texts[0]; i++)
            if (workload_texts[i].bit == bit)
                return workload_texts[i].text;
    return det_reason_text(bit);
}
