/* bench_decode.c — decode throughput: our yajl decoder against a jansson DOM baseline.
 *
 * Generates in memory a CloudTrail file of BENCH_RECORDS records of ~1.6 KB (nested userIdentity
 * and sessionContext, requestParameters with nesting, responseElements, tlsDetails, resources; a
 * mix of AssumedRole temporary-key uses, Lambda issuances, IAM-user and service events), then
 * decodes the same bytes BENCH_RUNS times with dec_buffer and BENCH_RUNS times with json_loadb
 * plus reading the fields the decoder reads, on one thread, and prints the medians.
 *
 *   bench_decode                      the decode figures
 *   bench_decode --write-gz DIR N     writes the same records as N gzip CloudTrail files in DIR
 *                                     (for tests/bench.sh's scan figure) and prints the count
 *   bench_decode --write-archive DIR FILES PER_FILE KEYS
 *                                     FILES gzip files of PER_FILE records each, the records of a
 *                                     longer run of the same generator (event ids all distinct) over
 *                                     only KEYS access keys: an archive of any size whose key state
 *                                     stays the same size (tests/it_scan_jobs.sh, bench_scan.sh);
 *                                     KEYS 0: a new key every 7 records, as --write-gz
 *   bench_decode --write-archive DIR FILES PER_FILE KEYS STOLEN
 *                                     the same, with only every STOLEN-th key used from outside (the
 *                                     others' uses all from inside): an archive with few findings,
 *                                     as a real trail has, beside the default's one per key or so
 *   bench_decode --decode-files FILE...
 *                                     the decoder alone over those files (gzip or plain), read into
 *                                     memory first: records per CPU-second, median of BENCH_RUNS
 *                                     (bench_scan.sh: a scan's figure against decoding the same files);
 *                                     DECODE_RUNS=N in the environment: N runs instead (1..BENCH_RUNS)
 *   bench_decode --decode-only RUNS   only our decoder, RUNS times, no jansson baseline: for
 *                                     callgrind/perf, whose figures the baseline would swamp
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "decode.h"

#define BENCH_RECORDS 20000
#define BENCH_RUNS 5
#define BENCH_RUNS_MAX 101  /* --decode-only runs: enough for a median on a noisy machine */
#define BENCH_RECORD_MAX 4096
#define TARGET_RECORDS_S 200000.0

struct buf {
    char *p;
    size_t len, cap;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            abort();
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n + 1;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
}

static const char *const uas[] = {
    "Boto3/1.34.20 md/Botocore#1.34.20 ua/2.0 os/linux#5.10.209-218.812.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.1 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.20",
    "aws-sdk-nodejs/2.1500.0 linux/v20.9.0 exec-env/AWS_Lambda_nodejs20.x promise",
    "aws-cli/2.15.0 md/awscrt#0.19.19 ua/2.0 os/macos#23.2.0 md/arch#arm64 lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#source md/prompt#off md/command#s3.ls",
    "aws-sdk-go-v2/1.24.0 os/linux lang/go#1.21.5 md/GOOS#linux md/GOARCH#amd64 api/dynamodb#1.26.7",
};

static size_t key_space;  /* --write-archive: keys cycle over this many; 0: one key per 7 records */
static size_t stolen_every; /* --write-archive STOLEN: only every STOLEN-th key used from outside; 0: all */

