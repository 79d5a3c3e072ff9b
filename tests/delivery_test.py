#!/usr/bin/python3
"""delivery_test.py — findings out, end to end (driven by tests/it_delivery.sh): real `credwatch serve`
processes, a real redis-server and real webhook receivers (tests/sink_receiver.py) on loopback, and a count
of what was lost. For every scenario the expected events are known from what was posted: revision 1
(finding.created) when a key's issuance and first outside call arrive, one finding.updated per later new
outside address, one finding.status_changed per PATCH. An event is *delivered* when a receiver answered it
2xx within the sink's timeout with a good signature; *lost* is an expected (finding, revision) no receiver
took that way before the deadline.

  A. Redis, 3 instances, 2 webhook sinks (two receivers, two secrets): 1,000 findings posted by 6 client
     threads spread over the instances, then a new outside address for a third of them, then PATCHes.
     Per sink: 0 lost, revisions exactly 1..max per finding, every signature good, repeats (same key)
     carry an identical body; the last revision each receiver got matches GET /v1/findings/{id}.
  B. Receiver failures (Redis, 2 instances): one receiver answers 500, then 429 + Retry-After: 2, then
     sleeps past the sink's 1 s timeout, then is down (stopped, restarted later on its port), then
     recovers: nothing lost. Another answers 400: each event is dead-lettered after one attempt, listed by
     GET /v1/sinks/{name}/dead-letters with a reason naming 400, and arrives after POST .../retry (one
     entry, then {} for all) once the receiver accepts.
  C. Crash and restart (Redis with an fsync'd AOF, 3 instances, receivers slow at 300 ms a request):
     one instance SIGKILLed with deliveries in flight, Redis SIGKILLed and restarted while ingest goes on
     (503s retried as a forwarder would): nothing lost at either receiver.
  D. The embedded store (one instance): 200 findings arrive complete at a receiver; a receiver with another
     secret counts bad signatures and answers 401, which sink_retry.c classifies permanent: each event is
     dead-lettered with a reason naming 401 after one attempt.

Sizes: DELIVERY_FINDINGS (A, default 1000), DELIVERY_SEED. Only processes this script starts are stopped,
by pid (also appended to PIDFILE for the calling shell's trap). Loopback only, stdlib only.
usage: delivery_test.py BIN TMPDIR PIDFILE
"""
import http.client
import json
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time
import uuid

import harness

BIN, TMP, PIDFILE = sys.argv[1], sys.argv[2], sys.argv[3]
HERE = os.path.dirname(os.path.abspath(__file__))
RECEIVER = os.path.join(HERE, "sink_receiver.py")
N_A = int(os.environ.get("DELIVERY_FINDINGS", "1000"))
rnd = random.Random(int(os.environ.get("DELIVERY_SEED", "20240612")))
TOK_IN = "ingest-token-deliv-0123456789"
TOK_RD = "read-token-deliv-0123456789ab"
CLAIM_MS = "3000"          # CREDWATCH_OUTBOX_CLAIM_MS: a dead instance's held events move on after 3 s
# serve wants the claim time above twice every sink's timeout (an event in flight is not taken over)
SINK_TIMEOUTS = {"TIMEOUT_MS": "1400", "CONNECT_TIMEOUT_MS": "500"}
BACKOFF_MAX_S = int(CLAIM_MS) / 2000.0  # sink_run.c caps every wait, a Retry-After too, below half the claim time
REDIS_TIMEOUT_MS = "3000"  # as multi_test.py: a slow fsync'd Redis must not turn into 503s
REQ_TIMEOUT = 20           # s per HTTP request of ours
START_TIMEOUT = 10
HOST = harness.HOST
# libcurl would send loopback requests through a proxy from the environment: not here
NO_PROXY = {"http_proxy": None, "https_proxy": None, "HTTP_PROXY": None, "HTTPS_PROXY": None,
            "all_proxy": None, "ALL_PROXY": None, "no_proxy": HOST, "NO_PROXY": HOST}

R = harness.Report(" # ")
TOTAL = {"events": 0, "lost": 0, "repeats": 0, "sinks": 0}   # over every good receiver of every scenario
ok, nok, check = R.ok, R.nok, R.check


def note(line):
    R.say("# " + line)


def short(x, n=400):
    s = str(x)
    return s if len(s) <= n else s[:n] + "..."


# ---- HTTP ----------------------------------------------------------------------------------------

def Client(port):
    """Every request of this driver is idempotent (event ids, revisions): any failure is tried once more."""
    return harness.Client(port, REQ_TIMEOUT, retry=(http.client.HTTPException, OSError))


def api(port, method, path, body=None, tries=30):
    """A read-token call; a 503 (a store reconnecting) is retried a bounded number of times."""
    c = Client(port)
    try:
        h = {"Authorization": "Bearer " + TOK_RD}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        for _ in range(tries):
            st, hd, d = c.request(method, path, data, h)
            if st != 503:
                break
            time.sleep(0.2)
        return st, d
    finally:
        c.close()


