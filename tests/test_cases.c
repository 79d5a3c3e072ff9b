/* test_cases.c — the table-driven detection tests: tests/cases/NN_name.json, each CloudTrail records and
 * the findings they must produce (made by tests/cases/make_cases.py).
 *
 * For every case:
 *   - the records as one CloudTrail file give exactly the expected findings (key, severity,
 *     outside addresses, reason codes, actions) and key context (lambda, counts, and for workloads
 *     the members of "workload" given, verdict_rules, issued, runtime_marker, on_behalf_count,
 *     not_judged_count and not_judged_ips);
 *   - every arrival order (all permutations up to 6 records, else 300 seeded shuffles), one record
 *     per ingest, gives byte-identical finding evidence;
 *   - the whole file ingested again is all duplicates and changes nothing.
 * A case may have an analyst step ("analyst": {"after": N, "status": S}): the first N records are
 * ingested, the analyst sets the finding's status, then the rest arrive (every order of them);
 * the expected "status" must survive whatever those records are. "fields" are exact values of
 * the finding document (account, region, expires_at, ...).
 */
#include <dirent.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "engine.h"
#include "render.h"
#include "settings.h"
#include "store.h"

#define CASES_DIR "tests/cases"
#define CASES_MAX 128
#define PERMUTE_ALL_MAX 6
#define SHUFFLES 300

struct world {
    struct store *st;
    struct eng *eng;
    struct eng_report *rep;
    int analyst_status;
};

/* The case's "settings" (AWS ranges, allow-list, accounts), as serve and scan would load them:
 * loaded once per case (the full AWS list takes a while to parse) and shared by its worlds. */
static json_t *g_settings;
static struct set_net g_net;
static int g_net_loaded;

static void case_net_load(void)
{
    char msg[SET_MSG_MAX];
    json_t *st = g_settings;
    if (set_net_load(&g_net, json_string_value(json_object_get(st, "aws_ip_ranges")),
                     json_string_value(json_object_get(st, "allow_cidrs")),
                     json_string_value(json_object_get(st, "accounts")), msg, sizeof msg))
        fail_msg("settings: %s", msg);
    g_net_loaded = 1;
}

static void case_net_free(void)
{
    if (g_net_loaded)
        set_net_free(&g_net);
    g_net_loaded = 0;
}

static void world_open(struct world *w)
{
    struct eng_config cfg = { .late_margin_s = 0 };
    set_net_ctx(&g_net, &cfg.det);
    w->st = store_mem_new();
    w->eng = eng_new(w->st, &cfg);
    w->rep = malloc(sizeof *w->rep);
    assert_non_null(w->st);
    assert_non_null(w->eng);
    assert_non_null(w->rep);
}

static void world_close(struct world *w)
{
    eng_free(w->eng);
    store_free(w->st);
    free(w->rep);
}

/* The wall clock: the store expires keys against it (event-time expiry has an arrival floor). */
static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ingest_json(struct world *w, json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT);
    assert_non_null(s);
    int rc = eng_ingest(w->eng, (const uint8_t *)s, strlen(s), now_ms(), w->rep);
    if (rc)
        fail_msg("ingest failed (%d): %s", rc, w->rep->message);
    free(s);
}

/* Findings in id order (an insertion sort: a case has a handful). */
static void sort_by_id(struct store_finding *page, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(page[j - 1].id, page[j].id) > 0; j--) {
            struct store_finding t = page[j];
            page[j] = page[j - 1];
            page[j - 1] = t;
        }
}

/* Evidence of every live finding (not explained by later evidence: which findings were raised on
 * the way there depends on arrival order; what the evidence says at the end does not), as
 * "akid\tevidence\n" lines sorted by id. */
static char *evidence_dump(struct world *w, size_t *n_findings)
{
    struct store_query q = { .status = -1, .severity = -1, .limit = STORE_LIST_MAX };
    struct store_finding page[STORE_LIST_MAX];
    size_t n = 0;
    int more = 0;
    assert_int_equal(store_finding_list(w->st, &q, page, &n, &more), 0);
    assert_false(more);
    sort_by_id(page, n);  /* a stable dump */
    size_t cap = 1, live = 0;
    for (size_t i = 0; i < n; i++)
        cap += strlen(page[i].evidence_json) + STORE_ID_MAX + 2;
    char *out = calloc(1, cap);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        if (!strstr(page[i].evidence_json, "\"explained\":true")) {
            size_t len = strlen(out);
            snprintf(out + len, cap - len, "%s\t%s\n", page[i].id, page[i].evidence_json);
            live++;
        }
        store_finding_free(&page[i]);
    }
    *n_findings = live;
    return out;
}