/* One record, appended to b. Kinds by i: uses, issuances, IAM-user calls, service events. */
static void record(struct buf *b, size_t i)
{
    unsigned kind = (unsigned)(i % 10);
    char akid[32], id[40];
    snprintf(akid, sizeof akid, "ASIAQBENCH%010zu", key_space ? i / 7 % key_space : i / 7);
    snprintf(id, sizeof id, "%08zx-1c2d-4e5f-8a9b-%012zx", i * 2654435761u % 0xffffffffu, i);
    const char *tls = "\"tlsDetails\":{\"tlsVersion\":\"TLSv1.3\",\"cipherSuite\":\"TLS_AES_128_GCM_SHA256\","
                      "\"clientProvidedHostHeader\":\"dynamodb.us-east-1.amazonaws.com\"}";
    if (kind == 0) {  /* Lambda's issuance */
        put(b, "{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"AWSService\",\"invokedBy\":\"lambda.amazonaws.com\"},"
               "\"eventTime\":\"2024-03-13T08:%02zu:%02zuZ\",\"eventSource\":\"sts.amazonaws.com\",\"eventName\":\"AssumeRole\","
               "\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"lambda.amazonaws.com\",\"userAgent\":\"lambda.amazonaws.com\","
               "\"requestParameters\":{\"roleArn\":\"arn:aws:iam::111122223333:role/orders-fn-role-%zu\","
               "\"roleSessionName\":\"orders-fn-%zu\",\"durationSeconds\":43200},"
               "\"responseElements\":{\"credentials\":{\"accessKeyId\":\"%s\",\"sessionToken\":\"IQoJb3JpZ2luX2VjEHwaCXVzLWVhc3QtMSJHMEUCIQD6"
               "VyEMjQxMDg4MjQ2MTUzIgwd6qJ2pO4x8Y5XoWQq4AK9s3pYbQ8xw7fRkT2LmN0vA1cD4eF5gH6iJ7kL8mN9oP0qR1sT2uV3wX4yZ5aB6cD7eF8gH9iJ0kL"
               "1mN2oP3qR4sT5uV6wX7yZ8aB9cD0eF1gH2iJ3kL4mN5oP6qR7sT8uV9wX0yZ1aB2cD3eF4gH5iJ6kL7mN8oP9qR0sT1uV2wX3yZ4aB5cD6eF7gH8iJ9kL0m\","
               "\"expiration\":\"Mar 13, 2024, 8:33:21 PM\"},\"assumedRoleUser\":{\"assumedRoleId\":\"AROAEXAMPLEID:orders-fn-%zu\","
               "\"arn\":\"arn:aws:sts::111122223333:assumed-role/orders-fn-role-%zu/orders-fn-%zu\"}},"
               "\"requestID\":\"%s\",\"eventID\":\"%s\",\"readOnly\":true,\"resources\":[{\"accountId\":\"111122223333\","
               "\"type\":\"AWS::IAM::Role\",\"ARN\":\"arn:aws:iam::111122223333:role/orders-fn-role-%zu\"}],"
               "\"eventType\":\"AwsApiCall\",\"managementEvent\":true,\"recipientAccountId\":\"111122223333\","
               "\"sharedEventID\":\"%s\",\"eventCategory\":\"Management\"}",
               (i / 60) % 60, i % 60, i % 40, i % 40, akid, i % 40, i % 40, i % 40, id, id, i % 40, id);
    } else if (kind <= 6) {  /* a temporary key's use */
        const char *ua = uas[i % 4];
        put(b, "{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"AssumedRole\",\"principalId\":\"AROAEXAMPLEID:orders-fn-%zu\","
               "\"arn\":\"arn:aws:sts::111122223333:assumed-role/orders-fn-role-%zu/orders-fn-%zu\",\"accountId\":\"111122223333\","
               "\"accessKeyId\":\"%s\",\"sessionContext\":{\"sessionIssuer\":{\"type\":\"Role\",\"principalId\":\"AROAEXAMPLEID\","
               "\"arn\":\"arn:aws:iam::111122223333:role/orders-fn-role-%zu\",\"accountId\":\"111122223333\",\"userName\":\"orders-fn-role-%zu\"},"
               "\"webIdFederationData\":{},\"attributes\":{\"creationDate\":\"2024-03-13T08:33:21Z\",\"mfaAuthenticated\":\"false\"}}},"
               "\"eventTime\":\"2024-03-13T09:%02zu:%02zuZ\",\"eventSource\":\"dynamodb.amazonaws.com\",\"eventName\":\"%s\","
               "\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"%s\",\"userAgent\":\"%s\",%s"
               "\"requestParameters\":{\"tableName\":\"orders-%zu\",\"key\":{\"pk\":{\"S\":\"ORDER#%zu\"},\"sk\":{\"S\":\"LINE#%zu\"}},"
               "\"conditionExpression\":\"attribute_not_exists(pk)\",\"returnConsumedCapacity\":\"TOTAL\"},"
               "\"responseElements\":null,\"requestID\":\"%s\",\"eventID\":\"%s\",\"readOnly\":false,"
               "\"resources\":[{\"accountId\":\"111122223333\",\"type\":\"AWS::DynamoDB::Table\","
               "\"ARN\":\"arn:aws:dynamodb:us-east-1:111122223333:table/orders-%zu\"}],\"eventType\":\"AwsApiCall\","
               "\"apiVersion\":\"2012-08-10\",\"managementEvent\":false,\"recipientAccountId\":\"111122223333\","
               "\"eventCategory\":\"Data\",%s}",
               i % 40, i % 40, i % 40, akid, i % 40, i % 40, (i / 60) % 60, i % 60, i % 3 ? "PutItem" : "GetItem",
               i % 5 || (stolen_every && i / 7 % stolen_every) ? "3.5.140.2" : "198.51.100.7", ua, i % 4 == 2 ? "\"errorCode\":\"AccessDenied\",\"errorMessage\":\"User is not authorized\"," : "",
               i % 40, i, i % 9, id, id, i % 40, tls);
    } else if (kind <= 8) {  /* an IAM user */
        put(b, "{\"eventVersion\":\"1.09\",\"userIdentity\":{\"type\":\"IAMUser\",\"principalId\":\"AIDAEXAMPLE%zu\","
               "\"arn\":\"arn:aws:iam::111122223333:user/dev-%zu\",\"accountId\":\"111122223333\",\"accessKeyId\":\"AKIAIOSFODNN7EX%05zu\","
               "\"userName\":\"dev-%zu\",\"sessionContext\":{\"attributes\":{\"creationDate\":\"2024-03-13T07:00:00Z\","
               "\"mfaAuthenticated\":\"true\"}}},\"eventTime\":\"2024-03-13T10:%02zu:%02zuZ\",\"eventSource\":\"ec2.amazonaws.com\","
               "\"eventName\":\"DescribeInstances\",\"awsRegion\":\"eu-west-1\",\"sourceIPAddress\":\"203.0.113.%zu\","
               "\"userAgent\":\"%s\",\"requestParameters\":{\"instancesSet\":{\"items\":[{\"instanceId\":\"i-0123456789abcdef%zu\"},"
               "{\"instanceId\":\"i-0fedcba987654321%zu\"}]},\"filterSet\":{\"items\":[{\"name\":\"instance-state-name\","
               "\"valueSet\":{\"items\":[{\"value\":\"running\"},{\"value\":\"stopped\"}]}}]},\"maxResults\":100},"
               "\"responseElements\":null,\"requestID\":\"%s\",\"eventID\":\"%s\",\"readOnly\":true,\"eventType\":\"AwsApiCall\","
               "\"managementEvent\":true,\"recipientAccountId\":\"111122223333\",\"eventCategory\":\"Management\",%s,"
               "\"sessionCredentialFromConsole\":\"false\"}",
               i % 20, i % 20, i % 20, i % 20, (i / 60) % 60, i % 60, i % 250, uas[2], i % 10, i % 10, id, id, tls);
    } else {  /* an AWS service on its own */
        put(b, "{\"eventVersion\":\"1.08\",\"userIdentity\":{\"type\":\"AWSService\",\"invokedBy\":\"cloudtrail.amazonaws.com\"},"
               "\"eventTime\":\"2024-03-13T11:%02zu:%02zuZ\",\"eventSource\":\"kms.amazonaws.com\",\"eventName\":\"GenerateDataKey\","
               "\"awsRegion\":\"us-east-1\",\"sourceIPAddress\":\"cloudtrail.amazonaws.com\",\"userAgent\":\"cloudtrail.amazonaws.com\","
               "\"requestParameters\":{\"keyId\":\"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab\","
               "\"encryptionContext\":{\"aws:cloudtrail:arn\":\"arn:aws:cloudtrail:us-east-1:111122223333:trail/main\","
               "\"aws:s3:arn\":\"arn:aws:s3:::trail-bucket/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/13/x_%zu.json.gz\"},"
               "\"keySpec\":\"AES_256\"},\"responseElements\":null,\"requestID\":\"%s\",\"eventID\":\"%s\",\"readOnly\":true,"
               "\"resources\":[{\"accountId\":\"111122223333\",\"type\":\"AWS::KMS::Key\","
               "\"ARN\":\"arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab\"}],"
               "\"eventType\":\"AwsApiCall\",\"managementEvent\":true,\"recipientAccountId\":\"111122223333\","
               "\"sharedEventID\":\"%s\",\"eventCategory\":\"Management\",\"additionalEventData\":{\"x-amz-id-2\":"
               "\"Dp4rQ7pO0dMWhQ4rS0tB1cC2dD3eE4fF5gG6hH7iI8jJ9kK0lL1mM2nN3oO4pP5qQ6rR7sS8tT9uU0vV1wW2xX3yY4zZ5aA6bB7cC8dD9eE0fF1gG2hH3i\"}}",
               (i / 60) % 60, i % 60, i, id, id, id);
    }
}

