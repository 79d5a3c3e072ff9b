#!/usr/bin/python3
"""multi_test.py — several `credwatch serve` instances over one real Redis (driven by tests/it_multi.sh).

Phases, each printing `ok - name` / `not ok - name`:
  1. 100 keys, issuance + marked inside uses sent to instance A and outside uses to instance B,
     concurrently, in shuffled orders, as single EventBridge events and CloudTrail batches (some
     gzip): exactly 100 findings, each readable and listed from every instance, identical key
     counts everywhere, equal to the distinct events sent; findings created exactly once.
  2. The same batch posted twice, to different instances: the second answer is all duplicates,
     nothing changes.
  3. The same batch posted to the 3 instances at the same moment: applied exactly once.
  4. Redis (now with an fsync'd append-only file, so acknowledged writes survive) SIGKILLed and
     restarted on the same port while a loader posts: 503 + Retry-After during the outage (never
     4xx, never 2xx), /readyz 503 and /healthz 200 then; ready again within seconds without a
     restart of the service; every acknowledged event counted once.
  5. SIGTERM to an instance under load: requests in flight complete with 2xx, exit status 0.

Only processes this script starts are stopped, by pid; their pids are also appended to
PIDFILE so the calling shell's trap can stop them if this script dies. Loopback only, stdlib only.
With CW_REDIS_TLS_DIR (tests/it_redis_tls.sh), the same over TLS: Redis on a TLS port only, the instances
on rediss:// with CREDWATCH_REDIS_CA_FILE from the environment (see harness.py).
usage: multi_test.py BIN TMPDIR PIDFILE
"""
import glob
import gzip
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid

import harness

BIN, TMP, PIDFILE = sys.argv[1], sys.argv[2], sys.argv[3]
# The phases here count exact acknowledgements, so a Redis merely slow on a loaded machine (AOF with
# appendfsync always) must not turn into 503s; outages here are kills (refused at once), which no
# timeout hides. 3 s stays well inside the senders' 5 s deadline.
REDIS_TIMEOUT_MS = "3000"
TOK_IN = "ingest-token-multi-0123456789"
TOK_RD = "read-token-multi-0123456789ab"
HOST = "127.0.0.1"
REQ_TIMEOUT = 20          # seconds per HTTP request
START_TIMEOUT = 10        # seconds for a process to come up
rnd = random.Random(int(os.environ.get("MULTI_SEED", "20240313")))

R = harness.Report()
ok, nok, check = R.ok, R.nok, R.check
PROCS = harness.Procs(PIDFILE)   # every process we started, stopped in main()


# ---- processes ---------------------------------------------------------------------------------

def redis_start(port, aof_dir=None):
    """This suite's Redis on `port`: no persistence, or an fsync'd append-only file in aof_dir (so that
    what it acknowledged survives a SIGKILL)."""
    args = harness.AOF_ALWAYS if aof_dir else ("--appendonly", "no")
    return harness.Redis(aof_dir or TMP, port, args, os.path.join(TMP, "redis-%d.log" % port), PROCS,
                         START_TIMEOUT).start()


def serve(name, **env):
    """Instance `name` with this suite's tokens and 4 threads; `env` names the store and its timeouts."""
    env = dict(CREDWATCH_INGEST_TOKENS=TOK_IN, CREDWATCH_READ_TOKENS=TOK_RD, CREDWATCH_THREADS="4", **env)
    return harness.Instance(BIN, os.path.join(TMP, "credwatch-%s.log" % name), env, name, PROCS, START_TIMEOUT)


# ---- HTTP --------------------------------------------------------------------------------------

def Client(port):
    return harness.Client(port, REQ_TIMEOUT)


def read_get(port, path):
    c = Client(port)
    try:
        return c.request("GET", path, headers={"Authorization": "Bearer " + TOK_RD})
    finally:
        c.close()


# ---- CloudTrail records (shapes as in tests/cases/make_cases.py) -------------------------------

ACCT = "111122223333"
ROLE = "arn:aws:iam::%s:role/orders-fn-role" % ACCT
FN = "orders-fn"
INSIDE_IPS = ["3.5.140.2", "3.5.140.3", "3.5.140.4"]     # AWS us-east-1: where functions run


def inside_ip(key):
    """The one egress address of a key's execution environment: a second address of the same key is
    another host (inside_aws, docs/detection.md), so each key keeps to one of INSIDE_IPS."""
    return INSIDE_IPS[sum(map(ord, key)) % len(INSIDE_IPS)]
OUT_IPS = ["198.51.100.7", "198.51.100.8", "203.0.113.9"]  # the attacker's machines
UA_PY = ("Boto3/1.34.20 md/Botocore#1.34.20 ua/2.0 os/linux#5.10 md/arch#x86_64 lang/python#3.12.1 "
         "md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.20")
