#!/usr/bin/python3
"""The S3 forwarder (deploy/aws/forwarder/forwarder.py) run locally, without AWS or boto3.

* Against a real `credwatch serve` (embedded store, loopback, a free port, tokens): a fake S3 holding a gzip CloudTrail
  file with the finding scenario of tests/data/deploy_samples.json, and fake S3 / EventBridge events naming it next to
  a digest and an Insights file. The file must be posted as-is, the finding must be readable with GET /v1/findings,
  the other keys must be skipped without reading them, a second delivery must change nothing, a bad token must be a
  final 4xx.
* Against a stub HTTP server on loopback that answers a script of statuses: 503 + Retry-After then 200 (retried,
  honouring Retry-After), 429 (backoff), 400 (no retry), persistent 500 (gives up, the invocation raises so Lambda
  retries), a Retry-After beyond the invocation's remaining time, connection refused.

Prints `ok - name` / `not ok - name`; exits 1 on any failure. Waits are bounded; only processes it started are
signalled. Sleeping is injected, so backoffs cost no time.
"""

import argparse
import gzip
import http.server
import json
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "deploy", "aws", "forwarder"))
import forwarder  # noqa: E402
import harness  # noqa: E402

SAMPLES = json.load(open(os.path.join(ROOT, "tests", "data", "deploy_samples.json"), encoding="utf-8"))
INGEST_TOKEN = "it-forwarder-ingest-0000000001"
READ_TOKEN = "it-forwarder-read-00000000001"
BUCKET = "org-trail-bucket"
KEY = ("AWSLogs/o-abc123def4/111122223333/CloudTrail/us-east-1/2024/03/13/"
       "111122223333_CloudTrail_us-east-1_20240313T0915Z_abcdEFGH12345678.json.gz")
DIGEST_KEY = ("AWSLogs/o-abc123def4/111122223333/CloudTrail-Digest/us-east-1/2024/03/13/"
              "111122223333_CloudTrail-Digest_us-east-1_org-trail_us-east-1_20240313T091500Z.json.gz")
INSIGHT_KEY = "AWSLogs/o-abc123def4/111122223333/CloudTrail-Insight/us-east-1/2024/03/13/x.json.gz"
ACCESS_KEY = "ASIAEXAMPLEKEY000009"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 30.0

RESULTS = []
# The forwarder's JSON log lines, kept out of the TAP output and shown under a failing check.
LOGS = []
forwarder.log = lambda level, message, **fields: LOGS.append(json.dumps(dict(level=level, msg=message, **fields),
                                                                       default=str))


check = harness.checks(RESULTS, LOGS)


# ---- fakes ----------------------------------------------------------------------------------------------------------

class FakeS3:
    def __init__(self, objects):
        self.objects = objects
        self.reads = []

    def get(self, bucket, key):
        self.reads.append((bucket, key))
        return self.objects[(bucket, key)]


class Sleeps:
    """Records the backoffs instead of sleeping; advances a fake clock so deadlines behave."""

    def __init__(self):
        self.calls = []
        self.offset = 0.0

    def sleep(self, seconds):
        self.calls.append(seconds)
        self.offset += seconds

    def clock(self):
        return time.monotonic() + self.offset


class Context:
    def __init__(self, remaining_ms):
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self):
        return self.remaining_ms


def s3_notification(bucket, keys):
    return {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                         "eventName": "ObjectCreated:Put",
                         "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": "arn:aws:s3:::" + bucket},
                                "object": {"key": urllib.parse.quote_plus(k, safe="/"), "size": 1}}}
                        for k in keys]}


def eventbridge_s3(bucket, key):
    return {"version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
            "source": "aws.s3", "account": "111122223333", "time": "2024-03-13T09:20:00Z", "region": "us-east-1",
            "resources": ["arn:aws:s3:::" + bucket],
            "detail": {"version": "0", "bucket": {"name": bucket}, "object": {"key": key, "size": 1},
                       "reason": "PutObject"}}


def cloudtrail_file():
    return gzip.compress(json.dumps({"Records": SAMPLES["cloudtrail_records"]}).encode())


class Stub:
    """Loopback HTTP server answering POSTs from a script of (status, headers, body); the last entry repeats."""

    def __init__(self, script):
        self.script = list(script)
        self.requests = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                stub.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status, headers, payload = stub.script[min(len(stub.requests), len(stub.script)) - 1]
                data = json.dumps(payload).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


OK_SUMMARY = {"records": 3, "accepted": 3, "duplicates": 0, "skipped": 0, "findings": 1}


