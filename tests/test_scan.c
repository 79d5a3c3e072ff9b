/* test_scan.c — the scan command's directory listing (scan_dir_list): whole or refused, at its bound;
 * the walk (scan_walk) and its measure (scan_measure) over links that make loops: each directory once.
 * The command itself runs in tests/it_scan.sh (real files, and a listing that runs out of memory). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cw.h"
#include "scan.h"
#include "scan_walk.h"

#define N_ENTRIES 65  /* one past the listing's first allocation (SCAN_DIR_ENTRIES_INITIAL, 64): it must grow */

struct dir {
    char path[64];
};

/* A private directory holding `n` empty files named e00 ... (made in reverse order: the listing sorts). */
static void make_dir(struct dir *d, size_t n)
{
    snprintf(d->path, sizeof d->path, "/tmp/cw-test-scan-XXXXXX");
    assert_non_null(mkdtemp(d->path));
    for (size_t i = n; i-- > 0;) {
        char name[128];
        snprintf(name, sizeof name, "%s/e%02zu", d->path, i);
        FILE *f = fopen(name, "w");
        assert_non_null(f);
        fclose(f);
    }
}

static void remove_dir(struct dir *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s/e%02zu", d->path, i);
        unlink(name);
    }
    rmdir(d->path);
}

/* Exactly max entries are listed, sorted, "." and ".." left out; one more than max is refused whole. */
static void test_dir_list_bound(void **state)
{
    (void)state;
    struct dir d;
    make_dir(&d, N_ENTRIES);
    char **paths = NULL;
    size_t n = 99;
    assert_int_equal(scan_dir_list(d.path, N_ENTRIES, &paths, &n), 0);
    assert_int_equal(n, N_ENTRIES);
    for (size_t i = 0; i < n; i++) {
        char want[128];
        snprintf(want, sizeof want, "%s/e%02zu", d.path, i);
        assert_string_equal(paths[i], want);
    }
    scan_dir_free(paths, n);
    /* at the bound the growth fails as it would out of memory: nothing returned, never a cut list */
    paths = (char **)&n;
    n = 99;
    assert_int_equal(scan_dir_list(d.path, N_ENTRIES - 1, &paths, &n), CW_ETOOBIG);
    assert_null(paths);
    assert_int_equal(n, 0);
    /* within the first allocation too */
    assert_int_equal(scan_dir_list(d.path, 2, &paths, &n), CW_ETOOBIG);
    assert_null(paths);
    assert_int_equal(n, 0);
    remove_dir(&d, N_ENTRIES);
}

/* An empty directory lists nothing, successfully; a missing one is CW_EIO with errno saying why. */
static void test_dir_list_empty_and_missing(void **state)
{
    (void)state;
    struct dir d;
    make_dir(&d, 0);
    char **paths = NULL;
    size_t n = 99;
    assert_int_equal(scan_dir_list(d.path, 0, &paths, &n), 0);
    assert_int_equal(n, 0);
    scan_dir_free(paths, n);
    remove_dir(&d, 0);
    paths = (char **)&n;
    assert_int_equal(scan_dir_list(d.path, N_ENTRIES, &paths, &n), CW_EIO);
    assert_int_equal(errno, ENOENT);
    assert_null(paths);
    assert_int_equal(n, 0);
}

/* ---- the walk over links ------------------------------------------------------------------------ */

#define WALK_VISIT_CAP 1000  /* visits before a test walk stops itself: a loop followed fails the test
                              * at once instead of running 2^SCAN_MAX_DEPTH paths */
#define WALK_FILES 3

struct visits {
    size_t n;
    char path[WALK_FILES + 1][256];
};

static int record_visit(void *ud, const char *path)
{
    struct visits *v = ud;
    if (v->n <= WALK_FILES)
        snprintf(v->path[v->n], sizeof v->path[0], "%s", path);
    return ++v->n >= WALK_VISIT_CAP;
}

static void put_file(const char *dir, const char *name, size_t bytes)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < bytes; i++)
        fputc('x', f);
    fclose(f);
}

static void put_link(const char *dir, const char *name, const char *target)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(symlink(target, path), 0);
}

/* top/a/{e1,e2} and top/c/e3, 10 + 20 + 30 bytes, and links: a/self -> . (itself), a/up -> ..
 * (its parent), top/b -> a (a second path to a), c/round -> ../c (its parent's way back to itself).
 * Followed as plain directories, a/self and a/up alone make 2^32 paths; each directory entered once,
 * the walk reads the three files once each, in name order, as it does without the links. */