class Ingest:
    """Posts requests from n threads, thread t starting at instance t and moving on to the next instance
    when one is gone (refused, reset); a 503 is retried after a short wait, as a forwarder would. Every
    request is retried until 200 or the deadline: `failed` lists those that never got one."""

    def __init__(self, insts, reqs, n_threads, pause=0.0, deadline_s=120):
        self.insts, self.pause, self.deadline = insts, pause, time.monotonic() + deadline_s
        self.parts = [reqs[i::n_threads] for i in range(n_threads)]
        self.lock = threading.Lock()
        self.done, self.n503, self.moves, self.failed = [], 0, 0, []
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(n_threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def join(self, timeout=150):
        end = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, end - time.monotonic()))
        return not any(t.is_alive() for t in self.threads)

    def run(self, idx):
        at = idx % len(self.insts)
        clients = {}
        for req in self.parts[idx]:
            st = None
            while time.monotonic() < self.deadline:
                inst = self.insts[at]
                if not inst.alive():
                    at = (at + 1) % len(self.insts)
                    continue
                c = clients.setdefault(inst.port, Client(inst.port))
                try:
                    st, hd, d = c.request("POST", req[0], req[1], dict(req[2], Authorization="Bearer " + TOK_IN))
                except OSError:
                    with self.lock:
                        self.moves += 1
                    at = (at + 1) % len(self.insts)
                    time.sleep(0.05)
                    continue
                if st == 503:
                    with self.lock:
                        self.n503 += 1
                    time.sleep(0.2)
                    continue
                break
            with self.lock:
                (self.done if st == 200 else self.failed).append((req, st))
            at = (at + 1) % len(self.insts)
            if self.pause:
                time.sleep(self.pause)
        for c in clients.values():
            c.close()


# ---- CloudTrail records ---------------------------------------------------------------------------

ACCT = "111122223333"
ROLE = "arn:aws:iam::%s:role/orders-fn-role" % ACCT
FN = "orders-fn"
OUT_IPS = ["198.51.100.7", "198.51.100.8", "203.0.113.9"]   # the first outside address of a key
NEW_IPS = ["192.0.2.44", "192.0.2.45"]                      # a later, new one (a notable change)
UA_CLI = "aws-cli/2.15.0 Python/3.11.6 Linux/6.5.0 source/x86_64.ubuntu.22 prompt/off command/sts.get-caller-identity"
BASE0 = 1710318801  # 2024-03-13T08:33:21Z


def uid():
    return str(uuid.UUID(int=rnd.getrandbits(128)))


def ts(sec):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sec))


def issuance(key, base):
    exp = time.strftime("%b %d, %Y, %I:%M:%S %p", time.gmtime(base + 12 * 3600))
    return {"eventVersion": "1.08", "userIdentity": {"type": "AWSService", "invokedBy": "lambda.amazonaws.com"},
            "eventTime": ts(base), "eventSource": "sts.amazonaws.com", "eventName": "AssumeRole",
            "awsRegion": "us-east-1", "sourceIPAddress": "lambda.amazonaws.com", "userAgent": "lambda.amazonaws.com",
            "requestParameters": {"roleArn": ROLE, "roleSessionName": FN},
            "responseElements": {"credentials": {"accessKeyId": key, "expiration": exp}},
            "requestID": uid(), "eventID": uid(), "readOnly": True, "eventType": "AwsApiCall",
            "managementEvent": True, "recipientAccountId": ACCT}


def outside_use(key, base, sec, ip):
    return {"eventVersion": "1.08",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLEID:" + FN,
                             "arn": "arn:aws:sts::%s:assumed-role/orders-fn-role/%s" % (ACCT, FN),
                             "accountId": ACCT, "accessKeyId": key},
            "eventTime": ts(base + sec), "eventSource": "sts.amazonaws.com", "eventName": "GetCallerIdentity",
            "awsRegion": "us-east-1", "sourceIPAddress": ip, "userAgent": UA_CLI, "requestParameters": None,
            "responseElements": None, "requestID": uid(), "eventID": uid(), "readOnly": True,
            "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCT}


class Plan:
    """The keys of one scenario and the events each finding must produce, in revision order:
    [(event, status or None)]: created, then one updated per new outside address, one status_changed
    per PATCH."""

    def __init__(self, tag, n):
        self.keys = ["ASIA%s%011d" % (tag, i) for i in range(n)]
        self.base = {k: BASE0 + i * 60 for i, k in enumerate(self.keys)}
        self.events = {}

    @staticmethod
    def fid(key):
        return "cwf-" + key

    def create_requests(self, keys, per_req):
        """Each key's issuance and first outside call in one request (so revision 1 is the creation),
        per_req keys a request, in shuffled order."""
        keys = list(keys)
        rnd.shuffle(keys)
        out = []
        for i in range(0, len(keys), per_req):
            recs = []
            for k in keys[i:i + per_req]:
                recs += [issuance(k, self.base[k]), outside_use(k, self.base[k], 1800, rnd.choice(OUT_IPS))]
                self.events[self.fid(k)] = [("finding.created", None)]
            out.append(("/v1/ingest/cloudtrail", json.dumps({"Records": recs}).encode(),
                        {"Content-Type": "application/json"}))
        return out

    def update_requests(self, keys, per_req):
        """One call from a new outside address per key: one finding.updated each."""
        keys = list(keys)
        rnd.shuffle(keys)
        out = []
        for i in range(0, len(keys), per_req):
            recs = []
            for k in keys[i:i + per_req]:
                n = sum(1 for e, _ in self.events[self.fid(k)] if e == "finding.updated")
                recs.append(outside_use(k, self.base[k], 2400 + n, NEW_IPS[n % len(NEW_IPS)]))
                self.events[self.fid(k)].append(("finding.updated", None))
            out.append(("/v1/ingest/cloudtrail", json.dumps({"Records": recs}).encode(),
                        {"Content-Type": "application/json"}))
        return out

    def patch(self, insts, keys, status):
        """PATCHes each key's finding to `status` (through the instances in turn); the failures."""
        bad = []
        for i, k in enumerate(keys):
            st, d = api(insts[i % len(insts)].port, "PATCH", "/v1/findings/" + self.fid(k), {"status": status})
            if st == 200:
                self.events[self.fid(k)].append(("finding.status_changed", status))
            else:
                bad.append((k, st, short(d, 120)))
        return bad

    def n_events(self):
        return sum(len(v) for v in self.events.values())


# ---- processes ------------------------------------------------------------------------------------

