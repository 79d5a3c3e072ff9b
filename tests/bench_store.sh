#!/bin/sh
# bench_store.sh — `credwatch serve` on its three stores in the same run (issue 16): the in-memory
# store (CREDWATCH_STORE=memory), the embedded durable store (LMDB in a fresh CREDWATCH_DATA_DIR on
# a disk filesystem, not tmpfs: an fsync there would be free) and Redis (a redis-server of our own,
# --appendonly no, as bench_serve.sh runs it):
#   1. CloudTrail files of 1,000 records over 4 keep-alive connections -> records/s
#   2. single EventBridge events paced open loop at 2,000 requests/s (build/tests/bench_load):
#      p50 / p99 / p99.9 from each request's scheduled time; then the same events closed loop (wrk, 64
#      connections, STORE_EB_SECONDS): the most each store carries, which says why a p99 is missed
#   3. bytes on disk per tracked key of the durable store: MEM_KEYS Lambda keys (serve_gen.py
#      ingest, as bench_serve.sh section 4): the data file's allocated size (du) and its pages in use
#      (credwatch_store_used_bytes on /metrics; mdb_stat) over the keys; Redis MEMORY USAGE beside it
#   4. the durable store's syncs per request (strace -c, only when strace is installed) on a server
#      of its own, so the figures of 1 and 2 are not traced
# Each round starts the three servers afresh (empty stores: Redis FLUSHALL, a new data directory),
# and runs each measurement on the three stores in turn, the order rotated per round so that the
# machine's drift hits all equally; figures are medians of STORE_RUNS rounds. Ratios, not
# absolutes: the machine is shared and small. Every request carries new access keys and event ids
# (templates of tests/bench/, a per-request tag); the service's counters confirm no duplicates.
# Starts its own redis-server and credwatch servers on free loopback ports, stops them by pid.
# Exits non-zero when a request failed or a tool is missing; a missed target is reported, not fatal.
# Knobs: STORE_RUNS (3), STORE_SECONDS (5, per measurement), STORE_EB_SECONDS (3), STORE_MEM_KEYS (10000),
# STORE_DATA_PARENT (/var/tmp: where the data directories go), STORE_DURABLE_ENV (VAR=value words for the
# durable server of 1-2, e.g. CREDWATCH_MAX_INFLIGHT_INGEST=64).
. "$(dirname "$0")/lib.sh"
LOAD=$root/$BUILD/tests/bench_load
GEN=$here/bench/serve_gen.py
LUA=$here/bench/template.lua
RUNS=${STORE_RUNS:-3}
SECONDS_PER_RUN=${STORE_SECONDS:-5}
WARM_SECONDS=2
EB_SECONDS=${STORE_EB_SECONDS:-3}   # closed-loop single events: what each store carries at most
CT_CONNS=4
LAT_CONNS=64
LAT_RATE=2000
MEM_KEYS=${STORE_MEM_KEYS:-10000}
TRACE_SECONDS=3
TARGET_RATIO=0.50          # durable / memory batch ingest
TARGET_P99_MS=10           # durable single events at LAT_RATE
DATA_PARENT=${STORE_DATA_PARENT:-/var/tmp}
STORES="memory durable redis"
DURABLE_ENV=${STORE_DURABLE_ENV:-}   # more VAR=value words for the durable server (experiments)
TOKEN_IN=ingest-token-bench-0123456789
TOKEN_RD=read-token-bench-0123456789ab

make_tmp
status=0
DATA_ROOT=

for tool in wrk redis-server redis-cli curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "store: $tool is not installed (scripts/deps.sh bench)"; exit 1; }
done
[ -x "$BIN" ] || { echo "store: $BIN is missing (make)"; exit 1; }
if [ ! -x "$LOAD" ]; then
  LOAD=$TEST_TMP/bench_load
  cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror "$here/bench_load.c" -o "$LOAD" ||
    { echo "store: cannot build bench_load"; exit 1; }
fi

