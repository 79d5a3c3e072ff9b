/* scan_walk.c — directories walked in name order, whole or not at all. */
#include "scan_walk.h"
#include "cw.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SCAN_DIR_ENTRIES_INITIAL 64        /* names of one directory, first allocation */
#define SCAN_MAX_DIR_ENTRIES (SIZE_MAX / sizeof(char *)) /* none of its own: the file system bounds a
                                                          * directory, memory bounds the list */
#define SCAN_PATH_MAX 4096                 /* a path measured for the progress line */

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void scan_dir_free(char **paths, size_t count)
{
    for (size_t i = 0; i < count && paths; i++)
        free(paths[i]);
    free(paths);
}

int scan_dir_list(const char *path, size_t max, char ***paths, size_t *count)
{
    void *names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0, err = 0;
    *paths = NULL;
    *count = 0;
    DIR *d = opendir(path);
    if (!d)
        return CW_EIO;
    for (;;) {
        errno = 0;  /* readdir's NULL is the end, or an error when it sets errno */
        struct dirent *de = readdir(d);
        if (!de) {
            err = errno;
            rc = err ? CW_EIO : 0;
            break;
        }
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if ((rc = cw_grow(&names, &cap, n + 1, sizeof(char *), SCAN_DIR_ENTRIES_INITIAL, max)) != 0)
            break;
        char **slot = (char **)names + n;
        size_t len = strlen(path) + strlen(de->d_name) + 2;
        if (!(*slot = malloc(len))) {
            rc = CW_ENOMEM;
            break;
        }
        snprintf(*slot, len, "%s/%s", path, de->d_name);
        n++;
    }
    closedir(d);
    if (rc) {  /* the whole listing or none of it: a cut list would be scanned as if it were all */
        scan_dir_free(names, n);
        errno = err;
        return rc;
    }
    if (n)
        qsort(names, n, sizeof(char *), cmp_names);
    *paths = names;
    *count = n;
    return 0;
}

/* Why a directory could not be listed, in words. */
static const char *list_error(int rc)
{
    if (rc == CW_EIO)
        return strerror(errno);
    return rc == CW_ETOOBIG ? "more entries than a scan lists" : "out of memory";
}

struct walk {
    int (*visit)(void *ud, const char *path);
    void *ud;
    size_t bad;
    int stop;
};

static void walk_path(struct walk *w, const char *path, int depth)
{
    struct stat sb;
    if (strcmp(path, "-") == 0) {
        w->stop = w->visit(w->ud, path);
        return;
    }
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "credwatch scan: %s: %s\n", path, strerror(errno));
        w->bad++;
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        if (S_ISREG(sb.st_mode) || depth == 0)
            w->stop = w->visit(w->ud, path);
        return;
    }
    if (depth >= SCAN_MAX_DEPTH) {
        fprintf(stderr, "credwatch scan: %s: deeper than %d directories, not followed\n", path, SCAN_MAX_DEPTH);
        w->bad++;
        return;
    }
    char **names;
    size_t n;
    int rc = scan_dir_list(path, SCAN_MAX_DIR_ENTRIES, &names, &n);
    if (rc) {  /* none of it scanned, and said: never a silent scan of part of the folder */
        fprintf(stderr, "credwatch scan: %s: cannot list the directory: %s\n", path, list_error(rc));
        w->bad++;
        return;
    }
    for (size_t i = 0; i < n && !w->stop; i++)
        walk_path(w, names[i], depth + 1);
    scan_dir_free(names, n);
}

size_t scan_walk(char *const *paths, int npaths, int (*visit)(void *ud, const char *path), void *ud)
{
    struct walk w = { visit, ud, 0, 0 };
    for (int i = 0; i < npaths && !w.stop; i++)
        walk_path(&w, paths[i], 0);
    return w.bad;
}

static void measure(const char *path, int depth, size_t max, size_t *files, unsigned long long *bytes)
{
    struct stat sb;
    if (*files >= max)
        return;
    if (strcmp(path, "-") == 0 || stat(path, &sb) != 0) {
        (*files)++;  /* counted, size unknown: the ETA is by bytes and leaves it out */
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        (*files)++;
        *bytes += (unsigned long long)sb.st_size;
        return;
    }
    DIR *d = depth < SCAN_MAX_DEPTH ? opendir(path) : NULL;
    if (!d)
        return;
    struct dirent *de;
    char sub[SCAN_PATH_MAX];
    while ((de = readdir(d)) && *files < max) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path, de->d_name) >= sizeof sub)
            continue;  /* too long to measure: the ETA is an estimate */
        measure(sub, depth + 1, max, files, bytes);
    }
    closedir(d);
}

void scan_measure(char *const *paths, int npaths, size_t max_files, size_t *files, unsigned long long *bytes)
{
    *files = 0;
    *bytes = 0;
    for (int i = 0; i < npaths; i++)
        measure(paths[i], 0, max_files, files, bytes);
}
