#!/usr/bin/python3
"""durable_test.py — the durable embedded store seen from outside (issue 16; docs/durable-store.md section 7),
driven by tests/it_durable.sh. Each phase prints `ok - name` / `not ok - name: why`:

  restart  Inside evidence before a restart (graceful and kill -9) is still there after it:
           (1) a Lambda key's marked call from its own address, restart, the issuance re-delivered and an
               unmarked call from that address: no finding (on the memory store the same sequence finds a
               theft: the own address was forgotten, the call is outside);
           (2) an issuance-only key, restart, a call from outside: a finding (on the memory store none:
               the key is no longer known to be Lambda's, the theft is missed).
  lock     A second `serve` on a data dir in use is refused at start (non-zero exit, the message names the
           directory) and the first keeps serving; after the first is killed -9 a new one starts.
  schema   The data file's schema version raised by one (mdb_dump / mdb_load of the `meta` database, key
           `schema`, a native u32) is refused at start with a message naming the schema; the same file
           unchanged starts (the control).
  crash    ROUNDS rounds on one data dir: 4 senders post CloudTrail batches and single EventBridge events
           (inside uses, thefts, repeats) and a patcher triages the findings as they appear, every 2xx
           answer logged; kill -9 at a random moment 0.2-3 s into the round, restart on the same dir, wait
           for /readyz (before the restart, the file the kill left is read with mdb_dump -a: every index
           entry matches its record); (a) every request acknowledged in the round (and a sample of older ones) re-sent:
           all duplicates; (b) every finding reported or seen is there, with its last acknowledged status
           and note; (c) the unacknowledged requests and patches re-sent (a sender's retry). At the end
           every acknowledged request is re-sent once more (all duplicates) and the verdicts (ids,
           severities, reasons, addresses, evidence counts, statuses, notes; and 60 keys' contexts) equal an
           uninterrupted run of the same requests on CREDWATCH_STORE=memory. What was lost is counted and
           printed (must be 0).

The durable store is the default: CREDWATCH_STORE is left unset (DURABLE_STORE=memory runs the driver on the
memory store, to debug it: the restart, lock, schema and crash checks then fail, as they should).
Only processes this script starts are stopped, by pid, and their pids are appended to PIDFILE so that
the calling shell's trap stops them if this script dies. Loopback only, stdlib only.
usage: durable_test.py BIN TMPDIR PIDFILE [restart] [lock] [schema] [crash]
environment: DURABLE_ROUNDS (20), DURABLE_SEED, DURABLE_STORE (unset: the default store), DURABLE_SEND_PAUSE (0.01 s)
"""
import copy
import gzip
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque

import harness

BIN, TMP, PIDFILE = sys.argv[1], sys.argv[2], sys.argv[3]
PHASES = sys.argv[4:] or ["restart", "lock", "schema", "crash"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RANGES = os.path.join(ROOT, "tests", "data", "aws-ip-ranges-2026-08-22.json")
STORE = os.environ.get("DURABLE_STORE") or None      # None: CREDWATCH_STORE unset, the default store
ROUNDS = int(os.environ.get("DURABLE_ROUNDS", "20"))
SEED = int(os.environ.get("DURABLE_SEED", str(int(time.time()))))
TOK_IN = "ingest-token-durable-0123456789"
TOK_RD = "read-token-durable-0123456789ab"
START_TIMEOUT = 20        # s for a serve to log "listening" (a durable open after a kill included)
READY_TIMEOUT = 20        # s more for /readyz to answer 200
REQ_TIMEOUT = 20          # s per HTTP request
SENDERS = 4
SEND_PAUSE = float(os.environ.get("DURABLE_SEND_PAUSE", "0.01"))   # s between one sender's requests
FILE_CHECK = bool(shutil.which("mdb_dump"))   # the file's own check after each kill (Debian lmdb-utils)
OLD_SAMPLE = 25           # acknowledged requests of earlier rounds re-sent after each restart

R = harness.Report()
ok, nok, check, say = R.ok, R.nok, R.check, R.say
PROCS = harness.Procs(PIDFILE)
AUTH_IN = {"Authorization": "Bearer " + TOK_IN}
AUTH_RD = {"Authorization": "Bearer " + TOK_RD}


# ---- processes ---------------------------------------------------------------------------------

BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("CREDWATCH_")}
_n_logs = [0]


def serve_env(data_dir, store, extra=None):
    env = {"CREDWATCH_INGEST_TOKENS": TOK_IN, "CREDWATCH_READ_TOKENS": TOK_RD, "CREDWATCH_THREADS": "4",
           "CREDWATCH_DATA_DIR": data_dir, "CREDWATCH_STORE": store}
    env.update(extra or {})
    return env


def log_path(name):
    _n_logs[0] += 1
    return os.path.join(TMP, "%02d-%s.log" % (_n_logs[0], name))


def wait_ready(inst, timeout=READY_TIMEOUT):
    """True once GET /readyz answers 200 (bounded)."""
    deadline = time.monotonic() + timeout
    c = harness.Client(inst.port, 5)
    try:
        while time.monotonic() < deadline and inst.alive():
            try:
                st, _, _ = c.request("GET", "/readyz")
                if st == 200:
                    return True
            except (http.client.HTTPException, OSError):
                c.close()
            time.sleep(0.05)
        return False
    finally:
        c.close()


def serve(name, data_dir, store=STORE, extra=None):
    """A `credwatch serve` of ours on data_dir, waited for until ready; raises if it does not come up."""
    inst = harness.Instance(BIN, log_path(name), serve_env(data_dir, store, extra), name, PROCS, START_TIMEOUT,
                            base_env=BASE_ENV)
    if not wait_ready(inst):
        tail = harness.log_tail(inst.log)
        inst.kill()
        raise RuntimeError("%s not ready within %ds: %s" % (name, READY_TIMEOUT, tail))
    return inst