static int string_set_equal(json_t *got, json_t *want)
{
    if (!json_is_array(got) || !json_is_array(want) || json_array_size(got) != json_array_size(want))
        return 0;
    size_t i;
    json_t *v;
    json_array_foreach(want, i, v) {
        int found = 0;
        size_t j;
        json_t *g;
        json_array_foreach(got, j, g) if (json_equal(g, v)) found = 1;
        if (!found)
            return 0;
    }
    return 1;
}

static void check_expectations(struct world *w, json_t *c, const char *name)
{
    json_t *expect = json_object_get(c, "expect");
    size_t n = 0;
    char *dump = evidence_dump(w, &n);
    if (n != json_array_size(expect))
        fail_msg("%s: %zu findings, expected %zu:\n%s", name, n, json_array_size(expect), dump);
    size_t i;
    json_t *e;
    json_array_foreach(expect, i, e) {
        const char *akid = json_string_value(json_object_get(e, "access_key_id"));
        char fid[STORE_ID_MAX];
        eng_finding_id(akid, fid, sizeof fid);
        struct store_finding f;
        if (store_finding_get(w->st, fid, &f))
            fail_msg("%s: no finding for %s:\n%s", name, akid, dump);
        json_error_t err;
        json_t *got = json_loads(f.evidence_json, 0, &err);
        assert_non_null(got);
        assert_string_equal(json_string_value(json_object_get(got, "access_key_id")), akid);
        if (strcmp(json_string_value(json_object_get(got, "severity")),
                   json_string_value(json_object_get(e, "severity"))) != 0)
            fail_msg("%s: %s severity %s, expected %s", name, akid,
                     json_string_value(json_object_get(got, "severity")),
                     json_string_value(json_object_get(e, "severity")));
        if (!string_set_equal(json_object_get(got, "outside_source_ips"), json_object_get(e, "outside_source_ips")))
            fail_msg("%s: %s outside addresses differ: %s", name, akid, f.evidence_json);
        json_t *codes = json_array(), *r;
        size_t k;
        json_array_foreach(json_object_get(got, "reasons"), k, r)
            json_array_append(codes, json_object_get(r, "code"));
        if (!string_set_equal(codes, json_object_get(e, "reasons")))
            fail_msg("%s: %s reasons differ: %s", name, akid, f.evidence_json);
        json_t *inc = json_object_get(e, "actions_include"), *ia;
        size_t ii;
        json_array_foreach(inc, ii, ia) {
            int found = 0;
            size_t gi;
            json_t *ga;
            json_array_foreach(json_object_get(got, "outside_actions"), gi, ga) found |= json_equal(ga, ia);
            if (!found)
                fail_msg("%s: %s action %s not shown: %s", name, akid, json_string_value(ia), f.evidence_json);
        }
        json_t *acts = json_object_get(e, "outside_actions");
        if (acts && !string_set_equal(json_object_get(got, "outside_actions"), acts))
            fail_msg("%s: %s actions differ: %s", name, akid, f.evidence_json);
        assert_string_equal(json_string_value(json_object_get(got, "id")), fid);
        const char *want_status = json_string_value(json_object_get(e, "status"));
        if (want_status && strcmp(store_status_name(f.status), want_status) != 0)
            fail_msg("%s: %s status %s, expected %s", name, akid, store_status_name(f.status), want_status);
        const char *field;
        json_t *want_field;
        json_object_foreach(json_object_get(e, "fields"), field, want_field) {
            if (!json_equal(json_object_get(got, field), want_field)) {
                char *wanted = json_dumps(want_field, JSON_ENCODE_ANY);
                fail_msg("%s: %s field %s is not %s: %s", name, akid, field, wanted, f.evidence_json);
            }
        }
        /* network class of each outside address: expected as a prefix ("aws:ap-south-1:") */
        const char *ip;
        json_t *want_net;
        json_object_foreach(json_object_get(e, "networks"), ip, want_net) {
            const char *netw = NULL;
            json_t *src;
            size_t si;
            json_array_foreach(json_object_get(got, "outside_sources"), si, src)
                if (strcmp(json_string_value(json_object_get(src, "ip")), ip) == 0)
                    netw = json_string_value(json_object_get(src, "network"));
            const char *wn = json_string_value(want_net);
            if (!netw || strncmp(netw, wn, strlen(wn)) != 0)
                fail_msg("%s: %s network of %s is %s, expected %s...", name, akid, ip, netw ? netw : "(none)", wn);
        }
        json_decref(codes);
        json_decref(got);
        store_finding_free(&f);
    }
    const char *akid;
    json_t *kexp;
    json_object_foreach(json_object_get(c, "expect_keys"), akid, kexp) {
        char *ctx = NULL;
        if (eng_key_json(w->eng, akid, &ctx))
            fail_msg("%s: no key context for %s", name, akid);
        json_error_t err;
        json_t *got = json_loads(ctx, 0, &err);
        assert_non_null(got);
        json_t *want;
        if ((want = json_object_get(kexp, "lambda")))
            assert_int_equal(json_is_true(json_object_get(got, "lambda")), json_is_true(want));
        if ((want = json_object_get(kexp, "inside_count")))
            assert_int_equal(json_integer_value(json_object_get(json_object_get(got, "inside"), "count")),
                             json_integer_value(want));
        if ((want = json_object_get(kexp, "allowlisted_count"))) {
            if (json_integer_value(json_object_get(got, "allowlisted_count")) != json_integer_value(want) ||
                json_array_size(json_object_get(got, "allowlisted_sources")) == 0)
                fail_msg("%s: %s allow-listed uses not shown: %s", name, akid, ctx);
        }
        if ((want = json_object_get(kexp, "outside_count")))
            if (json_integer_value(json_object_get(json_object_get(got, "outside"), "count")) !=
                json_integer_value(want))
                fail_msg("%s: %s outside count differs: %s", name, akid, ctx);
        /* workloads (docs/workloads.md): the members of "workload" given, which rules judged the key,
         * and the uses the outside-AWS rules leave unjudged */
        const char *member;
        json_t *wv;
        json_object_foreach(json_object_get(kexp, "workload"), member, wv)
            if (!json_equal(json_object_get(json_object_get(got, "workload"), member), wv))
                fail_msg("%s: %s workload.%s differs: %s", name, akid, member, ctx);
        if ((want = json_object_get(kexp, "verdict_rules")) &&
            !json_equal(json_object_get(got, "verdict_rules"), want))
            fail_msg("%s: %s verdict_rules differs: %s", name, akid, ctx);
        static const char *const flags[] = { "issued", "runtime_marker" };
        for (size_t fi = 0; fi < sizeof flags / sizeof flags[0]; fi++)
            if ((want = json_object_get(kexp, flags[fi])) &&
                json_is_true(json_object_get(got, flags[fi])) != json_is_true(want))
                fail_msg("%s: %s %s differs: %s", name, akid, flags[fi], ctx);
        if ((want = json_object_get(kexp, "on_behalf_count")) &&
            json_integer_value(json_object_get(got, "on_behalf_count")) != json_integer_value(want))
            fail_msg("%s: %s on-behalf count differs: %s", name, akid, ctx);
        json_t *nj = json_object_get(got, "not_judged");
        if ((want = json_object_get(kexp, "not_judged_count")) &&
            json_integer_value(json_object_get(nj, "count")) != json_integer_value(want))
            fail_msg("%s: %s not-judged count differs: %s", name, akid, ctx);
        if ((want = json_object_get(kexp, "not_judged_ips")) &&
            !string_set_equal(json_object_get(nj, "source_ips"), want))
            fail_msg("%s: %s not-judged addresses differ: %s", name, akid, ctx);
        json_decref(got);
        free(ctx);
    }
    free(dump);
}