# ---- the servers: one per store, started per round, stopped by pid ----
pid_memory=; pid_durable=; pid_redis=; pid_trace=
stop_srv() { # NAME: SIGTERM, then wait (a drain with no request in flight is quick)
  eval "_p=\${pid_$1}"
  if [ -n "$_p" ]; then
    kill -TERM "$_p" 2>/dev/null && wait "$_p" 2>/dev/null
    eval "pid_$1="
  fi
}
on_exit() {
  for s in $STORES trace; do stop_srv "$s"; done
  [ -n "$DATA_ROOT" ] && rm -rf "$DATA_ROOT"
}
DATA_ROOT=$(mktemp -d "$DATA_PARENT/credwatch-bench-store.XXXXXX") ||
  { echo "store: cannot make a data directory in $DATA_PARENT"; exit 1; }
FSTYPE=$(findmnt -n -o FSTYPE -T "$DATA_ROOT" 2>/dev/null || stat -f -c %T "$DATA_ROOT")
FSDEV=$(findmnt -n -o SOURCE -T "$DATA_ROOT" 2>/dev/null || echo "?")
case $FSTYPE in
  tmpfs|ramfs) echo "store: WARNING: $DATA_ROOT is on $FSTYPE: fsync is free there, the durable figures mean" \
                    "nothing (set STORE_DATA_PARENT to a directory on a disk)" ;;
esac

RPORT=$(free_port)
redis_start "$RPORT" --appendonly no || { echo "store: redis-server did not start"; exit 1; }
redis_pid=$REDIS_PID
rcli() { redis-cli -p "$RPORT" "$@"; }

# start_srv NAME [VAR=value...]: `credwatch serve` on a free port, log TEST_TMP/NAME.log; sets pid_NAME,
# port_NAME and kind_NAME (the store its "listening" line names).
start_srv() {
  _n=$1; shift
  env CREDWATCH_LISTEN=127.0.0.1:0 CREDWATCH_INGEST_TOKENS=$TOKEN_IN CREDWATCH_READ_TOKENS=$TOKEN_RD "$@" \
    "${SRV_BIN:-$BIN}" serve 2>"$TEST_TMP/$_n.log" &
  _p=$!
  record_pid "$_p"
  eval "pid_$_n=$_p"
  _i=0
  while [ $_i -lt 100 ]; do
    _port=$(sed -n 's/.*"msg":"listening".*"port":\([0-9][0-9]*\).*/\1/p' "$TEST_TMP/$_n.log")
    if [ -n "$_port" ]; then
      eval "port_$_n=$_port"
      eval "kind_$_n=$(sed -n 's/.*"msg":"listening".*"store":"\([a-z-]*\)".*/\1/p' "$TEST_TMP/$_n.log")"
      return 0
    fi
    kill -0 "$_p" 2>/dev/null || break
    sleep 0.1
    _i=$((_i + 1))
  done
  echo "store: credwatch ($_n) did not start:"; cat "$TEST_TMP/$_n.log"
  return 1
}
start_round() { # ROUND: the three servers on empty stores
  rcli flushall >/dev/null
  start_srv memory CREDWATCH_STORE=memory &&
    start_srv durable CREDWATCH_STORE=durable CREDWATCH_DATA_DIR="$DATA_ROOT/r$1" $DURABLE_ENV &&
    start_srv redis CREDWATCH_REDIS_URL="redis://127.0.0.1:$RPORT"
}
port_of() { eval "echo \${port_$1}"; }
pid_of() { eval "echo \${pid_$1}"; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | sed -n "s/^$2 \([0-9.e+]*\)$/\1/p"; }

ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)
sticks() { awk '{print $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }   # system time only
cpu_mark() { c_srv0=$(ticks "$(pid_of "$1")"); c_sys0=$(sticks "$(pid_of "$1")"); c_rd0=$(ticks "$redis_pid"); }
cpu_note() { # STORE PHASE REQUESTS RECORDS_PER_REQUEST
  _rd=0
  [ "$1" = redis ] && _rd=$(( $(ticks "$redis_pid") - c_rd0 ))
  echo "$1 $2 $3 $4 $(( $(ticks "$(pid_of "$1")") - c_srv0 )) $_rd $(( $(sticks "$(pid_of "$1")") - c_sys0 ))" \
    >>"$TEST_TMP/cpu"
}

info=$($PY "$GEN" templates "$TEST_TMP/t") || { echo "store: template generation failed"; exit 1; }
set -- $info
CT_RECORDS=$1; CT_KEYS=$2; CT_BYTES=$3

# what an fdatasync costs on the data directory's filesystem (300 of them, one 4 KiB page each)
SYNC_MS=$($PY - "$DATA_ROOT/probe" <<'EOF'
import os, statistics, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o600)
ts = []
for i in range(300):
    os.pwrite(fd, b"x" * 4096, (i % 16) * 4096)
    t = time.perf_counter()
    os.fdatasync(fd)
    ts.append((time.perf_counter() - t) * 1e3)
os.close(fd)
os.unlink(sys.argv[1])
ts.sort()
print("p50 %.2f ms, p99 %.2f ms" % (statistics.median(ts), ts[int(0.99 * (len(ts) - 1))]))
EOF
)
echo "store: data directories in $DATA_PARENT ($FSTYPE on $FSDEV; one fdatasync of a 4 KiB page: $SYNC_MS);" \
  "$(nproc) CPUs shared with the load generators; CloudTrail body $CT_RECORDS records, $CT_KEYS keys," \
  "$CT_BYTES bytes; $RUNS rounds of ${SECONDS_PER_RUN} s per measurement, fresh servers per round," \
  "store order rotated per round"

