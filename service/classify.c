/* classify.c — one CloudTrail record's fields to an ev_event.
 *
 * The parser (decode.c) captures the fields of a record in a cls_rec and calls cls_event once the
 * record ends. Here the fields get their meaning: a workload's credential issuance (workload.h:
 * Lambda, ECS task, EC2 instance profile, EKS pod) is an issuance, a call with an ASIA key of an
 * AssumedRole identity is a use (with flags the detector weighs: the runtime marker, the worker,
 * the cold start, a desktop SDK, the workload evidence...), anything else is counted and ignored.
 * A record that cannot be read is skipped with a reason.
 */
#include "classify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cw.h"
#include "workload.h"

/* ---- the fields -------------------------------------------------------------------------- */

static const char *const field_names[CLS_F_COUNT] = {
    [CLS_F_EVENT_ID] = "eventID", [CLS_F_EVENT_TIME] = "eventTime", [CLS_F_EVENT_SOURCE] = "eventSource",
    [CLS_F_EVENT_NAME] = "eventName", [CLS_F_REGION] = "awsRegion", [CLS_F_SOURCE_IP] = "sourceIPAddress",
    [CLS_F_USER_AGENT] = "userAgent", [CLS_F_ERROR_CODE] = "errorCode", [CLS_F_EVENT_TYPE] = "eventType",
    [CLS_F_EVENT_CATEGORY] = "eventCategory", [CLS_F_RECIPIENT] = "recipientAccountId",
    [CLS_F_VPCE_ID] = "vpcEndpointId", [CLS_F_VPCE_ACCOUNT] = "vpcEndpointAccountId",
    [CLS_F_UI_TYPE] = "userIdentity.type", [CLS_F_UI_AKID] = "userIdentity.accessKeyId",
    [CLS_F_UI_ARN] = "userIdentity.arn", [CLS_F_UI_ACCOUNT] = "userIdentity.accountId",
    [CLS_F_UI_INVOKED_BY] = "userIdentity.invokedBy",
    [CLS_F_UI_ISSUER_ARN] = "userIdentity.sessionContext.sessionIssuer.arn",
    [CLS_F_UI_CREATED] = "userIdentity.sessionContext.attributes.creationDate",
    [CLS_F_RP_ROLE_ARN] = "requestParameters.roleArn", [CLS_F_RP_SESSION] = "requestParameters.roleSessionName",
    [CLS_F_RP_FUNCTION_ARN] = "requestParameters.encryptionContext.aws:lambda:FunctionArn",
    [CLS_F_RE_AKID] = "responseElements.credentials.accessKeyId",
    [CLS_F_RE_EXPIRATION] = "responseElements.credentials.expiration",
    [CLS_F_AED_AUTH] = "additionalEventData.AuthenticationMethod",
    [CLS_F_UI_USER_NAME] = "userIdentity.userName", [CLS_F_UI_PROVIDER] = "userIdentity.identityProvider",
    [CLS_F_UI_EC2_DELIVERY] = "userIdentity.sessionContext.ec2RoleDelivery",
    [CLS_F_RE_SUBJECT] = "responseElements.subjectFromWebIdentityToken",
};

/* Longest value kept per field, NUL excluded, and whether a longer one is cut. A field copied
 * whole into the event has its ev_event bound; a field compared or parsed must be read whole. A
 * longer value of either is not cut: it skips the record where the record's kind reads the field
 * (first_too_long). Evidence (CUT) is cut rather than refused. */
