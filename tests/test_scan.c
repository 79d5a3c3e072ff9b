/* test_scan.c — the scan command's directory listing (scan_dir_list): whole or refused, at its bound.
 * The command itself runs in tests/it_scan.sh (real files, and a listing that runs out of memory). */
#include <errno.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dir_list_bound),
        cmocka_unit_test(test_dir_list_empty_and_missing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
