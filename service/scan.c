/* scan.c — offline scan of CloudTrail archives with the same engine as the service.
 *
 * Every file is decoded and applied whole (so a corrupt file changes nothing), into the embedded
 * store; findings are printed once at the end, when every file has been judged, so the output
 * does not depend on the order in which files are walked. Time is event time: last month's
 * archives find last month's theft.
 */
#include "scan.h"
#include "cw.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "export.h"
#include "render.h"
#include "settings.h"
#include "store.h"

#define SCAN_MAX_DEPTH 32                  /* directory nesting followed */
#define SCAN_MAX_FILE_BYTES (2048ull << 20) /* one file read whole; larger is a read error */
#define SCAN_MAX_RECORDS_PER_FILE 5000000u
#define SCAN_PROGRESS_MIN_FILES 20         /* a progress line only when the work is large */
#define SCAN_PROGRESS_MIN_BYTES (64u << 20)
#define SCAN_READ_CHUNK (1u << 20)
#define SCAN_BATCH_EVENTS 200000u          /* events decoded before they are applied (memory bound) */
#define SCAN_DIR_ENTRIES_INITIAL 64        /* names of one directory, first allocation */
#define SCAN_MAX_DIR_ENTRIES (SIZE_MAX / sizeof(char *)) /* none of its own: the file system bounds a
                                                          * directory, memory bounds the list */
#define SCAN_STORE_DEFAULT_BYTES ((size_t)2 << 30) /* key state bound (CREDWATCH_STORE_MAX_BYTES); ~2M keys */

struct scan {
    struct store *st;
    struct eng *eng;
    struct eng_report *rep;
    int progress;
    double t0, last_progress;
    size_t files, bad_files, refused_files, records, skipped, duplicates, ignored;
    unsigned long long bytes;
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
          "  --fail-on-findings  exit 1 when any finding exists\n"
          "  --quiet             no summary or progress on standard error\n"
          "  --help              this text\n"
          "\n"
          "exit status: 0 done, 1 findings with --fail-on-findings, 2 usage or read error\n"
          "(an unreadable or corrupt file, or a directory that cannot be listed whole; the other\n"
          "files are still scanned and reported).\n",
          out);
}

/* Reads f whole into *out (the caller frees). Returns 0, CW_ETOOBIG (SCAN_MAX_FILE_BYTES reached),
 * CW_ENOMEM or CW_EIO. */
static int read_all(FILE *f, unsigned char **out, size_t *len)
{
    void *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = 0;
    for (;;) {
        /* a full buffer doubles, from one chunk up to the bound: a file that fills it is too large */
        if (n == cap && (rc = cw_grow(&buf, &cap, n + 1, 1, SCAN_READ_CHUNK, SCAN_MAX_FILE_BYTES)) != 0)
            goto fail;
        size_t got = fread((unsigned char *)buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        rc = CW_EIO;
        goto fail;
    }
    *out = buf;
    *len = n;
    return 0;
fail:
    free(buf);
    return rc;
}

/* The words read_all's errors have always been reported with. */
static const char *read_error(int rc)
{
    if (rc == CW_ETOOBIG)
        return "file too large to scan";
    return strerror(rc == CW_ENOMEM ? ENOMEM : EIO);
}

static void show_progress(struct scan *s, int final)
{
    if (!s->progress)
        return;
    double t = cw_mono_s();
    if (!final && t - s->last_progress < 0.5)
        return;
    s->last_progress = t;
    fprintf(stderr, "\rscanning: %zu files, %zu records, %.1f MB%s", s->files, s->records, s->bytes / 1e6,
            final ? "\n" : "");
}

/* Applies the events decoded so far. The embedded store cannot be unavailable, so a failure
 * here is memory: reported, and the scan ends as a read error. */
static void scan_apply(struct scan *s)
{
    struct eng_report *r = s->rep;
    if (eng_apply(s->eng, cw_now_ms(), r)) {
        fprintf(stderr, "credwatch scan: %s\n", r->message[0] ? r->message : "cannot apply the events");
        s->bad_files++;
        return;
    }
    s->duplicates += r->duplicates;
}

static void scan_file(struct scan *s, const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "credwatch scan: %s: %s\n", path, strerror(errno));
        s->bad_files++;
        return;
    }
    unsigned char *buf = NULL;
    size_t len = 0;
    int err = read_all(f, &buf, &len);
    if (f != stdin)
        fclose(f);
    if (err) {
        fprintf(stderr, "credwatch scan: %s: %s\n", path, read_error(err));
        s->bad_files++;
        return;
    }
    s->files++;
    s->bytes += len;
    /* decoded now, applied in batches: a key spread over many files is judged once per batch */
    int rc = eng_decode(s->eng, buf, len, s->rep);
    free(buf);
    const struct eng_report *r = s->rep;
    if (rc == CW_EINPUT && strstr(r->message, "digest") != NULL) {
        s->refused_files++;  /* CloudTrail-Digest files sit beside the logs: expected, not an error */
    } else if (rc) {
        fprintf(stderr, "credwatch scan: %s: %s\n", path, r->message[0] ? r->message : "failed");
        s->files--;  /* counted once, among the bad files: the summary adds the two */
        s->bad_files++;
    } else {
        s->records += r->records;
        s->skipped += r->skipped;
        s->ignored += r->ignored;
        for (size_t i = 0; i < r->n_skips; i++)
            fprintf(stderr, "credwatch scan: %s: record %zu skipped: %s\n", path, r->skips[i].index,
                    r->skips[i].reason);
        if (r->skipped > r->n_skips)
            fprintf(stderr, "credwatch scan: %s: %zu more records skipped\n", path, r->skipped - r->n_skips);
    }
    if (!rc && eng_pending(s->eng) >= SCAN_BATCH_EVENTS)
        scan_apply(s);
    show_progress(s, 0);
}

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