#define TOKEN_MAX 40     /* times (35 bytes with nanoseconds and an offset) and enumerations */
#define NAME_LEN_MAX 64  /* eventSource and eventName: a service host name, an API name */
#define KEEP(n) { n, 0 }
#define CUT { CLS_VALUE_MAX - 1, 1 }
const struct cls_field_bound cls_field_bounds[CLS_F_COUNT] = {
    [CLS_F_EVENT_ID] = KEEP(EV_ID_MAX - 1), [CLS_F_EVENT_TIME] = KEEP(TOKEN_MAX),
    [CLS_F_EVENT_SOURCE] = KEEP(NAME_LEN_MAX), [CLS_F_EVENT_NAME] = KEEP(NAME_LEN_MAX),
    [CLS_F_REGION] = KEEP(EV_REGION_MAX - 1), [CLS_F_SOURCE_IP] = KEEP(EV_IP_MAX - 1),
    [CLS_F_USER_AGENT] = CUT, [CLS_F_ERROR_CODE] = CUT, [CLS_F_EVENT_TYPE] = KEEP(TOKEN_MAX),
    [CLS_F_EVENT_CATEGORY] = KEEP(TOKEN_MAX), [CLS_F_RECIPIENT] = KEEP(EV_ACCOUNT_MAX - 1), [CLS_F_VPCE_ID] = CUT,
    [CLS_F_VPCE_ACCOUNT] = KEEP(EV_ACCOUNT_MAX - 1), [CLS_F_UI_TYPE] = KEEP(TOKEN_MAX),
    [CLS_F_UI_AKID] = KEEP(EV_AKID_MAX - 1), [CLS_F_UI_ARN] = CUT, [CLS_F_UI_ACCOUNT] = KEEP(EV_ACCOUNT_MAX - 1),
    [CLS_F_UI_INVOKED_BY] = CUT, [CLS_F_UI_ISSUER_ARN] = CUT, [CLS_F_UI_CREATED] = KEEP(TOKEN_MAX),
    [CLS_F_RP_ROLE_ARN] = CUT, [CLS_F_RP_SESSION] = CUT, [CLS_F_RP_FUNCTION_ARN] = CUT,
    [CLS_F_RE_AKID] = KEEP(EV_AKID_MAX - 1), [CLS_F_RE_EXPIRATION] = KEEP(TOKEN_MAX),
    [CLS_F_AED_AUTH] = KEEP(TOKEN_MAX), [CLS_F_UI_USER_NAME] = CUT, [CLS_F_UI_PROVIDER] = CUT,
    [CLS_F_UI_EC2_DELIVERY] = CUT, [CLS_F_RE_SUBJECT] = CUT,
};
#undef KEEP
#undef CUT

const char *cls_field_name(enum cls_field f)
{
    return field_names[f];
}

size_t cls_field_max(enum cls_field f)
{
    return cls_field_bounds[f].max;
}

int cls_field_cuttable(enum cls_field f)
{
    return cls_field_bounds[f].cuttable;
}

static const char *field(const struct cls_rec *r, enum cls_field f)
{
    return r->set[f] ? r->val[f] : NULL;
}

static int str_eq(const char *a, const char *b)
{
    return a && strcmp(a, b) == 0;
}

/* ---- time ---------------------------------------------------------------------------------- */

/* Reads exactly n digits (the expiration's fixed-width fields). */
static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* CloudTrail times are seconds, from 1970 on (the verdict never needs milliseconds). */
static int make_time(int y, int mo, int d, int h, int mi, int s, int64_t *out)
{
    return y < 1970 ? CW_EINVAL : cw_time_civil(y, mo, d, h, mi, s, out);
}

int cls_parse_time(const char *s, int64_t *out)
{
    int64_t ms;
    if (cw_time_parse(s, CW_TIME_CLOUDTRAIL, &ms) || ms < 0)
        return CW_EINVAL;
    *out = ms / 1000;
    return CW_OK;
}

/* "Mar 13, 2024, 8:33:21 PM" or "Aug 26, 2019 11:15:26 PM" (UTC). */
int cls_parse_expiration(const char *s, int64_t *out)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int mo = 0, d, y, h, mi, se;
    if (strlen(s) < 20)
        return cls_parse_time(s, out);  /* an ISO form is accepted too */
    for (int i = 0; i < 12; i++)
        if (strncmp(s, months + 3 * i, 3) == 0)
            mo = i + 1;
    if (!mo || s[3] != ' ')
        return cls_parse_time(s, out);
    const char *p = s + 4;
    char *end;
    long v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > 31 || *end != ',')
        return -1;
    d = (int)v;
    p = end + 1;
    while (*p == ' ')
        p++;
    if (digits(p, 4, &y))
        return -1;
    p += 4;
    if (*p == ',')
        p++;
    while (*p == ' ')
        p++;
    v = strtol(p, &end, 10);
    if (end == p || v < 1 || v > 12 || *end != ':')
        return -1;
    h = (int)v;
    p = end + 1;
    if (digits(p, 2, &mi) || p[2] != ':' || digits(p + 3, 2, &se))
        return -1;
    p += 5;
    while (*p == ' ')
        p++;
    if ((p[0] == 'P' || p[0] == 'p') && (p[1] == 'M' || p[1] == 'm') && !p[2])
        h = h % 12 + 12;
    else if ((p[0] == 'A' || p[0] == 'a') && (p[1] == 'M' || p[1] == 'm') && !p[2])
        h = h % 12;
    else
        return -1;
    return make_time(y, mo, d, h, mi, se, out);
}

