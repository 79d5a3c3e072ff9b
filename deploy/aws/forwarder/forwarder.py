"""credwatch S3 forwarder: posts CloudTrail log files to credwatch as they land in S3.

A Lambda handler (Python 3.12, standard library plus the runtime's boto3). For every CloudTrail log object named in
the triggering event it reads the object and posts its bytes unchanged (already gzip) to
``POST {CREDWATCH_URL}/v1/ingest/cloudtrail`` with ``Content-Encoding: gzip``.

Triggers understood (one function can serve any of them):
  * S3 event notifications (``Records[].s3``), directly or wrapped in SNS (``Records[].Sns.Message``) or SQS
    (``Records[].body``);
  * EventBridge "Object Created" events from S3 (``detail.bucket.name``, ``detail.object.key``);
  * CloudTrail's own SNS notification (``{"s3Bucket": ..., "s3ObjectKey": [...]}``).

Only CloudTrail log files are forwarded: keys ending in ``.json.gz`` with a ``CloudTrail`` path segment. Digest files
(``CloudTrail-Digest/``), Insights files and anything else in the bucket are skipped with a log line.

Delivery: 429 and 5xx answers (and network errors) are retried with exponential backoff and full jitter, honouring
``Retry-After``, within the invocation's remaining time; when a file still fails the handler raises after trying the
others, so Lambda's asynchronous retries and its dead-letter queue take over. Re-posting a file is harmless: credwatch
deduplicates on eventID. Any other 4xx (bad token, body too large, not CloudTrail) will never succeed: it is logged
with the key and the file is left behind, so the invocation does not loop.

Environment:
  CREDWATCH_URL            base URL, e.g. https://credwatch.example.com (required)
  CREDWATCH_TOKEN          one of the service's CREDWATCH_INGEST_TOKENS (required)
  CREDWATCH_TOKEN_HEADER   "authorization" (default: Authorization: Bearer TOKEN) or "x-api-key"
  CREDWATCH_TIMEOUT        seconds per request (default 30)
  CREDWATCH_MAX_ATTEMPTS   attempts per file (default 6)
  CREDWATCH_BACKOFF_BASE   first backoff in seconds (default 1)
  CREDWATCH_BACKOFF_MAX    longest backoff in seconds (default 30)

The S3 read is injected (``handler(event, context, s3_get=...)``) so the logic runs without boto3 or AWS.
"""

import email.utils
import json
import os
import random
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

INGEST_PATH = "/v1/ingest/cloudtrail"
USER_AGENT = "credwatch-s3-forwarder/1"
GZIP_MAGIC = b"\x1f\x8b"
# Time kept back from the Lambda deadline for logging and returning.
DEADLINE_MARGIN_SECONDS = 5.0
# Without a Lambda context (local runs), how long one invocation may keep retrying.
DEFAULT_BUDGET_SECONDS = 300.0
ERROR_BODY_LOG_BYTES = 512


class Config:
    """Forwarder settings, read once from the environment."""

    def __init__(self, url, token, token_header="authorization", timeout=30.0, max_attempts=6,
                 backoff_base=1.0, backoff_max=30.0):
        if not url:
            raise ValueError("CREDWATCH_URL is required")
        if not token:
            raise ValueError("CREDWATCH_TOKEN is required")
        if token_header not in ("authorization", "x-api-key"):
            raise ValueError("CREDWATCH_TOKEN_HEADER must be authorization or x-api-key")
        if max_attempts < 1:
            raise ValueError("CREDWATCH_MAX_ATTEMPTS must be at least 1")
        self.url = url.rstrip("/")
        self.token = token
        self.token_header = token_header
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max

    @classmethod
    def from_env(cls, env=None):
        env = os.environ if env is None else env
        return cls(
            url=env.get("CREDWATCH_URL", ""),
            token=env.get("CREDWATCH_TOKEN", ""),
            token_header=env.get("CREDWATCH_TOKEN_HEADER", "authorization").strip().lower(),
            timeout=float(env.get("CREDWATCH_TIMEOUT", "30")),
            max_attempts=int(env.get("CREDWATCH_MAX_ATTEMPTS", "6")),
            backoff_base=float(env.get("CREDWATCH_BACKOFF_BASE", "1")),
            backoff_max=float(env.get("CREDWATCH_BACKOFF_MAX", "30")),
        )

    def auth_headers(self):
        if self.token_header == "x-api-key":
            return {"X-Api-Key": self.token}
        return {"Authorization": "Bearer " + self.token}


