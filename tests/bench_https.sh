#!/bin/sh
# bench_https.sh — what HTTPS costs (CREDWATCH_TLS_CERT/_KEY): two `credwatch serve` of the same binary on one
# Redis, one plain HTTP and one HTTPS (an ECDSA P-256 certificate made here with openssl; wrk negotiates TLS 1.3,
# AES-256-GCM), measured alternately in the same run so that drift of the shared machine falls on both:
#   1. CloudTrail files of 1,000 records over 4 keep-alive connections -> records/s
#   2. single EventBridge events over 64 keep-alive connections -> requests/s
#   3. a new connection per request (Connection: close) on /healthz, 16 connections -> requests/s: the price of
#      the handshake itself, for senders that do not keep connections alive
# and the server's CPU per request in each (user + system ticks of the process: independent of other load).
# Every ingest request carries new keys and event ids (tests/bench/ templates, as bench_serve.sh). Medians of
# HTTPS_RUNS; compare the ratios. Starts its own redis-server and credwatch processes, stops them by pid.
# Exits non-zero when a request failed or a tool is missing.
. "$(dirname "$0")/lib.sh"
GEN=$here/bench/serve_gen.py
LUA=$here/bench/template.lua
RUNS=${HTTPS_RUNS:-3}
SECONDS_PER_RUN=${HTTPS_SECONDS:-5}
CT_CONNS=4
EB_CONNS=64
HS_CONNS=16
TOKEN_IN=ingest-token-bench-0123456789
TOKEN_RD=read-token-bench-0123456789ab

make_tmp
status=0
for tool in wrk redis-server redis-cli openssl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "https: $tool is not installed (scripts/deps.sh bench)"; exit 1; }
done
[ -x "$BIN" ] || { echo "https: $BIN is missing (make)"; exit 1; }

tls=$TEST_TMP/tls
mkdir -p "$tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls/key.pem" -out "$tls/cert.pem" \
  -days 2 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 2>/dev/null ||
  { echo "https: openssl could not make the certificate"; exit 1; }

RPORT=$(free_port)
redis_start "$RPORT" --appendonly no || { echo "https: redis-server did not start"; exit 1; }
rcli() { redis-cli -p "$RPORT" "$@"; }
common="CREDWATCH_REDIS_URL=redis://127.0.0.1:$RPORT CREDWATCH_INGEST_TOKENS=$TOKEN_IN CREDWATCH_READ_TOKENS=$TOKEN_RD"
# shellcheck disable=SC2086
serve_start $common || { echo "https: credwatch (http) did not start"; cat "$TEST_TMP/server.log"; exit 1; }
http_pid=$SERVE_PID; http_url=http://127.0.0.1:$SERVE_PORT
mv "$TEST_TMP/server.log" "$TEST_TMP/server-http.log"
# shellcheck disable=SC2086
serve_start $common CREDWATCH_TLS_CERT="$tls/cert.pem" CREDWATCH_TLS_KEY="$tls/key.pem" ||
  { echo "https: credwatch (https) did not start"; cat "$TEST_TMP/server.log"; exit 1; }
https_pid=$SERVE_PID; https_url=https://127.0.0.1:$SERVE_PORT

info=$($PY "$GEN" templates "$TEST_TMP/t") || { echo "https: template generation failed"; exit 1; }
set -- $info
CT_RECORDS=$1
THREADS=$(sed -n 's/.*"msg":"listening".*"threads":\([0-9]*\).*/\1/p' "$TEST_TMP/server.log")
echo "https: two credwatch ($THREADS HTTP threads each; one HTTP, one HTTPS) on Redis 127.0.0.1:$RPORT," \
  "$(nproc) CPUs shared with wrk; $RUNS alternating runs of ${SECONDS_PER_RUN} s per figure"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
: >"$TEST_TMP/res"
run=0
# one SCHEME NAME CONNS PATH [LUA ARGS...]: one wrk run (WRK_HEADER: one extra header); appends
# "name scheme rate requests cpu_ticks"
WRK_HEADER=
one() {
  _scheme=$1; _name=$2; _c=$3; _path=$4; shift 4
  if [ "$_scheme" = https ]; then _url=$https_url; _pid=$https_pid; else _url=$http_url; _pid=$http_pid; fi
  rcli flushall >/dev/null
  run=$((run + 1))
  _t0=$(ticks "$_pid")
  if [ $# -gt 0 ]; then
    wrk -t2 -c"$_c" -d"${SECONDS_PER_RUN}s" -s "$LUA" "$_url$_path" -- "$((run % 16))" "$TOKEN_IN" "$@" \
      >"$TEST_TMP/wrk.out" 2>&1
  else
    wrk -t2 -c"$_c" -d"${SECONDS_PER_RUN}s" -H "$WRK_HEADER" "$_url$_path" >"$TEST_TMP/wrk.out" 2>&1
  fi
  _t1=$(ticks "$_pid")
  if grep -qE 'Non-2xx|Socket errors' "$TEST_TMP/wrk.out"; then
    echo "https: $_scheme $_name: failed requests: $(grep -E 'Non-2xx|Socket errors' "$TEST_TMP/wrk.out" | tr -s ' ')" >&2
    status=1
  fi
  _n=$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$TEST_TMP/wrk.out")
  _rate=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$TEST_TMP/wrk.out")
  echo "$_name $_scheme ${_rate:-0} ${_n:-0} $((_t1 - _t0))" >>"$TEST_TMP/res"
}

for r in $(seq "$RUNS"); do
  for scheme in http https; do
    one "$scheme" cloudtrail "$CT_CONNS" /v1/ingest/cloudtrail application/json "$TEST_TMP/t/ct_batch.tmpl"
    one "$scheme" eventbridge "$EB_CONNS" /v1/ingest/eventbridge "application/json; charset=utf-8" "$TEST_TMP"/t/eb_*.tmpl
    WRK_HEADER="Connection: close"
    one "$scheme" handshake "$HS_CONNS" /healthz
    WRK_HEADER=
  done
done
: "${THREADS:=?}"
$PY - "$TEST_TMP/res" "$(getconf CLK_TCK)" "$CT_RECORDS" <<'EOF'
import collections, statistics, sys
hz, per_ct = int(sys.argv[2]), int(sys.argv[3])
by = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, scheme, rate, n, ticks = line.split()
    n = int(n)
    by[(name, scheme)].append((float(rate), int(ticks) / hz / n * 1e6 if n else 0.0))
med = lambda k, i: statistics.median(x[i] for x in by[k]) if by.get(k) else 0.0
what = {"cloudtrail": ("CloudTrail 1000-record batches, 4 connections", "records/s", per_ct),
        "eventbridge": ("EventBridge single events, 64 connections", "req/s", 1),
        "handshake": ("a new connection per request (/healthz, 16 connections)", "req/s", 1)}
for name, (label, unit, mult) in what.items():
    h, s = med((name, "http"), 0) * mult, med((name, "https"), 0) * mult
    ch, cs = med((name, "http"), 1), med((name, "https"), 1)
    print("https: %s: HTTP %.0f %s, HTTPS %.0f %s (ratio %.2f); server CPU per request %.1f us vs %.1f us "
          "(HTTPS costs %+.1f us, x%.2f)" % (label, h, unit, s, unit, s / h if h else 0, ch, cs, cs - ch,
                                            cs / ch if ch else 0))
EOF
echo "https: machine load average at the end (1/5/15 min): $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
exit $status
