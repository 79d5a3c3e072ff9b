/* export.c — see export.h. One reading of the finding document (struct view), then one builder
 * per format. The field names and limits follow the published schemas; tests/data/
 * ocsf_detection_finding_required.json and asff_required.json say which, with their sources. */
#include "export.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cw.h"
#include "detect.h"
#include "store.h"
#include "workload.h"

#define EXP_OCSF_VERSION "1.8.0"      /* the OCSF release targeted (ocsf-schema v1.8.0) */
#define EXP_OCSF_CATEGORY_UID 2       /* Findings */
#define EXP_OCSF_CLASS_UID 2004       /* Detection Finding: category * 1000 + class uid 4 */
#define EXP_OCSF_ACT_CREATE 1
#define EXP_OCSF_ACT_UPDATE 2
#define EXP_OCSF_ACT_CLOSE 3
#define EXP_OCSF_OTHER 99             /* an enum's "Other": the caption carries our own label */
#define EXP_OCSF_ANALYTIC_RULE 1      /* analytic.type_id Rule */
#define EXP_OCSF_ACCOUNT_AWS 10       /* account.type_id AWS Account */
#define EXP_OCSF_ROLE_AFFECTED 3      /* resource_details.role_id Affected */

#define EXP_ASFF_SCHEMA "2018-10-08"
#define EXP_ASFF_ACCOUNT_LEN 12       /* AwsAccountId: exactly 12 */
#define EXP_ASFF_TITLE_MAX 256        /* Title: 1-256 */
#define EXP_ASFF_DESC_MAX 1024        /* Description: 1-1024 */
#define EXP_ASFF_ID_MAX 512           /* Id, GeneratorId, Resources[].Id: at most 512 */
#define EXP_ASFF_ARN_MAX 2048         /* ProductArn: 12-2048 */
#define EXP_ASFF_PF_MAX 50            /* ProductFields: at most 50 pairs */
#define EXP_ASFF_PF_VALUE_MAX 2048    /* a ProductFields value: at most 2048 */
#define EXP_ASFF_PF_ADDRESSES 36      /* outside addresses listed one per pair: the rest of the 50 is ours */
#define EXP_LAMBDA_NAME_MAX 64        /* a Lambda function name, [A-Za-z0-9_-]{1,64}: else no ARN is made */

#define EXP_GENERATOR_MAX 64          /* "credwatch/<kind>-credential-exfiltration" (generator_id) */
#define EXP_PRODUCT "credwatch"

/* The fields of a finding document the formats use; pointers into doc. */
struct view {
    json_t *doc;
    const char *id, *akid, *account, *region, *function, *role, *runtime, *note;
    const char *severity, *status, *created, *updated, *first, *last;
    int sev, st;                              /* enum det_severity, STORE_ST_* */
    int64_t created_ms, updated_ms, first_ms, last_ms;  /* first/last 0 when absent */
    json_t *sources, *actions, *reasons, *attack, *first_use, *last_use;  /* NULL when absent */
    char role_account[16];                    /* the account of role_arn, when account_id is absent */
    enum wl_kind kind;                        /* workload.kind; a document without one (written before
                                               * workloads) is Lambda's */
    const char *wl_id;                        /* workload.id, else (Lambda) function_name; NULL unknown */
    const char *label, *noun;                 /* "ECS", "task": the texts' words for the kind */
};

/* The words the texts use for a kind: its product's name (Lambda for a document written before
 * workloads, which has no kind). */
static const char *kind_label(enum wl_kind k)
{
    const struct wl_profile *p = wl_profile(k);
    return p ? p->label : "Lambda";
}

/* A document's workload.kind; one without (written before workloads) or unknown is Lambda's. */
static enum wl_kind kind_parse(const char *name)
{
    enum wl_kind k = wl_kind_parse(name);
    return k == WL_NONE ? WL_LAMBDA : k;
}

/* The account field of an IAM ARN (arn:<partition>:iam::<account>:role/...) into out, or "". A key
 * seen only through its runtime marker may have no account_id in its document, but its role does. */
static void arn_account(const char *arn, char *out, size_t size)
{
    out[0] = '\0';
    const char *p = arn;
    for (int field = 0; p && field < 4; field++)
        p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL;
    const char *end = p ? strchr(p, ':') : NULL;
    if (!p || strncmp(arn, "arn:", 4) != 0 || !end || (size_t)(end - p) >= size)
        return;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = '\0';
}