def run_stub(script, event=None, remaining_ms=60000, token_header="authorization", max_attempts=4):
    stub = Stub(script)
    try:
        body = cloudtrail_file()
        s3 = FakeS3({(BUCKET, KEY): body})
        sleeps = Sleeps()
        cfg = forwarder.Config(stub.url, INGEST_TOKEN, token_header=token_header, timeout=5, max_attempts=max_attempts,
                               backoff_base=0.5, backoff_max=8)
        error, counts = None, None
        try:
            counts = forwarder.handler(event or s3_notification(BUCKET, [KEY]), Context(remaining_ms), s3_get=s3.get,
                                       config=cfg, sleep=sleeps.sleep, clock=sleeps.clock)
        except forwarder.ForwardError as err:
            error = err
        return stub.requests, sleeps.calls, counts, error, body
    finally:
        stub.close()


# ---- the real service -----------------------------------------------------------------------------------------------

class Service(harness.Instance):
    """`credwatch serve` with the embedded store and tokens, and of our environment only PATH."""

    def __init__(self, binary, log):
        env = {"CREDWATCH_INGEST_TOKENS": INGEST_TOKEN, "CREDWATCH_READ_TOKENS": READ_TOKEN,
               "CREDWATCH_DRAIN_SECONDS": "5"}
        super().__init__(binary, log, env, name="credwatch", start_timeout=START_TIMEOUT,
                         base_env={"PATH": "/usr/bin:/bin"})
        self.url = "http://127.0.0.1:%d" % self.port

    def tail(self):
        return " | ".join(self.log_text().splitlines()[-5:])

    def get(self, path):
        req = urllib.request.Request(self.url + path, headers={"Authorization": "Bearer " + READ_TOKEN})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def stop(self):
        return super().stop(timeout=STOP_TIMEOUT)