UA_CLI = "aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 source/x86_64.ubuntu.22 prompt/off command/sts.get-caller-identity"
INSIDE_ACTIONS = [("dynamodb.amazonaws.com", "PutItem"), ("s3.amazonaws.com", "GetObject"),
                  ("sqs.amazonaws.com", "SendMessage"), ("dynamodb.amazonaws.com", "Query")]
OUT_ACTIONS = [("sts.amazonaws.com", "GetCallerIdentity"), ("s3.amazonaws.com", "ListBuckets"),
               ("iam.amazonaws.com", "ListUsers")]


def ts(base, sec):
    t = time.gmtime(base + sec)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", t)


def issuance(key, base):
    return {"eventVersion": "1.08", "userIdentity": {"type": "AWSService", "invokedBy": "lambda.amazonaws.com"},
            "eventTime": ts(base, 0), "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
            "awsRegion": "us-east-1", "sourceIPAddress": "lambda.amazonaws.com", "userAgent": "lambda.amazonaws.com",
            "requestParameters": {"roleArn": ROLE, "roleSessionName": FN},
            "responseElements": {"credentials": {"accessKeyId": key, "sessionToken": "IQoJb3JpZ2luX2VjE...",
                                                 "expiration": time.strftime("%b %d, %Y, %I:%M:%S %p",
                                                                             time.gmtime(base + 12 * 3600))}},
            "requestID": str(uuid.UUID(int=rnd.getrandbits(128))), "eventID": str(uuid.UUID(int=rnd.getrandbits(128))),
            "readOnly": True, "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCT,
            "eventCategory": "Management"}


def use(key, base, sec, ip, ua, action):
    return {"eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLEID:" + FN,
                             "arn": "arn:aws:sts::%s:assumed-role/orders-fn-role/%s" % (ACCT, FN),
                             "accountId": ACCT, "accessKeyId": key,
                             "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEID",
                                                                  "arn": ROLE, "accountId": ACCT,
                                                                  "userName": "orders-fn-role"},
                                                "attributes": {"creationDate": ts(base, 0),
                                                               "mfaAuthenticated": "false"}}},
            "eventTime": ts(base, sec), "eventSource": action[0], "eventName": action[1], "awsRegion": "us-east-1",
            "sourceIPAddress": ip, "userAgent": ua, "requestParameters": None, "responseElements": None,
            "requestID": str(uuid.UUID(int=rnd.getrandbits(128))), "eventID": str(uuid.UUID(int=rnd.getrandbits(128))),
            "readOnly": True, "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCT,
            "eventCategory": "Management"}


class KeySet:
    """Keys of one phase: for each, the inside events (issuance + marked uses) and outside uses."""

    def __init__(self, tag, n, inside=(2, 6), outside=(1, 4), outside_every=1):
        self.keys = ["ASIA%s%010d" % (tag, i) for i in range(n)]
        self.inside, self.outside = {}, {}
        base0 = 1710318801  # 2024-03-13T08:33:21Z
        for i, k in enumerate(self.keys):
            base = base0 + i * 60
            ev = [issuance(k, base)]
            for j in range(rnd.randint(*inside)):
                ev.append(use(k, base, 4 + j, inside_ip(k), UA_PY, rnd.choice(INSIDE_ACTIONS)))
            self.inside[k] = ev
            self.outside[k] = [use(k, base, 1800 + j, rnd.choice(OUT_IPS), UA_CLI, rnd.choice(OUT_ACTIONS))
                               for j in range(rnd.randint(*outside))] if i % outside_every == 0 else []

    def n_inside(self, k):
        return len(self.inside[k]) - 1  # the issuance is not a use

    def finding_keys(self):
        return [k for k in self.keys if self.outside[k]]

    def all_records(self):
        return [r for k in self.keys for r in self.inside[k] + self.outside[k]]


def eventbridge(rec):
    return {"version": "0", "id": str(uuid.UUID(int=rnd.getrandbits(128))), "detail-type": "AWS API Call via CloudTrail",
            "source": "aws." + rec["eventSource"].split(".")[0], "account": ACCT, "time": rec["eventTime"],
            "region": rec["awsRegion"], "resources": [], "detail": rec}


def make_requests(records, max_batch=12):
    """Splits shuffled records into requests: single EventBridge events and CloudTrail batches,
    about half of the batches gzip. Returns (path, body, headers, records)."""
    records = list(records)
    rnd.shuffle(records)
    out, i = [], 0
    while i < len(records):
        n = 1 if rnd.random() < 0.35 or max_batch < 2 else rnd.randint(2, max_batch)
        part = records[i:i + n]
        i += n
        if len(part) == 1 and rnd.random() < 0.8:
            body = json.dumps(eventbridge(part[0])).encode()
            out.append(("/v1/ingest/eventbridge", body, {"Content-Type": "application/json; charset=utf-8"}, part))
            continue
        body = json.dumps({"Records": part}).encode()
        hdr = {"Content-Type": "application/json"}
        if rnd.random() < 0.5:
            body = gzip.compress(body)
            if rnd.random() < 0.5:
                hdr = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
            else:
                hdr = {"Content-Type": "application/gzip"}
        out.append(("/v1/ingest/cloudtrail", body, hdr, part))
    return out