int exp_format_parse(const char *s)
{
    static const char *const names[] = { [EXP_CREDWATCH] = "credwatch", [EXP_OCSF] = "ocsf", [EXP_ASFF] = "asff" };
    for (int i = 0; s && i < (int)(sizeof names / sizeof names[0]); i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

size_t exp_utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)  /* s[n] continues the character before it */
        n--;
    return n;
}

/* ---- reading the document ---- */

static const char *str_at(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && s[0] ? s : NULL;
}

static int time_at(json_t *o, const char *key, const char **s, int64_t *ms)
{
    *s = str_at(o, key);
    *ms = 0;
    return *s ? cw_time_parse(*s, 0, ms) : CW_EINVAL;
}

static json_t *array_at(json_t *o, const char *key)
{
    json_t *a = json_object_get(o, key);
    return json_is_array(a) ? a : NULL;
}

static int view_load(const char *doc, struct view *v)
{
    memset(v, 0, sizeof *v);
    v->doc = doc ? json_loads(doc, JSON_REJECT_DUPLICATES, NULL) : NULL;
    if (!json_is_object(v->doc))
        return CW_EJSON;
    json_t *d = v->doc;
    v->id = str_at(d, "id");
    v->akid = str_at(d, "access_key_id");
    v->account = str_at(d, "account_id");
    v->region = str_at(d, "region");
    v->function = str_at(d, "function_name");
    v->role = str_at(d, "role_arn");
    if (!v->account && v->role) {
        arn_account(v->role, v->role_account, sizeof v->role_account);
        if (v->role_account[0])
            v->account = v->role_account;
    }
    json_t *wl = json_object_get(d, "workload");
    v->kind = kind_parse(str_at(wl, "kind"));
    v->wl_id = str_at(wl, "id");
    if (v->kind == WL_LAMBDA)
        v->wl_id = v->function;  /* the function's name, as every format showed it before workloads */
    v->label = kind_label(v->kind);
    v->noun = wl_profile(v->kind)->noun;
    v->runtime = str_at(d, "runtime");
    v->note = str_at(d, "note");
    v->severity = str_at(d, "severity");
    v->status = str_at(d, "status");
    v->sev = v->severity ? det_severity_parse(v->severity) : -1;
    v->st = v->status ? store_status_parse(v->status) : -1;
    if (!v->id || !v->akid || v->sev <= DET_SEV_NONE || v->st < 0)
        return CW_EFORMAT;
    if (time_at(d, "created_at", &v->created, &v->created_ms) || time_at(d, "updated_at", &v->updated, &v->updated_ms))
        return CW_EFORMAT;
    if (time_at(d, "first_outside_at", &v->first, &v->first_ms))
        v->first = NULL;
    if (time_at(d, "last_outside_at", &v->last, &v->last_ms))
        v->last = NULL;
    v->sources = array_at(d, "outside_sources");
    v->actions = array_at(d, "outside_actions");
    v->reasons = array_at(d, "reasons");
    v->attack = array_at(d, "attack");
    v->first_use = json_is_object(json_object_get(d, "first_outside_use")) ? json_object_get(d, "first_outside_use") : NULL;
    v->last_use = json_is_object(json_object_get(d, "last_outside_use")) ? json_object_get(d, "last_outside_use") : NULL;
    return 0;
}

/* ---- bounded text: what a record chose is cut on a character boundary, controls become spaces ---- */

struct text {
    char *p;
    size_t len, cap;  /* cap includes the NUL */
};

static void text_add(struct text *t, const char *s)
{
    if (!s || t->len + 1 >= t->cap)
        return;
    size_t n = exp_utf8_cut(s, strlen(s), t->cap - 1 - t->len);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        t->p[t->len++] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
    }
    t->p[t->len] = '\0';
}

/* The strings of array a (or the `key` of its objects), joined by ", ". */
static void text_join(struct text *t, json_t *a, const char *key)
{
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) {
        const char *s = key ? str_at(e, key) : json_string_value(e);
        if (!s)
            continue;
        if (i)
            text_add(t, ", ");
        text_add(t, s);
    }
}

static json_t *text_json(const struct text *t)
{
    return json_stringn(t->p, t->len);
}

/* "Lambda credentials used outside the function", "ECS task credentials used outside the task" */
static void analytic_text(const struct view *v, struct text *t)
{
    text_add(t, v->label);
    if (v->kind != WL_LAMBDA) {
        text_add(t, " ");
        text_add(t, v->noun);
    }
    text_add(t, " credentials used outside the ");
    text_add(t, v->noun);
}

