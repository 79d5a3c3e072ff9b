#!/bin/sh
# it_scan.sh — `credwatch scan` against a folder of archives laid out like a real trail bucket:
# gzip log files in nested AWSLogs/ folders, a digest file, a plain JSON file, an NDJSON file of
# EventBridge events. A key issued in one file and replayed in another is found; a Lambda key used
# only inside and non-Lambda keys used from many addresses are not.
# Prints `ok - name` / `not ok - name`; exits non-zero when any check fails.
. "$(dirname "$0")/lib.sh"
CW=${CREDWATCH:-$root/$BUILD/credwatch}
make_tmp

if [ ! -x "$CW" ]; then
  echo "not ok - credwatch binary missing at $CW"
  exit 1
fi

# ---- the archives --------------------------------------------------------------------------------
"$PY" - "$TEST_TMP/trail" "$TEST_TMP/stdin.json.gz" <<'EOF'
import gzip, json, os, sys
top, stdin_file = sys.argv[1], sys.argv[2]
ACCT = "111122223333"
ROLE = "arn:aws:iam::%s:role/orders-fn-role" % ACCT
UA_PY = "Boto3/1.34.20 md/Botocore#1.34.20 ua/2.0 os/linux#5.10 lang/python#3.12.1 exec-env/AWS_Lambda_python3.12 Botocore/1.34.20"
UA_CLI = "aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 source/x86_64.ubuntu.22 prompt/off command/sts.get-caller-identity"
STOLEN, INSIDE_ONLY, MARKER_ONLY, NON_LAMBDA, PIPED = ("ASIAQEXAMPLESTOLEN01", "ASIAQEXAMPLEINSIDE01",
    "ASIAQEXAMPLEMARKED01", "ASIAQEXAMPLEUSER0001", "ASIAQEXAMPLEPIPED001")
n = [0]
def eid():
    n[0] += 1
    return "00000000-0000-4000-8000-%012d" % n[0]
def issue(key, t, fn="orders-fn"):
    return {"eventVersion": "1.08", "userIdentity": {"type": "AWSService", "invokedBy": "lambda.amazonaws.com"},
            "eventTime": t, "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole", "awsRegion": "us-east-1",
            "sourceIPAddress": "lambda.amazonaws.com", "userAgent": "lambda.amazonaws.com",
            "requestParameters": {"roleArn": ROLE, "roleSessionName": fn},
            "responseElements": {"credentials": {"accessKeyId": key, "sessionToken": "IQoJb3JpZ2luX2VjE",
                                                  "expiration": "Mar 13, 2024, 8:33:21 PM"}},
            "eventID": eid(), "eventType": "AwsApiCall", "recipientAccountId": ACCT}
def use(key, t, ip, ua, source="sts.amazonaws.com", name="GetCallerIdentity", session="orders-fn"):
    return {"eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:" + session,
                             "arn": "arn:aws:sts::%s:assumed-role/orders-fn-role/%s" % (ACCT, session),
                             "accountId": ACCT, "accessKeyId": key,
                             "sessionContext": {"sessionIssuer": {"type": "Role", "arn": ROLE},
                                                "attributes": {"creationDate": "2024-03-13T08:33:21Z"}}},
            "eventTime": t, "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
            "sourceIPAddress": ip, "userAgent": ua, "requestParameters": None, "responseElements": None,
            "eventID": eid(), "eventType": "AwsApiCall", "recipientAccountId": ACCT}
def eventbridge(rec):
    return {"version": "0", "id": eid(), "detail-type": "AWS API Call via CloudTrail", "source": "aws.sts",
            "account": ACCT, "time": rec["eventTime"], "region": "us-east-1", "resources": [], "detail": rec}