def serve_refused(name, data_dir, timeout=15):
    """Starts a serve that is expected to refuse: (exit status or None if it kept running, its output)."""
    path = log_path(name)
    env = dict(BASE_ENV)
    env.update({k: v for k, v in serve_env(data_dir, STORE).items() if v is not None})
    env["CREDWATCH_LISTEN"] = "127.0.0.1:0"
    with open(path, "wb") as out:
        p = PROCS.add(subprocess.Popen([BIN, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL))
    rc, deadline = None, time.monotonic() + timeout
    while time.monotonic() < deadline:     # it exits, or it logs "listening" (it started: not refused)
        rc = p.poll()
        if rc is not None or '"msg":"listening"' in harness.log_tail(path, 100000):
            break
        time.sleep(0.05)
    if rc is None:
        harness.stop(p, signal.SIGKILL, 5)
    return rc, harness.log_tail(path, 4000)


# ---- HTTP --------------------------------------------------------------------------------------

def retry_after(hd):
    try:
        return min(max(float(hd.get("retry-after", "0.1")), 0.05), 0.5)
    except ValueError:
        return 0.1


def request_until(c, method, path, body=None, headers=None, deadline_s=30):
    """One request, re-sent after 503/429 (as a sender would) until another answer, within deadline_s.
    Raises on a transport error (the caller decides)."""
    deadline = time.monotonic() + deadline_s
    while True:
        st, hd, d = c.request(method, path, body, headers)
        if st not in (429, 503) or time.monotonic() >= deadline:
            return st, hd, d
        time.sleep(retry_after(hd))


def post_records(c, records, path="/v1/ingest/cloudtrail"):
    body = json.dumps({"Records": records}).encode()
    return request_until(c, "POST", path, body, dict(AUTH_IN, **{"Content-Type": "application/json"}))


def get_json(c, path):
    return request_until(c, "GET", path, headers=AUTH_RD)


def list_findings(c):
    """Every finding (id -> document), all pages; raises on a non-200."""
    out, cursor = {}, None
    for _ in range(1000):
        st, _, d = get_json(c, "/v1/findings?limit=500" + ("&cursor=" + cursor if cursor else ""))
        if st != 200:
            raise RuntimeError("GET /v1/findings: %s %s" % (st, d))
        for f in d["findings"]:
            out[f["id"]] = f
        cursor = d.get("next_cursor")
        if not cursor:
            return out
    raise RuntimeError("GET /v1/findings: more than 1000 pages")


def parallel(fn, items, n=SENDERS):
    """fn(client, item) over items with n threads (one keep-alive connection each); returns the
    exceptions raised (as strings)."""
    items, lock, errors = deque(items), threading.Lock(), []

    def run():
        c = None
        while True:
            with lock:
                if not items:
                    break
                it = items.popleft()
            try:
                if c is None:
                    c = fn.client()
                fn(c, it)
            except Exception as e:  # noqa: BLE001 — reported by the caller
                with lock:
                    errors.append("%s: %r" % (type(e).__name__, e))
                if c:
                    c.close()
                c = None
        if c:
            c.close()

    ts_ = [threading.Thread(target=run) for _ in range(n)]
    for t in ts_:
        t.start()
    for t in ts_:
        t.join(300)
    return errors


# ---- CloudTrail records (the shapes of tests/cases/make_cases.py and multi_test.py) -------------

ACCT = "111122223333"
ROLE = "arn:aws:iam::%s:role/orders-fn-role" % ACCT
FN = "orders-fn"
# AWS us-east-1 in the ranges file: where the function's execution environments egress (one per key)
INSIDE_IPS = ["3.80.1.10", "3.80.1.11", "3.80.2.12", "3.81.7.20"]
OUT_IPS = ["198.51.100.7", "198.51.100.8", "203.0.113.9"]    # the thief's machines (not AWS)
UA_PY = ("Boto3/1.34.20 md/Botocore#1.34.20 ua/2.0 os/linux#5.10 md/arch#x86_64 lang/python#3.12.1 "
         "md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.20")
UA_RAW = "Go-http-client/1.1"   # an unmarked call the runtime makes itself
UA_CLI = "aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 source/x86_64.ubuntu.22 prompt/off command/sts.get-caller-identity"
INSIDE_ACTIONS = [("dynamodb.amazonaws.com", "PutItem"), ("s3.amazonaws.com", "GetObject"),
                  ("sqs.amazonaws.com", "SendMessage"), ("dynamodb.amazonaws.com", "Query")]
OUT_ACTIONS = [("sts.amazonaws.com", "GetCallerIdentity"), ("s3.amazonaws.com", "ListBuckets"),
               ("iam.amazonaws.com", "ListUsers"), ("dynamodb.amazonaws.com", "Scan")]


def ts(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def new_id(rnd):
    return str(uuid.UUID(int=rnd.getrandbits(128)))


def issuance(rnd, key, base):
    return {"eventVersion": "1.08", "userIdentity": {"type": "AWSService", "invokedBy": "lambda.amazonaws.com"},
            "eventTime": ts(base), "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
            "awsRegion": "us-east-1", "sourceIPAddress": "lambda.amazonaws.com", "userAgent": "lambda.amazonaws.com",
            "requestParameters": {"roleArn": ROLE, "roleSessionName": FN},
            "responseElements": {"credentials": {"accessKeyId": key, "sessionToken": "IQoJb3JpZ2luX2VjE...",
                                                 "expiration": time.strftime("%b %d, %Y, %I:%M:%S %p",
                                                                             time.gmtime(base + 12 * 3600))}},
            "requestID": new_id(rnd), "eventID": new_id(rnd), "readOnly": True, "eventType": "AwsApiCall",
            "managementEvent": True, "recipientAccountId": ACCT, "eventCategory": "Management"}


def use(rnd, key, base, sec, ip, ua, action):
    return {"eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLEID:" + FN,
                             "arn": "arn:aws:sts::%s:assumed-role/orders-fn-role/%s" % (ACCT, FN),
                             "accountId": ACCT, "accessKeyId": key,
                             "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLEID",
                                                                  "arn": ROLE, "accountId": ACCT,
                                                                  "userName": "orders-fn-role"},
                                                "attributes": {"creationDate": ts(base),
                                                               "mfaAuthenticated": "false"}}},
            "eventTime": ts(base + sec), "eventSource": action[0], "eventName": action[1], "awsRegion": "us-east-1",
            "sourceIPAddress": ip, "userAgent": ua, "requestParameters": None, "responseElements": None,
            "requestID": new_id(rnd), "eventID": new_id(rnd), "readOnly": True, "eventType": "AwsApiCall",
            "managementEvent": True, "recipientAccountId": ACCT, "eventCategory": "Management"}


def eventbridge(rnd, rec):
    return {"version": "0", "id": new_id(rnd), "detail-type": "AWS API Call via CloudTrail",
            "source": "aws." + rec["eventSource"].split(".")[0], "account": ACCT, "time": rec["eventTime"],
            "region": rec["awsRegion"], "resources": [], "detail": rec}


class Req:
    """One ingest request of the stream, and what was acknowledged for it."""

    def __init__(self, rid, path, body, hdr, n):
        self.rid, self.path, self.body, self.hdr, self.n = rid, path, body, hdr, n
        self.acks = []        # the answers of its 2xx
        self.round = None     # the round in which it was first acknowledged


