/* test_export.c — service/export.c: a finding document as OCSF 1.8.0 Detection Finding and as
 * ASFF 2018-10-08.
 *
 * Every output is held to the published requirements listed in tests/data/
 * ocsf_detection_finding_required.json and tests/data/asff_required.json (provenance in
 * tests/data/README.md): each required attribute with its type, the exact class, category, type,
 * activity, severity and status ids, every length and count limit. The documents cover every
 * severity and status, with and without function and role, first written and later updated, and
 * attacker-chosen strings (user agent, function name) long enough to overflow Title and
 * Description with multi-byte characters at the cut, and every workload kind (texts with the
 * kind's noun, ASFF and OCSF resources; a Lambda finding reads as before workloads). Corrupt
 * documents give an error, not output.
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
#include "detect.h"
#include "export.h"
#include "store.h"

#define OCSF_SPEC "tests/data/ocsf_detection_finding_required.json"
#define ASFF_SPEC "tests/data/asff_required.json"
#define CREATED "2024-03-13T10:00:00.000Z"
#define LATER "2024-03-14T11:30:00.500Z"
#define TITLE_PREFIX "Lambda credentials used outside the function: "

static json_t *ocsf_spec, *asff_spec;

/* A finding document as rnd_finding writes it (the shape of `credwatch scan` output). */
static const char *const BASE_DOC =
    "{\"id\":\"cwf-ASIAEXAMPLEKEY000001\",\"access_key_id\":\"ASIAEXAMPLEKEY000001\",\"account_id\":\"111122223333\","
    "\"region\":\"eu-west-1\",\"function_name\":\"my-fn\",\"role_arn\":\"arn:aws:iam::111122223333:role/fn-role\","
    "\"runtime\":\"python3.12\",\"severity\":\"high\",\"explained\":false,\"first_outside_at\":\"2024-03-13T09:10:00Z\","
    "\"last_outside_at\":\"2024-03-13T09:20:00Z\",\"outside_count\":2,\"outside_source_ips\":[\"198.51.100.7\",\"2001:db8::7\"],"
    "\"outside_sources\":[{\"ip\":\"198.51.100.7\",\"network\":\"unknown\",\"why\":\"outside_address\",\"count\":1,"
    "\"succeeded\":1,\"first_at\":\"2024-03-13T09:10:00Z\",\"last_at\":\"2024-03-13T09:10:00Z\",\"vpc_endpoint_account\":null},"
    "{\"ip\":\"2001:db8::7\",\"network\":\"unknown\",\"why\":\"outside_address\",\"count\":1,\"succeeded\":0,"
    "\"first_at\":\"2024-03-13T09:20:00Z\",\"last_at\":\"2024-03-13T09:20:00Z\",\"vpc_endpoint_account\":null}],"
    "\"outside_actions\":[\"s3:ListBuckets\",\"sts:GetCallerIdentity\"],"
    "\"first_outside_use\":{\"at\":\"2024-03-13T09:10:00Z\",\"event_id\":\"a1b2c3d4-0000-4000-8000-000000000003\","
    "\"source_ip\":\"198.51.100.7\",\"user_agent\":\"aws-cli/2.15.0 Python/3.11 Darwin/23.0\","
    "\"action\":\"sts:GetCallerIdentity\",\"outcome\":\"succeeded\"},"
    "\"last_outside_use\":{\"at\":\"2024-03-13T09:20:00Z\",\"event_id\":\"a1b2c3d4-0000-4000-8000-000000000004\","
    "\"source_ip\":\"2001:db8::7\",\"user_agent\":\"Boto3/1.34 md/Botocore\",\"action\":\"s3:ListBuckets\","
    "\"outcome\":\"failed\"},\"inside_source_ips\":[\"52.16.0.10\"],\"inside_count\":1,\"evicted_count\":0,"
    "\"issued_by_event_id\":\"a1b2c3d4-0000-4000-8000-000000000001\",\"issued_at\":\"2024-03-13T08:33:21Z\","
    "\"expires_at\":\"2024-03-13T20:33:21Z\",\"conflicting_issuance\":null,"
    "\"reasons\":[{\"code\":\"issued_by_lambda\",\"text\":\"Lambda issued this key\"},"
    "{\"code\":\"outside_address\",\"text\":\"used from an address that is not the function's network\"}],"
    "\"attack\":[{\"id\":\"T1078.004\",\"name\":\"Valid Accounts: Cloud Accounts\"},"
    "{\"id\":\"T1550.001\",\"name\":\"Use Alternate Authentication Material: Application Access Token\"},"
    "{\"id\":\"T1552\",\"name\":\"Unsecured Credentials (from the function's environment)\"}],"
    "\"status\":\"open\",\"note\":null,\"created_at\":\"" CREATED "\",\"updated_at\":\"" CREATED "\"}";

/* ---- fixtures ---- */

static json_t *base(void)
{
    json_t *d = json_loads(BASE_DOC, 0, NULL);
    assert_non_null(d);
    return d;
}

static char *dumpd(json_t *d)
{
    char *s = json_dumps(d, JSON_COMPACT);
    assert_non_null(s);
    json_decref(d);
    return s;
}

