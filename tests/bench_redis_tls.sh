#!/bin/sh
# bench_redis_tls.sh — the cost of TLS to Redis, end to end over HTTP, in one run: two redis-servers of
# this machine alike but for the transport (one plain, one on a TLS port only, certificates of a test CA
# made by tests/redis_tls_certs.sh), a `credwatch serve` on each (redis:// and rediss://), and in turn on
# each, after FLUSHALL:
#   1. CloudTrail files of 1,000 records over 4 keep-alive connections -> records/s
#   2. single EventBridge events over 64 connections -> requests/s
# plus the CPU per request of credwatch and of redis-server (TLS costs both sides; independent of other
# load, unlike the rates). Runs alternate plain / TLS so that drifting machine load hits both alike;
# figures are medians of RUNS. Every request carries new keys (tests/bench/ templates), and the runs must
# have no failed request. About 2 minutes. Starts its own processes on loopback, stops them by pid.
# PLAIN_BIN=path runs the plain instance from another build (e.g. one before credwatch had its own
# connection, on hiredis's): the "plain" figures are then that build's, the TLS ones this one's.
. "$(dirname "$0")/lib.sh"
GEN=$here/bench/serve_gen.py
LUA=$here/bench/template.lua
RUNS=${TLS_RUNS:-3}
SECONDS_PER_RUN=${TLS_SECONDS:-6}
CT_CONNS=4
EB_CONNS=64
TOKEN_IN=ingest-token-bench-0123456789

make_tmp
status=0
for tool in wrk redis-server redis-cli openssl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "redis-tls: $tool is not installed (scripts/deps.sh bench)"; exit 1; }
done
[ -x "$BIN" ] || { echo "redis-tls: $BIN is missing (make)"; exit 1; }
C=$TEST_TMP/certs
sh "$here/redis_tls_certs.sh" "$C" >/dev/null 2>&1 || { echo "redis-tls: cannot make test certificates"; exit 1; }

P_PLAIN=$(free_port)
redis_start "$P_PLAIN" --appendonly no || { echo "redis-tls: redis-server did not start"; exit 1; }
pid_rd_plain=$REDIS_PID
P_TLS=$(free_port)
redis-server --port 0 --tls-port "$P_TLS" --tls-cert-file "$C/server.crt" --tls-key-file "$C/server.key" \
  --tls-ca-cert-file "$C/ca.crt" --tls-auth-clients no --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$TEST_TMP" >>"$TEST_TMP/redis-tls.log" 2>&1 &
pid_rd_tls=$!
record_pid "$pid_rd_tls"
RCLI_TLS="redis-cli --tls --cacert $C/ca.crt -p $P_TLS"
i=0
until [ "$($RCLI_TLS ping 2>/dev/null)" = PONG ]; do
  i=$((i + 1)); [ $i -gt 100 ] && { echo "redis-tls: the TLS redis-server did not start"; exit 1; }; sleep 0.1
done

TLS_BIN=$BIN
BIN=${PLAIN_BIN:-$BIN}
serve_start CREDWATCH_REDIS_URL="redis://127.0.0.1:$P_PLAIN" CREDWATCH_INGEST_TOKENS=$TOKEN_IN \
  CREDWATCH_READ_TOKENS=read-token-bench-0123456789ab || { echo "redis-tls: credwatch (plain) did not start"; exit 1; }
pid_cw_plain=$SERVE_PID; PORT_PLAIN=$SERVE_PORT
mv "$TEST_TMP/server.log" "$TEST_TMP/server-plain.log"
BIN=$TLS_BIN
serve_start CREDWATCH_REDIS_URL="rediss://127.0.0.1:$P_TLS" CREDWATCH_REDIS_CA_FILE="$C/ca.crt" \
  CREDWATCH_INGEST_TOKENS=$TOKEN_IN CREDWATCH_READ_TOKENS=read-token-bench-0123456789ab ||
  { echo "redis-tls: credwatch (TLS) did not start"; cat "$TEST_TMP/server.log"; exit 1; }
pid_cw_tls=$SERVE_PID; PORT_TLS=$SERVE_PORT
info=$($PY "$GEN" templates "$TEST_TMP/t") || { echo "redis-tls: template generation failed"; exit 1; }
set -- $info
CT_RECORDS=$1
THREADS=$(sed -n 's/.*"msg":"listening".*"threads":\([0-9]*\).*/\1/p' "$TEST_TMP/server.log")
echo "redis-tls: two credwatch ($THREADS HTTP threads each) on redis:// and rediss:// (TLS 1.3, P-256 certificate)" \
  "redis-servers of this machine, $(nproc) CPUs shared with the load generator; one loaded at a time"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
