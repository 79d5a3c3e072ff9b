"""harness.py — what the Python integration drivers share (stdlib only, loopback only):

  Report    the `ok - name` / `not ok - name` lines and the count of failures
  Procs     the processes a driver started, so that it stops those and only those, by pid
  free_port a free loopback port
  Redis     a redis-server of the driver's own: started in a directory of its own, waited for, stopped by pid
            (with CW_REDIS_TLS_DIR, a directory of tests/redis_tls_certs.sh, on a TLS port only: the drivers
            then reach it with redis_url()'s rediss:// and, through the environment, CREDWATCH_REDIS_CA_FILE)
  Instance  a `credwatch serve` of the driver's own: started with an environment, waited for, its log read,
            stopped by pid

Imported by multi_test.py, cluster_test.py, soak.py, hostile_test.py, forwarder_test.py, cases_e2e.py (which
live beside it, so their own directory is on sys.path) and by it_memory.sh.
"""
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time

HOST = "127.0.0.1"


# ---- the ok / not ok lines -------------------------------------------------------------------------

class Report:
    """Prints one line per check, whole lines even from several threads, and counts the failures.
    A failing check's reason follows its name after `sep` (the drivers differ: ": ", " # ", " -- ")."""

    def __init__(self, sep=": "):
        self.sep = sep
        self.fails = 0
        self._lock = threading.RLock()

    def say(self, line):
        with self._lock:
            print(line, flush=True)

    def check(self, cond, name, why=""):
        with self._lock:
            if cond:
                self.say("ok - " + name)
            else:
                self.fails += 1
                self.say("not ok - %s%s" % (name, (self.sep + why) if why else ""))
        return cond

    def ok(self, name):
        self.check(True, name)

    def nok(self, name, why=""):
        self.check(False, name, why)


def checks(results, logs):
    """A decorator reporter for drivers that run checks in-process (forwarder_test, securityhub_test):
    @check("name") runs the function at once, prints `ok - name` (`# SKIP why` when it returns a
    string) or `not ok - name` with the failure and the last 10 lines of `logs`, and appends the
    outcome to `results`. `logs` is emptied before each check."""
    def check(name):
        def run(fn):
            del logs[:]
            try:
                skip = fn()
            except Exception as err:  # an assertion or a crash: either fails this check
                results.append(False)
                print("not ok - %s" % name)
                if isinstance(err, AssertionError):
                    print("#   %s" % (str(err) or "assertion failed"))
                else:
                    print("#   %s: %s" % (type(err).__name__, err))
                print("\n".join("#   log: " + line for line in logs[-10:]))
                return fn
            results.append(True)
            print("ok - %s%s" % (name, " # SKIP " + skip if isinstance(skip, str) else ""))
            return fn
        return run
    return check


# ---- processes ---------------------------------------------------------------------------------

def stop(p, sig=signal.SIGTERM, timeout=10):
    """Signals one process we started (a subprocess.Popen), waits for it, SIGKILL if it outlives
    `timeout`; returns its exit status."""
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    return p.returncode


class Procs:
    """Every process a driver started, newest last. With a pidfile, each pid is also appended there,
    so that the calling shell's exit trap can stop them if the driver itself dies."""

    def __init__(self, pidfile=None):
        self.pidfile = pidfile
        self.all = []

    def add(self, p):
        self.all.append(p)
        if self.pidfile:
            with open(self.pidfile, "a") as f:
                f.write("%d\n" % p.pid)
        return p

    def stop_all(self, sig=signal.SIGTERM, timeout=5, sig_for=None):
        """Newest first; sig_for(p), when given, picks each one's signal. Never raises."""
        for p in reversed(self.all):
            try:
                stop(p, sig_for(p) if sig_for else sig, timeout)
            except Exception:  # noqa: BLE001 — clean-up goes on with the next one
                pass