/* The records [from, to) as one CloudTrail file. */
static struct buf make_file(size_t from, size_t to)
{
    struct buf b = { malloc(1 << 20), 0, 1 << 20 };
    if (!b.p)
        abort();
    put(&b, "{\"Records\":[");
    for (size_t i = from; i < to; i++) {
        if (i > from)
            put(&b, ",");
        record(&b, i);
    }
    put(&b, "]}");
    return b;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return v[n / 2];
}

static int count_event(void *ud, size_t index, const struct ev_event *ev)
{
    (void)index;
    size_t *n = ud;
    *n += ev->kind != EV_OTHER;
    return 0;
}

/* The jansson baseline: the whole DOM, then the fields decode.c reads. */
static const char *str_at(json_t *o, const char *a, const char *b, const char *c)
{
    json_t *v = json_object_get(o, a);
    if (b)
        v = json_object_get(v, b);
    if (c)
        v = json_object_get(v, c);
    return json_string_value(v);
}

static size_t jansson_decode(const char *p, size_t len, size_t *records)
{
    json_error_t err;
    json_t *root = json_loadb(p, len, 0, &err);
    if (!root) {
        fprintf(stderr, "bench_decode: jansson: %s\n", err.text);
        exit(1);
    }
    json_t *recs = json_object_get(root, "Records");
    size_t i, uses = 0;
    json_t *r;
    volatile size_t sink = 0;
    json_array_foreach(recs, i, r) {
        static const char *const top[] = { "eventID", "eventTime", "eventSource", "eventName", "awsRegion",
                                           "sourceIPAddress", "userAgent", "errorCode", "eventType", "eventCategory",
                                           "recipientAccountId", "vpcEndpointId", "vpcEndpointAccountId" };
        for (size_t f = 0; f < sizeof top / sizeof top[0]; f++) {
            const char *s = str_at(r, top[f], NULL, NULL);
            sink += s ? strlen(s) : 0;
        }
        const char *type = str_at(r, "userIdentity", "type", NULL);
        const char *akid = str_at(r, "userIdentity", "accessKeyId", NULL);
        sink += str_at(r, "userIdentity", "arn", NULL) != NULL;
        sink += str_at(r, "userIdentity", "accountId", NULL) != NULL;
        sink += str_at(r, "userIdentity", "invokedBy", NULL) != NULL;
        json_t *sc = json_object_get(json_object_get(r, "userIdentity"), "sessionContext");
        sink += str_at(sc, "sessionIssuer", "arn", NULL) != NULL;
        sink += str_at(sc, "attributes", "creationDate", NULL) != NULL;
        sink += str_at(r, "requestParameters", "roleArn", NULL) != NULL;
        sink += str_at(r, "requestParameters", "roleSessionName", NULL) != NULL;
        sink += str_at(r, "requestParameters", "encryptionContext", "aws:lambda:FunctionArn") != NULL;
        const char *issued = str_at(r, "responseElements", "credentials", "accessKeyId");
        sink += str_at(r, "responseElements", "credentials", "expiration") != NULL;
        sink += str_at(r, "additionalEventData", "AuthenticationMethod", NULL) != NULL;
        if (issued || (type && strcmp(type, "AssumedRole") == 0 && akid && strncmp(akid, "ASIA", 4) == 0))
            uses++;
    }
    *records = json_array_size(recs);
    json_decref(root);
    (void)sink;
    return uses;
}