def post(client, req):
    path, body, hdr, _ = req
    h = dict(hdr, Authorization="Bearer " + TOK_IN)
    return client.request("POST", path, body=body, headers=h)


def run_threads(jobs):
    """jobs: list of (port, [requests]); one thread (and keep-alive connection) per job.
    Returns the list of (req, status, headers, body) of every answer."""
    answers, lock = [], threading.Lock()
    errors = []

    def worker(port, reqs):
        c = Client(port)
        try:
            for rq in reqs:
                st, hd, d = post(c, rq)
                with lock:
                    answers.append((rq, st, hd, d))
        except Exception as e:  # noqa: BLE001 — reported as a failure below
            with lock:
                errors.append(repr(e))
        finally:
            c.close()

    ts_ = [threading.Thread(target=worker, args=j) for j in jobs]
    for t in ts_:
        t.start()
    for t in ts_:
        t.join(120)
    return answers, errors


def metric(port, name):
    st, _, raw = read_get(port, "/metrics")
    if st != 200:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


KEY_READ_TRIES = 20  # a 503 means "retry later" (a busy or reconnecting store): clients retry


def key_counts(port, key):
    for _ in range(KEY_READ_TRIES):
        st, _, d = read_get(port, "/v1/keys/" + key)
        if st != 503:
            break
        time.sleep(0.1)
    if st != 200:
        return ("status", st)
    outside = d.get("outside") or {}
    return (d["inside"]["count"], outside.get("count", 0) if outside else 0)


def list_all(port, limit):
    ids, cursor, pages = [], None, 0
    while pages < 1000:
        q = "/v1/findings?limit=%d" % limit + ("&cursor=" + cursor if cursor else "")
        # a 503 is the documented answer while a store node is coming back (a connection in its
        # backoff): retried as a client would, a bounded number of times, like key_counts
        for _ in range(KEY_READ_TRIES):
            st, _, d = read_get(port, q)
            if st != 503:
                break
            time.sleep(0.1)
        if st != 200:
            raise AssertionError("list status %s: %r" % (st, d))
        ids += [f["id"] for f in d["findings"]]
        pages += 1
        cursor = d["next_cursor"]
        if not cursor:
            break
    return ids


