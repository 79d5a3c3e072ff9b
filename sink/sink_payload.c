/* sink_payload.c — webhook, Slack and PagerDuty bodies from a finding document (sink_payload.h).
 * Everything in the document may come from records a thief wrote (user agent, function name,
 * addresses, actions): nothing of it reaches Slack unescaped or unbounded. */
#include "sink_payload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <yajl/yajl_parse.h>

#include "cw.h"
#include "detect.h"
#include "render.h"
#include "workload.h"

#define SLACK_VALUE_SIZE (5 * SNK_SLACK_FIELD_MAX + 4)
#define SLACK_LINK_MAX (SNK_URL_MAX + 3 * SNK_ID_MAX + 32)
#define PD_CLASS_MAX 48   /* "<kind>-credential-exfiltration" */

static const char *const event_names[] = { [SNK_KIND_CREATED] = "finding.created",
                                           [SNK_KIND_UPDATED] = "finding.updated",
                                           [SNK_KIND_STATUS] = "finding.status_changed" };

const char *snk_event_name(int kind)
{
    return kind >= SNK_KIND_CREATED && kind <= SNK_KIND_STATUS ? event_names[kind] : NULL;
}

/* A string member, "" when absent or not a string. */
static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* The workload a finding names, in the words of the messages: "Lambda" (whose id is the function
 * name, as before workloads) or "ECS task", "EC2 instance", "EKS pod", "CodeBuild build" with the
 * workload's id. A document without a workload (written before workloads) is Lambda's. */
struct wl_words {
    enum wl_kind kind;
    char what[32];      /* "Lambda", "ECS task" */
    const char *noun;   /* "function", "task" */
    const char *id;     /* the function's name or the workload's id; "" unknown */
};

static void wl_words(const json_t *doc, struct wl_words *w)
{
    const json_t *wl = json_object_get(doc, "workload");
    w->kind = wl_kind_parse(str(wl, "kind"));
    if (w->kind == WL_NONE)
        w->kind = WL_LAMBDA;
    const struct wl_profile *p = wl_profile(w->kind);
    if (w->kind == WL_LAMBDA)
        snprintf(w->what, sizeof w->what, "%s", p->label);
    else
        snprintf(w->what, sizeof w->what, "%s %s", p->label, p->noun);
    w->noun = p->noun;
    w->id = w->kind == WL_LAMBDA ? str(doc, "function_name") : str(wl, "id");
}

/* Read by its tag, not by parsing the document: this runs for every event of every sink. */
int snk_wants(const struct snk_conf *c, const char *finding_json)
{
    int det = rnd_severity_of(finding_json);
    int sev = det > 0 ? snk_severity_parse(det_severity_name(det)) : -1;
    return sev < 0 || sev >= c->min_severity;
}

const char *snk_pd_severity(const char *finding_severity)
{
    switch (snk_severity_parse(finding_severity)) {
    case SNK_SEV_CRITICAL: return "critical";
    case SNK_SEV_MEDIUM: return "warning";
    case SNK_SEV_LOW: return "info";
    default: return "error";  /* high, and a severity this version does not know */
    }
}

/* The length of the longest prefix of s of at most max bytes that ends on a character boundary. */
static size_t utf8_cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

void snk_mrkdwn(const char *s, size_t max_bytes, char *out, size_t size)
{
    size_t n = utf8_cut(s, max_bytes), o = 0;
    for (size_t i = 0; i < n && o + 6 < size; i++) {
        unsigned char ch = (unsigned char)s[i];
        const char *rep = ch == '&' ? "&amp;" : ch == '<' ? "&lt;" : ch == '>' ? "&gt;" : ch == '`' ? "'"
                        : ch < 0x20 || ch == 0x7f ? " " : NULL;
        if (rep) {
            memcpy(out + o, rep, strlen(rep));
            o += strlen(rep);
        } else {
            out[o++] = (char)ch;
        }
    }
    if (n < strlen(s) && o + 4 < size) {
        memcpy(out + o, "\xE2\x80\xA6", 3);  /* … */
        o += 3;
    }
    out[o < size ? o : size - 1] = '\0';
}

/* The finding's id, checked: it goes into a header, a dedup key and a link. */
static int id_usable(const char *id, char *msg, size_t msg_size)
{
    size_t n = strlen(id);
    if (n == 0 || n > SNK_ID_MAX || strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:")
        != n) {
        snprintf(msg, msg_size, "finding document without a usable \"id\" (1-%d of A-Z a-z 0-9 - _ . :)",
                 SNK_ID_MAX);
        return CW_EINVAL;
    }
    return 0;
}

