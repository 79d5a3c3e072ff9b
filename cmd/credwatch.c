/* credwatch.c — the credwatch command, above both folders (service/ and api/ never include it): `serve` (the HTTP service), `scan` (offline archives) and `backup` (a copy of the durable store). */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "cw.h"
#include "scan.h"


static void usage(FILE *out)
{
    fputs("usage: credwatch COMMAND [options]\n"
          "\n"
          "Detects AWS Lambda credentials replayed outside Lambda, from CloudTrail.\n"
          "\n"
          "commands:\n"
          "  serve      run the HTTP service (see credwatch serve --help)\n"
          "  scan       scan CloudTrail archives offline (see credwatch scan --help)\n"
          "  backup     copy the durable store to a directory (see credwatch backup --help)\n"
          "  version    print the version\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "scan") == 0)
        return scan_main(argc - 1, argv + 1);
    if (strcmp(cmd, "serve") == 0)
        return api_serve(argc - 1, argv + 1);
    if (strcmp(cmd, "backup") == 0)
        return api_backup_main(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        puts("credwatch " CW_VERSION);
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "credwatch: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
