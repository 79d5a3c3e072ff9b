/* api.h — the HTTP service (`credwatch serve`): libmicrohttpd in front of the engine.
 *
 * Everything else under api/ is internal to it; each module has its own short header.
 */
#ifndef CW_API_H
#define CW_API_H

#include <stdio.h>

/* Runs the service until SIGTERM/SIGINT, then drains and returns. argv[0] is "serve"; flags
 * mirror the CREDWATCH_* environment (see --help). Returns the process exit status: 0 after a
 * clean drain (also for --help and --print-routes), 2 when a setting is refused (out of range, a
 * store URL that does not parse, an unreadable network file; running out of memory while reading
 * one is reported the same way), 1 when the service could not start otherwise (port in use, out of
 * memory). Every failure is logged first. */
int api_serve(int argc, char **argv);

/* `credwatch backup PATH` (argv[0] is "backup"): a copy of the durable store into the new
 * directory PATH, made by the server at CREDWATCH_URL when set, else by opening the data directory
 * (free only while no server runs). Returns 0, 1 when the copy failed, 2 on a usage or setting
 * error. */
int api_backup_main(int argc, char **argv);

/* Prints `METHOD /path/{param}` one per line, from the route table the router itself uses.
 * Returns 0, or -1 when writing failed. */
int api_print_routes(FILE *out);

#endif
