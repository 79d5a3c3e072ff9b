#!/usr/bin/python3
"""cluster_test.py — 2 `credwatch serve` instances over a 3-master Redis Cluster (driven by
tests/it_cluster.sh, which starts the cluster and passes its ports and pids).

Phases, each printing `ok - name` / `not ok - name`:
  1. 200 keys, issuance + inside uses to instance A and outside uses to instance B, concurrently:
     exactly one finding per key, created once, readable and listed (cursor paging) from both
     instances; findings spread over the 3 masters while the cw:fidx index lives on one.
  2. The same batch to A then to B: all duplicates, nothing changes.
  3. Live resharding during ingest: a loader streams new events for a fixed set of keys while
     `redis-cli --cluster reshard` moves 3000 slots (including the index's) to another master and
     3000 back: answers are 2xx or 503 only; every acknowledged event counted exactly once, one
     finding per stolen key, ids unique in the listing, each finding's evidence up to date.
  4. A master SIGSTOPped under ingest (no replicas: its slots are unavailable): requests touching
     its slots answer 503 + Retry-After, the others keep answering 2xx, /healthz stays 200; after
     SIGCONT every instance recovers without a restart; every acknowledged event counted once.
  5. The same master SIGKILLed and restarted (same port, nodes.conf and fsync'd AOF) under ingest:
     the same checks.
  Before 4: a finding write interrupted after its key state committed (phase_interrupted): a
     retry repairs the finding and its index entry.
The loader of phases 3-5 retries each request (on 503 or a connection error) until it is
acknowledged, as EventBridge would, so every event it sent ends acknowledged.

Helpers (HTTP client, CloudTrail records, listing) come from tests/multi_test.py, imported with the
same first three arguments. Only processes this script starts are stopped, by pid (recorded in
PIDFILE too); the cluster nodes are it_cluster.sh's, this script only signals the one it tests.
With CW_REDIS_TLS_DIR (tests/it_redis_tls.sh), the same over TLS: the nodes' ports are TLS ports, the
instances use rediss:// seeds (so every node met through MOVED/ASK is reached over TLS), redis-cli --tls.
usage: cluster_test.py BIN TMPDIR PIDFILE PORT1,PORT2,PORT3 PID1,PID2,PID3
"""
import gzip
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import multi_test as mt  # noqa: E402 — reads BIN TMP PIDFILE from sys.argv[1:4], as we do
from multi_test import (Client, KeySet, check, key_counts, list_all, make_requests, metric, nok,  # noqa: E402
                        ok, post, read_get, run_threads)

BIN, TMP, PIDFILE = sys.argv[1], sys.argv[2], sys.argv[3]
PORTS = [int(p) for p in sys.argv[4].split(",")]
PIDS = [int(p) for p in sys.argv[5].split(",")]
SEEDS = ("rediss://" if harness.TLS_DIR else "") + ",".join("127.0.0.1:%d" % p for p in PORTS)
VICTIM = 1                # index of the master that is stopped (it_cluster.sh gave it an AOF)
INDEX_KEY = "cw:fidx"
RESHARD_SLOTS = 3000
OUTAGE_S = 5.0            # shorter than cluster-node-timeout (15 s): the rest of the cluster stays ok
RECOVER_MAX_S = 6.0


# ---- cluster ----------------------------------------------------------------------------------