static int finding_id(const json_t *doc, char *msg, size_t msg_size, const char **id)
{
    *id = str(doc, "id");
    return id_usable(*id, msg, msg_size);
}

/* ---- webhook ------------------------------------------------------------------------------ */

static int webhook_finding(const struct snk_conf *c, const struct snk_formatters *fmt, const char *finding_json,
                           json_t *doc, json_t **finding, char *msg, size_t msg_size)
{
    if (c->format == SNK_FMT_CREDWATCH) {
        *finding = json_incref(doc);
        return 0;
    }
    snk_format_fn conv = !fmt ? NULL : c->format == SNK_FMT_OCSF ? fmt->ocsf : fmt->asff;
    if (!conv) {
        snprintf(msg, msg_size, "no %s converter wired in", snk_format_name(c->format));
        return CW_EINVAL;
    }
    char *text = conv(finding_json);
    *finding = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (!*finding) {
        snprintf(msg, msg_size, "the %s converter gave no JSON", snk_format_name(c->format));
        return CW_EINVAL;
    }
    return 0;
}

static json_t *webhook_body(const struct snk_conf *c, const struct snk_payload *p, uint64_t revision,
                            json_t *finding)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "event", json_string(p->event));
    json_object_set_new(o, "idempotency_key", json_string(p->idempotency_key));
    json_object_set_new(o, "revision", json_integer((json_int_t)revision));
    if (c->format != SNK_FMT_CREDWATCH)
        json_object_set_new(o, "format", json_string(snk_format_name(c->format)));
    if (finding)
        json_object_set(o, "finding", finding);
    return o;
}

/* ---- Slack -------------------------------------------------------------------------------- */

/* One "*Label*\nvalue" field; code 1 shows the value as code (no autolink, no formatting). */
static json_t *slack_field(const char *label, const char *value, int code)
{
    char esc[SLACK_VALUE_SIZE], text[SLACK_VALUE_SIZE + 64];
    snk_mrkdwn(value && *value ? value : "-", SNK_SLACK_FIELD_MAX, esc, sizeof esc);
    snprintf(text, sizeof text, "*%s*\n%s%s%s", label, code ? "`" : "", esc, code ? "`" : "");
    return json_pack("{s:s, s:s}", "type", "mrkdwn", "text", text);
}

