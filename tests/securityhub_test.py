#!/usr/bin/python3
"""The Security Hub importer (deploy/aws/securityhub/handler.py) run locally, without AWS or boto3.

A fake ``boto3`` module is put in sys.modules before the handler first asks for a client, so the handler's own code
path (lazy import, one secret read per cold start) runs against fakes of SSM, Secrets Manager and Security Hub.

* Unit: signature good / wrong key / tampered body / stale or future t / malformed header -> 200 / 401; a finding that
  is not ASFF or not for this account and region -> 400 without calling Security Hub; BatchImportFindings accepting
  (FailedCount 0) -> 200, FailedCount > 0 with a permanent code -> 400, with a throttling code -> 500, a raised
  throttling / access / network error -> 500, a raised InvalidInputException -> 400; the secret from SSM or Secrets
  Manager, read once; an unreadable secret -> 500.
* End to end, when the binary is built: `credwatch serve` with a webhook sink (FORMAT=asff) posting to a loopback
  server that hands each request to the handler as a function URL event; the sample scenario's finding must reach the
  fake Security Hub, signed as the handler expects.

Prints `ok - name` / `not ok - name`; exits 1 on any failure. Waits are bounded; only processes it started are
signalled.
"""

import argparse
import base64
import hashlib
import hmac
import http.server
import json
import os
import sys
import tempfile
import threading
import time
import types
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "deploy", "aws", "securityhub"))
import handler  # noqa: E402
import harness  # noqa: E402

SAMPLES = json.load(open(os.path.join(ROOT, "tests", "data", "deploy_samples.json"), encoding="utf-8"))
SECRET = "it-securityhub-shared-secret-0001"
PARAM = "/credwatch/securityhub-sink"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:credwatch-sink-AbCdEf"
ACCOUNT = "111122223333"
PRODUCT = "arn:aws:securityhub:us-east-1:%s:product/%s/default" % (ACCOUNT, ACCOUNT)
INGEST_TOKEN = "it-securityhub-ingest-00000001"
READ_TOKEN = "it-securityhub-read-000000001"
E2E_TIMEOUT = 20.0

RESULTS = []
LOGS = []
handler.log = lambda level, message, **fields: LOGS.append(json.dumps(dict(level=level, msg=message, **fields),
                                                                     default=str))


check = harness.checks(RESULTS, LOGS)


# ---- fakes ----------------------------------------------------------------------------------------------------------

class ClientError(Exception):
    """Shaped like botocore.exceptions.ClientError: the code is in .response["Error"]["Code"]."""

    def __init__(self, code):
        super().__init__("An error occurred (%s) when calling the BatchImportFindings operation" % code)
        self.response = {"Error": {"Code": code, "Message": code}}


class FakeAws:
    """The services the handler uses. `answer` decides BatchImportFindings' outcome: a dict to return or an
    exception to raise."""

    def __init__(self):
        self.imports, self.secret_reads = [], []
        self.answer = None
        self.secret_error = None

    def client(self, name, config=None):
        assert config is not None, "client without timeouts"
        return {"ssm": self._ssm, "secretsmanager": self._sm, "securityhub": self._sh}[name]()

    def _ssm(self):
        def get_parameter(Name, WithDecryption=False):  # noqa: N803 (boto3's argument names)
            self.secret_reads.append(("ssm", Name, WithDecryption))
            if self.secret_error:
                raise self.secret_error
            return {"Parameter": {"Name": Name, "Type": "SecureString", "Value": SECRET}}
        return types.SimpleNamespace(get_parameter=get_parameter)

    def _sm(self):
        def get_secret_value(SecretId):  # noqa: N803
            self.secret_reads.append(("secretsmanager", SecretId))
            return {"ARN": SecretId, "SecretString": SECRET}
        return types.SimpleNamespace(get_secret_value=get_secret_value)

    def _sh(self):
        def batch_import_findings(Findings):  # noqa: N803
            self.imports.append(Findings)
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer or {"FailedCount": 0, "SuccessCount": len(Findings), "FailedFindings": []}
        return types.SimpleNamespace(batch_import_findings=batch_import_findings)


AWS = FakeAws()
sys.modules["boto3"] = types.SimpleNamespace(client=AWS.client)
sys.modules["botocore"] = types.SimpleNamespace()
sys.modules["botocore.config"] = types.SimpleNamespace(Config=lambda **kw: kw)


def cold_start(ref=PARAM):
    """A new execution environment: no clients, no cached secret."""
    handler._clients.clear()
    handler._secret = None
    os.environ["CREDWATCH_SECRET_REF"] = ref
    os.environ["SECURITYHUB_PRODUCT_ARN"] = PRODUCT
    AWS.__init__()


