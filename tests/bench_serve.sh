#!/bin/sh
# bench_serve.sh — `credwatch serve` on a real Redis of this machine, end to end over HTTP:
#   1. CloudTrail files of 1,000 records (~1.5 KB each) over keep-alive -> records/s
#   1a. the Python peer (tests/bench/py_webhook.py: http.server + redis-py, a flag with a TTL per record)
#      on the same Redis, the same bodies and client, its runs alternating with 1's -> records/s, ratio
#   1b. the same records through Amazon Data Firehose: requests of 500 CloudWatch Logs subscription
#      messages (2 log events each, gzip + base64 as Firehose delivers them) -> records/s, beside 1
#   2. single EventBridge events over 64 connections -> requests/s
#   3. p99 latency of single EventBridge events at a fixed 5,000 requests/s (paced, open loop:
#      build/tests/bench_load; Debian 12 has no wrk2), latency from each request's scheduled time
#   4. Redis memory per tracked Lambda key (MEMORY USAGE of cw:k2:{AKID}, state and dedup hashes)
# with /healthz measured the same way in the same run as the HTTP baseline. Every request of 1-3
# carries new access keys and event ids (templates with a per-request tag, tests/bench/), so
# nothing is a duplicate; the service's own counters confirm it. Figures are medians of RUNS
# (LAT_RUNS for latency); the machine is shared and small: compare ratios, not absolutes.
# Starts its own redis-server and credwatch on free loopback ports, stops them by pid. Another build's
# binary in the same run of this script: CREDWATCH_BIN=path (tests/lib.sh).
# Exits non-zero when a request failed or a tool is missing; a missed target is reported, not fatal.
. "$(dirname "$0")/lib.sh"
LOAD=$root/$BUILD/tests/bench_load
GEN=$here/bench/serve_gen.py
LUA=$here/bench/template.lua
RUNS=${SERVE_RUNS:-3}
LAT_RUNS=${SERVE_LAT_RUNS:-5}
SECONDS_PER_RUN=${SERVE_SECONDS:-8}
CT_CONNS=4                 # CloudTrail forwarders: a few connections, big bodies
EB_CONNS=64
LAT_RATE=5000
MEM_KEYS=10000
TARGET_CT=150000           # records/s
TARGET_PY_RATIO=30         # credwatch's records/s over the Python peer's, 1,000-record batches
TARGET_EB=10000            # requests/s
TARGET_P99_MS=10
TARGET_KEY_BYTES=512
SERVE_ONLY=${SERVE_ONLY:-}   # "batches": 1 and 1a, the CPU figures and 4 only (a quicker comparison of builds)
FH_REQUESTS=${SERVE_FH_REQUESTS:-120}   # Firehose requests per run, built before the clock starts
TOKEN_IN=ingest-token-bench-0123456789
TOKEN_RD=read-token-bench-0123456789ab

make_tmp
status=0

for tool in wrk redis-server redis-cli curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "serve: $tool is not installed (scripts/deps.sh bench)"; exit 1; }
done
[ -x "$BIN" ] || { echo "serve: $BIN is missing (make)"; exit 1; }
if [ ! -x "$LOAD" ]; then
  LOAD=$TEST_TMP/bench_load
  cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror "$here/bench_load.c" -o "$LOAD" ||
    { echo "serve: cannot build bench_load"; exit 1; }
fi

RPORT=$(free_port)
redis_start "$RPORT" --appendonly no || { echo "serve: redis-server did not start"; exit 1; }
redis_pid=$REDIS_PID
rcli() { redis-cli -p "$RPORT" "$@"; }

serve_start CREDWATCH_REDIS_URL=redis://127.0.0.1:$RPORT CREDWATCH_INGEST_TOKENS=$TOKEN_IN \
  CREDWATCH_READ_TOKENS=$TOKEN_RD || { echo "serve: credwatch did not start"; cat "$TEST_TMP/server.log"; exit 1; }
srv_pid=$SERVE_PID
PORT=$SERVE_PORT
THREADS=$(sed -n 's/.*"msg":"listening".*"threads":\([0-9]*\).*/\1/p' "$TEST_TMP/server.log")
URL=http://127.0.0.1:$PORT
info=$($PY "$GEN" templates "$TEST_TMP/t") || { echo "serve: template generation failed"; exit 1; }
set -- $info
CT_RECORDS=$1; CT_KEYS=$2; CT_BYTES=$3
echo "serve: credwatch ($THREADS HTTP threads) on Redis 127.0.0.1:$RPORT, $(nproc) CPUs shared with the load" \
  "generator; CloudTrail body $CT_RECORDS records, $CT_KEYS keys, $CT_BYTES bytes" \
  "($((CT_BYTES / CT_RECORDS)) B/record)"

