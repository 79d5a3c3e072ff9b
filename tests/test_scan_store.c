/* test_scan_store.c — scan_store.c: the own-share set (bounded, deduplicated, thread-safe), printing
 * in finding-id order (a whole store and a share), the bound refused whole, --state-ttl's grammar.
 * The command on real Redis stores runs in tests/it_scan_cluster.sh. */
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cw.h"
#include "export.h"
#include "scan_store.h"
#include "store.h"

#define N_FINDINGS 5
#define N_THREADS 4
#define IDS_PER_THREAD 3000  /* the set grows from 1,024 slots while the threads add */

/* Standard output of fn(arg) into out (the whole of it, NUL-terminated); returns fn's value. */
static int capture(int (*fn)(void *), void *arg, char *out, size_t size)
{
    char path[] = "/tmp/cw-test-scan-store-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    int rc = fn(arg);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    ssize_t n = pread(fd, out, size - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    unlink(path);
    return rc;
}

/* A memory store with findings cwf-E..cwf-A created in that order: its listing (newest first) is
 * A..E by chance of the times, so they are written with times that list them C, A, E, B, D. */
static struct store *five_findings(void)
{
    static const char *ids[N_FINDINGS] = { "cwf-D", "cwf-B", "cwf-E", "cwf-A", "cwf-C" };
    struct store *st = store_mem_new();
    assert_non_null(st);
    for (int i = 0; i < N_FINDINGS; i++) {
        char ev[128];
        snprintf(ev, sizeof ev, "{\"id\":\"%s\",\"severity\":\"%s\"}", ids[i], i == 0 ? "critical" : "high");
        struct store_finding_put p = { .id = ids[i], .evidence_json = ev, .severity = i == 0 ? "critical" : "high",
                                       .account = "111122223333", .function = "f", .version = 1,
                                       .now_ms = 1000 + i };
        assert_int_equal(store_finding_put(st, &p, 1), 0);
    }
    return st;
}

struct print_call {
    struct store *st;
    struct scan_share *share;
    size_t max;
    struct scan_print_stats ps;
};

static int do_print(void *arg)
{
    struct print_call *c = arg;
    return scan_store_print_max(c->st, c->share, EXP_CREDWATCH, c->max, NULL, &c->ps);
}