def write_gz(rel, records):
    path = os.path.join(top, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with gzip.open(path, "wt") as f:
        json.dump({"Records": records}, f)
logs = "AWSLogs/%s/CloudTrail/us-east-1/2024/03/13/" % ACCT
# the stolen key's issuance and its inside use; another key used only inside
write_gz(logs + "%s_CloudTrail_us-east-1_20240313T0835Z_abc.json.gz" % ACCT, [
    issue(STOLEN, "2024-03-13T08:33:21Z"),
    use(STOLEN, "2024-03-13T08:33:25Z", "3.5.140.2", UA_PY, "dynamodb.amazonaws.com", "PutItem"),
    issue(INSIDE_ONLY, "2024-03-13T08:34:00Z"),
    use(INSIDE_ONLY, "2024-03-13T08:34:05Z", "3.5.140.3", UA_PY, "s3.amazonaws.com", "GetObject"),
])
# an hour later, in another file: the stolen key replayed from outside; a non-Lambda key everywhere
write_gz(logs + "%s_CloudTrail_us-east-1_20240313T0935Z_def.json.gz" % ACCT, [
    use(STOLEN, "2024-03-13T09:30:00Z", "198.51.100.7", UA_CLI),
    use(STOLEN, "2024-03-13T09:31:00Z", "198.51.100.7", UA_CLI, "iam.amazonaws.com", "CreateUser"),
    use(INSIDE_ONLY, "2024-03-13T09:32:00Z", "3.5.140.3", UA_PY, "s3.amazonaws.com", "PutObject"),
] + [use(NON_LAMBDA, "2024-03-13T09:%02d:00Z" % i, "203.0.113.%d" % (10 + i), UA_CLI, session="alice")
     for i in range(12)])
# the digest beside the logs
digest = "AWSLogs/%s/CloudTrail-Digest/us-east-1/2024/03/13/%s_CloudTrail-Digest_us-east-1_trail_us-east-1_20240313T093500Z.json.gz" % (ACCT, ACCT)
path = os.path.join(top, digest)
os.makedirs(os.path.dirname(path), exist_ok=True)
with gzip.open(path, "wt") as f:
    json.dump({"awsAccountId": ACCT, "digestStartTime": "2024-03-13T08:35:00Z", "digestEndTime": "2024-03-13T09:35:00Z",
               "digestS3Bucket": "trail", "digestPublicKeyFingerprint": "6d7e", "previousDigestSignature": None,
               "logFiles": [{"s3Bucket": "trail", "s3Object": logs + "x.json.gz", "hashValue": "a1"}]}, f)
# a marker-only key (no issuance seen): its inside use in a plain JSON file, its outside use in NDJSON
os.makedirs(os.path.join(top, "exports"), exist_ok=True)
with open(os.path.join(top, "exports", "plain.json"), "w") as f:
    json.dump({"Records": [use(MARKER_ONLY, "2024-03-13T10:00:00Z", "3.5.140.4", UA_PY)]}, f)
with open(os.path.join(top, "exports", "eventbridge.ndjson"), "w") as f:
    for r in [use(INSIDE_ONLY, "2024-03-13T10:01:00Z", "3.5.140.3", UA_PY),
              use(MARKER_ONLY, "2024-03-13T10:05:00Z", "192.0.2.44", UA_CLI, "secretsmanager.amazonaws.com",
                  "GetSecretValue")]:
        f.write(json.dumps(eventbridge(r)) + "\n")
# for stdin: a key issued and replayed, in one gzip file
with gzip.open(stdin_file, "wt") as f:
    json.dump({"Records": [issue(PIPED, "2024-03-13T08:33:21Z"),
                           use(PIPED, "2024-03-13T11:00:00Z", "198.51.100.99", UA_CLI)]}, f)
EOF
[ $? -eq 0 ] || { echo "not ok - generate archives"; exit 1; }

# Checks stdout ($1) holds exactly the keys given, one JSON finding per line.
keys_are() {
  "$PY" - "$@" <<'EOF'
import json, sys
path, want = sys.argv[1], sorted(sys.argv[2:])
lines = [l for l in open(path).read().split("\n") if l]
try:
    docs = [json.loads(l) for l in lines]
except ValueError as e:
    print("# not JSON lines: %s" % e); sys.exit(1)
got = sorted(d.get("access_key_id") for d in docs)
if got != want:
    print("# keys %s, want %s" % (got, want)); sys.exit(1)
for d in docs:
    if d.get("severity") not in ("low", "medium", "high", "critical") or not d.get("outside_source_ips"):
        print("# incomplete finding: %s" % d); sys.exit(1)
EOF
}

# ---- scan a folder ---------------------------------------------------------------------------------
"$CW" scan "$TEST_TMP/trail" >"$TEST_TMP/out" 2>"$TEST_TMP/err"
rc=$?
check "scan DIR exits 0" [ "$rc" -eq 0 ]
check "scan DIR prints exactly the stolen keys" keys_are "$TEST_TMP/out" ASIAQEXAMPLESTOLEN01 ASIAQEXAMPLEMARKED01
check "the issued-then-replayed key is critical, from its outside address" "$PY" -c '
import json, sys
d = {json.loads(l)["access_key_id"]: json.loads(l) for l in open(sys.argv[1]) if l.strip()}
s = d["ASIAQEXAMPLESTOLEN01"]
assert s["severity"] == "critical", s["severity"]
assert s["outside_source_ips"] == ["198.51.100.7"], s["outside_source_ips"]
codes = [r["code"] for r in s["reasons"]]
assert "issued_by_lambda" in codes and "sensitive_action" in codes, codes
' "$TEST_TMP/out"
check "summary line on stderr" grep -qE '^credwatch scan: 5 files \(0 unreadable or corrupt, 1 digests skipped\), 22 records, 4 keys, 2 findings' "$TEST_TMP/err"
check "the digest is skipped, not an error" sh -c "! grep -q 'CloudTrail-Digest.*:' '$TEST_TMP/err'"

"$CW" scan --fail-on-findings "$TEST_TMP/trail" >"$TEST_TMP/out2" 2>/dev/null
rc=$?
check "--fail-on-findings exits 1 with findings" [ "$rc" -eq 1 ]
check "--fail-on-findings still prints them" keys_are "$TEST_TMP/out2" ASIAQEXAMPLESTOLEN01 ASIAQEXAMPLEMARKED01

"$CW" scan --quiet "$TEST_TMP/trail" >"$TEST_TMP/out3" 2>"$TEST_TMP/err3"
rc=$?
check "--quiet: exit 0, no stderr" sh -c "[ $rc -eq 0 ] && [ ! -s '$TEST_TMP/err3' ]"
check "--quiet: same findings" keys_are "$TEST_TMP/out3" ASIAQEXAMPLESTOLEN01 ASIAQEXAMPLEMARKED01

# only the first file: the issuance and inside uses, no replay yet
"$CW" scan --fail-on-findings "$TEST_TMP/trail/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/13/111122223333_CloudTrail_us-east-1_20240313T0835Z_abc.json.gz" >"$TEST_TMP/out4" 2>/dev/null
rc=$?
check "no findings: exit 0 with --fail-on-findings, nothing printed" sh -c "[ $rc -eq 0 ] && [ ! -s '$TEST_TMP/out4' ]"

# ---- a corrupt file among good ones ----------------------------------------------------------------
cp -r "$TEST_TMP/trail" "$TEST_TMP/trail2"
head -c 100 "$TEST_TMP/stdin.json.gz" >"$TEST_TMP/trail2/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/13/111122223333_CloudTrail_us-east-1_20240313T1035Z_bad.json.gz"
printf '{"Records":[{"eventID":' >"$TEST_TMP/trail2/exports/broken.json"
"$CW" scan "$TEST_TMP/trail2" >"$TEST_TMP/out5" 2>"$TEST_TMP/err5"
rc=$?
check "corrupt files: exit 2" [ "$rc" -eq 2 ]
check "corrupt files: findings still printed" keys_are "$TEST_TMP/out5" ASIAQEXAMPLESTOLEN01 ASIAQEXAMPLEMARKED01
check "corrupt files: each named on stderr" sh -c "grep -q '_bad.json.gz: truncated gzip' '$TEST_TMP/err5' && grep -q 'broken.json: malformed JSON' '$TEST_TMP/err5'"
check "corrupt files: counted in the summary" grep -q '7 files (2 unreadable or corrupt' "$TEST_TMP/err5"

# ---- links that make loops ---------------------------------------------------------------------------
# The same trail with a link to a folder itself, one to its parent, one from the top back to the top
# and a second path to the exports: followed as plain folders they are 2^32 paths (timeout: a hang
# fails here); each directory is entered once, so the same 5 files, 22 records and findings.
cp -r "$TEST_TMP/trail" "$TEST_TMP/trail3"
ln -s . "$TEST_TMP/trail3/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/13/self"
ln -s .. "$TEST_TMP/trail3/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/13/up"
ln -s "$TEST_TMP/trail3" "$TEST_TMP/trail3/exports/top"
ln -s exports "$TEST_TMP/trail3/exports-again"
timeout -k 5 60 "$CW" scan "$TEST_TMP/trail3" >"$TEST_TMP/out_links" 2>"$TEST_TMP/err_links"
rc=$?
check "links that make loops: exit 0, in time" [ "$rc" -eq 0 ]
check "links that make loops: each file read once" \
  grep -qE '^credwatch scan: 5 files \(0 unreadable or corrupt, 1 digests skipped\), 22 records, 4 keys, 2 findings' "$TEST_TMP/err_links"
check "links that make loops: the same findings as without the links (but for the time they were made)" "$PY" -c '
import json, sys
def docs(p):
    out = [json.loads(l) for l in open(p) if l.strip()]
    for d in out:
        d.pop("created_at", None), d.pop("updated_at", None)
    return out
a, b = docs(sys.argv[1]), docs(sys.argv[2])
sys.exit(0 if a and a == b else print("# %r\n# %r" % (a, b)) or 1)' "$TEST_TMP/out" "$TEST_TMP/out_links"

"$CW" scan "$TEST_TMP/does-not-exist" >/dev/null 2>"$TEST_TMP/err6"
rc=$?
check "missing path: exit 2 with its name" sh -c "[ $rc -eq 2 ] && grep -q 'does-not-exist' '$TEST_TMP/err6'"

# ---- a directory whose listing runs out of memory --------------------------------------------------
# A shim preloaded into credwatch fails every realloc while the directory named by CW_TEST_OOM_DIR is
# open, after the first: the listing's first allocation works, growing it does not. 100 good files:
# a listing cut where memory ran out would scan some and report success; it must be refused whole,
# named, exit 2. Skipped where a preload cannot be used (a sanitizer runtime must come first).
mkdir "$TEST_TMP/oom" "$TEST_TMP/oom/dir"
i=0
while [ $i -lt 100 ]; do cp "$TEST_TMP/stdin.json.gz" "$TEST_TMP/oom/dir/f$i.json.gz"; i=$((i + 1)); done
cat >"$TEST_TMP/oom_shim.c" <<'EOF'
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
static DIR *armed;     /* the directory being listed */
static int reallocs;   /* reallocs while it is open */
DIR *opendir(const char *name)
{
    DIR *(*real)(const char *) = (DIR * (*)(const char *)) dlsym(RTLD_NEXT, "opendir");
    DIR *d = real(name);
    const char *want = getenv("CW_TEST_OOM_DIR");
    if (d && want && strcmp(name, want) == 0) {
        armed = d;
        reallocs = 0;
    }
    return d;
}
int closedir(DIR *d)
{
    int (*real)(DIR *) = (int (*)(DIR *))dlsym(RTLD_NEXT, "closedir");
    if (d == armed)
        armed = NULL;
    return real(d);
}
void *realloc(void *p, size_t n)
{
    static void *(*real)(void *, size_t);
    if (!real)
        real = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    if (armed && reallocs++ > 0) {
        errno = ENOMEM;
        return NULL;
    }
    return real(p, n);
}
EOF
if ldd "$CW" 2>/dev/null | grep -q 'lib[at]san' ||
   ! cc -shared -fPIC -o "$TEST_TMP/oom_shim.so" "$TEST_TMP/oom_shim.c" -ldl 2>"$TEST_TMP/shim_err" ||
   ! LD_PRELOAD="$TEST_TMP/oom_shim.so" "$CW" scan --help >/dev/null 2>&1; then
  skip "listing out of memory: refused, named, exit 2" "no preload shim here"
else
  LD_PRELOAD="$TEST_TMP/oom_shim.so" CW_TEST_OOM_DIR="$TEST_TMP/oom/dir" "$CW" scan "$TEST_TMP/oom" \
    >"$TEST_TMP/out_oom" 2>"$TEST_TMP/err_oom"
  rc=$?
  check "listing out of memory: exit 2" [ "$rc" -eq 2 ]
  check "listing out of memory: the directory named, the cause given" \
    grep -q "$TEST_TMP/oom/dir: cannot list the directory: out of memory" "$TEST_TMP/err_oom"
  check "listing out of memory: none of its files scanned" grep -q 'credwatch scan: 1 files (1 unreadable' "$TEST_TMP/err_oom"
  # the shim itself: the same scan without CW_TEST_OOM_DIR reads all 100
  LD_PRELOAD="$TEST_TMP/oom_shim.so" "$CW" scan "$TEST_TMP/oom" >/dev/null 2>"$TEST_TMP/err_oom2"
  check "listing out of memory: the shim alone changes nothing" grep -q 'credwatch scan: 100 files (0 unreadable' "$TEST_TMP/err_oom2"
fi

# ---- standard input --------------------------------------------------------------------------------
"$CW" scan - <"$TEST_TMP/stdin.json.gz" >"$TEST_TMP/out7" 2>"$TEST_TMP/err7"
rc=$?
check "- reads standard input (gzip)" sh -c "[ $rc -eq 0 ]"
check "- finds the piped key" keys_are "$TEST_TMP/out7" ASIAQEXAMPLEPIPED001
gzip -dc "$TEST_TMP/stdin.json.gz" | "$CW" scan --fail-on-findings - >"$TEST_TMP/out8" 2>/dev/null
rc=$?
check "- reads plain JSON from a pipe" sh -c "[ $rc -eq 1 ]"
check "- plain: same finding" keys_are "$TEST_TMP/out8" ASIAQEXAMPLEPIPED001

# ---- usage -----------------------------------------------------------------------------------------
"$CW" scan --help >"$TEST_TMP/help" 2>&1
rc=$?
check "--help exits 0" [ "$rc" -eq 0 ]
check "--help mentions every option" sh -c "grep -q -- --fail-on-findings '$TEST_TMP/help' && grep -q -- --quiet '$TEST_TMP/help' && grep -q -- --help '$TEST_TMP/help'"
"$CW" scan --bogus "$TEST_TMP/trail" >/dev/null 2>&1
rc=$?
check "an unknown option exits 2" [ "$rc" -eq 2 ]
"$CW" scan >/dev/null 2>&1
rc=$?
check "no PATH exits 2" [ "$rc" -eq 2 ]
# one parser: "--" ends the options, so a file named --quiet is a path and not the flag
mkdir "$TEST_TMP/dash" && gzip -dc "$TEST_TMP/stdin.json.gz" >"$TEST_TMP/dash/--quiet"
(cd "$TEST_TMP/dash" && "$CW" scan -- --quiet >"$TEST_TMP/out9" 2>"$TEST_TMP/err9")
rc=$?
check "-- then --quiet: the file is scanned, and not taken as the flag" sh -c "[ $rc -eq 0 ] && grep -q 'credwatch scan: 1 files' '$TEST_TMP/err9'"
check "-- then --quiet: its finding" keys_are "$TEST_TMP/out9" ASIAQEXAMPLEPIPED001
(cd "$TEST_TMP/dash" && "$CW" scan --quiet -- --quiet >"$TEST_TMP/out10" 2>"$TEST_TMP/err10")
check "--quiet -- --quiet: quiet, and the file scanned" sh -c "[ ! -s '$TEST_TMP/err10' ]" 
check "--quiet -- --quiet: its finding" keys_are "$TEST_TMP/out10" ASIAQEXAMPLEPIPED001

# ---- workloads (issue 14): CREDWATCH_WORKLOADS and --workloads --------------------------------------
# Three stolen keys in one file: an ECS task's (its issuance seen), an EC2 instance's (only its
# AWS-written ec2RoleDelivery), a Lambda function's (marker); each replayed from 198.51.100.7,
# which AWS's ranges (loaded: without them an address cannot be told outside) do not hold.
export CREDWATCH_AWS_IP_RANGES="$root/tests/data/aws-ip-ranges-2026-08-22.json"
"$PY" - "$TEST_TMP/wl.json" <<'EOF'
import json, sys
A = "111122223333"
def ui(key, session, extra=None):
    u = {"type": "AssumedRole", "arn": "arn:aws:sts::%s:assumed-role/r/%s" % (A, session), "accountId": A,
         "accessKeyId": key, "sessionContext": {"attributes": {"creationDate": "2024-03-13T08:00:00Z"}}}
    if extra:
        u["sessionContext"].update(extra)
    return u
def use(eid, key, session, ip, ua, extra=None, t="2024-03-13T08:30:00Z"):
    return {"eventVersion": "1.08", "userIdentity": ui(key, session, extra), "eventTime": t,
            "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets", "awsRegion": "us-east-1",
            "sourceIPAddress": ip, "userAgent": ua, "eventID": eid, "recipientAccountId": A}
CLI = "aws-cli/1.16.19 Python/2.7.10 Darwin/17.7.0 botocore/1.12.9"
recs = [
    {"eventVersion": "1.08", "userIdentity": {"type": "AWSService", "invokedBy": "ecs-tasks.amazonaws.com"},
     "eventTime": "2024-03-13T08:00:00Z", "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
     "awsRegion": "us-east-1", "sourceIPAddress": "ecs-tasks.amazonaws.com", "userAgent": "ecs-tasks.amazonaws.com",
     "requestParameters": {"roleArn": "arn:aws:iam::%s:role/task" % A, "roleSessionName": "0b6a3c543f0e4d529b1e6c1d2e3f4a5b"},
     "responseElements": {"credentials": {"accessKeyId": "ASIAQEXAMPLEWLECS001", "expiration": "Mar 13, 2024, 2:00:00 PM"}},
     "eventID": "wl-1", "recipientAccountId": A},
    use("wl-2", "ASIAQEXAMPLEWLECS001", "0b6a3c543f0e4d529b1e6c1d2e3f4a5b", "198.51.100.7", CLI),
    use("wl-3", "ASIAQEXAMPLEWLEC2001", "i-0abcdef1234567890", "198.51.100.7", CLI, {"ec2RoleDelivery": "2.0"}),
    use("wl-4", "ASIAQEXAMPLEWLLAM001", "orders-fn", "198.51.100.7", "Boto3/1.34.20 exec-env/AWS_Lambda_python3.12"),
]
json.dump({"Records": recs}, open(sys.argv[1], "w"))
EOF
"$CW" scan "$TEST_TMP/wl.json" >"$TEST_TMP/wl_all" 2>"$TEST_TMP/wl_err"
check "workloads: every kind is judged by default" keys_are "$TEST_TMP/wl_all" ASIAQEXAMPLEWLECS001 ASIAQEXAMPLEWLEC2001 ASIAQEXAMPLEWLLAM001
check "workloads: each finding names its workload" "$PY" -c '
import json, sys
got = {d["access_key_id"]: (d["workload"]["kind"], d["workload"]["id"], d["function_name"]) for d in map(json.loads, open(sys.argv[1]))}
want = {"ASIAQEXAMPLEWLECS001": ("ecs", "0b6a3c543f0e4d529b1e6c1d2e3f4a5b", None),
        "ASIAQEXAMPLEWLEC2001": ("ec2", "i-0abcdef1234567890", None),
        "ASIAQEXAMPLEWLLAM001": ("lambda", "orders-fn", "orders-fn")}
sys.exit(0 if got == want else print("# got %r" % got) or 1)' "$TEST_TMP/wl_all"
"$CW" scan --format asff "$TEST_TMP/wl.json" >"$TEST_TMP/wl_asff" 2>"$TEST_TMP/wl_err"
check "workloads: every finding converts to ASFF, the unissued EC2 key's too (its region: its calls')" "$PY" -c '
import json, sys
docs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
regions = sorted(r.get("Region") for d in docs for r in d["Resources"][:1])
types = sorted({r["Type"] for d in docs for r in d["Resources"]})
ok = len(docs) == 3 and regions == ["us-east-1"] * 3 and "AwsEc2Instance" in types and "AwsLambdaFunction" in types
sys.exit(0 if ok else print("# %d docs, regions %r, types %r" % (len(docs), regions, types)) or 1)' "$TEST_TMP/wl_asff"
"$CW" scan --workloads lambda,ec2 "$TEST_TMP/wl.json" >"$TEST_TMP/wl_le" 2>"$TEST_TMP/wl_err"
check "workloads: --workloads lambda,ec2 leaves the ECS task's key out" keys_are "$TEST_TMP/wl_le" ASIAQEXAMPLEWLEC2001 ASIAQEXAMPLEWLLAM001
check "workloads: the records are still all read (4 records, 3 keys)" grep -q '4 records, 3 keys, 2 findings' "$TEST_TMP/wl_err"
CREDWATCH_WORKLOADS=ecs "$CW" scan "$TEST_TMP/wl.json" >"$TEST_TMP/wl_env" 2>/dev/null
check "workloads: CREDWATCH_WORKLOADS=ecs judges the task's key only" keys_are "$TEST_TMP/wl_env" ASIAQEXAMPLEWLECS001
CREDWATCH_WORKLOADS=ecs "$CW" scan --workloads all "$TEST_TMP/wl.json" >"$TEST_TMP/wl_over" 2>/dev/null
check "workloads: --workloads overrides CREDWATCH_WORKLOADS" keys_are "$TEST_TMP/wl_over" ASIAQEXAMPLEWLECS001 ASIAQEXAMPLEWLEC2001 ASIAQEXAMPLEWLLAM001
"$CW" scan --workloads lambda,fargate "$TEST_TMP/wl.json" >"$TEST_TMP/wl_bad" 2>"$TEST_TMP/wl_bad_err"
rc=$?
check "workloads: an unknown name exits 2, naming the option and the entry" sh -c "[ $rc -eq 2 ] && [ ! -s '$TEST_TMP/wl_bad' ] && grep -q -- '--workloads: workload 2 \"fargate\" is unknown' '$TEST_TMP/wl_bad_err'"
CREDWATCH_WORKLOADS="lambda,," "$CW" scan "$TEST_TMP/wl.json" >/dev/null 2>"$TEST_TMP/wl_bad_err"
rc=$?
check "workloads: a stray comma in CREDWATCH_WORKLOADS exits 2, naming the variable" sh -c "[ $rc -eq 2 ] && grep -q 'CREDWATCH_WORKLOADS: workload 2 is empty' '$TEST_TMP/wl_bad_err'"
# serve reads the same variable: an unknown name stops its start (bounded: a start that went on
# listening would be stopped by timeout and fail the check)
timeout 20 env CREDWATCH_WORKLOADS=ecs,lambdas CREDWATCH_LISTEN=127.0.0.1:0 "$CW" serve >"$TEST_TMP/wl_serve" 2>&1
rc=$?
check "workloads: serve with an unknown CREDWATCH_WORKLOADS exits 2 naming it" sh -c "[ $rc -eq 2 ] && grep -q 'CREDWATCH_WORKLOADS: workload 2 \"lambdas\" is unknown' '$TEST_TMP/wl_serve'"
unset CREDWATCH_AWS_IP_RANGES

[ "$fails" -eq 0 ]