# A kept-alive connection the server had closed while idle: the only failures worth one more try by
# default (a request may have been applied before any other failure; the caller decides).
RECONNECT_ERRORS = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Client:
    """One keep-alive HTTP connection to one loopback port, reopened when the server closed it or after
    an error. `retry`: the exceptions after which the request is sent once more on a fresh connection
    (default RECONNECT_ERRORS; a driver whose requests are idempotent may pass (HTTPException, OSError))."""

    def __init__(self, port, timeout=20, retry=RECONNECT_ERRORS):
        self.port, self.timeout, self.retry, self.c = port, timeout, retry, None

    def request(self, method, path, body=None, headers=None):
        """(status, lower-case headers, parsed JSON body or raw bytes); raises OSError/HTTPException."""
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
            try:
                self.c.request(method, path, body=body, headers=dict(headers or {}))
                r = self.c.getresponse()
                raw = r.read()
            except self.retry:
                self.close()
                if attempt:
                    raise
                continue
            except Exception:
                self.close()
                raise
            hd = {k.lower(): v for k, v in r.getheaders()}
            if r.will_close:
                self.close()
            try:
                return r.status, hd, json.loads(raw)
            except ValueError:
                return r.status, hd, raw
        raise AssertionError("unreachable")

    def close(self):
        if self.c:
            self.c.close()
            self.c = None


def free_port():
    """A loopback port nobody listens on now (for a process that needs its port chosen in advance)."""
    s = socket.socket()
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def log_tail(path, n=2000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError as e:
        return repr(e)


# ---- Redis -------------------------------------------------------------------------------------

AOF_ALWAYS = ("--appendonly", "yes", "--appendfsync", "always")   # every reply follows the fsync
TLS_DIR = os.environ.get("CW_REDIS_TLS_DIR") or None               # Redis over TLS (tests/it_redis_tls.sh)


def redis_url(port):
    return "%s://%s:%d" % ("rediss" if TLS_DIR else "redis", HOST, port)


def redis_port_args(port, args=()):
    """redis-server's port arguments: `port` plain, or with CW_REDIS_TLS_DIR its TLS port (the plain one
    off), the test CA's server certificate, and for a cluster node its bus and replication over TLS too."""
    if not TLS_DIR:
        return ["--port", str(port)]
    out = ["--port", "0", "--tls-port", str(port), "--tls-cert-file", os.path.join(TLS_DIR, "server.crt"),
           "--tls-key-file", os.path.join(TLS_DIR, "server.key"), "--tls-ca-cert-file",
           os.path.join(TLS_DIR, "ca.crt"), "--tls-auth-clients", "no"]
    if "--cluster-enabled" in args:
        out += ["--tls-cluster", "yes", "--tls-replication", "yes"]
    return out


def redis_cli_args():
    """What redis-cli needs to reach the drivers' Redis ([] without TLS)."""
    return ["--tls", "--cacert", os.path.join(TLS_DIR, "ca.crt")] if TLS_DIR else []


def _redis_socket(port, timeout):
    s = socket.create_connection((HOST, port), timeout=timeout)
    if not TLS_DIR:
        return s
    ctx = ssl.create_default_context(cafile=os.path.join(TLS_DIR, "ca.crt"))
    try:
        return ctx.wrap_socket(s, server_hostname=HOST)
    except (OSError, ssl.SSLError):
        s.close()
        raise


def redis_cmd(port, *args, timeout=1.0):
    """One RESP command on a fresh connection; returns the first reply line (bytes) or None."""
    msg = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in (x.encode() for x in args))
    try:
        with _redis_socket(port, timeout) as s:
            s.sendall(msg)
            return s.recv(4096).split(b"\r\n")[0]
    except OSError:
        return None


def redis_ping(port, timeout=0.5):
    return redis_cmd(port, "PING", timeout=timeout) == b"+PONG"