def asff(**over):
    f = {"SchemaVersion": "2018-10-08", "Id": "cwf-ASIAEXAMPLEKEY000009", "ProductArn": PRODUCT,
         "GeneratorId": "credwatch/lambda-credential-exfiltration", "AwsAccountId": ACCOUNT,
         "Types": ["TTPs/Credential Access"], "CreatedAt": "2024-03-13T09:15:00Z", "UpdatedAt": "2024-03-13T09:16:00Z",
         "Severity": {"Label": "HIGH"}, "Title": "t", "Description": "d", "Resources": [{"Type": "Other", "Id": "x"}]}
    f.update(over)
    return f


def delivery(finding, key=SECRET, t=None, tamper=False, header=None, b64=False, method="POST"):
    """A function URL event (payload format 2.0) carrying one signed credwatch delivery."""
    body = json.dumps({"event": "finding.created", "idempotency_key": "cwf-ASIAEXAMPLEKEY000009:1", "revision": 1,
                       "finding": finding}, separators=(",", ":")).encode()
    t = int(time.time()) if t is None else t
    sig = hmac.new(key.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()
    if tamper:
        body = body.replace(b'"revision":1', b'"revision":2')
    hdr = "t=%d,v1=%s" % (t, sig) if header is None else header
    return {"version": "2.0", "rawPath": "/", "isBase64Encoded": b64,
            "body": base64.b64encode(body).decode() if b64 else body.decode(),
            "headers": {"content-type": "application/json", "credwatch-signature": hdr, "credwatch-event": "x"},
            "requestContext": {"http": {"method": method, "sourceIp": "192.0.2.1"}}}


def status(event):
    return handler.handler(event, None)["statusCode"]


# ---- the real service -----------------------------------------------------------------------------------------------

class FunctionUrl:
    """Loopback HTTP server standing in for the function URL: each POST becomes a payload 2.0 event for the handler,
    whose answer is sent back."""

    def __init__(self):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                event = {"version": "2.0", "isBase64Encoded": False, "body": body.decode("utf-8"),
                         "headers": {k.lower(): v for k, v in self.headers.items()},
                         "requestContext": {"http": {"method": "POST", "sourceIp": self.client_address[0]}}}
                out = handler.handler(event, None)
                data = out["body"].encode()
                self.send_response(out["statusCode"])
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def e2e(binary, tmp):
    """credwatch serve -> webhook sink (FORMAT=asff) -> loopback 'function URL' -> handler -> fake Security Hub."""
    cold_start()
    # The finding's ProductArn names the sample's account and region; this receiver is deployed there.
    region = SAMPLES["cloudtrail_records"][-1]["awsRegion"]
    os.environ["SECURITYHUB_PRODUCT_ARN"] = "arn:aws:securityhub:%s:%s:product/%s/default" % (region, ACCOUNT, ACCOUNT)
    url = FunctionUrl()
    env = {"CREDWATCH_INGEST_TOKENS": INGEST_TOKEN, "CREDWATCH_READ_TOKENS": READ_TOKEN, "CREDWATCH_DRAIN_SECONDS": "2",
           "CREDWATCH_SINKS": "hub", "CREDWATCH_SINK_HUB_TYPE": "webhook", "CREDWATCH_SINK_HUB_URL": url.url,
           "CREDWATCH_SINK_HUB_SECRET": SECRET, "CREDWATCH_SINK_HUB_FORMAT": "asff"}
    svc = None
    try:
        svc = harness.Instance(binary, os.path.join(tmp, "serve.log"), env, name="credwatch",
                               base_env={"PATH": "/usr/bin:/bin"})
        body = json.dumps({"Records": SAMPLES["cloudtrail_records"]}).encode()
        req = urllib.request.Request("http://127.0.0.1:%d/v1/ingest/cloudtrail" % svc.port, data=body, method="POST",
                                     headers={"Authorization": "Bearer " + INGEST_TOKEN,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200, r.status
        deadline = time.time() + E2E_TIMEOUT
        while not AWS.imports and time.time() < deadline:
            time.sleep(0.1)
        assert AWS.imports, "nothing imported in %.0f s; handler log: %s; service: %s" % (
            E2E_TIMEOUT, LOGS[-3:], harness.log_tail(svc.log, 600))
        f = AWS.imports[0][0]
        assert f["SchemaVersion"] == "2018-10-08" and f["AwsAccountId"] == ACCOUNT, f
        assert f["Id"].startswith("cwf-") and f["ProductArn"] == os.environ["SECURITYHUB_PRODUCT_ARN"], f
        assert AWS.secret_reads == [("ssm", PARAM, True)], AWS.secret_reads
    finally:
        url.close()
        if svc is not None:
            svc.stop(timeout=10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "credwatch"))
    opts = ap.parse_args()

    @check("a good signature imports the finding (200); the SSM secret is read once per cold start, decrypted")
    def _():
        cold_start()
        assert status(delivery(asff())) == 200
        assert status(delivery(asff(UpdatedAt="2024-03-13T09:17:00Z"))) == 200
        assert [len(b) for b in AWS.imports] == [1, 1] and AWS.imports[0][0]["Id"] == "cwf-ASIAEXAMPLEKEY000009"
        assert AWS.secret_reads == [("ssm", PARAM, True)], AWS.secret_reads

    @check("the secret can come from Secrets Manager (an ARN of that service)")
    def _():
        cold_start(SECRET_ARN)
        assert status(delivery(asff())) == 200
        assert AWS.secret_reads == [("secretsmanager", SECRET_ARN)], AWS.secret_reads

    @check("a base64-encoded body (function URL isBase64Encoded) verifies the same bytes")
    def _():
        cold_start()
        assert status(delivery(asff(), b64=True)) == 200

    @check("wrong secret, tampered body, missing or malformed signature: 401 and nothing imported")
    def _():
        cold_start()
        now = int(time.time())
        for name, ev in (("wrong key", delivery(asff(), key="another-secret-of-enough-length")),
                         ("tampered", delivery(asff(), tamper=True)),
                         ("no header", delivery(asff(), header="")),
                         ("no v1", delivery(asff(), header="t=%d" % now)),
                         ("no t", delivery(asff(), header="v1=" + "0" * 64)),
                         ("signed t differs", delivery(asff(), header="t=+%d,v1=%s" % (now, "0" * 64))),
                         ("non-ASCII v1", delivery(asff(), header="t=%d,v1=\u00e9\u00e9" % now)),
                         ("garbage", delivery(asff(), header="nonsense"))):
            assert status(ev) == 401, name
        assert AWS.imports == []

    @check("a timestamp more than 300 s from our clock is refused (401); 299 s is accepted")
    def _():
        cold_start()
        now = int(time.time())
        assert status(delivery(asff(), t=now - 301)) == 401
        assert status(delivery(asff(), t=now + 301)) == 401
        assert AWS.imports == []
        assert status(delivery(asff(), t=now - 299)) == 200

    @check("a finding that is not ASFF (sink without FORMAT=asff) or not JSON: 400, Security Hub not called")
    def _():
        cold_start()
        native = {"id": "cwf-ASIAEXAMPLEKEY000009", "severity": "high", "status": "open"}
        assert status(delivery(native)) == 400
        assert status(delivery(None)) == 400
        assert AWS.imports == []

    @check("a finding for another account or region: 400 (it would never import here), Security Hub not called")
    def _():
        cold_start()
        other = "arn:aws:securityhub:eu-west-1:444455556666:product/444455556666/default"
        r = handler.handler(delivery(asff(ProductArn=other, AwsAccountId="444455556666")), None)
        assert r["statusCode"] == 400 and json.loads(r["body"])["error"] == "wrong_product_arn", r
        assert AWS.imports == []

    @check("Security Hub FailedCount > 0: a permanent error code is 400 (dead letter), throttling is 500 (retry)")
    def _():
        cold_start()
        AWS.answer = {"FailedCount": 1, "SuccessCount": 0, "FailedFindings": [
            {"Id": "cwf-ASIAEXAMPLEKEY000009", "ErrorCode": "InvalidInput", "ErrorMessage": "Finding does not adhere"}]}
        r = handler.handler(delivery(asff()), None)
        assert r["statusCode"] == 400 and json.loads(r["body"])["code"] == "InvalidInput", r
        AWS.answer = {"FailedCount": 1, "SuccessCount": 0, "FailedFindings": [
            {"Id": "cwf-ASIAEXAMPLEKEY000009", "ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}]}
        assert status(delivery(asff())) == 500
        AWS.answer = {"FailedCount": 0, "SuccessCount": 1}
        assert status(delivery(asff())) == 200

    @check("raised errors: throttling, access denied, hub not enabled, network -> 500; InvalidInputException -> 400")
    def _():
        cold_start()
        for code in ("TooManyRequestsException", "ThrottlingException", "AccessDeniedException",
                     "InvalidAccessException", "InternalException"):
            AWS.answer = ClientError(code)
            assert status(delivery(asff())) == 500, code
        AWS.answer = ConnectionError("Could not connect to the endpoint URL")
        assert status(delivery(asff())) == 500
        AWS.answer = ClientError("InvalidInputException")
        assert status(delivery(asff())) == 400

    @check("an unreadable secret is 500 (credwatch retries), and is read again on the next request")
    def _():
        cold_start()
        AWS.secret_error = ClientError("ThrottlingException")
        assert status(delivery(asff())) == 500
        AWS.secret_error = None
        assert status(delivery(asff())) == 200
        assert len(AWS.secret_reads) == 2, AWS.secret_reads

    @check("only POST is served (405)")
    def _():
        cold_start()
        assert status(delivery(asff(), method="GET")) == 405 and AWS.imports == []

    if not os.access(opts.binary, os.X_OK):
        check("credwatch's webhook sink (FORMAT=asff) reaches Security Hub through the handler")(
            lambda: "%s not built (make builds it)" % os.path.relpath(opts.binary, ROOT))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            check("credwatch's webhook sink (FORMAT=asff) reaches Security Hub through the handler")(
                lambda: e2e(opts.binary, tmp))
    return 0 if all(RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
