/* workload.c — the profile table of issue 14 and its matchers (docs/workloads.md 5.1).
 *
 * Three questions per record, strongest answer wins (5.3's order): is it an issuance by a known
 * issuer (AWS-written: userIdentity.type, invokedBy, identityProvider); else, for a call made with
 * an assumed role's key, does an AWS-written identity field (ec2RoleDelivery) or the session name's
 * form say which workload holds the key; and does the user agent carry a workload's marker. Each
 * matcher names its source ([S*] of docs/workloads.md section 7).
 */
#include "workload.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cw.h"

/* ---- the profiles -------------------------------------------------------------------------- */

static const struct wl_profile profiles[WL_KIND_COUNT] = {
    [WL_LAMBDA] = { "lambda", "Lambda", "function", WL_VERDICT_FULL },       /* marked keys: today's rules */
    [WL_ECS] = { "ecs", "ECS", "task", WL_VERDICT_OUTSIDE_AWS },          /* marker shared (1.3) */
    [WL_EC2] = { "ec2", "EC2", "instance", WL_VERDICT_OUTSIDE_AWS },
    [WL_EKS] = { "eks", "EKS", "pod", WL_VERDICT_OUTSIDE_AWS },
    [WL_CODEBUILD] = { "codebuild", "CodeBuild", "build", WL_VERDICT_OUTSIDE_AWS },
};

const struct wl_profile *wl_profile(enum wl_kind kind)
{
    return kind > WL_NONE && kind < WL_KIND_COUNT ? &profiles[kind] : NULL;
}

const char *wl_kind_name(enum wl_kind kind)
{
    const struct wl_profile *p = wl_profile(kind);
    return p ? p->name : "none";
}

enum wl_kind wl_kind_parse(const char *name)
{
    for (int k = WL_NONE + 1; name && k < WL_KIND_COUNT; k++)
        if (strcmp(name, profiles[k].name) == 0)
            return (enum wl_kind)k;
    return WL_NONE;
}

const char *wl_evidence_name(enum wl_evidence ev)
{
    static const char *const names[] = {
        [WL_EV_NONE] = "none", [WL_EV_MARKER_WEAK] = "marker_weak", [WL_EV_IDENTITY_WEAK] = "identity_weak",
        [WL_EV_MARKER] = "marker", [WL_EV_IDENTITY] = "identity", [WL_EV_ISSUANCE] = "issuance",
    };
    return (unsigned)ev <= WL_EV_ISSUANCE ? names[ev] : "none";
}

enum wl_verdict wl_verdict(enum wl_kind kind, enum wl_evidence ev)
{
    const struct wl_profile *p = wl_profile(kind);
    if (!p || ev <= WL_EV_NONE || ev > WL_EV_ISSUANCE)
        return WL_VERDICT_NONE;
    return ev == WL_EV_ISSUANCE ? WL_VERDICT_FULL : p->unissued;
}

/* ---- issuers ------------------------------------------------------------------------------- */

enum id_from { ID_SESSION, ID_IRSA };

/* An issuance is sts.amazonaws.com's eventName by ui_type; AWSService issuers are told apart by
 * invokedBy, IRSA by an EKS cluster's identityProvider (invoked_by NULL). */
struct issuer {
    enum wl_kind kind;
    const char *event_name, *ui_type, *invoked_by;
    enum id_from id_from;
    const char *own_session;  /* a session of this prefix is the service's own and names no workload */
    int verified;             /* a public sample of the record exists; unverified issuers never match */
};

static const struct issuer issuers[] = {
    /* [S13]; awslambda_<n>_<time> sessions are Lambda's own, as classify.c reads them */
    { WL_LAMBDA, "AssumeRole", "AWSService", "lambda.amazonaws.com", ID_SESSION, "awslambda_", 1 },
    /* [S1]; the task id (UUID, or 32 hex) is the session name */
    { WL_ECS, "AssumeRole", "AWSService", "ecs-tasks.amazonaws.com", ID_SESSION, NULL, 1 },
    /* [S4]; the instance id is the session name */
    { WL_EC2, "AssumeRole", "AWSService", "ec2.amazonaws.com", ID_SESSION, NULL, 1 },
    /* [S10]: Pod Identity's key is named here, not in the eks-auth record (1.6) */
    { WL_EKS, "AssumeRole", "AWSService", "pods.eks.amazonaws.com", ID_SESSION, NULL, 1 },
    /* [S8] (failed call) and [S9] (responseElements): the pod itself calls STS */
    { WL_EKS, "AssumeRoleWithWebIdentity", "WebIdentityUser", NULL, ID_IRSA, NULL, 1 },
    /* CodeBuild's trust principal [S12]; its issuance record: no public sample found (1.7) */
    { WL_CODEBUILD, "AssumeRole", "AWSService", "codebuild.amazonaws.com", ID_SESSION, NULL, 0 },
};