static json_t *convert(json_t *d, int fmt, const struct exp_opts *o)
{
    char *doc = dumpd(d), *out = NULL;
    assert_int_equal(exp_convert(doc, fmt, o, &out), 0);
    assert_non_null(out);
    assert_null(strchr(out, '\n'));  /* one document per line */
    json_error_t err;
    json_t *j = json_loads(out, JSON_REJECT_DUPLICATES, &err);  /* also proves the UTF-8 is whole */
    if (!j)
        fail_msg("output is not JSON: %s: %s", err.text, out);
    free(out);
    free(doc);
    return j;
}

static int group_setup(void **state)
{
    (void)state;
    ocsf_spec = json_load_file(OCSF_SPEC, 0, NULL);
    asff_spec = json_load_file(ASFF_SPEC, 0, NULL);
    return ocsf_spec && asff_spec ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    json_decref(ocsf_spec);
    json_decref(asff_spec);
    return 0;
}

/* ---- the walker of the spec files' paths: "a.b[].c" ---- */

static void collect(json_t *node, const char *path, json_t *out)
{
    if (!*path) {
        json_array_append(out, node);
        return;
    }
    char seg[64];
    size_t n = strcspn(path, ".");
    assert_true(n < sizeof seg);
    memcpy(seg, path, n);
    seg[n] = '\0';
    const char *rest = path[n] ? path + n + 1 : "";
    int each = n > 2 && strcmp(seg + n - 2, "[]") == 0;
    if (each)
        seg[n - 2] = '\0';
    json_t *child = json_object_get(node, seg);
    if (!child)
        return;
    if (!each) {
        collect(child, rest, out);
        return;
    }
    assert_true(json_is_array(child));
    size_t i;
    json_t *e;
    json_array_foreach(child, i, e) collect(e, rest, out);
}

/* The nodes at path's parent and the last key. */
static json_t *parents(json_t *doc, const char *path, const char **key)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *dot = strrchr(buf, '.');
    json_t *out = json_array();
    *key = dot ? path + (dot - buf) + 1 : path;
    if (dot)
        *dot = '\0';
    collect(doc, dot ? buf : "", out);
    return out;
}

static int has_type(json_t *v, const char *type)
{
    if (strcmp(type, "integer") == 0)
        return json_is_integer(v);
    if (strcmp(type, "string") == 0)
        return json_is_string(v);
    if (strcmp(type, "object") == 0)
        return json_is_object(v);
    if (strcmp(type, "array") == 0)
        return json_is_array(v);
    if (strcmp(type, "boolean") == 0)
        return json_is_boolean(v);
    fail_msg("unknown type %s", type);
    return 0;
}

static void check_required(json_t *doc, json_t *spec)
{
    size_t i, j;
    json_t *r, *p;
    json_array_foreach(json_object_get(spec, "required"), i, r) {
        const char *path = json_string_value(json_object_get(r, "path")), *key;
        const char *type = json_string_value(json_object_get(r, "type"));
        json_t *ps = parents(doc, path, &key);
        json_array_foreach(ps, j, p) {
            json_t *v = json_object_get(p, key);
            if (!v || !has_type(v, type))
                fail_msg("%s: missing or not %s", path, type);
        }
        json_decref(ps);
    }
}

static void check_at_least_one(json_t *doc, json_t *spec)
{
    size_t i, j, k;
    json_t *r, *node, *name;
    json_array_foreach(json_object_get(spec, "at_least_one"), i, r) {
        json_t *nodes = json_array();
        collect(doc, json_string_value(json_object_get(r, "path")), nodes);
        json_array_foreach(nodes, j, node) {
            int found = 0;
            json_array_foreach(json_object_get(r, "of"), k, name) found |= json_object_get(node, json_string_value(name)) != NULL;
            if (!found)
                fail_msg("%s: none of its at_least_one attributes", json_string_value(json_object_get(r, "path")));
        }
        json_decref(nodes);
    }
}

/* ---- OCSF ---- */

struct ocsf_want {
    int activity, severity_id, status_id;
};

static int64_t ms_of(const char *t)
{
    int64_t ms;
    assert_int_equal(cw_time_parse(t, 0, &ms), 0);
    return ms;
}