static void test_walk_links(void **state)
{
    (void)state;
    char top[64], a[96], c[96];
    snprintf(top, sizeof top, "/tmp/cw-test-walk-XXXXXX");
    assert_non_null(mkdtemp(top));
    snprintf(a, sizeof a, "%s/a", top);
    snprintf(c, sizeof c, "%s/c", top);
    assert_int_equal(mkdir(a, 0700), 0);
    assert_int_equal(mkdir(c, 0700), 0);
    put_file(a, "e1", 10);
    put_file(a, "e2", 20);
    put_file(c, "e3", 30);
    for (int linked = 0; linked < 2; linked++) {
        if (linked) {
            put_link(a, "self", ".");
            put_link(a, "up", "..");
            put_link(top, "b", "a");
            put_link(c, "round", "../c");
        }
        struct visits v = { 0 };
        char *paths[] = { top, a };  /* with the links, a named again too: entered already, not read twice */
        int npaths = linked ? 2 : 1;
        size_t bad = scan_walk(paths, npaths, record_visit, &v);
        if (v.n != WALK_FILES)
            fail_msg("links %d: %zu files visited, want %d (each once)", linked, v.n, WALK_FILES);
        assert_int_equal(bad, 0);
        const char *want[] = { "a/e1", "a/e2", "c/e3" };
        for (int i = 0; i < WALK_FILES; i++) {
            char w[160];
            snprintf(w, sizeof w, "%s/%s", top, want[i]);
            assert_string_equal(v.path[i], w);
        }
        /* the progress measure agrees with the walk: the same files, their bytes */
        size_t files = 0;
        unsigned long long bytes = 0;
        scan_measure(paths, npaths, WALK_VISIT_CAP, &files, &bytes);
        if (files != WALK_FILES || bytes != 60)
            fail_msg("links %d: measured %zu files, %llu bytes; want %d, 60", linked, files, bytes, WALK_FILES);
    }
    /* at the bound of directories remembered (1 here: top only): the walk goes on, loops are still
     * stopped by the directories it is inside (a/self, a/up, c/round), and a link to a directory (b,
     * to a) is not followed, said and counted: each file once, nothing missed */
    {
        struct visits v = { 0 };
        char *paths[] = { top };
        FILE *saved = stderr;  /* the warning, said once, not into the test's output */
        stderr = fopen("/dev/null", "w");
        size_t bad = scan_walk_max(paths, 1, 1, record_visit, &v);
        fclose(stderr);
        stderr = saved;
        assert_int_equal(bad, 1);
        if (v.n != WALK_FILES)
            fail_msg("past the bound: %zu files visited, want %d (b not followed)", v.n, WALK_FILES);
    }
    /* a path that cannot be walked: one unreadable path in the walk's count, one file in the measure */
    char missing[96], *paths[] = { top, missing };
    snprintf(missing, sizeof missing, "%s/missing", top);
    struct visits v = { 0 };
    FILE *saved = stderr;  /* the walk says it on stderr: not into the test's output */
    stderr = fopen("/dev/null", "w");
    size_t bad = scan_walk(paths, 2, record_visit, &v);
    fclose(stderr);
    stderr = saved;
    assert_int_equal(bad, 1);
    assert_int_equal(v.n, WALK_FILES);
    size_t files = 0;
    unsigned long long bytes = 0;
    scan_measure(paths, 2, WALK_VISIT_CAP, &files, &bytes);
    assert_int_equal(files, WALK_FILES + 1);
    const char *rm[] = { "a/self", "a/up", "b", "c/round", "a/e1", "a/e2", "c/e3", "a", "c", "" };
    for (size_t i = 0; i < sizeof rm / sizeof rm[0]; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s/%s", top, rm[i]);
        if (remove(p) != 0 && rm[i][0])
            fail_msg("cannot remove %s", p);
    }
    rmdir(top);
}

/* Past the bound, a chain of diamonds: d0..d11, each di holding two links x, y to d(i+1), the last a
 * file. Followed, the file is read 2^11 times (2^SCAN_MAX_DEPTH with a deeper chain: the archive
 * needs only SCAN_MAX_VISITED directories before it in name order); links are not followed past
 * the bound, so it is read at most once and the walk ends at once. */
#define DIAMONDS 12
static void test_walk_diamonds_past_bound(void **state)
{
    (void)state;
    char top[64], d[96], t[32];
    snprintf(top, sizeof top, "/tmp/cw-test-diam-XXXXXX");
    assert_non_null(mkdtemp(top));
    for (int i = 0; i < DIAMONDS; i++) {
        snprintf(d, sizeof d, "%s/d%02d", top, i);
        assert_int_equal(mkdir(d, 0700), 0);
    }
    for (int i = 0; i + 1 < DIAMONDS; i++) {
        snprintf(d, sizeof d, "%s/d%02d", top, i);
        snprintf(t, sizeof t, "../d%02d", i + 1);
        put_link(d, "x", t);
        put_link(d, "y", t);
    }
    snprintf(d, sizeof d, "%s/d%02d", top, DIAMONDS - 1);
    put_file(d, "f", 1);
    snprintf(d, sizeof d, "%s/d00", top);
    char *paths[] = { d };
    struct visits v = { 0 };
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w");
    scan_walk_max(paths, 1, 1, record_visit, &v);
    fclose(stderr);
    stderr = saved;
    if (v.n > 1)
        fail_msg("past the bound: the file read %zu times through a chain of diamonds", v.n);
    for (int i = 0; i < DIAMONDS; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s/d%02d/x", top, i), remove(p);
        snprintf(p, sizeof p, "%s/d%02d/y", top, i), remove(p);
        snprintf(p, sizeof p, "%s/d%02d/f", top, i), remove(p);
        snprintf(p, sizeof p, "%s/d%02d", top, i), rmdir(p);
    }
    rmdir(top);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dir_list_bound),
        cmocka_unit_test(test_dir_list_empty_and_missing),
        cmocka_unit_test(test_walk_links),
        cmocka_unit_test(test_walk_diamonds_past_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
