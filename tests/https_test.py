#!/usr/bin/python3
"""https_test.py — `credwatch serve` over HTTPS (CREDWATCH_TLS_*), driven by tests/it_https.sh.

Certificates are made at run time with `openssl` in a private directory: a root CA and an intermediate
(the server's file holds leaf + intermediate, clients trust the root only), server certificates for
127.0.0.1/localhost (EC and RSA), one for another host name, an expired one, a key encrypted with a
password, client certificates signed by the root and by another CA.

Checks: bad start configurations exit 2 naming the variable; ingest, read, auth and metrics over HTTPS;
TLS 1.1 and CBC suites refused, TLS 1.2 and 1.3 with AEAD accepted; plain HTTP on the HTTPS port closed
without an answer, within a bound; stalled handshakes (nothing sent, half a ClientHello) cut at the
header deadline while another client is served; SIGHUP with a new certificate (new connections see its
fingerprint, a request in flight completes, open connections keep working, clients looping through the
reloads see no failure); SIGHUP with a bad file (the old certificate still served, a log line says why);
mutual TLS (no certificate, another CA's, a good one; the token still decides the role).
Prints `ok - name` / `not ok - name`; exits 1 when a check fails.
"""
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import harness
from hostile_test import theft_records, trail

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", "build")
BIN = os.environ.get("CREDWATCH", os.path.join(ROOT, BUILD, "credwatch"))
HOST = harness.HOST
TOK_I = "ingest-token-https-0123456789ab"
TOK_R = "read-token-https-0123456789abcd"
HEADER_TIMEOUT_S = 2      # the servers' header deadline: a stalled handshake is cut after it
CUT_SLACK_S = 8           # on a loaded 2-core machine: the reaper's tick, scheduling
PLAIN_BOUND_S = 5         # plain HTTP on the HTTPS port: closed within this
IO_TIMEOUT_S = 10
LOG_WAIT_S = 10
START_EXIT_S = 15         # a refused start exits within this
LOOPERS = 3               # clients opening connection after connection through the reloads

R = harness.Report(sep=" # ")
warnings.filterwarnings("ignore", category=DeprecationWarning)  # ssl.TLSVersion.TLSv1_1 is, on purpose


def ok(name, cond, detail=""):
    return R.check(bool(cond), name, str(detail).replace("\n", " ")[:400])


# ---- certificates ------------------------------------------------------------------------------

