/* test_workload.c — the workload profiles of issue 14 (service/workload.[ch]).
 *
 * Table-driven over tests/data/workload-shapes.json (synthetic values in the shapes of the public
 * sources of docs/workloads.md; provenance in tests/data/README.md): each record's fields are
 * read as the decoder will read them and wl_match must give the entry's kind, id, evidence and
 * verdict, or no kind. Then the matchers' edges field by field (issuers without a public sample,
 * bounds, token boundaries, the order of evidence) and the CREDWATCH_WORKLOADS list parser.
 * test_shapes_decoded sends every shape through the real decoder and the detector: what wl_match
 * said must reach the ev_event and make the key's kind (det_kind), and a disabled kind must not.
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
#include "decode.h"
#include "detect.h"
#include "workload.h"

#define SHAPES "tests/data/workload-shapes.json"
#define SHAPES_MIN 20 /* the entries the file had when written: a shrinking file fails */
#define LONG_MAX_LEN 300

/* ---- the shapes file -------------------------------------------------------------------- */

/* The string at a dotted path of a record, or NULL (absent, null or not a string). */
static const char *at(json_t *rec, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *v = rec;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k && v; k = strtok_r(NULL, ".", &save))
        v = json_object_get(v, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static void rec_from_json(json_t *j, struct wl_rec *r)
{
    memset(r, 0, sizeof *r);
    r->event_source = at(j, "eventSource");
    r->event_name = at(j, "eventName");
    r->ui_type = at(j, "userIdentity.type");
    r->ui_invoked_by = at(j, "userIdentity.invokedBy");
    r->ui_arn = at(j, "userIdentity.arn");
    r->ui_user_name = at(j, "userIdentity.userName");
    r->ui_provider = at(j, "userIdentity.identityProvider");
    r->ec2_role_delivery = at(j, "userIdentity.sessionContext.ec2RoleDelivery");
    r->session = at(j, "requestParameters.roleSessionName");
    r->subject = at(j, "responseElements.subjectFromWebIdentityToken");
    r->issued_akid = at(j, "responseElements.credentials.accessKeyId");
    r->error_code = at(j, "errorCode");
    r->user_agent = at(j, "userAgent");
}

static const char *verdict_name(enum wl_verdict v)
{
    return v == WL_VERDICT_FULL ? "full" : v == WL_VERDICT_OUTSIDE_AWS ? "outside_aws" : "none";
}

/* One entry: its expectation held, and its kind counted when positive. */
static void check_shape(json_t *s, unsigned *kinds_seen, size_t *neg)
{
    const char *name = json_string_value(json_object_get(s, "name"));
    const char *src = json_string_value(json_object_get(s, "source"));
    json_t *exp = json_object_get(s, "expect"), *rec = json_object_get(s, "record");
    if (!name || !src || strncmp(src, "[S", 2) != 0 || !json_is_object(exp) || !json_is_object(rec))
        fail_msg("entry \"%s\": needs name, source [S*], expect and record", name ? name : "?");
    struct wl_rec r;
    struct wl_match m;
    rec_from_json(rec, &r);
    wl_match(&r, &m);
    json_t *kind = json_object_get(exp, "kind");
    if (json_is_null(kind)) {
        if (m.kind != WL_NONE)
            fail_msg("%s: expected no workload, got %s (%s)", name, wl_kind_name(m.kind), wl_evidence_name(m.evidence));
        (*neg)++;
        return;
    }
    const char *want_id = json_string_value(json_object_get(exp, "id"));
    const char *want_ev = json_string_value(json_object_get(exp, "evidence"));
    const char *want_v = json_string_value(json_object_get(exp, "verdict"));
    if (!json_is_string(kind) || !want_id || !want_ev || !want_v)
        fail_msg("%s: expect needs kind (or null), id, evidence and verdict", name);
    const char *got_v = verdict_name(wl_verdict(m.kind, m.evidence));
    if (strcmp(wl_kind_name(m.kind), json_string_value(kind)) != 0 || strcmp(m.id, want_id) != 0 ||
        strcmp(wl_evidence_name(m.evidence), want_ev) != 0 || strcmp(got_v, want_v) != 0)
        fail_msg("%s: expected %s \"%s\" %s %s, got %s \"%s\" %s %s", name, json_string_value(kind), want_id, want_ev,
                 want_v, wl_kind_name(m.kind), m.id, wl_evidence_name(m.evidence), got_v);
    assert_false(m.id_cut);
    *kinds_seen |= WL_MASK(m.kind);
}

static void test_shapes(void **state)
{
    (void)state;
    json_error_t err;
    json_t *doc = json_load_file(SHAPES, 0, &err);
    if (!doc)
        fail_msg("%s: %s (line %d)", SHAPES, err.text, err.line);
    assert_true(json_is_string(json_object_get(doc, "comment")));
    json_t *shapes = json_object_get(doc, "shapes"), *s;
    assert_true(json_array_size(shapes) >= SHAPES_MIN);
    unsigned kinds = 0;
    size_t i, neg = 0;
    json_array_foreach(shapes, i, s) check_shape(s, &kinds, &neg);
    assert_int_equal(kinds, WL_MASK_ALL); /* every kind has at least one positive shape */
    assert_true(neg >= 6);                /* replay, bad hex, console, failed IRSA, GitHub, Roles Anywhere */
    json_decref(doc);
}

/* ---- field by field ----------------------------------------------------------------------- */

#define ARN_PREFIX "arn:aws:sts::111122223333:assumed-role/example-role/"
#define EKS_PROVIDER "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/"
#define OIDC_ID "EXAMPLED539D4633E53DE1B71EXAMPLE"
#define UUID "3b2d6f0e-8a41-4c7e-9d15-2f6b8e0c4a71"

static struct wl_rec service_issue(const char *invoked_by, const char *session)
{
    struct wl_rec r = { .event_source = "sts.amazonaws.com", .event_name = "AssumeRole", .ui_type = "AWSService",
                        .ui_invoked_by = invoked_by, .session = session, .issued_akid = "ASIAQEXAMPLEKEY00001" };
    return r;
}

static struct wl_rec irsa(const char *provider, const char *subject)
{
    struct wl_rec r = { .event_source = "sts.amazonaws.com", .event_name = "AssumeRoleWithWebIdentity",
                        .ui_type = "WebIdentityUser", .ui_provider = provider, .subject = subject,
                        .session = "1700000000000000001", .issued_akid = "ASIAQEXAMPLEKEY00002" };
    return r;
}

/* A use by session name (appended to an assumed-role ARN) and user agent. */
static struct wl_match use_of(const char *session, const char *ua, const char *delivery)
{
    static char arn[sizeof ARN_PREFIX + LONG_MAX_LEN + 1];
    snprintf(arn, sizeof arn, "%s%s", ARN_PREFIX, session);
    struct wl_rec r = { .event_source = "s3.amazonaws.com", .event_name = "ListBuckets", .ui_type = "AssumedRole",
                        .ui_arn = arn, .user_agent = ua, .ec2_role_delivery = delivery };
    struct wl_match m;
    wl_match(&r, &m);
    return m;
}

static enum wl_kind kind_of(struct wl_rec r)
{
    struct wl_match m;
    wl_match(&r, &m);
    return m.kind;
}

/* Issuers: the verified ones by their AWS-written fields only; none without a public sample. */
static void test_issuers(void **state)
{
    (void)state;
    assert_int_equal(kind_of(service_issue("ecs-tasks.amazonaws.com", "t")), WL_ECS);
    /* CodeBuild's issuance has no public sample (workloads.md 1.7): the matcher stays off */
    assert_int_equal(kind_of(service_issue("codebuild.amazonaws.com", "AWSCodeBuild-" UUID)), WL_NONE);
    /* SSM hybrid activations: the issuer is not a profile issuer (no record sample: fields only) */
    assert_int_equal(kind_of(service_issue("ssm.amazonaws.com", "mi-0123456789abcdef0")), WL_NONE);
    struct wl_rec r = service_issue("ec2.amazonaws.com", "i-0abcdef1234567890");
    r.error_code = "AccessDenied"; /* a failed call issues nothing */
    assert_int_equal(kind_of(r), WL_NONE);
    r = service_issue("ec2.amazonaws.com", "i-0abcdef1234567890");
    r.issued_akid = NULL;
    assert_int_equal(kind_of(r), WL_NONE);
    r.issued_akid = "";
    assert_int_equal(kind_of(r), WL_NONE);
    r = service_issue("ec2.amazonaws.com", "i-0abcdef1234567890");
    r.event_source = "iam.amazonaws.com";
    assert_int_equal(kind_of(r), WL_NONE);
    r = service_issue("lambda.amazonaws.com", "orders-fn");
    r.ui_type = "AssumedRole"; /* an invokedBy on a role's own call is an on-behalf call, not an issuance */
    assert_int_equal(kind_of(r), WL_NONE);
    r = service_issue("lambda.amazonaws.com", "orders-fn");
    struct wl_match m;
    wl_match(&r, &m);
    assert_string_equal(m.id, "orders-fn");
    assert_string_equal(m.region, "");  /* only IRSA's provider names a region */
    /* IRSA: only an EKS cluster's provider, whole */
    r = irsa(EKS_PROVIDER OIDC_ID, "system:serviceaccount:ns:sa");
    wl_match(&r, &m);
    assert_int_equal(m.kind, WL_EKS);
    assert_string_equal(m.region, "us-west-2");  /* the provider's host, not the STS endpoint's */
    assert_string_equal(m.id, OIDC_ID "/system:serviceaccount:ns:sa");
    r.subject = NULL;
    r.ui_user_name = "system:serviceaccount:ns:other"; /* [S8]'s failed call names it only here */
    wl_match(&r, &m);
    assert_string_equal(m.id, OIDC_ID "/system:serviceaccount:ns:other");
    static const char *const not_eks[] = {
        "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com",
        EKS_PROVIDER OIDC_ID "/x",                                   /* a trailing path */
        EKS_PROVIDER,                                                /* no id */
        "oidc.eks.us-west-2.amazonaws.com/id/" OIDC_ID,              /* not an ARN */
        "arn:aws:iam::1:oidc-provider/evil.example/oidc.eks.us-west-2.amazonaws.com/id/X",
        "arn:aws:iam::1:oidc-provider/oidc.eks.a-region-name-longer-than-thirty-one.amazonaws.com/id/X",
        NULL,
    };
    for (size_t i = 0; i < sizeof not_eks / sizeof not_eks[0]; i++)
        assert_int_equal(kind_of(irsa(not_eks[i], "repo:o/r")), WL_NONE);
}

/* Named bounds: ids are cut and flagged, identity forms refuse what AWS never writes. */
static void test_bounds(void **state)
{
    (void)state;
    char longs[LONG_MAX_LEN + 1], hex[LONG_MAX_LEN + 1];
    memset(longs, 'a', LONG_MAX_LEN);
    longs[LONG_MAX_LEN] = '\0';
    struct wl_match m;
    struct wl_rec r = service_issue("ecs-tasks.amazonaws.com", longs); /* an over-long session name */
    wl_match(&r, &m);
    assert_int_equal(m.kind, WL_ECS);
    assert_int_equal(strlen(m.id), WL_ID_MAX - 1);
    assert_true(m.id_cut);
    m = use_of(longs, "x exec-env/AWS_ECS_EC2", NULL); /* a use: the session is cut the same way */
    assert_int_equal(m.kind, WL_ECS);
    assert_int_equal(strlen(m.id), WL_ID_MAX - 1);
    assert_true(m.id_cut);
    r = irsa(EKS_PROVIDER OIDC_ID, longs); /* IRSA: cluster id + subject, cut at the same bound */
    wl_match(&r, &m);
    assert_int_equal(strlen(m.id), WL_ID_MAX - 1);
    assert_true(m.id_cut);
    char oidc[WL_OIDC_ID_MAX + 2 + sizeof EKS_PROVIDER];
    memset(hex, 'A', WL_OIDC_ID_MAX + 1);
    hex[WL_OIDC_ID_MAX + 1] = '\0';
    snprintf(oidc, sizeof oidc, "%s%s", EKS_PROVIDER, hex);
    assert_int_equal(kind_of(irsa(oidc, "s")), WL_NONE); /* one over WL_OIDC_ID_MAX */
    hex[WL_OIDC_ID_MAX] = '\0';
    snprintf(oidc, sizeof oidc, "%s%s", EKS_PROVIDER, hex);
    assert_int_equal(kind_of(irsa(oidc, "s")), WL_EKS);
    /* the EC2 session form: i- and 8 to 17 hex digits, nothing else */
    assert_int_equal(use_of("i-", NULL, NULL).kind, WL_NONE);
    assert_int_equal(use_of("i-1234567", NULL, NULL).kind, WL_NONE);
    assert_int_equal(use_of("i-12345678", NULL, NULL).kind, WL_EC2);
    assert_int_equal(use_of("i-0123456789abcdefA", NULL, NULL).kind, WL_EC2);
    assert_int_equal(use_of("i-0123456789abcdef01", NULL, NULL).kind, WL_NONE); /* 18 */
    assert_int_equal(use_of("i-0abcdef12345678zz", NULL, NULL).kind, WL_NONE);
    assert_int_equal(use_of("i-0abcdef1234567890 ", NULL, NULL).kind, WL_NONE);
    assert_int_equal(use_of("mi-0123456789abcdef0", NULL, NULL).kind, WL_NONE); /* SSM managed instance */
    memset(hex, 'a', LONG_MAX_LEN);
    hex[0] = 'i', hex[1] = '-', hex[LONG_MAX_LEN] = '\0';
    assert_int_equal(use_of(hex, NULL, NULL).kind, WL_NONE);
}

/* The other session forms, and which evidence wins (5.3: issuance, identity, Lambda marker, weak
 * identity, ECS marker). */
static void test_forms_and_order(void **state)
{
    (void)state;
    assert_int_equal(use_of("AWSCodeBuild-" UUID, NULL, NULL).kind, WL_CODEBUILD);
    assert_int_equal(use_of("AWSCodeBuild-", NULL, NULL).kind, WL_NONE);
    assert_int_equal(use_of("AWSCodeBuild-build:1", NULL, NULL).kind, WL_NONE);
    assert_int_equal(use_of("AWSCodeBuild-" UUID "-" UUID, NULL, NULL).kind, WL_NONE); /* over 64 */
    assert_int_equal(use_of("eks-c-p-" UUID, NULL, NULL).kind, WL_EKS);
    assert_int_equal(use_of("eks--" UUID, NULL, NULL).kind, WL_NONE);             /* nothing before the uuid */
    assert_int_equal(use_of("eks-c-p-3b2d6f0e-8a41-4c7e-9d15-2f6b8e0c4a7z", NULL, NULL).kind, WL_NONE);
    assert_int_equal(use_of("eks-c-p-3b2d6f0e8a41-4c7e-9d15-2f6b8e0c4a71x", NULL, NULL).kind, WL_NONE);
    struct wl_match m = use_of("AWSCodeBuild-7c2e9a41", "aws-cli/2 exec-env/AWS_ECS_EC2 md/x", NULL);
    assert_int_equal(m.kind, WL_CODEBUILD); /* the session form outranks the shared ECS marker */
    assert_int_equal(m.evidence, WL_EV_IDENTITY_WEAK);
    assert_int_equal(m.marker_mask, WL_MASK(WL_ECS));
    assert_int_equal(m.session_mask, WL_MASK(WL_CODEBUILD));
    assert_int_equal(m.identity_mask, 0);
    m = use_of("i-0abcdef1234567890", "exec-env/AWS_Lambda_python3.12", NULL);
    assert_int_equal(m.kind, WL_LAMBDA); /* the Lambda marker outranks a session form */
    assert_int_equal(m.session_mask, WL_MASK(WL_EC2));
    m = use_of("orders-fn", "exec-env/AWS_Lambda_python3.12", "2.0");
    assert_int_equal(m.kind, WL_EC2); /* an AWS-written field outranks any user agent */
    assert_int_equal(m.evidence, WL_EV_IDENTITY);
    assert_int_equal(m.identity_mask, WL_MASK(WL_EC2));
    assert_string_equal(m.id, "orders-fn");
    m = use_of("orders-fn", "exec-env/AWS_ECS_FARGATE exec-env/AWS_Lambda_go1.x", NULL);
    assert_int_equal(m.kind, WL_LAMBDA);
    assert_int_equal(m.marker_mask, WL_MASK(WL_LAMBDA) | WL_MASK(WL_ECS));
    assert_int_equal(use_of("orders-fn", "ua", "").kind, WL_NONE); /* an empty field is no field */
    /* not a role session: markers and forms say nothing */
    struct wl_rec r = { .ui_type = "IAMUser", .ui_arn = "arn:aws:iam::111122223333:user/i-0abcdef1234567890",
                        .user_agent = "exec-env/AWS_Lambda_go1.x", .ec2_role_delivery = "1.0" };
    assert_int_equal(kind_of(r), WL_NONE);
}

/* Markers are whole user-agent tokens. */
static void test_markers(void **state)
{
    (void)state;
    static const struct {
        const char *ua;
        enum wl_kind kind;
    } cases[] = {
        { "[aws-sdk-java/1.11.504 java/11.0.2 exec-env/AWS_ECS_FARGATE]", WL_ECS },
        { "exec-env/AWS_ECS_EC2", WL_ECS },
        { "aws-sdk-go/1.4 (go1.17; linux; amd64) exec-env/AWS_Lambda_go1.x", WL_LAMBDA },
        { "Boto3/1.34 (exec-env/AWS_Lambda_python3.12)", WL_LAMBDA },
        { "fooexec-env/AWS_ECS_EC2", WL_NONE },
        { "x exec-env/AWS_ECS_EC2x", WL_NONE },
        { "x exec-env/AWS_ECS_", WL_NONE },
        { "x exec-env/AWS_Lambda_", WL_NONE },
        { "x exec-env/AWS_Lambda_ y", WL_NONE },
        { "x/exec-env/AWS_ECS_EC2 exec-env/AWS_ECS_EC2", WL_ECS }, /* the second occurrence is a token */
        { "x exec-env/CODEBUILD", WL_NONE }, /* no public sample found (workloads.md 1.1) */
        { "", WL_NONE },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct wl_match m = use_of("some-session", cases[i].ua, NULL);
        if (m.kind != cases[i].kind)
            fail_msg("\"%s\": expected %s, got %s", cases[i].ua, wl_kind_name(cases[i].kind), wl_kind_name(m.kind));
        if (m.kind != WL_NONE)
            assert_string_equal(m.id, "some-session");
    }
    assert_int_equal(use_of("some-session", NULL, NULL).kind, WL_NONE);
}

static void test_profiles(void **state)
{
    (void)state;
    assert_null(wl_profile(WL_NONE));
    assert_null(wl_profile(WL_KIND_COUNT));
    assert_string_equal(wl_kind_name(WL_NONE), "none");
    for (int a = WL_NONE + 1; a < WL_KIND_COUNT; a++) {
        assert_non_null(wl_profile(a)->noun);
        for (int b = a + 1; b < WL_KIND_COUNT; b++)
            assert_string_not_equal(wl_kind_name(a), wl_kind_name(b));
        unsigned mask = 0;
        assert_int_equal(wl_kinds_parse(wl_kind_name(a), &mask, NULL, 0), CW_OK); /* every name parses */
        assert_int_equal(mask, WL_MASK(a));
        assert_int_equal(wl_kind_parse(wl_kind_name(a)), a);  /* and reads back as its kind */
        assert_non_null(wl_profile(a)->label);
    }
    assert_int_equal(wl_kind_parse("none"), WL_NONE);
    assert_int_equal(wl_kind_parse("ECS"), WL_NONE);  /* names are lower case, as the API's enum */
    assert_int_equal(wl_kind_parse(NULL), WL_NONE);
    assert_string_equal(wl_profile(WL_CODEBUILD)->label, "CodeBuild");
    /* verdict modes: full for issued and Lambda-marked keys, outside-AWS for the rest */
    assert_int_equal(wl_verdict(WL_ECS, WL_EV_ISSUANCE), WL_VERDICT_FULL);
    assert_int_equal(wl_verdict(WL_LAMBDA, WL_EV_MARKER), WL_VERDICT_FULL);
    assert_int_equal(wl_verdict(WL_ECS, WL_EV_MARKER_WEAK), WL_VERDICT_OUTSIDE_AWS);
    assert_int_equal(wl_verdict(WL_EC2, WL_EV_IDENTITY), WL_VERDICT_OUTSIDE_AWS);
    assert_int_equal(wl_verdict(WL_CODEBUILD, WL_EV_IDENTITY_WEAK), WL_VERDICT_OUTSIDE_AWS);
    assert_int_equal(wl_verdict(WL_NONE, WL_EV_ISSUANCE), WL_VERDICT_NONE);
    assert_int_equal(wl_verdict(WL_EC2, WL_EV_NONE), WL_VERDICT_NONE);
    assert_string_equal(wl_evidence_name(WL_EV_IDENTITY_WEAK), "identity_weak");
    assert_string_equal(wl_evidence_name((enum wl_evidence)99), "none");
}

/* ---- the CREDWATCH_WORKLOADS list ---------------------------------------------------------- */

static void test_kinds_parse(void **state)
{
    (void)state;
    char msg[160];
    unsigned mask = 0;
    assert_int_equal(wl_kinds_parse("lambda,ecs", &mask, msg, sizeof msg), CW_OK);
    assert_int_equal(mask, WL_MASK(WL_LAMBDA) | WL_MASK(WL_ECS));
    assert_string_equal(msg, "");
    assert_int_equal(wl_kinds_parse(" ec2 ,\teks\t", &mask, msg, sizeof msg), CW_OK);
    assert_int_equal(mask, WL_MASK(WL_EC2) | WL_MASK(WL_EKS));
    assert_int_equal(wl_kinds_parse("ecs,ecs,ecs", &mask, msg, sizeof msg), CW_OK); /* duplicates count once */
    assert_int_equal(mask, WL_MASK(WL_ECS));
    assert_int_equal(wl_kinds_parse("all", &mask, msg, sizeof msg), CW_OK);
    assert_int_equal(mask, WL_MASK_ALL);
    assert_int_equal(wl_kinds_parse("codebuild,all", &mask, msg, sizeof msg), CW_OK);
    assert_int_equal(mask, WL_MASK_ALL);
    mask = 0;
    assert_int_equal(wl_kinds_parse(NULL, &mask, msg, sizeof msg), CW_OK); /* unset: the default */
    assert_int_equal(mask, WL_MASK_ALL);
    mask = 0;
    assert_int_equal(wl_kinds_parse(" \t", &mask, msg, sizeof msg), CW_OK);
    assert_int_equal(mask, WL_MASK_ALL);
    /* errors name the entry and leave the mask as it was */
    mask = 7;
    assert_int_equal(wl_kinds_parse("ecs,lamda", &mask, msg, sizeof msg), CW_EINVAL);
    assert_string_equal(msg, "workload 2 \"lamda\" is unknown: use lambda, ecs, ec2, eks, codebuild or all");
    assert_int_equal(mask, 7);
    assert_int_equal(wl_kinds_parse("ECS", &mask, msg, sizeof msg), CW_EINVAL); /* names are lower case */
    assert_non_null(strstr(msg, "\"ECS\""));
    assert_int_equal(wl_kinds_parse("ecs,,ec2", &mask, msg, sizeof msg), CW_EINVAL);
    assert_string_equal(msg, "workload 2 is empty (a stray comma?)");
    assert_int_equal(wl_kinds_parse("ec2,", &mask, msg, sizeof msg), CW_EINVAL);
    assert_int_equal(wl_kinds_parse("lambda ecs", &mask, msg, sizeof msg), CW_EINVAL);
    assert_int_equal(wl_kinds_parse("ec", &mask, msg, sizeof msg), CW_EINVAL);
    assert_int_equal(wl_kinds_parse("ec2x", &mask, msg, sizeof msg), CW_EINVAL);
    char longname[LONG_MAX_LEN + 1];
    memset(longname, 'x', LONG_MAX_LEN);
    longname[LONG_MAX_LEN] = '\0';
    assert_int_equal(wl_kinds_parse(longname, &mask, msg, sizeof msg), CW_EINVAL);
    assert_non_null(strstr(msg, "xxx...\" is unknown")); /* quoted at WL_NAME_QUOTE_MAX */
    assert_int_equal(wl_kinds_parse("nope", &mask, NULL, 0), CW_EINVAL); /* no message buffer */
    assert_int_equal(mask, 7);
}

/* ---- the shapes through the decoder and the detector ---------------------------------------- */

struct one_event {
    size_t n;
    struct ev_event ev;
};

static int keep_event(void *ud, size_t index, const struct ev_event *ev)
{
    (void)index;
    struct one_event *o = ud;
    if (o->n++ == 0)
        o->ev = *ev;
    return 0;
}

static int no_skip(void *ud, size_t index, const char *reason)
{
    (void)ud;
    fail_msg("record %zu skipped: %s", index, reason);
    return 0;
}

/* The kind the event's evidence names, as det_kind ranks it for a key with this event alone. */
static enum wl_kind key_kind(const struct ev_event *ev, unsigned kinds)
{
    static struct det_key k;
    struct det_ctx ctx = { .kinds = kinds };
    det_key_init(&k, ev->akid);
    det_apply_ctx(&k, ev, &ctx);
    struct det_verdict v;
    det_judge(&k, &ctx, &v);
    return v.kind;
}

static void test_shapes_decoded(void **state)
{
    (void)state;
    json_error_t err;
    json_t *doc = json_load_file(SHAPES, 0, &err), *s;
    assert_non_null(doc);
    size_t i, issued = 0, used = 0;
    json_array_foreach(json_object_get(doc, "shapes"), i, s) {
        const char *name = json_string_value(json_object_get(s, "name"));
        json_t *exp = json_object_get(s, "expect");
        char *text = json_dumps(json_object_get(s, "record"), JSON_COMPACT);
        assert_non_null(text);
        struct one_event o = { 0 };
        struct dec_sink sink = { keep_event, no_skip, &o };
        struct dec_stats st;
        char msg[256];
        assert_int_equal(dec_buffer((const uint8_t *)text, strlen(text), &sink, NULL, &st, msg, sizeof msg), 0);
        free(text);
        assert_int_equal(o.n, 1);
        const char *want = json_string_value(json_object_get(exp, "kind"));
        const char *ev_name = json_string_value(json_object_get(exp, "evidence"));
        if (!want) {
            /* no workload: not an issuance, and nothing in the event names one */
            if (o.ev.kind == EV_ISSUE || (o.ev.kind == EV_USE && key_kind(&o.ev, 0) != WL_NONE))
                fail_msg("%s: no workload expected, the event names %s", name, wl_kind_name(key_kind(&o.ev, 0)));
            continue;
        }
        if (strcmp(ev_name, "issuance") == 0) {
            if (o.ev.kind != EV_ISSUE || strcmp(wl_kind_name((enum wl_kind)o.ev.wl_kind), want) != 0)
                fail_msg("%s: expected a %s issuance, got kind %d (%s)", name, want, o.ev.kind,
                         wl_kind_name((enum wl_kind)o.ev.wl_kind));
            issued++;
        } else {
            assert_int_equal(o.ev.kind, EV_USE);
            used++;
        }
        assert_string_equal(o.ev.workload_id, json_string_value(json_object_get(exp, "id")));
        enum wl_kind k = key_kind(&o.ev, 0);
        if (strcmp(wl_kind_name(k), want) != 0)
            fail_msg("%s: the key's kind is %s, expected %s", name, wl_kind_name(k), want);
        /* switched off (CREDWATCH_WORKLOADS without it): the key is no longer that workload's */
        unsigned others = WL_MASK_ALL & ~WL_MASK(k);
        if (key_kind(&o.ev, others) == k)
            fail_msg("%s: still %s with the workload switched off", name, want);
    }
    assert_true(issued >= 5 && used >= 6);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shapes),  cmocka_unit_test(test_issuers),  cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_forms_and_order), cmocka_unit_test(test_markers), cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_kinds_parse), cmocka_unit_test(test_shapes_decoded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