class Receiver:
    """tests/sink_receiver.py on loopback; its log read incrementally."""

    def __init__(self, procs, name, secret, port=None):
        self.procs, self.name, self.secret, self.port = procs, name, secret, port
        self.log = os.path.join(TMP, "recv-%s.log" % name)
        open(self.log, "a").close()
        self.offset, self.recs, self.proc = 0, [], None
        self.start()

    def start(self):
        argv = [sys.executable, RECEIVER, "--secret", self.secret, "--log", self.log, "--max-seconds", "900"]
        if self.port:
            argv += ["--port", str(self.port)]
        with open(os.path.join(TMP, "recv-%s.err" % self.name), "ab") as err:
            self.proc = self.procs.add(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err,
                                                        stdin=subprocess.DEVNULL))
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT)
        line = self.proc.stdout.readline().strip() if ready else b""
        if not line:
            harness.stop(self.proc, signal.SIGKILL)
            raise RuntimeError("receiver %s did not start: %s" % (self.name, harness.log_tail(
                os.path.join(TMP, "recv-%s.err" % self.name))))
        self.port = int(line)
        return self

    def stop(self):
        harness.stop(self.proc, signal.SIGTERM, 5)

    def url(self):
        return "http://%s:%d/hook" % (HOST, self.port)

    def control(self, **mode):
        c = Client(self.port)
        try:
            st, _, _ = c.request("POST", "/_control", json.dumps(mode).encode(), {"Content-Type": "application/json"})
        finally:
            c.close()
        if st != 200:
            raise RuntimeError("receiver %s control: %s" % (self.name, st))

    def records(self):
        """Every request recorded so far (only whole lines; the file is appended under a lock)."""
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if isinstance(d, dict) and "idempotency_key" in d:
                self.recs.append(d)
        self.offset += end
        return self.recs


def sink_env(sinks):
    """sinks: [(name, receiver, secret, {SUFFIX: value})] -> CREDWATCH_SINK* variables."""
    env = {"CREDWATCH_SINKS": ",".join(s[0] for s in sinks)}
    for name, recv, secret, extra in sinks:
        p = "CREDWATCH_SINK_%s_" % name.upper().replace("-", "_")
        env.update({p + "TYPE": "webhook", p + "URL": recv.url(), p + "SECRET": secret})
        env.update({p + k: v for k, v in SINK_TIMEOUTS.items()})
        env.update({p + k: v for k, v in extra.items()})
    return env


def serve(procs, name, env):
    full = dict(NO_PROXY, CREDWATCH_INGEST_TOKENS=TOK_IN, CREDWATCH_READ_TOKENS=TOK_RD, CREDWATCH_THREADS="4",
                CREDWATCH_OUTBOX_CLAIM_MS=CLAIM_MS, CREDWATCH_DRAIN_SECONDS="5", **env)
    return harness.Instance(BIN, os.path.join(TMP, "credwatch-%s.log" % name), full, name, procs, START_TIMEOUT)


def redis_env(port):
    return {"CREDWATCH_REDIS_URL": "redis://127.0.0.1:%d" % port, "CREDWATCH_REDIS_TIMEOUT_MS": REDIS_TIMEOUT_MS}


# ---- what the receivers got -----------------------------------------------------------------------

class Tally:
    """One receiver's records against a plan: expected keys '<fid>:<rev>' for rev 1..len(events)."""

    def __init__(self, recs, plan, timeout_ms=None):
        self.by_key = {}
        for r in recs:
            self.by_key.setdefault(r.get("idempotency_key") or "", []).append(r)
        good = [r for r in recs if self.taken(r, timeout_ms)]
        self.delivered = {}
        for r in good:
            self.delivered.setdefault(r["idempotency_key"], r)
        want = {"%s:%d" % (fid, i + 1) for fid, evs in plan.events.items() for i in range(len(evs))}
        self.n_expected = len(want)
        self.lost = sorted(want - set(self.delivered))
        self.unexpected = sorted(set(self.by_key) - want)
        self.repeats = len(good) - len(self.delivered)
        self.requests = len(recs)
        self.bad_sig = sum(1 for r in recs if r.get("sig") != "ok")
        self.body_differs = [k for k, rs in self.by_key.items()
                             if len({json.dumps(r.get("body"), sort_keys=True) for r in rs}) > 1]
        self.shape = self.check_shapes(plan)
        # findings whose revision n+1 was first taken before revision n (the order only one consumer promises)
        first = {}
        for r in good:
            fid, rev = r["idempotency_key"].rsplit(":", 1)
            first.setdefault(fid, {}).setdefault(int(rev), r["at"])
        self.inversions = sorted(fid for fid, revs in first.items()
                                 if any(revs.get(n + 1, 1e18) < revs[n] for n in revs))

    @staticmethod
    def taken(r, timeout_ms):
        return 200 <= r.get("status", 0) < 300 and r.get("sig") == "ok" and \
            (timeout_ms is None or r.get("sleep_ms", 0) < timeout_ms)

    def check_shapes(self, plan):
        """Each delivered body: its key, revision, finding id, and the event the plan says (a
        status_changed carrying the new status)."""
        bad = []
        for key, r in self.delivered.items():
            fid, rev = key.rsplit(":", 1)
            b = r.get("body") or {}
            f = b.get("finding") or {}
            evs = plan.events.get(fid)
            if not evs or not rev.isdigit() or not 1 <= int(rev) <= len(evs):
                continue
            ev, status = evs[int(rev) - 1]
            if b.get("idempotency_key") != key or b.get("revision") != int(rev) or f.get("id") != fid or \
                    b.get("event") != ev or r.get("event") != ev or (status and f.get("status") != status):
                bad.append((key, b.get("event"), b.get("revision"), f.get("status"), "want", ev, status))
        return bad

    def summary(self):
        return "%d lost of %d events, %d requests, %d repeats, %d bad signatures, %d findings out of order" % (
            len(self.lost), self.n_expected, self.requests, self.repeats, self.bad_sig, len(self.inversions))