/* ---- the heuristics ------------------------------------------------------------------------ */

int cls_akid_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 16 || n > EV_AKID_MAX - 1)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

static void copy_cut(char *dst, size_t cap, const char *src)
{
    if (!src) {
        dst[0] = 0;
        return;
    }
    size_t n = strnlen(src, cap - 1);
    if (src[n])  /* cut: never inside a character (the field ends up in JSON documents) */
        n = cw_utf8_cut(src, n);
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* copy_cut of field f, whose length the parser kept (r->len: the value holds no NUL), so that
 * nothing measures it again. */
static void copy_field(char *dst, size_t cap, const struct cls_rec *r, enum cls_field f)
{
    if (!r->set[f]) {
        dst[0] = 0;
        return;
    }
    size_t n = r->len[f];
    if (n > cap - 1)  /* cut: never inside a character (the field ends up in JSON documents) */
        n = cw_utf8_cut(r->val[f], cap - 1);
    memcpy(dst, r->val[f], n);
    dst[n] = 0;
}

/* Does s contain any of tokens[0..n)? The same answer as a strstr per token, in one pass that
 * stops at the first found: a token is compared only where its first byte is. For the SDK names,
 * which start most user agents: a strstr per name went over the whole user agent for each name
 * not there. */
static int contains_any(const char *s, const char *const *tokens, size_t n)
{
    uint32_t first[256 / 32] = { 0 };
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)tokens[i][0];
        first[c / 32] |= 1u << (c % 32);
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (!(first[*p / 32] & (1u << (*p % 32))))
            continue;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)tokens[i][0] == *p && strncmp((const char *)p, tokens[i], strlen(tokens[i])) == 0)
                return 1;
    }
    return 0;
}

/* An AWS CLI or SDK (not a browser: a presigned URL's user agent is the browser's) on a
 * desktop operating system. */
static int desktop_client(const char *ua)
{
    static const char *const sdks[] = { "aws-cli/", "Boto3/", "Botocore/", "aws-sdk-", "AWSPowerShell", "aws-toolkit" };
    if (!ua || !contains_any(ua, sdks, sizeof sdks / sizeof sdks[0]))
        return 0;
    /* strstr here: these marks are rare and their first bytes common in user agents ("os/linux").
     * Each mark contains one of five shorter ones, so a user agent with none of those (most: SDKs
     * on Linux) is told apart in five passes instead of ten. */
    static const char *const anchors[] = { "Darwin/", "Win", "Mac", "macos", "windows" };
    static const char *const marks[] = { "Darwin/", "Windows", "Macintosh", "Mac OS X", "os/macos", "os/windows",
                                         "md/OS#macos", "md/OS#windows", "Win64", "Win32" };
    size_t a = 0;
    while (a < sizeof anchors / sizeof anchors[0] && !strstr(ua, anchors[a]))
        a++;
    if (a == sizeof anchors / sizeof anchors[0])
        return 0;
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
        if (strstr(ua, marks[i]))
            return 1;
    return 0;
}

static int service_source(const char *ip)
{
    if (!ip)
        return 0;
    if (strcmp(ip, "AWS Internal") == 0)
        return 1;
    size_t n = strlen(ip);
    static const char suffix[] = ".amazonaws.com";
    return n > sizeof suffix - 1 && strcmp(ip + n - (sizeof suffix - 1), suffix) == 0;
}

/* "arn:aws:sts::ACCT:assumed-role/ROLE/SESSION" -> role ARN and session. */
static void split_assumed_arn(const char *arn, char *role_arn, size_t role_cap, char *session, size_t sess_cap)
{
    const char *ar = arn ? strstr(arn, ":assumed-role/") : NULL;
    if (!ar)
        return;
    const char *role = ar + sizeof ":assumed-role/" - 1;
    const char *slash = strchr(role, '/');
    if (!slash)
        return;
    if (!session[0])
        copy_cut(session, sess_cap, slash + 1);
    if (!role_arn[0]) {
        /* arn:PARTITION:sts::ACCT -> arn:PARTITION:iam::ACCT:role/ROLE */
        const char *sts = strstr(arn, ":sts::");
        if (!sts)
            return;
        snprintf(role_arn, role_cap, "%.*s:iam::%.*s:role/%.*s", (int)(sts - arn), arn,
                 (int)(ar - (sts + 6)), sts + 6, (int)(slash - role), role);
    }
}