def crc16(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xffff if crc & 0x8000 else (crc << 1) & 0xffff
    return crc


def key_slot(key):
    k = key.encode()
    o = k.find(b"{")
    if o >= 0:
        c = k.find(b"}", o + 1)
        if c > o + 1:
            k = k[o + 1:c]
    return crc16(k) % 16384


def rcli(port, *args, timeout=5):
    r = subprocess.run(["redis-cli"] + harness.redis_cli_args() + ["-h", "127.0.0.1", "-p", str(port)] + list(args),
                       capture_output=True,
                       text=True, timeout=timeout)
    return r.stdout


def cluster_nodes(port=None):
    """{port: (node id, set of slots)} as a live node sees it."""
    for p in ([port] if port else PORTS):
        try:
            text = rcli(p, "CLUSTER", "NODES")
        except subprocess.TimeoutExpired:
            continue
        if not text.strip():
            continue
        out = {}
        for line in text.splitlines():
            f = line.split()
            if len(f) < 8 or "master" not in f[2]:
                continue
            slots = set()
            for r in f[8:]:
                if r.startswith("["):
                    continue  # a slot being migrated/imported: still owned by the node listed first
                lo, _, hi = r.partition("-")
                slots.update(range(int(lo), int(hi or lo) + 1))
            out[int(f[1].split("@")[0].rsplit(":", 1)[1])] = (f[0], slots)
        return out
    return {}


def owner_of(nodes, slot):
    for p, (_, slots) in nodes.items():
        if slot in slots:
            return p
    return None


def cluster_ok(port):
    try:
        return "cluster_state:ok" in rcli(port, "CLUSTER", "INFO", timeout=2)
    except subprocess.TimeoutExpired:
        return False


def keys_on(port, pattern):
    return [k for k in rcli(port, "--scan", "--pattern", pattern, timeout=20).split() if k]


# ---- instances --------------------------------------------------------------------------------

def wait_ready(insts, timeout):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if all(read_get(i.port, "/readyz")[0] == 200 for i in insts):
                return time.time() - t0
        except OSError:
            pass
        time.sleep(0.1)
    return None


def created_total(insts):
    return sum(metric(i.port, "credwatch_findings_created_total") or 0 for i in insts)


# ---- phase 1: many keys -----------------------------------------------------------------------

def phase_many_keys(insts):
    A, B = insts
    ks = KeySet("CLA", 200)
    inside_reqs = make_requests([r for k in ks.keys for r in ks.inside[k]])
    outside_reqs = make_requests([r for k in ks.keys for r in ks.outside[k]])
    jobs = [(A.port, inside_reqs[i::3]) for i in range(3)] + [(B.port, outside_reqs[i::3]) for i in range(3)]
    created0 = created_total(insts)
    t0 = time.time()
    answers, errors = run_threads(jobs)
    dt = time.time() - t0
    bad = [(st, d) for _, st, _, d in answers if st != 200]
    check(not errors and not bad and len(answers) == len(inside_reqs) + len(outside_reqs),
          "200 keys: %d concurrent requests to A (inside) and B (outside) all 200 (%.1fs)" % (len(answers), dt),
          "errors %s, non-200 %s" % (errors[:3], bad[:3]))
    acc = sum(d["accepted"] for _, st, _, d in answers if st == 200)
    dup = sum(d["duplicates"] for _, st, _, d in answers if st == 200)
    check(acc == len(ks.all_records()) and dup == 0,
          "every record accepted once (%d records, %d accepted, %d duplicates)" % (len(ks.all_records()), acc, dup))
    want = sorted("cwf-" + k for k in ks.finding_keys())
    created = created_total(insts) - created0
    check(len(want) == 200 and created == 200,
          "one finding created per stolen key across instances (created_total sum %d for %d keys)"
          % (created, len(want)))
    for inst in insts:
        ids = list_all(inst.port, 7)
        check(sorted(ids) == want and len(set(ids)) == len(ids),
              "instance %s lists exactly the 200 findings by paging with cursors (got %d, %d distinct)"
              % (inst.name, len(ids), len(set(ids))))
    bad_get, docs = [], {}
    for inst in insts:
        for fid in want:
            st, _, d = read_get(inst.port, "/v1/findings/" + fid)
            if st != 200 or d.get("id") != fid:
                bad_get.append((inst.name, fid, st))
            else:
                docs.setdefault(fid, []).append(d)
    check(not bad_get and all(len(v) == 2 and v[0] == v[1] for v in docs.values()),
          "every finding readable from both instances, identical documents (400 GETs)", str(bad_get[:5]))
    wrong = [(k, c) for k in ks.keys for c in [[key_counts(i.port, k) for i in insts]]
             if any(x != (ks.n_inside(k), len(ks.outside[k])) for x in c)]
    check(not wrong, "GET /v1/keys on both instances: counts equal the distinct events sent (200 keys)",
          str(wrong[:5]))
    fc = [fid for fid, v in docs.items() if v[0].get("outside_count") != len(ks.outside[fid[4:]])]
    check(not fc, "each finding's outside_count equals the outside events sent", str(fc[:5]))
    # where the data lives: findings on every master, the listing index on exactly one
    per_node = {p: len(keys_on(p, "cw:f:*")) for p in PORTS}
    idx_nodes = [p for p in PORTS if INDEX_KEY in keys_on(p, INDEX_KEY)]
    zcard = rcli(idx_nodes[0], "ZCARD", INDEX_KEY).strip() if len(idx_nodes) == 1 else "?"
    check(all(n > 0 for n in per_node.values()) and sum(per_node.values()) == 200,
          "the 200 findings are spread over the 3 masters (%s)" % "/".join(str(per_node[p]) for p in PORTS))
    check(len(idx_nodes) == 1 and zcard == "200",
          "the cw:fidx index lives on one master (port %s) and holds the 200 ids (ZCARD %s)"
          % (idx_nodes[0] if idx_nodes else None, zcard))


# ---- phase 2: the same batch twice -------------------------------------------------------------

def snapshot(insts, keys):
    snap = {}
    for inst in insts:
        for k in keys:
            snap[(inst.name, "k", k)] = read_get(inst.port, "/v1/keys/" + k)[2]
            snap[(inst.name, "f", k)] = read_get(inst.port, "/v1/findings/cwf-" + k)[:3:2]
        snap[(inst.name, "list")] = list_all(inst.port, 100)
    return snap


def phase_twice(insts):
    A, B = insts
    ks = KeySet("CLB", 10)
    recs = ks.all_records()
    random.Random(7).shuffle(recs)
    rq = ("/v1/ingest/cloudtrail", gzip.compress(json.dumps({"Records": recs}).encode()),
          {"Content-Type": "application/gzip"}, recs)
    st1, _, d1 = post(Client(A.port), rq)
    check(st1 == 200 and d1["accepted"] == len(recs) and d1["duplicates"] == 0 and d1["findings_count"] == 10,
          "a new batch to A: all %d records accepted, 10 findings" % len(recs), "%s %r" % (st1, d1))
    before = snapshot(insts, ks.keys)
    c0 = created_total(insts)
    u0 = sum(metric(i.port, "credwatch_findings_updated_total") or 0 for i in insts)
    st2, _, d2 = post(Client(B.port), rq)
    check(st2 == 200 and d2["accepted"] == 0 and d2["duplicates"] == len(recs),
          "the same batch to B: all %d records reported as duplicates" % len(recs), "%s %r" % (st2, d2))
    after = snapshot(insts, ks.keys)
    diff = [k for k in before if before[k] != after[k]]
    c1 = created_total(insts) - c0
    u1 = sum(metric(i.port, "credwatch_findings_updated_total") or 0 for i in insts) - u0
    check(not diff and c1 == 0 and u1 == 0, "the second post changed nothing (keys, findings incl. updated_at, "
          "listing; %d created, %d updated)" % (c1, u1), str(diff[:3]))


# ---- phases 3-5: a stream of new events for a fixed set of keys ---------------------------------

class Stream:
    """New events for a fixed set of keys, built on demand, and what was acknowledged of them."""

    def __init__(self, tag, n_keys, p_outside):
        self.p_outside = p_outside   # per event: low, so that findings keep being created
        self.ks = KeySet(tag, n_keys, inside=(0, 0), outside=(0, 0))  # issuances only
        self.keys = self.ks.keys
        self.base = {k: 1710318801 + i * 60 for i, k in enumerate(self.keys)}
        self.lock = threading.Lock()
        self.next_sec = {k: 4 for k in self.keys}
        self.acked_in = {k: set() for k in self.keys}
        self.acked_out = {k: set() for k in self.keys}

    def records_for(self, r, key, n, p_outside):
        recs = []
        for _ in range(n):
            with self.lock:
                sec = self.next_sec[key]
                self.next_sec[key] += 1
            if r.random() < p_outside:
                recs.append(mt.use(key, self.base[key], 1800 + sec, r.choice(mt.OUT_IPS), mt.UA_CLI,
                                   r.choice(mt.OUT_ACTIONS)))
            else:
                recs.append(mt.use(key, self.base[key], sec, mt.inside_ip(key), mt.UA_PY,
                                   r.choice(mt.INSIDE_ACTIONS)))
        return recs

    def request(self, r, keys=None, p_outside=None):
        p_outside = self.p_outside if p_outside is None else p_outside
        keys = keys or r.sample(self.keys, r.randint(1, 3))
        recs = [x for k in keys for x in self.records_for(r, k, r.randint(1, 3), p_outside)]
        if len(recs) == 1 and r.random() < 0.7:
            body = json.dumps(mt.eventbridge(recs[0])).encode()
            return ("/v1/ingest/eventbridge", body, {"Content-Type": "application/json"}, recs)
        body = json.dumps({"Records": recs}).encode()
        if r.random() < 0.4:
            return ("/v1/ingest/cloudtrail", gzip.compress(body), {"Content-Type": "application/gzip"}, recs)
        return ("/v1/ingest/cloudtrail", body, {"Content-Type": "application/json"}, recs)

    def acked(self, rq):
        with self.lock:
            for x in rq[3]:
                k = x["userIdentity"]["accessKeyId"]
                (self.acked_out if x["sourceIPAddress"] in mt.OUT_IPS else self.acked_in)[k].add(x["eventID"])

    def stolen(self):
        return [k for k in self.keys if self.acked_out[k]]


class Loader:
    """Threads posting new requests of a Stream to the instances in turn. A request answered 503
    (or a connection error) is set aside and retried later, as a sender would, while the thread
    goes on with new ones (so requests that do not touch a failed master keep flowing); once
    stopped, a thread only retries what it set aside until acknowledged: nothing is left half-sent."""

    def __init__(self, stream, ports, n_threads=4, pause=0.02, seed=1):
        self.stream, self.ports, self.pause = stream, ports, pause
        self.lock = threading.Lock()
        self.log = []            # (t_sent, t_answered, port, status, headers or error, request)
        self.gave_up = []
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(seed * 100 + i,)) for i in range(n_threads)]

    def start(self):
        for t in self.threads:
            t.start()

    def run(self, seed):
        r = random.Random(seed)
        clients = {p: Client(p) for p in self.ports}
        n = seed
        retry = []               # [due time, first sent, request]
        last_retry = False
        while retry or not self.stop_ev.is_set():
            now = time.time()
            due = [x for x in retry if x[0] <= now]
            # retries alternate with new requests: a retry against a stopped master may wait for
            # the command timeout, and new requests on the other masters must keep flowing
            if due and (not last_retry or self.stop_ev.is_set()):
                last_retry = True
                retry.remove(due[0])
                _, first, rq = due[0]
            elif self.stop_ev.is_set():
                time.sleep(0.02)  # only set-aside requests are left, none due yet
                continue
            else:
                last_retry = False
                first, rq = now, self.stream.request(r)
            port = self.ports[n % len(self.ports)]
            n += 1
            t0 = time.time()
            try:
                st, hd, _ = post(clients[port], rq)
            except Exception as e:  # noqa: BLE001 — logged, retried
                clients[port].close()
                st, hd = None, repr(e)
            t1 = time.time()
            with self.lock:
                self.log.append((t0, t1, port, st, hd, rq))
            if st is not None and 200 <= st < 300:
                self.stream.acked(rq)
            elif t1 - first > 60:
                with self.lock:
                    self.gave_up.append(rq)
            else:
                # as told by Retry-After (capped: the test is short), so that new requests, which
                # may not touch a failed master, keep flowing between the retries
                try:
                    delay = min(float(hd.get("retry-after", 0.2)), 2.0) if st == 503 else 0.2
                except ValueError:
                    delay = 0.2
                retry.append([t1 + delay, first, rq])
            if self.pause:
                time.sleep(self.pause)
        for c in clients.values():
            c.close()

    def stop(self, timeout=90):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self.threads)


