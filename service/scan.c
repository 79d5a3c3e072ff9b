/* scan.c — `credwatch scan`: offline scan of CloudTrail archives with the same engine as the service.
 *
 * The options, the store and the output. The files are read by scan_run.c on every core: each is
 * checked whole before any of its events counts (so a corrupt file changes nothing), and findings
 * are printed once at the end, when every file has been judged, so the output does not depend on
 * the order in which files are read. Time is event time: last month's archives find last month's
 * theft.
 */
#include "scan.h"
#include "cw.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "export.h"
#include "render.h"
#include "scan_run.h"
#include "scan_walk.h"
#include "settings.h"
#include "store.h"

#define SCAN_PROGRESS_MIN_FILES 20         /* a progress line only when the work is large */
#define SCAN_PROGRESS_MIN_BYTES (64u << 20)
#define SCAN_MEASURE_MAX_FILES 10000000u   /* files counted for the ETA; beyond, it is left out */
#define SCAN_STATE_MARGIN_S (7 * 24 * 3600) /* key state kept this long after the scan's wall clock */
#define SCAN_STORE_DEFAULT_BYTES ((size_t)2 << 30) /* key state bound (CREDWATCH_STORE_MAX_BYTES); ~2M keys */

struct scan {
    struct store *st;
    struct eng_config cfg;
    struct scan_totals t;
    size_t unsupported;          /* findings raised on part of a key's evidence, not on all of it */
    double t0;
};

static void usage(FILE *out)
{
    fputs("usage: credwatch scan [options] PATH...\n"
          "\n"
          "Scans CloudTrail archives offline and prints one finding per line (JSON) on standard\n"
          "output, a summary on standard error. PATH is a file, a directory (walked recursively)\n"
          "or - for standard input. Files may be CloudTrail log files ({\"Records\":[...]}), JSON\n"
          "arrays or newline-delimited records or EventBridge events, plain or gzip (told apart\n"
          "by content, not by name). CloudTrail digest files are recognised and skipped.\n"
          "\n"
          "options:\n"
          "  --aws-ip-ranges FILE  AWS's ip-ranges.json (default: $CREDWATCH_AWS_IP_RANGES)\n"
          "  --allow-cidrs SPEC    allow-listed ranges, CIDR[=label],... (default: $CREDWATCH_ALLOW_CIDRS)\n"
          "  --accounts IDS        the organisation's account ids (default: $CREDWATCH_ACCOUNTS)\n"
          "  --workloads LIST      workloads judged: lambda,ecs,ec2,eks,codebuild or all\n"
          "                        (default: $CREDWATCH_WORKLOADS, else all)\n"
          "  --format FORMAT       credwatch (default), ocsf (OCSF 1.8.0 Detection Finding) or asff\n"
          "                        (AWS Security Hub finding): each finding in that format, one per line\n"
          "  --jobs N              threads reading files (default: the number of CPUs, at most 256)\n"
          "  --batch-bytes N       events a shard collects before applying them, in bytes (default\n"
          "                        8388608; memory is about jobs x 3 x this): a tuning knob only,\n"
          "                        findings never depend on it\n"
          "  --fail-on-findings  exit 1 when any finding exists\n"
          "  --quiet             no summary or progress on standard error\n"
          "  --help              this text\n"
          "\n"
          "exit status: 0 done, 1 findings with --fail-on-findings, 2 usage or read error\n"
          "(an unreadable or corrupt file, or a directory that cannot be listed whole; the other\n"
          "files are still scanned and reported).\n",
          out);
}

/* One finding in the chosen format; a stored document the format cannot show is reported and left
 * out (a finding with no account id anywhere has no ASFF form), so the other findings still print.
 * It still counts as a finding: --fail-on-findings must not pass because of the output format. */
static int print_finding(const struct store_finding *f, int format)
{
    char *doc = rnd_finding(f), *out = NULL;
    if (!doc)
        return 0;  /* out of memory, or evidence that is not an object: skipped, as it always was */
    int rc = exp_convert(doc, format, NULL, &out);
    if (rc == 0)
        puts(out);
    else
        fprintf(stderr, "credwatch scan: finding %s: %s\n", f->id,
                rc == CW_ENOMEM ? "out of memory" : "cannot be shown in this format");
    free(out);
    free(doc);
    return 1;
}