/* An EventBridge event carries CloudTrail when its detail-type ends so ("AWS API Call via
 * CloudTrail"); any other detail is not a record, whatever it looks like. */
static int via_cloudtrail(const char *detail_type)
{
    static const char via[] = "via CloudTrail";
    size_t n = strlen(detail_type);
    return n >= sizeof via - 1 && strcmp(detail_type + n - (sizeof via - 1), via) == 0;
}

/* The first field over its bound among those a record of this kind is judged by, or -1. Every
 * field counts for a use or an issuance; a record the detector ignores is only read for what
 * classifies it (its id, time, source, name, identity type, key id, invokedBy, event type). */
static int first_too_long(const struct cls_rec *r, enum ev_kind kind)
{
    static const int classifying[] = { CLS_F_EVENT_ID, CLS_F_EVENT_TIME, CLS_F_EVENT_SOURCE, CLS_F_EVENT_NAME,
                                       CLS_F_UI_TYPE, CLS_F_UI_AKID, CLS_F_UI_INVOKED_BY, CLS_F_EVENT_TYPE,
                                       CLS_F_EVENT_CATEGORY };
    if (kind != EV_OTHER) {
        for (int f = 0; f < CLS_F_COUNT; f++)
            if (r->toolong[f])
                return f;
        return -1;
    }
    for (size_t i = 0; i < sizeof classifying / sizeof classifying[0]; i++)
        if (r->toolong[classifying[i]])
            return classifying[i];
    return -1;
}

/* ---- record to event, by phase ------------------------------------------------------------- */

/* What every CloudTrail record has. Returns a reason when the record is not one. */
static const char *required_fields(const struct cls_rec *r)
{
    if (!field(r, CLS_F_EVENT_NAME))
        return "not a CloudTrail record: no eventName";
    if (!field(r, CLS_F_EVENT_SOURCE))
        return "not a CloudTrail record: no eventSource";
    if (!field(r, CLS_F_EVENT_TIME))
        return "not a CloudTrail record: no eventTime";
    if (!field(r, CLS_F_EVENT_ID))
        return "not a CloudTrail record: no eventID";
    return NULL;
}

/* The fields every kind of event keeps; *ev is an EV_OTHER with no key yet. */
static const char *common_fields(const struct cls_rec *r, struct ev_event *ev)
{
    const char *src = field(r, CLS_F_EVENT_SOURCE), *name = field(r, CLS_F_EVENT_NAME);
    memset(ev, 0, offsetof(struct ev_event, id));
    if (cls_parse_time(field(r, CLS_F_EVENT_TIME), &ev->time))
        return "eventTime is not an ISO-8601 UTC time";
    memcpy(ev->id, field(r, CLS_F_EVENT_ID), r->len[CLS_F_EVENT_ID] + 1);
    copy_field(ev->region, sizeof ev->region, r, CLS_F_REGION);
    copy_field(ev->source_ip, sizeof ev->source_ip, r, CLS_F_SOURCE_IP);
    copy_field(ev->user_agent, sizeof ev->user_agent, r, CLS_F_USER_AGENT);
    copy_field(ev->error, sizeof ev->error, r, CLS_F_ERROR_CODE);
    ev->akid[0] = ev->account[0] = ev->action[0] = ev->runtime[0] = ev->workload_id[0] = 0;
    ev->role_arn[0] = ev->vpce_account[0] = ev->cold_arn[0] = 0;
    ev->wl_kind = ev->wl_ident = ev->wl_weak = ev->wl_markers = 0;
    /* action: iam.amazonaws.com + CreateUser -> iam:CreateUser, cut at its bound as snprintf
     * would (the two names are at most NAME_LEN_MAX each); once per record, so not snprintf */
    const char *dot = strchr(src, '.');
    size_t sl = dot ? (size_t)(dot - src) : strlen(src), cap = sizeof ev->action - 1;
    size_t n = sl < cap ? sl : cap;
    memcpy(ev->action, src, n);
    if (n < cap)
        ev->action[n++] = ':';
    size_t nl = strnlen(name, cap - n);
    memcpy(ev->action + n, name, nl);
    ev->action[n + nl] = 0;
    return NULL;
}

