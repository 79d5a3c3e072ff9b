#!/usr/bin/python3
"""scan_parts.py — an archive in three parts for multi-process scans, and the comparison of their results
(tests/it_scan_cluster.sh, tests/bench_scan_multi.sh).

  scan_parts.py gen DIR [--keys N] [--filler N [--filler-uses U] [--spread]] [--seed S] [--files F]
      DIR/p1, DIR/p2, DIR/p3: gzip CloudTrail files (F per part, records shuffled). Every group of keys
      below is spread so that one part alone cannot judge it:
        T  issuance, inside uses and outside uses each in a different part (all 6 orders)
        S  issuance + inside in one part, two outside uses in the two others (counts add across parts)
        D  as T, and its first outside record delivered twice, in two parts (CloudTrail's duplicates)
        M  no issuance: marked inside use in one part, replay from outside in another
        W  a key wholly in one part (issuance, inside, outside)
        N  issued in one part, used only inside in the two others: no finding
        U  a non-workload session used from many addresses across parts: no finding
        F  (--filler N) one inside use each (--filler-uses U: U of them), in part 2 (--spread: in
           each part in turn): no finding; makes part 2 long enough to be killed while it writes, or
           the archive more like a real one, where few keys are stolen (the benchmark)
      Prints a JSON summary: records per part, keys per group, the ids expected to be findings.
  scan_parts.py compare WHOLE REPORT [SHARE...]
      WHOLE (one in-memory scan of all parts) and REPORT (scan --report after the parts) must hold the
      same finding ids, each once, sorted by id, and the same documents but for the fields stripped
      (STRIPPED, below); the ids of the SHAREs (each part's own output) together must be REPORT's ids.
"""
import gzip
import json
import os
import random
import sys

ACCT = "111122223333"
ROLE = "arn:aws:iam::%s:role/orders-fn-role" % ACCT
UA_PY = ("Boto3/1.34.20 md/Botocore#1.34.20 ua/2.0 os/linux#5.10 lang/python#3.12.1 "
         "exec-env/AWS_Lambda_python3.12 Botocore/1.34.20")
UA_CLI = "aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 source/x86_64.ubuntu.22 prompt/off command/sts.get-caller-identity"
# Per-run fields, and only those: the store's wall-clock times of the finding's first and last write.
# Everything else (evidence, counts, severity, reasons, status, note) is a function of the events.
STRIPPED = ("created_at", "updated_at")

_n = [0]


def eid():
    _n[0] += 1
    return "00000000-0000-4000-8000-%012d" % _n[0]


def at(minute, second=0):
    return "2024-03-13T%02d:%02d:%02dZ" % (8 + minute // 60, minute % 60, second)


def issue(key, t, fn):
    return {"eventVersion": "1.08", "userIdentity": {"type": "AWSService", "invokedBy": "lambda.amazonaws.com"},
            "eventTime": t, "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole", "awsRegion": "us-east-1",
            "sourceIPAddress": "lambda.amazonaws.com", "userAgent": "lambda.amazonaws.com",
            "requestParameters": {"roleArn": ROLE, "roleSessionName": fn},
            "responseElements": {"credentials": {"accessKeyId": key, "sessionToken": "IQoJb3JpZ2luX2VjE",
                                                 "expiration": "Mar 13, 2024, 8:00:00 PM"}},
            "eventID": eid(), "eventType": "AwsApiCall", "recipientAccountId": ACCT}


def use(key, t, ip, ua, source="sts.amazonaws.com", name="GetCallerIdentity", session="orders-fn"):
    return {"eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLE:" + session,
                             "arn": "arn:aws:sts::%s:assumed-role/orders-fn-role/%s" % (ACCT, session),
                             "accountId": ACCT, "accessKeyId": key,
                             "sessionContext": {"sessionIssuer": {"type": "Role", "arn": ROLE},
                                                "attributes": {"creationDate": "2024-03-13T08:00:00Z"}}},
            "eventTime": t, "eventSource": source, "eventName": name, "awsRegion": "us-east-1",
            "sourceIPAddress": ip, "userAgent": ua, "requestParameters": None, "responseElements": None,
            "eventID": eid(), "eventType": "AwsApiCall", "recipientAccountId": ACCT}


ORDERS = [(0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0)]