/* 1 when the whole evidence supports the stored finding: its key's state still judges a finding.
 * A finding a batch raised on part of a key's events and the rest do not support (engine.h
 * judge_whole) is not printed, so the output is the same however the events were batched. A key
 * whose state is gone (expired, evicted) keeps its finding as stored. */
static int supported(struct scan *s, struct eng *je, const struct store_finding *f)
{
    struct det_verdict v;
    if (!je || strncmp(f->id, "cwf-", 4) != 0 || eng_key_verdict(je, f->id + 4, &v) != 0 || v.finding)
        return 1;
    s->unsupported++;
    return 0;
}

static size_t print_findings(struct scan *s, int format)
{
    struct store_query q = { .status = -1, .severity = -1, .limit = STORE_LIST_MAX };
    struct store_finding page[STORE_LIST_MAX];
    size_t printed = 0;
    struct eng *je = eng_new(s->st, &s->cfg);  /* without one (out of memory) every finding prints */
    for (;;) {
        size_t n = 0;
        int more = 0;
        if (store_finding_list(s->st, &q, page, &n, &more))
            break;
        for (size_t i = 0; i < n; i++) {
            if (page[i].status != STORE_ST_RETRACTED && supported(s, je, &page[i]))
                printed += (size_t)print_finding(&page[i], format);
            if (i == n - 1) {
                q.after_ms = page[i].created_ms;
                snprintf(q.after_id, sizeof q.after_id, "%s", page[i].id);
            }
            store_finding_free(&page[i]);
        }
        if (!more || n == 0)
            break;
    }
    eng_free(je);
    fflush(stdout);
    return printed;
}

/* The command line, read once. */
struct scan_opts {
    const char *ranges, *allow, *accounts, *workloads;  /* defaults from the environment */
    const char *workloads_from;              /* where workloads came from, for its error message */
    int fail_on_findings, quiet, help;
    int format;                              /* enum exp_format */
    const char *format_name;
    const char *jobs_arg, *batch_arg;
    unsigned jobs;                           /* --jobs, else the CPUs */
    size_t batch_bytes;                      /* --batch-bytes, else 0 (SCAN_BATCH_BYTES) */
    char **paths;                            /* in argv's order; "-" is standard input */
    int npaths;
};

/* Sets the value of a value-taking option; 0 when a is not one. */
static int value_option(struct scan_opts *o, const char *a, const char *value)
{
    const char **to = strcmp(a, "--aws-ip-ranges") == 0 ? &o->ranges
                      : strcmp(a, "--allow-cidrs") == 0 ? &o->allow
                      : strcmp(a, "--accounts") == 0    ? &o->accounts
                      : strcmp(a, "--workloads") == 0   ? &o->workloads
                      : strcmp(a, "--format") == 0      ? &o->format_name
                      : strcmp(a, "--jobs") == 0        ? &o->jobs_arg
                      : strcmp(a, "--batch-bytes") == 0 ? &o->batch_arg
                                                        : NULL;
    if (to)
        *to = value;
    return to != NULL;
}

/* A whole decimal number in [min, max], or -1 naming the option. */
static long long number_arg(const char *opt, const char *v, long long min, long long max)
{
    char *end;
    errno = 0;
    long long n = v && *v >= '0' && *v <= '9' ? strtoll(v, &end, 10) : -1;
    if (n < 0 || errno || *end || n < min || n > max) {
        fprintf(stderr, "credwatch scan: %s %s: expected a whole number from %lld to %lld\n", opt, v ? v : "", min,
                max);
        return -1;
    }
    return n;
}

/* --jobs and --batch-bytes read, the CPUs counted for the default. 0, or CW_ECONFIG said. */
static int parse_sizes(struct scan_opts *o)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o->jobs = cpus < 1 ? 1 : cpus > SCAN_JOBS_MAX ? SCAN_JOBS_MAX : (unsigned)cpus;
    long long n;
    if (o->jobs_arg) {
        if ((n = number_arg("--jobs", o->jobs_arg, 1, SCAN_JOBS_MAX)) < 0)
            return CW_ECONFIG;
        o->jobs = (unsigned)n;
    }
    if (o->batch_arg) {
        if ((n = number_arg("--batch-bytes", o->batch_arg, SCAN_BATCH_MIN_BYTES, SCAN_BATCH_MAX_BYTES)) < 0)
            return CW_ECONFIG;
        o->batch_bytes = (size_t)n;
    }
    return 0;
}