class Certs:
    """The files, made once. Attribute names are the roles; paths are in self.d."""

    def __init__(self, d):
        self.d = d
        self.root = self.ca("root")
        self.inter = self.signed("inter", self.root, ["basicConstraints=critical,CA:TRUE,pathlen:0",
                                                      "keyUsage=critical,keyCertSign,cRLSign"])
        srv_ext = ["subjectAltName=IP:127.0.0.1,DNS:localhost", "extendedKeyUsage=serverAuth"]
        self.srv = self.signed("srv", self.inter, srv_ext, chain=True)
        self.srv_rsa = self.signed("srv-rsa", self.inter, srv_ext, chain=True, rsa=True)
        self.other_host = self.signed("other-host", self.inter, ["subjectAltName=DNS:other.example",
                                                                 "extendedKeyUsage=serverAuth"], chain=True)
        self.expired = self.signed("expired", self.inter, srv_ext, chain=True, days=-1)
        self.other_ca = self.ca("other-ca")
        self.client = self.signed("client", self.root, ["extendedKeyUsage=clientAuth"])
        self.client_other = self.signed("client-other", self.other_ca, ["extendedKeyUsage=clientAuth"])
        self.enc_key = self.path("srv-enc.key")
        self.run("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", self.srv[1], "-out", self.enc_key,
                 "-passout", "pass:s3cret-pass")
        self.garbage = self.path("garbage.pem")
        with open(self.garbage, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")

    def path(self, name):
        return os.path.join(self.d, name)

    @staticmethod
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def key(self, name, rsa=False):
        k = self.path(name + ".key")
        if rsa:
            self.run("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", k)
        else:
            self.run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", k)
        return k

    def ca(self, name):
        k = self.key(name)
        pem = self.path(name + ".pem")
        self.run("req", "-x509", "-new", "-key", k, "-subj", "/CN=credwatch test " + name, "-days", "2", "-out", pem,
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        return pem, k

    def signed(self, name, issuer, ext, chain=False, rsa=False, days=2):
        """(certificate file, key file); with chain, the file holds the leaf then the intermediate."""
        k = self.key(name, rsa)
        csr, ext_file, pem = self.path(name + ".csr"), self.path(name + ".ext"), self.path(name + ".pem")
        self.run("req", "-new", "-key", k, "-subj", "/CN=" + name, "-out", csr)
        with open(ext_file, "w") as f:
            f.write("\n".join(ext) + "\n")
        self.run("x509", "-req", "-in", csr, "-CA", issuer[0], "-CAkey", issuer[1], "-set_serial",
                 str(random.randrange(1, 1 << 62)), "-days", str(days), "-extfile", ext_file, "-out", pem)
        if chain:
            with open(pem, "a") as out, open(self.inter[0]) as inter:
                out.write(inter.read())
        return pem, k


def fingerprint_of(pem_path):
    """SHA-256 of the first certificate of a PEM file, as ssl's getpeercert(binary_form) would hash it."""
    with open(pem_path) as f:
        first = f.read().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(first)).hexdigest()


def replace_file(src, dst):
    """As an ACME client renews: a new file renamed over the old one."""
    tmp = dst + ".new"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


# ---- clients -----------------------------------------------------------------------------------

def context(certs, client=None, version=None, ciphers=None, check_hostname=True):
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.load_verify_locations(certs.root[0])
    c.check_hostname = check_hostname
    if client:
        c.load_cert_chain(client[0], client[1])
    if ciphers:
        c.set_ciphers(ciphers)
    if version:
        c.minimum_version = c.maximum_version = version
    return c


def handshake(port, ctx):
    """(protocol, cipher, sha256 of the server's leaf) of one fresh connection; raises on failure."""
    with socket.create_connection((HOST, port), timeout=IO_TIMEOUT_S) as s:
        with ctx.wrap_socket(s, server_hostname=HOST) as t:
            return t.version(), t.cipher()[0], hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


def request(port, ctx, method, path, body=None, token=None):
    """(status, parsed JSON or raw body) over a fresh HTTPS connection; raises on a TLS or I/O failure."""
    c = http.client.HTTPSConnection(HOST, port, context=ctx, timeout=IO_TIMEOUT_S)
    try:
        h = {"Authorization": "Bearer " + token} if token else {}
        if body is not None:
            h["Content-Type"] = "application/json"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw)
        except ValueError:
            return r.status, raw
    finally:
        c.close()


def refused(fn):
    """The exception fn raised (a refusal), or None when it succeeded or hung until the client's timeout (a
    refusal must be prompt: a server that stalls the peer is not refusing it)."""
    try:
        fn()
    except TimeoutError:
        return None
    except (ssl.SSLError, OSError, http.client.HTTPException) as e:
        return e
    return None


def metric(port, ctx, name):
    _, text = request(port, ctx, "GET", "/metrics")
    text = text.decode() if isinstance(text, bytes) else str(text)
    for line in text.splitlines():
        if line.split(" ")[0] == name:
            return float(line.split()[-1])
    return None


def closed_within(sock, bound):
    """Seconds until the peer closed sock (EOF or reset) and what it sent, or (None, data) at `bound`."""
    t0, data = time.monotonic(), b""
    sock.settimeout(0.2)
    while time.monotonic() - t0 < bound:
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0, data
        if not chunk:
            return time.monotonic() - t0, data
        data += chunk
    return None, data


