#!/usr/bin/python3
"""sink_receiver.py — a webhook receiver for tests/it_sinks.sh, it_sinkapi.sh, delivery_test.py and bench_delivery.py (stdlib only).

Listens on 127.0.0.1, port 0, and prints the port on the first line of stdout. With --tls CERT KEY it
speaks HTTPS. Every POST is recorded as one JSON line in --log before the answer is sent:
  {"path": ..., "sig": "ok" | "bad" | "none", "event": ..., "idempotency_key": ..., "body": <JSON or null>}
and a failed TLS handshake as {"tls_error": ...}. Each request line also carries "at" (unix time, float), "status"
(the status answered), "sleep_ms" (the wait before answering) and "peer" (the client's port: one per connection)
and "t" (unix time once the body was read: tests/bench_delivery.py measures latency by it).

Paths: /hook... checks the webhook signature (Credwatch-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
"<t>.<body>")>, t within 300 s, the Credwatch-Event and Credwatch-Idempotency-Key headers matching the body)
and answers 401 when it fails; any other path records the body unchecked (Slack, PagerDuty).
The query tells the receiver how to answer:
  status=N                     that status (default 200; 202 on /pd)
  retry_after=S                Retry-After: S
  retry_after_date=+S          Retry-After: the HTTP date S seconds from now
  location=URL                 Location: URL (a redirect the client must not follow)
  sleep_ms=N                   wait N ms before answering
  big=N                        an N-byte body
POST /_control with a JSON object of those same names (e.g. {"status": 500, "retry_after": 2} or {"sleep_ms": 1500};
{} for the defaults) sets how the receiver answers from then on where the query does not say; it is answered 200 and
not recorded (tests/delivery_test.py switches a receiver's behaviour while a sink keeps posting to one URL).
--port N listens on that port (default 0: one the kernel picks), so a stopped receiver can come back on its port.
It exits by itself after --max-seconds (a bound if the test's clean-up never comes); the test stops it by pid.
"""
import argparse
import email.utils
import hashlib
import hmac
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY_MAX = 1 << 20
SKEW_MAX_S = 300


def check_signature(secret, headers, raw, body):
    sig = headers.get("Credwatch-Signature", "")
    parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
    try:
        t = int(parts.get("t", ""))
    except ValueError:
        return "bad"
    want = hmac.new(secret.encode(), str(t).encode() + b"." + raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(want, parts.get("v1", "")) or abs(time.time() - t) > SKEW_MAX_S:
        return "bad"
    if not isinstance(body, dict) or headers.get("Credwatch-Event") != body.get("event") or \
            headers.get("Credwatch-Idempotency-Key") != body.get("idempotency_key"):
        return "bad"
    return "ok"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall each
    timeout = 10

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(min(n, BODY_MAX))
        received = time.time()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if url.path == "/_control":
            self.server.mode = {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}
            self.answer(200, {}, b'{"ok":true}')
            return
        q = dict(self.server.mode, **dict(urllib.parse.parse_qsl(url.query)))
        hook = url.path.startswith("/hook")
        sig = check_signature(self.server.secret, self.headers, raw, body) if hook else "none"
        status = 401 if sig == "bad" else int(q.get("status", 202 if url.path == "/pd" else 200))
        sleep_ms = int(q.get("sleep_ms", 0))
        self.server.record({"path": url.path, "sig": sig, "event": self.headers.get("Credwatch-Event"),
                            "idempotency_key": self.headers.get("Credwatch-Idempotency-Key"),
                            "content_type": self.headers.get("Content-Type"), "body": body,
                            "at": time.time(), "t": received, "status": status, "sleep_ms": sleep_ms,
                            "peer": self.client_address[1]})
        if sleep_ms:
            time.sleep(sleep_ms / 1000.0)
        payload = b"x" * int(q["big"]) if "big" in q else b'{"ok":true}'
        self.answer(status, q, payload)

    def answer(self, status, q, payload):
        try:
            self.send_response(status)
            if "retry_after" in q:
                self.send_header("Retry-After", q["retry_after"])
            if "retry_after_date" in q:
                self.send_header("Retry-After", email.utils.formatdate(time.time() + int(q["retry_after_date"]),
                                                                       usegmt=True))
            if "location" in q:
                self.send_header("Location", q["location"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client gave up (a timeout test, a response cut at its cap)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, secret, log, tls, port=0):
        super().__init__(("127.0.0.1", port), Handler)
        self.secret, self.log, self.lock = secret, log, threading.Lock()
        self.mode = {}  # how to answer where the query does not say (POST /_control)
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(tls[0], tls[1])

    def record(self, entry):
        with self.lock, open(self.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def finish_request(self, request, client_address):
        # The handshake in the connection's own thread: a client that never finishes it holds no other.
        if self.ctx:
            request.settimeout(10)
            try:
                request = self.ctx.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                self.record({"tls_error": str(e)})
                return
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            if self.ctx:
                request.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--secret", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--max-seconds", type=float, default=300)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    srv = Server(a.secret, a.log, a.tls, a.port)
    print(srv.server_address[1], flush=True)
    threading.Timer(a.max_seconds, lambda: os._exit(0)).start()
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