/* The record's fields as the workload matchers read them (workload.h). */
static void wl_fields(const struct cls_rec *r, struct wl_rec *w)
{
    *w = (struct wl_rec){
        .event_source = field(r, CLS_F_EVENT_SOURCE), .event_name = field(r, CLS_F_EVENT_NAME),
        .ui_type = field(r, CLS_F_UI_TYPE), .ui_invoked_by = field(r, CLS_F_UI_INVOKED_BY),
        .ui_arn = field(r, CLS_F_UI_ARN), .ui_user_name = field(r, CLS_F_UI_USER_NAME),
        .ui_provider = field(r, CLS_F_UI_PROVIDER), .ec2_role_delivery = field(r, CLS_F_UI_EC2_DELIVERY),
        .session = field(r, CLS_F_RP_SESSION), .subject = field(r, CLS_F_RE_SUBJECT),
        .issued_akid = field(r, CLS_F_RE_AKID), .error_code = field(r, CLS_F_ERROR_CODE),
        .user_agent = field(r, CLS_F_USER_AGENT),
    };
}

/* A workload's issuance (wl_match said so): the key, its expiry, the workload and its role. */
static const char *issue_event(const struct cls_rec *r, const struct wl_match *m, struct ev_event *ev)
{
    const char *akid = field(r, CLS_F_RE_AKID);
    if (!cls_akid_valid(akid))
        return "responseElements.credentials.accessKeyId is not an access key id";
    ev->kind = EV_ISSUE;
    ev->wl_kind = (uint8_t)m->kind;
    memcpy(ev->akid, akid, strlen(akid) + 1);
    const char *exp = field(r, CLS_F_RE_EXPIRATION);
    if (!exp || cls_parse_expiration(exp, &ev->expires))
        ev->expires = 0;  /* the detector falls back to issue time + 12 h */
    /* the session name (Lambda's own awslambda_<n>_<time> sessions name no function: wl_match
     * leaves those out), or an EKS pod's cluster/subject */
    copy_cut(ev->workload_id, sizeof ev->workload_id, m->id);
    if (m->region[0])  /* IRSA: the cluster's region, not the STS endpoint's (awsRegion) */
        copy_cut(ev->region, sizeof ev->region, m->region);
    copy_field(ev->role_arn, sizeof ev->role_arn, r, CLS_F_RP_ROLE_ARN);
    copy_field(ev->account, sizeof ev->account, r, CLS_F_RECIPIENT);
    if (!ev->account[0] && ev->role_arn[0]) {  /* arn:aws:iam::ACCT:role/... */
        const char *p = strstr(ev->role_arn, "::");
        if (p) {
            size_t n = strcspn(p + 2, ":");
            if (n < sizeof ev->account)
                snprintf(ev->account, sizeof ev->account, "%.*s", (int)n, p + 2);
        }
    }
    return NULL;
}

/* How a use was made, from the record alone (the network verdict is the detector's). */
static void use_flags(const struct cls_rec *r, const struct wl_match *m, struct ev_event *ev)
{
    /* which workloads the record names; the Lambda marker is read below, with its runtime */
    ev->wl_ident = (uint8_t)m->identity_mask;
    ev->wl_weak = (uint8_t)m->session_mask;
    ev->wl_markers = (uint8_t)(m->marker_mask & ~WL_MASK(WL_LAMBDA));
    if (ev->wl_markers)
        ev->flags |= EV_F_WL_MARKED;
    const char *ua = field(r, CLS_F_USER_AGENT), *cold = field(r, CLS_F_RP_FUNCTION_ARN);
    if (ev->error[0])
        ev->flags |= EV_F_FAILED;
    if (wl_lambda_runtime(ua, ev->runtime, sizeof ev->runtime))
        ev->flags |= EV_F_MARKED;
    if (ua && (strncmp(ua, "awslambda-worker", 16) == 0 || strstr(ua, " awslambda-worker/")))
        ev->flags |= EV_F_WORKER;
    if (cold && str_eq(field(r, CLS_F_EVENT_SOURCE), "kms.amazonaws.com") &&
        str_eq(field(r, CLS_F_EVENT_NAME), "Decrypt")) {
        ev->flags |= EV_F_COLDSTART;
        copy_cut(ev->cold_arn, sizeof ev->cold_arn, cold);
    }
    if (field(r, CLS_F_UI_INVOKED_BY) || service_source(ev->source_ip))
        ev->flags |= EV_F_ON_BEHALF;
    if (str_eq(field(r, CLS_F_AED_AUTH), "QueryString"))
        ev->flags |= EV_F_PRESIGNED;
    if (desktop_client(ua))
        ev->flags |= EV_F_DESKTOP;
    if (field(r, CLS_F_VPCE_ID)) {
        ev->flags |= EV_F_VPCE;
        copy_field(ev->vpce_account, sizeof ev->vpce_account, r, CLS_F_VPCE_ACCOUNT);
    }
}

