#!/usr/bin/python3
"""serve_gen.py — helpers of tests/bench_serve.sh (stdlib only).

  templates DIR        writes the request-body templates the load generators fill in:
                         ct_batch.tmpl  one CloudTrail file of 1,000 records (~1.6 KB each)
                         eb_NN.tmpl     61 single EventBridge events: 10 keys x (issuance + 5 marked
                                        inside uses) + 1 outside use (10 % of keys stolen)
                       In every template `@N@` stands for an 8-character tag the generator puts
                       there per request (wrk: tests/bench/template.lua; paced: bench_load), so
                       every request carries new access keys and new event ids.
  ingest PORT N TOKEN  ingests N typical Lambda keys (issuance + 5 marked inside uses, an outside
                       use for 10 %) in CloudTrail batches of 1,000 records; prints the record count
  firehose PORT TOKEN TMPL N CONNS RUN
                       POST /v1/ingest/firehose: N requests, each the 1,000 records of TMPL (ct_batch.tmpl,
                       a fresh tag per request) as 500 CloudWatch Logs subscription messages of 2 log
                       events (gzip, base64: as a subscription filter's Firehose delivers them), built
                       before the clock starts and posted over CONNS keep-alive connections; prints
                       records/s, records accepted, duplicates, failed requests, body bytes per request
  memory RPORT N       MEMORY USAGE of the N keys' state: cw:k2:{AKID} (with its dedup hashes), or for
                       a release before issue 17 cw:k:{AKID} + its set cw:s:{AKID}: median, p95, mean
  info RPORT           used_memory from INFO memory
  median V...          the median
"""
import base64
import gzip
import http.client
import json
import os
import random
import socket
import statistics
import sys
import threading
import time

ACCT = "111122223333"
ROLE = "arn:aws:iam::%s:role/orders-fn-role" % ACCT
FN = "orders-fn"
INSIDE_IPS = ["3.5.140.2", "3.5.140.3", "3.5.140.4"]
OUT_IP = "198.51.100.7"
UA_PY = ("Boto3/1.34.20 md/Botocore#1.34.20 ua/2.0 os/linux#5.10.210-219.830.amzn2.x86_64 md/arch#x86_64 "
         "lang/python#3.12.1 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.20")
UA_CLI = ("aws-cli/2.15.0 md/awscrt#0.19.19 ua/2.0 os/macos#23.2.0 md/arch#arm64 lang/python#3.11.6 "
          "md/pyimpl#CPython cfg/retry-mode#standard md/installer#source md/prompt#off md/command#s3.ls")
INSIDE_ACTIONS = [("dynamodb", "PutItem"), ("dynamodb", "GetItem"), ("s3", "GetObject"), ("sqs", "SendMessage"),
                  ("dynamodb", "Query")]
rnd = random.Random(7)


def ts(sec):
    m, s = divmod(sec, 60)
    h, m = divmod(m, 60)
    return "2024-03-13T%02d:%02d:%02dZ" % (8 + h, m, s)


def eid(key_tag, n):
    # a GUID whose first group is the request tag: unique per request, key and event
    return "%s-%04d-4%03d-8000-%012d" % (key_tag, n // 1000, n % 1000, rnd.getrandbits(40))


def issuance(akid, n, base):
    return {"eventVersion": "1.08", "userIdentity": {"type": "AWSService", "invokedBy": "lambda.amazonaws.com"},
            "eventTime": ts(base), "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
            "awsRegion": "us-east-1", "sourceIPAddress": "lambda.amazonaws.com",
            "userAgent": "lambda.amazonaws.com",
            "requestParameters": {"roleArn": ROLE, "roleSessionName": FN, "durationSeconds": 43200},
            "responseElements": {"credentials": {"accessKeyId": akid,
                                                 "sessionToken": "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD" + "x" * 300,
                                                 "expiration": "Mar 13, 2024, 8:33:21 PM"},
                                 "assumedRoleUser": {"assumedRoleId": "AROAEXAMPLEID:" + FN,
                                                     "arn": "arn:aws:sts::%s:assumed-role/orders-fn-role/%s" % (ACCT, FN)}},
            "requestID": eid("@N@", n + 500000), "eventID": eid("@N@", n), "readOnly": True,
            "resources": [{"accountId": ACCT, "type": "AWS::IAM::Role", "ARN": ROLE}],
            "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCT,
            "sharedEventID": "5d2c7f3e-1b2a-4c3d-9e8f-%012d" % n, "eventCategory": "Management"}


def use(akid, n, base, sec, ip, ua, svc, name):
    return {"eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLEID:" + FN,
                             "arn": "arn:aws:sts::%s:assumed-role/orders-fn-role/%s" % (ACCT, FN),
                             "accountId": ACCT, "accessKeyId": akid,
                             "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEID",
                                                                  "arn": ROLE, "accountId": ACCT,
                                                                  "userName": "orders-fn-role"},
                                                "webIdFederationData": {},
                                                "attributes": {"creationDate": ts(base),
                                                               "mfaAuthenticated": "false"}}},
            "eventTime": ts(base + sec), "eventSource": svc + ".amazonaws.com", "eventName": name,
            "awsRegion": "us-east-1", "sourceIPAddress": ip, "userAgent": ua,
            "requestParameters": {"tableName": "orders", "key": {"pk": {"S": "order#%d" % n}},
                                  "consistentRead": False},
            "responseElements": None, "requestID": "%032X" % rnd.getrandbits(128), "eventID": eid("@N@", n),
            "readOnly": False, "resources": [{"accountId": ACCT, "type": "AWS::DynamoDB::Table",
                                               "ARN": "arn:aws:dynamodb:us-east-1:%s:table/orders" % ACCT}],
            "eventType": "AwsApiCall", "apiVersion": "2012-08-10", "managementEvent": False,
            "recipientAccountId": ACCT, "eventCategory": "Data",
            "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                           "clientProvidedHostHeader": svc + ".us-east-1.amazonaws.com"}}


