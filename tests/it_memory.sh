#!/bin/sh
# it_memory.sh — a worker does not keep a big request's memory: `credwatch serve` (embedded store,
# 2 threads) gets 6 gzip bodies of 200,000 uses of one temporary key each (the decoder's per-event
# memory peaks at ~1 KB x records, ~210 MB); once they are answered, its resident memory must be back
# within ENG_EVENTS_KEEP's worth (~9 MB) plus allocator slack (32 MB) of what it was before, not
# hundreds of MB per thread. Loopback only; the server is stopped by its pid.
. "$(dirname "$0")/lib.sh"
make_tmp
"$PY" - "$BIN" "$here" "$TEST_TMP" <<'PYEOF'
import gzip, http.client, json, os, sys, time
sys.path.insert(0, sys.argv[2])
import harness
BIN, TMP = sys.argv[1], sys.argv[3]
RECORDS, BODIES, SLACK_MB = 200000, 6, 32
R = harness.Report(sep=" -- ")
check = R.check
p = harness.Instance(BIN, os.path.join(TMP, "serve.log"), {"CREDWATCH_THREADS": "2"}, name="serve")
def rss_mb():
    return p.rss_kb() / 1024
try:
    port = p.port
    def body(n):
        recs = ['{"eventVersion":"1.08","eventID":"m%d-%d","eventTime":"2024-03-13T09:%02d:%02dZ",'
                '"eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1",'
                '"sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15.0","userIdentity":{"type":"AssumedRole",'
                '"accessKeyId":"ASIAMEMORYTEST00000%d","accountId":"111122223333",'
                '"arn":"arn:aws:sts::111122223333:assumed-role/r/fn"}}' % (n, i, (i // 60) % 60, i % 60, n)
                for i in range(RECORDS)]
        return gzip.compress(('{"Records":[' + ",".join(recs) + "]}").encode())
    def post(b):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.request("POST", "/v1/ingest/cloudtrail", b, {"Content-Type": "application/gzip"})
        r = c.getresponse()
        d = json.loads(r.read())
        c.close()
        return r.status, d
    st, _ = post(body(99)[:0] or gzip.compress(b'{"Records":[]}'))
    before = rss_mb()
    peak = before
    for n in range(BODIES):
        st, d = post(body(n))
        peak = max(peak, rss_mb())
        check(st == 200 and d["records"] == RECORDS, "body %d of %d: 200, %d records" % (n + 1, BODIES, RECORDS), str(d)[:200])
    time.sleep(0.5)
    after = rss_mb()
    if "asan" in BIN:
        # AddressSanitizer's allocator keeps freed memory in its quarantine and pools: resident
        # memory says nothing about ours there (the requests above still had to succeed)
        print("# skipped under ASan: resident memory after the requests (%.0f MB)" % after)
    else:
      check(after <= before + SLACK_MB, "resident memory after %d requests of %d records: %.0f MB, was %.0f MB before (at most +%d MB)"
            % (BODIES, RECORDS, after, before, SLACK_MB), "peak seen %.0f MB" % peak)
finally:
    p.stop(timeout=30)
sys.exit(1 if R.fails else 0)
PYEOF