class ForwardError(Exception):
    """Some files could not be delivered for a reason that may pass (429, 5xx, network): retry the invocation."""


def log(level, message, **fields):
    """One JSON object per line on stdout (CloudWatch Logs keeps each line as one event)."""
    record = {"level": level, "msg": message}
    record.update(fields)
    sys.stdout.write(json.dumps(record, default=str) + "\n")
    sys.stdout.flush()


# ---- which objects --------------------------------------------------------------------------------------------------

def object_refs(event):
    """Returns the (bucket, key) pairs an event names, whatever the trigger's shape, in order."""
    refs = []
    if not isinstance(event, dict):
        return refs
    if isinstance(event.get("detail"), dict) and event.get("source") == "aws.s3":
        detail = event["detail"]
        bucket = (detail.get("bucket") or {}).get("name")
        key = (detail.get("object") or {}).get("key")
        if bucket and key:
            refs.append((bucket, key))
        return refs
    if "s3Bucket" in event and "s3ObjectKey" in event:
        keys = event["s3ObjectKey"]
        for key in keys if isinstance(keys, list) else [keys]:
            refs.append((event["s3Bucket"], key))
        return refs
    for record in event.get("Records") or []:
        if not isinstance(record, dict):
            continue
        s3 = record.get("s3")
        if isinstance(s3, dict):
            bucket = (s3.get("bucket") or {}).get("name")
            key = (s3.get("object") or {}).get("key")
            if bucket and key:
                # S3 notifications URL-encode keys (spaces as '+').
                refs.append((bucket, urllib.parse.unquote_plus(key)))
            continue
        wrapped = None
        if isinstance(record.get("Sns"), dict):
            wrapped = record["Sns"].get("Message")
        elif isinstance(record.get("body"), str):
            wrapped = record["body"]
        if wrapped:
            try:
                inner = json.loads(wrapped)
            except ValueError:
                log("warning", "wrapped message is not JSON; ignored")
                continue
            refs.extend(object_refs(inner))
    return refs


def should_forward(key):
    """(True, "") for a CloudTrail log file, else (False, why)."""
    segments = key.split("/")
    if "CloudTrail-Digest" in segments:
        return False, "digest file"
    if not key.endswith(".json.gz"):
        return False, "not a .json.gz file"
    if "CloudTrail" not in segments:
        return False, "not under a CloudTrail/ prefix"
    return True, ""


# ---- delivery -------------------------------------------------------------------------------------------------------

