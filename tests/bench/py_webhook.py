#!/usr/bin/python3
"""py_webhook.py — the baseline of tests/bench_serve.sh: the simple CloudTrail webhook a team would write
in Python instead of credwatch, so credwatch's records/s can be read against it in the same run.

What it does, and no more: Python 3's ThreadingHTTPServer (a thread per connection, HTTP/1.1 keep-alive)
and redis-py (Debian's python3-redis) with its default connection pool. A POST of a CloudTrail file
{"Records": [...]} (gzip when Content-Encoding says so) with the right bearer token is parsed with the
json module; for each record, the access key it concerns (the key an STS call issued, else the caller's)
gets one flag with a TTL, one plain `SET pyhook:{AKID}:FLAG 1 EX 43200` per record, sent as the record is
read (no pipeline: what a plain implementation does):
    FLAG = issued          the record issued the key (responseElements.credentials)
           aws             the call came from an AWS service (sourceIPAddress "*.amazonaws.com")
           ip:ADDRESS      the call came from that address
The TTL (12 h) is the longest a Lambda or role session key lives. It answers 200 {"accepted": N}.
No dedup of repeated events, no detection, no findings: those flags are the least a stolen-key check
keeps, so the ratio against credwatch is a floor of what its engine costs over plain storage.

usage: py_webhook.py PORT REDIS_PORT TOKEN      (listens on 127.0.0.1:PORT until SIGTERM)
"""
import gzip
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis

TTL_S = 43200
PREFIX = "pyhook:"


def flag_of(rec):
    creds = (rec.get("responseElements") or {}).get("credentials") if isinstance(rec.get("responseElements"), dict) else None
    if isinstance(creds, dict) and creds.get("accessKeyId"):
        return creds["accessKeyId"], "issued"
    akid = (rec.get("userIdentity") or {}).get("accessKeyId")
    if not akid:
        return None, None
    ip = rec.get("sourceIPAddress") or ""
    return akid, "aws" if ip.endswith("amazonaws.com") else "ip:" + ip


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the senders use

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        if self.headers.get("Authorization") != "Bearer " + self.server.token:
            return self.answer(401, {"error": "unauthorized"})
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        try:
            records = json.loads(body)["Records"]
        except (ValueError, KeyError, TypeError):
            return self.answer(400, {"error": "not a CloudTrail file"})
        accepted = 0
        for rec in records:
            akid, flag = flag_of(rec)
            if akid:
                self.server.redis.set("%s{%s}:%s" % (PREFIX, akid, flag), 1, ex=TTL_S)
                accepted += 1
        self.answer(200, {"accepted": accepted})

    def log_message(self, fmt, *args):
        pass  # no access log: credwatch writes none per request either


def main():
    port, rport, token = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.token = token
    srv.redis = redis.Redis(host="127.0.0.1", port=rport)
    print("listening", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