/* One parser, one set of rules: options until "--", then only paths ("-" alone is a path
 * wherever it stands). Stops at --help. Returns 0, or CW_ECONFIG / CW_ENOMEM with the message
 * printed; o->paths is the caller's to free either way. */
static int parse_args(int argc, char **argv, struct scan_opts *o)
{
    memset(o, 0, sizeof *o);
    o->ranges = getenv("CREDWATCH_AWS_IP_RANGES");
    o->allow = getenv("CREDWATCH_ALLOW_CIDRS");
    o->accounts = getenv("CREDWATCH_ACCOUNTS");
    o->workloads = getenv("CREDWATCH_WORKLOADS");
    o->workloads_from = "CREDWATCH_WORKLOADS";
    o->paths = calloc((size_t)argc, sizeof *o->paths);  /* argc bounds the paths */
    if (!o->paths) {
        fprintf(stderr, "credwatch scan: out of memory\n");
        return CW_ENOMEM;
    }
    int opts_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (opts_done || a[0] != '-' || !a[1]) {
            o->paths[o->npaths++] = argv[i];
        } else if (strcmp(a, "--") == 0) {
            opts_done = 1;
        } else if (value_option(o, a, i + 1 < argc ? argv[i + 1] : NULL)) {
            if (i + 1 >= argc) {
                fprintf(stderr, "credwatch scan: %s needs a value\n", a);
                return CW_ECONFIG;
            }
            if (strcmp(a, "--workloads") == 0)
                o->workloads_from = "--workloads";
            i++;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            o->help = 1;
            return 0;
        } else if (strcmp(a, "--fail-on-findings") == 0) {
            o->fail_on_findings = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            o->quiet = 1;
        } else {
            fprintf(stderr, "credwatch scan: unknown option %s (a path that starts with '-' goes after --)\n", a);
            usage(stderr);
            return CW_ECONFIG;
        }
    }
    if (parse_sizes(o))
        return CW_ECONFIG;
    if (o->format_name && (o->format = exp_format_parse(o->format_name)) < 0) {
        fprintf(stderr, "credwatch scan: unknown --format %s (accepted: %s)\n", o->format_name, EXP_FORMAT_NAMES);
        return CW_ECONFIG;
    }
    if (!o->npaths) {
        fprintf(stderr, "credwatch scan: no PATH given\n");
        usage(stderr);
        return CW_ECONFIG;
    }
    return 0;
}

/* The network table and the engine over an embedded store. Returns 0 or CW_ECONFIG / CW_ENOMEM
 * with the message printed; what was made is the caller's to free either way. */
static int scan_setup(struct scan *s, const struct scan_opts *o, struct set_net *net)
{
    char msg[SET_MSG_MAX];
    if (set_net_load(net, o->ranges, o->allow, o->accounts, msg, sizeof msg) ||
        set_workloads(o->workloads, o->workloads_from, &net->kinds, msg, sizeof msg)) {
        fprintf(stderr, "credwatch scan: %s\n", msg);
        return CW_ECONFIG;
    }
    /* A scan owns its machine for a while: a larger bound than serve's, from the same variable. */
    size_t max_bytes = SCAN_STORE_DEFAULT_BYTES;
    const char *mb = getenv("CREDWATCH_STORE_MAX_BYTES");
    if (mb && *mb && set_store_max_bytes(mb, "CREDWATCH_STORE_MAX_BYTES", &max_bytes, msg, sizeof msg)) {
        fprintf(stderr, "credwatch scan: %s\n", msg);
        return CW_ECONFIG;
    }
    s->st = store_mem_new();
    if (!s->st) {
        fprintf(stderr, "credwatch scan: out of memory\n");
        return CW_ENOMEM;
    }
    store_mem_limit(s->st, max_bytes);
    s->cfg.limits.max_records = SCAN_MAX_RECORDS_PER_FILE;
    s->cfg.judge_whole = 1;  /* every record at once: the findings must not depend on the batching */
    /* Key state must outlive the scan: it is kept from the wall clock, and a key met in the first
     * and the last file of a scan of hours must still be one key. The bound on memory is the
     * store's (CREDWATCH_STORE_MAX_BYTES), not time. */
    s->cfg.late_margin_s = SCAN_STATE_MARGIN_S;
    set_net_ctx(net, &s->cfg.det);
    return 0;
}

