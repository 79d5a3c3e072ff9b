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
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "export.h"
#include "scan_run.h"
#include "scan_store.h"
#include "scan_walk.h"
#include "settings.h"
#include "store.h"

#define SCAN_CGROUP_CPU_MAX "/sys/fs/cgroup/cpu.max" /* cgroup v2: the container's CPU quota */
#define SCAN_PROGRESS_MIN_FILES 20         /* a progress line only when the work is large */
#define SCAN_PROGRESS_MIN_BYTES (64u << 20)
#define SCAN_MEASURE_MAX_FILES 10000000u   /* files counted for the ETA; beyond, it is left out */
#define SCAN_STORE_DEFAULT_BYTES ((size_t)2 << 30) /* key state bound (CREDWATCH_STORE_MAX_BYTES); ~2M keys */

struct scan {
    struct store *st;
    struct scan_share *share;  /* the findings this process wrote (scan_store.h) */
    int shared;                /* the store is Redis: shared with other parts and the service */
    unsigned jobs;             /* threads that read the files */
    const char *store_name;
    struct eng_config cfg;
    struct scan_totals t;
    size_t unsupported;          /* findings raised on part of a key's evidence, not on all of it */
    double t0;
};

static void usage(FILE *out)
{
    fputs("usage: credwatch scan [options] PATH...\n"
          "       credwatch scan --report --redis-url URL|--redis-cluster SEEDS [--format F]\n"
          "\n"
          "Scans CloudTrail archives offline and prints one finding per line (JSON), sorted by\n"
          "finding id, on standard output, a summary on standard error. PATH is a file, a\n"
          "directory (walked recursively) or - for standard input. Files may be CloudTrail log\n"
          "files ({\"Records\":[...]}), JSON arrays or newline-delimited records or EventBridge\n"
          "events, plain or gzip (told apart by content, not by name). CloudTrail digest files\n"
          "are recognised and skipped.\n"
          "\n"
          "options:\n"
          "  --aws-ip-ranges FILE  AWS's ip-ranges.json (default: $CREDWATCH_AWS_IP_RANGES)\n"
          "  --allow-cidrs SPEC    allow-listed ranges, CIDR[=label],... (default: $CREDWATCH_ALLOW_CIDRS)\n"
          "  --accounts IDS        the organisation's account ids (default: $CREDWATCH_ACCOUNTS)\n"
          "  --workloads LIST      workloads judged: lambda,ecs,ec2,eks,codebuild or all\n"
          "                        (default: $CREDWATCH_WORKLOADS, else all)\n"
          "  --format FORMAT       credwatch (default), ocsf (OCSF 1.8.0 Detection Finding) or asff\n"
          "                        (AWS Security Hub finding): each finding in that format, one per line\n"
          "  --jobs N              threads reading files (default: the CPUs this process may use, by\n"
          "                        its affinity and its cgroup's CPU quota; at most 256)\n"
          "  --batch-bytes N       events a shard collects before applying them, in bytes (default\n"
          "                        8388608, at most 67108864; memory is about jobs x 3 x this): a\n"
          "                        tuning knob only, findings never depend on it\n"
          "  --redis-url URL       keep the state in Redis, shared with scans of the other parts of an\n"
          "                        archive: redis[s]://[user:password@]host:port[/db], or env for\n"
          "                        $CREDWATCH_REDIS_URL; prints this process's own share of findings\n"
          "  --redis-cluster SEEDS the same on a Redis Cluster: [redis[s]://][user:password@]host:port,...\n"
          "                        or env for $CREDWATCH_REDIS_CLUSTER (TLS files and timeout: serve's\n"
          "                        CREDWATCH_REDIS_* variables)\n"
          "  --state-ttl DURATION  how long key state outlives its last write, e.g. 7d, 36h (default 7d,\n"
          "                        1h..90d): longer than the whole scan of every part, reruns included\n"
          "  --report              no PATH: print every finding in the Redis store (all parts merged;\n"
          "                        give the network options the parts' scans had)\n"
          "  --fail-on-findings  exit 1 when any finding exists (in Redis: in this process's share)\n"
          "  --quiet             no summary or progress on standard error\n"
          "  --help              this text\n"
          "\n"
          "exit status: 0 done, 1 findings with --fail-on-findings, 2 usage or read error\n"
          "(an unreadable or corrupt file, or a directory that cannot be listed whole; the other\n"
          "files are still scanned and reported), or a Redis store that cannot be used.\n",
          out);
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
    struct scan_store_opts store;            /* --redis-url, --redis-cluster, --state-ttl, --report */
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
                      : strcmp(a, "--redis-url") == 0   ? &o->store.redis_url
                      : strcmp(a, "--redis-cluster") == 0 ? &o->store.redis_cluster
                      : strcmp(a, "--state-ttl") == 0   ? &o->store.state_ttl
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

/* The CPUs this process may use: those of its affinity mask, and no more than a cgroup v2 quota
 * (cpu.max "QUOTA PERIOD", rounded up) allows. A container on a 64-CPU node limited to 2 CPUs must
 * not start 64 threads, each holding its chunk and its shard's batches of memory. */
static long usable_cpus(void)
{
    cpu_set_t set;
    long n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
    FILE *f = fopen(SCAN_CGROUP_CPU_MAX, "r");
    long long quota, period;
    if (f && fscanf(f, "%lld %lld", &quota, &period) == 2 && quota > 0 && period > 0) {
        long q = (long)((quota + period - 1) / period);  /* "max" fails the scan: no quota */
        if (q < n)
            n = q;
    }
    if (f)
        fclose(f);
    return n;
}

/* --jobs and --batch-bytes read, the CPUs counted for the default. 0, or CW_ECONFIG said. */
static int parse_sizes(struct scan_opts *o)
{
    long cpus = usable_cpus();
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
        } else if (strcmp(a, "--report") == 0) {
            o->store.report = 1;
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
    if (scan_store_check(&o->store, o->npaths))
        return CW_ECONFIG;
    if (!o->npaths && !o->store.report) {
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
    int rc;
    if (!(s->st = scan_store_open(&o->store, max_bytes, &s->store_name, &rc)))
        return rc;
    /* every shard's engine reports into one set: in Redis this process's share; in memory every finding
     * (all of them are this scan's), printed from the set rather than by listing the store, whose
     * paging walks every finding per page */
    s->shared = scan_store_shared(&o->store);
    if (!o->store.report) {
        if (!(s->share = scan_share_new(SCAN_FINDINGS_MAX))) {
            fprintf(stderr, "credwatch scan: out of memory\n");
            return CW_ENOMEM;
        }
        s->cfg.on_finding = scan_share_on_finding;
        s->cfg.on_finding_ud = s->share;
    }
    s->cfg.limits.max_records = SCAN_MAX_RECORDS_PER_FILE;
    s->cfg.judge_whole = 1;  /* every record at once: the findings must not depend on the batching */
    /* Key state must outlive the scan: it is kept from the wall clock, and a key met in the first
     * and the last file of a scan of hours must still be one key. The bound on memory is the
     * store's (CREDWATCH_STORE_MAX_BYTES), not time. On Redis, every part of a scan over many
     * machines must meet the state the others left: --state-ttl (scan_store.c). */
    s->cfg.late_margin_s = o->store.state_ttl_s;
    set_net_ctx(net, &s->cfg.det);
    return 0;
}

/* Scans every path on o->jobs threads, then prints the findings (in memory: all; in Redis: this
 * process's share) in id order. Returns how many were printed, or -1 when the scan could not run;
 * a failure to print them all is a read error (bad_files). */
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
    s->jobs = o->jobs;
    if (scan_run(&rc, o->paths, o->npaths, &s->t))
        return -1;
    struct scan_print_stats ps;
    if (scan_store_print(s->st, s->share, o->format, &s->cfg, &ps))
        s->t.bad_files++;
    s->unsupported = ps.unsupported;
    return (long)ps.findings;
}

static void print_summary(struct scan *s, size_t findings, int quiet)
{
    double dt = cw_mono_s() - s->t0;
    struct store_mem_stats ms = { 0 };
    char keys[64] = "";  /* a shared store's key count is every part's: not this process's to say */
    if (!s->shared) {
        store_mem_stats(s->st, &ms);
        snprintf(keys, sizeof keys, "%zu keys, ", ms.keys);
    }
    if (!quiet)
        fprintf(stderr,
                "credwatch scan: %zu files (%zu unreadable or corrupt, %zu digests skipped), %zu records, "
                "%s%zu findings%s, %zu records skipped, %zu duplicates, %zu not uses of a temporary key, "
                "%zu files past a chunk spilled to disk, %zu decoded twice, %.0f records/s on %u thread%s\n",
                s->t.files + s->t.bad_files + s->t.refused_files, s->t.bad_files, s->t.refused_files, s->t.records, keys,
                findings, s->shared ? " (this process's share)" : "", s->t.skipped, s->t.duplicates, s->t.ignored,
                s->t.spilled_files, s->t.redecoded_files, dt > 0 ? s->t.records / dt : 0.0, s->jobs,
                s->jobs == 1 ? "" : "s");
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
    if (o.store.report) {  /* judged with the parts' network settings: the same options */
        status = scan_store_report(s.st, s.store_name, &s.cfg, o.format, o.fail_on_findings, o.quiet);
        goto out;
    }
    long printed = scan_paths(&s, &o);
    if (printed < 0)
        goto out;
    findings = (size_t)printed;
    print_summary(&s, findings, o.quiet);
    status = s.t.bad_files || s.t.lost_events ? 2 : (o.fail_on_findings && findings) ? 1 : 0;
out:
    free(o.paths);
    store_free(s.st);
    scan_share_free(s.share);
    set_net_free(&net);
    return status;
}