static json_t *check_ocsf(json_t *d, struct ocsf_want w)
{
    const char *updated = json_string_value(json_object_get(d, "updated_at"));
    int64_t updated_ms = ms_of(updated);
    json_t *o = convert(d, EXP_OCSF, NULL);
    check_required(o, ocsf_spec);
    check_at_least_one(o, ocsf_spec);
    assert_int_equal(json_integer_value(json_object_get(o, "class_uid")),
                     json_integer_value(json_object_get(ocsf_spec, "class_uid")));
    assert_int_equal(json_integer_value(json_object_get(o, "category_uid")),
                     json_integer_value(json_object_get(ocsf_spec, "category_uid")));
    assert_int_equal(json_integer_value(json_object_get(o, "activity_id")), w.activity);
    assert_int_equal(json_integer_value(json_object_get(o, "type_uid")), 2004 * 100 + w.activity);
    assert_int_equal(json_integer_value(json_object_get(o, "severity_id")), w.severity_id);
    assert_int_equal(json_integer_value(json_object_get(o, "status_id")), w.status_id);
    char id[8];
    snprintf(id, sizeof id, "%d", w.activity);
    assert_non_null(json_object_get(json_object_get(ocsf_spec, "activity_ids"), id));
    snprintf(id, sizeof id, "%d", w.status_id);
    const char *caption = json_string_value(json_object_get(json_object_get(ocsf_spec, "status_ids"), id));
    assert_non_null(caption);
    if (w.status_id != 99)  /* Other carries our own label */
        assert_string_equal(json_string_value(json_object_get(o, "status")), caption);
    snprintf(id, sizeof id, "%d", w.severity_id);
    assert_string_equal(json_string_value(json_object_get(o, "severity")),
                        json_string_value(json_object_get(json_object_get(ocsf_spec, "severity_ids"), id)));
    assert_int_equal(json_integer_value(json_object_get(o, "time")), updated_ms);
    json_t *meta = json_object_get(o, "metadata");
    assert_string_equal(json_string_value(json_object_get(meta, "version")),
                        json_string_value(json_object_get(ocsf_spec, "schema_version")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(meta, "product"), "name")), "credwatch");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "cloud"), "provider")), "AWS");
    return o;
}

static const char *fi_uid(json_t *o)
{
    return json_string_value(json_object_get(json_object_get(o, "finding_info"), "uid"));
}

/* ---- ASFF ---- */

static int non_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return 1;
    return 0;
}

static void check_asff_limits(json_t *a)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(asff_spec, "length"), i, r) {
        const char *path = json_string_value(json_object_get(r, "path"));
        size_t n = strlen(json_string_value(json_object_get(a, path)));
        if (n < (size_t)json_integer_value(json_object_get(r, "min")) ||
            n > (size_t)json_integer_value(json_object_get(r, "max")))
            fail_msg("%s: %zu bytes, out of bounds", path, n);
    }
    json_array_foreach(json_object_get(asff_spec, "non_blank"), i, r)
        assert_true(non_blank(json_string_value(json_object_get(a, json_string_value(r)))));
    json_array_foreach(json_object_get(asff_spec, "items"), i, r) {
        size_t n = json_array_size(json_object_get(a, json_string_value(json_object_get(r, "path"))));
        assert_true(n >= (size_t)json_integer_value(json_object_get(r, "min")));
        assert_true(n <= (size_t)json_integer_value(json_object_get(r, "max")));
    }
    json_t *pfs = json_object_get(asff_spec, "product_fields"), *pf = json_object_get(a, "ProductFields"), *v;
    const char *k;
    if (pf) {
        assert_true(json_object_size(pf) <= (size_t)json_integer_value(json_object_get(pfs, "max_pairs")));
        json_object_foreach(pf, k, v) {
            assert_true(json_is_string(v));
            assert_true(strlen(k) <= (size_t)json_integer_value(json_object_get(pfs, "key_max")));
            assert_true(json_string_length(v) <= (size_t)json_integer_value(json_object_get(pfs, "value_max")));
        }
    }
}

static void check_asff_enums(json_t *a)
{
    size_t i, j;
    json_t *r, *val, *t, *ns;
    json_array_foreach(json_object_get(asff_spec, "enum"), i, r) {
        const char *key;
        json_t *ps = parents(a, json_string_value(json_object_get(r, "path")), &key);
        json_t *p;
        size_t pi;
        json_array_foreach(ps, pi, p) {
            const char *s = json_string_value(json_object_get(p, key));
            int found = 0;
            json_array_foreach(json_object_get(r, "values"), j, val) found |= s && strcmp(s, json_string_value(val)) == 0;
            if (!found)
                fail_msg("%s: %s is not one of its values", json_string_value(json_object_get(r, "path")), s ? s : "(none)");
        }
        json_decref(ps);
    }
    json_array_foreach(json_object_get(a, "Types"), i, t) {
        int found = 0;
        json_array_foreach(json_object_get(asff_spec, "types_namespaces"), j, ns) {
            size_t n = strlen(json_string_value(ns));
            found |= strncmp(json_string_value(t), json_string_value(ns), n) == 0 &&
                     (json_string_value(t)[n] == '\0' || json_string_value(t)[n] == '/');
        }
        assert_true(found);
    }
}

static json_t *check_asff(json_t *d, const char *label, const char *workflow, const char *record)
{
    json_t *a = convert(d, EXP_ASFF, NULL);
    check_required(a, asff_spec);
    check_asff_limits(a);
    check_asff_enums(a);
    assert_string_equal(json_string_value(json_object_get(a, "SchemaVersion")),
                        json_string_value(json_object_get(asff_spec, "schema_version")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "Severity"), "Label")), label);
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "Workflow"), "Status")), workflow);
    assert_string_equal(json_string_value(json_object_get(a, "RecordState")), record);
    return a;
}

/* ---- the cases ---- */