static int eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static int is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_alnum(char c)
{
    return is_hex(c) || (c >= 'g' && c <= 'z') || (c >= 'G' && c <= 'Z');
}

/* Copies at most WL_ID_MAX - 1 bytes of each part into m->id; id_cut when any byte is left out. */
static void set_id(struct wl_match *m, const char *a, size_t alen, const char *b)
{
    size_t n = alen < WL_ID_MAX - 1 ? alen : WL_ID_MAX - 1;
    memcpy(m->id, a, n);
    m->id_cut = n < alen;
    if (b) {
        size_t blen = strnlen(b, WL_ID_MAX), room = WL_ID_MAX - 1 - n;
        size_t k = blen < room ? blen : room;
        memcpy(m->id + n, b, k);
        n += k;
        m->id_cut |= k < blen;
    }
    if (m->id_cut)  /* never end inside a UTF-8 character: the id is written into JSON documents */
        n = cw_utf8_cut(m->id, n);
    m->id[n] = '\0';
}

/* The cluster's OIDC id in "arn:<partition>:iam::<acct>:oidc-provider/oidc.eks.<region>.amazonaws.com/id/<ID>"
 * ([S8]), or NULL when the provider is not an EKS cluster's (GitHub, Google, Cognito...). China's
 * .amazonaws.com.cn host: no public sample found, not matched. */
static const char *eks_oidc_id(const char *provider, size_t *len, char region[WL_REGION_MAX + 1])
{
    static const char mark[] = ":oidc-provider/", host[] = "oidc.eks.", tail[] = ".amazonaws.com/id/";
    const char *p = provider && strncmp(provider, "arn:", 4) == 0 ? strstr(provider, mark) : NULL;
    if (!p || strncmp(p + sizeof mark - 1, host, sizeof host - 1) != 0)
        return NULL;
    p += sizeof mark - 1 + sizeof host - 1;
    size_t r = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-");
    if (r == 0 || r > WL_REGION_MAX || strncmp(p + r, tail, sizeof tail - 1) != 0)
        return NULL;
    if (region) {
        memcpy(region, p, r);
        region[r] = '\0';
    }
    p += r + sizeof tail - 1;
    size_t n = 0;
    while (n <= WL_OIDC_ID_MAX && is_alnum(p[n]))
        n++;
    if (n == 0 || n > WL_OIDC_ID_MAX || p[n] != '\0')
        return NULL;
    *len = n;
    return p;
}

static const struct issuer *find_issuer(const struct wl_rec *r)
{
    if (!eq(r->event_source, "sts.amazonaws.com") || r->error_code || !r->issued_akid || !r->issued_akid[0])
        return NULL;  /* a failed call issues nothing */
    size_t len;
    for (size_t i = 0; i < sizeof issuers / sizeof issuers[0]; i++) {
        const struct issuer *is = &issuers[i];
        if (!is->verified || !eq(r->event_name, is->event_name) || !eq(r->ui_type, is->ui_type))
            continue;
        if (is->invoked_by ? eq(r->ui_invoked_by, is->invoked_by) : eks_oidc_id(r->ui_provider, &len, NULL) != NULL)
            return is;
    }
    return NULL;
}

static void issuance(const struct wl_rec *r, const struct issuer *is, struct wl_match *m)
{
    m->kind = is->kind;
    m->evidence = WL_EV_ISSUANCE;
    if (is->id_from == ID_IRSA) {
        /* "<cluster oidc id>/<subject>": the subject (system:serviceaccount:<ns>:<sa>) is unique
         * only within its cluster; STS writes it in the response, and as userName ([S8][S9]) */
        size_t n = 0;
        const char *cluster = eks_oidc_id(r->ui_provider, &n, m->region);
        const char *subject = r->subject ? r->subject : r->ui_user_name;
        char head[WL_OIDC_ID_MAX + 2];
        memcpy(head, cluster, n);
        head[n++] = '/';
        set_id(m, head, n, subject ? subject : "");
        return;
    }
    int own = r->session && is->own_session && strncmp(r->session, is->own_session, strlen(is->own_session)) == 0;
    if (r->session && !own)
        set_id(m, r->session, strnlen(r->session, WL_ID_MAX), NULL);
}