HZ=$(getconf CLK_TCK)
: >"$TEST_TMP/res"
run=0
# one MODE NAME CONNS PATH CTYPE TEMPLATES...: a wrk run on that mode's instance; appends its figures
one() {
  _mode=$1; _name=$2; _c=$3; _path=$4; _ct=$5; shift 5
  if [ "$_mode" = tls ]; then _port=$PORT_TLS; _cw=$pid_cw_tls; _rd=$pid_rd_tls; $RCLI_TLS flushall >/dev/null
  else _port=$PORT_PLAIN; _cw=$pid_cw_plain; _rd=$pid_rd_plain; redis-cli -p "$P_PLAIN" flushall >/dev/null; fi
  run=$((run + 1))
  _s0=$(ticks "$_cw"); _r0=$(ticks "$_rd")
  wrk -t2 -c"$_c" -d"${SECONDS_PER_RUN}s" -s "$LUA" "http://127.0.0.1:$_port$_path" -- "$((run % 16))" "$TOKEN_IN" \
    "$_ct" "$@" >"$TEST_TMP/wrk.out" 2>&1
  if grep -qE 'Non-2xx|Socket errors' "$TEST_TMP/wrk.out"; then
    echo "redis-tls: $_mode $_name: failed requests: $(grep -E 'Non-2xx|Socket errors' "$TEST_TMP/wrk.out" | tr -s ' ')"
    status=1
  fi
  _n=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$TEST_TMP/wrk.out")
  _rps=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$TEST_TMP/wrk.out")
  echo "$_mode $_name ${_rps:-0} ${_n:-0} $(( $(ticks "$_cw") - _s0 )) $(( $(ticks "$_rd") - _r0 ))" >>"$TEST_TMP/res"
}
CT_T=$TEST_TMP/t/ct_batch.tmpl
one plain warmup $CT_CONNS /v1/ingest/cloudtrail application/json "$CT_T"
one tls warmup $CT_CONNS /v1/ingest/cloudtrail application/json "$CT_T"
for r in $(seq "$RUNS"); do
  for m in plain tls; do one "$m" cloudtrail $CT_CONNS /v1/ingest/cloudtrail application/json "$CT_T"; done
  for m in tls plain; do
    one "$m" eventbridge $EB_CONNS /v1/ingest/eventbridge "application/json; charset=utf-8" "$TEST_TMP"/t/eb_*.tmpl
  done
done
$PY - "$TEST_TMP/res" "$HZ" "$CT_RECORDS" "$CT_CONNS" "$EB_CONNS" <<'EOF'
import collections, statistics, sys
hz, per, ctc, ebc = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
by = collections.defaultdict(list)
for line in open(sys.argv[1]):
    mode, name, rps, n, cw, rd = line.split()
    if name != "warmup" and int(n):
        by[(mode, name)].append((float(rps), int(cw) / hz / int(n) * 1e6, int(rd) / hz / int(n) * 1e6))
def med(k, i):
    return statistics.median(x[i] for x in by[k])
for name, unit, mult, conns in (("cloudtrail", "records/s", per, ctc), ("eventbridge", "req/s", 1, ebc)):
    if not by[("plain", name)] or not by[("tls", name)]:
        continue
    p, t = med(("plain", name), 0) * mult, med(("tls", name), 0) * mult
    cp = med(("plain", name), 1) + med(("plain", name), 2)
    ct = med(("tls", name), 1) + med(("tls", name), 2)
    what = "1000-record batches, %d connections" % conns if name == "cloudtrail" else "single events, %d connections" % conns
    print("redis-tls: %s %s: plain %.0f %s, TLS %.0f %s (%.0f%% of plain; medians of %d: plain %s, TLS %s)"
          % (name, what, p, unit, t, unit, 100 * t / p, len(by[("tls", name)]),
             " ".join("%.0f" % (x[0] * mult) for x in by[("plain", name)]),
             " ".join("%.0f" % (x[0] * mult) for x in by[("tls", name)])))
    print("redis-tls: %s CPU per request, credwatch + redis-server: plain %.1f + %.1f us, TLS %.1f + %.1f us "
          "(+%.0f%%)" % (name, med(("plain", name), 1), med(("plain", name), 2), med(("tls", name), 1),
                         med(("tls", name), 2), 100 * (ct - cp) / cp))
EOF
echo "redis-tls: machine load average at the end (1/5/15 min): $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
exit $status