class Stream:
    """The crash test's stream, made on demand in chunks of keys and remembered (so that the memory run
    gets the same requests): per key an issuance (most keys), marked calls from its one own address, now
    and then an unmarked call from there too (inside), for a third of the keys calls from outside (a
    theft: a finding); and repeat requests, records already sent in another form (duplicates)."""

    KEYS_PER_CHUNK = 6

    def __init__(self, seed):
        self.rnd = random.Random(seed)
        self.n_keys = 0
        self.records = []
        self.made = []

    def _key_records(self, i):
        rnd = self.rnd
        key = "ASIADR%014d" % i
        base = 1710318801 + i * 60      # 2024-03-13T08:33:21Z + one minute per key
        own = INSIDE_IPS[i % len(INSIDE_IPS)]
        recs = [issuance(rnd, key, base)] if i % 5 != 4 else []     # every fifth: a marker-only key
        for j in range(rnd.randint(1, 4)):
            recs.append(use(rnd, key, base, 4 + j, own, UA_PY, rnd.choice(INSIDE_ACTIONS)))
        if rnd.random() < 0.3:
            recs.append(use(rnd, key, base, 30, own, UA_RAW, rnd.choice(INSIDE_ACTIONS)))
        if i % 3 == 0:
            for j in range(rnd.randint(1, 3)):
                recs.append(use(rnd, key, base, 1800 + j, rnd.choice(OUT_IPS), UA_CLI, rnd.choice(OUT_ACTIONS)))
        return recs

    def _request(self, part):
        rnd = self.rnd
        rid = len(self.made)
        if len(part) == 1 and rnd.random() < 0.8:
            body = json.dumps(eventbridge(rnd, part[0])).encode()
            rq = Req(rid, "/v1/ingest/eventbridge", body, {"Content-Type": "application/json"}, 1)
        else:
            body = json.dumps({"Records": part}).encode()
            hdr = {"Content-Type": "application/json"}
            if rnd.random() < 0.3:
                body, hdr = gzip.compress(body), {"Content-Type": "application/json", "Content-Encoding": "gzip"}
            rq = Req(rid, "/v1/ingest/cloudtrail", body, hdr, len(part))
        self.made.append(rq)
        return rq

    def chunk(self):
        rnd, recs = self.rnd, []
        for _ in range(self.KEYS_PER_CHUNK):
            recs += self._key_records(self.n_keys)
            self.n_keys += 1
        rnd.shuffle(recs)
        parts, i = [], 0
        while i < len(recs):
            n = 1 if rnd.random() < 0.5 else rnd.randint(2, 10)
            parts.append(recs[i:i + n])
            i += n
        self.records += recs
        for _ in range(2):      # repeats: records sent before (this chunk or an earlier one)
            parts.insert(rnd.randint(0, len(parts)), rnd.sample(self.records, min(len(self.records),
                                                                                  rnd.randint(1, 6))))
        return [self._request(p) for p in parts]


class Feed:
    """The senders' queue: retries first, then the stream, chunk by chunk; closed = no new chunks."""

    def __init__(self, stream):
        self.stream, self.lock, self.q, self.closed = stream, threading.Lock(), deque(), False
        self.taken = []         # every request handed to a sender at least once (the memory run's input)
        self._taken_ids = set()

    def get(self):
        with self.lock:
            if not self.q and not self.closed:
                self.q.extend(self.stream.chunk())
            if not self.q:
                return None
            rq = self.q.popleft()
            if rq.rid not in self._taken_ids:
                self._taken_ids.add(rq.rid)
                self.taken.append(rq)
            return rq

    def again(self, rq):
        with self.lock:
            self.q.appendleft(rq)


# ---- triage: a plan of patches per finding, applied as findings appear --------------------------

STATUSES = ["acknowledged", "suppressed", "open"]   # not `resolved`: new outside use reopens it (by design)


def plan_of(fid):
    """The patches the analyst makes to a finding, in order: deterministic from its id, so that the
    memory run applies the same ones."""
    rnd = random.Random(hashlib.sha256(fid.encode()).digest())
    out = []
    for k in range(rnd.randint(1, 3)):
        p = {}
        r = rnd.random()
        if r < 0.7:
            p["status"] = rnd.choice(STATUSES)
        if r > 0.4 or not p:
            p["note"] = "dur %s step %d: %s" % (fid[-6:], k, rnd.choice(["thief?", "ticket SEC-%d" % rnd.randint(1, 999),
                                                                           "ok, the CI runner", "é ünïcode ✓"]))
        out.append(p)
    return out


def state_after(plan, n):
    """(status, note) after the first n patches of a plan, from a new finding's (open, None)."""
    st, note = "open", None
    for p in plan[:n]:
        st = p.get("status", st)
        note = p.get("note", note)
    return st, note


class Triage:
    """Per finding seen: its plan, how many patches were acknowledged, and the one sent without an
    answer (applied or not: either state is acceptable until it is re-sent)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.f = {}     # fid -> {"plan", "done", "pending"}

    def see(self, fid):
        with self.lock:
            if fid not in self.f:
                self.f[fid] = {"plan": plan_of(fid), "done": 0, "pending": None}

    def next_job(self, skip=()):
        with self.lock:
            for fid, s in self.f.items():
                if fid not in skip and s["pending"] is None and s["done"] < len(s["plan"]):
                    return fid, s["done"], s["plan"][s["done"]]
        return None

    def acked(self, fid, k):
        with self.lock:
            s = self.f[fid]
            s["done"], s["pending"] = max(s["done"], k + 1), None

    def unacked(self, fid, k):
        with self.lock:
            self.f[fid]["pending"] = k

    def acceptable(self, fid):
        """The (status, note) states a finding may be in now."""
        with self.lock:
            s = self.f[fid]
            out = [state_after(s["plan"], s["done"])]
            if s["pending"] is not None:
                out.append(state_after(s["plan"], s["pending"] + 1))
            return out


def patch(c, fid, body):
    return request_until(c, "PATCH", "/v1/findings/" + fid, json.dumps(body).encode(),
                         dict(AUTH_RD, **{"Content-Type": "application/json"}))


# ---- one round's traffic ------------------------------------------------------------------------

class Round:
    def __init__(self, n):
        self.n = n
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked, self.unacked = [], []
        self.events_acked = 0
        self.n503 = 0
        self.patches_acked = 0
        self.errors = []     # answers that are neither 2xx nor 503/429, and transport errors before the kill


def valid_answer(d, n):
    return (isinstance(d, dict) and d.get("records") == n and d.get("skipped_count") == 0 and
            d.get("accepted", -1) + d.get("ignored", -1) + d.get("duplicates", -1) == n)


def sender(port, rd, feed, tri):
    c = harness.Client(port, REQ_TIMEOUT, retry=())
    try:
        while not rd.stop.is_set():
            rq = feed.get()
            if rq is None:
                return
            try:
                st, hd, d = c.request("POST", rq.path, rq.body, dict(rq.hdr, **AUTH_IN))
            except (http.client.HTTPException, OSError) as e:
                with rd.lock:
                    rd.unacked.append(rq)
                if not rd.stop.wait(3):
                    with rd.lock:
                        rd.errors.append("ingest before the kill: %r" % e)
                return
            if st in (429, 503):
                with rd.lock:
                    rd.n503 += 1
                feed.again(rq)
                time.sleep(retry_after(hd))
                continue
            if not 200 <= st < 300 or not valid_answer(d, rq.n):
                with rd.lock:
                    rd.errors.append("ingest %s: %s" % (st, str(d)[:300]))
                feed.again(rq)
                return
            rq.acks.append(d)
            if rq.round is None:
                rq.round = rd.n
            with rd.lock:
                rd.acked.append(rq)
                rd.events_acked += rq.n
            for fid in d.get("findings", []):
                tri.see(fid)
            time.sleep(SEND_PAUSE)
    finally:
        c.close()


def patcher(port, rd, tri):
    c = harness.Client(port, REQ_TIMEOUT, retry=())
    last_list = 0.0
    try:
        while not rd.stop.is_set():
            if time.monotonic() - last_list > 0.5:   # findings seen in the list, not only in ingest answers
                last_list = time.monotonic()
                try:
                    st, _, d = c.request("GET", "/v1/findings?limit=100", headers=AUTH_RD)
                except (http.client.HTTPException, OSError):
                    rd.stop.wait(3)
                    return
                if st == 200:
                    for f in d["findings"]:
                        tri.see(f["id"])
            job = tri.next_job()
            if job is None:
                rd.stop.wait(0.05)
                continue
            fid, k, body = job
            try:
                st, hd, d = c.request("PATCH", "/v1/findings/" + fid, json.dumps(body).encode(),
                                      dict(AUTH_RD, **{"Content-Type": "application/json"}))
            except (http.client.HTTPException, OSError) as e:
                tri.unacked(fid, k)
                if not rd.stop.wait(3):
                    with rd.lock:
                        rd.errors.append("PATCH before the kill: %r" % e)
                return
            if st in (429, 503):
                time.sleep(retry_after(hd))
                continue
            want = state_after(tri.f[fid]["plan"], k + 1)
            if st != 200 or (d.get("status"), d.get("note")) != want:
                with rd.lock:
                    rd.errors.append("PATCH %s %s: %s %s (expected %s)" % (fid, body, st, str(d)[:200], want))
                return
            tri.acked(fid, k)
            with rd.lock:
                rd.patches_acked += 1
            time.sleep(0.01)
    finally:
        c.close()


# ---- verdicts --------------------------------------------------------------------------------------

def verdict(f):
    """What must be equal between runs: the detector's verdict, its evidence counts, the triage."""
    return {"severity": f["severity"], "explained": f["explained"],
            "reasons": sorted(r["code"] for r in f["reasons"]),
            "outside_source_ips": sorted(f["outside_source_ips"]), "outside_count": f["outside_count"],
            "inside_source_ips": sorted(f.get("inside_source_ips") or []), "inside_count": f["inside_count"],
            "outside_actions": sorted(f["outside_actions"]),
            "per_source": sorted((s["ip"], s["count"], s["succeeded"]) for s in f["outside_sources"]),
            "issued_by_event_id": f.get("issued_by_event_id"), "status": f["status"], "note": f["note"]}