/* ---- uses: identity forms and markers ------------------------------------------------------ */

/* The session of "arn:<partition>:sts::<acct>:assumed-role/<role>/<session>", or NULL. */
static const char *arn_session(const char *arn)
{
    static const char mark[] = ":assumed-role/";
    const char *p = arn ? strstr(arn, mark) : NULL;
    p = p ? strchr(p + sizeof mark - 1, '/') : NULL;
    return p && p[1] ? p + 1 : NULL;
}

/* 8-4-4-4-12 hex digits, then the end. */
static int uuid_at(const char *s)
{
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_hex(s[i]))
            return 0;
    }
    return s[36] == '\0';
}

#define EC2_HEX_MIN 8   /* instance ids: i- and 8 (older) or 17 hex digits ([S4][S5]; Sigma's form [S7]) */
#define EC2_HEX_MAX 17
#define UUID_LEN 36

/* The kind a session name's form names, or WL_NONE. A caller of AssumeRole chooses its session
 * name, so the form is weak evidence: it only says which workload the key probably belongs to. */
static enum wl_kind session_form(const char *s)
{
    static const char build[] = "AWSCodeBuild-", pod[] = "eks-";
    size_t n = strnlen(s, WL_SESSION_MAX + 1);
    if (n > WL_SESSION_MAX)
        return WL_NONE;  /* not an AWS session name */
    if (s[0] == 'i' && s[1] == '-') {  /* [S4][S5] */
        size_t h = strspn(s + 2, "0123456789abcdefABCDEF");
        return h == n - 2 && h >= EC2_HEX_MIN && h <= EC2_HEX_MAX ? WL_EC2 : WL_NONE;
    }
    if (strncmp(s, build, sizeof build - 1) == 0) {  /* AWSCodeBuild-<build uuid>, sanitised in [S12] */
        size_t h = strspn(s + sizeof build - 1, "0123456789abcdefABCDEF-");
        return h > 0 && h == n - (sizeof build - 1) ? WL_CODEBUILD : WL_NONE;
    }
    /* eks-<cluster, cut>-<pod, cut>-<uuid> [S10][S11]: something between the prefix and the uuid */
    if (strncmp(s, pod, sizeof pod - 1) == 0 && n >= sizeof pod - 1 + 2 + UUID_LEN && s[n - UUID_LEN - 1] == '-')
        return uuid_at(s + n - UUID_LEN) ? WL_EKS : WL_NONE;
    return WL_NONE;
}

#define LAMBDA_MARKER "exec-env/AWS_Lambda_"  /* then the runtime: python3.12, java21, provided.al2023 */

/* User-agent tokens of the workloads' SDK environments. exact: the token ends there; else a value
 * (the Lambda runtime) must follow. */
static const struct marker {
    const char *token;
    enum wl_kind kind;
    enum wl_evidence evidence;
    int exact;
} markers[] = {
    { LAMBDA_MARKER, WL_LAMBDA, WL_EV_MARKER, 0 },                  /* [S13] */
    { "exec-env/AWS_ECS_FARGATE", WL_ECS, WL_EV_MARKER_WEAK, 1 },   /* [S2][S3]; also fleets [S14] */
    { "exec-env/AWS_ECS_EC2", WL_ECS, WL_EV_MARKER_WEAK, 1 },       /* [S2]; also CodeBuild [S12] */
};

/* Separators around a user-agent token: SDKs join with blanks, some wrap in () or [] ([S3]). */
static int ua_sep(char c)
{
    return c == ' ' || c == '(' || c == ')' || c == ';' || c == '[' || c == ']';
}

static int has_token(const char *ua, const char *tok, int exact)
{
    size_t tl = strlen(tok);
    for (const char *p = strstr(ua, tok); p; p = strstr(p + 1, tok)) {
        if (p != ua && !ua_sep(p[-1]))
            continue;
        char next = p[tl];
        if (exact ? next == '\0' || ua_sep(next) : next != '\0' && !ua_sep(next))
            return 1;
    }
    return 0;
}