/* Records [from, to) as one gzip CloudTrail file at path (level 6, as CloudTrail writes them). */
static int write_records_gz(const char *path, size_t from, size_t to)
{
    struct buf b = make_file(from, to);
    gzFile z = gzopen(path, "wb6");
    int bad = !z || gzwrite(z, b.p, (unsigned)b.len) != (int)b.len;
    if (z && gzclose(z) != Z_OK)
        bad = 1;
    free(b.p);
    if (bad)
        fprintf(stderr, "bench_decode: cannot write %s\n", path);
    return bad;
}

static int write_gz(const char *dir, size_t files)
{
    size_t per = (BENCH_RECORDS + files - 1) / files, total = 0;
    for (size_t f = 0; f < files; f++) {
        size_t from = f * per, to = from + per > BENCH_RECORDS ? BENCH_RECORDS : from + per;
        if (from >= to)
            break;
        char path[4096];
        snprintf(path, sizeof path, "%s/111122223333_CloudTrail_us-east-1_20240313T%04zuZ_bench.json.gz", dir, f);
        if (write_records_gz(path, from, to))
            return 1;
        total += to - from;
    }
    printf("%zu\n", total);
    return 0;
}

static int write_archive(const char *dir, size_t files, size_t per, size_t keys, size_t stolen)
{
    stolen_every = stolen;
    key_space = keys;  /* 0: one key per 7 records, as --write-gz */
    for (size_t f = 0; f < files; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/111122223333_CloudTrail_us-east-1_20240313T%06zuZ_arch.json.gz", dir, f);
        if (write_records_gz(path, f * per, (f + 1) * per))
            return 1;
    }
    printf("%zu\n", files * per);
    return 0;
}