def findings_for(doc, access_key):
    items = doc.get("findings", doc if isinstance(doc, list) else [])
    return [f for f in items if isinstance(f, dict) and f.get("access_key_id") == access_key]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "credwatch"))
    opts = ap.parse_args()

    # -- pure logic --
    @check("object_refs reads S3 notifications (URL-decoded), EventBridge, SNS/SQS wrappers, CloudTrail SNS")
    def _():
        spaced = "AWSLogs/1/CloudTrail/us-east-1/2024/03/13/a b+c.json.gz"
        assert forwarder.object_refs(s3_notification(BUCKET, [KEY, spaced])) == [(BUCKET, KEY), (BUCKET, spaced)]
        assert forwarder.object_refs(eventbridge_s3(BUCKET, KEY)) == [(BUCKET, KEY)]
        sns = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(s3_notification(BUCKET, [KEY]))}}]}
        assert forwarder.object_refs(sns) == [(BUCKET, KEY)]
        sqs = {"Records": [{"eventSource": "aws:sqs", "body": json.dumps(eventbridge_s3(BUCKET, KEY))}]}
        assert forwarder.object_refs(sqs) == [(BUCKET, KEY)]
        ct = {"Records": [{"Sns": {"Message": json.dumps({"s3Bucket": BUCKET, "s3ObjectKey": [KEY, DIGEST_KEY]})}}]}
        assert forwarder.object_refs(ct) == [(BUCKET, KEY), (BUCKET, DIGEST_KEY)]
        assert forwarder.object_refs({"Records": [{"eventSource": "aws:sns", "Sns": {"Message": "not json"}}]}) == []

    @check("should_forward takes CloudTrail logs only (not digests, Insights, other files)")
    def _():
        for k in SAMPLES["s3_keys"]:
            assert forwarder.should_forward(k["key"])[0] == k["forward"], k["key"]

    @check("Retry-After is read as seconds or as an HTTP date")
    def _():
        assert forwarder.retry_after_seconds("7") == 7.0
        assert forwarder.retry_after_seconds(None) is None and forwarder.retry_after_seconds("soon") is None
        date = "Wed, 13 Mar 2024 09:00:30 GMT"
        now = 1710320400.0  # 2024-03-13T09:00:00Z
        assert abs(forwarder.retry_after_seconds(date, now=now) - 30.0) < 0.001

    @check("Config.from_env validates its settings")
    def _():
        cfg = forwarder.Config.from_env({"CREDWATCH_URL": "https://cw.example.com/", "CREDWATCH_TOKEN": "t" * 20})
        assert cfg.url == "https://cw.example.com" and cfg.auth_headers() == {"Authorization": "Bearer " + "t" * 20}
        for bad in ({}, {"CREDWATCH_URL": "http://x"}, {"CREDWATCH_URL": "http://x", "CREDWATCH_TOKEN": "t",
                                                         "CREDWATCH_TOKEN_HEADER": "cookie"}):
            try:
                forwarder.Config.from_env(bad)
            except ValueError:
                continue
            raise AssertionError("accepted %s" % bad)

    # -- retries against a stub --
    @check("503 with Retry-After is retried after at least Retry-After, then delivered")
    def _():
        reqs, sleeps, counts, error, body = run_stub([(503, {"Retry-After": "3"}, {"error": "store unavailable"}),
                                                      (200, {}, OK_SUMMARY)])
        assert error is None and counts["forwarded"] == 1 and counts["failed"] == 0, (counts, error)
        assert len(reqs) == 2, len(reqs)
        assert len(sleeps) == 1 and sleeps[0] >= 3.0, sleeps
        assert counts["records"] == 3 and counts["findings"] == 1, counts

    @check("the object is posted as-is with Content-Encoding: gzip and the bearer token")
    def _():
        reqs, _, _, _, body = run_stub([(200, {}, OK_SUMMARY)])
        r = reqs[0]
        h = {k.lower(): v for k, v in r["headers"].items()}
        assert r["path"] == "/v1/ingest/cloudtrail", r["path"]
        assert r["body"] == body, "body changed"
        assert h.get("content-encoding") == "gzip" and h.get("content-type") == "application/json", h
        assert h.get("authorization") == "Bearer " + INGEST_TOKEN, h

    @check("X-Api-Key header mode")
    def _():
        reqs, _, _, _, _ = run_stub([(200, {}, OK_SUMMARY)], token_header="x-api-key")
        h = {k.lower(): v for k, v in reqs[0]["headers"].items()}
        assert h.get("x-api-key") == INGEST_TOKEN and "authorization" not in h, h

    @check("429 without Retry-After backs off (jittered exponential) and retries")
    def _():
        reqs, sleeps, counts, error, _ = run_stub([(429, {}, {"error": "slow down"}), (429, {}, {}),
                                                   (200, {}, OK_SUMMARY)])
        assert error is None and counts["forwarded"] == 1 and len(reqs) == 3, (counts, len(reqs))
        assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.5 and 0 <= sleeps[1] <= 1.0, sleeps

    @check("400 is final: one request, no retry, logged and skipped without failing the invocation")
    def _():
        reqs, sleeps, counts, error, _ = run_stub([(400, {}, {"error": "not a CloudTrail file"})])
        assert error is None and len(reqs) == 1 and sleeps == [], (error, len(reqs), sleeps)
        assert counts["rejected"] == 1 and counts["forwarded"] == 0, counts

    @check("persistent 500: every attempt used, then the invocation raises so Lambda retries it")
    def _():
        reqs, sleeps, counts, error, _ = run_stub([(500, {}, {"error": "boom"})], max_attempts=4)
        assert isinstance(error, forwarder.ForwardError), error
        assert len(reqs) == 4 and len(sleeps) == 3, (len(reqs), sleeps)

    @check("a Retry-After beyond the invocation's remaining time ends the attempts early")
    def _():
        reqs, sleeps, _, error, _ = run_stub([(503, {"Retry-After": "600"}, {})], remaining_ms=30000)
        assert isinstance(error, forwarder.ForwardError) and len(reqs) == 1 and sleeps == [], (error, len(reqs))

    @check("connection refused is retried, then the invocation raises")
    def _():
        cfg = forwarder.Config("http://127.0.0.1:%d" % harness.free_port(), INGEST_TOKEN, timeout=2, max_attempts=3,
                               backoff_base=0.1)
        s3 = FakeS3({(BUCKET, KEY): cloudtrail_file()})
        sleeps = Sleeps()
        try:
            forwarder.handler(s3_notification(BUCKET, [KEY]), Context(60000), s3_get=s3.get, config=cfg,
                              sleep=sleeps.sleep, clock=sleeps.clock)
        except forwarder.ForwardError:
            assert len(sleeps.calls) == 2, sleeps.calls
            return None
        raise AssertionError("no ForwardError")

    @check("a failing file does not stop the others, and the invocation still raises")
    def _():
        stub = Stub([(200, {}, OK_SUMMARY)])
        try:
            other = KEY.replace("abcdEFGH", "zzzzYYYY")
            s3 = FakeS3({(BUCKET, other): cloudtrail_file()})  # KEY is missing: NoSuchKey
            cfg = forwarder.Config(stub.url, INGEST_TOKEN, max_attempts=2)
            try:
                forwarder.handler(s3_notification(BUCKET, [KEY, other]), Context(60000), s3_get=s3.get, config=cfg,
                                  sleep=lambda s: None)
            except forwarder.ForwardError as err:
                assert KEY in str(err) and other not in str(err), err
                assert len(stub.requests) == 1, len(stub.requests)
                return None
            raise AssertionError("no ForwardError")
        finally:
            stub.close()

    # -- the real service --
    if not os.access(opts.binary, os.X_OK):
        msg = "%s not built (make builds it)" % os.path.relpath(opts.binary, ROOT)
        for name in ("forwarder posts a CloudTrail file to credwatch and skips digest and Insights keys",
                     "the finding is readable with GET /v1/findings",
                     "a second delivery (EventBridge S3 trigger) changes nothing",
                     "a wrong token is a final 401: no retry, no failure",
                     "credwatch exits 0 on SIGTERM"):
            check(name)(lambda: msg)
        return 0 if all(RESULTS) else 1

    with tempfile.TemporaryDirectory() as tmp:
        return serve_checks(opts.binary, tmp)