/* A call made with a temporary key of an assumed role (ASIA...): a use; anything else is EV_OTHER. */
static const char *use_event(const struct cls_rec *r, const struct wl_match *m, struct ev_event *ev)
{
    const char *akid = field(r, CLS_F_UI_AKID);
    if (!str_eq(field(r, CLS_F_UI_TYPE), "AssumedRole") || !akid || strncmp(akid, "ASIA", 4) != 0) {
        ev->kind = EV_OTHER;
        return NULL;
    }
    if (!cls_akid_valid(akid))
        return "userIdentity.accessKeyId is not an access key id";
    ev->kind = EV_USE;
    memcpy(ev->akid, akid, strlen(akid) + 1);
    const char *account = field(r, CLS_F_UI_ACCOUNT);
    copy_field(ev->account, sizeof ev->account, r, account ? CLS_F_UI_ACCOUNT : CLS_F_RECIPIENT);
    copy_field(ev->role_arn, sizeof ev->role_arn, r, CLS_F_UI_ISSUER_ARN);
    split_assumed_arn(field(r, CLS_F_UI_ARN), ev->role_arn, sizeof ev->role_arn, ev->workload_id,
                      sizeof ev->workload_id);
    const char *created = field(r, CLS_F_UI_CREATED);
    if (created && cls_parse_time(created, &ev->session_created))
        ev->session_created = 0;
    use_flags(r, m, ev);
    return NULL;
}

/* The record's kind and fields, or the reason it is skipped. */
static const char *record_event(const struct cls_rec *r, struct ev_event *ev)
{
    const char *why = required_fields(r);
    if (why)
        return why;
    if (strncmp(field(r, CLS_F_EVENT_SOURCE), "aws:", 4) == 0)
        return NULL;  /* a look-alike (S3, SQS...): the parser refuses the input before asking */
    why = common_fields(r, ev);
    if (why)
        return why;
    if (str_eq(field(r, CLS_F_EVENT_TYPE), "AwsVpceEvent") ||
        str_eq(field(r, CLS_F_EVENT_CATEGORY), "NetworkActivity")) {
        ev->kind = EV_OTHER;  /* network activity is not an API use */
        return NULL;
    }
    struct wl_rec w;
    struct wl_match m;
    wl_fields(r, &w);
    wl_match(&w, &m);
    if (m.evidence == WL_EV_ISSUANCE)
        return issue_event(r, &m, ev);
    return use_event(r, &m, ev);
}

/* Is any field over its bound? Almost never: one branch-free OR over the flags, then neither
 * first_too_long below needs its loop. */
static int any_too_long(const struct cls_rec *r)
{
    unsigned char any = 0;
    for (size_t f = 0; f < sizeof r->toolong; f++)
        any |= r->toolong[f];
    return any != 0;
}

const char *cls_event(const struct cls_rec *r, struct ev_event *ev, char *why)
{
    if (r->detail_type && !via_cloudtrail(r->detail_type)) {
        snprintf(why, CLS_WHY_MAX, "EventBridge detail-type \"%.60s\" is not CloudTrail", r->detail_type);
        return why;
    }
    ev->kind = EV_OTHER;  /* a look-alike returns before the event is filled */
    if (r->error)
        return r->error;
    int longer = any_too_long(r);
    int f = longer ? first_too_long(r, EV_OTHER) : -1;  /* what classifies comes first */
    if (f < 0) {
        const char *reason = record_event(r, ev);
        if (reason)
            return reason;
        f = longer ? first_too_long(r, ev->kind) : -1;
    }
    if (f >= 0) {
        snprintf(why, CLS_WHY_MAX, "%s is too long", field_names[f]);
        return why;
    }
    return NULL;
}
