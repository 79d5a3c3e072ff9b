#!/usr/bin/python3
"""make_corpus.py — (re)writes the committed seed corpus of the libFuzzer targets from the test
fixtures, so the seeds stay real CloudTrail shapes. Run from the repository root:
    /usr/bin/python3 tests/fuzz/make_corpus.py
fuzz_codec's seeds (det_encode blobs) come from tests/fuzz/seed_codec.c (`make fuzz-seeds`).
Regression inputs (crashes found and fixed) live beside the seeds as regress-*; never deleted here.
"""
import glob
import gzip
import hashlib
import json
import os

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "corpus")
MAX_SEED = 16 * 1024  # libFuzzer mutates small inputs best; bigger seeds slow every run


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_SEED:
        return
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(b):
    return gzip.compress(b, mtime=0)


def eventbridge(rec):
    return {"version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": "AWS API Call via CloudTrail", "source": "aws." + rec.get("eventSource", "sts").split(".")[0],
            "account": "111122223333", "time": rec.get("eventTime"), "region": rec.get("awsRegion", "us-east-1"),
            "resources": [], "detail": rec}


def body_seeds():
    out = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "..", "cases", "*.json"))):
        case = json.load(open(path))
        name = os.path.basename(path)[:-5]
        recs = case["records"]
        trail = json.dumps({"Records": recs}, separators=(",", ":")).encode()
        out["ct-" + name] = trail
        if name[:2] in ("01", "06", "13"):
            out["ct-gz-" + name] = gz(trail)
            out["eb-one-" + name] = json.dumps(eventbridge(recs[-1])).encode()
            out["eb-array-" + name] = json.dumps([eventbridge(r) for r in recs]).encode()
            out["ndjson-" + name] = b"\n".join(json.dumps(r).encode() for r in recs) + b"\n"
            out["bare-array-" + name] = json.dumps(recs).encode()
    edge = {
        "empty": b"",
        "ws": b" \n\t ",
        "obj": b"{}",
        "arr": b"[]",
        "records-empty": b'{"Records":[]}',
        "records-null": b'{"Records":null}',
        "records-obj": b'{"Records":{}}',
        "records-str": b'{"Records":"x"}',
        "deep": b"[" * 70 + b"]" * 70,
        "deep-records": b'{"Records":[' + b'{"a":' * 70 + b"1" + b"}" * 70 + b"]}",
        "s3-notification": b'{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}',
        "sns": b'{"Type":"Notification","MessageId":"x","TopicArn":"arn:aws:sns:us-east-1:1:t","Message":"{}"}',
        "digest": b'{"awsAccountId":"111122223333","digestStartTime":"2024-03-13T08:00:00Z","logFiles":[]}',
        "nul": b'{"Records":[{"eventID":"a\x00b"}]}',
        "bad-utf8": b'{"Records":[{"eventID":"\xff\xfe","userAgent":"\xc3\x28"}]}',
        "escapes": b'{"Records":[{"eventID":"\\u0000\\ud800\\n","userIdentity":{"accessKeyId":"ASIA\\r\\nSET x 1"}}]}',
        "dupkeys": b'{"Records":[{"eventID":"1","eventID":"2","eventTime":"2024-03-13T08:33:21Z","eventTime":7}]}',
        "bignum": b'{"Records":[{"eventTime":1e999999,"n":123456789012345678901234567890}]}',
        "gzip-empty": gz(b""),
        "gzip-truncated": gz(b'{"Records":[]}')[:12],
        "gzip-concat": gz(b'{"Records":[]}') + gz(b'{"Records":[]}'),
        "bomb-small": gz(b" " * 300000),
    }
    out.update(edge)
    return out


def api_seeds():
    import base64
    def cur(s):
        return base64.urlsafe_b64encode(s.encode()).rstrip(b"=")
    return {
        "cursor": cur("1710400000000:cwf-ASIAQEXAMPLEKEY00001"),
        "cursor-neg": cur("-1:cwf-x"),
        "cursor-big": cur("99999999999999999999:cwf-x"),
        "cursor-pad": cur("1:x") + b"==",
        "bearer": b"Bearer 0123456789abcdef0123\n",
        "basic": b"Basic " + base64.b64encode(b"u:0123456789abcdef0123") + b"\nkey-0123456789abcdef",
        "tokens": b"0123456789abcdef0123, fedcba9876543210fedc\n",
        "apikey": b"\n0123456789abcdef0123",
        "time": b"2024-03-13T08:33:21.123Z",
        "time-offset": b"2024-03-13T08:33:21+05:30",
        "time-lower": b"2024-03-13t08:33:21.999999999z",
        "path-finding": b"/v1/findings/cwf-ASIAQEXAMPLEKEY00001",
        "path-key": b"/v1/keys/ASIAQEXAMPLEKEY00001",
        "path-ingest": b"/v1/ingest/cloudtrail",
        "path-dots": b"/v1/findings/../keys//x%2f",
        "ctype": b"application/json; charset=utf-8",
        "cenc": b"x-gzip",
    }


