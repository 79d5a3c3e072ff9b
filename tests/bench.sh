#!/bin/sh
# bench.sh — `make bench`: runs every build/tests/bench_* program, then bench_scan.sh (scan on one
# core and on every core beside the decoder's own figure, and its peak memory over 1 GB of gzip
# archives), bench_serve.sh,
# bench_store.sh (memory, embedded durable and Redis stores side by side), bench_https.sh (the same ingest over
# HTTPS beside plain HTTP), bench_redis_tls.sh (plain beside TLS to Redis), bench_delivery.sh (findings out
# to webhook sinks) and bench_scan_multi.sh (scan with 1, 2, 3 processes on a Redis Cluster). Rerunnable: all
# scratch goes to a temporary folder removed on exit. Figures are medians; compare ratios.
set -u
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root" || exit 1
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

echo "== scan"; sh "$here/bench_scan.sh" || status=1
echo "== serve"; sh "$here/bench_serve.sh" || status=1
echo "== store"; sh "$here/bench_store.sh" || status=1
echo "== https"; sh "$here/bench_https.sh" || status=1
echo "== delivery"; sh "$here/bench_delivery.sh" || status=1
echo "== redis tls"; sh "$here/bench_redis_tls.sh" || status=1
echo "== scan multi"; sh "$here/bench_scan_multi.sh" || status=1
exit $status