static json_t *doc_with(const char *severity, const char *status, const char *updated)
{
    json_t *d = base();
    json_object_set_new(d, "severity", json_string(severity));
    json_object_set_new(d, "status", json_string(status));
    json_object_set_new(d, "updated_at", json_string(updated));
    return d;
}

static void test_high_open_created(void **state)
{
    (void)state;
    json_t *o = check_ocsf(base(), (struct ocsf_want){ 1, 4, 1 });
    assert_string_equal(fi_uid(o), "cwf-ASIAEXAMPLEKEY000001");
    assert_true(json_is_true(json_object_get(o, "is_alert")));
    json_t *ev = json_object_get(o, "evidences");
    assert_int_equal(json_array_size(ev), 2);  /* one per outside address */
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(ev, 0), "src_endpoint"), "ip")),
                        "198.51.100.7");
    json_t *api = json_object_get(json_array_get(ev, 0), "api");
    assert_string_equal(json_string_value(json_object_get(api, "operation")), "GetCallerIdentity");
    json_t *atk = json_array_get(json_object_get(json_object_get(o, "finding_info"), "attacks"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(atk, "technique"), "uid")), "T1078");
    assert_string_equal(json_string_value(json_object_get(json_object_get(atk, "sub_technique"), "uid")), "T1078.004");
    assert_string_equal(json_string_value(json_object_get(json_object_get(atk, "tactic"), "uid")), "TA0001");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "finding_info"), "first_seen_time")),
                     ms_of("2024-03-13T09:10:00Z"));
    json_decref(o);
    json_t *a = check_asff(base(), "HIGH", "NEW", "ACTIVE");
    assert_string_equal(json_string_value(json_object_get(a, "Id")), "cwf-ASIAEXAMPLEKEY000001");
    assert_string_equal(json_string_value(json_object_get(a, "AwsAccountId")), "111122223333");
    assert_string_equal(json_string_value(json_object_get(a, "ProductArn")),
                        "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default");
    assert_string_equal(json_string_value(json_object_get(a, "CreatedAt")), CREATED);
    assert_string_equal(json_string_value(json_object_get(a, "FirstObservedAt")), "2024-03-13T09:10:00Z");
    json_t *res = json_object_get(a, "Resources");
    assert_int_equal(json_array_size(res), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "Type")), "AwsIamAccessKey");
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 1), "Type")), "AwsIamRole");
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 2), "Id")),
                        "arn:aws:lambda:eu-west-1:111122223333:function:my-fn");
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "ProductFields"), "credwatch/outside_source/2")),
                        "2001:db8::7");
    json_decref(a);
}

static void test_every_severity_and_status(void **state)
{
    (void)state;
    static const struct { const char *sev; int sev_id; const char *label; } sevs[] = {
        { "low", 2, "LOW" }, { "medium", 3, "MEDIUM" }, { "high", 4, "HIGH" }, { "critical", 5, "CRITICAL" },
    };
    static const struct { int st; int status_id; const char *workflow, *record; int closes; } sts[] = {
        { STORE_ST_OPEN, 1, "NEW", "ACTIVE", 0 },           { STORE_ST_ACKNOWLEDGED, 2, "NOTIFIED", "ACTIVE", 0 },
        { STORE_ST_RESOLVED, 4, "RESOLVED", "ACTIVE", 1 },  { STORE_ST_SUPPRESSED, 3, "SUPPRESSED", "ACTIVE", 1 },
        { STORE_ST_RETRACTED, 99, "RESOLVED", "ARCHIVED", 1 },
    };
    assert_int_equal(sizeof sts / sizeof sts[0], STORE_ST_COUNT);  /* a new status needs a mapping */
    for (size_t s = 0; s < sizeof sevs / sizeof sevs[0]; s++) {
        for (size_t t = 0; t < sizeof sts / sizeof sts[0]; t++) {
            const char *status = store_status_name(sts[t].st);
            /* first written: Create; later: Update, or Close for a closed status */
            json_t *o = check_ocsf(doc_with(sevs[s].sev, status, CREATED), (struct ocsf_want){ 1, sevs[s].sev_id,
                                                                                                 sts[t].status_id });
            json_decref(o);
            o = check_ocsf(doc_with(sevs[s].sev, status, LATER),
                           (struct ocsf_want){ sts[t].closes ? 3 : 2, sevs[s].sev_id, sts[t].status_id });
            assert_int_equal(json_is_true(json_object_get(o, "is_alert")), !sts[t].closes);
            if (sts[t].status_id == 99)
                assert_string_equal(json_string_value(json_object_get(o, "status")), status);
            json_decref(o);
            json_t *a = check_asff(doc_with(sevs[s].sev, status, LATER), sevs[s].label, sts[t].workflow, sts[t].record);
            assert_string_equal(json_string_value(json_object_get(a, "UpdatedAt")), LATER);
            json_decref(a);
        }
    }
}