/* Scans every path on o->jobs threads, then prints the findings. Returns how many were printed, or
 * -1 when the scan could not run. */
static long scan_paths(struct scan *s, const struct scan_opts *o)
{
    struct scan_run_cfg rc = { .st = s->st, .eng = &s->cfg, .jobs = o->jobs, .batch_bytes = o->batch_bytes };
    /* a file is handed to the shards a chunk at a time: a batch smaller than a chunk makes the chunk
     * as small, so a small --batch-bytes splits even one file's events over many applies */
    if (o->batch_bytes && o->batch_bytes < ENG_CHUNK_BYTES)
        s->cfg.chunk_bytes = o->batch_bytes;
    if (!o->quiet && isatty(STDERR_FILENO)) {
        /* counted by stat first: the progress line's totals and ETA */
        scan_measure(o->paths, o->npaths, SCAN_MEASURE_MAX_FILES, &rc.total_files, &rc.total_bytes);
        rc.progress = rc.total_files > SCAN_PROGRESS_MIN_FILES || rc.total_bytes > SCAN_PROGRESS_MIN_BYTES;
        if (rc.total_files >= SCAN_MEASURE_MAX_FILES)
            rc.total_files = 0, rc.total_bytes = 0;  /* not all counted: no total rather than a wrong one */
    }
    s->t0 = cw_mono_s();
    if (scan_run(&rc, o->paths, o->npaths, &s->t))
        return -1;
    return (long)print_findings(s, o->format);
}

static void print_summary(struct scan *s, size_t findings, int quiet)
{
    double dt = cw_mono_s() - s->t0;
    struct store_mem_stats ms;
    store_mem_stats(s->st, &ms);
    if (!quiet)
        fprintf(stderr,
                "credwatch scan: %zu files (%zu unreadable or corrupt, %zu digests skipped), %zu records, "
                "%zu keys, %zu findings, %zu records skipped, %zu duplicates, %zu not uses of a temporary key, "
                "%.0f records/s\n",
                s->t.files + s->t.bad_files + s->t.refused_files, s->t.bad_files, s->t.refused_files, s->t.records, ms.keys, findings,
                s->t.skipped, s->t.duplicates, s->t.ignored, dt > 0 ? s->t.records / dt : 0.0);
    if (s->unsupported && !quiet)
        fprintf(stderr, "credwatch scan: %zu findings raised on part of a key's records are not supported by all of "
                "them and were not printed\n", s->unsupported);
    if (s->t.lost_events)
        fprintf(stderr, "credwatch scan: error: %zu events could not be applied (the store refused them)\n",
                s->t.lost_events);
    if (ms.evicted_pending + ms.evicted_lambda)
        fprintf(stderr,
                "credwatch scan: warning: the key state reached CREDWATCH_STORE_MAX_BYTES (%zu): %llu keys without "
                "Lambda evidence and %llu Lambda keys without findings were evicted; findings may be missed, "
                "raise the bound\n",
                ms.max_bytes, (unsigned long long)ms.evicted_pending, (unsigned long long)ms.evicted_lambda);
}

int scan_main(int argc, char **argv)
{
    struct scan_opts o;
    struct scan s = { 0 };
    struct set_net net = { 0 };
    size_t findings;
    int status = 2;
    if (parse_args(argc, argv, &o))
        goto out;
    if (o.help) {
        usage(stdout);
        status = 0;
        goto out;
    }
    if (scan_setup(&s, &o, &net))
        goto out;
    long printed = scan_paths(&s, &o);
    if (printed < 0)
        goto out;
    findings = (size_t)printed;
    print_summary(&s, findings, o.quiet);
    status = s.t.bad_files || s.t.lost_events ? 2 : (o.fail_on_findings && findings) ? 1 : 0;
out:
    free(o.paths);
    store_free(s.st);
    set_net_free(&net);
    return status;
}
