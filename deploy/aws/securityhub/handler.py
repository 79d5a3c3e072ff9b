"""credwatch -> AWS Security Hub: the receiver of a credwatch webhook sink with FORMAT=asff.

A Lambda handler (Python 3.12, standard library plus the runtime's boto3) behind a function URL with auth NONE:
credwatch signs every delivery, so the signature is the authentication. For each POST it

  1. verifies ``Credwatch-Signature: t=<unix>,v1=<hex>`` = HMAC-SHA256(secret, "<t>.<raw body>"), in constant time,
     refusing a t more than 5 minutes from our clock (a replayed old delivery);            -> 401
  2. takes ``finding`` from ``{"event", "idempotency_key", "revision", "finding"}`` and checks it is an ASFF finding
     (SchemaVersion) for this account and region (the default product only imports your own findings);  -> 400
  3. calls securityhub:BatchImportFindings with it.                                         -> 200 / 500 / 400

The status tells credwatch what to do: 2xx acknowledged; 5xx retried with backoff (throttling, Security Hub or IAM
trouble that someone can fix); 4xx other than 408/429 dead-lettered (this finding will never import). Repeats are
harmless: BatchImportFindings upserts by (ProductArn, Id) and keeps the finding with the later UpdatedAt.

Environment:
  CREDWATCH_SECRET_REF     the sink's SECRET: an SSM SecureString parameter name (or ARN) or a Secrets Manager ARN;
                           read once per cold start
  SECURITYHUB_PRODUCT_ARN  arn:<partition>:securityhub:<region>:<account>:product/<account>/default (the templates
                           set it); a finding for another product ARN is refused with 400
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time

# credwatch's documented window; also bounds how long a captured request can be replayed.
TOLERANCE_SECONDS = 300
# Error codes (from a raised ClientError or a FailedFindings entry) that mean "try again later". Codes are matched by
# substring because Security Hub does not document the per-finding ones.
TRANSIENT_CODES = ("Throttl", "TooManyRequests", "LimitExceeded", "Internal", "ServiceUnavailable", "Timeout")
# Raised codes that say the request itself is wrong: retrying the same finding cannot help.
PERMANENT_CODES = ("InvalidInputException", "ValidationException")

_clients = {}   # boto3 clients by service name; tests put fakes here
_secret = None  # bytes, cached for the life of the execution environment


def log(level, message, **fields):
    """One JSON object per line (CloudWatch Logs keeps each line as one event). Never logs the secret or the body."""
    sys.stdout.write(json.dumps(dict(level=level, msg=message, **fields), default=str) + "\n")
    sys.stdout.flush()


def client(name):
    if name not in _clients:
        import boto3  # pylint: disable=import-outside-toplevel  (lazy: the module imports without boto3)
        from botocore.config import Config  # pylint: disable=import-outside-toplevel
        # Short timeouts and few SDK retries: credwatch retries a 500 itself, and waits 10 s for our answer.
        _clients[name] = boto3.client(name, config=Config(connect_timeout=2, read_timeout=4,
                                                          retries={"mode": "standard", "max_attempts": 2}))
    return _clients[name]


def secret():
    """The shared secret's bytes, from Secrets Manager (an ARN of that service) or SSM Parameter Store (anything
    else), fetched on first use and cached: one read per cold start."""
    global _secret
    if _secret is None:
        ref = os.environ["CREDWATCH_SECRET_REF"]
        if ref.startswith("arn:") and ":secretsmanager:" in ref:
            value = client("secretsmanager").get_secret_value(SecretId=ref)["SecretString"]
        else:
            value = client("ssm").get_parameter(Name=ref, WithDecryption=True)["Parameter"]["Value"]
        _secret = value.encode("utf-8")
    return _secret


def verify(header, body, key, now):
    """True when the Credwatch-Signature header signs this body with this key at a time within the tolerance."""
    try:
        parts = dict(p.strip().split("=", 1) for p in header.split(","))
        t, given = parts["t"], parts["v1"].encode("utf-8")
    except (KeyError, ValueError):
        return False
    if not t.isascii() or not t.isdigit():
        return False
    want = hmac.new(key, t.encode() + b"." + body, hashlib.sha256).hexdigest().encode()
    # Bytes, not str: compare_digest raises on non-ASCII text. The time check comes after and does not short-cut it.
    return hmac.compare_digest(want, given) and abs(now - int(t)) <= TOLERANCE_SECONDS


def reply(status, **doc):
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(doc)}


def error_code(err):
    """The AWS error code of a botocore ClientError, or None for anything else (network, timeouts)."""
    response = getattr(err, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def import_finding(finding):
    """BatchImportFindings with one finding -> the HTTP status for credwatch."""
    fid = finding.get("Id")
    try:
        out = client("securityhub").batch_import_findings(Findings=[finding])
    except Exception as err:  # botocore errors: ClientError carries a code, connection errors none
        code = error_code(err)
        if code in PERMANENT_CODES:
            log("error", "Security Hub refused the finding", id=fid, code=code, error=str(err))
            return reply(400, error="rejected", code=code, message=str(err))
        # Throttling, Security Hub errors, and also AccessDenied / InvalidAccess (hub not enabled, policy wrong):
        # deployment faults that someone will fix, so keep the finding queued rather than dead-letter it.
        log("warning", "BatchImportFindings failed; credwatch will retry", id=fid, code=code, error=str(err))
        return reply(500, error="unavailable", code=code)
    if not out.get("FailedCount"):
        log("info", "imported", id=fid)
        return reply(200, imported=fid)
    failed = (out.get("FailedFindings") or [{}])[0]
    code, message = failed.get("ErrorCode", ""), failed.get("ErrorMessage", "")
    if any(c in code for c in TRANSIENT_CODES):
        log("warning", "Security Hub deferred the finding; credwatch will retry", id=fid, code=code,
            error_message=message)
        return reply(500, error="unavailable", code=code)
    log("error", "Security Hub refused the finding", id=fid, code=code, error_message=message)
    return reply(400, error="rejected", code=code, message=message)


def handler(event, context=None):
    """Lambda entry point for a function URL (payload format 2.0)."""
    method = event.get("requestContext", {}).get("http", {}).get("method", "POST")
    if method != "POST":
        return reply(405, error="method_not_allowed")
    body = event.get("body") or ""
    body = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    try:
        key = secret()
    except Exception as err:  # SSM / Secrets Manager unreachable or denied: not credwatch's fault, let it retry
        log("error", "cannot read the shared secret", error=str(err))
        return reply(500, error="secret_unavailable")
    if not verify(headers.get("credwatch-signature", ""), body, key, time.time()):
        log("warning", "bad or stale signature", source_ip=event.get("requestContext", {}).get("http", {}).get(
            "sourceIp"))
        return reply(401, error="bad_signature")

    # Signed by credwatch from here on: anything malformed is a permanent mistake (a sink without FORMAT=asff, say).
    try:
        doc = json.loads(body)
    except ValueError:
        return reply(400, error="not_json")
    finding = doc.get("finding") if isinstance(doc, dict) else None
    if not isinstance(finding, dict) or "SchemaVersion" not in finding:
        log("error", "not an ASFF finding: set the sink's FORMAT=asff", event=doc.get("event") if isinstance(
            doc, dict) else None)
        return reply(400, error="not_asff", message="finding is not an ASFF finding (set FORMAT=asff on the sink)")
    product = os.environ.get("SECURITYHUB_PRODUCT_ARN")
    if product and finding.get("ProductArn") != product:
        # Security Hub would answer AccessDenied, a 500 that would hold the whole sink for GIVE_UP_SECONDS.
        log("error", "finding belongs to another account or region", id=finding.get("Id"),
            product_arn=finding.get("ProductArn"), expected=product)
        return reply(400, error="wrong_product_arn", message="this receiver imports findings for %s" % product)
    return import_finding(finding)