static void test_no_function_no_role(void **state)
{
    (void)state;
    json_t *d = base();
    json_object_set_new(d, "function_name", json_null());
    json_object_set_new(d, "role_arn", json_null());
    json_t *o = check_ocsf(json_deep_copy(d), (struct ocsf_want){ 1, 4, 1 });
    assert_int_equal(json_array_size(json_object_get(o, "resources")), 1);
    json_decref(o);
    json_t *a = check_asff(d, "HIGH", "NEW", "ACTIVE");
    json_t *res = json_object_get(a, "Resources");
    assert_int_equal(json_array_size(res), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(res, 0), "Id")), "ASIAEXAMPLEKEY000001");
    assert_non_null(strstr(json_string_value(json_object_get(a, "Title")), "ASIAEXAMPLEKEY000001"));
    json_decref(a);
}

/* Each byte of s[0..n) starts or continues a whole character: no cut left half of one. */
static void assert_whole_utf8(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);  /* jansson refuses invalid UTF-8 */
    assert_non_null(j);
    json_decref(j);
}

/* A user agent and a function name chosen to overflow Title and Description, with 2-, 3- and
 * 4-byte characters and controls; the 4-byte one straddles byte 256 of the Title. */
static void test_attacker_strings_cut_whole(void **state)
{
    (void)state;
    size_t plen = strlen(TITLE_PREFIX);
    char fn[400], ua[6000];
    size_t n = 0;
    while (n < 256 - plen - 2)
        fn[n++] = 'a';
    memcpy(fn + n, "\xF0\x9F\x98\x80", 4);  /* U+1F600 at bytes 254..257 of the Title */
    n += 4;
    while (n + 3 < 380) {
        memcpy(fn + n, "\xC3\xA9", 2);  /* é */
        n += 2;
    }
    fn[n] = '\0';
    n = 0;
    while (n + 8 < sizeof ua) {
        memcpy(ua + n, "\xE2\x82\xAC\n\x01 x", 6);  /* €, newline, a control, space, x */
        n += 6;
    }
    ua[n] = '\0';
    json_t *d = doc_with("low", "open", CREATED);
    json_object_set_new(d, "function_name", json_string(fn));
    json_object_set_new(json_object_get(d, "first_outside_use"), "user_agent", json_string(ua));
    json_object_set_new(json_object_get(d, "first_outside_use"), "action", json_string("CRITICAL resolved"));
    /* the severity and status are the document's, whatever the record said */
    json_t *o = check_ocsf(json_deep_copy(d), (struct ocsf_want){ 1, 2, 1 });
    json_t *a = check_asff(d, "LOW", "NEW", "ACTIVE");
    const char *title = json_string_value(json_object_get(a, "Title"));
    const char *desc = json_string_value(json_object_get(a, "Description"));
    assert_int_equal(strlen(title), 254);  /* cut before the 4-byte character, not inside it */
    assert_memory_equal(title, TITLE_PREFIX, plen);
    assert_whole_utf8(title, strlen(title));
    assert_true(strlen(desc) <= 1024 && strlen(desc) > 1024 - 4);
    assert_whole_utf8(desc, strlen(desc));
    assert_null(strchr(desc, '\n'));
    assert_null(strchr(desc, '\x01'));
    const char *pua = json_string_value(json_object_get(json_object_get(a, "ProductFields"),
                                                        "credwatch/first_outside_use/user_agent"));
    assert_true(strlen(pua) <= 2048 && strlen(pua) > 2048 - 6);
    assert_whole_utf8(pua, strlen(pua));
    /* a name that is no Lambda function name makes no ARN */
    json_t *res = json_object_get(a, "Resources");
    for (size_t i = 0; i < json_array_size(res); i++)
        assert_string_not_equal(json_string_value(json_object_get(json_array_get(res, i), "Type")), "AwsLambdaFunction");
    /* OCSF carries the user agent whole, as data */
    json_t *ev0 = json_array_get(json_object_get(o, "evidences"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ev0, "http_request"), "user_agent")), ua);
    assert_true(strlen(json_string_value(json_object_get(json_object_get(o, "finding_info"), "title"))) <= 256);
    json_decref(o);
    json_decref(a);
}

static void test_many_sources_bounded(void **state)
{
    (void)state;
    json_t *d = base(), *srcs = json_array();
    for (int i = 0; i < 120; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "203.0.113.%d", i);
        json_array_append_new(srcs, json_pack("{s:s,s:s,s:s,s:i,s:i}", "ip", ip, "network", "unknown", "why",
                                              "outside_address", "count", 1, "succeeded", 1));
    }
    json_object_set_new(d, "outside_sources", srcs);
    json_object_set_new(d, "note", json_string("checked by the on-call analyst"));
    json_t *a = check_asff(json_deep_copy(d), "HIGH", "NEW", "ACTIVE");
    assert_string_equal(json_string_value(json_object_get(json_object_get(a, "ProductFields"), "credwatch/outside_source_count")),
                        "120");
    json_decref(a);
    json_t *o = check_ocsf(d, (struct ocsf_want){ 1, 4, 1 });
    assert_int_equal(json_array_size(json_object_get(o, "evidences")), 120);
    assert_string_equal(json_string_value(json_object_get(o, "comment")), "checked by the on-call analyst");
    json_decref(o);
}