static json_t *wrap_records(json_t *records)
{
    json_t *doc = json_object();
    json_object_set(doc, "Records", records);
    return doc;
}

/* The analyst step of a case: after `after` records, every finding gets `status`. */
struct analyst {
    size_t after;
    int status;  /* -1: none */
};

static void analyst_acts(struct world *w)
{
    struct store_query q = { .status = -1, .severity = -1, .limit = STORE_LIST_MAX };
    static struct store_finding page[STORE_LIST_MAX];
    size_t n = 0;
    int more = 0;
    assert_int_equal(store_finding_list(w->st, &q, page, &n, &more), 0);
    if (n == 0)
        fail_msg("analyst step: no finding to triage");
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(store_finding_patch(w->st, page[i].id, w->analyst_status, NULL, now_ms()), 0);
        store_finding_free(&page[i]);
    }
}

/* Every finding's id and status, sorted by id. */
static char *status_dump(struct world *w)
{
    struct store_query q = { .status = -1, .severity = -1, .limit = STORE_LIST_MAX };
    static struct store_finding page[STORE_LIST_MAX];
    size_t n = 0;
    int more = 0;
    assert_int_equal(store_finding_list(w->st, &q, page, &n, &more), 0);
    char *out = calloc(1, n * (STORE_ID_MAX + 16) + 1);
    assert_non_null(out);
    sort_by_id(page, n);
    for (size_t i = 0; i < n; i++) {
        sprintf(out + strlen(out), "%s=%s\n", page[i].id, store_status_name(page[i].status));
        store_finding_free(&page[i]);
    }
    return out;
}

