#!/bin/sh
# bench.sh — `make bench`: runs every build/tests/bench_* program, then the scan figure:
# the bench_decode records as ~50 gzip CloudTrail files, `credwatch scan --quiet DIR` timed
# SCAN_RUNS times (median), beside the decode-only figure of the same run; then bench_serve.sh,
# bench_store.sh (memory, embedded durable and Redis stores side by side), bench_https.sh (the same ingest over
# HTTPS beside plain HTTP), bench_redis_tls.sh (plain beside TLS to Redis), bench_delivery.sh (findings out
# to webhook sinks) and bench_scan_multi.sh (scan with 1, 2, 3 processes on a Redis Cluster). Rerunnable: all
# scratch goes to a temporary folder removed on exit. Figures are medians; compare ratios.
set -u
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root" || exit 1
SCAN_FILES=50
SCAN_RUNS=5
SCAN_TARGET=150000
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
# one core, when taskset is there: the figures are per core
pin=""
if command -v taskset >/dev/null 2>&1 && taskset -c 0 true 2>/dev/null; then pin="taskset -c 0"; fi

for b in "$BUILD"/tests/bench_*; do
  [ -x "$b" ] || continue
  name=$(basename "$b")
  echo "== $name"
  if ! $pin "$b" | tee "$tmp/$name.out"; then
    echo "$name: FAILED"
    status=1
  fi
done

echo "== scan"
if [ ! -x "$BUILD/credwatch" ] || [ ! -x "$BUILD/tests/bench_decode" ]; then
  echo "scan: needs $BUILD/credwatch and $BUILD/tests/bench_decode"
  exit 1
fi
mkdir -p "$tmp/archives"
records=$("$BUILD/tests/bench_decode" --write-gz "$tmp/archives" "$SCAN_FILES") || { echo "scan: generation failed"; exit 1; }
bytes=$(du -sb "$tmp/archives" | cut -f1)
times=""
i=0
while [ "$i" -lt "$SCAN_RUNS" ]; do
  t0=$(date +%s.%N)
  $pin "$BUILD/credwatch" scan --quiet "$tmp/archives" >/dev/null
  rc=$?
  t1=$(date +%s.%N)
  if [ "$rc" -ne 0 ]; then echo "scan: credwatch exited $rc"; exit 1; fi
  times="$times $(echo "$t1 - $t0" | bc -l 2>/dev/null || awk "BEGIN{print $t1 - $t0}")"
  i=$((i + 1))
done
decode=$(sed -n 's/^decode: yajl \([0-9]*\) records\/s.*/\1/p' "$tmp/bench_decode.out" 2>/dev/null)
/usr/bin/python3 - "$records" "$bytes" "$SCAN_FILES" "$SCAN_RUNS" "$SCAN_TARGET" "${decode:-0}" $times <<'EOF'
import statistics, sys
records, gz_bytes, files, runs, target, decode = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                                  int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]))
times = [float(t) for t in sys.argv[7:]]
m = statistics.median(times)
rate = records / m
print("scan: credwatch scan --quiet, %d records in %d gzip files (%.1f MB): %.0f records/s (median of %d, %.2f s)"
      % (records, files, gz_bytes / 1e6, rate, runs, m))
if decode > 0:
    print("scan: decode-only baseline of this run %.0f records/s; scan/decode %.2f" % (decode, rate / decode))
print("scan: target %d records/s: %s" % (target, "met" if rate >= target else "NOT met"))
EOF
echo "== serve"; sh "$here/bench_serve.sh" || status=1
echo "== store"; sh "$here/bench_store.sh" || status=1
echo "== https"; sh "$here/bench_https.sh" || status=1
echo "== delivery"; sh "$here/bench_delivery.sh" || status=1
echo "== redis tls"; sh "$here/bench_redis_tls.sh" || status=1
echo "== scan multi"; sh "$here/bench_scan_multi.sh" || status=1
exit $status