def key_events(akid, k, stolen, n0):
    """Issuance + 5 marked inside uses (+ 1 outside use when stolen) of one key."""
    base = (k % 600) * 5
    ev = [issuance(akid, n0, base)]
    for j in range(5):
        svc, name = INSIDE_ACTIONS[j]
        ev.append(use(akid, n0 + 1 + j, base, 2 + j, INSIDE_IPS[k % 3], UA_PY, svc, name))
    if stolen:
        ev.append(use(akid, n0 + 6, base, 1800, OUT_IP, UA_CLI, "s3", "ListBuckets"))
    return ev


def batch_records(n_records, akid_fmt, first_key=0):
    recs, k = [], first_key
    while len(recs) < n_records:
        recs += key_events(akid_fmt % k, k, k % 10 == 0, k * 10)
        k += 1
    recs = recs[:n_records]
    rnd.shuffle(recs)
    return recs, k - first_key


def cmd_templates(out):
    os.makedirs(out, exist_ok=True)
    recs, nkeys = batch_records(1000, "ASIA@N@%08d")
    body = json.dumps({"Records": recs}, separators=(",", ":"))
    with open(os.path.join(out, "ct_batch.tmpl"), "w") as f:
        f.write(body)
    evs = []
    for k in range(10):
        evs += key_events("ASIA@N@%08d" % k, k, k == 0, k * 10)
    for i, r in enumerate(evs):
        e = {"version": "0", "id": eid("@N@", 900000 + i), "detail-type": "AWS API Call via CloudTrail",
             "source": "aws." + r["eventSource"].split(".")[0], "account": ACCT, "time": r["eventTime"],
             "region": r["awsRegion"], "resources": [], "detail": r}
        with open(os.path.join(out, "eb_%02d.tmpl" % i), "w") as f:
            f.write(json.dumps(e, separators=(",", ":")))
    print("%d %d %d %d" % (len(recs), nkeys, len(body), len(evs)))


def cmd_ingest(port, n, token):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    total, k = 0, 0
    while k < n:
        recs = []
        while k < n and len(recs) < 1000:
            recs += key_events("ASIAMEM%013d" % k, k, k % 10 == 0, k * 10)
            k += 1
        body = json.dumps({"Records": recs}, separators=(",", ":")).replace("@N@", "%08X" % (k // 100))
        c.request("POST", "/v1/ingest/cloudtrail", body=body,
                  headers={"Content-Type": "application/json", "Authorization": "Bearer " + token})
        r = c.getresponse()
        d = json.loads(r.read())
        if r.status != 200 or d["duplicates"]:
            sys.exit("ingest failed: %s %r" % (r.status, d))
        total += len(recs)
    print(total)


def resp_read(f):
    line = f.readline()
    t, rest = line[:1], line[1:-2]
    if t in (b"+", b"-"):
        return rest.decode()
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2].decode()
    if t == b"*":
        return [resp_read(f) for _ in range(int(rest))]
    raise ValueError(line)


def redis_cmds(port, cmds):
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    out = []
    for c in cmds:
        out.append(b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in c))
    s.sendall(b"".join(out))
    f = s.makefile("rb")
    res = [resp_read(f) for _ in cmds]
    s.close()
    return res