class Redis:
    """A redis-server on 127.0.0.1:port (a free one unless given), its files in `dir`, its output
    appended to `log`. `args` follow the common ones (no RDB snapshots, protected mode); the default
    keeps no append-only file either. start() returns once it answers PING."""

    def __init__(self, dir, port=None, args=("--appendonly", "no"), log=None, procs=None, start_timeout=10,
                 poll=0.05):
        self.dir, self.port, self.args, self.procs = dir, port or free_port(), list(args), procs
        self.log = log or os.path.join(dir, "redis-%d.log" % self.port)
        self.start_timeout, self.poll = start_timeout, poll
        self.proc = None

    def start(self):
        argv = ["redis-server"] + redis_port_args(self.port, self.args) + ["--bind", HOST, "--save", "",
                                                                          "--protected-mode", "yes", "--dir",
                                                                          self.dir] + self.args
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if self.procs is not None:
            self.procs.add(self.proc)
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited with %s" % self.proc.returncode)
            if redis_ping(self.port):
                return self
            time.sleep(self.poll)
        stop(self.proc, signal.SIGKILL, 5)
        raise RuntimeError("redis-server did not answer PING within %ds" % self.start_timeout)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """SIGTERM by default (Redis fsyncs and exits); returns the exit status."""
        return stop(self.proc, sig, timeout)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(5)


# ---- credwatch serve ---------------------------------------------------------------------------

# Variables that choose a store: when none is set, Instance starts the memory store (a fresh, empty store per
# start, as the drivers expect), not the product's default, the durable store in a data directory.
STORE_CHOICES = ("CREDWATCH_STORE", "CREDWATCH_DATA_DIR", "CREDWATCH_REDIS_URL", "CREDWATCH_REDIS_CLUSTER")


class Instance:
    """`credwatch serve` on 127.0.0.1, port 0: the kernel picks the port and the server logs it (the
    "listening" line), so nothing can take it between choosing and binding. Its environment is
    base_env (default: ours) with CREDWATCH_LISTEN and then `env` over it (a None value removes the
    variable), and CREDWATCH_STORE=memory when none of STORE_CHOICES is set; its stdout and stderr go to
    the file `log`. Raises if it does not start within
    start_timeout (and stops it)."""

    def __init__(self, binary, log, env=None, name=None, procs=None, start_timeout=10, base_env=None):
        self.name = name or os.path.basename(log)
        self.log = log
        full = dict(os.environ if base_env is None else base_env)
        full["CREDWATCH_LISTEN"] = "%s:0" % HOST
        for k, v in (env or {}).items():
            if v is None:
                full.pop(k, None)
            else:
                full[k] = v
        if not any(full.get(k) for k in STORE_CHOICES):
            full["CREDWATCH_STORE"] = "memory"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([binary, "serve"], env=full, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        if procs is not None:
            procs.add(self.proc)
        self.port = None
        deadline = time.time() + start_timeout
        while self.port is None and time.time() < deadline and self.proc.poll() is None:
            self.port = next((d["port"] for d in self.log_json() if d.get("msg") == "listening"), None)
            if self.port is None:
                time.sleep(0.05)
        if self.port is None:
            self.kill()
            raise RuntimeError("%s did not start: %s" % (self.name, log_tail(log)))

    def log_text(self):
        with open(self.log, encoding="utf-8", errors="replace") as f:
            return f.read()

    def log_json(self):
        """The log's JSON lines, parsed (a line that is not JSON is passed over)."""
        out = []
        for line in self.log_text().splitlines():
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if isinstance(d, dict):
                out.append(d)
        return out

    def wait_log(self, text, timeout):
        """True once `text` is in the log, False after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while text not in self.log_text():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def alive(self):
        return self.proc.poll() is None

    def rss_kb(self, field="VmRSS"):
        """A memory figure of /proc/PID/status in kB, None once the process is gone."""
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith(field + ":"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """SIGTERM by default (the service drains); SIGKILL past `timeout`. Returns the exit status."""
        return stop(self.proc, sig, timeout)

    def kill(self):
        return stop(self.proc, signal.SIGKILL, 5)