/* Every finding of the store, in id order, whatever order the store lists them in. */
static void t_print_all_sorted(void **state)
{
    (void)state;
    struct print_call c = { .st = five_findings(), .max = SCAN_FINDINGS_MAX };
    char out[4096];
    assert_int_equal(capture(do_print, &c, out, sizeof out), 0);
    const char *want[N_FINDINGS] = { "cwf-A", "cwf-B", "cwf-C", "cwf-D", "cwf-E" };
    const char *p = out;
    for (int i = 0; i < N_FINDINGS; i++) {
        char needle[32];
        snprintf(needle, sizeof needle, "{\"id\":\"%s\"", want[i]);
        assert_true(strncmp(p, needle, strlen(needle)) == 0);
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    assert_string_equal(p, "");
    assert_int_equal(c.ps.findings, N_FINDINGS);
    assert_int_equal(c.ps.by_severity[3], 1);  /* critical */
    assert_int_equal(c.ps.by_severity[2], 4);  /* high */
    store_free(c.st);
}

/* A share prints its findings only, in id order. */
static void t_print_share(void **state)
{
    (void)state;
    struct print_call c = { .st = five_findings(), .share = scan_share_new(10), .max = SCAN_FINDINGS_MAX };
    scan_share_on_finding(c.share, "cwf-E", 0);
    scan_share_on_finding(c.share, "cwf-B", 1);
    scan_share_on_finding(c.share, "cwf-E", 0);  /* updated again: once */
    char out[4096];
    assert_int_equal(capture(do_print, &c, out, sizeof out), 0);
    assert_non_null(strstr(out, "{\"id\":\"cwf-B\""));
    assert_true(strstr(out, "cwf-B") < strstr(out, "cwf-E"));
    assert_null(strstr(out, "cwf-A"));
    assert_int_equal(c.ps.findings, 2);
    scan_share_free(c.share);
    store_free(c.st);
}

/* At the bound: further ids are refused and counted, and printing refuses the whole (nothing on
 * standard output): a cut list would read as the complete share. */
static void t_share_bound(void **state)
{
    (void)state;
    struct print_call c = { .st = five_findings(), .share = scan_share_new(3), .max = SCAN_FINDINGS_MAX };
    assert_int_equal(scan_share_add(c.share, "cwf-A"), 0);
    assert_int_equal(scan_share_add(c.share, "cwf-B"), 0);
    assert_int_equal(scan_share_add(c.share, "cwf-C"), 0);
    assert_int_equal(scan_share_add(c.share, "cwf-A"), 0);  /* already in: not a new id */
    assert_int_equal(scan_share_add(c.share, "cwf-D"), CW_ETOOBIG);
    assert_int_equal(scan_share_count(c.share), 3);
    char out[4096];
    assert_int_equal(capture(do_print, &c, out, sizeof out), CW_ETOOBIG);
    assert_string_equal(out, "");
    scan_share_free(c.share);
    /* the whole store's listing has the same bound */
    struct print_call all = { .st = c.st, .max = N_FINDINGS - 1 };
    assert_int_equal(capture(do_print, &all, out, sizeof out), CW_ETOOBIG);
    assert_string_equal(out, "");
    all.max = N_FINDINGS;
    assert_int_equal(capture(do_print, &all, out, sizeof out), 0);
    assert_int_equal(all.ps.findings, N_FINDINGS);
    store_free(c.st);
}

/* A share id no longer in the store is an error (the share names only findings this process wrote),
 * after the others are printed. */
static void t_share_missing(void **state)
{
    (void)state;
    struct print_call c = { .st = five_findings(), .share = scan_share_new(10), .max = SCAN_FINDINGS_MAX };
    scan_share_add(c.share, "cwf-A");
    scan_share_add(c.share, "cwf-Z");
    char out[4096];
    assert_int_equal(capture(do_print, &c, out, sizeof out), CW_ENOTFOUND);
    assert_non_null(strstr(out, "cwf-A"));
    scan_share_free(c.share);
    store_free(c.st);
}

struct adder {
    struct scan_share *sh;
    int base;
};

static void *add_ids(void *arg)
{
    struct adder *a = arg;
    for (int i = 0; i < IDS_PER_THREAD; i++) {
        char id[32];
        snprintf(id, sizeof id, "cwf-%06d", a->base + i);  /* half of them shared with the next thread */
        scan_share_on_finding(a->sh, id, 1);
    }
    return NULL;
}

/* Engines of several workers report into one set: every distinct id once. */
static void t_share_threads(void **state)
{
    (void)state;
    struct scan_share *sh = scan_share_new(SCAN_FINDINGS_MAX);
    pthread_t t[N_THREADS];
    struct adder a[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        a[i] = (struct adder){ sh, i * IDS_PER_THREAD / 2 };
        assert_int_equal(pthread_create(&t[i], NULL, add_ids, &a[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(scan_share_count(sh), (N_THREADS + 1) * IDS_PER_THREAD / 2);
    scan_share_free(sh);
}

static int64_t ttl_of(const char *v, int *rc)
{
    struct scan_store_opts o = { .redis_url = "redis://127.0.0.1:6379", .state_ttl = v };
    fflush(stderr);
    int saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY);
    dup2(null, STDERR_FILENO);  /* the refusals' messages: checked in it_scan_cluster.sh */
    *rc = scan_store_check(&o, 1);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(null);
    return o.state_ttl_s;
}

static void t_state_ttl(void **state)
{
    (void)state;
    static const struct { const char *v; int64_t s; } good[] = {
        { NULL, SCAN_STATE_TTL_DEFAULT_S }, { "7d", 604800 }, { "36h", 129600 }, { "90m", 5400 },
        { "3600", 3600 }, { "3600s", 3600 }, { "90d", 7776000 },
    };
    static const char *bad[] = { "", "5x", "-1h", "+2h", " 2h", "2hh", "59m", "91d", "h", "99999999999999999999d" };
    int rc;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        assert_int_equal(ttl_of(good[i].v, &rc), good[i].s);
        assert_int_equal(rc, 0);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ttl_of(bad[i], &rc);
        assert_int_equal(rc, CW_ECONFIG);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_print_all_sorted), cmocka_unit_test(t_print_share), cmocka_unit_test(t_share_bound),
        cmocka_unit_test(t_share_missing),    cmocka_unit_test(t_share_threads), cmocka_unit_test(t_state_ttl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
