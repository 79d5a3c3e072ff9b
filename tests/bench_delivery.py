#!/usr/bin/python3
"""bench_delivery.py — the driver of tests/bench_delivery.sh (issue 12, "findings out"); stdlib only, loopback only.

  1. latency: one `credwatch serve` on a Redis of its own with one webhook sink pointed at
     tests/sink_receiver.py. Single-finding CloudTrail batches (a new key each: its issuance by
     lambda.amazonaws.com and a call from an outside address, the shapes of tests/data/api_cloudtrail.json)
     are posted on one keep-alive connection, paced at RATE per second (open loop: each at its scheduled
     time, or at once when late) for LAT_SECONDS. Latency of a finding = the receiver's receive time
     (its log's "t") - the time the ingest POST's 200 was read. Baseline of the same run: the ingest
     POST's own round trip. An ingest that queues events wakes the instance's idle delivery threads at
     once (snk_run_kick); events queued by other instances wait for the poll, every SNK_RUN_POLL_MS.
  2. throughput: 1,000-record CloudTrail batches (tests/bench/serve_gen.py templates, tests/bench/template.lua:
     new keys and event ids in every request, 10 % of keys stolen: 17 findings per batch) over 4 keep-alive
     connections for TPUT_SECONDS with wrk; TPUT_RUNS rounds, after a warm-up, of three runs: an instance
     without sinks, one without sinks on a Redis whose outbox has a consumer group (so it queues every
     event for another instance: the ingest path's own share), one with two webhook sinks (each at a
     receiver of its own). Every run on an emptied Redis (FLUSHALL) and a freshly started instance.
     Median records/s of each and their ratios to no sinks; beside them the CPU per record of credwatch +
     redis-server (from /proc: does not depend on other load; includes the delivery threads' work, not
     the receivers'). The delivery threads run below ingest's priority (SNK_RUN_NICE) and the receivers at
     nice 19 (they stand for other machines): under this saturating load deliveries fall behind, so after
     each run with sinks the driver times how long the backlog takes to reach both receivers (and counts
     any event still missing after DRAIN_TPUT_S).
Prints one `delivery: ...` line per figure; exits 1 when a request failed, a finding was not delivered
(latency) or not queued (queueing only).
usage: bench_delivery.py BIN TMPDIR PIDFILE
"""
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import harness  # noqa: E402

RATE = int(os.environ.get("DELIV_RATE", "100"))              # findings/s, paced
LAT_SECONDS = float(os.environ.get("DELIV_SECONDS", "20"))
DRAIN_S = 10                                                 # wait for the last deliveries
DRAIN_TPUT_S = 60                                            # a throughput run's backlog, at most
TPUT_RUNS = int(os.environ.get("DELIV_TPUT_RUNS", "5"))      # per configuration
TPUT_SECONDS = int(os.environ.get("DELIV_TPUT_SECONDS", "5"))
WARMUP_SECONDS = 2
CT_CONNS = 4
TARGET_P99_MS = 1000
TARGET_RATIO = 0.95
OUTSIDE_IP = "198.51.100.7"                                  # serve_gen's outside address
POLL_MS = 200                                                # SNK_RUN_POLL_MS in sink/sink_run.h
TOKEN_IN = "ingest-token-bench-0123456789"
TOKEN_RD = "read-token-bench-0123456789ab"
SECRET = "bench-delivery-secret-0001"
HZ = os.sysconf("SC_CLK_TCK")


# ---- processes ---------------------------------------------------------------------------------

def receiver(procs, tmp, name):
    """A tests/sink_receiver.py of our own; returns (port, log path). It runs at nice 19: it stands for
    a SIEM or chat service on another machine, and here it shares the two cores with the instance
    measured, so it takes only what the instance and Redis leave (its CPU is still reported)."""
    log = os.path.join(tmp, name + ".log")
    open(log, "w").close()
    p = procs.add(subprocess.Popen([sys.executable, os.path.join(HERE, "sink_receiver.py"), "--secret", SECRET,
                                    "--log", log, "--max-seconds", "600"], stdout=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL, preexec_fn=lambda: os.nice(19)))
    port = int(p.stdout.readline())
    return port, log, p