# CPU time (user + system, clock ticks) of a process: CPU per request does not depend on what
# else runs on the machine, unlike rates and latencies.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)
cpu_pid=$srv_pid            # the server measured: credwatch, or the Python peer during its runs
cpu_mark() { c_srv0=$(ticks "$cpu_pid"); c_rd0=$(ticks "$redis_pid"); }
cpu_note() { # NAME REQUESTS RECORDS_PER_REQUEST
  echo "$1 $2 $3 $(( $(ticks "$cpu_pid") - c_srv0 )) $(( $(ticks "$redis_pid") - c_rd0 ))" >>"$TEST_TMP/cpu"
}
: >"$TEST_TMP/cpu"
: >"$TEST_TMP/cmdstats"
metric() { curl -s "$URL/metrics" | sed -n "s/^$1 \([0-9.e+]*\)$/\1/p"; }
median() { $PY "$GEN" median "$@"; }
run=0
wrk_url=$URL                # the server loaded: credwatch, or the Python peer during its runs
# wrk_run NAME CONNS PATH [LUA ARGS...]: one run after FLUSHALL; prints requests/s; checks non-2xx.
wrk_run() {
  _name=$1; _c=$2; _path=$3; shift 3
  rcli flushall >/dev/null
  rcli config resetstat >/dev/null
  run=$((run + 1))
  cpu_mark
  if [ $# -gt 0 ]; then
    wrk -t2 -c"$_c" -d"${SECONDS_PER_RUN}s" -s "$LUA" "$wrk_url$_path" -- "$((run % 16))" "$TOKEN_IN" "$@" \
      >"$TEST_TMP/wrk.out" 2>&1
  else
    wrk -t2 -c"$_c" -d"${SECONDS_PER_RUN}s" "$wrk_url$_path" >"$TEST_TMP/wrk.out" 2>&1
  fi
  if grep -qE 'Non-2xx|Socket errors' "$TEST_TMP/wrk.out"; then
    echo "serve: $_name: failed requests: $(grep -E 'Non-2xx|Socket errors' "$TEST_TMP/wrk.out" | tr -s ' ')" >&2
    status=1
  fi
  _n=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$TEST_TMP/wrk.out")
  cpu_note "$_name" "${_n:-0}" "$( [ "$_path" = /v1/ingest/cloudtrail ] && echo "$CT_RECORDS" || echo 1)"
  # what Redis did for it: commands (calls, usec) and bytes, per request (the summary below)
  { echo "run $_name ${_n:-0}"; rcli info commandstats; rcli info stats | grep -E '^total_net_(input|output)_bytes'; } |
    tr -d '\r' >>"$TEST_TMP/cmdstats"
  sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$TEST_TMP/wrk.out"
}

# The Python peer (1a) on the same Redis, its keys under its own prefix (pyhook:); every run flushes.
PY_PORT=$(free_port)
$PY "$here/bench/py_webhook.py" "$PY_PORT" "$RPORT" "$TOKEN_IN" >"$TEST_TMP/py.log" 2>&1 &
py_pid=$!
record_pid "$py_pid"
for _ in $(seq 100); do grep -q listening "$TEST_TMP/py.log" && break; sleep 0.1; done
grep -q listening "$TEST_TMP/py.log" ||
  { echo "serve: the Python peer did not start (python3-redis: scripts/deps.sh bench)"; cat "$TEST_TMP/py.log"; exit 1; }
# py_run: one run of the Python peer, as wrk_run (same bodies, connections, length); prints requests/s
py_run() {
  wrk_url=http://127.0.0.1:$PY_PORT; cpu_pid=$py_pid
  wrk_run python "$CT_CONNS" /v1/ingest/cloudtrail application/json "$TEST_TMP/t/ct_batch.tmpl"
  wrk_url=$URL; cpu_pid=$srv_pid
}

# ---- 1. CloudTrail 1,000-record batches (and 1a, the Python peer, between them) ----
hz=""; ct=""; pyr=""
ing0=$(metric credwatch_records_ingested_total); dup0=$(metric credwatch_records_duplicate_total)
wrk_run warmup "$CT_CONNS" /v1/ingest/cloudtrail application/json "$TEST_TMP/t/ct_batch.tmpl" >/dev/null
for r in $(seq "$RUNS"); do
  hz="$hz $(wrk_run healthz $EB_CONNS /healthz)"
  ct="$ct $(wrk_run cloudtrail $CT_CONNS /v1/ingest/cloudtrail application/json "$TEST_TMP/t/ct_batch.tmpl")"
  pyr="$pyr $(py_run)"
done
kill -TERM "$py_pid" 2>/dev/null && wait "$py_pid" 2>/dev/null
ing1=$(metric credwatch_records_ingested_total); dup1=$(metric credwatch_records_duplicate_total)
hz_med=$(median $hz)
ct_med=$(median $ct)
$PY - "$ct_med" "$hz_med" "$RUNS" "$CT_CONNS" "$TARGET_CT" "$ing0" "$ing1" "$dup0" "$dup1" $ct <<'EOF'
import sys
ct, hz, runs, conns, target = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ing, dup = float(sys.argv[7]) - float(sys.argv[6]), float(sys.argv[9]) - float(sys.argv[8])
each = " ".join("%.0f" % (float(v) * 1000) for v in sys.argv[10:])
print("serve: cloudtrail 1000-record batches %.0f records/s (median of %d: %s; %d keep-alive connections; "
      "healthz baseline %.0f req/s); %.0f records applied, %.0f duplicates; target %d: %s"
      % (ct * 1000, runs, each, conns, hz, ing, dup, target, "met" if ct * 1000 >= target else "NOT met"))
EOF

$PY - "$(median $ct)" "$(median $pyr)" "$RUNS" "$TARGET_PY_RATIO" $pyr <<'EOF'
import sys
ct, py, runs, target = float(sys.argv[1]) * 1000, float(sys.argv[2]) * 1000, int(sys.argv[3]), int(sys.argv[4])
ratio = ct / py if py else 0
print("serve: python webhook peer (tests/bench/py_webhook.py: ThreadingHTTPServer + redis-py, one SET EX per record), "
      "the same 1000-record bodies, client and Redis %.0f records/s (median of %d: %s); credwatch in the same run "
      "%.0f records/s: ratio %.1f; target %d: %s" % (py, runs, " ".join("%.0f" % (float(v) * 1000) for v in sys.argv[5:]),
                                                    ct, ratio, target, "met" if ratio >= target else "NOT met"))
EOF

if [ "$SERVE_ONLY" != batches ]; then
# ---- 1b. the same 1,000 records per request through Firehose: 500 CloudWatch Logs messages ----
# Python posts the requests (built first: gzip and base64 of 500 messages each), so the rate may be the
# client's; the CPU per request below is the server's own and compares the two paths fairly.
fh=""; fh_acc=0; fh_dup=0; fh_bytes=0
for r in $(seq "$RUNS"); do
  rcli flushall >/dev/null
  run=$((run + 1))
  cpu_mark
  out=$($PY "$GEN" firehose "$PORT" "$TOKEN_IN" "$TEST_TMP/t/ct_batch.tmpl" "$FH_REQUESTS" "$CT_CONNS" "$run") ||
    { echo "serve: firehose run failed" >&2; status=1; continue; }
  cpu_note firehose "$FH_REQUESTS" "$CT_RECORDS"
  set -- $out
  fh="$fh $1"; fh_acc=$((fh_acc + $2)); fh_dup=$((fh_dup + $3)); fh_bytes=$5
  [ "$4" -eq 0 ] || { echo "serve: firehose: $4 requests failed or had rejected records" >&2; status=1; }
done
if [ -n "$fh" ]; then
  $PY - "$(median $fh)" "$ct_med" "$RUNS" "$CT_CONNS" "$fh_acc" "$fh_dup" "$fh_bytes" $fh <<'EOF'
import sys
fh, ct, runs, conns = float(sys.argv[1]), float(sys.argv[2]) * 1000, int(sys.argv[3]), int(sys.argv[4])
acc, dup, size = int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
print("serve: firehose requests of 500 CloudWatch Logs messages (1000 records, %d KB body) %.0f records/s "
      "(median of %d: %s; %d keep-alive connections; %d records applied, %d duplicates); cloudtrail files in "
      "the same run %.0f records/s, ratio %.2f" % (size // 1024, fh, runs, " ".join(sys.argv[8:]), conns, acc, dup,
                                                 ct, fh / ct if ct else 0))
EOF
fi

# ---- 2. single EventBridge events, 64 connections ----
eb=""
for r in $(seq "$RUNS"); do
  eb="$eb $(wrk_run eventbridge $EB_CONNS /v1/ingest/eventbridge "application/json; charset=utf-8" "$TEST_TMP"/t/eb_*.tmpl)"
done
eb_med=$(median $eb)
$PY - "$eb_med" "$hz_med" "$RUNS" "$TARGET_EB" $eb <<'EOF'
import sys
eb, hz, runs, target = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
print("serve: eventbridge single events, 64 connections %.0f req/s (median of %d: %s; healthz baseline %.0f req/s, "
      "ratio %.2f); target %d: %s" % (eb, runs, " ".join("%.0f" % float(v) for v in sys.argv[5:]), hz, eb / hz,
                                      target, "met" if eb >= target else "NOT met"))
EOF

# ---- 3. p99 at a fixed 5,000 requests/s ----
lat_run() { # PATH [bench_load args]: one paced run after FLUSHALL; prints its line
  _path=$1; shift
  rcli flushall >/dev/null
  run=$((run + 1))
  cpu_mark
  "$LOAD" 127.0.0.1 "$PORT" "$_path" "$LAT_RATE" "$SECONDS_PER_RUN" "$EB_CONNS" -w 2 -r "$run" "$@" || status=1
  cpu_note "paced$_path" "$((LAT_RATE * SECONDS_PER_RUN))" 1
}
: >"$TEST_TMP/lat_eb"; : >"$TEST_TMP/lat_hz"
for r in $(seq "$LAT_RUNS"); do
  lat_run /healthz >>"$TEST_TMP/lat_hz"
  lat_run /v1/ingest/eventbridge -a "$TOKEN_IN" -t "application/json; charset=utf-8" "$TEST_TMP"/t/eb_*.tmpl >>"$TEST_TMP/lat_eb"
done
$PY - "$TEST_TMP/lat_eb" "$TEST_TMP/lat_hz" "$LAT_RATE" "$TARGET_P99_MS" <<'EOF'
import re, statistics, sys
def runs(path):
    out = []
    for line in open(path):
        m = re.search(r"p50 ([\d.]+) p90 ([\d.]+) p99 ([\d.]+) p99.9 ([\d.]+) max ([\d.]+)", line)
        if m:
            out.append([float(x) for x in m.groups()])
    return out
eb, hz = runs(sys.argv[1]), runs(sys.argv[2])
rate, target = int(sys.argv[3]), float(sys.argv[4])
if not eb or not hz:
    print("serve: latency runs produced no figures"); sys.exit(0)
med = lambda rs, i: statistics.median(r[i] for r in rs)
p99 = med(eb, 2)
print("serve: eventbridge p99 latency at %d req/s %.2f ms (median of %d: %s; p50 %.2f, p99.9 %.2f ms; "
      "healthz baseline p99 %.2f ms, p50 %.2f ms); target %.0f ms: %s"
      % (rate, p99, len(eb), " ".join("%.2f" % r[2] for r in eb), med(eb, 0), med(eb, 3), med(hz, 2), med(hz, 0),
         target, "met" if p99 <= target else "NOT met"))
EOF


fi  # SERVE_ONLY
# ---- where the time goes: CPU per request of the server and of Redis ----
$PY - "$TEST_TMP/cpu" "$HZ" "$(nproc)" <<'EOF'
import collections, statistics, sys
hz, cpus = int(sys.argv[2]), int(sys.argv[3])
by = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, n, per, srv, rd = line.split()
    n, per, srv, rd = int(n), int(per), int(srv), int(rd)
    if n:
        by[name].append((srv / hz / n * 1e6, rd / hz / n * 1e6, per))
med = lambda name, i: statistics.median(x[i] for x in by[name])
parts = []
for name in ("healthz", "cloudtrail", "python", "firehose", "eventbridge", "paced/healthz", "paced/v1/ingest/eventbridge"):
    if by.get(name):
        s_, r_, per = med(name, 0), med(name, 1), by[name][0][2]
        extra = " (%.2f + %.2f us/record)" % (s_ / per, r_ / per) if per > 1 else ""
        parts.append("%s %.1f + %.1f us%s" % (name, s_, r_, extra))
print("serve: CPU per request, credwatch (python: the Python peer's) + redis-server (medians; does not depend on other load): "
      + "; ".join(parts))
if by.get("eventbridge") and by.get("cloudtrail"):
    e, c = med("eventbridge", 0) + med("eventbridge", 1), med("cloudtrail", 0) + med("cloudtrail", 1)
    print("serve: at these costs %d otherwise idle CPUs carry ~%.0f single events/s or ~%.0f records/s in 1000-record "
          "batches (credwatch + redis only, no load generator)" % (cpus, cpus / (e / 1e6), cpus / (c / 1e6) * 1000))
EOF
# ---- what Redis ran per 1,000-record request (CONFIG RESETSTAT before each run; medians over runs) ----
$PY - "$TEST_TMP/cmdstats" <<'EOF'
import re, statistics, sys
runs, cur = [], None
for line in open(sys.argv[1]):
    if line.startswith("run "):
        _, name, n = line.split()
        cur = None
        if name == "cloudtrail" and int(n):
            cur = {"n": int(n), "cmd": {}, "in": 0, "out": 0}
            runs.append(cur)
    elif cur is not None:
        m = re.match(r"cmdstat_([^:]+):calls=(\d+),usec=(\d+)", line)
        if m:
            cur["cmd"][m.group(1)] = (int(m.group(2)), int(m.group(3)))
        m = re.match(r"total_net_(input|output)_bytes:(\d+)", line)
        if m:
            cur["in" if m.group(1) == "input" else "out"] = int(m.group(2))
if runs:
    med = lambda f: statistics.median(f(r) for r in runs)
    names = sorted({c for r in runs for c in r["cmd"]}, key=lambda c: -med(lambda r: r["cmd"].get(c, (0, 0))[1]))
    parts = ["%s %.1f calls %.0f us" % (c, med(lambda r: r["cmd"].get(c, (0, 0))[0] / r["n"]),
                                        med(lambda r: r["cmd"].get(c, (0, 0))[1] / r["n"])) for c in names]
    print("serve: redis commands per cloudtrail request (calls, usec inside commands; medians of %d runs): %s; "
          "all %.1f calls %.0f us; bytes in %.0f, out %.0f" % (
              len(runs), "; ".join(parts), med(lambda r: sum(v[0] for v in r["cmd"].values()) / r["n"]),
              med(lambda r: sum(v[1] for v in r["cmd"].values()) / r["n"]),
              med(lambda r: r["in"] / r["n"]), med(lambda r: r["out"] / r["n"])))
EOF
echo "serve: machine load average at the end (1/5/15 min): $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"

# ---- 4. Redis memory per tracked key ----
rcli flushall >/dev/null
before=$($PY "$GEN" info "$RPORT")
recs=$($PY "$GEN" ingest "$PORT" "$MEM_KEYS" "$TOKEN_IN") || { echo "serve: memory ingest failed"; exit 1; }
after=$($PY "$GEN" info "$RPORT")
mem=$($PY "$GEN" memory "$RPORT" "$MEM_KEYS")
set -- $mem
echo "serve: redis memory per tracked key ($MEM_KEYS Lambda keys, $recs records: issuance + 5 marked uses," \
  "10% with an outside use): median $1 B, p95 $2 B, mean $3 B (MEMORY USAGE of cw:k2, or cw:k + cw:s before issue 17;" \
  "state median $5 B, separate dedup set median $6 B; keys with an outside use median $7 B, others median $8 B / p95 $9 B);" \
  "used_memory delta / N $(( (after - before) / MEM_KEYS )) B (includes findings and index);" \
  "target $TARGET_KEY_BYTES B: median $([ "$1" -le $TARGET_KEY_BYTES ] && echo met || echo NOT met)," \
  "p95 $([ "$2" -le $TARGET_KEY_BYTES ] && echo met || echo NOT met)"
[ "$4" -eq 0 ] || { echo "serve: $4 keys have no state in Redis"; status=1; }

kill -TERM "$srv_pid" 2>/dev/null && wait "$srv_pid" 2>/dev/null
srv_pid=
exit $status
