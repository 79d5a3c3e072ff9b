#!/bin/sh
# it_hostile.sh — the hostile input catalogue against a real `credwatch serve` (embedded store,
# tokens), then the key-id injection cases against a real Redis of our own (redis-cli --scan:
# nothing outside cw:, nothing interpreted). Each refused input asserts the status, the JSON
# error code and that stored state is untouched. Driver: tests/hostile_test.py.
# Prints `ok - name` / `not ok - name`; exits non-zero when any check fails.
. "$(dirname "$0")/lib.sh"
export BUILD
export CREDWATCH="${CREDWATCH:-$root/$BUILD/credwatch}"
modes=hostile
if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  modes="$modes redis"
else
  echo "ok - redis part skipped: redis-server/redis-cli not installed (scripts/deps.sh test installs them) # SKIP"
fi
# shellcheck disable=SC2086
exec "$PY" "$here/hostile_test.py" $modes