def check_answers(loader, what):
    log = list(loader.log)
    n503 = sum(1 for e in log if e[3] == 503)
    errs = [e for e in log if e[3] is None]
    other = [e for e in log if e[3] is not None and e[3] != 503 and not 200 <= e[3] < 300]
    no_ra = [e for e in log if e[3] == 503 and "retry-after" not in e[4]]
    n2xx = sum(1 for e in log if e[3] is not None and 200 <= e[3] < 300)
    check(not other and not errs, "%s: every answer 2xx or 503, never 4xx, no connection error (%d answers: "
          "%d 2xx, %d 503)" % (what, len(log), n2xx, n503),
          str([(e[3], e[4] if e[3] is None else "") for e in (other + errs)[:3]]))
    check(not no_ra, "%s: every 503 carries Retry-After" % what, "%d without" % len(no_ra))
    check(not loader.gave_up, "%s: every request eventually acknowledged (%d gave up after 60 s)"
          % (what, len(loader.gave_up)))
    return n503


def check_counts(insts, stream, what):
    wrong = []
    for k in stream.keys:
        want = (len(stream.acked_in[k]), len(stream.acked_out[k]))
        for inst in insts:
            got = key_counts(inst.port, k)
            if got != want:
                wrong.append((inst.name, k, want, got))
    n_ev = sum(len(stream.acked_in[k]) + len(stream.acked_out[k]) for k in stream.keys)
    check(not wrong, "%s: every acknowledged event counted exactly once (%d events, %d keys, GET /v1/keys on "
          "both instances)" % (what, n_ev, len(stream.keys)), str(wrong[:5]))