/* base + the id, percent-encoded beyond unreserved bytes, as a Slack link; "" without a base. */
static void slack_link(const char *base, const char *id, char *out, size_t size)
{
    if (!base || !*base) {
        out[0] = '\0';
        return;
    }
    size_t o = (size_t)snprintf(out, size, "<%s", base);
    for (const unsigned char *p = (const unsigned char *)id; *p && o + 4 < size; p++) {
        int plain = strchr("-_.~", *p) || (*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z');
        o += (size_t)(plain ? snprintf(out + o, size - o, "%c", *p) : snprintf(out + o, size - o, "%%%02X", *p));
    }
    if (o < size)
        snprintf(out + o, size - o, "|open the finding>");
}

static json_t *slack_fields(const json_t *doc)
{
    const json_t *src = json_array_get(json_object_get(doc, "outside_sources"), 0);
    const json_t *use = json_object_get(doc, "first_outside_use");
    const char *action = json_string_value(json_array_get(json_object_get(doc, "outside_actions"), 0));
    char addr[2 * SNK_SLACK_FIELD_MAX], who[2 * SNK_SLACK_FIELD_MAX];
    snprintf(addr, sizeof addr, "%s (%s)", str(src, "ip"), *str(src, "network") ? str(src, "network") : "?");
    struct wl_words w;
    wl_words(doc, &w);
    /* longer than the field's bound when cut here, so slack_field's cut (on a character) is the one */
    snprintf(who, sizeof who, "%s %s", w.what, *w.id ? w.id : "-");
    return json_pack("[o,o,o,o,o,o,o,o]", slack_field("Severity", str(doc, "severity"), 0),
                     slack_field("Status", str(doc, "status"), 0),
                     w.kind == WL_LAMBDA ? slack_field("Function", w.id, 1) : slack_field("Workload", who, 1),
                     slack_field("Account", str(doc, "account_id"), 1), slack_field("Region", str(doc, "region"), 1),
                     slack_field("First outside address (network)", *str(src, "ip") ? addr : "", 1),
                     slack_field("First outside action", action ? action : str(use, "action"), 1),
                     slack_field("User agent", str(use, "user_agent"), 1));
}

static json_t *slack_body(const struct snk_conf *c, const json_t *doc, const char *id, int kind, uint64_t revision)
{
    char sev[SLACK_VALUE_SIZE], fn[SLACK_VALUE_SIZE], ip[SLACK_VALUE_SIZE], sid[SLACK_VALUE_SIZE];
    char text[4 * SLACK_VALUE_SIZE + 160], link[SLACK_LINK_MAX], ctx[SLACK_LINK_MAX + 160];
    const json_t *src = json_array_get(json_object_get(doc, "outside_sources"), 0);
    snk_mrkdwn(str(doc, "severity"), 16, sev, sizeof sev);
    struct wl_words w;
    wl_words(doc, &w);
    snk_mrkdwn(w.id, SNK_SLACK_FIELD_MAX, fn, sizeof fn);
    snk_mrkdwn(str(src, "ip"), SNK_SLACK_FIELD_MAX, ip, sizeof ip);
    snk_mrkdwn(id, SNK_ID_MAX, sid, sizeof sid);
    snprintf(text, sizeof text, "credwatch: %s finding %s: %s credentials of `%s` used from `%s`", sev, sid, w.what,
             fn[0] ? fn : "-", ip[0] ? ip : "-");
    slack_link(c->finding_base_url, id, link, sizeof link);
    snprintf(ctx, sizeof ctx, "%s, revision %llu%s%s", snk_event_name(kind), (unsigned long long)revision,
             link[0] ? " - " : "", link);
    char header[64];
    snprintf(header, sizeof header, "credwatch: %s stolen %s credentials", sev, w.what);
    return json_pack("{s:s, s:[{s:s, s:{s:s, s:s}}, {s:s, s:{s:s, s:s}}, {s:s, s:o}, {s:s, s:[{s:s, s:s}]}]}",
                     "text", text, "blocks",
                     "type", "header", "text", "type", "plain_text", "text", header,
                     "type", "section", "text", "type", "mrkdwn", "text", text,
                     "type", "section", "fields", slack_fields(doc),
                     "type", "context", "elements", "type", "mrkdwn", "text", ctx);
}

/* ---- PagerDuty ---------------------------------------------------------------------------- */

static int pd_resolves(const char *status)
{
    return !strcmp(status, "resolved") || !strcmp(status, "suppressed") || !strcmp(status, "retracted");
}

/* The summary: plain text (PagerDuty renders no markup), controls as spaces, cut to its limit. */
static void pd_summary(const json_t *doc, char *out, size_t size)
{
    const char *ip = json_string_value(json_array_get(json_object_get(doc, "outside_source_ips"), 0));
    char raw[3 * SNK_PD_SUMMARY_MAX], unknown[32];
    struct wl_words w;
    wl_words(doc, &w);
    snprintf(unknown, sizeof unknown, "an unknown %s", w.noun);
    snprintf(raw, sizeof raw, "credwatch: %s: stolen %s credentials of %s (account %s, %s) used from %s",
             str(doc, "severity"), w.what, *w.id ? w.id : unknown, str(doc, "account_id"), str(doc, "region"),
             ip ? ip : "outside");
    size_t n = utf8_cut(raw, size - 1 < SNK_PD_SUMMARY_MAX ? size - 1 : SNK_PD_SUMMARY_MAX);
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)raw[i] < 0x20 ? ' ' : raw[i];
    out[n] = '\0';
}

static json_t *pd_details(const json_t *doc, int kind, uint64_t revision)
{
    json_t *d = json_pack("{s:s, s:I}", "event", snk_event_name(kind), "revision", (json_int_t)revision);
    static const char *const keep[] = { "id", "access_key_id", "account_id", "region", "function_name", "workload", "role_arn",
                                        "severity", "status", "explained", "outside_source_ips", "outside_actions",
                                        "first_outside_use", "first_outside_at", "last_outside_at", "reasons" };
    for (size_t i = 0; d && i < sizeof keep / sizeof keep[0]; i++) {
        json_t *v = json_object_get(doc, keep[i]);
        if (v)
            json_object_set(d, keep[i], v);
    }
    return d;
}