static void title_text(const struct view *v, struct text *t)
{
    analytic_text(v, t);
    text_add(t, ": ");
    text_add(t, v->wl_id ? v->wl_id : v->akid);
}

/* "credwatch/lambda-credential-exfiltration", "credwatch/ecs-credential-exfiltration" */
static void generator_id(const struct view *v, char *out, size_t size)
{
    snprintf(out, size, "credwatch/%s-credential-exfiltration", wl_kind_name(v->kind));
}

static void desc_text(const struct view *v, struct text *t)
{
    char n[24];
    text_add(t, "Temporary credentials ");
    text_add(t, v->akid);
    if (v->kind == WL_LAMBDA) {
        text_add(t, " that AWS Lambda issued to ");
        text_add(t, v->function ? "function " : "a function");
        text_add(t, v->function);
    } else {
        text_add(t, " of ");
        text_add(t, v->wl_id ? "" : strchr("AEIOU", v->label[0]) ? "an " : "a ");
        text_add(t, v->label);
        text_add(t, " ");
        text_add(t, v->noun);
        text_add(t, v->wl_id ? " " : NULL);
        text_add(t, v->wl_id);
    }
    if (v->role) {
        text_add(t, " (role ");
        text_add(t, v->role);
        text_add(t, ")");
    }
    text_add(t, " in account ");
    text_add(t, v->account ? v->account : "unknown");
    text_add(t, ", region ");
    text_add(t, v->region ? v->region : "unknown");
    snprintf(n, sizeof n, "%zu", json_array_size(v->sources));
    text_add(t, ", were used from ");
    text_add(t, n);
    text_add(t, " address(es) outside the ");
    text_add(t, v->noun);
    text_add(t, "'s network: ");
    text_join(t, v->sources, "ip");
    if (v->first_use) {
        text_add(t, ". First outside use: ");
        text_add(t, str_at(v->first_use, "action"));
        text_add(t, " from ");
        text_add(t, str_at(v->first_use, "source_ip"));
        text_add(t, " at ");
        text_add(t, str_at(v->first_use, "at"));
        text_add(t, ", user agent \"");
        text_add(t, str_at(v->first_use, "user_agent"));
        text_add(t, "\"");
    }
    text_add(t, ". Severity ");
    text_add(t, v->severity);
    text_add(t, "; reasons: ");
    text_join(t, v->reasons, "code");
    text_add(t, ".");
}

/* ---- shared small pieces ---- */

static void set_str(json_t *o, const char *key, const char *s)
{
    if (s)
        json_object_set_new(o, key, json_string(s));
}

static void set_int(json_t *o, const char *key, int64_t n)
{
    json_object_set_new(o, key, json_integer((json_int_t)n));
}

/* The partition of an ARN (arn:PARTITION:...) when it is one ASFF names; "aws" otherwise. */
static const char *partition_of(const char *arn)
{
    static const char *const known[] = { "aws", "aws-cn", "aws-us-gov" };
    if (arn && strncmp(arn, "arn:", 4) == 0) {
        size_t n = strcspn(arn + 4, ":");
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (strlen(known[i]) == n && strncmp(arn + 4, known[i], n) == 0)
                return known[i];
    }
    return "aws";
}

/* arn:<partition>:lambda:<region>:<account>:function:<name> when every part is known and the name
 * is a Lambda function name; otherwise the function has no ARN here (its name is still shown). */
static int function_arn(const struct view *v, char *out, size_t size)
{
    size_t n = v->function ? strlen(v->function) : 0;
    if (!n || n > EXP_LAMBDA_NAME_MAX || strspn(v->function, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                             "0123456789-_") != n)
        return -1;
    if (!v->region || !v->account)
        return -1;
    int w = snprintf(out, size, "arn:%s:lambda:%s:%s:function:%s", partition_of(v->role), v->region, v->account,
                     v->function);
    return w > 0 && (size_t)w < size ? 0 : -1;
}

/* arn:<partition>:ec2:<region>:<account>:instance/<id> for an EC2 key whose workload id is an
 * instance id (i- and 8 to 17 hex digits, the session name EC2 gives its role sessions) and whose
 * region and account are known; otherwise the instance has no ARN here. */
static int instance_arn(const struct view *v, char *out, size_t size)
{
    const char *id = v->wl_id;
    size_t n = id && strncmp(id, "i-", 2) == 0 ? strspn(id + 2, "0123456789abcdefABCDEF") : 0;
    if (v->kind != WL_EC2 || n < 8 || n > 17 || id[2 + n] != '\0' || !v->region || !v->account)
        return -1;
    int w = snprintf(out, size, "arn:%s:ec2:%s:%s:instance/%s", partition_of(v->role), v->region, v->account, id);
    return w > 0 && (size_t)w < size ? 0 : -1;
}

