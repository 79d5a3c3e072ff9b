#!/usr/bin/env python3
"""firehose_test.py — POST /v1/ingest/firehose end to end (driven by it_firehose.sh).

Builds real-shaped Amazon Data Firehose requests from the CloudTrail fixtures (tests/cases/*.json) in
every form the route takes: plain records, a gzip envelope, CloudWatch Logs subscription messages
(gzip inside the record, several log events, control messages), the decompressed message, the bare
messages of "decompression + message extraction", gzip'd NDJSON, and EventBridge events (EventBridge ->
Firehose); with records that are not
CloudTrail and base64 that is not base64 among them. Checks:
  - every answer's shape exactly (status, Content-Type, Content-Length, keys and types, requestId echoed);
  - the findings equal those of the same records posted to /v1/ingest/cloudtrail on a fresh instance;
  - every request re-sent to another instance on the same Redis: accepted 0 (exactly once);
  - a request (and a /v1/ingest body) spanning hundreds of 4 KiB chunks (CREDWATCH_INGEST_CHUNK_BYTES: decoded
    twice, applied chunk by chunk, the refused records skipped in pass 2) answered and applied as in one pass;
  - hostile input: 10,001 records, a record over 1,000 KiB, a gzip bomb in a record, invalid request ids,
    more CloudTrail records in one request than max_records (413), exactly FH_REFUSED_MAX inputs that are not
    CloudTrail (200) and one more (413, nothing applied), ambiguous framing (refused before
    routing, still in Firehose's shape), a missing or wrong access key, a body over the cap, the store
    down (503, never 4xx).
Starts its own redis-server and credwatch instances on loopback; stops them by pid.
usage: firehose_test.py BIN TMPDIR PIDFILE
"""
import base64
import glob
import gzip
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BIN, TMP, PIDFILE = sys.argv[1:4]
HERE = os.path.dirname(os.path.abspath(__file__))
ING = "fh-ingest-token-0123456789"
READ = "fh-read-token-0123456789ab"
PATH = "/v1/ingest/firehose"
RECORD_MAX = 1000 * 1024
rep = harness.Report()
procs = harness.Procs(PIDFILE)


def b64(raw):
    return base64.b64encode(raw).decode()