/* Feeds the records one per ingest in the given order (the analyst's records, if any, first as
 * one file, then the analyst's step); returns the evidence dump, and the statuses in *statuses. */
static char *run_order(json_t *records, const size_t *order, size_t n, const struct analyst *an, char **statuses)
{
    struct world w;
    world_open(&w);
    if (an->status >= 0) {
        json_t *head = json_array();
        for (size_t i = 0; i < an->after; i++)
            json_array_append(head, json_array_get(records, i));
        json_t *doc = json_object();
        json_object_set_new(doc, "Records", head);
        ingest_json(&w, doc);
        json_decref(doc);
        w.analyst_status = an->status;
        analyst_acts(&w);
    }
    for (size_t i = 0; i < n; i++)
        ingest_json(&w, json_array_get(records, order[i]));
    size_t nf;
    char *dump = evidence_dump(&w, &nf);
    *statuses = status_dump(&w);
    world_close(&w);
    return dump;
}

static int next_permutation(size_t *a, size_t n)
{
    if (n < 2)
        return 0;
    size_t i = n - 1;
    while (i > 0 && a[i - 1] >= a[i])
        i--;
    if (i == 0)
        return 0;
    size_t j = n - 1;
    while (a[j] <= a[i - 1])
        j--;
    size_t t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
    for (size_t l = i, r = n - 1; l < r; l++, r--) {
        t = a[l];
        a[l] = a[r];
        a[r] = t;
    }
    return 1;
}

static json_t *records_slice(json_t *records, size_t from, size_t to)
{
    json_t *a = json_array();
    for (size_t i = from; i < to; i++)
        json_array_append(a, json_array_get(records, i));
    return a;
}