def firehose_seeds():
    """fuzz_firehose: Firehose request bodies built from the fixtures' records (plain CloudTrail,
    EventBridge, CloudWatch Logs subscription messages gzip'd, a control message), the same gzip'd
    as Content-Encoding: gzip sends them, bare subscription messages (the target reads every input
    as one record's bytes too), and the envelope's edge cases."""
    import base64

    def b64(b):
        return base64.b64encode(b).decode()

    def env(datas, rid="6e0fd5a3-1f0c-4c50-8d3f-0a2b7b6f9e11"):
        return json.dumps({"requestId": rid, "timestamp": 1710318801000,
                           "records": [{"data": b64(d)} for d in datas]}, separators=(",", ":")).encode()

    def cwl(recs):
        return json.dumps({"messageType": "DATA_MESSAGE", "owner": "111122223333",
                           "logGroup": "aws-cloudtrail-logs", "logStream": "111122223333_CloudTrail_us-east-1",
                           "subscriptionFilters": ["credwatch"],
                           "logEvents": [{"id": str(36000000000000000000000000000000000000000000000000000000 + i),
                                          "timestamp": 1710318801000 + i,
                                          "message": json.dumps(r, separators=(",", ":"))}
                                         for i, r in enumerate(recs)]}, separators=(",", ":")).encode()

    control = json.dumps({"messageType": "CONTROL_MESSAGE", "owner": "CloudwatchLogs", "logGroup": "",
                          "logStream": "", "subscriptionFilters": [],
                          "logEvents": [{"id": "", "timestamp": 1710318801000,
                                         "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}]},
                         separators=(",", ":")).encode()
    out = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "..", "cases", "*.json"))):
        name = os.path.basename(path)[:-5]
        if name[:2] not in ("01", "05", "06", "13"):
            continue
        recs = json.load(open(path))["records"]
        out["fh-plain-" + name] = env([json.dumps(r).encode() for r in recs])
        out["fh-ndjson-" + name] = env([b"\n".join(json.dumps(r).encode() for r in recs) + b"\n"])
        out["fh-eb-" + name] = env([json.dumps(eventbridge(r)).encode() for r in recs])
        out["fh-cwl-" + name] = env([gz(cwl(recs)), gz(control)])
        out["fh-gz-cwl-" + name] = gz(out["fh-cwl-" + name])
        out["cwl-data-" + name] = cwl(recs)
        out["cwl-data-gz-" + name] = gz(cwl(recs))
    out["fh-control"] = env([gz(control)])
    out["cwl-control"] = control
    rid = b'"requestId":"r-1","timestamp":1,'
    edge = {
        "fh-bad-base64": b"{" + rid + b'"records":[{"data":"not base64!"},{"data":"e30="}]}',
        "fh-escaped-data": b"{" + rid + b'"records":[{"data":"e\/30="},{"data":"\u0065\u0033\u0030="}]}',
        "fh-no-data": b"{" + rid + b'"records":[{"other":"e30="}]}',
        "fh-data-twice": b"{" + rid + b'"records":[{"data":"e30=","data":"e30="}]}',
        "fh-data-not-string": b"{" + rid + b'"records":[{"data":{"data":"e30="}}]}',
        "fh-records-empty": b"{" + rid + b'"records":[]}',
        "fh-records-later": b'{"requestId":"r-1","records":{"x":[{"data":"e30="}]},"more":[{"data":"e30="}]}',
        "fh-id-twice": b'{"requestId":"a","requestId":"b","records":[{"data":"e30="}]}',
        "fh-id-bad": b'{"requestId":"a\"b","timestamp":1,"records":[{"data":"e30="}]}',
        "fh-ts-float": b'{"requestId":"a","timestamp":1.5,"records":[{"data":"e30="}]}',
        "fh-deep": b"{" + rid + b'"records":[{"data":"e30=","x":' + b"[" * 20 + b"]" * 20 + b"}]}",
        "fh-gzip-record-bomb": env([gz(b" " * 2000000)]),
        "fh-gzip-record-truncated": env([gz(cwl([{"eventID": "x"}]))[:20]]),
        "fh-cwl-bad": env([gz(b'{"messageType":"DATA_MESSAGE","logEvents":{}}'),
                           gz(b'{"messageType":"OTHER\u0000\n","logEvents":[]}'),
                           gz(b'{"messageType":"DATA_MESSAGE","logEvents":[{"message":1},{"message":"a","message":"b"}]}')]),
        "cwl-type-utf8-cut": ('{"messageType":"' + "\u00e9" * 20 + 'x","logEvents":[]}').encode(),
        "cwl-type-twice": b'{"messageType":"DATA_MESSAGE","messageType":"CONTROL_MESSAGE","logEvents":[]}',
        "cwl-events-later": b'{"messageType":"DATA_MESSAGE","logEvents":[{"message":"{}"}],"x":{"logEvents":[1]}}',
    }
    out.update(edge)
    return out


def main():
    for target in ("fuzz_decode", "fuzz_ingest"):
        for name, data in body_seeds().items():
            write(target, name, data)
    for name, data in api_seeds().items():
        write("fuzz_api", name, data)
    for name, data in firehose_seeds().items():
        write("fuzz_firehose", name, data)


if __name__ == "__main__":
    main()