static char *dump(json_t *o)
{
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(o);
    return s;
}

/* ---- OCSF Detection Finding ---- */

/* A finding first written is a Create, a resolved, suppressed or retracted one a Close. */
static int ocsf_activity(const struct view *v)
{
    if (v->created_ms == v->updated_ms)
        return EXP_OCSF_ACT_CREATE;
    if (v->st == STORE_ST_RESOLVED || v->st == STORE_ST_SUPPRESSED || v->st == STORE_ST_RETRACTED)
        return EXP_OCSF_ACT_CLOSE;
    return EXP_OCSF_ACT_UPDATE;
}

static void ocsf_classify(json_t *o, const struct view *v)
{
    static const char *const act_names[] = { [EXP_OCSF_ACT_CREATE] = "Create", [EXP_OCSF_ACT_UPDATE] = "Update",
                                             [EXP_OCSF_ACT_CLOSE] = "Close" };
    static const struct { int id; const char *name; } sev[] = {
        [DET_SEV_LOW] = { 2, "Low" }, [DET_SEV_MEDIUM] = { 3, "Medium" }, [DET_SEV_HIGH] = { 4, "High" },
        [DET_SEV_CRITICAL] = { 5, "Critical" },
    };
    static const struct { int id; const char *name; } st[STORE_ST_COUNT] = {
        [STORE_ST_OPEN] = { 1, "New" }, [STORE_ST_ACKNOWLEDGED] = { 2, "In Progress" },
        [STORE_ST_SUPPRESSED] = { 3, "Suppressed" }, [STORE_ST_RESOLVED] = { 4, "Resolved" },
        [STORE_ST_RETRACTED] = { EXP_OCSF_OTHER, "retracted" },  /* withdrawn by an older release */
    };
    int act = ocsf_activity(v);
    char type_name[64];
    snprintf(type_name, sizeof type_name, "Detection Finding: %s", act_names[act]);
    set_int(o, "activity_id", act);
    set_str(o, "activity_name", act_names[act]);
    set_int(o, "category_uid", EXP_OCSF_CATEGORY_UID);
    set_str(o, "category_name", "Findings");
    set_int(o, "class_uid", EXP_OCSF_CLASS_UID);
    set_str(o, "class_name", "Detection Finding");
    set_int(o, "type_uid", (int64_t)EXP_OCSF_CLASS_UID * 100 + act);
    set_str(o, "type_name", type_name);
    set_int(o, "severity_id", sev[v->sev].id);
    set_str(o, "severity", sev[v->sev].name);
    set_int(o, "status_id", st[v->st].id);
    set_str(o, "status", st[v->st].name);
    set_int(o, "time", v->updated_ms);
    json_object_set_new(o, "is_alert", json_boolean(act != EXP_OCSF_ACT_CLOSE));
}

/* The tactic each technique credwatch names serves here (docs/detection.md); others get none. */
static json_t *ocsf_tactic(const char *technique)
{
    static const char *const map[][3] = {
        { "T1078", "TA0001", "Initial Access" },
        { "T1550", "TA0005", "Defense Evasion" },
        { "T1552", "TA0006", "Credential Access" },
    };
    size_t n = strcspn(technique, ".");
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strlen(map[i][0]) == n && strncmp(technique, map[i][0], n) == 0)
            return json_pack("{s:s,s:s}", "uid", map[i][1], "name", map[i][2]);
    return NULL;
}

/* "T1078.004" named "Valid Accounts: Cloud Accounts" is technique T1078 "Valid Accounts" with
 * sub-technique T1078.004 "Cloud Accounts". */
static json_t *ocsf_attack(const char *id, const char *name)
{
    json_t *a = json_object();
    const char *dot = strchr(id, '.'), *colon = name ? strstr(name, ": ") : NULL;
    json_t *tech = json_object();
    json_object_set_new(tech, "uid", json_stringn(id, dot ? (size_t)(dot - id) : strlen(id)));
    if (name && (!dot || colon))
        json_object_set_new(tech, "name", json_stringn(name, dot ? (size_t)(colon - name) : strlen(name)));
    json_object_set_new(a, "technique", tech);
    if (dot) {
        json_t *sub = json_object();
        set_str(sub, "uid", id);
        set_str(sub, "name", colon ? colon + 2 : name);
        json_object_set_new(a, "sub_technique", sub);
    }
    json_t *tactic = ocsf_tactic(id);
    if (tactic)
        json_object_set_new(a, "tactic", tactic);
    return a;
}