static void run_case(void **state)
{
    const char *path = *state;
    json_error_t err;
    json_t *c = json_load_file(path, 0, &err);
    if (!c)
        fail_msg("%s: %s (line %d)", path, err.text, err.line);
    json_t *records = json_object_get(c, "records");
    size_t n = json_array_size(records);
    g_settings = json_object_get(c, "settings");
    case_net_free();
    case_net_load();
    assert_true(n > 0);
    struct analyst an = { .after = 0, .status = -1 };
    json_t *aj = json_object_get(c, "analyst");
    if (aj) {
        an.after = (size_t)json_integer_value(json_object_get(aj, "after"));
        an.status = store_status_parse(json_string_value(json_object_get(aj, "status")));
        assert_true(an.status >= 0);
        assert_true(an.after > 0 && an.after < n);
    }

    /* 1. one file (with an analyst step: the analyst's records, the step, then the rest) */
    struct world w;
    world_open(&w);
    json_t *doc = wrap_records(records);
    if (an.status >= 0) {
        json_t *head = wrap_records(records_slice(records, 0, an.after));
        json_t *rest = wrap_records(records_slice(records, an.after, n));
        json_decref(json_object_get(head, "Records"));
        json_decref(json_object_get(rest, "Records"));
        ingest_json(&w, head);
        w.analyst_status = an.status;
        analyst_acts(&w);
        ingest_json(&w, rest);
        json_decref(head);
        json_decref(rest);
    } else {
        ingest_json(&w, doc);
        assert_int_equal(w.rep->records, n);
    }
    assert_int_equal(w.rep->skipped, 0);
    check_expectations(&w, c, path);
    size_t nf;
    char *baseline = evidence_dump(&w, &nf);
    char *base_status = status_dump(&w);

    /* 2. the same file again: every key record is a duplicate, nothing changes */
    char *ctx_before = NULL, *ctx_after = NULL;
    json_t *first = json_array_get(records, 0);
    json_t *ui = json_object_get(first, "userIdentity");
    const char *akid = json_string_value(json_object_get(ui, "accessKeyId"));
    if (!akid)
        akid = json_string_value(json_object_get(
            json_object_get(json_object_get(first, "responseElements"), "credentials"), "accessKeyId"));
    assert_non_null(akid);
    assert_int_equal(eng_key_json(w.eng, akid, &ctx_before), 0);
    ingest_json(&w, doc);
    assert_int_equal(w.rep->records, n);
    assert_int_equal(w.rep->findings, 0);  /* nothing created or updated */
    assert_int_equal(eng_key_json(w.eng, akid, &ctx_after), 0);
    assert_string_equal(ctx_before, ctx_after);
    char *again = evidence_dump(&w, &nf);
    assert_string_equal(baseline, again);
    char *again_status = status_dump(&w);
    assert_string_equal(base_status, again_status);
    free(again);
    free(again_status);
    free(ctx_before);
    free(ctx_after);
    world_close(&w);

    /* 3. every arrival order, one record per request (after the analyst step: of the rest) */
    size_t m = n - an.after;
    size_t *order = malloc(m * sizeof *order);
    assert_non_null(order);
    for (size_t i = 0; i < m; i++)
        order[i] = an.after + i;
    size_t runs = 0;
    unsigned seed = 12345;
    for (;;) {
        char *st = NULL;
        char *d = run_order(records, order, m, &an, &st);
        if (strcmp(d, baseline) != 0)
            fail_msg("%s: order %zu gives different findings:\n%s\nvs baseline\n%s", path, runs, d, baseline);
        if (an.status >= 0 && strcmp(st, base_status) != 0)
            fail_msg("%s: order %zu gives different statuses:\n%s\nvs\n%s", path, runs, st, base_status);
        free(d);
        free(st);
        runs++;
        if (m <= PERMUTE_ALL_MAX) {
            /* next_permutation works on the values; they are increasing indices */
            if (!next_permutation(order, m))
                break;
        } else {
            if (runs == SHUFFLES)
                break;
            for (size_t i = m - 1; i > 0; i--) {
                seed = seed * 1103515245u + 12345u;
                size_t jx = (seed >> 8) % (i + 1);
                size_t t = order[i];
                order[i] = order[jx];
                order[jx] = t;
            }
        }
    }
    assert_true(runs > 0);
    free(order);
    free(baseline);
    free(base_status);
    json_decref(doc);
    json_decref(c);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    static char *paths[CASES_MAX];
    static struct CMUnitTest tests[CASES_MAX];
    size_t n = 0;
    DIR *d = opendir(CASES_DIR);
    if (!d) {
        fprintf(stderr, "cannot open %s (run from the repository root)\n", CASES_DIR);
        return 1;
    }
    struct dirent *de;
    while ((de = readdir(d)) && n < CASES_MAX) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        size_t plen = sizeof CASES_DIR + len + 1;
        paths[n] = malloc(plen);
        snprintf(paths[n], plen, "%s/%s", CASES_DIR, de->d_name);
        n++;
    }
    closedir(d);
    qsort(paths, n, sizeof *paths, cmp_str);
    for (size_t i = 0; i < n; i++) {
        tests[i].name = paths[i] + sizeof CASES_DIR;
        tests[i].test_func = run_case;
        tests[i].initial_state = paths[i];
    }
    if (n == 0) {
        fprintf(stderr, "no cases in %s\n", CASES_DIR);
        return 1;
    }
    return _cmocka_run_group_tests("detection_cases", tests, n, NULL, NULL);
}