def check_findings(insts, stream, created_before, what, had_503):
    stolen = stream.stolen()
    created = created_total(insts) - created_before
    if not had_503:
        check(created == len(stolen), "%s: findings created exactly once per stolen key (created_total %d, "
              "%d stolen keys)" % (what, created, len(stolen)))
    else:
        # a finding created by a request that then answered 503 (another of its writes failed) is
        # not in created_total: the metric counts what acknowledged requests created
        check(created <= len(stolen), "%s: no finding created twice (created_total %d <= %d stolen keys; "
              "creations inside requests that answered 503 are not counted)" % (what, created, len(stolen)))
    mine = set("cwf-" + k for k in stream.keys)
    for inst in insts:
        ids = list_all(inst.port, 50)
        got = sorted(i for i in ids if i in mine)
        check(len(set(ids)) == len(ids) and got == sorted("cwf-" + k for k in stolen),
              "%s: instance %s lists one finding per stolen key, ids unique (%d listed, %d distinct, %d of "
              "this phase's %d)" % (what, inst.name, len(ids), len(set(ids)), len(got), len(stolen)))
    stale = []
    for k in stolen:
        st, _, d = read_get(insts[0].port, "/v1/findings/cwf-" + k)
        if st != 200 or d.get("outside_count") != len(stream.acked_out[k]):
            stale.append((k, st, d.get("outside_count") if st == 200 else None, len(stream.acked_out[k])))
    return stale