int wl_lambda_runtime(const char *ua, char *runtime, size_t cap)
{
    static const size_t tl = sizeof LAMBDA_MARKER - 1;
    for (const char *p = ua ? strstr(ua, LAMBDA_MARKER) : NULL; p; p = strstr(p + 1, LAMBDA_MARKER)) {
        if (p != ua && !ua_sep(p[-1]))
            continue;
        const char *v = p + tl;
        size_t n = 0;
        while (v[n] && !ua_sep(v[n]))
            n++;
        if (n == 0)
            continue;
        if (n > cap - 1)
            n = cap - 1;
        memcpy(runtime, v, n);
        runtime[n] = '\0';
        return 1;
    }
    return 0;
}

static void consider(struct wl_match *m, enum wl_kind kind, enum wl_evidence ev)
{
    if (ev > m->evidence) {
        m->kind = kind;
        m->evidence = ev;
    }
}

/* A call made with an assumed role's key: every identity form and marker it carries. */
static void role_use(const struct wl_rec *r, struct wl_match *m)
{
    const char *session = arn_session(r->ui_arn);
    if (r->ec2_role_delivery && r->ec2_role_delivery[0]) {  /* AWS-written on IMDS keys [S4][S6] */
        m->identity_mask |= WL_MASK(WL_EC2);
        consider(m, WL_EC2, WL_EV_IDENTITY);
    }
    enum wl_kind form = session ? session_form(session) : WL_NONE;
    if (form != WL_NONE) {
        m->session_mask |= WL_MASK(form);
        consider(m, form, WL_EV_IDENTITY_WEAK);
    }
    /* every marker is an exec-env/ token: one search spares the per-marker ones on most calls
     * (this runs once per record of every ingest and scan) */
    const char *env = r->user_agent ? strstr(r->user_agent, "exec-env/") : NULL;
    for (size_t i = 0; env && i < sizeof markers / sizeof markers[0]; i++) {
        if (has_token(r->user_agent, markers[i].token, markers[i].exact)) {
            m->marker_mask |= WL_MASK(markers[i].kind);
            consider(m, markers[i].kind, markers[i].evidence);
        }
    }
    if (m->kind != WL_NONE && session)
        set_id(m, session, strnlen(session, WL_ID_MAX), NULL);
}

void wl_match(const struct wl_rec *r, struct wl_match *m)
{
    memset(m, 0, sizeof *m);
    const struct issuer *is = find_issuer(r);
    if (is)
        issuance(r, is, m);
    else if (eq(r->ui_type, "AssumedRole"))
        role_use(r, m);
}

/* ---- the list setting ---------------------------------------------------------------------- */

#define WL_KNOWN "lambda, ecs, ec2, eks, codebuild or all"

static void say(char *msg, size_t size, const char *fmt, ...)
{
    if (!msg || !size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
}

/* The WL_MASK bits of one name, 0 when unknown. */
static unsigned name_bits(const char *s, size_t len)
{
    if (len == 3 && strncmp(s, "all", 3) == 0)
        return WL_MASK_ALL;
    for (int k = WL_NONE + 1; k < WL_KIND_COUNT; k++)
        if (strlen(profiles[k].name) == len && strncmp(profiles[k].name, s, len) == 0)
            return WL_MASK(k);
    return 0;
}

int wl_kinds_parse(const char *csv, unsigned *mask, char *msg, size_t msg_size)
{
    const char *p = cw_csv_begin(csv), *item;
    size_t len;
    unsigned bits = 0;
    say(msg, msg_size, "%s", "");
    if (!p) {
        *mask = WL_MASK_ALL;  /* unset or blank: the default */
        return CW_OK;
    }
    for (size_t k = 1; cw_csv_next(&p, &item, &len); k++) {
        if (len == 0) {
            say(msg, msg_size, "workload %zu is empty (a stray comma?)", k);
            return CW_EINVAL;
        }
        unsigned b = name_bits(item, len);
        if (!b) {
            int q = len > WL_NAME_QUOTE_MAX ? WL_NAME_QUOTE_MAX : (int)len;
            say(msg, msg_size, "workload %zu \"%.*s%s\" is unknown: use " WL_KNOWN, k, q, item,
                len > WL_NAME_QUOTE_MAX ? "..." : "");
            return CW_EINVAL;
        }
        bits |= b;
    }
    *mask = bits;
    return CW_OK;
}