run=0
: >"$TEST_TMP/cpu"; : >"$TEST_TMP/ct"; : >"$TEST_TMP/lat"; : >"$TEST_TMP/eb"; : >"$TEST_TMP/counts"
# wrk_run STORE SECONDS PHASE CONNS PATH CONTENT_TYPE TEMPLATE...: wrk with fresh tags per request; sets
# W_RPS (requests/s) and W_N (requests); a non-2xx answer or a socket error is a failure. PHASE names the
# CPU figures (warmup, cloudtrail, closed). Called in this shell, not in $(...): run and status outlive it.
wrk_run() {
  _s=$1; _d=$2; _ph=$3; _c=$4; _path=$5; _ct=$6; shift 6
  run=$((run + 1))
  cpu_mark "$_s"
  wrk -t2 -c"$_c" -d"${_d}s" -s "$LUA" "http://127.0.0.1:$(port_of "$_s")$_path" -- \
    "$((run % 16))" "$TOKEN_IN" "$_ct" "$@" >"$TEST_TMP/wrk.out" 2>&1
  if grep -qE 'Non-2xx|Socket errors' "$TEST_TMP/wrk.out"; then
    echo "store: $_s $_ph: failed requests: $(grep -E 'Non-2xx|Socket errors' "$TEST_TMP/wrk.out" | tr -s ' ')" >&2
    status=1
  fi
  W_N=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$TEST_TMP/wrk.out")
  W_RPS=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$TEST_TMP/wrk.out")
  cpu_note "$_s" "$_ph" "${W_N:-0}" "$( [ "$_path" = /v1/ingest/cloudtrail ] && echo "$CT_RECORDS" || echo 1)"
}
wrk_ct() { # STORE SECONDS [PHASE]: CloudTrail batches; CT_RATE records/s, CT_N requests
  wrk_run "$1" "$2" "${3:-cloudtrail}" "$CT_CONNS" /v1/ingest/cloudtrail application/json "$TEST_TMP/t/ct_batch.tmpl"
  CT_N=$W_N
  CT_RATE=$(awk -v r="${W_RPS:-0}" -v n="$CT_RECORDS" 'BEGIN {printf "%.0f", r * n}')
}
# lat_eb STORE SECONDS: paced single events; sets LAT_LINE (bench_load's line). Requests still unsent or
# unanswered when the schedule and its tail end are an overload (a missed target), not a failure; a non-2xx
# answer or a connection error is a failure.
lat_eb() {
  run=$((run + 1))
  cpu_mark "$1"
  LAT_LINE=$("$LOAD" 127.0.0.1 "$(port_of "$1")" /v1/ingest/eventbridge "$LAT_RATE" "$2" "$LAT_CONNS" -w 1 \
    -r "$run" -a "$TOKEN_IN" -t "application/json; charset=utf-8" "$TEST_TMP"/t/eb_*.tmpl)
  case $LAT_LINE in
    *"other 0, errors 0,"*) ;;
    *) echo "store: $1 paced single events: failed requests: $LAT_LINE" >&2; status=1 ;;
  esac
  cpu_note "$1" paced "$((LAT_RATE * $2))" 1
}
rotate() { # N WORDS...: the words rotated left N times
  _k=$1; shift
  while [ "$_k" -gt 0 ]; do _f=$1; shift; set -- "$@" "$_f"; _k=$((_k - 1)); done
  echo "$@"
}

