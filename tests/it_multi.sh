#!/bin/sh
# it_multi.sh — several `credwatch serve` instances over one real Redis: concurrent ingest of many
# keys across instances, duplicates and exactly-once under contention, a Redis SIGKILL/restart
# under load, and the SIGTERM drain. The work is done by tests/multi_test.py (stdlib Python),
# which starts its own redis-server and instances on free loopback ports and stops them by pid.
# Prints `ok - name` / `not ok - name`; exits non-zero if anything failed. Builds nothing.
set -u
BUILD=${BUILD:-build}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BIN=${CREDWATCH_BIN:-$root/$BUILD/credwatch}
PY=/usr/bin/python3
MULTI_TMP=$(mktemp -d)
PIDFILE=$MULTI_TMP/pids
: >"$PIDFILE"
DRIVER=

# Stop only what this script (and its driver) started: the driver, then every pid it recorded.
cleanup() {
  if [ -n "$DRIVER" ] && kill -0 "$DRIVER" 2>/dev/null; then
    kill -TERM "$DRIVER" 2>/dev/null
    sleep 1
    kill -KILL "$DRIVER" 2>/dev/null
  fi
  while read -r pid; do
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  done <"$PIDFILE"
  rm -rf "$MULTI_TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ ! -x "$BIN" ]; then echo "not ok - binary $BIN exists"; exit 1; fi
if ! command -v redis-server >/dev/null 2>&1; then echo "not ok - redis-server is installed"; exit 1; fi

# Bounded: the driver has its own per-request timeouts; this caps the whole run.
timeout -k 5 240 "$PY" "$here/multi_test.py" "$BIN" "$MULTI_TMP" "$PIDFILE" &
DRIVER=$!
wait "$DRIVER"
rc=$?
DRIVER=
exit "$rc"