KEY_SAMPLE = 60   # keys whose context (GET /v1/keys/{id}) is compared with the memory run's at the end


def key_views(port, idx):
    """{key: what the store knows of it} for the stream's keys number idx (the status when not 200)."""
    out, c = {}, harness.Client(port, REQ_TIMEOUT)
    try:
        for i in idx:
            k = "ASIADR%014d" % i
            st, _, d = get_json(c, "/v1/keys/" + k)
            out[k] = {"status": st} if st != 200 else {
                "status": st, "lambda": d.get("lambda"), "issued": d.get("issued"),
                "runtime_marker": d.get("runtime_marker"), "finding_id": d.get("finding_id"),
                "inside": (d["inside"]["count"], sorted(d["inside"]["source_ips"])),
                "outside": (d["outside"]["count"], sorted(d["outside"]["source_ips"])),
                "not_judged": d.get("not_judged", {}).get("count"), "on_behalf": d.get("on_behalf_count")}
    finally:
        c.close()
    return out


def diff_verdicts(a, b, na="durable", nb="memory"):
    """The differences between two {id: verdict} maps, as a list of strings."""
    out = []
    for fid in sorted(set(a) - set(b)):
        out.append("%s only on %s" % (fid, na))
    for fid in sorted(set(b) - set(a)):
        out.append("%s only on %s" % (fid, nb))
    for fid in sorted(set(a) & set(b)):
        for k in a[fid]:
            if a[fid][k] != b[fid][k]:
                out.append("%s %s: %s %r, %s %r" % (fid, k, na, a[fid][k], nb, b[fid][k]))
    return out


# ---- the file's own consistency, read with mdb_dump while no serve holds it -----------------------

LAYOUT_SCHEMA = 1   # the layout below is service/store_lmdb.c's for schema 1 (a newer schema: not checked)


