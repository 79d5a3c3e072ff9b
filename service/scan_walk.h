/* scan_walk.h — the files a scan reads: paths walked (directories recursively, in name order),
 * each regular file (or "-", standard input) handed to a callback. */
#ifndef CW_SCAN_WALK_H
#define CW_SCAN_WALK_H

#include <stddef.h>

#define SCAN_MAX_DEPTH 32                  /* directory nesting followed */

/* The entries of directory `path` but "." and "..", as "path/name", sorted (runs over the same
 * folder read files in the same order); at most `max` of them. The listing is whole or refused:
 * one that passes max, runs out of memory or meets a read error returns nothing, so a scan never
 * goes on over part of a folder as if it were all of it. Returns 0 (*paths and *count set, freed
 * with scan_dir_free), CW_EIO (errno says why), CW_ETOOBIG or CW_ENOMEM (*paths NULL). */
int scan_dir_list(const char *path, size_t max, char ***paths, size_t *count);
void scan_dir_free(char **paths, size_t count);

/* Walks each path: a file (or "-") is handed to visit; a directory's entries are walked in name
 * order. Links are followed, and each directory is entered once (by device and inode: a link to
 * itself or to a parent is no loop, two links to one folder no second reading of it; scan_walk.c
 * says why a file with two names is read under each). What cannot be read (a missing path, a
 * directory that cannot be listed whole, one nested deeper than SCAN_MAX_DEPTH) is said on stderr
 * and counted. Past the SCAN_MAX_VISITED directories a walk remembers (scan_walk.c), it goes on
 * (said once): a loop is still stopped, and a link to a directory is not followed (said and counted).
 * visit returning non-zero stops the walk. Returns the number of paths that could not be walked. */
size_t scan_walk(char *const *paths, int npaths, int (*visit)(void *ud, const char *path), void *ud);
/* The same, remembering at most max_visited directories (tests reach the bound with a few). */
size_t scan_walk_max(char *const *paths, int npaths, size_t max_visited, int (*visit)(void *ud, const char *path),
                     void *ud);

/* Files and bytes under the paths (for a progress line's ETA), counted by the same walk as
 * scan_walk's, in silence, stopping once max_files are counted: the files scan_walk would hand to
 * visit, plus one for each path it could not walk (the scan counts those among its files too).
 * Standard input counts as one file of unknown size. */
void scan_measure(char *const *paths, int npaths, size_t max_files, size_t *files, unsigned long long *bytes);

#endif