# ---- 1 and 2, STORE_RUNS rounds ----
for r in $(seq "$RUNS"); do
  start_round "$r" || { status=1; break; }
  if [ "$r" = 1 ]; then
    echo "store: the servers say store=$kind_memory / $kind_durable / $kind_redis" \
      "($(grep -h '"store"' "$TEST_TMP/durable.log" | grep -v listening | head -1 | cut -c1-200))"
    [ "$kind_durable" = memory ] &&
      echo "store: WARNING: the durable server runs the memory store: this build has no CREDWATCH_STORE=durable"
  fi
  order=$(rotate $(( (r - 1) % 3 )) $STORES)
  for s in $order; do
    wrk_ct "$s" "$WARM_SECONDS" warmup
    wrk_ct "$s" "$SECONDS_PER_RUN"
    echo "$s $r $CT_RATE" >>"$TEST_TMP/ct"
  done
  for s in $order; do
    lat_eb "$s" "$SECONDS_PER_RUN"
    echo "$s $r $LAT_LINE" >>"$TEST_TMP/lat"
  done
  for s in $order; do   # last: a saturated server must not leave a backlog to the paced runs
    wrk_run "$s" "$EB_SECONDS" closed "$LAT_CONNS" /v1/ingest/eventbridge "application/json; charset=utf-8" \
      "$TEST_TMP"/t/eb_*.tmpl
    echo "$s $r ${W_RPS:-0}" >>"$TEST_TMP/eb"
  done
  for s in $STORES; do
    p=$(port_of "$s")
    echo "$s $(metric "$p" credwatch_records_ingested_total) $(metric "$p" credwatch_records_duplicate_total)" \
      "$(metric "$p" credwatch_store_errors_total)" >>"$TEST_TMP/counts"
    stop_srv "$s"
  done
  [ -d "$DATA_ROOT/r$r" ] && du -sB1 "$DATA_ROOT/r$r" | cut -f1 >>"$TEST_TMP/round_bytes"
  rm -rf "$DATA_ROOT/r$r"
done

$PY - "$TEST_TMP/ct" "$TEST_TMP/lat" "$TEST_TMP/eb" "$TEST_TMP/counts" "$TEST_TMP/cpu" "$HZ" "$TARGET_RATIO" \
  "$TARGET_P99_MS" "$LAT_RATE" "$CT_CONNS" "$LAT_CONNS" <<'EOF' || status=1
import collections, re, statistics, sys
ct_f, lat_f, eb_f, counts_f, cpu_f = sys.argv[1:6]
hz, ratio_t, p99_t, rate, ct_conns, lat_conns = (int(sys.argv[6]), float(sys.argv[7]), float(sys.argv[8]),
                                                 int(sys.argv[9]), int(sys.argv[10]), int(sys.argv[11]))
stores = ("memory", "durable", "redis")
med = statistics.median
def per_store(path):
    out = collections.defaultdict(list)
    for line in open(path):
        s, _, v = line.split()
        out[s].append(float(v))
    return out