static json_t *pd_body(const struct snk_conf *c, const json_t *doc, const char *id, int kind, uint64_t revision)
{
    json_t *o = json_pack("{s:s, s:s, s:s}", "routing_key", c->routing_key, "event_action",
                          pd_resolves(str(doc, "status")) ? "resolve" : "trigger", "dedup_key", id);
    if (!o || pd_resolves(str(doc, "status")))
        return o;  /* a resolve names the incident only */
    char summary[SNK_PD_SUMMARY_MAX + 1], class[PD_CLASS_MAX];
    pd_summary(doc, summary, sizeof summary);
    struct wl_words w;
    wl_words(doc, &w);
    snprintf(class, sizeof class, "%s-credential-exfiltration", wl_kind_name(w.kind));
    const char *at = *str(doc, "first_outside_at") ? str(doc, "first_outside_at") : str(doc, "updated_at");
    json_t *p = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "summary", summary, "source", "credwatch",
                          "severity", snk_pd_severity(str(doc, "severity")), "component", w.id,
                          "group", str(doc, "account_id"), "class", class,
                          "custom_details", pd_details(doc, kind, revision));
    if (p && *at)
        json_object_set_new(p, "timestamp", json_string(at));
    json_object_set_new(o, "payload", p);
    json_object_set_new(o, "client", json_string("credwatch"));
    if (c->finding_base_url[0]) {
        char href[SNK_URL_MAX + SNK_ID_MAX];
        snprintf(href, sizeof href, "%s%s", c->finding_base_url, id);
        json_object_set_new(o, "links", json_pack("[{s:s, s:s}]", "href", href, "text", "credwatch finding"));
    }
    return p ? o : (json_decref(o), NULL);
}

/* ---- the one entry ------------------------------------------------------------------------ */

static int body_of(const struct snk_conf *c, const struct snk_formatters *fmt, const char *finding_json,
                   json_t *doc, const char *id, uint64_t revision, int kind, struct snk_payload *out,
                   json_t **body, char *msg, size_t msg_size)
{
    json_t *finding = NULL;
    int rc = 0;
    snprintf(out->event, sizeof out->event, "%s", snk_event_name(kind));
    snprintf(out->idempotency_key, sizeof out->idempotency_key, "%s:%llu", id, (unsigned long long)revision);
    if (c->type == SNK_WEBHOOK && c->format == SNK_FMT_CREDWATCH) {
        *body = webhook_body(c, out, revision, NULL);  /* the document is spliced in as it is */
    } else if (c->type == SNK_WEBHOOK) {
        if ((rc = webhook_finding(c, fmt, finding_json, doc, &finding, msg, msg_size)))
            return rc;
        *body = webhook_body(c, out, revision, finding);
        json_decref(finding);
    } else if (c->type == SNK_SLACK) {
        *body = slack_body(c, doc, id, kind, revision);
    } else {
        *body = pd_body(c, doc, id, kind, revision);
    }
    if (!*body) {
        snprintf(msg, msg_size, "out of memory building the %s body", snk_type_name(c->type));
        return CW_ENOMEM;
    }
    return 0;
}

/* The envelope with the finding document appended as its last member, as the text it is: the
 * document is already compact JSON (render.c made it, and snk_payload_build checked it parses), so
 * parsing it into the envelope and serialising it again would only cost time per event. */
static char *splice_finding(const json_t *envelope, const char *finding_json)
{
    static const char member[] = ",\"finding\":";
    char *env = json_dumps(envelope, JSON_COMPACT);
    size_t el = env ? strlen(env) : 0, fl = strlen(finding_json);
    char *out = el > 1 ? malloc(el - 1 + sizeof member - 1 + fl + 2) : NULL;
    if (out) {
        memcpy(out, env, el - 1);  /* all but the closing brace */
        memcpy(out + el - 1, member, sizeof member - 1);
        memcpy(out + el - 1 + sizeof member - 1, finding_json, fl);
        memcpy(out + el - 1 + sizeof member - 1 + fl, "}", 2);
    }
    free(env);
    return out;
}

/* Whether s is one JSON object and nothing else: yajl checks the text without building a tree,
 * several times cheaper than json_loads on a finding document. */