def wait_delivered(recvs, plan, deadline_s, timeout_ms=int(SINK_TIMEOUTS["TIMEOUT_MS"])):
    """Until no receiver lacks an expected event, or the deadline: ({name: Tally}, seconds)."""
    t0 = time.monotonic()
    while True:
        tallies = {r.name: Tally(r.records(), plan, timeout_ms) for r in recvs}
        dt = time.monotonic() - t0
        if all(not t.lost for t in tallies.values()) or dt > deadline_s:
            return tallies, dt
        time.sleep(0.5)


def check_tallies(tag, tallies, dt, secrets_ok=True):
    """The common checks of a scenario's good receivers."""
    for name, t in tallies.items():
        TOTAL["events"] += t.n_expected
        TOTAL["lost"] += len(t.lost)
        TOTAL["repeats"] += t.repeats
        TOTAL["sinks"] += 1
        check(not t.lost and not t.unexpected,
              "%s: sink %s: %s; per finding exactly revisions 1..max (%.1f s)" % (tag, name, t.summary(), dt),
              "lost %s; unexpected %s" % (short(t.lost[:8]), short(t.unexpected[:8])))
        if secrets_ok:
            check(t.bad_sig == 0, "%s: sink %s: every signature valid (%d requests)" % (tag, name, t.requests),
                  "%d bad" % t.bad_sig)
        check(not t.body_differs, "%s: sink %s: every repeat of a key carries an identical body (%d repeats)"
              % (tag, name, t.repeats), short(t.body_differs[:5]))
        check(not t.shape, "%s: sink %s: each body has its key, revision, finding and the planned event"
              % (tag, name), short(t.shape[:4]))


def get_docs(insts, fids, n_threads=6):
    """GET /v1/findings/{id} of each, spread over the live instances: ({fid: doc}, [failures])."""
    live = [i for i in insts if i.alive()]
    docs, bad, lock = {}, [], threading.Lock()
    fids = list(fids)

    def worker(t):
        for j, fid in enumerate(fids[t::n_threads]):
            st, d = api(live[(t + j) % len(live)].port, "GET", "/v1/findings/" + fid)
            with lock:
                if st == 200 and isinstance(d, dict):
                    docs[fid] = d
                else:
                    bad.append((fid, st))
    ths = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(120)
    return docs, bad


def check_state(tag, insts, plan, tallies):
    """The last revision each receiver got per finding is the finding as GET /v1/findings/{id} shows it
    now (the fields an event reports: status, severity, outside addresses, note); where the document
    carries a revision, it is the number of events planned."""
    docs, bad_get = get_docs(insts, plan.events)
    check(not bad_get and len(docs) == len(plan.events), "%s: every planned finding readable (%d GETs)"
          % (tag, len(plan.events)), short(bad_get[:5]))
    fields = lambda f: (f.get("status"), f.get("severity"), sorted(f.get("outside_source_ips") or []), f.get("note"))
    for name, t in tallies.items():
        diff = []
        for fid, d in docs.items():
            n = len(plan.events[fid])
            last = t.delivered.get("%s:%d" % (fid, n))
            if last is None:
                continue  # counted as lost already
            if fields((last.get("body") or {}).get("finding") or {}) != fields(d):
                diff.append((fid, fields(last["body"]["finding"]), fields(d)))
            if "revision" in d and d["revision"] != n:
                diff.append((fid, "api revision %s, planned %d" % (d["revision"], n)))
        check(not diff, "%s: sink %s: the last revision of each finding (%d) is the finding the API shows now"
              % (tag, name, len(docs)), short(diff[:3]))
    has_rev = sum(1 for d in docs.values() if "revision" in d)
    if not has_rev:
        note("%s: GET /v1/findings/{id} carries no revision: the API's state is compared field by field" % tag)


def sinks_view(insts):
    """GET /v1/sinks on each live instance: ({sink: {counter: sum over the instances}}, {sink: queue} as the
    last instance saw it), or (None, why)."""
    sums, queue = {}, {}
    for inst in insts:
        if not inst.alive():
            continue
        try:
            st, d = api(inst.port, "GET", "/v1/sinks", tries=3)
        except OSError as e:
            return None, repr(e)
        if st != 200 or not isinstance(d, dict) or not isinstance(d.get("sinks"), list):
            return None, "%s %s" % (st, short(d, 200))
        for snk in d["sinks"]:
            acc = sums.setdefault(snk.get("name"), {})
            for k in ("delivered", "failed_attempts", "dead_lettered", "dead_lettered_full", "filtered"):
                acc[k] = acc.get(k, 0) + (snk.get(k) or 0)
            queue[snk.get("name")] = snk.get("queue") or {}
    return sums, queue


def check_sinks_drained(tag, insts, tallies, timeout=20):
    """GET /v1/sinks: every receiver's sink shows an empty queue (depth 0, held 0), and the instances'
    delivered counters add up to at least the events the receiver took and at most its 2xx answers (a
    repeat counts as a delivery; an answer that came after the sink's timeout on a loaded machine does not)."""
    res = [None, None]

    def drained():
        res[:] = sinks_view(insts)
        return res[0] is not None and all(res[1].get(n, {}).get("depth") == 0 and res[1].get(n, {}).get("held") == 0
                                          for n in tallies)
    t = wait_until(drained, timeout, 0.5)
    sums, queue = res
    if sums is None:
        nok("%s: GET /v1/sinks answers on every instance" % tag, queue)
        return None
    for name, tl in tallies.items():
        got = sums.get(name, {}).get("delivered")
        lo, hi = len(tl.delivered), len(tl.delivered) + tl.repeats
        check(t is not None and got is not None and lo <= got <= hi, "%s: GET /v1/sinks: sink %s's queue empty (%s), "
              "delivered summed over the instances %s (the receiver took %d events with %d 2xx answers)"
              % (tag, name, queue.get(name), got, lo, hi),
              "%s" % sums.get(name))
    return sums