/* The whole file in memory (the read is not what is measured). */
static int slurp(const char *path, struct buf *b)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    b->len = 0;
    for (;;) {
        if (b->len == b->cap) {
            b->cap = b->cap ? b->cap * 2 : 1 << 20;
            if (!(b->p = realloc(b->p, b->cap)))
                abort();
        }
        size_t got = fread(b->p + b->len, 1, b->cap - b->len, f);
        if (got == 0)
            break;
        b->len += got;
    }
    int bad = ferror(f);
    fclose(f);
    return bad ? -1 : 0;
}

/* Decoding only (inflate, parse, classify), what a scan of the same files pays before applying. */
static int decode_files(int n, char **paths)
{
    double cpu[BENCH_RUNS];
    size_t records = 0;
    struct buf b = { 0 };
    /* DECODE_RUNS=1..BENCH_RUNS: fewer runs, for a caller that alternates this with what it compares */
    const char *env = getenv("DECODE_RUNS");
    int runs = env && atoi(env) >= 1 && atoi(env) <= BENCH_RUNS ? atoi(env) : BENCH_RUNS;
    for (int r = 0; r < runs; r++) {
        double used = 0;
        records = 0;
        for (int i = 0; i < n; i++) {
            size_t uses = 0;
            struct dec_sink sink = { count_event, NULL, &uses };
            struct dec_stats st;
            char msg[DEC_MSG_MAX];
            if (slurp(paths[i], &b) != 0) {
                fprintf(stderr, "bench_decode: cannot read %s\n", paths[i]);
                free(b.p);
                return 1;
            }
            double c0 = cpu_s();
            if (dec_buffer((const uint8_t *)b.p, b.len, &sink, NULL, &st, msg, sizeof msg) != 0) {
                fprintf(stderr, "bench_decode: %s: %s\n", paths[i], msg);
                free(b.p);
                return 1;
            }
            used += cpu_s() - c0;
            records += st.records;
        }
        cpu[r] = used;
    }
    free(b.p);
    printf("decode files: %zu records, %.0f records per CPU-second (median of %d)\n", records,
           records / median(cpu, runs), runs);
    return 0;
}