def issuances(inst, stream, what):
    rq = ("/v1/ingest/cloudtrail", json.dumps({"Records": [stream.ks.inside[k][0] for k in stream.keys]}).encode(),
          {"Content-Type": "application/json"}, [])
    st, _, d = post(Client(inst.port), rq)
    check(st == 200 and d["accepted"] == len(stream.keys), "%s: issuances of %d new keys ingested"
          % (what, len(stream.keys)), "%s %r" % (st, d))


def error_stats():
    """Redirections and retries the masters answered (INFO errorstats), summed over the nodes."""
    tot = {}
    for p in PORTS:
        try:
            text = rcli(p, "INFO", "errorstats", timeout=2)
        except subprocess.TimeoutExpired:
            continue
        for line in text.splitlines():
            if line.startswith("errorstat_"):
                name, _, v = line.partition(":")
                tot[name[10:]] = tot.get(name[10:], 0) + int(v.split("=")[1])
    return tot


def slow_migration(stream, src, dst, ids):
    """Moves, by hand, the slots of 8 of the stream's keys (state + dedup set, their findings, and
    the index if src has it) from src to dst, one key per MIGRATE with pauses between: the slots
    stay open for seconds, with one key of an access key moved and the other not, so clients get
    ASK (key gone from src) and TRYAGAIN (a script's keys split between the nodes)."""
    nodes = cluster_nodes()
    picked = [k for k in stream.keys if key_slot("cw:k:{%s}" % k) in nodes[src][1]][:8]
    slots = set(key_slot("cw:k:{%s}" % k) for k in picked)
    slots |= set(key_slot("cw:f:{cwf-%s}" % k) for k in picked) & nodes[src][1]
    if key_slot(INDEX_KEY) in nodes[src][1]:
        slots.add(key_slot(INDEX_KEY))
    for sl in sorted(slots):
        rcli(dst, "CLUSTER", "SETSLOT", str(sl), "IMPORTING", ids[src])
        rcli(src, "CLUSTER", "SETSLOT", str(sl), "MIGRATING", ids[dst])
    time.sleep(0.3)
    moved = 0
    for sl in sorted(slots):
        for k in rcli(src, "CLUSTER", "GETKEYSINSLOT", str(sl), "100").split():
            out = rcli(src, "MIGRATE", "127.0.0.1", str(dst), "", "0", "5000", "KEYS", k).strip()
            moved += out in ("OK", "NOKEY")
            time.sleep(0.15)
    time.sleep(0.3)
    for sl in sorted(slots):
        for p in [dst, src] + [q for q in PORTS if q not in (src, dst)]:
            rcli(p, "CLUSTER", "SETSLOT", str(sl), "NODE", ids[dst])
    return len(slots), moved