def retry_after_seconds(value, now=None):
    """Parses Retry-After (delta-seconds or an HTTP date). None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)


def backoff_seconds(cfg, attempt, rand=random.random):
    """Full-jitter exponential backoff for attempt 1, 2, ...: uniform in [0, min(max, base * 2^(attempt-1))]."""
    ceiling = min(cfg.backoff_max, cfg.backoff_base * (2 ** (attempt - 1)))
    return ceiling * rand()


def post_file(cfg, body, key, deadline, sleep=time.sleep, clock=time.monotonic, opener=urllib.request.urlopen):
    """Posts one CloudTrail file. Returns ("delivered", summary) | ("rejected", status) | ("failed", reason).

    "rejected" is final (a 4xx other than 429); "failed" means retrying later may work.
    """
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    if body[:2] == GZIP_MAGIC:
        headers["Content-Encoding"] = "gzip"
    headers.update(cfg.auth_headers())
    reason = "no attempt made"
    for attempt in range(1, cfg.max_attempts + 1):
        retry_after = None
        request = urllib.request.Request(cfg.url + INGEST_PATH, data=body, headers=headers, method="POST")
        timeout = max(1.0, min(cfg.timeout, deadline - clock()))
        try:
            with opener(request, timeout=timeout) as response:
                raw = response.read()
            try:
                summary = json.loads(raw or b"{}")
            except ValueError:
                summary = {}
            return "delivered", summary
        except urllib.error.HTTPError as err:
            status = err.code
            detail = _error_body(err)
            if status != 429 and status < 500:
                log("error", "credwatch rejected the file; not retrying", key=key, status=status, body=detail)
                return "rejected", status
            reason = "HTTP %d" % status
            retry_after = retry_after_seconds(err.headers.get("Retry-After") if err.headers else None)
            log("warning", "credwatch answered a retryable status", key=key, status=status, attempt=attempt,
                retry_after=retry_after, body=detail)
        except (urllib.error.URLError, socket.timeout, ConnectionError, OSError) as err:
            reason = "network: %s" % (getattr(err, "reason", None) or err)
            log("warning", "credwatch unreachable", key=key, attempt=attempt, error=reason)
        if attempt == cfg.max_attempts:
            break
        delay = backoff_seconds(cfg, attempt)
        if retry_after is not None:
            delay = max(delay, retry_after)
        if clock() + delay >= deadline:
            log("warning", "no time left to retry in this invocation", key=key, attempt=attempt, wait=delay)
            break
        sleep(delay)
    return "failed", reason


def _error_body(err):
    try:
        return err.read(ERROR_BODY_LOG_BYTES).decode("utf-8", "replace")
    except Exception:  # the body is only for the log line
        return ""


def _count(summary, field):
    """A count from credwatch's ingest answer: `field_count`, or `field` as a number or a list of ids."""
    if not isinstance(summary, dict):
        return 0
    value = summary.get(field + "_count", summary.get(field))
    if isinstance(value, list):
        return len(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    return 0


# ---- S3 -------------------------------------------------------------------------------------------------------------

_S3_CLIENT = None


def boto3_get_object(bucket, key):
    """Reads an object with the Lambda runtime's boto3 (imported here so tests need no boto3)."""
    global _S3_CLIENT
    if _S3_CLIENT is None:
        import boto3  # pylint: disable=import-outside-toplevel
        _S3_CLIENT = boto3.client("s3")
    return _S3_CLIENT.get_object(Bucket=bucket, Key=key)["Body"].read()


# ---- entry point ----------------------------------------------------------------------------------------------------

def handler(event, context=None, s3_get=None, config=None, sleep=time.sleep, clock=time.monotonic,
            opener=urllib.request.urlopen):
    """Lambda entry point. Returns counts; raises ForwardError when some file may succeed on a later try."""
    cfg = config if config is not None else Config.from_env()
    s3_get = s3_get if s3_get is not None else boto3_get_object
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        budget = context.get_remaining_time_in_millis() / 1000.0 - DEADLINE_MARGIN_SECONDS
    else:
        budget = DEFAULT_BUDGET_SECONDS
    deadline = clock() + max(1.0, budget)

    counts = {"forwarded": 0, "skipped": 0, "rejected": 0, "failed": 0, "records": 0, "findings": 0}
    failed = []
    for bucket, key in object_refs(event):
        ok, why = should_forward(key)
        if not ok:
            counts["skipped"] += 1
            log("info", "skipped", bucket=bucket, key=key, reason=why)
            continue
        try:
            body = s3_get(bucket, key)
        except Exception as err:  # S3 errors: NoSuchKey is final, throttling is not; let Lambda retry both
            counts["failed"] += 1
            failed.append(key)
            log("error", "cannot read object", bucket=bucket, key=key, error=str(err))
            continue
        outcome, info = post_file(cfg, body, key, deadline, sleep=sleep, clock=clock, opener=opener)
        if outcome == "delivered":
            counts["forwarded"] += 1
            counts["records"] += _count(info, "records")
            counts["findings"] += _count(info, "findings")
            log("info", "forwarded", bucket=bucket, key=key, bytes=len(body), result=info)
        elif outcome == "rejected":
            counts["rejected"] += 1
        else:
            counts["failed"] += 1
            failed.append(key)
            log("error", "delivery failed; the invocation will be retried", bucket=bucket, key=key, reason=info)
    log("info", "done", **counts)
    if failed:
        raise ForwardError("%d file(s) not delivered: %s" % (len(failed), ", ".join(failed[:5])))
    return counts