def mdb_dump_all(env):
    """{database name: [(key bytes, value bytes)]} of every named database (mdb_dump -a, read-only)."""
    p = subprocess.run(["mdb_dump", "-a", env], capture_output=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("mdb_dump -a %s: %s" % (env, p.stderr.decode(errors="replace")[:300]))
    dbs, name, pairs, in_data, pending = {}, None, None, False, None
    for line in p.stdout.decode().split("\n"):
        if not in_data:
            if line.startswith("database="):
                name = line[len("database="):]
            elif line == "HEADER=END":
                in_data, pairs, pending = True, [], None
        elif line == "DATA=END":
            dbs[name], in_data, name = pairs, False, None
        elif line.startswith(" "):
            b = bytes.fromhex(line[1:])
            if pending is None:
                pending = b
            else:
                pairs.append((pending, b))
                pending = None
    return dbs


def file_check(data):
    """The store's own check, from outside (docs/durable-store.md section 7 (c)): one read of every
    database of the file left by a kill, each index entry matching its record. Returns (problems,
    summary); summary is None when the file's schema is not the one whose layout this knows."""
    env = env_dir(data)
    if env is None:
        return ["no data.mdb under %s" % data], {}
    dbs = mdb_dump_all(env)
    meta = dict(dbs.get("meta", []))
    ver = int.from_bytes(meta.get(b"schema", b"\0\0\0\0"), sys.byteorder)
    if ver != LAYOUT_SCHEMA:
        return [], None
    bad = []
    keys = {}
    for k, v in dbs.get("key", []):
        if len(v) < 24:
            bad.append("key %r: record of %d bytes" % (k, len(v)))
            continue
        version = int.from_bytes(v[0:8], sys.byteorder)
        expire = int.from_bytes(v[8:16], sys.byteorder, signed=True)
        n_seen = int.from_bytes(v[16:20], sys.byteorder)
        if version == 0:
            bad.append("key %r: version 0" % k)
        keys[k] = (expire, n_seen)
    kexp = {(int.from_bytes(k[:8], "big", signed=True), k[8:]) for k, _ in dbs.get("kexp", [])}
    want = {(e, k) for k, (e, _) in keys.items()}
    if kexp != want:
        bad.append("kexp: %d entries without their key, %d keys without their entry (%s)" %
                   (len(kexp - want), len(want - kexp), sorted(kexp ^ want)[:3]))
    seen = {}
    for k, v in dbs.get("seen", []):
        seen[k] = seen.get(k, 0) + 1
    for k in set(seen) | set(keys):
        if k not in keys:
            bad.append("seen: a dedup set for %r, which has no key record" % k)
        elif seen.get(k, 0) != keys[k][1]:
            bad.append("key %r: n_seen %d, dedup set of %d" % (k, keys[k][1], seen.get(k, 0)))
    finds = {}
    for k, v in dbs.get("finding", []):
        if len(v) < 72 or int.from_bytes(v[0:4], sys.byteorder) != 1:
            bad.append("finding %r: not a finding record" % k)
            continue
        created = int.from_bytes(v[16:24], sys.byteorder, signed=True)
        expire = int.from_bytes(v[32:40], sys.byteorder, signed=True)
        p, strs = 72, []
        for _ in range(5):     # account, function, workload, note, evidence: u32 length, bytes, NUL
            n = int.from_bytes(v[p:p + 4], sys.byteorder)
            p += 4
            if n == 0xFFFFFFFF:
                strs.append(None)
                continue
            strs.append(v[p:p + n])
            if len(v) < p + n + 1 or v[p + n] != 0:
                bad.append("finding %r: a string runs past the record" % k)
                break
            p += n + 1
        else:
            try:
                json.loads(strs[4])
            except ValueError:
                bad.append("finding %r: its evidence is not JSON" % k)
        finds[k] = (created, expire)
    for db, pos in (("fidx", 0), ("fexp", 1)):
        got = {(int.from_bytes(k[:8], "big", signed=True), k[8:]) for k, _ in dbs.get(db, [])}
        want = {(t[pos], k) for k, t in finds.items()}
        if got != want:
            bad.append("%s: %d entries without their finding, %d findings without their entry (%s)" %
                       (db, len(got - want), len(want - got), sorted(got ^ want)[:3]))
    return bad, {"keys": len(keys), "seen": sum(seen.values()), "findings": len(finds)}


# ---- phase: crash ---------------------------------------------------------------------------------

class Ingest:
    """fn for parallel(): posts one request until it is answered with something else than 503/429;
    collects the answers."""

    def __init__(self):
        self.lock, self.answers = threading.Lock(), []

    def client(self, port=None):
        return harness.Client(self.port, REQ_TIMEOUT)

    def __call__(self, c, rq):
        st, hd, d = request_until(c, "POST", rq.path, rq.body, dict(rq.hdr, **AUTH_IN))
        with self.lock:
            self.answers.append((rq, st, d))


def resend(port, reqs):
    """Posts reqs with SENDERS threads; returns (answers, errors)."""
    ing = Ingest()
    ing.port = port
    errors = parallel(ing, reqs)
    return ing.answers, errors


def apply_plans(port, tri, fids):
    """Applies the remaining patches of fids' plans (an unanswered one first), several threads at once;
    each answer must show the state the plan gives. Returns the errors."""
    def fn(c, fid):
        while True:
            with tri.lock:
                s = tri.f[fid]
                k = s["pending"] if s["pending"] is not None else s["done"]
                if k >= len(s["plan"]):
                    return
                body = s["plan"][k]
            st, _, d = patch(c, fid, body)
            if st != 200:
                raise RuntimeError("PATCH %s: %s %s" % (fid, st, str(d)[:200]))
            want = state_after(s["plan"], k + 1)
            if (d.get("status"), d.get("note")) != want:
                raise RuntimeError("PATCH %s answered %s, expected %s" % (fid, (d.get("status"), d.get("note")), want))
            tri.acked(fid, k)
    fn.client = lambda: harness.Client(port, REQ_TIMEOUT)
    return parallel(fn, list(fids))


def phase_crash():
    t0 = time.monotonic()
    data = os.path.join(TMP, "crash-data")
    os.mkdir(data)
    rnd = random.Random(SEED)
    stream, tri = Stream(SEED + 1), Triage()
    feed = Feed(stream)
    extra = {"CREDWATCH_AWS_IP_RANGES": RANGES}
    say("# crash: seed %d, %d rounds, data dir %s, store %s" % (SEED, ROUNDS, data, STORE or "(default)"))
    inst = serve("crash-0", data, extra=extra)
    lost = {"events": 0, "requests": 0, "findings": 0, "unlisted": 0, "status": 0, "note": 0}
    errors, all_acked, n503, restart_s = [], [], 0, []
    file_checked, file_skipped, file_bad = 0, 0, []
    amb = {"req": 0, "req_applied": 0, "patch": 0, "patch_applied": 0, "_pa": 0}   # answers lost to the kills
    for r in range(ROUNDS):
        rd = Round(r)
        ths = [threading.Thread(target=sender, args=(inst.port, rd, feed, tri)) for _ in range(SENDERS)]
        ths.append(threading.Thread(target=patcher, args=(inst.port, rd, tri)))
        for t in ths:
            t.start()
        at = rnd.uniform(0.2, 3.0)
        time.sleep(at)
        inst.proc.send_signal(signal.SIGKILL)     # our own serve, by its pid
        inst.proc.wait(10)
        rd.stop.set()
        for t in ths:
            t.join(REQ_TIMEOUT + 10)
        errors += rd.errors
        n503 += rd.n503
        if any(t.is_alive() for t in ths):
            errors.append("round %d: a sender did not stop" % r)

        if FILE_CHECK:
            try:
                bad, summ = file_check(data)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                bad, summ = [str(e)], {}
            if summ is None:
                file_skipped += 1
            else:
                file_checked += 1
                file_bad += bad
                for b in bad[:3]:
                    say("# round %d: the file: %s" % (r, b))

        t1 = time.monotonic()
        try:
            inst = serve("crash-%d" % (r + 1), data, extra=extra)
        except RuntimeError as e:
            nok("crash: restart %d on the same data dir" % (r + 1), str(e)[:1500])
            return
        restart_s.append(time.monotonic() - t1)

        # (a) every request acknowledged in this round, and a sample of older ones: all duplicates now
        old = rnd.sample(all_acked, min(OLD_SAMPLE, len(all_acked)))
        all_acked += rd.acked
        answers, errs = resend(inst.port, rd.acked + old)
        errors += ["round %d re-send: %s" % (r, e) for e in errs]
        new_here = 0
        for rq, st, d in answers:
            if st != 200 or not valid_answer(d, rq.n):
                errors.append("round %d re-send of request %d: %s %s" % (r, rq.rid, st, str(d)[:300]))
            elif d["accepted"]:
                new_here += d["accepted"]
                lost["requests"] += 1
                if lost["requests"] <= 5:
                    say("# round %d: request %d (acknowledged in round %d: %s) re-sent: %d events new" %
                        (r, rq.rid, rq.round, rq.acks[0], d["accepted"]))
        lost["events"] += new_here

        # (b) every finding reported or seen, with its last acknowledged status and note: in the list
        # (the store's index) and by id
        with tri.lock:
            fids = list(tri.f)
        c = harness.Client(inst.port, REQ_TIMEOUT)
        shown = 0
        try:
            listed = list_findings(c)
            for fid in fids:
                d = listed.get(fid)
                if d is None:
                    st, _, d = get_json(c, "/v1/findings/" + fid)
                    lost["unlisted"] += 1
                    if st != 200:
                        lost["findings"] += 1
                        shown += 1
                        if shown <= 5:
                            say("# round %d: finding %s: %s %s" % (r, fid, st, str(d)[:200]))
                        continue
                acc = tri.acceptable(fid)
                got = (d["status"], d["note"])
                if got not in acc:
                    lost["status"] += got[0] not in [a[0] for a in acc]
                    lost["note"] += got[1] not in [a[1] for a in acc]
                    shown += 1
                    if shown <= 5:
                        say("# round %d: finding %s is %r, acknowledged %r" % (r, fid, got, acc))
                elif len(acc) == 2 and got == acc[1] and acc[0] != acc[1]:
                    with tri.lock:   # the unanswered patch was applied: it is acknowledged now
                        s = tri.f[fid]
                        s["done"], s["pending"] = s["pending"] + 1, None
                    amb["patch_applied"] += 1
        finally:
            c.close()

        # (c) the unacknowledged requests and patches re-sent (a sender's retry)
        answers, errs = resend(inst.port, rd.unacked)
        errors += ["round %d retry: %s" % (r, e) for e in errs]
        for rq, st, d in answers:
            if st != 200 or not valid_answer(d, rq.n):
                errors.append("round %d retry of request %d: %s %s" % (r, rq.rid, st, str(d)[:300]))
                continue
            rq.acks.append(d)
            rq.round = r if rq.round is None else rq.round
            all_acked.append(rq)
            for fid in d.get("findings", []):
                tri.see(fid)
        with tri.lock:
            pend = [fid for fid, s in tri.f.items() if s["pending"] is not None]
        amb["req"] += len(rd.unacked)
        amb["req_applied"] += sum(1 for rq, st, d in answers if st == 200 and isinstance(d, dict) and d["accepted"] == 0)
        amb["patch"] += len(pend) + amb["patch_applied"] - amb["_pa"]
        amb["_pa"] = amb["patch_applied"]
        errors += ["round %d patch retry: %s" % (r, e) for e in apply_pending_only(inst.port, tri, pend)]
        say("# round %d: killed %.2f s in; %d requests (%d events) and %d patches acknowledged, %d requests "
            "unanswered, %d findings; ready again in %.2f s; %d + %d re-sent, %d events new" %
            (r, at, len(rd.acked), rd.events_acked, rd.patches_acked, len(rd.unacked), len(fids), restart_s[-1],
             len(rd.acked), len(old), new_here))

    # the end of the stream: the analyst finishes every plan, every acknowledged request once more
    feed.closed = True
    try:
        final = list_findings(harness.Client(inst.port, REQ_TIMEOUT))
    except RuntimeError as e:
        nok("crash: the findings are listed after the last restart", str(e))
        return
    for fid in final:
        tri.see(fid)
    errors += ["final plans: %s" % e for e in apply_plans(inst.port, tri, list(tri.f))]
    uniq = list({rq.rid: rq for rq in all_acked}.values())
    answers, errs = resend(inst.port, uniq)
    errors += ["final re-send: %s" % e for e in errs]
    final_new = sum(d["accepted"] for rq, st, d in answers if st == 200 and isinstance(d, dict))
    bad = [(rq.rid, st) for rq, st, d in answers if st != 200]
    lost["events"] += final_new
    check(not bad and final_new == 0 and len(answers) == len(uniq),
          "crash: at the end all %d acknowledged requests re-sent are duplicates" % len(uniq),
          "%d events new, %d not 200 (%s), %d answered" % (final_new, len(bad), bad[:5], len(answers)))
    # a graceful restart, then the verdicts
    rc = inst.stop(timeout=30)
    check(rc == 0, "crash: SIGTERM after the last round exits 0", "exit %s" % rc)
    if FILE_CHECK:
        bad, summ = file_check(data)
        file_bad += bad
        if summ is None:
            file_skipped += 1
        else:
            file_checked += 1
            say("# crash: the file after the last stop: %d keys, %d dedup entries, %d findings" %
                (summ["keys"], summ["seen"], summ["findings"]))
    inst = serve("crash-final", data, extra=extra)
    try:
        dur = {fid: verdict(f) for fid, f in list_findings(harness.Client(inst.port, REQ_TIMEOUT)).items()}
        sample = sorted(rnd.sample(range(stream.n_keys), min(KEY_SAMPLE, stream.n_keys)))
        dkeys = key_views(inst.port, sample)
    finally:
        inst.stop(timeout=30)
    missing = sorted(set(tri.f) - set(dur))
    lost["findings"] += len(missing)
    t_dur = time.monotonic() - t0

    # the uninterrupted run: the same requests, once each, on the memory store, then the same triage
    t2 = time.monotonic()
    mem_dir = os.path.join(TMP, "crash-memory")
    os.mkdir(mem_dir)
    mem = serve("crash-memory", mem_dir, store="memory", extra=extra)
    try:
        reqs = list(feed.taken)
        random.Random(SEED + 2).shuffle(reqs)
        answers, errs = resend(mem.port, reqs)
        bad = [(rq.rid, st) for rq, st, d in answers if st != 200]
        check(not errs and not bad, "crash: the uninterrupted run on the memory store takes all %d requests" %
              len(reqs), "%s %s" % (errs[:3], bad[:5]))
        mtri = Triage()
        mfind = list_findings(harness.Client(mem.port, REQ_TIMEOUT))
        for fid in mfind:
            mtri.see(fid)
        errs = apply_plans(mem.port, mtri, list(mfind))
        check(not errs, "crash: the memory run's triage is applied", "; ".join(errs[:3]))
        memv = {fid: verdict(f) for fid, f in list_findings(harness.Client(mem.port, REQ_TIMEOUT)).items()}
        mkeys = key_views(mem.port, sample)
    finally:
        mem.stop(timeout=30)
    t_mem = time.monotonic() - t2

    n_events = sum(rq.n for rq in feed.taken)
    say("# crash: %d requests (%d records, %d keys) taken by senders, %d acknowledged, %d findings (%d with a "
        "finding in the memory run); 503 answers %d; restart to ready: median %.2f s, max %.2f s; "
        "durable phase %.1f s, memory run %.1f s" %
        (len(feed.taken), n_events, stream.n_keys, len(uniq), len(dur), len(memv), n503,
         sorted(restart_s)[len(restart_s) // 2] if restart_s else 0, max(restart_s or [0]), t_dur, t_mem))
    say("# crash: requests in flight at the kills %d (%d of them all duplicates when retried: applied before the kill, "
        "or repeats), patches in flight %d (%d found applied after the restart)" % (amb["req"], amb["req_applied"], amb["patch"], amb["patch_applied"]))
    say("# crash: lost after %d kill -9: %d acknowledged events (%d requests), %d findings, %d statuses, %d notes" %
        (ROUNDS, lost["events"], lost["requests"], lost["findings"], lost["status"], lost["note"]))
    check(not errors, "crash: every answer during the rounds is 2xx (or 503 and retried), none wrong",
          "%d: %s" % (len(errors), "; ".join(errors[:5])))
    check(lost["events"] == 0 and lost["requests"] == 0,
          "crash: every acknowledged request re-sent after each restart is all duplicates",
          "%d events in %d requests were new again" % (lost["events"], lost["requests"]))
    check(lost["findings"] == 0 and lost["unlisted"] == 0,
          "crash: every finding reported or seen is there after each restart, by id and in the list",
          "%d missing, %d not listed (%s)" % (lost["findings"], lost["unlisted"], missing[:5]))
    check(lost["status"] == 0 and lost["note"] == 0,
          "crash: every finding has its last acknowledged status and note after each restart",
          "%d statuses, %d notes lost" % (lost["status"], lost["note"]))
    if not FILE_CHECK:
        say("ok - crash: the file's indexes match their records after each kill # SKIP mdb_dump not installed")
    elif file_skipped:
        say("ok - crash: the file's indexes match their records after each kill # SKIP schema is not %d (layout "
            "unknown here) in %d of %d reads" % (LAYOUT_SCHEMA, file_skipped, file_skipped + file_checked))
    else:
        check(not file_bad, "crash: the file's indexes match their records after each kill (%d reads by mdb_dump: "
              "key/kexp/seen, finding/fidx/fexp)" % file_checked, "%d problems: %s" % (len(file_bad), file_bad[:5]))
    d = diff_verdicts(dkeys, mkeys)
    check(not d, "crash: %d keys sampled (with and without findings) have the same evidence as in the memory run"
          % len(sample), "%d differences: %s" % (len(d), "; ".join(d[:6])))
    d = diff_verdicts(dur, memv)
    check(not d and len(dur) > 0, "crash: the verdicts equal an uninterrupted run on the memory store (%d findings)"
          % len(dur), "%d differences: %s" % (len(d), "; ".join(d[:6])))


def apply_pending_only(port, tri, fids):
    """(c) for patches: the one sent without an answer is sent again (then it counts as acknowledged)."""
    def fn(c, fid):
        with tri.lock:
            s = tri.f[fid]
            k = s["pending"]
            if k is None:
                return
            body = s["plan"][k]
        st, _, d = patch(c, fid, body)
        if st != 200 or (d.get("status"), d.get("note")) != state_after(s["plan"], k + 1):
            raise RuntimeError("PATCH %s: %s %s" % (fid, st, str(d)[:200]))
        tri.acked(fid, k)
    fn.client = lambda: harness.Client(port, REQ_TIMEOUT)
    return parallel(fn, list(fids))


# ---- phase: restart ------------------------------------------------------------------------------------

def fixture_records(key, tag):
    """Fixture 04's three records (issuance, marked call from the own address, unmarked call from there)
    for `key`, with event ids of their own."""
    case = json.load(open(os.path.join(ROOT, "tests", "cases", "04_unmarked_call_from_usual_address.json")))
    out = []
    for i, rec in enumerate(case["records"]):
        rec = copy.deepcopy(rec)
        if "responseElements" in rec and rec["responseElements"]:
            rec["responseElements"]["credentials"]["accessKeyId"] = key
        else:
            rec["userIdentity"]["accessKeyId"] = key
        rec["eventID"] = "%s-%d-%s" % (tag, i, key)
        rec["requestID"] = "%s-r%d-%s" % (tag, i, key)
        out.append(rec)
    return out


def outside_call(key, tag, base_rec):
    rec = copy.deepcopy(base_rec)
    rec.update({"sourceIPAddress": "198.51.100.7", "userAgent": UA_CLI, "eventSource": "sts.amazonaws.com",
                "eventName": "GetCallerIdentity", "eventTime": "2024-03-13T09:10:00Z",
                "eventID": "%s-out-%s" % (tag, key), "requestID": "%s-rout-%s" % (tag, key)})
    return rec


class Scenario:
    """The two restart scenarios on one key each: `own` (fixture 04 without AWS ranges, as the fixture
    runs: the marked call's address is the key's own) and `issued` (issuance only, then a theft)."""

    def __init__(self, tag):
        self.tag = tag
        self.own_key = "ASIAQRST%sOWN000001" % tag[:1].upper()
        self.iss_key = "ASIAQRST%sISS000001" % tag[:1].upper()
        self.own = fixture_records(self.own_key, tag)
        self.iss = fixture_records(self.iss_key, tag)

    def before(self, c):
        """Returns '' or why the evidence was not taken."""
        iss, marked, _ = self.own
        st, _, d = post_records(c, [iss, marked])
        if st != 200 or d.get("accepted") != 2:
            return "own: %s %s" % (st, d)
        st, _, d = post_records(c, [self.iss[0]])
        if st != 200 or d.get("accepted") != 1:
            return "issued: %s %s" % (st, d)
        return ""

    def after(self, c):
        """The second half: the issuance re-delivered (a forwarder's retry of the file that held it) with
        the unmarked call; an outside call of the issuance-only key. Returns the two answers."""
        iss, _, unmarked = self.own
        a = post_records(c, [iss, unmarked])
        b = post_records(c, [outside_call(self.iss_key, self.tag, self.iss[1])])
        return a, b


def key_ctx(c, key):
    st, _, d = get_json(c, "/v1/keys/" + key)
    return d if st == 200 else {"status": st, "body": d}


def phase_restart():
    for mode in ("graceful", "kill"):
        data = os.path.join(TMP, "restart-" + mode)
        os.mkdir(data)
        sc = Scenario(mode)
        inst = serve("restart-%s-1" % mode, data)
        if mode == "graceful":
            txt = inst.log_text()
            check(data in txt and '"store":"memory"' not in txt,
                  "restart: the start log names the store (not memory) and the data dir",
                  "\n".join(l for l in txt.splitlines() if "store" in l)[-600:])
        c = harness.Client(inst.port, REQ_TIMEOUT)
        why = sc.before(c)
        c.close()
        if not check(not why, "restart (%s): the inside evidence is taken" % mode, why):
            inst.kill()
            continue
        if mode == "graceful":
            rc = inst.stop(timeout=30)
            check(rc == 0, "restart (graceful): SIGTERM exits 0", "exit %s" % rc)
        else:
            inst.kill()
        try:
            inst = serve("restart-%s-2" % mode, data)
        except RuntimeError as e:
            nok("restart (%s): serve starts again on the same data dir" % mode, str(e)[:1500])
            continue
        c = harness.Client(inst.port, REQ_TIMEOUT)
        try:
            ctx = key_ctx(c, sc.own_key)
            check(ctx.get("lambda") is True and (ctx.get("inside") or {}).get("count") == 1 and
                  (ctx.get("inside") or {}).get("source_ips") == ["3.5.140.2"],
                  "restart (%s): the key's inside evidence is there after the restart" % mode, str(ctx)[:400])
            (sa, _, da), (sb, _, db) = sc.after(c)
            check(sa == 200 and da.get("accepted") == 1 and da.get("duplicates") == 1 and da.get("findings") == [],
                  "restart (%s): the re-delivered issuance is a duplicate, the unmarked call makes no finding" % mode,
                  "%s %s" % (sa, da))
            ctx = key_ctx(c, sc.own_key)
            check(ctx.get("finding_id") is None and (ctx.get("inside") or {}).get("count") == 2 and
                  (ctx.get("outside") or {}).get("count") == 0,
                  "restart (%s): the unmarked call from the own address is inside (2 inside, 0 outside)" % mode,
                  str(ctx)[:400])
            st, _, d = get_json(c, "/v1/findings/cwf-" + sc.own_key)
            check(st == 404, "restart (%s): GET /v1/findings/cwf-%s is 404" % (mode, sc.own_key), "%s %s" % (st, str(d)[:300]))
            fid = "cwf-" + sc.iss_key
            check(sb == 200 and db.get("accepted") == 1 and fid in db.get("findings", []),
                  "restart (%s): an issuance-only key used from outside after the restart is a finding" % mode,
                  "%s %s" % (sb, db))
            st, _, d = get_json(c, "/v1/findings/" + fid)
            check(st == 200 and "issued_by_lambda" in [r["code"] for r in d.get("reasons", [])],
                  "restart (%s): that finding says Lambda issued the key" % mode, "%s %s" % (st, str(d)[:300]))
        finally:
            c.close()
            inst.stop(timeout=30)

    # the contrast: the same sequence on the memory store judges without the lost evidence
    data = os.path.join(TMP, "restart-memory")
    os.mkdir(data)
    sc = Scenario("memory")
    inst = serve("restart-memory-1", data, store="memory")
    c = harness.Client(inst.port, REQ_TIMEOUT)
    why = sc.before(c)
    c.close()
    inst.stop(timeout=30)
    inst = serve("restart-memory-2", data, store="memory")
    c = harness.Client(inst.port, REQ_TIMEOUT)
    try:
        (sa, _, da), (sb, _, db) = sc.after(c)
        fid = "cwf-" + sc.own_key
        st, _, d = get_json(c, "/v1/findings/" + fid)
        check(not why and sa == 200 and da.get("accepted") == 2 and fid in da.get("findings", []) and st == 200,
              "restart (contrast): on the memory store the same sequence invents a theft (%s: %s)" %
              (fid, d.get("severity") if isinstance(d, dict) else "?"), "%s %s %s %s" % (why, sa, da, st))
        check(sb == 200 and db.get("accepted") == 1 and db.get("findings") == [],
              "restart (contrast): on the memory store the issuance-only key's theft is missed", "%s %s" % (sb, db))
    finally:
        c.close()
        inst.stop(timeout=30)


# ---- phase: lock --------------------------------------------------------------------------------------

def phase_lock():
    data = os.path.join(TMP, "lock-data")
    os.mkdir(data)
    first = serve("lock-first", data)
    rc, out = serve_refused("lock-second", data)
    check(rc is not None and rc != 0, "lock: a second serve on the data dir in use exits non-zero",
          "exit %s: %s" % (rc, out[-600:]))
    check(rc is not None and data in out, "lock: its message names the directory", out[-600:])
    check(first.alive() and wait_ready(first, 5), "lock: the first serve is still ready")
    c = harness.Client(first.port, REQ_TIMEOUT)
    recs = fixture_records("ASIAQLOCK00000000001", "lock")
    st, _, d = post_records(c, recs[:2])
    c.close()
    check(st == 200 and d.get("accepted") == 2, "lock: the first serve still ingests", "%s %s" % (st, d))
    first.kill()
    try:
        third = serve("lock-third", data, store="durable")
    except RuntimeError as e:
        nok("lock: after kill -9 of the first, a new serve (CREDWATCH_STORE=durable) starts on the dir", str(e)[:1500])
        return
    ok("lock: after kill -9 of the first, a new serve (CREDWATCH_STORE=durable) starts on the dir")
    c = harness.Client(third.port, REQ_TIMEOUT)
    st, _, d = post_records(c, recs[:2])
    c.close()
    check(st == 200 and d.get("duplicates") == 2, "lock: and it has what the first acknowledged", "%s %s" % (st, d))
    third.stop(timeout=30)


# ---- phase: schema ---------------------------------------------------------------------------------

def env_dir(data):
    """The directory of the LMDB environment (the one holding data.mdb) under data, or None."""
    for dirpath, _, files in os.walk(data):
        if "data.mdb" in files:
            return dirpath
    return None


def phase_schema():
    if not (shutil.which("mdb_dump") and shutil.which("mdb_load")):
        nok("schema: mdb_dump and mdb_load are installed (Debian lmdb-utils; scripts/deps.sh test)")
        return
    data = os.path.join(TMP, "schema-data")
    os.mkdir(data)
    inst = serve("schema-1", data)
    c = harness.Client(inst.port, REQ_TIMEOUT)
    post_records(c, fixture_records("ASIAQSCHEMA000000001", "schema")[:2])
    c.close()
    rc = inst.stop(timeout=30)
    env = env_dir(data)
    if not check(rc == 0 and env is not None, "schema: the data dir holds an LMDB environment after a clean stop",
                 "exit %s, files %s" % (rc, sorted(os.listdir(data)))):
        return
    dump = subprocess.run(["mdb_dump", "-s", "meta", env], capture_output=True, timeout=30)
    if not check(dump.returncode == 0, "schema: mdb_dump reads the meta database",
                 dump.stderr.decode(errors="replace")[:300]):
        return
    lines = dump.stdout.decode().split("\n")
    key = " " + b"schema".hex()
    try:
        i = lines.index(key, lines.index("HEADER=END"))
        raw = bytes.fromhex(lines[i + 1].strip())
    except (ValueError, IndexError):
        nok("schema: the meta database has a `schema` key", "\n".join(lines[:30]))
        return
    if not check(len(raw) == 4, "schema: the schema version is a u32", raw.hex()):
        return
    ver = int.from_bytes(raw, sys.byteorder)
    lines[i + 1] = " " + (ver + 1).to_bytes(4, sys.byteorder).hex()
    say("# schema: the file says version %d; written %d" % (ver, ver + 1))
    newer, same = os.path.join(TMP, "schema-newer"), os.path.join(TMP, "schema-same")
    for d in (newer, same):
        shutil.copytree(data, d)
        for f in os.listdir(d):      # the serve's lock file and LMDB's reader table are not copied state
            if f.endswith(".lock") or f == "lock.mdb":
                os.unlink(os.path.join(d, f))
    dumpfile = os.path.join(TMP, "schema.dump")
    with open(dumpfile, "w") as f:
        f.write("\n".join(lines))
    ld = subprocess.run(["mdb_load", "-s", "meta", "-f", dumpfile, env_dir(newer)], capture_output=True, timeout=30)
    if not check(ld.returncode == 0, "schema: mdb_load writes the newer version", ld.stderr.decode()[:300]):
        return
    rc, out = serve_refused("schema-newer", newer)
    check(rc is not None and rc != 0, "schema: a data file of schema version %d is refused at start" % (ver + 1),
          "exit %s: %s" % (rc, out[-600:]))
    check("schema" in out and str(ver + 1) in out and newer in out,
          "schema: the message names the schema version and the directory", out[-600:])
    try:
        inst = serve("schema-same", same)
    except RuntimeError as e:
        nok("schema: the same file unchanged starts (control)", str(e)[:1000])
        return
    c = harness.Client(inst.port, REQ_TIMEOUT)
    st, _, d = post_records(c, fixture_records("ASIAQSCHEMA000000001", "schema")[:2])
    c.close()
    inst.stop(timeout=30)
    check(st == 200 and d.get("duplicates") == 2, "schema: the same file unchanged starts with its state (control)",
          "%s %s" % (st, d))


def main():
    say("# durable_test: phases %s, seed %d, store %s" % (" ".join(PHASES), SEED, STORE or "(default)"))
    try:
        for ph in PHASES:
            t = time.monotonic()
            try:
                {"restart": phase_restart, "lock": phase_lock, "schema": phase_schema, "crash": phase_crash}[ph]()
            except Exception as e:  # noqa: BLE001 — a phase that crashed fails, the others still run
                import traceback
                nok("%s: the phase ran to its end" % ph, "%s: %s" % (type(e).__name__, e))
                say("# " + traceback.format_exc().replace("\n", "\n# "))
            say("# %s: %.1f s" % (ph, time.monotonic() - t))
    finally:
        PROCS.stop_all(signal.SIGKILL)
    say("# %d failed" % R.fails)
    sys.exit(1 if R.fails else 0)


if __name__ == "__main__":
    main()