def cwl_message(records, group="aws-cloudtrail-logs", control=False):
    if control:
        return {"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "", "logStream": "",
                "subscriptionFilters": [], "logEvents": [{"id": "", "timestamp": int(time.time() * 1000),
                                                          "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]}
    return {"messageType": "DATA_MESSAGE", "owner": "111122223333", "logGroup": group,
            "logStream": "111122223333_CloudTrail_us-east-1", "subscriptionFilters": ["credwatch"],
            "logEvents": [{"id": "%056d" % i, "timestamp": 1710318801000 + i, "message": json.dumps(r)}
                          for i, r in enumerate(records)]}


def eventbridge(record):
    return {"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "AWS API Call via CloudTrail",
            "source": "aws." + str(record.get("eventSource", "sts.amazonaws.com")).split(".")[0],
            "account": record.get("recipientAccountId", "111122223333"), "time": record.get("eventTime"),
            "region": record.get("awsRegion", "us-east-1"), "resources": [], "detail": record}


def envelope(rid, datas):
    return {"requestId": rid, "timestamp": int(time.time() * 1000), "records": [{"data": d} for d in datas]}


class Answer:
    def __init__(self, status, headers, raw):
        self.status, self.headers, self.raw = status, headers, raw
        try:
            self.doc = json.loads(raw)
        except ValueError:
            self.doc = None


def post(port, body, rid=None, key=ING, gz=False, extra=None, ctype="application/json"):
    """One POST as Firehose sends it; body is a dict (dumped) or bytes. Returns an Answer."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    hd = {"Content-Type": ctype, "X-Amz-Firehose-Protocol-Version": "1.0",
          "X-Amz-Firehose-Source-Arn": "arn:aws:firehose:us-east-1:111122223333:deliverystream/credwatch"}
    if rid is not None:
        hd["X-Amz-Firehose-Request-Id"] = rid
    if key is not None:
        hd["X-Amz-Firehose-Access-Key"] = key
    if gz:
        raw = gzip.compress(raw)
        hd["Content-Encoding"] = "gzip"
    hd.update(extra or {})
    c = http.client.HTTPConnection(harness.HOST, port, timeout=120)
    try:
        c.request("POST", PATH, body=raw, headers=hd)
        r = c.getresponse()
        out = r.read()
        return Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, out)
    finally:
        c.close()


def shape(name, a, status, rid):
    """The answer is exactly Firehose's: the status, application/json, a right Content-Length, the keys
    requestId (echoed), timestamp (ms now) and errorMessage exactly when not 200."""
    why = []
    if a.status != status:
        why.append("status %d, not %d" % (a.status, status))
    if a.headers.get("content-type") != "application/json":
        why.append("content-type %r" % a.headers.get("content-type"))
    if a.headers.get("content-length") != str(len(a.raw)):
        why.append("content-length %r for %d bytes" % (a.headers.get("content-length"), len(a.raw)))
    d = a.doc
    keys = ["requestId", "timestamp"] + (["errorMessage"] if status != 200 else [])
    if not isinstance(d, dict) or list(d.keys()) != keys:
        why.append("body %r, keys not %s" % (a.raw[:300], keys))
    else:
        if d["requestId"] != rid:
            why.append("requestId %r, not %r" % (d["requestId"], rid))
        if not isinstance(d["timestamp"], int) or isinstance(d["timestamp"], bool) or \
                abs(d["timestamp"] - time.time() * 1000) > 60000:
            why.append("timestamp %r" % (d["timestamp"],))
        if status != 200 and not (isinstance(d["errorMessage"], str) and d["errorMessage"]):
            why.append("errorMessage %r" % (d["errorMessage"],))
    return rep.check(not why, name, "; ".join(why))


def metrics(port):
    st, _, body = harness.Client(port).request("GET", "/metrics")
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def findings(port):
    c = harness.Client(port)
    got, cursor = {}, None
    while True:
        q = "/v1/findings?limit=500" + ("&cursor=" + cursor if cursor else "")
        st, _, doc = c.request("GET", q, headers={"Authorization": "Bearer " + READ})
        assert st == 200, (st, doc)
        for f in doc["findings"]:
            f = dict(f)
            for k in ("created_at", "updated_at"):
                f.pop(k, None)
            got[f["id"]] = f
        cursor = doc.get("next_cursor")
        if not cursor:
            return got


def cases():
    out = []
    for path in sorted(glob.glob(os.path.join(HERE, "cases", "*.json"))):
        with open(path) as f:
            out.append((os.path.basename(path), json.load(f)["records"]))
    return out


# ---- the requests, built from the fixtures ----

NOT_CLOUDTRAIL = b'{"hello":"this is no CloudTrail record"}'
BAD_B64 = "this is not base64!"


def build_requests(all_cases):
    """[(name, envelope dict, gzip envelope?, rejected records in it, control messages in it)]"""
    reqs = []
    for i, (name, records) in enumerate(all_cases):
        rid = "00000000-0000-4000-a000-%012d" % i
        form = i % 6
        if form == 0:    # plain: one record per Firehose record, a bad one of each kind among them
            datas = [b64(json.dumps(r).encode()) for r in records] + [b64(NOT_CLOUDTRAIL), BAD_B64]
            reqs.append(("plain " + name, envelope(rid, datas), False, 2, 0))
        elif form == 1:  # CloudWatch Logs as it sends: gzip, several log events, and a control message
            half = max(1, len(records) // 2)
            parts = [records[:half], records[half:]] if len(records) > 1 else [records]
            datas = [b64(gzip.compress(json.dumps(cwl_message(p)).encode())) for p in parts]
            datas.insert(1, b64(gzip.compress(json.dumps(cwl_message([], control=True)).encode())))
            reqs.append(("cwlogs " + name, envelope(rid, datas), False, 0, 1))
        elif form == 2:  # decompression on, message extraction off: the message itself
            datas = [b64(json.dumps(cwl_message(records)).encode())]
            reqs.append(("cwlogs decompressed " + name, envelope(rid, datas), False, 0, 0))
        elif form == 3:  # decompression and message extraction: the bare messages, one per line
            datas = [b64("\n".join(json.dumps(r) for r in records).encode() + b"\n")]
            reqs.append(("extracted " + name, envelope(rid, datas), False, 0, 0))
        elif form == 4:  # a gzip envelope holding gzip'd NDJSON
            datas = [b64(gzip.compress("\n".join(json.dumps(r) for r in records).encode()))]
            reqs.append(("gzip envelope " + name, envelope(rid, datas), True, 0, 0))
        else:            # EventBridge -> Firehose: one event per record, newline-terminated
            datas = [b64((json.dumps(eventbridge(r)) + "\n").encode()) for r in records]
            reqs.append(("eventbridge " + name, envelope(rid, datas), False, 0, 0))
    return reqs


def serve(name, **env):
    base = {"CREDWATCH_INGEST_TOKENS": ING, "CREDWATCH_READ_TOKENS": READ, "CREDWATCH_DRAIN_SECONDS": "2"}
    base.update(env)
    return harness.Instance(BIN, os.path.join(TMP, "credwatch-%s.log" % name), base, name, procs)


def main():
    redis = harness.Redis(TMP, procs=procs).start()
    url = "redis://127.0.0.1:%d" % redis.port
    a = serve("a", CREDWATCH_REDIS_URL=url + "/0")
    c = serve("c", CREDWATCH_REDIS_URL=url + "/0")
    b = serve("b", CREDWATCH_REDIS_URL=url + "/1")
    all_cases = cases()
    reqs = build_requests(all_cases)

    # ---- every form, each request's answer in Firehose's shape, nothing blocked by a bad record ----
    accepted = rejected = control = 0
    bad = []
    for name, env, gz, n_rej, n_ctl in reqs:
        ans = post(a.port, env, rid=env["requestId"], gz=gz)
        if not (shape("200 in Firehose's shape: " + name, ans, 200, env["requestId"])):
            continue
        accepted += int(ans.headers.get("x-credwatch-accepted", "-1"))
        got_rej = int(ans.headers.get("x-credwatch-rejected", "-1"))
        if got_rej != n_rej:
            bad.append("%s: rejected %d, not %d" % (name, got_rej, n_rej))
        rejected += n_rej
        control += n_ctl
    rep.check(not bad, "bad records are counted, one by one, and do not block the rest", "; ".join(bad[:5]))
    rep.check(accepted > 0, "the fixtures' records are accepted (%d)" % accepted)

    # ---- the same records through /v1/ingest/cloudtrail: the same findings ----
    cb = harness.Client(b.port)
    b_accepted = 0
    for name, records in all_cases:
        st, _, doc = cb.request("POST", "/v1/ingest/cloudtrail", json.dumps({"Records": records}),
                                {"Authorization": "Bearer " + ING, "Content-Type": "application/json"})
        if st == 200:
            b_accepted += doc["accepted"]
    fa, fb = findings(a.port), findings(b.port)
    diff = sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))
    rep.check(fa and not diff, "findings through Firehose equal those through /v1/ingest/cloudtrail (%d findings)"
              % len(fa), "differ: %s" % diff[:5])
    rep.check(accepted == b_accepted, "as many records accepted as through /v1/ingest/cloudtrail",
              "%d vs %d" % (accepted, b_accepted))

    # ---- Firehose retries the whole request with the same id: another instance, accepted 0 ----
    again = []
    for name, env, gz, _, _ in reqs:
        ans = post(c.port, env, rid=env["requestId"], gz=gz)
        if ans.status != 200 or ans.headers.get("x-credwatch-accepted") != "0" or \
                ans.headers.get("x-credwatch-duplicates") in (None, "0") and ans.headers.get("x-credwatch-records") != "0":
            again.append("%s: %d %s" % (name, ans.status, {k: v for k, v in ans.headers.items() if k.startswith("x-cred")}))
    rep.check(not again, "every request re-sent to another instance on the same Redis: accepted 0", "; ".join(again[:3]))
    rep.check(findings(c.port) == fa, "the other instance shows the same findings")

    # ---- metrics ----
    m = metrics(a.port)
    rep.check(m.get('credwatch_firehose_requests_total{outcome="ok"}') == len(reqs),
              "credwatch_firehose_requests_total{outcome=ok} counts the requests", str(m.get('credwatch_firehose_requests_total{outcome="ok"}')))
    rep.check(m.get("credwatch_firehose_control_messages_total") == control, "control messages are counted (%d)" % control)
    rr = m.get('credwatch_firehose_records_rejected_total{reason="invalid_base64"}', -1) + \
        m.get('credwatch_firehose_records_rejected_total{reason="not_cloudtrail"}', -1)
    rep.check(rr == rejected, "rejected records are counted by reason (%d)" % rejected, str(rr))
    logs = [d for d in a.log_json() if d.get("msg") == "firehose record rejected"]
    rep.check(logs and all(d.get("requestId") and d.get("reason") for d in logs), "rejected records are logged with id and reason")

    hostile(a, c)
    auth_and_caps(a, url)
    chunked_equal()

    # ---- the store down: 503 in Firehose's shape, never 4xx ----
    redis.stop()
    rid = "store-down-1"
    ans = post(a.port, envelope(rid, [b64(json.dumps(all_cases[0][1][0]).encode())]), rid=rid)
    shape("the store down: 503 in Firehose's shape (Firehose retries)", ans, 503, rid)


def hostile(a, c):
    rec = json.dumps(cases()[0][1][0]).encode()
    # 10,000 records (the bound) are taken; 10,001 are no Firehose request
    rid = "bound-10000"
    ans = post(a.port, envelope(rid, [b64(rec)] * 10000), rid=rid)
    shape("10,000 records: 200", ans, 200, rid)
    rid = "bound-10001"
    ans = post(a.port, envelope(rid, [b64(rec)] * 10001), rid=rid)
    shape("10,001 records: 400 with errorMessage", ans, 400, rid)
    rid = "no-records"
    shape("0 records: 400", post(a.port, envelope(rid, []), rid=rid), 400, rid)
    shape("records not an array: 400", post(a.port, {"requestId": rid, "timestamp": 1, "records": {}}, rid=rid), 400, rid)
    shape("a record without string data: 400", post(a.port, {"requestId": rid, "timestamp": 1, "records": [{"data": 1}]},
                                                     rid=rid), 400, rid)
    shape("a body that is not JSON: 400, the header's id echoed", post(a.port, b"not json {", rid=rid), 400, rid)
    shape("a JSON array: 400", post(a.port, b"[]", rid=rid), 400, rid)
    shape("a timestamp that is no integer: 400",
          post(a.port, {"requestId": rid, "timestamp": "x", "records": [{"data": b64(rec)}]}, rid=rid), 400, rid)

    # a record at 1,000 KiB is read; one byte more is rejected, and the rest of the request is applied
    at_cap = rec + b" " * (RECORD_MAX - len(rec))
    other = json.loads(rec)
    other["eventID"] = "ffffffff-0000-4000-8000-00000000cap1"
    rid = "record-cap"
    ans = post(a.port, envelope(rid, [b64(at_cap), b64(at_cap + b" "), b64(json.dumps(other).encode())]), rid=rid)
    shape("a record over 1,000 KiB: 200 for the rest", ans, 200, rid)
    rep.check(ans.headers.get("x-credwatch-rejected") == "1" and ans.headers.get("x-credwatch-records") == "2",
              "a record of 1,000 KiB is read, one of 1,000 KiB + 1 byte rejected",
              str({k: v for k, v in ans.headers.items() if k.startswith("x-cred")}))

    # gzip bombs inside a record: rejected, the rest applied. Every gzip record is inflated whole against
    # the request's budget and the decoder's ratio, which stops all three: blanks after '{"Records":['
    # (valid JSON so far, so no parse error could come first) of 8 and 96 MiB, and 64 MiB of zeros.
    small_bomb = gzip.compress(b'{"Records":[' + b" " * (8 << 20), 9)
    big_bomb = gzip.compress(b'{"Records":[' + b" " * (96 << 20), 9)
    zeros = gzip.compress(b"\0" * (64 << 20), 9)
    before = metrics(a.port)
    rid = "bomb"
    ans = post(a.port, envelope(rid, [b64(small_bomb), b64(rec), b64(big_bomb), b64(zeros)]), rid=rid)
    shape("gzip bombs in records: 200 for the rest", ans, 200, rid)
    after = metrics(a.port)
    k = 'credwatch_firehose_records_rejected_total{reason="%s"}'
    d = {r: after.get(k % r, 0) - before.get(k % r, 0) for r in ("gzip_bomb", "not_cloudtrail")}
    rep.check(d == {"gzip_bomb": 3, "not_cloudtrail": 0} and ans.headers.get("x-credwatch-records") == "1" and
              ans.headers.get("x-credwatch-rejected") == "3",
              "the bombs are counted as gzip_bomb, the other record read",
              "%s %s" % (d, {k: v for k, v in ans.headers.items() if k.startswith("x-cred")}))
    # a corrupt gzip record and a malformed CloudWatch Logs message
    rid = "bad-gzip"
    ans = post(a.port, envelope(rid, [b64(gzip.compress(rec)[:-9]),
                                      b64(gzip.compress(b'{"messageType":"DATA_MESSAGE","logEvents":7}'))]), rid=rid)
    shape("a truncated gzip record and a malformed subscription message: 200", ans, 200, rid)
    rep.check(ans.headers.get("x-credwatch-rejected") == "2", "both are rejected")

    # invalid request ids
    for label, bad in (("with a quote", 'a"b'), ("of 129 characters", "a" * 129), ("empty", ""),
                       ("with a newline", "a\nb")):
        ans = post(a.port, {"requestId": bad, "timestamp": 1, "records": [{"data": b64(rec)}]})
        shape("a requestId %s: 400, nothing echoed" % label, ans, 400, "")
    ans = post(a.port, {"timestamp": 1, "records": [{"data": b64(rec)}]}, rid="hdr-only")
    shape("no requestId in the body: 400, the header's echoed", ans, 400, "hdr-only")
    ans = post(a.port, {"requestId": 7, "timestamp": 1, "records": [{"data": b64(rec)}]}, rid="hdr-only")
    shape("a requestId that is no string: 400", ans, 400, "hdr-only")
    ans = post(a.port, envelope("body-id", [b64(rec)]), rid="header-id")
    shape("header and body ids differ: 400, the header's echoed", ans, 400, "header-id")
    rid = "a" * 128
    shape("a requestId of 128 characters: 200", post(a.port, envelope(rid, [b64(rec)]), rid=rid), 200, rid)

    # more CloudTrail records in one request than one input may hold (the decoder's max_records, 250,000):
    # every decoded event is held until the request is applied, so small gzip records inflating to many
    # records each would hold memory without bound; 413 (Firehose backs it up to S3), nothing applied
    import uuid
    many = []
    for i in range(5000):
        r = json.loads(rec)
        r["eventID"] = str(uuid.UUID(int=(0x4242 << 64) + i))
        many.append(r)
    msg = b64(gzip.compress(json.dumps(cwl_message(many)).encode(), 6))
    rid = "records-over-bound"
    before = metrics(a.port)
    ans = post(a.port, envelope(rid, [msg] * 51), rid=rid)
    shape("255,000 CloudTrail records in one request: 413 in Firehose's shape", ans, 413, rid)
    after = metrics(a.port)
    k = "credwatch_records_ingested_total"
    rep.check(after.get(k, 0) == before.get(k, 0), "a request over the record bound applies nothing",
              "%s -> %s" % (before.get(k), after.get(k)))
    refused_bound(a)
    # the refusals that come before the route is matched are in Firehose's shape too
    import socket
    s = socket.create_connection((harness.HOST, a.port), timeout=30)
    try:
        body = json.dumps(envelope("framing-1", [b64(rec)])).encode()
        s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   "X-Amz-Firehose-Access-Key: %s\r\nX-Amz-Firehose-Request-Id: framing-1\r\n"
                   "Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n"
                   % (PATH, ING, len(body), len(body))).encode() + body + b"\r\n0\r\n\r\n")
        raw = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
    finally:
        s.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {ln.split(":", 1)[0].strip().lower(): ln.split(":", 1)[1].strip() for ln in lines[1:] if ":" in ln}
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    payload = payload[:int(hdrs.get("content-length", len(payload)))]
    shape("ambiguous framing on the route (refused before routing): 400 in Firehose's shape",
          Answer(status, hdrs, payload), 400, "framing-1")
    shape("no X-Amz-Firehose-Request-Id header: 200 (the body's id)", post(a.port, envelope("body-only", [b64(rec)])),
          200, "body-only")


def key_known(port, akid):
    st, _, _ = harness.Client(port).request("GET", "/v1/keys/" + akid, headers={"Authorization": "Bearer " + READ})
    return st


def refused_bound(a):
    """FH_REFUSED_MAX (api_handlers.c, 1,000,000): pass 1 remembers the number of every input that does not
    decode, so that pass 2 skips it; a request may refuse exactly that many inputs and still be applied, one
    more is 413 with nothing of it applied. 100 gzip subscription messages of 10,000 log events that are not
    CloudTrail are a million inputs in a request of 200 KB, read in a second: the bound itself is tested."""
    junk = cwl_message([])
    junk["logEvents"] = [{"id": "", "timestamp": 0, "message": "x"}] * 10000
    junk = b64(gzip.compress(json.dumps(junk).encode(), 9))
    got = {}
    for tag, extra in (("A", []), ("B", [b64(NOT_CLOUDTRAIL)])):
        akid = "ASIAFH%s%010d" % (tag, 3)
        good = [b64(json.dumps(r).encode()) for r in synth_key(tag, 3, T_SYNTH + 8000)]  # 6 records, a finding
        rid = "refused-bound-" + tag
        before = metrics(a.port)
        ans = post(a.port, envelope(rid, good + [junk] * 100 + extra), rid=rid)
        after = metrics(a.port)
        k = "credwatch_records_ingested_total"
        got[tag] = (ans, rid, after.get(k, 0) - before.get(k, 0), akid)
    ans, rid, ingested, akid = got["A"]
    hs = {k: v for k, v in ans.headers.items() if k.startswith("x-cred")}
    shape("1,000,000 inputs that are not CloudTrail (FH_REFUSED_MAX) in one request: 200", ans, 200, rid)
    rep.check(hs.get("x-credwatch-rejected") == "1000000" and hs.get("x-credwatch-accepted") == "6" and ingested == 6,
              "at the bound: each refused input counted, the 6 CloudTrail records applied", "%s, %s ingested" % (hs, ingested))
    rep.check(key_known(a.port, akid) == 200 and any(f.get("access_key_id") == akid for f in findings(a.port).values()),
              "at the bound: the request's key and finding are stored")
    ans, rid, ingested, akid = got["B"]
    shape("1,000,001 inputs that are not CloudTrail: 413 in Firehose's shape", ans, 413, rid)
    msg = (ans.doc or {}).get("errorMessage")
    rep.check(msg == "more than 1000000 inputs of the request are not CloudTrail",
              "one past the bound: the errorMessage names the bound", repr(msg))
    rep.check(ingested == 0 and key_known(a.port, akid) == 404 and
              not any(f.get("access_key_id") == akid for f in findings(a.port).values()),
              "one past the bound: nothing of the request stored (its records, key, finding)",
              "%s ingested, key %s" % (ingested, key_known(a.port, akid)))


# ---- a request larger than one chunk of decoded events (engine.h, CREDWATCH_INGEST_CHUNK_BYTES) ----

UA_MARKED = "Boto3/1.34.20 md/Botocore#1.34.20 ua/2.0 os/linux#5.10 lang/python#3.12.1 exec-env/AWS_Lambda_python3.12"
UA_CLI = "aws-cli/2.15.0 ua/2.0 os/linux#6.1"
T_SYNTH = 1710319200  # 2024-03-13T08:40:00Z: the keys' uses fall within their issuance's 12 hours


def synth_key(tag, k, t0):
    """One key's records in arrival order (issuance, marked uses, then for k % 3 == 0 two outside uses), plus
    records of other kinds: an IAM user's key (ignored) for k % 3 == 2, a record without eventTime (skipped)
    for k % 5 == 0. Each key's evidence comes in order, so no verdict depends on where a chunk ends."""
    akid = "ASIAFH%s%010d" % (tag, k)
    n = [0]

    def rec(extra, ident=None, when=None):
        n[0] += 1
        r = {"eventVersion": "1.08", "eventID": "fh-%s-%d-%d" % (tag, k, n[0]), "awsRegion": "us-east-1",
             "eventTime": when or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + k * 10 + n[0])),
             "userIdentity": ident or {"type": "AssumedRole", "accessKeyId": akid, "accountId": "111122223333",
                                       "arn": "arn:aws:sts::111122223333:assumed-role/fn%d-role/fn%d" % (k, k)}}
        r.update(extra)
        return r
    out = [rec({"eventSource": "sts.amazonaws.com", "eventName": "AssumeRole", "sourceIPAddress": "lambda.amazonaws.com",
                "userAgent": "lambda.amazonaws.com",
                "requestParameters": {"roleArn": "arn:aws:iam::111122223333:role/fn%d-role" % k, "roleSessionName": "fn%d" % k},
                "responseElements": {"credentials": {"accessKeyId": akid, "expiration": "Mar 13, 2024, 8:33:21 PM"}}},
               ident={"type": "AWSService", "invokedBy": "lambda.amazonaws.com"})]
    for action in ("PutItem", "GetItem", "Query"):
        out.append(rec({"eventSource": "dynamodb.amazonaws.com", "eventName": action,
                        "sourceIPAddress": "3.5.140.%d" % (k % 250 + 1), "userAgent": UA_MARKED}))
    if k % 3 == 0:
        out.append(rec({"eventSource": "sts.amazonaws.com", "eventName": "GetCallerIdentity",
                        "sourceIPAddress": "198.51.100.%d" % (k % 200 + 1), "userAgent": UA_CLI}))
        out.append(rec({"eventSource": "iam.amazonaws.com", "eventName": "ListUsers", "errorCode": "AccessDenied",
                        "sourceIPAddress": "203.0.113.%d" % (k % 200 + 1), "userAgent": UA_CLI}))
    if k % 3 == 2:
        out.append(rec({"eventSource": "s3.amazonaws.com", "eventName": "ListBuckets", "sourceIPAddress": "192.0.2.10",
                        "userAgent": UA_CLI},
                       ident={"type": "IAMUser", "accessKeyId": "AKIAFHUSER%010d" % k, "accountId": "111122223333",
                              "arn": "arn:aws:iam::111122223333:user/u%d" % k}))
    if k % 5 == 0:
        bad = rec({"eventSource": "sts.amazonaws.com", "eventName": "GetCallerIdentity"})
        del bad["eventTime"]
        out.append(bad)
    return out


def chunked_request(rid, n_keys):
    """A Firehose request of n_keys keys' records in three forms (a record each, CloudWatch Logs messages,
    NDJSON), an exact repeat, and records refused or dropped in between: bad base64, not CloudTrail (a record,
    and a log event inside a subscription message), corrupt gzip, a control message."""
    keys = [synth_key("C", k, T_SYNTH) for k in range(n_keys)]
    third = n_keys // 3
    datas = [b64(json.dumps(r).encode()) for rs in keys[:third] for r in rs]
    datas.insert(len(datas) // 2, BAD_B64)
    datas.append(datas[5])  # the same record again: a duplicate
    datas.append(b64(NOT_CLOUDTRAIL))
    for i in range(third, 2 * third, 20):
        events = [r for rs in keys[i:min(i + 20, 2 * third)] for r in rs]
        if i == third:  # a log event that is not CloudTrail, among good ones: pass 2 skips that one alone
            events.insert(len(events) // 2, json.loads(NOT_CLOUDTRAIL))
        msg = cwl_message(events)
        datas.append(b64(gzip.compress(json.dumps(msg).encode())))
        if i == third:
            datas.append(b64(gzip.compress(json.dumps(cwl_message([], control=True)).encode())))
    datas.append(b64(gzip.compress(NOT_CLOUDTRAIL)[:-9]))
    datas.append(b64("\n".join(json.dumps(r) for rs in keys[2 * third:] for r in rs).encode() + b"\n"))
    return envelope(rid, datas), sum(len(rs) for rs in keys)


def chunked_equal():
    """The same Firehose request and the same large /v1/ingest body to an instance whose chunk is 4 KiB (a dozen
    events: pass 2 applies them in hundreds of chunks, skipping the inputs pass 1 refused) and to one with
    the default (one pass): the same counts and the same findings."""
    small = serve("chunk-4k", CREDWATCH_INGEST_CHUNK_BYTES="4096")
    whole = serve("chunk-default")
    rid = "chunked-1"
    env, n = chunked_request(rid, 300)
    hs = {}
    for inst in (small, whole):
        ans = post(inst.port, env, rid=rid)
        shape("a request of %d records over many chunks: 200 (%s)" % (n, inst.name), ans, 200, rid)
        hs[inst.name] = {k: v for k, v in ans.headers.items() if k.startswith("x-credwatch-")}
    hsm, hwh = hs["chunk-4k"], hs["chunk-default"]
    rep.check(hsm == hwh and len(hsm) == 6, "Firehose over 4 KiB chunks: the same counts as in one pass",
              "%s vs %s" % (hsm, hwh))
    rep.check(hsm.get("x-credwatch-rejected") == "4" and hsm.get("x-credwatch-duplicates") == "1" and
              int(hsm.get("x-credwatch-ignored", 0)) > 0 and int(hsm.get("x-credwatch-skipped", 0)) > 0,
              "the request has rejected (4), repeated (1), ignored and skipped records", str(hsm))
    again = post(small.port, env, rid=rid)
    rep.check(again.headers.get("x-credwatch-accepted") == "0" and
              again.headers.get("x-credwatch-duplicates") == str(int(hsm["x-credwatch-accepted"]) + 1),
              "the same request again over chunks: accepted 0, every record a duplicate",
              str({k: v for k, v in again.headers.items() if k.startswith("x-cred")}))
    # /v1/ingest/cloudtrail: one body larger than a chunk (keys are counted per chunk: more on the small one)
    body = json.dumps({"Records": [r for k in range(200) for r in synth_key("I", k, T_SYNTH + 4000)]})
    docs = {}
    for inst in (small, whole):
        st, _, doc = harness.Client(inst.port).request("POST", "/v1/ingest/cloudtrail", body,
                                                       {"Authorization": "Bearer " + ING, "Content-Type": "application/json"})
        docs[inst.name] = doc if st == 200 else {"status": st, "doc": doc}
    dsm, dwh = dict(docs["chunk-4k"]), dict(docs["chunk-default"])
    ksm, kwh = dsm.pop("keys", None), dwh.pop("keys", None)
    for d in (dsm, dwh):
        d["findings"] = sorted(d.get("findings") or [])
    rep.check(dsm == dwh and dsm.get("accepted", 0) > 0, "/v1/ingest over 4 KiB chunks: the same answer as in one pass "
              "(%s records)" % dsm.get("records"), "%s vs %s" % (str(dsm)[:300], str(dwh)[:300]))
    rep.check(isinstance(ksm, int) and isinstance(kwh, int) and ksm > kwh,
              "the 4 KiB instance did take pass 2 (keys counted per chunk: %s vs %s)" % (ksm, kwh))
    fs, fw = findings(small.port), findings(whole.port)
    diff = sorted(k for k in set(fs) | set(fw) if fs.get(k) != fw.get(k))
    rep.check(len(fs) == 100 + 67 and not diff, "the same findings over 4 KiB chunks as in one pass (%d)" % len(fs),
              "differ: %s" % diff[:5])
    small.stop()
    whole.stop()


def auth_and_caps(a, url):
    rec = json.dumps(cases()[0][1][0]).encode()
    rid = "auth-1"
    env = envelope(rid, [b64(rec)])
    shape("no access key: 401 in Firehose's shape", post(a.port, env, rid=rid, key=None), 401, rid)
    shape("a wrong access key: 401", post(a.port, env, rid=rid, key="wrong-key-0123456789"), 401, rid)
    shape("an access key over 4096 bytes: 401", post(a.port, env, rid=rid, key="k" * 5000), 401, rid)
    shape("the read token: 403", post(a.port, env, rid=rid, key=READ), 403, rid)
    shape("the Secrets Manager form {\"api_key\":...}: 200", post(a.port, env, rid=rid, key=json.dumps({"api_key": ING})),
          200, rid)
    shape("a Secrets Manager form with a wrong key: 401",
          post(a.port, env, rid=rid, key=json.dumps({"api_key": "wrong-key-0123456789"})), 401, rid)
    shape("Authorization: Bearer works too: 200",
          post(a.port, env, rid=rid, key=None, extra={"Authorization": "Bearer " + ING}), 200, rid)
    shape("a Content-Type Firehose never sends: 415 in Firehose's shape",
          post(a.port, env, rid=rid, ctype="text/plain"), 415, rid)
    # a small body cap: 413, before and after the body
    small = serve("small", CREDWATCH_REDIS_URL=url + "/2", CREDWATCH_MAX_BODY_BYTES="65536",
                  CREDWATCH_MAX_INFLATED_BYTES="131072")
    big = envelope("too-big", [b64(rec)] * 100)
    shape("a body over CREDWATCH_MAX_BODY_BYTES: 413", post(small.port, big, rid="too-big"), 413, "too-big")
    inflates = envelope("inflates", [b64(b" " * 100000 + rec)] * 2)
    shape("a gzip body inflating past CREDWATCH_MAX_INFLATED_BYTES: 413",
          post(small.port, inflates, rid="inflates", gz=True), 413, "inflates")
    # one inflate budget per request (CREDWATCH_MAX_INFLATED_BYTES, 128 KiB here), not one per record:
    # gzip records of 60 KB each (spaces, then a record: under the per-record ratio's slack) pass
    # two at a time and are refused three at a time, before anything is applied
    padded = gzip.compress(b" " * 60000 + rec)
    shape("two gzip records inflating to 120 KB within the request's 128 KiB budget: 200",
          post(small.port, envelope("budget-2", [b64(padded)] * 2), rid="budget-2"), 200, "budget-2")
    shape("three inflating to 180 KB, past the request's budget: 413 in Firehose's shape",
          post(small.port, envelope("budget-3", [b64(padded)] * 3), rid="budget-3"), 413, "budget-3")
    shape("a gzip body that is not gzip: 400",
          post(small.port, b"plain", rid="notgz", extra={"Content-Encoding": "gzip"}), 400, "notgz")
    small.stop()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 — a crash is one failure, and the processes are stopped
        import traceback
        traceback.print_exc()
        rep.nok("the driver ran to its end", repr(e))
    finally:
        procs.stop_all()
    print("# %d failed" % rep.fails)
    sys.exit(1 if rep.fails else 0)