static json_t *ocsf_attacks(const struct view *v)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(v->attack, i, e) {
        const char *id = str_at(e, "id");
        if (id)
            json_array_append_new(out, ocsf_attack(id, str_at(e, "name")));
    }
    return out;
}

static json_t *ocsf_finding_info(const struct view *v, const struct text *title, const struct text *desc)
{
    json_t *fi = json_object();
    set_str(fi, "uid", v->id);
    json_object_set_new(fi, "title", text_json(title));
    json_object_set_new(fi, "desc", text_json(desc));
    char type[64], gen[EXP_GENERATOR_MAX], abuf[96];
    struct text an = { abuf, 0, sizeof abuf };
    abuf[0] = '\0';
    analytic_text(v, &an);
    generator_id(v, gen, sizeof gen);
    snprintf(type, sizeof type, "%s Credential Exfiltration", v->label);
    json_object_set_new(fi, "types", json_pack("[s]", type));
    json_object_set_new(fi, "analytic", json_pack("{s:s,s:s,s:i,s:s}", "uid", gen, "name", abuf, "type_id",
                                                  EXP_OCSF_ANALYTIC_RULE, "type", "Rule"));
    set_int(fi, "created_time", v->created_ms);
    set_int(fi, "modified_time", v->updated_ms);
    if (v->first)
        set_int(fi, "first_seen_time", v->first_ms);
    if (v->last)
        set_int(fi, "last_seen_time", v->last_ms);
    json_object_set_new(fi, "data_sources", json_pack("[s]", "AWS CloudTrail"));
    json_object_set_new(fi, "attacks", ocsf_attacks(v));
    return fi;
}

/* Who used the key: the workload's role session, by its access key. */
static json_t *ocsf_actor(const struct view *v)
{
    json_t *user = json_object();
    set_str(user, "name", v->wl_id ? v->wl_id : v->akid);
    set_str(user, "uid", v->role);
    json_object_set_new(user, "programmatic_credentials",
                        json_pack("[{s:s,s:s}]", "uid", v->akid, "type", "AWS Temporary Access Key"));
    if (v->account)
        json_object_set_new(user, "account", json_pack("{s:s,s:i,s:s}", "uid", v->account, "type_id",
                                                       EXP_OCSF_ACCOUNT_AWS, "type", "AWS Account"));
    return json_pack("{s:o}", "user", user);
}

/* The call a use record describes: "sts:GetCallerIdentity" is operation GetCallerIdentity of sts. */
static void ocsf_use(json_t *ev, json_t *use)
{
    const char *action = str_at(use, "action"), *colon = action ? strchr(action, ':') : NULL;
    if (action) {
        json_t *api = json_object();
        set_str(api, "operation", colon ? colon + 1 : action);
        if (colon)
            json_object_set_new(api, "service", json_pack("{s:s%}", "name", action, (size_t)(colon - action)));
        if (str_at(use, "event_id"))
            json_object_set_new(api, "request", json_pack("{s:s}", "uid", str_at(use, "event_id")));
        json_object_set_new(ev, "api", api);
    }
    if (str_at(use, "user_agent"))
        json_object_set_new(ev, "http_request", json_pack("{s:s}", "user_agent", str_at(use, "user_agent")));
}

/* One evidence per outside address, with its tally; the first and last outside uses add the call. */
static json_t *ocsf_evidences(const struct view *v)
{
    json_t *out = json_array();
    size_t i;
    json_t *src;
    json_array_foreach(v->sources, i, src) {
        const char *ip = str_at(src, "ip");
        if (!ip)
            continue;
        json_t *ev = json_object();
        json_object_set_new(ev, "src_endpoint", json_pack("{s:s}", "ip", ip));
        json_object_set_new(ev, "actor", ocsf_actor(v));
        json_t *data = json_object();
        const char *keys[] = { "network", "why", "count", "succeeded", "first_at", "last_at" };
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
            if (json_object_get(src, keys[k]))
                json_object_set(data, keys[k], json_object_get(src, keys[k]));
        json_object_set_new(ev, "data", data);
        const char *first_ip = str_at(v->first_use, "source_ip"), *last_ip = str_at(v->last_use, "source_ip");
        if (first_ip && strcmp(first_ip, ip) == 0)
            ocsf_use(ev, v->first_use);
        else if (last_ip && strcmp(last_ip, ip) == 0)
            ocsf_use(ev, v->last_use);
        json_array_append_new(out, ev);
    }
    return out;
}