def dead_letters(inst, sink):
    """Every dead letter of sink through GET /v1/sinks/{name}/dead-letters (following its cursor):
    (status, [entries])."""
    out, cursor = [], None
    for _ in range(200):
        q = "/v1/sinks/%s/dead-letters?limit=100" % sink + ("&cursor=" + cursor if cursor else "")
        st, d = api(inst.port, "GET", q)
        if st != 200 or not isinstance(d, dict):
            return st, out
        lst = next((v for k, v in d.items() if isinstance(v, list)), [])
        out += lst
        cursor = d.get("next_cursor") or d.get("cursor") or d.get("next")
        if not cursor or not lst:
            break
    return 200, out


def dl_key(e):
    """A dead letter's idempotency key, whatever the listing calls its parts."""
    fid = e.get("finding_id") or (e.get("finding") or {}).get("id") or e.get("id")
    return "%s:%s" % (fid, e.get("revision"))


def dl_entry(e):
    return e.get("entry") or e.get("entry_id") or e.get("id")


def logged_dead(insts, sink):
    """The instances' "event dead-lettered" log lines for sink: [detail]."""
    return [d.get("detail", "") for i in insts for d in i.log_json()
            if d.get("msg") == "event dead-lettered" and d.get("sink") == sink]


def wait_until(cond, timeout, step=0.2):
    """Seconds until cond() is true, or None after timeout."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(step)
    return time.monotonic() - t0


# ---- A: Redis, 3 instances, 2 sinks, 1,000 findings ----------------------------------------------

def scenario_a(procs):
    tag = "A"
    secrets = {"hooka": "delivery-secret-hook-a-0001", "hookb": "delivery-secret-hook-b-0002"}
    recvs = [Receiver(procs, n, secrets[n]) for n in ("hooka", "hookb")]
    redis = harness.Redis(TMP, None, log=os.path.join(TMP, "redis-a.log"), procs=procs).start()
    env = dict(redis_env(redis.port), **sink_env([(r.name, r, secrets[r.name], {}) for r in recvs]))
    insts = [serve(procs, "a%d" % i, env) for i in range(3)]
    plan = Plan("DLA", N_A)
    t0 = time.monotonic()
    ing = Ingest(insts, plan.create_requests(plan.keys, 10), 6).start()
    ing.join()
    check(not ing.failed and len(ing.done) == (N_A + 9) // 10,
          "A: %d findings posted in %d CloudTrail batches by 6 threads over 3 instances, every batch 200 (%.1f s)"
          % (N_A, len(ing.done), time.monotonic() - t0), short(ing.failed[:3]))
    upd = plan.keys[::3]
    ing = Ingest(insts, plan.update_requests(upd, 10), 6).start()
    ing.join()
    check(not ing.failed, "A: a new outside address for %d findings (revision 2), every batch 200" % len(upd),
          short(ing.failed[:3]))
    bad = plan.patch(insts, plan.keys[1:40:4], "acknowledged") + plan.patch(insts, plan.keys[2:40:4], "resolved")
    check(not bad, "A: PATCH status of 20 findings through the 3 instances (10 acknowledged, 10 resolved)",
          short(bad[:3]))
    tallies, dt = wait_delivered(recvs, plan, 120)
    check_tallies(tag, tallies, dt)
    check_state(tag, insts, plan, tallies)
    note("A: %d findings, %d events per sink; ingest to last delivery %.1f s" % (len(plan.events), plan.n_events(),
                                                                               time.monotonic() - t0))
    check_sinks_drained(tag, insts, tallies)


# ---- B: receiver failures -------------------------------------------------------------------------

def count(recs, pred):
    return sum(1 for r in recs if pred(r))


def scenario_b(procs):
    tag = "B"
    sec_f, sec_r = "delivery-secret-flaky-0003", "delivery-secret-refuse-004"
    flaky, refuse = Receiver(procs, "flaky", sec_f), Receiver(procs, "refuse", sec_r)
    flaky.control(status=500)
    refuse.control(status=400)
    redis = harness.Redis(TMP, None, log=os.path.join(TMP, "redis-b.log"), procs=procs).start()
    env = dict(redis_env(redis.port), **sink_env([
        ("flaky", flaky, sec_f, {"TIMEOUT_MS": "1000"}),
        ("refuse", refuse, sec_r, {})]))
    insts = [serve(procs, "b%d" % i, env) for i in range(2)]
    plan = Plan("DLB", 60)
    parts = [plan.keys[i::5] for i in range(5)]   # one part posted in each phase
    t_start = time.monotonic()

    def post_part(i):
        ing = Ingest(insts, plan.create_requests(parts[i], 4), 2).start()
        ing.join()
        return not ing.failed

    posted = post_part(0)
    phases = [("500", {"status": 500}, lambda r: r["status"] == 500, 2),
              ("429 Retry-After: 2", {"status": 429, "retry_after": 2}, lambda r: r["status"] == 429, 4),
              ("a 1.5 s sleep past the 1 s timeout", {"sleep_ms": 1500}, lambda r: r["sleep_ms"] >= 1500, 2)]
    seen = []
    for i, (what, mode, pred, n) in enumerate(phases):
        flaky.control(**mode)
        n0 = count(flaky.records(), pred)
        if i:
            posted &= post_part(i)
        t = wait_until(lambda: count(flaky.records(), pred) >= n0 + n, 40)
        seen.append("%s: %d requests" % (what, count(flaky.records(), pred)))
        check(t is not None, "B: the flaky receiver answered %s to the sink's attempts (%s)" % (what, seen[-1]))
    check_retry_after(flaky.records())
    flaky.stop()
    t_down = time.monotonic()
    posted &= post_part(3)
    time.sleep(3)   # the receiver stays down a while (the scenario, not an assertion)
    flaky.start()
    flaky.control()
    note("B: the flaky receiver was down %.1f s; restarted on port %d" % (time.monotonic() - t_down, flaky.port))
    posted &= post_part(4)
    check(posted, "B: %d findings posted over 2 instances across the failure phases, every batch 200" % len(plan.keys))
    tallies, dt = wait_delivered([flaky], plan, 90, timeout_ms=1000)
    t = tallies["flaky"]
    recs = flaky.records()
    check_tallies(tag, tallies, dt)
    note("B: flaky receiver: %d requests: %s; %d answered 200 within the timeout; %d failed requests re-sent"
         % (len(recs), ", ".join(seen), len(t.delivered), len(recs) - len(t.delivered) - t.repeats))
    sums = check_sinks_drained(tag, insts, tallies)
    if sums:
        seen_failed = len(recs) - len(t.delivered) - t.repeats
        got = sums.get("flaky", {}).get("failed_attempts", 0)
        check(got > seen_failed, "B: GET /v1/sinks: failed attempts summed over the instances (%d) exceed the failed "
              "requests the receiver saw (%d): the sink kept trying while it was down" % (got, seen_failed))
    scenario_b_refused(insts, refuse, plan)
    note("B: %.1f s" % (time.monotonic() - t_start))


def check_retry_after(recs):
    """After a 429 with Retry-After: 2 the sink waits at least that, as capped by sink_run.c (below half the
    claim time): the gaps between one connection's successive 429 answers (a sink thread keeps its
    connection), or, when no connection carried two, the fewest 429s in any such interval."""
    want = min(2.0, BACKOFF_MAX_S) - 0.05
    by_peer = {}
    for r in recs:
        if r["status"] == 429:
            by_peer.setdefault(r.get("peer"), []).append(r["at"])
    gaps = [b - a for ts_ in by_peer.values() for a, b in zip(ts_, ts_[1:])]
    if gaps:
        check(min(gaps) >= want, "B: after 429 Retry-After: 2 each sink thread waited >= %.2f s (gaps on one "
              "connection: %s s)" % (want + 0.05, ", ".join("%.2f" % g for g in sorted(gaps)[:6])),
              "shortest %.2f s" % min(gaps))
    else:
        note("B: no connection carried two 429 answers: the Retry-After wait is not measured")


def scenario_b_refused(insts, refuse, plan):
    """The 400 receiver: one attempt per event, each dead-lettered with a reason naming 400; retry one
    entry, then all, once the receiver accepts."""
    want = {"%s:1" % fid for fid in plan.events}
    t = wait_until(lambda: {r["idempotency_key"] for r in refuse.records()} >= want, 60)
    recs = refuse.records()
    per_key = {}
    for r in recs:
        per_key[r["idempotency_key"]] = per_key.get(r["idempotency_key"], 0) + 1
    check(t is not None and all(per_key.get(k) == 1 for k in want) and len(recs) == len(want),
          "B: the 400 receiver got each of the %d events exactly once (400 is permanent: no retry)" % len(want),
          "%d requests, %d keys missing, repeated %s" % (len(recs), len(want - set(per_key)),
                                                          short([k for k, n in per_key.items() if n > 1][:5])))
    wait_until(lambda: len(logged_dead(insts, "refuse")) >= len(want), 10)
    logged = logged_dead(insts, "refuse")
    check(len(logged) == len(want) and all("400" in x for x in logged),
          "B: the instances logged %d events dead-lettered for the 400 sink, each naming HTTP 400" % len(logged),
          short(logged[:3]))
    dl = []

    def listed():
        st, lst = dead_letters(insts[1], "refuse")
        dl[:] = lst
        return st == 200 and {dl_key(e) for e in lst} >= want
    t = wait_until(listed, 30, 0.5)
    no_reason = [e for e in dl if "400" not in str(e.get("reason", ""))]
    check(t is not None and len(dl) == len(want) and not no_reason,
          "B: GET /v1/sinks/refuse/dead-letters lists the %d events, each with a reason naming 400 (%d listed)"
          % (len(want), len(dl)), "missing %s; first entries %s" % (
              short(sorted(want - {dl_key(e) for e in dl})[:3]), short(dl[:2])))
    if not dl:
        return
    # retried while the receiver still refuses (now 410): dead-lettered again, under a new entry
    again = dl[-1]
    refuse.control(status=410)
    n0 = len(refuse.records())
    st, d = api(insts[0].port, "POST", "/v1/sinks/refuse/dead-letters/retry", {"entry": dl_entry(again)})
    re_dl = []

    def relisted():
        st_, lst = dead_letters(insts[0], "refuse")
        re_dl[:] = [e for e in lst if dl_key(e) == dl_key(again)]
        return st_ == 200 and len(lst) == len(want) and re_dl and dl_entry(re_dl[0]) != dl_entry(again)
    t = wait_until(relisted, 30, 0.5)
    after = refuse.records()[n0:]
    check(st in (200, 202) and t is not None and len(after) == 1 and after[0]["status"] == 410 and
          "410" in str(re_dl[0].get("reason")),
          "B: a dead letter retried while the receiver answers 410 is tried once and dead-lettered again under a new "
          "entry, its reason naming 410 (%s -> %s)" % (dl_entry(again), dl_entry(re_dl[0]) if re_dl else None),
          "answer %s %s; %d requests; relisted %s" % (st, short(d), len(after), short(re_dl)))
    st, dl = dead_letters(insts[0], "refuse")
    refuse.control()
    n0 = len(refuse.records())
    one = dl[0]
    st, d = api(insts[0].port, "POST", "/v1/sinks/refuse/dead-letters/retry", {"entry": dl_entry(one)})
    t = wait_until(lambda: any(r["status"] == 200 and r["idempotency_key"] == dl_key(one)
                               for r in refuse.records()[n0:]), 30)
    after = refuse.records()[n0:]
    check(st in (200, 202) and t is not None and len(after) == 1,
          "B: POST .../dead-letters/retry {\"entry\": %s} -> that event arrives, only it (%s, %d requests)"
          % (dl_entry(one), st, len(after)), "answer %s %s; after: %s" % (st, short(d), short(
              [r["idempotency_key"] for r in after][:5])))
    st2, rest = dead_letters(insts[0], "refuse")
    check(st2 == 200 and len(rest) == len(want) - 1, "B: the retried entry left the dead letters (%d left)"
          % len(rest), "%s, %d listed" % (st2, len(rest)))
    st, d = api(insts[1].port, "POST", "/v1/sinks/refuse/dead-letters/retry", {})
    t = wait_until(lambda: {r["idempotency_key"] for r in refuse.records() if r["status"] == 200} >= want, 60)
    got = {r["idempotency_key"] for r in refuse.records() if r["status"] == 200}
    check(st in (200, 202) and t is not None, "B: POST .../dead-letters/retry {} -> all %d arrive (%s; %d of %d)"
          % (len(want) - 1, st, len(got & want), len(want)), "answer %s %s; missing %s" % (
              st, short(d), short(sorted(want - got)[:5])))
    st2, rest = dead_letters(insts[0], "refuse")
    check(st2 == 200 and not rest, "B: no dead letters left for the 400 sink", "%s, %d listed" % (st2, len(rest)))


# ---- C: crash and restart -------------------------------------------------------------------------

def held_by(redis_port, sink, pid):
    """Events of sink the consumer of process pid holds (XPENDING on the outbox stream, README "Delivery
    and claims"; consumer names are host:pid:random), or None when Redis does not say."""
    try:
        out = subprocess.run(["redis-cli", "-p", str(redis_port), "XPENDING", "cw:out:{o}", sink],
                             capture_output=True, text=True, timeout=5).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return None
    for i, line in enumerate(out[:-1]):
        if (":%d:" % pid) in line and out[i + 1].strip().isdigit():
            return int(out[i + 1])
    return 0 if out and out[0].strip().isdigit() else None


def scenario_c(procs):
    tag = "C"
    secrets = {"hookc": "delivery-secret-hook-c-0005", "hookd": "delivery-secret-hook-d-0006"}
    recvs = [Receiver(procs, n, secrets[n]) for n in ("hookc", "hookd")]
    for r in recvs:
        r.control(sleep_ms=300)
    rdir = os.path.join(TMP, "redis-c")
    os.mkdir(rdir)
    redis = harness.Redis(rdir, None, harness.AOF_ALWAYS, os.path.join(TMP, "redis-c.log"), procs).start()
    env = dict(redis_env(redis.port), **sink_env([(r.name, r, secrets[r.name], {}) for r in recvs]))
    insts = [serve(procs, "c%d" % i, env) for i in range(3)]
    plan = Plan("DLC", 150)
    t0 = time.monotonic()
    reqs = plan.create_requests(plan.keys[:100], 5)
    ing = Ingest(insts, reqs, 3, pause=0.1).start()
    # deliveries under way at the slow receivers, then the kill
    t = wait_until(lambda: all(len(r.records()) >= 10 for r in recvs), 30)
    check(t is not None, "C: deliveries in flight at both slow receivers (300 ms a request) before the kill")
    victim = insts[0]
    held = {}
    wait_until(lambda: held.update({r.name: held_by(redis.port, r.name, victim.proc.pid) for r in recvs}) or
               all(held.values()), 3, 0.05)
    t_kill = time.time()
    victim.kill()
    check(all(held.values()), "C: instance %s SIGKILLed at %.1f s holding events of both sinks (XPENDING: %s)" % (
        victim.name, time.monotonic() - t0, held), "it held none: the kill tests nothing")
    note("C: %d of %d batches acknowledged at the kill" % (len(ing.done), len(reqs)))
    ing.join()
    # the rest posted in small paced batches, so that ingest goes on across the Redis outage
    ing2 = Ingest(insts, plan.create_requests(plan.keys[100:], 2) + plan.update_requests(plan.keys[:100:4], 1), 3,
                  pause=0.15).start()
    time.sleep(0.7)
    t_redis = time.time()
    redis.kill()
    time.sleep(1.5)   # Redis down a while, ingest going on (the scenario, not an assertion)
    during = len(ing2.done)
    redis.start()
    t_back = time.time()
    note("C: Redis SIGKILLed and restarted on port %d (AOF, appendfsync always); %d batches acknowledged "
         "before it was back" % (redis.port, during))
    ing2.join()
    check(ing2.n503 > 0 and len(ing2.done) > during,
          "C: ingest went on through the Redis outage: %d answers 503, retried; %d of %d batches acknowledged "
          "after the restart" % (ing2.n503, len(ing2.done) - during, len(ing2.done)))
    check(not ing.failed and not ing2.failed, "C: %d findings posted and 25 updated across the kill and the Redis "
          "restart, every batch acknowledged in the end (%d moves to another instance)"
          % (len(plan.keys), ing.moves + ing2.moves), short((ing.failed + ing2.failed)[:3]))
    for r in recvs:
        r.control()   # fast again, so the rest is quick
    live = [i for i in insts if i.alive()]
    tallies, dt = wait_delivered(recvs, plan, 90)
    check_tallies(tag, tallies, dt)
    check_state(tag, live, plan, tallies)
    for name, t in tallies.items():   # where the repeats came from: times relative to the kill
        reps = {k: [round(r["at"] - t_kill, 2) for r in rs if Tally.taken(r, 1400)]
                for k, rs in t.by_key.items() if sum(1 for r in rs if Tally.taken(r, 1400)) > 1}
        note("C: %s repeats (s after the kill; Redis down %.2f..%.2f): %s" % (
            name, t_redis - t_kill, t_back - t_kill, short(sorted(reps.items(), key=lambda kv: kv[1])[:8], 600)))
    note("C: %.1f s" % (time.monotonic() - t0))


# ---- D: the embedded store ------------------------------------------------------------------------

def scenario_d(procs):
    tag = "D"
    sec, sec_other = "delivery-secret-embedded-07", "delivery-secret-not-the-sinks"
    good, wrong = Receiver(procs, "good", sec), Receiver(procs, "wrong", sec_other)
    env = sink_env([("good", good, sec, {}), ("wrong", wrong, sec, {})])
    inst = serve(procs, "d", dict(env, CREDWATCH_REDIS_URL=None))
    plan = Plan("DLD", 200)
    t0 = time.monotonic()
    ing = Ingest([inst], plan.create_requests(plan.keys, 8), 3).start()
    ing.join()
    upd = plan.keys[::5]
    ing2 = Ingest([inst], plan.update_requests(upd, 8), 3).start()
    ing2.join()
    check(not ing.failed and not ing2.failed, "D: 200 findings and 40 updates posted to one instance on the "
          "embedded store, every batch 200", short((ing.failed + ing2.failed)[:3]))
    tallies, dt = wait_delivered([good], plan, 60)
    check_tallies(tag, tallies, dt)
    check(not tallies["good"].inversions, "D: one consumer: every finding's revisions arrived in order",
          short(tallies["good"].inversions[:5]))
    check_state(tag, [inst], plan, tallies)
    want = {"%s:%d" % (fid, i + 1) for fid, evs in plan.events.items() for i in range(len(evs))}
    t = wait_until(lambda: {r["idempotency_key"] for r in wrong.records()} >= want, 30)
    recs = wrong.records()
    bad = count(recs, lambda r: r["sig"] == "bad" and r["status"] == 401)
    check(t is not None and bad == len(recs), "D: the receiver with another secret counted %d bad signatures of %d "
          "requests and answered each 401" % (bad, len(recs)))
    per_key = {}
    for r in recs:
        per_key[r["idempotency_key"]] = per_key.get(r["idempotency_key"], 0) + 1
    check(set(per_key) == want and all(n == 1 for n in per_key.values()),
          "D: 401 is permanent (sink_retry.c): each of the %d events tried once, never again (%d requests)"
          % (len(want), len(recs)), "missing %d, repeated %s" % (len(want - set(per_key)), short(
              [k for k, n in per_key.items() if n > 1][:5])))
    wait_until(lambda: len(logged_dead([inst], "wrong")) >= len(want), 10)
    logged = logged_dead([inst], "wrong")
    check(len(logged) == len(want) and all("401" in x for x in logged),
          "D: the instance logged %d events dead-lettered for the wrong-secret sink, each naming HTTP 401"
          % len(logged), short(logged[:3]))
    dl = []

    def listed():
        st, lst = dead_letters(inst, "wrong")
        dl[:] = lst
        return st == 200 and {dl_key(e) for e in lst} >= want
    t = wait_until(listed, 20, 0.5)
    no_reason = [e for e in dl if "401" not in str(e.get("reason", ""))]
    check(t is not None and len(dl) == len(want) and not no_reason,
          "D: GET /v1/sinks/wrong/dead-letters lists the %d events, each with a reason naming 401 (%d listed)"
          % (len(want), len(dl)), "first entries %s" % short(dl[:2]))
    sums = check_sinks_drained(tag, [inst], tallies)
    if sums:
        w = sums.get("wrong", {})
        check(w.get("dead_lettered") == len(want) and w.get("delivered") == 0 and w.get("failed_attempts") == 0,
              "D: GET /v1/sinks: the wrong-secret sink dead-lettered %s, delivered %s, retried %s"
              % (w.get("dead_lettered"), w.get("delivered"), w.get("failed_attempts")), str(w))
    note("D: %.1f s" % (time.monotonic() - t0))


# ---- main -----------------------------------------------------------------------------------------

def main():
    t0 = time.monotonic()
    ok("delivery test: %s, receivers %s, claim time %s ms, A with %d findings" % (BIN, RECEIVER, CLAIM_MS, N_A))
    only = os.environ.get("DELIVERY_ONLY", "ABCD")
    for name, fn in (("A", scenario_a), ("B", scenario_b), ("C", scenario_c), ("D", scenario_d)):
        if name not in only:
            continue
        procs = harness.Procs(PIDFILE)
        ts0 = time.monotonic()
        try:
            fn(procs)
        except Exception as e:  # noqa: BLE001 — reported, then the next scenario
            nok("scenario %s ran to the end" % name, repr(e))
        finally:
            procs.stop_all(timeout=5, sig_for=lambda p: signal.SIGKILL)
        note("scenario %s: %.1f s" % (name, time.monotonic() - ts0))
    check(R.fails == 0, "delivery: scenarios %s: %d events expected at %d receivers, %d lost, %d repeats, %.0f s"
          % (only, TOTAL["events"], TOTAL["sinks"], TOTAL["lost"], TOTAL["repeats"], time.monotonic() - t0),
          "%d checks failed" % R.fails)
    if R.fails:
        for f in sorted(os.listdir(TMP)):
            if f.startswith("credwatch-") and f.endswith(".log"):
                print("# --- %s (tail)" % f)
                for line in harness.log_tail(os.path.join(TMP, f), 3000).splitlines()[-12:]:
                    print("#   " + line)
    return 1 if R.fails else 0


if __name__ == "__main__":
    sys.exit(main())