/* The same bytes as one gzip member, as CloudTrail writes its files (level 6). */
static struct buf gzip_buf(const struct buf *in)
{
    z_stream z = { 0 };
    if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    struct buf out = { NULL, 0, deflateBound(&z, in->len) };
    out.p = malloc(out.cap);
    if (!out.p)
        abort();
    z.next_in = (unsigned char *)in->p;
    z.avail_in = (unsigned)in->len;
    z.next_out = (unsigned char *)out.p;
    z.avail_out = (unsigned)out.cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    out.len = out.cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

/* Decodes b runs times; the median CPU seconds of one run, or a negative number on failure. */
static double decode_runs(const struct buf *b, int runs, size_t *uses)
{
    double cpu[BENCH_RUNS_MAX];
    for (int r = 0; r < runs; r++) {
        *uses = 0;
        struct dec_sink sink = { count_event, NULL, uses };
        struct dec_stats st;
        char msg[DEC_MSG_MAX];
        double c0 = cpu_s();
        int rc = dec_buffer((const uint8_t *)b->p, b->len, &sink, NULL, &st, msg, sizeof msg);
        cpu[r] = cpu_s() - c0;
        if (rc || st.records != BENCH_RECORDS) {
            fprintf(stderr, "bench_decode: decode failed (%d): %s\n", rc, msg);
            return -1;
        }
    }
    return median(cpu, (size_t)runs);
}

/* The same records, each its own input (serve's usual request: one EventBridge delivery or a
 * few records), so the decoder's cost per input counts too; the median CPU seconds of one run. */
static double decode_singles(int runs)
{
    double cpu[BENCH_RUNS_MAX];
    struct buf all = { malloc(1 << 20), 0, 1 << 20 };
    size_t *end = malloc(BENCH_RECORDS * sizeof *end);
    if (!all.p || !end)
        abort();
    for (size_t i = 0; i < BENCH_RECORDS; i++) {  /* generated first: only dec_buffer is timed */
        record(&all, i);
        end[i] = all.len;
    }
    for (int r = 0; r < runs; r++) {
        size_t uses = 0;
        struct dec_sink sink = { count_event, NULL, &uses };
        struct dec_stats st;
        char msg[DEC_MSG_MAX];
        double c0 = cpu_s();
        for (size_t i = 0, from = 0; i < BENCH_RECORDS; from = end[i++])  /* as the engine calls it */
            if (dec_buffer((const uint8_t *)all.p + from, end[i] - from, &sink, NULL, &st, msg, sizeof msg))
                return -1;
        cpu[r] = cpu_s() - c0;
    }
    free(all.p);
    free(end);
    return median(cpu, (size_t)runs);
}

/* --decode-only: the decoder alone, runs times, plain then gzip (set BENCH_GZIP=0 to leave the
 * gzip runs out, e.g. under callgrind), then one input per record (BENCH_SINGLES=0 leaves them
 * out); prints records per CPU-second (median). */
static int decode_only(int runs)
{
    struct buf b = make_file(0, BENCH_RECORDS);
    size_t uses = 0;
    if (runs < 1 || runs > BENCH_RUNS_MAX)
        runs = BENCH_RUNS;
    double m = decode_runs(&b, runs, &uses);
    if (m < 0)
        return 1;
    printf("decode-only: %.0f records per CPU-second (median of %d); %zu uses\n", BENCH_RECORDS / m, runs, uses);
    const char *gz = getenv("BENCH_GZIP");
    if (!gz || strcmp(gz, "0") != 0) {
        struct buf z = gzip_buf(&b);
        m = decode_runs(&z, runs, &uses);
        if (m < 0)
            return 1;
        printf("decode-only gzip: %.0f records per CPU-second (median of %d, %.1f MB gzip)\n", BENCH_RECORDS / m,
               runs, z.len / 1e6);
        free(z.p);
    }
    const char *singles = getenv("BENCH_SINGLES");
    if (!singles || strcmp(singles, "0") != 0) {
        m = decode_singles(runs);
        if (m < 0)
            return 1;
        printf("decode-only one record per input: %.0f records per CPU-second (median of %d)\n",
               BENCH_RECORDS / m, runs);
    }
    free(b.p);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--decode-only") == 0)
        return decode_only(atoi(argv[2]));
    if (argc >= 3 && strcmp(argv[1], "--decode-files") == 0)
        return decode_files(argc - 2, argv + 2);
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "--write-archive") == 0)
        return write_archive(argv[2], strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10),
                             strtoul(argv[5], NULL, 10), argc == 7 ? strtoul(argv[6], NULL, 10) : 0);
    if (argc == 4 && strcmp(argv[1], "--write-gz") == 0)
        return write_gz(argv[2], (size_t)strtoul(argv[3], NULL, 10));
    struct buf b = make_file(0, BENCH_RECORDS);
    double ours[BENCH_RUNS], dom[BENCH_RUNS], cpu[BENCH_RUNS];
    size_t events = 0, records = 0;
    for (int r = 0; r < BENCH_RUNS; r++) {
        size_t uses = 0;
        struct dec_sink sink = { count_event, NULL, &uses };
        struct dec_stats st;
        char msg[DEC_MSG_MAX];
        double t0 = now_s(), c0 = cpu_s();
        int rc = dec_buffer((const uint8_t *)b.p, b.len, &sink, NULL, &st, msg, sizeof msg);
        ours[r] = now_s() - t0;
        cpu[r] = cpu_s() - c0;
        if (rc || st.records != BENCH_RECORDS) {
            fprintf(stderr, "bench_decode: decode failed (%d): %s\n", rc, msg);
            return 1;
        }
        events = uses;
    }
    size_t dom_uses = 0;
    for (int r = 0; r < BENCH_RUNS; r++) {
        double t0 = now_s();
        dom_uses = jansson_decode(b.p, b.len, &records);
        dom[r] = now_s() - t0;
    }
    if (records != BENCH_RECORDS || dom_uses != events) {
        fprintf(stderr, "bench_decode: baseline disagrees: %zu records, %zu uses (ours %zu)\n", records, dom_uses,
                events);
        return 1;
    }
    double m_ours = median(ours, BENCH_RUNS), m_dom = median(dom, BENCH_RUNS);
    double rs = BENCH_RECORDS / m_ours, rs_dom = BENCH_RECORDS / m_dom;
    printf("input: %d records, %.1f MB, %.0f bytes/record; %zu issuances and temporary-key uses\n", BENCH_RECORDS,
           b.len / 1e6, (double)b.len / BENCH_RECORDS, events);
    printf("decode: yajl %.0f records/s (median of %d, %.0f MB/s); jansson DOM %.0f records/s; ratio %.1fx\n", rs,
           BENCH_RUNS, b.len / m_ours / 1e6, rs_dom, rs / rs_dom);
    /* per CPU-second too: on a shared machine the wall clock counts other work's time slices, and
     * bench_scan.sh compares a scan's CPU per record with this one */
    printf("decode: %.0f records per CPU-second (median of %d)\n", BENCH_RECORDS / median(cpu, BENCH_RUNS), BENCH_RUNS);
    printf("decode: target %.0f records/s: %s\n", TARGET_RECORDS_S, rs >= TARGET_RECORDS_S ? "met" : "NOT met");
    free(b.p);
    return 0;
}