static json_t *ocsf_resource(const char *type, const char *uid, const char *name, const char *region)
{
    json_t *r = json_object();
    set_str(r, "type", type);
    set_str(r, "uid", uid);
    set_str(r, "name", name);
    set_str(r, "region", region);
    set_int(r, "role_id", EXP_OCSF_ROLE_AFFECTED);
    set_str(r, "role", "Affected");
    return r;
}

static json_t *ocsf_resources(const struct view *v)
{
    json_t *out = json_array();
    char arn[EXP_ASFF_ID_MAX + 1];
    json_array_append_new(out, ocsf_resource("AWS::IAM::AccessKey", v->akid, NULL, v->region));
    if (v->role) {
        const char *slash = strrchr(v->role, '/');
        json_array_append_new(out, ocsf_resource("AWS::IAM::Role", v->role, slash ? slash + 1 : NULL, NULL));
    }
    static const char *const types[WL_KIND_COUNT] = {
        [WL_LAMBDA] = "AWS::Lambda::Function", [WL_ECS] = "AWS::ECS::Task", [WL_EC2] = "AWS::EC2::Instance",
        [WL_EKS] = "AWS::EKS::Pod", [WL_CODEBUILD] = "AWS::CodeBuild::Build",
    };
    int has_arn = v->kind == WL_LAMBDA ? function_arn(v, arn, sizeof arn) == 0 : instance_arn(v, arn, sizeof arn) == 0;
    if (v->wl_id)
        json_array_append_new(out, ocsf_resource(types[v->kind], has_arn ? arn : NULL, v->wl_id, v->region));
    return out;
}

static json_t *ocsf_metadata(const struct view *v, const struct exp_opts *opts)
{
    json_t *product = json_pack("{s:s,s:s}", "name", EXP_PRODUCT, "vendor_name", EXP_PRODUCT);
    set_str(product, "version", opts && opts->product_version ? opts->product_version : CW_VERSION);
    /* one event per state of the finding: its id and the time of that state */
    char uid[STORE_ID_MAX + 32];
    int idlen = (int)exp_utf8_cut(v->id, strlen(v->id), STORE_ID_MAX);
    snprintf(uid, sizeof uid, "%.*s/%lld", idlen, v->id, (long long)v->updated_ms);
    return json_pack("{s:s,s:o,s:s,s:[s]}", "version", EXP_OCSF_VERSION, "product", product, "uid", uid, "profiles",
                     "cloud");
}

static json_t *ocsf_build(const struct view *v, const struct exp_opts *opts)
{
    char tbuf[EXP_ASFF_TITLE_MAX + 1], dbuf[EXP_ASFF_DESC_MAX + 1];
    struct text title = { tbuf, 0, sizeof tbuf }, desc = { dbuf, 0, sizeof dbuf };
    tbuf[0] = dbuf[0] = '\0';
    title_text(v, &title);
    desc_text(v, &desc);
    json_t *o = json_object();
    ocsf_classify(o, v);
    json_object_set_new(o, "message", text_json(&title));
    json_object_set_new(o, "metadata", ocsf_metadata(v, opts));
    json_object_set_new(o, "finding_info", ocsf_finding_info(v, &title, &desc));
    json_t *cloud = json_pack("{s:s}", "provider", "AWS");
    set_str(cloud, "region", v->region);
    if (v->account)
        json_object_set_new(cloud, "account", json_pack("{s:s,s:i,s:s}", "uid", v->account, "type_id",
                                                        EXP_OCSF_ACCOUNT_AWS, "type", "AWS Account"));
    json_object_set_new(o, "cloud", cloud);
    if (v->first)
        set_int(o, "start_time", v->first_ms);
    if (v->last)
        set_int(o, "end_time", v->last_ms);
    json_object_set_new(o, "evidences", ocsf_evidences(v));
    json_object_set_new(o, "resources", ocsf_resources(v));
    if (v->note)
        set_str(o, "comment", v->note);
    json_t *um = json_object();
    json_object_set(um, "reasons", v->reasons ? v->reasons : json_array());
    json_object_set(um, "outside_actions", v->actions ? v->actions : json_array());
    set_str(um, "runtime", v->runtime);
    json_object_set_new(um, "workload", json_pack("{s:s,s:o}", "kind", wl_kind_name(v->kind), "id",
                                                  v->wl_id ? json_string(v->wl_id) : json_null()));
    json_object_set_new(o, "unmapped", json_pack("{s:o}", "credwatch", um));
    return o;
}