static void test_product_arn_option(void **state)
{
    (void)state;
    struct exp_opts opts = { .asff_product_arn = "arn:aws:securityhub:us-east-1:444455556666:product/444455556666/default",
                             .product_version = "9.9.9" };
    json_t *a = convert(base(), EXP_ASFF, &opts);
    assert_string_equal(json_string_value(json_object_get(a, "ProductArn")), opts.asff_product_arn);
    json_decref(a);
    json_t *o = convert(base(), EXP_OCSF, &opts);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(o, "metadata"), "product"), "version")), "9.9.9");
    json_decref(o);
}

/* A finding of workload kind `kind` with id `id` (NULL: none known): function_name null as render.c
 * writes it for any kind but Lambda, and the ATT&CK list of an ECS, EC2 or EKS key. */
static json_t *workload_doc(const char *kind, const char *id)
{
    json_t *d = base();
    json_object_set_new(d, "workload", json_pack("{s:s,s:o}", "kind", kind, "id", id ? json_string(id) : json_null()));
    if (strcmp(kind, "lambda") != 0) {
        json_object_set_new(d, "function_name", json_null());
        json_object_set_new(d, "reasons", json_pack("[{s:s,s:s}]", "code", "issued_by_service", "text", "issued"));
        json_object_set_new(d, "attack", json_pack("[{s:s,s:s},{s:s,s:s}]", "id", "T1078.004", "name",
                                                   "Valid Accounts: Cloud Accounts", "id", "T1552.005", "name",
                                                   "Unsecured Credentials: Cloud Instance Metadata API"));
    }
    return d;
}