def serve_checks(binary, tmp):
    """The forwarder against a real `credwatch serve`."""
    try:
        svc = Service(binary, os.path.join(tmp, "serve.log"))
    except Exception as err:
        check("credwatch serve starts on loopback with tokens")(lambda: (_ for _ in ()).throw(AssertionError(err)))
        return 1
    try:
        body = cloudtrail_file()
        s3 = FakeS3({(BUCKET, KEY): body})
        cfg = forwarder.Config(svc.url, INGEST_TOKEN, timeout=10, max_attempts=3)

        @check("forwarder posts a CloudTrail file to credwatch and skips digest and Insights keys")
        def _():
            sleeps = Sleeps()
            counts = forwarder.handler(s3_notification(BUCKET, [DIGEST_KEY, KEY, INSIGHT_KEY]), Context(60000),
                                       s3_get=s3.get, config=cfg, sleep=sleeps.sleep, clock=sleeps.clock)
            assert counts["forwarded"] == 1 and counts["skipped"] == 2 and counts["failed"] == 0, counts
            assert s3.reads == [(BUCKET, KEY)], "read %s" % s3.reads
            assert counts["records"] == 3 and counts["findings"] == 1, counts
            assert sleeps.calls == [], "retried against a healthy service"

        @check("the finding is readable with GET /v1/findings")
        def _():
            found = findings_for(svc.get("/v1/findings"), ACCESS_KEY)
            assert len(found) == 1, "findings for %s: %d" % (ACCESS_KEY, len(found))
            f = found[0]
            assert f["account_id"] == "111122223333" and f["function_name"] == "my-fn", f
            assert "198.51.100.7" in f["outside_source_ips"], f["outside_source_ips"]
            assert f["severity"] in ("high", "critical"), f["severity"]
            assert f["issued_by_event_id"] == SAMPLES["cloudtrail_records"][0]["eventID"]

        @check("a second delivery (EventBridge S3 trigger) changes nothing")
        def _():
            before = svc.get("/v1/findings")
            counts = forwarder.handler(eventbridge_s3(BUCKET, KEY), Context(60000), s3_get=s3.get, config=cfg,
                                       sleep=lambda s: None)
            assert counts["forwarded"] == 1, counts
            after = svc.get("/v1/findings")
            assert len(findings_for(after, ACCESS_KEY)) == 1
            strip = lambda d: [{k: v for k, v in f.items() if k != "updated_at"} for f in findings_for(d, ACCESS_KEY)]
            assert strip(before) == strip(after), "the finding changed on a duplicate delivery"

        @check("a wrong token is a final 401: no retry, no failure")
        def _():
            bad = forwarder.Config(svc.url, "wrong-token-00000000000", max_attempts=3)
            sleeps = Sleeps()
            counts = forwarder.handler(s3_notification(BUCKET, [KEY]), Context(60000), s3_get=s3.get, config=bad,
                                       sleep=sleeps.sleep, clock=sleeps.clock)
            assert counts["rejected"] == 1 and counts["failed"] == 0 and sleeps.calls == [], counts
    finally:
        rc = svc.stop()

    @check("credwatch exits 0 on SIGTERM")
    def _():
        assert rc == 0, "exit status %s: %s" % (rc, svc.tail())

    return 0 if all(RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