def phase_reshard(insts, stream):
    A, B = insts
    created0 = created_total(insts)
    issuances(A, stream, "reshard")
    err0 = error_stats()
    nodes = cluster_nodes()
    ids = {p: nodes[p][0] for p in PORTS}
    idx_slot = key_slot(INDEX_KEY)
    src = owner_of(nodes, idx_slot)          # the index's master gives 3000 slots (its lowest, the
    dst = [p for p in PORTS if p != src and PORTS.index(p) != VICTIM][0]  # index's among them)
    loader = Loader(stream, [A.port, B.port], n_threads=4, pause=0.01, seed=3)
    loader.start()
    time.sleep(1.0)
    t0 = time.time()
    n_slots, n_keys = slow_migration(stream, src, dst, ids)
    print("# reshard: %d slots moved by hand, %d keys one MIGRATE at a time (%.1fs)"
          % (n_slots, n_keys, time.time() - t0), flush=True)
    moves = []
    for a, b in ((src, dst), (dst, src)):
        t0 = time.time()
        r = subprocess.run(["redis-cli"] + harness.redis_cli_args() +
                           ["--cluster", "reshard", "127.0.0.1:%d" % a, "--cluster-from", ids[a],
                            "--cluster-to", ids[b], "--cluster-slots", str(RESHARD_SLOTS), "--cluster-yes"],
                           capture_output=True, text=True, timeout=90)
        moves.append((a, b, r.returncode, time.time() - t0, r.stdout[-500:] + r.stderr[-500:]))
        if a == src:
            idx_owner_mid = owner_of(cluster_nodes(), idx_slot)
        time.sleep(0.5)
    time.sleep(0.5)
    t_moves = (loader.log[0][0] if loader.log else time.time(), time.time())
    stopped = loader.stop()
    err1 = error_stats()
    after = cluster_nodes()
    for a, b, rc, dt, out in moves:
        check(rc == 0, "reshard: %d slots moved %d -> %d under ingest (%.1fs)" % (RESHARD_SLOTS, a, b, dt), out)
    check(idx_owner_mid == dst and len(after[src][1]) == len(nodes[src][1]) - n_slots,
          "reshard: the index's slot %d moved %d -> %d and the slot counts are back (%s)"
          % (idx_slot, src, idx_owner_mid or 0, "/".join(str(len(after[p][1])) for p in PORTS)))
    chk = subprocess.run(["redis-cli"] + harness.redis_cli_args() + ["--cluster", "check", "127.0.0.1:%d" % PORTS[0]],
                         capture_output=True, text=True, timeout=30)
    check(chk.returncode == 0 and "[OK] All 16384 slots covered" in chk.stdout,
          "reshard: redis-cli --cluster check passes afterwards (no open slot)", chk.stdout[-400:])
    check(stopped, "reshard: the loader stopped")
    n503 = check_answers(loader, "reshard")
    redirs = {k: err1.get(k, 0) - err0.get(k, 0) for k in ("MOVED", "ASK", "TRYAGAIN")}
    print("# reshard: %d requests answered over %.1fs while moving, %d of them 503; the masters answered %s"
          % (len(loader.log), t_moves[1] - t_moves[0], n503,
             ", ".join("%d %s" % (v, k) for k, v in redirs.items())), flush=True)
    check(redirs["MOVED"] > 0 and redirs["ASK"] > 0 and redirs["TRYAGAIN"] > 0, "reshard: the clients were "
          "redirected (MOVED, ASK and TRYAGAIN followed), so the moving slots were in use", str(redirs))
    check_counts(insts, stream, "reshard")
    stale = check_findings(insts, stream, created0, "reshard", n503 > 0)
    check(not stale, "reshard: each finding's outside_count equals the acknowledged outside events", str(stale[:5]))


def recovery_probe(insts, stream, victim_keys, t_back):
    """Seconds from t_back until fresh connections to every instance (so, likely every worker
    thread) ingest events of keys on the victim with 2xx, 6 in a row per instance."""
    r = random.Random(99)
    while time.time() - t_back < 20:
        good = True
        for inst in insts:
            for _ in range(6):
                rq = stream.request(r, keys=[r.choice(victim_keys)], p_outside=0)
                c = Client(inst.port)
                try:
                    st = post(c, rq)[0]
                except Exception:  # noqa: BLE001
                    st = None
                c.close()
                if st == 200:
                    stream.acked(rq)
                else:
                    good = False
                    # a 503 may have applied part of it: the loader's rule, retry until acked
                    retry_until_acked(inst, stream, rq)
        if good:
            return time.time() - t_back
        time.sleep(0.1)
    return None


def retry_until_acked(inst, stream, rq):
    c = Client(inst.port)
    t0 = time.time()
    while time.time() - t0 < 30:
        try:
            if post(c, rq)[0] == 200:
                stream.acked(rq)
                break
        except Exception:  # noqa: BLE001
            c.close()
        time.sleep(0.1)
    c.close()