def serve_env(rport, sinks):
    """The instance's environment: Redis, tokens, and `sinks` [(name, receiver port)]; no proxies
    (libcurl would send loopback requests through one from the environment)."""
    env = {k: None for k in os.environ if k.lower() in ("http_proxy", "https_proxy", "all_proxy")}
    env.update({"NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1",
                "CREDWATCH_REDIS_URL": "redis://127.0.0.1:%d" % rport, "CREDWATCH_INGEST_TOKENS": TOKEN_IN,
                "CREDWATCH_READ_TOKENS": TOKEN_RD, "CREDWATCH_SINKS": ",".join(n for n, _ in sinks)})
    for name, port in sinks:
        v = "CREDWATCH_SINK_%s_" % name.upper().replace("-", "_")
        env[v + "TYPE"] = "webhook"
        env[v + "URL"] = "http://127.0.0.1:%d/hook/%s" % (port, name)
        env[v + "SECRET"] = SECRET
    if not sinks:
        env["CREDWATCH_SINKS"] = None
    return env


def ticks(pid):
    """User + system CPU time of a process, clock ticks."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def received(log):
    out = []
    with open(log) as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line))
    return out


# ---- 1. latency --------------------------------------------------------------------------------

def finding_batch(akid, n):
    """An issuance of akid by lambda.amazonaws.com and a call from an outside address (the first and the
    third record of tests/data/api_cloudtrail.json, with their own key id and event ids)."""
    ident = {"type": "AssumedRole", "accessKeyId": akid,
             "arn": "arn:aws:sts::111122223333:assumed-role/fn-role/my-fn", "accountId": "111122223333"}
    recs = [
        {"eventVersion": "1.08", "eventTime": "2024-03-13T08:33:21Z", "eventSource": "sts.amazonaws.com",
         "eventName": "AssumeRole", "awsRegion": "eu-west-1", "sourceIPAddress": "lambda.amazonaws.com",
         "userAgent": "lambda.amazonaws.com",
         "userIdentity": {"type": "AWSService", "invokedBy": "lambda.amazonaws.com"},
         "requestParameters": {"roleArn": "arn:aws:iam::111122223333:role/fn-role", "roleSessionName": "my-fn"},
         "responseElements": {"credentials": {"accessKeyId": akid, "expiration": "Mar 13, 2024, 8:33:21 PM"}},
         "eventID": str(uuid.uuid4()), "readOnly": True, "eventType": "AwsApiCall", "managementEvent": True,
         "recipientAccountId": "111122223333"},
        {"eventVersion": "1.08", "eventTime": "2024-03-13T09:10:00Z", "eventSource": "sts.amazonaws.com",
         "eventName": "GetCallerIdentity", "awsRegion": "eu-west-1", "sourceIPAddress": "198.51.100.7",
         "userAgent": "aws-cli/2.15.0 Python/3.11 Darwin/23.0", "userIdentity": ident, "requestParameters": None,
         "responseElements": None, "eventID": str(uuid.uuid4()), "readOnly": True, "eventType": "AwsApiCall",
         "managementEvent": True, "recipientAccountId": "111122223333"}]
    return json.dumps({"Records": recs}, separators=(",", ":")).encode()


def pct(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    return sorted_vals[min(len(sorted_vals) - 1, int(round(p / 100.0 * (len(sorted_vals) - 1))))]


def bench_latency(procs, tmp, redis):
    port, log, _ = receiver(procs, tmp, "lat")
    inst = harness.Instance(BIN, os.path.join(tmp, "serve-lat.log"), serve_env(redis.port, [("lat", port)]),
                            name="serve-lat", procs=procs)
    try:
        c = http.client.HTTPConnection("127.0.0.1", inst.port, timeout=10)
        hdr = {"Content-Type": "application/json", "Authorization": "Bearer " + TOKEN_IN}
        n = int(RATE * LAT_SECONDS)
        answered, rtt, failed = {}, [], 0
        tag = "%04X" % (os.getpid() % 0x10000)
        bodies = [("ASIALAT%s%09d" % (tag, i), None) for i in range(n)]
        bodies = [(a, finding_batch(a, i)) for i, (a, _) in enumerate(bodies)]
        t0 = time.time() + 0.2
        for i, (akid, body) in enumerate(bodies):
            delay = t0 + i / RATE - time.time()
            if delay > 0:
                time.sleep(delay)
            s = time.time()
            c.request("POST", "/v1/ingest/cloudtrail", body=body, headers=hdr)
            r = c.getresponse()
            d = r.read()
            e = time.time()
            if r.status != 200:
                failed += 1
                if failed <= 3:
                    print("delivery: ingest answered %d: %s" % (r.status, d[:200]), file=sys.stderr)
                continue
            answered["cwf-" + akid] = e
            rtt.append(e - s)
        late = time.time() - (t0 + (n - 1) / RATE)
        deadline = time.time() + DRAIN_S
        got = {}
        while time.time() < deadline:
            got = {}
            bad_sig = 0
            for rec in received(log):
                f = ((rec.get("body") or {}).get("finding") or {}).get("id")
                bad_sig += rec.get("sig") != "ok"
                if rec.get("event") == "finding.created" and f in answered and f not in got:
                    got[f] = rec["t"]
            if len(got) >= len(answered):
                break
            time.sleep(0.2)
        lat = sorted((got[f] - answered[f]) * 1000 for f in got)
        rtt.sort()
        ms = lambda v: "%.1f" % v  # noqa: E731
        ok = failed == 0 and len(got) == len(answered) == n and bad_sig == 0
        p99 = pct(lat, 99)
        print("delivery: webhook latency, ingest answer -> receiver, %d single-finding batches paced at %d/s "
              "(%.0f s, pacing %s): p50 %s ms, p90 %s ms, p99 %s ms, max %s ms, min %s ms; %d/%d delivered, %d bad "
              "signatures, %d ingest failures; baseline in the same run: the ingest POST itself p50 %s ms, p99 %s ms; "
              "the ingest wakes the idle sink (without that, its poll every %d ms puts the p50 near %d ms); target p99 <= %d ms: %s"
              % (n, RATE, LAT_SECONDS, "kept" if late < 0.5 else "%.1f s late" % late,
                 ms(pct(lat, 50)), ms(pct(lat, 90)), ms(p99), ms(lat[-1] if lat else float("nan")),
                 ms(lat[0] if lat else float("nan")), len(got), n, bad_sig, failed, ms(pct(rtt, 50) * 1000),
                 ms(pct(rtt, 99) * 1000), POLL_MS, POLL_MS // 2, TARGET_P99_MS,
                 "met" if lat and p99 <= TARGET_P99_MS else "NOT met"), flush=True)
        return ok
    finally:
        inst.stop(timeout=15)


# ---- 2. throughput -----------------------------------------------------------------------------

KINDS = ("none", "outbox", "sinks")   # the order of each round


def tput_run(procs, tmp, redis, kind, sinks, receivers, run, seconds, template="ct_batch.tmpl"):
    """One wrk run on an emptied Redis and a new instance; returns a dict of its figures. kind "outbox": no
    sinks here, but the outbox has a consumer group, so the instance queues every event for another one (the
    ingest path's share of the cost, without delivery)."""
    harness.redis_cmd(redis.port, "FLUSHALL", timeout=30)
    if kind == "outbox":
        harness.redis_cmd(redis.port, "XGROUP", "CREATE", "cw:out:{o}", "elsewhere", "$", "MKSTREAM")
    receivers = receivers if kind == "sinks" else []
    for _, log, _ in receivers:
        open(log, "w").close()
    inst = harness.Instance(BIN, os.path.join(tmp, "serve-tput-%d.log" % run),
                            serve_env(redis.port, sinks if kind == "sinks" else []), name="serve-tput", procs=procs)
    try:
        watched = [inst.proc.pid, redis.proc.pid] + [p.pid for _, _, p in receivers]
        c0 = [ticks(p) for p in watched]
        wrk = subprocess.run(["wrk", "-t2", "-c%d" % CT_CONNS, "-d%ds" % seconds, "-s",
                              os.path.join(HERE, "bench", "template.lua"),
                              "http://127.0.0.1:%d/v1/ingest/cloudtrail" % inst.port, "--", str(run % 16), TOKEN_IN,
                              "application/json", os.path.join(tmp, "t", template)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=seconds + 30)
        c1 = [ticks(p) for p in watched]
        out = wrk.stdout
        reqs = re.search(r"^\s*(\d+) requests in", out, re.M)
        rate = re.search(r"^Requests/sec:\s*([\d.]+)", out, re.M)
        errors = re.findall(r"^\s*(Non-2xx.*|Socket errors.*)$", out, re.M)
        xlen = harness.redis_cmd(redis.port, "XLEN", "cw:out:{o}") or b":0"
        cpu = [(b - a) / HZ for a, b in zip(c0, c1)]
        delivered = sum(len(received(log)) for _, log, _ in receivers)
        drain, lost = drain_run(redis, receivers) if receivers else (0.0, 0)
        return {"rate": float(rate.group(1)) if rate else 0.0, "requests": int(reqs.group(1)) if reqs else 0,
                "errors": errors, "cpu_srv": cpu[0], "cpu_redis": cpu[1], "cpu_recv": sum(cpu[2:]),
                "delivered": delivered, "queued": int(xlen[1:] or 0), "drain": drain, "lost": lost}
    finally:
        inst.stop(timeout=15)


def lines(log):
    with open(log, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def xinfo(redis, *args):
    """redis-cli's raw lines of an XINFO reply (nested arrays flattened: names and values alternate)."""
    out = subprocess.run(["redis-cli", "-p", str(redis.port), "XINFO"] + list(args), stdout=subprocess.PIPE,
                         text=True, timeout=10).stdout
    return out.split("\n")


def after(lines_, name):
    """The values that follow each line equal to name."""
    return [lines_[i + 1] for i, v in enumerate(lines_[:-1]) if v == name]


def groups_idle(redis):
    """Every sink's consumer group has nothing left: none held (pending 0) and none unread (lag 0)."""
    g = xinfo(redis, "GROUPS", "cw:out:{o}")
    pending, lag = after(g, "pending"), after(g, "lag")
    return bool(pending) and all(v == "0" for v in pending + lag)


def drain_run(redis, receivers):
    """After the load: the seconds until every event of the outbox reached every receiver (delivery runs
    below ingest's priority, SNK_RUN_NICE, so under a saturating load it falls behind and catches up here),
    and how many distinct events a receiver still lacks after DRAIN_TPUT_S. The events ever queued come
    from the stream's entries-added (the periodic trim removes what every sink acknowledged, so its length
    is not the count), and the groups must be idle."""
    added = after(xinfo(redis, "STREAM", "cw:out:{o}"), "entries-added")
    want = int(added[0]) if added else 0
    t0 = time.monotonic()
    distinct = lambda log: len({d.get("idempotency_key") for d in received(log)})  # noqa: E731
    while True:
        # lines first (cheap, while the receivers still work); distinct keys once the counts are there
        done = all(lines(log) >= want for _, log, _ in receivers) and groups_idle(redis) and \
            all(distinct(log) >= want for _, log, _ in receivers)
        if done or time.monotonic() - t0 > DRAIN_TPUT_S:
            return time.monotonic() - t0, 0 if done else max(want - distinct(log) for _, log, _ in receivers)
        time.sleep(0.2)


def tput_report(res, records, stolen, label):
    med = lambda kind, f: statistics.median(f(r) for r in res[kind])  # noqa: E731
    rate = {k: med(k, lambda r: r["rate"] * records) for k in KINDS}
    cpu = {k: med(k, lambda r: (r["cpu_srv"] + r["cpu_redis"]) / max(1, r["requests"] * records) * 1e6) for k in KINDS}
    ratio = {k: rate[k] / rate["none"] if rate["none"] else 0.0 for k in KINDS}
    each = lambda k: " / ".join("%.1f" % (r["rate"] * records / 1000) for r in res[k])  # noqa: E731
    # each round's runs follow each other: their ratio is less exposed to the machine's other load drifting
    paired = {k: statistics.median(a["rate"] / b["rate"] if b["rate"] else 0.0 for a, b in zip(res[k], res["none"]))
              for k in KINDS}
    print("delivery: [%s] cloudtrail %d-record batches (%d findings each), %d keep-alive connections, %d s runs, medians "
          "of %d alternating runs: with two webhook sinks %.1f k records/s (%s) against %.1f k records/s without "
          "sinks (%s), ratio %.3f (median of the rounds' ratios %.3f); target >= %.2f: %s; queueing only (an outbox "
          "group, no delivery here) %.1f k records/s (%s), ratio %.3f (rounds %.3f)"
          % (label, records, stolen, CT_CONNS, TPUT_SECONDS, TPUT_RUNS, rate["sinks"] / 1000, each("sinks"), rate["none"] / 1000,
             each("none"), ratio["sinks"], paired["sinks"], TARGET_RATIO,
             "met" if ratio["sinks"] >= TARGET_RATIO else "NOT met", rate["outbox"] / 1000, each("outbox"),
             ratio["outbox"], paired["outbox"]), flush=True)
    # beyond the queueing-only cost per record: the delivery's, per delivered event
    per_event = med("sinks", lambda r: (r["cpu_srv"] + r["cpu_redis"] - cpu["outbox"] * 1e-6 * r["requests"] * records)
                    / max(1, r["delivered"]) * 1e6)
    per_finding = (cpu["outbox"] - cpu["none"]) * records / max(1, stolen)
    print("delivery: [%s] CPU per record, credwatch + redis-server (medians; does not depend on other load): without sinks "
          "%.2f us, queueing only %.2f us (ratio %.3f: ~%.0f us per queued finding), with two sinks %.2f us (ratio "
          "%.3f: delivery ~%.0f us per delivered event); the sinks delivered %.0f events/s each (%.0f %% of those "
          "queued), the two Python receivers took %.0f %% of a CPU"
          % (label, cpu["none"], cpu["outbox"], cpu["outbox"] / cpu["none"], per_finding, cpu["sinks"],
             cpu["sinks"] / cpu["none"], per_event, med("sinks", lambda r: r["delivered"] / 2.0 / TPUT_SECONDS),
             med("sinks", lambda r: 100.0 * r["delivered"] / 2 / max(1, r["requests"] * stolen)),
             med("sinks", lambda r: r["cpu_recv"] / TPUT_SECONDS * 100)), flush=True)
    print("delivery: [%s] after each %d s run with two sinks, the backlog reached both receivers in %.1f s (median; "
          "runs: %s); events still missing after %d s: %d"
          % (label, TPUT_SECONDS, med("sinks", lambda r: r["drain"]), " / ".join("%.1f" % r["drain"] for r in res["sinks"]),
             DRAIN_TPUT_S, sum(r["lost"] for r in res["sinks"])), flush=True)


def rare_template(tmp, keep):
    """ct_batch.tmpl with the outside use of all but `keep` stolen keys removed: the same 1,000-record shape
    (less those records) with `keep` findings per batch instead of 17 (10 % of keys stolen is a stress load;
    in real CloudTrail a stolen key is rare)."""
    with open(os.path.join(tmp, "t", "ct_batch.tmpl")) as f:
        doc = json.load(f)   # the @N@ tags sit inside strings: the template is JSON
    out, kept = [], 0
    for rec in doc["Records"]:
        if rec.get("sourceIPAddress") == OUTSIDE_IP:
            kept += 1
            if kept > keep:
                continue
        out.append(rec)
    with open(os.path.join(tmp, "t", "ct_rare.tmpl"), "w") as f:
        json.dump({"Records": out}, f, separators=(",", ":"))
    return len(out)


def bench_density(procs, tmp, redis, sinks, receivers, label, template, records, stolen):
    res = {k: [] for k in KINDS}
    ok = True
    run = 1
    for _ in range(TPUT_RUNS):
        for kind in KINDS:
            r = tput_run(procs, tmp, redis, kind, sinks, receivers, run, TPUT_SECONDS, template)
            run += 1
            if r["errors"] or not r["requests"]:
                print("delivery: throughput run %d (%s): failed requests: %s" % (run, kind, r["errors"] or "none ran"),
                      file=sys.stderr)
                ok = False
            # wrk does not count the batches in flight when it stops: more queued events are no surprise
            if kind == "outbox" and r["queued"] < r["requests"] * stolen:
                ok = False
                print("delivery: throughput run %d (outbox): %d events queued for %d findings"
                      % (run, r["queued"], r["requests"] * stolen), file=sys.stderr)
            res[kind].append(r)
    tput_report(res, records, stolen, label)
    return ok


def bench_throughput(procs, tmp, redis):
    info = subprocess.run([sys.executable, os.path.join(HERE, "bench", "serve_gen.py"), "templates",
                           os.path.join(tmp, "t")], stdout=subprocess.PIPE, text=True, check=True).stdout.split()
    records = int(info[0])
    with open(os.path.join(tmp, "t", "ct_batch.tmpl")) as f:
        stolen = f.read().count('"sourceIPAddress":"%s"' % OUTSIDE_IP)   # one outside use per stolen key
    receivers = [receiver(procs, tmp, "tput-a"), receiver(procs, tmp, "tput-b")]
    sinks = [("soc-a", receivers[0][0]), ("soc-b", receivers[1][0])]
    tput_run(procs, tmp, redis, "none", [], [], 0, WARMUP_SECONDS)
    ok = bench_density(procs, tmp, redis, sinks, receivers, "17 findings per batch", "ct_batch.tmpl", records, stolen)
    rare = rare_template(tmp, 1)
    return bench_density(procs, tmp, redis, sinks, receivers, "1 finding per batch", "ct_rare.tmpl", rare, 1) and ok


def main():
    global BIN
    BIN, tmp, pidfile = sys.argv[1], sys.argv[2], sys.argv[3]
    procs = harness.Procs(pidfile)
    ok = True
    try:
        redis = harness.Redis(tmp, procs=procs).start()
        ok = bench_latency(procs, tmp, redis) and ok
        ok = bench_throughput(procs, tmp, redis) and ok
    finally:
        procs.stop_all()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