/* ---- ASFF ---- */

static int digits12(const char *s)
{
    return s && strlen(s) == EXP_ASFF_ACCOUNT_LEN && strspn(s, "0123456789") == EXP_ASFF_ACCOUNT_LEN;
}

/* A ProductFields pair, the value cut to its limit; nothing past EXP_ASFF_PF_MAX pairs. */
static void pf_add(json_t *pf, const char *key, const char *value)
{
    if (!value || json_object_size(pf) >= EXP_ASFF_PF_MAX)
        return;
    char buf[EXP_ASFF_PF_VALUE_MAX + 1];
    struct text t = { buf, 0, sizeof buf };
    buf[0] = '\0';
    text_add(&t, value);
    json_object_set_new(pf, key, text_json(&t));
}

static void pf_join(json_t *pf, const char *key, json_t *a, const char *field)
{
    char buf[EXP_ASFF_PF_VALUE_MAX + 1];
    struct text t = { buf, 0, sizeof buf };
    buf[0] = '\0';
    text_join(&t, a, field);
    if (t.len)
        pf_add(pf, key, buf);
}

static json_t *asff_product_fields(const struct view *v)
{
    json_t *pf = json_object();
    char key[64], n[24];
    pf_add(pf, "credwatch/access_key_id", v->akid);
    pf_add(pf, "credwatch/severity", v->severity);
    pf_add(pf, "credwatch/status", v->status);
    pf_add(pf, "credwatch/function_name", v->function);
    pf_add(pf, "credwatch/workload_kind", wl_kind_name(v->kind));
    pf_add(pf, "credwatch/workload_id", v->wl_id);
    pf_add(pf, "credwatch/runtime", v->runtime);
    pf_add(pf, "credwatch/note", v->note);
    pf_join(pf, "credwatch/reasons", v->reasons, "code");
    pf_join(pf, "credwatch/outside_actions", v->actions, NULL);
    pf_add(pf, "credwatch/first_outside_use/action", str_at(v->first_use, "action"));
    pf_add(pf, "credwatch/first_outside_use/source_ip", str_at(v->first_use, "source_ip"));
    pf_add(pf, "credwatch/first_outside_use/user_agent", str_at(v->first_use, "user_agent"));
    snprintf(n, sizeof n, "%zu", json_array_size(v->sources));
    pf_add(pf, "credwatch/outside_source_count", n);
    size_t i;
    json_t *src;
    json_array_foreach(v->sources, i, src) {
        if (i >= EXP_ASFF_PF_ADDRESSES)
            break;
        snprintf(key, sizeof key, "credwatch/outside_source/%zu", i + 1);
        pf_add(pf, key, str_at(src, "ip"));
    }
    return pf;
}

static json_t *asff_resource(const char *type, const char *id, const char *partition, const char *region)
{
    json_t *r = json_pack("{s:s,s:s,s:s}", "Type", type, "Id", id, "Partition", partition);
    set_str(r, "Region", region);
    return r;
}

/* The key (always), the role and the workload when known and within the Id limit: a Lambda
 * function by its ARN (AwsLambdaFunction), an EC2 instance by its ARN (AwsEc2Instance) when its id
 * is an instance id, any other workload as Other with its id (an ECS task id, an EKS pod's session
 * or IRSA subject, a CodeBuild session). */
static json_t *asff_resources(const struct view *v, const char *partition)
{
    json_t *out = json_array();
    char arn[EXP_ASFF_ID_MAX + 1];
    if (strlen(v->akid) <= EXP_ASFF_ID_MAX)
        json_array_append_new(out, asff_resource("AwsIamAccessKey", v->akid, partition, v->region));
    if (v->role && strlen(v->role) <= EXP_ASFF_ID_MAX)
        json_array_append_new(out, asff_resource("AwsIamRole", v->role, partition, v->region));
    if (v->kind == WL_LAMBDA) {
        if (function_arn(v, arn, sizeof arn) == 0)
            json_array_append_new(out, asff_resource("AwsLambdaFunction", arn, partition, v->region));
    } else if (instance_arn(v, arn, sizeof arn) == 0) {
        json_array_append_new(out, asff_resource("AwsEc2Instance", arn, partition, v->region));
    } else if (v->wl_id && strlen(v->wl_id) <= EXP_ASFF_ID_MAX) {
        json_array_append_new(out, asff_resource("Other", v->wl_id, partition, v->region));
    }
    return out;
}