ct, eb = per_store(ct_f), per_store(eb_f)
lat, late = collections.defaultdict(list), collections.Counter()
bad = 0
for line in open(lat_f):
    s = line.split()[0]
    m = re.search(r"p50 ([\d.]+) p90 ([\d.]+) p99 ([\d.]+) p99.9 ([\d.]+) max ([\d.]+)", line)
    u = re.search(r"unsent (\d+)", line)
    if m:
        lat[s].append([float(x) for x in m.groups()])
        late[s] += int(u.group(1)) if u else 0
    else:
        bad += 1
        print("store: %s latency run gave no figures: %s" % (s, line.strip()[:200]))
ing, dup, err = collections.Counter(), collections.Counter(), collections.Counter()
for line in open(counts_f):
    p = line.split()
    if len(p) == 4:
        ing[p[0]] += float(p[1]); dup[p[0]] += float(p[2]); err[p[0]] += float(p[3])
cpu = collections.defaultdict(list)
for line in open(cpu_f):
    s, phase, n, per, srv, rd, sys_ = line.split()
    if int(n):
        cpu[(s, phase)].append(((int(srv) + int(rd)) / hz / int(n) * 1e6, int(per), int(sys_) / max(int(srv), 1)))
each = lambda d, fmt: "; ".join("%s %s" % (s, " ".join(fmt % v for v in d[s])) for s in stores)
if all(ct[s] for s in stores):
    m = {s: med(ct[s]) for s in stores}
    print("store: cloudtrail 1000-record batches, %d keep-alive connections, records/s (medians of %d): memory %.0f, "
          "durable %.0f, redis %.0f (each run: %s)" % (ct_conns, len(ct["memory"]), m["memory"], m["durable"],
                                                       m["redis"], each(ct, "%.0f")))
    r = m["durable"] / m["memory"]
    c = {s: med(x[0] for x in cpu[(s, "cloudtrail")]) for s in stores if cpu.get((s, "cloudtrail"))}
    steady = (" (by CPU per record, which other load does not move: memory / durable %.2f, memory / redis %.2f)"
              % (c["memory"] / c["durable"], c["memory"] / c["redis"]) if len(c) == 3 else "")
    print("store: durable / memory batch ingest %.2f (redis / memory %.2f)%s; target >= %.2f: %s"
          % (r, m["redis"] / m["memory"], steady, ratio_t, "met" if r >= ratio_t else "NOT met"))
if all(lat[s] for s in stores):
    m = {s: [med(x[i] for x in lat[s]) for i in range(5)] for s in stores}
    for s in stores:
        print("store: %s single eventbridge events paced at %d req/s over %d connections: p50 %.2f, p99 %.2f, "
              "p99.9 %.2f ms (medians of %d; p99 each run: %s; max %.2f ms%s)"
              % (s, rate, lat_conns, m[s][0], m[s][2], m[s][3], len(lat[s]),
                 " ".join("%.2f" % x[2] for x in lat[s]), max(x[4] for x in lat[s]),
                 "; %d requests not even sent by the end: overloaded" % late[s] if late[s] else ""))
    ok = m["durable"][2] <= p99_t and not late["durable"]
    print("store: durable single-event p99 at %d req/s %.2f ms (memory %.2f, redis %.2f); target <= %.0f ms: %s"
          % (rate, m["durable"][2], m["memory"][2], m["redis"][2], p99_t, "met" if ok else "NOT met"))
if all(eb[s] for s in stores):
    m = {s: med(eb[s]) for s in stores}
    print("store: single eventbridge events closed loop, %d connections, req/s (medians of %d): memory %.0f, "
          "durable %.0f, redis %.0f (each run: %s); durable / memory %.2f"
          % (lat_conns, len(eb["memory"]), m["memory"], m["durable"], m["redis"], each(eb, "%.0f"),
             m["durable"] / m["memory"] if m["memory"] else 0))
parts = []
for s in stores:
    c, p, k = cpu.get((s, "cloudtrail")), cpu.get((s, "paced")), cpu.get((s, "closed"))
    if c and p and k:
        parts.append("%s %.2f us/record (%.0f%% sys), %.0f us/single event paced (%.0f%% sys), %.0f closed loop"
                     % (s, med(x[0] for x in c) / c[0][1], 100 * med(x[2] for x in c), med(x[0] for x in p),
                        100 * med(x[2] for x in p), med(x[0] for x in k)))
