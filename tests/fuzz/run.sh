#!/bin/sh
# run.sh — runs libFuzzer targets one after another, each for FUZZ_SECONDS, over the committed
# seeds (tests/fuzz/corpus/<target>/, read-only) and a working corpus in $FUZZ_BUILD/corpus/<target>/
# (where new inputs go). A crash leaves its input in $FUZZ_BUILD/crashes/ and fails the run.
# Usage: tests/fuzz/run.sh fuzz_decode fuzz_ingest ...   (built by `make fuzz-build`)
# Prints `ok - fuzz <target> ...` / `not ok - ...` per target, the last stats line of each.
set -u
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_RSS_MB=${FUZZ_RSS_MB:-2048}   # a leak or a bomb that gets through shows as an OOM crash
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1
fails=0
for t in "$@"; do
  bin=$FUZZ_BUILD/fuzz/$t
  work=$FUZZ_BUILD/corpus/$t
  crashes=$FUZZ_BUILD/crashes
  mkdir -p "$work" "$crashes" "tests/fuzz/corpus/$t"
  log=$FUZZ_BUILD/$t.log
  # -timeout: one input taking over 10 s is a hang worth reporting, not a slow case.
  "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb="$FUZZ_RSS_MB" -print_final_stats=1 \
    -artifact_prefix="$crashes/$t-" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  stats=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1)
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  if [ "$rc" -eq 0 ]; then
    echo "ok - fuzz $t ${FUZZ_SECONDS}s execs=${execs:-?} $stats"
  else
    echo "not ok - fuzz $t exited $rc (log: $log)"
    grep -E 'ERROR|invariant|SUMMARY|Test unit written' "$log" | head -n 10 | sed 's/^/    /'
    fails=$((fails + 1))
  fi
done
[ "$fails" -eq 0 ]