def cmd_memory(port, n):
    akids = ["ASIAMEM%013d" % k for k in range(n)]
    cmds = []
    # this release's cw:k2 (state with its dedup hashes), or a release before issue 17's cw:k (state) + cw:s (hashes)
    for a in akids:
        for k in ("k2", "k", "s"):
            cmds.append(["MEMORY", "USAGE", "cw:%s:{%s}" % (k, a), "SAMPLES", "0"])
    res = [v or 0 for v in redis_cmds(port, cmds)]
    state = [res[3 * i] + res[3 * i + 1] for i in range(n)]
    seen = [res[3 * i + 2] for i in range(n)]
    per_key = sorted(state[i] + seen[i] for i in range(n))
    missing = sum(1 for v in state if not v)
    p95 = per_key[int(0.95 * (len(per_key) - 1))]
    stolen = [state[i] + seen[i] for i in range(n) if i % 10 == 0]
    clean = sorted(state[i] + seen[i] for i in range(n) if i % 10)
    # median p95 mean missing | state median, seen-set median | stolen median, clean median, clean p95
    print("%d %d %.0f %d %d %d %d %d %d" % (statistics.median(per_key), p95, statistics.mean(per_key), missing,
                                            statistics.median(state), statistics.median(seen),
                                            statistics.median(stolen), statistics.median(clean),
                                            clean[int(0.95 * (len(clean) - 1))]))


def cmd_info(port):
    text = redis_cmds(port, [["INFO", "memory"]])[0]
    for line in text.splitlines():
        if line.startswith("used_memory:"):
            print(line.split(":")[1])


FH_MESSAGES = 500      # CloudWatch Logs messages (Firehose records) per request
FH_EVENTS = 2          # log events per message: 1,000 CloudTrail records per request, as ct_batch


def firehose_body(text, tag, rid):
    recs = json.loads(text.replace("@N@", tag))["Records"]
    datas = []
    for m in range(FH_MESSAGES):
        part = recs[m * FH_EVENTS:(m + 1) * FH_EVENTS]
        msg = {"messageType": "DATA_MESSAGE", "owner": ACCT, "logGroup": "aws-cloudtrail-logs",
               "logStream": ACCT + "_CloudTrail_us-east-1", "subscriptionFilters": ["credwatch"],
               "logEvents": [{"id": "%056d" % (m * FH_EVENTS + i), "timestamp": 1710318801000,
                              "message": json.dumps(r, separators=(",", ":"))} for i, r in enumerate(part)]}
        datas.append({"data": base64.b64encode(gzip.compress(json.dumps(msg).encode(), 6)).decode()})
    return json.dumps({"requestId": rid, "timestamp": int(time.time() * 1000), "records": datas}).encode()


def cmd_firehose(port, token, tmpl, n, conns, run):
    text = open(tmpl).read()
    bodies = [firehose_body(text, "%XF%06X" % (run % 16, i), "bench-%d-%d" % (run, i)) for i in range(n)]
    lock = threading.Lock()
    state = {"next": 0, "accepted": 0, "dups": 0, "failed": 0}

    def worker():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=180)
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= n:
                break
            c.request("POST", "/v1/ingest/firehose", body=bodies[i],
                      headers={"Content-Type": "application/json", "X-Amz-Firehose-Access-Key": token,
                               "X-Amz-Firehose-Request-Id": "bench-%d-%d" % (run, i)})
            r = c.getresponse()
            r.read()
            with lock:
                if r.status != 200 or r.getheader("X-Credwatch-Rejected") != "0":
                    state["failed"] += 1
                state["accepted"] += int(r.getheader("X-Credwatch-Accepted") or 0)
                state["dups"] += int(r.getheader("X-Credwatch-Duplicates") or 0)
        c.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    print("%.0f %d %d %d %d" % (n * FH_MESSAGES * FH_EVENTS / dt, state["accepted"], state["dups"], state["failed"],
                                sum(len(b) for b in bodies) // n))


def main():
    cmd = sys.argv[1]
    if cmd == "templates":
        cmd_templates(sys.argv[2])
    elif cmd == "ingest":
        cmd_ingest(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    elif cmd == "firehose":
        cmd_firehose(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]))
    elif cmd == "memory":
        cmd_memory(int(sys.argv[2]), int(sys.argv[3]))
    elif cmd == "info":
        cmd_info(int(sys.argv[2]))
    elif cmd == "median":
        print(statistics.median(float(v) for v in sys.argv[2:]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