print("store: CPU per record of batches and per single event (credwatch, + redis-server for redis; medians; "
      "sys: the kernel's share of credwatch's own time): "
      + "; ".join(parts))
print("store: records applied / duplicates / store errors per store: " +
      "; ".join("%s %.0f / %.0f / %.0f" % (s, ing[s], dup[s], err[s]) for s in stores))
if bad or any(dup[s] or err[s] for s in stores):
    sys.exit(1)
EOF
[ -s "$TEST_TMP/round_bytes" ] &&
  echo "store: durable data directory after one round (batches + single events): median" \
    "$($PY "$GEN" median $(cat "$TEST_TMP/round_bytes") | cut -d. -f1) B allocated"

# ---- 3. bytes on disk per tracked key (durable), Redis memory of the same keys beside it ----
kdir=$DATA_ROOT/keys
mdb_used() { # DIR: bytes of LMDB pages in use (pages used - free pages), or "-" without mdb_stat
  command -v mdb_stat >/dev/null 2>&1 || { echo -; return; }
  mdb_stat -ef "$1" 2>/dev/null | awk '/Page size:/ {ps = $3} /Number of pages used:/ {u = $5}
    /Free pages:/ {f = $3} END {if (ps && u) print (u - f) * ps; else print "-"}'
}
disk_bytes() { du -B1 "$1/data.mdb" 2>/dev/null | cut -f1; }
gauges() { # PORT: the durable store's gauges as NAME=VALUE words (credwatch_store_used_bytes ...), or nothing
  curl -s "http://127.0.0.1:$1/metrics" |
    sed -n 's/^credwatch_store_\(file_bytes\|used_bytes\|keys\|findings\) \([0-9][0-9.e+]*\)$/\1=\2/p' | tr '\n' ' '
}
if start_srv durable CREDWATCH_STORE=durable CREDWATCH_DATA_DIR="$kdir"; then
  p=$port_durable
  g0=$(gauges "$p"); d0=$(disk_bytes "$kdir"); u0=$(mdb_used "$kdir")
  recs=$($PY "$GEN" ingest "$p" "$MEM_KEYS" "$TOKEN_IN") || { echo "store: durable key ingest failed"; status=1; }
  g1=$(gauges "$p"); d1=$(disk_bytes "$kdir"); u1=$(mdb_used "$kdir"); a1=$(stat -c %s "$kdir/data.mdb" 2>/dev/null)
  stop_srv durable
  rcli flushall >/dev/null
  rmem=""
  if start_srv redis CREDWATCH_REDIS_URL="redis://127.0.0.1:$RPORT" &&
    $PY "$GEN" ingest "$port_redis" "$MEM_KEYS" "$TOKEN_IN" >/dev/null; then
    rmem=$($PY "$GEN" memory "$RPORT" "$MEM_KEYS")
  else
    echo "store: redis key ingest failed"; status=1
  fi
  stop_srv redis
  $PY - "$MEM_KEYS" "${recs:-0}" "${d0:-0}" "${d1:-0}" "$u0" "$u1" "${a1:-0}" "${rmem%% *}" "$g0" "$g1" <<'EOF'
import sys
n, recs, d0, d1 = (int(x) for x in sys.argv[1:5])
u0, u1, apparent, rmed = sys.argv[5], sys.argv[6], int(sys.argv[7]), sys.argv[8]
g0 = dict(w.split("=") for w in sys.argv[9].split())
g1 = dict(w.split("=") for w in sys.argv[10].split())
parts = ["data.mdb %d B allocated (du; %d B empty, file size %d B): %.0f B per key" % (d1, d0, apparent, (d1 - d0) / n)]
if "used_bytes" in g1:
    used0 = float(g0.get("used_bytes", 0))
    parts.append("pages in use %.0f B (credwatch_store_used_bytes; %.0f B empty): %.0f B per key"
                 % (float(g1["used_bytes"]), used0, (float(g1["used_bytes"]) - used0) / n))
    parts.append("the store counts %s keys, %s findings" % (g1.get("keys", "?").split(".")[0],
                                                            g1.get("findings", "?").split(".")[0]))