static const char *str_of(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The last entry of an array: the workload's resource (after the key and the role). */
static json_t *last_of(json_t *a)
{
    return json_array_get(a, json_array_size(a) - 1);
}

/* One case per kind: title and description with the kind's noun, the generator, the workload's
 * resource in both formats (ASFF: AwsLambdaFunction, AwsEc2Instance for an instance id, Other with
 * the id for the rest), the workload in ProductFields and OCSF's unmapped. */
static void test_workload_kinds(void **state)
{
    (void)state;
    static const struct {
        const char *kind, *id, *title, *desc, *gen, *asff_type, *asff_id, *ocsf_type, *ocsf_uid;
    } cases[] = {
        { "lambda", "my-fn", "Lambda credentials used outside the function: my-fn",
          " that AWS Lambda issued to function my-fn (role ", "credwatch/lambda-credential-exfiltration",
          "AwsLambdaFunction", "arn:aws:lambda:eu-west-1:111122223333:function:my-fn", "AWS::Lambda::Function",
          "arn:aws:lambda:eu-west-1:111122223333:function:my-fn" },
        { "ecs", "0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b",
          "ECS task credentials used outside the task: 0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b",
          " of ECS task 0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b (role ", "credwatch/ecs-credential-exfiltration", "Other",
          "0b6a3c54-3f0e-4d52-9b1e-6c1d2e3f4a5b", "AWS::ECS::Task", NULL },
        { "ec2", "i-0abcdef1234567890", "EC2 instance credentials used outside the instance: i-0abcdef1234567890",
          " of EC2 instance i-0abcdef1234567890 (role ", "credwatch/ec2-credential-exfiltration", "AwsEc2Instance",
          "arn:aws:ec2:eu-west-1:111122223333:instance/i-0abcdef1234567890", "AWS::EC2::Instance",
          "arn:aws:ec2:eu-west-1:111122223333:instance/i-0abcdef1234567890" },
        { "eks", "EXAMPLED539D4633E53DE1B71EXAMPLE/system:serviceaccount:payments:invoice-worker",
          "EKS pod credentials used outside the pod: EXAMPLED539D4633E53DE1B71EXAMPLE/system:serviceaccount:payments:invoice-worker",
          " of EKS pod EXAMPLED539D4633E53DE1B71EXAMPLE/system:serviceaccount:payments:invoice-worker (role ",
          "credwatch/eks-credential-exfiltration", "Other",
          "EXAMPLED539D4633E53DE1B71EXAMPLE/system:serviceaccount:payments:invoice-worker", "AWS::EKS::Pod", NULL },
        { "codebuild", "AWSCodeBuild-7c2e9a41", "CodeBuild build credentials used outside the build: AWSCodeBuild-7c2e9a41",
          " of CodeBuild build AWSCodeBuild-7c2e9a41 (role ", "credwatch/codebuild-credential-exfiltration", "Other",
          "AWSCodeBuild-7c2e9a41", "AWS::CodeBuild::Build", NULL },
    };
    static const char *const nouns[] = { "function", "task", "instance", "pod", "build" };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *a = check_asff(workload_doc(cases[i].kind, cases[i].id), "HIGH", "NEW", "ACTIVE");
        assert_string_equal(str_of(a, "Title"), cases[i].title);
        const char *desc = str_of(a, "Description");
        if (!strstr(desc, cases[i].desc))
            fail_msg("%s: description without \"%s\": %s", cases[i].kind, cases[i].desc, desc);
        char net[64];
        snprintf(net, sizeof net, " outside the %s's network: 198.51.100.7, 2001:db8::7.", nouns[i]);
        assert_non_null(strstr(desc, net));
        assert_string_equal(str_of(a, "GeneratorId"), cases[i].gen);
        json_t *res = json_object_get(a, "Resources");
        assert_int_equal(json_array_size(res), 3);  /* the key, the role, the workload */
        assert_string_equal(str_of(last_of(res), "Type"), cases[i].asff_type);
        assert_string_equal(str_of(last_of(res), "Id"), cases[i].asff_id);
        json_t *pf = json_object_get(a, "ProductFields");
        assert_string_equal(str_of(pf, "credwatch/workload_kind"), cases[i].kind);
        assert_string_equal(str_of(pf, "credwatch/workload_id"), cases[i].id);
        json_decref(a);
        json_t *o = check_ocsf(workload_doc(cases[i].kind, cases[i].id), (struct ocsf_want){ 1, 4, 1 });
        json_t *fi = json_object_get(o, "finding_info");
        assert_string_equal(str_of(fi, "title"), cases[i].title);
        assert_string_equal(str_of(json_object_get(fi, "analytic"), "uid"), cases[i].gen);
        json_t *r = last_of(json_object_get(o, "resources"));
        assert_string_equal(str_of(r, "type"), cases[i].ocsf_type);
        assert_string_equal(str_of(r, "name"), cases[i].id);
        if (cases[i].ocsf_uid)
            assert_string_equal(str_of(r, "uid"), cases[i].ocsf_uid);
        else
            assert_null(json_object_get(r, "uid"));
        json_t *user = json_object_get(json_object_get(json_array_get(json_object_get(o, "evidences"), 0), "actor"), "user");
        assert_string_equal(str_of(user, "name"), cases[i].id);
        json_t *wl = json_object_get(json_object_get(json_object_get(o, "unmapped"), "credwatch"), "workload");
        assert_string_equal(str_of(wl, "kind"), cases[i].kind);
        if (i > 0) {  /* T1552.005 is Credential Access */
            json_t *atk = json_array_get(json_object_get(fi, "attacks"), 1);
            assert_string_equal(str_of(json_object_get(atk, "sub_technique"), "uid"), "T1552.005");
            assert_string_equal(str_of(json_object_get(atk, "tactic"), "uid"), "TA0006");
        }
        json_decref(o);
    }
    /* a Lambda finding reads exactly as a document written before workloads (no workload field) */
    for (int fmt = EXP_OCSF; fmt <= EXP_ASFF; fmt++) {
        char *old = dumpd(base()), *now = dumpd(workload_doc("lambda", "my-fn")), *a = NULL, *b = NULL;
        assert_int_equal(exp_convert(old, fmt, NULL, &a), 0);
        assert_int_equal(exp_convert(now, fmt, NULL, &b), 0);
        assert_string_equal(a, b);
        free(a);
        free(b);
        free(old);
        free(now);
    }
    /* an EC2 key whose id is no instance id, or whose region is unknown: Other, no ARN made */
    json_t *a = check_asff(workload_doc("ec2", "web-session"), "HIGH", "NEW", "ACTIVE");
    assert_string_equal(str_of(last_of(json_object_get(a, "Resources")), "Type"), "Other");
    assert_string_equal(str_of(last_of(json_object_get(a, "Resources")), "Id"), "web-session");
    json_decref(a);
    static const char *const not_instances[] = { "i-0abcdef", "i-0abcdef1234567890a", "i-0abcdefg1234567", "I-0abcdef12" };
    for (size_t i = 0; i < sizeof not_instances / sizeof not_instances[0]; i++) {
        a = check_asff(workload_doc("ec2", not_instances[i]), "HIGH", "NEW", "ACTIVE");
        assert_string_equal(str_of(last_of(json_object_get(a, "Resources")), "Type"), "Other");
        json_decref(a);
    }
    struct exp_opts opts = { .asff_product_arn = "arn:aws:securityhub:us-east-1:444455556666:product/444455556666/default" };
    json_t *d = workload_doc("ec2", "i-0abcdef1234567890");
    json_object_set_new(d, "region", json_null());  /* outside-AWS rules: no region known */
    a = convert(d, EXP_ASFF, &opts);
    check_required(a, asff_spec);
    check_asff_enums(a);
    assert_string_equal(str_of(last_of(json_object_get(a, "Resources")), "Type"), "Other");
    assert_string_equal(str_of(last_of(json_object_get(a, "Resources")), "Id"), "i-0abcdef1234567890");
    json_decref(a);
    /* the role's partition names the instance's */
    d = workload_doc("ec2", "i-0abcdef1234567890");
    json_object_set_new(d, "role_arn", json_string("arn:aws-cn:iam::111122223333:role/web"));
    a = check_asff(d, "HIGH", "NEW", "ACTIVE");
    assert_string_equal(str_of(last_of(json_object_get(a, "Resources")), "Id"),
                        "arn:aws-cn:ec2:eu-west-1:111122223333:instance/i-0abcdef1234567890");
    json_decref(a);
    /* no workload id known: the key's id in the title, "an ECS task" in the description, no resource */
    a = check_asff(workload_doc("ecs", NULL), "HIGH", "NEW", "ACTIVE");
    assert_string_equal(str_of(a, "Title"), "ECS task credentials used outside the task: ASIAEXAMPLEKEY000001");
    assert_non_null(strstr(str_of(a, "Description"), "ASIAEXAMPLEKEY000001 of an ECS task (role "));
    assert_int_equal(json_array_size(json_object_get(a, "Resources")), 2);
    json_decref(a);
    /* a workload id chosen to break the texts (it is a session name) stays data, cut whole */
    char id[200];
    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    memcpy(id + 100, "\n\x01\xC3\xA9", 4);
    a = check_asff(workload_doc("codebuild", id), "HIGH", "NEW", "ACTIVE");
    assert_null(strchr(str_of(a, "Title"), '\n'));
    assert_whole_utf8(str_of(a, "Title"), strlen(str_of(a, "Title")));
    assert_string_equal(str_of(last_of(json_object_get(a, "Resources")), "Id"), id);
    json_decref(a);
}