class Server(harness.Instance):
    def __init__(self, tmp, procs, env):
        full = {"CREDWATCH_INGEST_TOKENS": TOK_I, "CREDWATCH_READ_TOKENS": TOK_R, "CREDWATCH_THREADS": "2",
                "CREDWATCH_DRAIN_SECONDS": "5", "CREDWATCH_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S)}
        full.update(env)
        super().__init__(BIN, os.path.join(tmp, "server-%d.log" % random.randrange(1 << 30)), full, name="server",
                         procs=procs)


# ---- checks --------------------------------------------------------------------------------------

def start_refused(certs, tmp, name, env, var, words):
    """A start with env exits 2, its message naming var and the words of the reason."""
    full = dict(os.environ, CREDWATCH_LISTEN="%s:0" % HOST, CREDWATCH_STORE="memory")
    full.update(env)
    try:
        p = subprocess.run([BIN, "serve"], env=full, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=START_EXIT_S)
    except subprocess.TimeoutExpired:
        return ok("start refused: %s" % name, False, "still running after %d s" % START_EXIT_S)
    err = p.stderr.decode("utf-8", "replace")
    line = next((ln for ln in err.splitlines() if ln.startswith("credwatch serve:")), err[-300:])
    ok("start refused: %s: exit 2, names %s (%s)" % (name, var, words),
       p.returncode == 2 and var in line and words in line, "rc=%s %s" % (p.returncode, line))


def bad_starts(certs, tmp):
    c, k = certs.srv
    start_refused(certs, tmp, "certificate without key", {"CREDWATCH_TLS_CERT": c}, "CREDWATCH_TLS_KEY", "unset")
    start_refused(certs, tmp, "key without certificate", {"CREDWATCH_TLS_KEY": k}, "CREDWATCH_TLS_CERT", "unset")
    start_refused(certs, tmp, "client CA without HTTPS", {"CREDWATCH_TLS_CLIENT_CA": certs.root[0]},
                  "CREDWATCH_TLS_CLIENT_CA", "without")
    start_refused(certs, tmp, "missing certificate file", {"CREDWATCH_TLS_CERT": certs.path("none.pem"),
                  "CREDWATCH_TLS_KEY": k}, "CREDWATCH_TLS_CERT", "No such file")
    start_refused(certs, tmp, "a directory as the key", {"CREDWATCH_TLS_CERT": c, "CREDWATCH_TLS_KEY": tmp},
                  "CREDWATCH_TLS_KEY", "cannot read")
    start_refused(certs, tmp, "certificate not PEM", {"CREDWATCH_TLS_CERT": certs.garbage, "CREDWATCH_TLS_KEY": k},
                  "CREDWATCH_TLS_CERT", "not a PEM certificate")
    start_refused(certs, tmp, "key of another certificate", {"CREDWATCH_TLS_CERT": c,
                  "CREDWATCH_TLS_KEY": certs.srv_rsa[1]}, "CREDWATCH_TLS_KEY", "does not match")
    start_refused(certs, tmp, "expired certificate", {"CREDWATCH_TLS_CERT": certs.expired[0],
                  "CREDWATCH_TLS_KEY": certs.expired[1]}, "CREDWATCH_TLS_CERT", "expired on")
    start_refused(certs, tmp, "encrypted key, no password", {"CREDWATCH_TLS_CERT": c,
                  "CREDWATCH_TLS_KEY": certs.enc_key}, "CREDWATCH_TLS_KEY", "CREDWATCH_TLS_KEY_PASSWORD")
    start_refused(certs, tmp, "encrypted key, wrong password", {"CREDWATCH_TLS_CERT": c,
                  "CREDWATCH_TLS_KEY": certs.enc_key, "CREDWATCH_TLS_KEY_PASSWORD": "wrong"},
                  "CREDWATCH_TLS_KEY", "CREDWATCH_TLS_KEY_PASSWORD")
    start_refused(certs, tmp, "client CA not PEM", {"CREDWATCH_TLS_CERT": c, "CREDWATCH_TLS_KEY": k,
                  "CREDWATCH_TLS_CLIENT_CA": certs.garbage}, "CREDWATCH_TLS_CLIENT_CA", "no PEM CA")


def api_over_https(certs, srv, ctx):
    """Ingest, read, auth and metrics as over plain HTTP."""
    key = "ASIAHTTPSTHEFT000001"
    st, body = request(srv.port, ctx, "POST", "/v1/ingest/cloudtrail", trail(theft_records(key, 0)), TOK_I)
    ok("https: ingest with the ingest token: 200, one finding",
       st == 200 and isinstance(body, dict) and body.get("findings_count") == 1, "%s %s" % (st, body))
    st, _ = request(srv.port, ctx, "POST", "/v1/ingest/cloudtrail", trail(theft_records(key, 10)))
    ok("https: ingest without a token: 401", st == 401, st)
    st, _ = request(srv.port, ctx, "GET", "/v1/findings", token=TOK_I)
    ok("https: read with the ingest token: 403", st == 403, st)
    st, body = request(srv.port, ctx, "GET", "/v1/keys/" + key, token=TOK_R)
    ok("https: the key read back with the read token", st == 200 and key in json.dumps(body), "%s %s" % (st, body))
    ok("https: /metrics counts the records", (metric(srv.port, ctx, "credwatch_records_ingested_total") or 0) >= 3)
    ok("https: the certificate not_after in /metrics",
       (metric(srv.port, ctx, "credwatch_tls_certificate_not_after_seconds") or 0) > time.time())
    ver, _, fp = handshake(srv.port, ctx)
    ok("https: the served leaf is the configured one, chain verified to the root (%s)" % ver,
       fp == fingerprint_of(certs.srv[0]))
    line = next((d for d in srv.log_json() if d.get("msg") == "certificate loaded"), {})
    ok("https: the start log names the certificate (subject, SHA-256, not_after, chain of 2)",
       line.get("sha256", "").replace(":", "").lower() == fp and line.get("subject") == "CN=srv" and
       line.get("chain") == 2 and line.get("not_after", "").endswith("Z"), line)


def versions(certs, srv):
    v11 = context(certs, version=ssl.TLSVersion.TLSv1_1, ciphers="DEFAULT:@SECLEVEL=0")
    e = refused(lambda: handshake(srv.port, v11))
    ok("TLS 1.1 refused", e is not None, "accepted")
    for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        try:
            ver, cipher, _ = handshake(srv.port, context(certs, version=v))
        except (ssl.SSLError, OSError) as e:
            ver, cipher = repr(e), ""
        ok("%s accepted with an AEAD suite (%s %s)" % (v.name, ver, cipher),
           ver == v.name.replace("v1_", "v1.") and ("GCM" in cipher or "CHACHA20" in cipher))
    cbc = context(certs, version=ssl.TLSVersion.TLSv1_2,
                  ciphers="ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256")
    ok("TLS 1.2 offering only CBC suites refused", refused(lambda: handshake(srv.port, cbc)) is not None)


def plain_http(srv, ctx):
    s = socket.create_connection((HOST, srv.port), timeout=IO_TIMEOUT_S)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        dt, data = closed_within(s, PLAIN_BOUND_S)
    finally:
        s.close()
    ok("plain HTTP on the HTTPS port: closed within %d s (%s s), no HTTP answer" % (
        PLAIN_BOUND_S, None if dt is None else round(dt, 2)), dt is not None and not data.startswith(b"HTTP/"), data[:80])
    st, _ = request(srv.port, ctx, "GET", "/healthz")
    ok("plain HTTP on the HTTPS port: HTTPS still served after", st == 200, st)


def half_hello(ctx):
    """The first half of a real ClientHello."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=HOST)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    return hello[:len(hello) // 2]


def stalled_handshakes(srv, ctx):
    before = metric(srv.port, ctx, 'credwatch_connections_cut_total{deadline="headers"}') or 0
    silent = socket.create_connection((HOST, srv.port), timeout=IO_TIMEOUT_S)
    half = socket.create_connection((HOST, srv.port), timeout=IO_TIMEOUT_S)
    half.sendall(half_hello(ctx))
    results = {}

    def watch(name, s):
        results[name] = closed_within(s, HEADER_TIMEOUT_S + CUT_SLACK_S)[0]

    ts = [threading.Thread(target=watch, args=(n, s)) for n, s in (("silent", silent), ("half", half))]
    for t in ts:
        t.start()
    served = []
    t0 = time.monotonic()
    while any(t.is_alive() for t in ts) and time.monotonic() - t0 < HEADER_TIMEOUT_S + CUT_SLACK_S:
        served.append(request(srv.port, ctx, "GET", "/healthz")[0])
    for t in ts:
        t.join()
    silent.close()
    half.close()
    for name in ("silent", "half"):
        dt = results.get(name)
        ok("stalled handshake (%s) cut within %d s (after %s s)" % (
            "nothing sent" if name == "silent" else "half a ClientHello", HEADER_TIMEOUT_S + CUT_SLACK_S,
            None if dt is None else round(dt, 2)), dt is not None)
    ok("stalled handshakes: other clients served meanwhile (%d requests)" % len(served),
       served and all(s == 200 for s in served), served[:10])
    after = metric(srv.port, ctx, 'credwatch_connections_cut_total{deadline="headers"}') or 0
    ok("stalled handshakes: counted as header-deadline cuts (%d -> %d)" % (before, after), after - before >= 2)


def build_probe(tmp):
    """The container's HEALTHCHECK probe (deploy/docker/healthcheck.c), built as the Dockerfile builds it."""
    out = os.path.join(tmp, "credwatch-healthcheck")
    p = subprocess.run(["cc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-Wall", "-Wextra", "-Werror", "-o", out,
                        os.path.join(ROOT, "deploy", "docker", "healthcheck.c"), "-lgnutls"], capture_output=True)
    ok("healthcheck probe builds with GnuTLS", p.returncode == 0, p.stderr.decode()[-300:])
    return out if p.returncode == 0 else None


def probe(binary, port, **env):
    """The probe's exit status against 127.0.0.1:port with only the given variables."""
    full = {"CREDWATCH_LISTEN": "0.0.0.0:%d" % port}
    full.update(env)
    return subprocess.run([binary, "/healthz"], env=full, capture_output=True, timeout=IO_TIMEOUT_S).returncode


def probes(binary, srv, cert):
    if not binary:
        return
    ok("HEALTHCHECK probe with CREDWATCH_TLS_CERT set: passes over HTTPS (exit 0)",
       probe(binary, srv.port, CREDWATCH_TLS_CERT=cert) == 0)
    ok("HEALTHCHECK probe without CREDWATCH_TLS_CERT on the HTTPS port: fails (exit 1)", probe(binary, srv.port) == 1)


def wait_log(srv, text, count):
    """True once `text` is in the log `count` times (bounded)."""
    deadline = time.monotonic() + LOG_WAIT_S
    while srv.log_text().count(text) < count:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


class Looper(threading.Thread):
    """Fresh HTTPS connections, one request each, until stopped: what SIGHUP must not disturb."""

    def __init__(self, port, ctx):
        super().__init__(daemon=True)
        self.port, self.ctx, self.stop, self.done, self.errors = port, ctx, threading.Event(), 0, []

    def run(self):
        while not self.stop.is_set():
            try:
                st, _ = request(self.port, self.ctx, "GET", "/healthz")
                if st != 200:
                    self.errors.append(st)
            except (ssl.SSLError, OSError, http.client.HTTPException) as e:
                self.errors.append(repr(e))
            self.done += 1


def in_flight_start(port, ctx, body):
    """A TLS connection with an ingest request's headers and half its body sent."""
    s = ctx.wrap_socket(socket.create_connection((HOST, port), timeout=IO_TIMEOUT_S), server_hostname=HOST)
    head = ("POST /v1/ingest/cloudtrail HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (HOST, TOK_I, len(body))).encode()
    s.sendall(head + body[:len(body) // 2])
    return s


def in_flight_finish(s, body):
    s.sendall(body[len(body) // 2:])
    r = http.client.HTTPResponse(s)
    r.begin()
    st = r.status
    r.read()
    s.close()
    return st


def reloads(certs, tmp, procs):
    live_c, live_k = os.path.join(tmp, "live.pem"), os.path.join(tmp, "live.key")
    replace_file(certs.srv[0], live_c)
    replace_file(certs.srv[1], live_k)
    srv = Server(tmp, procs, {"CREDWATCH_TLS_CERT": live_c, "CREDWATCH_TLS_KEY": live_k})
    ctx = context(certs, check_hostname=False)  # the other-host certificate is served in between
    old_fp, new_fp = fingerprint_of(certs.srv[0]), fingerprint_of(certs.srv_rsa[0])
    ok("reload: the first certificate served", handshake(srv.port, ctx)[2] == old_fp)
    keep = http.client.HTTPSConnection(HOST, srv.port, context=ctx, timeout=IO_TIMEOUT_S)
    keep.request("GET", "/healthz")
    keep.getresponse().read()
    body = trail(theft_records("ASIAHTTPSRELOAD00001", 0))
    flying = in_flight_start(srv.port, ctx, body)
    loops = [Looper(srv.port, ctx) for _ in range(LOOPERS)]
    for loop in loops:
        loop.start()
    replace_file(certs.srv_rsa[0], live_c)
    replace_file(certs.srv_rsa[1], live_k)
    srv.proc.send_signal(signal.SIGHUP)
    ok("reload: SIGHUP logs the new certificate", wait_log(srv, '"msg":"certificate reloaded"', 1))
    ok("reload: new connections see the new certificate (RSA now)", handshake(srv.port, ctx)[2] == new_fp)
    ok("reload: the request in flight across SIGHUP completes: 200", in_flight_finish(flying, body) == 200)
    keep.request("GET", "/healthz")
    ok("reload: a connection opened before SIGHUP still serves", keep.getresponse().status == 200)
    keep.close()
    for i, (c, k) in enumerate([certs.other_host, certs.srv, certs.srv_rsa, certs.srv] * 2, start=2):
        replace_file(c, live_c)
        replace_file(k, live_k)
        srv.proc.send_signal(signal.SIGHUP)
        wait_log(srv, '"msg":"certificate reloaded"', i)
    ok("reload: back to the first certificate after 8 more reloads", handshake(srv.port, ctx)[2] == old_fp)
    strict = context(certs)
    ok("reload: a client checking the host name verifies the reloaded certificate",
       request(srv.port, strict, "GET", "/healthz")[0] == 200)
    bad_reloads(certs, srv, ctx, live_c, live_k, old_fp)
    for loop in loops:
        loop.stop.set()
    for loop in loops:
        loop.join(IO_TIMEOUT_S)
    done, errors = sum(lp.done for lp in loops), [e for lp in loops for e in lp.errors]
    ok("reload: %d requests on fresh connections from %d clients through 11 SIGHUPs, none failed" % (done, LOOPERS),
       all(lp.done > 0 for lp in loops) and not errors, errors[:5])
    ok("reload: /metrics counts 9 reloads ok, 2 failed",
       metric(srv.port, ctx, 'credwatch_tls_reloads_total{result="ok"}') == 9 and
       metric(srv.port, ctx, 'credwatch_tls_reloads_total{result="failed"}') == 2)
    ok("reload: SIGTERM drains and exits 0 over HTTPS", srv.stop() == 0)


def bad_reloads(certs, srv, ctx, live_c, live_k, good_fp):
    """A garbage certificate, then a key of another certificate: the old pair stays, the log says why."""
    for n, (c, k, var, words) in enumerate([(certs.garbage, certs.srv[1], "CREDWATCH_TLS_CERT", "not a PEM"),
                                            (certs.srv[0], certs.srv_rsa[1], "CREDWATCH_TLS_KEY", "does not match")],
                                           start=1):
        replace_file(c, live_c)
        replace_file(k, live_k)
        srv.proc.send_signal(signal.SIGHUP)
        logged = wait_log(srv, '"msg":"certificate not reloaded: the previous one stays"', n)
        line = [ln for ln in srv.log_text().splitlines() if "certificate not reloaded" in ln][-1:] or [""]
        ok("bad reload (%s): logged, naming %s (%s)" % (words, var, words), logged and var in line[0] and
           words in line[0], line[0])
        ok("bad reload (%s): the old certificate still served" % words, handshake(srv.port, ctx)[2] == good_fp)
    replace_file(certs.srv[0], live_c)
    replace_file(certs.srv[1], live_k)


def mutual(certs, tmp, procs, hc):
    c, k = certs.srv
    live_ca = os.path.join(tmp, "live-client-ca.pem")
    replace_file(certs.root[0], live_ca)
    srv = Server(tmp, procs, {"CREDWATCH_TLS_CERT": c, "CREDWATCH_TLS_KEY": certs.enc_key,
                              "CREDWATCH_TLS_KEY_PASSWORD": "s3cret-pass", "CREDWATCH_TLS_CLIENT_CA": live_ca})
    ok("mTLS server started with an encrypted key and its password", srv.alive())
    good = context(certs, client=certs.client)
    for name, ctx in (("no client certificate", context(certs)),
                      ("a client certificate of another CA", context(certs, client=certs.client_other))):
        for v in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx.minimum_version = ctx.maximum_version = v
            t0 = time.monotonic()
            e = refused(lambda: request(srv.port, ctx, "GET", "/healthz"))
            ok("mTLS %s: %s refused (%s, %.2f s)" % (v.name, name, type(e).__name__, time.monotonic() - t0),
               e is not None, "answered or hung")
    ok("mTLS: a good client served right after the refusals",
       request(srv.port, good, "GET", "/healthz")[0] == 200)
    st, _ = request(srv.port, good, "GET", "/v1/findings", token=TOK_R)
    ok("mTLS: a client certificate of the CA and the read token: 200", st == 200, st)
    st, _ = request(srv.port, good, "GET", "/v1/findings")
    ok("mTLS: a client certificate of the CA without a token: 401 (the token decides the role)", st == 401, st)
    ok("mTLS: the refused other-CA certificates counted in /metrics",
       (metric(srv.port, good, "credwatch_tls_client_refused_total") or 0) >= 2)
    if hc:
        ok("mTLS: HEALTHCHECK probe without a client certificate refused (exit 1)",
           probe(hc, srv.port, CREDWATCH_TLS_CERT=c) == 1)
        ok("mTLS: HEALTHCHECK probe with CREDWATCH_HEALTHCHECK_CERT/_KEY of the CA passes (exit 0)",
           probe(hc, srv.port, CREDWATCH_TLS_CERT=c, CREDWATCH_HEALTHCHECK_CERT=certs.client[0],
                 CREDWATCH_HEALTHCHECK_KEY=certs.client[1]) == 0)
    # the client CA is reread on SIGHUP too: after it names the other CA, the roles of the two clients swap
    replace_file(certs.other_ca[0], live_ca)
    srv.proc.send_signal(signal.SIGHUP)
    ok("mTLS: SIGHUP with another client CA reloaded", wait_log(srv, '"msg":"certificate reloaded"', 1))
    other = context(certs, client=certs.client_other)
    ok("mTLS after the CA reload: the other CA's client served",
       request(srv.port, other, "GET", "/v1/findings", token=TOK_R)[0] == 200)
    ok("mTLS after the CA reload: the old CA's client refused",
       refused(lambda: request(srv.port, good, "GET", "/healthz")) is not None)
    srv.stop()


def main():
    tmp = tempfile.mkdtemp(prefix="cw-https-")
    procs = harness.Procs(os.environ.get("PIDFILE"))
    try:
        certs = Certs(tmp)
        bad_starts(certs, tmp)
        c, k = certs.srv
        srv = Server(tmp, procs, {"CREDWATCH_TLS_CERT": c, "CREDWATCH_TLS_KEY": k})
        ctx = context(certs)
        api_over_https(certs, srv, ctx)
        versions(certs, srv)
        plain_http(srv, ctx)
        stalled_handshakes(srv, ctx)
        hc = build_probe(tmp)
        probes(hc, srv, c)
        srv.stop()
        reloads(certs, tmp, procs)
        mutual(certs, tmp, procs, hc)
    except Exception as e:  # a crash of the driver is one failure, with its reason
        import traceback
        traceback.print_exc()
        R.nok("driver", repr(e))
    finally:
        procs.stop_all()
        if os.environ.get("KEEP_TMP") == "1":
            print("# kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if R.fails else 0


if __name__ == "__main__":
    sys.exit(main())
