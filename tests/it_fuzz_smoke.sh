#!/bin/sh
# it_fuzz_smoke.sh — every libFuzzer target (tests/fuzz/) for a short while over its committed
# corpus, regression inputs included: a fixed crash that comes back fails here. The long runs are
# `make fuzz FUZZ_SECONDS=...`. Skipped, with the reason, when clang or libFuzzer is missing.
# Prints `ok - name` / `not ok - name`; exits non-zero when any target fails.
. "$(dirname "$0")/lib.sh"
cd "$root" || exit 1
FUZZ_SMOKE_SECONDS=${FUZZ_SMOKE_SECONDS:-15}   # x 5 targets: about a minute and a half
if ! command -v clang >/dev/null 2>&1; then
  echo "ok - fuzz smoke skipped: clang is not installed (scripts/deps.sh fuzz installs it) # SKIP"
  exit 0
fi
if ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 &&
   ! ls /usr/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "ok - fuzz smoke skipped: libFuzzer (libclang-rt-14-dev) is not installed # SKIP"
  exit 0
fi
make_tmp
if ! make --no-print-directory fuzz-build >"$TEST_TMP/build.log" 2>&1; then
  echo "not ok - fuzz targets build"
  tail -n 30 "$TEST_TMP/build.log" | sed 's/^/    /'
  exit 1
fi
ok "fuzz targets build"
targets=$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')
# Every committed input first, once each: the regression check proper.
for t in $targets; do
  if build-fuzz/fuzz/"$t" -runs=0 tests/fuzz/corpus/"$t" >"build-fuzz/$t.replay.log" 2>&1; then
    echo "ok - fuzz $t replays its corpus ($(ls tests/fuzz/corpus/"$t" | wc -l) inputs)"
  else
    echo "not ok - fuzz $t replays its corpus"
    grep -E 'invariant|ERROR|SUMMARY' "build-fuzz/$t.replay.log" | head -n 5 | sed 's/^/    /'
    fails=$((fails + 1))
  fi
done
# shellcheck disable=SC2086
FUZZ_BUILD=build-fuzz FUZZ_SECONDS=$FUZZ_SMOKE_SECONDS tests/fuzz/run.sh $targets || fails=$((fails + 1))
[ "$fails" -eq 0 ]