static void expect_error(const char *doc, int fmt)
{
    char *out = (char *)1;
    int rc = exp_convert(doc, fmt, NULL, &out);
    if (rc >= 0)
        fail_msg("converted: %s", doc ? doc : "(NULL)");
    assert_null(out);
}

static void test_corrupt_documents(void **state)
{
    (void)state;
    static const char *const bad[] = { "", "not json", "[]", "{}", "{\"id\":1}", "\"cwf-x\"", "{\"id\":\"cwf-x\"",
                                       "{\"id\":\"cwf-x\",\"status\":\"open\",\"note\":null,\"created_at\":\"" CREATED
                                       "\",\"updated_at\":\"" CREATED "\"}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_error(bad[i], EXP_OCSF);
        expect_error(bad[i], EXP_ASFF);
    }
    expect_error(NULL, EXP_OCSF);
    static const char *const fields[][2] = {
        { "severity", "extreme" }, { "status", "closed" }, { "created_at", "yesterday" }, { "updated_at", "" },
        { "access_key_id", "" },
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        json_t *d = base();
        json_object_set_new(d, fields[i][0], json_string(fields[i][1]));
        char *s = dumpd(d);
        expect_error(s, EXP_OCSF);
        expect_error(s, EXP_ASFF);
        free(s);
    }
    /* no account_id: ASFF takes the role ARN's account */
    json_t *d = base();
    json_object_set_new(d, "account_id", json_null());
    char *s = dumpd(d), *out = NULL;
    assert_int_equal(exp_convert(s, EXP_ASFF, NULL, &out), 0);
    json_t *a = json_loads(out, 0, NULL);
    assert_non_null(a);
    assert_string_equal(json_string_value(json_object_get(a, "AwsAccountId")), "111122223333");
    json_decref(a);
    free(out);
    free(s);
    /* no account anywhere: OCSF still has a form, ASFF (AwsAccountId is required) has none */
    d = base();
    json_object_set_new(d, "account_id", json_null());
    json_object_set_new(d, "role_arn", json_null());
    s = dumpd(d);
    out = NULL;
    assert_int_equal(exp_convert(s, EXP_OCSF, NULL, &out), 0);
    free(out);
    assert_int_equal(exp_convert(s, EXP_ASFF, NULL, &out), CW_EFORMAT);
    assert_null(out);
    assert_int_equal(exp_convert(s, 7, NULL, &out), CW_EINVAL);
    assert_int_equal(exp_convert(s, EXP_CREDWATCH, NULL, &out), 0);
    assert_string_equal(out, s);  /* the credwatch format is the document as it is */
    free(out);
    free(s);
}

static void test_utf8_cut_and_names(void **state)
{
    (void)state;
    const char *s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";  /* a é € 😀: 1+2+3+4 bytes */
    size_t len = strlen(s);
    static const size_t want[] = { 0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10, 10 };
    for (size_t max = 0; max < sizeof want / sizeof want[0]; max++)
        assert_int_equal(exp_utf8_cut(s, len, max), want[max]);
    assert_int_equal(exp_format_parse("credwatch"), EXP_CREDWATCH);
    assert_int_equal(exp_format_parse("ocsf"), EXP_OCSF);
    assert_int_equal(exp_format_parse("asff"), EXP_ASFF);
    assert_int_equal(exp_format_parse("OCSF"), -1);
    assert_int_equal(exp_format_parse(""), -1);
    assert_int_equal(exp_format_parse(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_high_open_created),
        cmocka_unit_test(test_every_severity_and_status),
        cmocka_unit_test(test_no_function_no_role),
        cmocka_unit_test(test_attacker_strings_cut_whole),
        cmocka_unit_test(test_many_sources_bounded),
        cmocka_unit_test(test_product_arn_option),
        cmocka_unit_test(test_workload_kinds),
        cmocka_unit_test(test_corrupt_documents),
        cmocka_unit_test(test_utf8_cut_and_names),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