static json_t *asff_build(const struct view *v, const struct exp_opts *opts)
{
    static const char *const label[] = { [DET_SEV_LOW] = "LOW", [DET_SEV_MEDIUM] = "MEDIUM", [DET_SEV_HIGH] = "HIGH",
                                         [DET_SEV_CRITICAL] = "CRITICAL" };
    static const char *const workflow[STORE_ST_COUNT] = {
        [STORE_ST_OPEN] = "NEW", [STORE_ST_ACKNOWLEDGED] = "NOTIFIED", [STORE_ST_RESOLVED] = "RESOLVED",
        [STORE_ST_SUPPRESSED] = "SUPPRESSED", [STORE_ST_RETRACTED] = "RESOLVED",
    };
    const char *partition = partition_of(v->role);
    char arn[EXP_ASFF_ARN_MAX + 1], tbuf[EXP_ASFF_TITLE_MAX + 1], dbuf[EXP_ASFF_DESC_MAX + 1];
    struct text title = { tbuf, 0, sizeof tbuf }, desc = { dbuf, 0, sizeof dbuf };
    tbuf[0] = dbuf[0] = '\0';
    if (opts && opts->asff_product_arn)
        snprintf(arn, sizeof arn, "%s", opts->asff_product_arn);
    else
        snprintf(arn, sizeof arn, "arn:%s:securityhub:%s:%s:product/%s/default", partition, v->region, v->account,
                 v->account);
    char gen[EXP_GENERATOR_MAX];
    generator_id(v, gen, sizeof gen);
    title_text(v, &title);
    desc_text(v, &desc);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "SchemaVersion", EXP_ASFF_SCHEMA, "Id", v->id, "ProductArn", arn,
                          "GeneratorId", gen, "AwsAccountId", v->account);
    if (!o)
        return NULL;
    json_object_set_new(o, "Types", json_pack("[s,s,s]", "TTPs/Initial Access", "TTPs/Credential Access",
                                              "Unusual Behaviors/User"));
    set_str(o, "CreatedAt", v->created);
    set_str(o, "UpdatedAt", v->updated);
    set_str(o, "FirstObservedAt", v->first);
    set_str(o, "LastObservedAt", v->last);
    json_object_set_new(o, "Severity", json_pack("{s:s,s:s}", "Label", label[v->sev], "Original", v->severity));
    json_object_set_new(o, "Title", text_json(&title));
    json_object_set_new(o, "Description", text_json(&desc));
    json_object_set_new(o, "Resources", asff_resources(v, partition));
    json_object_set_new(o, "ProductFields", asff_product_fields(v));
    json_object_set_new(o, "Workflow", json_pack("{s:s}", "Status", workflow[v->st]));
    set_str(o, "RecordState", v->st == STORE_ST_RETRACTED ? "ARCHIVED" : "ACTIVE");
    return o;
}

static int asff_check(const struct view *v, const struct exp_opts *opts)
{
    if (!digits12(v->account) || strlen(v->id) > EXP_ASFF_ID_MAX)
        return CW_EFORMAT;
    if (opts && opts->asff_product_arn) {
        size_t n = strlen(opts->asff_product_arn);
        return n >= 12 && n <= EXP_ASFF_ARN_MAX ? 0 : CW_EINVAL;
    }
    /* the default ARN holds the region: one that could not be a region makes no ARN */
    if (!v->region || strlen(v->region) > 32 || strspn(v->region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(v->region))
        return CW_EFORMAT;
    return 0;
}

int exp_convert(const char *doc, int fmt, const struct exp_opts *opts, char **out)
{
    struct view v;
    int rc;
    *out = NULL;
    if (fmt == EXP_CREDWATCH) {
        *out = doc ? strdup(doc) : NULL;
        return *out ? 0 : doc ? CW_ENOMEM : CW_EJSON;
    }
    if (fmt != EXP_OCSF && fmt != EXP_ASFF)
        return CW_EINVAL;
    if ((rc = view_load(doc, &v)) != 0)
        goto out;
    if (fmt == EXP_ASFF && (rc = asff_check(&v, opts)) != 0)
        goto out;
    *out = dump(fmt == EXP_OCSF ? ocsf_build(&v, opts) : asff_build(&v, opts));
    rc = *out ? 0 : CW_ENOMEM;
out:
    json_decref(v.doc);
    return rc;
}