static int json_object_text(const char *s)
{
    size_t n = strlen(s), lead = strspn(s, " \t\r\n");
    if (lead == n || s[lead] != '{')
        return 0;
    yajl_handle y = yajl_alloc(NULL, NULL, NULL);
    if (!y)
        return -1;
    int ok = yajl_parse(y, (const unsigned char *)s, n) == yajl_status_ok && yajl_complete_parse(y) == yajl_status_ok;
    yajl_free(y);
    return ok;
}

/* The document for a credwatch-format webhook: the body splices the text in as it is, so the only
 * member read is the id; render.c writes it first ({"id":"cwf-..."}, jansson keeps the order), and it
 * is read there. A document written otherwise is parsed. Returns 0, or an error as snk_payload_build. */
static int spliced_doc(const char *finding_json, json_t **doc, char *id, char *msg, size_t msg_size)
{
    static const char lead[] = "{\"id\":\"";
    int valid = json_object_text(finding_json);
    if (valid < 0) {
        snprintf(msg, msg_size, "out of memory checking the finding document");
        return CW_ENOMEM;
    }
    if (!valid) {
        snprintf(msg, msg_size, "the finding document is not a JSON object");
        return CW_EJSON;
    }
    if (strncmp(finding_json, lead, sizeof lead - 1) == 0) {
        const char *v = finding_json + sizeof lead - 1, *q = strchr(v, '"');
        if (q && q > v && (size_t)(q - v) <= SNK_ID_MAX) {
            memcpy(id, v, (size_t)(q - v));
            id[q - v] = '\0';
            return id_usable(id, msg, msg_size);
        }
    }
    json_error_t jerr;
    *doc = json_loads(finding_json, 0, &jerr);
    if (!*doc) {  /* yajl took it, jansson did not (a \u0000, a huge integer): never will */
        snprintf(msg, msg_size, "the finding document is not a JSON object jansson reads: %s", jerr.text);
        return json_error_code(&jerr) == json_error_out_of_memory ? CW_ENOMEM : CW_EJSON;
    }
    const char *parsed = NULL;
    int rc = finding_id(*doc, msg, msg_size, &parsed);
    if (!rc)
        snprintf(id, SNK_ID_MAX + 1, "%s", parsed);
    return rc;
}

int snk_payload_build(const struct snk_conf *c, const struct snk_formatters *fmt, const char *finding_json,
                      uint64_t revision, int kind, struct snk_payload *out, char *msg, size_t msg_size)
{
    json_error_t jerr;
    json_t *doc = NULL, *body = NULL;
    const char *id = NULL;
    char spliced_id[SNK_ID_MAX + 1];
    int rc = CW_EINVAL;
    memset(out, 0, sizeof *out);
    if (!snk_event_name(kind)) {
        snprintf(msg, msg_size, "unknown event kind %d", kind);
        goto out;
    }
    if (!finding_json) {
        snprintf(msg, msg_size, "the finding document is not a JSON object");
        rc = CW_EJSON;
        goto out;
    }
    if (c->type == SNK_WEBHOOK && c->format == SNK_FMT_CREDWATCH) {
        if ((rc = spliced_doc(finding_json, &doc, spliced_id, msg, msg_size)))
            goto out;
        id = spliced_id;
    } else {
        doc = json_loads(finding_json, 0, &jerr);  /* apart: json_is_object evaluates its argument twice */
        if (!json_is_object(doc)) {
            snprintf(msg, msg_size, "the finding document is not a JSON object");
            rc = CW_EJSON;
            goto out;
        }
    }
    if ((!id && (rc = finding_id(doc, msg, msg_size, &id))) ||
        (rc = body_of(c, fmt, finding_json, doc, id, revision, kind, out, &body, msg, msg_size)))
        goto out;
    out->body = c->type == SNK_WEBHOOK && c->format == SNK_FMT_CREDWATCH ? splice_finding(body, finding_json)
                                                                           : json_dumps(body, JSON_COMPACT);
    if (!out->body) {
        snprintf(msg, msg_size, "out of memory serialising the body");
        rc = CW_ENOMEM;
        goto out;
    }
    out->len = strlen(out->body);
    if (out->len > SNK_BODY_MAX) {
        snprintf(msg, msg_size, "body of %zu bytes over %d", out->len, SNK_BODY_MAX);
        rc = CW_ETOOBIG;
        snk_payload_free(out);
    }
out:
    json_decref(body);
    json_decref(doc);
    return rc;
}

void snk_payload_free(struct snk_payload *p)
{
    free(p->body);
    p->body = NULL;
    p->len = 0;
}
