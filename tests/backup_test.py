#!/usr/bin/python3
"""backup_test.py — a backup of the durable store taken while it ingests (driven by tests/it_backup.sh).

One `credwatch serve` on a fresh data directory; 3 senders post batches of new keys (each key's 3 records make one
finding) without pause. Once BEFORE_FINDINGS findings are acknowledged, `credwatch backup COPY` asks the server for the copy (CREDWATCH_URL,
GET /v1/backup) while the senders go on; they stop AFTER_S seconds after it returned. Then a second server opens the
copy (CREDWATCH_DATA_DIR=COPY) and lists every finding: each finding acknowledged before the backup started is in the
copy, and the copy holds nothing that was never acknowledged. Then one backup at a time: a client that does not read
its copy holds the slot (409 backup_in_progress for the next), and closing it frees the slot.

usage: backup_test.py BIN SAMPLE TMP [PIDFILE]. Prints `ok - ` / `not ok - ` lines; exits 1 on a failure.
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

BIN, SAMPLE, TMP = sys.argv[1], sys.argv[2], sys.argv[3]
PIDFILE = sys.argv[4] if len(sys.argv) > 4 else None
TOK_IN, TOK_RD = "backup-ingest-token-000001", "backup-read-token-0000001"
SENDERS = 3
KEYS_PER_REQUEST = 50          # 150 records: a round of the engine, one finding per key
# Ingest before the backup starts: this many findings (a copy of ~15 MB, past what socket buffers hold), or
# BEFORE_MAX_S on a slow machine (ASan); and AFTER_S more after the backup returned.
BEFORE_FINDINGS, BEFORE_MAX_S, AFTER_S = 3000, 30, 0.5
BACKUP_TIMEOUT_S = 120
# A copy above this cannot sit in the socket buffers (the server's send buffer grows to tcp_wmem's 4 MiB at most;
# the client's receive window is pinned small) while its client does not read: the slot stays taken.
HOLD_MIN_BYTES = 8 << 20
R = harness.Report(sep=" -- ")
procs = harness.Procs(PIDFILE)
template = open(SAMPLE, encoding="utf-8").read()
records = json.loads(template)["Records"]


def batch(first):
    """KEYS_PER_REQUEST new keys (ASIABKUP + 12 digits, the sample's 20 characters), the sample's records each."""
    recs = []
    for k in range(first, first + KEYS_PER_REQUEST):
        key = "ASIABKUP%012d" % k
        recs += json.loads(json.dumps(records).replace("ASIAEXAMPLEKEY000001", key))
    return json.dumps({"Records": recs}).encode()


class Senders:
    def __init__(self, port):
        self.port, self.stop, self.lock = port, threading.Event(), threading.Lock()
        self.acked = []            # (monotonic time the answer arrived, [finding ids])
        self.errors = []
        self.next_key = 0
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(SENDERS)]

    def take(self):
        with self.lock:
            k, self.next_key = self.next_key, self.next_key + KEYS_PER_REQUEST
            return k

    def run(self):
        c = harness.Client(self.port, timeout=30)
        while not self.stop.is_set():
            try:
                st, _, d = c.request("POST", "/v1/ingest/cloudtrail", batch(self.take()),
                                     {"Content-Type": "application/json", "Authorization": "Bearer " + TOK_IN})
            except OSError as e:
                self.errors.append(repr(e))
                continue
            if st == 200:
                with self.lock:
                    self.acked.append((time.monotonic(), d["findings"]))
            else:
                self.errors.append("%s %s" % (st, str(d)[:200]))
        c.close()

    def acked_before(self, t):
        with self.lock:
            return {f for at, fs in self.acked if at < t for f in fs}


def all_findings(port):
    c, out, cursor = harness.Client(port), set(), None
    while True:
        path = "/v1/findings?limit=500" + ("&cursor=" + cursor if cursor else "")
        st, _, d = c.request("GET", path, headers={"Authorization": "Bearer " + TOK_RD})
        if st != 200:
            raise RuntimeError("list: %s %s" % (st, str(d)[:200]))
        out |= {f["id"] for f in d["findings"]}
        cursor = d.get("next_cursor")
        if not cursor:
            return out


def serve(name, data_dir):
    return harness.Instance(BIN, os.path.join(TMP, name + ".log"),
                            {"CREDWATCH_DATA_DIR": data_dir, "CREDWATCH_INGEST_TOKENS": TOK_IN,
                             "CREDWATCH_READ_TOKENS": TOK_RD, "CREDWATCH_THREADS": "2",
                             "CREDWATCH_DRAIN_SECONDS": "5"}, name=name, procs=procs)


def one_at_a_time(port, size):
    """A slow reader holds the one backup slot; the next asks get 409 until it lets go."""
    if size < HOLD_MIN_BYTES:
        R.say("ok - one backup at a time # SKIP the copy (%d bytes) fits in the socket buffers" % size)
        return
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window from the start
    slow.settimeout(30)
    slow.connect((harness.HOST, port))
    slow.sendall(b"GET /v1/backup HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOK_RD.encode() + b"\r\n\r\n")
    head = slow.recv(4096)  # the headers, once the copy is made: the slot is still held while the body waits
    c = harness.Client(port)
    st, _, d = c.request("GET", "/v1/backup", headers={"Authorization": "Bearer " + TOK_RD})
    R.check(head.startswith(b"HTTP/1.1 200") and st == 409 and d["error"]["code"] == "backup_in_progress",
            "a second backup while one is sent: 409 backup_in_progress", "%r / %s %s" % (head[:40], st, str(d)[:200]))
    slow.close()
    st = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the server notices the closed socket at its next write
        st, _, _ = c.request("GET", "/v1/backup", headers={"Authorization": "Bearer " + TOK_RD})
        if st == 200:
            break
        time.sleep(0.2)
    R.check(st == 200, "the slot is free again once the slow client went away", "last status %s" % st)


def main():
    data, copy = os.path.join(TMP, "data"), os.path.join(TMP, "copy")
    a = serve("a", data)
    s = Senders(a.port)
    try:
        for t in s.threads:
            t.start()
        deadline = time.monotonic() + BEFORE_MAX_S
        while len(s.acked_before(float("inf"))) < BEFORE_FINDINGS and time.monotonic() < deadline and not s.errors:
            time.sleep(0.05)
        started = time.monotonic()
        env = dict(os.environ, CREDWATCH_URL="http://%s:%d" % (harness.HOST, a.port), CREDWATCH_READ_TOKEN=TOK_RD)
        env.pop("CREDWATCH_DATA_DIR", None)
        bk = subprocess.run([BIN, "backup", copy], env=env, capture_output=True, text=True, timeout=BACKUP_TIMEOUT_S)
        returned = time.monotonic()
        time.sleep(AFTER_S)
        s.stop.set()
        for t in s.threads:
            t.join(60)
        before, after = s.acked_before(started), s.acked_before(returned)
        everything = s.acked_before(float("inf"))
        R.check(not s.errors, "ingest went on during the backup without a failed request", "; ".join(s.errors[:3]))
        R.check(bk.returncode == 0 and os.path.getsize(os.path.join(copy, "data.mdb")) > 0,
                "credwatch backup (CREDWATCH_URL) while ingesting: exit 0, PATH/data.mdb written",
                "rc %s: %s" % (bk.returncode, bk.stderr.strip()))
        R.check(len(everything) > len(after) > len(before) > 0,
                "findings were acknowledged before, during and after the backup (%d, %d, %d)"
                % (len(before), len(after) - len(before), len(everything) - len(after)))
        b = serve("b", copy)
        in_copy = all_findings(b.port)
        b.stop()
        R.check(before <= in_copy, "the copy holds every finding acknowledged before the backup started (%d of %d)"
                % (len(before & in_copy), len(before)), "missing e.g. %s" % sorted(before - in_copy)[:3])
        R.check(in_copy <= everything, "the copy holds nothing that was never acknowledged (%d findings)"
                % len(in_copy), "e.g. %s" % sorted(in_copy - everything)[:3])
        R.check(all_findings(a.port) == everything, "the server still holds every acknowledged finding")
        one_at_a_time(a.port, os.path.getsize(os.path.join(copy, "data.mdb")))
    finally:
        s.stop.set()
        procs.stop_all()
    return 1 if R.fails else 0


if __name__ == "__main__":
    sys.exit(main())
