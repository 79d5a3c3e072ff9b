#!/usr/bin/python3
"""listing_race.py — GET /v1/findings walked page by page while findings are created, on Redis.

New findings rank first (newest first). The continuation after a cursor used to read the cursor's
rank and then the window after it in two round trips, so findings created in between shifted the
window back over entries already listed: 828 repeats in 287 walks of 10 s on this machine. The rank
and the window are now one script. Here: 3 writers post batches of 5 new findings for RUN_S seconds
against one instance on its own Redis, 2 readers walk up to 5 pages of 3; no id may come twice in
one walk, and every walk of a settled listing sees every finding once.
Usage: listing_race.py BINARY TMPDIR PIDFILE
"""
import json
import os
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

RUN_S = 6            # how long the writers and readers run
WRITERS, READERS = 3, 2
BATCH_KEYS = 5       # new findings per ingest
PAGE, PAGES = 3, 5   # a walk: up to PAGES pages of PAGE findings
TIMEOUT_S = 10       # one request
HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    binary, tmp, pidfile = sys.argv[1:4]
    rep = harness.Report()
    procs = harness.Procs(pidfile)
    tmpl = json.load(open(os.path.join(HERE, "data", "api_cloudtrail.json")))["Records"]
    try:
        redis = harness.Redis(tmp, procs=procs).start()
        inst = harness.Instance(binary, os.path.join(tmp, "serve.log"), procs=procs,
                                env={"CREDWATCH_REDIS_URL": "redis://127.0.0.1:%d" % redis.port})
        base = "http://127.0.0.1:%d" % inst.port
        stop, lock = threading.Event(), threading.Lock()
        counts = {"walks": 0, "repeats": 0, "posted": 0, "errors": 0}
        example = []

        def post(recs):
            req = urllib.request.Request(base + "/v1/ingest/cloudtrail", data=json.dumps({"Records": recs}).encode(),
                                         headers={"Content-Type": "application/json"})
            return urllib.request.urlopen(req, timeout=TIMEOUT_S).status

        def writer(w):
            k = 0
            while not stop.is_set():
                recs = []
                for _ in range(BATCH_KEYS):
                    key, k = "ASIARACE%02d%08d" % (w, k), k + 1
                    for r in tmpl:
                        s = json.dumps(r).replace("ASIAEXAMPLEKEY000001", key)
                        recs.append(json.loads(s.replace("8000-00000000000", "8%03d-%011d" % (w, k))))
                try:
                    ok = post(recs) == 200
                except OSError:
                    ok = False
                with lock:
                    counts["posted" if ok else "errors"] += BATCH_KEYS if ok else 1

        def walk():
            seen, cur, repeats = set(), None, []
            for _ in range(PAGES):
                url = base + "/v1/findings?limit=%d" % PAGE + ("&cursor=" + cur if cur else "")
                d = json.load(urllib.request.urlopen(url, timeout=TIMEOUT_S))
                for f in d["findings"]:
                    if f["id"] in seen:
                        repeats.append(f["id"])
                    seen.add(f["id"])
                cur = d["next_cursor"]
                if not cur:
                    break
            return repeats

        def reader():
            while not stop.is_set():
                try:
                    r = walk()
                except OSError:
                    with lock:
                        counts["errors"] += 1
                    continue
                with lock:
                    counts["walks"] += 1
                    counts["repeats"] += len(r)
                    example.extend(r[:1])

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
        threads += [threading.Thread(target=reader) for _ in range(READERS)]
        for t in threads:
            t.start()
        time.sleep(RUN_S)
        stop.set()
        for t in threads:
            t.join()
        rep.check(counts["walks"] >= 20 and counts["posted"] >= 50,
                  "listing under writes: %d walks while %d findings were created" % (counts["walks"], counts["posted"]),
                  str(counts))
        rep.check(counts["repeats"] == 0, "listing under writes: no id twice in one cursor walk (%d repeats)"
                  % counts["repeats"], "e.g. %s" % example[:3])
        rep.check(counts["errors"] == 0, "listing under writes: no request failed", str(counts))
        # settled: one full walk sees each finding once
        seen, cur, n = set(), None, 0
        while True:
            d = json.load(urllib.request.urlopen(base + "/v1/findings?limit=%d" % 100 + ("&cursor=" + cur if cur else ""),
                                                 timeout=TIMEOUT_S))
            n += len(d["findings"])
            seen.update(f["id"] for f in d["findings"])
            cur = d["next_cursor"]
            if not cur:
                break
        rep.check(n == len(seen) == counts["posted"], "settled: a full walk lists each of the %d findings once"
                  % counts["posted"], "%d listed, %d distinct" % (n, len(seen)))
    finally:
        procs.stop_all()
    sys.exit(1 if rep.fails else 0)


if __name__ == "__main__":
    main()
