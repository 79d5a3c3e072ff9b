/* scan.h — `credwatch scan PATH…`: the engine over files, directories and standard input. */
#ifndef CW_SCAN_H
#define CW_SCAN_H

#include <stddef.h>

/* Runs the command (argv[0] is "scan"). Returns the exit status: 0 done, 1 findings exist and
 * --fail-on-findings was given, 2 usage or read error (findings are still printed). */
int scan_main(int argc, char **argv);

/* The entries of directory `path` but "." and "..", as "path/name", sorted (runs over the same
 * folder read files in the same order); at most `max` of them. The listing is whole or refused:
 * one that passes max, runs out of memory or meets a read error returns nothing, so a scan never
 * goes on over part of a folder as if it were all of it. Returns 0 (*paths and *count set, freed
 * with scan_dir_free), CW_EIO (errno says why), CW_ETOOBIG or CW_ENOMEM (*paths NULL). */
int scan_dir_list(const char *path, size_t max, char ***paths, size_t *count);
void scan_dir_free(char **paths, size_t count);

#endif