def outage(insts, stream, how, victim_pid_box):
    """how: 'stop' (SIGSTOP/SIGCONT) or 'kill' (SIGKILL, restart on the same port and files).
    The stream's keys are new: findings are being created while the master is down."""
    A, B = insts
    created0 = created_total(insts)
    vport = PORTS[VICTIM]
    nodes = cluster_nodes()
    vslots = nodes[vport][1]
    idx_port = owner_of(nodes, key_slot(INDEX_KEY))
    victim_keys = [k for k in stream.keys if key_slot("cw:k:{%s}" % k) in vslots]
    free_keys = [k for k in stream.keys if key_slot("cw:k:{%s}" % k) not in vslots and
                 key_slot("cw:f:{cwf-%s}" % k) not in vslots]
    what = "master %s" % ("SIGSTOP" if how == "stop" else "SIGKILL+restart")
    issuances(A, stream, what)
    check(idx_port != vport and victim_keys and free_keys,
          "%s: the victim %d holds %d slots, %d of the %d keys, not the index (on %d)"
          % (what, vport, len(vslots), len(victim_keys), len(stream.keys), idx_port))
    loader = Loader(stream, [A.port, B.port], n_threads=4, pause=0.01, seed=5 if how == "stop" else 7)
    loader.start()
    time.sleep(1.5)
    t_down = time.time()
    pid = victim_pid_box[0]
    if how == "stop":
        os.kill(pid, signal.SIGSTOP)
    else:
        os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)  # only a child of ours (a restarted node) can be reaped here
        except ChildProcessError:
            pass
        # the node is not our child, so it stays a zombie until it_cluster.sh reaps it: gone is
        # when its port refuses connections
        t_k = time.time()
        while time.time() - t_k < 5 and harness.redis_ping(vport, 0.2):
            time.sleep(0.02)
    time.sleep(1.5)
    health = [read_get(i.port, "/healthz")[0] for i in insts]
    ready = [read_get(i.port, "/readyz")[0] for i in insts]
    check(health == [200, 200], "%s: /healthz 200 on both instances during the outage" % what, str(health))
    print("# %s: /readyz during the outage: %s (the index's master is up)" % (what, ready), flush=True)
    time.sleep(max(0.0, OUTAGE_S - (time.time() - t_down)))
    t_back = time.time()
    if how == "stop":
        os.kill(pid, signal.SIGCONT)
    else:
        # as it_cluster.sh started it: same port, nodes.conf and append-only file
        args = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes-%d.conf" % vport) + harness.AOF_ALWAYS \
            + ("--appenddirname", "aof-%d" % vport)
        node = harness.Redis(TMP, vport, args, procs=mt.PROCS, start_timeout=mt.START_TIMEOUT).start()
        victim_pid_box[0] = node.proc.pid
        victim_pid_box[1] = node.proc
        t_ok = time.time()
        while time.time() - t_ok < 15 and not cluster_ok(vport):
            time.sleep(0.05)
        check(cluster_ok(vport), "%s: the restarted node rejoins, cluster_state:ok (%.1fs)"
              % (what, time.time() - t_ok))
    rec = recovery_probe(insts, stream, victim_keys, t_back)
    check(rec is not None and rec <= RECOVER_MAX_S,
          "%s: both instances ingest keys of the victim again within %.0f s, no service restart (%.2fs)"
          % (what, RECOVER_MAX_S, rec or -1))
    # more events for every key after the recovery: they rewrite the findings whose write an
    # outage interrupted (see phase_interrupted: the retry of such a request alone does not)
    time.sleep(2.0)
    stopped = loader.stop()
    check(stopped, "%s: the loader stopped" % what)
    n503 = check_answers(loader, what)
    log = list(loader.log)
    # During the outage (answers sent after the signal + 1.2 s: the first requests to the victim
    # wait for the command timeout; answered before it came back):
    win = [e for e in log if e[0] >= t_down + 1.2 and e[1] <= t_back and e[3] is not None]
    def akids(e):
        return set(x["userIdentity"]["accessKeyId"] for x in e[5][3])
    touch = [e for e in win if akids(e) & set(victim_keys)]
    free = [e for e in win if akids(e) <= set(free_keys)]
    touch_2xx = [e for e in touch if 200 <= e[3] < 300]
    free_2xx = [e for e in free if 200 <= e[3] < 300]
    check(touch and not touch_2xx, "%s: requests touching the victim's slots during the outage answer 503 "
          "(%d requests, %d 2xx)" % (what, len(touch), len(touch_2xx)))
    check(free_2xx, "%s: requests on the other masters' slots keep being acknowledged during the outage "
          "(%d of %d 2xx)" % (what, len(free_2xx), len(free)))
    slow = sorted(e[1] - e[0] for e in win)
    before = [e for e in log if t_down - 1.0 <= e[1] < t_down]
    rate_before, rate_during = len(before) / 1.0, len(win) / max(0.1, t_back - t_down - 1.2)
    print("# %s: %d answers in %.1fs, %d 503 overall; during the outage %d touching the victim (all 503), "
          "%d others (%d 2xx); answers/s %.0f before, %.0f during; answer time median %.2fs max %.2fs; recovery "
          "%.2fs after %s"
          % (what, len(log), log[-1][1] - log[0][0] if log else 0, n503, len(touch), len(free), len(free_2xx),
             rate_before, rate_during,
             slow[len(slow) // 2] if slow else 0, slow[-1] if slow else 0, rec or -1,
             "SIGCONT" if how == "stop" else "the restart"), flush=True)
    check_counts(insts, stream, what)
    return check_findings(insts, stream, created0, what, n503 > 0)


def main():
    insts = []
    victim = [PIDS[VICTIM], None]   # pid, Popen once we restarted it
    try:
        insts = [mt.serve(n, CREDWATCH_REDIS_CLUSTER=SEEDS, CREDWATCH_REDIS_URL=None, CREDWATCH_DRAIN_SECONDS="5",
                          CREDWATCH_REDIS_TIMEOUT_MS="1000") for n in "AB"]
        ok("2 instances on ports %s with CREDWATCH_REDIS_CLUSTER=%s" % ([i.port for i in insts], SEEDS))
        w = wait_ready(insts, 10)
        check(w is not None, "both instances ready on the cluster (%.2fs)" % (w or -1))
        for name, fn in (("many keys", lambda: phase_many_keys(insts)), ("twice", lambda: phase_twice(insts))):
            try:
                fn()
            except Exception as e:  # noqa: BLE001
                nok("phase %s ran to the end" % name, repr(e))
        try:
            phase_reshard(insts, Stream("CLR", 60, 0.03))
        except Exception as e:  # noqa: BLE001
            nok("phase reshard ran to the end", repr(e))
        try:
            phase_interrupted(insts)
        except Exception as e:  # noqa: BLE001
            nok("phase interrupted finding write ran to the end", repr(e))
        for how, tag in (("stop", "CLS"), ("kill", "CLK")):
            try:
                stale = outage(insts, Stream(tag, 60, 0.01), how, victim)
                check(not stale, "master %s: each finding's outside_count equals the acknowledged outside events"
                      % how, str(stale[:5]))
            except Exception as e:  # noqa: BLE001
                nok("phase master %s ran to the end" % how, repr(e))
    except Exception as e:  # noqa: BLE001
        nok("setup", repr(e))
    finally:
        try:
            os.kill(victim[0], signal.SIGCONT)  # never leave a node stopped
        except OSError:
            pass
        mt.PROCS.stop_all(signal.SIGTERM, 5)
    if mt.R.fails:
        for f in sorted(os.listdir(TMP)):
            if f.endswith(".log"):
                print("# --- %s (tail)" % f)
                for line in open(os.path.join(TMP, f), errors="replace").read().splitlines()[-15:]:
                    print("#   " + line)
    return 1 if mt.R.fails else 0


def phase_interrupted(insts):
    """A request whose key state commits but whose finding write fails: the finding's master (a)
    or the index's master (b) refuses writes (maxmemory 1: an OOM error reply, deterministic, no
    timeouts), so the request answers 503; the sender retries once the master accepts writes again.
    The retry finds every event already applied (the commit went through); the engine then repairs
    the finding (a store put with `ensure`: written only if absent, and the index ZADD NX), so
    (a) the stolen key has its finding and (b) it is listed."""
    A, B = insts
    nodes = cluster_nodes()
    idx_port = owner_of(nodes, key_slot(INDEX_KEY))
    cands = KeySet("CLI", 400)
    used = set()
    for case, port in (("the finding's master", [p for p in PORTS if p != idx_port][0]),
                       ("the index's master", idx_port)):
        sl = nodes[port][1]
        want_f = case == "the finding's master"
        k = [x for x in cands.keys if x not in used and key_slot("cw:k:{%s}" % x) not in sl
             and (key_slot("cw:f:{cwf-%s}" % x) in sl) == want_f][0]
        used.add(k)
        recs = cands.inside[k] + cands.outside[k]
        rq = ("/v1/ingest/cloudtrail", json.dumps({"Records": recs}).encode(), {"Content-Type": "application/json"},
              recs)
        rcli(port, "CONFIG", "SET", "maxmemory", "1")
        try:
            st1 = post(Client(A.port), rq)[0]
        finally:
            rcli(port, "CONFIG", "SET", "maxmemory", "0")
        st2, d2 = None, {}
        for _ in range(50):
            st2, _, d2 = post(Client(B.port), rq)
            if st2 == 200:
                break
            time.sleep(0.2)
        stf = None
        for _ in range(50):
            stf, _, f = read_get(A.port, "/v1/findings/cwf-" + k)
            if stf != 503:
                break
            time.sleep(0.2)
        listed = "cwf-" + k in list_all(A.port, 100)
        name = "interrupted finding write (%s refuses writes): after the sender's retry the stolen key's " \
               "finding exists and is listed" % case
        good = st1 == 503 and st2 == 200 and stf == 200 and listed
        detail = "first answer %s, retry %s (accepted %s, duplicates %s, findings_count %s); GET finding %s; " \
                 "listed %s; key counts %s" % (st1, st2, d2.get("accepted"), d2.get("duplicates"),
                                               d2.get("findings_count"), stf, listed, key_counts(A.port, k))
        check(good, name, detail)

if __name__ == "__main__":
    sys.exit(main())