def wait_ready(insts, want, timeout):
    """Seconds until /readyz answers `want` on every instance, or None."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if all(read_get(i.port, "/readyz")[0] == want for i in insts):
                return time.time() - t0
        except OSError:
            pass
        time.sleep(0.1)
    return None


# ---- phases ------------------------------------------------------------------------------------

def phase_many_keys(insts):
    A, B, C = insts
    ks = KeySet("MTA", 100)
    inside_reqs = make_requests([r for k in ks.keys for r in ks.inside[k]])
    outside_reqs = make_requests([r for k in ks.keys for r in ks.outside[k]])
    # 3 senders to A, 3 to B, each with its own connection, all at once.
    jobs = [(A.port, inside_reqs[i::3]) for i in range(3)] + [(B.port, outside_reqs[i::3]) for i in range(3)]
    created0 = sum(metric(i.port, "credwatch_findings_created_total") or 0 for i in insts)
    t0 = time.time()
    answers, errors = run_threads(jobs)
    dt = time.time() - t0
    bad = [(st, d) for _, st, _, d in answers if st != 200]
    check(not errors and not bad and len(answers) == len(inside_reqs) + len(outside_reqs),
          "100 keys: %d concurrent requests to A (inside) and B (outside) all 200 (%.1fs)" % (len(answers), dt),
          "errors %s, non-200 %s" % (errors[:3], bad[:3]))
    n_records = sum(len(rq[3]) for rq, _, _, _ in answers)
    acc = sum(d["accepted"] for _, st, _, d in answers if st == 200)
    dup = sum(d["duplicates"] for _, st, _, d in answers if st == 200)
    check(acc == n_records == len(ks.all_records()) and dup == 0,
          "every record accepted once (%d records, %d accepted, %d duplicates)" % (n_records, acc, dup))
    want = sorted("cwf-" + k for k in ks.finding_keys())
    check(len(want) == 100, "100 keys with outside use")
    created = sum(metric(i.port, "credwatch_findings_created_total") or 0 for i in insts) - created0
    check(created == 100, "findings created exactly once across instances (created_total sum %d)" % created)
    for inst in insts:
        ids = list_all(inst.port, 7)
        check(sorted(ids) == want and len(set(ids)) == len(ids),
              "instance %s lists exactly the 100 findings by paging with cursors (got %d, %d distinct)"
              % (inst.name, len(ids), len(set(ids))))
    bad_get, docs = [], {}
    for inst in insts:
        for fid in want:
            st, _, d = read_get(inst.port, "/v1/findings/" + fid)
            if st != 200 or d.get("id") != fid:
                bad_get.append((inst.name, fid, st))
                continue
            docs.setdefault(fid, []).append(d)
    check(not bad_get, "every finding readable from every instance (300 GETs)", str(bad_get[:5]))
    same = all(len(v) == 3 and v[0] == v[1] == v[2] for v in docs.values())
    check(same, "the 3 instances return identical finding documents")
    wrong = []
    for k in ks.keys:
        counts = [key_counts(i.port, k) for i in insts]
        exp = (ks.n_inside(k), len(ks.outside[k]))
        if any(c != exp for c in counts):
            wrong.append((k, exp, counts))
    check(not wrong, "GET /v1/keys on each instance: inside/outside counts identical and equal to the distinct "
          "events sent (100 keys x 3)", str(wrong[:5]))
    fc = [("cwf-" + k, d[0].get("outside_count"), len(ks.outside[k])) for k in ks.keys
          for d in [docs.get("cwf-" + k, [{}])] if d[0].get("outside_count") != len(ks.outside[k])]
    check(not fc, "each finding's outside_count equals the outside events sent", str(fc[:5]))
    return ks


def snapshot(insts, keys):
    """Key counts and finding documents as every instance sees them."""
    snap = {}
    for inst in insts:
        for k in keys:
            snap[(inst.name, "k", k)] = read_get(inst.port, "/v1/keys/" + k)[2]
            st, _, d = read_get(inst.port, "/v1/findings/cwf-" + k)
            snap[(inst.name, "f", k)] = (st, d)
        snap[(inst.name, "list")] = list_all(inst.port, 100)
    return snap


def phase_twice(insts):
    A, B, _ = insts
    ks = KeySet("MTB", 10)
    recs = ks.all_records()
    rnd.shuffle(recs)
    body = gzip.compress(json.dumps({"Records": recs}).encode())
    rq = ("/v1/ingest/cloudtrail", body, {"Content-Type": "application/gzip"}, recs)
    st1, _, d1 = post(Client(A.port), rq)
    check(st1 == 200 and d1["accepted"] == len(recs) and d1["duplicates"] == 0 and d1["findings_count"] == 10,
          "a new batch to A: all %d records accepted, 10 findings" % len(recs), "%s %r" % (st1, d1))
    before = snapshot(insts, ks.keys)
    created0 = sum(metric(i.port, "credwatch_findings_created_total") or 0 for i in insts)
    updated0 = sum(metric(i.port, "credwatch_findings_updated_total") or 0 for i in insts)
    st2, _, d2 = post(Client(B.port), rq)
    check(st2 == 200 and d2["accepted"] == 0 and d2["duplicates"] == len(recs) and d2["records"] == len(recs),
          "the same batch to B: the answer reports all %d records as duplicates" % len(recs), "%s %r" % (st2, d2))
    after = snapshot(insts, ks.keys)
    diff = [k for k in before if before[k] != after[k]]
    check(not diff, "the second post changed nothing (key context, findings incl. updated_at, listing)",
          str(diff[:3]))
    created = sum(metric(i.port, "credwatch_findings_created_total") or 0 for i in insts) - created0
    updated = sum(metric(i.port, "credwatch_findings_updated_total") or 0 for i in insts) - updated0
    check(created == 0 and updated == 0, "no finding created or updated by the repeat (%d, %d)" % (created, updated))


def phase_simultaneous(insts):
    ks = KeySet("MTC", 30)
    recs = ks.all_records()
    rnd.shuffle(recs)
    body = json.dumps({"Records": recs}).encode()
    rq = ("/v1/ingest/cloudtrail", body, {"Content-Type": "application/json"}, recs)
    rounds_ok, lines = 0, []
    created0 = sum(metric(i.port, "credwatch_findings_created_total") or 0 for i in insts)
    # Three rounds, the same batch each time: the first applies it once, all are concurrent.
    barrier = threading.Barrier(3)
    results = []
    lock = threading.Lock()

    def go(port):
        c = Client(port)
        c.request("GET", "/healthz")  # connection open before the barrier: the posts start together
        barrier.wait(10)
        st, _, d = post(c, rq)
        with lock:
            results.append((st, d))
        c.close()

    ts_ = [threading.Thread(target=go, args=(i.port,)) for i in insts]
    for t in ts_:
        t.start()
    for t in ts_:
        t.join(60)
    sts = [st for st, _ in results]
    acc = sum(d["accepted"] for st, d in results if st == 200)
    dup = sum(d["duplicates"] for st, d in results if st == 200)
    lines.append("statuses %s accepted %s duplicates %s" % (sts, [d.get("accepted") for _, d in results],
                                                            [d.get("duplicates") for _, d in results]))
    rounds_ok = sts == [200, 200, 200] and acc == len(recs) and dup == 2 * len(recs)
    check(rounds_ok, "the same batch to 3 instances at once: applied exactly once (sum accepted %d = %d records, "
          "sum duplicates %d)" % (acc, len(recs), dup), "; ".join(lines))
    created = sum(metric(i.port, "credwatch_findings_created_total") or 0 for i in insts) - created0
    check(created == 30, "30 findings created once (created_total sum %d)" % created)
    wrong = [(k, key_counts(i.port, k)) for k in ks.keys for i in insts
             if key_counts(i.port, k) != (ks.n_inside(k), len(ks.outside[k]))]
    check(not wrong, "key counts equal one application on every instance", str(wrong[:5]))


class Loader:
    """Posts a stream of requests (fresh events) to the instances in turn, retrying each 503 like
    EventBridge, and records every answer with its send/receive times."""

    def __init__(self, ports, reqs, n_threads=3, pause=0.0):
        self.ports, self.pending = ports, list(reqs)
        self.lock = threading.Lock()
        self.log = []           # (t_sent, t_answered, port, status, headers or exception, req)
        self.acked = []         # requests answered 2xx
        self.stop_at = None
        self.pause = pause
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(n_threads)]

    def start(self):
        for t in self.threads:
            t.start()

    def run(self, idx):
        clients = {p: Client(p) for p in self.ports}
        n = idx
        while True:
            with self.lock:
                if not self.pending or (self.stop_at and time.time() > self.stop_at):
                    break
                rq = self.pending.pop(0)
            port = self.ports[n % len(self.ports)]
            n += 1
            t0 = time.time()
            try:
                st, hd, d = post(clients[port], rq)
                t1 = time.time()
                with self.lock:
                    self.log.append((t0, t1, port, st, hd, rq))
                    if 200 <= st < 300:
                        self.acked.append(rq)
                    else:
                        self.pending.append(rq)  # retried later, as a sender would
                if st == 503:
                    time.sleep(0.05)
            except Exception as e:  # noqa: BLE001
                t1 = time.time()
                clients[port].close()
                with self.lock:
                    self.log.append((t0, t1, port, None, repr(e), rq))
                    self.pending.append(rq)
                time.sleep(0.05)
            if self.pause:
                time.sleep(self.pause)
        for c in clients.values():
            c.close()

    def join(self, timeout):
        for t in self.threads:
            t.join(timeout)


def phase_redis_restart(insts, redis_port, redis):
    # Switch to a Redis whose acknowledged writes survive a SIGKILL (fsync'd AOF), same port.
    redis.stop()
    aof = os.path.join(TMP, "aof")
    os.makedirs(aof, exist_ok=True)
    redis = redis_start(redis_port, aof)
    w = wait_ready(insts, 200, 10)
    check(w is not None, "instances become ready on the new Redis without a restart (%.1fs)" % (w or -1))

    ks = KeySet("MTD", 100, inside=(3, 6), outside=(1, 3))
    reqs = make_requests(ks.all_records(), max_batch=6)
    # Paced so the stream lasts ~6 s: before, during and after the outage.
    loader = Loader([i.port for i in insts], reqs, n_threads=3, pause=3 * 6.0 / len(reqs))
    loader.stop_at = time.time() + 60
    loader.start()
    time.sleep(1.5)
    t_kill = time.time()
    redis.kill()
    t_dead = time.time()
    time.sleep(0.8)
    # readiness and liveness during the outage
    ready = [read_get(i.port, "/readyz") for i in insts]
    health = [read_get(i.port, "/healthz")[0] for i in insts]
    check(all(st == 503 for st, _, _ in ready),
          "/readyz 503 on every instance while Redis is down", str([st for st, _, _ in ready]))
    check(health == [200, 200, 200], "/healthz 200 on every instance while Redis is down", str(health))
    time.sleep(1.5)
    t_restart = time.time()
    redis = redis_start(redis_port, aof)
    w = wait_ready(insts, 200, 10)
    check(w is not None and w <= 5, "ready again within 5 s of the restart, no service restart (%.2fs)" % (w or -1))
    # Worker threads whose Redis handle failed reconnect on their own schedule (backoff up to
    # RS_BACKOFF_MAX_MS = 2 s): until then they may answer 503 though /readyz (one handle) is 200.
    # Recovered = a full round of ingests on fresh connections (so every worker thread is likely
    # hit) answered 2xx on every instance.
    probe = KeySet("MTP", 1)
    preq = make_requests(probe.inside[probe.keys[0]][:1], max_batch=1)[0]
    n503, n_probe, recovered = 0, 0, None
    while time.time() - t_restart < 10:
        statuses = []
        for inst in insts:
            for _ in range(6):
                c = Client(inst.port)
                statuses.append(post(c, preq)[0])
                c.close()
        n_probe += len(statuses)
        n503 += statuses.count(503)
        if all(st == 200 for st in statuses):
            recovered = time.time() - t_restart
            break
        time.sleep(0.1)
    print("# after the restart: %d of %d probe ingests answered 503 before every worker recovered"
          % (n503, n_probe), flush=True)
    check(recovered is not None and recovered <= 4,
          "every worker of every instance ingests again within 4 s of the restart (%.2fs)" % (recovered or -1))
    loader.join(90)
    alive = any(t.is_alive() for t in loader.threads)
    log = list(loader.log)
    during = [e for e in log if e[0] >= t_dead and e[1] <= t_restart]
    errs = [e for e in log if e[3] is None]
    not_503_or_2xx = [e for e in log if e[3] is not None and e[3] != 503 and not 200 <= e[3] < 300]
    ok_during = [e for e in during if e[3] is not None and 200 <= e[3] < 300]
    no_retry_after = [e for e in log if e[3] == 503 and "retry-after" not in e[4]]
    n503 = sum(1 for e in log if e[3] == 503)
    check(len(during) > 0 and n503 > 0, "the loader posted during the outage (%d requests, %d answered 503)"
          % (len(during), n503))
    check(not ok_during, "no 2xx while Redis was down", str([(e[3], e[0] - t_kill) for e in ok_during[:3]]))
    check(not not_503_or_2xx and not errs, "every answer was 2xx or 503 (never 4xx, no connection error)",
          str([(e[3], e[4] if e[3] is None else "") for e in (not_503_or_2xx + errs)[:3]]))
    check(not no_retry_after, "every 503 carries Retry-After", "%d without" % len(no_retry_after))
    check(not alive and not loader.pending, "after the restart every request was eventually acknowledged "
          "(%d requests, %d acked)" % (len(reqs), len(loader.acked)))
    # every acknowledged event counted, exactly once
    acked_ids = {}
    for rq in loader.acked:
        for r in rq[3]:
            k = r["userIdentity"].get("accessKeyId") or r["responseElements"]["credentials"]["accessKeyId"]
            acked_ids.setdefault(k, set()).add(r["eventID"])
    wrong = []
    for k in ks.keys:
        exp_in = sum(1 for r in ks.inside[k][1:] if r["eventID"] in acked_ids.get(k, ()))
        exp_out = sum(1 for r in ks.outside[k] if r["eventID"] in acked_ids.get(k, ()))
        got = key_counts(insts[0].port, k)
        if got != (exp_in, exp_out):
            wrong.append((k, (exp_in, exp_out), got))
    check(not wrong, "every event acknowledged before, during or after the outage is counted once (100 keys)",
          str(wrong[:5]))
    ids = list_all(insts[1].port, 100)
    missing = [k for k in ks.finding_keys() if "cwf-" + k not in ids]
    check(not missing, "the keys' findings survived the restart", str(missing[:5]))
    return redis


def phase_sigterm(insts):
    A, B, C = insts
    ks = KeySet("MTE", 600, inside=(3, 6), outside=(0, 2))
    recs = ks.all_records()
    rnd.shuffle(recs)
    # Big batches so that requests are in flight when the signal lands.
    reqs = []
    for i in range(0, len(recs), 100):
        part = recs[i:i + 100]
        reqs.append(("/v1/ingest/cloudtrail", json.dumps({"Records": part}).encode(),
                     {"Content-Type": "application/json"}, part))
    log, lock = [], threading.Lock()
    queue = list(reqs)
    t_term = [None]

    def worker():
        c = Client(C.port)
        while True:
            with lock:
                if not queue:
                    break
                rq = queue.pop(0)
            path, body, hdr, _ = rq
            h = dict(hdr, Authorization="Bearer " + TOK_IN)
            t0 = time.time()
            try:
                if c.c is None:
                    c.c = http.client.HTTPConnection(HOST, C.port, timeout=REQ_TIMEOUT)
                c.c.request("POST", path, body=body, headers=h)
                t_sent = time.time()
                r = c.c.getresponse()
                r.read()
                t1 = time.time()
                if r.will_close:
                    c.close()
                with lock:
                    log.append((t0, t_sent, t1, r.status, None, rq))
                    if len(log) == 4:
                        four.set()
            except Exception as e:  # noqa: BLE001
                c.close()
                with lock:
                    log.append((t0, None, time.time(), None, repr(e), rq))
                if t_term[0] is not None:
                    with lock:
                        queue.insert(0, rq)
                    break  # the instance is going away: stop sending to it
        c.close()

    four = threading.Event()
    ts_ = [threading.Thread(target=worker) for _ in range(6)]
    for t in ts_:
        t.start()
    four.wait(20)  # signal once the senders are in full swing, with most batches still queued
    t_term[0] = time.time()
    C.proc.send_signal(signal.SIGTERM)
    try:
        rc = C.proc.wait(20)
    except subprocess.TimeoutExpired:
        rc = "timeout"
    for t in ts_:
        t.join(30)
    tt = t_term[0]
    before = [e for e in log if e[1] is not None and e[1] < tt]
    straddle = [e for e in before if e[2] > tt]
    # Draining means no request sent before the signal is dropped: each gets its answer. That answer
    # is a 2xx, or a 503 when the store was slow at that moment (a loaded CI machine with Redis on
    # appendfsync always can take over the 1 s command timeout): a 503 is retried by the sender and
    # is not a lost request; the batches not acknowledged are resent to another instance below.
    bad = [e for e in before if e[3] is None or not (200 <= e[3] < 300 or e[3] == 503)]
    ok2xx = [e for e in before if e[3] is not None and 200 <= e[3] < 300]
    check(len(straddle) > 0, "requests were in flight when SIGTERM arrived (%d)" % len(straddle))
    check(not bad and ok2xx, "every request sent before SIGTERM got its answer, 2xx (%d) or a retryable 503 (%d), "
          "none dropped (%d requests)" % (len(ok2xx), len(before) - len(ok2xx) - len(bad), len(before)),
          str([(e[3], e[4]) for e in bad[:3]]))
    after_bad = [e for e in log if e[1] is not None and e[1] >= tt and e[3] is not None
                 and e[3] not in (200, 503)]
    check(not after_bad, "requests after SIGTERM: 2xx, 503 or refused, nothing else", str(after_bad[:3]))
    check(rc == 0, "the instance exited 0 after draining (status %s)" % rc)
    drained = any('"msg":"stopped"' in l and '"inflight_abandoned":0' in l for l in open(C.log))
    check(drained, "its log says stopped with no request abandoned")
    # The rest of the events go to A; every acknowledged one must be counted.
    rest = [rq for rq in reqs if rq not in [e[5] for e in log if e[3] == 200]]
    answers, errors = run_threads([(A.port, rest)])
    check(not errors and all(st == 200 for _, st, _, _ in answers),
          "the remaining %d batches go to another instance" % len(rest))
    wrong = [(k, key_counts(B.port, k), (ks.n_inside(k), len(ks.outside[k]))) for k in ks.keys[::7]]
    wrong = [w for w in wrong if w[1] != w[2]]
    check(not wrong, "acknowledged events of the drained instance are all counted (sampled keys)", str(wrong[:5]))


def test_inputs():
    """Every detection fixture and every real CloudTrail log in tests/, as (name, records)."""
    root = os.path.dirname(os.path.abspath(__file__))
    out = []
    for path in sorted(glob.glob(os.path.join(root, "cases", "*.json"))):
        out.append((os.path.basename(path), json.load(open(path))["records"]))
    for path in sorted(glob.glob(os.path.join(root, "data", "real", "*", "*.json"))):
        text = open(path).read()
        try:
            d = json.loads(text)
            recs = d["Records"] if isinstance(d, dict) else d
        except ValueError:  # one record a line (a Logstash export)
            recs = [json.loads(line) for line in text.splitlines() if line.strip()]
        out.append((os.path.basename(path), recs))
    return out


def phase_filters(insts):
    """Filters file each finding under its own account and function: findings of 4 accounts x 3
    functions, made in one multi-key request and in many, issuance to one instance and the outside
    use to the other; every filter's full cursor walk (account, function, both, severity) on each
    instance equals the filter computed from the GET /v1/findings/{id} documents."""
    accts = ["210000000001", "210000000002", "210000000003", "210000000004"]
    fns = ["pay-fn", "ship-fn", "mail-fn"]
    base, recs_one, per_key = 1710318801, [], []
    for a_i, acct in enumerate(accts):
        for f_i, fn in enumerate(fns):
            for j in range(3):
                key = "ASIAFLT%02d%02d%02d0000000" % (a_i, f_i, j)
                iss = issuance(key, base)
                iss["recipientAccountId"] = acct
                iss["requestParameters"] = {"roleArn": "arn:aws:iam::%s:role/%s-role" % (acct, fn), "roleSessionName": fn}
                out = use(key, base, 1800 + j, OUT_IPS[j % len(OUT_IPS)], UA_CLI, OUT_ACTIONS[(a_i + j) % len(OUT_ACTIONS)])
                out["userIdentity"]["accountId"] = acct
                (recs_one if j == 0 else per_key).append((iss, out))
    A, B = Client(insts[0].port), Client(insts[1].port)
    ct = {"Content-Type": "application/json"}
    # one request with many keys to A (issuances), their outside uses in one request to B
    post(A, ("/v1/ingest/cloudtrail", json.dumps({"Records": [i for i, _ in recs_one]}).encode(), ct, None))
    post(B, ("/v1/ingest/cloudtrail", json.dumps({"Records": [o for _, o in recs_one]}).encode(), ct, None))
    for iss, out in per_key:  # and key by key, alternating instances
        post(B, ("/v1/ingest/cloudtrail", json.dumps({"Records": [iss]}).encode(), ct, None))
        post(A, ("/v1/ingest/cloudtrail", json.dumps({"Records": [out]}).encode(), ct, None))
    A.close()
    B.close()
    docs = {}
    for fid in list_all(insts[0].port, 500):
        if fid.startswith("cwf-ASIAFLT"):
            st, _, d = read_get(insts[0].port, "/v1/findings/" + fid)
            docs[fid] = d
    bad = []
    if len(docs) != len(accts) * len(fns) * 3:
        bad.append("%d findings, expected %d" % (len(docs), len(accts) * len(fns) * 3))
    filters = [{"account": a} for a in accts] + [{"function": f} for f in fns] + \
              [{"account": accts[1], "function": fns[2]}] + [{"severity": s} for s in ("medium", "high", "critical")]
    field = {"account": "account_id", "function": "function_name", "severity": "severity"}
    for inst in insts[:2]:
        for flt in filters:
            want = sorted(fid for fid, d in docs.items() if all(d[field[k]] == v for k, v in flt.items()))
            got, cursor = [], None
            for _ in range(100):
                q = "/v1/findings?limit=7&" + "&".join("%s=%s" % kv for kv in flt.items()) + \
                    ("&cursor=" + cursor if cursor else "")
                st, _, d = read_get(inst.port, q)
                if st != 200:
                    bad.append((inst.name, flt, st))
                    break
                got += [f["id"] for f in d["findings"] if f["id"].startswith("cwf-ASIAFLT")]
                cursor = d["next_cursor"]
                if not cursor:
                    break
            if sorted(got) != want or len(got) != len(set(got)):
                bad.append((inst.name, flt, "%d listed, %d expected" % (len(got), len(want))))
    check(not bad, "filters walk to exactly the findings whose own account/function/severity match (36 findings, "
          "%d filters, both instances, evidence split between them)" % len(filters), str(bad[:4]))


def phase_crosswise(insts):
    """Re-posting is harmless in any form, to any instance: every fixture and real log posted to A,
    then to B, then gzipped to A and as single EventBridge events to B, gives accepted 0 after the
    first time, and every record is accounted for each time."""
    A, B = Client(insts[0].port), Client(insts[1].port)
    bad, files, records = [], 0, 0
    for name, recs in test_inputs():
        plain = json.dumps({"Records": recs}).encode()
        first = post(A, ("/v1/ingest/cloudtrail", plain, {"Content-Type": "application/json"}, recs))
        again = [post(B, ("/v1/ingest/cloudtrail", plain, {"Content-Type": "application/json"}, recs)),
                 post(A, ("/v1/ingest/cloudtrail", gzip.compress(plain), {"Content-Type": "application/gzip"}, recs))]
        for r in [r for r in recs if "eventTime" in r][:20]:  # the EventBridge form, one event a request
            again.append(post(B, ("/v1/ingest/eventbridge", json.dumps(eventbridge(r)).encode(),
                                  {"Content-Type": "application/json"}, [r])))
        files += 1
        records += len(recs)
        for st, _, d in [first] + again:
            if st != 200 or d["records"] != d["accepted"] + d["ignored"] + d["duplicates"] + d["skipped_count"]:
                bad.append((name, st, d if st != 200 else "unaccounted"))
        for st, _, d in again:
            if st == 200 and d["accepted"] != 0:
                bad.append((name, "accepted %d on a re-post" % d["accepted"]))
    A.close()
    B.close()
    check(not bad and files > 40, "%d fixtures and real logs (%d records) re-posted to another instance, gzipped "
          "and as EventBridge events: accepted 0, every record accounted for" % (files, records), str(bad[:5]))


def main():
    redis_port = harness.free_port()
    redis = None
    try:
        redis = redis_start(redis_port)
        insts = [serve(n, CREDWATCH_REDIS_URL=harness.redis_url(redis_port), CREDWATCH_DRAIN_SECONDS="15",
                       CREDWATCH_REDIS_TIMEOUT_MS=REDIS_TIMEOUT_MS) for n in "ABC"]
        ok("redis-server on 127.0.0.1:%d and 3 instances on ports %s" % (redis_port, [i.port for i in insts]))
        check(wait_ready(insts, 200, 5) is not None, "all instances ready on Redis")
        phases = [("many keys", lambda: phase_many_keys(insts)), ("twice", lambda: phase_twice(insts)),
                  ("simultaneous", lambda: phase_simultaneous(insts)),
                  ("crosswise", lambda: phase_crosswise(insts)),
                  ("filters", lambda: phase_filters(insts))]
        for name, fn in phases:
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                nok("phase %s ran to the end" % name, repr(e))
        try:
            redis = phase_redis_restart(insts, redis_port, redis)
        except Exception as e:  # noqa: BLE001
            nok("phase redis restart ran to the end", repr(e))
        try:
            phase_sigterm(insts)
        except Exception as e:  # noqa: BLE001
            nok("phase sigterm ran to the end", repr(e))
    except Exception as e:  # noqa: BLE001
        nok("setup", repr(e))
    finally:
        PROCS.stop_all(timeout=5, sig_for=lambda p: signal.SIGTERM if redis and p is redis.proc else signal.SIGKILL)
    if R.fails:
        for f in sorted(os.listdir(TMP)):
            if f.endswith(".log"):
                print("# --- %s (tail)" % f)
                for line in open(os.path.join(TMP, f), errors="replace").read().splitlines()[-15:]:
                    print("#   " + line)
    return 1 if R.fails else 0


if __name__ == "__main__":
    sys.exit(main())
