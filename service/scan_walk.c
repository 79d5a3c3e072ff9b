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

/* ---- directories walked: each once ---------------------------------------------------------------
 * Directories are followed through symbolic links (stat, not lstat): an archive may be a folder of
 * links to mounted buckets. A link to the directory itself or to one above it would then make a
 * loop, and two links to the same directory a diamond whose paths double at each level: up to
 * 2^SCAN_MAX_DEPTH of them. So the walk remembers every directory it entered by (st_dev, st_ino) and
 * enters each once, under the first path it meets in name order; a later path to it (a link, a bind
 * mount, the same folder named twice on the command line) is passed over in silence: its files are
 * read already. A file reached through two names (a hard link, a link to a file) is read once per
 * name: the walk meets each name once, and a second name is to the scan what a copy would be, its
 * events duplicates by id (tests/bench_scan.sh builds its gigabyte from hard links so). Telling would
 * mean remembering every file, millions in a trail bucket, where directories are thousands. */
#define SCAN_VISITED_INITIAL 256          /* slots of the set, first allocation (a power of two) */
#define SCAN_MAX_VISITED ((size_t)4 << 20) /* directories one walk remembers: 16 bytes each, the table
                                            * at most half full (128 MiB at the bound, 192 MiB for the
                                            * moment of its last doubling); a trail bucket
                                            * has one directory per account, region and day (4 M:
                                            * hundreds of account-years). Past it the walk goes on
                                            * without remembering more (said once): the directories
                                            * it is inside still stop a loop (struct walk's up), and
                                            * a link to a directory is not followed (said, counted):
                                            * a chain of diamonds would be read 2^depth times */

struct dir_id {
    uint64_t dev, ino;  /* dev UINT64_MAX: an empty slot (no device number is all ones) */
};

struct visited {
    struct dir_id *slot;
    size_t cap, n;  /* cap a power of two, n < cap / 2 */
};

static size_t dir_hash(struct dir_id id, size_t cap)
{
    uint64_t h = id.dev * 0x9E3779B97F4A7C15ull ^ id.ino;  /* splitmix64's finaliser */
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    return (size_t)(h ^ (h >> 31)) & (cap - 1);
}

/* The slot of id in v: its own, or the empty one where it would go. v->cap > 0. */
static struct dir_id *visited_slot(const struct visited *v, struct dir_id id)
{
    size_t i = dir_hash(id, v->cap);
    while (v->slot[i].dev != UINT64_MAX && (v->slot[i].dev != id.dev || v->slot[i].ino != id.ino))
        i = (i + 1) & (v->cap - 1);
    return &v->slot[i];
}

static int visited_has(const struct visited *v, struct dir_id id)
{
    return v->cap && visited_slot(v, id)->dev != UINT64_MAX;
}

/* Doubles the table (or makes the first). 0 or CW_ENOMEM (v unchanged). */
static int visited_grow(struct visited *v)
{
    struct visited g = { NULL, v->cap ? v->cap * 2 : SCAN_VISITED_INITIAL, v->n };
    if (!(g.slot = malloc(g.cap * sizeof *g.slot)))
        return CW_ENOMEM;
    memset(g.slot, 0xff, g.cap * sizeof *g.slot);
    for (size_t i = 0; i < v->cap; i++)
        if (v->slot[i].dev != UINT64_MAX)
            *visited_slot(&g, v->slot[i]) = v->slot[i];
    free(v->slot);
    *v = g;
    return 0;
}

/* Adds id (not in v). 0, CW_ETOOBIG past max or CW_ENOMEM. */
static int visited_add(struct visited *v, struct dir_id id, size_t max)
{
    if (v->n >= max)
        return CW_ETOOBIG;
    if ((v->n + 1) * 2 > v->cap && visited_grow(v))
        return CW_ENOMEM;
    *visited_slot(v, id) = id;
    v->n++;
    return 0;
}

/* ---- the walk ------------------------------------------------------------------------------------ */

struct walk {
    int (*visit)(void *ud, const char *path, const struct stat *sb);  /* sb NULL for "-" */
    void *ud;
    struct visited seen;
    struct dir_id up[SCAN_MAX_DEPTH];  /* the directories the walk is inside, outermost first */
    size_t max_visited;                /* SCAN_MAX_VISITED (tests: smaller) */
    int full;                          /* the set reached it (said once) */
    size_t bad;
    int stop;
    int quiet;  /* scan_measure: counted, not said (the scan itself says it) */
};

/* A path that cannot be walked: said (unless quiet) and counted. */
static void walk_bad(struct walk *w, const char *path, const char *what, const char *why)
{
    w->bad++;
    if (!w->quiet)
        fprintf(stderr, "credwatch scan: %s: %s%s\n", path, what, why);
}

static void walk_path(struct walk *w, const char *path, int depth);

/* Directory path (sb its stat): entered when not yet, its entries walked in name order. */
static void walk_dir(struct walk *w, const char *path, const struct stat *sb, int depth)
{
    struct dir_id id = { (uint64_t)sb->st_dev, (uint64_t)sb->st_ino };
    if (visited_has(&w->seen, id))
        return;  /* entered already, through another path: its files are read (see above) */
    for (int i = 0; i < depth && i < SCAN_MAX_DEPTH; i++)
        if (w->up[i].dev == id.dev && w->up[i].ino == id.ino)
            return;  /* a link to a directory it is inside: a loop, past the set's bound too */
    if (depth >= SCAN_MAX_DEPTH) {
        char m[64];
        snprintf(m, sizeof m, "deeper than %d directories, not followed", SCAN_MAX_DEPTH);
        walk_bad(w, path, m, "");
        return;
    }
    int rc = visited_add(&w->seen, id, w->max_visited);
    if (rc == CW_ENOMEM) {
        walk_bad(w, path, "cannot be entered: ", "out of memory");
        return;
    }
    if (rc && !w->full && !w->quiet)
        fprintf(stderr, "credwatch scan: warning: more than %zu directories: from here on, links to directories "
                "are not followed\n", w->max_visited);
    w->full |= rc == CW_ETOOBIG;
    struct stat lsb;
    if (rc == CW_ETOOBIG && depth > 0 && lstat(path, &lsb) == 0 && S_ISLNK(lsb.st_mode)) {
        /* Without the set, two links to one directory at each level of a chain read its files
         * 2^SCAN_MAX_DEPTH times (a hostile archive needs only the directories to fill the set
         * first). Names that are not links make a tree: each directory past the bound is met once. */
        walk_bad(w, path, "not followed: ", "a link to a directory past the directories a walk remembers");
        return;
    }
    w->up[depth] = id;
    char **names;
    size_t n;
    rc = scan_dir_list(path, SCAN_MAX_DIR_ENTRIES, &names, &n);
    if (rc) {  /* none of it scanned, and said: never a silent scan of part of the folder */
        walk_bad(w, path, "cannot list the directory: ", list_error(rc));
        return;
    }
    for (size_t i = 0; i < n && !w->stop; i++)
        walk_path(w, names[i], depth + 1);
    scan_dir_free(names, n);
}

static void walk_path(struct walk *w, const char *path, int depth)
{
    struct stat sb;
    if (strcmp(path, "-") == 0) {
        w->stop = w->visit(w->ud, path, NULL);
        return;
    }
    if (stat(path, &sb) != 0) {
        walk_bad(w, path, "", strerror(errno));
        return;
    }
    if (S_ISDIR(sb.st_mode))
        walk_dir(w, path, &sb, depth);
    else if (S_ISREG(sb.st_mode) || depth == 0)
        w->stop = w->visit(w->ud, path, &sb);
}

static void walk_all(struct walk *w, char *const *paths, int npaths)
{
    for (int i = 0; i < npaths && !w->stop; i++)
        walk_path(w, paths[i], 0);
    free(w->seen.slot);
    w->seen = (struct visited){ NULL, 0, 0 };
}

struct plain_visit {
    int (*visit)(void *ud, const char *path);
    void *ud;
};

static int visit_plain(void *ud, const char *path, const struct stat *sb)
{
    struct plain_visit *p = ud;
    (void)sb;
    return p->visit(p->ud, path);
}

size_t scan_walk(char *const *paths, int npaths, int (*visit)(void *ud, const char *path), void *ud)
{
    return scan_walk_max(paths, npaths, SCAN_MAX_VISITED, visit, ud);
}

size_t scan_walk_max(char *const *paths, int npaths, size_t max_visited, int (*visit)(void *ud, const char *path),
                     void *ud)
{
    struct plain_visit p = { visit, ud };
    struct walk w = { .visit = visit_plain, .ud = &p, .max_visited = max_visited };
    walk_all(&w, paths, npaths);
    return w.bad;
}

/* ---- the measure: the same walk, counting ---------------------------------------------------------- */

struct measure {
    size_t max, files;
    unsigned long long bytes;
};

static int count_file(void *ud, const char *path, const struct stat *sb)
{
    struct measure *m = ud;
    (void)path;
    m->files++;
    if (sb)
        m->bytes += (unsigned long long)sb->st_size;  /* "-": its size unknown, the ETA leaves it out */
    return m->files >= m->max;
}

void scan_measure(char *const *paths, int npaths, size_t max_files, size_t *files, unsigned long long *bytes)
{
    struct measure m = { max_files, 0, 0 };
    struct walk w = { .visit = count_file, .ud = &m, .quiet = 1, .max_visited = SCAN_MAX_VISITED };
    if (max_files)
        walk_all(&w, paths, npaths);
    /* what cannot be walked counts as a file too, as in the scan's own count (files + unreadable) */
    *files = m.files + w.bad < max_files ? m.files + w.bad : max_files;
    *bytes = m.bytes;
}
