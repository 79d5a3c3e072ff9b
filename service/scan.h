/* scan.h — `credwatch scan PATH…`: the engine over files, directories and standard input. */
#ifndef CW_SCAN_H
#define CW_SCAN_H

#include <stddef.h>

/* Runs the command (argv[0] is "scan"). Returns the exit status: 0 done, 1 findings exist and
 * --fail-on-findings was given, 2 usage or read error (findings are still printed). */
int scan_main(int argc, char **argv);

#endif