if u0 != "-" and u1 != "-":
    parts.append("mdb_stat pages in use minus free pages %d B: %.0f B per key" % (int(u1), (int(u1) - int(u0)) / n))
print("store: durable bytes on disk per tracked key (%d Lambda keys, %d records: issuance + 5 marked uses, 10%% with "
      "an outside use; findings, dedup ids and indexes included): %s; redis MEMORY USAGE of the same keys: median "
      "%s B per key" % (n, recs, "; ".join(parts), rmed or "?"))
EOF
else
  status=1
fi

# ---- 4. syncs per request of the durable store (strace, when installed), a server of its own ----
if command -v strace >/dev/null 2>&1; then
  printf '#!/bin/sh\nexec strace -f --seccomp-bpf -qq -c -o "$STRACE_OUT" -e trace=fdatasync,fsync,msync,sync_file_range,pwrite64,pwritev "%s" "$@"\n' \
    "$BIN" >"$TEST_TMP/traced"
  chmod +x "$TEST_TMP/traced"
  : >"$TEST_TMP/trace_lines"
  for phase in paced cloudtrail; do
    SRV_BIN=$TEST_TMP/traced
    if start_srv trace STRACE_OUT="$TEST_TMP/strace.$phase" CREDWATCH_STORE=durable \
        CREDWATCH_DATA_DIR="$DATA_ROOT/trace-$phase" $DURABLE_ENV; then
      # the pid recorded is strace's; credwatch is its child: stop that one, strace then writes its summary
      child=$(cat "/proc/$pid_trace/task/$pid_trace/children" 2>/dev/null | cut -d' ' -f1)
      [ -n "$child" ] && record_pid "$child"
      pid_memo=$pid_trace
      [ -n "$child" ] && pid_trace=$child
      if [ $phase = paced ]; then
        lat_eb trace "$TRACE_SECONDS"
        n=$((LAT_RATE * TRACE_SECONDS))
      else
        wrk_ct trace "$TRACE_SECONDS"
        n=$CT_N
      fi
      kill -TERM "$pid_trace" 2>/dev/null
      wait "$pid_memo" 2>/dev/null
      pid_trace=
      # strace -c: "% time  seconds  usecs/call  calls  [errors]  syscall"; calls is the 4th column
      echo "$phase ${n:-0} $(awk '$NF ~ /sync/ {s += $4} $NF ~ /^pwrite/ {w += $4} END {print s + 0, w + 0}' \
        "$TEST_TMP/strace.$phase" 2>/dev/null)" >>"$TEST_TMP/trace_lines"
    fi
  done
  $PY - "$TEST_TMP/trace_lines" "$LAT_RATE" "$CT_RECORDS" <<'EOF'
import sys
rate, per = int(sys.argv[2]), int(sys.argv[3])
out = {}
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) == 4 and int(p[1]):
        out[p[0]] = (int(p[1]), int(p[2]), int(p[3]))
parts = []
if "paced" in out:
    n, s, w = out["paced"]
    parts.append("single events paced at %d req/s: %.2f syncs and %.1f writes per request (%d requests)"
                 % (rate, s / n, w / n, n))
if "cloudtrail" in out:
    n, s, w = out["cloudtrail"]
    parts.append("1000-record batches: %.2f syncs and %.1f writes per request (%d requests)" % (s / n, w / n, n))
if parts:
    print("store: durable store under strace -c, syncs = fdatasync/fsync/msync/sync_file_range calls (LMDB: one "
          "fdatasync per commit, its meta page then goes through an O_DSYNC pwrite counted in writes), writes = "
          "pwrite64/pwritev calls; tracing slows the server, so groups are if anything larger than untraced: "
          + "; ".join(parts))
EOF
else
  echo "store: strace is not installed: syncs per request not counted"
fi
echo "store: machine load average at the end (1/5/15 min): $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
exit $status