def key_records(group, i, rng):
    """(records by part, finding expected) of key i of a group."""
    key = "ASIAQ%s%014d" % (group, i)
    fn = "fn-%d" % (i % 7)
    inside_ip = "3.5.140.%d" % (i % 250)
    thief_ip = "198.51.100.%d" % (i % 250)
    parts = [[], [], []]
    o = ORDERS[i % 6]
    inside = [use(key, at(1, s), inside_ip, UA_PY, "dynamodb.amazonaws.com", "PutItem", fn) for s in (5, 9)]
    outside = [use(key, at(60 + i % 50), thief_ip, UA_CLI),
               use(key, at(61 + i % 50), thief_ip, UA_CLI, "iam.amazonaws.com", "CreateUser" if i % 2 else "ListUsers", fn)]
    if group in "TD":
        parts[o[0]].append(issue(key, at(0), fn))
        parts[o[1]] += inside
        parts[o[2]] += outside
        if group == "D":
            parts[o[0]].append(outside[0])  # the same record (same id, same content) again
        return parts, True
    if group == "S":
        parts[o[0]] += [issue(key, at(0), fn)] + inside
        parts[o[1]].append(outside[0])
        parts[o[2]].append(outside[1])
        return parts, True
    if group == "M":
        parts[o[0]] += inside
        parts[o[1]] += outside
        return parts, True
    if group == "W":
        parts[o[0]] += [issue(key, at(0), fn)] + inside + outside
        return parts, True
    if group == "N":
        parts[o[0]].append(issue(key, at(0), fn))
        parts[o[1]].append(inside[0])
        parts[o[2]].append(inside[1])
        return parts, False
    if group == "U":
        for p in range(3):
            parts[p] += [use(key, at(10 * p + j), "203.0.113.%d" % (10 * p + j), UA_CLI, session="alice")
                         for j in range(3)]
        return parts, False
    if group == "F":
        p = i % 3 if rng.spread else 1
        parts[p] += [use(key, at(2 + u), inside_ip, UA_PY, "s3.amazonaws.com", "GetObject", fn)
                     for u in range(rng.uses)]
        return parts, False
    raise ValueError(group)


def write_part(top, p, records, files, rng):
    rng.shuffle(records)
    d = os.path.join(top, "p%d" % (p + 1), "AWSLogs", ACCT, "CloudTrail", "us-east-1", "2024", "03", "13")
    os.makedirs(d, exist_ok=True)
    per = max(1, -(-len(records) // files))
    for f in range(files):
        chunk = records[f * per:(f + 1) * per]
        if not chunk:
            break
        name = "%s_CloudTrail_us-east-1_20240313T%02d%02dZ_p%d.json.gz" % (ACCT, f // 60, f % 60, p + 1)
        with gzip.open(os.path.join(d, name), "wt", compresslevel=1) as out:
            json.dump({"Records": chunk}, out)


def gen(argv):
    top = argv[0]
    flags = [a for a in argv[1:] if a == "--spread"]
    rest = [a for a in argv[1:] if a != "--spread"]
    opts = dict(zip(rest[0::2], rest[1::2]))
    argv = argv[:1] + flags
    keys = int(opts.get("--keys", 60))     # per group
    filler = int(opts.get("--filler", 0))
    files = int(opts.get("--files", 4))
    rng = random.Random(int(opts.get("--seed", 17)))
    rng.spread = "--spread" in argv
    rng.uses = int(opts.get("--filler-uses", 1))
    parts = [[], [], []]
    expected = []
    groups = {}
    for group in "TDSMWNU":
        for i in range(keys):
            recs, finding = key_records(group, i, rng)
            for p in range(3):
                parts[p] += recs[p]
            if finding:
                expected.append("cwf-ASIAQ%s%014d" % (group, i))
        groups[group] = keys
    for i in range(filler):
        recs, _ = key_records("F", i, rng)
        for p in range(3):
            parts[p] += recs[p]
    groups["F"] = filler
    for p in range(3):
        write_part(top, p, parts[p], files, rng)
    print(json.dumps({"records": [len(x) for x in parts], "groups": groups, "expected": sorted(expected)}))


def load(path):
    docs = [json.loads(line) for line in open(path) if line.strip()]
    return docs


def compare(argv):
    whole, report, shares = load(argv[0]), load(argv[1]), argv[2:]
    problems = []
    for name, docs in (("whole", whole), ("report", report)):
        ids = [d["id"] for d in docs]
        if ids != sorted(ids):
            problems.append("%s: not sorted by finding id" % name)
        if len(ids) != len(set(ids)):
            problems.append("%s: a finding printed twice" % name)
    w = {d["id"]: d for d in whole}
    r = {d["id"]: d for d in report}
    if set(w) != set(r):
        problems.append("ids differ: only in the whole scan %s, only in the report %s"
                        % (sorted(set(w) - set(r))[:5], sorted(set(r) - set(w))[:5]))
    differ = 0
    for i in sorted(set(w) & set(r)):
        a = {k: v for k, v in w[i].items() if k not in STRIPPED}
        b = {k: v for k, v in r[i].items() if k not in STRIPPED}
        if a != b:
            differ += 1
            if differ <= 3:
                keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                problems.append("%s differs in %s: whole %s, report %s"
                                % (i, keys, [a.get(k) for k in keys], [b.get(k) for k in keys]))
    if differ:
        problems.append("%d documents differ" % differ)
    if shares:
        union = set()
        for s in shares:
            union |= {d["id"] for d in load(s)}
        if union != set(r):
            problems.append("union of the shares != report: missing %s, extra %s"
                            % (sorted(set(r) - union)[:5], sorted(union - set(r))[:5]))
    for p in problems:
        print("# " + p)
    print("# %d findings in the whole scan, %d in the report, %d share files" % (len(w), len(r), len(shares)))
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "gen":
        gen(sys.argv[2:])
    elif len(sys.argv) >= 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2:]))
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)
