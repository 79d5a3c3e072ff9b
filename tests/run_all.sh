#!/bin/sh
# Runs every suite and ends with one line `N passed, N failed`.
#   build/tests/test_*  cmocka suites (CMOCKA_MESSAGE_OUTPUT=TAP: one `ok`/`not ok` line per test)
#   tests/it_*.sh       integration scripts: print `ok - name` / `not ok - name`, exit non-zero on failure
# ONLY=unit runs the cmocka suites alone. Each suite runs under a time limit so a hang fails, not stalls.
set -u
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
pass=0; fail=0
run_suite() { # name, timeout, command...
  name=$1; limit=$2; shift 2
  out="$log/$(basename "$name").out"
  (cd "$root" && CMOCKA_MESSAGE_OUTPUT=TAP BUILD=$BUILD timeout -k 5 "$limit" "$@") >"$out" 2>&1
  rc=$?
  p=$(grep -cE '^ok ' "$out"); f=$(grep -cE '^not ok ' "$out")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "not ok - $name exited with status $rc" >>"$out"; fi
  pass=$((pass + p)); fail=$((fail + f))
  if [ "$f" -gt 0 ]; then
    echo "FAIL $name ($p passed, $f failed)"
    grep -E '^not ok' "$out" | sed 's/^/    /'   # the failing checks first: the tail may not hold them
    sed 's/^/    /' "$out" | tail -n 60
  else
    echo "PASS $name ($p passed)"
  fi
}
for t in "$root/$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  run_suite "$(basename "$t")" 300 "$t"
done
if [ "${ONLY:-}" != unit ]; then
  for s in "$root"/tests/it_*.sh; do
    [ -f "$s" ] || continue
    run_suite "$(basename "$s")" 900 sh "$s"
  done
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