static void scan_path(struct scan *s, const char *path, int depth)
{
    struct stat sb;
    if (strcmp(path, "-") == 0) {
        scan_file(s, path);
        return;
    }
    if (stat(path, &sb) != 0) {
        fprintf(stderr, "credwatch scan: %s: %s\n", path, strerror(errno));
        s->bad_files++;
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        if (S_ISREG(sb.st_mode) || depth == 0)
            scan_file(s, path);
        return;
    }
    if (depth >= SCAN_MAX_DEPTH) {
        fprintf(stderr, "credwatch scan: %s: deeper than %d directories, not followed\n", path, SCAN_MAX_DEPTH);
        s->bad_files++;
        return;
    }
    char **names;
    size_t n;
    int rc = scan_dir_list(path, SCAN_MAX_DIR_ENTRIES, &names, &n);
    if (rc) {  /* none of it scanned, and said: never a silent scan of part of the folder */
        fprintf(stderr, "credwatch scan: %s: cannot list the directory: %s\n", path, list_error(rc));
        s->bad_files++;
        return;
    }
    for (size_t i = 0; i < n; i++)
        scan_path(s, names[i], depth + 1);
    scan_dir_free(names, n);
}

/* Counts files and bytes up front, only to decide whether a progress line is worth it. */
static void measure(const char *path, int depth, size_t *files, unsigned long long *bytes)
{
    struct stat sb;
    if (*files > SCAN_PROGRESS_MIN_FILES || strcmp(path, "-") == 0 || stat(path, &sb) != 0)
        return;
    if (!S_ISDIR(sb.st_mode)) {
        (*files)++;
        *bytes += (unsigned long long)sb.st_size;
        return;
    }
    DIR *d = depth < SCAN_MAX_DEPTH ? opendir(path) : NULL;
    if (!d)
        return;
    struct dirent *de;
    char sub[4096];
    while ((de = readdir(d)) && *files <= SCAN_PROGRESS_MIN_FILES) {
        if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
            continue;
        snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
        measure(sub, depth + 1, files, bytes);
    }
    closedir(d);
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

static size_t print_findings(struct scan *s, int format)
{
    struct store_query q = { .status = -1, .severity = -1, .limit = STORE_LIST_MAX };
    struct store_finding page[STORE_LIST_MAX];
    size_t printed = 0;
    for (;;) {
        size_t n = 0;
        int more = 0;
        if (store_finding_list(s->st, &q, page, &n, &more))
            break;
        for (size_t i = 0; i < n; i++) {
            if (page[i].status != STORE_ST_RETRACTED)
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
                                                        : NULL;
    if (to)
        *to = value;
    return to != NULL;
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
    if (s->st)
        store_mem_limit(s->st, max_bytes);
    struct eng_config cfg = { .limits = { .max_records = SCAN_MAX_RECORDS_PER_FILE } };
    set_net_ctx(net, &cfg.det);
    s->eng = s->st ? eng_new(s->st, &cfg) : NULL;
    s->rep = malloc(sizeof *s->rep);
    if (!s->eng || !s->rep) {
        fprintf(stderr, "credwatch scan: out of memory\n");
        return CW_ENOMEM;
    }
    return 0;
}

/* Scans every path, applies what is left, prints the findings; returns how many were printed. */
static size_t scan_run(struct scan *s, const struct scan_opts *o)
{
    if (!o->quiet && isatty(STDERR_FILENO)) {
        size_t files = 0;
        unsigned long long bytes = 0;
        for (int i = 0; i < o->npaths; i++)
            measure(o->paths[i], 0, &files, &bytes);
        s->progress = files > SCAN_PROGRESS_MIN_FILES || bytes > SCAN_PROGRESS_MIN_BYTES;
    }
    s->t0 = cw_mono_s();
    for (int i = 0; i < o->npaths; i++)
        scan_path(s, o->paths[i], 0);
    scan_apply(s);
    show_progress(s, 1);
    return print_findings(s, o->format);
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
                s->files + s->bad_files, s->bad_files, s->refused_files, s->records, ms.keys, findings,
                s->skipped, s->duplicates, s->ignored, dt > 0 ? s->records / dt : 0.0);
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
    findings = scan_run(&s, &o);
    print_summary(&s, findings, o.quiet);
    status = s.bad_files ? 2 : (o.fail_on_findings && findings) ? 1 : 0;
out:
    free(o.paths);
    eng_free(s.eng);
    store_free(s.st);
    free(s.rep);
    set_net_free(&net);
    return status;
}
